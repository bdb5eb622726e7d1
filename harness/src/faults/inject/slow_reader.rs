//! `slow-reader`: clients that write continuously and never read.
//!
//! [`CLIENTS`] clients with small fixed socket buffers write the payload
//! continuously, [`RATE`] bytes a second each (paced, so that the fault's
//! own work on the load CPUs comes as a trickle, not a burst) or as fast as
//! the server takes it if slower, at most [`CAP`] bytes each, and read
//! nothing.
//! A server with backpressure stops reading them once it cannot write their
//! echo back (its pending bytes and a few socket buffers hold the rest); a
//! server that reads on regardless must keep what it read in memory. At the
//! fault's end the clients close with their echo unread (which resets).

use super::clients::{self, FAULT_STREAMS};
use super::{Injected, Injection, bytes, plural};
use mio::{Events, Interest};
use std::time::{Duration, Instant};

/// Clients that read nothing: more than `pool`'s 16 workers.
pub const CLIENTS: usize = 24;
/// The most one client writes.
pub const CAP: u64 = 8 * 1024 * 1024;
/// How fast each writes: enough for a server that buffers them to grow by
/// tens of MiB within the shortest fault.
pub const RATE: u64 = 4 * 1024 * 1024;
/// How often the writers are topped up to their pace.
const PACE_EVERY: Duration = Duration::from_millis(10);
/// Its receive and send buffers.
const RECEIVE_BUFFER: usize = 16 * 1024;
const SEND_BUFFER: usize = 64 * 1024;

pub fn inject(injection: &Injection) -> anyhow::Result<Injected> {
    inject_with(injection, CLIENTS, CAP)
}

pub fn inject_with(injection: &Injection, count: usize, cap: u64) -> anyhow::Result<Injected> {
    let (mut streams, mut poll) = clients::connect_polled(
        injection,
        count,
        Interest::WRITABLE,
        Some((RECEIVE_BUFFER, SEND_BUFFER)),
    )?;
    let mut written = vec![0u64; streams.len()];
    let mut open = vec![true; streams.len()];
    let mut buffer = vec![0u8; 64 * 1024];
    let mut events = Events::with_capacity(256);
    // Writing from the start: the fault is in place.
    injection.engage();
    let started = Instant::now();
    while !injection.over() {
        // Everyone writes what its pace allows by now; a socket that is
        // full is simply tried again at the next top-up.
        let due = cap.min((RATE as f64 * started.elapsed().as_secs_f64()) as u64);
        for index in 0..streams.len() {
            if !open[index] || written[index] >= due {
                continue;
            }
            let id = FAULT_STREAMS + index as u64;
            if clients::send(
                injection.protocol,
                &mut streams[index],
                id,
                &mut written[index],
                due,
                &mut buffer,
            )
            .is_err()
            {
                open[index] = false; // closed by the server
            }
        }
        let all_capped = (0..streams.len()).all(|index| !open[index] || written[index] >= cap);
        if all_capped {
            injection.wait_for_end();
            break;
        }
        poll.poll(&mut events, Some(injection.left().min(PACE_EVERY)))?;
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
            "{} wrote {} and read nothing ({}/s and at most {} each){}",
            plural(connections, "client"),
            bytes(total),
            bytes(RATE),
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
    fn the_clients_write_at_their_pace_read_nothing_and_are_reset_at_the_end() {
        let server = TestServer::start(Behaviour::Echo);
        let injection = Injection::new(server.addr, 0, Instant::now() + Duration::from_millis(800));
        let injected = inject_with(&injection, 3, CAP).unwrap();
        assert!(injection.is_engaged());
        assert_eq!(injected.connections, 3);
        // 4 MiB/s each for 0.8 s: the kernel's buffers take it all.
        let paced = 3 * RATE * 8 / 10;
        assert!(
            injected.bytes > paced * 3 / 4 && injected.bytes <= paced * 11 / 10,
            "{}",
            injected.note
        );
        // Closed with echo unread: each close is a reset the server sees.
        assert_eq!(
            server.wait_for(|counts| &counts.resets, 3, Duration::from_secs(5)),
            3
        );
        // And a cap stops them.
        let injection = Injection::new(server.addr, 0, Instant::now() + Duration::from_millis(300));
        assert_eq!(inject_with(&injection, 2, 100_000).unwrap().bytes, 200_000);
    }
}
