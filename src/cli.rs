//! Command-line definitions (clap). Parsing only; behaviour lives in `commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::plan::format::{Format, Runner};
use crate::run::Shard;

#[derive(Debug, Parser)]
#[command(name = "fedtest", version, about = "Run the tests that matter first — learned from your own CI history, offline.", long_about = None)]
pub struct Cli {
    /// Where the history and model live.
    #[arg(long, global = true, env = crate::config::env::DIR, default_value = ".fedtest")]
    pub data_dir: PathBuf,

    /// Configuration file [default: ./fedtest.toml when it exists].
    #[arg(long, global = true, env = crate::config::env::CONFIG)]
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
    /// Plan, run the test command with the selected tests, record its JUnit, exit as it did.
    Run(RunArgs),
    /// List flaky tests: score, evidence, first and last flake, owners (CODEOWNERS).
    Flaky(FlakyArgs),
    /// Keep the reviewed quarantine file: tests whose failures do not fail `gate` until
    /// their entry expires.
    Quarantine(QuarantineArgs),
    /// The build's verdict from its JUnit reports: exit 10 when a test that is not
    /// quarantined failed, or when no test ran; 0 otherwise.
    Gate(GateArgs),
    /// Run the federation server (the aggregation endpoint), or administer its database.
    Serve(ServeArgs),
    /// Import past CI runs into the history: GitHub Actions workflow runs and their JUnit
    /// artifacts, or GitLab pipelines and their test reports. Resumable.
    Import(ImportArgs),
    /// Federate: push this repository's model delta to the server, pull the global model,
    /// and use whichever of local / global / blend predicts the newest builds best.
    Sync(SyncArgs),
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

impl BuildArgs {
    /// The flags as the library takes them.
    pub fn spec(&self) -> crate::inputs::BuildSpec {
        crate::inputs::BuildSpec {
            build: self.build.clone(),
            commit: self.commit.clone(),
            branch: self.branch.clone(),
            changed_files: self.changed_files.clone(),
            base: self.base.clone(),
        }
    }
}

/// Where `plan`, `run` and `gate` report to the CI platform. By default: step outputs and a
/// job summary on GitHub Actions, a dotenv report and a log section on GitLab CI.
#[derive(Debug, Args, Default, Clone)]
pub struct CiReportArgs {
    /// Write no CI report (step outputs, job summary, dotenv report, GitLab log section).
    /// Warnings and annotations still show.
    #[arg(long)]
    pub no_ci_report: bool,
    /// Append step outputs (`name=value`) to this file [default: $GITHUB_OUTPUT on GitHub
    /// Actions].
    #[arg(long, value_name = "FILE", conflicts_with = "no_ci_report")]
    pub github_output: Option<PathBuf>,
    /// Append a Markdown summary to this file [default: $GITHUB_STEP_SUMMARY on GitHub
    /// Actions].
    #[arg(long, value_name = "FILE", conflicts_with = "no_ci_report")]
    pub step_summary: Option<PathBuf>,
    /// Set FEDTEST_* variables in this dotenv file, keeping its other lines [default:
    /// fedtest.env on GitLab CI].
    #[arg(long, value_name = "FILE", conflicts_with = "no_ci_report")]
    pub dotenv: Option<PathBuf>,
}

impl CiReportArgs {
    /// Where the CI report goes: these flags, else the platform's own places.
    pub fn targets(&self, env: &crate::ci::Env) -> crate::report::Targets {
        crate::report::Targets::resolve(
            self.no_ci_report,
            crate::report::Targets {
                github_output: self.github_output.clone(),
                step_summary: self.step_summary.clone(),
                dotenv: self.dotenv.clone(),
                gitlab_section: false,
            },
            env,
        )
    }
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
    /// Candidate tests, one a line (`-` reads standard input): the ids your JUnit reports
    /// hold, pytest node ids (`pytest --collect-only -q`), test files, Go packages or classes.
    /// Lines that are no test id (a runner's summary line) are counted and left out.
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
    /// Output format [default: pytest when the candidates are pytest node ids, else list].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Explain each test's place: reason and the features that weighed most (to stderr for
    /// line formats; inside the document for json).
    #[arg(long)]
    pub explain: bool,
    /// Also write the plan as JSON (what `--format json` prints) to this file.
    #[arg(long, value_name = "FILE")]
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub build: BuildArgs,
    #[command(flatten)]
    pub ci: CiReportArgs,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Print the model as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Output format: the scores and the confidence curve as text, or as JSON (with the
    /// curve's points).
    #[arg(long, value_enum, default_value = "text")]
    pub format: EvalFormat,
    /// Same as `--format json`.
    #[arg(long, hide = true)]
    pub json: bool,
    /// Also write the confidence curve as a self-contained HTML report (inline SVG, no scripts).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Builds at the start of the retained window used only to warm up, never scored.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Append the confidence curve (a Mermaid chart and what each target costs) to this
    /// Markdown file [default: $GITHUB_STEP_SUMMARY on GitHub Actions].
    #[arg(long, value_name = "FILE")]
    pub step_summary: Option<PathBuf>,
    /// Write no job summary.
    #[arg(long, conflicts_with = "step_summary")]
    pub no_ci_report: bool,
}

/// Output format of `fedtest eval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFormat {
    Text,
    Json,
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

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The test runner, i.e. the syntax the selected tests are given in (as `plan --format`).
    #[arg(long, value_enum)]
    pub runner: Runner,
    /// JUnit XML the command writes: files, directories or glob patterns. Only reports written
    /// during the run are recorded.
    #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
    pub junit: Vec<String>,
    /// Candidate tests, read as `plan --tests` reads them (`-` reads standard input)
    /// [default: pytest's own collection (`--collect-only -q`) when the command runs pytest,
    /// else the tests seen in recent builds; with neither the whole command runs].
    #[arg(long, value_name = "FILE|-")]
    pub tests: Option<String>,
    /// As `plan --budget` [default: plan.budget in fedtest.toml, else 100%].
    #[arg(long)]
    pub budget: Option<String>,
    /// Run only shard I of N of the plan (1-based), balanced by estimated duration.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Also write the plan as JSON (as `plan --format json`) to this file.
    #[arg(long, value_name = "FILE")]
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub build: BuildArgs,
    #[command(flatten)]
    pub ci: CiReportArgs,
    /// Do not retrain the model after recording.
    #[arg(long)]
    pub no_train: bool,
    /// The test command. An argument `{tests}` is replaced by the selected tests in the
    /// runner's syntax; without one they are appended.
    #[arg(last = true, required = true, num_args = 1.., value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct FlakyArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: crate::flaky::ReportFormat,
    /// List tests scoring at least this (0 lists every test with a history)
    /// [default: flaky.threshold in fedtest.toml, else 0.5].
    #[arg(long, value_name = "SCORE")]
    pub min_score: Option<f64>,
}

#[derive(Debug, Args)]
pub struct QuarantineArgs {
    #[command(subcommand)]
    pub action: QuarantineAction,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineAction {
    /// Quarantine tests by id, or with --auto propose the tests scoring above the threshold.
    Add(QuarantineAddArgs),
    /// Take tests out of the quarantine.
    Remove(QuarantineRemoveArgs),
    /// List the quarantine; expired entries are marked and no longer in effect.
    List(QuarantineListArgs),
}

#[derive(Debug, Args)]
pub struct QuarantineAddArgs {
    /// Canonical test ids (`classname::name`).
    #[arg(required_unless_present = "auto", conflicts_with = "auto")]
    pub ids: Vec<String>,
    /// Why the tests are quarantined (required without --auto).
    #[arg(long, required_unless_present = "auto")]
    pub reason: Option<String>,
    /// Who owns the fix [default: the test's owners in CODEOWNERS].
    #[arg(long)]
    pub owner: Option<String>,
    /// Last day the entry is in effect, YYYY-MM-DD [default: today + flaky.quarantine_days].
    #[arg(long, value_name = "DATE")]
    pub expires: Option<String>,
    /// Propose an entry for every test whose flakiness score is at least the threshold and
    /// that is not quarantined yet; print them (add --write to add them to the file).
    #[arg(long)]
    pub auto: bool,
    /// With --auto: add the proposed entries to the quarantine file.
    #[arg(long, requires = "auto")]
    pub write: bool,
    /// With --auto: the score to propose from [default: flaky.threshold].
    #[arg(long, requires = "auto", value_name = "SCORE")]
    pub min_score: Option<f64>,
}

#[derive(Debug, Args)]
pub struct QuarantineRemoveArgs {
    /// Canonical test ids (`classname::name`).
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct QuarantineListArgs {
    /// Print the entries as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// JUnit XML reports: files, directories (searched for *.xml) or glob patterns.
    #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
    pub junit: Vec<String>,
    #[command(flatten)]
    pub ci: CiReportArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub action: Option<ServeAction>,
    /// The server database: a SQLite file (created when missing), or a PostgreSQL URL
    /// (`postgres://user@host:port/db`, plaintext) that several replicas share.
    #[arg(
        long,
        global = true,
        env = crate::config::env::SERVER_DB,
        default_value = "fedtest-server.sqlite"
    )]
    pub db: PathBuf,
    /// Address to listen on (port 0 picks a free port; see --port-file).
    #[arg(long, default_value = "127.0.0.1:8470")]
    pub listen: String,
    /// Write the bound address (host:port) to this file once listening.
    #[arg(long, value_name = "FILE")]
    pub port_file: Option<PathBuf>,
    /// Accepted bearer tokens, one a line [default: FEDTEST_SERVER_TOKENS, comma-separated].
    #[arg(long, value_name = "FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Distinct clients whose updates make a new model version (FedBuff's K).
    #[arg(long, default_value_t = 4)]
    pub buffer: usize,
    /// Aggregate whatever is buffered once its oldest update has waited this long.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub flush_secs: u64,
    /// How clipped deltas are combined.
    #[arg(long, value_enum, default_value = "trimmed-mean")]
    pub rule: crate::server::Rule,
    /// Share trimmed from each end by the trimmed mean (at least one value once three updates
    /// are combined; 0 = the plain mean).
    #[arg(long, default_value_t = 0.1)]
    pub trim: f64,
    /// The clip bound C for every delta (default 1; fixed, never derived from the updates it
    /// bounds); deltas longer than 10·C are refused. DP needs it set explicitly.
    #[arg(long, value_name = "C")]
    pub clip: Option<f64>,
    /// DP-FedAvg: add Gaussian noise of std Z·C/n to every aggregate of n updates (needs
    /// --clip; weighs updates equally and averages them without trimming). The privacy spent
    /// is reported as fedtest_dp_epsilon and by `serve status`.
    #[arg(long, value_name = "Z", requires = "clip")]
    pub dp_noise_multiplier: Option<f64>,
    /// δ of the reported (ε, δ).
    #[arg(long, global = true, default_value_t = crate::server::privacy::DEFAULT_DELTA)]
    pub dp_delta: f64,
    /// Server learning rate applied to the aggregate.
    #[arg(long, default_value_t = 1.0)]
    pub lr: f64,
    /// Updates per second allowed per token, on average.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Updates a token may send in a burst.
    #[arg(long, default_value_t = 10.0)]
    pub burst: f64,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = 16384)]
    pub max_body: usize,
    /// A time flush of fewer distinct tokens than this (and than --buffer) moves the model by
    /// only n/N of its step.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub min_tokens: usize,
    /// The model moves at most this far (Euclidean) within any 20 versions.
    #[arg(long, default_value_t = 2.0, value_name = "D")]
    pub max_drift: f64,
    /// The model stays within this distance of the prior.
    #[arg(long, default_value_t = 6.0, value_name = "R")]
    pub max_from_prior: f64,
    /// Open connections at most; beyond, a new connection takes the place of the one idle
    /// the longest.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_connections: usize,
    /// Seconds a connection may take to send a request head; also how long an idle
    /// keep-alive connection stays open.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub header_timeout: u64,
    /// Every minute, delete the stored updates of all but the newest N versions, as
    /// `serve prune` does [default: keep every update].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(21..))]
    pub prune_keep: Option<u64>,
    /// fsync every commit (durable against power loss, slower); without it a commit survives
    /// the process being killed. PostgreSQL: sets synchronous_commit=on for fedtest's
    /// sessions (without it the database's own setting applies).
    #[arg(long, global = true)]
    pub fsync: bool,
    /// Connections to PostgreSQL per replica (ignored for SQLite).
    #[arg(long, global = true, default_value_t = 8)]
    pub db_connections: usize,
    /// Do not log refused updates.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum ServeAction {
    /// Show the database: current version, updates by state, recent versions, and a replay
    /// check that every applied update was applied exactly once.
    Status(ServeStatusArgs),
    /// Make an earlier model version current again (as a new version); pending updates,
    /// computed against the abandoned model, are discarded.
    Rollback(ServeRollbackArgs),
    /// Delete the stored updates of all but the newest versions, so the database stops
    /// growing; the versions (for rollback) and the counts stay. Safe while replicas run.
    Prune(ServePruneArgs),
}

