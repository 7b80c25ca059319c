//! `fedtest import github|gitlab` against a loopback server (axum on 127.0.0.1, port 0) that
//! answers with GitHub's and GitLab's documented response shapes: paginated listings (`Link`,
//! `X-Next-Page`), artifact zips behind a 302 to a blob URL, rate-limit headers and refusals,
//! expired artifacts, 5xx that recover and that do not. Every request is logged, so tests can
//! count what a second import transfers.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::util::{Sandbox, stderr};

const TOKEN: &str = "ghp_loopback-token";
const GL_TOKEN: &str = "glpat-loopback-token";
const JOB_TOKEN: &str = "job-token-123";
const REPO: &str = "/repos/acme/widgets";
const PROJECT: &str = "/api/v4/projects/group%2Fproj";

// ---------------------------------------------------------------------------------------------
// The fake platform.

#[derive(Clone)]
struct GhRun {
    id: u64,
    attempt: u32,
    sha: String,
    branch: String,
    started: String,
    status: &'static str,
    artifacts: Vec<GhArtifact>,
    event: &'static str,
    /// `head_repository.full_name` (`None`: not in the answer).
    head_repo: Option<&'static str>,
}

#[derive(Clone)]
struct GhArtifact {
    id: u64,
    name: String,
    expired: bool,
    zip: Vec<u8>,
}

#[derive(Clone)]
struct GlPipeline {
    id: u64,
    sha: String,
    git_ref: String,
    created: String,
    report: Value,
}

/// One request the server saw.
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    status: u16,
    /// The credential header it carried, if any.
    auth: Option<String>,
    at: Instant,
}

/// What the server does beyond answering; changed by tests between imports.
#[derive(Default)]
struct Rules {
    /// Path → (status, times left; `usize::MAX` = forever).
    fail: HashMap<String, (u16, usize)>,
    /// Path → times left to refuse with "retry after 1 s".
    retry_after: HashMap<String, usize>,
    /// API requests allowed before the rate limit runs out (`None`: 5,000, never runs out).
    budget: Option<usize>,
    /// How long after running out the limit resets.
    reset_in: Duration,
    /// When the current window resets; API requests before it are refused.
    reset_at: Option<SystemTime>,
    used: usize,
    /// Replace the rate-limit headers of every API answer.
    rate_override: Option<Vec<(String, String)>>,
    /// The value of `retry-after` in `retry_after` refusals (default 1).
    retry_after_value: Option<String>,
    /// The run listing's `Link` points at its own page.
    self_link: bool,
    /// Path → where a 302 sends it.
    redirect: HashMap<String, String>,
}

struct Shared {
    base: OnceLock<String>,
    page_size: usize,
    gh: Vec<GhRun>,
    gl: Vec<GlPipeline>,
    /// Changed files by commit.
    commits: HashMap<String, Vec<String>>,
    rules: Mutex<Rules>,
    log: Mutex<Vec<Hit>>,
}

