//! The HTTP checks, one public function each; [`http_suite!`](crate::http_suite)
//! turns each into a `#[test]` of the same name.
//!
//! Each starts the model with `--protocol http --root ROOT`, ROOT a
//! directory made once per test process ([`root`]): an `index.html`, a text
//! file, a large file of [`Pattern`] bytes, and a symlink to a file outside
//! the root. Every check runs under a watchdog, as the echo checks do.

use crate::Model;
use crate::client::{self, Pattern};
use crate::server::{Launch, Server};
use crate::watchdog::{run_check, spawn};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);
/// Size of the large static file.
const LARGE: usize = 32 * 1024 * 1024;
const SECRET: &str = "echolab-secret-outside-the-root";

/// The static root of this test process, made once, and the file outside it.
pub fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        remove_roots_of_finished_processes();
        let base = std::env::temp_dir().join(format!("echolab-http-{}", std::process::id()));
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("docs")).expect("cannot make the static root");
        std::fs::create_dir_all(&outside).expect("cannot make the outside directory");
        std::fs::write(root.join("index.html"), "<h1>echolab</h1>\n").unwrap();
        std::fs::write(root.join("docs/hello.txt"), "hello from the root\n").unwrap();
        std::fs::write(root.join("large.bin"), Pattern::new(99).bytes(0, LARGE)).unwrap();
        std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
        let _ = std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("link.txt"));
        root
    })
}

/// A test process cannot remove its root when it ends (tests have no exit
/// hook), so each removes those of test processes that have ended.
fn remove_roots_of_finished_processes() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("echolab-http-")
            && pid.parse::<u32>().is_ok()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `model` with `--protocol http --root ROOT` (and `extra`) after its own options.
fn http_model(model: &Model, extra: &[&str]) -> Model {
    let root: &'static str = root().to_str().expect("a UTF-8 temp dir");
    let mut args: Vec<&'static str> = model.args.to_vec();
    args.extend(["--protocol", "http", "--root", root]);
    args.extend(extra.iter().map(|arg| &*String::leak((*arg).to_owned())));
    Model {
        args: Vec::leak(args),
        ..*model
    }
}

fn check<F>(model: &Model, name: &str, body: F)
where
    F: FnOnce(&Server) -> Result<(), String> + Send + 'static,
{
    run_check(&http_model(model, &[]), name, LIMIT, Launch::default(), body);
}

/// The model's name as its `Server` header must give it: `echolab-MODEL`.
fn server_name(model: &Model) -> String {
    let binary = std::path::Path::new(model.binary)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("echolab-{}", binary.trim_start_matches("server-"))
}

/// One parsed response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Reads one response: head, then `Content-Length` bytes of body.
pub fn read_response(stream: &mut TcpStream) -> Result<Response, String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => {
                return Err(format!(
                    "the server closed after {} bytes of a response head",
                    head.len()
                ));
            }
            Ok(_) => head.push(byte[0]),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(format!("reading a response head: {}", client::describe(&error))),
        }
        if head.len() > 16 * 1024 {
            return Err("a response head over 16 KiB".into());
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        other => {
            return Err(format!(
                "not an HTTP response head ({other:?}): {:?}",
                String::from_utf8_lossy(&head)
            ));
        }
    }
    let mut response = Response {
        status: parsed.code.unwrap_or(0),
        headers: parsed
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
        body: Vec::new(),
    };
    let length: usize = response
        .header("Content-Length")
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| format!("a response without Content-Length: {response:?}"))?;
    response.body = vec![0u8; length];
    client::read_exactly(stream, &mut response.body)?;
    Ok(response)
}

fn send(stream: &mut TcpStream, request: &[u8]) -> Result<(), String> {
    stream
        .write_all(request)
        .map_err(|error| format!("writing a request: {}", client::describe(&error)))
}

/// Sends `request` on a new connection and reads one response.
fn exchange(server: &Server, request: &[u8]) -> Result<(TcpStream, Response), String> {
    let mut stream = server.connect()?;
    send(&mut stream, request)?;
    let response = read_response(&mut stream)?;
    Ok((stream, response))
}

