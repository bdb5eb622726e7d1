//! Steps 1 and 2 are not a load but a scene: some clients take every place a
//! server has and stay; one more connects, sends, and waits; then one of the
//! first clients leaves. What is timed: how long the waiting client went
//! without an echo while they stayed, and how soon it was echoed after one
//! left. Plain blocking sockets on loopback, every read with a deadline.

use crate::load::payload;
use crate::server::ServerUnderTest;
use anyhow::{Context, bail};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Bytes each client sends.
const MESSAGE: usize = 64;
/// How long a holding client may take to be connected and echoed, and the
/// waiting client to be echoed once a place is free.
pub const ECHO_DEADLINE: Duration = Duration::from_secs(2);

/// What the scene measured.
#[derive(Debug, Clone, Copy)]
pub struct Scene {
    pub holders: u32,
    /// Holding clients that were echoed.
    pub holders_echoed: u32,
    /// The slowest holding client's first echo.
    pub slowest_holder_echo: Duration,
    /// When the waiting client was echoed although every holder stayed.
    pub echoed_while_held: Option<Duration>,
    /// How long the waiting client went without an echo while they stayed.
    pub waited: Duration,
    /// How soon after a holder left the waiting client was echoed (`None`:
    /// not within [`ECHO_DEADLINE`], or already echoed).
    pub echo_after_leave: Option<Duration>,
}

/// Starts `server` on `cpus`, plays the scene with `holders` holding
/// clients and a wait of `hold`, stops the server. `waiting` is told what
/// the scene waits for, as it starts waiting.
pub fn play(
    server: &ServerUnderTest,
    cpus: &[usize],
    holders: u32,
    hold: Duration,
    waiting: &mut dyn FnMut(&str),
) -> anyhow::Result<Scene> {
    let started = server.start(cpus)?;
    let addr = started.addr;
    let scene = scene(addr, holders, hold, waiting);
    // Stop it whatever happened, then report the first failure.
    let exit = started.stop();
    let scene = scene?;
    if let Some((status, _)) = exit?
        && !status.success()
    {
        bail!(
            "{} {} when stopped with SIGTERM",
            server.describe(),
            crate::server::process::describe(Some(status))
        );
    }
    Ok(scene)
}

fn scene(
    addr: SocketAddr,
    holders: u32,
    hold: Duration,
    waiting: &mut dyn FnMut(&str),
) -> anyhow::Result<Scene> {
    waiting(&if holders == 1 {
        "a first client connects and waits for its echo".to_owned()
    } else {
        format!("{holders} clients connect and wait for their first echo")
    });
    let mut holding = Vec::new();
    let mut holders_echoed = 0;
    let mut slowest_holder_echo = Duration::ZERO;
    for index in 0..holders {
        let mut stream = connect(addr).with_context(|| format!("holding client {}", index + 1))?;
        let sent = Instant::now();
        send(&mut stream, u64::from(index))?;
        if receive(&mut stream, u64::from(index), ECHO_DEADLINE)? {
            holders_echoed += 1;
            slowest_holder_echo = slowest_holder_echo.max(sent.elapsed());
        }
        holding.push(stream);
    }
    let waiter_id = u64::from(holders);
    let mut waiter = connect(addr).context("the waiting client")?;
    send(&mut waiter, waiter_id)?;
    let sent = Instant::now();
    waiting(&format!(
        "the waiting client sent its message: does an echo come within {} ms while the others stay?",
        hold.as_millis()
    ));
    let echoed_while_held = receive(&mut waiter, waiter_id, hold)?.then(|| sent.elapsed());
    let waited = echoed_while_held.unwrap_or_else(|| sent.elapsed());
    let mut echo_after_leave = None;
    if echoed_while_held.is_none() {
        waiting("one holding client leaves: how soon is the waiting one echoed?");
        drop(holding.remove(0));
        let left = Instant::now();
        if receive(&mut waiter, waiter_id, ECHO_DEADLINE)? {
            echo_after_leave = Some(left.elapsed());
        }
    }
    Ok(Scene {
        holders,
        holders_echoed,
        slowest_holder_echo,
        echoed_while_held,
        waited,
        echo_after_leave,
    })
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, ECHO_DEADLINE)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends client `id`'s message: the first 64 bytes of its payload stream.
fn send(stream: &mut TcpStream, id: u64) -> io::Result<()> {
    let mut message = [0u8; MESSAGE];
    payload::fill(id, 0, &mut message);
    stream.write_all(&message)
}

/// Reads the echo of client `id`'s message: true when all of it came
/// within `deadline`, false when the deadline passed first. A wrong byte or
/// a closed connection is an error.
fn receive(stream: &mut TcpStream, id: u64, deadline: Duration) -> anyhow::Result<bool> {
    let mut received = [0u8; MESSAGE];
    let mut filled = 0;
    let until = Instant::now() + deadline;
    while filled < MESSAGE {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut received[filled..]) {
            Ok(0) => bail!("the server closed a connection before echoing it"),
            Ok(count) => filled += count,
            Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Ok(false);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error).context("reading an echo"),
        }
    }
    if !payload::matches(id, 0, &received) {
        bail!("the server echoed bytes that were not sent");
    }
    Ok(true)
}
