//! `list`: the selected canonical ids, one a line, in run order. An id that is not one safe
//! line (`record` refuses those; a candidate list can still hold one) is written escaped by
//! [`crate::text::line`], never split over several lines.

use std::io::{self, Write};

use super::Formatter;
use crate::plan::Plan;

pub struct List;

impl Formatter for List {
    fn write(&self, plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
        for t in plan.tests.iter().filter(|t| t.selected) {
            writeln!(out, "{}", crate::text::line(&t.id))?;
        }
        Ok(())
    }
}
