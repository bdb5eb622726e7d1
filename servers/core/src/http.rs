//! The HTTP/1.1 step: the course's web server, sans-I/O.
//!
//! - `GET /plaintext` → `200`, `text/plain`, `Hello, World!`.
//! - `POST /echo` → the request body, byte for byte, streamed as it arrives
//!   (`411` without `Content-Length`, `501` for a chunked body).
//! - `GET /PATH` → the file under `--root` (`/` is `index.html`), Content-Type
//!   by extension, streamed in chunks of [`BUFFER_SIZE`]; `404` when missing,
//!   `403` when the path resolves (`..`, symlinks) outside the root.
//!
//! Every response has `Content-Length`, `Content-Type`, `Server:
//! echolab-MODEL` and a `Date` rendered at most once a second per thread.
//! Keep-alive by default; `Connection: close` is honoured; HTTP/1.0 closes
//! unless it asks for keep-alive. Pipelined requests are answered in order
//! however the bytes are split. A header section over [`MAX_HEAD`] bytes or
//! [`MAX_HEADERS`] headers gets `431`, a malformed request `400`, then the
//! connection closes. Backpressure as the echo: no input is taken while
//! [`BUFFER_SIZE`] bytes or more wait to be sent.
//!
//! Reading a static file is the one thing here that is not pure: it reads
//! the file in chunks (`read`, from the page cache as a rule), which a
//! readiness model does on its loop.

use crate::BUFFER_SIZE;
use crate::service::Service;
use crate::step::{still_held, work_before_response};
use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Largest header section (request line and headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers accepted in one request.
pub const MAX_HEADERS: usize = 64;
/// The body of `GET /plaintext`.
pub const PLAINTEXT: &[u8] = b"Hello, World!";

/// What the bytes after the current request's head are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    None,
    /// Echoed to the output as it arrives; this many bytes to go.
    Echo(u64),
    /// Read and dropped (a body nobody asked for); this many to go.
    Discard(u64),
}

/// One connection's HTTP state.
#[derive(Debug)]
pub struct HttpStep {
    service: &'static Service,
    /// `input[..filled]` was read and not yet parsed.
    input: Box<[u8]>,
    filled: usize,
    /// `output[sent..]` waits to be written.
    output: Vec<u8>,
    sent: usize,
    body: Body,
    /// The static file being sent, and how many bytes of it remain.
    file: Option<(File, u64)>,
    /// Close once the current response is out (`Connection: close`, HTTP/1.0, an error).
    close_after: bool,
    /// No more requests: close once the output is out.
    closing: bool,
    peer_closed: bool,
    held: Option<Instant>,
    /// The driver sends files itself ([`HttpStep::file_to_send`]), with
    /// `sendfile(2)`: the step never reads them.
    files_by_driver: bool,
}

/// The most a driver hands to one `sendfile` call.
pub const SENDFILE_CHUNK: usize = 4 * BUFFER_SIZE;

impl HttpStep {
    pub fn new(service: &'static Service) -> HttpStep {
        HttpStep {
            service,
            input: vec![0u8; BUFFER_SIZE].into_boxed_slice(),
            filled: 0,
            output: Vec::with_capacity(BUFFER_SIZE),
            sent: 0,
            body: Body::None,
            file: None,
            close_after: false,
            closing: false,
            peer_closed: false,
            held: None,
            files_by_driver: false,
        }
    }

    pub(crate) fn send_files_directly(&mut self) {
        self.files_by_driver = true;
    }

    /// The file whose bytes are due now (the head before it is written),
    /// and how many to send at most, for a driver that sends files itself.
    pub(crate) fn file_to_send(&mut self) -> Option<(&File, usize)> {
        if !self.files_by_driver || self.unsent() > 0 || still_held(&mut self.held) {
            return None;
        }
        let (file, left) = self.file.as_ref()?;
        Some((file, (*left).min(SENDFILE_CHUNK as u64) as usize))
    }

