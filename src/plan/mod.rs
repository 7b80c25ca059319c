//! Planning: order the candidates (likely failures first) and, within a budget, choose which
//! to run — under safety rules that never let a plan silently drop what must run.

pub mod candidates;
pub mod describe;
pub mod evidence;
pub mod format;
pub mod last;
pub mod quarantined;
pub mod workflow;

use std::collections::HashSet;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

pub use crate::config::Budget;
pub use candidates::Candidates;
pub use evidence::Evidence;

use crate::config::PlanConfig;
use crate::features::{self, BuildContext};
use crate::history::state::State;
use crate::keys::stable_hash;
use crate::model::{Model, Source};
use crate::strategy::InUse;

/// Why a test was placed where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Everything runs (see [`Plan::full_run`]).
    FullRun,
    /// Chosen by the model within the budget.
    Predicted,
    NewTest,
    ChangedFile,
    RecentFailure,
    MustRun,
    /// A seeded random pick among the tests the budget would deselect.
    Exploration,
    /// Deselected by the plan (not run): outside the budget. "Skipped" is the runner's word
    /// for a test it did not execute; a plan deselects. Plans written before the rename say
    /// `"skipped"`, which still reads as this.
    #[serde(alias = "skipped")]
    Deselected,
    /// Deselected: the quarantine file lists it and `[flaky] quarantined = "skip"`.
    Quarantined,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::FullRun => "full run",
            Reason::Predicted => "within budget",
            Reason::NewTest => "new test (always runs)",
            Reason::ChangedFile => "its file changed (always runs)",
            Reason::RecentFailure => "failed recently (always runs)",
            Reason::MustRun => "must-run pattern (always runs)",
            Reason::Exploration => "exploration sample",
            Reason::Deselected => "deselected: outside the budget",
            Reason::Quarantined => "deselected: quarantined",
        }
    }
}

/// One candidate's place in the plan.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedTest {
    pub id: String,
    pub probability: f64,
    pub selected: bool,
    pub reason: Reason,
    /// Estimated duration, seconds (its history, else the suite's median).
    pub estimated_seconds: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top_features: Vec<Contribution>,
    /// How its code reaches the change, when it does (only when explaining): "calls
    /// `Invoice.tax` ← changed in invoice.py:42".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_chain: Option<String>,
}

/// What the symbol-level change analysis made of the build, for `--explain`.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeNote {
    /// "3 changed definitions: `Invoice.tax` (invoice.py:42), …", or why there are none.
    pub summary: String,
    pub available: bool,
    /// Files that did not parse, and similar.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl ChangeNote {
    pub fn of(analysis: Result<&crate::changes::Analysis, &crate::changes::Unavailable>) -> Self {
        match analysis {
            Err(why) => ChangeNote {
                summary: format!(
                    "symbol-level change analysis off ({why}): file-level change features only"
                ),
                available: false,
                notes: Vec::new(),
            },
            Ok(a) => {
                const SHOWN: usize = 5;
                let mut names: Vec<String> = a
                    .changed
                    .iter()
                    .take(SHOWN)
                    .map(|c| format!("`{}` ({}:{})", c.qual, c.file, c.line))
                    .collect();
                if a.changed.len() > SHOWN {
                    names.push(format!("and {} more", a.changed.len() - SHOWN));
                }
                let what = if names.is_empty() {
                    "no changed definition (the change is outside every function and class)"
                        .to_owned()
                } else {
                    format!(
                        "{} changed definition{}: {}",
                        a.changed.len(),
                        if a.changed.len() == 1 { "" } else { "s" },
                        names.join(", ")
                    )
                };
                let source = match &a.source {
                    crate::changes::ChangeSource::Diff { .. } => String::new(),
                    crate::changes::ChangeSource::LastRecorded { why } => format!(
                        " (no git diff: {why}; compared with the last recorded build's files)"
                    ),
                };
                ChangeNote {
                    summary: format!(
                        "symbol-level change analysis: {what}{source}; {} source files ({} parsed, the rest cached)",
                        a.files, a.parsed
                    ),
                    available: true,
                    notes: a.notes.clone(),
                }
            }
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Contribution {
    pub feature: &'static str,
    pub value: f64,
    pub contribution: f64,
}

/// A plan: every candidate, selected ones first in run order, then the deselected ones.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub tests: Vec<PlannedTest>,
    /// Why everything runs, when it does.
    pub full_run: Option<String>,
    pub budget: String,
    pub model: Source,
    /// The ordering in use, chosen by backtesting (see `crate::strategy`).
    pub strategy: Option<InUse>,
    pub selected: usize,
    /// Candidates the plan leaves out (`fedtest` deselected them; the runner never sees them).
    pub deselected: usize,
    pub estimated_seconds_selected: f64,
    pub estimated_seconds_total: f64,
    /// Expected share of this build's failures that the selected tests catch.
    pub expected_recall: f64,
    /// What the user should see: fedtest's own trouble (the plan then runs everything), and
    /// candidates that could not be used.
    pub warnings: Vec<String>,
    /// What deselection waits for (`None` when fedtest could not plan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// What became of the candidate list (set by the caller that read it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<candidates::Facts>,
    /// What the symbol-level change analysis made of the build (set by the caller that ran
    /// it; `None` when the changed files were unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<ChangeNote>,
}

/// What the planner knows of the repository.
pub struct Knowledge<'a> {
    pub state: &'a State,
    pub model: &'a Model,
    /// Which strategy `model` is; its calibration decides whether a budget may skip.
    pub strategy: &'a InUse,
}

