//! What can go wrong talking to GitHub or GitLab, and which of it ends an import.

use std::time::Duration;

/// The platform an import talks to, for messages and rate-limit headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    GitHub,
    GitLab,
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Service::GitHub => "GitHub",
            Service::GitLab => "GitLab",
        })
    }
}

/// A request that did not give a usable answer (after the retries and rate-limit waits the
/// client allows). Messages are lowercase fragments that chain.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The rate limit resets later than `--max-wait` allows waiting.
    #[error(
        "rate limited by {service} for another {}s, longer than --max-wait {}s",
        wait.as_secs(),
        cap.as_secs()
    )]
    RateLimited {
        service: Service,
        wait: Duration,
        cap: Duration,
    },
    #[error("{service} refused the token ({status}) for {url}: {message}{hint}")]
    Unauthorized {
        service: Service,
        status: u16,
        url: String,
        message: String,
        hint: &'static str,
    },
    #[error("{url}: not found (404){hint}")]
    NotFound { url: String, hint: &'static str },
    #[error("{url}: gone (410)")]
    Gone { url: String },
    /// Blob storage (reached without the token) refused a download: a signed URL that
    /// expired or was revoked, a deleted blob. Only this run is affected.
    #[error(
        "the download was refused by the storage it redirects to ({status}: {message}; the \
         token is not sent there, so this is not about the token) at {url}"
    )]
    Unavailable {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: {detail}")]
    Network { url: String, detail: String },
    #[error("{url}: answer larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: unexpected answer: {detail}")]
    BadAnswer { url: String, detail: String },
    /// The artifacts of this import went over the import-wide bound; the next import goes on.
    #[error("{0}")]
    ImportBound(String),
    #[error("cannot start the HTTP client: {0}")]
    Client(String),
    #[error("{count} runs in a row could not be fetched, the last: {last}")]
    FailingInARow {
        count: usize,
        last: Box<ImportError>,
    },
}

impl ImportError {
    /// Errors that no later request of this import can get past: stop, keep what is
    /// imported, and let a later run resume. Everything else concerns one run.
    pub fn ends_import(&self) -> bool {
        matches!(
            self,
            ImportError::RateLimited { .. }
                | ImportError::Unauthorized { .. }
                | ImportError::Client(_)
                | ImportError::ImportBound(_)
                | ImportError::FailingInARow { .. }
        )
    }
}
