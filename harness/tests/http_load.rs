//! The HTTP load checks every response: `harness bench --protocol http`
//! against `faulty-http` (harness/src/bin/faulty-http.rs), correct and with
//! each of its bugs, which must each be counted as its own error kind; and
//! against nginx when it is installed (a static file pipelined 16 deep,
//! zero errors). Every run is under the watchdog of `support`; the servers
//! listen on 127.0.0.1 on a port the harness picked.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::{bench_json, harness};

/// `bench --protocol http` against `faulty-http BUG...` for about a second.
fn bench_faulty(bug: &[&str], load: &[&str]) -> Value {
    let command = format!(
        "{} --port {{port}} {}",
        env!("CARGO_BIN_EXE_faulty-http"),
        bug.join(" ")
    );
    let mut args = vec![
        "--server-cmd",
        &command,
        "--protocol",
        "http",
        "--connections",
        "4",
        "--client-threads",
        "1",
        "--no-syscalls",
        "--warmup",
        "0.2",
        "--duration",
        "1",
    ];
    args.extend_from_slice(load);
    bench_json(&args)
}

fn count(cell: &Value, field: &str) -> u64 {
    cell["errors"][field].as_u64().unwrap_or(0)
}

fn status_count(cell: &Value, status: &str) -> u64 {
    cell["errors"]["http_status"][status].as_u64().unwrap_or(0)
}

/// The HTTP error kinds, each of which only its own bug may raise.
const KINDS: [&str; 6] = [
    "http_length",
    "http_body",
    "http_order",
    "http_parse",
    "http_date",
    "http_server",
];

fn throughput(cell: &Value) -> f64 {
    cell["msgs_per_sec"].as_f64().expect("msgs_per_sec")
}

/// Asserts that `kind` was counted and no other kind of error was.
fn only(cell: &Value, kind: &str) {
    let counted = if kind == "http_status" {
        status_count(cell, "500")
    } else {
        count(cell, kind)
    };
    assert!(counted > 0, "no {kind} counted: {cell}");
    for other in KINDS.iter().filter(|other| **other != kind) {
        assert_eq!(count(cell, other), 0, "{other} counted for {kind}: {cell}");
    }
    for plain in ["mismatch", "lost", "timeout", "closed", "reset"] {
        assert_eq!(count(cell, plain), 0, "{plain} counted for {kind}: {cell}");
    }
}

#[test]
fn a_correct_server_gives_no_error_in_every_loop_shape() {
    for load in [
        &["--pipeline", "4"][..],
        &["--request", "echo:300", "--pipeline", "2"][..],
        &["--request", "echo:100", "--shape", "open", "--rate", "2000"][..],
        &["--shape", "churn"][..],
    ] {
        let cell = bench_faulty(&[], load);
        assert_eq!(
            cell["errors"],
            serde_json::json!({"mismatch": 0, "reset": 0, "timeout": 0, "connect": 0, "closed": 0, "addr_unavailable": 0, "lost": 0, "lost_bytes": 0}),
            "{load:?}: {cell}"
        );
        assert!(throughput(&cell) > 0.0, "{load:?}: {cell}");
        assert_eq!(cell["starved_connections"], 0, "{load:?}: {cell}");
    }
}

#[test]
fn echo_pipelined_keeps_every_message_checked() {
    let command = format!("{} --port {{port}}", env!("CARGO_BIN_EXE_faulty-echo"));
    let cell = bench_json(&[
        "--server-cmd",
        &command,
        "--pipeline",
        "8",
        "--connections",
        "4",
        "--client-threads",
        "1",
        "--no-syscalls",
        "--warmup",
        "0.2",
        "--duration",
        "1",
    ]);
    assert_eq!(cell["scenario"], "closed-c4-s64-p8", "{cell}");
    assert_eq!(cell["errors"]["mismatch"], 0, "{cell}");
    assert_eq!(cell["errors"]["lost"], 0, "{cell}");
    assert!(throughput(&cell) > 0.0, "{cell}");
    // Eight in flight per connection: latencies from each message's own send.
    assert!(cell["latency_us"]["p50"].as_f64().unwrap() > 0.0, "{cell}");
}

#[test]
fn a_wrong_body_byte_is_http_body() {
    let cell = bench_faulty(&["--wrong-byte-every", "50"], &["--pipeline", "4"]);
    only(&cell, "http_body");
    // The other 49 of 50 responses are still verified.
    assert!(throughput(&cell) > 0.0, "{cell}");
}

