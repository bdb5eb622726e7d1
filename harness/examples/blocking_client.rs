//! The plainest possible load generator, to check the harness against: one
//! blocking socket, write 64 bytes, read them back, repeat, for a few seconds.
//! At one connection `harness bench --connections 1` should match its rate.
//!
//! ```sh
//! cargo run --release -p harness -- serve epoll --addr 127.0.0.1:7000 &
//! cargo run --release -p harness --example blocking_client -- 127.0.0.1:7000 5 1
//! ```
//! Arguments: target, seconds (default 5), CPU to pin to (default: none).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "127.0.0.1:7000".into());
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    if let Some(cpu) = args.next().and_then(|s| s.parse::<usize>().ok()) {
        echo_core::affinity::pin_to(&[cpu])?;
    }
    let mut stream = TcpStream::connect(&target)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let message = [b'x'; 64];
    let mut echo = [0u8; 64];
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let mut messages = 0u64;
    while Instant::now() < until {
        stream.write_all(&message)?;
        stream.read_exact(&mut echo)?;
        assert_eq!(echo, message, "the echo differs");
        messages += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{messages} round trips in {elapsed:.2} s: {:.0} msgs/s, mean round trip {:.1} µs",
        messages as f64 / elapsed,
        elapsed * 1e6 / messages as f64
    );
    Ok(())
}
