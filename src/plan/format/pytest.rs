//! `pytest`: one pytest node id a line, in run order — an args file for `pytest @plan.args`
//! (pytest ≥ 8.2), or arguments for `fedtest run`.
//!
//! ```text
//! tests/unit/test_io.py::TestReader::test_empty
//! tests/unit/test_io.py::test_param[with space [x] 'q' "dq" \xfc]
//! ```
//!
//! pytest's JUnit writes the node id's path with `/` turned into `.` and `.py` dropped as the
//! classname, followed by any classes (`tests.unit.test_io.TestReader`), and the function name
//! with its parameter id as the name. The mapping back takes the trailing classname segments
//! that start with an upper-case letter as classes (pytest collects classes named `Test*` by
//! default) and the rest as the module path; a directory with a dot in its name, or a module
//! whose name starts with an upper-case letter, is not mapped back correctly. Parameter ids
//! are passed exactly as the report has them (pytest escapes non-ASCII the same way in both).
//!
//! **Order is honoured**: pytest runs node ids given as arguments in the order given.

use super::{Selector, split_first};

pub struct Pytest;

impl Selector for Pytest {
    fn args(&self, ids: &[&str]) -> Vec<String> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            super::push_unique(&mut out, node_id(id));
        }
        out
    }
}

/// The pytest node id of a canonical id.
fn node_id(id: &str) -> String {
    // pytest's classname never contains `::`; a parameter id may, so split at the first one.
    let (classname, name) = split_first(id);
    if classname.is_empty() {
        return name.to_owned();
    }
    let segments: Vec<&str> = classname.split('.').collect();
    let module_len = segments
        .iter()
        .rposition(|s| !s.starts_with(|c: char| c.is_ascii_uppercase()))
        .map_or(1, |i| i + 1);
    let mut node = segments[..module_len].join("/");
    node.push_str(".py");
    for class in &segments[module_len..] {
        node.push_str("::");
        node.push_str(class);
    }
    node.push_str("::");
    node.push_str(name);
    node
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_modules_classes_and_parameters() {
        assert_eq!(
            node_id("test_sample::test_passes"),
            "test_sample.py::test_passes"
        );
        assert_eq!(
            node_id("tests.unit.test_io.TestReader.TestNested::test_x"),
            "tests/unit/test_io.py::TestReader::TestNested::test_x"
        );
        assert_eq!(
            node_id(r#"test_sample::test_param[with space [x] 'q' "dq" \xfc]"#),
            r#"test_sample.py::test_param[with space [x] 'q' "dq" \xfc]"#
        );
        assert_eq!(node_id("test_a::test_p[a::b]"), "test_a.py::test_p[a::b]");
        assert_eq!(node_id("lonely"), "lonely");
    }
}
