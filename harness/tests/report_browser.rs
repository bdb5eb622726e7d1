//! `report.html` in a real browser: headless Chromium loads the report, and a
//! check script (added to a copy of the page) asserts that every chart is
//! present and visible and that nothing was fetched or failed to load.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it when absent). Without it
//! the test fails under CI (`CI` set) and is skipped with a note elsewhere.

mod report_fixture;

use report_fixture::{faults_json, harness, path_arg, suite, write_result_set};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHECK_SCRIPT: &str = r#"
<script>
window.addEventListener('load', () => {
  const charts = [...document.querySelectorAll('svg.chart')];
  const hidden = charts.filter((svg) => {
    const box = svg.getBoundingClientRect();
    const style = getComputedStyle(svg);
    const drawn = svg.getBBox();
    return !(box.width > 100 && box.height > 100 && drawn.width > 50 && drawn.height > 50)
      || style.display === 'none' || style.visibility !== 'visible' || Number(style.opacity) === 0;
  }).map((svg) => svg.id || '(no id)');
  const fetched = performance.getEntriesByType('resource').map((entry) => entry.name)
    .filter((name) => !name.startsWith('data:'));
  const brokenImages = [...document.images].filter((img) => !img.complete || img.naturalWidth === 0).length;
  const result = { charts: charts.length, ids: charts.map((svg) => svg.id), hidden, fetched, brokenImages };
  document.body.setAttribute('data-check', JSON.stringify(result));
});
</script>
"#;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .map(|name| Path::new("/usr/bin").join(name))
        .find(|path| path.exists())
}

#[test]
fn every_chart_is_present_and_visible_in_a_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed; .ci/run installs it (apt-get install chromium)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium, or run .ci/run)");
        return;
    };
    let set = tempfile::tempdir().unwrap();
    write_result_set(set.path(), &suite(1), 1);
    // A tour's steps open the page; their charts must show as well.
    let step = |number: u32, verdict: &str, chart: serde_json::Value| {
        serde_json::json!({
            "step": number, "title": "a claim", "claim": "A claim.", "source": "the course",
            "measures": "what is measured", "verdict": verdict, "reason": "why",
            "measured": if chart.is_null() { serde_json::json!({}) } else { serde_json::json!({ "a_ms": 1000.0 }) },
            "threshold": "a threshold", "chart": chart, "mode": "quick", "cells": []
        })
    };
    let chart = serde_json::json!({
        "title": "how long clients waited", "unit": "milliseconds",
        "bars": [
            { "label": "A: first echo", "value": 0.05, "model": "single" },
            { "label": "B: no echo, A stays", "value": 1000.0, "model": "single" },
            { "label": "an unknown model", "value": 0.1 }
        ]
    });
    let tour = serde_json::json!([
        step(1, "confirmed", chart),
        step(2, "skipped", serde_json::Value::Null)
    ]);
    std::fs::write(set.path().join("tour.json"), tour.to_string()).unwrap();
    // A robustness matrix too (`harness faults`), drawn as a chart.
    std::fs::write(set.path().join("faults.json"), faults_json().to_string()).unwrap();
    let report = harness(&["report", &path_arg(set.path())]);
    assert!(report.success, "report failed: {}", report.stderr);

    let chart_files = std::fs::read_dir(set.path().join("charts"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|ext| ext == "svg")
        })
        .count();
    assert!(chart_files > 0, "the report wrote no charts");

    let html = std::fs::read_to_string(set.path().join("report.html")).unwrap();
    let checked = html.replacen("</body>", &format!("{CHECK_SCRIPT}</body>"), 1);
    assert_ne!(checked, html, "report.html has no </body>");
    let page = set.path().join("check.html");
    std::fs::write(&page, checked).unwrap();

    let profile = tempfile::tempdir().unwrap();
    let dom = run_with_deadline(
        Command::new(browser).args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
            "--virtual-time-budget=5000",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            &format!("file://{}", page.display()),
        ]),
        Duration::from_secs(60),
    );
    let marker = "data-check=\"";
    let start = dom.find(marker).unwrap_or_else(|| {
        panic!(
            "the check script did not run; the browser printed:\n{}",
            &dom[..dom.len().min(2000)]
        )
    }) + marker.len();
    let end = start + dom[start..].find('"').unwrap();
    let json = dom[start..end].replace("&quot;", "\"").replace("&amp;", "&");
    let result: serde_json::Value = serde_json::from_str(&json).unwrap();
    eprintln!("browser check: {result}");

    assert_eq!(
        result["charts"], chart_files,
        "charts in the page vs charts/*.svg: {result}"
    );
    assert_eq!(
        result["hidden"],
        serde_json::json!([]),
        "charts not visible: {result}"
    );
    assert_eq!(
        result["fetched"],
        serde_json::json!([]),
        "the page fetched something: {result}"
    );
    assert_eq!(result["brokenImages"], 0, "{result}");
    let ids = result["ids"].as_array().unwrap();
    assert!(
        ids.iter().any(|id| id == "chart-tour-step01"),
        "the tour's chart is not in the page: {result}"
    );
    for chart in ["chart-faults-matrix", "chart-fault-timeline--slowloris"] {
        assert!(ids.iter().any(|id| id == chart), "{chart} is not drawn: {result}");
    }
    let unique: std::collections::BTreeSet<_> = ids.iter().map(|id| id.to_string()).collect();
    assert_eq!(unique.len(), ids.len(), "chart ids repeat: {result}");
}

