//! Fig. 7: the best accuracy of DDSAS over the L × M grid, as an annotated
//! heat map (appendix B.2). Best = max over seeds of the metric (test
//! accuracy of the trained cells under one train config, else the final
//! valid accuracy as a labelled proxy); one panel per (dataset, space) and
//! setting (every other config key that varies among the grid's runs, as
//! Figs. 8-10 split theirs) whose runs cover more than one (L, M) point,
//! so that the runs of a cell differ in the seed alone.

use std::collections::BTreeMap;

use serde::Serialize;

use super::data::{by_dataset_space, settings, Group, Lm, Setting, SweepData};
use super::draw::axes::Labels;
use super::draw::heatmap::HeatMapGrid;
use super::draw::HeatMap;
use super::labels::{plural, runs_text};
use super::{drawn_figure, save_figure, Draw, Figure, Heading, ReportError, Spec, PICTURE_FILES};
use crate::config::Method;
use crate::store::ReportRun;

/// File stem of the figure.
pub const STEM: &str = "fig7_lm_grid";

/// Fig. 7 in the report's table of figures.
pub static SPEC: Spec = Spec {
    name: "fig7",
    figure: "fig7",
    stem: STEM,
    extensions: PICTURE_FILES,
    tables: &[],
    page: Some("fig7"),
    is_table: false,
    make: |data, opts| save_figure(&compute(data, &opts.metric)?, opts),
    draw: |data, opts| drawn_figure(&compute(data, &opts.metric)?),
    remove_more: None,
};
/// The paper's sweep for this figure.
pub const PAPER_SWEEP: &str = "sweeps/fig7_lm_grid.yaml";
/// What a sweep lacks that has no panel.
const MISSING: &str =
    "has no done DDSAS runs (with the approximation) of one setting covering more than one (L, M) point";
/// Pixels per panel.
const PANEL: (u32, u32) = (1200, 800);
/// Panels per row of the figure.
const PER_ROW: usize = 3;
/// The most panels drawn; more are refused with the keys to choose by.
const MAX_PANELS: usize = 6;
/// Config keys a panel's grid spans or its group fixes: never a setting.
const GRID_KEYS: [&str; 5] = ["dataset", "space", "L", "M", "approximation"];

/// Fig. 7's numbers (with its [`Heading`], the sidecar).
#[derive(Debug, Clone, Serialize)]
pub struct Fig7 {
    /// The metric drawn (`valid_acc` or `test_acc`).
    pub metric: &'static str,
    unit: &'static str,
    /// One per (dataset, space) with more than one (L, M) point.
    pub panels: Vec<Panel>,
}

/// The grid of one (dataset, space) and setting.
#[derive(Debug, Clone, Serialize)]
pub struct Panel {
    /// Dataset and space.
    #[serde(flatten)]
    pub group: Group,
    /// The config keys (other than L, M and the seed) that vary among the
    /// grid runs of its (dataset, space), with this panel's values; empty
    /// when they all share one setting.
    pub setting: BTreeMap<String, String>,
    /// The setting in words, "epochs=50 ucb_c=1" ("" when nothing varies).
    #[serde(skip)]
    pub label: String,
    /// The (L, M) points run, by L then M.
    pub cells: Vec<Cell>,
    /// The best cell.
    pub best: Best,
    /// The L and the M values run, each ascending.
    #[serde(flatten)]
    pub grid: Lm<Vec<i64>>,
}

/// One (L, M) point: the best of its runs (seeds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// Where.
    #[serde(flatten)]
    pub at: Lm<i64>,
    /// Best final valid accuracy over the runs, in percent.
    pub best: f64,
    /// The run that has it (the first, on a tie).
    pub best_run: i64,
    /// Every run of the point.
    pub runs: Vec<i64>,
}

/// The best cell of a panel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Best {
    /// Where.
    #[serde(flatten)]
    pub at: Lm<i64>,
    /// Its accuracy, in percent.
    pub value: f64,
    /// Its run.
    pub run: i64,
}

impl Panel {
    /// The runs per cell when every cell has as many, else `None`.
    fn uniform_runs(&self) -> Option<usize> {
        let n = self.cells.first().map_or(0, |c| c.runs.len());
        self.cells.iter().all(|c| c.runs.len() == n).then_some(n)
    }

