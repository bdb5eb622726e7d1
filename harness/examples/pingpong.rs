//! The plainest load generator that can measure an echo server: one thread,
//! one epoll set, N connections each doing ping-pong with a fixed message.
//! No verification, no histograms, no pacing, no sampling: it reads what
//! comes back, counts a message when all of its bytes are back, and sends
//! the next one. Prints messages per second.
//!
//! It is the instrument check's reference: `harness bench` does more work per
//! message (it verifies every byte and records every latency) and must still
//! reach this client's rate against the same server (see
//! `examples/instrument_check.rs`).
//!
//! ```text
//! cargo run --release -p harness --example pingpong -- --addr 127.0.0.1:7000 --connections 100
//! ```

use clap::Parser;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The echo server, HOST:PORT.
    #[arg(long)]
    addr: String,
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Bytes per message.
    #[arg(long, default_value_t = 64)]
    size: usize,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
}

struct Connection {
    stream: TcpStream,
    /// Bytes of the current message's echo received so far.
    received: usize,
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let rate = measure(
        &args.addr,
        args.connections,
        args.size,
        args.warmup,
        args.duration,
    )?;
    println!("{rate:.0} msgs/s");
    Ok(())
}

/// Drives `addr` with `connections` ping-pong connections of `size`-byte
/// messages; returns the messages per second completed in the measurement.
pub fn measure(addr: &str, connections: usize, size: usize, warmup: f64, duration: f64) -> io::Result<f64> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let message = vec![b'x'; size];
    let mut open = Vec::with_capacity(connections);
    for index in 0..connections {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        epoll.add(stream.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, index as u64))?;
        open.push(Connection { stream, received: 0 });
    }
    // A message fits the socket buffer, so one write sends it whole.
    for connection in &mut open {
        connection.stream.write_all(&message)?;
    }
    let mut buffer = vec![0u8; 64 * 1024];
    let mut events = vec![EpollEvent::empty(); 1024];
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warmup);
    let measure_until = measure_from + Duration::from_secs_f64(duration);
    let mut measured = 0u64;
    loop {
        let now = Instant::now();
        if now >= measure_until {
            break;
        }
        let ready = epoll.wait(&mut events, EpollTimeout::from(100u16))?;
        let in_window = now >= measure_from;
        for event in &events[..ready] {
            let connection = &mut open[event.data() as usize];
            loop {
                match connection.stream.read(&mut buffer) {
                    Ok(0) => return Err(io::Error::other("the server closed a connection")),
                    Ok(length) => {
                        connection.received += length;
                        if length < buffer.len() {
                            break;
                        }
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) => return Err(error),
                }
            }
            if connection.received >= size {
                connection.received -= size;
                if in_window {
                    measured += 1;
                }
                connection.stream.write_all(&message)?;
            }
        }
    }
    Ok(measured as f64 / duration)
}
