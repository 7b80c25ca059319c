//! Integration tests driving the real binary: one test binary, one module per area.

mod ci_clients;
mod cli;
mod federation;
mod flaky;
mod formats;
mod import;
mod model_eval;
mod plan;
mod record;
mod runners;
mod store;
mod util;
