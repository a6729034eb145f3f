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

use plotters::prelude::*;
use serde::Serialize;

use super::data::{config_key, SweepData};
use super::draw::axes::Labels;
use super::draw::bars::bar_panel;
use super::draw::lines::line_panel;
use super::draw::text::title_sub;
use super::draw::{
    self, thousands, Area, BarPanel, BarSet, DrawResult, LinePanel, Plot, Series, PALETTE,
};
use super::labels::{dataset_label, runs_text, space_label};
use super::records::{Records, Table};
use super::{drawn_figure, save_figure, Draw, Figure, Heading, ReportError, Spec, PICTURE_FILES};
use crate::arch::metrics::RATIO_BINS;
use crate::arch::space::SearchSpace;
use crate::config::Method;
use crate::store::ReportRun;

/// File stem of the figure.
pub const STEM: &str = "fig12_combinations";

/// Fig. 12 in the report's table of figures.
pub static SPEC: Spec = Spec {
    name: "fig12",
    figure: "fig12",
    stem: STEM,
    extensions: PICTURE_FILES,
    tables: &[Table::Subspaces, Table::RatioHist],
    page: Some("fig12"),
    is_table: false,
    make: |data, opts| save_figure(&compute(data)?, opts),
    draw: |data, _| drawn_figure(&compute(data)?),
    remove_more: None,
};
/// The paper's sweep for this figure.
pub const PAPER_SWEEP: &str = "sweeps/fig12_combinations.yaml";
/// Config keys that do not make two runs different configs.
const NOT_CONFIG: [&str; 3] = ["seed", "log_steps", "data_dir"];
/// The paper's Fig. 12 uses L = 28; among configs with as many runs, the
/// one closest to it is shown.
const PAPER_L: i64 = 28;
/// Bin of `RATIO_BINS` that the paper reports the share of (1.0 ± 0.1).
const NEAR_ONE: usize = 2;

/// Fig. 12's numbers (with its [`Heading`], the sidecar).
#[derive(Debug, Clone, Serialize)]
pub struct Fig12 {
    /// The config shown, in words.
    pub config: String,
    /// DDSAS configs of the sweep with subspaces that are not shown.
    pub other_configs: usize,
    /// The config's runs.
    pub runs: Vec<RunTotals>,
    /// Combinations per cell type over all the runs.
    pub totals: BTreeMap<&'static str, i64>,
    /// The ratio histogram per cell type, summed over the runs.
    pub ratio_hist: BTreeMap<&'static str, Hist>,
    /// The line under the title: config and runs.
    #[serde(skip)]
    pub subtitle: String,
    /// The space's cell types, in its order.
    #[serde(skip)]
    pub cells: &'static [&'static str],
    /// The most subspaces any run sampled of one cell type.
    #[serde(skip)]
    pub longest: usize,
}

/// One run's sampled subspaces.
#[derive(Debug, Clone, Serialize)]
pub struct RunTotals {
    /// Run id.
    pub run: i64,
    /// Its seed.
    pub seed: i64,
    /// Combinations per cell type, summed over its subspaces.
    pub totals: BTreeMap<&'static str, i64>,
    /// Subspaces sampled per cell type.
    pub subspaces: BTreeMap<&'static str, usize>,
    /// `(iteration, combinations)` of every subspace, per cell type.
    #[serde(skip)]
    pub combinations: BTreeMap<&'static str, Vec<(i64, i64)>>,
}

/// One cell type's ratio histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hist {
    /// Bin names.
    pub bins: [&'static str; 5],
    /// Ratios per bin.
    pub counts: [i64; 5],
    /// All ratios.
    pub total: i64,
    /// Share of ratios inside 0.9–1.1 (`None` without ratios).
    pub share_0_9_1_1: Option<f64>,
}

/// The runs of the config Fig. 12 shows, and how many other configs have
/// subspaces.
fn chosen_config(data: &SweepData) -> Option<(Vec<&ReportRun>, usize)> {
    let mut configs: BTreeMap<String, Vec<&ReportRun>> = BTreeMap::new();
    for run in data
        .with_method(Method::Ddsas)
        .filter(|r| data.records.subspaces.contains_key(&r.id))
    {
        configs
            .entry(config_key(run, &NOT_CONFIG))
            .or_default()
            .push(run);
    }
    let runs = configs
        .values()
        .filter(|runs| !runs.is_empty())
        .max_by_key(|runs| {
            let r = runs[0];
            (
                runs.len(),
                r.approximation != Some(0),
                std::cmp::Reverse((r.l.unwrap_or(0) - PAPER_L).abs()),
                std::cmp::Reverse(r.id),
            )
        })?;
    Some((runs.clone(), configs.len() - 1))
}

