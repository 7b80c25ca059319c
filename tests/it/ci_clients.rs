//! The CI integrations (`action.yml`, `.github/workflows/release.yml`, the GitLab component
//! `templates/fedtest.yml`, the `Dockerfile`) checked with the real CI clients: actionlint,
//! check-jsonschema, hadolint, act and gitlab-ci-local. A missing client fails the test with a
//! message naming `.ci/install-ci-clients` — these tests never skip.
//!
//! The image build needs podman and minutes, so it is opt-in: `FEDTEST_PODMAN_TESTS=1 cargo test
//! --test it ci_clients::docker_image_builds_with_podman -- --ignored` (see docs/development.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use crate::util::{BIN, git};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The commit `action.yml` pins actions/cache at (mapped to a local stub for act).
const CACHE_ACTION: &str = "actions/cache@5a3ec84eff668545956fd18022155c47e93e2684";

fn root() -> &'static Path {
    Path::new(ROOT)
}

/// The client `name`, or a failure naming the installer.
fn client(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: run `bash .ci/install-ci-clients` (pip/npm/apt) first"
    );
    Command::new(name)
}

fn run(mut cmd: Command) -> Output {
    let out = cmd.output().expect("start the command");
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A temp dir with `bin/fedtest` (the binary under test) and an example repository, committed.
struct ExampleRepo {
    dir: TempDir,
}

impl ExampleRepo {
    fn new(example: &str, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("fedtest-ci-")
            .tempdir()
            .unwrap();
        let repo = dir.path().join("repo");
        copy_dir(&root().join("examples/ci").join(example), &repo);
        for (from, to) in extra {
            let dest = repo.join(to);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(root().join(from), dest).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::os::unix::fs::symlink(BIN, dir.path().join("bin/fedtest")).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "build 1: broken"]);
        ExampleRepo { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn repo(&self) -> PathBuf {
        self.path().join("repo")
    }

    /// PATH with the binary under test first.
    fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// The second build fixes the bug.
    fn fix(&self) {
        git(&self.repo(), &["rm", "-q", "BROKEN"]);
        git(&self.repo(), &["commit", "-q", "-m", "build 2: fixed"]);
    }
}

#[test]
fn actionlint_passes_on_the_workflows() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.push(root().join("examples/ci/github/.github/workflows/test.yml"));
    assert!(files.iter().any(|f| f.ends_with("release.yml")));
    // shellcheck runs inside actionlint on every `run:` script.
    client("shellcheck");
    let mut cmd = client("actionlint");
    cmd.current_dir(root()).args(&files);
    run(cmd);
}

#[test]
fn schemas_accept_the_action_workflows_and_component() {
    let mut cmd = client("check-jsonschema");
    cmd.args(["--builtin-schema", "vendor.github-actions"])
        .arg(root().join("action.yml"));
    run(cmd);

    let mut cmd = client("check-jsonschema");
    cmd.args(["--builtin-schema", "vendor.github-workflows"])
        .arg(root().join(".github/workflows/release.yml"))
        .arg(root().join(".github/workflows/ci.yml"))
        .arg(root().join("examples/ci/github/.github/workflows/test.yml"));
    run(cmd);

    // A component is two YAML documents (the `spec:` header, then the jobs): check each.
    let template = std::fs::read_to_string(root().join("templates/fedtest.yml")).unwrap();
    let (header, body) = template
        .split_once("\n---\n")
        .expect("templates/fedtest.yml has a spec header and a body");
    assert!(header.contains("spec:") && header.contains("inputs:"));
    let dir = tempfile::tempdir().unwrap();
    for (name, doc) in [("spec.yml", header), ("jobs.yml", body)] {
        std::fs::write(dir.path().join(name), doc).unwrap();
        let mut cmd = client("check-jsonschema");
        cmd.args(["--builtin-schema", "vendor.gitlab-ci"])
            .arg(dir.path().join(name));
        run(cmd);
    }
    assert!(body.contains("junit:") && body.contains("dotenv:") && body.contains("cache:"));
}

#[test]
fn hadolint_passes_on_the_dockerfile() {
    let mut cmd = client("hadolint");
    cmd.arg(root().join("Dockerfile"));
    run(cmd);
}

/// act, as docs/ci.md runs it offline: on the host, the history cache on the shipped stub
/// (`examples/ci/act-cache`) with its entries in `store`. `run_id`: `None` keeps act's own
/// (always 1).
fn act(ex: &ExampleRepo, store: &Path, run_id: Option<&str>) -> Output {
    act_with_path(ex, store, run_id, &ex.path_env())
}

fn act_with_path(ex: &ExampleRepo, store: &Path, run_id: Option<&str>, path: &str) -> Output {
    let mut cmd = client("act");
    cmd.current_dir(ex.repo())
        .env("PATH", path)
        .env_remove("GITHUB_ACTIONS")
        .args([
            "push",
            "-P",
            "ubuntu-latest=-self-hosted",
            "--action-offline-mode",
            "--pull=false",
            "--no-cache-server",
            "--local-repository",
            &format!(
                "{CACHE_ACTION}={}",
                root().join("examples/ci/act-cache").display()
            ),
            "--env",
            &format!("FEDTEST_ACT_CACHE={}", store.display()),
        ]);
    if let Some(id) = run_id {
        cmd.args(["--env", &format!("GITHUB_RUN_ID={id}")]);
    }
    cmd.output().expect("start act")
}

/// The values the example workflow prints as `OUT <key><value>` (`key` ends with `=` or `: `).
fn outputs(log: &str, key: &str) -> Vec<String> {
    let tag = format!("OUT {key}");
    log.lines()
        .filter_map(|l| l.split_once(&tag).map(|(_, rest)| rest.trim().to_owned()))
        .collect()
}

fn one(log: &str, name: &str) -> String {
    let v = outputs(log, &format!("{name}="));
    assert_eq!(v.len(), 1, "one `OUT {name}` line expected in:\n{log}");
    v[0].clone()
}

#[test]
fn act_runs_the_action_twice_record_then_plan() {
    let ex = ExampleRepo::new("github", &[("action.yml", "action.yml")]);
    let store = ex.path().join("cache-store");
    let act = |run_id: &str| act(&ex, &store, Some(run_id));

    // Build 1: no history, so everything runs; 25 tests fail, the job fails as pytest did, and
    // the history is recorded and saved anyway.
    let first = act("101");
    let log = text(&first);
    assert!(!first.status.success(), "build 1 must fail:\n{log}");
    assert!(log.contains("25 failed, 15 passed"), "{log}");
    assert!(log.contains("recorded build gh-101-1-test"), "{log}");
    assert!(log.contains("STUB saved fedtest-Linux-test-101-1"), "{log}");
    // fedtest itself wrote the outputs and the summary: everything ran, nothing was planned.
    assert_eq!(one(&log, "full-run"), "true", "{log}");
    assert_eq!(
        one(&log, "full-run-reason"),
        "no history yet: the whole command runs",
        "{log}"
    );
    assert_eq!(one(&log, "total-count"), "0", "{log}");
    assert_eq!(one(&log, "exit-code"), "1", "{log}");
    assert_eq!(one(&log, "plan-file"), "", "{log}");
    assert_eq!(log.matches("Summary - ## fedtest run").count(), 1, "{log}");
    assert!(log.contains("The test command exited with **1**."), "{log}");

    // Build 2: the history is restored by prefix, the plan (30%) runs a subset with pytest.
    ex.fix();
    let second = act("102");
    let log = text(&second);
    assert!(second.status.success(), "build 2 must pass:\n{log}");
    assert!(
        log.contains("STUB restored fedtest-Linux-test-101-1"),
        "{log}"
    );
    assert_eq!(one(&log, "full-run"), "false", "{log}");
    let selected: usize = one(&log, "selected-count").parse().unwrap();
    let skipped: usize = one(&log, "skipped-count").parse().unwrap();
    assert!(selected >= 1 && skipped >= 1, "{log}");
    assert_eq!(selected + skipped, 40, "{log}");
    assert_eq!(one(&log, "total-count"), "40", "{log}");
    assert_eq!(one(&log, "exit-code"), "0", "{log}");
    assert!(
        one(&log, "estimated-seconds-saved").parse::<f64>().is_ok(),
        "{log}"
    );
    let ids = outputs(&log, "selected: ");
    assert_eq!(ids.len(), selected, "{log}");
    // The plan was made once, by `fedtest run`, which wrote the plan file the outputs name.
    assert_eq!(log.matches(" of 40 tests (").count(), 1, "{log}");
    assert_eq!(
        one(&log, "plan-file-selected"),
        selected.to_string(),
        "{log}"
    );
    // pytest ran exactly the selected tests.
    assert!(
        log.contains(&format!("{selected} passed in")) && !log.contains("FAILED"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "recorded build gh-102-1-test (#2): {selected} tests"
        )),
        "{log}"
    );
    // The job summary (once) names the counts and the riskiest tests.
    assert_eq!(log.matches("Summary - ## fedtest run").count(), 1, "{log}");
    assert!(
        log.contains(&format!("| {selected} | {skipped} | 40 | 30% |")),
        "{log}"
    );
    assert!(log.contains("### Riskiest tests"), "{log}");
    assert!(log.contains("```mermaid"), "{log}");
    // Issue 17: the confidence curve follows, from `fedtest eval` (input `curve`, default on).
    assert!(
        log.contains("### Confidence curve") && log.contains("xychart-beta"),
        "{log}"
    );
    assert!(log.contains("STUB saved fedtest-Linux-test-102-1"), "{log}");
}

