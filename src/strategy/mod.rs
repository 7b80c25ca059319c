//! Which ordering plans this repository: a small fixed set of candidate orderings, each scored
//! on the repository's own failing builds, and a rule that picks the one to plan with.
//!
//! The model is worth having where it measurably orders better than simple history — and only
//! there. A prior fitted on other repositories is a guess elsewhere, and on some real histories
//! it ordered worse than a decayed failure count. So every failing build is a backtest: before
//! the build is folded into the history, every candidate orders its tests from exactly what
//! `plan` knew (the state before the build, the models on disk), and its APFD is kept in a
//! scoreboard. The plan then uses the leader.
//!
//! Every candidate is a linear model over the same feature vector, so the plan, its
//! explanations and its budgets work the same way whichever leads: the heuristics are the
//! linear scores that reproduce them exactly (`new_test` and `decayed_failures_0_8_log` order
//! tests as the decayed-failure heuristic does, `failed_last_run` as `pytest --ff` does).
//!
//! The rule is follow-the-leader with a margin on a discounted mean of each candidate's APFD
//! advantage over the decayed-failure heuristic, paired build by build (the same builds, so
//! the difference is not the builds' difficulty). A challenger takes over only when it leads
//! the incumbent by more than [`MARGIN`] over at least [`MIN_SCORED`] builds, so the plan does
//! not flap; the heuristic is always a candidate, and it takes back over on weaker evidence
//! ([`FALLBACK_CONFIDENCE`]), so fedtest cannot stay behind it for long.

pub mod describe;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::features::{self, BuildContext};
use crate::history::state::{Example, State};
use crate::junit::{Outcome, TestCase};
use crate::model::{self, Model, Source, prior};

/// One candidate ordering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Candidate {
    /// The model trained on this repository (`model.json`).
    Local,
    /// The federation's global model (`model.global.json`).
    Global,
    /// The prior embedded in the binary (or the one `FEDTEST_PRIOR` names).
    Prior,
    /// Decayed failure count (0.8 per run), new tests first.
    History,
    /// Tests that failed in their last run first (`pytest --ff`).
    FailedFirst,
}

/// Every candidate, in the order they are shown.
pub const ALL: [Candidate; 5] = [
    Candidate::Local,
    Candidate::Global,
    Candidate::Prior,
    Candidate::History,
    Candidate::FailedFirst,
];

impl Candidate {
    pub fn name(self) -> &'static str {
        match self {
            Candidate::Local => "local",
            Candidate::Global => "global",
            Candidate::Prior => "prior",
            Candidate::History => "history",
            Candidate::FailedFirst => "failed-first",
        }
    }

    /// What the candidate is, in a few words.
    pub fn describe(self) -> &'static str {
        match self {
            Candidate::Local => "the model trained on this repository",
            Candidate::Global => "the federation's global model",
            Candidate::Prior => "the built-in prior",
            Candidate::History => "decayed failure history, new tests first",
            Candidate::FailedFirst => "last failed first",
        }
    }
}

/// The weight that puts new tests ahead of every known one in [`heuristic`]: more than the
/// largest `ln(1 + decayed count)`, which is `ln(1 + 1/(1 − 0.8)) = ln 6 ≈ 1.79`.
const NEW_TEST_FIRST: f64 = 2.0;

/// The linear model that orders exactly as a heuristic candidate does.
pub fn heuristic(c: Candidate) -> Option<Model> {
    let mut w = vec![0.0; features::DIM];
    match c {
        Candidate::History => {
            w[features::index("new_test")] = NEW_TEST_FIRST;
            w[features::index("decayed_failures_0_8_log")] = 1.0;
        }
        Candidate::FailedFirst => w[features::index("failed_last_run")] = 1.0,
        _ => return None,
    }
    Some(Model::from_weights(Source::Heuristic, w, 0.0))
}

/// The candidates' models, as `plan` would load them now.
#[derive(Clone, Debug)]
pub struct Models {
    pub local: Option<Model>,
    pub global: Option<Model>,
    pub prior: Model,
    /// Model files that exist but cannot be used (fedtest's own trouble: a warning).
    pub problems: Vec<String>,
}

