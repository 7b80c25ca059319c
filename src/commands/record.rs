//! `fedtest record`: one build's JUnit results into the history, then retrain.

use std::path::Path;

use crate::ci::Env;
use crate::cli::RecordArgs;
use crate::config::Config;
use crate::error::Result;
use crate::output::Printer;
use crate::record;

pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &RecordArgs,
    env: &Env,
    printer: &Printer,
) -> Result<()> {
    // Parse everything before touching the store: a bad report leaves the history as it was.
    let results = record::read_reports(&args.junit, config, printer)?;
    let build = super::resolve_build(&args.build, env, printer)?;
    record::record_results(
        data_dir,
        config,
        &results,
        build,
        !args.no_train,
        env,
        printer,
    )
}
