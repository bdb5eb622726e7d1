//! The conformance suite (crate `echo-conformance`) run against this model.

echo_conformance::suite!(
    process,
    env!("CARGO_BIN_EXE_server-process"),
    kind = Kind::ProcessPerClient
);
echo_conformance::suite!(
    prefork_blocking,
    env!("CARGO_BIN_EXE_server-process"),
    args = ["--prefork", "4", "--accept", "blocking"],
    kind = Kind::PreforkPool { workers: 4 }
);
echo_conformance::suite!(
    prefork_epoll,
    env!("CARGO_BIN_EXE_server-process"),
    args = ["--prefork", "4", "--accept", "epoll"],
    kind = Kind::PreforkReactors { workers: 4 }
);
echo_conformance::suite!(
    prefork_exclusive,
    env!("CARGO_BIN_EXE_server-process"),
    args = ["--prefork", "4", "--accept", "exclusive"],
    kind = Kind::PreforkReactors { workers: 4 }
);
echo_conformance::suite!(
    prefork_reuseport,
    env!("CARGO_BIN_EXE_server-process"),
    args = ["--prefork", "4", "--accept", "reuseport"],
    kind = Kind::PreforkReactors { workers: 4 }
);
echo_conformance::http_suite!(
    http_process,
    env!("CARGO_BIN_EXE_server-process"),
    kind = Kind::ProcessPerClient
);
echo_conformance::http_suite!(
    http_prefork_exclusive,
    env!("CARGO_BIN_EXE_server-process"),
    args = ["--prefork", "4", "--accept", "exclusive"],
    kind = Kind::PreforkReactors { workers: 4 }
);