    /// "best of 2 seeds", or "best of 1–3 seeds (n per cell)".
    fn seeds_text(&self) -> String {
        if let Some(n) = self.uniform_runs() {
            return format!("best of {}", plural(n, "seed"));
        }
        let counts = self.cells.iter().map(|c| c.runs.len());
        format!(
            "best of {}–{} seeds (n per cell)",
            counts.clone().min().unwrap_or(0),
            counts.max().unwrap_or(0)
        )
    }

    fn cell(&self, at: Lm<i64>) -> Option<&Cell> {
        self.cells.iter().find(|c| c.at == at)
    }

    /// "CIFAR-10, DARTS space" with its setting: "…, epochs=50".
    fn name(&self) -> String {
        if self.label.is_empty() {
            self.group.label()
        } else {
            format!("{}, {}", self.group.label(), self.label)
        }
    }
}

/// What a cell's accuracy is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    /// Final valid accuracy of the search (a proxy).
    Valid,
    /// Test accuracy of the cell trained from scratch, under the train
    /// config the sweep's trainings were chosen by (`data.training`).
    Test,
}

impl Metric {
    fn of(self, run: &ReportRun) -> Option<f64> {
        match self {
            Metric::Valid => run.valid_acc,
            Metric::Test => run.test_acc,
        }
    }
}

/// The metric asked for: `valid_acc`, `test_acc`, or `auto` (test accuracy
/// when every search drawn has an evaluation, as the paper's figure shows,
/// else the valid accuracy). `test_acc` with searches not evaluated is
/// refused, naming how to evaluate them.
fn choose_metric(
    data: &SweepData,
    asked: &str,
    runs: &[&ReportRun],
) -> Result<Metric, ReportError> {
    let evaluated = runs.iter().filter(|r| r.test_acc.is_some()).count();
    let all = evaluated == runs.len() && evaluated > 0;
    match asked {
        "valid_acc" => Ok(Metric::Valid),
        "auto" | "test_acc" if all => Ok(Metric::Test),
        "auto" => Ok(Metric::Valid),
        "test_acc" => Err(match data.training.ambiguity() {
            Some(why) => ReportError::cannot(
                "fig7",
                &data.name,
                "has no one train config for the test accuracy of its grid searches",
                why,
            ),
            None => ReportError::cannot(
                "fig7",
                &data.name,
                format!(
                    "has test accuracy for {evaluated} of its {} grid searches",
                    runs.len()
                ),
                "train the others' cells (`ddsas train --from-run ID`, or `evaluate:` in the sweep file), or use `--metric valid_acc`",
            ),
        }),
        other => Err(ReportError::cannot(
            "fig7",
            &data.name,
            format!("has no metric `{other}`"),
            "use `--metric auto`, `valid_acc` or `test_acc`",
        )),
    }
}