#[derive(Debug, Args)]
pub struct ServePruneArgs {
    /// Versions whose updates are kept (and replayed by `serve status`). At least 21: a
    /// pruned update's id is forgotten, and a re-send of it must be refused as too stale.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(21..))]
    pub keep_versions: u64,
}

#[derive(Debug, Args)]
pub struct ServeStatusArgs {
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
    /// How many recent versions to list.
    #[arg(long, default_value_t = 10)]
    pub versions: usize,
}

#[derive(Debug, Args)]
pub struct ServeRollbackArgs {
    /// The version to return to.
    #[arg(long)]
    pub to: u64,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Federation server URL (token in FEDTEST_TOKEN).
    #[arg(long, env = crate::config::env::SERVER)]
    pub server: Option<String>,
    /// Print exactly the update body that would be sent, and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Exit non-zero when the server cannot be reached or refuses the update (default: warn
    /// and keep the local model).
    #[arg(long)]
    pub strict: bool,
    /// Give up on the whole exchange after this many seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub platform: ImportPlatform,
}

#[derive(Debug, Subcommand)]
pub enum ImportPlatform {
    /// A workflow's completed runs: the JUnit XML in their artifacts, head commit, branch and
    /// changed files. Token in GITHUB_TOKEN (or --token-env).
    #[command(after_help = IMPORT_AFTER_HELP)]
    Github(ImportGithubArgs),
    /// A project's finished pipelines: their test reports, commit, ref and changed files.
    /// Token in GITLAB_TOKEN (read_api) or --token-env, else CI_JOB_TOKEN.
    #[command(after_help = IMPORT_AFTER_HELP)]
    Gitlab(ImportGitlabArgs),
}