impl Models {
    /// Load from a data dir; a missing or unusable file makes that candidate unavailable.
    pub fn load(dir: &Path) -> Models {
        let mut problems = Vec::new();
        let mut load = |path: &Path| {
            if !path.exists() {
                return None;
            }
            Model::load(path)
                .map_err(|e| problems.push(format!("{e}; planning without it")))
                .ok()
        };
        let local = load(&model::local_path(dir));
        let global = load(&dir.join(crate::model::GLOBAL_MODEL_FILE));
        Models {
            local,
            global,
            prior: prior::prior(),
            problems,
        }
    }

    /// The candidate's model, when it has one now.
    pub fn get(&self, c: Candidate) -> Option<Model> {
        match c {
            Candidate::Local => self.local.clone(),
            Candidate::Global => self.global.clone(),
            Candidate::Prior => Some(self.prior.clone()),
            Candidate::History | Candidate::FailedFirst => heuristic(c),
        }
    }
}

/// Discount per scored build: about the last 40 failing builds decide.
pub const DECAY: f64 = 0.975;
/// A challenger must lead the incumbent's mean advantage by this much APFD to take over.
pub const MARGIN: f64 = 0.005;
/// Builds a candidate must have been scored on before it may lead.
pub const MIN_SCORED: u64 = 10;
/// How sure the backtest must be: a challenger's paired lead over the incumbent must exceed
/// this many standard errors (about 98% one-sided). The rule looks again after every build,
/// so a weaker bar switches on noise: at 1, replays of 16 histories switched back and forth
/// and ended up to 0.09 APFD below every candidate on one of them.
pub const CONFIDENCE: f64 = 2.0;
/// How sure the backtest must be that the decayed-failure heuristic leads the incumbent before
/// the plan falls back to it. The heuristic is the safe default every team already accepts
/// (`pytest --ff` and its kind), so leaving it needs [`CONFIDENCE`] but returning to it needs
/// only a paired lead beyond one standard error: a prior fitted elsewhere that orders worse
/// here gives way within a few failing builds instead of the dozens that two standard errors
/// take. Replayed on 15 histories (examples/replay.rs, with the previous prior), with two
/// standard errors both ways one history (26 failing builds) stayed 0.036 APFD behind the
/// heuristic for good; with this bar it falls back after ten and ends 0.0055 behind, and the
/// mean share of the gap to the optimal order closed rises from 6.7% to 7.6% (the prior keeps
/// leading where it is ahead). A fallback after five builds ended every history within 0.0015
/// but gave up jinja's and flask's gains on early noise (mean 5.2%): one minimum of evidence,
/// [`MIN_SCORED`], for every switch.
pub const FALLBACK_CONFIDENCE: f64 = 1.0;

/// Two candidates compared on the builds where both were scored: discounted sums of the
/// APFD difference (first minus second, in [`ALL`] order) and of its square.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Pair {
    pub diff: f64,
    pub square: f64,
    pub weight: f64,
}

fn pair_key(a: Candidate, b: Candidate) -> String {
    format!("{}/{}", a.name(), b.name())
}

/// One candidate's record.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// Failing builds it was scored on.
    pub scored: u64,
    /// Discounted sums: APFD, APFD minus the heuristic's on the same build, and the weight.
    pub apfd: f64,
    pub advantage: f64,
    pub weight: f64,
    /// APFD on the newest scored build.
    pub last: f64,
}

impl Entry {
    /// Discounted mean APFD.
    pub fn mean_apfd(&self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.apfd / self.weight)
    }
    /// Discounted mean APFD advantage over the decayed-failure heuristic.
    pub fn mean_advantage(&self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.advantage / self.weight)
    }
}

/// The backtest's state: every candidate's record, and who plans.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Scoreboard {
    /// Failing builds scored so far.
    pub builds: u64,
    pub entries: BTreeMap<Candidate, Entry>,
    /// Who plans now (`None` until the first failing build is scored: [`cold_start`]).
    pub leader: Option<Candidate>,
    /// The build (sequence number) since which the leader plans.
    pub since: u64,
    /// Where the strategy in use put the newest failing builds' failures.
    #[serde(default)]
    pub curve: Curve,
    /// Every two candidates, paired build by build (key `first/second`, in [`ALL`] order).
    #[serde(default)]
    pub pairs: BTreeMap<String, Pair>,
}

