//! `harness tour`: the course, claim by claim. Each step states a claim the
//! course (or a book) makes in prose, measures it on this machine, and gives
//! a verdict against a threshold written next to it ([`steps`]): confirmed,
//! not confirmed here (with the measured ratio and the likely reason), or
//! skipped (with why). The cells it measures form a result set like `run`'s,
//! with `tour.json` beside them, so `harness report` and `harness compare`
//! work on it and the report opens with the tour.
//!
//! # Layout
//!
//! - [`steps`]: THE table of steps: claims, sources, thresholds, verdicts.
//! - [`experiments`]: what each step measures.
//! - [`hold`]: the scene of steps 1 and 2 (clients that hold every place).

mod experiments;
mod hold;
mod steps;

use crate::cell::{self, CellProgress, CellSpec};
use crate::cpus::{CpuLayout, format_cpulist};
use crate::load::LoadSpec;
use crate::results::cell::{Cell, Shape};
use crate::results::tour::{self, Margin, TourEntry, Verdict};
use crate::results::{files, set};
use crate::server::ServerUnderTest;
use anyhow::{Context, Result, bail};
use indexmap::IndexMap;
use indicatif::{HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use steps::{STEPS, Step};

/// The figures a step measured, by name (with their unit), in order.
pub type Figures = IndexMap<String, f64>;

/// How many times the tour takes each measurement (a cell, a scene): once.
/// A verdict's figures therefore come from n = 1 run each, too few for a
/// CI; the margin to the threshold says how close the verdict was.
const RUNS_PER_MEASUREMENT: u32 = 1;

/// A step's verdict, the sentence that explains it, and the deciding
/// figure against its threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: String,
    /// Of the step's checks, the one that decides ([`Margin::deciding`]);
    /// none when skipped.
    pub margin: Option<Margin>,
}

impl Judgement {
    /// Every check met; `checks` are the step's figures against their thresholds.
    pub fn confirmed(checks: &[Margin], reason: String) -> Judgement {
        debug_assert!(checks.iter().all(Margin::met), "{checks:?}");
        Judgement {
            verdict: Verdict::Confirmed,
            reason,
            margin: Margin::deciding(checks).cloned(),
        }
    }

    /// A check not met: `checks` hold it (and may hold the met ones).
    pub fn not_confirmed(checks: &[Margin], reason: String) -> Judgement {
        debug_assert!(!checks.iter().all(Margin::met), "{checks:?}");
        Judgement {
            verdict: Verdict::NotConfirmedHere,
            reason,
            margin: Margin::deciding(checks).cloned(),
        }
    }

    fn skipped(reason: String) -> Judgement {
        Judgement {
            verdict: Verdict::Skipped,
            reason,
            margin: None,
        }
    }

    /// What the verdict line adds to the reason: `n = 1; FIGURE … short (…)`.
    pub fn margin_text(n: u32, margin: &Margin) -> String {
        format!("n = {n}; {}", margin.text(steps::short))
    }
}

#[derive(Debug, clap::Args)]
pub struct TourArgs {
    /// Fewer points and shorter cells: under 2 minutes instead of under 6.
    #[arg(long)]
    quick: bool,
    /// Run only step N (numbered as in the README's table), replacing its entry (and its cells) in the tour of --out.
    #[arg(long, value_name = "N")]
    step: Option<u32>,
    /// Where to write the result set [default: results/runs/<UTC time>-<hostname>-tour]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// How long the cells of a mode warm up and measure.
#[derive(Debug, Clone, Copy)]
struct Pace {
    warmup: Duration,
    duration: Duration,
}

const FULL: Pace = Pace {
    warmup: Duration::from_secs(1),
    duration: Duration::from_secs(3),
};
const QUICK: Pace = Pace {
    warmup: Duration::from_millis(500),
    duration: Duration::from_secs(1),
};

/// What every step measures with: the CPUs, the pace, the result set, the
/// progress display.
pub struct Session {
    pub quick: bool,
    pub cpus: CpuLayout,
    /// The affinity mask the tour started with.
    pub mask: Vec<usize>,
    pace: Pace,
    client_threads: u32,
    cells_dir: PathBuf,
    progress: Progress,
    /// The step running, and the cells it wrote.
    step: u32,
    written: Vec<String>,
    /// Every cell of the result set (the other steps' ones already there
    /// for `--step`), by file name (`…-s64-i500.json` sorts before
    /// `…-s64.json`): the order `summary.csv` lists them in.
    cells: BTreeMap<String, Cell>,
}

/// The tour's mode, as the document and the console name it.
fn mode(quick: bool) -> &'static str {
    if quick { "quick" } else { "full" }
}

