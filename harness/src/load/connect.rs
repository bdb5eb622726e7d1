//! Opening many connections at once without flooding the listen queue:
//! nonblocking connects, at most [`IN_FLIGHT`] unfinished at a time, each
//! with its own deadline, the whole phase with another.

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
    connect_all_by(addr, source, count, Instant::now() + SETUP_DEADLINE)
}

/// [`connect_all_from`], with the whole phase ending at `phase_deadline`:
/// the connects not finished by then are given up and counted.
pub fn connect_all_by(
    addr: SocketAddr,
    source: Option<IpAddr>,
    count: usize,
    phase_deadline: Instant,
) -> io::Result<(Vec<Option<TcpStream>>, Errors)> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut errors = Errors::default();
    let mut connected: Vec<Option<TcpStream>> = (0..count).map(|_| None).collect();
    let mut pending: Vec<Option<(TcpStream, Instant)>> = (0..count).map(|_| None).collect();
    let (mut next, mut in_flight, mut oldest) = (0usize, 0usize, 0usize);

    while next < count || in_flight > 0 {
        while in_flight < IN_FLIGHT && next < count {
            match connect_from(addr, source) {
                Ok(mut stream) => {
                    poll.registry()
                        .register(&mut stream, Token(next), Interest::WRITABLE)?;
                    pending[next] = Some((stream, Instant::now()));
                    in_flight += 1;
                }
                Err(error) => count_connect_error(&mut errors, &error),
            }
            next += 1;
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
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
                }
                Err(error) => {
                    pending[index] = None;
                    count_connect_error(&mut errors, &error);
                }
            }
            in_flight -= 1;
        }
        let now = Instant::now();
        while oldest < next && pending[oldest].is_none() {
            oldest += 1;
        }
        for slot in &mut pending[oldest..next] {
            let expired = matches!(slot, Some((_, started))
                if now.duration_since(*started) > CONNECT_DEADLINE || now > phase_deadline);
            if expired {
                *slot = None;
                errors.connect += 1;
                in_flight -= 1;
            }
        }
        if now > phase_deadline && next < count {
            errors.connect += (count - next) as u64;
            next = count;
        }
    }
    Ok((connected, errors))
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
