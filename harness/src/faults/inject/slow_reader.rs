//! `slow-reader`: clients that write continuously and never read.
//!
//! [`CLIENTS`] clients with small fixed socket buffers write the payload as
//! fast as the server takes it, at most [`CAP`] bytes each, and read nothing.
//! A server with backpressure stops reading them once it cannot write their
//! echo back (its pending bytes and a few socket buffers hold the rest); a
//! server that reads on regardless must keep what it read in memory. At the
//! fault's end the clients close with their echo unread (which resets).

use super::clients::{self, FAULT_STREAMS};
use super::{Injected, Injection, bytes, plural};
use crate::load::payload;
use mio::{Events, Interest, Poll, Token};
use std::time::{Duration, Instant};

/// Clients that read nothing: more than `pool`'s 16 workers.
pub const CLIENTS: usize = 24;
/// The most one client writes.
pub const CAP: u64 = 8 * 1024 * 1024;
/// Its receive and send buffers.
const RECEIVE_BUFFER: usize = 16 * 1024;
const SEND_BUFFER: usize = 64 * 1024;
/// No client written to for this long: all are held back (the fault is in place).
const STALLED: Duration = Duration::from_millis(100);

pub fn inject(injection: &Injection) -> anyhow::Result<Injected> {
    inject_with(injection, CLIENTS, CAP)
}

pub fn inject_with(injection: &Injection, count: usize, cap: u64) -> anyhow::Result<Injected> {
    let (mut streams, _) = clients::connect(injection, count)?;
    let mut poll = Poll::new()?;
    for (index, stream) in streams.iter_mut().enumerate() {
        clients::shrink_buffers(stream, RECEIVE_BUFFER, SEND_BUFFER)?;
        poll.registry()
            .register(stream, Token(index), Interest::WRITABLE)?;
    }
    let mut written = vec![0u64; streams.len()];
    let mut open = vec![true; streams.len()];
    let mut buffer = vec![0u8; 64 * 1024];
    let mut events = Events::with_capacity(256);
    let mut last_progress = Instant::now();
    let mut ready: Vec<usize> = (0..streams.len()).collect();
    while !injection.over() {
        for index in ready.drain(..) {
            if !open[index] || written[index] >= cap {
                continue;
            }
            let before = written[index];
            let id = FAULT_STREAMS + index as u64;
            match payload::send(&mut streams[index], id, &mut written[index], cap, &mut buffer) {
                Ok(_) => {}
                Err(_) => open[index] = false, // closed by the server
            }
            if written[index] > before {
                last_progress = Instant::now();
            }
        }
        let all_capped = (0..streams.len()).all(|index| !open[index] || written[index] >= cap);
        if !injection.is_engaged() && (all_capped || last_progress.elapsed() >= STALLED) {
            injection.engage();
        }
        if all_capped {
            injection.wait_for_end();
            break;
        }
        poll.poll(&mut events, Some(injection.left().min(Duration::from_millis(50))))?;
        ready.extend(events.iter().map(|event| event.token().0));
    }
    let total: u64 = written.iter().sum();
    let closed = open.iter().filter(|&&open| !open).count() as u64;
    let connections = streams.len() as u64;
    drop(streams); // unread echo: each close is a reset
    Ok(Injected {
        connections,
        bytes: total,
        lost: 0,
        note: format!(
            "{} wrote {} and read nothing (at most {} each){}",
            plural(connections, "client"),
            bytes(total),
            bytes(cap),
            if closed > 0 {
                format!("; the server closed {closed} of them")
            } else {
                String::new()
            }
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_server::{Behaviour, TestServer};
    use super::*;

    #[test]
    fn a_server_with_backpressure_holds_slow_readers_back_and_is_reset_at_the_end() {
        let server = TestServer::start(Behaviour::Echo);
        let injection = Injection::new(server.addr, 0, Instant::now() + Duration::from_millis(800));
        let injected = inject_with(&injection, 3, CAP).unwrap();
        assert!(injection.is_engaged());
        assert_eq!(injected.connections, 3);
        // A blocking echo stops reading once its write blocks: the clients
        // could fill the kernel's buffers on the way, not reach their cap.
        assert!(
            injected.bytes > 3 * 64 * 1024 && injected.bytes < 3 * CAP * 9 / 10,
            "{}",
            injected.note
        );
        // Closed with echo unread: each close is a reset the server sees.
        assert_eq!(
            server.wait_for(|counts| &counts.resets, 3, Duration::from_secs(5)),
            3
        );
    }
}
