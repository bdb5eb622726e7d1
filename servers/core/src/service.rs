//! What every connection of a model does, whatever the model: the options
//! `--protocol echo|http`, `--root DIR` and `--work none|cpu:MICROS|wait:MICROS`,
//! shared by every model binary and `harness serve`.
//!
//! The process contract ([`crate::process`]) parses them once, beside
//! `--addr`, and [`install`]s the [`Service`] for the whole process before
//! the model's `serve` runs; each connection's step ([`crate::step::Step`])
//! is made from [`current`]. A model's own options say how it waits for
//! connections; these say what a connection asks of it.

use clap::ValueEnum;
use std::hash::{DefaultHasher, Hasher};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The protocol each connection speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Every byte read is written back, nothing added.
    #[default]
    Echo,
    /// HTTP/1.1: `GET /plaintext`, `POST /echo`, static files under `--root`.
    Http,
}

/// What a connection costs the server before each response (each echoed
/// read, each HTTP request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Work {
    /// Answer at once.
    #[default]
    None,
    /// Compute for about this long on the server's own CPU (hashing the
    /// request in a loop): compute-bound work.
    Cpu(Duration),
    /// Wait this long for "something outside" (a database, a backend):
    /// I/O-bound work. How a model waits is its lesson.
    Wait(Duration),
}

impl std::str::FromStr for Work {
    type Err = String;

    /// `none`, `cpu:MICROS` or `wait:MICROS`, MICROS a whole number of microseconds.
    fn from_str(text: &str) -> Result<Work, String> {
        if text == "none" {
            return Ok(Work::None);
        }
        let expected =
            || format!("'{text}' is not none, cpu:MICROS or wait:MICROS (MICROS a whole number ≥ 1)");
        let (kind, micros) = text.split_once(':').ok_or_else(expected)?;
        if micros.is_empty() || !micros.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(expected());
        }
        let micros: u64 = micros.parse().map_err(|_| expected())?;
        if micros == 0 {
            return Err(expected());
        }
        let duration = Duration::from_micros(micros);
        match kind {
            "cpu" => Ok(Work::Cpu(duration)),
            "wait" => Ok(Work::Wait(duration)),
            _ => Err(expected()),
        }
    }
}

impl std::fmt::Display for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Work::None => write!(f, "none"),
            Work::Cpu(d) => write!(f, "cpu:{}", d.as_micros()),
            Work::Wait(d) => write!(f, "wait:{}", d.as_micros()),
        }
    }
}

/// The options every model takes (flattened into each binary's command line).
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// What each connection speaks.
    #[arg(long, value_enum, default_value_t = Protocol::Echo)]
    pub protocol: Protocol,

    /// Directory of the static files `--protocol http` serves (`GET /` is its index.html).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub root: PathBuf,

    /// Work before each response: none, cpu:MICROS (compute) or wait:MICROS (wait for something outside).
    #[arg(long, value_name = "none|cpu:MICROS|wait:MICROS", default_value = "none")]
    pub work: Work,
}

impl Default for ServiceArgs {
    fn default() -> Self {
        ServiceArgs {
            protocol: Protocol::Echo,
            root: PathBuf::from("."),
            work: Work::None,
        }
    }
}

/// The service of this process: checked options, ready for every connection.
#[derive(Debug, Clone)]
pub struct Service {
    pub protocol: Protocol,
    /// The canonical `--root`: every file served is under it.
    pub root: PathBuf,
    pub work: Work,
    /// `Server:` header value, `echolab-MODEL`.
    pub server: String,
    /// Rounds of [`burn`] per microsecond, measured once at start (cpu work only).
    rounds_per_micro: f64,
}

impl Service {
    /// Checks `args` for `model`: `Err` is one sentence (a missing root).
    pub fn new(model: &str, args: &ServiceArgs) -> Result<Service, String> {
        let root = std::fs::canonicalize(&args.root)
            .map_err(|error| format!("cannot serve --root {}: {error}", args.root.display()))?;
        if !root.is_dir() {
            return Err(format!(
                "cannot serve --root {}: not a directory",
                args.root.display()
            ));
        }
        let rounds_per_micro = match args.work {
            Work::Cpu(_) => calibrate(),
            _ => 0.0,
        };
        Ok(Service {
            protocol: args.protocol,
            root,
            work: args.work,
            server: format!("echolab-{model}"),
            rounds_per_micro,
        })
    }

