//! `server-pause`: the whole server (its process group) is stopped with
//! SIGSTOP for [`PAUSE`], then continued with SIGCONT.
//!
//! The kernel keeps completing handshakes and queueing bytes for a stopped
//! process, so clients see nothing but silence; what shows is the catch-up
//! after SIGCONT: how long the backlog takes to drain and what every client
//! waited. The server is continued whatever happens: when the fault ends, on
//! any error or panic ([`Paused`] continues it when dropped), and if the
//! harness is interrupted (its signal handling continues and kills every
//! server it started, see `server::guard`); a harness killed outright takes
//! its servers with it (their parent-death signal, which a stopped process
//! receives too).

use super::{Injected, Injection};
use anyhow::Context;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// How long the server is stopped: the fault's length.
pub const PAUSE: Duration = Duration::from_secs(1);

pub fn inject(injection: &Injection) -> anyhow::Result<Injected> {
    let group = Pid::from_raw(injection.server_pid as i32);
    let paused = Paused::stop(group)?;
    let stopped_at = Instant::now();
    injection.engage();
    injection.wait_for_end();
    drop(paused);
    Ok(Injected {
        connections: 0,
        bytes: 0,
        lost: 0,
        note: format!(
            "the server's process group was stopped (SIGSTOP) for {:.2} s, then continued (SIGCONT)",
            stopped_at.elapsed().as_secs_f64()
        ),
    })
}

/// A stopped process group, continued when this is dropped.
pub struct Paused {
    group: Pid,
}

impl Paused {
    pub fn stop(group: Pid) -> anyhow::Result<Paused> {
        killpg(group, Signal::SIGSTOP)
            .with_context(|| format!("cannot stop the server's process group {group}"))?;
        Ok(Paused { group })
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = killpg(self.group, Signal::SIGCONT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    fn state(pid: u32) -> char {
        crate::server::tree::read_stat(pid as i32).unwrap().state
    }

    #[test]
    fn the_process_group_is_stopped_for_the_fault_and_continued_after_it() {
        let mut child = Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let pid = child.id();
        let addr = "127.0.0.1:9".parse().unwrap();
        let injection = Injection::new(addr, pid, Instant::now() + Duration::from_millis(400));
        let watcher = {
            let injection = injection.clone();
            std::thread::spawn(move || {
                while !injection.is_engaged() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                std::thread::sleep(Duration::from_millis(100));
                state(pid)
            })
        };
        let injected = inject(&injection).unwrap();
        assert_eq!(watcher.join().unwrap(), 'T');
        assert!(injected.note.contains("0.4"), "{}", injected.note);
        std::thread::sleep(Duration::from_millis(50));
        assert_ne!(state(pid), 'T');
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn a_pause_given_up_early_still_continues_the_server() {
        let mut child = Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let pid = child.id();
        let paused = Paused::stop(Pid::from_raw(pid as i32)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(state(pid), 'T');
        drop(paused);
        std::thread::sleep(Duration::from_millis(50));
        assert_ne!(state(pid), 'T');
        let _ = child.kill();
        let _ = child.wait();
    }
}
