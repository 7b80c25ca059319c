//! The feature schema: what the model sees of a test, the same way in every repository.
//!
//! No test ids, no one-hot paths — averaging models across repositories is only meaningful
//! when feature `j` means the same thing everywhere. Every feature is bounded and needs no
//! per-repository normalisation, so weights are portable between repositories.
//! Changing the list, its order or a formula means bumping [`SCHEMA_VERSION`].

use std::collections::{HashMap, HashSet};

use crate::history::state::{CoChange, GlobalStats};
use crate::history::stats::TestStats;

/// Version of the feature schema; the federation server keeps one model per version.
pub const SCHEMA_VERSION: u32 = 1;

/// Feature names, in the order of the vector.
pub const NAMES: &[&str] = &[
    "new_test",
    "fail_rate_5",
    "fail_rate_20",
    "fail_rate_all",
    "failed_last_run",
    "consecutive_failures_log",
    "runs_since_failure_log",
    "never_failed",
    "flip_rate",
    "flaky_rate",
    "decayed_failures_0_5",
    "decayed_failures_0_8",
    "decayed_failures_0_95",
    "duration_vs_median_log",
    "age_runs_log",
    "own_file_changed",
    "cofailure_with_changes",
    "path_similarity",
    "changed_files_log",
    "changes_known",
    "failing_build_rate",
    "module_fail_rate_5",
    "module_decayed_0_8",
    "family_decayed_0_8",
];

/// Number of features.
pub const DIM: usize = 24;
const _: () = assert!(NAMES.len() == DIM);

/// History aggregated over a test's module and family, so a renamed or newly
/// parametrised test is not a stranger.
#[derive(Default)]
pub struct Groups {
    modules: HashMap<String, GroupStats>,
    families: HashMap<String, GroupStats>,
}

#[derive(Default, Clone, Copy)]
struct GroupStats {
    tests: u32,
    recent_runs: u32,
    recent_fails: u32,
    decayed: f64,
}

impl GroupStats {
    fn add(&mut self, s: &TestStats) {
        self.tests += 1;
        self.recent_runs += s.window_len().min(5);
        self.recent_fails += s.recent_fails(5);
        self.decayed += s.decayed[1];
    }
}

/// The module of a test: everything before the last `::` (its file or class).
pub fn module_of(id: &str) -> &str {
    id.rsplit_once("::").map_or("", |(m, _)| m)
}

/// The family of a test: its id without a trailing parameter list (`test_x[1-2]`, `Test/sub`).
pub fn family_of(id: &str) -> &str {
    let base = id.split_once('[').map_or(id, |(b, _)| b);
    base.split_once('(').map_or(base, |(b, _)| b)
}

impl Groups {
    pub fn build<'a>(tests: impl Iterator<Item = (&'a String, &'a TestStats)>) -> Self {
        let mut g = Groups::default();
        for (id, s) in tests {
            if s.runs == 0 {
                continue;
            }
            g.modules
                .entry(module_of(id).to_owned())
                .or_default()
                .add(s);
            g.families
                .entry(family_of(id).to_owned())
                .or_default()
                .add(s);
        }
        g
    }
}

/// What a build looks like as a whole: its changed files and the repository's state.
pub struct BuildContext<'a> {
    changed: Option<&'a [String]>,
    changed_tokens: Vec<HashSet<String>>,
    cochange: &'a CoChange,
    failing_build_rate: f64,
    median_duration: f64,
}

impl<'a> BuildContext<'a> {
    pub fn new<'s>(
        global: &GlobalStats,
        changed: Option<&'a [String]>,
        cochange: &'a CoChange,
        tests: impl Iterator<Item = &'s TestStats>,
    ) -> Self {
        let mut durations: Vec<f64> = tests.filter(|s| s.runs > 0).map(|s| s.duration).collect();
        let median_duration = if durations.is_empty() {
            0.0
        } else {
            let mid = durations.len() / 2;
            *durations.select_nth_unstable_by(mid, f64::total_cmp).1
        };
        let changed_tokens = changed
            .unwrap_or_default()
            .iter()
            .map(|p| path_tokens(p))
            .collect();
        BuildContext {
            changed,
            changed_tokens,
            cochange,
            failing_build_rate: global.failing_build_rate,
            median_duration,
        }
    }

    /// The median of the tests' typical durations, seconds (an estimate for unknown tests).
    pub fn median_duration(&self) -> f64 {
        self.median_duration
    }
}

/// Split a path or test id into lowercase word tokens, dropping noise words.
fn path_tokens(s: &str) -> HashSet<String> {
    const NOISE: &[&str] = &[
        "test", "tests", "spec", "src", "lib", "main", "java", "py", "rs", "ts", "js", "go", "rb",
        "com", "org",
    ];
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|t| t.len() > 2)
        .map(str::to_lowercase)
        .map(|t| {
            t.strip_prefix("test")
                .filter(|r| r.len() > 2)
                .map(|r| r.trim_start_matches('_').to_owned())
                .unwrap_or(t)
        })
        .filter(|t| !NOISE.contains(&t.as_str()))
        .collect()
}

fn smoothed(fails: u32, runs: u32) -> f64 {
    // A weak prior of 0.5 failures in 5 runs keeps one-run rates from being 0 or 1.
    (f64::from(fails) + 0.05) / (f64::from(runs) + 1.0)
}

fn ln1p(x: f64) -> f64 {
    x.max(0.0).ln_1p()
}

