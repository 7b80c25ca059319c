//! One file per subcommand; each resolves its settings once (command line > environment >
//! `fedtest.toml` > defaults), then calls one library function.

pub mod demo;
pub mod eval;
pub mod flaky;
pub mod gate;
pub mod import;
pub mod model;
pub mod plan;
pub mod quarantine;
pub mod record;
pub mod run;
pub mod serve;
pub mod sync;
