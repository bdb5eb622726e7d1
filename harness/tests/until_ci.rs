//! `harness run --until-ci PCT --max-repeat N` on a tiny suite: every run
//! of the cell carries the repeats it needed and the CIs it reached, the
//! summary shows them, and bad combinations are one line each.

use serde_json::Value;
use std::path::Path;

mod support;

use support::{harness, json};

/// One model, one scenario, a fifth of a second.
const SUITE: &str = r#"
name = "tiny"
warmup_s = 0.0
duration_s = 0.2
models = ["epoll"]

[[sweep]]
name = "closed"
shape = "closed"
connections = [2]
size = [64]
"#;

fn write_suite(dir: &Path) -> String {
    let path = dir.join("tiny.toml");
    std::fs::write(&path, SUITE).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn every_run_of_a_cell_says_how_many_repeats_it_took_and_the_ci_reached() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path());
    let out = dir.path().join("set");
    // The cap is the 6 runs a CI needs, so the cell stops after round 6
    // whether or not it got within ±90%.
    let output = harness(&[
        "run",
        "--suite",
        &suite,
        "--until-ci",
        "90",
        "--max-repeat",
        "6",
        "--no-syscalls",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let mut documents: Vec<Value> = std::fs::read_dir(out.join("cells"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "json"))
        .map(|path| json(&path))
        .collect();
    documents.sort_by_key(|cell| cell["repeat"].as_u64());
    let repeats: Vec<u64> = documents
        .iter()
        .map(|cell| cell["repeat"].as_u64().unwrap())
        .collect();
    assert_eq!(repeats, [1, 2, 3, 4, 5, 6], "{stderr}");
    let record = &documents[0]["until_ci"];
    for cell in &documents {
        assert_eq!(&cell["until_ci"], record, "every run carries the same record");
    }
    assert_eq!(record["target_percent"], 90.0);
    assert_eq!(record["repeats"], 6);
    let reached = |name: &str| {
        record[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {record}"))
    };
    let (throughput, p99) = (reached("throughput_ci_percent"), reached("p99_ci_percent"));
    assert!(throughput >= 0.0 && p99 >= 0.0, "{record}");
    let converged = record["converged"].as_bool().unwrap();
    assert_eq!(converged, throughput <= 90.0 && p99 <= 90.0, "{record}");
    // The summary: n and the CI reached, beside the median [CI].
    assert!(stdout.contains("CI reached"), "{stdout}");
    let row = stdout
        .lines()
        .find(|line| line.contains("epoll"))
        .unwrap_or_else(|| panic!("no epoll row: {stdout}"));
    let words: Vec<&str> = row.split_whitespace().collect();
    assert!(words.contains(&"6"), "n = 6 in {row}");
    if converged {
        assert!(row.contains(&format!("±{throughput:.1}% ±{p99:.1}%")), "{row}");
    } else {
        assert!(row.contains("not within ±90% after 6"), "{row}");
    }
}

#[test]
fn bad_until_ci_combinations_are_one_line_each_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path());
    let out = dir.path().join("never");
    let out = out.to_str().unwrap();
    for (args, says) in [
        (vec!["--until-ci", "0"], "above 0 and below 100"),
        (vec!["--until-ci", "100"], "above 0 and below 100"),
        (vec!["--until-ci", "5", "--repeat", "3"], "cannot be used with"),
        (
            vec!["--until-ci", "5", "--max-repeat", "5"],
            "5 is not in 6..=100",
        ),
        (vec!["--max-repeat", "8"], "--until-ci"),
        (
            vec!["--until-ci", "5", "--shard", "1/2"],
            "--until-ci cannot run with --shard",
        ),
    ] {
        let mut all = vec!["run", "--suite", &suite, "--out", out];
        all.extend(&args);
        let output = harness(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.contains("--help") && !line.starts_with("Usage:"))
            .collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(!Path::new(out).exists(), "{args:?} wrote {out}");
    }
}
