//! Symbol-level change analysis (issue 15): which functions, methods and classes a build's
//! diff touches, and how close each test's code gets to them through a name-level call graph.
//!
//! `diff` reads the changed lines, `symbols` parses files with tree-sitter, `cache` keeps parse
//! results by blob id in the data dir, `reach` walks the graph. The analysis is an extra: any
//! trouble (no git, no base, no supported language) is a [`Unavailable`] reason the plan shows
//! in `--explain`, and the features fall back to the file-level ones. Where no git diff can be
//! had (replays in a bare source tree, a CI clone too shallow for its base), the changed files
//! are compared definition by definition with the last recorded build's tree (`cache`).

pub mod cache;
pub mod diff;
pub mod reach;
pub mod symbols;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub use reach::{MAX_HOPS, TestReach};

/// Files larger than this are generated or vendored more often than written: not parsed.
const MAX_FILE_BYTES: u64 = 512 * 1024;
/// A tree with more source files than this is analysed only in its changed files and tests.
const MAX_FILES: usize = 20_000;
/// Directory entries a walk without git looks at before it stops: fedtest started outside a
/// checkout (in a home or temp directory) must not read the whole disk.
const MAX_WALK_ENTRIES: usize = 200_000;

/// Why there is no symbol analysis for a build.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error(
        "no changed file is in a language the analysis reads (Python, JavaScript, TypeScript, Go)"
    )]
    NoSupportedChange,
    #[error("the changed lines are unknown ({0}) and no earlier build's tree is recorded")]
    NoDiff(String),
}

/// Where the changed definitions came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeSource {
    /// `git diff` against this commit.
    Diff { base: String },
    /// The changed files compared with the last recorded build's tree (no usable git diff).
    LastRecorded { why: String },
}

/// The analysis of one build.
#[derive(Debug)]
pub struct Analysis {
    /// Per test id asked about.
    pub tests: HashMap<String, TestReach>,
    /// The changed definitions, `qual` at `file:line`.
    pub changed: Vec<reach::Changed>,
    pub source: ChangeSource,
    /// Files in the analysis, and how many had to be parsed (not in the cache).
    pub files: usize,
    pub parsed: usize,
    /// What the user should know (files that did not parse).
    pub notes: Vec<String>,
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis {
            tests: HashMap::new(),
            changed: Vec::new(),
            source: ChangeSource::Diff {
                base: String::new(),
            },
            files: 0,
            parsed: 0,
            notes: Vec::new(),
        }
    }
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
    /// Remember this tree as the last recorded one (`record`: the build is done).
    pub remember_tree: bool,
}

/// A source file of the tree: path (relative to the root), content id, language.
struct Source {
    path: String,
    id: String,
    lang: symbols::Lang,
}

/// The tree's source files from git's index: blob ids for free, no file read.
fn git_listing(root: &Path) -> Result<Vec<Source>, diff::DiffError> {
    let listing = diff::git(root, &["ls-files", "-s", "-z"])?;
    Ok(listing
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            let (meta, path) = entry.split_once('\t')?;
            let blob = meta.split(' ').nth(1)?;
            let lang = symbols::Lang::of(path)?;
            Some(Source {
                path: path.to_owned(),
                id: blob.to_owned(),
                lang,
            })
        })
        .collect())
}

/// Directories a walk of a bare tree skips: dependencies, build output, tool caches.
const SKIP_DIRS: &[&str] = &[
    "node_modules",
    "target",
    "build",
    "dist",
    "vendor",
    "venv",
    "__pycache__",
    "site-packages",
];

/// The tree's source files without git (a bare source tree): walked, identified by a
/// SHA-256 of their content.
fn walk_listing(root: &Path) -> Vec<Source> {
    use sha2::{Digest, Sha256};
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    let mut seen = 0;
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().take(MAX_WALK_ENTRIES - seen).collect();
        seen += entries.len();
        if seen >= MAX_WALK_ENTRIES {
            // Not a source tree: no analysis rather than one of an arbitrary part of it.
            return Vec::new();
        }
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !name.starts_with('.') && !SKIP_DIRS.contains(&name.as_ref()) {
                    dirs.push(e.path());
                }
                continue;
            }
            let Some(lang) = symbols::Lang::of(&name) else {
                continue;
            };
            if !ft.is_file() || e.metadata().map_or(true, |m| m.len() > MAX_FILE_BYTES) {
                continue;
            }
            let Ok(bytes) = std::fs::read(e.path()) else {
                continue;
            };
            let Ok(rel) = e
                .path()
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
            else {
                continue;
            };
            let digest = Sha256::digest(&bytes);
            let id: String = digest[..20].iter().map(|b| format!("{b:02x}")).collect();
            out.push(Source {
                path: rel,
                id: format!("sha256:{id}"),
                lang,
            });
            if out.len() > MAX_FILES {
                return out;
            }
        }
    }
    out
}

