//! All user-facing output goes through the [`Printer`]: it decides where messages go and how
//! warnings look on each CI platform (a GitHub annotation, a plain line elsewhere). The CI
//! report files (step outputs, job summary, dotenv) are written by `report`, which
//! prints through here too.
//!
//! Every line printed here goes through [`crate::text`] first: test names, file names and
//! messages come from the code under review, and none of them may start a workflow command or
//! send an escape sequence to the log (issue 11). Only the GitLab section markers, which
//! fedtest writes itself, carry an escape character.

use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ci::Platform;
use crate::ci::annotation::{Annotation, Level};
use crate::text;

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
            (_, Level::Warning) => format!("fedtest: warning: {}", text::message(a.message)),
            (_, Level::Notice) => format!("fedtest: {}", text::message(a.message)),
        };
        let _ = writeln!(io::stderr(), "{line}");
    }

    /// Progress and summaries, on standard error so standard output stays machine-readable.
    pub fn info(&self, message: &str) {
        if !self.quiet {
            let _ = writeln!(io::stderr(), "fedtest: {}", text::message(message));
        }
    }

    /// Free-form text on standard error (explanations, tables), each line made safe.
    pub fn detail(&self, text: &str) {
        let _ = io::stderr().write_all(text::lines(text).as_bytes());
    }

    /// A collapsed section of the GitLab job log: `header` is its one-line title, `body` its
    /// lines. The section markers are the only escape sequences fedtest prints.
    pub fn gitlab_section(&self, name: &str, now: u64, header: &str, body: &str) {
        let _ = io::stderr().write_all(gitlab_section(name, now, header, body).as_bytes());
    }

    /// Standard output, for the command's result; every line written is made safe.
    pub fn stdout(&self) -> SafeLines<io::StdoutLock<'static>> {
        SafeLines::new(io::stdout().lock())
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

/// The error a command ended with, as the last line of its log.
pub fn error(message: &str) {
    let _ = writeln!(io::stderr(), "fedtest: error: {}", text::message(message));
}

/// The text of a GitLab log section (see [`Printer::gitlab_section`]).
pub fn gitlab_section(name: &str, now: u64, header: &str, body: &str) -> String {
    let name = text::line(name);
    let mut body = text::lines(body).into_owned();
    if !body.is_empty() && !body.ends_with('\n') {
        body.push('\n');
    }
    format!(
        "\x1b[0Ksection_start:{now}:{name}[collapsed=true]\r\x1b[0K{}\n{body}\
         \x1b[0Ksection_end:{now}:{name}\r\x1b[0K\n",
        text::line(header)
    )
}

/// A writer that makes every line written through it safe ([`text::line`]) before passing it
/// on. Ids and arguments that are already safe pass byte for byte, so a plan written to a
/// file is what the runner needs; the rest is escaped, never split. A partial last line is
/// written on `flush` or drop.
pub struct SafeLines<W: Write> {
    inner: W,
    pending: Vec<u8>,
    /// The pending bytes start a line (nothing of that line was written yet).
    line_start: bool,
}

impl<W: Write> SafeLines<W> {
    pub fn new(inner: W) -> Self {
        SafeLines {
            inner,
            pending: Vec::new(),
            line_start: true,
        }
    }

    fn emit(&mut self, bytes: &[u8], newline: bool) -> io::Result<()> {
        let s = String::from_utf8_lossy(bytes);
        let s = s.strip_suffix('\r').unwrap_or(&s);
        let safe = if self.line_start {
            text::line(s)
        } else {
            // The rest of a line whose start was flushed: no `::` can start it.
            let mut safe = text::line(&format!("x{s}")).into_owned();
            safe.remove(0);
            std::borrow::Cow::Owned(safe)
        };
        self.inner.write_all(safe.as_bytes())?;
        if newline {
            self.inner.write_all(b"\n")?;
        }
        self.line_start = newline;
        Ok(())
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.emit(&pending, false)?;
        }
        Ok(())
    }
}

impl<W: Write> Write for SafeLines<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            if self.pending.is_empty() {
                self.emit(&rest[..i], true)?;
            } else {
                self.pending.extend_from_slice(&rest[..i]);
                let line = std::mem::take(&mut self.pending);
                self.emit(&line, true)?;
            }
            rest = &rest[i + 1..];
        }
        self.pending.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending()?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for SafeLines<W> {
    fn drop(&mut self) {
        let _ = self.flush();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn through(chunks: &[&str]) -> String {
        let mut out = Vec::new();
        {
            let mut w = SafeLines::new(&mut out);
            for c in chunks {
                w.write_all(c.as_bytes()).unwrap();
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn safe_lines_pass_safe_text_and_escape_the_rest() {
        assert_eq!(through(&["a::b\n", "c::d\n"]), "a::b\nc::d\n");
        assert_eq!(through(&["a::", "b\nc"]), "a::b\nc");
        assert_eq!(
            through(&["::error::x\n  ::warning::y\r\n", "\u{1b}[2J\n"]),
            "\\u003a:error::x\n  \\u003a:warning::y\n\\u001b[2J\n"
        );
        // A CR in the middle of a line would end it for the runner.
        assert_eq!(through(&["a\r::error::x\n"]), "a\\r::error::x\n");
    }

    #[test]
    fn a_section_is_closed_only_by_its_own_marker() {
        let text = gitlab_section(
            "fedtest_gate",
            1,
            "failed: evil\u{1b}[0Ksection_end:1:fedtest_gate\r",
            "  evil\u{1b}[0Ksection_end:1:fedtest_gate\r\n",
        );
        assert_eq!(text.matches('\u{1b}').count(), 4, "{text:?}");
        assert_eq!(text.matches("\rsection").count(), 0, "{text:?}");
        assert!(text.starts_with(
            "\u{1b}[0Ksection_start:1:fedtest_gate[collapsed=true]\r\u{1b}[0Kfailed: evil"
        ));
    }
}
