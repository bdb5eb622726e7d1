//! The HTTP client step: a request per message, and every response parsed
//! in full and checked.
//!
//! A request is `GET /plaintext`, `POST /echo` with a body of the payload
//! function (request `j` of a connection carries bytes `j * B..(j + 1) * B`
//! of its stream, so each echoed body differs from its neighbours'), or
//! `GET /PATH` of a file read once at the start. Requests are HTTP/1.1 and
//! keep-alive; churn's carry `Connection: close` (a connection per request).
//!
//! Each response is parsed as it arrives, however the bytes are split:
//! status line and headers with `httparse` (at most [`MAX_HEADERS`] headers
//! and [`MAX_HEAD`] bytes), then a `Content-Length` body or a chunked one.
//! Checked, in this order, and counted by kind in the cell's errors:
//! - the status is 200 (`http_status`, by code; the body is skipped);
//! - the body is as long as it must be (`http_length`; with
//!   `Content-Length` the connection's framing is lost, so it is given up);
//! - the body is what it must be (`http_body`), or, for `POST /echo`, the
//!   body of another request in flight (`http_order`: answered out of
//!   order; plaintext and static responses are all alike, so their order
//!   cannot be seen);
//! - `Date` is present, parses with `httpdate` and is within [`DATE_SLACK`]
//!   of now, and `Server` is present (`http_date`, `http_server`): errors
//!   from a model, which must also say `Server: echolab-MODEL`; warnings
//!   from a user's server, whose response still counts.
//!
//! Bytes that are not an HTTP/1.x response, or a response to no request,
//! are `http_parse` and end the connection. Only a response that passes
//! every check is an answer that counts as throughput.

use super::step::{ClientStep, Stands};
use super::{Failure, payload};
use crate::protocol::Request;
use crate::results::cell::Errors;
use anyhow::{Context, bail};
use std::io::{self, Write};
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Most headers a response may have.
pub const MAX_HEADERS: usize = 64;
/// Longest response head (status line and headers).
pub const MAX_HEAD: usize = 16 * 1024;
/// How far `Date` may be from the client's clock: a server's date is
/// cached per second (up to 1 s old) and formatted to the second (up to
/// 1 s less), so 2 s.
pub const DATE_SLACK: Duration = Duration::from_secs(2);
/// Longest chunk-size line a chunked body may have.
const MAX_CHUNK_LINE: usize = 1024;
/// Most requests around a response's own whose echoed body is recognised
/// as answered out of order.
const ORDER_WINDOW: u64 = 64;

/// What every response of an HTTP load must be, built once per cell.
#[derive(Debug)]
pub struct HttpLoad {
    /// The request head (and the part of the body that is not the payload).
    keep_alive_head: Vec<u8>,
    close_head: Vec<u8>,
    body: Body,
    /// `Some(model)`: a model, whose `Date` and `Server` faults are errors
    /// and whose `Server` must be `echolab-MODEL`; `None`: a user's server,
    /// whose faults there are warnings.
    pub model: Option<String>,
    /// Requests in flight per connection (the out-of-order window).
    pub pipeline: u32,
    /// What each request asks for (recorded in the cell document).
    pub request: Request,
}

/// The body every 200 response must carry.
#[derive(Debug)]
enum Body {
    /// The same bytes every time (plaintext, a static file).
    Constant(Vec<u8>),
    /// The request's own payload bytes, `size` of them.
    Echo { size: u64 },
}

/// The plaintext body, as TechEmpower's test has it.
pub const PLAINTEXT: &[u8] = b"Hello, World!";

impl HttpLoad {
    /// The load of `request` on `pipeline` requests in flight; a static
    /// file is read from under `root` once, here.
    pub fn new(
        request: &Request,
        root: Option<&Path>,
        model: Option<String>,
        pipeline: u32,
    ) -> anyhow::Result<HttpLoad> {
        let (line, extra, body) = match request {
            Request::Plaintext => (
                "GET /plaintext HTTP/1.1".to_owned(),
                String::new(),
                Body::Constant(PLAINTEXT.to_vec()),
            ),
            Request::Echo(size) => (
                "POST /echo HTTP/1.1".to_owned(),
                format!("Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n"),
                Body::Echo {
                    size: u64::from(*size),
                },
            ),
            Request::Static(path) => {
                let Some(root) = root else {
                    bail!(
                        "--request static:{} needs --root DIR, the server's root",
                        path.display()
                    );
                };
                let bytes = read_under(root, path)?;
                (
                    format!("GET /{} HTTP/1.1", path.display()),
                    String::new(),
                    Body::Constant(bytes),
                )
            }
        };
        let head =
            |connection: &str| format!("{line}\r\nHost: echolab\r\n{extra}{connection}\r\n").into_bytes();
        Ok(HttpLoad {
            keep_alive_head: head(""),
            close_head: head("Connection: close\r\n"),
            body,
            model,
            pipeline: pipeline.max(1),
            request: request.clone(),
        })
    }

