//! `fedtest demo`: the main job end to end on the embedded example builds — a real project's
//! CI history, recorded build by build, with every failing build planned from only the builds
//! before it, as `fedtest plan` would have planned it. The report says in plain words what each
//! number is (issue 13: a budget of "30%" next to "94 of 119 tests" read as a contradiction,
//! a missed failure was not said to leave the build red, and feature names and APFD were
//! shown unexplained), shows one build in detail, the newest failing build with its misses,
//! and ends with the confidence curve over the whole history.

mod builds;
mod sources;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::eval::curve::Ordering;
use crate::eval::{self, ReplayBuild};
use crate::features::{self, BuildContext};
use crate::history::Store;
use crate::history::state::State;
use crate::history::store::{BuildMeta, Retention};
use crate::junit::{self, Limits, Outcome, TestCase};
use crate::model::prior;
use crate::model::train::TrainOptions;
use crate::output::Printer;
use crate::plan::{self, Budget, Knowledge, Plan, Request};
use crate::record::retrain;
use crate::strategy::Candidate;

pub use builds::{BUILDS, DemoBuild};

/// The JUnit results of one embedded build.
pub fn results(b: &DemoBuild) -> Result<Vec<TestCase>> {
    let label = format!("examples/demo/builds/{}/junit.xml", b.id);
    let attempts = junit::read_from(b.junit.as_bytes(), &label, &Limits::default())?;
    Ok(junit::group(attempts))
}

fn changed(b: &DemoBuild) -> Vec<String> {
    b.changed_files.iter().map(|s| (*s).to_owned()).collect()
}

/// Tests shown in the detailed plan.
const SHOWN: usize = 10;

/// One failing build, planned from the builds before it.
struct Planned {
    /// Index into [`BUILDS`].
    index: usize,
    plan: Plan,
    /// The tests that failed, with their place in the plan (1-based).
    failed: Vec<(String, usize)>,
    /// Measured test time of the whole build and of the tests the plan runs, seconds.
    seconds_all: f64,
    seconds_run: f64,
    /// The plan's first tests: why each ranks high, in words.
    why: Vec<String>,
    /// The ordering in use, in words.
    ordering: String,
    /// How each failing test's code reaches the change, when it does.
    chains: HashMap<String, String>,
}

impl Planned {
    fn ran(&self) -> usize {
        self.failed
            .iter()
            .filter(|(id, _)| self.selected(id))
            .count()
    }

    fn selected(&self, id: &str) -> bool {
        self.plan.tests.iter().any(|t| t.id == id && t.selected)
    }
}

