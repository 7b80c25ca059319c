//! Replay a history file in process, every candidate ordering side by side — what `fedtest
//! eval` does with a repository's retained builds, on a whole history in the benchmark format
//! (`bench/`, JSON lines: `{"cycle", "changed_files", "tests": [{"id", "verdict", "duration"}]}`).
//!
//! Seconds instead of the minutes `replay.py` takes driving the binary build by build, so the
//! strategy rule can be measured on every history at once. `replay.py` stays the judge: it
//! drives the real binary as CI does.
//!
//!   zcat history.jsonl.gz | cargo run --release --example replay [-- --no-changes]
//!
//! `--harvest` replays nothing: it folds the builds into the history state as `record` does and
//! writes every training example `record` would store, as little-endian f64 rows of
//! `seq, failed, weight, natural` and the feature vector ([`features::NAMES`] order) — what
//! `bench/fit_prior.py` fits priors on, in seconds instead of a replay of the real binary.
//! `--harvest-plans` writes instead, for every failing build the replay scores, every executed
//! test in the build's own order with its features as `plan` computes them (from the state
//! before the build): `seq, failed, duration, 0` and the feature vector — enough to score any
//! linear ordering (such as a candidate prior) exactly as the replay's `prior` candidate.

use std::io::BufRead;

use fedtest::config::PlanConfig;
use fedtest::eval::{self, ReplayBuild};
use fedtest::features;
use fedtest::history::state::{BuildInput, State};
use fedtest::junit::{Outcome, TestCase};

fn main() {
    let no_changes = std::env::args().any(|a| a == "--no-changes");
    let harvest = std::env::args().any(|a| a == "--harvest");
    let plans = std::env::args().any(|a| a == "--harvest-plans");
    let mut builds: Vec<(Vec<TestCase>, Option<Vec<String>>)> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("readable input");
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        let changed = v["changed_files"].as_array().map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        });
        let mut seen = std::collections::HashMap::new();
        let mut tests: Vec<TestCase> = Vec::new();
        for t in v["tests"].as_array().into_iter().flatten() {
            let id = t["id"].as_str().unwrap_or_default().to_owned();
            let outcome = match t["verdict"].as_str() {
                Some("fail") => Outcome::Failed,
                Some("skip") => Outcome::Skipped,
                _ => Outcome::Passed,
            };
            let duration = t["duration"].as_f64().unwrap_or(0.0).max(0.0);
            // A test listed twice is a failure if either row failed (the format's rule).
            if let Some(&i) = seen.get(&id) {
                let prev: &mut TestCase = &mut tests[i];
                if outcome == Outcome::Failed {
                    prev.outcome = Outcome::Failed;
                }
                continue;
            }
            seen.insert(id.clone(), tests.len());
            let (classname, name) = id
                .rsplit_once("::")
                .map_or((String::new(), id.clone()), |(c, n)| {
                    (c.to_owned(), n.to_owned())
                });
            tests.push(TestCase {
                id,
                classname,
                name,
                file: None,
                line: None,
                outcome,
                duration,
                attempts: 1,
                failed_attempts: u32::from(outcome == Outcome::Failed),
            });
        }
        builds.push((tests, if no_changes { None } else { changed }));
    }
    if harvest || plans {
        write_examples(&builds, plans);
        return;
    }
    let replay: Vec<ReplayBuild<'_>> = builds
        .iter()
        .map(|(r, c)| ReplayBuild {
            results: r,
            changed_files: c.as_deref(),
        })
        .collect();
    let prior = fedtest::model::prior::prior();
    let r = eval::replay(&replay, &prior, None, &PlanConfig::default(), 0);
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &r).expect("the result serialises");
    std::io::Write::write_all(&mut out, b"\n").expect("stdout is writable");
}

/// Every build folded into the state in order, each build's examples written as they are made
/// (or, with `plans`, each failing build's executed tests as `plan` sees them).
fn write_examples(builds: &[(Vec<TestCase>, Option<Vec<String>>)], plans: bool) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut state = State::default();
    let mut row = Vec::with_capacity(8 * (4 + features::DIM));
    let mut put = |out: &mut dyn Write, head: [f64; 4], x: &[f64]| {
        row.clear();
        for v in head.iter().chain(x) {
            row.extend_from_slice(&v.to_le_bytes());
        }
        out.write_all(&row).expect("stdout is writable");
    };
    for (i, (results, changed)) in builds.iter().enumerate() {
        let seq = i as u64 + 1;
        if plans {
            let executed: Vec<&TestCase> = results
                .iter()
                .filter(|t| t.outcome != Outcome::Skipped)
                .collect();
            let fails = executed.iter().any(|t| t.outcome == Outcome::Failed);
            if fails && executed.len() > 1 {
                let ctx = features::BuildContext::new(&state, changed.as_deref());
                for t in executed {
                    let failed = f64::from(u8::from(t.outcome == Outcome::Failed));
                    let x = features::compute(&t.id, None, &ctx);
                    put(&mut out, [seq as f64, failed, t.duration, 0.0], &x);
                }
            }
        }
        let (examples, _) = features::observe(
            &mut state,
            &BuildInput {
                seq,
                results,
                changed_files: changed.as_deref(),
                // A history file carries no sources: the symbol features stay unknown.
                symbols: None,
            },
        );
        if !plans {
            for e in examples {
                let head = [
                    e.seq as f64,
                    f64::from(u8::from(e.failed)),
                    e.weight,
                    e.natural,
                ];
                put(&mut out, head, &e.features);
            }
        }
    }
    out.flush().expect("stdout is writable");
}
