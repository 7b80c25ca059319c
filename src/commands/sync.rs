//! `fedtest sync` (the sync `record` runs when a server is configured is in `crate::record`).

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
