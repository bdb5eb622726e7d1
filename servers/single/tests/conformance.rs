//! The conformance suite (crate `echo-conformance`) run against this model.

echo_conformance::suite!(
    single,
    env!("CARGO_BIN_EXE_server-single"),
    kind = Kind::OneAtATime
);
echo_conformance::http_suite!(
    http_single,
    env!("CARGO_BIN_EXE_server-single"),
    kind = Kind::OneAtATime
);