/// Runs the browser, killed after `deadline`; returns its stdout.
fn run_with_deadline(command: &mut Command, deadline: Duration) -> String {
    let output = tempfile::NamedTempFile::new().unwrap();
    let mut child = command
        .stdout(output.reopen().unwrap())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let until = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if Instant::now() > until {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("chromium did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(output.path()).unwrap()
}

/// Where the title, the findings and the first figure lie in a 1280×800
/// window, as JSON in `data-first-screen`.
const FIRST_SCREEN_SCRIPT: &str = r#"
<script>
window.addEventListener('load', () => {
  const box = (element) => {
    if (!element) return null;
    const rect = element.getBoundingClientRect();
    return { top: rect.top, bottom: rect.bottom, height: rect.height };
  };
  const result = {
    viewport: window.innerHeight,
    title: box(document.querySelector('h1')),
    findings: box(document.querySelector('#findings')),
    firstFinding: box(document.querySelector('ul.findings li')),
    figure: box(document.querySelector('svg.chart')),
  };
  document.body.setAttribute('data-first-screen', JSON.stringify(result));
});
</script>
"#;

#[test]
fn the_first_screen_shows_the_title_the_findings_and_the_first_figure() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed; .ci/run installs it (apt-get install chromium)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium, or run .ci/run)");
        return;
    };
    let set = tempfile::tempdir().unwrap();
    write_result_set(set.path(), &suite(3), 3);
    let report = harness(&["report", &path_arg(set.path())]);
    assert!(report.success, "report failed: {}", report.stderr);
    let html = std::fs::read_to_string(set.path().join("report.html")).unwrap();
    let page = set.path().join("first-screen.html");
    std::fs::write(
        &page,
        html.replacen("</body>", &format!("{FIRST_SCREEN_SCRIPT}</body>"), 1),
    )
    .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let dom = run_with_deadline(
        Command::new(browser).args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--window-size=1280,800",
            "--virtual-time-budget=5000",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            &format!("file://{}", page.display()),
        ]),
        Duration::from_secs(60),
    );
    let marker = "data-first-screen=\"";
    let start = dom.find(marker).expect("the first-screen script ran") + marker.len();
    let end = start + dom[start..].find('"').unwrap();
    let json = dom[start..end].replace("&quot;", "\"").replace("&amp;", "&");
    let screen: serde_json::Value = serde_json::from_str(&json).unwrap();
    eprintln!("first screen: {screen}");
    let viewport = screen["viewport"].as_f64().unwrap();
    let within = |name: &str| {
        let element = &screen[name];
        assert!(!element.is_null(), "no {name} in the page: {screen}");
        let (top, bottom) = (
            element["top"].as_f64().unwrap(),
            element["bottom"].as_f64().unwrap(),
        );
        assert!(
            top >= 0.0 && bottom <= viewport,
            "{name} is not on the first screen: {screen}"
        );
    };
    for name in ["title", "findings", "firstFinding", "figure"] {
        within(name);
    }
    assert!(
        screen["figure"]["height"].as_f64().unwrap() > 200.0,
        "the first figure is readable, not a thumbnail: {screen}"
    );
}
