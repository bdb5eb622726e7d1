//! Churn: connect, echo one message, close, again — the accept path.
//! With HTTP, a connection per request (HTTP/1.0 style: the request says
//! `Connection: close`).
//!
//! Each of the thread's loops keeps one connection cycle going at a time.
//! Latency is connect start to the last echoed byte; the count of completed
//! cycles gives connections per second. Running out of local ports
//! (`EADDRNOTAVAIL`, usually a pile-up of TIME_WAIT sockets) is its own error
//! kind, `addr_unavailable`; against a loopback target the connections come
//! from 64 source addresses (127.0.0.1–64) so that ports run out 64 times
//! later, and the cell measures the server's accept path rather than the
//! client's search for a free port (a plan's `source`, `bench --source-addr`,
//! replaces them with one). A loop whose cycle failed waits [`RETRY`] before
//! the next one, so a refusing server is not hammered in a spin.
//!
//! When the measurement ends no new cycle starts, and the echoes the server
//! has begun are waited for (up to [`MESSAGE_DEADLINE`]): a cycle that got
//! part of its echo and then nothing for longer than [`LOST_AFTER`] lost
//! bytes (`lost`, an error), then or at its deadline. A loop whose cycles
//! never got a byte back is starved.

use super::connect::{connect_from, finish_connect, loopback_source};
use super::recorder::Recorder;
use super::step::{ClientStep, Stands};
use super::{
    CONNECT_DEADLINE, Clock, Failure, HOUSEKEEPING, LOST_AFTER, LoadOutcome, LoadPlan, MESSAGE_DEADLINE,
    ThreadCpu, ThreadShare, count_connect_error,
};
use crate::results::cell::Errors;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Pause after a failed cycle.
const RETRY: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting to start the next cycle at `retry_at`.
    Waiting,
    Connecting,
    Echoing,
}

struct Cycle<Check> {
    state: State,
    stream: Option<TcpStream>,
    stream_id: u64,
    started: u64,
    retry_at: u64,
    written: u64,
    received: u64,
    /// When the cycle's last echoed bytes arrived (ns after start).
    last_byte_at: u64,
    /// The step's state for the answer being received.
    check: Check,
    /// Completed cycles in the measurement.
    completed: u64,
    /// Some cycle of this loop got a byte back (warm-up included).
    served: bool,
}

pub struct Churn<S: ClientStep> {
    step: S,
    addr: SocketAddr,
    /// Every connection's local address, when the plan gives one.
    source: Option<IpAddr>,
    size: u64,
    poll: Poll,
    cycles: Vec<Cycle<S::Check>>,
    next_stream_id: u64,
    errors: Errors,
    recorder: Recorder,
    read_buffer: Vec<u8>,
    write_buffer: Vec<u8>,
    messages: u64,
    /// Completed cycles in the counting phase.
    counted: u64,
    completed_total: u64,
}

impl<S: ClientStep> Churn<S> {
    pub fn new(plan: &LoadPlan, share: ThreadShare, step: S) -> io::Result<Churn<S>> {
        let cycles = (0..share.connections)
            .map(|_| Cycle {
                state: State::Waiting,
                stream: None,
                stream_id: 0,
                started: 0,
                retry_at: 0,
                written: 0,
                received: 0,
                last_byte_at: 0,
                check: S::Check::default(),
                completed: 0,
                served: false,
            })
            .collect();
        Ok(Churn {
            addr: plan.addr,
            source: plan.source,
            size: step.request_len(),
            step,
            poll: Poll::new()?,
            cycles,
            // Stream ids distinct from every other thread's, on every load
            // host (threads ≤ 1024 < 2^12, hosts ≤ MAX_HOSTS = 2^12).
            next_stream_id: (u64::from(plan.host.index) << 52) | ((share.index as u64) << 40),
            errors: Errors::default(),
            recorder: Recorder::with_interval(plan.load.duration, plan.interval),
            read_buffer: vec![0; super::CHUNK],
            write_buffer: vec![0; super::CHUNK],
            messages: 0,
            counted: 0,
            completed_total: 0,
        })
    }

