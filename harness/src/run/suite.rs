//! Suites: which models, which loads. Built-in suites are TOML files under
//! `harness/suites/`, compiled in; `--suite FILE.toml` reads the same format.
//!
//! ```toml
//! name = "quick"
//! warmup_s = 1.0
//! duration_s = 3.0
//! models = [
//!     "epoll",                                                       # a model
//!     { label = "epoll-edge", model = "epoll", args = ["--edge"] },  # a variant
//!     { label = "mine", command = ["./my-server", "--port", "{port}"] }, # your server
//! ]
//!
//! [[sweep]]            # every combination of the lists below is one scenario
//! name = "closed"
//! shape = "closed"     # closed | open | churn
//! connections = [1, 10, 100]
//! size = [64]          # bytes per message
//! idle = [0]           # silent extra connections (optional)
//! rate = [20000]       # open loop only: offered messages per second
//! protocol = "echo"    # echo | http | udp (optional; TCP models are started with it)
//! request = ["plaintext"]  # http: plaintext | echo:BYTES | static:PATH
//! pipeline = [1]       # requests (messages) in flight per connection
//! work = ["none"]      # passed to models: none | cpu:MICROS | wait:MICROS
//! ```
//!
//! A suite's `root` is the directory HTTP servers serve (`--root`, `{root}`
//! in a command): a path, or `"generated"` for a set of files the run
//! writes into the result set's `www/` ([`crate::protocol::write_static_set`]).

use crate::cell;
use crate::load::LoadSpec;
use crate::protocol::{Protocol, ProtocolArgs, Request, Work};
use crate::results::cell::Shape;
use crate::server::ServerUnderTest;
use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

const QUICK: &str = include_str!("../../suites/quick.toml");
const FULL: &str = include_str!("../../suites/full.toml");
const COURSE: &str = include_str!("../../suites/course.toml");
const HTTP: &str = include_str!("../../suites/http.toml");
const WORK: &str = include_str!("../../suites/work.toml");
const UDP: &str = include_str!("../../suites/udp.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub models: Vec<ModelEntry>,
    /// The directory HTTP servers serve: a path, or "generated".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    #[serde(rename = "sweep")]
    pub sweeps: Vec<Sweep>,
}

/// A server to run: a plain model name, a labelled variant of a model with
/// options, or a labelled command (`{port}`/`{addr}` replaced at start).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelEntry {
    Name(String),
    Table(EntryTable),
}

/// `{ label = .., model = .., args = [..] }` or `{ label = .., command = [..] }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryTable {
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
}

impl ModelEntry {
    fn server(&self) -> Result<ServerUnderTest> {
        match self {
            ModelEntry::Name(name) => ServerUnderTest::model(name, &[], None),
            ModelEntry::Table(EntryTable {
                label,
                model: Some(model),
                args,
                command: None,
            }) => ServerUnderTest::model(model, args, Some(label)),
            ModelEntry::Table(EntryTable {
                label,
                model: None,
                args,
                command: Some(command),
            }) if args.is_empty() => ServerUnderTest::command(command.clone(), Some(label)),
            ModelEntry::Table(EntryTable { label, .. }) => bail!(
                "models entry '{label}' needs either model (with optional args) or command, not both or neither"
            ),
        }
    }

