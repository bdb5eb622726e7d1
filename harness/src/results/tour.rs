//! `tour.json`: what `harness tour` found, one entry per step, read by the
//! report. An array, in step order:
//!
//! ```text
//! [ { "step": 3, "title": "…", "claim": "…", "source": "…", "measures": "…",
//!     "verdict": "confirmed" | "not confirmed here" | "skipped",
//!     "reason": "…", "measured": { "nonblocking_cpu_percent": 97.0, … },
//!     "threshold": "…", "reference": "…" | absent, "notes": [ "…" ],
//!     "chart": { "title": "…", "unit": "…", "bars": [ { "label": "…", "value": 97.0, "model": "nonblocking" } ] } | null,
//!     "mode": "full" | "quick", "cells": [ "nonblocking--step03-open-r10-c1-s64-i10" ],
//!     "n": 1, "margin": { "figure": "nonblocking_cpu_percent", "measured": 97.0,
//!       "bound": "at least", "threshold": 80.0, "margin": 17.0, "ratio": 1.2125 } } ]
//! ```
//!
//! `n` and `margin` are absent for a skipped step: `n` is how many runs of
//! each measurement the figures come from, `margin` the deciding figure
//! against its threshold ([`Margin`]).
//!
//! `measured` keeps the order the step wrote its figures in; every figure
//! is a number the step measured (or a ratio of two), named with its unit.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file's name in a result set.
pub const FILE: &str = "tour.json";

/// A step's verdict on its claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// The measured figures meet the claim's threshold.
    #[serde(rename = "confirmed")]
    Confirmed,
    /// They were measured and do not: the reason gives the ratio and the
    /// likely cause.
    #[serde(rename = "not confirmed here")]
    NotConfirmedHere,
    /// Nothing was judged: a model missing, a facility unavailable, too few
    /// CPUs, or the measurement failed. The reason says which.
    #[serde(rename = "skipped")]
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::NotConfirmedHere => "not confirmed here",
            Verdict::Skipped => "skipped",
        }
    }
}

/// `step05`: how a step names its cells' scenarios (`step05-closed-c1-s64`)
/// and its failures.
pub fn step_tag(step: u32) -> String {
    format!("step{step:02}")
}

/// `8 confirmed, 2 not confirmed here, 1 skipped`.
pub fn tally<'a>(entries: impl IntoIterator<Item = &'a TourEntry>) -> String {
    let (mut confirmed, mut not_confirmed, mut skipped) = (0, 0, 0);
    for entry in entries {
        match entry.verdict {
            Verdict::Confirmed => confirmed += 1,
            Verdict::NotConfirmedHere => not_confirmed += 1,
            Verdict::Skipped => skipped += 1,
        }
    }
    format!("{confirmed} confirmed, {not_confirmed} not confirmed here, {skipped} skipped")
}

/// One step of the tour, as run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TourEntry {
    pub step: u32,
    pub title: String,
    /// The claim, as the course (or the book) makes it.
    pub claim: String,
    /// Where the claim comes from.
    pub source: String,
    /// What the step measures to check it.
    pub measures: String,
    pub verdict: Verdict,
    /// Why this verdict, with the deciding figures.
    pub reason: String,
    /// The figures measured, named with their units, in the step's order.
    pub measured: IndexMap<String, f64>,
    /// The threshold the verdict applies, as written next to it in the code.
    pub threshold: String,
    /// Published figures shown beside the measured ones (not measured here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Per-model lines, parts that were skipped, contradictions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The step's chart; null when nothing was measured.
    pub chart: Option<TourChart>,
    /// `full` or `quick` (fewer points, shorter cells).
    pub mode: String,
    /// The file stems of the cells the step wrote under `cells/`.
    #[serde(default)]
    pub cells: Vec<String>,
    /// How many runs of each measurement the deciding figure comes from
    /// (the tour takes each once, so no CI); absent when skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// The deciding figure against its threshold; absent when skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<Margin>,
}

/// Which side of its threshold a figure must be on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Bound {
    #[serde(rename = "at least")]
    AtLeast,
    #[serde(rename = "at most")]
    AtMost,
}

/// A measured figure held against its threshold: the margin between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Margin {
    /// The figure, as named in `measured` (or what the threshold is built
    /// from: `threaded_msgs_per_sec vs 1.5 × epoll_msgs_per_sec`).
    pub figure: String,
    pub measured: f64,
    pub bound: Bound,
    pub threshold: f64,
    /// `measured − threshold` signed so that a positive margin meets the
    /// threshold with that much to spare and a negative one falls short.
    pub margin: f64,
    /// `measured / threshold`; null for a threshold of 0.
    pub ratio: Option<f64>,
}

impl Margin {
    /// `figure` must be at least `threshold`.
    pub fn at_least(figure: impl Into<String>, measured: f64, threshold: f64) -> Margin {
        Margin::new(figure.into(), measured, Bound::AtLeast, threshold)
    }

    /// `figure` must be at most `threshold`.
    pub fn at_most(figure: impl Into<String>, measured: f64, threshold: f64) -> Margin {
        Margin::new(figure.into(), measured, Bound::AtMost, threshold)
    }

    fn new(figure: String, measured: f64, bound: Bound, threshold: f64) -> Margin {
        let margin = match bound {
            Bound::AtLeast => measured - threshold,
            Bound::AtMost => threshold - measured,
        };
        Margin {
            figure,
            measured,
            bound,
            threshold,
            margin,
            ratio: (threshold != 0.0).then(|| measured / threshold),
        }
    }

    pub fn met(&self) -> bool {
        self.margin >= 0.0
    }

