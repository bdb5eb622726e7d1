//! The robustness matrix of a result set that has a `faults.json`: faults
//! as rows, servers as columns, each cell coloured by its outcome and
//! labelled with its deciding figure; then one paragraph per fault saying
//! what it shows, with the measured outcomes; then every figure of every
//! cell. The faults' descriptions and the outcome rules come from the
//! harness's own tables ([`crate::faults::catalog`], [`crate::faults::judge`]),
//! as the flag meanings do; everything measured comes from `faults.json`.

use super::charts::{LEGEND_WIDTH, LegendItem, Rgb, colour, draw_legend};
use super::document::{Section, Table};
use super::groups::{Labels, count, kib, number};
use crate::faults::catalog;
use crate::faults::judge::{duration_us, percent};
use crate::faults::repeat::{figure_text, outcome_text, stability_sentence};
use crate::results::faults::{FaultRow, Outcome};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const OK: Rgb = (44, 160, 44);
const DEGRADED: Rgb = (255, 166, 0);
const FAILED: Rgb = (214, 39, 40);
const NOT_MEASURED: Rgb = (210, 210, 210);

const FONT: &str = "sans-serif";
const ROW_LABELS: u32 = 170;
const COLUMN: u32 = 104;
const ROW: u32 = 50;
const HEADER: u32 = 96;
const LEGEND: u32 = 56;

/// What the matrix chart draws.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Faults, top to bottom.
    pub rows: Vec<String>,
    /// Servers, left to right.
    pub columns: Vec<String>,
    /// `cells[row][column]`: the outcome's colour and two or three lines of text.
    pub cells: Vec<Vec<MatrixCell>>,
}

#[derive(Debug, Clone)]
pub struct MatrixCell {
    pub colour: Rgb,
    pub lines: Vec<String>,
}

fn outcome_colour(outcome: Outcome) -> Rgb {
    match outcome {
        Outcome::Ok => OK,
        Outcome::Degraded => DEGRADED,
        Outcome::Failed => FAILED,
    }
}

/// Faults in the catalog's order (unknown ones after, by name).
fn fault_order(rows: &[FaultRow]) -> Vec<String> {
    let mut faults: Vec<String> = rows.iter().map(|row| row.fault.clone()).collect();
    faults.sort_by_key(|name| {
        (
            catalog::FAULTS
                .iter()
                .position(|fault| fault.name == name)
                .unwrap_or(usize::MAX),
            name.clone(),
        )
    });
    faults.dedup();
    faults
}

/// The servers `rows` measured, in display order.
fn server_order(rows: &[FaultRow], labels: &Labels) -> Vec<String> {
    label_order(rows.iter().map(|row| row.label.as_str()), labels)
}

/// `servers`' labels, each once, in display order: the matrix's columns.
pub(crate) fn label_order<'a>(servers: impl IntoIterator<Item = &'a str>, labels: &Labels) -> Vec<String> {
    let mut servers: Vec<String> = servers.into_iter().map(str::to_owned).collect();
    servers.sort_by_key(|label| (labels.rank(label), label.clone()));
    servers.dedup();
    servers
}

/// The reason `row`'s outcome is its model's known limit, when it is one.
fn design_limit(row: &FaultRow) -> Option<&'static str> {
    if row.outcome == Outcome::Ok {
        return None;
    }
    let model = row.model.as_deref()?;
    let fault = catalog::find(&row.fault)?;
    fault
        .design_limits
        .iter()
        .find(|(limited, _)| *limited == model)
        .map(|(_, why)| *why)
}

/// Other processes, or the VM's host (steal), took enough of the CPUs
/// during the cell that its timing figures say as much about them as about
/// the server: the cells' `noisy` rule, on the same figures.
pub(crate) fn busy(row: &FaultRow) -> bool {
    crate::cell::flags::noisy(&crate::results::cell::MachineStats {
        busy_percent: row.others_cpu_percent,
        steal_percent: row.steal_percent,
        cpus: Vec::new(),
    })
}

/// The "busy machine" marker's meaning, with its thresholds.
pub(crate) fn busy_meaning() -> String {
    format!(
        "other processes took over {}% of a CPU on the server's and the load's CPUs, or the VM's host kept over {}% of a CPU from them (steal)",
        crate::cell::flags::NOISY_BUSY_PERCENT,
        crate::cell::flags::NOISY_STEAL_PERCENT
    )
}

