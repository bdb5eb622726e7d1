//! What a report draws: every chart (`--charts full`), or a bounded set for
//! a paper (`--charts paper`), and which labels (`--labels A,B`).
//!
//! The paper rule: at most [`PAPER_FIGURES`] figures, taken in this order
//! until the budget is spent: the figures the findings link to (in the
//! findings' order), then the throughput and p99 charts of each sweep (in
//! the report's order), then the CPU and memory charts of each connection
//! sweep. A chart keeps its file name (its id) in both modes.

use super::document::Document;
use std::collections::BTreeMap;

/// A figure budget a page of a paper can hold.
pub const PAPER_FIGURES: usize = 8;

/// `--charts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Charts {
    /// Every chart.
    Full,
    /// At most 8 figures, chosen by the rule in `report/select.rs`.
    Paper,
}

/// The charts the paper rule keeps, as indexes into `document.charts`, in
/// the order the rule took them.
pub fn paper_charts(document: &Document) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::new();
    let take = |index: usize, chosen: &mut Vec<usize>| {
        if chosen.len() < PAPER_FIGURES && !chosen.contains(&index) {
            chosen.push(index);
        }
    };
    for finding in &document.findings {
        if let Some(index) = finding.chart {
            take(index, &mut chosen);
        }
    }
    let sweep_chart = |index: &usize, suffixes: &[&str], prefix: &str| {
        let file = &document.charts[*index].file;
        file.starts_with(prefix) && suffixes.iter().any(|suffix| file.ends_with(suffix))
    };
    let in_sections: Vec<usize> = document
        .sections
        .iter()
        .flat_map(|section| section.charts.iter().copied())
        .collect();
    for prefix in ["connections-", "rate-", "idle-"] {
        for index in in_sections
            .iter()
            .filter(|index| sweep_chart(index, &["--throughput.svg", "--p99.svg"], prefix))
        {
            take(*index, &mut chosen);
        }
    }
    for index in in_sections
        .iter()
        .filter(|index| sweep_chart(index, &["--cpu.svg", "--memory.svg"], "connections-"))
    {
        take(*index, &mut chosen);
    }
    chosen
}

/// `document` with only the charts in `keep`: sections and findings refer
/// to the kept charts by their new indexes; a finding whose chart is gone
/// keeps its sentence without a link.
pub fn keep_charts(document: &Document, keep: &[usize]) -> Document {
    let mut kept: Vec<usize> = keep.to_vec();
    kept.sort_unstable();
    let renumber: BTreeMap<usize, usize> = kept.iter().enumerate().map(|(new, old)| (*old, new)).collect();
    let mut out = document.clone();
    out.charts = kept.iter().map(|index| document.charts[*index].clone()).collect();
    for section in out.sections.iter_mut().chain(&mut out.appendix) {
        section.charts = section
            .charts
            .iter()
            .filter_map(|index| renumber.get(index).copied())
            .collect();
    }
    for finding in &mut out.findings {
        finding.chart = finding.chart.and_then(|index| renumber.get(&index).copied());
    }
    out
}
