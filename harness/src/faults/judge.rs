//! From a fault cell's figures to its outcome. Each rule is one entry: the
//! outcome it gives, what is measured and the threshold (shown in the
//! report), and a check that returns the deciding figure (short, for the
//! matrix) and a sentence (for the reasons) when the rule fires. The rules
//! below apply to every fault; each fault's own thresholds are its
//! [`Limits`] entry in [`super::catalog`].

use super::catalog::{Fault, Limits};
use super::cell::BACKGROUND_LOOPS;
use crate::report::groups::{count, number};
use crate::results::cell::Errors;
use crate::results::faults::Outcome;

/// Descriptors a server may hold after the fault beyond what it held before
/// it, plus one per background client that may be in flight.
pub const LEAK_SLACK: i64 = 8;
/// Spinning: at least this much server CPU (% of one CPU) once the fault is
/// in place ...
pub const SPIN_CPU_PERCENT: f64 = 50.0;
/// ... while the background gets less than this fraction of its baseline.
pub const SPIN_PROGRESS: f64 = 0.25;
/// The fault must have been in place this long for spinning to be judged.
pub const SPIN_WINDOW_S: f64 = 0.2;
/// Buffering: memory growth above this many KiB ...
pub const BUFFERED_KIB: i64 = 16 * 1024;
/// ... plus this many KiB per fault client, what a client may cost a server
/// that pushes back: a buffer, a thread's touched stack, or a forked
/// process's own pages (about 1 MiB of resident set per process for
/// `process`), not the megabytes a slow reader sends.
pub const CLIENT_KIB: i64 = 1536;
/// Recovered: the background back at this fraction of its baseline.
pub const RECOVERED: f64 = 0.9;
/// Never recovered: the background's best 200 ms after the fault below this.
pub const NEVER_RECOVERED: f64 = 0.25;
/// Recovery slower than this (seconds after the fault's end) is `degraded`.
pub const SLOW_RECOVERY_S: f64 = 0.5;

/// What was measured in one fault cell, as the rules see it.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Background cycles per second before the fault.
    pub baseline_rate: f64,
    pub during_fraction: f64,
    /// The background's throughput once the fault was in place, as a
    /// fraction of the baseline; `None` when it was in place for less than
    /// [`SPIN_WINDOW_S`].
    pub engaged_fraction: Option<f64>,
    pub p99_baseline_us: f64,
    pub p99_during_us: f64,
    /// Server CPU once the fault was in place.
    pub cpu_engaged_percent: Option<f64>,
    pub memory_growth_kib: i64,
    pub fds_leaked: i64,
    pub recovery_s: Option<f64>,
    pub recovered_fraction: f64,
    /// The background's failures.
    pub errors: Errors,
    pub alive: bool,
    /// For a model: it exited with status 0 on SIGTERM (a command may exit
    /// as it likes); `true` when not applicable.
    pub clean_exit: bool,
    pub exit: Option<String>,
    pub fault_bytes: u64,
    pub fault_lost: u64,
    /// Connections the fault opened.
    pub fault_connections: u64,
}

/// The outcome, its deciding figure and every rule that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub deciding: String,
    pub reasons: Vec<String>,
    /// The rule that decided; for `ok`, the rule whose figure is the
    /// headline (`throughput` or `slow recovery`).
    pub rule: &'static str,
    /// Every rule's figure in this run, by rule name.
    pub figures: Vec<(&'static str, f64)>,
}

/// One rule.
pub struct Rule {
    pub outcome: Outcome,
    pub name: &'static str,
    /// What is measured, and the threshold.
    pub threshold: &'static str,
    /// `(deciding figure, sentence)` when the rule fires.
    pub check: fn(&Figures, &Limits) -> Option<(String, String)>,
    /// The number the rule looks at, measured whether it fires or not, so
    /// that repeated runs of a cell can give its median and spread; `None`
    /// for a rule that is a yes or a no (crashed).
    pub figure: Option<Figure>,
}

/// A rule's figure: its value in one run, and how one value is written
/// (`12%`, `8.1 ms`, `400`).
pub struct Figure {
    pub value: fn(&Figures, &Limits) -> Option<f64>,
    pub number: fn(f64) -> String,
}

