//! What each step measures: cells through [`crate::cell::run_cell`] (written
//! into the tour's result set by [`Session::cell`]) or, for steps 1 and 2,
//! the scene of [`super::hold`]. Each function returns the figures its
//! step's verdict reads (see [`super::steps`]), a chart, and notes; or why it
//! could not measure (a model that is not built, a facility the machine
//! lacks). Model names are data: a step that needs a model this harness
//! does not have says so and measures the rest.

use super::steps::{
    BEYOND_FD_SETSIZE, CPU_MICROS, HOLD_MS, KEEP_ALIVE_CONNECTIONS, LANGUAGE_PAIRS, OVERLAPPING_MODELS,
    REACTOR_CPUS_MIN, WAIT_CONNECTIONS, WAIT_MICROS,
};
use super::{Figures, Session};
use crate::results::cell::{Cell, Flag, Shape, Syscalls};
use crate::results::tour::{TourBar, TourChart};
use crate::server::ServerUnderTest;
use crate::server::process::Unsupported;
use echo_core::syscalls::PROFILE_LOAD;
use std::time::Duration;

/// What one step measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub figures: Figures,
    pub chart: Option<TourChart>,
    /// Lines shown under the figures: one per model, parts skipped.
    pub notes: Vec<String>,
    /// Why the step measured nothing it could judge.
    pub skipped: Option<String>,
}

impl Measured {
    fn with_chart(title: &str, unit: &str) -> Measured {
        Measured {
            chart: Some(TourChart {
                title: title.to_owned(),
                unit: unit.to_owned(),
                bars: Vec::new(),
                cut_outliers: false,
            }),
            ..Measured::default()
        }
    }

    fn skipped(reason: String) -> Measured {
        Measured {
            skipped: Some(reason),
            ..Measured::default()
        }
    }

    /// Records a figure, to four significant digits.
    fn figure(&mut self, name: impl Into<String>, value: f64) {
        self.figures.insert(name.into(), significant(value));
    }

    fn bar(&mut self, label: impl Into<String>, value: f64, model: Option<&str>) {
        if let Some(chart) = &mut self.chart {
            chart.bars.push(TourBar {
                label: label.into(),
                value: significant(value),
                model: model.map(str::to_owned),
            });
        }
    }
}

/// `value` rounded to four significant digits (tour.json is read by people).
fn significant(value: f64) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    let scale = 10f64.powi(3 - value.abs().log10().floor() as i32);
    (value * scale).round() / scale
}

/// True when this harness has the model.
fn built(model: &str) -> bool {
    echo_core::MODELS.contains(&model)
}

fn not_built(model: &str) -> String {
    format!("model {model} is not built into this harness")
}

fn model(name: &str) -> anyhow::Result<ServerUnderTest> {
    ServerUnderTest::model(name, &[], None)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn server(cell: &Cell) -> anyhow::Result<&crate::results::cell::ServerStats> {
    cell.server
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("{}: the server was not measured", cell.label))
}

/// Context switches (voluntary and involuntary) per message, over the
/// messages between the server's first and last samples.
fn switches_per_message(cell: &Cell) -> anyhow::Result<f64> {
    let server = server(cell)?;
    let messages = (cell.messages as f64 * server.sampled_share).max(1.0);
    Ok((server.ctx_voluntary + server.ctx_involuntary) as f64 / messages)
}

/// Connections that were answered with no error: all but the starved and
/// the failed ones.
fn served(cell: &Cell) -> f64 {
    f64::from(cell.connections)
        - f64::from(cell.starved_connections)
        - (cell.errors.total() as f64).min(f64::from(cell.connections))
}

// ── Steps 1 and 2 ───────────────────────────────────────────────────────────

pub fn single_starves(session: &mut Session) -> anyhow::Result<Measured> {
    let labels = ["A: first echo", "B: no echo, A stays", "B: echo after A left"];
    scene(session, model("single")?, 1, labels)
}