#[test]
fn a_short_content_length_is_http_length_and_ends_the_connection() {
    let cell = bench_faulty(&["--short-length-every", "50"], &[]);
    only(&cell, "http_length");
    // Each connection is given up at its first short length.
    assert!(count(&cell, "http_length") <= 4, "{cell}");
}

#[test]
fn a_500_is_counted_by_status_and_never_as_throughput() {
    let cell = bench_faulty(&["--status-500-every", "10"], &["--pipeline", "2"]);
    only(&cell, "http_status");
    let measured = throughput(&cell) * cell["duration_s"].as_f64().unwrap();
    let failed = status_count(&cell, "500") as f64;
    // One response in ten is a 500 (counted over warm-up and drain too).
    assert!(
        failed > measured / 20.0 && failed < measured / 5.0,
        "{failed} 500s, {measured} verified: {cell}"
    );
}

#[test]
fn responses_out_of_order_are_http_order() {
    let cell = bench_faulty(
        &["--swap-every", "10"],
        &["--request", "echo:64", "--pipeline", "2"],
    );
    only(&cell, "http_order");
}

#[test]
fn a_missing_date_from_a_users_server_is_a_warning() {
    let cell = bench_faulty(&["--no-date"], &[]);
    assert!(count(&cell, "http_date_warnings") > 0, "{cell}");
    assert_eq!(count(&cell, "http_date"), 0, "{cell}");
    assert!(!support::flags(&cell).contains(&"errors".to_owned()), "{cell}");
    assert!(throughput(&cell) > 0.0, "{cell}");
}

#[test]
fn a_server_that_is_not_http_is_counted_and_the_cell_ends_on_time() {
    let started = Instant::now();
    let cell = bench_faulty(&["--not-http"], &["--pipeline", "4"]);
    only(&cell, "http_parse");
    assert_eq!(throughput(&cell), 0.0, "{cell}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn bad_protocol_options_are_one_line_and_a_failure() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path().to_str().unwrap();
    let cases: [&[&str]; 9] = [
        &["--protocol", "gopher"],
        &["--protocol", "http", "--work", "sleep:5"],
        &["--protocol", "http", "--work", "wait:-1"],
        &["--protocol", "http", "--root", "/no/such/dir"],
        &[
            "--protocol",
            "http",
            "--root",
            root,
            "--request",
            "static:../etc/passwd",
        ],
        &["--protocol", "http", "--pipeline", "0"],
        &["--protocol", "http", "--request", "echo:0"],
        &["--request", "plaintext"],
        &["--protocol", "http", "--shape", "churn", "--pipeline", "4"],
    ];
    for case in cases {
        let mut args = vec!["bench", "--model", "epoll", "--duration", "0.1"];
        args.extend_from_slice(case);
        let output = harness(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{case:?} was accepted");
        let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
        // clap adds a usage hint after its one line; ours is one line.
        assert!(
            lines[0].starts_with("error:") || (lines.len() == 1 && lines[0].starts_with("harness:")),
            "{case:?}: {stderr}"
        );
    }
}

/// Whether nginx can be run; under CI it must be.
fn nginx_installed() -> bool {
    let found = std::process::Command::new("nginx")
        .arg("-v")
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "nginx is not installed, and CI must test against it"
        );
        eprintln!("skipped: nginx not installed");
    }
    found
}

/// The directories of `{conf:FILE}` copies (`echolab-conf-PID-PORT`) whose
/// harness has ended.
fn config_copies_of_ended_harnesses() -> std::collections::BTreeSet<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            name.strip_prefix("echolab-conf-")
                .and_then(|rest| rest.split('-').next())
                .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        })
        .collect()
}

