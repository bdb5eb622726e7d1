//! # reuseport: an epoll reactor per core, sharing nothing
//!
//! **Model.** N threads (default: the CPUs in the affinity mask), each pinned
//! to one CPU, each with its own SO_REUSEPORT listener on the same port and
//! its own epoll loop (the `epoll` model's, unchanged). The kernel spreads new
//! connections over the listeners by a hash of their addresses, and a
//! connection stays on the thread that accepted it: thread-per-core, the
//! design of nginx workers, seastar, glommio and monoio.
//!
//! **System calls.** As `epoll`, each thread on its own: per connection
//! `accept4`, `ioctl(FIONBIO)`, `setsockopt(TCP_NODELAY)`, `epoll_ctl(ADD)`,
//! `close`; per message one `recvfrom`, one `sendto` and a share of that
//! thread's `epoll_wait`. Per worker, once: `socket`, `setsockopt(SO_REUSEPORT)`,
//! `bind`, `listen`, `sched_setaffinity`. No lock, no futex, no wakeup of
//! another thread anywhere on the data path.
//!
//! **Costs.** Per connection as `epoll`. Per worker: a thread and its stack,
//! an epoll instance, a listen queue of `BACKLOG`.
//!
//! **Limits.** The hash does not see load: each worker gets its share of new
//! connections however busy it is, and with few connections the split is
//! lumpy (4 connections over 2 workers all land on one worker 1 time in 8).
//! A connection never moves, so one busy connection holds its core while
//! another core idles. Each worker logs its share when the server stops.
//!
//! **Protocols and work.** As `epoll`, each worker with its own timers for
//! `--work wait:`.
//!
//! **Compare with.** `epoll`, which this is N times over (`--workers 1` is
//! `epoll`); `async` multi-thread, which waits on one listener and lets idle
//! workers steal tasks from busy ones: balance, paid for with shared queues
//! and wakeups across cores, where this keeps each connection's data on one
//! core and shares nothing, paid for with imbalance; `process --prefork N
//! --accept reuseport`, the same with processes.

#![forbid(unsafe_code)]

use echo_core::affinity;
use echo_core::process::{self, Setup};
use echo_core::syscalls::{EPOLL_ECHO, Profile};
use echo_core::workers::{self, Share, Tally};
use nix::unistd::gettid;
use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

/// The "System calls" section above as numbers: calls per message under
/// [`echo_core::syscalls::PROFILE_LOAD`], checked against the kernel's
/// counters by `harness/tests/syscall_profile.rs`.
pub const SYSCALLS: &[Profile] = &[
    Profile {
        args: &[],
        per_message: EPOLL_ECHO,
    },
    Profile {
        args: &["--workers", "2"],
        per_message: EPOLL_ECHO,
    },
];

/// Options of the `reuseport` model.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {
    /// Workers, each a thread with its own listener and epoll loop [default: CPUs in the affinity mask].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// Let the scheduler move the workers instead of pinning each to one CPU of the mask.
    #[arg(long)]
    pub no_pin: bool,
}

/// The first listener gets SO_REUSEPORT, so the others can join its port.
pub fn setup() -> Setup<Options> {
    Setup {
        reuse_port: |_| true,
        ..Setup::default()
    }
}

/// One worker's counts, and its thread id for its CPU time.
#[derive(Default)]
struct Worker {
    tally: Tally,
    tid: AtomicI32,
}

/// Starts the workers, each on its own listener, and waits until one fails.
pub fn serve(listener: TcpListener, options: &Options) -> io::Result<()> {
    let cpus = affinity::allowed_cpus()?;
    let count = options.workers.map_or(cpus.len(), usize::from);
    // Every listener is bound, and every worker's epoll instance made,
    // before any worker runs: a connection hashed to a listener waits in its
    // queue until that listener's worker runs, and no worker can be refused
    // its epoll instance because the others' clients took the descriptors.
    let reactor_options = server_epoll::Options::default();
    let reactors = process::reuse_port_listeners(listener, count)?
        .into_iter()
        .map(|listener| server_epoll::Reactor::new(listener, &reactor_options, false))
        .collect::<io::Result<Vec<_>>>()?;
    let workers: Arc<[Worker]> = (0..count).map(|_| Worker::default()).collect();
    let pins: Vec<Option<usize>> = (0..count)
        .map(|index| (!options.no_pin).then(|| cpus[index % cpus.len()]))
        .collect();
    log_shares_on_stop(Arc::clone(&workers), pins.clone());

    let (stopped, first_stop) = mpsc::channel();
    for ((index, reactor), pin) in reactors.into_iter().enumerate().zip(pins) {
        let workers = Arc::clone(&workers);
        let stopped = stopped.clone();
        thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || {
                let worker = &workers[index];
                worker.tid.store(gettid().as_raw(), Ordering::Relaxed);
                let outcome = match pin {
                    Some(cpu) => affinity::pin_to(&[cpu]),
                    None => Ok(()),
                }
                .and_then(|()| reactor.run(&worker.tally));
                let _ = stopped.send((index, outcome));
            })?;
    }
    let (index, outcome) = first_stop.recv().map_err(io::Error::other)?;
    outcome.map_err(|error| io::Error::new(error.kind(), format!("worker {index}: {error}")))
}

/// At SIGTERM/SIGINT: one line per worker with its share of the connections.
fn log_shares_on_stop(workers: Arc<[Worker]>, pins: Vec<Option<usize>>) {
    process::on_stop(move || {
        let shares: Vec<Share> = workers
            .iter()
            .zip(&pins)
            .enumerate()
            .map(|(index, (worker, pin))| {
                let tid = worker.tid.load(Ordering::Relaxed);
                Share {
                    name: match pin {
                        Some(cpu) => format!("worker {index} (cpu {cpu})"),
                        None => format!("worker {index}"),
                    },
                    tally: &worker.tally,
                    cpu: workers::cpu_time(&format!("/proc/self/task/{tid}/stat")),
                }
            })
            .collect();
        workers::log_shares("reuseport", &shares);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_default_to_the_mask_and_every_listener_reuses_the_port() {
        let default = echo_core::process::parse_options::<Options>(&[]).unwrap();
        assert_eq!((default.workers, default.no_pin), (None, false));
        let two = echo_core::process::parse_options::<Options>(&["--workers", "2", "--no-pin"]).unwrap();
        assert_eq!((two.workers, two.no_pin), (Some(2), true));
        assert!(echo_core::process::parse_options::<Options>(&["--workers", "0"]).is_err());
        assert!((setup().reuse_port)(&default));
    }
}
