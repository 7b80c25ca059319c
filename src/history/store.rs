//! SQLite persistence of the history. One transaction per recorded build ([`Store::begin`] to
//! [`Recording::finish`]); concurrent writers are
//! serialised by SQLite's lock (WAL mode, `BEGIN IMMEDIATE`, a generous busy timeout).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::flaky_rows::{self, FlakyRow, FlakyState};
use super::state::{self, CoChange, Delta, Example, GlobalStats, GroupStats, State};
use super::stats::TestStats;
use crate::junit::{Outcome, TestCase};

/// File name of the store inside the data dir.
pub const DB_FILE: &str = "history.sqlite";
/// `PRAGMA application_id` of a fedtest store ("FDTS").
const APPLICATION_ID: i64 = 0x4644_5453;
/// Schema version of the store (`PRAGMA user_version`).
const STORE_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "history store {path} is corrupt or not a fedtest store ({detail}); move it aside to start a new history"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "history store {path} was written by a newer fedtest (store version {found}, this fedtest reads {STORE_VERSION})"
    )]
    TooNew { path: PathBuf, found: i64 },
    #[error("history store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create data dir {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StoreError {
    pub fn is_corruption(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. } | StoreError::TooNew { .. })
    }
}

/// Meta key of the backtest record.
const BACKTEST_KEY: &str = "backtest";

/// What [`Store::begin`] calls with the build's sequence number, the state before the build
/// and the stored backtest record; it returns the record to store (`None`: unchanged), or why
/// the stored one cannot be read.
pub type Backtest<'a> =
    &'a mut dyn FnMut(u64, &State, Option<&str>) -> Result<Option<String>, String>;

/// A [`Backtest`] that keeps no record (tests, and callers with nothing to score).
pub fn no_backtest(_: u64, _: &State, _: Option<&str>) -> Result<Option<String>, String> {
    Ok(None)
}

/// Retention of raw rows.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Raw per-build results and changed-file lists are kept for this many builds.
    pub builds: u64,
    /// Training examples are kept for this many builds.
    pub example_builds: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            builds: 100,
            example_builds: 200,
        }
    }
}

/// Build metadata given to `record`.
#[derive(Clone, Debug, Default)]
pub struct BuildMeta {
    pub build_id: String,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub changed_files: Option<Vec<String>>,
    /// When the build ran (Unix seconds) [default: now]. `fedtest import` gives the run's
    /// start, so an imported history carries the times the builds really ran.
    pub recorded_at: Option<i64>,
}

/// What `record` did.
#[derive(Debug, PartialEq)]
pub enum RecordOutcome {
    Recorded {
        seq: u64,
        tests: usize,
        failed: usize,
        flaky: usize,
        skipped: usize,
        new_tests: usize,
        /// The id the build was stored under when it differs from the one given: a build id
        /// already recorded for another commit (act gives every run `GITHUB_RUN_ID=1`) is
        /// stored as `<id>@<short commit>`, since (build id, commit) is a build's identity.
        renamed: Option<String>,
    },
    AlreadyRecorded {
        seq: u64,
    },
}

/// A stored build in the retention window, for `eval`.
pub struct StoredBuild {
    pub seq: u64,
    pub build_id: String,
    pub changed_files: Option<Vec<String>>,
    /// Unix seconds (the build rate behind `eval`'s time-saved estimate).
    pub recorded_at: i64,
    pub results: Vec<TestCase>,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

fn outcome_code(o: Outcome) -> i64 {
    match o {
        Outcome::Passed => 0,
        Outcome::Failed => 1,
        Outcome::Skipped => 2,
        Outcome::Flaky => 3,
    }
}

fn outcome_from(code: i64) -> Outcome {
    match code {
        1 => Outcome::Failed,
        2 => Outcome::Skipped,
        3 => Outcome::Flaky,
        _ => Outcome::Passed,
    }
}

impl Store {
    /// Path of the store in a data dir.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(DB_FILE)
    }

    /// Open the store in `dir`, creating dir and store when missing.
    pub fn open_or_create(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        Self::open_at(&Self::path_in(dir), true)
            .map(|s| s.expect("a created store is always returned"))
    }

