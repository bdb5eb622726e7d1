//! Load generation: drives a server with one of three load shapes and records
//! what came back.
//!
//! # Layout
//!
//! - [`payload`]: each connection's byte stream, a pure function of
//!   (stream, offset), so every echoed byte is verified without storing it.
//! - [`recorder`]: latency histograms, whole and per second.
//! - [`connect`]: opening thousands of connections in bounded batches.
//! - [`stream`]: closed and open loop over long-lived connections.
//! - [`churn`]: connect, echo once, close, again.
//! - [`step`]: the client-side step the loops drive, generic: what to send
//!   next and how to check what came back ([`step::Echo`], [`http::Http`]).
//! - [`http`]: the HTTP step, every response parsed and checked.
//! - [`timer`]: the nanosecond timer the open loop waits on.
//! - [`udp`]: flows of datagrams (`--protocol udp`), closed and open loop.
//!
//! Each load thread owns its connections, its `mio::Poll` (epoll) and its
//! histograms: nothing is shared on the per-message path, and nothing is
//! allocated there. The caller starts the threads with [`LoadRun::start`],
//! waits for their connections, gives them a common start instant, watches
//! [`LoadRun::completed`] and collects a [`LoadOutcome`].
//!
//! A load may be offered by several processes on several load hosts
//! together (`bench --share K/N`): [`HostShare`] is this process's part,
//! split from the whole exactly as threads split a process's part
//! ([`ThreadShare`]): connections by contiguous global index (so payload
//! stream ids stay distinct across hosts), and the open-loop schedule by
//! phase, so that the N hosts' constant-rate schedules interleave into the
//! one schedule of the whole rate.

pub mod churn;
pub mod connect;
pub mod http;
pub mod payload;
pub mod recorder;
pub mod step;
pub mod stream;
pub mod timer;
pub mod udp;

use crate::protocol::Protocol;
use crate::results::cell::{Errors, Shape, UdpStats};
use hdrhistogram::Histogram;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
pub use step::StepSpec;

/// How long one connect may take.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(5);
/// How long all connects of a cell may take together.
pub const SETUP_DEADLINE: Duration = Duration::from_secs(30);
/// How long a message may wait for its echo before it counts as a timeout
/// (and its connection is given up).
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(5);
/// A connection the server has served (it echoed at least one byte) that
/// waits this long for the rest of an echo with no byte arriving has lost
/// bytes: an error (`lost`), never starvation. Well above a healthy cell's
/// p99.99 (milliseconds; `threaded` with 1,000 connections on this busy
/// 2-core VM, every message queued behind 999 threads, reached 0.72 s), and
/// well below [`MESSAGE_DEADLINE`]. Judged when the measurement ends, after
/// the served connections' last echoes have been waited for, so a stall
/// inside the window that recovers is latency, not loss.
pub const LOST_AFTER: Duration = Duration::from_secs(2);
/// Open loop: a send issued later than this after its intended time is late.
pub const LATE_SEND: Duration = Duration::from_millis(1);
/// How often deadlines are checked and progress is published.
pub const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// Bytes a load thread reads or generates at once.
pub const CHUNK: usize = 64 * 1024;

/// The load of one cell: what to offer, and for how long.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub protocol: Protocol,
    pub shape: Shape,
    pub connections: u32,
    pub size: u32,
    pub rate: Option<f64>,
    pub idle: u32,
    pub warmup: Duration,
    pub duration: Duration,
    pub client_threads: u32,
    /// What each message is and how its answer is checked.
    pub step: StepSpec,
    /// Closed loop: messages in flight per connection (1: ping-pong).
    pub pipeline: u32,
}

