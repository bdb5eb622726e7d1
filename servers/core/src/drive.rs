//! Driving a [`Step`] over a socket: the two forms, one per family of models.
//!
//! - [`serve_blocking`] for models that give each connection a thread, a
//!   process or a coroutine that looks like one: read, then write everything,
//!   until the step is finished. A slow reader blocks the write, which stops
//!   the reads: backpressure for free. A `wait:` work sleeps with the
//!   model's own sleep (the thread's, or the coroutine's).
//! - [`Session`] for models that wait on readiness (busy-poll, `select`,
//!   `epoll`) and must never block: [`Session::pump`] moves what it can and
//!   says what the connection waits for next ([`Progress`]): readability,
//!   writability, an instant (a `wait:` work: the model keeps a timer, see
//!   [`Timers`]), or nothing more (close it).
//!
//! The three edges are handled the same way in both: `Ok(0)` is the peer
//! closing its write side (everything the step still owes is written, then
//! the connection closes); a write may be partial (finish it before reading
//! more); `WouldBlock` ends a drain, `Interrupted` retries.

use crate::step::Step;
use nix::sys::sendfile::sendfile;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Serves a blocking stream with this process's step until the step is
/// finished (the peer closed, or HTTP said close); returns the bytes
/// written. `sleep` is how this model waits out a `wait:` work. The caller
/// closes the connection afterwards.
pub fn serve_blocking<S: Read + Write>(stream: S, sleep: fn(Duration)) -> io::Result<u64> {
    drive_blocking(stream, sleep, Step::new(), &no_sendfile)
}

/// [`serve_blocking`] on a kernel socket, with static files handed to the
/// kernel: `sendfile(2)` copies them from the page cache to the socket, no
/// read into this process and no buffer for them.
pub fn serve_blocking_sendfile(stream: &TcpStream, sleep: fn(Duration)) -> io::Result<u64> {
    let mut step = Step::new();
    step.send_files_directly();
    drive_blocking(stream, sleep, step, &send_file)
}

/// How a driver sends `count` bytes of a file at its offset: `sendfile(2)`,
/// or nothing (a step that reads its files never asks).
type SendFile<'a, S> = dyn Fn(&S, &File, usize) -> io::Result<usize> + 'a;

fn send_file(stream: &&TcpStream, file: &File, count: usize) -> io::Result<usize> {
    Ok(sendfile(stream, file, None, count)?)
}

fn no_sendfile<S>(_: &S, _: &File, _: usize) -> io::Result<usize> {
    Err(io::Error::other("this driver does not send files itself"))
}

