//! `harness compare A B --out DIR`: the comparison as `compare.md` and
//! `compare.html`, with one chart per sweep and measure drawing both sets
//! (A solid, B dashed, each label in its usual colour and marker).
//!
//! `compare` judges; this module only lays its judgement out: the sets,
//! the manifest differences and the verdict table come as text, in the
//! words of the terminal output, and the charts are drawn from the two
//! result sets with the report's own chart code.
//!
//! Everything is drawn in memory first; the files are then written into a
//! staging directory inside DIR and renamed into place, so that a failing
//! write leaves DIR as it was. No clock: a second run writes the same bytes.

use super::charts::{self, Chart, ChartBody, SecondSet, SweepChart, XScale};
use super::document::{self, Table};
use super::groups::{self, Labels, Sweep, SweepAxis};
use super::load::ResultSet;
use super::{html, markdown};
use crate::results::cell::Cell;
use anyhow::Context;
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

/// What `harness compare` found, ready to lay out.
pub struct Comparison<'a> {
    pub a: &'a ResultSet,
    pub b: &'a ResultSet,
    /// Each set in one line, as the terminal says it (A, then B).
    pub described: [String; 2],
    /// The parts before the charts, in order: the manifests, the
    /// verdicts, the cells only one set holds.
    pub parts: Vec<Part>,
    /// What the charts draw, one chart per sweep and measure.
    pub measures: Vec<Measure<'a>>,
}

/// A titled part of the document: paragraphs, a table, lines after it.
pub struct Part {
    pub title: String,
    pub paragraphs: Vec<String>,
    pub table: Option<(Vec<String>, Vec<Vec<String>>)>,
    pub notes: Vec<String>,
}

/// A measure drawn against each sweep's parameter.
pub struct Measure<'m> {
    /// In file names and figure ids: `msgs_per_sec`.
    pub name: &'static str,
    pub title: &'static str,
    pub axis_label: &'static str,
    pub log: bool,
    pub value: Box<CellValue<'m>>,
}

/// A measure's value in one cell (`None`: not measured there).
pub type CellValue<'m> = dyn Fn(&Cell) -> Option<f64> + 'm;

/// A chart of the comparison, under its section's heading.
struct Figure {
    section: String,
    chart: Chart,
}

