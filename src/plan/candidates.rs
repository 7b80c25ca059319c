//! Candidates in the form users have them, matched to the ids the history records.
//!
//! The history knows tests by their JUnit ids (`classname::name`), but what a user has at hand
//! is their runner's listing: pytest node ids from `pytest --collect-only -q`
//! (`tests/test_arith.py::test_mul`, recorded as `tests.test_arith::test_mul`), test files
//! (Jest, Vitest, pytest), Go packages or JVM classes. Issue 13: node ids never matched, so
//! every test got the same probability and nothing learned was used, and the listing's summary
//! line ("8 tests collected in 0.01s") was planned as a test. So each line is read as:
//!
//! 1. a recorded id, as it is;
//! 2. a pytest node id, mapped to its JUnit id (path → dotted module, classes appended — the
//!    inverse of `format::pytest`), also when the history recorded it from another root
//!    directory (a unique match on a dotted suffix);
//! 3. a file, package or class the history has tests of: those tests;
//! 4. otherwise, when it looks like a test id, a new test (it always runs); a pytest file
//!    stays a path, which pytest runs whole;
//! 5. a file or package the history has no test of — no runner syntax fedtest prints can name
//!    the tests in it, so the plan runs the whole command ([`Candidates::unnamed`]);
//! 6. anything else (a line with spaces and no `::`: a summary, a log line) is no test id: it
//!    is counted and left out, never planned.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::history::stats::TestStats;

/// The candidate list, read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Candidates {
    /// Test ids to plan, de-duplicated, in the order given (an expanded file or package in
    /// its tests' id order).
    pub ids: Vec<String>,
    /// Files or packages given that the history has no test of (see the module docs, 5).
    pub unnamed: Vec<String>,
    pub facts: Facts,
}

/// What became of the lines, for the plan's JSON and the messages ([`Facts::notes`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Facts {
    /// Non-blank lines given.
    pub given: usize,
    /// Test ids planned.
    pub tests: usize,
    /// Of those, tests the history knows.
    pub known: usize,
    /// Lines in pytest's node-id syntax (`path/test_x.py::Class::test`).
    pub pytest_node_ids: usize,
    /// Lines naming a file, package or class, planned as the tests recorded for it.
    pub expanded: usize,
    /// Files or packages with no recorded test: the whole command runs.
    pub unnamed: usize,
    /// Lines that are no test id, left out; the first of them.
    pub not_test_ids: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_test_id_example: Option<String>,
    /// Whether every line left out is a runner's own chatter (a summary or rule line).
    #[serde(skip)]
    pub only_chatter: bool,
    /// Tests the history knows, and one of them (the least by id), to show what ids look like.
    #[serde(skip)]
    pub recorded: usize,
    #[serde(skip)]
    pub recorded_example: Option<String>,
    #[serde(skip)]
    pub first_unknown: Option<String>,
}

/// A message about the candidates: a warning, or a note (info).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub text: String,
}

