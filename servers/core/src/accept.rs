//! What a model does when `accept(2)` fails.
//!
//! Running out of file descriptors (EMFILE, ENFILE) leaves the connection in
//! the listen queue, so the listener stays readable: retrying at once would
//! spin a core. Instead the model pauses accepting for [`PAUSE`], keeps serving
//! the connections it has, and logs one line per pause episode, not per try.
//! The descriptor table belongs to the process, so an episode does too: when
//! several threads accept (one listener each), the first to run out logs it
//! and the last to recover logs the end.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a model stops accepting after running out of file descriptors.
pub const PAUSE: Duration = Duration::from_millis(100);

/// Milliseconds from now until `at` (0 if it has passed), rounded up: a
/// poll timeout that wakes a millisecond early would spin until then.
pub fn millis_until(at: Instant) -> u128 {
    at.saturating_duration_since(Instant::now())
        .as_micros()
        .div_ceil(1000)
}

/// What to do after a failed `accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// Interrupted, or the peer gave up before we accepted it: accept again.
    Retry,
    /// Out of descriptors or kernel memory: stop accepting for [`PAUSE`].
    Exhausted,
    /// The listener itself is broken: `serve` returns the error.
    Fatal,
}

/// Sorts an `accept` error into what the caller should do.
pub fn classify(error: &io::Error) -> AcceptError {
    match error.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptError::Exhausted,
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EOPNOTSUPP | libc::EFAULT) => {
            AcceptError::Fatal
        }
        _ => AcceptError::Retry,
    }
}

/// Rate-limits the "out of file descriptors" log line to one per episode.
#[derive(Debug, Default)]
pub struct Exhaustion {
    since: Option<Instant>,
    pauses: u64,
}

/// Accept loops of this process that are in an episode right now.
static EXHAUSTED_LOOPS: AtomicUsize = AtomicUsize::new(0);

impl Exhaustion {
    /// Records a pause and returns when accepting may resume. Logs one line
    /// when the process's episode starts.
    pub fn pause(&mut self, error: &io::Error) -> Instant {
        let now = Instant::now();
        if self.since.is_none() {
            self.since = Some(now);
            if EXHAUSTED_LOOPS.fetch_add(1, Ordering::Relaxed) == 0 {
                crate::log_line(format_args!(
                    "accept: {error}; pausing accepts, serving existing connections"
                ));
            }
        }
        self.pauses += 1;
        now + PAUSE
    }

    /// Call after a successful accept: ends an episode with one log line.
    pub fn recovered(&mut self) {
        if let Some(since) = self.since.take() {
            if EXHAUSTED_LOOPS.fetch_sub(1, Ordering::Relaxed) == 1 {
                crate::log_line(format_args!(
                    "accept: recovered after {:.1} s ({} pauses)",
                    since.elapsed().as_secs_f64(),
                    self.pauses
                ));
            }
            self.pauses = 0;
        }
    }
}

/// The blocking models' reaction to a failed accept: sleep out an exhaustion
/// pause, retry transient errors, and return fatal ones.
pub fn handle_blocking(error: io::Error, exhaustion: &mut Exhaustion) -> io::Result<()> {
    match classify(&error) {
        AcceptError::Retry => Ok(()),
        AcceptError::Exhausted => {
            let resume = exhaustion.pause(&error);
            std::thread::sleep(resume.saturating_duration_since(Instant::now()));
            Ok(())
        }
        AcceptError::Fatal => Err(error),
    }
}

/// Blocking models: waits for the next client and returns it with
/// TCP_NODELAY set. Sleeps out exhaustion pauses and retries transient
/// errors; returns only a fatal listener error.
pub fn next_blocking(
    listener: &TcpListener,
    exhaustion: &mut Exhaustion,
) -> io::Result<(TcpStream, SocketAddr)> {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                exhaustion.recovered();
                let _ = stream.set_nodelay(true);
                return Ok((stream, peer));
            }
            Err(error) => handle_blocking(error, exhaustion)?,
        }
    }
}

/// Readiness models: accepts every client waiting on a nonblocking listener,
/// without ever blocking, and hands each one (already nonblocking, with
/// TCP_NODELAY set) to `on_client`. Returns `None` once the listen queue is
/// empty (`WouldBlock`), or the instant accepting may resume when the process
/// is out of descriptors: leave the listener alone until then. Retries
/// transient errors; returns only a fatal one.
pub fn drain_ready(
    listener: &TcpListener,
    exhaustion: &mut Exhaustion,
    mut on_client: impl FnMut(TcpStream, SocketAddr),
) -> io::Result<Option<Instant>> {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                exhaustion.recovered();
                if let Err(error) = stream.set_nonblocking(true) {
                    crate::log_connection_error(peer, error);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                on_client(stream, peer);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(error) => match classify(&error) {
                AcceptError::Retry => continue,
                AcceptError::Exhausted => return Ok(Some(exhaustion.pause(&error))),
                AcceptError::Fatal => return Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_errors_that_matter() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(classify(&os(libc::EMFILE)), AcceptError::Exhausted);
        assert_eq!(classify(&os(libc::ENFILE)), AcceptError::Exhausted);
        assert_eq!(classify(&os(libc::EINTR)), AcceptError::Retry);
        assert_eq!(classify(&os(libc::ECONNABORTED)), AcceptError::Retry);
        assert_eq!(classify(&os(libc::EBADF)), AcceptError::Fatal);
    }

    #[test]
    fn an_episode_pauses_for_the_pause_length() {
        let mut exhaustion = Exhaustion::default();
        let before = Instant::now();
        let resume = exhaustion.pause(&io::Error::from_raw_os_error(libc::EMFILE));
        assert!(resume >= before + PAUSE);
        assert_eq!(exhaustion.pauses, 1);
        exhaustion.recovered();
        assert!(exhaustion.since.is_none());
        assert_eq!(exhaustion.pauses, 0);
    }

    #[test]
    fn millis_until_rounds_up_and_stops_at_zero() {
        assert_eq!(millis_until(Instant::now()), 0);
        // Less than PAUSE is left by the time it is measured, and a part of
        // a millisecond counts as a whole one.
        let left = millis_until(Instant::now() + PAUSE);
        assert!(left > 0 && left <= PAUSE.as_millis(), "{left}");
        let left = millis_until(Instant::now() + Duration::from_micros(1));
        assert!(left <= 1, "{left}");
    }
}
