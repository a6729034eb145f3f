//! Fig. 8: how many `skip_connect` the derived normal cell keeps after each
//! epoch (appendix B.3), mean ± std over the runs (seeds) of a setting, one
//! line per setting (a method and the values of the config keys that vary
//! among the runs shown), one column of panels per (dataset, space). Below each, the
//! accuracy of the same epochs: NAS-Bench-201 benchmark accuracy of the
//! derived architecture where a table was imported, else the search's valid
//! accuracy (the axis and the caption say which), so that "fewer skips" can
//! be read against "better architecture".

use std::collections::BTreeMap;

use plotters::prelude::*;
use serde_json::json;

use super::data::{
    acc_source_text, by_dataset_space, epochs_by_run, group_label, plural, runs_text, seed_count,
    series_names, setting_json, settings, AccSource, Nb201Lookup, Setting, SweepData,
};
use super::draw::{
    self, mean_std, LegendEntry, LinePanel, Series, SeriesStyles, StackedColumns, Swatch,
};
use super::{save_figure, Figure, Kind, Options, Output, ReportError};
use crate::store::{ReportRun, Store};

/// File stem of the figure.
pub const STEM: &str = "fig8_skip";
/// The paper's sweep for this figure.
pub const PAPER_SWEEP: &str = "sweeps/fig8_fig9_skip.yaml";

/// Per-epoch mean, std and count of one quantity over runs.
pub(crate) type Stats = Vec<(i64, f64, f64, usize)>;

/// Mean, population std and n per x over the `(x, value)` points of runs.
pub(crate) fn stats(points: impl Iterator<Item = (i64, f64)>) -> Stats {
    let mut by_x: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (x, v) in points {
        if v.is_finite() {
            by_x.entry(x).or_default().push(v);
        }
    }
    by_x.into_iter()
        .map(|(x, vs)| {
            let (m, s) = mean_std(&vs);
            (x, m, s, vs.len())
        })
        .collect()
}

/// A mean line with its ± std band, in `style` (colour, marker).
pub(crate) fn mean_series(stats: &Stats, style: (RGBColor, usize), marker: bool) -> Series {
    Series {
        color: style.0,
        marker: if marker { style.1 } else { 3 },
        width: 3,
        alpha: 1.0,
        points: stats
            .iter()
            .map(|&(x, m, _, _)| (x as f64, Some(m)))
            .collect(),
        band: stats
            .iter()
            .map(|&(x, m, s, _)| (x as f64, m - s, m + s))
            .collect(),
    }
}

/// Moves the lines of a panel apart by a hair along x and draws the first
/// ones wider, so that methods with equal values (skip counts often are)
/// stay visible under each other.
pub(crate) fn dodge(series: &mut [Series], x_range: (f64, f64)) {
    let n = series.len();
    let k = n as f64;
    let step = (x_range.1 - x_range.0) * 0.006;
    for (i, s) in series.iter_mut().enumerate() {
        let off = (i as f64 - (k - 1.0) / 2.0) * step;
        for p in &mut s.points {
            p.0 += off;
        }
        s.width = 3 + (n - 1 - i).min(3) as u32;
    }
}

pub(crate) fn stats_json(stats: &Stats) -> serde_json::Value {
    json!(stats
        .iter()
        .map(|&(x, m, s, n)| json!({"x": x, "mean": m, "std": s, "n": n}))
        .collect::<Vec<_>>())
}

/// y range covering every band.
pub(crate) fn band_range(all: &[&Stats]) -> (f64, f64) {
    let lo = all
        .iter()
        .flat_map(|s| s.iter().map(|&(_, m, sd, _)| m - sd))
        .fold(f64::INFINITY, f64::min);
    let hi = all
        .iter()
        .flat_map(|s| s.iter().map(|&(_, m, sd, _)| m + sd))
        .fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// What a panel title says about its runs: each series with its count, or
/// with many series (named in the legend) just how many.
pub(crate) fn panel_counts(counts: &[String], panel: &[Setting]) -> String {
    if counts.len() <= 3 {
        counts.join(", ")
    } else {
        let runs: usize = panel.iter().map(|s| s.runs.len()).sum();
        format!("{} settings, {}", counts.len(), plural(runs, "run"))
    }
}

/// The settings of each `(dataset, space)` panel of a line figure, and the
/// styles that tell their series apart across panels.
pub(crate) fn panel_settings<'a>(
    groups: &BTreeMap<(String, String), Vec<&'a ReportRun>>,
) -> (Vec<Vec<Setting<'a>>>, SeriesStyles) {
    let panels: Vec<Vec<Setting>> = groups
        .values()
        .map(|runs| settings(runs, &["dataset", "space"]))
        .collect();
    let styles = SeriesStyles::new(&series_names(&panels));
    (panels, styles)
}

