//! # threaded: a thread per client
//!
//! **Model.** Accept a client, start a thread that echoes it until it closes,
//! and go straight back to accepting.
//!
//! **System calls.** Per connection: `accept4`, `setsockopt(TCP_NODELAY)`,
//! `clone3` and a dozen more to start and end the thread (`mmap` and
//! `mprotect` for its stack, `prctl` to name it, `munmap`), `close`. Per
//! message: one `recvfrom` and one `sendto`, blocking in the client's thread.
//!
//! **Costs.** Per connection: a kernel thread (scheduler entry, a context
//! switch for every wake-up), a 2 MiB stack reserved (a few KiB touched), one
//! 16 KiB buffer.
//!
//! **Limits.** Threads: `threads-max`, RLIMIT_NPROC or address space run out
//! long before sockets do, and then the spawn fails (that connection is closed
//! with one log line, the others carry on). Thousands of mostly idle clients
//! mean thousands of sleeping threads; busy ones fight over the CPUs, and
//! context switches, not echoing, become the work.
//!
//! **Protocols and work.** `--protocol http`: the same loop over the HTTP step.
//! A static file goes out with blocking `sendfile(2)`: the kernel copies it
//! from the page cache to the socket, nothing is read into this process.
//! `--work wait:` sleeps the client's thread: waits overlap, a sleeping thread
//! each.
//!
//! **Compare with.** `single`, whose clients wait for each other; `pool`, which
//! caps the number of threads and makes the extra clients wait instead.

#![forbid(unsafe_code)]

use echo_core::syscalls::{BLOCKING_ECHO, Profile};
use echo_core::{accept, drive::serve_blocking_sendfile};
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

/// `threaded` has no options of its own.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {}

/// Accepts clients forever, each on a thread of its own.
pub fn serve(listener: TcpListener, _options: &Options) -> io::Result<()> {
    let mut exhaustion = accept::Exhaustion::default();
    loop {
        let (stream, peer) = accept::next_blocking(&listener, &mut exhaustion)?;
        // The thread owns the stream; it is closed when the thread ends.
        let spawned = thread::Builder::new().name("client".into()).spawn(move || {
            if let Err(error) = serve_blocking_sendfile(&stream, thread::sleep) {
                echo_core::log_connection_error(peer, error);
            }
        });
        // A failed spawn drops the closure, and the stream in it: that client
        // is closed, the others are unaffected.
        if let Err(error) = spawned {
            eprintln!("{peer}: cannot start a thread: {error}");
        }
    }
}
