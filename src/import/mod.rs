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
