//! Synthetic result sets for the report and compare tests: cells written as
//! JSON, `.hgrm` in HdrHistogram's percentile distribution text format and
//! `.hlog` as a V2-deflate interval log, all derived from fixed numbers.

#![allow(dead_code)]

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const MODELS: [&str; 4] = ["single", "threaded", "epoll", "async"];

/// One cell to write.
#[derive(Debug, Clone)]
pub struct CellSpec {
    pub label: String,
    pub scenario: String,
    pub shape: &'static str,
    pub connections: u32,
    pub idle: u32,
    pub rate: Option<f64>,
    pub repeat: u32,
    pub msgs_per_sec: f64,
    /// Median latency in µs; the histogram is built around it.
    pub p50_us: f64,
    pub flags: Vec<&'static str>,
}

/// The scenarios of a small "full" suite: a closed connection sweep, idle
/// connections, an open-loop rate sweep and churn, named as the harness
/// names them (`cell::scenario_name`).
pub fn scenarios() -> Vec<(String, &'static str, u32, u32, Option<f64>)> {
    vec![
        ("closed-c1-s64".into(), "closed", 1, 0, None),
        ("closed-c10-s64".into(), "closed", 10, 0, None),
        ("closed-c100-s64".into(), "closed", 100, 0, None),
        ("closed-c10-s64-i2000".into(), "closed", 10, 2000, None),
        ("open-r20000-c100-s64".into(), "open", 100, 0, Some(20000.0)),
        ("open-r80000-c100-s64".into(), "open", 100, 0, Some(80000.0)),
        ("churn-c10".into(), "churn", 10, 0, None),
    ]
}

/// Every model in every scenario, `repeats` times, with made-up but
/// plausible numbers; `single` is starved at 100 connections.
pub fn suite(repeats: u32) -> Vec<CellSpec> {
    let mut cells = Vec::new();
    for (model_index, model) in MODELS.iter().enumerate() {
        for (name, shape, connections, idle, rate) in scenarios() {
            for repeat in 1..=repeats {
                let speed = 1.0 + model_index as f64;
                let jitter = 1.0 + 0.01 * f64::from(repeat);
                let msgs_per_sec = match rate {
                    Some(rate) => rate.min(30000.0 * speed) * jitter,
                    None => 10000.0 * speed * f64::from(connections).sqrt() * jitter,
                };
                let p50_us = 20.0 * f64::from(connections).sqrt() / speed * jitter + f64::from(idle) / 100.0;
                let mut flags = Vec::new();
                if *model == "single" && connections >= 100 {
                    flags.push("starved");
                }
                cells.push(CellSpec {
                    label: model.to_string(),
                    scenario: name.clone(),
                    shape,
                    connections,
                    idle,
                    rate,
                    repeat,
                    msgs_per_sec,
                    p50_us,
                    flags,
                });
            }
        }
    }
    cells
}

pub fn manifest(repeats: u32) -> Value {
    json!({
        "harness_version": "0.1.0",
        "git_commit": "0123456789abcdef",
        "suite": "fixture",
        "created_utc": "2025-01-01T00:00:00Z",
        "machine": { "cpu_model": "Test CPU @ 1.00GHz", "cores": 2, "kernel": "Linux 6.0.0", "rustc": "rustc 1.95.0" },
        "parameters": { "server_cpus": [0], "client_cpus": [1], "repeat": repeats }
    })
}

fn histogram(p50_us: f64, seed: u64) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let base_ns = p50_us * 1000.0;
    for index in 0..5000u64 {
        let step = ((index * 7919 + seed) % 1000) as f64 / 1000.0;
        let mut value = base_ns * (0.5 + step);
        if index % 500 == 0 {
            value *= 8.0;
        }
        histogram.record(value.max(1.0) as u64).unwrap();
    }
    histogram
}

/// HdrHistogram's percentile distribution text, values in µs.
pub fn hgrm(histogram: &Histogram<u64>) -> String {
    let mut text = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0;
    for step in histogram.iter_quantiles(5) {
        total += step.count_since_last_iteration();
        let value = step.value_iterated_to() as f64 / 1000.0;
        let quantile = step.quantile_iterated_to();
        if quantile < 1.0 {
            let _ = writeln!(
                text,
                "{value:12.3} {quantile:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - quantile)
            );
        } else {
            let _ = writeln!(text, "{value:12.3} {quantile:2.12} {total:10}");
        }
    }
    let _ = writeln!(
        text,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        histogram.mean() / 1000.0,
        histogram.stdev() / 1000.0
    );
    let _ = writeln!(
        text,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        histogram.max() as f64 / 1000.0,
        histogram.len()
    );
    text
}

/// An interval log of `seconds` one-second histograms (values in ns), laid
/// out as `HistogramLogWriter` writes it.
pub fn hlog(p50_us: f64, seconds: u32) -> Vec<u8> {
    let mut log = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut header = IntervalLogWriterBuilder::new();
        header.add_comment("[Histogram log format version 1.3]");
        header.begin_log_with(&mut log, &mut serializer).unwrap();
    }
    log.extend_from_slice(
        b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
    );
    let mut writer = IntervalLogWriterBuilder::new()
        .with_max_value_divisor(1e6)
        .begin_log_with(&mut log, &mut serializer)
        .unwrap();
    for second in 0..seconds {
        let histogram = histogram(p50_us * (1.0 + 0.1 * f64::from(second % 3)), u64::from(second));
        writer
            .write_histogram(
                &histogram,
                Duration::from_secs(second.into()),
                Duration::from_secs(1),
                None,
            )
            .unwrap();
    }
    drop(writer);
    log
}

