//! Fig. 9: how many sampled subspaces contained each (edge, op), as an
//! annotated heat map per (dataset, space) and cell type (appendix B.3).
//! The counts are cumulative, so a run's are its last epoch's. A panel
//! shows one setting (the values of the keys that vary among the runs):
//! the mean over its runs, with n in the title, or one run with `--run N`,
//! since the appendix's counts (264–363 per op) are one run's.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::json;

use super::data::{group_label, plural, runs_text, seed_count, setting_json, settings, SweepData};
use super::draw::{self, DrawResult, HeatMap, Plot};
use super::{save_figure, Figure, Kind, Options, Output, ReportError};
use crate::nas::space::SearchSpace;
use crate::nas::space::SpaceKind;
use crate::store::{ReportRun, SamplingPoint, Store};

/// File stem of the figure.
pub const STEM: &str = "fig9_sampling";
/// The paper's sweep for this figure.
pub const PAPER_SWEEP: &str = "sweeps/fig8_fig9_skip.yaml";
const WIDTH: u32 = 1500;
const PANEL_H: u32 = 560;
/// Width of one map when cell types stand side by side.
const COLUMN_W: u32 = 1100;

/// One row per setting, one map per cell type (normal | reduce side by side).
struct Fig9 {
    title: String,
    rows: Vec<Vec<HeatMap>>,
}

impl Fig9 {
    fn columns(&self) -> usize {
        self.rows.iter().map(Vec::len).max().unwrap_or(1).max(1)
    }
}

impl Plot for Fig9 {
    fn size(&self) -> (u32, u32) {
        let width = match self.columns() {
            1 => WIDTH,
            n => COLUMN_W * n as u32,
        };
        (width, 60 + PANEL_H * self.rows.len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let body = draw::title(root, &self.title)?;
        let body = body.margin(0, 10, 10, 10);
        let columns = self.columns();
        for (area, row) in body
            .split_evenly((self.rows.len(), 1))
            .iter()
            .zip(&self.rows)
        {
            for (cell, map) in area.split_evenly((1, columns)).iter().zip(row) {
                draw::heatmap(&cell.margin(4, 12, 0, 0), map)?;
            }
        }
        Ok(())
    }
}

/// The search space named in the database.
pub(crate) fn space_of(name: &str) -> Option<SearchSpace> {
    match name {
        "darts" => Some(SearchSpace::new(SpaceKind::Darts)),
        "nb201" => Some(SearchSpace::new(SpaceKind::Nb201)),
        _ => None,
    }
}

/// The DDSAS runs Fig. 9 draws, by (dataset, space): every done one with
/// sampling counts, or only `--run N` (which must be one of them).
fn chosen_runs<'a>(
    data: &'a SweepData,
    with_counts: &BTreeMap<i64, Vec<SamplingPoint>>,
    run: Option<i64>,
) -> Result<BTreeMap<(String, String), Vec<&'a ReportRun>>, ReportError> {
    let candidates: Vec<&ReportRun> = data
        .with_method("ddsas")
        .filter(|r| with_counts.contains_key(&r.id))
        .collect();
    if let Some(id) = run {
        if !candidates.iter().any(|r| r.id == id) {
            let ids: Vec<i64> = candidates.iter().map(|r| r.id).collect();
            return Err(ReportError::cannot(
                "fig9",
                &data.name,
                format!("has no done DDSAS run {id} with sampling counts"),
                if ids.is_empty() {
                    "report on a sweep with DDSAS runs".to_string()
                } else {
                    format!("pick one of its DDSAS {}", runs_text(&ids))
                },
            ));
        }
    }
    let mut groups: BTreeMap<(String, String), Vec<&ReportRun>> = BTreeMap::new();
    for r in candidates
        .into_iter()
        .filter(|r| run.is_none_or(|id| r.id == id))
    {
        groups
            .entry((r.dataset.clone(), r.space.clone()))
            .or_default()
            .push(r);
    }
    Ok(groups)
}

/// Mean count per `[op][edge]` over the runs of a setting, for one cell type.
fn mean_counts(
    space: &SearchSpace,
    cell: &str,
    runs: &[&ReportRun],
    by_run: &BTreeMap<i64, Vec<SamplingPoint>>,
) -> Vec<Vec<f64>> {
    let mut sums = vec![vec![0i64; space.edges()]; space.num_ops()];
    for run in runs {
        for p in by_run[&run.id].iter().filter(|p| p.cell == cell) {
            let (Some(k), Ok(e)) = (space.op_index(&p.op), usize::try_from(p.edge)) else {
                continue;
            };
            if e < space.edges() {
                sums[k][e] += p.count;
            }
        }
    }
    let n = runs.len().max(1) as f64;
    sums.iter()
        .map(|row| row.iter().map(|&c| c as f64 / n).collect())
        .collect()
}

