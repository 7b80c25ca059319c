//! `fedtest plan`: order and select the candidates. fedtest's own trouble never fails or
//! shrinks the pipeline: any internal error or panic prints every candidate, warns, exits 0;
//! `--from-history` without a readable history prints nothing and signals a full run.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::ci::Env;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::inputs::{self, BuildSpec};
use crate::output::Printer;
use crate::plan::Budget;
use crate::plan::describe::{candidate_notes, explain, summary};
use crate::plan::format::Format;
use crate::plan::workflow::{from_history, plan_or_everything, remember, write_plan_file};
use crate::report::{self, PlanFacts, Report, Targets};

/// `fedtest plan`'s settings, resolved.
#[derive(Debug)]
pub struct PlanStep {
    pub budget: Budget,
    /// The candidates' list file (`-`: standard input); `None`: the tests of recent builds.
    pub tests: Option<PathBuf>,
    pub build: BuildSpec,
    pub explain: bool,
    /// `None`: the candidates' own syntax.
    pub format: Option<Format>,
    pub plan_file: Option<PathBuf>,
    pub targets: Targets,
}

pub fn plan(
    data_dir: &Path,
    config: &Config,
    step: &PlanStep,
    env: &Env,
    printer: &Printer,
) -> Result<()> {
    // User errors first: these are the caller's to fix, and there is no candidate list to fall back to.
    let candidates = match &step.tests {
        Some(path) => inputs::read_lines(path, printer)?,
        None => match from_history(data_dir) {
            Ok(ids) => ids,
            Err(why) => return run_everything(data_dir, config, step, &why, printer),
        },
    };
    let build = inputs::resolve_build(&step.build, env, printer)?;

    let plan = plan_or_everything(
        data_dir,
        config,
        step.budget,
        &candidates,
        &build,
        step.explain,
    );
    for w in &plan.warnings {
        printer.warn(w);
    }
    candidate_notes(&plan, printer);
    if plan.whole_command() {
        let why = plan.full_run.clone().unwrap_or_default();
        return run_everything(data_dir, config, step, &why, printer);
    }
    // The candidates' own syntax, unless told: pytest node ids in, pytest node ids out, so
    // the plan can be handed straight back to pytest (issue 13).
    let format = step.format.unwrap_or_else(|| {
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
    if step.explain && format != Format::Json {
        printer.detail(&explain(&plan));
    }
    let plan_file = step
        .plan_file
        .as_deref()
        .and_then(|path| write_plan_file(path, &plan, printer));
    let deselected = remember(data_dir, &plan, &build, printer)
        .filter(|_| plan.deselected > 0)
        .map(|(_, path)| path);
    if let Some(path) = &deselected {
        printer.info(&format!("the deselected tests are listed in {path}"));
    }
    if !step.targets.is_empty() {
        let mut report = Report::new(report::Command::Plan);
        report.plan = Some(PlanFacts {
            plan_file,
            deselected_file: deselected,
            ..PlanFacts::from_plan(&plan)
        });
        report.flaky = report::known_flaky(data_dir, config);
        report::publish(&step.targets, &report, printer);
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
    step: &PlanStep,
    why: &str,
    printer: &Printer,
) -> Result<()> {
    printer.warn(&format!(
        "{why}; nothing is printed: run the unmodified test command"
    ));
    if !step.targets.is_empty() {
        let mut report = Report::new(report::Command::Plan);
        report.plan = Some(PlanFacts::whole_command(
            step.budget.to_string(),
            why.to_owned(),
        ));
        report.flaky = report::known_flaky(data_dir, config);
        report::publish(&step.targets, &report, printer);
    }
    Ok(())
}
