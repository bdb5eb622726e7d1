//! # uring: one thread, one io_uring, written by hand
//!
//! **Model.** One thread owns one io_uring. It queues requests (accept,
//! receive, send) on the submission queue, hands them all to the kernel with
//! one `io_uring_enter` that also waits, and reads the results on the
//! completion queue: the kernel reports what is *done*, where epoll reports
//! what is *ready*. No runtime stands in between.
//!
//! **System calls.** Per connection: `setsockopt(TCP_NODELAY)` and `close`;
//! the accept itself is one completion of a multishot accept. Per message:
//! none of its own, only a share of one `io_uring_enter` per round, which
//! submits every send the last round's completions queued and waits for the
//! next (lightly loaded, a message is a round of its own: one or two
//! `io_uring_enter`; busy, one round serves many). Each connection keeps one multishot receive armed, which takes
//! buffers from a ring of provided buffers that the server refills in place.
//!
//! **Costs.** Per connection: no thread and no epoll registration, one armed
//! receive, its unsent bytes (at most 16 KiB before it stops receiving).
//! Shared: 2,048 provided buffers of 4 KiB and the two queues.
//!
//! **Limits.** One thread, so one core, like `epoll`. The kernel reads and
//! writes the program's memory while a request is in flight, so no buffer
//! may move or be freed and no socket be closed before its completion: the
//! compiler cannot check that, hence the `unsafe` blocks. Backpressure
//! cancels a multishot receive, so a few buffers more may arrive after the
//! bound. Where io_uring is disabled (`kernel.io_uring_disabled`, seccomp) or
//! too old, the server exits 3 with the cause and the fix. SINGLE_ISSUER,
//! DEFER_TASKRUN and COOP_TASKRUN are on where the kernel has them;
//! `--sqpoll` adds a kernel thread that polls the submission queue (no
//! `io_uring_enter` to submit) and so keeps a second core busy.
//!
//! **Protocols and work.** Received bytes go through the protocol step (one
//! copy more than the bare echo: into the step, out to the send buffer).
//! `--work wait:` is an io_uring timeout request per held connection: no system
//! call of its own, completed in a round.
//!
//! **Compare with.** `epoll`, which makes a system call per read and per write
//! after being told a socket is ready; `async`, whose runtime hides readiness
//! behind futures, where this shows the queues bare.
//!
//! **Layout.** This file is the loop; `ring.rs` builds the ring, checks what
//! the kernel offers and holds the provided buffers the kernel fills.

#![deny(unsafe_op_in_unsafe_fn)]

mod ring;

use echo_core::BUFFER_SIZE;
use echo_core::accept::{self, AcceptError, Exhaustion};
use echo_core::process::Setup;
use echo_core::step::Step;
use echo_core::syscalls::{EPOLL_WAIT, Expect, Profile, RECV, SEND};
use io_uring::cqueue::{self, buffer_select};
use io_uring::types::{Fd, Timespec};
use io_uring::{IoUring, opcode, squeue};
use ring::{BUFFER_LEN, BufferRing, CQ_ENTRIES, GROUP, probe};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::Instant;

/// The "System calls" section above as numbers: calls per message under
/// [`echo_core::syscalls::PROFILE_LOAD`], checked against the kernel's
/// counters by `harness/tests/syscall_profile.rs`.
pub const SYSCALLS: &[Profile] = &[Profile {
    args: &[],
    per_message: &[
        // Lightly loaded, every message is a round of its own (one or two
        // io_uring_enter); under load one round serves many messages.
        Expect::calls(&["io_uring_enter"], 0.2..=2.1),
        Expect::none(RECV),
        Expect::none(SEND),
        Expect::none(EPOLL_WAIT),
    ],
}];

/// Options of the `uring` model.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {
    /// A kernel thread polls the submission queue (SQPOLL): submitting needs no system call, but that thread spins a core.
    #[arg(long)]
    pub sqpoll: bool,
}

/// Checks before the ready line that this machine can run the model.
pub fn setup() -> Setup<Options> {
    Setup {
        supported: |options| probe(options.sqpoll).map(drop),
        ..Setup::default()
    }
}

/// What a completion is for: the low byte of its `user_data`; the rest is
/// the connection's fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Accept = 1,
    Recv,
    Send,
    Cancel,
    Resume,
    Wake,
}

fn token(op: Op, fd: RawFd) -> u64 {
    (fd as u64) << 8 | op as u64
}

