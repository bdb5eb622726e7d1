//! THE steps of the tour. Each block below is one step: the claim as the
//! course (or the book) makes it, where it comes from, what is measured, the
//! threshold constants, the threshold as a sentence built from them, and the
//! verdict function that applies them to the measured figures. A reader
//! checks a verdict against `tour.json` by reading one block; the measuring
//! itself is in [`super::experiments`].
//!
//! A verdict function sees only the figures (named as in `tour.json`'s
//! `measured`), so that a test can feed it any numbers. It says `confirmed`
//! when the figures meet the threshold, and otherwise `not confirmed here`
//! with the measured ratio and the likely reason. A figure it needs but
//! cannot find makes the step `skipped`.

use super::experiments;
use super::{Figures, Judgement};
use crate::results::tour::Margin;
use crate::tour::Session;
use crate::tour::experiments::Measured;

/// One step of the tour.
pub struct Step {
    pub number: u32,
    /// A few words, for progress and the report's headings.
    pub title: &'static str,
    pub claim: &'static str,
    pub source: &'static str,
    /// What is measured to check the claim.
    pub measures: &'static str,
    /// Published figures shown beside the measured ones.
    pub reference: Option<&'static str>,
    /// The threshold, in words, from the constants the verdict uses.
    pub threshold: fn() -> String,
    pub measure: fn(&mut Session) -> anyhow::Result<Measured>,
    /// Err names a figure that was not measured.
    pub judge: fn(&Figures) -> Result<Judgement, String>,
}

/// Every step, in the order of the course.
pub const STEPS: [Step; 18] = [
    STEP_1, STEP_2, STEP_3, STEP_4, STEP_5, STEP_6, STEP_7, STEP_8, STEP_9, STEP_10, STEP_11, STEP_12,
    STEP_13, STEP_14, STEP_15, STEP_16, STEP_17, STEP_18,
];

/// The figure `name`, or Err(name) when the step did not measure it.
fn get(figures: &Figures, name: &str) -> Result<f64, String> {
    figures.get(name).copied().ok_or_else(|| name.to_owned())
}

/// `a / b`, written for a reason: `12.3x`, or `∞` when `b` is 0.
fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        if a == 0.0 {
            "1x".to_owned()
        } else {
            "∞".to_owned()
        }
    } else {
        format!("{}x", short(a / b))
    }
}

/// A number for a sentence: a whole number as a count, anything else to
/// about three significant digits.
pub fn short(value: f64) -> String {
    crate::report::groups::figure(value)
}

// ── Steps 1 and 2: clients that wait for a place ────────────────────────────

/// How long the waiting client sends and waits while the first ones stay
/// connected: it must get no echo in all that time.
pub const HOLD_MS: f64 = 1000.0;
/// How soon after one of the first clients leaves the waiting one must be
/// echoed.
pub const PROMPT_AFTER_LEAVE_MS: f64 = 500.0;

fn hold_threshold() -> String {
    format!(
        "every holding client is echoed; the waiting client gets no echo while they all stay ({} ms), and is echoed within {} ms after one leaves",
        short(HOLD_MS),
        short(PROMPT_AFTER_LEAVE_MS)
    )
}

/// Steps 1 and 2: `holders` clients are echoed and stay; one more sends and
/// waits; then one holder leaves.
fn judge_hold(figures: &Figures) -> Result<Judgement, String> {
    let holders = get(figures, "holding_clients")?;
    let served = get(figures, "holding_clients_echoed")?;
    let during = get(figures, "waiting_client_echoed_while_held")?;
    let waited = get(figures, "waiting_client_waited_ms")?;
    let mut checks = vec![
        Margin::at_least("holding_clients_echoed", served, holders),
        Margin::at_most("waiting_client_echoed_while_held", during, 0.0),
    ];
    if served < holders {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "only {} of the {} holding clients were echoed (ratio {}); likely: the server could not serve them all at once, or the machine was too loaded to answer within the deadline",
                short(served),
                short(holders),
                ratio(served, holders)
            ),
        ));
    }
    if during > 0.0 {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "the waiting client was echoed {} ms after it sent, while the {} holding clients stayed (expected no echo for {} ms: ratio {}); likely: this server serves more clients at once than the claim says",
                short(waited),
                short(holders),
                short(HOLD_MS),
                ratio(waited, HOLD_MS)
            ),
        ));
    }
    let Some(after) = figures.get("waiting_client_echo_after_leave_ms").copied() else {
        checks.push(Margin::at_least("waiting_client_echoed_after_leave", 0.0, 1.0));
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "the waiting client got no echo while the others stayed ({} ms) and still none after one left; likely: the server did not move on to the next client",
                short(waited)
            ),
        ));
    };
    checks.push(Margin::at_least("waiting_client_waited_ms", waited, HOLD_MS));
    checks.push(Margin::at_most(
        "waiting_client_echo_after_leave_ms",
        after,
        PROMPT_AFTER_LEAVE_MS,
    ));
    if waited < HOLD_MS || after > PROMPT_AFTER_LEAVE_MS {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "the waiting client waited {} ms with no echo (threshold {} ms) and was echoed {} ms after a holder left (threshold {} ms: ratio {}); likely: a loaded machine delayed the server",
                short(waited),
                short(HOLD_MS),
                short(after),
                short(PROMPT_AFTER_LEAVE_MS),
                ratio(after, PROMPT_AFTER_LEAVE_MS)
            ),
        ));
    }
    let holding = if holders == 1.0 {
        "the first client".to_owned()
    } else {
        format!("{} clients", short(holders))
    };
    Ok(Judgement::confirmed(
        &checks,
        format!(
            "the waiting client got no echo for {} ms while {holding} held the server, and was echoed {} ms after one left",
            short(waited),
            short(after)
        ),
    ))
}

const STEP_1: Step = Step {
    number: 1,
    title: "single starves the second client",
    claim: "`single` serves one client at a time: a second client's first echo waits until the first client leaves.",
    source: "the course: servers/single (Limits)",
    measures: "Client A connects to `single` and is echoed, and stays. Client B connects and sends 64 bytes; for 1 s it waits. Then A leaves: how long B waited with no echo, and how soon after A left B was echoed.",
    reference: None,
    threshold: hold_threshold,
    measure: experiments::single_starves,
    judge: judge_hold,
};

const STEP_2: Step = Step {
    number: 2,
    title: "a pool of N serves N, the next one waits",
    claim: "A pool of N workers serves N clients at once; client N+1 waits, connected but unanswered, until one of them leaves.",
    source: "the course: servers/pool (Limits)",
    measures: "`pool --workers 4`: four clients connect, are echoed, and stay. A fifth connects and sends 64 bytes; for 1 s it waits. Then one of the four leaves: how long the fifth waited with no echo, and how soon after it was echoed.",
    reference: None,
    threshold: hold_threshold,
    measure: experiments::pool_waits,
    judge: judge_hold,
};

// ── Step 3: busy polling ────────────────────────────────────────────────────

/// `nonblocking` must use at least this much of a CPU with nothing to do.
pub const BUSY_POLL_MIN_PERCENT: f64 = 80.0;
/// `epoll` must use at most this much of a CPU with nothing to do.
pub const SLEEPING_MAX_PERCENT: f64 = 10.0;

fn busy_threshold() -> String {
    format!(
        "nonblocking uses at least {}% of a CPU and epoll at most {}%",
        short(BUSY_POLL_MIN_PERCENT),
        short(SLEEPING_MAX_PERCENT)
    )
}

fn judge_busy(figures: &Figures) -> Result<Judgement, String> {
    let spinning = get(figures, "nonblocking_cpu_percent")?;
    let sleeping = get(figures, "epoll_cpu_percent")?;
    let checks = [
        Margin::at_least("nonblocking_cpu_percent", spinning, BUSY_POLL_MIN_PERCENT),
        Margin::at_most("epoll_cpu_percent", sleeping, SLEEPING_MAX_PERCENT),
    ];
    let figures_text = format!(
        "nonblocking used {}% of a CPU, epoll {}% (ratio {})",
        short(spinning),
        short(sleeping),
        ratio(spinning, sleeping)
    );
    if spinning < BUSY_POLL_MIN_PERCENT {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{figures_text}: nonblocking is below {}%; likely: other processes shared the server's CPU, so the poller got less of it to burn",
                short(BUSY_POLL_MIN_PERCENT)
            ),
        ));
    }
    if sleeping > SLEEPING_MAX_PERCENT {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{figures_text}: epoll is above {}%; likely: it was not idle (messages or connections kept it awake)",
                short(SLEEPING_MAX_PERCENT)
            ),
        ));
    }
    Ok(Judgement::confirmed(
        &checks,
        format!("with nothing but a message every 100 ms to serve, {figures_text}"),
    ))
}