    /// The length of every 200 response's body.
    pub fn body_len(&self) -> u64 {
        match &self.body {
            Body::Constant(bytes) => bytes.len() as u64,
            Body::Echo { size } => *size,
        }
    }
}

/// Reads `path` (relative) under `root`, refusing one that leaves it.
fn read_under(root: &Path, path: &Path) -> anyhow::Result<Vec<u8>> {
    let root = root
        .canonicalize()
        .with_context(|| format!("--root {} does not exist", root.display()))?;
    if path.is_absolute()
        || path
            .components()
            .any(|part| !matches!(part, Component::Normal(_)))
    {
        bail!(
            "--request static:{} must be a relative path under --root, without '..'",
            path.display()
        );
    }
    let file = root.join(path).canonicalize().with_context(|| {
        format!(
            "--request static:{}: no such file under {}",
            path.display(),
            root.display()
        )
    })?;
    if !file.starts_with(&root) {
        bail!(
            "--request static:{} leads outside --root {}",
            path.display(),
            root.display()
        );
    }
    std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))
}

/// The HTTP step of one load thread's connections.
#[derive(Debug, Clone)]
pub struct Http {
    load: Arc<HttpLoad>,
    /// Each request's bytes before its payload body.
    close: bool,
    head_len: u64,
    request_len: u64,
}

impl Http {
    pub fn new(load: Arc<HttpLoad>, close: bool) -> Http {
        let head_len = if close {
            load.close_head.len()
        } else {
            load.keep_alive_head.len()
        } as u64;
        let body = match load.body {
            Body::Echo { size } => size,
            Body::Constant(_) => 0,
        };
        Http {
            load,
            close,
            head_len,
            request_len: head_len + body,
        }
    }

    fn head(&self) -> &[u8] {
        if self.close {
            &self.load.close_head
        } else {
            &self.load.keep_alive_head
        }
    }

    /// The bytes of stream `stream_id`'s requests at `offset`.
    fn fill(&self, stream_id: u64, offset: u64, out: &mut [u8]) {
        let head = self.head();
        let body_len = self.request_len - self.head_len;
        let mut position = offset;
        let mut rest = out;
        while !rest.is_empty() {
            let request = position / self.request_len;
            let within = position % self.request_len;
            let taken = if within < self.head_len {
                let take = ((self.head_len - within) as usize).min(rest.len());
                rest[..take].copy_from_slice(&head[within as usize..within as usize + take]);
                take
            } else {
                let take = ((self.request_len - within) as usize).min(rest.len());
                payload::fill(
                    stream_id,
                    request * body_len + (within - self.head_len),
                    &mut rest[..take],
                );
                take
            };
            position += taken as u64;
            rest = &mut rest[taken..];
        }
    }

    /// Whether `bytes`, at `offset` in the body of response `index`, are
    /// what it must be.
    fn body_matches(&self, stream_id: u64, index: u64, offset: u64, bytes: &[u8]) -> bool {
        match &self.load.body {
            Body::Constant(expected) => expected
                .get(offset as usize..offset as usize + bytes.len())
                .is_some_and(|expected| expected == bytes),
            Body::Echo { size } => {
                offset + bytes.len() as u64 <= *size
                    && payload::matches(stream_id, index * size + offset, bytes)
            }
        }
    }

