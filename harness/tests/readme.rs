//! The README cannot drift from the code: every `harness` subcommand and
//! option it lists, and every model option it names, is accepted by the real
//! binary; its test command is the one `.ci/run` runs.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use support::help;

const README: &str = include_str!("../../README.md");
const CI: &str = include_str!("../../.ci/run");

fn options(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_subcommand_and_option_in_the_readme_exists() {
    // The usage block: lines starting with `harness `, continued by indented lines.
    let mut usage: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = None;
    let mut in_code = false;
    for line in README.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            current = None;
            continue;
        }
        if !in_code {
            continue;
        }
        if let Some(rest) = line.strip_prefix("harness ") {
            let subcommand = rest.split_whitespace().next().unwrap().to_owned();
            usage.entry(subcommand.clone()).or_default().extend(options(rest));
            current = Some(subcommand);
        } else if let Some(subcommand) = current.as_ref().filter(|_| line.starts_with("    ")) {
            usage.get_mut(subcommand).unwrap().extend(options(line));
        } else {
            current = None;
        }
    }
    for subcommand in ["serve", "bench", "run", "report", "compare", "merge", "tour"] {
        assert!(
            usage.contains_key(subcommand),
            "the README's usage block lacks `harness {subcommand}`"
        );
    }
    for (subcommand, listed) in &usage {
        let help = if subcommand == "serve" {
            help(&["serve", "epoll"])
        } else {
            help(&[subcommand])
        };
        for option in listed {
            assert!(
                help.contains(option.as_str()),
                "README: `harness {subcommand} {option}` is not an option:\n{help}"
            );
        }
    }
}

#[test]
fn every_model_option_in_the_readme_exists() {
    let line = README
        .lines()
        .skip_while(|line| !line.starts_with("Model options:"))
        .take_while(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!line.is_empty(), "the README lists no model options");
    for model in echo_core::MODELS.into_iter().chain(echo_core::DATAGRAM_MODELS) {
        for mention in line.split(&format!("`{model} ")).skip(1) {
            let listed = mention.split('`').next().unwrap();
            let help = help(&["serve", model]);
            for option in options(listed) {
                assert!(
                    help.contains(&option),
                    "README: `{model} {option}` is not an option:\n{help}"
                );
            }
        }
    }
}

#[test]
fn the_readme_test_command_is_what_ci_runs() {
    assert!(README.contains("cargo run --release -p harness -- run"));
    assert!(README.contains("\ncargo test --workspace\n"));
    assert!(
        CI.lines().any(|line| line.trim() == "cargo test --workspace"),
        ".ci/run must run the README's test command"
    );
}

/// Every TOML block in the README is a suite the harness accepts, and the
/// shell blocks' `--server-cmd` examples name files that exist.
#[test]
fn the_readme_suite_examples_are_valid_suites() {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in README.lines() {
        match (&mut current, line.trim_start().starts_with("```")) {
            (None, true) if line.trim() == "```toml" => current = Some(String::new()),
            (Some(block), true) => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), false) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    assert!(!blocks.is_empty(), "the README has no suite example");
    let dir = tempfile::tempdir().unwrap();
    for (index, block) in blocks.iter().enumerate() {
        let path = dir.path().join(format!("suite{index}.toml"));
        std::fs::write(&path, block).unwrap();
        // An unknown model in --models fails only after the suite is read.
        let output = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args([
                "run",
                "--suite",
                path.to_str().unwrap(),
                "--models",
                "no-such-model",
            ])
            .output()
            .expect("harness runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("'no-such-model' is neither in suite"),
            "README suite example {index} is not a valid suite: {stderr}\n{block}"
        );
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for word in README.split_whitespace() {
        if word.starts_with("harness/examples/") {
            let path = word.trim_matches(|c: char| "'\"`,".contains(c));
            assert!(
                std::path::Path::new(root).join(path).exists(),
                "the README names {path}, which does not exist"
            );
        }
    }
}

/// The README's findings of the reference set are the report's own: the
/// block between its markers is `results/reference/report.md`'s Findings,
/// with the figure links made relative to the repository.
#[test]
fn the_readme_findings_are_the_reference_reports() {
    let report = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../results/reference/report.md"
    ))
    .expect("results/reference/report.md");
    let generated = report
        .split("## Findings\n\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("report.md has Findings")
        .replace("](charts/", "](results/reference/charts/");
    let in_readme = README
        .split("<!-- generated findings: begin -->\n")
        .nth(1)
        .and_then(|rest| rest.split("\n<!-- generated findings: end -->").next())
        .expect("the README has the generated findings block");
    assert_eq!(
        in_readme, generated,
        "the README's findings differ from results/reference/report.md's: copy them again"
    );
}