const STEP_3: Step = Step {
    number: 3,
    title: "busy polling burns a core while nothing happens",
    claim: "Busy polling burns a core while nothing happens: `nonblocking` tries every socket over and over, `epoll` sleeps until one is ready.",
    source: "the course: servers/nonblocking (Costs)",
    measures: "Server CPU with 10 idle connections and one more sending 64 bytes every 100 ms (open loop, 10 msgs/s): nonblocking and epoll (and select, which sleeps too).",
    reference: None,
    threshold: busy_threshold,
    measure: experiments::busy_polling,
    judge: judge_busy,
};

// ── Step 4: FD_SETSIZE ──────────────────────────────────────────────────────

/// `select(2)`: an `fd_set` holds descriptors 0 to FD_SETSIZE - 1.
pub const FD_SETSIZE: f64 = 1024.0;
/// Connections opened: more than FD_SETSIZE.
pub const BEYOND_FD_SETSIZE: u32 = 1100;

fn fd_setsize_threshold() -> String {
    format!(
        "of {} connections, select serves at most {} (FD_SETSIZE) and epoll serves all",
        BEYOND_FD_SETSIZE,
        short(FD_SETSIZE)
    )
}

fn judge_fd_setsize(figures: &Figures) -> Result<Judgement, String> {
    let connections = get(figures, "connections")?;
    let select = get(figures, "select_served")?;
    let epoll = get(figures, "epoll_served")?;
    let checks = [
        Margin::at_most("select_served", select, FD_SETSIZE.min(connections - 1.0)),
        Margin::at_least("epoll_served", epoll, connections),
    ];
    if select > FD_SETSIZE || select >= connections {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "select served {} of {} connections (ratio {}), more than FD_SETSIZE ({}); likely: its descriptors stayed below FD_SETSIZE (not all connections reached it at once)",
                short(select),
                short(connections),
                ratio(select, connections),
                short(FD_SETSIZE)
            ),
        ));
    }
    if epoll < connections {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "epoll served only {} of {} connections (ratio {}); likely: the open-file limit, or connections that timed out on a loaded machine",
                short(epoll),
                short(connections),
                ratio(epoll, connections)
            ),
        ));
    }
    Ok(Judgement::confirmed(
        &checks,
        format!(
            "of {} connections, select served {} and closed the rest, whose descriptors were past FD_SETSIZE; epoll served all {}",
            short(connections),
            short(select),
            short(epoll)
        ),
    ))
}

const STEP_4: Step = Step {
    number: 4,
    title: "select refuses descriptors past FD_SETSIZE",
    claim: "`select` cannot watch a descriptor at or above FD_SETSIZE (1,024): past about a thousand connections the next ones are refused, while `epoll` serves them all.",
    source: "the course: servers/select (Limits); select(2)",
    measures: "1,100 connections in closed loop, against select and against epoll: how many connections were served (echoed, with no error).",
    reference: None,
    threshold: fd_setsize_threshold,
    measure: experiments::fd_setsize,
    judge: judge_fd_setsize,
};

// ── Step 5: what select and epoll cost per call ─────────────────────────────

/// select's CPU per message with the most idle connections, over its CPU
/// per message with none, must be at least this.
pub const SELECT_GROWTH_MIN: f64 = 2.0;
/// epoll's, at most this.
pub const EPOLL_GROWTH_MAX: f64 = 1.5;

fn scan_threshold() -> String {
    format!(
        "select's server CPU per message with the most idle connections is at least {} times its CPU per message with none; epoll's at most {} times",
        short(SELECT_GROWTH_MIN),
        short(EPOLL_GROWTH_MAX)
    )
}

fn judge_scan(figures: &Figures) -> Result<Judgement, String> {
    let select = get(figures, "select_growth")?;
    let epoll = get(figures, "epoll_growth")?;
    let select_idle = get(figures, "select_most_idle")?;
    let epoll_idle = get(figures, "epoll_most_idle")?;
    let checks = [
        Margin::at_least("select_growth", select, SELECT_GROWTH_MIN),
        Margin::at_most("epoll_growth", epoll, EPOLL_GROWTH_MAX),
    ];
    let text = format!(
        "from 0 to {} idle connections select's CPU per message grew {}, from 0 to {} epoll's {}",
        short(select_idle),
        ratio(select, 1.0),
        short(epoll_idle),
        ratio(epoll, 1.0)
    );
    if select < SELECT_GROWTH_MIN {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: select grew less than {}x; likely: the scan is small next to the loopback TCP cost of a message on this machine",
                short(SELECT_GROWTH_MIN)
            ),
        ));
    }
    if epoll > EPOLL_GROWTH_MAX {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: epoll grew more than {}x; likely: a busy machine (cache misses, other work) slowed the cells with many connections",
                short(EPOLL_GROWTH_MAX)
            ),
        ));
    }
    Ok(Judgement::confirmed(&checks, text))
}

const STEP_5: Step = Step {
    number: 5,
    title: "select's cost grows with what it watches, epoll's does not",
    claim: "`select`'s cost grows with the connections it watches, `epoll`'s with the ones that are active: select copies and scans every descriptor on every call, epoll returns only the ready ones.",
    source: "TLPI (Kerrisk) §63.4.5, Table 63-9; the course: servers/select, servers/epoll",
    measures: "Server CPU per message with one active connection (closed loop) beside 0, 500 and 1,000 idle ones for select (staying below FD_SETSIZE) and 0, 500, 1,000 and 2,000 for epoll.",
    reference: Some(
        "TLPI Table 63-9, 100,000 calls with one ready descriptor among N watched (2010 hardware): select 0.73 s at N = 10, 35 s at 1,000, 930 s at 10,000, i.e. 7.3, 350 and 9,300 µs per call; epoll 0.41, 0.53 and 0.66 s, i.e. 4.1, 5.3 and 6.6 µs per call. Here one message costs one call plus its read and write.",
    ),
    threshold: scan_threshold,
    measure: experiments::scan_cost,
    judge: judge_scan,
};

// ── Step 6: what a thread costs ─────────────────────────────────────────────

/// Address space threaded reserves per added client (its thread's stack is
/// 2 MiB): at least this.
pub const STACK_RESERVED_MIN_KIB: f64 = 1024.0;
/// threaded's address space per added client over epoll's: at least this.
pub const ADDRESS_SPACE_RATIO_MIN: f64 = 8.0;
/// threaded's context switches per message over epoll's: at least this.
pub const SWITCH_RATIO_MIN: f64 = 10.0;

fn thread_cost_threshold() -> String {
    format!(
        "at the most clients, threaded reserves at least {} KiB of address space per added client and {} times epoll's, and makes at least {} times epoll's context switches per message",
        short(STACK_RESERVED_MIN_KIB),
        short(ADDRESS_SPACE_RATIO_MIN),
        short(SWITCH_RATIO_MIN)
    )
}

