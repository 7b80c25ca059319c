//! The JUnit reports inside a CI artifact (a zip), read in memory with the same streaming
//! reader `fedtest record` uses, within bounds.
//!
//! An artifact is written by whoever ran the workflow, so everything it can make fedtest do is
//! bounded (issue 18): entries per zip (checked in the end-of-central-directory record, before
//! the zip crate reads the directory), bytes unzipped per artifact and per import, test-case
//! rows per run, and the time spent unzipping and parsing per run. A zip whose entries all
//! point at the same compressed data inflates each of them, so the unzipped bytes are counted
//! as they are read, not taken from the declared sizes. Each report is grouped into the run's
//! results as soon as it is read ([`junit::Grouper`]), so memory holds one report's rows and
//! one tally per distinct test, whatever the number of entries.

use std::cell::Cell;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::junit::{self, Grouper, JunitError};

/// Bounds on what the artifacts of one import may cost to read.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// Bytes unzipped from one artifact (all its entries).
    pub max_unzipped_bytes: u64,
    /// Bytes unzipped from all artifacts of the import.
    pub max_import_unzipped_bytes: u64,
    /// Entries of one artifact (files and directories).
    pub max_entries: u64,
    /// `<testcase>` rows (retries included) of one run, over all its artifacts and reports.
    pub max_test_cases: u64,
    /// Time spent unzipping and parsing one run's artifacts.
    pub max_run_time: Duration,
}

impl Default for Bounds {
    /// Sized from real suites: a 100,000-test suite writes 30–100 MB of JUnit XML (more with
    /// captured output) in one to a few thousand files (Surefire: two per test class), and
    /// parses in about a second here.
    fn default() -> Self {
        Bounds {
            max_unzipped_bytes: 2 * 1024 * 1024 * 1024,
            max_import_unzipped_bytes: 64 * 1024 * 1024 * 1024,
            max_entries: 50_000,
            max_test_cases: 500_000,
            max_run_time: Duration::from_secs(120),
        }
    }
}

/// The bound an artifact went over; its message names the option that sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    UnzippedBytes(u64),
    ImportUnzippedBytes(u64),
    Entries { found: u64, limit: u64 },
    TestCases(u64),
    RunTime(Duration),
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::UnzippedBytes(b) => {
                write!(f, "unzips to more than {} (--max-unzipped-mib)", mib(*b))
            }
            Bound::ImportUnzippedBytes(b) => write!(
                f,
                "the artifacts of this import unzip to more than {} (--max-import-unzipped-mib)",
                mib(*b)
            ),
            Bound::Entries { found, limit } => write!(
                f,
                "has {found} entries, more than {limit} (--max-zip-entries)"
            ),
            Bound::TestCases(n) => {
                write!(
                    f,
                    "holds more than {n} test cases for one run (--max-test-cases)"
                )
            }
            Bound::RunTime(d) => write!(
                f,
                "took longer than {}s to unzip and read (--max-read-seconds)",
                d.as_secs()
            ),
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

/// Why an artifact gave no reports.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{label}: not a readable zip: {message}")]
    Zip { label: String, message: String },
    #[error(transparent)]
    Junit(#[from] JunitError),
    #[error("{label}: skipped, it {bound}")]
    Bound { label: String, bound: Bound },
}

/// What one run's reading has used of its bounds, carried from one artifact to the next.
pub struct Meter {
    bounds: Bounds,
    /// Unzipped bytes of the whole import, shared by its runs.
    import_bytes: Arc<AtomicU64>,
    rows: u64,
    time_used: Duration,
}

impl Meter {
    pub fn new(bounds: Bounds, import_bytes: Arc<AtomicU64>) -> Self {
        Meter {
            bounds,
            import_bytes,
            rows: 0,
            time_used: Duration::ZERO,
        }
    }
}

