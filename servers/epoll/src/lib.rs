//! # epoll: one thread, readiness from epoll(7)
//!
//! **Model.** One thread keeps every socket in one epoll interest list and
//! serves the ones `epoll_wait` reports ready: level-triggered by default,
//! edge-triggered with `--edge`.
//!
//! **System calls.** Per connection: `accept4`, `ioctl(FIONBIO)`,
//! `setsockopt(TCP_NODELAY)`, `epoll_ctl(ADD)`, `close` (which unregisters).
//! Per message: one `recvfrom`, one `sendto`, and a share of one `epoll_wait` that
//! returns every ready socket at once. Level-triggered adds `epoll_ctl(MOD)`
//! only when a slow reader flips a connection between reading and writing;
//! edge-triggered never modifies, but drains until `EAGAIN`: one more `recvfrom`.
//!
//! **Costs.** Per connection: one registered fd (a kernel `epitem`), one
//! 16 KiB buffer, one table slot. No thread, no stack.
//!
//! **Limits.** One thread, so one core. Edge-triggered reports a change once:
//! a wakeup must drain until `WouldBlock`, so a peer that keeps both directions
//! busy is served for as long as it does while the others wait. Spurious or
//! stale events are harmless: a nonblocking read just returns `WouldBlock`.
//!
//! **Protocols and work.** `--protocol http`: the same pump over the HTTP step;
//! a static file goes out with nonblocking `sendfile(2)`, page cache to
//! socket, no copy through this process (EAGAIN when the socket buffer is
//! full, as for a write); `reuseport` and `process --prefork` inherit it.
//! `--work wait:` is a timer per held connection in a heap
//! (`echo_core::drive::Timers`), O(log n) per wait; the earliest arms a
//! `timerfd` in the interest list, so time is one more readable fd. Not
//! `epoll_wait`'s timeout: that is whole milliseconds, and a 1 ms wait would
//! last 1 to 2. A `timerfd_settime` when the earliest changes, a `read` when
//! it fires.
//!
//! **Compare with.** `select`, which copies and scans every fd on every call,
//! where epoll keeps the interest list in the kernel and returns only ready
//! ones; `coroutine` and `async`, which wait on epoll too, behind code that
//! reads like blocking code, on every core; `reuseport` and `process
//! --prefork`, which run this same loop ([`Reactor`]) once per core.

#![forbid(unsafe_code)]

use echo_core::accept::{self, Exhaustion};
use echo_core::drive::{Drain, Progress, Session, Timers};
use echo_core::syscalls::{EPOLL_ECHO, EPOLL_WAIT, Expect, ONCE, Profile, RECV, SEND, SHARED};
use echo_core::workers::Tally;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::time::TimeSpec;
use nix::sys::timer::Expiration;
use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The "System calls" section above as numbers: calls per message under
/// [`echo_core::syscalls::PROFILE_LOAD`], checked against the kernel's
/// counters by `harness/tests/syscall_profile.rs`.
pub const SYSCALLS: &[Profile] = &[
    Profile {
        args: &[],
        per_message: EPOLL_ECHO,
    },
    Profile {
        args: &["--edge"],
        per_message: &[
            Expect::calls(EPOLL_WAIT, SHARED),
            // Drained until EAGAIN: the second read finds nothing.
            Expect::calls(RECV, 1.3..=2.1),
            Expect::eagain(RECV, ONCE),
            Expect::calls(SEND, ONCE),
            Expect::none(&["epoll_ctl"]),
        ],
    },
];

/// Options of the `epoll` model.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {
    /// Edge-triggered readiness (EPOLLET): register once, drain until EAGAIN.
    #[arg(long)]
    pub edge: bool,
}

/// The listener's token in `epoll_data`; a connection's token is its fd.
const LISTENER: u64 = u64::MAX;
/// The timerfd's token: the earliest `wait:` timer has come.
const CLOCK: u64 = u64::MAX - 1;

/// Ready sockets returned by one `epoll_wait`.
const EVENTS_PER_WAIT: usize = 1024;

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    session: Session,
    /// What this connection is registered for (level-triggered only).
    interest: EpollFlags,
    /// The instant of the timer set for its `wait:` work, if one is.
    waking_at: Option<Instant>,
}

