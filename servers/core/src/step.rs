//! The protocol step: what one connection does, written once, sans-I/O.
//!
//! A [`Step`] never touches a socket (the shape of h11, quinn-proto and
//! rustls): the model reads into [`Step::input_space`] and reports it with
//! [`Step::received`]; it writes [`Step::output`] and reports it with
//! [`Step::sent`]. In between the step says what it wishes: more input
//! ([`Step::wants_input`]), to send ([`Step::wants_write`]), to be left alone
//! until an instant ([`Step::held_until`], a `wait:` work), or to be closed
//! ([`Step::finished`]). So one implementation serves every model, and is
//! tested without a network. How the model waits for the socket (a blocking
//! call, readiness, a completion) is the model's lesson, in [`crate::drive`].
//!
//! - `echo` ([`EchoStep`]): one buffer; it takes input only once all it
//!   read is written back, so a model makes the same system calls per
//!   message as a plain read-then-write loop.
//! - `http` ([`crate::http::HttpStep`]): HTTP/1.1 with keep-alive.

use crate::BUFFER_SIZE;
use crate::http::HttpStep;
use crate::service::{self, Service, Work};
use std::time::Instant;

/// One connection's protocol state.
#[derive(Debug)]
pub enum Step {
    Echo(EchoStep),
    Http(Box<HttpStep>),
}

impl Default for Step {
    fn default() -> Self {
        Step::new()
    }
}

impl Step {
    /// The step of this process's protocol ([`service::current`]).
    pub fn new() -> Step {
        Step::for_service(service::current())
    }

    /// The step of `service`'s protocol.
    pub fn for_service(service: &'static Service) -> Step {
        match service.protocol {
            service::Protocol::Echo => Step::Echo(EchoStep::new(service)),
            service::Protocol::Http => Step::Http(Box::new(HttpStep::new(service))),
        }
    }

    /// Where the next read should land; empty when the step takes no input now.
    pub fn input_space(&mut self) -> &mut [u8] {
        match self {
            Step::Echo(step) => step.input_space(),
            Step::Http(step) => step.input_space(),
        }
    }

    /// `read` bytes landed at the start of [`Step::input_space`]; 0 means
    /// the peer closed its write side.
    pub fn received(&mut self, read: usize) {
        match self {
            Step::Echo(step) => step.received(read),
            Step::Http(step) => step.received(read),
        }
    }

    /// Bytes to write now: empty when there are none, or while a wait holds them.
    pub fn output(&mut self) -> &[u8] {
        match self {
            Step::Echo(step) => step.output(),
            Step::Http(step) => step.output(),
        }
    }

    /// `wrote` bytes of [`Step::output`] were written.
    pub fn sent(&mut self, wrote: usize) {
        match self {
            Step::Echo(step) => step.sent(wrote),
            Step::Http(step) => step.sent(wrote),
        }
    }

    /// Lets the driver send static files itself, with `sendfile(2)`:
    /// the step then never reads them ([`Step::file_to_send`]).
    pub fn send_files_directly(&mut self) {
        if let Step::Http(step) = self {
            step.send_files_directly();
        }
    }

    /// With [`Step::send_files_directly`]: the file whose bytes are due now,
    /// and how many to send at most; report them with [`Step::file_sent`].
    pub fn file_to_send(&mut self) -> Option<(&std::fs::File, usize)> {
        match self {
            Step::Echo(_) => None,
            Step::Http(step) => step.file_to_send(),
        }
    }

    /// `sent` bytes of [`Step::file_to_send`]'s file went out (0: it ended early).
    pub fn file_sent(&mut self, sent: usize) {
        if let Step::Http(step) = self {
            step.file_sent(sent);
        }
    }

    /// Whether the step takes input now (a model waits for readability).
    pub fn wants_input(&self) -> bool {
        match self {
            Step::Echo(step) => step.wants_input(),
            Step::Http(step) => step.wants_input(),
        }
    }

    /// Whether the step has bytes to write (a model waits for writability).
    pub fn wants_write(&self) -> bool {
        match self {
            Step::Echo(step) => step.wants_write(),
            Step::Http(step) => step.wants_write(),
        }
    }

    /// The instant a `wait:` work ends, while it holds the next response.
    pub fn held_until(&self) -> Option<Instant> {
        match self {
            Step::Echo(step) => step.held,
            Step::Http(step) => step.held_until(),
        }
    }

