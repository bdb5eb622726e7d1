//! `harness compare A B`: a planted regression fails `--fail-on-regression`,
//! a change within the noise does not, and unmatched cells are listed.

mod report_fixture;

use report_fixture::{CellSpec, harness, path_arg, suite, write_result_set};

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

#[test]
fn a_planted_regression_fails_and_noise_does_not() {
    let baseline = suite(1);
    let (a, b, noise) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    write_result_set(a.path(), &baseline, 1);
    write_result_set(b.path(), &scaled(&baseline, "epoll", 0.7, 1.0), 1);
    write_result_set(noise.path(), &scaled(&baseline, "epoll", 0.98, 1.0), 1);

    let run = harness(&[
        "compare",
        &path_arg(a.path()),
        &path_arg(b.path()),
        "--fail-on-regression",
        "10",
    ]);
    assert!(!run.success, "a 30% drop passed: {}", run.stdout);
    assert_eq!(run.stderr.lines().count(), 1, "{:?}", run.stderr);
    assert!(run.stderr.contains("epoll / closed-c10-s64"), "{}", run.stderr);
    assert!(!run.stderr.contains("async"), "{}", run.stderr);
    let epoll_row = run
        .stdout
        .lines()
        .find(|line| line.starts_with("epoll") && line.contains("closed-c10-s64"));
    assert!(
        epoll_row.expect("an epoll row").contains("0.70!"),
        "{}",
        run.stdout
    );

    let run = harness(&[
        "compare",
        &path_arg(a.path()),
        &path_arg(noise.path()),
        "--fail-on-regression",
        "1",
    ]);
    assert!(
        run.success,
        "a 2% change within the 5% default noise failed: {}",
        run.stderr
    );

    let run = harness(&["compare", &path_arg(a.path()), &path_arg(b.path())]);
    assert!(
        run.success,
        "without --fail-on-regression compare only reports: {}",
        run.stderr
    );
}

#[test]
fn latency_regressions_count_when_latency_is_the_metric() {
    let baseline = suite(1);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_result_set(a.path(), &baseline, 1);
    write_result_set(b.path(), &scaled(&baseline, "async", 1.0, 1.5), 1);
    let args = |metric| {
        [
            "compare",
            &path_arg(a.path()),
            &path_arg(b.path()),
            "--metric",
            metric,
            "--fail-on-regression",
            "10",
        ]
        .map(String::from)
    };
    let run = harness(&args("p99").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!run.success && run.stderr.contains("async"), "{}", run.stderr);
    let run = harness(
        &args("msgs_per_sec")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(run.success, "{}", run.stderr);
}

#[test]
fn repeats_set_the_noise() {
    let baseline = suite(3);
    // The fixture's repeats differ by 1% of throughput each: 2% spread.
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    write_result_set(a.path(), &baseline, 3);
    write_result_set(b.path(), &scaled(&baseline, "threaded", 0.99, 1.0), 3);
    write_result_set(c.path(), &scaled(&baseline, "threaded", 0.9, 1.0), 3);
    let run = harness(&[
        "compare",
        &path_arg(a.path()),
        &path_arg(b.path()),
        "--fail-on-regression",
        "0.5",
    ]);
    assert!(run.success, "a 1% drop within a 2% spread failed: {}", run.stderr);
    let run = harness(&[
        "compare",
        &path_arg(a.path()),
        &path_arg(c.path()),
        "--fail-on-regression",
        "5",
    ]);
    assert!(!run.success && run.stderr.contains("threaded"), "{}", run.stderr);
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
