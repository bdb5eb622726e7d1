//! # udp: one socket serves every peer
//!
//! **Model.** No connection and no `accept`: one UDP socket and one thread
//! `recv_from` a datagram and `send_to` it back, whole, to the address it came
//! from — the course's UDP server. `--batch N` takes up to N queued datagrams
//! with one `recvmmsg` and answers them with one `sendmmsg`. `--workers N`
//! binds N SO_REUSEPORT sockets on the port, a thread each, pinned to a CPU
//! of the mask (`--no-pin`); the kernel hashes each peer's address to one of them.
//!
//! **System calls.** Per peer: none. Per datagram: one `recvfrom` and one
//! `sendto`. With `--batch N`: one `recvmmsg` (`MSG_WAITFORONE`: it waits for
//! the first datagram, then takes what is queued) and one `sendmmsg` per
//! wake-up, so 2/k calls per datagram when k ≤ N datagrams were queued: down
//! to 2/N on a busy server, still 2 on an idle one that finds one datagram at
//! a time. Per worker, once: `socket`, `setsockopt(SO_REUSEPORT)`, `bind`,
//! `sched_setaffinity`.
//!
//! **Costs.** Nothing per peer. Per worker: a thread, the socket's receive
//! buffer (`net.core.rmem_default`) and a 64 KiB buffer for each datagram of
//! a batch, large enough for the largest (2 MiB at `--batch 32`).
//!
//! **Limits.** No flow control: a peer faster than the server fills the
//! receive buffer and the kernel drops what follows (`/proc/net/snmp`
//! `Udp: RcvbufErrors`); nobody resends. One worker is one core. A failed
//! send (an ICMP error for a peer that left, reported as `ECONNREFUSED`) is
//! one line on stderr and the server serves the others. The hash of
//! `--workers` does not see load: a peer always lands on the same worker.
//!
//! **Compare with.** `single`, the same blocking loop, which here serves
//! every peer at once since each datagram is a whole request; `reuseport`,
//! the same spreading of a port over cores for TCP connections.

#![deny(unsafe_op_in_unsafe_fn)]

use echo_core::affinity;
use echo_core::process::{self, Setup};
use echo_core::syscalls::{EPOLL_WAIT, Expect, ONCE, Profile, RECV, SEND, SHARED};
use nix::errno::Errno;
use nix::sys::socket::{SockaddrLike, SockaddrStorage};
use nix::unistd::gettid;
use std::io;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

/// The "System calls" section above as numbers: calls per datagram under
/// [`echo_core::syscalls::PROFILE_LOAD`] (a light load: each wake-up finds
/// about one datagram, so a batch is about one datagram too), checked
/// against the kernel's counters by `harness/tests/udp_load.rs`.
pub const SYSCALLS: &[Profile] = &[
    Profile {
        args: &[],
        per_message: ONE_AT_A_TIME,
    },
    Profile {
        args: &["--batch", "32"],
        per_message: &[
            Expect::calls(&["recvmmsg"], SHARED),
            Expect::calls(&["sendmmsg"], SHARED),
            Expect::none(RECV),
            Expect::none(SEND),
            Expect::none(EPOLL_WAIT),
            Expect::none(&["futex"]),
        ],
    },
    Profile {
        args: &["--workers", "2"],
        per_message: ONE_AT_A_TIME,
    },
];

/// `recvfrom` then `sendto`, blocking, and nothing else.
const ONE_AT_A_TIME: &[Expect] = &[
    Expect::calls(RECV, ONCE),
    Expect::calls(SEND, ONCE),
    Expect::none(&["recvmmsg", "sendmmsg"]),
    Expect::none(EPOLL_WAIT),
    Expect::none(&["futex"]),
];

/// Bytes for one datagram: more than the largest UDP payload
/// ([`echo_core::MAX_DATAGRAM`]), so that none is ever cut short.
pub const DATAGRAM_BUFFER: usize = 64 * 1024;

/// Options of the `udp` model.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {
    /// Receive and send up to N datagrams per system call (recvmmsg/sendmmsg) [default: one recvfrom and one sendto per datagram].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub batch: Option<u16>,

    /// Sockets on the port (SO_REUSEPORT), each with its own thread [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// Let the scheduler move the workers instead of pinning each to one CPU of the mask.
    #[arg(long)]
    pub no_pin: bool,
}

/// With `--workers`, the first socket gets SO_REUSEPORT so that the others can join its port.
pub fn setup() -> Setup<Options> {
    Setup {
        reuse_port: |options| options.workers.is_some(),
        ..Setup::default()
    }
}

/// One worker's count of datagrams, and its thread id for its CPU time.
#[derive(Default)]
#[repr(align(64))]
struct Worker {
    datagrams: AtomicU64,
    tid: AtomicI32,
}

