//! `harness bench`: measure one cell, one server under one load, and print
//! it. The server is a model it spawns (`--model`), a command it spawns
//! (`--server-cmd`), or a server already running (`--target`); the
//! measurement itself is [`crate::cell`], shared with every other command.

use crate::cell::{self, CellSpec};
use crate::cpus::CpuLayout;
use crate::load::LoadSpec;
use crate::results::cell::{Cell, Shape};
use crate::server::ServerUnderTest;
use anyhow::bail;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Longest warm-up or measurement.
const MAX_SECONDS: f64 = 24.0 * 3600.0;

/// `harness bench (--model MODEL | --server-cmd 'PROGRAM ARG…' | --target HOST:PORT) [options]`
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("server").required(true).args(["model", "server_cmd", "target"])))]
pub struct BenchArgs {
    /// The model to spawn: single, threaded, pool, nonblocking, select,
    /// epoll, coroutine, async, process, uring or reuseport.
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// Spawn and measure your own server: 'PROGRAM ARG…', where {port} and
    /// {addr} become a free port and 127.0.0.1:PORT. Ready when it prints
    /// `listening on HOST:PORT` or the port accepts; stopped with SIGTERM.
    #[arg(long, value_name = "'PROGRAM ARG… {port}'")]
    server_cmd: Option<String>,
    /// Drive an already running server (not measured: its CPU is unknown).
    #[arg(long, value_name = "HOST:PORT")]
    target: Option<String>,
    /// The name tables, charts and files show [default: the model, the
    /// command's program, or "target"].
    #[arg(long, value_name = "NAME")]
    label: Option<String>,
    /// Do not count the server's system calls (they are counted with the
    /// kernel's tracepoints where permitted).
    #[arg(long)]
    no_syscalls: bool,
    /// Seconds a spawned server may take to become ready.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    ready_timeout: f64,
    /// An option passed to `harness serve MODEL` (repeatable), e.g. --model-arg=--edge.
    #[arg(
        long = "model-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        requires = "model"
    )]
    model_args: Vec<String>,
    /// CPUs for the server, cpulist syntax (0-3,8) [default: the first half
    /// of the affinity mask; for --target: unknown, or as declared here].
    #[arg(long, value_name = "LIST")]
    server_cpus: Option<String>,
    /// CPUs for the load threads and the harness [default: the rest of the mask].
    #[arg(long, value_name = "LIST")]
    client_cpus: Option<String>,
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
    /// Load threads, pinned to the client CPUs in turn [default: one per client CPU].
    #[arg(long, value_name = "N")]
    client_threads: Option<u32>,
    /// Write the cell's .json, .hgrm and .hlog into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print only the cell's JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Drive share K of N of the cell (from 1) from this load host: K's
    /// slice of --connections and --idle, and 1/N of --rate on a schedule
    /// interleaved with the other hosts'; `env` reads K and N from a
    /// Kubernetes Indexed Job or a Slurm array. Needs --target, --start-at
    /// and --out (a result set for `harness merge`).
    #[arg(long, value_name = "K/N|env", requires_all = ["target", "start_at", "out"])]
    share: Option<String>,
    /// Start the load (warm-up first) at this wall-clock instant, RFC 3339
    /// in UTC (2026-01-01T12:00:00Z), the same on every load host; refused
    /// if already past, flagged late-start if the connections took longer.
    #[arg(long, value_name = "TIME")]
    start_at: Option<String>,
    /// Open every connection from this local address (e.g. 127.0.0.2 on
    /// loopback, or one NIC's address) [default: the kernel chooses].
    #[arg(long, value_name = "IP")]
    source_addr: Option<std::net::IpAddr>,
    #[command(flatten)]
    protocol: crate::protocol::ProtocolArgs,
}

