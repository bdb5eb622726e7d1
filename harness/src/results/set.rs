//! The files of a result set that describe the whole run: `manifest.json` and
//! `summary.csv`.

use super::cell::Cell;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `manifest.json`: what was run, where, with what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub harness_version: String,
    pub git_commit: String,
    pub created_utc: String,
    pub machine: Machine,
    pub suite: serde_json::Value,
    pub parameters: Parameters,
    /// Cells that could not be measured (server failed to start, crashed, ...).
    #[serde(default)]
    pub failures: Vec<Failure>,
    /// Cells of models this machine cannot run (io_uring disabled, say):
    /// recorded, not failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported: Vec<Unsupported>,
    /// `run --shard K/N`: which shard of the suite this set holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRecord>,
    /// `harness merge`: the result sets this one was merged from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedInput>,
    /// Which job engine started this run, if any, and the CPUs it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

/// Where a job engine put the run: a Slurm task or a Kubernetes pod may
/// share its node with other jobs, or be confined to fewer CPUs than the
/// node has, and its numbers are only as good as the CPUs it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// `Slurm`, `Kubernetes`, or none (started by hand or by a CI job).
    pub engine: Option<String>,
    /// The CPUs the run may use: the affinity mask it was started with
    /// (what a Slurm cgroup or a Kubernetes CPU manager leaves it).
    pub cpus: Vec<usize>,
    /// How many CPUs the machine has online, to compare with `cpus`.
    pub online_cpus: usize,
    /// The engine's variables, as the run saw them (job and task ids, node,
    /// CPUs the engine says it allocated).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub variables: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    pub hostname: String,
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub rustc: String,
    /// `/etc/machine-id` (or D-Bus's copy): one machine, whatever its
    /// hostname; empty when there is none (as in many containers).
    #[serde(default)]
    pub machine_id: String,
    /// The job engine's name for the node: Slurm's `SLURMD_NODENAME`, or
    /// `HARNESS_NODE_NAME` (set from `spec.nodeName` in the Kubernetes
    /// manifests under deploy/).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// The shard of a suite a result set holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// K of N, from 1.
    pub index: u32,
    pub total: u32,
    /// `--shard 2/4`, or the job engine and the variables it was read from.
    pub source: String,
    /// The rule that assigns cells to shards.
    pub assignment: String,
}

/// One input of a merged result set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedInput {
    /// The directory, as given to `harness merge`.
    pub dir: String,
    pub created_utc: String,
    pub git_commit: String,
    pub machine: Machine,
    /// A suite's shard: which one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRecord>,
    /// Which job engine ran it, on which CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// A load host's result set: the shares (K of N) it held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_shares: Vec<String>,
    pub cells: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Parameters {
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    pub repeat: u32,
    pub models: Vec<String>,
    pub command: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unsupported {
    pub label: String,
    pub scenario: String,
    pub repeat: u32,
    /// What the model said: the cause and the fix.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub label: String,
    pub scenario: String,
    pub repeat: u32,
    pub error: String,
}

impl Manifest {
    /// The manifest of a result set this harness starts writing at
    /// `started`: this harness's version and commit, this machine, `suite`,
    /// the CPUs and models, the command line; nothing failed yet.
    pub fn new(
        started: SystemTime,
        suite: serde_json::Value,
        cpus: &crate::cpus::CpuLayout,
        repeat: u32,
        models: Vec<String>,
    ) -> Manifest {
        Manifest {
            harness_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_commit: git_commit(),
            created_utc: humantime::format_rfc3339_seconds(started).to_string(),
            machine: Machine::this_one(),
            suite,
            parameters: Parameters {
                server_cpus: cpus.server.clone(),
                client_cpus: cpus.client.clone(),
                repeat,
                models,
                command: std::env::args().collect::<Vec<_>>().join(" "),
            },
            failures: Vec::new(),
            unsupported: Vec::new(),
            shard: None,
            merged_from: Vec::new(),
            placement: Some(crate::fleet::placement(&crate::fleet::environment)),
        }
    }
}

impl Machine {
    pub fn this_one() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| {
                line.strip_prefix("model name")
                    .and_then(|rest| rest.split_once(':'))
            })
            .map(|(_, name)| name.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let uname = nix::sys::utsname::uname().ok();
        Machine {
            hostname: hostname(),
            cpu_model,
            cores: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1)
                .max(crate::cpus::online().len()),
            kernel: uname
                .map(|u| {
                    format!(
                        "{} {}",
                        u.sysname().to_string_lossy(),
                        u.release().to_string_lossy()
                    )
                })
                .unwrap_or_else(|| "unknown".into()),
            rustc: env!("ECHOLAB_RUSTC_VERSION").to_owned(),
            machine_id: machine_id(),
            node: ["SLURMD_NODENAME", "HARNESS_NODE_NAME"]
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty())),
        }
    }
}