/// Starts the workers, each on its own socket, and waits until one fails.
pub fn serve(socket: UdpSocket, options: &Options) -> io::Result<()> {
    let count = options.workers.map_or(1, usize::from);
    let cpus = affinity::allowed_cpus()?;
    let sockets = process::reuse_port_udp_sockets(socket, count)?;
    let workers: Arc<[Worker]> = (0..count).map(|_| Worker::default()).collect();
    // One socket, one thread, as the course writes it: pinned only when spread.
    let pins: Vec<Option<usize>> = (0..count)
        .map(|index| (options.workers.is_some() && !options.no_pin).then(|| cpus[index % cpus.len()]))
        .collect();
    log_shares_on_stop(Arc::clone(&workers), pins.clone());

    let (stopped, first_stop) = mpsc::channel();
    for ((index, socket), pin) in sockets.into_iter().enumerate().zip(pins) {
        let (workers, stopped, batch) = (Arc::clone(&workers), stopped.clone(), options.batch);
        thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || {
                let worker = &workers[index];
                worker.tid.store(gettid().as_raw(), Ordering::Relaxed);
                let outcome = match pin {
                    Some(cpu) => affinity::pin_to(&[cpu]),
                    None => Ok(()),
                }
                .and_then(|()| match batch {
                    None => echo_one_at_a_time(&socket, &worker.datagrams),
                    Some(size) => echo_in_batches(&socket, usize::from(size), &worker.datagrams),
                });
                let _ = stopped.send((index, outcome));
            })?;
    }
    let (index, outcome) = first_stop.recv().map_err(io::Error::other)?;
    outcome.map_err(|error| io::Error::new(error.kind(), format!("worker {index}: {error}")))
}

/// The course's loop: `recv_from`, then `send_to` the sender.
fn echo_one_at_a_time(socket: &UdpSocket, datagrams: &AtomicU64) -> io::Result<()> {
    let mut buffer = vec![0; DATAGRAM_BUFFER];
    loop {
        let (length, peer) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(error) => {
                survive(error, "receive")?;
                continue;
            }
        };
        if let Err(error) = socket.send_to(&buffer[..length], peer) {
            survive(error, peer)?;
        }
        datagrams.fetch_add(1, Ordering::Relaxed);
    }
}

/// `recvmmsg` what is queued (at least one), `sendmmsg` it all back.
fn echo_in_batches(socket: &UdpSocket, size: usize, datagrams: &AtomicU64) -> io::Result<()> {
    let mut batch = Batch::new(size);
    let fd = socket.as_raw_fd();
    loop {
        let received = match batch.receive(fd) {
            Ok(received) => received,
            Err(error) => {
                survive(error, "receive")?;
                continue;
            }
        };
        // sendmmsg stops at the first datagram it cannot send: that one is
        // skipped (its peer's error logged), the rest go in the next call.
        let mut sent = 0;
        while sent < received {
            match batch.send(fd, sent..received) {
                Ok(count) => sent += count,
                Err(error) => {
                    survive(error, batch.peer(sent))?;
                    sent += 1;
                }
            }
        }
        datagrams.fetch_add(received as u64, Ordering::Relaxed);
    }
}

/// An error of one peer or one datagram is logged and survived; one of the
/// socket itself (a bad descriptor, say) ends the worker.
fn survive(error: io::Error, whom: impl std::fmt::Display) -> io::Result<()> {
    let errno = Errno::from_raw(error.raw_os_error().unwrap_or(0));
    match errno {
        Errno::EINTR | Errno::EAGAIN => Ok(()),
        Errno::ECONNREFUSED
        | Errno::EHOSTUNREACH
        | Errno::ENETUNREACH
        | Errno::EHOSTDOWN
        | Errno::EMSGSIZE
        | Errno::ENOBUFS
        | Errno::ENOMEM
        | Errno::EPERM
        | Errno::EACCES
        | Errno::EADDRNOTAVAIL => {
            echo_core::log_connection_error(whom, error);
            Ok(())
        }
        _ => Err(error),
    }
}

/// The buffers, addresses and headers of one `recvmmsg`/`sendmmsg` pair.
/// The headers point into the other three, which are allocated once and
/// never grow, so the pointers stay valid as long as the batch lives.
struct Batch {
    buffers: Vec<u8>,
    iovecs: Vec<libc::iovec>,
    peers: Vec<libc::sockaddr_storage>,
    headers: Vec<libc::mmsghdr>,
}

impl Batch {
    fn new(size: usize) -> Batch {
        // SAFETY: all-zero bytes are a valid sockaddr_storage, iovec and
        // mmsghdr (null pointers and zero lengths).
        let (peer, iovec, header) = unsafe { (std::mem::zeroed(), std::mem::zeroed(), std::mem::zeroed()) };
        Batch {
            buffers: vec![0; size * DATAGRAM_BUFFER],
            iovecs: vec![iovec; size],
            peers: vec![peer; size],
            headers: vec![header; size],
        }
    }

