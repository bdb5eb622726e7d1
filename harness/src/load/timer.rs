//! A one-shot timer with nanosecond resolution that epoll can wait on.
//!
//! `epoll_wait` takes its timeout in milliseconds, far too coarse for an open
//! loop that sends a message every few microseconds: the sends would leave up
//! to a millisecond late and the lateness would be charged to the server. A
//! `timerfd` (CLOCK_MONOTONIC, the clock behind `Instant`) becomes readable at
//! the exact instant, and mio waits on it like on any socket.
//!
//! System calls: `timerfd_create` once, `timerfd_settime` per arm, one `read`
//! per expiry.

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

pub struct Timer {
    fd: TimerFd,
}

impl Timer {
    /// A disarmed, nonblocking timer.
    pub fn new() -> io::Result<Timer> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        Ok(Timer { fd })
    }

    /// Makes the timer fire once, `after` from now (at least 1 ns: zero would
    /// disarm it).
    pub fn arm(&self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_nanos(1));
        self.fd.set(
            Expiration::OneShot(TimeSpec::from_duration(after)),
            TimerSetTimeFlags::empty(),
        )?;
        Ok(())
    }

    /// Consumes an expiry so that the next one is reported again.
    pub fn acknowledge(&self) {
        // The 8-byte expiry count; WouldBlock (a spurious wake-up) is fine.
        let mut expirations = [0u8; 8];
        let _ = nix::unistd::read(self.fd.as_fd(), &mut expirations);
    }
}

impl Source for Timer {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        SourceFd(&self.fd.as_fd().as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        SourceFd(&self.fd.as_fd().as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.fd.as_fd().as_raw_fd()).deregister(registry)
    }
}
