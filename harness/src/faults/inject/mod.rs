//! The injectors: one small, bounded client (or signal) per fault. Each runs
//! in a thread of its own from the fault's start to its end
//! ([`Injection::until`]), opens at most a fixed number of connections and
//! sends at most a fixed number of bytes, talks only to the server under
//! test on loopback, and closes everything it opened before it returns,
//! whatever happens (its sockets are owned by the function and dropped on
//! every path, errors and panics included).
//!
//! # Layout
//!
//! One module per fault, each opening with what it does and its bounds;
//! [`clients`] holds what several share (connecting, socket sizes, resets,
//! reading an echo back and checking it).

pub mod clients;
pub mod connect_flood;
pub mod fd_exhaustion;
pub mod half_close;
pub mod half_open;
pub mod idle_herd;
pub mod reset_storm;
pub mod server_pause;
pub mod slow_reader;
pub mod slowloris;
pub mod urgent_data;

use crate::protocol::Protocol;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What an injector is given.
#[derive(Debug, Clone)]
pub struct Injection {
    /// The server under test (loopback).
    pub addr: SocketAddr,
    /// The server's process, leader of its own process group.
    pub server_pid: u32,
    /// When the fault ends: the injector stops then, cleans up at once and
    /// returns.
    pub until: Instant,
    /// Set once the fault is in place (connections open, burst sent, server
    /// stopped): from then on the server has nothing left to set up, so the
    /// CPU it uses is judged for spinning.
    engaged: Arc<AtomicBool>,
    /// What the server speaks: an injector whose clients send data sends
    /// what the protocol expects ([`clients::send`]).
    pub protocol: Protocol,
}

impl Injection {
    pub fn new(addr: SocketAddr, server_pid: u32, until: Instant) -> Injection {
        Injection {
            addr,
            server_pid,
            until,
            engaged: Arc::new(AtomicBool::new(false)),
            protocol: Protocol::Echo,
        }
    }

    /// This injection against a server that speaks `protocol`.
    pub fn speaking(self, protocol: Protocol) -> Injection {
        Injection { protocol, ..self }
    }

    /// Marks the fault as in place.
    pub fn engage(&self) {
        self.engaged.store(true, Ordering::Release);
    }

    pub fn is_engaged(&self) -> bool {
        self.engaged.load(Ordering::Acquire)
    }

    /// Time left until the fault ends.
    pub fn left(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    pub fn over(&self) -> bool {
        Instant::now() >= self.until
    }

    /// Sleeps until the fault ends.
    pub fn wait_for_end(&self) {
        std::thread::sleep(self.left());
    }
}

/// What an injector did, for the fault's row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Injected {
    /// Connections it opened.
    pub connections: u64,
    /// Payload bytes it sent.
    pub bytes: u64,
    /// Echoed bytes or messages the server owed its clients and did not
    /// deliver: wrong bytes, or an early close that cut an echo short.
    pub lost: u64,
    /// One sentence: what it did, with its figures.
    pub note: String,
}

/// An injector: runs the fault until [`Injection::until`], cleans up, and
/// reports.
pub type Inject = fn(&Injection) -> anyhow::Result<Injected>;

/// `n thing` or `n things`, with thousands separators.
pub fn plural(count: u64, thing: &str) -> String {
    let number = crate::report::groups::count(count as f64);
    if count == 1 {
        format!("{number} {thing}")
    } else {
        format!("{number} {thing}s")
    }
}

