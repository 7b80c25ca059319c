//! `json`: the whole plan — every candidate with probability, selection and reason.

use std::io::{self, Write};

use super::Formatter;
use crate::plan::Plan;

pub struct Json;

impl Formatter for Json {
    fn write(&self, plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, plan).map_err(io::Error::other)?;
        writeln!(out)
    }
}
