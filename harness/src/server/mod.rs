//! The server under test, in its three forms, one notion for every command:
//!
//! - a built-in **model** with its options, run as `harness serve MODEL`;
//! - a **command**, any server a user brings (`--server-cmd 'PROGRAM ARG… {port}'`,
//!   or `command = [..]` in a suite), spawned and measured exactly like a model;
//! - a **target**, a server already running anywhere (`--target HOST:PORT`),
//!   driven but not measured.
//!
//! [`ServerUnderTest::start`] spawns (pinned, in its own process group) or
//! attaches; [`Started`] is what a cell drives, samples and stops.
//!
//! # Layout
//!
//! - [`process`]: spawning, readiness, stopping and killing a process tree.
//! - [`tree`]: which processes make up the tree, from `/proc`.
//! - [`cgroup`]: a cgroup per server, so the kernel keeps track of its tree.
//! - [`memory`]: its memory cgroup, so the kernel counts its memory, each
//!   page once.
//! - [`guard`]: no server outlives the harness.

pub mod cgroup;
pub mod guard;
pub mod memory;
pub mod process;
pub mod tree;

use anyhow::{Context, bail};
use process::{Ready, ServerProcess};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::process::ExitStatus;
use std::time::Duration;

/// How long `--target` may take to accept a first connection.
const TARGET_CHECK: Duration = Duration::from_secs(2);

/// What serves the cell, and the name tables and charts show for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUnderTest {
    pub label: String,
    pub kind: Kind,
    /// How a spawned server is started.
    pub launch: Launch,
}

/// How a spawned server is started, beyond its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// How long it may take to become ready.
    pub ready_within: Duration,
    /// RLIMIT_NOFILE (soft and hard) it starts under, when set: a server
    /// cannot raise it, so it runs out of descriptors at this many.
    pub nofile_limit: Option<u64>,
    /// Count its system calls with the kernel's tracepoints
    /// ([`crate::measure::syscalls`]).
    pub count_syscalls: bool,
    /// The directory the server serves (`--root`): `{root}` in a command.
    pub root: Option<std::path::PathBuf>,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch {
            ready_within: process::READY_DEADLINE,
            nofile_limit: None,
            count_syscalls: true,
            root: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `harness serve MODEL ARGS…`
    Model { model: String, args: Vec<String> },
    /// A program and its arguments; `{port}` and `{addr}` are replaced by a
    /// free port and `127.0.0.1:PORT` the harness picked.
    Command { argv: Vec<String> },
    /// `HOST:PORT` of a server that is already running.
    Target { addr: String },
}

impl ServerUnderTest {
    /// A built-in model, labelled `label` (the model's name if `None`).
    pub fn model(model: &str, args: &[String], label: Option<&str>) -> anyhow::Result<ServerUnderTest> {
        if !echo_core::MODELS.contains(&model) && !echo_core::DATAGRAM_MODELS.contains(&model) {
            bail!(
                "unknown model '{model}'; the models are: {}, and over UDP: {}",
                echo_core::MODELS.join(", "),
                echo_core::DATAGRAM_MODELS.join(", ")
            );
        }
        Ok(ServerUnderTest {
            label: check_label(label.unwrap_or(model))?,
            kind: Kind::Model {
                model: model.to_owned(),
                args: args.to_vec(),
            },
            launch: Launch::default(),
        })
    }

