//! What `plan`, `run` and `gate` tell the CI platform, so no workflow has to re-read a plan:
//!
//! - GitHub Actions: step outputs appended to `$GITHUB_OUTPUT` (`name<<DELIMITER` where a value
//!   can hold a newline) and a Markdown job summary appended to `$GITHUB_STEP_SUMMARY`, with a
//!   mermaid chart (GitHub renders mermaid code fences);
//! - GitLab CI: a dotenv report (`fedtest.env` by default; single-line values, uppercase keys,
//!   well under GitLab's 5 KB) and the same summary as plain text in a collapsible section of
//!   the job log.
//!
//! A command collects a [`Report`]; [`publish`] writes it to the [`Targets`] resolved once from
//! the flags and the environment. Writing never fails the command: a file that cannot be
//! written is a warning, and the build goes on.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::ci::{Env, Platform};
use crate::config::Config;
use crate::history::Store;
use crate::output::Printer;
use crate::plan::Plan;
use crate::quarantine::Quarantine;
use crate::text;

/// The dotenv report's path on GitLab when `--dotenv` is not given (relative to the job's
/// working directory, the project directory).
pub const DEFAULT_DOTENV: &str = "fedtest.env";
/// Tests named in the summary's risk and flaky tables.
pub const TOP: usize = 10;
/// Failed tests named one by one in the gate's summary.
const LISTED: usize = 30;
/// A test name is cut to this many characters in a summary (ids can be whole sentences).
const MAX_NAME_CHARS: usize = 200;
/// GitHub accepts 1 MiB of step summary; a summary is meant to be read, so stay far below.
pub const MAX_SUMMARY_BYTES: usize = 64 * 1024;
/// GitHub accepts 1 MB per output; beyond this the `selected` ids are left to the plan file.
const MAX_SELECTED_OUTPUT_BYTES: usize = 512 * 1024;
/// One dotenv value (GitLab caps the whole file at 5 KB).
const MAX_DOTENV_VALUE_CHARS: usize = 200;

/// Where the report goes, resolved once per command: a flag, else the platform's own place.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Targets {
    pub github_output: Option<PathBuf>,
    pub step_summary: Option<PathBuf>,
    pub dotenv: Option<PathBuf>,
    /// Print the summary as a collapsible section of the GitLab job log.
    pub gitlab_section: bool,
}

impl Targets {
    /// The targets: `given` (from flags) where set, else the platform's own; none when `off`.
    pub fn resolve(off: bool, given: Targets, env: &Env) -> Targets {
        if off {
            return Targets::default();
        }
        let platform = env.platform();
        let github = |var: &str| {
            (platform == Platform::GitHub)
                .then(|| env.get(var).map(PathBuf::from))
                .flatten()
        };
        Targets {
            github_output: given.github_output.or_else(|| github("GITHUB_OUTPUT")),
            step_summary: given.step_summary.or_else(|| github("GITHUB_STEP_SUMMARY")),
            dotenv: given
                .dotenv
                .or_else(|| (platform == Platform::GitLab).then(|| PathBuf::from(DEFAULT_DOTENV))),
            gitlab_section: platform == Platform::GitLab,
        }
    }

    /// Nothing to write: the command can skip collecting what only the report needs.
    pub fn is_empty(&self) -> bool {
        *self == Targets::default()
    }
}

/// The command a report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Plan,
    Run,
    Gate,
}

impl Command {
    fn name(self) -> &'static str {
        match self {
            Command::Plan => "plan",
            Command::Run => "run",
            Command::Gate => "gate",
        }
    }
}

/// Everything one command reports.
#[derive(Clone, Debug)]
pub struct Report {
    pub command: Command,
    pub plan: Option<PlanFacts>,
    /// `run --shard`: this job's part of the plan.
    pub shard: Option<ShardFacts>,
    /// `run`: the exit code it ends with (the test command's, or fedtest's own error's).
    pub exit_code: Option<i32>,
    /// `run` on a plan that deselected tests: what its verdict covers ("green on 61 of 119
    /// tests; …").
    pub subset: Option<String>,
    pub gate: Option<GateFacts>,
    /// Flaky tests the history knows, highest score first (at most [`TOP`]).
    pub flaky: Vec<KnownFlaky>,
}

impl Report {
    pub fn new(command: Command) -> Self {
        Report {
            command,
            plan: None,
            shard: None,
            exit_code: None,
            subset: None,
            gate: None,
            flaky: Vec::new(),
        }
    }
}

