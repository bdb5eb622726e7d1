//! How cells are grouped for display: repeats into entries, entries into
//! scenarios, scenarios into sweeps; the fixed order and colour of labels;
//! number formatting shared by charts, tables and `harness compare`.

use super::load::CellData;
use crate::results::cell::{Cell, Flag, Shape};
use std::collections::{BTreeMap, BTreeSet};

/// The models in the order of the progression; their colours never change.
pub const MODEL_ORDER: [&str; echo_core::MODELS.len()] = echo_core::MODELS;

/// Variants of a model the suites name: each keeps a fixed marker and
/// dash, after the models'.
const KNOWN_VARIANTS: [&str; 3] = ["epoll-edge", "async-current-thread", "process-prefork"];

/// A model family: its members, and the hue they share.
type Family = (&'static [&'static str], (u8, u8, u8));

/// Okabe & Ito's palette ("Color Universal Design", 2008): hues told apart
/// under the common colour-vision deficiencies. Each model family takes one
/// hue; its members take shades of it ([`SHADES`]), and every series also
/// has its own marker and dash ([`Labels::style`]), so a chart stays
/// readable in greyscale.
const FAMILIES: [Family; 5] = [
    // A process or a thread per client, and its bounded and serial forms.
    (
        &["single", "threaded", "pool", "process", "process-prefork"],
        (213, 94, 0),
    ),
    // Non-blocking sockets polled by the program.
    (&["nonblocking", "select"], (230, 159, 0)),
    // Readiness from the kernel's epoll.
    (&["epoll", "epoll-edge", "reuseport"], (0, 114, 178)),
    // Tasks and coroutines over readiness.
    (&["coroutine", "async", "async-current-thread"], (0, 158, 115)),
    // Completion: io_uring.
    (&["uring"], (0, 0, 0)),
];

/// The Python servers (`py-MODEL`): Okabe–Ito's sky blue, shaded by their
/// Rust twin's place in the progression.
const PYTHON_HUE: (u8, u8, u8) = (86, 180, 233);

/// Any other label: Okabe–Ito's reddish purple.
const OTHER_HUE: (u8, u8, u8) = (204, 121, 167);

/// A family member's shade: the hue mixed toward black (negative) or white
/// (positive) by this fraction, by its place in the family.
const SHADES: [f64; 6] = [0.0, -0.45, 0.45, -0.7, 0.7, -0.2];

/// Colours of the parts of a stacked chart (Paul Tol's "muted" scheme,
/// colour-blind safe), in order.
const PARTS: [(u8, u8, u8); 10] = [
    (51, 34, 136),
    (136, 204, 238),
    (68, 170, 153),
    (17, 119, 51),
    (153, 153, 51),
    (221, 204, 119),
    (204, 102, 119),
    (136, 34, 85),
    (170, 68, 153),
    (221, 221, 221),
];

/// The colour of the `index`-th part of a stacked chart.
pub fn part_colour(index: usize) -> (u8, u8, u8) {
    PARTS[index % PARTS.len()]
}

/// A marker shape, told apart without colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Square,
    TriangleUp,
    Diamond,
    Cross,
    TriangleDown,
}

const MARKERS: [Marker; 6] = [
    Marker::Circle,
    Marker::Square,
    Marker::TriangleUp,
    Marker::Diamond,
    Marker::Cross,
    Marker::TriangleDown,
];

/// A line's dash pattern, told apart without colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    Solid,
    /// 8 px on, 5 off.
    Dashed,
    /// 2 px on, 4 off.
    Dotted,
    /// 16 px on, 5 off.
    Long,
}

const DASHES: [Dash; 4] = [Dash::Solid, Dash::Dashed, Dash::Dotted, Dash::Long];

/// How one label's series is drawn in every chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesStyle {
    pub colour: (u8, u8, u8),
    pub marker: Marker,
    pub dash: Dash,
}

/// Labels in display order: the models in the order of the progression,
/// each variant (`epoll-edge`) right after its model, each Python server
/// (`py-epoll`) after the Rust ones, then any other label, sorted.
#[derive(Debug, Clone)]
pub struct Labels {
    order: Vec<String>,
}

