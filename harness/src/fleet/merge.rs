//! `harness merge DIR… --out DIR`: one result set from several.
//!
//! - **Shards of one suite** (`run --shard K/N` on N machines): the union
//!   of their cells, files copied as they are. A cell present twice, two
//!   harness versions, two suites or repeat counts, or machines of another
//!   CPU model or core count make the merge refuse.
//! - **Load hosts' shares of one cell** (`bench --share K/N --start-at
//!   TIME` on N load hosts, same label, scenario, start instant and N): one
//!   cell whose histogram is the exact sum of the hosts' HdrHistograms (all
//!   of one precision, or the merge refuses), read from their interval logs
//!   (the `.hgrm` text is rounded; the logs are not). Percentiles come only
//!   from that sum: they are never averaged. Counts and errors add up;
//!   throughput is the summed messages over the window every host measured;
//!   the one-second intervals add up by index (every host's second `i`
//!   is the same second, the hosts having started at one instant) and each
//!   host's stay in the log under `Tag=host-K`. Each host's own figures
//!   stay in the cell (`hosts`), and the cell carries every flag any host
//!   earned (one host behind schedule or client-bound flags the cell).
//!
//! Every input is read and checked before anything is written: a merge that
//! would mix incompatible inputs says why in one line and writes nothing.
//! The merged set gets its summary, manifest (inputs in `merged_from`) and
//! report; `report` and `compare` read it like any other.

use crate::cell::{flags, record};
use crate::load::recorder;
use crate::report;
use crate::results::cell::{
    Cell, CellRecord, ClientStats, Errors, Flag, HostSummary, LoadShare, MachineStats,
};
use crate::results::files;
use crate::results::set::{self, Machine, Manifest, MergedInput, Parameters};
use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The result sets: a suite's shards (`run --shard`), or the load
    /// hosts' sets of multi-host cells (`bench --share`).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged result set (a new directory).
    #[arg(long, value_name = "DIR", required = true)]
    pub out: PathBuf,
}

pub fn main(args: MergeArgs) -> anyhow::Result<()> {
    let merged = plan(&args.dirs, &args.out)?;
    for note in &merged.notes {
        eprintln!("harness: note: {note}");
    }
    write(&args.out, &merged)?;
    report::generate_and_announce_after(&args.out, &merged.summary)
}

/// One input result set.
struct Input {
    dir: PathBuf,
    manifest: Manifest,
    /// Sorted by file stem.
    cells: Vec<InputCell>,
}

struct InputCell {
    stem: String,
    cell: Cell,
}

impl Input {
    fn name(&self) -> String {
        self.dir.display().to_string()
    }

    fn cells_dir(&self) -> PathBuf {
        self.dir.join("cells")
    }
}

/// What a merge writes.
pub struct Merged {
    manifest: Manifest,
    cells: Vec<OutCell>,
    /// Lines printed before writing (a missing shard, an unsynchronised clock).
    pub notes: Vec<String>,
    /// What is printed once written.
    pub summary: String,
}

/// A load host's interval histograms under its tag (`host-K`).
type Tagged = (String, Vec<Histogram<u64>>);

enum OutCell {
    /// A shard's cell, copied file for file.
    Copy {
        from: PathBuf,
        stem: String,
        cell: Box<Cell>,
    },
    /// A cell summed from its load hosts, with each host's intervals.
    Sum {
        record: Box<CellRecord>,
        hosts: Vec<Tagged>,
    },
}

impl OutCell {
    fn cell(&self) -> &Cell {
        match self {
            OutCell::Copy { cell, .. } => cell,
            OutCell::Sum { record, .. } => &record.cell,
        }
    }
}

