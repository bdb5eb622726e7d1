//! Client sockets with deadlines, and the byte pattern every check sends.
//!
//! Every socket made here has read and write timeouts, so a server that stops
//! answering turns into an error naming what was being waited for, never a
//! hang. Every helper returns `Result<_, String>` with a sentence that says
//! where in the stream things went wrong.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// Read and write timeout of every client socket: far more than any healthy
/// model needs on a loaded machine, far less than the check's watchdog.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connect may take (the listen queue can be full for a moment).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `addr` with [`CONNECT_TIMEOUT`], then sets [`IO_TIMEOUT`] for
/// reads and writes and TCP_NODELAY.
pub fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|error| format!("cannot connect to {addr}: {error}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|error| format!("cannot set socket options: {error}"))?;
    Ok(stream)
}

/// A deterministic byte stream, different for every seed and every offset, so
/// that a lost, duplicated or reordered piece never matches what was sent.
#[derive(Debug, Clone, Copy)]
pub struct Pattern {
    seed: u64,
}

impl Pattern {
    pub fn new(seed: u64) -> Self {
        Pattern { seed }
    }

    /// The bytes at `offset..offset + len` of this stream.
    pub fn bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        self.fill(offset, &mut bytes);
        bytes
    }

    /// Fills `buffer` with the bytes at `offset..` of this stream.
    pub fn fill(&self, offset: u64, buffer: &mut [u8]) {
        let mut word = self.word(offset / 8);
        for (index, byte) in (offset..).zip(buffer.iter_mut()) {
            if index % 8 == 0 {
                word = self.word(index / 8);
            }
            *byte = (word >> ((index % 8) * 8)) as u8;
        }
    }

    /// Checks that `received` is the stream's bytes at `offset..`.
    pub fn verify(&self, offset: u64, received: &[u8]) -> Result<(), String> {
        let expected = self.bytes(offset, received.len());
        match expected.iter().zip(received).position(|(e, r)| e != r) {
            None => Ok(()),
            Some(at) => Err(format!(
                "wrong byte at offset {}: expected {:#04x}, got {:#04x}",
                offset + at as u64,
                expected[at],
                received[at]
            )),
        }
    }

    /// splitmix64 of the word index, keyed by the seed.
    fn word(&self, index: u64) -> u64 {
        let mut z = index
            .wrapping_add(self.seed.wrapping_mul(0xD1B5_4A32_D192_ED03))
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Writes `message`, reads as many bytes back and compares them.
pub fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Result<(), String> {
    stream
        .write_all(message)
        .map_err(|error| format!("writing {} bytes: {}", message.len(), describe(&error)))?;
    let mut echoed = vec![0u8; message.len()];
    read_exactly(stream, &mut echoed)?;
    if echoed != message {
        let at = echoed.iter().zip(message).position(|(e, m)| e != m).unwrap_or(0);
        return Err(format!(
            "echo of {} bytes differs from what was sent, first at byte {at}",
            message.len()
        ));
    }
    Ok(())
}

/// Fills `buffer` from the stream, saying how far it got on failure.
pub fn read_exactly(stream: &mut TcpStream, buffer: &mut [u8]) -> Result<(), String> {
    let mut filled = 0;
    while filled < buffer.len() {
        match stream.read(&mut buffer[filled..]) {
            Ok(0) => {
                return Err(format!(
                    "the server closed the connection after {filled} of {} expected bytes",
                    buffer.len()
                ));
            }
            Ok(read) => filled += read,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => {
                return Err(format!(
                    "reading the echo after {filled} of {} bytes: {}",
                    buffer.len(),
                    describe(&error)
                ));
            }
        }
    }
    Ok(())
}

/// Writes `total` bytes of `pattern` in pieces whose sizes cycle through
/// `pieces` (uneven sizes exercise partial reads and writes).
pub fn write_pattern(
    stream: &mut TcpStream,
    pattern: Pattern,
    total: u64,
    pieces: &[usize],
) -> Result<(), String> {
    let mut written = 0u64;
    for &piece in pieces.iter().cycle() {
        if written == total {
            return Ok(());
        }
        let len = (piece as u64).min(total - written) as usize;
        let bytes = pattern.bytes(written, len);
        stream
            .write_all(&bytes)
            .map_err(|error| format!("writing at offset {written} of {total}: {}", describe(&error)))?;
        written += len as u64;
    }
    Ok(())
}

/// Reads the bytes at `range` of `pattern`'s stream and checks them, reading
/// at most `read_size` bytes at a time.
pub fn read_pattern(
    stream: &mut TcpStream,
    pattern: Pattern,
    range: std::ops::Range<u64>,
    read_size: usize,
) -> Result<(), String> {
    let mut buffer = vec![0u8; read_size];
    let mut received = range.start;
    let total = range.end;
    while received < total {
        let want = (read_size as u64).min(total - received) as usize;
        match stream.read(&mut buffer[..want]) {
            Ok(0) => {
                return Err(format!(
                    "the server closed the connection after echoing {received} of {total} bytes"
                ));
            }
            Ok(read) => {
                pattern.verify(received, &buffer[..read])?;
                received += read as u64;
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => {
                return Err(format!(
                    "reading the echo after {received} of {total} bytes: {}",
                    describe(&error)
                ));
            }
        }
    }
    Ok(())
}

/// Expects the server to close the connection now: a read returns 0 bytes.
pub fn expect_eof(stream: &mut TcpStream) -> Result<(), String> {
    let mut byte = [0u8; 1];
    loop {
        return match stream.read(&mut byte) {
            Ok(0) => Ok(()),
            Ok(_) => Err("the server sent more bytes than it was sent".into()),
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => Err(format!(
                "expected the server to close the connection after the echo: {}",
                describe(&error)
            )),
        };
    }
}

/// Shuts down the write side (half-close).
pub fn shutdown_write(stream: &TcpStream) -> Result<(), String> {
    stream
        .shutdown(Shutdown::Write)
        .map_err(|error| format!("shutdown(Write): {error}"))
}

/// An I/O error in words, with timeouts named as such.
pub fn describe(error: &std::io::Error) -> String {
    match error.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            format!("no progress within {} s ({error})", IO_TIMEOUT.as_secs())
        }
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_the_same_whatever_the_pieces() {
        let pattern = Pattern::new(7);
        let whole = pattern.bytes(0, 1000);
        let mut pieces = pattern.bytes(0, 3);
        pieces.extend(pattern.bytes(3, 500));
        pieces.extend(pattern.bytes(503, 497));
        assert_eq!(whole, pieces);
        assert!(pattern.verify(13, &whole[13..]).is_ok());
    }

    #[test]
    fn the_pattern_detects_shifts_and_other_seeds() {
        let pattern = Pattern::new(1);
        let bytes = pattern.bytes(0, 4096);
        assert!(pattern.verify(8, &bytes[..4088]).is_err());
        assert!(Pattern::new(2).verify(0, &bytes).is_err());
        assert!(bytes.iter().filter(|&&byte| byte == 0).count() < 64);
    }
}
