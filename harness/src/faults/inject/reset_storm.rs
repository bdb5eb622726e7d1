//! `reset-storm`: hundreds of connections reset in the middle of transfers.
//!
//! [`CONNECTIONS`] connections in [`WAVES`] waves spread over the first 60%
//! of the fault: each connection writes up to [`BYTES_EACH`] without
//! waiting, and as soon as the first bytes of its echo are back (or after
//! [`IN_FLIGHT`]) closes with SO_LINGER 0: the server is reset while it is
//! reading and writing that connection, with data both ways. The rest of the
//! fault is quiet: a server that leaks the descriptor of a reset
//! connection, or spins on one, shows it there. Echoed bytes are checked.

use super::clients::{self, Echoed, FAULT_STREAMS};
use super::{Injected, Injection, bytes, plural};
use mio::{Events, Interest};
use std::time::{Duration, Instant};

/// Connections reset in all.
pub const CONNECTIONS: usize = 400;
pub const WAVES: usize = 8;
/// The most each writes before its reset.
pub const BYTES_EACH: u64 = 128 * 1024;
/// Each connection's buffers: far less than what it writes.
const RECEIVE_BUFFER: usize = 16 * 1024;
const SEND_BUFFER: usize = 64 * 1024;
/// The longest a wave's transfers run before the resets.
const IN_FLIGHT: Duration = Duration::from_millis(20);
/// The waves take this share of the fault; the rest is quiet.
const SPREAD: f64 = 0.6;

pub fn inject(injection: &Injection) -> anyhow::Result<Injected> {
    inject_with(injection, CONNECTIONS, WAVES)
}

pub fn inject_with(injection: &Injection, connections: usize, waves: usize) -> anyhow::Result<Injected> {
    let started = Instant::now();
    let waves = waves.max(1);
    let per_wave = connections.div_ceil(waves);
    let gap = injection.left().mul_f64(SPREAD / waves as f64);
    let mut buffer = vec![0u8; 64 * 1024];
    let (mut opened, mut sent, mut echoed, mut lost, mut mid_transfer) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut events = Events::with_capacity(256);
    for wave in 0..waves {
        let wave_start = started + gap * wave as u32;
        std::thread::sleep(wave_start.saturating_duration_since(Instant::now()));
        if injection.over() {
            break;
        }
        let next_wave = wave_start + gap;
        let deadline = clients::connect_deadline(injection).min(next_wave.max(Instant::now() + IN_FLIGHT));
        // A small receive buffer: the server cannot have written the whole
        // echo by the time the first of it is read.
        let (mut streams, mut poll) = clients::connect_polled_by(
            injection,
            per_wave,
            deadline,
            Interest::READABLE | Interest::WRITABLE,
            Some((RECEIVE_BUFFER, SEND_BUFFER)),
        )?;
        let first_id = FAULT_STREAMS + opened;
        let mut written = vec![0u64; streams.len()];
        let mut received = vec![0u64; streams.len()];
        let resets_at = Instant::now() + IN_FLIGHT;
        let mut live: Vec<Option<mio::net::TcpStream>> = streams.drain(..).map(Some).collect();
        let reset = |slot: &mut Option<mio::net::TcpStream>| {
            if let Some(stream) = slot.take() {
                clients::reset(stream);
            }
        };
        while Instant::now() < resets_at && !injection.over() && live.iter().any(Option::is_some) {
            poll.poll(
                &mut events,
                Some(resets_at.saturating_duration_since(Instant::now())),
            )?;
            for event in events.iter() {
                let index = event.token().0;
                let id = first_id + index as u64;
                let Some(stream) = live[index].as_mut() else {
                    continue;
                };
                if event.is_writable() {
                    let _ = clients::send(
                        injection.protocol,
                        stream,
                        id,
                        &mut written[index],
                        BYTES_EACH,
                        &mut buffer,
                    );
                }
                if event.is_readable() {
                    match clients::read_answer(
                        injection.protocol,
                        stream,
                        id,
                        &mut received[index],
                        written[index],
                        &mut buffer,
                    ) {
                        Echoed::Wrong => lost += 1,
                        Echoed::Closed => {}
                        Echoed::Bytes(_) | Echoed::Nothing => {}
                    }
                }
                // Echo flowing both ways: now is the middle of the transfer.
                if received[index] > 0 {
                    if received[index] < written[index] {
                        mid_transfer += 1;
                    }
                    reset(&mut live[index]);
                }
            }
        }
        opened += live.len() as u64;
        sent += written.iter().sum::<u64>();
        echoed += received.iter().sum::<u64>();
        for (index, slot) in live.iter_mut().enumerate() {
            if slot.is_some() && received[index] < written[index] {
                mid_transfer += 1;
            }
            reset(slot);
        }
    }
    injection.engage();
    injection.wait_for_end();
    Ok(Injected {
        connections: opened,
        bytes: sent,
        lost,
        note: format!(
            "{} reset (SO_LINGER 0) in {waves} waves, {mid_transfer} of them with echo still owed; {} sent, {} echoed before the resets",
            plural(opened, "connection"),
            bytes(sent),
            bytes(echoed)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_server::{Behaviour, TestServer};
    use super::*;

    #[test]
    fn the_server_is_reset_in_the_middle_of_transfers() {
        let server = TestServer::start(Behaviour::Echo);
        let injection = Injection::new(server.addr, 0, Instant::now() + Duration::from_millis(600));
        let injected = inject_with(&injection, 40, 4).unwrap();
        assert_eq!(
            (injected.connections, injected.lost),
            (40, 0),
            "{}",
            injected.note
        );
        assert!(injection.is_engaged());
        // The server was still reading or writing most of them.
        assert!(server.wait_for(|counts| &counts.resets, 30, Duration::from_secs(5)) >= 30);
        assert!(injected.bytes > 40 * 64 * 1024, "{}", injected.note);
    }
}
