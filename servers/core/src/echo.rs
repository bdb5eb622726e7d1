//! The echo step: every byte read is written back, in order, nothing added.
//!
//! Two forms, one per family of models:
//!
//! - [`echo_blocking`] for models that give each connection a thread (or a
//!   coroutine that looks like one): read, then `write_all`, until EOF. A slow
//!   reader blocks the write, which stops the reads: backpressure for free.
//! - [`Echo`] for models that wait on readiness (busy-poll, `select`, `epoll`)
//!   and must never block. It owns one buffer of [`BUFFER_SIZE`] bytes: the
//!   bytes read but not yet written back (`pending`) and a cursor (`written`).
//!   It stops reading while the buffer is full, so a connection never holds
//!   more than [`BUFFER_SIZE`] unsent bytes.
//!
//! The three edges are handled the same way in both: `Ok(0)` is the peer
//! closing its write side (everything pending is still written back, then the
//! connection closes); a write may be partial (finish it before reading more);
//! `WouldBlock` ends a drain, `Interrupted` retries.

use crate::BUFFER_SIZE;
use std::io::{self, ErrorKind, Read, Write};

/// Echoes a blocking stream until the peer closes its write side; returns the
/// number of bytes echoed. The caller closes the connection afterwards.
pub fn echo_blocking<S: Read + Write>(mut stream: S) -> io::Result<u64> {
    let mut buffer = vec![0u8; BUFFER_SIZE];
    let mut echoed = 0;
    loop {
        let read = match stream.read(&mut buffer) {
            Ok(0) => return Ok(echoed),
            Ok(read) => read,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        stream.write_all(&buffer[..read])?;
        echoed += read as u64;
    }
}

/// How much a readiness model should do per readiness event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// At most one `read`, then write back what can be written: two system
    /// calls per message. Right for level-triggered readiness, which reports
    /// the socket again if bytes are left.
    Once,
    /// Read and write until both would block (or the buffer is full and the
    /// peer is not reading). Required for edge-triggered readiness, which
    /// reports a change only once.
    UntilWouldBlock,
}

/// What a connection waits for after [`Echo::pump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Still open: wait for readability, writability, or both.
    Open { read: bool, write: bool },
    /// The peer closed its write side and everything was echoed: close it.
    Done,
}

/// One connection's echo state for readiness models: pending bytes and cursor.
#[derive(Debug)]
pub struct Echo {
    buffer: Box<[u8]>,
    /// `buffer[written..pending]` has been read and not yet written back.
    written: usize,
    pending: usize,
    peer_closed: bool,
}

impl Default for Echo {
    fn default() -> Self {
        Self::new()
    }
}

impl Echo {
    pub fn new() -> Self {
        Echo {
            buffer: vec![0u8; BUFFER_SIZE].into_boxed_slice(),
            written: 0,
            pending: 0,
            peer_closed: false,
        }
    }

    /// Bytes read from the peer and not yet written back.
    pub fn unsent(&self) -> usize {
        self.pending - self.written
    }

    /// Moves bytes without blocking: writes back what is pending, reads what
    /// has arrived (while the buffer has room), as much as `drain` asks.
    /// An error (reset, broken pipe) ends this connection only.
    pub fn pump<S: Read + Write>(&mut self, stream: &mut S, drain: Drain) -> io::Result<Progress> {
        loop {
            let wrote_all = self.write_pending(stream)?;
            let mut read_some = false;
            if wrote_all && !self.peer_closed && self.pending < self.buffer.len() {
                match stream.read(&mut self.buffer[self.pending..]) {
                    Ok(0) => self.peer_closed = true,
                    Ok(read) => {
                        self.pending += read;
                        read_some = true;
                    }
                    Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                    Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                    Err(error) => return Err(error),
                }
            }
            if read_some {
                // Echo what just arrived right away: most messages are written
                // back in full here, with no second trip through the poller.
                self.write_pending(stream)?;
                if drain == Drain::UntilWouldBlock {
                    continue;
                }
            }
            return Ok(self.progress());
        }
    }

    /// Writes pending bytes until none are left (true) or the socket would
    /// block (false).
    fn write_pending<S: Write>(&mut self, stream: &mut S) -> io::Result<bool> {
        while self.written < self.pending {
            match stream.write(&self.buffer[self.written..self.pending]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(wrote) => self.written += wrote,
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        // All written: the whole buffer is free again.
        self.written = 0;
        self.pending = 0;
        Ok(true)
    }

    fn progress(&self) -> Progress {
        let unsent = self.unsent() > 0;
        if self.peer_closed && !unsent {
            Progress::Done
        } else {
            Progress::Open {
                read: !self.peer_closed && !unsent,
                write: unsent,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let mut echo = Echo::new();
        let progress = echo.pump(&mut sock, Drain::Once).unwrap();
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
        let mut echo = Echo::new();
        let progress = echo.pump(&mut sock, Drain::UntilWouldBlock).unwrap();
        assert_eq!(
            progress,
            Progress::Open {
                read: false,
                write: true
            }
        );
        assert!(echo.unsent() <= BUFFER_SIZE);
        assert_eq!(sock.incoming.len(), data.len() - BUFFER_SIZE);
        // The reader catches up: everything arrives, in order, then Done.
        sock.write_room = usize::MAX;
        while echo.pump(&mut sock, Drain::Once).unwrap() != Progress::Done {}
        assert_eq!(sock.outgoing, data);
    }

    #[test]
    fn half_close_echoes_everything_then_is_done() {
        let data = vec![7u8; 3 * BUFFER_SIZE + 5];
        let mut sock = socket(&data, 1000, usize::MAX);
        let mut echo = Echo::new();
        assert_eq!(
            echo.pump(&mut sock, Drain::UntilWouldBlock).unwrap(),
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
        let error = Echo::new().pump(&mut Reset, Drain::Once).unwrap_err();
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
        assert_eq!(echo_blocking(&mut duplex).unwrap(), data.len() as u64);
        assert_eq!(duplex.1, data);
    }
}
