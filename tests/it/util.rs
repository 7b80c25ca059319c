//! Shared helpers: a per-test sandbox that drives the real binary, a JUnit report builder, and
//! a byte-exact picture of the data dir for "the store did not change" assertions.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;

/// Path of the binary under test, for the few tests that need `std::process` directly
/// (racing processes, closing a pipe early).
pub const BIN: &str = env!("CARGO_BIN_EXE_fedtest");

/// Environment variables that would change what the binary does if the test runner's own
/// environment (a developer shell, a GitHub or GitLab job) leaked into it.
const LEAKY_ENV: &[&str] = &[
    "FEDTEST_DIR",
    "FEDTEST_CONFIG",
    "FEDTEST_PRIOR",
    "GITHUB_ACTIONS",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
    "GITLAB_CI",
    "CI_SERVER",
    "CI_JOB_ID",
    "CI_PIPELINE_ID",
];

/// A temp dir that is the current directory of every fedtest run, with the data dir inside it.
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("fedtest-it-")
                .tempdir()
                .expect("create temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir().join("history.sqlite")
    }

    pub fn model_path(&self) -> PathBuf {
        self.data_dir().join("model.json")
    }

    /// Write a file relative to the sandbox (parents created) and return its absolute path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// Write a candidate list (one id a line) and return its path.
    pub fn write_tests(&self, rel: &str, ids: &[&str]) -> PathBuf {
        let mut text = String::new();
        for id in ids {
            text.push_str(id);
            text.push('\n');
        }
        self.write(rel, text)
    }

    /// `fedtest --data-dir <sandbox>/data`, run in the sandbox, CI environment removed.
    pub fn fedtest(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("fedtest").expect("fedtest binary is built");
        cmd.current_dir(self.path())
            .arg("--data-dir")
            .arg(self.data_dir());
        for var in LEAKY_ENV {
            cmd.env_remove(var);
        }
        cmd
    }

    /// The same as [`Sandbox::fedtest`], as a plain `std::process::Command`.
    pub fn std_fedtest(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(BIN);
        cmd.current_dir(self.path())
            .arg("--data-dir")
            .arg(self.data_dir());
        for var in LEAKY_ENV {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Record `report` as build `build`; the run must succeed.
    pub fn record(&self, build: &str, report: &Junit) -> Output {
        let path = self.write(&format!("reports/{build}.xml"), report.to_xml());
        self.fedtest()
            .args(["record", "--build", build, "--junit"])
            .arg(path)
            .assert()
            .success()
            .get_output()
            .clone()
    }

    /// `plan --format json` over `ids` plus `extra` arguments; the run must succeed.
    pub fn plan_json(&self, ids: &[&str], extra: &[&str]) -> Value {
        let tests = self.write_tests("candidates.txt", ids);
        let out = self
            .fedtest()
            .args(["plan", "--format", "json", "--tests"])
            .arg(tests)
            .args(extra)
            .assert()
            .success()
            .get_output()
            .clone();
        serde_json::from_slice(&out.stdout).expect("plan --format json prints JSON")
    }

    /// `eval --json`; the run must succeed.
    pub fn eval_json(&self) -> Value {
        let out = self
            .fedtest()
            .args(["eval", "--json"])
            .assert()
            .success()
            .get_output()
            .clone();
        serde_json::from_slice(&out.stdout).expect("eval --json prints JSON")
    }

    /// `model --json`; the run must succeed.
    pub fn model_json(&self) -> Value {
        let out = self
            .fedtest()
            .args(["model", "--json"])
            .assert()
            .success()
            .get_output()
            .clone();
        serde_json::from_slice(&out.stdout).expect("model --json prints JSON")
    }

    /// Every file of the data dir with its bytes.
    ///
    /// Why this is a reliable "nothing changed" check: the store runs in WAL mode, where a
    /// committed transaction may live in `history.sqlite-wal` rather than the main file. When
    /// the last connection closes, SQLite checkpoints the WAL into the main file and deletes
    /// `-wal` and `-shm`. So once every fedtest process has exited, the main file holds the
    /// whole history, and comparing it byte for byte compares the history. Taking *every* file
    /// (model, WAL, stray temp files) means a write that went anywhere else shows up too, and
    /// [`DataDir::assert_quiescent`] makes sure the "before" picture is not a half-checkpointed
    /// one that would make the comparison vacuous.
    pub fn data_dir_state(&self) -> DataDir {
        let mut files = BTreeMap::new();
        let root = self.data_dir();
        if root.exists() {
            collect(&root, &root, &mut files);
        }
        DataDir { files }
    }
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).expect("read data dir") {
        let entry = entry.expect("read data dir entry");
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let rel = path
                .strip_prefix(root)
                .expect("under the data dir")
                .to_string_lossy()
                .into_owned();
            files.insert(rel, std::fs::read(&path).expect("read data dir file"));
        }
    }
}

