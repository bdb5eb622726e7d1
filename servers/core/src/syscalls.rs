//! A model's "System calls" section as numbers, so that the prose can be
//! checked against what the kernel counts while the model serves.
//!
//! Each model crate exports `pub const SYSCALLS: &[Profile]`, one profile per
//! variant (its command-line options), right under its module doc. Each
//! [`Expect`] says how many calls of one kind (or failing with EAGAIN) the
//! model makes per echoed message under [`PROFILE_LOAD`]: a range, since a
//! shared `epoll_wait` or `select` serves a varying number of messages.
//! `harness/tests/syscall_profile.rs` measures every profile with the
//! harness's tracepoint counters and fails on any contradiction.

use std::ops::RangeInclusive;

/// The load the profiles are stated for: few connections, lightly loaded,
/// so that every wake-up serves about one message and the per-message cost
/// of waiting shows (a busy server amortises it).
pub const PROFILE_LOAD: ProfileLoad = ProfileLoad {
    connections: 10,
    messages_per_second: 2_000.0,
    size: 64,
};

/// An open-loop load: `messages_per_second` in all, over `connections`.
#[derive(Debug, Clone, Copy)]
pub struct ProfileLoad {
    pub connections: u32,
    pub messages_per_second: f64,
    pub size: u32,
}

/// The expected system calls of one variant of a model.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The model options of the variant (empty: the defaults).
    pub args: &'static [&'static str],
    pub per_message: &'static [Expect],
}

/// Calls per message of one kind.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The system call, by its kernel name; alternatives are summed (a C
    /// library may implement `epoll_wait` with `epoll_pwait`, `select` with
    /// `pselect6`).
    pub syscalls: &'static [&'static str],
    /// Count only the calls that failed with EAGAIN.
    pub failed_with_eagain: bool,
    pub per_message: RangeInclusive<f64>,
}

impl Expect {
    /// `syscall` (or its alternatives) makes `per_message` calls per message.
    pub const fn calls(syscalls: &'static [&'static str], per_message: RangeInclusive<f64>) -> Expect {
        Expect {
            syscalls,
            failed_with_eagain: false,
            per_message,
        }
    }

    /// Of those calls, `per_message` per message fail with EAGAIN.
    pub const fn eagain(syscalls: &'static [&'static str], per_message: RangeInclusive<f64>) -> Expect {
        Expect {
            syscalls,
            failed_with_eagain: true,
            per_message,
        }
    }

    /// The call is never made while messages flow.
    pub const fn none(syscalls: &'static [&'static str]) -> Expect {
        Expect::calls(syscalls, 0.0..=0.01)
    }
}

/// Names shared by several models' profiles.
pub const EPOLL_WAIT: &[&str] = &["epoll_wait", "epoll_pwait", "epoll_pwait2"];
pub const SELECT: &[&str] = &["select", "pselect6"];
pub const RECV: &[&str] = &["recvfrom"];
pub const SEND: &[&str] = &["sendto"];
/// Once per message, or less: messages that arrive together (the server was
/// late to one wake-up, on a busy machine) are read and echoed by one call.
pub const ONCE: RangeInclusive<f64> = 0.5..=1.05;
/// At most once per message, the rest shared: a wake-up serves one message
/// or more.
pub const SHARED: RangeInclusive<f64> = 0.2..=1.05;

/// A blocking echo (`read` then `write_all`, in a thread or process per
/// client, or a worker): one read and one write per message, and no call to
/// wait for readiness or to wake another thread.
pub const BLOCKING_ECHO: &[Expect] = &[
    Expect::calls(RECV, ONCE),
    Expect::calls(SEND, ONCE),
    Expect::none(EPOLL_WAIT),
    Expect::none(SELECT),
    Expect::none(&["futex"]),
];

/// The level-triggered epoll echo (`epoll`, each `reuseport` reactor, each
/// nginx-style prefork worker): one read that finds bytes, one write, a
/// share of one `epoll_wait`, no change to the interest list per message.
pub const EPOLL_ECHO: &[Expect] = &[
    Expect::calls(EPOLL_WAIT, SHARED),
    Expect::calls(RECV, ONCE),
    Expect::eagain(RECV, 0.0..=0.05),
    Expect::calls(SEND, ONCE),
    Expect::none(&["epoll_ctl"]),
    Expect::none(&["futex"]),
];