/// The pool's size in step 2.
const POOL_WORKERS: u32 = 4;

pub fn pool_waits(session: &mut Session) -> anyhow::Result<Measured> {
    let pool = ServerUnderTest::model(
        "pool",
        &["--workers".to_owned(), POOL_WORKERS.to_string()],
        Some("pool-4"),
    )?;
    let labels = [
        "first 4: slowest echo",
        "5th: no echo, 4 stay",
        "5th: echo after 1 left",
    ];
    scene(session, pool, POOL_WORKERS, labels)
}

/// The scene with `holders` holding clients; `labels` name the chart's bars:
/// the holders' slowest first echo, the waiting client's wait while they
/// stay, its echo after one leaves.
fn scene(
    session: &mut Session,
    mut server: ServerUnderTest,
    holders: u32,
    labels: [&str; 3],
) -> anyhow::Result<Measured> {
    server.launch.count_syscalls = false;
    let scene = session.scene(&server, holders, Duration::from_secs_f64(HOLD_MS / 1e3))?;
    let mut measured = Measured::with_chart(
        &format!("{}: how long clients waited for an echo", server.label),
        "milliseconds",
    );
    measured.figure("holding_clients", f64::from(scene.holders));
    measured.figure("holding_clients_echoed", f64::from(scene.holders_echoed));
    measured.figure("holding_client_slowest_echo_ms", ms(scene.slowest_holder_echo));
    let echoed_while_held = scene.echoed_while_held.is_some();
    measured.figure(
        "waiting_client_echoed_while_held",
        if echoed_while_held { 1.0 } else { 0.0 },
    );
    measured.figure("waiting_client_waited_ms", ms(scene.waited));
    let model = server.model_name().map(str::to_owned);
    let model = model.as_deref();
    measured.bar(labels[0], ms(scene.slowest_holder_echo), model);
    if echoed_while_held {
        measured.bar(labels[1].replace("no echo", "echoed"), ms(scene.waited), model);
    } else {
        measured.bar(labels[1], ms(scene.waited), model);
    }
    if let Some(after) = scene.echo_after_leave {
        measured.figure("waiting_client_echo_after_leave_ms", ms(after));
        measured.bar(labels[2], ms(after), model);
    }
    Ok(measured)
}

// ── Step 3 ──────────────────────────────────────────────────────────────────

pub fn busy_polling(session: &mut Session) -> anyhow::Result<Measured> {
    let models: &[&str] = if session.quick {
        &["nonblocking", "epoll"]
    } else {
        &["nonblocking", "select", "epoll"]
    };
    let mut measured = Measured::with_chart(
        "Server CPU with 10 idle connections and one message every 100 ms",
        "% of one CPU",
    );
    for name in models {
        let load = session.load(Shape::Open, 1, 10, Some(10.0));
        let cell = session.cell(model(name)?, load)?;
        let percent = server(&cell)?.cpu_percent;
        measured.figure(format!("{name}_cpu_percent"), percent);
        measured.bar(*name, percent, Some(name));
    }
    Ok(measured)
}

// ── Step 4 ──────────────────────────────────────────────────────────────────

pub fn fd_setsize(session: &mut Session) -> anyhow::Result<Measured> {
    let mut measured = Measured::with_chart(
        &format!("Connections served of {BEYOND_FD_SETSIZE}"),
        "connections echoed with no error",
    );
    measured.figure("connections", f64::from(BEYOND_FD_SETSIZE));
    for name in ["select", "epoll"] {
        let load = session.load(Shape::Closed, BEYOND_FD_SETSIZE, 0, None);
        let cell = session.cell(model(name)?, load)?;
        measured.figure(format!("{name}_served"), served(&cell));
        measured.figure(format!("{name}_failed"), cell.errors.total() as f64);
        measured.bar(name, served(&cell), Some(name));
    }
    Ok(measured)
}