/// The files of a data dir and their bytes, see [`Sandbox::data_dir_state`].
#[derive(PartialEq, Eq)]
pub struct DataDir {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl DataDir {
    /// The store is fully checkpointed: no WAL with pending frames, so the main file is the
    /// whole history.
    pub fn assert_quiescent(&self) -> &Self {
        assert!(
            self.files.contains_key("history.sqlite"),
            "no store: {:?}",
            self.names()
        );
        let wal = self.files.get("history.sqlite-wal").map_or(0, Vec::len);
        assert_eq!(wal, 0, "a WAL with pending frames is left behind");
        self
    }

    pub fn names(&self) -> Vec<&str> {
        self.files.keys().map(String::as_str).collect()
    }
}

impl std::fmt::Debug for DataDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bytes are useless in a failure message; names, sizes and a checksum are not.
        let mut m = f.debug_map();
        for (name, bytes) in &self.files {
            let sum = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            });
            m.entry(name, &format!("{} bytes, fnv {sum:016x}", bytes.len()));
        }
        m.finish()
    }
}

/// How one `<testcase>` ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Error,
    Skip,
}

#[derive(Clone, Debug)]
struct Case {
    classname: String,
    name: String,
    outcome: Outcome,
    seconds: f64,
}

/// A JUnit XML report built in code. Test ids are canonical (`classname::name`); the part after
/// the last `::` becomes the `name` attribute, the rest the `classname`.
#[derive(Clone, Debug, Default)]
pub struct Junit {
    cases: Vec<Case>,
}

impl Junit {
    pub fn new() -> Self {
        Junit::default()
    }

    /// Every case as `(canonical id, outcome, seconds)`.
    pub fn cases(&self) -> impl Iterator<Item = (String, Outcome, f64)> + '_ {
        self.cases.iter().map(|c| {
            let id = if c.classname.is_empty() {
                c.name.clone()
            } else {
                format!("{}::{}", c.classname, c.name)
            };
            (id, c.outcome, c.seconds)
        })
    }

    pub fn case(mut self, id: &str, outcome: Outcome, seconds: f64) -> Self {
        let (classname, name) = id.rsplit_once("::").unwrap_or(("", id));
        self.cases.push(Case {
            classname: classname.to_owned(),
            name: name.to_owned(),
            outcome,
            seconds,
        });
        self
    }

    pub fn pass(self, id: &str, seconds: f64) -> Self {
        self.case(id, Outcome::Pass, seconds)
    }

    pub fn fail(self, id: &str, seconds: f64) -> Self {
        self.case(id, Outcome::Fail, seconds)
    }

    /// `n` tests `<prefix>::test_000` … with the outcome and duration `f(i)` gives each.
    pub fn generated(prefix: &str, n: usize, f: impl Fn(usize) -> (Outcome, f64)) -> Self {
        (0..n).fold(Junit::new(), |j, i| {
            let (outcome, seconds) = f(i);
            j.case(&format!("{prefix}::test_{i:03}"), outcome, seconds)
        })
    }

    pub fn to_xml(&self) -> String {
        let count = |o: Outcome| self.cases.iter().filter(|c| c.outcome == o).count();
        let time: f64 = self.cases.iter().map(|c| c.seconds).sum();
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(s, "<testsuites name=\"fedtest-it\">");
        let _ = writeln!(
            s,
            "  <testsuite name=\"it\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{time:.3}\">",
            self.cases.len(),
            count(Outcome::Fail),
            count(Outcome::Error),
            count(Outcome::Skip)
        );
        for c in &self.cases {
            let open = format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(&c.classname),
                escape(&c.name),
                c.seconds
            );
            match c.outcome {
                Outcome::Pass => {
                    let _ = writeln!(s, "{open}/>");
                }
                Outcome::Fail => {
                    let _ = writeln!(
                        s,
                        "{open}>\n      <failure message=\"assertion failed\">left != right &amp; more</failure>\n    </testcase>"
                    );
                }
                Outcome::Error => {
                    let _ = writeln!(
                        s,
                        "{open}>\n      <error message=\"panicked\">thread panicked</error>\n    </testcase>"
                    );
                }
                Outcome::Skip => {
                    let _ = writeln!(s, "{open}>\n      <skipped/>\n    </testcase>");
                }
            }
        }
        s.push_str("  </testsuite>\n</testsuites>\n");
        s
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
        // As character references, so a name with a line break keeps it (a literal one in
        // an attribute is normalised to a space by conforming parsers).
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
}

