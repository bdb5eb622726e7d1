//! Suites: which models, which loads. Built-in suites are TOML files under
//! `harness/suites/`, compiled in; `--suite FILE.toml` reads the same format.
//!
//! ```toml
//! name = "quick"
//! warmup_s = 1.0
//! duration_s = 3.0
//! models = ["epoll", { label = "epoll-edge", model = "epoll", args = ["--edge"] }]
//!
//! [[sweep]]            # every combination of the lists below is one scenario
//! name = "closed"
//! shape = "closed"     # closed | open | churn
//! connections = [1, 10, 100]
//! size = [64]          # bytes per message
//! idle = [0]           # silent extra connections (optional)
//! rate = [20000]       # open loop only: offered messages per second
//! ```

use crate::bench::{self, LoadSpec};
use crate::results::cell::Shape;
use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

const QUICK: &str = include_str!("../../suites/quick.toml");
const FULL: &str = include_str!("../../suites/full.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub models: Vec<ModelEntry>,
    #[serde(rename = "sweep")]
    pub sweeps: Vec<Sweep>,
}

/// A model to run: a plain model name, or a labelled variant with options.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelEntry {
    Name(String),
    Variant {
        label: String,
        model: String,
        #[serde(default)]
        args: Vec<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    pub name: String,
    pub shape: Shape,
    pub connections: Vec<u32>,
    pub size: Vec<u32>,
    #[serde(default = "no_idle")]
    pub idle: Vec<u32>,
    #[serde(default)]
    pub rate: Vec<f64>,
}

fn no_idle() -> Vec<u32> {
    vec![0]
}

/// A model as the runner starts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRun {
    pub label: String,
    pub model: String,
    pub args: Vec<String>,
}

/// One scenario: a named load, run against every model.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub load: LoadSpec,
}

impl Suite {
    /// `quick`, `full`, or a path to a suite file.
    pub fn load(name_or_path: &str) -> Result<Suite> {
        let (source, text) = match name_or_path {
            "quick" => ("built-in suite 'quick'".to_owned(), QUICK.to_owned()),
            "full" => ("built-in suite 'full'".to_owned(), FULL.to_owned()),
            path => {
                let text = std::fs::read_to_string(Path::new(path)).with_context(|| {
                    format!("cannot read suite '{path}' (the built-in suites are 'quick' and 'full')")
                })?;
                (format!("suite file {path}"), text)
            }
        };
        let suite: Suite = toml::from_str(&text).with_context(|| format!("{source} is not a valid suite"))?;
        suite
            .check()
            .with_context(|| format!("{source} is not a valid suite"))?;
        Ok(suite)
    }

    fn check(&self) -> Result<()> {
        ensure!(
            self.warmup_s >= 0.0 && self.warmup_s <= 600.0,
            "warmup_s must be 0 to 600"
        );
        ensure!(
            self.duration_s > 0.0 && self.duration_s <= 3600.0,
            "duration_s must be above 0 and at most 3600"
        );
        ensure!(!self.models.is_empty(), "models is empty");
        ensure!(!self.sweeps.is_empty(), "there is no [[sweep]]");
        for run in self.model_runs() {
            ensure!(
                echo_core::MODELS.contains(&run.model.as_str()),
                "unknown model '{}'; the models are: {}",
                run.model,
                echo_core::MODELS.join(", ")
            );
        }
        for sweep in &self.sweeps {
            ensure!(
                !sweep.connections.is_empty() && !sweep.size.is_empty(),
                "sweep '{}' needs connections and size",
                sweep.name
            );
            ensure!(
                sweep.shape != Shape::Open || !sweep.rate.is_empty(),
                "open-loop sweep '{}' needs a rate list",
                sweep.name
            );
            ensure!(
                sweep.shape == Shape::Open || sweep.rate.is_empty(),
                "sweep '{}': rate applies to open loop only",
                sweep.name
            );
        }
        for scenario in self.scenarios() {
            bench::check_load(&scenario.load).with_context(|| format!("scenario {}", scenario.name))?;
        }
        Ok(())
    }

