//! `harness report DIR` on synthetic result sets: the output is the same bytes
//! on a second run, every chart is inlined in the HTML, a missing or corrupt
//! file is named in one line, and flagged cells are marked.

mod report_fixture;

use report_fixture::{harness, path_arg, scenarios, snapshot, suite, write_result_set};
use std::path::Path;

fn generated(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = snapshot(dir);
    files.retain(|path, _| !path.starts_with("cells") && path != Path::new("manifest.json"));
    files
}

#[test]
fn a_second_run_writes_the_same_bytes() {
    for repeats in [1, 3] {
        let set = tempfile::tempdir().unwrap();
        write_result_set(set.path(), &suite(repeats), repeats);
        let first = harness(&["report", &path_arg(set.path())]);
        assert!(first.success, "report failed: {}", first.stderr);
        let before = generated(set.path());
        let second = harness(&["report", &path_arg(set.path())]);
        assert!(second.success, "report failed: {}", second.stderr);
        let after = generated(set.path());
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>()
        );
        for (path, bytes) in &before {
            assert!(after[path] == *bytes, "{} differs between runs", path.display());
        }
        assert!(before.contains_key(Path::new("report.md")));
        assert!(before.contains_key(Path::new("report.html")));
        let charts = before.keys().filter(|path| path.starts_with("charts")).count();
        assert!(charts >= 10, "only {charts} charts");
    }
}

#[test]
fn the_reports_show_every_chart_and_the_manifest() {
    let set = tempfile::tempdir().unwrap();
    write_result_set(set.path(), &suite(1), 1);
    let run = harness(&["report", &path_arg(set.path())]);
    assert!(run.success, "report failed: {}", run.stderr);
    let html = std::fs::read_to_string(set.path().join("report.html")).unwrap();
    let markdown = std::fs::read_to_string(set.path().join("report.md")).unwrap();
    let charts: Vec<String> = std::fs::read_dir(set.path().join("charts"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".svg"))
        .collect();
    for chart in &charts {
        assert!(
            markdown.contains(&format!("(charts/{chart})")),
            "report.md does not link {chart}"
        );
        let svg = std::fs::read_to_string(set.path().join("charts").join(chart)).unwrap();
        assert!(
            svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"),
            "{chart} is not an SVG document"
        );
        assert!(
            svg.contains("font-family=\"sans-serif\""),
            "{chart} uses another font"
        );
    }
    assert_eq!(
        html.matches("<svg ").count(),
        charts.len(),
        "every chart is inlined once"
    );
    assert_eq!(
        html.matches("<svg class=\"chart\" id=\"chart-").count(),
        charts.len()
    );
    for forbidden in ["<script", "<link", "http://", "https://", "@import", "url("] {
        let outside_svg_namespace = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(
            !outside_svg_namespace.contains(forbidden),
            "report.html refers to {forbidden}"
        );
    }
    for report in [&html, &markdown] {
        for expected in [
            "0123456789abcdef",
            "Test CPU @ 1.00GHz",
            "fixture",
            "closed-c100-s64",
            "churn-c10",
        ] {
            assert!(report.contains(expected), "a report lacks {expected}");
        }
    }
    for kind in [
        "spectrum--",
        "connections-",
        "idle-",
        "rate-",
        "churn--",
        "timeline-closed",
        "timeline-open",
    ] {
        assert!(
            charts.iter().any(|chart| chart.starts_with(kind)),
            "no {kind} chart among {charts:?}"
        );
    }
    // System calls: one stacked chart per scenario, and the table, for the
    // labels that counted them only.
    let syscall_charts = charts
        .iter()
        .filter(|chart| chart.starts_with("syscalls--"))
        .count();
    assert_eq!(syscall_charts, scenarios().len(), "{charts:?}");
    assert!(
        markdown
            .contains("| closed-c10-s64 | epoll | 2.25 | recvfrom 1.00, sendto 1.00, epoll_wait 0.25 | - |")
    );
    assert!(
        !markdown.contains("| closed-c10-s64 | threaded | "),
        "threaded counted nothing"
    );
}

