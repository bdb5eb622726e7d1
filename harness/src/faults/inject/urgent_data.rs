//! `urgent-data`: clients that send TCP urgent bytes (`send(MSG_OOB)`).
//!
//! [`CLIENTS`] clients each send, every [`PERIOD`] (once the previous round
//! is echoed), [`NORMAL`] ordinary bytes and then one urgent byte. Linux
//! takes an unread urgent byte out of the ordinary stream unless the server
//! asked for it inline (SO_OOBINLINE), and puts it back inline when the next
//! urgent byte arrives before it was read; either way the echo must be the
//! ordinary bytes, in order, with some of the urgent ones among them at their
//! place and nothing else. A server that waits on readiness may see
//! `EPOLLPRI` or an exceptional condition it never consumes: spinning on it
//! shows as CPU. At most `fault length / PERIOD + 1` rounds per client.

use super::clients;
use super::{Injected, Injection, plural};
use mio::net::TcpStream;
use mio::{Events, Interest};
use socket2::SockRef;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

pub const CLIENTS: usize = 16;
/// Ordinary bytes before each urgent byte.
pub const NORMAL: usize = 63;
/// Time between the starts of two rounds of one client.
pub const PERIOD: Duration = Duration::from_millis(20);
/// The urgent byte: never one of the ordinary bytes (letters), so where it
/// shows up in the echo is never ambiguous.
const URGENT: u8 = b'!';

pub fn inject(injection: &Injection) -> anyhow::Result<Injected> {
    inject_with(injection, CLIENTS)
}

/// One client's byte stream and what is left to be echoed of it.
#[derive(Debug, Default)]
pub struct Expected {
    /// Bytes sent and not yet matched, with whether each was urgent.
    queue: VecDeque<(u8, bool)>,
    /// Ordinary bytes sent so far (the next one's letter).
    ordinary: u64,
    /// Urgent bytes that came back inline, and ones taken out of band.
    pub inline: u64,
    pub out_of_band: u64,
}

impl Expected {
    /// The next round: `NORMAL` letters, then the urgent byte.
    fn round(&mut self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(NORMAL);
        for _ in 0..NORMAL {
            let letter = b'a' + (self.ordinary % 26) as u8;
            self.ordinary += 1;
            bytes.push(letter);
            self.queue.push_back((letter, false));
        }
        self.queue.push_back((URGENT, true));
        bytes
    }

    /// Matches echoed bytes; false at the first byte that is neither the
    /// next ordinary byte nor an urgent byte in its place.
    pub fn take(&mut self, echoed: &[u8]) -> bool {
        for &byte in echoed {
            loop {
                match self.queue.front() {
                    Some(&(expected, _)) if expected == byte => {
                        let (_, urgent) = self.queue.pop_front().expect("front exists");
                        if urgent {
                            self.inline += 1;
                        }
                        break;
                    }
                    // An urgent byte that was taken out of the stream.
                    Some(&(_, true)) => {
                        self.queue.pop_front();
                        self.out_of_band += 1;
                    }
                    _ => return false,
                }
            }
        }
        true
    }

    /// Whether every ordinary byte sent has come back.
    pub fn echoed(&self) -> bool {
        self.queue.iter().all(|&(_, urgent)| urgent)
    }
}

struct Client {
    stream: TcpStream,
    expected: Expected,
    next_round: Instant,
    open: bool,
}

