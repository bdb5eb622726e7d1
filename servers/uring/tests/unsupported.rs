//! Where io_uring is unavailable, the server exits at once with status 3
//! (`EXIT_UNSUPPORTED`) and one line naming the cause and the fix, before
//! any ready line. A seccomp filter makes `io_uring_setup` fail in the child,
//! as a container's profile would.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the server with `io_uring_setup` failing with `errno`; returns its
/// exit code, stdout and stderr.
fn run_with_io_uring_setup_failing(errno: i32) -> (Option<i32>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server-uring"));
    command
        .args(["--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    echo_conformance::seccomp::refuse(&mut command, &[libc::SYS_io_uring_setup], errno);
    let mut child = command.spawn().expect("start server-uring");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for server-uring") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server-uring still runs 10 s after io_uring_setup failed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (status.code(), stdout, stderr)
}

fn assert_unsupported(errno: i32, cause: &str) {
    let (code, stdout, stderr) = run_with_io_uring_setup_failing(errno);
    assert_eq!(code, Some(3), "exit status; stderr: {stderr}");
    assert_eq!(stdout, "", "no ready line when the model cannot run");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {stderr}");
    assert!(
        lines[0].starts_with("uring: unsupported on this machine: io_uring_setup:"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(cause),
        "the line should name {cause:?}: {}",
        lines[0]
    );
}

#[test]
fn a_seccomp_profile_that_refuses_io_uring_is_reported_as_unsupported() {
    // On a machine where io_uring is disabled by sysctl the line names the
    // sysctl instead, which is the better diagnosis there.
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").unwrap_or_default();
    let cause = if matches!(disabled.trim(), "1" | "2") {
        "kernel.io_uring_disabled"
    } else {
        "seccomp"
    };
    assert_unsupported(libc::EPERM, cause);
}

#[test]
fn a_kernel_without_io_uring_is_reported_as_unsupported() {
    assert_unsupported(libc::ENOSYS, "no io_uring");
}
