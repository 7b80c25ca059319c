//! The confidence curve (issue 17): for every share of the test time, what running that much of
//! each replayed build, in an ordering's order, would have caught — computed offline from the
//! repository's own history, and drawn for a terminal, an HTML page and a CI job summary.
//!
//! Two numbers per share, both from the replay (each build planned only from the builds before
//! it):
//! - `builds_caught`: the share of the scored builds whose every failure runs within the share.
//!   A build without failures counts as caught: skipping cannot miss what is not there, and
//!   leaving those builds out would make a budget look worse than it is for the team paying it.
//! - `recall`: the mean, over the failing builds, of the share of that build's failing tests
//!   run within the share (what `bench/replay.py --budget` reports as `recall`).
//!
//! fedtest's own curve is its real plans: every build is planned at every whole per cent of
//! budget exactly as `fedtest plan --budget N%` would plan it then — cold-start full runs, new
//! tests, recent failures and exploration included — and each point sits at the share of the
//! test time those plans really ran, so a budget never looks cheaper than it is. Its points
//! agree with `bench/replay.py --budget N%` on the same builds. The other orderings are the
//! ordering alone: "within the share" is `recall_at_time`'s rule (take tests in order while
//! their measured durations fit; the first test always runs).

use std::fmt::Write as _;

use serde::Serialize;

/// The orderings drawn side by side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ordering {
    /// fedtest's plan: the ordering its backtest chose for each build.
    Fedtest,
    /// The simple heuristic (decayed failure history, new tests first).
    History,
    /// The tests in their usual order.
    Original,
}

pub const ORDERINGS: [Ordering; 3] = [Ordering::Fedtest, Ordering::History, Ordering::Original];

impl Ordering {
    pub fn label(self) -> &'static str {
        match self {
            Ordering::Fedtest => "fedtest",
            Ordering::History => "failure history",
            Ordering::Original => "usual order",
        }
    }

    /// The mark in the terminal chart (readable without colour).
    fn glyph(self) -> char {
        match self {
            Ordering::Fedtest => '█',
            Ordering::History => '▪',
            Ordering::Original => '·',
        }
    }

    /// The stroke in the HTML report: mid tones, legible on light and dark backgrounds.
    pub fn colour(self) -> &'static str {
        match self {
            Ordering::Fedtest => "#2563eb",
            Ordering::History => "#ea580c",
            Ordering::Original => "#16a34a",
        }
    }
}

/// Where one ordering put each scored build's failures: per build, the sorted shares of the
/// build's test time at which its failing tests run (empty: a build without failures).
#[derive(Clone, Debug, Default)]
pub struct Positions {
    pub builds: Vec<Vec<f64>>,
}

impl Positions {
    /// Record one build: `order` is the run order, `failing` tells which tests failed,
    /// `seconds` their measured durations.
    pub fn push(
        &mut self,
        order: &[&str],
        failing: impl Fn(&str) -> bool,
        seconds: impl Fn(&str) -> f64,
    ) {
        // The same cost as `recall_at_time` (and replay.py): a test costs at least 1 ms.
        let cost = |t: &str| seconds(t).max(1e-3);
        let total: f64 = order.iter().map(|t| cost(t)).sum();
        let mut acc = 0.0;
        let mut at = Vec::new();
        for (i, t) in order.iter().enumerate() {
            acc += cost(t);
            if failing(t) {
                // The first test always runs, so it costs no budget.
                at.push(if i == 0 { 0.0 } else { acc / total });
            }
        }
        at.sort_by(f64::total_cmp);
        self.builds.push(at);
    }

    /// A build without failures (caught at any share).
    pub fn push_passing(&mut self) {
        self.builds.push(Vec::new());
    }

    fn failing(&self) -> impl Iterator<Item = &Vec<f64>> {
        self.builds.iter().filter(|b| !b.is_empty())
    }

    /// Share of builds whose every failure runs within `share` (builds without failures count).
    pub fn builds_caught(&self, share: f64) -> f64 {
        if self.builds.is_empty() {
            return 1.0;
        }
        let caught = self
            .builds
            .iter()
            .filter(|b| b.last().is_none_or(|&m| within(m, share)))
            .count();
        caught as f64 / self.builds.len() as f64
    }

