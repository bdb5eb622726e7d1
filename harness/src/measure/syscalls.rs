//! System calls of the server, counted by the kernel while it serves.
//!
//! One counting `perf_event` per tracepoint: `raw_syscalls:sys_enter` for all
//! calls, `syscalls:sys_enter_NAME` for each call in [`NAMED`], and
//! `syscalls:sys_exit_NAME` filtered on `ret == -EAGAIN` for the calls in
//! [`EAGAIN_WATCHED`] (the reads, writes and accepts that found nothing to
//! do). No sampling, no ring buffer, no tracer in the loop: the kernel adds 1
//! to a counter when the tracepoint fires, so the cost is one tracepoint hit
//! per event per call, measured in the instrument check (see README).
//!
//! The counters are opened on the thread that is about to spawn the server,
//! disabled, with `inherit` and `enable_on_exec`: the spawned process inherits
//! them, they switch on when it execs the server, and every thread and child
//! it creates afterwards inherits them too. Reading the opened counters gives
//! the sum over the whole process tree, living and exited. The spawning
//! thread's own calls are never counted (its counters stay disabled).
//!
//! Needs root, CAP_PERFMON or `kernel.perf_event_paranoid` ≤ 1, and tracefs
//! (mounted here at `/sys/kernel/tracing` if it is not and the harness may).
//! Where any of it is missing, [`SyscallCounters::open`] says why in one
//! sentence and the cell is measured without system calls.

use perf_event::Builder;
use perf_event::Counter;
use perf_event::events::Tracepoint;
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

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
    "shutdown",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "select",
    "pselect6",
    "poll",
    "ppoll",
    "io_uring_enter",
    "futex",
    "sched_yield",
    "nanosleep",
    "clock_nanosleep",
    "clone",
    "clone3",
    "wait4",
    "mmap",
    "munmap",
    "mprotect",
    "madvise",
    "brk",
    "ioctl",
    "fcntl",
    "setsockopt",
    "rt_sigprocmask",
];

/// The calls whose failures with EAGAIN are counted apart.
pub const EAGAIN_WATCHED: &[&str] = &[
    "read", "recvfrom", "recvmsg", "write", "sendto", "sendmsg", "accept", "accept4",
];

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

/// The counters of one server's process tree.
pub struct SyscallCounters {
    total: Counter,
    named: Vec<(&'static str, Counter)>,
    eagain: Vec<(&'static str, Counter)>,
}

impl SyscallCounters {
    /// Opens the counters on the calling thread, to be inherited by the
    /// process it spawns next and enabled when that process execs. Err is
    /// the reason they are unavailable, as one sentence.
    pub fn open() -> Result<SyscallCounters, String> {
        let events = events_dir()?;
        let total = counter(&events, "raw_syscalls/sys_enter", None)?;
        let mut named = Vec::with_capacity(NAMED.len());
        for &name in NAMED {
            // A call this kernel lacks (or names otherwise) is left to "other".
            if let Ok(counter) = counter(&events, &format!("syscalls/sys_enter_{name}"), None) {
                named.push((name, counter));
            }
        }
        let mut eagain = Vec::with_capacity(EAGAIN_WATCHED.len());
        let filter = format!("ret == {EAGAIN_RETURN}");
        for &name in EAGAIN_WATCHED {
            if let Ok(counter) = counter(&events, &format!("syscalls/sys_exit_{name}"), Some(&filter)) {
                eagain.push((name, counter));
            }
        }
        Ok(SyscallCounters { total, named, eagain })
    }

    /// The counts so far, summed over the tree.
    pub fn read(&mut self) -> std::io::Result<SyscallCounts> {
        let mut counts = SyscallCounts {
            total: self.total.read()?,
            ..SyscallCounts::default()
        };
        for (name, counter) in &mut self.named {
            counts.named.insert(name, counter.read()?);
        }
        for (name, counter) in &mut self.eagain {
            counts.eagain.insert(name, counter.read()?);
        }
        Ok(counts)
    }
}

/// One counter on a tracepoint, on this thread: disabled, inherited, enabled
/// at exec, kernel events included (tracepoints fire in the kernel).
fn counter(events: &Path, tracepoint: &str, filter: Option<&str>) -> Result<Counter, String> {
    let id_file = events.join(tracepoint).join("id");
    let id: u64 = std::fs::read_to_string(&id_file)
        .map_err(|error| format!("no tracepoint {tracepoint} ({}: {error})", id_file.display()))?
        .trim()
        .parse()
        .map_err(|_| format!("{} is not a tracepoint id", id_file.display()))?;
    let counter = Builder::new(Tracepoint::with_id(id))
        .observe_self()
        .any_cpu()
        .include_kernel()
        .inherit(true)
        .enabled(false)
        .enable_on_exec(true)
        .build()
        .map_err(|error| match error.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => format!(
                "perf_event_open is not permitted ({error}): run as root, grant CAP_PERFMON, or set kernel.perf_event_paranoid to 1 or less"
            ),
            _ => format!("perf_event_open on {tracepoint} failed: {error}"),
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