/// Issue 16: the README's snippets are the ones the tests run — the action step of the example
/// workflow and the component's include, in the README and in docs/ci.md, and the act command
/// line (issue 13 moved it to docs/ci.md).
#[test]
fn readme_snippets_are_the_tested_examples() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let ci_page = std::fs::read_to_string(root().join("docs/ci.md")).unwrap();
    let workflow =
        std::fs::read_to_string(root().join("examples/ci/github/.github/workflows/test.yml"))
            .unwrap();
    let step: Vec<&str> = workflow
        .lines()
        .skip_while(|l| !l.contains("- name: Tests, planned by fedtest"))
        .take_while(|l| !l.contains("- name: Show the outputs"))
        .collect();
    assert!(step.len() > 5, "{workflow}");
    // The documented block is the same step, six columns less indented, from a release.
    for line in step {
        let line = line
            .strip_prefix("      ")
            .unwrap()
            .replace("uses: ./", "uses: <owner>/fedtest@<tag or commit SHA>");
        for (name, doc) in [("README.md", &readme), ("docs/ci.md", &ci_page)] {
            assert!(
                doc.lines().any(|l| l == line),
                "{name} lacks the example's line {line:?}"
            );
        }
    }
    // The component's include: the example's, from a published component instead of `local:`.
    let gitlab = std::fs::read_to_string(root().join("examples/ci/gitlab/.gitlab-ci.yml")).unwrap();
    assert!(gitlab.contains("  - local: templates/fedtest.yml"));
    let include: Vec<&str> = gitlab
        .lines()
        .skip_while(|l| *l != "include:")
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert!(include.len() > 5, "{gitlab}");
    for line in include {
        let line = line.replace(
            "- local: templates/fedtest.yml",
            "- component: $CI_SERVER_FQDN/<group>/fedtest/fedtest@<version>",
        );
        for (name, doc) in [("README.md", &readme), ("docs/ci.md", &ci_page)] {
            assert!(
                doc.lines().any(|l| l == line),
                "{name} lacks the GitLab example's line {line:?}"
            );
        }
    }
    for arg in [
        "-P ubuntu-latest=-self-hosted --action-offline-mode --pull=false --no-cache-server",
        &format!("--local-repository {CACHE_ACTION}=<fedtest checkout>/examples/ci/act-cache"),
        "--env FEDTEST_ACT_CACHE=",
    ] {
        assert!(
            ci_page.contains(arg),
            "docs/ci.md lacks the act arguments {arg:?}"
        );
    }
    let action = std::fs::read_to_string(root().join("action.yml")).unwrap();
    assert!(action.contains(&CACHE_ACTION.replace("actions/cache@", "actions/cache/restore@")));
}

