//! What `fedtest flaky` prints: the flaky tests with their evidence, as a table, JSON or a
//! Markdown table (for a job summary or a pull-request comment).

use std::fmt::Write as _;

use serde::Serialize;

use crate::history::flaky_rows::FlakyRow;

/// Output format of `fedtest flaky`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Markdown,
}

/// One listed test.
#[derive(Clone, Debug, Serialize)]
pub struct Listed {
    pub id: String,
    pub score: f64,
    /// The score is at or above the threshold.
    pub flaky: bool,
    pub runs: u32,
    pub retry_flakes: u32,
    pub same_commit_flips: u32,
    /// Flips with known changed files, none of them the test's own.
    pub unrelated_flips: u32,
    /// Flips with unknown changed files.
    pub unknown_flips: u32,
    /// Flips its own changes explain (not evidence).
    pub related_flips: u32,
    /// Recency-weighted flip rate.
    pub flip_rate: f64,
    pub flake_free_runs: u32,
    pub first_flake: Option<String>,
    pub last_flake: Option<String>,
    pub file: Option<String>,
    pub owners: Vec<String>,
    pub quarantined: bool,
}

impl Listed {
    pub fn new(row: FlakyRow, threshold: f64, owners: Vec<String>, quarantined: bool) -> Self {
        let s = &row.state;
        // Four decimals: all a reader needs, and stable across platforms' `exp`.
        let round = |v: f64| (v * 1e4).round() / 1e4;
        let score = round(s.score());
        Listed {
            score,
            flaky: score >= threshold,
            runs: s.runs,
            retry_flakes: s.retry_flakes,
            same_commit_flips: s.same_commit_flips,
            unrelated_flips: s.unrelated_flips,
            unknown_flips: s.unknown_flips,
            related_flips: s.related_flips,
            flip_rate: round(s.flip_rate),
            flake_free_runs: s.flake_free_runs,
            first_flake: row.first_flake_build,
            last_flake: row.last_flake_build,
            file: row.file,
            owners,
            quarantined,
            id: row.id,
        }
    }

    fn flips(&self) -> u32 {
        self.unrelated_flips + self.unknown_flips
    }
}

/// Highest score first; ties by id, so the order is stable.
pub fn sort_listed(tests: &mut [Listed]) {
    tests.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
}

/// The whole listing.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub threshold: f64,
    pub min_score: f64,
    /// The CODEOWNERS file owners come from, when the repository has one.
    pub codeowners: Option<String>,
    pub tests: Vec<Listed>,
}

impl Report {
    /// Sort: highest score first, then by id.
    pub fn sort(&mut self) {
        sort_listed(&mut self.tests);
    }

    pub fn render(&self, format: ReportFormat) -> String {
        match format {
            ReportFormat::Json => {
                serde_json::to_string_pretty(self).expect("the report serialises") + "\n"
            }
            ReportFormat::Table => self.table(),
            ReportFormat::Markdown => self.markdown(),
        }
    }

    fn table(&self) -> String {
        let mut s = String::new();
        if self.tests.is_empty() {
            let _ = writeln!(s, "no test scores {:.2} or more", self.min_score);
            return s;
        }
        let width = self
            .tests
            .iter()
            .map(|t| t.id.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            s,
            "{:>5}  {:<width$}  {:>5}  {:>6}  {:>5}  {:>4}  {:<12}  {:<12}  owners",
            "score", "test", "retry", "commit", "flips", "runs", "first flake", "last flake"
        );
        for t in &self.tests {
            let owners = if t.owners.is_empty() {
                "-".to_owned()
            } else {
                t.owners.join(" ")
            };
            let _ = writeln!(
                s,
                "{:>5.2}  {:<width$}  {:>5}  {:>6}  {:>5}  {:>4}  {:<12}  {:<12}  {}{}",
                t.score,
                t.id,
                t.retry_flakes,
                t.same_commit_flips,
                t.flips(),
                t.runs,
                t.first_flake.as_deref().unwrap_or("-"),
                t.last_flake.as_deref().unwrap_or("-"),
                owners,
                if t.quarantined { "  (quarantined)" } else { "" }
            );
        }
        let flaky = self.tests.iter().filter(|t| t.flaky).count();
        let _ = writeln!(
            s,
            "\n{flaky} flaky (score >= {:.2}); retry = failed then passed in one build, commit = \
             flipped on the same commit, flips = flipped with no change to its own file",
            self.threshold
        );
        s
    }

    fn markdown(&self) -> String {
        let mut s = String::from("### Flaky tests\n\n");
        if self.tests.is_empty() {
            let _ = writeln!(s, "No test scores {:.2} or more.", self.min_score);
            return s;
        }
        s.push_str(
            "| score | test | retry flakes | same-commit flips | other flips | runs | first flake | last flake | owners |\n\
             |---:|---|---:|---:|---:|---:|---|---|---|\n",
        );
        let cell = |v: &str| v.replace('|', "\\|");
        for t in &self.tests {
            let _ = writeln!(
                s,
                "| {:.2} | `{}`{} | {} | {} | {} | {} | {} | {} | {} |",
                t.score,
                cell(&t.id),
                if t.quarantined { " (quarantined)" } else { "" },
                t.retry_flakes,
                t.same_commit_flips,
                t.flips(),
                t.runs,
                cell(t.first_flake.as_deref().unwrap_or("-")),
                cell(t.last_flake.as_deref().unwrap_or("-")),
                cell(&t.owners.join(" "))
            );
        }
        let _ = writeln!(
            s,
            "\nScore: probability the test is flaky now; flaky at {:.2} or more.",
            self.threshold
        );
        s
    }
}
