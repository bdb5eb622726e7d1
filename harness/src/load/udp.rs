//! UDP load (`--protocol udp`): flows of datagrams, every echo checked.
//!
//! A *flow* is one client socket on its own port (UDP has no connection):
//! `--connections N` opens N of them. Datagram `seq` of flow `f` carries `f`
//! and `seq` in its first 8 bytes and then the payload stream of `f` at
//! offset `seq × size` ([`payload`]): bytes that are a function of both, so
//! every echo is checked whole, by kind: the right bytes from the server's
//! address (`received`), shorter than sent (`truncated`), longer or with a
//! wrong byte or not this flow's (`wrong_payload`), from another address
//! (`wrong_sender`), a copy of one already back (`duplicated`), back after
//! a later one of its flow (`reordered`). The sockets are not connected, so
//! the kernel does not filter other senders away from the count.
//!
//! **Closed loop**: each flow has one datagram in flight; when its echo
//! comes, or when [`LOSS_BOUND`] passes without it, the flow sends the next.
//! **Open loop**: datagrams are due on the fixed schedule the TCP open loop
//! uses (round-robin over the flows), sent when due whatever came back, and
//! latency runs from the intended send time.
//!
//! After the load ends the thread waits up to [`LOSS_BOUND`] for the last
//! echoes; what never came back in any form is `lost`: a figure, not an
//! error, since UDP may drop. The kernel's drops over the window are read
//! beside it (see [`KernelDrops`]), and the generator's own: drops on its
//! sockets and sends it could not make mean the instrument lost datagrams.
//!
//! Per datagram the thread makes one `sendto`, one `recvfrom` that finds it
//! and a share of one `epoll_wait` (and a `recvfrom` finding `EAGAIN` that
//! ends each drain).

use super::recorder::Recorder;
use super::timer::Timer;
use super::{Clock, HOUSEKEEPING, LATE_SEND, LoadOutcome, LoadPlan, ThreadCpu, ThreadShare, payload};
use crate::results::cell::{Errors, Shape, UdpStats};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A datagram not back this long after it was sent (open loop: was due)
/// is counted lost, and a closed-loop flow sends its next one.
pub const LOSS_BOUND: Duration = Duration::from_millis(500);
/// The largest UDP payload over IPv4 (`echo_core::MAX_DATAGRAM`).
pub const MAX_SIZE: u32 = echo_core::MAX_DATAGRAM as u32;
/// The smallest: the flow and sequence number every datagram carries.
pub const HEADER: u32 = 8;

const TIMER: Token = Token(usize::MAX - 1);

/// One client socket and where its datagrams stand.
struct Flow {
    socket: UdpSocket,
    id: u32,
    /// Sequence number of the next datagram.
    next_seq: u32,
    /// Closed loop: the datagram in flight and when it was sent.
    in_flight: Option<(u32, u64)>,
    /// Sequence numbers back in any form, and those verified.
    answered: Bits,
    /// The highest sequence number back so far.
    highest: Option<u32>,
    /// Sequence numbers sent in the measurement: `[first, end)`.
    measured: (Option<u32>, u32),
    completed: u64,
}

/// A growable bit set over sequence numbers.
#[derive(Default)]
struct Bits(Vec<u64>);

impl Bits {
    /// Sets bit `index`; returns whether it was already set.
    fn set(&mut self, index: u32) -> bool {
        let (word, bit) = (index as usize / 64, index % 64);
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        let was = self.0[word] & (1 << bit) != 0;
        self.0[word] |= 1 << bit;
        was
    }
}

impl Flow {
    fn is_measured(&self, seq: u32) -> bool {
        self.measured
            .0
            .is_some_and(|first| (first..self.measured.1).contains(&seq))
    }

    fn note_sent(&mut self, seq: u32, clock: &Clock, at: u64) {
        if clock.in_measurement(at) {
            self.measured.0.get_or_insert(seq);
            self.measured.1 = seq + 1;
        }
    }
}

