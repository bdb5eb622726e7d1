//! The conformance suite every echolab model passes, written once.
//!
//! Each check starts the model's real binary as a child process
//! (`server-MODEL --addr 127.0.0.1:0 [model options]`), reads its ready line
//! `listening on HOST:PORT`, talks to it over loopback like any client would,
//! and kills it at the end whatever happens. Everything the server logs on
//! stderr is captured: a failing check prints the tail of it.
//!
//! # Layout
//!
//! - [`suite!`]: expands to one `#[test]` per check for one model variant.
//! - [`Kind`]: what a model can do by design, which picks the checks.
//! - [`checks`]: the checks themselves, one public function each.
//! - [`server`]: the child-process guard ([`Server`]): start, ready line,
//!   stderr capture, RSS and CPU time from `/proc`, signals, kill on drop.
//! - [`client`]: client sockets with timeouts and [`Pattern`], the
//!   deterministic byte stream every check sends, so a lost, added or
//!   reordered byte is found and its offset reported.
//! - [`watchdog`]: runs a check's body under a deadline.
//! - [`seccomp`]: system calls made to fail in a child, for the paths a
//!   healthy machine never takes.
//! - [`http_suite!`] and [`http`]: the HTTP checks (`--protocol http`),
//!   one line per model, as [`suite!`]: plaintext, `POST /echo`, static
//!   files, 404, paths escaping the root, 411/501/400/431 then close,
//!   keep-alive and close, a byte-at-a-time request, 16 pipelined in one
//!   write, a slow reader of a large file, a reset mid-response, `Date`
//!   across seconds, and `--work wait:` overlapping as the model allows.
//! - [`udp_suite!`] and [`udp`]: the datagram models' own suite (no stream,
//!   no connection: each datagram back whole to its sender, loss allowed
//!   only under a flood).
//! - [`python_suite!`] and [`python`]: the same suite for the Python servers
//!   of `servers/python/`, run through `python3` (`tests/python.rs`), skipped
//!   where this machine lacks `python3` or a server's package.
//!
//! # Adding a model
//!
//! A model crate gets `echo-conformance` as a dev-dependency and one line per
//! variant in `tests/conformance.rs`:
//!
//! ```text
//! echo_conformance::suite!(epoll, env!("CARGO_BIN_EXE_server-epoll"), kind = Kind::Concurrent);
//! echo_conformance::suite!(
//!     epoll_edge,
//!     env!("CARGO_BIN_EXE_server-epoll"),
//!     args = ["--edge"],
//!     kind = Kind::Concurrent
//! );
//! ```
//!
//! `kind` is written exactly as `Kind::VARIANT` (no import needed): the macro
//! reads the variant to decide which checks to generate. The tests are then
//! named `epoll_edge::half_close_after_one_byte` and so on, so
//! `cargo test -p server-epoll half_close` runs one check on every variant.
//!
//! # Checks
//!
//! Every kind runs: a thousand small round trips; 8 MiB written in uneven
//! pieces while another thread reads; half-close after 1 byte, after several
//! MiB, and while the server still holds unsent bytes; a peer reset in the
//! middle of a transfer; 100 clients with random sizes (as many at once as
//! the kind allows); a slow reader that must not grow the server's memory;
//! running out of file descriptors (the server runs under a limit of 64);
//! SIGTERM and SIGINT ending the process with status 0.
//!
//! Then, by kind: a second client served while the first stays connected
//! (or, for [`Kind::OneAtATime`], *not* served until the first leaves);
//! clients beyond the pool's workers waiting their turn; 1,100 connections at
//! once all served, or for [`Kind::Select`] the ones past `FD_SETSIZE`
//! closed while the others keep being served. Models that fork
//! ([`Kind::ProcessPerClient`], [`Kind::PreforkPool`],
//! [`Kind::PreforkReactors`]) leave no child running after SIGTERM or after
//! being killed with SIGKILL, and a process per client leaves no zombie after
//! 1,000 short connections. Memory and CPU time are the whole process tree's.
//!
//! # Deadlines
//!
//! Every client socket has read and write timeouts ([`client::IO_TIMEOUT`]),
//! and every check body runs under a watchdog: a model that hangs fails with
//! a message naming the check, and its process is killed.

pub mod checks;
pub mod client;
pub mod http;
pub mod python;
pub mod seccomp;
pub mod server;
pub mod udp;
pub mod watchdog;

pub use client::Pattern;
pub use server::{Launch, Refusal, Server};

