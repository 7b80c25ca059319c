//! The HTTP layer of `fedtest import`: one reqwest client (rustls) shared by the GitHub and
//! GitLab clients, bounded in time, size and retries, and patient with rate limits.
//!
//! - Every request has a connect timeout, a stall (read) timeout and an overall timeout.
//! - Connection trouble, timeouts, 408 and 5xx are retried `retries` times with jittered
//!   exponential backoff; then the request fails and the caller decides (skip the run, or stop).
//! - Rate limits: an answer saying no requests are left (`x-ratelimit-remaining: 0` on GitHub,
//!   `RateLimit-Remaining: 0` on GitLab) closes a gate until the reset time it names, for every
//!   request of the import; a refusal (GitHub 403/429, GitLab 429) waits for `retry-after`, else
//!   the reset, else a minute, then tries again. A wait longer than `max_wait` is an error
//!   ([`ImportError::RateLimited`]) instead: the import stops and a later run resumes.
//! - Answers are read up to a size limit (JSON and downloads have their own); a download larger
//!   than [`SPOOL_BYTES`] goes to an anonymous temp file instead of memory.
//! - Redirects are never followed blindly. API calls follow them only to the same origin (a
//!   renamed repository); a download follows them anywhere but *without* the token — GitHub
//!   answers an artifact download with a 302 to a signed blob-storage URL that must not see it.

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;

use super::error::{ImportError, Service};
use crate::error::error_chain;
use crate::retry;

/// Downloads larger than this are spooled to a temp file instead of held in memory.
pub const SPOOL_BYTES: u64 = 32 * 1024 * 1024;
/// How often one request may be refused for its rate limit before it counts as failed.
const MAX_RATE_LIMIT_ROUNDS: u32 = 10;
/// How long to wait after a rate-limit refusal that names no time (GitHub's documented advice).
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Added to a reset time: it is given in whole seconds and clocks differ a little.
const RESET_MARGIN: Duration = Duration::from_secs(1);
/// Longest wait a server can name (`retry-after`, a reset time): a larger number saturates
/// here instead of overflowing a clock (issue 18). Far beyond any `--max-wait`.
const MAX_SERVER_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Bounds on every request of an import.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The whole request, body included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// No byte for this long is a stalled connection.
    pub read_timeout: Duration,
    /// Retries of a transient failure (connection, timeout, 408, 5xx).
    pub retries: u32,
    /// First backoff; doubled per retry, jittered ×[0.5, 1.5).
    pub backoff: Duration,
    /// The longest rate-limit wait; a longer one ends the import.
    pub max_wait: Duration,
    /// Largest JSON answer.
    pub max_json_bytes: u64,
    /// Largest download (artifact zip, test report).
    pub max_download_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retries: 3,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
            max_json_bytes: 32 * 1024 * 1024,
            max_download_bytes: 512 * 1024 * 1024,
        }
    }
}

/// A downloaded body: in memory, or in an anonymous temp file when large.
pub enum Spool {
    Memory(Cursor<Vec<u8>>),
    File(std::fs::File),
}

impl Spool {
    fn new() -> Self {
        Spool::Memory(Cursor::new(Vec::new()))
    }

    fn append(&mut self, bytes: &[u8], total: u64) -> std::io::Result<()> {
        if let Spool::Memory(c) = self
            && total > SPOOL_BYTES
        {
            let mut file = tempfile::tempfile()?;
            file.write_all(c.get_ref())?;
            *self = Spool::File(file);
        }
        match self {
            Spool::Memory(c) => c.get_mut().extend_from_slice(bytes),
            Spool::File(f) => f.write_all(bytes)?,
        }
        Ok(())
    }

    /// Ready to read from the start.
    fn rewind(mut self) -> std::io::Result<Self> {
        self.seek(SeekFrom::Start(0))?;
        Ok(self)
    }

