//! Several load hosts, one server, on loopback: three `harness bench
//! --share K/3` processes, each from its own 127.0.0.x source address,
//! start at one agreed instant against one echo server, and `harness merge`
//! adds their result sets into one cell. The merged histogram must equal,
//! bucket for bucket, the histogram of every sample of every host; the
//! message count must be the sum; the report must render.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

mod support;

use support::{cell_of, harness, json, merge, run_watched};

const SOCKET_TIMEOUT: Duration = Duration::from_secs(20);
const HOSTS: u32 = 3;
const RATE: f64 = 3000.0;

/// An echo server on 127.0.0.1:0, a thread per connection, that notes each
/// connection's peer address and how many bytes it echoed.
struct RecordingEcho {
    addr: String,
    connections: Arc<Mutex<Vec<(IpAddr, u64)>>>,
}

impl RecordingEcho {
    fn start() -> RecordingEcho {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&connections);
        thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let record = Arc::clone(&record);
                stream.set_read_timeout(Some(SOCKET_TIMEOUT)).expect("timeout");
                stream.set_write_timeout(Some(SOCKET_TIMEOUT)).expect("timeout");
                let _ = stream.set_nodelay(true);
                thread::spawn(move || {
                    let peer = stream.peer_addr().expect("peer").ip();
                    let mut buffer = [0u8; 16 * 1024];
                    let mut echoed = 0u64;
                    loop {
                        match stream.read(&mut buffer) {
                            Ok(0) | Err(_) => break,
                            Ok(length) => {
                                if stream.write_all(&buffer[..length]).is_err() {
                                    break;
                                }
                                echoed += length as u64;
                            }
                        }
                    }
                    record.lock().unwrap().push((peer, echoed));
                });
            }
        });
        RecordingEcho { addr, connections }
    }
}

/// The `.hlog` of a cell: untagged intervals, and tagged ones by tag.
/// Interval histograms, one per second.
type Seconds = Vec<Histogram<u64>>;

fn interval_log(path: &Path) -> (Seconds, BTreeMap<String, Seconds>) {
    use base64::Engine;
    let bytes = std::fs::read(path).expect("hlog");
    let mut deserializer = Deserializer::new();
    let (mut own, mut tagged) = (Vec::new(), BTreeMap::<String, Seconds>::new());
    for entry in IntervalLogIterator::new(&bytes) {
        let LogEntry::Interval(interval) = entry.expect("log entry") else {
            continue;
        };
        let encoded = base64::engine::general_purpose::STANDARD
            .decode(interval.encoded_histogram().trim_end())
            .expect("base64");
        let histogram: Histogram<u64> = deserializer
            .deserialize(&mut encoded.as_slice())
            .expect("histogram");
        match interval.tag() {
            None => own.push(histogram),
            Some(tag) => tagged.entry(tag.as_str().to_owned()).or_default().push(histogram),
        }
    }
    (own, tagged)
}

fn sum(histograms: &[Histogram<u64>]) -> Histogram<u64> {
    let mut total = Histogram::new_from(&histograms[0]);
    for histogram in histograms {
        total.add(histogram).expect("same precision");
    }
    total
}

fn buckets(histogram: &Histogram<u64>) -> Vec<(u64, u64)> {
    histogram
        .iter_recorded()
        .map(|bucket| (bucket.value_iterated_to(), bucket.count_at_value()))
        .collect()
}

