//! `fedtest flaky`: the flaky tests, with the evidence and the owners.

use std::io::Write;
use std::path::Path;

use crate::cli::FlakyArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::flaky;
use crate::output::Printer;
use crate::quarantine::{Date, Quarantine};

pub fn run(data_dir: &Path, config: &Config, args: &FlakyArgs, printer: &Printer) -> Result<()> {
    let min_score = config.flaky.min_score(args.min_score)?;
    let quarantine = Quarantine::load_config(&config.flaky)?;
    quarantine.warn_expired(Date::today(), printer);
    let report = flaky::listing::list(data_dir, config, min_score, Some(&quarantine), printer)?;
    let mut out = printer.stdout();
    out.write_all(report.render(args.format).as_bytes())
        .map_err(Error::Output)
}
