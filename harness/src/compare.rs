//! `harness compare A B`: what changed between two result sets, and what
//! only looks changed.
//!
//! Cells are matched by label and scenario; their samples are the repeats.
//! For every matched cell and metric a row gives the medians of A and B,
//! the ratio of medians B / A with a 95% confidence interval (Hodges–Lehmann
//! on log values, the interval that inverts the rank test: see
//! [`crate::stats`]), the two-sided Mann–Whitney p-value and a verdict:
//!
//! - `better` / `worse`: significant after the correction for many rows
//!   (`--correction`: Benjamini–Hochberg by default, Holm–Bonferroni on
//!   request) over every row that could be significant, and the ratio's CI
//!   reaches beyond ±`--threshold`;
//! - `same`: no significant difference, or a CI inside ±`--threshold`;
//! - `too few repeats`: the sample sizes cannot give p < 0.05 at all (the
//!   smallest p they allow is shown); 3 repeats a side cannot.
//!
//! Before the table, what differs between the two manifests. A difference
//! in what was measured (suite, scenarios, sizes) is refused unless
//! `--force`; one in where (CPU, cores, kernel) is a warning.
//! `--fail-on-regression PCT` exits 1 for a `worse` row whose whole CI lies
//! beyond PCT, and only then. `--out DIR` also writes the comparison as
//! `compare.md` and `compare.html` with its charts
//! ([`crate::report::comparison`]).

use crate::report::comparison::{Comparison, Measure, Part};
use crate::report::groups::{Labels, count, kib, number};
use crate::report::load::{self, Histograms, ResultSet};
use crate::results::cell::Cell;
use crate::stats::{self, ALPHA};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::PathBuf;

/// The correction for testing many rows at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Correction {
    /// Benjamini–Hochberg: the false discovery rate at 5%.
    Bh,
    /// Holm–Bonferroni: the family-wise error rate at 5%.
    Holm,
}

impl Correction {
    fn name(self) -> &'static str {
        match self {
            Correction::Bh => "Benjamini-Hochberg",
            Correction::Holm => "Holm-Bonferroni",
        }
    }

    fn adjust(self, p_values: &[f64]) -> Vec<f64> {
        match self {
            Correction::Bh => stats::benjamini_hochberg(p_values),
            Correction::Holm => stats::holm(p_values),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The baseline result set.
    pub a: PathBuf,
    /// The result set compared with the baseline.
    pub b: PathBuf,
    /// Compare this metric only [default: all six]; `rss_kib` is another
    /// name for `memory_kib`.
    #[arg(long, value_enum)]
    pub metric: Option<Metric>,
    /// Exit 1 when a row is `worse` and its whole 95% CI lies more than PCT
    /// percent beyond no change.
    #[arg(long, value_name = "PCT")]
    pub fail_on_regression: Option<f64>,
    /// A change whose 95% CI lies within ±PCT percent is `same`.
    #[arg(long, value_name = "PCT", default_value_t = 2.0)]
    pub threshold: f64,
    /// List every row, not only the significant ones.
    #[arg(long)]
    pub all: bool,
    /// Print the comparison as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Compare sets that measured different things (suite, scenarios, sizes).
    #[arg(long)]
    pub force: bool,
    /// How the p-values of many rows are corrected: `bh` (Benjamini–Hochberg:
    /// at most 5% of the changes it finds are false, on average; when nothing
    /// changed, a 5% chance of any finding, as Holm) or `holm`
    /// (Holm–Bonferroni: at most a 5% chance of any false change; with 6
    /// repeats a side it finds nothing in more than 23 rows).
    #[arg(long, value_enum, default_value_t = Correction::Bh)]
    pub correction: Correction,
    /// Also write the comparison as DIR/compare.md and DIR/compare.html
    /// (creating DIR): the sets, the manifest differences, the verdict
    /// table (as printed; every row with --all), then for each sweep and
    /// metric one chart drawing both sets, A solid and B dashed, as
    /// DIR/compare-*.svg (replacing an earlier comparison's). A second run
    /// writes the same bytes.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
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

    fn name(self) -> &'static str {
        match self {
            Metric::MsgsPerSec => "msgs_per_sec",
            Metric::P50 => "p50",
            Metric::P99 => "p99",
            Metric::P999 => "p999",
            Metric::CpuUsPerMsg => "cpu_us_per_msg",
            Metric::MemoryKib => "memory_kib",
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

    /// How `--out`'s charts name it: title, axis label, log axis.
    fn chart_words(self) -> (&'static str, &'static str, bool) {
        match self {
            Metric::MsgsPerSec => ("Throughput", "throughput (msgs/s)", false),
            Metric::P50 => ("p50 latency", "p50 latency (µs, log scale)", true),
            Metric::P99 => ("p99 latency", "p99 latency (µs, log scale)", true),
            Metric::P999 => ("p99.9 latency", "p99.9 latency (µs, log scale)", true),
            Metric::CpuUsPerMsg => ("Server CPU per message", "server CPU per message (µs)", false),
            Metric::MemoryKib => (
                "Server memory",
                "server peak memory (KiB, each page once, log scale)",
                true,
            ),
        }
    }
}

/// What a row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    #[serde(rename = "better")]
    Better,
    #[serde(rename = "worse")]
    Worse,
    #[serde(rename = "same")]
    Same,
    #[serde(rename = "too few repeats")]
    TooFewRepeats,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Same => "same",
            Verdict::TooFewRepeats => "too few repeats",
        }
    }
}