/// `97%`, `4.5%`.
pub fn percent(fraction: f64) -> String {
    let value = fraction * 100.0;
    if value.abs() >= 10.0 || value == 0.0 {
        format!("{value:.0}%")
    } else {
        format!("{value:.1}%")
    }
}

/// `0.8 s`.
pub fn seconds(value: f64) -> String {
    format!("{value:.1} s")
}

/// Microseconds as `850 µs`, `12.3 ms`, `1.20 s`.
pub fn duration_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{} s", number(us / 1e6))
    } else if us >= 1e3 {
        format!("{} ms", number(us / 1e3))
    } else {
        format!("{} µs", number(us))
    }
}

fn mib(kib: i64) -> String {
    format!("{} MiB", number(kib as f64 / 1024.0))
}

/// Background clients the server closed or reset.
fn dropped(errors: &Errors) -> u64 {
    errors.closed + errors.reset
}

/// Background answers that were wrong: an echo with a wrong byte, or an
/// HTTP response with a status other than 200, a wrong length or body,
/// out of order, or not HTTP at all.
pub fn wrong_answers(errors: &Errors) -> u64 {
    errors.mismatch
        + errors.http_status.values().sum::<u64>()
        + errors.http_length
        + errors.http_body
        + errors.http_order
        + errors.http_parse
}

/// Background clients that got no answer in time or could not connect.
fn unanswered(errors: &Errors) -> u64 {
    errors.timeout + errors.connect
}

/// Background clients refused: unanswered, and, under a fault that takes
/// what new clients need, those the server closed or reset.
fn refused(errors: &Errors, limits: &Limits) -> u64 {
    unanswered(errors)
        + if limits.refusals_allowed {
            dropped(errors)
        } else {
            0
        }
}