    /// `cpu:` work: hashes `input` for about the configured time.
    pub fn compute(&self, input: &[u8]) {
        if let Work::Cpu(duration) = self.work {
            let rounds = (duration.as_secs_f64() * 1e6 * self.rounds_per_micro).max(1.0) as u64;
            std::hint::black_box(burn(input, rounds));
        }
    }
}

static SERVICE: OnceLock<Service> = OnceLock::new();

/// Sets the service of this process (the process contract does it once,
/// before `serve`); later calls are ignored.
pub fn install(service: Service) {
    let _ = SERVICE.set(service);
}

/// The service of this process: the one [`install`]ed, or the default echo
/// (for a model's `serve` called without the process contract, as in a unit test).
pub fn current() -> &'static Service {
    SERVICE
        .get_or_init(|| Service::new("echo", &ServiceArgs::default()).expect("the current directory exists"))
}

/// The computation of `cpu:` work: `rounds` hashes of the request (at most
/// its first 64 bytes), each chained to the last.
fn burn(input: &[u8], rounds: u64) -> u64 {
    let sample = &input[..input.len().min(64)];
    let mut state = 0u64;
    for _ in 0..rounds {
        let mut hasher = DefaultHasher::new();
        hasher.write_u64(state);
        hasher.write(sample);
        state = hasher.finish();
    }
    state
}

/// Rounds of [`burn`] per microsecond on this machine: the best of a few
/// 2 ms measurements (the least disturbed).
fn calibrate() -> f64 {
    let sample = [0x5au8; 64];
    let mut best = 0.0f64;
    for _ in 0..5 {
        let started = Instant::now();
        let mut rounds = 0u64;
        while started.elapsed() < Duration::from_millis(2) {
            std::hint::black_box(burn(&sample, 1000));
            rounds += 1000;
        }
        best = best.max(rounds as f64 / started.elapsed().as_secs_f64() / 1e6);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_parses_and_refuses_with_a_sentence() {
        assert_eq!("none".parse::<Work>(), Ok(Work::None));
        assert_eq!(
            "cpu:250".parse::<Work>(),
            Ok(Work::Cpu(Duration::from_micros(250)))
        );
        assert_eq!(
            "wait:1000".parse::<Work>(),
            Ok(Work::Wait(Duration::from_micros(1000)))
        );
        for bad in ["wait:-1", "wait:+5", "wait:0", "cpu:", "sleep:10", "cpu:1.5", ""] {
            let error = bad.parse::<Work>().unwrap_err();
            assert!(error.contains("cpu:MICROS"), "{bad}: {error}");
        }
        assert_eq!(Work::Wait(Duration::from_micros(7)).to_string(), "wait:7");
    }

    #[test]
    fn a_missing_root_is_one_sentence() {
        let args = ServiceArgs {
            root: PathBuf::from("/no/such/dir/echolab"),
            ..ServiceArgs::default()
        };
        let error = Service::new("epoll", &args).unwrap_err();
        assert!(
            error.starts_with("cannot serve --root /no/such/dir/echolab"),
            "{error}"
        );
        assert_eq!(
            Service::new("epoll", &ServiceArgs::default()).unwrap().server,
            "echolab-epoll"
        );
    }

    #[test]
    fn cpu_work_takes_about_its_time() {
        let args = ServiceArgs {
            work: Work::Cpu(Duration::from_millis(20)),
            ..ServiceArgs::default()
        };
        let service = Service::new("single", &args).unwrap();
        let started = Instant::now();
        service.compute(b"GET /plaintext HTTP/1.1");
        let took = started.elapsed();
        // Generous: a shared machine may preempt, and calibration may be off.
        assert!(took >= Duration::from_millis(5), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}