/// The candidate that plans before any failing build has been scored. Where builds list their
/// changed files, the prior: its advantage over history comes from the change features (held
/// out, `bench/prior/LOHO.md`, up to +0.11 APFD). Without them, the decayed-failure heuristic:
/// held out the prior was ahead there too, but by 0.0005–0.012, and starting on it cost up to
/// 0.0008 APFD on four of eight such histories before the heuristic took back over — a small
/// gain (9.6% of the gap to the optimal order closed on average against 8.6%) not worth
/// ordering worse than `--ff` on a new user's first builds.
pub fn cold_start(changes_known: bool) -> Candidate {
    if changes_known {
        Candidate::Prior
    } else {
        Candidate::History
    }
}

impl Scoreboard {
    /// The candidate to plan with: the leader when its model is available, else the best
    /// available by record, else the cold-start choice.
    pub fn choose(&self, models: &Models, changes_known: bool) -> Candidate {
        let available = |c: Candidate| models.get(c).is_some();
        if let Some(l) = self.leader.filter(|&l| available(l)) {
            return l;
        }
        self.best(available)
            .unwrap_or_else(|| cold_start(changes_known))
    }

    /// The best eligible candidate by mean advantage (ties: the earlier in [`ALL`]).
    fn best(&self, available: impl Fn(Candidate) -> bool) -> Option<Candidate> {
        let mut best: Option<(Candidate, f64)> = None;
        for c in ALL {
            let Some(e) = self.entries.get(&c) else {
                continue;
            };
            let Some(a) = e.mean_advantage() else {
                continue;
            };
            if e.scored < MIN_SCORED || !available(c) {
                continue;
            }
            if best.is_none_or(|(_, b)| a > b) {
                best = Some((c, a));
            }
        }
        best.map(|(c, _)| c)
    }

    /// Fold one scored build (every available candidate's APFD) into the record, then apply
    /// the leader rule. `scores` must include the heuristic ([`Candidate::History`]).
    pub fn observe(&mut self, seq: u64, scores: &[(Candidate, f64)], changes_known: bool) {
        let Some(&(_, base)) = scores.iter().find(|(c, _)| *c == Candidate::History) else {
            return;
        };
        self.builds += 1;
        for &(c, apfd) in scores {
            let e = self.entries.entry(c).or_default();
            e.scored += 1;
            e.apfd = DECAY * e.apfd + apfd;
            e.advantage = DECAY * e.advantage + (apfd - base);
            e.weight = DECAY * e.weight + 1.0;
            e.last = apfd;
        }
        for (i, &(a, x)) in scores.iter().enumerate() {
            for &(b, y) in &scores[i + 1..] {
                let (first, second, d) = if a < b { (a, b, x - y) } else { (b, a, y - x) };
                let p = self.pairs.entry(pair_key(first, second)).or_default();
                p.diff = DECAY * p.diff + d;
                p.square = DECAY * p.square + d * d;
                p.weight = DECAY * p.weight + 1.0;
            }
        }
        let available = |c: Candidate| scores.iter().any(|(s, _)| *s == c);
        let incumbent = self.leader.unwrap_or_else(|| cold_start(changes_known));
        let next = match self.best(available) {
            // The incumbent cannot be scored now (its model is gone): the best that can.
            Some(c) if !available(incumbent) => c,
            Some(c) if c != incumbent && self.ahead(c, incumbent, MARGIN, CONFIDENCE) => c,
            // The way back to the heuristic is shorter ([`FALLBACK_CONFIDENCE`]).
            _ if incumbent != Candidate::History
                && self.ahead(Candidate::History, incumbent, 0.0, FALLBACK_CONFIDENCE) =>
            {
                Candidate::History
            }
            _ => incumbent,
        };
        if self.leader != Some(next) {
            self.leader = Some(next);
            self.since = seq;
        }
    }
}

impl Scoreboard {
    /// `c`'s discounted mean APFD lead over `over` on the builds where both were scored, and
    /// its standard error.
    pub fn lead(&self, c: Candidate, over: Candidate) -> Option<(f64, f64)> {
        let (key, sign) = if c < over {
            (pair_key(c, over), 1.0)
        } else {
            (pair_key(over, c), -1.0)
        };
        let p = self.pairs.get(&key).filter(|p| p.weight > 0.0)?;
        let mean = p.diff / p.weight;
        let var = (p.square / p.weight - mean * mean).max(0.0);
        Some((sign * mean, (var / p.weight).sqrt()))
    }

