//! A failed fork closes that client with one log line, and the server keeps
//! accepting. A seccomp filter makes every `clone` of the server fail with
//! EAGAIN, as a full process table or a pids cgroup limit would.

use echo_conformance::{Kind, Launch, Model, Refusal, Server};
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const MODEL: Model = Model {
    binary: env!("CARGO_BIN_EXE_server-process"),
    args: &[],
    kind: Kind::ProcessPerClient,
};

#[test]
fn a_failed_fork_closes_that_client_and_the_server_keeps_accepting() {
    let launch = Launch {
        refuse: Some(Refusal {
            syscalls: &[libc::SYS_clone, libc::SYS_clone3],
            errno: libc::EAGAIN,
        }),
        ..Launch::default()
    };
    let server = Server::start(MODEL, launch).unwrap_or_else(|error| panic!("{error}"));

    for client in 0..3 {
        let mut stream = TcpStream::connect(server.addr()).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = stream.write_all(b"hello");
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("client {client}: expected the connection closed, got {other:?}"),
        }
    }
    assert!(server.exit_status().is_none(), "the server must keep running");
    server.signal(Signal::SIGTERM).expect("SIGTERM");
    let status = server
        .wait_for_exit(Duration::from_secs(5))
        .expect("no exit within 5 s of SIGTERM");
    assert!(status.success(), "{status}");
    // The summary is the last line: once it is in, so are the lines before.
    let summary = server.wait_for_stderr(Duration::from_secs(5), |line| line.contains("3 forks failed"));
    let stderr = server.stderr_lines().join("\n");
    assert!(summary, "{stderr}");
    let failures = stderr
        .lines()
        .filter(|line| line.contains("cannot fork a process for this client"))
        .count();
    assert_eq!(failures, 3, "one line per failed fork:\n{stderr}");
}
