//! A failed fork closes that client with one log line, and the server keeps
//! accepting. A seccomp filter makes every `clone` of the server fail with
//! EAGAIN, as a full process table or a pids cgroup limit would.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_failed_fork_closes_that_client_and_the_server_keeps_accepting() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server-process"));
    command
        .args(["--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    echo_conformance::seccomp::refuse(&mut command, &[libc::SYS_clone, libc::SYS_clone3], libc::EAGAIN);
    let mut server = command.spawn().expect("start server-process");
    let guard = KillOnDrop(Pid::from_raw(server.id() as i32));
    let mut ready = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut ready)
        .expect("the ready line");
    let addr = ready
        .trim()
        .strip_prefix("listening on ")
        .expect("a ready line")
        .to_owned();

    for client in 0..3 {
        let mut stream = TcpStream::connect(&addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = stream.write_all(b"hello");
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("client {client}: expected the connection closed, got {other:?}"),
        }
    }
    assert!(
        server.try_wait().unwrap().is_none(),
        "the server must keep running"
    );
    kill(guard.0, Signal::SIGTERM).expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 5 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    std::mem::forget(guard); // Reaped: its pid is no longer ours to signal.
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    server.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let failures = stderr
        .lines()
        .filter(|line| line.contains("cannot fork a process for this client"))
        .count();
    assert_eq!(failures, 3, "one line per failed fork:\n{stderr}");
    assert!(stderr.contains("3 forks failed"), "{stderr}");
}

/// Kills the server if the test fails before it has exited.
struct KillOnDrop(Pid);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
    }
}
