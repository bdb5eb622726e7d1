//! The report's **Findings**: at most [`MAX_FINDINGS`] sentences written
//! from the data by the rules below, each with its numbers, their
//! uncertainty ([`stats::Summary::text`]: median [95% CI] where n ≥ 6,
//! min–max and "n = 3: no CI" otherwise) and the figure that shows it.
//!
//! A rule writes no sentence the data does not support. Each rule's
//! threshold sits next to it:
//! - [`leaders`]: who leads each sweep at its heaviest point, or that the
//!   leaders cannot be told apart ([`apart`]);
//! - [`failing`]: where a model starts failing (starved connections, errors);
//! - [`stops_scaling`]: where a model's throughput stops growing with
//!   connections ([`STOPS_SCALING_DROP`]);
//! - [`largest_costs`]: the largest difference in CPU per message, memory
//!   per connection and system calls per message ([`COST_RATIO`]).

use super::groups::{Entry, Scenario, Sweep, SweepAxis, count, kib, number};
use crate::results::cell::{Cell, Flag};
use crate::stats::{self, Summary};
use std::collections::BTreeMap;

/// The Findings list is short enough to read before the first figure.
pub const MAX_FINDINGS: usize = 10;

/// A sentence names at most this many labels, then says how many more.
const NAMED: usize = 4;

/// One sentence and the chart (an index into the document's charts) that
/// shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub text: String,
    pub chart: Option<usize>,
}

/// Where a finding's figure is: the chart drawn for a sweep's metric
/// (`"throughput"`, `"p99"`, `"cpu"`, `"memory"`), or for a scenario's
/// system calls (`"syscalls"`), keyed by the sweep's or scenario's key.
pub type ChartIndex = BTreeMap<(String, &'static str), usize>;

/// What a finding compares: a figure of a cell, which way is better, and
/// how it is written.
struct Measure {
    name: &'static str,
    /// What is measured, in words.
    what: &'static str,
    /// Written after a number.
    unit: &'static str,
    higher_is_better: bool,
    value: fn(&Cell) -> Option<f64>,
    format: fn(f64) -> String,
}

const THROUGHPUT: Measure = Measure {
    name: "throughput",
    what: "throughput",
    unit: "msgs/s",
    higher_is_better: true,
    value: super::document::THROUGHPUT.value,
    format: count,
};
const P99: Measure = Measure {
    name: "p99",
    what: "p99 latency",
    unit: "µs",
    higher_is_better: false,
    value: super::document::P99.value,
    format: number,
};
const CPU: Measure = Measure {
    name: "cpu",
    what: "server CPU per message",
    unit: "µs/msg",
    higher_is_better: false,
    value: super::document::CPU_PER_MESSAGE.value,
    format: number,
};
const MEMORY: Measure = Measure {
    name: "memory",
    what: "server memory per open connection",
    unit: "per connection",
    higher_is_better: false,
    value: super::document::MEMORY_PER_CONNECTION.value,
    format: kib,
};
const SYSCALLS: Measure = Measure {
    name: "syscalls",
    what: "system calls per message",
    unit: "calls/msg",
    higher_is_better: false,
    value: |cell| cell.server.as_ref()?.syscalls.per_msg_total,
    format: number,
};

/// The findings of a result set, in the order: leaders, failures,
/// scaling, costs; at most [`MAX_FINDINGS`].
pub fn findings(scenarios: &[Scenario], sweeps: &[Sweep], charts: &ChartIndex) -> Vec<Finding> {
    let mut found = leaders(scenarios, sweeps, charts);
    found.extend(failing(sweeps, charts));
    found.extend(stops_scaling(sweeps, charts));
    found.extend(largest_costs(sweeps, charts));
    found.truncate(MAX_FINDINGS);
    found
}

/// The key under which [`ChartIndex`] holds a sweep's charts.
pub fn sweep_key(sweep: &Sweep) -> String {
    format!("{:?}-{}", sweep.axis, sweep.slug())
}

/// Two summaries can be told apart when their intervals (95% CI, or the
/// min–max below n = 6) do not overlap and each rests on more than one
/// run. Otherwise a rule says "indistinguishable" and ranks nothing.
pub fn apart(a: &Summary, b: &Summary) -> bool {
    a.n > 1 && b.n > 1 && (a.high < b.low || b.high < a.low)
}

/// An entry's summary of `measure`, over its repeats.
fn summary(entry: &Entry, measure: &Measure) -> Option<Summary> {
    let values: Vec<f64> = entry
        .runs
        .iter()
        .filter_map(|run| (measure.value)(&run.cell))
        .collect();
    Summary::of(&values)
}

/// A median and its interval, without the words: `40,000 [39,000, 41,000]`
/// (a 95% CI), `40,000 [38,000–41,000]` (min–max), `40,000` (one run).
/// [`uncertainty`] says once per sentence which it is.
fn value(summary: &Summary, format: fn(f64) -> String) -> String {
    if summary.is_ci {
        format!(
            "{} [{}, {}]",
            format(summary.median),
            format(summary.low),
            format(summary.high)
        )
    } else if summary.n > 1 {
        format!(
            "{} [{}–{}]",
            format(summary.median),
            format(summary.low),
            format(summary.high)
        )
    } else {
        format(summary.median)
    }
}

/// What the brackets of a sentence's numbers are: ` (medians [95% CI])`,
/// ` (n = 3: medians [min–max], no CI)`, ` (n = 1: single runs)`.
fn uncertainty<'a>(summaries: impl IntoIterator<Item = &'a Summary>) -> String {
    let summaries: Vec<&Summary> = summaries.into_iter().collect();
    let smallest = summaries.iter().map(|summary| summary.n).min().unwrap_or(0);
    if summaries.iter().all(|summary| summary.is_ci) {
        " (medians [95% CI])".to_owned()
    } else if smallest > 1 {
        let largest = summaries.iter().map(|summary| summary.n).max().unwrap_or(0);
        let n = if largest == smallest {
            smallest.to_string()
        } else {
            format!("{smallest}–{largest}")
        };
        format!(" (n = {n}: medians [min–max], no CI)")
    } else {
        " (n = 1: single runs, no interval)".to_owned()
    }
}