/// A load aimed at a server, from pinned threads.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub addr: SocketAddr,
    pub load: LoadSpec,
    /// Load thread `i` is pinned to `cpus[i % len]` (not pinned if empty).
    pub cpus: Vec<usize>,
    /// The part of `load` this process offers ([`HostShare::WHOLE`]: all of it).
    pub host: HostShare,
    /// The local address every connection is opened from (`None`: the
    /// kernel chooses; churn to loopback spreads over [`connect::LOOPBACK_SOURCES`]).
    pub source: Option<IpAddr>,
    /// Length of each interval histogram: [`recorder::SECOND`], or shorter
    /// where the load is watched changing within a second (`harness faults`).
    pub interval: Duration,
    /// The system-call counting phase that follows the measurement (zero:
    /// none): the same load goes on for [`COUNTING_GAP`] and then this
    /// long, and the messages completed in it are counted apart
    /// ([`LoadOutcome::counted`]).
    pub counting: Duration,
}

/// Between the end of the measurement and the counting phase: time to open
/// the counters (1 to 25 ms measured) while the load goes on.
pub const COUNTING_GAP: Duration = Duration::from_millis(100);

/// Most load hosts one load can be shared by (churn stream ids keep the host
/// in their top 12 bits).
pub const MAX_HOSTS: u32 = 4096;

/// This process's part of a load that `hosts` processes offer together:
/// host `index` (from 0) gets connections and idle connections
/// [`split`] by contiguous global index, and `1/hosts` of the open-loop
/// rate, its schedule shifted by `index` periods of the whole rate so that
/// the hosts' sends interleave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostShare {
    pub index: u32,
    pub hosts: u32,
}

impl HostShare {
    /// One process offers the whole load.
    pub const WHOLE: HostShare = HostShare { index: 0, hosts: 1 };
}

impl Default for HostShare {
    fn default() -> HostShare {
        HostShare::WHOLE
    }
}

/// Part `index` of `parts` of `total` items numbered from 0: its first item
/// and how many, the first `total % parts` parts taking one more.
pub fn split(total: u64, index: u64, parts: u64) -> (u64, u64) {
    let parts = parts.max(1);
    let base = total / parts;
    let extra = total % parts;
    (index * base + index.min(extra), base + u64::from(index < extra))
}

/// The instants every load thread shares, as offsets from `start`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub start: Instant,
    /// The measurement is `[measure_from, measure_until)`, in ns after `start`.
    pub measure_from: u64,
    pub measure_until: u64,
    /// The counting phase is `[count_from, count_until)`; with none, both
    /// are `measure_until`. The load is offered until `count_until`.
    pub count_from: u64,
    pub count_until: u64,
}

impl Clock {
    fn new(start: Instant, plan: &LoadPlan) -> Clock {
        let measure_from = plan.load.warmup.as_nanos() as u64;
        let measure_until = measure_from + plan.load.duration.as_nanos() as u64;
        let (count_from, count_until) = if plan.counting.is_zero() {
            (measure_until, measure_until)
        } else {
            let count_from = measure_until + COUNTING_GAP.as_nanos() as u64;
            (count_from, count_from + plan.counting.as_nanos() as u64)
        };
        Clock {
            start,
            measure_from,
            measure_until,
            count_from,
            count_until,
        }
    }

    /// The instant the counting phase begins, and the one it ends.
    pub fn counting_phase(&self) -> (Instant, Instant) {
        (
            self.start + Duration::from_nanos(self.count_from),
            self.start + Duration::from_nanos(self.count_until),
        )
    }

    #[inline]
    pub fn in_counting(&self, at_ns: u64) -> bool {
        (self.count_from..self.count_until).contains(&at_ns)
    }

    /// Nanoseconds since `start`.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    #[inline]
    pub fn in_measurement(&self, at_ns: u64) -> bool {
        (self.measure_from..self.measure_until).contains(&at_ns)
    }
}

/// The CPU time one load thread used during the measurement.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadCpu {
    at_start: Option<(u64, Duration)>,
    at_end: Option<(u64, Duration)>,
}

