//! The storage primitives in SQLite (the default: one server process).
//!
//! SQLite has one writer, so the connection sits behind a mutex and its calls run on the
//! blocking pool; each primitive is one critical section, which makes it atomic. The head
//! and the buffer are also kept in memory (the database stays the truth:
//! a restart, or an admin command that committed from another process — `PRAGMA
//! data_version` tells — rebuilds them from it).
//!
//! The file carries fedtest's `application_id`, checked before anything is written: any
//! other SQLite file (or a file that is not SQLite) is refused untouched — `serve status
//! --db` on the wrong file used to add fedtest's tables to it. It is created owner-only
//! (0600; SQLite gives the WAL and shared-memory files the database's mode): it holds every
//! client's raw update.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use super::aggregate::Buffered;
use super::backend::{
    self, Accept, Backend, Counts, DbError, Facts, Fut, Head, NewUpdate, NewVersion, PendingRow,
    Plan, Restore, Snapshot, VersionRow, Visit,
};
use super::state::{self, Limits, PruneColumn, Pruned};

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

/// `PRAGMA application_id` of a fedtest server database: "fedS" in ASCII.
pub const APPLICATION_ID: i32 = 0x6665_6453;

/// Tables of a fedtest server database made before the application id existed.
const OUR_TABLES: [&str; 3] = ["pruned", "updates", "versions"];

/// Make sure `path` is (or may become) a fedtest server database, writing nothing to any
/// other file: missing, it is created owner-only; empty (no bytes, or SQLite with no
/// tables), it is ours to set up; with our application id, or with exactly our tables and no
/// id (made before the id existed), it is ours; anything else is refused.
fn claim(path: &Path) -> Result<(), DbError> {
    let foreign = |why: String| {
        DbError::Foreign(format!(
            "{} is not a fedtest server database ({why}); nothing was written to it",
            path.display()
        ))
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut open = std::fs::OpenOptions::new();
            open.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
            return match open.open(path) {
                Ok(_) => Ok(()),
                // Created meanwhile by another process: judge it like any existing file.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => claim(path),
                Err(e) => Err(DbError::Corrupt(format!(
                    "cannot create {}: {e}",
                    path.display()
                ))),
            };
        }
        Err(e) => {
            return Err(DbError::Corrupt(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
        Ok(m) if m.len() == 0 => return Ok(()),
        Ok(_) => {}
    }
    // Read-only: a foreign file gets no journal, no WAL switch, no header change.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let id: i32 = match conn.query_row("PRAGMA application_id", [], |r| r.get(0)) {
        Ok(id) => id,
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            return Err(foreign("not an SQLite file".into()));
        }
        Err(e) => return Err(e.into()),
    };
    if id == APPLICATION_ID {
        return Ok(());
    }
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
         ORDER BY name",
    )?;
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let ours = tables.iter().all(|t| OUR_TABLES.contains(&t.as_str()))
        && tables.iter().any(|t| t == "versions")
        && tables.iter().any(|t| t == "updates");
    match (id, tables.is_empty(), ours) {
        (0, true, _) | (0, false, true) => Ok(()),
        (0, false, false) => Err(foreign(format!("its tables: {}", tables.join(", ")))),
        (other, _, _) => Err(foreign(format!("application_id {other:#x}"))),
    }
}

#[derive(Clone, Debug)]
struct Pending {
    id: String,
    row: PendingRow,
}

struct Inner {
    conn: Connection,
    data_version: i64,
    schema: u32,
    head: Head,
    pending: Vec<Pending>,
    dp_zs: Vec<f64>,
}

/// The state in one SQLite file.
pub struct Sqlite {
    inner: Arc<Mutex<Inner>>,
}

fn parse_vector(text: &str) -> Result<Vec<f64>, DbError> {
    serde_json::from_str(text).map_err(|e| DbError::Corrupt(format!("bad vector: {e}")))
}

fn vector_text(v: &[f64]) -> String {
    serde_json::to_string(v).expect("finite numbers serialise")
}

/// What earlier prunes removed.
fn read_pruned(conn: &Connection) -> Result<Pruned, DbError> {
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

/// Append `v` to the chain; its number.
fn insert_version(tx: &Transaction<'_>, schema: u32, v: &NewVersion) -> Result<u64, DbError> {
    tx.execute(
        "INSERT INTO versions (schema, parent, vector, updates, total_updates, clip, lr, rule, trim, note, created_at, noise, dp_z)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            schema,
            v.parent as i64,
            vector_text(&v.vector),
            v.updates as i64,
            v.total_updates as i64,
            v.clip,
            v.lr,
            v.rule,
            v.trim,
            v.note,
            v.created_at,
            v.noise.as_deref().map(vector_text),
            v.dp_z,
        ],
    )?;
    Ok(tx.last_insert_rowid() as u64)
}