pub fn main(args: BenchArgs) -> anyhow::Result<()> {
    let seconds = |name: &str, value: f64| -> anyhow::Result<Duration> {
        if !(value.is_finite() && (0.0..=MAX_SECONDS).contains(&value)) {
            bail!("--{name} must be between 0 and {MAX_SECONDS} seconds (got {value})");
        }
        Ok(Duration::from_secs_f64(value))
    };
    let started = std::time::SystemTime::now();
    let part =
        crate::fleet::share::host_part(args.share.as_deref(), args.start_at.as_deref(), args.source_addr)?;
    let label = args.label.as_deref();
    let mut server = match (&args.model, &args.server_cmd, &args.target) {
        (Some(model), _, _) => ServerUnderTest::model(model, &args.model_args, label)?,
        (_, Some(line), _) => ServerUnderTest::command_line(line, label)?,
        (_, _, Some(target)) => ServerUnderTest::target(target, label)?,
        _ => bail!("give --model, --server-cmd or --target"),
    };
    let step = args.protocol.apply(&mut server)?;
    server.launch.ready_within = seconds("ready-timeout", args.ready_timeout)?;
    server.launch.count_syscalls = !args.no_syscalls;
    let cpus = CpuLayout::for_this_process(
        args.server_cpus.as_deref(),
        args.client_cpus.as_deref(),
        server.spawns(),
    )?;
    let load = LoadSpec {
        protocol: args.protocol.protocol,
        shape: args.shape,
        connections: args.connections,
        size: args.size,
        rate: args.rate,
        idle: args.idle,
        warmup: seconds("warmup", args.warmup)?,
        duration: seconds("duration", args.duration)?,
        client_threads: args
            .client_threads
            .unwrap_or_else(|| default_client_threads(&cpus)),
        step,
        pipeline: args.protocol.pipeline,
    };
    cell::check_load(&load)?;
    crate::fleet::share::check(&load, &part)?;
    match (&args.out, &args.share) {
        (Some(out), Some(_)) => crate::fleet::share::check_out(out)?,
        (Some(out), None) => crate::results::files::check_writable(out)?,
        (None, _) => {}
    }
    if let Some(warning) = cpus.shared_warning() {
        eprintln!("{warning}");
    }
    let spec = CellSpec {
        server,
        scenario: args.protocol.scenario_name(&load),
        repeat: 1,
        load,
        cpus,
    };
    if let Some(line) = crate::fleet::share::waiting_line(&part) {
        eprintln!("{line}");
    }
    let bar = progress_bar(&spec);
    let outcome = cell::run_cell_as(&spec, &part, &mut |progress| {
        bar.set_length(progress.total.as_millis() as u64);
        bar.set_position(progress.elapsed.as_millis() as u64);
        bar.set_message(format!("{} messages", progress.messages));
    });
    bar.finish_and_clear();
    let record = outcome?;
    match (&args.out, &args.share) {
        (Some(out), Some(_)) => crate::fleet::share::write_set(out, &record, &spec.cpus, started)?,
        (Some(out), None) => crate::results::files::write_cell(out, &record, 1)?,
        (None, _) => {}
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record.cell)?);
        eprint!("{}", summary(&record.cell));
    } else {
        print!("{}", summary(&record.cell));
    }
    Ok(())
}

/// One load thread per CPU the load threads are pinned to (one when they
/// are not pinned).
pub fn default_client_threads(cpus: &CpuLayout) -> u32 {
    cpus.load_thread_cpus().len().max(1) as u32
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
    bar.set_prefix(format!("{} {}", spec.server.label, spec.scenario));
    bar
}

