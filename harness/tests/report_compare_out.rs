//! `harness compare A B --out DIR`: the comparison as compare.md and
//! compare.html with a chart per sweep and metric drawing both sets (A
//! solid, B dashed, one colour per label), the same verdicts as the
//! terminal, the same bytes on a second run, and an unwritable DIR refused
//! with one line and nothing written.

mod report_fixture;

use report_fixture::{CellSpec, harness, path_arg, snapshot, suite, write_result_set};
use std::path::Path;

/// A baseline of 6 repeats over the fixture's two closed-loop scenarios of
/// the connection sweep, and the same with `epoll` 30% slower.
fn sets(root: &Path) -> (String, String) {
    let baseline: Vec<CellSpec> = suite(6)
        .into_iter()
        .filter(|cell| cell.scenario == "closed-c10-s64" || cell.scenario == "closed-c100-s64")
        .collect();
    let slower: Vec<CellSpec> = baseline
        .iter()
        .cloned()
        .map(|mut cell| {
            if cell.label == "epoll" {
                cell.msgs_per_sec *= 0.7;
            }
            cell
        })
        .collect();
    let (a, b) = (root.join("before"), root.join("after"));
    write_result_set(&a, &baseline, 6);
    write_result_set(&b, &slower, 6);
    (path_arg(&a), path_arg(&b))
}

/// The `src` of every `<img>` in `html`.
fn image_sources(html: &str) -> Vec<&str> {
    html.split("<img ")
        .skip(1)
        .filter_map(|tag| tag.split("src=\"").nth(1)?.split('"').next())
        .collect()
}

/// The `d` or `points` of each `<path>`/`<polyline>` element in `svg`
/// stroked in `colour` (`#RRGGBB`), with whether it is dashed.
fn strokes<'a>(svg: &'a str, colour: &str) -> Vec<(&'a str, bool)> {
    svg.split('<')
        .filter(|element| element.starts_with("polyline") || element.starts_with("path"))
        .filter(|element| element.contains(&format!("stroke=\"{colour}\"")))
        .map(|element| (element, element.contains("stroke-dasharray")))
        .collect()
}

#[test]
fn out_writes_both_documents_with_charts_of_both_sets() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = sets(root.path());
    let out = root.path().join("comparison");
    let out_arg = path_arg(&out);
    let run = harness(&["compare", &a, &b, "--metric", "msgs_per_sec", "--out", &out_arg]);
    assert!(run.success, "{}", run.stderr);
    assert!(run.stdout.contains("compare.html"), "{}", run.stdout);

    let markdown = std::fs::read_to_string(out.join("compare.md")).unwrap();
    let html = std::fs::read_to_string(out.join("compare.html")).unwrap();
    // The verdicts, as the terminal gives them.
    let terminal_row = run
        .stdout
        .lines()
        .find(|line| line.starts_with("epoll") && line.contains("closed-c10-s64"))
        .expect("the terminal lists epoll's drop");
    assert!(terminal_row.contains("worse"), "{terminal_row}");
    for document in [&markdown, &html] {
        assert!(document.contains("after (B)"), "the title names B");
        assert!(document.contains("epoll"), "the worse row is listed");
        assert!(document.contains("worse"), "its verdict is written");
        assert!(
            document.contains("cells: no significant change"),
            "same rows collapse as on the terminal"
        );
    }
    assert!(html.contains("prefers-color-scheme: dark"), "a dark theme");

    // Every chart the html shows exists, and the markdown shows the same.
    let sources = image_sources(&html);
    assert!(!sources.is_empty(), "no chart in {html}");
    for source in &sources {
        assert!(
            out.join(source).is_file(),
            "{source} is referenced but not written"
        );
        assert!(
            markdown.contains(&format!("]({source})")),
            "{source} not in the markdown"
        );
    }
    let throughput = "compare-connections-closed-s64-i0--msgs_per_sec.svg";
    assert!(sources.contains(&throughput), "{sources:?}");
    assert!(
        html.contains("alt=\"Throughput vs connections") && html.contains("epoll A "),
        "alt text from the data"
    );

    // epoll's colour strokes one solid line (A) and one dashed (B).
    let svg = std::fs::read_to_string(out.join(throughput)).unwrap();
    let epoll = "#0072B2";
    let lines: Vec<(&str, bool)> = strokes(&svg, epoll)
        .into_iter()
        .filter(|(element, _)| element.contains("stroke-width=\"2\""))
        .collect();
    assert!(
        lines.iter().any(|(_, dashed)| !dashed),
        "no solid epoll line: {lines:?}"
    );
    assert!(
        lines.iter().any(|(_, dashed)| *dashed),
        "no dashed epoll line: {lines:?}"
    );
    assert!(
        svg.contains("A: before") && svg.contains("B: after"),
        "the legend names the sets"
    );
}

#[test]
fn a_second_run_writes_the_same_bytes() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = sets(root.path());
    let out = root.path().join("comparison");
    let out_arg = path_arg(&out);
    let run = harness(&["compare", &a, &b, "--out", &out_arg]);
    assert!(run.success, "{}", run.stderr);
    let first = snapshot(&out);
    assert!(
        first.len() > 2,
        "charts besides the documents: {:?}",
        first.keys()
    );
    let run = harness(&["compare", &a, &b, "--out", &out_arg]);
    assert!(run.success, "{}", run.stderr);
    assert!(first == snapshot(&out), "a second run changed the files");
}

#[test]
fn an_unwritable_out_is_refused_in_one_line_and_nothing_is_written() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = sets(root.path());
    let file = root.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let out = file.join("comparison");
    let run = harness(&["compare", &a, &b, "--out", &path_arg(&out)]);
    assert!(!run.success, "{}", run.stdout);
    assert_eq!(run.stderr.lines().count(), 1, "{:?}", run.stderr);
    assert!(run.stderr.contains("--out"), "{}", run.stderr);
    assert!(!out.exists());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
}