/// A count as the map writes it: whole numbers plain, means to one decimal.
fn count_text(c: f64) -> String {
    if c.fract() == 0.0 {
        format!("{c:.0}")
    } else {
        format!("{c:.1}")
    }
}

/// Draws Fig. 9 of `data`: per (dataset, space), setting and cell type, the
/// counts of one run's sampled subspaces (the appendix's counts are one
/// run's), as the mean over the setting's runs, or of `--run N` alone.
pub async fn render(
    store: &Store,
    data: &SweepData,
    opts: &Options,
) -> Result<Output, ReportError> {
    let mut by_run: BTreeMap<i64, Vec<SamplingPoint>> = BTreeMap::new();
    for p in store.report_final_sampling(&data.name).await? {
        by_run.entry(p.run_id).or_default().push(p);
    }
    let groups = chosen_runs(data, &by_run, opts.run)?;
    if groups.is_empty() {
        return Err(ReportError::cannot(
            "fig9",
            &data.name,
            "has no done DDSAS runs with sampling counts",
            data.run_hint(Some(PAPER_SWEEP)),
        ));
    }
    let mut rows = Vec::new();
    let mut panels = Vec::new();
    let mut caption = Vec::new();
    for ((dataset, space_name), runs) in &groups {
        let Some(space) = space_of(space_name) else {
            continue;
        };
        let ops = space.ops();
        let edges: Vec<String> = (0..space.edges()).map(|e| space.edge_label(e)).collect();
        for setting in settings(runs, &["dataset", "space"]) {
            let ids = setting.ids();
            let n = ids.len();
            let how = if n == 1 {
                format!("{} {}", setting.label(), runs_text(&ids))
            } else {
                format!(
                    "{}, mean over {n} runs ({})",
                    setting.label(),
                    runs_text(&ids)
                )
            };
            let mut maps = Vec::new();
            for &cell in space.cell_types() {
                let counts = mean_counts(&space, cell, &setting.runs, &by_run);
                let cell_name = match cell {
                    "cell" => "the cell".to_string(),
                    other => format!("{other} cell"),
                };
                maps.push(HeatMap {
                    title: format!("{} · {cell_name} · {how}", group_label(dataset, space_name)),
                    x_desc: "edge (from node, to node)".into(),
                    y_desc: "operation".into(),
                    x_labels: edges.clone(),
                    y_labels: ops.iter().map(|o| o.to_string()).collect(),
                    values: counts
                        .iter()
                        .map(|row| row.iter().map(|&c| Some(c)).collect())
                        .collect(),
                    texts: counts
                        .iter()
                        .map(|row| row.iter().map(|&c| count_text(c)).collect())
                        .collect(),
                    highlight: None,
                    bar_desc: if n == 1 {
                        "subspaces containing the op (count)".into()
                    } else {
                        "subspaces containing the op (mean count per run)".into()
                    },
                    integer: n == 1,
                });
                panels.push(json!({
                    "dataset": dataset,
                    "space": space_name,
                    "cell": cell,
                    "setting": setting_json(&setting),
                    "label": setting.label(),
                    "aggregate": if n == 1 { "run" } else { "mean over runs" },
                    "runs": ids,
                    "ops": ops,
                    "edges": edges,
                    "counts": counts,
                }));
            }
            rows.push(maps);
            caption.push(format!(
                "{} on {}: {} ({})",
                setting.label(),
                group_label(dataset, space_name),
                runs_text(&ids),
                plural(seed_count(&setting.runs), "seed")
            ));
        }
    }
    let plot = Fig9 {
        title: format!(
            "Fig. 9 — how often each operation was in a sampled subspace (sweep {})",
            data.name
        ),
        rows,
    };
    let sidecar = json!({
        "figure": "fig9",
        "sweep": data.name,
        "panels": panels,
    });
    save_figure(
        Figure {
            kind: Kind::Fig9,
            plot: &plot,
            title: plot.title.clone(),
            stem: STEM,
            sidecar,
            caption: format!(
                "Cumulative sampling counts at a run's last epoch (table sampling_counts): one run's counts, or the mean over the runs (seeds) of a setting. {}.{}",
                caption.join("; "),
                data.not_done_note()
            ),
        },
        opts,
    )
}
