//! Plan output formats. Each runner format is one file here implementing [`Formatter`];
//! adding a runner means adding a file and a [`Format`] variant, nothing else.

mod json;
mod list;

use std::io::{self, Write};

use super::Plan;

/// Writes a plan in one syntax.
pub trait Formatter {
    fn write(&self, plan: &Plan, out: &mut dyn Write) -> io::Result<()>;
}

/// The formats `--format` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Selected test ids, one a line, in run order.
    List,
    /// Every candidate with probability, selection and reason.
    Json,
}

impl Format {
    pub fn formatter(self) -> Box<dyn Formatter> {
        match self {
            Format::List => Box::new(list::List),
            Format::Json => Box::new(json::Json),
        }
    }
}
