//! Where a test is defined in the checkout, for annotations that point at it.
//!
//! Reports name a file and line only in some dialects (pytest xunit1, PHPUnit); pytest's default
//! (xunit2) names neither (issue 16). The class name usually names the file: pytest's
//! `tests.test_x.TestY` is `tests/test_x.py`, a JVM class `com.acme.FooTest` is
//! `src/test/java/com/acme/FooTest.java`. The line is the test's definition in that file
//! (`def test_…`, `void name(`). Nothing is guessed: a file that does not exist, or a
//! definition that is not found, leaves the field empty.

use std::path::{Path, PathBuf};

use super::TestCase;

/// Source roots a JVM class name is looked up under, in order.
const JVM_ROOTS: &[&str] = &[
    "",
    "src/test/java",
    "src/test/kotlin",
    "src/test/groovy",
    "src/main/java",
];
const JVM_EXTENSIONS: &[&str] = &["java", "kt", "groovy"];

/// Fill in `file` and `line` from the checkout at `root` where the report left them out.
/// Files are read at most once each.
pub fn locate(tests: &mut [TestCase], root: &Path) {
    let mut cache: Vec<(PathBuf, Option<String>)> = Vec::new();
    for t in tests {
        if t.file.is_some() && t.line.is_some() {
            continue;
        }
        let file = match &t.file {
            Some(f) => root.join(f).is_file().then(|| f.clone()),
            None => file_of(&t.classname, root),
        };
        let Some(file) = file else { continue };
        if t.line.is_none() {
            let path = root.join(&file);
            let text = match cache.iter().find(|(p, _)| *p == path) {
                Some((_, text)) => text.clone(),
                None => {
                    let text = std::fs::read_to_string(&path).ok();
                    cache.push((path, text.clone()));
                    text
                }
            };
            t.line = text.and_then(|text| line_of(&text, &t.classname, &t.name));
        }
        t.file = Some(file);
    }
}

/// The repository-relative file a dotted class name names, if it exists.
fn file_of(classname: &str, root: &Path) -> Option<String> {
    if classname.is_empty() || classname.contains(['/', '\\']) {
        return None;
    }
    let parts: Vec<&str> = classname.split('.').collect();
    if parts.iter().any(|p| p.is_empty() || *p == "..") {
        return None;
    }
    // pytest: the longest dotted prefix that is a `.py` file (the rest are classes).
    for n in (1..=parts.len()).rev() {
        let file = format!("{}.py", parts[..n].join("/"));
        if root.join(&file).is_file() {
            return Some(file);
        }
    }
    // JVM: the outermost class (`Outer$Inner` → `Outer`).
    let class = classname
        .split('$')
        .next()
        .unwrap_or(classname)
        .replace('.', "/");
    for dir in JVM_ROOTS {
        for ext in JVM_EXTENSIONS {
            let file = if dir.is_empty() {
                format!("{class}.{ext}")
            } else {
                format!("{dir}/{class}.{ext}")
            };
            if root.join(&file).is_file() {
                return Some(file);
            }
        }
    }
    None
}

/// The 1-based line defining test `name` (parameters such as `[3]` or `(int)` dropped), after
/// the line defining its innermost class when the class name names one.
fn line_of(text: &str, classname: &str, name: &str) -> Option<u32> {
    let function = name
        .split(['[', '('])
        .next()
        .unwrap_or(name)
        .rsplit(['.', ' '])
        .next()
        .unwrap_or(name)
        .trim();
    if function.is_empty() {
        return None;
    }
    let class = classname
        .rsplit(['.', '$'])
        .next()
        .filter(|c| c.starts_with(|ch: char| ch.is_ascii_uppercase()));
    let lines: Vec<&str> = text.lines().collect();
    let start = class
        .and_then(|c| lines.iter().position(|l| defines_class(l, c)))
        .unwrap_or(0);
    lines[start..]
        .iter()
        .position(|l| defines_function(l, function))
        .map(|i| (start + i + 1) as u32)
}

fn defines_class(line: &str, class: &str) -> bool {
    let l = line.trim_start();
    ["class ", "object "].iter().any(|kw| {
        l.split(kw).nth(1).is_some_and(|rest| {
            rest.strip_prefix(class)
                .is_some_and(|after| !after.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        })
    })
}

fn defines_function(line: &str, function: &str) -> bool {
    let l = line.trim_start();
    if let Some(rest) = l
        .strip_prefix("def ")
        .or_else(|| l.strip_prefix("async def "))
        .or_else(|| l.strip_prefix("fun "))
    {
        return rest
            .strip_prefix(function)
            .is_some_and(|after| after.trim_start().starts_with('('));
    }
    // Java and friends: `void name(`, `public void name(`.
    l.find(&format!(" {function}("))
        .is_some_and(|i| l[..i].split_whitespace().next_back() == Some("void"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::Outcome;

    fn case(classname: &str, name: &str) -> TestCase {
        TestCase {
            id: format!("{classname}::{name}"),
            classname: classname.to_owned(),
            name: name.to_owned(),
            file: None,
            line: None,
            outcome: Outcome::Failed,
            duration: 0.0,
            attempts: 1,
            failed_attempts: 1,
        }
    }

    #[test]
    fn pytest_class_names_map_to_files_and_def_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tests")).unwrap();
        std::fs::write(
            dir.path().join("tests/test_x.py"),
            "import pytest\n\ndef test_a():\n    pass\n\nclass TestY:\n    def test_b(self):\n        pass\n\n    @pytest.mark.parametrize('n', [1])\n    def test_a(self, n):\n        pass\n",
        )
        .unwrap();
        let mut tests = vec![
            case("tests.test_x", "test_a"),
            case("tests.test_x.TestY", "test_a[1]"),
            case("tests.test_x.TestY", "test_b"),
            case("tests.test_missing", "test_a"),
        ];
        locate(&mut tests, dir.path());
        let got: Vec<_> = tests.iter().map(|t| (t.file.as_deref(), t.line)).collect();
        assert_eq!(
            got,
            [
                (Some("tests/test_x.py"), Some(3)),
                (Some("tests/test_x.py"), Some(11)),
                (Some("tests/test_x.py"), Some(7)),
                (None, None),
            ]
        );
    }

    #[test]
    fn jvm_classes_map_to_test_sources() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src/test/java/com/acme");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("FooTest.java"),
            "class FooTest {\n  @Test\n  public void adds() {}\n  @Test void subtracts() {}\n}\n",
        )
        .unwrap();
        let mut tests = vec![
            case("com.acme.FooTest", "subtracts"),
            case("com.acme.FooTest$Inner", "adds()"),
        ];
        locate(&mut tests, dir.path());
        assert_eq!(
            tests[0].file.as_deref(),
            Some("src/test/java/com/acme/FooTest.java")
        );
        assert_eq!(tests[0].line, Some(4));
        assert_eq!(tests[1].line, Some(3));
    }

    #[test]
    fn a_reported_file_keeps_its_name_and_gains_a_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("test_z.py"), "\ndef test_z():\n    pass\n").unwrap();
        let mut t = case("test_z", "test_z");
        t.file = Some("test_z.py".to_owned());
        let mut tests = vec![t, case("../etc/passwd", "x")];
        locate(&mut tests, dir.path());
        assert_eq!(tests[0].line, Some(2));
        assert_eq!(tests[1].file, None);
    }
}
