//! One cell's numbers: the document written to `cells/*.json` and printed by
//! `harness bench --json`. Everything the report knows about a cell is here
//! (plus the cell's `.hgrm` and `.hlog` files).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How load is offered.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// Ping-pong: one message in flight per connection; latency = round trip.
    Closed,
    /// Fixed aggregate rate; latency from each message's intended send time.
    Open,
    /// Connect, echo once, close: the accept path.
    Churn,
}

impl Shape {
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Closed => "closed",
            Shape::Open => "open",
            Shape::Churn => "churn",
        }
    }
}

/// A validity flag: the cell's numbers say less than they seem to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    /// The load generator was ≥ 95% busy: the server may have had more to give.
    ClientBound,
    /// Open loop: sends fell behind their intended times.
    BehindSchedule,
    /// A byte was wrong or lost, or a connection failed.
    Errors,
    /// Some connections got no service at all.
    Starved,
    /// The server and the load generator ran on a common CPU.
    SharedCpu,
    /// Other processes, or the VM's host (steal), took a share of the
    /// cell's CPUs during its window.
    Noisy,
    /// A load host began after the instant the hosts agreed on (`--start-at`).
    LateStart,
    /// UDP: the load generator's own sockets dropped datagrams (or could
    /// not send them): the instrument lost them, not the server.
    ClientDropped,
}

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::ClientBound => "client-bound",
            Flag::BehindSchedule => "behind-schedule",
            Flag::Errors => "errors",
            Flag::Starved => "starved",
            Flag::SharedCpu => "shared-cpu",
            Flag::Noisy => "noisy",
            Flag::LateStart => "late-start",
            Flag::ClientDropped => "client-dropped",
        }
    }
}

/// Latency percentiles in microseconds (from a nanosecond-resolution histogram).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
}

/// Failures by kind. None is ever dropped silently.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    /// An echoed byte differed from the byte sent at that offset.
    pub mismatch: u64,
    /// The connection was reset (ECONNRESET, EPIPE).
    pub reset: u64,
    /// A message's echo did not arrive within the per-message deadline.
    pub timeout: u64,
    /// A connect failed or did not finish within the connect deadline.
    pub connect: u64,
    /// The server closed the connection with bytes still owed.
    pub closed: u64,
    /// Churn: no local port to connect from (EADDRNOTAVAIL, TIME_WAIT pile-up).
    pub addr_unavailable: u64,
    /// Bytes went missing: a connection the server had served (it had
    /// echoed at least one byte) waited longer than
    /// [`crate::load::LOST_AFTER`] for the rest of an echo, with no byte
    /// arriving, when the cell ended or its message deadline passed.
    #[serde(default)]
    pub lost: u64,
    /// The bytes those connections sent and never got back (a count of
    /// bytes, not of failures: not in [`Errors::total`]).
    #[serde(default)]
    pub lost_bytes: u64,
    /// HTTP: responses whose status was not 200, by status code (never
    /// counted as throughput).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub http_status: BTreeMap<u16, u64>,
    /// HTTP: a `Content-Length` (or chunked length) other than the body's
    /// (the connection is given up: its framing is lost).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub http_length: u64,
    /// HTTP: a body that differs from what it must be.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub http_body: u64,
    /// HTTP: a body that is another pipelined request's: answered out of order.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub http_order: u64,
    /// HTTP: bytes that are not an HTTP/1.x response (the connection is given up).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub http_parse: u64,
    /// HTTP: a `Date` missing, unparseable or more than 2 s from now, from a
    /// model (from a user's server: [`Errors::http_date_warnings`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub http_date: u64,
    /// HTTP: no `Server` header, or not `echolab-<model>`, from a model.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub http_server: u64,
    /// HTTP: the same `Date` faults from a user's server (`--target`,
    /// `--server-cmd`): warnings, not failures (not in [`Errors::total`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub http_date_warnings: u64,
    /// HTTP: the same `Server` faults from a user's server: warnings.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub http_server_warnings: u64,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// A UDP cell's datagrams by fate (`--protocol udp`). Each datagram carries