fn expect_status(response: &Response, status: u16, what: &str) -> Result<(), String> {
    if response.status != status {
        return Err(format!(
            "{what}: status {} where {status} was due; body {:?}",
            response.status,
            String::from_utf8_lossy(&response.body)
        ));
    }
    Ok(())
}

/// The connection ends (EOF or reset) within the client's read timeout.
fn expect_closed(stream: &mut TcpStream, what: &str) -> Result<(), String> {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) if rest.is_empty() => Ok(()),
        Ok(_) => Err(format!(
            "{what}: {} more bytes where the connection should close",
            rest.len()
        )),
        Err(error) if error.kind() == ErrorKind::ConnectionReset => Ok(()),
        Err(error) => Err(format!(
            "{what}: the connection stayed open ({})",
            client::describe(&error)
        )),
    }
}

const PLAINTEXT: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: echolab\r\n\r\n";

/// `GET /plaintext`: 200, `Hello, World!`, every header, the model's name.
pub fn http_plaintext_with_every_header(model: &Model) {
    let name = server_name(model);
    check(model, "http_plaintext_with_every_header", move |server| {
        let (_, response) = exchange(server, PLAINTEXT)?;
        expect_status(&response, 200, "GET /plaintext")?;
        if response.body != b"Hello, World!" {
            return Err(format!(
                "GET /plaintext body {:?}",
                String::from_utf8_lossy(&response.body)
            ));
        }
        let date = response.header("Date").unwrap_or("");
        if httpdate::parse_http_date(date).is_err() {
            return Err(format!("no valid Date header: {response:?}"));
        }
        if response.header("Content-Type") != Some("text/plain") {
            return Err(format!("Content-Type is not text/plain: {response:?}"));
        }
        if response.header("Server") != Some(name.as_str()) {
            return Err(format!("the Server header does not say {name}: {response:?}"));
        }
        Ok(())
    });
}

