//! Every fault `harness faults` injects, as `--faults` names them: what it
//! does (and its bounds), what it shows, which models' outcome here is their
//! design's known limit, and the thresholds that turn its figures into an
//! outcome ([`Limits`], applied by the rules in [`super::judge`]). A reader
//! checks a cell's outcome by reading its fault's entry and those rules.

use super::inject::{
    Inject, connect_flood, fd_exhaustion, half_close, half_open, idle_herd, reset_storm, server_pause,
    slow_reader, slowloris, urgent_data,
};
use crate::protocol::Protocol;
use std::time::Duration;

/// One fault.
#[derive(Debug)]
pub struct Fault {
    /// Its name on the command line and in `faults.json`.
    pub name: &'static str,
    /// What the injector does, with its bounds.
    pub does: &'static str,
    /// What it shows about servers: the mechanism to look for.
    pub shows: &'static str,
    /// Models for which a bad outcome here is a documented limit of their
    /// design (the lesson), not a bug, and why.
    pub design_limits: &'static [(&'static str, &'static str)],
    pub limits: Limits,
    /// RLIMIT_NOFILE (soft and hard) the server is started under.
    pub nofile_limit: Option<u64>,
    /// The fault's length where its definition fixes it; otherwise the run's.
    pub length: Option<Duration>,
    /// What it does under `--protocol http`, where that differs, or `None`
    /// where it has no HTTP form: its clients check an echo byte for byte.
    pub over_http: Option<&'static str>,
    pub inject: Inject,
}

/// What makes this fault's cells `degraded` or `failed`, beyond the rules
/// every fault shares.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The fault takes what new clients need (descriptors, the accept
    /// queue), so the contract lets the server refuse or close them: a
    /// background client refused is `degraded`, not lost data (`failed`).
    pub refusals_allowed: bool,
    /// `degraded` when the background's throughput during the fault falls
    /// below this fraction of its baseline; `None` when the fault stops
    /// every server's progress by definition.
    pub throughput_floor: Option<f64>,
    /// `degraded` when the background's p99 during the fault exceeds this.
    pub p99: Option<P99Limit>,
    /// `failed` when the server's memory grows by more than
    /// [`super::judge::BUFFERED_KIB`]: it kept what it could not deliver
    /// instead of pushing back.
    pub judge_buffering: bool,
}

/// p99 latency limit: both `times_baseline` the baseline p99 and
/// `at_least_ms`.
#[derive(Debug, Clone, Copy)]
pub struct P99Limit {
    pub times_baseline: f64,
    pub at_least_ms: f64,
}

/// The usual limits: half the baseline throughput, and a p99 ten times the
/// baseline's and over 10 ms.
const USUAL: Limits = Limits {
    refusals_allowed: false,
    throughput_floor: Some(0.5),
    p99: Some(P99Limit {
        times_baseline: 10.0,
        at_least_ms: 10.0,
    }),
    judge_buffering: false,
};

const SINGLE: (&str, &str) = (
    "single",
    "it serves one client at a time, and a client that does not leave holds it",
);
const POOL: (&str, &str) = (
    "pool",
    "each of its 16 workers serves one client until that client leaves, so as many such clients hold the whole pool",
);
const THREADED: (&str, &str) = (
    "threaded",
    "a thread per client: thousands of connections are thousands of threads to create and to end, while new clients wait",
);
const NONBLOCKING: (&str, &str) = (
    "nonblocking",
    "it busy-polls every socket on every pass whatever happens, so it burns a CPU whenever it cannot make progress",
);

