//! Which CPUs the server and the load generator run on.
//!
//! The harness measures a server by keeping it and its load on different
//! CPUs. By default the affinity mask the harness was started with is split
//! in two disjoint halves (the server gets the extra CPU); `--server-cpus` and
//! `--client-cpus` (cpulist syntax, `0-3,8`) choose the halves by hand. Given
//! one, the other is the rest of the mask. Lists given by hand must lie in the
//! mask and must not overlap. The default split of a one-CPU mask cannot keep
//! them apart: both run on that CPU, and the cell says so (`shared-cpu`).
//!
//! For `--target` the server runs elsewhere: unless `--server-cpus` declares
//! where (for the overlap check), the load threads are not pinned one by one
//! and may use the whole mask.

use anyhow::{Context, bail, ensure};
use std::fmt::Write as _;

/// Where a cell's server and load run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuLayout {
    /// The server's CPUs (spawned servers are pinned to them); for a target,
    /// the CPUs the user declared, or empty when unknown.
    pub server: Vec<usize>,
    /// The load generator's CPUs: load thread `i` runs on `client[i % len]`,
    /// and the harness's own threads stay on them too.
    pub client: Vec<usize>,
    /// Pin each load thread to one client CPU (false only for an undeclared
    /// target, where the load threads may use the whole mask).
    pub pin_load_threads: bool,
}

impl CpuLayout {
    /// The layout for a cell, from the options (`None` when not given), the
    /// affinity mask the harness runs under, and whether the harness starts
    /// the server (false for `--target`).
    pub fn choose(
        server_cpus: Option<&str>,
        client_cpus: Option<&str>,
        mask: &[usize],
        spawns_server: bool,
    ) -> anyhow::Result<CpuLayout> {
        ensure!(!mask.is_empty(), "the harness may run on no CPU at all");
        let server = parse_in_mask("--server-cpus", server_cpus, mask)?;
        let client = parse_in_mask("--client-cpus", client_cpus, mask)?;
        let rest =
            |of: &[usize]| -> Vec<usize> { mask.iter().copied().filter(|cpu| !of.contains(cpu)).collect() };
        let layout = match (server, client) {
            (Some(server), Some(client)) => {
                let shared: Vec<usize> = server
                    .iter()
                    .copied()
                    .filter(|cpu| client.contains(cpu))
                    .collect();
                if !shared.is_empty() {
                    bail!(
                        "--server-cpus {} and --client-cpus {} overlap on CPU {}: the server and the load must not share a CPU",
                        format_cpulist(&server),
                        format_cpulist(&client),
                        format_cpulist(&shared)
                    );
                }
                CpuLayout {
                    server,
                    client,
                    pin_load_threads: true,
                }
            }
            (Some(server), None) => {
                let client = rest(&server);
                if client.is_empty() {
                    bail!(
                        "--server-cpus {} leaves no CPU of the affinity mask ({}) for the load; give --client-cpus too or fewer server CPUs",
                        format_cpulist(&server),
                        format_cpulist(mask)
                    );
                }
                CpuLayout {
                    server,
                    client,
                    pin_load_threads: true,
                }
            }
            (None, Some(client)) => {
                let server = if spawns_server { rest(&client) } else { Vec::new() };
                if spawns_server && server.is_empty() {
                    bail!(
                        "--client-cpus {} leaves no CPU of the affinity mask ({}) for the server; give --server-cpus too or fewer client CPUs",
                        format_cpulist(&client),
                        format_cpulist(mask)
                    );
                }
                CpuLayout {
                    server,
                    client,
                    pin_load_threads: true,
                }
            }
            (None, None) if spawns_server => {
                let (server, client) = default_split(mask);
                CpuLayout {
                    server,
                    client,
                    pin_load_threads: true,
                }
            }
            (None, None) => CpuLayout {
                server: Vec::new(),
                client: mask.to_vec(),
                pin_load_threads: false,
            },
        };
        Ok(layout)
    }

    /// The layout for the harness's current affinity mask.
    pub fn for_this_process(
        server_cpus: Option<&str>,
        client_cpus: Option<&str>,
        spawns_server: bool,
    ) -> anyhow::Result<CpuLayout> {
        let mask = echo_core::affinity::allowed_cpus().context("cannot read the harness's CPU affinity")?;
        CpuLayout::choose(server_cpus, client_cpus, &mask, spawns_server)
    }

    /// CPUs both the server and the load run on.
    pub fn shared(&self) -> Vec<usize> {
        self.server
            .iter()
            .copied()
            .filter(|cpu| self.client.contains(cpu))
            .collect()
    }

    /// The CPUs load threads are pinned to, one each in turn (empty: not pinned).
    pub fn load_thread_cpus(&self) -> Vec<usize> {
        if self.pin_load_threads {
            self.client.clone()
        } else {
            Vec::new()
        }
    }

    /// The one warning line printed when the server and the load share CPUs.
    pub fn shared_warning(&self) -> Option<String> {
        let shared = self.shared();
        (!shared.is_empty()).then(|| {
            format!(
                "harness: warning: the server and the load share CPU {} (the affinity mask has {} CPU{}); cells are flagged shared-cpu and their numbers mix both sides",
                format_cpulist(&shared),
                self.server.len().max(self.client.len()),
                if self.server.len().max(self.client.len()) == 1 { "" } else { "s" }
            )
        })
    }
}

/// The affinity mask split in two disjoint halves, the server getting the
/// extra CPU; a one-CPU mask gives both that CPU.
pub fn default_split(mask: &[usize]) -> (Vec<usize>, Vec<usize>) {
    if mask.len() <= 1 {
        return (mask.to_vec(), mask.to_vec());
    }
    let server_count = mask.len() - mask.len() / 2;
    (mask[..server_count].to_vec(), mask[server_count..].to_vec())
}

