//! What a load speaks, as the commands take it: `--protocol`, `--request`,
//! `--pipeline`, `--root` and `--work` ([`ProtocolArgs`], flattened into
//! `bench` and `run`), checked once and turned into the load's
//! [`StepSpec`] and the options a spawned model gets.

use crate::load::StepSpec;
use crate::load::http::HttpLoad;
use crate::server::{Kind, ServerUnderTest};
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// The protocol a load speaks (and a spawned model is asked to serve).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Bytes echoed back, every one checked.
    #[default]
    Echo,
    /// HTTP/1.1 requests, every response parsed and checked.
    Http,
    /// UDP datagrams, each echoed whole to its sender and checked by flow
    /// and sequence number (`harness/src/load/udp.rs`); the model is `udp`.
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Echo => "echo",
            Protocol::Http => "http",
            Protocol::Udp => "udp",
        }
    }
}

/// What each HTTP request asks for (`--request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `GET /plaintext` → `Hello, World!`.
    Plaintext,
    /// `POST /echo` with a body of this many bytes, echoed back.
    Echo(u32),
    /// `GET /PATH` of a file under the server's root, relative to it.
    Static(PathBuf),
}

/// Largest `--request echo:BYTES` body.
pub const MAX_ECHO_BODY: u32 = 64 * 1024 * 1024;

impl FromStr for Request {
    type Err = String;

    fn from_str(text: &str) -> Result<Request, String> {
        if text == "plaintext" {
            return Ok(Request::Plaintext);
        }
        if let Some(bytes) = text.strip_prefix("echo:") {
            return match bytes.parse::<u32>() {
                Ok(size) if (1..=MAX_ECHO_BODY).contains(&size) => Ok(Request::Echo(size)),
                _ => Err(format!(
                    "echo:BYTES needs 1 to {MAX_ECHO_BODY} bytes (got '{bytes}')"
                )),
            };
        }
        if let Some(path) = text.strip_prefix("static:") {
            let path = path.trim_start_matches('/');
            if path.is_empty() {
                return Err("static:PATH needs a file path under --root".into());
            }
            return Ok(Request::Static(PathBuf::from(path)));
        }
        Err(format!("'{text}' is not plaintext, echo:BYTES or static:PATH"))
    }
}

impl Request {
    /// How a scenario name shows it.
    pub fn tag(&self) -> String {
        match self {
            Request::Plaintext => "plaintext".into(),
            Request::Echo(size) => format!("echo{size}"),
            Request::Static(path) => format!(
                "static-{}",
                path.to_string_lossy()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || c == '.' {
                        c
                    } else {
                        '-'
                    })
                    .collect::<String>()
            ),
        }
    }
}

/// As `--request` takes it: `plaintext`, `echo:BYTES`, `static:PATH`.
impl std::fmt::Display for Request {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Plaintext => write!(out, "plaintext"),
            Request::Echo(size) => write!(out, "echo:{size}"),
            Request::Static(path) => write!(out, "static:{}", path.display()),
        }
    }
}

/// What a model does before each answer (`--work`, passed to the model).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Work {
    #[default]
    None,
    /// About this many µs of the server's own CPU.
    Cpu(u64),
    /// A wait of this many µs for something outside the server.
    Wait(u64),
}

/// Longest `--work` in µs (10 s).
pub const MAX_WORK_MICROS: u64 = 10_000_000;

impl FromStr for Work {
    type Err = String;

    fn from_str(text: &str) -> Result<Work, String> {
        if text == "none" {
            return Ok(Work::None);
        }
        let (kind, micros) = text
            .split_once(':')
            .ok_or_else(|| format!("'{text}' is not none, cpu:MICROS or wait:MICROS"))?;
        let micros = match micros.parse::<u64>() {
            Ok(micros) if micros <= MAX_WORK_MICROS => micros,
            _ => {
                return Err(format!(
                    "{kind}:MICROS needs 0 to {MAX_WORK_MICROS} microseconds (got '{micros}')"
                ));
            }
        };
        match kind {
            "cpu" => Ok(Work::Cpu(micros)),
            "wait" => Ok(Work::Wait(micros)),
            _ => Err(format!("'{text}' is not none, cpu:MICROS or wait:MICROS")),
        }
    }
}