/// Reads and checks every input and computes the merged set, writing nothing.
pub fn plan(dirs: &[PathBuf], out: &Path) -> anyhow::Result<Merged> {
    let inputs = dirs
        .iter()
        .map(|dir| read_input(dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    check_out(out, &inputs)?;
    let first = &inputs[0];
    for input in &inputs[1..] {
        if input.manifest.harness_version != first.manifest.harness_version {
            bail!(
                "{} was written by harness {} and {} by harness {}: merge only result sets of one harness version",
                first.name(),
                first.manifest.harness_version,
                input.name(),
                input.manifest.harness_version
            );
        }
    }
    let mut hosts = Vec::new();
    let mut suites = Vec::new();
    for input in &inputs {
        let shared = input.cells.iter().filter(|c| c.cell.share.is_some()).count();
        match shared {
            0 => suites.push(input),
            n if n == input.cells.len() => hosts.push(input),
            _ => bail!(
                "{} holds both load hosts' shares and whole cells: merge them separately",
                input.name()
            ),
        }
    }
    let merged = match (hosts.is_empty(), suites.is_empty()) {
        (true, _) => merge_shards(&suites)?,
        (false, true) => merge_hosts(&hosts)?,
        (false, false) => bail!(
            "{} holds load hosts' shares (bench --share) and {} a suite's cells: merge one kind at a time",
            hosts[0].name(),
            suites[0].name()
        ),
    };
    Ok(merged)
}

fn read_input(dir: &Path) -> anyhow::Result<Input> {
    let manifest =
        set::read_manifest(dir).with_context(|| format!("{} is not a result set", dir.display()))?;
    let cells_dir = dir.join("cells");
    let stems = if cells_dir.is_dir() {
        files::cell_stems(&cells_dir)?
    } else {
        Vec::new()
    };
    let mut cells = Vec::with_capacity(stems.len());
    for stem in stems {
        let cell = files::read_cell_json(&cells_dir.join(format!("{stem}.json")))?;
        for extension in ["hgrm", "hlog"] {
            files::required(&cells_dir, &stem, extension)?;
        }
        cells.push(InputCell { stem, cell });
    }
    Ok(Input {
        dir: dir.to_path_buf(),
        manifest,
        cells,
    })
}

/// The output must be a new directory, none of the inputs.
fn check_out(out: &Path, inputs: &[Input]) -> anyhow::Result<()> {
    files::ensure_no_cells(
        &out.join("cells"),
        "; merge into a new --out directory",
        files::Unreadable::Empty,
    )?;
    if let Ok(out) = out.canonicalize() {
        for input in inputs {
            if input.dir.canonicalize().is_ok_and(|dir| dir == out) {
                bail!(
                    "--out {} is one of the inputs; merge into a new directory",
                    out.display()
                );
            }
        }
    }
    Ok(())
}

/// The shards of one suite: the union of their cells.
fn merge_shards(inputs: &[&Input]) -> anyhow::Result<Merged> {
    let first = inputs[0];
    let suite_name = |input: &Input| {
        input.manifest.suite["name"]
            .as_str()
            .map_or_else(|| "(none)".to_owned(), |name| format!("'{name}'"))
    };
    for input in &inputs[1..] {
        if input.manifest.suite != first.manifest.suite {
            bail!(
                "{} ran suite {} and {} suite {}{}: merge only shards of one suite",
                first.name(),
                suite_name(first),
                input.name(),
                suite_name(input),
                if suite_name(first) == suite_name(input) {
                    " with other models, sweeps or durations"
                } else {
                    ""
                }
            );
        }
        if input.manifest.parameters.repeat != first.manifest.parameters.repeat {
            bail!(
                "{} ran every cell {} times and {} {} times: merge only shards of one run",
                first.name(),
                first.manifest.parameters.repeat,
                input.name(),
                input.manifest.parameters.repeat
            );
        }
        let (a, b) = (&first.manifest.machine, &input.manifest.machine);
        if (a.cpu_model.as_str(), a.cores) != (b.cpu_model.as_str(), b.cores) {
            bail!(
                "{} ran on {} ({} cores) and {} on {} ({} cores): cells of different machines are not comparable in one result set",
                first.name(),
                a.cpu_model,
                a.cores,
                input.name(),
                b.cpu_model,
                b.cores
            );
        }
    }
    let mut notes = Vec::new();
    let shards: Vec<_> = inputs
        .iter()
        .filter_map(|input| input.manifest.shard.as_ref())
        .collect();
    if !shards.is_empty() {
        if shards.len() != inputs.len() {
            let whole = inputs
                .iter()
                .find(|input| input.manifest.shard.is_none())
                .expect("one has none");
            bail!(
                "{} is a whole run, not a shard, while others are shards: merge only the shards of one suite",
                whole.name()
            );
        }
        let total = shards[0].total;
        for (input, shard) in inputs.iter().zip(&shards) {
            if shard.total != total {
                bail!(
                    "{} is shard {}/{} and {} shard {}/{}: merge only shards of one split",
                    first.name(),
                    shards[0].index,
                    total,
                    input.name(),
                    shard.index,
                    shard.total
                );
            }
        }
        let missing = missing_positions(
            inputs
                .iter()
                .zip(&shards)
                .map(|(input, shard)| (shard.index, *input)),
            total,
            |index, other, input| {
                format!(
                    "shard {index}/{total} is given twice ({} and {})",
                    other.name(),
                    input.name()
                )
            },
        )?;
        if !missing.is_empty() {
            notes.push(format!(
                "shard{} {} of {total} not given: the merged set lacks {} cells",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                if missing.len() == 1 { "its" } else { "their" }
            ));
        }
    }
    let mut owners: BTreeMap<(String, String, u32), &Input> = BTreeMap::new();
    let mut cells = Vec::new();
    for input in inputs {
        for data in &input.cells {
            let cell = &data.cell;
            let key = (cell.label.clone(), cell.scenario.clone(), cell.repeat);
            if let Some(other) = owners.insert(key, input) {
                bail!(
                    "cell {} / {} repeat {} is in both {} and {}: a cell may come from one shard only",
                    cell.label,
                    cell.scenario,
                    cell.repeat,
                    other.name(),
                    input.name()
                );
            }
            cells.push(OutCell::Copy {
                from: input.cells_dir(),
                stem: data.stem.clone(),
                cell: Box::new(cell.clone()),
            });
        }
    }
    let manifest = merged_manifest(inputs, first.manifest.parameters.clone());
    let mut summary = format!(
        "merged {} result set{} of suite {}{}: {} cells\n",
        inputs.len(),
        if inputs.len() == 1 { "" } else { "s" },
        suite_name(first),
        shards.first().map_or_else(String::new, |shard| {
            let given: Vec<String> = shards.iter().map(|shard| shard.index.to_string()).collect();
            format!(" (shards {} of {})", given.join(", "), shard.total)
        }),
        cells.len()
    );
    if !manifest.failures.is_empty() {
        summary += &format!(
            "{} cells could not be measured (see 'failures' in the manifest)\n",
            manifest.failures.len()
        );
    }
    Ok(Merged {
        manifest,
        cells,
        notes,
        summary,
    })
}

/// The load hosts' shares: one summed cell per (label, scenario, repeat,
/// start instant, N).
fn merge_hosts(inputs: &[&Input]) -> anyhow::Result<Merged> {
    type Key = (String, String, u32, String, u32);
    let mut groups: BTreeMap<Key, Vec<(&Input, &InputCell)>> = BTreeMap::new();
    for input in inputs {
        for data in &input.cells {
            let (cell, share) = (
                &data.cell,
                data.cell.share.as_ref().expect("host cells have a share"),
            );
            let key = (
                cell.label.clone(),
                cell.scenario.clone(),
                cell.repeat,
                share.start_at.clone(),
                share.hosts,
            );
            groups.entry(key).or_default().push((input, data));
        }
    }
    let mut cells = Vec::new();
    let mut notes = Vec::new();
    let mut summary = String::new();
    let mut seen: BTreeMap<(String, String, u32), String> = BTreeMap::new();
    for ((label, scenario, repeat, start_at, hosts), mut members) in groups {
        if let Some(other) = seen.insert((label.clone(), scenario.clone(), repeat), start_at.clone()) {
            bail!(
                "{label} / {scenario} was driven by load hosts twice (starting at {other} and at {start_at}): merge each run into its own result set"
            );
        }
        let what = format!("{label} / {scenario} (start {start_at}, {hosts} load hosts)");
        members.sort_by_key(|(_, data)| data.cell.share.as_ref().map_or(0, |share| share.host));
        let missing = missing_positions(
            members
                .iter()
                .map(|(input, data)| (data.cell.share.as_ref().expect("checked").host, *input)),
            hosts,
            |host, other, input| {
                format!(
                    "share {host}/{hosts} of {what} is in both {} and {}",
                    other.name(),
                    input.name()
                )
            },
        )?;
        if !missing.is_empty() {
            bail!(
                "{what}: share{} {} of {hosts} missing; a cell's sum needs every load host's result set",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            );
        }
        let parts = members
            .iter()
            .map(|(input, data)| read_part(input, data))
            .collect::<anyhow::Result<Vec<_>>>()?;
        check_alike(&what, &parts)?;
        // Hosts on one machine share its clock: no offset between them.
        let machines: BTreeSet<&str> = parts
            .iter()
            .map(|part| part.input.manifest.machine.machine_id.as_str())
            .collect();
        let one_clock = machines.len() == 1 && !machines.contains("");
        if !one_clock {
            for part in &parts {
                if let Some(clock) = part.share.clock.as_ref().filter(|clock| !clock.synchronised) {
                    notes.push(format!(
                        "{what}: host {}'s clock is not synchronised (adjtimex; max error {:.0} ms): its window may be offset from the others' by up to that",
                        part.share.host,
                        clock.max_error_us as f64 / 1e3
                    ));
                }
            }
        }
        let (record, tagged) = sum_parts(parts)?;
        summary += &host_summary(&record.cell);
        cells.push(OutCell::Sum {
            record: Box::new(record),
            hosts: tagged,
        });
    }
    let labels: BTreeSet<String> = cells.iter().map(|cell| cell.cell().label.clone()).collect();
    let first = &inputs[0].manifest.parameters;
    let parameters = Parameters {
        server_cpus: first.server_cpus.clone(),
        client_cpus: Vec::new(),
        repeat: 1,
        models: labels.into_iter().collect(),
        command: String::new(),
    };
    Ok(Merged {
        manifest: merged_manifest(inputs, parameters),
        cells,
        notes,
        summary,
    })
}

/// The positions (shards, load hosts' shares) of `1..=total` that none of
/// `given` holds, after refusing a position held twice with the sentence
/// `twice(position, first holder, second holder)`.
fn missing_positions<'a>(
    given: impl IntoIterator<Item = (u32, &'a Input)>,
    total: u32,
    twice: impl Fn(u32, &Input, &Input) -> String,
) -> anyhow::Result<Vec<String>> {
    let mut seen: BTreeMap<u32, &Input> = BTreeMap::new();
    for (position, input) in given {
        if let Some(other) = seen.insert(position, input) {
            bail!("{}", twice(position, other, input));
        }
    }
    Ok((1..=total)
        .filter(|position| !seen.contains_key(position))
        .map(|position| position.to_string())
        .collect())
}

/// One host's cell with its interval histograms.
struct Part<'a> {
    input: &'a Input,
    cell: &'a Cell,
    share: &'a LoadShare,
    intervals: Vec<Histogram<u64>>,
}

fn read_part<'a>(input: &'a Input, data: &'a InputCell) -> anyhow::Result<Part<'a>> {
    let path = input.cells_dir().join(format!("{}.hlog", data.stem));
    let intervals = files::read_hlog(&path)?
        .into_iter()
        .map(|(_, histogram)| histogram)
        .collect();
    Ok(Part {
        input,
        cell: &data.cell,
        share: data.cell.share.as_ref().expect("host cells have a share"),
        intervals,
    })
}

/// The hosts must have driven one load, measured alike, into histograms
/// of one precision.
fn check_alike(what: &str, parts: &[Part]) -> anyhow::Result<()> {
    let first = &parts[0];
    let load = |cell: &Cell| {
        format!(
            "{} loop, {} connections, {} idle, {} bytes, rate {:?}, {} s warm-up, {} s measured",
            cell.shape.as_str(),
            cell.connections,
            cell.idle,
            cell.size,
            cell.rate,
            cell.warmup_s,
            cell.duration_s
        )
    };
    let precision = |histogram: &Histogram<u64>| (histogram.low(), histogram.high(), histogram.sigfig());
    let first_precision = first.intervals.first().map(precision);
    for part in parts {
        if load(part.cell) != load(first.cell) {
            bail!(
                "{what}: host {} ({}) drove {} but host {} ({}) {}",
                first.share.host,
                first.input.name(),
                load(first.cell),
                part.share.host,
                part.input.name(),
                load(part.cell)
            );
        }
        for histogram in &part.intervals {
            if Some(precision(histogram)) != first_precision {
                let (low, high, digits) = precision(histogram);
                let (first_low, first_high, first_digits) = first_precision.unwrap_or_default();
                bail!(
                    "{what}: host {} recorded latencies {low}..{high} ns at {digits} significant digits, host {} {first_low}..{first_high} ns at {first_digits}: histograms of different precision do not add up exactly",
                    part.share.host,
                    first.share.host
                );
            }
        }
    }
    Ok(())
}

/// The cell of all hosts together, and each host's intervals (moved, not
/// copied) under its tag.
fn sum_parts(parts: Vec<Part>) -> anyhow::Result<(CellRecord, Vec<Tagged>)> {
    let first = parts[0].cell;
    let mut intervals: Vec<Histogram<u64>> = Vec::new();
    for part in &parts {
        recorder::add_by_index(&mut intervals, &part.intervals)
            .context("an interval histogram does not fit the merged one")?;
    }
    // The whole cell is the sum of its seconds, as a recorder's is.
    let mut histogram = recorder::new_histogram();
    for interval in &intervals {
        histogram
            .add(interval)
            .context("an interval histogram does not fit the merged one")?;
    }
    let messages: u64 = parts.iter().map(|part| part.cell.messages).sum();
    let msgs_per_sec = messages as f64 / first.duration_s;
    let mut errors = Errors::default();
    for part in &parts {
        errors.add(&part.cell.errors);
    }
    let per_connection: Vec<u64> = parts
        .iter()
        .flat_map(|part| part.share.per_connection.iter().copied())
        .collect();
    let common = |values: Vec<Vec<usize>>| -> Vec<usize> {
        if values.windows(2).all(|pair| pair[0] == pair[1]) {
            values.into_iter().next().unwrap_or_default()
        } else {
            Vec::new()
        }
    };
    let targets: BTreeSet<&str> = parts.iter().map(|part| part.cell.target.as_str()).collect();
    let client = ClientStats {
        cpu_percent: parts.iter().map(|part| part.cell.client.cpu_percent).sum(),
        busiest_thread_percent: parts
            .iter()
            .map(|part| part.cell.client.busiest_thread_percent)
            .fold(0.0, f64::max),
        threads: parts.iter().map(|part| part.cell.client.threads).sum(),
        cpus: common(parts.iter().map(|part| part.cell.client.cpus.clone()).collect()),
        overhead_percent: parts.iter().map(|part| part.cell.client.overhead_percent).sum(),
    };
    let hosts: Vec<HostSummary> = parts
        .iter()
        .map(|part| HostSummary {
            host: part.share.host,
            hostname: part.input.manifest.machine.hostname.clone(),
            machine_id: part.input.manifest.machine.machine_id.clone(),
            source_addr: part.share.source_addr.clone(),
            connections: part.share.connections,
            rate: part.share.rate,
            messages: part.cell.messages,
            msgs_per_sec: part.cell.msgs_per_sec,
            latency_us: part.cell.latency_us.clone(),
            errors: part.cell.errors.total(),
            late_start_ms: part.share.late_start_ms,
            behind_schedule_fraction: part.cell.behind_schedule_fraction,
            busiest_thread_percent: part.cell.client.busiest_thread_percent,
            clock: part.share.clock.clone(),
            flags: part.cell.flags.clone(),
        })
        .collect();
    let mut cell = Cell {
        model: None,
        model_args: Vec::new(),
        command: None,
        label: first.label.clone(),
        target: targets.into_iter().collect::<Vec<_>>().join(" | "),
        server_cpus: common(parts.iter().map(|part| part.cell.server_cpus.clone()).collect()),
        scenario: first.scenario.clone(),
        protocol: first.protocol,
        request: first.request.clone(),
        pipeline: first.pipeline,
        repeat: first.repeat,
        shape: first.shape,
        connections: first.connections,
        size: first.size,
        idle: first.idle,
        rate: first.rate,
        warmup_s: first.warmup_s,
        duration_s: first.duration_s,
        messages,
        msgs_per_sec,
        // Each host knows what an answer weighs (an echo its size, an HTTP
        // response its body): their rates add up.
        bytes_per_sec: parts.iter().map(|part| part.cell.bytes_per_sec).sum(),
        connections_per_sec: first.connections_per_sec.map(|_| msgs_per_sec),
        latency_us: record::latency(&histogram),
        errors,
        starved_connections: parts.iter().map(|part| part.cell.starved_connections).sum(),
        fairness: record::fairness(&per_connection),
        server: None,
        client,
        behind_schedule_fraction: parts
            .iter()
            .map(|part| part.cell.behind_schedule_fraction)
            .fold(0.0, f64::max),
        machine: noisiest(parts.iter().filter_map(|part| part.cell.machine.as_ref())),
        flags: Vec::new(),
        share: None,
        hosts,
        // Each host's datagrams by fate, and its own machine's drops, summed.
        udp: parts
            .iter()
            .filter_map(|part| part.cell.udp.as_ref())
            .fold(None, |sum, udp| {
                let mut sum = sum.unwrap_or_default();
                crate::load::add_udp(&mut sum, udp);
                Some(sum)
            }),
        until_ci: None,
    };
    // The cell's own numbers judged, and every flag any host earned: a host
    // behind schedule, client-bound, late or on a shared CPU taints the sum.
    let mut earned: BTreeSet<Flag> = flags::judge(&cell).into_iter().collect();
    earned.extend(parts.iter().flat_map(|part| part.cell.flags.iter().copied()));
    cell.flags = flags::RULES
        .iter()
        .map(|rule| rule.flag)
        .filter(|flag| earned.contains(flag))
        .collect();
    let tagged = parts
        .into_iter()
        .map(|part| (format!("host-{}", part.share.host), part.intervals))
        .collect();
    Ok((
        CellRecord {
            cell,
            histogram,
            intervals,
        },
        tagged,
    ))
}

/// What else used the load hosts' CPUs: the most any host saw of others'
/// CPU and of steal (each host watched its own CPUs), or `None` when no
/// host watched.
fn noisiest<'a>(hosts: impl Iterator<Item = &'a MachineStats>) -> Option<MachineStats> {
    hosts.fold(None, |noisiest, host| {
        let mut noisiest = noisiest.unwrap_or_else(|| MachineStats {
            cpus: host.cpus.clone(),
            ..MachineStats::default()
        });
        noisiest.busy_percent = noisiest.busy_percent.max(host.busy_percent);
        noisiest.steal_percent = noisiest.steal_percent.max(host.steal_percent);
        if noisiest.cpus != host.cpus {
            noisiest.cpus.clear();
        }
        Some(noisiest)
    })
}

