//! The whole analysis on small real git repositories, one per language: a base commit, a
//! change to one function, the tests asked about by the ids their runners report.

use std::path::Path;
use std::process::Command;

use super::*;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// A repository with `base` committed, then `change` committed on top.
fn repo(base: &[(&str, &str)], change: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    write(dir.path(), base);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "base"]);
    write(dir.path(), change);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "change"]);
    dir
}

fn run(dir: &Path, changed: &[&str], tests: &[&str]) -> Result<Analysis, Unavailable> {
    let data = tempfile::tempdir().unwrap();
    let changed: Vec<String> = changed.iter().map(|s| (*s).to_owned()).collect();
    analyse(&Input {
        dir,
        data_dir: data.path(),
        base: None,
        changed_files: &changed,
        tests,
        remember_tree: false,
    })
}

const INVOICE: &str = "class Invoice:
    def __init__(self, lines):
        self.lines = lines

    def tax(self):
        return sum(self.lines) * 0.2

    def total(self):
        return sum(self.lines) + self.tax()
";

#[test]
fn python_fixture_repository() {
    let dir = repo(
        &[
            ("invoicekit/invoice.py", INVOICE),
            (
                "invoicekit/csv_export.py",
                "def csv_totals(inv):\n    return str(inv.total())\n",
            ),
            (
                "tests/conftest.py",
                "import pytest\nfrom invoicekit.invoice import Invoice\n\n@pytest.fixture\ndef invoice():\n    return Invoice([1, 2])\n",
            ),
            (
                "tests/test_csv_export.py",
                "from invoicekit.csv_export import csv_totals\n\ndef test_csv_totals(invoice):\n    assert csv_totals(invoice) == '3.6'\n\ndef test_header():\n    assert 'a,b'\n",
            ),
        ],
        &[("invoicekit/invoice.py", &INVOICE.replace("* 0.2", "* 0.25"))],
    );
    let a = run(
        dir.path(),
        &["invoicekit/invoice.py"],
        &[
            "tests.test_csv_export::test_csv_totals",
            "tests/test_csv_export.py::test_header",
        ],
    )
    .unwrap();
    assert_eq!(a.changed.len(), 1);
    assert_eq!(a.changed[0].qual, "Invoice.tax");
    let r = &a.tests["tests.test_csv_export::test_csv_totals"];
    // csv_totals → total → tax from the body; the fixture builds an Invoice but calls no tax.
    assert_eq!(r.hops, Some(3));
    assert_eq!(
        r.chain.as_deref(),
        Some("calls `csv_totals` → `total` → `Invoice.tax` ← changed in invoicekit/invoice.py:6")
    );
    let r = &a.tests["tests/test_csv_export.py::test_header"];
    assert!(r.located && r.hops.is_none());
    assert_eq!(a.parsed, a.files);
}

#[test]
fn javascript_and_typescript_fixture_repository() {
    let dir = repo(
        &[
            (
                "src/cart.ts",
                "export class Cart {\n  items: number[] = [];\n  total(): number {\n    return sum(this.items);\n  }\n}\nexport function sum(xs: number[]): number {\n  return xs.reduce((a, b) => a + b, 0);\n}\n",
            ),
            (
                "src/format.js",
                "function price(n) {\n  return '$' + n;\n}\nmodule.exports = { price };\n",
            ),
            (
                "test/cart.test.ts",
                "import { Cart } from '../src/cart';\ndescribe('cart', () => {\n  let cart: Cart;\n  beforeEach(() => { cart = new Cart(); });\n  it('totals', () => {\n    expect(cart.total()).toBe(0);\n  });\n});\n",
            ),
            (
                "test/format.test.js",
                "const { price } = require('../src/format');\ntest('price', () => {\n  expect(price(1)).toBe('$1');\n});\n",
            ),
        ],
        &[(
            "src/cart.ts",
            "export class Cart {\n  items: number[] = [];\n  total(): number {\n    return sum(this.items);\n  }\n}\nexport function sum(xs: number[]): number {\n  return xs.reduce((a, b) => a + b, 1);\n}\n",
        )],
    );
    let a = run(
        dir.path(),
        &["src/cart.ts"],
        &[
            "test/cart.test.ts::cart totals",
            "test/format.test.js::price",
        ],
    )
    .unwrap();
    assert_eq!(a.changed[0].qual, "sum");
    let r = &a.tests["test/cart.test.ts::cart totals"];
    assert_eq!(r.hops, Some(2));
    assert_eq!(
        r.chain.as_deref(),
        Some("calls `total` → `sum` ← changed in src/cart.ts:8")
    );
    let r = &a.tests["test/format.test.js::price"];
    assert!(r.located && r.hops.is_none());
}