// ── Step 5 ──────────────────────────────────────────────────────────────────

pub fn scan_cost(session: &mut Session) -> anyhow::Result<Measured> {
    let sweeps: [(&str, &[u32]); 2] = if session.quick {
        [("select", &[0, 1000]), ("epoll", &[0, 2000])]
    } else {
        [("select", &[0, 500, 1000]), ("epoll", &[0, 500, 1000, 2000])]
    };
    let mut measured = Measured::with_chart(
        "Server CPU per message: one active connection beside idle ones",
        "server CPU per message (µs)",
    );
    for (name, idle_counts) in sweeps {
        let mut costs = Vec::new();
        for &idle in idle_counts {
            let load = session.load(Shape::Closed, 1, idle, None);
            let cell = session.cell(model(name)?, load)?;
            let cost = server(&cell)?.cpu_us_per_msg;
            measured.figure(format!("{name}_cpu_us_per_msg_idle_{idle}"), cost);
            measured.bar(format!("{name}, {idle} idle"), cost, Some(name));
            costs.push(cost);
        }
        let (first, last) = (costs[0], costs[costs.len() - 1]);
        measured.figure(
            format!("{name}_most_idle"),
            f64::from(idle_counts[idle_counts.len() - 1]),
        );
        measured.figure(format!("{name}_growth"), last / first.max(f64::MIN_POSITIVE));
    }
    Ok(measured)
}

// ── Step 6 ──────────────────────────────────────────────────────────────────

pub fn thread_cost(session: &mut Session) -> anyhow::Result<Measured> {
    let clients: &[u32] = if session.quick {
        &[10, 500]
    } else {
        &[10, 100, 500]
    };
    let (fewest, most) = (clients[0], clients[clients.len() - 1]);
    let mut measured = Measured::with_chart(
        &format!("Address space per added client, {fewest} to {most} clients"),
        "KiB per added client",
    );
    for name in ["threaded", "epoll", "async"] {
        let mut ends = Vec::new();
        for &count in clients {
            let load = session.load(Shape::Closed, count, 0, None);
            let cell = session.cell(model(name)?, load)?;
            let stats = server(&cell)?;
            measured.figure(format!("{name}_threads_at_{count}"), stats.threads as f64);
            measured.figure(
                format!("{name}_switches_per_msg_at_{count}"),
                switches_per_message(&cell)?,
            );
            if count == fewest || count == most {
                let memory = stats
                    .memory_kib()
                    .ok_or_else(|| anyhow::anyhow!("{name} at {count} clients: no memory figure"))?;
                ends.push((stats.vm_peak_kib as f64, memory as f64));
            }
            if count == most {
                measured.figure(format!("{name}_switches_per_msg"), switches_per_message(&cell)?);
            }
        }
        let added = f64::from(most - fewest);
        let space = (ends[1].0 - ends[0].0) / added;
        measured.figure(format!("{name}_address_space_per_client_kib"), space);
        measured.figure(
            format!("{name}_memory_per_client_kib"),
            (ends[1].1 - ends[0].1) / added,
        );
        measured.bar(name, space, Some(name));
    }
    Ok(measured)
}

// ── Step 7 ──────────────────────────────────────────────────────────────────

/// Clients in step 7.
const MANY_CLIENTS: u32 = 1000;

pub fn coroutines(session: &mut Session) -> anyhow::Result<Measured> {
    let mut measured = Measured::with_chart(&format!("OS threads serving {MANY_CLIENTS} clients"), "threads");
    for name in ["threaded", "coroutine"] {
        let load = session.load(Shape::Closed, MANY_CLIENTS, 0, None);
        let cell = session.cell(model(name)?, load)?;
        let threads = server(&cell)?.threads as f64;
        measured.figure(format!("{name}_threads"), threads);
        measured.figure(format!("{name}_switches_per_msg"), switches_per_message(&cell)?);
        measured.figure(format!("{name}_msgs_per_sec"), cell.msgs_per_sec);
        measured.figure(
            format!("{name}_unserved_clients"),
            f64::from(MANY_CLIENTS) - served(&cell),
        );
        measured.bar(name, threads, Some(name));
    }
    Ok(measured)
}

