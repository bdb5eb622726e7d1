//! The contract every echolab model implements.
//!
//! Eleven crates under `servers/` each implement one concurrency model of the
//! same TCP server: the echo, or with `--protocol http` the course's HTTP/1.1
//! server. This crate holds everything that is *not* the model, so that only
//! the model word changes between them:
//!
//! # Layout
//!
//! - [`process`]: the process contract. [`process::main`] parses `--addr` and
//!   the model's own options (and the [`service`] options), raises the fd limit, stops on SIGTERM/SIGINT,
//!   binds, prints `listening on HOST:PORT` and hands the listener to the
//!   model's `serve`. [`process::main_with`] takes a [`process::Setup`] for
//!   models that fork, share a port, or may be unsupported here.
//! - [`service`]: what every connection does, whatever the model: the
//!   options `--protocol echo|http`, `--root DIR`, `--work none|cpu:µs|wait:µs`.
//! - [`step`]: the protocol step, sans-I/O (bytes in, bytes out, a wish to
//!   read, write or wait; never a socket): the echo, and [`http`]'s HTTP/1.1.
//! - [`drive`]: a step over a socket. [`drive::serve_blocking`] for models
//!   that block in `read`/`write`; [`drive::Session`] for models that wait on
//!   readiness and must never block, with [`drive::Timers`] for their waits.
//! - [`accept`]: what to do when `accept` fails (retry, back off while out of
//!   file descriptors, or give up).
//! - [`affinity`]: the CPUs this process may run on, to size runtimes.
//! - [`syscalls`]: the system calls a model's doc promises per message, as
//!   numbers the harness checks against the kernel's counters.
//! - [`workers`]: each worker's share of the connections, for models that
//!   spread clients over workers.
//!
//! Every model exports the same two items:
//!
//! ```text
//! pub struct Options { .. }            // clap::Args: the model's own options
//! pub fn serve(listener: std::net::TcpListener, options: &Options) -> std::io::Result<()>
//! ```
//!
//! The datagram model (`udp`) serves a `std::net::UdpSocket` instead of a
//! listener ([`process::ServeDatagrams`]): UDP has no connection to accept.
//!
//! The caller binds; the model serves until the process is signalled. Only a
//! failing listener or poller makes `serve` return an error; one connection's
//! error is one line on stderr and closes that connection only.

#![forbid(unsafe_code)]

pub mod accept;
pub mod affinity;
pub mod drive;
pub mod http;
pub mod process;
pub mod service;
pub mod step;
pub mod syscalls;
pub mod workers;

/// Bytes a model reads from a connection at once, and the most it holds unsent
/// for one connection: a slow reader gets backpressure, not a growing buffer.
pub const BUFFER_SIZE: usize = 16 * 1024;

/// Pending-connection queue length passed to `listen(2)` by every model.
pub const BACKLOG: i32 = 1024;

/// The names of the models, in the order of the progression: the course's
/// eight, then what came after. `process` belongs with the course's models
/// but comes after them here, so that the first eight keep their places (and
/// their colours in charts).
pub const MODELS: [&str; 11] = [
    "single",
    "threaded",
    "pool",
    "nonblocking",
    "select",
    "epoll",
    "coroutine",
    "async",
    "process",
    "uring",
    "reuseport",
];

/// The datagram models: UDP, apart from [`MODELS`] (the TCP progression that
/// suites, charts and the echo conformance suite walk), since there is no
/// connection to accept and no byte stream to echo.
pub const DATAGRAM_MODELS: [&str; 1] = ["udp"];

/// The largest UDP payload over IPv4: 65,535 bytes of IP datagram less the
/// 20-byte IP header and the 8-byte UDP header. Every datagram model echoes
/// anything from 1 byte to this, whole.
pub const MAX_DATAGRAM: usize = 65_507;

/// Logs one line on stderr, written with a single `write`. `eprintln!`
/// writes each piece of its format on its own (stderr has no buffer); the
/// lock it takes keeps one process's threads apart, but processes sharing
/// stderr (a process per client, prefork workers and their parent) would
/// interleave mid-line.
pub fn log_line(line: std::fmt::Arguments) {
    use std::io::Write;
    let line = format!("{line}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Logs one connection's error as one line on stderr, `PEER: ERROR`, with
/// [`log_line`].
pub fn log_connection_error(peer: impl std::fmt::Display, error: impl std::fmt::Display) {
    log_line(format_args!("{peer}: {error}"));
}