    pub fn model_runs(&self) -> Vec<ModelRun> {
        self.models
            .iter()
            .map(|entry| match entry {
                ModelEntry::Name(name) => ModelRun {
                    label: name.clone(),
                    model: name.clone(),
                    args: Vec::new(),
                },
                ModelEntry::Variant { label, model, args } => ModelRun {
                    label: label.clone(),
                    model: model.clone(),
                    args: args.clone(),
                },
            })
            .collect()
    }

    /// Keeps only the models whose label (or model name) is in `wanted`.
    pub fn select_models(&mut self, wanted: &[String]) -> Result<()> {
        let runs = self.model_runs();
        for name in wanted {
            if !runs.iter().any(|run| &run.label == name || &run.model == name) {
                let labels: Vec<_> = runs.iter().map(|run| run.label.as_str()).collect();
                bail!(
                    "model '{name}' is not in suite '{}'; it has: {}",
                    self.name,
                    labels.join(", ")
                );
            }
        }
        self.models.retain(|entry| {
            let (label, model) = match entry {
                ModelEntry::Name(name) => (name, name),
                ModelEntry::Variant { label, model, .. } => (label, model),
            };
            wanted.iter().any(|name| name == label || name == model)
        });
        Ok(())
    }

    /// Every scenario of every sweep, in file order.
    pub fn scenarios(&self) -> Vec<Scenario> {
        let mut scenarios = Vec::new();
        for sweep in &self.sweeps {
            let rates: Vec<Option<f64>> = if sweep.rate.is_empty() {
                vec![None]
            } else {
                sweep.rate.iter().copied().map(Some).collect()
            };
            for &size in &sweep.size {
                for &idle in &sweep.idle {
                    for &rate in &rates {
                        for &connections in &sweep.connections {
                            let load = LoadSpec {
                                shape: sweep.shape,
                                connections,
                                size,
                                rate,
                                idle,
                                warmup: Duration::from_secs_f64(self.warmup_s),
                                duration: Duration::from_secs_f64(self.duration_s),
                                client_threads: 1,
                            };
                            scenarios.push(Scenario {
                                name: bench::scenario_name(&load),
                                load,
                            });
                        }
                    }
                }
            }
        }
        scenarios
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_suites_parse_and_expand() {
        let quick = Suite::load("quick").unwrap();
        assert_eq!(quick.model_runs().len(), 8);
        assert_eq!(quick.scenarios().len(), 4);
        let full = Suite::load("full").unwrap();
        let runs = full.model_runs();
        let edge = runs.iter().find(|run| run.label == "epoll-edge").unwrap();
        assert_eq!(
            (edge.model.as_str(), edge.args.as_slice()),
            ("epoll", &["--edge".to_owned()][..])
        );
        let names: Vec<_> = full.scenarios().into_iter().map(|s| s.name).collect();
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "scenario names must be unique: {names:?}"
        );
    }

    #[test]
    fn selecting_an_unknown_model_names_it() {
        let mut quick = Suite::load("quick").unwrap();
        let error = quick.select_models(&["epol".to_owned()]).unwrap_err();
        assert!(error.to_string().contains("'epol'"), "{error}");
        quick
            .select_models(&["epoll".to_owned(), "async".to_owned()])
            .unwrap();
        assert_eq!(quick.model_runs().len(), 2);
    }

    #[test]
    fn a_bad_suite_file_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "name = \"x\"\nwarmup_s = 1\n").unwrap();
        let error = Suite::load(path.to_str().unwrap()).unwrap_err();
        assert!(format!("{error:#}").contains("bad.toml"), "{error:#}");
        let missing = Suite::load("/nonexistent/suite.toml").unwrap_err();
        assert!(
            format!("{missing:#}").contains("cannot read suite"),
            "{missing:#}"
        );
    }
}
