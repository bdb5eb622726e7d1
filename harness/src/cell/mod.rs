//! One cell: one server under one load, measured once. Every command that
//! measures (`bench`, `run`, and those built on them) goes through
//! [`run_cell`].
//!
//! The steps: start the server (spawned pinned to the server CPUs, or a
//! target checked), open the connections from load threads pinned to the
//! client CPUs, warm up, measure, stop the server and see how it ended.
//! During the measurement this thread does three things on one schedule
//! ([`Schedule`]), whatever the server is: it samples the server's process
//! tree, it reads the CPU time of the harness's own non-load threads (so the
//! cell records what the instrument cost), and it publishes progress. It
//! sleeps in between: it never spins. At the window's two ends only, it also
//! reads what else used the cell's CPUs ([`measure::machine`]).
//!
//! # Layout
//!
//! - [`flags`]: when a cell's numbers say less than they seem to.
//! - [`record`]: turning what was measured into the cell document.

pub mod flags;
pub mod record;

use crate::cpus::CpuLayout;
use crate::load::{HostShare, LoadOutcome, LoadPlan, LoadRun, LoadSpec};
use crate::measure::machine::{self, MachineCpu};
use crate::measure::syscalls::SyscallCounts;
use crate::measure::{self, Watch};
use crate::results::cell::{CellRecord, Shape};
use crate::server::ServerUnderTest;
use crate::server::process::ServerProcess;
use anyhow::{Context, bail};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most connections (active or idle) a cell may open.
pub const MAX_CONNECTIONS: u32 = 100_000;
/// Largest message size.
pub const MAX_SIZE: u32 = 64 * 1024 * 1024;
/// How often the server is sampled during the measurement.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// A server of more processes than this (a process per client) is sampled
/// every [`LARGE_TREE_SAMPLE_EVERY`], in detail only at the ends: reading
/// every process's files five times a second would cost the harness more
/// than the load it generates.
const LARGE_TREE: u64 = 64;
const LARGE_TREE_SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Every how many samples one is detailed (context switches, fds, VmHWM).
const DETAILED_EVERY: u64 = 5;
/// How often progress is published.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// One cell: what serves it, under which load, on which CPUs.
#[derive(Debug, Clone)]
pub struct CellSpec {
    pub server: ServerUnderTest,
    pub scenario: String,
    pub repeat: u32,
    pub load: LoadSpec,
    pub cpus: CpuLayout,
}

/// This process's part in a cell that several load hosts drive together
/// (`bench --share K/N --start-at TIME`). The default is a cell driven by
/// this process alone, started as soon as its connections are open.
#[derive(Debug, Clone, Default)]
pub struct HostPart {
    /// Which part of the load this process offers.
    pub share: HostShare,
    /// The instant the hosts agreed on, already mapped onto this host's
    /// monotonic clock, and as it was given (RFC 3339).
    pub start_at: Option<(Instant, String)>,
    /// The local address connections come from.
    pub source: Option<IpAddr>,
}

/// Where a running cell stands, for progress display.
#[derive(Debug, Clone, Copy)]
pub struct CellProgress {
    /// Since the load started (warm-up included).
    pub elapsed: Duration,
    /// Warm-up plus measurement.
    pub total: Duration,
    /// Messages completed so far, warm-up included.
    pub messages: u64,
}

/// Measures one cell.
pub fn run_cell(spec: &CellSpec) -> anyhow::Result<CellRecord> {
    run_cell_observed(spec, &mut |_| {})
}

/// Measures one cell, reporting progress about ten times a second.
pub fn run_cell_observed(
    spec: &CellSpec,
    observe: &mut dyn FnMut(CellProgress),
) -> anyhow::Result<CellRecord> {
    run_cell_as(spec, &HostPart::default(), observe)
}

/// Measures this process's part of one cell (see [`HostPart`]).
pub fn run_cell_as(
    spec: &CellSpec,
    part: &HostPart,
    observe: &mut dyn FnMut(CellProgress),
) -> anyhow::Result<CellRecord> {
    check_load(&spec.load)?;
    let needed = u64::from(spec.load.connections) + u64::from(spec.load.idle) + 64;
    let limit = echo_core::process::raise_fd_limit().context("cannot raise the open-file limit")?;
    if needed > limit {
        bail!(
            "{needed} file descriptors are needed but the open-file limit is {limit} (raise it with ulimit -n)"
        );
    }
    let mut started = spec.server.start(&spec.cpus.server)?;
    // This thread (pacing, sampling) stays off the server's CPUs too.
    if !spec.cpus.client.is_empty() {
        echo_core::affinity::pin_to(&spec.cpus.client)
            .context("cannot pin the harness to the client CPUs")?;
    }
    let plan = LoadPlan {
        addr: started.addr,
        load: spec.load.clone(),
        cpus: spec.cpus.load_thread_cpus(),
        host: part.share,
        source: part.source,
        interval: crate::load::recorder::SECOND,
    };
    let start_at = part.start_at.as_ref().map(|(at, _)| *at);
    let machine_cpus = machine::watched_cpus(&spec.cpus.server, &spec.cpus.client, spec.server.spawns());
    let measured = drive(
        &plan,
        started.process.as_mut(),
        start_at,
        machine_cpus.as_deref(),
        observe,
    )?;
    let exit = started.stop()?;
    if let (Some(model), Some((status, _))) = (spec.server.model_name(), &exit)
        && !status.success()
    {
        // A model must exit 0 on SIGTERM (the process contract); a command's
        // exit is recorded, whatever it is.
        bail!(
            "model '{model}' {} when stopped with SIGTERM",
            crate::server::process::describe(Some(*status))
        );
    }
    let share = part
        .start_at
        .as_ref()
        .map(|(_, start_at)| record::load_share(&plan, start_at, &measured));
    Ok(record::record(spec, &measured, exit, share))
}

