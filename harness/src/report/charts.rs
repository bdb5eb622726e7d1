//! Charts as SVG text, drawn with plotters from plain data.
//!
//! Every chart has a title, axis labels with units and a legend panel to the
//! right of the plot (so the legend never covers a line). A model keeps its
//! colour in every chart. A flagged cell is drawn as a hollow marker reached by
//! dashed segments (hollow bar, dashed line, red-framed panel), and the legend
//! says so.

use super::groups::{Dash, Marker, SeriesStyle, Spread, compact, count};
use super::read::{IntervalSummary, PercentileRow};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// An RGB colour.
pub type Rgb = (u8, u8, u8);

/// One chart to draw: its file name under `charts/`, title and data.
#[derive(Debug, Clone)]
pub struct Chart {
    pub file: String,
    pub title: String,
    pub body: ChartBody,
}

#[derive(Debug, Clone)]
pub enum ChartBody {
    /// Latency by percentile, HdrHistogram style, one line per label.
    Spectrum(Vec<SpectrumLine>),
    /// A measure against a swept parameter, one line per label.
    Sweep(SweepChart),
    /// Latency per second, one panel per cell.
    Timeline(Vec<TimelinePanel>),
    /// One horizontal bar per label.
    Bars(BarChart),
    /// One horizontal bar per label, split into named parts.
    StackedBars(StackedBarChart),
    /// The robustness matrix: faults × servers, coloured by outcome.
    Matrix(super::faults::Matrix),
    /// One fault's background throughput over time, a line per server.
    FaultTimeline(super::faults::Timeline),
}

#[derive(Debug, Clone)]
pub struct SpectrumLine {
    pub label: String,
    pub style: SeriesStyle,
    pub flags: String,
    pub rows: Vec<PercentileRow>,
}

#[derive(Debug, Clone)]
pub struct SweepChart {
    pub x_label: String,
    pub x_scale: XScale,
    pub y_label: String,
    pub y_log: bool,
    pub series: Vec<SweepSeries>,
    /// A second result set drawn over the first (`harness compare --out`):
    /// `series` solid, these dashed, each label in its own colour and marker.
    pub second: Option<SecondSet>,
    /// Lines computed from a rule, not measured (an ideal, a bound), drawn
    /// dashed in grey under the series; usually none.
    pub references: Vec<Reference>,
}

/// The second set of a sweep chart, and the names the legend gives both.
#[derive(Debug, Clone)]
pub struct SecondSet {
    /// The legend's name for [`SweepChart::series`] (drawn solid).
    pub first_name: String,
    /// The legend's name for this set (drawn dashed).
    pub name: String,
    pub series: Vec<SweepSeries>,
}

/// A computed line of a sweep chart: its points in the chart's units, its
/// legend text, and a short tag written at its right end.
#[derive(Debug, Clone)]
pub struct Reference {
    pub label: String,
    pub tag: String,
    pub points: Vec<(f64, f64)>,
}

/// How a sweep's x values are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XScale {
    /// Logarithmic, ticks at the swept values.
    Log,
    /// Evenly spaced in value order (for values that include 0).
    Ordinal,
}

#[derive(Debug, Clone)]
pub struct SweepSeries {
    pub label: String,
    pub style: SeriesStyle,
    pub points: Vec<SweepPoint>,
}

#[derive(Debug, Clone, Copy)]
pub struct SweepPoint {
    pub x: f64,
    pub y: Spread,
    pub flagged: bool,
}

#[derive(Debug, Clone)]
pub struct TimelinePanel {
    pub title: String,
    pub colour: Rgb,
    pub flags: String,
    pub intervals: Vec<IntervalSummary>,
}

#[derive(Debug, Clone)]
pub struct BarChart {
    pub value_label: String,
    pub bars: Vec<Bar>,
    /// Cut a bar longer than [`OFF_SCALE_FACTOR`] times the median one at
    /// the axis end (labelled with its value), so that one outlier does not
    /// flatten the rest; otherwise the axis reaches the longest bar.
    pub cut_outliers: bool,
}

#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub colour: Rgb,
    pub value: Spread,
    pub flagged: bool,
}

#[derive(Debug, Clone)]
pub struct StackedBarChart {
    pub value_label: String,
    /// The parts' names and colours, in stacking (and legend) order.
    pub parts: Vec<(String, Rgb)>,
    pub bars: Vec<StackedBar>,
}

#[derive(Debug, Clone)]
pub struct StackedBar {
    pub label: String,
    /// One value per part, in [`StackedBarChart::parts`] order.
    pub values: Vec<f64>,
    pub flagged: bool,
}

/// A stacked bar (or a bar, where the chart asks) longer than this many times
/// the median bar is cut at the axis end and labelled with its value, so that
/// one outlier does not flatten every other bar.
const OFF_SCALE_FACTOR: f64 = 4.0;

const FONT: &str = "sans-serif";
const WIDTH: u32 = 960;
const HEIGHT: u32 = 540;
pub(super) const LEGEND_WIDTH: u32 = 220;
const FLAGGED_NOTE: &str = "flagged cell";

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Coord = Cartesian2d<Ticked, Ticked>;
type Chart2d<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Coord>;

