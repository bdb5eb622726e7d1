//! The conformance suite of the datagram models (`udp`, `udp_server.py`).
//!
//! UDP has no byte stream to echo and no connection to hold, so its contract
//! is its own: every datagram comes back whole, byte for byte, from the
//! server's address, to the socket that sent it, whatever its size (1 to
//! 65,507 bytes) and however many peers talk at once. UDP may drop: a check
//! that floods the server allows loss, but never a wrong or a doubled
//! datagram, and never a server that stops. A peer that vanished (its replies
//! bounce as ICMP port unreachable) must not stop the server either.
//!
//! Each check starts the server as the echo suite does ([`Server`]), with the
//! same watchdog, and every client socket has a read timeout.
//!
//! ```text
//! echo_conformance::udp_suite!(udp_batch, env!("CARGO_BIN_EXE_server-udp"), args = ["--batch", "32"]);
//! ```

use crate::Model;
use crate::server::{Launch, Server};
use crate::watchdog::{run_check, spawn};
use nix::sys::signal::Signal;
use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The largest UDP payload over IPv4 (`echo_core::MAX_DATAGRAM`).
pub const MAX_DATAGRAM: usize = 65_507;
/// How long a client waits for one echo before calling it lost.
pub const ECHO_TIMEOUT: Duration = Duration::from_secs(2);
/// Watchdog of every check.
const LIMIT: Duration = Duration::from_secs(60);

/// Generates the UDP conformance tests for one datagram-model variant, as a
/// module named `$name` holding one `#[test]` per check. With `python`, the
/// binary is the script under `servers/python/`, run by `python3`, and each
/// test is skipped where the machine cannot run it (as [`python_suite!`](crate::python_suite)).
/// (The `python` arm comes first: `python = "…"` is an expression too.)
#[macro_export]
macro_rules! udp_suite {
    ($name:ident, python = $script:literal, args = [$($arg:expr),* $(,)?] $(,)?) => {
        mod $name {
            const MODEL: $crate::Model = $crate::Model {
                binary: $crate::python::INTERPRETER,
                args: &[concat!(env!("CARGO_MANIFEST_DIR"), "/../python/", $script), $($arg),*],
                kind: $crate::Kind::Concurrent,
            };
            $crate::__udp_tests!(MODEL if $crate::python::runs);
        }
    };
    ($name:ident, $binary:expr, args = [$($arg:expr),* $(,)?] $(,)?) => {
        mod $name {
            const MODEL: $crate::Model = $crate::Model {
                binary: $binary,
                args: &[$($arg),*],
                kind: $crate::Kind::Concurrent,
            };
            $crate::__udp_tests!(MODEL if $crate::udp::always);
        }
    };
}

/// One `#[test]` per UDP check (used by [`udp_suite!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __udp_tests {
    ($model:ident if $guard:path) => {
        $crate::__udp_tests!(
            @each $model if $guard;
            exact_payload_back_to_the_exact_sender,
            many_peers_at_once,
            the_largest_datagram,
            a_vanished_peer_does_not_stop_the_server,
            a_burst_larger_than_the_socket_buffer,
            sigterm_exits_with_status_zero,
            sigint_exits_with_status_zero,
        );
    };
    (@each $model:ident if $guard:path; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                if $guard(&$model) {
                    $crate::udp::$check(&$model);
                }
            }
        )*
    };
}

/// The guard of a model every machine runs.
pub fn always(_model: &Model) -> bool {
    true
}

fn check<F>(model: &Model, name: &str, body: F)
where
    F: FnOnce(&Server) -> Result<(), String> + Send + 'static,
{
    run_check(model, name, LIMIT, Launch::default(), body);
}

/// Datagram `seq` of peer `peer`, `len` bytes: the peer and sequence number
/// in the first 8 bytes (when it has them), then bytes that are a function
/// of both and of the offset, so a datagram echoed to the wrong peer, or a
/// byte changed, shows.
pub fn datagram(peer: u32, seq: u32, len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len)
        .map(|offset| {
            let mixed = (u64::from(peer) << 32 | u64::from(seq)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            (mixed >> 56) as u8 ^ (offset as u8).wrapping_mul(31)
        })
        .collect();
    if len >= 8 {
        bytes[..4].copy_from_slice(&peer.to_be_bytes());
        bytes[4..8].copy_from_slice(&seq.to_be_bytes());
    }
    bytes
}

/// The (peer, seq) a datagram says it is, if it is long enough to say.
fn identity(bytes: &[u8]) -> Option<(u32, u32)> {
    let peer = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
    let seq = u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?);
    Some((peer, seq))
}

/// A client socket on loopback with a read timeout.
fn client() -> Result<UdpSocket, String> {
    let socket =
        UdpSocket::bind("127.0.0.1:0").map_err(|error| format!("cannot bind a client socket: {error}"))?;
    socket
        .set_read_timeout(Some(ECHO_TIMEOUT))
        .map_err(|error| format!("cannot set a read timeout: {error}"))?;
    Ok(socket)
}

