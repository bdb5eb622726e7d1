//! The report as data: the manifest, then sections with charts and tables.
//! [`super::markdown`] and [`super::html`] only lay it out.

use super::charts::{
    Bar, BarChart, Chart, ChartBody, SpectrumLine, StackedBar, StackedBarChart, SweepChart, SweepPoint,
    SweepSeries, TimelinePanel, XScale,
};
use super::findings::{ChartIndex, Finding};
use super::groups::{self, Entry, Labels, Scenario, Spread, Sweep, SweepAxis, count, kib, number};
use super::load::ResultSet;
use crate::results::cell::{Cell, Flag, Shape, Syscalls};
use std::collections::{BTreeMap, BTreeSet};

/// A label's system calls in a scenario: medians per call, and per call
/// failing with EAGAIN.
type Measured<'s, 'a> = (
    &'s Scenario<'a>,
    &'s Entry<'a>,
    BTreeMap<String, f64>,
    BTreeMap<String, f64>,
);

/// System calls drawn as parts of their own in the system-call charts; the
/// rest are summed as `other`.
const SYSCALL_PARTS: usize = 8;

/// Everything the report shows, in order.
#[derive(Debug, Clone)]
pub struct Document {
    pub title: String,
    /// One sentence: suite, commit, machine.
    pub headline: String,
    /// Sentences written from the data, each linking its figure: the
    /// report's first part ([`super::findings`]).
    pub findings: Vec<Finding>,
    pub sections: Vec<Section>,
    /// After the sections: the flagged runs one by one, and the manifest.
    pub appendix: Vec<Section>,
    /// Every chart the sections refer to.
    pub charts: Vec<Chart>,
}

#[derive(Debug, Clone)]
pub struct Section {
    /// An anchor: letters, digits, `-`.
    pub id: String,
    pub title: String,
    pub paragraphs: Vec<String>,
    /// Indexes into [`Document::charts`].
    pub charts: Vec<usize>,
    pub table: Option<Table>,
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Builds the report of `set`.
pub fn build(set: &ResultSet) -> Document {
    let fault_labels = set.faults.iter().flatten().map(|row| row.label.as_str());
    let labels = Labels::new(
        set.cells
            .iter()
            .map(|data| data.cell.label.as_str())
            .chain(fault_labels),
    );
    let scenarios = groups::scenarios(&set.cells, &labels);
    let sweeps = groups::sweeps(&scenarios);
    let manifest = flatten_manifest(&set.manifest);
    let suite = lookup(&manifest, &["suite", "suite.name", "suite_name"]);
    let title = match &suite {
        Some(suite) => format!("echolab report: suite {suite}"),
        None => "echolab report".to_owned(),
    };
    let mut builder = Builder {
        labels,
        charts: Vec::new(),
        files: BTreeSet::new(),
        index: ChartIndex::new(),
    };
    // The tour, when the result set is one, is the lesson: it comes first;
    // then the robustness matrix, when `harness faults` wrote the set.
    let mut sections = set
        .tour
        .as_deref()
        .map(|entries| super::tour::sections(entries, &mut builder))
        .unwrap_or_default();
    if let Some(rows) = &set.faults {
        let matrix = super::faults::matrix(rows, &builder.labels);
        let chart = builder.add_chart(
            "faults-matrix",
            "Robustness matrix: outcome of every fault for every server".to_owned(),
            ChartBody::Matrix(matrix),
        );
        let timelines: Vec<(String, usize)> = super::faults::timelines(rows, &builder.labels)
            .into_iter()
            .map(|(fault, timeline)| {
                let title = format!("Background throughput over time, fault {fault}");
                let index = builder.add_chart(
                    &format!("fault-timeline--{fault}"),
                    title,
                    ChartBody::FaultTimeline(timeline),
                );
                (fault, index)
            })
            .collect();
        sections.extend(super::faults::sections(
            rows,
            &builder.labels,
            &manifest,
            chart,
            &timelines,
        ));
    }
    for sweep in &sweeps {
        sections.push(builder.sweep_section(sweep));
    }
    for scenario in &scenarios {
        sections.push(builder.scenario_section(scenario));
    }
    if let Some(section) = builder.syscall_section(&scenarios) {
        sections.push(section);
    }
    if let Some(section) = builder.timeline_section(&scenarios) {
        sections.push(section);
    }
    if let Some(section) = load_hosts_section(set) {
        sections.push(section);
    }
    sections.extend(super::udp::section(set, &mut builder));
    sections.extend(super::http::sections(set, &mut builder));
    if let Some(section) = python_section(&scenarios) {
        sections.push(section);
    }
    if let Some(section) = unsupported_section(&set.manifest) {
        sections.push(section);
    }
    let (flagged_summary, flagged_table) = flagged_sections(&scenarios);
    sections.push(flagged_summary);
    let mut appendix: Vec<Section> = flagged_table.into_iter().collect();
    appendix.push(Section {
        id: "manifest".to_owned(),
        title: "Manifest".to_owned(),
        paragraphs: vec![
            "Every field of manifest.json: where, when and how the set was measured.".to_owned(),
        ],
        charts: Vec::new(),
        table: Some(Table {
            headers: vec!["field".to_owned(), "value".to_owned()],
            rows: manifest
                .iter()
                .map(|(key, value)| vec![key.clone(), value.clone()])
                .collect(),
        }),
    });
    let findings = super::findings::findings(&scenarios, &sweeps, &builder.index);
    let mut ids = BTreeSet::new();
    for section in sections.iter_mut().chain(&mut appendix) {
        section.id = unique(&slug(&section.id), &mut ids);
    }
    Document {
        title,
        headline: headline(&manifest, suite),
        findings,
        sections,
        appendix,
        charts: builder.charts,
    }
}

pub(super) struct Builder {
    pub(super) labels: Labels,
    charts: Vec<Chart>,
    files: BTreeSet<String>,
    /// The charts findings link to, by sweep or scenario and metric.
    index: ChartIndex,
}

/// A measure plotted or tabulated per cell.
pub(super) struct Metric {
    name: &'static str,
    title: &'static str,
    axis_label: &'static str,
    log: bool,
    pub(super) value: fn(&Cell) -> Option<f64>,
}

pub(super) const THROUGHPUT: Metric = Metric {
    name: "throughput",
    title: "Throughput",
    axis_label: "throughput (msgs/s)",
    log: false,
    value: |cell| Some(cell.msgs_per_sec),
};
pub(super) const P99: Metric = Metric {
    name: "p99",
    title: "p99 latency",
    axis_label: "p99 latency (µs, log scale)",
    log: true,
    value: |cell| Some(cell.latency_us.p99),
};
pub(super) const CPU_PER_MESSAGE: Metric = Metric {
    name: "cpu",
    title: "Server CPU per message",
    axis_label: "server CPU per message (µs)",
    log: false,
    value: |cell| cell.server.as_ref().map(|server| server.cpu_us_per_msg),
};
/// The server's memory, each page once (its memory cgroup's peak, else the
/// PSS sum: [`crate::results::cell::ServerStats::memory_kib`]), per open
/// connection. Summed resident sets are not drawn: they count a forking
/// server's shared pages once per process.
pub(super) const MEMORY_PER_CONNECTION: Metric = Metric {
    name: "memory",
    title: "Server memory per open connection",
    axis_label: "server peak memory per open connection (KiB, each page once, log scale)",
    log: true,
    value: |cell| {
        let open = f64::from(cell.connections) + f64::from(cell.idle);
        memory(cell).map(|kib| kib / open.max(1.0))
    },
};
const FAIRNESS: Metric = Metric {
    name: "fairness",
    title: "Fairness",
    axis_label: "fairness (Jain's index, 1 = even)",
    log: false,
    value: |cell| Some(cell.fairness.jain),
};

fn churn_rate(cell: &Cell) -> Option<f64> {
    Some(cell.connections_per_sec.unwrap_or(cell.msgs_per_sec))
}

impl Builder {
    /// Registers a chart under a unique file name and returns its index.
    pub(super) fn add_chart(&mut self, stem: &str, title: String, body: ChartBody) -> usize {
        let file = format!("{}.svg", unique(&slug(stem), &mut self.files));
        self.charts.push(Chart { file, title, body });
        self.charts.len() - 1
    }

