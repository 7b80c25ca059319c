//! The data a report turns into: raw attempts, and one grouped result per test.

/// The result of one test in one build, after all its attempts are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
    /// Failed at least once and passed at least once in the same build.
    Flaky,
}

/// How one `<testcase>` row ended, as the report states it.
///
/// `Errored` is kept apart from `Failed` because runners that distinguish them (pytest,
/// Surefire, PHPUnit) mean different things by it; both count as a failed execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Passed,
    Failed,
    Errored,
    Skipped,
}

impl Status {
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::Errored)
    }
}

/// One `<testcase>` row of one report, before grouping.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// `classname`, else `class`, trimmed; empty when the row has neither.
    pub classname: String,
    pub name: String,
    /// The row's `file` attribute, else the nearest enclosing `<testsuite file=…>`.
    pub file: Option<String>,
    /// The row's `line` attribute (pytest xunit1, PHPUnit): where the test is defined.
    pub line: Option<u32>,
    /// The row's final result.
    pub status: Status,
    /// Seconds (`time`), 0 when missing or unusable.
    pub time: f64,
    /// Earlier failed executions reported inside this row: `flakyFailure`/`flakyError` (the
    /// row passed in the end) or `rerunFailure`/`rerunError` (it kept failing). Written by
    /// nextest and Surefire; 0 for runners that repeat the whole `<testcase>` instead.
    pub embedded_failures: u32,
    /// Sum of the `time` attributes of those elements (nextest sets them, Surefire does not).
    pub embedded_time: f64,
}

impl Attempt {
    /// Canonical test id: `<classname>::<name>`, or `<name>` without a classname.
    pub fn id(&self) -> String {
        test_id(&self.classname, &self.name)
    }

    /// Executions this row stands for.
    pub fn executions(&self) -> u32 {
        1 + self.embedded_failures
    }
}

pub(crate) fn test_id(classname: &str, name: &str) -> String {
    if classname.is_empty() {
        name.to_owned()
    } else {
        let mut id = String::with_capacity(classname.len() + 2 + name.len());
        id.push_str(classname);
        id.push_str("::");
        id.push_str(name);
        id
    }
}

/// One test's result in one build, after grouping all its attempts (reruns, duplicate rows,
/// several files).
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// Canonical id: `<classname>::<name>`, or just `<name>` when classname is empty/absent.
    pub id: String,
    pub classname: String,
    pub name: String,
    /// From a `file` attribute where the dialect gives one (pytest xunit1, PHPUnit, jest-junit).
    pub file: Option<String>,
    /// From a `line` attribute (pytest xunit1, PHPUnit); only for annotations, not stored.
    pub line: Option<u32>,
    pub outcome: Outcome,
    /// Seconds, summed over all attempts; finite and >= 0.
    pub duration: f64,
    /// Executions seen (1 when there was no retry).
    pub attempts: u32,
    pub failed_attempts: u32,
}

/// The longest a single test is believed to take, seconds (six hours: a GitHub-hosted job's
/// own limit). A report's `time` beyond it (`1e308`) is clamped by `record`, with a warning,
/// and a stored estimate beyond it is read as this bound: one bad number must not make
/// duration estimates infinite, or a budget meaningless, for thousands of builds (issue 11).
pub const MAX_TEST_SECONDS: f64 = 6.0 * 3600.0;

/// Bounds on what one report may cost to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Larger reports are refused before they are read.
    pub max_file_bytes: u64,
    /// Deepest element nesting accepted (PHPUnit nests a suite per class and per data provider).
    pub max_depth: usize,
    /// Refuse a test whose id or suite name would not print as it is
    /// ([`crate::text::printable_id`]): `record` does, so every id in the history prints byte
    /// for byte. `gate` reads such reports (and prints the names escaped).
    pub printable_ids: bool,
    /// Most `<testcase>` rows read from one report (`fedtest import` bounds a run's rows
    /// with it; unbounded elsewhere).
    pub max_test_cases: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 512 * 1024 * 1024,
            max_depth: 64,
            printable_ids: false,
            max_test_cases: u64::MAX,
        }
    }
}
