//! The conformance suite (crate `echo-conformance`) run against this model.

echo_conformance::suite!(
    threaded,
    env!("CARGO_BIN_EXE_server-threaded"),
    kind = Kind::Concurrent
);
echo_conformance::http_suite!(
    http_threaded,
    env!("CARGO_BIN_EXE_server-threaded"),
    kind = Kind::Concurrent
);
