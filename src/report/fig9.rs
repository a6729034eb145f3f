//! Fig. 9: how many sampled subspaces contained each (edge, op), as an
//! annotated heat map per (dataset, space) and cell type (appendix B.3).
//! The counts are cumulative, so a run's are its last epoch's. A row of
//! maps shows one setting (the values of the keys that vary among the
//! runs): the mean over its runs, with n in the title, or one run with
//! `--run N`, since the appendix's counts (264–363 per op) are one run's.

use std::collections::BTreeMap;

use serde::Serialize;

use super::data::{by_dataset_space, page_rows, settings, Group, LeftOut, Setting, SweepData};
use super::draw::axes::Labels;
use super::draw::heatmap::HeatMapGrid;
use super::draw::HeatMap;
use super::labels::runs_text;
use super::records::{Records, Table};
use super::{drawn_figure, save_figure, Draw, Figure, Heading, ReportError, Spec, PICTURE_FILES};
use crate::arch::space::SearchSpace;
use crate::config::Method;
use crate::store::ReportRun;

/// File stem of the figure.
pub const STEM: &str = "fig9_sampling";

/// Fig. 9 in the report's table of figures.
pub static SPEC: Spec = Spec {
    name: "fig9",
    figure: "fig9",
    stem: STEM,
    extensions: PICTURE_FILES,
    tables: &[Table::Sampling],
    page: Some("fig9"),
    is_table: false,
    make: |data, opts| save_figure(&compute(data, opts.run)?, opts),
    draw: |data, opts| drawn_figure(&compute(data, opts.run)?),
    remove_more: None,
};
/// The paper's sweep for this figure.
pub const PAPER_SWEEP: &str = "sweeps/fig8_fig9_skip.yaml";
const WIDTH: u32 = 1500;
const PANEL_H: u32 = 560;
/// Width of one map when cell types stand side by side.
const COLUMN_W: u32 = 1100;
/// Rows of maps (settings) on the figure: 5 rows of 560 pixels under the
/// title are 2200 × 2860, a page's proportions; a grid of 64 settings
/// drawn whole is 36,000 pixels tall, which no one reads.
pub const PAGE_ROWS: usize = 5;

/// Fig. 9's numbers (with its [`Heading`], the sidecar).
#[derive(Debug, Clone, Serialize)]
pub struct Fig9 {
    /// One per (dataset, space), setting and cell type, in that order.
    pub panels: Vec<Panel>,
    /// The settings left off the page, if any.
    #[serde(skip_serializing_if = "LeftOut::is_empty")]
    pub left_out: LeftOut,
}

/// The counts of one cell type of one setting.
#[derive(Debug, Clone, Serialize)]
pub struct Panel {
    /// Dataset and space.
    #[serde(flatten)]
    pub group: Group,
    /// `normal`, `reduce` or `cell`.
    pub cell: &'static str,
    /// The setting's keys and values.
    pub setting: BTreeMap<String, String>,
    /// The setting's label.
    pub label: String,
    /// `run` (one run's counts) or `mean over runs`.
    pub aggregate: &'static str,
    /// The runs counted.
    pub runs: Vec<i64>,
    /// Op names, the rows.
    pub ops: Vec<&'static str>,
    /// Edge names `(from,to)`, the columns.
    pub edges: Vec<String>,
    /// `counts[op][edge]`: subspaces that contained the op on the edge
    /// (per run: one run's count or the mean over runs).
    pub counts: Vec<Vec<f64>>,
    /// The row of maps it is drawn in (one per setting).
    #[serde(skip)]
    pub row: usize,
}

/// The DDSAS runs Fig. 9 draws: every done one with sampling counts, or
/// only `run` (which must be one of them).
fn chosen_runs(data: &SweepData, run: Option<i64>) -> Result<Vec<&ReportRun>, ReportError> {
    let candidates: Vec<&ReportRun> = data
        .with_method(Method::Ddsas)
        .filter(|r| data.records.sampling.contains_key(&r.id))
        .collect();
    let Some(id) = run else {
        return Ok(candidates);
    };
    if candidates.iter().any(|r| r.id == id) {
        return Ok(candidates.into_iter().filter(|r| r.id == id).collect());
    }
    let ids: Vec<i64> = candidates.iter().map(|r| r.id).collect();
    Err(ReportError::cannot(
        "fig9",
        &data.name,
        format!("has no done DDSAS run {id} with sampling counts"),
        if ids.is_empty() {
            "report on a sweep with DDSAS runs".to_string()
        } else {
            format!("pick one of its DDSAS {}", runs_text(&ids))
        },
    ))
}