/// A running fake; its runtime stops when dropped.
struct Fake {
    shared: Arc<Shared>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Fake {
    fn start(
        gh: Vec<GhRun>,
        gl: Vec<GlPipeline>,
        commits: HashMap<String, Vec<String>>,
        page_size: usize,
    ) -> Fake {
        let shared = Arc::new(Shared {
            base: OnceLock::new(),
            page_size,
            gh,
            gl,
            commits,
            rules: Mutex::new(Rules::default()),
            log: Mutex::new(Vec::new()),
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        shared.base.set(format!("http://{addr}")).unwrap();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        rt.spawn(async move { axum::serve(listener, app).await });
        Fake {
            shared,
            rt: Some(rt),
        }
    }

    fn url(&self) -> String {
        self.shared.base.get().unwrap().clone()
    }

    fn rules(&self) -> std::sync::MutexGuard<'_, Rules> {
        self.shared.rules.lock().unwrap()
    }

    fn hits(&self) -> Vec<Hit> {
        self.shared.log.lock().unwrap().clone()
    }

    fn clear_log(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    fn count(&self, f: impl Fn(&str) -> bool) -> usize {
        self.hits().iter().filter(|h| f(&h.path)).count()
    }
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn query(uri: &axum::http::Uri) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x{uri}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn respond(status: u16, headers: &[(String, String)], body: impl Into<Body>) -> Response {
    let mut r = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (k, v) in headers {
        r = r.header(k.as_str(), v.as_str());
    }
    r.body(body.into()).unwrap()
}

fn json_response(status: u16, headers: &[(String, String)], v: &Value) -> Response {
    let mut h = headers.to_vec();
    h.push(("content-type".into(), "application/json".into()));
    respond(status, &h, serde_json::to_vec(v).unwrap())
}

async fn handle(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let q = query(req.uri());
    let auth = credential(req.headers());
    let response = answer(&s, &path, &q, auth.as_deref());
    s.log.lock().unwrap().push(Hit {
        path,
        status: response.status().as_u16(),
        auth,
        at: Instant::now(),
    });
    response
}

fn credential(h: &HeaderMap) -> Option<String> {
    ["authorization", "private-token", "job-token"]
        .iter()
        .find_map(|k| {
            h.get(*k)
                .map(|v| format!("{k}: {}", v.to_str().unwrap_or("?")))
        })
}

fn answer(s: &Shared, path: &str, q: &HashMap<String, String>, auth: Option<&str>) -> Response {
    let base = s.base.get().unwrap();
    // Blob storage: no API token, no rate limit.
    if let Some(id) = path.strip_prefix("/blob/") {
        if let Some(r) = scripted_failure(s, path) {
            return r;
        }
        let id: u64 = id.parse().unwrap();
        let a =
            s.gh.iter()
                .flat_map(|r| &r.artifacts)
                .find(|a| a.id == id)
                .unwrap();
        return respond(
            200,
            &[("content-type".into(), "application/zip".into())],
            a.zip.clone(),
        );
    }
    let github = path.starts_with("/repos/");
    let authorised = match auth {
        Some(a) if github => a == format!("authorization: Bearer {TOKEN}"),
        Some(a) => {
            a == format!("private-token: {GL_TOKEN}") || a == format!("job-token: {JOB_TOKEN}")
        }
        None => false,
    };
    if !authorised {
        let msg = if github {
            "Bad credentials"
        } else {
            "401 Unauthorized"
        };
        return json_response(401, &[], &json!({ "message": msg }));
    }
    // Rate limit: the headers of every API answer, and refusals while it is used up.
    let rate_headers = {
        let mut rules = s.rules.lock().unwrap();
        let now = SystemTime::now();
        if let Some(reset) = rules.reset_at {
            if now < reset {
                let epoch = reset
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64()
                    .ceil();
                let left = (epoch - now_epoch()).ceil().max(1.0);
                let h = if github {
                    vec![
                        ("x-ratelimit-limit".into(), "5000".into()),
                        ("x-ratelimit-remaining".into(), "0".into()),
                        ("x-ratelimit-reset".into(), format!("{epoch}")),
                    ]
                } else {
                    vec![
                        ("ratelimit-remaining".into(), "0".into()),
                        ("ratelimit-reset".into(), format!("{epoch}")),
                        ("retry-after".into(), format!("{left}")),
                    ]
                };
                let status = if github { 403 } else { 429 };
                return json_response(status, &h, &json!({ "message": "API rate limit exceeded" }));
            }
            rules.reset_at = None;
            rules.budget = None;
            rules.used = 0;
        }
        rules.used += 1;
        let remaining = match rules.budget {
            Some(b) => b.saturating_sub(rules.used),
            None => 5000 - rules.used,
        };
        let reset = if remaining == 0 {
            let at = now + rules.reset_in;
            rules.reset_at = Some(at);
            at
        } else {
            now + Duration::from_secs(3600)
        };
        let epoch = reset
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            .ceil();
        let (r, t) = if github {
            ("x-ratelimit-remaining", "x-ratelimit-reset")
        } else {
            ("ratelimit-remaining", "ratelimit-reset")
        };
        match &rules.rate_override {
            Some(h) => h.clone(),
            None => vec![
                (r.to_owned(), remaining.to_string()),
                (t.to_owned(), format!("{epoch}")),
            ],
        }
    };
    {
        let mut rules = s.rules.lock().unwrap();
        if let Some(left) = rules.retry_after.get_mut(path)
            && *left > 0
        {
            *left -= 1;
            let (status, name) = if github {
                (403, "retry-after")
            } else {
                (429, "retry-after")
            };
            let value = rules.retry_after_value.clone().unwrap_or("1".into());
            return json_response(
                status,
                &[(name.into(), value)],
                &json!({ "message": "You have exceeded a secondary rate limit" }),
            );
        }
    }
    if let Some(r) = scripted_failure(s, path) {
        return r;
    }
    if let Some(to) = s.rules.lock().unwrap().redirect.get(path) {
        return respond(302, &[("location".into(), to.clone())], Body::empty());
    }
    if github {
        github_answer(s, base, path, q, &rate_headers)
    } else {
        gitlab_answer(s, path, q, &rate_headers)
    }
}

fn scripted_failure(s: &Shared, path: &str) -> Option<Response> {
    let mut rules = s.rules.lock().unwrap();
    let (status, left) = rules.fail.get_mut(path)?;
    if *left == 0 {
        return None;
    }
    if *left != usize::MAX {
        *left -= 1;
    }
    let status = *status;
    drop(rules);
    Some(json_response(
        status,
        &[],
        &json!({ "message": format!("scripted {status}") }),
    ))
}

fn page_of<T: Clone>(
    items: &[T],
    q: &HashMap<String, String>,
    size: usize,
) -> (Vec<T>, usize, usize) {
    let per_page = q
        .get("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .min(size);
    let page = q
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let pages = items.len().div_ceil(per_page).max(1);
    let slice = items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    (slice, page, pages)
}

fn link(base: &str, path: &str, q: &HashMap<String, String>, page: usize, rel: &str) -> String {
    let mut url = reqwest::Url::parse(&format!("{base}{path}")).unwrap();
    {
        let mut pairs = url.query_pairs_mut();
        let mut keys: Vec<_> = q.iter().filter(|(k, _)| *k != "page").collect();
        keys.sort();
        for (k, v) in keys {
            pairs.append_pair(k, v);
        }
        pairs.append_pair("page", &page.to_string());
    }
    format!("<{url}>; rel=\"{rel}\"")
}

fn github_answer(
    s: &Shared,
    base: &str,
    path: &str,
    q: &HashMap<String, String>,
    rate: &[(String, String)],
) -> Response {
    let rest = path.strip_prefix(REPO).unwrap_or("");
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["actions", "workflows", "ci.yml", "runs"] => {
            let mut runs: Vec<&GhRun> =
                s.gh.iter()
                    .filter(|r| q.get("status").is_none_or(|st| st == r.status))
                    .filter(|r| q.get("branch").is_none_or(|b| *b == r.branch))
                    .collect();
            runs.sort_by_key(|r| std::cmp::Reverse(r.id));
            let (page, n, pages) = page_of(&runs, q, s.page_size);
            let mut headers = rate.to_vec();
            let mut links = Vec::new();
            if s.rules.lock().unwrap().self_link {
                links.push(link(base, path, q, n, "next"));
            } else if n < pages {
                links.push(link(base, path, q, n + 1, "next"));
                links.push(link(base, path, q, pages, "last"));
            }
            if n > 1 {
                links.push(link(base, path, q, 1, "first"));
                links.push(link(base, path, q, n - 1, "prev"));
            }
            if !links.is_empty() {
                headers.push(("link".into(), links.join(", ")));
            }
            let runs: Vec<Value> = page
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id, "name": "CI", "run_number": r.id - 100, "run_attempt": r.attempt,
                        "event": r.event, "status": r.status,
                        "repository": { "id": 1, "full_name": "acme/widgets" },
                        "head_repository": r.head_repo.map(|h| json!({
                            "id": if h == "acme/widgets" { 1 } else { 2 }, "full_name": h,
                        })),
                        "triggering_actor": { "login": if r.event == "push" { "alice" } else { "mallory" } },
                        "conclusion": if r.status == "completed" { json!("success") } else { Value::Null },
                        "workflow_id": 161335, "head_branch": r.branch, "head_sha": r.sha,
                        "created_at": r.started, "updated_at": r.started, "run_started_at": r.started,
                        "url": format!("{base}{REPO}/actions/runs/{}", r.id),
                        "head_commit": { "id": r.sha, "message": "change" },
                    })
                })
                .collect();
            json_response(
                200,
                &headers,
                &json!({ "total_count": runs.len(), "workflow_runs": runs }),
            )
        }
        ["actions", "runs", id, "artifacts"] => {
            let id: u64 = id.parse().unwrap();
            let run = s.gh.iter().find(|r| r.id == id).unwrap();
            let artifacts: Vec<Value> = run
                .artifacts
                .iter()
                .map(|a| {
                    json!({
                        "id": a.id, "node_id": "MDg6QXJ0aWZhY3QxMQ==", "name": a.name,
                        "size_in_bytes": a.zip.len(),
                        "url": format!("{base}{REPO}/actions/artifacts/{}", a.id),
                        "archive_download_url": format!("{base}{REPO}/actions/artifacts/{}/zip", a.id),
                        "expired": a.expired, "created_at": run.started, "expires_at": run.started,
                        "workflow_run": { "id": run.id, "head_branch": run.branch, "head_sha": run.sha },
                    })
                })
                .collect();
            json_response(
                200,
                rate,
                &json!({ "total_count": artifacts.len(), "artifacts": artifacts }),
            )
        }
        ["actions", "artifacts", id, "zip"] => {
            let mut h = rate.to_vec();
            h.push((
                "location".into(),
                format!("{base}/blob/{id}?sig=s3cr3t&se=2026"),
            ));
            respond(302, &h, Body::empty())
        }
        ["commits", sha] => {
            let files: Vec<Value> = s.commits[*sha]
                .iter()
                .map(|f| json!({ "filename": f, "status": "modified", "additions": 1, "deletions": 0 }))
                .collect();
            json_response(200, rate, &json!({ "sha": sha, "files": files }))
        }
        _ => json_response(404, rate, &json!({ "message": "Not Found" })),
    }
}

fn gitlab_answer(
    s: &Shared,
    path: &str,
    q: &HashMap<String, String>,
    rate: &[(String, String)],
) -> Response {
    let Some(rest) = path.strip_prefix(PROJECT) else {
        return json_response(404, rate, &json!({ "message": "404 Project Not Found" }));
    };
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["pipelines"] => {
            assert_eq!(q.get("scope").map(String::as_str), Some("finished"));
            let mut all: Vec<&GlPipeline> =
                s.gl.iter()
                    .filter(|p| q.get("ref").is_none_or(|r| *r == p.git_ref))
                    .collect();
            all.sort_by_key(|p| std::cmp::Reverse(p.id));
            let (page, n, pages) = page_of(&all, q, s.page_size);
            let mut h = rate.to_vec();
            h.push(("x-page".into(), n.to_string()));
            h.push(("x-total-pages".into(), pages.to_string()));
            h.push((
                "x-next-page".into(),
                if n < pages {
                    (n + 1).to_string()
                } else {
                    String::new()
                },
            ));
            let body: Vec<Value> = page
                .iter()
                .map(|p| {
                    json!({
                        "id": p.id, "iid": p.id - 1000, "project_id": 7, "sha": p.sha, "ref": p.git_ref,
                        "status": "success", "source": "push", "created_at": p.created,
                        "updated_at": p.created, "web_url": format!("https://gitlab.example/group/proj/-/pipelines/{}", p.id),
                    })
                })
                .collect();
            json_response(200, &h, &Value::Array(body))
        }
        ["pipelines", id, "test_report"] => {
            let id: u64 = id.parse().unwrap();
            let p = s.gl.iter().find(|p| p.id == id).unwrap();
            json_response(200, rate, &p.report)
        }
        ["repository", "commits", sha, "diff"] => {
            let body: Vec<Value> = s.commits[*sha]
                .iter()
                .map(|f| json!({ "old_path": f, "new_path": f, "diff": "@@ -1 +1 @@", "new_file": false, "renamed_file": false, "deleted_file": false }))
                .collect();
            let mut h = rate.to_vec();
            h.push(("x-next-page".into(), String::new()));
            json_response(200, &h, &Value::Array(body))
        }
        _ => json_response(404, rate, &json!({ "message": "404 Not Found" })),
    }
}

// ---------------------------------------------------------------------------------------------
// Data.

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/junit")
        .join(rel)
}