impl Session {
    fn mode(&self) -> &'static str {
        mode(self.quick)
    }

    /// A load of this mode's pace.
    fn load(&self, shape: Shape, connections: u32, idle: u32, rate: Option<f64>) -> LoadSpec {
        LoadSpec {
            protocol: crate::protocol::Protocol::Echo,
            shape,
            connections,
            size: 64,
            rate,
            idle,
            warmup: self.pace.warmup,
            duration: self.pace.duration,
            client_threads: self.client_threads,
            step: Default::default(),
            pipeline: 1,
        }
    }

    /// Measures one cell, named for the step (`step05-closed-c1-s64-i500`),
    /// and writes it into the result set. The server's system calls are not
    /// counted: only steps 9 and 10 read them, and counting adds a phase of
    /// its own after every cell's window (it no longer touches the window).
    fn cell(&mut self, mut server: ServerUnderTest, load: LoadSpec) -> Result<Cell> {
        server.launch.count_syscalls = false;
        self.measure_cell(server, load)
    }

    /// Measures one cell with the server's system calls counted.
    fn cell_counting_syscalls(&mut self, mut server: ServerUnderTest, load: LoadSpec) -> Result<Cell> {
        server.launch.count_syscalls = true;
        self.measure_cell(server, load)
    }

    fn measure_cell(&mut self, server: ServerUnderTest, load: LoadSpec) -> Result<Cell> {
        let scenario = format!("{}-{}", tour::step_tag(self.step), cell::scenario_name(&load));
        let what = format!("{} / {}", server.label, describe_load(&load));
        self.progress.waiting(self.step, &format!("measuring {what}"));
        let spec = CellSpec {
            server,
            scenario,
            repeat: 1,
            load,
            cpus: self.cpus.clone(),
        };
        let progress = &self.progress;
        let step = self.step;
        let record = cell::run_cell_observed(&spec, &mut |at| progress.cell(step, &what, at))?;
        files::write_cell(&self.cells_dir, &record, 1)?;
        let stem = record.cell.file_stem(1);
        self.cells.insert(format!("{stem}.json"), record.cell.clone());
        self.written.push(stem);
        Ok(record.cell)
    }

    /// Plays the scene of steps 1 and 2.
    fn scene(&mut self, server: &ServerUnderTest, holders: u32, hold: Duration) -> Result<hold::Scene> {
        let (progress, step) = (&self.progress, self.step);
        hold::play(server, &self.cpus.server, holders, hold, &mut |what| {
            progress.waiting(step, what)
        })
    }
}

/// `1 connection + 500 idle, closed loop, 1 s warm-up + 3 s`.
fn describe_load(load: &LoadSpec) -> String {
    let mut text = format!(
        "{} connection{}",
        load.connections,
        if load.connections == 1 { "" } else { "s" }
    );
    if load.idle > 0 {
        text += &format!(" + {} idle", load.idle);
    }
    text += match load.shape {
        Shape::Closed => ", closed loop",
        Shape::Open => ", open loop",
        Shape::Churn => ", churn",
    };
    if let Some(rate) = load.rate {
        text += &format!(" at {rate} msgs/s");
    }
    text + &format!(
        ", {} s warm-up + {} s",
        load.warmup.as_secs_f64(),
        load.duration.as_secs_f64()
    )
}

