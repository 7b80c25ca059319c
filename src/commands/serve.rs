//! `fedtest serve`: resolve the server's settings once, then run it (or an admin action on
//! its database).

use std::io::Write;
use std::time::Duration;

use crate::ci::Platform;
use crate::cli::{ServeAction, ServeArgs};
use crate::config::env::{self, Vars};
use crate::error::{Error, Result};
use crate::output::Printer;
use crate::server::{self, AppState, Db, DbError, Params, ServerState, Settings, auth::Tokens};

pub fn run(args: &ServeArgs, vars: &Vars, printer: &Printer) -> Result<()> {
    match &args.action {
        Some(ServeAction::Status(s)) => status(args, s, printer),
        Some(ServeAction::Prune(p)) => {
            let rt = runtime()?;
            let state = rt.block_on(open(args)).map_err(|e| open_error(args, e))?;
            let pruned = rt
                .block_on(state.prune(p.keep_versions))
                .map_err(|e| Error::Internal(e.to_string()))?;
            printer.info(&format!(
                "rows of versions up to {} pruned ({} applied, {} superseded, {} discarded in all); \
                 the versions themselves are kept",
                pruned.through, pruned.applied, pruned.superseded, pruned.discarded
            ));
            Ok(())
        }
        Some(ServeAction::Rollback(r)) => {
            let rt = runtime()?;
            let version = rt
                .block_on(async { open(args).await?.rollback(r.to).await })
                .map_err(|e| match e {
                    DbError::Corrupt(_) | DbError::Foreign(_) => Error::Usage(e.to_string()),
                    e => Error::Internal(e.to_string()),
                })?;
            printer.info(&format!(
                "version {version} is a copy of version {}; pending updates were discarded",
                r.to
            ));
            Ok(())
        }
        None => serve(args, vars, printer),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    server::runtime().map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))
}

async fn open(args: &ServeArgs) -> std::result::Result<ServerState, DbError> {
    ServerState::open(
        &Db::parse(&args.db),
        args.fsync,
        args.db_connections,
        args.clip,
        server::state::Guard {
            min_tokens: args.min_tokens.max(1),
            max_drift: args.max_drift,
            max_from_prior: args.max_from_prior,
        },
    )
    .await
}

fn open_error(args: &ServeArgs, e: DbError) -> Error {
    match Db::parse(&args.db) {
        Db::Sqlite(path) => Error::input(&path, e.to_string()),
        db => Error::Usage(format!("{}: {e}", db.display())),
    }
}

fn tokens(args: &ServeArgs, vars: &Vars, printer: &Printer) -> Result<Tokens> {
    let (origin, text) = match &args.tokens_file {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path)
                .map_err(|e| Error::input(path, format!("cannot read: {e}")))?,
        ),
        None => match &vars.server_tokens {
            Some(t) => (env::SERVER_TOKENS.to_owned(), t.clone()),
            None => {
                return Err(Error::Usage(format!(
                    "no tokens: pass --tokens-file FILE or set {}",
                    env::SERVER_TOKENS
                )));
            }
        },
    };
    let (tokens, warnings) =
        Tokens::parse(&text).map_err(|m| Error::Usage(format!("tokens from {origin}: {m}")))?;
    for w in warnings {
        printer.warn(&format!("tokens from {origin}: {w}"));
    }
    Ok(tokens)
}

fn serve(args: &ServeArgs, vars: &Vars, printer: &Printer) -> Result<()> {
    let tokens = tokens(args, vars, printer)?;
    let check = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(Error::Usage(what.to_owned()))
        }
    };
    check(args.buffer >= 1, "--buffer must be at least 1")?;
    check(
        (0.0..0.5).contains(&args.trim),
        "--trim must be in [0, 0.5)",
    )?;
    check(
        args.lr > 0.0 && args.lr.is_finite(),
        "--lr must be positive",
    )?;
    check(
        args.rate >= 0.0 && args.rate.is_finite(),
        "--rate must be >= 0",
    )?;
    check(
        args.burst >= 1.0 && args.burst.is_finite(),
        "--burst must be >= 1",
    )?;
    check(args.max_body >= 1024, "--max-body must be at least 1024")?;
    check(
        args.max_connections >= 1,
        "--max-connections must be at least 1",
    )?;
    check(
        args.header_timeout >= 1,
        "--header-timeout must be at least 1",
    )?;
    check(args.min_tokens >= 1, "--min-tokens must be at least 1")?;
    check(
        args.max_drift > 0.0 && args.max_from_prior > 0.0,
        "--max-drift and --max-from-prior must be positive",
    )?;
    check(
        args.db_connections >= 1,
        "--db-connections must be at least 1",
    )?;
    check(
        args.clip
            .is_none_or(|c| (server::state::MIN_CLIP..=server::state::MAX_CLIP).contains(&c)),
        "--clip must be between 0.05 and 10",
    )?;
    check(
        args.dp_noise_multiplier
            .is_none_or(|z| z > 0.0 && z.is_finite()),
        "--dp-noise-multiplier must be positive",
    )?;
    check(
        args.dp_noise_multiplier.is_none() || args.rule != server::Rule::Median,
        "--dp-noise-multiplier needs the clipped mean (its sensitivity is C/n), not --rule median",
    )?;
    let settings = Settings {
        buffer: args.buffer,
        flush_after: Duration::from_secs(args.flush_secs),
        params: Params {
            rule: args.rule,
            trim: args.trim,
            lr: args.lr,
            dp_noise: args.dp_noise_multiplier,
        },
        max_body: args.max_body,
        rate: args.rate,
        burst: args.burst,
        dp_delta: args.dp_delta,
        prune_keep: args.prune_keep,
        connections: server::conns::Limits {
            max: args.max_connections,
            header_timeout: Duration::from_secs(args.header_timeout),
        },
        ..Settings::default()
    };
    let rt = runtime()?;
    let state = rt.block_on(open(args)).map_err(|e| open_error(args, e))?;
    let version = rt
        .block_on(state.version())
        .map_err(|e| open_error(args, e))?;
    let log = if args.quiet {
        Printer::new(Platform::None).quiet()
    } else {
        Printer::new(Platform::None)
    };
    let n_tokens = tokens.len();
    let db = Db::parse(&args.db).display();
    let state = AppState::new(tokens, state, settings, log);
    server::run(
        &rt,
        &args.listen,
        state,
        |addr| {
            printer.info(&format!(
                "serving on http://{addr} (model version {version}, {n_tokens} tokens, db {db})"
            ));
            match &args.port_file {
                Some(p) => server::write_atomic(p, &format!("{addr}\n")),
                None => Ok(()),
            }
        },
        printer,
    )
    .map_err(|e| Error::Internal(format!("server on {}: {e}", args.listen)))
}

fn status(args: &ServeArgs, s: &crate::cli::ServeStatusArgs, printer: &Printer) -> Result<()> {
    if let Db::Sqlite(path) = Db::parse(&args.db)
        && !path.exists()
    {
        return Err(Error::input(&path, "no server database"));
    }
    let rt = runtime()?;
    let state = rt.block_on(open(args)).map_err(|e| open_error(args, e))?;
    let st = rt
        .block_on(state.status(s.versions, args.dp_delta))
        .map_err(|e| Error::Internal(e.to_string()))?;
    let text = if s.json {
        serde_json::to_string_pretty(&st).expect("serialises") + "\n"
    } else {
        st.text()
    };
    printer
        .stdout()
        .write_all(text.as_bytes())
        .map_err(Error::Output)
}