/// `40,000 [39,000, 41,000] msgs/s`.
fn figure(summary: &Summary, measure: &Measure) -> String {
    format!("{} {}", value(summary, measure.format), measure.unit)
}

/// The ratio of two medians with the Hodges–Lehmann interval where the
/// repeats allow one: `1.33× [1.30, 1.36]`.
fn ratio(better: &Entry, worse: &Entry, measure: &Measure) -> String {
    let values = |entry: &Entry| -> Vec<f64> {
        entry
            .runs
            .iter()
            .filter_map(|run| (measure.value)(&run.cell))
            .collect()
    };
    let (top, other) = if measure.higher_is_better {
        (values(better), values(worse))
    } else {
        (values(worse), values(better))
    };
    // B / A with A the smaller: a ratio above 1.
    match stats::ratio_ci(&other, &top) {
        Some(ci) => format!(
            "{}× [{}, {}]",
            number(ci.estimate),
            number(ci.low),
            number(ci.high)
        ),
        None => format!("{}×", number(stats::median(&top) / stats::median(&other))),
    }
}

/// A run that failed some of its connections: starved or in error.
fn failed(cell: &Cell) -> bool {
    cell.starved_connections > 0
        || cell.errors.total() > 0
        || cell.flags.contains(&Flag::Starved)
        || cell.flags.contains(&Flag::Errors)
}

/// The measure a sweep's leader is judged by: throughput where load is
/// closed (more is better), p99 where the rate is fixed (less is better).
fn leading_measure(sweep: &Sweep) -> &'static Measure {
    match sweep.axis {
        SweepAxis::Connections => &THROUGHPUT,
        SweepAxis::Idle | SweepAxis::Rate => &P99,
    }
}