/// What [`drive`] measured.
pub struct Measured {
    pub outcome: LoadOutcome,
    pub watch: Watch,
    /// CPU time of the harness's non-load threads, and the wall time it was
    /// taken over (the measurement window).
    pub overhead: (Duration, Duration),
    /// The server's system calls over the measurement window, or why they
    /// were not counted (`None` for a target).
    pub syscalls: Option<Result<SyscallCounts, String>>,
    /// How much later than the agreed start instant the load began (zero
    /// without one), and the kernel's clock state at that moment.
    pub late_start: Duration,
    pub clock: Option<crate::results::cell::ClockSync>,
    /// When the measurement began and ended; the server's samples may fall
    /// later than that (see [`record::sampled_share`]).
    pub window: (Instant, Instant),
    /// What else used the cell's CPUs over the window (`None` when they
    /// were not watched).
    pub machine: Option<crate::results::cell::MachineStats>,
}

/// The instants at which the driving thread wakes: samples of the server
/// and of the harness at the start of the measurement, every
/// [`SAMPLE_EVERY`] and at its end; progress every [`PROGRESS_EVERY`].
struct Schedule {
    next_sample: Instant,
    next_progress: Instant,
    measure_until: Instant,
    samples: u64,
    sampling_done: bool,
}

impl Schedule {
    /// The next instant anything is due.
    fn next_wake(&self) -> Instant {
        let progress = self.next_progress.min(self.measure_until);
        if self.sampling_done {
            progress
        } else {
            progress.min(self.next_sample)
        }
    }

    /// Moves to the next sample, `every` later; the last one falls exactly
    /// at the end.
    fn advance_sample(&mut self, now: Instant, every: Duration) {
        self.samples += 1;
        if now >= self.measure_until {
            self.sampling_done = true;
            return;
        }
        self.next_sample += every;
        if self.next_sample > self.measure_until {
            self.next_sample = self.measure_until;
        }
    }
}

