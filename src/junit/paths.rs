//! Turning the report arguments a user gives into a list of files.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::JunitError;

/// Expand files, directories (all `*.xml` below them, recursively) and glob patterns into
/// a sorted, de-duplicated list of files. A pattern or path that matches nothing is an
/// error naming it.
///
/// An existing path is taken literally even if it contains glob characters (`test[1].xml`).
/// Symlinked files are followed; symlinked directories are not descended into, so a link
/// cycle cannot loop.
pub fn expand_paths(inputs: &[String]) -> Result<Vec<PathBuf>, JunitError> {
    let mut files = Vec::new();
    for input in inputs {
        let before = files.len();
        let path = Path::new(input);
        if path.exists() {
            add_path(path, input, &mut files)?;
        } else if input.contains(['*', '?', '[']) {
            let entries = glob::glob(input).map_err(|e| JunitError::BadPattern {
                pattern: input.clone(),
                message: e.msg.to_owned(),
            })?;
            for entry in entries {
                let entry = entry.map_err(|e| JunitError::Io {
                    path: e.path().display().to_string(),
                    source: io::Error::new(e.error().kind(), e.error().to_string()),
                })?;
                add_path(&entry, input, &mut files)?;
            }
        } else {
            return Err(JunitError::Io {
                path: input.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "no such file or directory"),
            });
        }
        if files.len() == before {
            return Err(JunitError::NoMatch {
                pattern: input.clone(),
            });
        }
    }
    files.sort();
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    Ok(files)
}

fn add_path(path: &Path, input: &str, files: &mut Vec<PathBuf>) -> Result<(), JunitError> {
    let meta = fs::metadata(path).map_err(|source| JunitError::Io {
        path: path.display().to_string(),
        source,
    })?;
    if meta.is_dir() {
        walk(path, files).map_err(|source| JunitError::Io {
            path: input.to_owned(),
            source,
        })
    } else {
        files.push(path.to_path_buf());
        Ok(())
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries = fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&path, files)?;
        } else if is_xml(&path) && (kind.is_file() || path.is_file()) {
            files.push(path);
        }
    }
    Ok(())
}

fn is_xml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("xml"))
}
