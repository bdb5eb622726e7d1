//! `run --until-ci PCT`: when a cell has been repeated enough. After each
//! round of repeats (interleaved like `--repeat`'s), a cell whose 95% CIs
//! of the median throughput and the median p99 both lie within ±PCT% of
//! those medians is done and sits out the later rounds; the others go on
//! until `--max-repeat`. The CIs are [`crate::stats::Summary`]'s, so no
//! cell can stop before the 6 runs the first CI needs.

use crate::results::cell::{Cell, UntilCi};
use crate::stats;

/// The fewest runs with a 95% CI of the median (order statistics).
pub const MIN_REPEATS: u32 = 6;

/// `--max-repeat`'s default. At 20 runs the order-statistic CI spans the
/// 6th to the 15th value, the middle half of the sample; past it the
/// interval narrows only as 1/√n, so a cell not within the target by then
/// is noisy (its machine, its flags say why) more than under-sampled, and
/// the cap keeps the run to at most 20 passes of the suite.
pub const DEFAULT_MAX_REPEAT: u32 = 20;

/// How far the 95% CI of the median of `values` reaches from the median:
/// its farther end, % of the median. `None` below 6 finite values or for a
/// median of 0.
pub fn ci_percent(values: &[f64]) -> Option<f64> {
    let summary = stats::Summary::of(values)?;
    if !summary.is_ci || summary.median == 0.0 {
        return None;
    }
    let half_width = (summary.median - summary.low).max(summary.high - summary.median);
    Some((half_width / summary.median.abs() * 100.0 * 100.0).round() / 100.0)
}

/// The stopping rule, applied to one cell after a round: `runs` rounds it
/// took part in, its measured `cells` (a failed run adds none), the target
/// ±`target_percent`, the cap `max_repeat`. `Some` when the cell stops:
/// both CIs within the target, or the cap reached; `None` to run it again.
pub fn stop(runs: u32, cells: &[&Cell], target_percent: f64, max_repeat: u32) -> Option<UntilCi> {
    let throughput: Vec<f64> = cells.iter().map(|cell| cell.msgs_per_sec).collect();
    let p99: Vec<f64> = cells.iter().map(|cell| cell.latency_us.p99).collect();
    let throughput_ci_percent = ci_percent(&throughput);
    let p99_ci_percent = ci_percent(&p99);
    let within = |reached: Option<f64>| reached.is_some_and(|percent| percent <= target_percent);
    let converged = within(throughput_ci_percent) && within(p99_ci_percent);
    (converged || runs >= max_repeat).then_some(UntilCi {
        target_percent,
        repeats: runs,
        converged,
        throughput_ci_percent,
        p99_ci_percent,
    })
}

/// What the summary table's "CI reached" column says of a cell:
/// `±1.2% ±3.4%` (throughput, p99), or `not within ±5% after 20`.
pub fn reached_text(until: &UntilCi) -> String {
    if until.converged {
        format!(
            "±{}% ±{}%",
            percent_text(until.throughput_ci_percent),
            percent_text(until.p99_ci_percent)
        )
    } else {
        format!("not within ±{}% after {}", until.target_percent, until.repeats)
    }
}

fn percent_text(percent: Option<f64>) -> String {
    percent.map_or_else(|| "?".to_owned(), |percent| format!("{percent:.1}"))
}

/// `--until-ci`'s value: a percentage above 0 and below 100.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let percent: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number (a percentage, e.g. 5)"))?;
    if percent > 0.0 && percent < 100.0 {
        Ok(percent)
    } else {
        Err(format!(
            "{text} must be above 0 and below 100 (a percentage of the median)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `repeat` of a cell at `msgs_per_sec` and a p99 of `p99` µs.
    fn run(repeat: u32, msgs_per_sec: f64, p99: f64) -> Cell {
        let mut cell = Cell::example("epoll", "closed-c10-s64", repeat, msgs_per_sec);
        cell.latency_us.p99 = p99;
        cell
    }

    /// The rule applied round after round to the runs `figures` yields,
    /// until it stops or the runs run out.
    fn rounds(figures: impl Fn(u32) -> (f64, f64), target: f64, cap: u32) -> (u32, Option<UntilCi>) {
        let mut cells = Vec::new();
        for round in 1..=cap {
            let (msgs_per_sec, p99) = figures(round);
            cells.push(run(round, msgs_per_sec, p99));
            let measured: Vec<&Cell> = cells.iter().collect();
            if let Some(until) = stop(round, &measured, target, cap) {
                return (round, Some(until));
            }
        }
        (cap, None)
    }

    #[test]
    fn a_steady_cell_stops_at_six_runs_within_the_target() {
        // ±0.5% around 10,000 msgs/s and ±1% around 100 µs.
        let steady = |round: u32| {
            let wiggle = f64::from(round % 3) - 1.0;
            (10_000.0 + 50.0 * wiggle, 100.0 + wiggle)
        };
        let (runs, until) = rounds(steady, 5.0, 20);
        let until = until.expect("it stops");
        assert_eq!(runs, MIN_REPEATS);
        assert_eq!(until.repeats, 6);
        assert!(until.converged);
        assert_eq!(until.throughput_ci_percent, Some(0.5));
        assert_eq!(until.p99_ci_percent, Some(1.0));
        assert_eq!(reached_text(&until), "±0.5% ±1.0%");
    }

    #[test]
    fn a_cell_whose_p99_never_settles_stops_at_the_cap_unconverged() {
        // Throughput within 1%, p99 alternating between 100 and 300 µs.
        let noisy = |round: u32| {
            (
                10_000.0 + f64::from(round % 2) * 50.0,
                100.0 + 200.0 * f64::from(round % 2),
            )
        };
        let (runs, until) = rounds(noisy, 5.0, 9);
        let until = until.expect("the cap stops it");
        assert_eq!((runs, until.repeats), (9, 9));
        assert!(!until.converged);
        assert!(until.throughput_ci_percent.unwrap() <= 5.0, "{until:?}");
        assert!(until.p99_ci_percent.unwrap() > 5.0, "{until:?}");
        assert_eq!(reached_text(&until), "not within ±5% after 9");
    }

    #[test]
    fn no_cell_stops_before_six_runs_however_steady() {
        let cells: Vec<Cell> = (1..=5).map(|round| run(round, 1000.0, 50.0)).collect();
        let measured: Vec<&Cell> = cells.iter().collect();
        assert_eq!(stop(5, &measured, 50.0, 20), None);
        assert_eq!(ci_percent(&[1000.0; 5]), None);
        assert_eq!(ci_percent(&[1000.0; 6]), Some(0.0));
    }

    #[test]
    fn the_target_is_a_percentage_above_0_and_below_100() {
        assert_eq!(parse_percent("5"), Ok(5.0));
        assert_eq!(parse_percent("0.5"), Ok(0.5));
        for bad in ["0", "100", "-3", "abc", "NaN"] {
            assert!(parse_percent(bad).is_err(), "{bad}");
        }
    }
}
