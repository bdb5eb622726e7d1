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
        .filter(|name| name.ends_with(".svg"))
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

#[test]
fn every_chart_is_exported_as_png_pdf_and_csv_byte_identical_on_regeneration() {
    let set = tempfile::tempdir().unwrap();
    write_result_set(set.path(), &suite(3), 3);
    let mut runs = Vec::new();
    for _ in 0..2 {
        let out = tempfile::tempdir().unwrap();
        let run = harness(&["report", &path_arg(set.path()), "--out", &path_arg(out.path())]);
        assert!(run.success, "report failed: {}", run.stderr);
        runs.push((snapshot(out.path()), out));
    }
    let (first, second) = (&runs[0].0, &runs[1].0);
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in first {
        assert!(
            second[path] == *bytes,
            "{} differs between two regenerations",
            path.display()
        );
    }
    let svgs: Vec<&Path> = first
        .keys()
        .map(|path| path.as_path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "svg"))
        .collect();
    assert!(svgs.len() > 8);
    for svg in svgs {
        let png = &first[&svg.with_extension("png")];
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a PNG",
            svg.display()
        );
        // IHDR: width and height, big-endian, at bytes 16..24.
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        if !svg.to_string_lossy().contains("timeline") {
            assert_eq!((width, height), (1920, 1080), "{}", svg.display());
        }
        // pHYs: 192 dpi, in pixels per metre, so the figure keeps its size.
        let decoder = png::Decoder::new(std::io::Cursor::new(png.as_slice()));
        let reader = decoder.read_info().unwrap();
        let dims = reader.info().pixel_dims.expect("a pHYs chunk");
        assert_eq!(
            (dims.xppu, dims.yppu, dims.unit),
            (7559, 7559, png::Unit::Meter),
            "{}",
            svg.display()
        );
        let pdf = &first[&svg.with_extension("pdf")];
        assert!(pdf.starts_with(b"%PDF-"), "{} is not a PDF", svg.display());
        assert!(
            pdf.windows(b"FontFile2".len())
                .any(|window| window == b"FontFile2"),
            "{}: the PDF embeds its font",
            svg.display()
        );
    }
    let csv = String::from_utf8(first[Path::new("charts/connections-closed-s64-i0--throughput.csv")].clone())
        .unwrap();
    assert!(
        csv.starts_with("label,x,median,low,high,min,max,interval,runs,flagged\n"),
        "{csv}"
    );
    assert!(csv.contains("\nepoll,100,"), "{csv}");
    let tex = String::from_utf8(first[Path::new("summary.tex")].clone()).unwrap();
    assert!(tex.contains("\\toprule") && tex.contains("\\bottomrule"), "{tex}");
    assert!(tex.contains("closed-c100-s64 & epoll & 3 & "), "{tex}");
}