pub(crate) fn find<'a>(rows: &'a [FaultRow], fault: &str, label: &str) -> Option<&'a FaultRow> {
    rows.iter().find(|row| row.fault == fault && row.label == label)
}

/// A matrix cell's text: its outcome and the figure that decided it
/// (repeated: `degraded 2/3`, the figure's median and spread, `unstable`
/// when the runs disagreed), or "not measured".
pub(crate) fn cell_text(rows: &[FaultRow], fault: &str, label: &str) -> String {
    find(rows, fault, label).map_or_else(
        || "not measured".to_owned(),
        |row| {
            let mut text = format!("{} {}", outcome_text(row), figure_text(row));
            if row.unstable {
                text.push_str(" unstable");
            }
            text
        },
    )
}

/// The matrix chart's data.
pub fn matrix(rows: &[FaultRow], labels: &Labels) -> Matrix {
    let faults = fault_order(rows);
    let servers = server_order(rows, labels);
    let cells = faults
        .iter()
        .map(|fault| {
            servers
                .iter()
                .map(|label| match find(rows, fault, label) {
                    Some(row) => {
                        let mut lines = vec![outcome_text(row), figure_text(row)];
                        if row.unstable {
                            lines.push("unstable".to_owned());
                        }
                        if design_limit(row).is_some() {
                            lines.push("design limit".to_owned());
                        }
                        if busy(row) {
                            lines.push("busy machine".to_owned());
                        }
                        MatrixCell {
                            colour: outcome_colour(row.outcome),
                            lines,
                        }
                    }
                    None => MatrixCell {
                        colour: NOT_MEASURED,
                        lines: vec!["not measured".to_owned()],
                    },
                })
                .collect()
        })
        .collect();
    Matrix {
        rows: faults,
        columns: servers,
        cells,
    }
}

/// Width and height of the matrix chart.
pub fn size(matrix: &Matrix) -> (u32, u32) {
    let width = (ROW_LABELS + COLUMN * matrix.columns.len() as u32 + 20).max(560);
    let height = HEADER + ROW * matrix.rows.len() as u32 + LEGEND;
    (width, height)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Draws the matrix: a title, server names as column heads, fault names as
/// row heads, a coloured box per cell with its text, and a legend.
pub fn draw(root: &Area, title: &str, matrix: &Matrix) -> anyhow::Result<()> {
    let (width, _) = root.dim_in_pixel();
    let text = |size: u32, colour: RGBColor, h: HPos| {
        (FONT, size)
            .into_font()
            .color(&colour)
            .pos(Pos::new(h, VPos::Center))
    };
    root.draw(&Text::new(
        title.to_owned(),
        (width as i32 / 2, 22),
        text(20, BLACK, HPos::Center),
    ))?;
    let left = ROW_LABELS as i32;
    let top = (HEADER - 26) as i32;
    for (column, server) in matrix.columns.iter().enumerate() {
        let x = left + (column as u32 * COLUMN + COLUMN / 2) as i32;
        root.draw(&Text::new(
            server.clone(),
            (x, top - 14),
            text(13, BLACK, HPos::Center),
        ))?;
    }
    for (row, fault) in matrix.rows.iter().enumerate() {
        let y = top + (row as u32 * ROW) as i32;
        root.draw(&Text::new(
            fault.clone(),
            (left - 10, y + ROW as i32 / 2),
            text(14, BLACK, HPos::Right),
        ))?;
        for (column, cell) in matrix.cells[row].iter().enumerate() {
            let x = left + (column as u32 * COLUMN) as i32;
            root.draw(&Rectangle::new(
                [(x + 2, y + 2), (x + COLUMN as i32 - 2, y + ROW as i32 - 2)],
                colour(cell.colour).filled(),
            ))?;
            let ink = if cell.colour == NOT_MEASURED || cell.colour == DEGRADED {
                BLACK
            } else {
                WHITE
            };
            let lines = cell.lines.len() as i32;
            let spacing = if lines > 3 { 5 } else { 7 };
            for (index, line) in cell.lines.iter().enumerate() {
                let offset = (index as i32 * 2 - (lines - 1)) * spacing;
                let size = match index {
                    0 => 13,
                    1 => 12,
                    _ => 10,
                };
                root.draw(&Text::new(
                    line.clone(),
                    (x + COLUMN as i32 / 2, y + ROW as i32 / 2 + offset),
                    text(size, ink, HPos::Center),
                ))?;
            }
        }
    }
    let legend_y = top + (matrix.rows.len() as u32 * ROW) as i32 + LEGEND as i32 / 2;
    let mut x = left;
    for (outcome, name) in [
        (OK, "ok"),
        (DEGRADED, "degraded"),
        (FAILED, "failed"),
        (NOT_MEASURED, "not measured"),
    ] {
        root.draw(&Rectangle::new(
            [(x, legend_y - 7), (x + 14, legend_y + 7)],
            colour(outcome).filled(),
        ))?;
        root.draw(&Text::new(name, (x + 20, legend_y), text(13, BLACK, HPos::Left)))?;
        x += 130;
    }
    let busy_note = format!(
        "busy machine: others or steal over {}% / {}% of a CPU",
        crate::cell::flags::NOISY_BUSY_PERCENT,
        crate::cell::flags::NOISY_STEAL_PERCENT
    );
    for (index, note) in [
        "design limit: the model's documented limit, not a bug",
        &busy_note,
    ]
    .iter()
    .enumerate()
    {
        root.draw(&Text::new(
            *note,
            (x, legend_y - 8 + 16 * index as i32),
            text(12, BLACK, HPos::Left),
        ))?;
    }
    Ok(())
}

/// One fault's background throughput over time, one line per server.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The fault's window, in seconds from the start of the measurement.
    pub fault_from_s: f64,
    pub fault_until_s: f64,
    pub series: Vec<TimelineSeries>,
}