fn judge_thread_cost(figures: &Figures) -> Result<Judgement, String> {
    let threaded_space = get(figures, "threaded_address_space_per_client_kib")?;
    let epoll_space = get(figures, "epoll_address_space_per_client_kib")?;
    let threaded_resident = get(figures, "threaded_memory_per_client_kib")?;
    let epoll_resident = get(figures, "epoll_memory_per_client_kib")?;
    let threaded_switches = get(figures, "threaded_switches_per_msg")?;
    let epoll_switches = get(figures, "epoll_switches_per_msg")?;
    let checks = [
        Margin::at_least(
            "threaded_address_space_per_client_kib",
            threaded_space,
            STACK_RESERVED_MIN_KIB.max(ADDRESS_SPACE_RATIO_MIN * epoll_space),
        ),
        Margin::at_least(
            format!(
                "threaded_switches_per_msg vs {} × epoll_switches_per_msg",
                short(SWITCH_RATIO_MIN)
            ),
            threaded_switches,
            SWITCH_RATIO_MIN * epoll_switches,
        ),
    ];
    let text = format!(
        "per added client threaded reserved {} KiB of address space, epoll {} KiB (ratio {}); memory charged (each page once): {} KiB and {} KiB. Context switches per message: threaded {}, epoll {} (ratio {})",
        short(threaded_space),
        short(epoll_space),
        ratio(threaded_space, epoll_space),
        short(threaded_resident),
        short(epoll_resident),
        short(threaded_switches),
        short(epoll_switches),
        ratio(threaded_switches, epoll_switches)
    );
    if threaded_space < STACK_RESERVED_MIN_KIB || threaded_space < ADDRESS_SPACE_RATIO_MIN * epoll_space {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: threaded reserved less than the threshold; likely: threads were started with small stacks, or the clients were not all accepted"
            ),
        ));
    }
    if threaded_switches < SWITCH_RATIO_MIN * epoll_switches {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: threaded switched less than {}x as often; likely: its threads found their next message already there and did not sleep",
                short(SWITCH_RATIO_MIN)
            ),
        ));
    }
    Ok(Judgement::confirmed(
        &checks,
        format!("{text}. The memory a thread costs is mostly reserved, not touched."),
    ))
}

const STEP_6: Step = Step {
    number: 6,
    title: "threads cost memory and context switches",
    claim: "Threads cost memory and context switches: each client's thread reserves a whole stack of address space (2 MiB, of which a few KiB are touched) and every message wakes it with a context switch, where one epoll thread serves many messages per wake-up.",
    source: "the course: servers/threaded (Costs, Limits); Kegel, The C10K problem",
    measures: "Closed loop at 10, 100 and 500 clients for threaded, epoll and async: threads, address space and memory (the server's memory cgroup's peak, each page once) per added client (between the fewest and the most clients), and context switches per message.",
    reference: None,
    threshold: thread_cost_threshold,
    measure: experiments::thread_cost,
    judge: judge_thread_cost,
};

// ── Step 7: coroutines ──────────────────────────────────────────────────────

/// OS threads `coroutine` may use for its clients: at most this.
pub const COROUTINE_MAX_THREADS: f64 = 16.0;
/// threaded's threads and context switches per message over coroutine's:
/// at least this.
pub const COROUTINE_SAVING_MIN: f64 = 10.0;

fn coroutine_threshold() -> String {
    format!(
        "coroutine uses at most {} OS threads and 1/{} of threaded's, makes at most 1/{} of threaded's context switches per message, and leaves no client unserved",
        short(COROUTINE_MAX_THREADS),
        short(COROUTINE_SAVING_MIN),
        short(COROUTINE_SAVING_MIN)
    )
}

fn judge_coroutine(figures: &Figures) -> Result<Judgement, String> {
    let threads = get(figures, "coroutine_threads")?;
    let threaded_threads = get(figures, "threaded_threads")?;
    let switches = get(figures, "coroutine_switches_per_msg")?;
    let threaded_switches = get(figures, "threaded_switches_per_msg")?;
    let starved = get(figures, "coroutine_unserved_clients")?;
    let checks = [
        Margin::at_most(
            "coroutine_threads",
            threads,
            COROUTINE_MAX_THREADS.min(threaded_threads / COROUTINE_SAVING_MIN),
        ),
        Margin::at_most(
            format!(
                "coroutine_switches_per_msg vs threaded_switches_per_msg / {}",
                short(COROUTINE_SAVING_MIN)
            ),
            switches,
            threaded_switches / COROUTINE_SAVING_MIN,
        ),
        Margin::at_most("coroutine_unserved_clients", starved, 0.0),
    ];
    let text = format!(
        "coroutine ran its clients on {} OS threads, threaded on {} (ratio {}); context switches per message {} against {} (ratio {}); coroutine left {} clients unserved, threaded {}",
        short(threads),
        short(threaded_threads),
        ratio(threaded_threads, threads),
        short(switches),
        short(threaded_switches),
        ratio(threaded_switches, switches),
        short(starved),
        short(get(figures, "threaded_unserved_clients")?)
    );
    if threads > COROUTINE_MAX_THREADS || threads * COROUTINE_SAVING_MIN > threaded_threads {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: coroutine used too many OS threads; likely: its runtime was given more workers (--workers) or saw more CPUs"
            ),
        ));
    }
    if switches * COROUTINE_SAVING_MIN > threaded_switches {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: coroutine switched too often; likely: its workers slept between messages at this load"
            ),
        ));
    }
    if starved > 0.0 {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: coroutine did not serve every client; likely: connections were not accepted in time on a loaded machine"
            ),
        ));
    }
    Ok(Judgement::confirmed(&checks, text))
}

const STEP_7: Step = Step {
    number: 7,
    title: "coroutines look blocking and still scale",
    claim: "Coroutines look blocking and still scale: `coroutine` runs the same blocking echo code as `threaded`, but its clients share a few OS threads that switch between them in user space.",
    source: "the course: servers/coroutine (Model, Compare with)",
    measures: "1,000 clients in closed loop, threaded against coroutine: OS threads, context switches per message, messages per second, clients left unserved.",
    reference: None,
    threshold: coroutine_threshold,
    measure: experiments::coroutines,
    judge: judge_coroutine,
};

// ── Step 8: what a connection costs ─────────────────────────────────────────

/// What a thread (or process) per connection adds to the iterative
/// server's CPU per connection: at least this share of it...
pub const ADDED_SHARE_MIN: f64 = 0.5;
/// ...and at least this many times what epoll adds.
pub const ADDED_OVER_EPOLL_MIN: f64 = 4.0;

fn connect_threshold() -> String {
    format!(
        "threaded (and process, where built) add at least {}% to the iterative server's CPU per connection, and at least {} times what epoll adds",
        short(ADDED_SHARE_MIN * 100.0),
        short(ADDED_OVER_EPOLL_MIN)
    )
}

/// UNP's method: each design's CPU per connection less the iterative
/// server's is what the design itself costs.
fn judge_connect(figures: &Figures) -> Result<Judgement, String> {
    let iterative = get(figures, "single_cpu_us_per_connection")?;
    let epoll_added = get(figures, "epoll_cpu_us_per_connection")? - iterative;
    let mut checks = Vec::new();
    let mut parts = Vec::new();
    let mut short_of = Vec::new();
    for model in ["threaded", "process"] {
        let Some(&cost) = figures.get(&format!("{model}_cpu_us_per_connection")) else {
            continue;
        };
        let added = cost - iterative;
        parts.push(format!(
            "{model} {} µs per connection, {} µs more than the iterative server's {} (+{}%), where epoll adds {} µs (ratio {})",
            short(cost),
            short(added),
            short(iterative),
            short(100.0 * added / iterative),
            short(epoll_added),
            ratio(added, epoll_added.max(0.0))
        ));
        let least = (ADDED_SHARE_MIN * iterative).max(ADDED_OVER_EPOLL_MIN * epoll_added.max(0.0));
        checks.push(Margin::at_least(
            format!("{model}_cpu_us_per_connection − single_cpu_us_per_connection"),
            added,
            least,
        ));
        if added < least {
            short_of.push(model);
        }
    }
    if parts.is_empty() {
        return Err("threaded_cpu_us_per_connection".to_owned());
    }
    let text = parts.join("; ");
    if !short_of.is_empty() {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: {} adds less than the threshold; likely: the client, not the server, was the limit (churn is client-bound on loopback), leaving the server's CPU samples small and noisy",
                short_of.join(" and ")
            ),
        ));
    }
    Ok(Judgement::confirmed(&checks, text))
}

