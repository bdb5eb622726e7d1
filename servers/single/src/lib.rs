//! # single: one client at a time, blocking
//!
//! **Model.** Accept one client, echo it until it closes, then accept the next.
//!
//! **System calls.** Per connection: `accept4`, `setsockopt(TCP_NODELAY)`,
//! `close`. Per message: one `recvfrom` and one `sendto`, each blocking.
//!
//! **Costs.** One thread and one 16 KiB buffer for the whole server; nothing
//! per connection.
//!
//! **Limits.** A second client waits in the listen queue until the first one
//! leaves: its connect succeeds (the kernel completes the handshake) but it
//! gets no answer. One slow or idle client stops the whole server.
//!
//! **Protocols and work.** `--protocol http` serves one keep-alive client at a
//! time, so one idle HTTP/1.1 client stops the server. `--work wait:` sleeps
//! the only thread: one request per wait, whatever the clients.
//!
//! **Compare with.** `threaded`, which gives each client its own thread so
//! that clients no longer wait for each other.

#![forbid(unsafe_code)]

use echo_core::syscalls::{BLOCKING_ECHO, Profile};
use echo_core::{accept, drive::serve_blocking};
use std::io;
use std::net::TcpListener;
use std::thread;

/// The "System calls" section above as numbers: calls per message under
/// [`echo_core::syscalls::PROFILE_LOAD`], checked against the kernel's
/// counters by `harness/tests/syscall_profile.rs`.
pub const SYSCALLS: &[Profile] = &[Profile {
    args: &[],
    per_message: BLOCKING_ECHO,
}];

/// `single` has no options of its own.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {}

/// Serves clients one after another, forever.
pub fn serve(listener: TcpListener, _options: &Options) -> io::Result<()> {
    let mut exhaustion = accept::Exhaustion::default();
    loop {
        let (stream, peer) = accept::next_blocking(&listener, &mut exhaustion)?;
        // The next client waits here until this one closes its side.
        if let Err(error) = serve_blocking(&stream, thread::sleep) {
            echo_core::log_connection_error(peer, error);
        }
    }
}
