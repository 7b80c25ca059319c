//! `fedtest eval`'s workflow: replay the retained history in the data dir, publish the
//! confidence curve (job summary, HTML page), and say how fedtest would have done.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::eval::{self, ReplayBuild};
use crate::history::Store;
use crate::output::Printer;
use crate::report::{self, Targets};

/// `fedtest eval`'s settings, resolved.
#[derive(Debug)]
pub struct EvalStep {
    /// Builds replayed before scoring starts (capped at all but one).
    pub warmup: usize,
    /// Also write the curve as an HTML page here.
    pub html: Option<PathBuf>,
    pub json: bool,
    /// Where the curve goes in the CI (the job summary).
    pub targets: Targets,
}

pub fn eval(data_dir: &Path, config: &Config, args: &EvalStep, printer: &Printer) -> Result<()> {
    let Some(store) = Store::open_existing(data_dir)? else {
        return Err(Error::Usage(format!(
            "no history in {} yet; record some builds first",
            data_dir.display()
        )));
    };
    let builds = store.retained_builds()?;
    let replay: Vec<ReplayBuild<'_>> = builds
        .iter()
        .map(|b| ReplayBuild {
            results: &b.results,
            changed_files: b.changed_files.as_deref(),
        })
        .collect();
    let warmup = args.warmup.min(builds.len().saturating_sub(1));
    let models = crate::strategy::Models::load(data_dir);
    let mut result = eval::replay(
        &replay,
        &crate::federation::sync::training_anchor(data_dir),
        models.global.as_ref(),
        &config.plan,
        warmup,
    );
    let scored = &builds[warmup.min(builds.len())..];
    result.curve.set_build_rate(builds_per_week(
        &scored.iter().map(|b| b.recorded_at).collect::<Vec<_>>(),
    ));
    if let Some(path) = &args.html {
        let page = eval::curve::html(
            &result.curve,
            "fedtest: what skipping costs on this history",
        );
        std::fs::write(path, page).map_err(|e| {
            Error::Usage(format!(
                "cannot write the HTML report to {}: {e}",
                path.display()
            ))
        })?;
    }
    // The job summary gets the chart too (GitHub renders Mermaid there).
    if result.curve.builds > 0 {
        report::publish_summary(
            &args.targets,
            || eval::curve::markdown(&result.curve),
            printer,
        );
    }
    let scores = &result.fedtest;
    let mut out = printer.stdout();
    let text = if args.json {
        serde_json::to_string_pretty(&result).expect("scores serialise") + "\n"
    } else {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "replayed {} retained builds ({} for warm-up); scored {} failing builds",
            scores.builds, warmup, scores.failing_builds_scored
        );
        if scores.failing_builds_scored == 0 {
            let _ = writeln!(
                s,
                "no failing build to score yet: nothing to judge the model by"
            );
        } else {
            let pct = |v: f64| format!("{:.1}%", v * 100.0);
            let _ = writeln!(
                s,
                "APFD                                   {:.3}   (random order: 0.500, perfect: ~1.000)",
                scores.apfd
            );
            for (label, value) in [
                (
                    "failures caught in first 10% of time    ",
                    scores.recall_time_10,
                ),
                (
                    "failures caught in first 20% of time    ",
                    scores.recall_time_20,
                ),
                (
                    "failures caught in first 33% of time    ",
                    scores.recall_time_33,
                ),
                (
                    "failing builds caught within 10% time   ",
                    scores.builds_caught_10,
                ),
                (
                    "failing builds caught within 33% time   ",
                    scores.builds_caught_33,
                ),
            ] {
                let _ = writeln!(s, "{label}{}", pct(value));
            }
            let _ = writeln!(
                s,
                "\nEvery candidate ordering, had it planned every build (fedtest plans with the one \
                 its backtest of the builds before each build chose{}):",
                match result.strategy {
                    Some(c) => format!("; now {}", c.name()),
                    None => String::new(),
                }
            );
            let _ = writeln!(
                s,
                "  {:<14} {:>6} {:>9} {:>9}  what it is",
                "candidate", "APFD", "in 10%", "in 33%"
            );
            for c in &result.candidates {
                let _ = writeln!(
                    s,
                    "  {:<14} {:>6.3} {:>9} {:>9}  {}",
                    c.candidate.name(),
                    c.scores.apfd,
                    pct(c.scores.recall_time_10),
                    pct(c.scores.recall_time_33),
                    c.candidate.describe()
                );
            }
        }
        if result.curve.builds > 0 {
            s.push('\n');
            s.push_str(&eval::curve::terminal(&result.curve));
        }
        s
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)
}

/// Builds a week over the span of the recorded times; `None` when the span is under a day
/// (imported or back-filled histories can carry one timestamp for every build).
fn builds_per_week(recorded_at: &[i64]) -> Option<f64> {
    let (first, last) = (recorded_at.iter().min()?, recorded_at.iter().max()?);
    let span = (last - first) as f64;
    (span >= 86_400.0 && recorded_at.len() > 1)
        .then(|| (recorded_at.len() - 1) as f64 / (span / 604_800.0))
}
