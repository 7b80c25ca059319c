//! `fedtest run`: plan, run the test command with the selected tests in the runner's syntax,
//! record the JUnit it wrote, and exit with the runner's exit code.
//!
//! What it promises:
//! - fedtest's own trouble never shrinks the run: no history, no candidates, or a planning
//!   error runs the whole command unchanged (planning errors fall back as in `plan`);
//! - it never passes when no test ran: a run whose reports hold no executed test exits
//!   [`exit_codes::TESTS_FAILED`] (or the runner's own non-zero code);
//! - only reports the command wrote (new or modified during the run) are read, so a stale
//!   report from an earlier build is never recorded as this one;
//! - the runner's output streams as it comes (standard streams are inherited).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::ci::Env;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::history::Store;
use crate::inputs::{self, BuildSpec};
use crate::junit::{self, JunitError, Limits, Outcome};
use crate::output::Printer;
use crate::plan::format::Runner;
use crate::plan::last::LastPlan;
use crate::plan::workflow::write_plan_file;
use crate::plan::{self, Plan};
use crate::report::{self, PlanFacts, Report, ShardFacts, Targets};
use crate::run::{self, Shard, collect};

/// `fedtest run`'s settings, resolved.
#[derive(Debug)]
pub struct RunStep {
    /// The test command and its arguments.
    pub command: Vec<String>,
    pub runner: Runner,
    /// Where the command writes its JUnit reports (files, directories, glob patterns).
    pub junit: Vec<String>,
    /// The candidates' list file; `None`: the runner's own collection, else recent builds.
    pub tests: Option<PathBuf>,
    /// `--budget`; `None`: `plan.budget` (resolved inside, so a bad value is reported to CI
    /// like any other failure of the step).
    pub budget: Option<String>,
    pub shard: Option<Shard>,
    pub plan_file: Option<PathBuf>,
    pub build: BuildSpec,
    pub targets: Targets,
    /// What follows recording (retrain, sync); `None`: only record.
    pub learn: Option<crate::record::Learn>,
}

/// Run the command; `Ok(code)` is the exit code `fedtest run` must end with. The CI report
/// (outputs, summary, dotenv) is written whatever happens, with the code the run ends with.
pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &RunStep,
    env: &Env,
    printer: &Printer,
) -> Result<i32> {
    let targets = &args.targets;
    let mut report = Report::new(report::Command::Run);
    let result = plan_run_record(data_dir, config, args, env, printer, &mut report);
    if !targets.is_empty() {
        // The code the process ends with (see `verdict`).
        report.exit_code = Some(match &result {
            Ok(code) => verdict(*code)
                .err()
                .map_or(exit_codes::OK, |e| e.exit_code()),
            Err(e) => e.exit_code(),
        });
        report.flaky = report::known_flaky(data_dir, config);
        report::publish(targets, &report, printer);
    }
    result
}