/// The flows of one load thread.
pub struct Flows {
    shape: Shape,
    size: usize,
    target: SocketAddr,
    poll: Poll,
    timer: Timer,
    flows: Vec<Flow>,
    stats: UdpStats,
    /// Verified datagrams back, sent in the counting phase.
    counted: u64,
    recorder: Recorder,
    buffer: Vec<u8>,
    datagram: Vec<u8>,
    send_period: f64,
    send_phase: f64,
    next_send: u64,
    scheduled_sends: u64,
    late_sends: u64,
    completed_total: u64,
    /// Thread 0 reads the machine's counters; every thread its own sockets'.
    reads_kernel: bool,
    drops_at_start: Option<KernelDrops>,
    drops_at_end: Option<KernelDrops>,
    send_failures: u64,
    /// Datagrams sent, and those back in any form, warm-up and counting
    /// phase included: the wait after the load ends stops when they meet.
    sent_total: u64,
    answered_total: u64,
}

impl Flows {
    /// Opens this thread's flows: one socket each, bound to a free port.
    pub fn open(plan: &LoadPlan, share: ThreadShare) -> io::Result<Flows> {
        let poll = Poll::new()?;
        let mut timer = Timer::new()?;
        poll.registry().register(&mut timer, TIMER, Interest::READABLE)?;
        let local: SocketAddr = match (plan.source, plan.addr) {
            (Some(source), _) => SocketAddr::new(source, 0),
            (None, SocketAddr::V4(_)) => "0.0.0.0:0".parse().expect("an address"),
            (None, SocketAddr::V6(_)) => "[::]:0".parse().expect("an address"),
        };
        let mut flows = Vec::with_capacity(share.connections);
        for index in 0..share.connections {
            let mut socket = UdpSocket::bind(local)?;
            poll.registry()
                .register(&mut socket, Token(index), Interest::READABLE)?;
            flows.push(Flow {
                socket,
                id: (share.first_connection + index as u64) as u32,
                next_seq: 0,
                in_flight: None,
                answered: Bits::default(),
                highest: None,
                measured: (None, 0),
                completed: 0,
            });
        }
        Ok(Flows {
            shape: plan.load.shape,
            size: plan.load.size as usize,
            target: plan.addr,
            poll,
            timer,
            flows,
            stats: UdpStats::default(),
            counted: 0,
            recorder: Recorder::with_interval(plan.load.duration, plan.interval),
            buffer: vec![0; 64 * 1024],
            datagram: vec![0; plan.load.size as usize],
            send_period: if share.rate > 0.0 {
                1e9 / share.rate
            } else {
                f64::INFINITY
            },
            send_phase: share.phase_ns,
            next_send: 0,
            scheduled_sends: 0,
            late_sends: 0,
            completed_total: 0,
            reads_kernel: share.index == 0,
            drops_at_start: None,
            drops_at_end: None,
            send_failures: 0,
            sent_total: 0,
            answered_total: 0,
        })
    }