// ── Step 8 ──────────────────────────────────────────────────────────────────

pub fn connect_cost(session: &mut Session) -> anyhow::Result<Measured> {
    let mut measured = Measured::with_chart(
        "Server CPU per connection: connect, echo 64 bytes, close",
        "server CPU per connection (µs)",
    );
    let mut iterative = None;
    for name in ["single", "threaded", "process", "epoll"] {
        if !built(name) {
            measured
                .notes
                .push(format!("{name}: skipped, {}", not_built(name)));
            continue;
        }
        let load = session.load(Shape::Churn, 10, 0, None);
        let cell = session.cell(model(name)?, load)?;
        let cost = server(&cell)?.cpu_us_per_msg;
        let base = *iterative.get_or_insert(cost);
        measured.figure(format!("{name}_cpu_us_per_connection"), cost);
        measured.figure(format!("{name}_above_iterative_us"), cost - base);
        measured.bar(name, cost, Some(name));
        if cell.flags.contains(&Flag::ClientBound) {
            measured.notes.push(format!(
                "{name}: the load generator was the limit (client-bound); the server's CPU per connection stands"
            ));
        }
    }
    Ok(measured)
}

// ── Step 9 ──────────────────────────────────────────────────────────────────

/// `epoll` + `["--edge"]` → `epoll-edge`.
fn variant_label(model: &str, args: &[&str]) -> String {
    let mut words = vec![model.to_owned()];
    words.extend(args.iter().map(|arg| arg.trim_start_matches('-').to_owned()));
    words.join("-")
}

pub fn syscall_profiles(session: &mut Session) -> anyhow::Result<Measured> {
    let mut measured = Measured::with_chart(
        "System calls per message under the profile load",
        "system calls per message",
    );
    // Busy polling makes hundreds per message, the others two to four.
    if let Some(chart) = &mut measured.chart {
        chart.cut_outliers = true;
    }
    let (mut checked, mut contradicted) = (0u32, 0u32);
    for name in echo_core::MODELS {
        let Some(profiles) = crate::profiles::of(name) else {
            measured.notes.push(format!(
                "{name}: skipped, its SYSCALLS are not in harness/src/profiles.rs"
            ));
            continue;
        };
        for profile in profiles {
            let label = variant_label(name, profile.args);
            let args: Vec<String> = profile.args.iter().map(|arg| (*arg).to_owned()).collect();
            let server_under_test = ServerUnderTest::model(name, &args, Some(&label))?;
            let load = session.load(
                Shape::Open,
                PROFILE_LOAD.connections,
                0,
                Some(PROFILE_LOAD.messages_per_second),
            );
            let load = crate::load::LoadSpec {
                size: PROFILE_LOAD.size,
                ..load
            };
            let cell = session.cell_counting_syscalls(server_under_test, load)?;
            let syscalls = &server(&cell)?.syscalls;
            if let Some(reason) = &syscalls.unavailable {
                return Ok(Measured::skipped(format!(
                    "system calls cannot be counted here: {reason}"
                )));
            }
            let total = syscalls.per_msg_total.unwrap_or(0.0);
            measured.figure(format!("{label}_syscalls_per_msg"), total);
            measured.bar(label.as_str(), total, Some(name));
            let mut wrong = Vec::new();
            for expect in profile.per_message {
                let map = if expect.failed_with_eagain {
                    &syscalls.eagain_per_msg
                } else {
                    &syscalls.per_msg
                };
                let value: f64 = expect.syscalls.iter().filter_map(|call| map.get(*call)).sum();
                checked += 1;
                if !expect.per_message.contains(&value) {
                    contradicted += 1;
                    wrong.push(format!(
                        "{}{} {} per message, its doc says {} to {}",
                        expect.syscalls.join("|"),
                        if expect.failed_with_eagain {
                            " failing with EAGAIN"
                        } else {
                            ""
                        },
                        super::steps::short(value),
                        super::steps::short(*expect.per_message.start()),
                        super::steps::short(*expect.per_message.end()),
                    ));
                }
            }
            let verdict = if wrong.is_empty() {
                "as its doc says".to_owned()
            } else {
                format!("CONTRADICTS its doc: {}", wrong.join("; "))
            };
            measured.notes.push(format!(
                "{label}: {} calls per message ({}): {verdict}",
                super::steps::short(total),
                by_name(&syscalls.per_msg, &syscalls.eagain_per_msg)
            ));
        }
    }
    measured.figure("ranges_checked", f64::from(checked));
    measured.figure("ranges_contradicted", f64::from(contradicted));
    Ok(measured)
}

