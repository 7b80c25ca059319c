//! `fedtest quarantine add|remove|list`: edit and show the reviewed quarantine file. An
//! entry added by hand gets its owner from CODEOWNERS (by the test's file in the history);
//! `add --auto` proposes the tests the flakiness score names, as TOML to review, and writes
//! them only with `write`.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use crate::codeowners::CodeOwners;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::flaky;
use crate::output::Printer;
use crate::quarantine::{Date, Entry, Quarantine};

/// What to do with the quarantine file.
#[derive(Debug)]
pub enum Edit {
    List { json: bool },
    Remove { ids: Vec<String> },
    Add(Add),
}

/// Tests to quarantine: `ids` by hand, or (`auto`) the ones whose flakiness score reaches
/// `min_score` (default `flaky.threshold`), written only with `write`.
#[derive(Debug, Default)]
pub struct Add {
    pub ids: Vec<String>,
    pub reason: Option<String>,
    pub owner: Option<String>,
    /// `YYYY-MM-DD`; default today + `flaky.quarantine_days`.
    pub expires: Option<String>,
    pub auto: bool,
    pub write: bool,
    pub min_score: Option<f64>,
}

pub fn edit(data_dir: &Path, config: &Config, edit: &Edit, printer: &Printer) -> Result<()> {
    let path = &config.flaky.quarantine_file;
    let mut q = Quarantine::load_config(&config.flaky)?;
    let today = Date::today();
    match edit {
        Edit::List { json } => {
            q.warn_expired(today, printer);
            let text = if *json {
                let entries: Vec<serde_json::Value> = q
                    .entries()
                    .iter()
                    .map(|e| {
                        let mut v = serde_json::to_value(e).expect("entries serialise");
                        v["expired"] = e.expired(today).into();
                        v
                    })
                    .collect();
                serde_json::to_string_pretty(&serde_json::json!({
                    "file": path.display().to_string(),
                    "entries": entries,
                }))
                .expect("json serialises")
                    + "\n"
            } else {
                list(&q, today)
            };
            printer
                .stdout()
                .write_all(text.as_bytes())
                .map_err(Error::Output)
        }
        Edit::Remove { ids } => {
            for id in ids {
                if !q.remove(id) {
                    return Err(Error::Usage(format!(
                        "{id} is not in {}; nothing changed",
                        path.display()
                    )));
                }
            }
            q.save()?;
            printer.info(&format!(
                "removed {} from {}",
                ids.join(", "),
                path.display()
            ));
            Ok(())
        }
        Edit::Add(a) if a.auto => auto(data_dir, config, &mut q, a, today, printer),
        Edit::Add(a) => {
            let expires = expires(a, config, today)?;
            let reason = a.reason.clone().unwrap_or_default();
            let owners = CodeOwners::discover(Path::new("."));
            let files = test_files(data_dir);
            for id in &a.ids {
                let owner = a.owner.clone().or_else(|| {
                    let file = files.get(id.as_str()).and_then(|f| f.as_deref());
                    owners
                        .as_ref()
                        .map(|o| o.owners_of_test(id, file).join(" "))
                        .filter(|o| !o.is_empty())
                });
                q.add(Entry {
                    id: id.clone(),
                    reason: reason.clone(),
                    owner,
                    expires,
                })
                .map_err(Error::Usage)?;
            }
            q.save()?;
            printer.info(&format!(
                "quarantined {} until {expires} in {}",
                a.ids.join(", "),
                path.display()
            ));
            Ok(())
        }
    }
}

fn expires(a: &Add, config: &Config, today: Date) -> Result<Date> {
    match &a.expires {
        Some(s) => {
            let d: Date = s
                .parse()
                .map_err(|e| Error::Usage(format!("--expires: {e}")))?;
            if d < today {
                return Err(Error::Usage(format!(
                    "--expires {d} is in the past; an entry must be in effect for at least today"
                )));
            }
            let last = today.add_days(i64::from(config.flaky.max_quarantine_days));
            if d > last {
                return Err(Error::Usage(format!(
                    "--expires {d} is more than {} days ahead (flaky.max_quarantine_days); the \
                     latest allowed today is {last}",
                    config.flaky.max_quarantine_days
                )));
            }
            Ok(d)
        }
        None => Ok(today.add_days(i64::from(config.flaky.quarantine_days))),
    }
}

/// The test files the history knows, by id (empty without a history).
fn test_files(data_dir: &Path) -> std::collections::HashMap<String, Option<String>> {
    crate::history::Store::open_existing(data_dir)
        .ok()
        .flatten()
        .and_then(|s| s.tests().ok())
        .map(|t| t.into_iter().map(|(id, s)| (id, s.file)).collect())
        .unwrap_or_default()
}

fn auto(
    data_dir: &Path,
    config: &Config,
    q: &mut Quarantine,
    a: &Add,
    today: Date,
    printer: &Printer,
) -> Result<()> {
    let min_score = config.flaky.min_score(a.min_score)?;
    let expires = expires(a, config, today)?;
    let report = flaky::listing::list(data_dir, config, min_score, Some(q), printer)?;
    let proposed = flaky::listing::quarantine_entries(
        &report,
        q,
        expires,
        a.owner.as_deref(),
        a.reason.as_deref(),
    );
    if proposed.is_empty() {
        printer.info(&format!(
            "no test scores {min_score:.2} or more that is not quarantined already"
        ));
        return Ok(());
    }
    if a.write {
        for e in &proposed {
            q.add(e.clone()).map_err(Error::Usage)?;
        }
        q.save()?;
        printer.info(&format!(
            "quarantined {} tests until {expires} in {}; review the change like code",
            proposed.len(),
            q.path().display()
        ));
        return Ok(());
    }
    // A preview: exactly what --write would add, as TOML.
    let mut preview = Quarantine::parse("", q.path())?;
    for e in &proposed {
        preview.add(e.clone()).map_err(Error::Usage)?;
    }
    let text = preview
        .to_text()
        .lines()
        .skip_while(|l| l.starts_with('#') || l.is_empty())
        .fold(String::new(), |mut s, l| {
            s.push_str(l);
            s.push('\n');
            s
        });
    printer.info(&format!(
        "{} tests proposed for {}; run again with --write to add them",
        proposed.len(),
        q.path().display()
    ));
    printer
        .stdout()
        .write_all(text.as_bytes())
        .map_err(Error::Output)
}

fn list(q: &Quarantine, today: Date) -> String {
    let mut s = String::new();
    if q.entries().is_empty() {
        let _ = writeln!(s, "no quarantined tests in {}", q.path().display());
        return s;
    }
    let width = q
        .entries()
        .iter()
        .map(|e| e.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        s,
        "{:<width$}  {:<10}  {:<8}  {:<16}  reason",
        "test", "expires", "status", "owner"
    );
    for e in q.entries() {
        let _ = writeln!(
            s,
            "{:<width$}  {}  {:<8}  {:<16}  {}",
            e.id,
            e.expires,
            if e.expired(today) {
                "EXPIRED"
            } else {
                "active"
            },
            e.owner.as_deref().unwrap_or("-"),
            e.reason
        );
    }
    let expired = q.expired(today).len();
    let _ = writeln!(
        s,
        "\n{} in effect, {expired} expired (no longer in effect) in {}",
        q.entries().len() - expired,
        q.path().display()
    );
    s
}
