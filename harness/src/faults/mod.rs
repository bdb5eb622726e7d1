//! `harness faults`: the robustness matrix. Every server against every
//! fault: a background of new clients is measured before, during and after
//! the fault, and the damage (throughput, tail latency, CPU, memory, open
//! descriptors, recovery, lost data, survival) becomes an outcome per cell,
//! `ok`, `degraded` or `failed`, from thresholds written next to each fault.
//!
//! The servers are chosen as `bench` and `run` choose them: built-in models,
//! the variants and commands of a suite (`--suite`, `--models`), or your own
//! server (`--server-cmd`). The result set holds `faults.json` (one row per
//! server × fault) and each cell's background load as an ordinary cell, so
//! `harness report` draws the matrix and `harness compare` works on it.
//!
//! `--repeat N` runs every cell N times, interleaved, and each row says how
//! many runs had its outcome and whether they agreed ([`repeat`]).
//! `--protocol http` makes the background HTTP requests, starts models with
//! `--protocol http`, and gives each fault its HTTP form or leaves it out
//! ([`catalog::Fault::over_http`]).
//!
//! # Layout
//!
//! - [`catalog`]: the faults, their bounds and their thresholds.
//! - [`inject`]: one injector per fault.
//! - [`cell`]: one server under one fault, measured.
//! - [`judge`]: the rules every fault shares, from figures to outcome.
//! - [`repeat`]: a cell's repeated runs, as one outcome and its spread.

pub mod catalog;
pub mod cell;
pub mod inject;
pub mod judge;
pub mod repeat;

