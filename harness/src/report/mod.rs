//! `harness report DIR`: charts and a report from a result set's raw files.
//!
//! Layout, in pipeline order:
//! - [`read`]: the readers of `manifest.json`, `cells/*.json`, `*.hgrm`, `*.hlog`;
//! - [`load`]: a whole result set, in sorted order;
//! - [`groups`]: repeats → entries → scenarios → sweeps, label order and colours;
//! - [`document`]: the report as data (sections, tables, chart specifications);
//! - [`faults`]: the robustness matrix, for result sets with a `faults.json`;
//! - [`findings`]: the sentences the report opens with, written by rules;
//! - [`select`]: which charts (`--charts paper|full`) and labels (`--labels`);
//! - [`charts`]: each chart drawn to SVG with plotters;
//! - [`export`]: each chart as PNG and PDF (resvg, svg2pdf, an embedded
//!   font) and its data as CSV; the summary as a LaTeX table;
//! - [`markdown`] and [`html`]: `report.md` (charts linked) and `report.html`
//!   (charts inlined, self-contained);
//! - [`tour`]: a tour's `tour.json` as the report's first sections, and as
//!   `tour.md` on its own.
//! - [`udp`]: the section of `--protocol udp` cells (datagrams by fate, loss
//!   against offered rate).
//! - [`comparison`]: `harness compare --out`, two sets' verdicts and their
//!   sweeps drawn together.
//! - [`http`]: the sections of `--protocol http` cells (pipelining, a static
//!   file against plaintext, errors by kind) and of cells with `--work`
//!   (answers per second against the work, under the course's ideal).
//!
//! The output depends only on the raw files: no clock, sorted iteration,
//! fixed number formatting, so a second run writes the same bytes.

mod charts;
pub(crate) mod comparison;
mod document;
mod export;
pub(crate) mod faults;
mod findings;
pub(crate) mod groups;
mod html;
mod http;
pub(crate) mod load;
mod markdown;
mod read;
pub(crate) mod select;
mod tour;
mod udp;

use anyhow::Context;
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The result set directory (holding manifest.json and cells/).
    pub dir: PathBuf,
    /// Which charts: every one (`full`), or at most 8 chosen by a rule
    /// written in code (`paper`: see the README).
    #[arg(long, value_enum, default_value = "full")]
    pub charts: select::Charts,
    /// Draw only these labels (comma-separated), in every chart and table.
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Write the report here instead of into DIR (DIR is left untouched).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// What `harness report` draws and where it writes.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub paper: bool,
    /// Empty: every label.
    pub labels: Vec<String>,
    /// `None`: into the result set.
    pub out: Option<PathBuf>,
}

pub fn main(args: ReportArgs) -> anyhow::Result<()> {
    let options = Options {
        paper: args.charts == select::Charts::Paper,
        labels: args.labels,
        out: args.out,
    };
    let written = generate_with(&args.dir, &options)?;
    println!("wrote {}", written.join("report.html").display());
    Ok(())
}

/// Reads the result set in `dir` and writes `charts/*.svg`, `report.md` and
/// `report.html` there (and `tour.md` for a tour).
pub fn generate(dir: &Path) -> anyhow::Result<()> {
    generate_with(dir, &Options::default()).map(|_| ())
}