/// The nginx command line of the template, with `workers` workers.
pub fn nginx_command(workers: u32) -> String {
    format!(
        "nginx -e stderr -c {{conf:{}/examples/nginx.conf}} -g 'daemon off; worker_processes {workers};'",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn nginx_serves_a_static_file_pipelined_16_without_an_error() {
    if !nginx_installed() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // A 64 KiB file whose bytes are not all alike.
    let bytes: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.path().join("64k.bin"), &bytes).unwrap();
    std::fs::write(root.path().join("plain.txt"), b"Hello, World!").unwrap();
    let config_copies_before = config_copies_of_ended_harnesses();
    for (request, workers) in [("static:plain.txt", 1), ("static:64k.bin", 2)] {
        let command = nginx_command(workers);
        let cell = bench_json(&[
            "--server-cmd",
            &command,
            "--root",
            root.path().to_str().unwrap(),
            "--protocol",
            "http",
            "--request",
            request,
            "--pipeline",
            "16",
            "--connections",
            "8",
            "--client-threads",
            "1",
            "--no-syscalls",
            "--warmup",
            "0.2",
            "--duration",
            "1",
        ]);
        assert_eq!(cell["errors"]["mismatch"], 0, "{cell}");
        for kind in KINDS {
            assert_eq!(count(&cell, kind), 0, "{request}: {kind}: {cell}");
        }
        assert!(cell["errors"].get("http_status").is_none(), "{request}: {cell}");
        assert_eq!(
            count(&cell, "closed") + count(&cell, "timeout"),
            0,
            "{request}: {cell}"
        );
        assert!(throughput(&cell) > 0.0, "{request}: {cell}");
        assert_eq!(
            count(&cell, "http_server_warnings") + count(&cell, "http_date_warnings"),
            0,
            "{cell}"
        );
    }
    // Plaintext from the template's own location.
    let command = nginx_command(1);
    let cell = bench_json(&[
        "--server-cmd",
        &command,
        "--protocol",
        "http",
        "--pipeline",
        "16",
        "--connections",
        "4",
        "--client-threads",
        "1",
        "--no-syscalls",
        "--warmup",
        "0.2",
        "--duration",
        "0.5",
    ]);
    assert_eq!(
        serde_json::json!(
            cell["errors"]
                .as_object()
                .unwrap()
                .values()
                .filter(|v| v.as_u64() != Some(0))
                .count()
        ),
        0,
        "{cell}"
    );
    assert!(throughput(&cell) > 0.0, "{cell}");
    // The template's filled copies (and nginx's pid and temporary files) go
    // with the server.
    let left: Vec<_> = config_copies_of_ended_harnesses()
        .difference(&config_copies_before)
        .cloned()
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_one_cell_http_suite_runs_into_a_result_set() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("http-one.toml");
    // The http suite's shape, one cell: a static file of the generated root,
    // pipelined, from the faulty server in its correct mode (and nginx
    // beside it where installed).
    let mut models = format!(
        "{{ label = \"faulty-http\", command = [\"{}\", \"--port\", \"{{port}}\", \"--root\", \"{{root}}\"] }}",
        env!("CARGO_BIN_EXE_faulty-http")
    );
    if nginx_installed() {
        models += &format!(
            ", {{ label = \"nginx-1\", command = [\"nginx\", \"-e\", \"stderr\", \"-c\", \"{{conf:{}/examples/nginx.conf}}\", \"-g\", \"daemon off; worker_processes 1;\"] }}",
            env!("CARGO_MANIFEST_DIR")
        );
    }
    std::fs::write(
        &suite,
        format!(
            "name = \"http-one\"\nwarmup_s = 0.2\nduration_s = 0.5\nroot = \"generated\"\nmodels = [{models}]\n\n\
             [[sweep]]\nname = \"static\"\nshape = \"closed\"\nprotocol = \"http\"\nrequest = [\"static:64k.bin\"]\nconnections = [2]\npipeline = [4]\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("set");
    support::run_suite(&suite, &out, &["--no-syscalls", "--client-threads", "1"]);
    assert!(out.join("www/64k.bin").is_file());
    let cells: Vec<_> = std::fs::read_dir(out.join("cells"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    assert!(!cells.is_empty());
    for path in cells {
        let cell: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(cell["scenario"], "http-static-64k.bin-closed-c2-p4", "{cell}");
        // Bytes per second are the bodies' bytes.
        let bodies = throughput(&cell) * 65536.0;
        assert!(
            (cell["bytes_per_sec"].as_f64().unwrap() - bodies).abs() < 1.0,
            "{cell}"
        );
        assert_eq!(cell["errors"]["mismatch"], 0, "{cell}");
        for kind in KINDS {
            assert_eq!(count(&cell, kind), 0, "{kind}: {cell}");
        }
        assert!(throughput(&cell) > 0.0, "{cell}");
    }
}