const IMPORT_AFTER_HELP: &str = "\
Runs are recorded oldest first, each as one build in its own transaction, then the model is
retrained once. Runs already in the history are skipped without downloading anything, so
running the same command again resumes an interrupted import and later fetches only new runs.
Runs older than the newest build in the history are not imported (the history is time
ordered): backfill into an empty data dir.

Exit codes: 0 done (runs whose results expired, are missing or could not be read are counted
and skipped), 2 bad arguments or no token, 4 history store unusable, 5 GitHub/GitLab could not
be used (unreachable, token refused, rate limit resetting later than --max-wait, runs failing
in a row): what was imported stays, and the same command resumes.";

/// Settings shared by `import github` and `import gitlab`.
#[derive(Debug, Args)]
pub struct ImportCommonArgs {
    /// Consider at most the N most recent runs.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub limit: usize,
    /// Environment variable holding the token [default: GITHUB_TOKEN; GitLab: GITLAB_TOKEN,
    /// else CI_JOB_TOKEN].
    #[arg(long, value_name = "NAME")]
    pub token_env: Option<String>,
    /// Do not fetch the changed files of each run's head commit (one request per commit).
    #[arg(long)]
    pub no_changed_files: bool,
    /// Longest wait for a rate limit to reset; a later reset stops the import (exit 5) and a
    /// later run resumes.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub max_wait: u64,
    /// Retries of a request that failed on the network, timed out, or got 408/5xx (jittered
    /// exponential backoff from 0.5 s). A run still failing then is skipped with a warning.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub retries: u32,
    /// Timeout of one request, body included.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
    /// Largest artifact zip or test report to download, in MiB (a larger one skips its run).
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    pub max_download_mib: u64,
    /// Runs fetched at the same time (they are still recorded in order).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    /// Do not retrain the model after importing.
    #[arg(long)]
    pub no_train: bool,
    /// Import runs triggered by this event (GitHub `event`, GitLab pipeline `source`); repeat
    /// for several [default: GitHub push, merge_group; GitLab push].
    #[arg(long = "event", value_name = "EVENT")]
    pub events: Vec<String>,
    /// Import only runs triggered by this user (login); repeat for several [default: anyone].
    #[arg(long = "actor", value_name = "LOGIN")]
    pub actors: Vec<String>,
    /// Import runs of pull requests from forks (and GitLab merge-request pipelines, whose
    /// origin the listing does not tell) when their event is imported. Their artifacts are
    /// written by whoever opened the pull request.
    #[arg(long)]
    pub include_forks: bool,
    /// Fetch again the runs an earlier import skipped (expired, refused, unreadable, over a
    /// bound, without results) and remembered.
    #[arg(long)]
    pub retry_skipped: bool,
    /// Largest total of unzipped bytes read from one artifact, in MiB.
    #[arg(long, default_value_t = 2048, value_name = "MIB")]
    pub max_unzipped_mib: u64,
    /// Largest total of unzipped bytes read from all artifacts of one import, in MiB (past it
    /// the import stops, exit 5, and the next one goes on).
    #[arg(long, default_value_t = 65536, value_name = "MIB")]
    pub max_import_unzipped_mib: u64,
    /// Most entries (files) in one artifact zip.
    #[arg(long, default_value_t = 50_000, value_name = "N")]
    pub max_zip_entries: u64,
    /// Most test cases (JUnit rows, retries included) read for one run.
    #[arg(long, default_value_t = 500_000, value_name = "N")]
    pub max_test_cases: u64,
    /// Longest time spent unzipping and reading one run's artifacts.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub max_read_seconds: u64,
}