impl Labels {
    pub fn new<'a>(labels: impl IntoIterator<Item = &'a str>) -> Self {
        let mut order: Vec<String> = labels
            .into_iter()
            .chain(MODEL_ORDER)
            .collect::<BTreeSet<&str>>()
            .into_iter()
            .map(str::to_owned)
            .collect();
        order.sort_by_key(|label| display_key(label));
        Labels { order }
    }

    /// The position of `label` in display order.
    pub fn rank(&self, label: &str) -> usize {
        self.order
            .iter()
            .position(|known| known == label)
            .unwrap_or(self.order.len())
    }

    /// The label's colour: its family's hue, in its own shade. It depends on
    /// the label alone, never on which other labels are present.
    pub fn colour(&self, label: &str) -> (u8, u8, u8) {
        family_colour(label)
    }

    /// Colour, marker and dash of `label`'s series. Models and the known
    /// variants keep theirs whatever else is present; 6 markers and 4
    /// dashes give 24 distinct pairs.
    pub fn style(&self, label: &str) -> SeriesStyle {
        let fixed = MODEL_ORDER.len() + KNOWN_VARIANTS.len();
        let index = MODEL_ORDER
            .iter()
            .chain(&KNOWN_VARIANTS)
            .position(|known| *known == label)
            .unwrap_or_else(|| {
                let others = self.order.iter().filter(|other| {
                    !MODEL_ORDER.contains(&other.as_str()) && !KNOWN_VARIANTS.contains(&other.as_str())
                });
                fixed + others.take_while(|other| *other != label).count()
            });
        SeriesStyle {
            colour: self.colour(label),
            marker: MARKERS[index % MARKERS.len()],
            dash: DASHES[(index + index / 12) % DASHES.len()],
        }
    }
}

/// Sorts a label in display order: (Python, its model's place, variant, label).
fn display_key(label: &str) -> (bool, usize, bool, String) {
    let python = label.starts_with("py-");
    let bare = label.strip_prefix("py-").unwrap_or(label);
    let bare = if bare == "asyncio" { "async" } else { bare };
    let exact = MODEL_ORDER.iter().position(|model| *model == bare);
    let base = exact.or_else(|| {
        MODEL_ORDER
            .iter()
            .position(|model| bare.strip_prefix(model).is_some_and(|rest| rest.starts_with('-')))
    });
    (
        python,
        base.unwrap_or(MODEL_ORDER.len()),
        exact.is_none(),
        label.to_owned(),
    )
}

/// See [`Labels::colour`].
fn family_colour(label: &str) -> (u8, u8, u8) {
    if let Some(twin) = label.strip_prefix("py-") {
        let place = MODEL_ORDER
            .iter()
            .position(|model| twin.starts_with(model))
            .unwrap_or(0);
        return shade(PYTHON_HUE, SHADES[place % SHADES.len()]);
    }
    for (members, hue) in FAMILIES {
        if let Some(place) = members.iter().position(|member| *member == label) {
            return shade(hue, SHADES[place % SHADES.len()]);
        }
    }
    // A variant of a model (`epoll-edge`, `pool-64`): its model's family,
    // a shade after the named members'.
    for (members, hue) in FAMILIES {
        if members.iter().any(|member| {
            label
                .strip_prefix(member)
                .is_some_and(|rest| rest.starts_with('-'))
        }) {
            return shade(hue, SHADES[members.len() % SHADES.len()]);
        }
    }
    OTHER_HUE
}

/// `colour` mixed toward black (`amount` < 0) or white (> 0).
fn shade((red, green, blue): (u8, u8, u8), amount: f64) -> (u8, u8, u8) {
    let mix = |channel: u8| -> u8 {
        let channel = f64::from(channel);
        let mixed = if amount < 0.0 {
            channel * (1.0 + amount)
        } else {
            channel + (255.0 - channel) * amount
        };
        mixed.round().clamp(0.0, 255.0) as u8
    };
    (mix(red), mix(green), mix(blue))
}

/// Median, minimum and maximum over the repeats of one entry, and the
/// interval a chart draws around the median: the 95% CI of the median
/// where the repeats allow one (n ≥ 6, [`crate::stats::Summary`]), the
/// min–max otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
    pub low: f64,
    pub high: f64,
    /// `low`–`high` is a 95% CI (else it is the min–max).
    pub is_ci: bool,
}

