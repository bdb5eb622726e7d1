//! The checks, one public function each; [`suite!`](crate::suite) turns each
//! into a `#[test]` of the same name.
//!
//! Each starts its own server, runs under a watchdog, and fails with a
//! sentence saying what the model did wrong, followed by the server's stderr.

use crate::client::{self, Pattern, read_pattern, round_trip, shutdown_write, write_pattern};
use crate::server::{Launch, Server};
use crate::watchdog::{expect_silence, run_check, spawn};
use crate::{Kind, Model};
use nix::sys::signal::Signal;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Watchdog of checks that move little data.
const SHORT: Duration = Duration::from_secs(30);
/// Watchdog of checks that move megabytes or hold many connections.
const LONG: Duration = Duration::from_secs(60);

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

/// Piece sizes that do not line up with any buffer size.
const UNEVEN_PIECES: &[usize] = &[
    1, 7, 1000, 65_536, 3, 16_385, 123_457, 512, 4_095, 300_001, 2, 16_384,
];

fn check<F>(model: &Model, name: &str, limit: Duration, body: F)
where
    F: FnOnce(&Server) -> Result<(), String> + Send + 'static,
{
    run_check(model, name, limit, Launch::default(), body);
}

/// One connection, 1,000 round trips of 1 to 200 bytes.
pub fn thousand_small_round_trips(model: &Model) {
    check(model, "thousand_small_round_trips", SHORT, |server| {
        let mut stream = server.connect()?;
        let pattern = Pattern::new(1);
        let mut offset = 0u64;
        for trip in 0..1000u64 {
            let len = 1 + (trip * 37 % 200) as usize;
            round_trip(&mut stream, &pattern.bytes(offset, len))
                .map_err(|error| format!("round trip {} of 1000 ({len} bytes): {error}", trip + 1))?;
            offset += len as u64;
        }
        Ok(())
    });
}

/// 8 MiB written in uneven pieces by one thread while another reads and
/// verifies every byte; then half-close and EOF.
pub fn eight_mib_in_uneven_pieces(model: &Model) {
    check(model, "eight_mib_in_uneven_pieces", LONG, |server| {
        stream_with_half_close(server, Pattern::new(2), 8 * MIB, UNEVEN_PIECES, 12_345)
    });
}

/// One byte, shutdown(Write): the byte comes back, then EOF.
pub fn half_close_after_one_byte(model: &Model) {
    check(model, "half_close_after_one_byte", SHORT, |server| {
        let mut stream = server.connect()?;
        let pattern = Pattern::new(3);
        stream
            .write_all(&pattern.bytes(0, 1))
            .map_err(|error| format!("writing one byte: {error}"))?;
        shutdown_write(&stream)?;
        read_pattern(&mut stream, pattern, 0..1, 1)
            .map_err(|error| format!("after a half-close: {error}"))?;
        client::expect_eof(&mut stream)
    });
}

/// 4 MiB then shutdown(Write): every byte comes back, then EOF.
pub fn half_close_after_several_mib(model: &Model) {
    check(model, "half_close_after_several_mib", LONG, |server| {
        stream_with_half_close(server, Pattern::new(4), 4 * MIB, &[65_536], 65_536)
    });
}

