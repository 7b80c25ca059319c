//! `fedtest plan`: order and select the candidates. fedtest's own trouble never fails or
//! shrinks the pipeline: any internal error or panic prints every candidate, warns, exits 0;
//! `--from-history` without a readable history prints nothing and signals a full run.

use std::io::Write;
use std::path::Path;

use crate::ci::Env;
use crate::cli::PlanArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::output::Printer;
use crate::plan::Budget;
use crate::plan::describe::{candidate_notes, explain, summary};
use crate::plan::format::Format;
use crate::plan::workflow::{from_history, plan_or_everything, remember};
use crate::report::{self, PlanFacts, Report};

pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &PlanArgs,
    env: &Env,
    printer: &Printer,
) -> Result<()> {
    // User errors first: these are the caller's to fix, and there is no candidate list to fall back to.
    let budget = super::budget(args.budget.as_deref(), config)?;
    let candidates = match &args.tests {
        Some(path) => super::read_lines(Path::new(path), printer)?,
        None => match from_history(data_dir) {
            Ok(ids) => ids,
            Err(why) => return run_everything(data_dir, config, args, env, budget, &why, printer),
        },
    };
    let build = super::resolve_build(&args.build, env, printer)?;

    let plan = plan_or_everything(data_dir, config, budget, &candidates, &build, args.explain);
    for w in &plan.warnings {
        printer.warn(w);
    }
    candidate_notes(&plan, printer);
    if plan.whole_command() {
        let why = plan.full_run.clone().unwrap_or_default();
        return run_everything(data_dir, config, args, env, budget, &why, printer);
    }
    // The candidates' own syntax, unless told: pytest node ids in, pytest node ids out, so
    // the plan can be handed straight back to pytest (issue 13).
    let format = args.format.unwrap_or_else(|| {
        if plan
            .candidates
            .as_ref()
            .is_some_and(|c| c.pytest_node_ids > 0)
        {
            printer.info(
                "printing pytest node ids, the candidates' own syntax (`--format` to choose)",
            );
            Format::Pytest
        } else {
            Format::List
        }
    });
    printer.info(&summary(&plan));
    if args.explain && format != Format::Json {
        printer.detail(&explain(&plan));
    }
    let plan_file = args
        .plan_file
        .as_deref()
        .and_then(|path| super::write_plan_file(path, &plan, printer));
    let deselected = remember(data_dir, &plan, &build, printer)
        .filter(|_| plan.deselected > 0)
        .map(|(_, path)| path);
    if let Some(path) = &deselected {
        printer.info(&format!("the deselected tests are listed in {path}"));
    }
    let targets = args.ci.targets(env);
    if !targets.is_empty() {
        let mut report = Report::new(report::Command::Plan);
        report.plan = Some(PlanFacts {
            plan_file,
            deselected_file: deselected,
            ..PlanFacts::from_plan(&plan)
        });
        report.flaky = report::known_flaky(data_dir, config);
        report::publish(&targets, &report, printer);
    }
    let mut out = printer.stdout();
    format
        .formatter()
        .write(&plan, &mut out)
        .map_err(Error::Output)?;
    out.flush().map_err(Error::Output)
}

/// `--from-history` with nothing to plan from: there is no candidate list, so the only safe
/// answer is the unmodified test command. Nothing on stdout (an empty selection must not be
/// mistaken for one), a warning, the `full-run` signal in the CI report
/// (`full-run=true` / `FEDTEST_FULL_RUN=true`), exit 0.
fn run_everything(
    data_dir: &Path,
    config: &Config,
    args: &PlanArgs,
    env: &Env,
    budget: Budget,
    why: &str,
    printer: &Printer,
) -> Result<()> {
    printer.warn(&format!(
        "{why}; nothing is printed: run the unmodified test command"
    ));
    let targets = args.ci.targets(env);
    if !targets.is_empty() {
        let mut report = Report::new(report::Command::Plan);
        report.plan = Some(PlanFacts::whole_command(budget.to_string(), why.to_owned()));
        report.flaky = report::known_flaky(data_dir, config);
        report::publish(&targets, &report, printer);
    }
    Ok(())
}
