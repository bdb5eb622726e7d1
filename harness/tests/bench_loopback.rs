//! `harness bench` end to end on loopback: against the built binary, against
//! small misbehaving servers written here, and against the `single` model.
//! Every run has a watchdog; every server binds 127.0.0.1:0 and sets socket
//! timeouts, so a broken harness fails a test instead of hanging it.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

mod support;

use support::{Served, bench_json, flags, harness};

const SOCKET_TIMEOUT: Duration = Duration::from_secs(20);

/// Starts a thread-per-connection server on 127.0.0.1:0 that runs `handle`
/// for each connection; returns its address.
fn test_server(handle: fn(TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            stream.set_read_timeout(Some(SOCKET_TIMEOUT)).expect("timeout");
            stream.set_write_timeout(Some(SOCKET_TIMEOUT)).expect("timeout");
            let _ = stream.set_nodelay(true);
            thread::spawn(move || handle(stream));
        }
    });
    addr
}

/// Echoes everything, but flips one bit of every 10,000th byte.
fn corrupting_echo(mut stream: TcpStream) {
    let mut buffer = [0u8; 16 * 1024];
    let mut offset = 0u64;
    loop {
        let length = match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(length) => length,
        };
        for byte in &mut buffer[..length] {
            if offset % 10_000 == 9_999 {
                *byte ^= 0x20;
            }
            offset += 1;
        }
        if stream.write_all(&buffer[..length]).is_err() {
            return;
        }
    }
}

/// Echoes everything, but the first connection stops for 1 s once, 0.5 s
/// after it was accepted (inside the measurement of a 0.2 s warm-up).
fn stalling_echo(mut stream: TcpStream) {
    let accepted = Instant::now();
    let mut stalled = false;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let length = match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(length) => length,
        };
        if !stalled && accepted.elapsed() >= Duration::from_millis(500) {
            stalled = true;
            thread::sleep(Duration::from_secs(1));
        }
        if stream.write_all(&buffer[..length]).is_err() {
            return;
        }
    }
}

fn micros(cell: &Value, percentile: &str) -> f64 {
    cell["latency_us"][percentile].as_f64().expect("latency")
}

#[test]
fn a_flipped_byte_is_counted_as_a_mismatch() {
    let addr = test_server(corrupting_echo);
    let cell = bench_json(&[
        "--target",
        &addr,
        "--connections",
        "4",
        "--warmup",
        "0.2",
        "--duration",
        "1",
    ]);
    assert!(
        cell["errors"]["mismatch"].as_u64().unwrap() > 0,
        "no mismatch counted: {cell}"
    );
    assert!(flags(&cell).contains(&"errors".to_string()), "{cell}");
    assert!(cell["messages"].as_u64().unwrap() > 0);
}

/// The same 1 s stall, seen two ways. The closed loop sends nothing while it
/// waits, so the stall costs it one slow message per connection: p99 stays
/// low and only the max shows it (coordinated omission). The open loop keeps
/// to its schedule and measures from intended send times, so every message
/// due during the stall is charged its wait: the stall reaches p99.
#[test]
fn a_stall_shows_in_the_open_loop_tail_but_hides_in_the_closed_loop() {
    let addr = test_server(stalling_echo);
    let closed = bench_json(&[
        "--target",
        &addr,
        "--connections",
        "1",
        "--warmup",
        "0.2",
        "--duration",
        "2",
    ]);
    assert!(
        micros(&closed, "max") >= 900_000.0,
        "closed loop max misses the stall: {closed}"
    );
    assert!(
        micros(&closed, "p99") < 500_000.0,
        "closed loop p99 shows the stall: {closed}"
    );

    let addr = test_server(stalling_echo);
    let open = bench_json(&[
        "--target",
        &addr,
        "--shape",
        "open",
        "--rate",
        "1000",
        "--connections",
        "1",
        "--warmup",
        "0.2",
        "--duration",
        "2",
    ]);
    assert!(
        micros(&open, "p99") >= 500_000.0,
        "open loop p99 hides the stall: {open}"
    );
    assert!(micros(&open, "max") >= 900_000.0, "{open}");
}

