//! `harness compare A B`: two result sets side by side.
//!
//! Cells are matched by label and scenario; repeats are summarised by their
//! median and min-max. For each metric the table shows the ratio B / A and
//! marks a change as real only when it is larger than the noise: the spread
//! (max - min) of the repeats in either set, or, when both sets ran once,
//! `--threshold` percent. `--fail-on-regression PCT` exits non-zero when the
//! chosen metric got worse by more than PCT and beyond the noise in any cell.

use crate::report::groups::{Labels, Spread, count, kib, number};
use crate::report::load::{self, Histograms, ResultSet};
use crate::results::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The baseline result set.
    pub a: PathBuf,
    /// The result set compared with the baseline.
    pub b: PathBuf,
    /// The metric --fail-on-regression checks (and the one shown with its values).
    #[arg(long, value_enum, default_value = "msgs_per_sec")]
    pub metric: Metric,
    /// Exit non-zero when the metric regresses by more than PCT percent, beyond the noise.
    #[arg(long, value_name = "PCT")]
    pub fail_on_regression: Option<f64>,
    /// Noise threshold in percent when neither set has repeats.
    #[arg(long, value_name = "PCT", default_value_t = 5.0)]
    pub threshold: f64,
}

/// A compared measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Metric {
    #[value(name = "msgs_per_sec")]
    MsgsPerSec,
    #[value(name = "p50")]
    P50,
    #[value(name = "p99")]
    P99,
    #[value(name = "p999")]
    P999,
    #[value(name = "cpu_us_per_msg")]
    CpuUsPerMsg,
    /// The server's memory, each page once (`memory_kib`; `rss_kib` is
    /// kept as another name for it, for scripts written before).
    #[value(name = "memory_kib", alias = "rss_kib")]
    MemoryKib,
}

impl Metric {
    const ALL: [Metric; 6] = [
        Metric::MsgsPerSec,
        Metric::P50,
        Metric::P99,
        Metric::P999,
        Metric::CpuUsPerMsg,
        Metric::MemoryKib,
    ];

    fn heading(self) -> &'static str {
        match self {
            Metric::MsgsPerSec => "msgs/s",
            Metric::P50 => "p50",
            Metric::P99 => "p99",
            Metric::P999 => "p99.9",
            Metric::CpuUsPerMsg => "CPU/msg",
            Metric::MemoryKib => "memory",
        }
    }

    fn value(self, cell: &Cell) -> Option<f64> {
        match self {
            Metric::MsgsPerSec => Some(cell.msgs_per_sec),
            Metric::P50 => Some(cell.latency_us.p50),
            Metric::P99 => Some(cell.latency_us.p99),
            Metric::P999 => Some(cell.latency_us.p999),
            Metric::CpuUsPerMsg => cell.server.as_ref().map(|server| server.cpu_us_per_msg),
            Metric::MemoryKib => cell.server.as_ref()?.memory_kib().map(|kib| kib as f64),
        }
    }

    fn format(self, value: f64) -> String {
        match self {
            Metric::MsgsPerSec => count(value),
            Metric::MemoryKib => kib(value),
            _ => number(value),
        }
    }

    fn higher_is_better(self) -> bool {
        self == Metric::MsgsPerSec
    }
}

/// One metric of one matched cell.
#[derive(Debug, Clone, Copy)]
struct Change {
    a: Spread,
    b: Spread,
    /// (B - A) / A in percent.
    percent: f64,
    /// The change is larger than the noise.
    real: bool,
    /// The change is real and for the worse.
    worse: bool,
}

impl Change {
    fn of(metric: Metric, a: Option<Spread>, b: Option<Spread>, threshold: f64) -> Option<Change> {
        let (a, b) = (a?, b?);
        if a.median == 0.0 {
            return None;
        }
        let percent = (b.median - a.median) / a.median * 100.0;
        let noise = if a.runs > 1 || b.runs > 1 {
            (a.max - a.min).max(b.max - b.min) / a.median.abs() * 100.0
        } else {
            threshold
        };
        let real = percent.abs() > noise;
        let worse = real && (percent < 0.0) == metric.higher_is_better();
        Some(Change {
            a,
            b,
            percent,
            real,
            worse,
        })
    }

    /// `1.07*` (real), `0.93!` (real and worse), `1.01` (within noise).
    fn ratio_text(&self) -> String {
        let mark = if self.worse {
            "!"
        } else if self.real {
            "*"
        } else {
            ""
        };
        format!("{:.2}{mark}", self.b.median / self.a.median)
    }
}