/// What a plan decided, as far as a report shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanFacts {
    pub selected: usize,
    /// Candidates fedtest left out (the runner never saw them).
    pub deselected: usize,
    /// Candidates.
    pub total: usize,
    /// Why everything runs, when it does.
    pub full_run: Option<String>,
    pub budget: String,
    pub seconds_selected: f64,
    pub seconds_total: f64,
    /// The selected ids in run order.
    pub selected_ids: Vec<String>,
    /// The candidates likeliest to fail (at most [`TOP`]), likeliest first.
    pub riskiest: Vec<Risky>,
    /// Where `--plan-file` wrote the plan, when it did.
    pub plan_file: Option<String>,
    /// The ordering in use (`crate::strategy::InUse::describe`), when fedtest planned.
    pub strategy: Option<String>,
    /// The first deselected ids, in plan order (at most [`crate::plan::last::FIRST`]).
    pub deselected_ids: Vec<String>,
    /// Where every deselected id is listed (`crate::plan::last`), when written.
    pub deselected_file: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Risky {
    pub id: String,
    pub probability: f64,
    pub selected: bool,
    pub reason: &'static str,
}

impl PlanFacts {
    pub fn from_plan(plan: &Plan) -> Self {
        let mut by_risk: Vec<&crate::plan::PlannedTest> =
            plan.tests.iter().filter(|t| t.probability > 0.0).collect();
        // Stable: equal probabilities keep the plan's order.
        by_risk.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        PlanFacts {
            selected: plan.selected,
            deselected: plan.deselected,
            total: plan.tests.len(),
            full_run: plan.full_run.clone(),
            budget: plan.budget.clone(),
            seconds_selected: plan.estimated_seconds_selected,
            seconds_total: plan.estimated_seconds_total,
            selected_ids: plan
                .tests
                .iter()
                .filter(|t| t.selected)
                .map(|t| t.id.clone())
                .collect(),
            riskiest: by_risk
                .into_iter()
                .take(TOP)
                .map(|t| Risky {
                    id: t.id.clone(),
                    probability: t.probability,
                    selected: t.selected,
                    reason: t.reason.describe(),
                })
                .collect(),
            plan_file: None,
            strategy: plan.strategy.as_ref().map(|s| s.describe()),
            deselected_ids: plan
                .tests
                .iter()
                .filter(|t| !t.selected)
                .take(crate::plan::last::FIRST)
                .map(|t| t.id.clone())
                .collect(),
            deselected_file: None,
        }
    }

    /// `run` with nothing to plan from: the whole command runs.
    pub fn whole_command(budget: String, why: String) -> Self {
        PlanFacts {
            selected: 0,
            deselected: 0,
            total: 0,
            full_run: Some(why),
            budget,
            seconds_selected: 0.0,
            seconds_total: 0.0,
            selected_ids: Vec::new(),
            riskiest: Vec::new(),
            plan_file: None,
            strategy: None,
            deselected_ids: Vec::new(),
            deselected_file: None,
        }
    }

