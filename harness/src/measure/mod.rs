//! Watching the server process: spawning it pinned, waiting for its ready
//! line, sampling it from `/proc/PID`, stopping it and checking how it ended.
//! Also the load threads' own CPU time.

use anyhow::{Context, bail};
use nix::sched::{sched_getaffinity, sched_setaffinity};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a model may take to print `listening on HOST:PORT`.
pub const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long a model may take to exit after SIGTERM.
pub const STOP_DEADLINE: Duration = Duration::from_secs(5);
/// Lines of the server's stderr kept for error messages.
const STDERR_TAIL: usize = 20;
/// `/proc/PID/stat` counts CPU time in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SECOND: u64 = 100;

/// CPU time (user + system) of the calling thread so far.
pub fn thread_cpu_time() -> Duration {
    match getrusage(UsageWho::RUSAGE_THREAD) {
        Ok(usage) => timeval(usage.user_time()) + timeval(usage.system_time()),
        Err(_) => Duration::ZERO,
    }
}

fn timeval(value: nix::sys::time::TimeVal) -> Duration {
    Duration::from_secs(value.tv_sec().max(0) as u64) + Duration::from_micros(value.tv_usec().max(0) as u64)
}

/// A model running as `harness serve MODEL` in a child process.
pub struct ServerProcess {
    model: String,
    child: Child,
    pub addr: SocketAddr,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl ServerProcess {
    /// Starts `harness serve MODEL --addr 127.0.0.1:0 ARGS` pinned to `cpus`
    /// (the child inherits the spawning thread's affinity, so its threads and
    /// any runtime it sizes are confined from the first instruction) and
    /// waits for its ready line.
    pub fn spawn(model: &str, model_args: &[String], cpus: &[usize]) -> anyhow::Result<ServerProcess> {
        let exe = std::env::current_exe().context("cannot find the harness executable")?;
        let mut command = Command::new(exe);
        command
            .args(["serve", model, "--addr", "127.0.0.1:0"])
            .args(model_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let saved = sched_getaffinity(Pid::from_raw(0)).context("cannot read the CPU affinity")?;
        if !cpus.is_empty() {
            echo_core::affinity::pin_to(cpus)
                .with_context(|| format!("cannot pin the server to CPUs {cpus:?}"))?;
        }
        let spawned = command.spawn();
        sched_setaffinity(Pid::from_raw(0), &saved).context("cannot restore the CPU affinity")?;
        let mut child = spawned.with_context(|| format!("cannot start model '{model}'"))?;

        let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        let mut readers = Vec::new();
        let stderr = child.stderr.take().expect("stderr is piped");
        let tail = Arc::clone(&stderr_tail);
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut tail = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready_sender, ready) = mpsc::channel();
        readers.push(std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = ready_sender.send(first);
            for _ in lines.map_while(Result::ok) {} // keep the pipe drained
        }));

        let mut server = ServerProcess {
            model: model.to_string(),
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr_tail,
            readers,
        };
        let line = match ready.recv_timeout(READY_DEADLINE) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => {
                let status = server.wait_for_exit(STOP_DEADLINE);
                bail!(
                    "model '{model}' {} before it was ready{}",
                    describe(status),
                    server.tail()
                );
            }
            Err(_) => {
                server.kill();
                bail!(
                    "model '{model}' printed no ready line within {} s{}",
                    READY_DEADLINE.as_secs(),
                    server.tail()
                );
            }
        };
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|addr| addr.trim().parse().ok());
        match addr {
            Some(addr) => server.addr = addr,
            None => {
                server.kill();
                bail!("model '{model}' printed '{line}' instead of 'listening on HOST:PORT'");
            }
        }
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Errors when the server has already exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.join_readers();
            bail!(
                "model '{}' {} during the measurement{}",
                self.model,
                describe(Some(status)),
                self.tail()
            );
        }
        Ok(())
    }

    /// Stops the server with SIGTERM and checks that it exited with status 0.
    pub fn stop(mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.join_readers();
            bail!(
                "model '{}' {} before it was stopped{}",
                self.model,
                describe(Some(status)),
                self.tail()
            );
        }
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let status = self.wait_for_exit(STOP_DEADLINE);
        match status {
            Some(status) if status.success() => Ok(()),
            Some(status) => bail!(
                "model '{}' {} when stopped with SIGTERM{}",
                self.model,
                describe(Some(status)),
                self.tail()
            ),
            None => {
                self.kill();
                bail!(
                    "model '{}' did not exit within {} s of SIGTERM{}",
                    self.model,
                    STOP_DEADLINE.as_secs(),
                    self.tail()
                )
            }
        }
    }

    /// Waits up to `deadline` for the child to exit.
    fn wait_for_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + deadline;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.join_readers();
                    return Some(status);
                }
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_readers();
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// The last lines of the server's stderr, for an error message.
    fn tail(&self) -> String {
        let tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
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
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}"),
            _ => format!("ended ({status})"),
        },
        None => String::from("ended"),
    }
}