fn host_summary(cell: &Cell) -> String {
    let hosts: Vec<String> = cell
        .hosts
        .iter()
        .map(|host| format!("host {} {:.0}", host.host, host.msgs_per_sec))
        .collect();
    let flags: Vec<&str> = cell.flags.iter().map(|flag| flag.as_str()).collect();
    format!(
        "{} / {}: {} load hosts, {:.0} msgs/s ({}), p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs from the summed histogram; flags: {}\n",
        cell.label,
        cell.scenario,
        cell.hosts.len(),
        cell.msgs_per_sec,
        hosts.join(", "),
        cell.latency_us.p50,
        cell.latency_us.p99,
        cell.latency_us.max,
        if flags.is_empty() {
            "none".to_owned()
        } else {
            flags.join(", ")
        }
    )
}

/// The manifest of the merged set: the inputs' common facts, and each input.
fn merged_manifest(inputs: &[&Input], mut parameters: Parameters) -> Manifest {
    let first = &inputs[0].manifest;
    let distinct = |values: Vec<&str>| -> String {
        let mut unique: Vec<&str> = Vec::new();
        for value in values {
            if !unique.contains(&value) {
                unique.push(value);
            }
        }
        unique.join(" | ")
    };
    let machines: Vec<&Machine> = inputs.iter().map(|input| &input.manifest.machine).collect();
    let nodes: Vec<&str> = machines
        .iter()
        .filter_map(|machine| machine.node.as_deref())
        .collect();
    let machine = Machine {
        hostname: distinct(machines.iter().map(|m| m.hostname.as_str()).collect()),
        cpu_model: distinct(machines.iter().map(|m| m.cpu_model.as_str()).collect()),
        cores: first.machine.cores,
        kernel: distinct(machines.iter().map(|m| m.kernel.as_str()).collect()),
        rustc: distinct(machines.iter().map(|m| m.rustc.as_str()).collect()),
        machine_id: distinct(machines.iter().map(|m| m.machine_id.as_str()).collect()),
        node: (!nodes.is_empty()).then(|| distinct(nodes)),
    };
    parameters.command = std::env::args().collect::<Vec<_>>().join(" ");
    Manifest {
        harness_version: first.harness_version.clone(),
        git_commit: distinct(
            inputs
                .iter()
                .map(|input| input.manifest.git_commit.as_str())
                .collect(),
        ),
        created_utc: inputs
            .iter()
            .map(|input| input.manifest.created_utc.clone())
            .max()
            .unwrap_or_default(),
        machine,
        suite: first.suite.clone(),
        parameters,
        // A cell that failed or could not run in a shard stays on record.
        failures: inputs
            .iter()
            .flat_map(|input| input.manifest.failures.iter().cloned())
            .collect(),
        unsupported: inputs
            .iter()
            .flat_map(|input| input.manifest.unsupported.iter().cloned())
            .collect(),
        shard: None,
        merged_from: inputs
            .iter()
            .map(|input| MergedInput {
                dir: input.name(),
                created_utc: input.manifest.created_utc.clone(),
                git_commit: input.manifest.git_commit.clone(),
                machine: input.manifest.machine.clone(),
                shard: input.manifest.shard.clone(),
                placement: input.manifest.placement.clone(),
                host_shares: input
                    .cells
                    .iter()
                    .filter_map(|data| data.cell.share.as_ref())
                    .map(|share| format!("{}/{}", share.host, share.hosts))
                    .collect(),
                cells: input.cells.len(),
            })
            .collect(),
        // Each input's placement is in `merged_from`.
        placement: None,
    }
}