    /// Mean over failing builds of the share of its failing tests that run within `share`.
    pub fn recall(&self, share: f64) -> f64 {
        let n = self.failing().count();
        if n == 0 {
            return 1.0;
        }
        let sum: f64 = self
            .failing()
            .map(|b| b.iter().filter(|&&v| within(v, share)).count() as f64 / b.len() as f64)
            .sum();
        sum / n as f64
    }
}

/// `v <= share`, forgiving the rounding of the sums that made `v`.
fn within(v: f64, share: f64) -> bool {
    v <= share + 1e-9
}

/// One point of a curve.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Point {
    /// Share of the test time run (0..1): for fedtest, the mean share its plans really ran.
    pub share: f64,
    /// The budget asked (share of the estimated test time); for the plain orderings, `share`.
    pub budget: f64,
    pub builds_caught: f64,
    pub recall: f64,
}

/// What a target share of caught builds costs.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Target {
    pub builds_caught: f64,
    /// Share of the test time it takes on this history.
    pub share: f64,
    /// The `--budget` share that reaches it.
    pub budget: f64,
    /// Test time it saves a week at the history's build rate, when the rate is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_saved_per_week: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Series {
    pub ordering: Ordering,
    /// Every whole per cent of budget, 0 to 100.
    pub points: Vec<Point>,
    pub targets: Vec<Target>,
}

impl Series {
    fn new(
        ordering: Ordering,
        points: Vec<Point>,
        builds_per_week: Option<f64>,
        seconds: f64,
    ) -> Series {
        let targets = TARGETS
            .iter()
            .map(|&t| {
                // The cheapest point that reaches the target (the full run always does).
                let best = points
                    .iter()
                    .filter(|p| p.builds_caught >= t - 1e-9)
                    .min_by(|a, b| a.share.total_cmp(&b.share));
                let (share, budget) = best.map_or((1.0, 1.0), |p| (p.share, p.budget));
                Target {
                    builds_caught: t,
                    share,
                    budget,
                    seconds_saved_per_week: builds_per_week.map(|w| (1.0 - share) * seconds * w),
                }
            })
            .collect();
        Series {
            ordering,
            points,
            targets,
        }
    }

    /// The best of `y` over the points that run at most `share` of the test time; `None` when
    /// no point runs that little (fedtest's plans never run less than their safety rules).
    pub fn at_most(&self, share: f64, y: impl Fn(&Point) -> f64) -> Option<f64> {
        (self.points.iter())
            .filter(|p| within(p.share, share))
            .map(y)
            .max_by(f64::total_cmp)
    }

    /// The points in order of the test time they run (fedtest's are in budget order).
    fn by_share(&self) -> Vec<Point> {
        let mut v = self.points.clone();
        v.sort_by(|a, b| {
            a.share
                .total_cmp(&b.share)
                .then(a.budget.total_cmp(&b.budget))
        });
        v
    }
}

/// What fedtest's real plans ran and caught at every whole per cent of budget, summed over the
/// replayed builds (see the module comment).
#[derive(Clone, Debug)]
pub struct Plans {
    time: Vec<f64>,
    caught: Vec<f64>,
    recall: Vec<f64>,
    builds: usize,
    failing: usize,
}

/// Budgets of fedtest's curve: 0, 1, …, 100 per cent.
pub const BUDGET_STEPS: usize = 101;

/// The `k`-th budget of the curve (0% runs the first test only; 100% runs everything).
pub fn budget(k: usize) -> crate::plan::Budget {
    use crate::plan::Budget;
    if k + 1 >= BUDGET_STEPS {
        Budget::All
    } else {
        Budget::Share(k as f64 / (BUDGET_STEPS - 1) as f64)
    }
}

impl Default for Plans {
    fn default() -> Self {
        Plans {
            time: vec![0.0; BUDGET_STEPS],
            caught: vec![0.0; BUDGET_STEPS],
            recall: vec![0.0; BUDGET_STEPS],
            builds: 0,
            failing: 0,
        }
    }
}

