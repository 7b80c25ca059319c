//! The CI integrations (`action.yml`, `.github/workflows/release.yml`, the GitLab component
//! `templates/fedtest.yml`, the `Dockerfile`) checked with the real CI clients: actionlint,
//! check-jsonschema, hadolint, act and gitlab-ci-local. A missing client fails the test with a
//! message naming `.ci/install-ci-clients` — these tests never skip.
//!
//! The image build needs podman and minutes, so it is opt-in: `FEDTEST_PODMAN_TESTS=1 cargo test
//! --test it ci_clients::docker_image_builds_with_podman -- --ignored` (see the README).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use crate::util::BIN;

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

fn git(repo: &Path, args: &[&str]) {
    let mut cmd = Command::new("git");
    cmd.current_dir(repo)
        .args([
            "-c",
            "user.name=fedtest",
            "-c",
            "user.email=fedtest@example.com",
        ])
        .args(args);
    run(cmd);
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

/// A local stand-in for actions/cache's `restore` and `save` (act's own cache server is off):
/// entries in `store`, immutable, restored by exact key, then by prefix, newest first.
fn cache_stub(dir: &Path, store: &Path) {
    let store = store.display();
    let restore = format!(
        r#"name: cache restore stub
description: restores by key, then by prefix, from a local directory
inputs:
  path: {{description: path, required: true}}
  key: {{description: key, required: true}}
  restore-keys: {{description: prefixes, required: false, default: ""}}
outputs:
  cache-hit: {{description: exact hit, value: "${{{{ steps.r.outputs.cache-hit }}}}"}}
runs:
  using: composite
  steps:
    - id: r
      shell: bash
      env: {{P: "${{{{ inputs.path }}}}", K: "${{{{ inputs.key }}}}", R: "${{{{ inputs.restore-keys }}}}"}}
      run: |
        for prefix in "$K" $R; do
          hit=$(ls -1t "{store}" 2>/dev/null | grep -F -- "$prefix" | head -n1 || true)
          if [ -n "$hit" ]; then
            mkdir -p "$P" && cp -a "{store}/$hit/." "$P/"
            echo "STUB restored $hit"
            exit 0
          fi
        done
        echo "STUB miss $K"
"#
    );
    let save = format!(
        r#"name: cache save stub
description: saves under a unique key into a local directory
inputs:
  path: {{description: path, required: true}}
  key: {{description: key, required: true}}
runs:
  using: composite
  steps:
    - shell: bash
      env: {{P: "${{{{ inputs.path }}}}", K: "${{{{ inputs.key }}}}"}}
      run: |
        if [ -e "{store}/$K" ]; then echo "STUB exists $K"; exit 0; fi
        mkdir -p "{store}/$K" && cp -a "$P/." "{store}/$K/" && echo "STUB saved $K"
"#
    );
    for (sub, body) in [("restore", restore), ("save", save)] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::write(dir.join(sub).join("action.yml"), body).unwrap();
    }
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
    let stub = ex.path().join("cache-stub");
    let store = ex.path().join("cache-store");
    cache_stub(&stub, &store);
    let act = |run_id: &str| {
        let mut cmd = client("act");
        cmd.current_dir(ex.repo())
            .env("PATH", ex.path_env())
            .env_remove("GITHUB_ACTIONS")
            .args([
                "push",
                "-P",
                "ubuntu-latest=-self-hosted",
                "--action-offline-mode",
                "--pull=false",
                "--no-cache-server",
                "--env",
                &format!("GITHUB_RUN_ID={run_id}"),
                "--local-repository",
                &format!("{CACHE_ACTION}={}", stub.display()),
            ]);
        cmd.output().expect("start act")
    };

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
    assert!(log.contains("STUB saved fedtest-Linux-test-102-1"), "{log}");
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
/// The binary is built beforehand, not by the test. See the README ("Docker") for the base
/// image and podman's settings (`CONTAINERS_CONF`).
#[test]
#[ignore = "needs podman and a local base image; opt in with FEDTEST_PODMAN_TESTS=1 and --ignored"]
fn docker_image_builds_with_podman() {
    assert_eq!(
        std::env::var("FEDTEST_PODMAN_TESTS").as_deref(),
        Ok("1"),
        "set FEDTEST_PODMAN_TESTS=1 to build the image"
    );
    // A base image made locally (no registry is reachable): see the README.
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
    // The measured numbers, for the README (`--nocapture` shows them).
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
