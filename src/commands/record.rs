//! `fedtest record`: one build's JUnit results into the history, then retrain.

use std::path::Path;

use crate::ci::Env;
use crate::cli::RecordArgs;
use crate::config::Config;
use crate::error::Result;
use crate::output::Printer;

pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &RecordArgs,
    env: &Env,
    printer: &Printer,
) -> Result<()> {
    super::record_reports(
        data_dir,
        config,
        &args.junit,
        &args.build,
        !args.no_train,
        env,
        printer,
    )
}
