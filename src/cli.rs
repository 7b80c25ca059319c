//! Command-line definitions (clap). Parsing only; behaviour lives in [`crate::commands`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::plan::format::Format;

#[derive(Debug, Parser)]
#[command(name = "fedtest", version, about = "Run the tests that matter first — learned from your own CI history, offline.", long_about = None)]
pub struct Cli {
    /// Where the history and model live.
    #[arg(long, global = true, env = "FEDTEST_DIR", default_value = ".fedtest")]
    pub data_dir: PathBuf,

    /// Configuration file [default: ./fedtest.toml when it exists].
    #[arg(long, global = true, env = "FEDTEST_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record one build's JUnit results into the history and update the model.
    Record(RecordArgs),
    /// Plan the next run: order the candidates and choose what runs within a budget.
    Plan(PlanArgs),
    /// Show the current model: weights per feature, training size, holdout metrics.
    Model(ModelArgs),
    /// Replay the retained history in time order and score the plans fedtest would have made.
    Eval(EvalArgs),
    /// Record a series of example builds into a temporary history, then plan and explain.
    Demo(DemoArgs),
}

/// Build metadata shared by `record` and `plan`; read from the CI environment when not given.
#[derive(Debug, Args, Default, Clone)]
pub struct BuildArgs {
    /// Build id; recording the same id twice is a no-op [default: from the CI environment].
    #[arg(long)]
    pub build: Option<String>,
    /// Commit of the build [default: from the CI environment or `git rev-parse HEAD`].
    #[arg(long)]
    pub commit: Option<String>,
    /// Branch of the build [default: from the CI environment].
    #[arg(long)]
    pub branch: Option<String>,
    /// File listing the build's changed files, one repository-relative path a line.
    #[arg(long, value_name = "FILE")]
    pub changed_files: Option<PathBuf>,
    /// Compute changed files with git against this base (merge base with HEAD).
    #[arg(long, value_name = "REF", conflicts_with = "changed_files")]
    pub base: Option<String>,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// JUnit XML reports: files, directories (searched for *.xml) or glob patterns.
    #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
    pub junit: Vec<String>,
    #[command(flatten)]
    pub build: BuildArgs,
    /// Do not retrain the model after recording.
    #[arg(long)]
    pub no_train: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Candidate tests, one canonical id a line (`-` reads standard input).
    #[arg(
        long,
        value_name = "FILE|-",
        required_unless_present = "from_history",
        conflicts_with = "from_history"
    )]
    pub tests: Option<String>,
    /// Use the tests seen in recent builds as the candidates.
    #[arg(long)]
    pub from_history: bool,
    /// "100%"/"all" (reorder only), "N%" of estimated time, a duration ("90s", "5m"), or
    /// "recall:0.95" [default: plan.budget in fedtest.toml, else 100%].
    #[arg(long)]
    pub budget: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "list")]
    pub format: Format,
    /// Explain each test's place: reason and the features that weighed most (to stderr for
    /// line formats; inside the document for json).
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub build: BuildArgs,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Print the model as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Print the scores as JSON.
    #[arg(long)]
    pub json: bool,
    /// Builds at the start of the retained window used only to warm up, never scored.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo history in this directory instead of a temporary one.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Budget of the demo plan.
    #[arg(long, default_value = "30%")]
    pub budget: String,
}