/// What a model can do by design. Checks a kind cannot pass by design are not
/// generated for it; where the design promises something instead (a second
/// client waits), that is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Serves one client at a time; the next waits in the listen queue
    /// (`single`).
    OneAtATime,
    /// Serves up to `workers` clients at once; the next ones wait until a
    /// worker is free (`pool`).
    BoundedPool { workers: usize },
    /// Serves any number of clients at once, and sleeps while idle
    /// (`threaded`, `epoll`, `coroutine`, `async`).
    Concurrent,
    /// Serves any number of clients at once, and sleeps while idle, but out
    /// of file descriptors closes the connections it cannot hold without a
    /// word: libuv keeps a spare descriptor to accept and close them
    /// (`uvloop`), so nothing is logged, and the rest is checked as for
    /// [`Kind::Concurrent`].
    SilentlyShedding,
    /// Serves any number of clients at once, but spins over its sockets even
    /// while idle, so its CPU time is not checked (`nonblocking`).
    BusyPoll,
    /// Serves any number of clients whose descriptors fit in an `fd_set`;
    /// closes the ones numbered `FD_SETSIZE` or more (`select`).
    Select,
    /// Forks a process per client (`process`): any number at once; the
    /// parent closes its copy of each connection, so it never runs out of
    /// descriptors, and it must leave no zombie and no orphan.
    ProcessPerClient,
    /// `workers` processes forked at start, each serving one client at a
    /// time; the next clients wait (`process --prefork N`, blocking accept).
    PreforkPool { workers: usize },
    /// `workers` processes forked at start, each serving any number of
    /// clients from its own event loop (`process --prefork N --accept
    /// epoll|exclusive|reuseport`); each has its own descriptor table.
    PreforkReactors { workers: usize },
}

impl Kind {
    /// How many clients the model serves at the same time.
    pub fn concurrency(self) -> usize {
        match self {
            Kind::OneAtATime => 1,
            Kind::BoundedPool { workers } | Kind::PreforkPool { workers } => workers,
            Kind::Concurrent
            | Kind::SilentlyShedding
            | Kind::BusyPoll
            | Kind::Select
            | Kind::ProcessPerClient
            | Kind::PreforkReactors { .. } => usize::MAX,
        }
    }

    /// How many processes accept clients, each with its own descriptor
    /// table (and so its own "out of descriptors" episodes).
    pub fn accepting_processes(self) -> usize {
        match self {
            Kind::PreforkPool { workers } | Kind::PreforkReactors { workers } => workers,
            _ => 1,
        }
    }
}

/// One variant of one model under test: its binary, its model options, and
/// what it can do.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    /// Path of the model's binary (`env!("CARGO_BIN_EXE_server-MODEL")`).
    pub binary: &'static str,
    /// Model options passed before `--addr`, e.g. `["--edge"]`.
    pub args: &'static [&'static str],
    pub kind: Kind,
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = std::path::Path::new(self.binary)
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.binary.to_owned());
        write!(f, "{name}")?;
        for arg in self.args {
            write!(f, " {arg}")?;
        }
        Ok(())
    }
}

/// Generates the conformance tests for one model variant, as a module named
/// `$name` holding one `#[test]` per check.
///
/// ```text
/// echo_conformance::suite!(NAME, env!("CARGO_BIN_EXE_server-MODEL"), [args = ["--opt", ..],] kind = Kind::VARIANT);
/// ```
#[macro_export]
macro_rules! suite {
    ($name:ident, $binary:expr, kind = Kind :: $($kind:tt)+) => {
        $crate::suite!($name, $binary, args = [], kind = Kind :: $($kind)+);
    };
    (
        $name:ident,
        $binary:expr,
        args = [$($arg:expr),* $(,)?],
        kind = Kind :: $variant:ident $({ $($fields:tt)* })? $(,)?
    ) => {
        mod $name {
            const MODEL: $crate::Model = $crate::Model {
                binary: $binary,
                args: &[$($arg),*],
                kind: $crate::Kind::$variant $({ $($fields)* })?,
            };
            $crate::__conformance_tests!(
                MODEL;
                thousand_small_round_trips,
                eight_mib_in_uneven_pieces,
                half_close_after_one_byte,
                half_close_after_several_mib,
                half_close_while_the_server_holds_unsent_bytes,
                peer_reset_mid_transfer_ends_only_that_connection,
                hundred_clients_with_random_sizes,
                slow_reader_keeps_server_memory_bounded,
                survives_running_out_of_file_descriptors,
                sigterm_exits_with_status_zero,
                sigint_exits_with_status_zero,
            );
            $crate::__conformance_kind_tests!(MODEL; $variant);
        }
    };
}

