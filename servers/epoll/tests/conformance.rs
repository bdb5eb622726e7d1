//! The conformance suite (crate `echo-conformance`) run against this model.

echo_conformance::suite!(epoll, env!("CARGO_BIN_EXE_server-epoll"), kind = Kind::Concurrent);
echo_conformance::suite!(
    epoll_edge,
    env!("CARGO_BIN_EXE_server-epoll"),
    args = ["--edge"],
    kind = Kind::Concurrent
);
echo_conformance::http_suite!(
    http_epoll,
    env!("CARGO_BIN_EXE_server-epoll"),
    kind = Kind::Concurrent
);
echo_conformance::http_suite!(
    http_epoll_edge,
    env!("CARGO_BIN_EXE_server-epoll"),
    args = ["--edge"],
    kind = Kind::Concurrent
);