#[derive(Debug, Clone)]
pub struct TimelineSeries {
    pub label: String,
    pub colour: Rgb,
    /// (seconds, % of the baseline) at the middle of each step.
    pub points: Vec<(f64, f64)>,
}

/// Each fault's timeline, in the matrix's order.
pub fn timelines(rows: &[FaultRow], labels: &Labels) -> Vec<(String, Timeline)> {
    let servers = server_order(rows, labels);
    fault_order(rows)
        .into_iter()
        .filter_map(|fault| {
            let cells: Vec<&FaultRow> = servers
                .iter()
                .filter_map(|label| find(rows, &fault, label))
                .filter(|row| row.timeline_step_s > 0.0 && !row.timeline_msgs_per_sec.is_empty())
                .collect();
            let first = cells.first()?;
            let series = cells
                .iter()
                .map(|row| TimelineSeries {
                    label: row.label.clone(),
                    colour: labels.colour(&row.label),
                    points: row
                        .timeline_msgs_per_sec
                        .iter()
                        .enumerate()
                        .map(|(step, rate)| {
                            let share = if row.baseline_msgs_per_sec > 0.0 {
                                100.0 * rate / row.baseline_msgs_per_sec
                            } else {
                                0.0
                            };
                            ((step as f64 + 0.5) * row.timeline_step_s, share)
                        })
                        .collect(),
                })
                .collect();
            Some((
                fault,
                Timeline {
                    fault_from_s: first.fault_from_s,
                    fault_until_s: first.fault_until_s,
                    series,
                },
            ))
        })
        .collect()
}

/// Draws a timeline: the fault's window shaded, a line per server, the
/// legend in a panel of its own.
pub fn draw_timeline(root: &Area, title: &str, timeline: &Timeline) -> anyhow::Result<()> {
    let (width, _) = root.dim_in_pixel();
    let (plot, legend) = root.split_horizontally(width - LEGEND_WIDTH);
    let x_max = timeline
        .series
        .iter()
        .flat_map(|series| series.points.last().map(|(x, _)| *x))
        .fold(timeline.fault_until_s, f64::max)
        .ceil()
        .max(1.0);
    // Shares above 200% are drawn at the top.
    let y_max = 200.0;
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds of measurement (the fault shaded)")
        .y_desc("background throughput, % of its baseline")
        .axis_desc_style((FONT, 14))
        .label_style((FONT, 12))
        .x_label_formatter(&|seconds| format!("{seconds:.1}"))
        .y_label_formatter(&|share| format!("{share:.0}%"))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .draw()?;
    chart.draw_series([Rectangle::new(
        [(timeline.fault_from_s, 0.0), (timeline.fault_until_s, y_max)],
        colour(DEGRADED).mix(0.18).filled(),
    )])?;
    for series in &timeline.series {
        let points = series.points.iter().map(|&(x, y)| (x, y.min(y_max)));
        chart.draw_series(LineSeries::new(points, colour(series.colour).stroke_width(2)))?;
    }
    let items: Vec<LegendItem> = timeline
        .series
        .iter()
        .map(|series| LegendItem::line(series.label.clone(), colour(series.colour), false))
        .collect();
    draw_legend(&legend, &items)
}