impl Plans {
    /// One build: for each budget, the share of the build's test time its plan ran and — when
    /// the build failed — the share of its failing tests the plan ran.
    pub fn push(&mut self, time_share: &[f64], failing_share: Option<&[f64]>) {
        self.builds += 1;
        for (t, v) in self.time.iter_mut().zip(time_share) {
            *t += v;
        }
        match failing_share {
            None => self.caught.iter_mut().for_each(|c| *c += 1.0),
            Some(f) => {
                self.failing += 1;
                for ((c, r), v) in self.caught.iter_mut().zip(&mut self.recall).zip(f) {
                    *c += f64::from(u8::from(*v >= 1.0 - 1e-12));
                    *r += v;
                }
            }
        }
    }

    fn points(&self) -> Vec<Point> {
        let mean = |sum: f64, n: usize| if n > 0 { sum / n as f64 } else { 1.0 };
        (0..BUDGET_STEPS)
            .map(|k| Point {
                share: mean(self.time[k], self.builds),
                budget: k as f64 / (BUDGET_STEPS - 1) as f64,
                builds_caught: mean(self.caught[k], self.builds),
                recall: mean(self.recall[k], self.failing),
            })
            .collect()
    }
}

/// The confidence curve of a replay.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Curve {
    /// Builds scored (after the warm-up, with at least one test run).
    pub builds: usize,
    pub failing_builds: usize,
    /// Mean measured test time of a scored build, seconds.
    pub seconds_per_build: f64,
    /// Builds a week, from the recorded times (`None` when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub builds_per_week: Option<f64>,
    pub series: Vec<Series>,
}

/// The builds-caught targets named in the reports.
pub const TARGETS: [f64; 4] = [0.8, 0.9, 0.95, 0.99];

impl Curve {
    /// `positions`: the plain orderings; `plans`: fedtest's real plans.
    pub fn new(
        positions: Vec<(Ordering, Positions)>,
        plans: &Plans,
        seconds_per_build: f64,
        builds_per_week: Option<f64>,
    ) -> Curve {
        let mut series = vec![Series::new(
            Ordering::Fedtest,
            plans.points(),
            builds_per_week,
            seconds_per_build,
        )];
        for (ordering, p) in positions {
            let points = (0..=100)
                .map(|k| {
                    let share = f64::from(k) / 100.0;
                    Point {
                        share,
                        budget: share,
                        builds_caught: p.builds_caught(share),
                        recall: p.recall(share),
                    }
                })
                .collect();
            series.push(Series::new(
                ordering,
                points,
                builds_per_week,
                seconds_per_build,
            ));
        }
        Curve {
            builds: plans.builds,
            failing_builds: plans.failing,
            seconds_per_build,
            builds_per_week,
            series,
        }
    }

    /// Name the time saved a week, now that the build rate is known.
    pub fn set_build_rate(&mut self, builds_per_week: Option<f64>) {
        self.builds_per_week = builds_per_week;
        for series in &mut self.series {
            for t in &mut series.targets {
                t.seconds_saved_per_week =
                    builds_per_week.map(|w| (1.0 - t.share) * self.seconds_per_build * w);
            }
        }
    }

    pub fn series(&self, o: Ordering) -> Option<&Series> {
        self.series.iter().find(|s| s.ordering == o)
    }

    /// The sentence the reports lead with: what catching 95% of the builds costs.
    pub fn headline(&self) -> String {
        let Some(t) = self
            .series(Ordering::Fedtest)
            .and_then(|s| s.targets.iter().find(|t| t.builds_caught == 0.95))
        else {
            return "no build to replay yet".to_owned();
        };
        let mut s = format!(
            "catching 95% of builds takes {} of test time on this history (--budget {})",
            pct_up(t.share),
            pct_up(t.budget)
        );
        match t.seconds_saved_per_week {
            Some(w) => {
                let _ = write!(s, "; it saves {} a week at your build rate", human(w));
            }
            None => {
                let _ = write!(
                    s,
                    "; it saves {} a build",
                    human((1.0 - t.share) * self.seconds_per_build)
                );
            }
        }
        s
    }
}

