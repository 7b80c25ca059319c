//! Parse results by content id (the git blob id, or a SHA-256 of the content outside a git
//! checkout), kept in the data dir, so a build re-parses only the files whose content changed.
//! One file (`symbols.json`), owned here. It also remembers the tree of the last recorded
//! build (path → content id, and those files' entries): where no git diff can be had (a bare
//! source tree, a clone too shallow for the base), the changed files are compared with it
//! definition by definition. It holds the files of at most two trees, so it stays the size of
//! a checkout's symbol table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::symbols::FileSymbols;

/// Bumped when what [`super::symbols::extract`] records changes: older entries are dropped.
const FORMAT: u32 = 3;

#[derive(Default, Serialize, Deserialize)]
struct Stored {
    format: u32,
    /// Content id → what the file defines. `None`: the file could not be parsed.
    files: HashMap<String, Option<FileSymbols>>,
    /// The last recorded build's tree: path → content id.
    #[serde(default)]
    last_tree: HashMap<String, String>,
}

/// The cache as read at the start of an analysis.
pub struct Cache {
    path: PathBuf,
    stored: Stored,
    /// Entries of this analysis's tree, written back by [`Cache::save`].
    used: HashMap<String, Option<FileSymbols>>,
    pub misses: usize,
}

impl Cache {
    /// Open the cache of `data_dir`; an unreadable or older one starts empty.
    pub fn open(data_dir: &Path) -> Cache {
        let path = data_dir.join("symbols.json");
        let stored = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Stored>(&b).ok())
            .filter(|s| s.format == FORMAT)
            .unwrap_or_default();
        Cache {
            path,
            stored,
            used: HashMap::new(),
            misses: 0,
        }
    }

    /// The cached result for content `id`, or `parse()`'s.
    pub fn get_or(
        &mut self,
        id: &str,
        parse: impl FnOnce() -> Option<FileSymbols>,
    ) -> Option<FileSymbols> {
        if let Some(hit) = self.used.get(id) {
            return hit.clone();
        }
        let value = match self.stored.files.get(id) {
            Some(v) => v.clone(),
            None => {
                self.misses += 1;
                parse()
            }
        };
        self.used.insert(id.to_owned(), value.clone());
        value
    }

    /// What `path` defined in the last recorded build's tree, if it was there and parsed.
    pub fn last_version(&self, path: &str) -> Option<&FileSymbols> {
        let id = self.stored.last_tree.get(path)?;
        self.stored.files.get(id)?.as_ref()
    }

    /// Whether a last recorded tree is known.
    pub fn has_last_tree(&self) -> bool {
        !self.stored.last_tree.is_empty()
    }

    /// Write back this analysis's entries; with `tree` (what `record` passes), that tree becomes
    /// the last recorded one, else the last recorded tree is kept. A data dir that cannot be
    /// written (a read-only cache restore) only costs the next build a cold start.
    pub fn save(self, tree: Option<HashMap<String, String>>) {
        let Cache {
            path,
            mut stored,
            mut used,
            misses,
        } = self;
        let last_tree = match tree {
            Some(t) => t,
            None => {
                for id in stored.last_tree.values() {
                    if let Some(v) = stored.files.remove(id) {
                        used.entry(id.clone()).or_insert(v);
                    }
                }
                std::mem::take(&mut stored.last_tree)
            }
        };
        let unchanged = misses == 0
            && last_tree == stored.last_tree
            && used.len() == stored.files.len()
            && used.keys().all(|k| stored.files.contains_key(k));
        if unchanged {
            return;
        }
        let stored = Stored {
            format: FORMAT,
            files: used,
            last_tree,
        };
        let Ok(bytes) = serde_json::to_vec(&stored) else {
            return;
        };
        let Some(dir) = path.parent() else {
            return;
        };
        // A first plan runs before any record has made the data dir: keep its parses too.
        let _ = std::fs::create_dir_all(dir);
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir)
            && std::io::Write::write_all(&mut tmp, &bytes).is_ok()
        {
            let _ = tmp.persist(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> FileSymbols {
        FileSymbols {
            errors: true,
            ..FileSymbols::default()
        }
    }

    #[test]
    fn entries_survive_a_round_trip_and_only_the_used_ones_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cache::open(dir.path());
        assert_eq!(c.get_or("a", || Some(one())), Some(one()));
        assert_eq!(c.get_or("b", || None), None);
        assert_eq!(c.misses, 2);
        c.save(None);
        let mut c = Cache::open(dir.path());
        assert_eq!(c.get_or("a", || unreachable!()), Some(one()));
        assert_eq!(c.misses, 0);
        c.save(None); // "b" was not used: dropped
        let mut c = Cache::open(dir.path());
        assert_eq!(
            c.get_or("b", || Some(FileSymbols::default())),
            Some(FileSymbols::default())
        );
        assert_eq!(c.misses, 1);
    }

    #[test]
    fn the_last_recorded_tree_outlives_plans_until_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cache::open(dir.path());
        c.get_or("v1", || Some(one()));
        c.save(Some(HashMap::from([("a.py".to_owned(), "v1".to_owned())])));
        // A plan of the next build sees a.py's new content; the recorded tree stays.
        let mut c = Cache::open(dir.path());
        assert!(c.has_last_tree());
        c.get_or("v2", || Some(FileSymbols::default()));
        assert_eq!(c.last_version("a.py"), Some(&one()));
        c.save(None);
        let c = Cache::open(dir.path());
        assert_eq!(c.last_version("a.py"), Some(&one()));
        // The build's record makes its tree the last one.
        let mut c = Cache::open(dir.path());
        c.get_or("v2", || unreachable!());
        c.save(Some(HashMap::from([("a.py".to_owned(), "v2".to_owned())])));
        let c = Cache::open(dir.path());
        assert_eq!(c.last_version("a.py"), Some(&FileSymbols::default()));
    }
}
