//! The storage primitives the server's rules ([`super::state`]) are written over, and where
//! the state lives (`--db`). Two implementations: [`super::sqlite`] (the default, one server)
//! and [`super::postgres`] (several replicas sharing one database).
//!
//! A backend stores, reads and locks; it decides nothing. Every rule — refusal, staleness,
//! clipping, noise, the step, exactly once, what a prune deletes — is in `state`, which hands
//! the backend the decision as a value or a closure to call under its lock. The one exception
//! is PostgreSQL's one-round-trip accept, which runs the refusal predicate inside the database:
//! that SQL is generated from the same definition ([`super::state::refusal_sql`]).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use super::aggregate::Buffered;
use super::state::{Limits, Pruned};

/// What a primitive returns: boxed, so that the rules hold a `dyn Backend`.
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, DbError>> + Send + 'a>>;

/// The state of a stored update (the `state` column).
pub const PENDING: i16 = 0;
pub const APPLIED: i16 = 1;
/// Pending when a rollback made an earlier version current.
pub const DISCARDED: i16 = 2;
/// Replaced in its token's slot by a newer update before it was aggregated.
pub const SUPERSEDED: i16 = 3;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("server database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("server database: {0}")]
    Corrupt(String),
    /// The file is not a fedtest server database; nothing was written to it.
    #[error("{0}")]
    Foreign(String),
    #[error("PostgreSQL: {0}")]
    Pg(#[from] tokio_postgres::Error),
    #[error("PostgreSQL connection pool: {0}")]
    Pool(String),
}

/// Where the state lives, from `--db`.
#[derive(Clone, Debug, PartialEq)]
pub enum Db {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl Db {
    pub fn parse(db: &Path) -> Db {
        match db.to_str() {
            Some(s) if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
                Db::Postgres(s.to_owned())
            }
            _ => Db::Sqlite(db.to_owned()),
        }
    }

    /// For messages: the file, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            Db::Sqlite(p) => p.display().to_string(),
            Db::Postgres(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
                let (rest, query) = rest
                    .split_once('?')
                    .map_or((rest, None), |(r, q)| (r, Some(q)));
                let mut out = match rest.split_once('@') {
                    Some((user, host)) if user.contains(':') => {
                        let name = user.split(':').next().unwrap_or("");
                        format!("{scheme}://{name}:***@{host}")
                    }
                    _ => format!("{scheme}://{rest}"),
                };
                if let Some(q) = query {
                    let q: Vec<String> = q
                        .split('&')
                        .map(|kv| match kv.split_once('=') {
                            Some(("password", _)) => "password=***".to_owned(),
                            _ => kv.to_owned(),
                        })
                        .collect();
                    out = format!("{out}?{}", q.join("&"));
                }
                out
            }
        }
    }
}

/// The newest version of the served schema.
#[derive(Clone, Debug, Default)]
pub struct Head {
    pub version: u64,
    pub vector: Vec<f64>,
    pub total_updates: u64,
}

/// An update to store, as the rules prepared it (sample count capped, norm computed).
#[derive(Clone, Debug)]
pub struct NewUpdate {
    pub id: String,
    pub token: String,
    pub schema: u32,
    pub base_version: u64,
    pub samples: u64,
    pub norm: f64,
    pub delta: Vec<f64>,
    pub now: i64,
}

/// What an accept is judged on, read in the same atomic step as the write.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Facts {
    /// The newest version of the schema.
    pub current: u64,
    /// The base version is one of the schema's versions.
    pub base_known: bool,
    /// The refusal bound on the norm it was judged against.
    pub bound: f64,
}

/// The outcome of [`Backend::accept`].
#[derive(Debug)]
pub enum Accept {
    /// The id is known (accepted before, superseded, discarded): nothing written.
    Seen { current: u64 },
    /// [`super::state::refusal`] refuses it on these facts: nothing written.
    Refused(Facts),
    /// Stored as its token's pending update; `superseded` are the ids it replaced, `waiting`
    /// the tokens now in the buffer.
    Written {
        current: u64,
        superseded: Vec<String>,
        waiting: usize,
    },
}

/// A pending update as the aggregation reads it.
#[derive(Clone, Debug)]
pub struct PendingRow {
    pub seq: i64,
    pub token: String,
    pub base_version: u64,
    pub samples: u64,
    pub delta: Vec<f64>,
    pub received_at: i64,
}

/// A version to append to the chain, and the pending rows it applies.
#[derive(Clone, Debug)]
pub struct NewVersion {
    pub parent: u64,
    pub vector: Vec<f64>,
    pub updates: u64,
    pub total_updates: u64,
    pub clip: Option<f64>,
    pub lr: Option<f64>,
    pub rule: Option<String>,
    pub trim: Option<f64>,
    /// DP-FedAvg: the noise added to the step, and the noise multiplier.
    pub noise: Option<Vec<f64>>,
    pub dp_z: Option<f64>,
    pub note: String,
    pub created_at: i64,
    /// `(seq, staleness)` of every row this version applies; each must still be pending.
    pub applied: Vec<(i64, u64)>,
}