/// Writes the merged set into `out`.
fn write(out: &Path, merged: &Merged) -> anyhow::Result<()> {
    let cells_dir = out.join("cells");
    std::fs::create_dir_all(&cells_dir).with_context(|| format!("cannot create {}", cells_dir.display()))?;
    let repeats = merged.manifest.parameters.repeat;
    for cell in &merged.cells {
        match cell {
            OutCell::Copy { from, stem, .. } => {
                for extension in ["json", "hgrm", "hlog"] {
                    let name = format!("{stem}.{extension}");
                    std::fs::copy(from.join(&name), cells_dir.join(&name)).with_context(|| {
                        format!(
                            "cannot copy {} into {}",
                            from.join(&name).display(),
                            cells_dir.display()
                        )
                    })?;
                }
            }
            OutCell::Sum { record, hosts } => files::write_merged_cell(&cells_dir, record, repeats, hosts)?,
        }
    }
    let mut cells: Vec<&Cell> = merged.cells.iter().map(OutCell::cell).collect();
    cells.sort_by_key(|cell| cell.file_stem(repeats));
    set::write_summary(out, cells)?;
    set::write_manifest(out, &merged.manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::recorder::{self, Recorder};
    use crate::results::set::ShardRecord;

    const START: &str = "2026-01-01T12:00:00Z";

    fn manifest(hostname: &str, version: &str) -> Manifest {
        Manifest {
            harness_version: version.to_owned(),
            git_commit: "abc".to_owned(),
            created_utc: "2026-01-01T11:59:00Z".to_owned(),
            machine: Machine {
                hostname: hostname.to_owned(),
                cpu_model: "cpu".to_owned(),
                cores: 2,
                kernel: "Linux".to_owned(),
                rustc: "rustc".to_owned(),
                machine_id: format!("id-{hostname}"),
                node: None,
            },
            suite: serde_json::json!({ "name": "multi-host" }),
            parameters: Parameters {
                server_cpus: Vec::new(),
                client_cpus: vec![1],
                repeat: 1,
                models: vec!["target".to_owned()],
                command: "harness bench".to_owned(),
            },
            failures: Vec::new(),
            unsupported: Vec::new(),
            shard: None,
            merged_from: Vec::new(),
            placement: None,
        }
    }

    fn cell(label: &str, scenario: &str, messages: u64) -> Cell {
        Cell {
            target: "server:7000".to_owned(),
            connections: 6,
            messages,
            ..Cell::example(label, scenario, 1, messages as f64 / 3.0)
        }
    }

    /// Writes load host `host` of `hosts`'s result set: its samples, one
    /// per (latency ns, completion ns after the measurement began).
    fn host_set(dir: &Path, host: u32, hosts: u32, samples: &[(u64, u64)], digits: u8) -> PathBuf {
        let out = dir.join(format!("host{host}"));
        let mut recorder = Recorder::new(3);
        for &(latency, at) in samples {
            recorder.record(latency, at);
        }
        let (mut histogram, mut intervals) = recorder.finish();
        if digits != recorder::SIGNIFICANT_DIGITS {
            let coarse = || Histogram::new_with_bounds(1, recorder::HIGHEST_NS, digits).unwrap();
            intervals = intervals
                .iter()
                .map(|interval| {
                    let mut other = coarse();
                    other.add(interval).unwrap();
                    other
                })
                .collect();
            histogram = coarse();
        }
        let mut cell = cell("target", "closed-c6-s64", samples.len() as u64);
        cell.latency_us = record::latency(&histogram);
        // Answers of 100 bytes, not the size: an HTTP response's body.
        cell.bytes_per_sec = cell.msgs_per_sec * 100.0;
        cell.share = Some(LoadShare {
            host,
            hosts,
            start_at: START.to_owned(),
            connections: 2,
            first_connection: u64::from(host - 1) * 2,
            per_connection: vec![
                samples.len() as u64 / 2,
                samples.len() as u64 - samples.len() as u64 / 2,
            ],
            ..LoadShare::default()
        });
        let record = CellRecord {
            cell,
            histogram,
            intervals,
        };
        files::write_cell(&out.join("cells"), &record, 1).unwrap();
        set::write_manifest(&out, &manifest(&format!("load{host}"), "0.1.0")).unwrap();
        out
    }

    /// Latencies spread over six decades, completions over three seconds.
    fn samples(seed: u64, count: u64) -> Vec<(u64, u64)> {
        (0..count)
            .map(|index| {
                let mixed = (seed * 1_000_003 + index * 7919) % 1_000_000;
                let latency = 1_000 + mixed * mixed % 900_000_000;
                (latency, index * 3_000_000_000 / count)
            })
            .collect()
    }

    fn merged_histograms(out: &Path) -> Vec<Histogram<u64>> {
        files::read_hlog(&out.join("cells/target--closed-c6-s64.hlog"))
            .unwrap()
            .into_iter()
            .map(|(_, histogram)| histogram)
            .collect()
    }

    #[test]
    fn load_hosts_merge_into_the_histogram_of_all_their_samples() {
        let dir = tempfile::tempdir().unwrap();
        let per_host = [samples(1, 5000), samples(2, 3000), samples(3, 7000)];
        let dirs: Vec<PathBuf> = (1..=3)
            .map(|host| host_set(dir.path(), host, 3, &per_host[host as usize - 1], 3))
            .collect();
        let out = dir.path().join("merged");
        let merged = plan(&dirs, &out).unwrap();
        write(&out, &merged).unwrap();

        // The reference: one histogram that saw every sample of every host.
        let mut reference = recorder::new_histogram();
        let mut reference_seconds: Vec<Histogram<u64>> = (0..3).map(|_| recorder::new_histogram()).collect();
        for &(latency, at) in per_host.iter().flatten() {
            reference.record(latency).unwrap();
            reference_seconds[(at / 1_000_000_000) as usize]
                .record(latency)
                .unwrap();
        }
        let seconds = merged_histograms(&out);
        assert_eq!(seconds, reference_seconds, "per-second histograms differ");
        let mut whole = recorder::new_histogram();
        for second in &seconds {
            whole.add(second).unwrap();
        }
        let buckets = |histogram: &Histogram<u64>| -> Vec<(u64, u64)> {
            histogram
                .iter_recorded()
                .map(|bucket| (bucket.value_iterated_to(), bucket.count_at_value()))
                .collect()
        };
        assert_eq!(buckets(&whole), buckets(&reference));
        assert_eq!(whole, reference);

        let cell = files::read_cell_json(&out.join("cells/target--closed-c6-s64.json")).unwrap();
        assert_eq!(cell.messages, 15_000);
        assert_eq!(cell.msgs_per_sec, 5_000.0);
        assert!(
            (cell.bytes_per_sec - 500_000.0).abs() < 1e-6,
            "{}",
            cell.bytes_per_sec
        );
        assert_eq!(cell.latency_us, record::latency(&reference));
        assert_eq!(cell.hosts.len(), 3);
        assert_eq!(cell.hosts[1].messages, 3_000);
        assert_eq!(cell.fairness.min, 1_500);
        assert!(cell.share.is_none());
        // Each host's intervals stay in the log, tagged, and only there.
        let log = std::fs::read_to_string(out.join("cells/target--closed-c6-s64.hlog")).unwrap();
        for host in 1..=3 {
            assert_eq!(log.matches(&format!("Tag=host-{host},")).count(), 3, "{log}");
        }
        let manifest = set::read_manifest(&out).unwrap();
        assert_eq!(manifest.merged_from.len(), 3);
        assert_eq!(manifest.machine.hostname, "load1 | load2 | load3");
    }

    #[test]
    fn a_host_behind_or_late_flags_the_merged_cell() {
        let dir = tempfile::tempdir().unwrap();
        let first = host_set(dir.path(), 1, 2, &samples(1, 100), 3);
        let second = host_set(dir.path(), 2, 2, &samples(2, 100), 3);
        let path = second.join("cells/target--closed-c6-s64.json");
        let mut late = files::read_cell_json(&path).unwrap();
        late.share.as_mut().unwrap().late_start_ms = 250.0;
        late.flags = flags::judge(&late);
        assert_eq!(late.flags, [Flag::LateStart]);
        late.flags.push(Flag::BehindSchedule);
        std::fs::write(&path, serde_json::to_string(&late).unwrap()).unwrap();
        let merged = plan(&[first, second], &dir.path().join("merged")).unwrap();
        assert_eq!(
            merged.cells[0].cell().flags,
            [Flag::BehindSchedule, Flag::LateStart]
        );
    }

    #[test]
    fn lost_bytes_add_up_over_hosts_and_a_cell_written_before_them_merges() {
        let dir = tempfile::tempdir().unwrap();
        let first = host_set(dir.path(), 1, 2, &samples(1, 100), 3);
        let second = host_set(dir.path(), 2, 2, &samples(2, 100), 3);
        let path = first.join("cells/target--closed-c6-s64.json");
        let mut losing = files::read_cell_json(&path).unwrap();
        losing.errors.lost = 2;
        losing.errors.lost_bytes = 7;
        losing.flags = flags::judge(&losing);
        assert_eq!(losing.flags, [Flag::Errors]);
        std::fs::write(&path, serde_json::to_string(&losing).unwrap()).unwrap();
        // The other host's document is as a harness without the field wrote it.
        let path = second.join("cells/target--closed-c6-s64.json");
        let mut old: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let errors = old["errors"].as_object_mut().unwrap();
        assert!(errors.remove("lost").is_some() && errors.remove("lost_bytes").is_some());
        std::fs::write(&path, old.to_string()).unwrap();
        let merged = plan(&[first, second], &dir.path().join("merged")).unwrap();
        let cell = merged.cells[0].cell();
        assert_eq!((cell.errors.lost, cell.errors.lost_bytes), (2, 7));
        assert_eq!(cell.errors.total(), 2);
        assert_eq!(cell.hosts[0].errors, 2);
        assert_eq!(cell.flags, [Flag::Errors]);
        assert_eq!(cell.machine, None);
    }

    #[test]
    fn the_noisiest_host_speaks_for_the_merged_cell() {
        let dir = tempfile::tempdir().unwrap();
        let first = host_set(dir.path(), 1, 2, &samples(1, 100), 3);
        let second = host_set(dir.path(), 2, 2, &samples(2, 100), 3);
        for (dir, busy_percent, steal_percent) in [(&first, 45.0, 1.0), (&second, 2.0, 3.0)] {
            let path = dir.join("cells/target--closed-c6-s64.json");
            let mut cell = files::read_cell_json(&path).unwrap();
            cell.machine = Some(MachineStats {
                busy_percent,
                steal_percent,
                cpus: vec![1],
            });
            cell.flags = flags::judge(&cell);
            std::fs::write(&path, serde_json::to_string(&cell).unwrap()).unwrap();
        }
        let merged = plan(&[first, second], &dir.path().join("merged")).unwrap();
        let cell = merged.cells[0].cell();
        assert_eq!(
            cell.machine,
            Some(MachineStats {
                busy_percent: 45.0,
                steal_percent: 3.0,
                cpus: vec![1]
            })
        );
        assert_eq!(cell.flags, [Flag::Noisy]);
    }

    /// Each refusal is one line, and nothing is written.
    fn refused(dirs: &[PathBuf], out: &Path, expected: &str) {
        let error = match plan(dirs, out) {
            Ok(_) => panic!("the merge of {dirs:?} was not refused"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains(expected), "expected '{expected}' in: {error}");
        assert!(!error.contains('\n'), "{error}");
        assert!(!out.exists(), "a refused merge wrote {}", out.display());
    }

    #[test]
    fn incompatible_hosts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("merged");
        let one = host_set(dir.path(), 1, 3, &samples(1, 100), 3);
        let two = host_set(dir.path(), 2, 3, &samples(2, 100), 3);
        refused(&[one.clone(), two.clone()], &out, "share 3 of 3 missing");
        refused(&[one.clone(), two.clone(), two.clone()], &out, "share 2/3");
        let coarse = host_set(&dir.path().join("coarse"), 3, 3, &samples(3, 100), 2);
        refused(&[one.clone(), two.clone(), coarse], &out, "different precision");
        let three = host_set(dir.path(), 3, 3, &samples(3, 100), 3);
        let path = three.join("cells/target--closed-c6-s64.json");
        let mut other = files::read_cell_json(&path).unwrap();
        other.duration_s = 5.0;
        std::fs::write(&path, serde_json::to_string(&other).unwrap()).unwrap();
        refused(&[one.clone(), two.clone(), three.clone()], &out, "3 s measured");
        other.duration_s = 3.0;
        other.share.as_mut().unwrap().start_at = "2026-01-01T12:05:00Z".to_owned();
        std::fs::write(&path, serde_json::to_string(&other).unwrap()).unwrap();
        refused(&[one.clone(), two.clone(), three.clone()], &out, "missing");
        set::write_manifest(&three, &manifest("load3", "0.2.0")).unwrap();
        refused(&[one, two, three], &out, "harness 0.2.0");
    }

    fn shard_set(dir: &Path, index: u32, total: u32, cells: &[(&str, &str)]) -> PathBuf {
        let out = dir.join(format!("shard{index}"));
        std::fs::create_dir_all(&out).unwrap();
        for (label, scenario) in cells {
            let mut recorder = Recorder::new(3);
            recorder.record(1000, 0);
            let (histogram, intervals) = recorder.finish();
            let record = CellRecord {
                cell: cell(label, scenario, 1),
                histogram,
                intervals,
            };
            files::write_cell(&out.join("cells"), &record, 1).unwrap();
        }
        let mut manifest = manifest(&format!("node{index}"), "0.1.0");
        manifest.suite = serde_json::json!({ "name": "quick" });
        manifest.shard = Some(ShardRecord {
            index,
            total,
            source: format!("--shard {index}/{total}"),
            assignment: String::new(),
        });
        set::write_manifest(&out, &manifest).unwrap();
        out
    }

    #[test]
    fn shards_merge_into_the_union_of_their_cells() {
        let dir = tempfile::tempdir().unwrap();
        let one = shard_set(
            dir.path(),
            1,
            2,
            &[("epoll", "closed-c1-s64"), ("async", "closed-c10-s64")],
        );
        let two = shard_set(dir.path(), 2, 2, &[("epoll", "closed-c10-s64")]);
        let out = dir.path().join("merged");
        let merged = plan(&[one.clone(), two.clone()], &out).unwrap();
        assert!(merged.notes.is_empty());
        write(&out, &merged).unwrap();
        let mut files: Vec<String> = std::fs::read_dir(out.join("cells"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files.len(), 9, "{files:?}");
        assert_eq!(
            std::fs::read(one.join("cells/async--closed-c10-s64.hlog")).unwrap(),
            std::fs::read(out.join("cells/async--closed-c10-s64.hlog")).unwrap()
        );
        // A missing shard is said, not hidden.
        let partial = plan(std::slice::from_ref(&one), &dir.path().join("partial")).unwrap();
        assert!(
            partial.notes[0].contains("shard 2 of 2 not given"),
            "{:?}",
            partial.notes
        );

        let again = dir.path().join("again");
        refused(&[one.clone(), one.clone()], &again, "shard 1/2 is given twice");
        let clash = shard_set(&dir.path().join("clash"), 2, 2, &[("epoll", "closed-c1-s64")]);
        refused(&[one.clone(), clash], &again, "is in both");
        let full = shard_set(&dir.path().join("full"), 2, 2, &[]);
        let mut manifest = set::read_manifest(&full).unwrap();
        manifest.suite = serde_json::json!({ "name": "full" });
        set::write_manifest(&full, &manifest).unwrap();
        refused(&[one.clone(), full], &again, "suite 'full'");
        let error = format!("{:#}", plan(&[one.clone(), two], &out).err().unwrap());
        assert!(error.contains("already holds cells"), "{error}");
        let host = host_set(dir.path(), 1, 1, &samples(1, 10), 3);
        refused(&[one, host], &again, "one kind at a time");
    }
}
