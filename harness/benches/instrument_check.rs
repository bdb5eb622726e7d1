//! The instrument check: is the harness ever the limit of what it measures?
//!
//! Runs the plainest possible load generator (`examples/pingpong.rs`: one
//! thread, one epoll set, no verification, no histograms) and `harness bench`
//! against the same `epoll` server, in interleaved pairs (the order within a
//! pair alternates), server on the first CPU of the mask and load on the last,
//! and prints the medians and their ratio, harness / plain, for `--model`
//! (the harness spawns the server), `--server-cmd` (it spawns a command) and
//! `--target` (a server started separately), at 100 and 1,000 connections.
//! The aim is a ratio of at least 0.95 everywhere; the harness's own overhead
//! (`client.overhead_percent`) is printed beside it. These three run without
//! the system-call counters; mode `counted` runs `--model` with them (the
//! default: counted in a phase after the timed window).
//!
//! Mode `counting` proves that counting leaves the timed window alone: per
//! model (`epoll`, `uring`, `threaded`) and connection count, the default
//! cell against the same cell with `--no-syscalls`, interleaved (the order
//! alternating), medians of the pairs, and the `uring`/`epoll` ratio with
//! and without counting. The goal: no default cell measurably slower than
//! its uncounted twin, that is no row whose median ratio is below
//! [`COUNTING_GOAL`] *and* whose Mann–Whitney p is below [`ALPHA`]. A bare
//! threshold on medians of a few pairs would judge the VM's noise: the
//! control mode below shows how far two identical settings drift.
//!
//! ```text
//! cargo bench -p harness --bench instrument_check               # 5 pairs, 3 s each
//! cargo bench -p harness --bench instrument_check -- --pairs 7 --duration 5 --connections 100
//! cargo bench -p harness --bench instrument_check -- --modes counting
//! cargo bench -p harness --bench instrument_check -- --modes counting,control --models epoll --pairs 10
//! ```
//!
//! Mode `http` (not run by default: it needs nginx and wrk) is the HTTP
//! row: `wrk -t1 -c100` and `harness bench --target --protocol http` (every
//! response parsed and checked; wrk checks none) against the same nginx,
//! one worker, from `examples/nginx.conf`, on the server CPU, `GET
//! /plaintext`, interleaved pairs; the goal is the same [`GOAL`] of wrk's
//! rate, and the harness's cell must have no error.
//!
//! ```text
//! cargo bench -p harness --bench instrument_check -- --modes http --connections 100
//! ```
//!
//! Mode `control` is the counting rows' A/A test: `--no-syscalls` against
//! `--no-syscalls` in the same interleaved design, so that a counting row's
//! ratio can be read against what the design gives when nothing differs.
//! Each row also prints the Mann–Whitney p of its two sets of runs and the
//! Hodges–Lehmann ratio with its 95% interval (`src/stats.rs`).

#[allow(dead_code)]
#[path = "../examples/pingpong.rs"]
mod pingpong;
#[allow(dead_code, unused_imports)]
#[path = "../src/stats.rs"]
mod stats;

use stats::median;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The ratio below which the harness counts as the limit of a measurement.
const GOAL: f64 = 0.95;
const WARMUP_S: f64 = 1.0;
/// Counting's cost on the timed window: a default cell at least this
/// fraction of the same cell measured with `--no-syscalls`, unless the two
/// sets of runs cannot be told apart at [`ALPHA`].
const COUNTING_GOAL: f64 = 0.98;
/// The significance level of the counting rows' rank test.
const ALPHA: f64 = 0.05;
/// The `uring`/`epoll` ratio's move that the counting rows print beside
/// the control's; printed, not judged (it is a ratio of four medians, with
/// no test behind it).
const RATIO_GOAL: f64 = 0.03;
/// The models of the counting rows: the fewest calls per message, the
/// most-measured model, and one thread per client.
const COUNTING_MODELS: [&str; 3] = ["epoll", "uring", "threaded"];

struct Options {
    pairs: usize,
    duration_s: f64,
    connections: Vec<usize>,
    modes: Vec<String>,
    models: Vec<String>,
}

fn options() -> Options {
    let mut options = Options {
        pairs: 5,
        duration_s: 3.0,
        connections: vec![100, 1000],
        modes: vec![
            "model".into(),
            "command".into(),
            "target".into(),
            "counted".into(),
            "counting".into(),
        ],
        models: COUNTING_MODELS.iter().map(|&model| model.to_owned()).collect(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--pairs" => options.pairs = value().parse().expect("--pairs N"),
            "--duration" => options.duration_s = value().parse().expect("--duration SECS"),
            "--connections" => {
                options.connections = value()
                    .split(',')
                    .map(|count| count.parse().expect("--connections N,N"))
                    .collect()
            }
            "--modes" => options.modes = value().split(',').map(str::to_owned).collect(),
            "--models" => options.models = value().split(',').map(str::to_owned).collect(),
            "--bench" => {} // added by cargo bench
            other => panic!(
                "unknown option {other}; options: --pairs N --duration SECS --connections N,N --modes model,command,target,counted,counting,control,http --models epoll,uring,threaded"
            ),
        }
    }
    options
}

