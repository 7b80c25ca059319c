//! Issue 13, "A new user's first hour": a generated pytest project (real pytest, real git, a
//! dozen commits, a real regression partway) driven through the real binary the way the
//! README's Quick start does it — candidates from `pytest --collect-only -q`, `plan`, pytest
//! with the plan, `record`, `gate` — and then `fedtest run` without a candidate list.
//!
//! What a new user hit, and what this checks instead:
//! - pytest node ids never matched the history's JUnit ids, and the listing's summary line
//!   was planned as a test: here the candidates are matched and the summary line is reported;
//! - nothing visible happened for ten builds: here the order reaches pytest from the first
//!   build, and the plan says what deselection waits for;
//! - a deselected test could hide a failure with no word about it: here the deselected tests
//!   are listed and the gate and the job summary say the build is green on a subset.
//!
//! pytest is required (`.ci/install-runners`): a missing pytest fails this test, it never
//! skips it.

use std::path::Path;
use std::process::{Command, Output};

use fedtest::junit::{self, Limits, Outcome};

use crate::runners::pytest;
use crate::util::{Sandbox, git, stderr, stdout};

/// The project at its first commit: a tiny calculator with three test modules, a class and
/// parametrised tests (14 tests).
const FILES: &[(&str, &str)] = &[
    ("pytest.ini", "[pytest]\npythonpath = .\n"),
    (
        ".gitignore",
        "data/\n__pycache__/\n*.xml\n*.txt\n*.args\n*.json\n*.md\n",
    ),
    ("calc/__init__.py", ""),
    (
        "calc/arith.py",
        "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n\n\n\
         def div(a, b):\n    if b == 0:\n        raise ZeroDivisionError(\"b is zero\")\n    return a / b\n",
    ),
    (
        "calc/text.py",
        "def shout(s):\n    return s.upper() + \"!\"\n\n\ndef words(s):\n    return s.split()\n",
    ),
    ("calc/stats.py", STATS_GOOD),
    (
        "tests/test_arith.py",
        "import pytest\nfrom calc.arith import add, mul, div\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n\
         def test_mul():\n    assert mul(4, 5) == 20\n\n\nclass TestDiv:\n    def test_div(self):\n        \
         assert div(9, 3) == 3\n\n    def test_by_zero(self):\n        with pytest.raises(ZeroDivisionError):\n            \
         div(1, 0)\n",
    ),
    (
        "tests/test_text.py",
        "from calc.text import shout, words\n\n\ndef test_shout():\n    assert shout(\"hi\") == \"HI!\"\n\n\n\
         def test_words():\n    assert words(\"a b  c\") == [\"a\", \"b\", \"c\"]\n\n\n\
         def test_words_empty():\n    assert words(\"\") == []\n",
    ),
    (
        "tests/test_stats.py",
        "import pytest\nfrom calc.stats import mean, median\n\n\ndef test_mean():\n    assert mean([1, 2, 3]) == 2\n\n\n\
         def test_median_odd():\n    assert median([3, 1, 2]) == 2\n\n\ndef test_median_even():\n    \
         assert median([4, 1, 3, 2]) == 2.5\n\n\n@pytest.mark.parametrize(\"xs\", [[1], [2, 2], [5, 1, 5]])\n\
         def test_mean_bounds(xs):\n    assert min(xs) <= mean(xs) <= max(xs)\n\n\n\
         def test_median_single():\n    assert median([7]) == 7\n",
    ),
];

const STATS_GOOD: &str = "def mean(xs):\n    return sum(xs) / len(xs)\n\n\ndef median(xs):\n    \
    s = sorted(xs)\n    n = len(s)\n    mid = n // 2\n    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2\n";

/// The regression: `median` forgets to sort (the odd and even cases fail, one element passes).
const STATS_BROKEN: &str = "def mean(xs):\n    return sum(xs) / len(xs)\n\n\ndef median(xs):\n    \
    s = list(xs)\n    n = len(s)\n    mid = n // 2\n    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2\n";

const TESTS: usize = 14;
const MEDIAN_ODD: &str = "tests.test_stats::test_median_odd";
const MEDIAN_EVEN: &str = "tests.test_stats::test_median_even";

/// The commits after the first: what changes, and whether `median` is broken at it.
const COMMITS: &[(&str, Option<&str>)] = &[
    ("docs: a README", None),
    ("text: words keeps punctuation", None),
    (
        "stats: median without the sort (the regression)",
        Some(STATS_BROKEN),
    ),
    ("arith: a docstring", None),
    ("text: shout docstring", None),
    ("stats: sort again (the fix)", Some(STATS_GOOD)),
    ("arith: div message", None),
    ("text: comment", None),
    ("docs: changelog", None),
    ("arith: comment", None),
    ("docs: usage", None),
];