/// Every rule, most severe first: the first that fires decides.
pub const RULES: [Rule; 14] = [
    Rule {
        outcome: Outcome::Failed,
        name: "crashed",
        threshold: "the server process was gone before the end of the cell",
        check: |figures, _| {
            (!figures.alive).then(|| {
                let how = figures.exit.clone().unwrap_or_else(|| "ended".into());
                (
                    "crashed".into(),
                    format!("the server crashed during the cell ({how})"),
                )
            })
        },
        figure: None,
    },
    Rule {
        outcome: Outcome::Failed,
        name: "unclean exit",
        threshold: "a model did not exit with status 0 on SIGTERM after the fault",
        check: |figures, _| {
            (!figures.clean_exit).then(|| {
                let how = figures.exit.clone().unwrap_or_default();
                (
                    "bad exit".to_owned(),
                    format!("stopped with SIGTERM after the fault, it ended with {how}, not status 0"),
                )
            })
        },
        figure: None,
    },
    Rule {
        outcome: Outcome::Failed,
        name: "no baseline",
        threshold: "no background client was served before the fault",
        check: |figures, _| {
            (figures.baseline_rate <= 0.0).then(|| {
                (
                    "no baseline".into(),
                    "it served no background client before the fault, so nothing could be compared".into(),
                )
            })
        },
        figure: None,
    },
    Rule {
        outcome: Outcome::Failed,
        name: "wrong bytes",
        threshold: "any background echo with a wrong byte or HTTP response that was wrong (status, length, body, order), or with bytes lost (its echo stopped partway)",
        check: |figures, _| {
            let (wrong, lost) = (figures.errors.mismatch, figures.errors.lost);
            let wrong_http = wrong_answers(&figures.errors) - wrong;
            if wrong_http > 0 {
                Some((
                    format!("{} wrong responses", count(wrong_http as f64)),
                    format!(
                        "{} background HTTP responses were wrong (status, length, body, order or not HTTP)",
                        count(wrong_http as f64)
                    ),
                ))
            } else if wrong > 0 {
                Some((
                    format!("{} wrong echoes", count(wrong as f64)),
                    format!(
                        "{} background echoes came back with wrong bytes",
                        count(wrong as f64)
                    ),
                ))
            } else if lost > 0 {
                Some((
                    format!("{} lost echoes", count(lost as f64)),
                    format!(
                        "{} background echoes stopped partway: {} bytes never came back",
                        count(lost as f64),
                        count(figures.errors.lost_bytes as f64)
                    ),
                ))
            } else {
                None
            }
        },
        figure: Some(Figure {
            value: |figures, _| Some((wrong_answers(&figures.errors) + figures.errors.lost) as f64),
            number: count,
        }),
    },
    Rule {
        outcome: Outcome::Failed,
        name: "fault data lost",
        threshold: "any of the fault's own clients got a wrong byte back, or was closed before its echo was complete",
        check: |figures, _| {
            let lost = figures.fault_lost;
            (lost > 0).then(|| {
                (
                    format!("lost {}", count(lost as f64)),
                    format!(
                        "{} of the fault's clients got a wrong byte or were closed before their echo was complete",
                        count(lost as f64)
                    ),
                )
            })
        },
        figure: Some(Figure {
            value: |figures, _| Some(figures.fault_lost as f64),
            number: count,
        }),
    },
    Rule {
        outcome: Outcome::Failed,
        name: "background dropped",
        threshold: "any background client closed or reset by the server, under a fault that takes nothing new clients need",
        check: |figures, limits| {
            let dropped = dropped(&figures.errors);
            (!limits.refusals_allowed && dropped > 0).then(|| {
                (
                    format!("dropped {}", count(dropped as f64)),
                    format!(
                        "{} background clients were closed or reset before their echo",
                        count(dropped as f64)
                    ),
                )
            })
        },
        figure: Some(Figure {
            value: |figures, _| Some(dropped(&figures.errors) as f64),
            number: count,
        }),
    },
    Rule {
        outcome: Outcome::Failed,
        name: "leaked",
        threshold: "open descriptors after the recovery window exceed those before the fault by more than 8 plus the background's clients",
        check: |figures, _| {
            let slack = LEAK_SLACK + i64::from(BACKGROUND_LOOPS);
            (figures.fds_leaked > slack).then(|| {
                (
                    format!("leaked {} fds", count(figures.fds_leaked as f64)),
                    format!(
                        "{} more descriptors open after the fault than before it",
                        count(figures.fds_leaked as f64)
                    ),
                )
            })
        },
        figure: Some(Figure {
            value: |figures, _| Some(figures.fds_leaked as f64),
            number: count,
        }),
    },
    Rule {
        outcome: Outcome::Failed,
        name: "spun",
        threshold: "server CPU at least 50% of a CPU while the background got under 25% of its baseline, over the fault once in place, judged when that lasted 0.2 s or more",
        check: |figures, _| {
            let (Some(cpu), Some(progress)) = (figures.cpu_engaged_percent, figures.engaged_fraction) else {
                return None;
            };
            (cpu >= SPIN_CPU_PERCENT && progress < SPIN_PROGRESS).then(|| {
                (
                    format!("spun {cpu:.0}% CPU"),
                    format!(
                        "with the fault in place it used {}% of a CPU while the background got {} of its baseline",
                        number(cpu),
                        percent(progress)
                    ),
                )
            })
        },
        figure: Some(Figure {
            value: |figures, _| figures.cpu_engaged_percent,
            number: |cpu| format!("{cpu:.0}%"),
        }),
    },
    Rule {
        outcome: Outcome::Failed,
        name: "buffered",
        threshold: "where the fault judges it: memory grew by over 16 MiB plus 1.5 MiB per fault client while those clients were not reading",
        check: |figures, limits| {
            let allowed = BUFFERED_KIB + CLIENT_KIB * figures.fault_connections as i64;
            (limits.judge_buffering && figures.memory_growth_kib > allowed).then(|| {
                (
                    format!("buffered {}", mib(figures.memory_growth_kib)),
                    format!(
                        "its memory grew by {} while the fault's clients sent {} they did not read back",
                        mib(figures.memory_growth_kib),
                        mib((figures.fault_bytes / 1024) as i64)
                    ),
                )
            })
        },
        figure: Some(Figure {
            value: |figures, _| Some(figures.memory_growth_kib as f64),
            number: |kib| mib(kib as i64),
        }),
    },
    Rule {
        outcome: Outcome::Failed,
        name: "never recovered",
        threshold: "in the 5 s after the fault, the background's best 200 ms stayed under 25% of its baseline",
        check: |figures, _| {
            (figures.recovered_fraction < NEVER_RECOVERED).then(|| {
                (
                    "never recovered".into(),
                    format!(
                        "in the 5 s after the fault the background reached at best {} of its baseline",
                        percent(figures.recovered_fraction)
                    ),
                )
            })
        },
        figure: Some(Figure {
            value: |figures, _| Some(figures.recovered_fraction),
            number: percent,
        }),
    },
    Rule {
        outcome: Outcome::Degraded,
        name: "clients refused",
        threshold: "background clients unanswered for 5 s or not connected, and, under a fault that takes what new clients need, those the server closed or reset",
        check: |figures, limits| {
            let refused = refused(&figures.errors, limits);
            (refused > 0).then(|| {
                (
                    format!("refused {}", count(refused as f64)),
                    format!(
                        "{} background clients were refused, closed, or got no answer within 5 s",
                        count(refused as f64)
                    ),
                )
            })
        },
        figure: Some(Figure {
            value: |figures, limits| Some(refused(&figures.errors, limits) as f64),
            number: count,
        }),
    },
    Rule {
        outcome: Outcome::Degraded,
        name: "throughput",
        threshold: "where the fault judges it: the background's throughput during the fault under the fault's floor, usually 50% of its baseline",
        check: |figures, limits| {
            let floor = limits.throughput_floor?;
            (figures.during_fraction < floor).then(|| {
                (
                    percent(figures.during_fraction),
                    format!(
                        "the background got {} of its baseline throughput during the fault",
                        percent(figures.during_fraction)
                    ),
                )
            })
        },
        figure: Some(Figure {
            value: |figures, _| Some(figures.during_fraction),
            number: percent,
        }),
    },
    Rule {
        outcome: Outcome::Degraded,
        name: "latency",
        threshold: "where the fault judges it: the background's p99 during the fault and its catch-up over the fault's limit, usually both 10 times its baseline p99 and 10 ms",
        check: |figures, limits| {
            let limit = limits.p99?;
            let over = figures.p99_during_us > limit.times_baseline * figures.p99_baseline_us
                && figures.p99_during_us > limit.at_least_ms * 1000.0;
            over.then(|| {
                (
                    format!("p99 {}", duration_us(figures.p99_during_us)),
                    format!(
                        "the background's p99 was {} during the fault, against {} before it",
                        duration_us(figures.p99_during_us),
                        duration_us(figures.p99_baseline_us)
                    ),
                )
            })
        },
        figure: Some(Figure {
            value: |figures, _| Some(figures.p99_during_us),
            number: duration_us,
        }),
    },
    Rule {
        outcome: Outcome::Degraded,
        name: "slow recovery",
        threshold: "the background back at 90% of its baseline more than 0.5 s after the fault's end, or not within 5 s",
        check: |figures, _| match figures.recovery_s {
            Some(taken) if taken > SLOW_RECOVERY_S => Some((
                format!("back in {}", seconds(taken)),
                format!(
                    "the background took {} after the fault to be back at 90%",
                    seconds(taken)
                ),
            )),
            Some(_) => None,
            None => Some((
                format!("back to {}", percent(figures.recovered_fraction)),
                format!(
                    "the background was back at only {} of its baseline within 5 s of the fault's end",
                    percent(figures.recovered_fraction)
                ),
            )),
        },
        figure: Some(Figure {
            value: |figures, _| figures.recovery_s,
            number: seconds,
        }),
    },
];

