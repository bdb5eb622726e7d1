//! Every chart also as PNG and PDF, and its data as CSV; the summary as a
//! LaTeX booktabs table. Byte-identical on every regeneration: the one font
//! that draws the text is DejaVu Sans, embedded in the binary
//! (`harness/assets/DejaVuSans.ttf`, licence beside it) and the only font
//! resvg and svg2pdf can see; no system font is loaded, no clock is read.
//!
//! - PNG: resvg, [`PNG_SCALE`] times the SVG's pixels (960 × 540 → 1920 ×
//!   1080: 192 dpi at the SVG's 10 × 5.6 in at 96 dpi), the density written
//!   into the file (pHYs).
//! - PDF: svg2pdf, the SVG's size at 96 dpi, text embedded as the font.

use super::charts::{Chart, ChartBody};
use super::groups::{Scenario, Spread};
use anyhow::Context;
use std::fmt::Write;
use std::sync::{Arc, OnceLock};

/// The PNG's pixels per SVG pixel.
pub const PNG_SCALE: f32 = 2.0;

/// The SVG's pixels per inch (CSS), which sets the PDF's page size.
const SVG_DPI: f32 = 96.0;

/// The PNG's density: the SVG's, times the scale (192 dpi).
pub const PNG_DPI: f32 = SVG_DPI * PNG_SCALE;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FONT_FAMILY: &str = "DejaVu Sans";

/// The parse options: the embedded font alone, as every family.
fn options() -> &'static resvg::usvg::Options<'static> {
    static OPTIONS: OnceLock<resvg::usvg::Options<'static>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut fonts = resvg::usvg::fontdb::Database::new();
        fonts.load_font_data(FONT.to_vec());
        fonts.set_sans_serif_family(FONT_FAMILY);
        fonts.set_serif_family(FONT_FAMILY);
        fonts.set_monospace_family(FONT_FAMILY);
        resvg::usvg::Options {
            font_family: FONT_FAMILY.to_owned(),
            fontdb: Arc::new(fonts),
            ..resvg::usvg::Options::default()
        }
    })
}

/// The PNG and the PDF of one chart's SVG.
pub fn png_and_pdf(svg: &str) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let tree = resvg::usvg::Tree::from_str(svg, options()).context("cannot read the chart's SVG")?;
    let size = tree.size().to_int_size();
    let (width, height) = (
        (size.width() as f32 * PNG_SCALE).round() as u32,
        (size.height() as f32 * PNG_SCALE).round() as u32,
    );
    let mut pixmap = resvg::tiny_skia::Pixmap::new(width, height).context("a chart of no size")?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(PNG_SCALE, PNG_SCALE),
        &mut pixmap.as_mut(),
    );
    let png = encode_png(&pixmap).context("cannot encode the PNG")?;
    let pdf = svg2pdf::to_pdf(
        &tree,
        svg2pdf::ConversionOptions::default(),
        svg2pdf::PageOptions { dpi: SVG_DPI },
    )
    .map_err(|error| anyhow::anyhow!("cannot convert to PDF: {error}"))?;
    Ok((png, sort_references(pdf)))
}

/// The PNG of a rendered chart, tagged with its density ([`PNG_DPI`]) so
/// that a word processor places it at the SVG's size, not at 72 dpi.
/// tiny-skia's own `encode_png` writes no pHYs chunk.
fn encode_png(pixmap: &resvg::tiny_skia::Pixmap) -> Result<Vec<u8>, png::EncodingError> {
    // Straight alpha, as PNG stores it; the pixmap holds premultiplied.
    let rgba: Vec<u8> = pixmap
        .pixels()
        .iter()
        .flat_map(|pixel| {
            let color = pixel.demultiply();
            [color.red(), color.green(), color.blue(), color.alpha()]
        })
        .collect();
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, pixmap.width(), pixmap.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let per_metre = (PNG_DPI / 0.0254).round() as u32;
    encoder.set_pixel_dims(Some(png::PixelDimensions {
        xppu: per_metre,
        yppu: per_metre,
        unit: png::Unit::Meter,
    }));
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgba)?;
    writer.finish()?;
    Ok(bytes)
}

/// svg2pdf writes the entries of a resource dictionary (`/xo1 10 0 R`, one
/// per line) in hash-map order, which changes from run to run. Sorting each
/// run of such lines gives the same bytes every time; the lines only trade
/// places, so every object keeps its offset and the cross-reference table
/// stays right.
fn sort_references(pdf: Vec<u8>) -> Vec<u8> {
    let is_reference = |line: &[u8]| {
        let text = String::from_utf8_lossy(line);
        let words: Vec<&str> = text.split_whitespace().collect();
        words.len() == 4
            && words[0].starts_with('/')
            && words[1].bytes().all(|byte| byte.is_ascii_digit())
            && words[2] == "0"
            && words[3] == "R"
    };
    let mut out = Vec::with_capacity(pdf.len());
    let mut run: Vec<&[u8]> = Vec::new();
    for line in pdf.split_inclusive(|byte| *byte == b'\n') {
        if line.ends_with(b"\n") && is_reference(line) {
            run.push(line);
            continue;
        }
        run.sort_unstable();
        out.extend(run.drain(..).flatten());
        out.extend_from_slice(line);
    }
    run.sort_unstable();
    out.extend(run.drain(..).flatten());
    out
}

