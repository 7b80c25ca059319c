//! The import itself: list the runs, leave out those the history has, fetch the rest a few at a
//! time, and record them one by one, oldest first, each in its own transaction.
//!
//! The fetches (downloads, unzipping, parsing) run on a small tokio runtime; this thread only
//! writes to the store, in run order, while the next runs are being fetched. An error that no
//! later request can get past (a rate limit beyond `--max-wait`, a refused token) stops the
//! import; everything recorded before it stays, and the same command resumes.
//!
//! The history is time ordered and only grows at the end, so a run older than the newest
//! build already in the store is not imported (it would be recorded as if it came last). That
//! is also why a run whose results cannot be fetched is skipped rather than retried later: the
//! next import finds it older than the runs recorded after it. Backfill into an empty data dir.
//!
//! Which runs are imported is decided before anything is fetched (issue 18): an artifact is
//! written by whoever ran the workflow, so by default only the repository's own pushes and
//! merge queues are read, never a pull request from a fork; a run whose data does not have the
//! expected shape (see [`super::validate`]) or that starts in the future is refused. A run
//! skipped for a reason that will not change is remembered in the store, and the next import
//! goes on past it (`--retry-skipped` fetches those again).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{ImportError, Service};
use super::github::GitHub;
use super::gitlab::GitLab;
use super::http::Http;
use super::run::{Fetched, Run, RunFilter};
use crate::error::Error;
use crate::history::store::{BuildMeta, Retention};
use crate::history::{RecordOutcome, Store};
use crate::output::Printer;

/// Runs in a row that could not be fetched before the import gives up (the service is
/// probably down; the next import resumes where this one stopped).
const MAX_FAILURES_IN_A_ROW: usize = 5;

/// Where runs come from.
pub enum Source {
    // Boxed: the clients are large (HTTP client, bounds, caches) and differ in size.
    GitHub(Box<GitHub>),
    GitLab(Box<GitLab>),
}

impl Source {
    pub fn service(&self) -> Service {
        match self {
            Source::GitHub(_) => Service::GitHub,
            Source::GitLab(_) => Service::GitLab,
        }
    }

    pub fn http(&self) -> &Http {
        match self {
            Source::GitHub(g) => g.http(),
            Source::GitLab(g) => g.http(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::GitHub(g) => g.describe(),
            Source::GitLab(g) => g.describe(),
        }
    }

    async fn runs(&self, limit: usize) -> Result<Vec<Run>, ImportError> {
        match self {
            Source::GitHub(g) => g.runs(limit).await,
            Source::GitLab(g) => g.runs(limit).await,
        }
    }

    async fn fetch(&self, run: &Run, changed_files: bool) -> Result<Fetched, ImportError> {
        match self {
            Source::GitHub(g) => g.fetch(run, changed_files).await,
            Source::GitLab(g) => g.fetch(run, changed_files).await,
        }
    }

    /// The build ids that mark a run as already present.
    fn present(&self, ids: HashSet<String>) -> HashSet<String> {
        match self {
            Source::GitHub(_) => {
                let mut runs = GitHub::run_ids(&ids);
                runs.extend(ids);
                runs
            }
            Source::GitLab(_) => ids,
        }
    }
}

/// How an import runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The most recent runs to consider.
    pub limit: usize,
    /// Runs fetched at the same time.
    pub jobs: usize,
    /// Ask for each run's changed files (one more request per commit).
    pub changed_files: bool,
    pub retention: Retention,
    /// The candidate orderings each imported build is backtested with (`crate::strategy`).
    pub models: crate::strategy::Models,
    pub filter: RunFilter,
    /// Fetch the runs an earlier import skipped and remembered again.
    pub retry_skipped: bool,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Runs listed (at most `limit`).
    pub listed: usize,
    pub imported: usize,
    /// Already in the history.
    pub present: usize,
    pub expired: usize,
    pub no_results: usize,
    /// Could not be fetched or read.
    pub failed: usize,
    /// Older than the newest build in the history.
    pub older: usize,
    /// Left out by the filters, by reason.
    pub left_out: BTreeMap<String, usize>,
    /// Refused: data of the wrong shape, a start in the future.
    pub refused: usize,
    /// An artifact over a bound.
    pub over_bound: usize,
    /// The download refused where the token is not sent.
    pub unavailable: usize,
    /// Skipped by an earlier import, and remembered.
    pub skipped_before: usize,
    pub requests: u64,
    pub bytes: u64,
}

