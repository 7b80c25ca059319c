//! The HTTP face of the server (axum): routes, authentication, validation and the answers.
//!
//! Checks run cheapest first and before the state is touched: token (401), rate limit (429),
//! body size (413), JSON shape (400), schema / length / finite numbers (400); then, under the
//! state's lock, idempotency (a known id answers 200 "duplicate"), base version (409) and norm
//! bound (400). Every refusal is counted by reason and logged; so is an accepted update that
//! replaces its token's queued one (one pending slot per token).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::aggregate::Params;
use super::auth::{self, RateLimiter, Tokens};
use super::metrics::{Gauges, Metrics};
use super::state::{Refusal, ServerState, Submitted};
use crate::federation::protocol::{self, Accepted, Rejection, Update};
use crate::output::Printer;

/// Server knobs (resolved from the command line by `commands::serve`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Distinct tokens in the buffer that trigger an aggregation (FedBuff's K).
    pub buffer: usize,
    /// Aggregate whatever is buffered once its oldest update has waited this long.
    pub flush_after: Duration,
    pub params: Params,
    pub max_body: usize,
    /// Rate limit per token: requests per second and burst.
    pub rate: f64,
    pub burst: f64,
    /// How long a client may take to send its body.
    pub body_timeout: Duration,
    /// δ of the ε reported for DP-FedAvg.
    pub dp_delta: f64,
    /// Prune the rows of all but this many newest versions every [`PRUNE_EVERY`].
    pub prune_keep: Option<u64>,
    /// The connection cap and the time to send a request head.
    pub connections: super::conns::Limits,
}

/// How often `--prune-keep` prunes.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl Default for Settings {
    fn default() -> Self {
        Settings {
            buffer: 4,
            flush_after: Duration::from_secs(60),
            params: Params::default(),
            max_body: protocol::MAX_BODY_BYTES,
            rate: 1.0,
            burst: 10.0,
            body_timeout: Duration::from_secs(5),
            dp_delta: super::privacy::DEFAULT_DELTA,
            prune_keep: None,
            connections: super::conns::Limits::default(),
        }
    }
}

pub struct AppState {
    tokens: Tokens,
    limiter: RateLimiter,
    state: ServerState,
    pub metrics: Metrics,
    settings: Settings,
    log: Printer,
}

impl AppState {
    pub fn new(tokens: Tokens, state: ServerState, settings: Settings, log: Printer) -> Self {
        AppState {
            tokens,
            limiter: RateLimiter::new(settings.rate, settings.burst),
            state,
            metrics: Metrics::default(),
            settings,
            log,
        }
    }

    pub fn connection_limits(&self) -> super::conns::Limits {
        self.settings.connections
    }

