//! `fedtest model`: [`crate::strategy::describe::show`].

use std::path::Path;

use crate::cli::ModelArgs;
use crate::error::Result;
use crate::output::Printer;

pub fn run(data_dir: &Path, args: &ModelArgs, printer: &Printer) -> Result<()> {
    crate::strategy::describe::show(data_dir, args.json, printer)
}