fn lock(s: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic while holding the lock leaves the in-memory view possibly behind the database;
    // the next `refresh` or restart rebuilds it from the committed state.
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sqlite {
    /// Open (creating when missing) the database; the first version of `schema` is `prior`.
    /// `fsync` makes every commit durable against power loss too (slower); without it a
    /// commit survives the process being killed, which is what the tests check.
    pub fn open(path: &Path, fsync: bool, schema: u32, prior: &[f64]) -> Result<Sqlite, DbError> {
        claim(path)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
        let tx = conn.transaction()?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
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
        let has: Option<i64> = tx
            .query_row(
                "SELECT version FROM versions WHERE schema = ?1 LIMIT 1",
                [schema],
                |r| r.get(0),
            )
            .optional()?;
        if has.is_none() {
            tx.execute(
                "INSERT INTO versions (schema, parent, vector, updates, total_updates, note, created_at)
                 VALUES (?1, NULL, ?2, 0, 0, 'prior', strftime('%s', 'now'))",
                params![schema, vector_text(prior)],
            )?;
        }
        tx.commit()?;
        let mut inner = Inner {
            conn,
            data_version: 0,
            schema,
            head: Head::default(),
            pending: Vec::new(),
            dp_zs: Vec::new(),
        };
        inner.reload()?;
        Ok(Sqlite {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    /// Run `f` on the connection on the blocking pool.
    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, DbError> + Send + 'static,
    ) -> Fut<'_, T> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&mut lock(&inner)))
                .await
                .map_err(|e| DbError::Corrupt(format!("storage task failed: {e}")))?
        })
    }
}

