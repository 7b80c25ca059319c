//! `fedtest run`'s machinery: split a plan into shards and turn the selection into the test
//! command to execute. The command itself is in `src/commands/run.rs`.

pub mod collect;
mod command;
mod shard;

pub use command::{PLACEHOLDER, display, exit_code, with_selection};
pub use shard::{Shard, assign};