impl Spread {
    /// A single value.
    pub fn one(value: f64) -> Spread {
        Spread {
            median: value,
            min: value,
            max: value,
            runs: 1,
            low: value,
            high: value,
            is_ci: false,
        }
    }

    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut values: Vec<f64> = values.into_iter().filter(|value| value.is_finite()).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let middle = values.len() / 2;
        let median = if values.len() % 2 == 1 {
            values[middle]
        } else {
            (values[middle - 1] + values[middle]) / 2.0
        };
        let summary = crate::stats::Summary::of(&values)?;
        Some(Spread {
            median,
            min: values[0],
            max: values[values.len() - 1],
            runs: values.len(),
            low: summary.low,
            high: summary.high,
            is_ci: summary.is_ci,
        })
    }
}

/// One label in one scenario: all its repeats, sorted by repeat number.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub label: &'a str,
    pub runs: Vec<&'a CellData>,
}

impl<'a> Entry<'a> {
    pub fn cell(&self) -> &'a Cell {
        &self.runs[0].cell
    }

    /// Every flag raised in any repeat.
    pub fn flags(&self) -> BTreeSet<Flag> {
        self.runs
            .iter()
            .flat_map(|run| run.cell.flags.iter().copied())
            .collect()
    }

    pub fn flagged(&self) -> bool {
        self.runs.iter().any(|run| !run.cell.flags.is_empty())
    }

    pub fn flags_text(&self) -> String {
        self.flags()
            .iter()
            .map(|flag| flag.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn spread(&self, metric: impl Fn(&Cell) -> Option<f64>) -> Option<Spread> {
        Spread::of(self.runs.iter().filter_map(|run| metric(&run.cell)))
    }

    /// The repeat whose p99 is the median one: the run drawn where only one
    /// run can be drawn (percentile spectrum, latency over time).
    pub fn representative(&self) -> &'a CellData {
        let mut runs = self.runs.clone();
        runs.sort_by(|a, b| {
            a.cell
                .latency_us
                .p99
                .total_cmp(&b.cell.latency_us.p99)
                .then(a.cell.repeat.cmp(&b.cell.repeat))
        });
        runs[(runs.len() - 1) / 2]
    }
}

/// One scenario: its load parameters and one entry per label.
#[derive(Debug, Clone)]
pub struct Scenario<'a> {
    pub name: &'a str,
    pub shape: Shape,
    pub connections: u32,
    pub size: u32,
    pub idle: u32,
    pub rate: Option<f64>,
    /// In label display order.
    pub entries: Vec<Entry<'a>>,
}

impl Scenario<'_> {
    /// A one-line description of the load.
    pub fn describe(&self) -> String {
        let mut text = match self.shape {
            Shape::Closed => "closed loop (ping-pong)".to_owned(),
            Shape::Open => "open loop (fixed rate)".to_owned(),
            Shape::Churn => "churn (connect, echo once, close)".to_owned(),
        };
        text.push_str(&format!(
            ", {} connections, {} B messages",
            count(self.connections.into()),
            self.size
        ));
        if self.idle > 0 {
            text.push_str(&format!(", {} idle connections", count(self.idle.into())));
        }
        if let Some(rate) = self.rate {
            text.push_str(&format!(", offered {} msgs/s", count(rate)));
        }
        text
    }

    fn sort_key(&self) -> (Shape, u32, u32, u64, u32, &str) {
        let rate = self.rate.map_or(0, |rate| rate.max(0.0).round() as u64);
        (
            self.shape,
            self.size,
            self.idle,
            rate,
            self.connections,
            self.name,
        )
    }
}

/// Groups cells into scenarios (sorted by shape, size, idle, rate,
/// connections, name) and entries (sorted by label display order).
pub fn scenarios<'a>(cells: &'a [CellData], labels: &Labels) -> Vec<Scenario<'a>> {
    let mut by_scenario: BTreeMap<&str, BTreeMap<&str, Vec<&CellData>>> = BTreeMap::new();
    for data in cells {
        by_scenario
            .entry(data.cell.scenario.as_str())
            .or_default()
            .entry(data.cell.label.as_str())
            .or_default()
            .push(data);
    }
    let mut scenarios: Vec<Scenario> = by_scenario
        .into_iter()
        .map(|(name, by_label)| {
            let mut entries: Vec<Entry> = by_label
                .into_iter()
                .map(|(label, mut runs)| {
                    runs.sort_by_key(|run| run.cell.repeat);
                    Entry { label, runs }
                })
                .collect();
            entries.sort_by_key(|entry| (labels.rank(entry.label), entry.label));
            let first = entries[0].cell();
            Scenario {
                name,
                shape: first.shape,
                connections: first.connections,
                size: first.size,
                idle: first.idle,
                rate: first.rate,
                entries,
            }
        })
        .collect();
    scenarios.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    scenarios
}