    /// The margin as a share of the threshold, to rank figures of
    /// different units; a threshold of 0 is all or nothing.
    fn relative(&self) -> f64 {
        if self.threshold == 0.0 {
            if self.met() {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            }
        } else {
            self.margin / self.threshold.abs()
        }
    }

    /// Of several checks, the one that decides: the farthest short of its
    /// threshold, or, when all are met, the nearest to it.
    pub fn deciding(checks: &[Margin]) -> Option<&Margin> {
        checks.iter().min_by(|a, b| a.relative().total_cmp(&b.relative()))
    }

    /// `select_growth 1.39 against at least 2: 0.61 short (0.695 of the threshold)`,
    /// the numbers written by `number`.
    pub fn text(&self, number: impl Fn(f64) -> String) -> String {
        let bound = match self.bound {
            Bound::AtLeast => "at least",
            Bound::AtMost => "at most",
        };
        let side = if self.met() {
            format!("{} to spare", number(self.margin))
        } else {
            format!("{} short", number(-self.margin))
        };
        let ratio = self.ratio.map_or_else(String::new, |ratio| {
            format!(" ({} of the threshold)", number(ratio))
        });
        format!(
            "{} {} against {bound} {}: {side}{ratio}",
            self.figure,
            number(self.measured),
            number(self.threshold)
        )
    }
}

/// One bar chart: a value per bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TourChart {
    pub title: String,
    /// The values' unit, shown on the axis.
    pub unit: String,
    pub bars: Vec<TourBar>,
    /// Cut a bar far longer than the others at the axis end (labelled with
    /// its value), so that one outlier does not flatten the rest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut_outliers: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TourBar {
    pub label: String,
    pub value: f64,
    /// The model the bar measures, so it keeps the model's colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// Reads `dir/tour.json`; `None` when the result set has none.
pub fn read(dir: &Path) -> anyhow::Result<Option<Vec<TourEntry>>> {
    super::files::read_json_if_present(&dir.join(FILE), "a tour document")
}

/// Writes `dir/tour.json`, entries sorted by step.
pub fn write(dir: &Path, entries: &[TourEntry]) -> anyhow::Result<()> {
    let mut sorted = entries.to_vec();
    sorted.sort_by_key(|entry| entry.step);
    super::files::write_json(&dir.join(FILE), &sorted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tour_round_trips_with_its_figures_in_order() {
        let mut measured = IndexMap::new();
        measured.insert("zeta_percent".to_owned(), 97.5);
        measured.insert("alpha_percent".to_owned(), 0.25);
        let entry = TourEntry {
            step: 3,
            title: "t".into(),
            claim: "c".into(),
            source: "s".into(),
            measures: "m".into(),
            verdict: Verdict::NotConfirmedHere,
            reason: "r".into(),
            measured,
            threshold: "≥ 80%".into(),
            reference: None,
            notes: Vec::new(),
            chart: None,
            mode: "quick".into(),
            cells: vec!["epoll--step03-x".into()],
            n: Some(1),
            margin: Some(Margin::at_least("zeta_percent", 97.5, 80.0)),
        };
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), std::slice::from_ref(&entry)).unwrap();
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(text.contains("\"verdict\": \"not confirmed here\""), "{text}");
        assert!(text.contains("\"bound\": \"at least\""), "{text}");
        assert!(
            text.find("zeta_percent").unwrap() < text.find("alpha_percent").unwrap(),
            "figures keep their order: {text}"
        );
        assert_eq!(read(dir.path()).unwrap().unwrap(), vec![entry]);
        assert!(read(&dir.path().join("none")).unwrap().is_none());
    }

    #[test]
    fn steps_are_tagged_and_verdicts_tallied() {
        assert_eq!(step_tag(5), "step05");
        assert_eq!(step_tag(11), "step11");
        let entry = |verdict| TourEntry {
            step: 1,
            title: String::new(),
            claim: String::new(),
            source: String::new(),
            measures: String::new(),
            verdict,
            reason: String::new(),
            measured: IndexMap::new(),
            threshold: String::new(),
            reference: None,
            notes: Vec::new(),
            chart: None,
            mode: "quick".into(),
            cells: Vec::new(),
            n: None,
            margin: None,
        };
        let entries = [
            entry(Verdict::Confirmed),
            entry(Verdict::Skipped),
            entry(Verdict::Confirmed),
        ];
        assert_eq!(tally(&entries), "2 confirmed, 0 not confirmed here, 1 skipped");
    }
}

#[cfg(test)]
mod margin_tests {
    use super::*;

    #[test]
    fn a_margin_is_signed_by_the_side_of_its_threshold() {
        let short = Margin::at_least("growth", 1.39, 1.5);
        assert!(!short.met());
        assert!((short.margin + 0.11).abs() < 1e-9, "{short:?}");
        let spare = Margin::at_most("epoll_cpu_percent", 2.0, 10.0);
        assert!(spare.met());
        assert_eq!((spare.margin, spare.ratio), (8.0, Some(0.2)));
        let text = short.text(|value| format!("{value:.2}"));
        assert_eq!(
            text,
            "growth 1.39 against at least 1.50: 0.11 short (0.93 of the threshold)"
        );
        // The deciding check: the farthest short, else the nearest met.
        let busy = Margin::at_least("busy", 97.0, 80.0);
        assert_eq!(Margin::deciding(&[spare.clone(), busy.clone()]), Some(&busy));
        assert_eq!(Margin::deciding(&[spare, short.clone(), busy]), Some(&short));
        let unserved = Margin::at_most("unserved", 1.0, 0.0);
        assert_eq!(unserved.ratio, None);
        assert_eq!(Margin::deciding(&[short, unserved.clone()]), Some(&unserved));
    }
}