    /// Estimated seconds the deselected tests would have taken, from their recorded durations.
    pub fn seconds_saved(&self) -> f64 {
        (self.seconds_total - self.seconds_selected).max(0.0)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ShardFacts {
    /// `I/N`.
    pub shard: String,
    pub tests: usize,
    pub seconds: f64,
}

/// `gate`'s verdict and its evidence.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GateFacts {
    pub executed: usize,
    pub passed: usize,
    pub flaky: usize,
    pub skipped: usize,
    /// Failed and not quarantined: these fail the gate.
    pub failed: Vec<GateTest>,
    /// Failed, but quarantined: listed, not failing the gate.
    pub quarantined: Vec<GateTest>,
    pub passed_gate: bool,
    /// One line: why the gate passed or failed.
    pub verdict: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GateTest {
    pub id: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// For a quarantined test: its entry (expiry, owner, reason).
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct KnownFlaky {
    pub id: String,
    pub score: f64,
    pub runs: u32,
    pub quarantined: bool,
}

/// Write `report` to every target. Never fails: a target that cannot be written is a warning.
pub fn publish(targets: &Targets, report: &Report, printer: &Printer) {
    if let Some(path) = &targets.github_output {
        let outputs = outputs(report, printer);
        if let Err(e) = append(path, &github_output_text(&outputs)) {
            printer.warn(&format!(
                "cannot write the step outputs to {}: {e}; continuing without them",
                path.display()
            ));
        }
    }
    publish_summary(targets, || markdown(report), printer);
    if let Some(path) = &targets.dotenv
        && let Err(e) = merge_dotenv(path, &dotenv(report))
    {
        printer.warn(&format!(
            "cannot write the dotenv report {}: {e}; continuing without it",
            path.display()
        ));
    }
    if targets.gitlab_section {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (header, body) = plain_text(report);
        printer.gitlab_section(&section_name(report), now, &header, &body);
    }
}

/// Append Markdown (a report's, or `eval`'s confidence curve) to the job summary, when there
/// is one; the Markdown is only made then. Never fails: a summary that cannot be written is
/// a warning.
pub fn publish_summary(targets: &Targets, markdown: impl FnOnce() -> String, printer: &Printer) {
    if let Some(path) = &targets.step_summary
        && let Err(e) = append(path, &text::lines(&markdown()))
    {
        printer.warn(&format!(
            "cannot write the job summary to {}: {e}; continuing without it",
            path.display()
        ));
    }
}

// ------------------------------------------------------------------ step outputs (GitHub)

/// The step outputs, by name (the action's `outputs:` map them one to one).
pub fn outputs(report: &Report, printer: &Printer) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    if let Some(p) = &report.plan {
        let ids = p.selected_ids.join("\n");
        if ids.len() <= MAX_SELECTED_OUTPUT_BYTES {
            out.push(("selected", ids));
        } else {
            printer.warn(&format!(
                "the `selected` output is left empty: {} ids take {} KiB, more than a step \
                 output should hold; read them from the plan file (--plan-file)",
                p.selected_ids.len(),
                ids.len() / 1024
            ));
            out.push(("selected", String::new()));
        }
        out.push(("selected-count", p.selected.to_string()));
        out.push(("deselected-count", p.deselected.to_string()));
        // The name before "deselected" (fedtest's choice) and "skipped" (the runner's) were
        // told apart; kept for workflows that read it.
        out.push(("skipped-count", p.deselected.to_string()));
        out.push(("total-count", p.total.to_string()));
        out.push(("full-run", p.full_run.is_some().to_string()));
        out.push(("full-run-reason", p.full_run.clone().unwrap_or_default()));
        out.push(("budget", p.budget.clone()));
        out.push(("estimated-seconds-selected", seconds(p.seconds_selected)));
        out.push(("estimated-seconds-total", seconds(p.seconds_total)));
        out.push(("estimated-seconds-saved", seconds(p.seconds_saved())));
        if let Some(file) = &p.plan_file {
            out.push(("plan-file", file.clone()));
        }
        if let Some(strategy) = &p.strategy {
            out.push(("strategy", strategy.clone()));
        }
    }
    if let Some(s) = &report.shard {
        out.push(("shard-count", s.tests.to_string()));
    }
    if let Some(code) = report.exit_code {
        out.push(("exit-code", code.to_string()));
    }
    if let Some(g) = &report.gate {
        out.push((
            "gate",
            if g.passed_gate { "passed" } else { "failed" }.to_owned(),
        ));
        out.push(("executed-count", g.executed.to_string()));
        out.push(("failed-count", g.failed.len().to_string()));
        out.push(("quarantined-failed-count", g.quarantined.len().to_string()));
        out.push(("flaky-count", g.flaky.to_string()));
    }
    out
}

/// `$GITHUB_OUTPUT` syntax: `name=value`, or `name<<DELIMITER` … `DELIMITER` for a value with
/// a line break. The delimiter is random and checked against the value, so no test name can
/// end the value early and set another output. Each line of a value is made safe
/// ([`text::line`]): a CR or a line separator inside an id cannot split it in two.
pub fn github_output_text(outputs: &[(&str, String)]) -> String {
    let mut s = String::new();
    for (name, value) in outputs {
        let value = text::lines(value);
        if value.contains(['\n', '\r']) {
            let delimiter = delimiter_for(&value);
            let _ = write!(s, "{name}<<{delimiter}\n{value}\n{delimiter}\n");
        } else {
            let _ = writeln!(s, "{name}={value}");
        }
    }
    s
}

fn delimiter_for(value: &str) -> String {
    loop {
        let d = format!(
            "ghadelimiter_{:016x}{:016x}",
            crate::random::u64(),
            crate::random::u64()
        );
        if !value.contains(&d) {
            return d;
        }
    }
}

fn seconds(s: f64) -> String {
    format!("{s:.1}")
}

// ------------------------------------------------------------------ job summary (GitHub)

/// The Markdown job summary, at most [`MAX_SUMMARY_BYTES`].
pub fn markdown(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## fedtest {}\n", report.command.name());
    if let Some(p) = &report.plan {
        plan_markdown(&mut s, p, report);
    }
    if let Some(g) = &report.gate {
        gate_markdown(&mut s, g);
    }
    if !report.flaky.is_empty() {
        s.push_str(
            "### Flaky tests known to the history\n\n| score | test | runs |\n|---:|---|---:|\n",
        );
        for f in &report.flaky {
            let _ = writeln!(
                s,
                "| {:.2} | {}{} | {} |",
                f.score,
                md_code(&f.id),
                if f.quarantined { " (quarantined)" } else { "" },
                f.runs
            );
        }
        s.push('\n');
    }
    let _ = writeln!(s, "<sub>fedtest {}</sub>", env!("CARGO_PKG_VERSION"));
    cap(s, MAX_SUMMARY_BYTES)
}

fn plan_markdown(s: &mut String, p: &PlanFacts, report: &Report) {
    if let Some(why) = &p.full_run {
        let _ = writeln!(s, "**Full run**: {}\n", md_text(why));
    }
    if p.total > 0 {
        s.push_str(
            "| selected | deselected by fedtest | candidates | budget | est. time selected / total |\n\
             |---:|---:|---:|---|---|\n",
        );
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} / {} |\n",
            p.selected,
            p.deselected,
            p.total,
            md_text(&p.budget),
            duration(p.seconds_selected),
            duration(p.seconds_total)
        );
        if let Some(strategy) = &p.strategy {
            let _ = writeln!(s, "Ordering by {}.\n", md_text(strategy));
        }
        if p.deselected > 0 {
            deselected_markdown(s, p);
        }
        if p.deselected > 0 && p.seconds_total > 0.0 {
            let _ = writeln!(
                s,
                "Estimated time saved: **{}** of {} ({:.0}%), from the durations recorded for \
                 these tests.\n",
                duration(p.seconds_saved()),
                duration(p.seconds_total),
                100.0 * p.seconds_saved() / p.seconds_total
            );
        }
    }
    if let Some(sh) = &report.shard {
        let _ = writeln!(
            s,
            "Shard **{}**: {} of the selected tests, {} estimated.\n",
            md_text(&sh.shard),
            sh.tests,
            duration(sh.seconds)
        );
    }
    if let Some(code) = report.exit_code {
        let _ = writeln!(s, "The test command exited with **{code}**.\n");
    }
    if let Some(subset) = &report.subset {
        let _ = writeln!(s, "> [!WARNING]\n> {}\n", md_text(subset));
    }
    // One chart: what the budget saved, or — when everything runs — how the risk is spread.
    // The pie is in shares of the estimated time: mermaid wants positive numbers, and suites
    // of millisecond tests would print as zeros in seconds.
    let run_share = if p.seconds_total > 0.0 {
        (1000.0 * p.seconds_selected / p.seconds_total).round() / 10.0
    } else {
        0.0
    };
    if p.deselected > 0 && run_share > 0.0 && run_share < 100.0 {
        let _ = writeln!(
            s,
            "```mermaid\npie title Estimated test time, % (of {})\n    \"run: {} tests\" : {run_share:.1}\n    \
             \"deselected: {} tests\" : {:.1}\n```\n",
            duration(p.seconds_total),
            p.selected,
            p.deselected,
            100.0 - run_share
        );
    } else if p.riskiest.len() > 1 {
        let ranks: Vec<String> = (1..=p.riskiest.len()).map(|i| format!("\"{i}\"")).collect();
        let bars: Vec<String> = p
            .riskiest
            .iter()
            .map(|r| format!("{:.3}", r.probability))
            .collect();
        let _ = writeln!(
            s,
            "```mermaid\nxychart-beta\n    title \"p(fail) of the riskiest tests, by rank\"\n    \
             x-axis [{}]\n    y-axis \"p(fail)\" 0 --> 1\n    bar [{}]\n```\n",
            ranks.join(", "),
            bars.join(", ")
        );
    }
    if !p.riskiest.is_empty() {
        s.push_str("### Riskiest tests\n\n| # | test | p(fail) | plan |\n|---:|---|---:|---|\n");
        for (i, r) in p.riskiest.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {} | {:.2} | {} |",
                i + 1,
                md_code(&r.id),
                r.probability,
                r.reason
            );
        }
        s.push('\n');
    }
}

