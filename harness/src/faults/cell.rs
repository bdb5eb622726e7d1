//! One fault cell: one server, one fault, measured.
//!
//! The background load runs from start to end, from the load engine: new
//! clients arriving ([`BACKGROUND_LOOPS`] at a time, each connecting,
//! echoing one 64-byte message and closing: churn), recorded in
//! [`STEP`]-long interval histograms. New clients rather than long-lived
//! connections, because long-lived connections would hold `single`'s only
//! client slot and `pool`'s workers from the first second, and no fault
//! could be seen past them; and because "can a new client still get
//! served?" is the question a fault asks of a server.
//!
//! The phases, after a warm-up: a baseline; the fault, its injector running
//! in a thread of its own until the fault's end; the recovery window. This
//! thread samples the server's process tree every [`STEP`] (CPU, memory),
//! and in detail (open descriptors) at the fault's start and after the
//! recovery window, and reads the kernel's listen-queue counters at both.
//! Then [`super::judge`] turns the figures into an outcome.

use super::catalog::Fault;
use super::inject::{Injected, Injection};
use super::judge::{self, Figures, SPIN_WINDOW_S};
use crate::cell::CellSpec;
use crate::cpus::CpuLayout;
use crate::load::recorder::new_histogram;
use crate::load::{LoadOutcome, LoadPlan, LoadRun, LoadSpec};
use crate::measure::machine::MachineCpu;
use crate::measure::{self, Sampler, TreeSample, Watch};
use crate::protocol::{Protocol, ProtocolArgs, Request, Work};
use crate::results::cell::{CellRecord, MachineStats, Shape};
use crate::results::faults::FaultRow;
use crate::server::ServerUnderTest;
use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use std::ops::Range;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Interval of the background's histograms, and of the server's samples.
pub const STEP: Duration = Duration::from_millis(100);
/// Background clients in flight at once.
pub const BACKGROUND_LOOPS: u32 = 4;
/// Background message size.
const MESSAGE: u32 = 64;
/// The recovery is judged over windows this many steps long (200 ms).
const RECOVERY_WINDOW_STEPS: usize = 2;
/// An injector must have cleaned up and returned this long after its fault
/// ends.
const INJECTOR_GRACE: Duration = Duration::from_secs(10);
/// An injector that returns later than this after its fault's end overlapped
/// the recovery it was to be measured by: the cell is not judged.
const INJECTOR_OVERRUN: Duration = Duration::from_secs(1);
/// After the recovery window, how long open descriptors may take to come
/// back down before what is left counts as leaked.
const LEAK_SETTLE: Duration = Duration::from_secs(5);
/// A background not back at 90% by the end of the recovery window is
/// watched on, in short runs of [`RECOVERY_PROBE`], until it is or this
/// long after the fault's end: "never recovered" means not within it.
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(5);
const RECOVERY_PROBE: Duration = Duration::from_millis(200);

/// How long each phase lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phases {
    pub warmup: Duration,
    pub baseline: Duration,
    pub fault: Duration,
    pub recovery: Duration,
}

impl Phases {
    /// `harness faults`: about 7 s a cell.
    pub const FULL: Phases = Phases {
        warmup: Duration::from_millis(500),
        baseline: Duration::from_millis(1500),
        fault: Duration::from_millis(2500),
        recovery: Duration::from_millis(2000),
    };
    /// `harness faults --quick`: about 2 s a cell.
    pub const QUICK: Phases = Phases {
        warmup: Duration::from_millis(150),
        baseline: Duration::from_millis(400),
        fault: Duration::from_millis(800),
        recovery: Duration::from_millis(400),
    };

    /// These phases with `fault`'s own length, where it has one.
    pub fn for_fault(self, fault: &Fault) -> Phases {
        Phases {
            fault: fault.length.unwrap_or(self.fault),
            ..self
        }
    }

    /// Measured time (warm-up excluded).
    pub fn measured(&self) -> Duration {
        self.baseline + self.fault + self.recovery
    }

    pub fn total(&self) -> Duration {
        self.warmup + self.measured()
    }
}

/// One fault cell to measure.
pub struct FaultCellSpec<'a> {
    pub server: &'a ServerUnderTest,
    pub fault: &'static Fault,
    pub phases: Phases,
    pub cpus: &'a CpuLayout,
    pub client_threads: u32,
    /// What the background speaks, and what a model is told to serve.
    pub protocol: &'a ProtocolArgs,
    /// Which run of the cell this is (1 to `--repeat`).
    pub repeat: u32,
}