/// Whether `changed` (a repository path) is the test's own file.
fn is_own_file(id: &str, file: Option<&str>, changed: &str) -> bool {
    if let Some(f) = file {
        let f = f.trim_start_matches("./");
        if changed == f
            || changed.ends_with(&format!("/{f}"))
            || f.ends_with(&format!("/{changed}"))
        {
            return true;
        }
    }
    // Derive from a dotted class name (Python, Java): tests.test_api.TestX → tests/test_api
    let module = module_of(id);
    if module.is_empty() {
        return false;
    }
    let stem = changed.rsplit_once('.').map_or(changed, |(s, _)| s);
    let dotted = stem.replace(['/', '\\'], ".");
    module == dotted
        || module.starts_with(&format!("{dotted}."))
        || dotted.ends_with(&format!(".{module}"))
}

/// Whether any of the changed files is the test's own file.
pub fn own_file_changed(id: &str, file: Option<&str>, changed: &[&str]) -> bool {
    changed.iter().any(|c| is_own_file(id, file, c))
}

/// Position of a feature by name.
pub fn index(name: &str) -> usize {
    NAMES
        .iter()
        .position(|n| *n == name)
        .expect("a schema feature name")
}

/// The feature vector of one test before a build.
pub fn compute(
    id: &str,
    file: Option<&str>,
    stats: Option<&TestStats>,
    groups: &Groups,
    ctx: &BuildContext<'_>,
) -> Vec<f64> {
    let empty = TestStats::default();
    let s = stats.unwrap_or(&empty);
    let new = s.runs == 0;
    let runs = s.runs;
    let module = groups
        .modules
        .get(module_of(id))
        .copied()
        .unwrap_or_default();
    let family = groups
        .families
        .get(family_of(id))
        .copied()
        .unwrap_or_default();
    let file = file.or(s.file.as_deref());

    let (own_changed, cofail, similarity, n_changed, known) = match ctx.changed {
        Some(changed) if !changed.is_empty() => {
            let own = changed.iter().any(|c| is_own_file(id, file, c));
            let mut co: f64 = 0.0;
            for c in changed {
                let hits = ctx.cochange.get(c, id);
                if hits > 0.0 {
                    co = co.max(hits / (ctx.cochange.changes(c) + 1.0));
                }
            }
            let test_tokens = path_tokens(id);
            let mut sim: f64 = 0.0;
            if !test_tokens.is_empty() {
                for ct in &ctx.changed_tokens {
                    if ct.is_empty() {
                        continue;
                    }
                    let inter = test_tokens.intersection(ct).count() as f64;
                    sim = sim.max(inter / ct.len().min(test_tokens.len()) as f64);
                }
            }
            (own, co, sim, changed.len(), true)
        }
        Some(_) => (false, 0.0, 0.0, 0, true),
        None => (false, 0.0, 0.0, 0, false),
    };
    let duration_ratio = if new || ctx.median_duration <= 0.0 {
        0.0
    } else {
        ((s.duration + 1e-3) / (ctx.median_duration + 1e-3))
            .ln()
            .clamp(-5.0, 5.0)
    };
    let runs_since = s.runs_since_fail().unwrap_or(runs);
    let flip_rate = if runs > 1 {
        f64::from(s.flips) / f64::from(runs - 1)
    } else {
        0.0
    };
    let flaky_rate = if runs > 0 {
        f64::from(s.flaky) / f64::from(runs)
    } else {
        0.0
    };
    let b = |v: bool| f64::from(u8::from(v));
    vec![
        b(new),
        smoothed(s.recent_fails(5), s.window_len().min(5)),
        smoothed(s.recent_fails(20), s.window_len().min(20)),
        smoothed(s.fails, runs),
        b(s.failed_last()),
        ln1p(f64::from(s.consecutive_fails())),
        ln1p(f64::from(runs_since)),
        b(!new && s.fails == 0),
        flip_rate,
        flaky_rate,
        ln1p(s.decayed[0]),
        ln1p(s.decayed[1]),
        ln1p(s.decayed[2]),
        duration_ratio,
        ln1p(f64::from(runs)),
        b(own_changed),
        cofail,
        similarity,
        ln1p(n_changed as f64),
        b(known),
        ctx.failing_build_rate,
        smoothed(module.recent_fails, module.recent_runs),
        ln1p(if module.tests > 0 {
            module.decayed / f64::from(module.tests)
        } else {
            0.0
        }),
        ln1p(if family.tests > 0 {
            family.decayed / f64::from(family.tests)
        } else {
            0.0
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_and_family() {
        assert_eq!(
            module_of("tests.test_api.TestX::test_a[1-2]"),
            "tests.test_api.TestX"
        );
        assert_eq!(
            family_of("tests.test_api.TestX::test_a[1-2]"),
            "tests.test_api.TestX::test_a"
        );
        assert_eq!(module_of("bare"), "");
    }

    #[test]
    fn own_file_from_attribute_or_dotted_class() {
        assert!(is_own_file(
            "x::t",
            Some("tests/test_api.py"),
            "tests/test_api.py"
        ));
        assert!(is_own_file(
            "tests.test_api.TestX::t",
            None,
            "tests/test_api.py"
        ));
        assert!(!is_own_file("tests.test_api.TestX::t", None, "src/api.py"));
    }

    #[test]
    fn new_test_vector_is_bounded() {
        let co = CoChange::default();
        let g = GlobalStats::default();
        let ctx = BuildContext::new(&g, None, &co, std::iter::empty());
        let x = compute("a::b", None, None, &Groups::default(), &ctx);
        assert_eq!(x.len(), DIM);
        assert_eq!(x[0], 1.0);
        assert!(x.iter().all(|v| v.is_finite()));
    }
}
