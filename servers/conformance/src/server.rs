//! The model under test as a child process, killed when the guard drops.
//!
//! [`Server::start`] runs `BINARY [model options] --addr 127.0.0.1:0`, waits
//! (with a deadline) for the ready line `listening on HOST:PORT` on its
//! stdout, and keeps two threads draining stdout and stderr so the child never
//! blocks on a full pipe. Its stderr lines are kept for assertions and for
//! failure reports. Memory and CPU time are read from `/proc/PID/*`, summed
//! over the server's process tree (a model may fork).

use crate::Model;
use crate::client;
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, SysconfVar, sysconf};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long a model may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How the child process is started, beyond the model's own options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Launch {
    /// Sets RLIMIT_NOFILE (soft and hard) of the child to this many
    /// descriptors, so it cannot raise it back.
    pub fd_limit: Option<u64>,
    /// System calls the child and everything it starts are refused (see
    /// [`crate::seccomp::refuse`]).
    pub refuse: Option<Refusal>,
}

/// System calls (numbers, e.g. `libc::SYS_clone`) made to fail with `errno`.
#[derive(Debug, Clone, Copy)]
pub struct Refusal {
    pub syscalls: &'static [i64],
    pub errno: i32,
}

/// A running model process; killed and reaped on drop.
#[derive(Debug)]
pub struct Server {
    model: Model,
    child: Mutex<Child>,
    pid: Pid,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the model and waits for its ready line.
    pub fn start(model: Model, launch: Launch) -> Result<Server, String> {
        let mut command = Command::new(model.binary);
        command
            .args(model.args)
            .args(["--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(limit) = launch.fd_limit {
            // SAFETY: the closure runs in the forked child before exec and only
            // calls setrlimit(2), which is async-signal-safe; it allocates
            // nothing and takes no lock (the error conversion is a plain copy).
            unsafe {
                command.pre_exec(move || {
                    setrlimit(Resource::RLIMIT_NOFILE, limit, limit).map_err(std::io::Error::from)
                });
            }
        }
        if let Some(refusal) = launch.refuse {
            crate::seccomp::refuse(&mut command, refusal.syscalls, refusal.errno);
        }
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", model.binary))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let pid = Pid::from_raw(child.id() as i32);
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        drain_stderr(stderr, Arc::clone(&stderr_lines));
        let ready = read_ready_line(stdout);
        // From here on the guard owns the child: any early return kills it.
        let mut server = Server {
            model,
            child: Mutex::new(child),
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: stderr_lines,
        };
        let line = match ready.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                return Err(server.report(&format!(
                    "no ready line on stdout within {} s",
                    READY_TIMEOUT.as_secs()
                )));
            }
            Err(RecvTimeoutError::Disconnected) => {
                server.wait_for_exit(Duration::from_secs(1));
                return Err(server.report("stdout closed before the ready line"));
            }
        };
        server.addr = line
            .strip_prefix("listening on ")
            .and_then(|addr| addr.trim().parse().ok())
            .ok_or_else(|| server.report(&format!("not a ready line: {line:?}")))?;
        Ok(server)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn model(&self) -> Model {
        self.model
    }

    /// A new client connection with timeouts set.
    pub fn connect(&self) -> Result<TcpStream, String> {
        client::connect(self.addr)
    }