impl ThreadCpu {
    /// Notes the calling thread's CPU time at the start or end of the
    /// measurement, when `now_ns` first crosses it.
    pub fn observe(&mut self, clock: &Clock, now_ns: u64) {
        if self.at_start.is_none() && now_ns >= clock.measure_from {
            self.at_start = Some((now_ns, crate::measure::thread_cpu_time()));
        }
        if self.at_end.is_none() && now_ns >= clock.measure_until {
            self.at_end = Some((now_ns, crate::measure::thread_cpu_time()));
        }
    }

    /// CPU time and wall time between the two observations.
    pub fn busy(&self) -> (Duration, Duration) {
        match (self.at_start, self.at_end) {
            (Some((wall_start, cpu_start)), Some((wall_end, cpu_end))) => (
                cpu_end.saturating_sub(cpu_start),
                Duration::from_nanos(wall_end.saturating_sub(wall_start)),
            ),
            _ => (Duration::ZERO, Duration::ZERO),
        }
    }
}

/// What load threads measured: one thread's, or all of them merged.
#[derive(Debug)]
pub struct LoadOutcome {
    pub histogram: Histogram<u64>,
    /// One per [`LoadPlan::interval`] of the measurement.
    pub intervals: Vec<Histogram<u64>>,
    pub errors: Errors,
    /// Completed messages (churn: cycles) in the measurement.
    pub messages: u64,
    /// Completed messages (churn: cycles) in the counting phase.
    pub counted: u64,
    /// Completed messages per connection that connected (churn: per loop).
    pub per_connection: Vec<u64>,
    pub starved: u32,
    /// Open loop: sends due in the measurement, and those issued late.
    pub scheduled_sends: u64,
    pub late_sends: u64,
    /// (CPU time, wall time) of each load thread over the measurement.
    pub threads: Vec<(Duration, Duration)>,
    /// `--protocol udp`: the datagrams by fate.
    pub udp: Option<UdpStats>,
}

impl LoadOutcome {
    /// Nothing measured yet: histograms over `seconds` intervals.
    pub fn empty(seconds: u64) -> LoadOutcome {
        let (histogram, intervals) = recorder::Recorder::new(seconds).finish();
        LoadOutcome {
            histogram,
            intervals,
            errors: Errors::default(),
            messages: 0,
            counted: 0,
            per_connection: Vec::new(),
            starved: 0,
            scheduled_sends: 0,
            late_sends: 0,
            threads: Vec::new(),
            udp: None,
        }
    }

    /// Adds another thread's outcome to this one.
    fn absorb(&mut self, other: LoadOutcome) {
        // Same bounds everywhere, so adding never fails.
        let _ = self.histogram.add(&other.histogram);
        let _ = recorder::add_by_index(&mut self.intervals, &other.intervals);
        self.errors.add(&other.errors);
        self.messages += other.messages;
        self.counted += other.counted;
        self.per_connection.extend_from_slice(&other.per_connection);
        self.starved += other.starved;
        self.scheduled_sends += other.scheduled_sends;
        self.late_sends += other.late_sends;
        self.threads.extend(other.threads);
        if let Some(other) = other.udp {
            add_udp(self.udp.get_or_insert_with(UdpStats::default), &other);
        }
    }
}

/// Load threads that are connecting, waiting to start, or running.
pub struct LoadRun {
    plan: LoadPlan,
    start_senders: Vec<mpsc::Sender<Instant>>,
    setup: mpsc::Receiver<io::Result<()>>,
    progress: Arc<Vec<AtomicU64>>,
    /// Thread ids of the load threads, so the harness can tell its own
    /// overhead from the load it generates.
    thread_ids: Arc<Mutex<Vec<i32>>>,
    handles: Vec<JoinHandle<io::Result<LoadOutcome>>>,
    clock: Option<Clock>,
}

