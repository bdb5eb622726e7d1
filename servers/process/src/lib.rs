//! # process: a process per client, or a prefork pool of processes
//!
//! **Model.** The parent accepts and forks a child per client, which echoes
//! it with blocking calls until EOF and exits; the parent closes its copy of
//! the socket at once (after `fork` both hold it, and the connection closes
//! only when both have) and reaps children on SIGCHLD. `--prefork N` forks N
//! workers after bind that accept for themselves. With `--accept blocking`
//! each blocks in `accept` (the kernel wakes one) and serves one client at a
//! time: Apache prefork, the pool's lesson with processes. The readiness
//! modes run the `epoll` loop over many clients per worker, nginx's model: a
//! worker that waits on the listener can as well wait on its clients. `epoll`:
//! every idle worker wakes for a connection and one wins (the thundering
//! herd); `exclusive` (EPOLLEXCLUSIVE): one wakes, the last to wait;
//! `reuseport`: a listener per worker, the kernel hashes connections over
//! their queues, blind to load.
//!
//! **System calls.** Per client: `accept4`, `setsockopt(TCP_NODELAY)`,
//! `clone`, `close`, a `wait4` and a share of a signalfd `read` in the
//! parent; `prctl(PR_SET_PDEATHSIG)`, `getppid`, `rt_sigprocmask`,
//! `exit_group` in the child. Per message one `recvfrom` and one `sendto`.
//! Prefork forks nothing per client; per message as `pool` or `epoll`, plus
//! an `accept4` that finds nothing in each worker that lost the race.
//!
//! **Costs.** Per client: a process (kernel task, page tables, the parent's
//! memory shared copy-on-write) and a 16 KiB buffer. Prefork: N processes
//! whatever the load.
//!
//! **Limits.** A fork per client costs tens of microseconds: churn shows it.
//! Only the kernel spreads load: each worker's connections, wakeups that
//! found nothing and CPU time are logged at exit. `fork` copies only the
//! calling thread, so a lock another thread holds stays locked in the child:
//! this model takes SIGTERM and SIGINT on a signalfd ([`Signals::Model`]),
//! not on echo-core's `signals` thread, and never has a second thread.
//! Children get PR_SET_PDEATHSIG: none outlives the parent, even SIGKILLed.
//!
//! **Protocols and work.** `--protocol http`: the blocking loop or the `epoll`
//! loop over the HTTP step. `--work wait:` sleeps the child (or the blocking
//! worker), or is the `epoll` loop's timer.
//!
//! **Compare with.** `threaded`, a thread per client: no copy, shared
//! memory; `pool`, the blocking prefork with threads; `reuseport`, the
//! readiness prefork with threads pinned one per core.

use echo_core::accept::{self, AcceptError, Exhaustion};
use echo_core::drive::serve_blocking;
use echo_core::process::{Setup, Signals, reuse_port_listeners, stop_signals};
use echo_core::syscalls::{BLOCKING_ECHO, EPOLL_ECHO, Profile};
use echo_core::workers::{self, Share, Tally};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};
use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The "System calls" section above as numbers: calls per message under
/// [`echo_core::syscalls::PROFILE_LOAD`], checked against the kernel's
/// counters by `harness/tests/syscall_profile.rs`.
pub const SYSCALLS: &[Profile] = &[
    Profile {
        args: &[],
        per_message: BLOCKING_ECHO,
    },
    Profile {
        args: &["--prefork", "4", "--accept", "blocking"],
        per_message: BLOCKING_ECHO,
    },
    Profile {
        args: &["--prefork", "4", "--accept", "epoll"],
        per_message: EPOLL_ECHO,
    },
    Profile {
        args: &["--prefork", "4", "--accept", "exclusive"],
        per_message: EPOLL_ECHO,
    },
    Profile {
        args: &["--prefork", "4", "--accept", "reuseport"],
        per_message: EPOLL_ECHO,
    },
];

/// Options of the `process` model.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {
    /// Fork N workers at start that take clients themselves, instead of a process per client.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub prefork: Option<u16>,

    /// How prefork workers wait for clients.
    #[arg(long, value_enum, default_value_t = Accept::Blocking, requires = "prefork")]
    pub accept: Accept,
}

