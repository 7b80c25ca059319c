//! Tests for the JUnit reader: one per real fixture (expected results as listed in
//! `tests/fixtures/junit/README.md`), the bad inputs, and property tests.

use std::fs;
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use proptest::prelude::*;

use super::reader::parse_time;
use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/junit");

use Outcome::{Failed as F, Flaky as K, Passed as P, Skipped as S};

fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

fn read_fixture(rel: &str) -> Vec<TestCase> {
    let path = fixture(rel);
    let attempts = read_file(&path, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    group(attempts)
}

/// Asserts the exact list of (id, outcome, attempts, failed attempts), in report order.
fn check(rel: &str, expected: &[(&str, Outcome, u32, u32)]) -> Vec<TestCase> {
    let cases = read_fixture(rel);
    let got: Vec<(String, Outcome, u32, u32)> = cases
        .iter()
        .map(|c| (c.id.clone(), c.outcome, c.attempts, c.failed_attempts))
        .collect();
    let want: Vec<(String, Outcome, u32, u32)> = expected
        .iter()
        .map(|&(id, o, a, f)| (id.to_owned(), o, a, f))
        .collect();
    assert_eq!(got, want, "{rel}");
    for c in &cases {
        assert!(c.duration.is_finite() && c.duration >= 0.0, "{rel}: {c:?}");
        assert_eq!(c.id, model::test_id(&c.classname, &c.name));
    }
    cases
}

fn parse(xml: &str) -> Result<Vec<Attempt>, JunitError> {
    read_from(
        Cursor::new(xml.as_bytes()),
        "reports/a.xml",
        &Limits::default(),
    )
}

fn parse_bytes(xml: &[u8]) -> Result<Vec<Attempt>, JunitError> {
    read_from(Cursor::new(xml), "reports/a.xml", &Limits::default())
}

fn outcomes(xml: &str) -> Vec<(String, Outcome, u32, u32)> {
    group(parse(xml).unwrap_or_else(|e| panic!("{e}")))
        .into_iter()
        .map(|c| (c.id, c.outcome, c.attempts, c.failed_attempts))
        .collect()
}

fn err(xml: &str) -> JunitError {
    match parse(xml) {
        Ok(a) => panic!("expected an error, got {a:?}"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------- real fixtures

#[test]
fn fixture_pytest_xunit1() {
    let cases = check(
        "pytest/xunit1.xml",
        &[
            ("test_sample::test_passes", P, 1, 0),
            ("test_sample::test_passes_too", P, 1, 0),
            ("test_sample::test_fails", F, 1, 1),
            ("test_sample::test_errors", F, 1, 1),
            ("test_sample::test_skipped", S, 1, 0),
            ("test_sample::test_param[1]", P, 1, 0),
            ("test_sample::test_param[2]", P, 1, 0),
            (
                "test_sample::test_param[with space [x] 'q' \"dq\" \\xfc]",
                F,
                1,
                1,
            ),
            ("test_sample::test_ünïcode_名前", P, 1, 0),
            ("test_sample::test_flaky", F, 1, 1),
            ("test_sample.TestGroup::test_method", P, 1, 0),
        ],
    );
    assert!(
        cases
            .iter()
            .all(|c| c.file.as_deref() == Some("test_sample.py"))
    );
    // `line` places `gate`'s annotations.
    let line = |id: &str| cases.iter().find(|c| c.id == id).and_then(|c| c.line);
    assert_eq!(line("test_sample::test_fails"), Some(14));
    assert_eq!(line("test_sample::test_param[2]"), Some(32));
}

#[test]
fn fixture_pytest_xunit2() {
    let cases = check(
        "pytest/xunit2.xml",
        &[
            ("test_sample::test_passes", P, 1, 0),
            ("test_sample::test_passes_too", P, 1, 0),
            ("test_sample::test_fails", F, 1, 1),
            ("test_sample::test_errors", F, 1, 1),
            ("test_sample::test_skipped", S, 1, 0),
            ("test_sample::test_param[1]", P, 1, 0),
            ("test_sample::test_param[2]", P, 1, 0),
            (
                "test_sample::test_param[with space [x] 'q' \"dq\" \\xfc]",
                F,
                1,
                1,
            ),
            ("test_sample::test_ünïcode_名前", P, 1, 0),
            ("test_sample::test_flaky", F, 1, 1),
            ("test_sample.TestGroup::test_method", P, 1, 0),
        ],
    );
    // xunit2 has no `file` attribute.
    assert!(cases.iter().all(|c| c.file.is_none()));
}

#[test]
fn fixture_pytest_rerunfailures() {
    check(
        "pytest/reruns.xml",
        &[
            ("test_sample::test_passes", P, 1, 0),
            ("test_sample::test_passes_too", P, 1, 0),
            ("test_sample::test_fails", F, 3, 3),
            ("test_sample::test_errors", F, 3, 3),
            ("test_sample::test_skipped", S, 1, 0),
            ("test_sample::test_param[1]", P, 1, 0),
            ("test_sample::test_param[2]", P, 1, 0),
            (
                "test_sample::test_param[with space [x] 'q' \"dq\" \\xfc]",
                F,
                3,
                3,
            ),
            ("test_sample::test_ünïcode_名前", P, 1, 0),
            ("test_sample::test_flaky", K, 2, 1),
            ("test_sample.TestGroup::test_method", P, 1, 0),
        ],
    );
}

#[test]
fn fixture_nextest() {
    let cases = check(
        "nextest/junit.xml",
        &[
            ("sample::tests::flaky_then_passes", K, 2, 1),
            ("sample::tests::nested::in_module", P, 1, 0),
            ("sample::tests::fails_every_time", F, 3, 3),
            ("sample::tests::passes", P, 1, 0),
            ("sample::tests::passes_too", P, 1, 0),
            ("sample::tests::ünïcode_名前", P, 1, 0),
            ("sample::tests::panics", F, 3, 3),
        ],
    );
    // nextest times each retry: the flaky test's duration includes its failed try.
    let flaky = &cases[0];
    let row_time = 0.007;
    assert!(flaky.duration > row_time, "{flaky:?}");
}

#[test]
fn fixture_jest_junit() {
    let cases = check(
        "jest-junit/jest-junit.xml",
        &[
            ("math passes::math passes", P, 1, 0),
            ("math passes too::math passes too", P, 1, 0),
            ("math fails every time::math fails every time", F, 1, 1),
            ("math throws::math throws", F, 1, 1),
            ("math skipped::math skipped", S, 1, 0),
            // jest-junit writes test.todo as an empty (passing) row.
            ("math todo later::math todo later", P, 1, 0),
            ("math param 1::math param 1", P, 1, 0),
            ("math param 2::math param 2", P, 1, 0),
            ("math param 3::math param 3", F, 1, 1),
            (
                "math name with spaces [brackets] 'single' \"double\" ünïcode 名前::\
                 math name with spaces [brackets] 'single' \"double\" ünïcode 名前",
                P,
                1,
                0,
            ),
            // jest.retryTimes: jest-junit reports only the final, passing try.
            ("math flaky then passes::math flaky then passes", P, 1, 0),
            // jest-junit's classname is " top level" (leading space), trimmed.
            ("top level::top level", P, 1, 0),
            // A suite that failed to load is written twice, as <error> and as <failure>.
            ("Test suite failed to run::broken.test.js", F, 2, 2),
        ],
    );
    assert_eq!(cases[0].file.as_deref(), Some("sample.test.js"));
    assert_eq!(cases[12].file.as_deref(), Some("broken.test.js"));
}

#[test]
fn fixture_node_test() {
    check(
        "node-test/node-test.xml",
        &[
            ("math::passes", P, 1, 0),
            ("math::fails", F, 1, 1),
            ("math::throws", F, 1, 1),
            ("math::skipped", S, 1, 0),
            ("math::todo later", S, 1, 0),
            ("math::param 1", P, 1, 0),
            ("math::param 2", P, 1, 0),
            ("math::param 3", F, 1, 1),
            // node's reporter escapes `"` twice; the name really contains `&quot;`.
            (
                "math::name with spaces [brackets] 'single' &quot;double&quot; ünïcode 名前",
                P,
                1,
                0,
            ),
            ("math > nested::inner passes", P, 1, 0),
            ("top level passes", P, 1, 0),
        ],
    );
}

#[test]
fn fixture_gotestsum() {
    check(
        "gotestsum/gotestsum.xml",
        &[
            ("example.com/sample::TestFails", F, 1, 1),
            ("example.com/sample::TestParam/n=3", F, 1, 1),
            ("example.com/sample::TestParam", F, 1, 1),
            ("example.com/sample::TestFlaky", F, 1, 1),
            ("example.com/sample::TestSkipped", S, 1, 0),
            ("example.com/sample::TestPasses", P, 1, 0),
            ("example.com/sample::TestPassesToo", P, 1, 0),
            ("example.com/sample::TestParam/n=1", P, 1, 0),
            ("example.com/sample::TestParam/n=2", P, 1, 0),
            (
                "example.com/sample::TestParam/with_space_[x]_'q'_\"dq\"_ünïcode_名前",
                P,
                1,
                0,
            ),
            // The panic kills the test binary: TestNeverRuns is not in the report.
            ("example.com/sample/crash::TestPanics", F, 1, 1),
            ("example.com/sample/crash::TestBeforePanic", P, 1, 0),
        ],
    );
}

#[test]
fn fixture_gotestsum_rerun_fails() {
    check(
        "gotestsum/rerun-fails.xml",
        &[
            ("example.com/sample::TestFails", F, 3, 3),
            ("example.com/sample::TestParam/n=3", F, 3, 3),
            ("example.com/sample::TestParam", F, 3, 3),
            ("example.com/sample::TestFlaky", K, 2, 1),
            ("example.com/sample::TestSkipped", S, 1, 0),
            ("example.com/sample::TestPasses", P, 1, 0),
            ("example.com/sample::TestPassesToo", P, 1, 0),
            ("example.com/sample::TestParam/n=1", P, 1, 0),
            ("example.com/sample::TestParam/n=2", P, 1, 0),
            (
                "example.com/sample::TestParam/with_space_[x]_'q'_\"dq\"_ünïcode_名前",
                P,
                1,
                0,
            ),
        ],
    );
}

#[test]
fn fixture_surefire_sample() {
    check(
        "surefire/TEST-com.example.SampleTest.xml",
        &[
            ("com.example.SampleTest::failsEveryTime", F, 3, 3),
            ("com.example.SampleTest::ünïcode名前", P, 1, 0),
            ("com.example.SampleTest::errors", F, 3, 3),
            ("com.example.SampleTest::flakyThenPasses", K, 2, 1),
            ("com.example.SampleTest::passes", P, 1, 0),
            ("com.example.SampleTest::passesToo", P, 1, 0),
            ("com.example.SampleTest::skipped", S, 1, 0),
        ],
    );
}

#[test]
fn fixture_surefire_parameterized() {
    check(
        "surefire/TEST-com.example.ParamTest.xml",
        &[
            (
                "com.example.ParamTest::lessThanThree[0: n=1 [x] q \"dq\" ü]",
                P,
                1,
                0,
            ),
            (
                "com.example.ParamTest::lessThanThree[1: n=2 [x] q \"dq\" ü]",
                P,
                1,
                0,
            ),
            (
                "com.example.ParamTest::lessThanThree[2: n=3 [x] q \"dq\" ü]",
                F,
                3,
                3,
            ),
        ],
    );
}

#[test]
fn fixture_gradle_sample() {
    check(
        "gradle/TEST-com.example.SampleTest.xml",
        &[
            ("com.example.SampleTest::failsEveryTime", F, 1, 1),
            ("com.example.SampleTest::ünïcode名前", P, 1, 0),
            ("com.example.SampleTest::errors", F, 1, 1),
            // Gradle 4.4.1 has no retries here: the flaky test just fails.
            ("com.example.SampleTest::flakyThenPasses", F, 1, 1),
            ("com.example.SampleTest::passes", P, 1, 0),
            ("com.example.SampleTest::passesToo", P, 1, 0),
            ("com.example.SampleTest::skipped", S, 1, 0),
        ],
    );
}

#[test]
fn fixture_gradle_parameterized() {
    check(
        "gradle/TEST-com.example.ParamTest.xml",
        &[
            (
                "com.example.ParamTest::lessThanThree[0: n=1 [x] q \"dq\" ü]",
                P,
                1,
                0,
            ),
            (
                "com.example.ParamTest::lessThanThree[1: n=2 [x] q \"dq\" ü]",
                P,
                1,
                0,
            ),
            (
                "com.example.ParamTest::lessThanThree[2: n=3 [x] q \"dq\" ü]",
                F,
                1,
                1,
            ),
        ],
    );
}

#[test]
fn fixture_phpunit() {
    let cases = check(
        "phpunit/phpunit.xml",
        &[
            ("OtherTest::testOther", P, 1, 0),
            ("SampleTest::testPasses", P, 1, 0),
            ("SampleTest::testPassesToo", P, 1, 0),
            ("SampleTest::testFails", F, 1, 1),
            ("SampleTest::testErrors", F, 1, 1),
            ("SampleTest::testSkipped", S, 1, 0),
            ("SampleTest::testIncomplete", S, 1, 0),
            // A risky test (no assertions) is an <error> in PHPUnit 9.
            ("SampleTest::testRisky", F, 1, 1),
            ("SampleTest::testParam with data set \"one\"", P, 1, 0),
            (
                "SampleTest::testParam with data set \"with space [x] 'q' \"dq\" ünïcode 名前\"",
                P,
                1,
                0,
            ),
            ("SampleTest::testParam with data set #0", F, 1, 1),
            ("SampleTest::testÜnïcode名前", P, 1, 0),
        ],
    );
    assert_eq!(
        cases[0].file.as_deref(),
        Some("/tmp/fx/phpunit/tests/OtherTest.php")
    );
    assert_eq!(cases[0].line, Some(6));
}

#[test]
fn every_fixture_file_has_a_test() {
    let covered = [
        "gotestsum/gotestsum.xml",
        "gotestsum/rerun-fails.xml",
        "gradle/TEST-com.example.ParamTest.xml",
        "gradle/TEST-com.example.SampleTest.xml",
        "jest-junit/jest-junit.xml",
        "nextest/junit.xml",
        "node-test/node-test.xml",
        "phpunit/phpunit.xml",
        "pytest/reruns.xml",
        "pytest/xunit1.xml",
        "pytest/xunit2.xml",
        "surefire/TEST-com.example.ParamTest.xml",
        "surefire/TEST-com.example.SampleTest.xml",
    ];
    let found = expand_paths(&[FIXTURES.to_owned()]).unwrap();
    let found: Vec<String> = found
        .iter()
        .map(|p| {
            p.strip_prefix(FIXTURES)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(found, covered);
}

#[test]
fn reports_from_several_files_group_together() {
    // Two Surefire classes plus the same report twice (a re-uploaded artifact): duplicates
    // by path are dropped, the rest is merged.
    let dir = fixture("surefire");
    let inputs = vec![
        dir.display().to_string(),
        dir.join("TEST-com.example.ParamTest.xml")
            .display()
            .to_string(),
    ];
    let cases = read_reports(&inputs, &Limits::default()).unwrap();
    assert_eq!(cases.len(), 10);
    assert_eq!(
        cases[0].id,
        "com.example.ParamTest::lessThanThree[0: n=1 [x] q \"dq\" ü]"
    );
}

#[test]
fn same_test_in_two_files_is_flaky_when_it_failed_in_one() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.xml");
    let b = tmp.path().join("b.xml");
    fs::write(
        &a,
        r#"<testsuite><testcase classname="c" name="t" time="1"><failure/></testcase></testsuite>"#,
    )
    .unwrap();
    fs::write(
        &b,
        r#"<testsuite><testcase classname="c" name="t" time="2"/></testsuite>"#,
    )
    .unwrap();
    let cases = read_reports(&[tmp.path().display().to_string()], &Limits::default()).unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].outcome, Outcome::Flaky);
    assert_eq!((cases[0].attempts, cases[0].failed_attempts), (2, 1));
    assert_eq!(cases[0].duration, 3.0);
}

// ---------------------------------------------------------------- dialect rules

#[test]
fn single_testsuite_root_and_nested_suites() {
    assert_eq!(
        outcomes(r#"<testsuite name="s"><testcase classname="c" name="a"/></testsuite>"#),
        [("c::a".to_owned(), P, 1, 0)]
    );
    assert_eq!(
        outcomes(
            r#"<testsuites><testsuite name="x"><testsuite name="y"><testsuite name="z">
               <testcase classname="c" name="deep"/></testsuite></testsuite></testsuite>
               <testcase name="top"/></testsuites>"#
        ),
        [("c::deep".to_owned(), P, 1, 0), ("top".to_owned(), P, 1, 0)]
    );
}

#[test]
fn classname_falls_back_to_class_then_to_nothing() {
    let a = parse(
        r#"<testsuites><testsuite file="suite.php">
            <testcase name="a" class="K"/>
            <testcase name="b" classname=" " class="K2" file="own.php"/>
            <testcase name=" c "/>
        </testsuite></testsuites>"#,
    )
    .unwrap();
    assert_eq!(a[0].id(), "K::a");
    assert_eq!(a[0].file.as_deref(), Some("suite.php"));
    assert_eq!(a[1].id(), "K2::b");
    assert_eq!(a[1].file.as_deref(), Some("own.php"));
    assert_eq!(a[2].id(), "c");
    assert_eq!(a[2].classname, "");
}

#[test]
fn failure_error_skipped_children() {
    let a = parse(
        r#"<testsuite>
            <testcase name="f"><failure message="x">trace</failure></testcase>
            <testcase name="e"><error/></testcase>
            <testcase name="s"><skipped message="later"/></testcase>
            <testcase name="fs"><skipped/><failure/></testcase>
            <testcase name="p"><system-out>out</system-out><properties><property name="a" value="b"/></properties></testcase>
        </testsuite>"#,
    )
    .unwrap();
    let statuses: Vec<Status> = a.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [
            Status::Failed,
            Status::Errored,
            Status::Skipped,
            Status::Failed,
            Status::Passed
        ]
    );
}

#[test]
fn embedded_reruns() {
    let xml = r#"<testsuite>
        <testcase name="flaky" time="1"><flakyFailure time="2"/><flakyError time="0.5"><system-out>x</system-out></flakyError></testcase>
        <testcase name="broken" time="1"><failure/><rerunFailure time="1"/><rerunError/></testcase>
    </testsuite>"#;
    let cases = group(parse(xml).unwrap());
    assert_eq!(cases[0].outcome, Outcome::Flaky);
    assert_eq!((cases[0].attempts, cases[0].failed_attempts), (3, 2));
    assert_eq!(cases[0].duration, 3.5);
    assert_eq!(cases[1].outcome, Outcome::Failed);
    assert_eq!((cases[1].attempts, cases[1].failed_attempts), (3, 3));
}

#[test]
fn repeated_rows_group() {
    let xml = r#"<testsuite>
        <testcase name="a"><failure/></testcase><testcase name="a"/>
        <testcase name="b"><failure/></testcase><testcase name="b"><error/></testcase>
        <testcase name="c"><skipped/></testcase><testcase name="c"><skipped/></testcase>
        <testcase name="d"><skipped/></testcase><testcase name="d"/>
        <testcase name="e"><skipped/></testcase><testcase name="e"><failure/></testcase>
    </testsuite>"#;
    assert_eq!(
        outcomes(xml),
        [
            ("a".to_owned(), K, 2, 1),
            ("b".to_owned(), F, 2, 2),
            ("c".to_owned(), S, 2, 0),
            ("d".to_owned(), P, 2, 0),
            ("e".to_owned(), F, 2, 1),
        ]
    );
}

#[test]
fn pytest_rerun_rows_count_as_failures_only_in_pytest_reports() {
    let rows = r#"<testsuite name="pytest"><testcase classname="m" name="t"/><testcase classname="m" name="t"><failure/></testcase></testsuite>"#;
    let pytest = format!(r#"<testsuites name="pytest tests">{rows}</testsuites>"#);
    let other = format!(r#"<testsuites name="other">{rows}</testsuites>"#);
    assert_eq!(outcomes(&pytest), [("m::t".to_owned(), F, 2, 2)]);
    assert_eq!(outcomes(&other), [("m::t".to_owned(), K, 2, 1)]);
}

#[test]
fn node_suite_path_only_with_node_summary() {
    let body = r#"<testsuite name="a"><testcase name="x" classname="test"/></testsuite>
                  <testsuite name="b"><testcase name="x" classname="test"/></testsuite>"#;
    let node = format!("<testsuites>{body}<!-- tests 2 -->\n<!-- duration_ms 3.5 --></testsuites>");
    let plain = format!("<testsuites>{body}</testsuites>");
    assert_eq!(
        outcomes(&node),
        [("a::x".to_owned(), P, 1, 0), ("b::x".to_owned(), P, 1, 0)]
    );
    assert_eq!(outcomes(&plain), [("test::x".to_owned(), P, 2, 0)]);
}

#[test]
fn time_attribute_is_never_an_error() {
    assert_eq!(parse_time(None), 0.0);
    assert_eq!(parse_time(Some("")), 0.0);
    assert_eq!(parse_time(Some("0.25")), 0.25);
    assert_eq!(parse_time(Some(" 3 ")), 3.0);
    assert_eq!(parse_time(Some("1,234.5")), 1234.5);
    assert_eq!(parse_time(Some("12,345,678")), 12_345_678.0);
    assert_eq!(parse_time(Some("1.234,5")), 1234.5);
    assert_eq!(parse_time(Some("0,5")), 0.5);
    assert_eq!(parse_time(Some("1,5")), 1.5);
    assert_eq!(parse_time(Some("-1")), 0.0);
    assert_eq!(parse_time(Some("NaN")), 0.0);
    assert_eq!(parse_time(Some("inf")), 0.0);
    assert_eq!(parse_time(Some("-inf")), 0.0);
    assert_eq!(parse_time(Some("1e400")), 0.0);
    assert_eq!(parse_time(Some("12s")), 0.0);
    let a = parse(r#"<testsuite><testcase name="a" time="1,234.5"/><testcase name="b" time="NaN"/><testcase name="c"/></testsuite>"#).unwrap();
    let times: Vec<f64> = a.iter().map(|a| a.time).collect();
    assert_eq!(times, [1234.5, 0.0, 0.0]);
}

#[test]
fn entities_and_character_references_unescape() {
    let a = parse(
        r#"<testsuite><testcase classname="a&amp;b" name="&lt;x&gt; &quot;q&quot; &apos;s&apos; &#xE9;&#233;&#x1F600;"><failure message="line&#xA;two">&lt;&amp;</failure></testcase></testsuite>"#,
    )
    .unwrap();
    assert_eq!(a[0].classname, "a&b");
    assert_eq!(a[0].name, "<x> \"q\" 's' éé😀");
    assert_eq!(a[0].status, Status::Failed);
}

#[test]
fn skipped_content_may_contain_markup_lookalikes() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment with <testcase name="nope"/> -->
<testsuite>
  <testcase name="a">
    <system-out><![CDATA[</system-out> <testcase name="fake"/> ]] ]]]]><!-- </system-out> --> &amp; & < > a<3 <<x/> <= </system-out>
    <failure message="a > b &amp; </failure>" type='x"y'><stackTrace>at <![CDATA[<]]></stackTrace><?pi </failure> ?></failure>
  </testcase>
  <testcase name="b"/>
</testsuite>
<!-- trailing -->
"#;
    // Loose `&`, `<` and `>` in system-out are not well-formed XML, but some reporters do not
    // escape test output and the reader never looks at it; only the structure around it is
    // checked.
    assert_eq!(
        outcomes(xml),
        [("a".to_owned(), F, 1, 1), ("b".to_owned(), P, 1, 0)]
    );
}

#[test]
fn namespaces_prefixes_and_bom_are_accepted() {
    let mut xml = vec![0xEF, 0xBB, 0xBF];
    xml.extend_from_slice(
        br#"<?xml version="1.0"?><!DOCTYPE testsuites><testsuites xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><testsuite xsi:noNamespaceSchemaLocation="x"><testcase name="a" classname="c"/></testsuite></testsuites>"#,
    );
    let a = parse_bytes(&xml).unwrap();
    assert_eq!(a[0].id(), "c::a");
}

// ---------------------------------------------------------------- bad input

fn assert_located(e: &JunitError, line: u64, column: u64) {
    assert_eq!(e.location(), Some((line, column)), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("reports/a.xml:{line}:{column}: ")),
        "{e}"
    );
}

