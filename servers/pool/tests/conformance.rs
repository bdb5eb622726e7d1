//! The conformance suite (crate `echo-conformance`) run against this model.

echo_conformance::suite!(
    pool,
    env!("CARGO_BIN_EXE_server-pool"),
    kind = Kind::BoundedPool { workers: 16 }
);
echo_conformance::http_suite!(
    http_pool,
    env!("CARGO_BIN_EXE_server-pool"),
    kind = Kind::BoundedPool { workers: 16 }
);