/// A zip of fixture files (stored under `reports/`) and extra `(name, text)` entries.
fn zip_of(fixtures: &[&str], extra: &[(&str, &str)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for f in fixtures {
        w.start_file(format!("reports/{}", f.replace('/', "-")), opts)
            .unwrap();
        w.write_all(&std::fs::read(fixture(f)).unwrap()).unwrap();
    }
    for (name, text) in extra {
        w.start_file(*name, opts).unwrap();
        w.write_all(text.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn sha(i: u64) -> String {
    format!("{:040x}", 0xabc0_0000_u64 + i)
}

fn started(i: u64) -> String {
    format!("2026-03-01T10:{:02}:00Z", i % 60)
}

fn epoch_of(i: u64) -> i64 {
    // 2026-03-01T10:00:00Z
    1_772_359_200 + 60 * (i % 60) as i64
}

fn gh_run(id: u64, artifacts: Vec<GhArtifact>) -> GhRun {
    GhRun {
        id,
        attempt: 1,
        sha: sha(id),
        branch: if id.is_multiple_of(2) {
            "main"
        } else {
            "feature/x"
        }
        .into(),
        started: started(id - 100),
        status: "completed",
        artifacts,
        event: "push",
        head_repo: Some("acme/widgets"),
    }
}

fn artifact(id: u64, name: &str, zip: Vec<u8>) -> GhArtifact {
    GhArtifact {
        id,
        name: name.into(),
        expired: false,
        zip,
    }
}

/// A row of the `builds` table.
#[derive(Debug, PartialEq)]
struct BuildRow {
    build_id: String,
    commit: Option<String>,
    branch: Option<String>,
    recorded_at: i64,
    tests: i64,
    failed: i64,
    flaky: i64,
    skipped: i64,
    changed_files: Option<Vec<String>>,
}

fn builds(sb: &Sandbox) -> Vec<BuildRow> {
    let conn = rusqlite::Connection::open_with_flags(
        sb.store_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT build_id, commit_sha, branch, recorded_at, tests, failed, flaky, skipped, changed_files
             FROM builds ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([], |r| {
        let changed: Option<String> = r.get(8)?;
        Ok(BuildRow {
            build_id: r.get(0)?,
            commit: r.get(1)?,
            branch: r.get(2)?,
            recorded_at: r.get(3)?,
            tests: r.get(4)?,
            failed: r.get(5)?,
            flaky: r.get(6)?,
            skipped: r.get(7)?,
            changed_files: changed.map(|c| serde_json::from_str(&c).unwrap()),
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Outcome code (0 passed, 1 failed, 2 skipped, 3 flaky) of each test of one build.
fn outcomes(sb: &Sandbox, build_id: &str) -> HashMap<String, i64> {
    let conn = rusqlite::Connection::open_with_flags(
        sb.store_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT t.name, r.outcome FROM results r JOIN tests t ON t.id = r.test
             JOIN builds b ON b.seq = r.seq WHERE b.build_id = ?1",
        )
        .unwrap();
    stmt.query_map([build_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn github_import(sb: &Sandbox, fake: &Fake, extra: &[&str]) -> assert_cmd::Command {
    github_import_at(sb, &fake.url(), extra)
}

fn github_import_at(sb: &Sandbox, url: &str, extra: &[&str]) -> assert_cmd::Command {
    let mut cmd = sb.fedtest();
    cmd.env("GITHUB_TOKEN", TOKEN)
        .env_remove("GITHUB_REPOSITORY")
        .args([
            "import",
            "github",
            "--repo",
            "acme/widgets",
            "--workflow",
            "ci.yml",
            "--api-url",
        ])
        .arg(url)
        .args(extra)
        .timeout(Duration::from_secs(120));
    cmd
}

fn gitlab_import(sb: &Sandbox, fake: &Fake, extra: &[&str]) -> assert_cmd::Command {
    let mut cmd = sb.fedtest();
    cmd.env_remove("GITLAB_TOKEN")
        .env_remove("CI_JOB_TOKEN")
        .env_remove("CI_PROJECT_ID")
        .args(["import", "gitlab", "--project", "group/proj", "--api-url"])
        .arg(fake.url())
        .args(extra)
        .timeout(Duration::from_secs(120));
    cmd
}

/// A fake serving one completed GitHub run per id, each with a `junit` artifact (the id's)
/// zipping one fixture, and a commit per run changing one file; listing pages of 100.
fn junit_runs(ids: std::ops::RangeInclusive<u64>, fixture: &str, changed: &str) -> Fake {
    let runs = ids
        .clone()
        .map(|id| gh_run(id, vec![artifact(id, "junit", zip_of(&[fixture], &[]))]))
        .collect();
    let commits = ids.map(|id| (sha(id), vec![changed.to_owned()])).collect();
    Fake::start(runs, vec![], commits, 100)
}

/// Run an import, assert its exit code (0: success) and return its stderr.
fn stderr_of(cmd: &mut assert_cmd::Command, code: i32) -> String {
    let assert = cmd.assert();
    let assert = if code == 0 {
        assert.success()
    } else {
        assert.code(code)
    };
    stderr(assert.get_output())
}

fn is_listing(p: &str) -> bool {
    p.ends_with("/workflows/ci.yml/runs") || p.ends_with("/pipelines")
}

// ---------------------------------------------------------------------------------------------
// GitHub.

/// Eight completed runs over three pages (and one still in progress, never imported):
/// imported ones, one without artifacts, one whose artifact is marked expired, one whose
/// download answers 410, one whose artifact listing fails with 500 on every retry, one whose
/// blob download fails once with 502 and succeeds on the retry. Each imported run is the same
/// build `fedtest record` makes of the same reports; they are recorded oldest first with
/// their commit, branch, start time and changed files. A second import downloads nothing.
#[test]
fn github_import_records_runs_oldest_first_and_a_second_import_downloads_nothing() {
    let runs = vec![
        gh_run(
            101,
            vec![artifact(
                1,
                "junit-results",
                zip_of(&["pytest/xunit2.xml"], &[]),
            )],
        ),
        gh_run(
            102,
            vec![
                artifact(2, "build-logs", zip_of(&[], &[("log.txt", "not tests")])),
                artifact(
                    3,
                    "Test-Results-linux",
                    zip_of(
                        &["nextest/junit.xml", "pytest/reruns.xml"],
                        &[
                            ("coverage.xml", "<coverage line-rate=\"0.9\"/>"),
                            ("notes.txt", "x"),
                        ],
                    ),
                ),
            ],
        ),
        gh_run(103, vec![]),
        gh_run(
            104,
            vec![GhArtifact {
                expired: true,
                ..artifact(4, "junit", zip_of(&["pytest/xunit1.xml"], &[]))
            }],
        ),
        gh_run(
            105,
            vec![artifact(5, "junit", zip_of(&["pytest/xunit1.xml"], &[]))],
        ),
        gh_run(
            106,
            vec![artifact(6, "junit", zip_of(&["pytest/xunit1.xml"], &[]))],
        ),
        GhRun {
            attempt: 2,
            ..gh_run(
                107,
                vec![artifact(
                    7,
                    "junit",
                    zip_of(
                        &[
                            "surefire/TEST-com.example.SampleTest.xml",
                            "surefire/TEST-com.example.ParamTest.xml",
                        ],
                        &[],
                    ),
                )],
            )
        },
        gh_run(
            108,
            vec![artifact(
                8,
                "jest-junit",
                zip_of(&["jest-junit/jest-junit.xml"], &[]),
            )],
        ),
        GhRun {
            status: "in_progress",
            ..gh_run(
                109,
                vec![artifact(9, "junit", zip_of(&["pytest/xunit1.xml"], &[]))],
            )
        },
    ];
    let mut commits = HashMap::new();
    for id in 101..=109 {
        commits.insert(
            sha(id),
            vec![format!("src/mod{id}.py"), "README.md".to_owned()],
        );
    }
    let fake = Fake::start(runs, vec![], commits, 3);
    {
        let mut rules = fake.rules();
        rules.fail.insert(
            format!("{REPO}/actions/runs/105/artifacts"),
            (500, usize::MAX),
        );
        rules
            .fail
            .insert(format!("{REPO}/actions/artifacts/6/zip"), (410, usize::MAX));
        rules.fail.insert("/blob/7".into(), (502, 1));
    }
    let sb = Sandbox::new();
    let err = stderr_of(&mut github_import(&sb, &fake, &["--retries", "2"]), 0);
    assert!(
        err.contains(
            "imported 4, skipped (already present) 0, expired 2, without test results 1, failed 1"
        ),
        "{err}"
    );
    assert!(
        err.contains("run 105 (attempt 1) skipped:") && err.contains("500"),
        "{err}"
    );

    // Three pages of listing, through the Link header.
    let pages: Vec<Hit> = fake
        .hits()
        .into_iter()
        .filter(|h| is_listing(&h.path))
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    // The never-recovering 500: the first try and two retries.
    assert_eq!(fake.count(|p| p.ends_with("/runs/105/artifacts")), 3);
    // The 502 on the blob was retried once.
    assert_eq!(fake.count(|p| p == "/blob/7"), 2);
    // Expired artifacts are never downloaded; the 410 one was asked for once.
    assert_eq!(fake.count(|p| p.ends_with("/artifacts/4/zip")), 0);
    assert_eq!(fake.count(|p| p.ends_with("/artifacts/6/zip")), 1);
    // The artifact that matches no pattern is not downloaded.
    assert_eq!(fake.count(|p| p.ends_with("/artifacts/2/zip")), 0);
    // The token goes to the API, never to blob storage.
    for h in fake.hits() {
        if h.path.starts_with("/blob/") {
            assert_eq!(h.auth, None, "token sent to blob storage: {h:?}");
        } else {
            assert_eq!(
                h.auth.as_deref(),
                Some(&*format!("authorization: Bearer {TOKEN}"))
            );
        }
    }

    // The history: imported runs, oldest first, as `fedtest record` would have made them.
    let got = builds(&sb);
    let reference = Sandbox::new();
    let imported: [(u64, u32, &[&str]); 4] = [
        (101, 1, &["pytest/xunit2.xml"]),
        (102, 1, &["nextest/junit.xml", "pytest/reruns.xml"]),
        (
            107,
            2,
            &[
                "surefire/TEST-com.example.SampleTest.xml",
                "surefire/TEST-com.example.ParamTest.xml",
            ],
        ),
        (108, 1, &["jest-junit/jest-junit.xml"]),
    ];
    for (id, attempt, files) in imported {
        let mut cmd = reference.fedtest();
        cmd.args([
            "record",
            "--no-train",
            "--build",
            &format!("gh-{id}-{attempt}"),
            "--junit",
        ]);
        for f in files {
            cmd.arg(fixture(f));
        }
        cmd.assert().success();
    }
    let want = builds(&reference);
    assert_eq!(got.len(), 4, "{got:#?}");
    for ((g, w), (id, _, _)) in got.iter().zip(&want).zip(imported) {
        assert_eq!(g.build_id, w.build_id);
        assert_eq!(
            (g.tests, g.failed, g.flaky, g.skipped),
            (w.tests, w.failed, w.flaky, w.skipped),
            "{}",
            g.build_id
        );
        assert_eq!(
            outcomes(&sb, &g.build_id),
            outcomes(&reference, &w.build_id)
        );
        assert_eq!(g.commit.as_deref(), Some(&*sha(id)));
        let branch = if id.is_multiple_of(2) {
            "main"
        } else {
            "feature/x"
        };
        assert_eq!(g.branch.as_deref(), Some(branch));
        assert_eq!(g.recorded_at, epoch_of(id - 100));
        assert_eq!(
            g.changed_files,
            Some(vec![format!("src/mod{id}.py"), "README.md".to_owned()])
        );
    }
    // One commit lookup per imported run, none for the others.
    assert_eq!(fake.count(|p| p.contains("/commits/")), 4);
    // The reports hold failures and flaky tests, so this is not a vacuous comparison.
    assert!(
        got.iter().map(|b| b.failed + b.flaky).sum::<i64>() > 0,
        "{got:#?}"
    );

    // The same command again: only the listing is transferred.
    fake.clear_log();
    let err = stderr_of(&mut github_import(&sb, &fake, &["--retries", "2"]), 0);
    assert!(
        err.contains("imported 0, skipped (already present) 4, expired 0, without test results 0, older than the history 4"),
        "{err}"
    );
    let hits = fake.hits();
    assert_eq!(hits.len(), 3, "{hits:#?}");
    assert!(hits.iter().all(|h| is_listing(&h.path)), "{hits:#?}");
    assert_eq!(builds(&sb), got);
}

/// An answer that leaves no requests closes the gate until the reset: the import waits for
/// it instead of being refused, and succeeds. A secondary rate limit (403 with retry-after)
/// is waited for and retried.
#[test]
fn github_rate_limit_that_resets_soon_is_waited_for() {
    let fake = junit_runs(101..=103, "pytest/xunit2.xml", "a.py");
    {
        let mut rules = fake.rules();
        // The listing is the only request of the window; the rest must wait 2 s.
        rules.budget = Some(1);
        rules.reset_in = Duration::from_secs(2);
        rules
            .retry_after
            .insert(format!("{REPO}/actions/runs/102/artifacts"), 1);
    }
    let sb = Sandbox::new();
    let err = stderr_of(&mut github_import(&sb, &fake, &[]), 0);
    assert!(err.contains("rate limit reached: waiting"), "{err}");
    assert!(err.contains("imported 3,"), "{err}");
    let hits = fake.hits();
    // Nothing was refused for the primary limit: the client waited for the reset.
    let refused: Vec<&Hit> = hits.iter().filter(|h| h.status == 403).collect();
    assert_eq!(
        refused.len(),
        1,
        "only the secondary limit refuses: {hits:#?}"
    );
    assert!(refused[0].path.ends_with("/runs/102/artifacts"));
    let listing = hits.iter().find(|h| is_listing(&h.path)).unwrap().at;
    let next = hits.iter().find(|h| !is_listing(&h.path)).unwrap().at;
    assert!(
        next.duration_since(listing) >= Duration::from_millis(1500),
        "the import did not wait for the reset: {:?}",
        next.duration_since(listing)
    );
    // The refused request was retried after its retry-after.
    let tries: Vec<Instant> = hits
        .iter()
        .filter(|h| h.path.ends_with("/runs/102/artifacts"))
        .map(|h| h.at)
        .collect();
    assert_eq!(tries.len(), 2);
    assert!(tries[1].duration_since(tries[0]) >= Duration::from_millis(900));
    assert_eq!(builds(&sb).len(), 3);
}

/// A rate limit that resets later than --max-wait stops the import at once with exit 5 and a
/// message saying how far it got; the runs recorded before it stay, and the same command
/// finishes the job once the limit has reset, downloading no run twice.
#[test]
fn github_rate_limit_beyond_the_cap_stops_cleanly_and_a_later_run_resumes() {
    let fake = junit_runs(101..=106, "nextest/junit.xml", "a.rs");
    {
        let mut rules = fake.rules();
        // listing + 4 requests per run (artifacts, zip, commit; the blob is not the API's):
        // the limit runs out on the third run's zip redirect.
        rules.budget = Some(1 + 3 + 3 + 2);
        rules.reset_in = Duration::from_secs(3600);
    }
    let sb = Sandbox::new();
    let started = Instant::now();
    let err = stderr_of(
        &mut github_import(&sb, &fake, &["--jobs", "1", "--max-wait", "5"]),
        5,
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "it waited for the reset"
    );
    assert!(
        err.contains("import stopped: rate limited by GitHub for another")
            && err.contains("longer than --max-wait 5s")
            && err.contains(
                "2 of 6 listed runs are in the history, 2 imported now; the same command resumes"
            ),
        "{err}"
    );
    assert!(
        err.contains("imported 2, skipped (already present) 0"),
        "{err}"
    );
    let first = builds(&sb);
    assert_eq!(
        first
            .iter()
            .map(|b| b.build_id.as_str())
            .collect::<Vec<_>>(),
        ["gh-101-1", "gh-102-1"]
    );

    // The limit resets; the same command resumes.
    {
        let mut rules = fake.rules();
        rules.reset_at = Some(SystemTime::now());
    }
    let err = stderr_of(
        &mut github_import(&sb, &fake, &["--jobs", "1", "--max-wait", "5"]),
        0,
    );
    assert!(
        err.contains("imported 4, skipped (already present) 2"),
        "{err}"
    );
    let all = builds(&sb);
    assert_eq!(
        all.iter().map(|b| b.build_id.as_str()).collect::<Vec<_>>(),
        [
            "gh-101-1", "gh-102-1", "gh-103-1", "gh-104-1", "gh-105-1", "gh-106-1"
        ]
    );
    assert_eq!(&all[..2], &first[..]);
    assert!(all.windows(2).all(|w| w[0].recorded_at < w[1].recorded_at));
    // No run was downloaded twice (the third run's blob was fetched before the stop, then
    // again: it was not recorded).
    for id in [101, 102, 104, 105, 106] {
        assert_eq!(fake.count(|p| p == format!("/blob/{id}")), 1, "run {id}");
    }
}

/// Token problems say what to do: none at all is a usage error (2); a refused one ends the
/// import (5) with the platform's message and a hint, and records nothing.
#[test]
fn github_token_missing_or_refused() {
    let fake = Fake::start(vec![gh_run(101, vec![])], vec![], HashMap::new(), 100);
    let sb = Sandbox::new();
    let err = stderr_of(github_import(&sb, &fake, &[]).env_remove("GITHUB_TOKEN"), 2);
    assert!(err.contains("no GitHub token: set GITHUB_TOKEN"), "{err}");
    assert_eq!(fake.hits().len(), 0);

    let err = stderr_of(
        github_import(&sb, &fake, &["--token-env", "MY_TOKEN"]).env("MY_TOKEN", "wrong"),
        5,
    );
    assert!(
        err.contains("GitHub refused the token (401)") && err.contains("Bad credentials"),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
}

/// A listing that keeps failing with 5xx ends the import after the retries, with exit 5; and
/// five runs in a row that cannot be fetched stop it too, keeping the runs recorded before.
#[test]
fn github_server_errors_that_do_not_recover_stop_the_import() {
    let fake = junit_runs(101..=108, "pytest/xunit2.xml", "a.py");
    let listing = format!("{REPO}/actions/workflows/ci.yml/runs");
    fake.rules().fail.insert(listing.clone(), (503, usize::MAX));
    let sb = Sandbox::new();
    let err = stderr_of(&mut github_import(&sb, &fake, &["--retries", "1"]), 5);
    assert!(
        err.contains("answered 503") && err.contains("nothing was imported"),
        "{err}"
    );
    assert_eq!(fake.count(|p| p == listing), 2);

    fake.rules().fail.clear();
    for id in 103..=108 {
        fake.rules().fail.insert(
            format!("{REPO}/actions/runs/{id}/artifacts"),
            (500, usize::MAX),
        );
    }
    let err = stderr_of(
        &mut github_import(&sb, &fake, &["--retries", "0", "--jobs", "1"]),
        5,
    );
    assert!(
        err.contains("5 runs in a row could not be fetched, the last:")
            && err.contains("2 of 8 listed runs are in the history"),
        "{err}"
    );
    assert_eq!(builds(&sb).len(), 2);
    // The sixth failing run was never asked for.
    assert_eq!(fake.count(|p| p.ends_with("/runs/108/artifacts")), 0);
}

// ---------------------------------------------------------------------------------------------
// GitLab.

fn case(classname: &str, name: &str, status: &str, time: f64) -> Value {
    json!({
        "status": status, "name": name, "classname": classname, "file": format!("{}.py", classname.replace('.', "/")),
        "execution_time": time, "system_output": if status == "success" { Value::Null } else { json!("boom") },
        "stack_trace": null, "recent_failures": null,
    })
}

fn report(cases: Vec<Value>) -> Value {
    let count = |s: &str| cases.iter().filter(|c| c["status"] == s).count();
    json!({
        "total_time": 1.5, "total_count": cases.len(), "success_count": count("success"),
        "failed_count": count("failed"), "skipped_count": count("skipped"), "error_count": count("error"),
        "test_suites": [{
            "name": "pytest", "total_time": 1.5, "total_count": cases.len(),
            "success_count": count("success"), "failed_count": count("failed"),
            "skipped_count": count("skipped"), "error_count": count("error"),
            "suite_error": null, "test_cases": cases,
        }],
    })
}

fn gl_pipeline(id: u64, report: Value) -> GlPipeline {
    GlPipeline {
        id,
        sha: sha(id),
        git_ref: if id.is_multiple_of(2) {
            "main"
        } else {
            "feature/y"
        }
        .into(),
        created: format!("2026-03-01T11:{:02}:00.123+01:00", id % 60),
        report,
    }
}

/// Seven pipelines over three pages (`X-Next-Page`); test reports become builds without any
/// XML (failed and error → failed, skipped → skipped, a test failing then passing in one
/// pipeline → flaky); an empty report counts as without results, an expired one as expired;
/// a 429 with Retry-After is waited for. A second import — this time with CI_JOB_TOKEN, sent
/// as JOB-TOKEN — transfers only the listing.
#[test]
fn gitlab_import_pages_by_x_next_page_and_converts_test_reports() {
    let normal = |i: u64| {
        report(vec![
            case("tests.test_a", "test_one", "success", 0.5),
            case(
                "tests.test_a",
                "test_two",
                if i.is_multiple_of(3) {
                    "failed"
                } else {
                    "success"
                },
                0.25,
            ),
            case(
                "tests.test_b",
                "test_err",
                if i == 1005 { "error" } else { "success" },
                0.1,
            ),
            case("tests.test_b", "test_skip", "skipped", 0.0),
        ])
    };
    let mut pipelines: Vec<GlPipeline> = (1001..=1007).map(|i| gl_pipeline(i, normal(i))).collect();
    // An empty report: the pipeline had no JUnit artifacts.
    pipelines[1].report = json!({ "total_time": 0, "total_count": 0, "test_suites": [] });
    // Expired artifacts: the suite is there, with an error instead of its cases.
    pipelines[3].report = json!({ "total_count": 0, "test_suites": [
        { "name": "pytest", "total_count": 0, "test_cases": [], "suite_error": "Test report artifacts have expired" }
    ]});
    // Retried in the same pipeline: failed, then passed.
    pipelines[6].report = report(vec![
        case("tests.test_a", "test_one", "failed", 0.5),
        case("tests.test_a", "test_one", "success", 0.5),
        case("tests.test_a", "test_two", "success", 0.25),
    ]);
    let commits = (1001..=1007)
        .map(|i| (sha(i), vec![format!("tests/test_{i}.py")]))
        .collect();
    let fake = Fake::start(vec![], pipelines, commits, 3);
    fake.rules()
        .retry_after
        .insert(format!("{PROJECT}/pipelines/1003/test_report"), 1);
    let sb = Sandbox::new();
    let err = stderr_of(
        gitlab_import(&sb, &fake, &[]).env("GITLAB_TOKEN", GL_TOKEN),
        0,
    );
    assert!(
        err.contains("imported 5, skipped (already present) 0, expired 1, without test results 1"),
        "{err}"
    );
    let hits = fake.hits();
    assert_eq!(
        hits.iter().filter(|h| is_listing(&h.path)).count(),
        3,
        "{hits:#?}"
    );
    assert!(
        hits.iter()
            .all(|h| h.auth.as_deref() == Some(&*format!("private-token: {GL_TOKEN}")))
    );
    let tries: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.path.ends_with("/pipelines/1003/test_report"))
        .collect();
    assert_eq!(
        tries.iter().map(|h| h.status).collect::<Vec<_>>(),
        [429, 200]
    );
    assert!(tries[1].at.duration_since(tries[0].at) >= Duration::from_millis(900));

    let got = builds(&sb);
    assert_eq!(
        got.iter().map(|b| b.build_id.as_str()).collect::<Vec<_>>(),
        [
            "gl-pipeline-1001",
            "gl-pipeline-1003",
            "gl-pipeline-1005",
            "gl-pipeline-1006",
            "gl-pipeline-1007"
        ]
    );
    for b in &got {
        let id: u64 = b
            .build_id
            .trim_start_matches("gl-pipeline-")
            .parse()
            .unwrap();
        assert_eq!(b.commit.as_deref(), Some(&*sha(id)));
        let want_ref = if id.is_multiple_of(2) {
            "main"
        } else {
            "feature/y"
        };
        assert_eq!(b.branch.as_deref(), Some(want_ref));
        // 11:MM:00.123+01:00 is 10:MM:00 UTC.
        assert_eq!(b.recorded_at, epoch_of(id % 60));
        assert_eq!(b.changed_files, Some(vec![format!("tests/test_{id}.py")]));
    }
    let o = outcomes(&sb, "gl-pipeline-1005");
    assert_eq!(o["tests.test_a::test_one"], 0);
    assert_eq!(o["tests.test_a::test_two"], 1, "failed is a failure");
    assert_eq!(o["tests.test_b::test_err"], 1, "error is a failure");
    assert_eq!(o["tests.test_b::test_skip"], 2);
    let o = outcomes(&sb, "gl-pipeline-1007");
    assert_eq!(
        o["tests.test_a::test_one"], 3,
        "failed then passed is flaky"
    );
    assert_eq!(
        (got[2].tests, got[2].failed, got[2].skipped),
        (4, 2, 1),
        "{:?}",
        got[2]
    );

    fake.clear_log();
    let err = stderr_of(
        gitlab_import(&sb, &fake, &[]).env("CI_JOB_TOKEN", JOB_TOKEN),
        0,
    );
    assert!(err.contains("CI_JOB_TOKEN"), "{err}");
    assert!(
        err.contains("imported 0, skipped (already present) 5"),
        "{err}"
    );
    let hits = fake.hits();
    assert_eq!(hits.len(), 3, "{hits:#?}");
    assert!(
        hits.iter().all(|h| is_listing(&h.path)
            && h.auth.as_deref() == Some(&*format!("job-token: {JOB_TOKEN}")))
    );
    assert_eq!(builds(&sb), got);
}

// ---------------------------------------------------------------------------------------------
// Hostile artifacts and servers (issue 18). Every artifact here is made by hand: zips whose
// entries share one deflated report, zips of many entries, one huge report; and servers that
// send far-future dates, overflowing headers, ids of the wrong shape.

/// A report of one suite: `rows` rows of the same test `c::t`, then `pad` bytes of whitespace
/// (text between elements, which the reader skips without keeping).
fn padded_report(rows: usize, pad: usize) -> Vec<u8> {
    let mut r = b"<testsuite name=\"s\">".to_vec();
    for _ in 0..rows {
        r.extend_from_slice(b"<testcase classname=\"c\" name=\"t\"/>");
    }
    r.resize(r.len() + pad, b' ');
    r.extend_from_slice(b"</testsuite>");
    r
}

/// A zip of `copies` entries `r00000.xml`, `r00001.xml`, … each holding `report`, deflated
/// once. `overlapping`: every entry points at the same local header and data (no zip writer
/// makes these; each entry inflates the whole report again); else each entry has its own copy.
/// Written by hand from one entry the zip crate makes. At most 65,535 entries (no zip64).
fn repeated_zip(report: &[u8], copies: usize, overlapping: bool) -> Vec<u8> {
    assert!(copies <= 65_535);
    let one = {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("r00000.xml", opts).unwrap();
        w.write_all(report).unwrap();
        w.finish().unwrap().into_inner()
    };
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let eocd = &one[one.len() - 22..];
    assert_eq!(&eocd[..4], b"PK\x05\x06");
    let (cd_size, cd_offset) = (u32_at(eocd, 12), u32_at(eocd, 16));
    let local = &one[..cd_offset];
    let central = &one[cd_offset..cd_offset + cd_size];
    assert_eq!(u16_at(central, 28), 10, "name length");
    let name = |i: usize| format!("r{i:05}.xml");
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for i in 0..if overlapping { 1 } else { copies } {
        offsets.push(out.len() as u32);
        let mut l = local.to_vec();
        l[30..40].copy_from_slice(name(i).as_bytes());
        out.extend(l);
    }
    let cd_start = out.len();
    for i in 0..copies {
        let mut c = central.to_vec();
        c[46..56].copy_from_slice(name(i).as_bytes());
        let offset = offsets.get(i).copied().unwrap_or(0);
        c[42..46].copy_from_slice(&offset.to_le_bytes());
        out.extend(c);
    }
    let cd_len = out.len() - cd_start;
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(copies as u16).to_le_bytes());
    out.extend_from_slice(&(copies as u16).to_le_bytes());
    out.extend_from_slice(&(cd_len as u32).to_le_bytes());
    out.extend_from_slice(&(cd_start as u32).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

/// Run `cmd` to its end: (exit code, stderr, peak RSS in MiB).
///
/// The peak is the child's `VmHWM` (the high-water mark of its resident set) from
/// `/proc/<pid>/status`, read every 5 ms while it runs. `VmHWM` never decreases, so any read
/// after the peak shows it; only a peak reached in the last few milliseconds before exit
/// could be missed, and the imports measured here reach theirs while reading an artifact,
/// long before they end. This needs no libc (`wait4`'s rusage) and measures the binary
/// itself, not a wrapper around it.
fn run_measured(mut cmd: std::process::Command) -> (i32, String, f64) {
    use std::io::Read as _;
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).unwrap();
        text
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let started = Instant::now();
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the import did not end"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let err = reader.join().unwrap();
    (status.code().unwrap_or(-1), err, peak_kib as f64 / 1024.0)
}

fn std_github_import(sb: &Sandbox, fake: &Fake, extra: &[&str]) -> std::process::Command {
    let mut cmd = sb.std_fedtest();
    cmd.env("GITHUB_TOKEN", TOKEN)
        .env_remove("GITHUB_REPOSITORY")
        .args([
            "import",
            "github",
            "--repo",
            "acme/widgets",
            "--workflow",
            "ci.yml",
            "--no-train",
            "--api-url",
        ])
        .arg(fake.url())
        .args(extra);
    cmd
}

fn build_ids(sb: &Sandbox) -> Vec<String> {
    builds(sb).into_iter().map(|b| b.build_id).collect()
}

/// Artifacts that would inflate without end are skipped with a warning naming the bound they
/// hit, and the import goes on: entries sharing one deflated report (1,000 × 1 MiB from 2 KB),
/// a zip declaring 60,000 entries, 300 entries of 1 MiB each past `--max-unzipped-mib 64`, and
/// one report of 600,000 rows past the default 500,000 test cases a run. The valid runs around
/// them are imported, the hostile ones are not, and peak memory stays bounded (measured).
#[test]
fn issue_18_artifacts_over_a_bound_are_skipped_and_the_import_goes_on() {
    let mib = 1024 * 1024;
    let good = || zip_of(&["pytest/xunit2.xml"], &[]);
    let runs = vec![
        gh_run(101, vec![artifact(101, "junit", good())]),
        gh_run(
            102,
            vec![artifact(
                102,
                "junit",
                repeated_zip(&padded_report(3, mib), 1000, true),
            )],
        ),
        gh_run(
            103,
            vec![artifact(
                103,
                "junit",
                repeated_zip(&padded_report(1, 0), 60_000, true),
            )],
        ),
        gh_run(
            104,
            vec![artifact(
                104,
                "junit",
                repeated_zip(&padded_report(3, mib), 300, false),
            )],
        ),
        gh_run(
            105,
            vec![artifact(
                105,
                "junit",
                repeated_zip(&padded_report(600_000, 0), 1, false),
            )],
        ),
        gh_run(106, vec![artifact(106, "junit", good())]),
    ];
    for r in &runs {
        assert!(
            r.artifacts[0].zip.len() < 4 * mib,
            "{}: {}",
            r.id,
            r.artifacts[0].zip.len()
        );
    }
    let commits = (101..=106)
        .map(|id| (sha(id), vec!["a.py".to_owned()]))
        .collect();
    let fake = Fake::start(runs, vec![], commits, 100);
    let sb = Sandbox::new();
    let started = Instant::now();
    let (code, err, peak) = run_measured(std_github_import(
        &sb,
        &fake,
        &["--max-unzipped-mib", "64", "--jobs", "2"],
    ));
    let took = started.elapsed();
    assert_eq!(code, 0, "{err}");
    for (run, says) in [
        (102, "entries share their data"),
        (
            103,
            "has 60000 entries, more than 50000 (--max-zip-entries)",
        ),
        (104, "unzips to more than 64 MiB (--max-unzipped-mib)"),
        (
            105,
            "holds more than 500000 test cases for one run (--max-test-cases)",
        ),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("run {run} (attempt 1) skipped:")))
            .unwrap_or_else(|| panic!("no warning for run {run}: {err}"));
        assert!(line.contains(says), "run {run}: {line}");
    }
    assert!(
        err.contains("imported 2, skipped (already present) 0, expired 0, without test results 0, failed 1, over a bound 3"),
        "{err}"
    );
    assert_eq!(build_ids(&sb), ["gh-101-1", "gh-106-1"]);
    // Before issue 18 a 1.5 MB artifact took the process to 5.1 GB. The bound here is what the
    // rows of one run may cost (500,000 rows of about 150 bytes) plus the rest of the import,
    // with room for a debug build's allocator; measured 100–130 MiB.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("peak RSS {peak:.0} MiB in {took:?}");
    }
    assert!(peak < 250.0, "peak RSS {peak:.0} MiB");
    assert!(took < Duration::from_secs(180), "{took:?}");
}

/// The time spent unzipping and reading one run is bounded too: 2,000 entries of 1 MiB each
/// (2 GiB from a 3 MB zip, within a raised --max-unzipped-mib) stop at --max-read-seconds.
#[test]
fn issue_18_reading_one_run_is_bounded_in_time() {
    let zip = repeated_zip(&padded_report(3, 1024 * 1024), 2000, false);
    let runs = vec![
        gh_run(101, vec![artifact(101, "junit", zip)]),
        gh_run(
            102,
            vec![artifact(102, "junit", zip_of(&["pytest/xunit2.xml"], &[]))],
        ),
    ];
    let commits = (101..=102)
        .map(|id| (sha(id), vec!["a.py".to_owned()]))
        .collect();
    let fake = Fake::start(runs, vec![], commits, 100);
    let sb = Sandbox::new();
    let started = Instant::now();
    let err = stderr_of(
        &mut github_import(
            &sb,
            &fake,
            &[
                "--max-read-seconds",
                "1",
                "--max-unzipped-mib",
                "4096",
                "--no-train",
            ],
        ),
        0,
    );
    assert!(
        err.contains("run 101 (attempt 1) skipped:")
            && err.contains("took longer than 1s to unzip and read (--max-read-seconds)"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(build_ids(&sb), ["gh-102-1"]);
}

/// A real-sized suite is well inside the default bounds: 100,000 tests in one report import as
/// one build of 100,000 tests. Its peak memory is measured too.
#[test]
fn issue_18_a_100000_test_suite_imports_within_the_default_bounds() {
    let mut xml = String::from("<testsuites><testsuite name=\"big\">\n");
    for i in 0..100_000 {
        xml.push_str(&format!(
            "<testcase classname=\"pkg.mod{}.Test{}\" name=\"test_case_{i}\" time=\"0.01\"/>\n",
            i % 50,
            i % 20
        ));
    }
    xml.push_str("</testsuite></testsuites>\n");
    let zip = zip_of(&[], &[("reports/junit.xml", &xml)]);
    let fake = Fake::start(
        vec![gh_run(101, vec![artifact(101, "junit", zip)])],
        vec![],
        HashMap::from([(sha(101), vec!["a.py".to_owned()])]),
        100,
    );
    let sb = Sandbox::new();
    let (code, err, peak) = run_measured(std_github_import(&sb, &fake, &[]));
    assert_eq!(code, 0, "{err}");
    let got = builds(&sb);
    assert_eq!(got.len(), 1, "{err}");
    assert_eq!(got[0].tests, 100_000);
    #[allow(clippy::print_stderr)]
    {
        eprintln!("peak RSS {peak:.0} MiB");
    }
    assert!(peak < 250.0, "peak RSS {peak:.0} MiB");
}

/// Run data of the wrong shape is refused before it is put in a URL or stored, each with a
/// warning: a head sha of `..` (which would turn the commit request into the commit listing),
/// branches with a newline or an escape sequence, attempts 0 and 2³²−1, and a run dated in the
/// year 2999 (which would make every later import skip everything as older than the history).
/// The store holds exactly the valid runs, and a later import still imports a new run.
#[test]
fn issue_18_run_data_of_the_wrong_shape_or_from_the_future_is_refused() {
    let good = || zip_of(&["pytest/xunit2.xml"], &[]);
    let run = |id: u64| gh_run(id, vec![artifact(id, "junit", good())]);
    let runs = vec![
        run(101),
        GhRun {
            sha: "..".into(),
            ..run(102)
        },
        GhRun {
            branch: "main\nerror: forged".into(),
            ..run(103)
        },
        GhRun {
            branch: "x\u{1b}[2Jy".into(),
            ..run(104)
        },
        GhRun {
            attempt: 0,
            ..run(105)
        },
        GhRun {
            attempt: u32::MAX,
            ..run(106)
        },
        GhRun {
            started: "2999-01-01T00:00:00Z".into(),
            ..run(107)
        },
        run(108),
    ];
    let commits = (101..=109)
        .map(|id| (sha(id), vec!["a.py".to_owned()]))
        .collect();
    let fake = Fake::start(runs.clone(), vec![], commits, 100);
    let sb = Sandbox::new();
    let err = stderr_of(&mut github_import(&sb, &fake, &["--no-train"]), 0);
    for (id, attempt, says) in [
        (102, 1, "commit id \"..\" is not a hex commit id"),
        (
            103,
            1,
            "branch \"main\\nerror: forged\" is not a usable branch name",
        ),
        (
            104,
            1,
            "branch \"x\\u{1b}[2Jy\" is not a usable branch name",
        ),
        (105, 0, "attempt 0 is not between 1 and 1000"),
        (
            106,
            u32::MAX,
            "attempt 4294967295 is not between 1 and 1000",
        ),
        (107, 1, "in the future"),
    ] {
        let label = format!("run {id} (attempt {attempt}) refused: ");
        let line = err
            .lines()
            .find(|l| l.contains(&label))
            .unwrap_or_else(|| panic!("no warning for run {id}: {err}"));
        assert!(line.contains(says), "{line}");
    }
    assert!(
        !err.contains('\u{1b}'),
        "an escape sequence reached the output"
    );
    assert!(
        !err.lines().any(|l| l.starts_with("error: forged")),
        "{err}"
    );
    assert!(
        err.contains("imported 2,") && err.contains("refused 6"),
        "{err}"
    );
    assert_eq!(build_ids(&sb), ["gh-101-1", "gh-108-1"]);
    // Nothing of a refused run was asked for: no commit listing through `commits/..`.
    assert_eq!(
        fake.count(|p| p.contains("/commits") && !p.contains(&sha(101)) && !p.contains(&sha(108))),
        0
    );
    for id in 102..=107 {
        assert_eq!(
            fake.count(|p| p.ends_with(&format!("/runs/{id}/artifacts"))),
            0
        );
    }
    drop(fake);

    // A new run after them is imported: the run from the future poisoned nothing.
    let mut runs = runs;
    runs.push(run(109));
    let commits = (101..=109)
        .map(|id| (sha(id), vec!["a.py".to_owned()]))
        .collect();
    let fake = Fake::start(runs, vec![], commits, 100);
    let err = stderr_of(&mut github_import(&sb, &fake, &["--no-train"]), 0);
    assert!(
        err.contains("imported 1, skipped (already present) 2"),
        "{err}"
    );
    assert_eq!(build_ids(&sb), ["gh-101-1", "gh-108-1", "gh-109-1"]);
}

/// Rate-limit numbers too large for a clock (a reset at 2⁶⁴−1, a retry-after of 2⁶⁴−1) end the
/// import with the documented exit 5 instead of a panic (exit 101), and no wait is announced
/// that the import then refuses to make.
#[test]
fn issue_18_overflowing_rate_limit_headers_end_with_exit_5() {
    let max = u64::MAX.to_string();
    let fake = junit_runs(101..=102, "pytest/xunit2.xml", "a.py");
    fake.rules().rate_override = Some(vec![
        ("x-ratelimit-remaining".into(), "0".into()),
        ("x-ratelimit-reset".into(), max.clone()),
    ]);
    let sb = Sandbox::new();
    let err = stderr_of(&mut github_import(&sb, &fake, &[]), 5);
    assert!(
        err.contains("rate limited by GitHub for another")
            && err.contains("longer than --max-wait 60s"),
        "{err}"
    );
    assert!(!err.contains("waiting"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let fake = junit_runs(101..=102, "pytest/xunit2.xml", "a.py");
    {
        let mut rules = fake.rules();
        rules.retry_after_value = Some(max);
        rules
            .retry_after
            .insert(format!("{REPO}/actions/workflows/ci.yml/runs"), 1);
    }
    let err = stderr_of(&mut github_import(&sb, &fake, &[]), 5);
    assert!(err.contains("rate limited by GitHub for another"), "{err}");
    assert!(
        !err.contains("waiting") && !err.contains("panicked"),
        "{err}"
    );
}

/// A 403 from blob storage (where the token is never sent) skips that run with a message that
/// does not blame the token and does not print the signed URL; the import goes on and exits 0,
/// and the run is remembered: the next import goes on past it without downloading it again,
/// and `--retry-skipped` tries it once more.
#[test]
fn issue_18_a_refused_blob_download_skips_the_run_and_is_remembered() {
    let fake = junit_runs(101..=103, "pytest/xunit2.xml", "a.py");
    // The newest run's blob is refused: nothing newer would make it "older than the history".
    fake.rules()
        .fail
        .insert("/blob/103".into(), (403, usize::MAX));
    let sb = Sandbox::new();
    let err = stderr_of(&mut github_import(&sb, &fake, &["--no-train"]), 0);
    let line = err
        .lines()
        .find(|l| l.contains("run 103 (attempt 1) skipped:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("refused by the storage it redirects to (403")
            && line.contains("not about the token"),
        "{line}"
    );
    assert!(!err.contains("refused the token"), "{err}");
    assert!(
        !err.contains("s3cr3t") && !err.contains("sig="),
        "signed URL printed: {err}"
    );
    assert!(
        err.contains("imported 2,") && err.contains("download refused 1"),
        "{err}"
    );
    assert_eq!(build_ids(&sb), ["gh-101-1", "gh-102-1"]);

    fake.clear_log();
    let err = stderr_of(&mut github_import(&sb, &fake, &["--no-train"]), 0);
    assert!(
        err.contains("imported 0, skipped (already present) 2") && err.contains("skipped before 1"),
        "{err}"
    );
    assert_eq!(fake.count(|p| !is_listing(p)), 0, "{:#?}", fake.hits());

    fake.clear_log();
    let err = stderr_of(
        &mut github_import(&sb, &fake, &["--no-train", "--retry-skipped"]),
        0,
    );
    assert!(err.contains("download refused 1"), "{err}");
    assert_eq!(fake.count(|p| p == "/blob/103"), 1);
}

/// By default only the repository's own pushes (and merge queues) are imported: a pull request
/// from a fork — even from a branch named `main` — is left out, and so is a pull request of the
/// repository itself and a scheduled run; the summary says how many and why. `--event` and
/// `--include-forks` widen it; `--actor` and `--branch` narrow it.
#[test]
fn issue_18_only_the_repositorys_own_pushes_are_imported_by_default() {
    let good = || zip_of(&["pytest/xunit2.xml"], &[]);
    let run = |id: u64| gh_run(id, vec![artifact(id, "junit", good())]);
    let runs = vec![
        run(101),
        GhRun {
            event: "pull_request",
            head_repo: Some("mallory/widgets"),
            branch: "main".into(),
            ..run(102)
        },
        GhRun {
            event: "pull_request",
            ..run(103)
        },
        GhRun {
            event: "merge_group",
            branch: "gh-readonly-queue/main/pr-7-abc".into(),
            ..run(104)
        },
        GhRun {
            event: "schedule",
            ..run(105)
        },
        GhRun {
            event: "pull_request_target",
            head_repo: None,
            ..run(106)
        },
        run(107),
    ];
    let commits = (101..=107)
        .map(|id| (sha(id), vec!["a.py".to_owned()]))
        .collect();
    let fake = Fake::start(runs, vec![], commits, 100);
    let sb = Sandbox::new();
    let err = stderr_of(&mut github_import(&sb, &fake, &["--no-train"]), 0);
    assert!(
        err.contains("left out 4 runs by the filters: 2 of event pull_request (--event), 1 of event pull_request_target (--event), 1 of event schedule (--event)"),
        "{err}"
    );
    assert!(
        err.contains("imported 3,") && err.contains("left out by the filters 4"),
        "{err}"
    );
    assert_eq!(build_ids(&sb), ["gh-101-1", "gh-104-1", "gh-107-1"]);
    for id in [102, 103, 105, 106] {
        assert_eq!(
            fake.count(|p| p.ends_with(&format!("/runs/{id}/artifacts"))),
            0
        );
    }

    // Pull requests asked for: the repository's own is imported, the forks' are not.
    let sb = Sandbox::new();
    let err = stderr_of(
        &mut github_import(
            &sb,
            &fake,
            &[
                "--no-train",
                "--event",
                "push",
                "--event",
                "pull_request",
                "--event",
                "pull_request_target",
            ],
        ),
        0,
    );
    assert!(
        err.contains("2 of from a fork or of unknown origin (--include-forks)"),
        "{err}"
    );
    assert_eq!(build_ids(&sb), ["gh-101-1", "gh-103-1", "gh-107-1"]);
    let sb = Sandbox::new();
    stderr_of(
        &mut github_import(
            &sb,
            &fake,
            &["--no-train", "--event", "pull_request", "--include-forks"],
        ),
        0,
    );
    assert_eq!(build_ids(&sb), ["gh-102-1", "gh-103-1"]);

    // Narrower: one actor (the fake's pushes are alice's), some branches.
    let sb = Sandbox::new();
    let err = stderr_of(
        &mut github_import(
            &sb,
            &fake,
            &[
                "--no-train",
                "--event",
                "push",
                "--event",
                "schedule",
                "--actor",
                "alice",
                "--branch",
                "main",
                "--branch",
                "feature/*",
            ],
        ),
        0,
    );
    assert!(err.contains("1 of another actor (--actor)"), "{err}");
    assert_eq!(build_ids(&sb), ["gh-101-1", "gh-107-1"]);
}

/// Smaller ones: a listing whose `Link` points at its own page lists each run once and each is
/// downloaded once; GitLab's test report does not follow a redirect to another origin (the
/// other API calls never did); a password in --api-url is never printed.
#[test]
fn issue_18_self_links_cross_origin_redirects_and_passwords_in_urls() {
    let fake = junit_runs(101..=103, "pytest/xunit2.xml", "a.py");
    fake.rules().self_link = true;
    let sb = Sandbox::new();
    let err = stderr_of(&mut github_import(&sb, &fake, &["--no-train"]), 0);
    assert!(err.contains("imported 3,"), "{err}");
    // The first page, then the `next` link (the same page under another URL), then no more.
    assert!(fake.count(is_listing) <= 2, "{:#?}", fake.hits());
    for id in 101..=103 {
        assert_eq!(fake.count(|p| p == format!("/blob/{id}")), 1);
    }

    // A password in --api-url, and an error that would name the URL.
    let url = fake.url().replace("http://", "http://bob:hunter2@");
    fake.rules().fail.insert(
        format!("{REPO}/actions/workflows/ci.yml/runs"),
        (502, usize::MAX),
    );
    let sb = Sandbox::new();
    let err = stderr_of(&mut github_import_at(&sb, &url, &["--retries", "0"]), 5);
    // The message names the URL (the server refused the credentials or answered 502), without
    // the password.
    assert!(err.contains("http://127.0.0.1:"), "{err}");
    assert!(!err.contains("hunter2") && !err.contains("bob:"), "{err}");
    let err = stderr_of(&mut github_import_at(&sb, "ftp://bob:hunter2@x/", &[]), 2);
    assert!(
        err.contains("is not an http(s) URL") && !err.contains("hunter2"),
        "{err}"
    );

    let pipelines = vec![
        gl_pipeline(1001, report(vec![case("t.a", "one", "success", 0.1)])),
        gl_pipeline(1002, report(vec![case("t.a", "one", "success", 0.1)])),
    ];
    let commits = (1001..=1002)
        .map(|i| (sha(i), vec!["a.py".to_owned()]))
        .collect();
    let fake = Fake::start(vec![], pipelines, commits, 100);
    fake.rules().redirect.insert(
        format!("{PROJECT}/pipelines/1001/test_report"),
        "http://127.0.0.2:9/elsewhere".into(),
    );
    let sb = Sandbox::new();
    let err = stderr_of(
        gitlab_import(&sb, &fake, &["--no-train"]).env("GITLAB_TOKEN", GL_TOKEN),
        0,
    );
    assert!(
        err.contains("pipeline 1001 skipped:")
            && err.contains("redirected to another host (http://127.0.0.2:9)"),
        "{err}"
    );
    assert_eq!(build_ids(&sb), ["gl-pipeline-1002"]);
}
