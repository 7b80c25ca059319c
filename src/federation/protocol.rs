//! The wire protocol between `fedtest sync` and `fedtest serve`, shared by both ends.
//!
//! A model travels as one vector: the weights of [`features::NAMES`] in order, then the
//! intercept (`features::DIM + 1` numbers for the schema in [`features::SCHEMA_VERSION`]).
//! An update carries `local − global` for that vector and nothing that could name a test:
//! no ids, names, paths, commits, branches or messages. `docs/openapi.yaml` documents it.

use serde::{Deserialize, Serialize};

use crate::features;
use crate::model::{Model, Source};

/// `GET /v1/model?schema=N`.
pub const MODEL_PATH: &str = "/v1/model";
/// `POST /v1/updates`.
pub const UPDATES_PATH: &str = "/v1/updates";

/// Largest request body the server reads (413 beyond). A schema-v1 update is well under 2 KiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Largest response body the client reads.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Sample counts are capped on both ends: an unchecked count is a poisoning lever.
pub const MAX_SAMPLES: u64 = 1000;
/// Updates based on a model more than this many versions old are refused (409).
pub const MAX_STALENESS: u64 = 20;
/// The client never sends a delta longer than this, whatever the server advertises.
pub const MAX_DELTA_NORM: f64 = 10.0;

/// Length of the model vector of `schema`; `None` for a schema this build does not know.
pub fn vector_len(schema: u32) -> Option<usize> {
    (schema == features::SCHEMA_VERSION).then_some(features::DIM + 1)
}

/// The global model as the server serves it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GlobalModel {
    pub version: u64,
    pub schema: u32,
    /// Weights then intercept.
    pub vector: Vec<f64>,
    /// Updates aggregated into this model since the prior (summed over versions).
    pub updates: u64,
    /// Deltas longer than this are refused; clients clip to it before sending.
    pub max_norm: f64,
}

/// `POST /v1/updates` body. Every field is listed here on purpose: nothing else is sent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Update {
    /// A random idempotency key (32 hex digits): a retried update is applied once.
    pub id: String,
    pub schema: u32,
    /// The global version the delta was computed against.
    pub base_version: u64,
    /// `local − global`, weights then intercept, clipped.
    pub delta: Vec<f64>,
    /// Training examples behind the update: a JSON integer from 1 to [`MAX_SAMPLES`]. Any
    /// other number (negative, fractional, larger, or a string) reads as 0, which
    /// [`Update::validate`] refuses with reason `samples` rather than `malformed`.
    #[serde(deserialize_with = "samples_field")]
    pub samples: u64,
}

/// Read `samples` leniently so that a bad value is refused with its own reason (`samples`)
/// by [`Update::validate`], not as unreadable JSON: every value that is not a JSON integer
/// in `0..=u64::MAX` becomes 0.
fn samples_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a sample count")
        }
        fn visit_u64<E>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E>(self, v: i64) -> Result<u64, E> {
            Ok(u64::try_from(v).unwrap_or(0))
        }
        fn visit_f64<E>(self, _: f64) -> Result<u64, E> {
            Ok(0)
        }
        fn visit_str<E>(self, _: &str) -> Result<u64, E> {
            Ok(0)
        }
        fn visit_bool<E>(self, _: bool) -> Result<u64, E> {
            Ok(0)
        }
        fn visit_unit<E>(self) -> Result<u64, E> {
            Ok(0)
        }
    }
    d.deserialize_any(V)
}

/// Answer to an accepted update (202; 200 for a repeated id).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Accepted {
    pub id: String,
    /// True when this id had been accepted before: nothing changed.
    pub duplicate: bool,
    /// The current global version after this update (it may have triggered an aggregation).
    pub version: u64,
}

/// Body of every error answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Rejection {
    /// Machine-readable reason, the label of `fedtest_updates_rejected_total`.
    pub reason: String,
    pub message: String,
}

/// Why an update is refused before it touches the state.
#[derive(Clone, Debug, PartialEq)]
pub enum Invalid {
    Schema(u32),
    Length { got: usize, want: usize },
    NonFinite,
    Samples,
    Id,
}

impl Invalid {
    pub fn reason(&self) -> &'static str {
        match self {
            Invalid::Schema(_) => "schema",
            Invalid::Length { .. } => "length",
            Invalid::NonFinite => "non_finite",
            Invalid::Samples => "samples",
            Invalid::Id => "id",
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::Schema(s) => write!(f, "unknown schema {s}"),
            Invalid::Length { got, want } => write!(f, "delta has {got} numbers, expected {want}"),
            Invalid::NonFinite => write!(f, "delta holds a non-finite number"),
            Invalid::Samples => write!(
                f,
                "samples must be a whole number from 1 to {MAX_SAMPLES} (a JSON integer)"
            ),
            Invalid::Id => write!(f, "id must be 1 to 64 characters of [0-9a-zA-Z_-]"),
        }
    }
}