    /// Open an existing store; `Ok(None)` when there is none yet (or another process is
    /// still creating it).
    ///
    /// A store in a read-only data dir (a restored cache mounted read-only, another user's
    /// files) cannot be opened the usual way — WAL mode needs to create its `-shm` file — so
    /// it is then opened immutable, read-only, as the last writer left it (issue 11).
    pub fn open_existing(dir: &Path) -> Result<Option<Store>, StoreError> {
        let path = Self::path_in(dir);
        if !path.exists() {
            return Ok(None);
        }
        match Self::open_at(&path, false) {
            Err(StoreError::Sqlite { source, .. }) if read_only_trouble(&source) => {
                Self::open_immutable(&path)
            }
            other => other,
        }
    }

    fn open_immutable(path: &Path) -> Result<Option<Store>, StoreError> {
        let wrap = |e: rusqlite::Error| classify(path, e);
        let uri = format!("file:{}?immutable=1", uri_path(path));
        let conn = Connection::open_with_flags(
            uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(wrap)?;
        let app: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(wrap)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(wrap)?;
        if app == 0 && version == 0 {
            let tables: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(wrap)?;
            if tables == 0 {
                return Ok(None);
            }
        }
        if app != APPLICATION_ID {
            return Err(StoreError::Corrupt {
                path: path.to_owned(),
                detail: format!("application id {app:#x}"),
            });
        }
        if version > STORE_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found: version,
            });
        }
        Ok(Some(Store {
            conn,
            path: path.to_owned(),
        }))
    }

    fn open_at(path: &Path, create: bool) -> Result<Option<Store>, StoreError> {
        let flags = if create {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        let wrap = |e: rusqlite::Error| classify(path, e);
        let mut conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(wrap)?;
        conn.busy_timeout(Duration::from_secs(120)).map_err(wrap)?;
        // Check and create in one transaction, so a process that races us to create the store
        // sees either nothing or the finished schema — never half of it. Readers take no write
        // lock; only a creator does.
        let empty = std::fs::metadata(path).is_ok_and(|m| m.len() == 0);
        if create && empty {
            // Only possible on an empty file, outside a transaction. Lets retention give pages
            // back. (On an existing store even a no-op setting would rewrite the header.)
            conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
                .map_err(wrap)?;
        }
        let behavior = if create {
            TransactionBehavior::Immediate
        } else {
            TransactionBehavior::Deferred
        };
        let tx = conn.transaction_with_behavior(behavior).map_err(wrap)?;
        let app: i64 = tx
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(wrap)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(wrap)?;
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(wrap)?;
        if app == 0 && version == 0 {
            if tables > 0 {
                return Err(StoreError::Corrupt {
                    path: path.to_owned(),
                    detail: "an SQLite file of another program".into(),
                });
            }
            if !create {
                return Ok(None);
            }
            tx.execute_batch(SCHEMA).map_err(wrap)?;
        } else if app != APPLICATION_ID {
            return Err(StoreError::Corrupt {
                path: path.to_owned(),
                detail: format!("application id {app:#x}"),
            });
        } else if version > STORE_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found: version,
            });
        }
        if create {
            // Tables added after store version 1; a no-op once they exist.
            tx.execute_batch(flaky_rows::SCHEMA).map_err(wrap)?;
        }
        tx.commit().map_err(wrap)?;
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY;",
        )
        .map_err(wrap)?;
        set_wal(&conn).map_err(wrap)?;
        Ok(Some(Store {
            conn,
            path: path.to_owned(),
        }))
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| classify(&self.path, e)
    }

    /// Start recording one build: one transaction, open until [`Recording::finish`] commits
    /// it. Recording a build id twice changes nothing ([`Begun::AlreadyRecorded`]).
    ///
    /// `backtest` sees the state before the build (what `plan` saw) and the stored backtest
    /// record (JSON the store does not read, see `strategy`), and returns the new record,
    /// written by `finish`; an error means the stored record is corrupt, and nothing is written.
    pub fn begin(
        &mut self,
        meta: &BuildMeta,
        backtest: Backtest<'_>,
    ) -> Result<Begun<'_>, StoreError> {
        let path = self.path.clone();
        let wrap = |e: rusqlite::Error| classify(&path, e);
        let conn = &self.conn;
        // `begin` holds the store mutably, so this is the only transaction on `conn`; the
        // shared borrow lets `finish` vacuum after committing.
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .map_err(wrap)?;
        // A build is (build id, commit): the same id for another commit is a new build, kept
        // under `<id>@<short commit>` (looked up in turn, so recording it twice is a no-op).
        let lookup = |id: &str| {
            tx.query_row(
                "SELECT seq, commit_sha FROM builds WHERE build_id = ?1",
                [id],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()
        };
        let mut renamed = None;
        if let Some((seq, commit)) = lookup(&meta.build_id).map_err(wrap)? {
            match (&meta.commit, commit) {
                (Some(new), Some(old)) if *new != old => {
                    let short: String = new.chars().take(12).collect();
                    let id = format!("{}@{short}", meta.build_id);
                    if let Some((seq, _)) = lookup(&id).map_err(wrap)? {
                        return Ok(Begun::AlreadyRecorded { seq: seq as u64 });
                    }
                    renamed = Some(id);
                }
                _ => return Ok(Begun::AlreadyRecorded { seq: seq as u64 }),
            }
        }
        let seq: u64 = tx
            .query_row("SELECT coalesce(max(seq), 0) + 1 FROM builds", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(wrap)? as u64;
        let changed = meta.changed_files.as_deref();
        let (ids, state) = load_state(&tx, changed.unwrap_or_default()).map_err(wrap)?;
        let stored = load_meta(&tx, BACKTEST_KEY).map_err(wrap)?;
        let backtested =
            backtest(seq, &state, stored.as_deref()).map_err(|detail| StoreError::Corrupt {
                path: path.clone(),
                detail: format!("meta row {BACKTEST_KEY:?}: {detail}"),
            })?;
        Ok(Begun::New(Box::new(Recording {
            conn,
            tx,
            path,
            seq,
            renamed,
            ids,
            state,
            backtested,
        })))
    }

    /// Per-test aggregates, keyed by canonical id.
    pub fn tests(&self) -> Result<HashMap<String, TestStats>, StoreError> {
        load_tests(&self.conn).map(|(_, t)| t).map_err(self.err())
    }

    /// The learning state, with co-change counts for the given changed files only.
    pub fn state(&self, changed: &[String]) -> Result<State, StoreError> {
        load_state(&self.conn, changed)
            .map(|(_, s)| s)
            .map_err(self.err())
    }

    pub fn global(&self) -> Result<GlobalStats, StoreError> {
        load_global(&self.conn).map_err(self.err())
    }

    /// Training examples, oldest first.
    pub fn examples(&self) -> Result<Vec<Example>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, failed, weight, natural, features FROM examples ORDER BY seq")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Example {
                    seq: r.get::<_, i64>(0)? as u64,
                    failed: r.get(1)?,
                    weight: r.get(2)?,
                    natural: r.get(3)?,
                    features: decode_features(&r.get::<_, Vec<u8>>(4)?),
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Builds whose raw results are still retained, oldest first.
    pub fn retained_builds(&self) -> Result<Vec<StoredBuild>, StoreError> {
        let mut builds: Vec<StoredBuild> = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT seq, build_id, changed_files, recorded_at FROM builds WHERE seq IN (SELECT DISTINCT seq FROM results) ORDER BY seq")
                .map_err(self.err())?;
            let rows = stmt
                .query_map([], |r| {
                    let changed: Option<String> = r.get(2)?;
                    Ok(StoredBuild {
                        seq: r.get::<_, i64>(0)? as u64,
                        build_id: r.get(1)?,
                        changed_files: changed.and_then(|c| serde_json::from_str(&c).ok()),
                        recorded_at: r.get(3)?,
                        results: Vec::new(),
                    })
                })
                .map_err(self.err())?;
            for b in rows {
                builds.push(b.map_err(self.err())?);
            }
        }
        let index: HashMap<u64, usize> =
            builds.iter().enumerate().map(|(i, b)| (b.seq, i)).collect();
        let mut stmt = self
            .conn
            .prepare("SELECT r.seq, t.name, t.file, r.outcome, r.duration_ms, r.attempts FROM results r JOIN tests t ON t.id = r.test ORDER BY r.seq, r.test")
            .map_err(self.err())?;
        let mut rows = stmt.query([]).map_err(self.err())?;
        while let Some(r) = rows.next().map_err(self.err())? {
            let seq = r.get::<_, i64>(0).map_err(self.err())? as u64;
            let Some(&i) = index.get(&seq) else { continue };
            let id: String = r.get(1).map_err(self.err())?;
            let outcome = outcome_from(r.get(3).map_err(self.err())?);
            let attempts: u32 = r.get(5).map_err(self.err())?;
            builds[i].results.push(TestCase {
                classname: String::new(),
                name: id.clone(),
                id,
                file: r.get(2).map_err(self.err())?,
                line: None,
                outcome,
                duration: r.get::<_, i64>(4).map_err(self.err())? as f64 / 1000.0,
                attempts,
                failed_attempts: u32::from(outcome == Outcome::Failed) * attempts,
            });
        }
        Ok(builds)
    }

    /// The stored backtest record (see [`Store::begin`]), as written.
    pub fn backtest(&self) -> Result<Option<String>, StoreError> {
        load_meta(&self.conn, BACKTEST_KEY).map_err(self.err())
    }

    /// Store a value beside the backtest record under `key` (e.g. the calibration of the
    /// strategy in use), in a transaction of its own.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        save_meta(&self.conn, key, value).map_err(self.err())
    }

    /// A value stored with [`Store::set_meta`].
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        load_meta(&self.conn, key).map_err(self.err())
    }

    /// Flakiness evidence of every test that has some history (see `flaky`).
    pub fn flaky(&self) -> Result<Vec<FlakyRow>, StoreError> {
        flaky_rows::load(&self.conn).map_err(self.err())
    }

    /// The id of every build ever recorded (ids outlive retention).
    pub fn build_ids(&self) -> Result<HashSet<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT build_id FROM builds")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// When the newest build ran or was recorded (Unix seconds); `None` for an empty store.
    pub fn newest_recorded_at(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row("SELECT max(recorded_at) FROM builds", [], |r| r.get(0))
            .map_err(self.err())
    }

    /// Sequence number of the newest build (0 for an empty store), from the builds themselves
    /// rather than the totals in `meta`.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT coalesce(max(seq), 0) FROM builds", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(self.err())
    }

    /// Runs `fedtest import` skipped for a reason that will not change (expired or refused
    /// downloads, unreadable artifacts, artifacts over a bound), by build id, with the reason:
    /// the next import goes on past them instead of fetching them again. Kept in `meta` under
    /// `import-skipped:<build id>`, so no schema change.
    pub fn import_skipped(&self) -> Result<HashMap<String, String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM meta WHERE key LIKE 'import-skipped:%'")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(self.err())?;
        rows.map(|r| r.map(|(k, v)| (k["import-skipped:".len()..].to_owned(), v)))
            .collect::<Result<_, _>>()
            .map_err(self.err())
    }

    /// Remember that `fedtest import` skipped `build_id` (see [`Store::import_skipped`]).
    pub fn remember_import_skipped(&self, build_id: &str, reason: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
                [format!("import-skipped:{build_id}"), reason.to_owned()],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Number of builds recorded.
    pub fn build_count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM builds", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.err())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The store's schema, version [`STORE_VERSION`].
const SCHEMA: &str = "
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE builds(
        seq INTEGER PRIMARY KEY, build_id TEXT NOT NULL UNIQUE, commit_sha TEXT, branch TEXT,
        recorded_at INTEGER NOT NULL, tests INTEGER NOT NULL, failed INTEGER NOT NULL,
        flaky INTEGER NOT NULL, skipped INTEGER NOT NULL, duration REAL NOT NULL,
        changed_files TEXT);
    CREATE TABLE tests(
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, file TEXT,
        runs INTEGER NOT NULL, fails INTEGER NOT NULL, flaky INTEGER NOT NULL,
        skips INTEGER NOT NULL, flips INTEGER NOT NULL, window INTEGER NOT NULL,
        decay80 REAL NOT NULL, decay90 REAL NOT NULL, decay95 REAL NOT NULL,
        first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
        runs_at_last_fail INTEGER NOT NULL, duration REAL NOT NULL);
    CREATE TABLE results(
        seq INTEGER NOT NULL, test INTEGER NOT NULL, outcome INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL, attempts INTEGER NOT NULL,
        PRIMARY KEY(seq, test)) WITHOUT ROWID;
    CREATE TABLE groups(
        key TEXT PRIMARY KEY, fails REAL NOT NULL, runs REAL NOT NULL,
        last_fail_share REAL NOT NULL) WITHOUT ROWID;
    CREATE TABLE file_changes(path TEXT PRIMARY KEY, changes REAL NOT NULL) WITHOUT ROWID;
    CREATE TABLE cofail(
        path TEXT NOT NULL, test INTEGER NOT NULL, count REAL NOT NULL,
        PRIMARY KEY(path, test)) WITHOUT ROWID;
    CREATE TABLE examples(
        seq INTEGER NOT NULL, failed INTEGER NOT NULL, weight REAL NOT NULL,
        natural REAL NOT NULL, features BLOB NOT NULL);
    CREATE INDEX examples_seq ON examples(seq);
    PRAGMA application_id = 1178883155;
    PRAGMA user_version = 1;
";
const _: () = assert!(APPLICATION_ID == 1_178_883_155 && STORE_VERSION == 1);

/// What [`Store::begin`] found.
pub enum Begun<'s> {
    /// The build is in the history already; nothing was written.
    AlreadyRecorded {
        seq: u64,
    },
    New(Box<Recording<'s>>),
}

/// A build being recorded: the store's open transaction and the state before the build.
/// Dropping it without [`Recording::finish`] rolls everything back.
pub struct Recording<'s> {
    conn: &'s Connection,
    tx: rusqlite::Transaction<'s>,
    path: PathBuf,
    seq: u64,
    renamed: Option<String>,
    /// `tests.id` of every known test, by name.
    ids: HashMap<String, i64>,
    /// The state before the build (co-change counts for its changed files only), until the
    /// record workflow folds the build in.
    pub state: State,
    backtested: Option<String>,
}

