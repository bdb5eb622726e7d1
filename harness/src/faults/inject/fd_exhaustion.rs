//! `fd-exhaustion`: the server is started under RLIMIT_NOFILE [`LIMIT`]
//! (soft and hard, set before it runs, so it cannot raise it), and
//! [`LIMIT`] + [`BEYOND`] clients connect, each sending one 64-byte message,
//! and stay until the fault ends; then they leave. They connect for up to
//! half the fault, a connect not done within 100 ms being issued again: a
//! server that accepts slowly lets the burst overflow its accept queue, and
//! a dropped SYN the kernel would retry only a second later must not keep
//! the server short of its limit.
//!
//! The server runs out of descriptors: `accept` fails with EMFILE while the
//! listener stays readable, and the clients beyond the limit wait in the
//! listen queue. The contract: keep serving the clients it has, log once,
//! do not spin, and serve new clients again once descriptors are free. The
//! echoes the accepted clients get are checked; the background load's new
//! clients cannot be accepted meanwhile, by design.

use super::clients::{self, Echoed, FAULT_STREAMS};
use super::{Injected, Injection, plural};
use crate::protocol::Protocol;
use mio::{Events, Interest, Poll, Token};
use std::time::{Duration, Instant};

/// The server's descriptor limit: far below the clients, far above what a
/// server needs to start (a runtime's epoll and event fds, the standard
/// streams, the listener).
pub const LIMIT: u64 = 256;
/// Clients beyond the limit.
pub const BEYOND: usize = 128;
/// Each client's one message.
const MESSAGE: u64 = 64;

pub fn inject(injection: &Injection) -> anyhow::Result<Injected> {
    inject_with(injection, LIMIT as usize + BEYOND)
}

pub fn inject_with(injection: &Injection, count: usize) -> anyhow::Result<Injected> {
    let phase = (injection.left() / 2).max(Duration::from_millis(200));
    let clients::Opened {
        mut streams,
        reissued,
    } = clients::connect_persistently_by(injection, count, Instant::now() + phase)?;
    let failed = (count - streams.len()) as u64;
    let mut poll = Poll::new()?;
    let mut buffer = vec![0u8; 4096];
    let mut sent = vec![0u64; streams.len()];
    let http = injection.protocol == Protocol::Http;
    let message = if http {
        clients::HTTP_REQUEST.len() as u64
    } else {
        MESSAGE
    };
    for (index, stream) in streams.iter_mut().enumerate() {
        let id = FAULT_STREAMS + index as u64;
        // 64 bytes (or one request) always fit in a fresh socket's send buffer.
        let _ = clients::send(
            injection.protocol,
            stream,
            id,
            &mut sent[index],
            message,
            &mut buffer,
        );
        poll.registry()
            .register(stream, Token(index), Interest::READABLE)?;
    }
    injection.engage();
    let mut received = vec![0u64; streams.len()];
    let mut closed = vec![false; streams.len()];
    let mut lost = 0;
    let mut events = Events::with_capacity(1024);
    while !injection.over() {
        poll.poll(&mut events, Some(injection.left()))?;
        for event in events.iter() {
            let index = event.token().0;
            if closed[index] {
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
                Echoed::Closed => {
                    closed[index] = true;
                    // Closed with part of an echo owed: that part is lost
                    // (an HTTP response's length is the background's to check).
                    if !http && received[index] > 0 && received[index] < sent[index] {
                        lost += 1;
                    }
                }
                Echoed::Wrong => {
                    closed[index] = true;
                    lost += 1;
                }
            }
        }
    }
    let served = (0..streams.len())
        .filter(|&index| sent[index] > 0 && (received[index] == sent[index] || http && received[index] > 0))
        .count();
    let refused = closed.iter().filter(|&&closed| closed).count();
    let connections = streams.len() as u64;
    drop(streams);
    let mut note = format!(
        "{} against a limit of {LIMIT} descriptors: {served} {}, {refused} closed by the server, the rest waited",
        plural(connections, "client"),
        if http { "answered" } else { "echoed" }
    );
    if failed > 0 {
        note += &format!("; {failed} did not get connected (the listen queue was full)");
    }
    note += &clients::reissued_note(reissued);
    if connections < LIMIT {
        // The server held at most these clients: it may never have run out.
        note +=
            "; fewer clients got connected than the limit, so the server may not have run out of descriptors";
    }
    Ok(Injected {
        connections,
        bytes: sent.iter().sum(),
        lost,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_server::{Behaviour, TestServer};
    use super::*;

    #[test]
    fn every_client_sends_one_message_and_the_echoes_are_checked() {
        let server = TestServer::start(Behaviour::Echo);
        let injection = Injection::new(server.addr, 0, Instant::now() + Duration::from_millis(300));
        let injected = inject_with(&injection, 20).unwrap();
        assert_eq!(
            (injected.connections, injected.bytes, injected.lost),
            (20, 20 * MESSAGE, 0)
        );
        assert!(injected.note.contains(": 20 echoed"), "{}", injected.note);
        assert!(
            injected.note.contains("may not have run out"),
            "{}",
            injected.note
        );

        let corrupt = TestServer::start(Behaviour::Corrupt);
        let injection = Injection::new(corrupt.addr, 0, Instant::now() + Duration::from_millis(300));
        assert_eq!(inject_with(&injection, 20).unwrap().lost, 20);
    }

    #[test]
    fn connects_dropped_by_a_slow_server_are_issued_again_until_every_client_is_in() {
        // 30 clients at once against a backlog of 8 and 4 ms an accept: most
        // SYNs are dropped, and the kernel would retry them only a second
        // later, after the connect phase. Issued again every 100 ms, about 9
        // get in each time, and all are in within the 600 ms phase.
        let server = TestServer::start_slow_accepting(Behaviour::Echo, Duration::from_millis(4));
        let injection = Injection::new(server.addr, 0, Instant::now() + Duration::from_millis(1200));
        let injected = inject_with(&injection, 30).unwrap();
        assert_eq!(
            (injected.connections, injected.lost),
            (30, 0),
            "{}",
            injected.note
        );
        assert!(injected.note.contains(": 30 echoed"), "{}", injected.note);
        assert!(injected.note.contains("issued again"), "{}", injected.note);
    }
}