/// `harness serve epoll` pinned to `cpu`, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(cpu: usize) -> Server {
        // Spawned from a thread pinned to `cpu`: the child inherits its mask.
        let mut child = std::thread::spawn(move || {
            echo_core::affinity::pin_to(&[cpu]).expect("pin");
            Command::new(env!("CARGO_BIN_EXE_harness"))
                .args(["serve", "epoll", "--addr", "127.0.0.1:0"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("the harness runs")
        })
        .join()
        .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("ready line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .expect("ready line")
            .to_owned();
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The plain client, on a thread of its own pinned to `cpu`.
fn plain(addr: &str, connections: usize, duration_s: f64, cpu: usize) -> f64 {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                echo_core::affinity::pin_to(&[cpu]).expect("pin");
                pingpong::measure(addr, connections, 64, WARMUP_S, duration_s).expect("the plain client runs")
            })
            .join()
            .unwrap()
    })
}

/// `harness bench` with `server` arguments; (msgs/s, overhead %).
fn harness(server: &[&str], connections: usize, duration_s: f64, cpus: (usize, usize)) -> (f64, f64) {
    let cell = harness_cell(server, connections, duration_s, cpus);
    (
        cell["msgs_per_sec"].as_f64().unwrap(),
        cell["client"]["overhead_percent"].as_f64().unwrap(),
    )
}

/// `harness bench` with `server` arguments: its cell.
fn harness_cell(
    server: &[&str],
    connections: usize,
    duration_s: f64,
    cpus: (usize, usize),
) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("bench")
        .args(server)
        .args([
            "--server-cpus",
            &cpus.0.to_string(),
            "--client-cpus",
            &cpus.1.to_string(),
        ])
        .args(["--connections", &connections.to_string()])
        .args([
            "--warmup",
            &WARMUP_S.to_string(),
            "--duration",
            &duration_s.to_string(),
        ])
        .arg("--json")
        .output()
        .expect("the harness runs");
    assert!(
        output.status.success(),
        "harness bench {server:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cell JSON")
}