impl Update {
    /// Structural checks both ends agree on (the server adds auth, norm and staleness).
    pub fn validate(&self) -> Result<(), Invalid> {
        let want = vector_len(self.schema).ok_or(Invalid::Schema(self.schema))?;
        if self.delta.len() != want {
            return Err(Invalid::Length {
                got: self.delta.len(),
                want,
            });
        }
        if !self.delta.iter().all(|v| v.is_finite()) {
            return Err(Invalid::NonFinite);
        }
        if !(1..=MAX_SAMPLES).contains(&self.samples) {
            return Err(Invalid::Samples);
        }
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(Invalid::Id);
        }
        Ok(())
    }
}

/// Euclidean norm.
pub fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Scale `v` down so its norm is at most `bound` (unchanged when it already is).
pub fn clip(v: &mut [f64], bound: f64) {
    let n = norm(v);
    if n > bound && n > 0.0 {
        let s = bound / n;
        v.iter_mut().for_each(|x| *x *= s);
    }
}

/// The model's vector: weights then intercept.
pub fn vector_of(model: &Model) -> Vec<f64> {
    let mut v = model.weights.clone();
    v.push(model.intercept);
    v
}

/// A model from a vector (weights then intercept) of the current schema; `None` when the
/// length is wrong or a number is not finite.
pub fn model_of(vector: &[f64], source: Source) -> Option<Model> {
    if vector.len() != features::DIM + 1 || !vector.iter().all(|v| v.is_finite()) {
        return None;
    }
    Some(Model::from_weights(
        source,
        vector[..features::DIM].to_vec(),
        vector[features::DIM],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::prior::prior;

    fn update() -> Update {
        Update {
            id: "0123456789abcdef0123456789abcdef".into(),
            schema: features::SCHEMA_VERSION,
            base_version: 1,
            delta: vec![0.0; features::DIM + 1],
            samples: 10,
        }
    }

    #[test]
    fn validates_structure() {
        assert_eq!(update().validate(), Ok(()));
        let mut u = update();
        u.schema = 99;
        assert_eq!(u.validate(), Err(Invalid::Schema(99)));
        let mut u = update();
        u.delta.pop();
        assert!(matches!(u.validate(), Err(Invalid::Length { .. })));
        let mut u = update();
        u.delta[3] = f64::NAN;
        assert_eq!(u.validate(), Err(Invalid::NonFinite));
        let mut u = update();
        u.id = "a/b".into();
        assert_eq!(u.validate(), Err(Invalid::Id));
    }

    #[test]
    fn samples_must_be_an_integer_within_the_cap() {
        let with = |samples: Value| {
            let mut v = serde_json::to_value(update()).unwrap();
            v["samples"] = samples;
            serde_json::from_value::<Update>(v).map(|u| u.validate())
        };
        use serde_json::{Value, json};
        assert_eq!(with(json!(1)).unwrap(), Ok(()));
        assert_eq!(with(json!(MAX_SAMPLES)).unwrap(), Ok(()));
        for bad in [
            json!(0),
            json!(-5),
            json!(MAX_SAMPLES + 1),
            json!(u64::MAX),
            json!(2.5),
            json!(100.0),
            json!(1e300),
            json!("100"),
            json!(true),
            Value::Null,
        ] {
            assert_eq!(with(bad.clone()).unwrap(), Err(Invalid::Samples), "{bad}");
        }
        // Numbers too large for any integer type still arrive (as a float) and are refused.
        let text = serde_json::to_string(&update()).unwrap().replace(
            "\"samples\":10",
            "\"samples\":123456789012345678901234567890",
        );
        let u: Update = serde_json::from_str(&text).unwrap();
        assert_eq!(u.validate(), Err(Invalid::Samples));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = serde_json::to_value(update()).unwrap();
        v["test"] = "tests/test_x.py::test_y".into();
        assert!(serde_json::from_value::<Update>(v).is_err());
    }

    #[test]
    fn vector_round_trip() {
        let p = prior();
        let m = model_of(&vector_of(&p), Source::Global).unwrap();
        assert_eq!(m.weights, p.weights);
        assert_eq!(m.intercept, p.intercept);
        m.validate().unwrap();
    }

    #[test]
    fn clip_scales_to_the_bound() {
        let mut v = vec![3.0, 4.0];
        clip(&mut v, 1.0);
        assert!((norm(&v) - 1.0).abs() < 1e-12);
        let mut w = vec![0.3, 0.4];
        clip(&mut w, 1.0);
        assert_eq!(w, vec![0.3, 0.4]);
    }
}