    /// Drives the flows until the load ends and the last echoes are in or
    /// [`LOSS_BOUND`] has passed.
    pub fn run(&mut self, clock: Clock, progress: &AtomicU64) -> io::Result<LoadOutcome> {
        let mut events = Events::with_capacity(1024);
        let mut cpu = ThreadCpu::default();
        std::thread::sleep(clock.start.saturating_duration_since(std::time::Instant::now()));
        let bound = LOSS_BOUND.as_nanos() as u64;
        let mut next_housekeeping = 0;
        let mut timer_armed_for = u64::MAX;
        loop {
            let now = clock.now_ns();
            cpu.observe(&clock, now);
            if self.drops_at_start.is_none() && now >= clock.measure_from {
                self.drops_at_start = Some(self.read_drops());
            }
            if self.drops_at_end.is_none() && now >= clock.measure_until {
                self.drops_at_end = Some(self.read_drops());
            }
            if now >= next_housekeeping {
                progress.store(self.completed_total, Ordering::Relaxed);
                next_housekeeping = now + HOUSEKEEPING.as_nanos() as u64;
            }
            if now >= clock.count_until && (now >= clock.count_until + bound || !self.awaiting(now)) {
                break;
            }
            let mut wake_at = next_housekeeping;
            if let Some(&boundary) = [clock.measure_from, clock.measure_until, clock.count_until]
                .iter()
                .find(|&&boundary| now < boundary)
            {
                wake_at = wake_at.min(boundary);
            }
            match self.shape {
                Shape::Open => {
                    self.send_due(&clock, now);
                    let due = self.due_time(self.next_send);
                    if due < clock.count_until && due != timer_armed_for {
                        self.timer
                            .arm(Duration::from_nanos(due.saturating_sub(clock.now_ns())))?;
                        timer_armed_for = due;
                    }
                }
                _ => {
                    for index in 0..self.flows.len() {
                        let next = self.resend_at(index);
                        if next <= now && now < clock.count_until {
                            self.send_next(index, &clock);
                        }
                        wake_at = wake_at.min(self.resend_at(index).max(now));
                    }
                }
            }
            let timeout = Duration::from_nanos(wake_at.saturating_sub(now).max(1));
            if let Err(error) = self.poll.poll(&mut events, Some(timeout))
                && error.kind() != io::ErrorKind::Interrupted
            {
                return Err(error);
            }
            for event in events.iter() {
                if event.token() == TIMER {
                    self.timer.acknowledge();
                    timer_armed_for = u64::MAX;
                } else {
                    self.receive(event.token().0, &clock);
                }
            }
        }
        progress.store(self.completed_total, Ordering::Relaxed);
        Ok(self.finish(cpu))
    }

    /// Closed loop: when flow `index` sends next: at once if nothing is in
    /// flight, else when its datagram in flight is given up as lost.
    fn resend_at(&self, index: usize) -> u64 {
        match self.flows[index].in_flight {
            None => 0,
            Some((_, sent_at)) => sent_at + LOSS_BOUND.as_nanos() as u64,
        }
    }

    /// After the load: whether an echo is still worth waiting for.
    fn awaiting(&self, now: u64) -> bool {
        if self.answered_total >= self.sent_total {
            return false;
        }
        match self.shape {
            Shape::Open => {
                // The last datagram due: was it sent less than the bound ago,
                // and is any datagram of the window still out?
                let last_due = self.due_time(self.next_send.saturating_sub(1));
                now < last_due + LOSS_BOUND.as_nanos() as u64
            }
            _ => (0..self.flows.len())
                .any(|index| self.flows[index].in_flight.is_some() && self.resend_at(index) > now),
        }
    }

    #[inline]
    fn due_time(&self, sequence: u64) -> u64 {
        (self.send_phase + sequence as f64 * self.send_period) as u64
    }

    /// Open loop: sends every datagram due by `now` and before the load ends.
    fn send_due(&mut self, clock: &Clock, now: u64) {
        let count = self.flows.len() as u64;
        loop {
            let due = self.due_time(self.next_send);
            if due > now || due >= clock.count_until {
                return;
            }
            let index = (self.next_send % count) as usize;
            self.next_send += 1;
            if clock.in_measurement(due) {
                self.scheduled_sends += 1;
                if now - due > LATE_SEND.as_nanos() as u64 {
                    self.late_sends += 1;
                }
            }
            self.send(index, due, clock);
        }
    }

    /// Closed loop: flow `index` sends its next datagram now.
    fn send_next(&mut self, index: usize, clock: &Clock) {
        let now = clock.now_ns();
        let seq = self.flows[index].next_seq;
        self.flows[index].in_flight = Some((seq, now));
        self.send(index, now, clock);
    }