/// The matrix (its chart given as `chart`), what each fault shows, and the
/// details.
pub fn sections(
    rows: &[FaultRow],
    labels: &Labels,
    manifest: &[(String, String)],
    chart: usize,
    timeline_charts: &[(String, usize)],
) -> Vec<Section> {
    let faults = fault_order(rows);
    let servers = server_order(rows, labels);
    let lookup = |key: &str| {
        manifest
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
    };
    let mut paragraphs = Vec::new();
    let phases = match (
        lookup("suite.baseline_s"),
        lookup("suite.fault_s"),
        lookup("suite.recovery_s"),
    ) {
        (Some(baseline), Some(fault), Some(recovery)) => format!(
            " Phases: {baseline} s of baseline, {fault} s of fault (server-pause: its 1 s pause), {recovery} s of recovery, after a warm-up."
        ),
        _ => String::new(),
    };
    let background = if rows
        .iter()
        .any(|row| row.protocol == crate::protocol::Protocol::Http)
    {
        "sending one HTTP request, checking the response in full and closing"
    } else {
        "echoing one 64-byte message and closing"
    };
    paragraphs.push(format!(
        "Every server against every fault. A background of new clients (each connecting, {background}, a few at a time) runs before, during and after the fault; its throughput during the fault is a fraction of its baseline, its p99 covers the fault and the catch-up after it, corrected for coordinated omission. The server is watched as a whole process tree: CPU, memory growth, open descriptors before the fault and after the recovery, and whether it is still alive.{phases} Each cell is coloured by its outcome and labelled with the figure that decided it; a cell marked design limit is that model's documented limit (the lesson), not a bug; a cell marked busy machine ran while {} (the rule that flags an ordinary cell noisy), so its throughput, p99 and recovery say as much about them as about the server.",
        busy_meaning()
    ));
    if let Some(sentence) = stability_sentence(rows) {
        paragraphs.push(sentence);
    }
    let lessons = vec![
        crate::faults::judge::rules_text(),
        "Each fault's section below says what the fault does and shows, what was measured, and which outcomes are a model's documented limit; its chart is the background's throughput over the measurement, each server's line as a share of its own baseline, the fault shaded.".to_owned(),
    ];
    let per_fault: Vec<Section> = faults
        .iter()
        .map(|fault| Section {
            id: format!("fault-{fault}"),
            title: format!("Fault {fault}"),
            paragraphs: vec![fault_paragraph(fault, rows, &servers)],
            charts: timeline_charts
                .iter()
                .filter(|(name, _)| name == fault)
                .map(|(_, index)| *index)
                .collect(),
            table: None,
        })
        .collect();
    let mut table = Table {
        headers: std::iter::once("fault".to_owned())
            .chain(servers.iter().cloned())
            .collect(),
        rows: Vec::new(),
    };
    for fault in &faults {
        let mut cells = vec![fault.clone()];
        for label in &servers {
            cells.push(cell_text(rows, fault, label));
        }
        table.rows.push(cells);
    }
    let matrix = Section {
        id: "robustness-matrix".to_owned(),
        title: "Robustness matrix".to_owned(),
        paragraphs,
        charts: vec![chart],
        table: Some(table),
    };
    let lessons = Section {
        id: "what-each-fault-shows".to_owned(),
        title: "What each fault shows".to_owned(),
        paragraphs: lessons,
        charts: Vec::new(),
        table: None,
    };
    let mut sections = vec![matrix, lessons];
    sections.extend(per_fault);
    sections.push(details(rows, &faults, &servers));
    sections
}