fn drive_blocking<S: Read + Write>(
    mut stream: S,
    sleep: fn(Duration),
    mut step: Step,
    send_file: &SendFile<'_, S>,
) -> io::Result<u64> {
    let mut written = 0;
    loop {
        if let Some(until) = step.held_until() {
            let now = Instant::now();
            if until > now {
                sleep(until - now);
                continue;
            }
        }
        let output = step.output();
        if !output.is_empty() {
            match stream.write(output) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(wrote) => {
                    step.sent(wrote);
                    written += wrote as u64;
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
            continue;
        }
        if let Some((file, count)) = step.file_to_send() {
            match send_file(&stream, file, count) {
                Ok(sent) => {
                    step.file_sent(sent);
                    written += sent as u64;
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
            continue;
        }
        if step.finished() {
            return Ok(written);
        }
        let space = step.input_space();
        if space.is_empty() {
            return Err(io::Error::other("the protocol step neither reads nor writes"));
        }
        match stream.read(space) {
            Ok(read) => step.received(read),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// How much a readiness model should do per readiness event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// At most one `read`, then write back what can be written: two system
    /// calls per message. Right for level-triggered readiness, which reports
    /// the socket again if bytes are left.
    Once,
    /// Read and write until both would block (or the step takes no more
    /// input while the peer is not reading). Required for edge-triggered
    /// readiness, which reports a change only once.
    UntilWouldBlock,
}

/// What a connection waits for after [`Session::pump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Still open: wait for readability, writability, or both.
    Open { read: bool, write: bool },
    /// A `wait:` work holds the next response: neither read nor write, pump
    /// again at `until` (a readiness model must not sleep: it keeps a timer).
    Wait { until: Instant },
    /// The step is finished and everything is written: close it.
    Done,
}

/// One connection's step, driven without blocking.
#[derive(Debug, Default)]
pub struct Session {
    pub step: Step,
}

impl Session {
    /// A session with this process's step.
    pub fn new() -> Session {
        Session { step: Step::new() }
    }

    /// A session whose static files go out with `sendfile(2)`
    /// ([`Session::pump_sendfile`]).
    pub fn with_sendfile() -> Session {
        let mut step = Step::new();
        step.send_files_directly();
        Session { step }
    }

    /// Moves bytes without blocking: writes what the step has to send,
    /// reads what has arrived (while the step takes input), as much as
    /// `drain` asks. An error (reset, broken pipe) ends this connection only.
    pub fn pump<S: Read + Write>(&mut self, stream: &mut S, drain: Drain) -> io::Result<Progress> {
        self.pump_with(stream, drain, &no_sendfile)
    }

    /// [`Session::pump`] for a session made [`Session::with_sendfile`]:
    /// static files go from the page cache to the socket with `sendfile(2)`,
    /// nonblocking too (EAGAIN when the socket buffer is full).
    pub fn pump_sendfile(&mut self, stream: &mut TcpStream, drain: Drain) -> io::Result<Progress> {
        fn send(stream: &TcpStream, file: &File, count: usize) -> io::Result<usize> {
            Ok(sendfile(stream, file, None, count)?)
        }
        self.pump_with(stream, drain, &send)
    }

    fn pump_with<S: Read + Write>(
        &mut self,
        stream: &mut S,
        drain: Drain,
        send_file: &SendFile<'_, S>,
    ) -> io::Result<Progress> {
        loop {
            let wrote_all = self.write_pending(stream, send_file)?;
            let mut read_some = false;
            if wrote_all && self.step.wants_input() {
                match stream.read(self.step.input_space()) {
                    Ok(0) => self.step.received(0),
                    Ok(read) => {
                        self.step.received(read);
                        read_some = true;
                    }
                    Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                    Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                    Err(error) => return Err(error),
                }
            }
            if read_some {
                // Answer what just arrived right away: most messages are
                // written back in full here, with no second trip through
                // the poller.
                self.write_pending(stream, send_file)?;
                if drain == Drain::UntilWouldBlock {
                    continue;
                }
            }
            return Ok(self.progress());
        }
    }

    /// Writes what the step has to send until it has nothing (true) or the
    /// socket would block (false).
    fn write_pending<S: Write>(&mut self, stream: &mut S, send_file: &SendFile<'_, S>) -> io::Result<bool> {
        loop {
            let output = self.step.output();
            if output.is_empty() {
                let Some((file, count)) = self.step.file_to_send() else {
                    return Ok(true);
                };
                match send_file(stream, file, count) {
                    Ok(sent) => self.step.file_sent(sent),
                    Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(false),
                    Err(error) if error.kind() == ErrorKind::Interrupted => {}
                    Err(error) => return Err(error),
                }
                continue;
            }
            match stream.write(output) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(wrote) => self.step.sent(wrote),
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// What the connection waits for now.
    pub fn progress(&self) -> Progress {
        if self.step.finished() {
            Progress::Done
        } else if let Some(until) = self.step.held_until() {
            Progress::Wait { until }
        } else {
            Progress::Open {
                read: self.step.wants_input(),
                write: self.step.wants_write(),
            }
        }
    }
}

/// The timers of a readiness loop: which connection (by token) to pump
/// again at which instant. The earliest one bounds the loop's wait
/// (`select`'s timeout, `epoll`'s timerfd). A binary heap: O(log n) per
/// timer; an entry whose connection has gone, or was pumped since, fires
/// anyway and costs one spurious pump, which is harmless.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Timers {
    /// Pump `token` again at `at`.
    pub fn add(&mut self, at: Instant, token: u64) {
        self.heap.push(Reverse((at, token)));
    }

    /// The earliest instant, if any timer is set.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the tokens whose instant has come, reading the
    /// clock only when a timer is set: a loop with no `wait:` work pays
    /// nothing for the timers on each wake-up.
    pub fn due(&mut self) -> Vec<u64> {
        if self.heap.is_empty() {
            return Vec::new();
        }
        self.expired(Instant::now())
    }

    /// Removes and returns the tokens whose instant is `now` or earlier.
    pub fn expired(&mut self, now: Instant) -> Vec<u64> {
        let mut tokens = Vec::new();
        while let Some(Reverse((at, token))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            tokens.push(token);
        }
        tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BUFFER_SIZE;
    use std::collections::VecDeque;

    /// A fake nonblocking socket: reads come from `incoming` in chunks of at
    /// most `read_chunk`, writes accept at most `write_room` bytes.
    struct FakeSocket {
        incoming: VecDeque<u8>,
        eof: bool,
        read_chunk: usize,
        write_room: usize,
        outgoing: Vec<u8>,
    }

    impl Read for FakeSocket {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.incoming.is_empty() {
                return if self.eof {
                    Ok(0)
                } else {
                    Err(ErrorKind::WouldBlock.into())
                };
            }
            let n = buf.len().min(self.read_chunk).min(self.incoming.len());
            for byte in buf.iter_mut().take(n) {
                *byte = self.incoming.pop_front().unwrap();
            }
            Ok(n)
        }
    }

    impl Write for FakeSocket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.write_room == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.write_room);
            self.write_room -= n;
            self.outgoing.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn socket(data: &[u8], read_chunk: usize, write_room: usize) -> FakeSocket {
        FakeSocket {
            incoming: data.iter().copied().collect(),
            eof: true,
            read_chunk,
            write_room,
            outgoing: Vec::new(),
        }
    }

    #[test]
    fn once_reads_one_chunk_and_writes_it_back() {
        let mut sock = socket(b"hello world", 5, usize::MAX);
        sock.eof = false;
        let mut session = Session::new();
        let progress = session.pump(&mut sock, Drain::Once).unwrap();
        assert_eq!(sock.outgoing, b"hello");
        assert_eq!(
            progress,
            Progress::Open {
                read: true,
                write: false
            }
        );
    }

    #[test]
    fn a_slow_reader_stops_the_reads_at_one_buffer() {
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut sock = socket(&data, usize::MAX, 10);
        let mut session = Session::new();
        let progress = session.pump(&mut sock, Drain::UntilWouldBlock).unwrap();
        assert_eq!(
            progress,
            Progress::Open {
                read: false,
                write: true
            }
        );
        assert_eq!(sock.incoming.len(), data.len() - BUFFER_SIZE);
        // The reader catches up: everything arrives, in order, then Done.
        sock.write_room = usize::MAX;
        while session.pump(&mut sock, Drain::Once).unwrap() != Progress::Done {}
        assert_eq!(sock.outgoing, data);
    }

    #[test]
    fn half_close_echoes_everything_then_is_done() {
        let data = vec![7u8; 3 * BUFFER_SIZE + 5];
        let mut sock = socket(&data, 1000, usize::MAX);
        let mut session = Session::new();
        assert_eq!(
            session.pump(&mut sock, Drain::UntilWouldBlock).unwrap(),
            Progress::Done
        );
        assert_eq!(sock.outgoing, data);
    }

    #[test]
    fn errors_other_than_would_block_end_the_connection() {
        struct Reset;
        impl Read for Reset {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(ErrorKind::ConnectionReset.into())
            }
        }
        impl Write for Reset {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let error = Session::new().pump(&mut Reset, Drain::Once).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConnectionReset);
    }

    #[test]
    fn blocking_echo_copies_until_eof() {
        struct Duplex(io::Cursor<Vec<u8>>, Vec<u8>);
        impl Read for Duplex {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf)
            }
        }
        impl Write for Duplex {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.1.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
        let mut duplex = Duplex(io::Cursor::new(data.clone()), Vec::new());
        assert_eq!(
            serve_blocking(&mut duplex, std::thread::sleep).unwrap(),
            data.len() as u64
        );
        assert_eq!(duplex.1, data);
    }

    #[test]
    fn timers_fire_in_order_and_bound_the_wait() {
        let mut timers = Timers::default();
        assert_eq!(timers.next(), None);
        let now = Instant::now();
        timers.add(now + Duration::from_millis(30), 2);
        timers.add(now + Duration::from_millis(10), 1);
        timers.add(now + Duration::from_secs(60), 3);
        assert_eq!(timers.next(), Some(now + Duration::from_millis(10)));
        assert!(timers.expired(now).is_empty());
        assert_eq!(timers.expired(now + Duration::from_millis(30)), vec![1, 2]);
        assert_eq!(timers.next(), Some(now + Duration::from_secs(60)));
    }
}
