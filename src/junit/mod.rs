//! Reading JUnit XML reports into one result per test.
//!
//! `reader` streams one report into raw [`Attempt`]s (one per `<testcase>` row, with the
//! retries some runners embed in it); `group` folds the attempts of a build — reruns,
//! duplicate rows, several files — into one [`TestCase`] per canonical id; `paths` expands
//! the files, directories and globs a user passes; `source` finds a test's file and line in
//! the checkout when the report does not name them. The dialects covered, and the real
//! reports they were checked against, are listed in `tests/fixtures/junit/README.md`.

mod error;
mod group;
mod model;
mod paths;
mod position;
mod reader;
mod skip;
mod source;

#[cfg(test)]
mod tests;

pub use error::JunitError;
pub use group::{Grouper, group};
pub use model::{Attempt, Limits, MAX_TEST_SECONDS, Outcome, Status, TestCase};
pub use paths::expand_paths;
pub use reader::{read_file, read_from, read_reports};
pub use source::locate;
