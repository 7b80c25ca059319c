//! One sync: pull the global model, train locally anchored on it, push the clipped delta, pull
//! the newest global model, and use whichever of local / global / blend predicts this
//! repository's newest builds best.
//!
//! Fail open: the server's trouble costs only the federation, never the build. Without
//! `strict`, a failure is a warning (an annotation in CI) and the local model stays.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::{self, Client, Limits, SyncError};
use super::protocol::{self, GlobalModel, MAX_DELTA_NORM, MAX_SAMPLES, Update};
use super::validate;
use crate::error::{Error, Result};
use crate::features;
use crate::history::Store;
use crate::history::state::Example;
use crate::model::train::{self, TrainOptions};
use crate::model::{Model, Source, prior};
use crate::output::Printer;

pub use crate::model::GLOBAL_MODEL_FILE;
/// Which version `GLOBAL_MODEL_FILE` is, for the next update's base version.
pub const STATE_FILE: &str = "federation.json";
/// The server's first version is the embedded prior.
pub const PRIOR_VERSION: u64 = 1;

/// Settings of one sync, resolved by the command.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub server: Option<String>,
    pub token: Option<String>,
    pub dry_run: bool,
    pub strict: bool,
    pub limits: Limits,
    /// Local training, as `record` does it (`[plan] min_failures`).
    pub train: TrainOptions,
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    version: u64,
    schema: u32,
    /// What local training is anchored on until the next sync.
    #[serde(default)]
    anchor: validate::Anchor,
}