/// Commit `n` (1-based): the first writes the project, the others one change each.
fn commit(sb: &Sandbox, n: usize) {
    let dir = sb.path();
    if n == 1 {
        git(dir, &["init", "-q", "-b", "main"]);
        for (path, text) in FILES {
            sb.write(path, text);
        }
    } else {
        let (message, stats) = COMMITS[n - 2];
        match stats {
            Some(text) => {
                sb.write("calc/stats.py", text);
            }
            None => {
                let notes = dir.join("NOTES.md");
                let old = std::fs::read_to_string(&notes).unwrap_or_default();
                std::fs::write(&notes, format!("{old}- {message}\n")).expect("write notes");
                git(dir, &["add", "-f", "NOTES.md"]);
            }
        }
    }
    git(dir, &["add", "-A"]);
    let message = if n == 1 {
        "calc: first version"
    } else {
        COMMITS[n - 2].0
    };
    git(dir, &["commit", "-q", "-m", message]);
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the command starts")
}

/// `pytest --collect-only -q` as the README has it, summary line and all.
fn collect(sb: &Sandbox) -> String {
    let out = run(pytest()
        .current_dir(sb.path())
        .args(["--collect-only", "-q"]));
    assert!(out.status.success(), "collection: {}", stderr(&out));
    let listing = stdout(&out);
    assert!(
        listing.contains(&format!("{TESTS} tests collected")),
        "{listing}"
    );
    listing
}

/// The tests pytest ran, in the order its report lists them (the order it ran them).
fn ran_in_order(report: &Path) -> Vec<(String, Outcome)> {
    let attempts = junit::read_file(report, &Limits::default()).expect("pytest's report reads");
    attempts
        .into_iter()
        .map(|a| {
            let id = a.id();
            let outcome = if a.status.is_failure() {
                Outcome::Failed
            } else {
                Outcome::Passed
            };
            (id, outcome)
        })
        .collect()
}

/// One build the README's way: collect, plan (pytest syntax, 30%), pytest with the plan as an
/// args file, record, gate. Returns plan's stderr, pytest's order, the plan JSON and the
/// gate's output.
struct Build {
    plan_err: String,
    ran: Vec<(String, Outcome)>,
    plan: serde_json::Value,
    gate: Output,
}

fn build(sb: &Sandbox, n: usize) -> Build {
    commit(sb, n);
    sb.write("candidates.txt", collect(sb));
    let id = format!("b{n:02}");
    let plan = sb
        .fedtest()
        .args(["plan", "--tests", "candidates.txt", "--budget", "30%"])
        .args(["--build", &id, "--plan-file", "plan.json"])
        .output()
        .expect("plan runs");
    assert!(plan.status.success(), "plan {id}: {}", stderr(&plan));
    sb.write("selected.args", stdout(&plan));
    let report = sb.path().join("report.xml");
    let _ = std::fs::remove_file(&report);
    run(pytest()
        .current_dir(sb.path())
        .args(["-q", "-p", "no:cacheprovider", "--junitxml=report.xml"])
        .arg("@selected.args"));
    let ran = ran_in_order(&report);
    sb.fedtest()
        .args(["record", "--build", &id, "--junit", "report.xml"])
        .assert()
        .success();
    let gate =
        run(sb
            .std_fedtest()
            .args(["gate", "--junit", "report.xml", "--step-summary", "gate.md"]));
    let plan_json = std::fs::read_to_string(sb.path().join("plan.json")).expect("plan file");
    Build {
        plan_err: stderr(&plan),
        ran,
        plan: serde_json::from_str(&plan_json).expect("plan JSON"),
        gate,
    }
}