/// Receives one datagram: its bytes and sender, or `None` after [`ECHO_TIMEOUT`].
fn receive(socket: &UdpSocket) -> Result<Option<(Vec<u8>, SocketAddr)>, String> {
    let mut buffer = vec![0; MAX_DATAGRAM + 1];
    match socket.recv_from(&mut buffer) {
        Ok((length, from)) => {
            buffer.truncate(length);
            Ok(Some((buffer, from)))
        }
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(format!("receive: {error}")),
    }
}

/// Sends `message` and waits for its echo, sending it again (up to three
/// times) if the echo does not come: loopback rarely drops, but may. Any
/// reply that is not exactly `message` from the server fails.
fn round_trip(socket: &UdpSocket, server: SocketAddr, message: &[u8]) -> Result<(), String> {
    for _attempt in 0..3 {
        socket
            .send_to(message, server)
            .map_err(|error| format!("send of {} bytes: {error}", message.len()))?;
        let Some((reply, from)) = receive(socket)? else {
            continue;
        };
        if from != server {
            return Err(format!(
                "the echo came from {from}, not from the server at {server}"
            ));
        }
        if reply != message {
            return Err(describe_mismatch(message, &reply));
        }
        return Ok(());
    }
    Err(format!(
        "no echo of a {}-byte datagram in 3 tries of {} s each",
        message.len(),
        ECHO_TIMEOUT.as_secs()
    ))
}

fn describe_mismatch(sent: &[u8], reply: &[u8]) -> String {
    if reply.len() != sent.len() {
        return format!("sent {} bytes, the echo has {}", sent.len(), reply.len());
    }
    let offset = sent.iter().zip(reply).position(|(a, b)| a != b).unwrap_or(0);
    format!(
        "the echo of a {}-byte datagram differs at byte {offset}: sent {:#04x}, got {:#04x}",
        sent.len(),
        sent[offset],
        reply[offset]
    )
}

/// One peer, 1,000 round trips of 1 to 1,472 bytes: each echo is the
/// datagram sent, whole, from the server's address.
pub fn exact_payload_back_to_the_exact_sender(model: &Model) {
    check(model, "exact_payload_back_to_the_exact_sender", |server| {
        let socket = client()?;
        for seq in 0..1000u32 {
            let len = 1 + (seq as usize * 37 % 1472);
            round_trip(&socket, server.addr(), &datagram(1, seq, len))
                .map_err(|error| format!("datagram {} of 1000: {error}", seq + 1))?;
        }
        Ok(())
    });
}

/// 100 peers, each its own socket, 20 rounds in which every peer sends one
/// datagram before any reads: each peer gets its own datagrams back and no
/// other's; at most 2% lost.
pub fn many_peers_at_once(model: &Model) {
    const PEERS: u32 = 100;
    const ROUNDS: u32 = 20;
    check(model, "many_peers_at_once", |server| {
        let peers: Vec<UdpSocket> = (0..PEERS).map(|_| client()).collect::<Result<_, _>>()?;
        let mut lost = 0;
        for round in 0..ROUNDS {
            for (peer, socket) in (0..).zip(&peers) {
                let message = datagram(peer, round, 64 + (peer as usize * 13) % 1000);
                socket
                    .send_to(&message, server.addr())
                    .map_err(|error| format!("peer {peer}: send: {error}"))?;
            }
            for (peer, socket) in (0..).zip(&peers) {
                let expected = datagram(peer, round, 64 + (peer as usize * 13) % 1000);
                loop {
                    let Some((reply, from)) = receive(socket)? else {
                        lost += 1;
                        break;
                    };
                    if from != server.addr() {
                        return Err(format!("peer {peer}: an echo came from {from}, not the server"));
                    }
                    match identity(&reply) {
                        // A late echo of an earlier round (it was counted lost then).
                        Some((who, seq)) if who == peer && seq < round => continue,
                        Some((who, seq)) if who != peer => {
                            return Err(format!("peer {peer} got peer {who}'s datagram {seq}"));
                        }
                        _ if reply != expected => {
                            return Err(format!(
                                "peer {peer}, round {round}: {}",
                                describe_mismatch(&expected, &reply)
                            ));
                        }
                        _ => break,
                    }
                }
            }
        }
        let allowed = (PEERS * ROUNDS) / 50;
        if lost > allowed {
            return Err(format!(
                "{lost} of {} datagrams lost, more than {allowed}",
                PEERS * ROUNDS
            ));
        }
        Ok(())
    });
}

