//! The CI environment fedtest runs in: which platform, and the build's metadata. What fedtest
//! tells the platform back lives in [`annotation`] (GitHub workflow commands) and in the
//! top-level `report` (step outputs, job summary, dotenv report, log section).

pub mod annotation;

use std::collections::HashMap;

/// The CI platform, detected from its environment variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    GitHub,
    GitLab,
    None,
}

/// Build metadata the platform provides.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CiBuild {
    /// A per-job build id (unique across re-runs and parallel jobs where the platform allows).
    pub build_id: Option<String>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// Base commit or ref to diff against for the changed files.
    pub base: Option<String>,
}

/// A snapshot of the environment (a map so tests need not touch the process environment).
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Env {
            vars: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn platform(&self) -> Platform {
        if self.get("GITHUB_ACTIONS") == Some("true") {
            Platform::GitHub
        } else if self.is_gitlab() {
            Platform::GitLab
        } else {
            Platform::None
        }
    }

    /// GitLab sets `GITLAB_CI=true`. gitlab-ci-local (4.73, checked by running it) sets
    /// `GITLAB_CI=false` and no `CI_SERVER`, but the rest of the predefined job variables
    /// (`CI_JOB_ID` random per job, `CI_PIPELINE_ID` counting up), so a job it runs is
    /// recognised by those — only together with `GITLAB_CI` (any value) or GitLab's
    /// `CI_SERVER=yes`, so another CI's `CI_*` variables (Woodpecker, Drone) are not mistaken
    /// for GitLab's.
    fn is_gitlab(&self) -> bool {
        if self.get("GITLAB_CI") == Some("true") {
            return true;
        }
        let marked = self.get("GITLAB_CI").is_some() || self.get("CI_SERVER") == Some("yes");
        marked
            && ["CI_JOB_ID", "CI_PIPELINE_ID", "CI_SERVER_URL"]
                .iter()
                .all(|k| self.get(k).is_some())
    }

    /// The build metadata of the platform, as far as it tells.
    pub fn build(&self) -> CiBuild {
        let own = |k: &str| self.get(k).map(str::to_owned);
        match self.platform() {
            Platform::GitHub => CiBuild {
                build_id: self.get("GITHUB_RUN_ID").map(|run| {
                    let attempt = self.get("GITHUB_RUN_ATTEMPT").unwrap_or("1");
                    let job = self.get("GITHUB_JOB").unwrap_or("job");
                    format!("gh-{run}-{attempt}-{job}")
                }),
                commit: own("GITHUB_SHA"),
                // On pull requests GITHUB_REF_NAME is "123/merge"; the head branch is what users mean.
                branch: own("GITHUB_HEAD_REF").or_else(|| own("GITHUB_REF_NAME")),
                base: self
                    .get("GITHUB_BASE_REF")
                    .map(|b| format!("origin/{b}"))
                    .or_else(|| self.github_push_before()),
            },
            Platform::GitLab => CiBuild {
                build_id: self.get("CI_JOB_ID").map(|j| format!("gl-{j}")),
                commit: own("CI_COMMIT_SHA"),
                branch: own("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
                    .or_else(|| own("CI_COMMIT_BRANCH"))
                    .or_else(|| own("CI_COMMIT_REF_NAME")),
                base: own("CI_MERGE_REQUEST_DIFF_BASE_SHA")
                    .or_else(|| own("CI_COMMIT_BEFORE_SHA").filter(|s| !is_zero_sha(s))),
            },
            Platform::None => CiBuild::default(),
        }
    }

    /// A push event names the commit before the push in its payload.
    fn github_push_before(&self) -> Option<String> {
        let path = self.get("GITHUB_EVENT_PATH")?;
        let text = std::fs::read_to_string(path).ok()?;
        let event: serde_json::Value = serde_json::from_str(&text).ok()?;
        let before = event.get("before")?.as_str()?;
        (!is_zero_sha(before)).then(|| before.to_owned())
    }
}

fn is_zero_sha(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == b'0')
}

