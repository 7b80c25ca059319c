//! The JUnit reports inside a CI artifact (a zip), read in memory with the same streaming
//! reader `fedtest record` uses.

use std::io::{BufReader, Read, Seek};

use crate::junit::{self, Attempt, JunitError, Limits};

/// Why an artifact gave no reports.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{label}: not a readable zip: {message}")]
    Zip { label: String, message: String },
    #[error(transparent)]
    Junit(#[from] JunitError),
}

/// The attempts of every JUnit report in the zip: its `*.xml` entries, in archive order. XML
/// that is not a JUnit report (coverage, a config file) or holds no test case is passed over;
/// a malformed report is an error, named `label/<entry>`, with its line and column.
pub fn read_zip<R: Read + Seek>(
    zip: R,
    label: &str,
    limits: &Limits,
) -> Result<Vec<Attempt>, ArtifactError> {
    let zip_err = |e: zip::result::ZipError| ArtifactError::Zip {
        label: label.to_owned(),
        message: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(zip).map_err(zip_err)?;
    let mut attempts = Vec::new();
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(zip_err)?;
        let name = entry.name().map_err(zip_err)?.into_owned();
        if entry.is_dir() || !name.to_ascii_lowercase().ends_with(".xml") {
            continue;
        }
        let path = format!("{label}/{name}");
        // The declared size is checked first; the reader counts the real bytes as well.
        if entry.size() > limits.max_file_bytes {
            return Err(JunitError::TooLarge {
                path,
                size: entry.size(),
                limit: limits.max_file_bytes,
            }
            .into());
        }
        match junit::read_from(BufReader::with_capacity(64 * 1024, entry), &path, limits) {
            Ok(found) => attempts.extend(found),
            Err(JunitError::NotJunit { .. } | JunitError::NoTestCases { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(attempts)
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;

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

    #[test]
    fn reads_reports_and_passes_over_other_xml() {
        let z = zip_of(&[
            ("reports/TEST-a.xml", REPORT),
            ("coverage.xml", "<coverage line-rate=\"1\"/>"),
            ("empty.XML", "<testsuites/>"),
            ("log.txt", "not xml at all <"),
        ]);
        let attempts = read_zip(z, "junit", &Limits::default()).unwrap();
        let ids: Vec<String> = attempts.iter().map(Attempt::id).collect();
        assert_eq!(ids, ["a.B::t1", "a.B::t2"]);
    }

    #[test]
    fn a_malformed_report_is_named_with_its_entry() {
        let z = zip_of(&[("r/bad.xml", "<testsuite><testcase name=\"x\"></testsuite>")]);
        let e = read_zip(z, "junit-results", &Limits::default()).unwrap_err();
        assert!(
            e.to_string().starts_with("junit-results/r/bad.xml:1:"),
            "{e}"
        );
    }

    #[test]
    fn not_a_zip() {
        let e = read_zip(Cursor::new(b"PK nope".to_vec()), "a", &Limits::default()).unwrap_err();
        assert!(matches!(e, ArtifactError::Zip { .. }), "{e}");
    }

    #[test]
    fn oversized_entries_are_refused_before_reading() {
        let z = zip_of(&[("big.xml", REPORT)]);
        let limits = Limits {
            max_file_bytes: 10,
            ..Limits::default()
        };
        let e = read_zip(z, "a", &limits).unwrap_err();
        assert!(
            matches!(e, ArtifactError::Junit(JunitError::TooLarge { .. })),
            "{e}"
        );
    }
}