/// Counts the bytes read through it and the time, and fails the read past a bound (which it
/// remembers, so the caller can tell a bound from a broken report).
struct Counted<'a, R> {
    inner: R,
    /// Bytes this artifact may still unzip.
    left: &'a Cell<u64>,
    import: &'a AtomicU64,
    import_cap: u64,
    deadline: Instant,
    hit: &'a Cell<Option<Bound>>,
    bounds: &'a Bounds,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let fail = |bound| {
            self.hit.set(Some(bound));
            Err(std::io::Error::other(bound.to_string()))
        };
        if Instant::now() > self.deadline {
            return fail(Bound::RunTime(self.bounds.max_run_time));
        }
        // Never more than the bound allows, so an entry cannot overshoot by a whole buffer.
        let room = self.left.get().min(buf.len() as u64) as usize;
        if room == 0 && !buf.is_empty() {
            // One byte more tells an entry that ends exactly at the bound from one that goes on.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => fail(Bound::UnzippedBytes(self.bounds.max_unzipped_bytes)),
            };
        }
        let n = self.inner.read(&mut buf[..room])?;
        self.left.set(self.left.get() - n as u64);
        let total = self.import.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total > self.import_cap {
            return fail(Bound::ImportUnzippedBytes(self.import_cap));
        }
        Ok(n)
    }
}

