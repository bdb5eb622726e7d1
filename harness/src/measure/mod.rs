//! Watching what runs during a cell: the server's process tree, sampled from
//! `/proc`, and the harness itself, whose own threads (everything but the
//! load threads) are measured over the same window so that a cell says how
//! much the instrument cost. [`clock`] reads what the kernel says of the
//! wall clock, for load hosts that agree on a start instant.

pub mod clock;
pub mod machine;

pub mod syscalls;

use crate::server::tree::{self, ProcStat};
use nix::sys::resource::{UsageWho, getrusage};
use std::time::{Duration, Instant};

/// `/proc/PID/stat` counts CPU time in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SECOND: u64 = 100;

/// CPU time (user + system) of the calling thread so far.
pub fn thread_cpu_time() -> Duration {
    match getrusage(UsageWho::RUSAGE_THREAD) {
        Ok(usage) => timeval(usage.user_time()) + timeval(usage.system_time()),
        Err(_) => Duration::ZERO,
    }
}

fn timeval(value: nix::sys::time::TimeVal) -> Duration {
    Duration::from_secs(value.tv_sec().max(0) as u64) + Duration::from_micros(value.tv_usec().max(0) as u64)
}

/// The id of the calling thread, as `/proc/self/task/TID` names it.
pub fn thread_id() -> i32 {
    nix::unistd::gettid().as_raw()
}

/// Trees of at most this many processes also record each one's CPU.
const PER_PROCESS_LIMIT: usize = 64;

/// One look at a server's process tree, summed over its processes.
#[derive(Debug, Clone, Default)]
pub struct TreeSample {
    /// User + system CPU time of every process of the tree, with the time of
    /// the children each has reaped (so an exited worker's time stays counted).
    pub cpu: Duration,
    pub rss_kib: u64,
    /// Sum of each process's peak resident set (VmHWM); detailed samples only.
    pub rss_peak_kib: u64,
    /// Sum of each process's address space (VmSize: reserved, touched or
    /// not, e.g. every thread's whole stack); detailed samples only.
    pub vm_kib: u64,
    pub threads: u64,
    pub processes: u64,
    /// Summed over the living threads of the tree (detailed samples only).
    pub ctx_voluntary: u64,
    pub ctx_involuntary: u64,
    pub fds: u64,
    /// (pid, CPU time) of each process, for trees of 2 to
    /// [`PER_PROCESS_LIMIT`] processes.
    pub per_process: Vec<(i32, Duration)>,
    /// The memory charged to the server's memory cgroup now, socket buffers
    /// left out (KiB; [`crate::server::memory::MemoryCgroup::charged_kib`]);
    /// `None` without one.
    pub charged_kib: Option<u64>,
}

/// A server of more processes than this (a process per client) is sampled
/// every [`LARGE_TREE_SAMPLE_EVERY`], in detail only when asked: reading
/// every process's files five times a second would cost the harness more
/// than the load it generates.
pub const LARGE_TREE: u64 = 64;
const LARGE_TREE_SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Every how many samples one is detailed (context switches, fds, VmHWM).
const DETAILED_EVERY: u64 = 5;

/// How a spawned server is sampled while it is measured, the same in every
/// command that measures (a cell, a fault cell): its process tree from
/// `/proc`; its CPU time from its cgroup where the cgroup keeps it (to the
/// microsecond, exited processes included, where `/proc`'s per-process
/// ticks are not); the memory charged to its memory cgroup. In detail every
/// [`DETAILED_EVERY`]th sample and whenever asked; every
/// [`LARGE_TREE_SAMPLE_EVERY`] once the tree has had more than
/// [`LARGE_TREE`] processes.
pub struct Sampler {
    every: Duration,
    samples: u64,
    peak_processes: u64,
}

impl Sampler {
    /// Samples every `every` while the tree is small.
    pub fn new(every: Duration) -> Sampler {
        Sampler {
            every,
            samples: 0,
            peak_processes: 0,
        }
    }

    /// Samples `server` now, in detail if `detailed` or if this sample's
    /// turn has come; `None` once it is gone.
    pub fn sample(
        &mut self,
        server: &mut crate::server::process::ServerProcess,
        detailed: bool,
    ) -> Option<(Instant, TreeSample)> {
        let large = self.peak_processes > LARGE_TREE;
        let detailed = detailed || (!large && self.samples.is_multiple_of(DETAILED_EVERY));
        self.samples += 1;
        let at = Instant::now();
        let mut sample = sample_tree(server.pid(), detailed)?;
        if let Some(cpu) = server.cgroup_cpu_time() {
            sample.cpu = cpu;
        }
        if let Ok(memory) = server.memory() {
            memory.sample();
            sample.charged_kib = memory.charged_kib();
        }
        self.peak_processes = self.peak_processes.max(sample.processes);
        Some((at, sample))
    }

