//! Errors from reading reports. Each names the report (and, for XML problems, the 1-based
//! line and column) so a user can open the file at the spot.

use std::io;

#[derive(thiserror::Error, Debug)]
pub enum JunitError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },

    #[error("{path}: report is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { path: String, size: u64, limit: u64 },

    #[error("{path}: more than {limit} test cases")]
    TooManyTestCases { path: String, limit: u64 },

    #[error("{path}:{line}:{column}: malformed XML: {message}")]
    Malformed {
        path: String,
        line: u64,
        column: u64,
        message: String,
    },

    #[error("{path}:{line}:{column}: not UTF-8: {message}")]
    Encoding {
        path: String,
        line: u64,
        column: u64,
        message: String,
    },

    #[error(
        "{path}:{line}:{column}: refused a DOCTYPE with an internal subset or external DTD \
         (entity declarations are never expanded; JUnit reports do not need them)"
    )]
    Doctype {
        path: String,
        line: u64,
        column: u64,
    },

    #[error("{path}:{line}:{column}: elements nested deeper than {limit} levels")]
    TooDeep {
        path: String,
        line: u64,
        column: u64,
        limit: usize,
    },

    #[error(
        "{path}:{line}:{column}: not a JUnit report: root element is <{root}>, \
         expected <testsuites> or <testsuite>"
    )]
    NotJunit {
        path: String,
        line: u64,
        column: u64,
        root: String,
    },

    #[error("{path}:{line}:{column}: invalid <testcase>: {message}")]
    InvalidTestCase {
        path: String,
        line: u64,
        column: u64,
        message: String,
    },

    #[error("{path}:{line}:{column}: {message}")]
    ForbiddenCharacter {
        path: String,
        line: u64,
        column: u64,
        message: String,
    },

    #[error("{path}:{line}:{column}: unprintable test {attribute}: {message}")]
    UnprintableName {
        path: String,
        line: u64,
        column: u64,
        attribute: &'static str,
        message: String,
    },

    #[error("{path}: contains no test cases{detail}")]
    NoTestCases { path: String, detail: &'static str },

    #[error("no test cases in {paths}")]
    NoTestCasesIn { paths: String },

    #[error("{pattern}: matches no files")]
    NoMatch { pattern: String },

    #[error("{pattern}: invalid glob pattern: {message}")]
    BadPattern { pattern: String, message: String },
}

impl JunitError {
    /// The report, path or pattern the error is about.
    pub fn path(&self) -> &str {
        match self {
            JunitError::Io { path, .. }
            | JunitError::TooLarge { path, .. }
            | JunitError::TooManyTestCases { path, .. }
            | JunitError::Malformed { path, .. }
            | JunitError::Encoding { path, .. }
            | JunitError::Doctype { path, .. }
            | JunitError::TooDeep { path, .. }
            | JunitError::NotJunit { path, .. }
            | JunitError::InvalidTestCase { path, .. }
            | JunitError::ForbiddenCharacter { path, .. }
            | JunitError::UnprintableName { path, .. }
            | JunitError::NoTestCases { path, .. } => path,
            JunitError::NoTestCasesIn { paths } => paths,
            JunitError::NoMatch { pattern } | JunitError::BadPattern { pattern, .. } => pattern,
        }
    }

    /// 1-based (line, column) of the problem, for errors about a spot in a report.
    pub fn location(&self) -> Option<(u64, u64)> {
        match self {
            JunitError::Malformed { line, column, .. }
            | JunitError::Encoding { line, column, .. }
            | JunitError::Doctype { line, column, .. }
            | JunitError::TooDeep { line, column, .. }
            | JunitError::NotJunit { line, column, .. }
            | JunitError::InvalidTestCase { line, column, .. }
            | JunitError::ForbiddenCharacter { line, column, .. }
            | JunitError::UnprintableName { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}
