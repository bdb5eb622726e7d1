//! `idle-herd`: [`CONNECTIONS`] connections that connect and stay silent.
//!
//! They are opened 256 at a time, a connect not done within 100 ms being
//! issued again (a full accept queue drops SYNs, which the kernel would
//! retry only a second later), then held without a byte until the fault
//! ends, then closed. Each costs the server a descriptor, and whatever
//! the model spends per connection: a thread, a worker, a coroutine, a task,
//! a place in every `select` or busy-poll pass. The harness needs as many
//! descriptors as the herd: where its own limit is lower, the herd is
//! smaller and the row says so.

use super::clients;
use super::{Injected, Injection, plural};

/// The herd.
pub const CONNECTIONS: usize = 10_000;
/// Descriptors the harness keeps for everything else (the background load,
/// /proc, pipes).
const RESERVED_FDS: u64 = 512;

pub fn inject(injection: &Injection) -> anyhow::Result<Injected> {
    inject_with(injection, CONNECTIONS)
}

pub fn inject_with(injection: &Injection, wanted: usize) -> anyhow::Result<Injected> {
    let room = room();
    let count = wanted.min(room);
    let clients::Opened {
        mut streams,
        reissued,
    } = clients::connect_persistently(injection, count)?;
    injection.engage();
    injection.wait_for_end();
    let closed = streams
        .iter_mut()
        .filter(|stream| clients::closed_by_server(stream))
        .count() as u64;
    let connections = streams.len() as u64;
    drop(streams);
    let mut note = format!("{} opened and kept silent", plural(connections, "connection"));
    if count < wanted {
        note += &format!(
            " (of {}: the harness's descriptor limit left room for {count})",
            plural(wanted as u64, "connection")
        );
    }
    let missing = count as u64 - connections.min(count as u64);
    if missing > 0 {
        note += &format!("; {missing} were not connected by the fault's end");
    }
    note += &clients::reissued_note(reissued);
    note += &format!("; the server closed {closed}");
    Ok(Injected {
        connections,
        bytes: 0,
        lost: 0,
        note,
    })
}

/// Descriptors this process may open for a fault's clients: those still
/// free, less [`RESERVED_FDS`] for the background load and the harness.
pub fn room() -> usize {
    descriptors_free().saturating_sub(RESERVED_FDS) as usize
}

/// Descriptors this process may still open.
pub fn descriptors_free() -> u64 {
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |entries| entries.count() as u64);
    limit.saturating_sub(open)
}

#[cfg(test)]
mod tests {
    use super::super::test_server::{Behaviour, TestServer};
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn the_herd_connects_says_nothing_and_leaves_at_the_end() {
        let server = TestServer::start(Behaviour::Echo);
        let until = Instant::now() + Duration::from_millis(500);
        let injection = Injection::new(server.addr, 0, until);
        let injected = inject_with(&injection, 300).unwrap();
        assert!(Instant::now() >= until);
        assert_eq!(injected.connections, 300, "{}", injected.note);
        assert_eq!(server.count(|counts| &counts.accepted), 300);
        assert_eq!(server.count(|counts| &counts.bytes), 0);
        assert_eq!(
            server.wait_for(|counts| &counts.eofs, 300, Duration::from_secs(5)),
            300
        );
    }
}