fn plan_run_record(
    data_dir: &Path,
    config: &Config,
    args: &RunStep,
    env: &Env,
    printer: &Printer,
    report: &mut Report,
) -> Result<i32> {
    let budget = config.plan.budget_or(args.budget.as_deref())?;
    let mut why_no_plan = "no candidate tests given: the whole command runs".to_owned();
    // Complete candidates (given, or the runner's own collection) name every test, so a plan
    // that runs everything may pass them all, for their order; the history's tests miss new
    // ones, so then the command runs unchanged.
    let (candidates, complete) = match &args.tests {
        Some(path) => (inputs::read_lines(path, printer)?, true),
        None => match history_candidates(data_dir, printer) {
            Ok(ids) => match collected(&args.command, printer) {
                Some(collected) => (collected, true),
                None => (ids, false),
            },
            Err(why) => {
                why_no_plan = why;
                (Vec::new(), false)
            }
        },
    };
    let build = inputs::resolve_build(&args.build, env, printer)?;

    // `None`: run the whole command unchanged.
    let mut deselection: Option<(Plan, LastPlan)> = None;
    let selection: Option<Vec<String>> = if candidates.is_empty() {
        printer.info("no candidate tests (no history yet): running the whole command");
        if let Some(shard) = args.shard {
            printer.warn(&format!(
                "shard {shard} runs every test: there is no plan to split yet"
            ));
        }
        report.plan = Some(PlanFacts::whole_command(budget.to_string(), why_no_plan));
        None
    } else {
        let plan = crate::plan::workflow::plan_or_everything(
            data_dir,
            config,
            budget,
            &candidates,
            &build,
            false,
        );
        let plan_file = args
            .plan_file
            .as_deref()
            .and_then(|path| write_plan_file(path, &plan, printer));
        let remembered = crate::plan::workflow::remember(data_dir, &plan, &build, printer);
        report.plan = Some(PlanFacts {
            plan_file,
            deselected_file: remembered
                .as_ref()
                .filter(|_| plan.deselected > 0)
                .map(|(_, path)| path.clone()),
            ..PlanFacts::from_plan(&plan)
        });
        let selection = select(&plan, args, complete, printer, report);
        if let Some((record, path)) = remembered.filter(|_| plan.deselected > 0) {
            list_deselected(&plan, &path, printer);
            deselection = Some((plan, record));
        }
        selection
    };
    if selection.as_ref().is_some_and(Vec::is_empty) {
        // Only a shard can be empty (more shards than tests); the other shards run them all.
        printer.info("this shard has no tests to run; nothing to do");
        return Ok(exit_codes::OK);
    }
    let runner_args = selection.map(|ids| {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        args.runner.args(&ids)
    });
    let argv = run::with_selection(&args.command, runner_args, args.runner);
    let Some((program, rest)) = argv.split_first() else {
        return Err(Error::Usage("no test command given after `--`".to_owned()));
    };

    let before = report_times(&args.junit);
    printer.info(&format!("running: {}", run::display(&argv)));
    let status = Command::new(program)
        .args(rest)
        .status()
        .map_err(|e| Error::Usage(format!("cannot run the test command `{program}`: {e}")))?;
    let code = run::exit_code(status);

    let reports = written_reports(&args.junit, &before);
    if reports.is_empty() {
        let patterns = args.junit.join(", ");
        if code != exit_codes::OK {
            printer.warn(&format!(
                "the test command failed (exit {code}) and wrote no JUnit report matching {patterns}; nothing recorded"
            ));
            return Ok(code);
        }
        return Err(Error::Usage(format!(
            "the test command wrote no JUnit report matching {patterns}; refusing to pass without evidence that tests ran"
        )));
    }
    let limits = Limits {
        max_file_bytes: config.record.max_report_mib.saturating_mul(1024 * 1024),
        ..Limits::default()
    };
    let results = match junit::read_reports(&reports, &limits) {
        Ok(results) => results,
        Err(JunitError::NoTestCases { .. } | JunitError::NoTestCasesIn { .. }) => Vec::new(),
        Err(e) if code != exit_codes::OK => {
            printer.warn(&format!(
                "the test command failed (exit {code}); its report is unreadable, nothing recorded: {e}"
            ));
            return Ok(code);
        }
        Err(e) => return Err(e.into()),
    };
    let executed = results
        .iter()
        .filter(|t| t.outcome != Outcome::Skipped)
        .count();
    if executed == 0 {
        printer.warn(&format!(
            "no test ran according to {}: refusing to pass (is the selection syntax right for --runner {}?)",
            reports.join(", "),
            runner_name(args)
        ));
        return Ok(if code != exit_codes::OK {
            code
        } else {
            exit_codes::TESTS_FAILED
        });
    }

    // The reports were read above; what can still fail is fedtest's store: never the build's
    // verdict, which is the runner's.
    let recorded = crate::record::read_reports(&reports, config, printer).and_then(|results| {
        crate::record::record_results(
            data_dir,
            config,
            &results,
            build,
            args.learn.as_ref(),
            printer,
        )
    });
    if let Err(e) = recorded {
        printer.warn(&format!("results not recorded: {e}"));
    }
    if let Some((plan, last)) = &deselection {
        // A green run on a subset is not a green suite: say so where the verdict is read.
        let ran: HashSet<&str> = results
            .iter()
            .filter(|t| t.outcome != Outcome::Skipped)
            .map(|t| t.id.as_str())
            .collect();
        let not_run = plan
            .tests
            .iter()
            .filter(|t| !t.selected && !ran.contains(t.id.as_str()))
            .count();
        if let Some(line) =
            crate::plan::last::subset_verdict(code == exit_codes::OK, executed, not_run, last)
        {
            if code == exit_codes::OK {
                printer.warn(&line);
            } else {
                printer.info(&line);
            }
            report.subset = Some(line);
        }
    }
    Ok(code)
}