    fn sweep_section(&mut self, sweep: &Sweep) -> Section {
        let (metrics, x_scale, heading): (&[&Metric], XScale, &str) = match sweep.axis {
            SweepAxis::Connections => (
                &[
                    &THROUGHPUT,
                    &P99,
                    &CPU_PER_MESSAGE,
                    &MEMORY_PER_CONNECTION,
                    &FAIRNESS,
                ],
                XScale::Log,
                "Connections",
            ),
            SweepAxis::Idle => (
                &[&P99, &CPU_PER_MESSAGE, &THROUGHPUT],
                XScale::Ordinal,
                "Idle connections",
            ),
            SweepAxis::Rate => (&[&P99, &THROUGHPUT], XScale::Log, "Offered rate"),
        };
        let description = sweep.describe();
        let axis_key = match sweep.axis {
            SweepAxis::Connections => "connections",
            SweepAxis::Idle => "idle",
            SweepAxis::Rate => "rate",
        };
        let mut charts = Vec::new();
        for metric in metrics {
            let title = format!("{} vs {}: {}", metric.title, sweep.axis.name(), description);
            let body = ChartBody::Sweep(SweepChart {
                x_label: sweep.axis.name().to_owned(),
                x_scale,
                y_label: metric.axis_label.to_owned(),
                y_log: metric.log,
                series: sweep_series(&self.labels, sweep, metric.value),
                second: None,
                references: Vec::new(),
            });
            let index = self.add_chart(
                &format!("{axis_key}-{}--{}", sweep.slug(), metric.name),
                title,
                body,
            );
            self.index
                .insert((super::findings::sweep_key(sweep), metric.name), index);
            charts.push(index);
        }
        let scenario_names: Vec<&str> = sweep.scenarios.iter().map(|scenario| scenario.name).collect();
        Section {
            id: format!("sweep-{axis_key}-{}", sweep.slug()),
            title: format!("{heading} sweep: {description}"),
            paragraphs: vec![format!(
                "Scenarios {}. Points are medians of the repeats; bars span their minimum and maximum.",
                scenario_names.join(", ")
            )],
            charts,
            table: Some(self.sweep_table(sweep)),
        }
    }