/// "2 h 10 min", "4 min 5 s", "12 s".
pub fn human(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if seconds < 10.0 {
        return format!("{:.1} s", seconds.max(0.0));
    }
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

// ------------------------------------------------------------------ terminal

const PLOT_WIDTH: usize = 60;
const PLOT_HEIGHT: usize = 12;

/// The curve of builds caught, as Unicode text at most 80 columns wide; each ordering has its
/// own mark, so no colour is needed.
pub fn terminal(curve: &Curve) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Confidence curve: builds caught (every failure run) by share of test time, {} builds \
         replayed, {} with failures",
        curve.builds, curve.failing_builds
    );
    let mut grid = vec![vec![' '; PLOT_WIDTH + 1]; PLOT_HEIGHT + 1];
    // Drawn back to front, so fedtest's mark wins where the curves meet.
    for series in curve.series.iter().rev() {
        for col in 0..=PLOT_WIDTH {
            let Some(y) = series.at_most(col as f64 / PLOT_WIDTH as f64, |p| p.builds_caught)
            else {
                continue;
            };
            let row = (y * PLOT_HEIGHT as f64).round() as usize;
            if let Some(cell) = grid[PLOT_HEIGHT - row].get_mut(col) {
                *cell = series.ordering.glyph();
            }
        }
    }
    for (i, line) in grid.iter().enumerate() {
        let level = PLOT_HEIGHT - i;
        let label = if level.is_multiple_of(3) {
            format!("{:>4}", pct(level as f64 / PLOT_HEIGHT as f64))
        } else {
            "    ".to_owned()
        };
        let row: String = line.iter().collect();
        let _ = writeln!(s, "{label} ┤{}", row.trim_end());
    }
    let mut axis = String::from("     └");
    let mut ticks = String::from("      ");
    for col in 0..=PLOT_WIDTH {
        axis.push(if col % 6 == 0 { '┬' } else { '─' });
    }
    for col in (0..=PLOT_WIDTH).step_by(12) {
        let label = pct(col as f64 / PLOT_WIDTH as f64);
        let start = 6 + col;
        let start = start.saturating_sub(label.len() / 2);
        while ticks.chars().count() < start {
            ticks.push(' ');
        }
        ticks.push_str(&label);
    }
    let _ = writeln!(s, "{axis}");
    let _ = writeln!(s, "{ticks}   of test time");
    let legend: Vec<String> = curve
        .series
        .iter()
        .map(|x| format!("{} {}", x.ordering.glyph(), x.ordering.label()))
        .collect();
    let _ = writeln!(s, "      {}", legend.join("   "));
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  builds / tests caught at   {:>13} {:>13} {:>13}",
        "budget 10%", "budget 30%", "budget 50%"
    );
    for series in &curve.series {
        let cell = |k: usize| {
            let p = series.points[k];
            format!("{} / {}", pct(p.builds_caught), pct(p.recall))
        };
        let _ = writeln!(
            s,
            "  {:<24} {:>13} {:>13} {:>13}",
            series.ordering.label(),
            cell(10),
            cell(30),
            cell(50)
        );
    }
    if let Some(f) = curve.series(Ordering::Fedtest) {
        let ran: Vec<String> = [10, 30, 50]
            .iter()
            .map(|&k| pct(f.points[k].share))
            .collect();
        let _ = writeln!(
            s,
            "  fedtest: its plans at --budget 10% / 30% / 50%, which ran {} of the test time\n  \
             (cold-start full runs, new tests and recent failures run whatever the budget)",
            ran.join(" / ")
        );
        let _ = writeln!(s);
        let costs: Vec<String> = f.targets.iter().map(|t| pct_up(t.share)).collect();
        let _ = writeln!(
            s,
            "  test time to catch 80 / 90 / 95 / 99% of builds: {}",
            costs.join(" / ")
        );
        // The headline is one sentence; two lines keep it inside 80 columns.
        for part in curve.headline().split("; ") {
            let _ = writeln!(s, "  {part}");
        }
    }
    s
}

/// A share as a whole per cent, rounded up (a budget that rounds down would miss).
fn pct_up(v: f64) -> String {
    format!("{:.0}%", (v * 100.0 - 1e-6).ceil().max(0.0))
}