/// The parameter a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SweepAxis {
    Connections,
    Idle,
    Rate,
}

impl SweepAxis {
    pub fn value(self, scenario: &Scenario) -> f64 {
        match self {
            SweepAxis::Connections => scenario.connections.into(),
            SweepAxis::Idle => scenario.idle.into(),
            SweepAxis::Rate => scenario.rate.unwrap_or(0.0),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SweepAxis::Connections => "connections",
            SweepAxis::Idle => "idle connections",
            SweepAxis::Rate => "offered rate (msgs/s)",
        }
    }
}

/// Scenarios that differ only in one parameter, sorted by it.
#[derive(Debug, Clone)]
pub struct Sweep<'s, 'a> {
    pub axis: SweepAxis,
    pub scenarios: Vec<&'s Scenario<'a>>,
}

impl Sweep<'_, '_> {
    /// What the scenarios share, in words.
    pub fn describe(&self) -> String {
        let first = self.scenarios[0];
        let shape = match first.shape {
            Shape::Closed => "closed loop",
            Shape::Open => "open loop",
            Shape::Churn => "churn",
        };
        let mut parts = vec![shape.to_owned(), format!("{} B messages", first.size)];
        if let Some(step) = tour_step(first.name) {
            parts.insert(0, format!("tour {step}"));
        } else if !experiment(first).is_empty() {
            parts.insert(0, experiment(first));
        }
        if self.axis != SweepAxis::Connections {
            parts.push(format!("{} connections", count(first.connections.into())));
        }
        if self.axis != SweepAxis::Idle && first.idle > 0 {
            parts.push(format!("{} idle", count(first.idle.into())));
        }
        if self.axis != SweepAxis::Rate
            && let Some(rate) = first.rate
        {
            parts.push(format!("offered {} msgs/s", count(rate)));
        }
        parts.join(", ")
    }

    /// A file-name-safe key for the sweep's charts.
    pub fn slug(&self) -> String {
        let first = self.scenarios[0];
        let mut slug = format!("{}-s{}", first.shape.as_str(), first.size);
        let experiment = experiment(first);
        if !experiment.is_empty() {
            slug = format!("{experiment}-{slug}");
        }
        if self.axis != SweepAxis::Connections {
            slug.push_str(&format!("-c{}", first.connections));
        }
        if self.axis != SweepAxis::Idle {
            slug.push_str(&format!("-i{}", first.idle));
        }
        if self.axis != SweepAxis::Rate
            && let Some(rate) = first.rate
        {
            slug.push_str(&format!("-r{}", rate.round()));
        }
        slug
    }
}

/// What the scenarios of one sweep share: the experiment (see
/// [`experiment`]), shape, size, and the two parameters that are not swept.
type SweepKey = (String, Shape, u32, u32, u32, u64);

/// What a scenario's name says beyond its load's shape, connections, size,
/// idle connections and rate: the tour step (`step05`), the protocol and
/// request (`http-plaintext`, `udp`), the pipeline depth (`p16`), the work
/// (`wait1000`); "" for a plain echo scenario. Scenarios of different
/// experiments are never one line of a sweep.
pub fn experiment(scenario: &Scenario) -> String {
    let load_tokens = [
        scenario.shape.as_str().to_owned(),
        format!("c{}", scenario.connections),
        format!("s{}", scenario.size),
        format!("i{}", scenario.idle),
        scenario.rate.map_or_else(String::new, |rate| format!("r{rate}")),
    ];
    scenario
        .name
        .split('-')
        .filter(|token| !load_tokens.iter().any(|load| load == token))
        .collect::<Vec<_>>()
        .join("-")
}