/// Issue 16: a history restored from the cache that is not a fedtest store is fedtest's trouble,
/// not the build's: every test runs, and the job is as green or red as the tests.
#[test]
fn act_corrupt_cached_history_runs_every_test() {
    let ex = ExampleRepo::new("github", &[("action.yml", "action.yml")]);
    let store = ex.path().join("cache-store");
    let entry = store.join("fedtest-Linux-test-1-1-0000");
    std::fs::create_dir_all(&entry).unwrap();
    std::fs::write(entry.join("history.sqlite"), "not a database\n".repeat(100)).unwrap();

    let first = act(&ex, &store, Some("201"));
    let log = text(&first);
    assert!(!first.status.success(), "the tests failed:\n{log}");
    assert!(
        log.contains("STUB restored fedtest-Linux-test-1-1-0000"),
        "{log}"
    );
    assert!(log.contains("cannot read the history"), "{log}");
    assert!(log.contains("25 failed, 15 passed"), "{log}");
    assert_eq!(one(&log, "full-run"), "true", "{log}");
    assert_eq!(one(&log, "exit-code"), "1", "{log}");

    ex.fix();
    let second = act(&ex, &store, Some("202"));
    let log = text(&second);
    assert!(second.status.success(), "the tests passed:\n{log}");
    assert!(log.contains("40 passed"), "{log}");
    assert_eq!(one(&log, "full-run"), "true", "{log}");
    assert_eq!(one(&log, "gate"), "passed", "{log}");
}

