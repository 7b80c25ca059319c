//! `fedtest flaky`: [`crate::flaky::listing::show`].

use std::path::Path;

use crate::cli::FlakyArgs;
use crate::config::Config;
use crate::error::Result;
use crate::output::Printer;

pub fn run(data_dir: &Path, config: &Config, args: &FlakyArgs, printer: &Printer) -> Result<()> {
    crate::flaky::listing::show(data_dir, config, args.min_score, args.format, printer)
}
