//! System calls of the server, counted by the kernel while it serves.
//!
//! One counting `perf_event` per tracepoint and CPU:
//! `raw_syscalls:sys_enter` for all calls, `syscalls:sys_enter_NAME` for each
//! call in [`NAMED`], and `syscalls:sys_exit_NAME` filtered on
//! `ret == -EAGAIN` for the calls in [`EAGAIN_WATCHED`] (the reads, writes and
//! accepts that found nothing to do). No sampling, no ring buffer, no tracer
//! in the loop: the kernel adds 1 to a counter when the tracepoint fires.
//!
//! Whose calls: every server the harness spawns starts inside a cgroup of
//! the harness's own (the child moves itself there between fork and exec),
//! and the counters are cgroup events on each CPU: they count the
//! calls of every thread and process of the server's tree, and of nothing
//! else, however many threads or children it makes, at no cost when it
//! makes them (per-task counters inherited by each new thread would charge
//! every `clone` for copying them). The counters and the cgroup are made once
//! per harness process and read at both ends of each cell's measurement;
//! cells run one at a time, so the differences are the cell's.
//!
//! What it costs the measurement: while syscall tracepoints are in use, every
//! system call on the machine takes the kernel's slower traced path, and each
//! counted call runs its tracepoints; the README quotes the difference with
//! and without (`--no-syscalls`). Opening the counters takes tens of
//! milliseconds once; closing them, at the harness's exit, one RCU grace
//! period per tracepoint.
//!
//! Needs root (CPU-wide cgroup events need CAP_PERFMON or
//! `kernel.perf_event_paranoid` ≤ 0, and the cgroup must be writable), tracefs
//! (mounted at `/sys/kernel/tracing` if it is not and the harness may) and a
//! cgroup hierarchy with the perf_event controller. Where any of it is
//! missing, [`Counters::shared`] says why in one sentence and cells are
//! measured without system calls.

use perf_event::Builder;
use perf_event::Counter;
use perf_event::events::Tracepoint;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The calls counted by name: what an echo server does per message and per
/// connection under every model, and what a runtime does around them.
pub const NAMED: &[&str] = &[
    "read",
    "write",
    "readv",
    "writev",
    "recvfrom",
    "sendto",
    "recvmsg",
    "sendmsg",
    "accept",
    "accept4",
    "close",
    "epoll_wait",
    "epoll_pwait",
    "epoll_ctl",
    "select",
    "pselect6",
    "poll",
    "ppoll",
    "io_uring_enter",
    "futex",
    "sched_yield",
    "clone",
    "clone3",
    "wait4",
    "mmap",
    "munmap",
];

/// The calls whose failures with EAGAIN are counted apart.
pub const EAGAIN_WATCHED: &[&str] = &["read", "recvfrom", "recvmsg", "write", "sendto", "accept4"];

/// `-EAGAIN` as a syscall's return value.
const EAGAIN_RETURN: i64 = -(libc::EAGAIN as i64);

/// Counts read at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyscallCounts {
    pub total: u64,
    pub named: BTreeMap<&'static str, u64>,
    pub eagain: BTreeMap<&'static str, u64>,
}

impl SyscallCounts {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &SyscallCounts) -> SyscallCounts {
        let delta = |now: &BTreeMap<&'static str, u64>, then: &BTreeMap<&'static str, u64>| {
            now.iter()
                .map(|(&name, &count)| (name, count.saturating_sub(then.get(name).copied().unwrap_or(0))))
                .collect()
        };
        SyscallCounts {
            total: self.total.saturating_sub(earlier.total),
            named: delta(&self.named, &earlier.named),
            eagain: delta(&self.eagain, &earlier.eagain),
        }
    }
}