    /// Whether `c` leads `over` by more than `margin` APFD and by more than `confidence`
    /// standard errors, over at least [`MIN_SCORED`] paired builds.
    fn ahead(&self, c: Candidate, over: Candidate, margin: f64, confidence: f64) -> bool {
        let scored = self.entries.get(&c).map_or(0, |e| e.scored);
        match self.lead(c, over) {
            Some((mean, se)) => scored >= MIN_SCORED && mean > margin && mean > confidence * se,
            None => false,
        }
    }

    /// The stored record; a missing one is empty, an unreadable one an error.
    pub fn parse(stored: Option<&str>) -> Result<Scoreboard, String> {
        stored.map_or(Ok(Scoreboard::default()), |text| {
            serde_json::from_str(text).map_err(|e| e.to_string())
        })
    }
}

/// What `record` runs inside its transaction (see `crate::history::store::Backtest`): every
/// available candidate judged on the build from the state before it, the scoreboard updated.
pub fn backtest<'a>(
    models: &'a Models,
    results: &'a [TestCase],
    changed_files: Option<&'a [String]>,
    symbols: Option<&'a crate::changes::Analysis>,
) -> impl FnMut(u64, &State, Option<&str>) -> Result<Option<String>, String> + 'a {
    move |seq, state, stored| {
        let mut board = Scoreboard::parse(stored)?;
        let known = changed_files.is_some();
        let in_use = board.choose(models, known);
        let Some(judged) = judge(state, results, changed_files, symbols, models, in_use) else {
            return Ok(None);
        };
        board.curve.push(judged.failing_at);
        board.observe(seq, &judged.scores, known);
        Ok(Some(
            serde_json::to_string(&board).expect("a scoreboard serialises"),
        ))
    }
}

/// Store key of [`Calibration`].
pub const CALIBRATION_KEY: &str = "backtest.calibration";

/// Platt calibration of a candidate without calibration of its own (see
/// [`needs_calibration`]), fitted on the stored examples after each build.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    pub candidate: Candidate,
    pub calibration: [f64; 2],
}

/// Whether a candidate's probabilities come from a [`Calibration`]: all but the local model,
/// which is calibrated on its own holdout when it is trained.
pub fn needs_calibration(c: Candidate) -> bool {
    c != Candidate::Local
}

/// Fit the calibration of `model`'s raw score on the examples (natural weights undo the
/// sampling of passes); `None` when they hold one class only. When the scores cannot rank the
/// examples yet (on a first build every test is new and scores the same), every test gets the
/// repository's failure rate: a calibration that keeps the order and claims nothing.
pub fn calibrate(model: &Model, examples: &[Example]) -> Option<[f64; 2]> {
    let scores: Vec<f64> = examples.iter().map(|e| model.score(&e.features)).collect();
    let y: Vec<bool> = examples.iter().map(|e| e.failed).collect();
    let w: Vec<f64> = examples.iter().map(|e| e.natural).collect();
    if !y.contains(&true) || !y.contains(&false) {
        return None;
    }
    crate::model::train::platt(&scores, &y, &w).or_else(|| {
        let failed: f64 = w.iter().zip(&y).filter(|(_, y)| **y).map(|(w, _)| w).sum();
        let rate = (failed / w.iter().sum::<f64>()).clamp(1e-6, 1.0 - 1e-6);
        Some([1e-9, (rate / (1.0 - rate)).ln()])
    })
}

/// The strategy a plan uses, as the plan reports it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct InUse {
    pub candidate: Candidate,
    /// The build since which it plans; `None` at cold start (no failing build scored yet).
    pub since_build: Option<u64>,
    /// Failing builds the backtest has scored.
    pub builds_scored: u64,
    /// Whether its probabilities are calibrated on this repository (else they are the
    /// model's raw ones: shown, but no budget relies on them).
    pub calibrated: bool,
    /// Where it put the newest failing builds' failures (what a recall budget costs).
    #[serde(skip)]
    pub curve: Curve,
}

impl InUse {
    /// One line for people: "history (decayed failure history, new tests first), since build 12".
    pub fn describe(&self) -> String {
        let when = match self.since_build {
            Some(b) => format!(
                "leading since build #{b}; {} failing builds backtested",
                self.builds_scored
            ),
            None => "cold start: no failing build backtested yet".to_owned(),
        };
        format!(
            "{} ({}), {when}",
            self.candidate.name(),
            self.candidate.describe()
        )
    }
}