/// Mean count per `[op][edge]` over the runs of a setting, for one cell type.
fn mean_counts(
    space: &SearchSpace,
    cell: &str,
    runs: &[&ReportRun],
    records: &Records,
) -> Vec<Vec<f64>> {
    let mut sums = vec![vec![0i64; space.edges()]; space.num_ops()];
    for run in runs {
        let points = records.sampling.get(&run.id).map_or(&[][..], Vec::as_slice);
        for p in points.iter().filter(|p| p.cell == cell) {
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

/// Fig. 9 of `data` (with its sampling counts loaded): per (dataset,
/// space), setting and cell type, the counts of one run's sampled
/// subspaces, as the mean over the setting's runs, or of `run` alone.
pub fn compute(data: &SweepData, run: Option<i64>) -> Result<Figure<Fig9>, ReportError> {
    let groups = by_dataset_space(chosen_runs(data, run)?.into_iter());
    if groups.is_empty() {
        return Err(data.cannot(
            "fig9",
            "has no done DDSAS runs with sampling counts",
            PAPER_SWEEP,
        ));
    }
    let mut rows: Vec<(&Group, &SearchSpace, Setting)> = Vec::new();
    let spaces: Vec<SearchSpace> = groups.keys().map(|g| SearchSpace::new(g.space)).collect();
    for ((group, runs), search_space) in groups.iter().zip(&spaces) {
        for setting in settings(runs, &["dataset", "space"]) {
            rows.push((group, search_space, setting));
        }
    }
    let shown = page_rows(rows.len(), PAGE_ROWS);
    let mut panels = Vec::new();
    let mut caption = Vec::new();
    let mut left_out = LeftOut {
        settings: rows.len(),
        drawn: shown.len(),
        not_drawn: Vec::new(),
    };
    for (k, (group, search_space, setting)) in rows.iter().enumerate() {
        if !shown.contains(&k) {
            left_out.not_drawn.push(setting.info().caption(group));
            continue;
        }
        let row = caption.len();
        for &cell in search_space.cell_types() {
            let counts = mean_counts(search_space, cell, &setting.runs, &data.records);
            panels.push(panel(group, search_space, cell, setting, counts, row));
        }
        caption.push(setting.info().caption(group));
    }
    let heading = Heading {
        kind: &SPEC,
        sweep: data.name.clone(),
        title: format!(
            "Fig. 9 — how often each operation was in a sampled subspace (sweep {})",
            data.name
        ),
        caption: format!(
            "Cumulative sampling counts at a run's last epoch (table sampling_counts): one run's counts, or the mean over the runs (seeds) of a setting. {}.{}{}",
            caption.join("; "),
            left_out.sentence("fig9"),
            data.not_done_note()
        ),
    };
    Ok(Figure {
        heading,
        numbers: Fig9 { panels, left_out },
    })
}

/// The panel of `setting`'s `counts` for `cell` in `group`, drawn in row
/// `row`.
fn panel(
    group: &Group,
    space: &SearchSpace,
    cell: &'static str,
    setting: &Setting,
    counts: Vec<Vec<f64>>,
    row: usize,
) -> Panel {
    Panel {
        group: *group,
        cell,
        setting: setting.keys_map(),
        label: setting.label(),
        aggregate: if setting.runs.len() == 1 {
            "run"
        } else {
            "mean over runs"
        },
        runs: setting.ids(),
        ops: space.ops().to_vec(),
        edges: (0..space.edges()).map(|e| space.edge_label(e)).collect(),
        counts,
        row,
    }
}

/// A count as the map writes it: whole numbers plain, means to one decimal.
fn count_text(c: f64) -> String {
    if c.fract() == 0.0 {
        format!("{c:.0}")
    } else {
        format!("{c:.1}")
    }
}

/// The heat map of one panel.
fn heat_map(p: &Panel) -> HeatMap {
    let n = p.runs.len();
    let how = if n == 1 {
        format!("{} {}", p.label, runs_text(&p.runs))
    } else {
        format!("{}, mean over {n} runs ({})", p.label, runs_text(&p.runs))
    };
    let cell_name = match p.cell {
        "cell" => "the cell".to_string(),
        other => format!("{other} cell"),
    };
    HeatMap {
        labels: Labels {
            title: format!("{} · {cell_name} · {how}", p.group.label()),
            x_desc: "edge (from node, to node)".into(),
            y_desc: "operation".into(),
        },
        x_labels: p.edges.clone(),
        y_labels: p.ops.iter().map(|o| o.to_string()).collect(),
        values: p
            .counts
            .iter()
            .map(|row| row.iter().map(|&c| Some(c)).collect())
            .collect(),
        texts: p
            .counts
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
    }
}

impl Draw for Fig9 {
    type Plot = HeatMapGrid;

    fn note(&self) -> Option<String> {
        self.left_out.note("fig9")
    }

    /// One row of maps per setting, its cell types side by side.
    fn draw(&self, heading: &Heading) -> HeatMapGrid {
        let mut rows: Vec<Vec<HeatMap>> = Vec::new();
        for p in &self.panels {
            if rows.len() <= p.row {
                rows.push(Vec::new());
            }
            if let Some(row) = rows.last_mut() {
                row.push(heat_map(p));
            }
        }
        let mut grid = HeatMapGrid {
            title: heading.title.clone(),
            size: (0, 60 + PANEL_H * rows.len() as u32),
            rows,
            margin: (4, 12, 0, 0),
        };
        grid.size.0 = match grid.columns() {
            1 => WIDTH,
            n => COLUMN_W * n as u32,
        };
        grid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::space::SpaceKind;
    use crate::report::data::test_runs::{run, sweep};
    use crate::store::SamplingPoint;

    fn count(run_id: i64, cell: &str, edge: i64, op: &str, count: i64) -> SamplingPoint {
        SamplingPoint {
            run_id,
            cell: cell.into(),
            edge,
            edge_label: String::new(),
            op: op.into(),
            count,
        }
    }

    fn data() -> SweepData {
        let mut data = sweep(vec![
            run(1, "ddsas").set("M", 12).build(),
            run(2, "ddsas").set("M", 12).build(),
            run(3, "ddsas").set("M", 24).build(),
            run(4, "darts").build(),
        ]);
        let s = &mut data.records.sampling;
        s.insert(
            1,
            vec![
                count(1, "normal", 0, "skip_connect", 3),
                count(1, "reduce", 13, "none", 5),
            ],
        );
        s.insert(2, vec![count(2, "normal", 0, "skip_connect", 4)]);
        s.insert(3, vec![count(3, "normal", 2, "sep_conv_3x3", 7)]);
        s.insert(4, vec![count(4, "normal", 0, "skip_connect", 100)]);
        data
    }

    #[test]
    fn a_setting_shows_the_mean_count_of_its_runs_per_cell_type() {
        let Figure { heading, numbers } = compute(&data(), None).unwrap();
        let fig = &numbers;
        // Two settings of DDSAS (DARTS has no sampling) × two cell types.
        assert_eq!(fig.panels.len(), 4);
        let normal = &fig.panels[0];
        assert_eq!(
            (normal.cell, normal.label.as_str(), normal.row),
            ("normal", "DDSAS M=12", 0)
        );
        assert_eq!(normal.aggregate, "mean over runs");
        assert_eq!(normal.runs, [1, 2]);
        let skip = SearchSpace::new(SpaceKind::Darts)
            .op_index("skip_connect")
            .unwrap();
        assert_eq!(normal.counts[skip][0], 3.5);
        assert_eq!(normal.edges.len(), 14);
        let reduce = &fig.panels[1];
        assert_eq!(reduce.counts[0][13], 2.5);
        assert_eq!(fig.panels[2].aggregate, "run");
        assert_eq!(fig.panels[3].row, 1);
        assert!(heading
            .caption
            .contains("DDSAS M=12 on Digits, DARTS space: runs 1, 2 (2 seeds)"));
        let grid = fig.draw(&heading);
        assert_eq!(grid.size, (2200, 60 + 2 * PANEL_H));
        assert_eq!(grid.rows[0][0].texts[skip][0], "3.5");
        assert!(grid.rows[1][0].labels.title.ends_with("DDSAS M=24 run 3"));
    }

    #[test]
    fn a_grid_draws_a_page_of_settings_and_lists_the_rest() {
        let n = PAGE_ROWS as i64 + 2;
        let mut data = sweep(
            (1..=n)
                .map(|id| run(id, "ddsas").set("M", id).build())
                .collect(),
        );
        for id in 1..=n {
            let counts = vec![count(id, "normal", 0, "skip_connect", id)];
            data.records.sampling.insert(id, counts);
        }
        let Figure { heading, numbers } = compute(&data, None).unwrap();
        // Rows 0, 1, 3, 4 and 6 of 7: the first, the last and between.
        let drawn: Vec<Vec<i64>> = numbers
            .panels
            .iter()
            .filter(|p| p.cell == "normal")
            .map(|p| p.runs.clone())
            .collect();
        assert_eq!(drawn, [[1], [2], [4], [5], [7]]);
        assert_eq!(numbers.left_out.not_drawn.len(), 2);
        assert!(numbers.left_out.not_drawn[0].starts_with("DDSAS M=3 on Digits"));
        assert!(heading
            .caption
            .contains("Drawn: 5 of 7 settings (a page); not drawn: DDSAS M=3"));
        assert!(heading.caption.contains("--where"));
        let side = serde_json::to_value(&numbers).unwrap();
        assert_eq!(side["left_out"]["settings"], 7);
        assert_eq!(numbers.note().unwrap(), "fig9: drew 5 of 7 settings; pick others with --where (the 2 not drawn are listed in the caption and the sidecar's `left_out`)");
        let grid = numbers.draw(&heading);
        assert_eq!(grid.size.1, 60 + PANEL_H * PAGE_ROWS as u32);
        // A figure that fits says nothing of a page.
        let fits = compute(&super::tests::data(), None).unwrap();
        assert!(fits.numbers.note().is_none());
        assert!(serde_json::to_value(&fits.numbers)
            .unwrap()
            .get("left_out")
            .is_none());
    }

    #[test]
    fn one_run_is_drawn_alone_and_a_baseline_is_refused() {
        let panels = compute(&data(), Some(2)).unwrap().numbers.panels;
        assert_eq!(panels.len(), 2);
        assert_eq!(panels[0].runs, [2]);
        assert_eq!(panels[0].aggregate, "run");
        let e = compute(&data(), Some(4)).unwrap_err().to_string();
        assert!(
            e.contains("no done DDSAS run 4") && e.contains("runs 1–3"),
            "{e}"
        );
    }
}