/// Fig. 12 of `data` (with its subspaces and ratio histograms loaded).
pub fn compute(data: &SweepData) -> Result<Figure<Fig12>, ReportError> {
    let Some((runs, other_configs)) = chosen_config(data) else {
        return Err(data.cannot(
            "fig12",
            "has no done DDSAS runs with sampled subspaces",
            PAPER_SWEEP,
        ));
    };
    let first = runs[0];
    let space = SearchSpace::new(first.space);
    let cells = space.cell_types();
    let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
    let config = format!(
        "{}, {}, L = {}, M = {}, approximation {}",
        dataset_label(first.dataset),
        space_label(first.space),
        first.l.unwrap_or_default(),
        first.m.unwrap_or_default(),
        if first.approximation == Some(0) {
            "off"
        } else {
            "on"
        }
    );
    let run_totals: Vec<RunTotals> = runs
        .iter()
        .map(|r| run_totals(&data.records, r, cells))
        .collect();
    let others = match other_configs {
        0 => String::new(),
        n => format!(" The sweep has {n} other DDSAS config(s) with subspaces; this figure shows the one with the most runs (ties: approximation on, L closest to the paper's 28)."),
    };
    let heading = Heading {
        kind: &SPEC,
        sweep: data.name.clone(),
        title: format!(
            "Fig. 12 — DDSAS subspace combinations and ratio ranges (sweep {})",
            data.name
        ),
        caption: format!(
            "DDSAS {} ({} seed(s)) of one config: {config}. (a)/(c): combinations Σ_c y_c² per sampled subspace (table subspaces), totals in the legend; (b): ratio histogram at each run's last epoch (table ratio_hist), summed over the runs, with the share inside 0.9–1.1.{others}{}",
            runs_text(&ids),
            runs.len(),
            data.not_done_note()
        ),
    };
    let numbers = Fig12 {
        other_configs,
        totals: cells
            .iter()
            .map(|&c| (c, run_totals.iter().filter_map(|r| r.totals.get(c)).sum()))
            .collect(),
        ratio_hist: ratio_hist(&data.records, &ids, cells),
        subtitle: format!("{config} · {} · one line per run", runs_text(&ids)),
        config,
        cells,
        longest: longest(&data.records, &ids),
        runs: run_totals,
    };
    Ok(Figure { heading, numbers })
}

/// The most subspaces any of `ids` sampled of one cell type.
fn longest(records: &Records, ids: &[i64]) -> usize {
    let mut per_cell: BTreeMap<(i64, &str), usize> = BTreeMap::new();
    for id in ids {
        for s in records.subspaces.get(id).into_iter().flatten() {
            *per_cell.entry((*id, s.cell.as_str())).or_default() += 1;
        }
    }
    per_cell.into_values().max().unwrap_or(0)
}

