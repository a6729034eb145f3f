//! Fig. 12 (appendix B.8): (a) the combinations `Σ_c y_c²` of every sampled
//! subspace of the normal cell, one curve per run with its total; (b) the
//! histogram of the ratio `r = p[k1]/p[k2]` over those combinations, with
//! the share inside 0.9–1.1 printed (reduce cell as in the paper, and the
//! normal cell); (c) as (a) for the reduce cell.
//!
//! Like the paper (4 runs of one config), the figure shows the runs of one
//! DDSAS config: the sweep's config (all keys but the seed) with the most
//! runs — on a tie, one with the approximation, then the L closest to the
//! paper's 28, then the earliest; the caption names it and says how many
//! other configs there are.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::json;

use super::data::{config_key, dataset_label, runs_text, space_label, SweepData};
use super::draw::{
    self, thousands, BarPanel, BarSet, DrawResult, LinePanel, Plot, Series, PALETTE,
};
use super::fig9::space_of;
use super::{save_figure, Figure, Kind, Options, Output, ReportError};
use crate::nas::metrics::RATIO_BINS;
use crate::store::{ReportRun, Store};

/// File stem of the figure.
pub const STEM: &str = "fig12_combinations";
/// The paper's sweep for this figure.
pub const PAPER_SWEEP: &str = "sweeps/fig12_combinations.yaml";
/// Config keys that do not make two runs different configs.
const NOT_CONFIG: [&str; 3] = ["seed", "log_steps", "data_dir"];
/// The paper's Fig. 12 uses L = 28; among configs with as many runs, the
/// one closest to it is shown.
const PAPER_L: i64 = 28;
/// Bin of `RATIO_BINS` that the paper reports the share of (1.0 ± 0.1).
const NEAR_ONE: usize = 2;

/// How a ratio bin is written on the axis.
fn bin_label(i: usize) -> &'static str {
    match i {
        0 => "< 0.8",
        1 => "0.8–0.9",
        2 => "0.9–1.1",
        3 => "1.1–1.2",
        _ => "≥ 1.2",
    }
}

fn cell_color(cell: &str) -> RGBColor {
    match cell {
        "reduce" => PALETTE[1],
        _ => PALETTE[0],
    }
}

enum Panel {
    Line(LinePanel),
    Bars(BarPanel),
}

struct Fig12 {
    title: String,
    subtitle: String,
    top: Vec<Panel>,
    bottom: Panel,
}

impl Plot for Fig12 {
    fn size(&self) -> (u32, u32) {
        (1500, 1150)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let body = draw::title_sub(root, &self.title, &self.subtitle)?.margin(0, 10, 10, 10);
        let h = body.dim_in_pixel().1 as i32;
        let (top, bottom) = body.split_vertically(h * 52 / 100);
        let draw_panel = |area: &DrawingArea<DB, Shift>, p: &Panel| match p {
            Panel::Line(l) => draw::line_panel(area, l),
            Panel::Bars(b) => draw::bar_panel(area, b),
        };
        for (area, p) in top.split_evenly((1, self.top.len())).iter().zip(&self.top) {
            draw_panel(&area.margin(0, 14, 0, 10), p)?;
        }
        draw_panel(&bottom.margin(8, 0, 0, 10), &self.bottom)
    }
}