impl LoadRun {
    /// Starts the load threads; they connect, then wait for [`LoadRun::begin`].
    pub fn start(plan: &LoadPlan) -> io::Result<LoadRun> {
        let threads = plan.load.client_threads.max(1) as usize;
        let progress: Arc<Vec<AtomicU64>> = Arc::new((0..threads).map(|_| AtomicU64::new(0)).collect());
        let (setup_sender, setup) = mpsc::channel();
        let thread_ids = Arc::new(Mutex::new(Vec::with_capacity(threads)));
        let mut start_senders = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for index in 0..threads {
            let (start_sender, start_receiver) = mpsc::channel();
            start_senders.push(start_sender);
            let share = ThreadShare::of(plan, index, threads);
            let plan = plan.clone();
            let setup_sender = setup_sender.clone();
            let progress = Arc::clone(&progress);
            let ids = Arc::clone(&thread_ids);
            let handle = std::thread::Builder::new()
                .name(format!("load-{index}"))
                .spawn(move || {
                    ids.lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .push(crate::measure::thread_id());
                    load_thread(&plan, share, &setup_sender, &start_receiver, &progress[index])
                })?;
            handles.push(handle);
        }
        Ok(LoadRun {
            plan: plan.clone(),
            start_senders,
            setup,
            progress,
            thread_ids,
            handles,
            clock: None,
        })
    }

    /// Waits until every thread has opened its connections (failures are
    /// counted, not fatal). Errors when a thread could not set up at all.
    pub fn wait_connected(&self) -> io::Result<()> {
        let deadline = Instant::now() + SETUP_DEADLINE + Duration::from_secs(5);
        for _ in 0..self.handles.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.setup.recv_timeout(left) {
                Ok(result) => result?,
                Err(_) => return Err(io::Error::other("load threads did not finish connecting")),
            }
        }
        Ok(())
    }

    /// Gives every thread the same start instant, a moment from now.
    pub fn begin(&mut self) -> Clock {
        self.begin_at(Instant::now()).0
    }

    /// Gives every thread the start instant `at`, or, when `at` is too
    /// close or past, a moment from now; returns the clock and how much
    /// later than `at` it starts.
    pub fn begin_at(&mut self, at: Instant) -> (Clock, Duration) {
        // Enough for every thread to receive the instant before it comes.
        let earliest = Instant::now() + Duration::from_millis(5);
        let clock = Clock::new(at.max(earliest), &self.plan);
        for sender in &self.start_senders {
            let _ = sender.send(clock.start);
        }
        self.clock = Some(clock);
        (clock, clock.start.saturating_duration_since(at))
    }

    /// The load threads' ids (all of them, once [`LoadRun::wait_connected`]
    /// has returned).
    pub fn thread_ids(&self) -> Vec<i32> {
        self.thread_ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Messages completed so far (warm-up included), for progress display.
    pub fn completed(&self) -> u64 {
        self.progress
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .sum()
    }

    /// Waits for the threads and merges their results.
    pub fn join(self) -> io::Result<LoadOutcome> {
        drop(self.start_senders);
        let mut outcomes = Vec::with_capacity(self.handles.len());
        for handle in self.handles {
            match handle.join() {
                Ok(outcome) => outcomes.push(outcome?),
                Err(_) => return Err(io::Error::other("a load thread panicked")),
            }
        }
        Ok(merge(outcomes))
    }
}

/// The part of the plan one thread carries out.
#[derive(Debug, Clone, Copy)]
pub struct ThreadShare {
    pub index: usize,
    /// Global index of this thread's first connection (payload stream ids),
    /// counted over the whole load, every host's connections included.
    pub first_connection: u64,
    pub connections: usize,
    pub idle: usize,
    /// Open loop: this thread's messages per second.
    pub rate: f64,
    /// Open loop: nanoseconds after the start at which this thread's first
    /// send is due; its sends follow every `1e9 / rate` ns.
    pub phase_ns: f64,
}