/// The recorded tests, indexed for the lookups of [`read`].
struct Known<'a> {
    ids: HashSet<&'a str>,
    /// Classname (the id up to its first `::`) → ids, sorted.
    by_class: HashMap<&'a str, Vec<&'a str>>,
    /// The test's file (`./` removed) → ids, sorted.
    by_file: HashMap<String, Vec<&'a str>>,
    /// Name (after the first `::`) → ids.
    by_name: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Known<'a> {
    fn new(tests: &'a HashMap<String, TestStats>) -> Self {
        let mut k = Known {
            ids: HashSet::with_capacity(tests.len()),
            by_class: HashMap::new(),
            by_file: HashMap::new(),
            by_name: HashMap::new(),
        };
        let mut sorted: Vec<(&String, &TestStats)> = tests.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (id, stats) in sorted {
            let id = id.as_str();
            k.ids.insert(id);
            if let Some((class, name)) = id.split_once("::") {
                k.by_class.entry(class).or_default().push(id);
                k.by_name.entry(name).or_default().push(id);
            }
            if let Some(file) = &stats.file {
                k.by_file.entry(clean_path(file)).or_default().push(id);
            }
        }
        k
    }

    /// The recorded id a converted pytest id stands for: itself, or the one recorded id with
    /// the same name whose classname is a dotted suffix of it or has it as one (pytest run
    /// from another root directory).
    fn pytest_match(&self, id: &str) -> Option<&'a str> {
        if let Some(&k) = self.ids.get(id) {
            return Some(k);
        }
        let (class, name) = id.split_once("::")?;
        let mut found = self.by_name.get(name)?.iter().filter(|k| {
            let kc = k.split_once("::").map_or("", |(c, _)| c);
            dotted_suffix(kc, class) || dotted_suffix(class, kc)
        });
        let first = found.next()?;
        found.next().is_none().then_some(*first)
    }

    /// The recorded tests of a file, package or class named by `line` (empty: none).
    fn expand(&self, line: &str) -> Vec<&'a str> {
        let path = clean_path(line);
        if let Some(ids) = self.by_class.get(path.as_str()) {
            return ids.clone();
        }
        if let Some(ids) = self.by_file.get(&path) {
            return ids.clone();
        }
        if let Some(module) = path.strip_suffix(".py") {
            // A pytest module: its functions and its classes' methods.
            let dotted = module.replace('/', ".");
            let mut classes: Vec<(&str, &Vec<&'a str>)> = self
                .by_class
                .iter()
                .filter(|(c, _)| {
                    c.strip_prefix(dotted.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
                })
                .map(|(c, ids)| (*c, ids))
                .collect();
            classes.sort_by_key(|(c, _)| *c);
            if !classes.is_empty() {
                return classes
                    .into_iter()
                    .flat_map(|(_, ids)| ids.clone())
                    .collect();
            }
        }
        // An absolute path (`jest --listTests`) ending with a recorded file, or a relative
        // package (`./pkg/x`, Go) a recorded import path ends with: when only one matches.
        let absolute = path.starts_with('/');
        let relative = line.starts_with("./") && path.contains('/');
        if !absolute && !relative {
            return Vec::new();
        }
        let mut found = self
            .by_file
            .iter()
            .map(|(f, ids)| (f.as_str(), ids))
            .chain(self.by_class.iter().map(|(c, ids)| (*c, ids)))
            .filter(|(f, _)| {
                f.contains('/')
                    && ((absolute && path.ends_with(&format!("/{f}")))
                        || (relative && f.ends_with(&format!("/{path}"))))
            });
        match (found.next(), found.next()) {
            (Some((_, ids)), None) => ids.clone(),
            _ => Vec::new(),
        }
    }
}

/// `a` ends with `.b` (or is `b`).
fn dotted_suffix(a: &str, b: &str) -> bool {
    !b.is_empty()
        && a.strip_suffix(b)
            .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
}

fn clean_path(p: &str) -> String {
    let p = p.replace('\\', "/");
    p.strip_prefix("./").unwrap_or(&p).to_owned()
}

/// The JUnit id pytest records for a node id (`tests/unit/test_io.py::TestReader::test_x[a::b]`
/// → `tests.unit.test_io.TestReader::test_x[a::b]`); `None` when `line` is no node id of a
/// test.
pub fn from_pytest_node_id(line: &str) -> Option<String> {
    let line = clean_path(line);
    let at = line.find(".py::")?;
    let module = line[..at].replace('/', ".");
    let rest = &line[at + 5..];
    // A parameter id may hold `::` (and anything else): classes end before its `[`.
    let bracket = rest.find('[').unwrap_or(rest.len());
    let (head, params) = rest.split_at(bracket);
    let mut parts: Vec<&str> = head.split("::").collect();
    let name = parts.pop().filter(|n| !n.is_empty())?;
    if module.is_empty() || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut classname = module;
    for class in parts {
        classname.push('.');
        classname.push_str(class);
    }
    Some(format!("{classname}::{name}{params}"))
}

/// Whether an unknown line can be a test id at all: a line with white space and no `::` is a
/// sentence (a summary, a log line), not a test.
fn looks_like_a_test_id(line: &str) -> bool {
    line.contains("::") || !line.chars().any(char::is_whitespace)
}