/// A linear coordinate in plotting units whose ticks are exactly the axis's
/// own (plotters' key-point combinator offers no label formatter for f64).
struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// Draws `chart` and returns the SVG document.
pub fn render(chart: &Chart) -> anyhow::Result<String> {
    let size = match &chart.body {
        ChartBody::Timeline(panels) => {
            let rows = panels.len().div_ceil(TIMELINE_COLUMNS).max(1) as u32;
            (WIDTH, TIMELINE_HEADER + rows * TIMELINE_PANEL_HEIGHT)
        }
        ChartBody::Matrix(matrix) => super::faults::size(matrix),
        _ => (WIDTH, HEIGHT),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        match &chart.body {
            ChartBody::Spectrum(lines) => spectrum(&root, &chart.title, lines)?,
            ChartBody::Sweep(sweep) => sweep_chart(&root, &chart.title, sweep)?,
            ChartBody::Timeline(panels) => timeline(&root, &chart.title, panels)?,
            ChartBody::Bars(bars) => bar_chart(&root, &chart.title, bars)?,
            ChartBody::StackedBars(bars) => stacked_bar_chart(&root, &chart.title, bars)?,
            ChartBody::Matrix(matrix) => super::faults::draw(&root, &chart.title, matrix)?,
            ChartBody::FaultTimeline(timeline) => {
                super::faults::draw_timeline(&root, &chart.title, timeline)?
            }
        }
        root.present()?;
    }
    Ok(svg.replace(
        &format!("opacity=\"{SVG_DASHED_OPACITY}\""),
        "opacity=\"1\" stroke-dasharray=\"8,5\"",
    ))
}

/// The opacity a line is drawn in by plotters (whose SVG backend knows no
/// dash attribute) when the SVG itself is to dash it: [`render`] turns it
/// into `stroke-dasharray`, one line a reader's tools see as one (a second
/// set's lines, see [`SecondSet`]). No other element is drawn in it.
const SVG_DASHED_OPACITY: f64 = 0.999;