/// What `plan` plans with: the stored backtest record and calibration read from the store,
/// the models from the data dir. An unreadable record is an error (the plan then runs
/// everything, with a warning).
pub fn for_plan(
    store: Option<&crate::history::Store>,
    models: &Models,
    changes_known: bool,
) -> Result<(Model, InUse), String> {
    let (board, calibration) = match store {
        Some(s) => {
            let board = Scoreboard::parse(s.backtest().map_err(|e| e.to_string())?.as_deref())
                .map_err(|e| format!("the backtest record is unreadable: {e}"))?;
            // A calibration that cannot be read is only a missing one: it is refitted after
            // the next build.
            let calibration = s
                .meta(CALIBRATION_KEY)
                .map_err(|e| e.to_string())?
                .and_then(|t| serde_json::from_str(&t).ok());
            (board, calibration)
        }
        None => (Scoreboard::default(), None),
    };
    Ok(in_use(&board, calibration, models, changes_known))
}

/// The model to plan with, and which strategy it is.
pub fn in_use(
    board: &Scoreboard,
    calibration: Option<Calibration>,
    models: &Models,
    changes_known: bool,
) -> (Model, InUse) {
    let candidate = board.choose(models, changes_known);
    let mut model = models
        .get(candidate)
        .unwrap_or_else(|| models.prior.clone());
    let mut calibrated = !needs_calibration(candidate) && model.trained_failures > 0;
    if needs_calibration(candidate) {
        match calibration.filter(|c| c.candidate == candidate) {
            Some(c) => {
                model.calibration = c.calibration;
                calibrated = true;
            }
            None => model.calibration = [1.0, 0.0],
        }
    }
    let since_build = (board.leader == Some(candidate)).then_some(board.since);
    (
        model,
        InUse {
            candidate,
            since_build,
            builds_scored: board.builds,
            calibrated,
            curve: board.curve.clone(),
        },
    )
}

/// APFD of ordering the tests by `scores`, highest first, ties in the given order (as `plan`
/// sorts); `None` without a failing test or with fewer than two tests.
pub fn apfd(scores: &[f64], failing: &[bool]) -> Option<f64> {
    let n = scores.len();
    let m = failing.iter().filter(|f| **f).count();
    if n < 2 || m == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let sum: f64 = order
        .iter()
        .enumerate()
        .filter(|(_, i)| failing[**i])
        .map(|(pos, _)| (pos + 1) as f64)
        .sum();
    Some(1.0 - sum / (n as f64 * m as f64) + 1.0 / (2.0 * n as f64))
}

/// What the backtest learned from one failing build.
#[derive(Clone, Debug, PartialEq)]
pub struct Judged {
    /// Every available candidate's APFD.
    pub scores: Vec<(Candidate, f64)>,
    /// Where the failing tests stood in the order of the candidate in use: the share of the
    /// estimated test time up to and including each one.
    pub failing_at: Vec<f64>,
}

/// Every available candidate's APFD on one build, and where the candidate in use put its
/// failures, from the state before the build: `None` when the build has nothing to score (no
/// failure, or fewer than two executed tests).
pub fn judge(
    state: &State,
    results: &[TestCase],
    changed_files: Option<&[String]>,
    symbols: Option<&crate::changes::Analysis>,
    models: &Models,
    in_use: Candidate,
) -> Option<Judged> {
    let executed: Vec<&TestCase> = results
        .iter()
        .filter(|t| t.outcome != Outcome::Skipped)
        .collect();
    let failing: Vec<bool> = executed
        .iter()
        .map(|t| t.outcome == Outcome::Failed)
        .collect();
    if executed.len() < 2 || !failing.contains(&true) {
        return None;
    }
    let ctx = BuildContext::new(state, changed_files).with_symbols(symbols);
    // Features as `plan` computes them: from the id and the stored file (a plan has no report).
    let xs: Vec<Vec<f64>> = executed
        .iter()
        .map(|t| features::compute(&t.id, None, &ctx))
        .collect();
    let mut scores = Vec::with_capacity(ALL.len());
    let mut failing_at = Vec::new();
    for c in ALL {
        let Some(m) = models.get(c) else { continue };
        let s: Vec<f64> = xs.iter().map(|x| m.score(x)).collect();
        if let Some(a) = apfd(&s, &failing) {
            scores.push((c, a));
        }
        if c == in_use {
            let ids: Vec<&str> = executed.iter().map(|t| t.id.as_str()).collect();
            failing_at = time_shares(state, &ids, &s, &failing);
        }
    }
    Some(Judged { scores, failing_at })
}

