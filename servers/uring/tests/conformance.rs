//! The conformance suite (crate `echo-conformance`) run against this model.

echo_conformance::suite!(uring, env!("CARGO_BIN_EXE_server-uring"), kind = Kind::Concurrent);
// The SQPOLL thread spins for a second after each submission, so its CPU
// time while idle is not checked, as for a busy-polling model.
echo_conformance::suite!(
    uring_sqpoll,
    env!("CARGO_BIN_EXE_server-uring"),
    args = ["--sqpoll"],
    kind = Kind::BusyPoll
);
echo_conformance::http_suite!(
    http_uring,
    env!("CARGO_BIN_EXE_server-uring"),
    kind = Kind::Concurrent
);
