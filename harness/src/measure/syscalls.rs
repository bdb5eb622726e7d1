//! System calls of the server, counted by the kernel, outside the timed
//! window.
//!
//! One counting `perf_event` per tracepoint and CPU:
//! `raw_syscalls:sys_enter` for all calls, `syscalls:sys_enter_NAME` for each
//! call in [`NAMED`], and `syscalls:sys_exit_NAME` filtered on
//! `ret == -EAGAIN` for the calls in [`EAGAIN_WATCHED`] (the reads, writes and
//! accepts that found nothing to do). No sampling, no ring buffer: the kernel
//! adds 1 to a counter when the tracepoint fires. A tracepoint per call
//! rather than filters on `raw_syscalls` (`id == N`), although detaching 33
//! tracepoints takes about a second where two take 55 to 85 ms: with every
//! filter on the one tracepoint, each call ran all 35 of them, and the
//! slower server of the counting phase batched more messages per read than
//! it did in the window (a prefork server read 2.5 messages per `recvfrom`
//! instead of about one), so its figures no longer described the window.
//!
//! Whose calls: every server the harness spawns runs in a cgroup of its own
//! ([`crate::server::cgroup`]), and the counters are cgroup events on each
//! CPU: they count the calls of every thread and process of the server's
//! tree, and of nothing else, however many threads or children it makes.
//!
//! When: never while a cell's window is timed. Attaching the first probe to
//! a syscall tracepoint sets the traced-syscall work flag on every thread of
//! the machine (the cgroup filter applies only afterwards), so every system
//! call, the load generator's included, takes the kernel's slow path, and
//! each counted call builds a perf record per event: a cost per call, so a
//! model that makes three calls per message pays several times what one
//! that makes 0.3 pays (`cargo bench -p harness --bench instrument_check`
//! measures it, counters open against closed). So a cell counts in a phase of its own after the window ([`crate::cell`]): the
//! same connections under the same load, counters opened before it and
//! closed after it, and the per-message figures are that phase's calls over
//! that phase's messages. [`Counters::close`] closes the counters in the
//! background (about half a second for the 21 tracepoints), while the server is
//! stopped and the next one started, and the next cell waits for them
//! ([`wait_closed`]) before its load starts.
//!
//! A BPF program on syscall entry and exit would cost less per call and set
//! no slow-path flag, but it needs a BPF toolchain the two README commands do
//! not install; the counting phase needs nothing but the kernel.
//!
//! Needs root (CPU-wide cgroup events need CAP_PERFMON or
//! `kernel.perf_event_paranoid` ≤ 0, and the cgroup must be writable), tracefs
//! (mounted at `/sys/kernel/tracing` if it is not and the harness may) and a
//! cgroup hierarchy with the perf_event controller. Where any of it is
//! missing, [`Counters::open`] says why in one sentence and the cell is
//! measured without system calls.

use perf_event::Builder;
use perf_event::Counter;
use perf_event::events::Tracepoint;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The calls counted by name: what an echo server does per message and per
/// connection under every model (its reads, writes, waits and accepts),
/// and the futex its runtime's threads meet on. Every other call is counted
/// in `other`. Each name is a tracepoint to detach after the counting phase
/// (an RCU grace period each, one after the other), so the list holds what
/// the models' docs, the tour and the report read, and no more.
pub const NAMED: &[&str] = &[
    "read",
    "write",
    "writev",
    "recvfrom",
    "sendto",
    "recvmmsg",
    "sendmmsg",
    "accept4",
    "close",
    "epoll_wait",
    "epoll_pwait",
    "epoll_ctl",
    "select",
    "pselect6",
    "poll",
    "io_uring_enter",
    "futex",
];

/// The calls whose failures with EAGAIN are counted apart.
pub const EAGAIN_WATCHED: &[&str] = &["read", "recvfrom", "accept4"];

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

