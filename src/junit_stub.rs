//! TEMPORARY stand-in for the JUnit reader while it is being written.
use std::path::Path;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
    Flaky,
}
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub id: String,
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    pub outcome: Outcome,
    pub duration: f64,
    pub attempts: u32,
    pub failed_attempts: u32,
}
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_depth: usize,
}
impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 512 << 20,
            max_depth: 64,
        }
    }
}
#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    #[error("{0}")]
    Other(String),
}
pub fn read_reports(inputs: &[String], _limits: &Limits) -> Result<Vec<TestCase>, JunitError> {
    let mut v = Vec::new();
    for p in inputs {
        let text = std::fs::read_to_string(Path::new(p))
            .map_err(|e| JunitError::Other(format!("{p}: {e}")))?;
        for line in text.split("<testcase ").skip(1) {
            let attr = |k: &str| {
                format!(" {line}")
                    .split(&format!(" {k}=\""))
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("")
                    .to_owned()
            };
            let (c, n) = (attr("classname"), attr("name"));
            let head = line.split("</testcase>").next().unwrap_or("");
            let outcome = if head.contains("<failure") || head.contains("<error") {
                Outcome::Failed
            } else if head.contains("<skipped") {
                Outcome::Skipped
            } else {
                Outcome::Passed
            };
            let id = if c.is_empty() {
                n.clone()
            } else {
                format!("{c}::{n}")
            };
            v.push(TestCase {
                id,
                classname: c,
                name: n,
                file: None,
                outcome,
                duration: attr("time").parse().unwrap_or(0.0),
                attempts: 1,
                failed_attempts: 0,
            });
        }
    }
    Ok(v)
}