    /// A wrong echoed body that is another request's in flight.
    fn is_other_request(&self, stream_id: u64, index: u64, offset: u64, bytes: &[u8]) -> bool {
        let Body::Echo { size } = self.load.body else {
            return false;
        };
        let window = u64::from(self.load.pipeline).min(ORDER_WINDOW);
        (index.saturating_sub(window)..=index + window)
            .filter(|&other| other != index)
            .any(|other| {
                offset + bytes.len() as u64 <= size
                    && payload::matches(stream_id, other * size + offset, bytes)
            })
    }
}

/// A failed check of one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Status(u16),
    Length,
    Body,
    Order,
    Date,
    Server,
}

impl Fault {
    fn count(self, errors: &mut Errors) {
        match self {
            Fault::Status(code) => *errors.http_status.entry(code).or_default() += 1,
            Fault::Length => errors.http_length += 1,
            Fault::Body => errors.http_body += 1,
            Fault::Order => errors.http_order += 1,
            Fault::Date => errors.http_date += 1,
            Fault::Server => errors.http_server += 1,
        }
    }
}

/// Where the response being received stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a status line and headers.
    #[default]
    Head,
    /// A `Content-Length` body with `remaining` bytes to come.
    Length { remaining: u64 },
    /// A chunked body, before a chunk-size line.
    ChunkSize,
    /// Inside a chunk.
    ChunkData { remaining: u64 },
    /// The CRLF after a chunk.
    ChunkEnd,
    /// After the last chunk: the (empty) trailer section's CRLF.
    Trailer,
}

/// One connection's response parsing state.
#[derive(Debug, Default)]
pub struct HttpCheck {
    /// An unfinished head or chunk-size line, kept across reads.
    pending: Vec<u8>,
    phase: Phase,
    /// Responses completed on this connection: the index of the current one.
    index: u64,
    /// Body bytes of the current response so far.
    offset: u64,
    /// The current response's first failed check of status or body.
    fault: Option<Fault>,
    /// Its `Date` or `Server` fault (counted when nothing worse is).
    header_fault: Option<Fault>,
    /// The last `Date` value seen and when it is, so that the same second's
    /// header is parsed once.
    last_date: Vec<u8>,
    last_date_at: Option<SystemTime>,
}

impl ClientStep for Http {
    type Check = HttpCheck;

    fn request_len(&self) -> u64 {
        self.request_len
    }

    fn answered_bytes(&self, _received: u64, answered: u64) -> u64 {
        answered * self.request_len
    }

    fn send<W: Write>(
        &self,
        socket: &mut W,
        stream_id: u64,
        written: &mut u64,
        end: u64,
        buffer: &mut [u8],
    ) -> io::Result<bool> {
        payload::send_from(socket, written, end, buffer, |offset, chunk| {
            self.fill(stream_id, offset, chunk)
        })
    }

    fn check(
        &self,
        state: &mut HttpCheck,
        at: Stands,
        bytes: &[u8],
        errors: &mut Errors,
        mut answered: impl FnMut(bool),
    ) -> Result<(), Failure> {
        let stream_id = at.stream_id;
        let requests = at.written / self.request_len;
        if state.pending.is_empty() {
            let used = self.process(state, stream_id, requests, bytes, errors, &mut answered)?;
            state.pending.extend_from_slice(&bytes[used..]);
        } else {
            let mut pending = std::mem::take(&mut state.pending);
            pending.extend_from_slice(bytes);
            let used = self.process(state, stream_id, requests, &pending, errors, &mut answered)?;
            pending.drain(..used);
            state.pending = pending;
        }
        Ok(())
    }
}

