//! `slowloris`: many connections that each send one byte every few hundred
//! milliseconds, for as long as the fault lasts.
//!
//! [`CONNECTIONS`] connections, each sending one byte every [`PERIOD`]
//! (staggered, so the bytes arrive evenly) and reading its echo back, which
//! is checked. None of them ever finishes, so a model that gives a
//! connection a thread or a worker until it closes gives these theirs for
//! the whole fault. At most `fault length / PERIOD + 1` bytes per connection.

use super::clients::{self, Echoed, FAULT_STREAMS};
use super::{Injected, Injection, plural};
use crate::load::payload;
use crate::protocol::Protocol;
use mio::{Events, Interest};
use std::io::Write;
use std::time::{Duration, Instant};

/// Connections: far more than `pool`'s 16 workers.
pub const CONNECTIONS: usize = 256;
/// Time between two bytes of one connection.
pub const PERIOD: Duration = Duration::from_millis(300);

pub fn inject(injection: &Injection) -> anyhow::Result<Injected> {
    inject_with(injection, CONNECTIONS, PERIOD)
}

pub fn inject_with(injection: &Injection, count: usize, period: Duration) -> anyhow::Result<Injected> {
    let (mut streams, mut poll) = clients::connect_polled(injection, count, Interest::READABLE, None)?;
    injection.engage();
    let started = Instant::now();
    let count = streams.len().max(1);
    let mut next_byte: Vec<Instant> = (0..streams.len())
        .map(|index| started + period.mul_f64(index as f64 / count as f64))
        .collect();
    let mut sent = vec![0u64; streams.len()];
    let mut received = vec![0u64; streams.len()];
    let mut open = vec![true; streams.len()];
    let mut lost = 0;
    let mut buffer = vec![0u8; 4096];
    let mut events = Events::with_capacity(1024);
    while !injection.over() {
        let now = Instant::now();
        let mut wake = injection.until;
        for index in 0..streams.len() {
            if !open[index] {
                continue;
            }
            if next_byte[index] <= now {
                let id = FAULT_STREAMS + index as u64;
                let byte = [byte_of(injection.protocol, id, sent[index])];
                match streams[index].write(&byte) {
                    Ok(1) => sent[index] += 1,
                    Ok(_) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => open[index] = false,
                }
                next_byte[index] += period;
            }
            wake = wake.min(next_byte[index]);
        }
        poll.poll(&mut events, Some(wake.saturating_duration_since(Instant::now())))?;
        for event in events.iter() {
            let index = event.token().0;
            if !open[index] {
                continue;
            }
            let id = FAULT_STREAMS + index as u64;
            match clients::read_answer(
                injection.protocol,
                &mut streams[index],
                id,
                &mut received[index],
                sent[index],
                &mut buffer,
            ) {
                Echoed::Bytes(_) | Echoed::Nothing => {}
                Echoed::Closed => open[index] = false,
                Echoed::Wrong => {
                    lost += 1;
                    open[index] = false;
                }
            }
        }
    }
    let total_sent: u64 = sent.iter().sum();
    let total_received: u64 = received.iter().sum();
    let closed = open.iter().filter(|&&open| !open).count();
    let answered = received.iter().filter(|&&received| received > 0).count();
    let connections = streams.len() as u64;
    drop(streams);
    Ok(Injected {
        connections,
        bytes: total_sent,
        lost,
        note: format!(
            "{} each sent a byte every {} ms ({} in all, {} echoed); {} got an echo, the server closed {}",
            plural(connections, "connection"),
            period.as_millis(),
            plural(total_sent, "byte"),
            total_received,
            answered,
            closed
        ),
    })
}

/// Byte `offset` a connection sends: its echo payload, or under HTTP a
/// request whose header section never ends: the request line, a `Host`,
/// then one header whose value grows by a letter a period (a server
/// answers nothing until the blank line, which never comes; far fewer
/// bytes than any header limit in a fault's length).
fn byte_of(protocol: Protocol, stream_id: u64, offset: u64) -> u8 {
    const HEADER: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: echolab\r\nX-Slowloris: ";
    match protocol {
        Protocol::Http => HEADER.get(offset as usize).copied().unwrap_or(b'a'),
        Protocol::Echo | Protocol::Udp => {
            let mut byte = [0u8; 1];
            payload::fill(stream_id, offset, &mut byte);
            byte[0]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_server::{Behaviour, TestServer};
    use super::*;

    #[test]
    fn each_connection_trickles_a_byte_per_period_and_its_echo_is_checked() {
        let server = TestServer::start(Behaviour::Echo);
        let injection = Injection::new(server.addr, 0, Instant::now() + Duration::from_millis(500));
        let injected = inject_with(&injection, 5, Duration::from_millis(100)).unwrap();
        assert_eq!((injected.connections, injected.lost), (5, 0));
        // About five bytes each, one at a time, at least 80 ms apart.
        assert!((20..=30).contains(&injected.bytes), "{}", injected.note);
        assert_eq!(server.count(|counts| &counts.bytes), injected.bytes);
        assert!(server.count(|counts| &counts.longest_gap_ms) >= 80);
        assert!(injected.note.contains("5 got an echo"), "{}", injected.note);

        let corrupt = TestServer::start(Behaviour::Corrupt);
        let injection = Injection::new(corrupt.addr, 0, Instant::now() + Duration::from_millis(300));
        assert_eq!(
            inject_with(&injection, 5, Duration::from_millis(100))
                .unwrap()
                .lost,
            5
        );
    }
}