/// The client writes 3 MiB and half-closes before reading anything, then
/// reads slowly: the server sees EOF while it still holds bytes it could not
/// write yet, and must write them all before closing.
pub fn half_close_while_the_server_holds_unsent_bytes(model: &Model) {
    check(
        model,
        "half_close_while_the_server_holds_unsent_bytes",
        LONG,
        |server| {
            const TOTAL: u64 = 3 * MIB;
            const SLOW_PART: u64 = 256 * KIB;
            let pattern = Pattern::new(5);
            let mut stream = server.connect()?;
            let mut writer_stream = stream.try_clone().map_err(|error| error.to_string())?;
            let writer = spawn("writer", move || {
                write_pattern(&mut writer_stream, pattern, TOTAL, &[100_000])?;
                shutdown_write(&writer_stream)
            });
            // Let the writer fill every buffer on the way (or finish) first.
            let waited = Instant::now();
            while !writer.is_finished() && waited.elapsed() < Duration::from_millis(500) {
                thread::sleep(Duration::from_millis(10));
            }
            let mut slow_read = || -> Result<(), String> {
                for start in (0..SLOW_PART).step_by(KIB as usize) {
                    read_pattern(&mut stream, pattern, start..start + KIB, KIB as usize)?;
                    thread::sleep(Duration::from_millis(1));
                }
                read_pattern(&mut stream, pattern, SLOW_PART..TOTAL, 65_536)?;
                client::expect_eof(&mut stream)
            };
            let read = slow_read();
            if read.is_err() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            both(read, writer.join())
        },
    );
}

/// A client is reset (SO_LINGER 0, then close) while megabytes are in flight
/// both ways. Only that connection ends: a client connected before it keeps
/// being served (where the model serves two at once), a new client is served
/// byte-exact, and the server is still running.
pub fn peer_reset_mid_transfer_ends_only_that_connection(model: &Model) {
    let concurrent = model.kind.concurrency() >= 2;
    check(
        model,
        "peer_reset_mid_transfer_ends_only_that_connection",
        LONG,
        move |server| {
            let pattern = Pattern::new(6);
            let mut bystander = if concurrent {
                let mut bystander = server.connect()?;
                round_trip(&mut bystander, &pattern.bytes(0, 1000))?;
                Some(bystander)
            } else {
                None
            };

            let mut doomed = server.connect()?;
            socket2::SockRef::from(&doomed)
                .set_linger(Some(Duration::ZERO))
                .map_err(|error| format!("SO_LINGER: {error}"))?;
            round_trip(&mut doomed, &pattern.bytes(0, 65_536))
                .map_err(|error| format!("before the reset: {error}"))?;
            // Write without reading until the socket is full (or 8 MiB): the
            // server is now in the middle of reading and writing this connection.
            doomed.set_nonblocking(true).map_err(|error| error.to_string())?;
            let chunk = pattern.bytes(0, 65_536);
            let mut in_flight = 0u64;
            while in_flight < 8 * MIB {
                match doomed.write(&chunk) {
                    Ok(written) => in_flight += written as u64,
                    Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                    Err(error) if error.kind() == ErrorKind::Interrupted => {}
                    Err(error) => return Err(format!("writing before the reset: {error}")),
                }
            }
            thread::sleep(Duration::from_millis(50));
            drop(doomed); // RST, with data unread on both sides.

            if let Some(bystander) = bystander.as_mut() {
                round_trip(bystander, &pattern.bytes(1000, 5000)).map_err(|error| {
                    format!("a client connected before another was reset is no longer served: {error}")
                })?;
            }
            let mut next = server.connect()?;
            round_trip(&mut next, &pattern.bytes(7, 100_000))
                .map_err(|error| format!("a new client after a peer reset: {error}"))?;
            drop(next);
            stream_with_half_close(server, Pattern::new(60), MIB, UNEVEN_PIECES, 8192)
                .map_err(|error| format!("a new client after a peer reset: {error}"))?;
            server.assert_running()
        },
    );
}

