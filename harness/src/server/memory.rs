//! The server's memory as the kernel charges it: a memory cgroup of the
//! server's own, each page counted once however many processes map it.
//!
//! Summed resident sets count a page shared by N processes N times (a
//! forking server's 300 children read 385 MB where the sum of their
//! proportional set sizes is 23 MB). The memory controller charges each page
//! to one cgroup, once: what a server costs the machine. What it includes:
//! anonymous memory (heaps, stacks as far as touched), the page cache the
//! server brought in (files it read), and kernel memory spent on it (kernel
//! stacks of its threads, page tables, slab objects such as its sockets'
//! structures and epoll items). Socket buffers are in it on cgroup v2; on
//! cgroup v1 they are charged to `memory.kmem.tcp.*` and are not. What it
//! leaves out: pages charged before the server existed, such as its binary's
//! and libraries' pages already in the page cache (a page is charged to
//! whoever brought it in), and the few pages the harness's forked child
//! touched before it moved itself in. So a small server can read below its
//! PSS sum, which counts a share of those mapped files (`epoll` at 10
//! connections: 768 KiB charged, 2.1 MiB of PSS).
//!
//! - **cgroup v1** (a `memory` hierarchy of its own): the server's cgroup
//!   under the harness's own memory cgroup; its peak,
//!   `memory.max_usage_in_bytes`, reset at the window's start.
//! - **cgroup v2**: the controller enabled for the harness's cgroup's
//!   children; `memory.peak` reset through its file descriptor at the
//!   window's start (kernels ≥ 6.12), else `memory.current` sampled with the
//!   server's other figures.
//!
//! Where no memory cgroup can be made, [`MemoryCgroup::create`] says why in
//! one sentence, and the cell falls back to the sum of proportional set
//! sizes, saying so.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the servers' memory cgroups are made.
struct Parent {
    dir: PathBuf,
    v2: bool,
}

static PARENT: OnceLock<Result<Parent, String>> = OnceLock::new();

/// One server's memory cgroup.
pub struct MemoryCgroup {
    dir: PathBuf,
    /// `cgroup.procs`, open for writing, when the memory cgroup is not the
    /// server's main cgroup (cgroup v1): the child moves itself in here too.
    pub procs: Option<File>,
    v2: bool,
    /// cgroup v2: `memory.peak`, open, reset through this descriptor.
    peak: Option<File>,
    /// cgroup v2 without a resettable `memory.peak`: the largest
    /// `memory.current` sampled since the reset.
    sampled_peak: Option<u64>,
}

