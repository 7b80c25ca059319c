//! `fedtest.toml`: the repository's settings, with the defaults built into the binary.
//!
//! Precedence is resolved in one place per command: command line > environment >
//! `fedtest.toml` > these defaults. Unknown keys are an error, not silently ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

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
    /// Run everything until this many builds are recorded ...
    pub min_builds: u64,
    /// ... and this many failures have been seen (cold start). Also the failures local
    /// training needs before it replaces the prior (`TrainOptions::for_plan`).
    pub min_failures: u64,
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
    /// What `plan` does with quarantined tests.
    pub quarantined: QuarantinedTests,
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

    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        let mut table: toml::Table =
            toml::from_str(DEFAULT_TOML).expect("the built-in default configuration parses");
        let user: toml::Table =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
        merge(&mut table, user);
        let c: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string().trim_end().to_owned())?;
        if !(0.0..=1.0).contains(&c.plan.exploration) {
            return Err(format!(
                "plan.exploration must be between 0 and 1, got {}",
                c.plan.exploration
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
    fn unknown_keys_are_errors() {
        let e = Config::parse("[plan]\nbudgett = \"50%\"\n").unwrap_err();
        assert!(e.contains("budgett"), "{e}");
    }
}
