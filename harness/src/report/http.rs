//! The report's HTTP section, for result sets with `--protocol http` cells
//! (the `http` suite): requests per second pipelined 1 against deeper at
//! the same connections, a static file against plaintext, and the HTTP
//! errors by kind beside the warnings a user's server earned. And the
//! section of the `work` suite (`--work wait:W`, `cpu:W`, echo and HTTP
//! alike): answers per second against the work, each under the ideal the
//! course's rule gives where the model's concurrency makes it computable.
//! Latency, CPU and the other sweeps are the report's ordinary sections,
//! which draw these cells as any other.

use super::charts::{ChartBody, Reference, SweepChart, SweepPoint, SweepSeries, XScale};
use super::document::{Builder, Section, Table};
use super::groups::{Spread, count, number};
use super::load::ResultSet;
use crate::protocol::{Protocol, Work};
use crate::results::cell::{Cell, Errors, Shape};
use std::collections::{BTreeMap, BTreeSet};

/// The report's sections for HTTP cells and for cells with work, each
/// present only when the set has such cells.
pub(super) fn sections(set: &ResultSet, builder: &mut Builder) -> Vec<Section> {
    let cells: Vec<&Cell> = set.cells.iter().map(|data| &data.cell).collect();
    let mut sections = http_sections(&cells, builder);
    sections.extend(work_section(&cells, builder));
    sections
}

/// An HTTP cell: its protocol says so, or (a cell written before the
/// protocol was recorded) its scenario is named as the harness names HTTP
/// scenarios (`http-plaintext-closed-c100-p16`).
fn is_http(cell: &Cell) -> bool {
    cell.protocol == Protocol::Http || cell.scenario.starts_with("http-")
}

/// What each request asked for (`plaintext`, `static:64k.bin`), from the
/// cell or, for older cells, the scenario's name.
fn request(cell: &Cell) -> String {
    if let Some(request) = &cell.request {
        return request.clone();
    }
    let tag = cell.scenario.strip_prefix("http-").unwrap_or(&cell.scenario);
    let tag = ["-closed", "-open", "-churn"]
        .iter()
        .find_map(|shape| tag.split_once(shape).map(|(request, _)| request))
        .unwrap_or(tag);
    match tag.strip_prefix("static-") {
        Some(path) => format!("static:{path}"),
        None => tag.to_owned(),
    }
}

/// Requests in flight per connection: the cell's, or (older cells, whose
/// field reads as 1) the scenario's `-pN`.
fn pipeline(cell: &Cell) -> u32 {
    if cell.pipeline > 1 {
        return cell.pipeline;
    }
    cell.scenario
        .split('-')
        .rev()
        .find_map(|part| part.strip_prefix('p')?.parse::<u32>().ok())
        .unwrap_or(1)
}

/// The work a model was told to do before each answer (`--work`, kept in
/// the cell's model options); none for a command or a target.
fn work(cell: &Cell) -> Work {
    cell.model_args
        .windows(2)
        .filter(|pair| pair[0] == "--work")
        .find_map(|pair| pair[1].parse().ok())
        .unwrap_or_default()
}

/// The option `name`'s value among a model's options (`--workers 64`).
fn option(cell: &Cell, name: &str) -> Option<String> {
    cell.model_args
        .windows(2)
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].clone())
}

/// Median and range of `values`, `median [min–max]` for repeats.
fn with_range(spread: &Spread) -> String {
    if spread.runs > 1 && spread.max > spread.min {
        format!(
            "{} [{}–{}]",
            count(spread.median),
            count(spread.min),
            count(spread.max)
        )
    } else {
        count(spread.median)
    }
}

/// Requests per second by (label, connections) and a second key, over
/// the repeats, for closed-loop HTTP cells without work.
type Rates<'a, K> = BTreeMap<(usize, &'a str, u32), BTreeMap<K, (Vec<f64>, bool)>>;