    fn sweep_table(&self, sweep: &Sweep) -> Table {
        let headers = [
            "model",
            sweep.axis.name(),
            "msgs/s",
            "p50 µs",
            "p99 µs",
            "CPU µs/msg",
            "memory",
            "memory/conn",
            "fairness",
            "flags",
        ];
        let mut rows: Vec<(usize, &str, f64, Vec<String>)> = Vec::new();
        for scenario in &sweep.scenarios {
            for entry in &scenario.entries {
                let x = sweep.axis.value(scenario);
                let row = vec![
                    entry.label.to_owned(),
                    count(x),
                    with_range(entry.spread(|cell| Some(cell.msgs_per_sec)), count),
                    median(entry.spread(|cell| Some(cell.latency_us.p50)), number),
                    with_range(entry.spread(|cell| Some(cell.latency_us.p99)), number),
                    median(entry.spread(CPU_PER_MESSAGE.value), number),
                    median(entry.spread(memory), kib),
                    median(entry.spread(MEMORY_PER_CONNECTION.value), kib),
                    median(entry.spread(FAIRNESS.value), |value| format!("{value:.3}")),
                    entry.flags_text(),
                ];
                rows.push((self.labels.rank(entry.label), entry.label, x, row));
            }
        }
        rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
        Table {
            headers: headers.iter().map(|header| header.to_string()).collect(),
            rows: rows.into_iter().map(|(_, _, _, row)| row).collect(),
        }
    }