/// What this build brings.
pub struct Request<'a> {
    pub candidates: &'a [String],
    pub changed_files: Option<&'a [String]>,
    /// The symbol-level change analysis (`crate::changes`), when the checkout was at hand.
    pub symbols: Option<&'a crate::changes::Analysis>,
    pub branch: Option<&'a str>,
    /// Build id or commit: seeds the exploration draw, so the same build gets the same plan.
    pub build_key: &'a str,
    pub budget: Budget,
    pub explain: bool,
}

fn globset(patterns: &[String], what: &str) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| format!("{what} pattern {p:?}: {e}"))?);
    }
    b.build().map_err(|e| format!("{what}: {e}"))
}

/// Order key: the log-probability of failure, less `duration_weight` times the log of the
/// expected duration. A positive weight trades a little APFD for catching more failures per
/// second of test time. At 0 (the default: pure risk order) the key is the model's raw score,
/// which orders as the probability does (calibration is increasing) without losing the tiny
/// differences a probability near ½ rounds away — a test that failed 200 runs ago still
/// ranks above one that never failed, as the decayed-failure heuristic ranks it.
fn order_key(p: f64, raw: f64, duration: f64, duration_weight: f64) -> f64 {
    if duration_weight == 0.0 {
        return raw;
    }
    p.max(f64::MIN_POSITIVE).ln() - duration_weight * duration.max(1e-3).ln()
}

/// The candidates ranked for one build, with everything a budget walk needs: computed once, so
/// `eval` can ask what a plan at every budget would run as cheaply as `plan` asks at one.
struct Ranked {
    /// Candidates, de-duplicated, in the order given.
    ids: Vec<String>,
    /// `(index into ids, probability, estimated seconds)`, in run order.
    scored: Vec<(usize, f64, f64)>,
    total_time: f64,
    total_p: f64,
    /// Feature vectors (only when explaining).
    xs: Vec<Vec<f64>>,
    /// What deselection waits for, and why everything runs until then.
    evidence: Evidence,
    cold_start: Option<String>,
    /// Why everything runs for this build whatever the budget (branch, schedule, a file).
    build_full_run: Option<String>,
    /// Safety rules: what runs whatever the budget says.
    keep: Vec<Option<Reason>>,
    /// Exploration draw order: indices into `ids` by their seeded hash.
    draw: Vec<usize>,
}

