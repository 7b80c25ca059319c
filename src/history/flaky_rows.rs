//! The `flaky` table of the history store: one row of [`FlakyState`] per test, keyed by
//! `tests.id`, written inside `record`'s transaction. Created with `IF NOT EXISTS` whenever a
//! store is opened for writing, so stores made before it existed get it on their next record.
//! The store keeps the counters; `flaky::score` says how a run moves them and what
//! they mean.

use rusqlite::{Connection, OptionalExtension, params};

/// Flakiness evidence of one test: a handful of counters and decayed values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlakyState {
    /// Runs observed (executions; skips are not runs).
    pub runs: u32,
    pub retry_flakes: u32,
    pub same_commit_flips: u32,
    pub unrelated_flips: u32,
    pub unknown_flips: u32,
    /// Flips explained by a change to the test's own file (counted, not evidence).
    pub related_flips: u32,
    /// Decayed log-likelihood ratio, in `[0, flaky::score::MAX_EVIDENCE]`.
    pub evidence: f64,
    /// Recency-weighted flip rate (an exponential moving average of "this run flipped or
    /// flaked", weight `1 - flaky::score::DECAY`).
    pub flip_rate: f64,
    /// Whether the last run failed (`None` before the first run).
    pub last_failed: Option<bool>,
    /// Hash of the last run's commit.
    pub last_commit: Option<u64>,
    /// Build sequence numbers of the first and last run with a signal.
    pub first_flake_seq: Option<u64>,
    pub last_flake_seq: Option<u64>,
    /// Runs since the last signal.
    pub flake_free_runs: u32,
}

pub const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS flaky(
        test INTEGER PRIMARY KEY, runs INTEGER NOT NULL, retry_flakes INTEGER NOT NULL,
        same_commit_flips INTEGER NOT NULL, unrelated_flips INTEGER NOT NULL,
        unknown_flips INTEGER NOT NULL, related_flips INTEGER NOT NULL, evidence REAL NOT NULL,
        flip_rate REAL NOT NULL, last_failed INTEGER, last_commit INTEGER,
        first_flake_seq INTEGER, last_flake_seq INTEGER, flake_free_runs INTEGER NOT NULL);
";

const COLUMNS: &str = "runs, retry_flakes, same_commit_flips, unrelated_flips, unknown_flips, related_flips, \
     evidence, flip_rate, last_failed, last_commit, first_flake_seq, last_flake_seq, flake_free_runs";

fn read_state(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<FlakyState> {
    Ok(FlakyState {
        runs: r.get(at)?,
        retry_flakes: r.get(at + 1)?,
        same_commit_flips: r.get(at + 2)?,
        unrelated_flips: r.get(at + 3)?,
        unknown_flips: r.get(at + 4)?,
        related_flips: r.get(at + 5)?,
        evidence: r.get(at + 6)?,
        flip_rate: r.get(at + 7)?,
        last_failed: r.get(at + 8)?,
        last_commit: r.get::<_, Option<i64>>(at + 9)?.map(|c| c as u64),
        first_flake_seq: r.get::<_, Option<i64>>(at + 10)?.map(|s| s as u64),
        last_flake_seq: r.get::<_, Option<i64>>(at + 11)?.map(|s| s as u64),
        flake_free_runs: r.get(at + 12)?,
    })
}

/// The stored rows of the given tests (by `tests.id`), in the same order: `None` for a test
/// the history does not know or that has no row yet.
pub fn load_some(
    conn: &Connection,
    ids: impl IntoIterator<Item = Option<i64>>,
) -> rusqlite::Result<Vec<Option<FlakyState>>> {
    let mut select =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM flaky WHERE test = ?1"))?;
    ids.into_iter()
        .map(|id| match id {
            Some(id) => select.query_row([id], |r| read_state(r, 0)).optional(),
            None => Ok(None),
        })
        .collect()
}

/// Write the given tests' rows (by `tests.id`), one statement prepared for all of them (a
/// build writes a row for nearly every test it ran).
pub fn save<'a>(
    conn: &Connection,
    rows: impl IntoIterator<Item = (i64, &'a FlakyState)>,
) -> rusqlite::Result<()> {
    let mut upsert = conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO flaky(test, {COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"
    ))?;
    for (id, state) in rows {
        upsert.execute(params![
            id,
            state.runs,
            state.retry_flakes,
            state.same_commit_flips,
            state.unrelated_flips,
            state.unknown_flips,
            state.related_flips,
            state.evidence,
            state.flip_rate,
            state.last_failed,
            state.last_commit.map(|c| c as i64),
            state.first_flake_seq.map(|s| s as i64),
            state.last_flake_seq.map(|s| s as i64),
            state.flake_free_runs,
        ])?;
    }
    Ok(())
}

/// One test's flakiness, as `fedtest flaky` lists it.
#[derive(Clone, Debug)]
pub struct FlakyRow {
    pub id: String,
    /// The source file the reports named for it.
    pub file: Option<String>,
    pub state: FlakyState,
    /// Build ids of the first and last run with a signal.
    pub first_flake_build: Option<String>,
    pub last_flake_build: Option<String>,
}

/// Every test's flakiness row; empty for a store that has no `flaky` table yet.
pub fn load(conn: &Connection) -> rusqlite::Result<Vec<FlakyRow>> {
    let exists: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'flaky'",
        [],
        |r| r.get(0),
    )?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    let cols = COLUMNS
        .split(',')
        .map(|c| format!("f.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn.prepare(&format!(
        "SELECT t.name, t.file, b1.build_id, b2.build_id, {cols} FROM flaky f
         JOIN tests t ON t.id = f.test
         LEFT JOIN builds b1 ON b1.seq = f.first_flake_seq
         LEFT JOIN builds b2 ON b2.seq = f.last_flake_seq"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok(FlakyRow {
            id: r.get(0)?,
            file: r.get(1)?,
            first_flake_build: r.get(2)?,
            last_flake_build: r.get(3)?,
            state: read_state(r, 4)?,
        })
    })?;
    rows.collect()
}
