//! `harness faults` end to end, on loopback, with servers of the test's own:
//! `faulty-echo` (harness/src/bin/faulty-echo.rs) is a thread-per-client
//! echo server with switchable bugs. The matrix must fail each broken server
//! in the cell that exposes its bug, and not fail the correct one; bad input
//! is one line; an interrupted run leaves no stopped server behind; the
//! report shows the matrix and is the same every time it is regenerated.
//!
//! The runs here are small (a few servers, a few faults, `--quick` where the
//! bug shows within it) and run one at a time: this file's tests share two
//! CPUs with nothing else of theirs.

mod support;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::{harness, harness_exe, processes_marked, run_watched, write_suite};

/// One `harness faults` run at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A suite file listing `faulty-echo` with each of `variants` (label, bug
/// option); `faults` takes only its servers.
fn faulty_suite(dir: &Path, variants: &[(&str, Option<&str>)]) -> String {
    let exe = env!("CARGO_BIN_EXE_faulty-echo");
    let entries: Vec<String> = variants
        .iter()
        .map(|(label, bug)| {
            let bug = bug.map(|bug| format!(", \"{bug}\"")).unwrap_or_default();
            format!("{{ label = \"{label}\", command = [\"{exe}\", \"--port\", \"{{port}}\"{bug}] }}")
        })
        .collect();
    let path = write_suite(dir, "faulty", &entries.join(", "));
    path.to_str().unwrap().to_owned()
}

fn rows(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("faults.json")).expect("faults.json");
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn row<'a>(rows: &'a [Value], label: &str, fault: &str) -> &'a Value {
    rows.iter()
        .find(|row| row["label"] == label && row["fault"] == fault)
        .unwrap_or_else(|| panic!("no row for {label} / {fault} in {rows:#?}"))
}

fn outcome(row: &Value) -> (&str, &str) {
    (
        row["outcome"].as_str().unwrap(),
        row["deciding"].as_str().unwrap(),
    )
}

fn faults(args: &[&str]) -> std::process::Output {
    let mut all = vec!["faults"];
    all.extend_from_slice(args);
    let output = harness(&all);
    assert!(
        output.status.success(),
        "harness {all:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn a_server_that_leaks_or_spins_fails_where_it_does_and_a_correct_one_does_not() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let suite = faulty_suite(
        dir.path(),
        &[
            ("correct", None),
            ("leaky", Some("--leak-on-reset")),
            ("spinning", Some("--spin-on-emfile")),
        ],
    );
    let out = dir.path().join("set");
    let output = faults(&[
        "--suite",
        &suite,
        "--models",
        "correct,leaky,spinning",
        "--faults",
        "reset-storm,fd-exhaustion",
        "--quick",
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = rows(&out);
    assert_eq!(rows.len(), 6, "{rows:#?}");

    // The leaky server keeps every reset connection's descriptor.
    let leaky = row(&rows, "leaky", "reset-storm");
    assert_eq!(outcome(leaky).0, "failed", "{leaky:#}");
    assert!(outcome(leaky).1.starts_with("leaked "), "{leaky:#}");
    assert!(leaky["fds_leaked"].as_i64().unwrap() >= 300, "{leaky:#}");
    // The spinning server retries accept at once while out of descriptors.
    let spinning = row(&rows, "spinning", "fd-exhaustion");
    assert_eq!(outcome(spinning).0, "failed", "{spinning:#}");
    assert!(outcome(spinning).1.starts_with("spun "), "{spinning:#}");
    assert_eq!(spinning["nofile_limit"], 256);
    // Where their bugs are not exposed, they are not failed; the correct
    // server is failed nowhere (noise on a shared machine may degrade it).
    for (label, fault) in [
        ("correct", "reset-storm"),
        ("correct", "fd-exhaustion"),
        ("spinning", "reset-storm"),
        ("leaky", "fd-exhaustion"),
    ] {
        let cell = row(&rows, label, fault);
        assert_ne!(outcome(cell).0, "failed", "{label} / {fault}: {cell:#}");
        assert!(cell["alive"].as_bool().unwrap(), "{cell:#}");
        assert!(cell["fds_leaked"].as_i64().unwrap() <= 12, "{cell:#}");
    }
    let correct = row(&rows, "correct", "fd-exhaustion");
    assert!(
        correct["cpu_engaged_percent"].as_f64().unwrap() < 50.0,
        "{correct:#}"
    );

    // Ordinary cells for report and compare, one per server and fault.
    for label in ["correct", "leaky", "spinning"] {
        for fault in ["reset-storm", "fd-exhaustion"] {
            let stem = format!("{label}--fault-{fault}");
            for extension in ["json", "hgrm", "hlog"] {
                assert!(
                    out.join("cells").join(format!("{stem}.{extension}")).is_file(),
                    "{stem}.{extension}"
                );
            }
        }
    }
    // The printed matrix, and the report's.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("failed leaked"), "{stdout}");
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.contains("## Robustness matrix"), "{markdown}");
    assert!(markdown.contains("(charts/faults-matrix.svg)"));
    assert!(markdown.contains("| reset-storm | ok ") || markdown.contains("| reset-storm | degraded "));
    let svg = std::fs::read_to_string(out.join("charts/faults-matrix.svg")).unwrap();
    assert!(svg.contains("leaked") && svg.contains("spun"), "{svg}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("id=\"chart-faults-matrix\""));
    // Regenerated from the files alone, byte for byte.
    let before = (markdown, html, svg);
    let report = harness(&["report", out.to_str().unwrap()]);
    assert!(report.status.success());
    let after = (
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        std::fs::read_to_string(out.join("report.html")).unwrap(),
        std::fs::read_to_string(out.join("charts/faults-matrix.svg")).unwrap(),
    );
    assert!(before == after, "the report changed when regenerated");

    // compare puts two matrices side by side: an outcome that changed is named.
    let other = dir.path().join("other");
    std::fs::create_dir_all(other.join("cells")).unwrap();
    for entry in std::fs::read_dir(out.join("cells")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, other.join("cells").join(path.file_name().unwrap())).unwrap();
    }
    std::fs::copy(out.join("manifest.json"), other.join("manifest.json")).unwrap();
    let mut changed = rows.clone();
    let index = changed
        .iter()
        .position(|row| row["label"] == "correct" && row["fault"] == "reset-storm")
        .unwrap();
    changed[index]["outcome"] = "failed".into();
    changed[index]["deciding"] = "crashed".into();
    std::fs::write(other.join("faults.json"), Value::Array(changed).to_string()).unwrap();
    let compared = harness(&["compare", out.to_str().unwrap(), other.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&compared.stdout);
    assert!(compared.status.success(), "{text}");
    assert!(
        text.contains("Robustness matrix: 1 of 6 cells changed outcome")
            && text.contains("correct / reset-storm: ")
            && text.contains("-> failed (crashed)  worse"),
        "{text}"
    );
}