use crate::cpus::{CpuLayout, format_cpulist};
use crate::protocol::{Protocol, ProtocolArgs, Request, Work};
use crate::report::faults::{cell_text, label_order};
use crate::report::groups::Labels;
use crate::results::cell::Cell;
use crate::results::faults::{self, FaultRow};
use crate::results::{files, set};
use crate::run::Suite;
use crate::server::ServerUnderTest;
use anyhow::{Context, bail};
use catalog::Fault;
use cell::{FaultCellSpec, Phases};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// `harness faults [--models M,..] [--server-cmd '…'] [--faults F,..] [--quick] [--repeat N] [--protocol echo|http] [--out DIR]`
#[derive(Debug, clap::Args)]
pub struct FaultsArgs {
    /// Servers to put through the faults, comma-separated: built-in models,
    /// and the labels of the suite's variants and commands (--suite)
    /// [default: every model; with --suite, its entries; with --server-cmd
    /// alone, none].
    #[arg(long, value_delimiter = ',', value_name = "M,M,..")]
    models: Vec<String>,
    /// Your own server, spawned and measured like a model: 'PROGRAM ARG…',
    /// where {port} and {addr} become a free port and 127.0.0.1:PORT.
    #[arg(long, value_name = "'PROGRAM ARG… {port}'")]
    server_cmd: Option<String>,
    /// The name the matrix shows for --server-cmd [default: its program].
    #[arg(long, value_name = "NAME", requires = "server_cmd")]
    label: Option<String>,
    /// The suite whose entries (variants such as epoll-edge, commands)
    /// --models may name [default: full].
    #[arg(long, value_name = "quick|full|FILE.toml")]
    suite: Option<String>,
    /// Faults to inject, comma-separated [default: all]: slow-reader,
    /// slowloris, idle-herd, reset-storm, connect-flood, fd-exhaustion,
    /// server-pause, urgent-data, half-open-peer, half-close-pending.
    #[arg(long, value_delimiter = ',', value_name = "F,F,..")]
    faults: Vec<String>,
    /// Shorter phases (0.4 s baseline, 0.8 s fault, 0.4 s recovery): about
    /// 2 s a cell instead of 6.5.
    #[arg(long)]
    quick: bool,
    /// Runs of every cell, interleaved (run 1 of every cell, then run 2,
    /// ...): each cell shows how many runs had its outcome ("degraded
    /// 2/3", a tie going to the worse outcome), is marked unstable when
    /// they disagree, and its deciding figure is their median with its
    /// spread.
    #[arg(long, default_value_t = 1, value_name = "N")]
    repeat: u32,
    /// What the background load speaks: echo, or http (each new client
    /// sends one request and checks the response in full; a model is
    /// started with --protocol http; the faults speak HTTP too, and
    /// urgent-data and half-close-pending, which have no HTTP form, are
    /// left out).
    #[arg(long, value_enum, default_value_t = Protocol::Echo)]
    protocol: Protocol,
    /// HTTP: what each background request asks for: plaintext, echo:BYTES
    /// or static:PATH (a file under --root).
    #[arg(long, value_name = "plaintext|echo:BYTES|static:PATH")]
    request: Option<Request>,
    /// The directory the server serves (a model's --root, {root} in
    /// --server-cmd).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Work a model does before each answer: none, cpu:MICROS or wait:MICROS.
    #[arg(long, value_name = "none|cpu:MICROS|wait:MICROS")]
    work: Option<Work>,
    /// CPUs for the servers, cpulist syntax [default: the first half of the
    /// affinity mask].
    #[arg(long, value_name = "LIST")]
    server_cpus: Option<String>,
    /// CPUs for the load, the faults' clients and the harness [default: the rest].
    #[arg(long, value_name = "LIST")]
    client_cpus: Option<String>,
    /// Background load threads [default: one per client CPU but the last,
    /// which the faults' clients keep for themselves (one, with one client CPU)].
    #[arg(long, value_name = "N")]
    client_threads: Option<u32>,
    /// Seconds a spawned server may take to become ready.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    ready_timeout: f64,
    /// Where to write the result set [default: results/runs/<UTC time>-<hostname>-faults].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn main(args: FaultsArgs) -> anyhow::Result<()> {
    if args.repeat == 0 {
        bail!("--repeat must be at least 1 (the runs of every cell)");
    }
    if args.protocol == Protocol::Udp {
        bail!("harness faults injects TCP faults: its --protocol is echo or http, not udp");
    }
    let protocol = ProtocolArgs {
        protocol: args.protocol,
        request: args.request.clone(),
        pipeline: 1,
        root: args.root.clone(),
        work: args.work,
    };
    let faults = catalog::select(&args.faults, args.protocol)?;
    let mut servers = servers(&args)?;
    // Bad protocol options fail the run before its first cell.
    for server in &servers {
        protocol.apply(&mut server.clone())?;
    }
    if !(args.ready_timeout.is_finite() && (0.0..=3600.0).contains(&args.ready_timeout)) {
        bail!(
            "--ready-timeout must be between 0 and 3600 seconds (got {})",
            args.ready_timeout
        );
    }
    for server in &mut servers {
        server.launch.ready_within = Duration::from_secs_f64(args.ready_timeout);
    }
    let cpus = CpuLayout::for_this_process(args.server_cpus.as_deref(), args.client_cpus.as_deref(), true)?;
    let client_threads = args
        .client_threads
        .unwrap_or_else(|| cell::default_client_threads(&cpus));
    crate::cell::check_client_threads(client_threads)?;
    let phases = if args.quick { Phases::QUICK } else { Phases::FULL };

