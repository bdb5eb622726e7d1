//! A cell's three files in a result set, written and read back:
//!
//! - `LABEL--SCENARIO.json`: the [`Cell`] document.
//! - `LABEL--SCENARIO.hgrm`: the whole measurement's percentile distribution,
//!   exactly as HdrHistogram's `outputPercentileDistribution` prints it
//!   (values in microseconds, 5 ticks per half distance), which the
//!   HdrHistogram plotter reads.
//! - `LABEL--SCENARIO.hlog`: one histogram per second of the measurement
//!   (nanoseconds), an HdrHistogram interval log as `HistogramLogProcessor`
//!   reads it. Interval start times are seconds since the measurement began;
//!   no wall-clock time is written, so a result set does not change with the
//!   day it was produced on. A cell merged from several load hosts also
//!   keeps each host's intervals, tagged `Tag=host-K` (HdrHistogram's own
//!   tools select one with their tag option); readers here take the
//!   untagged intervals, the cell's own.

use crate::results::cell::{Cell, CellRecord};
use anyhow::{Context, anyhow};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Percentile ticks per half distance to 100%, as the Java tools default to.
const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Histograms hold nanoseconds; `.hgrm` shows microseconds.
const NANOS_PER_MICRO: f64 = 1_000.0;
/// The `.hlog` max column in milliseconds, like Java's `HistogramLogWriter`.
const NANOS_PER_MILLI: f64 = 1_000_000.0;

/// One row of a `.hgrm` file.
#[derive(Debug, Clone, PartialEq)]
pub struct HgrmRow {
    /// Microseconds.
    pub value: f64,
    /// From 0 to 1.
    pub percentile: f64,
    pub total_count: u64,
    /// `1/(1-Percentile)`; absent on the last row (percentile 1).
    pub inverse: Option<f64>,
}

/// Writes the cell's `.json`, `.hgrm` and `.hlog` into `cells_dir`.
pub fn write_cell(cells_dir: &Path, record: &CellRecord, repeats: u32) -> anyhow::Result<()> {
    write_merged_cell(cells_dir, record, repeats, &[])
}

/// [`write_cell`] for a cell merged from load hosts: `.hlog` also holds
/// each host's intervals under its tag (`host-1`, ...), after the cell's
/// own interval of the same second.
pub fn write_merged_cell(
    cells_dir: &Path,
    record: &CellRecord,
    repeats: u32,
    hosts: &[(String, Vec<Histogram<u64>>)],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(cells_dir).with_context(|| format!("cannot create {}", cells_dir.display()))?;
    let stem = record.cell.file_stem(repeats);
    let write = |extension: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let path = cells_dir.join(format!("{stem}.{extension}"));
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    write_json(&cells_dir.join(format!("{stem}.json")), &record.cell)?;
    write("hgrm", percentile_distribution(&record.histogram).as_bytes())?;
    write(
        "hlog",
        &interval_log(&record.intervals, record.cell.duration_s, hosts)?,
    )?;
    Ok(())
}

/// Writes `value` into `path` as pretty JSON and a final newline.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads the JSON document in `path`; `None` when there is no such file.
/// `what` names the document in the error (`"a tour document"`).
pub fn read_json_if_present<T: DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<Option<T>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value = serde_json::from_str(&text).with_context(|| format!("{} is not {what}", path.display()))?;
    Ok(Some(value))
}

/// Whether `cells_dir` holds anything (an error when it cannot be read,
/// `NotFound` included: callers decide what that means).
pub(crate) fn has_cells(cells_dir: &Path) -> std::io::Result<bool> {
    Ok(std::fs::read_dir(cells_dir)?.next().is_some())
}

/// What [`ensure_no_cells`] makes of a cells directory it cannot read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unreadable {
    /// No cells (a directory not made yet, for one).
    Empty,
    /// An error: `cannot read DIR`.
    Fail,
}