/// Pipelining, a static file against plaintext, and errors by kind: each
/// a section of its own where the set has its cells.
fn http_sections(cells: &[&Cell], builder: &mut Builder) -> Vec<Section> {
    let http: Vec<&Cell> = cells.iter().copied().filter(|cell| is_http(cell)).collect();
    if http.is_empty() {
        return Vec::new();
    }
    let plain: Vec<&Cell> = http
        .iter()
        .copied()
        .filter(|cell| cell.shape == Shape::Closed && work(cell) == Work::None)
        .collect();
    let labels = builder.labels.clone();
    fn key<'a>(labels: &super::groups::Labels, cell: &'a Cell) -> (usize, &'a str, u32) {
        (labels.rank(&cell.label), cell.label.as_str(), cell.connections)
    }
    let mut sections = Vec::new();

    // Pipelining: plaintext at each depth, per label and connections.
    let mut by_depth: Rates<u32> = BTreeMap::new();
    for cell in plain.iter().filter(|cell| request(cell) == "plaintext") {
        let entry = by_depth
            .entry(key(&labels, cell))
            .or_default()
            .entry(pipeline(cell))
            .or_default();
        entry.0.push(cell.msgs_per_sec);
        entry.1 |= !cell.flags.is_empty();
    }
    let depths: BTreeSet<u32> = by_depth
        .values()
        .flat_map(|depths| depths.keys().copied())
        .collect();
    let deepest = depths.iter().copied().max().unwrap_or(1);
    if depths.len() > 1 && depths.contains(&1) {
        let mut charts = Vec::new();
        let rows: Vec<Vec<String>> = by_depth
            .iter()
            .filter(|(_, at)| at.contains_key(&1) && at.contains_key(&deepest))
            .map(|((_, label, connections), at)| {
                let spread = |depth: u32| at.get(&depth).and_then(|(rates, _)| Spread::of(rates.clone()));
                let mut row = vec![label.to_string(), count(f64::from(*connections))];
                row.extend(depths.iter().map(|depth| {
                    spread(*depth).map_or_else(|| "–".to_owned(), |spread| with_range(&spread))
                }));
                let ratio = match (spread(deepest), spread(1)) {
                    (Some(deep), Some(one)) if one.median > 0.0 => {
                        format!("{}×", number(deep.median / one.median))
                    }
                    _ => "–".to_owned(),
                };
                row.push(ratio);
                row
            })
            .collect();
        let mut headers = vec!["label".to_owned(), "connections".to_owned()];
        headers.extend(depths.iter().map(|depth| format!("pipelined {depth} (req/s)")));
        headers.push(format!("{deepest} ÷ 1"));
        let connections: BTreeSet<u32> = by_depth.keys().map(|(_, _, connections)| *connections).collect();
        for at_connections in connections {
            let series: Vec<SweepSeries> = by_depth
                .iter()
                .filter(|((_, _, connections), at)| *connections == at_connections && at.len() > 1)
                .map(|((_, label, _), at)| SweepSeries {
                    label: label.to_string(),
                    style: builder.labels.style(label),
                    points: at
                        .iter()
                        .filter_map(|(depth, (rates, flagged))| {
                            Some(SweepPoint {
                                x: f64::from(*depth),
                                y: Spread::of(rates.clone())?,
                                flagged: *flagged,
                            })
                        })
                        .collect(),
                })
                .collect();
            if series.is_empty() {
                continue;
            }
            charts.push(builder.add_chart(
                &format!("http-pipelining--c{at_connections}"),
                format!(
                    "HTTP plaintext: requests per second against pipeline depth, {} connections",
                    count(f64::from(at_connections))
                ),
                ChartBody::Sweep(SweepChart {
                    x_label: "requests in flight per connection (pipeline depth)".to_owned(),
                    x_scale: XScale::Log,
                    y_label: "verified responses per second".to_owned(),
                    y_log: false,
                    series,
                    second: None,
                    references: Vec::new(),
                }),
            ));
        }
        sections.push(Section {
            id: "http-pipelining".to_owned(),
            title: "HTTP: pipelined against unpipelined requests".to_owned(),
            paragraphs: vec![format!(
                "GET /plaintext with 1 and up to {deepest} requests in flight per connection, \
                 at the same connections; the last column is how many times the deepest \
                 pipeline's rate is the unpipelined one's. {VERIFIED}"
            )],
            charts,
            table: Some(Table { headers, rows }),
        });
    }

    // A static file against plaintext, unpipelined, at the same connections.
    let mut by_request: Rates<String> = BTreeMap::new();
    let mut static_bytes: BTreeMap<(usize, &str, u32, String), Vec<f64>> = BTreeMap::new();
    for cell in plain.iter().filter(|cell| pipeline(cell) == 1) {
        let asked = request(cell);
        if asked.starts_with("static:") {
            let (rank, label, connections) = key(&labels, cell);
            static_bytes
                .entry((rank, label, connections, asked.clone()))
                .or_default()
                .push(cell.bytes_per_sec);
        }
        let entry = by_request
            .entry(key(&labels, cell))
            .or_default()
            .entry(asked)
            .or_default();
        entry.0.push(cell.msgs_per_sec);
        entry.1 |= !cell.flags.is_empty();
    }
    let mut static_rows = Vec::new();
    // (rank, label, file) → (connections, share %, flagged).
    type Shares<'a> = BTreeMap<(usize, &'a str, String), Vec<(u32, f64, bool)>>;
    let mut shares: Shares = BTreeMap::new();
    for ((rank, label, connections), at) in &by_request {
        let Some((plaintext, plain_flagged)) = at.get("plaintext") else {
            continue;
        };
        let Some(plaintext) = Spread::of(plaintext.clone()) else {
            continue;
        };
        for (asked, (rates, flagged)) in at.iter().filter(|(asked, _)| asked.starts_with("static:")) {
            let Some(file) = Spread::of(rates.clone()) else {
                continue;
            };
            let mib_per_sec = static_bytes
                .get(&(*rank, *label, *connections, asked.clone()))
                .and_then(|bytes| Spread::of(bytes.iter().map(|bytes| bytes / 1_048_576.0)))
                .map_or_else(|| "–".to_owned(), |spread| number(spread.median));
            let share = (plaintext.median > 0.0).then(|| file.median / plaintext.median);
            static_rows.push(vec![
                label.to_string(),
                count(f64::from(*connections)),
                asked.clone(),
                with_range(&plaintext),
                with_range(&file),
                mib_per_sec,
                share.map_or_else(|| "–".to_owned(), |share| format!("{}%", number(share * 100.0))),
            ]);
            if let Some(share) = share {
                shares.entry((*rank, *label, asked.clone())).or_default().push((
                    *connections,
                    share * 100.0,
                    *flagged || *plain_flagged,
                ));
            }
        }
    }
    if !static_rows.is_empty() {
        let mut charts = Vec::new();
        let table = Table {
            headers: [
                "label",
                "connections",
                "request",
                "plaintext (req/s)",
                "static (req/s)",
                "static (MiB/s)",
                "static ÷ plaintext",
            ]
            .map(str::to_owned)
            .to_vec(),
            rows: static_rows,
        };
        let files: BTreeSet<&String> = shares.keys().map(|(_, _, asked)| asked).collect();
        for file in files {
            let series: Vec<SweepSeries> = shares
                .iter()
                .filter(|((_, _, asked), _)| asked == file)
                .map(|((_, label, _), points)| SweepSeries {
                    label: label.to_string(),
                    style: builder.labels.style(label),
                    points: points
                        .iter()
                        .map(|(connections, share, flagged)| SweepPoint {
                            x: f64::from(*connections),
                            y: Spread::one(*share),
                            flagged: *flagged,
                        })
                        .collect(),
                })
                .collect();
            let name = file.trim_start_matches("static:");
            charts.push(builder.add_chart(
                &format!("http-static-share--{name}"),
                format!("HTTP: GET /{name} requests per second as a share of plaintext's"),
                ChartBody::Sweep(SweepChart {
                    x_label: "connections".to_owned(),
                    x_scale: XScale::Log,
                    y_label: "static ÷ plaintext requests per second (%)".to_owned(),
                    y_log: false,
                    series,
                    second: None,
                    references: Vec::new(),
                }),
            ));
        }
        sections.push(Section {
            id: "http-static".to_owned(),
            title: "HTTP: a static file against plaintext".to_owned(),
            paragraphs: vec![format!(
                "Unpipelined, at the same connections; the share is the file's requests per \
                 second as a percentage of plaintext's (MiB/s counts the files' bodies). \
                 {VERIFIED}"
            )],
            charts,
            table: Some(table),
        });
    }

    // Errors by kind, per label, over all its HTTP cells.
    let mut by_label: BTreeMap<(usize, &str), (u64, Errors)> = BTreeMap::new();
    for cell in &http {
        let (verified, errors) = by_label
            .entry((labels.rank(&cell.label), cell.label.as_str()))
            .or_default();
        *verified += cell.messages;
        errors.add(&cell.errors);
    }
    let error_rows: Vec<Vec<String>> = by_label
        .iter()
        .map(|((_, label), (verified, errors))| {
            let (failures, warnings) = kinds(errors);
            let list = |kinds: Vec<String>| {
                if kinds.is_empty() {
                    "none".to_owned()
                } else {
                    kinds.join(", ")
                }
            };
            vec![
                label.to_string(),
                count(*verified as f64),
                list(failures),
                list(warnings),
            ]
        })
        .collect();
    let clean = by_label.values().all(|(_, errors)| errors.total() == 0);
    let mut paragraphs = vec![if clean {
        "Errors by kind: none; every response was verified.".to_owned()
    } else {
        "Errors by kind: a response that failed a check counts as its kind (http_status by \
         code, http_length, http_body, http_order, http_parse, http_date, http_server) and \
         never as throughput; connection failures (reset, timeout, connect, closed, lost) \
         count beside them."
            .to_owned()
    }];
    paragraphs.push(
        "Warnings are Date and Server faults of a user's server (--server-cmd, --target): \
         reported, not failures, and its responses count."
            .to_owned(),
    );
    sections.push(Section {
        id: "http-errors".to_owned(),
        title: "HTTP: errors by kind".to_owned(),
        paragraphs,
        charts: Vec::new(),
        table: Some(Table {
            headers: ["label", "verified responses", "errors by kind", "warnings"]
                .map(str::to_owned)
                .to_vec(),
            rows: error_rows,
        }),
    });
    sections
}

