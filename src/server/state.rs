//! The server's state machine, written once over the storage primitives of
//! [`super::backend`]: which update is refused and why, the slot per token, when the buffer is
//! folded into a version and how (staleness, clipping, robust combination, DP noise, the
//! step), rollback, what a prune may delete, and the replay check behind exactly once.
//!
//! Exactly once, also across a SIGKILL: an update is accepted by one committed write (its row
//! *is* the buffer entry: pending), and a version commits together with its rows' `applied`
//! mark. A restart rebuilds the buffer from the pending rows, so an accepted update is never
//! lost, and a row can only be applied by the version that marks it. Update ids are unique,
//! so a client that retries after a lost answer is told "duplicate" instead of being counted
//! twice; a pruned id is forgotten, but then its base is too old to be accepted (`MIN_KEEP`).
//!
//! One pending slot per token: a newer update from a token supersedes its queued one, so one
//! client cannot fill a buffer (or several) on its own. The superseded row keeps its id, so a
//! re-send of it is still a duplicate.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use super::aggregate::{self, Buffered, Params};
use super::backend::{
    self, Accept, Backend, Db, DbError, Facts, Head, NewUpdate, NewVersion, PendingRow, VersionRow,
};
use super::privacy::{self, Spent};
use crate::features;
use crate::federation::protocol::{self, GlobalModel, MAX_DELTA_NORM, Update};
use crate::model::prior;

/// The clip bound C unless `--clip` sets another, and the limits of `--clip`. Fixed, not
/// derived from updates: a bound that followed the median of recent norms could be raised by
/// the very updates it bounds (issue 11). About a third of the prior's norm (3.5).
pub const DEFAULT_CLIP: f64 = 1.0;
pub const MIN_CLIP: f64 = 0.05;
pub const MAX_CLIP: f64 = MAX_DELTA_NORM;
/// Updates longer than this many clip bounds are refused.
pub const REJECT_FACTOR: f64 = 10.0;
/// Versions over which the drift cap ([`Guard::max_drift`]) measures the model's movement.
pub const DRIFT_WINDOW: u64 = protocol::MAX_STALENESS;

/// Why the state refuses an update that is structurally valid.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    UnknownBase { base: u64, current: u64 },
    Stale { staleness: u64 },
    Norm { norm: f64, bound: f64 },
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::UnknownBase { .. } => "unknown_base",
            Refusal::Stale { .. } => "stale",
            Refusal::Norm { .. } => "norm",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::UnknownBase { base, current } => {
                format!(
                    "base version {base} is unknown (current is {current}); pull the model again"
                )
            }
            Refusal::Stale { staleness } => format!(
                "base version is {staleness} versions old (at most {}); pull the model again",
                protocol::MAX_STALENESS
            ),
            Refusal::Norm { norm, bound } => {
                format!("delta norm {norm:.4} exceeds the bound {bound:.4}")
            }
        }
    }
}

/// What the refusal rule needs besides the facts a backend reads: the staleness limit and
/// the clip bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub max_stale: u64,
    /// The clip bound C (`--clip`, else [`DEFAULT_CLIP`]).
    pub clip: f64,
}

impl Limits {
    /// Updates with a norm over this are refused (and `GET /v1/model` serves it as `max_norm`).
    pub fn bound(&self) -> f64 {
        REJECT_FACTOR * self.clip
    }
}

/// What bounds a minority's pull over many versions, beyond what one fold's robust rule and
/// the one slot per token do within a fold (issue 11).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Guard {
    /// A fold of fewer distinct tokens than this (and than the buffer size K) — a time flush
    /// of a half-empty buffer — moves the model by only n/`min_tokens` of its step: a lone
    /// token's update used to be applied whole, untrimmed, at every flush.
    pub min_tokens: usize,
    /// The model moves at most this far (Euclidean) from where it was [`DRIFT_WINDOW`]
    /// versions before; a step that would go further is shortened to the boundary.
    /// `f64::INFINITY`: no cap.
    pub max_drift: f64,
    /// The model stays within this distance of the prior, however long an attack lasts: when
    /// only an attacker is active there is no one to outvote it, and the caps above only slow
    /// it down. `f64::INFINITY`: no cap.
    pub max_from_prior: f64,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            min_tokens: 3,
            max_drift: 2.0 * DEFAULT_CLIP,
            // Honest federation of three real histories moved 3.1 from the prior in 155
            // versions (README, Federation quality).
            max_from_prior: 6.0 * DEFAULT_CLIP,
        }
    }
}

/// A number the refusal rule compares.
#[derive(Clone, Copy, Debug)]
enum Term {
    Base,
    Current,
    /// `current − base`.
    Staleness,
    MaxStale,
    Norm,
    Bound,
}

/// One test of the refusal rule.
#[derive(Clone, Copy, Debug)]
enum Test {
    /// The base is not one of the schema's versions.
    Unknown,
    Greater(Term, Term),
}

/// The refusal rule, the one definition: in order, refuse with the first kind whose tests
/// (any of them) hold. [`refusal`] evaluates it; [`refusal_sql`] renders it for PostgreSQL's
/// one-round-trip accept, and a test checks both on a grid of facts.
const RULE: &[(Kind, &[Test])] = &[
    (
        Kind::UnknownBase,
        &[Test::Unknown, Test::Greater(Term::Base, Term::Current)],
    ),
    (
        Kind::Stale,
        &[Test::Greater(Term::Staleness, Term::MaxStale)],
    ),
    (Kind::Norm, &[Test::Greater(Term::Norm, Term::Bound)]),
];

#[derive(Clone, Copy, Debug)]
enum Kind {
    UnknownBase,
    Stale,
    Norm,
}

/// The inputs of the rule, as numbers.
struct Judged {
    base: u64,
    norm: f64,
    facts: Facts,
    max_stale: u64,
}