/// The cached global model and its version; the prior (version 1) when there is none.
fn cached_global(dir: &Path) -> (u64, Model) {
    let state: Option<State> = std::fs::read_to_string(dir.join(STATE_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    match (state, saved_global(dir)) {
        (Some(s), Some(m)) if s.schema == features::SCHEMA_VERSION => (s.version, m),
        _ => (PRIOR_VERSION, prior::prior()),
    }
}

/// The global model last saved, unless it fails [`validate::check_global`] against the prior
/// (a file written before that check existed, or by hand): a refused model is never an anchor.
fn saved_global(dir: &Path) -> Option<Model> {
    let m = Model::load(&dir.join(GLOBAL_MODEL_FILE)).ok()?;
    validate::check_global(&protocol::vector_of(&m), &prior::prior(), None)
        .is_ok()
        .then_some(m)
}

fn examples(dir: &Path) -> Result<Vec<Example>> {
    match Store::open_existing(dir)? {
        Some(store) => Ok(crate::features::stored(&store)?),
        None => Ok(Vec::new()),
    }
}

/// What `record` anchors local training on: the global model last pulled, unless the last
/// sync found that the prior ranks this repository's newest failures better; the prior when
/// there is no federation.
pub fn training_anchor(dir: &Path) -> Model {
    let state: Option<State> = std::fs::read_to_string(dir.join(STATE_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    match state {
        Some(s) if s.anchor == validate::Anchor::Prior => prior::prior(),
        _ => saved_global(dir).unwrap_or_else(prior::prior),
    }
}

/// The update body for `local` against the global `base` at `version`, the delta clipped to
/// the server's bound. Only numbers, a random id and counts: nothing that names a test, file,
/// commit or branch can be in it, because nothing of the kind is an input.
pub fn update_body(
    local: &Model,
    base: &Model,
    version: u64,
    samples: u64,
    max_norm: f64,
) -> Vec<u8> {
    let mut delta: Vec<f64> = protocol::vector_of(local)
        .iter()
        .zip(protocol::vector_of(base))
        .map(|(l, g)| l - g)
        .collect();
    // Stay a little inside the server's bound so rounding never makes it refuse us.
    protocol::clip(&mut delta, MAX_DELTA_NORM.min(max_norm * 0.99));
    let update = Update {
        id: client::new_update_id(),
        schema: features::SCHEMA_VERSION,
        base_version: version,
        delta,
        samples: samples.min(MAX_SAMPLES),
    };
    let mut body = serde_json::to_vec(&update).expect("an update serialises");
    body.push(b'\n');
    body
}

fn samples(examples: &[Example]) -> u64 {
    examples.iter().filter(|e| e.weight > 0.0).count() as u64
}

/// What `record` has already computed when it syncs: the stored examples, and the local
/// model it trained (`None`: too few failures) anchored on `anchor`.
pub struct Trained<'a> {
    pub examples: &'a [Example],
    pub anchor: &'a Model,
    pub model: Option<&'a Model>,
}

/// Run one sync (`fedtest sync`). Errors only for usage problems, or with `strict`.
pub fn sync(dir: &Path, settings: &Settings, printer: &Printer) -> Result<()> {
    let examples = examples(dir)?;
    run(dir, settings, &examples, None, printer)
}

/// The sync after `record` retrained: its examples, and its model when the server's global
/// model is the one it was anchored on (else the update is trained against the newer one).
pub fn sync_trained(
    dir: &Path,
    settings: &Settings,
    trained: &Trained<'_>,
    printer: &Printer,
) -> Result<()> {
    let reuse = Reuse {
        anchor: protocol::vector_of(trained.anchor),
        model: trained.model,
    };
    run(dir, settings, trained.examples, Some(&reuse), printer)
}

/// A local model already trained against the global model whose vector is `anchor`.
struct Reuse<'a> {
    anchor: Vec<f64>,
    model: Option<&'a Model>,
}

fn run(
    dir: &Path,
    settings: &Settings,
    examples: &[Example],
    reuse: Option<&Reuse<'_>>,
    printer: &Printer,
) -> Result<()> {
    let previous = crate::model::previous_local(dir);
    let opts = settings.train.clone();

    if settings.dry_run {
        let (version, base) = cached_global(dir);
        let Some(local) = train::train(examples, &base, previous.as_ref(), &opts) else {
            printer.info(
                "dry run: nothing would be sent (not enough local failures to train a model yet)",
            );
            return Ok(());
        };
        let body = update_body(&local, &base, version, samples(examples), MAX_DELTA_NORM);
        use std::io::Write;
        let mut out = printer.stdout();
        out.write_all(&body)
            .and_then(|()| out.flush())
            .map_err(Error::Output)?;
        let target = settings.server.as_deref().unwrap_or("<server>");
        printer.info(&format!(
            "dry run: the {} bytes above are the body of POST {}{} (base version {version}, \
             before it GET {}?schema={}); nothing was sent",
            body.len(),
            target.trim_end_matches('/'),
            protocol::UPDATES_PATH,
            protocol::MODEL_PATH,
            features::SCHEMA_VERSION
        ));
        return Ok(());
    }

    let Some(server) = settings.server.as_deref() else {
        return Err(Error::Usage(
            "no federation server: pass --server URL or set FEDTEST_SERVER".into(),
        ));
    };
    let client = match Client::new(server, settings.token.clone(), settings.limits.clone()) {
        Ok(c) => c,
        Err(e @ SyncError::Url(_)) => return Err(Error::Usage(e.to_string())),
        Err(e) => return fail_open(settings, printer, &e.to_string()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    let total = settings.limits.total + Duration::from_millis(500);
    let exchange = runtime.block_on(async {
        tokio::time::timeout(
            total,
            exchange(&client, examples, previous.as_ref(), &opts, reuse),
        )
        .await
        .unwrap_or(Exchange {
            latest: None,
            pushed: None,
            error: Some(SyncError::Deadline(settings.limits.total)),
        })
    });
    let Some(global) = exchange.latest else {
        let e = exchange
            .error
            .map_or_else(|| "unknown".into(), |e| e.to_string());
        return fail_open(settings, printer, &e);
    };

    let global_model = protocol::model_of(&global.vector, Source::Global)
        .ok_or_else(|| Error::Internal("the server's model is invalid".into()))?;
    let choice = validate::choose(
        examples,
        &global_model,
        &prior::prior(),
        previous.as_ref(),
        &opts,
    );
    // Keep the newest global model, and what the next `record` anchors local training on.
    save(dir, &global, &global_model, choice.anchor)?;
    choice
        .model
        .save(&crate::model::local_path(dir))
        .map_err(|e| {
            Error::Internal(format!(
                "cannot write {}: {e}",
                crate::model::local_path(dir).display()
            ))
        })?;
    let pushed = match &exchange.pushed {
        Some(p) if p.duplicate => "update already known to the server".to_owned(),
        Some(_) => "pushed an update".to_owned(),
        None if exchange.error.is_none() => {
            "nothing to push yet (too few local failures)".to_owned()
        }
        None => "update not delivered".to_owned(),
    };
    let s = &choice.scores;
    let fmt = |a: Option<f64>| a.map_or("-".to_owned(), |a| format!("{a:.3}"));
    let scores = if s.local_auc.is_some() || s.global_auc.is_some() {
        format!(
            " (holdout: {} builds, {} failures; AUC local {}, local on global {}, global {}, blend {})",
            s.holdout_builds,
            s.holdout_failures,
            fmt(s.own_auc),
            fmt(s.local_auc),
            fmt(s.global_auc),
            fmt(s.blend_auc)
        )
    } else {
        format!(" ({})", choice.reason)
    };
    let which = match choice.model.source {
        Source::Global => "the global model",
        Source::Blend => "a blend of the local and global models",
        Source::Local if choice.anchor == validate::Anchor::Prior => "the local model",
        Source::Local => "the local model anchored on the global model",
        Source::Prior => "the prior",
        Source::Heuristic => "a heuristic",
    };
    printer.info(&format!(
        "sync: {pushed}; global model v{} ({} updates); using {which}{scores}",
        global.version, global.updates
    ));
    match exchange.error {
        Some(e) => fail_open(settings, printer, &e.to_string()),
        None => Ok(()),
    }
}

fn fail_open(settings: &Settings, printer: &Printer, error: &str) -> Result<()> {
    if settings.strict {
        return Err(Error::Internal(format!("federation sync failed: {error}")));
    }
    printer.warn(&format!(
        "federation sync failed: {error}; keeping the local model"
    ));
    Ok(())
}

fn save(dir: &Path, global: &GlobalModel, model: &Model, anchor: validate::Anchor) -> Result<()> {
    let write_err =
        |p: &Path, e: std::io::Error| Error::Internal(format!("cannot write {}: {e}", p.display()));
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let path = dir.join(GLOBAL_MODEL_FILE);
    model.save(&path).map_err(|e| write_err(&path, e))?;
    let state = State {
        version: global.version,
        schema: global.schema,
        anchor,
    };
    let path = dir.join(STATE_FILE);
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    std::fs::write(
        &tmp,
        serde_json::to_string(&state).expect("serialises") + "\n",
    )
    .and_then(|()| std::fs::rename(&tmp, &path))
    .map_err(|e| write_err(&path, e))
}

struct Exchange {
    /// The newest global model received.
    latest: Option<GlobalModel>,
    pushed: Option<protocol::Accepted>,
    error: Option<SyncError>,
}

async fn exchange(
    client: &Client,
    examples: &[Example],
    previous: Option<&Model>,
    opts: &TrainOptions,
    reuse: Option<&Reuse<'_>>,
) -> Exchange {
    let schema = features::SCHEMA_VERSION;
    let mut ex = Exchange {
        latest: None,
        pushed: None,
        error: None,
    };
    let prior = prior::prior();
    // A model that fails the sanity check is refused: not trained against, not pushed to,
    // not saved, not planned with — and the sync says so (it fails open with the reason).
    let sane = |g: &GlobalModel| {
        validate::check_global(&g.vector, &prior, previous).map_err(|why| {
            SyncError::BadAnswer(format!("global model v{} refused: {why}", g.version))
        })
    };
    // A 409 means the global model moved on while we trained: pull and recompute once.
    for _ in 0..2 {
        let g = match client
            .model(schema)
            .await
            .and_then(|g| sane(&g).map(|()| g))
        {
            Ok(g) => g,
            Err(e) => {
                ex.error = Some(e);
                return ex;
            }
        };
        let base = protocol::model_of(&g.vector, Source::Global).expect("checked by the client");
        ex.latest = Some(g.clone());
        // Trained against this very model already (record's retrain): the same fit again
        // would only cost time.
        let local = match reuse {
            Some(r) if r.anchor == g.vector => r.model.cloned(),
            _ => train::train(examples, &base, previous, opts),
        };
        let Some(local) = local else {
            return ex;
        };
        let body = update_body(&local, &base, g.version, samples(examples), g.max_norm);
        match client.push(&body).await {
            Ok(p) => {
                ex.pushed = Some(p.accepted);
                ex.error = None;
                break;
            }
            Err(e) if e.is_conflict() => ex.error = Some(e),
            Err(e) => {
                ex.error = Some(e);
                return ex;
            }
        }
    }
    if ex.pushed.is_some() {
        // Best effort: the push may have completed a buffer and made a newer model.
        match client.model(schema).await.map(|g| sane(&g).map(|()| g)) {
            Ok(Ok(g)) => ex.latest = Some(g),
            Ok(Err(refused)) => ex.error = Some(refused),
            Err(_) => {}
        }
    }
    ex
}