/// `recvfrom 2.00 (EAGAIN 1.00), sendto 1.00, epoll_wait 0.98`: the calls
/// made at least once per 200 messages, most first.
fn by_name(
    calls: &std::collections::BTreeMap<String, f64>,
    eagain: &std::collections::BTreeMap<String, f64>,
) -> String {
    Syscalls::most_first(calls)
        .iter()
        .map(
            |(name, value)| match eagain.get(*name).filter(|failed| **failed >= 0.005) {
                Some(failed) => format!(
                    "{name} {} (EAGAIN {})",
                    super::steps::short(*value),
                    super::steps::short(*failed)
                ),
                None => format!("{name} {}", super::steps::short(*value)),
            },
        )
        .collect::<Vec<_>>()
        .join(", ")
}

// ── Step 10 ─────────────────────────────────────────────────────────────────

pub fn uring_batches(session: &mut Session) -> anyhow::Result<Measured> {
    if !built("uring") {
        return Ok(Measured::skipped(not_built("uring")));
    }
    let mut measured = Measured::with_chart(
        "System calls per message, 100 connections in closed loop",
        "system calls per message",
    );
    // uring first: a machine that cannot run it skips the step.
    for name in ["uring", "epoll"] {
        let load = session.load(Shape::Closed, 100, 0, None);
        let cell = match session.cell_counting_syscalls(model(name)?, load) {
            Ok(cell) => cell,
            Err(ref error)
                if name == "uring"
                    && let Some(unsupported) = error.downcast_ref::<Unsupported>() =>
            {
                return Ok(Measured::skipped(format!(
                    "io_uring is unavailable here: {}",
                    unsupported.reason
                )));
            }
            Err(error) => return Err(error),
        };
        let syscalls = &server(&cell)?.syscalls;
        if let Some(reason) = &syscalls.unavailable {
            return Ok(Measured::skipped(format!(
                "system calls cannot be counted here: {reason}"
            )));
        }
        let total = syscalls.per_msg_total.unwrap_or(0.0);
        measured.figure(format!("{name}_syscalls_per_msg"), total);
        measured.bar(name, total, Some(name));
        measured.notes.push(format!(
            "{name}: {}",
            by_name(&syscalls.per_msg, &syscalls.eagain_per_msg)
        ));
    }
    Ok(measured)
}

// ── Step 15 ─────────────────────────────────────────────────────────────────