/// 100 clients, each sending 1 to 8 messages of 1 byte to 48 KiB (random,
/// seeded; the seed is in the failure message) and checking every echo. As
/// many run at once as the kind serves at once: all 100, the pool's workers,
/// or one after another.
pub fn hundred_clients_with_random_sizes(model: &Model) {
    let at_once = model.kind.concurrency().min(100);
    check(model, "hundred_clients_with_random_sizes", LONG, move |server| {
        const CLIENTS: usize = 100;
        let seed: u64 = rand::random();
        let mut rng = StdRng::seed_from_u64(seed);
        let plans: Vec<Vec<usize>> = (0..CLIENTS)
            .map(|_| {
                let messages = rng.random_range(1..=8);
                (0..messages).map(|_| rng.random_range(1..=48 * 1024)).collect()
            })
            .collect();
        let addr = server.addr();
        let mut failures = Vec::new();
        for (wave, wave_plans) in plans.chunks(at_once).enumerate() {
            let everyone_connected = Arc::new(Barrier::new(wave_plans.len()));
            let clients: Vec<_> = wave_plans
                .iter()
                .enumerate()
                .map(|(index, sizes)| {
                    let client_index = (wave * at_once + index) as u64;
                    let sizes = sizes.clone();
                    let everyone_connected = Arc::clone(&everyone_connected);
                    spawn(&format!("client {client_index}"), move || {
                        let connected = client::connect(addr);
                        everyone_connected.wait();
                        let mut stream = connected?;
                        let pattern = Pattern::new(seed ^ client_index);
                        let mut offset = 0u64;
                        for (message, &size) in sizes.iter().enumerate() {
                            round_trip(&mut stream, &pattern.bytes(offset, size))
                                .map_err(|error| format!("message {message} ({size} bytes): {error}"))?;
                            offset += size as u64;
                        }
                        shutdown_write(&stream)?;
                        client::expect_eof(&mut stream)
                    })
                })
                .collect();
            failures.extend(clients.into_iter().filter_map(|client| client.join().err()));
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} of {CLIENTS} clients failed ({at_once} at once, seed {seed}):\n{}",
                failures.len(),
                failures.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
            ))
        }
    });
}

/// A client that writes 64 MiB and reads nothing for a while: the server must
/// stop reading it (backpressure) instead of buffering, so its resident memory
/// grows by well under the data sent. Then everything is read back and checked.
pub fn slow_reader_keeps_server_memory_bounded(model: &Model) {
    check(model, "slow_reader_keeps_server_memory_bounded", LONG, |server| {
        const TOTAL: u64 = 64 * MIB;
        const PIECE: usize = 64 * 1024;
        const GROWTH_LIMIT_KIB: u64 = 16 * 1024;
        let mut stream = server.connect()?;
        // The connection is fully set up on the server before the baseline.
        round_trip(&mut stream, &Pattern::new(70).bytes(0, 1000))?;
        let baseline = server.rss_kib()?;

        let pattern = Pattern::new(7);
        let written = Arc::new(AtomicU64::new(0));
        let mut writer_stream = stream.try_clone().map_err(|error| error.to_string())?;
        let writer_progress = Arc::clone(&written);
        let writer = spawn("writer", move || {
            let mut offset = 0u64;
            while offset < TOTAL {
                let bytes = pattern.bytes(offset, PIECE);
                writer_stream
                    .write_all(&bytes)
                    .map_err(|error| format!("writing at offset {offset}: {}", client::describe(&error)))?;
                offset += PIECE as u64;
                writer_progress.store(offset, Ordering::Relaxed);
            }
            shutdown_write(&writer_stream)
        });

        // Wait until the writer stalls (the server stopped reading) or is done.
        let mut peak = baseline;
        let mut last_written = 0;
        let mut still_since = Instant::now();
        let give_up = Instant::now() + Duration::from_secs(5);
        while !writer.is_finished() && Instant::now() < give_up {
            thread::sleep(Duration::from_millis(100));
            peak = peak.max(server.rss_kib()?);
            let now_written = written.load(Ordering::Relaxed);
            if now_written != last_written {
                last_written = now_written;
                still_since = Instant::now();
            } else if still_since.elapsed() >= Duration::from_millis(500) {
                break;
            }
        }
        peak = peak.max(server.rss_kib()?);
        let sent_unread = written.load(Ordering::Relaxed);
        let growth = peak.saturating_sub(baseline);
        if growth > GROWTH_LIMIT_KIB {
            let _ = stream.shutdown(Shutdown::Both);
            let _ = writer.join();
            return Err(format!(
                "the server's memory grew by {growth} KiB (from {baseline} KiB) while a client \
                 that reads nothing sent {sent_unread} bytes; limit {GROWTH_LIMIT_KIB} KiB: it \
                 should stop reading a connection whose echo is not being read, not buffer it"
            ));
        }

        let read = read_pattern(&mut stream, pattern, 0..TOTAL, 256 * 1024)
            .and_then(|()| client::expect_eof(&mut stream));
        if read.is_err() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        both(read, writer.join())
    });
}

