//! The deployment files under deploy/ cannot drift from the CLI: every
//! `harness` command they run is a subcommand, every option it passes is in
//! that subcommand's `--help`, and `--shard`/`--share` values parse. The
//! Kubernetes files are checked as far as they can be without a cluster:
//! valid YAML of known kinds at their API versions, pods whose volumes and
//! claims exist, Indexed Jobs that tell their pods the number of
//! completions. The README's "Running on many machines" names files that
//! exist. (The Slurm files run for real in slurm.rs.)

mod support;

use serde::Deserialize;
use serde_json::Value;
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

/// The kinds the Kubernetes files may hold, with the API version each is
/// served under in every Kubernetes release since 1.21 (Indexed Jobs).
const KINDS: [(&str, &str); 5] = [
    ("Job", "batch/v1"),
    ("Pod", "v1"),
    ("Service", "v1"),
    ("PersistentVolumeClaim", "v1"),
    ("ConfigMap", "v1"),
];

/// Every YAML document of every file under deploy/kubernetes/.
fn kubernetes_documents() -> Vec<(String, Value)> {
    let mut documents = Vec::new();
    for path in deploy_files() {
        if path.extension().is_none_or(|extension| extension != "yaml") {
            continue;
        }
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{name} is not valid YAML: {error}"));
            if !value.is_null() {
                documents.push((name.clone(), value));
            }
        }
    }
    documents
}

/// The pod template of a Job, or the pod itself.
fn pod_spec(document: &Value) -> &Value {
    match document["kind"].as_str() {
        Some("Job") => &document["spec"]["template"]["spec"],
        _ => &document["spec"],
    }
}

/// Without a cluster, what can be checked: every manifest is YAML of a
/// known kind at its API version with a name; every pod's containers have
/// a name and an image, mount only volumes the pod declares, and claim only
/// volume claims the files define; a Job's pods never restart in place.
#[test]
fn kubernetes_manifests_are_valid_yaml_of_known_kinds() {
    let documents = kubernetes_documents();
    assert!(documents.len() >= 6, "{} documents", documents.len());
    let claims: BTreeSet<&str> = documents
        .iter()
        .filter(|(_, document)| document["kind"] == "PersistentVolumeClaim")
        .filter_map(|(_, document)| document["metadata"]["name"].as_str())
        .collect();
    for (file, document) in &documents {
        let kind = document["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: a document without kind"));
        let version = KINDS
            .iter()
            .find(|(known, _)| *known == kind)
            .unwrap_or_else(|| panic!("{file}: kind {kind} is not one deploy/ uses"))
            .1;
        assert_eq!(document["apiVersion"], version, "{file}: {kind}");
        assert!(
            document["metadata"]["name"].is_string(),
            "{file}: {kind} without a name"
        );
        if !matches!(kind, "Job" | "Pod") {
            continue;
        }
        let pod = pod_spec(document);
        if kind == "Job" {
            let restart = pod["restartPolicy"].as_str();
            assert!(
                matches!(restart, Some("Never" | "OnFailure")),
                "{file}: a Job's pods need restartPolicy Never or OnFailure"
            );
        }
        let volumes: BTreeSet<&str> = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|volume| {
                if let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() {
                    assert!(
                        claims.contains(claim),
                        "{file}: claim {claim} is defined nowhere under deploy/"
                    );
                }
                volume["name"].as_str().expect("a volume's name")
            })
            .collect();
        let containers = pod["containers"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: {kind} without containers"));
        assert!(!containers.is_empty());
        for container in containers {
            assert!(
                container["name"].is_string() && container["image"].is_string(),
                "{file}: {container}"
            );
            for mount in container["volumeMounts"].as_array().into_iter().flatten() {
                let volume = mount["name"].as_str().unwrap();
                assert!(
                    volumes.contains(volume),
                    "{file}: mounts {volume}, which the pod does not declare"
                );
            }
        }
    }
}

/// An Indexed Job's pods learn their index from Kubernetes but not the
/// number of completions: each container must give HARNESS_SHARD_TOTAL the
/// Job's completions (and run them all at once), or `--shard env` /
/// `--share env` would split wrongly.
#[test]
fn indexed_jobs_tell_their_pods_the_total() {
    let mut indexed = 0;
    for (file, document) in kubernetes_documents() {
        let spec = &document["spec"];
        if spec["completionMode"] != "Indexed" {
            continue;
        }
        indexed += 1;
        let completions = spec["completions"]
            .as_u64()
            .unwrap_or_else(|| panic!("{file}: completions"));
        assert_eq!(spec["parallelism"].as_u64(), Some(completions), "{file}");
        for container in pod_spec(&document)["containers"].as_array().unwrap() {
            let total = container["env"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|variable| variable["name"] == "HARNESS_SHARD_TOTAL")
                .and_then(|variable| variable["value"].as_str())
                .unwrap_or_else(|| panic!("{file} does not set HARNESS_SHARD_TOTAL"));
            assert_eq!(
                total.parse::<u64>().ok(),
                Some(completions),
                "{file}: HARNESS_SHARD_TOTAL"
            );
        }
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