type Key = (String, String);

pub fn main(args: CompareArgs) -> anyhow::Result<()> {
    let set_a = load::result_set(&args.a, Histograms::Skip)?;
    let set_b = load::result_set(&args.b, Histograms::Skip)?;
    let (runs_a, runs_b) = (runs_by_cell(&set_a), runs_by_cell(&set_b));
    let labels = Labels::new(
        runs_a
            .keys()
            .chain(runs_b.keys())
            .map(|(label, _)| label.as_str()),
    );
    let matched = in_order(
        runs_a.keys().filter(|key| runs_b.contains_key(*key)).collect(),
        &labels,
    );
    let only_a = in_order(
        runs_a.keys().filter(|key| !runs_b.contains_key(*key)).collect(),
        &labels,
    );
    let only_b = in_order(
        runs_b.keys().filter(|key| !runs_a.contains_key(*key)).collect(),
        &labels,
    );

    let chosen = args.metric;
    let mut headers: Vec<String> = vec!["model".into(), "scenario".into()];
    headers.push(format!("{} A", chosen.heading()));
    headers.push(format!("{} B", chosen.heading()));
    headers.extend(
        Metric::ALL
            .iter()
            .map(|metric| format!("{} B/A", metric.heading())),
    );
    headers.push("flags".into());
    let mut rows = Vec::new();
    let mut regressions = Vec::new();
    for key in &matched {
        let (a, b) = (&runs_a[*key], &runs_b[*key]);
        let spread =
            |runs: &Vec<&Cell>, metric: Metric| Spread::of(runs.iter().filter_map(|cell| metric.value(cell)));
        let mut row = vec![key.0.clone(), key.1.clone()];
        for runs in [a, b] {
            row.push(spread(runs, chosen).map_or_else(|| "-".into(), |value| with_range(chosen, value)));
        }
        for metric in Metric::ALL {
            let change = Change::of(metric, spread(a, metric), spread(b, metric), args.threshold);
            row.push(change.map_or_else(|| "-".into(), |change| change.ratio_text()));
            if metric == chosen
                && let (Some(change), Some(limit)) = (change, args.fail_on_regression)
                && change.worse
                && change.percent.abs() > limit
            {
                regressions.push(format!("{} / {} ({:+.1}%)", key.0, key.1, change.percent));
            }
        }
        row.push(flags_text(a, b));
        rows.push(row);
    }

    let mut out = String::new();
    let _ = writeln!(out, "A: {}\nB: {}", describe(&set_a), describe(&set_b));
    let _ = writeln!(
        out,
        "B/A: ratio of medians over repeats; * beyond the noise (spread of repeats in either set, or {}% when \
         both ran once); ! beyond the noise and worse (lower msgs/s, higher latency, CPU or memory).\n",
        args.threshold
    );
    out.push_str(&table(&headers, &rows));
    for (name, keys) in [("A", &only_a), ("B", &only_b)] {
        if !keys.is_empty() {
            let _ = writeln!(out, "\nOnly in {name} ({}):", keys.len());
            for (label, scenario) in keys {
                let _ = writeln!(out, "  {label} / {scenario}");
            }
        }
    }
    if let (Some(faults_a), Some(faults_b)) = (&set_a.faults, &set_b.faults) {
        out.push_str(&fault_changes(faults_a, faults_b, &labels));
    }
    print!("{out}");

    if let Some(limit) = args.fail_on_regression
        && !regressions.is_empty()
    {
        anyhow::bail!(
            "{} regressed by more than {limit}% beyond the noise in {} cell(s): {}",
            chosen.heading(),
            regressions.len(),
            regressions.join(", ")
        );
    }
    Ok(())
}

/// By scenario, then label in display order.
fn in_order<'a>(mut keys: Vec<&'a Key>, labels: &Labels) -> Vec<&'a Key> {
    keys.sort_by_key(|(label, scenario)| (scenario.clone(), labels.rank(label), label.clone()));
    keys
}

fn runs_by_cell(set: &ResultSet) -> BTreeMap<Key, Vec<&Cell>> {
    let mut runs: BTreeMap<Key, Vec<&Cell>> = BTreeMap::new();
    for data in &set.cells {
        runs.entry((data.cell.label.clone(), data.cell.scenario.clone()))
            .or_default()
            .push(&data.cell);
    }
    runs
}