/// Everything [`Recording::finish`] writes, computed by the record workflow.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub meta: &'a BuildMeta,
    pub results: &'a [TestCase],
    pub retention: Retention,
    /// Tests of the build the history did not know before it.
    pub new_tests: usize,
    pub examples: &'a [Example],
    pub delta: &'a Delta,
    /// The flakiness rows the build changed: index into `results`, and the row.
    pub flaky_evidence: &'a [(usize, FlakyState)],
}

impl Recording<'_> {
    /// The build's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The stored flakiness rows of the given tests, in their order (`None`: no row yet).
    pub fn flaky_rows(&self, results: &[TestCase]) -> Result<Vec<Option<FlakyState>>, StoreError> {
        let ids = results.iter().map(|t| self.ids.get(&t.id).copied());
        flaky_rows::load_some(&self.tx, ids).map_err(|e| classify(&self.path, e))
    }

    /// Write the build and everything computed from it, and commit. `state` must be the
    /// state [`Store::begin`] loaded with the build folded in (`delta` says what changed).
    pub fn finish(self, build: &Rows<'_>) -> Result<RecordOutcome, StoreError> {
        let Recording {
            conn,
            tx,
            path,
            seq,
            renamed,
            ids,
            state,
            backtested,
        } = self;
        let wrap = |e: rusqlite::Error| classify(&path, e);
        let Rows {
            meta,
            results,
            retention,
            new_tests,
            examples,
            delta,
            flaky_evidence,
        } = *build;
        let build_id = renamed.as_deref().unwrap_or(&meta.build_id);
        let changed = meta.changed_files.as_deref();
        let tests = &state.tests;

        let count = |o: Outcome| results.iter().filter(|t| t.outcome == o).count();
        let (failed, flaky, skipped) = (
            count(Outcome::Failed),
            count(Outcome::Flaky),
            count(Outcome::Skipped),
        );
        let duration: f64 = results.iter().map(|t| t.duration).sum();
        let changed_json = changed.map(|c| serde_json::to_string(c).expect("strings serialise"));
        let now = meta.recorded_at.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
        tx.execute(
            "INSERT INTO builds(seq, build_id, commit_sha, branch, recorded_at, tests, failed, flaky, skipped, duration, changed_files)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![seq as i64, build_id, meta.commit, meta.branch, now, results.len() as i64, failed as i64, flaky as i64, skipped as i64, duration, changed_json],
        )
        .map_err(wrap)?;

        let mut test_ids: HashMap<&str, i64> = HashMap::with_capacity(results.len());
        {
            // Known tests are updated by id, new ones inserted; both bind the same values,
            // with the id or the name last.
            let mut update = tx
                .prepare_cached(
                    "UPDATE tests SET file=?1, runs=?2, fails=?3, flaky=?4, skips=?5, flips=?6, window=?7,
                     decay80=?8, decay90=?9, decay95=?10, first_seq=?11, last_seq=?12,
                     runs_at_last_fail=?13, duration=?14 WHERE id=?15",
                )
                .map_err(wrap)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO tests(file, runs, fails, flaky, skips, flips, window, decay80, decay90,
                     decay95, first_seq, last_seq, runs_at_last_fail, duration, name)
                     VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)",
                )
                .map_err(wrap)?;
            let mut result = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO results(seq, test, outcome, duration_ms, attempts) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(wrap)?;
            for t in results {
                let s = &tests[&t.id];
                if test_ids.contains_key(t.id.as_str()) {
                    continue; // grouped reports hold each id once; be safe anyway
                }
                let window = s.window as i64;
                let (first, last) = (s.first_seq as i64, s.last_seq as i64);
                let values: [&dyn rusqlite::ToSql; 14] = [
                    &s.file,
                    &s.runs,
                    &s.fails,
                    &s.flaky,
                    &s.skips,
                    &s.flips,
                    &window,
                    &s.decayed[0],
                    &s.decayed[1],
                    &s.decayed[2],
                    &first,
                    &last,
                    &s.runs_at_last_fail,
                    &s.duration,
                ];
                let id = match ids.get(&t.id) {
                    Some(&id) => {
                        update
                            .execute(rusqlite::params_from_iter(
                                values.iter().copied().chain([&id as &dyn rusqlite::ToSql]),
                            ))
                            .map_err(wrap)?;
                        id
                    }
                    None => {
                        insert
                            .execute(rusqlite::params_from_iter(
                                values
                                    .iter()
                                    .copied()
                                    .chain([&t.id as &dyn rusqlite::ToSql]),
                            ))
                            .map_err(wrap)?;
                        tx.last_insert_rowid()
                    }
                };
                test_ids.insert(&t.id, id);
                let ms = (t.duration * 1000.0).round().clamp(0.0, i64::MAX as f64) as i64;
                result
                    .execute(params![
                        seq as i64,
                        id,
                        outcome_code(t.outcome),
                        ms,
                        t.attempts
                    ])
                    .map_err(wrap)?;
            }
            let mut group = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO groups(key, fails, runs, last_fail_share) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(wrap)?;
            for key in &delta.groups {
                let g = &state.groups[key];
                group
                    .execute(params![key, g.fails, g.runs, g.last_fail_share])
                    .map_err(wrap)?;
            }
        }
        {
            let mut file = tx
                .prepare_cached("INSERT INTO file_changes(path, changes) VALUES (?1, 1) ON CONFLICT(path) DO UPDATE SET changes = changes + 1")
                .map_err(wrap)?;
            for f in &delta.changed_files {
                file.execute([f]).map_err(wrap)?;
            }
            let mut co = tx
                .prepare_cached("INSERT INTO cofail(path, test, count) VALUES (?1, ?2, 1) ON CONFLICT(path, test) DO UPDATE SET count = count + 1")
                .map_err(wrap)?;
            for (f, t) in &delta.cofail {
                co.execute(params![f, test_ids[t.as_str()]]).map_err(wrap)?;
            }
            let mut ex = tx
                .prepare_cached(
                    "INSERT INTO examples(seq, failed, weight, natural, features) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(wrap)?;
            for e in examples {
                ex.execute(params![
                    e.seq as i64,
                    e.failed,
                    e.weight,
                    e.natural,
                    encode_features(&e.features)
                ])
                .map_err(wrap)?;
            }
        }
        // Flakiness evidence, one O(1) row per test (see `flaky::score`).
        let rows = (flaky_evidence.iter()).map(|(i, row)| (test_ids[results[*i].id.as_str()], row));
        flaky_rows::save(&tx, rows).map_err(wrap)?;
        // Retention: raw rows are bounded; the aggregates above are kept forever.
        let keep_from = seq.saturating_sub(retention.builds.max(1)) as i64;
        tx.execute("DELETE FROM results WHERE seq <= ?1", [keep_from])
            .map_err(wrap)?;
        tx.execute(
            "UPDATE builds SET changed_files = NULL WHERE seq <= ?1 AND changed_files IS NOT NULL",
            [keep_from],
        )
        .map_err(wrap)?;
        let keep_examples_from = seq.saturating_sub(retention.example_builds.max(1)) as i64;
        tx.execute("DELETE FROM examples WHERE seq <= ?1", [keep_examples_from])
            .map_err(wrap)?;
        save_global(&tx, &state.global).map_err(wrap)?;
        if let Some(text) = backtested {
            save_meta(&tx, BACKTEST_KEY, &text).map_err(wrap)?;
        }
        tx.commit().map_err(wrap)?;
        // Give pages freed by retention back to the file system, a little at a time.
        let _ = conn.execute_batch("PRAGMA incremental_vacuum(2000);");
        Ok(RecordOutcome::Recorded {
            seq,
            tests: results.len(),
            failed,
            flaky,
            skipped,
            new_tests,
            renamed,
        })
    }
}