impl Term {
    fn value(self, j: &Judged) -> f64 {
        match self {
            Term::Base => j.base as f64,
            Term::Current => j.facts.current as f64,
            Term::Staleness => j.facts.current as f64 - j.base as f64,
            Term::MaxStale => j.max_stale as f64,
            Term::Norm => j.norm,
            Term::Bound => j.facts.bound,
        }
    }

    /// The name of the PL/pgSQL variable (`prefix` in front of the parameters' names, so that
    /// the test can bind them in SQLite).
    fn sql(self, prefix: &str) -> String {
        match self {
            Term::Base => format!("{prefix}p_base"),
            Term::Current => format!("{prefix}v_current"),
            Term::Staleness => format!("({prefix}v_current - {prefix}p_base)"),
            Term::MaxStale => format!("{prefix}p_max_stale"),
            Term::Norm => format!("{prefix}p_norm"),
            Term::Bound => format!("{prefix}p_bound"),
        }
    }
}

impl Test {
    fn holds(self, j: &Judged) -> bool {
        match self {
            Test::Unknown => !j.facts.base_known,
            Test::Greater(a, b) => a.value(j) > b.value(j),
        }
    }

    fn sql(self, prefix: &str) -> String {
        match self {
            Test::Unknown => format!("NOT {prefix}v_known"),
            Test::Greater(a, b) => format!("{} > {}", a.sql(prefix), b.sql(prefix)),
        }
    }
}

/// The refusal rule on the facts an accept read: base unknown or newer than the current
/// version, more than `max_stale` versions old, or the norm over the bound.
pub fn refusal(base: u64, norm: f64, facts: Facts, limits: &Limits) -> Option<Refusal> {
    let j = Judged {
        base,
        norm,
        facts,
        max_stale: limits.max_stale,
    };
    let (kind, _) = RULE
        .iter()
        .find(|(_, tests)| tests.iter().any(|t| t.holds(&j)))?;
    Some(match kind {
        Kind::UnknownBase => Refusal::UnknownBase {
            base,
            current: facts.current,
        },
        Kind::Stale => Refusal::Stale {
            staleness: facts.current.saturating_sub(base),
        },
        Kind::Norm => Refusal::Norm {
            norm,
            bound: facts.bound,
        },
    })
}

/// [`RULE`] as one SQL predicate over the variables `v_known`, `v_current` and the
/// parameters `p_base`, `p_max_stale`, `p_norm`, `p_bound` (each name after `prefix`).
pub fn refusal_sql(prefix: &str) -> String {
    RULE.iter()
        .flat_map(|(_, tests)| tests.iter().map(|t| t.sql(prefix)))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// What happened to a submitted update.
#[derive(Debug, PartialEq)]
pub enum Submitted {
    /// Stored as its token's pending update; `superseded` names the queued update(s) of the
    /// same token it replaced (normally none or one).
    Accepted {
        version: u64,
        /// New versions this submit made.
        aggregations: u64,
        superseded: Vec<String>,
    },
    Duplicate {
        version: u64,
    },
    Refused(Refusal),
}

/// A summary for `serve status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub schema: u32,
    pub version: u64,
    pub updates_total: u64,
    pub updates_pending: u64,
    pub updates_applied: u64,
    pub updates_discarded: u64,
    /// Accepted, then replaced by a newer update of the same token before aggregation.
    pub updates_superseded: u64,
    /// Sum of `updates` over all versions: equals `updates_applied` when every applied update
    /// was applied exactly once.
    pub versions_updates_sum: u64,
    /// Rows deleted by `serve prune` (counted above in their state), and the newest version
    /// whose rows they were: versions up to it are not replayed.
    pub updates_pruned: u64,
    pub pruned_through: u64,
    pub buffer_fill: u64,
    pub clip_bound: f64,
    /// Every aggregated version recomputed from its own rows matches what is stored.
    pub replay_consistent: bool,
    /// Aggregations with DP-FedAvg noise, and the privacy they spent: ε at `dp_delta`.
    pub dp_aggregations: u64,
    pub dp_delta: f64,
    pub dp_epsilon: f64,
    pub versions: Vec<VersionInfo>,
}

impl Status {
    /// `serve status` as text: the counts, the exactly-once check, the privacy spent, and the
    /// newest versions.
    pub fn text(&self) -> String {
        let mut t = format!(
            "schema {}: version {}\nupdates: {} accepted, {} applied, {} pending ({} clients in the buffer), {} superseded, {} discarded\nclip bound C: {:.4}\nreplay check: {}\nprivacy: {}\n\nversion  parent  updates  ‖Δ from prior‖  note\n",
            self.schema,
            self.version,
            self.updates_total,
            self.updates_applied,
            self.updates_pending,
            self.buffer_fill,
            self.updates_superseded,
            self.updates_discarded,
            self.clip_bound,
            match (
                self.replay_consistent && self.versions_updates_sum == self.updates_applied,
                self.pruned_through,
            ) {
                (false, _) => "INCONSISTENT".to_owned(),
                (true, 0) => "every applied update was applied exactly once".to_owned(),
                (true, v) => format!(
                    "every applied update was applied exactly once (replayed after version {v}; \
                 {} older rows pruned)",
                    self.updates_pruned
                ),
            },
            if self.dp_aggregations == 0 {
                "no DP noise added".to_owned()
            } else {
                format!(
                    "{} aggregations with DP noise: ε = {:.3} at δ = {:e} (RDP accounting, no subsampling amplification)",
                    self.dp_aggregations, self.dp_epsilon, self.dp_delta
                )
            }
        );
        for v in &self.versions {
            t.push_str(&format!(
                "{:>7}  {:>6}  {:>7}  {:>14.4}  {}\n",
                v.version,
                v.parent.map_or("-".into(), |p| p.to_string()),
                v.updates,
                v.norm_from_prior,
                v.note
            ));
        }
        t
    }
}

