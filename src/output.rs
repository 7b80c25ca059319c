//! All user-facing output goes through the [`Printer`]: it decides where messages go and how
//! warnings look on each CI platform (a GitHub annotation, a plain line elsewhere). The CI
//! report files (step outputs, job summary, dotenv) are written by [`crate::ci::report`], which
//! prints through here too.

use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ci::Platform;
use crate::ci::annotation::{Annotation, Level};

#[derive(Clone)]
pub struct Printer {
    platform: Platform,
    quiet: bool,
}

impl Printer {
    pub fn new(platform: Platform) -> Self {
        Printer {
            platform,
            quiet: false,
        }
    }

    /// A printer that drops informational messages (warnings still show).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// A warning the user must see: fedtest's own trouble, a fallback, a risky setting.
    pub fn warn(&self, message: &str) {
        self.annotate(&Annotation::warning(message));
    }

    /// An annotation on GitHub (shown on the run's page, at `file:line` when given). Elsewhere a
    /// warning or notice is a plain line; an error is not printed, since the command's own
    /// output and exit code already say it.
    pub fn annotate(&self, a: &Annotation<'_>) {
        let line = match (self.platform, a.level) {
            (Platform::GitHub, _) => a.render(),
            (_, Level::Error) => return,
            (_, Level::Warning) => format!("fedtest: warning: {}", a.message),
            (_, Level::Notice) => format!("fedtest: {}", a.message),
        };
        let _ = writeln!(io::stderr(), "{line}");
    }

    /// Progress and summaries, on standard error so standard output stays machine-readable.
    pub fn info(&self, message: &str) {
        if !self.quiet {
            let _ = writeln!(io::stderr(), "fedtest: {message}");
        }
    }

    /// Free-form text on standard error (explanations, tables).
    pub fn detail(&self, text: &str) {
        let _ = io::stderr().write_all(text.as_bytes());
    }

    /// Standard output, for the command's result.
    pub fn stdout(&self) -> io::StdoutLock<'static> {
        io::stdout().lock()
    }

    /// A progress bar on standard error, drawn from [`Progress::start`] on; it stays hidden
    /// when standard error is not a terminal (CI logs) or the printer is quiet. Messages
    /// printed through it do not tear it.
    pub fn progress(&self, prefix: &str) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {wide_msg} {elapsed}/{eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("fedtest: {prefix}"));
        Progress {
            bar,
            printer: self.clone(),
            visible: !self.quiet && io::stderr().is_terminal(),
        }
    }
}

/// A progress bar from [`Printer::progress`]; clones draw the same bar.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    printer: Printer,
    visible: bool,
}

impl Progress {
    /// Show the bar, with `len` steps to go.
    pub fn start(&self, len: u64) {
        self.bar.set_length(len);
        if self.visible {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    pub fn inc(&self) {
        self.bar.inc(1);
    }

    pub fn set_message(&self, message: &str) {
        self.bar.set_message(message.to_owned());
    }

    /// [`Printer::warn`] without tearing the bar.
    pub fn warn(&self, message: &str) {
        self.bar.suspend(|| self.printer.warn(message));
    }

    /// [`Printer::info`] without tearing the bar.
    pub fn info(&self, message: &str) {
        self.bar.suspend(|| self.printer.info(message));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