/// One look at a process in `/proc/PID`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// User + system CPU time of all its threads, living and dead.
    pub cpu: Duration,
    pub rss_kib: u64,
    /// Peak resident set size (VmHWM).
    pub rss_peak_kib: u64,
    pub threads: u64,
    /// Summed over its living threads (`/proc/PID/task/*/status`).
    pub ctx_voluntary: u64,
    pub ctx_involuntary: u64,
    pub fds: u64,
}

/// Reads `/proc/PID`. `detailed` also lists `/proc/PID/fd` and reads every
/// thread's status for context switches: costly with thousands of
/// connections or threads, so only at the ends of the measurement and now and
/// then between.
pub fn sample(pid: u32, detailed: bool) -> std::io::Result<ProcSample> {
    let root = format!("/proc/{pid}");
    let stat = std::fs::read_to_string(format!("{root}/stat"))?;
    // Fields after the command name, which may itself contain spaces or ')'.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat(5); field 3 is index 0 here.
    let cpu_ticks = ticks(11) + ticks(12);
    let mut sample = ProcSample {
        cpu: Duration::from_millis(cpu_ticks * 1000 / TICKS_PER_SECOND),
        ..ProcSample::default()
    };
    let status = std::fs::read_to_string(format!("{root}/status"))?;
    for line in status.lines() {
        let mut parts = line.split_whitespace();
        let key = parts.next().unwrap_or("");
        let value = parts
            .next()
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0);
        match key {
            "VmRSS:" => sample.rss_kib = value,
            "VmHWM:" => sample.rss_peak_kib = value,
            "Threads:" => sample.threads = value,
            _ => {}
        }
    }
    if !detailed {
        return Ok(sample);
    }
    if let Ok(tasks) = std::fs::read_dir(format!("{root}/task")) {
        for task in tasks.flatten() {
            let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
                continue;
            };
            for line in status.lines() {
                if let Some(value) = line.strip_prefix("voluntary_ctxt_switches:") {
                    sample.ctx_voluntary += value.trim().parse::<u64>().unwrap_or(0);
                } else if let Some(value) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
                    sample.ctx_involuntary += value.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    sample.fds = std::fs::read_dir(format!("{root}/fd"))?.count() as u64;
    Ok(sample)
}

/// Samples of the server over the measurement: the first, the last, peaks.
#[derive(Debug, Default)]
pub struct Watch {
    pub pid: u32,
    pub first: Option<(Instant, ProcSample)>,
    pub last: Option<(Instant, ProcSample)>,
    pub peak_rss_kib: u64,
    pub peak_threads: u64,
    pub peak_fds: u64,
}

impl Watch {
    /// Adds a sample whose reading started at `now` (CPU time is read first).
    pub fn add(&mut self, now: Instant, sample: ProcSample) {
        self.peak_rss_kib = self.peak_rss_kib.max(sample.rss_kib).max(sample.rss_peak_kib);
        self.peak_threads = self.peak_threads.max(sample.threads);
        self.peak_fds = self.peak_fds.max(sample.fds);
        if self.first.is_none() {
            self.first = Some((now, sample));
        }
        self.last = Some((now, sample));
    }

    /// (CPU time, wall time, voluntary, involuntary context switches) between
    /// the first and the last sample.
    pub fn deltas(&self) -> (Duration, Duration, u64, u64) {
        match (self.first, self.last) {
            (Some((start, first)), Some((end, last))) => (
                last.cpu.saturating_sub(first.cpu),
                end.duration_since(start),
                last.ctx_voluntary.saturating_sub(first.ctx_voluntary),
                last.ctx_involuntary.saturating_sub(first.ctx_involuntary),
            ),
            _ => (Duration::ZERO, Duration::ZERO, 0, 0),
        }
    }
}
