//! Flaky tests: evidence from the history (`score`, folded in per build by `update` and kept
//! in the store's `flaky` table), the listing `fedtest flaky` prints (`listing`, `report`), and
//! `fedtest quarantine`'s edits of the reviewed quarantine file (`review`). The file itself is
//! `crate::quarantine`, owners `crate::codeowners`.

pub mod listing;
pub mod report;
pub mod review;
pub mod score;
pub mod update;

pub use crate::history::flaky_rows::FlakyRow;
pub use report::{Listed, Report, ReportFormat, sort_listed};
pub use score::{DEFAULT_THRESHOLD, FlakyState, Observation, Signal};