pub fn inject_with(injection: &Injection, count: usize) -> anyhow::Result<Injected> {
    let (streams, mut poll) = clients::connect_polled(injection, count, Interest::READABLE, None)?;
    injection.engage();
    let started = Instant::now();
    let mut clients: Vec<Client> = Vec::with_capacity(streams.len());
    for (index, stream) in streams.into_iter().enumerate() {
        clients.push(Client {
            stream,
            expected: Expected::default(),
            next_round: started + PERIOD.mul_f64(index as f64 / count.max(1) as f64),
            open: true,
        });
    }
    let (mut rounds, mut lost) = (0u64, 0u64);
    let mut buffer = vec![0u8; 4096];
    let mut events = Events::with_capacity(256);
    while !injection.over() {
        let now = Instant::now();
        let mut wake = injection.until;
        for client in clients.iter_mut().filter(|client| client.open) {
            if client.next_round <= now && client.expected.echoed() {
                let bytes = client.expected.round();
                let sent = client
                    .stream
                    .write(&bytes)
                    .is_ok_and(|written| written == bytes.len())
                    && SockRef::from(&client.stream).send_out_of_band(&[URGENT]).is_ok();
                if sent {
                    rounds += 1;
                } else {
                    client.open = false;
                }
                client.next_round = now + PERIOD;
            }
            wake = wake.min(client.next_round.max(now + Duration::from_millis(1)));
        }
        poll.poll(&mut events, Some(wake.saturating_duration_since(Instant::now())))?;
        for event in events.iter() {
            let client = &mut clients[event.token().0];
            while client.open {
                match client.stream.read(&mut buffer) {
                    Ok(0) => client.open = false,
                    Ok(length) => {
                        if !client.expected.take(&buffer[..length]) {
                            lost += 1;
                            client.open = false;
                        }
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => client.open = false,
                }
            }
        }
    }
    let inline: u64 = clients.iter().map(|client| client.expected.inline).sum();
    let out_of_band: u64 = clients.iter().map(|client| client.expected.out_of_band).sum();
    let connections = clients.len() as u64;
    drop(clients);
    Ok(Injected {
        connections,
        bytes: rounds * (NORMAL as u64 + 1),
        lost,
        note: format!(
            "{} sent {} ({} ordinary bytes each); {inline} came back inline, {out_of_band} were taken out of band",
            plural(connections, "client"),
            plural(rounds, "urgent byte"),
            NORMAL
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgent_bytes_may_come_back_inline_or_not_at_all_but_nothing_else_may_change() {
        let mut expected = Expected::default();
        let first = expected.round();
        let second = expected.round();
        // First urgent byte taken out of band, the second one inline.
        let mut echo = first.clone();
        echo.extend_from_slice(&second);
        echo.push(URGENT);
        assert!(expected.take(&echo));
        assert!(expected.echoed());
        assert_eq!((expected.inline, expected.out_of_band), (1, 1));

        let mut expected = Expected::default();
        let round = expected.round();
        let mut reordered = round.clone();
        reordered.swap(0, 1);
        assert!(!expected.take(&reordered));

        let mut expected = Expected::default();
        let round = expected.round();
        assert!(
            !expected.take(&[round[0], URGENT]),
            "an urgent byte out of its place"
        );
    }

    #[test]
    fn urgent_bytes_reach_the_server_and_a_correct_echo_loses_nothing() {
        use super::super::test_server::{Behaviour, TestServer};
        let server = TestServer::start(Behaviour::Echo);
        let injection = Injection::new(server.addr, 0, Instant::now() + Duration::from_millis(300));
        let injected = inject_with(&injection, 3).unwrap();
        assert_eq!(injected.lost, 0, "{}", injected.note);
        let rounds = injected.bytes / (NORMAL as u64 + 1);
        assert!(rounds >= 3 * 5, "{}", injected.note);
        // A blocking read skips the urgent byte: the server got only the
        // ordinary ones (the last round may still be on its way).
        let got = server.count(|counts| &counts.bytes);
        assert!(
            got <= rounds * NORMAL as u64 && got >= (rounds - 3) * NORMAL as u64,
            "{got} bytes, {}",
            injected.note
        );

        let corrupt = TestServer::start(Behaviour::Corrupt);
        let injection = Injection::new(corrupt.addr, 0, Instant::now() + Duration::from_millis(200));
        assert_eq!(inject_with(&injection, 3).unwrap().lost, 3);
    }
}
