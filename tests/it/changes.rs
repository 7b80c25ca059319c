//! Symbol-level change analysis in `plan` (issue 15): a real git repository in the sandbox,
//! a change to one method, the plan ranking the tests whose code reaches it and saying how.

use crate::util::{Junit, Sandbox, planned, planned_test, stderr};

fn git(sb: &Sandbox, args: &[&str]) {
    crate::util::git(sb.path(), args);
}

fn commit(sb: &Sandbox, message: &str) {
    git(
        sb,
        &["add", "-A", "--", ".", ":!data", ":!reports", ":!*.txt"],
    );
    git(sb, &["commit", "-q", "-m", message]);
}

const INVOICE: &str = "class Invoice:
    def __init__(self, lines):
        self.lines = lines

    def tax(self):
        return sum(self.lines) * 0.2

    def total(self):
        return sum(self.lines) + self.tax()
";

const IDS: &[&str] = &[
    "tests.test_invoice::test_tax",
    "tests.test_csv_export::test_csv_totals",
    "tests.test_csv_export::test_header",
    "tests.test_names::test_slug",
];

/// A small Python project with a history of passing builds.
fn project() -> Sandbox {
    let sb = Sandbox::new();
    git(&sb, &["init", "-q", "-b", "main"]);
    sb.write("invoicekit/__init__.py", "");
    sb.write("invoicekit/invoice.py", INVOICE);
    sb.write(
        "invoicekit/csv_export.py",
        "def csv_totals(inv):\n    return str(inv.total())\n\ndef header():\n    return 'a,b'\n",
    );
    sb.write(
        "invoicekit/names.py",
        "def slug(s):\n    return s.lower()\n",
    );
    sb.write(
        "tests/conftest.py",
        "import pytest\nfrom invoicekit.invoice import Invoice\n\n@pytest.fixture\ndef invoice():\n    return Invoice([1, 2])\n",
    );
    sb.write(
        "tests/test_invoice.py",
        "from invoicekit.invoice import Invoice\n\ndef test_tax():\n    assert Invoice([10]).tax() == 2\n",
    );
    sb.write(
        "tests/test_csv_export.py",
        "from invoicekit.csv_export import csv_totals, header\n\ndef test_csv_totals(invoice):\n    assert csv_totals(invoice) == '3.6'\n\ndef test_header():\n    assert header() == 'a,b'\n",
    );
    sb.write(
        "tests/test_names.py",
        "from invoicekit.names import slug\n\ndef test_slug():\n    assert slug('A') == 'a'\n",
    );
    commit(&sb, "base");
    for b in 1..=3 {
        let report = IDS.iter().fold(Junit::new(), |j, id| j.pass(id, 1.0));
        sb.record(&format!("b{b}"), &report);
    }
    sb
}

fn explain(sb: &Sandbox, changed: &[&str]) -> (String, serde_json::Value) {
    sb.write_tests("candidates.txt", IDS);
    sb.write_tests("changed.txt", changed);
    let out = sb
        .fedtest()
        .args(["plan", "--tests", "candidates.txt", "--changed-files"])
        .arg("changed.txt")
        .args(["--explain", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let plan = serde_json::from_slice(&out.stdout).expect("json");
    // --explain's text goes to stderr beside a JSON plan only in the text formats: ask again.
    let out = sb
        .fedtest()
        .args(["plan", "--tests", "candidates.txt", "--changed-files"])
        .arg("changed.txt")
        .arg("--explain")
        .assert()
        .success()
        .get_output()
        .clone();
    (stderr(&out), plan)
}

#[test]
fn tests_reaching_a_changed_method_rank_first_and_say_how() {
    let sb = project();
    sb.write("invoicekit/invoice.py", INVOICE.replace("* 0.2", "* 0.25"));
    commit(&sb, "raise the tax");
    let (text, plan) = explain(&sb, &["invoicekit/invoice.py"]);
    let order: Vec<String> = planned(&plan).into_iter().map(|(id, ..)| id).collect();
    assert_eq!(
        order[..2],
        [
            "tests.test_invoice::test_tax",
            "tests.test_csv_export::test_csv_totals"
        ],
        "{plan:#}"
    );
    assert_eq!(
        planned_test(&plan, "tests.test_invoice::test_tax")["change_chain"],
        "calls `Invoice.tax` ← changed in invoicekit/invoice.py:6"
    );
    assert_eq!(
        planned_test(&plan, "tests.test_csv_export::test_csv_totals")["change_chain"],
        "calls `csv_totals` → `total` → `Invoice.tax` ← changed in invoicekit/invoice.py:6"
    );
    assert!(planned_test(&plan, "tests.test_names::test_slug")["change_chain"].is_null());
    assert!(
        text.contains("symbol-level change analysis: 1 changed definition: `Invoice.tax` (invoicekit/invoice.py:6)"),
        "{text}"
    );
    assert!(
        text.contains("calls `Invoice.tax` ← changed in invoicekit/invoice.py:6"),
        "{text}"
    );
    // The parse cache is in the data dir, keyed by blob id.
    assert!(sb.data_dir().join("symbols.json").is_file());
}

#[test]
fn a_fixture_that_builds_a_changed_class_counts() {
    let sb = project();
    sb.write(
        "invoicekit/invoice.py",
        INVOICE.replace("self.lines = lines", "self.lines = list(lines)"),
    );
    commit(&sb, "copy the lines");
    let (_, plan) = explain(&sb, &["invoicekit/invoice.py"]);
    assert_eq!(
        planned_test(&plan, "tests.test_csv_export::test_csv_totals")["change_chain"],
        "its fixture `invoice` calls `Invoice.__init__` ← changed in invoicekit/invoice.py:3"
    );
}

#[test]
fn no_analysis_is_a_note_never_a_failed_plan() {
    let sb = project();
    // An unsupported language.
    sb.write("README.md", "docs\n");
    commit(&sb, "docs");
    let (text, plan) = explain(&sb, &["README.md"]);
    assert_eq!(planned(&plan).len(), IDS.len());
    assert!(
        text.contains(
            "symbol-level change analysis off (no changed file is in a language the analysis reads"
        ),
        "{text}"
    );
    // A file that does not parse: its symbols are left out, the rest still counts.
    sb.write("invoicekit/names.py", "def slug(s:\n    return s.lower(\n");
    sb.write("invoicekit/invoice.py", INVOICE.replace("* 0.2", "* 0.3"));
    commit(&sb, "broken");
    let (text, plan) = explain(&sb, &["invoicekit/names.py", "invoicekit/invoice.py"]);
    assert!(
        text.contains("invoicekit/names.py did not parse cleanly; its symbols are left out"),
        "{text}"
    );
    assert_eq!(
        planned(&plan)[0].0,
        "tests.test_invoice::test_tax",
        "{plan:#}"
    );
    // Outside a git checkout: no diff.
    let plain = Sandbox::new();
    plain.write_tests("candidates.txt", IDS);
    plain.write_tests("changed.txt", &["invoicekit/invoice.py"]);
    let out = plain
        .fedtest()
        .args(["plan", "--tests", "candidates.txt", "--changed-files"])
        .arg("changed.txt")
        .arg("--explain")
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        stderr(&out).contains("symbol-level change analysis off (the changed lines are unknown"),
        "{}",
        stderr(&out)
    );
}