    /// The bytes of an in-memory body (JSON answers are never spooled to disk).
    fn into_bytes(self) -> std::io::Result<Vec<u8>> {
        match self {
            Spool::Memory(c) => Ok(c.into_inner()),
            Spool::File(mut f) => {
                let mut v = Vec::new();
                f.seek(SeekFrom::Start(0))?;
                f.read_to_end(&mut v)?;
                Ok(v)
            }
        }
    }
}

impl Read for Spool {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Spool::Memory(c) => c.read(buf),
            Spool::File(f) => f.read(buf),
        }
    }
}

impl Seek for Spool {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match self {
            Spool::Memory(c) => c.seek(pos),
            Spool::File(f) => f.seek(pos),
        }
    }
}

/// Called with the length of a rate-limit wait when one starts.
pub type WaitNotice = Arc<dyn Fn(Duration) + Send + Sync>;

/// The import's HTTP client. Shared by the concurrent fetches of one import.
pub struct Http {
    client: reqwest::Client,
    service: Service,
    /// The token header, sent to the API only.
    auth: Option<(HeaderName, HeaderValue)>,
    /// Appended to [`ImportError::Unauthorized`]: what to do about a refused token.
    auth_hint: &'static str,
    limits: Limits,
    /// No request before this instant (a rate-limit window).
    not_before: Mutex<Option<Instant>>,
    on_wait: Mutex<Option<WaitNotice>>,
    requests: AtomicU64,
    bytes: AtomicU64,
}

/// What one request gave.
enum Answer {
    Body(HeaderMap, Spool),
    Redirect(Url),
}

/// Which redirects a download follows.
#[derive(Clone, Copy)]
enum Redirects {
    /// Anywhere, without the token (a signed blob URL).
    AnywhereWithoutToken,
    /// Same origin only, with the token (an API answer).
    SameOrigin,
}

/// Where a request may send the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    Send,
    Omit,
}