    /// Every line the server wrote to stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        lock(&self.stderr).clone()
    }

    /// Waits up to `timeout` for a stderr line that satisfies `wanted`.
    pub fn wait_for_stderr(&self, timeout: Duration, wanted: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if lock(&self.stderr).iter().any(|line| wanted(line)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the server, in KiB: `VmRSS` of `/proc/PID/status`,
    /// summed over the process and its descendants (a model may fork).
    pub fn rss_kib(&self) -> Result<u64, String> {
        let own = rss_kib(self.pid.as_raw())?;
        let children: u64 = self
            .descendants()
            .iter()
            .filter_map(|process| rss_kib(process.pid).ok())
            .sum();
        Ok(own + children)
    }

    /// CPU time the server used so far, user plus system, all threads, its
    /// descendants included: the process's own (`utime + stime` of
    /// `/proc/PID/stat`), its reaped children's (`cutime + cstime`), and its
    /// live descendants'.
    pub fn cpu_time(&self) -> Result<Duration, String> {
        let own =
            read_stat(self.pid.as_raw()).ok_or_else(|| format!("cannot read /proc/{}/stat", self.pid))?;
        let live: u64 = self.descendants().iter().map(|process| process.cpu_ticks).sum();
        let ticks = own.cpu_ticks + own.children_cpu_ticks + live;
        let per_second = sysconf(SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|&hz| hz > 0)
            .unwrap_or(100) as f64;
        Ok(Duration::from_secs_f64(ticks as f64 / per_second))
    }

    /// Every process descended from the server (children, their children
    /// and so on), zombies included; empty for a model that never forks.
    pub fn descendants(&self) -> Vec<Process> {
        descendants(self.pid.as_raw())
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) -> Result<(), String> {
        kill(self.pid, signal).map_err(|error| format!("cannot send {signal}: {error}"))
    }

    /// The exit status, if the process has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        lock(&self.child).try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_for_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Fails unless the process is still running.
    pub fn assert_running(&self) -> Result<(), String> {
        match self.exit_status() {
            None => Ok(()),
            Some(status) => Err(format!("the server died ({status})")),
        }
    }

    /// Kills and reaps the process (idempotent).
    pub fn kill(&self) {
        let mut child = lock(&self.child);
        let _ = child.kill();
        let _ = child.wait();
    }

    /// `message`, then the server's state and the tail of its stderr.
    pub fn report(&self, message: &str) -> String {
        const TAIL: usize = 30;
        let state = match self.exit_status() {
            None => "still running".to_owned(),
            Some(status) => format!("exited: {status}"),
        };
        let lines = self.stderr_lines();
        let skipped = lines.len().saturating_sub(TAIL);
        let mut report = format!(
            "{message}\n--- server `{}` (pid {}, {state}); stderr, {} lines",
            self.model,
            self.pid,
            lines.len()
        );
        if skipped > 0 {
            report.push_str(&format!(", first {skipped} not shown"));
        }
        report.push_str(" ---");
        for line in &lines[skipped..] {
            report.push('\n');
            report.push_str(line);
        }
        report
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps every stderr line of the child in `lines`.
fn drain_stderr(stderr: impl std::io::Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            lock(&lines).push(line);
        }
    });
}

/// Sends the first stdout line on the returned channel, then drains the rest
/// (the contract says there is none) so the child never blocks on stdout.
fn read_ready_line(stdout: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = sender.send(line);
        }
        drop(sender);
        for _ in lines {}
    });
    receiver
}

/// One process as `/proc/PID/stat` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    pub parent: i32,
    /// `R`, `S`, `D`, `Z` (a zombie: exited, not yet reaped), ...
    pub state: char,
    /// When it started, in clock ticks since boot: with the pid, it names a
    /// process even after the pid is reused.
    pub started: u64,
    /// `utime + stime`, in clock ticks.
    pub cpu_ticks: u64,
    /// `cutime + cstime`: its reaped children's, in clock ticks.
    pub children_cpu_ticks: u64,
}

impl Process {
    /// Whether this process still runs: same pid and start time, and not a
    /// zombie.
    pub fn is_running(&self) -> bool {
        read_stat(self.pid).is_some_and(|now| now.started == self.started && !matches!(now.state, 'Z' | 'X'))
    }

    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }
}

/// Reads `/proc/PID/stat`; `None` once the process is gone.
pub fn read_stat(pid: i32) -> Option<Process> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (in parentheses, may hold spaces),
    // numbered from the state, field 3 of the line.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some(Process {
        pid,
        parent: number(4)? as i32,
        state: fields.first()?.chars().next()?,
        started: number(22)?,
        cpu_ticks: number(14)? + number(15)?,
        children_cpu_ticks: number(16)? + number(17)?,
    })
}

/// Every process descended from `root`, found by walking parent links over
/// all of `/proc`.
pub fn descendants(root: i32) -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let all: Vec<Process> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(read_stat)
        .collect();
    let mut found = Vec::new();
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for process in all.iter().filter(|process| process.parent == parent) {
            parents.push(process.pid);
            found.push(*process);
        }
    }
    found
}

fn rss_kib(pid: i32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|error| format!("{path}: {error}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path} has no VmRSS line"))
}
