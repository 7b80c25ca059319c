//! `fedtest import github|gitlab`: resolve the arguments, tokens and limits once, import, then
//! retrain once.

use std::path::Path;
use std::time::Duration;

use reqwest::Url;

use crate::ci::Env;
use crate::cli::{
    ImportArgs, ImportCommonArgs, ImportGithubArgs, ImportGitlabArgs, ImportPlatform,
};
use crate::config::Config;
use crate::config::env::Vars;
use crate::error::{Error, Result};
use crate::import::{self, Bounds, Limits, Options, RunFilter, Source, github, gitlab};
use crate::junit;
use crate::output::Printer;
use crate::record::Learn;

pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &ImportArgs,
    env: &Env,
    vars: &Vars,
    printer: &Printer,
) -> Result<()> {
    let common = match &args.platform {
        ImportPlatform::Github(a) => &a.common,
        ImportPlatform::Gitlab(a) => &a.common,
    };
    let limits = limits(common)?;
    let bounds = bounds(common)?;
    let (source, branches, default_events) = match &args.platform {
        ImportPlatform::Github(a) => (
            github_source(a, env, config, limits, bounds)?,
            &a.branch,
            github::DEFAULT_EVENTS,
        ),
        ImportPlatform::Gitlab(a) => (
            gitlab_source(a, env, printer, limits, bounds.max_test_cases)?,
            &a.git_ref,
            gitlab::DEFAULT_EVENTS,
        ),
    };
    let filter = RunFilter {
        events: if common.events.is_empty() {
            default_events.iter().map(|e| (*e).to_owned()).collect()
        } else {
            common.events.iter().map(|e| e.trim().to_owned()).collect()
        },
        branches: globs(branches, "--branch")?,
        actors: common.actors.iter().map(|a| a.trim().to_owned()).collect(),
        forks: common.include_forks,
    };
    let opts = Options {
        limit: common.limit,
        jobs: common.jobs,
        changed_files: !common.no_changed_files,
        retention: crate::record::retention(config),
        models: crate::strategy::Models::load(data_dir),
        filter,
        retry_skipped: common.retry_skipped,
    };
    let learn = (!common.no_train).then(|| Learn::new(config, vars));
    import::into_history(data_dir, source, &opts, learn.as_ref(), printer)
}

fn limits(a: &ImportCommonArgs) -> Result<Limits> {
    if a.limit == 0 {
        return Err(Error::Usage("--limit must be at least 1".into()));
    }
    if !(1..=32).contains(&a.jobs) {
        return Err(Error::Usage("--jobs must be between 1 and 32".into()));
    }
    if a.timeout == 0 || a.max_download_mib == 0 {
        return Err(Error::Usage(
            "--timeout and --max-download-mib must be positive".into(),
        ));
    }
    Ok(Limits {
        timeout: Duration::from_secs(a.timeout),
        retries: a.retries,
        max_wait: Duration::from_secs(a.max_wait),
        max_download_bytes: a.max_download_mib.saturating_mul(1024 * 1024),
        ..Limits::default()
    })
}

fn bounds(a: &ImportCommonArgs) -> Result<Bounds> {
    let mib = |m: u64| m.saturating_mul(1024 * 1024);
    if [
        a.max_unzipped_mib,
        a.max_import_unzipped_mib,
        a.max_zip_entries,
        a.max_test_cases,
        a.max_read_seconds,
    ]
    .contains(&0)
    {
        return Err(Error::Usage(
            "--max-unzipped-mib, --max-import-unzipped-mib, --max-zip-entries, \
             --max-test-cases and --max-read-seconds must be positive"
                .into(),
        ));
    }
    Ok(Bounds {
        max_unzipped_bytes: mib(a.max_unzipped_mib),
        max_import_unzipped_bytes: mib(a.max_import_unzipped_mib),
        max_entries: a.max_zip_entries,
        max_test_cases: a.max_test_cases,
        max_run_time: Duration::from_secs(a.max_read_seconds),
    })
}

/// `--branch`/`--ref` globs; none: every branch.
fn globs(patterns: &[String], flag: &str) -> Result<Option<globset::GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = globset::GlobSetBuilder::new();
    for p in patterns {
        let glob = globset::GlobBuilder::new(p.trim())
            .literal_separator(false)
            .build()
            .map_err(|e| Error::Usage(format!("{flag} {p:?}: {e}")))?;
        set.add(glob);
    }
    set.build()
        .map(Some)
        .map_err(|e| Error::Usage(format!("{flag}: {e}")))
}