/// The deselected tests, where a reviewer reads: how many, the first few, where the rest are.
fn deselected_markdown(s: &mut String, p: &PlanFacts) {
    let ids: Vec<String> = p.deselected_ids.iter().map(|id| md_code(id)).collect();
    let _ = writeln!(
        s,
        "**{} test{} deselected by fedtest**, left out of the test command: a failure in them \
         stays unseen until they next run. {}{}.\n",
        p.deselected,
        if p.deselected == 1 { "" } else { "s" },
        ids.join(", "),
        md_text(&deselected_more(p))
    );
}

/// ", … (all N in <file>)" after the first deselected ids.
fn deselected_more(p: &PlanFacts) -> String {
    let more = p.deselected > p.deselected_ids.len();
    match (&p.deselected_file, more) {
        (Some(f), true) => format!(", … (all {} in {})", p.deselected, visible(f)),
        (Some(f), false) => format!(" (listed in {})", visible(f)),
        (None, true) => format!(" and {} more", p.deselected - p.deselected_ids.len()),
        (None, false) => String::new(),
    }
}

fn gate_markdown(s: &mut String, g: &GateFacts) {
    let _ = writeln!(
        s,
        "**{}**: {}\n",
        if g.passed_gate { "Passed" } else { "Failed" },
        md_text(&g.verdict)
    );
    let _ = writeln!(
        s,
        "| executed | passed | flaky (passed on retry) | failed | failed, quarantined | skipped by the runner |\n\
         |---:|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} | {} |\n",
        g.executed,
        g.passed,
        g.flaky,
        g.failed.len(),
        g.quarantined.len(),
        g.skipped
    );
    for (title, tests, quarantine) in [
        ("Failed", &g.failed, false),
        (
            "Failed but quarantined (not failing the gate)",
            &g.quarantined,
            true,
        ),
    ] {
        if tests.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "### {title}\n\n| test | where |{}\n|---|---|{}",
            if quarantine { " quarantine |" } else { "" },
            if quarantine { "---|" } else { "" }
        );
        for t in tests.iter().take(LISTED) {
            let place = t.file.as_deref().map_or_else(String::new, |f| {
                md_code(&t.line.map_or_else(|| f.to_owned(), |l| format!("{f}:{l}")))
            });
            let note = match (&t.note, quarantine) {
                (Some(note), true) => format!(" {} |", md_text(note)),
                (None, true) => " |".to_owned(),
                (_, false) => String::new(),
            };
            let _ = writeln!(s, "| {} | {place} |{note}", md_code(&t.id));
        }
        if tests.len() > LISTED {
            let _ = writeln!(s, "\n… and {} more.", tests.len() - LISTED);
        }
        s.push('\n');
    }
}

