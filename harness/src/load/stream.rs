//! Closed and open loop over long-lived connections.
//!
//! **Closed loop** (ping-pong): every connection sends one message, waits for
//! all of its echo, sends the next. Latency is the round trip. A stalled
//! server stalls the sender too, so a stall shows up as one slow message.
//!
//! **Open loop**: messages are due at a fixed aggregate rate, round-robin over
//! the connections, message `j` of the thread at `start + j / rate`. A message
//! is sent when due whether or not earlier echoes came back (several may be in
//! flight on one connection; when the socket is full, the bytes wait in the
//! payload function, not in memory). Latency is measured from the *intended*
//! send time, so a stalled server is charged for every message it delayed: no
//! coordinated omission. Messages due in the measurement window are measured,
//! and after the window the loop waits (up to [`MESSAGE_DEADLINE`]) for their
//! echoes. A send issued more than [`LATE_SEND`] after its intended time is
//! *late*: the load generator, not the server, fell behind.
//!
//! **Lost bytes and starvation.** When the load ends (after the measurement,
//! or the system-call counting phase that follows it), the closed loop
//! too waits (up to [`MESSAGE_DEADLINE`]) for the echoes in flight on the
//! connections the server has served. A connection the server served (it
//! echoed at least one byte, warm-up included) that then waited longer than
//! [`LOST_AFTER`] for the rest of an echo with no byte arriving lost bytes:
//! an error (`lost`, with the bytes counted), whether that shows at the end
//! or at its message deadline. A connection the server never sent a byte
//! is *starved*: a model that serves some clients and not others.
//!
//! **Pipelining** (`--pipeline N`, closed loop): each connection keeps N
//! requests in flight and sends the next as each answer arrives; latency is
//! from each request's own send time.
//!
//! The loop is generic over the [`ClientStep`] (echo, HTTP): it counts
//! bytes out and answers in; the step makes the bytes and checks them.
//!
//! Per message the thread makes one `write`, one `read` (a short read means
//! the socket is drained, so no extra `read` to see `EAGAIN`) and shares one
//! `epoll_wait` with the other ready connections.

use super::connect::connect_all_from;
use super::recorder::Recorder;
use super::step::{ClientStep, Stands};
use super::timer::Timer;
use super::{
    Clock, Failure, HOUSEKEEPING, LATE_SEND, LOST_AFTER, LoadOutcome, LoadPlan, MESSAGE_DEADLINE, ThreadCpu,
    ThreadShare,
};
use crate::results::cell::{Errors, Shape};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const TIMER: Token = Token(usize::MAX - 1);

/// One long-lived connection and where its byte stream stands.
struct Connection<Check> {
    stream: Option<TcpStream>,
    stream_id: u64,
    /// Bytes the schedule has asked to send so far.
    owed: u64,
    written: u64,
    received: u64,
    /// Answers received (checked or not): the index of the oldest message
    /// still in flight.
    answered: u64,
    /// When the last echoed bytes arrived (ns after start; 0 before any).
    last_byte_at: u64,
    /// Closed loop: when each message in flight was sent (ns after start),
    /// oldest first.
    sent_at: VecDeque<u64>,
    /// Completed messages in the measurement.
    completed: u64,
    /// The step's state for the answer being received.
    check: Check,
    connected: bool,
    failure: Option<Failure>,
    /// Registered for writability: only while bytes wait for socket space,
    /// so that every ACK does not wake the thread.
    wants_writable: bool,
}

/// The connections of one load thread and everything it needs to drive them.
pub struct Streams<S: ClientStep> {
    shape: Shape,
    step: S,
    /// Bytes of one message (request).
    size: u64,
    /// Closed loop: messages in flight per connection.
    pipeline: u64,
    poll: Poll,
    timer: Timer,
    connections: Vec<Connection<S::Check>>,
    idle: Vec<TcpStream>,
    errors: Errors,
    recorder: Recorder,
    read_buffer: Vec<u8>,
    write_buffer: Vec<u8>,
    /// Open loop: nanoseconds between two sends of this thread.
    send_period: f64,
    /// Open loop: nanoseconds after start at which its first send is due.
    send_phase: f64,
    next_send: u64,
    scheduled_sends: u64,
    late_sends: u64,
    messages: u64,
    /// Completed messages in the counting phase.
    counted: u64,
    /// Completed messages, warm-up included (progress display).
    completed_total: u64,
}

