//! The feature schema: what the model sees of a test, the same way in every repository.
//!
//! No test ids, no one-hot paths — averaging models across repositories is only meaningful
//! when feature `j` means the same thing everywhere. Rates are smoothed toward the
//! repository's own base rate and put on the logit scale, so every feature is bounded and
//! needs no per-repository normalisation, and weights are portable between repositories.
//! The list was chosen by replaying four real CI histories (three public research datasets
//! and one project with changed files); see the README's "Model" section.
//! Changing the list, its order or a formula means bumping [`SCHEMA_VERSION`].

mod examples;

pub use examples::{observe, stored};

use std::collections::HashSet;

use crate::changes::{Analysis, MAX_HOPS};
use crate::history::state::{GROUP_DECAY, State};
use crate::history::stats::TestStats;
use crate::keys::{
    family_key, family_of, file_stem, is_own_file, module_key, stem_matches, test_stem,
};

/// Version of the feature schema; the federation server keeps one model per version.
///
/// 2 (issue 15) appended the symbol-level change features; a version-1 model reads as version
/// 2 with the prior's weights for them (`model::Model::load`), a stored version-1
/// example as one that knew no symbols (zeros).
pub const SCHEMA_VERSION: u32 = 2;

/// Feature names, in the order of the vector. The model's intercept is kept apart.
pub const NAMES: &[&str] = &[
    "new_test",
    "failed_last_run",
    "consecutive_failures_log",
    "runs_since_failure_log",
    "never_failed",
    "fail_rate_5_logit",
    "fail_rate_20_logit",
    "fail_rate_all_logit",
    "flip_rate",
    "age_runs_log",
    "decayed_failures_0_8_log",
    "decayed_failures_0_95_log",
    "repo_fail_rate_logit",
    "repo_failing_builds_logit",
    "family_fail_rate_logit",
    "family_last_fail_share",
    "module_fail_rate_logit",
    "module_last_fail_share",
    "changes_known",
    "own_file_changed",
    "cofailure_with_changes",
    "path_similarity",
    "changed_files_log",
    "symbols_known",
    "changed_symbol_proximity",
    "changed_symbols_reached_log",
    "fixture_reaches_change",
];

/// Number of features.
pub const DIM: usize = 27;

/// Features of schema version 1: a vector this long knew no symbols.
pub const DIM_V1: usize = 23;
const _: () = assert!(NAMES.len() == DIM);

/// The first feature that describes the build's changes; those before it describe history.
/// Local training lets change features move freely and holds history features near the prior.
pub const FIRST_CHANGE_FEATURE: usize = 18;

/// What a build looks like as a whole, and the state the features read.
pub struct BuildContext<'a> {
    state: &'a State,
    changed: Option<&'a [String]>,
    changed_stems: Vec<String>,
    changed_tokens: Vec<HashSet<String>>,
    base_rate_logit: f64,
    failing_builds_logit: f64,
    symbols: Option<&'a Analysis>,
}

impl<'a> BuildContext<'a> {
    pub fn new(state: &'a State, changed: Option<&'a [String]>) -> Self {
        let g = &state.global;
        let files = changed.unwrap_or_default();
        BuildContext {
            state,
            changed,
            changed_stems: files.iter().map(|f| file_stem(f)).collect(),
            changed_tokens: files.iter().map(|f| tokens(f)).collect(),
            base_rate_logit: logit(g.base_rate()),
            failing_builds_logit: logit((g.recent_failing_builds + 0.5) / (g.recent_builds + 1.0)),
            symbols: None,
        }
    }

    /// With the build's symbol-level change analysis (`crate::changes`), when there is one;
    /// without it the symbol features are zero, as in a version-1 vector.
    pub fn with_symbols(mut self, symbols: Option<&'a Analysis>) -> Self {
        self.symbols = symbols.filter(|_| self.changed.is_some());
        self
    }
}

/// The median of the known tests' typical durations, seconds (the estimate for a test with no
/// history); `None` when no test has run. Only planning needs it, so it is not part of
/// [`BuildContext`], which `record` builds on every build.
pub fn median_duration(state: &State) -> Option<f64> {
    let mut durations: Vec<f64> = state
        .tests
        .values()
        .filter(|s| s.runs > 0)
        .map(|s| s.duration)
        .collect();
    if durations.is_empty() {
        return None;
    }
    let mid = durations.len() / 2;
    Some(*durations.select_nth_unstable_by(mid, f64::total_cmp).1)
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-4, 1.0 - 1e-4);
    (p / (1.0 - p)).ln()
}

