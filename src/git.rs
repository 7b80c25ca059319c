//! Changed files from git (the `git` CLI: present on every CI runner, and it understands
//! every repository layout, including shallow clones, worktrees and submodules).

use std::path::Path;
use std::process::Command;

/// Why changed files could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git is not available: {0}")]
    NoGit(std::io::Error),
    #[error("{dir} is not inside a git repository")]
    NotARepo { dir: String },
    #[error(
        "base {base} is not in this clone (it is shallow); fetch more history, e.g. `fetch-depth: 0` in actions/checkout or `GIT_DEPTH: 0` in GitLab"
    )]
    ShallowBase { base: String },
    #[error("git diff against {base} failed: {message}")]
    Diff { base: String, message: String },
}

fn git(dir: &Path, args: &[&str]) -> Result<std::process::Output, GitError> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(GitError::NoGit)
}

/// `HEAD`'s commit, when `dir` is in a git repository.
pub fn head_commit(dir: &Path) -> Option<String> {
    let out = git(dir, &["rev-parse", "HEAD"]).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Files changed between the merge base of `base` and `HEAD`, and `HEAD`.
pub fn changed_files(dir: &Path, base: &str) -> Result<Vec<String>, GitError> {
    let inside = git(dir, &["rev-parse", "--is-inside-work-tree"])?;
    if !inside.status.success() {
        return Err(GitError::NotARepo {
            dir: dir.display().to_string(),
        });
    }
    let exists = git(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{base}^{{commit}}"),
        ],
    )?;
    if !exists.status.success() {
        let shallow = git(dir, &["rev-parse", "--is-shallow-repository"])?;
        if String::from_utf8_lossy(&shallow.stdout).trim() == "true" {
            return Err(GitError::ShallowBase {
                base: base.to_owned(),
            });
        }
        return Err(GitError::Diff {
            base: base.to_owned(),
            message: "no such commit or ref".into(),
        });
    }
    let out = git(
        dir,
        &[
            "diff",
            "--name-only",
            "--no-renames",
            "-z",
            &format!("{base}...HEAD"),
        ],
    )?;
    if !out.status.success() {
        let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        // A shallow clone may hold the base but not the merge base.
        if message.contains("no merge base") {
            return Err(GitError::ShallowBase {
                base: base.to_owned(),
            });
        }
        return Err(GitError::Diff {
            base: base.to_owned(),
            message,
        });
    }
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect())
}