/// Run the demo in `dir` and return the report.
pub fn run(dir: &Path, budget: Budget, printer: &Printer) -> Result<String> {
    let config = Config::default();
    let all: Vec<Vec<TestCase>> = BUILDS.iter().map(results).collect::<Result<_>>()?;
    let quiet = Printer::new(crate::ci::Platform::None).quiet();
    let mut store = Store::open_or_create(dir)?;
    let mut planned: Vec<Planned> = Vec::new();
    // Without git (or its bundle) the demo still runs, on file-level change features only.
    let sources = sources::Sources::open();
    if let Err(why) = &sources {
        printer.warn(&format!(
            "the sample project's sources are unavailable ({why}): no symbol-level change analysis"
        ));
    }
    for (i, (b, results)) in BUILDS.iter().zip(&all).enumerate() {
        let changed_files = changed(b);
        let ids: Vec<&str> = results.iter().map(|t| t.id.as_str()).collect();
        let symbols = sources
            .as_ref()
            .ok()
            .and_then(|s| s.analyse(i, dir, &ids).ok());
        if i > 0 && results.iter().any(|t| t.outcome == Outcome::Failed) {
            planned.push(plan_build(
                &store,
                dir,
                i,
                results,
                Change {
                    files: &changed_files,
                    symbols: symbols.as_ref(),
                },
                budget,
                &config,
            )?);
        }
        let meta = BuildMeta {
            build_id: format!("demo-{}", b.id),
            commit: Some(b.commit.to_owned()),
            branch: Some("main".to_owned()),
            changed_files: Some(changed_files),
            recorded_at: None,
        };
        let models = crate::strategy::Models::load(dir);
        let mut backtest = crate::strategy::backtest(
            &models,
            results,
            meta.changed_files.as_deref(),
            symbols.as_ref(),
        );
        crate::record::record(
            &mut store,
            &meta,
            results,
            Retention::default(),
            &mut backtest,
            symbols.as_ref(),
        )?;
        let examples = crate::features::stored(&store)?;
        retrain(
            &examples,
            &crate::federation::sync::training_anchor(dir),
            dir,
            &TrainOptions::for_plan(&config.plan),
            &quiet,
        )?;
        crate::record::calibrate_strategy(&store, dir, &examples, true)?;
    }
    printer.info(&format!(
        "recorded {} example builds into {}",
        BUILDS.len(),
        dir.display()
    ));

    let mut s = String::new();
    intro(&mut s, budget, &all);
    table(&mut s, &planned);
    reached(&mut s, &planned);
    // One build in detail: the newest in which several tests broke and the plan ran every one
    // of them, the first in its top tenth — chosen for what it shows, which is why the table
    // above lists every failing build, misses included, and the newest failing build follows.
    let featured = planned
        .iter()
        .rev()
        .find(|p| {
            p.plan.deselected > 0
                && p.failed.len() >= 2
                && p.ran() == p.failed.len()
                && p.failed.iter().map(|f| f.1).min().unwrap_or(usize::MAX) * 10
                    <= p.plan.tests.len()
        })
        .or(planned.last());
    if let Some(p) = featured {
        detail(&mut s, p, budget);
    }
    if let Some(last) = planned
        .last()
        .filter(|l| featured.is_none_or(|f| f.index != l.index))
    {
        newest(&mut s, last);
    }

    // And over the whole history, as `fedtest eval` would report it.
    let owned: Vec<Vec<String>> = BUILDS.iter().map(changed).collect();
    let replay: Vec<ReplayBuild<'_>> = all
        .iter()
        .zip(&owned)
        .map(|(r, c)| ReplayBuild {
            results: r,
            changed_files: Some(c),
        })
        .collect();
    let replayed = eval::replay(&replay, &prior::prior(), None, &config.plan, 5);
    whole_history(&mut s, &replayed.curve, budget);
    para(
        &mut s,
        "",
        "On your project: before the tests, `pytest --collect-only -q > candidates.txt` and \
         `fedtest plan --tests candidates.txt --budget 30% > selected.args` (the plan comes back \
         in pytest's syntax: `pytest @selected.args`); after them, `fedtest record --junit \
         <reports>`. Or `fedtest run`, which does all of it.",
    );
    // The answer to "what would deselecting have cost us": `fedtest eval` draws it for yours.
    s.push_str(&eval::curve::terminal(&replayed.curve));
    Ok(s)
}

/// What build `i` changed: its files, and what the symbol-level analysis made of them.
#[derive(Clone, Copy)]
struct Change<'a> {
    files: &'a [String],
    symbols: Option<&'a crate::changes::Analysis>,
}