impl std::fmt::Display for Work {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Work::None => write!(out, "none"),
            Work::Cpu(micros) => write!(out, "cpu:{micros}"),
            Work::Wait(micros) => write!(out, "wait:{micros}"),
        }
    }
}

/// The protocol options of `bench` (and of each cell of `run`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProtocolArgs {
    /// What the load speaks: echo (TCP, every byte echoed), http (every
    /// response parsed and checked; a spawned model is started with
    /// `--protocol http`) or udp (each --connections flow its own UDP
    /// socket, every datagram checked; the model is `udp`).
    #[arg(long, value_enum, default_value_t = Protocol::Echo)]
    pub protocol: Protocol,
    /// HTTP: what each request asks for: plaintext (GET /plaintext),
    /// echo:BYTES (POST /echo with a body) or static:PATH (GET /PATH, a file
    /// under --root, read once at the start to check every response).
    #[arg(long, value_name = "plaintext|echo:BYTES|static:PATH")]
    pub request: Option<Request>,
    /// Requests (echo: messages) in flight per connection in the closed loop.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub pipeline: u32,
    /// The directory the server serves (passed to a model as --root, and
    /// `{root}` in --server-cmd); static:PATH is read from it.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Work a model does before each answer: none, cpu:MICROS or
    /// wait:MICROS (passed to the model as --work).
    #[arg(long, value_name = "none|cpu:MICROS|wait:MICROS")]
    pub work: Option<Work>,
}

impl ProtocolArgs {
    /// The scenario's name: the load's ([`crate::cell::scenario_name`]),
    /// for HTTP led by the request (`http-plaintext-closed-c100-p16`: a
    /// request's size is the request's), and the work it costs
    /// (`-wait1000`).
    pub fn scenario_name(&self, load: &crate::load::LoadSpec) -> String {
        let mut name = crate::cell::scenario_name(load);
        if self.protocol == Protocol::Http {
            let size = format!("-s{}", load.size);
            let request = self.request.clone().unwrap_or(Request::Plaintext);
            name = format!("http-{}-{}", request.tag(), name.replacen(&size, "", 1));
        }
        if let Some(work) = self.work.filter(|work| *work != Work::None) {
            name.push_str(&format!("-{}", work.to_string().replace(':', "")));
        }
        name
    }
}