pub fn datagram_batches(session: &mut Session) -> anyhow::Result<Measured> {
    let mut measured = Measured::with_chart(
        "System calls per datagram, 100 flows in open loop",
        "system calls per datagram",
    );
    for (label, args) in [("udp", &[][..]), ("udp_batch32", &["--batch", "32"][..])] {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        let server_under_test = ServerUnderTest::model("udp", &args, Some(&label.replace('_', "-")))?;
        let load = crate::load::LoadSpec {
            protocol: crate::protocol::Protocol::Udp,
            ..session.load(Shape::Open, 100, 0, Some(super::steps::BATCH_RATE))
        };
        let cell = session.cell_counting_syscalls(server_under_test, load)?;
        let syscalls = &server(&cell)?.syscalls;
        if let Some(reason) = &syscalls.unavailable {
            return Ok(Measured::skipped(format!(
                "system calls cannot be counted here: {reason}"
            )));
        }
        let total = syscalls.per_msg_total.unwrap_or(0.0);
        measured.figure(format!("{label}_syscalls_per_msg"), total);
        measured.figure(format!("{label}_msgs_per_sec"), cell.msgs_per_sec);
        let bar = if args.is_empty() {
            "udp".to_owned()
        } else {
            format!("udp {}", args.join(" "))
        };
        measured.bar(bar, total, None);
        measured.notes.push(format!(
            "{label}: {}",
            by_name(&syscalls.per_msg, &syscalls.eagain_per_msg)
        ));
    }
    Ok(measured)
}

// ── Step 11 ─────────────────────────────────────────────────────────────────

pub fn reactor_per_core(session: &mut Session) -> anyhow::Result<Measured> {
    let mut missing = Vec::new();
    if session.mask.len() < REACTOR_CPUS_MIN {
        missing.push(format!(
            "needs at least {REACTOR_CPUS_MIN} CPUs (2 for the server, 2 for the load); the affinity mask has {}",
            session.mask.len()
        ));
    }
    if !built("reuseport") {
        missing.push(not_built("reuseport"));
    }
    if !missing.is_empty() {
        return Ok(Measured::skipped(missing.join("; ")));
    }
    let mut measured = Measured::with_chart(
        &format!(
            "Messages per second on {} server CPUs, 200 connections",
            session.cpus.server.len()
        ),
        "messages per second",
    );
    measured.figure("server_cpus", session.cpus.server.len() as f64);
    for name in ["reuseport", "epoll"] {
        let load = session.load(Shape::Closed, 200, 0, None);
        let cell = session.cell(model(name)?, load)?;
        measured.figure(format!("{name}_msgs_per_sec"), cell.msgs_per_sec);
        measured.bar(name, cell.msgs_per_sec, Some(name));
        if name == "reuseport" {
            let bound = cell.flags.contains(&Flag::ClientBound);
            measured.figure("reuseport_client_bound", if bound { 1.0 } else { 0.0 });
        }
    }
    Ok(measured)
}

// ── Steps 12 to 14: the course in Python ────────────────────────────────────

/// The Python server `py-NAME` (`servers/python/NAME_server.py`) as a
/// command, run by `python3` with `args`: from the repository's root when the
/// tour runs there, else from where this harness was built.
fn python(label: &str, args: &[String]) -> anyhow::Result<ServerUnderTest> {
    let name = label.trim_start_matches("py-");
    let relative = format!("servers/python/{name}_server.py");
    let script = if std::path::Path::new(&relative).exists() {
        relative
    } else {
        format!("{}/../{relative}", env!("CARGO_MANIFEST_DIR"))
    };
    let mut argv = vec![
        "python3".to_owned(),
        script,
        "--port".to_owned(),
        "{port}".to_owned(),
    ];
    argv.extend(args.iter().cloned());
    ServerUnderTest::command(argv, Some(label))
}

