//! Fig. 7: the best accuracy of DDSAS over the L × M grid, as an annotated
//! heat map (appendix B.2). Best = max over seeds of the final metric; one
//! panel per (dataset, space) whose runs cover more than one (L, M) point.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::json;

use super::data::{group_label, plural, runs_text, SweepData};
use super::draw::{self, DrawResult, HeatMap, Plot};
use super::{save_figure, Figure, Kind, Options, Output, ReportError};

/// File stem of the figure.
pub const STEM: &str = "fig7_lm_grid";
/// The paper's sweep for this figure.
pub const PAPER_SWEEP: &str = "sweeps/fig7_lm_grid.yaml";
/// Pixels per panel.
const PANEL: (u32, u32) = (1200, 800);

/// One cell of the grid.
#[derive(Debug, Clone)]
struct Cell {
    best: f64,
    best_run: i64,
    runs: Vec<i64>,
}

struct Panel {
    label: String,
    dataset: String,
    space: String,
    ls: Vec<i64>,
    ms: Vec<i64>,
    cells: BTreeMap<(i64, i64), Cell>,
}

struct Fig7 {
    title: String,
    maps: Vec<HeatMap>,
}

impl Plot for Fig7 {
    fn size(&self) -> (u32, u32) {
        (PANEL.0 * self.maps.len() as u32, PANEL.1)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let body = draw::title(root, &self.title)?;
        let body = body.margin(0, 10, 10, 10);
        for (area, map) in body
            .split_evenly((1, self.maps.len()))
            .iter()
            .zip(&self.maps)
        {
            draw::heatmap(area, map)?;
        }
        Ok(())
    }
}

