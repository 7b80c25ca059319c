//! The one interface the HTTP layer and the admin commands use for the state, whichever
//! database holds it: SQLite (the default, one server) or PostgreSQL (several replicas).
//!
//! SQLite is synchronous and has one writer, so its calls run on the blocking pool behind a
//! mutex; PostgreSQL is asynchronous and locks in the database (see [`super::postgres`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::aggregate::Params;
use super::metrics::Gauges;
use super::postgres::PgStorage;
use super::storage::{Pruned, Status, Storage, StorageError, Submitted};
use crate::federation::protocol::{GlobalModel, Update};

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

pub enum Store {
    Sqlite(Arc<Mutex<Storage>>),
    Postgres(PgStorage),
}

/// Run `f` on the SQLite store on the blocking pool.
async fn blocking<T: Send + 'static>(
    s: &Arc<Mutex<Storage>>,
    f: impl FnOnce(&mut Storage) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    let s = s.clone();
    tokio::task::spawn_blocking(move || f(&mut lock(&s)))
        .await
        .map_err(|e| StorageError::Corrupt(format!("storage task failed: {e}")))?
}

fn lock(s: &Mutex<Storage>) -> MutexGuard<'_, Storage> {
    // A panic while holding the lock leaves the in-memory view possibly behind the database;
    // the next `refresh` or restart rebuilds it from the committed state.
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// Open the store (creating the SQLite file or the PostgreSQL tables when missing).
    /// `connections` sizes the PostgreSQL pool.
    /// `fixed_clip` replaces the adaptive clip bound (`--clip`).
    pub async fn open(
        db: &Db,
        fsync: bool,
        connections: usize,
        fixed_clip: Option<f64>,
    ) -> Result<Store, StorageError> {
        match db {
            Db::Sqlite(path) => {
                let mut s = Storage::open(path, fsync)?;
                s.fix_clip(fixed_clip);
                Ok(Store::Sqlite(Arc::new(Mutex::new(s))))
            }
            Db::Postgres(url) => Ok(Store::Postgres(
                PgStorage::connect(url, fsync, connections, fixed_clip).await?,
            )),
        }
    }

    pub async fn model(&self, schema: u32) -> Result<Option<GlobalModel>, StorageError> {
        match self {
            Store::Sqlite(s) => blocking(s, move |s| s.model(schema)).await,
            Store::Postgres(p) => p.model(schema).await,
        }
    }

    /// The current version of the served schema.
    pub async fn version(&self) -> Result<u64, StorageError> {
        Ok(self.gauges(super::privacy::DEFAULT_DELTA).await?.version)
    }

    pub async fn submit(
        &self,
        token: String,
        update: Update,
        buffer: usize,
        params: Params,
    ) -> Result<Submitted, StorageError> {
        match self {
            Store::Sqlite(s) => {
                blocking(s, move |s| s.submit(&token, &update, buffer, &params)).await
            }
            Store::Postgres(p) => p.submit(&token, &update, buffer, &params).await,
        }
    }

    /// The time flush; `buffer` is K (PostgreSQL also aggregates again while K tokens wait).
    /// How many versions were made.
    pub async fn flush_due(
        &self,
        after: Duration,
        buffer: usize,
        params: Params,
    ) -> Result<u64, StorageError> {
        match self {
            Store::Sqlite(s) => {
                blocking(s, move |s| Ok(u64::from(s.flush_due(after, &params)?))).await
            }
            Store::Postgres(p) => p.flush_due(after, buffer, &params).await,
        }
    }

    /// The state's gauges, ε at `delta` (`buffer_size` is left 0 for the caller).
    pub async fn gauges(&self, delta: f64) -> Result<Gauges, StorageError> {
        match self {
            Store::Sqlite(s) => {
                blocking(s, move |s| {
                    Ok(Gauges {
                        version: s.version(),
                        pending: s.pending() as u64,
                        buffer_fill: s.buffer_fill() as u64,
                        buffer_size: 0,
                        clip_bound: s.clip_bound(),
                        dp_aggregations: s.spent().aggregations,
                        dp_epsilon: s.spent().epsilon(delta),
                    })
                })
                .await
            }
            Store::Postgres(p) => {
                let (version, pending, buffer_fill, clip_bound, spent) = p.gauges().await?;
                Ok(Gauges {
                    version,
                    pending,
                    buffer_fill,
                    buffer_size: 0,
                    clip_bound,
                    dp_aggregations: spent.aggregations,
                    dp_epsilon: spent.epsilon(delta),
                })
            }
        }
    }

    pub async fn rollback(&self, to: u64) -> Result<u64, StorageError> {
        match self {
            Store::Sqlite(s) => blocking(s, move |s| s.rollback(to)).await,
            Store::Postgres(p) => p.rollback(to).await,
        }
    }

    /// Delete the rows of every version but the newest `keep` (at least
    /// [`super::storage::MIN_KEEP`]); the totals removed so far.
    pub async fn prune(&self, keep: u64) -> Result<Pruned, StorageError> {
        match self {
            Store::Sqlite(s) => blocking(s, move |s| s.prune(keep)).await,
            Store::Postgres(p) => p.prune(keep).await,
        }
    }

    /// Counts, versions, the replay check, and the privacy spent as ε at `delta`.
    pub async fn status(&self, last_versions: usize, delta: f64) -> Result<Status, StorageError> {
        match self {
            Store::Sqlite(s) => blocking(s, move |s| s.status(last_versions, delta)).await,
            Store::Postgres(p) => p.status(last_versions, delta).await,
        }
    }
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