/// A runner's own summary or rule line (`8 tests collected in 0.01s`, `no tests ran`,
/// `=====`): expected in a listing, so leaving it out is a note, not a warning.
fn is_chatter(line: &str) -> bool {
    let l = line.trim().to_ascii_lowercase();
    if !l.is_empty() && l.chars().all(|c| "=-_~*".contains(c)) {
        return true;
    }
    // "8 tests collected in 0.01s", "=== 1 error in 0.05s ===", "no tests ran in 0.01s".
    let s = l.trim_matches(|c| c == '=' || c == ' ');
    let counted = s
        .split(' ')
        .next()
        .is_some_and(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit() || c == '/'));
    (counted || s.starts_with("no tests")) && s.contains(" in ") && s.ends_with('s')
}

/// A single token the history has no test of that names a file or package rather than a test:
/// a path ending in a file name with an extension, `./…`, `/…`, or a Go import path.
fn looks_like_a_path(line: &str) -> bool {
    if line.contains("::") {
        return false;
    }
    let p = line.replace('\\', "/");
    let last = p.rsplit('/').next().unwrap_or("");
    let first = p.split('/').next().unwrap_or("");
    p.starts_with("./")
        || p.starts_with('/')
        || (p.contains('/') && (last.contains('.') || first.contains('.')))
        || is_test_file(last)
}

/// A file name test runners pick up (`x.test.js`, `x_spec.rb`, `x_test.go`, …).
fn is_test_file(name: &str) -> bool {
    const EXT: &[&str] = &[
        ".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".mts", ".cts", ".go", ".rb", ".php",
    ];
    let lower = name.to_ascii_lowercase();
    EXT.iter().any(|e| {
        lower.strip_suffix(e).is_some_and(|stem| {
            stem.ends_with(".test")
                || stem.ends_with(".spec")
                || stem.ends_with("_test")
                || stem.ends_with("_spec")
                || stem.ends_with("test")
        })
    })
}

/// Read the candidate lines against the recorded tests.
pub fn read(lines: &[String], recorded: &HashMap<String, TestStats>) -> Candidates {
    let known = Known::new(recorded);
    let mut c = Candidates::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut unnamed_seen: HashSet<&str> = HashSet::new();
    let mut junk_is_chatter = true;
    let mut push = |c: &mut Candidates, id: &str, known_id: bool| {
        if seen.insert(id.to_owned()) {
            c.ids.push(id.to_owned());
            c.facts.known += usize::from(known_id);
            if !known_id && c.facts.first_unknown.is_none() {
                c.facts.first_unknown = Some(id.to_owned());
            }
        }
    };
    for line in lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
        c.facts.given += 1;
        if known.ids.contains(line) {
            push(&mut c, line, true);
        } else if let Some(id) = from_pytest_node_id(line) {
            c.facts.pytest_node_ids += 1;
            match known.pytest_match(&id) {
                Some(k) => push(&mut c, k, true),
                None => push(&mut c, &id, false),
            }
        } else if let Some(ids) = (!line.contains("::") && !line.contains(char::is_whitespace))
            .then(|| known.expand(line))
            .filter(|ids| !ids.is_empty())
        {
            c.facts.expanded += 1;
            for id in ids {
                push(&mut c, id, true);
            }
        } else if !looks_like_a_test_id(line) {
            c.facts.not_test_ids += 1;
            junk_is_chatter &= is_chatter(line);
            c.facts
                .not_test_id_example
                .get_or_insert_with(|| line.to_owned());
        } else if line.ends_with(".py") && !line.contains("::") {
            // A pytest file with no recorded test: pytest runs the path whole.
            c.facts.pytest_node_ids += 1;
            push(&mut c, &clean_path(line), false);
        } else if looks_like_a_path(line) {
            if unnamed_seen.insert(line) {
                c.unnamed.push(line.to_owned());
            }
        } else {
            push(&mut c, line, false);
        }
    }
    c.facts.tests = c.ids.len();
    c.facts.unnamed = c.unnamed.len();
    c.facts.only_chatter = junk_is_chatter;
    c.facts.recorded = recorded.len();
    c.facts.recorded_example = recorded.keys().min().cloned();
    c
}

