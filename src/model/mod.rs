//! The failure model: logistic regression over the schema in [`crate::features`].

pub mod describe;
pub mod logistic;
pub mod prior;
pub mod train;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::features;

/// Where a model's weights came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The prior embedded in the binary (trained on public CI histories).
    Prior,
    /// Trained on this repository's history.
    Local,
    /// The federation server's global model.
    Global,
    /// A blend of the local and global models.
    Blend,
    /// A fixed heuristic written as a linear model (see `strategy`).
    Heuristic,
}

/// Metrics on the newest builds, held out from training.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Holdout {
    pub builds: u64,
    pub examples: u64,
    pub failures: u64,
    /// Area under the ROC curve (ranking quality; 0.5 = chance).
    pub auc: Option<f64>,
    /// Mean log-loss of the calibrated probabilities.
    pub log_loss: Option<f64>,
    /// Mean log-loss of always predicting the base rate, for comparison.
    pub base_log_loss: Option<f64>,
}

/// A trained model, stored as `model.json` in the data dir (readable on purpose).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Model {
    pub schema: u32,
    pub source: Source,
    /// Feature names, in order — checked against the schema on load.
    pub features: Vec<String>,
    pub weights: Vec<f64>,
    pub intercept: f64,
    /// Platt scaling of the raw score: `p = σ(a·(w·x + b) + c)`.
    pub calibration: [f64; 2],
    pub trained_examples: u64,
    pub trained_failures: u64,
    pub trained_builds: u64,
    pub holdout: Holdout,
}

/// Problems loading a stored model; the caller falls back to the prior.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid model: {message}")]
    Invalid { path: String, message: String },
}

/// Path of the local model in a data dir.
pub fn local_path(dir: &Path) -> std::path::PathBuf {
    dir.join("model.json")
}

/// The stored local model, if it is one: it only warm-starts the optimiser.
pub fn previous_local(dir: &Path) -> Option<Model> {
    Model::load(&local_path(dir))
        .ok()
        .filter(|m| m.source == Source::Local)
}

impl Model {
    /// An untrained-on-this-repository model of the current schema: weights and intercept,
    /// no calibration, no training record.
    pub fn from_weights(source: Source, weights: Vec<f64>, intercept: f64) -> Model {
        Model {
            schema: features::SCHEMA_VERSION,
            source,
            features: features::NAMES.iter().map(|s| (*s).to_owned()).collect(),
            weights,
            intercept,
            calibration: [1.0, 0.0],
            trained_examples: 0,
            trained_failures: 0,
            trained_builds: 0,
            holdout: Holdout::default(),
        }
    }

    /// Raw linear score (log-odds before calibration).
    pub fn score(&self, x: &[f64]) -> f64 {
        logistic::dot(&self.weights, x) + self.intercept
    }

    /// Calibrated probability of failure.
    pub fn probability(&self, x: &[f64]) -> f64 {
        let [a, c] = self.calibration;
        logistic::sigmoid(a * self.score(x) + c)
    }

    /// Per-feature contributions to the score relative to a reference vector (the average
    /// candidate), largest first: why this test ranks where it does.
    pub fn contributions(&self, x: &[f64], reference: &[f64]) -> Vec<(&'static str, f64)> {
        let mut c: Vec<(&'static str, f64)> = features::NAMES
            .iter()
            .zip(self.weights.iter().zip(x.iter().zip(reference)))
            .map(|(n, (w, (v, r)))| (*n, w * (v - r)))
            .filter(|(_, v)| v.abs() > 1e-9)
            .collect();
        c.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        c
    }

    /// A model written by a release with schema 1 (no symbol features) keeps working: its
    /// weights, and the embedded prior's for the features it did not have. Not the prior in
    /// use — a `FEDTEST_PRIOR` file is itself loaded through here.
    fn upgrade(&mut self) {
        if self.schema == 1
            && self.weights.len() == features::DIM_V1
            && self.features.len() == features::DIM_V1
        {
            let prior = prior::embedded();
            self.weights
                .extend_from_slice(&prior.weights[features::DIM_V1..]);
            self.features = features::NAMES.iter().map(|s| (*s).to_owned()).collect();
            self.schema = features::SCHEMA_VERSION;
        }
    }

    /// Check that the model fits this binary's schema and holds only finite numbers.
    pub fn validate(&self) -> Result<(), String> {
        if self.schema != features::SCHEMA_VERSION {
            return Err(format!(
                "schema {} (this fedtest uses {})",
                self.schema,
                features::SCHEMA_VERSION
            ));
        }
        if self.weights.len() != features::DIM || self.features.len() != features::DIM {
            return Err(format!(
                "{} weights (expected {})",
                self.weights.len(),
                features::DIM
            ));
        }
        if let Some((i, n)) = self
            .features
            .iter()
            .zip(features::NAMES)
            .enumerate()
            .find(|(_, (a, b))| a != *b)
            .map(|(i, (a, _))| (i, a))
        {
            return Err(format!(
                "feature {i} is {n:?}, expected {:?}",
                features::NAMES[i]
            ));
        }
        let finite = self
            .weights
            .iter()
            .chain([&self.intercept])
            .chain(&self.calibration)
            .all(|v| v.is_finite());
        if !finite {
            return Err("non-finite number".into());
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut model: Model = serde_json::from_str(&text).map_err(|e| ModelError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        model.upgrade();
        model.validate().map_err(|message| ModelError::Invalid {
            path: path.display().to_string(),
            message,
        })?;
        Ok(model)
    }

    /// Write atomically (temp file + rename) so a concurrent reader never sees half a model.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
        std::fs::write(
            &tmp,
            serde_json::to_string_pretty(self).map_err(std::io::Error::other)? + "\n",
        )?;
        std::fs::rename(&tmp, path)
    }
}

/// The model to plan with: the stored one, else the prior. A broken model file is fedtest's
/// own trouble: warn and use the prior.
pub fn load_or_prior(dir: &Path, printer: &crate::output::Printer) -> Model {
    let path = local_path(dir);
    if !path.exists() {
        return prior::prior();
    }
    match Model::load(&path) {
        Ok(m) => m,
        Err(e) => {
            printer.warn(&format!(
                "{e}; using {} until the next record retrains it",
                prior::name()
            ));
            prior::prior()
        }
    }
}

/// File name of the global model last pulled from the federation server, in a data dir (what
/// `record` anchors local training on, and one of the orderings `strategy` backtests).
pub const GLOBAL_MODEL_FILE: &str = "model.global.json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_1_model_file_loads_with_the_priors_symbol_weights() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        let mut v1 = prior::embedded();
        v1.schema = 1;
        v1.weights.truncate(features::DIM_V1);
        v1.weights[0] = 0.5;
        v1.features.truncate(features::DIM_V1);
        v1.source = Source::Local;
        std::fs::write(&path, serde_json::to_string(&v1).unwrap()).unwrap();
        let m = Model::load(&path).unwrap();
        assert_eq!(m.schema, features::SCHEMA_VERSION);
        assert_eq!(m.weights.len(), features::DIM);
        assert_eq!(m.weights[0], 0.5);
        assert_eq!(
            m.weights[features::DIM_V1..],
            prior::embedded().weights[features::DIM_V1..]
        );
        assert_eq!(m.source, Source::Local);
        // Anything else of another shape is still refused.
        v1.weights.pop();
        std::fs::write(&path, serde_json::to_string(&v1).unwrap()).unwrap();
        assert!(Model::load(&path).is_err());
    }
}