/// Plan build `i` from the store (the builds before it), as `fedtest plan` would.
fn plan_build(
    store: &Store,
    dir: &Path,
    i: usize,
    results: &[TestCase],
    change: Change<'_>,
    budget: Budget,
    config: &Config,
) -> Result<Planned> {
    let Change {
        files: changed_files,
        symbols,
    } = change;
    let b = &BUILDS[i];
    let candidates: Vec<String> = results
        .iter()
        .filter(|t| t.outcome != Outcome::Skipped)
        .map(|t| t.id.clone())
        .collect();
    let state = store.state(changed_files)?;
    let models = crate::strategy::Models::load(dir);
    let (model, strategy) =
        crate::strategy::for_plan(Some(store), &models, true).map_err(Error::Internal)?;
    let plan = plan::plan(
        &Knowledge {
            state: &state,
            model: &model,
            strategy: &strategy,
        },
        &Request {
            candidates: &candidates,
            changed_files: Some(changed_files),
            symbols,
            branch: Some("main"),
            build_key: b.commit,
            budget,
            explain: false,
        },
        &config.plan,
    )
    .map_err(Error::Internal)?;
    let failed: Vec<(String, usize)> = results
        .iter()
        .filter(|t| t.outcome == Outcome::Failed)
        .map(|t| {
            let rank = plan
                .tests
                .iter()
                .position(|p| p.id == t.id)
                .map_or(0, |r| r + 1);
            (t.id.clone(), rank)
        })
        .collect();
    let selected: HashSet<&str> = plan
        .tests
        .iter()
        .filter(|t| t.selected)
        .map(|t| t.id.as_str())
        .collect();
    let ctx = BuildContext::new(&state, Some(changed_files)).with_symbols(symbols);
    let why = plan
        .tests
        .iter()
        .take(SHOWN)
        .map(|t| why(&t.id, &state, &ctx, symbols))
        .collect();
    let chains = failed
        .iter()
        .filter_map(|(id, _)| {
            let chain = symbols?.get(id)?.chain.clone()?;
            Some((id.clone(), chain))
        })
        .collect();
    Ok(Planned {
        index: i,
        seconds_all: results.iter().map(|t| t.duration).sum(),
        seconds_run: results
            .iter()
            .filter(|t| selected.contains(t.id.as_str()))
            .map(|t| t.duration)
            .sum(),
        failed,
        why,
        ordering: ordering(strategy.candidate),
        chains,
        plan,
    })
}

/// What a test's history and the build's change say about it, in words (what the model reads,
/// without its feature names).
fn why(
    id: &str,
    state: &State,
    ctx: &BuildContext<'_>,
    symbols: Option<&crate::changes::Analysis>,
) -> String {
    let Some(s) = state.tests.get(id).filter(|s| s.runs > 0) else {
        return "new: no history yet".to_owned();
    };
    let x = features::compute(id, s.file.as_deref(), ctx);
    let f = |name: &str| x[features::index(name)];
    let mut reasons: Vec<String> = Vec::new();
    if let Some(chain) = symbols
        .and_then(|a| a.get(id))
        .and_then(|r| r.chain.as_ref())
    {
        reasons.push(format!("reaches the change: {chain}"));
    }
    if f("own_file_changed") > 0.0 {
        reasons.push("its own file changed".to_owned());
    } else if f("path_similarity") > 0.0 {
        reasons.push("its name is close to a changed file".to_owned());
    }
    if f("cofailure_with_changes") > 0.0 {
        reasons.push("it failed before when these files changed".to_owned());
    }
    let window = s.window_len().min(20);
    match s.recent_fails(window) {
        0 if s.fails == 0 => reasons.push(format!("never failed in {} runs", s.runs)),
        0 => reasons.push(format!(
            "last failed {} runs ago",
            s.runs_since_fail().unwrap_or(0)
        )),
        n => reasons.push(format!("failed {n} of its last {window} runs")),
    }
    if f("module_last_fail_share") > 0.0 || f("family_last_fail_share") > 0.0 {
        reasons.push("tests beside it failed in their last run".to_owned());
    }
    reasons.join("; ")
}

/// The ordering in use, for people.
fn ordering(c: Candidate) -> String {
    match c {
        Candidate::Local => "a model trained on this project's own history",
        Candidate::Global => "the federation's model, learned across projects",
        Candidate::Prior => "the built-in model, fitted on other projects' CI histories",
        Candidate::History => {
            "failure history: tests that failed lately first, new tests first of all"
        }
        Candidate::FailedFirst => "the tests that failed in their last run first",
    }
    .to_owned()
}