const STEP_8: Step = Step {
    number: 8,
    title: "a thread or process per connection makes connecting expensive",
    claim: "A process or a thread per connection makes connecting expensive: creating and ending it costs far more CPU per connection than the iterative server spends, where epoll adds little.",
    source: "UNP (Stevens), ch. 30: server CPU time per connection, less the iterative server's",
    measures: "Churn (connect, echo 64 bytes, close) from 10 clients at a time: server CPU per connection for single (the iterative server), threaded, process (where built) and epoll, and each one's excess over single.",
    reference: Some(
        "UNP ch. 30 (Client/Server Design Alternatives) compares server designs by the CPU time each spends per client beyond the iterative server's: the designs that fork a process or start a thread per client pay for it on every connection.",
    ),
    threshold: connect_threshold,
    measure: experiments::connect_cost,
    judge: judge_connect,
};

// ── Step 9: system calls per message ────────────────────────────────────────

fn syscall_threshold() -> String {
    "every range a model's doc states (its crate's SYSCALLS) holds: no contradiction".to_owned()
}

fn judge_syscalls(figures: &Figures) -> Result<Judgement, String> {
    let checked = get(figures, "ranges_checked")?;
    let contradicted = get(figures, "ranges_contradicted")?;
    let checks = [Margin::at_most("ranges_contradicted", contradicted, 0.0)];
    if contradicted > 0.0 {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{} of {} stated ranges were contradicted (ratio {}; see the notes); likely: a runtime changed how it waits, or a loaded machine batched more messages per wake-up",
                short(contradicted),
                short(checked),
                ratio(contradicted, checked)
            ),
        ));
    }
    Ok(Judgement::confirmed(
        &checks,
        format!(
            "all {} ranges the models' docs state hold, model by model (see the notes)",
            short(checked)
        ),
    ))
}

const STEP_9: Step = Step {
    number: 9,
    title: "each model makes the system calls its doc says",
    claim: "Each model makes the system calls per message its doc says: one recvfrom and one sendto, plus a share of one select or epoll_wait for the readiness models; one more recvfrom ending in EAGAIN for edge-triggered epoll and the coroutines; many empty reads for busy polling.",
    source: "the course: each model's System calls section, stated as numbers in its crate (SYSCALLS)",
    measures: "Every model variant under the profile load (open loop, 10 connections, 2,000 msgs/s, 64 B): system calls per message by name, counted by the kernel's tracepoints, against each range its doc states.",
    reference: None,
    threshold: syscall_threshold,
    measure: experiments::syscall_profiles,
    judge: judge_syscalls,
};

// ── Step 10: io_uring ───────────────────────────────────────────────────────

/// uring's system calls per message over epoll's: at most this.
pub const URING_SYSCALL_RATIO_MAX: f64 = 0.5;

fn uring_threshold() -> String {
    format!(
        "uring makes at most {} times epoll's system calls per message",
        short(URING_SYSCALL_RATIO_MAX)
    )
}

fn judge_uring(figures: &Figures) -> Result<Judgement, String> {
    let uring = get(figures, "uring_syscalls_per_msg")?;
    let epoll = get(figures, "epoll_syscalls_per_msg")?;
    let checks = [Margin::at_most(
        format!(
            "uring_syscalls_per_msg vs {} × epoll_syscalls_per_msg",
            short(URING_SYSCALL_RATIO_MAX)
        ),
        uring,
        URING_SYSCALL_RATIO_MAX * epoll,
    )];
    let text = format!(
        "uring made {} system calls per message, epoll {} (ratio {})",
        short(uring),
        short(epoll),
        ratio(uring, epoll)
    );
    if uring > URING_SYSCALL_RATIO_MAX * epoll {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}; likely: few completions were ready per io_uring_enter at this load, so little was batched"
            ),
        ));
    }
    Ok(Judgement::confirmed(&checks, text))
}

const STEP_10: Step = Step {
    number: 10,
    title: "io_uring batches system calls",
    claim: "io_uring batches system calls: one io_uring_enter submits and reaps many reads and writes, so `uring` makes far fewer system calls per message than `epoll`.",
    source: "the course: servers/uring; io_uring(7)",
    measures: "100 connections in closed loop, uring against epoll: system calls per message, counted by the kernel's tracepoints.",
    reference: None,
    threshold: uring_threshold,
    measure: experiments::uring_batches,
    judge: judge_uring,
};

// ── Step 11: a reactor per core ─────────────────────────────────────────────

/// reuseport's throughput over epoll's, on two or more server CPUs: at least this.
pub const REACTOR_SCALING_MIN: f64 = 1.3;
/// CPUs the affinity mask needs: two for the server, two for the load.
pub const REACTOR_CPUS_MIN: usize = 4;

fn reactor_threshold() -> String {
    format!(
        "with the server on at least 2 CPUs, reuseport serves at least {} times epoll's messages per second, and the load generator is not the limit",
        short(REACTOR_SCALING_MIN)
    )
}

fn judge_reactor(figures: &Figures) -> Result<Judgement, String> {
    let cpus = get(figures, "server_cpus")?;
    let reuseport = get(figures, "reuseport_msgs_per_sec")?;
    let epoll = get(figures, "epoll_msgs_per_sec")?;
    let client_bound = get(figures, "reuseport_client_bound")?;
    let checks = [
        Margin::at_least(
            format!(
                "reuseport_msgs_per_sec vs {} × epoll_msgs_per_sec",
                short(REACTOR_SCALING_MIN)
            ),
            reuseport,
            REACTOR_SCALING_MIN * epoll,
        ),
        Margin::at_most("reuseport_client_bound", client_bound, 0.0),
    ];
    let text = format!(
        "on {} server CPUs reuseport served {} msgs/s, epoll {} (ratio {})",
        short(cpus),
        short(reuseport),
        short(epoll),
        ratio(reuseport, epoll)
    );
    if reuseport < REACTOR_SCALING_MIN * epoll {
        let likely = if client_bound > 0.0 {
            "the load generator was the limit (the cell is flagged client-bound)"
        } else {
            "the reactors did not get a fair share of the connections, or the CPUs are hyperthreads of one core"
        };
        return Ok(Judgement::not_confirmed(
            &checks,
            format!("{text}; likely: {likely}"),
        ));
    }
    if client_bound > 0.0 {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}, but the load generator was the limit (client-bound), so the scaling is a lower bound, not a measurement"
            ),
        ));
    }
    Ok(Judgement::confirmed(&checks, text))
}

const STEP_11: Step = Step {
    number: 11,
    title: "a reactor per core scales with cores",
    claim: "A reactor per core scales with cores: `reuseport` runs one epoll loop per server CPU, each accepting its own connections through SO_REUSEPORT, where `epoll` has one loop on one CPU.",
    source: "the course: servers/reuseport; socket(7), SO_REUSEPORT",
    measures: "Closed loop, 200 connections, the server on half of the affinity mask (at least 2 CPUs): messages per second of reuseport against epoll.",
    reference: None,
    threshold: reactor_threshold,
    measure: experiments::reactor_per_core,
    judge: judge_reactor,
};

// ── Step 12: the cost of the language ───────────────────────────────────────

/// A Python server's CPU per message over its Rust twin's: at least this.
pub const LANGUAGE_COST_MIN: f64 = 1.5;
/// The pairs compared: the Python server (servers/python/) and its twin.
pub const LANGUAGE_PAIRS: [(&str, &str); 2] = [("py-epoll", "epoll"), ("py-threaded", "threaded")];

fn language_threshold() -> String {
    format!(
        "for each pair, the Python server's CPU per message is at least {} times its Rust twin's",
        short(LANGUAGE_COST_MIN)
    )
}

fn judge_language(figures: &Figures) -> Result<Judgement, String> {
    let mut checks = Vec::new();
    let mut parts = Vec::new();
    let mut short_of = Vec::new();
    for (python, rust) in LANGUAGE_PAIRS {
        let py_cost = get(figures, &format!("{}_cpu_us_per_msg", python.replace('-', "_")))?;
        let rust_cost = get(figures, &format!("{rust}_cpu_us_per_msg"))?;
        parts.push(format!(
            "{python} {} µs of CPU per message, {rust} {} (ratio {})",
            short(py_cost),
            short(rust_cost),
            ratio(py_cost, rust_cost)
        ));
        checks.push(Margin::at_least(
            format!(
                "{}_cpu_us_per_msg vs {} × {rust}_cpu_us_per_msg",
                python.replace('-', "_"),
                short(LANGUAGE_COST_MIN)
            ),
            py_cost,
            LANGUAGE_COST_MIN * rust_cost,
        ));
        if py_cost < LANGUAGE_COST_MIN * rust_cost {
            short_of.push(python);
        }
    }
    let text = parts.join("; ");
    if !short_of.is_empty() {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: {} below {}x; likely: the kernel's loopback TCP, the same for both languages, is most of what a message costs, so the interpreter's share is small",
                short_of.join(" and "),
                short(LANGUAGE_COST_MIN)
            ),
        ));
    }
    Ok(Judgement::confirmed(&checks, text))
}

