//! Fig. 9: how many sampled subspaces contained each (edge, op), as an
//! annotated heat map per (dataset, space) and cell type (appendix B.3).
//! The counts are cumulative, so each run contributes its last epoch's
//! counts; a panel sums the DDSAS runs of its group (the title says how
//! many and which).

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::json;

use super::data::{group_label, plural, runs_text, seed_count, SweepData};
use super::draw::{self, DrawResult, HeatMap, Plot};
use super::{save_figure, Figure, Kind, Options, Output, ReportError};
use crate::config::SpaceKind;
use crate::nas::space::SearchSpace;
use crate::store::{ReportRun, Store};

/// File stem of the figure.
pub const STEM: &str = "fig9_sampling";
/// The paper's sweep for this figure.
pub const PAPER_SWEEP: &str = "sweeps/fig8_fig9_skip.yaml";
const WIDTH: u32 = 1500;
const PANEL_H: u32 = 560;

struct Fig9 {
    title: String,
    maps: Vec<HeatMap>,
}

impl Plot for Fig9 {
    fn size(&self) -> (u32, u32) {
        (WIDTH, 60 + PANEL_H * self.maps.len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let body = draw::title(root, &self.title)?;
        let body = body.margin(0, 10, 10, 10);
        for (area, map) in body
            .split_evenly((self.maps.len(), 1))
            .iter()
            .zip(&self.maps)
        {
            draw::heatmap(&area.margin(4, 12, 0, 0), map)?;
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

/// Draws Fig. 9 of `data`.
pub async fn render(
    store: &Store,
    data: &SweepData,
    opts: &Options,
) -> Result<Output, ReportError> {
    let points = store.report_final_sampling(&data.name).await?;
    let mut by_run: BTreeMap<i64, Vec<_>> = BTreeMap::new();
    for p in points {
        by_run.entry(p.run_id).or_default().push(p);
    }
    let mut groups: BTreeMap<(String, String), Vec<&ReportRun>> = BTreeMap::new();
    for run in data
        .with_method("ddsas")
        .filter(|r| by_run.contains_key(&r.id))
    {
        groups
            .entry((run.dataset.clone(), run.space.clone()))
            .or_default()
            .push(run);
    }
    if groups.is_empty() {
        return Err(ReportError::cannot(
            "fig9",
            &data.name,
            "has no done DDSAS runs with sampling counts",
            data.run_hint(Some(PAPER_SWEEP)),
        ));
    }
    let mut maps = Vec::new();
    let mut panels = Vec::new();
    let mut caption = Vec::new();
    for ((dataset, space_name), runs) in &groups {
        let Some(space) = space_of(space_name) else {
            continue;
        };
        let ops = space.ops();
        let edges: Vec<String> = (0..space.edges()).map(|e| space.edge_label(e)).collect();
        let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
        for &cell in space.cell_types() {
            let mut counts = vec![vec![0i64; edges.len()]; ops.len()];
            for id in &ids {
                for p in by_run[id].iter().filter(|p| p.cell == cell) {
                    let (Some(k), Ok(e)) = (space.op_index(&p.op), usize::try_from(p.edge)) else {
                        continue;
                    };
                    if e < edges.len() {
                        counts[k][e] += p.count;
                    }
                }
            }
            let n = runs.len();
            let how = if n == 1 {
                format!("DDSAS {}", runs_text(&ids))
            } else {
                format!("sum over {n} DDSAS runs ({})", runs_text(&ids))
            };
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
                    .map(|row| row.iter().map(|&c| Some(c as f64)).collect())
                    .collect(),
                texts: counts
                    .iter()
                    .map(|row| row.iter().map(|c| c.to_string()).collect())
                    .collect(),
                highlight: None,
                bar_desc: "subspaces containing the op (count)".into(),
                integer: true,
            });
            panels.push(json!({
                "dataset": dataset,
                "space": space_name,
                "cell": cell,
                "aggregate": if n == 1 { "run" } else { "sum over runs" },
                "runs": ids,
                "ops": ops,
                "edges": edges,
                "counts": counts,
            }));
        }
        caption.push(format!(
            "{}: DDSAS {} ({})",
            group_label(dataset, space_name),
            runs_text(&ids),
            plural(seed_count(runs), "seed")
        ));
    }
    let plot = Fig9 {
        title: format!(
            "Fig. 9 — how often each operation was in a sampled subspace (sweep {})",
            data.name
        ),
        maps,
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
                "Cumulative sampling counts at each run's last epoch (table sampling_counts), summed over a group's runs. {}.{}",
                caption.join("; "),
                data.not_done_note()
            ),
        },
        opts,
    )
}
