//! The listing `fedtest flaky` prints (and `quarantine suggest`, and the CI report's flaky
//! table): the tests whose evidence passes a score, with owners and quarantine status.

use std::path::Path;

use super::{FlakyRow, Listed, Report};
use crate::codeowners::CodeOwners;
use crate::config::Config;
use crate::error::Result;
use crate::history::Store;
use crate::output::Printer;
use crate::quarantine::{Date, Entry, Quarantine};

/// `fedtest flaky`: the listing at `min_score` (default `flaky.threshold`), in `format`, with
/// a warning for each expired quarantine entry.
pub fn show(
    data_dir: &Path,
    config: &Config,
    min_score: Option<f64>,
    format: super::ReportFormat,
    printer: &Printer,
) -> Result<()> {
    let min_score = config.flaky.min_score(min_score)?;
    let quarantine = Quarantine::load_config(&config.flaky)?;
    quarantine.warn_expired(Date::today(), printer);
    let report = list(data_dir, config, min_score, Some(&quarantine), printer)?;
    std::io::Write::write_all(&mut printer.stdout(), report.render(format).as_bytes())
        .map_err(crate::error::Error::Output)
}

/// Every test scoring at least `min_score`, highest first, with owners and quarantine status.
/// No history yet is an empty report, not an error: a CI step listing flaky tests must not
/// fail on a repository's first build.
pub fn list(
    data_dir: &Path,
    config: &Config,
    min_score: f64,
    quarantine: Option<&Quarantine>,
    printer: &Printer,
) -> Result<Report> {
    let rows = match Store::open_existing(data_dir)? {
        Some(store) => store.flaky()?,
        None => {
            printer.info(&format!(
                "no history in {} yet; record some builds first",
                data_dir.display()
            ));
            Vec::new()
        }
    };
    let owners = CodeOwners::discover(Path::new("."));
    let threshold = config.flaky.threshold;
    let tests = listed(
        rows,
        threshold,
        |s| s >= min_score,
        quarantine,
        owners.as_ref(),
    );
    let mut report = Report {
        threshold,
        min_score,
        codeowners: owners.map(|o| o.path().display().to_string()),
        tests,
    };
    report.sort();
    Ok(report)
}

/// The rows with at least one run whose score passes `keep`, listed with their owners (when
/// there is a CODEOWNERS file) and whether a quarantine entry in effect today covers them.
pub fn listed(
    rows: Vec<FlakyRow>,
    threshold: f64,
    keep: impl Fn(f64) -> bool,
    quarantine: Option<&Quarantine>,
    owners: Option<&CodeOwners>,
) -> Vec<Listed> {
    let active = quarantine.map(|q| q.active(Date::today()));
    rows.into_iter()
        .filter(|r| r.state.runs > 0 && keep(r.state.score()))
        .map(|r| {
            let who = owners.map_or_else(Vec::new, |o| {
                o.owners_of_test(&r.id, r.file.as_deref()).to_vec()
            });
            let quarantined = active
                .as_ref()
                .is_some_and(|a| a.contains_key(r.id.as_str()));
            Listed::new(r, threshold, who, quarantined)
        })
        .collect()
}

/// The quarantine entries `quarantine add --auto` proposes: every listed test the file does
/// not hold yet, with its evidence as the reason (unless `reason_given`) and its owners
/// (unless `owner` is given), until `expires`.
pub fn quarantine_entries(
    report: &Report,
    q: &Quarantine,
    expires: Date,
    owner: Option<&str>,
    reason_given: Option<&str>,
) -> Vec<Entry> {
    let mut proposed = Vec::new();
    for t in report.tests.iter().filter(|t| q.get(&t.id).is_none()) {
        let mut evidence = Vec::new();
        for (n, what) in [
            (t.retry_flakes, "retry flake"),
            (t.same_commit_flips, "same-commit flip"),
            (t.unrelated_flips + t.unknown_flips, "flip"),
        ] {
            if n > 0 {
                evidence.push(format!("{n} {what}{}", if n == 1 { "" } else { "s" }));
            }
        }
        let reason = format!(
            "flaky: score {:.2} ({}; last flake in build {})",
            t.score,
            evidence.join(", "),
            t.last_flake.as_deref().unwrap_or("-")
        );
        let owner = owner
            .map(str::to_owned)
            .or_else(|| (!t.owners.is_empty()).then(|| t.owners.join(" ")));
        proposed.push(Entry {
            id: t.id.clone(),
            reason: reason_given.map_or(reason, str::to_owned),
            owner,
            expires,
        });
    }
    proposed
}