    /// A command (program and arguments), labelled `label` (the program's
    /// file name if `None`).
    pub fn command(argv: Vec<String>, label: Option<&str>) -> anyhow::Result<ServerUnderTest> {
        let Some(program) = argv.first() else {
            bail!("the server command is empty");
        };
        let default_label = std::path::Path::new(program)
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.clone());
        Ok(ServerUnderTest {
            label: check_label(label.unwrap_or(&default_label))?,
            kind: Kind::Command { argv },
            launch: Launch::default(),
        })
    }

    /// `--server-cmd 'PROGRAM ARG…'`, split like a shell would (quotes kept
    /// together, no variables or globs).
    pub fn command_line(line: &str, label: Option<&str>) -> anyhow::Result<ServerUnderTest> {
        let argv = shlex::split(line)
            .with_context(|| format!("--server-cmd '{line}' has an unterminated quote or escape"))?;
        ServerUnderTest::command(argv, label)
    }

    /// A server already running at `addr`.
    pub fn target(addr: &str, label: Option<&str>) -> anyhow::Result<ServerUnderTest> {
        Ok(ServerUnderTest {
            label: check_label(label.unwrap_or("target"))?,
            kind: Kind::Target {
                addr: addr.to_owned(),
            },
            launch: Launch::default(),
        })
    }

    /// True when the harness starts (and so measures) the server.
    pub fn spawns(&self) -> bool {
        !matches!(self.kind, Kind::Target { .. })
    }

    /// The model's name, for the cell document (`None` for commands and targets).
    pub fn model_name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Model { model, .. } => Some(model),
            _ => None,
        }
    }

    pub fn model_args(&self) -> &[String] {
        match &self.kind {
            Kind::Model { args, .. } => args,
            _ => &[],
        }
    }

    pub fn command_argv(&self) -> Option<&[String]> {
        match &self.kind {
            Kind::Command { argv } => Some(argv),
            _ => None,
        }
    }

    /// How messages name it: `model 'epoll --edge'`, `command 'python3 echo.py {port}'`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Model { model, args } => {
                let mut words = vec![model.clone()];
                words.extend(args.iter().cloned());
                format!("model '{}'", words.join(" "))
            }
            Kind::Command { argv } => format!("command '{}'", join_command(argv)),
            Kind::Target { addr } => format!("target {addr}"),
        }
    }

    /// Starts the server pinned to `cpus` (or checks that the target
    /// accepts a connection) and returns it ready to be driven.
    pub fn start(&self, cpus: &[usize]) -> anyhow::Result<Started> {
        self.start_for(cpus, crate::protocol::Protocol::Echo)
    }

    /// [`ServerUnderTest::start`] for a load speaking `protocol`: a UDP
    /// target has nothing to connect to, so its address is only resolved
    /// (one that does not answer shows as every datagram lost).
    pub fn start_for(&self, cpus: &[usize], protocol: crate::protocol::Protocol) -> anyhow::Result<Started> {
        match &self.kind {
            Kind::Model { model, args } => {
                let exe = std::env::current_exe().context("cannot find the harness executable")?;
                let mut argv = vec![
                    exe.to_string_lossy().into_owned(),
                    "serve".into(),
                    model.clone(),
                    "--addr".into(),
                    "127.0.0.1:0".into(),
                ];
                argv.extend(args.iter().cloned());
                let process =
                    ServerProcess::spawn(&self.describe(), &argv, cpus, Ready::Contract, &self.launch)?;
                Ok(Started {
                    addr: process.addr,
                    process: Some(process),
                    _config: None,
                })
            }
            Kind::Command { argv } => {
                let needs_port = argv.iter().any(|arg| {
                    arg.contains("{port}") || arg.contains("{addr}") || config_template(arg).is_some()
                });
                let port = if needs_port { Some(free_port()?) } else { None };
                // Removed when `Started` is dropped: after the server stopped,
                // or at once if it does not start.
                let config = argv
                    .iter()
                    .any(|arg| config_template(arg).is_some())
                    .then(|| OwnedDir(config_dir(port)));
                let argv: Vec<String> = argv
                    .iter()
                    .map(|arg| fill_placeholders(arg, port, self.launch.root.as_deref()))
                    .collect::<anyhow::Result<_>>()?;
                let process = ServerProcess::spawn(
                    &self.describe(),
                    &argv,
                    cpus,
                    Ready::LineOrPort(port),
                    &self.launch,
                )?;
                Ok(Started {
                    addr: process.addr,
                    process: Some(process),
                    _config: config,
                })
            }
            Kind::Target { addr } => Ok(Started {
                addr: match protocol {
                    crate::protocol::Protocol::Udp => resolve_target(addr)?,
                    _ => check_target(addr)?,
                },
                process: None,
                _config: None,
            }),
        }
    }
}

/// A server ready to be driven.
pub struct Started {
    pub addr: SocketAddr,
    /// The process tree, when the harness started it.
    pub process: Option<ServerProcess>,
    /// The directory of its configuration copies, if it has one.
    _config: Option<OwnedDir>,
}

impl Started {
    /// Stops a spawned server and returns how it exited and what it printed
    /// on stderr as it did (`None` for a target).
    pub fn stop(self) -> anyhow::Result<Option<(ExitStatus, Vec<String>)>> {
        match self.process {
            Some(process) => process.stop().map(Some),
            None => Ok(None),
        }
    }
}