    /// Sends flow `index`'s next datagram, `at` being when it counts as
    /// sent (open loop: when it was due).
    fn send(&mut self, index: usize, at: u64, clock: &Clock) {
        let flow = &mut self.flows[index];
        let seq = flow.next_seq;
        flow.next_seq += 1;
        self.sent_total += 1;
        flow.note_sent(seq, clock, at);
        if flow.is_measured(seq) {
            self.stats.sent += 1;
        }
        fill(&mut self.datagram, flow.id, seq);
        if flow.socket.send_to(&self.datagram, self.target).is_err() {
            // The generator's send buffer was full (or the kernel refused):
            // the instrument lost it. It stays counted as sent, and lost.
            self.send_failures += 1;
        }
    }

    /// Reads and checks everything queued on flow `index`.
    fn receive(&mut self, index: usize, clock: &Clock) {
        loop {
            let (length, from) = match self.flows[index].socket.recv_from(&mut self.buffer) {
                Ok(received) => received,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock ends the drain; any other error (an ICMP error
                // reported on the socket) is no datagram.
                Err(_) => return,
            };
            let now = clock.now_ns();
            self.check(index, length, from, now, clock);
        }
    }

    /// Sorts one echo by kind.
    fn check(&mut self, index: usize, length: usize, from: SocketAddr, now: u64, clock: &Clock) {
        let bytes = &self.buffer[..length];
        let Some((flow_id, seq)) = header(bytes) else {
            self.stats.wrong_payload += 1;
            return;
        };
        let flow = &mut self.flows[index];
        if flow_id != flow.id || seq >= flow.next_seq {
            self.stats.wrong_payload += 1;
            return;
        }
        let measured = flow.is_measured(seq);
        let again = flow.answered.set(seq);
        self.answered_total += u64::from(!again);
        if from != self.target {
            self.stats.wrong_sender += u64::from(measured);
            return;
        }
        if length < self.size {
            self.stats.truncated += u64::from(measured);
            return;
        }
        let offset = u64::from(seq) * self.size as u64 + u64::from(HEADER);
        if length > self.size || !payload::matches(u64::from(flow.id), offset, &bytes[HEADER as usize..]) {
            self.stats.wrong_payload += u64::from(measured);
            return;
        }
        if again {
            self.stats.duplicated += u64::from(measured);
            return;
        }
        if flow.highest.is_some_and(|highest| seq < highest) {
            self.stats.reordered += u64::from(measured);
        }
        flow.highest = Some(flow.highest.map_or(seq, |highest| highest.max(seq)));
        self.completed_total += 1;
        let sent_at = match self.shape {
            Shape::Open => {
                let count = self.flows.len() as u64;
                self.due_time(u64::from(seq) * count + index as u64)
            }
            _ => match self.flows[index].in_flight {
                Some((in_flight, sent_at)) if in_flight == seq => {
                    self.flows[index].in_flight = None;
                    sent_at
                }
                // A late echo of a datagram already given up: back, but
                // its latency is past the bound and not recorded.
                _ => {
                    self.stats.received += u64::from(measured);
                    return;
                }
            },
        };
        if clock.in_counting(sent_at) {
            self.counted += 1;
        }
        if measured {
            self.stats.received += 1;
            self.flows[index].completed += 1;
            self.recorder.record(
                now.saturating_sub(sent_at),
                now.saturating_sub(clock.measure_from),
            );
        }
    }

    /// The machine's counters and this thread's sockets' drops, now.
    fn read_drops(&self) -> KernelDrops {
        let ports: Vec<u16> = self
            .flows
            .iter()
            .filter_map(|flow| flow.socket.local_addr().ok())
            .map(|addr| addr.port())
            .collect();
        KernelDrops::read(
            self.reads_kernel,
            self.target.ip().is_loopback(),
            self.target.port(),
            &ports,
        )
    }

    fn finish(&mut self, cpu: ThreadCpu) -> LoadOutcome {
        let mut stats = std::mem::take(&mut self.stats);
        let answered: u64 = self
            .flows
            .iter()
            .map(|flow| {
                let Some(first) = flow.measured.0 else { return 0 };
                (first..flow.measured.1)
                    .filter(|&seq| {
                        let (word, bit) = (seq as usize / 64, seq % 64);
                        flow.answered
                            .0
                            .get(word)
                            .is_some_and(|bits| bits & (1 << bit) != 0)
                    })
                    .count() as u64
            })
            .sum();
        stats.lost = stats.sent.saturating_sub(answered);
        if let (Some(start), Some(end)) = (&self.drops_at_start, &self.drops_at_end) {
            let since = |end: Option<u64>, start: Option<u64>| Some(end?.saturating_sub(start?));
            if self.reads_kernel {
                stats.kernel_rcvbuf_errors = since(end.rcvbuf_errors, start.rcvbuf_errors);
                stats.kernel_in_errors = since(end.in_errors, start.in_errors);
                stats.server_socket_drops = since(end.server_drops, start.server_drops);
            }
            stats.client_socket_drops = end.client_drops.saturating_sub(start.client_drops);
        }
        stats.client_socket_drops += self.send_failures;
        let errors = Errors {
            mismatch: stats.wrong_payload + stats.truncated + stats.wrong_sender,
            ..Errors::default()
        };
        let recorder = std::mem::replace(&mut self.recorder, Recorder::new(1));
        let (histogram, intervals) = recorder.finish();
        let (cpu, wall) = cpu.busy();
        LoadOutcome {
            histogram,
            intervals,
            errors,
            messages: stats.received,
            counted: self.counted,
            per_connection: self.flows.iter().map(|flow| flow.completed).collect(),
            starved: 0,
            scheduled_sends: self.scheduled_sends,
            late_sends: self.late_sends,
            threads: vec![(cpu, wall)],
            udp: Some(stats),
        }
    }
}

/// Checks a UDP load, with one sentence for what it cannot do.
pub fn check(load: &super::LoadSpec) -> anyhow::Result<()> {
    if load.shape == Shape::Churn {
        anyhow::bail!(
            "--protocol udp has no connections to open and close: use --shape closed or open, not churn"
        );
    }
    if !(HEADER..=MAX_SIZE).contains(&load.size) {
        anyhow::bail!(
            "--protocol udp needs --size between {HEADER} (the flow and sequence number each datagram carries) and {MAX_SIZE} bytes, the largest UDP payload (got {})",
            load.size
        );
    }
    if load.idle > 0 {
        anyhow::bail!(
            "--protocol udp has no idle connections: --idle must be 0 (got {})",
            load.idle
        );
    }
    Ok(())
}

/// Writes datagram `seq` of flow `flow` into `out` (its whole length).
pub fn fill(out: &mut [u8], flow: u32, seq: u32) {
    out[..4].copy_from_slice(&flow.to_be_bytes());
    out[4..8].copy_from_slice(&seq.to_be_bytes());
    let offset = u64::from(seq) * out.len() as u64 + u64::from(HEADER);
    payload::fill(u64::from(flow), offset, &mut out[HEADER as usize..]);
}

/// The (flow, seq) a datagram says it is.
pub fn header(bytes: &[u8]) -> Option<(u32, u32)> {
    let flow = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
    let seq = u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?);
    Some((flow, seq))
}