/// One paragraph: what the fault does and shows, and what it did here.
fn fault_paragraph(fault: &str, rows: &[FaultRow], servers: &[String]) -> String {
    let mut text = format!("{fault}: ");
    if let Some(entry) = catalog::find(fault) {
        text += &format!("{} {} ", entry.does, entry.shows);
        let http = rows
            .iter()
            .any(|row| row.fault == fault && row.protocol == crate::protocol::Protocol::Http);
        if let (true, Some(over_http)) = (http, entry.over_http) {
            text += &format!("Under HTTP: {over_http} ");
        }
    }
    let mut measured = Vec::new();
    for outcome in [Outcome::Ok, Outcome::Degraded, Outcome::Failed] {
        let named: Vec<String> = servers
            .iter()
            .filter_map(|label| find(rows, fault, label))
            .filter(|row| row.outcome == outcome)
            .map(|row| {
                let mut figure = figure_text(row);
                if !row.runs.is_empty() {
                    let (agreeing, runs) = row.agreeing();
                    figure = format!("{agreeing}/{runs}, {figure}");
                }
                if row.unstable {
                    figure.push_str(", unstable");
                }
                format!("{} ({figure})", row.label)
            })
            .collect();
        if !named.is_empty() {
            measured.push(format!("{} for {}", outcome.as_str(), named.join(", ")));
        }
    }
    if !measured.is_empty() {
        text += &format!("Measured: {}.", measured.join("; "));
    }
    let limits: Vec<String> = servers
        .iter()
        .filter_map(|label| find(rows, fault, label))
        .filter_map(|row| design_limit(row).map(|why| format!("{}: {why}", row.label)))
        .collect();
    if !limits.is_empty() {
        text += &format!(" Design limits, not bugs: {}.", limits.join("; "));
    }
    text
}

/// Every figure of every fault cell.
fn details(rows: &[FaultRow], faults: &[String], servers: &[String]) -> Section {
    let headers = [
        "fault",
        "server",
        "outcome",
        "deciding",
        "baseline/s",
        "during",
        "p99 before",
        "p99 during",
        "CPU before",
        "CPU during",
        "memory growth",
        "fds leaked",
        "recovery",
        "errors",
        "alive",
        "others' CPU",
        "steal",
    ];
    let mut table_rows = Vec::new();
    let mut notes = Vec::new();
    for fault in faults {
        for label in servers {
            let Some(row) = find(rows, fault, label) else {
                continue;
            };
            table_rows.push(vec![
                row.fault.clone(),
                row.label.clone(),
                outcome_text(row) + if row.unstable { " unstable" } else { "" },
                figure_text(row),
                count(row.baseline_msgs_per_sec),
                percent(row.during_fraction),
                duration_us(row.p99_baseline_us),
                duration_us(row.p99_during_us),
                format!("{}%", number(row.cpu_baseline_percent)),
                format!("{}%", number(row.cpu_during_percent)),
                if row.memory_growth_kib < 0 {
                    format!("-{}", kib(-row.memory_growth_kib as f64))
                } else {
                    kib(row.memory_growth_kib as f64)
                },
                row.fds_leaked.to_string(),
                row.recovery_s
                    .map_or_else(|| "no".to_owned(), |seconds| format!("{seconds:.1} s")),
                row.errors.to_string(),
                if row.alive { "yes" } else { "no" }.to_owned(),
                format!("{}%", number(row.others_cpu_percent)),
                format!("{}%", number(row.steal_percent)),
            ]);
            notes.push(format!(
                "{} / {}: {}{}.",
                row.fault,
                row.label,
                row.fault_note,
                if row.listen_overflows > 0 {
                    format!(
                        "; the kernel counted {} listen-queue overflows (machine-wide)",
                        count(row.listen_overflows as f64)
                    )
                } else {
                    String::new()
                }
            ));
        }
    }
    let mut paragraphs = vec![
        "Background throughput in completed cycles per second; during = its throughput during the fault as a share of the baseline; p99 during covers the fault and the catch-up after it; CPU is the server's process tree, in % of one CPU; recovery = seconds after the fault's end until the background was back (no: not within 5 s); errors = failed background echoes (wrong byte, lost bytes, reset, early close, timeout, failed connect); others' CPU = what other processes took of the server's and the load's CPUs during the cell, and steal = what the VM's host kept from them, each in % of one CPU.".to_owned(),
    ];
    paragraphs.push(format!("What each fault did: {}", notes.join(" ")));
    Section {
        id: "fault-details".to_owned(),
        title: "Fault cells in detail".to_owned(),
        paragraphs,
        charts: Vec::new(),
        table: Some(Table {
            headers: headers.iter().map(|header| header.to_string()).collect(),
            rows: table_rows,
        }),
    }
}