    let started = SystemTime::now();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| set::default_out_dir(started, "-faults"));
    let cells_dir = out.join("cells");
    std::fs::create_dir_all(&cells_dir)
        .with_context(|| format!("cannot create the result set directory {}", out.display()))?;
    if files::has_cells(&cells_dir)? || out.join("faults.json").exists() {
        bail!(
            "{} already holds another run; choose a new --out directory",
            out.display()
        );
    }
    let mut manifest = set::Manifest::new(
        started,
        describe_run(&faults, phases, args.quick, &protocol),
        &cpus,
        args.repeat,
        servers.iter().map(|server| server.label.clone()).collect(),
    );
    set::write_manifest(&out, &manifest)?;

    let repeats = args.repeat as usize;
    let total = servers.len() * faults.len() * repeats;
    let per_cell: f64 = faults
        .iter()
        .map(|fault| phases.for_fault(fault).total().as_secs_f64() + 0.3)
        .sum::<f64>()
        / faults.len() as f64;
    if args.protocol == Protocol::Http && args.faults.is_empty() {
        eprintln!(
            "echolab: faults: under --protocol http, {} {} left out (no HTTP form)",
            catalog::echo_only().join(" and "),
            if catalog::echo_only().len() == 1 {
                "is"
            } else {
                "are"
            }
        );
    }
    eprintln!(
        "echolab: faults: {} server{} x {} fault{}{} = {total} cells, about {} min; server on CPU {}, load and faults on CPU {}",
        servers.len(),
        if servers.len() == 1 { "" } else { "s" },
        faults.len(),
        if faults.len() == 1 { "" } else { "s" },
        if repeats > 1 {
            format!(" x {repeats} runs")
        } else {
            String::new()
        },
        (per_cell * total as f64 / 60.0).ceil(),
        format_cpulist(&cpus.server),
        format_cpulist(&cpus.client),
    );
    if let Some(warning) = cpus.shared_warning() {
        eprintln!("{warning}");
    }
    eprintln!("echolab: writing {}", out.display());

    let progress = crate::run::progress_bar(total as u64);
    let run_started = Instant::now();
    // Each cell's runs, faults major; interleaved: run 1 of every cell, then run 2, ...
    let mut runs: Vec<Vec<FaultRow>> = vec![Vec::new(); faults.len() * servers.len()];
    let mut cells: Vec<Cell> = Vec::new();
    for repeat in 1..=args.repeat {
        for (fault_index, fault) in faults.iter().enumerate() {
            for (server_index, server) in servers.iter().enumerate() {
                let run_note = if repeats > 1 {
                    format!(" [run {repeat}/{repeats}]")
                } else {
                    String::new()
                };
                progress.set_message(format!("{} / {}{run_note}", server.label, fault.name));
                let spec = FaultCellSpec {
                    server,
                    fault,
                    phases,
                    cpus: &cpus,
                    client_threads,
                    protocol: &protocol,
                    repeat,
                };
                let measured = cell::run(&spec).and_then(|measured| {
                    files::write_cell(&cells_dir, &measured.record, args.repeat)?;
                    Ok(measured)
                });
                let line = match measured {
                    Ok(measured) => {
                        let mut line = format!(
                            "{} / {}{run_note}: {} ({})",
                            server.label,
                            fault.name,
                            measured.row.outcome.as_str(),
                            measured.row.deciding
                        );
                        if crate::report::faults::busy(&measured.row) {
                            line += &format!(
                                " [busy machine: other processes took {:.0}% of a CPU, steal {:.0}%]",
                                measured.row.others_cpu_percent, measured.row.steal_percent
                            );
                        }
                        runs[fault_index * servers.len() + server_index].push(measured.row);
                        cells.push(measured.record.cell);
                        line
                    }
                    Err(error) => {
                        manifest.failures.push(set::Failure {
                            label: server.label.clone(),
                            scenario: cell::scenario(fault, &protocol),
                            repeat,
                            error: format!("{error:#}"),
                        });
                        format!(
                            "{} / {}{run_note}: NOT MEASURED: {error:#}",
                            server.label, fault.name
                        )
                    }
                };
                progress.inc(1);
                if progress.is_hidden() {
                    crate::run::eprint_progress_line(progress.position(), total as u64, run_started, &line);
                } else {
                    progress.println(format!("  {line}"));
                }
                // What is measured so far stays on disk if the run is stopped.
                faults::write(&out, &combined(&runs))?;
                set::write_summary(&out, &cells)?;
                set::write_manifest(&out, &manifest)?;
            }
        }
    }
    progress.finish_and_clear();
    let rows = combined(&runs);

    print!("{}", matrix_table(&rows, &faults, &servers));
    if let Some(sentence) = repeat::stability_sentence(&rows) {
        println!("\n{sentence}");
    }
    if !cells.is_empty() {
        crate::report::generate_and_announce(&out)?;
    }
    set::fail_on_failures(&out, manifest.failures.len(), total)
}