// ------------------------------------------------------------------ HTML

/// A self-contained HTML page: inline SVG, no scripts, no network; the page follows the
/// reader's light or dark scheme (axes and text in `currentColor`).
pub fn html(curve: &Curve, title: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>\n\
         :root {{ color-scheme: light dark; }}\n\
         body {{ font-family: system-ui, sans-serif; margin: 2em; background: Canvas; color: CanvasText; max-width: 60em; }}\n\
         svg {{ max-width: 100%; height: auto; }}\n\
         table {{ border-collapse: collapse; }}\n\
         td, th {{ padding: 0.2em 0.8em; text-align: right; border-bottom: 1px solid color-mix(in srgb, currentColor 25%, transparent); }}\n\
         th:first-child, td:first-child {{ text-align: left; }}\n\
         </style>\n</head>\n<body>\n",
        xml_escape(title)
    );
    let _ = writeln!(s, "<h1>{}</h1>", xml_escape(title));
    let _ = writeln!(
        s,
        "<p><strong>{}</strong>.</p>\n<p>{} builds replayed, {} with failures; each build was \
         planned only from the builds before it. A build without failures counts as caught.</p>",
        xml_escape(&curve.headline()),
        curve.builds,
        curve.failing_builds
    );
    let _ = writeln!(s, "<h2>Builds caught (every failure run)</h2>");
    s.push_str(&svg(curve, |p| p.builds_caught, "builds caught"));
    let _ = writeln!(s, "<h2>Failing tests caught (mean per failing build)</h2>");
    s.push_str(&svg(curve, |p| p.recall, "failing tests caught"));
    let _ = writeln!(
        s,
        "<h2>At a few budgets</h2>\n<table>\n<tr><th>ordering</th><th>budget 10%</th><th>budget 30%</th><th>budget 50%</th></tr>"
    );
    for series in &curve.series {
        let cell = |k: usize| {
            let p = series.points[k];
            let ran = if series.ordering == Ordering::Fedtest {
                format!(" (ran {})", pct(p.share))
            } else {
                String::new()
            };
            format!(
                "{} builds, {} tests{ran}",
                pct(p.builds_caught),
                pct(p.recall)
            )
        };
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            series.ordering.label(),
            cell(10),
            cell(30),
            cell(50)
        );
    }
    let _ = writeln!(s, "</table>");
    if let Some(f) = curve.series(Ordering::Fedtest) {
        let _ = writeln!(
            s,
            "<h2>What each target costs (fedtest)</h2>\n<table>\n<tr><th>builds caught</th><th>test time</th><th>budget</th><th>saved a week</th></tr>"
        );
        for t in &f.targets {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                pct(t.builds_caught),
                pct_up(t.share),
                pct_up(t.budget),
                t.seconds_saved_per_week
                    .map_or_else(|| "build rate unknown".to_owned(), human)
            );
        }
        let _ = writeln!(s, "</table>");
    }
    let _ = writeln!(
        s,
        "<p><small>fedtest {}</small></p>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    s
}