/// its flow and sequence number and bytes that are a function of both, so
/// every echo is checked. Counted over the datagrams sent in the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UdpStats {
    pub sent: u64,
    /// Echoed whole, right bytes, from the server's address (first copy).
    pub received: u64,
    /// Never came back in any form within the loss bound after the load.
    /// Not an error by itself: UDP may drop.
    pub lost: u64,
    pub loss_percent: f64,
    /// A second (or later) copy of a datagram already back.
    pub duplicated: u64,
    /// Came back after a later datagram of its flow.
    pub reordered: u64,
    /// Shorter than sent. Also an error (`errors.mismatch`).
    pub truncated: u64,
    /// Longer, a byte differs, or not this flow's datagram. Also an error.
    pub wrong_payload: u64,
    /// From another address than the server's. Also an error.
    pub wrong_sender: u64,
    /// The kernel's UDP counters over the window (`/proc/net/snmp`), for
    /// the whole machine: datagrams dropped for a full receive buffer, and
    /// all receive errors; `None` where they could not be read.
    pub kernel_rcvbuf_errors: Option<u64>,
    pub kernel_in_errors: Option<u64>,
    /// Drops of the server's sockets over the window (`/proc/net/udp`, the
    /// sockets bound to the target's port; a server on loopback only).
    pub server_socket_drops: Option<u64>,
    /// Drops of the load generator's own sockets over the window, and sends
    /// the generator could not make (its send buffer full): the instrument
    /// lost them, not the server. Non-zero: the cell is `client-dropped`.
    pub client_socket_drops: u64,
}

impl Errors {
    /// Failures of every kind (`lost_bytes` is not one).
    pub fn total(&self) -> u64 {
        self.mismatch
            + self.reset
            + self.timeout
            + self.connect
            + self.closed
            + self.addr_unavailable
            + self.lost
            + self.http_status.values().sum::<u64>()
            + self.http_length
            + self.http_body
            + self.http_order
            + self.http_parse
            + self.http_date
            + self.http_server
    }

    /// Adds `other`'s counts to these, kind by kind (status by status).
    pub fn add(&mut self, other: &Errors) {
        self.mismatch += other.mismatch;
        self.reset += other.reset;
        self.timeout += other.timeout;
        self.connect += other.connect;
        self.closed += other.closed;
        self.addr_unavailable += other.addr_unavailable;
        self.lost += other.lost;
        self.lost_bytes += other.lost_bytes;
        for (status, count) in &other.http_status {
            *self.http_status.entry(*status).or_default() += count;
        }
        self.http_length += other.http_length;
        self.http_body += other.http_body;
        self.http_order += other.http_order;
        self.http_parse += other.http_parse;
        self.http_date += other.http_date;
        self.http_server += other.http_server;
        self.http_date_warnings += other.http_date_warnings;
        self.http_server_warnings += other.http_server_warnings;
    }

    /// The HTTP kinds counted, as `http_status 500×3`, `http_body 2`: the
    /// failures, then the warnings (a user's server's `Date` and `Server`).
    pub fn http_kinds(&self) -> (Vec<String>, Vec<String>) {
        let counted = |pairs: &[(&str, u64)]| -> Vec<String> {
            pairs
                .iter()
                .filter(|(_, count)| *count > 0)
                .map(|(kind, count)| format!("{kind} {count}"))
                .collect()
        };
        let mut failures: Vec<String> = self
            .http_status
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|(status, count)| format!("http_status {status}×{count}"))
            .collect();
        failures.extend(counted(&[
            ("http_length", self.http_length),
            ("http_body", self.http_body),
            ("http_order", self.http_order),
            ("http_parse", self.http_parse),
            ("http_date", self.http_date),
            ("http_server", self.http_server),
        ]));
        let warnings = counted(&[
            ("http_date", self.http_date_warnings),
            ("http_server", self.http_server_warnings),
        ]);
        (failures, warnings)
    }
}

/// Messages per connection during the measurement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fairness {
    /// Jain's index: 1.0 when all connections got the same service, 1/n when
    /// one connection got all of it.
    pub jain: f64,
    pub min: u64,
    pub median: u64,
    pub max: u64,
}

