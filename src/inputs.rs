//! What a command reads besides JUnit reports: list files (candidates, changed files) and the
//! build's metadata, resolved once — command line > CI environment > git.

use std::path::{Path, PathBuf};

use crate::ci::{Env, ResolvedBuild};
use crate::error::{Error, Result};
use crate::output::Printer;

/// What the command line says about the build; each field given overrides the CI's.
#[derive(Clone, Debug, Default)]
pub struct BuildSpec {
    pub build: Option<String>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// A file listing the changed files, one repository-relative path a line.
    pub changed_files: Option<PathBuf>,
    /// Compute the changed files with git against this base.
    pub base: Option<String>,
}

/// Resolve build metadata. A changed-files file that cannot be read is an input error; git
/// trouble only costs the changed files (with a warning), never the build.
pub fn resolve_build(spec: &BuildSpec, env: &Env, printer: &Printer) -> Result<ResolvedBuild> {
    let ci = env.build();
    let base = spec.base.clone().or(ci.base);
    let changed_files = if let Some(path) = &spec.changed_files {
        Some(read_lines(path, printer)?)
    } else if let Some(base) = &base {
        match crate::git::changed_files(Path::new("."), base) {
            Ok(files) => Some(files),
            Err(e) => {
                printer.warn(&format!("changed files unknown: {e}"));
                None
            }
        }
    } else {
        None
    };
    Ok(ResolvedBuild {
        build_id: spec.build.clone().or(ci.build_id),
        commit: spec
            .commit
            .clone()
            .or(ci.commit)
            .or_else(|| crate::git::head_commit(Path::new("."))),
        branch: spec.branch.clone().or(ci.branch),
        changed_files,
        base,
    })
}

/// Read a list file: one entry a line, blank lines and surrounding white space ignored;
/// `-` reads standard input. A line that is not UTF-8 is skipped with a warning, not an error
/// (issue 11): one odd path in a runner's collection must not fail the step, as no other fault
/// of `plan` does.
pub fn read_lines(path: &Path, printer: &Printer) -> Result<Vec<String>> {
    let (bytes, label) = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|e| Error::input("<stdin>", e.to_string()))?;
        (bytes, "<stdin>".to_owned())
    } else {
        let bytes =
            std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
        (bytes, path.display().to_string())
    };
    let mut lines = Vec::new();
    let mut skipped: Vec<usize> = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        match std::str::from_utf8(line) {
            Ok(l) => {
                let l = l.trim();
                if !l.is_empty() {
                    lines.push(l.to_owned());
                }
            }
            Err(_) => skipped.push(i + 1),
        }
    }
    if !skipped.is_empty() {
        let shown: Vec<String> = skipped.iter().take(5).map(usize::to_string).collect();
        printer.warn(&format!(
            "{label}: skipped {} line{} that {} not UTF-8 (line {}{})",
            skipped.len(),
            if skipped.len() == 1 { "" } else { "s" },
            if skipped.len() == 1 { "is" } else { "are" },
            shown.join(", "),
            if skipped.len() > 5 { ", …" } else { "" }
        ));
    }
    Ok(lines)
}