/// The readable summary of a cell.
pub fn summary(cell: &Cell) -> String {
    let mut text = format!(
        "{}  {}  ({} s measured after {} s warm-up)\n",
        cell.label, cell.scenario, cell.duration_s, cell.warmup_s
    );
    if let Some(command) = &cell.command {
        text += &format!("  command     {}\n", crate::server::join_command(command));
    }
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
    let mut errors = if e.total() == 0 {
        String::from("none")
    } else {
        format!(
            "mismatch {}, lost {} ({} bytes missing), reset {}, timeout {}, connect {}, closed {}, addr_unavailable {}",
            e.mismatch, e.lost, e.lost_bytes, e.reset, e.timeout, e.connect, e.closed, e.addr_unavailable
        )
    };
    errors += &crate::load::http::error_summary(e);
    text += &format!("  errors      {errors}\n");
    let f = &cell.fairness;
    text += &format!(
        "  fairness    Jain {:.3}, messages per connection min {} median {} max {}; starved {}\n",
        f.jain, f.min, f.median, f.max, cell.starved_connections
    );
    if let Some(s) = &cell.server {
        text += &format!(
            "  server      CPU {:.1}% on {}, {:.2} µs/msg, {}, {} threads in {} process{}, ctx switches {} voluntary {} involuntary, {} fds; {}\n",
            s.cpu_percent,
            cpu_list(&s.cpus),
            s.cpu_us_per_msg,
            memory_text(s),
            s.threads,
            s.processes,
            if s.processes == 1 { "" } else { "es" },
            s.ctx_voluntary,
            s.ctx_involuntary,
            s.fds,
            s.exit.as_deref().map_or_else(
                || String::from("still running"),
                |exit| format!("exited with {exit} on SIGTERM")
            )
        );
        text += &format!("  syscalls    {}\n", syscalls_line(&s.syscalls));
    } else {
        text += &format!(
            "  server      {} (not measured: not started by the harness){}\n",
            cell.target,
            if cell.server_cpus.is_empty() {
                String::new()
            } else {
                format!(", declared on {}", cpu_list(&cell.server_cpus))
            }
        );
    }
    text += &format!(
        "  client      CPU {:.1}% over {} thread(s) on {}, busiest thread {:.1}%, harness overhead {:.1}%{}\n",
        cell.client.cpu_percent,
        cell.client.threads,
        cpu_list(&cell.client.cpus),
        cell.client.busiest_thread_percent,
        cell.client.overhead_percent,
        if cell.shape == Shape::Open {
            format!(", late sends {:.2}%", cell.behind_schedule_fraction * 100.0)
        } else {
            String::new()
        }
    );
    if let Some(machine) = &cell.machine {
        text += &format!(
            "  machine     others took {:.1}% of a CPU, steal {:.1}%, on {}\n",
            machine.busy_percent,
            machine.steal_percent,
            cpu_list(&machine.cpus)
        );
    }
    if let Some(share) = &cell.share {
        text += &format!(
            "  share       load host {} of {} ({} connections{}{}), agreed start {}, {}; clock {}\n",
            share.host,
            share.hosts,
            share.connections,
            share
                .rate
                .map(|rate| format!(", {rate:.0} msgs/s"))
                .unwrap_or_default(),
            share
                .source_addr
                .as_deref()
                .map(|source| format!(" from {source}"))
                .unwrap_or_default(),
            share.start_at,
            if share.late_start_ms > 0.0 {
                format!("began {:.1} ms late", share.late_start_ms)
            } else {
                String::from("began on time")
            },
            share.clock.as_ref().map_or_else(
                || String::from("state not reported"),
                |clock| format!(
                    "{}, max error {:.3} ms",
                    if clock.synchronised {
                        "synchronised"
                    } else {
                        "not synchronised"
                    },
                    clock.max_error_us as f64 / 1e3
                )
            )
        );
    }
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

/// `2.02 per message: recvfrom 1.00, sendto 1.00, epoll_wait 0.02; EAGAIN: …`
/// "memory 5628 KiB (cgroup peak; PSS 6650 KiB, summed RSS 9708 KiB)".
fn memory_text(server: &crate::results::cell::ServerStats) -> String {
    let pss = server
        .pss_kib
        .map_or_else(|| String::from("no PSS"), |kib| format!("PSS {kib} KiB"));
    match server.memory_peak_kib {
        Some(kib) => format!(
            "memory {kib} KiB (cgroup peak; {pss}, summed RSS {} KiB)",
            server.rss_peak_kib
        ),
        None => format!(
            "memory: no cgroup figure, {pss} (summed RSS {} KiB counts shared pages per process)",
            server.rss_peak_kib
        ),
    }
}

fn syscalls_line(syscalls: &crate::results::cell::Syscalls) -> String {
    if let Some(reason) = &syscalls.unavailable {
        return format!("unavailable ({reason})");
    }
    let names: Vec<String> = crate::results::cell::Syscalls::most_first(&syscalls.per_msg)
        .iter()
        .take(8)
        .map(|(name, count)| format!("{name} {count:.2}"))
        .collect();
    let mut line = format!(
        "{:.2} per message: {}",
        syscalls.per_msg_total.unwrap_or(0.0),
        names.join(", ")
    );
    if !syscalls.eagain_per_msg.is_empty() {
        let eagain: Vec<String> = syscalls
            .eagain_per_msg
            .iter()
            .map(|(name, count)| format!("{name} {count:.2}"))
            .collect();
        line += &format!("; failed with EAGAIN: {}", eagain.join(", "));
    }
    line
}

fn cpu_list(cpus: &[usize]) -> String {
    if cpus.is_empty() {
        String::from("unknown CPUs")
    } else {
        format!("CPU {}", crate::cpus::format_cpulist(cpus))
    }
}