/// One metric of one matched cell.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub label: String,
    pub scenario: String,
    pub metric: &'static str,
    pub a_median: f64,
    pub b_median: f64,
    /// B / A, the ratio of the medians (null when A's median is 0).
    pub ratio: Option<f64>,
    /// The 95% CI of the ratio (null for too few repeats, or a value ≤ 0).
    pub ratio_ci: Option<[f64; 2]>,
    /// Mann–Whitney, two-sided, before any adjustment.
    pub p_value: f64,
    /// After the correction (`--correction`) over the rows that could be
    /// significant (null for too few repeats).
    pub p_adjusted: Option<f64>,
    /// The smallest p the sample sizes allow.
    pub smallest_p: f64,
    pub n_a: usize,
    pub n_b: usize,
    pub verdict: Verdict,
    #[serde(skip)]
    higher_is_better: bool,
    #[serde(skip)]
    flags: String,
}

impl Row {
    fn of(key: &Key, metric: Metric, a: &[&Cell], b: &[&Cell]) -> Option<Row> {
        let values = |runs: &[&Cell]| -> Vec<f64> {
            runs.iter()
                .filter_map(|cell| metric.value(cell))
                .filter(|value| value.is_finite())
                .collect()
        };
        let (values_a, values_b) = (values(a), values(b));
        let test = stats::mann_whitney(&values_a, &values_b)?;
        let (a_median, b_median) = (stats::median(&values_a), stats::median(&values_b));
        let (n_a, n_b) = (values_a.len(), values_b.len());
        let smallest_p = stats::smallest_p(n_a, n_b);
        Some(Row {
            label: key.0.clone(),
            scenario: key.1.clone(),
            metric: metric.name(),
            a_median,
            b_median,
            ratio: (a_median != 0.0).then(|| b_median / a_median),
            ratio_ci: stats::ratio_ci(&values_a, &values_b).map(|ci| [ci.low, ci.high]),
            p_value: test.p_value,
            p_adjusted: None,
            smallest_p,
            n_a,
            n_b,
            verdict: if smallest_p > ALPHA {
                Verdict::TooFewRepeats
            } else {
                Verdict::Same
            },
            higher_is_better: metric.higher_is_better(),
            flags: flags_text(a, b),
        })
    }

    /// The verdict once `p_adjusted` is known.
    fn judge(&mut self, p_adjusted: f64, threshold: f64) {
        self.p_adjusted = Some(p_adjusted);
        let within =
            |[low, high]: [f64; 2]| low >= 1.0 - threshold / 100.0 && high <= 1.0 + threshold / 100.0;
        self.verdict = if p_adjusted > ALPHA || self.ratio_ci.is_some_and(within) {
            Verdict::Same
        } else if (self.b_median > self.a_median) == self.higher_is_better {
            Verdict::Better
        } else {
            Verdict::Worse
        };
    }

    /// A `worse` row whose whole CI lies more than `limit` percent beyond 1.
    fn regressed_beyond(&self, limit: f64) -> bool {
        self.verdict == Verdict::Worse
            && self.ratio_ci.is_some_and(|[low, high]| {
                if self.higher_is_better {
                    high < 1.0 - limit / 100.0
                } else {
                    low > 1.0 + limit / 100.0
                }
            })
    }