/// What every HTTP rate in the report counts.
const VERIFIED: &str = "Every response is parsed in full and checked (status 200, \
    Content-Length equal to the body, the body itself, the order of pipelined responses, \
    Date and Server): requests per second count verified responses only. Medians of the \
    repeats, [min–max] where there are several.";

/// The kinds counted, as `http_status 500×3`, `http_body 2`: failures
/// (HTTP's, then the transport's), then warnings.
fn kinds(errors: &Errors) -> (Vec<String>, Vec<String>) {
    let (mut failures, warnings) = errors.http_kinds();
    failures.extend(
        [
            ("mismatch", errors.mismatch),
            ("reset", errors.reset),
            ("timeout", errors.timeout),
            ("connect", errors.connect),
            ("closed", errors.closed),
            ("addr_unavailable", errors.addr_unavailable),
            ("lost", errors.lost),
        ]
        .iter()
        .filter(|(_, count)| *count > 0)
        .map(|(kind, count)| format!("{kind} {count}")),
    );
    (failures, warnings)
}

/// How many answers a model can have waited on at once (`wait:W`), or can
/// compute at once (`cpu:W`), by the course's rule, and the rule's words;
/// `None` where the model's concurrency is not known here (a command, a
/// target, a Python server).
fn concurrency(cell: &Cell, work: Work) -> Option<(u32, &'static str)> {
    let connections = cell.connections.max(1);
    let workers = |name: &str, default: u32| {
        option(cell, name)
            .and_then(|value| value.parse::<u32>().ok())
            .unwrap_or(default)
    };
    let cpus = (!cell.server_cpus.is_empty()).then_some(cell.server_cpus.len() as u32);
    let model = cell.model.as_deref()?;
    match work {
        Work::None => None,
        Work::Wait(_) => match model {
            "single" => Some((1, "one answer at a time")),
            "pool" => Some((
                workers("--workers", 16).min(connections),
                "its workers' waits overlap",
            )),
            "process" => match option(cell, "--prefork") {
                Some(_) if option(cell, "--accept").is_none_or(|accept| accept == "blocking") => Some((
                    workers("--prefork", 1).min(connections),
                    "its workers' waits overlap",
                )),
                _ => Some((connections, "every connection's wait overlaps")),
            },
            "threaded" | "nonblocking" | "select" | "epoll" | "coroutine" | "async" | "uring"
            | "reuseport" => Some((connections, "every connection's wait overlaps")),
            _ => None,
        },
        Work::Cpu(_) => match model {
            "single" | "nonblocking" | "select" | "epoll" | "uring" => Some((1, "one thread, one core")),
            "pool" => Some((
                workers("--workers", 16).min(connections).min(cpus?),
                "its workers on the server's CPUs",
            )),
            "threaded" | "process" | "coroutine" | "async" | "reuseport" => {
                Some((connections.min(cpus?), "the server's CPUs"))
            }
            _ => None,
        },
    }
}