    pub fn run(&mut self, clock: Clock, progress: &AtomicU64) -> io::Result<LoadOutcome> {
        std::thread::sleep(clock.start.saturating_duration_since(std::time::Instant::now()));
        let mut events = Events::with_capacity(1024);
        let mut cpu = ThreadCpu::default();
        let mut next_housekeeping = 0;
        loop {
            let now = clock.now_ns();
            cpu.observe(&clock, now);
            // The load is offered until the counting phase ends, then the
            // served loops' last echoes are waited for.
            let offering = now < clock.count_until;
            if !offering {
                let drain_over = now >= clock.count_until + MESSAGE_DEADLINE.as_nanos() as u64;
                if drain_over || !self.anything_awaited(now) {
                    break;
                }
            }
            if now >= next_housekeeping {
                self.check_deadlines(now);
                progress.store(self.completed_total, Ordering::Relaxed);
                next_housekeeping = now + HOUSEKEEPING.as_nanos() as u64;
            }
            let mut wake_at = next_housekeeping;
            if let Some(&boundary) = [clock.measure_from, clock.measure_until, clock.count_until]
                .iter()
                .find(|&&boundary| now < boundary)
            {
                wake_at = wake_at.min(boundary);
            }
            for index in 0..self.cycles.len() {
                if offering && self.cycles[index].state == State::Waiting {
                    if self.cycles[index].retry_at <= now {
                        self.begin(index, now);
                    }
                    if self.cycles[index].state == State::Waiting {
                        wake_at = wake_at.min(self.cycles[index].retry_at);
                    }
                }
            }
            let timeout = Duration::from_nanos(wake_at.saturating_sub(clock.now_ns()));
            if let Err(error) = self.poll.poll(&mut events, Some(timeout))
                && error.kind() != io::ErrorKind::Interrupted
            {
                return Err(error);
            }
            for event in events.iter() {
                let index = event.token().0;
                match self.cycles[index].state {
                    State::Waiting => {}
                    State::Connecting => {
                        if event.is_writable() || event.is_error() || event.is_write_closed() {
                            self.connected(index, &clock);
                        }
                    }
                    State::Echoing => {
                        if event.is_writable() {
                            self.flush(index, &clock);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.receive(index, &clock);
                        }
                    }
                }
            }
        }
        progress.store(self.completed_total, Ordering::Relaxed);
        Ok(self.finish(cpu, clock.now_ns()))
    }

    /// After the measurement: whether an echo the server has begun is still
    /// worth waiting for (not one silent for longer than [`LOST_AFTER`]).
    fn anything_awaited(&self, now: u64) -> bool {
        self.cycles.iter().any(|cycle| {
            cycle.state == State::Echoing
                && cycle.received > 0
                && Duration::from_nanos(now.saturating_sub(cycle.last_byte_at)) <= LOST_AFTER
        })
    }

    /// Cycle `index`, echoing, given up: lost bytes or a timeout
    /// ([`Failure::of_wait`]).
    fn waited_out(&self, index: usize, now: u64) -> Failure {
        let cycle = &self.cycles[index];
        let since = cycle.started.max(cycle.last_byte_at);
        Failure::of_wait(
            cycle.received,
            self.step.answered_bytes(cycle.received, 0),
            cycle.written,
            Duration::from_nanos(now.saturating_sub(since)),
        )
    }

    /// Starts a new cycle on loop `index`.
    fn begin(&mut self, index: usize, now: u64) {
        let stream_id = self.next_stream_id;
        self.next_stream_id += 1;
        let cycle = &mut self.cycles[index];
        cycle.stream_id = stream_id;
        cycle.started = now;
        cycle.written = 0;
        cycle.received = 0;
        cycle.last_byte_at = 0;
        cycle.check = S::Check::default();
        let source = self.source.or_else(|| loopback_source(self.addr, stream_id));
        match connect_from(self.addr, source) {
            Ok(mut stream) => {
                let registered = self.poll.registry().register(
                    &mut stream,
                    Token(index),
                    Interest::READABLE | Interest::WRITABLE,
                );
                match registered {
                    Ok(()) => {
                        cycle.stream = Some(stream);
                        cycle.state = State::Connecting;
                    }
                    Err(error) => {
                        count_connect_error(&mut self.errors, &error);
                        self.retry_later(index, now);
                    }
                }
            }
            Err(error) => {
                count_connect_error(&mut self.errors, &error);
                self.retry_later(index, now);
            }
        }
    }

    fn connected(&mut self, index: usize, clock: &Clock) {
        let Some(stream) = self.cycles[index].stream.as_ref() else {
            return;
        };
        match finish_connect(stream) {
            Ok(false) => {}
            Ok(true) => {
                self.cycles[index].state = State::Echoing;
                self.flush(index, clock);
            }
            Err(error) => {
                count_connect_error(&mut self.errors, &error);
                self.close(index);
                self.retry_later(index, clock.now_ns());
            }
        }
    }

    fn flush(&mut self, index: usize, clock: &Clock) {
        let cycle = &mut self.cycles[index];
        let Some(stream) = cycle.stream.as_mut() else {
            return;
        };
        let sent = self.step.send(
            stream,
            cycle.stream_id,
            &mut cycle.written,
            self.size,
            &mut self.write_buffer,
        );
        if let Err(error) = sent {
            self.failed(index, Failure::of(&error), clock.now_ns());
        }
    }

