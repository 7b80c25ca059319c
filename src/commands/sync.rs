//! `fedtest sync`, and the sync that `record` runs when a server is configured.

use std::path::Path;
use std::time::Duration;

use crate::ci::Env;
use crate::cli::SyncArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::federation::{self, client::Limits};
use crate::model::train::TrainOptions;
use crate::output::Printer;

pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &SyncArgs,
    env: &Env,
    printer: &Printer,
) -> Result<()> {
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err(Error::Usage(
            "--timeout must be a positive number of seconds".into(),
        ));
    }
    let settings = federation::Settings {
        server: args.server.clone(),
        token: env.get("FEDTEST_TOKEN").map(str::to_owned),
        dry_run: args.dry_run,
        strict: args.strict,
        limits: Limits {
            total: Duration::from_secs_f64(args.timeout),
            ..Limits::default()
        },
        train: TrainOptions::for_plan(&config.plan),
    };
    federation::sync(data_dir, &settings, printer)
}

/// After `record` retrained: sync when `FEDTEST_SERVER` is set. Never fails the record.
pub fn after_record(data_dir: &Path, train: &TrainOptions, env: &Env, printer: &Printer) {
    let Some(server) = env.get("FEDTEST_SERVER") else {
        return;
    };
    let settings = federation::Settings {
        server: Some(server.to_owned()),
        token: env.get("FEDTEST_TOKEN").map(str::to_owned),
        train: train.clone(),
        ..federation::Settings::default()
    };
    if let Err(e) = federation::sync(data_dir, &settings, printer) {
        printer.warn(&format!(
            "federation sync failed: {e}; keeping the local model"
        ));
    }
}