impl<S: ClientStep> Streams<S> {
    /// Opens this thread's active and idle connections, to speak `step`.
    pub fn connect(plan: &LoadPlan, share: ThreadShare, step: S) -> io::Result<Streams<S>> {
        let pipeline = u64::from(plan.load.pipeline.max(1));
        let poll = Poll::new()?;
        let mut timer = Timer::new()?;
        poll.registry().register(&mut timer, TIMER, Interest::READABLE)?;
        let (streams, mut errors) = connect_all_from(plan.addr, plan.source, share.connections)?;
        let (idle, idle_errors) = connect_all_from(plan.addr, plan.source, share.idle)?;
        errors.add(&idle_errors);
        let mut connections = Vec::with_capacity(share.connections);
        for (index, stream) in streams.into_iter().enumerate() {
            let connected = stream.is_some();
            let mut connection = Connection {
                stream,
                stream_id: share.first_connection + index as u64,
                owed: 0,
                written: 0,
                received: 0,
                answered: 0,
                last_byte_at: 0,
                sent_at: VecDeque::with_capacity(pipeline as usize),
                completed: 0,
                check: S::Check::default(),
                connected,
                failure: None,
                wants_writable: false,
            };
            if let Some(stream) = connection.stream.as_mut() {
                poll.registry()
                    .register(stream, Token(index), Interest::READABLE)?;
            }
            connections.push(connection);
        }
        Ok(Streams {
            shape: plan.load.shape,
            size: step.request_len(),
            step,
            pipeline,
            poll,
            timer,
            connections,
            idle: idle.into_iter().flatten().collect(),
            errors,
            recorder: Recorder::with_interval(plan.load.duration, plan.interval),
            read_buffer: vec![0; super::CHUNK],
            write_buffer: vec![0; super::CHUNK],
            send_period: if share.rate > 0.0 {
                1e9 / share.rate
            } else {
                f64::INFINITY
            },
            send_phase: share.phase_ns,
            next_send: 0,
            scheduled_sends: 0,
            late_sends: 0,
            messages: 0,
            counted: 0,
            completed_total: 0,
        })
    }

    /// Drives the connections until the measurement ends (open loop: until
    /// the measured messages are echoed or their deadline passes).
    pub fn run(&mut self, clock: Clock, progress: &AtomicU64) -> io::Result<LoadOutcome> {
        let mut events = Events::with_capacity(1024);
        let mut cpu = ThreadCpu::default();
        std::thread::sleep(clock.start.saturating_duration_since(std::time::Instant::now()));
        if self.shape == Shape::Closed {
            for index in 0..self.connections.len() {
                if self.connections[index].stream.is_some() {
                    let now = clock.now_ns();
                    let connection = &mut self.connections[index];
                    connection.owed = self.size * self.pipeline;
                    connection.sent_at.extend((0..self.pipeline).map(|_| now));
                    self.flush(index);
                }
            }
        }
        let mut next_housekeeping = 0;
        let mut timer_armed_for = u64::MAX;
        loop {
            let now = clock.now_ns();
            cpu.observe(&clock, now);
            if now >= next_housekeeping {
                self.check_deadlines(now);
                progress.store(self.completed_total, Ordering::Relaxed);
                next_housekeeping = now + HOUSEKEEPING.as_nanos() as u64;
            }
            if now >= clock.count_until {
                let drained = !self.anything_awaited(now);
                let drain_over = now >= clock.count_until + MESSAGE_DEADLINE.as_nanos() as u64;
                if drained || drain_over {
                    break;
                }
            }
            let mut wake_at = next_housekeeping;
            if let Some(&boundary) = [clock.measure_from, clock.measure_until, clock.count_until]
                .iter()
                .find(|&&boundary| now < boundary)
            {
                wake_at = wake_at.min(boundary);
            }
            if self.shape == Shape::Open {
                self.send_due(&clock, now);
                let due = self.due_time(self.next_send);
                if due < clock.count_until && due != timer_armed_for {
                    self.timer
                        .arm(Duration::from_nanos(due.saturating_sub(clock.now_ns())))?;
                    timer_armed_for = due;
                }
            }
            let timeout = Duration::from_nanos(wake_at.saturating_sub(now));
            if let Err(error) = self.poll.poll(&mut events, Some(timeout))
                && error.kind() != io::ErrorKind::Interrupted
            {
                return Err(error);
            }
            for event in events.iter() {
                let token = event.token();
                if token == TIMER {
                    self.timer.acknowledge();
                    timer_armed_for = u64::MAX;
                    continue;
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.receive(token.0, &clock);
                }
                if event.is_writable() {
                    self.flush(token.0);
                }
            }
        }
        progress.store(self.completed_total, Ordering::Relaxed);
        Ok(self.finish(cpu, clock.now_ns()))
    }

    /// Open loop: nanoseconds after start at which send `sequence` is due.
    #[inline]
    fn due_time(&self, sequence: u64) -> u64 {
        due_time(self.send_phase, self.send_period, sequence)
    }

