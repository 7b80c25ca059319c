//! Flaky tests: evidence from the history (`score`, folded in per build by `update` and kept
//! in the store's `flaky` table), and the listing `fedtest flaky` prints (`report`). The quarantine file lives in
//! `quarantine`, owners in `codeowners`.

pub mod listing;
pub mod report;
pub mod score;
pub mod update;

pub use crate::history::flaky_rows::FlakyRow;
pub use report::{Listed, Report, ReportFormat, sort_listed};
pub use score::{DEFAULT_THRESHOLD, FlakyState, Observation, Signal};
