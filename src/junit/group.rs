//! Folding the attempts of one build into one result per test.

use std::collections::HashMap;

use super::model::{Attempt, Outcome, Status, TestCase};

struct Tally {
    case: TestCase,
    passed: u32,
}

/// Group attempts from one or more files into one [`TestCase`] per canonical id, in
/// first-seen order.
///
/// Any failed execution plus any passed one is [`Outcome::Flaky`]; only failures is
/// `Failed`; only skips is `Skipped`; otherwise `Passed`. Failed executions include those a
/// row embeds (`flakyFailure`, `rerunFailure`, …) as well as repeated rows (gotestsum,
/// pytest-rerunfailures, a test reported in two files).
pub fn group(attempts: Vec<Attempt>) -> Vec<TestCase> {
    let mut grouper = Grouper::with_capacity(attempts.len());
    grouper.add(attempts);
    grouper.finish()
}

/// [`group`] a report at a time: the attempts of each report are folded in and dropped, so
/// memory holds one report's attempts and one tally per distinct test (`fedtest import`
/// reads artifacts of many reports this way). The result is the same as grouping all the
/// attempts at once.
#[derive(Default)]
pub struct Grouper {
    index: HashMap<String, usize>,
    tallies: Vec<Tally>,
}

impl Grouper {
    fn with_capacity(n: usize) -> Self {
        Grouper {
            index: HashMap::with_capacity(n),
            tallies: Vec::with_capacity(n),
        }
    }

    /// Distinct tests so far.
    pub fn len(&self) -> usize {
        self.tallies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tallies.is_empty()
    }

    /// Fold in attempts (one report's, or any batch).
    pub fn add(&mut self, attempts: impl IntoIterator<Item = Attempt>) {
        let (index, tallies) = (&mut self.index, &mut self.tallies);
        for attempt in attempts {
            let id = attempt.id();
            let executions = attempt.executions();
            let failed = attempt
                .embedded_failures
                .saturating_add(u32::from(attempt.status.is_failure()));
            let passed = u32::from(attempt.status == Status::Passed);
            let time = sane(attempt.time) + sane(attempt.embedded_time);
            let tally = match index.get(&id) {
                Some(&slot) => {
                    let tally = &mut tallies[slot];
                    if tally.case.file.is_none() {
                        tally.case.file = attempt.file;
                    }
                    if tally.case.line.is_none() {
                        tally.case.line = attempt.line;
                    }
                    tally
                }
                None => {
                    index.insert(id.clone(), tallies.len());
                    tallies.push(Tally {
                        case: TestCase {
                            id,
                            classname: attempt.classname,
                            name: attempt.name,
                            file: attempt.file,
                            line: attempt.line,
                            outcome: Outcome::Skipped,
                            duration: 0.0,
                            attempts: 0,
                            failed_attempts: 0,
                        },
                        passed: 0,
                    });
                    let last = tallies.len() - 1;
                    &mut tallies[last]
                }
            };
            let case = &mut tally.case;
            case.attempts = case.attempts.saturating_add(executions);
            case.failed_attempts = case.failed_attempts.saturating_add(failed);
            tally.passed = tally.passed.saturating_add(passed);
            case.duration += time;
        }
    }

    /// One result per test, in first-seen order.
    pub fn finish(self) -> Vec<TestCase> {
        self.tallies
            .into_iter()
            .map(|Tally { mut case, passed }| {
                case.outcome = match (case.failed_attempts > 0, passed > 0) {
                    (true, true) => Outcome::Flaky,
                    (true, false) => Outcome::Failed,
                    (false, true) => Outcome::Passed,
                    (false, false) => Outcome::Skipped,
                };
                case.duration = sane(case.duration);
                case
            })
            .collect()
    }
}

/// Attempts built by hand may carry any float; the result must be finite and >= 0.
fn sane(t: f64) -> f64 {
    if t.is_finite() && t > 0.0 { t } else { 0.0 }
}
