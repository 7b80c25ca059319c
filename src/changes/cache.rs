//! Parse results by git blob id, kept in the data dir, so a build re-parses only the files
//! whose content changed. One file (`symbols.json`), owned here; it holds the files of the last
//! tree analysed, so it stays the size of one checkout's symbol table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::symbols::FileSymbols;

/// Bumped when what [`super::symbols::extract`] records changes: older entries are dropped.
const FORMAT: u32 = 1;

#[derive(Default, Serialize, Deserialize)]
struct Stored {
    format: u32,
    /// Blob id → what the file defines. `None`: the file could not be parsed.
    files: HashMap<String, Option<FileSymbols>>,
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

    /// The cached result for `blob`, or `parse()`'s.
    pub fn get_or(
        &mut self,
        blob: &str,
        parse: impl FnOnce() -> Option<FileSymbols>,
    ) -> Option<FileSymbols> {
        if let Some(hit) = self.used.get(blob) {
            return hit.clone();
        }
        let value = match self.stored.files.remove(blob) {
            Some(v) => v,
            None => {
                self.misses += 1;
                parse()
            }
        };
        self.used.insert(blob.to_owned(), value.clone());
        value
    }

    /// Write back this analysis's entries when something was parsed. A data dir that cannot
    /// be written (a read-only cache restore) only costs the next build a cold start.
    pub fn save(self) {
        if self.misses == 0 && self.stored.files.is_empty() {
            return;
        }
        let stored = Stored {
            format: FORMAT,
            files: self.used,
        };
        let Ok(bytes) = serde_json::to_vec(&stored) else {
            return;
        };
        let Some(dir) = self.path.parent() else {
            return;
        };
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir)
            && std::io::Write::write_all(&mut tmp, &bytes).is_ok()
        {
            let _ = tmp.persist(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_round_trip_and_only_the_used_ones_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cache::open(dir.path());
        let one = FileSymbols {
            errors: true,
            ..FileSymbols::default()
        };
        assert_eq!(c.get_or("a", || Some(one.clone())), Some(one.clone()));
        assert_eq!(c.get_or("b", || None), None);
        assert_eq!(c.misses, 2);
        c.save();
        let mut c = Cache::open(dir.path());
        assert_eq!(c.get_or("a", || unreachable!()), Some(one));
        assert_eq!(c.misses, 0);
        c.save(); // "b" was not used: dropped
        let mut c = Cache::open(dir.path());
        assert_eq!(
            c.get_or("b", || Some(FileSymbols::default())),
            Some(FileSymbols::default())
        );
        assert_eq!(c.misses, 1);
    }
}