/// Build metadata after applying precedence: command line > CI environment > git.
#[derive(Clone, Debug, Default)]
pub struct ResolvedBuild {
    pub build_id: Option<String>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub changed_files: Option<Vec<String>>,
    /// The base the changed files were computed from (`--base`, the CI's), when known.
    pub base: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_pull_request() {
        let env = Env::from_pairs(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_JOB", "test"),
            ("GITHUB_SHA", "abc"),
            ("GITHUB_REF_NAME", "7/merge"),
            ("GITHUB_HEAD_REF", "feature"),
            ("GITHUB_BASE_REF", "main"),
        ]);
        let b = env.build();
        assert_eq!(b.build_id.as_deref(), Some("gh-42-2-test"));
        assert_eq!(b.branch.as_deref(), Some("feature"));
        assert_eq!(b.base.as_deref(), Some("origin/main"));
    }

    #[test]
    fn gitlab_push_ignores_zero_before_sha() {
        let env = Env::from_pairs(&[
            ("GITLAB_CI", "true"),
            ("CI_JOB_ID", "9"),
            ("CI_COMMIT_SHA", "abc"),
            ("CI_COMMIT_BRANCH", "main"),
            (
                "CI_COMMIT_BEFORE_SHA",
                "0000000000000000000000000000000000000000",
            ),
        ]);
        let b = env.build();
        assert_eq!(b.build_id.as_deref(), Some("gl-9"));
        assert_eq!(b.base, None);
        assert_eq!(b.branch.as_deref(), Some("main"));
    }

    #[test]
    fn no_ci() {
        assert_eq!(Env::from_pairs(&[]).platform(), Platform::None);
    }

    /// What gitlab-ci-local 4.73 sets in a job (from `env` in a job it ran).
    const GITLAB_CI_LOCAL: &[(&str, &str)] = &[
        ("CI", "true"),
        ("GITLAB_CI", "false"),
        ("CI_JOB_ID", "532558"),
        ("CI_PIPELINE_ID", "1001"),
        ("CI_PIPELINE_IID", "1"),
        ("CI_SERVER_URL", "https://gitlab.com"),
        ("CI_COMMIT_SHA", "4ee4ac450d9e05ca8d26a4e23a6ae9b53da8f9d3"),
        ("CI_COMMIT_BRANCH", "main"),
        ("CI_COMMIT_REF_NAME", "main"),
    ];

    #[test]
    fn gitlab_ci_local_is_gitlab_and_gets_a_job_build_id() {
        let env = Env::from_pairs(GITLAB_CI_LOCAL);
        assert_eq!(env.platform(), Platform::GitLab);
        let b = env.build();
        assert_eq!(b.build_id.as_deref(), Some("gl-532558"));
        assert_eq!(b.branch.as_deref(), Some("main"));
    }

    #[test]
    fn gitlab_without_gitlab_ci_but_ci_server_yes() {
        let env = Env::from_pairs(&[
            ("CI_SERVER", "yes"),
            ("CI_JOB_ID", "7"),
            ("CI_PIPELINE_ID", "3"),
            ("CI_SERVER_URL", "https://gitlab.example.org"),
        ]);
        assert_eq!(env.platform(), Platform::GitLab);
    }

    #[test]
    fn other_environments_are_not_gitlab() {
        // GITLAB_CI=false alone (a developer shell, a test harness): not a job.
        assert_eq!(
            Env::from_pairs(&[("GITLAB_CI", "false")]).platform(),
            Platform::None
        );
        // Job-like CI_* variables without any GitLab marker (Woodpecker-style names).
        let woodpecker = Env::from_pairs(&[
            ("CI", "woodpecker"),
            ("CI_JOB_ID", "5"),
            ("CI_PIPELINE_ID", "9"),
            ("CI_PIPELINE_NUMBER", "9"),
            ("CI_SERVER_URL", "https://ci.example.org"),
            ("CI_COMMIT_SHA", "abc"),
        ]);
        assert_eq!(woodpecker.platform(), Platform::None);
        assert_eq!(woodpecker.build(), CiBuild::default());
        // A GitLab marker without the job variables is not enough either.
        assert_eq!(
            Env::from_pairs(&[("CI_SERVER", "yes"), ("CI_JOB_ID", "5")]).platform(),
            Platform::None
        );
        // GitHub wins when both are set (a GitHub job that exports GitLab variables).
        let mut both = GITLAB_CI_LOCAL.to_vec();
        both.push(("GITHUB_ACTIONS", "true"));
        assert_eq!(Env::from_pairs(&both).platform(), Platform::GitHub);
    }
}
