//! The server's durable state in SQLite: model versions and accepted updates.
//!
//! Exactly-once, also across a SIGKILL: an update is accepted by one committed `INSERT` (its
//! row *is* the buffer entry: `state = pending`), and an aggregation commits the new version
//! together with marking its rows `applied` in one transaction. A restart rebuilds the buffer
//! from the pending rows, so an accepted update is never lost, and a row can only be applied
//! by the version that marks it. Update ids are unique, so a client that retries after a lost
//! answer is told "duplicate" instead of being counted twice.
//!
//! One pending slot per token: a newer update from a token marks its queued one `superseded`
//! in the same transaction that inserts it, so one client cannot fill a buffer (or several)
//! on its own. The superseded row keeps its id, so a re-send of it is still a duplicate.
//!
//! One writer: the app keeps this behind a mutex. Admin commands (`serve rollback`) may write
//! from another process while a server runs; `PRAGMA data_version` tells the server to reload.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::aggregate::{self, Buffered, Params};
use super::privacy::{self, Spent};
use crate::features;
use crate::federation::protocol::{self, GlobalModel, MAX_DELTA_NORM, Update};
use crate::model::prior;

/// Clip bound before enough norms are seen, and its limits.
pub const INITIAL_CLIP: f64 = 1.0;
pub const MIN_CLIP: f64 = 0.05;
pub const MAX_CLIP: f64 = MAX_DELTA_NORM;
/// Updates longer than this many clip bounds are refused.
pub const REJECT_FACTOR: f64 = 10.0;
/// Norms remembered for the adaptive clip bound.
pub(crate) const RECENT_NORMS: usize = 100;