#[test]
fn load_hosts_share_one_open_loop_cell_and_merge_into_its_exact_sum() {
    let server = RecordingEcho::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    // Long enough for three processes to start and connect on a busy machine.
    let start_at = humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(4)).to_string();
    let scenario = "open-r3000-c6-s64";
    let hosts: Vec<_> = (1..=HOSTS)
        .map(|host| {
            let out = dir.path().join(format!("host{host}"));
            let args: Vec<String> = [
                "bench",
                "--target",
                &server.addr,
                "--share",
                &format!("{host}/{HOSTS}"),
                "--start-at",
                &start_at,
                "--source-addr",
                &format!("127.0.0.{}", host + 1),
                "--shape",
                "open",
                "--rate",
                &RATE.to_string(),
                "--connections",
                "6",
                "--warmup",
                "0.3",
                "--duration",
                "1",
                "--out",
                out.to_str().unwrap(),
                "--json",
            ]
            .iter()
            .map(|arg| arg.to_string())
            .collect();
            let handle = thread::spawn(move || {
                let mut command = Command::new(support::harness_exe());
                command.args(&args);
                let what: Vec<&str> = args.iter().map(String::as_str).collect();
                let output = run_watched(command, &what);
                cell_of(&output, &what)
            });
            (out, handle)
        })
        .collect();
    let hosts: Vec<(std::path::PathBuf, Value)> = hosts
        .into_iter()
        .map(|(out, handle)| (out, handle.join().expect("host ran")))
        .collect();

    let mut messages = 0;
    let mut rates = 0.0;
    for (index, (out, cell)) in hosts.iter().enumerate() {
        let share = &cell["share"];
        let host = index as u64 + 1;
        assert_eq!(share["host"], host, "{cell}");
        assert_eq!(share["hosts"], u64::from(HOSTS));
        assert_eq!(share["connections"], 2, "6 connections over 3 hosts");
        assert_eq!(share["first_connection"], 2 * index as u64, "{share}");
        assert_eq!(share["rate"].as_f64().unwrap(), RATE / f64::from(HOSTS));
        assert_eq!(share["source_addr"], format!("127.0.0.{}", host + 1));
        assert_eq!(share["start_at"], start_at.as_str());
        assert!(share["late_start_ms"].as_f64().unwrap() < 10.0, "{share}");
        assert_eq!(cell["connections"], 6, "the cell's count is the whole cell's");
        assert_eq!(cell["errors"]["mismatch"], 0, "{cell}");
        assert!(out.join("manifest.json").is_file() && out.join("summary.csv").is_file());
        messages += cell["messages"].as_u64().unwrap();
        rates += cell["msgs_per_sec"].as_f64().unwrap();
    }
    // The three schedules interleave into one at the whole rate: the sends
    // due in the 1 s window are the rate's, whichever host sent them.
    assert!(
        (RATE as u64 - 3..=RATE as u64 + 3).contains(&messages),
        "{messages} messages at {RATE} msgs/s for 1 s"
    );

    // Each host's connections came from its own address, two each.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut by_source = BTreeMap::new();
    while Instant::now() < deadline {
        by_source.clear();
        for (peer, echoed) in server.connections.lock().unwrap().iter() {
            if *echoed > 0 {
                *by_source.entry(peer.to_string()).or_insert(0) += 1;
            }
        }
        if by_source.values().sum::<u32>() == 6 {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let expected: BTreeMap<String, u32> = (2..=4).map(|last| (format!("127.0.0.{last}"), 2)).collect();
    assert_eq!(
        by_source, expected,
        "connections that carried messages, by source"
    );

    let merged = dir.path().join("merged");
    merge(hosts.iter().map(|(out, _)| out.as_path()), &merged);

    let stem = format!("target--{scenario}");
    let cell = json(&merged.join(format!("cells/{stem}.json")));
    assert_eq!(cell["messages"].as_u64().unwrap(), messages);
    assert!(
        (cell["msgs_per_sec"].as_f64().unwrap() - rates).abs() < 1e-6,
        "{cell}"
    );
    assert_eq!(cell["rate"].as_f64().unwrap(), RATE);
    assert_eq!(cell["hosts"].as_array().unwrap().len(), HOSTS as usize);
    assert!(cell.get("share").is_none());

    // The reference: every sample of every host. Each sample a host
    // measured is in exactly one of its one-second intervals, so the sum of
    // all hosts' intervals is the histogram one recorder of all the samples
    // would have built.
    let (merged_seconds, tagged) = interval_log(&merged.join(format!("cells/{stem}.hlog")));
    let mut reference_seconds: Vec<Histogram<u64>> = Vec::new();
    for (index, (out, _)) in hosts.iter().enumerate() {
        let (seconds, none) = interval_log(&out.join(format!("cells/{stem}.hlog")));
        assert!(none.is_empty(), "a host's log has no tags");
        assert_eq!(
            tagged[&format!("host-{}", index + 1)],
            seconds,
            "host {} kept",
            index + 1
        );
        for (second, histogram) in seconds.iter().enumerate() {
            if reference_seconds.len() <= second {
                reference_seconds.push(Histogram::new_from(histogram));
            }
            reference_seconds[second].add(histogram).unwrap();
        }
    }
    assert_eq!(merged_seconds, reference_seconds, "per-second sums differ");
    let (merged_whole, reference) = (sum(&merged_seconds), sum(&reference_seconds));
    assert_eq!(buckets(&merged_whole), buckets(&reference));
    assert_eq!(merged_whole.len(), messages);
    let p99 = reference.value_at_quantile(0.99) as f64 / 1000.0;
    assert_eq!(cell["latency_us"]["p99"].as_f64().unwrap(), p99);

    let output = harness(&["report", merged.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = std::fs::read_to_string(merged.join("report.md")).unwrap();
    assert!(
        report.contains("## Load hosts") && report.contains("127.0.0.4"),
        "{report}"
    );
    assert!(report.contains(&format!("## Scenario {scenario}")));
    let host1 = hosts[0].0.to_str().unwrap();
    let output = harness(&["compare", host1, merged.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_start_instant_already_past_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("host1");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap().to_string();
    let past = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(5)).to_string();
    let output = harness(&[
        "bench",
        "--target",
        &addr,
        "--share",
        "1/2",
        "--start-at",
        &past,
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("has already passed"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!out.exists(), "a refused bench wrote {}", out.display());

    for (args, expected) in [
        (vec!["--share", "1/2", "--out", "x"], "--start-at"),
        (
            vec!["--share", "3/2", "--start-at", &past, "--out", "x"],
            "K must be",
        ),
        (
            vec!["--start-at", "noon", "--share", "1/2", "--out", "x"],
            "RFC 3339",
        ),
    ] {
        let mut all = vec!["bench", "--target", &addr];
        all.extend(args);
        let output = harness(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(expected),
            "{all:?}: {stderr}"
        );
    }
    drop(listener);
}
