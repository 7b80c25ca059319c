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
use crate::error::{Error, Result};
use crate::history::Store;
use crate::import::{self, Limits, Options, Source, github, gitlab};
use crate::junit;
use crate::output::Printer;

pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &ImportArgs,
    env: &Env,
    printer: &Printer,
) -> Result<()> {
    let common = match &args.platform {
        ImportPlatform::Github(a) => &a.common,
        ImportPlatform::Gitlab(a) => &a.common,
    };
    let limits = limits(common)?;
    let source = match &args.platform {
        ImportPlatform::Github(a) => github_source(a, env, config, limits)?,
        ImportPlatform::Gitlab(a) => gitlab_source(a, env, printer, limits)?,
    };
    let opts = Options {
        limit: common.limit,
        jobs: common.jobs,
        changed_files: !common.no_changed_files,
        retention: super::record::retention(config),
        models: crate::strategy::Models::load(data_dir),
    };
    let mut store = Store::open_or_create(data_dir)?;
    let outcome = import::import(source, &mut store, &opts, printer)?;
    printer.info(&outcome.summary.line());
    if outcome.summary.imported > 0 && !common.no_train {
        let train = crate::model::train::TrainOptions::for_plan(&config.plan);
        super::record::after_recording(&store, data_dir, &train, env, printer);
    }
    match outcome.stopped {
        Some(e) => Err(e),
        None => Ok(()),
    }
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

fn api_url(text: &str) -> Result<Url> {
    match Url::parse(text.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        _ => Err(Error::Usage(format!(
            "--api-url {text:?} is not an http(s) URL"
        ))),
    }
}

fn github_source(
    a: &ImportGithubArgs,
    env: &Env,
    config: &Config,
    limits: Limits,
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
        branch: a.branch.clone(),
        patterns,
    };
    let junit_limits = junit::Limits {
        max_file_bytes: config.record.max_report_mib.saturating_mul(1024 * 1024),
        ..junit::Limits::default()
    };
    let client = github::GitHub::new(target, token, limits, junit_limits)
        .map_err(|e| Error::Usage(e.to_string()))?;
    Ok(Source::GitHub(client))
}

fn gitlab_source(
    a: &ImportGitlabArgs,
    env: &Env,
    printer: &Printer,
    limits: Limits,
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
        git_ref: a.git_ref.clone(),
    };
    let client =
        gitlab::GitLab::new(target, token, limits).map_err(|e| Error::Usage(e.to_string()))?;
    Ok(Source::GitLab(client))
}