impl Http {
    /// Parses and checks what it can of `data`; returns the bytes used (the
    /// rest is an unfinished line, kept for the next read).
    fn process(
        &self,
        state: &mut HttpCheck,
        stream_id: u64,
        requests: u64,
        data: &[u8],
        errors: &mut Errors,
        answered: &mut impl FnMut(bool),
    ) -> Result<usize, Failure> {
        let mut at = 0;
        loop {
            let rest = &data[at..];
            match state.phase {
                Phase::Head => {
                    if rest.is_empty() {
                        return Ok(at);
                    }
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut response = httparse::Response::new(&mut headers);
                    match response.parse(rest) {
                        Ok(httparse::Status::Complete(head_len)) => {
                            at += head_len;
                            let code = response.code.unwrap_or(0);
                            if (100..200).contains(&code) {
                                continue; // an interim response: the real one follows
                            }
                            if state.index >= requests {
                                errors.http_parse += 1; // a response to no request
                                return Err(Failure::Protocol);
                            }
                            state.phase = self.begin(state, code, response.headers, errors)?;
                            if state.phase == (Phase::Length { remaining: 0 }) {
                                self.complete(state, errors, answered);
                                state.phase = Phase::Head;
                            }
                        }
                        Ok(httparse::Status::Partial) if rest.len() <= MAX_HEAD => return Ok(at),
                        _ => {
                            errors.http_parse += 1;
                            return Err(Failure::Protocol);
                        }
                    }
                }
                Phase::Length { remaining } | Phase::ChunkData { remaining } => {
                    if rest.is_empty() {
                        return Ok(at);
                    }
                    let take = remaining.min(rest.len() as u64) as usize;
                    self.check_body(state, stream_id, &rest[..take]);
                    at += take;
                    let remaining = remaining - take as u64;
                    state.phase = match state.phase {
                        Phase::Length { .. } if remaining == 0 => {
                            self.complete(state, errors, answered);
                            Phase::Head
                        }
                        Phase::Length { .. } => Phase::Length { remaining },
                        _ if remaining == 0 => Phase::ChunkEnd,
                        _ => Phase::ChunkData { remaining },
                    };
                }
                Phase::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((line, 0))) => {
                        at += line;
                        state.phase = Phase::Trailer;
                    }
                    Ok(httparse::Status::Complete((line, size))) => {
                        at += line;
                        state.phase = Phase::ChunkData { remaining: size };
                    }
                    Ok(httparse::Status::Partial) if rest.len() <= MAX_CHUNK_LINE => return Ok(at),
                    _ => {
                        errors.http_parse += 1;
                        return Err(Failure::Protocol);
                    }
                },
                Phase::ChunkEnd | Phase::Trailer => {
                    if rest.len() < 2 {
                        return Ok(at);
                    }
                    if &rest[..2] != b"\r\n" {
                        errors.http_parse += 1;
                        return Err(Failure::Protocol);
                    }
                    at += 2;
                    if state.phase == Phase::Trailer {
                        if state.fault.is_none() && state.offset != self.load.body_len() {
                            state.fault = Some(Fault::Length);
                        }
                        self.complete(state, errors, answered);
                        state.phase = Phase::Head;
                    } else {
                        state.phase = Phase::ChunkSize;
                    }
                }
            }
        }
    }

    /// Checks a response's status and headers and says how its body is framed.
    fn begin(
        &self,
        state: &mut HttpCheck,
        code: u16,
        headers: &[httparse::Header],
        errors: &mut Errors,
    ) -> Result<Phase, Failure> {
        state.offset = 0;
        state.fault = (code != 200).then_some(Fault::Status(code));
        state.header_fault = None;
        let mut length = None;
        let mut chunked = false;
        let mut date = None;
        let mut server = None;
        for header in headers {
            if header.name.eq_ignore_ascii_case("content-length") {
                let parsed = std::str::from_utf8(header.value)
                    .ok()
                    .and_then(|text| text.trim().parse::<u64>().ok());
                match parsed {
                    Some(value) if length.is_none_or(|seen| seen == value) => length = Some(value),
                    _ => {
                        errors.http_parse += 1;
                        return Err(Failure::Protocol);
                    }
                }
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = header
                    .value
                    .rsplit(|&byte| byte == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if header.name.eq_ignore_ascii_case("date") {
                date = Some(header.value);
            } else if header.name.eq_ignore_ascii_case("server") {
                server = Some(header.value);
            }
        }
        if !date_is_fresh(state, date) {
            state.header_fault = Some(Fault::Date);
        } else if !self.server_is_right(server) {
            state.header_fault = Some(Fault::Server);
        }
        if chunked {
            return Ok(Phase::ChunkSize);
        }
        let Some(length) = length else {
            // A body until the server closes: no way to frame the next one.
            match state.fault.take() {
                Some(status) => status.count(errors),
                None => errors.http_length += 1,
            }
            return Err(Failure::Protocol);
        };
        if code == 200 && length != self.load.body_len() {
            errors.http_length += 1;
            return Err(Failure::Protocol);
        }
        Ok(Phase::Length { remaining: length })
    }

    fn server_is_right(&self, server: Option<&[u8]>) -> bool {
        match (server, &self.load.model) {
            (None, _) => false,
            (Some(value), None) => !value.trim_ascii().is_empty(),
            (Some(value), Some(model)) => value
                .strip_prefix(b"echolab-")
                .is_some_and(|name| name == model.as_bytes()),
        }
    }

    fn check_body(&self, state: &mut HttpCheck, stream_id: u64, bytes: &[u8]) {
        if state.fault.is_none() && !self.body_matches(stream_id, state.index, state.offset, bytes) {
            state.fault = Some(
                if self.is_other_request(stream_id, state.index, state.offset, bytes) {
                    Fault::Order
                } else {
                    Fault::Body
                },
            );
        }
        state.offset += bytes.len() as u64;
    }

    /// The current response is complete: counts its fault, or answers it.
    fn complete(&self, state: &mut HttpCheck, errors: &mut Errors, answered: &mut impl FnMut(bool)) {
        state.index += 1;
        let header_fault = state.header_fault.take();
        let fault = match (state.fault.take(), header_fault) {
            (Some(fault), _) => Some(fault),
            (None, Some(fault)) if self.load.model.is_some() => Some(fault),
            (None, Some(Fault::Date)) => {
                errors.http_date_warnings += 1;
                None
            }
            (None, Some(_)) => {
                errors.http_server_warnings += 1;
                None
            }
            (None, None) => None,
        };
        match fault {
            Some(fault) => {
                fault.count(errors);
                answered(false);
            }
            None => answered(true),
        }
    }
}

/// The HTTP kinds of `errors` and its warnings, for a summary line (empty
/// when there are none): `; http_status 500×3, http_body 2; warnings http_date 9`.
pub fn error_summary(errors: &Errors) -> String {
    let (failures, warnings) = errors.http_kinds();
    let mut text = String::new();
    if !failures.is_empty() {
        text += &format!("; {}", failures.join(", "));
    }
    if !warnings.is_empty() {
        text += &format!("; warnings {}", warnings.join(", "));
    }
    text
}

/// Whether a `Date` header is present, parses and is within [`DATE_SLACK`]
/// of now (a value seen before is not parsed again).
fn date_is_fresh(state: &mut HttpCheck, date: Option<&[u8]>) -> bool {
    let Some(value) = date else {
        return false;
    };
    if value != state.last_date.as_slice() || state.last_date_at.is_none() {
        state.last_date.clear();
        state.last_date.extend_from_slice(value);
        state.last_date_at = std::str::from_utf8(value)
            .ok()
            .and_then(|text| httpdate::parse_http_date(text.trim()).ok());
    }
    let Some(at) = state.last_date_at else {
        return false;
    };
    let now = SystemTime::now();
    let apart = now.duration_since(at).unwrap_or_else(|error| error.duration());
    apart <= DATE_SLACK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(request: Request, model: Option<&str>) -> Arc<HttpLoad> {
        Arc::new(HttpLoad::new(&request, None, model.map(str::to_owned), 4).unwrap())
    }

    fn response(status: &str, body: &[u8], date: bool) -> Vec<u8> {
        let mut text = format!(
            "HTTP/1.1 {status}\r\nServer: echolab-epoll\r\nContent-Length: {}\r\n",
            body.len()
        );
        if date {
            text += &format!("Date: {}\r\n", httpdate::fmt_http_date(SystemTime::now()));
        }
        text += "\r\n";
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    /// Feeds `bytes` to a fresh check in pieces of `piece` bytes, with
    /// `requests` requests sent; returns the answers, the errors and
    /// whether the connection was given up.
    fn feed(step: &Http, requests: u64, bytes: &[u8], piece: usize) -> (Vec<bool>, Errors, bool) {
        let mut state = HttpCheck::default();
        let mut errors = Errors::default();
        let mut answers = Vec::new();
        let written = requests * step.request_len();
        for part in bytes.chunks(piece) {
            let at = Stands {
                stream_id: 9,
                received: 0,
                written,
            };
            if step
                .check(&mut state, at, part, &mut errors, |ok| answers.push(ok))
                .is_err()
            {
                return (answers, errors, true);
            }
        }
        (answers, errors, false)
    }

    #[test]
    fn plaintext_responses_parse_however_the_bytes_are_split() {
        let step = Http::new(load(Request::Plaintext, Some("epoll")), false);
        let mut bytes = Vec::new();
        for _ in 0..3 {
            bytes.extend(response("200 OK", PLAINTEXT, true));
        }
        for piece in [1, 2, 7, 50, bytes.len()] {
            let (answers, errors, given_up) = feed(&step, 3, &bytes, piece);
            assert_eq!(answers, [true, true, true], "pieces of {piece}");
            assert_eq!(errors.total(), 0);
            assert!(!given_up);
        }
    }

    #[test]
    fn each_fault_is_counted_as_its_own_kind() {
        let model = Http::new(load(Request::Plaintext, Some("epoll")), false);
        let (answers, errors, _) = feed(&model, 1, &response("500 Oops", b"no", true), 5);
        assert_eq!((answers, errors.http_status.get(&500)), (vec![false], Some(&1)));
        let (_, errors, given_up) = feed(&model, 1, &response("200 OK", b"Hello, World", true), 5);
        assert_eq!((errors.http_length, given_up), (1, true));
        let (_, errors, _) = feed(&model, 1, &response("200 OK", b"Hello, World?", true), 5);
        assert_eq!(errors.http_body, 1);
        let (answers, errors, _) = feed(&model, 1, &response("200 OK", PLAINTEXT, false), 5);
        assert_eq!((answers, errors.http_date), (vec![false], 1));
        // A 400 without a length, then a close: its status, and the end.
        let (_, errors, given_up) = feed(
            &model,
            1,
            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n",
            5,
        );
        assert_eq!(
            (errors.http_status.get(&400), errors.http_length, given_up),
            (Some(&1), 0, true)
        );
        let (_, errors, given_up) = feed(&model, 1, b"SSH-2.0-OpenSSH\r\n\r\n", 5);
        assert_eq!((errors.http_parse, given_up), (1, true));
        // A response to no request.
        let (_, errors, given_up) = feed(&model, 0, &response("200 OK", PLAINTEXT, true), 5);
        assert_eq!((errors.http_parse, given_up), (1, true));
        // A user's server: a missing Date is a warning, the response counts.
        let user = Http::new(load(Request::Plaintext, None), false);
        let (answers, errors, _) = feed(&user, 1, &response("200 OK", PLAINTEXT, false), 5);
        assert_eq!(
            (answers, errors.total(), errors.http_date_warnings),
            (vec![true], 0, 1)
        );
    }

    #[test]
    fn an_echoed_body_of_another_request_is_out_of_order() {
        let step = Http::new(load(Request::Echo(16), Some("epoll")), false);
        let body = |index: u64| {
            let mut bytes = vec![0u8; 16];
            payload::fill(9, index * 16, &mut bytes);
            bytes
        };
        let mut bytes = Vec::new();
        for index in [0, 2, 1, 3] {
            bytes.extend(response("200 OK", &body(index), true));
        }
        let (answers, errors, _) = feed(&step, 4, &bytes, 3);
        assert_eq!(answers, [true, false, false, true]);
        assert_eq!((errors.http_order, errors.http_body), (2, 0));
        // The request stream carries those bodies after each head.
        let mut sent = vec![0u8; 2 * step.request_len() as usize];
        step.fill(9, 0, &mut sent);
        let head = step.head().len();
        assert_eq!(&sent[head..head + 16], &body(0)[..]);
        assert!(sent[step.request_len() as usize..].starts_with(b"POST /echo HTTP/1.1\r\n"));
    }

    #[test]
    fn a_chunked_body_is_checked_as_the_constant() {
        let step = Http::new(load(Request::Plaintext, None), false);
        let date = httpdate::fmt_http_date(SystemTime::now());
        let good = format!(
            "HTTP/1.1 200 OK\r\nServer: x\r\nDate: {date}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n8\r\n, World!\r\n0\r\n\r\n"
        );
        let (answers, errors, _) = feed(&step, 1, good.as_bytes(), 3);
        assert_eq!((answers, errors.total()), (vec![true], 0));
        let short = good.replace("8\r\n, World!\r\n", "7\r\n, World\r\n");
        let (answers, errors, _) = feed(&step, 1, short.as_bytes(), 3);
        assert_eq!((answers, errors.http_length), (vec![false], 1));
    }
}
