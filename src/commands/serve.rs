//! `fedtest serve`: resolve the server's settings once (flags checked, tokens read), then
//! [`crate::server::control::run`] serves or runs an admin action on its database.

use std::time::Duration;

use crate::cli::{ServeAction, ServeArgs};
use crate::config::env::{self, Vars};
use crate::error::{Error, Result};
use crate::output::Printer;
use crate::server::control::{self, Action, Open, Serve};
use crate::server::{self, Db, Params, Settings, auth::Tokens};

pub fn run(args: &ServeArgs, vars: &Vars, printer: &Printer) -> Result<()> {
    let open = Open {
        db: Db::parse(&args.db),
        fsync: args.fsync,
        connections: args.db_connections,
        clip: args.clip,
        guard: server::state::Guard {
            min_tokens: args.min_tokens.max(1),
            max_drift: args.max_drift,
            max_from_prior: args.max_from_prior,
        },
    };
    let action = match &args.action {
        Some(ServeAction::Status(s)) => Action::Status {
            versions: s.versions,
            json: s.json,
            dp_delta: args.dp_delta,
        },
        Some(ServeAction::Prune(p)) => Action::Prune {
            keep_versions: p.keep_versions,
        },
        Some(ServeAction::Rollback(r)) => Action::Rollback { to: r.to },
        None => {
            let tokens = tokens(args, vars, printer)?;
            Action::Serve(Box::new(Serve {
                listen: args.listen.clone(),
                port_file: args.port_file.clone(),
                quiet: args.quiet,
                tokens,
                settings: settings(args)?,
            }))
        }
    };
    control::run(&open, action, printer)
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

/// `serve`'s flags checked, as the server's settings.
fn settings(args: &ServeArgs) -> Result<Settings> {
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
    Ok(Settings {
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
    })
}
