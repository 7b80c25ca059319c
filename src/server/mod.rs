//! `fedtest serve`: the aggregation endpoint. `app` is the HTTP face, `auth` the tokens and
//! rate limit, `state` the server's rules (refusal, the slot per token, folding the buffer
//! into versions, rollback, prune, the replay check) written once over the storage primitives
//! of `backend`, which `sqlite` (default) and `postgres` (shared by replicas) implement;
//! `aggregate` the robust math, `privacy` the DP accounting, `metrics` the Prometheus text.
//! The wire types live in [`crate::federation::protocol`].

pub mod aggregate;
pub mod app;
pub mod auth;
pub mod backend;
pub mod conns;
pub mod control;
pub mod metrics;
pub mod postgres;
pub mod privacy;
pub mod sqlite;
pub mod state;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

pub use aggregate::{Params, Rule};
pub use app::{AppState, Settings};
pub use backend::{Db, DbError};
pub use state::ServerState;

use crate::output::Printer;

/// The server's runtime: two workers (the machines it is sized for have few cores); the
/// admin commands use it too, to reach the database.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Serve until SIGINT or SIGTERM. The bound address is announced through `on_bound` (the
/// command prints it and writes `--port-file`) before the first request is taken.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    listen: &str,
    state: AppState,
    on_bound: impl FnOnce(SocketAddr) -> std::io::Result<()>,
    printer: &Printer,
) -> std::io::Result<()> {
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        on_bound(addr)?;
        let state = Arc::new(state);
        let flusher = tokio::spawn(app::flush_loop(state.clone()));
        let limits = state.connection_limits();
        let counters = state.metrics.connections.clone();
        let result = conns::serve(
            listener,
            app::router(state),
            limits,
            counters,
            shutdown_signal(),
        )
        .await;
        flusher.abort();
        printer.info("server stopped");
        result
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Write `contents` to `path` atomically (a reader never sees half of it).
pub fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}
