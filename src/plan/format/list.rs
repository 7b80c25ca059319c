//! `list`: the selected canonical ids, one a line, in run order.

use std::io::{self, Write};

use super::Formatter;
use crate::plan::Plan;

pub struct List;

impl Formatter for List {
    fn write(&self, plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
        for t in plan.tests.iter().filter(|t| t.selected) {
            writeln!(out, "{}", t.id)?;
        }
        Ok(())
    }
}