/// The flags raised in either set, e.g. `A: starved; B: errors, starved`.
fn flags_text(a: &[&Cell], b: &[&Cell]) -> String {
    let flags = |runs: &[&Cell]| {
        let set: BTreeSet<&str> = runs
            .iter()
            .flat_map(|cell| cell.flags.iter().map(|flag| flag.as_str()))
            .collect();
        set.into_iter().collect::<Vec<_>>().join(", ")
    };
    let (in_a, in_b) = (flags(a), flags(b));
    let mut parts = Vec::new();
    if !in_a.is_empty() {
        parts.push(format!("A: {in_a}"));
    }
    if !in_b.is_empty() {
        parts.push(format!("B: {in_b}"));
    }
    parts.join("; ")
}

fn with_range(metric: Metric, spread: Spread) -> String {
    if spread.runs > 1 {
        format!(
            "{} ({}-{})",
            metric.format(spread.median),
            metric.format(spread.min),
            metric.format(spread.max)
        )
    } else {
        metric.format(spread.median)
    }
}

/// The directory, with the manifest's suite and commit when present.
fn describe(set: &ResultSet) -> String {
    let field = |names: &[&str]| {
        names.iter().find_map(|name| {
            set.manifest
                .pointer(name)
                .and_then(|value| value.as_str())
                .map(str::to_owned)
        })
    };
    let mut text = set.dir.display().to_string();
    if let Some(suite) = field(&["/suite", "/suite/name"]) {
        text.push_str(&format!(", suite {suite}"));
    }
    if let Some(commit) = field(&["/git_commit", "/commit", "/git/commit"]) {
        text.push_str(&format!(", commit {commit}"));
    }
    text.push_str(&format!(", {} cells", set.cells.len()));
    text
}

/// Left-aligned text columns, right-aligned numbers, two spaces apart.
fn table(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                if column < 2 || column + 1 == cells.len() {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// Robustness-matrix cells (server × fault) whose outcome differs between
/// the two sets' `faults.json`.
fn fault_changes(
    a: &[crate::results::faults::FaultRow],
    b: &[crate::results::faults::FaultRow],
    labels: &Labels,
) -> String {
    let mut both: Vec<(
        &crate::results::faults::FaultRow,
        &crate::results::faults::FaultRow,
    )> = a
        .iter()
        .filter_map(|row_a| Some((row_a, crate::report::faults::find(b, &row_a.fault, &row_a.label)?)))
        .collect();
    both.sort_by_key(|&(row, _)| (row.fault.as_str(), labels.rank(&row.label), row.label.as_str()));
    let changed: Vec<String> = both
        .iter()
        .filter(|(row_a, row_b)| row_a.outcome != row_b.outcome)
        .map(|(row_a, row_b)| {
            format!(
                "  {} / {}: {} ({}) -> {} ({}){}",
                row_a.label,
                row_a.fault,
                row_a.outcome.as_str(),
                row_a.deciding,
                row_b.outcome.as_str(),
                row_b.deciding,
                if row_b.outcome > row_a.outcome {
                    "  worse"
                } else {
                    ""
                }
            )
        })
        .collect();
    if changed.is_empty() {
        format!(
            "\nRobustness matrix: no outcome changed ({} cells in both).\n",
            both.len()
        )
    } else {
        format!(
            "\nRobustness matrix: {} of {} cells changed outcome (A -> B):\n{}\n",
            changed.len(),
            both.len(),
            changed.join("\n")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(values: &[f64]) -> Option<Spread> {
        Spread::of(values.iter().copied())
    }

    #[test]
    fn single_runs_use_the_threshold() {
        let change = Change::of(Metric::MsgsPerSec, spread(&[100.0]), spread(&[96.0]), 5.0).unwrap();
        assert!(!change.real);
        let change = Change::of(Metric::MsgsPerSec, spread(&[100.0]), spread(&[90.0]), 5.0).unwrap();
        assert!(change.real && change.worse);
    }

    #[test]
    fn repeats_use_their_spread_and_latency_is_worse_when_higher() {
        let change = Change::of(Metric::P99, spread(&[90.0, 100.0, 110.0]), spread(&[115.0]), 5.0).unwrap();
        assert!(!change.real, "15% is within a 20% spread");
        let change = Change::of(Metric::P99, spread(&[99.0, 100.0, 101.0]), spread(&[110.0]), 50.0).unwrap();
        assert!(change.real && change.worse);
        let change = Change::of(Metric::P99, spread(&[99.0, 100.0, 101.0]), spread(&[90.0]), 50.0).unwrap();
        assert!(change.real && !change.worse);
    }
}
