//! The server's state in PostgreSQL, shared by several `fedtest serve` replicas
//! (`--db postgres://user@host:port/db`). Same tables, states and guarantees as the SQLite
//! store ([`super::storage`]); what differs is who may write when.
//!
//! Locking: two transaction-scoped advisory locks. [`LOCK_KEY`] is taken *shared* by every
//! accept (accepts run side by side, on every replica) and *exclusive* by a rollback and the
//! schema set-up, so a rollback sees every committed accept and no accept straddles it.
//! [`AGGREGATE_KEY`] serialises the writers of versions (aggregation, rollback, set-up): an
//! aggregation takes it, re-reads the buffer with `FOR UPDATE` and re-checks why it was
//! started, so two replicas that both see a full buffer make one version, not two, and a
//! version's parent is always the newest version. Accepts do not wait for an aggregation,
//! except one that supersedes a row being applied (it waits on that row's lock).
//!
//! An accept is one round trip: one call of the `fedtest_submit` function, which takes the
//! shared lock, checks (duplicate id, base version, staleness, norm against a bound the replica
//! computes from recent norms it re-reads every 250 ms) and writes — one statement, so one
//! implicit transaction and no BEGIN/COMMIT round trips.
//!
//! Exactly once: `id` is `UNIQUE`, so a re-sent id is a duplicate even when two replicas take
//! it at the same moment (the second `INSERT` fails on the constraint and is answered
//! "duplicate"); rows go from pending to applied only under the exclusive lock, in the
//! transaction that inserts their version. One pending slot per token is a partial unique
//! index (`token, schema WHERE state = 0`): two replicas racing for one token's slot cannot
//! both win; the loser retries and supersedes the winner's update.
//!
//! Nothing is cached between requests: every replica reads the current version, buffer and
//! recent norms from the database, so a rollback made through one is served by all at once.
//! The connection is plaintext (no TLS is compiled in): keep the database on a private
//! network or the same host.

use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// Statement parameters, named so that pipelined statements can borrow them.
type Args<'a, const N: usize> = [&'a (dyn ToSql + Sync); N];

use super::aggregate::{Buffered, Params};
use super::privacy::Spent;
use super::storage::{
    self, Pruned, RECENT_NORMS, REJECT_FACTOR, Status, StorageError, Submitted, VersionInfo,
    VersionRow,
};
use crate::features;
use crate::federation::protocol::{self, GlobalModel, Update};
use crate::model::prior;

/// Advisory lock of the fedtest state: shared by accepts, exclusive for a rollback ("fedtest"
/// in ASCII, then 1).
pub const LOCK_KEY: i64 = 0x6665_6474_6573_7401;
/// Advisory lock of the version chain: one writer of versions at a time.
pub const AGGREGATE_KEY: i64 = 0x6665_6474_6573_7402;

/// How often a submit retries when another replica took its token's slot at the same moment.
const SLOT_RETRIES: usize = 8;

