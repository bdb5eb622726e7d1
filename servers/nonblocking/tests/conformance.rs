//! The conformance suite (crate `echo-conformance`) run against this model.

echo_conformance::suite!(
    nonblocking,
    env!("CARGO_BIN_EXE_server-nonblocking"),
    kind = Kind::BusyPoll
);
echo_conformance::http_suite!(
    http_nonblocking,
    env!("CARGO_BIN_EXE_server-nonblocking"),
    kind = Kind::BusyPoll
);
