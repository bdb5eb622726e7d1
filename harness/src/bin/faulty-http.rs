//! `faulty-http`: a thread-per-client HTTP/1.1 server with bugs you can
//! switch on, to see the HTTP load count each one as its own error kind:
//!
//! ```text
//! faulty-http --port PORT [--root DIR] [--wrong-byte-every N] [--short-length-every N]
//!             [--status-500-every N] [--swap-every N] [--no-date] [--not-http]
//! harness bench --protocol http --pipeline 2 --server-cmd 'target/release/faulty-http --port {port} --swap-every 10'
//! ```
//!
//! It serves `GET /plaintext` (`Hello, World!`), `POST /echo` (the body
//! back) and `GET /PATH` (a file under `--root`), keep-alive, pipelined
//! requests answered in order; with no option it is correct. The N-th,
//! 2N-th, … response of each connection:
//! - `--wrong-byte-every N`: has one body byte flipped (`http_body`);
//! - `--short-length-every N`: says a `Content-Length` one byte short and
//!   sends the whole body (`http_length`; the framing is lost);
//! - `--status-500-every N`: is a `500` (`http_status`);
//! - `--swap-every N`: goes after the next one (`http_order`, seen with
//!   `POST /echo` and two or more requests in flight);
//!
//! and `--no-date` leaves `Date` out of every response (`http_date`), and
//! `--not-http` answers every request with a line that is not HTTP
//! (`http_parse`). It prints `listening on 127.0.0.1:PORT` when ready and
//! dies on SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::SystemTime;

#[derive(Debug, Default, Clone)]
struct Bugs {
    wrong_byte_every: Option<u64>,
    short_length_every: Option<u64>,
    status_500_every: Option<u64>,
    swap_every: Option<u64>,
    no_date: bool,
    not_http: bool,
    root: Option<PathBuf>,
}

const USAGE: &str = "usage: faulty-http --port PORT [--root DIR] [--wrong-byte-every N] [--short-length-every N] [--status-500-every N] [--swap-every N] [--no-date] [--not-http]";

/// The value of option `name`: a positive whole number.
fn positive(name: &str, value: Option<String>) -> u64 {
    match value.and_then(|value| value.parse::<u64>().ok()) {
        Some(number) if number > 0 => number,
        _ => {
            eprintln!("faulty-http: {name} takes a positive whole number; {USAGE}");
            std::process::exit(2);
        }
    }
}

fn main() {
    let mut port = None;
    let mut bugs = Bugs::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|value| value.parse::<u16>().ok()),
            "--root" => bugs.root = args.next().map(PathBuf::from),
            "--wrong-byte-every" => bugs.wrong_byte_every = Some(positive(&arg, args.next())),
            "--short-length-every" => bugs.short_length_every = Some(positive(&arg, args.next())),
            "--status-500-every" => bugs.status_500_every = Some(positive(&arg, args.next())),
            "--swap-every" => bugs.swap_every = Some(positive(&arg, args.next())),
            "--no-date" => bugs.no_date = true,
            "--not-http" => bugs.not_http = true,
            other => {
                eprintln!("faulty-http: unknown option '{other}'; {USAGE}");
                std::process::exit(2);
            }
        }
    }
    let Some(port) = port else {
        eprintln!("faulty-http: give --port PORT");
        std::process::exit(2);
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("faulty-http: cannot listen on port {port}: {error}");
            std::process::exit(1);
        }
    };
    println!("listening on {}", listener.local_addr().expect("bound"));
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let bugs = bugs.clone();
                if let Err(error) = std::thread::Builder::new().spawn(move || serve(stream, &bugs)) {
                    eprintln!("faulty-http: cannot start a thread: {error}");
                }
            }
            Err(error) => {
                eprintln!("faulty-http: accept: {error}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}

/// Whether response `index` (from 1) is due for a bug that strikes every `every`.
fn due(every: Option<u64>, index: u64) -> bool {
    every.is_some_and(|every| index.is_multiple_of(every))
}

/// Serves one connection until the client closes it or a request is malformed.
fn serve(mut stream: TcpStream, bugs: &Bugs) {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut answered = 0u64;
    // A response held back to go after the next one (`--swap-every`).
    let mut held: Option<Vec<u8>> = None;
    loop {
        let count = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(count) => count,
        };
        buffer.extend_from_slice(&chunk[..count]);
        let mut out = Vec::new();
        let mut close = false;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            let head = match request.parse(&buffer) {
                Ok(httparse::Status::Complete(head)) => head,
                Ok(httparse::Status::Partial) => break,
                Err(_) => return,
            };
            let length = request
                .headers
                .iter()
                .find(|header| header.name.eq_ignore_ascii_case("content-length"))
                .and_then(|header| {
                    std::str::from_utf8(header.value)
                        .ok()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
                .unwrap_or(0);
            if buffer.len() < head + length {
                break;
            }
            close |= request.headers.iter().any(|header| {
                header.name.eq_ignore_ascii_case("connection") && header.value.eq_ignore_ascii_case(b"close")
            });
            let (status, body) = answer(
                request.method.unwrap_or(""),
                request.path.unwrap_or(""),
                &buffer[head..head + length],
                bugs,
            );
            buffer.drain(..head + length);
            answered += 1;
            let response = render(status, body, answered, bugs);
            if due(bugs.swap_every, answered) && held.is_none() {
                held = Some(response);
                continue;
            }
            out.extend_from_slice(&response);
            if let Some(held) = held.take() {
                out.extend_from_slice(&held);
            }
        }
        if stream.write_all(&out).is_err() || close {
            return;
        }
    }
}

/// The status and body that answer a request.
fn answer(method: &str, path: &str, body: &[u8], bugs: &Bugs) -> (u16, Vec<u8>) {
    match (method, path) {
        ("GET", "/plaintext") => (200, b"Hello, World!".to_vec()),
        ("POST", "/echo") => (200, body.to_vec()),
        ("GET", path) => {
            let relative = path.trim_start_matches('/');
            let file = bugs.root.as_ref().and_then(|root| {
                if relative.split('/').any(|part| part == "..") {
                    return None;
                }
                std::fs::read(root.join(relative)).ok()
            });
            match file {
                Some(bytes) => (200, bytes),
                None => (404, b"not found".to_vec()),
            }
        }
        _ => (405, b"method not allowed".to_vec()),
    }
}

/// Response `index` (from 1) of a connection, with the bugs due on it.
fn render(status: u16, mut body: Vec<u8>, index: u64, bugs: &Bugs) -> Vec<u8> {
    if bugs.not_http {
        return b"this is not HTTP\r\n\r\n".to_vec();
    }
    let status = if due(bugs.status_500_every, index) {
        body = b"Internal Server Error".to_vec();
        500
    } else {
        status
    };
    if due(bugs.wrong_byte_every, index) && !body.is_empty() {
        let middle = body.len() / 2;
        body[middle] ^= 0x20;
    }
    let length = if due(bugs.short_length_every, index) {
        body.len().saturating_sub(1)
    } else {
        body.len()
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nServer: faulty-http\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\n"
    );
    if !bugs.no_date {
        head += &format!("Date: {}\r\n", httpdate::fmt_http_date(SystemTime::now()));
    }
    head += "\r\n";
    let mut response = head.into_bytes();
    response.extend_from_slice(&body);
    response
}
