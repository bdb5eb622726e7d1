//! `harness compare A B`: sets drawn alike are `same`; a label clearly
//! slower over 6 repeats a side is `worse` and fails
//! `--fail-on-regression`; 3 repeats a side are `too few repeats`; the JSON
//! document's shape; manifests that differ in what was measured are
//! refused, in where a warning; unmatched cells are listed.

mod report_fixture;

use report_fixture::{CellSpec, harness, path_arg, suite, write_result_set};
use serde_json::Value;
use std::path::Path;

fn scaled(cells: &[CellSpec], label: &str, throughput_factor: f64, latency_factor: f64) -> Vec<CellSpec> {
    cells
        .iter()
        .cloned()
        .map(|mut cell| {
            if cell.label == label {
                cell.msgs_per_sec *= throughput_factor;
                cell.p50_us *= latency_factor;
            }
            cell
        })
        .collect()
}

/// The fixture's cells in two scenarios only: 8 cells, so that Holm over
/// their throughput rows leaves 6 repeats a side room to be significant.
fn two_scenarios(repeats: u32) -> Vec<CellSpec> {
    suite(repeats)
        .into_iter()
        .filter(|cell| cell.scenario == "closed-c10-s64" || cell.scenario == "closed-c100-s64")
        .collect()
}

fn json_of(run: &report_fixture::Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|error| panic!("{error}: {}", run.stdout))
}

fn rows<'a>(document: &'a Value, label: &str, metric: &str) -> Vec<&'a Value> {
    document["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|row| row["label"] == label && row["metric"] == metric)
        .collect()
}

fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join("manifest.json");
    let mut manifest: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
}

#[test]
fn sets_drawn_alike_are_the_same_and_pass_the_gate() {
    let baseline = suite(6);
    // B's repeats fall between A's (A steps 1% a repeat, B is 0.5% up).
    let alike: Vec<CellSpec> = baseline
        .iter()
        .cloned()
        .map(|mut cell| {
            cell.msgs_per_sec *= 1.005;
            cell.p50_us *= 1.005;
            cell
        })
        .collect();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_result_set(a.path(), &baseline, 6);
    write_result_set(b.path(), &alike, 6);
    let (a, b) = (path_arg(a.path()), path_arg(b.path()));

    let run = harness(&["compare", &a, &b, "--fail-on-regression", "10", "--json"]);
    assert!(run.success, "{}", run.stderr);
    let document = json_of(&run);
    let rows = document["rows"].as_array().unwrap();
    // Every cell and metric but memory_kib, which the fixture does not record.
    assert_eq!(rows.len(), 4 * 7 * 5, "every cell and metric");
    for row in rows {
        assert_eq!(row["verdict"], "same", "{row}");
    }

    let run = harness(&["compare", &a, &b, "--fail-on-regression", "10"]);
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stdout.contains("28 cells: no significant change"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("closed-c10-s64  msgs_per_sec"),
        "same rows collapse: {}",
        run.stdout
    );
    let run = harness(&["compare", &a, &b, "--all"]);
    assert!(run.success, "{}", run.stdout);
    assert!(
        run.stdout.lines().filter(|line| line.contains(" same")).count() >= 140,
        "{}",
        run.stdout
    );
}