/// Applies every rule to `figures` under `fault`'s limits.
pub fn judge(fault: &Fault, figures: &Figures) -> Verdict {
    // RULES is ordered most severe first (a test checks it): the first rule
    // that fires decides.
    let fired: Vec<(Outcome, String, String, &'static str)> = RULES
        .iter()
        .filter_map(|rule| {
            let (figure, sentence) = (rule.check)(figures, &fault.limits)?;
            Some((rule.outcome, figure, sentence, rule.name))
        })
        .collect();
    let measured = RULES
        .iter()
        .filter_map(|rule| {
            let figure = rule.figure.as_ref()?;
            let value = (figure.value)(figures, &fault.limits)?;
            value.is_finite().then_some((rule.name, value))
        })
        .collect();
    match fired.first() {
        Some((outcome, figure, _, rule)) => Verdict {
            outcome: *outcome,
            deciding: figure.clone(),
            reasons: fired.iter().map(|(_, _, sentence, _)| sentence.clone()).collect(),
            rule,
            figures: measured,
        },
        None => Verdict {
            outcome: Outcome::Ok,
            deciding: headline(fault, figures),
            reasons: Vec::new(),
            rule: if fault.limits.throughput_floor.is_some() {
                "throughput"
            } else {
                "slow recovery"
            },
            figures: measured,
        },
    }
}

/// The rule named `name`.
pub fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.name == name)
}

