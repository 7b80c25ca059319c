//! How tests and commits are keyed: a test's module and family (the groups whose history a
//! new test inherits), whether a changed file is a test's own, and the stable hash behind
//! every reproducible choice. Below `history`, `features`, `flaky` and `plan`, which all key
//! tests the same way.

/// The module of a test: everything before the last `::` (its file or class).
pub fn module_of(id: &str) -> &str {
    id.rsplit_once("::").map_or("", |(m, _)| m)
}

/// The family of a test: its id without a trailing parameter list (`test_x[1-2]`) or
/// sub-test path (`TestX/case`), so a new variant inherits its siblings' history.
pub fn family_of(id: &str) -> &str {
    let start = id.rfind("::").map_or(0, |i| i + 2);
    let name = &id[start..];
    let cut = match name.find('[') {
        Some(i) if i > 0 && name.ends_with(']') => i,
        _ => name.find('/').filter(|&i| i > 0).unwrap_or(name.len()),
    };
    &id[..start + cut]
}

/// Key of a module in `history::state::State::groups`.
pub fn module_key(id: &str) -> String {
    format!("m:{}", module_of(id))
}

/// Key of a family in `history::state::State::groups`.
pub fn family_key(id: &str) -> String {
    format!("f:{}", family_of(id))
}

/// `tests/test_api.py` → `tests.test_api`: the path without its extension, dotted.
pub fn file_stem(path: &str) -> String {
    let slash = path.rfind('/').map_or(0, |i| i + 1);
    let stem = match path.rfind('.') {
        Some(dot) if dot > slash => &path[..dot],
        _ => path,
    };
    stem.replace(['/', '\\'], ".")
}

/// The test's own dotted stem: its module (or id), e.g. `tests.test_api.TestX`.
pub fn test_stem(id: &str) -> String {
    let m = module_of(id);
    (if m.is_empty() { id } else { m }).replace(['/', '\\'], ".")
}

/// Whether a test's dotted stem is a file's stem, or lies inside it (a class in the file).
pub fn stem_matches(test_stem: &str, file_stem: &str) -> bool {
    !file_stem.is_empty()
        && (test_stem == file_stem
            || test_stem
                .strip_prefix(file_stem)
                .is_some_and(|rest| rest.starts_with('.')))
}

/// Whether a changed path is the test's own file: the report's `file` attribute, or the
/// dotted class/module name (Python, Java, …) matching the path.
pub fn is_own_file(id: &str, file: Option<&str>, changed: &str) -> bool {
    if let Some(f) = file {
        let f = f.trim_start_matches("./");
        if changed == f
            || changed.ends_with(&format!("/{f}"))
            || f.ends_with(&format!("/{changed}"))
        {
            return true;
        }
    }
    stem_matches(&test_stem(id), &file_stem(changed))
}

/// Whether any of the changed files is the test's own file.
pub fn own_file_changed(id: &str, file: Option<&str>, changed: &[&str]) -> bool {
    changed.iter().any(|c| is_own_file(id, file, c))
}

/// A stable 64-bit hash (FNV-1a) — std's hasher is randomly seeded per process.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_and_family() {
        assert_eq!(
            module_of("tests.test_api.TestX::test_a[1-2]"),
            "tests.test_api.TestX"
        );
        assert_eq!(
            family_of("tests.test_api.TestX::test_a[1-2]"),
            "tests.test_api.TestX::test_a"
        );
        assert_eq!(family_of("pkg::TestParam/n=3"), "pkg::TestParam");
        assert_eq!(family_of("[odd]"), "[odd]");
        assert_eq!(module_of("bare"), "");
    }

    #[test]
    fn own_file_from_attribute_or_dotted_class() {
        assert!(is_own_file(
            "x::t",
            Some("tests/test_api.py"),
            "tests/test_api.py"
        ));
        assert!(is_own_file(
            "tests.test_api.TestX::t",
            None,
            "tests/test_api.py"
        ));
        assert!(!is_own_file("tests.test_api.TestX::t", None, "src/api.py"));
        assert!(!is_own_file(
            "tests.test_apix::t",
            None,
            "tests/test_api.py"
        ));
    }
}
