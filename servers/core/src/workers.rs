//! What each worker did, for models that spread clients over workers
//! (`reuseport` threads, `process --prefork` processes).
//!
//! Which worker gets a connection is decided by the kernel (who is waiting in
//! `accept` or `epoll_wait`, or a hash of the addresses), not by load, and
//! each worker's share is the lesson of those models. Each worker counts in
//! its own [`Tally`]; the model logs one line per worker when it stops
//! ([`log_shares`]): connections accepted, wakeups that found nothing (the
//! thundering herd) and CPU time.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One worker's counts. Aligned to a cache line so that workers counting
/// side by side never share one.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Tally {
    /// Connections this worker accepted.
    pub accepted: AtomicU64,
    /// Times the listener was reported readable and the first `accept`
    /// found the queue empty: another worker took the connection first.
    pub found_nothing: AtomicU64,
}

impl Tally {
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    pub fn found_nothing(&self) -> u64 {
        self.found_nothing.load(Ordering::Relaxed)
    }
}

/// One worker's line in [`log_shares`].
#[derive(Debug)]
pub struct Share<'a> {
    /// How the worker is named, e.g. `worker 0 (cpu 1)` or `worker 2 (pid 812)`.
    pub name: String,
    pub tally: &'a Tally,
    /// CPU time the worker used, if known ([`cpu_time`]).
    pub cpu: Option<Duration>,
}

/// Logs one line per worker on stderr, each with its share of all
/// connections, e.g.
/// `reuseport: worker 1 (cpu 1): 37 connections (46%), 0 wakeups found nothing, 1.20 s CPU`.
pub fn log_shares(model: &str, shares: &[Share]) {
    eprint!("{}", share_lines(model, shares));
}

fn share_lines(model: &str, shares: &[Share]) -> String {
    let total: u64 = shares.iter().map(|share| share.tally.accepted()).sum();
    let mut lines = String::new();
    for share in shares {
        let accepted = share.tally.accepted();
        let percent = if total == 0 {
            0.0
        } else {
            100.0 * accepted as f64 / total as f64
        };
        let _ = write!(
            lines,
            "{model}: {}: {accepted} connections ({percent:.0}%), {} wakeups found nothing",
            share.name,
            share.tally.found_nothing()
        );
        if let Some(cpu) = share.cpu {
            let _ = write!(lines, ", {:.2} s CPU", cpu.as_secs_f64());
        }
        lines.push('\n');
    }
    lines
}

/// CPU time (user + system) of a process or thread, from its `stat` file:
/// `/proc/PID/stat`, or `/proc/self/task/TID/stat` for a thread.
pub fn cpu_time(stat_path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // After the command name (in parentheses, may hold spaces): utime is
    // field 14 and stime 15 of the line, 12th and 13th after the name.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    // USER_HZ, which the kernel fixes at 100 for /proc.
    Some(Duration::from_millis((user + system) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_percentages_of_all_connections() {
        let (one, three) = (Tally::default(), Tally::default());
        one.accepted.store(1, Ordering::Relaxed);
        three.accepted.store(3, Ordering::Relaxed);
        three.found_nothing.store(5, Ordering::Relaxed);
        let lines = share_lines(
            "m",
            &[
                Share {
                    name: "worker 0".into(),
                    tally: &one,
                    cpu: None,
                },
                Share {
                    name: "worker 1".into(),
                    tally: &three,
                    cpu: Some(Duration::from_millis(1500)),
                },
            ],
        );
        assert_eq!(
            lines,
            "m: worker 0: 1 connections (25%), 0 wakeups found nothing\n\
             m: worker 1: 3 connections (75%), 5 wakeups found nothing, 1.50 s CPU\n"
        );
    }

    #[test]
    fn reads_this_process_cpu_time() {
        assert!(cpu_time("/proc/self/stat").is_some());
        assert!(cpu_time("/proc/self/no-such-file").is_none());
    }
}