/// The one branch to ask the API for, when exactly one is named without a glob.
fn single_branch(patterns: &[String]) -> Option<String> {
    match patterns {
        [one] if !one.contains(['*', '?', '[', '{']) => Some(one.trim().to_owned()),
        _ => None,
    }
}

fn api_url(text: &str) -> Result<Url> {
    match Url::parse(text.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        // Not echoed as given: it may hold a password.
        _ => Err(Error::Usage(format!(
            "--api-url {:?} is not an http(s) URL",
            redacted(text)
        ))),
    }
}

/// `text` with anything between `://` and an `@` (a user name and password) replaced.
fn redacted(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => format!("{}***{}", &text[..s + 3], &text[at..]),
        _ => text.to_owned(),
    }
}

fn github_source(
    a: &ImportGithubArgs,
    env: &Env,
    config: &Config,
    limits: Limits,
    bounds: Bounds,
) -> Result<Source> {
    let var = a.common.token_env.as_deref().unwrap_or("GITHUB_TOKEN");
    let Some(token) = env.get(var) else {
        return Err(Error::Usage(format!(
            "no GitHub token: set {var}{} (GitHub requires one to download artifacts, even of \
             public repositories)",
            if a.common.token_env.is_some() {
                ""
            } else {
                ", or name another variable with --token-env"
            }
        )));
    };
    let repo = a.repo.trim();
    if repo.split('/').filter(|p| !p.is_empty()).count() != 2 || repo.matches('/').count() != 1 {
        return Err(Error::Usage(format!("--repo {repo:?} is not OWNER/NAME")));
    }
    if a.workflow.trim().is_empty() {
        return Err(Error::Usage("--workflow is empty".into()));
    }
    let patterns: Vec<&str> = if a.artifact_patterns.is_empty() {
        github::DEFAULT_ARTIFACT_PATTERNS.to_vec()
    } else {
        a.artifact_patterns.iter().map(String::as_str).collect()
    };
    let mut set = globset::GlobSetBuilder::new();
    for p in patterns {
        let glob = globset::GlobBuilder::new(p)
            .case_insensitive(true)
            .build()
            .map_err(|e| Error::Usage(format!("--artifact-pattern {p:?}: {e}")))?;
        set.add(glob);
    }
    let patterns = set
        .build()
        .map_err(|e| Error::Usage(format!("--artifact-pattern: {e}")))?;
    let target = github::Target {
        api: api_url(&a.api_url)?,
        repo: repo.to_owned(),
        workflow: a.workflow.trim().to_owned(),
        branch: single_branch(&a.branch),
        patterns,
    };
    let junit_limits = junit::Limits {
        max_file_bytes: config.record.max_report_mib.saturating_mul(1024 * 1024),
        ..junit::Limits::default()
    };
    let client = github::GitHub::new(target, token, limits, junit_limits, bounds)
        .map_err(|e| Error::Usage(e.to_string()))?;
    Ok(Source::GitHub(Box::new(client)))
}

fn gitlab_source(
    a: &ImportGitlabArgs,
    env: &Env,
    printer: &Printer,
    limits: Limits,
    max_test_cases: u64,
) -> Result<Source> {
    let token = if let Some(var) = &a.common.token_env {
        match env.get(var) {
            Some(t) => gitlab::Token::Private(t.to_owned()),
            None => return Err(Error::Usage(format!("no GitLab token: {var} is not set"))),
        }
    } else if let Some(t) = env.get("GITLAB_TOKEN") {
        gitlab::Token::Private(t.to_owned())
    } else if let Some(t) = env.get("CI_JOB_TOKEN") {
        printer.warn(
            "importing with CI_JOB_TOKEN: GitLab may refuse it the test-report API; a token \
             with the read_api scope in GITLAB_TOKEN always works",
        );
        gitlab::Token::Job(t.to_owned())
    } else {
        printer.warn("no GITLAB_TOKEN or CI_JOB_TOKEN: reading the project anonymously");
        gitlab::Token::None
    };
    let project = a.project.trim();
    if project.is_empty() {
        return Err(Error::Usage("--project is empty".into()));
    }
    let mut url = api_url(&a.api_url)?;
    // Accept the API root too (`https://gitlab.com/api/v4`, as CI_API_V4_URL has it).
    let path = url.path().trim_end_matches('/').to_owned();
    if let Some(root) = path.strip_suffix("/api/v4") {
        url.set_path(root);
    }
    let target = gitlab::Target {
        url,
        project: project.to_owned(),
        git_ref: single_branch(&a.git_ref),
    };
    let client = gitlab::GitLab::new(target, token, limits, max_test_cases)
        .map_err(|e| Error::Usage(e.to_string()))?;
    Ok(Source::GitLab(Box::new(client)))
}