/// The share of the estimated test time (as `plan` estimates it) that runs up to and
/// including each failing test, in the order of `scores`.
fn time_shares(state: &State, ids: &[&str], scores: &[f64], failing: &[bool]) -> Vec<f64> {
    let median = features::median_duration(state)
        .filter(|m| *m > 0.0)
        .unwrap_or(1.0);
    let estimate: Vec<f64> = ids
        .iter()
        .map(|id| {
            state
                .tests
                .get(*id)
                .filter(|s| s.runs > 0)
                .map_or(median, |s| s.duration.max(0.0))
        })
        .collect();
    let total: f64 = estimate.iter().sum();
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let n = ids.len() as f64;
    let mut acc = 0.0;
    let mut out = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        acc += estimate[i];
        if failing[i] {
            // Without durations, the share of tests stands in for the share of time.
            out.push(if total > 0.0 {
                acc / total
            } else {
                (pos + 1) as f64 / n
            });
        }
    }
    out
}

/// Failing builds the recall curve keeps: the newest ones decide what a recall budget costs.
pub const CURVE_BUILDS: usize = 50;
/// Positions kept per build (evenly spaced among its failing tests').
const CURVE_POINTS: usize = 32;
/// Backtested failing builds a recall budget needs before it may skip anything.
pub const MIN_CURVE_BUILDS: usize = 10;

/// Where the strategy in use put the failures of the newest failing builds, in shares of the
/// test time: what running the first X% of the time would have caught.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Curve {
    /// Per build, oldest first: the sorted time shares of its failing tests.
    pub builds: std::collections::VecDeque<Vec<f32>>,
}

impl Curve {
    pub fn push(&mut self, mut shares: Vec<f64>) {
        if shares.is_empty() {
            return;
        }
        shares.sort_by(f64::total_cmp);
        let kept: Vec<f32> = if shares.len() <= CURVE_POINTS {
            shares.iter().map(|&v| v as f32).collect()
        } else {
            (0..CURVE_POINTS)
                .map(|k| shares[(k * shares.len()) / CURVE_POINTS] as f32)
                .collect()
        };
        self.builds.push_back(kept);
        while self.builds.len() > CURVE_BUILDS {
            self.builds.pop_front();
        }
    }

    /// Mean per-build share of failing tests inside the first `share` of the test time.
    pub fn recall_at(&self, share: f64) -> Option<f64> {
        if self.builds.is_empty() {
            return None;
        }
        let sum: f64 = self
            .builds
            .iter()
            .map(|b| b.iter().filter(|&&v| f64::from(v) <= share).count() as f64 / b.len() as f64)
            .sum();
        Some(sum / self.builds.len() as f64)
    }

