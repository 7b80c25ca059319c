//! `json`: the whole plan — every candidate with probability, selection and reason.

use std::io::{self, Write};

use super::Formatter;
use crate::plan::Plan;

pub struct Json;

impl Formatter for Json {
    fn write(&self, plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
        // An I/O error keeps its kind: a closed pipe (`plan --format json | head`) is no error.
        serde_json::to_writer_pretty(&mut *out, plan).map_err(|e| match e.io_error_kind() {
            Some(kind) => io::Error::new(kind, e),
            None => io::Error::other(e),
        })?;
        writeln!(out)
    }
}