/// The first deselected tests in the log, and where the rest are.
fn list_deselected(plan: &Plan, path: &str, printer: &Printer) {
    let ids: Vec<&str> = plan
        .tests
        .iter()
        .filter(|t| !t.selected)
        .map(|t| t.id.as_str())
        .collect();
    let shown = ids.len().min(crate::plan::last::FIRST);
    printer.info(&format!(
        "deselected by fedtest (not run): {}{} — all {} listed in {path}",
        ids[..shown].join(", "),
        if ids.len() > shown { ", …" } else { "" },
        ids.len()
    ));
}

/// The candidates pytest itself collects, when the command runs pytest; `None` (the history's
/// tests are used) when it does not, or when the collection fails.
fn collected(command: &[String], printer: &Printer) -> Option<Vec<String>> {
    let argv = collect::pytest_collection(command)?;
    let (program, rest) = argv.split_first()?;
    let out = match Command::new(program).args(rest).output() {
        Ok(out) => out,
        Err(e) => {
            printer.info(&format!(
                "cannot ask pytest for its tests ({e}); planning the tests seen in recent builds"
            ));
            return None;
        }
    };
    let ids = collect::pytest_candidates(&String::from_utf8_lossy(&out.stdout));
    if !out.status.success() || ids.is_empty() {
        printer.info(&format!(
            "`{}` listed no tests (exit {}); planning the tests seen in recent builds",
            run::display(&argv),
            run::exit_code(out.status)
        ));
        return None;
    }
    printer.info(&format!(
        "candidates: the {} tests `{}` lists",
        ids.len(),
        run::display(&argv)
    ));
    Some(ids)
}

/// `run` ends with the runner's verdict: 0, or the runner's own exit code as an error that
/// carries it (already reported by the runner, so nothing more is printed).
pub fn verdict(code: i32) -> Result<()> {
    if code == exit_codes::OK {
        Ok(())
    } else {
        Err(Error::Verdict(code))
    }
}

fn runner_name(args: &RunStep) -> String {
    use clap::ValueEnum;
    args.runner
        .to_possible_value()
        .map_or_else(|| format!("{:?}", args.runner), |v| v.get_name().to_owned())
}

