//! Counters for `GET /metrics` in the Prometheus text format (written by hand: a dozen series
//! do not need a metrics framework).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every reason an update can be refused, in the order they are checked.
pub const REASONS: &[&str] = &[
    "unauthorized",
    "rate_limited",
    "too_large",
    "malformed",
    "schema",
    "length",
    "non_finite",
    "samples",
    "id",
    "unknown_base",
    "stale",
    "norm",
    "timeout",
    "internal",
];

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Routes timed separately.
pub const ROUTES: &[&str] = &["model", "updates", "other"];

struct Histogram {
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: BUCKETS.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

pub struct Metrics {
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub superseded: AtomicU64,
    pub aggregations: AtomicU64,
    /// Stored updates deleted by pruning, in the whole database (as of this replica's last
    /// prune; `--prune-keep`).
    pub pruned: AtomicU64,
    rejected: Vec<AtomicU64>,
    latency: Vec<Histogram>,
    /// The accept loop's: open connections, evictions, header timeouts.
    pub connections: std::sync::Arc<super::conns::Counters>,
}

/// Gauges read from the state when the metrics are scraped.
pub struct Gauges {
    pub version: u64,
    pub pending: u64,
    pub buffer_fill: u64,
    pub buffer_size: u64,
    pub clip_bound: f64,
    /// DP-FedAvg: noised aggregations so far and the privacy they spent (ε at the server's δ).
    pub dp_aggregations: u64,
    pub dp_epsilon: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            accepted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            superseded: AtomicU64::new(0),
            aggregations: AtomicU64::new(0),
            pruned: AtomicU64::new(0),
            rejected: REASONS.iter().map(|_| AtomicU64::new(0)).collect(),
            latency: ROUTES.iter().map(|_| Histogram::new()).collect(),
            connections: Default::default(),
        }
    }
}

impl Metrics {
    pub fn reject(&self, reason: &str) {
        let i = REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(REASONS.len() - 1);
        self.rejected[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, reason: &str) -> u64 {
        REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.rejected[i].load(Ordering::Relaxed))
    }

    pub fn observe(&self, route: &str, seconds: f64) {
        let h = &self.latency[ROUTES.iter().position(|r| *r == route).unwrap_or(2)];
        for (b, c) in BUCKETS.iter().zip(&h.counts) {
            if seconds <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The exposition text; `delta` is the δ of the reported ε.
    pub fn render(&self, g: &Gauges, delta: f64) -> String {
        let mut s = String::new();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "# HELP fedtest_updates_accepted_total Updates accepted into the buffer.\n# TYPE fedtest_updates_accepted_total counter\nfedtest_updates_accepted_total {}",
            load(&self.accepted)
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_updates_duplicate_total Retried updates recognised by their id (not applied again).\n# TYPE fedtest_updates_duplicate_total counter\nfedtest_updates_duplicate_total {}",
            load(&self.duplicates)
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_updates_superseded_total Queued updates replaced by a newer update of the same token (one pending slot per token).\n# TYPE fedtest_updates_superseded_total counter\nfedtest_updates_superseded_total {}",
            load(&self.superseded)
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_updates_pruned Stored updates deleted by pruning (--prune-keep), in the whole database, as of this replica's last prune.\n# TYPE fedtest_updates_pruned gauge\nfedtest_updates_pruned {}",
            load(&self.pruned)
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_updates_rejected_total Updates refused, by reason.\n# TYPE fedtest_updates_rejected_total counter"
        );
        for (r, c) in REASONS.iter().zip(&self.rejected) {
            let _ = writeln!(
                s,
                "fedtest_updates_rejected_total{{reason=\"{r}\"}} {}",
                load(c)
            );
        }
        let _ = writeln!(
            s,
            "# HELP fedtest_aggregations_total New model versions made from the buffer.\n# TYPE fedtest_aggregations_total counter\nfedtest_aggregations_total {}",
            load(&self.aggregations)
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_model_version Current global model version.\n# TYPE fedtest_model_version gauge\nfedtest_model_version {}",
            g.version
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_buffer_fill Distinct tokens with an update in the buffer.\n# TYPE fedtest_buffer_fill gauge\nfedtest_buffer_fill {}",
            g.buffer_fill
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_buffer_size Distinct tokens that trigger an aggregation (K).\n# TYPE fedtest_buffer_size gauge\nfedtest_buffer_size {}",
            g.buffer_size
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_updates_pending Accepted updates not yet applied.\n# TYPE fedtest_updates_pending gauge\nfedtest_updates_pending {}",
            g.pending
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_clip_bound Clip bound C (fixed: --clip, default 1).\n# TYPE fedtest_clip_bound gauge\nfedtest_clip_bound {}",
            g.clip_bound
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_dp_aggregations Aggregations with DP-FedAvg noise (all versions, rolled back or not).\n# TYPE fedtest_dp_aggregations gauge\nfedtest_dp_aggregations {}",
            g.dp_aggregations
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_dp_epsilon Privacy spent by the noised aggregations: epsilon at delta {delta} (RDP accounting, no subsampling amplification).\n# TYPE fedtest_dp_epsilon gauge\nfedtest_dp_epsilon {}",
            g.dp_epsilon
        );
        let c = &self.connections;
        let _ = writeln!(
            s,
            "# HELP fedtest_connections_open Open client connections.\n# TYPE fedtest_connections_open gauge\nfedtest_connections_open {}",
            load(&c.open)
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_connections_evicted_total Idle connections closed to make room for a new one (--max-connections).\n# TYPE fedtest_connections_evicted_total counter\nfedtest_connections_evicted_total {}",
            load(&c.evicted)
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_connections_header_timeout_total Connections closed for not sending a request head in time (--header-timeout), idle keep-alive ones included.\n# TYPE fedtest_connections_header_timeout_total counter\nfedtest_connections_header_timeout_total {}",
            load(&c.header_timeouts)
        );
        let _ = writeln!(
            s,
            "# HELP fedtest_request_duration_seconds Request latency by route.\n# TYPE fedtest_request_duration_seconds histogram"
        );
        for (route, h) in ROUTES.iter().zip(&self.latency) {
            for (b, c) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(
                    s,
                    "fedtest_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                    load(c)
                );
            }
            let count = load(&h.count);
            let _ = writeln!(
                s,
                "fedtest_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                s,
                "fedtest_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                load(&h.sum_micros) as f64 / 1e6
            );
            let _ = writeln!(
                s,
                "fedtest_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        s
    }
}