fn where_in(sweep: &Sweep, scenario: &Scenario) -> String {
    let x = sweep.axis.value(scenario);
    let at = match sweep.axis {
        SweepAxis::Connections => format!("{} connections", count(x)),
        SweepAxis::Idle => format!("{} idle connections", count(x)),
        SweepAxis::Rate => format!("{} msgs/s offered", count(x)),
    };
    super::document::capitalise(&format!("{}, at {at}", sweep.describe()))
}

/// Rule: at each sweep's heaviest point, the label with the best median
/// among the runs that did not fail "leads" only when its interval is
/// [`apart`] from the runner-up's; every label whose interval overlaps the
/// best one's is named with it as indistinguishable. Scenarios outside any
/// sweep get no sentence (their tables say it).
fn leaders(_scenarios: &[Scenario], sweeps: &[Sweep], charts: &ChartIndex) -> Vec<Finding> {
    let mut found = Vec::new();
    for sweep in sweeps {
        let measure = leading_measure(sweep);
        let Some(heaviest) = sweep.scenarios.last() else {
            continue;
        };
        let mut ranked: Vec<(&Entry, Summary)> = heaviest
            .entries
            .iter()
            .filter(|entry| !entry.runs.iter().any(|run| failed(&run.cell)))
            .filter_map(|entry| Some((entry, summary(entry, measure)?)))
            .collect();
        if ranked.len() < 2 {
            continue;
        }
        ranked.sort_by(|a, b| {
            let order = a.1.median.total_cmp(&b.1.median);
            if measure.higher_is_better {
                order.reverse()
            } else {
                order
            }
        });
        let (best, best_summary) = ranked[0];
        let tied: Vec<&(&Entry, Summary)> = ranked[1..]
            .iter()
            .filter(|(_, other)| !apart(&best_summary, other))
            .collect();
        let place = where_in(sweep, heaviest);
        let text = if tied.is_empty() {
            let (runner_up, runner_summary) = ranked[1];
            let comparison = if measure.higher_is_better {
                format!(
                    "{} {}'s {}",
                    ratio(best, runner_up, measure),
                    runner_up.label,
                    value(&runner_summary, measure.format)
                )
            } else {
                format!(
                    "{}'s {} is {} as long",
                    runner_up.label,
                    value(&runner_summary, measure.format),
                    ratio(best, runner_up, measure)
                )
            };
            format!(
                "{place}: {} leads in {} with {}; {comparison}{}.",
                best.label,
                measure.what,
                figure(&best_summary, measure),
                uncertainty([&best_summary, &runner_summary]),
            )
        } else {
            let mut names = vec![format!("{} {}", best.label, figure(&best_summary, measure))];
            names.extend(
                tied.iter()
                    .take(NAMED - 1)
                    .map(|(entry, summary)| format!("{} {}", entry.label, value(summary, measure.format))),
            );
            let more = match tied.len().saturating_sub(NAMED - 1) {
                0 => String::new(),
                more => format!(" and {more} more"),
            };
            format!(
                "{place}: the leaders in {} cannot be told apart: {}{more} lie within the leader's {} \
                 (indistinguishable, not ranked){}.",
                measure.what,
                names.join(", "),
                if best_summary.is_ci { "95% CI" } else { "min–max" },
                uncertainty(std::iter::once(&best_summary).chain(tied.iter().map(|(_, summary)| summary))),
            )
        };
        found.push(Finding {
            text,
            chart: charts.get(&(sweep_key(sweep), measure.name)).copied(),
        });
    }
    found
}

