//! `fedtest quarantine add|remove|list`: the arguments as an edit, then
//! [`crate::flaky::review::edit`].

use std::path::Path;

use crate::cli::{QuarantineAction, QuarantineArgs};
use crate::config::Config;
use crate::error::Result;
use crate::flaky::review::{Add, Edit, edit};
use crate::output::Printer;

pub fn run(
    data_dir: &Path,
    config: &Config,
    args: &QuarantineArgs,
    printer: &Printer,
) -> Result<()> {
    let e = match &args.action {
        QuarantineAction::List(a) => Edit::List { json: a.json },
        QuarantineAction::Remove(a) => Edit::Remove { ids: a.ids.clone() },
        QuarantineAction::Add(a) => Edit::Add(Add {
            ids: a.ids.clone(),
            reason: a.reason.clone(),
            owner: a.owner.clone(),
            expires: a.expires.clone(),
            auto: a.auto,
            write: a.write,
            min_score: a.min_score,
        }),
    };
    edit(data_dir, config, &e, printer)
}