impl Http {
    pub fn new(
        service: Service,
        auth: Option<(HeaderName, HeaderValue)>,
        auth_hint: &'static str,
        headers: HeaderMap,
        limits: Limits,
    ) -> Result<Self, ImportError> {
        let client = reqwest::Client::builder()
            .connect_timeout(limits.connect_timeout)
            .read_timeout(limits.read_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fedtest/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .build()
            .map_err(|e| ImportError::Client(error_chain(&e)))?;
        Ok(Http {
            client,
            service,
            auth,
            auth_hint,
            limits,
            not_before: Mutex::new(None),
            on_wait: Mutex::new(None),
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    /// Call `notice` whenever a rate-limit wait starts.
    pub fn set_on_wait(&self, notice: WaitNotice) {
        *self.on_wait.lock().expect("notice lock") = Some(notice);
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Requests sent so far (retries and redirects included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Body bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// GET a JSON document from the API; the headers come along (pagination).
    pub async fn json<T: DeserializeOwned>(
        &self,
        url: &Url,
    ) -> Result<(T, HeaderMap), ImportError> {
        let mut url = url.clone();
        for _ in 0..4 {
            match self
                .request(&url, Token::Send, self.limits.max_json_bytes)
                .await?
            {
                Answer::Body(headers, body) => {
                    let bytes = body.into_bytes().map_err(|e| ImportError::Network {
                        url: shown(&url, Token::Send),
                        detail: e.to_string(),
                    })?;
                    let value =
                        serde_json::from_slice(&bytes).map_err(|e| ImportError::BadAnswer {
                            url: shown(&url, Token::Send),
                            detail: e.to_string(),
                        })?;
                    return Ok((value, headers));
                }
                // Same origin only: the token must not travel anywhere else.
                Answer::Redirect(next) if next.origin() == url.origin() => url = next,
                Answer::Redirect(next) => return Err(other_host(&url, &next)),
            }
        }
        Err(too_many_redirects(&url, Token::Send))
    }

    /// GET a download (artifact zip) up to the download limit, following redirects
    /// anywhere but without the token (GitHub's 302 to blob storage). A refusal there (401,
    /// 403, 404) is [`ImportError::Unavailable`]: not the token's fault, and named without
    /// the signed URL.
    pub async fn download(&self, url: &Url) -> Result<Spool, ImportError> {
        self.download_with(url, Redirects::AnywhereWithoutToken)
            .await
    }

    /// GET a download from the API itself (GitLab's test report): redirects are followed
    /// only to the same origin, with the token, as for [`Http::json`].
    pub async fn download_api(&self, url: &Url) -> Result<Spool, ImportError> {
        self.download_with(url, Redirects::SameOrigin).await
    }

    async fn download_with(&self, url: &Url, redirects: Redirects) -> Result<Spool, ImportError> {
        let mut url = url.clone();
        let mut token = Token::Send;
        for _ in 0..4 {
            match self
                .request(&url, token, self.limits.max_download_bytes)
                .await?
            {
                Answer::Body(_, body) => {
                    return body.rewind().map_err(|e| ImportError::Network {
                        url: shown(&url, token),
                        detail: e.to_string(),
                    });
                }
                Answer::Redirect(next) => match redirects {
                    Redirects::AnywhereWithoutToken => {
                        url = next;
                        token = Token::Omit;
                    }
                    Redirects::SameOrigin if next.origin() == url.origin() => url = next,
                    Redirects::SameOrigin => return Err(other_host(&url, &next)),
                },
            }
        }
        Err(too_many_redirects(&url, token))
    }

    /// One GET with retries and rate-limit waits.
    async fn request(&self, url: &Url, token: Token, cap: u64) -> Result<Answer, ImportError> {
        let mut attempt = 0u32;
        let mut rate_limited = 0u32;
        loop {
            // The rate limit is the API's: a download from elsewhere (blob storage) is not
            // held back by it.
            if token == Token::Send {
                self.wait_for_gate().await?;
            }
            let failure = match self.once(url, token, cap).await {
                Ok(Once::Answer(a)) => return Ok(a),
                Ok(Once::RateLimited(wait)) => {
                    rate_limited += 1;
                    if rate_limited > MAX_RATE_LIMIT_ROUNDS {
                        return Err(ImportError::Status {
                            url: shown(url, token),
                            status: 429,
                            message: format!(
                                "still rate limited after {MAX_RATE_LIMIT_ROUNDS} waits"
                            ),
                        });
                    }
                    if token == Token::Send {
                        // A wait beyond --max-wait is refused by the gate, before anything is
                        // announced.
                        self.close_gate(wait);
                    } else if wait > self.limits.max_wait {
                        return Err(ImportError::RateLimited {
                            service: self.service,
                            wait,
                            cap: self.limits.max_wait,
                        });
                    } else {
                        // Not the API's limit: this request waits alone.
                        tokio::time::sleep(wait).await;
                    }
                    continue;
                }
                Ok(Once::Transient(e)) => e,
                Err(e) => return Err(e),
            };
            if attempt >= self.limits.retries {
                return Err(failure);
            }
            tokio::time::sleep(retry::backoff(self.limits.backoff, attempt)).await;
            attempt += 1;
        }
    }

    async fn once(&self, url: &Url, token: Token, cap: u64) -> Result<Once, ImportError> {
        let mut req = self.client.get(url.clone()).timeout(self.limits.timeout);
        if token == Token::Send
            && let Some((name, value)) = &self.auth
        {
            req = req.header(name, value);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        // reqwest's messages name the URL, with any password in it and a blob URL's
        // signature: it is named once, redacted, instead.
        let network = |e: reqwest::Error| ImportError::Network {
            url: shown(url, token),
            detail: error_chain(&e.without_url()),
        };
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Ok(Once::Transient(network(e))),
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if token == Token::Send {
            // An answer that leaves no requests closes the gate until the reset, for everyone.
            if let Some(wait) = self.exhausted(&headers) {
                self.close_gate(wait);
            }
        }
        if let Some(wait) = self.refusal_wait(status, &headers) {
            return Ok(Once::RateLimited(wait));
        }
        if (300..400).contains(&status) && status != 304 {
            let next = headers
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https"));
            return match next {
                Some(next) => Ok(Once::Answer(Answer::Redirect(next))),
                None => Err(ImportError::BadAnswer {
                    url: shown(url, token),
                    detail: format!("{status} without a usable Location"),
                }),
            };
        }
        if !(200..300).contains(&status) {
            // Error bodies are short; read a little of one for the message.
            let text = match read_body(&mut resp, 4096, true).await {
                Ok((spool, _)) => spool.into_bytes().unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            let message = error_message(&text);
            let url = shown(url, token);
            return match status {
                // The token was not sent: whatever refused this (an expired or revoked signed
                // URL, a blob deleted) is about this download only.
                401 | 403 | 404 if token == Token::Omit => Err(ImportError::Unavailable {
                    url,
                    status,
                    message,
                }),
                401 | 403 => Err(ImportError::Unauthorized {
                    service: self.service,
                    status,
                    url,
                    message,
                    hint: self.auth_hint,
                }),
                404 => Err(ImportError::NotFound { url, hint: "" }),
                410 => Err(ImportError::Gone { url }),
                408 | 500..=599 => Ok(Once::Transient(ImportError::Status {
                    url,
                    status,
                    message,
                })),
                _ => Err(ImportError::Status {
                    url,
                    status,
                    message,
                }),
            };
        }
        if resp.content_length().is_some_and(|n| n > cap) {
            return Err(ImportError::TooLarge {
                url: shown(url, token),
                limit: cap,
            });
        }
        match read_body(&mut resp, cap, false).await {
            Ok((spool, n)) => {
                self.bytes.fetch_add(n, Ordering::Relaxed);
                Ok(Once::Answer(Answer::Body(headers, spool)))
            }
            Err(BodyError::TooLarge) => Err(ImportError::TooLarge {
                url: shown(url, token),
                limit: cap,
            }),
            Err(BodyError::Io(e)) => Err(ImportError::Network {
                url: shown(url, token),
                detail: e.to_string(),
            }),
            Err(BodyError::Net(e)) => Ok(Once::Transient(network(e))),
        }
    }

    /// Wait for a rate-limit window to end, or fail when it ends too late.
    async fn wait_for_gate(&self) -> Result<(), ImportError> {
        let until = *self.not_before.lock().expect("gate lock");
        let Some(until) = until else { return Ok(()) };
        let wait = until.saturating_duration_since(Instant::now());
        if wait > self.limits.max_wait {
            return Err(ImportError::RateLimited {
                service: self.service,
                wait,
                cap: self.limits.max_wait,
            });
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// No request for `wait` from now (a later window already closed stays). A wait beyond
    /// `--max-wait` is not announced: the next request through the gate ends the import.
    fn close_gate(&self, wait: Duration) {
        let wait = wait.min(MAX_SERVER_WAIT);
        let now = Instant::now();
        let until = now.checked_add(wait).unwrap_or(now);
        let mut gate = self.not_before.lock().expect("gate lock");
        // A window already closed until about then (another request saw the same answer)
        // is not announced again.
        let known = gate.is_some_and(|t| t + Duration::from_secs(1) >= until);
        if !known {
            *gate = Some(until);
            drop(gate);
            if wait > self.limits.max_wait {
                return;
            }
            let notice = self.on_wait.lock().expect("notice lock").clone();
            if let Some(notice) = notice {
                notice(wait);
            }
        }
    }

    /// The headers say no request is left in this window: how long until it resets.
    fn exhausted(&self, headers: &HeaderMap) -> Option<Duration> {
        let (remaining, reset) = match self.service {
            Service::GitHub => ("x-ratelimit-remaining", "x-ratelimit-reset"),
            Service::GitLab => ("ratelimit-remaining", "ratelimit-reset"),
        };
        if header_u64(headers, remaining)? != 0 {
            return None;
        }
        until_epoch(header_u64(headers, reset)?)
    }

    /// The answer refuses the request for its rate limit: how long to wait before retrying.
    fn refusal_wait(&self, status: u16, headers: &HeaderMap) -> Option<Duration> {
        let retry_after =
            header_u64(headers, "retry-after").map(|s| Duration::from_secs(s).min(MAX_SERVER_WAIT));
        match self.service {
            // GitHub refuses with 403 or 429; a 403 is a rate limit only when the headers say
            // so (otherwise it is a permission problem).
            Service::GitHub if status == 403 || status == 429 => retry_after
                .or_else(|| self.exhausted(headers))
                .or((status == 429).then_some(DEFAULT_RATE_LIMIT_WAIT)),
            Service::GitLab if status == 429 => retry_after
                .or_else(|| header_u64(headers, "ratelimit-reset").and_then(until_epoch))
                .or(Some(DEFAULT_RATE_LIMIT_WAIT)),
            _ => None,
        }
    }
}

enum Once {
    Answer(Answer),
    RateLimited(Duration),
    Transient(ImportError),
}

enum BodyError {
    TooLarge,
    Io(std::io::Error),
    Net(reqwest::Error),
}

/// Read a body up to `cap` bytes (`truncate`: stop there quietly instead of failing).
async fn read_body(
    resp: &mut reqwest::Response,
    cap: u64,
    truncate: bool,
) -> Result<(Spool, u64), BodyError> {
    let mut spool = Spool::new();
    let mut total = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Net)? {
        let n = chunk.len() as u64;
        if total + n > cap {
            if truncate {
                let keep = (cap - total) as usize;
                spool.append(&chunk[..keep], cap).map_err(BodyError::Io)?;
                return Ok((spool, cap));
            }
            return Err(BodyError::TooLarge);
        }
        total += n;
        spool.append(&chunk, total).map_err(BodyError::Io)?;
    }
    Ok((spool, total))
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// From now until the Unix time `epoch` (plus a margin); zero when it has passed.
/// A reset far in the future saturates at [`MAX_SERVER_WAIT`].
fn until_epoch(epoch: u64) -> Option<Duration> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    Some(
        Duration::from_secs(epoch)
            .saturating_sub(now)
            .saturating_add(RESET_MARGIN)
            .min(MAX_SERVER_WAIT),
    )
}

/// The `message` of a JSON error body (both platforms use that key), else its start.
fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["message", "error", "error_description"] {
            if let Some(m) = v.get(key).and_then(|m| m.as_str()) {
                return m.to_owned();
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(no message)".to_owned()
    } else {
        text.chars().take(200).collect()
    }
}

fn too_many_redirects(url: &Url, token: Token) -> ImportError {
    ImportError::BadAnswer {
        url: shown(url, token),
        detail: "too many redirects".into(),
    }
}

fn other_host(url: &Url, next: &Url) -> ImportError {
    ImportError::BadAnswer {
        url: shown(url, Token::Send),
        detail: format!(
            "redirected to another host ({})",
            next.origin().ascii_serialization()
        ),
    }
}

/// How a URL is named in a message: never with a user name or password (`--api-url
/// https://user:pass@host`); and a URL the token is not sent to — a signed blob-storage
/// URL, whose query is its credential — without its query.
pub fn shown(url: &Url, token: Token) -> String {
    let mut url = url.clone();
    // Only fails for URLs that cannot have credentials.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if token == Token::Omit {
        url.set_query(None);
        url.set_fragment(None);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(service: Service) -> Http {
        Http::new(service, None, "", HeaderMap::new(), Limits::default()).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn epoch_in(secs: u64) -> String {
        (SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + secs)
            .to_string()
    }

    #[test]
    fn github_refusals() {
        let gh = http(Service::GitHub);
        // A 403 with retry-after (secondary rate limit).
        let h = headers(&[("retry-after", "7")]);
        assert_eq!(gh.refusal_wait(403, &h), Some(Duration::from_secs(7)));
        // A 403 with the primary limit used up: until the reset.
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &epoch_in(30)),
        ]);
        let w = gh.refusal_wait(403, &h).unwrap();
        assert!(
            w > Duration::from_secs(29) && w <= Duration::from_secs(32),
            "{w:?}"
        );
        // A plain 403 is a permission problem, not a rate limit.
        let h = headers(&[("x-ratelimit-remaining", "4999")]);
        assert_eq!(gh.refusal_wait(403, &h), None);
        // A 429 without headers: a minute.
        assert_eq!(
            gh.refusal_wait(429, &HeaderMap::new()),
            Some(DEFAULT_RATE_LIMIT_WAIT)
        );
        assert_eq!(gh.refusal_wait(500, &h), None);
    }

    #[test]
    fn gitlab_refusals_and_exhaustion() {
        let gl = http(Service::GitLab);
        let h = headers(&[("Retry-After", "3")]);
        assert_eq!(gl.refusal_wait(429, &h), Some(Duration::from_secs(3)));
        assert_eq!(gl.refusal_wait(403, &h), None);
        let h = headers(&[
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", &epoch_in(10)),
        ]);
        let w = gl.exhausted(&h).unwrap();
        assert!(
            w > Duration::from_secs(9) && w <= Duration::from_secs(12),
            "{w:?}"
        );
        let h = headers(&[
            ("RateLimit-Remaining", "5"),
            ("RateLimit-Reset", &epoch_in(10)),
        ]);
        assert_eq!(gl.exhausted(&h), None);
        // A reset in the past waits only the margin.
        let h = headers(&[("RateLimit-Remaining", "0"), ("RateLimit-Reset", "1")]);
        assert_eq!(gl.exhausted(&h), Some(RESET_MARGIN));
    }

    #[test]
    fn huge_server_numbers_saturate_instead_of_panicking() {
        let gh = http(Service::GitHub);
        let h = headers(&[("retry-after", &u64::MAX.to_string())]);
        let w = gh.refusal_wait(429, &h).unwrap();
        assert_eq!(w, MAX_SERVER_WAIT);
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &u64::MAX.to_string()),
        ]);
        assert_eq!(gh.exhausted(&h), Some(MAX_SERVER_WAIT));
        // Closing the gate for it neither panics nor lets a request through.
        gh.close_gate(Duration::MAX);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt.block_on(gh.wait_for_gate()).unwrap_err();
        assert!(matches!(e, ImportError::RateLimited { .. }), "{e}");
    }

    #[test]
    fn urls_in_messages_lose_credentials_and_signatures() {
        let u = Url::parse("https://bob:hunter2@ghe.example/api/v3/repos?page=2").unwrap();
        assert_eq!(
            shown(&u, Token::Send),
            "https://ghe.example/api/v3/repos?page=2"
        );
        let u = Url::parse("https://blob.example/x/y.zip?sig=s3cr3t&se=2026").unwrap();
        assert_eq!(shown(&u, Token::Omit), "https://blob.example/x/y.zip");
    }

    #[test]
    fn spool_moves_to_a_file_past_the_threshold() {
        let mut s = Spool::new();
        s.append(b"abc", 3).unwrap();
        assert!(matches!(s, Spool::Memory(_)));
        s.append(b"def", SPOOL_BYTES + 1).unwrap();
        assert!(matches!(s, Spool::File(_)));
        let mut s = s.rewind().unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        assert_eq!(text, "abcdef");
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"message":"Bad credentials"}"#),
            "Bad credentials"
        );
        assert_eq!(error_message(b""), "(no message)");
        assert_eq!(error_message(b"  oops \n"), "oops");
    }
}
