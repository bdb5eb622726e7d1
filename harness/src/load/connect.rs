//! Opening many connections at once without flooding the listen queue:
//! nonblocking connects, at most [`IN_FLIGHT`] unfinished at a time, each
//! with its own deadline (after which it is given up, or issued again), the
//! whole phase with another.

use super::{CONNECT_DEADLINE, SETUP_DEADLINE, count_connect_error};
use crate::results::cell::Errors;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use nix::sys::socket::setsockopt;
use nix::sys::socket::sockopt::IpBindAddressNoPort;
use socket2::{Domain, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Connects being established at once: enough to keep the server's accept
/// loop busy, few enough not to overflow a 1024-entry listen queue.
pub const IN_FLIGHT: usize = 256;

/// Opens `count` connections to `addr`, from local address `source` when
/// given. A connection that fails or does not finish in time is `None` and
/// counted in the returned errors.
pub fn connect_all_from(
    addr: SocketAddr,
    source: Option<IpAddr>,
    count: usize,
) -> io::Result<(Vec<Option<TcpStream>>, Errors)> {
    let connects = connect_all_by(
        addr,
        source,
        count,
        Instant::now() + SETUP_DEADLINE,
        Expiry::Error,
    )?;
    Ok((connects.streams, connects.errors))
}

/// What becomes of a connect that has not finished in time.
#[derive(Debug, Clone, Copy)]
pub enum Expiry {
    /// Given up after [`CONNECT_DEADLINE`], or at the phase deadline, and
    /// counted as an error; the phase ends when every connect has finished
    /// or been given up.
    Error,
    /// Dropped after this long and issued again at the same index, as is a
    /// connect that fails (counted in the errors): the phase ends when all
    /// are connected, or at the phase deadline, when the connects still
    /// unfinished are dropped (and counted nowhere).
    Reissue(Duration),
}

/// What [`connect_all_by`] opened.
pub struct Connects {
    /// By index: the connection, or `None` where none was opened.
    pub streams: Vec<Option<TcpStream>>,
    pub errors: Errors,
    /// Connects dropped after [`Expiry::Reissue`]'s time and issued again.
    pub reissued: u64,
}

/// [`connect_all_from`], with the whole phase ending at `phase_deadline`
/// and a connect not finished in time handled as `expiry` says.
pub fn connect_all_by(
    addr: SocketAddr,
    source: Option<IpAddr>,
    count: usize,
    phase_deadline: Instant,
    expiry: Expiry,
) -> io::Result<Connects> {
    let reissue_after = match expiry {
        Expiry::Error => None,
        Expiry::Reissue(after) => Some(after),
    };
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut errors = Errors::default();
    let mut connected: Vec<Option<TcpStream>> = (0..count).map(|_| None).collect();
    let mut pending: Vec<Option<(TcpStream, Instant)>> = (0..count).map(|_| None).collect();
    let (mut next, mut in_flight, mut oldest) = (0usize, 0usize, 0usize);
    let (mut done, mut reissued) = (0usize, 0u64);
    // Indices to issue again (with Expiry::Reissue): each counts against
    // IN_FLIGHT until it is.
    let mut again: Vec<usize> = Vec::new();

    loop {
        if reissue_after.is_none() && next == count && in_flight == 0 {
            break;
        }
        let mut issuing = std::mem::take(&mut again);
        loop {
            let index = if let Some(index) = issuing.pop() {
                index
            } else if in_flight + again.len() < IN_FLIGHT && next < count {
                next += 1;
                next - 1
            } else {
                break;
            };
            match connect_from(addr, source) {
                Ok(mut stream) => {
                    poll.registry()
                        .register(&mut stream, Token(index), Interest::WRITABLE)?;
                    pending[index] = Some((stream, Instant::now()));
                    in_flight += 1;
                }
                Err(error) => {
                    count_connect_error(&mut errors, &error);
                    if reissue_after.is_some() {
                        again.push(index);
                    }
                }
            }
        }
        let now = Instant::now();
        let timeout = match reissue_after {
            None => Duration::from_millis(50),
            Some(_) if done < count && now < phase_deadline => {
                Duration::from_millis(10).min(phase_deadline - now)
            }
            Some(_) => break,
        };
        poll.poll(&mut events, Some(timeout))?;
        for event in events.iter() {
            let index = event.token().0;
            let Some((stream, _)) = pending[index].as_mut() else {
                continue;
            };
            match finish_connect(stream) {
                Ok(false) => continue, // spurious wake-up: still connecting
                Ok(true) => {
                    let (mut stream, _) = pending[index].take().expect("checked above");
                    poll.registry().deregister(&mut stream)?;
                    connected[index] = Some(stream);
                    done += 1;
                }
                Err(error) => {
                    pending[index] = None;
                    count_connect_error(&mut errors, &error);
                    if reissue_after.is_some() {
                        again.push(index);
                    }
                }
            }
            in_flight -= 1;
        }
        let now = Instant::now();
        // Below `oldest` every connect is settled: connected, or (without
        // reissuing) given up.
        while oldest < next
            && pending[oldest].is_none()
            && (reissue_after.is_none() || connected[oldest].is_some())
        {
            oldest += 1;
        }
        for (index, slot) in pending.iter_mut().enumerate().take(next).skip(oldest) {
            let Some((_, started)) = slot else {
                continue;
            };
            let waited = now.duration_since(*started);
            match reissue_after {
                None if waited > CONNECT_DEADLINE || now > phase_deadline => errors.connect += 1,
                Some(after) if waited >= after => {
                    again.push(index);
                    reissued += 1;
                }
                _ => continue,
            }
            *slot = None;
            in_flight -= 1;
        }
        if reissue_after.is_none() && now > phase_deadline && next < count {
            errors.connect += (count - next) as u64;
            next = count;
        }
    }
    Ok(Connects {
        streams: connected,
        errors,
        reissued,
    })
}

/// Source addresses churn spreads its connections over when the target is
/// on loopback: each source address has its own ~28k ephemeral ports to the
/// server's one port, so a churn at tens of thousands of connections per
/// second does not spend its time searching TIME_WAIT sockets for a free one.
pub const LOOPBACK_SOURCES: u8 = 64;

/// The source address for the `n`th connection to `target`: `127.0.0.(1 +
/// n % LOOPBACK_SOURCES)` when the target is IPv4 loopback, else none (the
/// kernel picks).
pub fn loopback_source(target: SocketAddr, n: u64) -> Option<IpAddr> {
    match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => Some(IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            0,
            1 + (n % u64::from(LOOPBACK_SOURCES)) as u8,
        ))),
        _ => None,
    }
}

/// Starts a nonblocking connect to `target`, from `source` if given (bound
/// with IP_BIND_ADDRESS_NO_PORT, so the port is chosen per 4-tuple at connect).
pub fn connect_from(target: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(target);
    };
    let socket = Socket::new(Domain::for_address(target), Type::STREAM.nonblocking(), None)?;
    setsockopt(&socket, IpBindAddressNoPort, &true)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(error) if error.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(error) => return Err(error),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// After a writable event on a connecting socket: `Ok(true)` when connected
/// (and TCP_NODELAY set), `Ok(false)` when still in progress, or the error.
pub fn finish_connect(stream: &TcpStream) -> io::Result<bool> {
    if let Some(error) = stream.take_error()? {
        return Err(error);
    }
    match stream.peer_addr() {
        Ok(_) => {
            stream.set_nodelay(true)?;
            Ok(true)
        }
        Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(error) => Err(error),
    }
}