fn duration(s: f64) -> String {
    if s >= 90.0 {
        format!("{:.1} min", s / 60.0)
    } else if s >= 1.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

/// A name, shown as it is but as one safe line ([`text::line`]: line breaks and other control
/// characters become visible escapes such as `\n`), and cut when very long.
fn visible(name: &str) -> String {
    let safe = text::line(name);
    match safe.char_indices().nth(MAX_NAME_CHARS) {
        Some((end, _)) => format!("{}…", &safe[..end]),
        None => safe.into_owned(),
    }
}

/// A test name as inline code in a Markdown table cell. The fence is one backtick longer than
/// the longest run of backticks in the name (padded with a space when the name has any, as
/// CommonMark strips one), and `|` is escaped, which GitHub's table parser honours even
/// inside code.
pub fn md_code(name: &str) -> String {
    let name = visible(name).replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in name.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if longest > 0 { " " } else { "" };
    format!("{fence}{pad}{name}{pad}{fence}")
}

/// Free text (a full-run reason, a quarantine reason) in Markdown: one line, with the
/// characters that would start formatting, links, HTML or a table cell escaped.
pub fn md_text(text: &str) -> String {
    let mut out = String::new();
    for c in visible(text).chars() {
        if "\\`*_[]<>|~#!&".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Cut `s` to at most `max` bytes, at a line boundary, saying so.
fn cap(mut s: String, max: usize) -> String {
    const NOTE: &str = "\n*(summary cut: it would be longer than GitHub shows)*\n";
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub(NOTE.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let end = s[..end].rfind('\n').map_or(0, |i| i + 1);
    s.truncate(end);
    s.push_str(NOTE);
    s
}

// ------------------------------------------------------------------ dotenv (GitLab)

/// The dotenv report's variables. Never test ids: they would not fit GitLab's 5 KB.
pub fn dotenv(report: &Report) -> Vec<(&'static str, String)> {
    let mut vars: Vec<(&'static str, String)> = Vec::new();
    if let Some(p) = &report.plan {
        vars.push(("FEDTEST_SELECTED_COUNT", p.selected.to_string()));
        vars.push(("FEDTEST_DESELECTED_COUNT", p.deselected.to_string()));
        // The name before the rename (see `outputs`).
        vars.push(("FEDTEST_SKIPPED_COUNT", p.deselected.to_string()));
        vars.push(("FEDTEST_TOTAL_COUNT", p.total.to_string()));
        vars.push(("FEDTEST_FULL_RUN", p.full_run.is_some().to_string()));
        vars.push((
            "FEDTEST_FULL_RUN_REASON",
            p.full_run.clone().unwrap_or_default(),
        ));
        vars.push(("FEDTEST_BUDGET", p.budget.clone()));
        vars.push((
            "FEDTEST_ESTIMATED_SECONDS_SAVED",
            seconds(p.seconds_saved()),
        ));
    }
    if let Some(code) = report.exit_code {
        vars.push(("FEDTEST_EXIT_CODE", code.to_string()));
    }
    if let Some(g) = &report.gate {
        vars.push((
            "FEDTEST_GATE",
            if g.passed_gate { "passed" } else { "failed" }.to_owned(),
        ));
        vars.push(("FEDTEST_FAILED_COUNT", g.failed.len().to_string()));
        vars.push((
            "FEDTEST_QUARANTINED_FAILED_COUNT",
            g.quarantined.len().to_string(),
        ));
    }
    vars.into_iter()
        .map(|(k, v)| (k, dotenv_value(&v)))
        .collect()
}

/// GitLab reads a dotenv value up to the end of its line, keeps quotes as they are and trims
/// surrounding blanks: one line, no control characters, capped.
fn dotenv_value(v: &str) -> String {
    let one_line: String = v
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = one_line.split_whitespace().collect();
    let joined = text::line(&words.join(" ")).into_owned();
    if joined.chars().count() <= MAX_DOTENV_VALUE_CHARS {
        joined
    } else {
        let mut cut: String = joined.chars().take(MAX_DOTENV_VALUE_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// Set `vars` in the dotenv file at `path`, keeping the other variables it holds (a job that
/// runs `fedtest run` and then `fedtest gate` reports both).
fn merge_dotenv(path: &Path, vars: &[(&str, String)]) -> std::io::Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut lines: Vec<(String, String)> = old
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty() && !k.starts_with('#'))
        .collect();
    for (k, v) in vars {
        match lines.iter_mut().find(|(old, _)| old == k) {
            Some(slot) => slot.1 = v.clone(),
            None => lines.push(((*k).to_owned(), v.clone())),
        }
    }
    let mut text = String::new();
    for (k, v) in &lines {
        let _ = writeln!(text, "{k}={v}");
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.flush()
}

// ------------------------------------------------------------------ log section (GitLab)

fn section_name(report: &Report) -> String {
    format!("fedtest_{}", report.command.name())
}

/// The summary as plain text, in a collapsed section of the GitLab job log (what
/// [`Printer::gitlab_section`] prints).
pub fn gitlab_section(report: &Report, now: u64) -> String {
    let (header, body) = plain_text(report);
    crate::output::gitlab_section(&section_name(report), now, &header, &body)
}

/// A one-line header and the body, plain text. Names go through [`visible`], so an escape
/// character in a test name cannot end the section or colour the log.
fn plain_text(report: &Report) -> (String, String) {
    let mut body = String::new();
    let mut header = format!("fedtest {}", report.command.name());
    if let Some(p) = &report.plan {
        header = match &p.full_run {
            Some(why) => format!(
                "fedtest {}: every test runs ({})",
                report.command.name(),
                visible(why)
            ),
            None => format!(
                "fedtest {}: {} of {} tests selected, {} deselected by fedtest",
                report.command.name(),
                p.selected,
                p.total,
                p.deselected
            ),
        };
        if p.total > 0 {
            let _ = writeln!(
                body,
                "  budget {}; estimated time {} of {}, {} saved",
                visible(&p.budget),
                duration(p.seconds_selected),
                duration(p.seconds_total),
                duration(p.seconds_saved())
            );
        }
        if let Some(strategy) = &p.strategy {
            let _ = writeln!(body, "  ordering by {strategy}");
        }
        if p.deselected > 0 {
            let _ = writeln!(
                body,
                "  {} deselected by fedtest, left out of the test command (a failure in them \
                 stays unseen until they next run): {}{}",
                p.deselected,
                p.deselected_ids
                    .iter()
                    .map(|id| visible(id))
                    .collect::<Vec<_>>()
                    .join(", "),
                deselected_more(p)
            );
        }
        if let Some(sh) = &report.shard {
            let _ = writeln!(
                body,
                "  shard {}: {} of the selected tests, {} estimated",
                visible(&sh.shard),
                sh.tests,
                duration(sh.seconds)
            );
        }
        if !p.riskiest.is_empty() {
            let _ = writeln!(body, "  riskiest tests:");
            for r in &p.riskiest {
                let _ = writeln!(
                    body,
                    "    {:.2}  {}  ({})",
                    r.probability,
                    visible(&r.id),
                    r.reason
                );
            }
        }
    }
    if let Some(code) = report.exit_code {
        let _ = writeln!(body, "  the test command exited with {code}");
    }
    if let Some(subset) = &report.subset {
        let _ = writeln!(body, "  {}", visible(subset));
    }
    if let Some(g) = &report.gate {
        header = format!(
            "fedtest gate: {} ({})",
            if g.passed_gate { "passed" } else { "failed" },
            visible(&g.verdict)
        );
        let _ = writeln!(
            body,
            "  {} executed: {} passed, {} flaky, {} failed, {} failed but quarantined; {} skipped by the runner",
            g.executed,
            g.passed,
            g.flaky,
            g.failed.len(),
            g.quarantined.len(),
            g.skipped
        );
        for (title, tests) in [
            ("failed", &g.failed),
            ("failed, quarantined", &g.quarantined),
        ] {
            for t in tests.iter().take(LISTED) {
                let _ = writeln!(body, "    {title}: {}", visible(&t.id));
            }
            if tests.len() > LISTED {
                let _ = writeln!(body, "    … and {} more {title}", tests.len() - LISTED);
            }
        }
    }
    if !report.flaky.is_empty() {
        let _ = writeln!(body, "  flaky tests known to the history:");
        for f in &report.flaky {
            let _ = writeln!(
                body,
                "    {:.2}  {}{}",
                f.score,
                visible(&f.id),
                if f.quarantined { "  (quarantined)" } else { "" }
            );
        }
    }
    (header, body)
}

/// The flaky tests the history knows (score at least `flaky.threshold`), highest first, for a
/// CI report. A report is a courtesy: a missing or unreadable store or quarantine file gives a
/// shorter list here, never an error (the command reports its own trouble).
pub fn known_flaky(data_dir: &Path, config: &Config) -> Vec<KnownFlaky> {
    let rows = match Store::open_existing(data_dir) {
        Ok(Some(store)) => store.flaky().unwrap_or_default(),
        _ => return Vec::new(),
    };
    let quarantine = Quarantine::load_config(&config.flaky).ok();
    let threshold = config.flaky.threshold;
    // What `fedtest flaky` lists as flaky (its rounded score at the threshold), without
    // owners: a report names none.
    let mut flaky: Vec<_> =
        crate::flaky::listing::listed(rows, threshold, |_| true, quarantine.as_ref(), None)
            .into_iter()
            .filter(|l| l.flaky)
            .collect();
    crate::flaky::sort_listed(&mut flaky);
    flaky
        .into_iter()
        .take(TOP)
        .map(|l| KnownFlaky {
            id: l.id,
            score: l.score,
            runs: l.runs,
            quarantined: l.quarantined,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md_code_escapes_pipes_backticks_and_line_breaks() {
        assert_eq!(md_code("a::b"), "`a::b`");
        assert_eq!(md_code("t[a|b]"), "`t[a\\|b]`");
        assert_eq!(md_code("uses `x`"), "`` uses `x` ``");
        assert_eq!(md_code("``fence``"), "``` ``fence`` ```");
        assert_eq!(md_code("line1\nline2\r"), "`line1\\nline2\\r`");
        assert_eq!(md_code("bell\u{7}esc\u{1b}"), "`bell\\u0007esc\\u001b`");
        let long = "x".repeat(500);
        assert_eq!(md_code(&long).chars().count(), MAX_NAME_CHARS + 1 + 2);
    }

    #[test]
    fn md_text_escapes_markup() {
        assert_eq!(
            md_text("pom.xml changed <b>|</b> [x](y) *z*\nnext"),
            "pom.xml changed \\<b\\>\\|\\</b\\> \\[x\\](y) \\*z\\*\\\\nnext"
        );
    }

    #[test]
    fn github_outputs_use_a_delimiter_only_for_multiline_values() {
        let text = github_output_text(&[
            ("selected-count", "2".to_owned()),
            ("selected", "a::x\nb::y".to_owned()),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "selected-count=2");
        let delimiter = lines[1].strip_prefix("selected<<").unwrap();
        assert!(delimiter.starts_with("ghadelimiter_"));
        assert_eq!(&lines[2..], ["a::x", "b::y", delimiter]);
    }

    #[test]
    fn the_delimiter_never_occurs_in_the_value() {
        for _ in 0..100 {
            let value = "x\nghadelimiter_".to_owned();
            let d = delimiter_for(&value);
            assert!(!value.contains(&d));
            assert_ne!(d, delimiter_for(&value), "random per call");
        }
    }

    #[test]
    fn dotenv_values_are_single_line_and_capped() {
        assert_eq!(dotenv_value(" a\nb\r\n\tc  "), "a b c");
        let long = dotenv_value(&"y".repeat(1000));
        assert_eq!(long.chars().count(), MAX_DOTENV_VALUE_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn dotenv_merge_keeps_other_variables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fedtest.env");
        std::fs::write(&path, "OTHER=1\nFEDTEST_EXIT_CODE=5\n").unwrap();
        merge_dotenv(
            &path,
            &[
                ("FEDTEST_EXIT_CODE", "0".into()),
                ("FEDTEST_GATE", "passed".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "OTHER=1\nFEDTEST_EXIT_CODE=0\nFEDTEST_GATE=passed\n"
        );
    }

    #[test]
    fn summary_is_capped_at_a_line() {
        let s = cap("line\n".repeat(100), 200);
        assert!(s.len() <= 200, "{}", s.len());
        assert!(s.ends_with("GitHub shows)*\n"));
        assert!(s.starts_with("line\nline\n"));
    }

    #[test]
    fn gitlab_section_cannot_be_closed_by_a_name() {
        let mut r = Report::new(Command::Gate);
        r.gate = Some(GateFacts {
            executed: 1,
            failed: vec![GateTest {
                id: "evil\u{1b}[0Ksection_end:1:fedtest_gate\r".into(),
                file: None,
                line: None,
                note: None,
            }],
            verdict: "1 test failed".into(),
            ..GateFacts::default()
        });
        let text = gitlab_section(&r, 1);
        assert_eq!(text.matches("section_end:").count(), 2, "{text:?}");
        assert_eq!(text.matches('\u{1b}').count(), 4, "{text:?}");
        assert!(text.starts_with(
            "\u{1b}[0Ksection_start:1:fedtest_gate[collapsed=true]\r\u{1b}[0Kfedtest gate: failed"
        ));
    }

    #[test]
    fn targets_follow_flags_then_the_platform() {
        let args = Targets::default();
        let gh = Env::from_pairs(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_OUTPUT", "/o"),
            ("GITHUB_STEP_SUMMARY", "/s"),
        ]);
        let t = Targets::resolve(false, args.clone(), &gh);
        assert_eq!(t.github_output.as_deref(), Some(Path::new("/o")));
        assert_eq!(t.step_summary.as_deref(), Some(Path::new("/s")));
        assert_eq!(t.dotenv, None);
        assert!(!t.gitlab_section);
        // GITHUB_OUTPUT outside GitHub Actions (a leaked variable) is not used.
        let local = Env::from_pairs(&[("GITHUB_OUTPUT", "/o")]);
        assert!(Targets::resolve(false, args.clone(), &local).is_empty());
        let gl = Env::from_pairs(&[("GITLAB_CI", "true")]);
        let t = Targets::resolve(false, args.clone(), &gl);
        assert_eq!(t.dotenv.as_deref(), Some(Path::new(DEFAULT_DOTENV)));
        assert!(t.gitlab_section);
        // Forced paths work anywhere; --no-ci-report turns everything off.
        let forced = Targets {
            step_summary: Some("/tmp/s.md".into()),
            ..Targets::default()
        };
        assert_eq!(
            Targets::resolve(false, forced, &local)
                .step_summary
                .as_deref(),
            Some(Path::new("/tmp/s.md"))
        );
        let forced = Targets {
            step_summary: Some("/tmp/s.md".into()),
            ..Targets::default()
        };
        assert!(Targets::resolve(true, forced.clone(), &gh).is_empty());
        assert!(Targets::resolve(true, forced, &gl).is_empty());
    }
}
