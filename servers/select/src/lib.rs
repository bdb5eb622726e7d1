//! # select: one thread waiting in select(2)
//!
//! **Model.** One thread builds a read set and a write set from what each
//! connection waits for, sleeps in `select` until some socket is ready, then
//! serves only the ready ones.
//!
//! **System calls.** Per connection: `accept4`, `ioctl(FIONBIO)`,
//! `setsockopt(TCP_NODELAY)`, `close`. Per message: one `select` (`pselect6`
//! in strace), one `recvfrom`, one `sendto`. The kernel scans every fd up to
//! the highest one, and copies both sets in and out, on every `select`.
//!
//! **Costs.** Per connection: one 16 KiB buffer and a cursor, no thread. Per
//! wake-up: rebuilding both sets and testing every connection in them.
//!
//! **Limits.** An `fd_set` holds descriptors below FD_SETSIZE (1024): a
//! connection that gets a higher fd is closed at once with one log line. Each
//! wake-up costs O(connections) in user space and O(highest fd) in the
//! kernel, even when one socket is ready; idle clients make busy ones slower.
//!
//! **Protocols and work.** `--protocol http`: the same pump over the HTTP step.
//! `--work wait:` leaves a held connection out of both sets; the earliest wait,
//! found by scanning every connection, is `select`'s timeout.
//!
//! **Compare with.** `nonblocking`, which tries every socket without asking;
//! `epoll`, which registers each fd once and returns only the ready ones.

#![forbid(unsafe_code)]

use echo_core::accept::{self, Exhaustion};
use echo_core::drive::{Drain, Progress, Session};
use echo_core::syscalls::{EPOLL_WAIT, Expect, ONCE, Profile, RECV, SELECT, SEND, SHARED};
use nix::errno::Errno;
use nix::sys::select::{FD_SETSIZE, FdSet, select};
use nix::sys::time::{TimeVal, TimeValLike};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

/// The "System calls" section above as numbers: calls per message under
/// [`echo_core::syscalls::PROFILE_LOAD`], checked against the kernel's
/// counters by `harness/tests/syscall_profile.rs`.
pub const SYSCALLS: &[Profile] = &[Profile {
    args: &[],
    per_message: &[
        Expect::calls(SELECT, SHARED),
        Expect::calls(RECV, ONCE),
        Expect::calls(SEND, ONCE),
        Expect::none(EPOLL_WAIT),
    ],
}];

/// `select` has no options of its own.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    session: Session,
    /// What the last `pump` left it waiting for.
    progress: Progress,
}

/// Waits for readiness and serves the ready sockets, forever.
pub fn serve(listener: TcpListener, _options: &Options) -> io::Result<()> {
    if !fits_in_fd_set(&listener) {
        return Err(io::Error::other("the listener's fd is beyond FD_SETSIZE"));
    }
    listener.set_nonblocking(true)?;
    let mut connections: Vec<Connection> = Vec::new();
    let mut ready: Vec<bool> = Vec::new();
    let mut exhaustion = Exhaustion::default();
    let mut accept_paused_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        accept_paused_until = accept_paused_until.filter(|&until| until > now);
        let listener_ready = wait(&listener, &connections, accept_paused_until, &mut ready)?;
        let mut ready_flags = ready.iter();
        connections.retain_mut(|connection| {
            if !ready_flags.next().copied().unwrap_or(false) {
                return true;
            }
            match connection.session.pump(&mut connection.stream, Drain::Once) {
                Ok(Progress::Done) => false,
                Ok(progress) => {
                    connection.progress = progress;
                    true
                }
                Err(error) => {
                    echo_core::log_connection_error(connection.peer, error);
                    false
                }
            }
        });
        if listener_ready {
            accept_paused_until = accept_all(&listener, &mut connections, &mut exhaustion)?;
        }
    }
}

/// One `select` call: the listener (unless accepting is paused) in the read
/// set, each connection in the set its progress asks for. Fills `ready` with
/// one flag per connection and returns whether the listener is readable.
fn wait(
    listener: &TcpListener,
    connections: &[Connection],
    accept_paused_until: Option<Instant>,
    ready: &mut Vec<bool>,
) -> io::Result<bool> {
    let mut readable = FdSet::new();
    let mut writable = FdSet::new();
    let mut highest_fd = listener.as_raw_fd();
    if accept_paused_until.is_none() {
        readable.insert(listener.as_fd());
    }
    for connection in connections {
        if let Progress::Open { read, write } = connection.progress {
            let fd = connection.stream.as_fd();
            if read {
                readable.insert(fd);
            }
            if write {
                writable.insert(fd);
            }
            highest_fd = highest_fd.max(fd.as_raw_fd());
        }
    }
    // While accepting is paused, wake up when the pause ends; while a
    // connection is held by a `wait:` work, when the first wait ends (found
    // by scanning them all, as select scans everything).
    let waits = connections
        .iter()
        .filter_map(|connection| match connection.progress {
            Progress::Wait { until } => Some(until),
            _ => None,
        });
    let wake_at = accept_paused_until.into_iter().chain(waits).min();
    let mut timeout = wake_at.map(|until| {
        let left = until.saturating_duration_since(Instant::now());
        TimeVal::microseconds(left.as_micros() as i64)
    });
    loop {
        let (mut read_result, mut write_result) = (readable, writable);
        match select(
            highest_fd + 1,
            &mut read_result,
            &mut write_result,
            None,
            timeout.as_mut(),
        ) {
            Ok(_) => {
                ready.clear();
                let now = Instant::now();
                ready.extend(connections.iter().map(|connection| match connection.progress {
                    Progress::Wait { until } => until <= now,
                    _ => {
                        let fd = connection.stream.as_fd();
                        read_result.contains(fd) || write_result.contains(fd)
                    }
                }));
                return Ok(accept_paused_until.is_none() && read_result.contains(listener.as_fd()));
            }
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Accepts every waiting client; one whose fd cannot go in an `fd_set` is
/// closed at once. Returns when accepting may resume if out of descriptors.
fn accept_all(
    listener: &TcpListener,
    connections: &mut Vec<Connection>,
    exhaustion: &mut Exhaustion,
) -> io::Result<Option<Instant>> {
    accept::drain_ready(listener, exhaustion, |stream, peer| {
        if !fits_in_fd_set(&stream) {
            let fd = stream.as_raw_fd();
            eprintln!("{peer}: fd {fd} does not fit in select's fd_set (FD_SETSIZE {FD_SETSIZE}); closing");
            return;
        }
        let progress = Progress::Open {
            read: true,
            write: false,
        };
        connections.push(Connection {
            stream,
            peer,
            session: Session::new(),
            progress,
        });
    })
}

/// Whether `socket` can go in an `fd_set` (`FdSet::insert` panics otherwise).
fn fits_in_fd_set(socket: &impl AsRawFd) -> bool {
    usize::try_from(socket.as_raw_fd()).is_ok_and(|fd| fd < FD_SETSIZE)
}