/// Draws Fig. 12 of `data`.
pub async fn render(
    store: &Store,
    data: &SweepData,
    opts: &Options,
) -> Result<Output, ReportError> {
    let subspaces = store.report_subspaces(&data.name).await?;
    let mut by_run: BTreeMap<i64, BTreeMap<String, Vec<(i64, i64)>>> = BTreeMap::new();
    for s in subspaces {
        by_run
            .entry(s.run_id)
            .or_default()
            .entry(s.cell)
            .or_default()
            .push((s.iteration, s.combinations));
    }
    let mut configs: BTreeMap<String, Vec<&ReportRun>> = BTreeMap::new();
    for run in data
        .with_method("ddsas")
        .filter(|r| by_run.contains_key(&r.id))
    {
        configs
            .entry(config_key(run, &NOT_CONFIG))
            .or_default()
            .push(run);
    }
    let Some(runs) = configs
        .values()
        .max_by_key(|runs| {
            let r = runs[0];
            (
                runs.len(),
                r.approximation != Some(0),
                std::cmp::Reverse((r.l.unwrap_or(0) - PAPER_L).abs()),
                std::cmp::Reverse(r.id),
            )
        })
        .cloned()
    else {
        return Err(ReportError::cannot(
            "fig12",
            &data.name,
            "has no done DDSAS runs with sampled subspaces",
            data.run_hint(Some(PAPER_SWEEP)),
        ));
    };
    let other_configs = configs.len() - 1;
    let first = runs[0];
    let space = space_of(&first.space).ok_or_else(|| {
        ReportError::cannot(
            "fig12",
            &data.name,
            format!("has runs in an unknown space `{}`", first.space),
            "report on another sweep",
        )
    })?;
    let cells = space.cell_types();
    let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();

    // Histograms at each run's last epoch, summed over the runs.
    let mut hist: BTreeMap<String, [i64; 5]> = BTreeMap::new();
    for p in store.report_final_ratio_hist(&data.name).await? {
        if ids.contains(&p.run_id) {
            if let Ok(b) = usize::try_from(p.bin_index) {
                if b < RATIO_BINS.len() {
                    hist.entry(p.cell).or_insert([0; 5])[b] += p.count;
                }
            }
        }
    }

    let config_words = format!(
        "{}, {}, L = {}, M = {}, approximation {}",
        dataset_label(&first.dataset),
        space_label(&first.space),
        first.l.unwrap_or_default(),
        first.m.unwrap_or_default(),
        if first.approximation == Some(0) {
            "off"
        } else {
            "on"
        }
    );
    let max_iter = runs
        .iter()
        .flat_map(|r| by_run[&r.id].values().map(|v| v.len()))
        .max()
        .unwrap_or(0);
    let mut runs_json: Vec<serde_json::Value> = Vec::new();
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    let mut line_panels = Vec::new();
    let panel_names = ["(a)", "(c)"];
    for (ci, &cell) in cells.iter().enumerate() {
        let mut series = Vec::new();
        let mut notes = Vec::new();
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (ri, run) in runs.iter().enumerate() {
            let pts = by_run[&run.id].get(cell).cloned().unwrap_or_default();
            let total: i64 = pts.iter().map(|p| p.1).sum();
            *totals.entry(cell).or_insert(0) += total;
            for &(_, c) in &pts {
                lo = lo.min(c as f64);
                hi = hi.max(c as f64);
            }
            let color = PALETTE[ri % PALETTE.len()];
            series.push(Series {
                color,
                marker: if max_iter <= 40 { ri % 3 } else { 3 },
                width: 3,
                alpha: 1.0,
                points: pts
                    .iter()
                    .map(|&(i, c)| (i as f64, Some(c as f64)))
                    .collect(),
                band: Vec::new(),
            });
            notes.push((
                format!(
                    "run {} (seed {}): total {}",
                    run.id,
                    run.seed,
                    thousands(total)
                ),
                color,
            ));
        }
        notes.push((
            format!("all {} runs: {}", runs.len(), thousands(totals[cell])),
            draw::MUTED,
        ));
        let cell_words = match cell {
            "cell" => "the cell".to_string(),
            other => format!("{other} cell"),
        };
        line_panels.push(Panel::Line(LinePanel {
            title: format!(
                "{} combinations per sampled subspace, {cell_words}",
                panel_names[ci.min(1)]
            ),
            x_desc: "sampled subspace (iteration, from 0)".into(),
            y_desc: "combinations Σ y² (count)".into(),
            x_range: draw::padded(0.0, max_iter.saturating_sub(1) as f64, 0.02),
            y_range: if lo.is_finite() {
                draw::padded(lo, hi, 0.05)
            } else {
                (0.0, 1.0)
            },
            integer_x: true,
            integer_y: true,
            series,
            notes,
        }));
    }
    for run in &runs {
        let totals_of: BTreeMap<&str, i64> = cells
            .iter()
            .map(|&c| {
                (
                    c,
                    by_run[&run.id]
                        .get(c)
                        .map_or(0, |v| v.iter().map(|p| p.1).sum()),
                )
            })
            .collect();
        let iterations: BTreeMap<&str, usize> = cells
            .iter()
            .map(|&c| (c, by_run[&run.id].get(c).map_or(0, Vec::len)))
            .collect();
        runs_json.push(
            json!({"run": run.id, "seed": run.seed, "totals": totals_of, "subspaces": iterations}),
        );
    }

    // (b): reduce first, as in the paper.
    let mut hist_cells: Vec<&str> = cells.to_vec();
    hist_cells.sort_by_key(|c| *c != "reduce");
    let mut sets = Vec::new();
    let mut notes = Vec::new();
    let mut hist_json = serde_json::Map::new();
    for &cell in &hist_cells {
        let counts = hist.get(cell).copied().unwrap_or([0; 5]);
        let total: i64 = counts.iter().sum();
        let share = if total > 0 {
            counts[NEAR_ONE] as f64 / total as f64
        } else {
            f64::NAN
        };
        sets.push(BarSet {
            color: cell_color(cell),
            values: counts.iter().map(|&c| c as f64).collect(),
            labels: counts.iter().map(|&c| thousands(c)).collect(),
        });
        notes.push((
            if total > 0 {
                format!(
                    "{cell}: {:.1}% of {} combinations inside 0.9–1.1",
                    100.0 * share,
                    thousands(total)
                )
            } else {
                format!("{cell}: no ratio records")
            },
            cell_color(cell),
        ));
        hist_json.insert(
            cell.to_string(),
            json!({"bins": RATIO_BINS, "counts": counts, "total": total, "share_0_9_1_1": if total > 0 { json!(share) } else { json!(null) }}),
        );
    }
    let bars = Panel::Bars(BarPanel {
        title: format!(
            "(b) ratio r = p[k1]/p[k2] of all combinations, {} (bars: {})",
            runs_text(&ids),
            hist_cells.join(", ")
        ),
        x_desc: "range of r (the second term of Eq. 12)".into(),
        y_desc: "combinations (count)".into(),
        categories: (0..RATIO_BINS.len())
            .map(|i| bin_label(i).to_string())
            .collect(),
        sets,
        highlight: Some(NEAR_ONE),
        notes,
    });
    let plot = Fig12 {
        title: format!(
            "Fig. 12 — DDSAS subspace combinations and ratio ranges (sweep {})",
            data.name
        ),
        subtitle: format!("{config_words} · {} · one line per run", runs_text(&ids)),
        top: line_panels,
        bottom: bars,
    };
    let sidecar = json!({
        "figure": "fig12",
        "sweep": data.name,
        "config": config_words,
        "other_configs": other_configs,
        "runs": runs_json,
        "totals": totals,
        "ratio_hist": hist_json,
    });
    let others = match other_configs {
        0 => String::new(),
        n => format!(" The sweep has {n} other DDSAS config(s) with subspaces; this figure shows the one with the most runs (ties: approximation on, L closest to the paper's 28)."),
    };
    save_figure(
        Figure {
            kind: Kind::Fig12,
            plot: &plot,
            title: plot.title.clone(),
            stem: STEM,
            sidecar,
            caption: format!(
                "DDSAS {} ({} seed(s)) of one config: {config_words}. (a)/(c): combinations Σ_c y_c² per sampled subspace (table subspaces), totals in the legend; (b): ratio histogram at each run's last epoch (table ratio_hist), summed over the runs, with the share inside 0.9–1.1.{others}{}",
                runs_text(&ids),
                runs.len(),
                data.not_done_note()
            ),
        },
        opts,
    )
}
