//! Integration tests driving the real binary: one test binary, one module per area.

mod cli;
mod formats;
mod model_eval;
mod plan;
mod record;
mod store;
mod util;
