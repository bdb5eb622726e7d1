//! Turning what a cell measured into its document ([`Cell`]) and histograms.

use super::{CellSpec, Counted, Measured, flags};
use crate::load::{LoadPlan, ThreadShare};
use crate::results::cell::{
    Cell, CellRecord, ClientStats, Fairness, Latency, LoadShare, ServerStats, Shape, Syscalls,
};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// The cell document of `spec`, from what was measured, and how the server
/// exited and what it said as it did (`None` for a target).
pub fn record(
    spec: &CellSpec,
    measured: &Measured,
    exit: Option<(ExitStatus, Vec<String>)>,
    share: Option<LoadShare>,
) -> CellRecord {
    let (exit, exit_log) = match exit {
        Some((status, log)) => (Some(status), log),
        None => (None, Vec::new()),
    };
    let Measured {
        outcome,
        watch,
        overhead,
        syscalls,
        window,
        perf_events_in_window,
        memory,
        pss_kib,
        ..
    } = measured;
    let load = &spec.load;
    let duration_s = load.duration.as_secs_f64();
    let msgs_per_sec = outcome.messages as f64 / duration_s;
    let server = spec.server.spawns().then(|| {
        let (cpu, wall, ctx_voluntary, ctx_involuntary) = watch.deltas();
        let cpu_us = cpu.as_secs_f64() * 1e6;
        // The server's CPU and system calls are read at its first and last
        // samples: divide them by the messages of that stretch only.
        let share = match (&watch.first, &watch.last) {
            (Some((first, _)), Some((last, _))) => sampled_share(*window, (*first, *last)),
            _ => 1.0,
        };
        let sampled = outcome.messages as f64 * share;
        ServerStats {
            pid: watch.pid,
            cpu_percent: percent(cpu, wall),
            cpu_us_per_msg: if sampled >= 1.0 { cpu_us / sampled } else { 0.0 },
            memory_peak_kib: memory.as_ref().and_then(|memory| memory.as_ref().ok()).map(|(kib, _)| *kib),
            memory_method: Some(match (memory, pss_kib) {
                (Some(Ok((_, method))), _) => (*method).to_owned(),
                (Some(Err(reason)), Some(_)) => format!(
                    "no memory cgroup ({reason}): the sum of proportional set sizes after the window stands in"
                ),
                (Some(Err(reason)), None) => format!("no memory cgroup ({reason}), and no PSS could be read"),
                (None, _) => String::from("not measured"),
            }),
            pss_kib: *pss_kib,
            rss_peak_kib: watch.peak_rss_kib,
            vm_peak_kib: watch.peak_vm_kib,
            threads: watch.peak_threads,
            ctx_voluntary,
            ctx_involuntary,
            fds: watch.peak_fds,
            cpus: spec.cpus.server.clone(),
            processes: watch.peak_processes,
            sampled_share: share,
            exit: exit.map(crate::server::process::exit_text),
            exit_log,
            process_cpu_percent: watch.process_cpu_percent(),
            syscalls: Syscalls {
                during_window: Some(crate::measure::syscalls::describe_window(*perf_events_in_window)),
                ..syscalls_per_message(syscalls.as_ref())
            },
        }
    });
    let thread_percents: Vec<f64> = outcome
        .threads
        .iter()
        .map(|&(cpu, wall)| percent(cpu, wall))
        .collect();
    let client = ClientStats {
        cpu_percent: thread_percents.iter().sum(),
        busiest_thread_percent: thread_percents.iter().copied().fold(0.0, f64::max),
        threads: outcome.threads.len() as u32,
        cpus: spec.cpus.client.clone(),
        overhead_percent: percent(overhead.0, overhead.1),
    };
    let behind_schedule_fraction = if outcome.scheduled_sends > 0 {
        outcome.late_sends as f64 / outcome.scheduled_sends as f64
    } else {
        0.0
    };
    let mut cell = Cell {
        model: spec.server.model_name().map(str::to_owned),
        model_args: spec.server.model_args().to_vec(),
        command: spec.server.command_argv().map(<[String]>::to_vec),
        label: spec.server.label.clone(),
        target: match &spec.server.kind {
            crate::server::Kind::Target { addr } => addr.clone(),
            _ => String::new(),
        },
        server_cpus: spec.cpus.server.clone(),
        scenario: spec.scenario.clone(),
        protocol: load.protocol,
        request: match &load.step {
            crate::load::StepSpec::Http(http) => Some(http.request.to_string()),
            crate::load::StepSpec::Echo => None,
        },
        pipeline: load.pipeline,
        repeat: spec.repeat,
        shape: load.shape,
        connections: load.connections,
        size: load.size,
        idle: load.idle,
        rate: load.rate,
        warmup_s: load.warmup.as_secs_f64(),
        duration_s,
        messages: outcome.messages,
        msgs_per_sec,
        bytes_per_sec: msgs_per_sec * load.step.answer_bytes(load.size) as f64,
        connections_per_sec: (load.shape == Shape::Churn).then_some(msgs_per_sec),
        latency_us: latency(&outcome.histogram),
        errors: outcome.errors.clone(),
        starved_connections: outcome.starved,
        fairness: fairness(&outcome.per_connection),
        server,
        client,
        behind_schedule_fraction,
        machine: measured.machine.clone(),
        flags: Vec::new(),
        share,
        hosts: Vec::new(),
        udp: outcome.udp.clone(),
        until_ci: None,
    };
    cell.flags = flags::judge(&cell);
    CellRecord {
        cell,
        histogram: outcome.histogram.clone(),
        intervals: outcome.intervals.clone(),
    }
}

