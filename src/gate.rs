//! The gate (`fedtest gate`): the build's verdict from its JUnit reports. It fails (exit 10) only when a
//! test that is not quarantined failed for good — a test that passed on a retry is flaky, not
//! failed — or when the reports hold no executed test at all, since an empty report is far
//! more often a broken test step than a suite with nothing to run. Quarantined failures do
//! not fail the gate, but they are listed and annotated, never hidden. Nor are the tests the
//! build's plan deselected: when the data dir holds this build's plan (`plan::last`), the
//! verdict says how many tests it covers ("green on 61 of 119 tests; 58 deselected by
//! fedtest …").

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use crate::ci::Env;
use crate::ci::annotation::{Annotation, Level};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::junit::{self, JunitError, Limits, Outcome, TestCase};
use crate::output::Printer;
use crate::plan::last::{LIST_FILE, LastPlan};
use crate::quarantine::{Date, Entry, Quarantine};
use crate::report::{self, GateFacts, GateTest, Report, Targets};
use crate::text;

/// At most this many failures of a kind are annotated one by one: GitHub keeps 10
/// annotations per type and step, so the 10th says how many more there are.
const NAMED: usize = 10;

/// The gate over the JUnit reports `reports` (files, directories or glob patterns), its
/// verdict published to `targets`.
pub fn run(
    data_dir: &Path,
    config: &Config,
    reports: &[String],
    targets: &Targets,
    env: &Env,
    printer: &Printer,
) -> Result<()> {
    let mut facts = GateFacts::default();
    let ci = env.build();
    let commit = ci
        .commit
        .or_else(|| crate::git::head_commit(Path::new(".")));
    let last = LastPlan::read(data_dir)
        .filter(|l| l.deselected > 0 && l.is_of(ci.build_id.as_deref(), commit.as_deref()))
        .map(|last| Deselection {
            last,
            list: LastPlan::read_list(data_dir),
            list_path: data_dir.join(LIST_FILE),
        });
    let verdict = judge(config, reports, last.as_ref(), printer, &mut facts);
    if !targets.is_empty() {
        facts.passed_gate = verdict.is_ok();
        if let Err(e) = &verdict {
            // The gate's own verdict, or why it could not give one (a malformed report).
            facts.verdict = e.to_string().trim_start_matches("gate: ").to_owned();
        }
        let mut report = Report::new(report::Command::Gate);
        report.gate = Some(facts);
        report::publish(targets, &report, printer);
    }
    verdict
}