/// Refuses a `cells_dir` that already holds cells, with the sentence
/// `DIR already holds cells{hint}`.
pub(crate) fn ensure_no_cells(cells_dir: &Path, hint: &str, unreadable: Unreadable) -> anyhow::Result<()> {
    let holds = match unreadable {
        Unreadable::Empty => has_cells(cells_dir).unwrap_or(false),
        Unreadable::Fail => {
            has_cells(cells_dir).with_context(|| format!("cannot read {}", cells_dir.display()))?
        }
    };
    if holds {
        anyhow::bail!("{} already holds cells{hint}", cells_dir.display());
    }
    Ok(())
}

/// Fails early, before any load, when `dir` cannot take a result's files.
pub(crate) fn check_writable(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    let probe = dir.join(".harness-write-check");
    std::fs::write(&probe, b"")
        .with_context(|| format!("cannot write into output directory {}", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// The path of a cell's `.hgrm` or `.hlog` (`extension`), refusing a missing file.
pub(crate) fn required(cells_dir: &Path, stem: &str, extension: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = cells_dir.join(format!("{stem}.{extension}"));
    if !path.is_file() {
        anyhow::bail!(
            "{} is missing (every cell has a .json, a .hgrm and a .hlog file)",
            path.display()
        );
    }
    Ok(path)
}

/// The text `outputPercentileDistribution(out, 5, 1000.0)` prints for a
/// nanosecond histogram.
pub fn percentile_distribution(histogram: &Histogram<u64>) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total_count = 0u64;
    if !histogram.is_empty() {
        for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total_count += step.count_since_last_iteration();
            let value = step.value_iterated_to() as f64 / NANOS_PER_MICRO;
            let percentile = step.quantile_iterated_to();
            if percentile < 1.0 {
                let inverse = 1.0 / (1.0 - percentile);
                let _ = writeln!(
                    text,
                    "{value:12.3} {percentile:2.12} {total_count:10} {inverse:14.2}"
                );
            } else {
                let _ = writeln!(text, "{value:12.3} {percentile:2.12} {total_count:10}");
            }
        }
    }
    let mean = histogram.mean() / NANOS_PER_MICRO;
    let deviation = histogram.stdev() / NANOS_PER_MICRO;
    let max = histogram.max() as f64 / NANOS_PER_MICRO;
    let _ = writeln!(
        text,
        "#[Mean    = {mean:12.3}, StdDeviation   = {deviation:12.3}]"
    );
    let _ = writeln!(
        text,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        histogram.len()
    );
    let _ = writeln!(
        text,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        histogram.buckets(),
        sub_bucket_count(histogram.sigfig())
    );
    text
}

/// HdrHistogram's sub-bucket count for `sigfig` significant digits.
fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest_single_unit = 2 * 10u64.pow(u32::from(sigfig));
    let magnitude = 64 - (largest_single_unit - 1).leading_zeros();
    1 << magnitude
}

