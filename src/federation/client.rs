//! The HTTP client of `fedtest sync` (reqwest over rustls): bounded in time, retries and size.
//!
//! Every call gets the time left of one overall deadline, a 3 s connect timeout, at most two
//! retries with jittered exponential backoff on transient trouble (connection errors, 408, 429,
//! 5xx), and reads at most [`MAX_RESPONSE_BYTES`] of an answer. Redirects are not followed, so
//! the token is only ever sent to the configured server.

use std::time::{Duration, Instant};

use crate::error::error_chain;
use crate::retry;

use super::protocol::{self, GlobalModel, MAX_RESPONSE_BYTES, Rejection};

/// Limits of one sync.
#[derive(Clone, Debug)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// The whole sync, all requests and retries together.
    pub total: Duration,
    pub retries: u32,
    /// First backoff; doubled per retry, jittered ×[0.5, 1.5).
    pub backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(3),
            total: Duration::from_secs(10),
            retries: 2,
            backoff: Duration::from_millis(300),
        }
    }
}

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("invalid server URL {0:?}")]
    Url(String),
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    #[error("the sync took longer than {0:?}")]
    Deadline(Duration),
    #[error("server answered {status}: {reason}: {message}")]
    Refused {
        status: u16,
        reason: String,
        message: String,
    },
    #[error("invalid answer from the server: {0}")]
    BadAnswer(String),
    #[error("cannot start the HTTP client: {0}")]
    Client(String),
}

impl SyncError {
    /// Worth retrying after a pause.
    fn transient(&self) -> bool {
        match self {
            SyncError::Unreachable(_) => true,
            SyncError::Refused { status, .. } => {
                matches!(status, 408 | 429) || (500..600).contains(status)
            }
            _ => false,
        }
    }

    /// The base version is unknown or too old: pull again and recompute.
    pub fn is_conflict(&self) -> bool {
        matches!(self, SyncError::Refused { status: 409, .. })
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    limits: Limits,
    deadline: Instant,
}

/// Answer to a pushed update.
#[derive(Debug)]
pub struct Pushed {
    pub accepted: protocol::Accepted,
    pub status: u16,
}

impl Client {
    /// A client for `server` (`http://host:port` or `https://…`); the deadline starts now.
    pub fn new(server: &str, token: Option<String>, limits: Limits) -> Result<Self, SyncError> {
        let base = server.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base).map_err(|_| SyncError::Url(server.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(SyncError::Url(server.to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(limits.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fedtest/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SyncError::Client(e.to_string()))?;
        Ok(Client {
            http,
            base,
            token,
            deadline: Instant::now() + limits.total,
            limits,
        })
    }

    fn remaining(&self) -> Result<Duration, SyncError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(SyncError::Deadline(self.limits.total))
        } else {
            Ok(left)
        }
    }

    /// `GET /v1/model?schema=N`.
    pub async fn model(&self, schema: u32) -> Result<GlobalModel, SyncError> {
        let url = format!("{}{}?schema={schema}", self.base, protocol::MODEL_PATH);
        let (_, body) = self
            .with_retries(|| {
                let mut r = self.http.get(&url);
                if let Some(t) = &self.token {
                    r = r.bearer_auth(t);
                }
                r
            })
            .await?;
        let m: GlobalModel =
            serde_json::from_slice(&body).map_err(|e| SyncError::BadAnswer(e.to_string()))?;
        let ok = protocol::vector_len(m.schema) == Some(m.vector.len())
            && m.schema == schema
            && m.vector.iter().all(|v| v.is_finite())
            && m.max_norm.is_finite()
            && m.max_norm > 0.0;
        if !ok {
            return Err(SyncError::BadAnswer(
                "model of the wrong schema, length, with non-finite numbers or a max_norm that \
                 is not positive"
                    .into(),
            ));
        }
        Ok(m)
    }

    /// `POST /v1/updates` with exactly `body`.
    pub async fn push(&self, body: &[u8]) -> Result<Pushed, SyncError> {
        let url = format!("{}{}", self.base, protocol::UPDATES_PATH);
        let (status, answer) = self
            .with_retries(|| {
                let mut r = self
                    .http
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_vec());
                if let Some(t) = &self.token {
                    r = r.bearer_auth(t);
                }
                r
            })
            .await?;
        let accepted =
            serde_json::from_slice(&answer).map_err(|e| SyncError::BadAnswer(e.to_string()))?;
        Ok(Pushed { accepted, status })
    }

    async fn with_retries(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), SyncError> {
        let mut attempt = 0;
        loop {
            let result = self.once(request()).await;
            match result {
                Err(e) if e.transient() && attempt < self.limits.retries => {
                    let pause = retry::backoff(self.limits.backoff, attempt);
                    if pause >= self.remaining()? {
                        return Err(e);
                    }
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn once(&self, request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), SyncError> {
        let left = self.remaining()?;
        let mut resp = request
            .timeout(left)
            .send()
            .await
            .map_err(|e| SyncError::Unreachable(error_chain(&e)))?;
        let status = resp.status().as_u16();
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(SyncError::BadAnswer("answer too large".into()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| SyncError::Unreachable(error_chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(SyncError::BadAnswer("answer too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        if (200..300).contains(&status) {
            return Ok((status, body));
        }
        let (reason, message) = match serde_json::from_slice::<Rejection>(&body) {
            Ok(r) => (r.reason, r.message),
            Err(_) => (
                "http".to_owned(),
                String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            ),
        };
        Err(SyncError::Refused {
            status,
            reason,
            message,
        })
    }
}

/// A random update id: 32 hex digits.
pub fn new_update_id() -> String {
    crate::random::bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_hex() {
        let a = new_update_id();
        let b = new_update_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn refuses_bad_urls() {
        assert!(Client::new("ftp://x", None, Limits::default()).is_err());
        assert!(Client::new("not a url", None, Limits::default()).is_err());
        assert!(Client::new("http://127.0.0.1:1/", None, Limits::default()).is_ok());
    }
}
