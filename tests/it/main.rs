//! Integration tests driving the real binary: one test binary, one module per area.

mod architecture;
mod changes;
mod ci_clients;
mod ci_report;
mod cli;
mod demo;
mod docs;
mod federation;
mod first_hour;
mod flaky;
mod formats;
mod hardening;
mod import;
mod model_eval;
mod plan;
mod postgres;
mod record;
mod runners;
mod server_hardening;
mod store;
mod strategy;
mod util;