/// How prefork workers wait for clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Accept {
    /// Block in accept on the shared listener, one client at a time (Apache prefork).
    #[default]
    Blocking,
    /// An epoll loop per worker, each waiting on the shared listener (the thundering herd).
    Epoll,
    /// An epoll loop per worker, the shared listener registered with EPOLLEXCLUSIVE.
    Exclusive,
    /// An epoll loop per worker, each on a SO_REUSEPORT listener of its own.
    Reuseport,
}

/// Signals stay with this model (it forks), and `--accept reuseport` needs
/// SO_REUSEPORT on the first listener.
pub fn setup() -> Setup<Options> {
    Setup {
        signals: Signals::Model,
        reuse_port: |options| options.prefork.is_some() && options.accept == Accept::Reuseport,
        ..Setup::default()
    }
}

/// How long stopped children get to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_millis(300);

/// A prefork worker that ends sooner than this after its start is not
/// started again: it would only fail again, in a loop of forks.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// Forks a process per client, or the prefork workers, until signalled.
pub fn serve(listener: TcpListener, options: &Options) -> io::Result<()> {
    // SIGTERM and SIGINT are blocked already (Signals::Model); SIGCHLD too,
    // so all three arrive as reads of one descriptor, never as handlers.
    let mut signals = stop_signals();
    signals.add(Signal::SIGCHLD);
    signals.thread_block()?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC)?;
    match options.prefork {
        None => per_client(listener, signal_fd),
        Some(workers) => prefork(listener, usize::from(workers), options.accept, signal_fd),
    }
}

/// The course's server: accept, fork, close the parent's copy, reap.
fn per_client(listener: TcpListener, signal_fd: SignalFd) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let parent = getpid();
    let mut children = Children::default();
    let (mut forked, mut fork_failures) = (0u64, 0u64);
    let mut exhaustion = Exhaustion::default();
    let mut accepts_resume: Option<Instant> = None;
    loop {
        let (timeout, listening) = match accepts_resume {
            Some(at) => (until(at), PollFlags::empty()),
            None => (PollTimeout::NONE, PollFlags::POLLIN),
        };
        let mut ready = [
            PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), listening),
        ];
        match poll(&mut ready, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(error) => return Err(error.into()),
        }
        let signalled = ready[0].any().unwrap_or(false);
        let acceptable = ready[1].any().unwrap_or(false);
        if signalled && stop_requested(&signal_fd, &mut children)? {
            children.stop();
            echo_core::log_line(format_args!(
                "process: {forked} clients served, each by a child process; {fork_failures} forks failed"
            ));
            return Ok(());
        }
        if accepts_resume.is_some_and(|at| Instant::now() >= at) {
            accepts_resume = None;
        }
        if !acceptable {
            continue;
        }
        loop {
            let (stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) => match accept::classify(&error) {
                    AcceptError::Retry => continue,
                    AcceptError::Exhausted => {
                        accepts_resume = Some(exhaustion.pause(&error));
                        break;
                    }
                    AcceptError::Fatal => return Err(error),
                },
            };
            exhaustion.recovered();
            let _ = stream.set_nodelay(true);
            // SAFETY: this process has one thread (Signals::Model: echo-core
            // started none, and this model starts none), so the child is a
            // whole copy, with no lock held by a thread missing from it: it
            // may allocate and run ordinary code.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => serve_client(parent, stream, peer, listener, signal_fd),
                Ok(ForkResult::Parent { child }) => {
                    forked += 1;
                    children.running.insert(child, (0, Instant::now()));
                    // The parent's copy, closed at once: the child holds the
                    // connection now, and it closes when the child exits.
                    drop(stream);
                }
                Err(error) => {
                    fork_failures += 1;
                    echo_core::log_connection_error(
                        peer,
                        format_args!("cannot fork a process for this client ({error}); closing it"),
                    );
                }
            }
        }
    }
}

/// A child: echoes its one client to EOF, then exits.
fn serve_client(
    parent: Pid,
    stream: TcpStream,
    peer: SocketAddr,
    listener: TcpListener,
    signal_fd: SignalFd,
) -> ! {
    become_child(parent);
    // The child's copies: it accepts nothing and waits for no signal.
    drop(listener);
    drop(signal_fd);
    let status = match serve_blocking(&stream, std::thread::sleep) {
        Ok(_) => 0,
        Err(error) => {
            echo_core::log_connection_error(peer, error);
            1
        }
    };
    // exit, not a return into the parent's loop. Safe to flush here: the
    // parent flushed the ready line before forking, so no buffer is shared.
    std::process::exit(status)
}