/// A chart's alt text, written from its data: the title, what is drawn,
/// and the extremes a reader would look for first.
pub fn alt_text(chart: &Chart) -> String {
    let extremes = |values: Vec<(String, f64)>, unit: &str| -> String {
        let high = values.iter().max_by(|a, b| a.1.total_cmp(&b.1));
        let low = values.iter().min_by(|a, b| a.1.total_cmp(&b.1));
        match (high, low) {
            (Some(high), Some(low)) if values.len() > 1 => format!(
                " Highest: {} ({} {unit}); lowest: {} ({} {unit}).",
                high.0,
                super::groups::number(high.1),
                low.0,
                super::groups::number(low.1)
            ),
            _ => String::new(),
        }
    };
    let body = match &chart.body {
        ChartBody::Sweep(
            sweep @ SweepChart {
                second: Some(second), ..
            },
        ) => compared_alt_text(sweep, second),
        ChartBody::Sweep(sweep) => {
            let last_x = sweep
                .series
                .iter()
                .flat_map(|series| series.points.iter().map(|point| point.x))
                .fold(f64::NEG_INFINITY, f64::max);
            let at_last: Vec<(String, f64)> = sweep
                .series
                .iter()
                .filter_map(|series| {
                    let point = series.points.iter().find(|point| point.x == last_x)?;
                    Some((series.label.clone(), point.y.median))
                })
                .collect();
            let references = if sweep.references.is_empty() {
                String::new()
            } else {
                format!(
                    " Dashed grey reference lines, computed, not measured: {}.",
                    sweep
                        .references
                        .iter()
                        .map(|reference| reference.label.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            };
            format!(
                "Line chart of {} against {}, one line per label ({}), medians with interval bars. At {} {}:{}{}",
                sweep.y_label,
                sweep.x_label,
                sweep
                    .series
                    .iter()
                    .map(|series| series.label.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                super::groups::count(last_x),
                sweep.x_label,
                extremes(at_last, ""),
                references
            )
        }
        ChartBody::Spectrum(lines) => {
            let p99: Vec<(String, f64)> = lines
                .iter()
                .filter_map(|line| {
                    let row = line.rows.iter().find(|row| row.percentile >= 0.99)?;
                    Some((line.label.clone(), row.value_us))
                })
                .collect();
            format!(
                "Latency (µs, log scale) by percentile, one line per label. At the 99th percentile:{}",
                extremes(p99, "µs")
            )
        }
        ChartBody::Bars(bars) => format!(
            "Bar chart of {}, one bar per label.{}",
            bars.value_label,
            extremes(
                bars.bars
                    .iter()
                    .map(|bar| (bar.label.clone(), bar.value.median))
                    .collect(),
                ""
            )
        ),
        ChartBody::StackedBars(bars) => format!(
            "Stacked bar chart of {}, one bar per label, parts {}.{}",
            bars.value_label,
            bars.parts
                .iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            extremes(
                bars.bars
                    .iter()
                    .map(|bar| (bar.label.clone(), bar.values.iter().sum()))
                    .collect(),
                ""
            )
        ),
        ChartBody::Timeline(panels) => format!(
            "Latency per second, one panel per cell ({} panels).",
            panels.len()
        ),
        ChartBody::Matrix(_) => "A matrix of outcomes: one row per fault, one column per server.".to_owned(),
        ChartBody::FaultTimeline(_) => "Background throughput over time, one line per server.".to_owned(),
    };
    format!("{}. {}", chart.title, body.replace(" .", "."))
}

/// The alt text of a sweep chart drawing two sets: each label's median in
/// A and in B at the heaviest point either set reached.
fn compared_alt_text(sweep: &SweepChart, second: &SecondSet) -> String {
    let last_x = sweep
        .series
        .iter()
        .chain(&second.series)
        .flat_map(|series| series.points.iter().map(|point| point.x))
        .fold(f64::NEG_INFINITY, f64::max);
    let at_last = |series: &[SweepSeries], label: &str| {
        series
            .iter()
            .find(|series| series.label == label)
            .and_then(|series| series.points.iter().find(|point| point.x == last_x))
            .map_or_else(|| "-".to_owned(), |point| super::groups::number(point.y.median))
    };
    let mut labels: Vec<&str> = Vec::new();
    for series in sweep.series.iter().chain(&second.series) {
        if !labels.contains(&series.label.as_str()) {
            labels.push(&series.label);
        }
    }
    let values: Vec<String> = labels
        .iter()
        .map(|label| {
            format!(
                "{label} A {}, B {}",
                at_last(&sweep.series, label),
                at_last(&second.series, label)
            )
        })
        .collect();
    format!(
        "Line chart of {} against {}, one line per label and set: A ({}) solid, B ({}) dashed, medians with \
         interval bars. At {} {}: {}.",
        sweep.y_label,
        sweep.x_label,
        second.first_name,
        second.name,
        super::groups::count(last_x),
        sweep.x_label,
        values.join("; ")
    )
}

pub(super) fn colour((red, green, blue): Rgb) -> RGBColor {
    RGBColor(red, green, blue)
}

fn hollow(colour: RGBColor, stroke_width: u32) -> ShapeStyle {
    ShapeStyle {
        color: colour.to_rgba(),
        filled: false,
        stroke_width,
    }
}

/// One axis: its range in plotting units, its ticks (position, label), and
/// whether plotting units are log10 of the values.
struct Axis {
    range: Range<f64>,
    ticks: Vec<(f64, String)>,
    log: bool,
}

impl Axis {
    /// Where value `value` goes, in plotting units.
    fn at(&self, value: f64) -> f64 {
        if !self.log {
            value
        } else if value > 0.0 {
            value.log10()
        } else {
            self.range.start
        }
    }

    fn coord(&self) -> Ticked {
        Ticked {
            inner: self.range.clone().into(),
            ticks: self.ticks.iter().map(|(position, _)| *position).collect(),
        }
    }

    fn label(&self, position: f64) -> String {
        self.ticks
            .iter()
            .min_by(|a, b| (a.0 - position).abs().total_cmp(&(b.0 - position).abs()))
            .map(|(_, label)| label.clone())
            .unwrap_or_default()
    }

    /// From 0 to a little above `max`, at round steps.
    fn linear(max: f64, format: fn(f64) -> String) -> Axis {
        Axis::linear_with_headroom(max, 1.05, format)
    }

    /// From 0 to the first round step at or above `max * headroom`.
    fn linear_with_headroom(max: f64, headroom: f64, format: fn(f64) -> String) -> Axis {
        let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
        let raw_step = max / 5.0;
        let magnitude = 10f64.powf(raw_step.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|factor| factor * magnitude)
            .find(|step| *step >= raw_step)
            .unwrap_or(10.0 * magnitude);
        let steps = (max * headroom / step - 1e-9).ceil() as usize;
        let ticks = (0..=steps)
            .map(|index| (index as f64 * step, format(index as f64 * step)))
            .collect();
        Axis {
            range: 0.0..steps as f64 * step,
            ticks,
            log: false,
        }
    }

    /// Logarithmic over `min..max` (both > 0), ticks at 1-2-5 steps (every
    /// step on a narrow range, every decade on a wide one).
    fn log(min: f64, max: f64, format: fn(f64) -> String) -> Axis {
        let min = if min.is_finite() && min > 0.0 { min } else { 1.0 };
        let max = if max.is_finite() && max > min {
            max
        } else {
            min * 10.0
        };
        let decades = max.log10() - min.log10();
        let factors: &[f64] = if decades > 4.0 {
            &[1.0]
        } else if decades > 1.0 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
        };
        let candidates: Vec<f64> = ((min.log10().floor() as i32)..=(max.log10().ceil() as i32))
            .flat_map(|exponent| factors.iter().map(move |factor| factor * 10f64.powi(exponent)))
            .collect();
        // On narrow ranges the axis ends at ticks, so its ends are labelled.
        let (low, high) = if decades > 4.0 {
            (min.log10() - 0.1, max.log10() + 0.1)
        } else {
            let below = candidates
                .iter()
                .copied()
                .filter(|tick| *tick <= min)
                .fold(f64::NAN, f64::max);
            let below = if below.is_nan() { min } else { below };
            let above = candidates
                .iter()
                .copied()
                .find(|tick| *tick >= max)
                .unwrap_or(max);
            (below.log10() - 0.02, above.log10() + 0.02)
        };
        let ticks = candidates
            .into_iter()
            .filter(|value| (low..=high).contains(&value.log10()))
            .map(|value| (value.log10(), format(value)))
            .collect();
        Axis {
            range: low..high,
            ticks,
            log: true,
        }
    }

    /// Logarithmic with ticks at exactly `values` (all > 0).
    fn log_at(values: &[f64], format: fn(f64) -> String) -> Axis {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (min, max) = if min.is_finite() && min > 0.0 {
            (min, max)
        } else {
            (1.0, 10.0)
        };
        let ticks = values
            .iter()
            .map(|value| (value.log10(), format(*value)))
            .collect();
        Axis {
            range: min.log10() - 0.15..max.log10() + 0.15,
            ticks,
            log: true,
        }
    }

    /// Evenly spaced labels at positions 0, 1, 2, ...
    fn ordinal(labels: Vec<String>) -> Axis {
        let count = labels.len().max(1) as f64;
        let ticks = labels
            .into_iter()
            .enumerate()
            .map(|(index, label)| (index as f64, label))
            .collect();
        Axis {
            range: -0.5..count - 0.5,
            ticks,
            log: false,
        }
    }

    /// HdrHistogram's percentile axis: log10(1/(1-p)), 0% to 99.999%.
    fn percentile() -> Axis {
        let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];
        let ticks = labels
            .iter()
            .enumerate()
            .map(|(index, label)| (index as f64, label.to_string()))
            .collect();
        Axis {
            range: 0.0..5.0,
            ticks,
            log: false,
        }
    }
}

fn latency_tick(value: f64) -> String {
    if value >= 1.0 {
        count(value)
    } else {
        compact(value)
    }
}

fn frame<'a, 'b>(
    area: &'a Area<'b>,
    title: &str,
    (x, x_label): (&Axis, &str),
    (y, y_label): (&Axis, &str),
    title_size: u32,
) -> anyhow::Result<ChartContext<'a, SVGBackend<'b>, Coord>> {
    // A long title gets a smaller font rather than running off the chart
    // (about 0.55 em per character in a sans-serif face).
    let width = f64::from(area.dim_in_pixel().0.saturating_sub(24));
    let fitting = (width / (0.55 * title.chars().count().max(1) as f64)).floor() as u32;
    let title_size = title_size.min(fitting.max(11));
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, title_size))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x.coord(), y.coord())?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .x_label_formatter(&|position| x.label(*position))
        .y_label_formatter(&|position| y.label(*position))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .draw()?;
    Ok(chart)
}

