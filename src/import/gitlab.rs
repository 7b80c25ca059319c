//! A small typed client for the GitLab REST endpoints `fedtest import gitlab` needs (API v4).
//!
//! - `GET /projects/:id/pipelines?scope=finished&per_page=100&page=N` — newest first, the
//!   next page in the `X-Next-Page` header (empty on the last);
//! - `GET /projects/:id/pipelines/:pipeline_id/test_report` — the pipeline's JUnit reports as
//!   GitLab parsed them: `test_suites[].test_cases[]` with `status` (success, failed, error,
//!   skipped), `classname`, `name`, `file`, `execution_time`. There is no XML on this path: each
//!   test case becomes the same [`Attempt`] the JUnit reader makes of a `<testcase>`;
//! - `GET /projects/:id/repository/commits/:sha/diff` — the changed files of the head commit.
//!
//! Authentication: `PRIVATE-TOKEN` (a personal, project or group access token with `read_api`),
//! else `JOB-TOKEN` with `CI_JOB_TOKEN` — which GitLab does not let read test reports, so a
//! refusal says so.

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use super::error::{ImportError, Service};
use super::http::{Http, Limits};
use super::run::{ChangedFiles, Fetched, Run};
use super::validate;
use crate::junit::{Attempt, Status};

/// Pipeline sources imported when `--event` is not given: pushes to the project itself.
/// Merge-request pipelines (merge trains among them) can run a fork's code.
pub const DEFAULT_EVENTS: &[&str] = &["push"];

/// Pages of a commit's diff followed at most.
const MAX_DIFF_PAGES: usize = 30;

/// The token a GitLab import authenticates with.
pub enum Token {
    /// A personal, project or group access token (`PRIVATE-TOKEN`).
    Private(String),
    /// `CI_JOB_TOKEN` (`JOB-TOKEN`).
    Job(String),
    /// None: public projects only.
    None,
}

/// What `fedtest import gitlab` was asked to read.
pub struct Target {
    /// The instance, e.g. `https://gitlab.com`; the API is under `/api/v4`.
    pub url: Url,
    /// Numeric id or full path (`group/sub/project`).
    pub project: String,
    pub git_ref: Option<String>,
}

pub struct GitLab {
    http: Http,
    api: Url,
    project: String,
    git_ref: Option<String>,
    /// Test cases of one pipeline read at most.
    max_test_cases: u64,
    changed: ChangedFiles,
}

#[derive(Deserialize)]
struct Pipeline {
    id: u64,
    sha: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    created_at: Option<String>,
    status: Option<String>,
    source: Option<String>,
    user: Option<User>,
}

#[derive(Deserialize)]
struct User {
    username: Option<String>,
}

/// Pipeline sources that may run a merge request's code, which can come from a fork; the
/// listing does not say which, so they count as from a fork.
const MERGE_REQUEST_SOURCES: &[&str] = &["merge_request_event", "external_pull_request_event"];

impl Pipeline {
    fn into_run(self) -> Run {
        let mut problems = Vec::new();
        if self.id == 0 {
            problems.push("pipeline id 0".to_owned());
        }
        let commit = self.sha.as_deref().map(validate::commit).transpose();
        let branch = self.git_ref.as_deref().map(validate::branch).transpose();
        let (commit, branch) = match (commit, branch) {
            (Ok(c), Ok(b)) => (c, b),
            (c, b) => {
                problems.extend(c.err());
                problems.extend(b.err());
                (None, None)
            }
        };
        let fork = self
            .source
            .as_deref()
            .is_some_and(|s| MERGE_REQUEST_SOURCES.contains(&s));
        Run {
            build_id: build_id(self.id),
            id: self.id,
            commit,
            branch,
            started_at: self
                .created_at
                .as_deref()
                .and_then(super::time::unix_seconds),
            label: format!("pipeline {}", self.id),
            event: self.source,
            actor: self.user.and_then(|u| u.username),
            fork,
            problem: (!problems.is_empty()).then(|| problems.join("; ")),
        }
    }
}