/// Switch to WAL (readers never wait for a writer). The switch needs an exclusive lock that
/// SQLite's busy handler does not wait for, so a store being created by another process at
/// this very moment is retried briefly; a store already in WAL mode needs no switch.
fn set_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mut attempt = 0;
    loop {
        let mode: rusqlite::Result<String> = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .and_then(|m: String| {
                if m.eq_ignore_ascii_case("wal") {
                    Ok(m)
                } else {
                    conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
                }
            });
        match mode {
            Err(e)
                if attempt < 200
                    && matches!(
                        e.sqlite_error_code(),
                        Some(
                            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                        )
                    ) =>
            {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            other => return other.map(|_| ()),
        }
    }
}

/// Errors that mean "this store cannot be written here", not "this store is broken".
fn read_only_trouble(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied)
    )
}

/// `path` for an SQLite `file:` URI: everything but unreserved characters and `/`
/// percent-encoded.
fn uri_path(path: &Path) -> String {
    let raw = path.as_os_str().as_encoded_bytes();
    let mut out = String::with_capacity(raw.len());
    for &b in raw {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
            path: path.to_owned(),
            detail: e.to_string(),
        },
        _ => StoreError::Sqlite {
            path: path.to_owned(),
            source: e,
        },
    }
}

/// The store's totals (builds, failures, decayed shares). A `global` row that does not parse,
/// or no row in a store that holds builds, is corruption: read as zeros it would make `plan`
/// think the history is empty and the next `record` overwrite the real totals (issue 11). It
/// is reported as SQLite's own `SQLITE_CORRUPT`, so [`classify`] makes it
/// [`StoreError::Corrupt`] on every path that loads it.
fn load_global(conn: &Connection) -> rusqlite::Result<GlobalStats> {
    let text: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'global'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let corrupt = |detail: String| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(detail),
        )
    };
    match text {
        Some(t) => serde_json::from_str::<GlobalStats>(&t)
            .map_err(|e| {
                corrupt(format!(
                    "the `global` row of table `meta` is unreadable: {e}"
                ))
            })
            .and_then(|g| {
                let finite = [
                    g.recent_fails,
                    g.recent_verdicts,
                    g.recent_failing_builds,
                    g.recent_builds,
                ]
                .iter()
                .all(|v| v.is_finite() && *v >= 0.0);
                if finite {
                    Ok(g)
                } else {
                    Err(corrupt(
                        "the `global` row of table `meta` holds a negative or infinite share"
                            .to_owned(),
                    ))
                }
            }),
        None => {
            let builds: bool =
                conn.query_row("SELECT EXISTS(SELECT 1 FROM builds)", [], |r| r.get(0))?;
            if builds {
                Err(corrupt(
                    "table `meta` has no `global` row, but builds are recorded".to_owned(),
                ))
            } else {
                Ok(GlobalStats::default())
            }
        }
    }
}