/// The data a chart draws, as CSV (header first); `None` for the charts
/// whose data is a table of the report already (matrix, timelines).
pub fn csv(chart: &Chart) -> Option<String> {
    let mut out = String::new();
    let interval = |spread: &Spread| {
        format!(
            "{},{},{},{},{},{}",
            spread.median,
            spread.low,
            spread.high,
            spread.min,
            spread.max,
            if spread.is_ci { "95% CI" } else { "min-max" }
        )
    };
    match &chart.body {
        ChartBody::Sweep(sweep) => {
            out.push_str("label,x,median,low,high,min,max,interval,runs,flagged\n");
            for series in &sweep.series {
                for point in &series.points {
                    let _ = writeln!(
                        out,
                        "{},{},{},{},{}",
                        field(&series.label),
                        point.x,
                        interval(&point.y),
                        point.y.runs,
                        point.flagged
                    );
                }
            }
            for reference in &sweep.references {
                for (x, value) in &reference.points {
                    let _ = writeln!(
                        out,
                        "{},{x},{value},{value},{value},{value},{value},computed,0,false",
                        field(&reference.label)
                    );
                }
            }
        }
        ChartBody::Spectrum(lines) => {
            out.push_str("label,percentile,latency_us\n");
            for line in lines {
                for row in &line.rows {
                    let _ = writeln!(out, "{},{},{}", field(&line.label), row.percentile, row.value_us);
                }
            }
        }
        ChartBody::Bars(bars) => {
            out.push_str("label,median,low,high,min,max,interval,runs,flagged\n");
            for bar in &bars.bars {
                let _ = writeln!(
                    out,
                    "{},{},{},{}",
                    field(&bar.label),
                    interval(&bar.value),
                    bar.value.runs,
                    bar.flagged
                );
            }
        }
        ChartBody::StackedBars(bars) => {
            out.push_str("label,part,value,flagged\n");
            for bar in &bars.bars {
                for ((part, _), value) in bars.parts.iter().zip(&bar.values) {
                    let _ = writeln!(
                        out,
                        "{},{},{},{}",
                        field(&bar.label),
                        field(part),
                        value,
                        bar.flagged
                    );
                }
            }
        }
        ChartBody::Timeline(_) | ChartBody::Matrix(_) | ChartBody::FaultTimeline(_) => return None,
    }
    Some(out)
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The summary as a LaTeX booktabs table: per scenario and label, the
/// throughput and p99 as `median [lo, hi]` (95% CI, n ≥ 6) or
/// `median [min--max]` (fewer runs), for `\usepackage{booktabs}`.
pub fn latex_summary(scenarios: &[Scenario]) -> String {
    let text = |spread: Option<Spread>, format: fn(f64) -> String| match spread {
        None => "--".to_owned(),
        Some(spread) if spread.is_ci => format!(
            "{} [{}, {}]",
            format(spread.median),
            format(spread.low),
            format(spread.high)
        ),
        Some(spread) if spread.runs > 1 => format!(
            "{} [{}--{}]",
            format(spread.median),
            format(spread.low),
            format(spread.high)
        ),
        Some(spread) => format(spread.median),
    };
    let mut out = String::from(
        "% Generated by harness report. Intervals: [lo, hi] is the 95% CI of the median (n >= 6);\n\
         % [lo--hi] is the min--max of fewer runs (no CI).\n\
         \\begin{tabular}{llrrr}\n\\toprule\nScenario & Model & Runs & Throughput (msgs/s) & p99 ($\\mu$s) \\\\\n\\midrule\n",
    );
    for (index, scenario) in scenarios.iter().enumerate() {
        if index > 0 {
            out.push_str("\\addlinespace\n");
        }
        for entry in &scenario.entries {
            let _ = writeln!(
                out,
                "{} & {} & {} & {} & {} \\\\",
                latex(scenario.name),
                latex(entry.label),
                entry.runs.len(),
                latex(&text(
                    entry.spread(|cell| Some(cell.msgs_per_sec)),
                    super::groups::count
                )),
                latex(&text(
                    entry.spread(|cell| Some(cell.latency_us.p99)),
                    super::groups::number
                )),
            );
        }
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n");
    out
}

/// Text with LaTeX's special characters escaped.
fn latex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '\\' => escaped.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                escaped.push('\\');
                escaped.push(character);
            }
            '~' => escaped.push_str("\\textasciitilde{}"),
            '^' => escaped.push_str("\\textasciicircum{}"),
            other => escaped.push(other),
        }
    }
    escaped
}