impl MemoryCgroup {
    /// The memory cgroup for a server whose main cgroup is `main`
    /// (`main_v2`: in the cgroup v2 hierarchy), named `name`.
    pub fn create(main: &Path, main_v2: bool, name: &str) -> Result<MemoryCgroup, String> {
        let parent = PARENT.get_or_init(Parent::find).as_ref().map_err(Clone::clone)?;
        let dir = parent.dir.join(name);
        // cgroup v2 has one hierarchy: the server's main cgroup is its
        // memory cgroup when the harness's cgroup is this parent.
        let same = parent.v2 && main_v2 && dir == main;
        let procs = if same {
            None
        } else {
            super::cgroup::make_dir(&dir)?;
            Some(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join("cgroup.procs"))
                    .map_err(|error| format!("cannot open {}/cgroup.procs: {error}", dir.display()))?,
            )
        };
        Ok(MemoryCgroup {
            dir,
            procs,
            v2: parent.v2,
            peak: None,
            sampled_peak: None,
        })
    }

    /// Starts the peak afresh from what is charged now: the window's start.
    pub fn reset_peak(&mut self) -> Result<(), String> {
        if !self.v2 {
            return std::fs::write(self.dir.join("memory.max_usage_in_bytes"), "0")
                .map_err(|error| format!("cannot reset memory.max_usage_in_bytes: {error}"));
        }
        let path = self.dir.join("memory.peak");
        // Since Linux 6.12 a write to memory.peak resets the peak seen
        // through that descriptor.
        self.peak = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .and_then(|mut file| file.write_all(b"reset\n").map(|()| file))
            .ok();
        self.sampled_peak = None;
        if self.peak.is_none() {
            self.sample();
        }
        Ok(())
    }

    /// cgroup v2 without a resettable peak: notes `memory.current`.
    pub fn sample(&mut self) {
        if self.v2
            && self.peak.is_none()
            && let Some(bytes) = read_number(&self.dir.join("memory.current"))
        {
            self.sampled_peak = Some(self.sampled_peak.unwrap_or(0).max(bytes));
        }
    }

    /// The memory charged now, in KiB, socket buffers left out (cgroup v1
    /// charges them apart; on v2 `memory.stat`'s `sock` is taken away), so
    /// that a growth says what the server itself holds, not what the kernel
    /// queues for its slow peers.
    pub fn charged_kib(&self) -> Option<u64> {
        if !self.v2 {
            return read_number(&self.dir.join("memory.usage_in_bytes")).map(|bytes| bytes / 1024);
        }
        let current = read_number(&self.dir.join("memory.current"))?;
        let stat = std::fs::read_to_string(self.dir.join("memory.stat")).unwrap_or_default();
        let sock = stat
            .lines()
            .find_map(|line| line.strip_prefix("sock "))
            .and_then(|bytes| bytes.trim().parse::<u64>().ok())
            .unwrap_or(0);
        Some(current.saturating_sub(sock) / 1024)
    }

    /// The peak since [`MemoryCgroup::reset_peak`], in KiB, and how it was
    /// read.
    pub fn peak_kib(&mut self) -> Result<(u64, &'static str), String> {
        let read = |what: &str, bytes: Option<u64>| {
            bytes
                .map(|bytes| bytes / 1024)
                .ok_or_else(|| format!("cannot read {what}"))
        };
        if !self.v2 {
            let bytes = read_number(&self.dir.join("memory.max_usage_in_bytes"));
            return Ok((
                read("memory.max_usage_in_bytes", bytes)?,
                "peak of the server's memory cgroup over the window (cgroup v1 memory.max_usage_in_bytes, reset at its start)",
            ));
        }
        if let Some(peak) = self.peak.as_mut() {
            let mut text = String::new();
            let bytes = peak
                .rewind()
                .and_then(|()| peak.read_to_string(&mut text))
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Ok((
                read("memory.peak", bytes)?,
                "peak of the server's memory cgroup over the window (cgroup v2 memory.peak, reset at its start)",
            ));
        }
        self.sample();
        Ok((
            read("memory.current", self.sampled_peak)?,
            "largest memory.current of the server's memory cgroup sampled over the window (cgroup v2; memory.peak cannot be reset before Linux 6.12)",
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Parent {
    /// The memory controller's hierarchy and the harness's place in it.
    fn find() -> Result<Parent, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|error| format!("cannot read /proc/self/mountinfo: {error}"))?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|error| format!("cannot read /proc/self/cgroup: {error}"))?;
        let name = format!("echolab-harness-{}", std::process::id());
        match find_memory_hierarchy(&mountinfo, &own) {
            Some((root, own_path, false)) => {
                // cgroup v1: under the harness's own memory cgroup, so that a
                // limit on it (a container's) still holds for the servers.
                let base = root.join(own_path.trim_start_matches('/'));
                super::cgroup::remove_stale(&base);
                let dir = base.join(name);
                super::cgroup::make_dir(&dir)?;
                Ok(Parent { dir, v2: false })
            }
            Some((root, _, true)) => {
                let controllers =
                    std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
                if !controllers
                    .split_whitespace()
                    .any(|controller| controller == "memory")
                {
                    return Err(String::from(
                        "the cgroup v2 hierarchy has no memory controller (it is bound to cgroup v1, or disabled)",
                    ));
                }
                // The harness's cgroup at the hierarchy's root holds no
                // process, so it may enable the controller for its children.
                let dir = root.join(name);
                super::cgroup::make_dir(&dir)?;
                std::fs::write(dir.join("cgroup.subtree_control"), "+memory").map_err(|error| {
                    format!(
                        "cannot enable the memory controller in {} ({error})",
                        dir.display()
                    )
                })?;
                Ok(Parent { dir, v2: true })
            }
            None => Err(String::from("no cgroup hierarchy has the memory controller")),
        }
    }
}

/// The memory controller's hierarchy from `/proc/self/mountinfo` and
/// `/proc/self/cgroup` text: its mount point, this process's cgroup in it,
/// and whether it is cgroup v2. A v1 `memory` hierarchy wins (the
/// controller cannot be in both).
fn find_memory_hierarchy(mountinfo: &str, own: &str) -> Option<(PathBuf, String, bool)> {
    match super::cgroup::hierarchy_of(mountinfo, "memory")? {
        (root, true) => Some((root, String::from("/"), true)),
        (root, false) => {
            // "4:memory:/path" in /proc/self/cgroup.
            let own_path = own.lines().find_map(|line| {
                let mut fields = line.splitn(3, ':');
                let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
                controllers
                    .split(',')
                    .any(|name| name == "memory")
                    .then(|| path.to_owned())
            })?;
            Some((root, own_path, false))
        }
    }
}

/// Removes the harness's memory cgroup parent (once every server's is gone).
pub fn remove_parent() {
    if let Some(Ok(parent)) = PARENT.get() {
        let _ = std::fs::remove_dir(&parent.dir);
    }
}

fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_memory_hierarchy_is_found_with_this_process_s_place_in_it() {
        let mountinfo = "\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";
        let own = "9:name=systemd:/\n4:memory:/process_api/abc\n0::/";
        assert_eq!(
            find_memory_hierarchy(mountinfo, own),
            Some((
                PathBuf::from("/sys/fs/cgroup/memory"),
                String::from("/process_api/abc"),
                false
            ))
        );
    }

    #[test]
    fn without_a_v1_memory_hierarchy_it_is_cgroup_v2() {
        let mountinfo = "\
25 19 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu";
        assert_eq!(
            find_memory_hierarchy(mountinfo, "0::/user.slice"),
            Some((PathBuf::from("/sys/fs/cgroup"), String::from("/"), true))
        );
        assert_eq!(find_memory_hierarchy("", ""), None);
    }
}