/// How a legend item's sample is drawn.
pub(super) struct LegendItem {
    label: String,
    colour: RGBColor,
    dash: Dash,
    /// The marker, filled or hollow.
    marker: Option<(Marker, bool)>,
}

impl LegendItem {
    pub(super) fn line(label: impl Into<String>, colour: RGBColor, dashed: bool) -> Self {
        LegendItem {
            label: label.into(),
            colour,
            dash: if dashed { Dash::Dashed } else { Dash::Solid },
            marker: None,
        }
    }

    /// A series: its line and marker.
    fn series(label: impl Into<String>, style: &SeriesStyle) -> Self {
        LegendItem {
            label: label.into(),
            colour: colour(style.colour),
            dash: style.dash,
            marker: Some((style.marker, true)),
        }
    }

    fn flagged_note() -> Self {
        LegendItem {
            label: FLAGGED_NOTE.into(),
            colour: RGBColor(90, 90, 90),
            dash: Dash::Solid,
            marker: Some((Marker::Circle, false)),
        }
    }
}

/// The on-off lengths of a dash pattern, in pixels (`None`: solid).
fn dash_lengths(dash: Dash) -> Option<(u32, u32)> {
    match dash {
        Dash::Solid => None,
        Dash::Dashed => Some((8, 5)),
        Dash::Dotted => Some((2, 4)),
        Dash::Long => Some((16, 5)),
    }
}

/// A line through `points` in `dash`.
fn draw_line(
    chart: &mut Chart2d,
    points: Vec<(f64, f64)>,
    style: ShapeStyle,
    dash: Dash,
) -> anyhow::Result<()> {
    match dash_lengths(dash) {
        None => chart.draw_series(LineSeries::new(points, style))?,
        Some((on, off)) => chart.draw_series(DashedLineSeries::new(points, on, off, style))?,
    };
    Ok(())
}

/// A polygon to fill (if any) and the strokes to draw, in pixels.
type Outline = (Option<Vec<(i32, i32)>>, Vec<Vec<(i32, i32)>>);

/// A marker's outline around (0, 0), in pixels: the polygon to fill (none
/// for a cross) and the strokes to draw.
fn marker_outline(marker: Marker, radius: i32) -> Outline {
    let r = radius;
    let polygon = match marker {
        Marker::Circle => (0..16)
            .map(|step| {
                let angle = f64::from(step) * std::f64::consts::PI / 8.0;
                (
                    (f64::from(r) * angle.cos()).round() as i32,
                    (f64::from(r) * angle.sin()).round() as i32,
                )
            })
            .collect(),
        Marker::Square => vec![(-r + 1, -r + 1), (r - 1, -r + 1), (r - 1, r - 1), (-r + 1, r - 1)],
        Marker::TriangleUp => vec![(0, -r - 1), (r, r - 1), (-r, r - 1)],
        Marker::TriangleDown => vec![(0, r + 1), (r, -r + 1), (-r, -r + 1)],
        Marker::Diamond => vec![(0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)],
        Marker::Cross => {
            return (None, vec![vec![(-r, -r), (r, r)], vec![(-r, r), (r, -r)]]);
        }
    };
    let mut closed = polygon.clone();
    closed.push(polygon[0]);
    (Some(polygon), vec![closed])
}

/// A marker at `at` in a chart's coordinates: filled in `marker_colour`, or
/// hollow (white inside, its outline in the colour).
fn draw_marker(
    chart: &mut Chart2d,
    at: (f64, f64),
    marker: Marker,
    marker_colour: RGBColor,
    filled: bool,
) -> anyhow::Result<()> {
    let (polygon, strokes) = marker_outline(marker, 5);
    if let Some(polygon) = polygon {
        let fill = if filled {
            marker_colour.filled()
        } else {
            WHITE.filled()
        };
        chart.draw_series([EmptyElement::at(at) + Polygon::new(polygon, fill)])?;
    }
    let width = if filled && marker != Marker::Cross { 1 } else { 2 };
    for stroke in strokes {
        chart.draw_series([
            EmptyElement::at(at) + PathElement::new(stroke, marker_colour.stroke_width(width))
        ])?;
    }
    Ok(())
}

/// [`draw_marker`] on a drawing area, in pixels.
fn draw_marker_at(
    area: &Area,
    at: (i32, i32),
    marker: Marker,
    marker_colour: RGBColor,
    filled: bool,
) -> anyhow::Result<()> {
    let (polygon, strokes) = marker_outline(marker, 5);
    let shift = |points: Vec<(i32, i32)>| -> Vec<(i32, i32)> {
        points.into_iter().map(|(x, y)| (x + at.0, y + at.1)).collect()
    };
    if let Some(polygon) = polygon {
        let fill = if filled {
            marker_colour.filled()
        } else {
            WHITE.filled()
        };
        area.draw(&Polygon::new(shift(polygon), fill))?;
    }
    let width = if filled && marker != Marker::Cross { 1 } else { 2 };
    for stroke in strokes {
        area.draw(&PathElement::new(
            shift(stroke),
            marker_colour.stroke_width(width),
        ))?;
    }
    Ok(())
}