    /// The driver sent `sent` bytes of [`HttpStep::file_to_send`]'s file;
    /// 0 means the file ended early, and the connection must end.
    pub(crate) fn file_sent(&mut self, sent: usize) {
        if let Some((_, left)) = &mut self.file {
            *left = left.saturating_sub(sent as u64);
            if *left == 0 || sent == 0 {
                self.file = None;
            }
            if sent == 0 {
                self.closing = true;
                self.close_after = true;
            }
        }
        self.advance();
    }

    fn unsent(&self) -> usize {
        self.output.len() - self.sent
    }

    pub(crate) fn wants_input(&self) -> bool {
        !self.closing
            && !self.peer_closed
            && self.held.is_none()
            && self.unsent() < BUFFER_SIZE
            && self.filled < self.input.len()
    }

    pub(crate) fn wants_write(&self) -> bool {
        self.held.is_none() && (self.unsent() > 0 || self.file.is_some())
    }

    pub(crate) fn held_until(&self) -> Option<Instant> {
        self.held
    }

    pub(crate) fn finished(&self) -> bool {
        self.closing && self.held.is_none() && self.unsent() == 0 && self.file.is_none()
    }

    pub(crate) fn input_space(&mut self) -> &mut [u8] {
        if self.wants_input() {
            &mut self.input[self.filled..]
        } else {
            &mut []
        }
    }

    pub(crate) fn received(&mut self, read: usize) {
        if read == 0 {
            self.peer_closed = true;
        }
        self.filled += read;
        self.advance();
    }

    pub(crate) fn output(&mut self) -> &[u8] {
        if still_held(&mut self.held) {
            return &[];
        }
        if self.unsent() == 0 {
            self.advance();
        }
        &self.output[self.sent..]
    }

    pub(crate) fn sent(&mut self, wrote: usize) {
        self.sent += wrote;
        if self.sent == self.output.len() {
            self.output.clear();
            self.sent = 0;
        } else if self.sent >= BUFFER_SIZE {
            self.output.drain(..self.sent);
            self.sent = 0;
        }
        self.advance();
    }

    /// Answers what the input holds, in order, while the output has room
    /// and no wait holds it.
    fn advance(&mut self) {
        while !still_held(&mut self.held) && self.unsent() < BUFFER_SIZE {
            match self.body {
                Body::Echo(left) | Body::Discard(left) if left > 0 => {
                    let take = (left as usize).min(self.filled);
                    if take == 0 {
                        if self.peer_closed {
                            // The body will never be complete.
                            self.closing = true;
                            self.file = None;
                        }
                        return;
                    }
                    if matches!(self.body, Body::Echo(_)) {
                        self.output.extend_from_slice(&self.input[..take]);
                        self.body = Body::Echo(left - take as u64);
                    } else {
                        self.body = Body::Discard(left - take as u64);
                    }
                    self.consume(take);
                    continue;
                }
                _ => self.body = Body::None,
            }
            if self.files_by_driver && self.file.is_some() {
                return; // The driver sends it.
            }
            let room = BUFFER_SIZE - self.unsent();
            if let Some((file, left)) = &mut self.file {
                let chunk = room.min(*left as usize);
                let start = self.output.len();
                self.output.resize(start + chunk, 0);
                match file.read(&mut self.output[start..]) {
                    Ok(read) if read > 0 => {
                        self.output.truncate(start + read);
                        *left -= read as u64;
                        if *left == 0 {
                            self.file = None;
                        }
                    }
                    // The file shrank or failed: the length promised can
                    // no longer be kept, so the connection ends.
                    _ => {
                        self.output.truncate(start);
                        self.file = None;
                        self.closing = true;
                        self.close_after = true;
                    }
                }
                continue;
            }
            // The previous response is complete.
            if self.close_after {
                self.closing = true;
            }
            if self.closing {
                return;
            }
            if !self.next_request() {
                return;
            }
        }
    }