#[derive(Debug, Serialize)]
pub struct VersionInfo {
    pub version: u64,
    pub parent: Option<u64>,
    pub updates: u64,
    pub note: String,
    pub created_at: i64,
    pub norm_from_prior: f64,
}

/// What `serve prune` has removed so far (totals over every prune).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Rows applied to versions up to this one are gone, and so are the superseded and
    /// discarded rows based on one of them: those versions cannot be replayed any more.
    pub through: u64,
    pub applied: u64,
    pub superseded: u64,
    pub discarded: u64,
}

impl Pruned {
    pub fn rows(&self) -> u64 {
        self.applied + self.superseded + self.discarded
    }

    /// The version up to which rows go when the newest `keep` versions keep theirs, at
    /// least [`MIN_KEEP`] of them.
    pub fn boundary(newest: u64, keep: u64) -> u64 {
        newest.saturating_sub(keep.max(MIN_KEEP))
    }
}

/// What a prune through version B deletes: rows in this state whose version in this column
/// is at most B.
#[derive(Clone, Copy, Debug)]
pub enum PruneColumn {
    AppliedVersion,
    BaseVersion,
}

/// Applied rows go with the version that applied them; superseded and discarded rows with
/// their base.
pub const PRUNE: [(i16, PruneColumn); 3] = [
    (backend::APPLIED, PruneColumn::AppliedVersion),
    (backend::SUPERSEDED, PruneColumn::BaseVersion),
    (backend::DISCARDED, PruneColumn::BaseVersion),
];

/// Versions whose rows `serve prune` always keeps. A pruned update's id is forgotten; what
/// keeps a re-send of it from being applied a second time is that its base version is then
/// more than [`protocol::MAX_STALENESS`] versions old, so it is refused as stale.
pub const MIN_KEEP: u64 = protocol::MAX_STALENESS + 1;

/// The gauges the metrics show (`buffer_size` is left 0 for the caller).
pub use super::metrics::Gauges;

/// Why a fold was asked for; re-checked under the version chain's lock.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    /// At least this many tokens are waiting.
    Fill(usize),
    /// The oldest slot has waited this long (and K is this).
    Due(Duration, usize),
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The server's state: the rules over one backend.
pub struct ServerState {
    backend: Box<dyn Backend>,
    schema: u32,
    limits: Limits,
    guard: Guard,
    /// The first version's vector: the center of [`Guard::max_from_prior`].
    prior: std::sync::Arc<Vec<f64>>,
}

impl ServerState {
    /// Open the state at `db` (creating the SQLite file or the PostgreSQL tables when
    /// missing; the first version is the embedded prior). `connections` sizes the PostgreSQL
    /// pool; `clip` replaces [`DEFAULT_CLIP`] (`--clip`).
    pub async fn open(
        db: &Db,
        fsync: bool,
        connections: usize,
        clip: Option<f64>,
        guard: Guard,
    ) -> Result<ServerState, DbError> {
        let schema = features::SCHEMA_VERSION;
        let prior = protocol::vector_of(&prior::prior());
        let backend: Box<dyn Backend> = match db {
            Db::Sqlite(path) => Box::new(super::sqlite::Sqlite::open(path, fsync, schema, &prior)?),
            Db::Postgres(url) => Box::new(
                super::postgres::Postgres::connect(url, fsync, connections, schema, &prior).await?,
            ),
        };
        Ok(ServerState {
            backend,
            schema,
            limits: Limits {
                max_stale: protocol::MAX_STALENESS,
                clip: clip.unwrap_or(DEFAULT_CLIP),
            },
            guard,
            prior: std::sync::Arc::new(prior),
        })
    }

    /// The current global model of `schema`, `None` for a schema this server does not serve.
    pub async fn model(&self, schema: u32) -> Result<Option<GlobalModel>, DbError> {
        if schema != self.schema {
            return Ok(None);
        }
        let head = self.backend.head().await?;
        Ok(Some(GlobalModel {
            version: head.version,
            schema: self.schema,
            max_norm: self.limits.bound(),
            vector: head.vector,
            updates: head.total_updates,
        }))
    }

    /// The current version of the served schema.
    pub async fn version(&self) -> Result<u64, DbError> {
        Ok(self.backend.head().await?.version)
    }

    /// Accept or refuse a structurally valid update from `token`, then fold while `buffer`
    /// distinct tokens are waiting.
    pub async fn submit(
        &self,
        token: String,
        update: Update,
        buffer: usize,
        params: Params,
    ) -> Result<Submitted, DbError> {
        let norm = protocol::norm(&update.delta);
        let new = NewUpdate {
            id: update.id.clone(),
            token,
            schema: update.schema,
            base_version: update.base_version,
            samples: update.samples.min(protocol::MAX_SAMPLES),
            norm,
            delta: update.delta.clone(),
            now: now(),
        };
        match self.backend.accept(new, self.limits).await? {
            Accept::Seen { current } => Ok(Submitted::Duplicate { version: current }),
            Accept::Refused(facts) => match refusal(update.base_version, norm, facts, &self.limits)
            {
                Some(r) => Ok(Submitted::Refused(r)),
                None => Err(DbError::Corrupt(format!(
                    "the database refused update {} that the rule accepts",
                    update.id
                ))),
            },
            Accept::Written {
                current,
                superseded,
                waiting,
            } => {
                let k = buffer.max(1);
                let (made, newest) = if waiting >= k {
                    self.fold_while_full(k, params).await?
                } else {
                    (0, None)
                };
                Ok(Submitted::Accepted {
                    version: newest.unwrap_or(current),
                    aggregations: made,
                    superseded,
                })
            }
        }
    }

