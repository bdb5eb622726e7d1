//! When a cell's numbers say less than they seem to. Each flag is one rule:
//! what is measured, the threshold, and the sentence a reader is shown. The
//! report lists these sentences; [`judge`] applies the rules to a cell.

use crate::results::cell::{Cell, Flag, MachineStats};

/// A load thread at least this busy may have held the server back.
pub const CLIENT_BOUND_PERCENT: f64 = 95.0;
/// A server this busy (averaged over its CPUs) is itself the limit.
pub const SERVER_SATURATED_PERCENT: f64 = 90.0;
/// Open loop: the fraction of late sends above which the cell is flagged.
pub const BEHIND_SCHEDULE_LIMIT: f64 = 0.01;
/// A load host that began more than this after the agreed `--start-at`
/// instant (milliseconds) measured a window shifted from the other hosts'.
pub const LATE_START_LIMIT_MS: f64 = 10.0;
/// Other processes taking more than this much of the cell's CPUs (% of one
/// CPU, over the window) make its timing figures say as much about them as
/// about the server. On this 2-core VM the kernel's own threads (kworkers,
/// ksoftirqd) took under 1% of a CPU during an `epoll` cell, and `/proc/stat`
/// ticks (10 ms) add ±1% over a 2 s window: a quiet machine reads a few
/// percent. A busy loop competing on the cell's CPUs reads 100% and more
/// (two loops: 193–196%), as did other builds on the machine (103–138%). A
/// fifth of a CPU is well clear of the first and well below the second; it
/// is also what `harness faults` marked a busy machine at before.
pub const NOISY_BUSY_PERCENT: f64 = 20.0;
/// The VM's host keeping more than this much of the cell's CPUs from it
/// (steal, % of one CPU) does the same, with no process here to blame.
/// Lower than [`NOISY_BUSY_PERCENT`]: steal accrues only while a CPU had
/// work to run, so all of it was taken from the cell, while others' busy
/// time may have filled idle time the cell left. Measured here: 0–0.5%.
pub const NOISY_STEAL_PERCENT: f64 = 10.0;

/// Whether what else used the machine (other processes' CPU, steal) makes
/// a window's timing figures unreliable: the `noisy` rule, and the fault
/// matrix's "busy machine" marker.
pub fn noisy(machine: &MachineStats) -> bool {
    machine.busy_percent > NOISY_BUSY_PERCENT || machine.steal_percent > NOISY_STEAL_PERCENT
}

/// One flag's rule.
pub struct Rule {
    pub flag: Flag,
    /// What is measured and the threshold, for a reader checking a verdict.
    pub threshold: &'static str,
    /// What the flag means for the numbers.
    pub meaning: &'static str,
    pub applies: fn(&Cell) -> bool,
}

