//! The client-side step: what a connection sends next and how what came
//! back is checked, apart from the loops that drive it.
//!
//! The loops ([`super::stream`], [`super::churn`]) own sockets, schedules,
//! deadlines and recording; they count bytes out and answers in. A step
//! says which bytes make request `j` of a connection (its stream id) and
//! turns the bytes that come back into answers, each verified or not, in
//! request order. Both loops are generic over the step, so the echo's hot
//! path compiles to the same code it had before there was a step.
//!
//! - [`Echo`]: the payload function of (connection, offset); an answer is
//!   the next `size` bytes, equal to those sent.
//! - [`super::http::Http`]: an HTTP/1.1 request, and the full parse and
//!   check of its response.

use super::http::{Http, HttpLoad};
use super::{Failure, payload};
use crate::results::cell::Errors;
use std::io::{self, Write};
use std::sync::Arc;

/// What a connection sends and how its answers are checked.
pub trait ClientStep: Send + Sync + 'static {
    /// Each connection's checking state (a half-received answer).
    type Check: Default + Send;

    /// Bytes of one request on the wire: a loop owes this many per message.
    fn request_len(&self) -> u64;

    /// Of the bytes sent, those answered: echo, the `received` bytes; a
    /// protocol whose answers differ from its requests, the `answered`
    /// requests' bytes. The rest are missing when a connection goes silent.
    fn answered_bytes(&self, received: u64, answered: u64) -> u64;

    /// Writes request bytes `*written..end` of stream `stream_id` to a
    /// nonblocking `socket`, like [`payload::send`]: `Ok(true)` when all are
    /// written, `Ok(false)` when the socket is full.
    fn send<W: Write>(
        &self,
        socket: &mut W,
        stream_id: u64,
        written: &mut u64,
        end: u64,
        buffer: &mut [u8],
    ) -> io::Result<bool>;

    /// Checks `bytes`, the next bytes the server sent on a connection that
    /// stands `at`, and calls `answered(verified)` for each answer they
    /// complete, in request order. A failed check is counted in `errors` by
    /// kind; `Err` when the connection can no longer be trusted (already
    /// counted).
    fn check(
        &self,
        state: &mut Self::Check,
        at: Stands,
        bytes: &[u8],
        errors: &mut Errors,
        answered: impl FnMut(bool),
    ) -> Result<(), Failure>;
}

/// Where a connection's streams stand when bytes arrive.
#[derive(Debug, Clone, Copy)]
pub struct Stands {
    /// The connection's payload stream.
    pub stream_id: u64,
    /// Bytes received before these.
    pub received: u64,
    /// Bytes sent to the server so far.
    pub written: u64,
}

/// The echo: message `j` of a connection is bytes `j * size..(j + 1) * size`
/// of its payload stream, and its answer the same bytes back.
#[derive(Debug, Clone, Copy)]
pub struct Echo {
    pub size: u64,
}

/// Echo: the message being received has a wrong byte.
#[derive(Debug, Default)]
pub struct EchoCheck {
    corrupt: bool,
}

impl ClientStep for Echo {
    type Check = EchoCheck;

    #[inline]
    fn request_len(&self) -> u64 {
        self.size
    }

    fn answered_bytes(&self, received: u64, _answered: u64) -> u64 {
        received
    }

    #[inline]
    fn send<W: Write>(
        &self,
        socket: &mut W,
        stream_id: u64,
        written: &mut u64,
        end: u64,
        buffer: &mut [u8],
    ) -> io::Result<bool> {
        payload::send(socket, stream_id, written, end, buffer)
    }

    #[inline]
    fn check(
        &self,
        state: &mut EchoCheck,
        at: Stands,
        bytes: &[u8],
        errors: &mut Errors,
        mut answered: impl FnMut(bool),
    ) -> Result<(), Failure> {
        let Stands {
            stream_id,
            received,
            written,
        } = at;
        let length = bytes.len();
        if received + length as u64 > written {
            // Bytes nobody sent: the stream can no longer be trusted.
            errors.mismatch += 1;
            return Err(Failure::Mismatch);
        }
        let mut received = received;
        let mut offset = 0;
        while offset < length {
            let message_end = (received / self.size + 1) * self.size;
            let take = ((message_end - received) as usize).min(length - offset);
            if !payload::matches(stream_id, received, &bytes[offset..offset + take]) {
                state.corrupt = true;
            }
            received += take as u64;
            offset += take;
            if received < message_end {
                break;
            }
            if state.corrupt {
                state.corrupt = false;
                errors.mismatch += 1;
                answered(false);
            } else {
                answered(true);
            }
        }
        Ok(())
    }
}

/// The protocol of a load, as the loops receive it: a [`LoadSpec`]'s step.
///
/// [`LoadSpec`]: super::LoadSpec
#[derive(Debug, Clone, Default)]
pub enum StepSpec {
    /// Echo messages of the load's `size`.
    #[default]
    Echo,
    /// HTTP requests, built once at the start of the cell.
    Http(Arc<HttpLoad>),
}

impl StepSpec {
    /// The payload bytes of one answer: an echo message's `size`, an HTTP
    /// response's body (what `bytes_per_sec` counts).
    pub fn answer_bytes(&self, size: u32) -> u64 {
        match self {
            StepSpec::Echo => u64::from(size),
            StepSpec::Http(load) => load.body_len(),
        }
    }

    /// The step of a connection, for a load of `size`-byte echo messages.
    pub fn echo(size: u32) -> Echo {
        Echo {
            size: u64::from(size),
        }
    }

    /// The HTTP step (`close`: each request on its own connection, churn).
    pub fn http(load: &Arc<HttpLoad>, close: bool) -> Http {
        Http::new(Arc::clone(load), close)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_answers_each_message_once_however_the_bytes_are_split() {
        let step = Echo { size: 10 };
        let mut sent = vec![0u8; 30];
        payload::fill(3, 0, &mut sent);
        sent[14] ^= 1; // message 1 is corrupt
        let mut answers = Vec::new();
        let mut errors = Errors::default();
        let mut state = EchoCheck::default();
        let mut received = 0;
        for piece in sent.chunks(7) {
            let at = Stands {
                stream_id: 3,
                received,
                written: 30,
            };
            step.check(&mut state, at, piece, &mut errors, |ok| answers.push(ok))
                .unwrap();
            received += piece.len() as u64;
        }
        assert_eq!(answers, [true, false, true]);
        assert_eq!(errors.mismatch, 1);
        // More bytes than were sent: the stream is given up.
        let at = Stands {
            stream_id: 3,
            received: 30,
            written: 30,
        };
        let extra = step.check(&mut state, at, &[0], &mut errors, |_| {});
        assert_eq!(extra, Err(Failure::Mismatch));
    }
}
