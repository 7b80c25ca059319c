//! Plan output formats. Each runner format is one file here implementing [`Selector`] (and so
//! [`Formatter`]); adding a runner means adding a file and a [`Runner`] variant, nothing else.
//!
//! Every runner format prints the same thing: the arguments to hand the runner so that it runs
//! the selected tests and no others, **one argument a line**, unquoted. No shell quoting is
//! involved, so names with spaces, brackets, quotes or unicode pass through intact:
//!
//! ```sh
//! fedtest plan --format go --tests ids.txt > plan.args
//! mapfile -t args < plan.args && go test "${args[@]}"
//! pytest @plan.args            # pytest ≥ 8.2 reads an args file itself
//! ```
//!
//! `fedtest run` appends the same arguments to the test command (see `src/commands/run.rs`).
//! An empty selection prints nothing, so the runner runs its default set — never fewer tests.
//! Each module's docs state its exact output and what, if anything, is approximate.

mod cargo;
mod dotnet;
mod go;
mod gradle;
mod jest;
mod json;
mod list;
mod maven;
mod nextest;
mod phpunit;
mod pytest;
mod regex;
mod rspec;
mod vitest;

use std::io::{self, Write};

use super::Plan;

/// Writes a plan in one syntax.
pub trait Formatter {
    fn write(&self, plan: &Plan, out: &mut dyn Write) -> io::Result<()>;
}

/// How one test runner is told which tests to run.
pub trait Selector {
    /// Arguments that make the runner run the tests `ids` (canonical ids, in run order) and no
    /// others. No ids give no arguments. No argument contains a newline.
    fn args(&self, ids: &[&str]) -> Vec<String>;
}

/// The formats `--format` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Selected test ids, one a line, in run order.
    List,
    /// Every candidate with probability, selection and reason.
    Json,
    /// pytest node ids, one a line (an args file: `pytest @file`).
    Pytest,
    /// cargo-nextest: `-E` and a filterset.
    Nextest,
    /// cargo test (libtest): `--exact` and test paths, for after `cargo test --`.
    Cargo,
    /// go test: `-run=^(?:…)$` and the packages.
    Go,
    /// Jest: `--testNamePattern=^(?:…)$`.
    Jest,
    /// Vitest: `--testNamePattern=^(?:…)$` and the test files.
    Vitest,
    /// Maven Surefire: `-Dtest=Class#method+method,…`.
    Maven,
    /// Gradle: `--tests` and `Class.method`, per test.
    Gradle,
    /// RSpec: the spec files and `-e` with each full description.
    Rspec,
    /// PHPUnit: `--filter` and an anchored regex.
    Phpunit,
    /// dotnet test: `--filter` and a `FullyQualifiedName` expression.
    Dotnet,
}

/// The test runners `run --runner` accepts: the [`Format`]s that are a runner's syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Runner {
    Pytest,
    Nextest,
    Cargo,
    Go,
    Jest,
    Vitest,
    Maven,
    Gradle,
    Rspec,
    Phpunit,
    Dotnet,
}

impl Runner {
    pub fn selector(self) -> &'static dyn Selector {
        match self {
            Runner::Pytest => &pytest::Pytest,
            Runner::Nextest => &nextest::Nextest,
            Runner::Cargo => &cargo::Cargo,
            Runner::Go => &go::Go,
            Runner::Jest => &jest::Jest,
            Runner::Vitest => &vitest::Vitest,
            Runner::Maven => &maven::Maven,
            Runner::Gradle => &gradle::Gradle,
            Runner::Rspec => &rspec::Rspec,
            Runner::Phpunit => &phpunit::Phpunit,
            Runner::Dotnet => &dotnet::Dotnet,
        }
    }

    /// Arguments selecting `ids` (see [`Selector::args`]).
    pub fn args(self, ids: &[&str]) -> Vec<String> {
        self.selector().args(ids)
    }

    /// Whether the runner runs the tests in the order its arguments give them (each format's
    /// docs say): then even a plan that runs everything is worth passing, for its order.
    pub fn honours_order(self) -> bool {
        self == Runner::Pytest
    }
}

impl Format {
    /// The runner whose syntax this format is, if it is one.
    pub fn runner(self) -> Option<Runner> {
        Some(match self {
            Format::List | Format::Json => return None,
            Format::Pytest => Runner::Pytest,
            Format::Nextest => Runner::Nextest,
            Format::Cargo => Runner::Cargo,
            Format::Go => Runner::Go,
            Format::Jest => Runner::Jest,
            Format::Vitest => Runner::Vitest,
            Format::Maven => Runner::Maven,
            Format::Gradle => Runner::Gradle,
            Format::Rspec => Runner::Rspec,
            Format::Phpunit => Runner::Phpunit,
            Format::Dotnet => Runner::Dotnet,
        })
    }

    pub fn formatter(self) -> Box<dyn Formatter> {
        match (self, self.runner()) {
            (_, Some(runner)) => Box::new(ArgLines(runner)),
            (Format::Json, None) => Box::new(json::Json),
            (_, None) => Box::new(list::List),
        }
    }
}

/// A runner format: the runner's arguments for the selected tests, one a line.
struct ArgLines(Runner);

impl Formatter for ArgLines {
    fn write(&self, plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
        let ids: Vec<&str> = plan
            .tests
            .iter()
            .filter(|t| t.selected)
            .map(|t| t.id.as_str())
            .collect();
        for arg in self.0.args(&ids) {
            // A newline would split one argument in two; every selector escapes or widens
            // what could contain one, so this is a bug, not a user error.
            if arg.contains('\n') {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("runner argument contains a newline: {arg:?}"),
                ));
            }
            writeln!(out, "{arg}")?;
        }
        Ok(())
    }
}

/// `classname` and `name` of a canonical id: split at the first `::` (runners whose classnames
/// contain `::` split on their own).
fn split_first(id: &str) -> (&str, &str) {
    id.split_once("::").unwrap_or(("", id))
}

/// Push `item` unless it is already there, keeping first-appearance order.
fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}