/// `POST /echo` with 100 KiB: the body comes back byte for byte.
pub fn http_post_echo_returns_the_body(model: &Model) {
    check(model, "http_post_echo_returns_the_body", |server| {
        let body = Pattern::new(17).bytes(0, 100 * 1024);
        let mut stream = server.connect()?;
        let head = format!("POST /echo HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len());
        send(&mut stream, head.as_bytes())?;
        // Written by another thread: the server may echo before it has read all.
        let mut writer = stream.try_clone().map_err(|error| error.to_string())?;
        let sent = body.clone();
        let writer = spawn("writer", move || send(&mut writer, &sent));
        let response = read_response(&mut stream)?;
        writer.join()?;
        expect_status(&response, 200, "POST /echo")?;
        if response.body != body {
            return Err("POST /echo did not return the body byte for byte".into());
        }
        Ok(())
    });
}

/// `GET /` is index.html, `GET /docs/hello.txt` the file, by Content-Type.
pub fn http_static_files(model: &Model) {
    check(model, "http_static_files", |server| {
        let (mut stream, index) = exchange(server, b"GET / HTTP/1.1\r\n\r\n")?;
        expect_status(&index, 200, "GET /")?;
        if index.body != b"<h1>echolab</h1>\n"
            || !index
                .header("Content-Type")
                .unwrap_or("")
                .starts_with("text/html")
        {
            return Err(format!("GET / is not index.html: {index:?}"));
        }
        send(&mut stream, b"GET /docs/hello.txt HTTP/1.1\r\n\r\n")?;
        let text = read_response(&mut stream)?;
        expect_status(&text, 200, "GET /docs/hello.txt")?;
        if text.body != b"hello from the root\n"
            || !text
                .header("Content-Type")
                .unwrap_or("")
                .starts_with("text/plain")
        {
            return Err(format!("GET /docs/hello.txt: {text:?}"));
        }
        Ok(())
    });
}

/// A missing file is 404; the connection stays usable.
pub fn http_missing_file_is_404(model: &Model) {
    check(model, "http_missing_file_is_404", |server| {
        let (mut stream, response) = exchange(server, b"GET /no/such/file HTTP/1.1\r\n\r\n")?;
        expect_status(&response, 404, "GET /no/such/file")?;
        send(&mut stream, PLAINTEXT)?;
        expect_status(&read_response(&mut stream)?, 200, "a request after a 404")
    });
}

/// `..`, an encoded `..` and a symlink out of the root: 403 or 404, never the file.
pub fn http_paths_escaping_the_root_are_refused(model: &Model) {
    check(model, "http_paths_escaping_the_root_are_refused", |server| {
        for target in [
            "/../outside/secret.txt",
            "/%2e%2e/outside/secret.txt",
            "/docs/../../outside/secret.txt",
            "/link.txt",
        ] {
            let request = format!("GET {target} HTTP/1.1\r\n\r\n");
            let (_, response) = exchange(server, request.as_bytes())?;
            if !matches!(response.status, 403 | 404)
                || response
                    .body
                    .windows(SECRET.len())
                    .any(|w| w == SECRET.as_bytes())
            {
                return Err(format!(
                    "GET {target} escaped the root: status {}",
                    response.status
                ));
            }
        }
        Ok(())
    });
}

/// 411 (a body without Content-Length), 501 (chunked), 400 (malformed),
/// 431 (a head over 8 KiB, and over 64 headers): each then closes.
pub fn http_errors_then_close(model: &Model) {
    check(model, "http_errors_then_close", |server| {
        let mut long = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 9000));
        long.extend_from_slice(b"\r\n\r\n");
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for index in 0..80 {
            many.extend_from_slice(format!("X-{index}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (b"POST /echo HTTP/1.1\r\n\r\n".to_vec(), 411),
            (
                b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
                501,
            ),
            (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(), 400),
            (b"\x01\x02 not http\r\n\r\n".to_vec(), 400),
            (long, 431),
            (many, 431),
        ];
        for (request, status) in cases {
            let what = format!(
                "{:?}…",
                String::from_utf8_lossy(&request[..request.len().min(30)])
            );
            let (mut stream, response) = exchange(server, &request)?;
            expect_status(&response, status, &what)?;
            expect_closed(&mut stream, &what)?;
        }
        Ok(())
    });
}

/// 200 requests on one connection (keep-alive by default), then
/// `Connection: close` is answered and closes; HTTP/1.0 closes unless it
/// asks for keep-alive.
pub fn http_keep_alive_and_close(model: &Model) {
    check(model, "http_keep_alive_and_close", |server| {
        let mut stream = server.connect()?;
        for index in 0..200 {
            send(&mut stream, PLAINTEXT)?;
            let response = read_response(&mut stream)
                .map_err(|error| format!("request {index} of a keep-alive connection: {error}"))?;
            expect_status(&response, 200, "keep-alive")?;
        }
        send(
            &mut stream,
            b"GET /plaintext HTTP/1.1\r\nConnection: close\r\n\r\n",
        )?;
        expect_status(&read_response(&mut stream)?, 200, "Connection: close")?;
        expect_closed(&mut stream, "after Connection: close")?;

        let (mut old, response) = exchange(server, b"GET /plaintext HTTP/1.0\r\n\r\n")?;
        expect_status(&response, 200, "HTTP/1.0")?;
        expect_closed(&mut old, "after an HTTP/1.0 request")?;

        let (mut kept, response) = exchange(
            server,
            b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        )?;
        expect_status(&response, 200, "HTTP/1.0 keep-alive")?;
        send(
            &mut kept,
            b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        )?;
        expect_status(
            &read_response(&mut kept)?,
            200,
            "a second HTTP/1.0 keep-alive request",
        )
    });
}

/// A request written one byte per write, with pauses: answered once whole.
pub fn http_request_byte_at_a_time(model: &Model) {
    check(model, "http_request_byte_at_a_time", |server| {
        let mut stream = server.connect()?;
        let request = b"POST /echo HTTP/1.1\r\nHost: echolab\r\nContent-Length: 5\r\n\r\nhello";
        for byte in request {
            send(&mut stream, std::slice::from_ref(byte))?;
            thread::sleep(Duration::from_micros(200));
        }
        let response = read_response(&mut stream)?;
        expect_status(&response, 200, "a byte-at-a-time POST /echo")?;
        if response.body != b"hello" {
            return Err(format!(
                "byte-at-a-time body {:?}",
                String::from_utf8_lossy(&response.body)
            ));
        }
        Ok(())
    });
}

/// 16 requests in one write, each a different body: 16 responses in order.
pub fn http_sixteen_pipelined_in_one_write(model: &Model) {
    check(model, "http_sixteen_pipelined_in_one_write", |server| {
        let mut stream = server.connect()?;
        let mut batch = Vec::new();
        for index in 0..16 {
            let body = format!("pipelined request {index}");
            batch.extend_from_slice(
                format!(
                    "POST /echo HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
        send(&mut stream, &batch)?;
        for index in 0..16 {
            let response = read_response(&mut stream)?;
            expect_status(&response, 200, "a pipelined request")?;
            let expected = format!("pipelined request {index}");
            if response.body != expected.as_bytes() {
                return Err(format!(
                    "response {index} of 16 has body {:?}: out of order or mixed",
                    String::from_utf8_lossy(&response.body)
                ));
            }
        }
        Ok(())
    });
}

/// A client asks for the 32 MiB file and reads nothing for a while: the
/// server streams it in chunks, so its memory grows by well under the file;
/// then every byte arrives, as written.
pub fn http_slow_reader_of_a_large_file(model: &Model) {
    check(model, "http_slow_reader_of_a_large_file", |server| {
        const GROWTH_LIMIT_KIB: u64 = 16 * 1024;
        let (mut stream, response) = exchange(server, PLAINTEXT)?;
        expect_status(&response, 200, "GET /plaintext")?;
        let baseline = server.rss_kib()?;
        send(&mut stream, b"GET /large.bin HTTP/1.1\r\n\r\n")?;
        let mut peak = baseline;
        let until = Instant::now() + Duration::from_millis(800);
        while Instant::now() < until {
            thread::sleep(Duration::from_millis(100));
            peak = peak.max(server.rss_kib()?);
        }
        let growth = peak.saturating_sub(baseline);
        if growth > GROWTH_LIMIT_KIB {
            return Err(format!(
                "the server's memory grew by {growth} KiB while a client did not read a {} MiB file: \
                 it should stream the file as the client reads, not load it",
                LARGE >> 20
            ));
        }
        let response = read_response(&mut stream)?;
        expect_status(&response, 200, "GET /large.bin")?;
        if response.body != Pattern::new(99).bytes(0, LARGE) {
            return Err("GET /large.bin: the bytes differ from the file".into());
        }
        Ok(())
    });
}

/// A client resets mid-response (a large file): only that connection ends.
pub fn http_client_reset_mid_response(model: &Model) {
    check(model, "http_client_reset_mid_response", |server| {
        let mut stream = server.connect()?;
        send(&mut stream, b"GET /large.bin HTTP/1.1\r\n\r\n")?;
        let mut some = [0u8; 4096];
        client::read_exactly(&mut stream, &mut some)?;
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .map_err(|error| error.to_string())?;
        let _ = stream.shutdown(Shutdown::Both);
        drop(stream);
        thread::sleep(Duration::from_millis(100));
        let (_, response) = exchange(server, PLAINTEXT)?;
        expect_status(&response, 200, "a request after another client's reset")
    });
}

/// Two requests on either side of a second boundary get different `Date`s
/// (cached per second, not rendered once).
pub fn http_date_changes_across_seconds(model: &Model) {
    check(model, "http_date_changes_across_seconds", |server| {
        let (mut stream, first) = exchange(server, PLAINTEXT)?;
        thread::sleep(Duration::from_millis(1100));
        send(&mut stream, PLAINTEXT)?;
        let second = read_response(&mut stream)?;
        let (first, second) = (first.header("Date"), second.header("Date"));
        if first.is_none() || first == second {
            return Err(format!(
                "Date did not change across 1.1 s: {first:?} then {second:?}"
            ));
        }
        Ok(())
    });
}

/// `--work wait:50000` and 4 clients at once: a model that overlaps waits
/// answers all 4 well within 4 × 50 ms; one that serves a client at a time
/// takes at least 4 × 50 ms.
pub fn waits_overlap_as_the_model_allows(model: &Model) {
    const WAIT: Duration = Duration::from_millis(50);
    const CLIENTS: u32 = 4;
    let one_at_a_time = model.kind.concurrency() < CLIENTS as usize;
    let waiting = http_model(model, &["--work", "wait:50000"]);
    run_check(
        &waiting,
        "waits_overlap_as_the_model_allows",
        LIMIT,
        Launch::default(),
        move |server| {
            let mut streams = (0..CLIENTS)
                .map(|_| server.connect())
                .collect::<Result<Vec<_>, _>>()?;
            // Every connection is accepted (and, for a blocking model, its turn
            // taken) before the clock starts: one warm-up exchange each, but
            // only the first for a one-at-a-time model, whose others wait.
            let warm = if one_at_a_time { 0 } else { streams.len() };
            for stream in &mut streams[..warm] {
                send(stream, PLAINTEXT)?;
                read_response(stream)?;
            }
            let started = Instant::now();
            let workers: Vec<_> = streams
                .into_iter()
                .map(|mut stream| {
                    spawn("client", move || {
                        send(&mut stream, PLAINTEXT)?;
                        read_response(&mut stream).map(drop)?;
                        // Let a one-at-a-time model take the next client.
                        let _ = stream.shutdown(Shutdown::Both);
                        Ok(())
                    })
                })
                .collect();
            for worker in workers {
                worker.join()?;
            }
            let took = started.elapsed();
            let serial = WAIT * CLIENTS;
            if one_at_a_time && took < serial {
                return Err(format!(
                    "{CLIENTS} clients of 50 ms waits took {took:?}: under {serial:?}, for a model that waits one client at a time"
                ));
            }
            if !one_at_a_time && took >= serial {
                return Err(format!(
                    "{CLIENTS} clients of 50 ms waits took {took:?}: the waits did not overlap (serial: {serial:?})"
                ));
            }
            Ok(())
        },
    );
}

/// Generates the HTTP conformance tests for one model variant, as a module
/// named `$name` holding one `#[test]` per check.
///
/// ```text
/// echo_conformance::http_suite!(NAME, env!("CARGO_BIN_EXE_server-MODEL"), [args = [..],] kind = Kind::VARIANT);
/// ```
#[macro_export]
macro_rules! http_suite {
    ($name:ident, $binary:expr, kind = Kind :: $($kind:tt)+) => {
        $crate::http_suite!($name, $binary, args = [], kind = Kind :: $($kind)+);
    };
    (
        $name:ident,
        $binary:expr,
        args = [$($arg:expr),* $(,)?],
        kind = Kind :: $variant:ident $({ $($fields:tt)* })? $(,)?
    ) => {
        mod $name {
            const MODEL: $crate::Model = $crate::Model {
                binary: $binary,
                args: &[$($arg),*],
                kind: $crate::Kind::$variant $({ $($fields)* })?,
            };
            $crate::__http_tests!(
                MODEL;
                http_plaintext_with_every_header,
                http_post_echo_returns_the_body,
                http_static_files,
                http_missing_file_is_404,
                http_paths_escaping_the_root_are_refused,
                http_errors_then_close,
                http_keep_alive_and_close,
                http_request_byte_at_a_time,
                http_sixteen_pipelined_in_one_write,
                http_slow_reader_of_a_large_file,
                http_client_reset_mid_response,
                http_date_changes_across_seconds,
                waits_overlap_as_the_model_allows,
            );
        }
    };
}

/// One `#[test]` per named HTTP check (used by [`http_suite!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __http_tests {
    ($model:ident; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::http::$check(&$model);
            }
        )*
    };
}