const PENDING: i64 = 0;
const APPLIED: i64 = 1;
const DISCARDED: i64 = 2;
/// Replaced in its token's slot by a newer update before it was aggregated.
const SUPERSEDED: i64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("server database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("server database: {0}")]
    Corrupt(String),
    #[error("PostgreSQL: {0}")]
    Pg(#[from] tokio_postgres::Error),
    #[error("PostgreSQL connection pool: {0}")]
    Pool(String),
}

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

/// What happened to a submitted update.
#[derive(Debug, PartialEq)]
pub enum Submitted {
    /// Stored as its token's pending update; `superseded` names the queued update(s) of the
    /// same token it replaced (normally none or one).
    Accepted {
        version: u64,
        /// New versions this submit made (0 or 1 with SQLite; PostgreSQL may make more when
        /// it finds several buffers' worth waiting).
        aggregations: u64,
        superseded: Vec<String>,
    },
    Duplicate {
        version: u64,
    },
    Refused(Refusal),
}

#[derive(Clone, Debug)]
struct Pending {
    seq: i64,
    id: String,
    token: String,
    base_version: u64,
    samples: u64,
    delta: Vec<f64>,
    received_at: i64,
}

/// A summary for `serve status` and the metrics.
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

/// Versions whose rows `serve prune` always keeps. A pruned update's id is forgotten; what
/// keeps a re-send of it from being applied a second time is that its base version is then
/// more than [`protocol::MAX_STALENESS`] versions old, so it is refused as stale.
pub const MIN_KEEP: u64 = protocol::MAX_STALENESS + 1;

pub struct Storage {
    conn: Connection,
    data_version: i64,
    schema: u32,
    current: GlobalModel,
    pending: Vec<Pending>,
    norms: VecDeque<f64>,
    /// A fixed clip bound (`--clip`, needed by DP) instead of the adaptive one.
    fixed_clip: Option<f64>,
    /// The privacy spent by noised aggregations (all versions, rolled back or not).
    spent: Spent,
}

const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS versions (
    version INTEGER PRIMARY KEY,
    schema INTEGER NOT NULL,
    parent INTEGER,
    vector TEXT NOT NULL,
    updates INTEGER NOT NULL,
    total_updates INTEGER NOT NULL,
    clip REAL,
    lr REAL,
    rule TEXT,
    trim REAL,
    note TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS updates (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    token TEXT NOT NULL,
    schema INTEGER NOT NULL,
    base_version INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    norm REAL NOT NULL,
    delta TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    state INTEGER NOT NULL,
    applied_version INTEGER,
    staleness INTEGER
);
CREATE INDEX IF NOT EXISTS updates_pending ON updates(seq) WHERE state = 0;
CREATE INDEX IF NOT EXISTS updates_applied ON updates(applied_version);
CREATE TABLE IF NOT EXISTS pruned (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    through INTEGER NOT NULL,
    applied INTEGER NOT NULL,
    superseded INTEGER NOT NULL,
    discarded INTEGER NOT NULL
);
";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What earlier prunes removed.
fn read_pruned(conn: &Connection) -> Result<Pruned, StorageError> {
    Ok(conn
        .query_row(
            "SELECT through, applied, superseded, discarded FROM pruned WHERE id = 1",
            [],
            |r| {
                Ok(Pruned {
                    through: r.get::<_, i64>(0)? as u64,
                    applied: r.get::<_, i64>(1)? as u64,
                    superseded: r.get::<_, i64>(2)? as u64,
                    discarded: r.get::<_, i64>(3)? as u64,
                })
            },
        )
        .optional()?
        .unwrap_or_default())
}

fn parse_vector(text: &str) -> Result<Vec<f64>, StorageError> {
    serde_json::from_str(text).map_err(|e| StorageError::Corrupt(format!("bad vector: {e}")))
}

fn vector_text(v: &[f64]) -> String {
    serde_json::to_string(v).expect("finite numbers serialise")
}

/// The checks that need the state, in the order both stores make them: the base version
/// must be one of the schema's versions (`base_known`) and not newer than `current`, at most
/// [`protocol::MAX_STALENESS`] versions old, and the delta's `norm` within `reject_bound`.
pub(crate) fn refusal(
    update: &Update,
    current: u64,
    base_known: bool,
    norm: f64,
    reject_bound: f64,
) -> Option<Refusal> {
    if !base_known || update.base_version > current {
        return Some(Refusal::UnknownBase {
            base: update.base_version,
            current,
        });
    }
    let staleness = current - update.base_version;
    if staleness > protocol::MAX_STALENESS {
        return Some(Refusal::Stale { staleness });
    }
    if norm > reject_bound {
        return Some(Refusal::Norm {
            norm,
            bound: reject_bound,
        });
    }
    None
}

/// One aggregation's step as both stores compute it, with DP-FedAvg's equal weights and
/// noise when `params.dp_noise` is set: the step (noise included) and the noise, which is
/// stored with the version so that the replay can check it. `None` for an empty buffer.
pub(crate) fn noised_step(
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

/// The next model of both stores: `lr` times `step` added to `vector`. An aggregate that is
/// not finite is refused rather than stored.
pub(crate) fn stepped(vector: &[f64], step: &[f64], lr: f64) -> Result<Vec<f64>, StorageError> {
    let next: Vec<f64> = vector.iter().zip(step).map(|(g, s)| g + lr * s).collect();
    if !next.iter().all(|v| v.is_finite()) {
        return Err(StorageError::Corrupt("aggregate is not finite".into()));
    }
    Ok(next)
}

/// The clip bound C from the most recent accepted norms (newest first or last: the median
/// does not care).
pub(crate) fn clip_from_norms(norms: &[f64]) -> f64 {
    aggregate::clip_bound(norms, INITIAL_CLIP, MIN_CLIP, MAX_CLIP)
}

impl Storage {
    /// Open (creating when missing) the database; the first version is the embedded prior.
    /// `fsync` makes every commit durable against power loss too (slower); without it a
    /// commit survives the process being killed, which is what the tests check.
    pub fn open(path: &Path, fsync: bool) -> Result<Storage, StorageError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
        let tx = conn.transaction()?;
        tx.execute_batch(SCHEMA_SQL)?;
        // Databases made before DP-FedAvg lack the columns of a noised version.
        let has_dp: i64 = tx.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('versions') WHERE name = 'dp_z'",
            [],
            |r| r.get(0),
        )?;
        if has_dp == 0 {
            tx.execute_batch(
                "ALTER TABLE versions ADD COLUMN noise TEXT;
                 ALTER TABLE versions ADD COLUMN dp_z REAL;",
            )?;
        }
        let schema = features::SCHEMA_VERSION;
        let has: Option<i64> = tx
            .query_row(
                "SELECT version FROM versions WHERE schema = ?1 LIMIT 1",
                [schema],
                |r| r.get(0),
            )
            .optional()?;
        if has.is_none() {
            let v = protocol::vector_of(&prior::prior());
            tx.execute(
                "INSERT INTO versions (schema, parent, vector, updates, total_updates, note, created_at)
                 VALUES (?1, NULL, ?2, 0, 0, 'prior', ?3)",
                params![schema, vector_text(&v), now()],
            )?;
        }
        tx.commit()?;
        let mut s = Storage {
            conn,
            data_version: 0,
            schema,
            current: GlobalModel {
                version: 0,
                schema,
                vector: Vec::new(),
                updates: 0,
                max_norm: 0.0,
            },
            pending: Vec::new(),
            norms: VecDeque::new(),
            fixed_clip: None,
            spent: Spent::default(),
        };
        s.reload()?;
        Ok(s)
    }

    /// Rebuild the in-memory view (current model, buffer, recent norms) from the database.
    fn reload(&mut self) -> Result<(), StorageError> {
        let (version, vector, total): (i64, String, i64) = self.conn.query_row(
            "SELECT version, vector, total_updates FROM versions WHERE schema = ?1
             ORDER BY version DESC LIMIT 1",
            [self.schema],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut stmt = self.conn.prepare(
            "SELECT seq, id, token, base_version, samples, delta, received_at FROM updates
             WHERE state = 0 AND schema = ?1 ORDER BY seq",
        )?;
        let pending = stmt
            .query_map([self.schema], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        self.pending = pending
            .into_iter()
            .map(|(seq, id, token, base, samples, delta, received_at)| {
                Ok(Pending {
                    seq,
                    id,
                    token,
                    base_version: base as u64,
                    samples: samples as u64,
                    delta: parse_vector(&delta)?,
                    received_at,
                })
            })
            .collect::<Result<_, StorageError>>()?;
        let mut stmt = self
            .conn
            .prepare("SELECT norm FROM updates WHERE state != 2 ORDER BY seq DESC LIMIT ?1")?;
        let mut norms: Vec<f64> = stmt
            .query_map([RECENT_NORMS as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        norms.reverse();
        self.norms = norms.into();
        self.current = GlobalModel {
            version: version as u64,
            schema: self.schema,
            vector: parse_vector(&vector)?,
            updates: total as u64,
            max_norm: 0.0,
        };
        self.current.max_norm = self.reject_bound();
        let mut stmt = self
            .conn
            .prepare("SELECT dp_z FROM versions WHERE dp_z IS NOT NULL")?;
        let zs: Vec<f64> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        self.spent = Spent::default();
        zs.into_iter().for_each(|z| self.spent.add(z));
        self.data_version = self.data_version()?;
        Ok(())
    }

    /// Use a fixed clip bound C instead of the median of recent norms (`None`: adaptive).
    pub fn fix_clip(&mut self, clip: Option<f64>) {
        self.fixed_clip = clip;
        self.current.max_norm = self.reject_bound();
    }

    /// The privacy spent by the noised aggregations so far.
    pub fn spent(&self) -> Spent {
        self.spent
    }

    fn data_version(&self) -> Result<i64, StorageError> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Reload when another connection (an admin command) committed since we last looked.
    fn refresh(&mut self) -> Result<(), StorageError> {
        if self.data_version()? != self.data_version {
            self.reload()?;
        }
        Ok(())
    }

    /// The clip bound C: the median norm of recent accepted updates.
    pub fn clip_bound(&self) -> f64 {
        if let Some(c) = self.fixed_clip {
            return c;
        }
        let norms: Vec<f64> = self.norms.iter().copied().collect();
        clip_from_norms(&norms)
    }

    fn reject_bound(&self) -> f64 {
        REJECT_FACTOR * self.clip_bound()
    }

    /// The current global model of `schema`, `None` for a schema this server does not serve.
    pub fn model(&mut self, schema: u32) -> Result<Option<GlobalModel>, StorageError> {
        if schema != self.schema {
            return Ok(None);
        }
        self.refresh()?;
        Ok(Some(self.current.clone()))
    }

    pub fn version(&self) -> u64 {
        self.current.version
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Distinct tokens in the buffer (one slot each).
    pub fn buffer_fill(&self) -> usize {
        let mut tokens: Vec<&str> = self.pending.iter().map(|p| p.token.as_str()).collect();
        tokens.sort_unstable();
        tokens.dedup();
        tokens.len()
    }

    /// Accept or refuse a structurally valid update from `token`; aggregate when `buffer`
    /// distinct tokens are waiting. A queued update of the same token is superseded.
    pub fn submit(
        &mut self,
        token: &str,
        update: &Update,
        buffer: usize,
        params: &Params,
    ) -> Result<Submitted, StorageError> {
        self.refresh()?;
        let seen: Option<i64> = self
            .conn
            .query_row("SELECT seq FROM updates WHERE id = ?1", [&update.id], |r| {
                r.get(0)
            })
            .optional()?;
        if seen.is_some() {
            return Ok(Submitted::Duplicate {
                version: self.current.version,
            });
        }
        let current = self.current.version;
        let known: Option<i64> = self
            .conn
            .query_row(
                "SELECT version FROM versions WHERE version = ?1 AND schema = ?2",
                params![update.base_version as i64, update.schema],
                |r| r.get(0),
            )
            .optional()?;
        let norm = protocol::norm(&update.delta);
        if let Some(r) = refusal(update, current, known.is_some(), norm, self.reject_bound()) {
            return Ok(Submitted::Refused(r));
        }
        // The slot keeps the age of the update it replaces: the time flush counts from when
        // the token's slot was filled, so a token that pushes more often than `--flush-secs`
        // cannot keep postponing it.
        let replaced: Vec<&Pending> = self.pending.iter().filter(|p| p.token == token).collect();
        let received_at = replaced
            .iter()
            .map(|p| p.received_at)
            .min()
            .unwrap_or_else(now);
        let superseded: Vec<String> = replaced.iter().map(|p| p.id.clone()).collect();
        let samples = update.samples.min(protocol::MAX_SAMPLES);
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE updates SET state = 3 WHERE token = ?1 AND state = 0",
            [token],
        )?;
        tx.execute(
            "INSERT INTO updates (id, token, schema, base_version, samples, norm, delta, received_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)",
            params![
                update.id,
                token,
                update.schema,
                update.base_version as i64,
                samples as i64,
                norm,
                vector_text(&update.delta),
                received_at
            ],
        )?;
        let seq = tx.last_insert_rowid();
        tx.commit()?;
        self.data_version = self.data_version()?;
        self.pending.retain(|p| p.token != token);
        self.pending.push(Pending {
            seq,
            id: update.id.clone(),
            token: token.to_owned(),
            base_version: update.base_version,
            samples,
            delta: update.delta.clone(),
            received_at,
        });
        self.norms.push_back(norm);
        while self.norms.len() > RECENT_NORMS {
            self.norms.pop_front();
        }
        self.current.max_norm = self.reject_bound();
        let aggregations = if self.buffer_fill() >= buffer.max(1) {
            u64::from(self.aggregate(params)?)
        } else {
            0
        };
        Ok(Submitted::Accepted {
            version: self.current.version,
            aggregations,
            superseded,
        })
    }

    /// Aggregate when the oldest pending update has waited `after` (the time flush).
    pub fn flush_due(&mut self, after: Duration, params: &Params) -> Result<bool, StorageError> {
        self.refresh()?;
        let due = self
            .pending
            .iter()
            .map(|p| p.received_at)
            .min()
            .is_some_and(|t| now() - t >= after.as_secs() as i64);
        if due {
            self.aggregate(params)
        } else {
            Ok(false)
        }
    }

    /// Fold the buffer into a new version: the oldest pending update of each token, weighted,
    /// clipped and combined robustly. The version and the rows' `applied` mark commit in one
    /// transaction; memory changes only after the commit.
    pub fn aggregate(&mut self, params: &Params) -> Result<bool, StorageError> {
        let mut chosen: BTreeMap<&str, &Pending> = BTreeMap::new();
        for p in &self.pending {
            chosen.entry(p.token.as_str()).or_insert(p);
        }
        if chosen.is_empty() {
            return Ok(false);
        }
        let mut rows: Vec<&Pending> = chosen.into_values().collect();
        rows.sort_by_key(|p| p.seq);
        let current = self.current.version;
        let buffered: Vec<Buffered> = rows
            .iter()
            .map(|p| Buffered {
                delta: p.delta.clone(),
                samples: p.samples,
                staleness: current.saturating_sub(p.base_version),
            })
            .collect();
        let clip = self.clip_bound();
        let (step, noise) = noised_step(buffered.clone(), clip, params).expect("non-empty buffer");
        let used = params.effective();
        let vector = stepped(&self.current.vector, &step, params.lr)?;
        let total = self.current.updates + rows.len() as u64;
        let seqs: Vec<i64> = rows.iter().map(|p| p.seq).collect();
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO versions (schema, parent, vector, updates, total_updates, clip, lr, rule, trim, note, created_at, noise, dp_z)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'aggregate', ?10, ?11, ?12)",
            params![
                self.schema,
                current as i64,
                vector_text(&vector),
                rows.len() as i64,
                total as i64,
                clip,
                used.lr,
                rule_name(&used),
                used.trim,
                now(),
                noise.as_deref().map(vector_text),
                params.dp_noise,
            ],
        )?;
        let version = tx.last_insert_rowid() as u64;
        {
            let mut stmt = tx.prepare(
                "UPDATE updates SET state = 1, applied_version = ?1, staleness = ?2
                 WHERE seq = ?3 AND state = 0",
            )?;
            for (seq, b) in seqs.iter().zip(&buffered) {
                let changed = stmt.execute(params![version as i64, b.staleness as i64, seq])?;
                if changed != 1 {
                    // Someone else applied or discarded it: abandon this aggregation.
                    return Err(StorageError::Corrupt(format!(
                        "update {seq} is no longer pending"
                    )));
                }
            }
        }
        tx.commit()?;
        self.data_version = self.data_version()?;
        self.pending.retain(|p| !seqs.contains(&p.seq));
        if let Some(z) = params.dp_noise {
            self.spent.add(z);
        }
        self.current = GlobalModel {
            version,
            schema: self.schema,
            vector,
            updates: total,
            max_norm: self.reject_bound(),
        };
        Ok(true)
    }

    /// Make an earlier version current again, as a new version (so clients' base versions
    /// stay meaningful); pending updates were computed against the model being abandoned and
    /// are discarded. Returns the new version.
    pub fn rollback(&mut self, to: u64) -> Result<u64, StorageError> {
        self.refresh()?;
        let tx = self.conn.transaction()?;
        let row: Option<(String, i64)> = tx
            .query_row(
                "SELECT vector, total_updates FROM versions WHERE version = ?1 AND schema = ?2",
                params![to as i64, self.schema],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((vector, total)) = row else {
            return Err(StorageError::Corrupt(format!("no version {to}")));
        };
        tx.execute(
            "INSERT INTO versions (schema, parent, vector, updates, total_updates, note, created_at)
             VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)",
            params![
                self.schema,
                self.current.version as i64,
                vector,
                total,
                format!("rollback to {to}"),
                now()
            ],
        )?;
        let version = tx.last_insert_rowid() as u64;
        tx.execute("UPDATE updates SET state = 2 WHERE state = 0", [])?;
        tx.commit()?;
        self.reload()?;
        Ok(version)
    }

    /// Delete the rows of every version but the newest `keep` ones (at least [`MIN_KEEP`]):
    /// applied rows of older versions, and superseded or discarded rows based on one. The
    /// versions themselves (their vectors, for rollback) stay. Returns the totals so far.
    pub fn prune(&mut self, keep: u64) -> Result<Pruned, StorageError> {
        self.refresh()?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let newest: i64 = tx.query_row("SELECT MAX(version) FROM versions", [], |r| r.get(0))?;
        let through = Pruned::boundary(newest as u64, keep);
        let mut totals = read_pruned(&tx)?;
        if through <= totals.through {
            return Ok(totals);
        }
        let b = through as i64;
        totals.applied += tx.execute(
            "DELETE FROM updates WHERE state = ?1 AND applied_version <= ?2",
            params![APPLIED, b],
        )? as u64;
        totals.superseded += tx.execute(
            "DELETE FROM updates WHERE state = ?1 AND base_version <= ?2",
            params![SUPERSEDED, b],
        )? as u64;
        totals.discarded += tx.execute(
            "DELETE FROM updates WHERE state = ?1 AND base_version <= ?2",
            params![DISCARDED, b],
        )? as u64;
        totals.through = through;
        tx.execute(
            "INSERT OR REPLACE INTO pruned (id, through, applied, superseded, discarded)
             VALUES (1, ?1, ?2, ?3, ?4)",
            params![
                b,
                totals.applied as i64,
                totals.superseded as i64,
                totals.discarded as i64
            ],
        )?;
        tx.commit()?;
        self.reload()?;
        Ok(totals)
    }

    /// Counts, versions and a replay check of every aggregation.
    pub fn status(&mut self, last_versions: usize, delta: f64) -> Result<Status, StorageError> {
        self.refresh()?;
        let count = |state: i64| -> Result<u64, StorageError> {
            Ok(self.conn.query_row(
                "SELECT COUNT(*) FROM updates WHERE state = ?1",
                [state],
                |r| r.get::<_, i64>(0),
            )? as u64)
        };
        let pruned = read_pruned(&self.conn)?;
        let (pending, applied, discarded, superseded) = (
            count(PENDING)?,
            count(APPLIED)? + pruned.applied,
            count(DISCARDED)? + pruned.discarded,
            count(SUPERSEDED)? + pruned.superseded,
        );
        let versions_updates_sum: i64 =
            self.conn
                .query_row("SELECT COALESCE(SUM(updates), 0) FROM versions", [], |r| {
                    r.get(0)
                })?;
        let prior = protocol::vector_of(&prior::prior());
        let mut stmt = self.conn.prepare(
            "SELECT version, parent, updates, note, created_at, vector FROM versions
             ORDER BY version DESC LIMIT ?1",
        )?;
        let versions = stmt
            .query_map([last_versions as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|(v, parent, updates, note, created_at, vector)| {
                let vector = parse_vector(&vector)?;
                let diff: Vec<f64> = vector.iter().zip(&prior).map(|(a, b)| a - b).collect();
                Ok(VersionInfo {
                    version: v as u64,
                    parent: parent.map(|p| p as u64),
                    updates: updates as u64,
                    note,
                    created_at,
                    norm_from_prior: protocol::norm(&diff),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        drop(stmt);
        Ok(Status {
            schema: self.schema,
            version: self.current.version,
            updates_total: pending + applied + discarded + superseded,
            updates_pending: pending,
            updates_applied: applied,
            updates_discarded: discarded,
            updates_superseded: superseded,
            versions_updates_sum: versions_updates_sum as u64,
            updates_pruned: pruned.rows(),
            pruned_through: pruned.through,
            buffer_fill: self.buffer_fill() as u64,
            clip_bound: self.clip_bound(),
            replay_consistent: self.replay(pruned.through)?,
            dp_aggregations: self.spent.aggregations,
            dp_delta: delta,
            dp_epsilon: self.spent.epsilon(delta),
            versions,
        })
    }

    /// Recompute every aggregated version from its parent and its own applied rows (with the
    /// clip bound, rule and staleness recorded at the time) and compare with what is stored.
    /// An update applied twice, or a version without its rows, shows up here. Versions up to
    /// `pruned_through` lost their rows to `serve prune` and are taken as stored.
    pub fn replay(&self, pruned_through: u64) -> Result<bool, StorageError> {
        let mut stmt = self.conn.prepare(
            "SELECT version, parent, vector, updates, clip, lr, rule, trim, noise, dp_z FROM versions
             ORDER BY version",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    VersionRow {
                        version: r.get(0)?,
                        parent: r.get(1)?,
                        vector: Vec::new(),
                        updates: r.get(3)?,
                        clip: r.get(4)?,
                        lr: r.get(5)?,
                        rule: r.get(6)?,
                        trim: r.get(7)?,
                        noise: None,
                        dp_z: r.get(9)?,
                    },
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|(mut row, vector, noise)| {
                row.vector = parse_vector(&vector)?;
                row.noise = noise.as_deref().map(parse_vector).transpose()?;
                Ok(row)
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        drop(stmt);
        let mut upd = self.conn.prepare(
            "SELECT delta, samples, staleness FROM updates WHERE applied_version = ?1 ORDER BY seq",
        )?;
        replay_versions(rows, pruned_through, |version| {
            upd.query_map([version], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|(d, s, t)| {
                Ok(Buffered {
                    delta: parse_vector(&d)?,
                    samples: s as u64,
                    staleness: t as u64,
                })
            })
            .collect()
        })
    }
}

/// One stored version as the replay reads it.
pub(crate) struct VersionRow {
    pub version: i64,
    pub parent: Option<i64>,
    pub vector: Vec<f64>,
    pub updates: i64,
    pub clip: Option<f64>,
    pub lr: Option<f64>,
    pub rule: Option<String>,
    pub trim: Option<f64>,
    /// DP-FedAvg: the noise added to the step, and the noise multiplier.
    pub noise: Option<Vec<f64>>,
    pub dp_z: Option<f64>,
}

/// The replay check shared by both stores: `rows` in version order, `applied(v)` the rows
/// applied by version `v` in `seq` order. True when every aggregated version after
/// `pruned_through` is its parent plus the aggregate of exactly its own rows.
pub(crate) fn replay_versions<E>(
    rows: Vec<VersionRow>,
    pruned_through: u64,
    mut applied: impl FnMut(i64) -> Result<Vec<Buffered>, E>,
) -> Result<bool, E> {
    let mut vectors: HashMap<i64, Vec<f64>> = HashMap::new();
    for row in rows {
        if row.version <= pruned_through as i64 {
            // Its rows are gone: what is stored is the base its children are replayed on.
            vectors.insert(row.version, row.vector);
            continue;
        }
        let buffered = applied(row.version)?;
        if buffered.len() as i64 != row.updates {
            return Ok(false);
        }
        if let (Some(parent), Some(clip), Some(lr), Some(rule), Some(trim)) =
            (row.parent, row.clip, row.lr, row.rule, row.trim)
        {
            let Some(base) = vectors.get(&parent) else {
                return Ok(false);
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
            let mut buffered = buffered;
            if row.dp_z.is_some() {
                // DP weighs every update equally (see `noised_step`).
                buffered.iter_mut().for_each(|b| b.samples = 1);
            }
            let Some(mut step) = aggregate::aggregate(&buffered, clip, &params) else {
                return Ok(false);
            };
            match (&row.noise, row.dp_z) {
                (Some(noise), Some(_)) if noise.len() == step.len() => {
                    step.iter_mut().zip(noise).for_each(|(s, n)| *s += n);
                }
                (None, None) => {}
                _ => return Ok(false),
            }
            let again: Vec<f64> = base.iter().zip(&step).map(|(g, s)| g + lr * s).collect();
            if again
                .iter()
                .zip(&row.vector)
                .any(|(a, b)| (a - b).abs() > 1e-9 * (1.0 + b.abs()))
            {
                return Ok(false);
            }
        }
        vectors.insert(row.version, row.vector);
    }
    Ok(true)
}

/// The rule's name as stored with a version.
pub(crate) fn rule_name(params: &Params) -> Option<String> {
    serde_json::to_value(params.rule)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
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

    #[test]
    fn exactly_once_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.sqlite");
        let p = Params::default();
        let mut s = Storage::open(&db, false).unwrap();
        assert_eq!(s.version(), 1);
        for (i, tok) in ["a", "b", "c"].iter().enumerate() {
            let r = s.submit(tok, &update(&format!("u{i}"), 1, 0.1), 4, &p);
            assert!(matches!(r, Ok(Submitted::Accepted { version: 1, .. })));
        }
        drop(s);
        let mut s = Storage::open(&db, false).unwrap();
        assert_eq!(s.pending(), 3);
        assert_eq!(
            s.submit("x", &update("u0", 1, 0.1), 4, &p).unwrap(),
            Submitted::Duplicate { version: 1 }
        );
        let r = s.submit("d", &update("u4", 1, 0.1), 4, &p).unwrap();
        assert_eq!(
            r,
            Submitted::Accepted {
                version: 2,
                aggregations: 1,
                superseded: vec![],
            }
        );
        assert_eq!(s.pending(), 0);
        let st = s.status(10, privacy::DEFAULT_DELTA).unwrap();
        assert_eq!(st.updates_applied, 4);
        assert_eq!(st.versions_updates_sum, 4);
        assert!(st.replay_consistent);
        let prior = protocol::vector_of(&prior::prior());
        let g = s.model(features::SCHEMA_VERSION).unwrap().unwrap();
        assert!((g.vector[0] - prior[0] - 0.1).abs() < 1e-12);
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
        let mut s = Storage::open(&db, false).unwrap();
        s.submit("a", &update("a1", 1, 0.1), 3, &p).unwrap();
        s.submit("b", &update("b1", 1, 0.1), 3, &p).unwrap();
        // a pushes twice more: each replaces its queued update, the buffer stays at two.
        let r = s.submit("a", &update("a2", 1, 0.2), 3, &p).unwrap();
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
        let mut s = Storage::open(&db, false).unwrap();
        assert_eq!((s.pending(), s.buffer_fill()), (2, 2));
        assert_eq!(
            s.submit("a", &update("a1", 1, 0.1), 3, &p).unwrap(),
            Submitted::Duplicate { version: 1 }
        );
        let r = s.submit("a", &update("a3", 1, 0.05), 3, &p).unwrap();
        assert!(
            matches!(r, Submitted::Accepted { aggregations: 0, ref superseded, .. } if superseded == &["a2"])
        );
        let r = s.submit("c", &update("c1", 1, 0.1), 3, &p).unwrap();
        assert!(matches!(
            r,
            Submitted::Accepted {
                version: 2,
                aggregations: 1,
                ..
            }
        ));
        let st = s.status(10, privacy::DEFAULT_DELTA).unwrap();
        assert_eq!(
            (st.updates_total, st.updates_applied, st.updates_superseded),
            (5, 3, 2)
        );
        assert_eq!(st.versions_updates_sum, 3);
        assert!(st.replay_consistent);
        // Only a's newest delta (0.05) took part: the mean of 0.05, 0.1 and 0.1.
        let prior = protocol::vector_of(&prior::prior());
        let g = s.model(features::SCHEMA_VERSION).unwrap().unwrap();
        assert!((g.vector[0] - prior[0] - 0.25 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn dp_noise_is_added_with_its_variance_counted_and_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.sqlite");
        let mut s = Storage::open(&db, false).unwrap();
        let (z, clip) = (2.0, 0.5);
        s.fix_clip(Some(clip));
        let p = Params {
            dp_noise: Some(z),
            ..Params::default()
        };
        // Two tokens send the same delta (0.1 on the first weight) to every aggregate: without
        // noise each version would move by exactly that; what is left over is the noise.
        const AGGREGATIONS: usize = 150;
        let mut residuals = Vec::new();
        for t in 0..AGGREGATIONS {
            let before = s.model(features::SCHEMA_VERSION).unwrap().unwrap();
            let v = before.version;
            s.submit("a", &update(&format!("a{t}"), v, 0.1), 2, &p)
                .unwrap();
            let r = s.submit("b", &update(&format!("b{t}"), v, 0.1), 2, &p);
            assert!(matches!(
                r,
                Ok(Submitted::Accepted {
                    aggregations: 1,
                    ..
                })
            ));
            let after = s.model(features::SCHEMA_VERSION).unwrap().unwrap();
            for (j, (a, b)) in after.vector.iter().zip(&before.vector).enumerate() {
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
        let mut s = Storage::open(&db, false).unwrap();
        let st = s.status(3, privacy::DEFAULT_DELTA).unwrap();
        assert!(st.replay_consistent);
        assert_eq!(st.dp_aggregations, AGGREGATIONS as u64);
        let mut spent = Spent::default();
        (0..AGGREGATIONS).for_each(|_| spent.add(z));
        assert_eq!(st.dp_epsilon, spent.epsilon(privacy::DEFAULT_DELTA));
        assert!(st.dp_epsilon > 0.0);
        // Tampering with a stored noise vector is caught by the replay.
        s.conn
            .execute(
                "UPDATE versions SET noise = replace(noise, '[', '[1.0,') WHERE version = 5",
                [],
            )
            .unwrap();
        assert!(!s.replay(0).unwrap());
    }

    #[test]
    fn refuses_stale_unknown_and_long() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Storage::open(&dir.path().join("s.sqlite"), false).unwrap();
        let p = Params::default();
        let r = s.submit("a", &update("u1", 7, 0.1), 1, &p).unwrap();
        assert!(matches!(r, Submitted::Refused(Refusal::UnknownBase { .. })));
        for i in 0..22 {
            s.submit("a", &update(&format!("v{i}"), s.version(), 0.01), 1, &p)
                .unwrap();
        }
        let r = s.submit("a", &update("old", 1, 0.1), 1, &p).unwrap();
        assert!(matches!(r, Submitted::Refused(Refusal::Stale { .. })));
        let r = s
            .submit("a", &update("big", s.version(), 1e6), 1, &p)
            .unwrap();
        assert!(matches!(r, Submitted::Refused(Refusal::Norm { .. })));
        assert!(
            s.status(5, privacy::DEFAULT_DELTA)
                .unwrap()
                .replay_consistent
        );
    }

    #[test]
    fn rollback_makes_an_old_version_current() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Storage::open(&dir.path().join("s.sqlite"), false).unwrap();
        let p = Params::default();
        s.submit("a", &update("u1", 1, 0.5), 1, &p).unwrap();
        assert_eq!(s.version(), 2);
        let v = s.rollback(1).unwrap();
        assert_eq!(v, 3);
        let g = s.model(features::SCHEMA_VERSION).unwrap().unwrap();
        assert_eq!(g.vector, protocol::vector_of(&prior::prior()));
        assert!(
            s.status(5, privacy::DEFAULT_DELTA)
                .unwrap()
                .replay_consistent
        );
    }
}
