//! `harness bench`: measure one cell, one model (or `--target`) under one
//! load; and [`run_cell`], the same measurement for `harness run`.
//!
//! A cell: spawn `harness serve MODEL` pinned to the server CPUs, wait for its
//! ready line, open the connections from load threads pinned to the client
//! CPUs, warm up, measure (sampling the server in `/proc` and the load
//! threads' own CPU time), stop the server with SIGTERM and check it exited 0.
//!
//! Validity flags: `client-bound` when the busiest load thread was at least
//! [`CLIENT_BOUND_PERCENT`] busy while the server had CPU to spare (under
//! [`SERVER_SATURATED_PERCENT`] of its CPUs; always, for `--target`, whose CPU
//! is unknown). On loopback each message costs the client's CPU about as much
//! kernel work as the server's, so a saturated server pinned to one core meets
//! a client near 100% too: then both sides are the limit and the server's
//! numbers stand for what it does with its CPUs. `behind-schedule` when more than
//! [`BEHIND_SCHEDULE_LIMIT`] of the open loop's measured sends were issued
//! more than [`LATE_SEND`](crate::load::LATE_SEND) (1 ms) after their
//! intended time; `errors` when any byte was wrong or lost or any connection
//! failed; `starved` when connections completed no message at all in the
//! measurement (their unanswered message is not counted as a timeout too).

pub use crate::load::LoadSpec;
use crate::load::{LoadOutcome, LoadPlan, LoadRun};
use crate::measure::{self, ServerProcess, Watch};
use crate::results::cell::{Cell, ClientStats, Fairness, Flag, Latency, ServerStats, Shape};
use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A load thread at least this busy may have held the server back.
pub const CLIENT_BOUND_PERCENT: f64 = 95.0;
/// A server this busy (averaged over its CPUs) is itself the limit.
pub const SERVER_SATURATED_PERCENT: f64 = 90.0;
/// Open loop: the fraction of late sends above which the cell is flagged.
pub const BEHIND_SCHEDULE_LIMIT: f64 = 0.01;
/// Most connections (active or idle) a cell may open.
pub const MAX_CONNECTIONS: u32 = 100_000;
/// Largest message size.
pub const MAX_SIZE: u32 = 64 * 1024 * 1024;
/// Longest warm-up or measurement.
const MAX_SECONDS: f64 = 24.0 * 3600.0;
/// How long `--target` may take to accept a first connection.
const TARGET_CHECK: Duration = Duration::from_secs(2);
/// How often the server is sampled during the measurement.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// One cell: what to run, under which load, on which CPUs.
#[derive(Debug, Clone)]
pub struct CellSpec {
    pub label: String,
    pub model: Option<String>,
    pub model_args: Vec<String>,
    pub target: Option<String>,
    pub scenario: String,
    pub repeat: u32,
    pub load: LoadSpec,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
}

/// A measured cell: its numbers and its histograms (nanoseconds).
#[derive(Debug, Clone)]
pub struct CellRecord {
    pub cell: Cell,
    pub histogram: Histogram<u64>,
    /// One per second of the measurement; the last may cover less.
    pub intervals: Vec<Histogram<u64>>,
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
    check_load(&spec.load)?;
    let needed = u64::from(spec.load.connections) + u64::from(spec.load.idle) + 64;
    let limit = echo_core::process::raise_fd_limit().context("cannot raise the open-file limit")?;
    if needed > limit {
        bail!(
            "{needed} file descriptors are needed but the open-file limit is {limit} (raise it with ulimit -n)"
        );
    }
    let (addr, mut server) = match (&spec.model, &spec.target) {
        (Some(model), _) => {
            if !echo_core::MODELS.contains(&model.as_str()) {
                bail!(
                    "unknown model '{model}'; the models are: {}",
                    echo_core::MODELS.join(", ")
                );
            }
            let server = ServerProcess::spawn(model, &spec.model_args, &spec.server_cpus)?;
            (server.addr, Some(server))
        }
        (None, Some(target)) => (check_target(target)?, None),
        (None, None) => bail!("a cell needs a model or a target"),
    };
    // The sampling thread (this one) stays off the server's CPUs too.
    if !spec.client_cpus.is_empty() {
        echo_core::affinity::pin_to(&spec.client_cpus)
            .context("cannot pin the harness to the client CPUs")?;
    }
    let plan = LoadPlan {
        addr,
        load: spec.load.clone(),
        cpus: spec.client_cpus.clone(),
    };
    let (outcome, watch) = drive(&plan, server.as_mut(), observe)?;
    if let Some(server) = server {
        server.stop()?;
    }
    Ok(record(spec, &outcome, &watch))
}