    /// Parses and answers one request from the input; false when it needs
    /// more bytes or the connection is closing.
    fn next_request(&mut self) -> bool {
        if self.filled == 0 {
            if self.peer_closed {
                self.closing = true;
            }
            return false;
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let head_length = match request.parse(&self.input[..self.filled]) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) => {
                if self.filled > MAX_HEAD {
                    self.fail(431);
                } else if self.peer_closed {
                    self.closing = true;
                }
                return false;
            }
            Err(httparse::Error::TooManyHeaders) => {
                self.fail(431);
                return false;
            }
            Err(_) => {
                self.fail(400);
                return false;
            }
        };
        if head_length > MAX_HEAD {
            self.fail(431);
            return false;
        }
        let head = Head::read(&request);
        self.held = work_before_response(self.service, &self.input[..head_length]);
        self.consume(head_length);
        self.respond(head);
        true
    }

    /// Queues the response to `head`, and what its body needs next.
    fn respond(&mut self, head: Head) {
        let Head {
            method,
            path,
            http10,
            close,
            keep_alive,
            content_length,
            chunked,
        } = head;
        self.close_after = if http10 { !keep_alive } else { close };
        if chunked {
            return self.fail(501);
        }
        let content_length = match content_length {
            Ok(length) => length,
            Err(()) => return self.fail(400),
        };
        match (method.as_str(), path.as_str()) {
            ("POST", "/echo") => {
                let Some(length) = content_length else {
                    return self.fail(411);
                };
                self.head(200, "application/octet-stream", length, http10);
                self.body = Body::Echo(length);
            }
            ("GET", "/plaintext") => {
                self.head(200, "text/plain", PLAINTEXT.len() as u64, http10);
                self.output.extend_from_slice(PLAINTEXT);
            }
            ("GET", _) => match resolve(&self.service.root, &path) {
                Ok((file, length, content_type)) => {
                    self.head(200, content_type, length, http10);
                    if length > 0 {
                        self.file = Some((file, length));
                    }
                }
                Err(status) => self.error(status, http10),
            },
            _ => self.error(405, http10),
        }
        if self.body == Body::None
            && let Some(length) = content_length
        {
            self.body = Body::Discard(length);
        }
    }

    /// An error response with a short text body, keeping the connection.
    fn error(&mut self, status: u16, http10: bool) {
        let body = format!("{}\n", reason(status));
        self.head(status, "text/plain", body.len() as u64, http10);
        self.output.extend_from_slice(body.as_bytes());
    }

    /// An error after which the connection closes: the rest of the input
    /// cannot be trusted to start a request.
    fn fail(&mut self, status: u16) {
        self.close_after = true;
        self.filled = 0;
        self.body = Body::None;
        self.error(status, false);
    }

    /// Queues a response head.
    fn head(&mut self, status: u16, content_type: &str, length: u64, http10: bool) {
        let connection = match (self.close_after, http10) {
            (true, _) => "Connection: close\r\n",
            (false, true) => "Connection: keep-alive\r\n",
            (false, false) => "",
        };
        let output = &mut self.output;
        with_date(|date| {
            let _ = write!(
                output,
                "HTTP/1.1 {status} {}\r\nServer: {}\r\nDate: {date}\r\nContent-Type: {content_type}\r\n\
                 Content-Length: {length}\r\n{connection}\r\n",
                reason(status),
                self.service.server,
            );
        });
    }

    fn consume(&mut self, length: usize) {
        self.input.copy_within(length..self.filled, 0);
        self.filled -= length;
    }
}

/// What the step needs of a parsed request head, owned, so that the input
/// buffer is free again.
struct Head {
    method: String,
    path: String,
    http10: bool,
    /// `Connection: close`.
    close: bool,
    /// `Connection: keep-alive`.
    keep_alive: bool,
    /// `Err`: unreadable or contradictory.
    content_length: Result<Option<u64>, ()>,
    chunked: bool,
}