#[derive(Deserialize)]
struct TestReport {
    #[serde(default)]
    test_suites: Vec<TestSuite>,
}

#[derive(Deserialize)]
struct TestSuite {
    name: Option<String>,
    #[serde(default)]
    test_cases: Vec<TestCase>,
    suite_error: Option<String>,
}

#[derive(Deserialize)]
struct TestCase {
    status: Option<String>,
    name: Option<String>,
    classname: Option<String>,
    file: Option<String>,
    execution_time: Option<f64>,
}

#[derive(Deserialize)]
struct Diff {
    new_path: Option<String>,
    old_path: Option<String>,
}

/// Pipeline states that are finished (`scope=finished` asks for these).
const FINISHED: &[&str] = &["success", "failed", "canceled", "skipped"];

impl GitLab {
    pub fn new(
        target: Target,
        token: Token,
        limits: Limits,
        max_test_cases: u64,
    ) -> Result<Self, ImportError> {
        let (auth, hint) = match token {
            Token::Private(t) => (
                Some(("private-token", t)),
                " (the token needs the read_api scope and at least Reporter access to the project)",
            ),
            Token::Job(t) => (
                Some(("job-token", t)),
                " (CI_JOB_TOKEN cannot read pipeline test reports: put a token with the read_api \
                 scope in GITLAB_TOKEN)",
            ),
            Token::None => (
                None,
                " (no token was given: set GITLAB_TOKEN to a token with the read_api scope)",
            ),
        };
        let auth = match auth {
            Some((name, t)) => {
                let mut v = HeaderValue::from_str(t.trim()).map_err(|_| {
                    ImportError::Client("the token is not a valid header value".into())
                })?;
                v.set_sensitive(true);
                Some((HeaderName::from_static(name), v))
            }
            None => None,
        };
        let http = Http::new(Service::GitLab, auth, hint, HeaderMap::new(), limits)?;
        let mut api = target.url;
        api.path_segments_mut()
            .expect("an http(s) URL has path segments")
            .pop_if_empty()
            .extend(["api", "v4"]);
        Ok(GitLab {
            http,
            api,
            project: target.project,
            git_ref: target.git_ref,
            max_test_cases,
            changed: ChangedFiles::default(),
        })
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    pub fn describe(&self) -> String {
        format!("pipelines of project {}", self.project)
    }

    /// `/api/v4/projects/<id or url-encoded path>/<path…>?<query>`.
    fn url(&self, path: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.api.clone();
        // One segment: a path's slashes are encoded (`group%2Fproject`), as the API wants.
        url.path_segments_mut()
            .expect("an http(s) URL has path segments")
            .extend(["projects", &self.project])
            .extend(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The `limit` most recent finished pipelines, newest first.
    pub async fn runs(&self, limit: usize) -> Result<Vec<Run>, ImportError> {
        let mut query = vec![("scope", "finished"), ("per_page", "100")];
        if let Some(r) = &self.git_ref {
            query.push(("ref", r));
        }
        let first = self.url(&["pipelines"], &query);
        let pipelines: Vec<Pipeline> = paginate(&self.http, &first, limit, usize::MAX)
            .await
            .map_err(|e| match e {
                ImportError::NotFound { url, .. } => ImportError::NotFound {
                    url,
                    hint: " (check --project; GitLab also answers 404 when the token cannot see \
                           the project)",
                },
                other => other,
            })?;
        Ok(pipelines
            .into_iter()
            .filter(|p| p.status.as_deref().is_none_or(|s| FINISHED.contains(&s)))
            .take(limit)
            .map(Pipeline::into_run)
            .collect())
    }

    /// The pipeline's test report, as attempts; and its head commit's changed files when asked.
    pub async fn fetch(&self, run: &Run, changed_files: bool) -> Result<Fetched, ImportError> {
        let url = self.url(&["pipelines", &run.id.to_string(), "test_report"], &[]);
        // An API answer: a redirect elsewhere is refused, as for every other API call.
        let body = match self.http.download_api(&url).await {
            Ok(b) => b,
            Err(ImportError::Gone { .. }) => {
                return Ok(Fetched::Expired("the test report is gone".into()));
            }
            Err(e) => return Err(e),
        };
        // A large report is parsed off the async threads.
        let parsed = tokio::task::spawn_blocking(move || {
            serde_json::from_reader::<_, TestReport>(std::io::BufReader::new(body))
        })
        .await
        .map_err(|e| ImportError::Client(format!("reading a test report failed: {e}")))?;
        let report = match parsed {
            Ok(r) => r,
            Err(e) => {
                return Err(ImportError::BadAnswer {
                    url: url.to_string(),
                    detail: e.to_string(),
                });
            }
        };
        let errors: Vec<String> = report
            .test_suites
            .iter()
            .filter_map(|s| {
                let e = s.suite_error.as_deref()?.trim();
                (!e.is_empty()).then(|| format!("{}: {e}", s.name.as_deref().unwrap_or("suite")))
            })
            .collect();
        let cases: usize = report.test_suites.iter().map(|s| s.test_cases.len()).sum();
        if cases as u64 > self.max_test_cases {
            return Ok(Fetched::OverBound(format!(
                "the test report holds {cases} test cases, more than {} for one run \
                 (--max-test-cases)",
                self.max_test_cases
            )));
        }
        let attempts = attempts(report);
        if attempts.is_empty() {
            // GitLab reads test reports from job artifacts; once they expire it reports the
            // suites with an error instead of their cases.
            return Ok(match errors.first() {
                Some(e) if e.to_ascii_lowercase().contains("expired") => {
                    Fetched::Expired(e.clone())
                }
                Some(e) => Fetched::Unreadable(e.clone()),
                None => Fetched::NoResults,
            });
        }
        if let Some(e) = errors.first() {
            // Part of the report is missing: a partial build would read as tests vanishing.
            return Ok(Fetched::Unreadable(e.clone()));
        }
        let changed = match (&run.commit, changed_files) {
            (Some(sha), true) => Some(self.changed_files(sha).await),
            _ => None,
        };
        Fetched::results(crate::junit::group(attempts), changed)
    }

    async fn changed_files(&self, sha: &str) -> Result<Vec<String>, ImportError> {
        self.changed
            .get_or_fetch(sha, async {
                let first = self.url(
                    &["repository", "commits", sha, "diff"],
                    &[("per_page", "100")],
                );
                let diffs: Vec<Diff> =
                    paginate(&self.http, &first, usize::MAX, MAX_DIFF_PAGES).await?;
                Ok(diffs
                    .into_iter()
                    .filter_map(|d| d.new_path.or(d.old_path))
                    .filter(|f| validate::file_path(f))
                    .collect())
            })
            .await
    }
}

/// A pipeline's build id. Not `gl-<id>`: `fedtest record` in a GitLab job uses `gl-<job id>`
/// (see `crate::ci`), and job and pipeline ids are separate sequences that can meet.
pub fn build_id(pipeline: u64) -> String {
    format!("gl-pipeline-{pipeline}")
}

/// The test cases of a report as the attempts the JUnit reader makes of `<testcase>` rows:
/// `success` passed, `failed` failed, `error` errored (a failed execution too), `skipped` and
/// anything unknown skipped; `execution_time` is seconds.
fn attempts(report: TestReport) -> Vec<Attempt> {
    report
        .test_suites
        .into_iter()
        .flat_map(|s| s.test_cases)
        .filter_map(|c| {
            let name = c.name?.trim().to_owned();
            if name.is_empty() {
                return None;
            }
            let status = match c.status.as_deref() {
                Some("success") => Status::Passed,
                Some("failed") => Status::Failed,
                Some("error") => Status::Errored,
                _ => Status::Skipped,
            };
            Some(Attempt {
                classname: c.classname.unwrap_or_default().trim().to_owned(),
                name,
                file: c.file.filter(|f| !f.trim().is_empty()),
                // GitLab's test report has no line numbers.
                line: None,
                status,
                time: c
                    .execution_time
                    .filter(|t| t.is_finite() && *t > 0.0)
                    .unwrap_or(0.0),
                embedded_failures: 0,
                embedded_time: 0.0,
            })
        })
        .collect()
}

/// Follow a listing from `first` by `X-Next-Page` until `limit` items, the last page, or
/// `max_pages`.
async fn paginate<T: serde::de::DeserializeOwned>(
    http: &Http,
    first: &Url,
    limit: usize,
    max_pages: usize,
) -> Result<Vec<T>, ImportError> {
    let mut out = Vec::new();
    let mut url = first.clone();
    // An `X-Next-Page` back to a page already read would list the same items again.
    let mut visited = std::collections::HashSet::from([1]);
    for _ in 0..max_pages {
        let (items, headers): (Vec<T>, HeaderMap) = http.json(&url).await?;
        let n = items.len();
        out.extend(items);
        let next = headers
            .get("x-next-page")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .and_then(|v| v.parse::<u64>().ok());
        match next {
            Some(page) if n > 0 && out.len() < limit && visited.insert(page) => {
                url = with_page(first, page)
            }
            _ => break,
        }
    }
    Ok(out)
}

fn with_page(first: &Url, page: u64) -> Url {
    let mut url = first.clone();
    url.query_pairs_mut().append_pair("page", &page.to_string());
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::{Outcome, group};

    #[test]
    fn test_report_becomes_attempts() {
        let report: TestReport = serde_json::from_str(
            r#"{"total_time": 5, "total_count": 5, "test_suites": [
              {"name": "rspec", "total_time": 3, "suite_error": null, "test_cases": [
                {"status": "success", "name": "adds", "classname": "spec.math", "file": "./spec/math_spec.rb", "execution_time": 1.5, "system_output": null, "stack_trace": null},
                {"status": "failed", "name": "divides", "classname": "spec.math", "execution_time": 0.25, "system_output": "expected 2 got 3"},
                {"status": "error", "name": "loads", "classname": "spec.io", "execution_time": null},
                {"status": "skipped", "name": "later", "classname": "spec.io", "execution_time": 0},
                {"status": "success", "name": "divides", "classname": "spec.math", "execution_time": 0.5}
              ]},
              {"name": "go", "test_cases": [{"status": "success", "name": "TestX", "classname": "", "file": ""}]}
            ]}"#,
        )
        .unwrap();
        let attempts = attempts(report);
        assert_eq!(attempts.len(), 6);
        assert_eq!(attempts[0].id(), "spec.math::adds");
        assert_eq!(attempts[0].file.as_deref(), Some("./spec/math_spec.rb"));
        assert_eq!(attempts[2].status, Status::Errored);
        assert_eq!(attempts[5].id(), "TestX");
        assert_eq!(attempts[5].file, None);
        let cases = group(attempts);
        let outcome = |id: &str| cases.iter().find(|c| c.id == id).unwrap().outcome;
        assert_eq!(outcome("spec.math::adds"), Outcome::Passed);
        // Failed, then passed in the same pipeline (a retried job): flaky, as in a JUnit file.
        assert_eq!(outcome("spec.math::divides"), Outcome::Flaky);
        assert_eq!(outcome("spec.io::loads"), Outcome::Failed);
        assert_eq!(outcome("spec.io::later"), Outcome::Skipped);
    }

    #[test]
    fn project_paths_are_one_encoded_segment() {
        let gl = GitLab::new(
            Target {
                url: Url::parse("https://gitlab.example.com/").unwrap(),
                project: "group/sub/proj".into(),
                git_ref: None,
            },
            Token::None,
            Limits::default(),
            u64::MAX,
        )
        .unwrap();
        assert_eq!(
            gl.url(&["pipelines"], &[("scope", "finished")]).as_str(),
            "https://gitlab.example.com/api/v4/projects/group%2Fsub%2Fproj/pipelines?scope=finished"
        );
    }
}
