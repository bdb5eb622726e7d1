//! # nonblocking: one thread busy-polling nonblocking sockets
//!
//! **Model.** One thread and a list of nonblocking sockets: each pass tries to
//! accept, then gives every connection one chance to read and write back,
//! whether or not anything has arrived.
//!
//! **System calls.** Per connection: `accept4`, `ioctl(FIONBIO)`,
//! `setsockopt(TCP_NODELAY)`, `close`. Per pass, even with nothing to do: one
//! `accept4` and one `recvfrom` per connection, nearly all failing with EAGAIN.
//! Per message: that `recvfrom` and one `sendto`.
//!
//! **Costs.** Per connection: one 16 KiB buffer and a cursor, no thread. The
//! whole server: one CPU at 100 %, idle or not.
//!
//! **Limits.** It never sleeps: with no clients it still spins a core, and
//! every pass costs a system call per connection, so 10,000 idle clients slow
//! down the one busy client. Out of file descriptors it skips accepting for a
//! pause, but keeps spinning on the connections it has.
//!
//! **Protocols and work.** `--protocol http`: the same pump over the HTTP step.
//! `--work wait:` needs no timer: a held connection is skipped until a pass
//! finds its instant past (the spin is the timer).
//!
//! **Compare with.** `pool`, which blocks but caps the clients; `select`, which
//! asks the kernel which sockets are ready instead of trying them all.

#![forbid(unsafe_code)]

use echo_core::accept::{self, Exhaustion};
use echo_core::drive::{Drain, Progress, Session};
use echo_core::syscalls::{EPOLL_WAIT, Expect, ONCE, Profile, RECV, SEND};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

/// The "System calls" section above as numbers: calls per message under
/// [`echo_core::syscalls::PROFILE_LOAD`], checked against the kernel's
/// counters by `harness/tests/syscall_profile.rs`.
pub const SYSCALLS: &[Profile] = &[Profile {
    args: &[],
    per_message: &[
        // Spinning: far more reads than messages, nearly all empty.
        Expect::calls(RECV, 10.0..=f64::INFINITY),
        Expect::eagain(RECV, 9.0..=f64::INFINITY),
        Expect::eagain(&["accept4"], 1.0..=f64::INFINITY),
        Expect::calls(SEND, ONCE),
        Expect::none(EPOLL_WAIT),
    ],
}];

/// `nonblocking` has no options of its own.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    session: Session,
}

/// Polls the listener and every connection in turn, forever.
pub fn serve(listener: TcpListener, _options: &Options) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut connections: Vec<Connection> = Vec::new();
    let mut exhaustion = Exhaustion::default();
    let mut accept_paused_until: Option<Instant> = None;
    loop {
        if accept_paused_until.is_none_or(|until| Instant::now() >= until) {
            accept_paused_until = accept::drain_ready(&listener, &mut exhaustion, |stream, peer| {
                connections.push(Connection {
                    stream,
                    peer,
                    session: Session::new(),
                });
            })?;
        }
        // One read and one write attempt per connection, ready or not.
        connections.retain_mut(|connection| {
            match connection.session.pump(&mut connection.stream, Drain::Once) {
                // A `wait:` work needs no timer here: the next pass looks again.
                Ok(Progress::Open { .. } | Progress::Wait { .. }) => true,
                Ok(Progress::Done) => false,
                Err(error) => {
                    echo_core::log_connection_error(connection.peer, error);
                    false
                }
            }
        });
    }
}