/// The ideal answers per second with `work` for `concurrency` answers at
/// once: each takes W µs.
fn ideal(work: Work, concurrency: u32) -> Option<f64> {
    match work {
        Work::Wait(micros) | Work::Cpu(micros) if micros > 0 => {
            Some(f64::from(concurrency) * 1e6 / micros as f64)
        }
        _ => None,
    }
}

fn work_section(cells: &[&Cell], builder: &mut Builder) -> Option<Section> {
    // Closed-loop cells with work, by chart: (kind, protocol, request,
    // connections, pipeline) → label → work µs → rates.
    type Key = (&'static str, Protocol, String, u32, u32);
    type ByLabel<'a> = BTreeMap<(usize, &'a str), BTreeMap<u64, Vec<&'a Cell>>>;
    let mut charts_data: BTreeMap<Key, ByLabel> = BTreeMap::new();
    for cell in cells.iter().copied().filter(|cell| cell.shape == Shape::Closed) {
        let (kind, micros) = match work(cell) {
            Work::None => continue,
            Work::Wait(micros) => ("wait", micros),
            Work::Cpu(micros) => ("cpu", micros),
        };
        let protocol = if is_http(cell) {
            Protocol::Http
        } else {
            cell.protocol
        };
        let asked = if protocol == Protocol::Http {
            request(cell)
        } else {
            String::new()
        };
        charts_data
            .entry((kind, protocol, asked, cell.connections, pipeline(cell)))
            .or_default()
            .entry((builder.labels.rank(&cell.label), cell.label.as_str()))
            .or_default()
            .entry(micros)
            .or_default()
            .push(cell);
    }
    if charts_data.is_empty() {
        return None;
    }
    let mut charts = Vec::new();
    let mut rows = Vec::new();
    for ((kind, protocol, asked, connections, depth), labels) in &charts_data {
        let unit = match protocol {
            Protocol::Http => "requests",
            Protocol::Echo | Protocol::Udp => "messages",
        };
        let what = match protocol {
            Protocol::Http => format!("HTTP {asked}"),
            other => other.name().to_owned(),
        };
        let mut series = Vec::new();
        // Ideal lines by how many answers overlap: (concurrency) → W → ideal.
        let mut bounds: BTreeMap<u32, (BTreeSet<&str>, BTreeMap<u64, f64>)> = BTreeMap::new();
        for ((_, label), by_work) in labels {
            let mut points = Vec::new();
            for (micros, cells) in by_work {
                let Some(spread) = Spread::of(cells.iter().map(|cell| cell.msgs_per_sec)) else {
                    continue;
                };
                points.push(SweepPoint {
                    x: *micros as f64,
                    y: spread,
                    flagged: cells.iter().any(|cell| !cell.flags.is_empty()),
                });
                let told = work(cells[0]);
                let bound = concurrency(cells[0], told)
                    .filter(|_| *depth == 1)
                    .and_then(|(overlap, rule)| Some((overlap, rule, ideal(told, overlap)?)));
                if let Some((overlap, _, value)) = bound {
                    let (members, line) = bounds.entry(overlap).or_default();
                    members.insert(*label);
                    line.insert(*micros, value);
                }
                rows.push(vec![
                    label.to_string(),
                    what.clone(),
                    format!("{kind}:{micros}"),
                    count(f64::from(*connections)),
                    depth.to_string(),
                    with_range(&spread),
                    bound.map_or_else(|| "–".to_owned(), |(_, _, value)| count(value)),
                    bound.map_or_else(
                        || "–".to_owned(),
                        |(_, _, value)| format!("{}%", number(spread.median / value * 100.0)),
                    ),
                    bound.map_or_else(
                        || "not computable here".to_owned(),
                        |(overlap, rule, _)| format!("{overlap} × 10⁶/W: {rule}"),
                    ),
                ]);
            }
            if !points.is_empty() {
                series.push(SweepSeries {
                    label: label.to_string(),
                    style: builder.labels.style(label),
                    points,
                });
            }
        }
        let references = bounds
            .into_iter()
            .rev()
            .map(|(overlap, (members, line))| Reference {
                label: format!("ideal {overlap} × 10⁶/W"),
                tag: format!(
                    "{overlap}×: {}",
                    members.into_iter().collect::<Vec<_>>().join(", ")
                ),
                points: line
                    .into_iter()
                    .map(|(micros, value)| (micros as f64, value))
                    .collect(),
            })
            .collect();
        let depth_text = if *depth > 1 {
            format!(", pipelined {depth}")
        } else {
            String::new()
        };
        let kind_text = match *kind {
            "wait" => "wait (I/O-bound)",
            _ => "CPU (compute-bound)",
        };
        let stem = format!(
            "work-{kind}--{}--c{connections}{}",
            if asked.is_empty() {
                protocol.name().to_owned()
            } else {
                format!("{}-{asked}", protocol.name())
            },
            if *depth > 1 {
                format!("-p{depth}")
            } else {
                String::new()
            }
        );
        charts.push(builder.add_chart(
            &stem,
            format!(
                "{what}: {unit} per second against {kind_text} per answer, {} connections{depth_text}",
                count(f64::from(*connections))
            ),
            ChartBody::Sweep(SweepChart {
                x_label: format!("{kind} per answer (µs, W)"),
                x_scale: XScale::Log,
                y_label: format!("{unit} per second"),
                // Log on both axes: an ideal N × 10⁶/W is a straight line.
                y_log: true,
                series,
                second: None,
                references,
            }),
        ));
    }
    Some(Section {
        id: "work".to_owned(),
        title: "Work per answer: the course's rule, measured".to_owned(),
        paragraphs: vec![
            "Before each answer (an echoed message, an HTTP response) the model waits W µs \
             (wait:W, I/O-bound: the stand-in for a database) or computes for about W µs of \
             its own CPU (cpu:W). The course's rule: I/O-bound work overlaps in threads, \
             coroutines and event loops alike, so a model that overlaps every connection's \
             wait serves at most connections × 10⁶/W answers per second, a pool its \
             workers' worth, single 10⁶/W; compute-bound work needs cores, so a model \
             serves at most the threads it computes on, bounded by the server's CPUs, × \
             10⁶/W."
                .to_owned(),
            "The dashed grey lines are those ideals, computed from the rule, not measured, \
             each tagged with its labels; a label whose concurrency is not known here (a \
             command, a target, a Python server), or a pipelined cell, has none. The table \
             gives each measured rate as a share of its ideal."
                .to_owned(),
        ],
        charts,
        table: Some(Table {
            headers: [
                "label",
                "protocol",
                "work",
                "connections",
                "pipeline",
                "measured (/s)",
                "ideal (/s)",
                "measured ÷ ideal",
                "rule",
            ]
            .map(str::to_owned)
            .to_vec(),
            rows,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::document::{self, Document};
    use super::super::load::CellData;
    use super::*;

    fn set(cells: Vec<Cell>) -> ResultSet {
        ResultSet {
            dir: std::path::PathBuf::from("fixture"),
            manifest: serde_json::json!({}),
            cells: cells
                .into_iter()
                .map(|cell| CellData {
                    cell,
                    spectrum: Vec::new(),
                    intervals: Vec::new(),
                })
                .collect(),
            tour: None,
            faults: None,
        }
    }

    /// An HTTP cell as `bench --protocol http` records it: `label` asking
    /// for `request` at 100 connections, `pipeline` deep.
    fn http_cell(label: &str, request: &str, pipeline: u32, repeat: u32, rate: f64) -> Cell {
        let tag = match request.strip_prefix("static:") {
            Some(path) => format!("static-{path}"),
            None => request.to_owned(),
        };
        let depth = if pipeline > 1 {
            format!("-p{pipeline}")
        } else {
            String::new()
        };
        let mut cell = Cell::example(label, &format!("http-{tag}-closed-c100{depth}"), repeat, rate);
        cell.protocol = Protocol::Http;
        cell.request = Some(request.to_owned());
        cell.pipeline = pipeline;
        cell.connections = 100;
        cell
    }

    fn section<'d>(document: &'d Document, id: &str) -> Option<&'d Section> {
        document.sections.iter().find(|section| section.id == id)
    }

    fn row<'s>(section: &'s Section, label: &str) -> &'s Vec<String> {
        let table = section.table.as_ref().expect("a table");
        table
            .rows
            .iter()
            .find(|row| row[0] == label)
            .unwrap_or_else(|| panic!("no row for {label}: {:?}", table.rows))
    }

    fn http_fixture() -> Vec<Cell> {
        let mut cells = Vec::new();
        for repeat in 1..=3 {
            let jitter = f64::from(repeat);
            cells.push(http_cell("epoll", "plaintext", 1, repeat, 40_000.0 + jitter));
            cells.push(http_cell("epoll", "plaintext", 16, repeat, 150_000.0 + jitter));
            cells.push(http_cell("epoll", "static:64k.bin", 1, repeat, 9_000.0 + jitter));
            cells.push(http_cell("nginx-1", "plaintext", 1, repeat, 50_000.0 + jitter));
            cells.push(http_cell("nginx-1", "plaintext", 16, repeat, 120_000.0 + jitter));
        }
        cells[0].errors.http_status.insert(500, 3);
        cells[1].errors.http_body = 2;
        for cell in cells.iter_mut().filter(|cell| cell.label == "nginx-1") {
            cell.errors.http_date_warnings = 3;
        }
        cells
    }

    #[test]
    fn http_cells_get_pipelining_static_and_errors_sections_with_their_numbers() {
        let cells = http_fixture();
        let median = |label: &str, request: &str, depth: u32| {
            let rates = cells
                .iter()
                .filter(|cell| cell.label == label && request_of(cell) == request && cell.pipeline == depth)
                .map(|cell| cell.msgs_per_sec);
            Spread::of(rates).unwrap().median
        };
        let document = document::build(&set(cells.clone()));

        let pipelining = section(&document, "http-pipelining").expect("a pipelining section");
        let epoll = row(pipelining, "epoll");
        let ratio = median("epoll", "plaintext", 16) / median("epoll", "plaintext", 1);
        assert_eq!(epoll.last().unwrap(), &format!("{}×", number(ratio)), "{epoll:?}");
        assert_eq!(
            epoll[2],
            format!("{} [{}–{}]", count(40_002.0), count(40_001.0), count(40_003.0))
        );
        assert!(row(pipelining, "nginx-1").last().unwrap().ends_with('×'));

        let share = median("epoll", "static:64k.bin", 1) / median("epoll", "plaintext", 1) * 100.0;
        let statics = section(&document, "http-static").expect("a static section");
        assert_eq!(row(statics, "epoll")[6], format!("{}%", number(share)));

        let errors = section(&document, "http-errors").expect("an errors section");
        let epoll = row(errors, "epoll");
        assert_eq!(epoll[2], "http_status 500×3, http_body 2", "{epoll:?}");
        assert_eq!(epoll[3], "none");
        let nginx = row(errors, "nginx-1");
        assert_eq!(nginx[2], "none");
        let warned: u64 = cells
            .iter()
            .filter(|cell| cell.label == "nginx-1")
            .map(|cell| cell.errors.http_date_warnings)
            .sum();
        assert_eq!(nginx[3], format!("http_date {warned}"));
        let verified: u64 = cells
            .iter()
            .filter(|cell| cell.label == "epoll")
            .map(|cell| cell.messages)
            .sum();
        assert_eq!(epoll[1], count(verified as f64));

        // Stable figure ids, and the pipelining chart has a line per label.
        let files: Vec<&str> = document.charts.iter().map(|chart| chart.file.as_str()).collect();
        assert!(files.contains(&"http-pipelining--c100.svg"), "{files:?}");
        assert!(files.contains(&"http-static-share--64k.bin.svg"), "{files:?}");
        let chart = document
            .charts
            .iter()
            .find(|chart| chart.file == "http-pipelining--c100.svg")
            .unwrap();
        let ChartBody::Sweep(sweep) = &chart.body else {
            panic!("a sweep chart")
        };
        let labels: Vec<&str> = sweep.series.iter().map(|series| series.label.as_str()).collect();
        assert_eq!(labels, ["epoll", "nginx-1"]);
    }

    fn request_of(cell: &Cell) -> String {
        request(cell)
    }

    #[test]
    fn every_verified_response_says_none_and_an_echo_set_has_no_http_section() {
        let mut clean = http_fixture();
        for cell in &mut clean {
            cell.errors = Errors::default();
        }
        let document = document::build(&set(clean));
        let errors = section(&document, "http-errors").unwrap();
        assert!(errors.paragraphs[0].contains("none; every response was verified"));
        assert!(
            errors
                .table
                .as_ref()
                .unwrap()
                .rows
                .iter()
                .all(|row| row[2] == "none")
        );

        let echo = vec![
            Cell::example("epoll", "closed-c10-s64", 1, 1000.0),
            Cell::example("single", "closed-c10-s64", 1, 500.0),
        ];
        let document = document::build(&set(echo));
        let ids: Vec<&str> = document
            .sections
            .iter()
            .map(|section| section.id.as_str())
            .collect();
        assert!(
            !ids.iter().any(|id| id.starts_with("http") || *id == "work"),
            "{ids:?}"
        );
        assert!(
            !document
                .charts
                .iter()
                .any(|chart| chart.file.starts_with("http-"))
        );
    }

    #[test]
    fn older_cells_are_known_by_their_scenario_name() {
        // A cell document written before protocol, request and pipeline were.
        let mut document = serde_json::to_value(Cell::example("epoll", "closed-c10-s64", 1, 1.0)).unwrap();
        for field in ["protocol", "request", "pipeline"] {
            document.as_object_mut().unwrap().remove(field);
        }
        let read: Cell = serde_json::from_value(document).unwrap();
        assert_eq!(
            (read.protocol, read.request, read.pipeline),
            (Protocol::Echo, None, 1)
        );
        let mut cell = Cell::example("epoll", "http-static-64k.bin-closed-c100-p16", 1, 1.0);
        assert_eq!(cell.protocol, Protocol::Echo);
        assert!(is_http(&cell));
        assert_eq!(request(&cell), "static:64k.bin");
        assert_eq!(pipeline(&cell), 16);
        cell.scenario = "closed-c100-s64-p4".to_owned();
        assert!(!is_http(&cell));
        assert_eq!(pipeline(&cell), 4);
    }

    fn work_cell(label: &str, model: &str, args: &[&str], work: &str, rate: f64) -> Cell {
        let mut cell = Cell::example(
            label,
            &format!("closed-c100-s64-{}", work.replace(':', "")),
            1,
            rate,
        );
        cell.model = Some(model.to_owned());
        cell.model_args = args.iter().map(|arg| arg.to_string()).collect();
        cell.model_args.extend(["--work".to_owned(), work.to_owned()]);
        cell.connections = 100;
        cell
    }

    #[test]
    fn a_wait_sweep_draws_each_models_ideal_as_a_dashed_reference() {
        let mut cells = Vec::new();
        for micros in [100u64, 1000] {
            let work = format!("wait:{micros}");
            let per_second = 1e6 / micros as f64;
            cells.push(work_cell("single", "single", &[], &work, 0.9 * per_second));
            cells.push(work_cell("pool", "pool", &[], &work, 0.9 * 16.0 * per_second));
            cells.push(work_cell(
                "pool-64",
                "pool",
                &["--workers", "64"],
                &work,
                0.9 * 64.0 * per_second,
            ));
            cells.push(work_cell("epoll", "epoll", &[], &work, 0.5 * 100.0 * per_second));
        }
        // A command's concurrency is not known: no ideal of its own.
        let mut command = work_cell("nginx-1", "epoll", &[], "wait:1000", 500.0);
        command.model = None;
        cells.push(command);
        let document = document::build(&set(cells));
        let work = section(&document, "work").expect("a work section");
        let chart = document
            .charts
            .iter()
            .find(|chart| chart.file == "work-wait--echo--c100.svg")
            .unwrap_or_else(|| {
                panic!(
                    "{:?}",
                    document.charts.iter().map(|c| &c.file).collect::<Vec<_>>()
                )
            });
        let ChartBody::Sweep(sweep) = &chart.body else {
            panic!("a sweep chart")
        };
        let lines: Vec<(&str, Vec<(f64, f64)>)> = sweep
            .references
            .iter()
            .map(|reference| (reference.label.as_str(), reference.points.clone()))
            .collect();
        let expected = |overlap: f64| vec![(100.0, overlap * 1e4), (1000.0, overlap * 1e3)];
        assert_eq!(
            lines,
            [
                ("ideal 100 × 10⁶/W", expected(100.0)),
                ("ideal 64 × 10⁶/W", expected(64.0)),
                ("ideal 16 × 10⁶/W", expected(16.0)),
                ("ideal 1 × 10⁶/W", expected(1.0)),
            ]
        );
        assert_eq!(sweep.references[0].tag, "100×: epoll");
        // The table gives the measured share of the ideal; none for the command.
        let epoll = work
            .table
            .as_ref()
            .unwrap()
            .rows
            .iter()
            .find(|row| row[0] == "epoll" && row[2] == "wait:1000")
            .unwrap();
        assert_eq!(epoll[7], "50.0%", "{epoll:?}");
        assert_eq!(row(work, "nginx-1")[6], "–");
        // Drawn: dashed, tagged, and said in the alt text.
        let svg = super::super::charts::render(chart).unwrap();
        assert!(svg.contains("100×: epoll"), "the tag is drawn");
        assert!(super::super::charts::alt_text(chart).contains("ideal 16 × 10⁶/W"));
        let csv = super::super::export::csv(chart).unwrap();
        assert!(csv.contains("ideal 1 × 10⁶/W,1000,1000,"), "{csv}");
    }
}