fn ln1p(x: f64) -> f64 {
    x.max(0.0).ln_1p()
}

/// Words not worth matching between test ids and paths.
const STOP: &[&str] = &[
    "test",
    "tests",
    "py",
    "src",
    "lib",
    "main",
    "init",
    "t",
    "java",
    "go",
    "rs",
    "js",
    "ts",
    "spec",
    "specs",
    "unit",
    "integration",
    "com",
    "org",
    "io",
    "net",
    "a",
    "the",
];

/// Lowercase word tokens of a path or test id: camelCase and punctuation split, noise words
/// and numbers dropped, a `test` prefix removed (`test_lexer` → `lexer`).
pub fn tokens(s: &str) -> HashSet<String> {
    let mut spaced = String::with_capacity(s.len() + 8);
    let mut prev: Option<char> = None;
    for c in s.chars() {
        if c.is_ascii_uppercase()
            && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
        {
            spaced.push(' ');
        }
        spaced.push(c);
        prev = Some(c);
    }
    spaced
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_ascii_lowercase)
        .filter(|t| {
            t.len() >= 2 && !t.bytes().all(|b| b.is_ascii_digit()) && !STOP.contains(&t.as_str())
        })
        .map(|t| match t.strip_prefix("test") {
            Some(rest) if t.len() > 4 => rest.to_owned(),
            _ => t,
        })
        .collect()
}

/// Position of a feature by name.
pub fn index(name: &str) -> usize {
    NAMES
        .iter()
        .position(|n| *n == name)
        .expect("a schema feature name")
}

/// The feature vector of one test before a build.
pub fn compute(id: &str, file: Option<&str>, ctx: &BuildContext<'_>) -> Vec<f64> {
    let empty = TestStats::default();
    let s = ctx.state.tests.get(id).unwrap_or(&empty);
    let pi = ctx.state.global.base_rate();
    let n = s.runs;
    let new = n == 0;
    let file = file.or(s.file.as_deref());
    let b = |v: bool| f64::from(u8::from(v));
    let rate = |fails: u32, runs: u32, prior: f64| {
        logit((f64::from(fails) + prior * pi) / (f64::from(runs) + prior))
    };
    let group = |key: String| match ctx.state.groups.get(&key) {
        Some(g) => (logit((g.fails + pi) / (g.runs + 1.0)), g.last_fail_share),
        None => (ctx.base_rate_logit, 0.0),
    };
    // A test that is its own family (no parameters) keeps no family row: its family history
    // is its own, decayed per run as a group is per build in which it ran.
    let (family_rate, family_last) = if family_of(id) == id {
        match n {
            0 => (ctx.base_rate_logit, 0.0),
            n => {
                let runs = (1.0 - GROUP_DECAY.powi(n.min(1000) as i32)) / (1.0 - GROUP_DECAY);
                (
                    logit((s.decayed[1] + pi) / (runs + 1.0)),
                    b(s.failed_last()),
                )
            }
        }
    } else {
        group(family_key(id))
    };
    let (module_rate, module_last) = group(module_key(id));

    let (known, own, cofail, similarity, n_changed) = match ctx.changed {
        None => (false, false, 0.0, 0.0, 0),
        Some(changed) => {
            let stem = test_stem(id);
            let own = changed.iter().zip(&ctx.changed_stems).any(|(c, cs)| {
                stem_matches(&stem, cs) || file.is_some_and(|_| is_own_file(id, file, c))
            });
            let mut co: f64 = 0.0;
            for c in changed {
                let hits = ctx.state.cochange.get(c, id);
                if hits > 0.0 {
                    co = co.max(hits / (ctx.state.cochange.changes(c) + 1.0));
                }
            }
            let mut sim: f64 = 0.0;
            if ctx.changed_tokens.iter().any(|t| !t.is_empty()) {
                let mine = tokens(id);
                for ct in ctx.changed_tokens.iter().filter(|t| !t.is_empty()) {
                    sim = sim.max(mine.intersection(ct).count() as f64 / ct.len() as f64);
                }
            }
            (true, own, co, sim, changed.len())
        }
    };
    // Symbol level: how close the test's code comes to a changed definition. Proximity is
    // 1 for its own code changed, then ¼ less per call in between, 0 beyond MAX_HOPS.
    let reach = ctx.symbols.and_then(|a| a.get(id)).filter(|r| r.located);
    let proximity = reach
        .and_then(|r| r.hops)
        .filter(|h| *h <= MAX_HOPS)
        .map_or(0.0, |h| {
            f64::from(MAX_HOPS + 1 - h) / f64::from(MAX_HOPS + 1)
        });
    let since = s.runs_since_fail().map_or(0.0, |r| ln1p(f64::from(r)));
    vec![
        b(new),
        b(s.failed_last()),
        ln1p(f64::from(s.consecutive_fails())),
        since,
        b(!new && s.fails == 0),
        rate(s.recent_fails(5), n.min(5), 1.0),
        rate(s.recent_fails(20), n.min(20), 2.0),
        rate(s.fails, n, 2.0),
        if n >= 2 {
            f64::from(s.flips) / f64::from(n - 1)
        } else {
            0.0
        },
        ln1p(f64::from(n)),
        ln1p(s.decayed[0]),
        ln1p(s.decayed[2]),
        ctx.base_rate_logit,
        ctx.failing_builds_logit,
        family_rate,
        family_last,
        module_rate,
        module_last,
        b(known),
        b(own),
        cofail,
        similarity,
        ln1p(n_changed as f64),
        b(reach.is_some()),
        proximity,
        reach.map_or(0.0, |r| ln1p(f64::from(r.reached))),
        b(reach.is_some_and(|r| r.via_fixture && r.hops.is_some())),
    ]
}

