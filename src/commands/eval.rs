//! `fedtest eval`: resolve the settings, then [`crate::eval::workflow::eval`].

use std::path::Path;

use crate::ci::Env;
use crate::cli::{EvalArgs, EvalFormat};
use crate::config::Config;
use crate::error::Result;
use crate::eval::workflow::{EvalStep, eval};
use crate::output::Printer;
use crate::report::Targets;

pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &EvalArgs,
    env: &Env,
    printer: &Printer,
) -> Result<()> {
    let step = EvalStep {
        warmup: args.warmup,
        html: args.html.clone(),
        json: args.json || args.format == EvalFormat::Json,
        // Only the job summary: eval sets no step outputs.
        targets: Targets::resolve(
            args.no_ci_report,
            Targets {
                step_summary: args.step_summary.clone(),
                ..Targets::default()
            },
            env,
        ),
    };
    eval(data_dir, config, &step, printer)
}
