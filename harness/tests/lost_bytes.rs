//! A lost byte is an error, never starvation: `harness bench` against
//! `faulty-echo` (harness/src/bin/faulty-echo.rs) started with
//! `--drop-every N` (it swallows byte N, 2N, ... of each connection, which
//! then waits forever for the last byte of its echo) or `--stop-one-at
//! BYTES` (one connection's echo stops after BYTES bytes, mid-message).
//! Both servers serve every connection first, so none of these connections
//! is starved; each stopped echo is one `lost` error, its missing bytes
//! counted. Every run is under the watchdog of `support`; the server listens
//! on 127.0.0.1 on a port the harness picked.

mod support;

use serde_json::Value;
use support::{bench_json, flags};

/// `bench` against `faulty-echo BUG...`, 10 connections of 64 bytes, as
/// JSON; `shape` adds the load shape's options.
fn bench_faulty(bug: &[&str], shape: &[&str]) -> Value {
    let command = format!(
        "{} --port {{port}} {}",
        env!("CARGO_BIN_EXE_faulty-echo"),
        bug.join(" ")
    );
    let mut args = vec!["--server-cmd", &command, "--warmup", "0.5", "--duration", "1.5"];
    args.extend_from_slice(shape);
    bench_json(&args)
}

fn count(cell: &Value, field: &str) -> u64 {
    cell["errors"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no errors.{field}: {cell}"))
}

fn starved(cell: &Value) -> u64 {
    cell["starved_connections"].as_u64().expect("starved_connections")
}

#[test]
fn a_server_that_swallows_bytes_is_flagged_errors_with_the_bytes_counted() {
    // Byte 6,400 of each connection is its 100th message's last: every
    // connection is served 99 messages, then waits for one byte forever.
    let cell = bench_faulty(&["--drop-every", "6400"], &["--connections", "10"]);
    let lost = count(&cell, "lost");
    assert!(lost >= 1, "no lost connection counted: {cell}");
    // One byte missing from each connection whose echo stopped.
    assert_eq!(count(&cell, "lost_bytes"), lost, "{cell}");
    assert_eq!(starved(&cell), 0, "served connections called starved: {cell}");
    let flags = flags(&cell);
    assert!(flags.contains(&"errors".to_owned()), "{cell}");
    assert!(!flags.contains(&"starved".to_owned()), "{cell}");
}

#[test]
fn one_echo_stopping_mid_message_is_one_lost_connection_not_a_starved_one() {
    // 100 messages and half of the 101st.
    let cell = bench_faulty(&["--stop-one-at", "6432"], &["--connections", "10"]);
    assert_eq!(count(&cell, "lost"), 1, "{cell}");
    assert_eq!(count(&cell, "lost_bytes"), 32, "{cell}");
    assert_eq!(
        cell["errors"]["timeout"].as_u64(),
        Some(0),
        "the stopped echo was counted twice: {cell}"
    );
    assert_eq!(starved(&cell), 0, "{cell}");
    assert!(cell["messages"].as_u64().unwrap() > 0, "{cell}");
    assert!(flags(&cell).contains(&"errors".to_owned()), "{cell}");
}

#[test]
fn the_open_loop_counts_a_stopped_echo_as_lost() {
    let cell = bench_faulty(
        &["--stop-one-at", "6432"],
        &["--shape", "open", "--rate", "2000", "--connections", "10"],
    );
    assert_eq!(count(&cell, "lost"), 1, "{cell}");
    // The open loop kept sending to it on schedule: at least the half
    // message is missing.
    assert!(count(&cell, "lost_bytes") >= 32, "{cell}");
    assert_eq!(starved(&cell), 0, "{cell}");
    assert!(flags(&cell).contains(&"errors".to_owned()), "{cell}");
}

#[test]
fn churn_counts_a_stopped_echo_as_lost() {
    // The first client whose echo passes 32 bytes (of its 64) gets no more.
    let cell = bench_faulty(
        &["--stop-one-at", "32"],
        &["--shape", "churn", "--connections", "2"],
    );
    assert_eq!(count(&cell, "lost"), 1, "{cell}");
    assert_eq!(count(&cell, "lost_bytes"), 32, "{cell}");
    assert_eq!(starved(&cell), 0, "{cell}");
    assert!(flags(&cell).contains(&"errors".to_owned()), "{cell}");
}
