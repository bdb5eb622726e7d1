//! A server the harness starts: a process tree it spawns pinned, waits for,
//! watches, stops, and never leaves behind.
//!
//! - **Spawned pinned, from a keeper thread.** A short-lived-looking but
//!   long-lived thread pins itself to the server CPUs and spawns the server,
//!   so the child inherits that affinity from its first instruction (its
//!   runtimes size themselves to it) and the harness's other threads keep
//!   theirs. The keeper then waits until the server is gone: the child is
//!   spawned with `PR_SET_PDEATHSIG(SIGKILL)`, which fires when the *thread*
//!   that forked it ends, so that thread must outlive the server; if the
//!   harness itself is killed, the server dies with it.
//! - **Its own process group.** The server leads a new process group, so
//!   SIGTERM (and, after [`STOP_DEADLINE`], SIGKILL) reaches every process it
//!   started, a forking server's children and a shell script's programs
//!   included; what is left of the group after the leader exits is killed.
//! - **Ready** when it prints `listening on HOST:PORT` on stdout, or, for a
//!   command given a port, as soon as that port accepts a connection.
//! - **Registered** while it runs ([`super::guard`]): a harness stopped by
//!   SIGINT or SIGTERM kills every server it started before it exits.

use super::cgroup::ServerCgroup;
use super::memory::MemoryCgroup;
use super::{Launch, guard};
use crate::measure::syscalls::Counters;
use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a server may take to become ready, unless told otherwise.
pub const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long a server may take to exit after SIGTERM before it is killed.
pub const STOP_DEADLINE: Duration = Duration::from_secs(5);
/// Lines of the server's stderr kept for error messages.
const STDERR_TAIL: usize = 20;
/// How often a command's port is tried while waiting for it to be ready.
const PORT_PROBE_EVERY: Duration = Duration::from_millis(25);

/// Lines a server prints after SIGTERM that are kept (its exit report:
/// per-worker shares, say).
const EXIT_LOG: usize = 64;

/// How the harness knows the server is ready.
#[derive(Debug, Clone, Copy)]
pub enum Ready {
    /// The process contract of every model: its first line on stdout is
    /// `listening on HOST:PORT`, and exiting with
    /// [`echo_core::process::EXIT_UNSUPPORTED`] before it means this machine
    /// cannot run the model.
    Contract,
    /// A `listening on HOST:PORT` line on stdout, or this port on 127.0.0.1
    /// accepting a connection, whichever comes first (a user's command).
    LineOrPort(Option<u16>),
}

/// A running server process (and whatever it started).
pub struct ServerProcess {
    /// What the user would recognise: `model 'epoll'`, `command 'python3 …'`.
    name: String,
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<Stderr>>,
    readers: Vec<JoinHandle<()>>,
    keeper: Option<Keeper>,
    /// How it ended, once it has.
    status: Option<ExitStatus>,
    /// The server's own cgroup, where the harness could make one, and why
    /// not where it could not.
    cgroup: Option<ServerCgroup>,
    cgroup_missing: String,
    /// Whether this server's system calls are to be counted (its cgroup
    /// exists and the launch asked for it), or why not.
    syscalls: Result<(), String>,
}

/// What the server printed on stderr: the last lines, and from SIGTERM on,
/// its exit report.
#[derive(Debug, Default)]
struct Stderr {
    tail: VecDeque<String>,
    after_stop: Option<Vec<String>>,
}

/// A model that this machine cannot run (io_uring disabled, say): it said
/// why and exited with [`echo_core::process::EXIT_UNSUPPORTED`] before it was
/// ready. Recorded, not failed.
#[derive(Debug)]
pub struct Unsupported {
    pub name: String,
    pub reason: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} cannot run on this machine: {}",
            self.name, self.reason
        )
    }
}

impl std::error::Error for Unsupported {}

/// What a command prints on stderr, before exiting with
/// [`echo_core::process::EXIT_UNSUPPORTED`], to say this machine cannot run
/// it (the models print it too).
pub const UNSUPPORTED_LINE: &str = "unsupported on this machine";

/// The error for a server that could not be started: `Unsupported` when its
/// program is a bare name that is not on `PATH` (`python3` on a machine
/// without Python), a plain error otherwise (a path that does not exist is a
/// mistake in the command, not a missing program).
fn not_installed(name: &str, program: &str, error: anyhow::Error) -> anyhow::Error {
    let missing = error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|error| error.kind() == std::io::ErrorKind::NotFound);
    if missing && !program.contains('/') {
        return anyhow::Error::new(Unsupported {
            name: name.to_owned(),
            reason: format!("'{program}' is not installed here (not found on PATH)"),
        });
    }
    error.context(format!("cannot start {name}"))
}