/// [`generate`] with options; returns the directory written. Everything is
/// drawn in memory before the first file is written, so bad input leaves
/// nothing half-written.
pub fn generate_with(dir: &Path, options: &Options) -> anyhow::Result<PathBuf> {
    let mut set = load::result_set(dir, load::Histograms::Read)?;
    if !options.labels.is_empty() {
        let present: BTreeSet<&str> = set
            .cells
            .iter()
            .map(|data| data.cell.label.as_str())
            .chain(set.faults.iter().flatten().map(|row| row.label.as_str()))
            .collect();
        if let Some(unknown) = options
            .labels
            .iter()
            .find(|label| !present.contains(label.as_str()))
        {
            let known: Vec<&str> = present.into_iter().collect();
            anyhow::bail!(
                "--labels: {unknown} is not a label of {} (it has {})",
                dir.display(),
                known.join(", ")
            );
        }
        let wanted = |label: &str| options.labels.iter().any(|wanted| wanted == label);
        set.cells.retain(|data| wanted(&data.cell.label));
        if let Some(rows) = &mut set.faults {
            rows.retain(|row| wanted(&row.label));
        }
    }
    let mut document = document::build(&set);
    if options.paper {
        let keep = select::paper_charts(&document);
        document = select::keep_charts(&document, &keep);
    }
    let svgs = document
        .charts
        .par_iter()
        .map(|chart| charts::render(chart).with_context(|| format!("cannot draw chart {}", chart.file)))
        .collect::<anyhow::Result<Vec<String>>>()?;
    let exports = svgs
        .par_iter()
        .zip(&document.charts)
        .map(|(svg, chart)| {
            export::png_and_pdf(svg).with_context(|| format!("cannot export chart {}", chart.file))
        })
        .collect::<anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>>>()?;
    let markdown = markdown::render(&document);
    let html = html::render(&document, &svgs);
    let labels = groups::Labels::new(set.cells.iter().map(|data| data.cell.label.as_str()));
    let latex = export::latex_summary(&groups::scenarios(&set.cells, &labels));

    let out = options.out.clone().unwrap_or_else(|| dir.to_path_buf());
    std::fs::create_dir_all(&out).with_context(|| format!("--out: cannot create {}", out.display()))?;
    let charts_dir = out.join("charts");
    std::fs::create_dir_all(&charts_dir)
        .with_context(|| format!("cannot create {}", charts_dir.display()))?;
    let planned: BTreeSet<&str> = document
        .charts
        .iter()
        .map(|chart| chart.file.trim_end_matches(".svg"))
        .collect();
    remove_stale_charts(&charts_dir, &planned)?;
    for ((chart, svg), (png, pdf)) in document.charts.iter().zip(&svgs).zip(&exports) {
        write(&charts_dir.join(&chart.file), svg)?;
        let stem = chart.file.trim_end_matches(".svg");
        write_bytes(&charts_dir.join(format!("{stem}.png")), png)?;
        write_bytes(&charts_dir.join(format!("{stem}.pdf")), pdf)?;
        if let Some(csv) = export::csv(chart) {
            write(&charts_dir.join(format!("{stem}.csv")), &csv)?;
        }
    }
    write(&out.join("summary.tex"), &latex)?;
    write(&out.join("report.md"), &markdown)?;
    write(&out.join("report.html"), &html)?;
    if set.tour.is_some() {
        let lesson = document::Document {
            title: "echolab tour".to_owned(),
            sections: document
                .sections
                .iter()
                .filter(|section| tour::is_tour_section(section))
                .cloned()
                .collect(),
            ..document.clone()
        };
        write(&out.join("tour.md"), &markdown::render(&lesson))?;
    }
    Ok(out)
}

/// Writes the report of the result set `out` (see [`generate`]), then says
/// where both are, after a blank line.
pub fn generate_and_announce(out: &Path) -> anyhow::Result<()> {
    generate_and_announce_after(out, "\n")
}

/// [`generate_and_announce`], printing `before` (a summary, or nothing)
/// between writing the report and the two lines that say where it is.
pub fn generate_and_announce_after(out: &Path, before: &str) -> anyhow::Result<()> {
    generate(out).with_context(|| format!("cannot write the report of {}", out.display()))?;
    print!("{before}");
    println!("result set: {}", out.display());
    println!("report:     {}", out.join("report.md").display());
    Ok(())
}

fn write_bytes(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

/// Charts (and their exports) left from an earlier report of a different
/// result set shape; `planned` holds the stems of this report's charts.
fn remove_stale_charts(charts_dir: &Path, planned: &BTreeSet<&str>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(charts_dir).with_context(|| format!("cannot read {}", charts_dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", charts_dir.display()))?
            .path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        let stale = [".svg", ".png", ".pdf", ".csv"]
            .iter()
            .find_map(|extension| name.strip_suffix(extension))
            .is_some_and(|stem| !planned.contains(stem));
        if stale {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}
