//! Where io_uring is unavailable, the server exits at once with status 3
//! (`EXIT_UNSUPPORTED`) and one line naming the cause and the fix, before
//! any ready line. A seccomp filter makes `io_uring_setup` fail in the child,
//! as a container's profile would.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the server with `io_uring_setup` failing with `errno`; returns its
/// exit code, stdout and stderr.
fn run_with_io_uring_setup_failing(errno: u32) -> (Option<i32>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server-uring"));
    command
        .args(["--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and makes
    // only prctl(2) calls on memory it owns; it allocates nothing.
    unsafe {
        command.pre_exec(move || fail_io_uring_setup(errno));
    }
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

/// Installs a seccomp filter: `io_uring_setup` fails with `errno`, every
/// other system call is allowed.
fn fail_io_uring_setup(errno: u32) -> std::io::Result<()> {
    let statement = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let filter = [
        // The system call number: `nr`, at offset 0 of `seccomp_data`.
        statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ERRNO | errno),
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

fn assert_unsupported(errno: u32, cause: &str) {
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
    assert_unsupported(libc::EPERM as u32, cause);
}

#[test]
fn a_kernel_without_io_uring_is_reported_as_unsupported() {
    assert_unsupported(libc::ENOSYS as u32, "no io_uring");
}