fn draw_sample(area: &Area, item: &LegendItem, (x, y): (i32, i32)) -> anyhow::Result<()> {
    let stroke = item.colour.stroke_width(2);
    match dash_lengths(item.dash) {
        None => area.draw(&PathElement::new(vec![(x, y), (x + 29, y)], stroke))?,
        Some((on, off)) => {
            let mut start = 0;
            while start < 30 {
                let end = (start + on as i32).min(30);
                area.draw(&PathElement::new(vec![(x + start, y), (x + end, y)], stroke))?;
                start += (on + off) as i32;
            }
        }
    }
    if let Some((marker, filled)) = item.marker {
        draw_marker_at(area, (x + 14, y), marker, item.colour, filled)?;
    }
    Ok(())
}

/// A vertical legend in its own panel.
pub(super) fn draw_legend(area: &Area, items: &[LegendItem]) -> anyhow::Result<()> {
    let style = (FONT, 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (index, item) in items.iter().enumerate() {
        let y = 64 + 24 * index as i32;
        draw_sample(area, item, (8, y))?;
        area.draw(&Text::new(item.label.clone(), (46, y), style.clone()))?;
    }
    Ok(())
}

fn spectrum(root: &Area, title: &str, lines: &[SpectrumLine]) -> anyhow::Result<()> {
    let (plot_area, legend_area) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
    let curves: Vec<Vec<(f64, f64)>> = lines.iter().map(|line| spectrum_points(&line.rows)).collect();
    let values = curves
        .iter()
        .flatten()
        .map(|(_, value)| *value)
        .filter(|value| *value > 0.0);
    let (min, max) = min_max(values);
    let x = Axis::percentile();
    let y = Axis::log(min, max, latency_tick);
    let mut chart = frame(
        &plot_area,
        title,
        (&x, "percentile"),
        (&y, "latency (µs, log scale)"),
        22,
    )?;
    let mut legend = Vec::new();
    for (line, curve) in lines.iter().zip(&curves) {
        let line_colour = colour(line.style.colour);
        let points: Vec<(f64, f64)> = curve
            .iter()
            .map(|(position, value)| (*position, y.at(*value)))
            .collect();
        let flagged = !line.flags.is_empty();
        let label = if points.is_empty() {
            format!("{} (no messages)", line.label)
        } else if flagged {
            format!("{} (flagged)", line.label)
        } else {
            line.label.clone()
        };
        // The series' marker at the 99% point, hollow when flagged.
        let width = if flagged { 1 } else { 2 };
        if let Some(&p99) = points.iter().find(|(position, _)| *position >= 2.0) {
            draw_line(
                &mut chart,
                points,
                line_colour.stroke_width(width),
                line.style.dash,
            )?;
            draw_marker(&mut chart, p99, line.style.marker, line_colour, !flagged)?;
        }
        let mut item = LegendItem::series(label, &line.style);
        if flagged {
            item.marker = Some((line.style.marker, false));
        }
        legend.push(item);
    }
    if lines.iter().any(|line| !line.flags.is_empty()) {
        legend.push(LegendItem::line(
            "thin, hollow marker: flagged",
            RGBColor(90, 90, 90),
            false,
        ));
    }
    draw_legend(&legend_area, &legend)
}

/// The spectrum's points: (log10(1/(1-p)), value), up to and including
/// 99.999%, where the line ends at the first value at or beyond it.
fn spectrum_points(rows: &[PercentileRow]) -> Vec<(f64, f64)> {
    const END: f64 = 5.0;
    let mut points = Vec::new();
    for row in rows {
        let position = if row.percentile < 1.0 {
            -(1.0 - row.percentile).log10()
        } else {
            f64::INFINITY
        };
        if position < END {
            points.push((position.max(0.0), row.value_us));
        } else {
            points.push((END, row.value_us));
            break;
        }
    }
    points
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), value| {
        (min.min(value), max.max(value))
    })
}

