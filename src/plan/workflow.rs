//! Planning for a command: the history, model and strategy in the data dir, the quarantine
//! applied — and when any of that fails or panics, every candidate, with a warning. fedtest's
//! own trouble never fails or shrinks a pipeline.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use super::last::LastPlan;
use super::{Budget, Knowledge, Plan, Request};
use crate::ci::ResolvedBuild;
use crate::config::Config;
use crate::history::state::State;
use crate::history::{Store, StoreError};
use crate::output::Printer;

/// Keep what the plan deselected in the data dir (`plan::last`), for `gate` and the job
/// summary: the record and the list's path, when written. Only a plan made from a readable
/// history is kept, and a data dir that cannot be written (a read-only cache) only costs the
/// record.
pub fn remember(
    data_dir: &Path,
    plan: &Plan,
    build: &ResolvedBuild,
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
    build: &ResolvedBuild,
    explain: bool,
) -> Plan {
    let planned = catch_unwind(AssertUnwindSafe(|| {
        make_plan(data_dir, config, budget, candidates, build, explain)
    }));
    let everything = |warning: String| {
        // Without a history to match against, the candidates are still read for their syntax
        // (pytest node ids, lines that are no test id).
        let read = super::candidates::read(candidates, &Default::default());
        let mut plan = super::run_everything(&read.ids, warning);
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
    build: &ResolvedBuild,
    explain: bool,
) -> Result<Plan, String> {
    let store = Store::open_existing(data_dir).map_err(|e| e.to_string())?;
    let state = match &store {
        Some(s) => s
            .state(build.changed_files.as_deref().unwrap_or_default())
            .map_err(|e| e.to_string())?,
        None => State::default(),
    };
    let candidates = super::candidates::read(lines, &state.tests);
    let ids: Vec<&str> = candidates.ids.iter().map(String::as_str).collect();
    let symbols = crate::changes::for_build(
        data_dir,
        build.changed_files.as_deref(),
        build.base.as_deref(),
        &ids,
        false,
    );
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
    let mut plan = super::plan(
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
    super::quarantined::apply(&mut plan, &config.flaky)?;
    if let Some(why) = candidates.unnamed_reason() {
        plan.run_all(why);
    }
    plan.candidates = Some(candidates.facts);
    plan.changes = symbols.map(|r| super::ChangeNote::of(r.as_ref()));
    Ok(plan)
}

/// Tests that executed in the retained recent builds, as candidates; `Err` says why there are
/// none (no history yet, or one that cannot be read).
pub fn from_history(data_dir: &Path) -> Result<Vec<String>, String> {
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

/// Builds back in which a test must have run to count as a current candidate.
const RECENT_BUILDS: u64 = 20;

/// Tests that executed in the last `RECENT_BUILDS` builds, sorted.
/// The newest build is read from the builds, not the totals: with a corrupt totals row the
/// candidates are still known, and the plan then runs them all (with a warning).
pub fn recent_tests(store: &Store) -> Result<Vec<String>, StoreError> {
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

/// `--plan-file`: the plan as JSON, for a later step to read. A file that cannot be written is
/// a warning (the plan itself is on standard output or already running); its path when written.
pub fn write_plan_file(path: &Path, plan: &Plan, printer: &Printer) -> Option<String> {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        super::format::Format::Json
            .formatter()
            .write(plan, &mut out)?;
        std::io::Write::flush(&mut out)
    };
    match write() {
        Ok(()) => Some(path.display().to_string()),
        Err(e) => {
            printer.warn(&format!(
                "cannot write the plan file {}: {e}; continuing without it",
                path.display()
            ));
            None
        }
    }
}
