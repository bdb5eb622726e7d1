//! The conformance suite (crate `echo-conformance`) run against this model.

echo_conformance::suite!(
    async_tasks,
    env!("CARGO_BIN_EXE_server-async"),
    kind = Kind::Concurrent
);
echo_conformance::suite!(
    async_current_thread,
    env!("CARGO_BIN_EXE_server-async"),
    args = ["--runtime", "current-thread"],
    kind = Kind::Concurrent
);
echo_conformance::http_suite!(
    http_async,
    env!("CARGO_BIN_EXE_server-async"),
    kind = Kind::Concurrent
);
echo_conformance::http_suite!(
    http_async_current_thread,
    env!("CARGO_BIN_EXE_server-async"),
    args = ["--runtime", "current-thread"],
    kind = Kind::Concurrent
);