    fn receive(&mut self, index: usize, clock: &Clock) {
        loop {
            let cycle = &mut self.cycles[index];
            let Some(stream) = cycle.stream.as_mut() else {
                return;
            };
            match stream.read(&mut self.read_buffer) {
                Ok(0) => {
                    self.failed(index, Failure::Closed, clock.now_ns());
                    return;
                }
                Ok(length) => {
                    let mut answer = None;
                    let at = Stands {
                        stream_id: cycle.stream_id,
                        received: cycle.received,
                        written: cycle.written,
                    };
                    let checked = self.step.check(
                        &mut cycle.check,
                        at,
                        &self.read_buffer[..length],
                        &mut self.errors,
                        |verified| {
                            answer.get_or_insert(verified);
                        },
                    );
                    if let Err(failure) = checked {
                        self.failed(index, failure, clock.now_ns());
                        return;
                    }
                    cycle.received += length as u64;
                    cycle.last_byte_at = clock.now_ns();
                    cycle.served = true;
                    if let Some(verified) = answer {
                        self.complete(index, clock, verified);
                        return;
                    }
                    if length < self.read_buffer.len() {
                        return;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.failed(index, Failure::of(&error), clock.now_ns());
                    return;
                }
            }
        }
    }

    /// The cycle's answer came (`verified`: it passed the step's check,
    /// which counted it otherwise).
    fn complete(&mut self, index: usize, clock: &Clock, verified: bool) {
        let now = clock.now_ns();
        self.completed_total += 1;
        let cycle = &mut self.cycles[index];
        if verified && clock.in_measurement(now) {
            self.recorder
                .record(now.saturating_sub(cycle.started), now - clock.measure_from);
            cycle.completed += 1;
            self.messages += 1;
        } else if verified && clock.in_counting(now) {
            self.counted += 1;
        }
        self.close(index);
        if now < clock.count_until {
            self.begin(index, now);
        } else {
            // Done: not a cycle whose answer is still awaited.
            self.cycles[index].state = State::Waiting;
        }
    }

    fn failed(&mut self, index: usize, failure: Failure, now: u64) {
        failure.count(&mut self.errors);
        self.close(index);
        self.retry_later(index, now);
    }

    fn close(&mut self, index: usize) {
        if let Some(mut stream) = self.cycles[index].stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
    }

    fn retry_later(&mut self, index: usize, now: u64) {
        let cycle = &mut self.cycles[index];
        cycle.state = State::Waiting;
        cycle.retry_at = now + RETRY.as_nanos() as u64;
    }

    fn check_deadlines(&mut self, now: u64) {
        for index in 0..self.cycles.len() {
            let cycle = &self.cycles[index];
            let waited = Duration::from_nanos(now.saturating_sub(cycle.started));
            match cycle.state {
                State::Connecting if waited > CONNECT_DEADLINE => {
                    self.errors.connect += 1;
                    self.close(index);
                    self.retry_later(index, now);
                }
                State::Echoing if waited > MESSAGE_DEADLINE => {
                    let failure = self.waited_out(index, now);
                    self.failed(index, failure, now);
                }
                _ => {}
            }
        }
    }

    /// The thread's outcome, `now` (ns after start) being the end of the
    /// wait for the last echoes.
    fn finish(&mut self, cpu: ThreadCpu, now: u64) -> LoadOutcome {
        for index in 0..self.cycles.len() {
            // An echo the server began and left silent: lost bytes. One it
            // never began at the end of the measurement is not counted.
            let cycle = &self.cycles[index];
            if cycle.state == State::Echoing && cycle.received > 0 {
                self.waited_out(index, now).count(&mut self.errors);
            }
            self.close(index);
        }
        let per_connection: Vec<u64> = self.cycles.iter().map(|cycle| cycle.completed).collect();
        let starved = self
            .cycles
            .iter()
            .filter(|cycle| cycle.completed == 0 && !cycle.served)
            .count() as u32;
        let recorder = std::mem::replace(&mut self.recorder, Recorder::new(1));
        let (histogram, intervals) = recorder.finish();
        let (cpu, wall) = cpu.busy();
        LoadOutcome {
            histogram,
            intervals,
            errors: std::mem::take(&mut self.errors),
            messages: self.messages,
            counted: self.counted,
            per_connection,
            starved,
            scheduled_sends: 0,
            late_sends: 0,
            threads: vec![(cpu, wall)],
            udp: None,
        }
    }
}