    fn scenario_section(&mut self, scenario: &Scenario) -> Section {
        let mut charts = Vec::new();
        let lines = scenario
            .entries
            .iter()
            .map(|entry| SpectrumLine {
                label: entry.label.to_owned(),
                style: self.labels.style(entry.label),
                flags: entry
                    .representative()
                    .cell
                    .flags
                    .iter()
                    .map(|flag| flag.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                rows: entry.representative().spectrum.clone(),
            })
            .collect();
        let title = format!("Latency by percentile: {}", scenario.name);
        charts.push(self.add_chart(
            &format!("spectrum--{}", scenario.name),
            title,
            ChartBody::Spectrum(lines),
        ));
        if scenario.shape == Shape::Churn {
            let bars = scenario
                .entries
                .iter()
                .filter_map(|entry| {
                    Some(Bar {
                        label: entry.label.to_owned(),
                        colour: self.labels.colour(entry.label),
                        value: entry.spread(churn_rate)?,
                        flagged: entry.flagged(),
                    })
                })
                .collect();
            let body = ChartBody::Bars(BarChart {
                value_label: "connections per second (connect, echo, close)".into(),
                bars,
                cut_outliers: false,
            });
            let title = format!("Churn: connections per second, {}", scenario.name);
            charts.push(self.add_chart(&format!("churn--{}", scenario.name), title, body));
        }
        let repeats = scenario.entries.iter().any(|entry| entry.runs.len() > 1);
        let mut paragraphs = vec![format!("{}.", capitalise(&scenario.describe()))];
        if repeats {
            paragraphs.push(
                "Values are medians of the repeats (msgs/s and p99 with their min-max); the percentile chart \
                 draws each model's repeat with the median p99."
                    .to_owned(),
            );
        }
        Section {
            id: format!("scenario-{}", scenario.name),
            title: format!("Scenario {}", scenario.name),
            paragraphs,
            charts,
            table: Some(scenario_table(scenario, repeats)),
        }
    }

    /// System calls per message of every label in every scenario where they
    /// were counted: one stacked chart per scenario, one table.
    fn syscall_section(&mut self, scenarios: &[Scenario]) -> Option<Section> {
        // Each label's medians per syscall name, per scenario.
        let mut measured: Vec<Measured> = Vec::new();
        for scenario in scenarios {
            for entry in &scenario.entries {
                let by_name = |eagain: bool| -> BTreeMap<String, f64> {
                    let names: BTreeSet<&String> = entry
                        .runs
                        .iter()
                        .filter_map(|run| run.cell.server.as_ref())
                        .flat_map(|server| {
                            if eagain {
                                server.syscalls.eagain_per_msg.keys()
                            } else {
                                server.syscalls.per_msg.keys()
                            }
                        })
                        .collect();
                    names
                        .into_iter()
                        .filter_map(|name| {
                            let spread = entry.spread(|cell| {
                                let syscalls = &cell.server.as_ref()?.syscalls;
                                syscalls.per_msg_total?;
                                let map = if eagain {
                                    &syscalls.eagain_per_msg
                                } else {
                                    &syscalls.per_msg
                                };
                                Some(map.get(name).copied().unwrap_or(0.0))
                            })?;
                            Some((name.clone(), spread.median))
                        })
                        .collect()
                };
                let calls = by_name(false);
                if !calls.is_empty() {
                    measured.push((scenario, entry, calls, by_name(true)));
                }
            }
        }
        if measured.is_empty() {
            return None;
        }
        // The same parts, in the same colours, in every chart.
        let mut weight: BTreeMap<&str, f64> = BTreeMap::new();
        for (_, _, calls, _) in &measured {
            for (name, value) in calls {
                *weight.entry(name.as_str()).or_default() += value;
            }
        }
        let mut names: Vec<(&str, f64)> = weight.into_iter().filter(|(name, _)| *name != "other").collect();
        names.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        let mut parts: Vec<String> = names
            .iter()
            .take(SYSCALL_PARTS)
            .map(|(name, _)| (*name).to_owned())
            .collect();
        let lumped: BTreeSet<String> = names
            .iter()
            .skip(SYSCALL_PARTS)
            .map(|(name, _)| (*name).to_owned())
            .collect();
        parts.push("other".to_owned());
        let coloured: Vec<(String, super::charts::Rgb)> = parts
            .iter()
            .enumerate()
            .map(|(index, name)| (name.clone(), groups::part_colour(index)))
            .collect();
        let mut charts = Vec::new();
        let mut rows = Vec::new();
        for scenario in scenarios {
            let here: Vec<_> = measured
                .iter()
                .filter(|(of, ..)| of.name == scenario.name)
                .collect();
            if here.is_empty() {
                continue;
            }
            let bars = here
                .iter()
                .map(|(_, entry, calls, _)| {
                    let values = parts
                        .iter()
                        .map(|part| {
                            if part == "other" {
                                calls
                                    .iter()
                                    .filter(|(name, _)| *name == "other" || lumped.contains(*name))
                                    .map(|(_, value)| value)
                                    .sum()
                            } else {
                                calls.get(part).copied().unwrap_or(0.0)
                            }
                        })
                        .collect();
                    StackedBar {
                        label: entry.label.to_owned(),
                        values,
                        flagged: entry.flagged(),
                    }
                })
                .collect();
            let body = ChartBody::StackedBars(StackedBarChart {
                value_label: "system calls per message (churn: per connection)".into(),
                parts: coloured.clone(),
                bars,
            });
            let title = format!("System calls per message: {}", scenario.name);
            let index = self.add_chart(&format!("syscalls--{}", scenario.name), title, body);
            self.index.insert((scenario.name.to_owned(), "syscalls"), index);
            charts.push(index);
            for (_, entry, calls, eagain) in &here {
                let listed = |map: &BTreeMap<String, f64>| -> String {
                    let text: Vec<String> = Syscalls::most_first(map)
                        .iter()
                        .map(|(name, value)| format!("{name} {value:.2}"))
                        .collect();
                    if text.is_empty() {
                        "-".to_owned()
                    } else {
                        text.join(", ")
                    }
                };
                let total = entry
                    .spread(|cell| cell.server.as_ref()?.syscalls.per_msg_total)
                    .map_or_else(|| "-".to_owned(), |spread| format!("{:.2}", spread.median));
                rows.push(vec![
                    scenario.name.to_owned(),
                    entry.label.to_owned(),
                    total,
                    listed(calls),
                    listed(eagain),
                ]);
            }
        }
        Some(Section {
            id: "system-calls".to_owned(),
            title: "System calls per message".to_owned(),
            paragraphs: vec![
                "Counted by the kernel's tracepoints (raw_syscalls and syscalls:sys_enter_*) over each cell's \
                 measurement, for the server's whole process tree, divided by the messages echoed (churn: by the \
                 connections). EAGAIN: the calls that found nothing to do. Medians of the repeats."
                    .to_owned(),
            ],
            charts,
            table: Some(Table {
                headers: ["scenario", "model", "total", "by call", "failed with EAGAIN"]
                    .iter()
                    .map(|header| header.to_string())
                    .collect(),
                rows,
            }),
        })
    }

    /// Latency per second of each label's largest closed-loop cell (most
    /// connections) and of its open-loop cell at the highest offered rate.
    fn timeline_section(&mut self, scenarios: &[Scenario]) -> Option<Section> {
        let mut charts = Vec::new();
        for (shape, describe) in [
            (
                Shape::Closed,
                "each model's closed-loop cell with the most connections",
            ),
            (
                Shape::Open,
                "each model's open-loop cell at the highest offered rate",
            ),
        ] {
            let mut chosen: Vec<(&Entry, &Scenario)> = Vec::new();
            for scenario in scenarios.iter().filter(|scenario| scenario.shape == shape) {
                for entry in &scenario.entries {
                    let rank = |scenario: &Scenario| {
                        (
                            scenario.connections,
                            scenario.rate.unwrap_or(0.0).to_bits(),
                            scenario.idle,
                            scenario.size,
                        )
                    };
                    match chosen.iter_mut().find(|(known, _)| known.label == entry.label) {
                        Some(slot) if rank(scenario) > rank(slot.1) => *slot = (entry, scenario),
                        Some(_) => {}
                        None => chosen.push((entry, scenario)),
                    }
                }
            }
            if chosen.is_empty() {
                continue;
            }
            chosen.sort_by_key(|(entry, _)| (self.labels.rank(entry.label), entry.label));
            let panels = chosen
                .iter()
                .map(|(entry, scenario)| {
                    let run = entry.representative();
                    TimelinePanel {
                        title: format!("{}, {}", entry.label, scenario.name),
                        colour: self.labels.colour(entry.label),
                        flags: run
                            .cell
                            .flags
                            .iter()
                            .map(|flag| flag.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        intervals: run.intervals.clone(),
                    }
                })
                .collect();
            let title = format!("Latency per second: {describe}");
            charts.push(self.add_chart(
                &format!("timeline-{}", shape.as_str()),
                title,
                ChartBody::Timeline(panels),
            ));
        }
        (!charts.is_empty()).then(|| Section {
            id: "latency-over-time".to_owned(),
            title: "Latency over time".to_owned(),
            paragraphs: vec![
                "p50, p99 and maximum latency of each one-second interval (drawn as steps), from the cells' interval logs."
                    .to_owned(),
            ],
            charts,
            table: None,
        })
    }
}

/// One series per label present in the sweep, in label order, each point
/// the median of its repeats' `metric` with their interval.
pub(super) fn sweep_series(
    labels: &Labels,
    sweep: &Sweep,
    metric: impl Fn(&Cell) -> Option<f64>,
) -> Vec<SweepSeries> {
    let mut present: Vec<&str> = sweep
        .scenarios
        .iter()
        .flat_map(|scenario| scenario.entries.iter().map(|entry| entry.label))
        .collect();
    present.sort_by_key(|label| (labels.rank(label), *label));
    present.dedup();
    present
        .into_iter()
        .filter_map(|label| {
            let points: Vec<SweepPoint> = sweep
                .scenarios
                .iter()
                .filter_map(|scenario| {
                    let entry = scenario.entries.iter().find(|entry| entry.label == label)?;
                    Some(SweepPoint {
                        x: sweep.axis.value(scenario),
                        y: entry.spread(&metric)?,
                        flagged: entry.flagged(),
                    })
                })
                .collect();
            (!points.is_empty()).then(|| SweepSeries {
                label: label.to_owned(),
                style: labels.style(label),
                points,
            })
        })
        .collect()
}

/// The server's memory, each page once.
fn memory(cell: &Cell) -> Option<f64> {
    cell.server.as_ref()?.memory_kib().map(|kib| kib as f64)
}

fn scenario_table(scenario: &Scenario, repeats: bool) -> Table {
    let churn = scenario.shape == Shape::Churn;
    let mut headers = vec!["model"];
    if repeats {
        headers.push("runs");
    }
    if churn {
        headers.push("conns/s");
    }
    headers.extend([
        "msgs/s",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "CPU µs/msg",
        "memory",
        "flags",
    ]);
    let rows = scenario
        .entries
        .iter()
        .map(|entry| {
            let mut row = vec![entry.label.to_owned()];
            if repeats {
                row.push(entry.runs.len().to_string());
            }
            if churn {
                row.push(with_range(entry.spread(churn_rate), count));
            }
            row.extend([
                with_range(entry.spread(|cell| Some(cell.msgs_per_sec)), count),
                median(entry.spread(|cell| Some(cell.latency_us.p50)), number),
                with_range(entry.spread(|cell| Some(cell.latency_us.p99)), number),
                median(entry.spread(|cell| Some(cell.latency_us.p999)), number),
                median(entry.spread(|cell| Some(cell.latency_us.max)), number),
                median(entry.spread(CPU_PER_MESSAGE.value), number),
                median(entry.spread(memory), kib),
                entry.flags_text(),
            ]);
            row
        })
        .collect();
    Table {
        headers: headers.into_iter().map(str::to_owned).collect(),
        rows,
    }
}

/// The flagged runs: a summary by cause for the body of the report, and
/// the table of every run for the appendix (none when nothing is flagged).
fn flagged_sections(scenarios: &[Scenario]) -> (Section, Option<Section>) {
    let mut rows = Vec::new();
    for scenario in scenarios {
        for entry in &scenario.entries {
            for run in &entry.runs {
                let cell = &run.cell;
                if cell.flags.is_empty() {
                    continue;
                }
                let mut details = Vec::new();
                if cell.errors.total() > 0 {
                    let mut errors = format!("{} errors", count(cell.errors.total() as f64));
                    if cell.errors.lost > 0 {
                        errors += &format!(
                            " ({} connections lost bytes, {} bytes missing)",
                            count(cell.errors.lost as f64),
                            count(cell.errors.lost_bytes as f64)
                        );
                    }
                    details.push(errors);
                }
                if cell.starved_connections > 0 {
                    details.push(format!("{} starved connections", cell.starved_connections));
                }
                if cell.flags.contains(&Flag::ClientBound) {
                    details.push(format!(
                        "busiest load thread {}%",
                        number(cell.client.busiest_thread_percent)
                    ));
                }
                if cell.flags.contains(&Flag::LateStart) {
                    let late = cell
                        .share
                        .iter()
                        .map(|share| share.late_start_ms)
                        .chain(cell.hosts.iter().map(|host| host.late_start_ms))
                        .fold(0.0, f64::max);
                    details.push(format!("a load host started {} ms late", number(late)));
                }
                if cell.flags.contains(&Flag::SharedCpu) {
                    let shared: Vec<usize> = cell
                        .server_cpus
                        .iter()
                        .copied()
                        .filter(|cpu| cell.client.cpus.contains(cpu))
                        .collect();
                    details.push(format!(
                        "server and load on CPU {}",
                        crate::cpus::format_cpulist(&shared)
                    ));
                }
                if cell.flags.contains(&Flag::BehindSchedule) {
                    details.push(format!(
                        "{}% sent late",
                        number(cell.behind_schedule_fraction * 100.0)
                    ));
                }
                if cell.flags.contains(&Flag::Noisy)
                    && let Some(machine) = &cell.machine
                {
                    details.push(format!(
                        "others took {}% of a CPU, steal {}%",
                        number(machine.busy_percent),
                        number(machine.steal_percent)
                    ));
                }
                rows.push(vec![
                    entry.label.to_owned(),
                    scenario.name.to_owned(),
                    cell.repeat.to_string(),
                    cell.flags
                        .iter()
                        .map(|flag| flag.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    details.join("; "),
                ]);
            }
        }
    }
    let summary = Section {
        id: "flagged-cells".to_owned(),
        title: "Flagged cells".to_owned(),
        paragraphs: flagged_summary(&rows),
        charts: Vec::new(),
        table: None,
    };
    if rows.is_empty() {
        return (summary, None);
    }
    let headers = ["model", "scenario", "repeat", "flags", "details"];
    let table = Section {
        id: "flagged-runs".to_owned(),
        title: "Flagged runs, one by one".to_owned(),
        paragraphs: vec![crate::cell::flags::meanings()],
        charts: Vec::new(),
        table: Some(Table {
            headers: headers.iter().map(|header| header.to_string()).collect(),
            rows,
        }),
    };
    (summary, Some(table))
}

/// Above this many labels, a flag's summary line counts labels per scenario.
const FLAGGED_LABELS_NAMED: usize = 4;

/// Flags that are a model's design rather than a fault of the run: the
/// label, the flag, and the sentence that says why.
const DESIGN_LIMITS: [(&str, &str, &str); 1] = [(
    "single",
    "starved",
    "single serves one client at a time by design, so every other connection waits",
)];

/// The flagged runs (rows of model, scenario, repeat, flags, details) in a
/// few lines: per flag, how many runs, which labels in which scenarios, and
/// whether it is a model's documented design limit.
fn flagged_summary(rows: &[Vec<String>]) -> Vec<String> {
    if rows.is_empty() {
        return vec!["No cell is flagged.".to_owned()];
    }
    let mut by_flag: BTreeMap<&str, (usize, BTreeMap<&str, BTreeSet<&str>>)> = BTreeMap::new();
    for row in rows {
        for flag in row[3].split(", ").filter(|flag| !flag.is_empty()) {
            let (runs, labels) = by_flag.entry(flag).or_default();
            *runs += 1;
            labels.entry(&row[0]).or_default().insert(&row[1]);
        }
    }
    let runs = |count: usize| {
        if count == 1 {
            "1 run".to_owned()
        } else {
            format!("{count} runs")
        }
    };
    let mut paragraphs = vec![format!(
        "{} flagged: their numbers say less than they seem to. By cause (the full table is in the appendix):",
        runs(rows.len())
    )];
    for (flag, (count, labels)) in by_flag {
        let limits: Vec<String> = labels
            .keys()
            .filter_map(|label| {
                DESIGN_LIMITS
                    .iter()
                    .find(|(model, limited, _)| model == label && *limited == flag)
                    .map(|(_, _, why)| format!(" A design limit: {why}."))
            })
            .collect();
        // Few labels: each with its scenarios; many: each scenario with how
        // many labels, so that the line stays a line.
        let who: Vec<String> = if labels.len() <= FLAGGED_LABELS_NAMED {
            labels
                .iter()
                .map(|(label, scenarios)| {
                    let scenarios: Vec<&str> = scenarios.iter().copied().collect();
                    format!("{label} in {}", scenarios.join(", "))
                })
                .collect()
        } else {
            let mut by_scenario: BTreeMap<&str, usize> = BTreeMap::new();
            for scenario in labels.values().flatten() {
                *by_scenario.entry(scenario).or_default() += 1;
            }
            let scenarios: Vec<String> = by_scenario
                .iter()
                .map(|(scenario, labels)| format!("{scenario} ({labels})"))
                .collect();
            vec![format!(
                "{} labels, in scenarios (labels flagged) {}",
                labels.len(),
                scenarios.join(", ")
            )]
        };
        paragraphs.push(format!(
            "{flag}: {}; {}.{}",
            runs(count),
            who.join("; "),
            limits.concat()
        ));
    }
    paragraphs
}

/// Models the machine could not run, from the manifest: each label once,
/// with its reason.
fn unsupported_section(manifest: &serde_json::Value) -> Option<Section> {
    let entries = manifest.get("unsupported")?.as_array()?;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for entry in entries {
        let label = entry.get("label").and_then(|value| value.as_str()).unwrap_or("?");
        let reason = entry.get("reason").and_then(|value| value.as_str()).unwrap_or("");
        if !rows.iter().any(|row| row[0] == label) {
            rows.push(vec![label.to_owned(), reason.to_owned()]);
        }
    }
    (!rows.is_empty()).then(|| Section {
        id: "unsupported".to_owned(),
        title: "Not run on this machine".to_owned(),
        paragraphs: vec![
            "These models said this machine cannot run them (exit status 3 before their ready line): their cells \
             were recorded as unsupported, not failed."
                .to_owned(),
        ],
        charts: Vec::new(),
        table: Some(Table {
            headers: vec!["model".to_owned(), "reason".to_owned()],
            rows,
        }),
    })
}

/// The Rust twin of a Python server's label (`py-epoll` → `epoll`,
/// `py-asyncio` → `async`), if it is one.
fn rust_twin(label: &str) -> Option<&str> {
    match label.strip_prefix("py-")? {
        "asyncio" => Some("async"),
        twin => Some(twin),
    }
}

/// "Python / Rust": each Python server (`py-MODEL`, the course suite) beside
/// its Rust twin at 100 connections in closed loop, where both ran.
fn python_section(scenarios: &[Scenario]) -> Option<Section> {
    let value =
        |entry: &Entry, figure: fn(&Cell) -> Option<f64>| entry.spread(figure).map(|spread| spread.median);
    let pair = |python: Option<f64>, rust: Option<f64>, format: fn(f64) -> String| -> [String; 3] {
        let shown = |value: Option<f64>| value.map(format).unwrap_or_else(|| "–".to_owned());
        let ratio = match (python, rust) {
            (Some(python), Some(rust)) if rust > 0.0 => format!("{}x", number(python / rust)),
            _ => "–".to_owned(),
        };
        [shown(python), shown(rust), ratio]
    };
    let mut rows = Vec::new();
    for scenario in scenarios {
        if scenario.shape != Shape::Closed || scenario.connections != 100 || scenario.idle != 0 {
            continue;
        }
        for python in &scenario.entries {
            let Some(rust) = rust_twin(python.label)
                .and_then(|twin| scenario.entries.iter().find(|entry| entry.label == twin))
            else {
                continue;
            };
            let mut row = vec![
                format!("{} B", scenario.size),
                python.label.to_owned(),
                rust.label.to_owned(),
            ];
            row.extend(pair(
                value(python, |cell| Some(cell.msgs_per_sec)),
                value(rust, |cell| Some(cell.msgs_per_sec)),
                count,
            ));
            row.extend(pair(
                value(python, CPU_PER_MESSAGE.value),
                value(rust, CPU_PER_MESSAGE.value),
                number,
            ));
            row.extend(pair(value(python, memory), value(rust, memory), kib));
            let syscalls = |cell: &Cell| {
                cell.server
                    .as_ref()
                    .and_then(|server| server.syscalls.per_msg_total)
            };
            row.extend(pair(value(python, syscalls), value(rust, syscalls), number));
            rows.push(row);
        }
    }
    let headers = [
        "size",
        "Python",
        "Rust",
        "msgs/s Python",
        "msgs/s Rust",
        "ratio",
        "CPU µs/msg Python",
        "CPU µs/msg Rust",
        "ratio",
        "memory Python",
        "memory Rust",
        "ratio",
        "syscalls/msg Python",
        "syscalls/msg Rust",
        "ratio",
    ];
    (!rows.is_empty()).then(|| Section {
        id: "python-rust".to_owned(),
        title: "Python / Rust".to_owned(),
        paragraphs: vec![
            "Each Python server of the course (servers/python/, run through python3) beside its Rust twin: 100 \
             connections in closed loop, medians over the runs. A ratio above 1 means the Python server has more \
             of it. Memory is the peak charged to the server's memory cgroup, each page once however many \
             processes share it (the forking servers' too), or the PSS sum where no cgroup could be made."
                .to_owned(),
        ],
        charts: Vec::new(),
        table: Some(Table {
            headers: headers.into_iter().map(str::to_owned).collect(),
            rows,
        }),
    })
}

/// Cells merged from several load hosts (`bench --share`, `harness merge`):
/// each host's own share, beside the cell's figures summed over all hosts.
fn load_hosts_section(set: &ResultSet) -> Option<Section> {
    let mut rows = Vec::new();
    for data in &set.cells {
        let cell = &data.cell;
        for host in &cell.hosts {
            let clock = host.clock.as_ref().map_or_else(
                || "not reported".to_owned(),
                |clock| {
                    format!(
                        "{}, max error {} ms",
                        if clock.synchronised {
                            "synchronised"
                        } else {
                            "unsynchronised"
                        },
                        number(clock.max_error_us as f64 / 1e3)
                    )
                },
            );
            rows.push(vec![
                cell.label.clone(),
                cell.scenario.clone(),
                format!("{} of {}", host.host, cell.hosts.len()),
                host.hostname.clone(),
                host.source_addr.clone().unwrap_or_else(|| "-".to_owned()),
                host.connections.to_string(),
                count(host.msgs_per_sec),
                number(host.latency_us.p50),
                number(host.latency_us.p99),
                number(host.late_start_ms),
                clock,
                host.flags
                    .iter()
                    .map(|flag| flag.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ]);
        }
    }
    if rows.is_empty() {
        return None;
    }
    let headers = [
        "model",
        "scenario",
        "host",
        "hostname",
        "source",
        "connections",
        "msgs/s",
        "p50 µs",
        "p99 µs",
        "late start ms",
        "clock",
        "flags",
    ];
    Some(Section {
        id: "load-hosts".to_owned(),
        title: "Load hosts".to_owned(),
        paragraphs: vec![
            "Cells driven by several load hosts at once (bench --share) and merged: the cell's throughput is the \
             hosts' summed messages over the window they all measured, and its percentiles come from the sum of the \
             hosts' histograms, never from their percentiles. Each host's own share is below; a host that started \
             late, fell behind its schedule or was client-bound flags the cell."
                .to_owned(),
        ],
        charts: Vec::new(),
        table: Some(Table {
            headers: headers.iter().map(|header| header.to_string()).collect(),
            rows,
        }),
    })
}

fn median(spread: Option<Spread>, format: impl Fn(f64) -> String) -> String {
    spread.map_or_else(|| "-".to_owned(), |spread| format(spread.median))
}

/// The median, and its min-max when there are repeats.
fn with_range(spread: Option<Spread>, format: impl Fn(f64) -> String) -> String {
    match spread {
        None => "-".to_owned(),
        Some(spread) if spread.runs > 1 => {
            format!(
                "{} ({}-{})",
                format(spread.median),
                format(spread.min),
                format(spread.max)
            )
        }
        Some(spread) => format(spread.median),
    }
}

pub(super) fn capitalise(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// Letters, digits, `.`, `_` and `-` kept; anything else becomes `_`.
pub(super) fn slug(text: &str) -> String {
    text.chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || "._-".contains(character) {
                character
            } else {
                '_'
            }
        })
        .collect()
}

fn unique(candidate: &str, used: &mut BTreeSet<String>) -> String {
    let mut name = candidate.to_owned();
    let mut suffix = 2;
    while !used.insert(name.clone()) {
        name = format!("{candidate}-{suffix}");
        suffix += 1;
    }
    name
}

/// The manifest as `dotted.key = value` rows, in the manifest's key order.
fn flatten_manifest(manifest: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &serde_json::Value, rows: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(map) if !map.is_empty() => {
                for (key, value) in map {
                    let key = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&key, value, rows);
                }
            }
            serde_json::Value::String(text) => rows.push((prefix.to_owned(), text.clone())),
            other => rows.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut rows = Vec::new();
    walk("", manifest, &mut rows);
    rows
}

/// The first manifest row whose key is one of `keys` or ends with `.KEY`.
fn lookup(rows: &[(String, String)], keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|wanted| {
        rows.iter()
            .find(|(key, _)| key == wanted || key.ends_with(&format!(".{wanted}")))
            .map(|(_, value)| value.clone())
    })
}

fn headline(rows: &[(String, String)], suite: Option<String>) -> String {
    let mut parts = Vec::new();
    if let Some(suite) = suite {
        parts.push(format!("suite {suite}"));
    }
    if let Some(commit) = lookup(rows, &["git_commit", "commit"]) {
        parts.push(format!("commit {commit}"));
    }
    if let Some(version) = lookup(rows, &["harness_version", "tool_version", "version"]) {
        parts.push(format!("harness {version}"));
    }
    let mut machine = Vec::new();
    if let Some(cpu) = lookup(rows, &["cpu_model", "cpu"]) {
        machine.push(cpu);
    }
    if let Some(cores) = lookup(rows, &["cores"]) {
        machine.push(format!("{cores} cores"));
    }
    if let Some(kernel) = lookup(rows, &["kernel"]) {
        machine.push(kernel);
    }
    if !machine.is_empty() {
        parts.push(format!("on {}", machine.join(", ")));
    }
    if let Some(created) = lookup(rows, &["created_utc", "created"]) {
        parts.push(format!("created {created}"));
    }
    if parts.is_empty() {
        "Result set without the usual manifest fields.".to_owned()
    } else {
        capitalise(&parts.join("; ")) + "."
    }
}