/// The ids of a `plan --format json` document, in plan order, with their selection.
pub fn planned(plan: &Value) -> Vec<(String, bool, String)> {
    plan["tests"]
        .as_array()
        .expect("plan has tests")
        .iter()
        .map(|t| {
            (
                t["id"].as_str().expect("id").to_owned(),
                t["selected"].as_bool().expect("selected"),
                t["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect()
}

/// The entry of one test in a `plan --format json` document.
pub fn planned_test<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["tests"]
        .as_array()
        .expect("plan has tests")
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in the plan: {plan:#}"))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run git in `dir` with a fixed identity (commits need one; the machine may have none), and
/// fail the test with git's output if it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=fedtest",
            "-c",
            "user.email=fedtest@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// A repository with enough history for a trusted local model (past the default cold start of
/// `min_builds = 10`, `min_failures = 20`), built so each safety rule has a test to act on:
///
/// - `app.Core::test_000..015` always pass (1–4 s);
/// - `app.Flaky::often` fails every other build, `app.Flaky::sometimes` every third;
/// - `app.Slow::late` (30 s) passed every build but the last, where it failed;
/// - `app.Critical::must` (20 s) always passes (tests name it in `[plan] must_run`).
pub struct History;

impl History {
    // Enough failures (21) for a local model: training waits for 20.
    pub const BUILDS: usize = 24;
    pub const OFTEN: &str = "app.Flaky::often";
    pub const SOMETIMES: &str = "app.Flaky::sometimes";
    pub const LATE: &str = "app.Slow::late";
    pub const MUST: &str = "app.Critical::must";

    pub fn build(i: usize) -> Junit {
        let last = i + 1 == Self::BUILDS;
        let mut j = Junit::generated("app.Core", 16, |t| (Outcome::Pass, 1.0 + (t % 4) as f64));
        j = j.case(
            Self::OFTEN,
            if i.is_multiple_of(2) {
                Outcome::Fail
            } else {
                Outcome::Pass
            },
            2.0,
        );
        j = j.case(
            Self::SOMETIMES,
            if i.is_multiple_of(3) {
                Outcome::Fail
            } else {
                Outcome::Pass
            },
            1.5,
        );
        j = j.case(
            Self::LATE,
            if last { Outcome::Fail } else { Outcome::Pass },
            30.0,
        );
        j.pass(Self::MUST, 20.0)
    }

    /// Every test the history knows.
    pub fn ids() -> Vec<String> {
        let mut ids: Vec<String> = (0..16).map(|t| format!("app.Core::test_{t:03}")).collect();
        ids.extend([Self::OFTEN, Self::SOMETIMES, Self::LATE, Self::MUST].map(str::to_owned));
        ids
    }

    /// Record builds `b01` … `b<n>` of the scenario into `sb`.
    pub fn record(sb: &Sandbox, n: usize) {
        for i in 0..n {
            sb.record(&format!("b{:02}", i + 1), &Self::build(i));
        }
    }
}

/// Escape a literal for use in an insta filter (a regex).
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Insta settings with the sandbox's temp path (as given and canonical) redacted to `[TMP]`
/// and snapshots named without the module prefix; callers add their own filters after these.
pub fn tmp_redacted_settings(sb: &Sandbox) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    let raw = sb.path().to_string_lossy().into_owned();
    let canonical = sb
        .path()
        .canonicalize()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| raw.clone());
    for path in [canonical, raw] {
        s.add_filter(&regex_escape(&path), "[TMP]");
    }
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Run `cmd` and render its exit code and both streams.
pub fn transcript(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().expect("run fedtest");
    format!(
        "exit: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        out.status
            .code()
            .map_or_else(|| "signal".to_owned(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