pub fn main(args: TourArgs) -> Result<()> {
    let chosen: Vec<&Step> = match args.step {
        Some(number) => match STEPS.iter().find(|step| step.number == number) {
            Some(step) => vec![step],
            None => bail!("--step must be between 1 and {} (got {number})", STEPS.len()),
        },
        None => STEPS.iter().collect(),
    };
    // The mask before any cell pins this thread to the client CPUs.
    let mask = echo_core::affinity::allowed_cpus().context("cannot read the harness's CPU affinity")?;
    let cpus = CpuLayout::choose(None, None, &mask, true)?;
    let started = SystemTime::now();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| set::default_out_dir(started, "-tour"));
    let mut entries = prepare_out_dir(&out, args.step)?;
    let cells_dir = out.join("cells");
    if let Some(number) = args.step {
        remove_step_cells(&cells_dir, number)?;
        entries.retain(|entry| entry.step != number);
    }
    let cells = read_cells(&cells_dir)?;
    echo_core::process::raise_fd_limit().ok();
    if !cpus.client.is_empty() {
        echo_core::affinity::pin_to(&cpus.client).context("cannot pin the harness to the client CPUs")?;
    }
    // Its suite and models are set as steps are measured.
    let mut manifest = set::Manifest::new(started, serde_json::Value::Null, &cpus, 1, Vec::new());
    manifest.failures = previous_failures(&out, args.step);
    let failed_before = manifest.failures.len();

    eprintln!(
        "echolab tour ({}): {} step{}, server on CPU {}, load on CPU {}; writing {}",
        mode(args.quick),
        chosen.len(),
        if chosen.len() == 1 { "" } else { "s" },
        format_cpulist(&cpus.server),
        format_cpulist(&cpus.client),
        out.display()
    );
    if let Some(warning) = cpus.shared_warning() {
        eprintln!("{warning}");
    }
    let client_threads = crate::bench::default_client_threads(&cpus);
    let mut session = Session {
        quick: args.quick,
        cpus,
        mask,
        pace: if args.quick { QUICK } else { FULL },
        client_threads,
        cells_dir: cells_dir.clone(),
        progress: Progress::new(chosen.len() as u64),
        step: 0,
        written: Vec::new(),
        cells,
    };
    let tour_started = Instant::now();
    for step in &chosen {
        session.step = step.number;
        session.written.clear();
        session.progress.start(step);
        session.progress.print(&prediction(step));
        let step_started = Instant::now();
        let entry = run_step(step, &mut session, &mut manifest.failures);
        session.progress.print(&outcome(&entry, step_started.elapsed()));
        entries.retain(|known| known.step != entry.step);
        entries.push(entry);
        // What is measured so far stays on disk.
        tour::write(&out, &entries)?;
        write_result_set(&out, &session, &entries, &mut manifest)?;
        session.progress.done();
    }
    session.progress.finish();

    entries.sort_by_key(|entry| entry.step);
    println!("\n{}", verdict_table(&entries));
    println!("{} for the tour", HumanDuration(tour_started.elapsed()));
    crate::report::generate_and_announce_after(&out, "")?;
    let failed = manifest.failures.len() - failed_before;
    if failed > 0 {
        bail!(
            "{failed} step{} could not be measured (see 'failures' in {})",
            if failed == 1 { "" } else { "s" },
            out.join("manifest.json").display()
        );
    }
    Ok(())
}

/// Runs one step and judges it.
fn run_step(step: &Step, session: &mut Session, failures: &mut Vec<set::Failure>) -> TourEntry {
    let measured = (step.measure)(session);
    let (judgement, measured) = match measured {
        Err(error) => {
            failures.push(set::Failure {
                label: "tour".to_owned(),
                scenario: tour::step_tag(step.number),
                repeat: 1,
                error: format!("{error:#}"),
            });
            (
                Judgement::skipped(format!("the measurement failed: {error:#}")),
                experiments::Measured::default(),
            )
        }
        Ok(measured) => {
            let judgement = match &measured.skipped {
                Some(reason) => Judgement::skipped(reason.clone()),
                None => match (step.judge)(&measured.figures) {
                    Ok(judgement) => judgement,
                    Err(figure) => Judgement::skipped(format!("the figure {figure} was not measured")),
                },
            };
            (judgement, measured)
        }
    };
    let measured_anything = judgement.verdict != Verdict::Skipped;
    TourEntry {
        step: step.number,
        title: step.title.to_owned(),
        claim: step.claim.to_owned(),
        source: step.source.to_owned(),
        measures: step.measures.to_owned(),
        verdict: judgement.verdict,
        reason: judgement.reason,
        measured: measured.figures,
        threshold: (step.threshold)(),
        reference: step.reference.map(str::to_owned),
        notes: measured.notes,
        chart: measured
            .chart
            .filter(|chart| measured_anything && !chart.bars.is_empty()),
        mode: session.mode().to_owned(),
        cells: session.written.clone(),
        n: judgement.margin.is_some().then_some(RUNS_PER_MEASUREMENT),
        margin: judgement.margin,
    }
}

/// What a step prints before it measures: the claim, its source, what
/// will be measured, and the threshold the verdict will apply.
fn prediction(step: &Step) -> String {
    format!(
        "\nStep {} of {}: {}\n  claim      {}\n  source     {}\n  measures   {}\n  threshold  {}\n",
        step.number,
        STEPS.len(),
        step.title,
        step.claim,
        step.source,
        step.measures,
        (step.threshold)()
    )
}

/// What it prints after: the figures, and the verdict with its reason.
fn outcome(entry: &TourEntry, took: Duration) -> String {
    let mut text = String::new();
    if !entry.measured.is_empty() {
        let figures: Vec<String> = entry
            .measured
            .iter()
            .map(|(name, value)| format!("{name} {}", steps::short(*value)))
            .collect();
        text += &format!("  measured   {}\n", figures.join(", "));
    }
    for note in &entry.notes {
        text += &format!("             {note}\n");
    }
    if let Some(reference) = &entry.reference {
        text += &format!("  reference  {reference}\n");
    }
    text += &format!(
        "  verdict    {}: {} ({:.0} s)\n",
        entry.verdict.as_str().to_uppercase(),
        entry.reason,
        took.as_secs_f64()
    );
    if let (Some(n), Some(margin)) = (entry.n, &entry.margin) {
        text += &format!("  margin     {}\n", Judgement::margin_text(n, margin));
    }
    text
}