/// The rows of `faults.json`: each cell's runs so far as one row.
fn combined(runs: &[Vec<FaultRow>]) -> Vec<FaultRow> {
    runs.iter()
        .filter_map(|runs| repeat::combine(runs.clone()))
        .collect()
}

/// The servers, chosen as `run` chooses them, plus `--server-cmd`.
fn servers(args: &FaultsArgs) -> anyhow::Result<Vec<ServerUnderTest>> {
    let mut servers = Vec::new();
    if args.suite.is_some() || !args.models.is_empty() {
        let mut suite = Suite::load(args.suite.as_deref().unwrap_or("full"))?;
        if !args.models.is_empty() {
            suite.select_models(&args.models)?;
        }
        servers = suite.servers()?;
    } else if args.server_cmd.is_none() {
        servers = echo_core::MODELS
            .iter()
            .map(|model| ServerUnderTest::model(model, &[], None))
            .collect::<anyhow::Result<_>>()?;
    }
    if let Some(line) = &args.server_cmd {
        servers.push(ServerUnderTest::command_line(line, args.label.as_deref())?);
    }
    for (index, server) in servers.iter().enumerate() {
        if servers[..index]
            .iter()
            .any(|earlier| earlier.label == server.label)
        {
            bail!(
                "two servers are labelled '{}'; give --label a name of its own",
                server.label
            );
        }
    }
    Ok(servers)
}

/// The manifest's `suite`: what this run did.
fn describe_run(
    faults: &[&Fault],
    phases: Phases,
    quick: bool,
    protocol: &ProtocolArgs,
) -> serde_json::Value {
    let mut described = serde_json::json!({
        "name": if quick { "faults-quick" } else { "faults" },
        "description": "every server against every fault: a background of new clients (churn) before, during and after each fault",
        "faults": faults.iter().map(|fault| fault.name).collect::<Vec<_>>(),
        "warmup_s": phases.warmup.as_secs_f64(),
        "baseline_s": phases.baseline.as_secs_f64(),
        "fault_s": phases.fault.as_secs_f64(),
        "recovery_s": phases.recovery.as_secs_f64(),
        "background": format!(
            "churn: {} clients at a time, each connecting, echoing {} bytes once and closing",
            cell::BACKGROUND_LOOPS, 64
        ),
    });
    if protocol.protocol == Protocol::Http {
        let request = protocol.request.clone().unwrap_or(Request::Plaintext);
        described["protocol"] = "http".into();
        described["request"] = request.tag().into();
        described["background"] = format!(
            "churn: {} clients at a time, each connecting, sending one HTTP request ({}), checking the response and closing",
            cell::BACKGROUND_LOOPS,
            request.tag()
        )
        .into();
    }
    if let Some(work) = protocol.work.filter(|work| *work != Work::None) {
        described["work"] = work.to_string().into();
    }
    described
}

/// The matrix as text: faults as rows, servers as columns.
fn matrix_table(rows: &[FaultRow], faults: &[&Fault], servers: &[ServerUnderTest]) -> String {
    use std::fmt::Write;
    let labels = Labels::new(servers.iter().map(|server| server.label.as_str()));
    let columns = label_order(servers.iter().map(|server| server.label.as_str()), &labels);
    let widths: Vec<usize> = columns
        .iter()
        .map(|label| {
            faults
                .iter()
                .map(|fault| cell_text(rows, fault.name, label).chars().count())
                .chain([label.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let _ = write!(out, "\n{:<20}", "fault");
    for (label, width) in columns.iter().zip(&widths) {
        let _ = write!(out, "  {label:<width$}");
    }
    out.push('\n');
    for fault in faults {
        let _ = write!(out, "{:<20}", fault.name);
        for (label, width) in columns.iter().zip(&widths) {
            let _ = write!(out, "  {:<width$}", cell_text(rows, fault.name, label));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Args;

    #[test]
    fn the_help_names_every_fault() {
        let help = FaultsArgs::augment_args(clap::Command::new("faults"))
            .render_long_help()
            .to_string();
        for fault in &catalog::FAULTS {
            assert!(help.contains(fault.name), "{} is missing from --help", fault.name);
        }
    }
}