#[test]
fn flagged_cells_are_marked_in_charts_and_tables() {
    let set = tempfile::tempdir().unwrap();
    write_result_set(set.path(), &suite(1), 1);
    let run = harness(&["report", &path_arg(set.path())]);
    assert!(run.success, "report failed: {}", run.stderr);
    let markdown = std::fs::read_to_string(set.path().join("report.md")).unwrap();
    let starved_rows: Vec<&str> = markdown
        .lines()
        .filter(|line| line.starts_with("| single |") && line.contains("starved"))
        .collect();
    assert!(!starved_rows.is_empty(), "no table row marks single as starved");
    assert!(
        markdown.contains("| single | closed-c100-s64 | 1 | starved |"),
        "the flagged list lacks the cell"
    );
    assert!(
        !markdown.contains("| epoll | closed-c100-s64 | 1 |"),
        "an unflagged cell is listed as flagged"
    );

    let charts = set.path().join("charts");
    let spectrum = std::fs::read_to_string(charts.join("spectrum--closed-c100-s64.svg")).unwrap();
    assert!(spectrum.contains("single (flagged)"));
    let clean = std::fs::read_to_string(charts.join("spectrum--closed-c10-s64.svg")).unwrap();
    assert!(!clean.contains("flagged"));
    let throughput = std::fs::read_dir(&charts)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.to_string_lossy().contains("connections-closed")
                && path.to_string_lossy().ends_with("throughput.svg")
        })
        .expect("a throughput sweep chart");
    let throughput = std::fs::read_to_string(throughput).unwrap();
    assert!(throughput.contains("single (1 flagged)") && throughput.contains("flagged cell"));
}

fn assert_fails_naming(dir: &Path, file: &str) {
    let run = harness(&["report", &path_arg(dir)]);
    assert!(!run.success, "report succeeded without {file}");
    assert_eq!(run.stderr.lines().count(), 1, "not one line: {:?}", run.stderr);
    assert!(run.stderr.contains(file), "{:?} does not name {file}", run.stderr);
}

#[test]
fn a_missing_or_corrupt_file_is_named_in_one_line() {
    let set = tempfile::tempdir().unwrap();
    write_result_set(set.path(), &suite(1), 1);
    let cells = set.path().join("cells");

    let hgrm = cells.join("epoll--closed-c10-s64.hgrm");
    let saved = std::fs::read(&hgrm).unwrap();
    std::fs::remove_file(&hgrm).unwrap();
    assert_fails_naming(set.path(), "epoll--closed-c10-s64.hgrm");
    std::fs::write(&hgrm, b"       Value     Percentile\n  12.0 banana 3\n").unwrap();
    assert_fails_naming(set.path(), "epoll--closed-c10-s64.hgrm");
    std::fs::write(&hgrm, saved).unwrap();

    let hlog = cells.join("async--churn-c10.hlog");
    let saved = std::fs::read(&hlog).unwrap();
    std::fs::write(
        &hlog,
        b"#[BaseTime: 0.000 (seconds since epoch)]\n0.000,1.000,1.0,notbase64!!\n",
    )
    .unwrap();
    assert_fails_naming(set.path(), "async--churn-c10.hlog");
    std::fs::write(&hlog, saved).unwrap();

    let json = cells.join("threaded--closed-c1-s64.json");
    let saved = std::fs::read(&json).unwrap();
    std::fs::write(&json, b"{\"label\": \"threaded\"").unwrap();
    assert_fails_naming(set.path(), "threaded--closed-c1-s64.json");
    std::fs::write(&json, saved).unwrap();

    std::fs::write(set.path().join("manifest.json"), b"not json").unwrap();
    assert_fails_naming(set.path(), "manifest.json");
    std::fs::remove_file(set.path().join("manifest.json")).unwrap();
    assert_fails_naming(set.path(), "manifest.json");
}

#[test]
fn a_cell_that_recorded_no_message_is_still_reported() {
    let set = tempfile::tempdir().unwrap();
    write_result_set(set.path(), &suite(1), 1);
    let cells = set.path().join("cells");
    let empty = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    std::fs::write(
        cells.join("single--closed-c100-s64.hgrm"),
        report_fixture::hgrm(&empty),
    )
    .unwrap();
    std::fs::write(
        cells.join("single--closed-c100-s64.hlog"),
        report_fixture::hlog(1.0, 0),
    )
    .unwrap();
    let run = harness(&["report", &path_arg(set.path())]);
    assert!(run.success, "report failed: {}", run.stderr);
    let spectrum = std::fs::read_to_string(set.path().join("charts/spectrum--closed-c100-s64.svg")).unwrap();
    assert!(spectrum.contains("single (no messages)"));
}