    fn names(&self) -> (&str, Option<&str>) {
        match self {
            ModelEntry::Name(name) => (name, Some(name)),
            ModelEntry::Table(table) => (&table.label, table.model.as_deref()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    pub name: String,
    pub shape: Shape,
    pub connections: Vec<u32>,
    /// Bytes per echo message (HTTP: unused, each request's own size).
    #[serde(default = "default_size")]
    pub size: Vec<u32>,
    #[serde(default = "no_idle")]
    pub idle: Vec<u32>,
    #[serde(default)]
    pub rate: Vec<f64>,
    #[serde(default, skip_serializing_if = "is_echo")]
    pub protocol: Protocol,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request: Vec<String>,
    #[serde(default = "one_in_flight", skip_serializing_if = "is_one_in_flight")]
    pub pipeline: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub work: Vec<String>,
    /// Whether the cells of this sweep count the server's system calls (a
    /// counting phase after each window: about a second per cell, most of
    /// it detaching the tracepoints). `false` for sweeps where the suite's
    /// time matters more than their system calls.
    #[serde(default = "counted")]
    pub syscalls: bool,
}

fn default_size() -> Vec<u32> {
    vec![64]
}

fn no_idle() -> Vec<u32> {
    vec![0]
}

fn counted() -> bool {
    true
}

fn one_in_flight() -> Vec<u32> {
    vec![1]
}

fn is_one_in_flight(pipeline: &Vec<u32>) -> bool {
    *pipeline == [1]
}

fn is_echo(protocol: &Protocol) -> bool {
    *protocol == Protocol::Echo
}

impl Sweep {
    /// Every (request, pipeline, work) of the sweep, as protocol options.
    fn protocols(&self) -> Result<Vec<ProtocolArgs>> {
        let requests: Vec<Option<Request>> = if self.request.is_empty() {
            vec![None]
        } else {
            ensure!(
                self.protocol == Protocol::Http,
                "sweep '{}': request applies to protocol \"http\" only",
                self.name
            );
            self.request
                .iter()
                .map(|text| {
                    text.parse()
                        .map(Some)
                        .map_err(|error: String| anyhow::anyhow!("sweep '{}': request {error}", self.name))
                })
                .collect::<Result<_>>()?
        };
        let works: Vec<Option<Work>> = if self.work.is_empty() {
            vec![None]
        } else {
            self.work
                .iter()
                .map(|text| {
                    text.parse()
                        .map(Some)
                        .map_err(|error: String| anyhow::anyhow!("sweep '{}': work {error}", self.name))
                })
                .collect::<Result<_>>()?
        };
        ensure!(
            !self.pipeline.is_empty(),
            "sweep '{}': pipeline is empty",
            self.name
        );
        let mut all = Vec::new();
        for request in &requests {
            for &pipeline in &self.pipeline {
                ensure!(
                    (1..=crate::protocol::MAX_PIPELINE).contains(&pipeline),
                    "sweep '{}': pipeline must be 1 to {}",
                    self.name,
                    crate::protocol::MAX_PIPELINE
                );
                for work in &works {
                    all.push(ProtocolArgs {
                        protocol: self.protocol,
                        request: request.clone(),
                        pipeline,
                        root: None,
                        work: *work,
                    });
                }
            }
        }
        Ok(all)
    }
}

/// One scenario: a named load, run against every model.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub load: LoadSpec,
    /// Its sweep's `syscalls`.
    pub count_syscalls: bool,
    /// What the load speaks and what a model is told (applied per cell).
    pub protocol: ProtocolArgs,
}

impl Suite {
    /// `quick`, `full`, `course`, or a path to a suite file.
    pub fn load(name_or_path: &str) -> Result<Suite> {
        let (source, text) = match name_or_path {
            "quick" => ("built-in suite 'quick'".to_owned(), QUICK.to_owned()),
            "full" => ("built-in suite 'full'".to_owned(), FULL.to_owned()),
            "course" => ("built-in suite 'course'".to_owned(), COURSE.to_owned()),
            "http" => ("built-in suite 'http'".to_owned(), HTTP.to_owned()),
            "work" => ("built-in suite 'work'".to_owned(), WORK.to_owned()),
            "udp" => ("built-in suite 'udp'".to_owned(), UDP.to_owned()),
            path => {
                let text = std::fs::read_to_string(Path::new(path)).with_context(|| {
                    format!(
                        "cannot read suite '{path}' (the built-in suites are 'quick', 'full', 'course', 'http', 'work' and 'udp')"
                    )
                })?;
                (format!("suite file {path}"), text)
            }
        };
        let suite: Suite = toml::from_str(&text).with_context(|| format!("{source} is not a valid suite"))?;
        suite
            .check()
            .with_context(|| format!("{source} is not a valid suite"))?;
        Ok(suite)
    }

    fn check(&self) -> Result<()> {
        ensure!(
            self.warmup_s >= 0.0 && self.warmup_s <= 600.0,
            "warmup_s must be 0 to 600"
        );
        ensure!(
            self.duration_s > 0.0 && self.duration_s <= 3600.0,
            "duration_s must be above 0 and at most 3600"
        );
        ensure!(!self.models.is_empty(), "models is empty");
        ensure!(!self.sweeps.is_empty(), "there is no [[sweep]]");
        let servers = self.servers()?;
        for (index, server) in servers.iter().enumerate() {
            ensure!(
                !servers[..index]
                    .iter()
                    .any(|earlier| earlier.label == server.label),
                "two models entries are labelled '{}'",
                server.label
            );
        }
        for sweep in &self.sweeps {
            sweep.protocols()?;
            ensure!(
                !sweep.connections.is_empty() && !sweep.size.is_empty(),
                "sweep '{}' needs connections and size",
                sweep.name
            );
            ensure!(
                sweep.shape != Shape::Open || !sweep.rate.is_empty(),
                "open-loop sweep '{}' needs a rate list",
                sweep.name
            );
            ensure!(
                sweep.shape == Shape::Open || sweep.rate.is_empty(),
                "sweep '{}': rate applies to open loop only",
                sweep.name
            );
        }
        for scenario in self.scenarios() {
            cell::check_load(&scenario.load).with_context(|| format!("scenario {}", scenario.name))?;
        }
        Ok(())
    }

    /// The servers of the suite, in file order.
    pub fn servers(&self) -> Result<Vec<ServerUnderTest>> {
        self.models.iter().map(ModelEntry::server).collect()
    }

    /// Keeps only the servers named in `wanted` (a label, or a model name
    /// for all its variants), in the order given; a built-in model the suite
    /// does not list is added as it is, so `--models` can mix the suite's
    /// commands with any model.
    pub fn select_models(&mut self, wanted: &[String]) -> Result<()> {
        let mut selected = Vec::new();
        for name in wanted {
            let matching: Vec<&ModelEntry> = self
                .models
                .iter()
                .filter(|entry| {
                    let (label, model) = entry.names();
                    label == name || model == Some(name.as_str())
                })
                .collect();
            if matching.is_empty() {
                if echo_core::MODELS.contains(&name.as_str())
                    || echo_core::DATAGRAM_MODELS.contains(&name.as_str())
                {
                    selected.push(ModelEntry::Name(name.clone()));
                    continue;
                }
                let labels: Vec<&str> = self.models.iter().map(|entry| entry.names().0).collect();
                bail!(
                    "'{name}' is neither in suite '{}' ({}) nor a model ({})",
                    self.name,
                    labels.join(", "),
                    echo_core::MODELS.join(", ")
                );
            }
            for entry in matching {
                if !selected
                    .iter()
                    .any(|chosen: &ModelEntry| chosen.names().0 == entry.names().0)
                {
                    selected.push(entry.clone());
                }
            }
        }
        self.models = selected;
        Ok(())
    }

    /// Every scenario of every sweep, in file order.
    pub fn scenarios(&self) -> Vec<Scenario> {
        let mut scenarios = Vec::new();
        for sweep in &self.sweeps {
            let rates: Vec<Option<f64>> = if sweep.rate.is_empty() {
                vec![None]
            } else {
                sweep.rate.iter().copied().map(Some).collect()
            };
            let protocols = sweep.protocols().unwrap_or_default();
            for &size in &sweep.size {
                for &idle in &sweep.idle {
                    for &rate in &rates {
                        for (&connections, protocol) in sweep.connections.iter().flat_map(|connections| {
                            protocols.iter().map(move |protocol| (connections, protocol))
                        }) {
                            let load = LoadSpec {
                                protocol: sweep.protocol,
                                shape: sweep.shape,
                                connections,
                                size,
                                rate,
                                idle,
                                warmup: Duration::from_secs_f64(self.warmup_s),
                                duration: Duration::from_secs_f64(self.duration_s),
                                client_threads: 1,
                                step: Default::default(),
                                pipeline: protocol.pipeline,
                            };
                            scenarios.push(Scenario {
                                name: protocol.scenario_name(&load),
                                load,
                                count_syscalls: sweep.syscalls,
                                protocol: protocol.clone(),
                            });
                        }
                    }
                }
            }
        }
        scenarios
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_udp_suite_parses_into_datagram_scenarios_for_the_three_variants() {
        let udp = Suite::load("udp").unwrap();
        let labels: Vec<String> = udp
            .servers()
            .unwrap()
            .into_iter()
            .map(|server| server.label)
            .collect();
        assert_eq!(labels, ["udp", "udp-batch32", "udp-workers2"]);
        let scenarios = udp.scenarios();
        assert_eq!(scenarios.len(), 3 * 2 + 6);
        assert!(
            scenarios
                .iter()
                .all(|scenario| scenario.load.protocol == crate::protocol::Protocol::Udp)
        );
        assert!(
            scenarios
                .iter()
                .any(|scenario| scenario.name == "udp-closed-c1000-s1400")
        );
        assert!(
            scenarios
                .iter()
                .any(|scenario| scenario.name == "udp-open-r400000-c100-s64")
        );
    }

    #[test]
    fn built_in_suites_parse_and_expand() {
        let quick = Suite::load("quick").unwrap();
        assert_eq!(quick.servers().unwrap().len(), echo_core::MODELS.len());
        assert_eq!(quick.scenarios().len(), 4);
        let full = Suite::load("full").unwrap();
        let servers = full.servers().unwrap();
        let edge = servers
            .iter()
            .find(|server| server.label == "epoll-edge")
            .unwrap();
        assert_eq!(
            (edge.model_name(), edge.model_args()),
            (Some("epoll"), &["--edge".to_owned()][..])
        );
        let names: Vec<_> = full.scenarios().into_iter().map(|s| s.name).collect();
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "scenario names must be unique: {names:?}"
        );
        // The course: every Python server beside its Rust twin.
        let course = Suite::load("course").unwrap();
        let labels: Vec<String> = course
            .servers()
            .unwrap()
            .into_iter()
            .map(|server| server.label)
            .collect();
        for twin in [
            "single",
            "threaded",
            "pool",
            "process",
            "nonblocking",
            "select",
            "epoll",
            "coroutine",
        ] {
            assert!(labels.contains(&twin.to_owned()), "{twin} in {labels:?}");
            assert!(labels.contains(&format!("py-{twin}")), "py-{twin} in {labels:?}");
        }
        assert_eq!(course.scenarios().len(), 10);
        // System calls are counted at 100 connections only, to keep the
        // course within 8 minutes.
        let counted: Vec<_> = course
            .scenarios()
            .into_iter()
            .filter(|scenario| scenario.count_syscalls)
            .map(|scenario| scenario.load.connections)
            .collect();
        assert_eq!(counted, [100, 100]);
        assert!(quick.scenarios().iter().all(|scenario| scenario.count_syscalls));
    }

    #[test]
    fn the_http_and_work_suites_expand_into_named_protocol_scenarios() {
        let http = Suite::load("http").unwrap();
        assert_eq!(http.root.as_deref(), Some("generated"));
        let names: Vec<String> = http.scenarios().into_iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "http-plaintext-closed-c1",
                "http-plaintext-closed-c1-p16",
                "http-plaintext-closed-c100",
                "http-plaintext-closed-c100-p16",
                "http-plaintext-closed-c1000",
                "http-plaintext-closed-c1000-p16",
                "http-static-64k.bin-closed-c1",
                "http-static-64k.bin-closed-c100",
                "http-static-64k.bin-closed-c1000",
            ]
        );
        let labels: Vec<String> = http
            .servers()
            .unwrap()
            .into_iter()
            .map(|server| server.label)
            .collect();
        assert!(labels.contains(&"nginx-1".to_owned()) && labels.contains(&"nginx-2".to_owned()));
        let work = Suite::load("work").unwrap();
        let scenarios = work.scenarios();
        let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"closed-c100-s64-wait1000"), "{names:?}");
        assert!(names.contains(&"closed-c100-s64-cpu10"), "{names:?}");
        assert!(names.contains(&"http-plaintext-closed-c100-cpu100"), "{names:?}");
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        // A model is told the work; a bad value is refused with the sweep's name.
        let mut pool = ServerUnderTest::model("pool", &[], None).unwrap();
        scenarios[1].protocol.apply(&mut pool).unwrap();
        assert_eq!(pool.model_args(), ["--work", "wait:1000"]);
        let bad = WORK.replace("\"wait:100\",", "\"wait:-1\",");
        let error = toml::from_str::<Suite>(&bad).unwrap().check().unwrap_err();
        assert!(format!("{error:#}").contains("sweep 'wait': work"), "{error:#}");
    }

    #[test]
    fn selecting_an_unknown_model_names_it() {
        let mut quick = Suite::load("quick").unwrap();
        let error = quick.select_models(&["epol".to_owned()]).unwrap_err();
        assert!(error.to_string().contains("'epol'"), "{error}");
        quick
            .select_models(&["epoll".to_owned(), "async".to_owned()])
            .unwrap();
        assert_eq!(quick.servers().unwrap().len(), 2);
    }

    #[test]
    fn a_suite_can_hold_commands_and_mix_them_with_models() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        std::fs::write(
            &path,
            r#"
name = "mine"
warmup_s = 0.5
duration_s = 1.0
models = [{ label = "mine", command = ["./my-server", "--port", "{port}"] }]
[[sweep]]
name = "closed"
shape = "closed"
connections = [10]
size = [64]
"#,
        )
        .unwrap();
        let mut suite = Suite::load(path.to_str().unwrap()).unwrap();
        suite
            .select_models(&["epoll".to_owned(), "mine".to_owned()])
            .unwrap();
        let servers = suite.servers().unwrap();
        let labels: Vec<&str> = servers.iter().map(|server| server.label.as_str()).collect();
        assert_eq!(labels, ["epoll", "mine"]);
        assert_eq!(
            servers[1].command_argv().unwrap(),
            ["./my-server", "--port", "{port}"]
        );
        std::fs::write(
            &path,
            r#"
name = "bad"
warmup_s = 0.5
duration_s = 1.0
models = [{ label = "both", model = "epoll", command = ["x"] }]
[[sweep]]
name = "closed"
shape = "closed"
connections = [10]
size = [64]
"#,
        )
        .unwrap();
        let error = format!("{:#}", Suite::load(path.to_str().unwrap()).unwrap_err());
        assert!(
            error.contains("either model") && error.contains("'both'"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_suite_file_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "name = \"x\"\nwarmup_s = 1\n").unwrap();
        let error = Suite::load(path.to_str().unwrap()).unwrap_err();
        assert!(format!("{error:#}").contains("bad.toml"), "{error:#}");
        let missing = Suite::load("/nonexistent/suite.toml").unwrap_err();
        assert!(
            format!("{missing:#}").contains("cannot read suite"),
            "{missing:#}"
        );
    }
}
