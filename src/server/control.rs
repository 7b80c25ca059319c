//! What `fedtest serve` does with its database once its flags are resolved: serve, or one of
//! the admin actions (status, prune, rollback).

use std::io::Write;
use std::path::PathBuf;

use super::auth::Tokens;
use super::{AppState, Db, DbError, ServerState, Settings, state::Guard};
use crate::ci::Platform;
use crate::error::{Error, Result};
use crate::output::Printer;

/// How to open the server's database.
#[derive(Clone, Debug)]
pub struct Open {
    pub db: Db,
    pub fsync: bool,
    pub connections: usize,
    pub clip: Option<f64>,
    pub guard: Guard,
}

/// Serve on `listen`, writing the address bound to `port_file`.
pub struct Serve {
    pub listen: String,
    pub port_file: Option<PathBuf>,
    /// No request log.
    pub quiet: bool,
    pub tokens: Tokens,
    pub settings: Settings,
}

/// What to do.
pub enum Action {
    Serve(Box<Serve>),
    Status {
        versions: usize,
        json: bool,
        dp_delta: f64,
    },
    Prune {
        keep_versions: u64,
    },
    Rollback {
        to: u64,
    },
}

pub fn run(open: &Open, action: Action, printer: &Printer) -> Result<()> {
    match action {
        Action::Serve(serve) => {
            let Serve {
                listen,
                port_file,
                quiet,
                tokens,
                settings,
            } = *serve;
            let rt = runtime()?;
            let state = rt.block_on(open.open()).map_err(|e| open.error(e))?;
            let version = rt.block_on(state.version()).map_err(|e| open.error(e))?;
            let log = if quiet {
                Printer::new(Platform::None).quiet()
            } else {
                Printer::new(Platform::None)
            };
            let n_tokens = tokens.len();
            let db = open.db.display();
            let state = AppState::new(tokens, state, settings, log);
            super::run(
                &rt,
                &listen,
                state,
                |addr| {
                    printer.info(&format!(
                        "serving on http://{addr} (model version {version}, {n_tokens} tokens, db {db})"
                    ));
                    match &port_file {
                        Some(p) => super::write_atomic(p, &format!("{addr}\n")),
                        None => Ok(()),
                    }
                },
                printer,
            )
            .map_err(|e| Error::Internal(format!("server on {listen}: {e}")))
        }
        Action::Status {
            versions,
            json,
            dp_delta,
        } => {
            if let Db::Sqlite(path) = &open.db
                && !path.exists()
            {
                return Err(Error::input(path, "no server database"));
            }
            let rt = runtime()?;
            let state = rt.block_on(open.open()).map_err(|e| open.error(e))?;
            let st = rt
                .block_on(state.status(versions, dp_delta))
                .map_err(|e| Error::Internal(e.to_string()))?;
            let text = if json {
                serde_json::to_string_pretty(&st).expect("serialises") + "\n"
            } else {
                st.text()
            };
            printer
                .stdout()
                .write_all(text.as_bytes())
                .map_err(Error::Output)
        }
        Action::Prune { keep_versions } => {
            let rt = runtime()?;
            let state = rt.block_on(open.open()).map_err(|e| open.error(e))?;
            let pruned = rt
                .block_on(state.prune(keep_versions))
                .map_err(|e| Error::Internal(e.to_string()))?;
            printer.info(&format!(
                "rows of versions up to {} pruned ({} applied, {} superseded, {} discarded in all); \
                 the versions themselves are kept",
                pruned.through, pruned.applied, pruned.superseded, pruned.discarded
            ));
            Ok(())
        }
        Action::Rollback { to } => {
            let rt = runtime()?;
            let version = rt
                .block_on(async { open.open().await?.rollback(to).await })
                .map_err(|e| match e {
                    DbError::Corrupt(_) | DbError::Foreign(_) => Error::Usage(e.to_string()),
                    e => Error::Internal(e.to_string()),
                })?;
            printer.info(&format!(
                "version {version} is a copy of version {to}; pending updates were discarded"
            ));
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    super::runtime().map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))
}

impl Open {
    async fn open(&self) -> std::result::Result<ServerState, DbError> {
        ServerState::open(
            &self.db,
            self.fsync,
            self.connections,
            self.clip,
            self.guard,
        )
        .await
    }

    /// A database that cannot be opened: the file's fault (SQLite) or the URL's.
    fn error(&self, e: DbError) -> Error {
        match &self.db {
            Db::Sqlite(path) => Error::input(path, e.to_string()),
            db => Error::Usage(format!("{}: {e}", db.display())),
        }
    }
}
