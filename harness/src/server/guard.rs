//! No server outlives the harness. Every server the harness starts is
//! registered while it runs; SIGINT, SIGTERM or SIGHUP to the harness (Ctrl-C
//! in a terminal, a job engine stopping a pod) kills every registered server's
//! process group, a stopped one included, and then the harness exits with
//! 128 + the signal's number. (SIGKILL cannot be caught: there the servers'
//! parent-death signal kills them, see [`super::process`].)

use nix::sys::signal::{SigSet, Signal, killpg};
use nix::unistd::Pid;
use std::sync::Mutex;

static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Blocks the stop signals in the calling thread (and the threads it starts
/// later) and starts the thread that handles them. Call it first in `main`.
/// A server's signal mask is reset when it is spawned.
pub fn install() -> std::io::Result<()> {
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    signals.thread_block()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let signal = signals.wait().unwrap_or(Signal::SIGTERM);
            let killed = kill_all();
            if killed > 0 {
                eprintln!(
                    "harness: {} received; stopped {killed} server{} it had started",
                    signal.as_str(),
                    if killed == 1 { "" } else { "s" }
                );
            }
            std::process::exit(128 + signal as i32);
        })?;
    Ok(())
}

pub fn register(pid: u32) {
    lock().push(pid);
}

pub fn unregister(pid: u32) {
    lock().retain(|&running| running != pid);
}

/// Kills every registered server's process group; returns how many.
fn kill_all() -> usize {
    let running = lock();
    for &pid in running.iter() {
        let group = Pid::from_raw(pid as i32);
        let _ = killpg(group, Signal::SIGCONT);
        let _ = killpg(group, Signal::SIGKILL);
    }
    running.len()
}

fn lock() -> std::sync::MutexGuard<'static, Vec<u32>> {
    RUNNING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