/// Every flag, in the order cells list them.
pub const RULES: [Rule; 8] = [
    Rule {
        flag: Flag::ClientBound,
        threshold: "the busiest load thread was at least 95% busy while the server used under 90% of its CPUs (always, for a target, whose CPU is unknown)",
        meaning: "the load generator may have been the limit, so the server may have had more to give",
        applies: |cell| {
            // On loopback each message costs the client about as much kernel
            // work as the server: a saturated server meets a busy client, and
            // then both sides are the limit and the server's numbers stand.
            let server_saturated = cell.server.as_ref().is_some_and(|server| {
                server.cpu_percent / server.cpus.len().max(1) as f64 >= SERVER_SATURATED_PERCENT
            });
            cell.client.busiest_thread_percent >= CLIENT_BOUND_PERCENT && !server_saturated
        },
    },
    Rule {
        flag: Flag::BehindSchedule,
        threshold: "more than 1% of the open loop's measured sends went out more than 1 ms after their intended time",
        meaning: "the load generator fell behind the offered rate",
        applies: |cell| cell.behind_schedule_fraction > BEHIND_SCHEDULE_LIMIT,
    },
    Rule {
        flag: Flag::Errors,
        threshold: "any wrong byte, lost byte (a served connection's echo stopped, with bytes owed, for over 2 s), reset, timeout, early close or failed connect",
        meaning: "a byte was wrong or lost, or a connection failed",
        applies: |cell| cell.errors.total() > 0,
    },
    Rule {
        flag: Flag::Starved,
        threshold: "any connection the server never sent a byte (churn: a loop none of whose clients got one)",
        meaning: "some connections got no service at all",
        applies: |cell| cell.starved_connections > 0,
    },
    Rule {
        flag: Flag::SharedCpu,
        threshold: "the server's CPUs and the load's CPUs overlap (as on a one-CPU affinity mask)",
        meaning: "the server and the load generator took turns on a CPU, so each side's numbers include the other's",
        applies: |cell| cell.server_cpus.iter().any(|cpu| cell.client.cpus.contains(cpu)),
    },
    Rule {
        flag: Flag::Noisy,
        threshold: "during the window, other processes took more than 20% of a CPU on the server's and the load's CPUs, or the VM's host kept more than 10% of a CPU from them (steal)",
        meaning: "something else used the machine, so the timing figures say as much about it as about the server",
        applies: |cell| cell.machine.as_ref().is_some_and(noisy),
    },
    Rule {
        flag: Flag::LateStart,
        threshold: "a load host began more than 10 ms after the --start-at instant the hosts agreed on",
        meaning: "a load host's measurement window did not line up with the other hosts', so their sum is not one window of the server's life",
        applies: |cell| {
            let host_late = |late_ms: f64| late_ms > LATE_START_LIMIT_MS;
            cell.share
                .as_ref()
                .is_some_and(|share| host_late(share.late_start_ms))
                || cell.hosts.iter().any(|host| host_late(host.late_start_ms))
        },
    },
    Rule {
        flag: Flag::ClientDropped,
        threshold: "UDP: any datagram dropped by the load generator's own sockets (/proc/net/udp drops) or that it could not send, over the window",
        meaning: "the instrument lost datagrams, so part of the loss is not the server's",
        applies: |cell| cell.udp.as_ref().is_some_and(|udp| udp.client_socket_drops > 0),
    },
];

/// The flags `cell` earns, in [`RULES`] order.
pub fn judge(cell: &Cell) -> Vec<Flag> {
    RULES
        .iter()
        .filter(|rule| (rule.applies)(cell))
        .map(|rule| rule.flag)
        .collect()
}

/// One paragraph naming every flag and its meaning, for reports.
pub fn meanings() -> String {
    let mut text = String::from("Flags: ");
    for (index, rule) in RULES.iter().enumerate() {
        if index > 0 {
            text.push_str("; ");
        }
        text.push_str(&format!(
            "{} = {} ({})",
            rule.flag.as_str(),
            rule.meaning,
            rule.threshold
        ));
    }
    text.push_str(". Flagged cells are drawn with hollow markers and dashed lines.");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sentences name the thresholds the code applies.
    #[test]
    fn each_sentence_names_its_threshold() {
        let errors = RULES.iter().find(|rule| rule.flag == Flag::Errors).unwrap();
        let lost_after = format!("over {} s", crate::load::LOST_AFTER.as_secs());
        assert!(errors.threshold.contains(&lost_after), "{}", errors.threshold);
        let noisy = RULES.iter().find(|rule| rule.flag == Flag::Noisy).unwrap();
        for limit in [NOISY_BUSY_PERCENT, NOISY_STEAL_PERCENT] {
            let named = format!("more than {limit}% of a CPU");
            assert!(noisy.threshold.contains(&named), "{}", noisy.threshold);
        }
    }

    #[test]
    fn a_cell_is_noisy_above_either_threshold() {
        let machine = |busy_percent, steal_percent| MachineStats {
            busy_percent,
            steal_percent,
            cpus: vec![0, 1],
        };
        assert!(!noisy(&machine(0.0, 0.0)));
        assert!(!noisy(&machine(NOISY_BUSY_PERCENT, NOISY_STEAL_PERCENT)));
        assert!(noisy(&machine(NOISY_BUSY_PERCENT + 0.1, 0.0)));
        assert!(noisy(&machine(0.0, NOISY_STEAL_PERCENT + 0.1)));
    }
}
