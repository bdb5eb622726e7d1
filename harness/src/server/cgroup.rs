//! A cgroup per spawned server, so that the kernel itself keeps track of its
//! whole process tree.
//!
//! The harness makes one cgroup of its own, `echolab-harness-PID`, in the
//! hierarchy that has the perf_event controller (cgroup v2 on current
//! systems), and under it one cgroup per server it spawns; the server moves
//! itself in between fork and exec, and every thread and process it starts
//! stays there (unless it moves itself out, which servers do not). That
//! gives, for the tree and nothing else:
//!
//! - its CPU time, exited processes included, to the microsecond
//!   (`cpu.stat`, cgroup v2), where `/proc/PID/stat` counts whole clock
//!   ticks per process (a thousand processes that each ran 3 ms read 0);
//! - every process still in it (`cgroup.procs`), and `cgroup.kill`;
//! - the target of the system-call counters ([`crate::measure::syscalls`]),
//!   opened on the server's cgroup for a cell's counting phase.
//!
//! Making cgroups needs root. Where it fails, servers run where the harness
//! runs, and CPU time comes from `/proc` (summed ticks) as before; the
//! reason is kept for the cells that would have used it.

use super::memory::MemoryCgroup;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The harness's own cgroup, made on first use.
pub struct HarnessCgroup {
    pub dir: PathBuf,
    /// cgroup v2: its children have `cpu.stat` and `cgroup.kill`.
    v2: bool,
}

static HARNESS: OnceLock<Result<HarnessCgroup, String>> = OnceLock::new();

/// The harness's cgroup, or why there is none.
pub fn harness() -> Result<&'static HarnessCgroup, String> {
    HARNESS
        .get_or_init(HarnessCgroup::create)
        .as_ref()
        .map_err(Clone::clone)
}

/// Removes the harness's cgroup (once every server is gone). Call once, at
/// the end of the harness's work.
pub fn remove_harness() {
    super::memory::remove_parent();
    if let Some(Ok(harness)) = HARNESS.get() {
        let _ = std::fs::remove_dir(&harness.dir);
    }
}

impl HarnessCgroup {
    fn create() -> Result<HarnessCgroup, String> {
        let (root, v2) = perf_event_hierarchy()?;
        remove_stale(&root);
        let dir = root.join(format!("echolab-harness-{}", std::process::id()));
        make_dir(&dir)?;
        Ok(HarnessCgroup { dir, v2 })
    }
}

/// One server's cgroup, removed when dropped (once its processes are gone).
pub struct ServerCgroup {
    dir: PathBuf,
    /// `cgroup.procs`, open for writing: the child writes "0" to it between
    /// fork and exec to move itself in.
    pub procs: File,
    v2: bool,
    /// Its memory cgroup ([`super::memory`]), or why there is none.
    pub memory: Result<MemoryCgroup, String>,
}

impl ServerCgroup {
    /// A new, empty cgroup for the next server.
    pub fn create() -> Result<ServerCgroup, String> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let harness = harness()?;
        let name = format!("server-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = harness.dir.join(&name);
        make_dir(&dir)?;
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(|error| format!("cannot open {}/cgroup.procs: {error}", dir.display()))?;
        Ok(ServerCgroup {
            memory: MemoryCgroup::create(&dir, harness.v2, &name),
            dir,
            procs,
            v2: harness.v2,
        })
    }

    /// CPU time (user + system) of every process that has run in it, living
    /// or exited; `None` without cgroup v2's `cpu.stat`.
    pub fn cpu_time(&self) -> Option<Duration> {
        if !self.v2 {
            return None;
        }
        let stat = std::fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
        stat.lines()
            .find_map(|line| line.strip_prefix("usage_usec "))
            .and_then(|micros| micros.trim().parse().ok())
            .map(Duration::from_micros)
    }

    /// The cgroup's directory, open: the handle perf's cgroup events take.
    pub fn open_dir(&self) -> Result<File, String> {
        File::open(&self.dir).map_err(|error| format!("cannot open {}: {error}", self.dir.display()))
    }

    /// The processes in it now.
    pub fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .map(|text| text.lines().filter_map(|line| line.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// SIGKILLs every process in it (`cgroup.kill`, cgroup v2), wherever
    /// in the process tree or process groups they went.
    pub fn kill(&self) {
        if self.v2 {
            let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        }
    }
}

impl Drop for ServerCgroup {
    fn drop(&mut self) {
        let memory = self.memory.as_ref().ok().map(|memory| memory.dir().to_owned());
        for dir in std::iter::once(self.dir.clone()).chain(memory) {
            // Killed processes leave the cgroup as they are reaped: a moment.
            for _ in 0..50 {
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

pub(super) fn make_dir(dir: &Path) -> Result<(), String> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(format!(
            "cannot make the cgroup {} ({error}): run as root",
            dir.display()
        )),
    }
}

/// Where cgroups with the perf_event controller are made: a cgroup v1
/// hierarchy mounted with `perf_event`, or else the cgroup v2 one (true).
fn perf_event_hierarchy() -> Result<(PathBuf, bool), String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|error| format!("cannot read /proc/self/mountinfo: {error}"))?;
    hierarchy_of(&mountinfo, "perf_event")
        .ok_or_else(|| String::from("no cgroup hierarchy with the perf_event controller is mounted"))
}

/// The hierarchy that has `controller`, from `/proc/self/mountinfo` text:
/// a cgroup v1 hierarchy mounted with it (false), or else the cgroup v2
/// one (true), which has every controller v1 does not.
pub(super) fn hierarchy_of(mountinfo: &str, controller: &str) -> Option<(PathBuf, bool)> {
    let mut v2 = None;
    for line in mountinfo.lines() {
        // ... MOUNT_POINT OPTIONS ... - FSTYPE SOURCE SUPER_OPTIONS
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = before.split_whitespace().nth(4).unwrap_or("");
        let mut after = after.split_whitespace();
        let fstype = after.next().unwrap_or("");
        let super_options = after.nth(1).unwrap_or("");
        if fstype == "cgroup" && super_options.split(',').any(|option| option == controller) {
            return Some((PathBuf::from(mount_point), false));
        }
        if fstype == "cgroup2" && v2.is_none() {
            v2 = Some(PathBuf::from(mount_point));
        }
    }
    v2.map(|root| (root, true))
}

/// Removes cgroups left by harness processes that are gone (and so empty).
pub(super) fn remove_stale(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix("echolab-harness-"))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            if let Ok(servers) = std::fs::read_dir(entry.path()) {
                for server in servers.flatten().filter(|server| server.path().is_dir()) {
                    let _ = std::fs::remove_dir(server.path());
                }
            }
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_perf_event_hierarchy_is_found_where_cgroups_are_mounted() {
        if let Ok((root, _)) = perf_event_hierarchy() {
            assert!(root.is_dir(), "{}", root.display());
        }
    }
}
