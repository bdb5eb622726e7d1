//! `harness run`: the main job. Runs a suite (every scenario × every model,
//! `--repeat` times, or until their CIs are narrow enough with `--until-ci`)
//! into a result set, prints a summary table, and writes the report and
//! charts.

mod suite;
mod until_ci;

use crate::bench;
use crate::cell::{self, CellSpec};
use crate::cpus::{CpuLayout, format_cpulist};
use crate::fleet::shard::Shard;
use crate::report;
use crate::results::cell::Cell;
use crate::results::{files, set};
use crate::server::ServerUnderTest;
use crate::server::process::Unsupported;
use crate::stats;
use anyhow::{Context, Result, bail};
use indicatif::{HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
pub use suite::{Scenario, Suite};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// `quick` (about 3 minutes), `full`, `course` (the Python servers beside
    /// the Rust models, under 8 minutes), `http` (every model and nginx
    /// speaking HTTP), `work` (work per request), `udp` (the datagram
    /// model's variants under --protocol udp), or a suite file (TOML).
    #[arg(
        long,
        default_value = "quick",
        value_name = "quick|full|course|http|work|udp|FILE.toml"
    )]
    suite: String,
    /// Run only these models (labels or model names), comma-separated: the
    /// suite's entries (commands included) and any built-in model.
    #[arg(long, value_delimiter = ',', value_name = "M,M,..")]
    models: Vec<String>,
    /// CPUs for the servers, cpulist syntax (0-3,8) [default: the first half
    /// of the affinity mask].
    #[arg(long, value_name = "LIST")]
    server_cpus: Option<String>,
    /// CPUs for the load threads and the harness [default: the rest of the mask].
    #[arg(long, value_name = "LIST")]
    client_cpus: Option<String>,
    /// Load threads per cell, pinned to the client CPUs in turn [default: one per client CPU].
    #[arg(long, value_name = "N")]
    client_threads: Option<u32>,
    /// Do not count the servers' system calls (counting costs a server some
    /// CPU per message: the README says how much).
    #[arg(long)]
    no_syscalls: bool,
    /// Run every cell this many times, interleaved; the summary shows the
    /// median with its 95% CI from 6 repeats, the min–max below.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: u32,
    /// Repeat every cell, interleaved, until the 95% CIs of its throughput
    /// and its p99 both lie within ±PCT% of their medians (from 6 runs on),
    /// or --max-repeat is reached; instead of --repeat.
    #[arg(long, value_name = "PCT", conflicts_with = "repeat", value_parser = until_ci::parse_percent)]
    until_ci: Option<f64>,
    /// With --until-ci: the most runs of a cell [default: 20].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(6..=100))]
    max_repeat: Option<u32>,
    /// Where to write the result set [default: results/runs/<UTC time>-<hostname>]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Run only shard K of N of the cells (from 1), for a suite spread over
    /// N machines and merged with `harness merge`; `env` reads it from a
    /// Kubernetes Indexed Job (JOB_COMPLETION_INDEX and HARNESS_SHARD_TOTAL)
    /// or a Slurm array (SLURM_ARRAY_TASK_ID, _MIN, _COUNT).
    #[arg(long, value_name = "K/N|env")]
    shard: Option<String>,
    /// Run every sweep of the suite over this protocol instead of its own
    /// (echo: TCP; udp: datagrams, e.g. `--suite quick --models udp --protocol udp`).
    #[arg(long, value_enum, value_name = "PROTOCOL")]
    protocol: Option<crate::protocol::Protocol>,
}