/// The analysis of a build run from the checkout in the working directory (`plan` and
/// `record`): `None` when the build's changed files are unknown, else the analysis or why
/// there is none (which only costs the symbol features). `record` passes `remember_tree`: the
/// next build compares with this one's tree when it has no git diff.
pub fn for_build(
    data_dir: &Path,
    changed_files: Option<&[String]>,
    base: Option<&str>,
    tests: &[&str],
    remember_tree: bool,
) -> Option<Result<Analysis, Unavailable>> {
    Some(analyse(&Input {
        dir: Path::new("."),
        data_dir,
        base,
        changed_files: changed_files?,
        tests,
        remember_tree,
    }))
}

/// Analyse one build.
pub fn analyse(input: &Input<'_>) -> Result<Analysis, Unavailable> {
    let supported = input
        .changed_files
        .iter()
        .any(|f| symbols::Lang::of(f).is_some());
    // A record still remembers its tree: the next build may change code and have no git diff.
    if !supported && !input.remember_tree {
        return Err(Unavailable::NoSupportedChange);
    }
    let wanted: HashSet<&str> = input.changed_files.iter().map(String::as_str).collect();
    // The tree and the changed lines: from git when this is a checkout, else a walk of the
    // directory (the changed lines then come from the last recorded tree).
    let repo = diff::git(input.dir, &["rev-parse", "--show-toplevel"])
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out).trim()));
    let (root, mut tree, hunks) = match &repo {
        Ok(root) => {
            let hunks = diff::resolve_base(root, input.base).and_then(|base| {
                let mut h = diff::hunks(root, &base)?;
                h.retain(|f, _| wanted.contains(f.as_str()) && symbols::Lang::of(f).is_some());
                Ok((base, h))
            });
            let tree = git_listing(root).unwrap_or_else(|_| walk_listing(root));
            (root.clone(), tree, hunks.map_err(|e| e.to_string()))
        }
        Err(e) => (
            input.dir.to_path_buf(),
            walk_listing(input.dir),
            Err(e.to_string()),
        ),
    };
    let hunks = match hunks {
        Ok((_, h)) if h.is_empty() => Err("the diff shows none of the changed files".to_owned()),
        other => other,
    };
    if tree.len() > MAX_FILES {
        tree.retain(|s| wanted.contains(s.path.as_str()) || looks_like_test(&s.path));
    }

    let mut cache = cache::Cache::open(input.data_dir);
    // Nothing to compare with: a plan stops here, a record still parses the tree, so the
    // next build has a recorded tree to compare with.
    let nothing_to_compare = !supported || (hunks.is_err() && !cache.has_last_tree());
    if nothing_to_compare && !input.remember_tree {
        return Err(Unavailable::NoDiff(hunks.err().unwrap_or_default()));
    }
    let mut files = Vec::with_capacity(tree.len());
    let mut notes = Vec::new();
    for s in &tree {
        let full = root.join(&s.path);
        let lang = s.lang;
        // Keyed by the index's blob id, parsed from the working tree: they agree in a CI
        // checkout, and a file edited by the build itself is rare enough to cost one stale
        // entry, not a wrong plan.
        let parsed = cache.get_or(&s.id, || {
            let meta = std::fs::metadata(&full).ok()?;
            if meta.len() > MAX_FILE_BYTES {
                return None;
            }
            let src = std::fs::read(&full).ok()?;
            symbols::extract(lang, &src).ok()
        });
        match parsed {
            Some(sym) if !sym.errors => files.push(reach::File {
                path: s.path.clone(),
                lang,
                symbols: sym,
            }),
            Some(_) => notes.push(format!(
                "{} did not parse cleanly; its symbols are left out",
                s.path
            )),
            None => {}
        }
    }
    let parsed = cache.misses;
    if nothing_to_compare {
        cache.save(Some(ids_of(&tree)));
        return Err(match hunks {
            _ if !supported => Unavailable::NoSupportedChange,
            Err(why) => Unavailable::NoDiff(why),
            Ok(_) => Unavailable::NoDiff(String::new()),
        });
    }
    let (source, (changed, at)) = match hunks {
        Ok((base, h)) => (
            ChangeSource::Diff { base },
            reach::changed_symbols(&files, &h),
        ),
        Err(why) => (
            ChangeSource::LastRecorded { why },
            reach::changed_by_comparison(&files, |p| cache.last_version(p), &wanted),
        ),
    };
    cache.save(input.remember_tree.then(|| ids_of(&tree)));

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
        source,
        notes,
    })
}

fn ids_of(tree: &[Source]) -> HashMap<String, String> {
    tree.iter()
        .map(|s| (s.path.clone(), s.id.clone()))
        .collect()
}

fn looks_like_test(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path.contains("test") || path.contains("spec") || name == "conftest.py"
}

#[cfg(test)]
mod tests;
