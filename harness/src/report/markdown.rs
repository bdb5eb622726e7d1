//! `report.md`: the document with charts linked by relative path.

use super::document::{Document, Section, Table};
use std::fmt::Write;

pub fn render(document: &Document) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}\n\n{}\n\n## Findings\n",
        document.title, document.headline
    );
    if document.findings.is_empty() {
        out.push_str("No rule found a difference the data supports (see the sections below).\n");
    }
    for finding in &document.findings {
        match finding.chart {
            Some(index) => {
                let _ = writeln!(
                    out,
                    "- {} ([figure](charts/{}))",
                    escape(&finding.text),
                    document.charts[index].file
                );
            }
            None => {
                let _ = writeln!(out, "- {}", escape(&finding.text));
            }
        }
    }
    if let Some(index) = document.findings.iter().find_map(|finding| finding.chart) {
        let chart = &document.charts[index];
        let _ = writeln!(out, "\n![{}](charts/{})", escape(&chart.title), chart.file);
    }
    out.push_str("\n## Contents\n\n");
    for section in document.sections.iter().chain(&document.appendix) {
        let _ = writeln!(out, "- [{}](#{})", escape(&section.title), section.id);
    }
    for section in &document.sections {
        render_section(&mut out, document, section, "");
    }
    for section in &document.appendix {
        render_section(&mut out, document, section, "Appendix: ");
    }
    out
}

fn render_section(out: &mut String, document: &Document, section: &Section, prefix: &str) {
    let _ = writeln!(
        out,
        "\n<a id=\"{}\"></a>\n\n## {prefix}{}\n",
        section.id,
        escape(&section.title)
    );
    for paragraph in &section.paragraphs {
        let _ = writeln!(out, "{}\n", escape(paragraph));
    }
    for &index in &section.charts {
        let chart = &document.charts[index];
        let _ = writeln!(out, "![{}](charts/{})\n", escape(&chart.title), chart.file);
    }
    if let Some(section_table) = &section.table {
        table(out, section_table);
    }
}

pub(super) fn table(out: &mut String, table: &Table) {
    let row = |cells: &[String]| {
        let cells: Vec<String> = cells
            .iter()
            .map(|cell| escape(cell).replace('|', "\\|"))
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    out.push_str(&row(&table.headers));
    out.push_str(&format!("|{}\n", "---|".repeat(table.headers.len())));
    for cells in &table.rows {
        out.push_str(&row(cells));
    }
}

/// Characters that Markdown would read as markup (underscores inside words
/// are text in CommonMark, and no line starts with the text).
pub(super) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if "\\`*[]<>".contains(character) {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}
