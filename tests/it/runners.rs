//! Runner formats against the real runners: a planned subset of a tiny sample project
//! (`tests/fixtures/runners/<runner>/`, names with spaces, brackets, quotes and unicode) is
//! handed to the runner in its own syntax, and the runner's own JUnit must show that exactly
//! the planned tests ran — no more, no fewer. Then `fedtest run` end to end.
//!
//! The runners are installed by `.ci/install-runners`; a missing runner fails its test (it is
//! never skipped), naming that script. dotnet, which cannot be installed here, is checked
//! against its documented syntax with a snapshot.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fedtest::junit::{self, Limits, Outcome as Verdict};

use crate::util::{Junit, Outcome, Sandbox, stderr, stdout};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/runners");

/// Caches shared by every run of the suite (build outputs, Maven's local repository).
fn cache_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("runner-fixtures")
        .join(name);
    std::fs::create_dir_all(&dir).expect("create cache dir");
    dir
}

/// Fail (never skip) when a runner is missing.
fn require(program: &str, args: &[&str]) {
    let ok = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{program} {}` failed: the runner is not installed; run .ci/install-runners",
        args.join(" ")
    );
}

/// Copy a fixture project into the sandbox (the runners write build outputs next to it).
fn copy_fixture(sb: &Sandbox, name: &str) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("create dir");
        for entry in std::fs::read_dir(from).expect("read fixture dir") {
            let entry = entry.expect("fixture entry");
            let (src, dst) = (entry.path(), to.join(entry.file_name()));
            if entry.file_name() == "node_modules" {
                continue;
            } else if src.is_dir() {
                copy(&src, &dst);
            } else {
                std::fs::copy(&src, &dst).expect("copy fixture file");
            }
        }
    }
    let dest = sb.path().join(name);
    copy(&Path::new(FIXTURES).join(name), &dest);
    dest
}

/// A fixture's tests and the plan to make of them.
struct Scenario<'a> {
    /// The `--format` and `--runner` name.
    runner: &'a str,
    /// Every test of the fixture, as canonical ids from the runner's JUnit.
    all: &'a [&'a str],
    /// Tests that failed in every build (at least two of them): the plan keeps them.
    failing: &'a [&'a str],
    /// `plan.must_run` glob patterns.
    must_run: &'a [&'a str],
}

impl Scenario<'_> {
    /// Record a history that makes the selection known: `failing` ∪ `must_run`, nothing else.
    fn history(&self) -> Sandbox {
        let sb = Sandbox::new();
        let must: Vec<String> = self.must_run.iter().map(|p| format!("{p:?}")).collect();
        sb.write(
            "fedtest.toml",
            format!(
                "[plan]\nmin_builds = 5\nmin_failures = 3\nfull_run_every = 0\nexploration = 0.0\n\
                 keep_recent_failures = 1\nmust_run = [{}]\n",
                must.join(", ")
            ),
        );
        // Enough failures (20) for a local model, which skipping needs.
        for build in 0..15 {
            let mut report = Junit::new();
            for id in self.all {
                let outcome = if self.failing.contains(id) {
                    Outcome::Fail
                } else {
                    Outcome::Pass
                };
                report = report.case(id, outcome, 1.0);
            }
            sb.record(&format!("b{build:02}"), &report);
        }
        sb.write_tests("all.txt", self.all);
        sb
    }

    /// The selected ids (from `plan --format json`) and the runner arguments (from
    /// `plan --format <runner>`) for the same inputs.
    fn plan(&self, sb: &Sandbox) -> (BTreeSet<String>, Vec<String>) {
        let plan = sb.plan_json(self.all, &["--budget", "1s"]);
        let selected: BTreeSet<String> = crate::util::planned(&plan)
            .into_iter()
            .filter(|(_, selected, _)| *selected)
            .map(|(id, _, _)| id)
            .collect();
        let out = sb
            .fedtest()
            .args(["plan", "--budget", "1s", "--format", self.runner, "--tests"])
            .arg(sb.path().join("all.txt"))
            .assert()
            .success()
            .get_output()
            .clone();
        let args = stdout(&out).lines().map(str::to_owned).collect();
        (selected, args)
    }

    /// The expected selection: the failing tests and those a must-run pattern names.
    fn expected(&self) -> BTreeSet<String> {
        let globs: Vec<globset::GlobMatcher> = self
            .must_run
            .iter()
            .map(|p| globset::Glob::new(p).expect("glob").compile_matcher())
            .collect();
        self.all
            .iter()
            .filter(|id| self.failing.contains(id) || globs.iter().any(|g| g.is_match(id)))
            .map(|id| (*id).to_owned())
            .collect()
    }

    /// Plan, run the runner with the plan's arguments (`run(args)` returns its reports), and
    /// check from its JUnit that exactly the planned tests ran.
    fn check(&self, run: impl FnOnce(&Sandbox, &[String]) -> Vec<PathBuf>) {
        let sb = self.history();
        let (selected, args) = self.plan(&sb);
        assert_eq!(selected, self.expected(), "the plan is not the one set up");
        assert!(
            selected.len() < self.all.len(),
            "a subset must be planned: {selected:?}"
        );
        let reports = run(&sb, &args);
        let ran = executed(&reports);
        assert_eq!(
            ran, selected,
            "{}: the runner ran other tests than planned, with arguments {args:#?}",
            self.runner
        );
    }
}

/// Tests that executed (passed, failed or flaky — not skipped) according to the reports.
fn executed(reports: &[PathBuf]) -> BTreeSet<String> {
    let inputs: Vec<String> = reports
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert!(!inputs.is_empty(), "the runner wrote no report");
    junit::read_reports(&inputs, &Limits::default())
        .expect("the runner's report reads")
        .into_iter()
        .filter(|t| t.outcome != Verdict::Skipped)
        .map(|t| t.id)
        .collect()
}

/// Run `cmd`, returning its output; its exit code is the runner's business (failing tests).
fn output(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("start the runner");
    assert!(
        out.status.code().is_some(),
        "the runner was killed: {}",
        stderr(&out)
    );
    out
}

fn xml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    files
}

// ---------------------------------------------------------------- pytest

const PYTEST_ALL: &[&str] = &[
    "tests.unit.test_sample::test_passes",
    "tests.unit.test_sample::test_passes_too",
    "tests.unit.test_sample::test_fails",
    "tests.unit.test_sample::test_param[1]",
    "tests.unit.test_sample::test_param[2]",
    r#"tests.unit.test_sample::test_param[with space [x] 'q' "dq" \xfc]"#,
    "tests.unit.test_sample::test_param[a::b]",
    "tests.unit.test_sample::test_ünïcode_名前",
    "tests.unit.test_sample.TestGroup::test_method",
    "tests.unit.test_sample.TestGroup.TestInner::test_deep",
    "tests.test_other::test_other",
    "tests.test_other::test_passes",
];

const PYTEST: Scenario<'static> = Scenario {
    runner: "pytest",
    all: PYTEST_ALL,
    failing: &[
        "tests.unit.test_sample::test_fails",
        r#"tests.unit.test_sample::test_param[with space [x] 'q' "dq" \xfc]"#,
        "tests.unit.test_sample::test_param[a::b]",
        "tests.unit.test_sample.TestGroup.TestInner::test_deep",
    ],
    must_run: &["*ünïcode*", "tests.test_other::test_passes"],
};

pub(crate) fn pytest() -> Command {
    require("python3", &["-m", "pytest", "--version"]);
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "pytest"])
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

#[test]
fn pytest_runs_exactly_the_plan_from_an_args_file() {
    PYTEST.check(|sb, args| {
        let dir = copy_fixture(sb, "pytest");
        let argsfile = sb.write("plan.args", args.join("\n") + "\n");
        let report = sb.path().join("pytest.xml");
        output(
            pytest()
                .current_dir(&dir)
                .arg("-q")
                .arg(format!("--junitxml={}", report.display()))
                .arg(format!("@{}", argsfile.display())),
        );
        vec![report]
    });
}

#[test]
fn pytest_runs_the_plan_in_plan_order() {
    let sb = PYTEST.history();
    let plan = sb.plan_json(PYTEST.all, &["--budget", "1s"]);
    let order: Vec<String> = crate::util::planned(&plan)
        .into_iter()
        .filter(|(_, selected, _)| *selected)
        .map(|(id, _, _)| id)
        .collect();
    let (_, args) = PYTEST.plan(&sb);
    let dir = copy_fixture(&sb, "pytest");
    let report = sb.path().join("pytest.xml");
    output(
        pytest()
            .current_dir(&dir)
            .arg(format!("--junitxml={}", report.display()))
            .args(&args),
    );
    let text = std::fs::read_to_string(&report).expect("pytest wrote its report");
    let positions: Vec<usize> = order
        .iter()
        .map(|id| {
            let name = id.split_once("::").expect("classname::name").1;
            let escaped = name.replace('"', "&quot;");
            text.find(&format!("name=\"{escaped}\""))
                .unwrap_or_else(|| panic!("{id} not in the report"))
        })
        .collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(positions, sorted, "pytest did not keep the plan's order");
}

// ---------------------------------------------------------------- cargo-nextest, cargo test

const CARGO_NEXTEST_ALL: &[&str] = &[
    "sample::at_the_root",
    "sample::tests::passes",
    "sample::tests::passes_too",
    "sample::tests::passes_also",
    "sample::tests::fails",
    "sample::tests::ünïcode_名前",
    "sample::tests::nested::in_module",
    "sample::tests::nested::in_module_too",
    "sample::it::integration_root",
    "sample::it::integration_other",
    "sample::it::group::integration_nested",
];

#[test]
fn nextest_runs_exactly_the_plan() {
    require("cargo", &["nextest", "--version"]);
    Scenario {
        runner: "nextest",
        all: CARGO_NEXTEST_ALL,
        failing: &[
            "sample::tests::fails",
            "sample::tests::nested::in_module",
            "sample::it::group::integration_nested",
        ],
        must_run: &[
            "*ünïcode*",
            "sample::at_the_root",
            "sample::it::integration_root",
        ],
    }
    .check(|sb, args| {
        let dir = copy_fixture(sb, "cargo");
        output(
            Command::new("cargo")
                .current_dir(&dir)
                .env("CARGO_TARGET_DIR", cache_dir("cargo-target"))
                .args(["nextest", "run", "--profile", "ci", "--no-fail-fast"])
                .args(args),
        );
        // nextest writes the report under the workspace's own target/, whatever the target dir.
        vec![dir.join("target/nextest/ci/junit.xml")]
    });
}

#[test]
fn cargo_test_runs_exactly_the_plan() {
    require("cargo", &["--version"]);
    Scenario {
        runner: "cargo",
        all: &[
            "crate::at_the_root",
            "tests::passes",
            "tests::passes_too",
            "tests::passes_also",
            "tests::fails",
            "tests::ünïcode_名前",
            "tests::nested::in_module",
            "tests::nested::in_module_too",
            "integration::integration_root",
            "integration::integration_other",
            "integration::group::integration_nested",
        ],
        failing: &[
            "tests::fails",
            "tests::nested::in_module",
            "integration::group::integration_nested",
        ],
        must_run: &["*ünïcode*", "crate::at_the_root"],
    }
    .check(|sb, args| {
        let dir = copy_fixture(sb, "cargo");
        // libtest's own JUnit (unstable, hence RUSTC_BOOTSTRAP): one document per test binary,
        // one a line, on standard output.
        let out = output(
            Command::new("cargo")
                .current_dir(&dir)
                .env("CARGO_TARGET_DIR", cache_dir("cargo-target"))
                .env("RUSTC_BOOTSTRAP", "1")
                .args(["test", "-q", "--lib", "--tests", "--no-fail-fast", "--"])
                .args(["-Z", "unstable-options", "--format", "junit"])
                .args(args),
        );
        stdout(&out)
            .lines()
            .filter(|l| l.starts_with("<?xml"))
            .enumerate()
            .map(|(i, doc)| sb.write(&format!("cargo-{i}.xml"), doc))
            .collect()
    });
}

// ---------------------------------------------------------------- go

#[test]
fn go_runs_exactly_the_plan() {
    require("go", &["version"]);
    require("gotestsum", &["--version"]);
    Scenario {
        runner: "go",
        all: &[
            "example.com/sample::TestPasses",
            "example.com/sample::TestPassesToo",
            "example.com/sample::TestFails",
            "example.com/sample::TestÜnïcode名前",
            "example.com/sample::TestParam",
            "example.com/sample::TestParam/n=1",
            "example.com/sample::TestParam/with_space_[x]_'q'_\"dq\"_ünïcode_名前",
            "example.com/sample/sub::TestSub",
            "example.com/sample/sub::TestPasses",
        ],
        // Selection is per top-level test, so a whole family fails together here.
        failing: &[
            "example.com/sample::TestFails",
            "example.com/sample::TestParam",
            "example.com/sample::TestParam/n=1",
            "example.com/sample::TestParam/with_space_[x]_'q'_\"dq\"_ünïcode_名前",
        ],
        must_run: &["*ünïcode名前", "example.com/sample/sub::TestSub"],
    }
    .check(|sb, args| {
        let dir = copy_fixture(sb, "go");
        let report = sb.path().join("go.xml");
        output(
            Command::new("gotestsum")
                .current_dir(&dir)
                .env("GOFLAGS", "-mod=mod")
                .env("GOPROXY", "off")
                .arg("--junitfile")
                .arg(&report)
                .args(["--format", "testname", "--"])
                .args(args),
        );
        vec![report]
    });
}

// ---------------------------------------------------------------- Jest, Vitest

/// A JavaScript fixture runs in place: its `node_modules` is installed there.
fn js_fixture(name: &str, bin: &str) -> PathBuf {
    require("node", &["--version"]);
    let dir = Path::new(FIXTURES).join(name);
    assert!(
        dir.join(bin).exists(),
        "{} is missing: the runner is not installed; run .ci/install-runners",
        dir.join(bin).display()
    );
    dir
}

#[test]
fn jest_runs_exactly_the_plan() {
    Scenario {
        runner: "jest",
        all: &[
            "math passes::math passes",
            "math passes too::math passes too",
            "math Passes differently::math Passes differently",
            "math fails::math fails",
            "math param 1::math param 1",
            "math param 2::math param 2",
            "math name with spaces [brackets] 'single' \"double\" ünïcode 名前 (a|b) $1 .*::math name with spaces [brackets] 'single' \"double\" ünïcode 名前 (a|b) $1 .*",
            "math nested inner::math nested inner",
            "top level::top level",
            "other one::other one",
        ],
        failing: &["math fails::math fails", "math param 2::math param 2"],
        must_run: &["*ünïcode*", "math nested inner::*", "top level::*"],
    }
    .check(|sb, args| {
        let dir = js_fixture("jest", "node_modules/.bin/jest");
        output(
            Command::new("node")
                .current_dir(&dir)
                .env("JEST_JUNIT_OUTPUT_DIR", sb.path())
                .env("JEST_JUNIT_OUTPUT_NAME", "jest.xml")
                .args(["node_modules/jest/bin/jest.js", "--ci"])
                .arg(format!("--cacheDirectory={}", sb.path().join("jest-cache").display()))
                .args(["--reporters=default", "--reporters=jest-junit"])
                .args(args),
        );
        vec![sb.path().join("jest.xml")]
    });
}

#[test]
fn vitest_runs_exactly_the_plan() {
    Scenario {
        runner: "vitest",
        all: &[
            "sample.test.js::math > passes",
            "sample.test.js::math > Passes",
            "sample.test.js::math > fails",
            "sample.test.js::math > param 1",
            "sample.test.js::math > param 2",
            "sample.test.js::math > name with spaces [brackets] 'single' \"double\" ünïcode 名前 (a|b) $1 .*",
            "sample.test.js::math > nested > inner",
            "sample.test.js::top level",
            "other.test.js::other one",
            "other.test.js::top level",
        ],
        failing: &["sample.test.js::math > fails", "sample.test.js::math > param 2"],
        must_run: &["*ünïcode*", "*nested > inner", "sample.test.js::top level"],
    }
    .check(|sb, args| {
        let dir = js_fixture("vitest", "node_modules/vitest/vitest.mjs");
        let report = sb.path().join("vitest.xml");
        output(
            Command::new("node")
                .current_dir(&dir)
                .args(["node_modules/vitest/vitest.mjs", "run"])
                .args(["--reporter=default", "--reporter=junit"])
                .arg(format!("--outputFile.junit={}", report.display()))
                .args(args),
        );
        vec![report]
    });
}

// ---------------------------------------------------------------- Maven, Gradle

const JAVA_ALL: &[&str] = &[
    "com.example.SampleTest::passes",
    "com.example.SampleTest::passesToo",
    "com.example.SampleTest::fails",
    "com.example.SampleTest::ünïcode名前",
    "com.example.ParamTest::lessThanFour[0: n=1 [x] 'q' \"dq\" ü, plus+hash#]",
    "com.example.ParamTest::lessThanFour[1: n=2 [x] 'q' \"dq\" ü, plus+hash#]",
    "com.example.ParamTest::lessThanFour[2: n=3 [x] 'q' \"dq\" ü, plus+hash#]",
    "com.example.ParamTest::other[0: n=1 [x] 'q' \"dq\" ü, plus+hash#]",
    "com.example.ParamTest::other[1: n=2 [x] 'q' \"dq\" ü, plus+hash#]",
    "com.example.ParamTest::other[2: n=3 [x] 'q' \"dq\" ü, plus+hash#]",
];

const JAVA_FAILING: &[&str] = &[
    "com.example.SampleTest::fails",
    "com.example.ParamTest::lessThanFour[1: n=2 [x] 'q' \"dq\" ü, plus+hash#]",
    "com.example.ParamTest::other[2: n=3 [x] 'q' \"dq\" ü, plus+hash#]",
];

#[test]
fn maven_runs_exactly_the_plan() {
    require("mvn", &["--version"]);
    Scenario {
        runner: "maven",
        all: JAVA_ALL,
        failing: JAVA_FAILING,
        must_run: &["*ünïcode*"],
    }
    .check(|sb, args| {
        let dir = copy_fixture(sb, "maven");
        output(
            Command::new("mvn")
                .current_dir(&dir)
                .args(["-q", "-B", "-s", "settings.xml"])
                .arg(format!("-Dmaven.repo.local={}", cache_dir("m2").display()))
                .arg("test")
                .args(args),
        );
        xml_files(&dir.join("target/surefire-reports"))
    });
}

#[test]
fn gradle_runs_exactly_the_plan() {
    require("gradle", &["--version"]);
    Scenario {
        runner: "gradle",
        all: JAVA_ALL,
        failing: JAVA_FAILING,
        must_run: &["*ünïcode*"],
    }
    .check(|sb, args| {
        let dir = copy_fixture(sb, "gradle");
        output(
            Command::new("gradle")
                .current_dir(&dir)
                .args(["--offline", "--no-daemon", "-q", "-g"])
                .arg(cache_dir("gradle-home"))
                .arg("test")
                .args(args),
        );
        xml_files(&dir.join("build/test-results/test"))
    });
}

// ---------------------------------------------------------------- PHPUnit

#[test]
fn phpunit_runs_exactly_the_plan() {
    require("phpunit", &["--version"]);
    Scenario {
        runner: "phpunit",
        all: &[
            "SampleTest::testPasses",
            "SampleTest::testPassesToo",
            "SampleTest::testFails",
            "SampleTest::testParam with data set \"one\"",
            "SampleTest::testParam with data set \"with space [x] 'q' \"dq\" ünïcode 名前 (a|b) $1 .* / #\"",
            "SampleTest::testParam with data set #0",
            "SampleTest::testÜnïcode名前",
            "App.Sub.OtherTest::testPasses",
            "App.Sub.OtherTest::testOther",
        ],
        failing: &[
            "SampleTest::testFails",
            "SampleTest::testParam with data set \"with space [x] 'q' \"dq\" ünïcode 名前 (a|b) $1 .* / #\"",
        ],
        must_run: &["*ünïcode名前", "App.Sub.OtherTest::testPasses"],
    }
    .check(|sb, args| {
        let dir = copy_fixture(sb, "phpunit");
        let report = sb.path().join("phpunit.xml");
        output(
            Command::new("phpunit")
                .current_dir(&dir)
                .arg("--do-not-cache-result")
                .arg("--log-junit")
                .arg(&report)
                .args(args)
                .arg("tests"),
        );
        vec![report]
    });
}

// ---------------------------------------------------------------- RSpec

#[test]
fn rspec_runs_exactly_the_plan() {
    require("rspec", &["--version"]);
    Scenario {
        runner: "rspec",
        all: &[
            "spec.models.user_spec::User validates the name",
            "spec.models.user_spec::User validates the name twice",
            "spec.models.user_spec::User fails",
            "spec.models.user_spec::User with spaces [x] 'q' \"dq\" ünïcode 名前 (a|b) .*",
            "spec.models.user_spec::User when nested saves",
            "spec.lib.parser_spec::Parser parses",
            "spec.lib.parser_spec::Parser saves",
        ],
        // `-e` matches substrings: "validates the name twice" is planned, "validates the
        // name" (a substring of it, not the other way round) is not.
        failing: &[
            "spec.models.user_spec::User fails",
            "spec.models.user_spec::User validates the name twice",
        ],
        must_run: &[
            "*ünïcode*",
            "*when nested saves",
            "spec.lib.parser_spec::Parser parses",
        ],
    }
    .check(|sb, args| {
        let dir = copy_fixture(sb, "rspec");
        let report = sb.path().join("rspec.xml");
        output(
            Command::new("rspec")
                .current_dir(&dir)
                .args([
                    "-r",
                    "rspec_junit_formatter",
                    "--format",
                    "RspecJunitFormatter",
                ])
                .arg("--out")
                .arg(&report)
                .args(args),
        );
        vec![report]
    });
}

// ---------------------------------------------------------------- no runner here

/// A format's output for a cold start (everything selected) over awkward ids: dotnet cannot
/// run here, so its syntax is pinned against its documentation (RSpec's too, beside the real
/// runner, for the shapes the sample project does not have).
fn cold_start_args(runner: &str, ids: &[&str]) -> String {
    let sb = Sandbox::new();
    let tests = sb.write_tests("tests.txt", ids);
    let out = sb
        .fedtest()
        .args(["plan", "--format", runner, "--tests"])
        .arg(tests)
        .assert()
        .success()
        .get_output()
        .clone();
    stdout(&out)
}

#[test]
fn rspec_format_follows_the_documented_syntax() {
    insta::assert_snapshot!(
        cold_start_args(
            "rspec",
            &[
                "spec.models.user_spec::User validates the name",
                "spec.models.user_spec::User with spaces [x] 'q' \"dq\" ünïcode 名前",
                "spec.lib.parser_spec::Parser parses (a|b)",
            ]
        ),
        @r#"
    spec/models/user_spec.rb
    spec/lib/parser_spec.rb
    -e
    User validates the name
    -e
    User with spaces [x] 'q' "dq" ünïcode 名前
    -e
    Parser parses (a|b)
    "#
    );
}

#[test]
fn dotnet_format_follows_the_documented_syntax() {
    insta::assert_snapshot!(
        cold_start_args(
            "dotnet",
            &[
                "App.Tests.MathTests::Adds",
                "App.Tests.MathTests::App.Tests.MathTests.Divides",
                "App.Tests.MathTests::Theory(a: 1, b: \"x|y\")",
                "App.Tests.MathTests::Theory(a: 2, b: \"z\")",
                "App.Tests.Ünïcode名前::Works",
            ]
        ),
        @r"
    --filter
    FullyQualifiedName=App.Tests.MathTests.Adds|FullyQualifiedName=App.Tests.MathTests.Divides|FullyQualifiedName~App.Tests.MathTests.Theory|FullyQualifiedName=App.Tests.Ünïcode名前.Works
    "
    );
}

#[test]
fn an_empty_selection_prints_nothing_for_every_runner() {
    for runner in [
        "pytest", "nextest", "cargo", "go", "jest", "vitest", "maven", "gradle", "rspec",
        "phpunit", "dotnet",
    ] {
        assert_eq!(cold_start_args(runner, &[]), "", "{runner}");
    }
}

// ---------------------------------------------------------------- fedtest run

/// `fedtest run` in `dir` (the sandbox unless given), with the sandbox's data dir.
fn fedtest_run(sb: &Sandbox, dir: &Path, args: &[&str], command: &[&str]) -> Output {
    let mut cmd = sb.std_fedtest();
    let config = sb.path().join("fedtest.toml");
    if config.exists() {
        cmd.arg("--config").arg(config);
    }
    cmd.current_dir(dir)
        .arg("run")
        .args(args)
        .arg("--")
        .args(command)
        .output()
        .expect("run fedtest")
}

fn builds_recorded(sb: &Sandbox) -> u64 {
    let store = fedtest::history::Store::open_existing(&sb.data_dir())
        .expect("open store")
        .expect("a store");
    store.build_count().expect("count builds")
}

#[test]
fn run_selects_records_and_exits_as_the_runner_did() {
    let sb = PYTEST.history();
    let dir = copy_fixture(&sb, "pytest");
    let before = builds_recorded(&sb);
    let report = sb.path().join("run.xml");
    let junit_arg = format!("--junitxml={}", report.display());
    let out = fedtest_run(
        &sb,
        &dir,
        &[
            "--runner",
            "pytest",
            "--tests",
            sb.path().join("all.txt").to_str().expect("utf-8 path"),
            "--budget",
            "1s",
            "--build",
            "run-1",
            "--junit",
            report.to_str().expect("utf-8 path"),
        ],
        &["python3", "-m", "pytest", "-q", &junit_arg],
    );
    // `test_fails` is planned and fails: pytest's exit code 1 is fedtest's.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("failed"),
        "the runner's output streams through: {}",
        stdout(&out)
    );
    assert_eq!(executed(&[report]), PYTEST.expected());
    assert_eq!(builds_recorded(&sb), before + 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("recorded build run-1"),
        "{}",
        stderr(&out)
    );
}

/// A stand-in runner: writes its arguments to `args.txt` and a report with `cases` passing
/// test rows (0 = an empty report) to `out.xml`, then exits with `code`.
fn fake_runner(cases: usize, code: i32) -> Vec<String> {
    let rows: String = (0..cases)
        .map(|i| format!("<testcase classname=\"fake\" name=\"t{i}\"/>"))
        .collect();
    let script = format!(
        "printf '%s\\n' \"$@\" > args.txt; printf '<testsuite>{rows}</testsuite>' > out.xml; exit {code}"
    );
    vec!["sh".into(), "-c".into(), script, "sh".into()]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn run_without_history_runs_the_whole_command() {
    let sb = Sandbox::new();
    let mut command = fake_runner(2, 0);
    command.extend(["-q".into(), "{tests}".into()]);
    let out = fedtest_run(
        &sb,
        sb.path(),
        &[
            "--runner", "pytest", "--junit", "out.xml", "--build", "first",
        ],
        &strs(&command),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // `{tests}` is removed and nothing is added: every test runs.
    assert_eq!(
        std::fs::read_to_string(sb.path().join("args.txt")).unwrap(),
        "-q\n"
    );
    assert!(
        stderr(&out).contains("recorded build first"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_substitutes_the_placeholder_in_the_runners_syntax() {
    let sb = PYTEST.history();
    let (_, planned) = PYTEST.plan(&sb);
    let mut command = fake_runner(1, 0);
    command.extend(["{tests}".into(), "--last".into()]);
    let out = fedtest_run(
        &sb,
        sb.path(),
        &["--runner", "pytest", "--budget", "1s", "--junit", "out.xml"],
        &strs(&command),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let args = std::fs::read_to_string(sb.path().join("args.txt")).unwrap();
    let lines: Vec<&str> = args.lines().collect();
    assert_eq!(lines.last(), Some(&"--last"));
    let ids: BTreeSet<String> = lines[..lines.len() - 1]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(
        ids,
        planned.into_iter().collect(),
        "history candidates, pytest syntax"
    );
}

#[test]
fn run_refuses_to_pass_when_no_test_ran() {
    let sb = Sandbox::new();
    // An empty report: the command "passed" without running anything.
    let out = fedtest_run(
        &sb,
        sb.path(),
        &["--runner", "pytest", "--junit", "out.xml"],
        &strs(&fake_runner(0, 0)),
    );
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(stderr(&out).contains("no test ran"), "{}", stderr(&out));

    // A report left over from an earlier build is not this run's evidence.
    sb.write("old.xml", Junit::new().pass("fake::old", 1.0).to_xml());
    let out = fedtest_run(
        &sb,
        sb.path(),
        &["--runner", "pytest", "--junit", "old.xml"],
        &["true"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("wrote no JUnit report"),
        "{}",
        stderr(&out)
    );

    // A failing command without a report keeps its own exit code.
    let out = fedtest_run(
        &sb,
        sb.path(),
        &["--runner", "pytest", "--junit", "missing.xml"],
        &["sh", "-c", "exit 3"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn run_shards_split_the_plan_without_overlap() {
    let sb = PYTEST.history();
    let mut union = BTreeSet::new();
    let mut sizes = Vec::new();
    for i in 1..=3 {
        for attempt in 0..2 {
            let out = fedtest_run(
                &sb,
                sb.path(),
                &[
                    "--runner",
                    "pytest",
                    "--tests",
                    "all.txt",
                    "--budget",
                    "100%",
                    "--shard",
                    &format!("{i}/3"),
                    "--junit",
                    "out.xml",
                    "--no-train",
                    "--build",
                    &format!("shard-{i}-{attempt}"),
                ],
                &strs(&fake_runner(1, 0)),
            );
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let args = std::fs::read_to_string(sb.path().join("args.txt")).unwrap();
            let mine: BTreeSet<String> = args.lines().map(str::to_owned).collect();
            if attempt == 0 {
                assert!(mine.is_disjoint(&union), "shards overlap: {mine:?}");
                sizes.push(mine.len());
                union.extend(mine);
            } else {
                assert_eq!(sizes[i - 1], mine.len(), "shard {i} is not deterministic");
            }
        }
    }
    assert_eq!(union.len(), PYTEST.all.len(), "every test in some shard");
    assert!(sizes.iter().all(|&n| n == 4), "balanced: {sizes:?}");
}

#[test]
fn run_rejects_a_bad_shard() {
    let sb = Sandbox::new();
    let out = fedtest_run(
        &sb,
        sb.path(),
        &["--runner", "pytest", "--shard", "4/3", "--junit", "out.xml"],
        &["true"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 ≤ I ≤ N"), "{}", stderr(&out));
}

/// Issue 13: reordering risks nothing, so a cold start that runs every test still hands pytest
/// the order — the likeliest failure first — when the candidates name every test.
#[test]
fn issue_13_a_cold_start_passes_every_test_in_order() {
    let sb = Sandbox::new();
    let build = || {
        Junit::new()
            .pass("tests.test_a::test_one", 0.1)
            .pass("tests.test_a::test_two", 0.1)
            .fail("tests.test_b::test_breaks", 0.1)
    };
    sb.record("b1", &build());
    sb.write(
        "candidates.txt",
        "tests/test_a.py::test_one\ntests/test_a.py::test_two\ntests/test_b.py::test_breaks\n\n\
         3 tests collected in 0.01s\n",
    );
    let out = fedtest_run(
        &sb,
        sb.path(),
        &[
            "--runner",
            "pytest",
            "--tests",
            "candidates.txt",
            "--budget",
            "30%",
            "--junit",
            "out.xml",
        ],
        &strs(&fake_runner(3, 0)),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("cold start: deselecting waits for"), "{err}");
    assert!(err.contains("left out 1 candidate line"), "{err}");
    let args = std::fs::read_to_string(sb.path().join("args.txt")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "tests/test_b.py::test_breaks",
            "tests/test_a.py::test_one",
            "tests/test_a.py::test_two"
        ],
        "{err}"
    );

    // Candidates from the history miss new tests: then everything runs unchanged.
    let out = fedtest_run(
        &sb,
        sb.path(),
        &[
            "--runner", "pytest", "--budget", "30%", "--junit", "out.xml",
        ],
        &strs(&fake_runner(3, 0)),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(sb.path().join("args.txt"))
            .unwrap()
            .trim(),
        "",
        "{}",
        stderr(&out)
    );
}