/// Issue 16: a local copy of the action without fedtest on PATH says exactly what to do, and
/// the test command still runs, unchanged; the job is as red as the tests.
#[test]
fn act_without_a_binary_runs_the_test_command_unchanged() {
    let ex = ExampleRepo::new("github", &[("action.yml", "action.yml")]);
    let store = ex.path().join("cache-store");
    let path = std::env::var("PATH").unwrap_or_default();
    let out = act_with_path(&ex, &store, Some("401"), &path);
    let log = text(&out);
    if log.contains("fedtest on PATH:") {
        panic!("this test needs a PATH without fedtest:\n{log}");
    }
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("::warning title=fedtest::no fedtest binary (no fedtest on PATH;")
            && log.contains("Put fedtest on PATH before this step, or set `version: source`"),
        "{log}"
    );
    assert!(!log.contains("building from source"), "{log}");
    assert!(log.contains("25 failed, 15 passed"), "{log}");
    assert_eq!(one(&log, "full-run"), "true", "{log}");
    assert_eq!(one(&log, "exit-code"), "1", "{log}");
}

/// Issue 16: `gate: true` gives the verdict and annotates each failed test at its file and line,
/// found in the checkout — pytest's default JUnit (xunit2) names neither.
#[test]
fn act_gate_input_annotates_pytest_xunit2_failures_at_file_and_line() {
    let ex = ExampleRepo::new("github", &[("action.yml", "action.yml")]);
    let report = std::fs::read_to_string(ex.repo().join("pytest.ini")).unwrap();
    assert!(!report.contains("junit_family"), "pytest's default dialect");
    let store = ex.path().join("cache-store");
    let out = act(&ex, &store, Some("301"));
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert_eq!(one(&log, "gate"), "failed", "{log}");
    assert!(
        log.contains(
            "::error file=tests/test_calc.py,line=7,title=fedtest::test tests.test_calc::test_add[0] failed"
        ),
        "{log}"
    );
    // GitHub keeps 10 annotations per type and step: 9 named, then one that counts the rest.
    assert_eq!(
        log.matches("::error file=tests/test_calc.py,line=7,")
            .count(),
        9,
        "{log}"
    );
    assert!(log.contains("16 more tests like these"), "{log}");
}