const STEP_12: Step = Step {
    number: 12,
    title: "the same model costs more CPU in Python",
    claim: "The same concurrency model costs more CPU per message in Python than in Rust: the interpreter runs each step of the loop that the compiled model runs as machine code.",
    source: "the course, in Python: servers/python (Costs); the Rust models' docs",
    measures: "Closed loop, 100 connections, 64 bytes: server CPU per message of py-epoll against epoll and of py-threaded against threaded (each pair on the same server CPU).",
    reference: None,
    threshold: language_threshold,
    measure: experiments::language_cost,
    judge: judge_language,
};

// ── Step 13: waits overlap, on one core ─────────────────────────────────────

/// The wait each message costs the server (`--work wait:MICROS`).
pub const WAIT_MICROS: u32 = 1000;
/// Connections in closed loop.
pub const WAIT_CONNECTIONS: u32 = 100;
/// An overlapping model's messages per second over `py-single`'s: at least this.
pub const OVERLAP_MIN: f64 = 10.0;

fn overlap_threshold() -> String {
    format!(
        "with a {} µs wait per message and {} connections, every threaded, coroutine or event-loop Python server serves at least {} times py-single's messages per second",
        WAIT_MICROS,
        WAIT_CONNECTIONS,
        short(OVERLAP_MIN)
    )
}

fn judge_overlap(figures: &Figures) -> Result<Judgement, String> {
    let single = get(figures, "py_single_msgs_per_sec")?;
    let mut overlapping: Vec<(String, f64)> = figures
        .iter()
        .filter(|(name, _)| {
            name.starts_with("py_") && name.ends_with("_msgs_per_sec") && *name != "py_single_msgs_per_sec"
        })
        .map(|(name, value)| (name.trim_end_matches("_msgs_per_sec").replace('_', "-"), *value))
        .collect();
    if overlapping.is_empty() {
        return Err("py_threaded_msgs_per_sec".to_owned());
    }
    overlapping.sort_by(|a, b| a.0.cmp(&b.0));
    let text = format!(
        "py-single served {} msgs/s; {}",
        short(single),
        overlapping
            .iter()
            .map(|(name, value)| format!("{name} {} (ratio {})", short(*value), ratio(*value, single)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let checks: Vec<Margin> = overlapping
        .iter()
        .map(|(name, value)| {
            Margin::at_least(
                format!(
                    "{}_msgs_per_sec vs {} × py_single_msgs_per_sec",
                    name.replace('-', "_"),
                    short(OVERLAP_MIN)
                ),
                *value,
                OVERLAP_MIN * single,
            )
        })
        .collect();
    let behind: Vec<&str> = overlapping
        .iter()
        .filter(|(_, value)| *value < OVERLAP_MIN * single)
        .map(|(name, _)| name.as_str())
        .collect();
    if !behind.is_empty() {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: {} below {}x; likely: the server's one CPU was the limit before the waits were (a loaded machine, or the interpreter's cost per message)",
                behind.join(", "),
                short(OVERLAP_MIN)
            ),
        ));
    }
    Ok(Judgement::confirmed(&checks, text))
}

const STEP_13: Step = Step {
    number: 13,
    title: "I/O-bound work overlaps in threads, coroutines and event loops",
    claim: "I/O-bound work: threads or coroutines. While one client's request waits (a database, a backend), a thread per client, coroutines and an event loop all serve the others, even on one core and under the GIL, which a waiting thread releases; the blocking server waits for each in turn.",
    source: "the course's last rule, in Python: servers/python (Limits)",
    measures: "Each message costs the server a 1 ms wait (`--work wait:1000`: time.sleep, asyncio.sleep, a timer in the loop, gevent.sleep); 100 connections in closed loop, the server on one CPU: messages per second of py-single against py-threaded, py-asyncio and (full tour) py-coroutine, py-greenlet and py-gevent.",
    reference: Some(
        "With 100 connections each waiting 1 ms per message, a server that overlaps every wait could serve up to 100,000 msgs/s; one that waits for each in turn, at most 1,000.",
    ),
    threshold: overlap_threshold,
    measure: experiments::waits_overlap,
    judge: judge_overlap,
};

// ── Step 14: compute-bound work and the GIL ─────────────────────────────────

/// The CPU each message costs the server (`--work cpu:MICROS`).
pub const CPU_MICROS: u32 = 1000;
/// py-prefork's messages per second over py-threaded's: at least this.
pub const PROCESSES_OVER_THREADS_MIN: f64 = 1.5;
/// py-threaded may use at most this share of one CPU (the GIL).
pub const GIL_CPU_PERCENT_MAX: f64 = 130.0;

fn gil_threshold() -> String {
    format!(
        "on at least 2 server CPUs, py-prefork serves at least {} times py-threaded's messages per second, and py-threaded uses at most {}% of one CPU",
        short(PROCESSES_OVER_THREADS_MIN),
        short(GIL_CPU_PERCENT_MAX)
    )
}

fn judge_gil(figures: &Figures) -> Result<Judgement, String> {
    let cpus = get(figures, "server_cpus")?;
    let threads = get(figures, "py_threaded_msgs_per_sec")?;
    let processes = get(figures, "py_prefork_msgs_per_sec")?;
    let threads_cpu = get(figures, "py_threaded_cpu_percent")?;
    let checks = [
        Margin::at_most("py_threaded_cpu_percent", threads_cpu, GIL_CPU_PERCENT_MAX),
        Margin::at_least(
            format!(
                "py_prefork_msgs_per_sec vs {} × py_threaded_msgs_per_sec",
                short(PROCESSES_OVER_THREADS_MIN)
            ),
            processes,
            PROCESSES_OVER_THREADS_MIN * threads,
        ),
    ];
    let text = format!(
        "on {} server CPUs py-prefork served {} msgs/s, py-threaded {} (ratio {}) using {}% of one CPU",
        short(cpus),
        short(processes),
        short(threads),
        ratio(processes, threads),
        short(threads_cpu)
    );
    if threads_cpu > GIL_CPU_PERCENT_MAX {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: the threads used more than {}% of one CPU; likely: the work released the GIL (a build without it, or hashing large blocks)",
                short(GIL_CPU_PERCENT_MAX)
            ),
        ));
    }
    if processes < PROCESSES_OVER_THREADS_MIN * threads {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: below {}x; likely: the server CPUs are hyperthreads of one core, or the load generator was the limit",
                short(PROCESSES_OVER_THREADS_MIN)
            ),
        ));
    }
    Ok(Judgement::confirmed(&checks, text))
}

const STEP_14: Step = Step {
    number: 14,
    title: "compute-bound work needs processes, not Python threads",
    claim: "Compute-bound work: processes. Python threads share one interpreter lock, so CPU-bound requests use one core however many threads serve them; processes, each with its own interpreter, use every core.",
    source: "the course's last rule, in Python: servers/python/threaded_server.py and prefork_server.py (Limits)",
    measures: "Each message costs the server about 1 ms of CPU (`--work cpu:1000`, SHA-256 in pure Python); 10 connections in closed loop, the server on half of the affinity mask (at least 2 CPUs): messages per second and server CPU of py-threaded against py-prefork.",
    reference: None,
    threshold: gil_threshold,
    measure: experiments::gil,
    judge: judge_gil,
};

// ── Step 15: batching datagrams ─────────────────────────────────────────────

/// `udp --batch 32`'s system calls per datagram over `udp`'s: at most this.
/// The default makes 2 per datagram (recvfrom, sendto); a batch of k makes
/// 2/k, so k ≥ 2 on average, half, is the least a batch worth the name does.
pub const BATCH_SYSCALL_RATIO_MAX: f64 = 0.5;
/// The offered rate: high enough that datagrams queue while the server
/// works, so a recvmmsg finds more than one.
pub const BATCH_RATE: f64 = 100_000.0;

