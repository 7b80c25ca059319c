//! Replay a history file in process, every candidate ordering side by side — what `fedtest
//! eval` does with a repository's retained builds, on a whole history in the benchmark format
//! (`bench/`, JSON lines: `{"cycle", "changed_files", "tests": [{"id", "verdict", "duration"}]}`).
//!
//! Seconds instead of the minutes `replay.py` takes driving the binary build by build, so the
//! strategy rule can be measured on every history at once. `replay.py` stays the judge: it
//! drives the real binary as CI does.
//!
//!   zcat history.jsonl.gz | cargo run --release --example replay [-- --no-changes]

use std::io::BufRead;

use fedtest::config::PlanConfig;
use fedtest::eval::{self, ReplayBuild};
use fedtest::junit::{Outcome, TestCase};

fn main() {
    let no_changes = std::env::args().any(|a| a == "--no-changes");
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