#[derive(Debug, Args)]
pub struct ImportGithubArgs {
    /// The repository.
    #[arg(long, env = "GITHUB_REPOSITORY", value_name = "OWNER/NAME")]
    pub repo: String,
    /// The workflow: its file name (`ci.yml`) or numeric id.
    #[arg(long, value_name = "FILE_OR_ID")]
    pub workflow: String,
    /// Only runs of this branch: a name or a glob (`release/*`); repeat for several
    /// [default: every branch].
    #[arg(long, value_name = "B")]
    pub branch: Vec<String>,
    /// Artifacts to read, by name: a glob, case-insensitive; repeat for several
    /// [default: *junit*, *test*result*, *test*report*].
    #[arg(long = "artifact-pattern", value_name = "GLOB")]
    pub artifact_patterns: Vec<String>,
    /// The REST API root (GitHub Enterprise Server: https://HOST/api/v3).
    #[arg(
        long,
        env = "GITHUB_API_URL",
        default_value = "https://api.github.com",
        value_name = "URL"
    )]
    pub api_url: String,
    #[command(flatten)]
    pub common: ImportCommonArgs,
}

#[derive(Debug, Args)]
pub struct ImportGitlabArgs {
    /// The project: numeric id or full path (`group/project`).
    #[arg(long, env = "CI_PROJECT_ID", value_name = "ID_OR_PATH")]
    pub project: String,
    /// Only pipelines of this branch or tag: a name or a glob; repeat for several
    /// [default: every ref].
    #[arg(long = "ref", value_name = "B")]
    pub git_ref: Vec<String>,
    /// The GitLab instance; the API is under /api/v4.
    #[arg(
        long,
        env = "CI_SERVER_URL",
        default_value = "https://gitlab.com",
        value_name = "URL"
    )]
    pub api_url: String,
    #[command(flatten)]
    pub common: ImportCommonArgs,
}