/// `"…"`, cut when long (a log line can be anything).
fn quoted(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    if cut.len() < s.len() {
        format!("\"{cut}…\"")
    } else {
        format!("\"{cut}\"")
    }
}

impl Facts {
    /// What the user must hear about the candidates.
    pub fn notes(&self) -> Vec<Note> {
        let mut notes = Vec::new();
        if self.not_test_ids > 0 {
            let n = self.not_test_ids;
            notes.push(Note {
                warning: !self.only_chatter,
                text: format!(
                    "left out {n} candidate line{} that {} no test id{}: {}",
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "is" } else { "are" },
                    if n == 1 { "" } else { "s, e.g." },
                    quoted(self.not_test_id_example.as_deref().unwrap_or(""))
                ),
            });
        }
        if self.pytest_node_ids > 0 {
            notes.push(Note {
                warning: false,
                text: format!(
                    "read {} candidate{} as pytest node ids ({} of them known to the history)",
                    self.pytest_node_ids,
                    if self.pytest_node_ids == 1 { "" } else { "s" },
                    self.known.min(self.pytest_node_ids)
                ),
            });
        }
        if self.tests > 0 && self.known == 0 && self.recorded > 0 {
            notes.push(Note {
                warning: true,
                text: format!(
                    "none of the {} candidate tests is one the history knows (e.g. {}; recorded \
                     tests look like {}): no test has a history, so every one gets the same \
                     probability and nothing learned is used. Give the ids your JUnit reports \
                     hold, or pytest node ids",
                    self.tests,
                    quoted(self.first_unknown.as_deref().unwrap_or("")),
                    quoted(self.recorded_example.as_deref().unwrap_or(""))
                ),
            });
        }
        notes
    }
}

