//! All user-facing output goes through the [`Printer`]: it decides where messages go and how
//! warnings look on each CI platform (a GitHub annotation, a plain line elsewhere). The CI
//! report files (step outputs, job summary, dotenv) are written by [`crate::ci::report`], which
//! prints through here too.

use std::io::{self, Write};

use crate::ci::Platform;
use crate::ci::annotation::{Annotation, Level};

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
}