/// Counters on one server's cgroup: per CPU, one counter per tracepoint.
/// Opened for a cell's counting phase and closed at its end
/// ([`Counters::close`]), so that no tracepoint is attached while the next
/// window is timed.
pub struct Counters {
    total: Vec<Counter>,
    named: Vec<(&'static str, Vec<Counter>)>,
    eagain: Vec<(&'static str, Vec<Counter>)>,
}

/// Counters being closed in the background, and when the closing began.
static CLOSING: Mutex<Vec<std::thread::JoinHandle<()>>> = Mutex::new(Vec::new());

/// Why the first counters this process tried to open were refused: later
/// cells do not try again (nor run a counting phase for nothing).
static REFUSED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Why counters cannot be opened here, once they have been refused.
pub fn refused() -> Option<String> {
    REFUSED.get().cloned()
}

impl Counters {
    /// Counters for every thread and process of `cgroup` (an open cgroup
    /// directory) on every online CPU; Err is why system calls cannot be
    /// counted, as one sentence.
    pub fn open(cgroup: &File) -> Result<Counters, String> {
        Counters::try_open(cgroup).inspect_err(|reason| {
            let _ = REFUSED.set(reason.clone());
        })
    }

    fn try_open(cgroup: &File) -> Result<Counters, String> {
        // Every online CPU, not this thread's affinity: the server runs on
        // CPUs this thread is not pinned to.
        let cpus = crate::cpus::online();
        if cpus.is_empty() {
            return Err(String::from("the server's CPUs are unknown"));
        }
        let events = events_dir()?;
        let on_every_cpu = |tracepoint: &str, filter: Option<&str>| -> Result<Vec<Counter>, String> {
            let id = tracepoint_id(&events, tracepoint)?;
            cpus.iter()
                .map(|&cpu| counter(id, tracepoint, filter, cgroup, cpu))
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

    /// Closes the counters in the background. Detaching a tracepoint's
    /// last counter waits for RCU grace periods, one tracepoint after the
    /// other (about a second for all); [`wait_closed`] waits until they are
    /// gone.
    pub fn close(self) {
        let mut closing = CLOSING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // A thread that cannot be made drops its closure, and so closes the
        // counters, here.
        if let Ok(handle) = std::thread::Builder::new()
            .name("syscalls-close".into())
            .spawn(move || drop(self))
        {
            closing.push(handle);
        }
    }
}

/// Waits until every counter [`Counters::close`] was given is closed: the
/// syscall tracepoints are then detached, and no thread on the machine takes
/// the traced slow path on their account. Returns how long it waited.
pub fn wait_closed() -> std::time::Duration {
    let started = std::time::Instant::now();
    let handles = std::mem::take(&mut *CLOSING.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    for handle in handles {
        let _ = handle.join();
    }
    started.elapsed()
}

/// How many perf events this process holds open now (its descriptors that
/// are `anon_inode:[perf_event]`): zero while a window is timed.
pub fn perf_events_open_here() -> usize {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    fds.flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == "anon_inode:[perf_event]")
        })
        .count()
}

/// What traced system calls during a window in which the harness held
/// `perf_events` perf events open: a sentence for the cell.
pub fn describe_window(perf_events: usize) -> String {
    let mut text = match perf_events {
        0 => String::from("no perf event open in the harness"),
        count => format!("{count} perf events open in the harness (its counters were attached)"),
    };
    if ftrace_syscalls_enabled() {
        text.push_str("; ftrace's raw_syscalls events were enabled by another tool");
    }
    text
}

/// Whether ftrace's `raw_syscalls` events are enabled (by `trace-cmd`, say):
/// then every system call on the machine is traced, whoever asked.
fn ftrace_syscalls_enabled() -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|root| {
            std::fs::read_to_string(format!("{root}/events/raw_syscalls/enable"))
                .is_ok_and(|state| matches!(state.trim(), "1" | "X"))
        })
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
