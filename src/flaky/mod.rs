//! Flaky tests: evidence from the history (`score`, kept in the store's `flaky` table by
//! `table`), and the listing `fedtest flaky` prints (`report`). The quarantine file lives in
//! [`crate::quarantine`], owners in [`crate::codeowners`].

pub mod report;
pub mod score;
pub mod table;

pub use report::{Listed, Report, ReportFormat, sort_listed};
pub use score::{DEFAULT_THRESHOLD, FlakyState, Observation, Signal};
pub use table::FlakyRow;