fn rank(k: &Knowledge<'_>, req: &Request<'_>, cfg: &PlanConfig) -> Result<Ranked, String> {
    let must_run = globset(&cfg.must_run, "plan.must_run")?;
    let run_all = globset(&cfg.run_all_files, "plan.run_all_files")?;
    let branches = globset(&cfg.full_run_branches, "plan.full_run_branches")?;

    // De-duplicate candidates, keeping the first occurrence.
    let mut seen = HashSet::with_capacity(req.candidates.len());
    let ids: Vec<String> = req
        .candidates
        .iter()
        .filter(|c| seen.insert(c.as_str()))
        .cloned()
        .collect();

    let tests = &k.state.tests;
    let global = &k.state.global;
    let ctx = BuildContext::new(k.state, req.changed_files).with_symbols(req.symbols);
    let median = features::median_duration(k.state)
        .filter(|m| *m > 0.0)
        .unwrap_or(1.0);

    let mut scored: Vec<(usize, f64, f64)> = Vec::with_capacity(ids.len());
    let mut raw: Vec<f64> = Vec::with_capacity(ids.len());
    let mut xs: Vec<Vec<f64>> = Vec::with_capacity(if req.explain { ids.len() } else { 0 });
    for (i, id) in ids.iter().enumerate() {
        let stats = tests.get(id);
        let x = features::compute(id, None, &ctx);
        let p = k.model.probability(&x);
        let p = if p.is_finite() { p } else { 0.0 };
        let r = k.model.score(&x);
        raw.push(if r.is_finite() { r } else { f64::MIN });
        let dur = stats
            .filter(|s| s.runs > 0)
            .map_or(median, |s| s.duration.max(0.0));
        scored.push((i, p, dur));
        if req.explain {
            xs.push(x);
        }
    }
    // Stable: equal keys keep the candidates' own order (the runner's natural order).
    let keys: Vec<f64> = scored
        .iter()
        .map(|&(i, p, d)| order_key(p, raw[i], d, cfg.duration_weight))
        .collect();
    scored.sort_by(|a, b| keys[b.0].total_cmp(&keys[a.0]));

    let evidence = Evidence::of(global, tests.len(), cfg);
    let cold_start =
        (!evidence.enough()).then(|| format!("cold start: {}", evidence.waiting_for()));
    let build_full_run = if let Some(b) = req.branch.filter(|b| branches.is_match(b)) {
        Some(format!("branch {b} always runs everything"))
    } else if cfg.full_run_every > 0 && (global.builds + 1).is_multiple_of(cfg.full_run_every) {
        Some(format!(
            "every {}th build runs everything",
            cfg.full_run_every
        ))
    } else {
        req.changed_files
            .and_then(|c| c.iter().find(|f| run_all.is_match(f.as_str())))
            .map(|f| format!("{f} changed (plan.run_all_files)"))
    };

    // Safety rules: these run whatever the budget says.
    let changed: Vec<&str> = req
        .changed_files
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .collect();
    let keep = ids
        .iter()
        .map(|id| {
            let stats = tests.get(id).filter(|s| s.runs > 0);
            if must_run.is_match(id) {
                Some(Reason::MustRun)
            } else if cfg.keep_new_tests && stats.is_none() {
                Some(Reason::NewTest)
            } else if cfg.keep_recent_failures > 0
                && stats.is_some_and(|s| s.recent_fails(cfg.keep_recent_failures) > 0)
            {
                Some(Reason::RecentFailure)
            } else if cfg.keep_changed_tests
                && !changed.is_empty()
                && crate::keys::own_file_changed(
                    id,
                    stats.and_then(|s| s.file.as_deref()),
                    &changed,
                )
            {
                Some(Reason::ChangedFile)
            } else {
                None
            }
        })
        .collect();
    let mut draw: Vec<usize> = Vec::new();
    if cfg.exploration > 0.0 {
        let seed = cfg.seed.to_le_bytes();
        let mut hashed: Vec<(u64, usize)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    stable_hash(&[&seed, req.build_key.as_bytes(), id.as_bytes()]),
                    i,
                )
            })
            .collect();
        hashed.sort_unstable();
        draw = hashed.into_iter().map(|(_, i)| i).collect();
    }
    Ok(Ranked {
        total_time: scored.iter().map(|s| s.2).sum(),
        total_p: scored.iter().map(|s| s.1).sum(),
        ids,
        scored,
        xs,
        evidence,
        cold_start,
        build_full_run,
        keep,
        draw,
    })
}

impl Ranked {
    /// Why everything runs at `budget`, if it does.
    fn full_run(&self, k: &Knowledge<'_>, budget: Budget) -> Option<String> {
        if budget == Budget::All {
            return Some("budget is 100%".to_owned());
        }
        if let Some(c) = &self.cold_start {
            return Some(c.clone());
        }
        if let Budget::Recall(r) = budget
            && k.strategy.curve.share_for(r).is_none()
        {
            return Some(format!(
                "a recall budget needs {} failing builds backtested with the ordering in use; {} so far",
                crate::strategy::MIN_CURVE_BUILDS,
                k.strategy.curve.builds.len()
            ));
        }
        self.build_full_run.clone()
    }