/// The selected ids to run (this shard's, in plan order), or `None` to run everything.
fn select(
    plan: &Plan,
    args: &RunStep,
    complete: bool,
    printer: &Printer,
    report: &mut Report,
) -> Option<Vec<String>> {
    for w in &plan.warnings {
        printer.warn(w);
    }
    crate::plan::describe::candidate_notes(plan, printer);
    if plan.whole_command() {
        printer.info(&format!(
            "running every test ({}); the command runs unchanged",
            plan.full_run.as_deref().unwrap_or_default()
        ));
        return None;
    }
    let selected: Vec<&plan::PlannedTest> = plan.tests.iter().filter(|t| t.selected).collect();
    let Some(shard) = args.shard else {
        if let Some(why) = &plan.full_run {
            // Reordering risks nothing: a runner that keeps the given order gets every test,
            // likeliest failures first — when the candidates name every test and fedtest
            // planned (its own trouble runs the command unchanged).
            if args.runner.honours_order() && complete && plan.warnings.is_empty() {
                let ids: Vec<String> = selected.iter().map(|t| t.id.clone()).collect();
                // Order is a nicety: a suite too big for one command line runs unchanged.
                let bytes: usize = ids.iter().map(|id| id.len() + 1).sum();
                if bytes <= MAX_ORDER_BYTES {
                    printer.info(&crate::plan::describe::summary(plan));
                    return Some(ids);
                }
                printer.info(&format!(
                    "running every test ({why}); {} tests are too many to pass in order on one \
                     command line, so the command runs unchanged",
                    ids.len()
                ));
                return None;
            }
            printer.info(&format!(
                "running every test ({why}); the command runs unchanged"
            ));
            return None;
        }
        printer.info(&crate::plan::describe::summary(plan));
        return Some(selected.iter().map(|t| t.id.clone()).collect());
    };
    let pairs: Vec<(&str, f64)> = selected
        .iter()
        .map(|t| (t.id.as_str(), t.estimated_seconds))
        .collect();
    let shard_of = run::assign(&pairs, shard.count);
    let mine: Vec<String> = selected
        .iter()
        .zip(&shard_of)
        .filter(|&(_, &s)| s + 1 == shard.index)
        .map(|(t, _)| t.id.clone())
        .collect();
    let seconds: f64 = selected
        .iter()
        .zip(&shard_of)
        .filter(|&(_, &s)| s + 1 == shard.index)
        .map(|(t, _)| t.estimated_seconds)
        .sum();
    printer.info(&format!(
        "shard {shard}: running {} of the {} selected tests ({seconds:.1} s estimated){}",
        mine.len(),
        selected.len(),
        plan.full_run
            .as_deref()
            .map_or_else(String::new, |why| format!("; {why}"))
    ));
    report.shard = Some(ShardFacts {
        shard: shard.to_string(),
        tests: mine.len(),
        seconds,
    });
    Some(mine)
}

/// The most bytes of test ids a plan that runs everything passes just for their order (Linux
/// allows 2 MiB of arguments and environment together; the rest is the environment's).
const MAX_ORDER_BYTES: usize = 512 * 1024;

/// Tests that executed in the retained recent builds. Unlike `plan --from-history`, a missing
/// or unreadable store is not an error: it means "run everything" — why, in the `Err`.
fn history_candidates(
    data_dir: &Path,
    printer: &Printer,
) -> std::result::Result<Vec<String>, String> {
    let read = || -> std::result::Result<Vec<String>, crate::history::StoreError> {
        let Some(store) = Store::open_existing(data_dir)? else {
            return Ok(Vec::new());
        };
        crate::plan::workflow::recent_tests(&store)
    };
    match read() {
        Ok(ids) if ids.is_empty() => Err("no history yet: the whole command runs".to_owned()),
        Ok(ids) => Ok(ids),
        Err(e) => {
            printer.warn(&format!(
                "cannot read the history ({e}); running every test"
            ));
            Err(format!(
                "the history could not be read ({e}): the whole command runs"
            ))
        }
    }
}

/// Modification time of every report file that exists before the run.
fn report_times(patterns: &[String]) -> HashMap<PathBuf, Option<SystemTime>> {
    let mut times = HashMap::new();
    for pattern in patterns {
        if let Ok(files) = junit::expand_paths(std::slice::from_ref(pattern)) {
            for file in files {
                let modified = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
                times.insert(file, modified);
            }
        }
    }
    times
}

/// Report files the run wrote: matching now, and new or modified since `before`.
fn written_reports(
    patterns: &[String],
    before: &HashMap<PathBuf, Option<SystemTime>>,
) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (file, modified) in report_times(patterns) {
        let fresh = match before.get(&file) {
            None => true,
            Some(old) => *old != modified || modified.is_none(),
        };
        if fresh && seen.insert(file.clone()) {
            out.push(file.to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}