/// The server runs with at most 64 file descriptors and 100 clients connect.
/// It keeps serving the clients it accepted, says so in one or a few log
/// lines (not one per failed accept), does not spin on the listener (except
/// a busy-polling model, which spins by design), and serves a new client
/// once descriptors are free again.
pub fn survives_running_out_of_file_descriptors(model: &Model) {
    const FD_LIMIT: u64 = 64;
    const CLIENTS: usize = 100;
    const MAX_ACCEPT_LINES: usize = 5;
    let kind = model.kind;
    let launch = Launch {
        fd_limit: Some(FD_LIMIT),
        ..Launch::default()
    };
    let name = "survives_running_out_of_file_descriptors";
    run_check(model, name, LONG, launch, move |server| {
        let pattern = Pattern::new(8);
        // The first client is served before the others come: with a
        // listener per worker (SO_REUSEPORT), a client the kernel queued on
        // a worker that lost the race for descriptors would wait for one.
        let mut clients = Vec::with_capacity(CLIENTS);
        clients.push(server.connect()?);
        round_trip(&mut clients[0], &pattern.bytes(0, 1000))
            .map_err(|error| format!("the first of {CLIENTS} clients: {error}"))?;
        for index in 1..CLIENTS {
            clients.push(
                server
                    .connect()
                    .map_err(|error| format!("client {index}: {error}"))?,
            );
        }
        // These kinds accept every client they can, so they must run out.
        let must_run_out = matches!(kind, Kind::Concurrent | Kind::BusyPoll | Kind::Select);
        if must_run_out && !server.wait_for_stderr(Duration::from_secs(5), is_accept_line) {
            return Err(format!(
                "with {CLIENTS} clients and a limit of {FD_LIMIT} descriptors, the server \
                 never logged that accept failed"
            ));
        }

        // The listener stays readable while accept fails: retrying at once
        // would spin a core.
        let cpu_before = server.cpu_time()?;
        let started = Instant::now();
        thread::sleep(Duration::from_secs(1));
        let used = server.cpu_time()?.saturating_sub(cpu_before);
        let elapsed = started.elapsed();
        if kind != Kind::BusyPoll && used > elapsed / 4 {
            return Err(format!(
                "the server used {:.2} s of CPU in {:.2} s while out of file descriptors with \
                 nothing to echo: it retries accept without pausing",
                used.as_secs_f64(),
                elapsed.as_secs_f64()
            ));
        }
        // Each process has its own descriptor table, so its own episodes.
        let most = MAX_ACCEPT_LINES * kind.accepting_processes();
        count_accept_lines(server, most)?;
        round_trip(&mut clients[0], &pattern.bytes(1000, 1000))
            .map_err(|error| format!("the first client, while the server is out of descriptors: {error}"))?;

        drop(clients);
        // A shedding model closes whoever comes while it is still full, and
        // it frees descriptors only as it sees the others leave: a new
        // client may have to try again.
        let tries = if kind == Kind::SilentlyShedding { 20 } else { 1 };
        for attempt in 1..=tries {
            let mut fresh = server.connect()?;
            match round_trip(&mut fresh, &pattern.bytes(2000, 50_000)) {
                Ok(()) => break,
                Err(_) if attempt < tries => thread::sleep(Duration::from_millis(100)),
                Err(error) => {
                    return Err(format!(
                        "a new client after the {CLIENTS} others closed (try {attempt} of {tries}): {error}"
                    ));
                }
            }
        }
        count_accept_lines(server, most + kind.accepting_processes())?;
        server.assert_running()
    });
}