    /// Fold while `k` tokens are waiting, unless another session is folding already: that one
    /// re-checks the buffer after its commit, and so sees every update committed before we
    /// looked. How many versions were made, and the newest.
    async fn fold_while_full(
        &self,
        k: usize,
        params: Params,
    ) -> Result<(u64, Option<u64>), DbError> {
        let (mut made, mut newest) = (0, None);
        while let Some((v, waiting)) = self.fold(Trigger::Fill(k), params).await? {
            made += 1;
            newest = Some(v);
            if waiting < k {
                break;
            }
        }
        Ok((made, newest))
    }

    /// The time flush: fold when the oldest pending slot has waited `after`, then while
    /// `buffer` tokens are waiting. How many versions were made.
    pub async fn flush_due(
        &self,
        after: Duration,
        buffer: usize,
        params: Params,
    ) -> Result<u64, DbError> {
        let (_, oldest) = self.backend.fill().await?;
        if oldest.is_none_or(|t| now() - t < after.as_secs() as i64) {
            return Ok(0);
        }
        let k = buffer.max(1);
        let Some((_, waiting)) = self.fold(Trigger::Due(after, k), params).await? else {
            return Ok(0);
        };
        let mut made = 1;
        if waiting >= k {
            made += self.fold_while_full(k, params).await?.0;
        }
        Ok(made)
    }

    /// Fold the buffer into a new version if `trigger` still holds under the chain's lock:
    /// the oldest pending update of each token, weighted, clipped and combined robustly.
    async fn fold(
        &self,
        trigger: Trigger,
        params: Params,
    ) -> Result<Option<(u64, usize)>, DbError> {
        let (limits, guard, prior) = (self.limits, self.guard, self.prior.clone());
        let plan: backend::Plan = Box::new(move |head: &Head, pending: &[PendingRow], anchor| {
            let centers = [
                (anchor, guard.max_drift),
                (&prior[..], guard.max_from_prior),
            ];
            plan_version(head, pending, &centers, trigger, &params, &limits, &guard)
        });
        let wait = matches!(trigger, Trigger::Due(..));
        self.backend.fold(wait, DRIFT_WINDOW, plan).await
    }

    /// The state's gauges, ε at `delta` (`buffer_size` is left 0 for the caller).
    pub async fn gauges(&self, delta: f64) -> Result<Gauges, DbError> {
        let c = self.backend.counts().await?;
        let spent = spent(&c.dp_zs);
        Ok(Gauges {
            version: c.head.version,
            pending: c.pending,
            buffer_fill: c.fill,
            buffer_size: 0,
            clip_bound: self.limits.clip,
            dp_aggregations: spent.aggregations,
            dp_epsilon: spent.epsilon(delta),
        })
    }

    /// Make an earlier version current again, as a new version (so clients' base versions
    /// stay meaningful); pending updates were computed against the model being abandoned and
    /// are discarded. Returns the new version.
    pub async fn rollback(&self, to: u64) -> Result<u64, DbError> {
        let restore: backend::Restore = Box::new(move |head: &Head, target| {
            let Some((vector, total_updates)) = target else {
                return Err(DbError::Corrupt(format!("no version {to}")));
            };
            Ok(NewVersion {
                parent: head.version,
                vector,
                updates: 0,
                total_updates,
                clip: None,
                lr: None,
                rule: None,
                trim: None,
                noise: None,
                dp_z: None,
                note: format!("rollback to {to}"),
                created_at: now(),
                applied: Vec::new(),
            })
        });
        self.backend.restore(to, restore).await
    }

    /// Delete the rows of every version but the newest `keep` (at least [`MIN_KEEP`]):
    /// applied rows of older versions, and superseded or discarded rows based on one. The
    /// versions themselves (their vectors, for rollback) stay. Returns the totals so far.
    pub async fn prune(&self, keep: u64) -> Result<Pruned, DbError> {
        self.backend
            .prune(Box::new(move |newest, totals| {
                let through = Pruned::boundary(newest, keep);
                (through > totals.through).then_some(through)
            }))
            .await
    }

    /// Counts, versions, the replay check, and the privacy spent as ε at `delta`.
    pub async fn status(&self, last_versions: usize, delta: f64) -> Result<Status, DbError> {
        let mut replay = Replay::default();
        let mut visit = |through: u64, row: VersionRow, applied: Vec<Buffered>| {
            replay.version(through, row, applied)
        };
        let snap = self.backend.snapshot(last_versions, &mut visit).await?;
        let replay_consistent = replay.consistent;
        let pruned = snap.pruned;
        let [pending, applied, discarded, superseded] = snap.by_state;
        let (applied, discarded, superseded) = (
            applied + pruned.applied,
            discarded + pruned.discarded,
            superseded + pruned.superseded,
        );
        let prior = protocol::vector_of(&prior::prior());
        let versions = snap
            .recent
            .into_iter()
            .map(|r| {
                let diff: Vec<f64> = r.vector.iter().zip(&prior).map(|(a, b)| a - b).collect();
                VersionInfo {
                    version: r.version as u64,
                    parent: r.parent.map(|p| p as u64),
                    updates: r.updates as u64,
                    note: r.note,
                    created_at: r.created_at,
                    norm_from_prior: protocol::norm(&diff),
                }
            })
            .collect();
        let spent = spent(&snap.counts.dp_zs);
        Ok(Status {
            schema: self.schema,
            version: snap.counts.head.version,
            updates_total: pending + applied + discarded + superseded,
            updates_pending: pending,
            updates_applied: applied,
            updates_discarded: discarded,
            updates_superseded: superseded,
            versions_updates_sum: snap.versions_updates_sum,
            updates_pruned: pruned.rows(),
            pruned_through: pruned.through,
            buffer_fill: snap.counts.fill,
            clip_bound: self.limits.clip,
            replay_consistent,
            dp_aggregations: spent.aggregations,
            dp_delta: delta,
            dp_epsilon: spent.epsilon(delta),
            versions,
        })
    }
}

