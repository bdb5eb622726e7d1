//! `harness faults --repeat N`: each cell runs N times, interleaved (run 1
//! of every cell, then run 2, ...) so that a drift of the machine falls on
//! every cell alike, and its runs become one row of `faults.json`:
//!
//! - the outcome is the runs' majority; a tie goes to the worse outcome
//!   (a robustness matrix must not flatter), so 1 ok and 1 degraded of 2
//!   runs is `degraded 1/2`;
//! - the cell is unstable when its runs do not all have that outcome;
//! - the deciding figure is that of the judge's rule that decided most of
//!   the majority's runs (a tie goes to the more severe rule), taken from
//!   every run that measured it: its median with the min–max (fewer than
//!   six runs) or a 95% confidence interval of the median
//!   ([`crate::stats::Summary`]). The row's other figures are the median
//!   run's: of the majority's runs decided by that rule, the one whose
//!   figure is nearest the median (the lower of two as near).

use super::judge;
use crate::results::faults::{FaultRow, Outcome, Spread};
use crate::stats::Summary;

/// The most frequent outcome of `outcomes`, a tie going to the worse one;
/// `None` when there is none.
pub fn majority(outcomes: &[Outcome]) -> Option<Outcome> {
    let count = |outcome: Outcome| outcomes.iter().filter(|&&each| each == outcome).count();
    // Ascending severity: `max_by_key` keeps the last of equals, the worst.
    [Outcome::Ok, Outcome::Degraded, Outcome::Failed]
        .into_iter()
        .filter(|&outcome| count(outcome) > 0)
        .max_by_key(|&outcome| count(outcome))
}

/// One row from the runs of a cell (in the order they ran). A single run
/// is its own row, unchanged.
pub fn combine(mut runs: Vec<FaultRow>) -> Option<FaultRow> {
    if runs.len() <= 1 {
        return runs.pop();
    }
    for run in &mut runs {
        run.runs.clear();
    }
    let outcome = majority(&runs.iter().map(|run| run.outcome).collect::<Vec<_>>())?;
    let winners: Vec<&FaultRow> = runs.iter().filter(|run| run.outcome == outcome).collect();
    // The rule that decided most of the winners; a tie to the more severe
    // (earlier in the judge's table; the ok headline's rules come last).
    let severity = |name: &str| {
        judge::RULES
            .iter()
            .position(|rule| rule.name == name)
            .unwrap_or(usize::MAX)
    };
    let rule = winners
        .iter()
        .map(|run| run.rule.as_str())
        .max_by(|a, b| {
            let count = |name: &str| winners.iter().filter(|run| run.rule == name).count();
            count(a)
                .cmp(&count(b))
                .then_with(|| severity(b).cmp(&severity(a)))
        })
        .unwrap_or_default()
        .to_owned();
    let values: Vec<f64> = runs
        .iter()
        .filter_map(|run| run.rule_figures.get(&rule).copied())
        .collect();
    let spread = judge::rule(&rule)
        .and_then(|entry| entry.figure.as_ref())
        .zip(Summary::of(&values))
        .map(|(figure, summary)| spread(&rule, &summary, figure.number));
    // The median run: among the winners decided by that rule, the one
    // whose figure is nearest the median (the lower of two as near).
    let median = spread.as_ref().map_or(f64::NAN, |spread| spread.median);
    let distance = |run: &FaultRow| (run.rule_figures[&rule] - median).abs();
    let median_run = winners
        .iter()
        .copied()
        .filter(|run| run.rule == rule && run.rule_figures.contains_key(&rule))
        .min_by(|a, b| {
            distance(a)
                .total_cmp(&distance(b))
                .then(a.rule_figures[&rule].total_cmp(&b.rule_figures[&rule]))
        })
        .or(winners.first().copied())?;
    let mut row = median_run.clone();
    row.outcome = outcome;
    row.unstable = runs.iter().any(|run| run.outcome != outcome);
    row.spread = spread;
    row.runs = runs;
    Some(row)
}