fn is_accept_line(line: &str) -> bool {
    let line = line.to_ascii_lowercase();
    line.contains("accept") || line.contains("too many open files")
}

fn count_accept_lines(server: &Server, most: usize) -> Result<(), String> {
    let lines: Vec<String> = server
        .stderr_lines()
        .into_iter()
        .filter(|line| is_accept_line(line))
        .collect();
    if lines.len() <= most {
        return Ok(());
    }
    Err(format!(
        "{} log lines about accept failing, at most {most} expected (one per episode, not one \
         per try); first: {:?}",
        lines.len(),
        lines.first()
    ))
}

/// SIGTERM, with a client connected: exit status 0 within 2 s.
pub fn sigterm_exits_with_status_zero(model: &Model) {
    exits_on(model, "sigterm_exits_with_status_zero", Signal::SIGTERM);
}

/// SIGINT, with a client connected: exit status 0 within 2 s.
pub fn sigint_exits_with_status_zero(model: &Model) {
    exits_on(model, "sigint_exits_with_status_zero", Signal::SIGINT);
}

fn exits_on(model: &Model, name: &str, signal: Signal) {
    const PROMPTLY: Duration = Duration::from_secs(2);
    check(model, name, SHORT, move |server| {
        let mut connected = server.connect()?;
        round_trip(&mut connected, &Pattern::new(9).bytes(0, 1000))?;
        server.signal(signal)?;
        match server.wait_for_exit(PROMPTLY) {
            None => Err(format!(
                "still running {} s after {signal} (one client connected)",
                PROMPTLY.as_secs()
            )),
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(format!("after {signal}: {status}, expected exit status 0")),
        }
    });
}

/// Two clients, both served while both stay connected.
pub fn a_second_client_is_served_while_the_first_stays(model: &Model) {
    check(
        model,
        "a_second_client_is_served_while_the_first_stays",
        SHORT,
        |server| {
            let pattern = Pattern::new(10);
            let mut first = server.connect()?;
            round_trip(&mut first, &pattern.bytes(0, 1000))?;
            let mut second = server.connect()?;
            round_trip(&mut second, &pattern.bytes(1000, 1000))
                .map_err(|error| format!("a second client while the first stays connected: {error}"))?;
            round_trip(&mut first, &pattern.bytes(2000, 1000))
                .map_err(|error| format!("the first client again: {error}"))?;
            round_trip(&mut second, &pattern.bytes(3000, 1000))
                .map_err(|error| format!("the second client again: {error}"))
        },
    );
}

/// One at a time by design: a second client gets no echo while the first
/// stays connected, and gets it as soon as the first leaves.
pub fn a_second_client_waits_until_the_first_leaves(model: &Model) {
    check(
        model,
        "a_second_client_waits_until_the_first_leaves",
        SHORT,
        |server| {
            let pattern = Pattern::new(11);
            let mut first = server.connect()?;
            round_trip(&mut first, &pattern.bytes(0, 1000))?;
            let mut second = server.connect()?;
            let message = pattern.bytes(1000, 1000);
            second.write_all(&message).map_err(|error| error.to_string())?;
            expect_silence(
                &mut second,
                "a second client should wait while the first is connected",
            )?;
            round_trip(&mut first, &pattern.bytes(2000, 1000))
                .map_err(|error| format!("the first client again: {error}"))?;
            drop(first);
            read_pattern(&mut second, pattern, 1000..2000, 1000)
                .map_err(|error| format!("the second client, after the first left: {error}"))
        },
    );
}