/// The sizes at the edges: 1 byte, 1,472 (an Ethernet frame's payload),
/// 9,000, 65,000 and the largest, 65,507: each echoed whole.
pub fn the_largest_datagram(model: &Model) {
    check(model, "the_largest_datagram", |server| {
        let socket = client()?;
        for (seq, len) in (0..).zip([1, 1472, 9000, 65_000, MAX_DATAGRAM, MAX_DATAGRAM]) {
            round_trip(&socket, server.addr(), &datagram(2, seq, len))
                .map_err(|error| format!("a {len}-byte datagram: {error}"))?;
        }
        Ok(())
    });
}

/// Ten peers each send 50 datagrams and close their socket at once, so the
/// server's replies find no one (ICMP port unreachable); meanwhile and
/// after, another peer is served.
pub fn a_vanished_peer_does_not_stop_the_server(model: &Model) {
    check(model, "a_vanished_peer_does_not_stop_the_server", |server| {
        let staying = client()?;
        for vanished in 0..10u32 {
            let leaving = client()?;
            for seq in 0..50 {
                leaving
                    .send_to(&datagram(100 + vanished, seq, 200), server.addr())
                    .map_err(|error| format!("send: {error}"))?;
            }
            drop(leaving);
            round_trip(&staying, server.addr(), &datagram(3, vanished, 300))
                .map_err(|error| format!("after {} peers vanished: {error}", vanished + 1))?;
        }
        for seq in 10..110 {
            round_trip(&staying, server.addr(), &datagram(3, seq, 300))
                .map_err(|error| format!("after all peers vanished: {error}"))?;
        }
        server.assert_running()
    });
}

/// 20,000 datagrams of 1,000 bytes sent as fast as one thread can, far more
/// than a socket buffer holds, while another thread reads the echoes: some
/// may be lost, but every echo is one that was sent, whole, once; the server
/// keeps running and answers the next datagram.
pub fn a_burst_larger_than_the_socket_buffer(model: &Model) {
    const BURST: u32 = 20_000;
    const SIZE: usize = 1000;
    check(model, "a_burst_larger_than_the_socket_buffer", |server| {
        let socket = client()?;
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .map_err(|error| error.to_string())?;
        let reader = socket.try_clone().map_err(|error| error.to_string())?;
        let addr = server.addr();
        let echoes = spawn("burst-reader", move || -> Result<usize, String> {
            let mut seen = HashSet::new();
            let started = Instant::now();
            // Until the echoes stop for 500 ms, or 20 s at most.
            while started.elapsed() < Duration::from_secs(20) {
                let Some((reply, from)) = receive(&reader)? else {
                    break;
                };
                if from != addr {
                    return Err(format!("an echo came from {from}, not the server"));
                }
                let Some((4, seq)) = identity(&reply) else {
                    return Err(format!("an echo not sent by this peer ({} bytes)", reply.len()));
                };
                if seq >= BURST || reply != datagram(4, seq, SIZE) {
                    return Err(format!("the echo of datagram {seq} is not the datagram sent"));
                }
                if !seen.insert(seq) {
                    return Err(format!("datagram {seq} came back twice"));
                }
            }
            Ok(seen.len())
        });
        for seq in 0..BURST {
            // A full send buffer is the sender's loss, not the server's.
            let _ = socket.send_to(&datagram(4, seq, SIZE), addr);
        }
        let received = echoes.join()?;
        if received == 0 {
            return Err(format!("none of {BURST} datagrams came back"));
        }
        server.assert_running()?;
        socket
            .set_read_timeout(Some(ECHO_TIMEOUT))
            .map_err(|error| error.to_string())?;
        round_trip(&socket, addr, &datagram(5, 0, 100)).map_err(|error| format!("after the burst: {error}"))
    });
}

/// SIGTERM after a round trip: exit status 0 within 2 s.
pub fn sigterm_exits_with_status_zero(model: &Model) {
    exits_on(model, "sigterm_exits_with_status_zero", Signal::SIGTERM);
}

/// SIGINT after a round trip: exit status 0 within 2 s.
pub fn sigint_exits_with_status_zero(model: &Model) {
    exits_on(model, "sigint_exits_with_status_zero", Signal::SIGINT);
}

fn exits_on(model: &Model, name: &str, signal: Signal) {
    const PROMPTLY: Duration = Duration::from_secs(2);
    check(model, name, move |server| {
        round_trip(&client()?, server.addr(), &datagram(6, 0, 1000))?;
        server.signal(signal)?;
        match server.wait_for_exit(PROMPTLY) {
            None => Err(format!("still running {} s after {signal}", PROMPTLY.as_secs())),
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(format!("after {signal}: {status}, expected exit status 0")),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_say_who_sent_them_and_differ_by_peer_and_sequence() {
        assert_eq!(identity(&datagram(7, 9, 100)), Some((7, 9)));
        assert_ne!(datagram(7, 9, 100)[8..], datagram(8, 9, 100)[8..]);
        assert_ne!(datagram(7, 9, 100)[8..], datagram(7, 10, 100)[8..]);
        assert_eq!(datagram(1, 1, 3).len(), 3);
        assert_eq!(identity(&datagram(1, 1, 3)), None);
    }
}