/// Every sweep over connections (any shape), idle connections (any shape)
/// and offered rate (open loop) with at least two points.
pub fn sweeps<'s, 'a>(scenarios: &'s [Scenario<'a>]) -> Vec<Sweep<'s, 'a>> {
    let mut sweeps = Vec::new();
    for axis in [SweepAxis::Connections, SweepAxis::Idle, SweepAxis::Rate] {
        // Cells of different experiments (tour steps, protocols, requests,
        // work) are never one line.
        let mut groups: BTreeMap<SweepKey, Vec<&Scenario>> = BTreeMap::new();
        for scenario in scenarios {
            if axis == SweepAxis::Rate && scenario.shape != Shape::Open {
                continue;
            }
            let rate_bits = scenario.rate.map_or(0, f64::to_bits);
            let step = experiment(scenario);
            let key = match axis {
                SweepAxis::Connections => (step, scenario.shape, scenario.size, 0, scenario.idle, rate_bits),
                SweepAxis::Idle => (
                    step,
                    scenario.shape,
                    scenario.size,
                    scenario.connections,
                    0,
                    rate_bits,
                ),
                SweepAxis::Rate => (
                    step,
                    scenario.shape,
                    scenario.size,
                    scenario.connections,
                    scenario.idle,
                    0,
                ),
            };
            groups.entry(key).or_default().push(scenario);
        }
        for (_, mut members) in groups {
            members.sort_by(|a, b| axis.value(a).total_cmp(&axis.value(b)).then(a.name.cmp(b.name)));
            let distinct: BTreeSet<u64> = members
                .iter()
                .map(|member| axis.value(member).to_bits())
                .collect();
            if distinct.len() >= 2 {
                sweeps.push(Sweep {
                    axis,
                    scenarios: members,
                });
            }
        }
    }
    sweeps
}

/// `step05` for a tour's scenario `step05-closed-c1-s64-i500`.
pub fn tour_step(scenario: &str) -> Option<&str> {
    let step = scenario.get(..6)?;
    let digits = step.strip_prefix("step")?;
    (digits.bytes().all(|byte| byte.is_ascii_digit()) && scenario[6..].starts_with('-')).then_some(step)
}

/// A count or rate with thousands separators and no decimals: `12,345`.
pub fn count(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    let rounded = value.round();
    let digits = format!("{}", rounded.abs() as u64);
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if rounded < 0.0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// A measured value with about three significant digits: `12,345`, `123`,
/// `12.3`, `1.23`, `0.123`.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    if !value.is_finite() {
        "-".to_owned()
    } else if magnitude >= 100.0 || magnitude == 0.0 {
        count(value)
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// A measured figure: a whole number as a count (`1,100`, `4`), anything
/// else as [`number`].
pub fn figure(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        count(value)
    } else {
        number(value)
    }
}

/// KiB as a human size: `812 KiB`, `12.3 MiB`, `1.25 GiB`.
pub fn kib(value: f64) -> String {
    if value >= 1024.0 * 1024.0 {
        format!("{} GiB", number(value / (1024.0 * 1024.0)))
    } else if value >= 1024.0 {
        format!("{} MiB", number(value / 1024.0))
    } else {
        format!("{} KiB", number(value))
    }
}

