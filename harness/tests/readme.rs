//! The README cannot drift from the code: every `harness` subcommand and
//! option it lists, and every model option it names, is accepted by the real
//! binary; its test command is the one `.ci/run` runs.

use std::collections::BTreeMap;
use std::process::Command;

const README: &str = include_str!("../../README.md");
const CI: &str = include_str!("../../.ci/run");

/// `harness SUBCOMMAND --help` (or `harness serve MODEL --help`).
fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .arg("--help")
        .output()
        .expect("harness runs");
    assert!(output.status.success(), "harness {args:?} --help failed");
    String::from_utf8(output.stdout).unwrap()
}

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
    for subcommand in ["serve", "bench", "run", "report", "compare"] {
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
    for model in echo_core::MODELS {
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
