//! The conformance suite (crate `echo-conformance`) run against this model.

echo_conformance::suite!(
    coroutine,
    env!("CARGO_BIN_EXE_server-coroutine"),
    kind = Kind::Concurrent
);
echo_conformance::http_suite!(
    http_coroutine,
    env!("CARGO_BIN_EXE_server-coroutine"),
    kind = Kind::Concurrent
);