/// Bytes as KiB or MiB, one decimal.
pub fn bytes(count: u64) -> String {
    if count >= 1024 * 1024 {
        format!("{:.1} MiB", count as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", count as f64 / 1024.0)
    }
}

/// A small echo server for the injectors' tests: blocking, a thread per
/// connection, on 127.0.0.1 port 0, counting what its clients did to it,
/// and misbehaving on request.
#[cfg(test)]
pub mod test_server {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    /// How it echoes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Behaviour {
        /// Every byte back, in order, then close after EOF.
        Echo,
        /// Echoes, but drops what it read last when EOF comes, and closes.
        CloseOnEof,
        /// Echoes with the first byte of each read flipped.
        Corrupt,
    }

    #[derive(Debug, Default)]
    pub struct Counts {
        pub accepted: AtomicU64,
        pub bytes: AtomicU64,
        pub eofs: AtomicU64,
        pub resets: AtomicU64,
        /// The longest a connection went between two reads that returned data.
        pub longest_gap_ms: AtomicU64,
    }

    pub struct TestServer {
        pub addr: SocketAddr,
        pub counts: Arc<Counts>,
        stop: Arc<AtomicBool>,
    }

    impl TestServer {
        pub fn start(behaviour: Behaviour) -> TestServer {
            Self::serve_from(
                TcpListener::bind("127.0.0.1:0").unwrap(),
                behaviour,
                Duration::ZERO,
            )
        }

        /// A server that accepts slowly: a listen backlog of 8, and a
        /// `pause` after each accept. A burst of connects overflows its
        /// accept queue, and the kernel drops the SYNs that do not fit.
        pub fn start_slow_accepting(behaviour: Behaviour, pause: Duration) -> TestServer {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket
                .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
                .unwrap();
            socket.listen(8).unwrap();
            Self::serve_from(socket.into(), behaviour, pause)
        }

        fn serve_from(listener: TcpListener, behaviour: Behaviour, pause: Duration) -> TestServer {
            let addr = listener.local_addr().unwrap();
            let counts = Arc::new(Counts::default());
            let stop = Arc::new(AtomicBool::new(false));
            let (counts_, stop_) = (Arc::clone(&counts), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop_.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    counts_.accepted.fetch_add(1, Ordering::Relaxed);
                    let counts = Arc::clone(&counts_);
                    std::thread::spawn(move || serve(stream, behaviour, &counts));
                    std::thread::sleep(pause);
                }
            });
            TestServer { addr, counts, stop }
        }

        pub fn count(&self, what: fn(&Counts) -> &AtomicU64) -> u64 {
            what(&self.counts).load(Ordering::Relaxed)
        }

        /// Waits up to `limit` for `what` to reach `at_least`.
        pub fn wait_for(&self, what: fn(&Counts) -> &AtomicU64, at_least: u64, limit: Duration) -> u64 {
            let until = Instant::now() + limit;
            while self.count(what) < at_least && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            self.count(what)
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            let _ = TcpStream::connect(self.addr);
        }
    }

    fn serve(mut stream: TcpStream, behaviour: Behaviour, counts: &Counts) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
        let mut buffer = vec![0u8; 16 * 1024];
        let mut last_data = None::<Instant>;
        let mut held: Vec<u8> = Vec::new();
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => {
                    counts.eofs.fetch_add(1, Ordering::Relaxed);
                    if behaviour != Behaviour::CloseOnEof {
                        let _ = stream.write_all(&held);
                    }
                    return;
                }
                Ok(read) => {
                    counts.bytes.fetch_add(read as u64, Ordering::Relaxed);
                    if let Some(last) = last_data {
                        counts
                            .longest_gap_ms
                            .fetch_max(last.elapsed().as_millis() as u64, Ordering::Relaxed);
                    }
                    last_data = Some(Instant::now());
                    let mut chunk = buffer[..read].to_vec();
                    if behaviour == Behaviour::Corrupt {
                        chunk[0] ^= 0xff;
                    }
                    // CloseOnEof holds its latest chunk back until the next read.
                    let out = if behaviour == Behaviour::CloseOnEof {
                        std::mem::replace(&mut held, chunk)
                    } else {
                        chunk
                    };
                    if let Err(error) = stream.write_all(&out) {
                        if matches!(error.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) {
                            counts.resets.fetch_add(1, Ordering::Relaxed);
                        }
                        return;
                    }
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => {
                    if error.kind() == ErrorKind::ConnectionReset {
                        counts.resets.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
            }
        }
    }
}