    /// Aggregate if the oldest buffered update has waited long enough (called periodically).
    pub async fn flush_due(&self) {
        let result = self
            .state
            .flush_due(
                self.settings.flush_after,
                self.settings.buffer,
                self.settings.params,
            )
            .await;
        match result {
            Ok(made) => {
                self.metrics
                    .aggregations
                    .fetch_add(made, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => self.log.warn(&format!("time flush failed: {e}")),
        }
    }
}

impl AppState {
    /// Prune old updates (`--prune-keep`); a failure is logged and retried next time.
    pub async fn prune(&self) {
        let Some(keep) = self.settings.prune_keep else {
            return;
        };
        match self.state.prune(keep).await {
            Ok(p) => self
                .metrics
                .pruned
                .store(p.rows(), std::sync::atomic::Ordering::Relaxed),
            Err(e) => self.log.warn(&format!("prune failed: {e}")),
        }
    }
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(protocol::MODEL_PATH, get(get_model))
        .route(protocol::UPDATES_PATH, post(post_update))
        .with_state(state)
}

/// The periodic time flush; runs until the runtime stops.
pub async fn flush_loop(state: Arc<AppState>) {
    let tick =
        (state.settings.flush_after / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    // The first prune runs at the first tick: a restarted server catches up at once.
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        tokio::time::sleep(tick).await;
        state.flush_due().await;
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            state.prune().await;
            last_prune = Some(tokio::time::Instant::now());
        }
    }
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let mut r = (
        status,
        serde_json::to_string(body).expect("serialisable") + "\n",
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

impl AppState {
    fn refuse(&self, status: StatusCode, reason: &str, message: String) -> Response {
        self.metrics.reject(reason);
        self.log
            .info(&format!("update refused ({status}, {reason}): {message}"));
        json(
            status,
            &Rejection {
                reason: reason.to_owned(),
                message,
            },
        )
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    match st.state.gauges(st.settings.dp_delta).await {
        Ok(g) => {
            let g = Gauges {
                buffer_size: st.settings.buffer as u64,
                ..g
            };
            let mut r = st.metrics.render(&g, st.settings.dp_delta).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        Err(e) => {
            st.log
                .warn(&format!("reading the metrics gauges failed: {e}"));
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn get_model(
    State(st): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let start = Instant::now();
    let response = model_response(&st, &q).await;
    st.metrics.observe("model", start.elapsed().as_secs_f64());
    response
}

async fn model_response(st: &Arc<AppState>, q: &HashMap<String, String>) -> Response {
    let Some(schema) = q.get("schema").and_then(|s| s.parse::<u32>().ok()) else {
        return json(
            StatusCode::BAD_REQUEST,
            &Rejection {
                reason: "schema".into(),
                message: "query parameter schema=N is required".into(),
            },
        );
    };
    match st.state.model(schema).await {
        Ok(Some(m)) => json(StatusCode::OK, &m),
        Ok(None) => json(
            StatusCode::NOT_FOUND,
            &Rejection {
                reason: "schema".into(),
                message: format!("no model for schema {schema}"),
            },
        ),
        Err(e) => {
            st.log.warn(&format!("reading the model failed: {e}"));
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn post_update(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let start = Instant::now();
    let response = update_response(&st, &headers, body).await;
    st.metrics.observe("updates", start.elapsed().as_secs_f64());
    response
}

async fn update_response(st: &Arc<AppState>, headers: &HeaderMap, body: Body) -> Response {
    let presented = auth::bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    let Some(token) = presented.and_then(|t| st.tokens.check(t)) else {
        let mut r = st.refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or unknown bearer token".into(),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    };
    if let Err(wait) = st.limiter.take(token) {
        let secs = if wait.is_finite() {
            wait.ceil().max(1.0) as u64
        } else {
            3600
        };
        let mut r = st.refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("rate limit exceeded; retry in {secs} s"),
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let max = st.settings.max_body;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return st.refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("body larger than {max} bytes"),
        );
    }
    let bytes =
        match tokio::time::timeout(st.settings.body_timeout, axum::body::to_bytes(body, max)).await
        {
            Err(_) => {
                return st.refuse(
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    "body not received in time".into(),
                );
            }
            Ok(Err(e)) if e.to_string().contains("length limit") => {
                return st.refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("body larger than {max} bytes"),
                );
            }
            Ok(Err(e)) => {
                return st.refuse(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    format!("cannot read body: {e}"),
                );
            }
            Ok(Ok(b)) => b,
        };
    let update: Update = match serde_json::from_slice(&bytes) {
        Ok(u) => u,
        Err(e) => {
            // JSON has no NaN or infinity: they arrive as bare tokens or out-of-range numbers.
            let text = String::from_utf8_lossy(&bytes);
            let reason = if e.to_string().contains("out of range")
                || text.contains("NaN")
                || text.contains("Infinity")
            {
                "non_finite"
            } else {
                "malformed"
            };
            return st.refuse(
                StatusCode::BAD_REQUEST,
                reason,
                format!("invalid update: {e}"),
            );
        }
    };
    if let Err(invalid) = update.validate() {
        return st.refuse(
            StatusCode::BAD_REQUEST,
            invalid.reason(),
            invalid.to_string(),
        );
    }
    let key = st.tokens.key(token);
    let id = update.id.clone();
    let outcome = st
        .state
        .submit(key, update, st.settings.buffer, st.settings.params)
        .await;
    use std::sync::atomic::Ordering::Relaxed;
    match outcome {
        Ok(Submitted::Accepted {
            version,
            aggregations,
            superseded,
        }) => {
            st.metrics.accepted.fetch_add(1, Relaxed);
            if !superseded.is_empty() {
                st.metrics
                    .superseded
                    .fetch_add(superseded.len() as u64, Relaxed);
                st.log.info(&format!(
                    "update {id} superseded the queued update {} of its token",
                    superseded.join(", ")
                ));
            }
            st.metrics.aggregations.fetch_add(aggregations, Relaxed);
            json(
                StatusCode::ACCEPTED,
                &Accepted {
                    id,
                    duplicate: false,
                    version,
                },
            )
        }
        Ok(Submitted::Duplicate { version }) => {
            st.metrics.duplicates.fetch_add(1, Relaxed);
            json(
                StatusCode::OK,
                &Accepted {
                    id,
                    duplicate: true,
                    version,
                },
            )
        }
        Ok(Submitted::Refused(r)) => {
            let status = match r {
                Refusal::UnknownBase { .. } | Refusal::Stale { .. } => StatusCode::CONFLICT,
                Refusal::Norm { .. } => StatusCode::BAD_REQUEST,
            };
            st.refuse(status, r.reason(), r.message())
        }
        Err(e) => st.refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal",
            format!("update not stored: {e}"),
        ),
    }
}