fn decode(user_data: u64) -> (Option<Op>, usize) {
    let op = [Op::Accept, Op::Recv, Op::Send, Op::Cancel, Op::Resume, Op::Wake]
        .into_iter()
        .find(|&op| op as u64 == user_data & 0xff);
    (op, (user_data >> 8) as usize)
}

/// Serves every client from one thread and one ring, until the ring or the
/// listener fails.
pub fn serve(listener: TcpListener, options: &Options) -> io::Result<()> {
    let (ring, multishot_recv) = probe(options.sqpoll).map_err(io::Error::other)?;
    let buffers = BufferRing::register(&ring)?;
    let mut server = Server {
        ring,
        sqpoll: options.sqpoll,
        buffers,
        multishot_recv,
        listener,
        connections: Vec::new(),
        exhaustion: Exhaustion::default(),
        pause: Box::new(Timespec::new().nsec(accept::PAUSE.as_nanos() as u32)),
    };
    server.arm_accept()?;
    let mut completed = Vec::with_capacity(CQ_ENTRIES as usize);
    loop {
        // One system call per round: submit what the last round queued,
        // wait for at least one completion.
        match server.ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(error) if matches!(error.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
            Err(error) => return Err(error),
        }
        completed.clear();
        completed.extend(server.ring.completion());
        for completion in &completed {
            server.complete(completion)?;
        }
        // Buffers copied out this round go back to the kernel at once.
        server.buffers.publish();
    }
}

/// One connection: its protocol step, what it still has to send, and which
/// requests on it are in flight. It is dropped (and so closed) only when
/// none is.
struct Connection {
    stream: TcpStream,
    step: Step,
    /// Received and not yet taken by the step (it takes input only when it
    /// has room): counted in the backpressure bound.
    inbox: Vec<u8>,
    /// The end of the stream was handed to the step.
    eof_given: bool,
    /// A `wait:` work's timeout request is in flight, for this instant; the
    /// kernel reads `wake_after` until it completes.
    waking_at: Option<Instant>,
    wake_after: Box<Timespec>,
    /// Handed to the send in flight: the kernel reads it, so it neither
    /// changes nor moves until that send completes.
    sending: Vec<u8>,
    /// How much of `sending` the kernel has sent so far.
    sent: usize,
    /// The step's output while a send was in flight: sent next.
    queued: Vec<u8>,
    receiving: bool,
    send_in_flight: bool,
    cancelling: bool,
    peer_closed: bool,
    failed: bool,
}

impl Connection {
    fn unsent(&self) -> usize {
        self.sending.len() - self.sent + self.queued.len()
    }

    fn done(&self) -> bool {
        self.failed || (self.step.finished() && self.unsent() == 0)
    }

    /// Hands received bytes to the step, as many as it takes; keeps the rest.
    fn give(&mut self, mut bytes: &[u8]) {
        if self.inbox.is_empty() {
            while !bytes.is_empty() {
                let space = self.step.input_space();
                let taken = space.len().min(bytes.len());
                if taken == 0 {
                    break;
                }
                space[..taken].copy_from_slice(&bytes[..taken]);
                self.step.received(taken);
                bytes = &bytes[taken..];
            }
        }
        self.inbox.extend_from_slice(bytes);
    }

    /// Moves bytes through the step: what waits in the inbox in, the end of
    /// the stream once the inbox is empty, its output out to `queued` (up
    /// to the bound), until nothing moves.
    fn pump_step(&mut self) {
        loop {
            let inbox = std::mem::take(&mut self.inbox);
            self.give(&inbox);
            let mut moved = self.inbox.len() < inbox.len();
            if self.peer_closed && self.inbox.is_empty() && !self.eof_given {
                self.step.received(0);
                self.eof_given = true;
                moved = true;
            }
            // Received bytes are in memory already: pass them through (as
            // the echo did before the step), but read no more of a file
            // than the bound.
            while self.queued.len() < BUFFER_SIZE || !self.inbox.is_empty() {
                let output = self.step.output();
                if output.is_empty() {
                    break;
                }
                let wrote = output.len();
                self.queued.extend_from_slice(output);
                self.step.sent(wrote);
                moved = true;
                let inbox = std::mem::take(&mut self.inbox);
                self.give(&inbox);
            }
            if !moved {
                return;
            }
        }
    }

    fn fail(&mut self, error: io::Error) {
        if !self.failed {
            let peer = self.stream.peer_addr();
            let peer = peer.map_or_else(|_| format!("fd {}", self.stream.as_raw_fd()), |p| p.to_string());
            echo_core::log_connection_error(peer, error);
        }
        self.failed = true;
    }
}

