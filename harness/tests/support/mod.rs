//! What the harness's end-to-end tests share: running the real binary under
//! a watchdog, reading a cell's JSON, and a model served on its own for
//! `--target` tests.

#![allow(dead_code)] // each test file uses part of it

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// No single harness run in these tests may take longer.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// The harness binary under test.
pub fn harness_exe() -> &'static str {
    env!("CARGO_BIN_EXE_harness")
}

/// Runs `harness ARGS`, killing it when the watchdog expires.
pub fn harness(args: &[&str]) -> Output {
    let mut command = Command::new(harness_exe());
    command.args(args);
    run_watched(command, args)
}

/// Runs a prepared command to its end under the watchdog.
pub fn run_watched(command: Command, what: &[&str]) -> Output {
    run_watched_for(command, what, WATCHDOG)
}

/// Runs a prepared command to its end, killing it after `deadline`.
pub fn run_watched_for(mut command: Command, what: &[&str], deadline: Duration) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("harness starts");
    wait_watched_for(child, what, deadline)
}

/// Waits for a child spawned with piped stdout and stderr, killing it when
/// the watchdog expires.
pub fn wait_with_watchdog(child: Child, what: &[&str]) -> Output {
    wait_watched_for(child, what, WATCHDOG)
}

fn wait_watched_for(mut child: Child, what: &[&str], deadline: Duration) -> Output {
    // Drain both pipes while waiting, so a chatty run cannot block on them.
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait works") {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            panic!("harness {what:?} ran longer than {deadline:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap().into_bytes(),
        stderr: err.join().unwrap().into_bytes(),
    }
}

/// The cell document printed by a successful `harness bench … --json`.
pub fn cell_of(output: &Output, what: &[&str]) -> Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "harness {what:?} failed: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout of {what:?} is not one JSON document ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Runs `harness bench ARGS --json` and returns the cell document.
pub fn bench_json(args: &[&str]) -> Value {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.push("--json");
    cell_of(&harness(&all), &all)
}

pub fn flags(cell: &Value) -> Vec<String> {
    cell["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|flag| flag.as_str().unwrap().to_string())
        .collect()
}

/// A model served by `harness serve` on 127.0.0.1:0, killed on drop.
pub struct Served {
    child: Child,
    pub addr: String,
}

impl Served {
    pub fn start(model: &str) -> Served {
        let mut child = Command::new(harness_exe())
            .args(["serve", model, "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .expect("ready line");
        let addr = ready
            .trim()
            .strip_prefix("listening on ")
            .expect("ready line format")
            .to_string();
        Served { child, addr }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `harness ARGS --help`: what the real binary says it accepts.
pub fn help(args: &[&str]) -> String {
    let output = Command::new(harness_exe())
        .args(args)
        .arg("--help")
        .output()
        .expect("harness runs");
    assert!(output.status.success(), "harness {args:?} --help failed");
    String::from_utf8(output.stdout).unwrap()
}

/// `harness run --suite SUITE --out OUT EXTRA…`, which must succeed: the
/// test fails with the harness's stderr otherwise.
pub fn run_suite(suite: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> Output {
    let (suite, out) = (suite.to_str().unwrap(), out.to_str().unwrap());
    let mut args = vec!["run", "--suite", suite, "--out", out];
    args.extend_from_slice(extra);
    let output = harness(&args);
    assert!(
        output.status.success(),
        "harness {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Writes `DIR/NAME.toml`: a one-scenario suite (closed loop, 10
/// connections, 64 bytes, 0.2 s warm-up, 0.5 s measured) over `models`, a
/// TOML array's inside, e.g. `"epoll", { label = "mine", command = [..] }`.
pub fn write_suite(dir: &std::path::Path, name: &str, models: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let suite = format!(
        "name = \"{name}\"\nwarmup_s = 0.2\nduration_s = 0.5\nmodels = [{models}]\n\n\
         [[sweep]]\nname = \"closed\"\nshape = \"closed\"\nconnections = [10]\nsize = [64]\n"
    );
    std::fs::write(&path, suite).expect("the suite is written");
    path
}

/// Processes whose environment holds `ECHOLAB_TEST_MARKER=marker`, with
/// their state letter from `/proc/PID/stat` (`T` for stopped).
pub fn processes_marked(marker: &str) -> Vec<(i32, char)> {
    let needle = format!("ECHOLAB_TEST_MARKER={marker}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|&byte| byte == 0)
                    .any(|entry| entry == needle.as_bytes())
            })
        })
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some((pid, state))
        })
        .collect()
}

/// `harness merge DIRS… --out OUT`, which must succeed.
pub fn merge<'a>(dirs: impl IntoIterator<Item = &'a std::path::Path>, out: &std::path::Path) {
    let mut args = vec!["merge"];
    args.extend(dirs.into_iter().map(|dir| dir.to_str().unwrap()));
    args.extend(["--out", out.to_str().unwrap()]);
    let output = harness(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The JSON document in `path` (a cell's `.json`, a manifest).
pub fn json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("json")).expect("valid json")
}

/// (label, scenario, repeat) of every cell of a result set (none when it
/// has no cells folder).
pub fn cells(dir: &std::path::Path) -> std::collections::BTreeSet<(String, String, u64)> {
    std::fs::read_dir(dir.join("cells"))
        .into_iter()
        .flatten()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "json"))
        .map(|path| {
            let cell = json(&path);
            (
                cell["label"].as_str().unwrap().to_owned(),
                cell["scenario"].as_str().unwrap().to_owned(),
                cell["repeat"].as_u64().unwrap(),
            )
        })
        .collect()
}
