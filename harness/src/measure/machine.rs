//! What else used the machine during a window: other processes' CPU time on
//! the CPUs a cell runs on, and the time the hypervisor kept those CPUs
//! from this VM (steal), from `/proc/stat`, read once at each end of the
//! window and nowhere in between.
//!
//! Others' CPU is what is left of the CPUs' busy time (user, nice, system)
//! once the server's CPU time and the harness's own are taken away: another
//! build, another benchmark, a busy loop. Kernel threads that handle
//! loopback traffic for the harness and the server (ksoftirqd, when softirqs
//! pile up) count as others: a small bias upward. Interrupt and softirq
//! time is left out of the busy time: loopback traffic is spent there, on
//! behalf of the harness and the server. Steal is its own figure: a VM
//! whose host is busy slows every model without any process here to blame.
//! Both are in % of one CPU, summed over the CPUs watched, so a busy loop
//! that takes a whole CPU is 100 however many CPUs the cell has.

use crate::results::cell::MachineStats;
use std::time::{Duration, Instant};

/// The CPU time spent on some CPUs, and by the harness itself, at one
/// moment.
#[derive(Debug, Clone)]
pub struct MachineCpu {
    at: Instant,
    cpus: Vec<usize>,
    ticks: CpuTicks,
    /// This process's user and system time, in clock ticks.
    harness_ticks: u64,
}

/// Busy and steal time of some CPUs, in clock ticks (USER_HZ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// User + nice + system.
    pub busy: u64,
    pub steal: u64,
}

impl MachineCpu {
    /// Reads `/proc/stat` and the harness's own CPU time now, for `cpus`
    /// (every CPU when empty).
    pub fn read(cpus: &[usize]) -> MachineCpu {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        MachineCpu {
            at: Instant::now(),
            cpus: cpus.to_vec(),
            ticks: cpu_ticks(&stat, cpus),
            harness_ticks: crate::server::tree::read_stat(std::process::id() as i32)
                .map_or(0, |process| process.cpu_ticks),
        }
    }

    /// What else used the CPUs between `from` and this reading, given the
    /// server's CPU time over the same span (zero when the server is not
    /// on these CPUs or not measured).
    pub fn since(&self, from: &MachineCpu, server: Duration) -> MachineStats {
        let wall = self.at.saturating_duration_since(from.at);
        let busy = ticks(self.ticks.busy.saturating_sub(from.ticks.busy));
        let harness = ticks(self.harness_ticks.saturating_sub(from.harness_ticks));
        let others = busy.saturating_sub(server).saturating_sub(harness);
        let steal = ticks(self.ticks.steal.saturating_sub(from.ticks.steal));
        MachineStats {
            busy_percent: percent(others, wall),
            steal_percent: percent(steal, wall),
            cpus: self.cpus.clone(),
        }
    }
}

/// The CPUs whose use a cell records: the server's and the load's for a
/// server the harness starts; the load's alone for a target declared on
/// other CPUs (its CPU time is not known, so it cannot be told from
/// others'); none for a target of unknown CPUs, whose load threads float
/// over the whole mask, perhaps beside the target itself.
pub fn watched_cpus(server: &[usize], client: &[usize], spawns_server: bool) -> Option<Vec<usize>> {
    if spawns_server {
        let mut cpus: Vec<usize> = server.iter().chain(client).copied().collect();
        cpus.sort_unstable();
        cpus.dedup();
        Some(cpus)
    } else if server.is_empty() {
        None
    } else {
        let cpus: Vec<usize> = client
            .iter()
            .copied()
            .filter(|cpu| !server.contains(cpu))
            .collect();
        (!cpus.is_empty()).then_some(cpus)
    }
}

fn ticks(count: u64) -> Duration {
    Duration::from_millis(count * 1000 / super::TICKS_PER_SECOND)
}

fn percent(time: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        100.0 * time.as_secs_f64() / wall.as_secs_f64()
    }
}

/// Busy (user + nice + system) and steal ticks of `cpus` in `/proc/stat`
/// text (of all CPUs, the `cpu` line, when `cpus` is empty).
pub fn cpu_ticks(stat: &str, cpus: &[usize]) -> CpuTicks {
    let mut sum = CpuTicks::default();
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(number) = fields.next().and_then(|name| name.strip_prefix("cpu")) else {
            continue;
        };
        let wanted = match number {
            "" => cpus.is_empty(),
            number => number.parse::<usize>().is_ok_and(|cpu| cpus.contains(&cpu)),
        };
        if !wanted {
            continue;
        }
        // user nice system idle iowait irq softirq steal guest guest_nice
        let field: Vec<u64> = fields.map(|field| field.parse().unwrap_or(0)).collect();
        let at = |index: usize| field.get(index).copied().unwrap_or(0);
        sum.busy += at(0) + at(1) + at(2);
        sum.steal += at(7);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  10 1 5 100 7 3 9 2 0 0\n\
                        cpu0 4 0 2 50 3 1 4 1 0 0\n\
                        cpu1 6 1 3 50 4 2 5 1 0 0\n\
                        intr 1 2 3\n\
                        ctxt 99\n";

    #[test]
    fn busy_and_steal_are_read_per_cpu_without_idle_or_interrupts() {
        assert_eq!(
            cpu_ticks(STAT, &[0]),
            CpuTicks {
                busy: 4 + 2,
                steal: 1
            }
        );
        assert_eq!(
            cpu_ticks(STAT, &[0, 1]),
            CpuTicks {
                busy: 6 + 10,
                steal: 2
            }
        );
        assert_eq!(cpu_ticks(STAT, &[]), CpuTicks { busy: 16, steal: 2 });
        assert_eq!(cpu_ticks(STAT, &[7]), CpuTicks::default());
        // A kernel without the steal column.
        assert_eq!(cpu_ticks("cpu0 4 0 2 50\n", &[0]), CpuTicks { busy: 6, steal: 0 });
    }

    #[test]
    fn others_are_what_the_server_and_the_harness_did_not_use() {
        let start = Instant::now();
        let reading = |seconds: u64, busy: u64, steal: u64, harness_ticks: u64| MachineCpu {
            at: start + Duration::from_secs(seconds),
            cpus: vec![0, 1],
            ticks: CpuTicks { busy, steal },
            harness_ticks,
        };
        // In 2 s: 2 s of CPU busy, 0.6 s of it the harness, 1 s the server:
        // others took 0.4 s, 20% of one CPU; steal 0.5 s, 25%.
        let from = reading(0, 1000, 40, 300);
        let to = reading(2, 1200, 90, 360);
        let stats = to.since(&from, Duration::from_secs(1));
        assert!((stats.busy_percent - 20.0).abs() < 1e-9, "{stats:?}");
        assert!((stats.steal_percent - 25.0).abs() < 1e-9, "{stats:?}");
        assert_eq!(stats.cpus, [0, 1]);
        // A server charged more than the CPUs' busy time (clock skew) leaves
        // no negative remainder.
        let stats = to.since(&from, Duration::from_secs(5));
        assert_eq!(stats.busy_percent, 0.0);
    }

    #[test]
    fn a_target_of_unknown_cpus_is_not_watched() {
        assert_eq!(watched_cpus(&[0], &[1], true), Some(vec![0, 1]));
        assert_eq!(watched_cpus(&[0], &[0], true), Some(vec![0]));
        assert_eq!(watched_cpus(&[0], &[1], false), Some(vec![1]));
        assert_eq!(watched_cpus(&[], &[0, 1], false), None);
        assert_eq!(watched_cpus(&[0], &[0], false), None);
    }
}