    fn ratio_text(&self) -> String {
        let ratio = self
            .ratio
            .map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.3}"));
        match self.ratio_ci {
            Some([low, high]) => format!("{ratio} [{low:.3}, {high:.3}]"),
            None => ratio,
        }
    }

    fn name(&self) -> String {
        format!("{} / {} {}", self.label, self.scenario, self.metric)
    }
}

/// One way the two manifests differ.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub field: &'static str,
    pub a: String,
    pub b: String,
    /// `what` was measured (refused without --force), `where` (a warning),
    /// or `how` (said).
    pub kind: &'static str,
}

impl Difference {
    /// What the difference means, beside it.
    fn note(&self) -> &'static str {
        match self.kind {
            "what" => "measured something else",
            "where" => "warning: another machine or kernel",
            _ => "",
        }
    }
}

type Key = (String, String);

/// What a cell says of itself, as text.
type CellField = fn(&Cell) -> String;

pub fn main(args: CompareArgs) -> anyhow::Result<()> {
    let set_a = load::result_set(&args.a, Histograms::Skip)?;
    let set_b = load::result_set(&args.b, Histograms::Skip)?;
    // A set with no cells and nothing else was refused on reading; one
    // holding only a robustness matrix (or a tour) compares those.
    let differences = manifest_differences(&set_a, &set_b);
    let measured_differently: Vec<String> = differences
        .iter()
        .filter(|difference| difference.kind == "what")
        .map(|difference| format!("{} ({} vs {})", difference.field, difference.a, difference.b))
        .collect();
    if !measured_differently.is_empty() && !args.force {
        anyhow::bail!(
            "{} and {} measured different things: {}; compare them anyway with --force",
            set_a.dir.display(),
            set_b.dir.display(),
            measured_differently.join(", ")
        );
    }

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
    let metrics: Vec<Metric> = match args.metric {
        Some(metric) => vec![metric],
        None => Metric::ALL.to_vec(),
    };
    let mut rows: Vec<Row> = matched
        .iter()
        .flat_map(|key| {
            let (a, b) = (&runs_a[*key], &runs_b[*key]);
            metrics
                .iter()
                .filter_map(move |&metric| Row::of(key, metric, a, b))
        })
        .collect();
    // The correction over the family of rows that could be significant at all.
    let family: Vec<usize> = (0..rows.len())
        .filter(|&index| rows[index].verdict != Verdict::TooFewRepeats)
        .collect();
    let adjusted = args.correction.adjust(
        &family
            .iter()
            .map(|&index| rows[index].p_value)
            .collect::<Vec<_>>(),
    );
    for (&index, p_adjusted) in family.iter().zip(adjusted) {
        rows[index].judge(p_adjusted, args.threshold);
    }
    let verdicts = verdicts(&rows, family.len(), &args);
    let regressions: Vec<&Row> = args
        .fail_on_regression
        .map(|limit| rows.iter().filter(|row| row.regressed_beyond(limit)).collect())
        .unwrap_or_default();

    if args.json {
        let document = json!({
            "a": describe_json(&set_a),
            "b": describe_json(&set_b),
            "manifest_differences": differences,
            "threshold_percent": args.threshold,
            "correction": args.correction,
            "family_rows": family.len(),
            "rows": rows,
            "only_in_a": only_a.iter().map(|(label, scenario)| json!({ "label": label, "scenario": scenario })).collect::<Vec<_>>(),
            "only_in_b": only_b.iter().map(|(label, scenario)| json!({ "label": label, "scenario": scenario })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        let mut out = String::new();
        let _ = writeln!(out, "A: {}\nB: {}", describe(&set_a), describe(&set_b));
        out.push_str(&differences_text(&differences));
        out.push_str(&rows_text(&verdicts));
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
    }
    if let Some(dir) = &args.out {
        let comparison = comparison(
            &set_a,
            &set_b,
            &differences,
            verdicts,
            [&only_a, &only_b],
            &metrics,
        );
        let [markdown, html] = crate::report::comparison::write(dir, &comparison)?;
        if !args.json {
            println!("\nreport: {} and {}", markdown.display(), html.display());
        }
    }
    for difference in differences.iter().filter(|difference| difference.kind == "where") {
        eprintln!(
            "harness: warning: measured on different machines: {} {} vs {}",
            difference.field, difference.a, difference.b
        );
    }

    if let Some(limit) = args.fail_on_regression
        && !regressions.is_empty()
    {
        anyhow::bail!(
            "{} row(s) worse by more than {limit}% over their whole 95% CI: {}",
            regressions.len(),
            regressions
                .iter()
                .map(|row| format!("{} {}", row.name(), row.ratio_text()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// The verdicts as the terminal prints them (and `--out` writes them).
struct Verdicts {
    /// How the rows were judged, in a sentence.
    method: String,
    headers: Vec<String>,
    /// The rows shown: significant ones, or every one with `--all`.
    rows: Vec<Vec<String>>,
    /// The rows not shown, counted in a line each, and why nothing could be
    /// significant when the repeats were too few for the family's size.
    notes: Vec<String>,
}

fn rows_text(verdicts: &Verdicts) -> String {
    let mut out = format!("\n{}\n\n", verdicts.method);
    if !verdicts.rows.is_empty() {
        out.push_str(&table(&verdicts.headers, &verdicts.rows));
    }
    for note in &verdicts.notes {
        out.push_str(note);
        out.push('\n');
    }
    out
}

/// The table: significant rows (every row with `--all`), the others
/// counted in a line each, and why nothing could be significant when the
/// repeats were too few for the family's size.
fn verdicts(rows: &[Row], family: usize, args: &CompareArgs) -> Verdicts {
    let method = format!(
        "B/A: ratio of medians with its 95% CI (Hodges-Lehmann); p: Mann-Whitney U, two-sided, then \
         {} over {family} rows (p adj.); same: p adj. > {ALPHA} or the CI within ±{}%.",
        args.correction.name(),
        args.threshold
    );
    let mut notes = Vec::new();
    let shown: Vec<&Row> = rows
        .iter()
        .filter(|row| args.all || matches!(row.verdict, Verdict::Better | Verdict::Worse))
        .collect();
    let headers = [
        "label",
        "scenario",
        "metric",
        "A",
        "B",
        "B/A [95% CI]",
        "p",
        "p adj.",
        "n",
        "verdict",
        "flags",
    ]
    .map(String::from)
    .to_vec();
    let metric_of = |row: &Row| {
        Metric::ALL
            .into_iter()
            .find(|metric| metric.name() == row.metric)
            .expect("a row's metric is one of ALL")
    };
    let cells: Vec<Vec<String>> = shown
        .iter()
        .map(|row| {
            vec![
                row.label.clone(),
                row.scenario.clone(),
                row.metric.to_owned(),
                metric_of(row).format(row.a_median),
                metric_of(row).format(row.b_median),
                row.ratio_text(),
                p_text(row.p_value),
                row.p_adjusted.map_or_else(|| "-".to_owned(), p_text),
                format!("{}/{}", row.n_a, row.n_b),
                row.verdict.as_str().to_owned(),
                row.flags.clone(),
            ]
        })
        .collect();
    if !args.all {
        let cells_of = |verdict: Verdict| {
            let selected: Vec<&Row> = rows.iter().filter(|row| row.verdict == verdict).collect();
            let cells: BTreeSet<(&str, &str)> = selected
                .iter()
                .map(|row| (row.label.as_str(), row.scenario.as_str()))
                .collect();
            (selected, cells.len())
        };
        let (same, same_cells) = cells_of(Verdict::Same);
        if !same.is_empty() {
            notes.push(format!(
                "{same_cells} cells: no significant change ({} rows; --all lists them)",
                same.len()
            ));
        }
        let (few, few_cells) = cells_of(Verdict::TooFewRepeats);
        if let Some(smallest) = few.iter().map(|row| row.smallest_p).reduce(f64::min) {
            notes.push(format!(
                "{few_cells} cells: too few repeats to tell ({} rows; the smallest p their sizes allow is {}; \
                 4 repeats a side can reach p < 0.05, 6 give a CI)",
                few.len(),
                p_text(smallest)
            ));
        }
    }
    // A correction over many rows asks more of each p than few repeats can
    // give: Holm asks α/m of the first row, and so does Benjamini–Hochberg
    // of a change found alone (k changes found together need α·k/m each).
    let reachable = rows
        .iter()
        .filter(|row| row.verdict != Verdict::TooFewRepeats)
        .map(|row| row.smallest_p)
        .reduce(f64::min);
    if let Some(smallest) = reachable
        && smallest * family as f64 > ALPHA
    {
        let needed = (2..=100)
            .find(|&n| stats::smallest_p(n, n) * family as f64 <= ALPHA)
            .unwrap_or(100);
        notes.push(match args.correction {
            Correction::Holm => format!(
                "No row can be significant: Holm over {family} rows needs p ≤ {} for the first, and these \
                 repeats give p ≥ {}. Ask fewer questions (--metric), repeat more (n = {needed} a side), or \
                 use --correction bh.",
                p_text(ALPHA / family as f64),
                p_text(smallest)
            ),
            Correction::Bh => format!(
                "A change in one row alone cannot be significant: over {family} rows it needs p ≤ {}, and \
                 these repeats give p ≥ {}; changes in several rows together can (k of them need p ≤ \
                 {ALPHA}·k/{family} each). Ask fewer questions (--metric) or repeat more (n = {needed} a side).",
                p_text(ALPHA / family as f64),
                p_text(smallest)
            ),
        });
    }
    Verdicts {
        method,
        headers,
        rows: cells,
        notes,
    }
}

fn p_text(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.2e}")
    } else {
        format!("{p:.4}")
    }
}

/// What differs between the two manifests, and between what their cells
/// say of themselves (sizes, duration, how system calls were counted).
fn manifest_differences(a: &ResultSet, b: &ResultSet) -> Vec<Difference> {
    let fields: [(&'static str, &'static str, &[&str]); 9] = [
        ("suite", "what", &["/suite/name", "/suite"]),
        ("cpu_model", "where", &["/machine/cpu_model"]),
        ("cores", "where", &["/machine/cores"]),
        ("kernel", "where", &["/machine/kernel"]),
        ("harness_version", "how", &["/harness_version"]),
        ("git_commit", "how", &["/git_commit"]),
        ("server_cpus", "how", &["/parameters/server_cpus"]),
        ("client_cpus", "how", &["/parameters/client_cpus"]),
        ("repeats", "how", &["/parameters/repeat"]),
    ];
    let manifest_field = |set: &ResultSet, pointers: &[&str]| {
        pointers
            .iter()
            .find_map(|pointer| set.manifest.pointer(pointer))
            .map_or_else(|| "-".to_owned(), value_text)
    };
    let mut differences: Vec<Difference> = fields
        .iter()
        .map(|&(field, kind, pointers)| Difference {
            field,
            a: manifest_field(a, pointers),
            b: manifest_field(b, pointers),
            kind,
        })
        .collect();
    let from_cells: [(&'static str, &'static str, CellField); 4] = [
        ("scenarios", "what", |cell| cell.scenario.clone()),
        ("sizes", "what", |cell| cell.size.to_string()),
        ("duration_s", "how", |cell| cell.duration_s.to_string()),
        ("syscalls_method", "how", syscalls_method),
    ];
    for (field, kind, of) in from_cells {
        let values = |set: &ResultSet| {
            let values: BTreeSet<String> = set.cells.iter().map(|data| of(&data.cell)).collect();
            values.into_iter().collect::<Vec<_>>().join(", ")
        };
        differences.push(Difference {
            field,
            a: values(a),
            b: values(b),
            kind,
        });
    }
    differences.retain(|difference| difference.a != difference.b);
    differences
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// How a cell's system calls were counted, its numbers (phase length,
/// messages) left out so that cells counted alike read alike.
fn syscalls_method(cell: &Cell) -> String {
    let Some(server) = &cell.server else {
        return "not measured (target)".to_owned();
    };
    let syscalls = &server.syscalls;
    if let Some(method) = &syscalls.method {
        let mut text = String::new();
        let mut in_number = false;
        for character in method.chars() {
            let digit = character.is_ascii_digit() || (in_number && character == '.');
            if digit && !in_number {
                text.push('N');
            } else if !digit {
                text.push(character);
            }
            in_number = digit;
        }
        text
    } else if syscalls.unavailable.is_some() {
        "not counted".to_owned()
    } else if syscalls.per_msg_total.is_some() {
        "counted during the window (method not recorded)".to_owned()
    } else {
        "not recorded".to_owned()
    }
}

fn differences_text(differences: &[Difference]) -> String {
    if differences.is_empty() {
        return format!("Manifests: {MEASURED_ALIKE}.\n");
    }
    let mut out = String::from("Manifests differ:\n");
    for difference in differences {
        let note = match difference.note() {
            "" => String::new(),
            note => format!("  ({note})"),
        };
        let _ = writeln!(
            out,
            "  {}: A {}, B {}{note}",
            difference.field, difference.a, difference.b
        );
    }
    out
}

const MEASURED_ALIKE: &str = "measured alike (suite, machine, kernel, harness, CPU layout, repeats, duration, \
                              system-call counting)";

/// What `--out` writes: the terminal's words, and what its charts draw.
fn comparison<'a>(
    set_a: &'a ResultSet,
    set_b: &'a ResultSet,
    differences: &[Difference],
    verdicts: Verdicts,
    [only_a, only_b]: [&[&Key]; 2],
    metrics: &[Metric],
) -> Comparison<'a> {
    let manifests = Part {
        title: "Manifests".to_owned(),
        paragraphs: vec![if differences.is_empty() {
            format!("The two sets were {MEASURED_ALIKE}.")
        } else {
            "The manifests differ:".to_owned()
        }],
        table: (!differences.is_empty()).then(|| {
            let headers = ["field", "A", "B", "note"].map(String::from).to_vec();
            let rows = differences
                .iter()
                .map(|difference| {
                    vec![
                        difference.field.to_owned(),
                        difference.a.clone(),
                        difference.b.clone(),
                        difference.note().to_owned(),
                    ]
                })
                .collect();
            (headers, rows)
        }),
        notes: Vec::new(),
    };
    let shown = !verdicts.rows.is_empty();
    let mut parts = vec![
        manifests,
        Part {
            title: "Verdicts".to_owned(),
            paragraphs: vec![verdicts.method],
            table: shown.then_some((verdicts.headers, verdicts.rows)),
            notes: verdicts.notes,
        },
    ];
    for (letter, keys) in [("A", only_a), ("B", only_b)] {
        if !keys.is_empty() {
            parts.push(Part {
                title: format!("Only in {letter} ({})", keys.len()),
                paragraphs: Vec::new(),
                table: Some((
                    ["label", "scenario"].map(String::from).to_vec(),
                    keys.iter()
                        .map(|(label, scenario)| vec![label.clone(), scenario.clone()])
                        .collect(),
                )),
                notes: Vec::new(),
            });
        }
    }
    if let (Some(faults_a), Some(faults_b)) = (&set_a.faults, &set_b.faults) {
        let labels = Labels::new(faults_a.iter().chain(faults_b).map(|row| row.label.as_str()));
        parts.push(Part {
            title: "Robustness matrix".to_owned(),
            paragraphs: fault_changes(faults_a, faults_b, &labels)
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect(),
            table: None,
            notes: Vec::new(),
        });
    }
    let measures = metrics
        .iter()
        .map(|&metric| {
            let (title, axis_label, log) = metric.chart_words();
            Measure {
                name: metric.name(),
                title,
                axis_label,
                log,
                value: Box::new(move |cell: &Cell| metric.value(cell)),
            }
        })
        .collect();
    Comparison {
        a: set_a,
        b: set_b,
        described: [describe(set_a), describe(set_b)],
        parts,
        measures,
    }
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

fn manifest_str(set: &ResultSet, pointers: &[&str]) -> Option<String> {
    pointers.iter().find_map(|pointer| {
        set.manifest
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

/// The directory, with the manifest's suite and commit when present.
fn describe(set: &ResultSet) -> String {
    let mut text = set.dir.display().to_string();
    if let Some(suite) = manifest_str(set, &["/suite", "/suite/name"]) {
        text.push_str(&format!(", suite {suite}"));
    }
    if let Some(commit) = manifest_str(set, &["/git_commit", "/commit", "/git/commit"]) {
        text.push_str(&format!(", commit {commit}"));
    }
    text.push_str(&format!(", {} cells", set.cells.len()));
    text
}

fn describe_json(set: &ResultSet) -> Value {
    json!({
        "dir": set.dir.display().to_string(),
        "suite": manifest_str(set, &["/suite", "/suite/name"]),
        "git_commit": manifest_str(set, &["/git_commit", "/commit", "/git/commit"]),
        "harness_version": manifest_str(set, &["/harness_version"]),
        "cells": set.cells.len(),
    })
}

/// Left-aligned text columns (the first three and the last two),
/// right-aligned numbers, two spaces apart.
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
                if column < 3 || column + 2 >= cells.len() {
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

    fn row(metric: Metric, a: &[f64], b: &[f64]) -> Row {
        let cell = |value: f64| {
            let mut cell: Cell = serde_json::from_value(json!({
                "label": "epoll", "target": "t", "scenario": "s", "repeat": 1, "shape": "closed", "connections": 1,
                "size": 64, "idle": 0, "warmup_s": 0.0, "duration_s": 1.0, "messages": 1,
                "msgs_per_sec": value, "bytes_per_sec": 0.0,
                "latency_us": { "min": 0.0, "mean": 0.0, "p50": value, "p90": 0.0, "p99": value, "p999": 0.0,
                                "p9999": 0.0, "max": 0.0 },
                "errors": { "mismatch": 0, "reset": 0, "timeout": 0, "connect": 0, "closed": 0, "addr_unavailable": 0 },
                "starved_connections": 0, "fairness": { "jain": 1.0, "min": 1, "median": 1, "max": 1 },
                "server": null,
                "client": { "cpu_percent": 0.0, "busiest_thread_percent": 0.0, "threads": 1, "cpus": [] },
                "behind_schedule_fraction": 0.0, "flags": []
            }))
            .expect("a minimal cell document");
            cell.msgs_per_sec = value;
            cell
        };
        let (a, b): (Vec<Cell>, Vec<Cell>) = (
            a.iter().map(|&v| cell(v)).collect(),
            b.iter().map(|&v| cell(v)).collect(),
        );
        let key = ("epoll".to_owned(), "s".to_owned());
        Row::of(
            &key,
            metric,
            &a.iter().collect::<Vec<_>>(),
            &b.iter().collect::<Vec<_>>(),
        )
        .unwrap()
    }

    const A: [f64; 6] = [100.0, 101.0, 102.0, 103.0, 104.0, 105.0];

    #[test]
    fn a_separated_drop_is_worse_and_gates_only_beyond_its_ci() {
        let b: Vec<f64> = A.iter().map(|value| value * 0.7).collect();
        let mut drop = row(Metric::MsgsPerSec, &A, &b);
        drop.judge(drop.p_value, 2.0);
        assert_eq!(drop.verdict, Verdict::Worse);
        assert!(drop.regressed_beyond(10.0), "{drop:?}");
        assert!(
            !drop.regressed_beyond(30.0),
            "the CI reaches above 0.70: {drop:?}"
        );
        // The same separation in latency is better when lower.
        let mut faster = row(Metric::P99, &A, &b);
        faster.judge(faster.p_value, 2.0);
        assert_eq!(faster.verdict, Verdict::Better);
    }

    #[test]
    fn small_or_insignificant_changes_are_the_same_and_three_repeats_too_few() {
        let b: Vec<f64> = A.iter().map(|value| value * 0.995).collect();
        let mut tiny = row(Metric::MsgsPerSec, &A, &b);
        tiny.judge(tiny.p_value, 2.0);
        assert_eq!(tiny.verdict, Verdict::Same, "{tiny:?}");
        let mut unadjusted = row(Metric::MsgsPerSec, &A, &A.map(|value| value * 0.7));
        unadjusted.judge(0.2, 2.0);
        assert_eq!(unadjusted.verdict, Verdict::Same, "not significant after Holm");
        let few = row(Metric::MsgsPerSec, &A[..3], &[50.0, 51.0, 52.0]);
        assert!(few.p_adjusted.is_none());
        assert_eq!(few.verdict, Verdict::TooFewRepeats);
        assert_eq!(few.smallest_p, 0.1);
        assert!(few.ratio_ci.is_none());
    }

    /// 36 rows, 8 of them a clean separation at 6 repeats a side (the
    /// smallest p those sizes allow, 2/924): Holm finds none, since its
    /// first row needs 0.05/36; Benjamini–Hochberg finds the 8, since the
    /// 8th needs 0.05·8/36.
    #[test]
    fn benjamini_hochberg_finds_a_change_spread_over_rows_that_holm_cannot() {
        let separated = stats::smallest_p(6, 6);
        let p: Vec<f64> = (0..36).map(|row| if row < 8 { separated } else { 0.5 }).collect();
        let bh = Correction::Bh.adjust(&p);
        let holm = Correction::Holm.adjust(&p);
        assert!(bh[..8].iter().all(|&q| q <= ALPHA), "{bh:?}");
        assert!(bh[8..].iter().all(|&q| q > ALPHA), "{bh:?}");
        assert!(holm.iter().all(|&q| q > ALPHA), "{holm:?}");
    }
}
