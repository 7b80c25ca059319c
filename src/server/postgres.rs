//! The storage primitives in PostgreSQL, shared by several `fedtest serve` replicas
//! (`--db postgres://user@host:port/db`). Same tables, states and guarantees as the SQLite
//! backend ([`super::sqlite`]), and the same rules ([`super::state`]); what differs is who may
//! write when.
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
//! shared lock, checks (duplicate id, base version, staleness, norm against the fixed bound)
//! and writes — one statement, so one
//! implicit transaction and no BEGIN/COMMIT round trips.
//!
//! Exactly once: `id` is `UNIQUE`, so a re-sent id is a duplicate even when two replicas take
//! it at the same moment (the second `INSERT` fails on the constraint and is answered
//! "duplicate"); rows go from pending to applied only under the exclusive lock, in the
//! transaction that inserts their version. One pending slot per token is a partial unique
//! index (`token, schema WHERE state = 0`): two replicas racing for one token's slot cannot
//! both win; the loser retries and supersedes the winner's update.
//!
//! Nothing is cached between requests: every replica reads the current version and buffer
//! from the database, so a rollback made through one is served by all at once.
//! The connection is plaintext (no TLS is compiled in): keep the database on a private
//! network or the same host.

use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// Statement parameters, named so that pipelined statements can borrow them.
type Args<'a, const N: usize> = [&'a (dyn ToSql + Sync); N];

use super::aggregate::Buffered;
use super::backend::{
    self, Accept, Backend, Counts, DbError, Facts, Fut, Head, NewUpdate, PendingRow, Plan, Restore,
    Snapshot, VersionRow, Visit,
};
use super::state::{self, Limits, PruneColumn, Pruned};

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

/// The current model of a schema.
const CURRENT_SQL: &str = "
SELECT v.version, v.vector, v.total_updates
FROM fedtest_versions v WHERE v.schema = $1 ORDER BY v.version DESC LIMIT 1";

/// The vector of the newest version at most `$2` (the drift cap's window start).
const LOOKBACK_SQL: &str = "
SELECT vector FROM fedtest_versions WHERE schema = $1 AND version <= $2
ORDER BY version DESC LIMIT 1";

/// An accept, as one function so that it is one round trip and one (implicit) transaction:
/// take the shared lock, check, supersede the token's queued update and insert the new one
/// (keeping the slot's age), and count the buffer. Each statement of a PL/pgSQL function reads
/// a fresh snapshot, so the checks see everything committed before the lock was granted.
///
/// The checks are the refusal rule's, rendered from its one definition by
/// [`state::refusal_sql`] into `{refusal}` (base unknown or newer than the current version,
/// more than `p_max_stale` versions old, norm over `p_bound`): when it holds, nothing is
/// written and the rules name the reason from the facts returned, with the same function
/// the SQLite backend calls. A re-sent id or a raced slot fails on its unique
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
    IF {refusal} THEN
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
VALUES ($11, $1, $2, $3, $4, $5, $6, $7, $8, $9, $14, $10, $12, $13)";

/// Mark the aggregated rows applied, with the staleness each had.
const APPLY_SQL: &str = "
UPDATE fedtest_updates u SET state = 1, applied_version = $1, staleness = t.staleness
FROM unnest($2::BIGINT[], $3::BIGINT[]) AS t(seq, staleness)
WHERE u.seq = t.seq AND u.state = 0";

const PRUNED_SQL: &str =
    "SELECT through, applied, superseded, discarded FROM fedtest_pruned WHERE id = 1";