/// Serves every client from one thread, until the listener or epoll fails.
pub fn serve(listener: TcpListener, options: &Options) -> io::Result<()> {
    Reactor::new(listener, options, false)?.run(&Tally::default())
}

/// The loop of [`serve`] before it runs: the epoll instance with the
/// listener in it. Models that run one per worker make one each. Workers
/// that share one descriptor table (threads) make all of theirs before any
/// of them accepts, so that none is refused its epoll instance because the
/// others' clients took the last descriptors.
pub struct Reactor {
    listener: TcpListener,
    epoll: Epoll,
    listening: EpollFlags,
    drain: Drain,
    /// What each accepted connection is registered for.
    connection_interest: EpollFlags,
}

impl Reactor {
    /// `exclusive` registers the listener, which workers may share, with
    /// EPOLLEXCLUSIVE: a new connection wakes one waiting worker, not all.
    pub fn new(listener: TcpListener, options: &Options, exclusive: bool) -> io::Result<Reactor> {
        let (drain, trigger, connection_interest) = if options.edge {
            (
                Drain::UntilWouldBlock,
                EpollFlags::EPOLLET,
                EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLET,
            )
        } else {
            (Drain::Once, EpollFlags::empty(), EpollFlags::EPOLLIN)
        };
        listener.set_nonblocking(true)?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let mut listening = EpollFlags::EPOLLIN | trigger;
        listening.set(EpollFlags::EPOLLEXCLUSIVE, exclusive);
        epoll.add(&listener, EpollEvent::new(listening, LISTENER))?;
        Ok(Reactor {
            listener,
            epoll,
            listening,
            drain,
            connection_interest,
        })
    }

    /// Serves until the listener or epoll fails; `tally` counts the
    /// connections this worker accepted and the wakeups that found none.
    pub fn run(self, tally: &Tally) -> io::Result<()> {
        let Reactor {
            listener,
            epoll,
            listening,
            drain,
            connection_interest,
        } = self;
        // Indexed by fd: the kernel hands out the lowest free fd, so it stays dense.
        let mut connections: Vec<Option<Connection>> = Vec::new();
        let mut events = vec![EpollEvent::empty(); EVENTS_PER_WAIT];
        let mut exhaustion = Exhaustion::default();
        // While out of descriptors the listener leaves the interest list until
        // this instant; level-triggered epoll would otherwise report it at once.
        // (DEL and ADD rather than MOD: EPOLLEXCLUSIVE forbids MOD.)
        let mut accepts_resume: Option<Instant> = None;
        // Connections held by a `wait:` work, by fd; the earliest arms `clock`.
        let mut timers = Timers::default();
        let clock = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        epoll.add(&clock, EpollEvent::new(EpollFlags::EPOLLIN, CLOCK))?;
        let mut clock_set_for: Option<Instant> = None;
        loop {
            if let Some(next) = timers.next()
                && clock_set_for != Some(next)
            {
                // Relative, from now; zero would disarm it, so at least 1 ns.
                let after = next
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_nanos(1));
                clock.set(
                    Expiration::OneShot(TimeSpec::from_duration(after)),
                    TimerSetTimeFlags::empty(),
                )?;
                clock_set_for = Some(next);
            }
            let timeout = match accepts_resume.map(accept::millis_until) {
                Some(millis) => EpollTimeout::try_from(millis).unwrap_or(EpollTimeout::MAX),
                None => EpollTimeout::NONE,
            };
            let ready = match epoll.wait(&mut events, timeout) {
                Ok(ready) => ready,
                Err(Errno::EINTR) => continue,
                Err(error) => return Err(error.into()),
            };
            if let Some(at) = accepts_resume
                && Instant::now() >= at
            {
                // ADD checks readiness: pending connections are reported
                // again, edge-triggered too.
                epoll.add(&listener, EpollEvent::new(listening, LISTENER))?;
                accepts_resume = None;
            }
            let woken = timers.due();
            let woken = woken.into_iter().map(|token| (token, EpollFlags::empty()));
            let ready_tokens = events[..ready].iter().map(|event| (event.data(), event.events()));
            for (token, flags) in ready_tokens.chain(woken) {
                if token == CLOCK {
                    // Fired: read its count, or it stays readable.
                    let _ = nix::unistd::read(&clock, &mut [0u8; 8]);
                    clock_set_for = None;
                } else if token != LISTENER {
                    let slot = &mut connections[token as usize];
                    if let Some(connection) = slot
                        && !connection.serve_ready(&epoll, drain, &mut timers, flags)
                    {
                        // Dropping the stream closes it, which also unregisters it.
                        *slot = None;
                    }
                } else if let Some(resume) = accept_ready(
                    &listener,
                    &epoll,
                    &mut connections,
                    connection_interest,
                    &mut exhaustion,
                    tally,
                )? {
                    accepts_resume = Some(resume);
                    epoll.delete(&listener)?;
                }
            }
        }
    }
}