/// A stored vector of an older schema, in this one: the symbol features it could not know
/// are zero (unknown), which is what a build without analysis gets too.
pub fn upgrade(mut x: Vec<f64>) -> Vec<f64> {
    if x.len() == DIM_V1 {
        x.resize(DIM, 0.0);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_camel_case_and_drop_noise() {
        let t = tokens("tests/test_lexnparse.py::TestLexer::testTokenStream");
        for w in ["lexnparse", "lexer", "token", "stream"] {
            assert!(t.contains(w), "{w} missing from {t:?}");
        }
        assert!(!t.contains("tests") && !t.contains("py"));
    }

    #[test]
    fn a_stored_schema_1_vector_reads_as_knowing_no_symbols() {
        let x = upgrade(vec![1.0; DIM_V1]);
        assert_eq!(x.len(), DIM);
        assert!(x[DIM_V1..].iter().all(|v| *v == 0.0));
        assert_eq!(upgrade(vec![2.0; DIM]), vec![2.0; DIM]);
    }

    #[test]
    fn symbol_features_need_the_analysis_and_known_changes() {
        use crate::changes::{Analysis, TestReach};
        let state = State::default();
        let mut a = Analysis::default();
        let reach = |hops, reached, via_fixture| TestReach {
            located: true,
            hops,
            reached,
            via_fixture,
            chain: None,
        };
        a.tests.insert("t::direct".into(), reach(Some(1), 2, false));
        a.tests.insert("t::fixture".into(), reach(Some(3), 1, true));
        a.tests.insert("t::far".into(), reach(None, 0, false));
        let changed = vec!["a.py".to_owned()];
        let ctx = BuildContext::new(&state, Some(&changed)).with_symbols(Some(&a));
        let sym = |id: &str| compute(id, None, &ctx)[DIM_V1..].to_vec();
        assert_eq!(sym("t::direct"), [1.0, 0.75, 2f64.ln_1p(), 0.0]);
        assert_eq!(sym("t::fixture"), [1.0, 0.25, 1f64.ln_1p(), 1.0]);
        assert_eq!(sym("t::far"), [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(sym("t::unknown"), [0.0; 4]);
        // Without known changed files the analysis is not used.
        let ctx = BuildContext::new(&state, None).with_symbols(Some(&a));
        assert_eq!(compute("t::direct", None, &ctx)[DIM_V1..], [0.0; 4]);
    }

    #[test]
    fn new_test_vector_is_bounded() {
        let state = State::default();
        let ctx = BuildContext::new(&state, None);
        let x = compute("a::b", None, &ctx);
        assert_eq!(x.len(), DIM);
        assert_eq!(x[0], 1.0);
        assert!(x.iter().all(|v| v.is_finite()));
    }
}
