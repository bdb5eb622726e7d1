//! # coroutine: a stackful coroutine per client (may)
//!
//! **Model.** Each client gets a coroutine running the same blocking echo loop
//! as `threaded`; when a read or write would block, `may` parks the coroutine
//! (its whole stack) and its worker thread runs another one.
//!
//! **System calls.** Per connection: `accept4`, `ioctl(FIONBIO)`,
//! `epoll_ctl(ADD)`, `setsockopt(TCP_NODELAY)`, then `epoll_ctl(DEL)` and
//! `close`. Per message, nonblocking underneath: a `recvfrom` that finds
//! nothing yet (EAGAIN) and parks the coroutine until a share of
//! `epoll_wait` wakes it, then a `read` that gets the bytes, and one `sendto`:
//! one system call more than `epoll` pays for looking like blocking code.
//!
//! **Costs.** Per connection: a stack (`--stack-size`, default 32 KiB of
//! address space; only touched pages cost memory) and its guard page, a
//! registration in the workers' epoll, one 16 KiB buffer on the heap. `may`
//! maps 1000 stacks up front and reuses them.
//!
//! **Limits.** Cooperative: a coroutine that computes, or blocks in a call
//! `may` does not wrap, holds its worker. A stack overflow hits the guard page
//! and kills the process. Each stack is two memory mappings, so
//! `vm.max_map_count` (65530 by default) caps a process near 32k clients.
//! Coroutines may resume on another worker: thread-locals are unsafe to rely on.
//!
//! **Protocols and work.** `--protocol http`: the blocking loop over the HTTP
//! step. `--work wait:` is `may`'s sleep: the coroutine parks on the
//! scheduler's timer, its worker runs others.
//!
//! **Compare with.** `threaded`, the same code with a kernel thread and an
//! 8 MiB stack per client; `async`, which stores only the live state of each
//! task in a compiler-built future, and needs `.await` at every wait.

use echo_core::accept::{self, AcceptError, Exhaustion};
use echo_core::syscalls::{EPOLL_WAIT, Expect, ONCE, Profile, RECV, SEND, SHARED};
use echo_core::{affinity, drive::serve_blocking};
use may::coroutine::JoinHandle;
use may::net::TcpListener;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::Instant;

/// The "System calls" section above as numbers: calls per message under
/// [`echo_core::syscalls::PROFILE_LOAD`], checked against the kernel's
/// counters by `harness/tests/syscall_profile.rs`.
pub const SYSCALLS: &[Profile] = &[Profile {
    args: &[],
    per_message: &[
        // `may` tries the read first: it finds nothing and parks the
        // coroutine; after the wake-up a plain `read` gets the bytes.
        Expect::calls(RECV, ONCE),
        Expect::eagain(RECV, ONCE),
        Expect::calls(&["read"], ONCE),
        Expect::calls(SEND, ONCE),
        Expect::calls(EPOLL_WAIT, SHARED),
    ],
}];

/// Options of the `coroutine` model.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Worker threads running the coroutines [default: CPUs in the affinity mask].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// Stack reserved for each coroutine, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 32 * 1024,
          value_parser = clap::value_parser!(u32).range(8 * 1024..))]
    pub stack_size: u32,
}

/// Serves every client with its own coroutine, until the listener fails.
pub fn serve(listener: std::net::TcpListener, options: &Options) -> io::Result<()> {
    let workers = options
        .workers
        .map_or_else(affinity::allowed_cpu_count, usize::from);
    // `may` counts stacks in words; an odd count would turn on usage tracing.
    let stack_words = (options.stack_size as usize / size_of::<usize>()) & !1;
    // Read once, when the scheduler starts: with the first coroutine or socket.
    may::config().set_workers(workers).set_stack_size(stack_words);

    // SAFETY: `into_raw_fd` hands over sole ownership of an open listening
    // socket; nothing else closes or uses that fd afterwards.
    let listener = unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) };
    let acceptor = spawn(move || accept_loop(listener))?;
    acceptor
        .join()
        .map_err(|_| io::Error::other("the accept coroutine panicked"))?
}

fn accept_loop(listener: TcpListener) -> io::Result<()> {
    let mut exhaustion = Exhaustion::default();
    loop {
        let (mut stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(error) => match accept::classify(&error) {
                AcceptError::Retry => continue,
                AcceptError::Exhausted => {
                    // Parks this coroutine only; the connections keep running.
                    let resume = exhaustion.pause(&error);
                    may::coroutine::sleep(resume.saturating_duration_since(Instant::now()));
                    continue;
                }
                AcceptError::Fatal => return Err(error),
            },
        };
        exhaustion.recovered();
        let _ = stream.set_nodelay(true);
        // If the coroutine cannot be created, its closure and so the stream
        // are dropped: that client is closed, the others go on.
        if let Err(error) = spawn(move || {
            if let Err(error) = serve_blocking(&mut stream, may::coroutine::sleep) {
                echo_core::log_connection_error(peer, error);
            }
        }) {
            echo_core::log_connection_error(peer, error);
        }
    }
}

/// Starts a coroutine with the configured stack size.
fn spawn<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> io::Result<JoinHandle<T>> {
    // SAFETY: `may` asks two things of a coroutine body. (1) No thread-local
    // state held across a switch, as the coroutine may resume on another
    // worker: these bodies keep none (`eprintln!` takes and releases the
    // stderr lock without switching). (2) Stay within the stack: buffers are
    // on the heap, there is no recursion, and the smallest stack allowed is
    // 8 KiB.
    unsafe { may::coroutine::Builder::new().spawn(body) }
}