    /// Why each candidate runs at `budget` (`None`: deselected), and why everything runs.
    fn choose(
        &self,
        k: &Knowledge<'_>,
        budget: Budget,
        cfg: &PlanConfig,
    ) -> (Vec<Option<Reason>>, Option<String>) {
        let full_run = self.full_run(k, budget);
        if full_run.is_some() {
            return (vec![Some(Reason::FullRun); self.ids.len()], full_run);
        }
        let mut reasons: Vec<Option<Reason>> = vec![None; self.ids.len()];
        // Budget: walk the order and take tests while the budget lasts. A recall budget is
        // the share of test time that caught that share of failures on the newest failing
        // builds the backtest scored (checked above): measured, not the model's own estimate.
        let recall_share = match budget {
            Budget::Recall(r) => k.strategy.curve.share_for(r),
            _ => None,
        };
        let total_time = self.total_time;
        let mut time = 0.0;
        for &(i, _, d) in &self.scored {
            let take = match budget {
                Budget::All => true,
                Budget::Share(s) => time + d <= s * total_time || time == 0.0,
                Budget::Seconds(s) => time + d <= s || time == 0.0,
                Budget::Recall(_) => {
                    let s = recall_share.unwrap_or(1.0);
                    time < s * total_time || time == 0.0
                }
            };
            if !take {
                if matches!(budget, Budget::Recall(_)) {
                    break;
                }
                continue; // a shorter test further down may still fit
            }
            time += d;
            reasons[i] = Some(Reason::Predicted);
        }
        // A rule is the stronger promise: report it even when the budget took the test too.
        for (r, keep) in reasons.iter_mut().zip(&self.keep) {
            if keep.is_some() {
                *r = *keep;
            }
        }
        // Exploration: a seeded share of what would be deselected.
        if cfg.exploration > 0.0 {
            let left = reasons.iter().filter(|r| r.is_none()).count();
            let n = ((left as f64) * cfg.exploration).ceil() as usize;
            let picks: Vec<usize> = (self.draw.iter().copied())
                .filter(|&i| reasons[i].is_none())
                .take(n)
                .collect();
            for i in picks {
                reasons[i] = Some(Reason::Exploration);
            }
        }
        (reasons, None)
    }
}

/// What a plan at each of several budgets would run: `eval`'s confidence curve replays the
/// real plan (safety rules, cold start, exploration and all) at every budget of the curve.
pub struct Selections {
    /// The candidates, de-duplicated, in the order given.
    pub ids: Vec<String>,
    /// Per budget asked: which of `ids` run (every one on a full run).
    pub selected: Vec<Vec<bool>>,
}

/// [`plan`] at each of `budgets`, ranking the candidates once.
pub fn selections(
    k: &Knowledge<'_>,
    req: &Request<'_>,
    cfg: &PlanConfig,
    budgets: &[Budget],
) -> Result<Selections, String> {
    let ranked = rank(k, req, cfg)?;
    let selected = budgets
        .iter()
        .map(|&b| {
            let (reasons, _) = ranked.choose(k, b, cfg);
            reasons.iter().map(Option::is_some).collect()
        })
        .collect();
    Ok(Selections {
        ids: ranked.ids,
        selected,
    })
}