fn parse_in_mask(option: &str, text: Option<&str>, mask: &[usize]) -> anyhow::Result<Option<Vec<usize>>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let cpus = parse_cpulist(text).with_context(|| format!("{option} '{text}'"))?;
    let outside: Vec<usize> = cpus.iter().copied().filter(|cpu| !mask.contains(cpu)).collect();
    if !outside.is_empty() {
        bail!(
            "{option} {text}: CPU {} is not in the harness's affinity mask ({})",
            format_cpulist(&outside),
            format_cpulist(mask)
        );
    }
    Ok(Some(cpus))
}

/// Every CPU the kernel has online (`/sys/devices/system/cpu/online`),
/// whatever the calling thread's affinity; empty if it cannot be read.
pub fn online() -> Vec<usize> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|text| parse_cpulist(text.trim()).ok())
        .unwrap_or_default()
}

/// Parses a cpulist (`0-3,8`, as in `/sys/devices/system/cpu/online` and
/// `taskset -c`) into sorted, distinct CPU numbers.
pub fn parse_cpulist(text: &str) -> anyhow::Result<Vec<usize>> {
    /// More CPUs than any affinity mask can hold (`CPU_SETSIZE`).
    const LIMIT: usize = 1024;
    let number = |part: &str| -> anyhow::Result<usize> {
        let cpu: usize = part
            .trim()
            .parse()
            .with_context(|| format!("'{part}' is not a CPU number (expected a list like 0-3,8)"))?;
        ensure!(cpu < LIMIT, "CPU {cpu} is beyond {LIMIT}");
        Ok(cpu)
    };
    ensure!(
        !text.trim().is_empty(),
        "the CPU list is empty (expected a list like 0-3,8)"
    );
    let mut cpus = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (number(first)?, number(last)?);
                ensure!(first <= last, "the range '{part}' runs backwards");
                cpus.extend(first..=last);
            }
            None => cpus.push(number(part)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Formats CPUs as a cpulist: `[0, 1, 2, 3, 8]` → `0-3,8`.
pub fn format_cpulist(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut text = String::new();
    let mut index = 0;
    while index < sorted.len() {
        let first = sorted[index];
        let mut last = first;
        while index + 1 < sorted.len() && sorted[index + 1] == last + 1 {
            index += 1;
            last = sorted[index];
        }
        if !text.is_empty() {
            text.push(',');
        }
        if first == last {
            let _ = write!(text, "{first}");
        } else {
            let _ = write!(text, "{first}-{last}");
        }
        index += 1;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpulists_parse_and_format_round_trip() {
        assert_eq!(parse_cpulist("0-3,8").unwrap(), vec![0, 1, 2, 3, 8]);
        assert_eq!(parse_cpulist("5, 1,1").unwrap(), vec![1, 5]);
        assert_eq!(format_cpulist(&[0, 1, 2, 3, 8]), "0-3,8");
        assert_eq!(format_cpulist(&[4]), "4");
        for bad in ["", " ", "a", "3-1", "1,,2", "-1", "0-", "4096"] {
            assert!(parse_cpulist(bad).is_err(), "'{bad}' should not parse");
        }
    }

    #[test]
    fn the_default_split_keeps_server_and_load_apart() {
        let layout = CpuLayout::choose(None, None, &[0, 1], true).unwrap();
        assert_eq!(
            (layout.server.as_slice(), layout.client.as_slice()),
            (&[0][..], &[1][..])
        );
        assert!(layout.shared().is_empty() && layout.shared_warning().is_none());
        let sixteen: Vec<usize> = (0..16).collect();
        let layout = CpuLayout::choose(Some("0-3"), Some("4-15"), &sixteen, true).unwrap();
        assert_eq!(layout.server.len() + layout.client.len(), 16);
        let rest = CpuLayout::choose(Some("0-3"), None, &sixteen, true).unwrap();
        assert_eq!(rest.client, (4..16).collect::<Vec<_>>());
    }

    #[test]
    fn one_cpu_is_shared_and_says_so() {
        let layout = CpuLayout::choose(None, None, &[1], true).unwrap();
        assert_eq!(layout.shared(), vec![1]);
        let warning = layout.shared_warning().unwrap();
        assert!(
            warning.contains("share CPU 1") && warning.contains("shared-cpu"),
            "{warning}"
        );
    }

    #[test]
    fn bad_layouts_are_one_line_errors() {
        let mask = [0, 1, 2, 3];
        for (server, client, expected) in [
            (Some("0-2"), Some("2-3"), "overlap on CPU 2"),
            (
                Some("0-7"),
                None,
                "CPU 4-7 is not in the harness's affinity mask (0-3)",
            ),
            (Some(""), None, "empty"),
            (Some("0-3"), None, "leaves no CPU"),
            (None, Some("0-3"), "leaves no CPU"),
        ] {
            let error = format!(
                "{:#}",
                CpuLayout::choose(server, client, &mask, true).unwrap_err()
            );
            assert!(error.contains(expected), "{server:?}/{client:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn an_undeclared_target_leaves_the_load_threads_free() {
        let layout = CpuLayout::choose(None, None, &[0, 1], false).unwrap();
        assert!(layout.server.is_empty() && layout.load_thread_cpus().is_empty());
        let declared = CpuLayout::choose(Some("0"), None, &[0, 1], false).unwrap();
        assert_eq!(declared.load_thread_cpus(), vec![1]);
    }
}