/// A pool of N workers: N clients are served at once, client N+1 waits, and
/// is served as soon as one of the first N leaves.
pub fn clients_beyond_the_workers_wait_their_turn(model: &Model) {
    let (Kind::BoundedPool { workers } | Kind::PreforkPool { workers }) = model.kind else {
        panic!("clients_beyond_the_workers_wait_their_turn is for pools");
    };
    check(
        model,
        "clients_beyond_the_workers_wait_their_turn",
        SHORT,
        move |server| {
            let pattern = Pattern::new(12);
            let mut served = Vec::with_capacity(workers);
            for index in 0..workers as u64 {
                let mut client = server.connect()?;
                round_trip(&mut client, &pattern.bytes(index * 100, 100)).map_err(|error| {
                    format!("client {} of {workers} (one per worker): {error}", index + 1)
                })?;
                served.push(client);
            }
            let mut waiting = server.connect()?;
            let message = pattern.bytes(1_000_000, 1000);
            waiting.write_all(&message).map_err(|error| error.to_string())?;
            expect_silence(
                &mut waiting,
                &format!(
                    "client {} should wait while all {workers} workers are busy",
                    workers + 1
                ),
            )?;
            for (index, client) in served.iter_mut().enumerate() {
                round_trip(client, &pattern.bytes(500_000, 100))
                    .map_err(|error| format!("client {} again, while one waits: {error}", index + 1))?;
            }
            drop(served.remove(0));
            read_pattern(&mut waiting, pattern, 1_000_000..1_001_000, 1000)
                .map_err(|error| format!("client {} after a worker became free: {error}", workers + 1))
        },
    );
}

