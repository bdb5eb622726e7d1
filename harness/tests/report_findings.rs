//! The report's Findings, written by rules from the data: on result sets
//! made for each rule (a clear leader, a tie, a starved model), the report
//! begins with the sentence the data supports and no other.

mod report_fixture;

use report_fixture::{CellSpec, harness, path_arg, write_result_set};

/// A closed-loop connection sweep (1, 10, 100 connections), six repeats of
/// each label; `speed(label, connections, repeat)` gives its msgs/s and
/// `starved(label, connections)` whether its runs starve connections.
fn sweep(
    labels: &[&str],
    speed: impl Fn(&str, u32, u32) -> f64,
    starved: impl Fn(&str, u32) -> bool,
) -> Vec<CellSpec> {
    let mut cells = Vec::new();
    for label in labels {
        for connections in [1, 10, 100] {
            for repeat in 1..=6 {
                let msgs_per_sec = speed(label, connections, repeat);
                cells.push(CellSpec {
                    label: label.to_string(),
                    scenario: format!("closed-c{connections}-s64"),
                    shape: "closed",
                    connections,
                    idle: 0,
                    rate: None,
                    repeat,
                    msgs_per_sec,
                    p50_us: 1e6 * f64::from(connections) / msgs_per_sec,
                    flags: if starved(label, connections) {
                        vec!["starved"]
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }
    cells
}

/// The report's Findings as lines, after checking they come first: after
/// the title and its one line, before any other section, and that every
/// figure they link to exists.
fn findings(cells: &[CellSpec]) -> Vec<String> {
    let set = tempfile::tempdir().unwrap();
    write_result_set(set.path(), cells, 6);
    let run = harness(&["report", &path_arg(set.path())]);
    assert!(run.success, "report failed: {}", run.stderr);
    let markdown = std::fs::read_to_string(set.path().join("report.md")).unwrap();
    let headings: Vec<&str> = markdown.lines().filter(|line| line.starts_with("## ")).collect();
    assert_eq!(headings.first(), Some(&"## Findings"), "Findings come first");
    assert_eq!(
        headings.last(),
        Some(&"## Appendix: Manifest"),
        "the manifest comes last"
    );
    let lines: Vec<String> = markdown
        .split("## Findings\n")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("- "))
        .map(str::to_owned)
        .collect();
    assert!(lines.len() <= 10, "at most ten findings: {lines:#?}");
    for line in &lines {
        let figure = line
            .split("([figure](")
            .nth(1)
            .expect("each finding links its figure");
        let file = figure.trim_end_matches("))");
        assert!(set.path().join(file).is_file(), "{file} is not drawn");
    }
    let html = std::fs::read_to_string(set.path().join("report.html")).unwrap();
    let findings_at = html.find("<h2 id=\"findings\">").expect("the HTML has Findings");
    assert!(
        findings_at < html.find("<svg ").unwrap(),
        "Findings come before the first figure"
    );
    lines
}

fn line_with<'a>(lines: &'a [String], words: &str) -> Option<&'a String> {
    lines.iter().find(|line| line.contains(words))
}

#[test]
fn a_clear_leader_is_named_with_its_ratio_and_interval() {
    let cells = sweep(
        &["epoll", "async"],
        |label, connections, repeat| {
            let base = if label == "async" { 20_000.0 } else { 10_000.0 };
            base * f64::from(connections).sqrt() * (1.0 + 0.01 * f64::from(repeat))
        },
        |_, _| false,
    );
    let lines = findings(&cells);
    let leader = line_with(&lines, "leads").unwrap_or_else(|| panic!("no leader in {lines:#?}"));
    assert!(
        leader.starts_with("- Closed loop, 64 B messages, at 100 connections: async leads in throughput"),
        "{leader}"
    );
    // Six repeats: a 95% CI (no "no CI"), and the ratio with its interval.
    assert!(!leader.contains("no CI"), "{leader}");
    assert!(leader.contains("2.00× \\[1.94, 2.06\\] epoll's"), "{leader}");
    assert!(line_with(&lines, "cannot be told apart").is_none(), "{lines:#?}");
    assert!(line_with(&lines, "starts failing").is_none(), "{lines:#?}");
}

#[test]
fn labels_within_each_others_interval_are_indistinguishable_not_ranked() {
    // The same numbers in a different order of repeats: a tie.
    let cells = sweep(
        &["epoll", "async"],
        |label, connections, repeat| {
            let jitter = if label == "async" { repeat } else { 7 - repeat };
            10_000.0 * f64::from(connections).sqrt() * (1.0 + 0.01 * f64::from(jitter))
        },
        |_, _| false,
    );
    let lines = findings(&cells);
    let tie = line_with(&lines, "cannot be told apart").unwrap_or_else(|| panic!("no tie in {lines:#?}"));
    assert!(tie.contains("epoll") && tie.contains("async"), "{tie}");
    assert!(tie.contains("95% CI"), "{tie}");
    assert!(
        line_with(&lines, "leads").is_none(),
        "a tie is not ranked: {lines:#?}"
    );
}

#[test]
fn a_starved_model_is_said_to_fail_where_it_starts_and_is_not_ranked() {
    // `single` is the fastest on paper at 100 connections, but starves.
    let cells = sweep(
        &["single", "epoll", "async"],
        |label, connections, repeat| {
            let base = match label {
                "single" => 50_000.0,
                "async" => 20_000.0,
                _ => 10_000.0,
            };
            base * f64::from(connections).sqrt() * (1.0 + 0.01 * f64::from(repeat))
        },
        |label, connections| label == "single" && connections >= 10,
    );
    let lines = findings(&cells);
    let failing = line_with(&lines, "starts failing").unwrap_or_else(|| panic!("no failure in {lines:#?}"));
    assert!(
        failing.contains("single at 10 connections (up to 9 of 10 connections starved in 6 of 6 runs)"),
        "{failing}"
    );
    let leader = line_with(&lines, "leads").unwrap_or_else(|| panic!("no leader in {lines:#?}"));
    assert!(
        leader.contains("async leads"),
        "a failing model does not lead: {leader}"
    );
}

#[test]
fn a_model_whose_throughput_falls_stops_scaling_where_it_peaks() {
    let cells = sweep(
        &["epoll", "threaded"],
        |label, connections, repeat| {
            let jitter = 1.0 + 0.01 * f64::from(repeat);
            match (label, connections) {
                ("threaded", 100) => 5_000.0 * jitter,
                _ => 10_000.0 * f64::from(connections).sqrt() * jitter,
            }
        },
        |_, _| false,
    );
    let lines = findings(&cells);
    let scaling = line_with(&lines, "stops scaling").unwrap_or_else(|| panic!("none in {lines:#?}"));
    assert!(scaling.contains("threaded peaks at 10 connections"), "{scaling}");
    assert!(!scaling.contains("epoll"), "{scaling}");
}