fn spread(rule: &str, summary: &Summary, number: fn(f64) -> String) -> Spread {
    let text = if summary.n == 1 {
        number(summary.median)
    } else if summary.is_ci {
        format!(
            "{} [{}, {}]",
            number(summary.median),
            number(summary.low),
            number(summary.high)
        )
    } else {
        format!(
            "{} ({}–{})",
            number(summary.median),
            number(summary.low),
            number(summary.high)
        )
    };
    Spread {
        rule: rule.to_owned(),
        median: summary.median,
        low: summary.low,
        high: summary.high,
        n: summary.n,
        is_ci: summary.is_ci,
        text,
    }
}

/// A matrix cell's outcome: `degraded`, or with repeats `degraded 2/3`.
pub fn outcome_text(row: &FaultRow) -> String {
    if row.runs.is_empty() {
        row.outcome.as_str().to_owned()
    } else {
        let (agreeing, runs) = row.agreeing();
        format!("{} {agreeing}/{runs}", row.outcome.as_str())
    }
}

/// A matrix cell's figure: the deciding figure, or with repeats its median
/// and spread (`p99 12 ms (8.1 ms–15 ms)` reads as `12 ms (8.1 ms–15 ms)`
/// after the rule's own words for a single run).
pub fn figure_text(row: &FaultRow) -> String {
    match &row.spread {
        Some(spread) if !row.runs.is_empty() => format!("{} {}", rule_word(&spread.rule), spread.text),
        _ => row.deciding.clone(),
    }
}

/// What a rule's figure is, in a word or two, before its value.
fn rule_word(rule: &str) -> &'static str {
    match rule {
        "no baseline" => "baseline",
        "wrong bytes" => "wrong",
        "fault data lost" => "lost",
        "background dropped" => "dropped",
        "leaked" => "leaked fds",
        "spun" => "CPU",
        "buffered" => "memory",
        "never recovered" | "slow recovery" => "back",
        "clients refused" => "refused",
        "throughput" => "during",
        "latency" => "p99",
        _ => "",
    }
}

