//! `fedtest import`: a history from a project's past CI runs, fetched from GitHub Actions
//! (workflow runs and their JUnit artifacts) or GitLab (pipelines and their test reports).
//!
//! Data flow: `github` / `gitlab` list runs and fetch each run's results through `http`
//! (`artifact` unzips GitHub's) → `pipeline` records them in order with the same
//! [`crate::record::record`] `fedtest record` uses.

mod artifact;
mod error;
pub mod github;
pub mod gitlab;
mod http;
mod pipeline;
mod run;
mod time;
mod validate;

pub use artifact::Bounds;
pub use error::{ImportError, Service};
pub use http::Limits;
pub use pipeline::{Options, Outcome, Source, Summary, import};
pub use run::RunFilter;

/// `fedtest import`: the runs of `source` into the history in `data_dir`, the summary said,
/// then — when something was imported and `learn` is given — one retrain (with its sync and
/// calibration, as after `record`). An error that stopped the import early is returned after
/// what was imported is kept and learned from.
pub fn into_history(
    data_dir: &std::path::Path,
    source: Source,
    opts: &Options,
    learn: Option<&crate::record::Learn>,
    printer: &crate::output::Printer,
) -> crate::error::Result<()> {
    let mut store = crate::history::Store::open_or_create(data_dir)?;
    let outcome = import(source, &mut store, opts, printer)?;
    printer.info(&outcome.summary.line());
    if let Some(learn) = learn.filter(|_| outcome.summary.imported > 0) {
        let changes_known = opts.changed_files;
        crate::record::after_recording(&store, data_dir, learn, changes_known, printer);
    }
    match outcome.stopped {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
