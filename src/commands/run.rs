//! `fedtest run`: resolve the settings, then [`crate::step::run`]; the process ends with the
//! runner's verdict.

use std::path::{Path, PathBuf};

use crate::ci::Env;
use crate::cli::RunArgs;
use crate::config::Config;
use crate::config::env::Vars;
use crate::error::Result;
use crate::output::Printer;
use crate::record::Learn;
use crate::step::run::{RunStep, run as run_step, verdict};

pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &RunArgs,
    env: &Env,
    vars: &Vars,
    printer: &Printer,
) -> Result<()> {
    let step = RunStep {
        command: args.command.clone(),
        runner: args.runner,
        junit: args.junit.clone(),
        tests: args.tests.as_deref().map(PathBuf::from),
        budget: args.budget.clone(),
        shard: args.shard,
        plan_file: args.plan_file.clone(),
        build: args.build.spec(),
        targets: args.ci.targets(env),
        learn: (!args.no_train).then(|| Learn::new(config, vars)),
    };
    run_step(data_dir, config, &step, env, printer).and_then(verdict)
}