impl Inner {
    /// Rebuild the in-memory view (head, buffer, noise multipliers).
    fn reload(&mut self) -> Result<(), DbError> {
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
                    id,
                    row: PendingRow {
                        seq,
                        token,
                        base_version: base as u64,
                        samples: samples as u64,
                        delta: parse_vector(&delta)?,
                        received_at,
                    },
                })
            })
            .collect::<Result<_, DbError>>()?;
        self.head = Head {
            version: version as u64,
            vector: parse_vector(&vector)?,
            total_updates: total as u64,
        };
        let mut stmt = self
            .conn
            .prepare("SELECT dp_z FROM versions WHERE dp_z IS NOT NULL")?;
        self.dp_zs = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        self.data_version = self.data_version()?;
        Ok(())
    }

    fn data_version(&self) -> Result<i64, DbError> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Reload when another connection (an admin command) committed since we last looked.
    fn refresh(&mut self) -> Result<(), DbError> {
        if self.data_version()? != self.data_version {
            self.reload()?;
        }
        Ok(())
    }

    fn head(&self) -> Head {
        self.head.clone()
    }

    /// Distinct tokens in the buffer (one slot each).
    fn fill(&self) -> usize {
        let mut tokens: Vec<&str> = self.pending.iter().map(|p| p.row.token.as_str()).collect();
        tokens.sort_unstable();
        tokens.dedup();
        tokens.len()
    }

    fn accept(&mut self, update: NewUpdate, limits: Limits) -> Result<Accept, DbError> {
        self.refresh()?;
        let current = self.head.version;
        let seen: Option<i64> = self
            .conn
            .query_row("SELECT seq FROM updates WHERE id = ?1", [&update.id], |r| {
                r.get(0)
            })
            .optional()?;
        if seen.is_some() {
            return Ok(Accept::Seen { current });
        }
        let known: Option<i64> = self
            .conn
            .query_row(
                "SELECT version FROM versions WHERE version = ?1 AND schema = ?2",
                params![update.base_version as i64, update.schema],
                |r| r.get(0),
            )
            .optional()?;
        let facts = Facts {
            current,
            base_known: known.is_some(),
            bound: limits.bound(),
        };
        if state::refusal(update.base_version, update.norm, facts, &limits).is_some() {
            return Ok(Accept::Refused(facts));
        }
        let replaced: Vec<&Pending> = self
            .pending
            .iter()
            .filter(|p| p.row.token == update.token)
            .collect();
        let received_at = replaced
            .iter()
            .map(|p| p.row.received_at)
            .min()
            .unwrap_or(update.now);
        let superseded: Vec<String> = replaced.iter().map(|p| p.id.clone()).collect();
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE updates SET state = ?2 WHERE token = ?1 AND state = ?3",
            params![
                update.token,
                i64::from(backend::SUPERSEDED),
                i64::from(backend::PENDING)
            ],
        )?;
        tx.execute(
            "INSERT INTO updates (id, token, schema, base_version, samples, norm, delta, received_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)",
            params![
                update.id,
                update.token,
                update.schema,
                update.base_version as i64,
                update.samples as i64,
                update.norm,
                vector_text(&update.delta),
                received_at
            ],
        )?;
        let seq = tx.last_insert_rowid();
        tx.commit()?;
        self.data_version = self.data_version()?;
        self.pending.retain(|p| p.row.token != update.token);
        self.pending.push(Pending {
            id: update.id,
            row: PendingRow {
                seq,
                token: update.token,
                base_version: update.base_version,
                samples: update.samples,
                delta: update.delta,
                received_at,
            },
        });
        Ok(Accept::Written {
            current,
            superseded,
            waiting: self.fill(),
        })
    }

    fn fold(&mut self, lookback: u64, plan: Plan) -> Result<Option<(u64, usize)>, DbError> {
        self.refresh()?;
        let rows: Vec<PendingRow> = self.pending.iter().map(|p| p.row.clone()).collect();
        let start = self.head.version.saturating_sub(lookback).max(1) as i64;
        let anchor: Option<String> = self
            .conn
            .query_row(
                "SELECT vector FROM versions WHERE schema = ?1 AND version <= ?2
                 ORDER BY version DESC LIMIT 1",
                params![self.schema, start],
                |r| r.get(0),
            )
            .optional()?;
        let anchor = match anchor {
            Some(v) => parse_vector(&v)?,
            None => self.head.vector.clone(),
        };
        let Some(next) = plan(&self.head(), &rows, &anchor)? else {
            return Ok(None);
        };
        let tx = self.conn.transaction()?;
        let version = insert_version(&tx, self.schema, &next)?;
        {
            let mut stmt = tx.prepare(
                "UPDATE updates SET state = 1, applied_version = ?1, staleness = ?2
                 WHERE seq = ?3 AND state = 0",
            )?;
            for (seq, staleness) in &next.applied {
                let changed = stmt.execute(params![version as i64, *staleness as i64, seq])?;
                if changed != 1 {
                    // Someone else applied or discarded it: abandon this version.
                    return Err(DbError::Corrupt(format!(
                        "update {seq} is no longer pending"
                    )));
                }
            }
        }
        tx.commit()?;
        self.data_version = self.data_version()?;
        self.pending
            .retain(|p| !next.applied.iter().any(|(seq, _)| *seq == p.row.seq));
        if let Some(z) = next.dp_z {
            self.dp_zs.push(z);
        }
        self.head = Head {
            version,
            vector: next.vector,
            total_updates: next.total_updates,
        };
        Ok(Some((version, self.fill())))
    }

    fn restore(&mut self, to: u64, restore: Restore) -> Result<u64, DbError> {
        self.refresh()?;
        let head = self.head();
        let tx = self.conn.transaction()?;
        let row: Option<(String, i64)> = tx
            .query_row(
                "SELECT vector, total_updates FROM versions WHERE version = ?1 AND schema = ?2",
                params![to as i64, self.schema],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let target = row
            .map(|(v, total)| Ok::<_, DbError>((parse_vector(&v)?, total as u64)))
            .transpose()?;
        let next = restore(&head, target)?;
        let version = insert_version(&tx, self.schema, &next)?;
        tx.execute(
            "UPDATE updates SET state = ?1 WHERE state = ?2",
            params![i64::from(backend::DISCARDED), i64::from(backend::PENDING)],
        )?;
        tx.commit()?;
        self.reload()?;
        Ok(version)
    }

    fn prune(
        &mut self,
        through: Box<dyn FnOnce(u64, Pruned) -> Option<u64> + Send>,
    ) -> Result<Pruned, DbError> {
        self.refresh()?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let newest: i64 = tx.query_row("SELECT MAX(version) FROM versions", [], |r| r.get(0))?;
        let mut totals = read_pruned(&tx)?;
        let Some(through) = through(newest as u64, totals) else {
            return Ok(totals);
        };
        let b = through as i64;
        for (st, column) in state::PRUNE {
            let column = match column {
                PruneColumn::AppliedVersion => "applied_version",
                PruneColumn::BaseVersion => "base_version",
            };
            let n = tx.execute(
                &format!("DELETE FROM updates WHERE state = ?1 AND {column} <= ?2"),
                params![i64::from(st), b],
            )? as u64;
            match st {
                backend::APPLIED => totals.applied += n,
                backend::SUPERSEDED => totals.superseded += n,
                _ => totals.discarded += n,
            }
        }
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

    fn counts(&self) -> Counts {
        Counts {
            head: self.head(),
            pending: self.pending.len() as u64,
            fill: self.fill() as u64,
            dp_zs: self.dp_zs.clone(),
        }
    }

    fn snapshot(&mut self, last: usize, visit: Visit<'_>) -> Result<Snapshot, DbError> {
        self.refresh()?;
        // One read transaction: the counts, versions and rows agree with each other.
        let tx = self.conn.transaction()?;
        let mut by_state = [0u64; 4];
        {
            let mut stmt = tx.prepare("SELECT state, COUNT(*) FROM updates GROUP BY state")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            for (st, n) in rows {
                if let Some(c) = by_state.get_mut(st as usize) {
                    *c = n as u64;
                }
            }
        }
        let pruned = read_pruned(&tx)?;
        let versions_updates_sum: i64 =
            tx.query_row("SELECT COALESCE(SUM(updates), 0) FROM versions", [], |r| {
                r.get(0)
            })?;
        let mut recent: Vec<VersionRow> = Vec::new();
        {
            let mut stmt = tx.prepare(
                "SELECT version, parent, vector, updates, clip, lr, rule, trim, noise, dp_z, note, created_at
                 FROM versions ORDER BY version",
            )?;
            let mut upd = tx.prepare(
                "SELECT delta, samples, staleness FROM updates WHERE applied_version = ?1 ORDER BY seq",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let row = VersionRow {
                    version: r.get(0)?,
                    parent: r.get(1)?,
                    vector: parse_vector(&r.get::<_, String>(2)?)?,
                    updates: r.get(3)?,
                    clip: r.get(4)?,
                    lr: r.get(5)?,
                    rule: r.get(6)?,
                    trim: r.get(7)?,
                    noise: r
                        .get::<_, Option<String>>(8)?
                        .as_deref()
                        .map(parse_vector)
                        .transpose()?,
                    dp_z: r.get(9)?,
                    note: r.get(10)?,
                    created_at: r.get(11)?,
                };
                let applied = if row.version > pruned.through as i64 {
                    upd.query_map([row.version], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .map(|(d, s, t)| {
                        Ok(Buffered {
                            delta: parse_vector(&d)?,
                            samples: s as u64,
                            staleness: t.unwrap_or(0) as u64,
                        })
                    })
                    .collect::<Result<Vec<_>, DbError>>()?
                } else {
                    Vec::new()
                };
                recent.push(row.clone());
                if recent.len() > last {
                    recent.remove(0);
                }
                visit(pruned.through, row, applied);
            }
        }
        tx.commit()?;
        recent.reverse();
        Ok(Snapshot {
            counts: self.counts(),
            by_state,
            pruned,
            versions_updates_sum: versions_updates_sum as u64,
            recent,
        })
    }
}

impl Backend for Sqlite {
    fn head(&self) -> Fut<'_, Head> {
        self.blocking(|i| {
            i.refresh()?;
            Ok(i.head())
        })
    }

    fn accept(&self, update: NewUpdate, limits: Limits) -> Fut<'_, Accept> {
        self.blocking(move |i| i.accept(update, limits))
    }

    fn fill(&self) -> Fut<'_, (usize, Option<i64>)> {
        self.blocking(|i| {
            i.refresh()?;
            Ok((i.fill(), i.pending.iter().map(|p| p.row.received_at).min()))
        })
    }

    // SQLite has one session: the lock is the connection's, and it is always waited for.
    fn fold(&self, _wait: bool, lookback: u64, plan: Plan) -> Fut<'_, Option<(u64, usize)>> {
        self.blocking(move |i| i.fold(lookback, plan))
    }

    fn restore(&self, to: u64, restore: Restore) -> Fut<'_, u64> {
        self.blocking(move |i| i.restore(to, restore))
    }

    fn prune(
        &self,
        through: Box<dyn FnOnce(u64, Pruned) -> Option<u64> + Send>,
    ) -> Fut<'_, Pruned> {
        self.blocking(move |i| i.prune(through))
    }

    fn counts(&self) -> Fut<'_, Counts> {
        self.blocking(|i| Ok(i.counts()))
    }

    // Admin only (`serve status`, its own process): run inline rather than move `visit` to
    // the blocking pool.
    fn snapshot<'a>(&'a self, last: usize, visit: Visit<'a>) -> Fut<'a, Snapshot> {
        Box::pin(async move { lock(&self.inner).snapshot(last, visit) })
    }
}
