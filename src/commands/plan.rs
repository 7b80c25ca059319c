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
use crate::plan::format::Format;
use crate::plan::last::LastPlan;
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
    summarise(&plan, printer);
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
    let targets = Targets::resolve(&args.ci, env);
    if !targets.is_empty() {
        let mut report = Report::new(report::Command::Plan);
        report.plan = Some(PlanFacts {
            plan_file,
            deselected_file: deselected,
            ..PlanFacts::from_plan(&plan)
        });
        report.flaky = super::known_flaky(data_dir, config);
        report::publish(&targets, &report, printer);
    }
    let mut out = printer.stdout();
    format
        .formatter()
        .write(&plan, &mut out)
        .map_err(Error::Output)?;
    out.flush().map_err(Error::Output)
}

/// What became of the candidate list: left-out lines, ids read in a runner's syntax, and a
/// list that shares nothing with the history.
pub fn candidate_notes(plan: &Plan, printer: &Printer) {
    for note in plan.candidates.iter().flat_map(|c| c.notes()) {
        if note.warning {
            printer.warn(&note.text);
        } else {
            printer.info(&note.text);
        }
    }
}

/// Keep what the plan deselected in the data dir (`plan::last`), for `gate` and the job
/// summary: the record and the list's path, when written. Only a plan made from a readable
/// history is kept, and a data dir that cannot be written (a read-only cache) only costs the
/// record.
pub fn remember(
    data_dir: &Path,
    plan: &Plan,
    build: &super::ResolvedBuild,
    printer: &Printer,
) -> Option<(LastPlan, String)> {
    let evidence = plan.evidence.as_ref()?;
    if !Store::path_in(data_dir).exists() {
        return None;
    }
    let label = match (&build.build_id, &build.commit) {
        (Some(id), _) => format!("build {id}"),
        (None, Some(commit)) => format!("commit {}", &commit[..commit.len().min(12)]),
        (None, None) => format!("build #{}", evidence.builds + 1),
    };
    let previous = LastPlan::read(data_dir);
    let record = LastPlan::new(
        plan,
        build.build_id.as_deref(),
        build.commit.as_deref(),
        label,
        previous.as_ref(),
    );
    match record.write(plan, data_dir) {
        Ok(path) => Some((record, path.display().to_string())),
        Err(e) => {
            printer.info(&format!(
                "the deselected tests are not kept in {} ({e}); `gate` will not name them",
                data_dir.display()
            ));
            None
        }
    }
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
    let everything = |warning: String| {
        // Without a history to match against, the candidates are still read for their syntax
        // (pytest node ids, lines that are no test id).
        let read = plan::candidates::read(candidates, &Default::default());
        let mut plan = plan::run_everything(&read.ids, warning);
        plan.candidates = Some(read.facts);
        plan
    };
    match planned {
        Ok(Ok(plan)) => plan,
        Ok(Err(e)) => everything(format!("could not plan ({e}); running every test")),
        Err(_) => everything("internal error while planning; running every test".to_owned()),
    }
}

fn make_plan(
    data_dir: &Path,
    config: &Config,
    budget: Budget,
    lines: &[String],
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
    let candidates = plan::candidates::read(lines, &state.tests);
    let ids: Vec<&str> = candidates.ids.iter().map(String::as_str).collect();
    let symbols = super::analyse_changes(data_dir, build, &ids, false);
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
            candidates: &candidates.ids,
            changed_files: build.changed_files.as_deref(),
            symbols: symbols.as_ref().and_then(|r| r.as_ref().ok()),
            branch: build.branch.as_deref(),
            build_key,
            budget,
            explain,
        },
        &config.plan,
    )?;
    // `[flaky] quarantined`: run quarantined tests last, or leave them out (visibly).
    crate::quarantine::apply_to_plan(&mut plan, &config.flaky)?;
    if let Some(why) = candidates.unnamed_reason() {
        plan.run_all(why);
    }
    plan.candidates = Some(candidates.facts);
    plan.changes = symbols.map(|r| plan::ChangeNote::of(r.as_ref()));
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
    printer.info(&summary(plan));
}

/// One line on what the plan runs; `run` prints the same.
pub fn summary(plan: &Plan) -> String {
    let total = plan.tests.len();
    let minutes = |s: f64| {
        if s >= 90.0 {
            format!("{:.1} min", s / 60.0)
        } else if s >= 1.0 || s == 0.0 {
            format!("{s:.1} s")
        } else {
            format!("{:.0} ms", s * 1000.0)
        }
    };
    match &plan.full_run {
        Some(why) if plan.warnings.is_empty() => {
            format!("running all {total} tests, likeliest failures first ({why})")
        }
        Some(why) => format!("running all {total} tests in the given order ({why})"),
        None if plan.deselected == 0 => format!(
            "running all {total} tests, likeliest failures first ({} estimated test time; the \
             budget holds them all)",
            minutes(plan.estimated_seconds_total)
        ),
        None => format!(
            "running {} of {total} tests ({} of {} estimated test time; expected to catch {:.0}% \
             of failures); {} deselected by fedtest: they do not run, so a failure in them \
             stays unseen until they next run",
            plan.selected,
            minutes(plan.estimated_seconds_selected),
            minutes(plan.estimated_seconds_total),
            plan.expected_recall * 100.0,
            plan.deselected
        ),
    }
}

/// A table of every candidate: rank, probability, decision, reason and top features.
pub fn explain(plan: &Plan) -> String {
    let mut s = String::new();
    if let Some(strategy) = &plan.strategy {
        let _ = writeln!(s, "ordering by {}", strategy.describe());
    }
    if let Some(e) = plan.evidence.as_ref().filter(|e| !e.enough()) {
        let _ = writeln!(s, "no test is deselected yet: {}", e.waiting_for());
    }
    if let Some(c) = &plan.changes {
        let _ = writeln!(s, "{}", c.summary);
        for n in &c.notes {
            let _ = writeln!(s, "  {n}");
        }
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
        if let Some(chain) = &t.change_chain {
            let _ = writeln!(s, "{:>5}  {}", "", crate::text::line(chain));
        }
    }
    s
}
