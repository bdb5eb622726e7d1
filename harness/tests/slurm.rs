//! The Slurm recipe of "Running on many machines", run on a real Slurm: a
//! one-node cluster of this machine (Debian's `munge` and `slurm-wlm`:
//! munged, slurmctld and slurmd started here with a generated slurm.conf,
//! their own key, socket, ports, pid files, state and spool in a temporary
//! folder), to which the test submits what the README tells a user to
//! submit, on a small suite over a two-task array. It checks the files the
//! jobs wrote, not only their states: every task ran as a Slurm array task
//! (its manifest records Slurm's variables, the node and the CPUs it was
//! given), the shards are disjoint and cover the suite, the merge holds
//! every cell once and its report renders. A suite whose server cannot
//! start fails its shard, Slurm cancels the merge (afterok), and the task's
//! log says why; a harness binary that is not there and a results directory
//! that cannot be written are one line each in their task's log.
//!
//! Everything it starts is stopped and removed at the end, whatever
//! happened (jobs, daemons, the cgroups slurmd made, the folder with the
//! key, state and spool); it never reads or writes a Slurm or munge
//! configuration the machine has (`SLURM_CONF`, munged's options and the
//! socket in slurm.conf point into the folder), and checks it left those
//! untouched. Where Slurm cannot start here (not installed, not root) it
//! says why and is skipped; under `CI=true` it fails instead.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use support::{cells, harness_exe, json, processes_marked, write_suite};

const README: &str = include_str!("../../README.md");

/// The daemons must be up, and the node idle, within this.
const START: Duration = Duration::from_secs(30);
/// Every job submitted must have left the queue within this: eight
/// whole-node jobs one after another, a few seconds each (about 20 s here).
const JOBS: Duration = Duration::from_secs(120);

const PROGRAMS: [&str; 9] = [
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "scontrol",
    "squeue",
    "sinfo",
    "scancel",
    "bash",
];

/// Where a machine keeps its own Slurm and munge: listed before and after,
/// to show the test left them as they were.
const SYSTEM_PLACES: [&str; 10] = [
    "/etc/slurm",
    "/etc/slurm-llnl",
    "/etc/munge",
    "/run/munge",
    "/var/lib/munge",
    "/var/log/munge",
    "/var/lib/slurm",
    "/var/log/slurm",
    "/var/spool/slurmd",
    "/var/spool/slurmctld",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
}

/// Skips the test with `reason`, or fails it under CI.
fn cannot_run(reason: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the Slurm test must run under CI: {reason} (.ci/run installs slurm-wlm and munge)"
    );
    eprintln!("skipped: {reason}");
}

/// Every file under the system's Slurm and munge places: path, size, mtime.
fn system_snapshot() -> BTreeSet<(PathBuf, u64, Option<SystemTime>)> {
    fn walk(dir: &Path, into: &mut BTreeSet<(PathBuf, u64, Option<SystemTime>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if metadata.is_dir() {
                walk(&path, into);
            }
            into.insert((path, metadata.len(), metadata.modified().ok()));
        }
    }
    let mut files = BTreeSet::new();
    for place in SYSTEM_PLACES {
        walk(Path::new(place), &mut files);
    }
    files
}

/// The cgroup (v1) folders slurmd makes, `/sys/fs/cgroup/*/slurm*`.
fn slurm_cgroups() -> BTreeSet<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|controller| {
            std::fs::read_dir(controller.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_dir()
                && path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("slurm"))
        })
        .collect()
}

