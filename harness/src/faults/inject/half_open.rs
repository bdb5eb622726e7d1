//! `half-open-peer`: clients that vanish without a FIN.
//!
//! [`CLIENTS`] clients with small fixed receive buffers each send up to
//! [`BYTES_EACH`] and then do nothing at all: no read, no write, no close,
//! for the rest of the fault, as a peer whose host went away would. (On
//! loopback the kernel still acknowledges their segments, which only a real
//! network could stop; from the server's side it is the same: a connection
//! that never speaks again, with echo it cannot deliver.) At the fault's end
//! they are reset, as a peer that comes back answers a stale connection. A
//! model that blocks in `write` for such a peer holds a thread or worker
//! until then; no model here has a timeout that would notice sooner.

use super::clients::{self, FAULT_STREAMS};
use super::{Injected, Injection, bytes, plural};
use mio::{Events, Interest};
use std::time::{Duration, Instant};

/// More than `pool`'s 16 workers.
pub const CLIENTS: usize = 32;
/// Sent by each before it goes silent: more than its receive buffer and the
/// server's pending buffer hold, so the server is left with echo it cannot
/// send.
pub const BYTES_EACH: u64 = 256 * 1024;
const RECEIVE_BUFFER: usize = 16 * 1024;
const SEND_BUFFER: usize = 64 * 1024;
/// How long the clients keep writing before they go silent.
const TALKING: Duration = Duration::from_millis(100);

pub fn inject(injection: &Injection) -> anyhow::Result<Injected> {
    inject_with(injection, CLIENTS)
}

pub fn inject_with(injection: &Injection, count: usize) -> anyhow::Result<Injected> {
    let (mut streams, mut poll) = clients::connect_polled(
        injection,
        count,
        Interest::WRITABLE,
        Some((RECEIVE_BUFFER, SEND_BUFFER)),
    )?;
    let mut written = vec![0u64; streams.len()];
    let mut buffer = vec![0u8; 64 * 1024];
    let mut events = Events::with_capacity(256);
    let silent_at = (Instant::now() + TALKING).min(injection.until);
    while Instant::now() < silent_at {
        poll.poll(
            &mut events,
            Some(silent_at.saturating_duration_since(Instant::now())),
        )?;
        for event in events.iter() {
            let index = event.token().0;
            let id = FAULT_STREAMS + index as u64;
            let _ = clients::send(
                injection.protocol,
                &mut streams[index],
                id,
                &mut written[index],
                BYTES_EACH,
                &mut buffer,
            );
        }
    }
    drop(poll);
    injection.engage();
    injection.wait_for_end();
    let connections = streams.len() as u64;
    for stream in streams {
        clients::reset(stream);
    }
    let total: u64 = written.iter().sum();
    Ok(Injected {
        connections,
        bytes: total,
        lost: 0,
        note: format!(
            "{} sent {} in all, then neither read, wrote nor closed until the end of the fault, when they were reset",
            plural(connections, "client"),
            bytes(total)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_server::{Behaviour, TestServer};
    use super::*;

    #[test]
    fn the_clients_send_then_go_silent_then_reset() {
        let server = TestServer::start(Behaviour::Echo);
        let until = Instant::now() + Duration::from_millis(600);
        let injection = Injection::new(server.addr, 0, until);
        let injected = inject_with(&injection, 4).unwrap();
        assert_eq!(injected.connections, 4);
        assert!(injected.bytes > 4 * 32 * 1024, "{}", injected.note);
        // Silent until the end: the server saw no EOF, only resets after it.
        assert_eq!(server.count(|counts| &counts.eofs), 0);
        assert_eq!(
            server.wait_for(|counts| &counts.resets, 4, Duration::from_secs(5)),
            4
        );
    }
}
