//! # async: an async task per client (tokio)
//!
//! **Model.** Each client gets a tokio task: a future that reads like blocking
//! code and, at each `.await` that would block, hands its thread back to the
//! runtime, which waits on epoll for all tasks at once.
//!
//! **System calls.** Per connection: `accept4` (nonblocking at once),
//! `epoll_ctl(ADD)` (edge-triggered, once), `setsockopt(TCP_NODELAY)`, then
//! `epoll_ctl(DEL)` and `close`. Per message: one `recvfrom` and one `sendto`; a
//! short read tells tokio the socket is drained, so no `EAGAIN` read follows,
//! and `epoll_wait` runs only when no task is ready.
//!
//! **Costs.** Per connection: a task (the future's state machine, a few
//! hundred bytes), a registration in the reactor, one 16 KiB buffer. No stack:
//! what lives across an `.await` is stored in the future.
//!
//! **Limits.** Cooperative: a task that computes without awaiting holds its
//! worker thread. Workers default to the CPUs in the affinity mask;
//! `--runtime current-thread` runs everything on one thread, like `epoll`.
//!
//! **Protocols and work.** `--protocol http`: the same loop over the HTTP step.
//! `--work wait:` is tokio's sleep: a timer entry in the runtime's wheel, the
//! worker runs other tasks. The wheel ticks in milliseconds, so a 1 ms wait
//! lasts 1 to 2.
//!
//! **Compare with.** `epoll`, the same readiness loop written by hand as an
//! explicit state machine; `coroutine`, which suspends whole stacks instead of
//! compiler-built futures, so plain blocking-style code works unchanged.

#![forbid(unsafe_code)]

use echo_core::accept::{self, AcceptError, Exhaustion};
use echo_core::affinity;
use echo_core::step::Step;
use echo_core::syscalls::{EPOLL_WAIT, Expect, ONCE, Profile, RECV, SEND, SHARED};
use std::io::{self, ErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The "System calls" section above as numbers: calls per message under
/// [`echo_core::syscalls::PROFILE_LOAD`], checked against the kernel's
/// counters by `harness/tests/syscall_profile.rs`.
pub const SYSCALLS: &[Profile] = &[
    Profile {
        args: &[],
        per_message: TOKIO_ECHO,
    },
    Profile {
        args: &["--runtime", "current-thread"],
        per_message: TOKIO_ECHO,
    },
];

/// Both schedulers make the same calls per message: tokio's reactor is
/// epoll either way.
const TOKIO_ECHO: &[Expect] = &[
    Expect::calls(RECV, ONCE),
    Expect::eagain(RECV, 0.0..=0.05),
    Expect::calls(SEND, ONCE),
    Expect::calls(EPOLL_WAIT, SHARED),
];

/// Which tokio scheduler runs the tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// Every task on the calling thread.
    CurrentThread,
    /// Work-stealing worker threads.
    #[default]
    MultiThread,
}

/// Options of the `async` model.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {
    /// Tokio scheduler.
    #[arg(long, value_enum, default_value_t = Runtime::MultiThread)]
    pub runtime: Runtime,

    /// Worker threads of the multi-thread runtime [default: CPUs in the affinity mask].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
}

/// Serves every client with its own task, until the listener fails.
pub fn serve(listener: std::net::TcpListener, options: &Options) -> io::Result<()> {
    let mut builder = match options.runtime {
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Runtime::MultiThread => {
            let workers = options
                .workers
                .map_or_else(affinity::allowed_cpu_count, usize::from);
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(workers);
            builder
        }
    };
    let runtime = builder.enable_io().enable_time().build()?;
    listener.set_nonblocking(true)?;
    // Accepting runs as a task too, on the workers rather than this thread.
    runtime
        .block_on(runtime.spawn(accept_loop(listener)))
        .map_err(io::Error::other)?
}

async fn accept_loop(listener: std::net::TcpListener) -> io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let mut exhaustion = Exhaustion::default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => match accept::classify(&error) {
                AcceptError::Retry => continue,
                AcceptError::Exhausted => {
                    // Only this task sleeps; the connections keep being served.
                    let resume = exhaustion.pause(&error);
                    tokio::time::sleep_until(resume.into()).await;
                    continue;
                }
                AcceptError::Fatal => return Err(error),
            },
        };
        exhaustion.recovered();
        tokio::spawn(async move {
            if let Err(error) = serve_connection(stream).await {
                echo_core::log_connection_error(peer, error);
            }
        });
    }
}

/// Drives the protocol step ([`Step`]) until it is finished: writes what
/// it has to send, else reads. A slow reader stalls the write, and so the
/// reads: backpressure at one buffer. A `wait:` work is tokio's sleep: the
/// task yields its worker, which serves other tasks meanwhile.
async fn serve_connection(mut stream: TcpStream) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut step = Step::new();
    loop {
        if let Some(until) = step.held_until() {
            tokio::time::sleep_until(until.into()).await;
        }
        let output = step.output();
        if !output.is_empty() {
            match stream.write(output).await {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(wrote) => step.sent(wrote),
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
            continue;
        }
        if step.finished() {
            return Ok(());
        }
        let space = step.input_space();
        if space.is_empty() {
            return Err(io::Error::other("the protocol step neither reads nor writes"));
        }
        match stream.read(space).await {
            Ok(read) => step.received(read),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}
