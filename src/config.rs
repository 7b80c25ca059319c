//! `fedtest.toml`: the repository's settings, with the defaults built into the binary.
//!
//! Precedence is resolved in one place per command: command line > environment >
//! `fedtest.toml` > these defaults. Unknown keys are an error, not silently ignored.

mod budget;
pub mod env;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

pub use budget::Budget;

/// The default configuration, documented; `fedtest init` could print it.
pub const DEFAULT_TOML: &str = include_str!("default_config.toml");

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub plan: PlanConfig,
    pub record: RecordConfig,
    pub flaky: FlakyConfig,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    /// Budget when `--budget` is not given.
    pub budget: String,
    /// Skipping waits until this many builds are recorded ... (`"auto"`: scaled to the
    /// project, see `plan::evidence`).
    pub min_builds: Threshold,
    /// ... and this many failures have been seen (cold start). A number set here is also the
    /// failures local training needs before it replaces the prior (`TrainOptions::for_plan`).
    pub min_failures: Threshold,
    /// Every Nth build runs everything (0 = never), so skipped tests still get honest labels.
    pub full_run_every: u64,
    /// Branches (glob patterns) on which every build runs everything.
    pub full_run_branches: Vec<String>,
    /// Changed files (glob patterns) that make a build run everything.
    pub run_all_files: Vec<String>,
    /// Test ids (glob patterns) that always run.
    pub must_run: Vec<String>,
    /// Tests that failed in any of their last N runs always run (0 = off).
    pub keep_recent_failures: u32,
    /// Tests never seen before always run.
    pub keep_new_tests: bool,
    /// Tests whose own file changed always run.
    pub keep_changed_tests: bool,
    /// Share of the tests a budget would skip that run anyway, chosen by a seeded draw.
    pub exploration: f64,
    /// Seed of the exploration draw (combined with the build id).
    pub seed: u64,
    /// Order by log p(fail) − this × log(duration): 0 orders by risk alone; 0.2 catches
    /// more failures per second of test time at a small cost in APFD.
    pub duration_weight: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// Builds whose raw results are kept (aggregates are kept forever).
    pub retention_builds: u64,
    /// Largest JUnit file accepted, in MiB.
    pub max_report_mib: u64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlakyConfig {
    /// A test whose flakiness score is at least this is flaky (listed, proposed for quarantine).
    pub threshold: f64,
    /// The reviewed quarantine file, relative to the working directory.
    pub quarantine_file: PathBuf,
    /// Days a new quarantine entry stays in effect when `--expires` is not given.
    pub quarantine_days: u32,
    /// The longest an entry may last, in days from today: one expiring later is refused.
    pub max_quarantine_days: u32,
    /// What `plan` does with quarantined tests.
    pub quarantined: QuarantinedTests,
}

impl PlanConfig {
    /// The budget after precedence: `--budget`, else `plan.budget`.
    pub fn budget_or(&self, arg: Option<&str>) -> Result<Budget> {
        arg.unwrap_or(&self.budget).parse().map_err(Error::Usage)
    }
}

impl FlakyConfig {
    /// A `--min-score` after precedence (the flag, else `threshold`), checked.
    pub fn min_score(&self, arg: Option<f64>) -> Result<f64> {
        let v = arg.unwrap_or(self.threshold);
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(Error::Usage(format!(
                "--min-score must be between 0 and 1, got {v}"
            )))
        }
    }
}

/// A cold-start threshold: `"auto"` (scaled to the project's size and failure rate by
/// `plan::evidence`) or a number, which is honoured as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threshold {
    Auto,
    Fixed(u64),
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Threshold;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number or auto")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Threshold, E> {
                u64::try_from(v).map(Threshold::Fixed).map_err(|_| {
                    E::custom("expected a whole number or auto, not a negative number")
                })
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Threshold, E> {
                Ok(Threshold::Fixed(v))
            }
            // The value is never quoted back: `--config` may point at a file that is not ours.
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Threshold, E> {
                if v == "auto" {
                    Ok(Threshold::Auto)
                } else {
                    Err(E::custom("expected a whole number or auto"))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// What `plan` does with tests the quarantine file lists (and has not expired).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum QuarantinedTests {
    /// Plan them like any other test.
    Run,
    /// Run them, after every other selected test.
    Last,
    /// Do not run them; the plan lists them as skipped because quarantined.
    Skip,
}

impl Default for Config {
    fn default() -> Self {
        Config::parse("").expect("the built-in default configuration parses")
    }
}

impl Default for PlanConfig {
    fn default() -> Self {
        Config::default().plan
    }
}

/// Largest `plan.duration_weight`: past it the order ignores risk altogether.
const MAX_DURATION_WEIGHT: f64 = 10.0;

/// A TOML syntax error as `line L, column C: message`, without the snippet of the file the
/// parser's own message shows.
pub(crate) fn toml_error(
    text: &str,
    span: Option<std::ops::Range<usize>>,
    message: &str,
) -> String {
    let message = without_quotes(message.trim());
    match span {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
            let start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let column = 1 + String::from_utf8_lossy(&before[start..]).chars().count();
            format!(
                "line {line}, column {column}: {}",
                message.replace('\n', "; ")
            )
        }
        None => message.replace('\n', "; "),
    }
}