fn sweep_chart(root: &Area, title: &str, sweep: &SweepChart) -> anyhow::Result<()> {
    let (plot_area, legend_area) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
    let mut xs: Vec<f64> = sweep
        .series
        .iter()
        .chain(sweep.second.iter().flat_map(|second| second.series.iter()))
        .flat_map(|series| series.points.iter().map(|point| point.x))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let x = match sweep.x_scale {
        XScale::Log => Axis::log_at(&xs, compact),
        XScale::Ordinal => Axis::ordinal(xs.iter().map(|value| count(*value)).collect()),
    };
    let x_at = |value: f64| match sweep.x_scale {
        XScale::Log => x.at(value),
        XScale::Ordinal => xs.iter().position(|known| *known == value).unwrap_or(0) as f64,
    };
    // With a second set, its series are drawn dashed after the first's, solid.
    let second_series = sweep.second.iter().flat_map(|second| second.series.iter());
    let drawn: Vec<(&SweepSeries, Dash)> = match &sweep.second {
        None => sweep
            .series
            .iter()
            .map(|series| (series, series.style.dash))
            .collect(),
        Some(_) => sweep
            .series
            .iter()
            .map(|series| (series, Dash::Solid))
            .chain(second_series.map(|series| (series, Dash::Dashed)))
            .collect(),
    };
    let all = || drawn.iter().flat_map(|(series, _)| series.points.iter());
    let referenced = || {
        sweep
            .references
            .iter()
            .flat_map(|reference| reference.points.iter().map(|(_, value)| *value))
    };
    let positive = || {
        all()
            .flat_map(|point| [point.y.low, point.y.high, point.y.median])
            .chain(referenced())
            .filter(|value| *value > 0.0)
    };
    let (low, high) = min_max(positive());
    // A series spanning more than LOG_SPAN is drawn on a log axis.
    let y_log = sweep.y_log || (low.is_finite() && high / low > LOG_SPAN);
    let y = if y_log {
        Axis::log(low, high, compact)
    } else {
        let (_, max) = min_max(
            all()
                .map(|point| point.y.high.max(point.y.median))
                .chain(referenced()),
        );
        Axis::linear(max, compact)
    };
    let y_label = if y_log && !sweep.y_label.contains("log") {
        format!("{} (log scale)", sweep.y_label)
    } else {
        sweep.y_label.clone()
    };
    let mut chart = frame(&plot_area, title, (&x, &sweep.x_label), (&y, &y_label), 22)?;
    let mut legend = Vec::new();
    let mut reference_legend = Vec::new();
    // Computed lines first, under the measured series.
    let reference_colour = RGBColor(90, 90, 90);
    let tag_style = (FONT, 13)
        .into_font()
        .color(&reference_colour)
        .pos(Pos::new(HPos::Left, VPos::Bottom));
    for reference in &sweep.references {
        let mut path: Vec<(f64, f64)> = reference
            .points
            .iter()
            .map(|(at, value)| (x_at(*at), y.at(*value)))
            .collect();
        path.sort_by(|a, b| a.0.total_cmp(&b.0));
        // A bound at one x alone is a short level segment there.
        if let &[(only_x, only_y)] = path.as_slice() {
            let half = (x.range.end - x.range.start) * 0.08;
            path = vec![(only_x - half, only_y), (only_x + half, only_y)];
        }
        if let Some(&end) = path.last() {
            draw_line(&mut chart, path, reference_colour.stroke_width(2), Dash::Dashed)?;
            chart.draw_series([
                EmptyElement::at(end) + Text::new(reference.tag.clone(), (4, -4), tag_style.clone())
            ])?;
            reference_legend.push(LegendItem::line(reference.label.clone(), reference_colour, true));
        }
    }
    let mut any_flagged = false;
    // Drawn last, so no valid point of another series hides them.
    let mut flagged_markers = Vec::new();
    // A label's flagged points, in the first set and in the second.
    let mut flagged_by_label: Vec<(&str, [usize; 2])> = Vec::new();
    for (index, &(series, dash)) in drawn.iter().enumerate() {
        let set = usize::from(index >= sweep.series.len());
        let series_colour = colour(series.style.colour);
        let mut points = series.points.clone();
        points.sort_by(|a, b| a.x.total_cmp(&b.x));
        let place = |point: &SweepPoint, value: f64| (x_at(point.x), y.at(value));
        let path: Vec<(f64, f64)> = points.iter().map(|point| place(point, point.y.median)).collect();
        if sweep.second.is_some() && dash == Dash::Dashed {
            let style = series_colour.mix(SVG_DASHED_OPACITY).stroke_width(2);
            chart.draw_series(LineSeries::new(path, style))?;
        } else {
            draw_line(&mut chart, path, series_colour.stroke_width(2), dash)?;
        }
        for point in &points {
            if point.y.high > point.y.low {
                let (low, high) = (place(point, point.y.low), place(point, point.y.high));
                let cap = |at| EmptyElement::at(at) + PathElement::new(vec![(-5, 0), (5, 0)], series_colour);
                chart.draw_series([PathElement::new(vec![low, high], series_colour.stroke_width(1))])?;
                chart.draw_series([cap(low), cap(high)])?;
            }
            let at = place(point, point.y.median);
            if point.flagged {
                flagged_markers.push((at, series.style.marker, series_colour));
            } else {
                draw_marker(&mut chart, at, series.style.marker, series_colour, true)?;
            }
        }
        let flagged = points.iter().filter(|point| point.flagged).count();
        any_flagged |= flagged > 0;
        let counts = match flagged_by_label
            .iter_mut()
            .find(|(label, _)| *label == series.label)
        {
            Some((_, counts)) => counts,
            None => {
                flagged_by_label.push((&series.label, [0, 0]));
                &mut flagged_by_label.last_mut().expect("just pushed").1
            }
        };
        counts[set] += flagged;
    }
    for (at, marker, marker_colour) in flagged_markers {
        draw_marker(&mut chart, at, marker, marker_colour, false)?;
    }
    // One entry per label (its colour and marker), then, with a second
    // set, which set is solid and which dashed.
    for (label, [flagged, flagged_second]) in flagged_by_label {
        let Some((series, _)) = drawn.iter().find(|(series, _)| series.label == label) else {
            continue;
        };
        let text = if sweep.second.is_some() && flagged + flagged_second > 0 {
            format!("{label} (flagged: A {flagged}, B {flagged_second})")
        } else if flagged > 0 {
            format!("{label} ({flagged} flagged)")
        } else {
            label.to_owned()
        };
        let mut item = LegendItem::series(text, &series.style);
        if sweep.second.is_some() {
            item.dash = Dash::Solid;
        }
        legend.push(item);
    }
    if let Some(second) = &sweep.second {
        let grey = RGBColor(60, 60, 60);
        legend.push(LegendItem::line(format!("A: {}", second.first_name), grey, false));
        legend.push(LegendItem::line(format!("B: {}", second.name), grey, true));
    }
    legend.extend(reference_legend);
    if any_flagged {
        legend.push(LegendItem::flagged_note());
    }
    let with_bars = || all().filter(|point| point.y.runs > 1);
    if with_bars().any(|point| point.y.is_ci) {
        legend.push(LegendItem::line(
            "bars: 95% CI of the median",
            RGBColor(90, 90, 90),
            false,
        ));
    }
    if with_bars().any(|point| !point.y.is_ci) {
        legend.push(LegendItem::line(
            "bars: min-max (n < 6, no CI)",
            RGBColor(90, 90, 90),
            false,
        ));
    }
    draw_legend(&legend_area, &legend)
}

/// A sweep chart whose values span more than this factor (two decades) is
/// drawn on a log axis, so the smallest series is not flattened to zero.
const LOG_SPAN: f64 = 100.0;

const TIMELINE_COLUMNS: usize = 2;
const TIMELINE_HEADER: u32 = 84;
const TIMELINE_PANEL_HEIGHT: u32 = 280;