/// An interval log of one histogram per second; the last one may be shorter.
/// Each second's tagged histograms (`hosts`) follow its untagged one.
fn interval_log(
    intervals: &[Histogram<u64>],
    duration_s: f64,
    hosts: &[(String, Vec<Histogram<u64>>)],
) -> anyhow::Result<Vec<u8>> {
    let hosts = hosts
        .iter()
        .map(|(text, seconds)| {
            let tag = Tag::new(text).with_context(|| format!("'{text}' cannot be an interval log tag"))?;
            Ok((tag, seconds.as_slice()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut log = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut header = IntervalLogWriterBuilder::new();
        header.add_comment(&format!("[Logged with harness {}]", env!("CARGO_PKG_VERSION")));
        header.add_comment("[Histogram log format version 1.3]");
        header.add_comment("[Latencies in nanoseconds; start times in seconds since the measurement began]");
        header.begin_log_with(&mut log, &mut serializer)?;
    }
    log.extend_from_slice(
        b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
    );
    let mut writer = IntervalLogWriterBuilder::new()
        .with_max_value_divisor(NANOS_PER_MILLI)
        .begin_log_with(&mut log, &mut serializer)?;
    for (second, histogram) in intervals.iter().enumerate() {
        let start = second as f64;
        let length = (duration_s - start).clamp(0.0, 1.0);
        let own = std::iter::once((None, histogram));
        let tagged = hosts
            .iter()
            .filter_map(|&(tag, seconds)| Some((Some(tag), seconds.get(second)?)));
        for (tag, histogram) in own.chain(tagged) {
            writer
                .write_histogram(
                    histogram,
                    Duration::from_secs(second as u64),
                    Duration::from_secs_f64(length),
                    tag,
                )
                .map_err(|error| anyhow!("cannot encode an interval histogram: {error}"))?;
        }
    }
    Ok(log)
}

/// The stems of `cells/*.json`, sorted.
pub fn cell_stems(cells_dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries =
        std::fs::read_dir(cells_dir).with_context(|| format!("cannot read {}", cells_dir.display()))?;
    let mut stems = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", cells_dir.display()))?
            .path();
        if path.extension().is_some_and(|extension| extension == "json") {
            let stem = path.file_stem().and_then(|stem| stem.to_str());
            let stem = stem.with_context(|| format!("{}: file name is not UTF-8", path.display()))?;
            stems.push(stem.to_owned());
        }
    }
    stems.sort();
    Ok(stems)
}

/// Reads a cell's `.json`.
pub fn read_cell_json(path: &Path) -> anyhow::Result<Cell> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a cell document", path.display()))
}

/// Reads the rows of a `.hgrm` file.
pub fn read_hgrm(path: &Path) -> anyhow::Result<Vec<HgrmRow>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("Value") {
            continue;
        }
        let bad = || {
            anyhow!(
                "{} line {}: not a percentile row: '{line}'",
                path.display(),
                number + 1
            )
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !(3..=4).contains(&fields.len()) {
            return Err(bad());
        }
        rows.push(HgrmRow {
            value: fields[0].parse().map_err(|_| bad())?,
            percentile: fields[1].parse().map_err(|_| bad())?,
            total_count: fields[2].parse().map_err(|_| bad())?,
            inverse: match fields.get(3) {
                Some(field) => Some(field.parse().map_err(|_| bad())?),
                None => None,
            },
        });
    }
    Ok(rows)
}

/// Reads a `.hlog` file: each untagged interval's start (seconds) and
/// histogram (a merged cell's per-host, tagged intervals are skipped).
pub fn read_hlog(path: &Path) -> anyhow::Result<Vec<(f64, Histogram<u64>)>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut deserializer = Deserializer::new();
    let mut intervals = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|error| anyhow!("{} is not an interval log: {error:?}", path.display()))?;
        let LogEntry::Interval(interval) = entry else {
            continue;
        };
        if interval.tag().is_some() {
            continue;
        }
        let encoded = BASE64
            .decode(interval.encoded_histogram().trim_end())
            .with_context(|| format!("{}: an interval is not base64", path.display()))?;
        let histogram: Histogram<u64> =
            deserializer
                .deserialize(&mut encoded.as_slice())
                .map_err(|error| {
                    anyhow!(
                        "{}: an interval histogram does not decode: {error:?}",
                        path.display()
                    )
                })?;
        intervals.push((interval.start_timestamp().as_secs_f64(), histogram));
    }
    Ok(intervals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_distribution_has_the_java_layout() {
        let mut histogram = crate::load::recorder::new_histogram();
        for value in 1..=1000u64 {
            histogram.record(value * 1000).unwrap();
        }
        let text = percentile_distribution(&histogram);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines.next().unwrap(), "");
        assert!(text.contains("#[Buckets = "));
        assert!(text.contains("SubBuckets     =         2048]"));
        let last_row = text.lines().rfind(|line| !line.starts_with('#')).unwrap();
        assert!(last_row.contains(" 1.000000000000       1000"), "{last_row}");
    }
}