/// Runs the load and samples the server over the measurement.
fn drive(
    plan: &LoadPlan,
    mut server: Option<&mut ServerProcess>,
    observe: &mut dyn FnMut(CellProgress),
) -> anyhow::Result<(LoadOutcome, Watch)> {
    let mut run = LoadRun::start(plan).context("cannot start the load threads")?;
    run.wait_connected().context("cannot open the connections")?;
    let clock = run.begin();
    let measure_from = clock.start + plan.load.warmup;
    let measure_until = measure_from + plan.load.duration;
    let total = plan.load.warmup + plan.load.duration;
    let mut watch = Watch::default();
    let mut next_sample = measure_from;
    let mut samples = 0u64;
    let mut server_failure = None;
    loop {
        let now = Instant::now();
        if let Some(server) = server.as_deref_mut() {
            watch.pid = server.pid();
            if let Err(error) = server.check_running() {
                server_failure = Some(error);
                break;
            }
            if now >= next_sample {
                // The ends are detailed (context-switch deltas need both);
                // between them, once a second is enough.
                let detailed = watch.first.is_none() || samples.is_multiple_of(5) || now >= measure_until;
                let at = Instant::now();
                if let Ok(sample) = measure::sample(server.pid(), detailed) {
                    watch.add(at, sample);
                }
                samples += 1;
                next_sample += SAMPLE_EVERY;
                if next_sample > measure_until && now < measure_until {
                    next_sample = measure_until;
                }
            }
        }
        observe(CellProgress {
            elapsed: now.saturating_duration_since(clock.start).min(total),
            total,
            messages: run.completed(),
        });
        if now >= measure_until {
            break;
        }
        let wake = (now + Duration::from_millis(100))
            .min(next_sample.max(now))
            .min(measure_until);
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
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
    Ok((outcome, watch))
}

/// Resolves `--target` and checks that it accepts a connection.
fn check_target(target: &str) -> anyhow::Result<SocketAddr> {
    let addr = target
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .with_context(|| format!("cannot resolve target '{target}' (expected HOST:PORT)"))?;
    std::net::TcpStream::connect_timeout(&addr, TARGET_CHECK)
        .with_context(|| format!("cannot connect to target {target}"))?;
    Ok(addr)
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
    if load.client_threads == 0 || load.client_threads > 1024 {
        bail!(
            "--client-threads must be between 1 and 1024 (got {})",
            load.client_threads
        );
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

/// (server CPUs, client CPUs): the affinity mask split in two disjoint
/// halves (the server gets the extra one); on one CPU both share it.
pub fn default_cpu_split() -> (Vec<usize>, Vec<usize>) {
    let cpus = echo_core::affinity::allowed_cpus().unwrap_or_default();
    if cpus.len() <= 1 {
        return (cpus.clone(), cpus);
    }
    let server_count = cpus.len() - cpus.len() / 2;
    (cpus[..server_count].to_vec(), cpus[server_count..].to_vec())
}

/// Turns what was measured into the cell document.
fn record(spec: &CellSpec, outcome: &LoadOutcome, watch: &Watch) -> CellRecord {
    let load = &spec.load;
    let duration_s = load.duration.as_secs_f64();
    let msgs_per_sec = outcome.messages as f64 / duration_s;
    let server = spec.model.as_ref().map(|_| {
        let (cpu, wall, ctx_voluntary, ctx_involuntary) = watch.deltas();
        let cpu_us = cpu.as_secs_f64() * 1e6;
        ServerStats {
            pid: watch.pid,
            cpu_percent: percent(cpu, wall),
            cpu_us_per_msg: if outcome.messages > 0 {
                cpu_us / outcome.messages as f64
            } else {
                0.0
            },
            rss_peak_kib: watch.peak_rss_kib,
            threads: watch.peak_threads,
            ctx_voluntary,
            ctx_involuntary,
            fds: watch.peak_fds,
            cpus: spec.server_cpus.clone(),
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
        cpus: spec.client_cpus.clone(),
    };
    let behind_schedule_fraction = if outcome.scheduled_sends > 0 {
        outcome.late_sends as f64 / outcome.scheduled_sends as f64
    } else {
        0.0
    };
    let mut flags = Vec::new();
    let server_saturated = server.as_ref().is_some_and(|server| {
        server.cpu_percent / server.cpus.len().max(1) as f64 >= SERVER_SATURATED_PERCENT
    });
    if client.busiest_thread_percent >= CLIENT_BOUND_PERCENT && !server_saturated {
        flags.push(Flag::ClientBound);
    }
    if behind_schedule_fraction > BEHIND_SCHEDULE_LIMIT {
        flags.push(Flag::BehindSchedule);
    }
    if outcome.errors.total() > 0 {
        flags.push(Flag::Errors);
    }
    if outcome.starved > 0 {
        flags.push(Flag::Starved);
    }
    let cell = Cell {
        model: spec.model.clone(),
        model_args: spec.model_args.clone(),
        label: spec.label.clone(),
        target: spec.target.clone().unwrap_or_default(),
        scenario: spec.scenario.clone(),
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
        bytes_per_sec: msgs_per_sec * f64::from(load.size),
        connections_per_sec: (load.shape == Shape::Churn).then_some(msgs_per_sec),
        latency_us: latency(&outcome.histogram),
        errors: outcome.errors.clone(),
        starved_connections: outcome.starved,
        fairness: fairness(&outcome.per_connection),
        server,
        client,
        behind_schedule_fraction,
        flags,
    };
    CellRecord {
        cell,
        histogram: outcome.histogram.clone(),
        intervals: outcome.intervals.clone(),
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

/// `harness bench (--model MODEL | --target HOST:PORT) [options]`
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The model to spawn: single, threaded, pool, nonblocking, select, epoll, coroutine or async.
    #[arg(
        long,
        value_name = "MODEL",
        required_unless_present = "target",
        conflicts_with = "target"
    )]
    model: Option<String>,
    /// Drive an already running server instead of spawning one.
    #[arg(long, value_name = "HOST:PORT")]
    target: Option<String>,
    /// An option passed to `harness serve MODEL` (repeatable), e.g. --model-arg=--edge.
    #[arg(long = "model-arg", value_name = "ARG", allow_hyphen_values = true)]
    model_args: Vec<String>,
    /// Active connections (churn: concurrent connect-echo-close loops).
    #[arg(long, default_value_t = 50, value_name = "N")]
    connections: u32,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64, value_name = "BYTES")]
    size: u32,
    /// closed (ping-pong), open (fixed rate) or churn (connect, echo once, close).
    #[arg(long, value_enum, default_value_t = Shape::Closed)]
    shape: Shape,
    /// Open loop: aggregate messages per second, spread over the connections.
    #[arg(long, value_name = "MSGS_PER_S", allow_negative_numbers = true)]
    rate: Option<f64>,
    /// Extra connections held open and silent during the measurement.
    #[arg(long, default_value_t = 0, value_name = "N")]
    idle: u32,
    /// Seconds of load before the measurement starts.
    #[arg(
        long,
        default_value_t = 1.0,
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    warmup: f64,
    /// Seconds of measurement.
    #[arg(
        long,
        default_value_t = 5.0,
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    duration: f64,
    /// Load threads, each pinned to one of the client CPUs.
    #[arg(long, default_value_t = 1, value_name = "N")]
    client_threads: u32,
    /// Write the cell's .json, .hgrm and .hlog into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print only the cell's JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn main(args: BenchArgs) -> anyhow::Result<()> {
    let seconds = |name: &str, value: f64| -> anyhow::Result<Duration> {
        if !(value.is_finite() && (0.0..=MAX_SECONDS).contains(&value)) {
            bail!("--{name} must be between 0 and {MAX_SECONDS} seconds (got {value})");
        }
        Ok(Duration::from_secs_f64(value))
    };
    let load = LoadSpec {
        shape: args.shape,
        connections: args.connections,
        size: args.size,
        rate: args.rate,
        idle: args.idle,
        warmup: seconds("warmup", args.warmup)?,
        duration: seconds("duration", args.duration)?,
        client_threads: args.client_threads,
    };
    check_load(&load)?;
    if let Some(model) = &args.model
        && !echo_core::MODELS.contains(&model.as_str())
    {
        bail!(
            "unknown model '{model}'; the models are: {}",
            echo_core::MODELS.join(", ")
        );
    }
    if let Some(out) = &args.out {
        check_writable(out)?;
    }
    let (server_cpus, client_cpus) = default_cpu_split();
    let spec = CellSpec {
        label: args.model.clone().unwrap_or_else(|| String::from("target")),
        model: args.model.clone(),
        model_args: args.model_args.clone(),
        target: args.target.clone(),
        scenario: scenario_name(&load),
        repeat: 1,
        load,
        server_cpus: if args.model.is_some() {
            server_cpus
        } else {
            Vec::new()
        },
        client_cpus: if args.model.is_some() {
            client_cpus
        } else {
            Vec::new()
        },
    };
    let bar = progress_bar(&spec);
    let outcome = run_cell_observed(&spec, &mut |progress| {
        bar.set_length(progress.total.as_millis() as u64);
        bar.set_position(progress.elapsed.as_millis() as u64);
        bar.set_message(format!("{} messages", progress.messages));
    });
    bar.finish_and_clear();
    let record = outcome?;
    if let Some(out) = &args.out {
        crate::results::files::write_cell(out, &record, 1)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record.cell)?);
        eprint!("{}", summary(&record.cell));
    } else {
        print!("{}", summary(&record.cell));
    }
    Ok(())
}

