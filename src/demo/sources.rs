//! The sample project's sources at each build, for the symbol-level change analysis (issue
//! 15): its history as a git bundle (`examples/demo/generate.sh` writes it), cloned into a
//! temp dir and checked out build by build, as a CI runner checks out each commit.

use std::path::Path;
use std::process::Command;

use super::BUILDS;
use crate::changes::{self, Analysis};

/// The project's history, about 60 KB: every build's commit.
const BUNDLE: &[u8] = include_bytes!("../../examples/demo/invoicekit.bundle");

/// A clone of the sample project.
pub struct Sources {
    dir: tempfile::TempDir,
}

fn git(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| format!("git is not available: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "git {} failed: {}",
            args.first().copied().unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Sources {
    /// Clone the embedded history; `Err` says why the demo runs without sources.
    pub fn open() -> Result<Sources, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let bundle = dir.path().join("invoicekit.bundle");
        std::fs::write(&bundle, BUNDLE).map_err(|e| e.to_string())?;
        let bundle = bundle.display().to_string();
        git(
            dir.path(),
            &["clone", "-q", "--no-checkout", &bundle, "invoicekit"],
        )?;
        Ok(Sources { dir })
    }

    /// Build `i` checked out and analysed against the build before it.
    pub fn analyse(&self, i: usize, data_dir: &Path, tests: &[&str]) -> Result<Analysis, String> {
        let repo = self.dir.path().join("invoicekit");
        let b = &BUILDS[i];
        git(&repo, &["checkout", "-q", "-f", b.commit])?;
        let changed: Vec<String> = b.changed_files.iter().map(|s| (*s).to_owned()).collect();
        changes::analyse(&changes::Input {
            dir: &repo,
            data_dir,
            base: i.checked_sub(1).map(|p| BUILDS[p].commit),
            changed_files: &changed,
            tests,
            remember_tree: true,
        })
        .map_err(|e| e.to_string())
    }
}