impl Connection {
    /// Moves what it can without blocking and, level-triggered, asks epoll
    /// for what the connection waits for next; a connection held by a
    /// `wait:` work waits for nothing but its timer. False: close it.
    fn serve_ready(&mut self, epoll: &Epoll, drain: Drain, timers: &mut Timers, flags: EpollFlags) -> bool {
        // Hang-ups and errors are reported whatever the interest: a peer gone
        // while its response waits would be reported again and again.
        let waiting = self.waking_at.is_some_and(|at| at > Instant::now());
        if waiting && flags.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR) {
            return false;
        }
        let (read, write) = match self.session.pump_sendfile(&mut self.stream, drain) {
            Ok(Progress::Open { read, write }) => (read, write),
            Ok(Progress::Wait { until }) => {
                if self.waking_at != Some(until) {
                    timers.add(until, self.stream.as_raw_fd() as u64);
                    self.waking_at = Some(until);
                }
                (false, false)
            }
            Ok(Progress::Done) => return false,
            Err(error) => {
                echo_core::log_connection_error(self.peer, error);
                return false;
            }
        };
        if drain == Drain::UntilWouldBlock {
            return true; // Edge-triggered: registered once for both.
        }
        let mut wanted = EpollFlags::empty();
        wanted.set(EpollFlags::EPOLLIN, read);
        wanted.set(EpollFlags::EPOLLOUT, write);
        if wanted != self.interest {
            let token = self.stream.as_raw_fd() as u64;
            if let Err(error) = epoll.modify(&self.stream, &mut EpollEvent::new(wanted, token)) {
                echo_core::log_connection_error(self.peer, error);
                return false;
            }
            self.interest = wanted;
        }
        true
    }
}

/// Accepts every pending connection (in both modes: under load a wakeup
/// serves many sockets, and one accept per wakeup would leave clients
/// waiting in the listen queue). Returns when accepting may resume if the
/// process is out of descriptors.
fn accept_ready(
    listener: &TcpListener,
    epoll: &Epoll,
    connections: &mut Vec<Option<Connection>>,
    interest: EpollFlags,
    exhaustion: &mut Exhaustion,
    tally: &Tally,
) -> io::Result<Option<Instant>> {
    let mut accepted = 0;
    let resume = accept::drain_ready(listener, exhaustion, |stream, peer| {
        accepted += 1;
        let fd = stream.as_raw_fd() as usize;
        match epoll.add(&stream, EpollEvent::new(interest, fd as u64)) {
            Ok(()) => {
                if connections.len() <= fd {
                    connections.resize_with(fd + 1, || None);
                }
                connections[fd] = Some(Connection {
                    stream,
                    peer,
                    session: Session::with_sendfile(),
                    interest,
                    waking_at: None,
                });
            }
            Err(error) => echo_core::log_connection_error(peer, error),
        }
    })?;
    tally.accepted.fetch_add(accepted, Ordering::Relaxed);
    if accepted == 0 && resume.is_none() {
        // Woken for a connection another worker took first.
        tally.found_nothing.fetch_add(1, Ordering::Relaxed);
    }
    Ok(resume)
}