    /// Open loop: issues every send that is due by `now` and falls before
    /// the end of the load (the measurement, or the counting phase after it).
    fn send_due(&mut self, clock: &Clock, now: u64) {
        let count = self.connections.len() as u64;
        loop {
            let due = self.due_time(self.next_send);
            if due > now || due >= clock.count_until {
                return;
            }
            let index = (self.next_send % count) as usize;
            self.next_send += 1;
            if self.connections[index].stream.is_none() {
                continue;
            }
            if clock.in_measurement(due) {
                self.scheduled_sends += 1;
                if now - due > LATE_SEND.as_nanos() as u64 {
                    self.late_sends += 1;
                }
            }
            self.connections[index].owed += self.size;
            self.flush(index);
        }
    }

    /// After the measurement: whether an echo is still worth waiting for.
    /// Not one that lost bytes (served, then silent for [`LOST_AFTER`]); in
    /// the closed loop, not one the server never served either (its message
    /// is no measured message's latency, and its waiting is starvation).
    fn anything_awaited(&self, now: u64) -> bool {
        (0..self.connections.len()).any(|index| {
            let connection = &self.connections[index];
            let served = connection.received > 0;
            connection.stream.is_some()
                && self.awaits(connection)
                && (served || self.shape == Shape::Open)
                && !(served && self.silent_for(index, now) > LOST_AFTER)
        })
    }

    /// Whether a connection has messages in flight.
    #[inline]
    fn awaits(&self, connection: &Connection<S::Check>) -> bool {
        connection.answered * self.size < connection.owed
    }

    /// When the oldest message in flight on connection `index` was sent
    /// (open loop: was due).
    fn oldest_sent(&self, index: usize) -> u64 {
        let connection = &self.connections[index];
        match self.shape {
            Shape::Open => self.due_time(connection.answered * self.connections.len() as u64 + index as u64),
            _ => connection.sent_at.front().copied().unwrap_or(0),
        }
    }

    /// How long connection `index`, waiting for an echo, has had no byte of
    /// it: since its last bytes arrived, or since its oldest unechoed
    /// message was sent (open loop: was due), whichever is later.
    fn silent_for(&self, index: usize, now: u64) -> Duration {
        let connection = &self.connections[index];
        let started = self.oldest_sent(index);
        Duration::from_nanos(now.saturating_sub(started.max(connection.last_byte_at)))
    }

    /// Connection `index` given up while waiting for an echo: lost bytes
    /// or a timeout ([`Failure::of_wait`]).
    fn waited_out(&self, index: usize, now: u64) -> Failure {
        let connection = &self.connections[index];
        Failure::of_wait(
            connection.received,
            self.step.answered_bytes(connection.received, connection.answered),
            connection.written,
            self.silent_for(index, now),
        )
    }

