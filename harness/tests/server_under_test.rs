//! The server under test in its three forms (`--model`, `--server-cmd`,
//! `--target`), the CPU layout, and the harness measuring itself, end to end
//! with the real binary on loopback. Every run is under the watchdog of
//! `support`; every server listens on 127.0.0.1 with a port the harness or
//! the kernel picked.

mod support;

use serde_json::Value;
use std::process::Command;
use support::{Served, bench_json, cell_of, flags, harness, harness_exe, processes_marked, run_watched};

/// The harness's own threads (pacing, sampling, progress, pipes) may cost at
/// most this much of one CPU during a measurement.
const OVERHEAD_LIMIT_PERCENT: f64 = 5.0;

const SHORT: [&str; 6] = ["--connections", "50", "--warmup", "0.3", "--duration", "1.5"];

fn server_cmd() -> String {
    format!("{} serve epoll --addr {{addr}}", harness_exe())
}

/// A process-unique word put in the environment of a harness run, which its
/// servers inherit: any process still carrying it afterwards was left behind.
fn marker(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn harness_marked(marker: &str, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(harness_exe());
    command.args(args).env("ECHOLAB_TEST_MARKER", marker);
    run_watched(command, args)
}

#[test]
fn the_harness_costs_under_five_percent_of_a_cpu_in_every_mode() {
    let served = Served::start("epoll");
    let command = server_cmd();
    let servers: [[&str; 2]; 3] = [
        ["--model", "epoll"],
        ["--target", &served.addr],
        ["--server-cmd", &command],
    ];
    for server in &servers {
        for shape in [
            &["--shape", "closed"][..],
            &["--shape", "open", "--rate", "20000"],
        ] {
            let mut args: Vec<&str> = server.to_vec();
            args.extend_from_slice(shape);
            args.extend_from_slice(&SHORT);
            let cell = bench_json(&args);
            let overhead = cell["client"]["overhead_percent"]
                .as_f64()
                .expect("overhead_percent");
            assert!(
                (0.0..OVERHEAD_LIMIT_PERCENT).contains(&overhead),
                "{args:?}: the harness's own threads used {overhead:.1}% of a CPU: {cell}"
            );
            assert!(cell["messages"].as_u64().unwrap() > 0, "{args:?}: {cell}");
        }
    }
}

#[test]
fn a_one_cpu_mask_is_flagged_shared_cpu_with_one_warning() {
    let mask = echo_core::affinity::allowed_cpus().unwrap();
    let args = [
        "bench",
        "--model",
        "epoll",
        "--json",
        "--connections",
        "10",
        "--warmup",
        "0.2",
        "--duration",
        "0.8",
    ];
    if mask.len() >= 2 {
        let cell = cell_of(&harness(&args), &args);
        assert!(!flags(&cell).contains(&"shared-cpu".to_owned()), "{cell}");
    }
    // This test thread runs on one CPU from now on; the harness inherits it.
    echo_core::affinity::pin_to(&mask[mask.len() - 1..]).unwrap();
    let output = harness(&args);
    let cell = cell_of(&output, &args);
    assert!(flags(&cell).contains(&"shared-cpu".to_owned()), "{cell}");
    assert_eq!(cell["server_cpus"], cell["client"]["cpus"], "{cell}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|line| line.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("shared-cpu"), "{stderr}");
}

#[test]
fn a_server_command_is_spawned_measured_and_stopped_like_a_model() {
    let marker = marker("command");
    let command = server_cmd();
    let mut args = vec!["bench", "--server-cmd", &command, "--label", "mine", "--json"];
    args.extend_from_slice(&SHORT);
    let cell = cell_of(&harness_marked(&marker, &args), &args);
    assert_eq!(cell["label"], "mine");
    assert!(cell["model"].is_null());
    assert_eq!(
        cell["command"][4], "{addr}",
        "the command is recorded as given: {cell}"
    );
    let server = &cell["server"];
    assert!(server["cpu_percent"].as_f64().unwrap() > 5.0, "{cell}");
    assert_eq!(server["exit"], "status 0", "{cell}");
    assert_eq!(server["processes"], 1, "{cell}");
    assert_eq!(server["cpus"], cell["server_cpus"]);
    assert!(cell["messages"].as_u64().unwrap() > 0);
    assert!(processes_marked(&marker).is_empty(), "a server was left behind");

    // A server that prints nothing is ready when its port accepts.
    let quiet = format!(
        "sh -c 'exec {} serve epoll --addr 127.0.0.1:{{port}} >/dev/null'",
        harness_exe()
    );
    let mut args = vec!["bench", "--server-cmd", &quiet, "--json"];
    args.extend_from_slice(&SHORT);
    let cell = cell_of(&harness_marked(&marker, &args), &args);
    assert_eq!(cell["label"], "sh");
    assert!(cell["messages"].as_u64().unwrap() > 0, "{cell}");
    assert!(processes_marked(&marker).is_empty(), "a server was left behind");
}

/// A shell that starts the real server as its child and waits: the work is
/// all in the child. Sampling only the process the harness started would
/// show an idle shell.
#[test]
fn a_forking_server_is_measured_as_its_whole_process_tree() {
    let marker = marker("tree");
    let forking = format!(
        "sh -c '{} serve epoll --addr 127.0.0.1:{{port}} & wait'",
        harness_exe()
    );
    let mut args = vec!["bench", "--server-cmd", &forking, "--json"];
    args.extend_from_slice(&SHORT);
    let cell = cell_of(&harness_marked(&marker, &args), &args);
    let server = &cell["server"];
    assert!(server["processes"].as_u64().unwrap() >= 2, "{cell}");
    assert!(
        server["cpu_percent"].as_f64().unwrap() > 20.0,
        "the child's CPU is missing: {cell}"
    );
    assert!(server["threads"].as_u64().unwrap() >= 3, "{cell}");
    assert!(server["rss_peak_kib"].as_u64().unwrap() > 1000, "{cell}");
    assert!(processes_marked(&marker).is_empty(), "a server was left behind");
}

#[test]
fn bad_server_commands_are_one_line_and_leave_nothing_behind() {
    let marker = marker("bad");
    // The shell ignores SIGTERM and outlives its server by 30 s.
    let ignores_term = format!(
        "sh -c 'trap \"\" TERM; {} serve epoll --addr 127.0.0.1:{{port}}; sleep 30'",
        harness_exe()
    );
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "/nonexistent/server {port}",
            &[],
            "cannot start command '/nonexistent/server {port}'",
        ),
        (
            "sh -c 'echo no config file >&2; exit 3'",
            &[],
            "exited with status 3 before it was ready; its stderr ends with: no config file",
        ),
        ("sleep 30", &["--ready-timeout", "1"], "was not ready within 1 s"),
        (&ignores_term, &[], "did not exit within 5 s of SIGTERM (killed)"),
    ];
    for (command, extra, expected) in cases {
        let mut args = vec![
            "bench",
            "--server-cmd",
            command,
            "--warmup",
            "0.2",
            "--duration",
            "0.5",
        ];
        args.extend_from_slice(extra);
        let output = harness_marked(&marker, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{command}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{command}: {stderr}");
        assert!(
            stderr.starts_with("harness: ") && stderr.contains(expected),
            "{command}: expected '{expected}' in: {stderr}"
        );
        assert!(
            processes_marked(&marker).is_empty(),
            "{command} left a process behind"
        );
    }
}

#[test]
fn bad_cpu_layouts_are_one_line_each() {
    for (layout, expected) in [
        (&["--server-cpus", ""][..], "empty"),
        (&["--server-cpus", "0", "--client-cpus", "0"], "overlap on CPU 0"),
        (&["--client-cpus", "1000"], "not in the harness's affinity mask"),
        (&["--server-cpus", "2-1"], "runs backwards"),
    ] {
        let mut args = vec!["bench", "--model", "epoll"];
        args.extend_from_slice(layout);
        let output = harness(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{layout:?}");
        assert_eq!(stderr.lines().count(), 1, "{layout:?}: {stderr}");
        assert!(stderr.contains(expected), "{layout:?}: {stderr}");
    }
}

/// A suite with a command of its own, run together with a built-in model;
/// a command that cannot start is a failed cell, and the run goes on.
#[test]
fn run_mixes_models_and_suite_commands_and_survives_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let suite = support::write_suite(
        dir.path(),
        "mine",
        &format!(
            r#"{{ label = "mine", command = ["{exe}", "serve", "epoll", "--addr", "{{addr}}"] }},
               {{ label = "broken", command = ["sh", "-c", "exit 7"] }}"#,
            exe = harness_exe()
        ),
    );
    let out = dir.path().join("set");
    let args = [
        "run",
        "--suite",
        suite.to_str().unwrap(),
        "--models",
        "mine,epoll,broken",
        "--out",
        out.to_str().unwrap(),
    ];
    let output = harness(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a failed cell must fail the run: {stderr}"
    );
    assert!(stderr.contains("broken / closed-c10-s64: FAILED"), "{stderr}");
    let cell = |label: &str| -> Value {
        let path = out.join("cells").join(format!("{label}--closed-c10-s64.json"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path:?}: {stderr}")))
            .unwrap()
    };
    assert!(cell("mine")["messages"].as_u64().unwrap() > 0);
    assert_eq!(cell("epoll")["model"], "epoll");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["failures"][0]["label"], "broken");
    assert_eq!(
        manifest["parameters"]["models"],
        serde_json::json!(["mine", "epoll", "broken"])
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("mine") && report.contains("epoll"));
}

/// A model this machine cannot run (here: io_uring refused by a seccomp
/// filter the harness and its servers run under, as in a container) is
/// recorded as unsupported: the run goes on, does not fail, and says why.
#[test]
fn an_unsupported_model_is_recorded_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    let suite = support::write_suite(dir.path(), "tiny", r#""epoll", "uring""#);
    let out = dir.path().join("set");
    let args = [
        "run",
        "--suite",
        suite.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let mut command = Command::new(harness_exe());
    command.args(args);
    echo_conformance::seccomp::refuse(&mut command, &[libc::SYS_io_uring_setup], libc::EPERM);
    let output = run_watched(command, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "an unsupported model must not fail the run: {stderr}"
    );
    assert!(
        stderr.contains("uring: model 'uring' cannot run on this machine"),
        "{stderr}"
    );
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["unsupported"][0]["label"], "uring", "{manifest}");
    assert!(manifest["failures"].as_array().unwrap().is_empty(), "{manifest}");
    assert!(out.join("cells/epoll--closed-c10-s64.json").exists());
    assert!(!out.join("cells/uring--closed-c10-s64.json").exists());
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("Not run on this machine") && report.contains("seccomp"),
        "{report}"
    );

    let args = ["bench", "--model", "uring", "--duration", "0.5"];
    let mut command = Command::new(harness_exe());
    command.args(args);
    echo_conformance::seccomp::refuse(&mut command, &[libc::SYS_io_uring_setup], libc::EPERM);
    let output = run_watched(command, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// A process per client at 300 clients: each child's own CPU time is a few
/// milliseconds, which /proc rounds down to whole clock ticks per process;
/// the server's cgroup counts the tree's time exactly.
#[test]
fn many_light_processes_are_counted_in_full() {
    let marker = marker("light");
    let args = [
        "bench",
        "--model",
        "process",
        "--connections",
        "300",
        "--warmup",
        "0.5",
        "--duration",
        "2",
        "--json",
    ];
    let cell = cell_of(&harness_marked(&marker, &args), &args);
    let server = &cell["server"];
    assert!(server["processes"].as_u64().unwrap() > 200, "{cell}");
    assert!(
        server["cpu_us_per_msg"].as_f64().unwrap() > 1.0,
        "the children's CPU is missing: {cell}"
    );
    assert!(processes_marked(&marker).is_empty(), "a server was left behind");
}

/// The course suite's Python servers on a machine without `python3`, or
/// without a server's package: their cells are unsupported, each with its one
/// line, and the run goes on (the Rust models beside them) and succeeds.
#[test]
fn python_servers_without_python_or_their_package_are_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../servers/python/epoll_server.py");
    let suite = support::write_suite(
        dir.path(),
        "course",
        &format!(
            r#""epoll", {{ label = "py-epoll", command = ["python3", "{script}", "--port", "{{port}}"] }},
               {{ label = "py-gevent", command = ["/bin/sh", "-c", "echo 'py-gevent: unsupported on this machine: the Python package gevent is missing; install it with: pip install gevent' >&2; exit 3"] }}"#
        ),
    );
    let out = dir.path().join("set");
    let args = [
        "run",
        "--suite",
        suite.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let empty = tempfile::tempdir().unwrap();
    let mut command = Command::new(harness_exe());
    command.args(args).env("PATH", empty.path());
    let output = run_watched(command, &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "unsupported cells must not fail the run: {stderr}"
    );
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let reason = |label: &str| -> String {
        manifest["unsupported"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["label"] == label)
            .unwrap_or_else(|| panic!("{label} not unsupported: {manifest}"))["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        reason("py-epoll").contains("'python3' is not installed"),
        "{manifest}"
    );
    assert!(reason("py-gevent").contains("pip install gevent"), "{manifest}");
    assert!(manifest["failures"].as_array().unwrap().is_empty(), "{manifest}");
    assert!(out.join("cells/epoll--closed-c10-s64.json").exists());
}
