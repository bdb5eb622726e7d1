//! What the kernel says of this machine's wall clock: whether something
//! (NTP, chrony, PTP) is disciplining it, and the error bounds it keeps.
//! Load hosts that agree on a wall-clock start instant (`--start-at`) start
//! together only as well as their clocks agree, so each host records this
//! beside its numbers.
//!
//! System call: `adjtimex(2)` with `modes = 0`, which only reads (no
//! privilege needed).

use crate::results::cell::ClockSync;

/// The clock's synchronisation state, or `None` when the kernel does not
/// report one (the call is refused, as some container sandboxes do).
pub fn clock_sync() -> Option<ClockSync> {
    let timex = read_timex()?;
    let unsynchronised = timex.status & libc::STA_UNSYNC != 0;
    #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
    Some(ClockSync {
        synchronised: !unsynchronised && timex.state != libc::TIME_ERROR,
        max_error_us: i64::from(timex.maxerror),
        est_error_us: i64::from(timex.esterror),
    })
}

/// The fields of `struct timex` this module reads, and the clock state
/// `adjtimex` returns.
struct Timex {
    state: libc::c_int,
    status: libc::c_int,
    maxerror: libc::c_long,
    esterror: libc::c_long,
}

/// `adjtimex(2)` in read-only mode, wrapped once.
#[allow(unsafe_code)]
fn read_timex() -> Option<Timex> {
    // SAFETY: `timex` is a plain C struct for which all-zero bytes are a
    // valid value; `modes = 0` asks the kernel to change nothing, only to
    // fill the struct, and the pointer is valid and exclusive for the call.
    let (state, timex) = unsafe {
        let mut timex: libc::timex = std::mem::zeroed();
        timex.modes = 0;
        let state = libc::adjtimex(&mut timex);
        (state, timex)
    };
    (state >= 0).then_some(Timex {
        state,
        status: timex.status,
        maxerror: timex.maxerror,
        esterror: timex.esterror,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_reports_a_clock_state_with_sane_bounds() {
        // Linux answers a read-only adjtimex to any process; a sandbox that
        // refuses it makes the harness record no clock state, not a wrong one.
        let Some(sync) = clock_sync() else {
            eprintln!("adjtimex is refused here: no clock state to check");
            return;
        };
        assert!(sync.max_error_us >= 0 && sync.est_error_us >= 0, "{sync:?}");
        if !sync.synchronised {
            // The kernel's maxerror grows to 16 s without a time daemon.
            assert!(sync.max_error_us > 0, "{sync:?}");
        }
    }
}
