//! What the platforms' clients (`github`, `gitlab`) and the import `pipeline` share: a run,
//! which runs are imported, and what fetching one gave.

use std::collections::HashMap;
use std::sync::Mutex;

use super::error::ImportError;
use crate::junit::TestCase;

/// One CI run (a GitHub workflow run, a GitLab pipeline): one build of the history.
#[derive(Clone, Debug)]
pub struct Run {
    pub build_id: String,
    /// The platform's run or pipeline id.
    pub id: u64,
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// When it started (Unix seconds).
    pub started_at: Option<i64>,
    /// How messages name it: "run 123 (attempt 2)", "pipeline 45".
    pub label: String,
    /// What triggered it: GitHub's `event`, GitLab's `source`.
    pub event: Option<String>,
    /// Who triggered it (GitHub's `triggering_actor`, GitLab's `user`).
    pub actor: Option<String>,
    /// It ran code from another repository (a pull request from a fork), or may have.
    pub fork: bool,
    /// Why the run's data cannot be used (see [`super::validate`]).
    pub problem: Option<String>,
}

/// Which listed runs are imported.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    /// Events (GitHub) or pipeline sources (GitLab) imported.
    pub events: Vec<String>,
    /// Branch globs; empty: every branch.
    pub branches: Option<globset::GlobSet>,
    /// Who may have triggered the run; empty: anyone.
    pub actors: Vec<String>,
    /// Runs from forks too.
    pub forks: bool,
}

impl RunFilter {
    /// Why `run` is left out, if it is.
    pub(super) fn leaves_out(&self, run: &Run) -> Option<String> {
        let event = run.event.as_deref().unwrap_or("");
        if !self.events.iter().any(|e| e == event) {
            return Some(match &run.event {
                Some(e) => format!("event {} (--event)", super::validate::quoted(e)),
                None => "no event named (--event)".to_owned(),
            });
        }
        if run.fork && !self.forks {
            return Some("from a fork or of unknown origin (--include-forks)".to_owned());
        }
        if let Some(globs) = &self.branches
            && !run.branch.as_deref().is_some_and(|b| globs.is_match(b))
        {
            return Some("another branch (--branch)".to_owned());
        }
        if !self.actors.is_empty()
            && !run
                .actor
                .as_deref()
                .is_some_and(|a| self.actors.iter().any(|x| x.eq_ignore_ascii_case(a)))
        {
            return Some("another actor (--actor)".to_owned());
        }
        None
    }
}

/// What fetching one run gave.
pub enum Fetched {
    Results {
        /// Grouped, one per test.
        tests: Vec<TestCase>,
        /// `None` when not asked for; an error costs only the changed files.
        changed_files: Option<Result<Vec<String>, ImportError>>,
    },
    /// The artifacts have expired (or are gone): nothing left to read.
    Expired(String),
    /// The run has no test results (no matching artifact, an empty test report).
    NoResults,
    /// A report or an archive could not be read.
    Unreadable(String),
    /// An artifact went over one of the bounds (the message names it).
    OverBound(String),
    /// The download was refused where the token is not sent (blob storage).
    Unavailable(String),
}

impl Fetched {
    /// Why a run without results was skipped, to remember in the store.
    pub(super) fn skip_reason(&self) -> Option<&str> {
        match self {
            Fetched::Results { .. } => None,
            Fetched::Expired(_) => Some("expired"),
            Fetched::NoResults => Some("without test results"),
            Fetched::Unreadable(_) => Some("unreadable"),
            Fetched::OverBound(_) => Some("over a bound"),
            Fetched::Unavailable(_) => Some("download refused"),
        }
    }
}

/// Changed files by commit, fetched once: re-runs and several workflows share a head commit.
#[derive(Default)]
pub struct ChangedFiles(Mutex<HashMap<String, Vec<String>>>);

impl ChangedFiles {
    /// The files `sha` changed: from the cache, else from `fetch` (then cached).
    pub async fn get_or_fetch(
        &self,
        sha: &str,
        fetch: impl Future<Output = Result<Vec<String>, ImportError>>,
    ) -> Result<Vec<String>, ImportError> {
        if let Some(files) = self.0.lock().expect("cache lock").get(sha) {
            return Ok(files.clone());
        }
        let files = fetch.await?;
        self.0
            .lock()
            .expect("cache lock")
            .insert(sha.to_owned(), files.clone());
        Ok(files)
    }
}

impl Fetched {
    /// Results, unless a changed-files error must end the import.
    pub fn results(
        tests: Vec<TestCase>,
        changed_files: Option<Result<Vec<String>, ImportError>>,
    ) -> Result<Fetched, ImportError> {
        match changed_files {
            Some(Err(e)) if e.ends_import() => Err(e),
            changed_files => Ok(Fetched::Results {
                tests,
                changed_files,
            }),
        }
    }
}
