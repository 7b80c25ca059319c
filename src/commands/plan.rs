//! `fedtest plan`: order and select the candidates. fedtest's own trouble never fails or
//! shrinks the pipeline: any internal error or panic prints every candidate, warns, exits 0;
//! `--from-history` without a readable history prints nothing and signals a full run.

use std::fmt::Write as _;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use crate::ci::Env;
use crate::ci::report::{self, PlanFacts, Report, Targets};
use crate::cli::PlanArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::history::Store;
use crate::history::state::State;
use crate::output::Printer;
use crate::plan::{self, Budget, Knowledge, Plan, Request};

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
    summarise(&plan, printer);
    if args.explain && args.format != plan::format::Format::Json {
        printer.detail(&explain(&plan));
    }
    let plan_file = args
        .plan_file
        .as_deref()
        .and_then(|path| super::write_plan_file(path, &plan, printer));
    let targets = Targets::resolve(&args.ci, env);
    if !targets.is_empty() {
        let mut report = Report::new(report::Command::Plan);
        report.plan = Some(PlanFacts {
            plan_file,
            ..PlanFacts::from_plan(&plan)
        });
        report.flaky = super::known_flaky(data_dir, config);
        report::publish(&targets, &report, printer);
    }
    let mut out = printer.stdout();
    args.format
        .formatter()
        .write(&plan, &mut out)
        .map_err(Error::Output)?;
    out.flush().map_err(Error::Output)
}

/// The plan, or — when planning fails or panics — every candidate in the given order, with a
/// warning. fedtest's own trouble never fails or shrinks a pipeline.
pub fn plan_or_everything(
    data_dir: &Path,
    config: &Config,
    budget: Budget,
    candidates: &[String],
    build: &super::ResolvedBuild,
    explain: bool,
) -> Plan {
    let planned = catch_unwind(AssertUnwindSafe(|| {
        make_plan(data_dir, config, budget, candidates, build, explain)
    }));
    match planned {
        Ok(Ok(plan)) => plan,
        Ok(Err(e)) => plan::run_everything(
            candidates,
            format!("could not plan ({e}); running every test"),
        ),
        Err(_) => plan::run_everything(
            candidates,
            "internal error while planning; running every test".to_owned(),
        ),
    }
}

fn make_plan(
    data_dir: &Path,
    config: &Config,
    budget: Budget,
    candidates: &[String],
    build: &super::ResolvedBuild,
    explain: bool,
) -> std::result::Result<Plan, String> {
    let store = Store::open_existing(data_dir).map_err(|e| e.to_string())?;
    let state = match &store {
        Some(s) => s
            .state(build.changed_files.as_deref().unwrap_or_default())
            .map_err(|e| e.to_string())?,
        None => State::default(),
    };
    let models = crate::strategy::Models::load(data_dir);
    // A model file that exists but cannot be used is fedtest's own trouble: run everything.
    if let Some(problem) = models.problems.first() {
        return Err(problem.clone());
    }
    let (model, strategy) =
        crate::strategy::for_plan(store.as_ref(), &models, build.changed_files.is_some())?;
    let build_key = build
        .build_id
        .as_deref()
        .or(build.commit.as_deref())
        .unwrap_or("");
    let mut plan = plan::plan(
        &Knowledge {
            state: &state,
            model: &model,
            strategy: &strategy,
        },
        &Request {
            candidates,
            changed_files: build.changed_files.as_deref(),
            branch: build.branch.as_deref(),
            build_key,
            budget,
            explain,
        },
        &config.plan,
    )?;
    // `[flaky] quarantined`: run quarantined tests last, or leave them out (visibly).
    crate::quarantine::apply_to_plan(&mut plan, &config.flaky)?;
    Ok(plan)
}

/// Tests that executed in the retained recent builds, as candidates; `Err` says why there are
/// none (no history yet, or one that cannot be read).
fn from_history(data_dir: &Path) -> std::result::Result<Vec<String>, String> {
    let ids = match Store::open_existing(data_dir) {
        Ok(Some(store)) => recent_tests(&store)
            .map_err(|e| format!("cannot read the history ({e}): run every test"))?,
        Ok(None) => Vec::new(),
        Err(e) => return Err(format!("cannot read the history ({e}): run every test")),
    };
    if ids.is_empty() {
        return Err(format!(
            "no history in {} yet: run every test",
            data_dir.display()
        ));
    }
    Ok(ids)
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
    let targets = Targets::resolve(&args.ci, env);
    if !targets.is_empty() {
        let mut report = Report::new(report::Command::Plan);
        report.plan = Some(PlanFacts::whole_command(budget.to_string(), why.to_owned()));
        report.flaky = super::known_flaky(data_dir, config);
        report::publish(&targets, &report, printer);
    }
    Ok(())
}

/// Builds back in which a test must have run to count as a current candidate.
const RECENT_BUILDS: u64 = 20;

/// Tests that executed in the last [`RECENT_BUILDS`] builds, sorted.
/// The newest build is read from the builds, not the totals: with a corrupt totals row the
/// candidates are still known, and the plan then runs them all (with a warning).
pub fn recent_tests(store: &Store) -> std::result::Result<Vec<String>, crate::history::StoreError> {
    let last_seq = store.last_seq()?;
    let mut ids: Vec<String> = store
        .tests()?
        .into_iter()
        .filter(|(_, s)| s.runs > 0 && s.last_seq + RECENT_BUILDS > last_seq)
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    Ok(ids)
}

fn summarise(plan: &Plan, printer: &Printer) {
    let total = plan.tests.len();
    let minutes = |s: f64| {
        if s >= 90.0 {
            format!("{:.1} min", s / 60.0)
        } else {
            format!("{s:.1} s")
        }
    };
    match &plan.full_run {
        Some(why) if plan.warnings.is_empty() => printer.info(&format!(
            "running all {total} tests, likeliest failures first ({why})"
        )),
        Some(why) => printer.info(&format!("running all {total} tests in the given order ({why})")),
        None => printer.info(&format!(
            "running {} of {total} tests ({} of {} estimated; expected to catch {:.0}% of failures); {} skipped",
            plan.selected,
            minutes(plan.estimated_seconds_selected),
            minutes(plan.estimated_seconds_total),
            plan.expected_recall * 100.0,
            plan.skipped
        )),
    }
}

/// A table of every candidate: rank, probability, decision, reason and top features.
pub fn explain(plan: &Plan) -> String {
    let mut s = String::new();
    if let Some(strategy) = &plan.strategy {
        let _ = writeln!(s, "ordering by {}", strategy.describe());
    }
    let _ = writeln!(
        s,
        "{:>5}  {:>6}  {:<4}  {:<32}  test  [top features: contribution]",
        "rank", "p(fail)", "run", "reason"
    );
    for (i, t) in plan.tests.iter().enumerate() {
        let feats: Vec<String> = t
            .top_features
            .iter()
            .map(|c| format!("{}={:.2}: {:+.2}", c.feature, c.value, c.contribution))
            .collect();
        let _ = writeln!(
            s,
            "{:>5}  {:>6.3}  {:<4}  {:<32}  {}  [{}]",
            i + 1,
            t.probability,
            if t.selected { "yes" } else { "no" },
            t.reason.describe(),
            crate::text::line(&t.id),
            feats.join(", ")
        );
    }
    s
}
