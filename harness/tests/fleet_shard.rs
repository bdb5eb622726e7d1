//! A suite spread over shards: `harness run --shard K/N`, and `--shard env`
//! under each job engine's convention (a Kubernetes Indexed Job, a Slurm
//! array), on a tiny suite. The shards must be disjoint, hold every cell
//! between them, agree across conventions, and merge into a result set
//! whose report has the structure of one unsharded run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

use support::{cells, harness, json, merge, run_watched};

const SHARDS: u32 = 3;
const REPEATS: u32 = 2;

/// Two models, two scenarios, a fifth of a second each.
const SUITE: &str = r#"
name = "tiny"
warmup_s = 0.0
duration_s = 0.2
models = ["epoll", "select"]

[[sweep]]
name = "closed"
shape = "closed"
connections = [1, 4]
size = [64]
"#;

/// Every variable a job engine might have set around the test itself.
const ENGINE_VARIABLES: [&str; 6] = [
    "JOB_COMPLETION_INDEX",
    "HARNESS_SHARD_TOTAL",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_STEP",
    "SLURM_ARRAY_TASK_COUNT",
];

/// How shard K is asked for: the `--shard` value and the environment.
type Convention = fn(u32) -> (Option<String>, Vec<(&'static str, String)>);

/// The cells of each shard.
type Partition = Vec<BTreeSet<(String, String, u64)>>;

/// `harness run` on the tiny suite with `shard` (if any) and `env`.
fn run(suite: &Path, out: &Path, shard: Option<&str>, env: &[(&str, String)]) -> Output {
    let mut args = vec![
        "run".to_owned(),
        "--suite".to_owned(),
        suite.to_str().unwrap().to_owned(),
        "--repeat".to_owned(),
        REPEATS.to_string(),
        "--out".to_owned(),
        out.to_str().unwrap().to_owned(),
    ];
    if let Some(shard) = shard {
        args.extend(["--shard".to_owned(), shard.to_owned()]);
    }
    let mut command = Command::new(support::harness_exe());
    command.args(&args);
    for name in ENGINE_VARIABLES {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let what: Vec<&str> = args.iter().map(String::as_str).collect();
    run_watched(command, &what)
}

/// The report's structure: its section headings and chart files.
/// The report's headings and chart files. The appendix that lists flagged
/// runs one by one is left out: whether a run was flagged (`noisy`, say) is
/// a measurement of that run, and the whole run and the shards are two.
fn structure(dir: &Path) -> (Vec<String>, BTreeSet<String>) {
    let report = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    let headings = report
        .lines()
        .filter(|line| line.starts_with("## ") && *line != "## Appendix: Flagged runs, one by one")
        .map(str::to_owned)
        .collect();
    let charts = std::fs::read_dir(dir.join("charts"))
        .expect("charts")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    (headings, charts)
}

#[test]
fn shards_are_disjoint_cover_the_suite_under_every_convention_and_merge_into_one_run() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let suite = dir.path().join("tiny.toml");
    std::fs::write(&suite, SUITE).unwrap();
    let everything = dir.path().join("whole");
    let output = run(&suite, &everything, None, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let all = cells(&everything);
    assert_eq!(all.len(), 8, "2 models x 2 scenarios x 2 repeats");

    let conventions: [(&str, Convention, &str); 3] = [
        (
            "explicit",
            |k| (Some(format!("{k}/{SHARDS}")), Vec::new()),
            "--shard",
        ),
        (
            "kubernetes",
            |k| {
                (
                    Some("env".to_owned()),
                    vec![
                        ("JOB_COMPLETION_INDEX", (k - 1).to_string()),
                        ("HARNESS_SHARD_TOTAL", SHARDS.to_string()),
                    ],
                )
            },
            "Kubernetes Indexed Job",
        ),
        (
            "slurm",
            |k| {
                (
                    Some("env".to_owned()),
                    vec![
                        ("SLURM_ARRAY_TASK_ID", (k + 6).to_string()),
                        ("SLURM_ARRAY_TASK_MIN", "7".to_owned()),
                        ("SLURM_ARRAY_TASK_COUNT", SHARDS.to_string()),
                    ],
                )
            },
            "Slurm array",
        ),
    ];
    let mut partitions: BTreeMap<&str, Partition> = BTreeMap::new();
    let mut explicit_dirs: Vec<PathBuf> = Vec::new();
    for (name, arguments, source) in conventions {
        let mut union = BTreeSet::new();
        for k in 1..=SHARDS {
            let out = dir.path().join(format!("{name}-{k}"));
            let (shard, env) = arguments(k);
            let output = run(&suite, &out, shard.as_deref(), &env);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{name} shard {k}: {stderr}");
            assert!(
                stderr.contains(&format!("shard {k}/{SHARDS} from {source}")),
                "{stderr}"
            );
            let manifest = json(&out.join("manifest.json"));
            assert_eq!(manifest["shard"]["index"], k, "{manifest}");
            assert_eq!(manifest["shard"]["total"], SHARDS);
            assert!(manifest["shard"]["source"].as_str().unwrap().contains(source));
            assert!(manifest["machine"]["hostname"].is_string());
            let shard_cells = cells(&out);
            for cell in &shard_cells {
                assert!(union.insert(cell.clone()), "{name}: {cell:?} is on two shards");
            }
            partitions.entry(name).or_default().push(shard_cells);
            if name == "explicit" {
                explicit_dirs.push(out);
            }
        }
        assert_eq!(
            union, all,
            "{name}: the shards do not hold every cell of the suite"
        );
    }
    assert_eq!(partitions["explicit"], partitions["kubernetes"]);
    assert_eq!(partitions["explicit"], partitions["slurm"]);
    // Both repeats of a cell never share a shard (three shards, two repeats).
    for shard in &partitions["explicit"] {
        let cells: Vec<_> = shard
            .iter()
            .map(|(label, scenario, _)| (label, scenario))
            .collect();
        let distinct: BTreeSet<_> = cells.iter().collect();
        assert_eq!(
            cells.len(),
            distinct.len(),
            "two repeats of a cell on one shard: {shard:?}"
        );
    }

    let merged = dir.path().join("merged");
    merge(explicit_dirs.iter().map(PathBuf::as_path), &merged);
    assert_eq!(cells(&merged), all);
    assert_eq!(structure(&merged), structure(&everything));
    let manifest = json(&merged.join("manifest.json"));
    assert_eq!(manifest["merged_from"].as_array().unwrap().len(), SHARDS as usize);
    assert_eq!(manifest["parameters"]["repeat"], REPEATS);

    // A shard given twice is refused, and nothing is written.
    let again = dir.path().join("again");
    let first = explicit_dirs[0].to_str().unwrap();
    let output = harness(&["merge", first, first, "--out", again.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("given twice"),
        "{stderr}"
    );
    assert!(!again.exists());
}

#[test]
fn an_engine_convention_that_is_ambiguous_or_out_of_range_is_one_line() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let suite = dir.path().join("tiny.toml");
    std::fs::write(&suite, SUITE).unwrap();
    let out = dir.path().join("never");
    let kubernetes = [
        ("JOB_COMPLETION_INDEX", "0".to_owned()),
        ("HARNESS_SHARD_TOTAL", "2".to_owned()),
    ];
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "0".to_owned()),
        ("SLURM_ARRAY_TASK_MIN", "0".to_owned()),
        ("SLURM_ARRAY_TASK_COUNT", "2".to_owned()),
    ];
    let both: Vec<_> = kubernetes.iter().chain(&slurm).cloned().collect();
    let past_end = [
        ("JOB_COMPLETION_INDEX", "2".to_owned()),
        ("HARNESS_SHARD_TOTAL", "2".to_owned()),
    ];
    for (shard, env, expected) in [
        ("env", &both[..], "both JOB_COMPLETION_INDEX"),
        ("env", &past_end[..], "out of range"),
        ("env", &[][..], "neither"),
        ("0/2", &[][..], "K must be between 1 and N"),
        ("two", &[][..], "expected K/N"),
    ] {
        let output = run(&suite, &out, Some(shard), env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "--shard {shard} {env:?} ran");
        assert!(
            stderr.starts_with("harness: ") && stderr.contains(expected),
            "{stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(!out.exists(), "--shard {shard} {env:?} wrote {}", out.display());
    }
}