impl Summary {
    /// The final line: `imported N, skipped (already present) M, expired E, without test
    /// results K`, and the rarer counts when they are not zero.
    pub fn line(&self) -> String {
        let mut s = format!(
            "imported {}, skipped (already present) {}, expired {}, without test results {}",
            self.imported, self.present, self.expired, self.no_results
        );
        if self.failed > 0 {
            s.push_str(&format!(", failed {}", self.failed));
        }
        if self.older > 0 {
            s.push_str(&format!(", older than the history {}", self.older));
        }
        for (n, what) in [
            (self.over_bound, "over a bound"),
            (self.unavailable, "download refused"),
            (self.refused, "refused"),
            (self.skipped_before, "skipped before"),
            (self.left_out.values().sum(), "left out by the filters"),
        ] {
            if n > 0 {
                s.push_str(&format!(", {what} {n}"));
            }
        }
        s
    }
}

/// How an import ended: its summary, and the error that stopped it early, if one did.
pub struct Outcome {
    pub summary: Summary,
    pub stopped: Option<Error>,
}

/// Import the runs of `source` into `store`.
pub fn import(
    source: Source,
    store: &mut Store,
    opts: &Options,
    printer: &Printer,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    let source = Arc::new(source);
    let mut summary = Summary::default();
    let progress = printer.progress("importing");
    let notice = progress.clone();
    source.http().set_on_wait(Arc::new(move |wait: Duration| {
        notice.info(&format!(
            "rate limit reached: waiting {}s for it to reset",
            wait.as_secs_f64().ceil()
        ));
    }));

    printer.info(&format!("listing the {}", source.describe()));
    let listed = runtime.block_on(source.runs(opts.limit));
    let mut runs = match listed {
        Ok(runs) => runs,
        Err(e) => {
            summary.requests = source.http().requests();
            return Ok(Outcome {
                summary,
                stopped: Some(stopped(e, "nothing was imported")),
            });
        }
    };
    // A listing that repeats itself (a `Link` to its own page) lists a run twice.
    let mut seen = HashSet::new();
    runs.retain(|r| seen.insert(r.build_id.clone()));
    summary.listed = runs.len();
    // Oldest first: the history is time ordered.
    runs.sort_by_key(|r| (r.started_at, r.id));
    let present = source.present(store.build_ids()?);
    let newest = store.newest_recorded_at()?;
    let skipped_before = if opts.retry_skipped {
        HashMap::new()
    } else {
        store.import_skipped()?
    };
    let now = super::validate::now();
    let mut todo = Vec::new();
    for run in runs {
        if let Some(why) = opts.filter.leaves_out(&run) {
            *summary.left_out.entry(why).or_default() += 1;
        } else if let Some(problem) = &run.problem {
            summary.refused += 1;
            printer.warn(&format!("{} refused: {problem}", run.label));
        } else if let Err(problem) = super::validate::started_at(run.started_at, now) {
            summary.refused += 1;
            printer.warn(&format!("{} refused: {problem}", run.label));
        } else if present.contains(&run.build_id) {
            summary.present += 1;
        } else if newest.zip(run.started_at).is_some_and(|(n, s)| s < n) {
            summary.older += 1;
        } else if skipped_before.contains_key(&run.build_id) {
            summary.skipped_before += 1;
        } else {
            todo.push(run);
        }
    }
    if !summary.left_out.is_empty() {
        let reasons: Vec<String> = summary
            .left_out
            .iter()
            .map(|(why, n)| format!("{n} of {why}"))
            .collect();
        printer.info(&format!(
            "left out {} runs by the filters: {}",
            summary.left_out.values().sum::<usize>(),
            reasons.join(", ")
        ));
    }
    if summary.skipped_before > 0 {
        printer.info(&format!(
            "{} runs an earlier import skipped are left out (--retry-skipped fetches them again)",
            summary.skipped_before
        ));
    }
    if summary.older > 0 {
        // Usually the runs an earlier import skipped (expired, no results); not a warning.
        printer.info(&format!(
            "{} runs older than the newest build in the history are left out (the history \
             only grows at its end; to backfill, import into an empty data dir)",
            summary.older
        ));
    }

    progress.start(todo.len() as u64);
    let mut queue = todo.into_iter();
    let mut pending: VecDeque<(Run, tokio::task::JoinHandle<Result<Fetched, ImportError>>)> =
        VecDeque::new();
    let mut failures_in_a_row = 0;
    let mut stop = None;
    loop {
        while pending.len() < opts.jobs.max(1) {
            let Some(run) = queue.next() else { break };
            let (s, r, changed) = (Arc::clone(&source), run.clone(), opts.changed_files);
            let task = runtime.spawn(async move { s.fetch(&r, changed).await });
            pending.push_back((run, task));
        }
        let Some((run, task)) = pending.pop_front() else {
            break;
        };
        progress.set_message(&run.label);
        let fetched = runtime.block_on(task).unwrap_or_else(|e| {
            Err(ImportError::Client(format!(
                "fetching {} failed: {e}",
                run.label
            )))
        });
        match fetched {
            Err(e) if e.ends_import() => {
                stop = Some(e);
                break;
            }
            Err(e) => {
                summary.failed += 1;
                failures_in_a_row += 1;
                progress.warn(&format!("{} skipped: {e}", run.label));
                if failures_in_a_row >= MAX_FAILURES_IN_A_ROW {
                    stop = Some(ImportError::FailingInARow {
                        count: failures_in_a_row,
                        last: Box::new(e),
                    });
                    break;
                }
            }
            Ok(Fetched::Results {
                tests,
                changed_files,
            }) => {
                failures_in_a_row = 0;
                let changed_files = match changed_files {
                    Some(Ok(files)) => Some(files),
                    Some(Err(e)) => {
                        progress.warn(&format!("{}: changed files unknown: {e}", run.label));
                        None
                    }
                    None => None,
                };
                let meta = BuildMeta {
                    build_id: run.build_id.clone(),
                    commit: run.commit.clone(),
                    branch: run.branch.clone(),
                    changed_files,
                    recorded_at: run.started_at,
                };
                let mut backtest = crate::strategy::backtest(
                    &opts.models,
                    &tests,
                    meta.changed_files.as_deref(),
                    None,
                );
                match crate::record::record(
                    store,
                    &meta,
                    &tests,
                    opts.retention,
                    &mut backtest,
                    None,
                )? {
                    RecordOutcome::Recorded { .. } => summary.imported += 1,
                    RecordOutcome::AlreadyRecorded { .. } => summary.present += 1,
                }
            }
            Ok(skipped) => {
                failures_in_a_row = 0;
                match &skipped {
                    Fetched::Expired(_) => summary.expired += 1,
                    Fetched::NoResults => summary.no_results += 1,
                    Fetched::Unreadable(why) => {
                        summary.failed += 1;
                        progress.warn(&format!("{} skipped: {why}", run.label));
                    }
                    Fetched::OverBound(why) => {
                        summary.over_bound += 1;
                        progress.warn(&format!("{} skipped: {why}", run.label));
                    }
                    Fetched::Unavailable(why) => {
                        summary.unavailable += 1;
                        progress.warn(&format!("{} skipped: {why}", run.label));
                    }
                    Fetched::Results { .. } => unreachable!("handled above"),
                }
                if let Some(reason) = skipped.skip_reason() {
                    store.remember_import_skipped(&run.build_id, reason)?;
                }
            }
        }
        progress.inc();
    }
    for (_, task) in pending {
        task.abort();
    }
    progress.finish();
    if summary.expired > 0 {
        printer.warn(&format!(
            "{} runs skipped because their test results have expired",
            summary.expired
        ));
    }
    summary.requests = source.http().requests();
    summary.bytes = source.http().bytes();
    printer.info(&format!(
        "{} requests, {} received in {:.1}s",
        summary.requests,
        size(summary.bytes),
        started.elapsed().as_secs_f64()
    ));
    let stopped = stop.map(|e| {
        let done = summary.imported + summary.present;
        stopped(
            e,
            &format!(
                "{done} of {} listed runs are in the history, {} imported now",
                summary.listed, summary.imported
            ),
        )
    });
    Ok(Outcome { summary, stopped })
}

fn size(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

fn stopped(source: ImportError, progress: &str) -> Error {
    Error::Import {
        source: Box::new(source),
        progress: progress.to_owned(),
    }
}