#[test]
fn a_server_that_buffers_a_slow_reader_fails_and_one_that_pushes_back_does_not() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let suite = faulty_suite(
        dir.path(),
        &[("correct", None), ("buffering", Some("--buffer-everything"))],
    );
    let out = dir.path().join("set");
    // The full phases: a buffering server needs time to read what its slow
    // readers wrote (the kernel holds it first).
    faults(&[
        "--suite",
        &suite,
        "--models",
        "correct,buffering",
        "--faults",
        "slow-reader",
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = rows(&out);
    let buffering = row(&rows, "buffering", "slow-reader");
    assert_eq!(outcome(buffering).0, "failed", "{buffering:#}");
    assert!(outcome(buffering).1.starts_with("buffered "), "{buffering:#}");
    let correct = row(&rows, "correct", "slow-reader");
    assert_ne!(outcome(correct).0, "failed", "{correct:#}");
    assert!(
        correct["memory_growth_kib"].as_i64().unwrap() < 8 * 1024,
        "{correct:#}"
    );
    // The slow readers wrote megabytes each and read nothing.
    assert!(correct["fault_bytes"].as_u64().unwrap() > 24 << 20, "{correct:#}");
}

#[test]
fn bad_input_is_one_line_naming_the_valid_choices() {
    for (args, expected) in [
        (
            &["faults", "--faults", "slow-reader,typo"][..],
            "unknown fault 'typo'; the faults are: slow-reader, slowloris, idle-herd, reset-storm, connect-flood, fd-exhaustion, server-pause, urgent-data, half-open-peer, half-close-pending",
        ),
        (
            &["faults", "--models", "epol"],
            "'epol' is neither in suite 'full'",
        ),
        (&["faults", "--server-cmd", "echo 'open"], "unterminated quote"),
        (&["faults", "--repeat", "0"], "--repeat must be at least 1"),
        (
            &["faults", "--protocol", "udp"],
            "its --protocol is echo or http, not udp",
        ),
        (
            &[
                "faults",
                "--protocol",
                "http",
                "--faults",
                "slowloris,urgent-data,half-close-pending",
            ],
            "urgent-data, half-close-pending have no HTTP form under --protocol http",
        ),
    ] {
        let output = harness(args);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("harness: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_harness_stopped_while_the_server_is_paused_leaves_no_stopped_server_behind() {
    let _one = one_at_a_time();
    let marker = format!("faults-pause-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let server = format!("{} serve epoll --addr {{addr}}", harness_exe());
    let mut child = Command::new(harness_exe())
        .args([
            "faults",
            "--server-cmd",
            &server,
            "--label",
            "paused",
            "--faults",
            "server-pause",
            "--out",
            dir.path().join("set").to_str().unwrap(),
        ])
        .env("ECHOLAB_TEST_MARKER", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let harness_pid = child.id() as i32;
    // Wait until the server is stopped (state T), then stop the harness.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stopped = processes_marked(&marker)
            .into_iter()
            .any(|(pid, state)| pid != harness_pid && state == 'T');
        if stopped {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server was never seen stopped: {:?}",
            processes_marked(&marker)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(harness_pid), Signal::SIGTERM).unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(10),
            "the harness did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(128 + 15));
    let until = Instant::now() + Duration::from_secs(5);
    while !processes_marked(&marker).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(processes_marked(&marker), [], "left behind");
}

#[test]
fn a_command_server_runs_through_every_quick_fault_without_a_harness_error() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("set");
    let server = format!("{} serve epoll --addr {{addr}}", harness_exe());
    let mut command = Command::new(harness_exe());
    command.args([
        "faults",
        "--server-cmd",
        &server,
        "--label",
        "mine",
        "--quick",
        "--out",
        out.to_str().unwrap(),
    ]);
    let output = run_watched(command, &["faults", "--quick"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = rows(&out);
    let names: Vec<&str> = rows.iter().map(|row| row["fault"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "slow-reader",
            "slowloris",
            "idle-herd",
            "reset-storm",
            "connect-flood",
            "fd-exhaustion",
            "server-pause",
            "urgent-data",
            "half-open-peer",
            "half-close-pending"
        ]
    );
    for row in &rows {
        // epoll loses nothing, leaks nothing and survives every fault.
        assert!(row["alive"].as_bool().unwrap(), "{row:#}");
        assert_eq!(row["fault_lost"], 0, "{row:#}");
        assert_eq!(row["mismatches"], 0, "{row:#}");
        assert!(row["fds_leaked"].as_i64().unwrap() <= 12, "{row:#}");
        assert!(row["fault_connections"].as_u64().unwrap() > 0 || row["fault"] == "server-pause");
    }
    let herd = rows.iter().find(|row| row["fault"] == "idle-herd").unwrap();
    assert!(herd["fault_connections"].as_u64().unwrap() >= 5000, "{herd:#}");
    let pause = rows.iter().find(|row| row["fault"] == "server-pause").unwrap();
    assert!(pause["p99_during_us"].as_f64().unwrap() > 500_000.0, "{pause:#}");
}

fn cell(out: &Path, stem: &str) -> Value {
    let path = out.join("cells").join(format!("{stem}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("no {}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn under_http_the_background_speaks_http_and_the_faults_send_requests() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("set");
    let output = faults(&[
        "--quick",
        "--protocol",
        "http",
        "--suite",
        "quick",
        "--models",
        "epoll",
        "--faults",
        "slow-reader,reset-storm",
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = rows(&out);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for fault in ["slow-reader", "reset-storm"] {
        let row = row(&rows, "epoll", fault);
        assert_eq!(row["protocol"], "http", "{row:#}");
        assert!(["ok", "degraded", "failed"].contains(&outcome(row).0), "{row:#}");
        // epoll answers every request right, whatever the fault does.
        assert_eq!(row["mismatches"], 0, "{row:#}");
        assert_eq!(row["fault_lost"], 0, "{row:#}");
        assert!(row["fault_bytes"].as_u64().unwrap() > 0, "{row:#}");
        // The background's cell is an HTTP cell with verified responses.
        let background = cell(&out, &format!("epoll--http-plaintext-fault-{fault}"));
        assert!(background["messages"].as_u64().unwrap() > 0, "{background:#}");
        assert!(
            background["bytes_per_sec"].as_f64().unwrap() > 0.0,
            "{background:#}"
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("slow-reader") && stdout.contains("reset-storm"),
        "{stdout}"
    );
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.contains("sending one HTTP request"), "{markdown}");
}

#[test]
fn repeated_runs_are_one_row_with_every_run_and_their_count() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("set");
    let output = faults(&[
        "--quick",
        "--repeat",
        "3",
        "--suite",
        "quick",
        "--models",
        "epoll",
        "--faults",
        "server-pause",
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = rows(&out);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = &rows[0];
    let runs = row["runs"].as_array().expect("the row keeps its runs");
    assert_eq!(runs.len(), 3, "{row:#}");
    let outcome = outcome(row).0;
    let agreeing = runs.iter().filter(|run| run["outcome"] == outcome).count();
    assert!(agreeing >= 2, "{row:#}");
    assert_eq!(
        row["unstable"].as_bool().unwrap_or(false),
        agreeing < 3,
        "{row:#}"
    );
    let spread = &row["spread"];
    // Over every run that measured the deciding figure.
    assert!((1..=3).contains(&spread["n"].as_u64().unwrap()), "{row:#}");
    assert!(
        spread["low"].as_f64().unwrap() <= spread["median"].as_f64().unwrap()
            && spread["median"].as_f64().unwrap() <= spread["high"].as_f64().unwrap(),
        "{row:#}"
    );
    // The printed matrix and the report say "k/3".
    let text = format!("{outcome} {agreeing}/3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&text), "{stdout}");
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.contains(&text), "{markdown}");
    assert!(
        markdown.contains("Each cell ran 3 times, interleaved"),
        "{markdown}"
    );
    // One ordinary cell per run.
    for repeat in 1..=3 {
        cell(&out, &format!("epoll--fault-server-pause--r{repeat}"));
    }
}
