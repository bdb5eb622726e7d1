//! The tour as the report's first sections, from `tour.json` alone: an
//! overview of every claim and its verdict, then one section per step with
//! its claim, source, what was measured, the threshold, the verdict and its
//! reason, one chart and the measured figures.

use super::charts::{Bar, BarChart, ChartBody};
use super::document::{Builder, Section, Table, capitalise};
use super::groups::{Spread, figure, part_colour};
use crate::results::tour::{self, TourEntry};

/// The sections, in order: `tour`, then `tour-step-N` for each step.
pub fn sections(entries: &[TourEntry], builder: &mut Builder) -> Vec<Section> {
    let mut entries: Vec<&TourEntry> = entries.iter().collect();
    entries.sort_by_key(|entry| entry.step);
    let mut sections = vec![overview(&entries)];
    for entry in entries {
        sections.push(step_section(entry, builder));
    }
    sections
}

/// True for the sections [`sections`] makes (for `tour.md`).
pub fn is_tour_section(section: &Section) -> bool {
    section.id == "tour" || section.id.starts_with("tour-step-")
}

fn overview(entries: &[&TourEntry]) -> Section {
    let modes: Vec<&str> = {
        let mut modes: Vec<&str> = entries.iter().map(|entry| entry.mode.as_str()).collect();
        modes.sort_unstable();
        modes.dedup();
        modes
    };
    Section {
        id: "tour".to_owned(),
        title: "Tour: the course, claim by claim".to_owned(),
        paragraphs: vec![
            "Each step takes one claim the course (or a book) makes in prose, measures it on this machine, and \
             gives a verdict against a threshold written next to the claim in harness/src/tour/steps.rs: \
             confirmed; not confirmed here, with the measured ratio and the likely reason; or skipped, with why \
             (a model that is not built, a facility or CPUs this machine lacks)."
                .to_owned(),
            format!(
                "{} step{} ({} mode): {}.",
                entries.len(),
                if entries.len() == 1 { "" } else { "s" },
                modes.join(" and "),
                tour::tally(entries.iter().copied())
            ),
        ],
        charts: Vec::new(),
        table: Some(Table {
            headers: ["step", "verdict", "claim"]
                .iter()
                .map(|header| header.to_string())
                .collect(),
            rows: entries
                .iter()
                .map(|entry| {
                    vec![
                        entry.step.to_string(),
                        entry.verdict.as_str().to_owned(),
                        entry.title.clone(),
                    ]
                })
                .collect(),
        }),
    }
}

fn step_section(entry: &TourEntry, builder: &mut Builder) -> Section {
    let mut paragraphs = vec![
        format!("Claim: {}", entry.claim),
        format!("Source: {}", entry.source),
        format!("Measured: {}", entry.measures),
        format!("Threshold: {}.", entry.threshold),
        format!(
            "Verdict: {}. {}.",
            entry.verdict.as_str().to_uppercase(),
            capitalise(&entry.reason)
        ),
    ];
    if let (Some(n), Some(margin)) = (entry.n, &entry.margin) {
        paragraphs.push(format!(
            "Margin: n = {n}; {}.",
            margin.text(crate::report::groups::figure)
        ));
    }
    if let Some(reference) = &entry.reference {
        paragraphs.push(format!("Reference (published, not measured here): {reference}"));
    }
    for note in &entry.notes {
        paragraphs.push(format!("- {note}"));
    }
    if !entry.cells.is_empty() {
        paragraphs.push(format!(
            "Cells ({} mode): {}.",
            entry.mode,
            entry.cells.join(", ")
        ));
    }
    let mut charts = Vec::new();
    if let Some(chart) = &entry.chart {
        let bars = chart
            .bars
            .iter()
            .enumerate()
            .map(|(index, bar)| Bar {
                label: bar.label.clone(),
                colour: match &bar.model {
                    Some(model) => builder.labels.colour(model),
                    None => part_colour(index),
                },
                value: Spread::one(bar.value),
                flagged: false,
            })
            .collect();
        charts.push(builder.add_chart(
            &format!("tour-{}", tour::step_tag(entry.step)),
            format!("Step {}: {}", entry.step, chart.title),
            ChartBody::Bars(BarChart {
                value_label: chart.unit.clone(),
                bars,
                cut_outliers: chart.cut_outliers,
            }),
        ));
    }
    let table = (!entry.measured.is_empty()).then(|| Table {
        headers: vec!["figure".to_owned(), "measured".to_owned()],
        rows: entry
            .measured
            .iter()
            .map(|(name, value)| vec![name.clone(), figure(*value)])
            .collect(),
    });
    Section {
        id: format!("tour-step-{}", entry.step),
        title: format!("Tour step {}: {}", entry.step, entry.title),
        paragraphs,
        charts,
        table,
    }
}
