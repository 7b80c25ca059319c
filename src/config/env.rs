//! Every `FEDTEST_*` variable fedtest reads, in one place. The flags that fall back to a
//! variable (`--data-dir`, `--config`, `serve --db`, `sync --server`) name it here through
//! clap; the rest are read once per process by [`Vars::read`] and handed on as settings.

use std::path::PathBuf;

use crate::ci::Env;

/// The data dir (`--data-dir`).
pub const DIR: &str = "FEDTEST_DIR";
/// The configuration file (`--config`).
pub const CONFIG: &str = "FEDTEST_CONFIG";
/// The federation server: `sync --server`, and `record` syncs after retraining when it is set.
pub const SERVER: &str = "FEDTEST_SERVER";
/// The bearer token of this repository's updates.
pub const TOKEN: &str = "FEDTEST_TOKEN";
/// `serve`'s tokens when there is no `--tokens-file`.
pub const SERVER_TOKENS: &str = "FEDTEST_SERVER_TOKENS";
/// `serve --db`.
pub const SERVER_DB: &str = "FEDTEST_SERVER_DB";
/// A `model.json` that replaces the embedded prior — for an organisation that fits its own
/// prior on its repositories, and for leave-one-out benchmarks that must not plan with a prior
/// fitted on the history they replay.
pub const PRIOR: &str = "FEDTEST_PRIOR";

/// The variables clap does not read, as settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vars {
    pub server: Option<String>,
    pub token: Option<String>,
    pub server_tokens: Option<String>,
    pub prior: Option<PathBuf>,
}

impl Vars {
    /// Read them from `env` (empty counts as unset).
    pub fn read(env: &Env) -> Vars {
        let get = |k: &str| env.get(k).map(str::to_owned);
        Vars {
            server: get(SERVER),
            token: get(TOKEN),
            server_tokens: get(SERVER_TOKENS),
            prior: get(PRIOR).map(PathBuf::from),
        }
    }
}