pub fn main(args: RunArgs) -> Result<()> {
    if args.max_repeat.is_some() && args.until_ci.is_none() {
        bail!("--max-repeat caps --until-ci; without it, --repeat N gives the number of runs");
    }
    if args.until_ci.is_some() && args.shard.is_some() {
        bail!(
            "--until-ci cannot run with --shard: the shards split each cell's repeats between them, so no machine sees the runs that decide when a cell is done"
        );
    }
    // Rounds of repeats: --repeat's, or --until-ci's cap.
    let rounds = match args.until_ci {
        Some(_) => args.max_repeat.unwrap_or(until_ci::DEFAULT_MAX_REPEAT),
        None => args.repeat,
    };
    let mut suite = Suite::load(&args.suite)?;
    if let Some(protocol) = args.protocol {
        for sweep in &mut suite.sweeps {
            sweep.protocol = protocol;
        }
    }
    if !args.models.is_empty() {
        suite.select_models(&args.models)?;
    }
    let mut servers = suite.servers()?;
    for server in &mut servers {
        server.launch.count_syscalls = !args.no_syscalls;
    }
    let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
    let cpus = CpuLayout::for_this_process(args.server_cpus.as_deref(), args.client_cpus.as_deref(), true)?;
    let client_threads = args
        .client_threads
        .unwrap_or_else(|| bench::default_client_threads(&cpus));
    let started = SystemTime::now();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(started, shard.as_ref()));
    let cells_dir = out.join("cells");
    std::fs::create_dir_all(&cells_dir)
        .with_context(|| format!("cannot create the result set directory {}", out.display()))?;
    ensure_empty_of_cells(&cells_dir)?;
    echo_core::process::raise_fd_limit().ok();

    let root = match suite.root.as_deref() {
        Some("generated") => {
            let root = out.join("www");
            crate::protocol::write_static_set(&root)?;
            Some(root)
        }
        Some(path) => Some(PathBuf::from(path)),
        None => None,
    };
    let mut scenarios = suite.scenarios();
    for scenario in &mut scenarios {
        scenario.load.client_threads = client_threads;
        scenario.protocol.root = root.clone();
        cell::check_load(&scenario.load)?;
        // Bad protocol options fail the run before its first cell.
        for server in &servers {
            scenario
                .protocol
                .apply(&mut server.clone())
                .with_context(|| format!("scenario {} for {}", scenario.name, server.label))?;
        }
    }
    let mut manifest = set::Manifest::new(
        started,
        serde_json::to_value(&suite)?,
        &cpus,
        rounds,
        servers.iter().map(|server| server.label.clone()).collect(),
    );
    manifest.shard = shard.as_ref().map(Shard::record);
    set::write_manifest(&out, &manifest)?;

    let all_cells = servers.len() * scenarios.len() * rounds as usize;
    let owns = |repeat: u32, scenario: &Scenario, server: &ServerUnderTest| {
        shard
            .as_ref()
            .is_none_or(|shard| shard.owns(&server.label, &scenario.name, repeat))
    };
    // The cells this run measures, in order: repeat by repeat (round by
    // round), scenario by scenario, server by server. With --until-ci a
    // cell leaves `pending` once its CIs are narrow enough.
    let mut pending: Vec<(&Scenario, &ServerUnderTest)> = scenarios
        .iter()
        .flat_map(|scenario| servers.iter().map(move |server| (scenario, server)))
        .collect();
    let total = if args.until_ci.is_some() {
        pending.len()
    } else {
        (1..=rounds)
            .map(|repeat| {
                pending
                    .iter()
                    .filter(|(scenario, server)| owns(repeat, scenario, server))
                    .count()
            })
            .sum()
    };
    if let Some(shard) = &shard {
        eprintln!(
            "echolab: shard {} from {}: {total} of the suite's {all_cells} cells",
            shard.position.fraction(),
            shard.position.source
        );
    }
    let per_cell = Duration::from_secs_f64(suite.warmup_s + suite.duration_s);
    let minutes = |cells: usize| ((per_cell.as_secs_f64() + 1.0) * cells as f64 / 60.0).ceil();
    let (runs, took) = match args.until_ci {
        Some(percent) => (
            format!(
                "{} to {rounds} runs until the CIs are within ±{percent}%",
                until_ci::MIN_REPEATS
            ),
            match (
                minutes(total * until_ci::MIN_REPEATS as usize),
                minutes(all_cells),
            ) {
                (least, most) if least == most => format!("about {most} min"),
                (least, most) => format!("{least} to {most} min"),
            },
        ),
        None => (rounds.to_string(), format!("about {} min", minutes(total))),
    };
    eprintln!(
        "echolab: suite '{}': {} models x {} scenarios x {runs} = {} cells, {took} here; server on CPU {}, load on CPU {} ({client_threads} load thread{})",
        suite.name,
        servers.len(),
        scenarios.len(),
        if args.until_ci.is_some() {
            format!("up to {all_cells}")
        } else {
            all_cells.to_string()
        },
        format_cpulist(&cpus.server),
        format_cpulist(&cpus.client),
        if client_threads == 1 { "" } else { "s" },
    );
    if let Some(warning) = cpus.shared_warning() {
        eprintln!("{warning}");
    }
    if let Some(placement) = &manifest.placement
        && let Some(engine) = &placement.engine
    {
        eprintln!(
            "echolab: placed by {engine} on {} of the machine's {} CPUs ({})",
            placement.cpus.len(),
            placement.online_cpus,
            format_cpulist(&placement.cpus)
        );
    }
    eprintln!("echolab: writing {}", out.display());
    if total == 0 {
        set::write_summary(&out, &[])?;
        println!(
            "this shard has none of the suite's {all_cells} cells (more shards than cells?); result set without cells: {}",
            out.display()
        );
        return Ok(());
    }
    // With --until-ci the bar grows by each round's cells as it starts.
    let progress = progress_bar(total as u64);
    // Without a terminal (CI, nohup, a pipe) the bar is hidden: one line per
    // cell instead, so a long run still shows where it is.
    let plain_progress = !std::io::stderr().is_terminal();
    let run_started = Instant::now();
    let mut cells: Vec<Cell> = Vec::new();
    let mut measured_cells = 0;
    for repeat in 1..=rounds {
        if pending.is_empty() {
            break;
        }
        let this_round: Vec<(&Scenario, &ServerUnderTest)> = pending
            .iter()
            .copied()
            .filter(|(scenario, server)| owns(repeat, scenario, server))
            .collect();
        if args.until_ci.is_some() && repeat > 1 {
            progress.set_length(progress.position() + this_round.len() as u64);
        }
        // Cells a machine cannot run leave the later rounds of --until-ci.
        let mut unsupported_here: BTreeSet<(String, String)> = BTreeSet::new();
        for (scenario, server) in this_round {
            let mut spoken = server.clone();
            spoken.launch.count_syscalls &= scenario.count_syscalls;
            let mut load = scenario.load.clone();
            load.step = scenario.protocol.apply(&mut spoken)?;
            let spec = CellSpec {
                server: spoken,
                scenario: scenario.name.clone(),
                repeat,
                load,
                cpus: cpus.clone(),
            };
            progress.set_message(format!("{} / {} (run {repeat})", server.label, scenario.name));
            let outcome = cell::run_cell(&spec).and_then(|record| {
                files::write_cell(&cells_dir, &record, rounds)?;
                Ok(record.cell)
            });
            // What the plain progress line says of the cell.
            let measured = match outcome {
                Ok(cell) => {
                    if !cell.flags.is_empty() {
                        let flags: Vec<_> = cell.flags.iter().map(|f| f.as_str()).collect();
                        say(
                            &progress,
                            format!(
                                "  {} / {}: flagged {}",
                                cell.label,
                                cell.scenario,
                                flags.join(", ")
                            ),
                        );
                    }
                    let measured = format!("{:.0} msgs/s", cell.msgs_per_sec);
                    cells.push(cell);
                    measured
                }
                Err(ref error) if let Some(unsupported) = error.downcast_ref::<Unsupported>() => {
                    let known = manifest
                        .unsupported
                        .iter()
                        .any(|known| known.label == server.label);
                    if !known {
                        say(&progress, format!("  {}: {unsupported}", server.label));
                    }
                    manifest.unsupported.push(set::Unsupported {
                        label: server.label.clone(),
                        scenario: scenario.name.clone(),
                        repeat,
                        reason: unsupported.reason.clone(),
                    });
                    unsupported_here.insert((server.label.clone(), scenario.name.clone()));
                    "unsupported here".to_owned()
                }
                Err(error) => {
                    say(
                        &progress,
                        format!("  {} / {}: FAILED: {error:#}", server.label, scenario.name),
                    );
                    manifest.failures.push(set::Failure {
                        label: server.label.clone(),
                        scenario: scenario.name.clone(),
                        repeat,
                        error: format!("{error:#}"),
                    });
                    "failed".to_owned()
                }
            };
            measured_cells += 1;
            progress.inc(1);
            if plain_progress {
                eprint_progress_line(
                    progress.position(),
                    progress.length().unwrap_or(total as u64),
                    run_started,
                    &format!("{} / {} (run {repeat}): {measured}", server.label, scenario.name),
                );
            }
            // Keep what is measured so far on disk: an interrupted run
            // still leaves a readable result set.
            set::write_summary(&out, &cells)?;
            set::write_manifest(&out, &manifest)?;
        }
        if let Some(target) = args.until_ci {
            let mut stopped = Vec::new();
            pending.retain(|(scenario, server)| {
                let key = (server.label.clone(), scenario.name.clone());
                if unsupported_here.contains(&key) {
                    return false;
                }
                let measured: Vec<&Cell> = cells
                    .iter()
                    .filter(|cell| cell.label == key.0 && cell.scenario == key.1)
                    .collect();
                match until_ci::stop(repeat, &measured, target, rounds) {
                    Some(reached) => {
                        stopped.push((key, reached));
                        false
                    }
                    None => true,
                }
            });
            for ((label, scenario), reached) in stopped {
                say(
                    &progress,
                    format!(
                        "  {label} / {scenario}: {} after {} runs",
                        if reached.converged {
                            "within the target"
                        } else {
                            "stopped by --max-repeat"
                        },
                        reached.repeats
                    ),
                );
                // Each of its runs' documents says what the cell reached.
                for cell in cells
                    .iter_mut()
                    .filter(|cell| cell.label == label && cell.scenario == scenario)
                {
                    cell.until_ci = Some(reached.clone());
                    files::write_json(&cells_dir.join(format!("{}.json", cell.file_stem(rounds))), cell)?;
                }
            }
        }
    }
    progress.finish_and_clear();

    print!("{}", summary_table(&cells, rounds));
    let unsupported: BTreeSet<&str> = manifest
        .unsupported
        .iter()
        .map(|entry| entry.label.as_str())
        .collect();
    if !unsupported.is_empty() {
        println!(
            "\nnot run, unsupported on this machine: {} (the reasons are in manifest.json and the report)",
            unsupported.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let shared = cpus.shared();
    if !shared.is_empty() {
        println!(
            "\nevery cell is flagged shared-cpu: the servers and the load shared CPU {}, so each side's numbers include the other's",
            format_cpulist(&shared)
        );
    }
    let noisy = cells
        .iter()
        .filter(|cell| cell.flags.contains(&crate::results::cell::Flag::Noisy))
        .count();
    if noisy > 0 {
        println!(
            "\n{noisy} of {} cells flagged noisy: other processes or the VM's host took part of their CPUs during the window (machine.busy_percent, machine.steal_percent), so their timing figures say as much about that as about the servers",
            cells.len()
        );
    }
    // A report needs a measured cell; without one, the failures say why.
    if !cells.is_empty() {
        report::generate_and_announce(&out)?;
    }
    set::fail_on_failures(&out, manifest.failures.len(), measured_cells)
}

/// Prints a line above the progress bar, or on stderr when there is no bar
/// (no terminal: CI, nohup, a pipe), so that no failure goes unsaid.
fn say(progress: &ProgressBar, line: String) {
    if progress.is_hidden() {
        eprintln!("{line}");
    } else {
        progress.println(line);
    }
}

fn default_out_dir(started: SystemTime, shard: Option<&Shard>) -> PathBuf {
    let shard = shard.map_or_else(String::new, |shard| {
        format!("-shard{}of{}", shard.position.index + 1, shard.position.total)
    });
    set::default_out_dir(started, &shard)
}

/// Refuses to mix two runs in one result set.
fn ensure_empty_of_cells(cells_dir: &Path) -> Result<()> {
    files::ensure_no_cells(
        cells_dir,
        " of another run; choose a new --out directory",
        files::Unreadable::Fail,
    )
}

/// A bar over `total` cells on stderr; hidden without a terminal, where
/// callers print a line per cell instead.
pub(crate) fn progress_bar(total: u64) -> ProgressBar {
    let progress = ProgressBar::new(total);
    progress.set_draw_target(ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} cells, ~{eta} left  {msg}")
            .expect("the progress template is valid"),
    );
    progress.enable_steady_tick(Duration::from_millis(250));
    progress
}