impl ThreadShare {
    /// Thread `index` of `threads` of this process's part of the plan. The
    /// host's part is split first, then the threads split the host's: a
    /// host's schedule is every `hosts` slots of the whole rate's, from slot
    /// `host.index`; a thread's is every `threads` slots of its host's, from
    /// slot `index`. With even splits the sends of all threads of all hosts
    /// fall exactly one period of the whole rate apart; otherwise each
    /// thread's rate follows its connections and the phases still interleave.
    pub fn of(plan: &LoadPlan, index: usize, threads: usize) -> ThreadShare {
        let host = plan.host;
        let (host_first, host_connections) = split(
            u64::from(plan.load.connections),
            u64::from(host.index),
            u64::from(host.hosts),
        );
        let (_, host_idle) = split(
            u64::from(plan.load.idle),
            u64::from(host.index),
            u64::from(host.hosts),
        );
        let (first, connections) = split(host_connections, index as u64, threads as u64);
        let (_, idle) = split(host_idle, index as u64, threads as u64);
        let whole_rate = plan.load.rate.unwrap_or(0.0);
        let host_rate = whole_rate / f64::from(host.hosts.max(1));
        let rate = host_rate * connections as f64 / host_connections.max(1) as f64;
        let phase_ns = if whole_rate > 0.0 {
            f64::from(host.index) * 1e9 / whole_rate + index as f64 * 1e9 / host_rate
        } else {
            0.0
        };
        ThreadShare {
            index,
            first_connection: host_first + first,
            connections: connections as usize,
            idle: idle as usize,
            rate,
            phase_ns,
        }
    }
}

fn load_thread(
    plan: &LoadPlan,
    share: ThreadShare,
    setup: &mpsc::Sender<io::Result<()>>,
    start: &mpsc::Receiver<Instant>,
    progress: &AtomicU64,
) -> io::Result<LoadOutcome> {
    if !plan.cpus.is_empty() {
        let cpu = plan.cpus[share.index % plan.cpus.len()];
        echo_core::affinity::pin_to(&[cpu])?;
    }
    if share.connections == 0 && share.idle == 0 {
        let _ = setup.send(Ok(()));
        return Ok(stream::empty_outcome(plan));
    }
    if plan.load.protocol == Protocol::Udp {
        return start_when_told(
            udp::Flows::open(plan, share),
            plan,
            setup,
            start,
            |driver, clock| driver.run(clock, progress),
        );
    }
    match &plan.load.step {
        StepSpec::Echo => drive(
            StepSpec::echo(plan.load.size),
            plan,
            share,
            setup,
            start,
            progress,
        ),
        StepSpec::Http(load) => {
            let close = plan.load.shape == Shape::Churn;
            drive(StepSpec::http(load, close), plan, share, setup, start, progress)
        }
    }
}

/// Runs the plan's loop with `step`: each (loop, step) pair compiles to its
/// own code, with no dispatch per message.
fn drive<S: step::ClientStep>(
    step: S,
    plan: &LoadPlan,
    share: ThreadShare,
    setup: &mpsc::Sender<io::Result<()>>,
    start: &mpsc::Receiver<Instant>,
    progress: &AtomicU64,
) -> io::Result<LoadOutcome> {
    match plan.load.shape {
        Shape::Churn => start_when_told(
            churn::Churn::new(plan, share, step),
            plan,
            setup,
            start,
            |driver, clock| driver.run(clock, progress),
        ),
        Shape::Closed | Shape::Open => start_when_told(
            stream::Streams::connect(plan, share, step),
            plan,
            setup,
            start,
            |driver, clock| driver.run(clock, progress),
        ),
    }
}

/// Reports the driver's setup (its connections) to the coordinator, waits for
/// the common start instant, then runs it. Its connections stay open until
/// the coordinator lets go of the load ([`LoadRun::join`], after its last
/// sample of the server): a server whose threads end with their connections
/// would otherwise lose them, and their context switches, from that sample.
fn start_when_told<Driver>(
    created: io::Result<Driver>,
    plan: &LoadPlan,
    setup: &mpsc::Sender<io::Result<()>>,
    start: &mpsc::Receiver<Instant>,
    run: impl FnOnce(&mut Driver, Clock) -> io::Result<LoadOutcome>,
) -> io::Result<LoadOutcome> {
    let mut driver = match created {
        Ok(driver) => driver,
        Err(error) => {
            let _ = setup.send(Err(io::Error::new(error.kind(), error.to_string())));
            return Err(error);
        }
    };
    let _ = setup.send(Ok(()));
    let Ok(start_at) = start.recv() else {
        return Ok(stream::empty_outcome(plan));
    };
    let outcome = run(&mut driver, Clock::new(start_at, plan));
    // Returns when the coordinator drops the start channel.
    let _ = start.recv();
    drop(driver);
    outcome
}