fn load_meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

fn save_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
        [key, value],
    )?;
    Ok(())
}

fn save_global(conn: &Connection, g: &GlobalStats) -> rusqlite::Result<()> {
    let text = serde_json::to_string(g).expect("global stats serialise");
    conn.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES ('global', ?1)",
        [text],
    )?;
    Ok(())
}

type Tests = (HashMap<String, i64>, HashMap<String, TestStats>);

/// A stored duration estimate within `[0, MAX_TEST_SECONDS]` (SQLite stores an infinity as
/// it is; NaN comes back as NULL, which `get` refuses, so a REAL is read through `Option`).
fn bounded_duration(d: Option<f64>) -> f64 {
    match d {
        Some(d) if d.is_finite() => d.clamp(0.0, crate::junit::MAX_TEST_SECONDS),
        Some(d) if d > 0.0 => crate::junit::MAX_TEST_SECONDS,
        _ => 0.0,
    }
}

fn load_tests(conn: &Connection) -> rusqlite::Result<Tests> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, file, runs, fails, flaky, skips, flips, window, decay80, decay90, decay95,
         first_seq, last_seq, runs_at_last_fail, duration FROM tests",
    )?;
    let mut ids = HashMap::new();
    let mut tests = HashMap::new();
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let name: String = r.get(1)?;
        let s = TestStats {
            file: r.get(2)?,
            runs: r.get(3)?,
            fails: r.get(4)?,
            flaky: r.get(5)?,
            skips: r.get(6)?,
            flips: r.get(7)?,
            window: r.get::<_, i64>(8)? as u64,
            decayed: [r.get(9)?, r.get(10)?, r.get(11)?],
            first_seq: r.get::<_, i64>(12)? as u64,
            last_seq: r.get::<_, i64>(13)? as u64,
            runs_at_last_fail: r.get(14)?,
            // An estimate poisoned before durations were bounded (issue 11) is read as the
            // bound; the next run of the test replaces it (`TestStats::observe`).
            duration: bounded_duration(r.get(15)?),
        };
        ids.insert(name.clone(), r.get(0)?);
        tests.insert(name, s);
    }
    Ok((ids, tests))
}