/// The same suite for one of the Python servers (`servers/python/`), run as
/// `python3 servers/python/SCRIPT [args] --addr 127.0.0.1:0`. Every test
/// first asks [`python::runs`] whether this machine can run it: without
/// `python3`, or without the server's third-party package, it says
/// `skipped` (and fails when `CI` is set).
///
/// ```text
/// echo_conformance::python_suite!(py_epoll, "epoll_server.py", args = ["--edge"], kind = Kind::Concurrent);
/// ```
#[macro_export]
macro_rules! python_suite {
    (
        $name:ident,
        $script:literal,
        args = [$($arg:expr),* $(,)?],
        kind = Kind :: $variant:ident $({ $($fields:tt)* })? $(,)?
    ) => {
        mod $name {
            const MODEL: $crate::Model = $crate::Model {
                binary: $crate::python::INTERPRETER,
                args: &[concat!(env!("CARGO_MANIFEST_DIR"), "/../python/", $script), $($arg),*],
                kind: $crate::Kind::$variant $({ $($fields)* })?,
            };
            $crate::__conformance_tests!(
                MODEL if $crate::python::runs;
                thousand_small_round_trips,
                eight_mib_in_uneven_pieces,
                half_close_after_one_byte,
                half_close_after_several_mib,
                half_close_while_the_server_holds_unsent_bytes,
                peer_reset_mid_transfer_ends_only_that_connection,
                hundred_clients_with_random_sizes,
                slow_reader_keeps_server_memory_bounded,
                survives_running_out_of_file_descriptors,
                sigterm_exits_with_status_zero,
                sigint_exits_with_status_zero,
            );
            $crate::__conformance_kind_tests!(MODEL if $crate::python::runs; $variant);
        }
    };
}

/// The checks only some kinds get (used by [`suite!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_kind_tests {
    ($model:ident $(if $guard:path)?; OneAtATime) => {
        $crate::__conformance_tests!($model $(if $guard)?; a_second_client_waits_until_the_first_leaves);
    };
    ($model:ident $(if $guard:path)?; BoundedPool) => {
        $crate::__conformance_tests!(
            $model $(if $guard)?;
            a_second_client_is_served_while_the_first_stays,
            clients_beyond_the_workers_wait_their_turn,
        );
    };
    ($model:ident $(if $guard:path)?; Concurrent) => {
        $crate::__conformance_tests!(
            $model $(if $guard)?;
            a_second_client_is_served_while_the_first_stays,
            serves_1100_connections_at_once,
        );
    };
    ($model:ident $(if $guard:path)?; SilentlyShedding) => {
        $crate::__conformance_kind_tests!($model $(if $guard)?; Concurrent);
    };
    ($model:ident $(if $guard:path)?; BusyPoll) => {
        $crate::__conformance_kind_tests!($model $(if $guard)?; Concurrent);
    };
    ($model:ident $(if $guard:path)?; Select) => {
        $crate::__conformance_tests!(
            $model $(if $guard)?;
            a_second_client_is_served_while_the_first_stays,
            closes_connections_beyond_fd_setsize,
        );
    };
    ($model:ident $(if $guard:path)?; ProcessPerClient) => {
        $crate::__conformance_kind_tests!($model $(if $guard)?; Concurrent);
        $crate::__conformance_tests!(
            $model $(if $guard)?;
            no_zombie_after_1000_short_connections,
            no_child_outlives_sigterm,
            no_child_outlives_sigkill,
        );
    };
    ($model:ident $(if $guard:path)?; PreforkPool) => {
        $crate::__conformance_kind_tests!($model $(if $guard)?; BoundedPool);
        $crate::__conformance_tests!($model $(if $guard)?; no_child_outlives_sigterm, no_child_outlives_sigkill);
    };
    ($model:ident $(if $guard:path)?; PreforkReactors) => {
        $crate::__conformance_kind_tests!($model $(if $guard)?; Concurrent);
        $crate::__conformance_tests!($model $(if $guard)?; no_child_outlives_sigterm, no_child_outlives_sigkill);
    };
}

/// One `#[test]` per named check (used by [`suite!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($model:ident; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::checks::$check(&$model);
            }
        )*
    };
    ($model:ident if $guard:path; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                if $guard(&$model) {
                    $crate::checks::$check(&$model);
                }
            }
        )*
    };
}
