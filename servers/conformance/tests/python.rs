//! The conformance suite run against every Python server
//! (`servers/python/*_server.py`), through its command. Where a Python
//! server cannot meet a check by design, its kind says so, as for the Rust
//! models: `select` closes descriptors past FD_SETSIZE, `nonblocking` spins,
//! `single`, `pool` and `prefork` serve a bounded number of clients, and
//! `uvloop` (libuv) closes the connections it has no descriptor for without
//! logging it.

echo_conformance::python_suite!(py_single, "single_server.py", args = [], kind = Kind::OneAtATime);
echo_conformance::python_suite!(
    py_threaded,
    "threaded_server.py",
    args = [],
    kind = Kind::Concurrent
);
echo_conformance::python_suite!(
    py_pool,
    "pool_server.py",
    args = ["--workers", "4"],
    kind = Kind::BoundedPool { workers: 4 }
);
echo_conformance::python_suite!(
    py_process,
    "process_server.py",
    args = [],
    kind = Kind::ProcessPerClient
);
echo_conformance::python_suite!(
    py_prefork,
    "prefork_server.py",
    args = ["--workers", "4"],
    kind = Kind::PreforkPool { workers: 4 }
);
echo_conformance::python_suite!(
    py_nonblocking,
    "nonblocking_server.py",
    args = [],
    kind = Kind::BusyPoll
);
echo_conformance::python_suite!(py_select, "select_server.py", args = [], kind = Kind::Select);
echo_conformance::python_suite!(py_epoll, "epoll_server.py", args = [], kind = Kind::Concurrent);
echo_conformance::python_suite!(
    py_epoll_edge,
    "epoll_server.py",
    args = ["--edge"],
    kind = Kind::Concurrent
);
echo_conformance::python_suite!(
    py_coroutine,
    "coroutine_server.py",
    args = [],
    kind = Kind::Concurrent
);
echo_conformance::python_suite!(
    py_asyncio,
    "asyncio_server.py",
    args = [],
    kind = Kind::Concurrent
);
echo_conformance::python_suite!(
    py_asyncio_protocol,
    "asyncio_server.py",
    args = ["--protocol-api"],
    kind = Kind::Concurrent
);
echo_conformance::python_suite!(
    py_greenlet,
    "greenlet_server.py",
    args = [],
    kind = Kind::Concurrent
);
echo_conformance::python_suite!(py_gevent, "gevent_server.py", args = [], kind = Kind::Concurrent);
echo_conformance::python_suite!(
    py_uvloop,
    "uvloop_server.py",
    args = [],
    kind = Kind::SilentlyShedding
);
echo_conformance::python_suite!(
    py_uvloop_protocol,
    "uvloop_server.py",
    args = ["--protocol-api"],
    kind = Kind::SilentlyShedding
);

/// Bad input to any Python server: an unknown option, a `--work` it does not
/// understand, a port in use. Each is one line on stderr and a non-zero
/// exit status, before any ready line.
#[test]
fn bad_input_is_one_line_and_a_non_zero_exit() {
    use std::process::{Command, Stdio};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../python");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let scripts = [
        "single",
        "threaded",
        "pool",
        "process",
        "prefork",
        "nonblocking",
        "select",
        "epoll",
        "coroutine",
        "asyncio",
        "greenlet",
        "gevent",
        "uvloop",
    ];
    for script in scripts {
        let path = format!("{dir}/{script}_server.py");
        if !echo_conformance::python::script_runs(&path) {
            continue;
        }
        for args in [
            &["--no-such-option"][..],
            &["--work", "cpu:-1"],
            &["--work", "sleep:10"],
            &["--port", &port],
        ] {
            let output = Command::new(echo_conformance::python::INTERPRETER)
                .arg(&path)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{script} {args:?}: exit 0");
            assert!(
                output.stdout.is_empty(),
                "{script} {args:?}: printed {:?}",
                output.stdout
            );
            assert_eq!(stderr.lines().count(), 1, "{script} {args:?}: {stderr}");
        }
    }
}

echo_conformance::udp_suite!(py_udp, python = "udp_server.py", args = []);

/// The same for the UDP server: an unknown option, a UDP port in use. A
/// server that binds anyway is killed after 10 s and fails the test.
#[test]
fn the_udp_server_says_what_is_wrong_in_one_line() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../python/udp_server.py");
    if !echo_conformance::python::script_runs(path) {
        return;
    }
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for args in [&["--no-such-option"][..], &["--port", &port]] {
        let mut child = Command::new(echo_conformance::python::INTERPRETER)
            .arg(path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("udp_server.py {args:?} still running after 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: exit 0");
        assert!(output.stdout.is_empty(), "{args:?}: printed {:?}", output.stdout);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}