const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS fedtest_versions (
    version BIGINT PRIMARY KEY,
    schema INTEGER NOT NULL,
    parent BIGINT,
    vector DOUBLE PRECISION[] NOT NULL,
    updates BIGINT NOT NULL,
    total_updates BIGINT NOT NULL,
    clip DOUBLE PRECISION,
    lr DOUBLE PRECISION,
    rule TEXT,
    trim DOUBLE PRECISION,
    noise DOUBLE PRECISION[],
    dp_z DOUBLE PRECISION,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS fedtest_versions_schema ON fedtest_versions (schema, version);
CREATE TABLE IF NOT EXISTS fedtest_updates (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL CONSTRAINT fedtest_updates_id UNIQUE,
    token TEXT NOT NULL,
    schema INTEGER NOT NULL,
    base_version BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    norm DOUBLE PRECISION NOT NULL,
    delta DOUBLE PRECISION[] NOT NULL,
    received_at BIGINT NOT NULL,
    state SMALLINT NOT NULL,
    applied_version BIGINT,
    staleness BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS fedtest_updates_slot ON fedtest_updates (token, schema)
    WHERE state = 0;
CREATE INDEX IF NOT EXISTS fedtest_updates_applied ON fedtest_updates (applied_version);
CREATE TABLE IF NOT EXISTS fedtest_pruned (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    through BIGINT NOT NULL,
    applied BIGINT NOT NULL,
    superseded BIGINT NOT NULL,
    discarded BIGINT NOT NULL
);
";

const LOCK_EXCLUSIVE: &str = "SELECT pg_advisory_xact_lock($1)";
const TRY_LOCK_EXCLUSIVE: &str = "SELECT pg_try_advisory_xact_lock($1)";

/// The current model of a schema and the recent norms (for the clip bound).
const CURRENT_SQL: &str = "
SELECT v.version, v.vector, v.total_updates,
       ARRAY(SELECT norm FROM fedtest_updates WHERE state <> 2 ORDER BY seq DESC LIMIT $2)
FROM fedtest_versions v WHERE v.schema = $1 ORDER BY v.version DESC LIMIT 1";

const BOUND_TTL: Duration = Duration::from_millis(250);

/// An accept, as one function so that it is one round trip and one (implicit) transaction:
/// take the shared lock, check, supersede the token's queued update and insert the new one
/// (keeping the slot's age), and count the buffer. Each statement of a PL/pgSQL function reads
/// a fresh snapshot, so the checks see everything committed before the lock was granted.
///
/// The checks are [`storage::refusal`]'s as one predicate (base unknown or newer than the
/// current version, more than `p_max_stale` versions old, norm over `p_bound`): when it holds,
/// nothing is written and the caller names the reason from the facts returned, with the same
/// function the SQLite store uses. A re-sent id or a raced slot fails on its unique
/// constraint, as a plain `INSERT` would.
const ACCEPT_FN_SQL: &str = "
CREATE OR REPLACE FUNCTION fedtest_submit(
    p_lock BIGINT, p_id TEXT, p_token TEXT, p_schema INTEGER, p_base BIGINT, p_samples BIGINT,
    p_norm DOUBLE PRECISION, p_delta DOUBLE PRECISION[], p_now BIGINT, p_max_stale BIGINT,
    p_bound DOUBLE PRECISION)
RETURNS TABLE (written BOOLEAN, seen BOOLEAN, newest BIGINT, known BOOLEAN,
    superseded TEXT[], waiting BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_current BIGINT;
    v_known BOOLEAN;
    v_old TEXT[];
    v_since BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_lock);
    v_current := COALESCE(
        (SELECT max(v.version) FROM fedtest_versions v WHERE v.schema = p_schema), 0);
    IF EXISTS (SELECT 1 FROM fedtest_updates u WHERE u.id = p_id) THEN
        RETURN QUERY SELECT false, true, v_current, true, ARRAY[]::TEXT[], 0::BIGINT;
        RETURN;
    END IF;
    v_known := EXISTS (
        SELECT 1 FROM fedtest_versions v WHERE v.version = p_base AND v.schema = p_schema);
    IF NOT v_known OR p_base > v_current OR v_current - p_base > p_max_stale
            OR p_norm > p_bound THEN
        RETURN QUERY SELECT false, false, v_current, v_known, ARRAY[]::TEXT[], 0::BIGINT;
        RETURN;
    END IF;
    WITH old AS (
        UPDATE fedtest_updates u SET state = 3
        WHERE u.token = p_token AND u.schema = p_schema AND u.state = 0
        RETURNING u.id, u.received_at
    )
    SELECT COALESCE(array_agg(old.id), ARRAY[]::TEXT[]), min(old.received_at)
        INTO v_old, v_since FROM old;
    INSERT INTO fedtest_updates (id, token, schema, base_version, samples, norm, delta,
            received_at, state)
        VALUES (p_id, p_token, p_schema, p_base, p_samples, p_norm, p_delta,
            COALESCE(v_since, p_now), 0);
    RETURN QUERY SELECT true, false, v_current, true, v_old,
        (SELECT count(*) FROM fedtest_updates u WHERE u.state = 0 AND u.schema = p_schema);
END
$$";

const ACCEPT_SQL: &str = "SELECT written, seen, newest, known, superseded, waiting FROM \
    fedtest_submit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// The buffer, locked against a concurrent supersede until the aggregation commits.
const BUFFER_SQL: &str = "
SELECT seq, token, base_version, samples, delta, received_at FROM fedtest_updates
WHERE state = 0 AND schema = $1 ORDER BY seq FOR UPDATE";

const NEXT_VERSION_SQL: &str = "SELECT COALESCE(max(version), 0) + 1 FROM fedtest_versions";

const VERSION_SQL: &str = "
INSERT INTO fedtest_versions (version, schema, parent, vector, updates, total_updates, clip, lr, rule, trim, note, created_at, noise, dp_z)
VALUES ($11, $1, $2, $3, $4, $5, $6, $7, $8, $9, 'aggregate', $10, $12, $13)";

/// Mark the aggregated rows applied, with the staleness each had.
const APPLY_SQL: &str = "
UPDATE fedtest_updates u SET state = 1, applied_version = $1, staleness = t.staleness
FROM unnest($2::BIGINT[], $3::BIGINT[]) AS t(seq, staleness)
WHERE u.seq = t.seq AND u.state = 0";

const PRUNED_SQL: &str =
    "SELECT through, applied, superseded, discarded FROM fedtest_pruned WHERE id = 1";

/// What earlier prunes removed.
async fn read_pruned(c: &impl GenericClient) -> Result<Pruned, StorageError> {
    Ok(c.query_opt(PRUNED_SQL, &[])
        .await?
        .map(|r| Pruned {
            through: r.get::<_, i64>(0) as u64,
            applied: r.get::<_, i64>(1) as u64,
            superseded: r.get::<_, i64>(2) as u64,
            discarded: r.get::<_, i64>(3) as u64,
        })
        .unwrap_or_default())
}

const FILL_SQL: &str =
    "SELECT count(*), min(received_at) FROM fedtest_updates WHERE state = 0 AND schema = $1";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Why an aggregation was asked for; re-checked under the exclusive lock.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    /// At least this many tokens are waiting.
    Fill(usize),
    /// The oldest slot has waited this long.
    Due(Duration),
}

pub struct PgStorage {
    pool: Pool,
    schema: u32,
    /// A fixed clip bound (`--clip`) instead of the median of recent norms.
    fixed_clip: Option<f64>,
    /// The refusal bound as last read for an accept, and when (see [`BOUND_TTL`]).
    bound: std::sync::Mutex<Option<(std::time::Instant, f64)>>,
}

enum Attempt {
    Done(Submitted, bool),
    /// Another replica took the token's slot at the same moment: again.
    Contended,
}

/// The constraint a unique violation hit, if that is what `e` is.
fn unique_violation(e: &tokio_postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    (db.code() == &SqlState::UNIQUE_VIOLATION)
        .then(|| db.constraint().unwrap_or_default().to_owned())
}

impl PgStorage {
    /// Connect (a pool of up to `connections`), create the tables when missing and the first
    /// version (the embedded prior). `fsync` asks for `synchronous_commit = on` in fedtest's
    /// sessions whatever the database's default; without it the database's setting applies.
    pub async fn connect(
        url: &str,
        fsync: bool,
        connections: usize,
        fixed_clip: Option<f64>,
    ) -> Result<Self, StorageError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StorageError::Corrupt(format!("bad PostgreSQL URL: {e}")))?;
        if config.get_application_name().is_none() {
            config.application_name("fedtest serve");
        }
        if fsync {
            config.options("-c synchronous_commit=on");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StorageError::Corrupt(format!("connection pool: {e}")))?;
        let s = PgStorage {
            pool,
            schema: features::SCHEMA_VERSION,
            fixed_clip,
            bound: std::sync::Mutex::new(None),
        };
        s.init().await?;
        Ok(s)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        self.pool
            .get()
            .await
            .map_err(|e| StorageError::Pool(e.to_string()))
    }

    async fn init(&self) -> Result<(), StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Two replicas starting together would race on CREATE TABLE IF NOT EXISTS.
        tx.execute(LOCK_EXCLUSIVE, &[&LOCK_KEY]).await?;
        tx.execute(LOCK_EXCLUSIVE, &[&AGGREGATE_KEY]).await?;
        tx.batch_execute(SCHEMA_SQL).await?;
        tx.batch_execute(ACCEPT_FN_SQL).await?;
        let schema = self.schema as i32;
        let has = tx
            .query_opt(
                "SELECT version FROM fedtest_versions WHERE schema = $1 LIMIT 1",
                &[&schema],
            )
            .await?;
        if has.is_none() {
            let v = protocol::vector_of(&prior::prior());
            tx.execute(
                "INSERT INTO fedtest_versions (version, schema, parent, vector, updates, total_updates, note, created_at)
                 VALUES ((SELECT COALESCE(max(version), 0) + 1 FROM fedtest_versions), $1, NULL, $2, 0, 0, 'prior', $3)",
                &[&schema, &v, &now()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The current model and the recent norms; `None` when the schema has no version.
    async fn current(
        &self,
        c: &impl GenericClient,
    ) -> Result<Option<(GlobalModel, f64)>, StorageError> {
        let stmt = c.prepare_cached(CURRENT_SQL).await?;
        let row = c
            .query_opt(&stmt, &[&(self.schema as i32), &(RECENT_NORMS as i64)])
            .await?;
        Ok(row.map(|r| self.model_of(&r)))
    }

    fn clip(&self, norms: &[f64]) -> f64 {
        self.fixed_clip
            .unwrap_or_else(|| storage::clip_from_norms(norms))
    }

    /// The privacy spent by every noised version.
    async fn spent(&self, c: &impl GenericClient) -> Result<Spent, StorageError> {
        let mut spent = Spent::default();
        for r in c
            .query(
                "SELECT dp_z FROM fedtest_versions WHERE dp_z IS NOT NULL",
                &[],
            )
            .await?
        {
            spent.add(r.get(0));
        }
        Ok(spent)
    }

    /// A row of [`CURRENT_SQL`] as the model and the clip bound.
    fn model_of(&self, r: &Row) -> (GlobalModel, f64) {
        let norms: Vec<f64> = r.get(3);
        let clip = self.clip(&norms);
        (
            GlobalModel {
                version: r.get::<_, i64>(0) as u64,
                schema: self.schema,
                vector: r.get(1),
                updates: r.get::<_, i64>(2) as u64,
                max_norm: REJECT_FACTOR * clip,
            },
            clip,
        )
    }

    /// The current global model of `schema`, `None` for a schema this server does not serve.
    pub async fn model(&self, schema: u32) -> Result<Option<GlobalModel>, StorageError> {
        if schema != self.schema {
            return Ok(None);
        }
        let c = self.client().await?;
        Ok(self.current(&c).await?.map(|(m, _)| m))
    }

    /// Version, pending updates, tokens in the buffer, the clip bound and the privacy spent,
    /// for the metrics.
    pub async fn gauges(&self) -> Result<(u64, u64, u64, f64, Spent), StorageError> {
        let c = self.client().await?;
        let (model, clip) = self
            .current(&c)
            .await?
            .ok_or_else(|| StorageError::Corrupt("no version".into()))?;
        let row = c
            .query_one(
                "SELECT count(*), count(DISTINCT token) FROM fedtest_updates WHERE state = 0",
                &[],
            )
            .await?;
        Ok((
            model.version,
            row.get::<_, i64>(0) as u64,
            row.get::<_, i64>(1) as u64,
            clip,
            self.spent(&c).await?,
        ))
    }

    /// Accept or refuse a structurally valid update from `token` (see [`super::Storage::submit`]),
    /// then aggregate when `buffer` tokens are waiting.
    pub async fn submit(
        &self,
        token: &str,
        update: &Update,
        buffer: usize,
        params: &Params,
    ) -> Result<Submitted, StorageError> {
        for _ in 0..SLOT_RETRIES {
            match self.try_submit(token, update, buffer).await? {
                Attempt::Contended => continue,
                Attempt::Done(
                    Submitted::Accepted {
                        version,
                        superseded,
                        ..
                    },
                    full,
                ) => {
                    let (made, newest) = if full {
                        self.aggregate_full(buffer, params).await?
                    } else {
                        (0, None)
                    };
                    return Ok(Submitted::Accepted {
                        version: newest.unwrap_or(version),
                        aggregations: made,
                        superseded,
                    });
                }
                Attempt::Done(other, _) => return Ok(other),
            }
        }
        Err(StorageError::Corrupt(format!(
            "the pending slot of the token of {} stayed contended",
            update.id
        )))
    }

    /// The refusal bound — what `GET /v1/model` serves as `max_norm` — read at most
    /// [`BOUND_TTL`] ago.
    async fn reject_bound(&self, c: &impl GenericClient) -> Result<f64, StorageError> {
        let lock = || {
            self.bound
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let fresh = lock()
            .filter(|(at, _)| at.elapsed() < BOUND_TTL)
            .map(|(_, b)| b);
        if let Some(b) = fresh {
            return Ok(b);
        }
        let (model, _) = self
            .current(c)
            .await?
            .ok_or_else(|| StorageError::Corrupt("no version".into()))?;
        *lock() = Some((std::time::Instant::now(), model.max_norm));
        Ok(model.max_norm)
    }

    /// One accept: one round trip ([`ACCEPT_FN_SQL`]), plus one every [`BOUND_TTL`] for the
    /// refusal bound. Returns whether the buffer is now full.
    async fn try_submit(
        &self,
        token: &str,
        update: &Update,
        buffer: usize,
    ) -> Result<Attempt, StorageError> {
        let schema = update.schema as i32;
        let c = self.client().await?;
        let accept = c.prepare_cached(ACCEPT_SQL).await?;
        let bound = self.reject_bound(&c).await?;
        let (base, now) = (update.base_version as i64, now());
        let max_stale = protocol::MAX_STALENESS as i64;
        let norm = protocol::norm(&update.delta);
        let samples = update.samples.min(protocol::MAX_SAMPLES) as i64;
        let params: Args<11> = [
            &LOCK_KEY,
            &update.id,
            &token,
            &schema,
            &base,
            &samples,
            &norm,
            &update.delta,
            &now,
            &max_stale,
            &bound,
        ];
        let row = match c.query_one(&accept, &params).await {
            Ok(row) => row,
            Err(e) => {
                return match unique_violation(&e).as_deref() {
                    // Another replica took this id a moment ago: the client's retry raced
                    // itself.
                    Some("fedtest_updates_id") => Ok(Attempt::Done(
                        Submitted::Duplicate {
                            version: self.current(&c).await?.map_or(0, |(m, _)| m.version),
                        },
                        false,
                    )),
                    // Another replica filled this token's slot a moment ago: try again (and
                    // supersede that update).
                    Some("fedtest_updates_slot") => Ok(Attempt::Contended),
                    _ => Err(e.into()),
                };
            }
        };
        let (written, seen, current, known) = (
            row.get::<_, bool>(0),
            row.get::<_, bool>(1),
            row.get::<_, i64>(2) as u64,
            row.get::<_, bool>(3),
        );
        if seen {
            return Ok(Attempt::Done(
                Submitted::Duplicate { version: current },
                false,
            ));
        }
        if !written {
            return match storage::refusal(update, current, known, norm, bound) {
                Some(r) => Ok(Attempt::Done(Submitted::Refused(r), false)),
                None => Err(StorageError::Corrupt(format!(
                    "PostgreSQL refused update {} that the checks accept",
                    update.id
                ))),
            };
        }
        let waiting: i64 = row.get(5);
        Ok(Attempt::Done(
            Submitted::Accepted {
                version: current,
                aggregations: 0,
                superseded: row.get(4),
            },
            waiting as usize >= buffer.max(1),
        ))
    }

    /// Pending updates of the served schema, and the oldest slot's age (its `received_at`).
    async fn fill(&self) -> Result<(usize, Option<i64>), StorageError> {
        let c = self.client().await?;
        let fill = c.prepare_cached(FILL_SQL).await?;
        let row = c.query_one(&fill, &[&(self.schema as i32)]).await?;
        Ok((row.get::<_, i64>(0) as usize, row.get(1)))
    }

    /// Aggregate while `buffer` tokens are waiting, unless another session is aggregating
    /// already: that one re-checks the buffer after its commit, and so sees every update
    /// committed before we looked (no aggregation is lost, and the waiting ones do not hold
    /// a connection each). How many versions were made, and the newest.
    async fn aggregate_full(
        &self,
        buffer: usize,
        params: &Params,
    ) -> Result<(u64, Option<u64>), StorageError> {
        let k = buffer.max(1);
        let (mut made, mut newest) = (0, None);
        while let Some(v) = self.aggregate(Trigger::Fill(k), params).await? {
            made += 1;
            newest = Some(v);
            if self.fill().await?.0 < k {
                break;
            }
        }
        Ok((made, newest))
    }

    /// Aggregate when the oldest pending slot has waited `after` (the time flush), then
    /// while `buffer` tokens are waiting. How many versions were made.
    pub async fn flush_due(
        &self,
        after: Duration,
        buffer: usize,
        params: &Params,
    ) -> Result<u64, StorageError> {
        let (_, oldest) = self.fill().await?;
        if oldest.is_none_or(|t| now() - t < after.as_secs() as i64) {
            return Ok(0);
        }
        if self.aggregate(Trigger::Due(after), params).await?.is_none() {
            return Ok(0);
        }
        let mut made = 1;
        if self.fill().await?.0 >= buffer.max(1) {
            made += self.aggregate_full(buffer, params).await?.0;
        }
        Ok(made)
    }

    /// Fold the buffer into a new version under the version chain's lock, if `trigger` still
    /// holds there (another replica may have aggregated first). The version and its rows'
    /// `applied` mark commit together. The new version; `None` when there was nothing to do,
    /// or, for [`Trigger::Fill`], when another session holds the lock (it is aggregating).
    async fn aggregate(
        &self,
        trigger: Trigger,
        params: &Params,
    ) -> Result<Option<u64>, StorageError> {
        let schema = self.schema as i32;
        let mut c = self.client().await?;
        let lock = c.prepare_cached(LOCK_EXCLUSIVE).await?;
        let try_lock = c.prepare_cached(TRY_LOCK_EXCLUSIVE).await?;
        let current = c.prepare_cached(CURRENT_SQL).await?;
        let buffer = c.prepare_cached(BUFFER_SQL).await?;
        let next = c.prepare_cached(NEXT_VERSION_SQL).await?;
        let insert = c.prepare_cached(VERSION_SQL).await?;
        let apply = c.prepare_cached(APPLY_SQL).await?;
        let recent = RECENT_NORMS as i64;
        let current_params: Args<2> = [&schema, &recent];
        let schema_param: Args<1> = [&schema];
        let tx = c.transaction().await?;
        if let Trigger::Fill(_) = trigger {
            let locked: bool = tx.query_one(&try_lock, &[&AGGREGATE_KEY]).await?.get(0);
            if !locked {
                return Ok(None);
            }
        } else {
            tx.execute(&lock, &[&AGGREGATE_KEY]).await?;
        }
        // The version chain is ours until commit; read it and the buffer's rows, locked.
        let (model, rows, next) = tokio::join!(
            biased;
            tx.query_opt(&current, &current_params),
            tx.query(&buffer, &schema_param),
            tx.query_one(&next, &[])
        );
        // Versions are numbered by us alone (we hold the chain's lock).
        let version: i64 = next?.get(0);
        let Some((model, clip)) = model?.map(|r| self.model_of(&r)) else {
            return Err(StorageError::Corrupt("no version".into()));
        };
        let rows = rows?;
        // One row per token is guaranteed by the slot index; keep the oldest per token all
        // the same, as the SQLite store does.
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<&Row> = rows
            .iter()
            .filter(|r| seen.insert(r.get::<_, String>(1)))
            .collect();
        let still = match trigger {
            Trigger::Fill(k) => rows.len() >= k,
            Trigger::Due(after) => rows
                .iter()
                .map(|r| r.get::<_, i64>(5))
                .min()
                .is_some_and(|t| now() - t >= after.as_secs() as i64),
        };
        if !still || rows.is_empty() {
            return Ok(None);
        }
        let current = model.version;
        let buffered: Vec<Buffered> = rows
            .iter()
            .map(|r| Buffered {
                delta: r.get(4),
                samples: r.get::<_, i64>(3) as u64,
                staleness: current.saturating_sub(r.get::<_, i64>(2) as u64),
            })
            .collect();
        let (step, noise) =
            storage::noised_step(buffered.clone(), clip, params).expect("non-empty buffer");
        let used = params.effective();
        let vector = storage::stepped(&model.vector, &step, params.lr)?;
        let total = (model.updates + rows.len() as u64) as i64;
        let seqs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let staleness: Vec<i64> = buffered.iter().map(|b| b.staleness as i64).collect();
        let rule = storage::rule_name(&used);
        let (now, parent, count) = (now(), current as i64, rows.len() as i64);
        let version_args: Args<13> = [
            &schema,
            &parent,
            &vector,
            &count,
            &total,
            &clip,
            &used.lr,
            &rule,
            &used.trim,
            &now,
            &version,
            &noise,
            &params.dp_noise,
        ];
        let apply_args: Args<3> = [&version, &seqs, &staleness];
        let (inserted, changed) = tokio::join!(
            biased;
            tx.execute(&insert, &version_args),
            tx.execute(&apply, &apply_args)
        );
        inserted?;
        let changed = changed?;
        if changed as usize != seqs.len() {
            // Cannot happen under the exclusive lock; abandon rather than apply a partial set.
            return Err(StorageError::Corrupt(format!(
                "{} of {} buffered updates were no longer pending",
                seqs.len() - changed as usize,
                seqs.len()
            )));
        }
        tx.commit().await?;
        Ok(Some(version as u64))
    }

    /// Make an earlier version current again, as a new version; pending updates are
    /// discarded (see [`super::Storage::rollback`]).
    pub async fn rollback(&self, to: u64) -> Result<u64, StorageError> {
        let schema = self.schema as i32;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // No accept may straddle the rollback, and no aggregation may run beside it.
        tx.execute(LOCK_EXCLUSIVE, &[&LOCK_KEY]).await?;
        tx.execute(LOCK_EXCLUSIVE, &[&AGGREGATE_KEY]).await?;
        let Some((model, _)) = self.current(&tx).await? else {
            return Err(StorageError::Corrupt("no version".into()));
        };
        let row = tx
            .query_opt(
                "SELECT vector, total_updates FROM fedtest_versions WHERE version = $1 AND schema = $2",
                &[&(to as i64), &schema],
            )
            .await?;
        let Some(row) = row else {
            return Err(StorageError::Corrupt(format!("no version {to}")));
        };
        let (vector, total): (Vec<f64>, i64) = (row.get(0), row.get(1));
        let version: i64 = tx
            .query_one(
                "INSERT INTO fedtest_versions (version, schema, parent, vector, updates, total_updates, note, created_at)
                 VALUES ((SELECT COALESCE(max(version), 0) + 1 FROM fedtest_versions), $1, $2, $3, 0, $4, $5, $6)
                 RETURNING version",
                &[
                    &schema,
                    &(model.version as i64),
                    &vector,
                    &total,
                    &format!("rollback to {to}"),
                    &now(),
                ],
            )
            .await?
            .get(0);
        tx.execute("UPDATE fedtest_updates SET state = 2 WHERE state = 0", &[])
            .await?;
        tx.commit().await?;
        Ok(version as u64)
    }

    /// Delete the rows of every version but the newest `keep` (see
    /// [`super::Storage::prune`]), under the version chain's lock so that no aggregation
    /// moves the newest version meanwhile.
    pub async fn prune(&self, keep: u64) -> Result<Pruned, StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(LOCK_EXCLUSIVE, &[&AGGREGATE_KEY]).await?;
        let newest: i64 = tx
            .query_one(
                "SELECT COALESCE(max(version), 0) FROM fedtest_versions",
                &[],
            )
            .await?
            .get(0);
        let through = Pruned::boundary(newest as u64, keep);
        let mut totals = read_pruned(&tx).await?;
        if through <= totals.through {
            return Ok(totals);
        }
        let b = through as i64;
        let delete = |column: &'static str| {
            format!("DELETE FROM fedtest_updates WHERE state = $1 AND {column} <= $2")
        };
        totals.applied += tx.execute(&delete("applied_version"), &[&1i16, &b]).await?;
        totals.superseded += tx.execute(&delete("base_version"), &[&3i16, &b]).await?;
        totals.discarded += tx.execute(&delete("base_version"), &[&2i16, &b]).await?;
        totals.through = through;
        tx.execute(
            "INSERT INTO fedtest_pruned (id, through, applied, superseded, discarded)
             VALUES (1, $1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET through = $1, applied = $2, superseded = $3,
                 discarded = $4",
            &[
                &b,
                &(totals.applied as i64),
                &(totals.superseded as i64),
                &(totals.discarded as i64),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(totals)
    }

    /// Counts, versions and a replay check of every aggregation (see
    /// [`super::Storage::status`]). Read in one repeatable-read snapshot, so a replica
    /// aggregating meanwhile cannot make it look inconsistent.
    pub async fn status(&self, last_versions: usize, delta: f64) -> Result<Status, StorageError> {
        let mut c = self.client().await?;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let Some((model, clip)) = self.current(&tx).await? else {
            return Err(StorageError::Corrupt("no version".into()));
        };
        let mut by_state = [0u64; 4];
        for r in tx
            .query(
                "SELECT state, count(*) FROM fedtest_updates GROUP BY state",
                &[],
            )
            .await?
        {
            let state: i16 = r.get(0);
            if let Some(n) = by_state.get_mut(state as usize) {
                *n = r.get::<_, i64>(1) as u64;
            }
        }
        let pruned = read_pruned(&tx).await?;
        let [pending, applied, discarded, superseded] = by_state;
        let (applied, discarded, superseded) = (
            applied + pruned.applied,
            discarded + pruned.discarded,
            superseded + pruned.superseded,
        );
        let fill: i64 = tx
            .query_one(
                "SELECT count(DISTINCT token) FROM fedtest_updates WHERE state = 0",
                &[],
            )
            .await?
            .get(0);
        let sum: i64 = tx
            .query_one(
                "SELECT COALESCE(sum(updates), 0)::BIGINT FROM fedtest_versions",
                &[],
            )
            .await?
            .get(0);
        let prior = protocol::vector_of(&prior::prior());
        let versions = tx
            .query(
                "SELECT version, parent, updates, note, created_at, vector FROM fedtest_versions
                 ORDER BY version DESC LIMIT $1",
                &[&(last_versions as i64)],
            )
            .await?
            .iter()
            .map(|r| {
                let vector: Vec<f64> = r.get(5);
                let diff: Vec<f64> = vector.iter().zip(&prior).map(|(a, b)| a - b).collect();
                VersionInfo {
                    version: r.get::<_, i64>(0) as u64,
                    parent: r.get::<_, Option<i64>>(1).map(|p| p as u64),
                    updates: r.get::<_, i64>(2) as u64,
                    note: r.get(3),
                    created_at: r.get(4),
                    norm_from_prior: protocol::norm(&diff),
                }
            })
            .collect();
        let rows: Vec<VersionRow> = tx
            .query(
                "SELECT version, parent, vector, updates, clip, lr, rule, trim, noise, dp_z FROM fedtest_versions
                 ORDER BY version",
                &[],
            )
            .await?
            .iter()
            .map(|r| VersionRow {
                version: r.get(0),
                parent: r.get(1),
                vector: r.get(2),
                updates: r.get(3),
                clip: r.get(4),
                lr: r.get(5),
                rule: r.get(6),
                trim: r.get(7),
                noise: r.get(8),
                dp_z: r.get(9),
            })
            .collect();
        let mut applied_rows: std::collections::HashMap<i64, Vec<Buffered>> =
            std::collections::HashMap::new();
        for r in tx
            .query(
                "SELECT applied_version, delta, samples, staleness FROM fedtest_updates
                 WHERE applied_version IS NOT NULL ORDER BY seq",
                &[],
            )
            .await?
        {
            applied_rows.entry(r.get(0)).or_default().push(Buffered {
                delta: r.get(1),
                samples: r.get::<_, i64>(2) as u64,
                staleness: r.get::<_, Option<i64>>(3).unwrap_or(0) as u64,
            });
        }
        let spent = self.spent(&tx).await?;
        tx.commit().await?;
        let replay_consistent = storage::replay_versions(rows, pruned.through, |v| {
            Ok::<_, StorageError>(applied_rows.remove(&v).unwrap_or_default())
        })?;
        Ok(Status {
            schema: self.schema,
            version: model.version,
            updates_total: pending + applied + discarded + superseded,
            updates_pending: pending,
            updates_applied: applied,
            updates_discarded: discarded,
            updates_superseded: superseded,
            versions_updates_sum: sum as u64,
            updates_pruned: pruned.rows(),
            pruned_through: pruned.through,
            buffer_fill: fill as u64,
            clip_bound: clip,
            replay_consistent,
            dp_aggregations: spent.aggregations,
            dp_delta: delta,
            dp_epsilon: spent.epsilon(delta),
            versions,
        })
    }
}
