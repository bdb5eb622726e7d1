//! The conformance suite (crate `echo-conformance`) run against this model.

echo_conformance::suite!(
    reuseport,
    env!("CARGO_BIN_EXE_server-reuseport"),
    kind = Kind::Concurrent
);
echo_conformance::suite!(
    reuseport_two_workers,
    env!("CARGO_BIN_EXE_server-reuseport"),
    args = ["--workers", "2"],
    kind = Kind::Concurrent
);
echo_conformance::http_suite!(
    http_reuseport,
    env!("CARGO_BIN_EXE_server-reuseport"),
    kind = Kind::Concurrent
);
