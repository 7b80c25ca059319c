//! Typed errors; each variant knows its exit code (see [`crate::exit_codes`]).

use std::path::PathBuf;

use crate::exit_codes;

/// Errors that end a command. Messages are lowercase fragments that chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Junit(#[from] crate::junit::JunitError),

    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },

    #[error("{0}")]
    Usage(String),

    #[error("configuration {path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error(transparent)]
    Store(#[from] crate::history::StoreError),

    #[error("{0}")]
    Internal(String),

    #[error("cannot write output: {0}")]
    Output(std::io::Error),

    /// The exit code of a test command `fedtest run` ran; it has spoken for itself.
    #[error("the test command exited with {0}")]
    Verdict(i32),

    /// `import` stopped early; what it recorded before stays. The source is an
    /// `import::ImportError`, kept as a trait object so this enum sits below `import` (which
    /// uses it), with `history` and `junit`, whose errors it wraps.
    #[error("import stopped: {source} ({progress}; the same command resumes)")]
    Import {
        source: Box<dyn std::error::Error + Send + Sync>,
        progress: String,
    },

    /// `gate`: a test that is not quarantined failed, or nothing ran.
    #[error("{0}")]
    TestsFailed(String),
}

impl Error {
    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Junit(_) | Error::Input { .. } => exit_codes::BAD_INPUT,
            Error::Usage(_) | Error::Config { .. } => exit_codes::USAGE,
            Error::TestsFailed(_) => exit_codes::TESTS_FAILED,
            Error::Import { .. } => exit_codes::REMOTE,
            Error::Store(e) if e.is_corruption() => exit_codes::STORE,
            // `fedtest plan | head` closing the pipe early is not a failure.
            Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit_codes::OK,
            Error::Store(_) | Error::Internal(_) | Error::Output(_) => exit_codes::INTERNAL,
            Error::Verdict(code) => {
                if (1..=255).contains(code) {
                    *code
                } else {
                    exit_codes::INTERNAL
                }
            }
        }
    }

    pub fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Input {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and each of its causes, joined with `: `: reqwest's errors hide the cause
/// (connection refused, timeout) in their source chain.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}