/// A label names files (`LABEL--SCENARIO.json`) and chart series.
fn check_label(label: &str) -> anyhow::Result<String> {
    let fine = !label.is_empty()
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !label.contains("--")
        && !label.starts_with('.');
    if !fine {
        bail!(
            "label '{label}' must be letters, digits, '.', '_' or single '-' (it names files), e.g. --label my-server"
        );
    }
    Ok(label.to_owned())
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Resolves `--target` and checks that it accepts a connection.
fn check_target(target: &str) -> anyhow::Result<SocketAddr> {
    let addr = resolve_target(target)?;
    std::net::TcpStream::connect_timeout(&addr, TARGET_CHECK)
        .with_context(|| format!("cannot connect to target {target}"))?;
    Ok(addr)
}

fn resolve_target(target: &str) -> anyhow::Result<SocketAddr> {
    target
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .with_context(|| format!("cannot resolve target '{target}' (expected HOST:PORT)"))
}

/// A command line as a user would type it back: words that a shell would
/// `{conf:PATH}`: the path of a configuration template.
fn config_template(arg: &str) -> Option<&str> {
    arg.strip_prefix("{conf:")?.strip_suffix('}')
}

/// Where the copies of a command's configuration templates go (`{dir}`):
/// one directory per harness and port.
fn config_dir(port: Option<u16>) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "echolab-conf-{}-{}",
        std::process::id(),
        port.unwrap_or(0)
    ))
}

/// A directory the harness made for a server, removed (with what the server
/// wrote into it: a pid file, temporary files) once the server is stopped.
struct OwnedDir(std::path::PathBuf);

impl Drop for OwnedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fills a command argument's placeholders: `{port}`, `{addr}`, `{root}`
/// and, for a whole argument `{conf:PATH}`, the path of a copy of the file
/// PATH with the same placeholders filled, and `{dir}`: the copy's own
/// directory (fresh, for the server's pid and temporary files; `{root}`
/// too when no `--root` is given).
fn fill_placeholders(arg: &str, port: Option<u16>, root: Option<&std::path::Path>) -> anyhow::Result<String> {
    let fill = |text: &str, root: Option<&std::path::Path>| -> anyhow::Result<String> {
        let mut text = text.to_owned();
        if let Some(port) = port {
            text = text
                .replace("{port}", &port.to_string())
                .replace("{addr}", &format!("127.0.0.1:{port}"));
        }
        if text.contains("{root}") {
            let Some(root) = root else {
                bail!("the server command uses {{root}}: give --root DIR");
            };
            text = text.replace("{root}", &root.display().to_string());
        }
        Ok(text)
    };
    let Some(template) = config_template(arg) else {
        return fill(arg, root);
    };
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("cannot read the configuration template {template}"))?;
    let dir = config_dir(port);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Without --root a template serves its own, empty, directory.
    let filled = fill(&text, Some(root.unwrap_or(&dir)))?.replace("{dir}", &dir.display().to_string());
    let name = std::path::Path::new(template)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "server.conf".into());
    let path = dir.join(name);
    std::fs::write(&path, filled).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.display().to_string())
}

/// split or expand are quoted, `{port}` is left as it is.
pub fn join_command(argv: &[String]) -> String {
    let plain = |word: &str| {
        !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%{}".contains(c))
    };
    argv.iter()
        .map(|word| {
            if plain(word) {
                word.clone()
            } else {
                shlex::try_quote(word).map_or_else(|_| word.clone(), |quoted| quoted.into_owned())
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_a_shell_and_label_themselves() {
        let server =
            ServerUnderTest::command_line("/usr/bin/python3 'my echo.py' --port {port}", None).unwrap();
        assert_eq!(server.label, "python3");
        assert_eq!(
            server.command_argv().unwrap(),
            ["/usr/bin/python3", "my echo.py", "--port", "{port}"]
        );
        assert_eq!(
            server.describe(),
            "command '/usr/bin/python3 'my echo.py' --port {port}'"
        );
        assert!(ServerUnderTest::command_line("echo 'open", None).is_err());
        assert!(ServerUnderTest::command_line("", None).is_err());
    }

    #[test]
    fn labels_and_models_are_checked() {
        assert!(ServerUnderTest::model("epol", &[], None).is_err());
        assert!(ServerUnderTest::model("epoll", &[], Some("a/b")).is_err());
        assert!(ServerUnderTest::model("epoll", &[], Some("a--b")).is_err());
        assert_eq!(
            ServerUnderTest::model("epoll", &["--edge".into()], Some("epoll-edge"))
                .unwrap()
                .describe(),
            "model 'epoll --edge'"
        );
    }
}