/// What earlier prunes removed.
async fn read_pruned(c: &impl GenericClient) -> Result<Pruned, DbError> {
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

/// The state in a PostgreSQL database, shared by replicas.
pub struct Postgres {
    pool: Pool,
    schema: u32,
}

enum Attempt {
    Done(Accept),
    /// Another replica took the token's slot at the same moment: again.
    Contended,
}

/// The constraint a unique violation hit, if that is what `e` is.
fn unique_violation(e: &tokio_postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    (db.code() == &SqlState::UNIQUE_VIOLATION)
        .then(|| db.constraint().unwrap_or_default().to_owned())
}

/// A row of [`CURRENT_SQL`] as the head.
fn head_of(r: &Row) -> Head {
    Head {
        version: r.get::<_, i64>(0) as u64,
        vector: r.get(1),
        total_updates: r.get::<_, i64>(2) as u64,
    }
}

impl Postgres {
    /// Connect (a pool of up to `connections`), create the tables when missing and the first
    /// version of `schema` (`prior`). `fsync` asks for `synchronous_commit = on` in fedtest's
    /// sessions whatever the database's default; without it the database's setting applies.
    pub async fn connect(
        url: &str,
        fsync: bool,
        connections: usize,
        schema: u32,
        prior: &[f64],
    ) -> Result<Self, DbError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| DbError::Corrupt(format!("bad PostgreSQL URL: {e}")))?;
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
            .map_err(|e| DbError::Corrupt(format!("connection pool: {e}")))?;
        let s = Postgres { pool, schema };
        s.init(prior).await?;
        Ok(s)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, DbError> {
        self.pool
            .get()
            .await
            .map_err(|e| DbError::Pool(e.to_string()))
    }

    async fn init(&self, prior: &[f64]) -> Result<(), DbError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Two replicas starting together would race on CREATE TABLE IF NOT EXISTS.
        tx.execute(LOCK_EXCLUSIVE, &[&LOCK_KEY]).await?;
        tx.execute(LOCK_EXCLUSIVE, &[&AGGREGATE_KEY]).await?;
        tx.batch_execute(SCHEMA_SQL).await?;
        tx.batch_execute(&ACCEPT_FN_SQL.replace("{refusal}", &state::refusal_sql("")))
            .await?;
        let schema = self.schema as i32;
        let has = tx
            .query_opt(
                "SELECT version FROM fedtest_versions WHERE schema = $1 LIMIT 1",
                &[&schema],
            )
            .await?;
        if has.is_none() {
            let v = prior.to_vec();
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

    /// The head; an error when the schema has no version.
    async fn current(&self, c: &impl GenericClient) -> Result<Head, DbError> {
        let stmt = c.prepare_cached(CURRENT_SQL).await?;
        let row = c.query_opt(&stmt, &[&(self.schema as i32)]).await?;
        row.map(|r| head_of(&r))
            .ok_or_else(|| DbError::Corrupt("no version".into()))
    }

    /// The noise multiplier of every noised version.
    async fn dp_zs(&self, c: &impl GenericClient) -> Result<Vec<f64>, DbError> {
        Ok(c.query(
            "SELECT dp_z FROM fedtest_versions WHERE dp_z IS NOT NULL ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    /// One accept: one round trip ([`ACCEPT_FN_SQL`]).
    async fn try_accept(&self, update: &NewUpdate, limits: &Limits) -> Result<Attempt, DbError> {
        let schema = update.schema as i32;
        let c = self.client().await?;
        let accept = c.prepare_cached(ACCEPT_SQL).await?;
        let bound = limits.bound();
        let base = update.base_version as i64;
        let max_stale = limits.max_stale as i64;
        let samples = update.samples as i64;
        let params: Args<11> = [
            &LOCK_KEY,
            &update.id,
            &update.token,
            &schema,
            &base,
            &samples,
            &update.norm,
            &update.delta,
            &update.now,
            &max_stale,
            &bound,
        ];
        let row = match c.query_one(&accept, &params).await {
            Ok(row) => row,
            Err(e) => {
                return match unique_violation(&e).as_deref() {
                    // Another replica took this id a moment ago: the client's retry raced
                    // itself.
                    Some("fedtest_updates_id") => Ok(Attempt::Done(Accept::Seen {
                        current: self.current(&c).await?.version,
                    })),
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
            return Ok(Attempt::Done(Accept::Seen { current }));
        }
        if !written {
            return Ok(Attempt::Done(Accept::Refused(Facts {
                current,
                base_known: known,
                bound,
            })));
        }
        let waiting: i64 = row.get(5);
        Ok(Attempt::Done(Accept::Written {
            current,
            superseded: row.get(4),
            waiting: waiting as usize,
        }))
    }

    /// Pending updates of the served schema, and the oldest slot's age (its `received_at`).
    async fn fill_of(&self, c: &impl GenericClient) -> Result<(usize, Option<i64>), DbError> {
        let fill = c.prepare_cached(FILL_SQL).await?;
        let row = c.query_one(&fill, &[&(self.schema as i32)]).await?;
        Ok((row.get::<_, i64>(0) as usize, row.get(1)))
    }

    /// The fold: under the version chain's lock (tried only, unless `wait`), read the head,
    /// the buffer (locked against a concurrent supersede) and the next version number; the
    /// version and its rows' `applied` mark commit together.
    async fn fold_once(
        &self,
        wait: bool,
        lookback: u64,
        plan: Plan,
    ) -> Result<Option<(u64, usize)>, DbError> {
        let schema = self.schema as i32;
        let mut c = self.client().await?;
        let lock = c.prepare_cached(LOCK_EXCLUSIVE).await?;
        let try_lock = c.prepare_cached(TRY_LOCK_EXCLUSIVE).await?;
        let current = c.prepare_cached(CURRENT_SQL).await?;
        let buffer = c.prepare_cached(BUFFER_SQL).await?;
        let next = c.prepare_cached(NEXT_VERSION_SQL).await?;
        let insert = c.prepare_cached(VERSION_SQL).await?;
        let apply = c.prepare_cached(APPLY_SQL).await?;
        let window = c.prepare_cached(LOOKBACK_SQL).await?;
        let schema_param: Args<1> = [&schema];
        let tx = c.transaction().await?;
        if wait {
            tx.execute(&lock, &[&AGGREGATE_KEY]).await?;
        } else {
            let locked: bool = tx.query_one(&try_lock, &[&AGGREGATE_KEY]).await?.get(0);
            if !locked {
                return Ok(None);
            }
        }
        // The version chain is ours until commit; read it and the buffer's rows, locked.
        let (head, rows, next) = tokio::join!(
            biased;
            tx.query_opt(&current, &schema_param),
            tx.query(&buffer, &schema_param),
            tx.query_one(&next, &[])
        );
        // Versions are numbered by us alone (we hold the chain's lock).
        let version: i64 = next?.get(0);
        let Some(head) = head?.map(|r| head_of(&r)) else {
            return Err(DbError::Corrupt("no version".into()));
        };
        let start = head.version.saturating_sub(lookback).max(1) as i64;
        let anchor: Vec<f64> = match tx.query_opt(&window, &[&schema, &start]).await? {
            Some(r) => r.get(0),
            None => head.vector.clone(),
        };
        let rows: Vec<PendingRow> = rows?
            .iter()
            .map(|r| PendingRow {
                seq: r.get(0),
                token: r.get(1),
                base_version: r.get::<_, i64>(2) as u64,
                samples: r.get::<_, i64>(3) as u64,
                delta: r.get(4),
                received_at: r.get(5),
            })
            .collect();
        let Some(v) = plan(&head, &rows, &anchor)? else {
            return Ok(None);
        };
        let (updates, total) = (v.updates as i64, v.total_updates as i64);
        let parent = v.parent as i64;
        let seqs: Vec<i64> = v.applied.iter().map(|(s, _)| *s).collect();
        let staleness: Vec<i64> = v.applied.iter().map(|(_, t)| *t as i64).collect();
        let version_args: Args<14> = [
            &schema,
            &parent,
            &v.vector,
            &updates,
            &total,
            &v.clip,
            &v.lr,
            &v.rule,
            &v.trim,
            &v.created_at,
            &version,
            &v.noise,
            &v.dp_z,
            &v.note,
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
            // Cannot happen under the lock; abandon rather than apply a partial set.
            return Err(DbError::Corrupt(format!(
                "{} of {} buffered updates were no longer pending",
                seqs.len() - changed as usize,
                seqs.len()
            )));
        }
        tx.commit().await?;
        // Re-check after the commit: updates that arrived meanwhile are seen here.
        let (waiting, _) = self.fill_of(&c).await?;
        Ok(Some((version as u64, waiting)))
    }

    async fn restore_to(&self, to: u64, restore: Restore) -> Result<u64, DbError> {
        let schema = self.schema as i32;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // No accept may straddle the rollback, and no aggregation may run beside it.
        tx.execute(LOCK_EXCLUSIVE, &[&LOCK_KEY]).await?;
        tx.execute(LOCK_EXCLUSIVE, &[&AGGREGATE_KEY]).await?;
        let head = self.current(&tx).await?;
        let target = tx
            .query_opt(
                "SELECT vector, total_updates FROM fedtest_versions WHERE version = $1 AND schema = $2",
                &[&(to as i64), &schema],
            )
            .await?
            .map(|r| (r.get::<_, Vec<f64>>(0), r.get::<_, i64>(1) as u64));
        let v = restore(&head, target)?;
        let version: i64 = tx
            .query_one(
                "INSERT INTO fedtest_versions (version, schema, parent, vector, updates, total_updates, note, created_at)
                 VALUES ((SELECT COALESCE(max(version), 0) + 1 FROM fedtest_versions), $1, $2, $3, $4, $5, $6, $7)
                 RETURNING version",
                &[
                    &schema,
                    &(v.parent as i64),
                    &v.vector,
                    &(v.updates as i64),
                    &(v.total_updates as i64),
                    &v.note,
                    &v.created_at,
                ],
            )
            .await?
            .get(0);
        tx.execute(
            "UPDATE fedtest_updates SET state = $1 WHERE state = $2",
            &[&backend::DISCARDED, &backend::PENDING],
        )
        .await?;
        tx.commit().await?;
        Ok(version as u64)
    }

    async fn prune_rows(
        &self,
        through: Box<dyn FnOnce(u64, Pruned) -> Option<u64> + Send>,
    ) -> Result<Pruned, DbError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // No aggregation moves the newest version meanwhile.
        tx.execute(LOCK_EXCLUSIVE, &[&AGGREGATE_KEY]).await?;
        let newest: i64 = tx
            .query_one(
                "SELECT COALESCE(max(version), 0) FROM fedtest_versions",
                &[],
            )
            .await?
            .get(0);
        let mut totals = read_pruned(&tx).await?;
        let Some(through) = through(newest as u64, totals) else {
            return Ok(totals);
        };
        let b = through as i64;
        for (st, column) in state::PRUNE {
            let column = match column {
                PruneColumn::AppliedVersion => "applied_version",
                PruneColumn::BaseVersion => "base_version",
            };
            let n = tx
                .execute(
                    &format!("DELETE FROM fedtest_updates WHERE state = $1 AND {column} <= $2"),
                    &[&st, &b],
                )
                .await?;
            match st {
                backend::APPLIED => totals.applied += n,
                backend::SUPERSEDED => totals.superseded += n,
                _ => totals.discarded += n,
            }
        }
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

    async fn counts_of(&self, c: &impl GenericClient) -> Result<Counts, DbError> {
        let head = self.current(c).await?;
        let row = c
            .query_one(
                "SELECT count(*), count(DISTINCT token) FROM fedtest_updates WHERE state = 0",
                &[],
            )
            .await?;
        Ok(Counts {
            head,
            pending: row.get::<_, i64>(0) as u64,
            fill: row.get::<_, i64>(1) as u64,
            dp_zs: self.dp_zs(c).await?,
        })
    }

    /// Read in one repeatable-read snapshot, so a replica aggregating meanwhile cannot make
    /// it look inconsistent.
    async fn snapshot_of(&self, last: usize, visit: Visit<'_>) -> Result<Snapshot, DbError> {
        let mut c = self.client().await?;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let counts = self.counts_of(&tx).await?;
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
        let sum: i64 = tx
            .query_one(
                "SELECT COALESCE(sum(updates), 0)::BIGINT FROM fedtest_versions",
                &[],
            )
            .await?
            .get(0);
        let rows: Vec<VersionRow> = tx
            .query(
                "SELECT version, parent, vector, updates, clip, lr, rule, trim, noise, dp_z, note, created_at
                 FROM fedtest_versions ORDER BY version",
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
                note: r.get(10),
                created_at: r.get(11),
            })
            .collect();
        let mut applied: std::collections::HashMap<i64, Vec<Buffered>> =
            std::collections::HashMap::new();
        for r in tx
            .query(
                "SELECT applied_version, delta, samples, staleness FROM fedtest_updates
                 WHERE applied_version IS NOT NULL ORDER BY seq",
                &[],
            )
            .await?
        {
            applied.entry(r.get(0)).or_default().push(Buffered {
                delta: r.get(1),
                samples: r.get::<_, i64>(2) as u64,
                staleness: r.get::<_, Option<i64>>(3).unwrap_or(0) as u64,
            });
        }
        tx.commit().await?;
        let recent: Vec<VersionRow> = rows.iter().rev().take(last).cloned().collect();
        for row in rows {
            let rows = applied.remove(&row.version).unwrap_or_default();
            visit(pruned.through, row, rows);
        }
        Ok(Snapshot {
            counts,
            by_state,
            pruned,
            versions_updates_sum: sum as u64,
            recent,
        })
    }
}

impl Backend for Postgres {
    fn head(&self) -> Fut<'_, Head> {
        Box::pin(async move {
            let c = self.client().await?;
            self.current(&c).await
        })
    }

    fn accept(&self, update: NewUpdate, limits: Limits) -> Fut<'_, Accept> {
        Box::pin(async move {
            for _ in 0..SLOT_RETRIES {
                if let Attempt::Done(a) = self.try_accept(&update, &limits).await? {
                    return Ok(a);
                }
            }
            Err(DbError::Corrupt(format!(
                "the pending slot of the token of {} stayed contended",
                update.id
            )))
        })
    }

    fn fill(&self) -> Fut<'_, (usize, Option<i64>)> {
        Box::pin(async move {
            let c = self.client().await?;
            self.fill_of(&c).await
        })
    }

    fn fold(&self, wait: bool, lookback: u64, plan: Plan) -> Fut<'_, Option<(u64, usize)>> {
        Box::pin(self.fold_once(wait, lookback, plan))
    }

    fn restore(&self, to: u64, restore: Restore) -> Fut<'_, u64> {
        Box::pin(self.restore_to(to, restore))
    }

    fn prune(
        &self,
        through: Box<dyn FnOnce(u64, Pruned) -> Option<u64> + Send>,
    ) -> Fut<'_, Pruned> {
        Box::pin(self.prune_rows(through))
    }

    fn counts(&self) -> Fut<'_, Counts> {
        Box::pin(async move {
            let c = self.client().await?;
            self.counts_of(&c).await
        })
    }

    fn snapshot<'a>(&'a self, last: usize, visit: Visit<'a>) -> Fut<'a, Snapshot> {
        Box::pin(self.snapshot_of(last, visit))
    }
}