/// The privacy spent by the noised versions.
fn spent(dp_zs: &[f64]) -> Spent {
    let mut spent = Spent::default();
    dp_zs.iter().for_each(|z| spent.add(*z));
    spent
}

/// The next version from `head` and the pending rows, if `trigger` holds: the oldest
/// pending update of each token (one slot per token makes that the only one), weighted by
/// samples and staleness, clipped to C, combined by the rule, noised under DP, stepped with
/// the learning rate — damped when fewer than the minimum of tokens take part, and shortened
/// to stay within each `(center, radius)` ball (the model [`DRIFT_WINDOW`] versions ago, the
/// prior). The learning rate stored with the version is the one applied, so the replay needs
/// nothing else.
fn plan_version(
    head: &Head,
    pending: &[PendingRow],
    centers: &[(&[f64], f64)],
    trigger: Trigger,
    params: &Params,
    limits: &Limits,
    guard: &Guard,
) -> Result<Option<NewVersion>, DbError> {
    let mut seen = std::collections::HashSet::new();
    let rows: Vec<&PendingRow> = pending
        .iter()
        .filter(|r| seen.insert(r.token.as_str()))
        .collect();
    let still = match trigger {
        Trigger::Fill(k) => rows.len() >= k,
        Trigger::Due(after, _) => rows
            .iter()
            .map(|r| r.received_at)
            .min()
            .is_some_and(|t| now() - t >= after.as_secs() as i64),
    };
    if !still || rows.is_empty() {
        return Ok(None);
    }
    let current = head.version;
    let buffered: Vec<Buffered> = rows
        .iter()
        .map(|r| Buffered {
            delta: r.delta.clone(),
            samples: r.samples,
            staleness: current.saturating_sub(r.base_version),
        })
        .collect();
    let clip = limits.clip;
    let (step, noise) = noised_step(buffered.clone(), clip, params).expect("non-empty buffer");
    let used = params.effective();
    let k = match trigger {
        Trigger::Fill(k) | Trigger::Due(_, k) => k,
    };
    let lr = guarded_lr(
        &head.vector,
        &step,
        centers,
        params.lr,
        rows.len(),
        guard.min_tokens.min(k).max(1),
    );
    let vector = stepped(&head.vector, &step, lr)?;
    Ok(Some(NewVersion {
        parent: current,
        vector,
        updates: rows.len() as u64,
        total_updates: head.total_updates + rows.len() as u64,
        clip: Some(clip),
        lr: Some(lr),
        rule: rule_name(&used),
        trim: Some(used.trim),
        noise,
        dp_z: params.dp_noise,
        note: "aggregate".into(),
        created_at: now(),
        applied: rows
            .iter()
            .zip(&buffered)
            .map(|(r, b)| (r.seq, b.staleness))
            .collect(),
    }))
}

/// The learning rate a fold applies: `lr`, times n/`min` when only n < `min` tokens take
/// part, then as much of that as keeps `current + lr·step` within every `(center, radius)`
/// ball (or no further from a center than `current` already is: after a rollback, or a
/// change of cap, the model may start outside).
fn guarded_lr(
    current: &[f64],
    step: &[f64],
    centers: &[(&[f64], f64)],
    lr: f64,
    n: usize,
    min: usize,
) -> f64 {
    let mut lr = if n < min {
        lr * n as f64 / min as f64
    } else {
        lr
    };
    let ss = protocol::norm(step).powi(2);
    for (center, radius) in centers {
        if !radius.is_finite() || center.len() != current.len() || ss == 0.0 {
            continue;
        }
        // ‖a + t·s‖ ≤ B with a = current − center: the largest t in [0, lr], a quadratic in t.
        let a: Vec<f64> = current.iter().zip(*center).map(|(c, o)| c - o).collect();
        let aa = protocol::norm(&a).powi(2);
        let as_: f64 = a.iter().zip(step).map(|(x, y)| x * y).sum();
        let b2 = radius.powi(2).max(aa);
        if aa + 2.0 * lr * as_ + lr * lr * ss <= b2 {
            continue;
        }
        let t = (-as_ + (as_ * as_ - ss * (aa - b2)).max(0.0).sqrt()) / ss;
        lr = t.clamp(0.0, lr);
    }
    lr
}

/// One aggregation's step, with DP-FedAvg's equal weights and noise when `params.dp_noise`
/// is set: the step (noise included) and the noise, which is stored with the version so that
/// the replay can check it. `None` for an empty buffer.
fn noised_step(
    mut buffered: Vec<Buffered>,
    clip: f64,
    params: &Params,
) -> Option<(Vec<f64>, Option<Vec<f64>>)> {
    if params.dp_noise.is_some() {
        buffered.iter_mut().for_each(|b| b.samples = 1);
    }
    let mut step = aggregate::aggregate(&buffered, clip, &params.effective())?;
    let noise = params
        .dp_noise
        .map(|z| privacy::noise(step.len(), z, clip, buffered.len()));
    if let Some(noise) = &noise {
        step.iter_mut().zip(noise).for_each(|(s, n)| *s += n);
    }
    Some((step, noise))
}

/// `lr` times `step` added to `vector`. An aggregate that is not finite is refused rather
/// than stored.
fn stepped(vector: &[f64], step: &[f64], lr: f64) -> Result<Vec<f64>, DbError> {
    let next: Vec<f64> = vector.iter().zip(step).map(|(g, s)| g + lr * s).collect();
    if !next.iter().all(|v| v.is_finite()) {
        return Err(DbError::Corrupt("aggregate is not finite".into()));
    }
    Ok(next)
}