#[test]
fn malformed_xml_is_located() {
    let e = err("<testsuite>\n  <testcase name=\"a\">\n  </testsuite>\n");
    assert!(matches!(e, JunitError::Malformed { .. }), "{e}");
    assert_located(&e, 3, 3);
    assert!(
        e.to_string()
            .contains("malformed XML: expected </testcase>, found </testsuite>"),
        "{e}"
    );

    // Mismatch inside a skipped subtree.
    let e = err(
        "<testsuite>\n<testcase name=\"a\"><system-out>\n  é</system-err>\n</testcase></testsuite>",
    );
    assert_located(&e, 3, 4);

    // Broken tag syntax.
    let e = err("<testsuite>\n  <testcase name=\"a\" =/>\n</testsuite>");
    assert!(matches!(e, JunitError::Malformed { .. }), "{e}");
    assert_eq!(e.location().unwrap().0, 2, "{e}");

    let e = err("<testsuite><testcase name=\"a\"/></testsuite>\n<testsuite/>");
    assert!(e.to_string().contains("second root element"), "{e}");
    assert_located(&e, 2, 1);

    let e = err("<testsuite><testcase name=\"a\"/></testsuite>\ntrailing junk");
    assert!(
        e.to_string().contains("text outside the root element"),
        "{e}"
    );
    assert_located(&e, 2, 1);

    let e = err("junk<testsuite><testcase name=\"a\"/></testsuite>");
    assert!(
        e.to_string().contains("text outside the root element"),
        "{e}"
    );

    let e = err("<testsuite><testcase name=\"a\"/></testsuite></testsuite>");
    assert!(matches!(e, JunitError::Malformed { .. }), "{e}");

    let e = err(r#"<testsuite><testcase name="a" name="b"/></testsuite>"#);
    assert!(matches!(e, JunitError::Malformed { .. }), "{e}");

    let e = err(r#"<testsuite><testcase name="&unknown;"/></testsuite>"#);
    assert!(matches!(e, JunitError::Malformed { .. }), "{e}");
}

#[test]
fn truncated_files_are_located() {
    let full = "<testsuites>\n  <testsuite name=\"s\">\n    <testcase name=\"a\" time=\"1\">\n      <system-out>lots of output\n";
    let e = err(full);
    assert_located(&e, 5, 1);
    assert!(e.to_string().contains("<system-out> is not closed"), "{e}");

    let e = err("<testsuites>\n  <testsuite name=\"s\">\n    <testcase name=\"a\" ti");
    assert!(matches!(e, JunitError::Malformed { .. }), "{e}");
    assert_located(&e, 3, 5);

    let e = err("<testsuites>\n<testsuite>\n<testcase name=\"a\"/>\n");
    assert!(e.to_string().contains("<testsuite> is not closed"), "{e}");
    assert_located(&e, 4, 1);

    let e = err("<testsuite><testcase name=\"a\"><failure><![CDATA[never closed");
    assert!(e.to_string().contains("<failure> is not closed"), "{e}");
}

#[test]
fn every_truncation_of_a_real_report_is_an_error_not_a_panic() {
    let bytes = fs::read(fixture("nextest/junit.xml")).unwrap();
    let end = bytes.len()
        - bytes
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    for cut in 0..end {
        let result = parse_bytes(&bytes[..cut]);
        assert!(result.is_err(), "cut at {cut} parsed");
    }
    assert!(parse_bytes(&bytes).is_ok());
}

#[test]
fn empty_and_testless_reports() {
    let e = err("");
    assert!(matches!(e, JunitError::NoTestCases { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "reports/a.xml: contains no test cases (the file is empty)"
    );

    let e = err("  \n ");
    assert!(matches!(e, JunitError::NoTestCases { .. }), "{e}");

    let e = err(r#"<?xml version="1.0"?><!-- nothing -->"#);
    assert_eq!(
        e.to_string(),
        "reports/a.xml: contains no test cases (no root element)"
    );

    for xml in [
        r#"<testsuites/>"#,
        r#"<testsuites name="jest tests" tests="0"></testsuites>"#,
        r#"<testsuites><testsuite name="a" tests="0"/><testsuite name="b"><properties/></testsuite></testsuites>"#,
        r#"<testsuite name="x"><system-out><![CDATA[<testcase name="a"/>]]></system-out></testsuite>"#,
    ] {
        let e = err(xml);
        assert_eq!(
            e.to_string(),
            "reports/a.xml: contains no test cases",
            "{xml}"
        );
    }
}

#[test]
fn testcase_without_name_is_an_error() {
    let e = err("<testsuite>\n<testcase classname=\"c\"/></testsuite>");
    assert!(matches!(e, JunitError::InvalidTestCase { .. }), "{e}");
    assert_located(&e, 2, 1);
}

#[test]
fn not_a_junit_report() {
    let e = err("<?xml version=\"1.0\"?>\n<html><body/></html>");
    assert!(matches!(e, JunitError::NotJunit { .. }), "{e}");
    assert_located(&e, 2, 1);
    assert!(e.to_string().contains("root element is <html>"), "{e}");

    let e = err(r#"{"tests": []}"#);
    assert!(
        e.to_string().contains("text outside the root element"),
        "{e}"
    );
}

#[test]
fn non_utf8_is_rejected_with_its_position() {
    let e = parse_bytes(b"<testsuite>\n  <testcase name=\"caf\xe9\"/>\n</testsuite>").unwrap_err();
    assert!(matches!(e, JunitError::Encoding { .. }), "{e}");
    assert_located(&e, 2, 22);
    assert!(e.to_string().contains("invalid byte 0xE9"), "{e}");

    let e = parse_bytes(b"\xff\xfe<\0t\0e\0s\0t\0s\0u\0i\0t\0e\0/\0>\0").unwrap_err();
    assert!(matches!(e, JunitError::Encoding { .. }), "{e}");
    assert!(e.to_string().contains("UTF-16"), "{e}");

    let e = err("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><testsuite/>");
    assert!(matches!(e, JunitError::Encoding { .. }), "{e}");
    assert!(e.to_string().contains("iso-8859-1"), "{e}");
}

#[test]
fn entity_declarations_are_refused_not_expanded() {
    let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<testsuite><testcase name="&lol9;">&lol9;</testcase></testsuite>"#;
    let started = Instant::now();
    let e = err(bomb);
    assert!(started.elapsed().as_secs() < 1);
    assert!(matches!(e, JunitError::Doctype { .. }), "{e}");
    assert_located(&e, 2, 1);

    let xxe = r#"<?xml version="1.0"?><!DOCTYPE testsuite SYSTEM "file:///etc/passwd"><testsuite><testcase name="a"/></testsuite>"#;
    assert!(matches!(err(xxe), JunitError::Doctype { .. }));
    let xxe = r#"<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><testsuite><testcase name="&x;"/></testsuite>"#;
    assert!(matches!(err(xxe), JunitError::Doctype { .. }));
}

#[test]
fn depth_limit() {
    let limits = Limits {
        max_depth: 10,
        ..Limits::default()
    };
    let nested = |n: usize| {
        let mut xml = String::new();
        for _ in 0..n {
            xml.push_str("<testsuite>");
        }
        xml.push_str("<testcase name=\"a\"/>");
        for _ in 0..n {
            xml.push_str("</testsuite>");
        }
        xml
    };
    assert!(read_from(Cursor::new(nested(9)), "d.xml", &limits).is_ok());
    let e = read_from(Cursor::new(nested(10)), "d.xml", &limits).unwrap_err();
    assert!(matches!(e, JunitError::TooDeep { limit: 10, .. }), "{e}");
    assert_eq!(e.location(), Some((1, 111)));

    // Inside skipped content too.
    let mut xml = String::from("<testsuite><testcase name=\"a\"><system-out>");
    for _ in 0..100_000 {
        xml.push_str("<x>");
    }
    let e = read_from(Cursor::new(xml), "d.xml", &limits).unwrap_err();
    assert!(matches!(e, JunitError::TooDeep { .. }), "{e}");

    // The default limit.
    let e = parse(&nested(100)).unwrap_err();
    assert!(matches!(e, JunitError::TooDeep { limit: 64, .. }), "{e}");
}

#[test]
fn oversized_file_is_refused_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("huge.xml");
    let file = fs::File::create(&path).unwrap();
    // Sparse: takes no disk space, and reading it would take far too long.
    file.set_len(2 * 1024 * 1024 * 1024).unwrap();
    let started = Instant::now();
    let e = read_file(&path, &Limits::default()).unwrap_err();
    assert!(started.elapsed().as_millis() < 500);
    assert!(
        matches!(
            e,
            JunitError::TooLarge {
                size: 2_147_483_648,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("huge.xml"), "{e}");
}

#[test]
fn oversized_stream_is_refused_while_reading() {
    let limits = Limits {
        max_file_bytes: 1000,
        ..Limits::default()
    };
    let mut xml = String::from("<testsuite>");
    while xml.len() < 2000 {
        xml.push_str("<testcase name=\"a\"/>");
    }
    xml.push_str("</testsuite>");
    let e = read_from(
        BufReader::with_capacity(64, Cursor::new(xml)),
        "s.xml",
        &limits,
    )
    .unwrap_err();
    assert!(matches!(e, JunitError::TooLarge { .. }), "{e}");

    // Also when the excess is inside skipped output.
    let big = format!(
        "<testsuite><testcase name=\"a\"><system-out>{}</system-out></testcase></testsuite>",
        "x".repeat(5000)
    );
    let e = read_from(
        BufReader::with_capacity(64, Cursor::new(big)),
        "s.xml",
        &limits,
    )
    .unwrap_err();
    assert!(matches!(e, JunitError::TooLarge { .. }), "{e}");
}

#[test]
fn read_errors_name_the_file() {
    let e = read_file(Path::new("/nonexistent/r.xml"), &Limits::default()).unwrap_err();
    assert!(matches!(e, JunitError::Io { .. }));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/r.xml: cannot read: "),
        "{e}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let e = read_file(tmp.path(), &Limits::default()).unwrap_err();
    assert!(matches!(e, JunitError::Io { .. }), "{e}");
}

/// A source that yields a huge `system-out` piece by piece, so the test itself does not
/// hold it in memory.
struct Generated {
    head: Cursor<Vec<u8>>,
    body_left: u64,
    /// Body bytes produced so far.
    body_done: u64,
    tail: Cursor<Vec<u8>>,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.head.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        if self.body_left > 0 {
            let n = buf.len().min(self.body_left as usize);
            for b in &mut buf[..n] {
                *b = if self.body_done % 80 == 79 {
                    b'\n'
                } else {
                    b'o'
                };
                self.body_done += 1;
            }
            self.body_left -= n as u64;
            return Ok(n);
        }
        self.tail.read(buf)
    }
}

#[test]
fn huge_system_out_streams() {
    let body: u64 = 16 * 1024 * 1024;
    let source = Generated {
        head: Cursor::new(b"<testsuite>\n<testcase name=\"a\"><system-out>".to_vec()),
        body_left: body,
        body_done: 0,
        tail: Cursor::new(
            b"</system-out></testcase>\n<testcase name=\"b\"><failure/></testcase>\n</testsuite>"
                .to_vec(),
        ),
    };
    let a = read_from(BufReader::new(source), "big.xml", &Limits::default()).unwrap();
    assert_eq!(a.len(), 2);

    // An error after it is still located exactly (lines counted while skipping).
    let source = Generated {
        head: Cursor::new(b"<testsuite>\n<testcase name=\"a\"><system-out>".to_vec()),
        body_left: 80 * 1000,
        body_done: 0,
        tail: Cursor::new(b"</system-out></testcase>\n<testcase/>\n</testsuite>".to_vec()),
    };
    let e = read_from(BufReader::new(source), "big.xml", &Limits::default()).unwrap_err();
    assert_eq!(e.location(), Some((1003, 1)), "{e}");
}

#[test]
fn hundred_thousand_testcases_read_fast() {
    let mut xml = String::with_capacity(12_000_000);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for s in 0..100 {
        xml.push_str(&format!("<testsuite name=\"suite{s}\" tests=\"1000\">\n"));
        for t in 0..1000 {
            let child = match t % 10 {
                0 => "<failure message=\"boom\">stack\ntrace</failure>",
                1 => "<skipped/>",
                _ => "<system-out>some output</system-out>",
            };
            xml.push_str(&format!(
                "  <testcase classname=\"pkg.Class{s}\" name=\"test_{t}\" time=\"0.001\">{child}</testcase>\n"
            ));
        }
        xml.push_str("</testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    let started = Instant::now();
    let attempts = read_from(Cursor::new(xml.as_bytes()), "big.xml", &Limits::default()).unwrap();
    let cases = group(attempts);
    let elapsed = started.elapsed();
    assert_eq!(cases.len(), 100_000);
    assert_eq!(
        cases
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .count(),
        10_000
    );
    assert_eq!(
        cases
            .iter()
            .filter(|c| c.outcome == Outcome::Skipped)
            .count(),
        10_000
    );
    // The bound is for optimised builds; an unoptimised test build is several times slower.
    if !cfg!(debug_assertions) {
        assert!(elapsed.as_secs_f64() < 0.5, "took {elapsed:?}");
    }
}

// ---------------------------------------------------------------- grouping

fn attempt(name: &str, status: Status, embedded: u32) -> Attempt {
    Attempt {
        classname: "c".into(),
        name: name.into(),
        file: None,
        line: None,
        status,
        time: 1.0,
        embedded_failures: embedded,
        embedded_time: 0.0,
    }
}

#[test]
fn group_rules() {
    let cases = group(vec![
        attempt("p", Status::Passed, 0),
        attempt("k", Status::Passed, 1),
        attempt("f", Status::Errored, 2),
        attempt("s", Status::Skipped, 0),
        attempt("p", Status::Passed, 0),
        attempt("s2", Status::Skipped, 0),
        attempt("s2", Status::Failed, 0),
        Attempt {
            time: f64::NAN,
            embedded_time: -3.0,
            ..attempt("bad", Status::Passed, 0)
        },
    ]);
    let got: Vec<(&str, Outcome, u32, u32, f64)> = cases
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.outcome,
                c.attempts,
                c.failed_attempts,
                c.duration,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("p", P, 2, 0, 2.0),
            ("k", K, 2, 1, 1.0),
            ("f", F, 3, 3, 1.0),
            ("s", S, 1, 0, 1.0),
            ("s2", F, 2, 1, 2.0),
            ("bad", P, 1, 0, 0.0),
        ]
    );
}

// ---------------------------------------------------------------- paths

#[test]
fn expand_paths_files_dirs_globs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("b/deep")).unwrap();
    fs::create_dir_all(root.join("a")).unwrap();
    for f in [
        "a/2.xml",
        "a/1.XML",
        "b/deep/3.xml",
        "b/notes.txt",
        "c.xml",
        "odd[1].xml",
    ] {
        fs::write(root.join(f), "<testsuite/>").unwrap();
    }
    let s = |p: &str| root.join(p).display().to_string();

    let got = expand_paths(&[s("b"), s("a")]).unwrap();
    assert_eq!(
        got,
        [
            root.join("a/1.XML"),
            root.join("a/2.xml"),
            root.join("b/deep/3.xml")
        ]
    );

    // Globs; duplicates (also through another spelling) are dropped.
    let got = expand_paths(&[
        s("*.xml"),
        s("c.xml"),
        format!("{}/./c.xml", root.display()),
    ])
    .unwrap();
    assert_eq!(got, [root.join("c.xml"), root.join("odd[1].xml")]);

    // A literal path with glob characters.
    assert_eq!(
        expand_paths(&[s("odd[1].xml")]).unwrap(),
        [root.join("odd[1].xml")]
    );

    // A file given explicitly need not end in .xml.
    assert_eq!(
        expand_paths(&[s("b/notes.txt")]).unwrap(),
        [root.join("b/notes.txt")]
    );

    let e = expand_paths(&[s("*.json")]).unwrap_err();
    assert!(matches!(e, JunitError::NoMatch { .. }));
    assert_eq!(e.to_string(), format!("{}: matches no files", s("*.json")));

    fs::create_dir(root.join("empty")).unwrap();
    let e = expand_paths(&[s("empty")]).unwrap_err();
    assert!(matches!(e, JunitError::NoMatch { .. }), "{e}");

    let e = expand_paths(&[s("missing.xml")]).unwrap_err();
    assert!(matches!(e, JunitError::Io { .. }), "{e}");
    assert!(e.to_string().contains("missing.xml"), "{e}");

    let e = expand_paths(&[s("[.xml")]).unwrap_err();
    assert!(matches!(e, JunitError::BadPattern { .. }), "{e}");

    assert!(expand_paths(&[]).unwrap().is_empty());
}

#[test]
fn read_reports_errors() {
    let e = read_reports(&[], &Limits::default()).unwrap_err();
    assert!(e.to_string().starts_with("no test cases in "), "{e}");

    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("a.xml"),
        r#"<testsuite><testcase name="a"/></testsuite>"#,
    )
    .unwrap();
    fs::write(tmp.path().join("b.xml"), "<testsuite><testcase name=\"b\">").unwrap();
    let e = read_reports(&[tmp.path().display().to_string()], &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("b.xml:1:"), "{e}");
}

// ---------------------------------------------------------------- properties

#[derive(Debug, Clone)]
enum Row {
    Pass,
    Fail,
    Error,
    Skip,
    /// Passed after `n` embedded flaky failures.
    FlakyEmbedded(u32),
    /// Failed, plus `n` embedded rerun failures.
    RerunEmbedded(u32),
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn row_strategy() -> impl Strategy<Value = Row> {
    prop_oneof![
        Just(Row::Pass),
        Just(Row::Fail),
        Just(Row::Error),
        Just(Row::Skip),
        (1u32..3).prop_map(Row::FlakyEmbedded),
        (1u32..3).prop_map(Row::RerunEmbedded),
    ]
}

fn name_strategy() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _\\[\\]'\"&<>.:/ü名😀-]{1,10}".prop_filter("non-blank", |s| !s.trim().is_empty())
}

fn output_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z <>&\"]{0,20}".prop_map(|s| format!("<system-out>{}</system-out>", xml_escape(&s))),
        // No `>` inside, so `]]>` cannot occur; `]` runs before the real end still can.
        "[a-z <&\\]]{0,20}".prop_map(|s| format!("<system-err><![CDATA[{s}]]></system-err>")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_bytes(&bytes);
    }

    #[test]
    fn token_soup_never_panics(
        tokens in proptest::collection::vec(proptest::sample::select(vec![
            "<testsuites>", "</testsuites>", "<testsuite name=\"s\">", "</testsuite>",
            "<testcase name=\"a\" time=\"1\">", "<testcase name=\"a\"/>", "</testcase>",
            "<failure/>", "<failure>", "</failure>", "<flakyFailure time=\"x\">",
            "</flakyFailure>", "<system-out>", "</system-out>", "<![CDATA[", "]]>", "]", "<!--",
            "-->", "-", "<?pi ", "?>", "<", ">", "/>", "\"", "'", "&amp;", "&", "&#xA;", "x",
            " ", "\n", "<!DOCTYPE t>", "<?xml version=\"1.0\"?>", "\u{e9}", "\u{FEFF}",
        ]), 0..60),
    ) {
        let xml: String = tokens.concat();
        let _ = parse(&xml);
        let limits = Limits {
            max_depth: 4,
            max_file_bytes: 200,
            printable_ids: true,
            ..Limits::default()
        };
        let _ = read_from(BufReader::with_capacity(7, Cursor::new(xml.as_bytes())), "t.xml", &limits);
    }

    #[test]
    fn mangled_reports_never_panic(
        cut in 0usize..4000,
        flips in proptest::collection::vec((0usize..4000, any::<u8>()), 0..4),
    ) {
        let mut bytes = fs::read(fixture("surefire/TEST-com.example.SampleTest.xml")).unwrap();
        for (at, b) in flips {
            let len = bytes.len();
            bytes[at % len] = b;
        }
        bytes.truncate(cut.min(bytes.len()));
        let _ = parse_bytes(&bytes);
    }

    #[test]
    fn generated_reports_round_trip(
        rows in proptest::collection::vec(
            (0usize..3, name_strategy(), row_strategy(), output_strategy(), any::<bool>()),
            1..25,
        ),
        classnames in proptest::collection::vec(name_strategy(), 3),
        single_root in any::<bool>(),
    ) {
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        if !single_root {
            xml.push_str("<testsuites name=\"gen\">\n");
        }
        xml.push_str("<testsuite name=\"s\">\n");
        // Expected: per id, (executions, failed executions, passed rows, order).
        let mut expected: Vec<(String, u32, u32, u32)> = Vec::new();
        for (class, name, row, output, empty_class) in &rows {
            let classname = if *empty_class { "" } else { classnames[*class].as_str() };
            let (children, executions, failed, passed) = match row {
                Row::Pass => (String::new(), 1, 0, 1),
                Row::Fail => ("<failure message=\"x\">t</failure>".to_owned(), 1, 1, 0),
                Row::Error => ("<error/>".to_owned(), 1, 1, 0),
                Row::Skip => ("<skipped/>".to_owned(), 1, 0, 0),
                Row::FlakyEmbedded(n) => (
                    "<flakyFailure time=\"0.1\"><system-out>o</system-out></flakyFailure>".repeat(*n as usize),
                    1 + n, *n, 1,
                ),
                Row::RerunEmbedded(n) => (
                    format!("<failure/>{}", "<rerunFailure/>".repeat(*n as usize)),
                    1 + n, 1 + n, 0,
                ),
            };
            let attrs = if classname.is_empty() {
                format!("name=\"{}\" time=\"1\"", xml_escape(name))
            } else {
                format!("classname=\"{}\" name=\"{}\" time=\"1\"", xml_escape(classname), xml_escape(name))
            };
            let body = format!("{children}{output}");
            if body.is_empty() {
                xml.push_str(&format!("  <testcase {attrs}/>\n"));
            } else {
                xml.push_str(&format!("  <testcase {attrs}>{body}</testcase>\n"));
            }
            let id = model::test_id(classname.trim(), name.trim());
            match expected.iter_mut().find(|e| e.0 == id) {
                Some(e) => { e.1 += executions; e.2 += failed; e.3 += passed; }
                None => expected.push((id, executions, failed, passed)),
            }
        }
        xml.push_str("</testsuite>\n");
        if !single_root {
            xml.push_str("</testsuites>\n");
        }

        let cases = group(parse(&xml).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?);
        prop_assert_eq!(cases.len(), expected.len());
        for (case, (id, executions, failed, passed)) in cases.iter().zip(&expected) {
            let outcome = match (*failed > 0, *passed > 0) {
                (true, true) => Outcome::Flaky,
                (true, false) => Outcome::Failed,
                (false, true) => Outcome::Passed,
                (false, false) => Outcome::Skipped,
            };
            prop_assert_eq!(&case.id, id);
            prop_assert_eq!(case.outcome, outcome);
            prop_assert_eq!(case.attempts, *executions);
            prop_assert_eq!(case.failed_attempts, *failed);
            prop_assert!(case.duration.is_finite() && case.duration >= 1.0);
        }
    }
}

#[test]
fn test_case_limit_counts_rows() {
    let xml = r#"<testsuite><testcase name="a"/><testcase name="a"/><testcase name="b"><failure/></testcase></testsuite>"#;
    let limits = |n| Limits {
        max_test_cases: n,
        ..Limits::default()
    };
    assert_eq!(
        read_from(xml.as_bytes(), "r.xml", &limits(3))
            .unwrap()
            .len(),
        3
    );
    let e = read_from(xml.as_bytes(), "r.xml", &limits(2)).unwrap_err();
    assert!(
        matches!(e, JunitError::TooManyTestCases { limit: 2, .. }),
        "{e}"
    );
    assert_eq!(e.to_string(), "r.xml: more than 2 test cases");
}

#[test]
fn grouping_report_by_report_is_grouping_at_once() {
    let files = [
        "nextest/junit.xml",
        "pytest/reruns.xml",
        "surefire/TEST-com.example.SampleTest.xml",
        "pytest/xunit2.xml",
    ];
    let per_file: Vec<Vec<Attempt>> = files
        .iter()
        .map(|f| read_file(&fixture(f), &Limits::default()).unwrap())
        .collect();
    let mut grouper = Grouper::default();
    for attempts in per_file.clone() {
        grouper.add(attempts);
    }
    assert_eq!(grouper.finish(), group(per_file.concat()));
}