/// A set's name in the title and legends: its directory's last part, cut
/// to fit the legend panel.
fn set_name(set: &ResultSet) -> String {
    let name = set.dir.file_name().map_or_else(
        || set.dir.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    const FITS: usize = 20;
    if name.chars().count() > FITS {
        format!("{}…", name.chars().take(FITS - 1).collect::<String>())
    } else {
        name
    }
}

/// Writes `compare.md`, `compare.html` and the charts (`compare-*.svg`)
/// into `out`, creating it; returns the two documents' paths.
pub fn write(out: &Path, comparison: &Comparison) -> anyhow::Result<[std::path::PathBuf; 2]> {
    let figures = figures(comparison);
    let svgs = figures
        .par_iter()
        .map(|figure| {
            charts::render(&figure.chart).with_context(|| format!("cannot draw chart {}", figure.chart.file))
        })
        .collect::<anyhow::Result<Vec<String>>>()?;
    let mut files: Vec<(String, String)> = vec![
        ("compare.md".to_owned(), markdown_text(comparison, &figures)),
        ("compare.html".to_owned(), html_text(comparison, &figures)),
    ];
    files.extend(
        figures
            .iter()
            .zip(svgs)
            .map(|(figure, svg)| (figure.chart.file.clone(), svg)),
    );
    write_files(out, &files)?;
    Ok([out.join("compare.md"), out.join("compare.html")])
}

/// One chart per sweep (paired between the sets by parameter and what the
/// scenarios share) and measure that either set has a value for.
fn figures(comparison: &Comparison) -> Vec<Figure> {
    let (a, b) = (comparison.a, comparison.b);
    let labels = Labels::new(
        a.cells
            .iter()
            .chain(&b.cells)
            .map(|data| data.cell.label.as_str()),
    );
    let (scenarios_a, scenarios_b) = (
        groups::scenarios(&a.cells, &labels),
        groups::scenarios(&b.cells, &labels),
    );
    let (sweeps_a, sweeps_b) = (groups::sweeps(&scenarios_a), groups::sweeps(&scenarios_b));
    let key = |sweep: &Sweep| (sweep.axis, sweep.slug());
    let mut keys: Vec<(SweepAxis, String)> = Vec::new();
    for sweep in sweeps_a.iter().chain(&sweeps_b) {
        if !keys.contains(&key(sweep)) {
            keys.push(key(sweep));
        }
    }
    let (name_a, name_b) = (set_name(a), set_name(b));
    let mut figures = Vec::new();
    let mut files = BTreeSet::new();
    for wanted in keys {
        let sweep_a = sweeps_a.iter().find(|sweep| key(sweep) == wanted);
        let sweep_b = sweeps_b.iter().find(|sweep| key(sweep) == wanted);
        let Some(shown) = sweep_a.or(sweep_b) else {
            continue;
        };
        let (axis_key, heading, x_scale) = match shown.axis {
            SweepAxis::Connections => ("connections", "Connections", XScale::Log),
            SweepAxis::Idle => ("idle", "Idle connections", XScale::Ordinal),
            SweepAxis::Rate => ("rate", "Offered rate", XScale::Log),
        };
        let description = shown.describe();
        let section = format!("{heading} sweep: {description}");
        for measure in &comparison.measures {
            let series = |sweep: Option<&Sweep>| {
                sweep.map_or_else(Vec::new, |sweep| {
                    document::sweep_series(&labels, sweep, &*measure.value)
                })
            };
            let (series_a, series_b) = (series(sweep_a), series(sweep_b));
            if series_a.is_empty() && series_b.is_empty() {
                continue;
            }
            let stem = document::slug(&format!("compare-{axis_key}-{}--{}", shown.slug(), measure.name));
            if !files.insert(stem.clone()) {
                continue;
            }
            figures.push(Figure {
                section: section.clone(),
                chart: Chart {
                    file: format!("{stem}.svg"),
                    title: format!("{} vs {}: {description}", measure.title, shown.axis.name()),
                    body: ChartBody::Sweep(SweepChart {
                        x_label: shown.axis.name().to_owned(),
                        x_scale,
                        y_label: measure.axis_label.to_owned(),
                        y_log: measure.log,
                        series: series_a,
                        second: Some(SecondSet {
                            first_name: name_a.clone(),
                            name: name_b.clone(),
                            series: series_b,
                        }),
                        references: Vec::new(),
                    }),
                },
            });
        }
    }
    figures
}

/// A figure's id, which stays the same as long as the sweep and measure do.
fn figure_id(chart: &Chart) -> String {
    format!("fig-{}", chart.file.trim_end_matches(".svg"))
}

fn title(comparison: &Comparison) -> String {
    format!(
        "echolab comparison: {} (A) vs {} (B)",
        set_name(comparison.a),
        set_name(comparison.b)
    )
}

const CHARTS_NOTE: &str = "Each chart draws both sets: A solid, B dashed; a label keeps its colour and \
                           marker in both. Points are medians of the repeats; bars are the 95% CI of the \
                           median where a cell has 6 repeats or more, its minimum and maximum otherwise.";

const NO_SWEEP: &str = "No sweep to draw: neither set holds scenarios that vary one parameter.";

fn table_of((headers, rows): &(Vec<String>, Vec<Vec<String>>)) -> Table {
    Table {
        headers: headers.clone(),
        rows: rows.clone(),
    }
}

/// The sections of the charts, in order, each with its figures.
fn sections(figures: &[Figure]) -> Vec<(&str, Vec<&Chart>)> {
    let mut sections: Vec<(&str, Vec<&Chart>)> = Vec::new();
    for figure in figures {
        match sections.last_mut() {
            Some((section, charts)) if *section == figure.section => charts.push(&figure.chart),
            _ => sections.push((&figure.section, vec![&figure.chart])),
        }
    }
    sections
}

fn markdown_text(comparison: &Comparison, figures: &[Figure]) -> String {
    let escape = markdown::escape;
    // Every block ends with a blank line.
    let mut out = format!("# {}\n\n", escape(&title(comparison)));
    for (letter, described) in ["A", "B"].iter().zip(&comparison.described) {
        let _ = writeln!(out, "- {letter}: {}", escape(described));
    }
    out.push('\n');
    for part in &comparison.parts {
        let _ = writeln!(out, "## {}\n", escape(&part.title));
        for paragraph in &part.paragraphs {
            let _ = writeln!(out, "{}\n", escape(paragraph));
        }
        if let Some(table) = &part.table {
            markdown::table(&mut out, &table_of(table));
            out.push('\n');
        }
        for note in &part.notes {
            let _ = writeln!(out, "{}\n", escape(note));
        }
    }
    out.push_str("## Charts\n\n");
    out.push_str(if figures.is_empty() { NO_SWEEP } else { CHARTS_NOTE });
    out.push_str("\n\n");
    for (section, charts) in sections(figures) {
        let _ = writeln!(out, "### {}\n", escape(section));
        for chart in charts {
            let _ = writeln!(
                out,
                "<a id=\"{}\"></a>\n\n![{}]({})\n\n*{}*\n",
                figure_id(chart),
                escape(&charts::alt_text(chart)),
                chart.file,
                escape(&chart.title)
            );
        }
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn html_text(comparison: &Comparison, figures: &[Figure]) -> String {
    let escape = html::escape;
    let title = escape(&title(comparison));
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <title>{title}</title>\n<style>\n{}img.chart{{display:block;max-width:100%;height:auto;\
         border:1px solid #eee;background:#fff}}\n\
         @media (prefers-color-scheme: dark){{img.chart{{border-color:#333}}}}\n</style>\n\
         </head>\n<body>\n<h1>{title}</h1>\n<ul>\n",
        html::STYLE
    );
    for (letter, described) in ["A", "B"].iter().zip(&comparison.described) {
        let _ = writeln!(out, "<li>{letter}: {}</li>", escape(described));
    }
    out.push_str("</ul>\n");
    for part in &comparison.parts {
        let _ = writeln!(out, "<section>\n<h2>{}</h2>", escape(&part.title));
        for paragraph in &part.paragraphs {
            let _ = writeln!(out, "<p>{}</p>", escape(paragraph));
        }
        if let Some(table) = &part.table {
            html::table(&mut out, &table_of(table));
        }
        for note in &part.notes {
            let _ = writeln!(out, "<p>{}</p>", escape(note));
        }
        out.push_str("</section>\n");
    }
    let _ = writeln!(
        out,
        "<section>\n<h2>Charts</h2>\n<p>{}</p>",
        if figures.is_empty() { NO_SWEEP } else { CHARTS_NOTE }
    );
    for (section, charts) in sections(figures) {
        let _ = writeln!(out, "<h3>{}</h3>", escape(section));
        for chart in charts {
            let _ = writeln!(
                out,
                "<figure id=\"{}\">\n<img class=\"chart\" src=\"{}\" alt=\"{}\">\n\
                 <figcaption>{}</figcaption>\n</figure>",
                figure_id(chart),
                escape(&chart.file),
                escape(&charts::alt_text(chart)),
                escape(&chart.title)
            );
        }
    }
    out.push_str("</section>\n</body>\n</html>\n");
    out
}

/// Writes `files` (name, contents) into `out`, creating it: first into a
/// staging directory inside it, then renamed into place. Charts of an
/// earlier comparison that this one does not draw are removed. On failure
/// a directory this call created is removed again.
fn write_files(out: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    let existed = out.is_dir();
    std::fs::create_dir_all(out).with_context(|| format!("--out: cannot create {}", out.display()))?;
    let written = stage_and_rename(out, files);
    if written.is_err() && !existed {
        let _ = std::fs::remove_dir(out);
    }
    written
}

fn stage_and_rename(out: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    let staging = out.join(format!(".compare-staging-{}", std::process::id()));
    std::fs::create_dir(&staging).with_context(|| format!("--out: cannot write into {}", out.display()))?;
    let staged = files.iter().try_for_each(|(name, contents)| {
        let path = staging.join(name);
        std::fs::write(&path, contents).with_context(|| format!("--out: cannot write {}", path.display()))
    });
    if let Err(error) = staged {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error);
    }
    for (name, _) in files {
        std::fs::rename(staging.join(name), out.join(name))
            .with_context(|| format!("--out: cannot write {}", out.join(name).display()))?;
    }
    std::fs::remove_dir(&staging).with_context(|| format!("cannot remove {}", staging.display()))?;
    let planned: BTreeSet<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    let entries = std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", out.display()))?
            .path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if name.starts_with("compare-") && name.ends_with(".svg") && !planned.contains(name) {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}
