//! CPU affinity: which CPUs this process may run on.
//!
//! Runtimes that exist to use CPUs (tokio and may workers) size themselves to
//! the affinity mask rather than to the machine, so a server pinned to one core
//! by the harness runs one worker, not one per core of the machine.

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use std::io;

/// The CPUs the calling thread may run on, in ascending order.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

/// How many CPUs the calling thread may run on (at least 1).
pub fn allowed_cpu_count() -> usize {
    allowed_cpus().map(|cpus| cpus.len()).unwrap_or(1).max(1)
}

/// Pins the calling thread (and the threads and children it creates later)
/// to `cpus`.
pub fn pin_to(cpus: &[usize]) -> io::Result<()> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_is_never_empty_and_counts_match() {
        let cpus = allowed_cpus().unwrap();
        assert!(!cpus.is_empty());
        assert_eq!(allowed_cpu_count(), cpus.len());
    }
}