/// A measured fault cell: its row of `faults.json` and the background
/// load's ordinary cell.
pub struct Measured {
    pub row: FaultRow,
    pub record: CellRecord,
}

/// The scenario name of `fault`'s background cells: `fault-slowloris`;
/// under HTTP led by the protocol and the request, as `bench` names its
/// scenarios (`http-plaintext-fault-slowloris`); with the work a model
/// does (`-wait1000`).
pub fn scenario(fault: &Fault, protocol: &ProtocolArgs) -> String {
    let mut name = format!("fault-{}", fault.name);
    if protocol.protocol == Protocol::Http {
        let request = protocol.request.clone().unwrap_or(Request::Plaintext);
        name = format!("http-{}-{name}", request.tag());
    }
    if let Some(work) = protocol.work.filter(|work| *work != Work::None) {
        name.push_str(&format!("-{}", work.to_string().replace(':', "")));
    }
    name
}

/// Measures one fault cell.
pub fn run(spec: &FaultCellSpec) -> anyhow::Result<Measured> {
    let mut server = spec.server.clone();
    if !server.spawns() {
        bail!("harness faults measures servers it starts (a model or --server-cmd), not --target");
    }
    if spec.fault.nofile_limit.is_some() {
        server.launch.nofile_limit = spec.fault.nofile_limit;
    }
    // A fault cell records no system calls: counters, once open, would put
    // every call on the machine on the kernel's traced path for nothing.
    server.launch.count_syscalls = false;
    let step = spec.protocol.apply(&mut server)?;
    echo_core::process::raise_fd_limit().context("cannot raise the open-file limit")?;
    let phases = spec.phases.for_fault(spec.fault);
    let load = LoadSpec {
        protocol: spec.protocol.protocol,
        shape: Shape::Churn,
        connections: BACKGROUND_LOOPS,
        size: MESSAGE,
        rate: None,
        idle: 0,
        warmup: phases.warmup,
        duration: phases.measured(),
        client_threads: spec.client_threads,
        step,
        pipeline: 1,
    };
    let mut started = server.start(&spec.cpus.server)?;
    if !spec.cpus.client.is_empty() {
        echo_core::affinity::pin_to(&spec.cpus.client)
            .context("cannot pin the harness to the client CPUs")?;
    }
    let (load_cpus, fault_cpus) = split_client_cpus(spec.cpus);
    let plan = LoadPlan {
        addr: started.addr,
        load: load.clone(),
        cpus: load_cpus,
        host: crate::load::HostShare::WHOLE,
        source: None,
        interval: STEP,
        counting: Duration::ZERO,
    };
    let process = started.process.as_mut().expect("a spawned server has a process");
    let watched = watch(spec.fault, &plan, &fault_cpus, &spec.cpus.server, phases, process)?;

    let mut exit_status = process.exit_status();
    let mut exit_log = Vec::new();
    let exit = if watched.alive {
        match started.stop() {
            Ok(stopped) => {
                exit_status = stopped.as_ref().map(|(status, _)| *status);
                exit_log = stopped.map(|(_, log)| log).unwrap_or_default();
                exit_status.map(crate::server::process::exit_text)
            }
            Err(_) => Some("no exit within 5 s of SIGTERM (killed)".to_owned()),
        }
    } else {
        drop(started); // kills what is left of its process group
        exit_status.map(crate::server::process::exit_text)
    };
    let clean_exit = match (server.model_name(), exit_status) {
        (Some(_), Some(status)) => status.success() || !watched.alive,
        (Some(_), None) => !watched.alive,
        (None, _) => true,
    };

    let series = Series::new(&watched.outcome.intervals, phases);
    let figures = figures(&watched, &series, exit.clone(), clean_exit);
    let verdict = judge::judge(spec.fault, &figures);
    let row = FaultRow {
        label: server.label.clone(),
        model: server.model_name().map(str::to_owned),
        fault: spec.fault.name.to_owned(),
        outcome: verdict.outcome,
        deciding: verdict.deciding,
        reasons: verdict.reasons,
        rule: verdict.rule.to_owned(),
        rule_figures: verdict
            .figures
            .iter()
            .map(|&(rule, value)| (rule.to_owned(), round(value, 6)))
            .collect(),
        protocol: spec.protocol.protocol,
        runs: Vec::new(),
        unstable: false,
        spread: None,
        baseline_msgs_per_sec: round(figures.baseline_rate, 1),
        during_fraction: round(figures.during_fraction, 4),
        p99_during_us: round(figures.p99_during_us, 1),
        p99_baseline_us: round(figures.p99_baseline_us, 1),
        cpu_during_percent: round(watched.cpu_during_percent, 1),
        cpu_engaged_percent: figures.cpu_engaged_percent.map(|cpu| round(cpu, 1)),
        cpu_baseline_percent: round(watched.cpu_baseline_percent, 1),
        memory_growth_kib: figures.memory_growth_kib,
        fds_leaked: figures.fds_leaked,
        fds_before: watched.fds_before,
        fds_after: watched.fds_after,
        recovery_s: figures.recovery_s.map(|seconds| round(seconds, 2)),
        recovered_fraction: round(figures.recovered_fraction, 4),
        errors: watched.outcome.errors.total() - watched.outcome.errors.addr_unavailable,
        mismatches: judge::wrong_answers(&watched.outcome.errors),
        alive: watched.alive,
        exit: exit.clone(),
        fault_connections: watched.injected.connections,
        fault_bytes: watched.injected.bytes,
        fault_lost: watched.injected.lost,
        fault_note: watched.injected.note.clone(),
        fault_cpu_percent: round(
            100.0 * watched.injector_cpu.as_secs_f64() / phases.fault.as_secs_f64(),
            1,
        ),
        listen_overflows: watched.listen.0,
        listen_drops: watched.listen.1,
        nofile_limit: spec.fault.nofile_limit,
        fault_from_s: round(phases.baseline.as_secs_f64(), 3),
        fault_until_s: round((phases.baseline + phases.fault).as_secs_f64(), 3),
        timeline_step_s: STEP.as_secs_f64(),
        timeline_msgs_per_sec: series
            .counts
            .iter()
            .map(|&count| (count as f64 / STEP.as_secs_f64()).round())
            .collect(),
        others_cpu_percent: watched
            .machine
            .as_ref()
            .map_or(0.0, |machine| round(machine.busy_percent, 1)),
        steal_percent: watched
            .machine
            .as_ref()
            .map_or(0.0, |machine| round(machine.steal_percent, 1)),
        recovery_probes: watched
            .recovery
            .probes
            .iter()
            .map(|&(start, rate)| [round(start, 3), rate.round()])
            .collect(),
    };

    let cell_spec = CellSpec {
        server,
        scenario: scenario(spec.fault, spec.protocol),
        repeat: spec.repeat,
        load,
        cpus: spec.cpus.clone(),
    };
    let Watched {
        outcome,
        watch,
        overhead,
        machine,
        ..
    } = watched;
    let outcome = LoadOutcome {
        intervals: per_second(&outcome.intervals),
        ..outcome
    };
    // The window the server's samples cover: a fault cell judges its own
    // phases, and reports no system calls (its counters watch the cell's
    // ends, not the fault's).
    let window = match (&watch.first, &watch.last) {
        (Some((first, _)), Some((last, _))) => (*first, *last),
        _ => {
            let now = std::time::Instant::now();
            (now, now)
        }
    };
    let measured = crate::cell::Measured {
        outcome,
        watch,
        overhead,
        syscalls: Some(Err(String::from("not counted in fault cells"))),
        late_start: Duration::ZERO,
        clock: None,
        window,
        perf_events_in_window: 0,
        memory: None,
        pss_kib: None,
        machine,
    };
    let record = crate::cell::record::record(
        &cell_spec,
        &measured,
        exit_status.map(|status| (status, exit_log)),
        None,
    );
    Ok(Measured { row, record })
}