/// The share of the measurement's messages completed between the server's
/// first and last samples, taking the load as even over the measurement
/// `window` (there is no load after its end). Normally the samples fall on
/// the window's ends and the share is 1; a harness starved of CPU wakes
/// late, and then the server's figures cover only part of the load.
pub fn sampled_share(window: (Instant, Instant), samples: (Instant, Instant)) -> f64 {
    let (from, until) = window;
    let measured = until.saturating_duration_since(from).as_secs_f64();
    let covered = samples
        .1
        .min(until)
        .saturating_duration_since(samples.0.max(from))
        .as_secs_f64();
    if measured > 0.0 {
        (covered / measured).clamp(0.0, 1.0)
    } else {
        1.0
    }
}

/// The counted system calls divided by the messages they served: by name
/// (the calls not counted by name are `other`), in total, and those that
/// failed with EAGAIN.
fn syscalls_per_message(counted: Option<&Result<Counted, String>>) -> Syscalls {
    match counted {
        None => Syscalls::unavailable("the server was not spawned by the harness"),
        Some(Err(reason)) => Syscalls::unavailable(reason),
        Some(Ok(counted)) if counted.messages < 1.0 => {
            Syscalls::unavailable("no message completed in the counting phase")
        }
        // A server that echoed messages made system calls: counters that saw
        // none were not watching where it ran.
        Some(Ok(counted)) if counted.counts.total == 0 => Syscalls::unavailable(
            "the counters saw no system call from the server (they did not watch its CPUs)",
        ),
        Some(Ok(Counted {
            counts,
            messages,
            phase,
        })) => {
            let messages = *messages;
            let per = |count: u64| count as f64 / messages;
            let mut by_name: BTreeMap<String, f64> = counts
                .named
                .iter()
                .filter(|&(_, &count)| count > 0)
                .map(|(&name, &count)| (name.to_owned(), per(count)))
                .collect();
            let named: u64 = counts.named.values().sum();
            let other = counts.total.saturating_sub(named);
            if other > 0 {
                by_name.insert(String::from("other"), per(other));
            }
            Syscalls {
                per_msg: by_name,
                per_msg_total: Some(per(counts.total)),
                eagain_per_msg: counts
                    .eagain
                    .iter()
                    .filter(|&(_, &count)| count > 0)
                    .map(|(&name, &count)| (name.to_owned(), per(count)))
                    .collect(),
                unavailable: None,
                method: Some(format!(
                    "perf tracepoint counters on the server's cgroup, in a {:.1} s counting phase after the window (same connections, same load; {messages:.0} messages); closed before the next window",
                    phase.as_secs_f64()
                )),
                during_window: None,
            }
        }
    }
}

/// This host's part of a cell several load hosts drive together: which
/// part of the load it offered, when it began against the agreed instant
/// `start_at`, its clock's state, and its connections' message counts.
pub fn load_share(plan: &LoadPlan, start_at: &str, measured: &Measured) -> LoadShare {
    let threads = plan.load.client_threads.max(1) as usize;
    let parts: Vec<ThreadShare> = (0..threads)
        .map(|index| ThreadShare::of(plan, index, threads))
        .collect();
    let host_rate = plan
        .load
        .rate
        .map(|rate| rate / f64::from(plan.host.hosts.max(1)));
    LoadShare {
        host: plan.host.index + 1,
        hosts: plan.host.hosts,
        start_at: start_at.to_owned(),
        late_start_ms: measured.late_start.as_secs_f64() * 1e3,
        connections: parts.iter().map(|part| part.connections as u32).sum(),
        idle: parts.iter().map(|part| part.idle as u32).sum(),
        rate: host_rate,
        first_connection: parts.first().map_or(0, |part| part.first_connection),
        source_addr: plan.source.map(|source| source.to_string()),
        clock: measured.clock.clone(),
        per_connection: measured.outcome.per_connection.clone(),
    }
}

fn percent(cpu: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
    }
}

/// Percentiles in microseconds.
pub fn latency(histogram: &Histogram<u64>) -> Latency {
    if histogram.is_empty() {
        return Latency::default();
    }
    let micros = |nanos: u64| nanos as f64 / 1000.0;
    Latency {
        min: micros(histogram.min()),
        mean: histogram.mean() / 1000.0,
        p50: micros(histogram.value_at_quantile(0.50)),
        p90: micros(histogram.value_at_quantile(0.90)),
        p99: micros(histogram.value_at_quantile(0.99)),
        p999: micros(histogram.value_at_quantile(0.999)),
        p9999: micros(histogram.value_at_quantile(0.9999)),
        max: micros(histogram.max()),
    }
}

/// Min, median, max and Jain's index of the messages per connection.
pub fn fairness(per_connection: &[u64]) -> Fairness {
    if per_connection.is_empty() {
        return Fairness::default();
    }
    let mut sorted = per_connection.to_vec();
    sorted.sort_unstable();
    let sum: f64 = sorted.iter().map(|&count| count as f64).sum();
    let sum_of_squares: f64 = sorted.iter().map(|&count| (count as f64).powi(2)).sum();
    Fairness {
        jain: if sum_of_squares > 0.0 {
            sum * sum / (sorted.len() as f64 * sum_of_squares)
        } else {
            0.0
        },
        min: sorted[0],
        median: sorted[sorted.len() / 2],
        max: sorted[sorted.len() - 1],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_samples_cover_only_part_of_the_load() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let window = (at(500), at(1500));
        assert_eq!(sampled_share(window, (at(500), at(1500))), 1.0);
        // Sampled 750 ms late at both ends: a quarter of the load is in it.
        assert!((sampled_share(window, (at(1250), at(2250))) - 0.25).abs() < 1e-9);
        assert_eq!(sampled_share(window, (at(1600), at(2600))), 0.0);
    }
}
