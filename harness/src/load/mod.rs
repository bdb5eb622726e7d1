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
//! - [`timer`]: the nanosecond timer the open loop waits on.
//!
//! Each load thread owns its connections, its `mio::Poll` (epoll) and its
//! histograms: nothing is shared on the per-message path, and nothing is
//! allocated there. The caller starts the threads with [`LoadRun::start`],
//! waits for their connections, gives them a common start instant, watches
//! [`LoadRun::completed`] and collects a [`LoadOutcome`].

pub mod churn;
pub mod connect;
pub mod payload;
pub mod recorder;
pub mod stream;
pub mod timer;

use crate::results::cell::{Errors, Shape};
use hdrhistogram::Histogram;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one connect may take.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(5);
/// How long all connects of a cell may take together.
pub const SETUP_DEADLINE: Duration = Duration::from_secs(30);
/// How long a message may wait for its echo before it counts as a timeout
/// (and its connection is given up).
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(5);
/// Open loop: a send issued later than this after its intended time is late.
pub const LATE_SEND: Duration = Duration::from_millis(1);
/// How often deadlines are checked and progress is published.
pub const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// Bytes a load thread reads or generates at once.
pub const CHUNK: usize = 64 * 1024;

/// The load of one cell: what to offer, and for how long.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub shape: Shape,
    pub connections: u32,
    pub size: u32,
    pub rate: Option<f64>,
    pub idle: u32,
    pub warmup: Duration,
    pub duration: Duration,
    pub client_threads: u32,
}

/// A load aimed at a server, from pinned threads.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub addr: SocketAddr,
    pub load: LoadSpec,
    /// Load thread `i` is pinned to `cpus[i % len]` (not pinned if empty).
    pub cpus: Vec<usize>,
}

/// The instants every load thread shares, as offsets from `start`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub start: Instant,
    /// The measurement is `[measure_from, measure_until)`, in ns after `start`.
    pub measure_from: u64,
    pub measure_until: u64,
}

