//! Offline evaluation: `replay` plans each retained build with only the builds before it and
//! scores the orders; `curve` turns where those plans put the failures into the confidence
//! curve (what running X% of the test time would have caught) and draws it; `workflow` is
//! `fedtest eval` over the data dir's retained history.

pub mod curve;
mod replay;
pub mod workflow;

pub use replay::*;