/// The figure an `ok` cell is labelled with: the background's throughput
/// during the fault, or, where the fault does not judge throughput, how
/// soon it was back.
fn headline(fault: &Fault, figures: &Figures) -> String {
    match (fault.limits.throughput_floor, figures.recovery_s) {
        (Some(_), _) => percent(figures.during_fraction),
        (None, Some(taken)) if taken < 0.1 => "back at once".to_owned(),
        (None, Some(taken)) => format!("back in {}", seconds(taken)),
        (None, None) => format!("back to {}", percent(figures.recovered_fraction)),
    }
}

/// The rules in one paragraph, for reports.
pub fn rules_text() -> String {
    let mut text = String::from("Outcome rules, most severe first (the first that fires decides): ");
    for (index, rule) in RULES.iter().enumerate() {
        if index > 0 {
            text.push_str("; ");
        }
        text.push_str(&format!(
            "{} = {} ({})",
            rule.outcome.as_str(),
            rule.name,
            rule.threshold
        ));
    }
    text.push_str(". Throughput is the background's completed cycles per second, in 100 ms intervals; p99 is corrected for coordinated omission.");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::catalog::find;

    fn healthy() -> Figures {
        Figures {
            baseline_rate: 10_000.0,
            during_fraction: 0.97,
            engaged_fraction: Some(0.96),
            p99_baseline_us: 300.0,
            p99_during_us: 500.0,
            cpu_engaged_percent: Some(38.0),
            memory_growth_kib: 200,
            fds_leaked: 1,
            recovery_s: Some(0.0),
            recovered_fraction: 1.0,
            errors: Errors::default(),
            alive: true,
            clean_exit: true,
            exit: Some("status 0".into()),
            fault_bytes: 10 << 20,
            fault_lost: 0,
            fault_connections: 0,
        }
    }

    fn verdict(fault: &str, change: impl FnOnce(&mut Figures)) -> Verdict {
        let mut figures = healthy();
        change(&mut figures);
        judge(find(fault).unwrap(), &figures)
    }

    #[test]
    fn rules_are_ordered_most_severe_first() {
        for pair in RULES.windows(2) {
            assert!(
                pair[0].outcome >= pair[1].outcome,
                "'{}' ({}) comes before the more severe '{}' ({})",
                pair[0].name,
                pair[0].outcome.as_str(),
                pair[1].name,
                pair[1].outcome.as_str()
            );
        }
    }

    #[test]
    fn a_healthy_cell_is_ok_and_labelled_with_its_headline() {
        let ok = verdict("slowloris", |_| {});
        assert_eq!((ok.outcome, ok.deciding.as_str()), (Outcome::Ok, "97%"));
        let pause = verdict("server-pause", |figures| figures.during_fraction = 0.0);
        assert_eq!(
            (pause.outcome, pause.deciding.as_str()),
            (Outcome::Ok, "back at once")
        );
    }

    #[test]
    fn each_failure_is_named_by_its_figure() {
        let leaked = verdict("reset-storm", |figures| figures.fds_leaked = 400);
        assert_eq!(
            (leaked.outcome, leaked.deciding.as_str()),
            (Outcome::Failed, "leaked 400 fds")
        );
        let within_slack = verdict("reset-storm", |figures| figures.fds_leaked = 12);
        assert_eq!(within_slack.outcome, Outcome::Ok);
        let spun = verdict("fd-exhaustion", |figures| {
            figures.cpu_engaged_percent = Some(97.0);
            figures.engaged_fraction = Some(0.0);
            figures.during_fraction = 0.0;
        });
        assert_eq!(
            (spun.outcome, spun.deciding.as_str()),
            (Outcome::Failed, "spun 97% CPU")
        );
        let buffered = verdict("slow-reader", |figures| {
            figures.fault_bytes = 192 << 20;
            figures.fault_connections = 24;
            figures.memory_growth_kib = 150 * 1024;
        });
        assert_eq!(
            (buffered.outcome, buffered.deciding.as_str()),
            (Outcome::Failed, "buffered 150 MiB")
        );
        // A process per slow client costs a process, not their bytes.
        let forked = verdict("slow-reader", |figures| {
            figures.fault_bytes = 192 << 20;
            figures.fault_connections = 24;
            figures.memory_growth_kib = 26 * 1024;
        });
        assert_eq!(forked.outcome, Outcome::Ok, "{forked:?}");
        // The same growth under a fault that does not judge buffering.
        let herd = verdict("idle-herd", |figures| figures.memory_growth_kib = 150 * 1024);
        assert_eq!(herd.outcome, Outcome::Ok);
        let crashed = verdict("urgent-data", |figures| {
            figures.alive = false;
            figures.fds_leaked = 100;
        });
        assert_eq!(crashed.deciding, "crashed");
        assert_eq!(crashed.reasons.len(), 2, "{crashed:?}");
    }

    #[test]
    fn refusals_are_degraded_where_the_fault_takes_what_clients_need_and_lost_elsewhere() {
        let closed = |figures: &mut Figures| figures.errors.closed = 12;
        let herd = verdict("idle-herd", closed);
        assert_eq!(
            (herd.outcome, herd.deciding.as_str()),
            (Outcome::Degraded, "refused 12")
        );
        let storm = verdict("reset-storm", closed);
        assert_eq!(
            (storm.outcome, storm.deciding.as_str()),
            (Outcome::Failed, "dropped 12")
        );
        let wrong = verdict("idle-herd", |figures| figures.errors.mismatch = 1);
        assert_eq!(wrong.outcome, Outcome::Failed);
        let lost = verdict("idle-herd", |figures| {
            figures.errors.lost = 2;
            figures.errors.lost_bytes = 40;
        });
        assert_eq!(
            (lost.outcome, lost.deciding.as_str()),
            (Outcome::Failed, "2 lost echoes")
        );
    }

    #[test]
    fn degradation_and_recovery() {
        let slow = verdict("slowloris", |figures| figures.during_fraction = 0.1);
        assert_eq!((slow.outcome, slow.deciding.as_str()), (Outcome::Degraded, "10%"));
        let late = verdict("server-pause", |figures| figures.recovery_s = Some(0.8));
        assert_eq!(
            (late.outcome, late.deciding.as_str()),
            (Outcome::Degraded, "back in 0.8 s")
        );
        let never = verdict("server-pause", |figures| {
            figures.recovery_s = None;
            figures.recovered_fraction = 0.2;
        });
        assert_eq!(
            (never.outcome, never.deciding.as_str()),
            (Outcome::Failed, "never recovered")
        );
        let tail = verdict("connect-flood", |figures| figures.p99_during_us = 1_000_000.0);
        assert_eq!(
            (tail.outcome, tail.deciding.as_str()),
            (Outcome::Degraded, "p99 1.00 s")
        );
        // A fast baseline's tail grows tenfold but stays under 10 ms: not judged.
        let small = verdict("connect-flood", |figures| figures.p99_during_us = 5_000.0);
        assert_eq!(small.outcome, Outcome::Ok);
    }
}