    /// Writes what the schedule owes on connection `index`, until done or
    /// the socket is full (a writable event resumes it).
    fn flush(&mut self, index: usize) {
        let connection = &mut self.connections[index];
        let Some(stream) = connection.stream.as_mut() else {
            return;
        };
        let blocked = match self.step.send(
            stream,
            connection.stream_id,
            &mut connection.written,
            connection.owed,
            &mut self.write_buffer,
        ) {
            Ok(all_written) => !all_written,
            Err(error) => {
                self.fail(index, Failure::of(&error));
                return;
            }
        };
        if blocked != connection.wants_writable {
            let interest = if blocked {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            match self.poll.registry().reregister(stream, Token(index), interest) {
                Ok(()) => connection.wants_writable = blocked,
                Err(error) => self.fail(index, Failure::of(&error)),
            }
        }
    }

    /// Reads and verifies what connection `index` has echoed.
    fn receive(&mut self, index: usize, clock: &Clock) {
        loop {
            let Some(stream) = self.connections[index].stream.as_mut() else {
                return;
            };
            match stream.read(&mut self.read_buffer) {
                Ok(0) => {
                    self.fail(index, Failure::Closed);
                    return;
                }
                Ok(length) => {
                    let now = clock.now_ns();
                    if !self.take(index, length, clock, now) {
                        return;
                    }
                    if length < self.read_buffer.len() {
                        return; // drained: the next byte brings a new edge
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.fail(index, Failure::of(&error));
                    return;
                }
            }
        }
    }

    /// Checks `length` bytes just read into the read buffer and completes
    /// the messages they answer. False when the connection was given up.
    #[inline]
    fn take(&mut self, index: usize, length: usize, clock: &Clock, now: u64) -> bool {
        let count = self.connections.len() as u64;
        let Streams {
            shape,
            step,
            size,
            connections,
            errors,
            recorder,
            read_buffer,
            send_phase,
            send_period,
            messages,
            counted,
            completed_total,
            ..
        } = self;
        let (shape, size, send_phase, send_period) = (*shape, *size, *send_phase, *send_period);
        let connection = &mut connections[index];
        connection.last_byte_at = now;
        let mut send_next = false;
        let at = Stands {
            stream_id: connection.stream_id,
            received: connection.received,
            written: connection.written,
        };
        let checked = step.check(
            &mut connection.check,
            at,
            &read_buffer[..length],
            errors,
            |verified| {
                let message = connection.answered;
                connection.answered += 1;
                *completed_total += 1;
                let sent_at = connection.sent_at.pop_front();
                if verified {
                    let (started, phase_time) = match shape {
                        Shape::Open => {
                            let due = due_time(send_phase, send_period, message * count + index as u64);
                            (due, due)
                        }
                        _ => (sent_at.unwrap_or(now), now),
                    };
                    if clock.in_counting(phase_time) {
                        *counted += 1;
                    }
                    if clock.in_measurement(phase_time) {
                        recorder.record(
                            now.saturating_sub(started),
                            now.saturating_sub(clock.measure_from),
                        );
                        connection.completed += 1;
                        *messages += 1;
                    }
                }
                if shape == Shape::Closed && now < clock.count_until {
                    connection.owed += size;
                    connection.sent_at.push_back(now);
                    send_next = true;
                }
            },
        );
        if let Err(failure) = checked {
            self.fail(index, failure);
            return false;
        }
        connection.received += length as u64;
        if send_next {
            self.flush(index);
        }
        true
    }

    /// Gives up connections whose oldest message has waited too long.
    fn check_deadlines(&mut self, now: u64) {
        let deadline = MESSAGE_DEADLINE.as_nanos() as u64;
        for index in 0..self.connections.len() {
            let connection = &self.connections[index];
            if connection.stream.is_none() || !self.awaits(connection) {
                continue;
            }
            let started = self.oldest_sent(index);
            if now.saturating_sub(started) > deadline {
                let failure = self.waited_out(index, now);
                self.fail(index, failure);
            }
        }
    }

    fn fail(&mut self, index: usize, failure: Failure) {
        let connection = &mut self.connections[index];
        if let Some(mut stream) = connection.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
            connection.failure = Some(failure);
        }
    }

    /// The thread's outcome, `now` (ns after start) being the end of the
    /// wait for the last echoes.
    fn finish(&mut self, cpu: ThreadCpu, now: u64) -> LoadOutcome {
        let mut errors = std::mem::take(&mut self.errors);
        let mut per_connection = Vec::with_capacity(self.connections.len());
        let mut starved = 0;
        for index in 0..self.connections.len() {
            let connection = &self.connections[index];
            if !connection.connected {
                continue;
            }
            per_connection.push(connection.completed);
            let served = connection.received > 0;
            match connection.failure {
                // A connection the server never sent a byte is starved; its
                // unanswered message is not counted again.
                None | Some(Failure::Timeout) if !served => starved += 1,
                Some(failure) => failure.count(&mut errors),
                // Served, and still waiting when the wait for the last
                // echoes ended: lost bytes (or a timeout, still trickling).
                None if connection.stream.is_some() && self.awaits(connection) => {
                    self.waited_out(index, now).count(&mut errors);
                }
                None => {}
            }
        }
        for stream in &mut self.idle {
            let mut probe = [0u8; 1];
            match stream.read(&mut probe) {
                Ok(0) => errors.closed += 1,
                Ok(_) => errors.mismatch += 1,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => errors.reset += 1,
            }
        }
        let recorder = std::mem::replace(&mut self.recorder, Recorder::new(1));
        let (histogram, intervals) = recorder.finish();
        let (cpu, wall) = cpu.busy();
        LoadOutcome {
            histogram,
            intervals,
            errors,
            messages: self.messages,
            counted: self.counted,
            per_connection,
            starved,
            scheduled_sends: self.scheduled_sends,
            late_sends: self.late_sends,
            threads: vec![(cpu, wall)],
            udp: None,
        }
    }
}

/// Open loop: nanoseconds after start at which the thread's send `sequence`
/// is due, the first at `phase`, the next ones `period` ns apart. Message `m`
/// of connection `i` is send `m * connections + i` (round-robin).
#[inline]
fn due_time(phase: f64, period: f64, sequence: u64) -> u64 {
    (phase + sequence as f64 * period) as u64
}

/// The outcome of a thread that had nothing to do.
pub fn empty_outcome(plan: &LoadPlan) -> LoadOutcome {
    let mut outcome = LoadOutcome::empty(plan.load.duration.as_secs_f64().ceil() as u64);
    outcome.threads.push((Duration::ZERO, Duration::ZERO));
    outcome
}