impl Clock {
    fn new(start: Instant, plan: &LoadPlan) -> Clock {
        let measure_from = plan.load.warmup.as_nanos() as u64;
        Clock {
            start,
            measure_from,
            measure_until: measure_from + plan.load.duration.as_nanos() as u64,
        }
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
    /// One per second of the measurement (per interval, when started with
    /// [`LoadRun::start_with_intervals`]).
    pub intervals: Vec<Histogram<u64>>,
    pub errors: Errors,
    /// Completed messages (churn: cycles) in the measurement.
    pub messages: u64,
    /// Completed messages per connection that connected (churn: per loop).
    pub per_connection: Vec<u64>,
    pub starved: u32,
    /// Open loop: sends due in the measurement, and those issued late.
    pub scheduled_sends: u64,
    pub late_sends: u64,
    /// (CPU time, wall time) of each load thread over the measurement.
    pub threads: Vec<(Duration, Duration)>,
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
            per_connection: Vec::new(),
            starved: 0,
            scheduled_sends: 0,
            late_sends: 0,
            threads: Vec::new(),
        }
    }

    /// Adds another thread's outcome to this one.
    fn absorb(&mut self, other: LoadOutcome) {
        // Same bounds everywhere, so adding never fails.
        let _ = self.histogram.add(&other.histogram);
        if self.intervals.len() < other.intervals.len() {
            self.intervals
                .resize_with(other.intervals.len(), recorder::new_histogram);
        }
        for (into, from) in self.intervals.iter_mut().zip(&other.intervals) {
            let _ = into.add(from);
        }
        add_errors(&mut self.errors, &other.errors);
        self.messages += other.messages;
        self.per_connection.extend_from_slice(&other.per_connection);
        self.starved += other.starved;
        self.scheduled_sends += other.scheduled_sends;
        self.late_sends += other.late_sends;
        self.threads.extend(other.threads);
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
        LoadRun::start_with_intervals(plan, recorder::SECOND)
    }

    /// [`LoadRun::start`], with one interval histogram per `interval` of the
    /// measurement instead of one per second (`harness faults` watches the
    /// load change within a second).
    pub fn start_with_intervals(plan: &LoadPlan, interval: Duration) -> io::Result<LoadRun> {
        let threads = plan.load.client_threads.max(1) as usize;
        let progress: Arc<Vec<AtomicU64>> = Arc::new((0..threads).map(|_| AtomicU64::new(0)).collect());
        let (setup_sender, setup) = mpsc::channel();
        let thread_ids = Arc::new(Mutex::new(Vec::with_capacity(threads)));
        let mut start_senders = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for index in 0..threads {
            let (start_sender, start_receiver) = mpsc::channel();
            start_senders.push(start_sender);
            let share = ThreadShare::of(plan, index, threads, interval);
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
        let clock = Clock::new(Instant::now() + Duration::from_millis(5), &self.plan);
        for sender in &self.start_senders {
            let _ = sender.send(clock.start);
        }
        self.clock = Some(clock);
        clock
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
    /// Global index of this thread's first connection (payload stream ids).
    pub first_connection: u64,
    pub connections: usize,
    pub idle: usize,
    /// Open loop: this thread's messages per second.
    pub rate: f64,
    /// Length of each interval histogram.
    pub interval: Duration,
}

impl ThreadShare {
    fn of(plan: &LoadPlan, index: usize, threads: usize, interval: Duration) -> ThreadShare {
        let split = |total: u32| -> (u64, usize) {
            let total = total as usize;
            let base = total / threads;
            let extra = total % threads;
            let first = index * base + index.min(extra);
            (first as u64, base + usize::from(index < extra))
        };
        let (first_connection, connections) = split(plan.load.connections);
        let (_, idle) = split(plan.load.idle);
        let rate = plan.load.rate.unwrap_or(0.0) * connections as f64 / plan.load.connections.max(1) as f64;
        ThreadShare {
            index,
            first_connection,
            connections,
            idle,
            rate,
            interval,
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
    match plan.load.shape {
        Shape::Churn => start_when_told(
            churn::Churn::new(plan, share),
            plan,
            setup,
            start,
            |mut driver, clock| driver.run(clock, progress),
        ),
        Shape::Closed | Shape::Open => start_when_told(
            stream::Streams::connect(plan, share),
            plan,
            setup,
            start,
            |mut driver, clock| driver.run(clock, progress),
        ),
    }
}

/// Reports the driver's setup (its connections) to the coordinator, waits for
/// the common start instant, then runs it.
fn start_when_told<Driver>(
    created: io::Result<Driver>,
    plan: &LoadPlan,
    setup: &mpsc::Sender<io::Result<()>>,
    start: &mpsc::Receiver<Instant>,
    run: impl FnOnce(Driver, Clock) -> io::Result<LoadOutcome>,
) -> io::Result<LoadOutcome> {
    let driver = match created {
        Ok(driver) => driver,
        Err(error) => {
            let _ = setup.send(Err(io::Error::new(error.kind(), error.to_string())));
            return Err(error);
        }
    };
    let _ = setup.send(Ok(()));
    let Ok(start) = start.recv() else {
        return Ok(stream::empty_outcome(plan));
    };
    run(driver, Clock::new(start, plan))
}

fn merge(outcomes: Vec<LoadOutcome>) -> LoadOutcome {
    let mut merged = LoadOutcome::empty(0);
    for outcome in outcomes {
        merged.absorb(outcome);
    }
    merged
}

pub fn add_errors(into: &mut Errors, from: &Errors) {
    into.mismatch += from.mismatch;
    into.reset += from.reset;
    into.timeout += from.timeout;
    into.connect += from.connect;
    into.closed += from.closed;
    into.addr_unavailable += from.addr_unavailable;
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
            Failure::Mismatch => {}
        }
    }
}