fn batch_threshold() -> String {
    format!(
        "udp --batch 32 makes at most {} times the system calls per datagram of udp, with 100 flows offering {} datagrams/s",
        short(BATCH_SYSCALL_RATIO_MAX),
        short(BATCH_RATE)
    )
}

fn judge_batch(figures: &Figures) -> Result<Judgement, String> {
    let batched = get(figures, "udp_batch32_syscalls_per_msg")?;
    let single = get(figures, "udp_syscalls_per_msg")?;
    let checks = [Margin::at_most(
        format!(
            "udp_batch32_syscalls_per_msg vs {} × udp_syscalls_per_msg",
            short(BATCH_SYSCALL_RATIO_MAX)
        ),
        batched,
        BATCH_SYSCALL_RATIO_MAX * single,
    )];
    let text = format!(
        "udp --batch 32 made {} system calls per datagram, udp {} (ratio {})",
        short(batched),
        short(single),
        ratio(batched, single)
    );
    if batched > BATCH_SYSCALL_RATIO_MAX * single {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!("{text}; likely: the server kept up, so each recvmmsg found about one datagram waiting"),
        ));
    }
    Ok(Judgement::confirmed(&checks, text))
}

const STEP_15: Step = Step {
    number: 15,
    title: "batching cuts system calls per datagram",
    claim: "A UDP server has no connection to wait on, only one socket: what it can cut is the system calls per datagram. recvmmsg takes every datagram queued in one call and sendmmsg answers them in one, so `udp --batch 32` makes far fewer calls per datagram than recvfrom and sendto, one each.",
    source: "the course: servers/udp; recvmmsg(2), sendmmsg(2); Cloudflare, \"How to receive a million packets per second\"",
    measures: "100 flows of 64-byte datagrams in open loop (--protocol udp --shape open), udp against udp --batch 32: system calls per datagram, counted by the kernel's tracepoints.",
    reference: None,
    threshold: batch_threshold,
    measure: experiments::datagram_batches,
    judge: judge_batch,
};

// ── Step 16: waits overlap in the Rust models ───────────────────────────────

/// The models whose waits overlap (a thread, a coroutine or a timer per
/// waiting connection): each serves at least [`OVERLAP_MIN`] times `single`.
pub const OVERLAPPING_MODELS: [&str; 7] = [
    "threaded",
    "select",
    "epoll",
    "coroutine",
    "async",
    "uring",
    "reuseport",
];
/// `pool`'s workers (its default): with every worker asleep in a wait, it
/// serves at most this many messages per wait.
pub const POOL_WORKERS: f64 = 16.0;
/// ... times this slack (a wait is a little longer than asked, never shorter).
pub const POOL_SLACK: f64 = 1.25;

fn rust_overlap_threshold() -> String {
    format!(
        "with a {} µs wait per message and {} connections, every model that overlaps waits ({}) serves at least {} times single's messages per second, and pool at most {} workers × {} msgs/s × {}",
        WAIT_MICROS,
        WAIT_CONNECTIONS,
        OVERLAPPING_MODELS.join(", "),
        short(OVERLAP_MIN),
        short(POOL_WORKERS),
        short(1e6 / f64::from(WAIT_MICROS)),
        short(POOL_SLACK)
    )
}

fn judge_rust_overlap(figures: &Figures) -> Result<Judgement, String> {
    let single = get(figures, "single_msgs_per_sec")?;
    let pool = get(figures, "pool_msgs_per_sec")?;
    let overlapping: Vec<(&str, f64)> = OVERLAPPING_MODELS
        .iter()
        .filter_map(|name| Some((*name, get(figures, &format!("{name}_msgs_per_sec")).ok()?)))
        .collect();
    if overlapping.is_empty() {
        return Err("epoll_msgs_per_sec".to_owned());
    }
    let text = format!(
        "single served {} msgs/s, pool {}; {}",
        short(single),
        short(pool),
        overlapping
            .iter()
            .map(|(name, value)| format!("{name} {} (ratio {})", short(*value), ratio(*value, single)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let pool_bound = POOL_WORKERS * 1e6 / f64::from(WAIT_MICROS) * POOL_SLACK;
    let mut checks: Vec<Margin> = overlapping
        .iter()
        .map(|(name, value)| {
            Margin::at_least(
                format!(
                    "{name}_msgs_per_sec vs {} × single_msgs_per_sec",
                    short(OVERLAP_MIN)
                ),
                *value,
                OVERLAP_MIN * single,
            )
        })
        .collect();
    checks.push(Margin::at_most("pool_msgs_per_sec", pool, pool_bound));
    let behind: Vec<&str> = overlapping
        .iter()
        .filter(|(_, value)| *value < OVERLAP_MIN * single)
        .map(|(name, _)| *name)
        .collect();
    if !behind.is_empty() {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: {} below {}x; likely: the server's CPU or the load generator was the limit before the waits were",
                behind.join(", "),
                short(OVERLAP_MIN)
            ),
        ));
    }
    if pool > pool_bound {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: pool above {} msgs/s, more than its workers can serve asleep; likely: its workers do not wait (--work not applied)",
                short(pool_bound)
            ),
        ));
    }
    Ok(Judgement::confirmed(&checks, text))
}

const STEP_16: Step = Step {
    number: 16,
    title: "I/O-bound work overlaps in threads, coroutines and event loops (Rust)",
    claim: "I/O-bound work: threads or coroutines. While one request waits for something outside the server, a thread per client, coroutines, an event loop's timers and io_uring's timeouts all serve the others on one core; a pool serves as many at once as it has workers; the blocking server serves one wait at a time.",
    source: "the course's last rule; the models' docs (Protocols and work)",
    measures: "Each message costs the server a 1 ms wait (`--work wait:1000`: a sleeping thread, a coroutine's sleep, a timer feeding epoll_wait or select, an io_uring timeout); 100 connections in closed loop, the server on one CPU: messages per second of single, pool (16 workers) and the overlapping models.",
    reference: Some(
        "With 100 connections each waiting 1 ms per message: a model that overlaps every wait serves up to 100,000 msgs/s, pool with 16 workers about 16,000, single about 1,000.",
    ),
    threshold: rust_overlap_threshold,
    measure: experiments::rust_waits_overlap,
    judge: judge_rust_overlap,
};

// ── Step 17: compute-bound work needs cores ─────────────────────────────────

/// `threaded`'s messages per second over `epoll`'s with CPU-bound work, on
/// at least 2 server CPUs: at least this.
pub const CORES_OVER_ONE_MIN: f64 = 1.5;

fn cores_threshold() -> String {
    format!(
        "with about {} µs of CPU per message on at least 2 server CPUs, threaded (a thread per client, every CPU) serves at least {} times epoll's (one thread) messages per second",
        CPU_MICROS,
        short(CORES_OVER_ONE_MIN)
    )
}

fn judge_cores(figures: &Figures) -> Result<Judgement, String> {
    let cpus = get(figures, "server_cpus")?;
    let threaded = get(figures, "threaded_msgs_per_sec")?;
    let epoll = get(figures, "epoll_msgs_per_sec")?;
    let checks = [Margin::at_least(
        format!(
            "threaded_msgs_per_sec vs {} × epoll_msgs_per_sec",
            short(CORES_OVER_ONE_MIN)
        ),
        threaded,
        CORES_OVER_ONE_MIN * epoll,
    )];
    let text = format!(
        "on {} server CPUs threaded served {} msgs/s, epoll {} (ratio {})",
        short(cpus),
        short(threaded),
        short(epoll),
        ratio(threaded, epoll)
    );
    if threaded < CORES_OVER_ONE_MIN * epoll {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: below {}x; likely: the server CPUs are hyperthreads of one core, or the load generator was the limit",
                short(CORES_OVER_ONE_MIN)
            ),
        ));
    }
    Ok(Judgement::confirmed(&checks, text))
}

