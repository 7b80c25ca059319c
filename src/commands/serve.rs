//! `fedtest serve`: resolve the server's settings once, then run it (or an admin action on
//! its database).

use std::io::Write;
use std::time::Duration;

use crate::ci::{Env, Platform};
use crate::cli::{ServeAction, ServeArgs};
use crate::error::{Error, Result};
use crate::output::Printer;
use crate::server::{self, AppState, Params, Settings, Storage, auth::Tokens};

pub fn run(args: &ServeArgs, env: &Env, printer: &Printer) -> Result<()> {
    match &args.action {
        Some(ServeAction::Status(s)) => status(args, s, printer),
        Some(ServeAction::Rollback(r)) => {
            let mut storage = open(args)?;
            let version = storage
                .rollback(r.to)
                .map_err(|e| Error::Usage(e.to_string()))?;
            printer.info(&format!(
                "version {version} is a copy of version {}; pending updates were discarded",
                r.to
            ));
            Ok(())
        }
        None => serve(args, env, printer),
    }
}

fn open(args: &ServeArgs) -> Result<Storage> {
    Storage::open(&args.db, args.fsync).map_err(|e| Error::input(&args.db, e.to_string()))
}

fn tokens(args: &ServeArgs, env: &Env) -> Result<Tokens> {
    let (origin, text) = match &args.tokens_file {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path)
                .map_err(|e| Error::input(path, format!("cannot read: {e}")))?,
        ),
        None => match env.get("FEDTEST_SERVER_TOKENS") {
            Some(t) => ("FEDTEST_SERVER_TOKENS".to_owned(), t.to_owned()),
            None => {
                return Err(Error::Usage(
                    "no tokens: pass --tokens-file FILE or set FEDTEST_SERVER_TOKENS".into(),
                ));
            }
        },
    };
    Tokens::parse(&text).map_err(|m| Error::Usage(format!("tokens from {origin}: {m}")))
}

fn serve(args: &ServeArgs, env: &Env, printer: &Printer) -> Result<()> {
    let tokens = tokens(args, env)?;
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
    let settings = Settings {
        buffer: args.buffer,
        flush_after: Duration::from_secs(args.flush_secs),
        params: Params {
            rule: args.rule,
            trim: args.trim,
            lr: args.lr,
        },
        max_body: args.max_body,
        rate: args.rate,
        burst: args.burst,
        ..Settings::default()
    };
    let storage = open(args)?;
    let log = if args.quiet {
        Printer::new(Platform::None).quiet()
    } else {
        Printer::new(Platform::None)
    };
    let version = storage.version();
    let n_tokens = tokens.len();
    let state = AppState::new(tokens, storage, settings, log);
    server::run(
        &args.listen,
        state,
        |addr| {
            printer.info(&format!(
                "serving on http://{addr} (model version {version}, {n_tokens} tokens, db {})",
                args.db.display()
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
    if !args.db.exists() {
        return Err(Error::input(&args.db, "no server database"));
    }
    let mut storage = open(args)?;
    let st = storage
        .status(s.versions)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let text = if s.json {
        serde_json::to_string_pretty(&st).expect("serialises") + "\n"
    } else {
        let mut t = format!(
            "schema {}: version {}\nupdates: {} accepted, {} applied, {} pending ({} clients in the buffer), {} superseded, {} discarded\nclip bound C: {:.4}\nreplay check: {}\n\nversion  parent  updates  ‖Δ from prior‖  note\n",
            st.schema,
            st.version,
            st.updates_total,
            st.updates_applied,
            st.updates_pending,
            st.buffer_fill,
            st.updates_superseded,
            st.updates_discarded,
            st.clip_bound,
            if st.replay_consistent && st.versions_updates_sum == st.updates_applied {
                "every applied update was applied exactly once"
            } else {
                "INCONSISTENT"
            }
        );
        for v in &st.versions {
            t.push_str(&format!(
                "{:>7}  {:>6}  {:>7}  {:>14.4}  {}\n",
                v.version,
                v.parent.map_or("-".into(), |p| p.to_string()),
                v.updates,
                v.norm_from_prior,
                v.note
            ));
        }
        t
    };
    printer
        .stdout()
        .write_all(text.as_bytes())
        .map_err(Error::Output)
}
