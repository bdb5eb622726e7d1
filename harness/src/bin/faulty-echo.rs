//! `faulty-echo`: a thread-per-client echo server with bugs you can switch
//! on, to see `harness faults` catch them (and for its tests):
//!
//! ```text
//! faulty-echo --port PORT [--leak-on-reset] [--spin-on-emfile] [--buffer-everything]
//!             [--drop-every N] [--stop-one-at BYTES]
//! harness faults --server-cmd 'target/release/faulty-echo --port {port} --leak-on-reset' --faults reset-storm
//! ```
//!
//! - no option: correct, like the `threaded` model;
//! - `--leak-on-reset`: a connection that ends with a reset is never closed
//!   (its descriptor is kept in a list forever);
//! - `--spin-on-emfile`: a failed `accept` is retried at once, so running out
//!   of descriptors spins a core;
//! - `--buffer-everything`: each client's bytes are read as fast as they
//!   come and queued in memory until the client reads them, without bound;
//! - `--drop-every N`: byte N, 2N, 3N, ... of each connection's stream is
//!   read and never echoed (a lost byte: the client waits for it forever);
//! - `--stop-one-at BYTES`: the first connection whose echo passes BYTES
//!   bytes gets exactly BYTES, then nothing more (its bytes are still read);
//!   the other connections are served normally.
//!
//! It prints `listening on 127.0.0.1:PORT` when ready and dies on SIGTERM.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug, Default, Clone, Copy)]
struct Bugs {
    leak_on_reset: bool,
    spin_on_emfile: bool,
    buffer_everything: bool,
    /// Swallow every this-many-th byte of each connection (`--drop-every`).
    drop_every: Option<u64>,
    /// The first connection's echo stops after this many bytes.
    stop_one_at: Option<u64>,
}

const USAGE: &str = "usage: faulty-echo --port PORT [--leak-on-reset] [--spin-on-emfile] [--buffer-everything] [--drop-every N] [--stop-one-at BYTES]";

/// The value of option `name`: a positive whole number.
fn positive(name: &str, value: Option<String>) -> u64 {
    match value.and_then(|value| value.parse::<u64>().ok()) {
        Some(number) if number > 0 => number,
        _ => {
            eprintln!("faulty-echo: {name} takes a positive whole number; {USAGE}");
            std::process::exit(2);
        }
    }
}

/// Connections the leaky server never closes.
static LEAKED: Mutex<Vec<TcpStream>> = Mutex::new(Vec::new());

fn main() {
    let mut port = None;
    let mut bugs = Bugs::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|value| value.parse::<u16>().ok()),
            "--leak-on-reset" => bugs.leak_on_reset = true,
            "--spin-on-emfile" => bugs.spin_on_emfile = true,
            "--buffer-everything" => bugs.buffer_everything = true,
            "--drop-every" => bugs.drop_every = Some(positive(&arg, args.next())),
            "--stop-one-at" => bugs.stop_one_at = Some(positive(&arg, args.next())),
            other => {
                eprintln!("faulty-echo: unknown option '{other}'; {USAGE}");
                std::process::exit(2);
            }
        }
    }
    let Some(port) = port else {
        eprintln!("faulty-echo: give --port PORT");
        std::process::exit(2);
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("faulty-echo: cannot listen on port {port}: {error}");
            std::process::exit(1);
        }
    };
    println!("listening on {}", listener.local_addr().expect("bound"));
    let mut logged = false;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                logged = false;
                let _ = stream.set_nodelay(true);
                let spawned = std::thread::Builder::new().spawn(move || {
                    if bugs.buffer_everything {
                        serve_buffering(stream);
                    } else {
                        serve(stream, bugs);
                    }
                });
                if let Err(error) = spawned {
                    eprintln!("faulty-echo: cannot start a thread: {error}");
                }
            }
            Err(error) => {
                if !logged {
                    eprintln!("faulty-echo: accept: {error}");
                    logged = true;
                }
                if !bugs.spin_on_emfile {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
    }
}

/// Whether a connection's echo has been stopped (`--stop-one-at`).
static STOPPED_ONE: AtomicBool = AtomicBool::new(false);

/// Read, write back, until EOF; with `--drop-every`, without the bytes it
/// swallows; with `--stop-one-at`, the first connection to pass that many
/// echoed bytes stops there.
fn serve(mut stream: TcpStream, bugs: Bugs) {
    let mut buffer = vec![0u8; 16 * 1024];
    let mut kept = Vec::with_capacity(buffer.len());
    let mut offset = 0u64;
    let mut echoed = 0u64;
    let mut stopped = false;
    loop {
        let read = match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(read) => read,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return end(stream, &error, bugs),
        };
        kept.clear();
        for &byte in &buffer[..read] {
            offset += 1;
            if bugs.drop_every.is_none_or(|every| !offset.is_multiple_of(every)) {
                kept.push(byte);
            }
        }
        let mut allowed = kept.len() as u64;
        if let Some(stop) = bugs.stop_one_at
            && echoed + allowed > stop
            && (stopped || !STOPPED_ONE.swap(true, Ordering::SeqCst))
        {
            stopped = true;
            allowed = stop.saturating_sub(echoed);
        }
        let echo = &kept[..allowed as usize];
        echoed += echo.len() as u64;
        if let Err(error) = stream.write_all(echo) {
            return end(stream, &error, bugs);
        }
    }
}

fn end(stream: TcpStream, error: &std::io::Error, bugs: Bugs) {
    let reset = matches!(error.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe);
    if reset && bugs.leak_on_reset {
        LEAKED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(stream);
    }
}

/// A reader that never stops reading and a writer that sends what it can:
/// whatever the client does not read piles up in memory.
fn serve_buffering(stream: TcpStream) {
    let queue = Arc::new((Mutex::new((VecDeque::<u8>::new(), false)), Condvar::new()));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let writer_queue = Arc::clone(&queue);
    let writing = std::thread::spawn(move || {
        let (lock, ready) = &*writer_queue;
        loop {
            let chunk: Vec<u8> = {
                let mut state = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                while state.0.is_empty() && !state.1 {
                    state = ready.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                if state.0.is_empty() {
                    return;
                }
                let take = state.0.len().min(64 * 1024);
                state.0.drain(..take).collect()
            };
            if writer.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut reader = stream;
    let mut buffer = vec![0u8; 64 * 1024];
    let (lock, ready) = &*queue;
    loop {
        match reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                lock.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0
                    .extend(&buffer[..read]);
                ready.notify_one();
            }
        }
    }
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).1 = true;
    ready.notify_one();
    let _ = writing.join();
    let _ = reader.shutdown(Shutdown::Both);
}