/// The harness's counters: per CPU, one counter per tracepoint, for the
/// harness's cgroup (every server it spawns).
pub struct Counters {
    total: Vec<Counter>,
    named: Vec<(&'static str, Vec<Counter>)>,
    eagain: Vec<(&'static str, Vec<Counter>)>,
}

/// Shared by every server the harness spawns: made at the first spawn.
static COUNTERS: OnceLock<Result<Mutex<Counters>, String>> = OnceLock::new();

impl Counters {
    /// The harness's counters, made on first use for every online CPU (a
    /// server runs on some of them); Err is why system calls cannot be
    /// counted, as one sentence.
    pub fn shared() -> Result<&'static Mutex<Counters>, String> {
        COUNTERS
            .get_or_init(|| {
                // Every online CPU, not this thread's affinity: the thread
                // that first asks may already be pinned to the client CPUs.
                let cpus = crate::cpus::online();
                Counters::open(&cpus).map(Mutex::new)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn open(cpus: &[usize]) -> Result<Counters, String> {
        if cpus.is_empty() {
            return Err(String::from("the server's CPUs are unknown"));
        }
        let events = events_dir()?;
        let cgroup = crate::server::cgroup::harness()?;
        let on_every_cpu = |tracepoint: &str, filter: Option<&str>| -> Result<Vec<Counter>, String> {
            let id = tracepoint_id(&events, tracepoint)?;
            cpus.iter()
                .map(|&cpu| counter(id, tracepoint, filter, &cgroup.dir_file, cpu))
                .collect()
        };
        let total = on_every_cpu("raw_syscalls/sys_enter", None)?;
        let mut named = Vec::with_capacity(NAMED.len());
        for &name in NAMED {
            // A call this kernel lacks (or names otherwise) is left to "other".
            if let Ok(counters) = on_every_cpu(&format!("syscalls/sys_enter_{name}"), None) {
                named.push((name, counters));
            }
        }
        let filter = format!("ret == {EAGAIN_RETURN}");
        let mut eagain = Vec::with_capacity(EAGAIN_WATCHED.len());
        for &name in EAGAIN_WATCHED {
            if let Ok(counters) = on_every_cpu(&format!("syscalls/sys_exit_{name}"), Some(&filter)) {
                eagain.push((name, counters));
            }
        }
        Ok(Counters { total, named, eagain })
    }

    /// The counts so far, summed over the CPUs.
    pub fn read(&mut self) -> std::io::Result<SyscallCounts> {
        let sum = |counters: &mut Vec<Counter>| -> std::io::Result<u64> {
            counters.iter_mut().map(Counter::read).sum()
        };
        let mut counts = SyscallCounts {
            total: sum(&mut self.total)?,
            ..SyscallCounts::default()
        };
        for (name, counters) in &mut self.named {
            counts.named.insert(name, sum(counters)?);
        }
        for (name, counters) in &mut self.eagain {
            counts.eagain.insert(name, sum(counters)?);
        }
        Ok(counts)
    }
}

/// The id of `tracepoint` (e.g. `raw_syscalls/sys_enter`) under tracefs's
/// `events`.
fn tracepoint_id(events: &Path, tracepoint: &str) -> Result<u64, String> {
    let id_file = events.join(tracepoint).join("id");
    std::fs::read_to_string(&id_file)
        .map_err(|error| format!("no tracepoint {tracepoint} ({}: {error})", id_file.display()))?
        .trim()
        .parse()
        .map_err(|_| format!("{} is not a tracepoint id", id_file.display()))
}

/// One counter on the tracepoint `id` (named `tracepoint`), for the
/// cgroup's tasks on `cpu`.
fn counter(
    id: u64,
    tracepoint: &str,
    filter: Option<&str>,
    cgroup: &File,
    cpu: usize,
) -> Result<Counter, String> {
    let counter = Builder::new(Tracepoint::with_id(id))
        .observe_cgroup(cgroup)
        .one_cpu(cpu)
        .include_kernel()
        .enabled(true)
        .build()
        .map_err(|error| match error.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => format!(
                "perf_event_open is not permitted ({error}): run as root, grant CAP_PERFMON, or set kernel.perf_event_paranoid to 0 or less"
            ),
            _ => format!("perf_event_open on {tracepoint} for a cgroup on CPU {cpu} failed: {error}"),
        })?;
    if let Some(filter) = filter {
        set_filter(&counter, filter)
            .map_err(|error| format!("cannot filter {tracepoint} on '{filter}': {error}"))?;
    }
    Ok(counter)
}

/// `PERF_EVENT_IOC_SET_FILTER`: only events whose fields match `filter`
/// (ftrace filter syntax, e.g. `ret == -11`) are counted.
#[allow(unsafe_code)]
fn set_filter(counter: &Counter, filter: &str) -> std::io::Result<()> {
    let filter = std::ffi::CString::new(filter).map_err(std::io::Error::other)?;
    // SAFETY: the descriptor is a live perf event owned by `counter`, and the
    // kernel only reads the NUL-terminated string, which outlives the call.
    let result =
        unsafe { perf_event_open_sys::ioctls::SET_FILTER(counter.as_raw_fd(), filter.as_ptr().cast_mut()) };
    if result < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Where tracefs lists events; mounts tracefs at `/sys/kernel/tracing` when
/// no tracefs is mounted and the harness is allowed to mount it.
fn events_dir() -> Result<PathBuf, String> {
    const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"];
    let found = || {
        CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|dir| dir.join("raw_syscalls").is_dir())
    };
    if let Some(dir) = found() {
        return Ok(dir);
    }
    let mounted = nix::mount::mount(
        Some("tracefs"),
        "/sys/kernel/tracing",
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    );
    match (mounted, found()) {
        (_, Some(dir)) => Ok(dir),
        (Err(error), None) => Err(format!(
            "tracefs is not mounted and cannot be ({error}): mount it with `mount -t tracefs nodev /sys/kernel/tracing` as root"
        )),
        (Ok(()), None) => Err(String::from(
            "tracefs has no raw_syscalls events (a kernel without syscall tracepoints)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_subtract_name_by_name() {
        let earlier = SyscallCounts {
            total: 10,
            named: BTreeMap::from([("read", 4), ("write", 5)]),
            eagain: BTreeMap::from([("read", 1)]),
        };
        let later = SyscallCounts {
            total: 30,
            named: BTreeMap::from([("read", 14), ("write", 9)]),
            eagain: BTreeMap::from([("read", 3)]),
        };
        let delta = later.since(&earlier);
        assert_eq!(delta.total, 20);
        assert_eq!(delta.named, BTreeMap::from([("read", 10), ("write", 4)]));
        assert_eq!(delta.eagain, BTreeMap::from([("read", 2)]));
    }
}