/// Rule: a label starts failing at the first point of a connection sweep
/// where any of its runs starved a connection or counted an error (one
/// failed run is enough: a failure is not noise). One sentence per sweep,
/// naming every such label.
fn failing(sweeps: &[Sweep], charts: &ChartIndex) -> Vec<Finding> {
    let mut found = Vec::new();
    for sweep in sweeps.iter().filter(|sweep| sweep.axis == SweepAxis::Connections) {
        let mut first: Vec<(usize, String)> = Vec::new();
        let mut seen = Vec::new();
        for (position, scenario) in sweep.scenarios.iter().enumerate() {
            for entry in &scenario.entries {
                if seen.contains(&entry.label) {
                    continue;
                }
                let runs = entry.runs.len();
                let failed_runs: Vec<&Cell> = entry
                    .runs
                    .iter()
                    .map(|run| &run.cell)
                    .filter(|cell| failed(cell))
                    .collect();
                if failed_runs.is_empty() {
                    continue;
                }
                seen.push(entry.label);
                let starved = failed_runs
                    .iter()
                    .map(|cell| cell.starved_connections)
                    .max()
                    .unwrap_or(0);
                let errors = failed_runs
                    .iter()
                    .map(|cell| cell.errors.total())
                    .max()
                    .unwrap_or(0);
                let mut what = Vec::new();
                if starved > 0 {
                    what.push(format!(
                        "up to {} of {} connections starved",
                        count(starved.into()),
                        count(scenario.connections.into())
                    ));
                }
                if errors > 0 {
                    what.push(format!("up to {} errors", count(errors as f64)));
                }
                if what.is_empty() {
                    what.push("flagged".to_owned());
                }
                first.push((
                    position,
                    format!(
                        "{} at {} connections ({} in {} of {} runs)",
                        entry.label,
                        count(scenario.connections.into()),
                        what.join(", "),
                        failed_runs.len(),
                        runs
                    ),
                ));
            }
        }
        if first.is_empty() {
            continue;
        }
        first.sort();
        let parts: Vec<String> = first.into_iter().map(|(_, text)| text).collect();
        found.push(Finding {
            text: format!(
                "{}: starts failing: {}.",
                super::document::capitalise(&sweep.describe()),
                parts.join("; ")
            ),
            chart: charts.get(&(sweep_key(sweep), THROUGHPUT.name)).copied(),
        });
    }
    found
}

/// A label stops scaling when its throughput at the sweep's last point is
/// at least this fraction below its peak, with the two intervals
/// [`apart`]: a drop smaller than this, or inside the noise, is not one.
pub const STOPS_SCALING_DROP: f64 = 0.10;

/// Rule: in a connection sweep, each label whose median throughput peaks
/// before the last point and then falls by [`STOPS_SCALING_DROP`] or more
/// (intervals [`apart`]) stops scaling at its peak. One sentence per sweep.
fn stops_scaling(sweeps: &[Sweep], charts: &ChartIndex) -> Vec<Finding> {
    let mut found = Vec::new();
    for sweep in sweeps.iter().filter(|sweep| sweep.axis == SweepAxis::Connections) {
        let mut labels: Vec<&str> = Vec::new();
        for scenario in &sweep.scenarios {
            for entry in &scenario.entries {
                if !labels.contains(&entry.label) {
                    labels.push(entry.label);
                }
            }
        }
        let mut parts = Vec::new();
        let mut shown: Vec<Summary> = Vec::new();
        for label in labels {
            let points: Vec<(&Scenario, Summary)> = sweep
                .scenarios
                .iter()
                .filter_map(|scenario| {
                    let entry = scenario.entries.iter().find(|entry| entry.label == label)?;
                    Some((*scenario, summary(entry, &THROUGHPUT)?))
                })
                .collect();
            let Some(peak) = points
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.1.median.total_cmp(&b.1.1.median).then(b.0.cmp(&a.0)))
                .map(|(index, _)| index)
            else {
                continue;
            };
            let Some((last_scenario, last)) = points.last() else {
                continue;
            };
            let (peak_scenario, peak_summary) = &points[peak];
            if peak + 1 == points.len()
                || last.median > peak_summary.median * (1.0 - STOPS_SCALING_DROP)
                || !apart(peak_summary, last)
            {
                continue;
            }
            let drop = 1.0 - last.median / peak_summary.median;
            shown.extend([*peak_summary, *last]);
            parts.push((
                drop,
                format!(
                    "{} peaks at {} connections ({} msgs/s) and falls {}% by {} ({})",
                    label,
                    count(peak_scenario.connections.into()),
                    value(peak_summary, count),
                    count(drop * 100.0),
                    count(last_scenario.connections.into()),
                    value(last, count),
                ),
            ));
        }
        if parts.is_empty() {
            continue;
        }
        // The largest drops first.
        parts.sort_by(|a, b| b.0.total_cmp(&a.0));
        let more = parts.len().saturating_sub(NAMED);
        let mut parts: Vec<String> = parts.into_iter().take(NAMED).map(|(_, text)| text).collect();
        if more > 0 {
            parts.push(format!("{more} more fall less"));
        }
        found.push(Finding {
            text: format!(
                "{}: stops scaling: {}{}.",
                super::document::capitalise(&sweep.describe()),
                parts.join("; "),
                uncertainty(&shown)
            ),
            chart: charts.get(&(sweep_key(sweep), THROUGHPUT.name)).copied(),
        });
    }
    found
}

