//! A small typed client for the four GitHub REST endpoints `fedtest import github` needs.
//!
//! Why not octocrab (which the issue named): it is the slowest crate of the tree to compile
//! (~145 s in release here, per `CRATES.md`), and with its defaults it brings a second TLS
//! crypto provider (ring) beside reqwest's aws-lc-rs. Built on our reqwest client it would
//! still leave the parts this command is about to us: its artifact download buffers the whole
//! zip with no size limit and follows the 302 to blob storage inside its own middleware,
//! its retry layer does not wait for `x-ratelimit-reset` or `retry-after` (nor stop at a cap),
//! and it cannot share one rate-limit gate and request budget with the GitLab client. Four
//! `GET`s with serde types are less code than adapting it, and the HTTP policy lives in one
//! place, [`super::http`], for both platforms.
//!
//! Endpoints (API version 2022-11-28):
//! - `GET /repos/{owner}/{repo}/actions/workflows/{workflow}/runs?status=completed&per_page=100`
//!   — newest first, paginated by the `Link` header (`rel="next"`);
//! - `GET /repos/{owner}/{repo}/actions/runs/{run_id}/artifacts?per_page=100`;
//! - `GET /repos/{owner}/{repo}/actions/artifacts/{artifact_id}/zip` — a 302 to a signed URL;
//! - `GET /repos/{owner}/{repo}/commits/{sha}` — `files[].filename`, paginated past 300 files.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use globset::GlobSet;
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;

use super::artifact::{self, ArtifactError, Bound, Bounds, Meter};
use super::error::{ImportError, Service};
use super::http::{Http, Limits, Token, shown};
use super::run::{ChangedFiles, Fetched, Run};
use super::validate;
use crate::junit::{self, Grouper};

/// Events imported when `--event` is not given: the repository's own pushes and its merge
/// queue. A `pull_request` run can come from a fork, whose branch may even be named `main`.
pub const DEFAULT_EVENTS: &[&str] = &["push", "merge_group"];

/// Artifact names (globs, case-insensitive) read when `--artifact-pattern` is not given.
pub const DEFAULT_ARTIFACT_PATTERNS: &[&str] = &["*junit*", "*test*result*", "*test*report*"];

/// Pages of a commit's files followed at most (GitHub lists at most 3,000 files of a commit).
const MAX_COMMIT_PAGES: usize = 10;
/// Pages of one run's artifacts followed at most (1,000 artifacts).
const MAX_ARTIFACT_PAGES: usize = 10;

pub struct GitHub {
    http: Http,
    api: Url,
    owner: String,
    repo: String,
    workflow: String,
    branch: Option<String>,
    patterns: GlobSet,
    junit_limits: junit::Limits,
    bounds: Bounds,
    /// Bytes unzipped by this import so far (for `bounds.max_import_unzipped_bytes`).
    unzipped: Arc<AtomicU64>,
    /// One artifact is unzipped and parsed at a time, whatever `--jobs`: reading is CPU work
    /// (one core keeps up with the store's writes on the other), and memory then holds one
    /// report's rows, not one per job.
    reading: tokio::sync::Semaphore,
    changed: ChangedFiles,
}

/// What `fedtest import github` was asked to read.
pub struct Target {
    /// API root, e.g. `https://api.github.com` (GitHub Enterprise: `https://host/api/v3`).
    pub api: Url,
    /// `owner/name`.
    pub repo: String,
    /// Workflow file name (`ci.yml`) or numeric id.
    pub workflow: String,
    /// Asked of the API (`branch=`): one branch named exactly.
    pub branch: Option<String>,
    pub patterns: GlobSet,
}

#[derive(Deserialize)]
struct RunsPage {
    #[serde(default)]
    workflow_runs: Vec<WorkflowRun>,
}

