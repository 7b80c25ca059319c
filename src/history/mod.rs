//! The local test history: per-test aggregates, a bounded window of raw results, co-change
//! counts and training examples, in one SQLite file.

pub mod flaky_rows;
pub mod state;
pub mod stats;
pub mod store;

pub use store::{Begun, RecordOutcome, Recording, Rows, Store, StoreError};