/// A server's cell, or None (with a note) when this machine cannot run it:
/// no `python3` or not a Python server's package, no io_uring.
fn supported_cell(
    session: &mut Session,
    measured: &mut Measured,
    server: ServerUnderTest,
    load: crate::load::LoadSpec,
) -> anyhow::Result<Option<Cell>> {
    match session.cell(server, load) {
        Ok(cell) => Ok(Some(cell)),
        Err(ref error) if let Some(unsupported) = error.downcast_ref::<Unsupported>() => {
            measured
                .notes
                .push(format!("not measured: {}", unsupported.reason));
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// `py-epoll` → `py_epoll`, for figure names.
fn figure_name(label: &str) -> String {
    label.replace('-', "_")
}

pub fn language_cost(session: &mut Session) -> anyhow::Result<Measured> {
    let mut measured = Measured::with_chart(
        "Server CPU per message, 100 connections in closed loop",
        "server CPU per message (µs)",
    );
    for (python_label, rust) in LANGUAGE_PAIRS {
        let load = session.load(Shape::Closed, 100, 0, None);
        let Some(cell) = supported_cell(session, &mut measured, python(python_label, &[])?, load)? else {
            return Ok(Measured::skipped(measured.notes.join("; ")));
        };
        let cost = server(&cell)?.cpu_us_per_msg;
        measured.figure(format!("{}_cpu_us_per_msg", figure_name(python_label)), cost);
        measured.bar(python_label, cost, None);
        if !built(rust) {
            return Ok(Measured::skipped(not_built(rust)));
        }
        let load = session.load(Shape::Closed, 100, 0, None);
        let cell = session.cell(model(rust)?, load)?;
        let cost = server(&cell)?.cpu_us_per_msg;
        measured.figure(format!("{rust}_cpu_us_per_msg"), cost);
        measured.bar(rust, cost, Some(rust));
    }
    Ok(measured)
}

pub fn waits_overlap(session: &mut Session) -> anyhow::Result<Measured> {
    let labels: &[&str] = if session.quick {
        &["py-single", "py-threaded", "py-asyncio"]
    } else {
        &[
            "py-single",
            "py-threaded",
            "py-coroutine",
            "py-asyncio",
            "py-greenlet",
            "py-gevent",
        ]
    };
    let mut measured = Measured::with_chart(
        &format!("Messages per second, a {WAIT_MICROS} µs wait per message, {WAIT_CONNECTIONS} connections"),
        "messages per second",
    );
    let work = vec!["--work".to_owned(), format!("wait:{WAIT_MICROS}")];
    for label in labels {
        let load = session.load(Shape::Closed, WAIT_CONNECTIONS, 0, None);
        let Some(cell) = supported_cell(session, &mut measured, python(label, &work)?, load)? else {
            if *label == "py-single" || *label == "py-threaded" {
                return Ok(Measured::skipped(measured.notes.join("; ")));
            }
            continue;
        };
        measured.figure(format!("{}_msgs_per_sec", figure_name(label)), cell.msgs_per_sec);
        measured.bar(*label, cell.msgs_per_sec, None);
    }
    Ok(measured)
}

pub fn gil(session: &mut Session) -> anyhow::Result<Measured> {
    compute_bound(session, &["py-threaded", "py-prefork"], |label, work| {
        python(label, work)
    })
}

/// Steps 14 and 17: each of `labels` (made by `make` with `--work
/// cpu:CPU_MICROS`) with about that much CPU per message, 10 connections in
/// closed loop, on the server's half of the mask: its messages per second
/// and CPU. Skipped where the mask cannot give the server 2 CPUs and the
/// load 2, or a server cannot run here.
fn compute_bound(
    session: &mut Session,
    labels: &[&str],
    make: fn(&str, &[String]) -> anyhow::Result<ServerUnderTest>,
) -> anyhow::Result<Measured> {
    if session.mask.len() < REACTOR_CPUS_MIN {
        return Ok(Measured::skipped(format!(
            "needs ≥ {REACTOR_CPUS_MIN} CPUs (2 for the server, 2 for the load); the affinity mask has {}",
            session.mask.len()
        )));
    }
    let mut measured = Measured::with_chart(
        &format!(
            "Messages per second, about {CPU_MICROS} µs of CPU per message, on {} server CPUs",
            session.cpus.server.len()
        ),
        "messages per second",
    );
    measured.figure("server_cpus", session.cpus.server.len() as f64);
    let work = vec!["--work".to_owned(), format!("cpu:{CPU_MICROS}")];
    for label in labels {
        let load = session.load(Shape::Closed, 10, 0, None);
        let Some(cell) = supported_cell(session, &mut measured, make(label, &work)?, load)? else {
            return Ok(Measured::skipped(measured.notes.join("; ")));
        };
        let name = figure_name(label);
        measured.figure(format!("{name}_msgs_per_sec"), cell.msgs_per_sec);
        measured.figure(format!("{name}_cpu_percent"), server(&cell)?.cpu_percent);
        measured.bar(*label, cell.msgs_per_sec, built(label).then_some(*label));
    }
    Ok(measured)
}

// ── Steps 16 to 18: work per request, and keep-alive ───────────────────────

pub fn rust_waits_overlap(session: &mut Session) -> anyhow::Result<Measured> {
    let names: Vec<&str> = if session.quick {
        vec!["single", "pool", "threaded", "epoll", "async"]
    } else {
        ["single", "pool"].into_iter().chain(OVERLAPPING_MODELS).collect()
    };
    let mut measured = Measured::with_chart(
        &format!("Messages per second, a {WAIT_MICROS} µs wait per message, {WAIT_CONNECTIONS} connections"),
        "messages per second",
    );
    let work = ["--work".to_owned(), format!("wait:{WAIT_MICROS}")];
    for name in names.into_iter().filter(|name| built(name)) {
        let load = session.load(Shape::Closed, WAIT_CONNECTIONS, 0, None);
        let server = ServerUnderTest::model(name, &work, None)?;
        let Some(cell) = supported_cell(session, &mut measured, server, load)? else {
            continue;
        };
        measured.figure(format!("{name}_msgs_per_sec"), cell.msgs_per_sec);
        measured.bar(name, cell.msgs_per_sec, Some(name));
    }
    Ok(measured)
}

pub fn cores(session: &mut Session) -> anyhow::Result<Measured> {
    compute_bound(session, &["threaded", "epoll"], |name, work| {
        ServerUnderTest::model(name, work, None)
    })
}

pub fn keep_alive(session: &mut Session) -> anyhow::Result<Measured> {
    let mut measured = Measured::with_chart(
        &format!("Plaintext requests per second, epoll, {KEEP_ALIVE_CONNECTIONS} connections or loops"),
        "requests per second",
    );
    let http = crate::protocol::ProtocolArgs {
        protocol: crate::protocol::Protocol::Http,
        request: Some(crate::protocol::Request::Plaintext),
        pipeline: 1,
        root: None,
        work: None,
    };
    for (figure, bar, shape) in [
        ("keep_alive", "kept alive", Shape::Closed),
        ("connection_per_request", "a connection per request", Shape::Churn),
    ] {
        let mut server = model("epoll")?;
        let load = crate::load::LoadSpec {
            protocol: crate::protocol::Protocol::Http,
            step: http.apply(&mut server)?,
            ..session.load(shape, KEEP_ALIVE_CONNECTIONS, 0, None)
        };
        let cell = session.cell(server, load)?;
        if cell.errors.total() > 0 {
            anyhow::bail!("{bar}: {} responses failed their checks", cell.errors.total());
        }
        measured.figure(format!("{figure}_requests_per_sec"), cell.msgs_per_sec);
        measured.bar(bar, cell.msgs_per_sec, Some("epoll"));
    }
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_keep_four_significant_digits() {
        assert_eq!(significant(1234.5678), 1235.0);
        assert_eq!(significant(0.0123456), 0.01235);
        assert_eq!(significant(96.04), 96.04);
        assert_eq!(significant(0.0), 0.0);
    }

    #[test]
    fn variants_are_labelled_by_their_options() {
        assert_eq!(variant_label("epoll", &["--edge"]), "epoll-edge");
        assert_eq!(
            variant_label("async", &["--runtime", "current-thread"]),
            "async-runtime-current-thread"
        );
        assert_eq!(variant_label("single", &[]), "single");
    }
}