/// Make the plan. Errors are configuration errors (bad patterns); the caller decides how to
/// fall back.
pub fn plan(k: &Knowledge<'_>, req: &Request<'_>, cfg: &PlanConfig) -> Result<Plan, String> {
    let ranked = rank(k, req, cfg)?;
    let (reasons, full_run) = ranked.choose(k, req.budget, cfg);
    let Ranked {
        ids,
        scored,
        total_time,
        total_p,
        xs,
        evidence,
        ..
    } = ranked;

    // Explanations compare a test with the average candidate: what sets it apart.
    let mut mean_x = vec![0.0; features::DIM];
    for x in &xs {
        for (m, v) in mean_x.iter_mut().zip(x) {
            *m += v / xs.len() as f64;
        }
    }
    let mut tests = Vec::with_capacity(ids.len());
    let mut deselected_tests = Vec::new();
    let (mut sel_time, mut sel_p) = (0.0, 0.0);
    for &(i, p, d) in &scored {
        let reason = reasons[i].unwrap_or(Reason::Deselected);
        let selected = reason != Reason::Deselected;
        let top_features = if req.explain {
            k.model
                .contributions(&xs[i], &mean_x)
                .into_iter()
                .take(3)
                .map(|(feature, contribution)| Contribution {
                    feature,
                    value: xs[i][features::index(feature)],
                    contribution,
                })
                .collect()
        } else {
            Vec::new()
        };
        let change_chain = req
            .symbols
            .filter(|_| req.explain)
            .and_then(|a| a.get(&ids[i]))
            .and_then(|r| r.chain.clone());
        let t = PlannedTest {
            id: ids[i].clone(),
            probability: p,
            selected,
            reason,
            estimated_seconds: d,
            top_features,
            change_chain,
        };
        if selected {
            sel_time += d;
            sel_p += p;
            tests.push(t);
        } else {
            deselected_tests.push(t);
        }
    }
    let selected = tests.len();
    let deselected = deselected_tests.len();
    tests.extend(deselected_tests);
    let full = full_run.is_some() || deselected == 0;
    Ok(Plan {
        tests,
        full_run,
        budget: req.budget.to_string(),
        model: k.model.source,
        strategy: Some(k.strategy.clone()),
        selected,
        deselected,
        estimated_seconds_selected: sel_time,
        estimated_seconds_total: total_time,
        expected_recall: expected_recall(k, full, sel_time, total_time, sel_p, total_p),
        warnings: Vec::new(),
        evidence: Some(evidence),
        candidates: None,
        changes: None,
    })
}

impl Plan {
    /// Run every candidate (the plan's order kept), for `why`.
    pub fn run_all(&mut self, why: String) {
        for t in &mut self.tests {
            if !t.selected {
                t.selected = true;
                t.reason = Reason::FullRun;
            }
        }
        self.selected = self.tests.len();
        self.deselected = 0;
        self.estimated_seconds_selected = self.estimated_seconds_total;
        self.expected_recall = 1.0;
        self.full_run = Some(why);
    }

    /// Whether the plan can only be run as the whole, unmodified test command: candidates
    /// that are files or packages with no recorded test cannot be named in any runner's
    /// syntax.
    pub fn whole_command(&self) -> bool {
        self.candidates.as_ref().is_some_and(|c| c.unnamed > 0)
    }
}

/// The share of this build's failures the selection is expected to catch: what running the
/// same share of the test time caught on the newest backtested failing builds, when there are
/// enough of them; else the model's own estimate (its probability mass).
fn expected_recall(
    k: &Knowledge<'_>,
    full: bool,
    sel_time: f64,
    total_time: f64,
    sel_p: f64,
    total_p: f64,
) -> f64 {
    if full {
        return 1.0;
    }
    let curve = &k.strategy.curve;
    if curve.builds.len() >= crate::strategy::MIN_CURVE_BUILDS
        && total_time > 0.0
        && let Some(r) = curve.recall_at(sel_time / total_time)
    {
        return r;
    }
    if total_p > 0.0 { sel_p / total_p } else { 1.0 }
}

/// The plan of last resort: every candidate, in the given order, with a warning.
pub fn run_everything(candidates: &[String], warning: String) -> Plan {
    let mut seen = HashSet::new();
    let tests: Vec<PlannedTest> = candidates
        .iter()
        .filter(|c| seen.insert(c.as_str()))
        .map(|id| PlannedTest {
            id: id.clone(),
            probability: 0.0,
            selected: true,
            reason: Reason::FullRun,
            estimated_seconds: 0.0,
            top_features: Vec::new(),
            change_chain: None,
        })
        .collect();
    Plan {
        selected: tests.len(),
        deselected: 0,
        tests,
        full_run: Some("fedtest could not plan; running everything".to_owned()),
        budget: Budget::All.to_string(),
        model: Source::Prior,
        strategy: None,
        estimated_seconds_selected: 0.0,
        estimated_seconds_total: 0.0,
        expected_recall: 1.0,
        warnings: vec![warning],
        evidence: None,
        candidates: None,
        changes: None,
    }
}