fn timeline(root: &Area, title: &str, panels: &[TimelinePanel]) -> anyhow::Result<()> {
    let body = root.titled(title, (FONT, 22))?;
    let (legend_area, grid) = body.split_vertically(TIMELINE_HEADER - 40);
    let style = (FONT, 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let grey = RGBColor(60, 60, 60);
    let mut items = vec![
        (LegendItem::line("p50", grey, false), 1),
        (LegendItem::line("p99", grey, false), 3),
        (LegendItem::line("max", grey, true), 1),
    ];
    if panels.iter().any(|panel| !panel.flags.is_empty()) {
        items.push((
            LegendItem::line("flagged cell: red frame, dashed p99", RGBColor(200, 0, 0), true),
            2,
        ));
    }
    let mut x_offset = 16;
    for (item, stroke_width) in &items {
        let y = 20;
        if item.dash != Dash::Solid {
            for start in [0, 11, 22] {
                let segment = vec![(x_offset + start, y), (x_offset + start + 7, y)];
                legend_area.draw(&PathElement::new(
                    segment,
                    item.colour.stroke_width(*stroke_width),
                ))?;
            }
        } else {
            let segment = vec![(x_offset, y), (x_offset + 29, y)];
            legend_area.draw(&PathElement::new(
                segment,
                item.colour.stroke_width(*stroke_width),
            ))?;
        }
        legend_area.draw(&Text::new(item.label.clone(), (x_offset + 36, y), style.clone()))?;
        x_offset += 36 + 9 * item.label.len() as i32 + 24;
    }

    let intervals = || {
        panels
            .iter()
            .flat_map(|panel| panel.intervals.iter())
            .filter(|interval| interval.count > 0)
    };
    let (min, max) = min_max(
        intervals()
            .flat_map(|interval| [interval.p50_us, interval.max_us])
            .filter(|v| *v > 0.0),
    );
    let (_, last) = min_max(intervals().map(|interval| interval.end_s));
    let x = Axis::linear_with_headroom(if last.is_finite() { last } else { 1.0 }, 1.0, compact);
    let y = Axis::log(min, max, latency_tick);
    let rows = panels.len().div_ceil(TIMELINE_COLUMNS).max(1);
    let areas = grid.split_evenly((rows, TIMELINE_COLUMNS));
    for (panel, area) in panels.iter().zip(&areas) {
        let flagged = !panel.flags.is_empty();
        let caption = if flagged {
            format!("{} - FLAGGED: {}", panel.title, panel.flags)
        } else {
            panel.title.clone()
        };
        let mut chart = frame(area, &caption, (&x, "time (s)"), (&y, "latency (µs, log)"), 15)?;
        let panel_colour = colour(panel.colour);
        let recorded: Vec<&IntervalSummary> = panel
            .intervals
            .iter()
            .filter(|interval| interval.count > 0)
            .collect();
        let series = |value: fn(&IntervalSummary) -> f64| -> Vec<(f64, f64)> {
            recorded
                .iter()
                .flat_map(|interval| {
                    let at = y.at(value(interval));
                    [(interval.start_s, at), (interval.end_s, at)]
                })
                .collect()
        };
        chart.draw_series(LineSeries::new(
            series(|interval| interval.p50_us),
            panel_colour.stroke_width(1),
        ))?;
        if flagged {
            chart.draw_series(DashedLineSeries::new(
                series(|interval| interval.p99_us),
                8,
                5,
                panel_colour.stroke_width(3),
            ))?;
        } else {
            chart.draw_series(LineSeries::new(
                series(|interval| interval.p99_us),
                panel_colour.stroke_width(3),
            ))?;
        }
        chart.draw_series(DashedLineSeries::new(
            series(|interval| interval.max_us),
            4,
            4,
            panel_colour.stroke_width(1),
        ))?;
        if recorded.is_empty() {
            let note = (FONT, 14)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center));
            let (width, height) = area.dim_in_pixel();
            area.draw(&Text::new(
                "no intervals recorded",
                (width as i32 / 2, height as i32 / 2),
                note,
            ))?;
        }
        if flagged {
            let (width, height) = area.dim_in_pixel();
            let frame_style = hollow(RGBColor(200, 0, 0), 2);
            area.draw(&Rectangle::new(
                [(1, 1), (width as i32 - 2, height as i32 - 2)],
                frame_style,
            ))?;
        }
    }
    Ok(())
}

/// The plot of a horizontal bar chart: its title, one row per `y` label
/// (the first bar at the top), values along `x` described by `value_label`.
fn bar_plot<'a, 'b>(
    plot_area: &'a Area<'b>,
    title: &str,
    x: &Axis,
    y: &Axis,
    value_label: &str,
) -> anyhow::Result<ChartContext<'a, SVGBackend<'b>, Coord>> {
    let mut chart = ChartBuilder::on(plot_area)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(150)
        .build_cartesian_2d(x.coord(), y.coord())?;
    chart
        .configure_mesh()
        .x_desc(value_label)
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .x_label_formatter(&|position| x.label(*position))
        .y_label_formatter(&|position| y.label(*position))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .draw()?;
    Ok(chart)
}

/// How a bar's value is written beside it.
fn bar_value_style() -> TextStyle<'static> {
    (FONT, 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center))
}