/// The thread that spawned the server and must outlive it.
struct Keeper {
    release: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl ServerProcess {
    /// Spawns `argv` pinned to `cpus` in its own process group, as `launch`
    /// says, and waits until it is ready. `name` names it in errors. On any
    /// failure the whole process group is killed before the error is
    /// returned.
    pub fn spawn(
        name: &str,
        argv: &[String],
        cpus: &[usize],
        ready: Ready,
        launch: &Launch,
    ) -> anyhow::Result<ServerProcess> {
        let Some((program, args)) = argv.split_first() else {
            bail!("{name}: the command is empty");
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let cgroup = ServerCgroup::create();
        let syscalls = match (
            &cgroup,
            launch.count_syscalls,
            crate::measure::syscalls::refused(),
        ) {
            (_, false, _) => Err(String::from(
                "not counted for this cell (bench or run --no-syscalls, a suite sweep with syscalls = false, or a tour step that does not read them)",
            )),
            (Err(reason), true, _) => Err(reason.clone()),
            (Ok(_), true, Some(refused)) => Err(refused),
            (Ok(_), true, None) => Ok(()),
        };
        let cgroup_missing = cgroup.as_ref().err().cloned().unwrap_or_default();
        let cgroup = cgroup.ok();
        let cgroup_procs = match &cgroup {
            Some(cgroup) => [
                Some(cgroup.procs.as_raw_fd()),
                cgroup
                    .memory
                    .as_ref()
                    .ok()
                    .and_then(|memory| memory.procs.as_ref())
                    .map(AsRawFd::as_raw_fd),
            ],
            None => [None, None],
        };
        prepare_child(&mut command, launch.nofile_limit, cgroup_procs);
        let (child, keeper) =
            spawn_kept(command, cpus).map_err(|error| not_installed(name, program, error))?;
        guard::register(child.id());

        let shared_stderr = Arc::new(Mutex::new(Stderr::default()));
        let mut server = ServerProcess {
            name: name.to_owned(),
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: Arc::clone(&shared_stderr),
            readers: Vec::new(),
            keeper: Some(keeper),
            status: None,
            cgroup,
            cgroup_missing,
            syscalls,
        };
        let stderr = server.child.stderr.take().expect("stderr is piped");
        server.readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut kept = shared_stderr
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Some(exit_log) = kept.after_stop.as_mut()
                    && exit_log.len() < EXIT_LOG
                {
                    exit_log.push(line.clone());
                }
                if kept.tail.len() == STDERR_TAIL {
                    kept.tail.pop_front();
                }
                kept.tail.push_back(line);
            }
        }));
        let stdout = server.child.stdout.take().expect("stdout is piped");
        let (line_sender, lines) = mpsc::channel();
        let first_only = matches!(ready, Ready::Contract);
        server.readers.push(std::thread::spawn(move || {
            let mut reading = BufReader::new(stdout).lines();
            for line in reading.by_ref().map_while(Result::ok) {
                let announced = line.starts_with("listening on ");
                if first_only || announced {
                    let _ = line_sender.send(line);
                    break;
                }
            }
            for _ in reading.map_while(Result::ok) {} // keep the pipe drained
        }));
        match server.wait_ready(ready, &lines, launch.ready_within) {
            Ok(addr) => {
                server.addr = addr;
                Ok(server)
            }
            Err(error) => {
                server.kill_all();
                Err(error)
            }
        }
    }

    /// Waits for the ready line (or port), the process's exit, or the deadline.
    fn wait_ready(
        &mut self,
        ready: Ready,
        lines: &mpsc::Receiver<String>,
        ready_within: Duration,
    ) -> anyhow::Result<SocketAddr> {
        let deadline = Instant::now() + ready_within;
        let probe_port = match ready {
            Ready::LineOrPort(port) => port,
            Ready::Contract => None,
        };
        loop {
            let wait = match probe_port {
                Some(_) => PORT_PROBE_EVERY,
                None => Duration::from_millis(50),
            };
            match lines.recv_timeout(wait) {
                Ok(line) => {
                    return parse_ready_line(&line).with_context(|| {
                        format!(
                            "{} printed '{line}' instead of 'listening on HOST:PORT'",
                            self.name
                        )
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) if probe_port.is_none() => {
                    // Stdout closed without a ready line: it exited, or will.
                    let status = self.wait_for_exit(STOP_DEADLINE);
                    return Err(self.ended_before_ready(status, ready));
                }
                // A server that closed its stdout may still open its port.
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(PORT_PROBE_EVERY),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
                self.join_readers();
                return Err(self.ended_before_ready(Some(status), ready));
            }
            if let Some(port) = probe_port {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    return Ok(addr);
                }
            }
            if Instant::now() >= deadline {
                let waited_for = match probe_port {
                    Some(port) => format!("no 'listening on HOST:PORT' line and port {port} did not accept"),
                    None => String::from("no 'listening on HOST:PORT' line"),
                };
                bail!(
                    "{} was not ready within {} s ({waited_for}){}",
                    self.name,
                    ready_within.as_secs_f64(),
                    self.tail()
                );
            }
        }
    }

    /// The error for a server that ended before it was ready: `Unsupported`
    /// when a model said this machine cannot run it, or a command said so the
    /// models' way (the same exit status, after a line saying `unsupported on
    /// this machine`: the Python servers without their package).
    fn ended_before_ready(&self, status: Option<ExitStatus>, ready: Ready) -> anyhow::Error {
        let stderr = self
            .stderr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let said_so = matches!(ready, Ready::Contract)
            || stderr.tail.iter().any(|line| line.contains(UNSUPPORTED_LINE));
        if said_so && status.and_then(|status| status.code()) == Some(echo_core::process::EXIT_UNSUPPORTED) {
            let reason: Vec<&str> = stderr.tail.iter().map(String::as_str).collect();
            return anyhow::Error::new(Unsupported {
                name: self.name.clone(),
                reason: if reason.is_empty() {
                    String::from("it gave no reason")
                } else {
                    reason.join(" ")
                },
            });
        }
        drop(stderr);
        anyhow::anyhow!(
            "{} {} before it was ready{}",
            self.name,
            describe(status),
            self.tail()
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The CPU time of the whole tree, exited processes included, to the
    /// microsecond, where its cgroup keeps it (cgroup v2).
    pub fn cgroup_cpu_time(&self) -> Option<Duration> {
        self.cgroup.as_ref()?.cpu_time()
    }

    /// Opens counters of the whole tree's system calls (see
    /// [`crate::measure::syscalls`]); Err says why they are not counted.
    pub fn open_syscall_counters(&self) -> Result<Counters, String> {
        self.syscalls.clone()?;
        let cgroup = self
            .cgroup
            .as_ref()
            .ok_or_else(|| String::from("the server has no cgroup"))?;
        Counters::open(&cgroup.open_dir()?)
    }

    /// The server's memory cgroup, or why it has none.
    pub fn memory(&mut self) -> Result<&mut MemoryCgroup, String> {
        match self.cgroup.as_mut() {
            Some(cgroup) => cgroup.memory.as_mut().map_err(|reason| reason.clone()),
            None => Err(self.cgroup_missing.clone()),
        }
    }

    /// Whether [`ServerProcess::open_syscall_counters`] is worth trying,
    /// or why not.
    pub fn syscall_counting(&self) -> Result<(), String> {
        self.syscalls.clone()
    }

    /// How it ended, once [`ServerProcess::check_running`] has seen it end.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Errors when the server has already exited (it crashed or quit during
    /// the cell).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.status = Some(status);
            self.join_readers();
            bail!(
                "{} {} during the measurement{}",
                self.name,
                describe(Some(status)),
                self.tail()
            );
        }
        Ok(())
    }

    /// Stops the server: SIGTERM to its process group, then SIGKILL to
    /// whatever is left after [`STOP_DEADLINE`]. Returns how the leader
    /// exited and what it printed on stderr meanwhile (its exit report);
    /// errors when it had already exited, or ignored SIGTERM.
    pub fn stop(mut self) -> anyhow::Result<(ExitStatus, Vec<String>)> {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.status = Some(status);
            self.join_readers();
            let error = format!(
                "{} {} before it was stopped{}",
                self.name,
                describe(Some(status)),
                self.tail()
            );
            self.kill_all();
            bail!(error);
        }
        self.stderr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .after_stop = Some(Vec::new());
        let _ = killpg(self.group(), Signal::SIGTERM);
        let status = self.wait_for_exit(STOP_DEADLINE);
        let left = self.kill_all();
        if left > 0 && status.is_some() {
            eprintln!(
                "harness: {} left {left} process{} running after it exited; killed",
                self.name,
                if left == 1 { "" } else { "es" }
            );
        }
        let exit_log = self
            .stderr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .after_stop
            .take()
            .unwrap_or_default();
        match status {
            Some(status) => Ok((status, exit_log)),
            None => bail!(
                "{} did not exit within {} s of SIGTERM (killed){}",
                self.name,
                STOP_DEADLINE.as_secs(),
                self.tail()
            ),
        }
    }

    fn group(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits up to `deadline` for the leader to exit.
    fn wait_for_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + deadline;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    self.join_readers();
                    return Some(status);
                }
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                _ => return None,
            }
        }
    }

    /// Kills the whole process group and every descendant (a stopped one is
    /// continued first so that it can die), reaps the leader and releases
    /// the keeper. Returns how many processes other than the leader were
    /// still there.
    fn kill_all(&mut self) -> usize {
        let mut members = super::tree::members(self.child.id() as i32);
        if let Some(cgroup) = &self.cgroup {
            members.extend(cgroup.pids());
            members.sort_unstable();
            members.dedup();
        }
        let others = members
            .iter()
            .filter(|&&pid| pid != self.child.id() as i32)
            .count();
        let _ = killpg(self.group(), Signal::SIGCONT);
        let _ = killpg(self.group(), Signal::SIGKILL);
        for &pid in &members {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill();
        }
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        self.join_readers();
        guard::unregister(self.child.id());
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.release.send(());
            let _ = keeper.thread.join();
        }
        others
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// The last lines of the server's stderr, for an error message.
    fn tail(&self) -> String {
        let stderr = self
            .stderr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let tail = &stderr.tail;
        if tail.is_empty() {
            String::from(" (no output on stderr)")
        } else {
            let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
            format!("; its stderr ends with: {}", lines.join(" | "))
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // A server left behind by an error must not outlive the cell.
        if self.keeper.is_some() {
            self.kill_all();
        }
    }
}