    /// Waits for a datagram, then takes every one queued, up to the batch
    /// size; returns how many.
    fn receive(&mut self, fd: RawFd) -> io::Result<usize> {
        let buffers = self.buffers.chunks_exact_mut(DATAGRAM_BUFFER);
        let slots = self.iovecs.iter_mut().zip(&mut self.peers).zip(&mut self.headers);
        for (buffer, ((iovec, peer), header)) in buffers.zip(slots) {
            *iovec = libc::iovec {
                iov_base: buffer.as_mut_ptr().cast(),
                iov_len: buffer.len(),
            };
            header.msg_hdr.msg_name = std::ptr::from_mut(peer).cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_iov = std::ptr::from_mut(iovec);
            header.msg_hdr.msg_iovlen = 1;
            header.msg_len = 0;
        }
        // SAFETY: each header points at its own buffer (iov_len bytes) and
        // peer (msg_namelen bytes), owned by `self` and not moved during the
        // call; the kernel writes within those bounds.
        let received = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                self.headers.len() as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        let received = usize::try_from(received).map_err(|_| io::Error::last_os_error())?;
        // Each reply is the datagram as received: its length, to its sender
        // (msg_name and msg_namelen, as the kernel filled them).
        for (iovec, header) in self.iovecs.iter_mut().zip(&self.headers).take(received) {
            iovec.iov_len = header.msg_len as usize;
        }
        Ok(received)
    }

    /// Sends the datagrams of `range` back to their peers in one call;
    /// returns how many the kernel took (at least one), or the first one's error.
    fn send(&mut self, fd: RawFd, range: std::ops::Range<usize>) -> io::Result<usize> {
        let headers = &mut self.headers[range];
        // SAFETY: the headers were filled by `receive` and still point at
        // this batch's buffers and peers; the kernel only reads them.
        let sent = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), headers.len() as libc::c_uint, 0) };
        usize::try_from(sent).map_err(|_| io::Error::last_os_error())
    }

    /// The sender of datagram `index`, for a log line.
    fn peer(&self, index: usize) -> String {
        let header = &self.headers[index].msg_hdr;
        // SAFETY: msg_name points at this batch's peer `index`, of which the
        // kernel filled msg_namelen bytes.
        let address = unsafe {
            <SockaddrStorage as SockaddrLike>::from_raw(header.msg_name.cast(), Some(header.msg_namelen))
        };
        address.map_or_else(|| "a peer".to_owned(), |address| address.to_string())
    }
}

/// At SIGTERM/SIGINT, with more than one worker: one line per worker with
/// its share of the datagrams and its CPU time.
fn log_shares_on_stop(workers: Arc<[Worker]>, pins: Vec<Option<usize>>) {
    if workers.len() < 2 {
        return;
    }
    process::on_stop(move || {
        let total: u64 = workers
            .iter()
            .map(|worker| worker.datagrams.load(Ordering::Relaxed))
            .sum();
        for (index, (worker, pin)) in workers.iter().zip(&pins).enumerate() {
            let datagrams = worker.datagrams.load(Ordering::Relaxed);
            let percent = if total == 0 {
                0.0
            } else {
                100.0 * datagrams as f64 / total as f64
            };
            let cpu = pin.map(|cpu| format!(" (cpu {cpu})")).unwrap_or_default();
            let time = echo_core::workers::cpu_time(&format!(
                "/proc/self/task/{}/stat",
                worker.tid.load(Ordering::Relaxed)
            ))
            .map(|time| format!(", {:.2} s CPU", time.as_secs_f64()))
            .unwrap_or_default();
            echo_core::log_line(format_args!(
                "udp: worker {index}{cpu}: {datagrams} datagrams ({percent:.0}%){time}"
            ));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn options_have_bounds_and_only_workers_reuse_the_port() {
        let default = process::parse_options::<Options>(&[]).unwrap();
        assert_eq!(
            (default.batch, default.workers, default.no_pin),
            (None, None, false)
        );
        assert!(!(setup().reuse_port)(&default));
        let spread = process::parse_options::<Options>(&["--batch", "32", "--workers", "2"]).unwrap();
        assert_eq!((spread.batch, spread.workers), (Some(32), Some(2)));
        assert!((setup().reuse_port)(&spread));
        assert!(process::parse_options::<Options>(&["--batch", "0"]).is_err());
        assert!(process::parse_options::<Options>(&["--workers", "0"]).is_err());
    }

    #[test]
    fn a_batch_echoes_each_datagram_to_its_own_sender() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peers: Vec<UdpSocket> = (0..3).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        for (index, peer) in peers.iter().enumerate() {
            peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            peer.send_to(&vec![index as u8; 100 + index], server.local_addr().unwrap())
                .unwrap();
        }
        let mut batch = Batch::new(4);
        let mut received = 0;
        while received < 3 {
            let got = batch.receive(server.as_raw_fd()).unwrap();
            assert_eq!(batch.send(server.as_raw_fd(), 0..got).unwrap(), got);
            received += got;
        }
        for (index, peer) in peers.iter().enumerate() {
            let mut buffer = [0; 512];
            let (length, from) = peer.recv_from(&mut buffer).unwrap();
            assert_eq!(from, server.local_addr().unwrap());
            assert_eq!(&buffer[..length], &vec![index as u8; 100 + index][..]);
        }
    }
}
