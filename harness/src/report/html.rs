//! `report.html`: one self-contained page, charts inlined as `<svg
//! class="chart">`, a few lines of CSS, no scripts, fonts or network.

use super::document::{Document, Section, Table};
use std::fmt::Write;

pub(super) const STYLE: &str = "\
body{font-family:sans-serif;max-width:1240px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child,td:last-child,th:last-child{text-align:left}
table.manifest td{text-align:left}
figure{margin:1em 0}figcaption{font-size:.9em;color:#555}
svg.chart{display:block;max-width:100%;height:auto;border:1px solid #eee;background:#fff}
ul.findings{padding-left:1.2em;font-size:.92em}ul.findings li{margin:.3em 0}
.lead{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1.5em;align-items:start}
.lead h2{margin-top:.5em}@media (max-width:1000px){.lead{display:block}}nav.contents{font-size:.85em;margin:1em 0}
@media (prefers-color-scheme: dark){body{background:#161616;color:#ddd}a{color:#8cb4ff}
th{background:#2a2a2a}th,td{border-color:#444}h2{border-color:#444}figcaption{color:#aaa}svg.chart{border-color:#333}}
";

/// `svgs[i]` is the SVG document of `document.charts[i]`.
pub fn render(document: &Document, svgs: &[String]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n<p>{headline}</p>\n",
        title = escape(&document.title),
        headline = escape(&document.headline),
    );
    // The findings, and beside them the figure of the first one.
    let headline = document.findings.iter().find_map(|finding| finding.chart);
    out.push_str("<div class=\"lead\">\n<div>\n<h2 id=\"findings\">Findings</h2>\n<ul class=\"findings\">\n");
    if document.findings.is_empty() {
        out.push_str("<li>No rule found a difference the data supports (see the sections below).</li>\n");
    }
    for finding in &document.findings {
        let link = finding.chart.map_or_else(String::new, |index| {
            format!(
                " (<a href=\"#{}\">figure</a>)",
                chart_id(&document.charts[index].file)
            )
        });
        let _ = writeln!(out, "<li>{}{link}</li>", escape(&finding.text));
    }
    out.push_str("</ul>\n</div>\n");
    if let Some(index) = headline {
        figure(&mut out, document, svgs, index);
    }
    out.push_str("</div>\n");
    out.push_str("<nav class=\"contents\">Contents: ");
    let entries: Vec<String> = document
        .sections
        .iter()
        .chain(&document.appendix)
        .map(|section| format!("<a href=\"#{}\">{}</a>", section.id, escape(&section.title)))
        .collect();
    out.push_str(&entries.join(" · "));
    out.push_str("</nav>\n");
    for section in &document.sections {
        render_section(&mut out, document, svgs, section, "", headline);
    }
    for section in &document.appendix {
        render_section(&mut out, document, svgs, section, "Appendix: ", headline);
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The id of a chart's `<svg>` element, which findings link to.
fn chart_id(file: &str) -> String {
    format!("chart-{}", file.trim_end_matches(".svg"))
}

/// `headline`: the chart drawn beside the findings, linked here instead.
fn render_section(
    out: &mut String,
    document: &Document,
    svgs: &[String],
    section: &Section,
    prefix: &str,
    headline: Option<usize>,
) {
    let _ = writeln!(
        out,
        "<section>\n<h2 id=\"{}\">{prefix}{}</h2>",
        section.id,
        escape(&section.title)
    );
    for paragraph in &section.paragraphs {
        let _ = writeln!(out, "<p>{}</p>", escape(paragraph));
    }
    for &index in &section.charts {
        if Some(index) == headline {
            let chart = &document.charts[index];
            let _ = writeln!(
                out,
                "<p><a href=\"#{}\">{}</a>: shown beside the findings.</p>",
                chart_id(&chart.file),
                escape(&chart.title)
            );
        } else {
            figure(out, document, svgs, index);
        }
    }
    if let Some(section_table) = &section.table {
        table(out, section_table);
    }
    out.push_str("</section>\n");
}

/// One chart, inlined, its alt text written from its data.
fn figure(out: &mut String, document: &Document, svgs: &[String], index: usize) {
    let chart = &document.charts[index];
    let opening = format!(
        "<svg class=\"chart\" id=\"{}\" role=\"img\" aria-label=\"{}\" ",
        escape(&chart_id(&chart.file)),
        escape(&super::charts::alt_text(chart))
    );
    let svg = svgs[index].replacen("<svg ", &opening, 1);
    let _ = writeln!(
        out,
        "<figure>\n{}<figcaption>{}</figcaption>\n</figure>",
        svg,
        escape(&chart.title)
    );
}

pub(super) fn table(out: &mut String, table: &Table) {
    out.push_str("<table>\n<tr>");
    for header in &table.headers {
        let _ = write!(out, "<th>{}</th>", escape(header));
    }
    out.push_str("</tr>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

pub(super) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            other => escaped.push(other),
        }
    }
    escaped
}
