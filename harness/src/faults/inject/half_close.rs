//! `half-close-pending`: many clients shut down their write side while the
//! server still holds bytes it could not send them.
//!
//! [`CLIENTS`] clients write as much as the server takes (at most
//! [`BYTES_EACH`], far more than the receive buffer a socket starts with)
//! without reading, then `shutdown(SHUT_WR)`, then read nothing for a
//! quarter of the fault: the server meets EOF with echo it cannot deliver.
//! Then they read everything back. (Their buffers are left as the kernel
//! sizes them: a receive buffer smaller than loopback's 64 KiB segments
//! makes the kernel hold back window updates, and the read back crawls.)
//! The contract: every byte comes back, in order, then EOF. A client cut
//! short (EOF before all its bytes) or sent a wrong byte counts as lost; one
//! the server had not served by the end of the fault is only waiting.

use super::clients::{self, Echoed, FAULT_STREAMS};
use super::{Injected, Injection, bytes, plural};
use crate::load::payload;
use mio::{Events, Interest};
use std::net::Shutdown;
use std::time::{Duration, Instant};

/// More than `pool`'s 16 workers.
pub const CLIENTS: usize = 32;
/// The most each writes.
pub const BYTES_EACH: u64 = 1024 * 1024;
/// Writing stops when no client could write for this long.
const STALLED: Duration = Duration::from_millis(50);
/// Or after this long.
const WRITING: Duration = Duration::from_millis(250);

pub fn inject(injection: &Injection) -> anyhow::Result<Injected> {
    inject_with(injection, CLIENTS)
}

pub fn inject_with(injection: &Injection, count: usize) -> anyhow::Result<Injected> {
    let started = Instant::now();
    let hold_until = started + injection.left() / 4;
    let (mut streams, mut poll) =
        clients::connect_polled(injection, count, Interest::WRITABLE | Interest::READABLE, None)?;
    let mut written = vec![0u64; streams.len()];
    let mut buffer = vec![0u8; 64 * 1024];
    let mut events = Events::with_capacity(256);
    let writing_until = (Instant::now() + WRITING).min(injection.until);
    let mut last_progress = Instant::now();
    let mut ready: Vec<usize> = (0..streams.len()).collect();
    while Instant::now() < writing_until && last_progress.elapsed() < STALLED {
        for index in ready.drain(..) {
            let before = written[index];
            let id = FAULT_STREAMS + index as u64;
            let _ = payload::send(
                &mut streams[index],
                id,
                &mut written[index],
                BYTES_EACH,
                &mut buffer,
            );
            if written[index] > before {
                last_progress = Instant::now();
            }
        }
        poll.poll(&mut events, Some(STALLED))?;
        ready.extend(
            events
                .iter()
                .filter(|event| event.is_writable())
                .map(|event| event.token().0),
        );
    }
    for stream in &streams {
        let _ = stream.shutdown(Shutdown::Write);
    }
    injection.engage();
    std::thread::sleep(hold_until.saturating_duration_since(Instant::now()));

    let mut received = vec![0u64; streams.len()];
    // None: still reading; Some(true): all bytes and EOF; Some(false): lost.
    let mut ended: Vec<Option<bool>> = vec![None; streams.len()];
    let mut ready: Vec<usize> = (0..streams.len()).collect();
    while !injection.over() && ended.iter().any(Option::is_none) {
        for index in ready.drain(..) {
            if ended[index].is_some() {
                continue;
            }
            let id = FAULT_STREAMS + index as u64;
            match clients::read_echo(
                &mut streams[index],
                id,
                &mut received[index],
                written[index],
                &mut buffer,
            ) {
                Echoed::Bytes(_) | Echoed::Nothing => {}
                Echoed::Closed => ended[index] = Some(received[index] == written[index]),
                Echoed::Wrong => ended[index] = Some(false),
            }
        }
        poll.poll(&mut events, Some(injection.left()))?;
        ready.extend(events.iter().map(|event| event.token().0));
    }
    let complete = ended.iter().filter(|&&end| end == Some(true)).count();
    let lost = ended.iter().filter(|&&end| end == Some(false)).count() as u64;
    let waiting = ended.iter().filter(|end| end.is_none()).count();
    let total: u64 = written.iter().sum();
    let connections = streams.len() as u64;
    drop(streams);
    Ok(Injected {
        connections,
        bytes: total,
        lost,
        note: format!(
            "{} wrote {} in all without reading, half-closed with the server holding echo, read nothing for {:.2} s, then read: {complete} got every byte back and EOF, {lost} were cut short or got a wrong byte, {waiting} were still waiting",
            plural(connections, "client"),
            bytes(total),
            hold_until.saturating_duration_since(started).as_secs_f64()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_server::{Behaviour, TestServer};
    use super::*;

    fn run(behaviour: Behaviour) -> (Injected, TestServer) {
        let server = TestServer::start(behaviour);
        let injection = Injection::new(server.addr, 0, Instant::now() + Duration::from_millis(1200));
        let injected = inject_with(&injection, 4).unwrap();
        assert!(injection.is_engaged());
        (injected, server)
    }

    #[test]
    fn every_byte_comes_back_from_a_correct_server() {
        let (injected, server) = run(Behaviour::Echo);
        assert_eq!(injected.connections, 4);
        assert_eq!(injected.lost, 0, "{}", injected.note);
        assert!(
            injected.note.contains("4 got every byte back"),
            "{}",
            injected.note
        );
        assert_eq!(server.count(|counts| &counts.eofs), 4);
        assert!(injected.bytes > 4 * 64 * 1024, "{}", injected.note);
    }

    #[test]
    fn a_server_that_closes_on_eof_with_echo_pending_loses_it() {
        let (injected, _server) = run(Behaviour::CloseOnEof);
        assert_eq!(injected.lost, 4, "{}", injected.note);
    }
}