#[test]
fn go_fixture_repository() {
    let shop = "package shop\n\ntype Cart struct{ Items []int }\n\nfunc (c *Cart) Total() int {\n\treturn Sum(c.Items)\n}\n\nfunc Sum(xs []int) int {\n\tt := 0\n\tfor _, x := range xs {\n\t\tt += x\n\t}\n\treturn t\n}\n\nfunc Name() string { return \"shop\" }\n";
    let dir = repo(
        &[
            ("shop/shop.go", shop),
            (
                "shop/shop_test.go",
                "package shop\n\nimport \"testing\"\n\nfunc TestTotal(t *testing.T) {\n\tif (&Cart{Items: []int{1}}).Total() != 1 {\n\t\tt.Fatal(\"total\")\n\t}\n}\n\nfunc TestName(t *testing.T) {\n\tif Name() != \"shop\" {\n\t\tt.Fatal(\"name\")\n\t}\n}\n",
            ),
        ],
        &[("shop/shop.go", &shop.replace("t += x", "t += 2 * x"))],
    );
    let a = run(
        dir.path(),
        &["shop/shop.go"],
        &[
            "example.com/m/shop::TestTotal",
            "example.com/m/shop::TestName",
        ],
    )
    .unwrap();
    assert_eq!(a.changed[0].qual, "Sum");
    assert_eq!(a.tests["example.com/m/shop::TestTotal"].hops, Some(2));
    assert_eq!(a.tests["example.com/m/shop::TestName"].hops, None);
    assert!(a.tests["example.com/m/shop::TestName"].located);
}

#[test]
fn unsupported_or_unknown_changes_are_reasons_not_failures() {
    let dir = repo(&[("README.md", "a\n")], &[("README.md", "b\n")]);
    assert!(matches!(
        run(dir.path(), &["README.md"], &[]),
        Err(Unavailable::NoSupportedChange)
    ));
    // A changed file the diff from HEAD~1 does not show, and no recorded tree to compare with.
    assert!(matches!(
        run(dir.path(), &["src/x.py"], &[]),
        Err(Unavailable::NoDiff(_))
    ));
    let plain = tempfile::tempdir().unwrap();
    assert!(matches!(
        run(plain.path(), &["x.py"], &[]),
        Err(Unavailable::NoDiff(_))
    ));
}

#[test]
fn a_bare_tree_is_compared_with_the_last_recorded_one() {
    // No git at all (a replay's checkout, a source tarball): record remembers the tree, the
    // next build's changed files are compared with it definition by definition.
    let tree = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    write(
        tree.path(),
        &[
            ("pkg/invoice.py", INVOICE),
            (
                "tests/test_invoice.py",
                "def test_tax():\n    assert Invoice([1]).tax()\n\ndef test_lines():\n    assert Invoice([1]).lines\n",
            ),
            ("node_modules/x/index.js", "function tax() {}\n"),
        ],
    );
    let changed = vec!["pkg/invoice.py".to_owned()];
    let tests = [
        "tests/test_invoice.py::test_tax",
        "tests/test_invoice.py::test_lines",
    ];
    let input = |remember_tree| Input {
        dir: tree.path(),
        data_dir: data.path(),
        base: None,
        changed_files: &changed,
        tests: &tests,
        remember_tree,
    };
    assert!(matches!(analyse(&input(true)), Err(Unavailable::NoDiff(_))));
    write(
        tree.path(),
        &[("pkg/invoice.py", &INVOICE.replace("* 0.2", "* 0.25"))],
    );
    // A plan does not move the recorded tree: its record still compares with the old one.
    for remember in [false, true] {
        let a = analyse(&input(remember)).unwrap();
        assert!(matches!(a.source, ChangeSource::LastRecorded { .. }));
        let quals: Vec<&str> = a.changed.iter().map(|c| c.qual.as_str()).collect();
        assert_eq!(quals, ["Invoice.tax"]);
        assert_eq!(a.tests["tests/test_invoice.py::test_tax"].hops, Some(1));
        assert_eq!(a.tests["tests/test_invoice.py::test_lines"].hops, None);
        // node_modules is not the project's code.
        assert_eq!(a.files, 2);
    }
    // Recorded: the next build compares with this tree, where nothing changed since.
    let a = analyse(&input(false)).unwrap();
    assert!(a.changed.is_empty());
    // A record whose build changed no code still remembers its tree.
    write(
        tree.path(),
        &[("pkg/invoice.py", &INVOICE.replace("* 0.2", "* 0.3"))],
    );
    let docs = vec!["README.md".to_owned()];
    let recorded = Input {
        changed_files: &docs,
        ..input(true)
    };
    assert!(matches!(
        analyse(&recorded),
        Err(Unavailable::NoSupportedChange)
    ));
    let a = analyse(&input(false)).unwrap();
    assert!(a.changed.is_empty());
}

#[test]
fn a_warm_cache_parses_nothing() {
    let dir = repo(
        &[("a.py", "def f():\n    return 1\n")],
        &[("a.py", "def f():\n    return 2\n")],
    );
    // A data dir no record has made yet (a first plan): the cache creates it.
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("not-yet");
    let changed = vec!["a.py".to_owned()];
    let input = Input {
        dir: dir.path(),
        data_dir: &data_dir,
        base: None,
        changed_files: &changed,
        tests: &[],
        remember_tree: false,
    };
    assert_eq!(analyse(&input).unwrap().parsed, 1);
    assert_eq!(analyse(&input).unwrap().parsed, 0);
}