/// The files a suite's generated root holds (`root = "generated"`): an
/// index, the plaintext body as a file, and a 64 KiB file of bytes that are
/// not all alike.
pub fn write_static_set(root: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    let files: [(&str, Vec<u8>); 3] = [
        (
            "index.html",
            b"<!doctype html><title>echolab</title><p>echolab".to_vec(),
        ),
        ("hello.txt", crate::load::http::PLAINTEXT.to_vec()),
        (
            "64k.bin",
            (0..65536u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect(),
        ),
    ];
    for (name, bytes) in files {
        let path = root.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Most requests in flight per connection.
pub const MAX_PIPELINE: u32 = 1024;

impl ProtocolArgs {
    /// Checks the options against each other and the server, adds what a
    /// spawned model must be told, and returns the load's step.
    pub fn apply(&self, server: &mut ServerUnderTest) -> anyhow::Result<StepSpec> {
        if !(1..=MAX_PIPELINE).contains(&self.pipeline) {
            bail!(
                "--pipeline must be between 1 and {MAX_PIPELINE} (got {})",
                self.pipeline
            );
        }
        let root = match &self.root {
            Some(root) if !root.is_dir() => bail!("--root {} is not a directory", root.display()),
            Some(root) => Some(
                root.canonicalize()
                    .with_context(|| format!("--root {}", root.display()))?,
            ),
            None => None,
        };
        if self.protocol != Protocol::Http && self.request.is_some() {
            bail!("--request applies only to --protocol http");
        }
        if self.protocol == Protocol::Udp && self.pipeline != 1 {
            bail!(
                "--pipeline applies to TCP streams, not to --protocol udp (one datagram in flight per flow)"
            );
        }
        let work = self.work.filter(|work| *work != Work::None);
        match &mut server.kind {
            Kind::Model { args, .. } => {
                // The udp model speaks datagrams whatever it is told; the
                // TCP models are told which protocol to serve.
                if self.protocol == Protocol::Http {
                    args.extend(["--protocol".into(), self.protocol.name().into()]);
                }
                if let Some(root) = &root {
                    args.extend(["--root".into(), root.display().to_string()]);
                }
                if let Some(work) = work {
                    args.extend(["--work".into(), work.to_string()]);
                }
            }
            Kind::Command { argv } => {
                if work.is_some() {
                    bail!("--work is passed to a model; give your own server its work yourself");
                }
                if root.is_none() && argv.iter().any(|arg| arg.contains("{root}")) {
                    bail!("--server-cmd uses {{root}}: give --root DIR");
                }
                server.launch.root = root.clone();
            }
            Kind::Target { .. } => {
                if work.is_some() {
                    bail!("--work is passed to a model; a --target server does its own work");
                }
            }
        }
        Ok(match self.protocol {
            // UDP's flows check their datagrams themselves (`load::udp`).
            Protocol::Echo | Protocol::Udp => StepSpec::Echo,
            Protocol::Http => {
                let request = self.request.clone().unwrap_or(Request::Plaintext);
                let model = server.model_name().map(str::to_owned);
                StepSpec::Http(Arc::new(HttpLoad::new(
                    &request,
                    root.as_deref(),
                    model,
                    self.pipeline,
                )?))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_work_parse_or_say_why_not() {
        assert_eq!("plaintext".parse(), Ok(Request::Plaintext));
        assert_eq!("echo:512".parse(), Ok(Request::Echo(512)));
        assert_eq!("static:/a/b.html".parse(), Ok(Request::Static("a/b.html".into())));
        assert!("echo:0".parse::<Request>().unwrap_err().contains("1 to"));
        assert!("json".parse::<Request>().is_err());
        assert_eq!("cpu:50".parse(), Ok(Work::Cpu(50)));
        assert_eq!("wait:1000".parse(), Ok(Work::Wait(1000)));
        assert_eq!("none".parse(), Ok(Work::None));
        assert!("wait:-1".parse::<Work>().unwrap_err().contains("microseconds"));
        assert!("sleep:5".parse::<Work>().is_err());
        assert_eq!(Work::Wait(7).to_string(), "wait:7");
        for text in ["plaintext", "echo:512", "static:a/b.html"] {
            assert_eq!(text.parse::<Request>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn a_model_is_told_the_protocol_root_and_work() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.txt"), b"abc").unwrap();
        let mut server = ServerUnderTest::model("epoll", &[], None).unwrap();
        let args = ProtocolArgs {
            protocol: Protocol::Http,
            request: Some(Request::Static("a.txt".into())),
            pipeline: 16,
            root: Some(root.path().to_owned()),
            work: Some(Work::Wait(100)),
        };
        let step = args.apply(&mut server).unwrap();
        assert!(matches!(step, StepSpec::Http(_)));
        let canonical = root.path().canonicalize().unwrap().display().to_string();
        assert_eq!(
            server.model_args(),
            [
                "--protocol",
                "http",
                "--root",
                canonical.as_str(),
                "--work",
                "wait:100"
            ]
        );
        // A path that escapes the root is refused.
        let escape = ProtocolArgs {
            request: Some(Request::Static("../x".into())),
            ..args.clone()
        };
        let error = escape
            .apply(&mut ServerUnderTest::model("epoll", &[], None).unwrap())
            .unwrap_err();
        assert!(error.to_string().contains("under --root"), "{error}");
        let zero = ProtocolArgs { pipeline: 0, ..args };
        assert!(zero.apply(&mut server).is_err());
    }
}
