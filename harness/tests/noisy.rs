//! A cell records what else used its CPUs (`machine.busy_percent`,
//! `machine.steal_percent`) and is flagged `noisy` above the thresholds in
//! harness/src/cell/flags.rs. Here busy loops of the test's own compete with
//! a cell on loopback, for a bounded time: the cell must see them. (Nothing
//! here asserts a cell is *not* noisy: the machine running the tests may be
//! busy with anything.) Every run is under the watchdog of `support`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use support::{Served, bench_json, flags};

/// No busy loop runs longer than this, whatever happens to the test.
const BUSY_LOOP_LIMIT: Duration = Duration::from_secs(30);

/// One spinning thread per CPU of this process's affinity mask, stopped on
/// drop or after [`BUSY_LOOP_LIMIT`].
struct BusyLoops {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl BusyLoops {
    fn start() -> BusyLoops {
        let stop = Arc::new(AtomicBool::new(false));
        let cpus = thread::available_parallelism().map_or(2, |count| count.get());
        let threads = (0..cpus)
            .map(|_| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let until = Instant::now() + BUSY_LOOP_LIMIT;
                    let mut spins = 0u64;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        spins = std::hint::black_box(spins.wrapping_add(1));
                    }
                })
            })
            .collect();
        BusyLoops { stop, threads }
    }
}

impl Drop for BusyLoops {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

const SHORT: [&str; 6] = ["--connections", "10", "--warmup", "0.3", "--duration", "1.5"];

#[test]
fn a_cell_beside_busy_loops_is_flagged_noisy() {
    let busy = BusyLoops::start();
    let mut args = vec!["--model", "epoll"];
    args.extend_from_slice(&SHORT);
    let cell = bench_json(&args);
    drop(busy);
    let machine = &cell["machine"];
    let busy_percent = machine["busy_percent"].as_f64().expect("machine.busy_percent");
    assert!(machine["steal_percent"].as_f64().is_some(), "{cell}");
    // Each loop wants a whole CPU: it gets a good share of one at least.
    assert!(busy_percent > 30.0, "busy loops unseen: {cell}");
    assert!(flags(&cell).contains(&"noisy".to_owned()), "{cell}");
    // The server's CPUs and the load's were watched.
    let watched: Vec<u64> = machine["cpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cpu| cpu.as_u64().unwrap())
        .collect();
    for cpu in cell["server_cpus"]
        .as_array()
        .unwrap()
        .iter()
        .chain(cell["client"]["cpus"].as_array().unwrap())
    {
        assert!(watched.contains(&cpu.as_u64().unwrap()), "{cell}");
    }
}

#[test]
fn a_target_on_unknown_cpus_records_no_machine_figures() {
    let served = Served::start("epoll");
    let mut args = vec!["--target", served.addr.as_str()];
    args.extend_from_slice(&SHORT);
    let cell = bench_json(&args);
    assert!(cell["machine"].is_null(), "{cell}");
    assert!(!flags(&cell).contains(&"noisy".to_owned()), "{cell}");
}
