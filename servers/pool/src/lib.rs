//! # pool: a fixed pool of worker threads
//!
//! **Model.** Start `--workers` threads once; the accepting thread hands each
//! connection over a channel to an idle worker, which echoes it until it closes.
//!
//! **System calls.** Per connection: `accept4`, `setsockopt(TCP_NODELAY)`,
//! two `futex` calls to hand it to a worker, `close`. Per message: one
//! `recvfrom` and one `sendto`, blocking in the worker. No thread is created
//! after start-up.
//!
//! **Costs.** Fixed: N threads, their stacks and N 16 KiB buffers, whatever
//! the load. Nothing per waiting connection.
//!
//! **Limits.** At most N clients are served at once; N idle clients stop the
//! server. The channel has no room (a rendezvous): the accepting thread waits
//! for a free worker, so client N+1 waits in the kernel's listen queue,
//! connected but unanswered, as the second client of `single` does (a queue in
//! the server would only hold a socket per waiting client). N is sized for
//! concurrency, not cores (default 16): pinned to one CPU, a pool sized to
//! cores would be `single` again.
//!
//! **Protocols and work.** `--protocol http`: the same loop over the HTTP step;
//! a keep-alive client holds its worker until it closes. `--work wait:` sleeps
//! the worker: at most N waits overlap.
//!
//! **Compare with.** `threaded`, which never makes a client wait but has no
//! bound on its threads; `nonblocking`, which serves every client on one thread.

#![forbid(unsafe_code)]

use crossbeam_channel::Receiver;
use echo_core::syscalls::{BLOCKING_ECHO, Profile};
use echo_core::{accept, drive::serve_blocking};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

/// The "System calls" section above as numbers: calls per message under
/// [`echo_core::syscalls::PROFILE_LOAD`], checked against the kernel's
/// counters by `harness/tests/syscall_profile.rs`.
pub const SYSCALLS: &[Profile] = &[Profile {
    args: &[],
    per_message: BLOCKING_ECHO,
}];

/// `pool`'s one option: how many clients it serves at once.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Worker threads, each serving one client at a time until it closes.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { workers: 16 }
    }
}

/// Starts the workers, then accepts clients forever and hands them over.
pub fn serve(listener: TcpListener, options: &Options) -> io::Result<()> {
    // Capacity 0: `send` returns only once a worker has taken the connection.
    let (idle_worker, connections) = crossbeam_channel::bounded(0);
    for index in 0..options.workers {
        let connections = connections.clone();
        thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || work(&connections))?;
    }
    let mut exhaustion = accept::Exhaustion::default();
    loop {
        let (stream, peer) = accept::next_blocking(&listener, &mut exhaustion)?;
        // Blocks while every worker is busy: the next clients queue in the kernel.
        if idle_worker.send((stream, peer)).is_err() {
            return Err(io::Error::other("every worker has stopped"));
        }
    }
}

/// One worker: serve a connection to the end, then take the next one.
fn work(connections: &Receiver<(TcpStream, SocketAddr)>) {
    for (stream, peer) in connections {
        if let Err(error) = serve_blocking(&stream, thread::sleep) {
            echo_core::log_connection_error(peer, error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_default_to_sixteen_and_zero_is_refused() {
        assert_eq!(
            echo_core::process::parse_options::<Options>(&[]).unwrap().workers,
            16
        );
        assert_eq!(Options::default().workers, 16);
        let two = echo_core::process::parse_options::<Options>(&["--workers", "2"]).unwrap();
        assert_eq!(two.workers, 2);
        assert!(echo_core::process::parse_options::<Options>(&["--workers", "0"]).is_err());
    }
}