/// Every fault, in the matrix's row order.
pub const FAULTS: [Fault; 10] = [
    Fault {
        name: "slow-reader",
        does: "24 clients with 16 KiB receive buffers write the payload continuously (4 MiB/s each, or as fast as the server takes it if slower; at most 8 MiB each) and never read; at the fault's end they close, which resets.",
        shows: "Backpressure. A server must stop reading a client whose echo it cannot deliver; one that reads on keeps the bytes in memory (failed: buffered). A blocking model leaves a thread or a worker blocked in write per slow reader, so everyone else is served only while it has threads to spare.",
        design_limits: &[SINGLE, POOL],
        limits: Limits {
            judge_buffering: true,
            ..USUAL
        },
        nofile_limit: None,
        length: None,
        over_http: Some(
            "The same clients pipeline GET /plaintext requests instead of the payload, and read none of the responses.",
        ),
        inject: slow_reader::inject,
    },
    Fault {
        name: "slowloris",
        does: "256 connections each send one byte every 300 ms for the whole fault, and check the echo.",
        shows: "What a connection costs while it is slow but never idle. A readiness model pays a buffer per connection; a blocking model pays a thread or a worker for as long as the client trickles, so a pool is held by as many slow clients as it has workers, and new clients wait.",
        design_limits: &[SINGLE, POOL],
        limits: USUAL,
        nofile_limit: None,
        length: None,
        over_http: Some(
            "Each connection sends, a byte every 300 ms, a request whose header section never ends (the request line, a Host header, then a header that grows by a letter); whatever it is answered must be HTTP.",
        ),
        inject: slowloris::inject,
    },
    Fault {
        name: "idle-herd",
        does: "10,000 connections, opened 256 at a time (a connect not done in 100 ms is issued again), held silent until the fault's end. The server has the harness's hard RLIMIT_NOFILE (it raises its soft limit to it; the harness needs 10,000 descriptors too, and shrinks the herd to fit when its own limit is lower).",
        shows: "The cost of connections that do nothing. select cannot watch a descriptor of FD_SETSIZE (1,024) or more: it closes those connections, and while the herd holds the low descriptors, new clients are among them. nonblocking tries every socket on every pass, so its busy clients wait behind 10,000 idle reads. The epoll-based models are told which sockets are ready, so idle ones cost them memory, not time; threaded pays a sleeping thread each.",
        design_limits: &[
            SINGLE,
            THREADED,
            POOL,
            (
                "select",
                "select(2) cannot watch descriptors from FD_SETSIZE (1,024) up, so it closes those connections",
            ),
            NONBLOCKING,
        ],
        limits: Limits {
            refusals_allowed: true,
            ..USUAL
        },
        nofile_limit: None,
        length: None,
        over_http: Some("The same: silent connections speak no protocol."),
        inject: idle_herd::inject,
    },
    Fault {
        name: "reset-storm",
        does: "400 connections with 16 KiB receive buffers, in 8 waves over the first 60% of the fault, each write up to 128 KiB and, as soon as the first bytes of their echo are back (at most 20 ms), close with SO_LINGER 0: the server is reset while it is reading and writing them. The rest of the fault is quiet.",
        shows: "Error paths. A reset must end that connection only and free everything it held: a server that keeps the descriptor of a reset connection leaks (failed: leaked), one that keeps polling it spins (failed: spun).",
        design_limits: &[],
        limits: USUAL,
        nofile_limit: None,
        length: None,
        over_http: Some(
            "Each connection pipelines GET /plaintext requests instead of the payload and is reset once the first bytes of its responses are back (which must be HTTP).",
        ),
        inject: reset_storm::inject,
    },
    Fault {
        name: "connect-flood",
        does: "8,192 connects issued back to back, eight times the 1,024-entry listen backlog every model asks for, held silent until the fault's end. The kernel's ListenOverflows and ListenDrops counters (/proc/net/netstat, machine-wide) say what it dropped.",
        shows: "The accept path under a burst. The kernel queues completed handshakes up to the backlog and drops what comes next; a dropped client retries its SYN a second later. The background's new clients queue behind the flood, so how fast a model drains its accept queue decides how long they wait.",
        design_limits: &[SINGLE, THREADED, POOL, NONBLOCKING],
        limits: Limits {
            refusals_allowed: true,
            ..USUAL
        },
        nofile_limit: None,
        length: None,
        over_http: Some("The same: silent connections speak no protocol."),
        inject: connect_flood::inject,
    },
    Fault {
        name: "fd-exhaustion",
        does: "The server starts under RLIMIT_NOFILE 256 (soft and hard, set before exec: it cannot raise it); 384 clients connect (for up to half the fault, a connect not done within 100 ms issued again), send 64 bytes each and stay until the fault's end, then leave.",
        shows: "Surviving EMFILE. accept fails while the listener stays readable: retrying at once spins a core (failed: spun). The contract is to pause accepting, keep serving the clients it has, and accept again once descriptors are free. New clients cannot be served meanwhile by any server, so throughput and latency are not judged here; spinning and recovery are.",
        design_limits: &[NONBLOCKING],
        limits: Limits {
            refusals_allowed: true,
            throughput_floor: None,
            p99: None,
            judge_buffering: false,
        },
        nofile_limit: Some(fd_exhaustion::LIMIT),
        length: None,
        over_http: Some("Each client sends one GET /plaintext instead of 64 bytes; an answer must be HTTP."),
        inject: fd_exhaustion::inject,
    },
    Fault {
        name: "server-pause",
        does: "The server's whole process group is stopped with SIGSTOP for 1 s, then continued with SIGCONT.",
        shows: "Catch-up after a stall (a long GC pause, swapping, a debugger). The kernel keeps queueing handshakes and bytes for a stopped process; after SIGCONT the server has that backlog to drain, and p99 (corrected for coordinated omission) shows what its clients waited. Throughput and latency during the pause say nothing about the model and are not judged; recovery is.",
        design_limits: &[],
        limits: Limits {
            refusals_allowed: false,
            throughput_floor: None,
            p99: None,
            judge_buffering: false,
        },
        nofile_limit: None,
        length: Some(server_pause::PAUSE),
        over_http: Some("The same: a signal."),
        inject: server_pause::inject,
    },
    Fault {
        name: "urgent-data",
        does: "16 clients send, every 20 ms, 63 ordinary bytes and then one urgent byte with send(MSG_OOB), and check the echo: the ordinary bytes in order, each urgent byte either inline at its place or not at all.",
        shows: "A corner of TCP few servers expect. Linux takes an unread urgent byte out of the stream (unless SO_OOBINLINE) and reports it as EPOLLPRI, POLLPRI or an exceptional condition for select: a server that waits for it but never reads it spins, one that mishandles the mark corrupts the stream.",
        design_limits: &[SINGLE, POOL],
        limits: USUAL,
        nofile_limit: None,
        length: None,
        over_http: None,
        inject: urgent_data::inject,
    },
    Fault {
        name: "half-open-peer",
        does: "32 clients with 16 KiB receive buffers send up to 256 KiB each, then neither read, write nor close until the fault's end, when they are reset (on loopback the kernel still acknowledges them: from the server's side they are peers that never speak again).",
        shows: "Peers that vanish. No model here has a timeout, so each holds such a connection until the peer is heard from; what it costs meanwhile is the model's: a blocked thread or worker for a blocking model, a buffer for a readiness model.",
        design_limits: &[SINGLE, POOL],
        limits: USUAL,
        nofile_limit: None,
        length: None,
        over_http: Some(
            "Each client pipelines GET /plaintext requests instead of the payload, then goes silent.",
        ),
        inject: half_open::inject,
    },
    Fault {
        name: "half-close-pending",
        does: "32 clients write up to 1 MiB each without reading, shut down their write side while the server holds echo it could not send, read nothing for a quarter of the fault, then read everything back and expect EOF.",
        shows: "Half-close. EOF from a peer means it will send no more, not that it will read no more: the server must still deliver every pending byte before it closes; one that closes on EOF loses them (failed: lost).",
        design_limits: &[SINGLE, POOL],
        limits: USUAL,
        nofile_limit: None,
        length: None,
        over_http: None,
        inject: half_close::inject,
    },
];