/// In a child just forked: die with the parent, and take back the default
/// actions of the signals the parent blocked, so SIGTERM ends the child.
fn become_child(parent: Pid) {
    // SIGKILL when the parent dies, however it dies. (It is the death of
    // the forking *thread* that counts: here the parent's only thread.)
    let _ = prctl::set_pdeathsig(Signal::SIGKILL);
    if getppid() != parent {
        std::process::exit(0); // The parent died before the line above.
    }
    let _ = SigSet::all().thread_unblock();
}

/// Reads every pending signal: reaps children on SIGCHLD; true on SIGTERM
/// or SIGINT.
fn stop_requested(signal_fd: &SignalFd, children: &mut Children) -> io::Result<bool> {
    let Some(signal) = signal_fd.read_signal()? else {
        return Ok(false);
    };
    if signal.ssi_signo == Signal::SIGCHLD as u32 {
        children.reap();
        return Ok(false);
    }
    Ok(true)
}

/// Apache prefork or nginx: N workers forked now, each serving from the
/// listener until the parent stops it; the parent only reaps and replaces.
fn prefork(listener: TcpListener, count: usize, accept: Accept, signal_fd: SignalFd) -> io::Result<()> {
    let listeners = if accept == Accept::Reuseport {
        reuse_port_listeners(listener, count)?
    } else {
        vec![listener]
    };
    let tallies = shared_tallies(count)?;
    let parent = getpid();
    let mut children = Children::default();
    // Workers are started here and, should one die, started again here.
    let mut to_start: Vec<usize> = (0..count).rev().collect();
    loop {
        while let Some(index) = to_start.pop() {
            // SAFETY: as in `per_client`: this process has one thread.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    run_worker(parent, index, listeners, accept, &tallies[index], signal_fd)
                }
                Ok(ForkResult::Parent { child }) => {
                    children.running.insert(child, (index, Instant::now()));
                }
                Err(error) => {
                    echo_core::log_line(format_args!("process: cannot fork worker {index}: {error}"))
                }
            }
        }
        let Some(signal) = signal_fd.read_signal()? else {
            continue;
        };
        if signal.ssi_signo != Signal::SIGCHLD as u32 {
            break;
        }
        for (index, lived, status) in children.reap() {
            if lived < RESTART_AFTER {
                echo_core::log_line(format_args!(
                    "process: worker {index} ended at once ({status:?}); not starting another"
                ));
            } else {
                echo_core::log_line(format_args!(
                    "process: worker {index} ended ({status:?}); starting another"
                ));
                to_start.push(index);
            }
        }
    }
    // Each worker's CPU time, read before it is stopped and reaped.
    let mut names: Vec<String> = (0..count).map(|index| format!("worker {index}")).collect();
    let mut cpu = vec![None; count];
    for (&pid, &(index, _)) in &children.running {
        names[index] = format!("worker {index} (pid {pid})");
        cpu[index] = workers::cpu_time(&format!("/proc/{pid}/stat"));
    }
    children.stop();
    let shares: Vec<Share> = names
        .into_iter()
        .zip(cpu)
        .zip(tallies)
        .map(|((name, cpu), tally)| Share { name, tally, cpu })
        .collect();
    workers::log_shares("process", &shares);
    Ok(())
}

/// A prefork worker: serves clients from its listener until stopped.
fn run_worker(
    parent: Pid,
    index: usize,
    mut listeners: Vec<TcpListener>,
    accept: Accept,
    tally: &Tally,
    signal_fd: SignalFd,
) -> ! {
    become_child(parent);
    drop(signal_fd);
    // Its own listener with `reuseport`, else the one they all share.
    let listener = listeners.swap_remove(index.min(listeners.len() - 1));
    drop(listeners);
    let error = match accept {
        Accept::Blocking => serve_one_at_a_time(&listener, tally),
        Accept::Epoll | Accept::Exclusive | Accept::Reuseport => {
            let exclusive = accept == Accept::Exclusive;
            server_epoll::Reactor::new(listener, &server_epoll::Options::default(), exclusive)
                .and_then(|reactor| reactor.run(tally))
        }
    }
    .err()
    .unwrap_or_else(|| io::Error::other("stopped"));
    echo_core::log_line(format_args!("process: worker {index}: {error}"));
    std::process::exit(1)
}