fn judge(
    config: &Config,
    reports: &[String],
    last: Option<&Deselection>,
    printer: &Printer,
    facts: &mut GateFacts,
) -> Result<()> {
    let limits = Limits {
        max_file_bytes: config.record.max_report_mib.saturating_mul(1024 * 1024),
        ..Limits::default()
    };
    let mut results = match junit::read_reports(reports, &limits) {
        Ok(r) => r,
        // No report, or reports without a single test case: nothing ran, which is the gate's
        // verdict to give (exit 10), not a malformed input.
        Err(
            e @ (JunitError::NoTestCases { .. }
            | JunitError::NoTestCasesIn { .. }
            | JunitError::NoMatch { .. }),
        ) => {
            return Err(Error::TestsFailed(format!(
                "gate: {e}: the reports hold no executed test; a test step that ran nothing does \
                 not pass"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    // Annotations point at the test: where the report names no file or line (pytest's default
    // xunit2), they come from the checkout, which the gate runs in.
    junit::locate(&mut results, std::path::Path::new("."));
    let quarantine = Quarantine::load_config(&config.flaky)?;
    let today = Date::today();
    quarantine.warn_expired(today, printer);
    let active = quarantine.active(today);

    let count = |o: Outcome| results.iter().filter(|t| t.outcome == o).count();
    let (passed, flaky, skipped) = (
        count(Outcome::Passed),
        count(Outcome::Flaky),
        count(Outcome::Skipped),
    );
    let executed = results.len() - skipped;
    let (quarantined, failed): (Vec<_>, Vec<_>) = results
        .iter()
        .filter(|t| t.outcome == Outcome::Failed)
        .partition(|t| active.contains_key(t.id.as_str()));
    let entry_note = |e: &Entry| {
        format!(
            "until {}, owner {}: {}",
            e.expires,
            e.owner.as_deref().unwrap_or("-"),
            e.reason
        )
    };
    *facts = GateFacts {
        executed,
        passed,
        flaky,
        skipped,
        failed: failed.iter().map(|t| gate_test(t, None)).collect(),
        quarantined: quarantined
            .iter()
            .map(|t| gate_test(t, Some(entry_note(active[t.id.as_str()]))))
            .collect(),
        ..GateFacts::default()
    };

    let mut s = String::new();
    let _ = writeln!(
        s,
        "gate: {executed} tests executed: {passed} passed, {flaky} flaky (passed on retry), \
         {} failed ({} quarantined); {skipped} skipped by the runner",
        failed.len() + quarantined.len(),
        quarantined.len()
    );
    if !quarantined.is_empty() {
        let _ = writeln!(s, "failed but quarantined (not failing the gate):");
        for t in &quarantined {
            let e = active[t.id.as_str()];
            let _ = writeln!(
                s,
                "  {}  (owner {}, until {}: {})",
                text::line(&t.id),
                text::line(e.owner.as_deref().unwrap_or("-")),
                e.expires,
                text::line(&e.reason)
            );
        }
        annotate(&quarantined, Level::Warning, printer, |t| {
            let e = active[t.id.as_str()];
            format!(
                "quarantined test {} failed (quarantined until {}: {})",
                t.id, e.expires, e.reason
            )
        });
    }
    if !failed.is_empty() {
        let _ = writeln!(s, "failed:");
        for t in &failed {
            // One line per test, whatever its name holds (issue 11).
            let _ = writeln!(s, "  {}", text::line(&t.id));
        }
        annotate(&failed, Level::Error, printer, |t| {
            format!("test {} failed (not quarantined)", t.id)
        });
    }
    let verdict = if executed == 0 {
        Err(Error::TestsFailed(format!(
            "gate: the reports hold no executed test ({} reported, all skipped); a test step \
             that ran nothing does not pass",
            results.len()
        )))
    } else if !failed.is_empty() {
        let mut names: Vec<&str> = failed.iter().take(NAMED).map(|t| t.id.as_str()).collect();
        if failed.len() > NAMED {
            names.push("…");
        }
        Err(Error::TestsFailed(format!(
            "gate: {} test{} failed that {} not quarantined: {}{}",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" },
            if failed.len() == 1 { "is" } else { "are" },
            names.join(", "),
            last.map(|d| d.not_run(&results))
                .filter(|&n| n > 0)
                .map_or_else(String::new, |n| format!(
                    "; {n} more deselected by fedtest did not run"
                ))
        )))
    } else {
        let mut verdict = if quarantined.is_empty() {
            format!("no test failed ({executed} executed)")
        } else {
            format!(
                "only quarantined tests failed ({} of {executed} executed)",
                quarantined.len()
            )
        };
        if let Some(d) = last
            && let Some(subset) =
                crate::plan::last::subset_verdict(true, executed, d.not_run(&results), &d.last)
        {
            let l = &d.last;
            // Green on a subset: the verdict covers only the tests that ran.
            verdict = if quarantined.is_empty() {
                subset
            } else {
                format!("{verdict}; {subset}")
            };
            let _ = writeln!(
                s,
                "deselected by fedtest (not run): {}{}",
                l.first_deselected
                    .iter()
                    .map(|id| text::line(id).into_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
                if l.deselected > l.first_deselected.len() {
                    format!(", … (all {} in {})", l.deselected, d.list_path.display())
                } else {
                    String::new()
                }
            );
            printer.warn(&verdict);
        }
        let _ = writeln!(s, "gate: passed: {verdict}");
        facts.verdict = verdict;
        Ok(())
    };
    let mut out = printer.stdout();
    out.write_all(s.as_bytes()).map_err(Error::Output)?;
    out.flush().map_err(Error::Output)?;
    verdict
}

/// This build's plan, as `plan` or `run` left it in the data dir (`plan::last`).
struct Deselection {
    last: LastPlan,
    /// Every deselected id (`None`: the list cannot be read), and where it is.
    list: Option<Vec<String>>,
    list_path: std::path::PathBuf,
}

impl Deselection {
    /// How many deselected tests did not run (a command may run more than it is given);
    /// every one of them when the list cannot be read.
    fn not_run(&self, results: &[TestCase]) -> usize {
        let Some(list) = &self.list else {
            return self.last.deselected;
        };
        let ran: std::collections::HashSet<&str> = results
            .iter()
            .filter(|t| t.outcome != Outcome::Skipped)
            .map(|t| t.id.as_str())
            .collect();
        list.iter().filter(|id| !ran.contains(id.as_str())).count()
    }
}

fn gate_test(t: &TestCase, note: Option<String>) -> GateTest {
    GateTest {
        id: t.id.clone(),
        file: t.file.clone(),
        line: t.line,
        note,
    }
}

/// An annotation per test, at its file and line when the report names them; past the first
/// [`NAMED`] - 1, one more that counts the rest (GitHub drops anything beyond 10).
fn annotate(
    tests: &[&TestCase],
    level: Level,
    printer: &Printer,
    message: impl Fn(&TestCase) -> String,
) {
    let shown = if tests.len() > NAMED {
        NAMED - 1
    } else {
        tests.len()
    };
    for t in &tests[..shown] {
        let text = message(t);
        printer.annotate(&Annotation {
            level,
            title: "fedtest",
            file: t.file.as_deref(),
            line: t.line,
            message: &text,
        });
    }
    if tests.len() > shown {
        let text = format!(
            "{} more tests like these; see the gate's summary",
            tests.len() - shown
        );
        printer.annotate(&Annotation {
            level,
            title: "fedtest",
            file: None,
            line: None,
            message: &text,
        });
    }
}
