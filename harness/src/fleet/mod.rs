//! Beyond one machine, with the job engines fleets already run (Kubernetes
//! Indexed Jobs, Slurm job arrays, a CI matrix) and nothing of our own: no
//! coordinator, no daemon, no protocol. The engines start the processes;
//! the harness only agrees on a start instant and merges files.
//!
//! - [`shard`]: `run --shard K/N|env`, a suite's cells spread over machines.
//! - [`share`]: `bench --share K/N --start-at TIME`, one cell driven by
//!   several load hosts at once, each writing an ordinary result set.
//! - [`merge`]: `harness merge`, shards into one result set, or the load
//!   hosts' shares of a cell into one cell whose histogram is their exact sum.
//!
//! Both `--shard` and `--share` take `K/N` (1-based, as `cargo nextest
//! --partition` counts) or `env`, read here once by [`position`].

pub mod merge;
pub mod shard;
pub mod share;

use anyhow::{Context, bail};

/// A process's place among N: `index` from 0, and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub index: u32,
    pub total: u32,
    /// `--shard 2/4`, or the job engine and the variables it was read from.
    pub source: String,
}

impl Position {
    /// `K/N`, from 1.
    pub fn fraction(&self) -> String {
        format!("{}/{}", self.index + 1, self.total)
    }
}

/// The Kubernetes Indexed Job convention: the pod's index, from 0. Kubernetes
/// does not tell a pod the Job's completions, so the total comes from
/// [`KUBERNETES_TOTAL`], set in the pod template to the same number.
pub const KUBERNETES_INDEX: &str = "JOB_COMPLETION_INDEX";
pub const KUBERNETES_TOTAL: &str = "HARNESS_SHARD_TOTAL";
/// The Slurm job array convention: the task's id, normalised with the
/// array's smallest id, step and task count.
pub const SLURM_ID: &str = "SLURM_ARRAY_TASK_ID";
pub const SLURM_MIN: &str = "SLURM_ARRAY_TASK_MIN";
pub const SLURM_STEP: &str = "SLURM_ARRAY_TASK_STEP";
pub const SLURM_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";

