//! `fedtest demo`: see [`crate::demo`].

use std::io::Write;

use crate::cli::DemoArgs;
use crate::error::{Error, Result};
use crate::output::Printer;
use crate::plan::Budget;

pub fn run(args: &DemoArgs, printer: &Printer) -> Result<()> {
    let budget: Budget = args.budget.parse().map_err(Error::Usage)?;
    let temp;
    let dir = match &args.keep {
        Some(d) => {
            if crate::history::Store::path_in(d).exists() {
                return Err(Error::Usage(format!(
                    "{} already holds a history; pick an empty directory for the demo",
                    d.display()
                )));
            }
            d.clone()
        }
        None => {
            temp = tempfile::tempdir().map_err(|e| {
                Error::Internal(format!("cannot create a temporary directory: {e}"))
            })?;
            temp.path().to_owned()
        }
    };
    let report = crate::demo::run(&dir, budget, printer)?;
    printer
        .stdout()
        .write_all(report.as_bytes())
        .map_err(Error::Output)
}