impl Head {
    fn read(request: &httparse::Request) -> Head {
        let mut head = Head {
            method: request.method.unwrap_or_default().to_owned(),
            path: request.path.unwrap_or_default().to_owned(),
            http10: request.version == Some(0),
            close: false,
            keep_alive: false,
            content_length: Ok(None),
            chunked: false,
        };
        for header in request.headers.iter() {
            let value = std::str::from_utf8(header.value).unwrap_or("").trim();
            if header.name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    head.close |= token.eq_ignore_ascii_case("close");
                    head.keep_alive |= token.eq_ignore_ascii_case("keep-alive");
                }
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked |= !value.eq_ignore_ascii_case("identity");
            } else if header.name.eq_ignore_ascii_case("content-length") {
                let parsed = value
                    .parse::<u64>()
                    .ok()
                    .filter(|_| value.bytes().all(|b| b.is_ascii_digit()));
                head.content_length = match (head.content_length, parsed) {
                    (Ok(None), Some(length)) => Ok(Some(length)),
                    (Ok(Some(seen)), Some(length)) if seen == length => Ok(Some(length)),
                    _ => Err(()),
                };
            }
        }
        head
    }
}

/// The file `target` names under `root` (canonical), its length and Content-Type;
/// `Err(status)` otherwise: 400 for a target that is not a path, 404 for a
/// missing file, 403 for one that resolves outside the root.
pub fn resolve(root: &Path, target: &str) -> Result<(File, u64, &'static str), u16> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return Err(400);
    }
    let decoded = percent_decode(path).ok_or(400u16)?;
    let mut candidate: PathBuf = root.join(decoded.trim_start_matches('/'));
    if decoded.ends_with('/') {
        candidate.push("index.html");
    }
    // Twice at most: a directory is served by its index.html.
    for _ in 0..2 {
        let canonical = std::fs::canonicalize(&candidate).map_err(|_| 404u16)?;
        if !canonical.starts_with(root) {
            return Err(403);
        }
        if canonical.is_dir() {
            candidate = canonical.join("index.html");
            continue;
        }
        let file = File::open(&canonical).map_err(|_| 404u16)?;
        let length = file.metadata().map_err(|_| 404u16)?.len();
        return Ok((file, length, content_type(&canonical)));
    }
    Err(404)
}

/// `%XX` decoded; `None` for a bad escape, invalid UTF-8 or a NUL.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    let decoded = String::from_utf8(decoded).ok()?;
    (!decoded.contains('\0')).then_some(decoded)
}

/// Content-Type by extension.
pub fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match extension.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        _ => "Error",
    }
}

