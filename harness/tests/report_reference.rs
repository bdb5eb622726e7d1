//! The committed reference result set regenerates byte for byte: a copy of
//! `results/reference` run through `harness report` gives the committed
//! charts, `report.md` and `report.html` exactly. (After a change to the
//! report step, run `harness report results/reference` and commit the result.)

mod report_fixture;

use report_fixture::{harness, path_arg, snapshot};
use std::path::Path;

#[test]
fn the_reference_set_regenerates_byte_for_byte() {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference");
    let committed = snapshot(&reference);
    assert!(
        committed.keys().any(|path| path.starts_with("cells")),
        "no cells in results/reference"
    );

    let copy = tempfile::tempdir().unwrap();
    for path in committed.keys() {
        if path.starts_with("cells") || path == Path::new("manifest.json") || path == Path::new("summary.csv")
        {
            let target = copy.path().join(path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, &committed[path]).unwrap();
        }
    }
    let report = harness(&["report", &path_arg(copy.path())]);
    assert!(report.success, "report failed: {}", report.stderr);

    let regenerated = snapshot(copy.path());
    let generated: Vec<_> = committed
        .keys()
        .filter(|path| {
            // (Path::starts_with compares whole components: "report.md" is
            // not under "report".)
            path.starts_with("charts") || path.to_string_lossy().starts_with("report.")
        })
        .collect();
    assert!(
        generated.iter().any(|path| path.as_os_str() == "report.md")
            && generated.iter().any(|path| path.as_os_str() == "report.html"),
        "the reference set has no report.md or report.html"
    );
    assert!(generated.len() > 10, "the reference set has no report");
    for path in generated {
        let again = regenerated
            .get(path)
            .unwrap_or_else(|| panic!("{} was not regenerated", path.display()));
        assert!(
            again == &committed[path],
            "{} differs from the committed file",
            path.display()
        );
    }
    // PNG and PDF exports are not committed (.gitignore): they are checked
    // byte-identical across regenerations in report_options.rs.
    let extra: Vec<_> = regenerated
        .keys()
        .filter(|path| !committed.contains_key(*path))
        .filter(|path| !path.extension().is_some_and(|ext| ext == "png" || ext == "pdf"))
        .collect();
    assert!(
        extra.is_empty(),
        "report wrote files the reference set lacks: {extra:?}"
    );
}