/// One or two sentences on which outcomes were stable, when any cell ran
/// more than once; `None` otherwise.
pub fn stability_sentence(rows: &[FaultRow]) -> Option<String> {
    let repeated: Vec<&FaultRow> = rows.iter().filter(|row| !row.runs.is_empty()).collect();
    let most = repeated.iter().map(|row| row.runs.len()).max()?;
    let fewest = repeated.iter().map(|row| row.runs.len()).min()?;
    let runs = if most == fewest {
        format!("{most} times")
    } else {
        format!("{fewest} to {most} times (some runs were not measured)")
    };
    let unstable: Vec<String> = repeated
        .iter()
        .filter(|row| row.unstable)
        .map(|row| {
            let mut counts = Vec::new();
            for outcome in [Outcome::Failed, Outcome::Degraded, Outcome::Ok] {
                let count = row.runs.iter().filter(|run| run.outcome == outcome).count();
                if count > 0 {
                    counts.push(format!("{} {count}/{}", outcome.as_str(), row.runs.len()));
                }
            }
            format!("{} / {} ({})", row.label, row.fault, counts.join(", "))
        })
        .collect();
    let cells = repeated.len();
    let stable = cells - unstable.len();
    let first = match (stable, unstable.len()) {
        (1, 0) => {
            format!("Each cell ran {runs}, interleaved: its outcome was stable (the same in every run).")
        }
        (_, 0) => format!(
            "Each cell ran {runs}, interleaved: all {cells} outcomes were stable (the same in every run)."
        ),
        (0, 1) => format!(
            "Each cell ran {runs}, interleaved: its outcome was unstable: {}.",
            unstable.join("; ")
        ),
        (0, _) => format!(
            "Each cell ran {runs}, interleaved: none of the {cells} outcomes was stable; every cell's runs disagreed: {}.",
            unstable.join("; ")
        ),
        _ => format!(
            "Each cell ran {runs}, interleaved: {stable} of {cells} outcomes were stable (the same in every run); {} {} unstable: {}.",
            unstable.len(),
            if unstable.len() == 1 { "was" } else { "were" },
            unstable.join("; ")
        ),
    };
    Some(format!(
        "{first} A cell's outcome is its runs' majority, a tie going to the worse outcome; its figure is the median of the deciding rule's figure over the runs, with the min–max in parentheses below six runs and a 95% confidence interval of the median in brackets from six on."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcome: Outcome, rule: &str, value: f64) -> FaultRow {
        let text = serde_json::json!({
            "label": "epoll", "fault": "slowloris", "outcome": outcome,
            "deciding": format!("{rule} {value}"), "rule": rule,
            "rule_figures": { rule: value, "throughput": value / 100.0 },
            "baseline_msgs_per_sec": 1000.0, "during_fraction": value / 100.0,
            "p99_during_us": 100.0, "cpu_during_percent": 10.0,
            "memory_growth_kib": 0, "fds_leaked": 0, "recovery_s": 0.0,
            "errors": 0, "alive": true,
        });
        serde_json::from_value(text).unwrap()
    }

    #[test]
    fn the_majority_wins_and_a_tie_goes_to_the_worse_outcome() {
        use Outcome::*;
        assert_eq!(majority(&[Ok, Degraded, Ok]), Some(Ok));
        assert_eq!(majority(&[Ok, Degraded]), Some(Degraded));
        assert_eq!(majority(&[Failed, Ok, Degraded]), Some(Failed));
        assert_eq!(majority(&[Degraded, Failed, Degraded, Failed]), Some(Failed));
        assert_eq!(majority(&[]), None);
    }

    #[test]
    fn runs_that_disagree_make_an_unstable_cell_with_the_median_of_its_deciding_figure() {
        let row = combine(vec![
            run(Outcome::Degraded, "throughput", 20.0),
            run(Outcome::Ok, "throughput", 90.0),
            run(Outcome::Degraded, "throughput", 40.0),
        ])
        .unwrap();
        assert_eq!(row.outcome, Outcome::Degraded);
        assert!(row.unstable);
        assert_eq!(row.agreeing(), (2, 3));
        assert_eq!(outcome_text(&row), "degraded 2/3");
        let spread = row.spread.clone().unwrap();
        // Over all three runs: median 0.4, min–max 0.2–0.9 (three runs: no CI).
        assert_eq!(
            (spread.median, spread.low, spread.high, spread.is_ci),
            (0.4, 0.2, 0.9, false)
        );
        assert_eq!(figure_text(&row), "during 40% (20%–90%)");
        // The row's figures are the median run's.
        assert_eq!(row.during_fraction, 0.4);
        let sentence = stability_sentence(std::slice::from_ref(&row)).unwrap();
        assert!(
            sentence.contains("its outcome was unstable")
                && sentence.contains("epoll / slowloris (degraded 2/3, ok 1/3)"),
            "{sentence}"
        );

        let six: Vec<FaultRow> = (1..=6)
            .map(|index| run(Outcome::Ok, "throughput", 90.0 + index as f64))
            .collect();
        let stable = combine(six).unwrap();
        assert!(!stable.unstable);
        assert_eq!(outcome_text(&stable), "ok 6/6");
        assert!(stable.spread.as_ref().unwrap().is_ci);
        assert!(figure_text(&stable).contains('['), "{}", figure_text(&stable));
        let sentence = stability_sentence(&[stable, row]).unwrap();
        assert!(
            sentence.contains("1 of 2 outcomes were stable") && sentence.contains("1 was unstable"),
            "{sentence}"
        );
    }

    #[test]
    fn a_single_run_is_its_own_row_and_says_nothing_about_stability() {
        let single = combine(vec![run(Outcome::Ok, "throughput", 97.0)]).unwrap();
        assert!(single.runs.is_empty() && single.spread.is_none() && !single.unstable);
        assert_eq!(outcome_text(&single), "ok");
        assert_eq!(figure_text(&single), single.deciding);
        assert_eq!(stability_sentence(&[single]), None);
    }
}
