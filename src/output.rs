//! All user-facing output goes through the [`Printer`]: it decides where messages go and how
//! warnings look on each CI platform (a GitHub annotation, a plain line elsewhere).

use std::io::{self, Write};

use crate::ci::Platform;

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
        let line = match self.platform {
            // Annotations show on the run's summary page; newlines must be escaped in them.
            Platform::GitHub => format!(
                "::warning title=fedtest::{}",
                message
                    .replace('%', "%25")
                    .replace('\r', "%0D")
                    .replace('\n', "%0A")
            ),
            Platform::GitLab | Platform::None => format!("fedtest: warning: {message}"),
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
