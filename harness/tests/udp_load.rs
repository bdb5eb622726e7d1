//! The UDP load (`--protocol udp`, harness/src/load/udp.rs) counts each
//! fault as its own kind: `bench` against `faulty-udp`
//! (harness/src/bin/faulty-udp.rs), which drops every 100th datagram and
//! corrupts, duplicates, answers from another port and truncates one in
//! 10,000, each deterministically; the `udp` model at zero errors; a target
//! that never answers; and the bad inputs. Every run is under the watchdog
//! of `support`, on loopback.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::{bench_json, flags, harness};

fn udp(cell: &Value, field: &str) -> u64 {
    cell["udp"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no udp.{field}: {cell}"))
}

#[test]
fn each_fault_of_a_faulty_udp_echo_is_counted_as_its_own_kind() {
    let command = format!(
        "{} --port {{port}} --drop-every 100 --corrupt-every 10000 --duplicate-every 10000 \
         --other-port-every 10000 --truncate-every 10000",
        env!("CARGO_BIN_EXE_faulty-udp")
    );
    // Closed loop, so the load itself never overflows a buffer: each flow
    // has one datagram in flight, and a dropped one stalls only its flow.
    let cell = bench_json(&[
        "--server-cmd",
        &command,
        "--protocol",
        "udp",
        "--connections",
        "200",
        "--warmup",
        "0.5",
        "--duration",
        "4",
    ]);
    let sent = udp(&cell, "sent");
    // A 1-in-10,000 fault is certain to show only over 10,000 datagrams.
    assert!(sent >= 20_000, "too few datagrams to test: {cell}");
    let loss = cell["udp"]["loss_percent"].as_f64().unwrap();
    assert!((loss - 1.0).abs() <= 0.3, "loss {loss}%, not 1% ± 0.3: {cell}");
    let at_most = sent / 10_000 + 2;
    for kind in ["wrong_payload", "duplicated", "wrong_sender", "truncated"] {
        let count = udp(&cell, kind);
        assert!(
            (1..=at_most).contains(&count),
            "{kind}: {count}, not 1 to {at_most}: {cell}"
        );
    }
    assert_eq!(udp(&cell, "reordered"), 0, "{cell}");
    // The wrong ones are errors too; the lost ones are not.
    let wrong = udp(&cell, "wrong_payload") + udp(&cell, "wrong_sender") + udp(&cell, "truncated");
    assert_eq!(cell["errors"]["mismatch"].as_u64(), Some(wrong), "{cell}");
    assert_eq!(cell["errors"]["timeout"].as_u64(), Some(0), "{cell}");
    assert!(flags(&cell).contains(&"errors".to_owned()), "{cell}");
    // Verified datagrams are the throughput.
    assert_eq!(cell["messages"].as_u64(), Some(udp(&cell, "received")), "{cell}");
}

#[test]
fn the_udp_model_and_its_variants_echo_every_datagram_right() {
    for args in [
        &[][..],
        &["--model-arg=--batch", "--model-arg=32"],
        &["--model-arg=--workers", "--model-arg=2"],
    ] {
        let mut all = vec![
            "--model",
            "udp",
            "--protocol",
            "udp",
            "--connections",
            "20",
            "--size",
            "1400",
            "--warmup",
            "0.2",
            "--duration",
            "1",
        ];
        all.extend_from_slice(args);
        let cell = bench_json(&all);
        assert!(udp(&cell, "received") > 0, "{args:?}: {cell}");
        for kind in ["wrong_payload", "wrong_sender", "truncated", "duplicated"] {
            assert_eq!(udp(&cell, kind), 0, "{args:?} {kind}: {cell}");
        }
        assert!(!flags(&cell).contains(&"errors".to_owned()), "{args:?}: {cell}");
        assert_eq!(cell["scenario"], "udp-closed-c20-s1400", "{cell}");
    }
}

#[test]
fn a_target_that_never_answers_loses_every_datagram_and_the_cell_ends_on_time() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = silent.local_addr().unwrap().to_string();
    let started = Instant::now();
    let cell = bench_json(&[
        "--target",
        &target,
        "--protocol",
        "udp",
        "--connections",
        "5",
        "--warmup",
        "0.2",
        "--duration",
        "1",
    ]);
    // 1.2 s of load, and at most one loss bound (0.5 s) of waiting after.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let sent = udp(&cell, "sent");
    assert!(sent > 0, "{cell}");
    assert_eq!(udp(&cell, "lost"), sent, "{cell}");
    assert_eq!(cell["udp"]["loss_percent"].as_f64(), Some(100.0), "{cell}");
    assert_eq!(cell["messages"].as_u64(), Some(0), "{cell}");
    // Lost datagrams are a figure, not the server's error.
    assert!(!flags(&cell).contains(&"errors".to_owned()), "{cell}");
}

#[test]
fn bad_udp_input_is_one_line_and_a_failure() {
    for (args, says) in [
        (&["--shape", "churn"][..], "not churn"),
        (&["--size", "65508"], "65507"),
        (&["--size", "4"], "between 8"),
    ] {
        let mut all = vec!["bench", "--model", "udp", "--protocol", "udp", "--duration", "1"];
        all.extend_from_slice(args);
        let output = harness(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: exit 0");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    for (args, says) in [
        (&["--model", "udp"][..], "drive it with --protocol udp"),
        (&["--model", "epoll", "--protocol", "udp"], "serves TCP"),
    ] {
        let mut all = vec!["bench", "--duration", "1"];
        all.extend_from_slice(args);
        let output = harness(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: exit 0");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let output = harness(&["serve", "udp", "--batch", "0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.lines().next().unwrap_or("").contains("'0' for '--batch"),
        "{stderr}"
    );
}

#[test]
fn a_small_udp_suite_runs_into_a_result_set_with_datagram_cells() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("udp-small.toml");
    std::fs::write(
        &suite,
        r#"
name = "udp-small"
description = "the udp suite, shrunk"
warmup_s = 0.2
duration_s = 0.5
models = ["udp", { label = "udp-batch32", model = "udp", args = ["--batch", "32"] }]

[[sweep]]
name = "closed"
protocol = "udp"
shape = "closed"
connections = [10]
size = [64]

[[sweep]]
name = "open"
protocol = "udp"
shape = "open"
connections = [10]
size = [64]
rate = [2000]
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    support::run_suite(&suite, &out, &[]);
    for cell in ["udp--udp-closed-c10-s64", "udp-batch32--udp-open-r2000-c10-s64"] {
        let cell = support::json(&out.join("cells").join(format!("{cell}.json")));
        assert!(udp(&cell, "received") > 0, "{cell}");
        assert_eq!(cell["errors"]["mismatch"].as_u64(), Some(0), "{cell}");
    }
    // The report has the UDP section and its loss chart.
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("UDP: datagrams by fate"), "{report}");
    assert!(out.join("charts").join("udp-loss.svg").exists());
}