#[test]
fn a_model_serving_one_client_at_a_time_starves_the_others_and_ends_on_time() {
    let started = Instant::now();
    let cell = bench_json(&[
        "--model",
        "single",
        "--connections",
        "4",
        "--warmup",
        "0.2",
        "--duration",
        "1",
    ]);
    assert_eq!(cell["starved_connections"].as_u64(), Some(3), "{cell}");
    assert!(flags(&cell).contains(&"starved".to_string()), "{cell}");
    assert_eq!(cell["fairness"]["min"].as_u64(), Some(0));
    assert!(cell["server"]["cpu_percent"].is_number());
    // Bounded, not timed: far below the message deadline it would hang on.
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn target_drives_a_server_started_separately() {
    let server = Served::start("single");
    let addr = server.addr.clone();
    let cell = bench_json(&[
        "--target",
        &addr,
        "--connections",
        "1",
        "--warmup",
        "0.2",
        "--duration",
        "1",
    ]);
    drop(server);
    assert!(cell["model"].is_null());
    assert!(cell["server"].is_null());
    assert_eq!(cell["target"].as_str(), Some(addr.as_str()));
    assert_eq!(cell["label"].as_str(), Some("target"));
    assert!(cell["messages"].as_u64().unwrap() > 0, "{cell}");
    assert_eq!(cell["errors"]["mismatch"].as_u64(), Some(0));
}

#[test]
fn the_cell_files_parse_back() {
    let out = tempfile::tempdir().expect("temporary directory");
    let dir = out.path().to_str().unwrap();
    let cell = bench_json(&[
        "--model",
        "single",
        "--connections",
        "1",
        "--warmup",
        "0.2",
        "--duration",
        "1.5",
        "--out",
        dir,
    ]);
    let messages = cell["messages"].as_u64().unwrap();
    assert!(messages > 0);

    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("single--closed-c1-s64.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json, cell);

    let hgrm = std::fs::read_to_string(out.path().join("single--closed-c1-s64.hgrm")).unwrap();
    let mut lines = hgrm.lines();
    assert_eq!(
        lines.next(),
        Some("       Value     Percentile TotalCount 1/(1-Percentile)")
    );
    assert_eq!(lines.next(), Some(""));
    let rows: Vec<Vec<&str>> = hgrm
        .lines()
        .skip(2)
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert!(rows.len() > 10);
    let last = rows.last().unwrap();
    assert_eq!(last.len(), 3, "the 100% row has no 1/(1-Percentile)");
    assert_eq!(last[1], "1.000000000000");
    assert_eq!(last[2].parse::<u64>().unwrap(), messages);
    for row in &rows[..rows.len() - 1] {
        assert_eq!(row.len(), 4);
        row[0].parse::<f64>().unwrap();
        row[3].parse::<f64>().unwrap();
    }
    assert!(hgrm.contains("#[Mean    = "));
    assert!(hgrm.contains(&format!("Total count    = {messages:>12}]")));
    assert!(hgrm.contains("SubBuckets     =         2048]"));

    let hlog = std::fs::read(out.path().join("single--closed-c1-s64.hlog")).unwrap();
    let mut deserializer = Deserializer::new();
    let mut starts = Vec::new();
    let mut total = 0;
    for entry in IntervalLogIterator::new(&hlog) {
        if let LogEntry::Interval(interval) = entry.expect("the log parses") {
            let bytes = base64_decode(interval.encoded_histogram());
            let histogram: Histogram<u64> = deserializer.deserialize(&mut bytes.as_slice()).expect("decodes");
            total += histogram.len();
            starts.push(interval.start_timestamp().as_secs_f64());
        }
    }
    assert_eq!(
        starts,
        vec![0.0, 1.0],
        "one interval per second, the last one partial"
    );
    assert_eq!(total, messages);
}

#[test]
fn bad_input_is_one_clear_line_and_a_failure() {
    for args in [
        &["bench", "--model", "single", "--connections", "0"][..],
        &["bench", "--model", "single", "--size", "0"],
        &["bench", "--model", "single", "--shape", "open"],
        &["bench", "--model", "single", "--shape", "open", "--rate", "-5"],
        &["bench", "--model", "no-such-model"],
    ] {
        let output = harness(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("harness: "), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

/// Standard base64 (the encoding of interval-log histograms).
fn base64_decode(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = Vec::new();
    let (mut accumulator, mut bits) = (0u32, 0u32);
    for byte in text.trim_end_matches('=').bytes() {
        let value = alphabet
            .iter()
            .position(|&letter| letter == byte)
            .expect("base64 letter") as u32;
        accumulator = (accumulator << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((accumulator >> bits) as u8);
            accumulator &= (1 << bits) - 1;
        }
    }
    bytes
}

/// Churn against a server that records where each connection came from:
/// every cycle is a new connection, every echo is verified, and on loopback
/// the connections come from many source addresses (so the client does not
/// run out of ports to one server port).
#[test]
fn churn_opens_a_new_verified_connection_per_cycle_from_many_sources() {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let sources = Arc::new(Mutex::new((0u64, BTreeSet::new())));
    let seen = Arc::clone(&sources);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut seen = seen.lock().unwrap();
            seen.0 += 1;
            seen.1.insert(stream.peer_addr().expect("peer").ip());
            drop(seen);
            stream.set_read_timeout(Some(SOCKET_TIMEOUT)).expect("timeout");
            thread::spawn(move || {
                let _ = std::io::copy(&mut &stream, &mut &stream);
            });
        }
    });
    let cell = bench_json(&[
        "--target",
        &addr,
        "--shape",
        "churn",
        "--connections",
        "4",
        "--warmup",
        "0.2",
        "--duration",
        "1",
    ]);
    let cycles = cell["messages"].as_u64().unwrap();
    assert!(cycles > 0, "no cycle completed: {cell}");
    assert_eq!(cell["errors"]["mismatch"], 0, "{cell}");
    assert!(cell["connections_per_sec"].as_f64().unwrap() > 0.0, "{cell}");
    let (accepted, ips) = &*sources.lock().unwrap();
    assert!(
        *accepted >= cycles,
        "{accepted} connections accepted for {cycles} cycles"
    );
    assert!(ips.len() > 1, "every connection came from {ips:?}");
    assert!(ips.iter().all(|ip| ip.is_loopback()), "{ips:?}");
}