/// 1,000 clients one after another, each connecting, echoing 10 bytes and
/// closing: every child the server forked for them has exited and been
/// reaped soon after (no zombie, no child left running).
pub fn no_zombie_after_1000_short_connections(model: &Model) {
    check(model, "no_zombie_after_1000_short_connections", LONG, |server| {
        const CLIENTS: usize = 1000;
        let pattern = Pattern::new(15);
        for index in 0..CLIENTS {
            let mut stream = server.connect()?;
            round_trip(&mut stream, &pattern.bytes(index as u64 * 10, 10))
                .map_err(|error| format!("short connection {index} of {CLIENTS}: {error}"))?;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let left = server.descendants();
            if left.is_empty() {
                return server.assert_running();
            }
            if Instant::now() >= deadline {
                let zombies = left.iter().filter(|process| process.is_zombie()).count();
                return Err(format!(
                    "2 s after {CLIENTS} short connections closed, the server still has {} child \
                     processes ({zombies} zombies: exited but never reaped with wait)",
                    left.len()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
}

/// With clients connected (so children serving them), SIGTERM: the server
/// exits 0 within a second, and none of its descendants is still running.
pub fn no_child_outlives_sigterm(model: &Model) {
    no_child_outlives(model, "no_child_outlives_sigterm", Signal::SIGTERM);
}

/// With clients connected, SIGKILL (the parent cannot clean up): every
/// descendant is gone within a second all the same (PR_SET_PDEATHSIG).
pub fn no_child_outlives_sigkill(model: &Model) {
    no_child_outlives(model, "no_child_outlives_sigkill", Signal::SIGKILL);
}

fn no_child_outlives(model: &Model, name: &str, signal: Signal) {
    const PROMPTLY: Duration = Duration::from_secs(1);
    check(model, name, SHORT, move |server| {
        let pattern = Pattern::new(16);
        let mut clients = Vec::new();
        for index in 0..3 {
            let mut client = server.connect()?;
            round_trip(&mut client, &pattern.bytes(index * 100, 100))?;
            clients.push(client);
        }
        let before = server.descendants();
        if before.is_empty() {
            return Err("the server has no child process while serving 3 clients".into());
        }
        server.signal(signal)?;
        let status = server
            .wait_for_exit(PROMPTLY)
            .ok_or_else(|| format!("still running {} s after {signal}", PROMPTLY.as_secs()))?;
        if signal != Signal::SIGKILL && !status.success() {
            return Err(format!("after {signal}: {status}, expected exit status 0"));
        }
        // After SIGTERM the parent waited for its children; after SIGKILL
        // the kernel kills them with it, a moment later.
        let grace = if signal == Signal::SIGKILL {
            PROMPTLY
        } else {
            Duration::ZERO
        };
        let deadline = Instant::now() + grace;
        loop {
            let running: Vec<i32> = before
                .iter()
                .filter(|process| process.is_running())
                .map(|process| process.pid)
                .collect();
            if running.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} of the server's {} child processes still run after it exited on {signal} \
                     (pids {running:?}): orphans",
                    running.len(),
                    before.len()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
}

/// Connections held open at once by the many-connection checks: more than
/// `FD_SETSIZE` (1,024).
const MANY: usize = 1100;

/// 1,100 connections open at once, every one served byte-exact.
pub fn serves_1100_connections_at_once(model: &Model) {
    check(model, "serves_1100_connections_at_once", LONG, |server| {
        let mut clients = open_many(server)?;
        let outcomes = echo_on_each(&mut clients)?;
        let closed: Vec<usize> = closed_indexes(&outcomes);
        if !closed.is_empty() {
            return Err(format!(
                "{} of {MANY} connections were closed instead of served (first: connection {})",
                closed.len(),
                closed[0]
            ));
        }
        round_trip(&mut clients[0], &Pattern::new(13).bytes(0, 1000))
            .map_err(|error| format!("the first connection again: {error}"))?;
        let mut fresh = server.connect()?;
        round_trip(&mut fresh, &Pattern::new(14).bytes(0, 1000))
            .map_err(|error| format!("a new client next to {MANY} others: {error}"))
    });
}

/// `select` by design: of 1,100 connections, the ones whose descriptor is
/// `FD_SETSIZE` or more are closed with a log line, the others are served,
/// and a new client is still served.
pub fn closes_connections_beyond_fd_setsize(model: &Model) {
    check(model, "closes_connections_beyond_fd_setsize", LONG, |server| {
        let fd_setsize = libc::FD_SETSIZE;
        let mut clients = open_many(server)?;
        let outcomes = echo_on_each(&mut clients)?;
        let closed = closed_indexes(&outcomes);
        let served = MANY - closed.len();
        if closed.len() < MANY - fd_setsize || served < fd_setsize - 100 {
            return Err(format!(
                "of {MANY} connections {served} were served and {} closed: expected the ones past \
                 FD_SETSIZE ({fd_setsize}) closed and all others served",
                closed.len()
            ));
        }
        // Connections are accepted in the order they connected and get ever
        // higher descriptors, so the closed ones are the last ones.
        if closed.first() != Some(&served) {
            return Err(format!(
                "connection {} was closed although later ones were served: only descriptors \
                 past FD_SETSIZE ({fd_setsize}) may be closed",
                closed[0]
            ));
        }
        if !server.wait_for_stderr(Duration::from_secs(5), |line| {
            line.to_ascii_lowercase().contains("fd_setsize")
        }) {
            return Err("no log line mentions FD_SETSIZE for the connections it closed".into());
        }
        round_trip(&mut clients[0], &Pattern::new(13).bytes(0, 1000))
            .map_err(|error| format!("the first connection again: {error}"))?;
        // Free some descriptors below FD_SETSIZE; a new client fits again
        // once the server has seen those clients leave.
        let last_served = (0..MANY).rev().find(|index| !closed.contains(index)).unwrap_or(0);
        clients.truncate(last_served.saturating_sub(20).max(1));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut fresh = server.connect()?;
            match echo_on_each(std::slice::from_mut(&mut fresh))?[..] {
                [Outcome::Served] => break,
                _ if attempts < 20 => thread::sleep(Duration::from_millis(100)),
                _ => {
                    return Err(format!(
                        "a new client after {} connections left was closed {attempts} times",
                        MANY - clients.len()
                    ));
                }
            }
        }
        server.assert_running()
    });
}

/// Opens [`MANY`] connections, one after another.
fn open_many(server: &Server) -> Result<Vec<TcpStream>, String> {
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_err(|error| error.to_string())?;
    if soft < MANY as u64 + 200 {
        return Err(format!(
            "this check needs an open-file limit of at least {}; this process has {soft}",
            MANY + 200
        ));
    }
    (0..MANY)
        .map(|index| {
            server
                .connect()
                .map_err(|error| format!("connection {index} of {MANY}: {error}"))
        })
        .collect()
}

/// What became of one connection's message.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Served,
    Closed,
}

/// Writes a distinct 32-byte message on every connection, then reads every
/// echo. A connection the server closed is `Closed`; no answer or a wrong
/// answer is an error.
fn echo_on_each(clients: &mut [TcpStream]) -> Result<Vec<Outcome>, String> {
    const LEN: usize = 32;
    let mut outcomes = Vec::with_capacity(clients.len());
    let mut write_failed = vec![false; clients.len()];
    for (index, client) in clients.iter_mut().enumerate() {
        let message = Pattern::new(index as u64).bytes(0, LEN);
        if let Err(error) = client.write_all(&message) {
            if !is_closed(&error) {
                return Err(format!("writing on connection {index}: {error}"));
            }
            write_failed[index] = true;
        }
    }
    for (index, client) in clients.iter_mut().enumerate() {
        if write_failed[index] {
            outcomes.push(Outcome::Closed);
            continue;
        }
        let mut echoed = [0u8; LEN];
        let mut filled = 0;
        let outcome = loop {
            match client.read(&mut echoed[filled..]) {
                Ok(0) if filled == 0 => break Outcome::Closed,
                Ok(0) => return Err(format!("connection {index}: closed after {filled} bytes")),
                Ok(read) => {
                    filled += read;
                    if filled == LEN {
                        Pattern::new(index as u64)
                            .verify(0, &echoed)
                            .map_err(|error| format!("connection {index}: {error}"))?;
                        break Outcome::Served;
                    }
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) if is_closed(&error) && filled == 0 => break Outcome::Closed,
                Err(error) => {
                    return Err(format!(
                        "connection {index} of {}: {}",
                        clients.len(),
                        client::describe(&error)
                    ));
                }
            }
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

fn closed_indexes(outcomes: &[Outcome]) -> Vec<usize> {
    (0..outcomes.len())
        .filter(|&index| outcomes[index] == Outcome::Closed)
        .collect()
}

fn is_closed(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

/// Streams `total` bytes of `pattern` through one connection: a writer thread
/// writes them in `pieces` and half-closes, this thread reads them back in
/// `read_size` reads, checks them, and expects EOF.
fn stream_with_half_close(
    server: &Server,
    pattern: Pattern,
    total: u64,
    pieces: &'static [usize],
    read_size: usize,
) -> Result<(), String> {
    let mut stream = server.connect()?;
    let mut writer_stream = stream.try_clone().map_err(|error| error.to_string())?;
    let writer = spawn("writer", move || {
        write_pattern(&mut writer_stream, pattern, total, pieces)?;
        shutdown_write(&writer_stream)
    });
    let read = read_pattern(&mut stream, pattern, 0..total, read_size)
        .and_then(|()| client::expect_eof(&mut stream));
    if read.is_err() {
        // Unblock the writer so its error (if any) is reported too.
        let _ = stream.shutdown(Shutdown::Both);
    }
    both(read, writer.join())
}

/// Combines a reader's and a writer's results into one.
fn both(read: Result<(), String>, write: Result<(), String>) -> Result<(), String> {
    match (read, write) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(read), Ok(())) => Err(read),
        (Ok(()), Err(write)) => Err(write),
        (Err(read), Err(write)) => Err(format!("{read}\n(and the {write})")),
    }
}
