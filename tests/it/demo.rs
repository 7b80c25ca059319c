//! `fedtest demo` (issue 13): the report says what every number is, states a miss plainly,
//! uses no model jargon, and ends with the confidence curve. A snapshot keeps the whole text
//! deterministic.

use crate::util::{Sandbox, stdout};

#[test]
fn issue_13_the_demo_explains_every_number_and_ends_with_the_curve() {
    let sb = Sandbox::new();
    let out = sb
        .fedtest()
        .arg("demo")
        .assert()
        .success()
        .get_output()
        .clone();
    let text = stdout(&out);
    // Paragraphs are wrapped: phrases are looked for in the text with its lines joined.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // The budget is time, not tests, and says so.
    assert!(
        flat.contains("30% of the estimated test time, not 30% of the tests"),
        "{text}"
    );
    // Every failing build, and a miss stated plainly: the build still went red, and why.
    assert!(
        text.contains("  build  tests  failed  first failure"),
        "{text}"
    );
    // Issue 15: build 39 changes `invoice.py`; both of its failures run at 30%, and the report
    // says how the change reached them (before the symbol-level analysis, `test_csv_totals`
    // ranked 99th and was deselected).
    assert!(
        flat.contains("The newest failing build, 39") && flat.contains("Nothing was missed."),
        "{text}"
    );
    for id in [
        "tests.test_csv_export::test_csv_totals",
        "tests.test_invoice.TestInvoice::test_tax_rounded_on_subtotal",
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("39") && l.contains(id))
            .unwrap_or_else(|| panic!("no chain for {id} in {text}"));
        assert!(
            line.contains(", ran): calls `")
                && line.contains("← changed in src/invoicekit/invoice.py:"),
            "{line}"
        );
    }
    // The build shown in detail caught every failure, the first near the top.
    assert!(
        flat.contains("so the build went red as it should"),
        "{text}"
    );
    // No feature names, no APFD.
    for jargon in ["_logit", "APFD", "decayed_failures", "path_similarity"] {
        assert!(!text.contains(jargon), "{jargon} in {text}");
    }
    // It ends with the confidence curve.
    let curve = text.find("Confidence curve").expect("the curve");
    assert!(text[..curve].contains("On your project"), "{text}");
    assert!(
        text.trim_end()
            .lines()
            .last()
            .is_some_and(|l| l.contains("a build") || l.contains("a week")),
        "{text}"
    );
    crate::util::tmp_redacted_settings(&sb).bind(|| insta::assert_snapshot!("demo", text));
}
