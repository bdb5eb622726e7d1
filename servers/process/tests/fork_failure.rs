//! A failed fork closes that client with one log line, and the server keeps
//! accepting. A seccomp filter makes every `clone` of the server fail with
//! EAGAIN, as a full process table or a pids cgroup limit would.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Installs a seccomp filter: `clone` and `clone3` fail with EAGAIN, every
/// other system call is allowed.
fn fail_clone() -> std::io::Result<()> {
    let jump_if = |nr: libc::c_long, skip_false: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt: 0,
        jf: skip_false,
        k: nr as u32,
    };
    let statement = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let eagain = statement(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | libc::EAGAIN as u32,
    );
    let filter = [
        // The system call number: `nr`, at offset 0 of `seccomp_data`.
        statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        jump_if(libc::SYS_clone, 1),
        eagain,
        jump_if(libc::SYS_clone3, 1),
        eagain,
        statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: plain prctl(2) calls; `program` and `filter` outlive them.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[test]
fn a_failed_fork_closes_that_client_and_the_server_keeps_accepting() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server-process"));
    command
        .args(["--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and makes
    // only prctl(2) calls on memory it owns; it allocates nothing.
    unsafe {
        command.pre_exec(fail_clone);
    }
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