/// The server's process tree, sampled from `/proc` (absent for `--target`):
/// every figure is summed over the server process and all its descendants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    /// The process the harness started (the leader of the tree).
    pub pid: u32,
    /// User+system CPU time over the measurement, as a percentage of one CPU.
    pub cpu_percent: f64,
    pub cpu_us_per_msg: f64,
    /// The server's memory, each page once: the peak its memory cgroup was
    /// charged over the window (KiB); absent where no memory cgroup could be
    /// made. [`ServerStats::memory_kib`] is the figure reports call memory.
    #[serde(default)]
    pub memory_peak_kib: Option<u64>,
    /// How `memory_peak_kib` was read, or why it is missing and what stands
    /// in for it.
    #[serde(default)]
    pub memory_method: Option<String>,
    /// The sum of the tree's proportional set sizes (each shared page split
    /// among the processes that map it), read once after the window with
    /// the clients still connected: a cross-check of `memory_peak_kib`.
    #[serde(default)]
    pub pss_kib: Option<u64>,
    /// Peak of the summed resident sets: counts shared pages once per
    /// process (a forking server's pages as many times as it has children),
    /// so it is not what reports call memory.
    pub rss_peak_kib: u64,
    /// Peak of the summed address spaces (VmSize): memory reserved, touched
    /// or not, such as every thread's whole stack.
    #[serde(default)]
    pub vm_peak_kib: u64,
    pub threads: u64,
    pub ctx_voluntary: u64,
    pub ctx_involuntary: u64,
    pub fds: u64,
    pub cpus: Vec<usize>,
    /// Most processes the tree had at once during the measurement.
    #[serde(default)]
    pub processes: u64,
    /// The share of the measurement's messages that fell between the
    /// server's first and last samples: its per-message figures are divided
    /// by those messages. 1 when the harness sampled on time, less when it
    /// was starved of CPU and woke late.
    #[serde(default = "whole")]
    pub sampled_share: f64,
    /// How the server ended when stopped with SIGTERM: `status 0`, `signal 9`.
    #[serde(default)]
    pub exit: Option<String>,
    /// What the server printed on stderr after SIGTERM (its exit report,
    /// such as each worker's share of the connections), at most 64 lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exit_log: Vec<String>,
    /// Each process's CPU over the measurement, in pid order (the leader
    /// first), as a percentage of one CPU: how the work was spread over a
    /// prefork pool, say. Only for trees of 2 to 64 processes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub process_cpu_percent: Vec<f64>,
    /// System calls per completed message (churn: per cycle), counted by the
    /// kernel's tracepoints over the measurement for the whole tree.
    #[serde(flatten)]
    pub syscalls: Syscalls,
}

fn one() -> u32 {
    1
}

fn whole() -> f64 {
    1.0
}

impl ServerStats {
    /// The server's memory as reports, charts, `compare` and the tour give
    /// it, each page once: its memory cgroup's peak, else the PSS sum.
    /// `None` for cells that have neither (recorded before either was).
    pub fn memory_kib(&self) -> Option<u64> {
        self.memory_peak_kib.or(self.pss_kib)
    }
}

/// The server's system calls per message, as the cell document writes them:
/// `syscalls_per_msg` (by name; `other` for calls not counted by name),
/// `syscalls_per_msg_total`, `syscalls_eagain_per_msg` (calls that failed
/// with EAGAIN), or `syscalls_unavailable` with the reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Syscalls {
    #[serde(rename = "syscalls_per_msg", default)]
    pub per_msg: std::collections::BTreeMap<String, f64>,
    #[serde(rename = "syscalls_per_msg_total", default)]
    pub per_msg_total: Option<f64>,
    #[serde(rename = "syscalls_eagain_per_msg", default)]
    pub eagain_per_msg: std::collections::BTreeMap<String, f64>,
    #[serde(rename = "syscalls_unavailable", default)]
    pub unavailable: Option<String>,
    /// How and when they were counted: by which probe, in which phase, over
    /// how many messages (absent in cells measured before it was recorded,
    /// whose counters were open during the window).
    #[serde(rename = "syscalls_method", default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// What traced system calls while the window was timed, as far as the
    /// harness can tell: its own perf events, and ftrace's syscall events.
    #[serde(
        rename = "syscalls_during_window",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub during_window: Option<String>,
}

impl Syscalls {
    pub fn unavailable(reason: &str) -> Syscalls {
        Syscalls {
            unavailable: Some(reason.to_owned()),
            ..Syscalls::default()
        }
    }

    /// The calls of a per-message map (`per_msg`, `eagain_per_msg`, or
    /// medians of them) made at least once per 200 messages, most first,
    /// then by name.
    pub fn most_first(calls: &std::collections::BTreeMap<String, f64>) -> Vec<(&str, f64)> {
        let mut listed: Vec<(&str, f64)> = calls
            .iter()
            .filter(|(_, value)| **value >= 0.005)
            .map(|(name, value)| (name.as_str(), *value))
            .collect();
        listed.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        listed
    }
}

/// The load generator itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientStats {
    /// User+system CPU time over the measurement, as a percentage of one CPU
    /// (summed over load threads).
    pub cpu_percent: f64,
    /// The busiest load thread's CPU percentage: ≥ 95 means client-bound.
    pub busiest_thread_percent: f64,
    pub threads: u32,
    pub cpus: Vec<usize>,
    /// CPU time of the harness's other threads (pacing, sampling, progress,
    /// pipes) over the measurement, as a percentage of one CPU: what the
    /// instrument itself cost beside the load.
    #[serde(default)]
    pub overhead_percent: f64,
}

