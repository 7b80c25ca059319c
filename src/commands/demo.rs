//! `fedtest demo`: placeholder until the example builds land.

use crate::cli::DemoArgs;
use crate::error::Result;
use crate::output::Printer;

pub fn run(_args: &DemoArgs, _printer: &Printer) -> Result<()> {
    Ok(())
}