#[derive(Deserialize)]
struct WorkflowRun {
    id: u64,
    run_attempt: Option<u32>,
    head_sha: Option<String>,
    head_branch: Option<String>,
    run_started_at: Option<String>,
    created_at: Option<String>,
    status: Option<String>,
    event: Option<String>,
    head_repository: Option<Repository>,
    repository: Option<Repository>,
    triggering_actor: Option<Actor>,
    actor: Option<Actor>,
}

#[derive(Deserialize)]
struct Repository {
    id: Option<u64>,
    full_name: Option<String>,
}

#[derive(Deserialize)]
struct Actor {
    login: Option<String>,
}

impl WorkflowRun {
    /// A pull request's head repository is another one (a fork), or cannot be told: only a
    /// push (or a merge queue, a schedule…) of the repository itself is known to be its own.
    fn is_fork(&self, owner: &str, repo: &str) -> bool {
        let own = format!("{owner}/{repo}");
        match (&self.head_repository, &self.repository) {
            (Some(head), Some(base)) => match (head.id, base.id) {
                (Some(h), Some(b)) => h != b,
                _ => !head
                    .full_name
                    .as_deref()
                    .zip(base.full_name.as_deref())
                    .is_some_and(|(h, b)| h.eq_ignore_ascii_case(b)),
            },
            (Some(head), None) => !head
                .full_name
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(&own)),
            // No head repository: fine for events that do not come from a pull request.
            (None, _) => self
                .event
                .as_deref()
                .is_none_or(|e| e.starts_with("pull_request")),
        }
    }

    fn into_run(self, owner: &str, repo: &str) -> Run {
        let fork = self.is_fork(owner, repo);
        let attempt = self.run_attempt.unwrap_or(1);
        let mut problems = Vec::new();
        if self.id == 0 {
            problems.push("run id 0".to_owned());
        }
        if !(1..=validate::MAX_ATTEMPT).contains(&attempt) {
            problems.push(format!(
                "attempt {attempt} is not between 1 and {}",
                validate::MAX_ATTEMPT
            ));
        }
        let commit = self.head_sha.as_deref().map(validate::commit).transpose();
        let branch = self
            .head_branch
            .as_deref()
            .map(validate::branch)
            .transpose();
        let (commit, branch) = match (commit, branch) {
            (Ok(c), Ok(b)) => (c, b),
            (c, b) => {
                problems.extend(c.err());
                problems.extend(b.err());
                (None, None)
            }
        };
        Run {
            build_id: build_id(self.id, attempt),
            id: self.id,
            commit,
            branch,
            started_at: self
                .run_started_at
                .as_deref()
                .or(self.created_at.as_deref())
                .and_then(super::time::unix_seconds),
            label: format!("run {} (attempt {attempt})", self.id),
            event: self.event,
            actor: self
                .triggering_actor
                .and_then(|a| a.login)
                .or(self.actor.and_then(|a| a.login)),
            fork,
            problem: (!problems.is_empty()).then(|| problems.join("; ")),
        }
    }
}

#[derive(Deserialize)]
struct ArtifactsPage {
    #[serde(default)]
    artifacts: Vec<Artifact>,
}

#[derive(Deserialize)]
struct Artifact {
    id: u64,
    name: String,
    #[serde(default)]
    size_in_bytes: u64,
    #[serde(default)]
    expired: bool,
}

#[derive(Deserialize)]
struct Commit {
    #[serde(default)]
    files: Vec<CommitFile>,
}

#[derive(Deserialize)]
struct CommitFile {
    filename: String,
}

