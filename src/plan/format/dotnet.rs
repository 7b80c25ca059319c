//! `dotnet`: `--filter` and `FullyQualifiedName=Ns.Class.Method|…`, one a line, for
//! `dotnet test`.
//!
//! ```text
//! --filter
//! FullyQualifiedName=App.Tests.MathTests.Adds|FullyQualifiedName~App.Tests.MathTests.Theory
//! ```
//!
//! JunitXml.TestLogger writes the class's full name as the classname and the test's display
//! name as the name — the method (`Adds`), or with xUnit the full method name
//! (`App.Tests.MathTests.Adds`), plus arguments for a theory or test case
//! (`Theory(a: 1)`). A plain method becomes an exact `FullyQualifiedName=` term; a test with
//! arguments becomes `FullyQualifiedName~` with its method (every case of the method runs,
//! since adapters differ in whether the full name carries the arguments). Filter operators in
//! names are escaped with `\`.
//!
//! Checked only against the documented filter syntax: no .NET SDK is installable here.
//!
//! **Only selection applies**: the adapters order tests themselves.

use super::Selector;

pub struct Dotnet;

impl Selector for Dotnet {
    fn args(&self, ids: &[&str]) -> Vec<String> {
        if ids.is_empty() {
            return Vec::new();
        }
        let mut terms = Vec::new();
        for id in ids {
            let (class, name) = super::split_first(id);
            let name = name
                .strip_prefix(class)
                .and_then(|n| n.strip_prefix('.'))
                .unwrap_or(name);
            let (method, operator) = match name.split_once('(') {
                Some((method, _)) => (method.trim_end(), '~'),
                None => (name, '='),
            };
            let full = if class.is_empty() {
                method.to_owned()
            } else {
                format!("{class}.{method}")
            };
            super::push_unique(
                &mut terms,
                format!("FullyQualifiedName{operator}{}", escape(&full)),
            );
        }
        vec!["--filter".to_owned(), terms.join("|")]
    }
}

/// Escape the characters the vstest filter grammar gives a meaning.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '(' | ')' | '&' | '|' | '=' | '!' | '~' | ',') {
            out.push('\\');
        }
        if c.is_control() {
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_methods_and_parametrised_families() {
        assert_eq!(
            Dotnet.args(&[
                "App.Tests.MathTests::Adds",
                "App.Tests.MathTests::App.Tests.MathTests.Theory(a: 1)",
                "App.Tests.MathTests::Theory(a: 2)",
            ]),
            [
                "--filter",
                "FullyQualifiedName=App.Tests.MathTests.Adds|FullyQualifiedName~App.Tests.MathTests.Theory"
            ]
        );
    }
}
