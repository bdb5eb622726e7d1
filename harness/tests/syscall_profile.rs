//! Every model's doc is checked against the kernel (the TCP models, and
//! `udp` over `--protocol udp`): each model crate states
//! its "System calls" section as numbers (`SYSCALLS`, next to the prose), and
//! this test serves every variant under `echo_core::syscalls::PROFILE_LOAD`
//! with the harness, reads the system calls per message the kernel's
//! tracepoints counted, and fails on any contradiction.
//!
//! The counters need root (or CAP_PERFMON, or perf_event_paranoid ≤ 1) and
//! tracefs. Without them the test says it is skipped and why; as root (CI
//! runs as root) or under CI=true it fails instead, so it never passes
//! without measuring.

mod support;

use echo_core::syscalls::PROFILE_LOAD;
use serde_json::Value;
use support::bench_json;

/// Every model with its profiles: the harness's own table, which
/// `harness tour` checks too.
#[path = "../src/profiles.rs"]
#[allow(dead_code)]
mod profiles;

use profiles::MODEL_PROFILES as MODELS;

/// The calls per message a cell measured for `names` (summed), counting only
/// those that failed with EAGAIN if `eagain`.
fn measured(cell: &Value, names: &[&str], eagain: bool) -> f64 {
    let map = if eagain {
        &cell["server"]["syscalls_eagain_per_msg"]
    } else {
        &cell["server"]["syscalls_per_msg"]
    };
    names.iter().filter_map(|name| map[*name].as_f64()).sum()
}

#[test]
fn every_model_makes_the_system_calls_its_doc_says() {
    let names: Vec<&str> = MODELS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        echo_core::MODELS,
        "every model needs its SYSCALLS profile here"
    );
    let rate = PROFILE_LOAD.messages_per_second.to_string();
    let connections = PROFILE_LOAD.connections.to_string();
    let size = PROFILE_LOAD.size.to_string();
    let mut contradictions = Vec::new();
    // The TCP models, then the datagram model over UDP.
    let udp: (&str, &[echo_core::syscalls::Profile], &[&str]) =
        ("udp", server_udp::SYSCALLS, &["--protocol", "udp"]);
    let every = MODELS
        .iter()
        .map(|&(model, profiles)| (model, profiles, &[][..]))
        .chain([udp]);
    for (model, profiles, protocol) in every {
        assert!(!profiles.is_empty(), "{model} states no profile");
        for profile in profiles {
            let mut args = vec![
                "--model",
                model,
                "--shape",
                "open",
                "--rate",
                &rate,
                "--connections",
                &connections,
                "--size",
                &size,
                "--warmup",
                "0.5",
                "--duration",
                "1.5",
            ];
            let model_args: Vec<String> = profile
                .args
                .iter()
                .map(|arg| format!("--model-arg={arg}"))
                .collect();
            args.extend(model_args.iter().map(String::as_str));
            args.extend(protocol);
            let cell = bench_json(&args);
            let server = &cell["server"];
            if let Some(reason) = server["syscalls_unavailable"].as_str() {
                let must_run =
                    nix::unistd::geteuid().is_root() || std::env::var("CI").is_ok_and(|ci| ci == "true");
                assert!(
                    !must_run,
                    "system calls could not be counted although this runs as root or in CI: {reason}"
                );
                println!("SKIPPED: the system-call profiles were not checked: {reason}");
                return;
            }
            for expect in profile.per_message {
                let value = measured(&cell, expect.syscalls, expect.failed_with_eagain);
                if !expect.per_message.contains(&value) {
                    contradictions.push(format!(
                        "{model} {:?}: {}{} per message is {value:.3}, the doc says {:?} (measured: {} ; EAGAIN: {})",
                        profile.args,
                        expect.syscalls.join("|"),
                        if expect.failed_with_eagain { " failing with EAGAIN" } else { "" },
                        expect.per_message,
                        server["syscalls_per_msg"],
                        server["syscalls_eagain_per_msg"],
                    ));
                }
            }
        }
    }
    assert!(contradictions.is_empty(), "{}", contradictions.join("\n"));
}

/// How long the harness process `pid` holds perf events open, watched from
/// outside every 10 ms until it exits: (total time seen open, number of
/// separate stretches).
fn watch_perf_events(pid: u32) -> (std::time::Duration, u32) {
    use std::time::{Duration, Instant};
    let step = Duration::from_millis(10);
    let (mut open_for, mut stretches, mut was_open) = (Duration::ZERO, 0, false);
    let deadline = Instant::now() + support::WATCHDOG;
    while std::path::Path::new(&format!("/proc/{pid}/stat")).exists() && Instant::now() < deadline {
        let open = std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|target| target.as_os_str() == "anon_inode:[perf_event]")
            })
        });
        if open {
            open_for += step;
            stretches += u32::from(!was_open);
        }
        was_open = open;
        std::thread::sleep(step);
    }
    (open_for, stretches)
}

#[test]
fn no_counter_is_attached_while_the_window_is_timed() {
    // 0.5 s of warm-up and 2 s measured, then the counting phase (0.1 s to
    // open the counters, 0.3 s counting) and closing them: counters open
    // during the window would be seen for at least 2.5 s.
    let args = [
        "bench",
        "--model",
        "epoll",
        "--connections",
        "10",
        "--warmup",
        "0.5",
        "--duration",
        "2",
        "--json",
    ];
    let mut command = std::process::Command::new(support::harness_exe());
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("harness starts");
    let pid = child.id();
    let watcher = std::thread::spawn(move || watch_perf_events(pid));
    let output = support::wait_with_watchdog(child, &args);
    let (open_for, stretches) = watcher.join().unwrap();
    let cell = support::cell_of(&output, &args);
    let server = &cell["server"];
    if let Some(reason) = server["syscalls_unavailable"].as_str() {
        let must_run = nix::unistd::geteuid().is_root() || std::env::var("CI").is_ok_and(|ci| ci == "true");
        assert!(
            !must_run,
            "system calls could not be counted as root or in CI: {reason}"
        );
        println!("SKIPPED: the counters could not be opened: {reason}");
        return;
    }
    assert!(
        server["syscalls_per_msg_total"]
            .as_f64()
            .is_some_and(|total| total > 1.0),
        "no system calls were counted: {server}"
    );
    assert!(
        open_for > std::time::Duration::ZERO && open_for < std::time::Duration::from_millis(1500),
        "the harness held perf events open for {open_for:?} in {stretches} stretches: they must be open only in the counting phase after the 2 s window"
    );
    assert_eq!(stretches, 1, "perf events were opened more than once");
    assert_eq!(
        server["syscalls_during_window"].as_str(),
        Some("no perf event open in the harness"),
        "{server}"
    );
    assert!(
        server["syscalls_method"]
            .as_str()
            .is_some_and(|method| method.contains("counting phase after the window")),
        "{server}"
    );
}