#[test]
fn issue_13_a_new_users_first_hour_with_pytest() {
    let sb = Sandbox::new();

    // Build one: no history yet. The pytest listing is read as node ids, its summary line is
    // left out (and said so), and the plan comes back in pytest's syntax: pytest runs it.
    let b = build(&sb, 1);
    assert!(
        b.plan_err.contains(&format!(
            "left out 1 candidate line that is no test id: \"{TESTS} tests collected in"
        )),
        "{}",
        b.plan_err
    );
    assert_eq!(b.ran.len(), TESTS, "pytest ran the whole plan: {:?}", b.ran);
    assert_eq!(
        b.plan["candidates"]["pytest_node_ids"], TESTS,
        "{:#}",
        b.plan
    );
    assert_eq!(b.plan["candidates"]["not_test_ids"], 1, "{:#}", b.plan);
    assert!(b.gate.status.success(), "{}", stderr(&b.gate));

    // From the second build the listing matches the recorded JUnit ids.
    let b = build(&sb, 2);
    assert_eq!(b.plan["candidates"]["known"], TESTS, "{:#}", b.plan);
    assert!(
        b.plan_err.contains(&format!(
            "read {TESTS} candidates as pytest node ids ({TESTS} of them known to the history)"
        )),
        "{}",
        b.plan_err
    );
    assert!(
        b.plan_err.contains("cold start: deselecting waits for"),
        "the plan says what deselection waits for: {}",
        b.plan_err
    );

    // The regression: the build goes red, with every test run.
    let _ = build(&sb, 3);
    let b = build(&sb, 4);
    let failed: Vec<&str> = b
        .ran
        .iter()
        .filter(|(_, o)| *o == Outcome::Failed)
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(failed.len(), 2, "{:?}", b.ran);
    assert_eq!(b.gate.status.code(), Some(10), "{}", stderr(&b.gate));

    // Still a cold start — nothing is deselected — but the order reaches pytest: the two
    // tests that failed run first, though pytest lists them 6th and 7th.
    let b = build(&sb, 5);
    assert!(
        b.plan["full_run"]
            .as_str()
            .is_some_and(|w| w.starts_with("cold start")),
        "{:#}",
        b.plan
    );
    assert_eq!(b.ran.len(), TESTS);
    let first: Vec<&str> = b.ran.iter().take(2).map(|(id, _)| id.as_str()).collect();
    assert!(
        first.contains(&MEDIAN_ODD) && first.contains(&MEDIAN_EVEN),
        "the likeliest failures did not run first: {:?}",
        b.ran
    );

    // Red once more; then fixed, and quiet builds until the history holds the evidence
    // deselection waits for (6 failures in 3 of 7 builds, for a suite of 14).
    let b = build(&sb, 6);
    assert_eq!(b.gate.status.code(), Some(10), "{}", stderr(&b.gate));
    let mut subset = None;
    for n in 7..=11 {
        let b = build(&sb, n);
        assert!(b.gate.status.success(), "build {n}: {}", stderr(&b.gate));
        if b.plan["deselected"].as_u64().unwrap_or(0) > 0 {
            subset = Some((n, b));
            break;
        }
    }
    let (n, b) = subset.expect("by build 11 the plan deselects tests");
    let deselected = b.plan["deselected"].as_u64().unwrap() as usize;
    assert_eq!(b.ran.len() + deselected, TESTS, "build {n}: {:?}", b.ran);
    // The plan, the data dir and the gate all say what did not run.
    assert!(
        b.plan_err
            .contains(&format!("{deselected} deselected by fedtest")),
        "{}",
        b.plan_err
    );
    let listed = std::fs::read_to_string(sb.data_dir().join("deselected.txt")).expect("the list");
    assert_eq!(listed.lines().count(), deselected, "{listed}");
    let gate = stdout(&b.gate);
    assert!(
        gate.contains(&format!(
            "gate: passed: green on {} of {TESTS} tests; {deselected} deselected by fedtest did not run",
            TESTS - deselected
        )),
        "{gate}"
    );
    assert!(gate.contains("last full run: build b"), "{gate}");
    let summary = std::fs::read_to_string(sb.path().join("gate.md")).expect("gate summary");
    assert!(summary.contains("green on"), "{summary}");

    // `fedtest run` without a candidate list asks pytest for its tests, lists what it
    // deselects, and says the green build is green on a subset — in its log and its summary.
    commit(&sb, 12);
    let out = run(sb
        .std_fedtest()
        .args([
            "run",
            "--runner",
            "pytest",
            "--budget",
            "30%",
            "--build",
            "b12",
            "--junit",
            "report.xml",
            "--step-summary",
            "run.md",
            "--",
            "python3",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--junitxml=report.xml",
        ])
        .env("PYTHONDONTWRITEBYTECODE", "1"));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("candidates: the {TESTS} tests")),
        "{err}"
    );
    assert!(
        err.contains("deselected by fedtest (not run): tests."),
        "{err}"
    );
    assert!(
        err.contains(" tests; ") && err.contains("green on "),
        "{err}"
    );
    let summary = std::fs::read_to_string(sb.path().join("run.md")).expect("run summary");
    assert!(summary.contains("deselected by fedtest**"), "{summary}");
    assert!(summary.contains("green on "), "{summary}");
}
