//! The report's view of a result set's raw files: `manifest.json` as free-form
//! JSON, and each cell's files through [`crate::results::files`], reduced to
//! what the charts draw. Each error names the file it came from.

use crate::results::cell::Cell;
use crate::results::files;
use anyhow::{Context, bail};
use std::path::Path;

/// One row of a `.hgrm` file: the latency at or below which `percentile`
/// (0..=1) of the messages fell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PercentileRow {
    pub value_us: f64,
    pub percentile: f64,
}

/// One interval of a `.hlog` file, summarised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalSummary {
    /// Seconds from the start of the first interval to this interval's start.
    pub start_s: f64,
    /// And to its end.
    pub end_s: f64,
    pub count: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

/// `manifest.json`: any JSON object.
pub fn manifest(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
    if !value.is_object() {
        bail!("{} is not a JSON object", path.display());
    }
    Ok(value)
}

/// `cells/*.json`: one [`Cell`].
pub fn cell(path: &Path) -> anyhow::Result<Cell> {
    files::read_cell_json(path)
}

/// `cells/*.hgrm`: the percentile distribution (values in µs). Empty when
/// the cell recorded no message.
pub fn percentile_distribution(path: &Path) -> anyhow::Result<Vec<PercentileRow>> {
    let rows: Vec<PercentileRow> = files::read_hgrm(path)?
        .into_iter()
        .map(|row| PercentileRow {
            value_us: row.value,
            percentile: row.percentile,
        })
        .collect();
    let in_range = |row: &PercentileRow| {
        row.value_us.is_finite() && row.value_us >= 0.0 && (0.0..=1.0).contains(&row.percentile)
    };
    if !rows.iter().all(in_range) {
        bail!("{}: a value or percentile is out of range", path.display());
    }
    if rows
        .windows(2)
        .any(|pair| pair[1].percentile < pair[0].percentile)
    {
        bail!("{}: percentiles are not in ascending order", path.display());
    }
    Ok(rows)
}

/// `cells/*.hlog`: one histogram (ns) per second of a measurement lasting
/// `duration_s`, summarised in µs.
pub fn interval_log(path: &Path, duration_s: f64) -> anyhow::Result<Vec<IntervalSummary>> {
    let intervals = files::read_hlog(path)?;
    let origin = intervals.first().map_or(0.0, |(start, _)| *start);
    let summaries = intervals
        .iter()
        .map(|(start, histogram)| {
            let start = start - origin;
            // Intervals last one second; the last one ends with the measurement.
            let end = if duration_s > start {
                (start + 1.0).min(duration_s)
            } else {
                start + 1.0
            };
            IntervalSummary {
                start_s: start,
                end_s: end,
                count: histogram.len(),
                p50_us: histogram.value_at_quantile(0.5) as f64 / 1000.0,
                p99_us: histogram.value_at_quantile(0.99) as f64 / 1000.0,
                max_us: histogram.max() as f64 / 1000.0,
            }
        })
        .collect();
    Ok(summaries)
}