/// Removes a cgroup folder and the ones under it, deepest first.
fn remove_cgroup(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            remove_cgroup(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn last_lines(path: &Path, count: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join(" / ")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// A one-node Slurm cluster of this machine, stopped and removed on drop.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    marker: String,
    node: String,
    /// How processes are tracked, and why.
    proctrack: String,
    daemons: Vec<(&'static str, Child)>,
    cgroups_before: BTreeSet<PathBuf>,
}

impl Cluster {
    /// Starts munged, slurmctld and slurmd under `dir`, or says in one line
    /// why it could not.
    fn start(dir: &Path, marker: &str) -> Result<Cluster, String> {
        let mut cluster = Cluster {
            dir: dir.to_owned(),
            conf: dir.join("slurm.conf"),
            marker: marker.to_owned(),
            node: String::new(),
            proctrack: String::new(),
            daemons: Vec::new(),
            cgroups_before: slurm_cgroups(),
        };
        // munged checks its folders: the socket's must be searchable by
        // all, the key's private.
        let (socket_dir, key_dir, logs) = (dir.join("munge"), dir.join("key"), dir.join("log"));
        for (folder, mode) in [
            (&socket_dir, 0o755),
            (&key_dir, 0o700),
            (&logs, 0o755),
            (&dir.join("state"), 0o700),
            (&dir.join("spool"), 0o755),
        ] {
            std::fs::create_dir_all(folder)
                .map_err(|error| format!("cannot create {}: {error}", folder.display()))?;
            std::fs::set_permissions(folder, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let key = key_dir.join("munge.key");
        let mut bytes = [0u8; 1024];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut random| random.read_exact(&mut bytes))
            .map_err(|error| format!("cannot read /dev/urandom for a munge key: {error}"))?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key)
            .and_then(|mut file| std::io::Write::write_all(&mut file, &bytes))
            .map_err(|error| format!("cannot write the munge key: {error}"))?;
        let socket = socket_dir.join("munge.socket");
        let mut munged = cluster.command("munged");
        munged.args(["--foreground", "--socket"]).arg(&socket);
        munged.arg("--key-file").arg(&key);
        munged.arg("--pid-file").arg(socket_dir.join("munged.pid"));
        munged.arg("--log-file").arg(logs.join("munged.log"));
        munged.arg("--seed-file").arg(socket_dir.join("munged.seed"));
        cluster.spawn("munged", munged)?;
        cluster.wait_until("munged", |_| socket.exists())?;

        // The node as slurmd sees it: named after the host, its real CPUs and memory.
        let described = cluster
            .command("slurmd")
            .arg("-C")
            .output()
            .map_err(|error| format!("slurmd -C: {error}"))?;
        let node_line = String::from_utf8_lossy(&described.stdout)
            .lines()
            .next()
            .filter(|line| line.starts_with("NodeName="))
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "slurmd -C does not describe this node: {}",
                    String::from_utf8_lossy(&described.stderr).trim()
                )
            })?;
        cluster.node = node_line["NodeName=".len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();

        // Slurm 22.05 confines jobs with cgroup v1's freezer and cpuset, or
        // with cgroup v2 through systemd; without them, processes are
        // tracked by their parents (proctrack/linuxproc) and pinned by
        // sched_setaffinity (task/affinity).
        let cgroup_v1 = ["freezer", "cpuset"].iter().all(|controller| {
            Path::new("/sys/fs/cgroup")
                .join(controller)
                .join("tasks")
                .exists()
        });
        let plugins = if cgroup_v1 {
            std::fs::write(
                dir.join("cgroup.conf"),
                "CgroupPlugin=cgroup/v1\nConstrainCores=yes\n",
            )
            .unwrap();
            cluster.proctrack = "proctrack/cgroup with task/cgroup (cgroup v1 freezer and cpuset)".to_owned();
            "ProctrackType=proctrack/cgroup\nTaskPlugin=task/cgroup,task/affinity\n"
        } else {
            cluster.proctrack = "proctrack/linuxproc with task/affinity: no cgroup v1 freezer and cpuset here (Slurm 22.05's cgroup/v2 needs systemd)".to_owned();
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/affinity\n"
        };
        let (controller_port, node_port) = (free_port(), free_port());
        let path = |name: &str| dir.join(name).display().to_string();
        let conf = format!(
            "ClusterName=echolabtest\n\
             SlurmctldHost={node}(127.0.0.1)\n\
             SlurmctldPort={controller_port}\n\
             SlurmdPort={node_port}\n\
             AuthType=auth/munge\n\
             AuthInfo=socket={socket}\n\
             CredType=cred/munge\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             StateSaveLocation={state}\n\
             SlurmdSpoolDir={spool}\n\
             SlurmctldPidFile={ctld_pid}\n\
             SlurmdPidFile={d_pid}\n\
             SlurmctldLogFile={ctld_log}\n\
             SlurmdLogFile={d_log}\n\
             {plugins}\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\n\
             SchedulerType=sched/backfill\n\
             ReturnToService=2\n\
             MpiDefault=none\n\
             JobCompType=jobcomp/none\n\
             AccountingStorageType=accounting_storage/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             MinJobAge=3600\n\
             {node_line} NodeAddr=127.0.0.1 State=UNKNOWN\n\
             PartitionName=echolab Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            node = cluster.node,
            socket = socket.display(),
            state = path("state"),
            spool = path("spool"),
            ctld_pid = path("slurmctld.pid"),
            d_pid = path("slurmd.pid"),
            ctld_log = path("log/slurmctld.log"),
            d_log = path("log/slurmd.log"),
        );
        std::fs::write(&cluster.conf, conf).unwrap();
        for daemon in ["slurmctld", "slurmd"] {
            let mut command = cluster.command(daemon);
            command.arg("-D").arg("-f").arg(&cluster.conf);
            cluster.spawn(daemon, command)?;
        }
        cluster.wait_until("the node to be idle", |cluster| {
            cluster
                .slurm(&["sinfo", "-h", "-N", "-o", "%T"])
                .is_ok_and(|state| state.trim() == "idle")
        })?;
        Ok(cluster)
    }

    /// A command for this cluster: its configuration, the test's marker,
    /// and none of the Slurm or echolab variables the test itself runs with.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(find_program(program).unwrap_or_else(|| program.into()));
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if ["SLURM", "SBATCH_", "SALLOC_", "SRUN_", "ECHOLAB_"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
            {
                command.env_remove(&*name);
            }
        }
        command
            .env("SLURM_CONF", &self.conf)
            .env("ECHOLAB_TEST_MARKER", &self.marker)
            .stdin(Stdio::null());
        command
    }

    /// Runs a Slurm client command, returning its stdout or one line why not.
    fn slurm(&self, args: &[&str]) -> Result<String, String> {
        let output = self
            .command(args[0])
            .args(&args[1..])
            .output()
            .map_err(|error| format!("{}: {error}", args[0]))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "{args:?}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    fn spawn(&mut self, name: &'static str, mut command: Command) -> Result<(), String> {
        let log = std::fs::File::create(self.dir.join("log").join(format!("{name}.out"))).unwrap();
        command.stdout(log.try_clone().unwrap()).stderr(log);
        let child = command
            .spawn()
            .map_err(|error| format!("{name} does not start: {error}"))?;
        self.daemons.push((name, child));
        Ok(())
    }

    /// Waits for `ready`, failing in one line if a daemon exits first or
    /// [`START`] passes.
    fn wait_until(&mut self, what: &str, ready: impl Fn(&Cluster) -> bool) -> Result<(), String> {
        let started = Instant::now();
        while !ready(self) {
            for (name, child) in &mut self.daemons {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = self.dir.join("log");
                    let said = [format!("{name}.log"), format!("{name}.out")]
                        .iter()
                        .map(|file| last_lines(&log.join(file), 2))
                        .filter(|text| !text.is_empty())
                        .collect::<Vec<_>>()
                        .join(" / ");
                    return Err(format!(
                        "{name} exited ({status}) while waiting for {what}: {said}"
                    ));
                }
            }
            if started.elapsed() > START {
                return Err(format!(
                    "waited {START:?} for {what}: {}",
                    last_lines(&self.dir.join("log/slurmctld.log"), 2)
                ));
            }
            thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Runs `script` in bash in `dir`, with `env`, as a user at a shell would.
    fn bash(&self, dir: &Path, env: &[(&str, String)], script: &str) -> Output {
        let mut command = self.command("bash");
        command.args(["-c", script]).current_dir(dir);
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("bash runs")
    }

    /// The jobs still in the queue: id, state and reason.
    fn queue(&self) -> Vec<String> {
        self.slurm(&["squeue", "-h", "-o", "%i %T %r"])
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// What `scontrol show job ID` says of a job (each task of an array).
    fn jobs(&self, id: &str) -> Vec<BTreeMap<String, String>> {
        self.slurm(&["scontrol", "show", "job", id])
            .unwrap_or_default()
            .split("\n\n")
            .filter(|record| record.contains("JobId="))
            .map(|record| {
                record
                    .split_whitespace()
                    .filter_map(|field| field.split_once('='))
                    .map(|(key, value)| (key.to_owned(), value.to_owned()))
                    .collect()
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The jobs first, while slurmctld can still cancel them.
        if self.daemons.iter().any(|(name, _)| *name == "slurmctld") {
            let ids: Vec<String> = self
                .queue()
                .iter()
                .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
                .collect();
            if !ids.is_empty() {
                let mut scancel = vec!["scancel"];
                scancel.extend(ids.iter().map(String::as_str));
                let _ = self.slurm(&scancel);
                let started = Instant::now();
                while !self.queue().is_empty() && started.elapsed() < Duration::from_secs(15) {
                    thread::sleep(Duration::from_millis(200));
                }
            }
        }
        // slurmd, slurmctld, munged: the reverse of their start.
        while let Some((_, mut child)) = self.daemons.pop() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let started = Instant::now();
            while matches!(child.try_wait(), Ok(None)) && started.elapsed() < Duration::from_secs(10) {
                thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Whatever they left: job steps, job scripts, harness runs.
        for (pid, _) in processes_marked(&self.marker) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        for cgroup in slurm_cgroups().difference(&self.cgroups_before) {
            remove_cgroup(cgroup);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The README's Slurm recipe as it shows it for the one-node cluster: its
/// parameters and the two `sbatch` lines, with the checkout (`~/echolab`
/// there) where it is.
fn readme_recipe(checkout: &Path) -> String {
    let section = README
        .split("#### Slurm, step by step")
        .nth(1)
        .expect("the README has 'Slurm, step by step'");
    let blocks: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap())
        .collect();
    let one_node = blocks
        .iter()
        .find(|block| block.contains("--array=1-2"))
        .expect("the README shows what the one-node cluster submits");
    let lines: Vec<&str> = one_node.lines().collect();
    assert!(
        lines.len() == 3
            && lines[0].starts_with("export ")
            && lines[1].starts_with("jid=$(sbatch --parsable ")
            && lines[2].starts_with("sbatch --dependency=afterok:"),
        "the README's one-node recipe: {lines:?}"
    );
    // The general recipe submits the same files the same way.
    assert!(blocks[0].contains(lines[2]) && blocks[0].contains(&lines[1].replace(" --array=1-2", "")));
    one_node.replace("~/echolab", &checkout.display().to_string())
}

/// A submission's array and merge job ids, from the script's output.
fn submitted(output: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the submission failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let array = stdout
        .lines()
        .find_map(|line| line.strip_prefix("array="))
        .expect("the array's id");
    let merge = stdout
        .lines()
        .find_map(|line| line.strip_prefix("Submitted batch job "))
        .expect("the merge's id");
    (array.trim().to_owned(), merge.trim().to_owned())
}

#[test]
fn the_readme_slurm_recipe_runs_on_a_one_node_cluster() {
    let started = Instant::now();
    let missing: Vec<&str> = PROGRAMS
        .iter()
        .copied()
        .filter(|program| find_program(program).is_none())
        .collect();
    if !missing.is_empty() {
        return cannot_run(&format!(
            "{} not installed (apt-get install slurm-wlm munge)",
            missing.join(", ")
        ));
    }
    if !nix::unistd::geteuid().is_root() {
        return cannot_run("slurmd runs jobs as their users and must run as root");
    }
    let system_before = system_snapshot();
    let folder = tempfile::Builder::new()
        .prefix("echolab-slurm-")
        .tempdir()
        .expect("a temporary folder");
    let marker = format!("slurm-{}", std::process::id());
    let cluster = match Cluster::start(&folder.path().join("cluster"), &marker) {
        Ok(cluster) => cluster,
        Err(reason) => return cannot_run(&format!("Slurm does not start here: {reason}")),
    };
    eprintln!(
        "slurm: node {} up in {:.1} s; {}",
        cluster.node,
        started.elapsed().as_secs_f64(),
        cluster.proctrack
    );

    // Where the user stands: anywhere but the checkout.
    let home = folder.path().join("user");
    std::fs::create_dir_all(&home).unwrap();
    write_suite(&home, "small", "\"epoll\", \"select\"");
    write_suite(
        &home,
        "broken",
        "{ label = \"broken\", command = [\"/nonexistent/echo-server\", \"{port}\"] }",
    );
    let checkout = root();
    let one_node = readme_recipe(&checkout);
    let harness_binary = [("ECHOLAB_HARNESS", harness_exe().to_owned())];
    let submit = |recipe: &str| {
        let script = format!("set -euo pipefail\n{recipe}\necho \"array=${{jid%%;*}}\"\n");
        submitted(&cluster.bash(&home, &harness_binary, &script))
    };

    // The README's recipe for the one-node cluster.
    let (array, merge) = submit(&one_node);
    // The same with a suite whose server cannot start.
    let (broken_array, broken_merge) = submit(
        &one_node
            .replace("small.toml", "broken.toml")
            .replace("ECHOLAB_REPEAT=2", "ECHOLAB_REPEAT=1"),
    );
    // A harness that is not built, a results directory that cannot be written.
    let shards = checkout
        .join("deploy/slurm/suite-shards.sbatch")
        .display()
        .to_string();
    let lone = |env: &[(&str, String)]| -> String {
        let output = cluster.bash(&home, env, &format!("sbatch --parsable --array=1-1 {shards}"));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let unbuilt = lone(&[(
        "ECHOLAB_HARNESS",
        "/nonexistent/target/release/harness".to_owned(),
    )]);
    let unwritable = lone(&[
        harness_binary[0].clone(),
        ("ECHOLAB_RESULTS", "/dev/null/fleet".to_owned()),
    ]);

    let waiting = Instant::now();
    loop {
        let queue = cluster.queue();
        if queue.is_empty() {
            break;
        }
        assert!(
            waiting.elapsed() < JOBS,
            "jobs still queued after {JOBS:?}: {}",
            queue.join("; ")
        );
        thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "slurm: every job left the queue after {:.1} s",
        waiting.elapsed().as_secs_f64()
    );

    // What Slurm recorded of each task, then what the tasks wrote.
    let tasks = cluster.jobs(&array);
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    let results = home.join("fleet").join(&array);
    let mut union = BTreeSet::new();
    let mut shard_dirs = Vec::new();
    for task in &tasks {
        let (id, index) = (&task["JobId"], &task["ArrayTaskId"]);
        let log = home.join(format!("echolab-suite-{array}_{index}.out"));
        eprintln!(
            "slurm: job {id} = array {array} task {index}: node {}, {} CPUs, {} {}",
            task["NodeList"], task["NumCPUs"], task["JobState"], task["ExitCode"]
        );
        assert_eq!(
            (task["JobState"].as_str(), task["ExitCode"].as_str()),
            ("COMPLETED", "0:0"),
            "task {index}: {}",
            last_lines(&log, 3)
        );
        let dir = results.join(format!("shard-{index}"));
        let written: Vec<String> = std::fs::read_dir(&results)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            dir.join("manifest.json").exists(),
            "task {index} wrote no shard-{index} (the array wrote {written:?}): {}",
            last_lines(&log, 3)
        );
        let manifest = json(&dir.join("manifest.json"));
        let placement = &manifest["placement"];
        let variables = &placement["variables"];
        assert_eq!(placement["engine"], "Slurm", "{manifest}");
        assert_eq!(variables["SLURM_ARRAY_JOB_ID"], *array, "{placement}");
        assert_eq!(variables["SLURM_ARRAY_TASK_ID"], **index, "{placement}");
        assert_eq!(variables["SLURM_JOB_ID"], **id, "{placement}");
        assert_eq!(variables["SLURMD_NODENAME"], *cluster.node, "{placement}");
        assert_eq!(manifest["machine"]["node"], *cluster.node);
        let cpus = placement["cpus"].as_array().unwrap().len();
        assert_eq!(
            cpus.to_string(),
            task["NumCPUs"],
            "the task's affinity mask against Slurm's allocation: {placement}"
        );
        assert_eq!(manifest["shard"]["index"].to_string(), **index);
        assert_eq!(manifest["shard"]["total"], 2);
        assert!(
            manifest["shard"]["source"]
                .as_str()
                .unwrap()
                .contains("Slurm array")
        );
        eprintln!(
            "slurm:   its manifest: CPUs {} of {}",
            placement["cpus"], placement["online_cpus"]
        );
        let shard_cells = cells(&dir);
        assert!(!shard_cells.is_empty(), "shard {index} ran no cell");
        for cell in shard_cells {
            assert!(union.insert(cell.clone()), "{cell:?} is on two shards");
        }
        shard_dirs.push(dir);
    }
    let labels: BTreeSet<&str> = union.iter().map(|cell| cell.0.as_str()).collect();
    let repeats: BTreeSet<u64> = union.iter().map(|cell| cell.2).collect();
    assert_eq!(union.len(), 4, "2 models x 1 scenario x 2 repeats: {union:?}");
    assert_eq!(labels, BTreeSet::from(["epoll", "select"]));
    assert_eq!(repeats, BTreeSet::from([1, 2]));

    // The merge ran after both, and holds every cell once.
    let merge_job = &cluster.jobs(&merge)[0];
    let merge_log = home.join(format!("echolab-merge-{merge}.out"));
    assert_eq!(
        merge_job["JobState"],
        "COMPLETED",
        "{}",
        last_lines(&merge_log, 5)
    );
    let merged = results.join("merged");
    assert_eq!(cells(&merged), union);
    let summary = std::fs::read_to_string(merged.join("summary.csv")).expect("summary.csv");
    assert_eq!(summary.lines().count(), 1 + union.len(), "{summary}");
    let manifest = json(&merged.join("manifest.json"));
    let inputs = manifest["merged_from"].as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    assert!(inputs.iter().all(|input| input["placement"]["engine"] == "Slurm"));
    let report = std::fs::read_to_string(merged.join("report.md")).expect("report.md");
    assert!(report.contains("epoll") && report.contains("select"));
    let rendered = support::harness(&["report", merged.to_str().unwrap()]);
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    assert_eq!(std::fs::read_to_string(merged.join("report.md")).unwrap(), report);

    // A shard that fails keeps the merge from running, and its log says why.
    let broken_tasks = cluster.jobs(&broken_array);
    let failed: Vec<&BTreeMap<String, String>> = broken_tasks
        .iter()
        .filter(|task| task["JobState"] == "FAILED")
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "one shard holds the broken cell: {broken_tasks:?}"
    );
    let log = home.join(format!(
        "echolab-suite-{broken_array}_{}.out",
        failed[0]["ArrayTaskId"]
    ));
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        said.contains("could not be measured") && said.contains("/nonexistent/echo-server"),
        "{}: {said}",
        log.display()
    );
    let never = &cluster.jobs(&broken_merge)[0];
    assert_eq!(
        (never["JobState"].as_str(), never["Reason"].as_str()),
        ("CANCELLED", "DependencyNeverSatisfied"),
        "{never:?}"
    );
    assert!(!home.join("fleet").join(&broken_array).join("merged").exists());
    assert!(!home.join(format!("echolab-merge-{broken_merge}.out")).exists());
    let controller = std::fs::read_to_string(cluster.dir.join("log/slurmctld.log")).unwrap_or_default();
    assert!(
        controller.contains(&format!("cancelling JobId={broken_merge}")),
        "slurmctld.log does not say it cancelled the merge"
    );

    // Bad input is one line in the task's log.
    for (job, expected) in [
        (
            &unbuilt,
            "echolab: no harness binary at /nonexistent/target/release/harness",
        ),
        (&unwritable, "echolab: cannot write to /dev/null/fleet/"),
    ] {
        let task = &cluster.jobs(job)[0];
        assert_eq!(task["JobState"], "FAILED", "{task:?}");
        let log = home.join(format!("echolab-suite-{job}_1.out"));
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            said.starts_with(expected) && said.trim().lines().count() == 1,
            "{}: {said}",
            log.display()
        );
    }

    let cluster_dir = cluster.dir.clone();
    drop(cluster);
    assert!(
        processes_marked(&marker).is_empty(),
        "processes outlived the cluster"
    );
    assert!(!cluster_dir.exists());
    assert_eq!(
        system_snapshot(),
        system_before,
        "the machine's own Slurm or munge files changed"
    );
    eprintln!("slurm: done in {:.1} s", started.elapsed().as_secs_f64());
}
