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
use crate::measure::syscalls::{self, Counters, SyscallCounts};
use crate::measure::{self, Sampler, Watch};
use crate::protocol::Protocol;
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
    if let Some(model) = spec.server.model_name() {
        let datagrams = echo_core::DATAGRAM_MODELS.contains(&model);
        match (datagrams, spec.load.protocol) {
            (true, Protocol::Echo) => bail!("model '{model}' serves UDP: drive it with --protocol udp"),
            (false, Protocol::Udp) => bail!(
                "model '{model}' serves TCP: --protocol udp needs a UDP server (--model udp, a --server-cmd or a --target)"
            ),
            _ => {}
        }
    }
    let needed = u64::from(spec.load.connections) + u64::from(spec.load.idle) + 64;
    let limit = echo_core::process::raise_fd_limit().context("cannot raise the open-file limit")?;
    if needed > limit {
        bail!(
            "{needed} file descriptors are needed but the open-file limit is {limit} (raise it with ulimit -n)"
        );
    }
    let mut started = spec.server.start_for(&spec.cpus.server, spec.load.protocol)?;
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
        counting: match started.process.as_ref() {
            Some(process) if process.syscall_counting().is_ok() => COUNTING_PHASE,
            _ => Duration::ZERO,
        },
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
    /// The server's system calls in the counting phase after the window, or
    /// why they were not counted (`None` for a target).
    pub syscalls: Option<Result<Counted, String>>,
    /// How much later than the agreed start instant the load began (zero
    /// without one), and the kernel's clock state at that moment.
    pub late_start: Duration,
    pub clock: Option<crate::results::cell::ClockSync>,
    /// When the measurement began and ended; the server's samples may fall
    /// later than that (see [`record::sampled_share`]).
    pub window: (Instant, Instant),
    /// Perf events the harness held open while the window was timed (zero
    /// by design: checked, not assumed).
    pub perf_events_in_window: usize,
    /// The server's memory cgroup's peak over the window (KiB) and how it
    /// was read, or why there is none (`None` for a target).
    pub memory: Option<Result<(u64, &'static str), String>>,
    /// The sum of the tree's proportional set sizes, read once after the
    /// window with the clients still connected.
    pub pss_kib: Option<u64>,
    /// What else used the cell's CPUs over the window (`None` when they
    /// were not watched).
    pub machine: Option<crate::results::cell::MachineStats>,
}

/// The system calls of a counting phase and the messages they served.
pub struct Counted {
    pub counts: SyscallCounts,
    /// Messages completed in the phase, times the share of the phase the
    /// two reads of the counters spanned (1 when they fell on its ends).
    pub messages: f64,
    /// How long the phase was.
    pub phase: Duration,
}

/// How long the counting phase after each window lasts: long enough that
/// the per-message figures of the slowest default cell (one connection,
/// about 15k messages a second) rest on thousands of messages, short enough
/// that the quick suite, 44 cells, stays under 4 minutes.
pub const COUNTING_PHASE: Duration = Duration::from_millis(300);

/// Where the counting phase stands.
enum Counting {
    /// Not counted (a target, `--no-syscalls`), or not yet begun.
    Idle,
    /// Counters open, waiting for the phase to begin.
    Open(Counters),
    /// Counting since the first read, taken at that instant.
    Started(Counters, SyscallCounts, Instant),
    Done(Result<Counted, String>),
}

/// The instants at which the driving thread wakes: samples of the server
/// and of the harness at the start of the measurement, every
/// [`SAMPLE_EVERY`] and at its end; the counting phase's two ends;
/// progress every [`PROGRESS_EVERY`].
struct Schedule {
    next_sample: Instant,
    next_progress: Instant,
    measure_until: Instant,
    /// The counting phase, if there is one.
    counting: Option<(Instant, Instant)>,
    samples: u64,
    sampling_done: bool,
}