const STEP_17: Step = Step {
    number: 17,
    title: "compute-bound work needs cores",
    claim: "Compute-bound work: processes (or threads, in a language without a global lock). One event-loop thread is bound by one core however well it waits; a model that runs clients on several threads uses every core it is given.",
    source: "the course's last rule; the models' docs (Limits)",
    measures: "Each message costs the server about 1 ms of CPU (`--work cpu:1000`, hashing, calibrated at start); 10 connections in closed loop, the server on half of the affinity mask (at least 2 CPUs): messages per second of threaded against epoll.",
    reference: None,
    threshold: cores_threshold,
    measure: experiments::cores,
    judge: judge_cores,
};

// ── Step 18: keep-alive ─────────────────────────────────────────────────────

/// Requests per second on kept-alive connections over a connection per
/// request: at least this.
pub const KEEP_ALIVE_MIN: f64 = 2.0;
/// Connections (kept alive) and concurrent connect-request-close loops.
pub const KEEP_ALIVE_CONNECTIONS: u32 = 10;

fn keep_alive_threshold() -> String {
    format!(
        "epoll speaking HTTP/1.1 serves at least {} times the plaintext requests per second on {} kept-alive connections as on {} loops of a connection per request",
        short(KEEP_ALIVE_MIN),
        KEEP_ALIVE_CONNECTIONS,
        KEEP_ALIVE_CONNECTIONS
    )
}

fn judge_keep_alive(figures: &Figures) -> Result<Judgement, String> {
    let kept = get(figures, "keep_alive_requests_per_sec")?;
    let each = get(figures, "connection_per_request_requests_per_sec")?;
    let checks = [Margin::at_least(
        format!(
            "keep_alive_requests_per_sec vs {} × connection_per_request_requests_per_sec",
            short(KEEP_ALIVE_MIN)
        ),
        kept,
        KEEP_ALIVE_MIN * each,
    )];
    let text = format!(
        "kept alive {} requests/s, a connection per request {} (ratio {})",
        short(kept),
        short(each),
        ratio(kept, each)
    );
    if kept < KEEP_ALIVE_MIN * each {
        return Ok(Judgement::not_confirmed(
            &checks,
            format!(
                "{text}: below {}x; likely: the load generator, not the server, was the limit of the kept-alive cell",
                short(KEEP_ALIVE_MIN)
            ),
        ));
    }
    Ok(Judgement::confirmed(&checks, text))
}