/// Draws Fig. 7 of `data` (metric `opts.metric`: `valid_acc`; `test_acc`
/// is refused until an evaluation stage records it).
pub async fn render(data: &SweepData, opts: &Options) -> Result<Output, ReportError> {
    let name = "fig7";
    match opts.metric.as_str() {
        "valid_acc" => {}
        "test_acc" => {
            return Err(ReportError::cannot(
                name,
                &data.name,
                "has no test accuracy: no evaluation stage exists yet, so a run records only its search's final valid accuracy",
                "use `--metric valid_acc`",
            ))
        }
        other => {
            return Err(ReportError::cannot(
                name,
                &data.name,
                format!("has no metric `{other}`"),
                "use `--metric valid_acc`",
            ))
        }
    }
    let mut groups: BTreeMap<(String, String), Vec<_>> = BTreeMap::new();
    for run in data.with_method("ddsas") {
        let (Some(l), Some(m), Some(acc)) = (run.l, run.m, run.valid_acc) else {
            continue;
        };
        if run.approximation == Some(0) {
            continue;
        }
        groups
            .entry((run.dataset.clone(), run.space.clone()))
            .or_default()
            .push((l, m, 100.0 * acc, run.id));
    }
    let mut panels = Vec::new();
    for ((dataset, space), points) in groups {
        let mut cells: BTreeMap<(i64, i64), Cell> = BTreeMap::new();
        for &(l, m, acc, id) in &points {
            let cell = cells.entry((l, m)).or_insert(Cell {
                best: f64::NEG_INFINITY,
                best_run: id,
                runs: Vec::new(),
            });
            cell.runs.push(id);
            if acc > cell.best {
                cell.best = acc;
                cell.best_run = id;
            }
        }
        if cells.len() < 2 {
            continue;
        }
        let mut ls: Vec<i64> = cells.keys().map(|k| k.0).collect();
        let mut ms: Vec<i64> = cells.keys().map(|k| k.1).collect();
        ls.sort_unstable();
        ls.dedup();
        ms.sort_unstable();
        ms.dedup();
        panels.push(Panel {
            label: group_label(&dataset, &space),
            dataset,
            space,
            ls,
            ms,
            cells,
        });
    }
    if panels.is_empty() {
        return Err(ReportError::cannot(
            name,
            &data.name,
            "has no done DDSAS runs (with the approximation) covering more than one (L, M) point",
            data.run_hint(Some(PAPER_SWEEP)),
        ));
    }

    let mut maps = Vec::new();
    let mut panel_json = Vec::new();
    let mut caption_parts = Vec::new();
    for p in &panels {
        let counts: Vec<usize> = p.cells.values().map(|c| c.runs.len()).collect();
        let uniform = counts.iter().all(|&c| c == counts[0]);
        let seeds_text = if uniform {
            format!("best of {}", plural(counts[0], "seed"))
        } else {
            format!(
                "best of {}–{} seeds (n per cell)",
                counts.iter().min().unwrap_or(&0),
                counts.iter().max().unwrap_or(&0)
            )
        };
        // Rows: largest L at the top, so L grows upwards like a y axis.
        let rows: Vec<i64> = p.ls.iter().rev().copied().collect();
        let best = p
            .cells
            .iter()
            .fold(None::<(&(i64, i64), &Cell)>, |b, (k, c)| match b {
                Some((_, bc)) if bc.best >= c.best => b,
                _ => Some((k, c)),
            })
            .expect("at least two cells");
        let mut values = Vec::new();
        let mut texts = Vec::new();
        for &l in &rows {
            let mut vrow = Vec::new();
            let mut trow = Vec::new();
            for &m in &p.ms {
                match p.cells.get(&(l, m)) {
                    Some(c) => {
                        vrow.push(Some(c.best));
                        trow.push(if uniform {
                            format!("{:.2}", c.best)
                        } else {
                            format!("{:.2}\nn={}", c.best, c.runs.len())
                        });
                    }
                    None => {
                        vrow.push(None);
                        trow.push("not run".into());
                    }
                }
            }
            values.push(vrow);
            texts.push(trow);
        }
        let highlight = Some((
            rows.iter()
                .position(|&l| l == best.0 .0)
                .expect("best L is a row"),
            p.ms.iter()
                .position(|&m| m == best.0 .1)
                .expect("best M is a column"),
        ));
        maps.push(HeatMap {
            title: format!(
                "{} · {} · best L = {}, M = {}: {:.2}%",
                p.label, seeds_text, best.0 .0, best.0 .1, best.1.best
            ),
            x_desc: "M (weight steps per sampled subspace)".into(),
            y_desc: "L (subspace size, ops)".into(),
            x_labels: p.ms.iter().map(|m| m.to_string()).collect(),
            y_labels: rows.iter().map(|l| l.to_string()).collect(),
            values,
            texts,
            highlight,
            bar_desc: "best final valid accuracy (%)".into(),
            integer: false,
        });
        let ids: Vec<i64> = p
            .cells
            .values()
            .flat_map(|c| c.runs.iter().copied())
            .collect();
        caption_parts.push(format!(
            "{}: DDSAS {} ({} (L, M) points, {})",
            p.label,
            runs_text(&ids),
            p.cells.len(),
            seeds_text
        ));
        panel_json.push(json!({
            "dataset": p.dataset,
            "space": p.space,
            "L": p.ls,
            "M": p.ms,
            "cells": p.cells.iter().map(|((l, m), c)| json!({
                "L": l, "M": m, "best": c.best, "best_run": c.best_run, "runs": c.runs,
            })).collect::<Vec<_>>(),
            "best": {"L": best.0.0, "M": best.0.1, "value": best.1.best, "run": best.1.best_run},
        }));
    }
    let plot = Fig7 {
        title: format!(
            "Fig. 7 — best final valid accuracy of DDSAS over L × M (sweep {})",
            data.name
        ),
        maps,
    };
    let sidecar = json!({
        "figure": "fig7",
        "sweep": data.name,
        "metric": "valid_acc",
        "unit": "percent",
        "panels": panel_json,
    });
    save_figure(
        Figure {
            kind: Kind::Fig7,
            plot: &plot,
            title: plot.title.clone(),
            stem: STEM,
            sidecar,
            caption: format!(
                "{}. Metric: final valid accuracy of the search (no evaluation stage exists yet), max over seeds; DDSAS with the approximation; the outlined cell is the best.{}",
                caption_parts.join("; "),
                data.not_done_note()
            ),
        },
        opts,
    )
}