/// Read every JUnit report of the zip — its `*.xml` entries, in archive order — into
/// `grouper`. XML that is not a JUnit report (coverage, a config file) or holds no test case
/// is passed over; a malformed report is an error, named `label/<entry>`, with its line and
/// column; an artifact over one of the bounds is [`ArtifactError::Bound`]. Returns the rows
/// read.
pub fn read_zip<R: Read + Seek>(
    mut zip: R,
    label: &str,
    limits: &junit::Limits,
    meter: &mut Meter,
    grouper: &mut Grouper,
) -> Result<u64, ArtifactError> {
    let zip_err = |e: zip::result::ZipError| ArtifactError::Zip {
        label: label.to_owned(),
        message: e.to_string(),
    };
    let bound = |bound| ArtifactError::Bound {
        label: label.to_owned(),
        bound,
    };
    let bounds = meter.bounds.clone();
    // The zip crate reads the whole central directory when it opens the archive, one
    // allocation per entry it declares: check the count before.
    let declared = declared_entries(&mut zip).map_err(|e| ArtifactError::Zip {
        label: label.to_owned(),
        message: e.to_string(),
    })?;
    if declared > bounds.max_entries {
        return Err(bound(Bound::Entries {
            found: declared,
            limit: bounds.max_entries,
        }));
    }
    let mut archive = zip::ZipArchive::new(zip).map_err(zip_err)?;
    if archive.len() as u64 > bounds.max_entries {
        return Err(bound(Bound::Entries {
            found: archive.len() as u64,
            limit: bounds.max_entries,
        }));
    }
    // No zip writer makes entries that share their data; a zip bomb does, so that each entry
    // inflates the same compressed bytes again.
    if archive.has_overlapping_entries().map_err(zip_err)? {
        return Err(ArtifactError::Zip {
            label: label.to_owned(),
            message: "entries share their data (a zip bomb), refused".to_owned(),
        });
    }
    let started = Instant::now();
    let time_left = bounds.max_run_time.saturating_sub(meter.time_used);
    let deadline = started + time_left;
    let left = Cell::new(bounds.max_unzipped_bytes);
    let hit = Cell::new(None);
    let mut rows = 0u64;
    let result = (|| -> Result<(), ArtifactError> {
        for i in 0..archive.len() {
            let entry = archive.by_index(i).map_err(zip_err)?;
            let name = entry.name().map_err(zip_err)?.into_owned();
            if entry.is_dir() || !name.to_ascii_lowercase().ends_with(".xml") {
                continue;
            }
            let path = format!("{label}/{}", printable(&name));
            // The declared size is checked first; the reader counts the real bytes as well.
            if entry.size() > limits.max_file_bytes {
                return Err(JunitError::TooLarge {
                    path,
                    size: entry.size(),
                    limit: limits.max_file_bytes,
                }
                .into());
            }
            let rows_left = bounds.max_test_cases.saturating_sub(meter.rows + rows);
            let entry_limits = junit::Limits {
                max_test_cases: rows_left,
                ..limits.clone()
            };
            let counted = Counted {
                inner: entry,
                left: &left,
                import: &meter.import_bytes,
                import_cap: bounds.max_import_unzipped_bytes,
                deadline,
                hit: &hit,
                bounds: &bounds,
            };
            let read = junit::read_from(
                BufReader::with_capacity(64 * 1024, counted),
                &path,
                &entry_limits,
            );
            if let Some(b) = hit.get() {
                return Err(bound(b));
            }
            match read {
                Ok(found) => {
                    rows += found.len() as u64;
                    grouper.add(found);
                }
                Err(JunitError::TooManyTestCases { .. }) => {
                    return Err(bound(Bound::TestCases(bounds.max_test_cases)));
                }
                Err(JunitError::NotJunit { .. } | JunitError::NoTestCases { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            if Instant::now() > deadline {
                return Err(bound(Bound::RunTime(bounds.max_run_time)));
            }
        }
        Ok(())
    })();
    meter.time_used += started.elapsed();
    meter.rows += rows;
    result.map(|()| rows)
}

/// A zip entry name as it may appear in a message: control characters escaped.
pub fn printable(name: &str) -> String {
    if name.chars().any(char::is_control) {
        name.escape_debug().to_string()
    } else {
        name.to_owned()
    }
}

const EOCD: &[u8; 4] = b"PK\x05\x06";
const ZIP64_LOCATOR: &[u8; 4] = b"PK\x06\x07";
const ZIP64_EOCD: &[u8; 4] = b"PK\x06\x06";

/// The number of entries the archive declares: the largest count among the end-of-central-
/// directory records in its last 64 KiB (the zip crate may settle on any of them), zip64
/// records included. An archive without one is left to the zip crate to refuse.
fn declared_entries<R: Read + Seek>(zip: &mut R) -> std::io::Result<u64> {
    let len = zip.seek(SeekFrom::End(0))?;
    // 22-byte record plus a comment of up to 65,535 bytes.
    let tail_len = len.min(22 + 65_535);
    zip.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    zip.read_exact(&mut tail)?;
    let mut most = 0u64;
    for at in (0..tail.len().saturating_sub(21)).filter(|&i| tail[i..].starts_with(EOCD)) {
        let u16_at = |o: usize| u64::from(u16::from_le_bytes([tail[at + o], tail[at + o + 1]]));
        let mut count = u16_at(8).max(u16_at(10));
        if count == 0xFFFF && at >= 20 && tail[at - 20..].starts_with(ZIP64_LOCATOR) {
            let offset = u64::from_le_bytes(tail[at - 12..at - 4].try_into().expect("8 bytes"));
            let mut record = [0u8; 40];
            if offset.checked_add(40).is_some_and(|end| end <= len) {
                zip.seek(SeekFrom::Start(offset))?;
                zip.read_exact(&mut record)?;
                if record.starts_with(ZIP64_EOCD) {
                    let on_disk = u64::from_le_bytes(record[24..32].try_into().expect("8"));
                    let total = u64::from_le_bytes(record[32..40].try_into().expect("8"));
                    count = on_disk.max(total);
                }
            }
        }
        most = most.max(count);
    }
    zip.seek(SeekFrom::Start(0))?;
    Ok(most)
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;
    use crate::junit::Limits;

    fn zip_of(files: &[(&str, &str)]) -> Cursor<Vec<u8>> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in files {
            w.start_file(*name, opts).unwrap();
            w.write_all(text.as_bytes()).unwrap();
        }
        let mut c = w.finish().unwrap();
        c.set_position(0);
        c
    }

    const REPORT: &str = r#"<testsuite name="s"><testcase classname="a.B" name="t1" time="1.5"/>
        <testcase classname="a.B" name="t2"><failure message="x"/></testcase></testsuite>"#;

    fn meter(bounds: Bounds) -> Meter {
        Meter::new(bounds, Arc::new(AtomicU64::new(0)))
    }

    fn read(
        z: Cursor<Vec<u8>>,
        limits: &Limits,
        bounds: Bounds,
    ) -> Result<Vec<String>, ArtifactError> {
        let mut g = Grouper::default();
        read_zip(z, "a", limits, &mut meter(bounds), &mut g)?;
        Ok(g.finish().into_iter().map(|c| c.id).collect())
    }

    #[test]
    fn reads_reports_and_passes_over_other_xml() {
        let z = zip_of(&[
            ("reports/TEST-a.xml", REPORT),
            ("coverage.xml", "<coverage line-rate=\"1\"/>"),
            ("empty.XML", "<testsuites/>"),
            ("log.txt", "not xml at all <"),
        ]);
        let ids = read(z, &Limits::default(), Bounds::default()).unwrap();
        assert_eq!(ids, ["a.B::t1", "a.B::t2"]);
    }

    #[test]
    fn a_malformed_report_is_named_with_its_entry() {
        let z = zip_of(&[("r/bad.xml", "<testsuite><testcase name=\"x\"></testsuite>")]);
        let mut g = Grouper::default();
        let e = read_zip(
            z,
            "junit-results",
            &Limits::default(),
            &mut meter(Bounds::default()),
            &mut g,
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("junit-results/r/bad.xml:1:"),
            "{e}"
        );
    }

    #[test]
    fn not_a_zip() {
        let e = read(
            Cursor::new(b"PK nope".to_vec()),
            &Limits::default(),
            Bounds::default(),
        )
        .unwrap_err();
        assert!(matches!(e, ArtifactError::Zip { .. }), "{e}");
    }

    #[test]
    fn oversized_entries_are_refused_before_reading() {
        let z = zip_of(&[("big.xml", REPORT)]);
        let limits = Limits {
            max_file_bytes: 10,
            ..Limits::default()
        };
        let e = read(z, &limits, Bounds::default()).unwrap_err();
        assert!(
            matches!(e, ArtifactError::Junit(JunitError::TooLarge { .. })),
            "{e}"
        );
    }

    #[test]
    fn bounds_on_entries_bytes_and_rows() {
        let files: Vec<(String, &str)> = (0..30).map(|i| (format!("r{i}.xml"), REPORT)).collect();
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        let bounds = |f: &dyn Fn(&mut Bounds)| -> Bounds {
            let mut b = Bounds::default();
            f(&mut b);
            b
        };
        let e = read(
            zip_of(&files),
            &Limits::default(),
            bounds(&|b: &mut Bounds| b.max_entries = 29),
        );
        assert!(
            matches!(
                e,
                Err(ArtifactError::Bound {
                    bound: Bound::Entries {
                        found: 30,
                        limit: 29
                    },
                    ..
                })
            ),
            "{e:?}"
        );
        let e = read(
            zip_of(&files),
            &Limits::default(),
            bounds(&|b: &mut Bounds| b.max_test_cases = 59),
        );
        assert!(
            matches!(
                e,
                Err(ArtifactError::Bound {
                    bound: Bound::TestCases(59),
                    ..
                })
            ),
            "{e:?}"
        );
        let size = REPORT.len() as u64;
        let e = read(
            zip_of(&files),
            &Limits::default(),
            bounds(&|b: &mut Bounds| b.max_unzipped_bytes = 30 * size - 1),
        );
        assert!(
            matches!(
                e,
                Err(ArtifactError::Bound {
                    bound: Bound::UnzippedBytes(_),
                    ..
                })
            ),
            "{e:?}"
        );
        // Exactly at the bounds is fine; the same test in 30 reports is one test.
        let ids = read(
            zip_of(&files),
            &Limits::default(),
            bounds(&|b: &mut Bounds| {
                b.max_entries = 30;
                b.max_test_cases = 60;
                b.max_unzipped_bytes = 30 * size;
            }),
        )
        .unwrap();
        assert_eq!(ids, ["a.B::t1", "a.B::t2"]);
    }

    #[test]
    fn the_import_bound_is_shared() {
        let shared = Arc::new(AtomicU64::new(0));
        let bounds = Bounds {
            max_import_unzipped_bytes: REPORT.len() as u64 * 3 / 2,
            ..Bounds::default()
        };
        let mut g = Grouper::default();
        let mut m = Meter::new(bounds.clone(), Arc::clone(&shared));
        read_zip(
            zip_of(&[("a.xml", REPORT)]),
            "a",
            &Limits::default(),
            &mut m,
            &mut g,
        )
        .unwrap();
        let mut m = Meter::new(bounds, shared);
        let e = read_zip(
            zip_of(&[("a.xml", REPORT)]),
            "b",
            &Limits::default(),
            &mut m,
            &mut g,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                ArtifactError::Bound {
                    bound: Bound::ImportUnzippedBytes(_),
                    ..
                }
            ),
            "{e}"
        );
    }
}
