//! `harness report DIR --charts paper|full --labels A,B --out DIR2`: a
//! bounded set of figures with stable ids, a subset of labels, a report
//! written elsewhere, and bad input refused in one line with nothing written.

mod report_fixture;

use report_fixture::{harness, path_arg, snapshot, suite, write_result_set};
use std::path::Path;

fn charts(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("charts"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn paper_draws_at_most_eight_figures_with_the_ids_of_the_full_report() {
    let set = tempfile::tempdir().unwrap();
    write_result_set(set.path(), &suite(3), 3);
    let full = tempfile::tempdir().unwrap();
    let paper = tempfile::tempdir().unwrap();
    let before = snapshot(set.path());
    for (mode, out) in [("full", full.path()), ("paper", paper.path())] {
        let run = harness(&[
            "report",
            &path_arg(set.path()),
            "--charts",
            mode,
            "--out",
            &path_arg(out),
        ]);
        assert!(run.success, "report --charts {mode} failed: {}", run.stderr);
    }
    assert_eq!(
        before,
        snapshot(set.path()),
        "--out leaves the result set untouched"
    );
    let (full, paper_charts) = (charts(full.path()), charts(paper.path()));
    assert!(full.len() > 8, "the fixture draws more than 8 charts: {full:?}");
    assert!(
        (1..=8).contains(&paper_charts.len()),
        "paper draws 1 to 8: {paper_charts:?}"
    );
    for chart in &paper_charts {
        assert!(full.contains(chart), "{chart} keeps its id from the full report");
    }
    assert!(
        paper_charts
            .iter()
            .any(|chart| chart.ends_with("--throughput.svg"))
    );
    let markdown = std::fs::read_to_string(paper.path().join("report.md")).unwrap();
    assert!(markdown.matches("](charts/").count() >= paper_charts.len());
    for link in markdown.split("](charts/").skip(1) {
        let file = link.split(')').next().unwrap();
        assert!(
            paper_charts.iter().any(|chart| chart == file),
            "report.md links {file}, not drawn"
        );
    }
}

#[test]
fn labels_draw_a_subset() {
    let set = tempfile::tempdir().unwrap();
    write_result_set(set.path(), &suite(1), 1);
    let out = tempfile::tempdir().unwrap();
    let run = harness(&[
        "report",
        &path_arg(set.path()),
        "--labels",
        "epoll,async",
        "--out",
        &path_arg(out.path()),
    ]);
    assert!(run.success, "report failed: {}", run.stderr);
    let markdown = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(markdown.contains("| epoll |") && markdown.contains("| async |"));
    assert!(!markdown.contains("| threaded |"), "threaded was not asked for");
    let svg = std::fs::read_to_string(
        out.path()
            .join("charts/connections-closed-s64-i0--throughput.svg"),
    )
    .unwrap();
    let has_text = |text: &str| svg.lines().any(|line| line.trim() == text);
    assert!(
        has_text("epoll") && has_text("async"),
        "the legend names the labels asked for"
    );
    assert!(!has_text("single") && !has_text("threaded"), "and no other");
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let set = tempfile::tempdir().unwrap();
    write_result_set(set.path(), &suite(1), 1);
    let before = snapshot(set.path());
    let out = tempfile::tempdir().unwrap();
    let blocker = out.path().join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let empty = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--labels".into(), "epoll,nosuch".into()],
            "nosuch is not a label",
        ),
        (vec!["--charts".into(), "poster".into()], "poster"),
        (
            vec!["--out".into(), path_arg(&blocker.join("report"))],
            "--out: cannot create",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["report".to_owned(), path_arg(set.path())];
        args.extend(extra.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = harness(&args);
        assert!(!run.success, "{extra:?} succeeded");
        assert!(run.stderr.contains(expected), "{extra:?}: {}", run.stderr);
        assert_eq!(before, snapshot(set.path()), "{extra:?} wrote into the set");
    }
    let run = harness(&["report", &path_arg(empty.path())]);
    assert!(!run.success);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(snapshot(empty.path()).is_empty(), "an empty set gets no report");
}