struct Server {
    ring: IoUring,
    sqpoll: bool,
    buffers: BufferRing,
    multishot_recv: bool,
    listener: TcpListener,
    /// Indexed by fd, as in `epoll`.
    connections: Vec<Option<Connection>>,
    exhaustion: Exhaustion,
    /// The accept pause, read by the kernel when it takes the timeout request.
    pause: Box<Timespec>,
}

impl Server {
    /// Queues `entry`. A full submission queue is handed to the kernel to
    /// make room; no request is ever dropped.
    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every pointer an entry carries stays valid until its
            // completion: a connection's `sending` is not touched while its
            // send is in flight, a connection (its fd, its buffers) is
            // dropped only once nothing is in flight on it, the provided
            // buffers and `pause` live as long as the ring, and a
            // connection's `wake_after` until its timeout completes.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return Ok(());
            }
            match self.ring.submit() {
                Ok(_) => {}
                Err(error) if matches!(error.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(error) => return Err(error),
            }
            if self.sqpoll {
                self.ring.submitter().squeue_wait()?;
            }
        }
    }

    fn arm_accept(&mut self) -> io::Result<()> {
        let listener = Fd(self.listener.as_raw_fd());
        let accept = opcode::AcceptMulti::new(listener)
            .flags(libc::SOCK_CLOEXEC)
            .build();
        self.push(accept.user_data(token(Op::Accept, 0)))
    }

    fn complete(&mut self, completion: &cqueue::Entry) -> io::Result<()> {
        let (result, flags) = (completion.result(), completion.flags());
        match decode(completion.user_data()) {
            (Some(Op::Accept), _) => self.accepted(result, flags)?,
            (Some(Op::Resume), _) => self.arm_accept()?,
            (Some(Op::Recv), fd) => self.received(fd, result, flags)?,
            (Some(Op::Send), fd) => self.sent(fd, result)?,
            (Some(Op::Wake), fd) => {
                if let Some(connection) = self.connection(fd) {
                    connection.waking_at = None;
                }
                self.settle(fd)?;
            }
            (Some(Op::Cancel), fd) => {
                if let Some(connection) = self.connection(fd) {
                    connection.cancelling = false;
                }
                self.settle(fd)?;
            }
            (None, _) => {}
        }
        Ok(())
    }

    fn connection(&mut self, fd: usize) -> Option<&mut Connection> {
        self.connections.get_mut(fd).and_then(Option::as_mut)
    }

    fn accepted(&mut self, result: i32, flags: u32) -> io::Result<()> {
        if result >= 0 {
            self.exhaustion.recovered();
            // SAFETY: the kernel just opened this descriptor for this
            // process; nothing else owns it.
            let stream = unsafe { TcpStream::from_raw_fd(result) };
            let _ = stream.set_nodelay(true);
            let fd = result as usize;
            if self.connections.len() <= fd {
                self.connections.resize_with(fd + 1, || None);
            }
            self.connections[fd] = Some(Connection {
                stream,
                step: Step::new(),
                inbox: Vec::new(),
                eof_given: false,
                waking_at: None,
                wake_after: Box::new(Timespec::new()),
                sending: Vec::new(),
                sent: 0,
                queued: Vec::new(),
                receiving: false,
                send_in_flight: false,
                cancelling: false,
                peer_closed: false,
                failed: false,
            });
            self.settle(fd)?;
        }
        if cqueue::more(flags) {
            return Ok(());
        }
        // The multishot accept ended: on an error, or because the kernel
        // chose to. Arm it again, after a pause if out of descriptors.
        if result < 0 {
            let error = io::Error::from_raw_os_error(-result);
            match accept::classify(&error) {
                AcceptError::Retry => {}
                AcceptError::Exhausted => {
                    self.exhaustion.pause(&error);
                    let pause = opcode::Timeout::new(&*self.pause).build();
                    return self.push(pause.user_data(token(Op::Resume, 0)));
                }
                AcceptError::Fatal => return Err(error),
            }
        }
        self.arm_accept()
    }

    fn received(&mut self, fd: usize, result: i32, flags: u32) -> io::Result<()> {
        let buffer = buffer_select(flags);
        let Some(connection) = self.connections.get_mut(fd).and_then(Option::as_mut) else {
            if let Some(id) = buffer {
                self.buffers.give_back(id);
            }
            return Ok(());
        };
        if !cqueue::more(flags) {
            connection.receiving = false;
        }
        if let Some(id) = buffer {
            // Copied out, so the buffer goes back to the ring this round.
            let length = result.max(0) as usize;
            connection.give(self.buffers.received(id, length));
            self.buffers.give_back(id);
        }
        match result {
            0 => connection.peer_closed = true,
            ..0 if -result == libc::ENOBUFS => {
                // More completions this round than buffers: they are back
                // in the ring by the next round, and `settle` re-arms.
            }
            ..0 if -result == libc::ECANCELED => {} // Backpressure, below.
            ..0 => connection.fail(io::Error::from_raw_os_error(-result)),
            _ => {}
        }
        self.settle(fd)
    }

    fn sent(&mut self, fd: usize, result: i32) -> io::Result<()> {
        let Some(connection) = self.connection(fd) else {
            return Ok(());
        };
        connection.send_in_flight = false;
        if result < 0 {
            connection.fail(io::Error::from_raw_os_error(-result));
        } else {
            // A send may be partial: `settle` sends the rest.
            connection.sent += result as usize;
            if connection.sent == connection.sending.len() {
                connection.sending.clear();
                connection.sent = 0;
            }
        }
        self.settle(fd)
    }

    /// Decides what a connection needs next: a send, a receive armed again,
    /// a receive cancelled (backpressure, or closing), or closing.
    fn settle(&mut self, fd: usize) -> io::Result<()> {
        let multishot_recv = self.multishot_recv;
        let Some(connection) = self.connections.get_mut(fd).and_then(Option::as_mut) else {
            return Ok(());
        };
        let raw = Fd(fd as RawFd);
        // At most a send, a receive or its cancellation, and a timeout.
        let mut requests: [Option<squeue::Entry>; 3] = [None, None, None];
        if !connection.failed {
            connection.pump_step();
        }
        if let Some(until) = connection.step.held_until()
            && !connection.failed
            && connection.waking_at.is_none()
        {
            // A `wait:` work: a timeout request completes when it is over.
            let left = until.saturating_duration_since(Instant::now());
            *connection.wake_after = Timespec::from(left);
            let wake = opcode::Timeout::new(&*connection.wake_after).build();
            requests[2] = Some(wake.user_data(token(Op::Wake, fd as RawFd)));
            connection.waking_at = Some(until);
        }
        if connection.failed {
            connection.queued.clear();
        } else if !connection.send_in_flight && connection.unsent() > 0 {
            if connection.sending.is_empty() {
                std::mem::swap(&mut connection.sending, &mut connection.queued);
            }
            let rest = &connection.sending[connection.sent..];
            let send = opcode::Send::new(raw, rest.as_ptr(), rest.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build();
            requests[0] = Some(send.user_data(token(Op::Send, fd as RawFd)));
            connection.send_in_flight = true;
        }
        let over_bound = connection.unsent() + connection.inbox.len() >= BUFFER_SIZE;
        let may_receive = !connection.done() && !connection.peer_closed && !over_bound;
        if connection.receiving && !may_receive && !connection.cancelling {
            let receive = token(Op::Recv, fd as RawFd);
            let cancel = opcode::AsyncCancel::new(receive).build();
            requests[1] = Some(cancel.user_data(token(Op::Cancel, fd as RawFd)));
            connection.cancelling = true;
        } else if !connection.receiving && may_receive && !connection.cancelling {
            let receive = if multishot_recv {
                opcode::RecvMulti::new(raw, GROUP).build()
            } else {
                opcode::Recv::new(raw, std::ptr::null_mut(), BUFFER_LEN as u32)
                    .buf_group(GROUP)
                    .build()
                    .flags(squeue::Flags::BUFFER_SELECT)
            };
            requests[1] = Some(receive.user_data(token(Op::Recv, fd as RawFd)));
            connection.receiving = true;
        }
        let in_flight = connection.receiving
            || connection.send_in_flight
            || connection.cancelling
            || connection.waking_at.is_some();
        if connection.done() && !in_flight {
            self.connections[fd] = None; // Closes the socket: nothing refers to it now.
        }
        for request in requests.into_iter().flatten() {
            self.push(request)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for op in [Op::Accept, Op::Recv, Op::Send, Op::Cancel, Op::Resume, Op::Wake] {
            assert_eq!(decode(token(op, 1234)), (Some(op), 1234));
        }
        assert_eq!(decode(0).0, None);
    }
}