/// The largest cost difference is worth a sentence when the costlier
/// label's median is at least this many times the cheaper one's, with the
/// intervals [`apart`].
pub const COST_RATIO: f64 = 2.0;

/// Rule: for CPU per message, memory per open connection and system calls
/// per message, the heaviest scenario of a connection sweep where the costliest and
/// the cheapest label (runs that did not fail) differ most, when the
/// difference passes [`COST_RATIO`]. One sentence per cost.
fn largest_costs(sweeps: &[Sweep], charts: &ChartIndex) -> Vec<Finding> {
    let mut found = Vec::new();
    for measure in [&CPU, &MEMORY, &SYSCALLS] {
        // (ratio, sweep, scenario, cheapest, costliest)
        type Candidate<'s, 'a> = (
            f64,
            &'s Sweep<'s, 'a>,
            &'s Scenario<'a>,
            (&'s Entry<'a>, Summary),
            (&'s Entry<'a>, Summary),
        );
        let mut best: Option<Candidate> = None;
        for sweep in sweeps.iter().filter(|sweep| sweep.axis == SweepAxis::Connections) {
            // At the heaviest point, where a cost per connection or message
            // is not a fixed cost spread thin.
            if let Some(scenario) = sweep.scenarios.last() {
                let summaries: Vec<(&Entry, Summary)> = scenario
                    .entries
                    .iter()
                    .filter(|entry| !entry.runs.iter().any(|run| failed(&run.cell)))
                    .filter_map(|entry| Some((entry, summary(entry, measure)?)))
                    .filter(|(_, summary)| summary.median > 0.0)
                    .collect();
                let cheapest = summaries.iter().min_by(|a, b| a.1.median.total_cmp(&b.1.median));
                let costliest = summaries.iter().max_by(|a, b| a.1.median.total_cmp(&b.1.median));
                let (Some(&cheapest), Some(&costliest)) = (cheapest, costliest) else {
                    continue;
                };
                let ratio = costliest.1.median / cheapest.1.median;
                if ratio >= COST_RATIO
                    && apart(&cheapest.1, &costliest.1)
                    && best.as_ref().is_none_or(|(previous, ..)| ratio > *previous)
                {
                    best = Some((ratio, sweep, scenario, cheapest, costliest));
                }
            }
        }
        let Some((_, sweep, scenario, (cheap, cheap_summary), (costly, costly_summary))) = best else {
            continue;
        };
        let chart = if measure.name == SYSCALLS.name {
            charts.get(&(scenario.name.to_owned(), SYSCALLS.name))
        } else {
            charts.get(&(sweep_key(sweep), measure.name))
        };
        found.push(Finding {
            text: format!(
                "The largest difference in {} is in {}: {} uses {}, {} {}'s {}{}.",
                measure.what,
                scenario.name,
                costly.label,
                figure(&costly_summary, measure),
                ratio(
                    costly,
                    cheap,
                    &Measure {
                        higher_is_better: true,
                        ..*measure
                    }
                ),
                cheap.label,
                value(&cheap_summary, measure.format),
                uncertainty([&cheap_summary, &costly_summary]),
            ),
            chart: chart.copied(),
        });
    }
    found
}
