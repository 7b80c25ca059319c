//! Candidates from the runner itself. `fedtest run` without `--tests` asks pytest for its
//! collection (`--collect-only -q`), so the plan knows every test — new ones included — not
//! only those the history has seen, and a plan that runs everything can still pass them in
//! its order (pytest honours it). Other runners' listings name files or packages, not tests,
//! or cannot be told apart from a run; they keep the history's tests.

use std::path::Path;

use super::command::PLACEHOLDER;

/// The command that lists `command`'s tests, when `command` runs pytest (`pytest …`,
/// `py.test …`, `python -m pytest …`): the same arguments without the report options and the
/// placeholder, plus `--collect-only` and as many `-q`/`-v` as it takes to print one node id
/// a line.
pub fn pytest_collection(command: &[String]) -> Option<Vec<String>> {
    let (program, rest) = command.split_first()?;
    let name = Path::new(program).file_name()?.to_str()?;
    let args_from = if name == "pytest" || name == "py.test" {
        1
    } else if name.starts_with("python")
        && rest.first().is_some_and(|a| a == "-m")
        && rest.get(1).is_some_and(|a| a == "pytest")
    {
        3
    } else {
        return None;
    };
    let mut out: Vec<String> = command[..args_from].to_vec();
    let mut verbosity = 0i32;
    let mut args = command[args_from..].iter();
    while let Some(a) = args.next() {
        if a == PLACEHOLDER {
            continue;
        }
        // A report written by the collection would only be overwritten by the run.
        if a == "--junitxml" || a == "--junit-xml" {
            args.next();
            continue;
        }
        if a.starts_with("--junitxml=") || a.starts_with("--junit-xml=") {
            continue;
        }
        if a == "--quiet" {
            verbosity -= 1;
        } else if a == "--verbose" {
            verbosity += 1;
        } else if let Some(flags) = a.strip_prefix('-').filter(|f| !f.is_empty()) {
            if flags.chars().all(|c| c == 'q') {
                verbosity -= flags.len() as i32;
            } else if flags.chars().all(|c| c == 'v') {
                verbosity += flags.len() as i32;
            }
        }
        out.push(a.clone());
    }
    out.push("--collect-only".to_owned());
    // `-q` once, from wherever the command's own flags leave it: one node id a line.
    let (flag, n) = if verbosity >= -1 {
        ("-q", verbosity + 1)
    } else {
        ("-v", -1 - verbosity)
    };
    out.extend(std::iter::repeat_n(flag.to_owned(), n as usize));
    Some(out)
}

/// The candidates in pytest's collection output: node ids (`-q`) or, when a configuration
/// adds another `-q`, test files (`tests/test_a.py: 3`). Everything else (the summary, the
/// warnings) is not a candidate.
pub fn pytest_candidates(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter_map(|l| {
            if l.contains("::") && !l.contains(char::is_whitespace) || l.contains(".py::") {
                return Some(l.to_owned());
            }
            let (file, count) = l.rsplit_once(": ")?;
            (file.ends_with(".py") && count.chars().all(|c| c.is_ascii_digit()))
                .then(|| file.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_collection_command_keeps_the_arguments_and_drops_the_report() {
        assert_eq!(
            pytest_collection(&v(&["pytest", "--junitxml=r.xml", "tests", "{tests}"])),
            Some(v(&["pytest", "tests", "--collect-only", "-q"]))
        );
        assert_eq!(
            pytest_collection(&v(&[
                "python3",
                "-m",
                "pytest",
                "-q",
                "--junitxml",
                "r.xml"
            ])),
            Some(v(&["python3", "-m", "pytest", "-q", "--collect-only"]))
        );
        assert_eq!(
            pytest_collection(&v(&["/usr/bin/pytest", "-qq", "-x"])),
            Some(v(&["/usr/bin/pytest", "-qq", "-x", "--collect-only", "-v"]))
        );
        assert_eq!(
            pytest_collection(&v(&["pytest", "-vv"])),
            Some(v(&["pytest", "-vv", "--collect-only", "-q", "-q", "-q"]))
        );
        for not in [
            &["sh", "-c", "pytest"][..],
            &["python3", "run.py"],
            &["make", "test"],
        ] {
            assert_eq!(pytest_collection(&v(not)), None, "{not:?}");
        }
    }

    #[test]
    fn node_ids_and_files_are_read_from_the_listing() {
        let out = "tests/test_a.py::test_x\ntests/test_a.py::test_p[a b]\n\n\
                   tests/test_b.py: 3\n8 tests collected in 0.01s\n";
        assert_eq!(
            pytest_candidates(out),
            [
                "tests/test_a.py::test_x",
                "tests/test_a.py::test_p[a b]",
                "tests/test_b.py"
            ]
        );
    }
}
