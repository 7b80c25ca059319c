//! What the newest plan left out, kept in the data dir so that whoever gives the build's
//! verdict — `gate`, `run`'s log, the job summary — can say that tests did not run (issue 13:
//! a broken test was deselected and the build went green with no word that failures may hide
//! in the tests that did not run).
//!
//! Two files, both owned here: `deselected.txt`, the deselected ids one a line (for people
//! and scripts), and `last-plan.json`, the counts and the build they belong to (for `gate`,
//! which only believes a record of its own build). Written by `plan` and `run` whenever they
//! planned from a readable history, so a plan that runs everything replaces an older record.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Plan, Reason};

/// The deselected ids, one a line.
pub const LIST_FILE: &str = "deselected.txt";
/// [`LastPlan`] as JSON.
const FACTS_FILE: &str = "last-plan.json";

/// The newest plan's deselection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastPlan {
    /// The build it was made for (either may be unknown).
    pub build_id: Option<String>,
    pub commit: Option<String>,
    /// Candidates, selected and deselected tests.
    pub candidates: usize,
    pub selected: usize,
    pub deselected: usize,
    /// The first deselected ids (all of them are in [`LIST_FILE`]).
    #[serde(default)]
    pub first_deselected: Vec<String>,
    /// The newest build whose plan deselected nothing (`"build 40"`), when one is known.
    pub last_full_run: Option<String>,
}

/// Deselected ids kept in [`LastPlan::first_deselected`].
pub const FIRST: usize = 5;

impl LastPlan {
    /// The record of `plan` for a build labelled `label` (`"build 40"`), carrying the last
    /// full run over from the `previous` record when this plan deselects.
    pub fn new(
        plan: &Plan,
        build_id: Option<&str>,
        commit: Option<&str>,
        label: String,
        previous: Option<&LastPlan>,
    ) -> LastPlan {
        let deselected: Vec<&str> = deselected_ids(plan).collect();
        LastPlan {
            build_id: build_id.map(str::to_owned),
            commit: commit.map(str::to_owned),
            candidates: plan.tests.len(),
            selected: plan.selected,
            deselected: deselected.len(),
            first_deselected: deselected
                .iter()
                .take(FIRST)
                .map(|s| (*s).to_owned())
                .collect(),
            last_full_run: if deselected.is_empty() {
                Some(label)
            } else {
                previous.and_then(|p| p.last_full_run.clone())
            },
        }
    }

    /// The record in `data_dir`; `None` when there is none or it cannot be read (it is only
    /// ever a courtesy to the reader).
    pub fn read(data_dir: &Path) -> Option<LastPlan> {
        let text = std::fs::read_to_string(data_dir.join(FACTS_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The deselected ids [`LastPlan::write`] listed; `None` when the list cannot be read.
    pub fn read_list(data_dir: &Path) -> Option<Vec<String>> {
        let text = std::fs::read_to_string(data_dir.join(LIST_FILE)).ok()?;
        Some(
            text.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Write the record and the list (each replaced whole, never half-written); the list's
    /// path.
    pub fn write(&self, plan: &Plan, data_dir: &Path) -> std::io::Result<PathBuf> {
        let mut list = String::new();
        for id in deselected_ids(plan) {
            list.push_str(id);
            list.push('\n');
        }
        let list_path = data_dir.join(LIST_FILE);
        replace(&list_path, list.as_bytes())?;
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        replace(&data_dir.join(FACTS_FILE), json.as_bytes())?;
        Ok(list_path)
    }

    /// Whether the record is of the build identified by `build_id` or `commit`.
    pub fn is_of(&self, build_id: Option<&str>, commit: Option<&str>) -> bool {
        let same = |a: &Option<String>, b: Option<&str>| a.as_deref().is_some_and(|a| Some(a) == b);
        same(&self.build_id, build_id) || same(&self.commit, commit)
    }
}

/// The plan's deselected ids, in plan order.
fn deselected_ids(plan: &Plan) -> impl Iterator<Item = &str> {
    plan.tests
        .iter()
        .filter(|t| !t.selected && matches!(t.reason, Reason::Deselected | Reason::Quarantined))
        .map(|t| t.id.as_str())
}

fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.flush()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// "green on 61 of 119 tests; 58 deselected by fedtest did not run (last full run: build 40)";
/// `None` when every deselected test ran after all (`not_run` is 0).
pub fn subset_verdict(
    green: bool,
    executed: usize,
    not_run: usize,
    last: &LastPlan,
) -> Option<String> {
    (not_run > 0).then(|| format!(
        "{} on {executed} of {} tests; {not_run} deselected by fedtest did not run, so failures \
         in them stay unseen (last full run: {})",
        if green { "green" } else { "red" },
        executed + not_run,
        last.last_full_run.as_deref().unwrap_or("none recorded")
    ))
}