#[test]
fn a_clearly_slower_label_is_worse_and_fails_the_gate() {
    let baseline = two_scenarios(6);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_result_set(a.path(), &baseline, 6);
    write_result_set(b.path(), &scaled(&baseline, "epoll", 0.7, 1.0), 6);
    let (a, b) = (path_arg(a.path()), path_arg(b.path()));

    let args = [
        "compare",
        &a,
        &b,
        "--metric",
        "msgs_per_sec",
        "--fail-on-regression",
        "10",
    ];
    let run = harness(&args);
    assert!(!run.success, "a 30% drop passed: {}", run.stdout);
    assert_eq!(run.stderr.lines().count(), 1, "{:?}", run.stderr);
    assert!(
        run.stderr.contains("2 row(s) worse by more than 10%"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("epoll / closed-c10-s64 msgs_per_sec"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("async"), "{}", run.stderr);
    let epoll_row = run
        .stdout
        .lines()
        .find(|line| line.starts_with("epoll") && line.contains("closed-c10-s64"))
        .expect("an epoll row");
    assert!(
        epoll_row.contains("0.700 [") && epoll_row.contains("worse"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("6 cells: no significant change"),
        "{}",
        run.stdout
    );

    let run = harness(&[&args[..5], &["--json"]].concat());
    assert!(
        run.success,
        "without --fail-on-regression compare only reports: {}",
        run.stderr
    );
    let document = json_of(&run);
    for row in rows(&document, "epoll", "msgs_per_sec") {
        assert_eq!(row["verdict"], "worse", "{row}");
        let [low, high] = [0, 1].map(|index| row["ratio_ci"][index].as_f64().unwrap());
        assert!(low < 0.7 && 0.7 < high && high < 0.9, "{row}");
        assert!(
            (row["p_value"].as_f64().unwrap() - 2.0 / 924.0).abs() < 1e-9,
            "{row}"
        );
    }
    // A gate beyond the CI does not fail: the drop is 30%, not 40%.
    let run = harness(&[
        "compare",
        &a,
        &b,
        "--metric",
        "msgs_per_sec",
        "--fail-on-regression",
        "40",
    ]);
    assert!(run.success, "{}", run.stderr);
}

#[test]
fn latency_is_worse_when_higher() {
    let baseline = two_scenarios(6);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_result_set(a.path(), &baseline, 6);
    write_result_set(b.path(), &scaled(&baseline, "async", 1.0, 1.5), 6);
    let (a, b) = (path_arg(a.path()), path_arg(b.path()));
    let run = harness(&["compare", &a, &b, "--metric", "p50", "--fail-on-regression", "10"]);
    assert!(
        !run.success && run.stderr.contains("async / closed-c10-s64 p50"),
        "{}",
        run.stderr
    );
    let run = harness(&[
        "compare",
        &a,
        &b,
        "--metric",
        "msgs_per_sec",
        "--fail-on-regression",
        "10",
    ]);
    assert!(run.success, "{}", run.stderr);
}

#[test]
fn three_repeats_are_too_few_and_do_not_fail_the_gate() {
    let baseline = suite(3);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_result_set(a.path(), &baseline, 3);
    write_result_set(b.path(), &scaled(&baseline, "threaded", 0.7, 1.0), 3);
    let (a, b) = (path_arg(a.path()), path_arg(b.path()));
    let run = harness(&["compare", &a, &b, "--fail-on-regression", "5"]);
    assert!(run.success, "3 repeats a side cannot tell: {}", run.stderr);
    assert!(
        run.stdout.contains("28 cells: too few repeats to tell")
            && run.stdout.contains("the smallest p their sizes allow is 0.1000"),
        "{}",
        run.stdout
    );
    let run = harness(&["compare", &a, &b, "--json"]);
    let document = json_of(&run);
    let threaded = rows(&document, "threaded", "msgs_per_sec");
    assert_eq!(threaded.len(), 7);
    for row in threaded {
        assert_eq!(row["verdict"], "too few repeats", "{row}");
        assert_eq!(row["ratio_ci"], Value::Null, "{row}");
        assert_eq!(row["smallest_p"], 0.1, "{row}");
    }
}

#[test]
fn the_json_document_has_its_fields() {
    let baseline = two_scenarios(6);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_result_set(a.path(), &baseline, 6);
    write_result_set(b.path(), &baseline, 6);
    let run = harness(&["compare", &path_arg(a.path()), &path_arg(b.path()), "--json"]);
    assert!(run.success, "{}", run.stderr);
    let document = json_of(&run);
    for key in ["a", "b", "manifest_differences", "rows"] {
        assert!(document.get(key).is_some(), "{key} missing: {document}");
    }
    assert_eq!(document["a"]["suite"], "fixture");
    assert_eq!(
        document["family_rows"],
        8 * 5,
        "every row can be significant with 6 a side"
    );
    assert_eq!(document["manifest_differences"], serde_json::json!([]));
    let row = &document["rows"][0];
    for key in [
        "label", "scenario", "metric", "a_median", "b_median", "ratio", "ratio_ci", "p_value", "n_a", "n_b",
        "verdict",
    ] {
        assert!(row.get(key).is_some(), "{key} missing: {row}");
    }
    assert_eq!(row["ratio_ci"].as_array().map(Vec::len), Some(2), "{row}");
    assert_eq!((row["n_a"].as_u64(), row["n_b"].as_u64()), (Some(6), Some(6)));
    let metrics: std::collections::BTreeSet<&str> = document["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["metric"].as_str().unwrap())
        .collect();
    assert_eq!(
        metrics.into_iter().collect::<Vec<_>>(),
        ["cpu_us_per_msg", "msgs_per_sec", "p50", "p99", "p999"],
        "every metric the fixture's cells record (they have no memory_kib)"
    );
}

#[test]
fn manifests_that_measured_something_else_are_refused_and_another_machine_warned() {
    let baseline = two_scenarios(1);
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    write_result_set(a.path(), &baseline, 1);
    write_result_set(b.path(), &baseline, 1);
    edit_manifest(b.path(), |manifest| manifest["suite"] = "other".into());
    write_result_set(c.path(), &baseline, 1);
    edit_manifest(c.path(), |manifest| {
        manifest["machine"]["kernel"] = "Linux 6.9.0".into();
        manifest["git_commit"] = "fedcba9876543210".into();
    });
    let (a, b, c) = (path_arg(a.path()), path_arg(b.path()), path_arg(c.path()));

    let run = harness(&["compare", &a, &b]);
    assert!(!run.success, "{}", run.stdout);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("suite (fixture vs other)") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing half-written: {}", run.stdout);
    let run = harness(&["compare", &a, &b, "--force"]);
    assert!(run.success, "{}", run.stderr);
    assert!(run.stdout.contains("suite: A fixture, B other"), "{}", run.stdout);

    let run = harness(&["compare", &a, &c]);
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("Linux 6.9.0"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("kernel: A Linux 6.0.0, B Linux 6.9.0")
            && run
                .stdout
                .contains("git_commit: A 0123456789abcdef, B fedcba9876543210"),
        "{}",
        run.stdout
    );
    let run = harness(&["compare", &a, &c, "--json"]);
    let document = json_of(&run);
    let fields: Vec<&str> = document["manifest_differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|difference| difference["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["kernel", "git_commit"]);
}

#[test]
fn an_empty_set_is_one_line_and_a_failure() {
    let baseline = two_scenarios(1);
    let (a, empty) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_result_set(a.path(), &baseline, 1);
    write_result_set(empty.path(), &[], 1);
    let run = harness(&["compare", &path_arg(a.path()), &path_arg(empty.path())]);
    assert!(!run.success);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn too_many_questions_for_the_repeats_are_said() {
    let baseline = suite(6);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_result_set(a.path(), &baseline, 6);
    write_result_set(b.path(), &scaled(&baseline, "epoll", 0.7, 1.0), 6);
    let compare = |correction: &str| {
        let run = harness(&[
            "compare",
            &path_arg(a.path()),
            &path_arg(b.path()),
            "--correction",
            correction,
        ]);
        assert!(run.success, "{}", run.stderr);
        run.stdout
    };
    // Holm asks 0.05/140 of the first row: 6 repeats a side cannot give it.
    let holm = compare("holm");
    assert!(
        holm.contains("No row can be significant: Holm over 140 rows") && holm.contains("(n = 8 a side)"),
        "{holm}"
    );
    assert!(!holm.contains("worse"), "{holm}");
    // Benjamini–Hochberg finds epoll's drop in all its scenarios together,
    // and still says what one row alone would need.
    let bh = compare("bh");
    assert!(
        bh.contains("A change in one row alone cannot be significant: over 140 rows"),
        "{bh}"
    );
    let worse: Vec<&str> = bh.lines().filter(|line| line.contains("worse")).collect();
    assert!(!worse.is_empty(), "{bh}");
    assert!(
        worse.iter().all(|line| line.starts_with("epoll ")),
        "only epoll changed: {bh}"
    );
}

#[test]
fn cells_in_one_set_only_are_listed() {
    let baseline = suite(1);
    let fewer: Vec<CellSpec> = baseline
        .iter()
        .filter(|cell| cell.label != "single")
        .cloned()
        .collect();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_result_set(a.path(), &baseline, 1);
    write_result_set(b.path(), &fewer, 1);
    let run = harness(&["compare", &path_arg(a.path()), &path_arg(b.path())]);
    assert!(run.success, "{}", run.stderr);
    assert!(run.stdout.contains("Only in A (7):"), "{}", run.stdout);
    assert!(run.stdout.contains("  single / closed-c1-s64"), "{}", run.stdout);
    assert!(!run.stdout.contains("Only in B"), "{}", run.stdout);
}