const STEP_18: Step = Step {
    number: 18,
    title: "keep-alive: one connection, many requests",
    claim: "HTTP/1.1 keeps the connection open after a response, so that the next request skips the handshake, the accept and the teardown: persistent connections speed up transfer.",
    source: "the course's HTTP chapter; RFC 9112, section 9.3",
    measures: "epoll with --protocol http, GET /plaintext, every response checked: 10 connections in closed loop (kept alive) against 10 loops that each connect, send one request with Connection: close and read to the end (churn).",
    reference: None,
    threshold: keep_alive_threshold,
    measure: experiments::keep_alive,
    judge: judge_keep_alive,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tour::Verdict;

    #[test]
    fn batching_is_confirmed_at_half_the_calls_and_not_above() {
        let judged = |batched: f64| {
            judge_batch(&figures(&[
                ("udp_syscalls_per_msg", 2.0),
                ("udp_batch32_syscalls_per_msg", batched),
            ]))
            .unwrap()
        };
        assert_eq!(judged(0.2).verdict, Verdict::Confirmed);
        assert_eq!(judged(1.0).verdict, Verdict::Confirmed);
        assert_eq!(judged(1.5).verdict, Verdict::NotConfirmedHere);
        assert!(
            judged(1.5).reason.contains("ratio 0.750x"),
            "{}",
            judged(1.5).reason
        );
    }

    #[test]
    fn a_verdict_states_n_and_its_signed_margin_to_the_threshold() {
        let judged = |threaded: f64| {
            judge_cores(&figures(&[
                ("server_cpus", 2.0),
                ("threaded_msgs_per_sec", threaded),
                ("epoll_msgs_per_sec", 1_000.0),
            ]))
            .unwrap()
        };
        let line = |judgement: &Judgement| {
            Judgement::margin_text(
                super::super::RUNS_PER_MEASUREMENT,
                judgement.margin.as_ref().unwrap(),
            )
        };
        // Threshold: 1.5 × epoll's 1,000 = 1,500 msgs/s.
        let confirmed = judged(1_900.0);
        assert_eq!(confirmed.verdict, Verdict::Confirmed);
        let margin = confirmed.margin.as_ref().unwrap();
        assert_eq!((margin.threshold, margin.margin), (1_500.0, 400.0));
        assert_eq!(
            line(&confirmed),
            "n = 1; threaded_msgs_per_sec vs 1.50 × epoll_msgs_per_sec 1,900 against at least 1,500: 400 to spare (1.27 of the threshold)"
        );
        let short_of = judged(1_100.0);
        assert_eq!(short_of.verdict, Verdict::NotConfirmedHere);
        assert_eq!(short_of.margin.as_ref().unwrap().margin, -400.0);
        assert!(line(&short_of).starts_with("n = 1; "), "{}", line(&short_of));
        assert!(
            line(&short_of).ends_with(": 400 short (0.733 of the threshold)"),
            "{}",
            line(&short_of)
        );
        // Of two checks, the one short decides; met, the nearer one.
        let busy = |spinning: f64, sleeping: f64| {
            judge_busy(&figures(&[
                ("nonblocking_cpu_percent", spinning),
                ("epoll_cpu_percent", sleeping),
            ]))
            .unwrap()
            .margin
            .unwrap()
        };
        assert_eq!(busy(97.0, 0.5).figure, "nonblocking_cpu_percent");
        assert_eq!(busy(97.0, 9.5).figure, "epoll_cpu_percent");
        assert_eq!(busy(97.0, 30.0).margin, -20.0);
    }

    fn figures(pairs: &[(&str, f64)]) -> Figures {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), *value))
            .collect()
    }

    #[test]
    fn steps_are_numbered_in_order_and_say_what_they_judge() {
        for (index, step) in STEPS.iter().enumerate() {
            assert_eq!(step.number as usize, index + 1);
            assert!(!step.claim.is_empty() && !step.source.is_empty() && !step.measures.is_empty());
            assert!(!(step.threshold)().is_empty());
        }
    }

    #[test]
    fn contrary_numbers_are_not_confirmed_with_their_ratio() {
        // Busy polling that does not burn, and a sleeper that does.
        let judged = judge_busy(&figures(&[
            ("nonblocking_cpu_percent", 5.0),
            ("epoll_cpu_percent", 90.0),
        ]))
        .unwrap();
        assert_eq!(judged.verdict, Verdict::NotConfirmedHere, "{}", judged.reason);
        assert!(judged.reason.contains("0.056x"), "{}", judged.reason);
        assert!(judged.reason.contains("likely"), "{}", judged.reason);
        let judged = judge_busy(&figures(&[
            ("nonblocking_cpu_percent", 97.0),
            ("epoll_cpu_percent", 0.5),
        ]))
        .unwrap();
        assert_eq!(judged.verdict, Verdict::Confirmed, "{}", judged.reason);
    }

    #[test]
    fn a_waiting_client_echoed_early_contradicts_single() {
        let mut measured = figures(&[
            ("holding_clients", 1.0),
            ("holding_clients_echoed", 1.0),
            ("waiting_client_echoed_while_held", 1.0),
            ("waiting_client_waited_ms", 0.2),
        ]);
        let judged = judge_hold(&measured).unwrap();
        assert_eq!(judged.verdict, Verdict::NotConfirmedHere);
        assert!(judged.reason.contains("0.200 ms"), "{}", judged.reason);
        measured.insert("waiting_client_echoed_while_held".into(), 0.0);
        measured.insert("waiting_client_waited_ms".into(), 1000.0);
        measured.insert("waiting_client_echo_after_leave_ms".into(), 0.4);
        assert_eq!(judge_hold(&measured).unwrap().verdict, Verdict::Confirmed);
        measured.insert("waiting_client_echo_after_leave_ms".into(), 900.0);
        assert_eq!(judge_hold(&measured).unwrap().verdict, Verdict::NotConfirmedHere);
    }

    #[test]
    fn select_serving_everyone_contradicts_fd_setsize() {
        let judged = judge_fd_setsize(&figures(&[
            ("connections", 1100.0),
            ("select_served", 1100.0),
            ("epoll_served", 1100.0),
        ]))
        .unwrap();
        assert_eq!(judged.verdict, Verdict::NotConfirmedHere);
        let judged = judge_fd_setsize(&figures(&[
            ("connections", 1100.0),
            ("select_served", 1018.0),
            ("epoll_served", 1100.0),
        ]))
        .unwrap();
        assert_eq!(judged.verdict, Verdict::Confirmed, "{}", judged.reason);
    }

    #[test]
    fn flat_select_or_growing_epoll_is_not_confirmed() {
        let base = [("select_most_idle", 1000.0), ("epoll_most_idle", 2000.0)];
        let mut flat = figures(&base);
        flat.insert("select_growth".into(), 1.1);
        flat.insert("epoll_growth".into(), 1.0);
        assert_eq!(judge_scan(&flat).unwrap().verdict, Verdict::NotConfirmedHere);
        let mut growing = figures(&base);
        growing.insert("select_growth".into(), 8.0);
        growing.insert("epoll_growth".into(), 3.0);
        assert_eq!(judge_scan(&growing).unwrap().verdict, Verdict::NotConfirmedHere);
        growing.insert("epoll_growth".into(), 0.9);
        assert_eq!(judge_scan(&growing).unwrap().verdict, Verdict::Confirmed);
    }

    #[test]
    fn a_cheap_thread_per_connection_is_not_confirmed_and_a_missing_figure_is_named() {
        let mut measured = figures(&[
            ("single_cpu_us_per_connection", 60.0),
            ("epoll_cpu_us_per_connection", 50.0),
            ("threaded_cpu_us_per_connection", 70.0),
        ]);
        let judged = judge_connect(&measured).unwrap();
        assert_eq!(judged.verdict, Verdict::NotConfirmedHere);
        assert!(judged.reason.contains("+16.7%"), "{}", judged.reason);
        measured.insert("threaded_cpu_us_per_connection".into(), 280.0);
        assert_eq!(judge_connect(&measured).unwrap().verdict, Verdict::Confirmed);
        // An epoll that adds nearly as much takes the point away.
        measured.insert("epoll_cpu_us_per_connection".into(), 200.0);
        assert_eq!(
            judge_connect(&measured).unwrap().verdict,
            Verdict::NotConfirmedHere
        );
        measured.insert("epoll_cpu_us_per_connection".into(), 50.0);
        // A process model that is built and cheap spoils the claim too.
        measured.insert("process_cpu_us_per_connection".into(), 61.0);
        assert_eq!(
            judge_connect(&measured).unwrap().verdict,
            Verdict::NotConfirmedHere
        );
        assert_eq!(
            judge_connect(&figures(&[("single_cpu_us_per_connection", 1.0)])).unwrap_err(),
            "epoll_cpu_us_per_connection"
        );
    }

    #[test]
    fn scaling_held_back_by_the_load_is_not_a_confirmation() {
        let judged = judge_reactor(&figures(&[
            ("server_cpus", 2.0),
            ("reuseport_msgs_per_sec", 200_000.0),
            ("epoll_msgs_per_sec", 100_000.0),
            ("reuseport_client_bound", 1.0),
        ]))
        .unwrap();
        assert_eq!(judged.verdict, Verdict::NotConfirmedHere);
        let judged = judge_uring(&figures(&[
            ("uring_syscalls_per_msg", 1.9),
            ("epoll_syscalls_per_msg", 2.05),
        ]))
        .unwrap();
        assert_eq!(judged.verdict, Verdict::NotConfirmedHere);
        assert!(judged.reason.contains("0.927x"), "{}", judged.reason);
    }

    #[test]
    fn python_steps_judge_their_figures() {
        let mut cost = figures(&[
            ("py_epoll_cpu_us_per_msg", 9.0),
            ("epoll_cpu_us_per_msg", 7.0),
            ("py_threaded_cpu_us_per_msg", 30.0),
            ("threaded_cpu_us_per_msg", 10.0),
        ]);
        let judged = judge_language(&cost).unwrap();
        assert_eq!(judged.verdict, Verdict::NotConfirmedHere);
        assert!(judged.reason.contains("py-epoll below"), "{}", judged.reason);
        cost.insert("py_epoll_cpu_us_per_msg".into(), 21.0);
        assert_eq!(judge_language(&cost).unwrap().verdict, Verdict::Confirmed);

        let mut overlap = figures(&[
            ("py_single_msgs_per_sec", 900.0),
            ("py_threaded_msgs_per_sec", 20_000.0),
            ("py_asyncio_msgs_per_sec", 5_000.0),
        ]);
        let judged = judge_overlap(&overlap).unwrap();
        assert_eq!(judged.verdict, Verdict::NotConfirmedHere);
        assert!(judged.reason.contains("py-asyncio below"), "{}", judged.reason);
        overlap.insert("py_asyncio_msgs_per_sec".into(), 30_000.0);
        assert_eq!(judge_overlap(&overlap).unwrap().verdict, Verdict::Confirmed);
        assert_eq!(
            judge_overlap(&figures(&[("py_single_msgs_per_sec", 900.0)])).unwrap_err(),
            "py_threaded_msgs_per_sec"
        );

        let mut gil = figures(&[
            ("server_cpus", 2.0),
            ("py_threaded_msgs_per_sec", 900.0),
            ("py_prefork_msgs_per_sec", 1_700.0),
            ("py_threaded_cpu_percent", 100.0),
        ]);
        assert_eq!(judge_gil(&gil).unwrap().verdict, Verdict::Confirmed);
        gil.insert("py_threaded_cpu_percent".into(), 190.0);
        assert_eq!(judge_gil(&gil).unwrap().verdict, Verdict::NotConfirmedHere);
    }

    #[test]
    fn work_and_keep_alive_steps_judge_their_figures() {
        let mut overlap = figures(&[
            ("single_msgs_per_sec", 990.0),
            ("pool_msgs_per_sec", 15_800.0),
            ("epoll_msgs_per_sec", 80_000.0),
            ("async_msgs_per_sec", 7_000.0),
        ]);
        let judged = judge_rust_overlap(&overlap).unwrap();
        assert_eq!(judged.verdict, Verdict::NotConfirmedHere);
        assert!(judged.reason.contains("async below"), "{}", judged.reason);
        overlap.insert("async_msgs_per_sec".into(), 60_000.0);
        assert_eq!(judge_rust_overlap(&overlap).unwrap().verdict, Verdict::Confirmed);
        // A pool faster than 16 sleeping workers allow did not wait.
        overlap.insert("pool_msgs_per_sec".into(), 50_000.0);
        let judged = judge_rust_overlap(&overlap).unwrap();
        assert_eq!(judged.verdict, Verdict::NotConfirmedHere);
        assert!(judged.reason.contains("pool above 20,000"), "{}", judged.reason);
        assert_eq!(
            judge_rust_overlap(&figures(&[("single_msgs_per_sec", 990.0)])).unwrap_err(),
            "pool_msgs_per_sec"
        );

        let mut cores = figures(&[
            ("server_cpus", 2.0),
            ("threaded_msgs_per_sec", 1_900.0),
            ("epoll_msgs_per_sec", 1_000.0),
        ]);
        assert_eq!(judge_cores(&cores).unwrap().verdict, Verdict::Confirmed);
        cores.insert("threaded_msgs_per_sec".into(), 1_100.0);
        assert_eq!(judge_cores(&cores).unwrap().verdict, Verdict::NotConfirmedHere);

        let mut keep = figures(&[
            ("keep_alive_requests_per_sec", 60_000.0),
            ("connection_per_request_requests_per_sec", 9_000.0),
        ]);
        assert_eq!(judge_keep_alive(&keep).unwrap().verdict, Verdict::Confirmed);
        keep.insert("keep_alive_requests_per_sec".into(), 12_000.0);
        assert_eq!(
            judge_keep_alive(&keep).unwrap().verdict,
            Verdict::NotConfirmedHere
        );
    }
}