/// What else used the cell's CPUs during its window, from `/proc/stat` at
/// the window's two ends (see `measure::machine`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineStats {
    /// Other processes' CPU time on the watched CPUs (their busy time less
    /// the server's and the harness's), % of one CPU.
    pub busy_percent: f64,
    /// Time the hypervisor ran something else on the watched CPUs (steal),
    /// % of one CPU.
    pub steal_percent: f64,
    /// The CPUs watched: the server's and the load's (a target's: the load's).
    #[serde(default)]
    pub cpus: Vec<usize>,
}

/// One cell: one model (or target) under one load, measured once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The model spawned for this cell, or null for `--target`.
    pub model: Option<String>,
    /// Model options passed to `harness serve` (e.g. `["--edge"]`).
    #[serde(default)]
    pub model_args: Vec<String>,
    /// The server command (`--server-cmd`, or `command` in a suite) as
    /// given, `{port}` and `{addr}` unreplaced; null for models and targets.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// The name charts and tables show: the model, a variant such as
    /// `epoll-edge`, a command's label, or `target` for `--target`.
    pub label: String,
    pub target: String,
    /// The CPUs the server ran on (for a target: as declared with
    /// `--server-cpus`, empty when unknown); the load's are `client.cpus`.
    #[serde(default)]
    pub server_cpus: Vec<usize>,
    /// The scenario's name in its suite (e.g. `closed-c100-s64`).
    pub scenario: String,
    /// What the load spoke (cells written before it was recorded: `echo`,
    /// the only protocol then).
    #[serde(default)]
    pub protocol: crate::protocol::Protocol,
    /// HTTP: what each request asked for, as `--request` takes it
    /// (`plaintext`, `echo:BYTES`, `static:PATH`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Requests (echo: messages) in flight per connection in the closed
    /// loop (`--pipeline`).
    #[serde(default = "one")]
    pub pipeline: u32,
    /// Repetition number, from 1.
    pub repeat: u32,
    pub shape: Shape,
    pub connections: u32,
    pub size: u32,
    pub idle: u32,
    /// Open loop: offered aggregate rate in messages per second.
    pub rate: Option<f64>,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub messages: u64,
    pub msgs_per_sec: f64,
    /// Echo: bytes echoed per second; HTTP: response body bytes per second.
    pub bytes_per_sec: f64,
    /// Churn: completed connect+echo+close cycles per second.
    pub connections_per_sec: Option<f64>,
    pub latency_us: Latency,
    pub errors: Errors,
    pub starved_connections: u32,
    pub fairness: Fairness,
    pub server: Option<ServerStats>,
    pub client: ClientStats,
    /// Open loop: the fraction of messages sent later than intended by more
    /// than the schedule tolerance (of a merged multi-host cell: its worst
    /// host's).
    #[serde(default)]
    pub behind_schedule_fraction: f64,
    /// What else used the cell's CPUs during its window; null when not
    /// measured (a target of unknown CPUs, a cell written before).
    #[serde(default)]
    pub machine: Option<MachineStats>,
    pub flags: Vec<Flag>,
    /// A load host's part of a cell that several load hosts drive together
    /// (`bench --share K/N --start-at TIME`, or `--start-at` alone: 1 of 1);
    /// absent otherwise. The cell's `connections`, `idle` and `rate` are
    /// the whole cell's; this host's are here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<LoadShare>,
    /// A cell merged from its load hosts' shares (`harness merge`): each
    /// host's own figures, in host order; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostSummary>,
    /// `--protocol udp`: the datagrams by fate and the kernel's drops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<UdpStats>,
    /// `run --until-ci PCT`: how many repeats this cell (label, scenario)
    /// needed and the CI they reached; the same record in each of its runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ci: Option<UntilCi>,
}

/// What `run --until-ci PCT` reached for one cell, once its repeats stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UntilCi {
    /// PCT: the 95% CIs of throughput and p99 had to lie within ±PCT% of their medians.
    pub target_percent: f64,
    /// The runs measured (the repeats the cell needed, or the cap).
    pub repeats: u32,
    /// True when both CIs came within the target; false when the cap (`--max-repeat`) stopped it.
    pub converged: bool,
    /// The throughput's CI half-width: the farther end of its 95% CI from the
    /// median, % of the median; null with fewer than 6 measured runs.
    pub throughput_ci_percent: Option<f64>,
    /// The same for the p99 latency.
    pub p99_ci_percent: Option<f64>,
}

