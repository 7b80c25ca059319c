//! What one CI step does, end to end, once its settings are resolved: `fedtest plan`
//! ([`plan`]) and `fedtest run` ([`run`]). Each is one function over plain settings (no clap
//! types); the commands only resolve those settings.

pub mod plan;
pub mod run;