/// One chart as inline SVG: the three orderings as step lines over 0–100% of the test time.
pub fn svg(curve: &Curve, y: impl Fn(&Point) -> f64, what: &str) -> String {
    let (w, h) = (640.0, 400.0);
    let (left, right, top, bottom) = (56.0, 16.0, 16.0, 64.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let px = |share: f64| left + share * pw;
    let py = |v: f64| top + (1.0 - v) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" \
         role=\"img\" aria-label=\"{} by share of test time\" font-size=\"12\" fill=\"currentColor\">",
        xml_escape(what)
    );
    for k in 0..=10 {
        let v = f64::from(k) / 10.0;
        let _ = writeln!(
            s,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"currentColor\" stroke-opacity=\"0.15\"/>",
            px(0.0),
            py(v),
            px(1.0),
            py(v)
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}%</text>",
            left - 6.0,
            py(v) + 4.0,
            k * 10
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}%</text>",
            px(v),
            top + ph + 18.0,
            k * 10
        );
    }
    let _ = writeln!(
        s,
        "<path d=\"M{:.1} {:.1} V{:.1} H{:.1}\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\"/>",
        px(0.0),
        py(1.0),
        py(0.0),
        px(1.0)
    );
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">share of test time run</text>",
        left + pw / 2.0,
        h - 28.0
    );
    for (i, series) in curve.series.iter().enumerate().rev() {
        let mut d = String::new();
        for (k, p) in series.by_share().iter().enumerate() {
            let (x, yv) = (px(p.share), py(y(p)));
            if k == 0 {
                let _ = write!(d, "M{x:.1} {yv:.1}");
            } else {
                // A step: the value holds until the next whole per cent.
                let _ = write!(d, " H{x:.1} V{yv:.1}");
            }
        }
        let dash = if series.ordering == Ordering::Original {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{dash}><title>{}</title></path>",
            series.ordering.colour(),
            if i == 0 { 3 } else { 2 },
            series.ordering.label()
        );
        let lx = left + 8.0 + 180.0 * i as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{lx:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"3\"{dash}/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            h - 8.0,
            lx + 24.0,
            h - 8.0,
            series.ordering.colour(),
            lx + 30.0,
            h - 4.0,
            series.ordering.label()
        );
    }
    s.push_str("</svg>\n");
    s
}

fn xml_escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ------------------------------------------------------------------ Markdown (CI summaries)

/// The curve for a GitHub job summary: a Mermaid `xychart-beta` line chart (GitHub renders
/// Mermaid fences; xychart has no legend, so the lines are named beneath it) and the targets.
pub fn markdown(curve: &Curve) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### Confidence curve\n\n{}.\n", curve.headline());
    let labels: Vec<String> = (0..=10).map(|k| format!("\"{}%\"", k * 10)).collect();
    let _ = write!(
        s,
        "```mermaid\nxychart-beta\n    title \"Builds caught, % (by share of test time run)\"\n    \
         x-axis [{}]\n    y-axis \"builds caught, %\" 0 --> 100\n",
        labels.join(", ")
    );
    for series in &curve.series {
        // Where fedtest's plans never ran that little, the line sits at 0 (said below).
        let values: Vec<String> = (0..=10)
            .map(|k| {
                let y = series.at_most(f64::from(k) / 10.0, |p| p.builds_caught);
                format!("{:.1}", y.unwrap_or(0.0) * 100.0)
            })
            .collect();
        let _ = writeln!(s, "    line [{}]", values.join(", "));
    }
    let names: Vec<&str> = curve.series.iter().map(|x| x.ordering.label()).collect();
    let _ = writeln!(
        s,
        "```\n\nLines, top of the legend first: {}. {} builds replayed, {} with failures.\n",
        names.join(", "),
        curve.builds,
        curve.failing_builds
    );
    if let Some(f) = curve.series(Ordering::Fedtest)
        && let Some(least) = f.points.first().map(|p| p.share)
        && least > 0.0
    {
        let _ = writeln!(
            s,
            "fedtest's plans never ran less than {} of the test time here: cold-start full runs, \
             new tests and recent failures run whatever the budget.\n",
            pct(least)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(builds: &[&[f64]]) -> Positions {
        Positions {
            builds: builds.iter().map(|b| b.to_vec()).collect(),
        }
    }

    #[test]
    fn builds_without_failures_count_as_caught() {
        let p = positions(&[&[], &[0.5], &[0.2, 0.9]]);
        assert!((p.builds_caught(0.0) - 1.0 / 3.0).abs() < 1e-12);
        assert!((p.builds_caught(0.5) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(p.builds_caught(1.0), 1.0);
        // Recall is over failing builds only: (0 + 1/2) / 2 at 20%.
        assert!((p.recall(0.2) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn positions_follow_the_time_budget_rule() {
        let mut p = Positions::default();
        let dur = |t: &str| if t == "slow" { 8.0 } else { 1.0 };
        p.push(&["a", "slow", "b"], |t| t == "slow" || t == "a", dur);
        // "a" runs first (free), "slow" ends at 9 of 10 seconds.
        assert_eq!(p.builds[0], vec![0.0, 0.9]);
        assert_eq!(p.recall(0.5), 0.5);
    }
}