/// The subspaces of `run` per cell type.
fn run_totals(records: &Records, run: &ReportRun, cells: &[&'static str]) -> RunTotals {
    let subspaces = records
        .subspaces
        .get(&run.id)
        .map_or(&[][..], Vec::as_slice);
    let combinations: BTreeMap<&'static str, Vec<(i64, i64)>> = cells
        .iter()
        .map(|&cell| {
            let points = subspaces
                .iter()
                .filter(|s| s.cell == cell)
                .map(|s| (s.iteration, s.combinations));
            (cell, points.collect())
        })
        .collect();
    RunTotals {
        run: run.id,
        seed: run.seed,
        totals: combinations
            .iter()
            .map(|(&c, v)| (c, v.iter().map(|p| p.1).sum()))
            .collect(),
        subspaces: combinations.iter().map(|(&c, v)| (c, v.len())).collect(),
        combinations,
    }
}

/// The ratio histograms of `ids` at their last epoch, summed per cell type.
fn ratio_hist(
    records: &Records,
    ids: &[i64],
    cells: &[&'static str],
) -> BTreeMap<&'static str, Hist> {
    let mut counts: BTreeMap<&str, [i64; 5]> = cells.iter().map(|&c| (c, [0; 5])).collect();
    for p in ids
        .iter()
        .flat_map(|id| records.ratio_hist.get(id).into_iter().flatten())
    {
        let bin = usize::try_from(p.bin_index)
            .ok()
            .filter(|b| *b < RATIO_BINS.len());
        if let (Some(b), Some(c)) = (bin, counts.get_mut(p.cell.as_str())) {
            c[b] += p.count;
        }
    }
    cells
        .iter()
        .map(|&cell| {
            let counts = counts.get(cell).copied().unwrap_or([0; 5]);
            let total: i64 = counts.iter().sum();
            let share = (total > 0).then(|| counts[NEAR_ONE] as f64 / total as f64);
            let hist = Hist {
                bins: RATIO_BINS,
                counts,
                total,
                share_0_9_1_1: share,
            };
            (cell, hist)
        })
        .collect()
}

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

/// Fig. 12 as drawn: the line panels (a) and (c) side by side over the
/// histogram (b).
pub struct Fig12Plot {
    title: String,
    subtitle: String,
    top: Vec<LinePanel>,
    bottom: BarPanel,
}

impl Plot for Fig12Plot {
    fn size(&self) -> (u32, u32) {
        (1500, 1150)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> DrawResult {
        let body = title_sub(root, &self.title, &self.subtitle)?.margin(0, 10, 10, 10);
        let h = body.dim_in_pixel().1 as i32;
        let (top, bottom) = body.split_vertically(h * 52 / 100);
        for (area, p) in top.split_evenly((1, self.top.len())).iter().zip(&self.top) {
            line_panel(&area.margin(0, 14, 0, 10), p)?;
        }
        bar_panel(&bottom.margin(8, 0, 0, 10), &self.bottom)
    }
}

impl Fig12 {
    /// Panel (a) or (c): a curve per run of `cell`, totals in the corner.
    fn line_panel(&self, ci: usize, cell: &'static str) -> LinePanel {
        let mut series = Vec::new();
        let mut notes = Vec::new();
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (ri, run) in self.runs.iter().enumerate() {
            let pts = run.combinations.get(cell).map_or(&[][..], Vec::as_slice);
            for &(_, c) in pts {
                lo = lo.min(c as f64);
                hi = hi.max(c as f64);
            }
            let color = PALETTE[ri % PALETTE.len()];
            series.push(Series {
                color,
                marker: if self.longest <= 40 { ri % 3 } else { 3 },
                width: 3,
                alpha: 1.0,
                points: pts
                    .iter()
                    .map(|&(i, c)| (i as f64, Some(c as f64)))
                    .collect(),
                band: Vec::new(),
            });
            let total = thousands(run.totals.get(cell).copied().unwrap_or(0));
            notes.push((
                format!("run {} (seed {}): total {total}", run.run, run.seed),
                color,
            ));
        }
        let all = thousands(self.totals.get(cell).copied().unwrap_or(0));
        notes.push((format!("all {} runs: {all}", self.runs.len()), draw::MUTED));
        let cell_words = match cell {
            "cell" => "the cell".to_string(),
            other => format!("{other} cell"),
        };
        LinePanel {
            labels: Labels {
                title: format!(
                    "{} combinations per sampled subspace, {cell_words}",
                    ["(a)", "(c)"][ci.min(1)]
                ),
                x_desc: "sampled subspace (iteration, from 0)".into(),
                y_desc: "combinations Σ y² (count)".into(),
            },
            x_range: draw::padded(0.0, self.longest.saturating_sub(1) as f64, 0.02),
            y_range: if lo.is_finite() {
                draw::padded(lo, hi, 0.05)
            } else {
                (0.0, 1.0)
            },
            integer_x: true,
            integer_y: true,
            series,
            notes,
        }
    }

    /// Panel (b): the ratio histogram, the reduce cell first as in the paper.
    fn bar_panel(&self) -> BarPanel {
        let mut cells = self.cells.to_vec();
        cells.sort_by_key(|c| *c != "reduce");
        let hists: Vec<(&str, Option<&Hist>)> =
            cells.iter().map(|&c| (c, self.ratio_hist.get(c))).collect();
        let ids: Vec<i64> = self.runs.iter().map(|r| r.run).collect();
        BarPanel {
            labels: Labels {
                title: format!(
                    "(b) ratio r = p[k1]/p[k2] of all combinations, {} (bars: {})",
                    runs_text(&ids),
                    cells.join(", ")
                ),
                x_desc: "range of r (the second term of Eq. 12)".into(),
                y_desc: "combinations (count)".into(),
            },
            categories: (0..RATIO_BINS.len())
                .map(|i| bin_label(i).to_string())
                .collect(),
            sets: hists
                .iter()
                .map(|&(cell, h)| {
                    let counts = h.map_or([0; 5], |h| h.counts);
                    BarSet {
                        color: cell_color(cell),
                        values: counts.iter().map(|&c| c as f64).collect(),
                        labels: counts.iter().map(|&c| thousands(c)).collect(),
                    }
                })
                .collect(),
            highlight: Some(NEAR_ONE),
            notes: hists
                .iter()
                .map(|&(cell, h)| (share_note(cell, h), cell_color(cell)))
                .collect(),
        }
    }
}

/// "reduce: 12.5% of 1,024 combinations inside 0.9–1.1".
fn share_note(cell: &str, hist: Option<&Hist>) -> String {
    match hist {
        Some(Hist {
            total,
            share_0_9_1_1: Some(share),
            ..
        }) => format!(
            "{cell}: {:.1}% of {} combinations inside 0.9–1.1",
            100.0 * share,
            thousands(*total)
        ),
        _ => format!("{cell}: no ratio records"),
    }
}

impl Draw for Fig12 {
    type Plot = Fig12Plot;

    fn draw(&self, heading: &Heading) -> Fig12Plot {
        Fig12Plot {
            title: heading.title.clone(),
            subtitle: self.subtitle.clone(),
            top: self
                .cells
                .iter()
                .enumerate()
                .map(|(ci, &cell)| self.line_panel(ci, cell))
                .collect(),
            bottom: self.bar_panel(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::test_runs::{run, sweep};
    use crate::store::{RatioPoint, SubspacePoint};

    fn subspaces(run_id: i64, normal: &[i64], reduce: &[i64]) -> Vec<SubspacePoint> {
        let cell = |name: &str, combos: &[i64]| -> Vec<SubspacePoint> {
            combos
                .iter()
                .enumerate()
                .map(|(i, &combinations)| SubspacePoint {
                    run_id,
                    iteration: i as i64,
                    cell: name.into(),
                    combinations,
                })
                .collect()
        };
        [cell("normal", normal), cell("reduce", reduce)].concat()
    }

    fn ratios(run_id: i64, cell: &str, counts: [i64; 5]) -> Vec<RatioPoint> {
        (0..5)
            .map(|b| RatioPoint {
                run_id,
                cell: cell.into(),
                bin_index: b,
                count: counts[b as usize],
            })
            .collect()
    }

    fn ddsas(id: i64, l: i64) -> ReportRun {
        run(id, "ddsas")
            .set("L", l)
            .set("M", 12)
            .set("approximation", true)
            .build()
    }

    #[test]
    fn the_config_with_most_runs_is_totalled_with_its_histogram() {
        let mut data = sweep(vec![ddsas(1, 28), ddsas(2, 28), ddsas(3, 56)]);
        let r = &mut data.records;
        r.subspaces.insert(1, subspaces(1, &[10, 20], &[5]));
        r.subspaces.insert(2, subspaces(2, &[30], &[6, 7, 8]));
        r.subspaces.insert(3, subspaces(3, &[100], &[100]));
        r.ratio_hist.insert(1, ratios(1, "normal", [1, 2, 3, 4, 0]));
        r.ratio_hist.insert(2, ratios(2, "normal", [0, 0, 1, 0, 9]));
        r.ratio_hist
            .insert(3, ratios(3, "normal", [0, 0, 100, 0, 0]));
        let Figure { heading, numbers } = compute(&data).unwrap();
        let fig = &numbers;
        assert_eq!(fig.other_configs, 1);
        assert_eq!(fig.runs.iter().map(|r| r.run).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(fig.runs[0].totals["normal"], 30);
        assert_eq!(fig.runs[1].subspaces["reduce"], 3);
        assert_eq!(fig.totals["normal"], 60);
        assert_eq!(fig.totals["reduce"], 26);
        assert_eq!(fig.longest, 3);
        let normal = &fig.ratio_hist["normal"];
        assert_eq!((normal.counts, normal.total), ([1, 2, 4, 4, 9], 20));
        assert_eq!(normal.share_0_9_1_1, Some(0.2));
        assert_eq!(fig.ratio_hist["reduce"].share_0_9_1_1, None);
        assert_eq!(
            fig.config,
            "Digits, DARTS space, L = 28, M = 12, approximation on"
        );
        assert!(heading.caption.contains("1 other DDSAS config(s)"));
        let plot = fig.draw(&heading);
        assert_eq!(plot.top[0].notes[0].0, "run 1 (seed 1): total 30");
        assert_eq!(
            plot.top[1].labels.title,
            "(c) combinations per sampled subspace, reduce cell"
        );
        assert_eq!(plot.bottom.notes[0].0, "reduce: no ratio records");
        assert_eq!(
            plot.bottom.notes[1].0,
            "normal: 20.0% of 20 combinations inside 0.9–1.1"
        );
    }

    #[test]
    fn on_a_tie_the_l_closest_to_the_papers_is_shown() {
        let mut data = sweep(vec![ddsas(1, 56), ddsas(2, 20), ddsas(3, 30)]);
        for id in 1..=3 {
            data.records.subspaces.insert(id, subspaces(id, &[1], &[1]));
        }
        let fig = compute(&data).unwrap().numbers;
        assert_eq!(fig.runs[0].run, 3);
        assert_eq!(fig.other_configs, 2);
        let none = sweep(vec![ddsas(1, 28)]);
        assert!(compute(&none).is_err());
    }
}