/// Draws Fig. 8 of `data`.
pub async fn render(
    store: &Store,
    data: &SweepData,
    opts: &Options,
) -> Result<Output, ReportError> {
    let epochs = epochs_by_run(store.report_epochs(&data.name).await?);
    let groups = by_dataset_space(data.runs.iter().filter(|r| epochs.contains_key(&r.id)));
    if groups.is_empty() {
        return Err(ReportError::cannot(
            "fig8",
            &data.name,
            "has no done runs with recorded epochs",
            data.run_hint(Some(PAPER_SWEEP)),
        ));
    }
    let datasets: Vec<&str> = groups.keys().map(|(d, _)| d.as_str()).collect();
    let any_darts = groups.keys().any(|(_, space)| space != "nb201");
    let lookup = Nb201Lookup::load(store, &datasets).await?;
    let mut columns = Vec::new();
    let mut panels_json = Vec::new();
    let mut caption = Vec::new();
    let max_epochs = groups
        .values()
        .flatten()
        .filter_map(|r| epochs.get(&r.id).map(|e| e.len()))
        .max()
        .unwrap_or(0);
    let markers = max_epochs <= 60;
    let (panel_settings, styles) = panel_settings(&groups);
    for (((dataset, space), _), panel) in groups.iter().zip(&panel_settings) {
        let mut skip_series = Vec::new();
        let mut acc_series = Vec::new();
        let mut skip_stats_all = Vec::new();
        let mut acc_stats_all = Vec::new();
        let mut methods_json = Vec::new();
        let mut source: Option<AccSource> = None;
        let mut counts = Vec::new();
        let mut x_max = 0i64;
        for setting in panel {
            let skip = stats(setting.runs.iter().flat_map(|r| {
                epochs[&r.id]
                    .iter()
                    .map(|e| (e.epoch, e.skip_normal as f64))
            }));
            let mut acc_points = Vec::new();
            for r in &setting.runs {
                let (pts, src) = lookup.epoch_accuracy(space, dataset, &epochs[&r.id]);
                acc_points.extend(pts.into_iter().filter_map(|(e, a)| a.map(|a| (e, a))));
                match (&mut source, src) {
                    (
                        Some(AccSource::Benchmark { missing, .. }),
                        AccSource::Benchmark { missing: m, .. },
                    ) => *missing += m,
                    (s @ None, src) => *s = Some(src),
                    _ => {}
                }
            }
            let acc = stats(acc_points.into_iter());
            x_max = x_max.max(skip.last().map_or(0, |s| s.0));
            let label = setting.label();
            let style = styles.style(&setting.method, &label);
            skip_series.push(mean_series(&skip, style, markers));
            acc_series.push(mean_series(&acc, style, markers));
            let ids = setting.ids();
            counts.push(format!("{label} {}", plural(ids.len(), "run")));
            caption.push(format!(
                "{label} on {}: {} ({})",
                group_label(dataset, space),
                runs_text(&ids),
                plural(seed_count(&setting.runs), "seed")
            ));
            methods_json.push(json!({
                "method": setting.method,
                "setting": setting_json(setting),
                "label": label,
                "runs": ids,
                "seeds": seed_count(&setting.runs),
                "skip_normal": stats_json(&skip),
                "accuracy": stats_json(&acc),
            }));
            skip_stats_all.push(skip);
            acc_stats_all.push(acc);
        }
        let source = source.unwrap_or(AccSource::Valid("search valid accuracy".into()));
        let kept_edges = if space == "nb201" { 6.0 } else { 8.0 };
        let (_, skip_hi) = band_range(&skip_stats_all.iter().collect::<Vec<_>>());
        let (acc_lo, acc_hi) = band_range(&acc_stats_all.iter().collect::<Vec<_>>());
        let x_range = if x_max == 0 {
            (-0.5, 0.5)
        } else {
            draw::padded(0.0, x_max as f64, 0.03)
        };
        dodge(&mut skip_series, x_range);
        dodge(&mut acc_series, x_range);
        let acc_desc = match &source {
            AccSource::Benchmark { .. } => "benchmark accuracy (%)".to_string(),
            AccSource::Valid(_) => "search valid accuracy (%)".to_string(),
        };
        let label = group_label(dataset, space);
        columns.push((
            LinePanel {
                title: format!("{label} · {}", panel_counts(&counts, panel)),
                x_desc: "epoch (from 0)".into(),
                y_desc: if space == "nb201" {
                    format!("skip_connect in the cell (of {kept_edges} edges)")
                } else {
                    format!("skip_connect in normal cell (of {kept_edges} edges)")
                },
                x_range,
                y_range: (-0.3, skip_hi.max(kept_edges) + 0.3),
                integer_x: true,
                integer_y: true,
                series: skip_series,
                notes: Vec::new(),
            },
            LinePanel {
                title: match &source {
                    AccSource::Benchmark { dataset, .. } => {
                        format!("{label} · NAS-Bench-201 {dataset} accuracy of each epoch's cell")
                    }
                    AccSource::Valid(_) => format!("{label} · accuracy of the same epochs"),
                },
                x_desc: "epoch (from 0)".into(),
                y_desc: acc_desc,
                x_range,
                y_range: draw::padded(acc_lo, acc_hi, 0.08),
                integer_x: true,
                integer_y: false,
                series: acc_series,
                notes: Vec::new(),
            },
        ));
        caption.push(format!("{label} accuracy: {}", acc_source_text(&source)));
        panels_json.push(json!({
            "dataset": dataset,
            "space": space,
            "accuracy_source": acc_source_text(&source),
            "methods": methods_json,
        }));
    }
    let mut legend: Vec<LegendEntry> = styles.legend(markers);
    legend.push(LegendEntry {
        label: "shaded: mean ± std over runs".into(),
        color: RGBColor(200, 200, 200),
        swatch: Swatch::Box,
    });
    let plot = StackedColumns {
        title: format!(
            "Fig. 8 — skip connections in the derived {} per epoch (sweep {})",
            if any_darts { "normal cell" } else { "cell" },
            data.name
        ),
        legend,
        columns,
        height: 1100,
        top_percent: 55,
    };
    let sidecar = json!({
        "figure": "fig8",
        "sweep": data.name,
        "std": "population (ddof = 0) over runs",
        "panels": panels_json,
    });
    save_figure(
        Figure {
            kind: Kind::Fig8,
            plot: &plot,
            title: plot.title.clone(),
            stem: STEM,
            sidecar,
            caption: format!(
                "Mean ± population std over runs of `epochs.skip_normal` per epoch. {}.{}",
                caption.join("; "),
                data.not_done_note()
            ),
        },
        opts,
    )
}