/// Spawns `command` from a new thread pinned to `cpus`; the thread stays
/// until released, because the child's parent-death signal is tied to it.
fn spawn_kept(mut command: Command, cpus: &[usize]) -> anyhow::Result<(Child, Keeper)> {
    let (spawned_sender, spawned) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let cpus = cpus.to_vec();
    let thread = std::thread::Builder::new()
        .name("server-keeper".into())
        .spawn(move || {
            let result = if cpus.is_empty() {
                Ok(())
            } else {
                echo_core::affinity::pin_to(&cpus)
                    .map_err(|error| anyhow::anyhow!("cannot pin the server to CPUs {cpus:?}: {error}"))
            };
            let result = result.and_then(|()| command.spawn().map_err(anyhow::Error::from));
            let spawned_ok = result.is_ok();
            let _ = spawned_sender.send(result);
            if spawned_ok {
                let _ = released.recv();
            }
        })
        .context("cannot start a thread")?;
    let child = spawned
        .recv()
        .context("the spawning thread ended unexpectedly")??;
    Ok((child, Keeper { release, thread }))
}

/// What the child does between fork and exec. It gets SIGKILL when the
/// thread that spawned it ends, so a server never outlives a harness that was
/// killed; it starts with no signal blocked (the harness blocks its stop
/// signals for its signal thread, and a blocked mask survives exec: a server
/// would never see SIGTERM); it gets its descriptor limit, if one is set;
/// and it moves itself into the server's own cgroups (the main one, and a
/// memory cgroup in another hierarchy), where they were made.
#[allow(unsafe_code)]
fn prepare_child(
    command: &mut Command,
    nofile_limit: Option<u64>,
    cgroup_procs: [Option<std::os::fd::RawFd>; 2],
) {
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes the prctl(2), sigprocmask(2), setrlimit(2) and write(2) system
    // calls, which are async-signal-safe; it touches no lock, allocation or
    // other state shared with the parent's threads. The descriptors it writes
    // to are the server cgroups' `cgroup.procs`, which the `ServerCgroup`
    // keeps open until after the spawn.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            nix::sys::signal::SigSet::empty().thread_set_mask()?;
            if let Some(limit) = nofile_limit {
                nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, limit, limit)?;
            }
            for procs in cgroup_procs.into_iter().flatten() {
                if libc::write(procs, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// `listening on HOST:PORT` → the address to connect to (an unspecified
/// host such as 0.0.0.0 means this machine: 127.0.0.1).
fn parse_ready_line(line: &str) -> anyhow::Result<SocketAddr> {
    let text = line
        .strip_prefix("listening on ")
        .context("not a ready line")?
        .trim();
    let mut addr: SocketAddr = text.parse().context("not HOST:PORT")?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        });
    }
    Ok(addr)
}

/// "exited with status 1", "was killed by signal 9", for error messages.
pub fn describe(status: Option<ExitStatus>) -> String {
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}"),
            _ => format!("ended ({status})"),
        },
        None => String::from("ended"),
    }
}

/// How an exit is recorded in a cell: `status 0`, `signal 9`.
pub fn exit_text(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_parse_and_unspecified_hosts_mean_loopback() {
        assert_eq!(
            parse_ready_line("listening on 127.0.0.1:7000").unwrap(),
            "127.0.0.1:7000".parse().unwrap()
        );
        assert_eq!(
            parse_ready_line("listening on 0.0.0.0:7000").unwrap(),
            "127.0.0.1:7000".parse().unwrap()
        );
        assert!(parse_ready_line("listening on nowhere").is_err());
        assert!(parse_ready_line("hello").is_err());
    }
}