fn verdict_table(entries: &[TourEntry]) -> String {
    let mut text = String::from("step  verdict             claim\n");
    for entry in entries {
        text += &format!(
            "{:>4}  {:<18}  {}\n",
            entry.step,
            entry.verdict.as_str(),
            entry.title
        );
    }
    text + &tour::tally(entries)
}

/// Creates `out` and returns the tour entries already there. A whole tour
/// needs a directory without cells; `--step N` reruns one step of a tour
/// (or starts one).
fn prepare_out_dir(out: &Path, step: Option<u32>) -> Result<Vec<TourEntry>> {
    let cells_dir = out.join("cells");
    std::fs::create_dir_all(&cells_dir)
        .with_context(|| format!("cannot create the result set directory {}", out.display()))?;
    let existing = tour::read(out)?;
    let has_cells = std::fs::read_dir(&cells_dir)
        .with_context(|| format!("cannot read {}", cells_dir.display()))?
        .next()
        .is_some();
    match (existing, step) {
        (Some(_), None) => bail!(
            "{} already holds a tour; rerun one step with --step N, or choose a new --out directory",
            out.display()
        ),
        (None, _) if has_cells => bail!(
            "{} holds cells of another run; choose a new --out directory",
            out.display()
        ),
        (existing, _) => Ok(existing.unwrap_or_default()),
    }
}

/// Removes the cells an earlier run of step `number` wrote.
fn remove_step_cells(cells_dir: &Path, number: u32) -> Result<()> {
    let marker = format!("--{}-", tour::step_tag(number));
    for entry in
        std::fs::read_dir(cells_dir).with_context(|| format!("cannot read {}", cells_dir.display()))?
    {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if name.contains(&marker) {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// The failures of other steps recorded by an earlier run into `out`.
fn previous_failures(out: &Path, step: Option<u32>) -> Vec<set::Failure> {
    let Some(number) = step else {
        return Vec::new();
    };
    set::read_manifest(out)
        .map(|manifest| manifest.failures)
        .unwrap_or_default()
        .into_iter()
        .filter(|failure| failure.scenario != tour::step_tag(number))
        .collect()
}

/// The cells already in `cells_dir`, by file name.
fn read_cells(cells_dir: &Path) -> Result<BTreeMap<String, Cell>> {
    files::cell_stems(cells_dir)?
        .into_iter()
        .map(|stem| {
            let name = format!("{stem}.json");
            let cell = files::read_cell_json(&cells_dir.join(&name))?;
            Ok((name, cell))
        })
        .collect()
}

/// The manifest, with the steps measured so far and the models of the
/// cells, and the summary of every cell.
fn write_result_set(
    out: &Path,
    session: &Session,
    entries: &[TourEntry],
    manifest: &mut set::Manifest,
) -> Result<()> {
    let mut steps: Vec<u32> = entries.iter().map(|entry| entry.step).collect();
    steps.sort_unstable();
    manifest.suite = serde_json::json!({
        "name": "tour",
        "mode": session.mode(),
        "steps": steps,
        "warmup_s": session.pace.warmup.as_secs_f64(),
        "duration_s": session.pace.duration.as_secs_f64(),
    });
    let mut labels: Vec<String> = session.cells.values().map(|cell| cell.label.clone()).collect();
    labels.sort();
    labels.dedup();
    manifest.parameters.models = labels;
    set::write_manifest(out, manifest)?;
    let cells: Vec<Cell> = session.cells.values().cloned().collect();
    set::write_summary(out, &cells)
}

/// Which step runs and what it waits for: a bar on a terminal, plain lines
/// on stderr otherwise (CI, a pipe).
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(steps: u64) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::new(steps);
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("[{elapsed_precise}] {bar:20} {pos}/{len} steps  {msg}")
                .expect("the progress template is valid"),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress { bar: Some(bar) }
    }

    fn start(&self, step: &Step) {
        let line = format!("step {} of {}: {}", step.number, STEPS.len(), step.title);
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None => eprintln!("[{line}]"),
        }
    }

    /// What the step waits for now.
    fn waiting(&self, step: u32, what: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("step {step}: {what}")),
            None => eprintln!("  step {step}: {what}"),
        }
    }

    fn cell(&self, step: u32, what: &str, at: CellProgress) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "step {step}: {what}: {:.1}/{:.1} s, {} messages",
                at.elapsed.as_secs_f64(),
                at.total.as_secs_f64(),
                at.messages
            ));
        }
    }

    /// Prints on stdout, above the bar.
    fn print(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| print!("{text}")),
            None => print!("{text}"),
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