/// The rule's name as stored with a version.
fn rule_name(params: &Params) -> Option<String> {
    serde_json::to_value(params.rule)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// The replay check, fed one version at a time in version order: every aggregated version
/// after the pruned ones must be its parent plus the aggregate of exactly its own rows (with
/// the clip bound, rule and staleness recorded at the time). An update applied twice, or a
/// version without its rows, shows up here.
struct Replay {
    vectors: HashMap<i64, Vec<f64>>,
    consistent: bool,
}

impl Default for Replay {
    fn default() -> Self {
        Replay {
            vectors: HashMap::new(),
            consistent: true,
        }
    }
}

impl Replay {
    fn version(&mut self, pruned_through: u64, row: VersionRow, applied: Vec<Buffered>) {
        if row.version > pruned_through as i64 && !self.matches(&row, applied) {
            self.consistent = false;
        }
        // A pruned version's rows are gone: what is stored is the base its children are
        // replayed on.
        self.vectors.insert(row.version, row.vector);
    }

    fn matches(&self, row: &VersionRow, mut buffered: Vec<Buffered>) -> bool {
        if buffered.len() as i64 != row.updates {
            return false;
        }
        let (Some(parent), Some(clip), Some(lr), Some(rule), Some(trim)) =
            (row.parent, row.clip, row.lr, &row.rule, row.trim)
        else {
            // The prior and rollbacks: nothing to recompute.
            return true;
        };
        let Some(base) = self.vectors.get(&parent) else {
            return false;
        };
        let rule = match rule.as_str() {
            "median" => aggregate::Rule::Median,
            _ => aggregate::Rule::TrimmedMean,
        };
        let params = Params {
            rule,
            trim,
            lr,
            dp_noise: None,
        };
        if row.dp_z.is_some() {
            // DP weighs every update equally (see `noised_step`).
            buffered.iter_mut().for_each(|b| b.samples = 1);
        }
        let Some(mut step) = aggregate::aggregate(&buffered, clip, &params) else {
            return false;
        };
        match (&row.noise, row.dp_z) {
            (Some(noise), Some(_)) if noise.len() == step.len() => {
                step.iter_mut().zip(noise).for_each(|(s, n)| *s += n);
            }
            (None, None) => {}
            _ => return false,
        }
        let again: Vec<f64> = base.iter().zip(&step).map(|(g, s)| g + lr * s).collect();
        !again
            .iter()
            .zip(&row.vector)
            .any(|(a, b)| (a - b).abs() > 1e-9 * (1.0 + b.abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: &str, base: u64, x: f64) -> Update {
        let mut delta = vec![0.0; features::DIM + 1];
        delta[0] = x;
        Update {
            id: id.into(),
            schema: features::SCHEMA_VERSION,
            base_version: base,
            delta,
            samples: 50,
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn open(db: &std::path::Path, clip: Option<f64>) -> ServerState {
        // No drift caps: these tests check the arithmetic of single folds.
        let guard = Guard {
            max_drift: f64::INFINITY,
            max_from_prior: f64::INFINITY,
            ..Guard::default()
        };
        rt().block_on(ServerState::open(
            &Db::Sqlite(db.to_owned()),
            false,
            1,
            clip,
            guard,
        ))
        .unwrap()
    }

    /// The state, driven synchronously.
    struct Sync {
        rt: tokio::runtime::Runtime,
        s: ServerState,
    }

    impl Sync {
        fn new(db: &std::path::Path, clip: Option<f64>) -> Sync {
            Sync {
                rt: rt(),
                s: open(db, clip),
            }
        }
        fn submit(&self, tok: &str, u: &Update, k: usize, p: &Params) -> Submitted {
            self.rt
                .block_on(self.s.submit(tok.into(), u.clone(), k, *p))
                .unwrap()
        }
        fn version(&self) -> u64 {
            self.rt.block_on(self.s.version()).unwrap()
        }
        fn vector(&self) -> Vec<f64> {
            self.rt
                .block_on(self.s.model(features::SCHEMA_VERSION))
                .unwrap()
                .unwrap()
                .vector
        }
        fn status(&self) -> Status {
            self.rt
                .block_on(self.s.status(10, privacy::DEFAULT_DELTA))
                .unwrap()
        }
        fn gauges(&self) -> Gauges {
            self.rt
                .block_on(self.s.gauges(privacy::DEFAULT_DELTA))
                .unwrap()
        }
    }

    #[test]
    fn the_refusal_predicate_in_sql_is_the_rule() {
        // Evaluate the rendered predicate in SQLite (same expression syntax as PL/pgSQL for
        // these comparisons) against the Rust evaluation, on a grid of facts.
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let sql = format!("SELECT {}", refusal_sql(":"));
        let limits = Limits {
            max_stale: 20,
            clip: 1.0,
        };
        let mut checked = 0;
        for known in [false, true] {
            for current in [1u64, 5, 21, 22, 40] {
                for base in [0u64, 1, 2, 5, 19, 21, 22, 41] {
                    for (norm, bound) in [(0.5, 1.0), (1.0, 1.0), (1.5, 1.0), (0.0, 0.0)] {
                        let facts = Facts {
                            current,
                            base_known: known,
                            bound,
                        };
                        let rust = refusal(base, norm, facts, &limits);
                        let in_sql: bool = conn
                            .query_row(
                                &sql,
                                rusqlite::named_params! {
                                    ":v_known": known,
                                    ":v_current": current as i64,
                                    ":p_base": base as i64,
                                    ":p_max_stale": 20i64,
                                    ":p_norm": norm,
                                    ":p_bound": bound,
                                },
                                |r| r.get(0),
                            )
                            .unwrap();
                        assert_eq!(rust.is_some(), in_sql, "{facts:?} base {base} norm {norm}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 320);
        assert_eq!(
            refusal_sql(""),
            "NOT v_known OR p_base > v_current OR (v_current - p_base) > p_max_stale \
             OR p_norm > p_bound"
        );
    }

    #[test]
    fn a_fold_of_few_tokens_is_damped_and_every_step_stays_in_its_balls() {
        let cur = [0.0, 0.0];
        let step = [1.0, 0.0];
        // Damped: one token of a minimum of three moves a third of the way.
        assert!((guarded_lr(&cur, &step, &[], 1.0, 1, 3) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(guarded_lr(&cur, &step, &[], 1.0, 3, 3), 1.0);
        // Shortened to the boundary of a ball around the origin of radius 0.5 …
        let origin = [0.0, 0.0];
        let t = guarded_lr(&cur, &step, &[(&origin, 0.5)], 1.0, 4, 3);
        assert!((t - 0.5).abs() < 1e-12, "{t}");
        // … and of the tighter of two.
        let left = [-0.2, 0.0];
        let t = guarded_lr(&cur, &step, &[(&origin, 0.5), (&left, 0.3)], 1.0, 4, 3);
        assert!((t - 0.1).abs() < 1e-12, "{t}");
        // Outside already (after a rollback): may move back in, not further out.
        let far = [3.0, 0.0];
        assert_eq!(
            guarded_lr(&far, &[-1.0, 0.0], &[(&origin, 1.0)], 1.0, 4, 3),
            1.0
        );
        assert_eq!(
            guarded_lr(&far, &[1.0, 0.0], &[(&origin, 1.0)], 1.0, 4, 3),
            0.0
        );
    }

    #[test]
    fn a_lone_token_cannot_move_the_model_far_however_long_it_pushes() {
        // Issue 11: a lone pending update was applied whole, untrimmed, at every time flush,
        // and the clip bound followed the norms the attacker sent.
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        let db = Db::Sqlite(dir.path().join("s.sqlite"));
        let s = rt
            .block_on(ServerState::open(&db, false, 1, None, Guard::default()))
            .unwrap();
        let prior = protocol::vector_of(&prior::prior());
        let p = Params::default();
        let away: Vec<f64> = prior.iter().map(|w| -w / protocol::norm(&prior)).collect();
        let mut models = vec![prior.clone()];
        for t in 0..250 {
            let g = rt
                .block_on(s.model(features::SCHEMA_VERSION))
                .unwrap()
                .unwrap();
            // The worst it may send: just inside the refusal bound, always the same way.
            let delta: Vec<f64> = away.iter().map(|d| d * 0.99 * g.max_norm).collect();
            let u = Update {
                id: format!("a{t}"),
                schema: features::SCHEMA_VERSION,
                base_version: g.version,
                delta,
                samples: 1000,
            };
            let r = rt.block_on(s.submit("attacker".into(), u, 4, p)).unwrap();
            assert!(matches!(r, Submitted::Accepted { .. }), "{r:?}");
            assert_eq!(rt.block_on(s.flush_due(Duration::ZERO, 4, p)).unwrap(), 1);
            models.push(
                rt.block_on(s.model(features::SCHEMA_VERSION))
                    .unwrap()
                    .unwrap()
                    .vector,
            );
        }
        let dist = |a: &[f64], b: &[f64]| {
            protocol::norm(&a.iter().zip(b).map(|(x, y)| x - y).collect::<Vec<_>>())
        };
        let g = Guard::default();
        let from_prior = dist(models.last().unwrap(), &prior);
        assert!(from_prior <= g.max_from_prior + 1e-9, "{from_prior}");
        assert!(
            from_prior > 0.9 * g.max_from_prior,
            "the cap, not less: {from_prior}"
        );
        // Within any window, at most the drift cap ((v+1) against max(1, v−20)).
        for i in 21..models.len() {
            let d = dist(&models[i], &models[i - 21]);
            assert!(d <= g.max_drift + 1e-9, "version {}: {d}", i + 1);
        }
        // The first step: clipped to C = 1, then a third of it (one token of three).
        let first = dist(&models[1], &models[0]);
        assert!((first - DEFAULT_CLIP / 3.0).abs() < 1e-9, "{first}");
        let st = rt.block_on(s.status(3, privacy::DEFAULT_DELTA)).unwrap();
        assert!(st.replay_consistent);
        assert_eq!(st.version, 251);
    }

    #[test]
    fn exactly_once_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.sqlite");
        let p = Params::default();
        let s = Sync::new(&db, None);
        assert_eq!(s.version(), 1);
        for (i, tok) in ["a", "b", "c"].iter().enumerate() {
            let r = s.submit(tok, &update(&format!("u{i}"), 1, 0.1), 4, &p);
            assert!(matches!(r, Submitted::Accepted { version: 1, .. }));
        }
        drop(s);
        let s = Sync::new(&db, None);
        assert_eq!(s.gauges().pending, 3);
        assert_eq!(
            s.submit("x", &update("u0", 1, 0.1), 4, &p),
            Submitted::Duplicate { version: 1 }
        );
        let r = s.submit("d", &update("u4", 1, 0.1), 4, &p);
        assert_eq!(
            r,
            Submitted::Accepted {
                version: 2,
                aggregations: 1,
                superseded: vec![],
            }
        );
        assert_eq!(s.gauges().pending, 0);
        let st = s.status();
        assert_eq!(st.updates_applied, 4);
        assert_eq!(st.versions_updates_sum, 4);
        assert!(st.replay_consistent);
        let prior = protocol::vector_of(&prior::prior());
        assert!((s.vector()[0] - prior[0] - 0.1).abs() < 1e-12);
    }

    #[test]
    fn a_newer_update_supersedes_the_queued_one_of_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.sqlite");
        // The plain mean, so the result shows which deltas took part.
        let p = Params {
            trim: 0.0,
            ..Params::default()
        };
        let s = Sync::new(&db, None);
        s.submit("a", &update("a1", 1, 0.1), 3, &p);
        s.submit("b", &update("b1", 1, 0.1), 3, &p);
        // a pushes twice more: each replaces its queued update, the buffer stays at two.
        let r = s.submit("a", &update("a2", 1, 0.2), 3, &p);
        assert_eq!(
            r,
            Submitted::Accepted {
                version: 1,
                aggregations: 0,
                superseded: vec!["a1".into()],
            }
        );
        drop(s);
        // The slot survives a restart, and the superseded id is still known.
        let s = Sync::new(&db, None);
        let g = s.gauges();
        assert_eq!((g.pending, g.buffer_fill), (2, 2));
        assert_eq!(
            s.submit("a", &update("a1", 1, 0.1), 3, &p),
            Submitted::Duplicate { version: 1 }
        );
        let r = s.submit("a", &update("a3", 1, 0.05), 3, &p);
        assert!(
            matches!(r, Submitted::Accepted { aggregations: 0, ref superseded, .. } if superseded == &["a2"])
        );
        let r = s.submit("c", &update("c1", 1, 0.1), 3, &p);
        assert!(matches!(
            r,
            Submitted::Accepted {
                version: 2,
                aggregations: 1,
                ..
            }
        ));
        let st = s.status();
        assert_eq!(
            (st.updates_total, st.updates_applied, st.updates_superseded),
            (5, 3, 2)
        );
        assert_eq!(st.versions_updates_sum, 3);
        assert!(st.replay_consistent);
        // Only a's newest delta (0.05) took part: the mean of 0.05, 0.1 and 0.1.
        let prior = protocol::vector_of(&prior::prior());
        assert!((s.vector()[0] - prior[0] - 0.25 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn dp_noise_is_added_with_its_variance_counted_and_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.sqlite");
        let (z, clip) = (2.0, 0.5);
        let s = Sync::new(&db, Some(clip));
        let p = Params {
            dp_noise: Some(z),
            ..Params::default()
        };
        // Two tokens send the same delta (0.1 on the first weight) to every aggregate: without
        // noise each version would move by exactly that; what is left over is the noise.
        const AGGREGATIONS: usize = 150;
        let mut residuals = Vec::new();
        for t in 0..AGGREGATIONS {
            let before = s.vector();
            let v = s.version();
            s.submit("a", &update(&format!("a{t}"), v, 0.1), 2, &p);
            let r = s.submit("b", &update(&format!("b{t}"), v, 0.1), 2, &p);
            assert!(matches!(
                r,
                Submitted::Accepted {
                    aggregations: 1,
                    ..
                }
            ));
            let after = s.vector();
            for (j, (a, b)) in after.iter().zip(&before).enumerate() {
                residuals.push(a - b - if j == 0 { 0.1 } else { 0.0 });
            }
        }
        // σ = z·C/n = 2 · 0.5 / 2 = 0.5. 3,600 draws: the sample variance is within ±10 % of
        // σ² with overwhelming odds (its relative sd is 2.4 %).
        let n = residuals.len() as f64;
        let mean = residuals.iter().sum::<f64>() / n;
        let var = residuals.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
        assert!((var / 0.25 - 1.0).abs() < 0.1, "variance {var}");
        assert!(mean.abs() < 0.05, "mean {mean}");
        // The noise is stored, so the replay still holds; the privacy spent survives a reopen.
        drop(s);
        let s = Sync::new(&db, Some(clip));
        let st = s.status();
        assert!(st.replay_consistent);
        assert_eq!(st.dp_aggregations, AGGREGATIONS as u64);
        let mut spent = Spent::default();
        (0..AGGREGATIONS).for_each(|_| spent.add(z));
        assert_eq!(st.dp_epsilon, spent.epsilon(privacy::DEFAULT_DELTA));
        assert!(st.dp_epsilon > 0.0);
        // Tampering with a stored noise vector is caught by the replay.
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute(
                "UPDATE versions SET noise = replace(noise, '[', '[1.0,') WHERE version = 5",
                [],
            )
            .unwrap();
        assert!(!s.status().replay_consistent);
    }

    #[test]
    fn refuses_stale_unknown_and_long() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sync::new(&dir.path().join("s.sqlite"), None);
        let p = Params::default();
        let r = s.submit("a", &update("u1", 7, 0.1), 1, &p);
        assert!(matches!(r, Submitted::Refused(Refusal::UnknownBase { .. })));
        for i in 0..22 {
            s.submit("a", &update(&format!("v{i}"), s.version(), 0.01), 1, &p);
        }
        let r = s.submit("a", &update("old", 1, 0.1), 1, &p);
        assert!(matches!(r, Submitted::Refused(Refusal::Stale { .. })));
        let r = s.submit("a", &update("big", s.version(), 1e6), 1, &p);
        assert!(matches!(r, Submitted::Refused(Refusal::Norm { .. })));
        assert!(s.status().replay_consistent);
    }

    #[test]
    fn rollback_makes_an_old_version_current() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sync::new(&dir.path().join("s.sqlite"), None);
        let p = Params::default();
        s.submit("a", &update("u1", 1, 0.5), 1, &p);
        assert_eq!(s.version(), 2);
        let v = s.rt.block_on(s.s.rollback(1)).unwrap();
        assert_eq!(v, 3);
        assert_eq!(s.vector(), protocol::vector_of(&prior::prior()));
        assert!(s.status().replay_consistent);
    }
}
