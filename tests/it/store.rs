//! The history store under stress: corrupt files, a broken model, concurrent writers.

use std::process::Stdio;

use predicates::prelude::*;

use crate::util::{History, Junit, Sandbox, stderr, stdout};

const IDS: &[&str] = &["suite.A::one", "suite.A::two", "suite.B::three"];

fn report() -> Junit {
    Junit::new()
        .pass("suite.A::one", 0.5)
        .fail("suite.A::two", 1.0)
        .pass("suite.B::three", 0.2)
}

/// Recording into a store that is not one must fail with exit 4, say "corrupt", and leave the
/// file exactly as it was: it may be someone's only copy of their history.
fn assert_record_refuses_store(sb: &Sandbox) {
    let before = sb.data_dir_state();
    let path = sb.write("reports/b9.xml", report().to_xml());
    sb.fedtest()
        .args(["record", "--build", "b9", "--junit"])
        .arg(path)
        .assert()
        .code(4)
        .stderr(
            predicate::str::contains("corrupt").and(predicate::str::contains("history.sqlite")),
        );
    assert_eq!(sb.data_dir_state(), before, "the store was modified");
}

/// Planning with a broken store is fedtest's own trouble: warn, run every candidate, exit 0.
fn assert_plan_falls_back(sb: &Sandbox) {
    sb.write_tests("tests.txt", IDS);
    let before = sb.data_dir_state();
    let out = sb
        .fedtest()
        .args(["plan", "--tests", "tests.txt", "--budget", "10%"])
        .assert()
        .success()
        .stderr(predicate::str::contains("fedtest: warning:"))
        .get_output()
        .clone();
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines, IDS, "stderr: {}", stderr(&out));
    assert_eq!(sb.data_dir_state(), before, "plan modified the store");
}

#[test]
fn garbage_store_is_reported_and_never_overwritten() {
    let sb = Sandbox::new();
    let garbage: Vec<u8> = b"this is not an SQLite database, but it is somebody's file\n"
        .iter()
        .copied()
        .cycle()
        .take(8192)
        .collect();
    sb.write("data/history.sqlite", &garbage);
    assert_record_refuses_store(&sb);
    assert_eq!(std::fs::read(sb.store_path()).unwrap(), garbage);
    assert_plan_falls_back(&sb);
    assert_eq!(std::fs::read(sb.store_path()).unwrap(), garbage);
}

#[test]
fn store_with_corrupt_pages_is_reported_and_never_overwritten() {
    let sb = Sandbox::new();
    History::record(&sb, 3);
    sb.data_dir_state().assert_quiescent();
    // Keep the header page (so the file still looks like a fedtest store) and scribble over
    // every page after it.
    let mut bytes = std::fs::read(sb.store_path()).unwrap();
    let page = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    assert!(bytes.len() > 2 * page, "store has a single page");
    for (i, b) in bytes[page..].iter_mut().enumerate() {
        *b = (i * 7 + 13) as u8;
    }
    std::fs::write(sb.store_path(), &bytes).unwrap();
    assert_record_refuses_store(&sb);
    assert_plan_falls_back(&sb);
}

#[test]
fn sqlite_file_of_another_program_is_refused() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.data_dir()).unwrap();
    {
        let conn = rusqlite::Connection::open(sb.store_path()).unwrap();
        conn.execute_batch("CREATE TABLE invoices(id INTEGER PRIMARY KEY, total REAL);")
            .unwrap();
    }
    assert_record_refuses_store(&sb);
    assert_plan_falls_back(&sb);
}

#[test]
fn corrupt_model_falls_back_with_a_warning() {
    let sb = Sandbox::new();
    History::record(&sb, History::BUILDS);
    assert!(sb.model_path().exists(), "no local model was trained");
    std::fs::write(sb.model_path(), "{\"schema\": 1, \"weights\": [").unwrap();
    let ids = History::ids();
    let candidates: Vec<&str> = ids.iter().map(String::as_str).collect();
    sb.write_tests("tests.txt", &candidates);
    let out = sb
        .fedtest()
        .args(["plan", "--tests", "tests.txt", "--budget", "30%"])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("fedtest: warning:")
                .and(predicate::str::contains("model.json")),
        )
        .get_output()
        .clone();
    let mut lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    lines.sort_unstable();
    let mut expected = candidates.clone();
    expected.sort_unstable();
    assert_eq!(lines, expected);

    // `model` warns too and shows the prior instead of failing.
    sb.fedtest()
        .arg("model")
        .assert()
        .success()
        .stderr(predicate::str::contains("fedtest: warning:"))
        .stdout(predicate::str::contains("built-in prior"));
}

/// `PRAGMA integrity_check`, the number of builds and the number of known tests, read
/// directly with SQLite.
fn integrity(sb: &Sandbox) -> (String, i64, i64) {
    let conn = rusqlite::Connection::open(sb.store_path()).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    (check, count("builds"), count("tests"))
}

/// Start `record` for each build at once and wait for all of them.
fn race(sb: &Sandbox, builds: &[&str]) {
    let children: Vec<_> = builds
        .iter()
        .map(|b| {
            let report = sb.write(
                &format!("reports/{b}.xml"),
                Junit::generated(&format!("race.{b}"), 30, |i| {
                    let outcome = if i.is_multiple_of(7) {
                        crate::util::Outcome::Fail
                    } else {
                        crate::util::Outcome::Pass
                    };
                    (outcome, 0.1 * i as f64)
                })
                .pass("shared::common", 0.3)
                .to_xml(),
            );
            sb.std_fedtest()
                .args(["record", "--build", b, "--junit"])
                .arg(report)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn fedtest")
        })
        .collect();
    for (child, b) in children.into_iter().zip(builds) {
        let out = child.wait_with_output().expect("wait for fedtest");
        assert!(
            out.status.success(),
            "record {b} failed: {:?}\n{}",
            out.status,
            stderr(&out)
        );
    }
}

#[test]
fn concurrent_records_both_land() {
    for round in 0..5 {
        // A new store each round: the race includes creating the schema.
        let sb = Sandbox::new();
        race(&sb, &["x1", "x2"]);
        // 30 tests of each build, plus one they share.
        assert_eq!(integrity(&sb), ("ok".to_owned(), 2, 61), "round {round}");
        // And on the now existing store.
        race(&sb, &["x3", "x4"]);
        assert_eq!(integrity(&sb), ("ok".to_owned(), 4, 121), "round {round}");
        assert_eq!(sb.eval_json()["builds"], 4, "round {round}");
        sb.data_dir_state().assert_quiescent();
    }
}