/// Issue 16: act gives every run `GITHUB_RUN_ID=1`; a second commit under the same build id is a
/// new build (with a warning), so the history grows instead of silently stopping.
#[test]
fn act_same_run_id_on_two_commits_grows_the_history() {
    let ex = ExampleRepo::new("github", &[("action.yml", "action.yml")]);
    let store = ex.path().join("cache-store");
    let first = act(&ex, &store, None);
    let log = text(&first);
    assert!(log.contains("recorded build gh-1-1-test (#1)"), "{log}");

    ex.fix();
    let second = act(&ex, &store, None);
    let log = text(&second);
    assert!(second.status.success(), "{log}");
    assert!(
        log.contains("build id gh-1-1-test is already recorded for another commit"),
        "{log}"
    );
    assert!(log.contains("recorded build gh-1-1-test@"), "{log}");
    assert!(log.contains("(#2)"), "{log}");
    assert!(!log.contains("nothing changed"), "{log}");
    assert_eq!(
        std::fs::read_dir(&store).unwrap().count(),
        2,
        "two saved entries"
    );
}

/// The dotenv report the component's job wrote, as `(name, value)` pairs.
fn dotenv(repo: &Path) -> Vec<(String, String)> {
    let path =
        repo.join(".gitlab-ci-local/artifacts/fedtest/.gitlab-ci-reports/dotenv/fedtest.env");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.len() <= 5 * 1024, "dotenv reports are capped at 5 KB");
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn var(env: &[(String, String)], name: &str) -> String {
    env.iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("{name} missing from the dotenv report: {env:?}"))
        .1
        .clone()
}

#[test]
fn gitlab_ci_local_runs_the_component_twice_record_then_plan() {
    let ex = ExampleRepo::new(
        "gitlab",
        &[("templates/fedtest.yml", "templates/fedtest.yml")],
    );
    let glci = |expect_success: bool| {
        let mut cmd = client("gitlab-ci-local");
        cmd.current_dir(ex.repo())
            .env("PATH", ex.path_env())
            .env_remove("GITLAB_CI")
            .args([
                "--shell-isolation",
                "--no-artifacts-to-source",
                "--force-shell-executor",
            ]);
        let out = cmd.output().expect("start gitlab-ci-local");
        let log = text(&out);
        assert_eq!(out.status.success(), expect_success, "{log}");
        log
    };

    let log = glci(false);
    assert!(log.contains("25 failed, 15 passed"), "{log}");
    // gitlab-ci-local sets GITLAB_CI=false; the job is still recognised, so the build id is
    // the job's, not a content hash.
    assert!(log.contains("recorded build gl-"), "{log}");
    assert!(log.contains("cache created"), "{log}");
    let env = dotenv(&ex.repo());
    assert_eq!(var(&env, "FEDTEST_FULL_RUN"), "true");
    assert_eq!(
        var(&env, "FEDTEST_FULL_RUN_REASON"),
        "no history yet: the whole command runs"
    );
    assert_eq!(var(&env, "FEDTEST_EXIT_CODE"), "1");
    // fedtest's summary is a collapsible section, which gitlab-ci-local recognises.
    assert!(log.contains("fedtest_run_started"), "{log}");

    ex.fix();
    let log = glci(true);
    assert!(log.contains("imported cache"), "{log}");
    let env = dotenv(&ex.repo());
    assert_eq!(var(&env, "FEDTEST_FULL_RUN"), "false", "{log}");
    assert_eq!(var(&env, "FEDTEST_EXIT_CODE"), "0");
    assert_eq!(var(&env, "FEDTEST_TOTAL_COUNT"), "40");
    assert_eq!(var(&env, "FEDTEST_BUDGET"), "30%");
    assert!(
        var(&env, "FEDTEST_ESTIMATED_SECONDS_SAVED")
            .parse::<f64>()
            .is_ok()
    );
    assert!(log.contains("fedtest_run_started"), "{log}");
    assert!(log.contains("riskiest tests:"), "{log}");
    let selected: usize = var(&env, "FEDTEST_SELECTED_COUNT").parse().unwrap();
    let skipped: usize = var(&env, "FEDTEST_SKIPPED_COUNT").parse().unwrap();
    assert!(selected >= 1 && skipped >= 1, "{env:?}");
    assert_eq!(selected + skipped, 40);
    assert!(log.contains(&format!("{selected} passed")), "{log}");
    assert!(
        log.contains(&format!("(#2): {selected} tests, 0 failed")),
        "{log}"
    );
    // The JUnit report is kept as an artifact (gitlab-ci-local does not evaluate reports:junit).
    let junit = std::fs::read_to_string(
        ex.repo()
            .join(".gitlab-ci-local/artifacts/fedtest/report.xml"),
    )
    .expect("report.xml artifact");
    assert_eq!(junit.matches("<testcase ").count(), selected);
    // Issue 17: the confidence curve in the log and as an HTML artifact (input `curve`).
    assert!(log.contains("Confidence curve"), "{log}");
    let curve = std::fs::read_to_string(
        ex.repo()
            .join(".gitlab-ci-local/artifacts/fedtest/fedtest-curve.html"),
    )
    .expect("fedtest-curve.html artifact");
    assert!(curve.contains("<svg"), "{curve}");
}