fn merge(outcomes: Vec<LoadOutcome>) -> LoadOutcome {
    let mut merged = LoadOutcome::empty(0);
    for outcome in outcomes {
        merged.absorb(outcome);
    }
    merged
}

/// Adds one thread's datagram counts to another's (the machine's counters
/// are read by one thread only, so they add up to that thread's).
pub fn add_udp(into: &mut UdpStats, from: &UdpStats) {
    let add = |into: &mut Option<u64>, from: Option<u64>| {
        if let Some(from) = from {
            *into = Some(into.unwrap_or(0) + from);
        }
    };
    into.sent += from.sent;
    into.received += from.received;
    into.lost += from.lost;
    into.duplicated += from.duplicated;
    into.reordered += from.reordered;
    into.truncated += from.truncated;
    into.wrong_payload += from.wrong_payload;
    into.wrong_sender += from.wrong_sender;
    add(&mut into.kernel_rcvbuf_errors, from.kernel_rcvbuf_errors);
    add(&mut into.kernel_in_errors, from.kernel_in_errors);
    add(&mut into.server_socket_drops, from.server_socket_drops);
    into.client_socket_drops += from.client_socket_drops;
    into.loss_percent = if into.sent == 0 {
        0.0
    } else {
        100.0 * into.lost as f64 / into.sent as f64
    };
}

/// Counts a failed connect: out of local addresses, or any other failure.
pub fn count_connect_error(errors: &mut Errors, error: &io::Error) {
    if is_addr_unavailable(error) {
        errors.addr_unavailable += 1;
    } else {
        errors.connect += 1;
    }
}

fn is_addr_unavailable(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EADDRNOTAVAIL) | Some(libc::EADDRINUSE)
    ) || error.kind() == io::ErrorKind::AddrNotAvailable
}

/// Why a connection was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Reset or broken pipe.
    Reset,
    /// The server closed it.
    Closed,
    /// An echo did not arrive within [`MESSAGE_DEADLINE`].
    Timeout,
    /// The server sent bytes that were never sent to it (already counted).
    Mismatch,
    /// An answer that cannot be framed or trusted any more (already
    /// counted by kind by the client step).
    Protocol,
    /// The server had served the connection, then `missing` bytes it was
    /// sent never came back: it waited longer than [`LOST_AFTER`] for them.
    Lost { missing: u64 },
}

impl Failure {
    /// How an I/O error on an established connection is counted.
    pub fn of(error: &io::Error) -> Failure {
        match error.kind() {
            io::ErrorKind::TimedOut => Failure::Timeout,
            _ => Failure::Reset,
        }
    }

    pub fn count(self, errors: &mut Errors) {
        match self {
            Failure::Reset => errors.reset += 1,
            Failure::Closed => errors.closed += 1,
            Failure::Timeout => errors.timeout += 1,
            Failure::Mismatch | Failure::Protocol => {}
            Failure::Lost { missing } => {
                errors.lost += 1;
                errors.lost_bytes += missing;
            }
        }
    }