/// What is printed instead of the bar when it is hidden, once `done` of
/// `total` cells are: `[done/total] {what}; X elapsed, ~Y left`, the time
/// left at the pace since `started`.
pub(crate) fn eprint_progress_line(done: u64, total: u64, started: Instant, what: &str) {
    let elapsed = started.elapsed();
    let left = elapsed.mul_f64((total - done) as f64 / done as f64);
    eprintln!(
        "[{done}/{total}] {what}; {} elapsed, ~{} left",
        HumanDuration(elapsed),
        HumanDuration(left)
    );
}

/// The table printed at the end: one row per scenario and label; with
/// repeats, the throughput's median and its 95% CI (n ≥ 6), or its min–max
/// marked `n = N: no CI`. After `--until-ci`, the runs each cell took (`n`)
/// and the CIs it reached.
fn summary_table(cells: &[Cell], repeats: u32) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write;
    let mut groups: BTreeMap<(String, String), Vec<&Cell>> = BTreeMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    for cell in cells {
        let key = (cell.scenario.clone(), cell.label.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(cell);
    }
    let stopped_by_ci = cells.iter().any(|cell| cell.until_ci.is_some());
    let mut out = String::new();
    let _ = write!(
        out,
        "\n{:<24} {:<22} {:>36} {:>9} {:>9} {:>10} {:>7} {:>9}",
        "scenario", "model", "msgs/s", "p50 µs", "p99 µs", "max µs", "cpu %", "cpu µs/m"
    );
    if stopped_by_ci {
        let _ = write!(out, " {:>3}  {:<26}", "n", "CI reached (msgs/s, p99)");
    }
    let _ = writeln!(out, "  flags");
    let mut last_scenario = String::new();
    for key in order {
        let group = &groups[&key];
        let median = |f: &dyn Fn(&Cell) -> f64| median_of(group.iter().map(|c| f(c)).collect());
        let throughput = if repeats > 1 {
            let values: Vec<f64> = group.iter().map(|c| c.msgs_per_sec).collect();
            stats::Summary::of(&values)
                .map_or_else(|| "-".to_owned(), |summary| summary.text(|v| format!("{v:.0}")))
        } else {
            format!("{:.0}", group[0].msgs_per_sec)
        };
        let mut flags: Vec<&str> = group
            .iter()
            .flat_map(|c| c.flags.iter().map(|f| f.as_str()))
            .collect();
        flags.sort_unstable();
        flags.dedup();
        let scenario = if key.0 == last_scenario {
            String::new()
        } else {
            key.0.clone()
        };
        last_scenario = key.0.clone();
        let _ = write!(
            out,
            "{:<24} {:<22} {:>36} {:>9.1} {:>9.1} {:>10.1} {:>7.1} {:>9.2}",
            scenario,
            key.1,
            throughput,
            median(&|c| c.latency_us.p50),
            median(&|c| c.latency_us.p99),
            median(&|c| c.latency_us.max),
            median(&|c| c.server.as_ref().map_or(f64::NAN, |s| s.cpu_percent)),
            median(&|c| c.server.as_ref().map_or(f64::NAN, |s| s.cpu_us_per_msg)),
        );
        if stopped_by_ci {
            let reached = group[0]
                .until_ci
                .as_ref()
                .map_or_else(|| "-".to_owned(), until_ci::reached_text);
            let _ = write!(out, " {:>3}  {reached:<26}", group.len());
        }
        let _ = writeln!(out, "  {}", flags.join(" "));
    }
    out
}

/// The median (the mean of the middle two for an even count).
pub fn median_of(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median_of(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_of(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median_of(Vec::new()).is_nan());
    }

    fn cell(repeat: u32, msgs_per_sec: f64) -> Cell {
        Cell::example("epoll", "closed-c10-s64", repeat, msgs_per_sec)
    }

    #[test]
    fn the_summary_gives_a_ci_from_six_repeats_and_says_when_there_is_none() {
        let three: Vec<Cell> = (1..=3)
            .map(|repeat| cell(repeat, 1000.0 + f64::from(repeat)))
            .collect();
        let table = summary_table(&three, 3);
        assert!(table.contains("1002 [1001–1003] n = 3: no CI"), "{table}");
        let six: Vec<Cell> = (1..=6)
            .map(|repeat| cell(repeat, 1000.0 + f64::from(repeat)))
            .collect();
        let table = summary_table(&six, 6);
        assert!(table.contains("1004 [1001, 1006]"), "{table}");
        assert!(!table.contains("no CI"), "{table}");
    }
}