fn bar_chart(root: &Area, title: &str, chart_data: &BarChart) -> anyhow::Result<()> {
    let (plot_area, legend_area) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
    let bars = &chart_data.bars;
    // The first bar at the top.
    let y = Axis::ordinal(bars.iter().rev().map(|bar| bar.label.clone()).collect());
    let row = |index: usize| (bars.len() - 1 - index) as f64;
    let (_, max) = min_max(bars.iter().map(|bar| bar.value.max));
    let end = if chart_data.cut_outliers {
        off_scale_end(bars.iter().map(|bar| bar.value.median).collect(), max)
    } else {
        max
    };
    let x = Axis::linear(end * 1.15, compact);
    let axis_end = x.range.end;
    let mut chart = bar_plot(&plot_area, title, &x, &y, &chart_data.value_label)?;
    let value_style = bar_value_style();
    let mut legend = Vec::new();
    for (index, bar) in bars.iter().enumerate() {
        let bar_colour = colour(bar.colour);
        let corners = [
            (0.0, row(index) - 0.32),
            (bar.value.median.min(axis_end), row(index) + 0.32),
        ];
        if bar.flagged {
            chart.draw_series([Rectangle::new(corners, WHITE.filled())])?;
            chart.draw_series([Rectangle::new(corners, hollow(bar_colour, 2))])?;
        } else {
            chart.draw_series([Rectangle::new(corners, bar_colour.filled())])?;
        }
        if bar.value.max > bar.value.min {
            let (low, high) = (
                (bar.value.min.min(axis_end), row(index)),
                (bar.value.max.min(axis_end), row(index)),
            );
            let cap = |at| EmptyElement::at(at) + PathElement::new(vec![(0, -5), (0, 5)], BLACK);
            chart.draw_series([PathElement::new(vec![low, high], BLACK.stroke_width(1))])?;
            chart.draw_series([cap(low), cap(high)])?;
        }
        let (text, at) = if bar.value.median > axis_end {
            (
                format!("{} (off scale)", crate::report::groups::number(bar.value.median)),
                (axis_end * 0.72, row(index)),
            )
        } else {
            (
                crate::report::groups::number(bar.value.median),
                (bar.value.max.max(bar.value.median).min(axis_end), row(index)),
            )
        };
        chart.draw_series([EmptyElement::at(at) + Text::new(text, (8, 0), value_style.clone())])?;
        let label = if bar.flagged {
            format!("{} (flagged)", bar.label)
        } else {
            bar.label.clone()
        };
        legend.push(LegendItem {
            label,
            colour: bar_colour,
            dash: Dash::Solid,
            marker: Some((Marker::Square, !bar.flagged)),
        });
    }
    if bars.iter().any(|bar| bar.flagged) {
        legend.push(LegendItem::flagged_note());
    }
    if bars.iter().any(|bar| bar.value.runs > 1) {
        legend.push(LegendItem::line("bars: min-max of repeats", BLACK, false));
    }
    draw_legend(&legend_area, &legend)
}

/// Where a bar chart's axis ends: at the longest bar, or at
/// [`OFF_SCALE_FACTOR`] times the median bar when one is longer (that bar is
/// cut at the end and labelled with its value).
fn off_scale_end(mut lengths: Vec<f64>, max: f64) -> f64 {
    lengths.sort_by(f64::total_cmp);
    let median = lengths.get(lengths.len() / 2).copied().unwrap_or(0.0);
    if median > 0.0 {
        max.min(median * OFF_SCALE_FACTOR)
    } else {
        max
    }
}

fn stacked_bar_chart(root: &Area, title: &str, chart_data: &StackedBarChart) -> anyhow::Result<()> {
    let (plot_area, legend_area) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
    let bars = &chart_data.bars;
    let y = Axis::ordinal(bars.iter().rev().map(|bar| bar.label.clone()).collect());
    let row = |index: usize| (bars.len() - 1 - index) as f64;
    let totals: Vec<f64> = bars.iter().map(|bar| bar.values.iter().sum()).collect();
    let (_, max) = min_max(totals.iter().copied());
    let end = off_scale_end(totals.clone(), max);
    let x = Axis::linear(end.max(f64::MIN_POSITIVE) * 1.15, compact);
    let mut chart = bar_plot(&plot_area, title, &x, &y, &chart_data.value_label)?;
    let value_style = bar_value_style();
    let axis_end = x.range.end;
    for (index, bar) in bars.iter().enumerate() {
        let mut start = 0.0;
        for (value, (_, part_colour)) in bar.values.iter().zip(&chart_data.parts) {
            let stop = (start + value).min(axis_end);
            if stop > start {
                let corners = [(start, row(index) - 0.32), (stop, row(index) + 0.32)];
                let fill = if bar.flagged {
                    colour(*part_colour).mix(0.35).filled()
                } else {
                    colour(*part_colour).filled()
                };
                chart.draw_series([Rectangle::new(corners, fill)])?;
            }
            start += value;
        }
        let total = totals[index];
        if bar.flagged {
            let corners = [(0.0, row(index) - 0.32), (total.min(axis_end), row(index) + 0.32)];
            chart.draw_series([Rectangle::new(corners, hollow(BLACK, 1))])?;
        }
        let (text, at) = if total > axis_end {
            (
                format!("{} (off scale)", crate::report::groups::number(total)),
                axis_end * 0.72,
            )
        } else {
            (crate::report::groups::number(total), total)
        };
        chart.draw_series([
            EmptyElement::at((at, row(index))) + Text::new(text, (8, 0), value_style.clone())
        ])?;
    }
    let mut legend: Vec<LegendItem> = chart_data
        .parts
        .iter()
        .map(|(name, part_colour)| LegendItem {
            label: name.clone(),
            colour: colour(*part_colour),
            dash: Dash::Solid,
            marker: Some((Marker::Square, true)),
        })
        .collect();
    if bars.iter().any(|bar| bar.flagged) {
        legend.push(LegendItem::line("pale, framed: flagged cell", BLACK, false));
    }
    draw_legend(&legend_area, &legend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectrum_stops_at_five_nines() {
        let row = |value_us, percentile| PercentileRow { value_us, percentile };
        let rows = [row(1.0, 0.0), row(2.0, 0.9), row(3.0, 0.999999), row(4.0, 1.0)];
        let points = spectrum_points(&rows);
        assert_eq!(points.len(), 3);
        assert_eq!(points[2], (5.0, 3.0));
        assert!((points[1].0 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn log_axis_ticks_are_inside_its_range() {
        let axis = Axis::log(3.0, 4000.0, latency_tick);
        assert!(
            axis.ticks
                .iter()
                .all(|(position, _)| axis.range.contains(position))
        );
        assert!(axis.ticks.iter().any(|(_, label)| label == "1,000"));
    }
}