    /// How a connection that waited for an echo is given up: lost when the
    /// server had served it (`received` > 0) and no byte came for longer than
    /// [`LOST_AFTER`], a timeout otherwise (the echo was still trickling in,
    /// or the server never served it: see each loop's starvation rule). The
    /// bytes missing are those `written` less those `answered` (echo: the
    /// bytes received; HTTP: the requests that got their response).
    pub fn of_wait(received: u64, answered: u64, written: u64, silent_for: Duration) -> Failure {
        if received > 0 && silent_for > LOST_AFTER {
            Failure::Lost {
                missing: written.saturating_sub(answered),
            }
        } else {
            Failure::Timeout
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(connections: u32, idle: u32, rate: Option<f64>, host: HostShare) -> LoadPlan {
        LoadPlan {
            addr: "127.0.0.1:1".parse().unwrap(),
            load: LoadSpec {
                protocol: Protocol::Echo,
                shape: if rate.is_some() {
                    Shape::Open
                } else {
                    Shape::Closed
                },
                connections,
                size: 64,
                rate,
                idle,
                warmup: Duration::ZERO,
                duration: Duration::from_secs(1),
                client_threads: 1,
                step: StepSpec::Echo,
                pipeline: 1,
            },
            cpus: Vec::new(),
            host,
            source: None,
            interval: recorder::SECOND,
            counting: Duration::ZERO,
        }
    }

    /// Every thread's share of every host's share of `plan`.
    fn shares(
        connections: u32,
        idle: u32,
        rate: Option<f64>,
        hosts: u32,
        threads: usize,
    ) -> Vec<ThreadShare> {
        (0..hosts)
            .flat_map(|index| {
                let plan = plan(connections, idle, rate, HostShare { index, hosts });
                (0..threads).map(move |thread| ThreadShare::of(&plan, thread, threads))
            })
            .collect()
    }

    #[test]
    fn hosts_and_threads_get_disjoint_slices_of_every_connection() {
        for (connections, idle, hosts, threads) in
            [(10, 7, 3, 2), (12, 0, 4, 3), (5, 5, 5, 1), (1000, 3, 7, 4)]
        {
            let all = shares(connections, idle, None, hosts, threads);
            let mut streams: Vec<u64> = all
                .iter()
                .flat_map(|share| share.first_connection..share.first_connection + share.connections as u64)
                .collect();
            streams.sort_unstable();
            assert_eq!(
                streams,
                (0..u64::from(connections)).collect::<Vec<_>>(),
                "{connections} connections over {hosts} hosts x {threads} threads"
            );
            assert_eq!(all.iter().map(|share| share.idle as u32).sum::<u32>(), idle);
        }
    }

    #[test]
    fn interleaved_schedules_add_up_to_the_whole_rate() {
        // 3 hosts x 2 threads, 12 connections: every thread at 1/6 of the rate.
        let rate = 3000.0;
        let period = 1e9 / rate;
        let all = shares(12, 0, Some(rate), 3, 2);
        let mut due: Vec<f64> = all
            .iter()
            .flat_map(|share| (0..100).map(move |send| share.phase_ns + send as f64 * 1e9 / share.rate))
            .collect();
        due.sort_by(f64::total_cmp);
        for (slot, at) in due.iter().enumerate() {
            assert!(
                (at - slot as f64 * period).abs() < 1e-3,
                "send {slot} due at {at} ns, not {} ns",
                slot as f64 * period
            );
        }
        // Uneven splits still offer exactly the whole rate.
        let uneven = shares(10, 0, Some(rate), 3, 2);
        let offered: f64 = uneven.iter().map(|share| share.rate).sum();
        assert!((offered - rate).abs() < 1e-6, "{offered}");
        // One host, one thread: the schedule of old, from 0 at the whole rate.
        let alone = shares(10, 0, Some(rate), 1, 1);
        assert_eq!((alone[0].phase_ns, alone[0].rate), (0.0, rate));
    }

    #[test]
    fn a_served_connection_left_silent_lost_bytes_and_one_never_served_did_not() {
        let silent = LOST_AFTER + Duration::from_millis(1);
        assert_eq!(
            Failure::of_wait(100, 100, 164, silent),
            Failure::Lost { missing: 64 }
        );
        // Never served: the caller's starvation, not a loss.
        assert_eq!(Failure::of_wait(0, 0, 64, silent), Failure::Timeout);
        // Bytes still arriving: slow, not lost.
        assert_eq!(Failure::of_wait(100, 100, 164, LOST_AFTER / 2), Failure::Timeout);
        assert!(LOST_AFTER < MESSAGE_DEADLINE);
        let mut errors = Errors::default();
        Failure::Lost { missing: 64 }.count(&mut errors);
        Failure::Lost { missing: 1 }.count(&mut errors);
        assert_eq!((errors.lost, errors.lost_bytes), (2, 65));
        // Two failures; the bytes are not failures.
        assert_eq!(errors.total(), 2);
        let mut sum = errors.clone();
        sum.add(&errors);
        assert_eq!((sum.lost, sum.lost_bytes), (4, 130));
    }

    #[test]
    fn datagram_counts_add_up_and_the_loss_is_of_the_sum() {
        let one = UdpStats {
            sent: 100,
            received: 99,
            lost: 1,
            kernel_rcvbuf_errors: Some(3),
            ..UdpStats::default()
        };
        let other = UdpStats {
            sent: 300,
            received: 297,
            lost: 3,
            duplicated: 2,
            ..UdpStats::default()
        };
        let mut sum = UdpStats::default();
        add_udp(&mut sum, &one);
        add_udp(&mut sum, &other);
        assert_eq!(
            (sum.sent, sum.received, sum.lost, sum.duplicated),
            (400, 396, 4, 2)
        );
        assert_eq!(sum.loss_percent, 1.0);
        // A counter one thread read and the others did not is that thread's.
        assert_eq!(sum.kernel_rcvbuf_errors, Some(3));
        assert_eq!(sum.server_socket_drops, None);
    }

    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A thread-per-connection echo server that notes when each connection
    /// was closed by its client.
    fn echo_server(connections: usize) -> (SocketAddr, Arc<Mutex<Vec<Instant>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let closed = Arc::new(Mutex::new(Vec::new()));
        let noted = Arc::clone(&closed);
        std::thread::spawn(move || {
            for stream in listener.incoming().take(connections) {
                let mut stream = stream.unwrap();
                let noted = Arc::clone(&noted);
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 4096];
                    while let Ok(count) = stream.read(&mut buffer) {
                        if count == 0 || stream.write_all(&buffer[..count]).is_err() {
                            break;
                        }
                    }
                    noted.lock().unwrap().push(Instant::now());
                });
            }
        });
        (addr, closed)
    }

    #[test]
    fn connections_stay_open_until_the_load_is_joined() {
        let (addr, closed) = echo_server(2);
        let plan = LoadPlan {
            addr,
            load: LoadSpec {
                protocol: Protocol::Echo,
                shape: Shape::Closed,
                connections: 2,
                size: 64,
                rate: None,
                idle: 0,
                warmup: Duration::from_millis(50),
                duration: Duration::from_millis(300),
                client_threads: 1,
                step: StepSpec::Echo,
                pipeline: 1,
            },
            cpus: Vec::new(),
            host: HostShare::WHOLE,
            source: None,
            interval: recorder::SECOND,
            counting: Duration::ZERO,
        };
        let mut run = LoadRun::start(&plan).unwrap();
        run.wait_connected().unwrap();
        run.begin();
        // Well past the end of the measurement: the last sample of the
        // server is taken about now, and must still see every connection.
        std::thread::sleep(Duration::from_millis(800));
        assert!(
            closed.lock().unwrap().is_empty(),
            "a connection was closed before the load was joined"
        );
        let joined = Instant::now();
        let outcome = run.join().unwrap();
        assert!(outcome.messages > 0);
        let deadline = Instant::now() + Duration::from_secs(5);
        while closed.lock().unwrap().len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let closed = closed.lock().unwrap();
        assert_eq!(closed.len(), 2, "the connections were not closed after the join");
        assert!(closed.iter().all(|&at| at >= joined));
    }
}