/// A parser message with what it quotes from the file (`invalid type: string "…"`) left out.
fn without_quotes(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// Overlay `over` onto `base`, table by table, so a file need only name what it changes.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl Config {
    /// Load `path`, or the defaults when it does not exist and was not named explicitly.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let (path, explicit) = match path {
            Some(p) => (p.to_owned(), true),
            None => (PathBuf::from("fedtest.toml"), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Config::default());
            }
            Err(e) => {
                return Err(Error::Config {
                    path,
                    message: e.to_string(),
                });
            }
        };
        Self::parse(&text).map_err(|message| Error::Config { path, message })
    }

    /// Errors name the key or the line and column, never quote the file: `--config` may point
    /// at a file that is not TOML at all (issue 11).
    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        let mut table: toml::Table =
            toml::from_str(DEFAULT_TOML).expect("the built-in default configuration parses");
        let user: toml::Table = toml::from_str(text)
            .map_err(|e: toml::de::Error| toml_error(text, e.span(), e.message()))?;
        merge(&mut table, user);
        let c: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| without_quotes(e.message()))?;
        let finite_in = |v: f64, lo: f64, hi: f64| v.is_finite() && v >= lo && v <= hi;
        if !finite_in(c.plan.exploration, 0.0, 1.0) {
            return Err(format!(
                "plan.exploration must be between 0 and 1, got {}",
                c.plan.exploration
            ));
        }
        if !finite_in(c.plan.duration_weight, 0.0, MAX_DURATION_WEIGHT) {
            return Err(format!(
                "plan.duration_weight must be a number between 0 and {MAX_DURATION_WEIGHT}, got {}",
                c.plan.duration_weight
            ));
        }
        if let Err(e) = c.plan.budget.parse::<Budget>() {
            return Err(format!("plan.budget: {e}"));
        }
        if c.flaky.max_quarantine_days == 0 {
            return Err("flaky.max_quarantine_days must be at least 1".into());
        }
        if c.flaky.quarantine_days > c.flaky.max_quarantine_days {
            return Err(format!(
                "flaky.quarantine_days ({}) is more than flaky.max_quarantine_days ({})",
                c.flaky.quarantine_days, c.flaky.max_quarantine_days
            ));
        }
        if !(c.flaky.threshold > 0.0 && c.flaky.threshold < 1.0) {
            return Err(format!(
                "flaky.threshold must be between 0 and 1 (exclusive), got {}",
                c.flaky.threshold
            ));
        }
        if c.record.retention_builds == 0 {
            return Err("record.retention_builds must be at least 1".into());
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_partial_files_merge() {
        let d = Config::default();
        assert_eq!(d.plan.budget, "100%");
        let c = Config::parse("[plan]\nexploration = 0.1\n").unwrap();
        assert_eq!(c.plan.exploration, 0.1);
        assert_eq!(c.plan.min_builds, d.plan.min_builds);
    }

    #[test]
    fn thresholds_are_auto_or_a_number() {
        let d = Config::default();
        assert_eq!(d.plan.min_builds, Threshold::Auto);
        assert_eq!(d.plan.min_failures, Threshold::Auto);
        let c = Config::parse("[plan]\nmin_builds = 3\nmin_failures = \"auto\"\n").unwrap();
        assert_eq!(c.plan.min_builds, Threshold::Fixed(3));
        assert_eq!(c.plan.min_failures, Threshold::Auto);
        for bad in ["-1", "\"soon\"", "2.5"] {
            let e = Config::parse(&format!("[plan]\nmin_builds = {bad}\n")).unwrap_err();
            assert!(e.contains("auto"), "{bad}: {e}");
        }
    }

    #[test]
    fn floats_must_be_finite_and_in_range() {
        for bad in [
            "[plan]\nduration_weight = nan\n",
            "[plan]\nduration_weight = inf\n",
            "[plan]\nduration_weight = -0.5\n",
            "[plan]\nduration_weight = 1e308\n",
            "[plan]\nexploration = nan\n",
            "[plan]\nexploration = -inf\n",
            "[flaky]\nthreshold = nan\n",
            "[flaky]\nthreshold = inf\n",
            "[plan]\nbudget = \"1e308h\"\n",
            "[plan]\nbudget = \"nan%\"\n",
        ] {
            let e = Config::parse(bad).unwrap_err();
            let key = bad.lines().nth(1).unwrap().split(' ').next().unwrap();
            assert!(e.contains(key), "{bad}: {e}");
        }
        assert_eq!(
            Config::parse("[plan]\nduration_weight = 0.2\n")
                .unwrap()
                .plan
                .duration_weight,
            0.2
        );
    }

    #[test]
    fn errors_do_not_quote_the_file() {
        for text in [
            "root:x:0:0:secret-hash:/root:/bin/bash\n",
            "TOKEN = \"ghp_secret\"\n",
            "[plan]\nbudget = 5 # ghp_secret\n",
            "[plan]\nmin_builds = \"ghp_secret\"\n",
            "ghp_secret\n",
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(!e.contains("secret"), "{text}: {e}");
        }
        let e = Config::parse("a = 1\nroot:x:0:0\n").unwrap_err();
        assert!(e.starts_with("line 2, column "), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Config::parse("[plan]\nbudgett = \"50%\"\n").unwrap_err();
        assert!(e.contains("budgett"), "{e}");
    }
}
