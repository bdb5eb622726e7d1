//! Reading a whole result set from disk, in a fixed order.

use super::read::{self, IntervalSummary, PercentileRow};
use crate::results::cell::Cell;
use crate::results::faults::FaultRow;
use crate::results::files;
use anyhow::bail;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A result set as the report sees it.
#[derive(Debug)]
pub struct ResultSet {
    pub dir: PathBuf,
    pub manifest: serde_json::Value,
    /// Sorted by file stem.
    pub cells: Vec<CellData>,
    /// `tour.json`, when the result set is a tour's.
    pub tour: Option<Vec<crate::results::tour::TourEntry>>,
    /// `faults.json`, when `harness faults` wrote the set.
    pub faults: Option<Vec<FaultRow>>,
}

/// One cell with its histograms.
#[derive(Debug)]
pub struct CellData {
    pub cell: Cell,
    /// From the `.hgrm` file (empty when only the JSON was read).
    pub spectrum: Vec<PercentileRow>,
    /// From the `.hlog` file (empty when only the JSON was read).
    pub intervals: Vec<IntervalSummary>,
}

/// What to read besides the manifest and the cells' JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Histograms {
    Read,
    Skip,
}

/// Reads `dir/manifest.json` and every `dir/cells/*.json`, with each cell's
/// `.hgrm` and `.hlog` when asked.
pub fn result_set(dir: &Path, histograms: Histograms) -> anyhow::Result<ResultSet> {
    if !dir.is_dir() {
        bail!("{} is not a result set directory", dir.display());
    }
    let manifest = read::manifest(&dir.join("manifest.json"))?;
    let cells_dir = dir.join("cells");
    let tour = crate::results::tour::read(dir)?;
    let faults = crate::results::faults::read(dir)?;
    let stems = if !cells_dir.is_dir() && (tour.is_some() || faults.is_some()) {
        Vec::new()
    } else {
        files::cell_stems(&cells_dir)?
    };
    // A tour whose steps measured no cell (steps 1 and 2 alone), or a
    // robustness matrix alone, is a report still.
    if stems.is_empty() && tour.is_none() && faults.is_none() {
        bail!("{} holds no cell documents (*.json)", cells_dir.display());
    }
    let mut cells = Vec::with_capacity(stems.len());
    let mut seen = BTreeSet::new();
    for stem in stems {
        let json_path = cells_dir.join(format!("{stem}.json"));
        let cell = read::cell(&json_path)?;
        if !seen.insert((cell.label.clone(), cell.scenario.clone(), cell.repeat)) {
            bail!(
                "{}: a second cell for {} / {} repeat {}",
                json_path.display(),
                cell.label,
                cell.scenario,
                cell.repeat
            );
        }
        let (spectrum, intervals) = match histograms {
            Histograms::Skip => (Vec::new(), Vec::new()),
            Histograms::Read => (
                read::percentile_distribution(&files::required(&cells_dir, &stem, "hgrm")?)?,
                read::interval_log(&files::required(&cells_dir, &stem, "hlog")?, cell.duration_s)?,
            ),
        };
        cells.push(CellData {
            cell,
            spectrum,
            intervals,
        });
    }
    Ok(ResultSet {
        dir: dir.to_path_buf(),
        manifest,
        cells,
        tour,
        faults,
    })
}
