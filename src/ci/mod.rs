//! The CI environment fedtest runs in: which platform, and the build's metadata.

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
        } else if self.get("GITLAB_CI") == Some("true") {
            Platform::GitLab
        } else {
            Platform::None
        }
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
}
