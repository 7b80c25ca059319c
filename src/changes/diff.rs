//! The lines a change touched, per file: `git diff -U0` between the build's base and the
//! working tree, read as new-side line ranges (the lines of the files the analysis parses).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Why the diff could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("git is not available: {0}")]
    NoGit(std::io::Error),
    #[error("git {what} failed: {message}")]
    Git { what: String, message: String },
}

/// New-side line ranges changed in a file: `(first, count)`, 1-based; `count == 0` is a
/// deletion just after line `first`.
pub type Hunks = BTreeMap<String, Vec<(u32, u32)>>;

pub(crate) fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, DiffError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(DiffError::NoGit)?;
    if !out.status.success() {
        return Err(DiffError::Git {
            what: args.first().copied().unwrap_or("").to_owned(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out.stdout)
}

/// The commit the build's change is measured from: the merge base of `base` and `HEAD` (as
/// `fedtest`'s changed files are), or `HEAD`'s first parent when only the changed files were
/// given — the base of a push build and of every replayed commit.
pub fn resolve_base(dir: &Path, base: Option<&str>) -> Result<String, DiffError> {
    let out = match base {
        Some(b) => git(dir, &["merge-base", b, "HEAD"])?,
        None => git(
            dir,
            &["rev-parse", "--verify", "--quiet", "HEAD~1^{commit}"],
        )?,
    };
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// Changed line ranges between `base` and the working tree.
pub fn hunks(dir: &Path, base: &str) -> Result<Hunks, DiffError> {
    let out = git(
        dir,
        &[
            "diff",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-renames",
            base,
            "--",
        ],
    )?;
    Ok(parse(&String::from_utf8_lossy(&out)))
}

/// Read unified diff text (`-U0`) into per-file new-side ranges.
pub fn parse(text: &str) -> Hunks {
    let mut hunks = Hunks::new();
    let mut file: Option<String> = None;
    let mut after_old_name = false;
    for line in text.lines() {
        // `+++ ` names a file only right after `--- `; elsewhere it is an added line.
        let header = std::mem::replace(&mut after_old_name, line.starts_with("--- "));
        if let Some(path) = line.strip_prefix("+++ ").filter(|_| header) {
            // `/dev/null` is a deleted file: nothing of it is left to parse.
            file = path
                .strip_prefix("b/")
                .map(|p| p.trim_matches('"').to_owned());
            if let Some(f) = &file {
                hunks.entry(f.clone()).or_default();
            }
        } else if let (Some(f), Some(rest)) = (&file, line.strip_prefix("@@ ")) {
            // `@@ -a,b +c,d @@`: the new side is `+c[,d]` (d defaults to 1).
            let Some(new) = rest.split(' ').find_map(|w| w.strip_prefix('+')) else {
                continue;
            };
            let mut parts = new.splitn(2, ',');
            let first: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let count: u32 = parts
                .next()
                .map_or(Some(1), |s| s.parse().ok())
                .unwrap_or(1);
            hunks.entry(f.clone()).or_default().push((first, count));
        }
    }
    hunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_side_ranges() {
        let text = "diff --git a/inv.py b/inv.py\n--- a/inv.py\n+++ b/inv.py\n@@ -3 +3 @@ def f():\n-    a\n+    b\n@@ -10,2 +10,0 @@\n-x\n-y\n@@ -20,0 +19,3 @@\n+p\n+q\n+r\n\
diff --git a/gone.py b/gone.py\n--- a/gone.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n\
diff --git a/new.py b/new.py\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1,2 @@\n+a\n+b\n";
        let h = parse(text);
        assert_eq!(h["inv.py"], vec![(3, 1), (10, 0), (19, 3)]);
        assert_eq!(h["new.py"], vec![(1, 2)]);
        assert!(!h.contains_key("gone.py"));
    }
}
