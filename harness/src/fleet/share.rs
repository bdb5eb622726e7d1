//! `harness bench --target HOST:PORT --share K/N --start-at TIME`: one load
//! host's share of a cell that N load hosts drive against one server.
//!
//! - **Which share.** Host K opens the K-th of N contiguous slices of the
//!   cell's connections (and idle connections), numbered over the whole
//!   cell, so every connection's payload stream is distinct across hosts and
//!   each echoed byte is still checked exactly. In open loop each host
//!   offers 1/N of the rate on a schedule shifted by K-1 periods of the
//!   whole rate: the N constant-rate schedules interleave into one
//!   ([`crate::load::ThreadShare::of`]).
//! - **When.** `--start-at` is a wall-clock instant (RFC 3339, UTC) that
//!   the hosts agree on beforehand, e.g. written into a Kubernetes manifest.
//!   It is read once, at start-up, against this host's wall clock and
//!   mapped onto its monotonic clock; from then on only the monotonic clock
//!   counts, so a wall clock stepped during the wait moves nothing. A host
//!   opens its connections, waits for the instant, then warms up and
//!   measures like any cell, so every host's one-second intervals cover the
//!   same seconds, as well as the hosts' clocks agree. The host records what
//!   its kernel says of that ([`crate::measure::clock`]). It refuses an
//!   instant already past; one that passes while it connects starts the
//!   load at once, and the cell is flagged `late-start`.
//! - **What it writes.** An ordinary result set (`--out DIR`: manifest.json,
//!   summary.csv, cells/), whose cell says which share it was
//!   ([`LoadShare`](crate::results::cell::LoadShare)). `harness merge`
//!   adds the N hosts' sets into one cell.

use crate::cell::HostPart;
use crate::cpus::CpuLayout;
use crate::load::{HostShare, LoadSpec, MAX_HOSTS};
use crate::results::cell::CellRecord;
use crate::results::{files, set};
use anyhow::bail;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// Furthest ahead a start instant may be: further is more likely a typo
/// than a plan.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// This process's part, from `--share`, `--start-at` and `--source-addr`.
pub fn host_part(
    share: Option<&str>,
    start_at: Option<&str>,
    source: Option<IpAddr>,
) -> anyhow::Result<HostPart> {
    let share = match share {
        Some(text) => {
            let position = super::position("share", text, MAX_HOSTS, &super::environment)?;
            if text == "env" {
                eprintln!(
                    "echolab: load host share {} from {}",
                    position.fraction(),
                    position.source
                );
            }
            HostShare {
                index: position.index,
                hosts: position.total,
            }
        }
        None => HostShare::WHOLE,
    };
    let start_at = match start_at {
        Some(text) => {
            let wall = parse_start_at(text)?;
            Some((
                instant_of(text, wall, SystemTime::now(), Instant::now())?,
                text.to_owned(),
            ))
        }
        None => None,
    };
    Ok(HostPart {
        share,
        start_at,
        source,
    })
}

/// `--start-at TIME`: RFC 3339 in UTC (`Z` or `+00:00`), seconds or finer.
pub fn parse_start_at(text: &str) -> anyhow::Result<SystemTime> {
    humantime::parse_rfc3339(text.trim()).map_err(|error| {
        anyhow::anyhow!(
            "--start-at '{text}' is not an RFC 3339 time in UTC ({error}); expected e.g. 2026-01-01T12:00:00Z (date -u +%Y-%m-%dT%H:%M:%SZ prints one)"
        )
    })
}

/// Maps the wall-clock instant `wall` onto the monotonic clock, given one
/// reading of each taken together (`now_wall`, `now`). Refuses an instant
/// already past or more than [`MAX_WAIT`] ahead.
pub fn instant_of(
    text: &str,
    wall: SystemTime,
    now_wall: SystemTime,
    now: Instant,
) -> anyhow::Result<Instant> {
    match wall.duration_since(now_wall) {
        Err(past) => bail!(
            "--start-at {text} has already passed (this host's clock says it was {:.3} s ago, at {}); agree on a later instant",
            past.duration().as_secs_f64(),
            humantime::format_rfc3339_millis(now_wall)
        ),
        Ok(wait) if wait > MAX_WAIT => bail!(
            "--start-at {text} is {:.0} hours away (this host's clock says {}); at most 24 hours ahead",
            wait.as_secs_f64() / 3600.0,
            humantime::format_rfc3339_seconds(now_wall)
        ),
        Ok(wait) => Ok(now + wait),
    }
}

/// Checks that a share of `load` makes sense for `part`, with a sentence.
pub fn check(load: &LoadSpec, part: &HostPart) -> anyhow::Result<()> {
    let hosts = part.share.hosts;
    if load.connections < hosts {
        bail!(
            "--connections {} cannot be shared by {hosts} load hosts: each needs at least one (the count is the whole cell's, over all hosts)",
            load.connections
        );
    }
    Ok(())
}

/// Refuses to start when `out` already holds a result set with cells.
pub fn check_out(out: &Path) -> anyhow::Result<()> {
    let cells = out.join("cells");
    files::ensure_no_cells(
        &cells,
        "; each load host writes its share into a new --out directory",
        files::Unreadable::Empty,
    )?;
    files::check_writable(&cells)
}

/// Writes the host's cell as a result set in `out`.
pub fn write_set(
    out: &Path,
    record: &CellRecord,
    cpus: &CpuLayout,
    started: SystemTime,
) -> anyhow::Result<()> {
    files::write_cell(&out.join("cells"), record, 1)?;
    set::write_summary(out, std::slice::from_ref(&record.cell))?;
    let suite = serde_json::json!({
        "name": "multi-host",
        "description": "one cell driven by several load hosts at once (bench --share), merged with harness merge",
    });
    let manifest = set::Manifest::new(started, suite, cpus, 1, vec![record.cell.label.clone()]);
    set::write_manifest(out, &manifest)
}

/// The line printed before waiting for the start instant.
pub fn waiting_line(part: &HostPart) -> Option<String> {
    let (at, text) = part.start_at.as_ref()?;
    let share = if part.share.hosts > 1 {
        format!("load host {} of {}: ", part.share.index + 1, part.share.hosts)
    } else {
        String::new()
    };
    Some(format!(
        "echolab: {share}connecting, then starting at {text} (in {:.1} s by this host's clock)",
        at.saturating_duration_since(Instant::now()).as_secs_f64()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_instant_maps_once_onto_the_monotonic_clock() {
        let wall = parse_start_at("2026-01-01T12:00:00.250Z").unwrap();
        let now_wall = parse_start_at("2026-01-01T11:59:58Z").unwrap();
        let now = Instant::now();
        let at = instant_of("x", wall, now_wall, now).unwrap();
        assert_eq!(at - now, Duration::from_millis(2250));
        let past = format!(
            "{:#}",
            instant_of("2026-01-01T12:00:00Z", now_wall, wall, now).unwrap_err()
        );
        assert!(past.contains("already passed"), "{past}");
        let far = parse_start_at("2026-01-03T12:00:00Z").unwrap();
        assert!(format!("{:#}", instant_of("x", far, now_wall, now).unwrap_err()).contains("hours away"));
    }

    #[test]
    fn a_bad_time_is_one_line() {
        for bad in ["2026-01-01 12:00", "tomorrow", "2026-01-01T12:00:00+02:00", ""] {
            let error = format!("{:#}", parse_start_at(bad).unwrap_err());
            assert!(error.contains("RFC 3339") && !error.contains('\n'), "{error}");
        }
        assert!(parse_start_at("2026-01-01T12:00:00+00:00").is_ok());
    }
}