thread_local! {
    /// This thread's `Date` value and the second it was rendered for.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Calls `f` with the current `Date` value, rendered again only when the
/// second changes (a coroutine may move threads, but never in the middle of
/// this call: nothing here yields).
fn with_date(f: impl FnOnce(&str)) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    DATE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != second {
            *cache = (second, httpdate::fmt_http_date(now));
        }
        f(&cache.1);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{Protocol, ServiceArgs, Work};
    use crate::step::Step;

    fn service(root: &Path, work: Work) -> &'static Service {
        let args = ServiceArgs {
            protocol: Protocol::Http,
            root: root.to_owned(),
            work,
        };
        Box::leak(Box::new(Service::new("test", &args).unwrap()))
    }

    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<h1>hi</h1>").unwrap();
        std::fs::create_dir(dir.path().join("docs")).unwrap();
        std::fs::write(dir.path().join("docs/a.css"), "p{}").unwrap();
        dir
    }

    /// Feeds `input` in chunks of `chunk` bytes (then EOF if `eof`),
    /// writing everything out; returns the output and whether the step finished.
    fn run(step: &mut Step, input: &[u8], chunk: usize, eof: bool) -> (String, bool) {
        let mut output = Vec::new();
        let mut rest = input;
        loop {
            loop {
                let out = step.output();
                if out.is_empty() {
                    break;
                }
                output.extend_from_slice(out);
                let wrote = out.len();
                step.sent(wrote);
            }
            if step.finished() {
                break;
            }
            let space = step.input_space();
            if space.is_empty() {
                break;
            }
            if rest.is_empty() {
                if eof {
                    step.received(0);
                    continue;
                }
                break;
            }
            let n = chunk.min(rest.len()).min(space.len());
            space[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            step.received(n);
        }
        (String::from_utf8_lossy(&output).into_owned(), step.finished())
    }

    fn statuses(output: &str) -> Vec<&str> {
        output
            .match_indices("HTTP/1.1 ")
            .map(|(at, _)| &output[at + 9..at + 12])
            .collect()
    }

    #[test]
    fn plaintext_has_every_header_and_keeps_the_connection() {
        let dir = root();
        let mut step = Step::for_service(service(dir.path(), Work::None));
        let (out, finished) = run(
            &mut step,
            b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n",
            1000,
            false,
        );
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        for header in [
            "Server: echolab-test\r\n",
            "Content-Type: text/plain\r\n",
            "Content-Length: 13\r\n",
            "Date: ",
        ] {
            assert!(out.contains(header), "{header} missing in {out}");
        }
        assert!(out.ends_with("\r\n\r\nHello, World!"), "{out}");
        assert!(!finished && step.wants_input());
    }

    #[test]
    fn a_request_split_byte_by_byte_and_sixteen_pipelined_are_answered_in_order() {
        let dir = root();
        let mut step = Step::for_service(service(dir.path(), Work::None));
        let (out, _) = run(
            &mut step,
            b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            1,
            false,
        );
        assert!(
            out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\nhello"),
            "{out}"
        );

        let mut pipelined = Vec::new();
        for index in 0..16 {
            let body = format!("request {index:02}");
            pipelined.extend_from_slice(
                format!(
                    "POST /echo HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
        let (out, _) = run(&mut step, &pipelined, pipelined.len(), false);
        assert_eq!(statuses(&out), vec!["200"; 16]);
        let bodies: Vec<usize> = (0..16)
            .map(|i| out.find(&format!("request {i:02}")).unwrap())
            .collect();
        assert!(
            bodies.windows(2).all(|pair| pair[0] < pair[1]),
            "out of order: {out}"
        );
    }

    #[test]
    fn static_files_and_every_error_status() {
        let dir = root();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "secret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        let service = service(dir.path(), Work::None);
        let cases: &[(&[u8], &str, &str)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", "200", "<h1>hi</h1>"),
            (b"GET /docs/a.css HTTP/1.1\r\n\r\n", "200", "text/css"),
            (b"GET /missing HTTP/1.1\r\n\r\n", "404", "Not Found"),
            (b"GET /../../etc/passwd HTTP/1.1\r\n\r\n", "403", "Forbidden"),
            (
                b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\n\r\n",
                "403",
                "Forbidden",
            ),
            (b"GET /link HTTP/1.1\r\n\r\n", "403", "Forbidden"),
            (b"POST /echo HTTP/1.1\r\n\r\n", "411", "Connection: close"),
            (
                b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                "501",
                "Connection: close",
            ),
            (
                b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
                "400",
                "Connection: close",
            ),
            (b"DELETE /plaintext HTTP/1.1\r\n\r\n", "405", ""),
        ];
        for (request, status, needle) in cases {
            let mut step = Step::for_service(service);
            let (out, _) = run(&mut step, request, 7, false);
            assert_eq!(
                statuses(&out),
                vec![*status],
                "{}: {out}",
                String::from_utf8_lossy(request)
            );
            assert!(out.contains(needle), "{needle} missing: {out}");
            assert!(!out.contains("secret"));
        }
    }

    #[test]
    fn oversized_heads_get_431_and_close() {
        let dir = root();
        let service = service(dir.path(), Work::None);
        let mut long = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        long.extend_from_slice(b"\r\n\r\n");
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for index in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{index}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        for request in [long, many] {
            let mut step = Step::for_service(service);
            let (out, finished) = run(&mut step, &request, 1000, false);
            assert_eq!(statuses(&out), vec!["431"], "{out}");
            assert!(finished);
        }
    }

    #[test]
    fn connection_close_and_http10_close_unless_keep_alive() {
        let dir = root();
        let service = service(dir.path(), Work::None);
        let cases: &[(&[u8], bool)] = &[
            (
                b"GET /plaintext HTTP/1.1\r\nConnection: close\r\n\r\nGET /plaintext HTTP/1.1\r\n\r\n",
                true,
            ),
            (b"GET /plaintext HTTP/1.0\r\n\r\n", true),
            (
                b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                false,
            ),
            (b"GET /plaintext HTTP/1.1\r\n\r\n", false),
        ];
        for (request, closes) in cases {
            let mut step = Step::for_service(service);
            let (out, finished) = run(&mut step, request, 1000, false);
            assert_eq!(statuses(&out).len(), 1, "{out}");
            assert_eq!(finished, *closes, "{out}");
            assert_eq!(out.contains("Connection: close"), *closes, "{out}");
        }
    }

    #[test]
    fn a_pipelining_client_that_does_not_read_is_not_buffered_without_bound() {
        let dir = root();
        std::fs::write(dir.path().join("big.bin"), vec![1u8; 1 << 20]).unwrap();
        let mut step = Step::for_service(service(dir.path(), Work::None));
        // Feed requests for the big file without ever writing the output.
        let request = b"GET /big.bin HTTP/1.1\r\n\r\n";
        let mut fed = 0;
        while !step.input_space().is_empty() && fed < 1000 {
            let space = step.input_space();
            let n = request.len().min(space.len());
            space[..n].copy_from_slice(&request[..n]);
            step.received(n);
            fed += 1;
        }
        assert!(fed < 1000, "the step never stopped taking input");
        assert!(step.output().len() <= 2 * BUFFER_SIZE, "{}", step.output().len());
        // Draining it streams the whole file, a chunk at a time.
        let mut streamed = 0;
        while streamed < (1 << 20) {
            let out = step.output();
            assert!(!out.is_empty() && out.len() <= 2 * BUFFER_SIZE);
            let n = out.len();
            streamed += n;
            step.sent(n);
        }
    }

    #[test]
    fn a_driver_that_sends_files_itself_gets_the_file_not_its_bytes() {
        let dir = root();
        std::fs::write(dir.path().join("big.bin"), vec![2u8; 3 * SENDFILE_CHUNK + 5]).unwrap();
        let mut step = Step::for_service(service(dir.path(), Work::None));
        step.send_files_directly();
        let request = b"GET /big.bin HTTP/1.1\r\n\r\n";
        step.input_space()[..request.len()].copy_from_slice(request);
        step.received(request.len());
        assert!(step.file_to_send().is_none(), "the file before its head");
        let head = step.output().to_vec();
        assert!(head.ends_with(b"\r\n\r\n") && head.len() < 300, "{head:?}");
        step.sent(head.len());
        let mut sent = 0;
        while let Some((_, count)) = step.file_to_send() {
            assert!(count <= SENDFILE_CHUNK);
            assert!(step.output().is_empty());
            sent += count;
            step.file_sent(count);
        }
        assert_eq!(sent, 3 * SENDFILE_CHUNK + 5);
        assert!(step.wants_input() && !step.wants_write());
    }

    #[test]
    fn the_date_is_rendered_once_a_second() {
        let mut first = String::new();
        with_date(|date| first = date.to_owned());
        assert!(first.ends_with(" GMT") && first.len() == 29, "{first}");
        let rendered_for = DATE.with(|cache| cache.borrow().0);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(now - rendered_for <= 1);
    }

    #[test]
    fn a_wait_holds_each_response() {
        let dir = root();
        let mut step = Step::for_service(service(
            dir.path(),
            Work::Wait(std::time::Duration::from_millis(20)),
        ));
        let (out, _) = run(&mut step, b"GET /plaintext HTTP/1.1\r\n\r\n", 1000, false);
        assert!(out.is_empty(), "{out}");
        assert!(step.held_until().is_some());
        std::thread::sleep(std::time::Duration::from_millis(25));
        let (out, _) = run(&mut step, b"", 1000, false);
        assert_eq!(statuses(&out), vec!["200"]);
    }
}