/// The kernel's UDP drop counters at one instant.
///
/// - `rcvbuf_errors`, `in_errors`: `/proc/net/snmp` (and `snmp6`'s `Udp6`
///   lines) `Udp: RcvbufErrors` and `InErrors`, the whole machine's
///   (network namespace's) datagrams dropped for a full receive buffer and
///   all receive errors.
/// - `server_drops`: the `drops` column of `/proc/net/udp` and `udp6` for
///   sockets bound to the server's port (a server on loopback only: one
///   elsewhere is in another machine's table).
/// - `client_drops`: the same for the generator's own sockets.
#[derive(Debug, Clone, Default)]
pub struct KernelDrops {
    pub rcvbuf_errors: Option<u64>,
    pub in_errors: Option<u64>,
    pub server_drops: Option<u64>,
    pub client_drops: u64,
}

impl KernelDrops {
    fn read(machine: bool, server_local: bool, server_port: u16, client_ports: &[u16]) -> KernelDrops {
        let mut drops = KernelDrops::default();
        if machine {
            let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
            drops.rcvbuf_errors = snmp_counter(&snmp, "RcvbufErrors");
            drops.in_errors = snmp_counter(&snmp, "InErrors");
        }
        let sockets = ["/proc/net/udp", "/proc/net/udp6"]
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .collect::<Vec<_>>()
            .join("\n");
        let table = socket_drops(&sockets);
        // A server elsewhere has its sockets in another machine's table.
        if machine && server_local {
            drops.server_drops = Some(
                table
                    .iter()
                    .filter(|(port, _)| *port == server_port)
                    .map(|(_, drops)| drops)
                    .sum(),
            );
        }
        let mut ports = client_ports.to_vec();
        ports.sort_unstable();
        drops.client_drops = table
            .iter()
            .filter(|(port, _)| ports.binary_search(port).is_ok())
            .map(|(_, drops)| drops)
            .sum();
        drops
    }
}

