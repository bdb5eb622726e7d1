//! The report of a real HTTP result set: a small suite (`harness run`,
//! 0.3 s cells) against `faulty-http` correct and with bugs (a 500 now and
//! then, no `Date`), plaintext pipelined 1 and 4 and a static file. The
//! cells record their protocol, request and pipeline; the report has the
//! HTTP sections, with the error kinds the cells counted and the warnings
//! of a user's server apart. The servers listen on 127.0.0.1 on a port the
//! harness picked; every run is under the watchdog of `support`.

mod support;

use serde_json::Value;

fn cells(dir: &std::path::Path) -> Vec<Value> {
    let mut cells: Vec<(std::path::PathBuf, Value)> = std::fs::read_dir(dir.join("cells"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let cell = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            (path, cell)
        })
        .collect();
    cells.sort_by(|a, b| a.0.cmp(&b.0));
    cells.into_iter().map(|(_, cell)| cell).collect()
}

#[test]
fn an_http_suite_reports_pipelining_static_files_and_errors_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("http-report.toml");
    let faulty = env!("CARGO_BIN_EXE_faulty-http");
    let models = format!(
        "{{ label = \"faulty-http\", command = [\"{faulty}\", \"--port\", \"{{port}}\", \"--root\", \"{{root}}\"] }}, \
         {{ label = \"faulty-500\", command = [\"{faulty}\", \"--port\", \"{{port}}\", \"--root\", \"{{root}}\", \"--status-500-every\", \"7\", \"--no-date\"] }}"
    );
    std::fs::write(
        &suite,
        format!(
            "name = \"http-report\"\nwarmup_s = 0.1\nduration_s = 0.3\nroot = \"generated\"\nmodels = [{models}]\n\n\
             [[sweep]]\nname = \"plaintext\"\nshape = \"closed\"\nprotocol = \"http\"\nrequest = [\"plaintext\"]\nconnections = [2]\npipeline = [1, 4]\n\n\
             [[sweep]]\nname = \"static\"\nshape = \"closed\"\nprotocol = \"http\"\nrequest = [\"static:64k.bin\"]\nconnections = [2]\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("set");
    support::run_suite(&suite, &out, &["--no-syscalls", "--client-threads", "1"]);

    // Each cell says what it spoke.
    let cells = cells(&out);
    assert_eq!(cells.len(), 6, "{cells:?}");
    for cell in &cells {
        let scenario = cell["scenario"].as_str().unwrap();
        assert_eq!(cell["protocol"], "http", "{cell}");
        let request = if scenario.starts_with("http-static-64k.bin-") {
            "static:64k.bin"
        } else {
            "plaintext"
        };
        assert_eq!(cell["request"], request, "{cell}");
        let pipeline = if scenario.ends_with("-p4") { 4 } else { 1 };
        assert_eq!(cell["pipeline"], pipeline, "{cell}");
    }
    let sum = |label: &str, field: &dyn Fn(&Value) -> u64| -> u64 {
        cells
            .iter()
            .filter(|cell| cell["label"] == label)
            .map(field)
            .sum()
    };
    let status_500 = sum("faulty-500", &|cell| {
        cell["errors"]["http_status"]["500"].as_u64().unwrap_or(0)
    });
    let date_warnings = sum("faulty-500", &|cell| {
        cell["errors"]["http_date_warnings"].as_u64().unwrap_or(0)
    });
    assert!(status_500 > 0 && date_warnings > 0, "{cells:?}");

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for title in [
        "## HTTP: pipelined against unpipelined requests",
        "## HTTP: a static file against plaintext",
        "## HTTP: errors by kind",
    ] {
        assert!(report.contains(title), "no '{title}' in\n{report}");
    }
    let errors = report
        .split("## HTTP: errors by kind")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let row = |label: &str| -> String {
        errors
            .lines()
            .find(|line| line.starts_with(&format!("| {label} |")))
            .unwrap_or_else(|| panic!("no row for {label} in\n{errors}"))
            .to_owned()
    };
    assert!(
        row("faulty-500").contains(&format!("http_status 500×{status_500}")),
        "{errors}"
    );
    assert!(
        row("faulty-500").ends_with(&format!("| http_date {date_warnings} |")),
        "{errors}"
    );
    assert!(row("faulty-http").ends_with("| none | none |"), "{errors}");
    for chart in ["http-pipelining--c2", "http-static-share--64k.bin"] {
        for extension in ["svg", "png", "pdf", "csv"] {
            let file = out.join(format!("charts/{chart}.{extension}"));
            assert!(file.is_file(), "{} is missing", file.display());
        }
    }
}
