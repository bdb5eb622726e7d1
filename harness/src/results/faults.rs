//! `faults.json`: what `harness faults` measured, one row per server × fault,
//! each with its outcome and the figures the outcome was decided on. The
//! report's robustness matrix is drawn from this file alone.

use crate::protocol::Protocol;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What a fault did to a server, from its figures and thresholds
/// (`harness/src/faults/judge.rs` and each fault's entry in
/// `harness/src/faults/catalog.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Everyone else was served as before, and nothing was lost or left behind.
    Ok,
    /// Everyone else was served less, later or not at all for a while; the
    /// server came back.
    Degraded,
    /// The server crashed, lost or corrupted data, leaked descriptors, spun,
    /// buffered without bound, or never came back.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Degraded => "degraded",
            Outcome::Failed => "failed",
        }
    }
}

/// One server under one fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRow {
    /// The server's label (a model, a variant, a command's label).
    pub label: String,
    /// The model, when the server is one (null for a command).
    #[serde(default)]
    pub model: Option<String>,
    pub fault: String,
    pub outcome: Outcome,
    /// The figure that decided the outcome, in words: `"leaked 400 fds"`,
    /// `"12% of baseline throughput"`; for `ok`, the fault's headline figure.
    pub deciding: String,
    /// Every rule that fired, most severe first (empty for `ok`).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The judge's rule that decided (for `ok`, the one whose figure is the
    /// headline), and every rule's figure, by rule name
    /// (`harness/src/faults/judge.rs`): what a repeated cell's median and
    /// spread are taken from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rule: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rule_figures: BTreeMap<String, f64>,
    /// What the background spoke: `echo`, or `http` (each new client sends
    /// one request and checks the response).
    #[serde(default, skip_serializing_if = "is_echo")]
    pub protocol: Protocol,
    /// With `harness faults --repeat N` (N > 1): every run of this cell, in
    /// the order they ran, each a row of its own (without `runs`). The
    /// row's outcome is then the runs' majority (a tie goes to the worse
    /// outcome), its other figures (and `deciding`) are those of the
    /// majority's run whose deciding figure is nearest the median, and
    /// `spread` gives the median and spread over the runs
    /// (`harness/src/faults/repeat.rs`). Empty for a single run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<FaultRow>,
    /// The runs did not all have the same outcome.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unstable: bool,
    /// The deciding figure over the runs: median and spread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,

    /// The background load (new clients: connect, echo one message, close)
    /// before the fault, in completed cycles per second.
    pub baseline_msgs_per_sec: f64,
    /// Its throughput during the fault as a fraction of the baseline.
    pub during_fraction: f64,
    /// Its p99 latency during the fault and the catch-up after it, corrected
    /// for coordinated omission, in µs.
    pub p99_during_us: f64,
    /// The same measure before the fault.
    #[serde(default)]
    pub p99_baseline_us: f64,
    /// Server CPU (whole process tree) during the fault, % of one CPU.
    pub cpu_during_percent: f64,
    /// The same once the fault was in place (its set-up done), which is what
    /// spinning is judged on; null when it was in place for under 0.2 s.
    #[serde(default)]
    pub cpu_engaged_percent: Option<f64>,
    /// Server CPU before the fault, % of one CPU.
    #[serde(default)]
    pub cpu_baseline_percent: f64,
    /// The server's peak memory from the fault's start to the end of the
    /// recovery window, minus what it was at the start (KiB): what its
    /// memory cgroup was charged, socket buffers left out, else (no memory
    /// cgroup) its summed resident sets.
    #[serde(alias = "rss_growth_kib")]
    pub memory_growth_kib: i64,
    /// Open descriptors of the process tree after the recovery window minus
    /// before the fault.
    pub fds_leaked: i64,
    #[serde(default)]
    pub fds_before: u64,
    #[serde(default)]
    pub fds_after: u64,
    /// Seconds from the fault's end until the background was back, over
    /// 200 ms, at 90% of its baseline or at the baseline's own worst 200 ms
    /// if that is lower; null when it was not within 5 s (a background not
    /// back by the end of the recovery window is watched on in 200 ms runs
    /// until it is, or for 5 s after the fault).
    pub recovery_s: Option<f64>,
    /// The best the background did over 200 ms after the fault, as a
    /// fraction of its baseline.
    #[serde(default)]
    pub recovered_fraction: f64,
    /// Failed echoes of the background load over the whole cell (wrong byte,
    /// reset, early close, timeout, failed connect); see `cells/*.json` for
    /// the kinds.
    pub errors: u64,
    /// Of those, wrong bytes.
    #[serde(default)]
    pub mismatches: u64,
    /// Whether the server process was still running at the end of the cell.
    pub alive: bool,
    /// How the server ended when stopped with SIGTERM, or how it died.
    #[serde(default)]
    pub exit: Option<String>,

    /// What the fault itself did: connections it opened, payload bytes it
    /// sent, and bytes or echoes the server owed its clients and did not
    /// deliver (wrong, or cut off by an early close).
    #[serde(default)]
    pub fault_connections: u64,
    #[serde(default)]
    pub fault_bytes: u64,
    #[serde(default)]
    pub fault_lost: u64,
    /// One sentence about what the fault did.
    #[serde(default)]
    pub fault_note: String,
    /// CPU of the fault's own client threads over the fault, % of one CPU:
    /// what the fault took from the load CPUs.
    #[serde(default)]
    pub fault_cpu_percent: f64,
    /// Listen-queue overflows and drops counted by the kernel (machine-wide,
    /// `/proc/net/netstat`) from the fault's start to the end of the cell.
    #[serde(default)]
    pub listen_overflows: u64,
    #[serde(default)]
    pub listen_drops: u64,
    /// RLIMIT_NOFILE the server was started under, when the fault sets one.
    #[serde(default)]
    pub nofile_limit: Option<u64>,

    /// The phases, in seconds from the start of the measurement: baseline
    /// `[0, fault_from_s)`, fault `[fault_from_s, fault_until_s)`, recovery
    /// `[fault_until_s, end)`.
    #[serde(default)]
    pub fault_from_s: f64,
    #[serde(default)]
    pub fault_until_s: f64,
    /// Background throughput (cycles per second) of each `timeline_step_s`
    /// of the measurement.
    #[serde(default)]
    pub timeline_step_s: f64,
    #[serde(default)]
    pub timeline_msgs_per_sec: Vec<f64>,
    /// CPU time other processes (another build, another benchmark) took on
    /// the server's and the load's CPUs during the cell, % of one CPU (a
    /// cell's `machine.busy_percent`; before `steal_percent` was recorded,
    /// steal included).
    #[serde(default)]
    pub others_cpu_percent: f64,
    /// Time the VM's host kept those CPUs from it (steal), % of one CPU (a
    /// cell's `machine.steal_percent`). Either above its `noisy` threshold
    /// (`cell::flags`) and the cell is marked "busy machine": its timing
    /// figures (throughput, p99, recovery) say as much about the machine as
    /// about the server.
    #[serde(default)]
    pub steal_percent: f64,
    /// When the background was not back by the end of the timeline: each
    /// 200 ms run that watched it after, as `[start, cycles per second]`,
    /// the start in seconds after the fault's end.
    #[serde(default)]
    pub recovery_probes: Vec<[f64; 2]>,
}