/// Reads `--OPTION K/N|env` (`option` without dashes): `K/N` with
/// `1 <= K <= N <= max`, or `env` from the job engine's variables, looked up
/// with `var`. Every error is one line naming the option and what to do.
pub fn position(
    option: &str,
    text: &str,
    max: u32,
    var: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Position> {
    let position = if text == "env" {
        from_engine(option, var)?
    } else {
        let (k, n) = text
            .split_once('/')
            .and_then(|(k, n)| Some((k.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?)))
            .with_context(|| {
                format!("--{option} '{text}': expected K/N (e.g. 2/4, counting from 1) or env")
            })?;
        if n == 0 || k == 0 || k > n {
            bail!("--{option} {text}: K must be between 1 and N (got K = {k}, N = {n})");
        }
        Position {
            index: k - 1,
            total: n,
            source: format!("--{option} {text}"),
        }
    };
    if position.total > max {
        bail!(
            "--{option} {}: at most {max} parts (got {})",
            position.fraction(),
            position.total
        );
    }
    Ok(position)
}

/// `env`: exactly one job engine's convention must be set.
fn from_engine(option: &str, var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Position> {
    let number = |name: &str| -> anyhow::Result<Option<i64>> {
        match var(name) {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse::<i64>()
                .map(Some)
                .with_context(|| format!("--{option} env: {name}='{text}' is not a whole number")),
        }
    };
    let kubernetes = number(KUBERNETES_INDEX)?;
    let slurm = number(SLURM_ID)?;
    match (kubernetes, slurm) {
        (Some(_), Some(_)) => bail!(
            "--{option} env: both {KUBERNETES_INDEX} (a Kubernetes Indexed Job) and {SLURM_ID} (a Slurm array) are set; unset one, or give --{option} K/N"
        ),
        (None, None) => bail!(
            "--{option} env: neither {KUBERNETES_INDEX} (a Kubernetes Indexed Job, with {KUBERNETES_TOTAL}) nor {SLURM_ID} (a Slurm array) is set; give --{option} K/N"
        ),
        (Some(index), None) => {
            let total = number(KUBERNETES_TOTAL)?.with_context(|| {
                format!(
                    "--{option} env: {KUBERNETES_INDEX} is set but {KUBERNETES_TOTAL} is not (Kubernetes does not tell a pod the Job's completions: set {KUBERNETES_TOTAL} to the same number in the pod template)"
                )
            })?;
            in_range(
                option,
                index,
                total,
                format!("{KUBERNETES_INDEX}={index}, {KUBERNETES_TOTAL}={total}"),
                "Kubernetes Indexed Job",
            )
        }
        (None, Some(id)) => {
            let need = |name: &str| -> anyhow::Result<i64> {
                number(name)?.with_context(|| {
                    format!(
                        "--{option} env: {SLURM_ID} is set but {name} is not (is this a Slurm job array?)"
                    )
                })
            };
            let (min, count) = (need(SLURM_MIN)?, need(SLURM_COUNT)?);
            let step = number(SLURM_STEP)?.unwrap_or(1).max(1);
            let variables =
                format!("{SLURM_ID}={id}, {SLURM_MIN}={min}, {SLURM_STEP}={step}, {SLURM_COUNT}={count}");
            if (id - min) % step != 0 {
                bail!(
                    "--{option} env: Slurm task {id} is not on the array's steps ({variables}); use a plain range such as --array=0-{}",
                    count - 1
                );
            }
            in_range(option, (id - min) / step, count, variables, "Slurm array")
        }
    }
}

fn in_range(
    option: &str,
    index: i64,
    total: i64,
    variables: String,
    engine: &str,
) -> anyhow::Result<Position> {
    if total < 1 || index < 0 || index >= total {
        bail!(
            "--{option} env: index {index} is out of range for {total} parts ({variables}): the {engine} and the total disagree"
        );
    }
    let (index, total) = (
        u32::try_from(index).context("index too large")?,
        u32::try_from(total).context("total too large")?,
    );
    Ok(Position {
        index,
        total,
        source: format!("{engine} ({variables})"),
    })
}

/// The process's environment, for [`position`].
pub fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// What a Slurm task's manifest records of its job: which task of which
/// array, on which node, with the CPUs Slurm says it allocated.
const SLURM_RECORDED: [&str; 14] = [
    "SLURM_CLUSTER_NAME",
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    SLURM_ID,
    SLURM_MIN,
    "SLURM_ARRAY_TASK_MAX",
    SLURM_STEP,
    SLURM_COUNT,
    "SLURMD_NODENAME",
    "SLURM_JOB_NODELIST",
    "SLURM_JOB_PARTITION",
    "SLURM_CPUS_ON_NODE",
    "SLURM_JOB_CPUS_PER_NODE",
    "SLURM_SUBMIT_HOST",
];

/// What a Kubernetes pod's manifest records (the pod's name is its hostname).
const KUBERNETES_RECORDED: [&str; 4] = [
    KUBERNETES_INDEX,
    KUBERNETES_TOTAL,
    "HARNESS_NODE_NAME",
    "HOSTNAME",
];

/// Which job engine started this process (Slurm when `SLURM_JOB_ID` is set,
/// Kubernetes when `JOB_COMPLETION_INDEX` or `HARNESS_NODE_NAME` is), its
/// variables, and the CPUs this process may use (its affinity mask: what a
/// Slurm cgroup or a Kubernetes CPU manager leaves it), looked up with `var`.
pub fn placement(var: &dyn Fn(&str) -> Option<String>) -> crate::results::set::Placement {
    let (engine, recorded): (Option<&str>, &[&str]) = if var("SLURM_JOB_ID").is_some() {
        (Some("Slurm"), &SLURM_RECORDED)
    } else if var(KUBERNETES_INDEX).is_some() || var("HARNESS_NODE_NAME").is_some() {
        (Some("Kubernetes"), &KUBERNETES_RECORDED)
    } else {
        (None, &[])
    };
    crate::results::set::Placement {
        engine: engine.map(str::to_owned),
        cpus: echo_core::affinity::allowed_cpus().unwrap_or_default(),
        online_cpus: crate::cpus::online().len(),
        variables: recorded
            .iter()
            .filter_map(|name| Some((name.to_string(), var(name)?)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn error(option: &str, text: &str, pairs: &[(&str, &str)]) -> String {
        let message = format!("{:#}", position(option, text, 1000, &env(pairs)).unwrap_err());
        assert!(!message.contains('\n'), "{message}");
        message
    }

    #[test]
    fn a_fraction_counts_from_one() {
        let position = position("shard", "2/4", 1000, &env(&[])).unwrap();
        assert_eq!((position.index, position.total), (1, 4));
        assert_eq!(position.fraction(), "2/4");
        for bad in ["0/4", "5/4", "1/0", "a/b", "2", "2/4/6", ""] {
            assert!(error("shard", bad, &[]).contains("--shard"), "{bad}");
        }
        assert!(error("share", "3/2000", &[]).contains("at most 1000"));
    }

    #[test]
    fn kubernetes_indexed_jobs_count_from_zero_with_the_total_set_by_hand() {
        let position = position(
            "shard",
            "env",
            1000,
            &env(&[(KUBERNETES_INDEX, "0"), (KUBERNETES_TOTAL, "3")]),
        )
        .unwrap();
        assert_eq!((position.index, position.total), (0, 3));
        assert!(position.source.contains("Kubernetes"), "{}", position.source);
        assert!(error("shard", "env", &[(KUBERNETES_INDEX, "1")]).contains(KUBERNETES_TOTAL));
        assert!(
            error(
                "shard",
                "env",
                &[(KUBERNETES_INDEX, "3"), (KUBERNETES_TOTAL, "3")]
            )
            .contains("out of range")
        );
    }

    #[test]
    fn slurm_arrays_are_normalised_by_their_first_id_and_step() {
        let slurm = |id: &str| {
            position(
                "shard",
                "env",
                1000,
                &env(&[
                    (SLURM_ID, id),
                    (SLURM_MIN, "10"),
                    (SLURM_STEP, "2"),
                    (SLURM_COUNT, "3"),
                ]),
            )
        };
        assert_eq!(slurm("10").unwrap().index, 0);
        assert_eq!(slurm("14").unwrap().index, 2);
        assert!(slurm("14").unwrap().source.contains("Slurm"));
        assert!(format!("{:#}", slurm("11").unwrap_err()).contains("steps"));
        assert!(format!("{:#}", slurm("16").unwrap_err()).contains("out of range"));
        assert!(format!("{:#}", slurm("8").unwrap_err()).contains("out of range"));
        assert!(error("shard", "env", &[(SLURM_ID, "1")]).contains(SLURM_MIN));
    }

    #[test]
    fn the_placement_names_the_engine_and_records_its_variables() {
        let slurm = placement(&env(&[
            ("SLURM_JOB_ID", "12"),
            ("SLURM_ARRAY_JOB_ID", "11"),
            (SLURM_ID, "2"),
            ("SLURMD_NODENAME", "node7"),
            ("SLURM_CONF", "/etc/slurm/slurm.conf"),
        ]));
        assert_eq!(slurm.engine.as_deref(), Some("Slurm"));
        assert_eq!(slurm.variables["SLURMD_NODENAME"], "node7");
        assert_eq!(slurm.variables.len(), 4, "{:?}", slurm.variables);
        assert!(!slurm.cpus.is_empty(), "the affinity mask of this process");
        let pod = placement(&env(&[(KUBERNETES_INDEX, "0"), (KUBERNETES_TOTAL, "4")]));
        assert_eq!(pod.engine.as_deref(), Some("Kubernetes"));
        assert_eq!(pod.variables[KUBERNETES_TOTAL], "4");
        let by_hand = placement(&env(&[]));
        assert_eq!(by_hand.engine, None);
        assert!(by_hand.variables.is_empty());
    }

    #[test]
    fn two_conventions_or_none_is_an_error() {
        let both = error(
            "shard",
            "env",
            &[
                (KUBERNETES_INDEX, "0"),
                (KUBERNETES_TOTAL, "2"),
                (SLURM_ID, "0"),
                (SLURM_MIN, "0"),
                (SLURM_COUNT, "2"),
            ],
        );
        assert!(both.contains("both"), "{both}");
        let none = error("share", "env", &[]);
        assert!(none.contains("neither") && none.contains("--share"), "{none}");
        assert!(error("shard", "env", &[(KUBERNETES_INDEX, "x")]).contains("not a whole number"));
    }
}