/// Issue 16: the component with a corrupt cached history runs every test and is as green as
/// the tests.
#[test]
fn gitlab_ci_local_corrupt_cached_history_runs_every_test() {
    let ex = ExampleRepo::new(
        "gitlab",
        &[("templates/fedtest.yml", "templates/fedtest.yml")],
    );
    let glci = || {
        let mut cmd = client("gitlab-ci-local");
        cmd.current_dir(ex.repo())
            .env("PATH", ex.path_env())
            .env_remove("GITLAB_CI")
            .args([
                "--shell-isolation",
                "--no-artifacts-to-source",
                "--force-shell-executor",
            ]);
        cmd.output().expect("start gitlab-ci-local")
    };
    let first = glci();
    assert!(!first.status.success(), "{}", text(&first));
    // Every copy of the store the cache keeps becomes garbage.
    let mut corrupted = 0;
    let mut dirs = vec![ex.repo().join(".gitlab-ci-local/cache")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n == "history.sqlite") {
                std::fs::write(&path, "not a database\n".repeat(100)).unwrap();
                corrupted += 1;
            }
        }
    }
    assert!(corrupted >= 1, "no cached history.sqlite found");

    ex.fix();
    let second = glci();
    let log = text(&second);
    assert!(second.status.success(), "{log}");
    assert!(log.contains("cannot read the history"), "{log}");
    assert!(log.contains("40 passed"), "{log}");
    let env = dotenv(&ex.repo());
    assert_eq!(var(&env, "FEDTEST_FULL_RUN"), "true", "{log}");
    assert_eq!(var(&env, "FEDTEST_EXIT_CODE"), "0");
}

/// Issue 16: the component without a fedtest binary runs the test command unchanged, says what
/// to do, and is as red as the tests.
#[test]
fn gitlab_ci_local_without_a_binary_runs_the_test_command_unchanged() {
    let ex = ExampleRepo::new(
        "gitlab",
        &[("templates/fedtest.yml", "templates/fedtest.yml")],
    );
    let mut cmd = client("gitlab-ci-local");
    cmd.current_dir(ex.repo()).env_remove("GITLAB_CI").args([
        "--shell-isolation",
        "--no-artifacts-to-source",
        "--force-shell-executor",
    ]);
    let out = cmd.output().expect("start gitlab-ci-local");
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("WARNING fedtest: no fedtest binary"), "{log}");
    assert!(log.contains("25 failed, 15 passed"), "{log}");
    let env = dotenv(&ex.repo());
    assert_eq!(var(&env, "FEDTEST_FULL_RUN"), "true");
    assert_eq!(var(&env, "FEDTEST_EXIT_CODE"), "1");
}

/// The largest image the podman test accepts: a debootstrap minbase base (~85 MB) plus the host
/// binary (~12 MB) measured 96 MB here; distroless static plus the musl binary is far smaller.
const IMAGE_MAX_BYTES: u64 = 150_000_000;

fn podman_inspect(image: &str, format: &str) -> String {
    let mut cmd = Command::new("podman");
    cmd.args(["image", "inspect", "--format", format, image]);
    String::from_utf8_lossy(&run(cmd).stdout).trim().to_string()
}