impl Schedule {
    /// The next instant anything is due, given where counting stands.
    fn next_wake(&self, counting: &Counting) -> Instant {
        let mut wake = self.next_progress.min(self.measure_until);
        if !self.sampling_done {
            wake = wake.min(self.next_sample);
        }
        match (self.counting, counting) {
            (Some((from, _)), Counting::Open(_)) => wake.min(from),
            (Some((_, until)), Counting::Started(..)) => wake.min(until),
            _ => wake,
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
/// measurement, and what else used `machine_cpus` at its two ends; then,
/// for a spawned server whose system calls are counted, the counting phase.
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
    // The last cell's counters close while this server starts and its
    // clients connect; they must be gone before the load starts.
    syscalls::wait_closed();
    let (clock, late_start) = match start_at {
        Some(at) => run.begin_at(at),
        None => (run.begin(), Duration::ZERO),
    };
    let clock_state = start_at.and_then(|_| crate::measure::clock::clock_sync());
    let measure_from = clock.start + plan.load.warmup;
    let mut perf_events_in_window = syscalls::perf_events_open_here();
    let counting_phase = (!plan.counting.is_zero()).then(|| clock.counting_phase());
    let total = match counting_phase {
        Some((_, until)) => until.saturating_duration_since(clock.start),
        None => plan.load.warmup + plan.load.duration,
    };
    let mut schedule = Schedule {
        next_sample: measure_from,
        next_progress: clock.start,
        measure_until: measure_from + plan.load.duration,
        counting: counting_phase,
        samples: 0,
        sampling_done: false,
    };
    let mut watch = Watch::default();
    let mut sampler = Sampler::new(SAMPLE_EVERY);
    let mut overhead_start: Option<(Instant, Duration)> = None;
    let mut overhead = (Duration::ZERO, Duration::ZERO);
    let mut counting = Counting::Idle;
    let mut memory: Option<Result<(u64, &'static str), String>> = None;
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
                // The memory cgroup's peak: reset at the window's start,
                // read at its end.
                match (server.memory(), schedule.samples) {
                    (Err(reason), _) => memory = Some(Err(reason)),
                    (Ok(cgroup), 0) => memory = Some(cgroup.reset_peak().map(|()| (0, ""))),
                    (Ok(cgroup), _) if last => {
                        if let Some(Ok(_)) = memory {
                            memory = Some(cgroup.peak_kib());
                        }
                    }
                    // Between the ends the sampler reads what it needs.
                    (Ok(_), _) => {}
                }
                if let Some((at, sample)) = sampler.sample(server, last || schedule.samples == 0) {
                    watch.add(at, sample);
                }
            }
            match overhead_start {
                None => overhead_start = Some((at, harness_cpu)),
                Some((from, cpu_from)) => overhead = (harness_cpu.saturating_sub(cpu_from), at - from),
            }
            schedule.advance_sample(now, sampler.interval());
            if schedule.sampling_done {
                // The window is over: what was open in it, then the counters.
                perf_events_in_window = perf_events_in_window.max(syscalls::perf_events_open_here());
                if let (Some(server), Some(_)) = (server.as_deref_mut(), counting_phase) {
                    counting = match server.open_syscall_counters() {
                        Ok(counters) => Counting::Open(counters),
                        Err(reason) => Counting::Done(Err(reason)),
                    };
                }
            }
        }
        counting = advance_counting(counting, counting_phase);
        if now >= schedule.next_progress {
            observe(CellProgress {
                elapsed: now.saturating_duration_since(clock.start).min(total),
                total,
                messages: run.completed(),
            });
            schedule.next_progress = now + PROGRESS_EVERY;
        }
        let counting_over = !matches!(counting, Counting::Open(_) | Counting::Started(..));
        if schedule.sampling_done && counting_over {
            break;
        }
        std::thread::sleep(
            schedule
                .next_wake(&counting)
                .saturating_duration_since(Instant::now()),
        );
    }
    // A peak reset but never read (the server ended first) is no figure.
    let memory = memory.map(|memory| {
        memory.and_then(|(kib, method)| match method {
            "" => Err(String::from("the window's end was not sampled")),
            method => Ok((kib, method)),
        })
    });
    // Once, after the window, with the clients still connected.
    let pss_kib = server
        .as_deref()
        .and_then(|server| measure::pss_kib(server.pid()));
    let outcome = run.join().context("the load failed")?;
    if let Some(error) = server_failure {
        return Err(error);
    }
    observe(CellProgress {
        elapsed: total,
        total,
        messages: outcome.messages,
    });
    let syscalls = server.map(|server| match counting {
        Counting::Done(Ok(mut counted)) => {
            counted.messages *= outcome.counted as f64;
            Ok(counted)
        }
        Counting::Done(Err(reason)) => Err(reason),
        _ => match server.syscall_counting() {
            Err(reason) => Err(reason),
            Ok(()) => Err(String::from("the counting phase did not run to its end")),
        },
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
        perf_events_in_window,
        memory,
        pss_kib,
        machine,
    })
}

/// The counting phase's next step, if one is due: the first read of the
/// counters at the phase's start, the last at its end, then closing them.
/// A finished phase's `messages` is the share of the phase the reads
/// spanned; [`drive`] multiplies it by the messages the load counted.
fn advance_counting(counting: Counting, phase: Option<(Instant, Instant)>) -> Counting {
    let Some((from, until)) = phase else {
        return counting;
    };
    let now = Instant::now();
    match counting {
        Counting::Open(mut counters) if now >= from => match counters.read() {
            Ok(start) => Counting::Started(counters, start, Instant::now()),
            Err(error) => {
                counters.close();
                Counting::Done(Err(format!("cannot read the counters: {error}")))
            }
        },
        Counting::Started(mut counters, start, read_at) if now >= until => {
            let end = counters.read();
            let end_at = Instant::now();
            counters.close();
            Counting::Done(match end {
                Ok(end) => Ok(Counted {
                    counts: end.since(&start),
                    messages: record::sampled_share((from, until), (read_at, end_at)),
                    phase: until - from,
                }),
                Err(error) => Err(format!("cannot read the counters: {error}")),
            })
        }
        other => other,
    }
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
    if load.pipeline > 1 && load.shape != Shape::Closed {
        bail!(
            "--pipeline applies only to --shape closed (open: requests go when due; churn: one per connection)"
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
    if load.protocol == Protocol::Udp {
        crate::load::udp::check(load)?;
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
    if load.pipeline > 1 {
        name.push_str(&format!("-p{}", load.pipeline));
    }
    if load.protocol == Protocol::Udp {
        name = format!("{}-{name}", load.protocol.name());
    }
    name
}