/// Width the report's paragraphs are wrapped at.
const WIDTH: usize = 92;

/// `text` as a paragraph wrapped at [`WIDTH`] (words longer than a line stay whole), indented
/// by `indent`, with a blank line after it.
fn para(s: &mut String, indent: &str, text: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty()
            && indent.len() + line.chars().count() + 1 + word.chars().count() > WIDTH
        {
            let _ = writeln!(s, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(s, "{indent}{line}");
    }
    s.push('\n');
}

fn intro(s: &mut String, budget: Budget, all: &[Vec<TestCase>]) {
    let _ = writeln!(
        s,
        "fedtest demo — {} real CI builds of invoicekit, a small Python project \
         (examples/demo/README.md)\n",
        BUILDS.len()
    );
    para(
        s,
        "",
        "After each build fedtest records which tests passed and failed. Before the next one it \
         orders the tests, likeliest failures first; with a budget it also deselects — leaves \
         out — the tests least likely to fail. Until the history holds enough failures to judge \
         by, it only reorders.",
    );
    let last = all.last().map_or(&[][..], Vec::as_slice);
    let total: f64 = last.iter().map(|t| t.duration).sum();
    let slow: Vec<f64> = last
        .iter()
        .map(|t| t.duration)
        .filter(|d| *d >= 0.05)
        .collect();
    let budget_words = match budget {
        Budget::Share(x) => format!(
            "{budget} of the estimated test time, not {budget} of the tests: the plan takes tests \
             in its order until they add up to {:.0}% of the time the whole suite is expected to \
             take (each test's time is estimated from its recorded runs)",
            x * 100.0
        ),
        Budget::Seconds(x) => format!("{x:.1} s of estimated test time"),
        Budget::Recall(r) => format!(
            "the share of test time that ran {:.0}% of the failures of this history's past \
             failing builds",
            r * 100.0
        ),
        Budget::All => {
            "every test (100%): nothing is deselected, only the order changes".to_owned()
        }
    };
    para(
        s,
        "",
        &format!(
            "The budget is {budget_words}. This suite takes {total:.1} s: {} of its {} tests take \
             0.05 s or more and hold {:.0}% of that time, the others about a millisecond each. So \
             a time budget mostly leaves out slow tests that are unlikely to fail, and runs many \
             fast ones. Whatever the budget, new tests, tests that failed in their last 3 runs \
             and a small random sample of the others always run.",
            slow.len(),
            last.len(),
            if total > 0.0 {
                100.0 * slow.iter().sum::<f64>() / total
            } else {
                0.0
            }
        ),
    );
}

/// One line per failing build: where its failures stood, whether the build still went red.
fn table(s: &mut String, planned: &[Planned]) {
    para(
        s,
        "",
        "Every build that failed, each planned from only the builds before it. \"First failure\" \
         is the place of the first failing test in the plan's order; \"time run\" is the \
         measured time of the tests the plan runs, and of the whole suite.",
    );
    let _ = writeln!(
        s,
        "  build  tests  failed  first failure  failures run  time run         the build"
    );
    for p in planned {
        let first = p.failed.iter().map(|f| f.1).min().unwrap_or(0);
        let ran = p.ran();
        let n = p.failed.len();
        let verdict = match &p.plan.full_run {
            Some(why) if why.starts_with("cold start") => {
                "red; every test ran: not deselecting yet".to_owned()
            }
            Some(why) => format!("red; every test ran: {why}"),
            None if ran == n => "red, as it should be".to_owned(),
            None if ran > 0 => format!(
                "still red; {} failing test{} deselected",
                n - ran,
                plural(n - ran)
            ),
            None => format!("GREEN — missed: {n} failing test{} deselected", plural(n)),
        };
        let _ = writeln!(
            s,
            "  {:>5}  {:>5}  {:>6}  {:>13}  {:>12}  {:>15}  {verdict}",
            BUILDS[p.index].id,
            p.plan.tests.len(),
            n,
            format!("#{first}"),
            format!("{ran} of {n}"),
            format!("{:.2} of {:.2} s", p.seconds_run, p.seconds_all),
        );
    }
    s.push('\n');
    let green = planned.iter().filter(|p| p.ran() == 0).count();
    let partial = planned
        .iter()
        .filter(|p| p.ran() > 0 && p.ran() < p.failed.len())
        .count();
    let waited = planned
        .iter()
        .filter(|p| {
            p.plan
                .full_run
                .as_deref()
                .is_some_and(|w| w.starts_with("cold start"))
        })
        .filter_map(|p| p.plan.evidence.as_ref())
        .next_back();
    let waited = waited.map_or_else(String::new, |e| {
        format!(
            " Early on every test ran: deselecting waited for {} builds and {} failed tests, \
             thresholds scaled to this project's size and failure rate.",
            e.min_builds, e.min_failures
        )
    });
    para(
        s,
        "  ",
        &format!(
            "Of {} failing builds, {green} would have gone green wrongly (every failing test \
             deselected), and {partial} still went red with some failing tests deselected — \
             their failures went unseen in that build.{waited}",
            planned.len(),
        ),
    );
}

/// How the change reached the failing tests, build by build: the symbol-level analysis's
/// chains (issue 15).
fn reached(s: &mut String, planned: &[Planned]) {
    let with: Vec<&Planned> = planned.iter().filter(|p| !p.chains.is_empty()).collect();
    if with.is_empty() {
        return;
    }
    para(
        s,
        "",
        "How a change reached its failing tests: fedtest parses the changed files and the tests, \
         maps the diff to the functions and methods it touched and follows calls back from each \
         test's body and fixtures, at most three calls deep. A test that reaches a changed \
         function ranks higher, the closer the higher.",
    );
    for p in with {
        for (id, rank) in &p.failed {
            if let Some(chain) = p.chains.get(id) {
                let _ = writeln!(
                    s,
                    "  {:>5}  {} (#{rank}, {}): {}",
                    BUILDS[p.index].id,
                    crate::text::line(id),
                    if p.selected(id) { "ran" } else { "deselected" },
                    crate::text::line(chain)
                );
            }
        }
    }
    s.push('\n');
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One build in detail: the plan's first tests and why, and what really happened.
fn detail(s: &mut String, p: &Planned, budget: Budget) {
    let b = &BUILDS[p.index];
    let plan = &p.plan;
    para(
        s,
        "",
        &format!(
            "Build {} in detail — \"{}\", changing {}. It is the newest build where several tests \
             broke and the plan ran every one of them, the first near the top; the table above \
             has every failing build, misses included.",
            b.id,
            b.message,
            b.changed_files.join(", ")
        ),
    );
    para(
        s,
        "",
        &format!(
            "The plan is made from builds 01–{:02} only and orders by {}. At budget {budget} it \
             runs {} of the {} tests ({:.2} s of the {:.2} s estimated) and deselects {}. Its \
             first {SHOWN} tests (\"chance\": the estimated chance that the test fails in this \
             build):",
            p.index,
            p.ordering,
            plan.selected,
            plan.tests.len(),
            plan.estimated_seconds_selected,
            plan.estimated_seconds_total,
            plan.deselected
        ),
    );
    let _ = writeln!(s, "      #  chance  test — why it ranks high");
    for (i, (t, why)) in plan.tests.iter().zip(&p.why).enumerate() {
        let failed = p.failed.iter().any(|f| f.0 == t.id);
        let _ = writeln!(
            s,
            "  {} {:>3}  {:>5.1}%  {} — {}",
            if failed { "✗" } else { " " },
            i + 1,
            t.probability * 100.0,
            crate::text::line(&t.id),
            why
        );
    }
    let _ = writeln!(s, "  (✗: failed in the real build)\n");
    let ranks: Vec<String> = p.failed.iter().map(|f| format!("#{}", f.1)).collect();
    let n = p.failed.len();
    para(
        s,
        "",
        &format!(
            "What really happened: {n} test{} failed; the plan ran {} ({}), so the build went red \
             as it should. Test time: {:.2} s instead of {:.2} s — {:.0}% less. The seconds are \
             small because this sample suite runs in about a second; the share is what carries \
             over to a longer suite.",
            plural(n),
            if p.ran() == n {
                if n == 1 {
                    "it".to_owned()
                } else {
                    format!("all {n}")
                }
            } else {
                format!("{} of them", p.ran())
            },
            ranks.join(", "),
            p.seconds_run,
            p.seconds_all,
            if p.seconds_all > 0.0 {
                100.0 * (1.0 - p.seconds_run / p.seconds_all)
            } else {
                0.0
            }
        ),
    );
}

/// The newest failing build, misses stated plainly.
fn newest(s: &mut String, p: &Planned) {
    let b = &BUILDS[p.index];
    let n = p.failed.len();
    let ran: Vec<&(String, usize)> = p.failed.iter().filter(|f| p.selected(&f.0)).collect();
    let missed: Vec<&(String, usize)> = p.failed.iter().filter(|f| !p.selected(&f.0)).collect();
    let list = |v: &[&(String, usize)]| {
        v.iter()
            .map(|f| format!("{} (#{})", f.0, f.1))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let head = format!(
        "The newest failing build, {} (\"{}\"): {n} test{} failed and the plan ran {} of them.",
        b.id,
        b.message,
        plural(n),
        ran.len()
    );
    let tail = if missed.is_empty() {
        "Nothing was missed.".to_owned()
    } else if ran.is_empty() {
        format!(
            "This is a miss: every failing test was deselected, so the build would have gone \
             green: {}. A later plan, or the next full run (every 20th build), runs them again.",
            list(&missed)
        )
    } else {
        format!(
            "The build still went red because {} failed. But {} {} deselected, so {} failure \
             went unseen in that build.",
            list(&ran),
            list(&missed),
            if missed.len() == 1 { "was" } else { "were" },
            if missed.len() == 1 { "its" } else { "their" }
        )
    };
    para(s, "", &format!("{head} {tail}"));
}

/// The whole history in plain words, from the confidence curve.
fn whole_history(s: &mut String, curve: &eval::curve::Curve, budget: Budget) {
    let share = match budget {
        Budget::Share(x) => x,
        _ => 0.3,
    };
    // fedtest's point is its real plan at the budget; the plan runs more than the budget when
    // the cold start, new tests or recent failures call for it, so the usual order is cut at
    // the test time that plan really ran — the same time, two orders.
    let k = (share * 100.0).round() as usize;
    let Some(f) =
        (curve.series(Ordering::Fedtest)).and_then(|series| series.points.get(k).copied())
    else {
        return;
    };
    let usual = |y: fn(&eval::curve::Point) -> f64| {
        curve
            .series(Ordering::Original)
            .and_then(|series| series.at_most(f.share, y))
    };
    let (Some(u_builds), Some(u_recall)) = (usual(|p| p.builds_caught), usual(|p| p.recall)) else {
        return;
    };
    para(
        s,
        "",
        &format!(
            "Over the whole history, replayed the same way ({} builds after 5 to warm up, {} with \
             failures): fedtest's plans at --budget {:.0}% ran {:.0}% of the test time (the cold \
             start and the tests that always run come on top of the budget) and ran every failing \
             test in {:.0}% of the failing builds, and {:.0}% of all failing tests; the same test \
             time in the order pytest runs them, {:.0}% and {:.0}%.",
            curve.builds,
            curve.failing_builds,
            share * 100.0,
            f.share * 100.0,
            f.builds_caught * 100.0,
            f.recall * 100.0,
            u_builds * 100.0,
            u_recall * 100.0
        ),
    );
}
