//! `fedtest record`: one build's JUnit results into the history, then retrain.

use std::path::Path;

use crate::ci::Env;
use crate::cli::RecordArgs;
use crate::config::Config;
use crate::config::env::Vars;
use crate::error::Result;
use crate::output::Printer;
use crate::record::Learn;

pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &RecordArgs,
    env: &Env,
    vars: &Vars,
    printer: &Printer,
) -> Result<()> {
    crate::record::record_reports(
        data_dir,
        config,
        &args.junit,
        &args.build.spec(),
        (!args.no_train).then(|| Learn::new(config, vars)).as_ref(),
        env,
        printer,
    )
}