/// Fig. 7 of `data` for `metric` (`auto`, `valid_acc` or `test_acc`): the
/// DDSAS runs with the approximation and a final accuracy, a panel per
/// (dataset, space) and setting covering more than one (L, M) point; more
/// than [`MAX_PANELS`] are refused, naming the keys to pick one by.
pub fn compute(data: &SweepData, metric: &str) -> Result<Figure<Fig7>, ReportError> {
    let candidates: Vec<&ReportRun> = data
        .with_method(Method::Ddsas)
        .filter(|r| {
            r.l.is_some() && r.m.is_some() && r.valid_acc.is_some() && r.approximation != Some(0)
        })
        .collect();
    let metric = choose_metric(data, metric, &candidates)?;
    let mut panels: Vec<Panel> = Vec::new();
    let mut single: Vec<(String, Vec<i64>)> = Vec::new();
    for (group, runs) in by_dataset_space(candidates.into_iter()) {
        for setting in settings(&runs, &GRID_KEYS) {
            match panel(group, &setting, metric) {
                Some(p) => panels.push(p),
                None => single.push((
                    format!("{}{}", group.label(), keys_suffix(&setting)),
                    setting.ids(),
                )),
            }
        }
    }
    if panels.is_empty() {
        return Err(data.cannot("fig7", MISSING, PAPER_SWEEP));
    }
    if panels.len() > MAX_PANELS {
        return Err(too_many(data, &panels));
    }
    let parts: Vec<String> = panels.iter().map(caption_part).collect();
    let (what, words, name) = match metric {
        Metric::Valid => (
            "final valid accuracy",
            format!(
                "final valid accuracy of the search (a proxy: {})",
                data.training.ambiguity().unwrap_or_else(|| {
                    "not every grid search's cell is trained yet; `ddsas train --from-run ID` or `evaluate:` in the sweep file trains them".into()
                })
            ),
            "valid_acc",
        ),
        Metric::Test => (
            "test accuracy",
            data.training
                .test_words()
                .unwrap_or_else(|| "test accuracy of the trained cell".into()),
            "test_acc",
        ),
    };
    let split = match panels.iter().find(|p| !p.setting.is_empty()) {
        Some(p) => format!(
            " Panels split by every config key that varies among a grid's runs besides L, M and the seed ({}), so a cell's runs are seeds of one config.",
            p.setting.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        None => String::new(),
    };
    let left: String = single
        .iter()
        .map(|(name, ids)| format!(" Not drawn: {name}, {} (one (L, M) point).", runs_text(ids)))
        .collect();
    let heading = Heading {
        kind: &SPEC,
        sweep: data.name.clone(),
        title: format!(
            "Fig. 7 — best {what} of DDSAS over L × M (sweep {})",
            data.name
        ),
        caption: format!(
            "{}. Metric: {words}, max over seeds; DDSAS with the approximation; the outlined cell is the best.{split}{left}{}",
            parts.join("; "),
            data.not_done_note()
        ),
    };
    let numbers = Fig7 {
        metric: name,
        unit: "percent",
        panels,
    };
    Ok(Figure { heading, numbers })
}

/// ", epochs=50" for a setting with varying keys, else "".
fn keys_suffix(setting: &Setting<'_>) -> String {
    match setting.keys_text() {
        t if t.is_empty() => t,
        t => format!(", {t}"),
    }
}

/// The refusal of more grids than a figure can show: which keys vary, and
/// a `--where` that picks the first panel's setting.
fn too_many(data: &SweepData, panels: &[Panel]) -> ReportError {
    let mut keys: Vec<String> = panels
        .iter()
        .flat_map(|p| p.setting.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    let first = &panels[0];
    let mut condition = vec![
        format!("dataset = '{}'", first.group.dataset.name()),
        format!("space = '{}'", first.group.space.name()),
    ];
    condition.extend(first.setting.iter().map(|(k, v)| where_term(k, v)));
    ReportError::cannot(
        "fig7",
        &data.name,
        format!(
            "has {} grids of DDSAS over L × M (a panel per dataset, space and setting of the keys that vary besides L, M and the seed: {}), more than the {MAX_PANELS} one figure shows",
            panels.len(),
            keys.join(", ")
        ),
        format!(
            "draw some at a time with `--where`, e.g. `--where \"{}\"`",
            condition.join(" AND ")
        ),
    )
}

/// `key = value` as SQL over `run_summary`: its own column where it has
/// one, else through the stored config.
fn where_term(key: &str, value: &str) -> String {
    const COLUMNS: [&str; 8] = [
        "L",
        "M",
        "approximation",
        "epochs",
        "batch_size",
        "layers",
        "init_channels",
        "ucb_c",
    ];
    let literal = match value {
        "true" => "1".to_string(),
        "false" => "0".to_string(),
        v if v.parse::<f64>().is_ok() => v.to_string(),
        v => format!("'{}'", v.replace('\'', "''")),
    };
    if COLUMNS.contains(&key) {
        format!("{key} = {literal}")
    } else {
        format!(
            "id IN (SELECT id FROM runs WHERE json_extract(config_json, '$.{key}') = {literal})"
        )
    }
}

/// The grid of a setting's runs (with L, M and an accuracy), or `None`
/// if they cover fewer than two (L, M) points.
fn panel(group: Group, setting: &Setting<'_>, metric: Metric) -> Option<Panel> {
    let mut cells: BTreeMap<Lm<i64>, Cell> = BTreeMap::new();
    for run in &setting.runs {
        let (Some(l), Some(m), Some(acc)) = (run.l, run.m, metric.of(run)) else {
            continue;
        };
        let at = Lm { l, m };
        let cell = cells.entry(at).or_insert(Cell {
            at,
            best: f64::NEG_INFINITY,
            best_run: run.id,
            runs: Vec::new(),
        });
        cell.runs.push(run.id);
        if 100.0 * acc > cell.best {
            cell.best = 100.0 * acc;
            cell.best_run = run.id;
        }
    }
    let cells: Vec<Cell> = cells.into_values().collect();
    let best = cells
        .iter()
        .reduce(|b, c| if b.best >= c.best { b } else { c })?;
    if cells.len() < 2 {
        return None;
    }
    let best = Best {
        at: best.at,
        value: best.best,
        run: best.best_run,
    };
    let mut ls: Vec<i64> = cells.iter().map(|c| c.at.l).collect();
    let mut ms: Vec<i64> = cells.iter().map(|c| c.at.m).collect();
    ls.sort_unstable();
    ls.dedup();
    ms.sort_unstable();
    ms.dedup();
    Some(Panel {
        group,
        setting: setting.keys_map(),
        label: setting.keys_text(),
        cells,
        best,
        grid: Lm { l: ls, m: ms },
    })
}

/// "CIFAR-10, DARTS space, epochs=50: DDSAS runs 1–9 (9 (L, M) points,
/// best of 1 seed)".
fn caption_part(p: &Panel) -> String {
    let ids: Vec<i64> = p
        .cells
        .iter()
        .flat_map(|c| c.runs.iter().copied())
        .collect();
    format!(
        "{}: DDSAS {} ({} (L, M) points, {})",
        p.name(),
        runs_text(&ids),
        p.cells.len(),
        p.seeds_text()
    )
}

/// The heat map of a panel: rows are L with the largest at the top, so
/// that L grows upwards like a y axis; missing points say "not run".
fn heat_map(p: &Panel, metric: &str) -> HeatMap {
    let rows: Vec<i64> = p.grid.l.iter().rev().copied().collect();
    let uniform = p.uniform_runs().is_some();
    let cell = |l: i64, m: i64| match p.cell(Lm { l, m }) {
        Some(c) if uniform => (Some(c.best), format!("{:.2}", c.best)),
        Some(c) => (Some(c.best), format!("{:.2}\nn={}", c.best, c.runs.len())),
        None => (None, "not run".to_string()),
    };
    let grid: Vec<Vec<(Option<f64>, String)>> = rows
        .iter()
        .map(|&l| p.grid.m.iter().map(|&m| cell(l, m)).collect())
        .collect();
    let best = p.best.at;
    let highlight = rows
        .iter()
        .position(|&l| l == best.l)
        .zip(p.grid.m.iter().position(|&m| m == best.m));
    HeatMap {
        labels: Labels {
            title: format!(
                "{} · {} · best L = {}, M = {}: {:.2}%",
                p.name(),
                p.seeds_text(),
                best.l,
                best.m,
                p.best.value
            ),
            x_desc: "M (weight steps per sampled subspace)".into(),
            y_desc: "L (subspace size, ops)".into(),
        },
        x_labels: p.grid.m.iter().map(|m| m.to_string()).collect(),
        y_labels: rows.iter().map(|l| l.to_string()).collect(),
        values: grid
            .iter()
            .map(|r| r.iter().map(|c| c.0).collect())
            .collect(),
        texts: grid
            .into_iter()
            .map(|r| r.into_iter().map(|c| c.1).collect())
            .collect(),
        highlight,
        bar_desc: match metric {
            "test_acc" => "best test accuracy of the trained cell (%)".into(),
            _ => "best final valid accuracy (%)".into(),
        },
        integer: false,
    }
}

impl Draw for Fig7 {
    type Plot = HeatMapGrid;

    fn draw(&self, heading: &Heading) -> HeatMapGrid {
        let rows: Vec<Vec<HeatMap>> = self
            .panels
            .chunks(PER_ROW)
            .map(|row| row.iter().map(|p| heat_map(p, self.metric)).collect())
            .collect();
        let columns = self.panels.len().min(PER_ROW) as u32;
        HeatMapGrid {
            title: heading.title.clone(),
            size: (PANEL.0 * columns, PANEL.1 * rows.len() as u32),
            rows,
            margin: (0, 0, 0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::test_runs::{run, sweep};

    fn ddsas(id: i64, l: i64, m: i64, acc: f64) -> ReportRun {
        run(id, "ddsas")
            .set("L", l)
            .set("M", m)
            .set("approximation", true)
            .acc(acc)
            .build()
    }

    #[test]
    fn a_cell_is_the_best_seed_and_the_panel_outlines_the_best_cell() {
        let data = sweep(vec![
            ddsas(1, 28, 12, 0.50),
            ddsas(2, 28, 12, 0.60),
            ddsas(3, 28, 24, 0.55),
            ddsas(4, 56, 12, 0.70),
            // Without the approximation, or a baseline: not drawn.
            run(5, "ddsas")
                .set("L", 56)
                .set("M", 24)
                .set("approximation", false)
                .acc(0.9)
                .build(),
            run(6, "darts").acc(0.95).build(),
        ]);
        let fig = compute(&data, "valid_acc").unwrap();
        let panels = &fig.numbers.panels;
        assert_eq!(panels.len(), 1);
        let p = &panels[0];
        assert_eq!(
            p.grid,
            Lm {
                l: vec![28, 56],
                m: vec![12, 24]
            }
        );
        let first = &p.cells[0];
        assert_eq!((first.at, first.best_run), (Lm { l: 28, m: 12 }, 2));
        assert!((first.best - 60.0).abs() < 1e-9);
        assert_eq!(first.runs, [1, 2]);
        assert_eq!((p.best.at, p.best.run), (Lm { l: 56, m: 12 }, 4));
        assert_eq!(p.seeds_text(), "best of 1–2 seeds (n per cell)");
        assert!(fig.heading.caption.starts_with(
            "Digits, DARTS space: DDSAS runs 1–4 (3 (L, M) points, best of 1–2 seeds (n per cell))"
        ));
        let map = heat_map(p, "valid_acc");
        assert_eq!(map.y_labels, ["56", "28"]);
        assert_eq!(map.highlight, Some((0, 0)));
        assert_eq!(map.texts[0][1], "not run");
        assert_eq!(map.texts[1][0], "60.00\nn=2");
        let side = serde_json::to_value(&fig).unwrap();
        assert_eq!(side["figure"], "fig7");
        assert_eq!(side["panels"][0]["best"]["L"], 56);
        assert_eq!(side["panels"][0]["cells"][0]["M"], 12);
        assert_eq!(side["panels"][0]["L"], serde_json::json!([28, 56]));
    }

    #[test]
    fn auto_draws_test_accuracy_once_every_search_is_evaluated() {
        let trained = |id, l, acc, test: f64| {
            run(id, "ddsas")
                .set("L", l)
                .set("M", 12)
                .set("approximation", true)
                .acc(acc)
                .trained(100 + id, test, &[])
        };
        let runs = vec![
            trained(1, 28, 0.5, 0.97).build(),
            trained(2, 56, 0.6, 0.96).build(),
        ];
        let fig = compute(&sweep(runs.clone()), "auto").unwrap();
        assert_eq!(fig.numbers.metric, "test_acc");
        assert!((fig.numbers.panels[0].best.value - 97.0).abs() < 1e-9);
        assert!(
            fig.heading.caption.contains(
                "from scratch under the most recent training config (appendix B.1 (epochs=600))"
            ),
            "{}",
            fig.heading.caption
        );
        let mut partly = runs;
        partly[1].trainings.clear();
        let fig = compute(&sweep(partly), "auto").unwrap();
        assert_eq!(fig.numbers.metric, "valid_acc");
        assert!(fig.heading.caption.contains("a proxy"));
    }

    /// A search trained under two configs: only the trainings of one
    /// config give test accuracies, and the caption names it; two configs
    /// that are each some search's latest leave the proxy, saying why.
    #[test]
    fn test_accuracy_comes_from_one_train_config_and_is_named() {
        let grid = |id, l| {
            run(id, "ddsas")
                .set("L", l)
                .set("M", 12)
                .set("approximation", true)
                .acc(0.5)
        };
        let short = [("epochs", serde_json::json!(1))];
        let runs = vec![
            grid(1, 28)
                .trained(10, 0.90, &[])
                .trained(12, 0.40, &short)
                .build(),
            grid(2, 56).trained(11, 0.30, &short).build(),
        ];
        let fig = compute(&sweep(runs.clone()), "auto").unwrap();
        // A mean over both configs would give run 1's cell 65 %.
        let first = &fig.numbers.panels[0].cells[0];
        assert!((first.best - 40.0).abs() < 1e-9, "{}", first.best);
        let caption = &fig.heading.caption;
        assert!(
            caption.contains("under the most recent training config (epochs=1)")
                && caption.contains("1 training under other configs left out"),
            "{caption}"
        );
        let mut data = sweep(runs);
        data.evaluate = Some(crate::sweep::Evaluate {
            config: crate::config::train::TrainConfig::default(),
            own_data: false,
            seeds: vec![0],
            nproc: 1,
        });
        data.choose_trainings();
        // The sweep's own config: run 2 has no training under it.
        let fig = compute(&data, "auto").unwrap();
        assert_eq!(fig.numbers.metric, "valid_acc");
        let e = compute(&data, "test_acc").unwrap_err().to_string();
        assert!(e.contains("test accuracy for 1 of its 2"), "{e}");
        data.evaluate = None;
        data.runs[0].trainings.retain(|t| t.train_run_id == 10);
        data.choose_trainings();
        let fig = compute(&data, "auto").unwrap();
        assert_eq!(fig.numbers.metric, "valid_acc");
        assert!(
            fig.heading
                .caption
                .contains("latest trainings are under 2 train configs"),
            "{}",
            fig.heading.caption
        );
        let e = compute(&data, "test_acc").unwrap_err().to_string();
        assert!(
            e.contains("no one train config") && e.contains("`evaluate:`"),
            "{e}"
        );
    }

    /// Runs that differ in a key besides L, M and the seed are not seeds
    /// of one cell: each setting is its own panel, named in its title and
    /// the caption; a setting with one point is left out and named.
    #[test]
    fn every_varying_key_splits_the_grid_into_panels() {
        let at = |id, l, m, epochs: i64, ucb_c: f64| {
            run(id, "ddsas")
                .set("L", l)
                .set("M", m)
                .set("approximation", true)
                .set("epochs", epochs)
                .set("ucb_c", ucb_c)
                .acc(0.1 * id as f64)
                .build()
        };
        let data = sweep(vec![
            at(1, 28, 12, 2, 1.44),
            at(2, 56, 12, 2, 1.44),
            at(3, 28, 12, 3, 1.44),
            at(4, 56, 12, 3, 1.44),
            at(5, 28, 12, 2, 1.0),
        ]);
        let fig = compute(&data, "valid_acc").unwrap();
        let panels = &fig.numbers.panels;
        let labels: Vec<&str> = panels.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["epochs=2 ucb_c=1.44", "epochs=3 ucb_c=1.44"]);
        // Before, runs 1, 3 and 5 were "3 seeds" of one cell.
        assert_eq!(panels[0].cells[0].runs, [1]);
        assert_eq!(panels[1].cells[0].runs, [3]);
        assert_eq!(panels[0].setting["epochs"], "2");
        let caption = &fig.heading.caption;
        assert!(
            caption.starts_with("Digits, DARTS space, epochs=2 ucb_c=1.44: DDSAS runs 1, 2 (2 (L, M) points, best of 1 seed); Digits, DARTS space, epochs=3 ucb_c=1.44: DDSAS runs 3, 4"),
            "{caption}"
        );
        assert!(caption.contains("(epochs, ucb_c)"), "{caption}");
        assert!(
            caption.contains(
                "Not drawn: Digits, DARTS space, epochs=2 ucb_c=1.0, run 5 (one (L, M) point)."
            ),
            "{caption}"
        );
        let map = heat_map(&panels[1], "valid_acc");
        assert!(map
            .labels
            .title
            .starts_with("Digits, DARTS space, epochs=3 ucb_c=1.44 · best of 1 seed"));
        let side = serde_json::to_value(&fig).unwrap();
        assert_eq!(side["panels"][1]["setting"]["ucb_c"], "1.44");
        let grid = fig.numbers.draw(&fig.heading);
        assert_eq!(grid.rows.len(), 1);
        assert_eq!(grid.size, (2 * PANEL.0, PANEL.1));

        // Seven settings: refused, naming the keys and a --where.
        let many: Vec<ReportRun> = (0..14)
            .map(|i| at(i + 1, 28 + 28 * (i % 2), 12, 2 + i / 2, 1.44))
            .collect();
        let e = compute(&sweep(many), "valid_acc").unwrap_err().to_string();
        assert!(
            e.contains("has 7 grids")
                && e.contains("seed: epochs)")
                && e.contains("--where \"dataset = 'digits' AND space = 'darts' AND epochs = 2\""),
            "{e}"
        );
    }

    #[test]
    fn one_point_or_no_test_accuracy_is_refused() {
        let one = sweep(vec![ddsas(1, 28, 12, 0.5), ddsas(2, 28, 12, 0.6)]);
        let e = compute(&one, "valid_acc").unwrap_err().to_string();
        assert!(
            e.contains("more than one (L, M) point") && e.contains(PAPER_SWEEP),
            "{e}"
        );
        let e = compute(&one, "test_acc").unwrap_err().to_string();
        assert!(
            e.contains("test accuracy for 0 of its") && e.contains("train --from-run"),
            "{e}"
        );
    }
}