/// The fault named `name`.
pub fn find(name: &str) -> Option<&'static Fault> {
    FAULTS.iter().find(|fault| fault.name == name)
}

/// The faults that have no HTTP form.
pub fn echo_only() -> Vec<&'static str> {
    FAULTS
        .iter()
        .filter(|fault| fault.over_http.is_none())
        .map(|fault| fault.name)
        .collect()
}

/// `--faults a,b`: the faults named, in the matrix's order; unknown names
/// are one error listing the valid ones. Under HTTP, by default the faults
/// that have an HTTP form; naming one that has none is an error.
pub fn select(names: &[String], protocol: Protocol) -> anyhow::Result<Vec<&'static Fault>> {
    let http = protocol == Protocol::Http;
    if names.is_empty() {
        return Ok(FAULTS
            .iter()
            .filter(|fault| !http || fault.over_http.is_some())
            .collect());
    }
    if http {
        let refused: Vec<&str> = names
            .iter()
            .filter_map(|name| find(name))
            .filter(|fault| fault.over_http.is_none())
            .map(|fault| fault.name)
            .collect();
        if !refused.is_empty() {
            anyhow::bail!(
                "{} {} no HTTP form under --protocol http (the fault's clients check an echo byte for byte); leave {} out of --faults",
                refused.join(", "),
                if refused.len() == 1 { "has" } else { "have" },
                if refused.len() == 1 { "it" } else { "them" }
            );
        }
    }
    for name in names {
        if find(name).is_none() {
            anyhow::bail!(
                "unknown fault '{name}'; the faults are: {}",
                FAULTS
                    .iter()
                    .map(|fault| fault.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(FAULTS
        .iter()
        .filter(|fault| names.iter().any(|name| name == fault.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_unknown_ones_are_listed() {
        let names: std::collections::BTreeSet<_> = FAULTS.iter().map(|fault| fault.name).collect();
        assert_eq!(names.len(), FAULTS.len());
        let error = select(&["slowloris".into(), "nope".into()], Protocol::Echo)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("'nope'") && error.contains("slow-reader") && error.contains("half-close-pending"),
            "{error}"
        );
        let chosen = select(&["server-pause".into(), "slow-reader".into()], Protocol::Echo).unwrap();
        assert_eq!(
            chosen.iter().map(|fault| fault.name).collect::<Vec<_>>(),
            ["slow-reader", "server-pause"]
        );
    }

    #[test]
    fn under_http_the_faults_without_an_http_form_are_left_out_or_refused() {
        let all = select(&[], Protocol::Http).unwrap();
        assert_eq!(all.len(), FAULTS.len() - echo_only().len());
        assert!(all.iter().all(|fault| fault.over_http.is_some()));
        assert_eq!(echo_only(), ["urgent-data", "half-close-pending"]);
        let error = select(&["slow-reader".into(), "urgent-data".into()], Protocol::Http)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("urgent-data has no HTTP form") && !error.contains("slow-reader"),
            "{error}"
        );
        assert_eq!(select(&["urgent-data".into()], Protocol::Echo).unwrap().len(), 1);
    }

    #[test]
    fn design_limits_name_models() {
        for fault in &FAULTS {
            for (model, _) in fault.design_limits {
                assert!(echo_core::MODELS.contains(model), "{}: {model}", fault.name);
            }
        }
    }
}