/// Fails early, before any load, when `dir` cannot take the cell's files.
fn check_writable(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    let probe = dir.join(".harness-write-check");
    std::fs::write(&probe, b"")
        .with_context(|| format!("cannot write into output directory {}", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn progress_bar(spec: &CellSpec) -> indicatif::ProgressBar {
    let total = (spec.load.warmup + spec.load.duration).as_millis() as u64;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {elapsed_precise} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{} {}", spec.label, spec.scenario));
    bar
}

/// The readable summary of a cell.
pub fn summary(cell: &Cell) -> String {
    let mut text = format!(
        "{}  {}  ({} s measured after {} s warm-up)\n",
        cell.label, cell.scenario, cell.duration_s, cell.warmup_s
    );
    text += &format!(
        "  throughput  {:.0} msg/s, {:.1} MB/s{}\n",
        cell.msgs_per_sec,
        cell.bytes_per_sec / 1e6,
        cell.connections_per_sec
            .map(|rate| format!(", {rate:.0} connections/s"))
            .unwrap_or_default()
    );
    let l = &cell.latency_us;
    text += &format!(
        "  latency µs  min {:.1}  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  p99.99 {:.1}  max {:.1}\n",
        l.min, l.p50, l.p90, l.p99, l.p999, l.p9999, l.max
    );
    let e = &cell.errors;
    let errors = if e.total() == 0 {
        String::from("none")
    } else {
        format!(
            "mismatch {}, reset {}, timeout {}, connect {}, closed {}, addr_unavailable {}",
            e.mismatch, e.reset, e.timeout, e.connect, e.closed, e.addr_unavailable
        )
    };
    text += &format!("  errors      {errors}\n");
    let f = &cell.fairness;
    text += &format!(
        "  fairness    Jain {:.3}, messages per connection min {} median {} max {}; starved {}\n",
        f.jain, f.min, f.median, f.max, cell.starved_connections
    );
    if let Some(s) = &cell.server {
        text += &format!(
            "  server      CPU {:.1}% on {:?}, {:.2} µs/msg, peak RSS {} KiB, {} threads, ctx switches {} voluntary {} involuntary, {} fds\n",
            s.cpu_percent,
            s.cpus,
            s.cpu_us_per_msg,
            s.rss_peak_kib,
            s.threads,
            s.ctx_voluntary,
            s.ctx_involuntary,
            s.fds
        );
    }
    text += &format!(
        "  client      CPU {:.1}% over {} thread(s) on {:?}, busiest thread {:.1}%{}\n",
        cell.client.cpu_percent,
        cell.client.threads,
        cell.client.cpus,
        cell.client.busiest_thread_percent,
        if cell.shape == Shape::Open {
            format!(", late sends {:.2}%", cell.behind_schedule_fraction * 100.0)
        } else {
            String::new()
        }
    );
    let flags: Vec<&str> = cell.flags.iter().map(|flag| flag.as_str()).collect();
    text += &format!(
        "  flags       {}\n",
        if flags.is_empty() {
            String::from("none")
        } else {
            flags.join(", ")
        }
    );
    text
}
