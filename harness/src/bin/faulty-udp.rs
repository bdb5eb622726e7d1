//! `faulty-udp`: a UDP echo with faults you can switch on, to check that
//! the harness's UDP load counts each as its own kind (`harness/tests/udp_load.rs`):
//!
//! ```text
//! faulty-udp --port PORT [--drop-every N] [--corrupt-every N] [--duplicate-every N]
//!            [--other-port-every N] [--truncate-every N]
//! harness bench --protocol udp --server-cmd 'target/release/faulty-udp --port {port} --drop-every 100'
//! ```
//!
//! With no option it is a correct echo: one socket, `recv_from`, `send_to`.
//! Datagrams are numbered from 1 as they arrive, and each fault hits every
//! N-th, deterministically, so a rate is exact and a test does not depend on
//! luck: `--drop-every 100` answers none of datagrams 100, 200, … (1%).
//! The other faults hit datagrams a few places after a multiple of N (N/2+1,
//! +3, +5, +7), so with N a multiple of the drop's, two faults never hit one
//! datagram:
//!
//! - `--corrupt-every N`: the last byte flipped;
//! - `--duplicate-every N`: answered twice;
//! - `--other-port-every N`: answered from a second socket on another port;
//! - `--truncate-every N`: answered one byte short.
//!
//! It prints `listening on 127.0.0.1:PORT` when ready and dies on SIGTERM.

use std::net::UdpSocket;

#[derive(Debug, Default, Clone, Copy)]
struct Faults {
    drop_every: Option<u64>,
    corrupt_every: Option<u64>,
    duplicate_every: Option<u64>,
    other_port_every: Option<u64>,
    truncate_every: Option<u64>,
}

const USAGE: &str = "usage: faulty-udp --port PORT [--drop-every N] [--corrupt-every N] [--duplicate-every N] [--other-port-every N] [--truncate-every N]";

fn positive(name: &str, value: Option<String>) -> Option<u64> {
    match value.and_then(|value| value.parse::<u64>().ok()) {
        Some(number) if number > 0 => Some(number),
        _ => {
            eprintln!("faulty-udp: {name} takes a positive whole number; {USAGE}");
            std::process::exit(2);
        }
    }
}

/// Whether datagram `count` (from 1) is hit by a fault of period `every`
/// placed `offset` after the middle of each period.
fn hits(every: Option<u64>, count: u64, offset: u64) -> bool {
    every.is_some_and(|every| count % every == (every / 2 + offset) % every)
}

fn main() {
    let mut port = None;
    let mut faults = Faults::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|value| value.parse::<u16>().ok()),
            "--drop-every" => faults.drop_every = positive(&arg, args.next()),
            "--corrupt-every" => faults.corrupt_every = positive(&arg, args.next()),
            "--duplicate-every" => faults.duplicate_every = positive(&arg, args.next()),
            "--other-port-every" => faults.other_port_every = positive(&arg, args.next()),
            "--truncate-every" => faults.truncate_every = positive(&arg, args.next()),
            other => {
                eprintln!("faulty-udp: unknown option '{other}'; {USAGE}");
                std::process::exit(2);
            }
        }
    }
    let Some(port) = port else {
        eprintln!("faulty-udp: give --port PORT; {USAGE}");
        std::process::exit(2);
    };
    let (socket, other) = match (
        UdpSocket::bind(("127.0.0.1", port)),
        UdpSocket::bind("127.0.0.1:0"),
    ) {
        (Ok(socket), Ok(other)) => (socket, other),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("faulty-udp: cannot bind port {port}: {error}");
            std::process::exit(1);
        }
    };
    println!("listening on {}", socket.local_addr().expect("bound"));
    let mut buffer = vec![0u8; 64 * 1024];
    let mut count = 0u64;
    loop {
        let Ok((length, peer)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        count += 1;
        if faults.drop_every.is_some_and(|every| count.is_multiple_of(every)) {
            continue;
        }
        let mut length = length;
        if hits(faults.corrupt_every, count, 1) && length > 0 {
            buffer[length - 1] ^= 0xFF;
        }
        if hits(faults.truncate_every, count, 7) && length > 0 {
            length -= 1;
        }
        let from = if hits(faults.other_port_every, count, 5) {
            &other
        } else {
            &socket
        };
        let _ = from.send_to(&buffer[..length], peer);
        if hits(faults.duplicate_every, count, 3) {
            let _ = from.send_to(&buffer[..length], peer);
        }
    }
}
