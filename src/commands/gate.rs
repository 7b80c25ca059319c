//! `fedtest gate`: see [`crate::gate`].

use std::path::Path;

use crate::ci::Env;
use crate::cli::GateArgs;
use crate::config::Config;
use crate::error::Result;
use crate::output::Printer;

pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &GateArgs,
    env: &Env,
    printer: &Printer,
) -> Result<()> {
    let targets = args.ci.targets(env);
    crate::gate::run(data_dir, config, &args.junit, &targets, env, printer)
}