/// A repeated cell's deciding figure over its runs: the median, and either
/// the min–max (fewer than six runs) or a 95% confidence interval of the
/// median (`crate::stats::Summary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The judge's rule whose figure this is.
    pub rule: String,
    pub median: f64,
    pub low: f64,
    pub high: f64,
    /// Runs that had the figure.
    pub n: usize,
    /// `low`–`high` is a 95% CI of the median (n ≥ 6), else the min–max.
    pub is_ci: bool,
    /// `12% (8.0%–20%)` or `12% [10%, 14%]`.
    pub text: String,
}

impl FaultRow {
    /// How many of its runs had the row's outcome, and how many ran (1 of
    /// 1 for a single run).
    pub fn agreeing(&self) -> (usize, usize) {
        if self.runs.is_empty() {
            (1, 1)
        } else {
            let agreeing = self.runs.iter().filter(|run| run.outcome == self.outcome).count();
            (agreeing, self.runs.len())
        }
    }
}

fn is_echo(protocol: &Protocol) -> bool {
    *protocol == Protocol::Echo
}

fn is_false(value: &bool) -> bool {
    !value
}

/// Writes `faults.json` into `dir`.
pub fn write(dir: &Path, rows: &[FaultRow]) -> anyhow::Result<()> {
    super::files::write_json(&dir.join("faults.json"), &rows)
}

/// Reads `dir/faults.json`; `None` when the result set has none.
pub fn read(dir: &Path) -> anyhow::Result<Option<Vec<FaultRow>>> {
    super::files::read_json_if_present(&dir.join("faults.json"), "a list of fault rows")
}
