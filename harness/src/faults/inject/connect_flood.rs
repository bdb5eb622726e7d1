//! `connect-flood`: a burst of [`CONNECTIONS`] connects, eight times the
//! listen backlog every model asks for (1,024; the kernel caps it at
//! `net.core.somaxconn`), issued back to back without waiting for any.
//!
//! The kernel completes handshakes into the server's accept queue until it
//! is full, then drops what comes next (counted machine-wide in
//! `/proc/net/netstat` as `ListenOverflows` and `ListenDrops`, which the
//! fault's row reports); dropped clients retry their SYN after a second. The
//! connections are held silent until the fault ends, then closed. The
//! background's new clients queue behind the flood: how fast a model drains
//! its accept queue decides how long they wait.

use super::{Injected, Injection, plural};
use crate::load::connect::finish_connect;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::time::Instant;

/// The burst: eight times the 1,024-entry backlog.
pub const CONNECTIONS: usize = 8 * 1024;

pub fn inject(injection: &Injection) -> anyhow::Result<Injected> {
    inject_with(injection, CONNECTIONS)
}

pub fn inject_with(injection: &Injection, wanted: usize) -> anyhow::Result<Injected> {
    let room = super::idle_herd::room();
    let count = wanted.min(room);
    let mut poll = Poll::new()?;
    let burst_started = Instant::now();
    let mut pending: Vec<Option<TcpStream>> = Vec::with_capacity(count);
    let mut refused = 0u64;
    for index in 0..count {
        // On a starved CPU even the burst can outlast the fault.
        if injection.over() {
            break;
        }
        match TcpStream::connect(injection.addr) {
            Ok(mut stream) => {
                poll.registry()
                    .register(&mut stream, Token(index), Interest::WRITABLE)?;
                pending.push(Some(stream));
            }
            Err(_) => {
                refused += 1;
                pending.push(None);
            }
        }
    }
    let burst = burst_started.elapsed();
    let issued = pending.len();
    injection.engage();
    let mut connected: Vec<TcpStream> = Vec::with_capacity(count);
    let mut events = Events::with_capacity(1024);
    // At least one look, even when the burst took the whole fault.
    let mut first = true;
    while (first || !injection.over()) && connected.len() + (refused as usize) < issued {
        first = false;
        poll.poll(&mut events, Some(injection.left()))?;
        for event in events.iter() {
            let index = event.token().0;
            let Some(stream) = pending[index].as_ref() else {
                continue;
            };
            match finish_connect(stream) {
                Ok(false) => {}
                Ok(true) => {
                    let mut stream = pending[index].take().expect("checked above");
                    let _ = poll.registry().deregister(&mut stream);
                    connected.push(stream);
                }
                Err(_) => {
                    pending[index] = None;
                    refused += 1;
                }
            }
        }
    }
    injection.wait_for_end();
    let done = connected.len() as u64;
    let waiting = issued as u64 - done - refused;
    drop(connected);
    drop(pending);
    let mut note = format!(
        "{} issued in {:.0} ms",
        plural(issued as u64, "connect"),
        burst.as_secs_f64() * 1000.0
    );
    if issued < count {
        note += &format!(" (of {count}: the fault ended first)");
    }
    note += &format!("; {done} completed within the fault");
    if refused > 0 {
        note += &format!(", {refused} failed");
    }
    if waiting > 0 {
        note += &format!(", {waiting} were still waiting for the handshake");
    }
    Ok(Injected {
        connections: issued as u64,
        bytes: 0,
        lost: 0,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Socket, Type};
    use std::time::{Duration, Instant};

    #[test]
    fn a_burst_beyond_the_backlog_is_partly_dropped_and_counted_by_the_kernel() {
        // A listener with a backlog of 8 that never accepts.
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into())
            .unwrap();
        listener.listen(8).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let (overflows_before, _) = crate::faults::cell::listen_counters();
        let injection = Injection::new(addr, 0, Instant::now() + Duration::from_millis(300));
        let injected = inject_with(&injection, 200).unwrap();
        assert_eq!(injected.connections, 200);
        let completed: u64 = injected
            .note
            .split("; ")
            .nth(1)
            .and_then(|part| part.split_whitespace().next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("{}", injected.note));
        assert!(completed <= 20, "{}", injected.note);
        let (overflows_after, _) = crate::faults::cell::listen_counters();
        assert!(overflows_after > overflows_before);
    }
}