/// A counter of the `Udp:` lines of `/proc/net/snmp` (a line of names,
/// then a line of values).
pub fn snmp_counter(snmp: &str, name: &str) -> Option<u64> {
    let mut lines = snmp.lines().filter(|line| line.starts_with("Udp:"));
    let names = lines.next()?;
    let values = lines.next()?;
    let position = names.split_whitespace().position(|field| field == name)?;
    values.split_whitespace().nth(position)?.parse().ok()
}

/// (local port, drops) of every socket in `/proc/net/udp`-format text.
pub fn socket_drops(table: &str) -> Vec<(u16, u64)> {
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // "sl local_address rem_address st ... drops": the local address
            // is HEX_IP:HEX_PORT, and drops is the last column.
            let local = fields.get(1)?;
            let port = u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()?;
            let drops = fields.last()?.parse().ok()?;
            (fields.len() >= 13).then_some((port, drops))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_says_its_flow_and_sequence_and_its_bytes_depend_on_both() {
        let mut one = vec![0; 64];
        let mut other = vec![0; 64];
        fill(&mut one, 3, 7);
        assert_eq!(header(&one), Some((3, 7)));
        fill(&mut other, 4, 7);
        assert_ne!(one[8..], other[8..]);
        fill(&mut other, 3, 8);
        assert_ne!(one[8..], other[8..]);
        assert!(payload::matches(3, 7 * 64 + 8, &one[8..]));
    }

    #[test]
    fn reads_the_kernel_counters_formats() {
        let snmp = "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
                    Udp: 100 2 7 90 5 0\n\
                    UdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(snmp_counter(snmp, "RcvbufErrors"), Some(5));
        assert_eq!(snmp_counter(snmp, "InErrors"), Some(7));
        assert_eq!(snmp_counter(snmp, "Nope"), None);
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                     \x20 12: 0100007F:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 12345 2 0000000000000000 42\n";
        assert_eq!(socket_drops(table), vec![(0x1F90, 42)]);
        // This machine's own files parse (when it has them).
        if let Ok(snmp) = std::fs::read_to_string("/proc/net/snmp") {
            assert!(snmp_counter(&snmp, "RcvbufErrors").is_some());
        }
    }

    #[test]
    fn bits_remember_what_was_set() {
        let mut bits = Bits::default();
        assert!(!bits.set(200));
        assert!(bits.set(200));
        assert!(!bits.set(3));
    }
}