/// Runs the load, and samples the server and the harness over the
/// measurement, and what else used `machine_cpus` at its two ends.
fn drive(
    plan: &LoadPlan,
    mut server: Option<&mut ServerProcess>,
    start_at: Option<Instant>,
    machine_cpus: Option<&[usize]>,
    observe: &mut dyn FnMut(CellProgress),
) -> anyhow::Result<Measured> {
    let mut run = LoadRun::start(plan).context("cannot start the load threads")?;
    run.wait_connected().context("cannot open the connections")?;
    let load_threads = run.thread_ids();
    let (clock, late_start) = match start_at {
        Some(at) => run.begin_at(at),
        None => (run.begin(), Duration::ZERO),
    };
    let clock_state = start_at.and_then(|_| crate::measure::clock::clock_sync());
    let measure_from = clock.start + plan.load.warmup;
    let total = plan.load.warmup + plan.load.duration;
    let mut schedule = Schedule {
        next_sample: measure_from,
        next_progress: clock.start,
        measure_until: measure_from + plan.load.duration,
        samples: 0,
        sampling_done: false,
    };
    let mut watch = Watch::default();
    let mut overhead_start: Option<(Instant, Duration)> = None;
    let mut overhead = (Duration::ZERO, Duration::ZERO);
    let mut syscalls_start: Option<Result<SyscallCounts, String>> = None;
    let mut syscalls = None;
    let mut machine_ends: (Option<MachineCpu>, Option<MachineCpu>) = (None, None);
    let mut server_failure = None;
    loop {
        let now = Instant::now();
        if let Some(server) = server.as_deref_mut() {
            watch.pid = server.pid();
            if let Err(error) = server.check_running() {
                server_failure = Some(error);
                break;
            }
        }
        if !schedule.sampling_done && now >= schedule.next_sample {
            let at = Instant::now();
            let harness_cpu = measure::harness_cpu_except(&load_threads);
            if let Some(cpus) = machine_cpus {
                if schedule.samples == 0 {
                    machine_ends.0 = Some(MachineCpu::read(cpus));
                } else if now >= schedule.measure_until {
                    machine_ends.1 = Some(MachineCpu::read(cpus));
                }
            }
            if let Some(server) = server.as_deref_mut() {
                let last = now >= schedule.measure_until;
                // The kernel's system-call counters: at the ends only.
                if schedule.samples == 0 {
                    syscalls_start = Some(server.syscalls());
                } else if last {
                    syscalls = match (syscalls_start.take(), server.syscalls()) {
                        (Some(Ok(start)), Ok(end)) => Some(Ok(end.since(&start))),
                        (Some(Err(reason)), _) | (_, Err(reason)) => Some(Err(reason)),
                        (None, Ok(_)) => None,
                    };
                }
                let large = watch.peak_processes > LARGE_TREE;
                let detailed = (!large && schedule.samples.is_multiple_of(DETAILED_EVERY))
                    || last
                    || schedule.samples == 0;
                if let Some(mut sample) = measure::sample_tree(server.pid(), detailed) {
                    // The tree's cgroup knows its CPU time exactly, exited
                    // processes included; /proc's per-process ticks do not.
                    if let Some(cpu) = server.cgroup_cpu_time() {
                        sample.cpu = cpu;
                    }
                    watch.add(at, sample);
                }
            }
            match overhead_start {
                None => overhead_start = Some((at, harness_cpu)),
                Some((from, cpu_from)) => overhead = (harness_cpu.saturating_sub(cpu_from), at - from),
            }
            let every = if watch.peak_processes > LARGE_TREE {
                LARGE_TREE_SAMPLE_EVERY
            } else {
                SAMPLE_EVERY
            };
            schedule.advance_sample(now, every);
        }
        if now >= schedule.next_progress {
            observe(CellProgress {
                elapsed: now.saturating_duration_since(clock.start).min(total),
                total,
                messages: run.completed(),
            });
            schedule.next_progress = now + PROGRESS_EVERY;
        }
        if schedule.sampling_done {
            break;
        }
        std::thread::sleep(schedule.next_wake().saturating_duration_since(Instant::now()));
    }
    let outcome = run.join().context("the load failed")?;
    if let Some(error) = server_failure {
        return Err(error);
    }
    observe(CellProgress {
        elapsed: total,
        total,
        messages: outcome.messages,
    });
    let machine = match machine_ends {
        (Some(from), Some(to)) => Some(to.since(&from, watch.deltas().0)),
        _ => None,
    };
    Ok(Measured {
        outcome,
        watch,
        overhead,
        syscalls,
        late_start,
        clock: clock_state,
        window: (measure_from, schedule.measure_until),
        machine,
    })
}

/// Checks a load for values that make no sense, with a sentence for each.
pub fn check_load(load: &LoadSpec) -> anyhow::Result<()> {
    if load.connections == 0 || load.connections > MAX_CONNECTIONS {
        bail!(
            "--connections must be between 1 and {MAX_CONNECTIONS} (got {})",
            load.connections
        );
    }
    if load.idle > MAX_CONNECTIONS {
        bail!("--idle must be at most {MAX_CONNECTIONS} (got {})", load.idle);
    }
    if load.size == 0 || load.size > MAX_SIZE {
        bail!(
            "--size must be between 1 and {MAX_SIZE} bytes (64 MiB) (got {})",
            load.size
        );
    }
    match (load.shape, load.rate) {
        (Shape::Open, None) => bail!("--shape open needs --rate MSGS_PER_S"),
        (Shape::Open, Some(rate)) if !(rate > 0.0 && rate.is_finite()) => {
            bail!("--rate must be a positive number of messages per second (got {rate})")
        }
        (Shape::Closed | Shape::Churn, Some(_)) => {
            bail!("--rate applies only to --shape open")
        }
        _ => {}
    }
    if load.duration.is_zero() {
        bail!("--duration must be more than 0 seconds");
    }
    check_client_threads(load.client_threads)
}

/// Checks `--client-threads`: between 1 and 1024.
pub fn check_client_threads(client_threads: u32) -> anyhow::Result<()> {
    if client_threads == 0 || client_threads > 1024 {
        bail!("--client-threads must be between 1 and 1024 (got {client_threads})");
    }
    Ok(())
}

/// The scenario name `bench` gives a load: `closed-c100-s64`,
/// `open-r50000-c100-s64`, `churn-c10`, with `-i1000` for idle connections.
pub fn scenario_name(load: &LoadSpec) -> String {
    let mut name = match load.shape {
        Shape::Closed => format!("closed-c{}-s{}", load.connections, load.size),
        Shape::Open => format!(
            "open-r{}-c{}-s{}",
            load.rate.unwrap_or(0.0),
            load.connections,
            load.size
        ),
        Shape::Churn if load.size == 64 => format!("churn-c{}", load.connections),
        Shape::Churn => format!("churn-c{}-s{}", load.connections, load.size),
    };
    if load.idle > 0 {
        name.push_str(&format!("-i{}", load.idle));
    }
    name
}