    /// Nothing more to read or write: close the connection.
    pub fn finished(&self) -> bool {
        match self {
            Step::Echo(step) => step.peer_closed && step.unsent() == 0,
            Step::Http(step) => step.finished(),
        }
    }
}

/// Starts the work of `service` before a response: computes now (`cpu:`),
/// or returns the instant the response may go (`wait:`).
pub(crate) fn work_before_response(service: &Service, request: &[u8]) -> Option<Instant> {
    match service.work {
        Work::None => None,
        Work::Cpu(_) => {
            service.compute(request);
            None
        }
        Work::Wait(duration) => Some(Instant::now() + duration),
    }
}

/// Clears a hold whose instant has passed; true while it still holds.
pub(crate) fn still_held(held: &mut Option<Instant>) -> bool {
    match *held {
        Some(until) if Instant::now() < until => true,
        Some(_) => {
            *held = None;
            false
        }
        None => false,
    }
}

/// The echo: every byte read is written back, in order, nothing added. One
/// buffer of [`BUFFER_SIZE`] bytes: `buffer[written..pending]` was read and
/// is not yet written back. It takes input only when all is written back,
/// so a connection never holds more than one buffer unsent.
#[derive(Debug)]
pub struct EchoStep {
    service: &'static Service,
    buffer: Box<[u8]>,
    written: usize,
    pending: usize,
    peer_closed: bool,
    held: Option<Instant>,
}

impl EchoStep {
    pub fn new(service: &'static Service) -> EchoStep {
        EchoStep {
            service,
            buffer: vec![0u8; BUFFER_SIZE].into_boxed_slice(),
            written: 0,
            pending: 0,
            peer_closed: false,
            held: None,
        }
    }

    /// Bytes read and not yet written back.
    pub fn unsent(&self) -> usize {
        self.pending - self.written
    }

    fn wants_input(&self) -> bool {
        !self.peer_closed && self.unsent() == 0 && self.held.is_none()
    }

    fn wants_write(&self) -> bool {
        self.unsent() > 0 && self.held.is_none()
    }

    fn input_space(&mut self) -> &mut [u8] {
        if self.wants_input() {
            &mut self.buffer[..]
        } else {
            &mut []
        }
    }

    fn received(&mut self, read: usize) {
        if read == 0 {
            self.peer_closed = true;
            return;
        }
        self.pending = read;
        self.held = work_before_response(self.service, &self.buffer[..read]);
    }

    fn output(&mut self) -> &[u8] {
        if still_held(&mut self.held) {
            return &[];
        }
        &self.buffer[self.written..self.pending]
    }

    fn sent(&mut self, wrote: usize) {
        self.written += wrote;
        if self.written == self.pending {
            // All written: the whole buffer is free again.
            self.written = 0;
            self.pending = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ServiceArgs;
    use std::time::Duration;

    fn service(work: Work) -> &'static Service {
        let args = ServiceArgs {
            work,
            ..ServiceArgs::default()
        };
        Box::leak(Box::new(Service::new("test", &args).unwrap()))
    }

    fn feed(step: &mut Step, bytes: &[u8]) {
        let space = step.input_space();
        space[..bytes.len()].copy_from_slice(bytes);
        step.received(bytes.len());
    }

    #[test]
    fn echo_gives_back_what_it_read_and_takes_no_more_until_then() {
        let mut step = Step::for_service(service(Work::None));
        assert!(step.wants_input() && !step.wants_write());
        feed(&mut step, b"hello");
        assert!(!step.wants_input() && step.wants_write());
        assert!(step.input_space().is_empty());
        assert_eq!(step.output(), b"hello");
        step.sent(2);
        assert_eq!(step.output(), b"llo");
        step.sent(3);
        assert!(step.wants_input() && !step.wants_write());
        step.received(0);
        assert!(step.finished());
    }

    #[test]
    fn a_wait_holds_the_echo_until_its_instant() {
        let mut step = Step::for_service(service(Work::Wait(Duration::from_millis(30))));
        feed(&mut step, b"x");
        let until = step.held_until().expect("held");
        assert!(until > Instant::now());
        assert!(step.output().is_empty());
        assert!(!step.wants_write() && !step.wants_input());
        std::thread::sleep(until - Instant::now() + Duration::from_millis(1));
        assert_eq!(step.output(), b"x");
        assert_eq!(step.held_until(), None);
    }
}