    /// How long until the next sample is due.
    pub fn interval(&self) -> Duration {
        if self.peak_processes > LARGE_TREE {
            LARGE_TREE_SAMPLE_EVERY.max(self.every)
        } else {
            self.every
        }
    }
}

/// Samples the tree led by `root`. A plain sample costs one read of
/// `/proc/*/stat` per process on the machine (to find the tree); `detailed`
/// also reads each member's status, every thread's status (context
/// switches) and its fd directory, which is costly with thousands of threads
/// or connections, so only at the ends of the measurement and now and then.
/// `None` when the root is gone.
pub fn sample_tree(root: u32, detailed: bool) -> Option<TreeSample> {
    let members = tree::members_of(&tree::scan(), root as i32);
    if !members.iter().any(|process| process.pid == root as i32) {
        return None;
    }
    Some(sum_members(&members, detailed))
}

fn sum_members(members: &[ProcStat], detailed: bool) -> TreeSample {
    let page_kib = page_size() / 1024;
    let mut sample = TreeSample {
        processes: members.len() as u64,
        ..TreeSample::default()
    };
    let mut ticks = 0;
    for process in members {
        ticks += process.cpu_ticks;
        sample.threads += process.threads;
        sample.rss_kib += process.rss_pages * page_kib;
        if detailed {
            add_details(process.pid, &mut sample);
        }
    }
    sample.cpu = Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND);
    if (2..=PER_PROCESS_LIMIT).contains(&members.len()) {
        sample.per_process = members
            .iter()
            .map(|process| {
                (
                    process.pid,
                    Duration::from_millis(process.cpu_ticks * 1000 / TICKS_PER_SECOND),
                )
            })
            .collect();
    }
    sample
}

/// The sum of the proportional set sizes of the tree led by `root`, in KiB
/// (`Pss` of each process's `/proc/PID/smaps_rollup`: a page shared by N
/// processes counts 1/N in each, so each page once in the sum). `None` when
/// the root is gone or no process's rollup could be read. Walking every
/// mapping's page tables costs about a millisecond a process: read once,
/// after the window.
pub fn pss_kib(root: u32) -> Option<u64> {
    let members = tree::members_of(&tree::scan(), root as i32);
    let sums: Vec<u64> = members
        .iter()
        .filter_map(|process| {
            let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", process.pid)).ok()?;
            rollup
                .lines()
                .find_map(|line| line.strip_prefix("Pss:"))
                .map(first_number)
        })
        .collect();
    (!sums.is_empty()).then(|| sums.iter().sum())
}

/// VmHWM, context switches of every thread, open fds.
fn add_details(pid: i32, sample: &mut TreeSample) {
    let root = format!("/proc/{pid}");
    if let Ok(status) = std::fs::read_to_string(format!("{root}/status")) {
        for line in status.lines() {
            if let Some(value) = line.strip_prefix("VmHWM:") {
                sample.rss_peak_kib += first_number(value);
            } else if let Some(value) = line.strip_prefix("VmSize:") {
                sample.vm_kib += first_number(value);
            }
        }
    }
    if let Ok(tasks) = std::fs::read_dir(format!("{root}/task")) {
        for task in tasks.flatten() {
            let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
                continue;
            };
            for line in status.lines() {
                if let Some(value) = line.strip_prefix("voluntary_ctxt_switches:") {
                    sample.ctx_voluntary += first_number(value);
                } else if let Some(value) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
                    sample.ctx_involuntary += first_number(value);
                }
            }
        }
    }
    if let Ok(fds) = std::fs::read_dir(format!("{root}/fd")) {
        sample.fds += fds.count() as u64;
    }
}

fn first_number(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |size| size as u64)
}

/// Samples of the server over the measurement: the first, the last, peaks.
#[derive(Debug, Default)]
pub struct Watch {
    pub pid: u32,
    pub first: Option<(Instant, TreeSample)>,
    pub last: Option<(Instant, TreeSample)>,
    pub peak_rss_kib: u64,
    /// Largest address space seen (detailed samples).
    pub peak_vm_kib: u64,
    pub peak_threads: u64,
    pub peak_processes: u64,
    pub peak_fds: u64,
}