impl GitHub {
    pub fn new(
        target: Target,
        token: &str,
        limits: Limits,
        junit_limits: junit::Limits,
        bounds: Bounds,
    ) -> Result<Self, ImportError> {
        let (owner, repo) = target
            .repo
            .split_once('/')
            .map(|(o, r)| (o.to_owned(), r.to_owned()))
            .ok_or_else(|| {
                ImportError::Client(format!("--repo {:?} is not OWNER/NAME", target.repo))
            })?;
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| ImportError::Client("the token is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let http = Http::new(
            Service::GitHub,
            Some((reqwest::header::AUTHORIZATION, auth)),
            " (the token needs read access to the repository's Actions: `actions: read` for a \
             GitHub App or fine-grained token, `repo` for a classic token on a private repository)",
            headers,
            limits,
        )?;
        Ok(GitHub {
            http,
            api: target.api,
            owner,
            repo,
            workflow: target.workflow,
            branch: target.branch,
            patterns: target.patterns,
            junit_limits,
            bounds,
            unzipped: Arc::new(AtomicU64::new(0)),
            reading: tokio::sync::Semaphore::new(1),
            changed: ChangedFiles::default(),
        })
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    pub fn describe(&self) -> String {
        format!("workflow {} of {}/{}", self.workflow, self.owner, self.repo)
    }

    fn url(&self, path: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.api.clone();
        url.path_segments_mut()
            .expect("an http(s) URL has path segments")
            .pop_if_empty()
            .extend(["repos", &self.owner, &self.repo])
            .extend(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The `limit` most recent completed runs of the workflow, newest first.
    pub async fn runs(&self, limit: usize) -> Result<Vec<Run>, ImportError> {
        let mut query = vec![("status", "completed"), ("per_page", "100")];
        if let Some(b) = &self.branch {
            query.push(("branch", b));
        }
        let first = self.url(&["actions", "workflows", &self.workflow, "runs"], &query);
        let mut runs = Vec::new();
        let pages = paginate(&self.http, first, limit, usize::MAX, |page: RunsPage| {
            page.workflow_runs
                .into_iter()
                // `status=completed` already filters; a server that ignores it must not give
                // us runs still in progress.
                .filter(|r| r.status.as_deref().is_none_or(|s| s == "completed"))
                .map(|r| r.into_run(&self.owner, &self.repo))
                .collect()
        });
        runs.extend(pages.await.map_err(|e| {
            not_found_hint(
                e,
                " (check --repo and --workflow; GitHub also answers 404 when the token cannot \
                 see the repository)",
            )
        })?);
        runs.truncate(limit);
        Ok(runs)
    }

    /// The runs the history already holds, as build ids: a run imported before
    /// (`gh-RUN-ATTEMPT`), or recorded by `fedtest record` inside one of its jobs
    /// (`gh-RUN-ATTEMPT-JOB`, see `crate::ci`).
    pub fn run_ids(ids: &HashSet<String>) -> HashSet<String> {
        ids.iter()
            .filter_map(|id| {
                let rest = id.strip_prefix("gh-")?;
                let mut parts = rest.splitn(3, '-');
                let run = parts.next().filter(|p| is_number(p))?;
                let attempt = parts.next().filter(|p| is_number(p))?;
                Some(format!("gh-{run}-{attempt}"))
            })
            .collect()
    }

    /// The run's test results: every non-expired artifact whose name matches the patterns,
    /// unzipped and read in memory; and its head commit's changed files when asked.
    pub async fn fetch(&self, run: &Run, changed_files: bool) -> Result<Fetched, ImportError> {
        let first = self.url(
            &["actions", "runs", &run.id.to_string(), "artifacts"],
            &[("per_page", "100")],
        );
        let artifacts: Vec<Artifact> = paginate(
            &self.http,
            first,
            usize::MAX,
            MAX_ARTIFACT_PAGES,
            |p: ArtifactsPage| p.artifacts,
        )
        .await?;
        let wanted: Vec<Artifact> = artifacts
            .into_iter()
            .filter(|a| self.patterns.is_match(&a.name))
            .collect();
        if wanted.is_empty() {
            return Ok(Fetched::NoResults);
        }
        if let Some(a) = wanted.iter().find(|a| a.expired) {
            return Ok(Fetched::Expired(format!(
                "artifact {:?} has expired",
                a.name
            )));
        }
        let cap = self.http.limits().max_download_bytes;
        let mut grouper = Grouper::default();
        let mut meter = Meter::new(self.bounds.clone(), Arc::clone(&self.unzipped));
        for a in wanted {
            if a.size_in_bytes > cap {
                return Err(ImportError::TooLarge {
                    url: format!("artifact {:?} ({} bytes)", a.name, a.size_in_bytes),
                    limit: cap,
                });
            }
            let url = self.url(&["actions", "artifacts", &a.id.to_string(), "zip"], &[]);
            let zip = match self.http.download(&url).await {
                Ok(z) => z,
                Err(ImportError::Gone { .. } | ImportError::NotFound { .. }) => {
                    return Ok(Fetched::Expired(format!(
                        "artifact {:?} is gone (expired or deleted)",
                        a.name
                    )));
                }
                Err(e @ ImportError::Unavailable { .. }) => {
                    return Ok(Fetched::Unavailable(format!("artifact {:?}: {e}", a.name)));
                }
                Err(e) => return Err(e),
            };
            let limits = self.junit_limits.clone();
            let label = format!("{}.zip", artifact::printable(&a.name));
            let permit = self
                .reading
                .acquire()
                .await
                .map_err(|e| ImportError::Client(format!("reading an artifact failed: {e}")))?;
            let (read, m, g) = tokio::task::spawn_blocking(move || {
                let read = artifact::read_zip(zip, &label, &limits, &mut meter, &mut grouper);
                (read, meter, grouper)
            })
            .await
            .map_err(|e| ImportError::Client(format!("reading an artifact failed: {e}")))?;
            drop(permit);
            (meter, grouper) = (m, g);
            match read {
                Ok(_) => {}
                Err(ArtifactError::Bound {
                    bound: bound @ Bound::ImportUnzippedBytes(_),
                    ..
                }) => {
                    return Err(ImportError::ImportBound(format!(
                        "{} stopped the import: {bound}; the next import goes on",
                        run.label
                    )));
                }
                Err(e @ ArtifactError::Bound { .. }) => {
                    return Ok(Fetched::OverBound(e.to_string()));
                }
                Err(e) => return Ok(Fetched::Unreadable(e.to_string())),
            }
        }
        if grouper.is_empty() {
            return Ok(Fetched::NoResults);
        }
        let changed = match (&run.commit, changed_files) {
            (Some(sha), true) => Some(self.changed_files(sha).await),
            _ => None,
        };
        Fetched::results(grouper.finish(), changed)
    }

    async fn changed_files(&self, sha: &str) -> Result<Vec<String>, ImportError> {
        self.changed
            .get_or_fetch(sha, async {
                let first = self.url(&["commits", sha], &[("per_page", "300")]);
                paginate(
                    &self.http,
                    first,
                    usize::MAX,
                    MAX_COMMIT_PAGES,
                    |c: Commit| {
                        c.files
                            .into_iter()
                            .map(|f| f.filename)
                            .filter(|f| validate::file_path(f))
                            .collect()
                    },
                )
                .await
            })
            .await
    }
}

/// A run's build id: `gh-RUN-ATTEMPT`, the prefix of the ids `fedtest record` gives the jobs
/// of that run in GitHub Actions (`gh-RUN-ATTEMPT-JOB`, see `crate::ci`).
pub fn build_id(run: u64, attempt: u32) -> String {
    format!("gh-{run}-{attempt}")
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn not_found_hint(e: ImportError, hint: &'static str) -> ImportError {
    match e {
        ImportError::NotFound { url, .. } => ImportError::NotFound { url, hint },
        other => other,
    }
}

/// Follow a listing from `first` until `limit` items, the last page, or `max_pages`. The
/// next page is the `Link` header's `rel="next"` (same origin only: the token goes along),
/// else — for a server that sends no `Link` — `page=N+1` after a full page of 100.
async fn paginate<P: serde::de::DeserializeOwned, T>(
    http: &Http,
    first: Url,
    limit: usize,
    max_pages: usize,
    items: impl Fn(P) -> Vec<T>,
) -> Result<Vec<T>, ImportError> {
    let mut out = Vec::new();
    let mut url = first.clone();
    // A `Link` back to a page already read would list the same items again.
    let mut visited = HashSet::new();
    for page in 1..=max_pages {
        if !visited.insert(url.clone()) {
            break;
        }
        let (body, headers): (P, HeaderMap) = http.json(&url).await?;
        let got = items(body);
        let n = got.len();
        out.extend(got);
        if out.len() >= limit || n == 0 {
            break;
        }
        url = match next_link(&headers) {
            Some(next) if next.origin() == first.origin() => next,
            Some(next) => {
                return Err(ImportError::BadAnswer {
                    url: shown(&url, Token::Send),
                    detail: format!(
                        "next page on another host ({})",
                        next.origin().ascii_serialization()
                    ),
                });
            }
            None if headers.get(reqwest::header::LINK).is_none() && n >= 100 => {
                with_page(&first, page + 1)
            }
            None => break,
        };
    }
    Ok(out)
}

/// `first` with `page=N` (replacing any `page` it has).
fn with_page(first: &Url, page: usize) -> Url {
    let mut url = first.clone();
    let pairs: Vec<(String, String)> = first
        .query_pairs()
        .filter(|(k, _)| k != "page")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair("page", &page.to_string());
    url
}

/// The `rel="next"` target of a `Link` header (RFC 8288), e.g.
/// `<https://api.github.com/…&page=2>; rel="next", <…&page=5>; rel="last"`.
pub fn next_link(headers: &HeaderMap) -> Option<Url> {
    for value in headers.get_all(reqwest::header::LINK) {
        let text = value.to_str().ok()?;
        let mut rest = text;
        while let Some(start) = rest.find('<') {
            let end = start + rest[start..].find('>')?;
            let target = &rest[start + 1..end];
            let params_end = rest[end..].find('<').map_or(rest.len(), |i| end + i);
            let params = &rest[end + 1..params_end];
            let is_next = params.split(';').any(|p| {
                let p = p.trim().trim_end_matches(',').trim();
                p.strip_prefix("rel=")
                    .map(|r| r.trim_matches('"'))
                    .is_some_and(|r| r.split_whitespace().any(|r| r.eq_ignore_ascii_case("next")))
            });
            if is_next {
                return Url::parse(target).ok();
            }
            rest = &rest[params_end..];
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::LINK, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn next_link_of_githubs_link_header() {
        let h = link(
            "<https://api.github.com/repositories/1/actions/runs?page=1>; rel=\"prev\", \
             <https://api.github.com/repositories/1/actions/runs?per_page=100&page=3>; rel=\"next\", \
             <https://api.github.com/repositories/1/actions/runs?page=9>; rel=\"last\"",
        );
        assert_eq!(
            next_link(&h).unwrap().as_str(),
            "https://api.github.com/repositories/1/actions/runs?per_page=100&page=3"
        );
        let last = link(
            "<https://api.github.com/x?page=1>; rel=\"first\", <https://api.github.com/x?page=2>; rel=\"prev\"",
        );
        assert_eq!(next_link(&last), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn page_numbers_replace_the_old_one() {
        let u = Url::parse("http://h/r?status=completed&page=2&per_page=100").unwrap();
        assert_eq!(
            with_page(&u, 3).as_str(),
            "http://h/r?status=completed&per_page=100&page=3"
        );
    }

    #[test]
    fn runs_recorded_inside_ci_count_as_present() {
        let ids: HashSet<String> = ["gh-42-1-test", "gh-43-2", "gl-9", "gh-x-1-a", "local-1"]
            .map(str::to_owned)
            .into();
        let runs = GitHub::run_ids(&ids);
        assert!(runs.contains("gh-42-1"));
        assert!(runs.contains("gh-43-2"));
        assert_eq!(runs.len(), 2);
    }
}