/// nginx with one worker from `examples/nginx.conf`, pinned to `cpu`,
/// serving an empty root; stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(cpu: usize) -> Nginx {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let template = include_str!("../examples/nginx.conf");
        let config = template
            .replace("{port}", &port.to_string())
            .replace("{root}", &dir.path().display().to_string())
            .replace("{dir}", &dir.path().display().to_string());
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, config).expect("nginx.conf written");
        let child = std::thread::spawn(move || {
            echo_core::affinity::pin_to(&[cpu]).expect("pin");
            Command::new("nginx")
                .args(["-e", "stderr", "-c"])
                .arg(&path)
                .args(["-g", "daemon off; worker_processes 1;"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nginx runs (apt-get install nginx)")
        })
        .join()
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nginx did not listen on port {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Nginx {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: nginx's master stops its workers and exits.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// `wrk -t1 -cN` for `duration_s` against `GET /plaintext`, pinned to
/// `cpu`; its requests per second.
fn wrk(port: u16, connections: usize, duration_s: f64, cpu: usize) -> f64 {
    let output = std::thread::spawn(move || {
        echo_core::affinity::pin_to(&[cpu]).expect("pin");
        Command::new("wrk")
            .args(["-t1", &format!("-c{connections}")])
            .arg(format!("-d{}s", duration_s.ceil() as u64))
            .arg(format!("http://127.0.0.1:{port}/plaintext"))
            .output()
            .expect("wrk runs (apt-get install wrk)")
    })
    .join()
    .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|rate| rate.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output: {text}"))
}

/// The HTTP row at each connection count: wrk against the harness on the
/// same nginx, interleaved. True when the goal is met.
fn http_rows(options: &Options, cpus: (usize, usize)) -> bool {
    let mut met = true;
    for &connections in &options.connections {
        let (mut wrks, mut harnesses, mut overheads) = (Vec::new(), Vec::new(), Vec::new());
        for pair in 0..options.pairs {
            let run_wrk = || {
                let nginx = Nginx::start(cpus.0);
                wrk(nginx.port, connections, options.duration_s, cpus.1)
            };
            let run_harness = || {
                let nginx = Nginx::start(cpus.0);
                let target = format!("127.0.0.1:{}", nginx.port);
                let cell = harness_cell(
                    &[
                        "--target",
                        &target,
                        "--protocol",
                        "http",
                        "--request",
                        "plaintext",
                    ],
                    connections,
                    options.duration_s,
                    cpus,
                );
                // A rate with errors in it is not a rate of verified answers.
                let errors = &cell["errors"];
                let failed =
                    errors.as_object().into_iter().flatten().any(|(kind, count)| {
                        !kind.ends_with("_warnings") && kind != "lost_bytes" && count != 0
                    });
                assert!(!failed, "the harness counted errors against nginx: {errors}");
                (
                    cell["msgs_per_sec"].as_f64().unwrap(),
                    cell["client"]["overhead_percent"].as_f64().unwrap(),
                )
            };
            let (wrk_rate, (harness_rate, overhead)) = if pair % 2 == 0 {
                let wrk_rate = run_wrk();
                (wrk_rate, run_harness())
            } else {
                let measured = run_harness();
                (run_wrk(), measured)
            };
            wrks.push(wrk_rate);
            harnesses.push(harness_rate);
            overheads.push(overhead);
        }
        let ratio = median(&harnesses) / median(&wrks);
        met &= ratio >= GOAL;
        let runs: Vec<String> = wrks
            .iter()
            .zip(&harnesses)
            .map(|(wrk, harness)| format!("{:.0}k/{:.0}k", wrk / 1e3, harness / 1e3))
            .collect();
        println!(
            "{:<7} {:>11} {:>13.0} {:>13.0} {:>7.3} {:>9.1}%  {}  (wrk / harness, requests/s)",
            "http",
            connections,
            median(&wrks),
            median(&harnesses),
            ratio,
            median(&overheads),
            runs.join(" ")
        );
    }
    met
}

/// The counting rows: each model's default cell against `--no-syscalls`,
/// and the `uring`/`epoll` ratio both ways. True when every goal is met.
/// With `control`, both sides are `--no-syscalls` (the A/A test): the
/// ratios it prints are what the design gives when nothing differs, and no
/// goal is judged.
fn counting_rows(options: &Options, cpus: (usize, usize), control: bool) -> bool {
    let (label, first) = if control {
        ("control", "uncounted")
    } else {
        ("counting", "default")
    };
    println!(
        "{:<9} {:>11} {:>13} {:>13} {:>7} {:>7} {:>19}  runs ({first} / --no-syscalls, msgs/s)",
        label, "connections", first, "uncounted", "ratio", "p", "HL ratio [95% CI]"
    );
    let mut met = true;
    for &connections in &options.connections {
        // rates[model][0] default (or uncounted, for the control), [1] --no-syscalls.
        let mut rates = vec![[Vec::new(), Vec::new()]; options.models.len()];
        for pair in 0..options.pairs {
            for (index, model) in options.models.iter().enumerate() {
                let uncounted = ["--model", model, "--no-syscalls"];
                let default: &[&str] = if control { &uncounted } else { &["--model", model] };
                let order: [(&[&str], usize); 2] = if pair % 2 == 0 {
                    [(default, 0), (&uncounted, 1)]
                } else {
                    [(&uncounted, 1), (default, 0)]
                };
                for (server, slot) in order {
                    let (rate, _) = harness(server, connections, options.duration_s, cpus);
                    rates[index][slot].push(rate);
                }
            }
        }
        let medians: Vec<(f64, f64)> = rates
            .iter()
            .map(|[default, uncounted]| (median(default), median(uncounted)))
            .collect();
        for (index, model) in options.models.iter().enumerate() {
            let (default, uncounted) = medians[index];
            let ratio = default / uncounted;
            let [first_runs, uncounted_runs] = &rates[index];
            let test = stats::mann_whitney(first_runs, uncounted_runs);
            let slower = test.is_some_and(|test| test.p_value < ALPHA) && ratio < COUNTING_GOAL;
            met &= !slower;
            let p = test.map_or(String::from("-"), |test| format!("{:.3}", test.p_value));
            let interval = stats::ratio_ci(uncounted_runs, first_runs).map_or(String::from("-"), |ci| {
                format!("{:.3} [{:.3}, {:.3}]", ci.estimate, ci.low, ci.high)
            });
            let runs: Vec<String> = first_runs
                .iter()
                .zip(uncounted_runs)
                .map(|(default, uncounted)| format!("{:.0}k/{:.0}k", default / 1e3, uncounted / 1e3))
                .collect();
            println!(
                "{:<9} {:>11} {:>13.0} {:>13.0} {:>7.3} {:>7} {:>19}  {}",
                model,
                connections,
                default,
                uncounted,
                ratio,
                p,
                interval,
                runs.join(" ")
            );
        }
        let epoll = options.models.iter().position(|model| model == "epoll");
        let uring = options.models.iter().position(|model| model == "uring");
        if let (Some(epoll), Some(uring)) = (epoll, uring) {
            let (epoll, uring) = (medians[epoll], medians[uring]);
            let (counted, uncounted) = (uring.0 / epoll.0, uring.1 / epoll.1);
            let moved = (counted / uncounted - 1.0).abs();
            println!(
                "{:<9} {:>11} {:>13.3} {:>13.3} {:>7.3}  uring/epoll with counting, without, and how far apart (aim ≤ {RATIO_GOAL}; read it against the control's)",
                "ratio", connections, counted, uncounted, moved
            );
        }
    }
    control || met
}

fn main() {
    let options = options();
    let mask = echo_core::affinity::allowed_cpus().expect("affinity");
    if mask.len() < 2 {
        println!("instrument check skipped: it needs 2 CPUs (one for the server, one for the load)");
        return;
    }
    let cpus = (mask[0], mask[mask.len() - 1]);
    println!(
        "instrument check: epoll server on CPU {}, load on CPU {}, {} interleaved pairs of {} s (+{} s warm-up), 64-byte ping-pong",
        cpus.0, cpus.1, options.pairs, options.duration_s, WARMUP_S
    );
    println!(
        "{:<7} {:>11} {:>13} {:>13} {:>7} {:>10}  runs (plain / harness, msgs/s)",
        "mode", "connections", "plain", "harness", "ratio", "overhead"
    );
    let (mut below_goal, mut counting_missed) = (false, false);
    for mode in &options.modes {
        if mode == "counting" || mode == "control" {
            counting_missed |= !counting_rows(&options, cpus, mode == "control");
            continue;
        }
        if mode == "http" {
            below_goal |= !http_rows(&options, cpus);
            continue;
        }
        for &connections in &options.connections {
            let (mut plains, mut harnesses, mut overheads) = (Vec::new(), Vec::new(), Vec::new());
            for pair in 0..options.pairs {
                let run_plain = || {
                    let server = Server::start(cpus.0);
                    plain(&server.addr, connections, options.duration_s, cpus.1)
                };
                let target = (mode == "target").then(|| Server::start(cpus.0));
                let command = format!("{} serve epoll --addr {{addr}}", env!("CARGO_BIN_EXE_harness"));
                let server: Vec<&str> = match (mode.as_str(), &target) {
                    ("target", Some(server)) => vec!["--target", &server.addr],
                    ("command", _) => vec!["--server-cmd", &command, "--no-syscalls"],
                    ("counted", _) => vec!["--model", "epoll"],
                    _ => vec!["--model", "epoll", "--no-syscalls"],
                };
                let run_harness = || harness(&server, connections, options.duration_s, cpus);
                let (plain_rate, (harness_rate, overhead)) = if pair % 2 == 0 {
                    let plain_rate = run_plain();
                    (plain_rate, run_harness())
                } else {
                    let measured = run_harness();
                    (run_plain(), measured)
                };
                plains.push(plain_rate);
                harnesses.push(harness_rate);
                overheads.push(overhead);
            }
            let ratio = median(&harnesses) / median(&plains);
            // The counters' cost is reported, not held to the goal.
            below_goal |= ratio < GOAL && mode != "counted";
            let runs: Vec<String> = plains
                .iter()
                .zip(&harnesses)
                .map(|(plain, harness)| format!("{:.0}k/{:.0}k", plain / 1e3, harness / 1e3))
                .collect();
            println!(
                "{:<7} {:>11} {:>13.0} {:>13.0} {:>7.3} {:>9.1}%  {}",
                mode,
                connections,
                median(&plains),
                median(&harnesses),
                ratio,
                median(&overheads),
                runs.join(" ")
            );
        }
    }
    if options
        .modes
        .iter()
        .any(|mode| mode != "counting" && mode != "control")
    {
        // The http row's reference is wrk, the others' the plain client.
        println!(
            "{}",
            if below_goal {
                format!(
                    "BELOW GOAL: the harness reached less than {GOAL} of the plain client (http: of wrk) somewhere"
                )
            } else {
                format!(
                    "goal met: the harness reached at least {GOAL} of the plain client (http: of wrk) everywhere"
                )
            }
        );
    }
    if options.modes.iter().any(|mode| mode == "counting") {
        println!(
            "{}",
            if counting_missed {
                format!(
                    "COUNTING GOAL MISSED: a default cell fell below {COUNTING_GOAL} of --no-syscalls with p < {ALPHA}"
                )
            } else {
                format!(
                    "counting goal met: no default cell below {COUNTING_GOAL} of --no-syscalls with p < {ALPHA}"
                )
            }
        );
    }
}