pub fn cell_json(spec: &CellSpec) -> Value {
    let histogram = histogram(spec.p50_us, u64::from(spec.repeat));
    let us = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    let errors = if spec.flags.contains(&"errors") { 3 } else { 0 };
    let mut server = json!({ "pid": 4242, "cpu_percent": 90.0, "cpu_us_per_msg": 900_000.0 / spec.msgs_per_sec,
                    "rss_peak_kib": 2048 + 64 * u64::from(spec.connections + spec.idle), "threads": 1,
                    "ctx_voluntary": 10, "ctx_involuntary": 5, "fds": 10, "cpus": [0] });
    // System calls as the harness counts them: the readiness models name
    // theirs, `threaded` could not count them.
    match spec.label.as_str() {
        "epoll" | "async" => {
            server["syscalls_per_msg"] = json!({ "recvfrom": 1.0, "sendto": 1.0, "epoll_wait": 0.25 });
            server["syscalls_per_msg_total"] = json!(2.25);
            server["syscalls_eagain_per_msg"] = json!({});
        }
        "threaded" => server["syscalls_unavailable"] = json!("perf_event_open is not permitted"),
        _ => {}
    }
    json!({
        "model": spec.label, "model_args": [], "label": spec.label, "target": "127.0.0.1:40000",
        "scenario": spec.scenario, "repeat": spec.repeat, "shape": spec.shape,
        "connections": spec.connections, "size": 64, "idle": spec.idle, "rate": spec.rate,
        "warmup_s": 1.0, "duration_s": 3.0,
        "messages": (spec.msgs_per_sec * 3.0) as u64, "msgs_per_sec": spec.msgs_per_sec,
        "bytes_per_sec": spec.msgs_per_sec * 64.0,
        "connections_per_sec": if spec.shape == "churn" { Some(spec.msgs_per_sec / 2.0) } else { None },
        "latency_us": { "min": us(0.0), "mean": histogram.mean() / 1000.0, "p50": us(0.5), "p90": us(0.9),
                        "p99": us(0.99), "p999": us(0.999), "p9999": us(0.9999), "max": us(1.0) },
        "errors": { "mismatch": 0, "reset": errors, "timeout": 0, "connect": 0, "closed": 0, "addr_unavailable": 0 },
        "starved_connections": if spec.flags.contains(&"starved") { spec.connections - 1 } else { 0 },
        "fairness": { "jain": if spec.flags.contains(&"starved") { 0.01 } else { 0.98 }, "min": 10, "median": 100, "max": 120 },
        "server": server,
        "client": { "cpu_percent": 50.0, "busiest_thread_percent": 50.0, "threads": 1, "cpus": [1] },
        "behind_schedule_fraction": 0.0,
        "flags": spec.flags,
    })
}

/// Writes a result set with `cells` into `dir`.
pub fn write_result_set(dir: &Path, cells: &[CellSpec], repeats: u32) {
    let cells_dir = dir.join("cells");
    std::fs::create_dir_all(&cells_dir).unwrap();
    let manifest = serde_json::to_string_pretty(&manifest(repeats)).unwrap();
    std::fs::write(dir.join("manifest.json"), manifest).unwrap();
    for spec in cells {
        let stem = if repeats > 1 {
            format!("{}--{}--r{}", spec.label, spec.scenario, spec.repeat)
        } else {
            format!("{}--{}", spec.label, spec.scenario)
        };
        let json = serde_json::to_string_pretty(&cell_json(spec)).unwrap();
        std::fs::write(cells_dir.join(format!("{stem}.json")), json).unwrap();
        let histogram = histogram(spec.p50_us, u64::from(spec.repeat));
        std::fs::write(cells_dir.join(format!("{stem}.hgrm")), hgrm(&histogram)).unwrap();
        std::fs::write(cells_dir.join(format!("{stem}.hlog")), hlog(spec.p50_us, 3)).unwrap();
    }
}

/// What a finished `harness` run left.
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the harness binary with `args`, killed if it takes over a minute.
pub fn harness(args: &[&str]) -> Run {
    let capture = tempfile::tempdir().unwrap();
    let (stdout_path, stderr_path) = (capture.path().join("stdout"), capture.path().join("stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("harness starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("harness {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        success: status.success(),
        stdout: std::fs::read_to_string(stdout_path).unwrap(),
        stderr: std::fs::read_to_string(stderr_path).unwrap(),
    }
}

pub fn path_arg(path: &Path) -> String {
    path.to_str().expect("temporary paths are UTF-8").to_owned()
}

/// Every file under `dir`, relative path → bytes, sorted.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

/// A `faults.json` for the fixture's models: two faults, every outcome.
pub fn faults_json() -> Value {
    let row = |label: &str, fault: &str, outcome: &str, deciding: &str| {
        json!({
            "label": label, "model": label, "fault": fault, "outcome": outcome, "deciding": deciding,
            "baseline_msgs_per_sec": 10000.0, "during_fraction": 0.5, "p99_during_us": 900.0,
            "cpu_during_percent": 40.0, "memory_growth_kib": 128, "fds_leaked": 0,
            "recovery_s": 0.1, "errors": 0, "alive": true,
            "fault_from_s": 1.0, "fault_until_s": 2.0, "timeline_step_s": 0.1,
            "timeline_msgs_per_sec": (0..30)
                .map(|step| if (10..20).contains(&step) { 5000.0 } else { 10000.0 })
                .collect::<Vec<f64>>()
        })
    };
    json!([
        row("single", "slowloris", "degraded", "0.1%"),
        row("threaded", "slowloris", "ok", "97%"),
        row("epoll", "slowloris", "ok", "99%"),
        row("async", "slowloris", "ok", "98%"),
        row("single", "reset-storm", "ok", "95%"),
        row("threaded", "reset-storm", "failed", "leaked 400 fds"),
        row("epoll", "reset-storm", "ok", "96%"),
    ])
}