/// A blocking worker: one client at a time, as a `pool` worker thread.
fn serve_one_at_a_time(listener: &TcpListener, tally: &Tally) -> io::Result<()> {
    let mut exhaustion = Exhaustion::default();
    loop {
        let (stream, peer) = accept::next_blocking(listener, &mut exhaustion)?;
        tally.accepted.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = serve_blocking(&stream, std::thread::sleep) {
            echo_core::log_connection_error(peer, error);
        }
    }
}

/// One [`Tally`] per worker in memory shared by every process forked after
/// this call (MAP_SHARED), so the parent can read what each worker counted.
fn shared_tallies(count: usize) -> io::Result<&'static [Tally]> {
    let bytes = NonZeroUsize::new(count.max(1) * size_of::<Tally>()).expect("at least one tally");
    // SAFETY: a fresh anonymous mapping: page-aligned (more than a Tally
    // needs), zero-filled (a valid Tally: two atomics at 0), never unmapped
    // (so 'static), and only ever accessed through atomics, from any process.
    unsafe {
        let memory = mmap_anonymous(
            None,
            bytes,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )?;
        Ok(std::slice::from_raw_parts(memory.cast::<Tally>().as_ptr(), count))
    }
}

/// The children this process forked and has not reaped yet, each with its
/// worker index (0 for a per-client child) and when it was started.
#[derive(Debug, Default)]
struct Children {
    running: HashMap<Pid, (usize, Instant)>,
}

impl Children {
    /// Reaps every child that has exited, without blocking; returns each
    /// one's worker index, how long it ran, and how it ended.
    fn reap(&mut self) -> Vec<(usize, Duration, WaitStatus)> {
        let mut reaped = Vec::new();
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return reaped,
                Ok(status) => {
                    if let Some((index, started)) = status.pid().and_then(|pid| self.running.remove(&pid)) {
                        reaped.push((index, started.elapsed(), status));
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => return reaped,
            }
        }
    }

    /// SIGTERM to every child, SIGKILL to those still running after
    /// [`STOP_GRACE`]; returns once all are reaped.
    fn stop(&mut self) {
        for &pid in self.running.keys() {
            let _ = kill(pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while !self.running.is_empty() && Instant::now() < deadline {
            self.reap();
            std::thread::sleep(Duration::from_millis(2));
        }
        for (pid, _) in self.running.drain() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

/// A poll timeout that ends at `at`, rounded up to whole milliseconds.
fn until(at: Instant) -> PollTimeout {
    PollTimeout::try_from(accept::millis_until(at)).unwrap_or(PollTimeout::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        echo_core::process::parse_options(args)
    }

    #[test]
    fn a_process_per_client_unless_prefork_and_accept_needs_prefork() {
        let default = parse(&[]).unwrap();
        assert_eq!((default.prefork, default.accept), (None, Accept::Blocking));
        let nginx = parse(&["--prefork", "4", "--accept", "exclusive"]).unwrap();
        assert_eq!((nginx.prefork, nginx.accept), (Some(4), Accept::Exclusive));
        assert!(parse(&["--accept", "epoll"]).is_err());
        assert!(parse(&["--prefork", "0"]).is_err());
    }

    #[test]
    fn only_reuseport_workers_ask_for_so_reuseport() {
        let reuse_port = setup().reuse_port;
        assert!(reuse_port(
            &parse(&["--prefork", "2", "--accept", "reuseport"]).unwrap()
        ));
        assert!(!reuse_port(
            &parse(&["--prefork", "2", "--accept", "epoll"]).unwrap()
        ));
        assert!(!reuse_port(&parse(&[]).unwrap()));
        assert_eq!(setup().signals, Signals::Model);
    }

    #[test]
    fn shared_tallies_start_at_zero_one_cache_line_each() {
        let tallies = shared_tallies(3).unwrap();
        assert!(tallies.iter().all(|tally| tally.accepted() == 0));
        assert_eq!(tallies.as_ptr() as usize % 64, 0);
    }
}