impl Candidates {
    /// Why the whole command must run: files or packages with no recorded test.
    pub fn unnamed_reason(&self) -> Option<String> {
        let first = self.unnamed.first()?;
        let n = self.unnamed.len();
        Some(format!(
            "{n} candidate{} {} a file or package with no recorded test (e.g. {}): fedtest \
             cannot name the tests in {}, so the whole command runs",
            if n == 1 { "" } else { "s" },
            if n == 1 { "is" } else { "are" },
            quoted(first),
            if n == 1 { "it" } else { "them" }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(ids: &[(&str, Option<&str>)]) -> HashMap<String, TestStats> {
        ids.iter()
            .map(|(id, file)| {
                (
                    (*id).to_owned(),
                    TestStats {
                        runs: 1,
                        file: file.map(str::to_owned),
                        ..TestStats::default()
                    },
                )
            })
            .collect()
    }

    fn lines(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn pytest_node_ids_map_to_junit_ids() {
        for (node, id) in [
            (
                "tests/test_arith.py::test_mul",
                "tests.test_arith::test_mul",
            ),
            (
                "./t/test_a.py::TestX::TestY::test_z",
                "t.test_a.TestX.TestY::test_z",
            ),
            ("test_a.py::test_p[a::b/c d]", "test_a::test_p[a::b/c d]"),
            ("t/test_a.py::TestX::test_p[1]", "t.test_a.TestX::test_p[1]"),
        ] {
            assert_eq!(from_pytest_node_id(node).as_deref(), Some(id), "{node}");
        }
        for not in [
            "tests.test_arith::test_mul",
            "test_a.py",
            "a.py::",
            "8 tests",
        ] {
            assert_eq!(from_pytest_node_id(not), None, "{not}");
        }
    }

    #[test]
    fn the_collect_only_listing_matches_the_history() {
        let h = history(&[
            ("tests.test_arith::test_mul", None),
            ("tests.test_arith::test_add", None),
            ("tests.test_arith.TestDiv::test_by_zero", None),
        ]);
        let c = read(
            &lines(&[
                "tests/test_arith.py::test_mul",
                "tests/test_arith.py::TestDiv::test_by_zero",
                "tests/test_arith.py::test_new",
                "",
                "8 tests collected in 0.01s",
            ]),
            &h,
        );
        assert_eq!(
            c.ids,
            [
                "tests.test_arith::test_mul",
                "tests.test_arith.TestDiv::test_by_zero",
                "tests.test_arith::test_new"
            ]
        );
        assert_eq!(
            (c.facts.given, c.facts.known, c.facts.pytest_node_ids),
            (4, 2, 3)
        );
        assert_eq!(c.facts.not_test_ids, 1);
        let notes = c.facts.notes();
        assert_eq!(
            notes[0],
            Note {
                warning: false,
                text:
                    "left out 1 candidate line that is no test id: \"8 tests collected in 0.01s\""
                        .into()
            }
        );
        assert!(c.unnamed.is_empty());
    }

    #[test]
    fn another_root_directory_matches_on_a_unique_suffix() {
        let h = history(&[("pkg.tests.test_a::test_x", None), ("a::test_y", None)]);
        let c = read(&lines(&["tests/test_a.py::test_x"]), &h);
        assert_eq!(c.ids, ["pkg.tests.test_a::test_x"]);
        let h = history(&[("tests.test_a::test_x", None)]);
        let c = read(&lines(&["repo/tests/test_a.py::test_x"]), &h);
        assert_eq!(c.ids, ["tests.test_a::test_x"]);
    }

    #[test]
    fn files_packages_and_classes_expand_to_their_tests() {
        let h = history(&[
            ("math passes::math passes", Some("src/math.test.js")),
            ("math fails::math fails", Some("src/math.test.js")),
            ("example.com/sample::TestA", None),
            ("example.com/sample::TestB", None),
            ("tests.test_io::test_read", None),
        ]);
        let c = read(
            &lines(&[
                "/home/ci/repo/src/math.test.js",
                "example.com/sample",
                "tests/test_io.py",
                "./src/new.test.js",
                "tests/test_new.py",
            ]),
            &h,
        );
        assert_eq!(
            c.ids,
            [
                "math fails::math fails",
                "math passes::math passes",
                "example.com/sample::TestA",
                "example.com/sample::TestB",
                "tests.test_io::test_read",
                "tests/test_new.py",
            ]
        );
        assert_eq!(c.facts.expanded, 3);
        assert_eq!(c.unnamed, ["./src/new.test.js"]);
        assert!(
            c.unnamed_reason()
                .unwrap()
                .contains("the whole command runs")
        );
    }

    #[test]
    fn sentences_are_left_out_and_lone_names_are_new_tests() {
        let c = read(
            &lines(&[
                "ERROR tests/test_b.py - ImportError",
                "=========== 1 error in 0.05s ===========",
                "TestBrandNew",
                "app.New::brand new",
            ]),
            &HashMap::new(),
        );
        assert_eq!(c.ids, ["TestBrandNew", "app.New::brand new"]);
        assert_eq!(c.facts.not_test_ids, 2);
        let notes = c.facts.notes();
        assert!(notes[0].warning, "not only a runner's summary: {notes:?}");
        assert!(notes[0].text.contains("2 candidate lines"), "{notes:?}");
        assert!(
            notes[0].text.contains("\"ERROR tests/test_b.py"),
            "{notes:?}"
        );
    }

    #[test]
    fn nothing_in_common_with_the_history_is_a_warning() {
        let h = history(&[("tests.test_arith::test_mul", None)]);
        let c = read(&lines(&["t.py.test_mul", "other"]), &h);
        assert_eq!(c.facts.known, 0);
        let notes = c.facts.notes();
        let w = notes.iter().find(|n| n.warning).expect("a warning");
        assert!(
            w.text.contains("none of the 2 candidate tests")
                && w.text.contains("\"tests.test_arith::test_mul\""),
            "{w:?}"
        );
        // No history yet: nothing to have in common.
        assert!(
            read(&lines(&["x::y"]), &HashMap::new())
                .facts
                .notes()
                .is_empty()
        );
    }
}
