//! The deployment files under deploy/ cannot drift from the CLI: every
//! `harness` command they run is a subcommand, every option it passes is in
//! that subcommand's `--help`, and `--shard`/`--share` values parse. The
//! Kubernetes Indexed Jobs tell their pods the number of completions, and
//! the README's "Running on many machines" names files that exist.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::help;

const README: &str = include_str!("../../README.md");
const SUBCOMMANDS: [&str; 6] = ["serve", "bench", "run", "report", "compare", "merge"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn deploy_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("deploy/ exists") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("deploy"), &mut files);
    files.sort();
    files
}

/// A `harness SUBCOMMAND ARG…` found in a file.
#[derive(Debug)]
struct Invocation {
    file: String,
    words: Vec<String>,
}

/// Every `harness SUBCOMMAND …` in `text`: shell lines (joined at a final
/// `\`), YAML flow lists and `sh -c` strings alike, split at whitespace,
/// quotes, brackets and commas; an invocation ends at a shell separator.
fn invocations(file: &str, text: &str) -> Vec<Invocation> {
    let text = text.replace("\\\n", " ");
    let mut found = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || "[]\",'".contains(c))
            .filter(|word| !word.is_empty())
            .collect();
        for (index, word) in words.iter().enumerate() {
            let is_harness = *word == "harness" || word.ends_with("/harness");
            let Some(subcommand) = words.get(index + 1) else {
                continue;
            };
            if is_harness && SUBCOMMANDS.contains(subcommand) {
                let rest = words[index + 1..]
                    .iter()
                    .take_while(|word| !matches!(**word, ";" | "&&" | "||" | "|"))
                    .map(|word| word.to_string())
                    .collect();
                found.push(Invocation {
                    file: file.to_owned(),
                    words: rest,
                });
            }
        }
    }
    found
}

/// The YAML flow list after `args:` on a line, as words.
fn args_list(line: &str) -> Option<Vec<String>> {
    let list = line.trim_start().strip_prefix("args:")?.trim();
    let inner = list.strip_prefix('[')?.strip_suffix(']')?;
    Some(
        inner
            .split(',')
            .map(|word| word.trim().trim_matches('"').to_owned())
            .collect(),
    )
}

#[test]
fn every_command_and_option_in_deploy_exists() {
    let files = deploy_files();
    let mut all = Vec::new();
    for path in &files {
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        let mut found = invocations(&name, &text);
        // Container args run the image's ENTRYPOINT, harness.
        for line in text.lines() {
            if let Some(words) = args_list(line) {
                found.push(Invocation {
                    file: name.clone(),
                    words,
                });
            }
        }
        if !name.ends_with("Containerfile") {
            assert!(!found.is_empty(), "{name} runs no harness command");
        }
        all.extend(found);
    }
    let mut used = BTreeSet::new();
    for invocation in &all {
        let subcommand = invocation.words[0].as_str();
        assert!(
            SUBCOMMANDS.contains(&subcommand),
            "{}: `harness {}` is not a subcommand",
            invocation.file,
            invocation.words.join(" ")
        );
        used.insert(subcommand.to_owned());
        let help = if subcommand == "serve" {
            help(&["serve", &invocation.words[1]])
        } else {
            help(&[subcommand])
        };
        for (index, word) in invocation.words.iter().enumerate() {
            let Some(option) = word.strip_prefix("--") else {
                continue;
            };
            let option = option.split('=').next().unwrap();
            assert!(
                help.contains(&format!("--{option}")),
                "{}: `harness {subcommand} --{option}` is not an option:\n{help}",
                invocation.file
            );
            if option == "shard" || option == "share" {
                let value = &invocation.words[index + 1];
                let fraction = value.split_once('/').is_some_and(|(k, n)| {
                    k.parse::<u32>()
                        .is_ok_and(|k| n.parse::<u32>().is_ok_and(|n| k >= 1 && k <= n))
                });
                assert!(
                    value == "env" || fraction,
                    "{}: --{option} {value} is neither env nor K/N",
                    invocation.file
                );
            }
        }
    }
    for subcommand in ["run", "bench", "merge", "serve"] {
        assert!(
            used.contains(subcommand),
            "deploy/ never runs `harness {subcommand}`"
        );
    }
    let container = std::fs::read_to_string(root().join("deploy/Containerfile")).unwrap();
    assert!(container.contains("cargo build --release --locked -p harness"));
    assert!(container.contains("ENTRYPOINT [\"harness\"]"));
}

/// An Indexed Job's pods learn their index from Kubernetes but not the
/// number of completions: each manifest must give HARNESS_SHARD_TOTAL the
/// same number, or `--shard env` / `--share env` would split wrongly.
#[test]
fn indexed_jobs_tell_their_pods_the_total() {
    let mut indexed = 0;
    for path in deploy_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.contains("completionMode: Indexed") {
            continue;
        }
        indexed += 1;
        let number_after = |key: &str| -> Option<u32> {
            let line = text.lines().find(|line| line.trim_start().starts_with(key))?;
            line.trim_start()[key.len()..]
                .trim()
                .trim_matches('"')
                .parse()
                .ok()
        };
        let completions = number_after("completions:").expect("completions");
        let lines: Vec<&str> = text.lines().collect();
        let total_at = lines
            .iter()
            .position(|line| line.contains("name: HARNESS_SHARD_TOTAL"))
            .unwrap_or_else(|| panic!("{} does not set HARNESS_SHARD_TOTAL", path.display()));
        let total: u32 = lines[total_at + 1]
            .trim()
            .strip_prefix("value:")
            .expect("value on the next line")
            .trim()
            .trim_matches('"')
            .parse()
            .unwrap();
        assert_eq!(total, completions, "{}", path.display());
        assert_eq!(
            number_after("parallelism:"),
            Some(completions),
            "{}",
            path.display()
        );
    }
    assert!(indexed >= 2, "deploy/ has {indexed} Indexed Jobs");
}

#[test]
fn the_readme_names_the_deploy_files_and_commands() {
    let section = README
        .split("## Running on many machines")
        .nth(1)
        .expect("README has a 'Running on many machines' section");
    let section = section.split("\n## ").next().unwrap();
    let mut named = 0;
    for word in section.split(|c: char| c.is_whitespace() || "()`'\",".contains(c)) {
        if let Some(path) = word.strip_prefix("deploy/") {
            let path = path.trim_end_matches(['.', ':', ';']);
            assert!(
                root().join("deploy").join(path).exists(),
                "the README names deploy/{path}, which does not exist"
            );
            named += 1;
        }
    }
    assert!(named >= 4, "the section names {named} deploy files");
    let found = invocations("README.md", section);
    assert!(found.iter().any(|invocation| invocation.words[0] == "merge"));
    for invocation in found {
        let subcommand = invocation.words[0].as_str();
        let help = help(&[subcommand]);
        for word in &invocation.words {
            if let Some(option) = word.strip_prefix("--") {
                let option = option.split('=').next().unwrap();
                assert!(
                    help.contains(&format!("--{option}")),
                    "README: `harness {subcommand} --{option}`"
                );
            }
        }
    }
}