/// A tick label: `0.5`, `20`, `500`, `2k`, `1.5M`.
pub fn compact(value: f64) -> String {
    let magnitude = value.abs();
    let (scaled, suffix) = if magnitude >= 1e9 {
        (value / 1e9, "G")
    } else if magnitude >= 1e6 {
        (value / 1e6, "M")
    } else if magnitude >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let text = format!("{scaled:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str, shape: Shape, connections: u32, rate: Option<f64>) -> Scenario<'_> {
        Scenario {
            name,
            shape,
            connections,
            size: 64,
            idle: 0,
            rate,
            entries: Vec::new(),
        }
    }

    #[test]
    fn a_sweep_never_joins_different_experiments() {
        let closed = |name, connections| scenario(name, Shape::Closed, connections, None);
        assert_eq!(experiment(&closed("closed-c100-s64", 100)), "");
        assert_eq!(experiment(&closed("step05-closed-c1-s64", 1)), "step05");
        assert_eq!(experiment(&closed("udp-closed-c100-s64", 100)), "udp");
        assert_eq!(experiment(&closed("closed-c100-s64-wait1000", 100)), "wait1000");
        assert_eq!(
            experiment(&closed("http-plaintext-closed-c100-p16", 100)),
            "http-plaintext-p16"
        );
        let open = scenario("open-r20000-c100-s64", Shape::Open, 100, Some(20000.0));
        assert_eq!(experiment(&open), "");
        // Plaintext and a static file at the same connection counts: two
        // sweeps, not one line that zigzags between them.
        let scenarios = [
            closed("http-plaintext-closed-c1", 1),
            closed("http-plaintext-closed-c100", 100),
            closed("http-static-64k.bin-closed-c1", 1),
            closed("http-static-64k.bin-closed-c100", 100),
        ];
        let found = sweeps(&scenarios);
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|sweep| sweep.scenarios.len() == 2));
        assert_ne!(found[0].slug(), found[1].slug());
    }

    #[test]
    fn numbers_format_the_same_way_every_time() {
        assert_eq!(count(1234567.4), "1,234,567");
        assert_eq!(count(999.0), "999");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1.0), "1.00");
        assert_eq!(figure(1.0), "1");
        assert_eq!(figure(1100.0), "1,100");
        assert_eq!(figure(0.25), "0.250");
        assert_eq!(kib(2048.0), "2.00 MiB");
        assert_eq!(compact(20000.0), "20k");
        assert_eq!(compact(0.5), "0.5");
        assert_eq!(compact(1500000.0), "1.5M");
    }

    #[test]
    fn spread_takes_the_median_of_an_even_count_as_the_midpoint() {
        let spread = Spread::of([4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(
            (spread.median, spread.min, spread.max, spread.runs),
            (2.5, 1.0, 4.0, 4)
        );
        assert!(Spread::of([f64::NAN]).is_none());
    }

    #[test]
    fn tour_scenarios_name_their_step() {
        assert_eq!(tour_step("step05-closed-c1-s64-i500"), Some("step05"));
        assert_eq!(tour_step("closed-c1-s64"), None);
        assert_eq!(tour_step("stepXY-closed"), None);
        assert_eq!(tour_step("step05"), None);
    }

    #[test]
    fn labels_follow_the_progression_and_keep_their_look_whatever_else_is_present() {
        let labels = Labels::new(["epoll-edge", "async", "zeta", "py-epoll"]);
        let alone = Labels::new(["epoll"]);
        assert_eq!(labels.rank("single"), 0);
        assert_eq!(labels.rank("epoll"), 5);
        assert_eq!(labels.rank("epoll-edge"), 6);
        assert_eq!(labels.rank("coroutine"), 7);
        assert_eq!(labels.rank("reuseport"), 11);
        assert_eq!(labels.rank("zeta"), 12);
        assert_eq!(labels.rank("py-epoll"), 13);
        assert_eq!(labels.colour("epoll"), alone.colour("epoll"));
        assert_eq!(labels.style("reuseport"), alone.style("reuseport"));
        assert_eq!(labels.colour("epoll"), (0, 114, 178));
        assert_eq!(labels.colour("zeta"), OTHER_HUE);
    }

    #[test]
    fn a_family_shares_a_hue_and_every_series_differs_without_colour() {
        let labels = Labels::new([
            "epoll-edge",
            "async-current-thread",
            "process-prefork",
            "py-epoll",
        ]);
        // Members of a family are shades of one hue: the same hue angle.
        let (r, g, b) = labels.colour("reuseport");
        assert!(b > r && b > g, "reuseport is a blue: {:?}", (r, g, b));
        assert_ne!(labels.colour("epoll"), labels.colour("reuseport"));
        assert_ne!(labels.colour("epoll"), labels.colour("epoll-edge"));
        let all: Vec<&str> = echo_core::MODELS
            .into_iter()
            .chain([
                "epoll-edge",
                "async-current-thread",
                "process-prefork",
                "py-epoll",
            ])
            .collect();
        let mut seen = Vec::new();
        for &label in &all {
            let style = labels.style(label);
            assert!(
                !seen.contains(&(style.marker, style.dash)),
                "{label} repeats a marker and dash"
            );
            seen.push((style.marker, style.dash));
            assert!(
                !all.iter()
                    .any(|other| *other != label && labels.colour(other) == style.colour),
                "{label} shares its colour"
            );
        }
    }
}