impl Watch {
    /// Adds a sample whose reading started at `now`.
    pub fn add(&mut self, now: Instant, sample: TreeSample) {
        self.peak_rss_kib = self.peak_rss_kib.max(sample.rss_kib).max(sample.rss_peak_kib);
        self.peak_vm_kib = self.peak_vm_kib.max(sample.vm_kib);
        self.peak_threads = self.peak_threads.max(sample.threads);
        self.peak_processes = self.peak_processes.max(sample.processes);
        self.peak_fds = self.peak_fds.max(sample.fds);
        if self.first.is_none() {
            self.first = Some((now, sample.clone()));
        }
        self.last = Some((now, sample));
    }

    /// Each process's CPU percentage between the first and the last sample,
    /// in pid order, for the processes in both (empty for one process or
    /// too many).
    pub fn process_cpu_percent(&self) -> Vec<f64> {
        let (Some((start, first)), Some((end, last))) = (&self.first, &self.last) else {
            return Vec::new();
        };
        let wall = end.duration_since(*start).as_secs_f64();
        if wall <= 0.0 {
            return Vec::new();
        }
        let mut percents: Vec<(i32, f64)> = last
            .per_process
            .iter()
            .filter_map(|(pid, cpu)| {
                let (_, before) = first.per_process.iter().find(|(known, _)| known == pid)?;
                Some((*pid, 100.0 * cpu.saturating_sub(*before).as_secs_f64() / wall))
            })
            .collect();
        percents.sort_by_key(|(pid, _)| *pid);
        percents.into_iter().map(|(_, percent)| percent).collect()
    }

    /// (CPU time, wall time, voluntary, involuntary context switches) between
    /// the first and the last sample.
    pub fn deltas(&self) -> (Duration, Duration, u64, u64) {
        match (&self.first, &self.last) {
            (Some((start, first)), Some((end, last))) => (
                last.cpu.saturating_sub(first.cpu),
                end.duration_since(*start),
                last.ctx_voluntary.saturating_sub(first.ctx_voluntary),
                last.ctx_involuntary.saturating_sub(first.ctx_involuntary),
            ),
            _ => (Duration::ZERO, Duration::ZERO, 0, 0),
        }
    }
}

/// CPU time of the harness's own threads except `load_threads`: the main
/// thread (pacing, sampling, progress), the server's keeper and pipe readers,
/// the signal thread. Read from `/proc/self/task/*/schedstat` (nanoseconds),
/// or from the threads' tick counts where schedstat is missing.
pub fn harness_cpu_except(load_threads: &[i32]) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut total = Duration::ZERO;
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        if load_threads.contains(&tid) {
            continue;
        }
        let on_cpu = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
            .map(Duration::from_nanos)
            .or_else(|| {
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                let process = tree::parse_stat(&stat)?;
                Some(Duration::from_millis(process.cpu_ticks * 1000 / TICKS_PER_SECOND))
            });
        total += on_cpu.unwrap_or_default();
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_sees_its_own_busy_thread_and_can_leave_it_out() {
        let (tid_sender, tid) = std::sync::mpsc::channel();
        let busy = std::thread::spawn(move || {
            tid_sender.send(thread_id()).unwrap();
            let until = Instant::now() + Duration::from_millis(600);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        });
        let busy_tid = tid.recv().unwrap();
        let (all_before, others_before) = (harness_cpu_except(&[]), harness_cpu_except(&[busy_tid]));
        std::thread::sleep(Duration::from_millis(300));
        let (all_after, others_after) = (harness_cpu_except(&[]), harness_cpu_except(&[busy_tid]));
        busy.join().unwrap();
        // (Other tests run in this process too, and their threads end: the
        // totals may shrink between two samples. Only the excluded thread's
        // share, all minus others at each sample, is certain.)
        let others = others_after.saturating_sub(others_before);
        let busy_before = all_before.saturating_sub(others_before);
        let busy_share = all_after.saturating_sub(others_after).saturating_sub(busy_before);
        assert!(
            busy_share >= Duration::from_millis(50),
            "busy thread: {busy_share:?}, others {others:?}"
        );
    }

    #[test]
    fn this_process_is_sampled_as_a_tree() {
        let sample = sample_tree(std::process::id(), true).unwrap();
        assert!(sample.processes >= 1 && sample.threads >= 1 && sample.fds > 0);
        assert!(sample.rss_kib > 0 && sample.rss_peak_kib >= sample.rss_kib / 2);
        assert!(
            sample.vm_kib >= sample.rss_kib,
            "address space below the resident set: {sample:?}"
        );
        // One process: its PSS is at most its resident set.
        let pss = pss_kib(std::process::id()).unwrap();
        assert!(
            pss > 0 && pss <= sample.rss_kib + 1024,
            "PSS {pss} KiB, RSS {} KiB",
            sample.rss_kib
        );
    }
}
