//! Symbol-level change analysis (issue 15): which functions, methods and classes a build's
//! diff touches, and how close each test's code gets to them through a name-level call graph.
//!
//! `diff` reads the changed lines, `symbols` parses files with tree-sitter, `cache` keeps parse
//! results by blob id in the data dir, `reach` walks the graph. The analysis is an extra: any
//! trouble (no git, no base, no supported language) is a [`Unavailable`] reason the plan shows
//! in `--explain`, and the features fall back to the file-level ones.

pub mod cache;
pub mod diff;
pub mod reach;
pub mod symbols;

use std::collections::{HashMap, HashSet};
use std::path::Path;

pub use reach::{MAX_HOPS, TestReach};

/// Files larger than this are generated or vendored more often than written: not parsed.
const MAX_FILE_BYTES: u64 = 512 * 1024;
/// A tree with more source files than this is analysed only in its changed files and tests.
const MAX_FILES: usize = 20_000;

/// Why there is no symbol analysis for a build.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("the changed lines are unknown: {0}")]
    Diff(#[from] diff::DiffError),
    #[error(
        "no changed file is in a language the analysis reads (Python, JavaScript, TypeScript, Go)"
    )]
    NoSupportedChange,
    #[error("the changed files were given but the diff from HEAD~1 shows none of them")]
    DiffDisagrees,
}

/// The analysis of one build.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Per test id asked about.
    pub tests: HashMap<String, TestReach>,
    /// The changed definitions, `qual` at `file:line`.
    pub changed: Vec<reach::Changed>,
    /// Files in the analysis, and how many had to be parsed (not in the cache).
    pub files: usize,
    pub parsed: usize,
    /// What the user should know (files that did not parse).
    pub notes: Vec<String>,
}

impl Analysis {
    pub fn get(&self, id: &str) -> Option<&TestReach> {
        self.tests.get(id)
    }
}

/// What to analyse.
pub struct Input<'a> {
    /// The checkout (any directory inside it).
    pub dir: &'a Path,
    /// The data dir, for the parse cache.
    pub data_dir: &'a Path,
    /// The build's base ref, when known; else `HEAD~1`.
    pub base: Option<&'a str>,
    /// The changed files the build reports (the diff is restricted to them).
    pub changed_files: &'a [String],
    pub tests: &'a [&'a str],
}

/// Analyse one build.
pub fn analyse(input: &Input<'_>) -> Result<Analysis, Unavailable> {
    if !input
        .changed_files
        .iter()
        .any(|f| symbols::Lang::of(f).is_some())
    {
        return Err(Unavailable::NoSupportedChange);
    }
    let root_out = diff::git(input.dir, &["rev-parse", "--show-toplevel"])?;
    let root_s = String::from_utf8_lossy(&root_out).trim().to_owned();
    let root = Path::new(&root_s);
    let base = diff::resolve_base(root, input.base)?;
    let wanted: HashSet<&str> = input.changed_files.iter().map(String::as_str).collect();
    let mut hunks = diff::hunks(root, &base)?;
    hunks.retain(|f, _| wanted.contains(f.as_str()) && symbols::Lang::of(f).is_some());
    if hunks.is_empty() {
        return Err(Unavailable::DiffDisagrees);
    }

    // Every tracked source file with its blob id (`git ls-files -s`: mode, blob, stage, path).
    let listing = diff::git(root, &["ls-files", "-s", "-z"])?;
    let mut tracked: Vec<(String, String, symbols::Lang)> = listing
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            let (meta, path) = entry.split_once('\t')?;
            let blob = meta.split(' ').nth(1)?;
            let lang = symbols::Lang::of(path)?;
            Some((path.to_owned(), blob.to_owned(), lang))
        })
        .collect();
    if tracked.len() > MAX_FILES {
        tracked.retain(|(p, ..)| hunks.contains_key(p) || looks_like_test(p));
    }

    let mut cache = cache::Cache::open(input.data_dir);
    let mut files = Vec::with_capacity(tracked.len());
    let mut notes = Vec::new();
    for (path, blob, lang) in tracked {
        let full = root.join(&path);
        // Keyed by the index's blob id, parsed from the working tree: they agree in a CI
        // checkout, and a file edited by the build itself is rare enough to cost one stale
        // entry, not a wrong plan.
        let parsed = cache.get_or(&blob, || {
            let meta = std::fs::metadata(&full).ok()?;
            if meta.len() > MAX_FILE_BYTES {
                return None;
            }
            let src = std::fs::read(&full).ok()?;
            symbols::extract(lang, &src).ok()
        });
        match parsed {
            Some(s) if !s.errors => files.push(reach::File {
                path,
                lang,
                symbols: s,
            }),
            Some(_) => notes.push(format!(
                "{path} did not parse cleanly; its symbols are left out"
            )),
            None => {}
        }
    }
    let parsed = cache.misses;
    cache.save();

    let (changed, at) = reach::changed_symbols(&files, &hunks);
    let graph = reach::Graph::new(&files, &changed, at);
    let tests = input
        .tests
        .iter()
        .map(|id| ((*id).to_owned(), graph.reach(id)))
        .collect();
    Ok(Analysis {
        tests,
        files: files.len(),
        parsed,
        changed,
        notes,
    })
}

fn looks_like_test(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path.contains("test") || path.contains("spec") || name == "conftest.py"
}

#[cfg(test)]
mod tests;
