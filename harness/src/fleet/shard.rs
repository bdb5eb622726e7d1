//! `harness run --shard K/N|env`: run only this machine's share of a
//! suite's cells, so that a suite with repeats spreads over a fleet of
//! identical machines and the shards' result sets merge into one.
//!
//! The assignment is a pure function of the cell and N, so every machine
//! computes it alone and the same way: a cell (label, scenario) starts on
//! shard `crc32(label, scenario) mod N` (CRC-32 as in zlib, the same on
//! every platform and release), and its repeat `r` goes `r - 1` shards
//! further on. So:
//!
//! - the repeats of one cell land on different machines (with N or more
//!   repeats, on every machine): a machine's quirk shows as spread between
//!   repeats, never as one model's number;
//! - one model's scenarios scatter over the machines, not all on one;
//! - adding a model or a scenario moves no other cell: each cell's shard
//!   depends on that cell alone (changing N, or the repeats, reassigns).
//!
//! The shards are disjoint and together hold every cell, since each cell
//! has exactly one shard. They balance as a hash does: about equal for many
//! cells, and no better than chance for a handful.

use super::Position;
use crate::results::set::ShardRecord;

/// Most machines one suite can be spread over.
pub const MAX_SHARDS: u32 = 10_000;

/// This machine's shard of a suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub position: Position,
}

impl Shard {
    /// `--shard K/N` or `--shard env` (Kubernetes Indexed Job or Slurm array).
    pub fn parse(text: &str) -> anyhow::Result<Shard> {
        Shard::parse_with(text, &super::environment)
    }

    /// [`Shard::parse`] with the environment given.
    pub fn parse_with(text: &str, var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Shard> {
        Ok(Shard {
            position: super::position("shard", text, MAX_SHARDS, var)?,
        })
    }

    /// Whether repeat `repeat` (from 1) of cell (`label`, `scenario`) is this
    /// shard's to run.
    pub fn owns(&self, label: &str, scenario: &str, repeat: u32) -> bool {
        shard_of(label, scenario, repeat, self.position.total) == self.position.index
    }

    /// What the manifest records of it.
    pub fn record(&self) -> ShardRecord {
        ShardRecord {
            index: self.position.index + 1,
            total: self.position.total,
            source: self.position.source.clone(),
            assignment: ASSIGNMENT.to_owned(),
        }
    }
}

/// The rule, as the manifest states it.
const ASSIGNMENT: &str = "repeat r of cell (label, scenario) runs on shard (crc32(label \\n scenario) + r - 1) mod N, counted from 0";

/// The shard (from 0) that runs repeat `repeat` (from 1) of cell (`label`,
/// `scenario`) when a suite is spread over `total` shards.
pub fn shard_of(label: &str, scenario: &str, repeat: u32, total: u32) -> u32 {
    let start = crc32fast::hash(format!("{label}\n{scenario}").as_bytes());
    let total = u64::from(total.max(1));
    ((u64::from(start) + u64::from(repeat.saturating_sub(1))) % total) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn cells(models: &[&str], scenarios: &[&str], repeats: u32) -> Vec<(String, String, u32)> {
        let mut cells = Vec::new();
        for model in models {
            for scenario in scenarios {
                for repeat in 1..=repeats {
                    cells.push((model.to_string(), scenario.to_string(), repeat));
                }
            }
        }
        cells
    }

    fn shard(k: u32, n: u32) -> Shard {
        Shard::parse_with(&format!("{k}/{n}"), &|_| None).unwrap()
    }

    const MODELS: [&str; 8] = [
        "single",
        "threaded",
        "pool",
        "nonblocking",
        "select",
        "epoll",
        "coroutine",
        "async",
    ];
    const SCENARIOS: [&str; 4] = [
        "closed-c1-s64",
        "closed-c10-s64",
        "closed-c100-s64",
        "closed-c1000-s64",
    ];

    #[test]
    fn shards_are_disjoint_and_cover_every_cell() {
        let all = cells(&MODELS, &SCENARIOS, 3);
        for n in 1..=7 {
            let mut owners: BTreeMap<&(String, String, u32), u32> = BTreeMap::new();
            for k in 1..=n {
                let shard = shard(k, n);
                for cell in all.iter().filter(|c| shard.owns(&c.0, &c.1, c.2)) {
                    assert!(
                        owners.insert(cell, k).is_none(),
                        "{cell:?} is on two shards of {n}"
                    );
                }
            }
            assert_eq!(owners.len(), all.len(), "{n} shards miss a cell");
        }
    }

    #[test]
    fn repeats_of_a_cell_go_to_different_shards() {
        for n in 2..=5 {
            for model in MODELS {
                for scenario in SCENARIOS {
                    let shards: BTreeSet<u32> = (1..=n).map(|r| shard_of(model, scenario, r, n)).collect();
                    assert_eq!(shards.len() as u32, n, "{model}/{scenario} over {n} shards");
                }
            }
        }
    }

    #[test]
    fn adding_a_model_moves_no_other_cell() {
        let before = cells(&MODELS, &SCENARIOS, 2);
        let mut more = MODELS.to_vec();
        more.insert(3, "uring");
        let after = cells(&more, &SCENARIOS, 2);
        for n in 2..=4 {
            for cell in &before {
                assert!(after.contains(cell));
                let on = |k: u32| shard(k, n).owns(&cell.0, &cell.1, cell.2);
                let owner = (1..=n).find(|&k| on(k)).unwrap();
                assert_eq!(owner - 1, shard_of(&cell.0, &cell.1, cell.2, n), "{cell:?}");
            }
        }
        // A fixed function of the cell: CRC-32 (zlib's) of "epoll\nclosed-c100-s64"
        // is 0xfdc2adae, 4257394094 = 2 mod 4, so its first repeat is on shard 3 of 4.
        assert_eq!(shard_of("epoll", "closed-c100-s64", 1, 4), 2);
        assert!(shard(3, 4).owns("epoll", "closed-c100-s64", 1));
    }

    #[test]
    fn the_quick_suite_reaches_every_shard() {
        let spread: BTreeSet<u32> = MODELS
            .iter()
            .flat_map(|m| SCENARIOS.iter().map(move |s| shard_of(m, s, 1, 4)))
            .collect();
        assert_eq!(spread.len(), 4, "32 cells over 4 shards leave one empty");
    }
}