/// One stored version as the replay and `serve status` read it.
#[derive(Clone, Debug)]
pub struct VersionRow {
    pub version: i64,
    pub parent: Option<i64>,
    pub vector: Vec<f64>,
    pub updates: i64,
    pub clip: Option<f64>,
    pub lr: Option<f64>,
    pub rule: Option<String>,
    pub trim: Option<f64>,
    pub noise: Option<Vec<f64>>,
    pub dp_z: Option<f64>,
    pub note: String,
    pub created_at: i64,
}

/// What the metrics read.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub head: Head,
    pub pending: u64,
    /// Distinct tokens with a pending update.
    pub fill: u64,
    /// The noise multiplier of every noised version.
    pub dp_zs: Vec<f64>,
}

/// What `serve status` reads, in one consistent snapshot.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub counts: Counts,
    /// Rows by state ([`PENDING`] … [`SUPERSEDED`]) still stored.
    pub by_state: [u64; 4],
    pub pruned: Pruned,
    pub versions_updates_sum: u64,
    /// The newest versions, newest first.
    pub recent: Vec<VersionRow>,
}

/// Called by [`Backend::snapshot`] with every version, oldest first, and the rows it applied
/// in `seq` order (none read for a version up to `pruned.through`, the first argument).
pub type Visit<'a> = &'a mut (dyn FnMut(u64, VersionRow, Vec<Buffered>) + Send);

/// Decides the next version from the head, the pending rows (all of them, `seq` order) and
/// the vector of the newest version at most `lookback` before the head (the drift cap's
/// window start); `None`: nothing to do.
pub type Plan =
    Box<dyn FnOnce(&Head, &[PendingRow], &[f64]) -> Result<Option<NewVersion>, DbError> + Send>;

/// Decides the rollback version from the head and the version rolled back to (its vector and
/// total updates; `None` when it does not exist).
pub type Restore =
    Box<dyn FnOnce(&Head, Option<(Vec<f64>, u64)>) -> Result<NewVersion, DbError> + Send>;

/// The storage primitives. Each is atomic on its own; none holds a lock between calls.
pub trait Backend: Send + Sync {
    /// The newest version.
    fn head(&self) -> Fut<'_, Head>;

    /// In one atomic step: a known id is [`Accept::Seen`]; otherwise the facts are read and
    /// judged by [`super::state::refusal`] under `limits` (refused: nothing written);
    /// otherwise the token's pending update is marked superseded and `update` inserted as
    /// pending, keeping the slot's `received_at` (the time flush counts from when the slot
    /// was filled).
    fn accept(&self, update: NewUpdate, limits: Limits) -> Fut<'_, Accept>;

    /// Tokens with a pending update, and the oldest slot's `received_at`.
    fn fill(&self) -> Fut<'_, (usize, Option<i64>)>;

    /// Under the version chain's lock: read the head, the pending rows and the version
    /// `lookback` before the head, ask `plan`, and commit the version it returns together
    /// with its rows' `applied` mark. With `wait`
    /// false a backend may give up when another session holds the lock (it then re-checks
    /// the buffer after its commit). The new version and the tokens waiting after it.
    fn fold(&self, wait: bool, lookback: u64, plan: Plan) -> Fut<'_, Option<(u64, usize)>>;

    /// With no accept or fold beside it: append the version `restore` returns and mark every
    /// pending row discarded. The new version.
    fn restore(&self, to: u64, restore: Restore) -> Fut<'_, u64>;

    /// Under the version chain's lock: `through(newest, totals so far)` names the version up
    /// to which rows go (`None`: nothing to do); delete the rows [`super::state::PRUNE`]
    /// lists and add them to the totals. The totals.
    fn prune(&self, through: Box<dyn FnOnce(u64, Pruned) -> Option<u64> + Send>)
    -> Fut<'_, Pruned>;

    /// What the metrics read.
    fn counts(&self) -> Fut<'_, Counts>;

    /// What `serve status` reads (the newest `last` versions), and every version with its
    /// applied rows through `visit` — in one snapshot.
    fn snapshot<'a>(&'a self, last: usize, visit: Visit<'a>) -> Fut<'a, Snapshot>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_location_and_hides_a_password() {
        assert_eq!(
            Db::parse(Path::new("server.sqlite")),
            Db::Sqlite("server.sqlite".into())
        );
        let db = Db::parse(Path::new("postgres://fed:s3cret@127.0.0.1:5432/fed"));
        assert!(matches!(db, Db::Postgres(_)));
        assert_eq!(db.display(), "postgres://fed:***@127.0.0.1:5432/fed");
        let db = Db::parse(Path::new("postgresql://fed@127.0.0.1/fed"));
        assert_eq!(db.display(), "postgresql://fed@127.0.0.1/fed");
        let db = Db::parse(Path::new("postgres://fed@h/fed?password=x&sslmode=disable"));
        assert_eq!(
            db.display(),
            "postgres://fed@h/fed?password=***&sslmode=disable"
        );
    }
}