    /// The smallest share of the test time whose mean per-build recall on the kept builds is
    /// at least `recall`; `None` while fewer than [`MIN_CURVE_BUILDS`] builds are kept.
    pub fn share_for(&self, recall: f64) -> Option<f64> {
        if self.builds.len() < MIN_CURVE_BUILDS {
            return None;
        }
        let mut points: Vec<f64> = self
            .builds
            .iter()
            .flatten()
            .map(|&v| f64::from(v))
            .collect();
        points.sort_by(f64::total_cmp);
        points.dedup();
        Some(
            points
                .into_iter()
                .find(|&p| self.recall_at(p).is_some_and(|r| r >= recall))
                .unwrap_or(1.0)
                .min(1.0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apfd_orders_by_score_and_keeps_ties_in_given_order() {
        // Failing test scored highest: first of four.
        assert_eq!(
            apfd(&[0.1, 0.9, 0.2, 0.3], &[false, true, false, false]),
            Some(0.875)
        );
        // All tied: the given order decides (failing test last of four).
        assert_eq!(
            apfd(&[0.0; 4], &[false, false, false, true]),
            Some(1.0 - 4.0 / 4.0 + 1.0 / 8.0)
        );
        assert_eq!(apfd(&[0.0; 4], &[false; 4]), None);
    }

    fn board_after(rounds: &[&[(Candidate, f64)]], changes: bool) -> Scoreboard {
        let mut b = Scoreboard::default();
        for (i, r) in rounds.iter().enumerate() {
            b.observe(i as u64 + 1, r, changes);
        }
        b
    }

    #[test]
    fn the_heuristic_leads_until_a_candidate_beats_it_clearly() {
        use Candidate::*;
        let round: &[(Candidate, f64)] = &[(History, 0.80), (Prior, 0.83), (FailedFirst, 0.70)];
        // Fewer than MIN_SCORED builds: the cold-start choice stays.
        let b = board_after(&vec![round; MIN_SCORED as usize - 1], false);
        assert_eq!(b.leader, Some(History));
        let b = board_after(&vec![round; MIN_SCORED as usize], false);
        assert_eq!(b.leader, Some(Prior));
        assert_eq!(b.since, MIN_SCORED);
        // A lead inside the margin does not switch.
        let close: &[(Candidate, f64)] = &[(History, 0.80), (Prior, 0.8049)];
        let b = board_after(&vec![close; 20], false);
        assert_eq!(b.leader, Some(History));
    }

    #[test]
    fn the_heuristic_takes_back_over_on_weaker_evidence_than_it_takes_to_leave_it() {
        use Candidate::*;
        // Paired differences +0.10 and −0.04 in turn: a lead of about 1.4 standard errors.
        let a: &[(Candidate, f64)] = &[(History, 0.80), (Prior, 0.70), (Local, 0.70)];
        let b: &[(Candidate, f64)] = &[(History, 0.70), (Prior, 0.74), (Local, 0.74)];
        let rounds: Vec<_> = [a, b]
            .into_iter()
            .cycle()
            .take(MIN_SCORED as usize)
            .collect();
        let board = board_after(&rounds, true);
        let (lead, se) = board.lead(History, Prior).unwrap();
        assert!(
            lead > FALLBACK_CONFIDENCE * se && lead < CONFIDENCE * se,
            "{lead} {se}"
        );
        // Changes known: the prior planned first, and gives way to the heuristic.
        assert_eq!(board.leader, Some(History));
        assert_eq!(board.since, MIN_SCORED);
        // The same lead the other way round does not move the plan off the heuristic.
        let mirrored: Vec<Vec<(Candidate, f64)>> = rounds
            .iter()
            .map(|r| {
                let h = r[0].1;
                let p = r[1].1;
                vec![(History, p), (Local, h)]
            })
            .collect();
        let refs: Vec<&[(Candidate, f64)]> = mirrored.iter().map(Vec::as_slice).collect();
        let board = board_after(&refs, false);
        assert_eq!(board.leader, Some(History));
        // One build short of the minimum, the prior keeps planning.
        let board = board_after(&rounds[..MIN_SCORED as usize - 1], true);
        assert_eq!(board.leader, Some(Prior));
    }

    #[test]
    fn a_leader_that_falls_behind_is_replaced() {
        use Candidate::*;
        let good: &[(Candidate, f64)] = &[(History, 0.80), (Local, 0.90)];
        let bad: &[(Candidate, f64)] = &[(History, 0.80), (Local, 0.60)];
        let mut rounds = vec![good; 10];
        let b = board_after(&rounds, false);
        assert_eq!(b.leader, Some(Local));
        rounds.extend(vec![bad; 30]);
        let b = board_after(&rounds, false);
        assert_eq!(b.leader, Some(History));
        assert!(b.since > 10);
    }

    #[test]
    fn an_unavailable_leader_gives_way() {
        use Candidate::*;
        let b = board_after(&[&[(History, 0.5), (Local, 0.9)][..]; 10], false);
        assert_eq!(b.leader, Some(Local));
        let models = Models {
            local: None,
            global: None,
            prior: prior::embedded(),
            problems: Vec::new(),
        };
        assert_eq!(b.choose(&models, false), History);
    }

    #[test]
    fn heuristic_models_reproduce_the_heuristics() {
        let h = heuristic(Candidate::History).unwrap();
        let new = {
            let mut x = vec![0.0; features::DIM];
            x[features::index("new_test")] = 1.0;
            x
        };
        let failing_a_lot = {
            let mut x = vec![0.0; features::DIM];
            x[features::index("decayed_failures_0_8_log")] = (1.0f64 / 0.2).ln_1p();
            x
        };
        assert!(h.score(&new) > h.score(&failing_a_lot));
        assert!(heuristic(Candidate::Local).is_none());
    }
}
