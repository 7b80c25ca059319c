//! Building the test command from the user's command and the runner's selection arguments.
//!
//! The rule, chosen so that no shell and no quoting is ever involved: an argument that is
//! exactly `{tests}` is replaced by the selection's arguments (zero or more); without one, they
//! are appended at the end. When everything runs, `{tests}` is removed and nothing is added.

use std::path::Path;
use std::process::ExitStatus;

use crate::plan::format::Runner;

/// The argument replaced by the selected tests.
pub const PLACEHOLDER: &str = "{tests}";

/// `command` with `selection` spliced in (see the module docs); `None` runs everything.
pub fn with_selection(
    command: &[String],
    selection: Option<Vec<String>>,
    runner: Runner,
) -> Vec<String> {
    let at = command.iter().position(|a| a == PLACEHOLDER);
    let mut out: Vec<String> = command
        .iter()
        .filter(|a| *a != PLACEHOLDER)
        .cloned()
        .collect();
    let Some(mut selection) = selection.filter(|s| !s.is_empty()) else {
        return out;
    };
    let at = at.unwrap_or(out.len());
    // libtest's arguments go after cargo's `--`: add one when `cargo …` has none before them.
    if runner == Runner::Cargo
        && out.first().is_some_and(|p| is_program(p, "cargo"))
        && !out[..at].iter().any(|a| a == "--")
    {
        selection.insert(0, "--".to_owned());
    }
    out.splice(at..at, selection);
    out
}

fn is_program(arg: &str, name: &str) -> bool {
    Path::new(arg)
        .file_stem()
        .is_some_and(|s| s.eq_ignore_ascii_case(name))
}

/// The exit code a shell would report for `status` (128 + N for a signal).
pub fn exit_code(status: ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    1
}

/// The command as a person would type it, for messages: arguments with anything but
/// `[A-Za-z0-9_./:=@%+,-]` single-quoted. Display only; the command is never run by a shell.
pub fn display(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn appends_or_replaces_the_placeholder() {
        let sel = || Some(v(&["a b", "c"]));
        assert_eq!(
            with_selection(&v(&["pytest", "-q"]), sel(), Runner::Pytest),
            v(&["pytest", "-q", "a b", "c"])
        );
        assert_eq!(
            with_selection(
                &v(&["sh", "-c", "x \"$@\"", "sh", "{tests}", "--end"]),
                sel(),
                Runner::Pytest
            ),
            v(&["sh", "-c", "x \"$@\"", "sh", "a b", "c", "--end"])
        );
        assert_eq!(
            with_selection(&v(&["pytest", "{tests}", "-q"]), None, Runner::Pytest),
            v(&["pytest", "-q"])
        );
    }

    #[test]
    fn cargo_gets_its_separator_once() {
        let sel = || Some(v(&["--exact", "t"]));
        assert_eq!(
            with_selection(&v(&["cargo", "test"]), sel(), Runner::Cargo),
            v(&["cargo", "test", "--", "--exact", "t"])
        );
        assert_eq!(
            with_selection(
                &v(&["cargo", "test", "--", "--nocapture"]),
                sel(),
                Runner::Cargo
            ),
            v(&["cargo", "test", "--", "--nocapture", "--exact", "t"])
        );
        assert_eq!(
            with_selection(
                &v(&["sh", "-c", "cargo test -- \"$@\"", "sh"]),
                sel(),
                Runner::Cargo
            ),
            v(&["sh", "-c", "cargo test -- \"$@\"", "sh", "--exact", "t"])
        );
    }

    #[test]
    fn displays_quoted() {
        assert_eq!(
            display(&v(&["go", "-run=^(A)$", "it's"])),
            "go '-run=^(A)$' 'it'\\''s'"
        );
    }
}