/// Everything `observe` and `plan` read, with co-change counts for `changed` only.
fn load_state(
    conn: &Connection,
    changed: &[String],
) -> rusqlite::Result<(HashMap<String, i64>, State)> {
    let (ids, tests) = load_tests(conn)?;
    let mut groups = HashMap::new();
    let mut stmt = conn.prepare_cached("SELECT key, fails, runs, last_fail_share FROM groups")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        groups.insert(
            r.get::<_, String>(0)?,
            GroupStats {
                fails: r.get(1)?,
                runs: r.get(2)?,
                last_fail_share: r.get(3)?,
            },
        );
    }
    let state = State {
        tests,
        groups,
        global: load_global(conn)?,
        cochange: load_cochange(conn, changed)?,
    };
    Ok((ids, state))
}

fn load_cochange(conn: &Connection, changed: &[String]) -> rusqlite::Result<CoChange> {
    let mut co = CoChange::default();
    if changed.is_empty() || changed.len() > state::MAX_COCHANGE_FILES {
        return Ok(co);
    }
    let mut files = conn.prepare_cached("SELECT changes FROM file_changes WHERE path = ?1")?;
    let mut fails = conn.prepare_cached(
        "SELECT t.name, c.count FROM cofail c JOIN tests t ON t.id = c.test WHERE c.path = ?1",
    )?;
    for path in changed {
        if let Some(n) = files.query_row([path], |r| r.get::<_, f64>(0)).optional()? {
            co.file_changes.insert(path.clone(), n);
        }
        let rows = fails.query_map([path], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?))
        })?;
        let entry = co.cofail.entry(path.clone()).or_default();
        for row in rows {
            let (t, n) = row?;
            entry.insert(t, n);
        }
    }
    Ok(co)
}

fn encode_features(x: &[f64]) -> Vec<u8> {
    x.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect()
}

fn decode_features(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}