#[cfg(test)]
impl Cell {
    /// A closed-loop cell for tests: `label` under `scenario` (10
    /// connections, 64 bytes, 3 s) at `msgs_per_sec`, nothing else measured.
    pub fn example(label: &str, scenario: &str, repeat: u32, msgs_per_sec: f64) -> Cell {
        Cell {
            model: None,
            model_args: Vec::new(),
            command: None,
            label: label.to_owned(),
            target: "127.0.0.1:7000".to_owned(),
            server_cpus: Vec::new(),
            scenario: scenario.to_owned(),
            protocol: crate::protocol::Protocol::Echo,
            request: None,
            pipeline: 1,
            repeat,
            shape: Shape::Closed,
            connections: 10,
            size: 64,
            idle: 0,
            rate: None,
            warmup_s: 0.5,
            duration_s: 3.0,
            messages: (msgs_per_sec * 3.0) as u64,
            msgs_per_sec,
            bytes_per_sec: 0.0,
            connections_per_sec: None,
            latency_us: Latency::default(),
            errors: Errors::default(),
            starved_connections: 0,
            fairness: Fairness::default(),
            server: None,
            client: ClientStats::default(),
            behind_schedule_fraction: 0.0,
            machine: None,
            flags: Vec::new(),
            share: None,
            hosts: Vec::new(),
            udp: None,
            until_ci: None,
        }
    }
}

/// One load host's part of a multi-host cell, as that host measured it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadShare {
    /// This host's share: `host` of `hosts`, from 1.
    pub host: u32,
    pub hosts: u32,
    /// The instant the hosts agreed to start the load (warm-up first),
    /// RFC 3339 in UTC, as given to `--start-at`.
    pub start_at: String,
    /// How long after that instant this host's load began, by this host's
    /// clock, in milliseconds (0 when it was ready in time).
    pub late_start_ms: f64,
    /// This host's active connections, idle connections and open-loop rate.
    pub connections: u32,
    pub idle: u32,
    pub rate: Option<f64>,
    /// The whole cell's number of this host's first connection: its payload
    /// streams are `first_connection..first_connection + connections`.
    pub first_connection: u64,
    /// The local address every connection came from (`--source-addr`).
    pub source_addr: Option<String>,
    /// The kernel's view of this host's clock (`adjtimex`) as its start
    /// was set, if the kernel reports one.
    pub clock: Option<ClockSync>,
    /// Messages each of this host's connections that connected completed
    /// in the measurement (churn: each loop), so that a merged cell's
    /// fairness is exact.
    pub per_connection: Vec<u64>,
}

/// What the kernel says of this machine's clock (`adjtimex(2)`, read only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClockSync {
    /// False when the kernel marks the clock unsynchronised (`STA_UNSYNC`,
    /// or state `TIME_ERROR`): nothing (NTP, PTP) is disciplining it.
    pub synchronised: bool,
    /// The kernel's maximum error bound (µs; 16 s when unsynchronised).
    pub max_error_us: i64,
    /// The kernel's estimated error (µs).
    pub est_error_us: i64,
}

/// One load host of a merged multi-host cell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    /// Its share number, from 1.
    pub host: u32,
    /// The machine it ran on (from its result set's manifest).
    pub hostname: String,
    #[serde(default)]
    pub machine_id: String,
    pub source_addr: Option<String>,
    pub connections: u32,
    pub rate: Option<f64>,
    pub messages: u64,
    pub msgs_per_sec: f64,
    /// This host's own latency percentiles (the cell's come from the sum of
    /// all hosts' histograms, never from these).
    pub latency_us: Latency,
    pub errors: u64,
    pub late_start_ms: f64,
    pub behind_schedule_fraction: f64,
    pub busiest_thread_percent: f64,
    pub clock: Option<ClockSync>,
    pub flags: Vec<Flag>,
}

/// A measured cell: its numbers and its histograms (nanoseconds).
#[derive(Debug, Clone)]
pub struct CellRecord {
    pub cell: Cell,
    pub histogram: hdrhistogram::Histogram<u64>,
    /// One per second of the measurement; the last may cover less.
    pub intervals: Vec<hdrhistogram::Histogram<u64>>,
}

impl Cell {
    /// The file stem of this cell in a result set: `LABEL--SCENARIO`, with
    /// `--rN` added when the suite repeats.
    pub fn file_stem(&self, repeats: u32) -> String {
        if repeats > 1 {
            format!("{}--{}--r{}", self.label, self.scenario, self.repeat)
        } else {
            format!("{}--{}", self.label, self.scenario)
        }
    }
}