/// What [`watch`] saw.
struct Watched {
    outcome: LoadOutcome,
    watch: Watch,
    overhead: (Duration, Duration),
    alive: bool,
    injected: Injected,
    injector_cpu: Duration,
    cpu_baseline_percent: f64,
    cpu_during_percent: f64,
    /// CPU once the fault was in place, and from when (seconds after the
    /// fault's start).
    cpu_engaged: Option<(f64, f64)>,
    memory_growth_kib: i64,
    fds_before: u64,
    fds_after: u64,
    /// ListenOverflows, ListenDrops over the fault and the recovery.
    listen: (u64, u64),
    /// When the background was back, from the recovery window or the
    /// probes after it.
    recovery: Recovery,
    /// What else used the server's and the load's CPUs over the
    /// measurement (the same figures as a cell's).
    machine: Option<MachineStats>,
}

/// A sample of the server and when its reading started.
type Sample = (Instant, TreeSample);

/// Runs the background load through the phases, starts the injector at the
/// fault's start, and samples the server.
fn watch(
    fault: &'static Fault,
    plan: &LoadPlan,
    fault_cpus: &[usize],
    server_cpus: &[usize],
    phases: Phases,
    process: &mut crate::server::process::ServerProcess,
) -> anyhow::Result<Watched> {
    let pid = process.pid();
    let mut run = LoadRun::start(plan).context("cannot start the background load")?;
    run.wait_connected().context("cannot start the background load")?;
    let load_threads = run.thread_ids();
    let clock = run.begin();
    let measure_from = clock.start + phases.warmup;
    let fault_from = measure_from + phases.baseline;
    let fault_until = fault_from + phases.fault;
    let end = fault_until + phases.recovery;

    let mut watch = Watch {
        pid,
        ..Watch::default()
    };
    let mut alive = true;
    // The same sampling as every cell's: cgroup CPU time, the memory
    // charged to the server's memory cgroup, large trees sampled less often.
    let mut sampler = Sampler::new(STEP);
    let (mut at_fault_from, mut at_engaged, mut at_fault_until) = (None, None, None);
    let mut peak_memory_kib = 0;
    let mut injector: Option<(Injection, JoinHandle<InjectorResult>)> = None;
    let mut listen_before = (0, 0);
    let mut overhead_from = None;
    let mut machine_from: Option<MachineCpu> = None;
    let cpus_watched: Vec<usize> = plan
        .cpus
        .iter()
        .chain(fault_cpus)
        .chain(server_cpus)
        .copied()
        .collect();
    let mut next_sample = measure_from;
    loop {
        let now = Instant::now();
        if alive && process.check_running().is_err() {
            alive = false;
        }
        if now >= end {
            break;
        }
        if injector.is_none() && now >= fault_from {
            at_fault_from = if alive {
                sampler.sample(process, true)
            } else {
                None
            };
            listen_before = listen_counters();
            let injection = Injection::new(plan.addr, pid, fault_until).speaking(plan.load.protocol);
            let handle = spawn_injector(fault, &injection, fault_cpus)?;
            injector = Some((injection, handle));
        }
        if at_engaged.is_none()
            && let Some((injection, _)) = &injector
            && injection.is_engaged()
            && alive
        {
            at_engaged = sampler.sample(process, false);
        }
        if at_fault_until.is_none() && now >= fault_until && alive {
            at_fault_until = sampler.sample(process, false);
        }
        if now >= next_sample {
            if alive && let Some((at, tree)) = sampler.sample(process, false) {
                if at >= fault_from {
                    peak_memory_kib = peak_memory_kib.max(memory_kib(&tree));
                }
                if watch.first.is_none() {
                    overhead_from = Some((at, measure::harness_cpu_except(&load_threads)));
                    machine_from = Some(MachineCpu::read(&cpus_watched));
                }
                watch.add(at, tree);
            }
            next_sample += sampler.interval();
        }
        let mut wake = next_sample.min(end);
        if injector.is_none() {
            wake = wake.min(fault_from);
        } else if at_fault_until.is_none() {
            wake = wake.min(fault_until);
        }
        if at_engaged.is_none() && injector.is_some() {
            wake = wake.min(now + Duration::from_millis(10));
        }
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
    let at_end = if alive {
        sampler.sample(process, true)
    } else {
        None
    };
    if let Some((at, tree)) = &at_end {
        watch.add(*at, tree.clone());
        peak_memory_kib = peak_memory_kib.max(memory_kib(tree));
    }
    // The first sample of the measurement.
    let at_measure_from = watch.first.clone();
    let machine = match (&machine_from, &at_measure_from, &at_end) {
        (Some(from), Some((_, server_from)), Some((_, server_to))) => {
            let server = server_to.cpu.saturating_sub(server_from.cpu);
            Some(MachineCpu::read(&cpus_watched).since(from, server))
        }
        _ => None,
    };
    let overhead = match overhead_from {
        Some((from, cpu_from)) => (
            measure::harness_cpu_except(&load_threads).saturating_sub(cpu_from),
            from.elapsed(),
        ),
        None => (Duration::ZERO, Duration::ZERO),
    };
    let listen_after = listen_counters();

    let (injected, injector_cpu) = match injector {
        Some((_, handle)) => join_injector(fault, handle, fault_until)?,
        None => (Injected::default(), Duration::ZERO),
    };
    let outcome = run.join().context("the background load failed")?;
    let recovery = probe_recovery(plan, &outcome, phases, fault_until, alive)?;

    // Descriptors may still be closing: give them a moment with the
    // background stopped, then take the lowest count.
    let fds_before = at_fault_from.as_ref().map_or(0, |(_, tree)| tree.fds);
    let mut fds_after = at_end.as_ref().map_or(0, |(_, tree)| tree.fds);
    let settle_until = Instant::now() + LEAK_SETTLE;
    while alive && fds_after > fds_before + judge::LEAK_SLACK as u64 && Instant::now() < settle_until {
        std::thread::sleep(STEP);
        match measure::sample_tree(pid, true) {
            Some(tree) => fds_after = fds_after.min(tree.fds),
            None => alive = false,
        }
    }
    if alive && process.check_running().is_err() {
        alive = false;
    }

    let cpu_between = |from: &Option<Sample>, to: &Option<Sample>| -> Option<f64> {
        let ((from_at, from), (to_at, to)) = (from.as_ref()?, to.as_ref()?);
        let wall = to_at.saturating_duration_since(*from_at).as_secs_f64();
        (wall > 0.0).then(|| 100.0 * to.cpu.saturating_sub(from.cpu).as_secs_f64() / wall)
    };
    let cpu_engaged = at_engaged.as_ref().and_then(|(engaged, _)| {
        let window = fault_until.saturating_duration_since(*engaged).as_secs_f64();
        let since = engaged.saturating_duration_since(fault_from).as_secs_f64();
        (window >= SPIN_WINDOW_S)
            .then(|| cpu_between(&at_engaged, &at_fault_until))
            .flatten()
            .map(|cpu| (cpu, since))
    });
    Ok(Watched {
        outcome,
        watch,
        overhead,
        alive,
        injected,
        injector_cpu,
        cpu_baseline_percent: cpu_between(&at_measure_from, &at_fault_from).unwrap_or(0.0),
        cpu_during_percent: cpu_between(&at_fault_from, &at_fault_until).unwrap_or(0.0),
        cpu_engaged,
        memory_growth_kib: at_fault_from
            .as_ref()
            .map_or(0, |(_, tree)| peak_memory_kib as i64 - memory_kib(tree) as i64),
        fds_before,
        fds_after,
        listen: (
            listen_after.0.saturating_sub(listen_before.0),
            listen_after.1.saturating_sub(listen_before.1),
        ),
        recovery,
        machine,
    })
}

/// The server's memory in a sample: what its memory cgroup is charged,
/// socket buffers left out (each page once), else its summed resident sets.
fn memory_kib(sample: &TreeSample) -> u64 {
    sample.charged_kib.unwrap_or(sample.rss_kib)
}

/// When the background was back at [`judge::RECOVERED`] of its baseline,
/// and how close it came.
struct Recovery {
    /// Seconds after the fault's end: the start of the first window, or
    /// probe, that was back.
    seconds: Option<f64>,
    /// The best fraction of the baseline a window or a probe reached.
    fraction: f64,
    /// Recovery watched past the window: each probe's start (seconds after
    /// the fault's end) and throughput (cycles per second).
    probes: Vec<(f64, f64)>,
}

/// The background's recovery over the recovery window; when it is not back
/// at 90% of its baseline by the window's end and the server is `alive`,
/// runs it again in [`RECOVERY_PROBE`]-long bursts until it is, or until
/// [`RECOVERY_LIMIT`] after the fault's end.
fn probe_recovery(
    plan: &LoadPlan,
    outcome: &LoadOutcome,
    phases: Phases,
    fault_until: Instant,
    alive: bool,
) -> anyhow::Result<Recovery> {
    let series = Series::new(&outcome.intervals, phases);
    let baseline = series.rate(series.baseline.clone());
    let (seconds, fraction) = series.recovery(baseline);
    let mut recovery = Recovery {
        seconds,
        fraction,
        probes: Vec::new(),
    };
    if !alive || baseline <= 0.0 || recovery.seconds.is_some() {
        return Ok(recovery);
    }
    let mut probe = plan.clone();
    probe.load.warmup = Duration::ZERO;
    probe.load.duration = RECOVERY_PROBE;
    while fault_until.elapsed() < RECOVERY_LIMIT {
        let mut run = LoadRun::start(&probe).context("cannot start the background load")?;
        run.wait_connected().context("cannot start the background load")?;
        let clock = run.begin();
        let started_s = clock.start.saturating_duration_since(fault_until).as_secs_f64();
        let rate =
            run.join().context("the background load failed")?.messages as f64 / RECOVERY_PROBE.as_secs_f64();
        recovery.probes.push((started_s, rate));
        recovery.fraction = recovery.fraction.max(rate / baseline);
        if rate >= judge::RECOVERED * baseline {
            recovery.seconds = Some(started_s);
            break;
        }
    }
    Ok(recovery)
}

/// What the injector returned, its thread's CPU time, and when it returned.
type InjectorResult = (anyhow::Result<Injected>, Duration, Instant);

fn spawn_injector(
    fault: &'static Fault,
    injection: &Injection,
    cpus: &[usize],
) -> anyhow::Result<JoinHandle<InjectorResult>> {
    let injection = injection.clone();
    let cpus = cpus.to_vec();
    std::thread::Builder::new()
        .name(format!("fault-{}", fault.name))
        .spawn(move || {
            let result = if cpus.is_empty() {
                Ok(())
            } else {
                echo_core::affinity::pin_to(&cpus).context("cannot pin the fault's thread")
            };
            let result = result.and_then(|()| (fault.inject)(&injection));
            (result, measure::thread_cpu_time(), Instant::now())
        })
        .context("cannot start the fault's thread")
}

/// The background's load threads and the fault's thread share the client
/// CPUs: with two or more, the last one is the fault's alone, so that the
/// fault's own work does not slow the background down.
pub fn split_client_cpus(cpus: &CpuLayout) -> (Vec<usize>, Vec<usize>) {
    let load = cpus.load_thread_cpus();
    match cpus.client.len() {
        0 | 1 => (load, cpus.client.clone()),
        count => {
            let (mine, theirs) = cpus.client.split_at(count - 1);
            let load = if load.is_empty() {
                Vec::new()
            } else {
                mine.to_vec()
            };
            (load, theirs.to_vec())
        }
    }
}

/// Background load threads by default: one per client CPU the fault does
/// not keep for itself.
pub fn default_client_threads(cpus: &CpuLayout) -> u32 {
    split_client_cpus(cpus).0.len().max(1) as u32
}

/// Waits for the injector, which must be done soon after `fault_until`.
fn join_injector(
    fault: &Fault,
    handle: JoinHandle<InjectorResult>,
    fault_until: Instant,
) -> anyhow::Result<(Injected, Duration)> {
    let deadline = fault_until + INJECTOR_GRACE;
    while !handle.is_finished() {
        if Instant::now() >= deadline {
            bail!(
                "the {} injector did not finish within {} s of the fault's end",
                fault.name,
                INJECTOR_GRACE.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    match handle.join() {
        Ok((result, cpu, finished)) => {
            let injected = result.with_context(|| format!("the {} injector failed", fault.name))?;
            let overrun = finished.saturating_duration_since(fault_until);
            if overrun > INJECTOR_OVERRUN {
                bail!(
                    "the {} injector finished {:.1} s after the fault's end, into the recovery it was to be measured by (is the machine busy?)",
                    fault.name,
                    overrun.as_secs_f64()
                );
            }
            Ok((injected, cpu))
        }
        Err(_) => bail!("the {} injector panicked", fault.name),
    }
}

/// `ListenOverflows` and `ListenDrops` from `/proc/net/netstat` (zeros
/// where it cannot be read).
pub fn listen_counters() -> (u64, u64) {
    std::fs::read_to_string("/proc/net/netstat").map_or((0, 0), |text| parse_listen_counters(&text))
}

/// The two counters from the `TcpExt:` header and value lines.
pub fn parse_listen_counters(text: &str) -> (u64, u64) {
    let mut lines = text.lines().filter(|line| line.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return (0, 0);
    };
    let mut overflows = 0;
    let mut drops = 0;
    for (name, value) in names.split_whitespace().zip(values.split_whitespace()).skip(1) {
        match name {
            "ListenOverflows" => overflows = value.parse().unwrap_or(0),
            "ListenDrops" => drops = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    (overflows, drops)
}

/// The background's completed cycles per step, and which steps are which
/// phase.
pub struct Series<'a> {
    pub counts: Vec<u64>,
    pub step_s: f64,
    pub baseline: Range<usize>,
    pub fault: Range<usize>,
    pub recovery: Range<usize>,
    /// The background's histograms, one a step; steps past them had none.
    intervals: &'a [Histogram<u64>],
}

impl<'a> Series<'a> {
    pub fn new(intervals: &'a [Histogram<u64>], phases: Phases) -> Series<'a> {
        let steps = |duration: Duration| (duration.as_nanos() / STEP.as_nanos()) as usize;
        let baseline_end = steps(phases.baseline);
        let fault_end = baseline_end + steps(phases.fault);
        let end = fault_end + steps(phases.recovery);
        let mut counts: Vec<u64> = intervals.iter().map(Histogram::len).collect();
        counts.resize(end.max(counts.len()), 0);
        Series {
            counts,
            step_s: STEP.as_secs_f64(),
            baseline: 0..baseline_end,
            fault: baseline_end..fault_end,
            recovery: fault_end..end,
            intervals,
        }
    }

    /// Cycles per second over `steps`.
    pub fn rate(&self, steps: Range<usize>) -> f64 {
        if steps.is_empty() {
            return 0.0;
        }
        let total: u64 = self.counts[steps.clone()].iter().sum();
        total as f64 / (steps.len() as f64 * self.step_s)
    }

    /// When the background was back at [`judge::RECOVERED`] of `baseline`
    /// (seconds after the fault's end, over a 200 ms window), and the best
    /// fraction of `baseline` any such window reached.
    pub fn recovery(&self, baseline: f64) -> (Option<f64>, f64) {
        let mut recovered = None;
        let mut best: f64 = 0.0;
        let last_start = self.recovery.end.saturating_sub(RECOVERY_WINDOW_STEPS);
        for start in self.recovery.start..=last_start.max(self.recovery.start) {
            let window = start..(start + RECOVERY_WINDOW_STEPS).min(self.recovery.end);
            let fraction = if baseline > 0.0 {
                self.rate(window) / baseline
            } else {
                0.0
            };
            best = best.max(fraction);
            if recovered.is_none() && fraction >= judge::RECOVERED {
                recovered = Some((start - self.recovery.start) as f64 * self.step_s);
            }
        }
        (recovered, best)
    }

    /// The latency histogram of `steps`, all added up.
    pub fn histogram(&self, steps: Range<usize>) -> Histogram<u64> {
        let mut sum = new_histogram();
        let held = self.intervals.len();
        for interval in &self.intervals[steps.start.min(held)..steps.end.min(held)] {
            let _ = sum.add(interval);
        }
        sum
    }
}

/// p99 in µs of `histogram`, corrected for coordinated omission: each
/// cycle that took longer than `expected_ns` stands for the cycles its
/// client would have run meanwhile (HdrHistogram's `clone_correct`).
fn corrected_p99_us(histogram: &Histogram<u64>, expected_ns: u64) -> f64 {
    if histogram.is_empty() {
        return 0.0;
    }
    histogram
        .clone_correct(expected_ns.max(1))
        .value_at_quantile(0.99) as f64
        / 1000.0
}

fn figures(watched: &Watched, series: &Series, exit: Option<String>, clean_exit: bool) -> Figures {
    let baseline_rate = series.rate(series.baseline.clone());
    let fraction = |rate: f64| {
        if baseline_rate > 0.0 {
            rate / baseline_rate
        } else {
            0.0
        }
    };
    let recovery_s = watched.recovery.seconds;
    let baseline_histogram = series.histogram(series.baseline.clone());
    // A client's cycle time before the fault: the interval at which it would
    // have kept coming.
    let expected_ns = if baseline_histogram.is_empty() {
        1_000_000
    } else {
        baseline_histogram.mean() as u64
    };
    // During the fault and its catch-up: up to where the background was back
    // (at least one step past the fault), or the whole recovery window.
    let catch_up_steps = match recovery_s {
        Some(seconds) => (seconds / series.step_s).round() as usize + RECOVERY_WINDOW_STEPS,
        None => series.recovery.len(),
    };
    let during_end = (series.fault.end + catch_up_steps.max(1)).min(series.recovery.end);
    let engaged_fraction = watched.cpu_engaged.map(|(_, since)| {
        let first = series.fault.start + (since / series.step_s).ceil() as usize;
        fraction(series.rate(first.min(series.fault.end)..series.fault.end))
    });
    Figures {
        baseline_rate,
        during_fraction: fraction(series.rate(series.fault.clone())),
        engaged_fraction,
        p99_baseline_us: corrected_p99_us(&baseline_histogram, expected_ns),
        p99_during_us: corrected_p99_us(&series.histogram(series.fault.start..during_end), expected_ns),
        cpu_engaged_percent: watched.cpu_engaged.map(|(cpu, _)| cpu),
        memory_growth_kib: watched.memory_growth_kib,
        fds_leaked: watched.fds_after as i64 - watched.fds_before as i64,
        recovery_s,
        recovered_fraction: watched.recovery.fraction,
        errors: watched.outcome.errors.clone(),
        alive: watched.alive,
        clean_exit,
        exit,
        fault_bytes: watched.injected.bytes,
        fault_lost: watched.injected.lost,
        fault_connections: watched.injected.connections,
    }
}

/// Ten 100 ms histograms to one 1 s histogram, for the cell's `.hlog`.
fn per_second(intervals: &[Histogram<u64>]) -> Vec<Histogram<u64>> {
    let per = (Duration::from_secs(1).as_nanos() / STEP.as_nanos()) as usize;
    intervals
        .chunks(per)
        .map(|chunk| {
            let mut second = new_histogram();
            for interval in chunk {
                let _ = second.add(interval);
            }
            second
        })
        .collect()
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intervals_of(counts: &[u64]) -> Vec<Histogram<u64>> {
        counts
            .iter()
            .map(|&count| {
                let mut histogram = new_histogram();
                histogram.record_n(100_000, count).unwrap();
                histogram
            })
            .collect()
    }

    const PHASES: Phases = Phases {
        warmup: Duration::ZERO,
        baseline: Duration::from_millis(500),
        fault: Duration::from_millis(300),
        recovery: Duration::from_millis(600),
    };

    #[test]
    fn rates_fractions_and_recovery_come_from_the_steps() {
        // Baseline 1,000 per step (10,000/s), nothing during the fault, then
        // 400, 500, 950, 1,000, ...
        let counts = [
            1000, 1000, 1000, 1000, 1000, 0, 0, 0, 400, 500, 950, 1000, 1000, 1000,
        ];
        let intervals = intervals_of(&counts);
        let series = Series::new(&intervals, PHASES);
        let baseline = series.rate(series.baseline.clone());
        assert_eq!(baseline, 10_000.0);
        assert_eq!(series.rate(series.fault.clone()), 0.0);
        let (recovered, best) = series.recovery(baseline);
        // Windows: (400,500) 45%, (500,950) 72.5%, (950,1000) 97.5% at step 2.
        assert_eq!(recovered, Some(0.2));
        assert_eq!(best, 1.0);
        let intervals = intervals_of(&[1000, 1000, 1000, 1000, 1000, 0, 0, 0, 100, 0, 300, 200, 0, 0]);
        let never = Series::new(&intervals, PHASES);
        let (recovered, best) = never.recovery(10_000.0);
        assert_eq!(recovered, None);
        assert!((best - 0.25).abs() < 1e-9, "{best}");
    }

    #[test]
    fn a_stall_shows_in_the_corrected_p99_and_not_in_the_plain_one() {
        let mut histogram = new_histogram();
        histogram.record_n(100_000, 10_000).unwrap(); // 10,000 cycles of 100 µs
        histogram.record_n(1_000_000_000, 4).unwrap(); // 4 clients stalled 1 s
        assert!(histogram.value_at_quantile(0.99) < 200_000);
        let corrected = corrected_p99_us(&histogram, 100_000);
        assert!(corrected > 500_000.0, "{corrected}");
    }

    #[test]
    fn listen_counters_are_read_by_name() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPHPHits\n\
                    TcpExt: 1 17 23 99\n\
                    IpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(parse_listen_counters(text), (17, 23));
        assert_eq!(parse_listen_counters("nothing"), (0, 0));
    }

    #[test]
    fn per_second_adds_ten_steps_up() {
        let intervals: Vec<Histogram<u64>> = (0..25)
            .map(|_| {
                let mut histogram = new_histogram();
                histogram.record(1000).unwrap();
                histogram
            })
            .collect();
        let seconds = per_second(&intervals);
        assert_eq!(
            seconds.iter().map(Histogram::len).collect::<Vec<_>>(),
            [10, 10, 5]
        );
    }
}