/// Opt-in (podman, minutes): builds `--target runtime-prebuilt` on a local base image, then checks
/// that it runs as uid 65532, has CA certificates, answers `--version` and stays under
/// [`IMAGE_MAX_BYTES`]:
///
/// ```sh
/// FEDTEST_PODMAN_TESTS=1 cargo test --test it ci_clients::docker_image_builds_with_podman -- --ignored
/// ```
///
/// - `FEDTEST_PODMAN_BINARY`: the binary to copy in, relative to the repository (the build
///   context; `.dockerignore` must admit it). Default
///   `target/x86_64-unknown-linux-musl/release/fedtest` (static: any base). Without the musl
///   target, `cargo build --release` and `FEDTEST_PODMAN_BINARY=target/release/fedtest` on a
///   glibc base such as the debootstrap one.
/// - `FEDTEST_PODMAN_BASE`: the base image (default `localhost/base`; no registry is needed).
///
/// The binary is built beforehand, not by the test. See docs/development.md for the base
/// image and podman's settings (`CONTAINERS_CONF`).
#[test]
#[ignore = "needs podman and a local base image; opt in with FEDTEST_PODMAN_TESTS=1 and --ignored"]
fn docker_image_builds_with_podman() {
    assert_eq!(
        std::env::var("FEDTEST_PODMAN_TESTS").as_deref(),
        Ok("1"),
        "set FEDTEST_PODMAN_TESTS=1 to build the image"
    );
    // A base image made locally (no registry is reachable): see docs/development.md.
    let base = std::env::var("FEDTEST_PODMAN_BASE").unwrap_or_else(|_| "localhost/base".into());
    let binary = std::env::var("FEDTEST_PODMAN_BINARY")
        .unwrap_or_else(|_| "target/x86_64-unknown-linux-musl/release/fedtest".into());
    assert!(
        root().join(&binary).is_file(),
        "{binary} does not exist: build it first (`cargo build --release --target \
         x86_64-unknown-linux-musl`, or `cargo build --release` with \
         FEDTEST_PODMAN_BINARY=target/release/fedtest on a glibc base)"
    );
    let image = "localhost/fedtest:test";
    let mut cmd = client("podman");
    cmd.current_dir(root()).args([
        "build",
        "--build-arg",
        &format!("RUNTIME_IMAGE={base}"),
        "--pull=never",
        "--target",
        "runtime-prebuilt",
        "--build-arg",
        &format!("FEDTEST_BINARY={binary}"),
        "-t",
        image,
        ".",
    ]);
    let started = std::time::Instant::now();
    run(cmd);
    let build_time = started.elapsed();

    // Non-root: distroless has no `id` to run, so the configured user is checked.
    assert_eq!(podman_inspect(image, "{{.Config.User}}"), "65532:65532");
    let size: u64 = podman_inspect(image, "{{.Size}}")
        .parse()
        .expect("image size");
    // The measured numbers, for bench/RESULTS.md (`--nocapture` shows them).
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{image}: {:.1} MB ({size} bytes) on {base} with {binary}, built in {:.1} s",
            size as f64 / 1e6,
            build_time.as_secs_f64()
        );
    }
    assert!(
        size < IMAGE_MAX_BYTES,
        "{image} is {size} bytes, over {IMAGE_MAX_BYTES}"
    );

    let mut cmd = Command::new("podman");
    cmd.args(["run", "--rm", image, "--version"]);
    let out = run(cmd);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("fedtest {}", env!("CARGO_PKG_VERSION"))
    );

    // TLS to a federation server needs CA certificates in the image (FROM scratch has none):
    // copied out of a created, never started, container.
    let mut cmd = Command::new("podman");
    cmd.args(["create", image]);
    let container = String::from_utf8_lossy(&run(cmd).stdout).trim().to_string();
    let mut cmd = Command::new("podman");
    cmd.args([
        "cp",
        &format!("{container}:/etc/ssl/certs/ca-certificates.crt"),
        "-",
    ]);
    let certs = cmd.output().expect("start podman cp");
    let mut rm = Command::new("podman");
    rm.args(["rm", &container]);
    run(rm);
    assert!(
        certs.status.success() && certs.stdout.len() > 10_000,
        "no CA certificates at /etc/ssl/certs/ca-certificates.crt in {image}: {}",
        String::from_utf8_lossy(&certs.stderr)
    );
}