/// This machine's id (`machine-id(5)`), or empty.
fn machine_id() -> String {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|path| {
            std::fs::read_to_string(path)
                .ok()
                .map(|text| text.trim().to_owned())
                .filter(|id| !id.is_empty())
        })
        .unwrap_or_default()
}

/// Where a command writes when no `--out` is given:
/// `results/runs/STAMP-HOST{suffix}`, STAMP the start in UTC.
pub fn default_out_dir(started: SystemTime, suffix: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(started)
        .to_string()
        .replace([':', '-'], "");
    Path::new("results")
        .join("runs")
        .join(format!("{stamp}-{}{suffix}", hostname()))
}

/// Fails, after a run or a matrix has been written, if any of its `total`
/// cells could not be measured: the manifest lists them.
pub fn fail_on_failures(out: &Path, failures: usize, total: usize) -> anyhow::Result<()> {
    if failures > 0 {
        anyhow::bail!(
            "{failures} of {total} cells could not be measured (see 'failures' in {})",
            out.join("manifest.json").display()
        );
    }
    Ok(())
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The commit the harness runs from, with `-dirty` when tracked code (anything
/// outside `results/`) has changes;
/// `unknown` outside a git checkout.
pub fn git_commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "HEAD"]) {
        // Dirty means the code differs: result sets under results/ do not count.
        Some(commit) => match git(&[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ":/",
            ":!/results",
        ]) {
            Some(changes) if !changes.is_empty() => format!("{commit}-dirty"),
            _ => commit,
        },
        None => "unknown".into(),
    }
}

pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    super::files::write_json(&dir.join("manifest.json"), manifest)
}

/// Reads `dir/manifest.json`.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a manifest written by harness", path.display()))
}

/// One row of `summary.csv`.
#[derive(Debug, Serialize)]
struct SummaryRow<'a> {
    label: &'a str,
    model: &'a str,
    scenario: &'a str,
    repeat: u32,
    shape: &'a str,
    connections: u32,
    size: u32,
    idle: u32,
    rate: Option<f64>,
    messages: u64,
    msgs_per_sec: f64,
    connections_per_sec: Option<f64>,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
    errors: u64,
    starved_connections: u32,
    jain: f64,
    server_cpu_percent: Option<f64>,
    cpu_us_per_msg: Option<f64>,
    memory_kib: Option<u64>,
    pss_kib: Option<u64>,
    rss_peak_kib: Option<u64>,
    threads: Option<u64>,
    client_cpu_percent: f64,
    flags: String,
}

/// Writes `summary.csv`, one row per cell, in the order given.
pub fn write_summary<'a>(dir: &Path, cells: impl IntoIterator<Item = &'a Cell>) -> Result<()> {
    let path = dir.join("summary.csv");
    let mut writer =
        csv::Writer::from_path(&path).with_context(|| format!("cannot write {}", path.display()))?;
    for cell in cells {
        writer.serialize(SummaryRow {
            label: &cell.label,
            model: cell.model.as_deref().unwrap_or(""),
            scenario: &cell.scenario,
            repeat: cell.repeat,
            shape: cell.shape.as_str(),
            connections: cell.connections,
            size: cell.size,
            idle: cell.idle,
            rate: cell.rate,
            messages: cell.messages,
            msgs_per_sec: round2(cell.msgs_per_sec),
            connections_per_sec: cell.connections_per_sec.map(round2),
            p50_us: cell.latency_us.p50,
            p99_us: cell.latency_us.p99,
            p999_us: cell.latency_us.p999,
            max_us: cell.latency_us.max,
            errors: cell.errors.total(),
            starved_connections: cell.starved_connections,
            jain: cell.fairness.jain,
            server_cpu_percent: cell.server.as_ref().map(|s| round2(s.cpu_percent)),
            cpu_us_per_msg: cell.server.as_ref().map(|s| s.cpu_us_per_msg),
            memory_kib: cell.server.as_ref().and_then(|s| s.memory_kib()),
            pss_kib: cell.server.as_ref().and_then(|s| s.pss_kib),
            rss_peak_kib: cell.server.as_ref().map(|s| s.rss_peak_kib),
            threads: cell.server.as_ref().map(|s| s.threads),
            client_cpu_percent: round2(cell.client.cpu_percent),
            flags: cell
                .flags
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        })?;
    }
    writer
        .flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
