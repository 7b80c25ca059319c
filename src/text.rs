//! Untrusted text made safe to print: the one place that decides how a test name, a class
//! name, a report's file name or a changed file's path appears in a CI log or a CI file.
//!
//! Those strings come from the code under review (a fork's pull request can run in a
//! privileged job), so a report can hold a name like `ok&#10;::add-mask::…`. The runner reads
//! a step's output line by line (`\n`, `\r` and `\r\n` end a line) and runs a line as a
//! workflow command when, after leading white space, it starts with `::` — or, in the legacy
//! syntax, holds `##[` anywhere; GitLab and terminals act on escape sequences. Issue 11.
//!
//! The policy, in one function, [`line`]: a printed line never holds a control character
//! (C0, DEL, C1 — which covers CR, LF, ESC, NEL and the 8-bit CSI), a line or paragraph
//! separator, or bidirectional-override characters; they become visible `\uXXXX` escapes
//! (`\n`, `\r` and `\t` for the common three). A line that would start with `::` after its
//! leading white space has that first `:` escaped (`\u003a`), and `##[` becomes `#\u0023[`.
//! The escapes are JSON's, so a line of JSON stays valid JSON. Text that already is one safe
//! line comes back unchanged (and unallocated), so ordinary test ids print exactly as they are.
//!
//! Every line fedtest prints goes through here — `output::Printer` for standard
//! output and standard error, `report` for step outputs, the job summary and the
//! dotenv report, `ci::annotation` for workflow commands, and the plan formats. What
//! cannot be one line of a list is kept out of the history instead: `record` refuses a test id
//! that is not [`printable_id`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest message [`message`] returns, in characters; the rest is cut, saying how much.
pub const MAX_MESSAGE_CHARS: usize = 16 * 1024;

/// Characters that never reach a log as they are.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' // bidirectional overrides
            | '\u{feff}' // a byte order mark in the middle of a line
        )
}

fn needs_work(s: &str) -> bool {
    s.chars().any(hidden) || s.contains("##[") || s.trim_start().starts_with("::")
}

/// `s` as one safe line of a log or a CI file (see the module docs).
pub fn line(s: &str) -> Cow<'_, str> {
    if !needs_work(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut at_start = true;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' if !at_start => out.push_str("\\t"),
            c if hidden(c) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
            ':' if at_start && chars.peek() == Some(&':') => out.push_str("\\u003a"),
            c => out.push(c),
        }
        // Leading white space does not protect a `::` (the runner trims it); a tab at the
        // start is escaped like any other (only spaces are left there).
        if at_start && !(c == ' ' || (c.is_whitespace() && !hidden(c))) {
            at_start = false;
        }
    }
    if out.contains("##[") {
        out = out.replace("##[", "#\\u0023[");
    }
    Cow::Owned(out)
}

/// A message fedtest prints on one line of its log (an info line, a warning, the final
/// error): [`line`], cut at [`MAX_MESSAGE_CHARS`] (a report can name a test in 100,000
/// characters). Standard output is never cut: it is data.
pub fn message(s: &str) -> Cow<'_, str> {
    let safe = line(s);
    match safe.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => {
            let rest = safe[end..].chars().count();
            Cow::Owned(format!("{}… ({rest} more characters)", &safe[..end]))
        }
        None => safe,
    }
}

/// Several lines (a table, a block of a command's output): each line made safe by [`line`],
/// the line breaks kept. `\r\n` counts as one break.
pub fn lines(s: &str) -> Cow<'_, str> {
    if !s
        .split('\n')
        .any(|l| needs_work(l.strip_suffix('\r').unwrap_or(l)))
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for (i, l) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&line(l.strip_suffix('\r').unwrap_or(l)));
    }
    Cow::Owned(out)
}

/// Why `id` cannot be printed as it is — `None` when it can. A test id with a control
/// character or a line separator would print as several lines, and one that starts with `::`
/// or holds `##[` would be escaped by [`line`]: either way a plan or a step output could not
/// name it as the runner knows it. `record` refuses such ids rather than store them, so every
/// id in the history prints byte for byte.
pub fn printable_id(id: &str) -> Option<String> {
    if let Some(c) = id.chars().find(|&c| hidden(c)) {
        return Some(format!(
            "it contains the control character U+{:04X}; a test id must be one line of \
             printable text",
            u32::from(c)
        ));
    }
    if id.trim_start().starts_with("::") {
        return Some("it starts with `::`, which a CI log reads as a workflow command".into());
    }
    if id.contains("##[") {
        return Some("it contains `##[`, which a CI log reads as a workflow command".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_text_is_returned_as_it_is() {
        for s in [
            "app.Core::test_000",
            "t::p[a b]::x",
            "C:\\path\\x",
            "naïve ünïcödé 名前",
            "",
            "  indented, not a command",
            "a # b ## c #[",
        ] {
            assert!(matches!(line(s), Cow::Borrowed(_)), "{s}");
            assert!(matches!(lines(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn no_line_starts_a_workflow_command() {
        for (hostile, want) in [
            ("ok\n::error::pwned", "ok\\n::error::pwned"),
            ("::add-mask::x", "\\u003a:add-mask::x"),
            ("   ::stop-commands::t", "   \\u003a:stop-commands::t"),
            ("\t::error::x", "\\u0009::error::x"),
            ("a\r::error::x", "a\\r::error::x"),
            ("x ##[error]y", "x #\\u0023[error]y"),
            ("###[", "##\\u0023["),
            ("ok\u{85}::warning::x", "ok\\u0085::warning::x"),
            ("ok\u{2028}::warning::x", "ok\\u2028::warning::x"),
            ("\u{1b}[31mred\u{1b}[0m", "\\u001b[31mred\\u001b[0m"),
            ("\u{9b}31m", "\\u009b31m"),
            ("nul\u{0}del\u{7f}", "nul\\u0000del\\u007f"),
            ("rtl\u{202e}txt", "rtl\\u202etxt"),
        ] {
            let got = line(hostile);
            assert_eq!(got, want, "{hostile:?}");
            assert!(!got.trim_start().starts_with("::"), "{got}");
            assert!(!got.contains("##["), "{got}");
            assert!(!got.chars().any(hidden), "{got}");
        }
    }

    #[test]
    fn lines_keeps_breaks_and_checks_every_line() {
        assert_eq!(
            lines("a\n::error::b\r\n  ::x\n"),
            "a\n\\u003a:error::b\n  \\u003a:x\n"
        );
        assert_eq!(lines("a\u{1b}b\nc"), "a\\u001bb\nc");
    }

    #[test]
    fn json_stays_json() {
        let raw = "{\"id\": \"a\u{85}b\u{2028}c##[d\"}";
        let safe = line(raw);
        let v: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(v["id"], "a\u{85}b\u{2028}c##[d");
    }

    #[test]
    fn very_long_messages_are_cut() {
        let long = "x".repeat(MAX_MESSAGE_CHARS + 10);
        let got = message(&long);
        assert!(
            got.ends_with("… (10 more characters)"),
            "{}",
            &got[got.len() - 40..]
        );
        assert_eq!(line(&long), long);
    }

    #[test]
    fn printable_ids() {
        assert_eq!(printable_id("a::b[x y]"), None);
        assert_eq!(printable_id("a::::b"), None);
        for bad in [
            "a\nb",
            "a\rb",
            "a\tb",
            "a\u{1b}b",
            "a\u{85}b",
            "a\u{2028}b",
            "::a",
            "a ##[b",
        ] {
            assert!(printable_id(bad).is_some(), "{bad:?}");
        }
    }
}
