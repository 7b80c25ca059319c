//! `fedtest sync` (the sync `record` runs when a server is configured is in `crate::record`);
//! the server from `--server` or `FEDTEST_SERVER`, the token from `FEDTEST_TOKEN` (`crate::config::env`).

use std::path::Path;
use std::time::Duration;

use crate::cli::SyncArgs;
use crate::config::Config;
use crate::config::env::Vars;
use crate::error::{Error, Result};
use crate::federation::{self, client::Limits};
use crate::model::train::TrainOptions;
use crate::output::Printer;

pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &SyncArgs,
    vars: &Vars,
    printer: &Printer,
) -> Result<()> {
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err(Error::Usage(
            "--timeout must be a positive number of seconds".into(),
        ));
    }
    let settings = federation::Settings {
        server: args.server.clone(),
        token: vars.token.clone(),
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
