//! The payload: every connection's byte stream is a pure function of
//! (stream id, byte offset), so each echoed byte is checked against what was
//! sent without storing it.
//!
//! Bytes are produced eight at a time: word `offset / 8` of stream `id` is a
//! SplitMix64 hash of the pair, and byte `offset % 8` of its little-endian
//! encoding is the byte at `offset`. A flipped, lost, duplicated or reordered
//! byte changes what the checker expects, so none of them goes unnoticed.

use std::io::{self, Write};

/// The 8-byte word at index `word` of stream `stream_id`.
#[inline]
fn word(stream_id: u64, word: u64) -> [u8; 8] {
    // SplitMix64's finaliser over a mix of both inputs: cheap and well spread.
    let mut z = stream_id
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(word.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).to_le_bytes()
}

/// Fills `out` with the bytes of stream `stream_id` starting at `offset`.
#[inline]
pub fn fill(stream_id: u64, offset: u64, out: &mut [u8]) {
    let mut position = offset;
    let mut rest = out;
    // Head: up to the next 8-byte boundary.
    let head = ((8 - (position % 8)) % 8).min(rest.len() as u64) as usize;
    if head > 0 {
        let bytes = word(stream_id, position / 8);
        let start = (position % 8) as usize;
        rest[..head].copy_from_slice(&bytes[start..start + head]);
        rest = &mut rest[head..];
        position += head as u64;
    }
    let mut chunks = rest.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&word(stream_id, position / 8));
        position += 8;
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let bytes = word(stream_id, position / 8);
        tail.copy_from_slice(&bytes[..tail.len()]);
    }
}

/// Whether `received` equals the bytes of stream `stream_id` at `offset`.
#[inline]
pub fn matches(stream_id: u64, offset: u64, received: &[u8]) -> bool {
    let mut position = offset;
    let mut rest = received;
    let head = ((8 - (position % 8)) % 8).min(rest.len() as u64) as usize;
    if head > 0 {
        let bytes = word(stream_id, position / 8);
        let start = (position % 8) as usize;
        if rest[..head] != bytes[start..start + head] {
            return false;
        }
        rest = &rest[head..];
        position += head as u64;
    }
    let mut chunks = rest.chunks_exact(8);
    for chunk in &mut chunks {
        if *chunk != word(stream_id, position / 8) {
            return false;
        }
        position += 8;
    }
    let tail = chunks.remainder();
    tail.is_empty() || *tail == word(stream_id, position / 8)[..tail.len()]
}

/// Writes bytes `*written..end` of stream `stream_id` to a nonblocking
/// `socket`, generating them `buffer.len()` at a time into `buffer`.
/// `Ok(true)` when all are written, `Ok(false)` when the socket is full (wait
/// for writability and call again); any other error is the connection's.
#[inline]
pub fn send<W: Write>(
    socket: &mut W,
    stream_id: u64,
    written: &mut u64,
    end: u64,
    buffer: &mut [u8],
) -> io::Result<bool> {
    send_from(socket, written, end, buffer, |offset, chunk| {
        fill(stream_id, offset, chunk)
    })
}

/// Like [`send`], for any byte stream: `fill(offset, chunk)` writes the
/// stream's bytes at `offset` into `chunk`.
#[inline]
pub fn send_from<W: Write>(
    socket: &mut W,
    written: &mut u64,
    end: u64,
    buffer: &mut [u8],
    fill: impl Fn(u64, &mut [u8]),
) -> io::Result<bool> {
    while *written < end {
        let length = (end - *written).min(buffer.len() as u64) as usize;
        let chunk = &mut buffer[..length];
        fill(*written, chunk);
        match socket.write(chunk) {
            Ok(sent) => {
                *written += sent as u64;
                if sent < length {
                    return Ok(false); // socket full
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_split_of_the_stream_gives_the_same_bytes() {
        let mut whole = vec![0u8; 100];
        fill(7, 3, &mut whole);
        for split in 0..100 {
            let mut first = vec![0u8; split];
            let mut second = vec![0u8; 100 - split];
            fill(7, 3, &mut first);
            fill(7, 3 + split as u64, &mut second);
            assert_eq!(&whole[..split], &first[..]);
            assert_eq!(&whole[split..], &second[..]);
            assert!(matches(7, 3, &whole[..split]));
            assert!(matches(7, 3 + split as u64, &whole[split..]));
        }
    }

    #[test]
    fn a_flipped_byte_or_another_stream_does_not_match() {
        let mut bytes = vec![0u8; 64];
        fill(1, 0, &mut bytes);
        assert!(matches(1, 0, &bytes));
        assert!(!matches(2, 0, &bytes));
        assert!(!matches(1, 1, &bytes));
        for index in 0..64 {
            let mut corrupted = bytes.clone();
            corrupted[index] ^= 0x01;
            assert!(!matches(1, 0, &corrupted), "flip at {index} went unnoticed");
        }
    }
}
