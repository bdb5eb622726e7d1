//! Every model's "System calls" section as numbers, in one table: each model
//! crate's `SYSCALLS` (one profile per variant, see
//! [`echo_core::syscalls`]). `harness tour` (step 9) and
//! `tests/syscall_profile.rs` both measure the models against it, so a model
//! added to [`echo_core::MODELS`] is added here once.

use echo_core::syscalls::Profile;

/// Every built model with its stated profiles, in the order of the progression.
pub const MODEL_PROFILES: &[(&str, &[Profile])] = &[
    ("single", server_single::SYSCALLS),
    ("threaded", server_threaded::SYSCALLS),
    ("pool", server_pool::SYSCALLS),
    ("nonblocking", server_nonblocking::SYSCALLS),
    ("select", server_select::SYSCALLS),
    ("epoll", server_epoll::SYSCALLS),
    ("coroutine", server_coroutine::SYSCALLS),
    ("async", server_async::SYSCALLS),
    ("process", server_process::SYSCALLS),
    ("uring", server_uring::SYSCALLS),
    ("reuseport", server_reuseport::SYSCALLS),
];

/// The stated profiles of `model`, if the table has them.
pub fn of(model: &str) -> Option<&'static [Profile]> {
    MODEL_PROFILES
        .iter()
        .find(|(name, _)| *name == model)
        .map(|(_, profiles)| *profiles)
}
