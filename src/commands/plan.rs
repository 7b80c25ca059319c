//! `fedtest plan`: resolve the settings, then [`crate::step::plan`].

use std::path::{Path, PathBuf};

use crate::ci::Env;
use crate::cli::PlanArgs;
use crate::config::Config;
use crate::error::Result;
use crate::output::Printer;
use crate::step::plan::{PlanStep, plan};

pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &PlanArgs,
    env: &Env,
    printer: &Printer,
) -> Result<()> {
    let step = PlanStep {
        budget: config.plan.budget_or(args.budget.as_deref())?,
        tests: args.tests.as_deref().map(PathBuf::from),
        build: args.build.spec(),
        explain: args.explain,
        format: args.format,
        plan_file: args.plan_file.clone(),
        targets: args.ci.targets(env),
    };
    plan(data_dir, config, &step, env, printer)
}
