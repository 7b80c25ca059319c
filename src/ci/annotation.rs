//! GitHub Actions annotations: the `::warning file=…,line=…,title=…::message` workflow commands
//! a step prints to standard error. Only `output::Printer` prints them.
//!
//! Escaping follows the runner's own (`@actions/core` `escapeData` / `escapeProperty`): in the
//! message `%`, CR and LF are percent-encoded; in a property value `:` and `,` are too, since
//! they separate properties. Without it a test name with a newline would end the command early
//! and the rest of the name would be read as a new line of log — or a new command. Before
//! that, every value is made one safe line by [`crate::text::line`] (a line break shows as `\n`,
//! an escape sequence as `\u001b`), as everything fedtest prints is (issue 11).

use std::fmt::Write as _;

use crate::text;

/// The annotation's kind, as GitHub shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Notice,
    Warning,
    Error,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Notice => "notice",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One annotation. GitHub keeps at most 10 of each level per step (50 per job): callers name
/// the first few and summarise the rest.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation<'a> {
    pub level: Level,
    pub title: &'a str,
    /// Repository-relative path the annotation points at, when the report names one.
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub message: &'a str,
}

impl<'a> Annotation<'a> {
    /// A warning titled "fedtest": fedtest's own trouble and fallbacks.
    pub fn warning(message: &'a str) -> Self {
        Annotation {
            level: Level::Warning,
            title: "fedtest",
            file: None,
            line: None,
            message,
        }
    }

    /// The workflow command, one line.
    pub fn render(&self) -> String {
        let mut props: Vec<String> = Vec::new();
        if let Some(file) = self.file.filter(|f| !f.is_empty()) {
            props.push(format!("file={}", escape_property(&text::line(file))));
            if let Some(line) = self.line {
                props.push(format!("line={line}"));
            }
        }
        if !self.title.is_empty() {
            props.push(format!(
                "title={}",
                escape_property(&text::line(self.title))
            ));
        }
        let mut s = format!("::{}", self.level.command());
        if !props.is_empty() {
            let _ = write!(s, " {}", props.join(","));
        }
        let _ = write!(s, "::{}", escape_data(&text::message(self.message)));
        s
    }
}

/// A message (the part after the last `::`).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property value (`file=`, `title=`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_escapes_percent_and_line_breaks() {
        assert_eq!(
            escape_data("50% done\r\nnext line: a, b"),
            "50%25 done%0D%0Anext line: a, b"
        );
        // `%` first: an already-escaped sequence is escaped again, not decoded.
        assert_eq!(escape_data("%0A"), "%250A");
    }

    #[test]
    fn properties_also_escape_colon_and_comma() {
        assert_eq!(
            escape_property("C:\\src\\a,b.py\n"),
            "C%3A\\src\\a%2Cb.py%0A"
        );
    }

    #[test]
    fn renders_properties_in_order_and_skips_missing_ones() {
        let a = Annotation {
            level: Level::Error,
            title: "fedtest: test failed",
            file: Some("tests/test_io.py"),
            line: Some(14),
            message: "test_io::test_read[a::b] failed\nsecond line",
        };
        assert_eq!(
            a.render(),
            "::error file=tests/test_io.py,line=14,title=fedtest%3A test failed::\
             test_io::test_read[a::b] failed\\nsecond line"
        );
        // A line without a file means nothing to GitHub: dropped.
        let b = Annotation {
            file: None,
            ..a.clone()
        };
        assert!(
            b.render()
                .starts_with("::error title=fedtest%3A test failed::")
        );
        assert_eq!(
            Annotation::warning("store: 100% corrupt").render(),
            "::warning title=fedtest::store: 100%25 corrupt"
        );
    }

    #[test]
    fn a_name_cannot_start_a_second_command() {
        // A test name that tries to smuggle in `::error::` on its own line stays one line.
        let hostile = "ok\n::error::pwned";
        let line = Annotation::warning(hostile).render();
        assert_eq!(line.lines().count(), 1);
        assert_eq!(line, "::warning title=fedtest::ok\\n::error::pwned");
        // Nor can an escape sequence, a CR, or a file name with a line break.
        let a = Annotation {
            level: Level::Error,
            title: "fedtest",
            file: Some("a\n::error::x.py"),
            line: None,
            message: "\u{1b}[2Jok\r::error::x %0A::error::y",
        };
        let line = a.render();
        assert_eq!(
            line,
            "::error file=a\\n%3A%3Aerror%3A%3Ax.py,title=fedtest::\
             \\u001b[2Jok\\r::error::x %250A::error::y"
        );
        assert!(!line.contains(['\n', '\r', '\u{1b}']));
    }
}
