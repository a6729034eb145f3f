//! Fig. 10 (and Fig. 5d): exploration and exploitation — the cosine
//! distance between the architectures derived at adjacent steps (or
//! epochs), and the accuracy over the same steps (or epochs), one line per
//! setting (DARTS, GDAS, DDSAS, and the values of the config keys that vary
//! among the runs shown), one column per (dataset, space).
//!
//! Per step, the accuracy is the weight minibatch's (the only accuracy a
//! step records); per epoch it is the NAS-Bench-201 accuracy of the derived
//! architecture where a table was imported, else the search's valid
//! accuracy. Long per-step series are drawn as a moving average over the
//! faint raw mean, and the caption gives the window.

use std::collections::HashMap;

use plotters::prelude::*;
use serde_json::json;

use super::data::{
    acc_source_text, by_dataset_space, epochs_by_run, group_label, method_rank, plural, runs_text,
    seed_count, setting_json, AccSource, Nb201Lookup, SweepData, METHOD_ORDER,
};
use super::draw::{self, LegendEntry, LinePanel, Series, StackedColumns, Swatch};
use super::fig8::{
    band_range, mean_series, panel_counts, panel_settings, stats, stats_json, Stats,
};
use super::{save_figure, Figure, Kind, Options, Output, ReportError};
use crate::store::{ReportRun, StepPoint, Store};

/// The paper's sweep for this figure.
pub const PAPER_SWEEP: &str = "sweeps/fig10_explore.yaml";
/// Per-step series longer than this are smoothed.
const SMOOTH_ABOVE: usize = 400;
/// Sidecars list every point up to this many per method.
const SIDECAR_POINTS: usize = 5000;

/// Granularity of the distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// Adjacent steps (table `steps`; the paper's Fig. 10).
    Step,
    /// Adjacent epochs (`epochs.cosine_distance`; Fig. 5d).
    Epoch,
}

impl Per {
    /// `step` or `epoch`.
    pub fn name(self) -> &'static str {
        match self {
            Per::Step => "step",
            Per::Epoch => "epoch",
        }
    }

    /// File stem of the figure.
    pub fn stem(self) -> &'static str {
        match self {
            Per::Step => "fig10_explore_step",
            Per::Epoch => "fig10_explore_epoch",
        }
    }
}

/// Centered moving average of `stats` means over `w` points.
fn moving_average(stats: &Stats, w: usize) -> Vec<(f64, Option<f64>)> {
    let half = w / 2;
    (0..stats.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(stats.len());
            let mean = stats[lo..hi].iter().map(|s| s.1).sum::<f64>() / (hi - lo) as f64;
            (stats[i].0 as f64, Some(mean))
        })
        .collect()
}

/// The line(s) of one setting: the mean with its band, or for long series
/// the faint raw mean under a moving average.
fn method_series(
    stats: &Stats,
    style: (RGBColor, usize),
    window: usize,
    markers: bool,
) -> Vec<Series> {
    if window <= 1 {
        return vec![mean_series(stats, style, markers)];
    }
    let color = style.0;
    vec![
        Series {
            color,
            marker: 3,
            width: 1,
            alpha: 0.25,
            points: stats
                .iter()
                .map(|&(x, m, _, _)| (x as f64, Some(m)))
                .collect(),
            band: Vec::new(),
        },
        Series {
            color,
            marker: 3,
            width: 3,
            alpha: 1.0,
            points: moving_average(stats, window),
            band: Vec::new(),
        },
    ]
}

fn sidecar_stats(stats: &Stats) -> serde_json::Value {
    if stats.len() <= SIDECAR_POINTS {
        stats_json(stats)
    } else {
        let mean = stats.iter().map(|s| s.1).sum::<f64>() / stats.len() as f64;
        json!({"points": stats.len(), "mean_of_means": mean, "omitted": "too many points to list"})
    }
}

/// Draws Fig. 10 of `data` per step or per epoch.
pub async fn render(
    store: &Store,
    data: &SweepData,
    per: Per,
    opts: &Options,
) -> Result<Output, ReportError> {
    let name = format!("fig10 --per {}", per.name());
    let epochs = epochs_by_run(store.report_epochs(&data.name).await?);
    let mut steps: HashMap<i64, Vec<StepPoint>> = HashMap::new();
    if per == Per::Step {
        for s in store.report_steps(&data.name).await? {
            steps.entry(s.run_id).or_default().push(s);
        }
    }
    let has_data = |r: &ReportRun| match per {
        Per::Step => steps.get(&r.id).is_some_and(|s| s.len() > 1),
        Per::Epoch => epochs.get(&r.id).is_some_and(|e| e.len() > 1),
    };
    let groups = by_dataset_space(
        data.runs
            .iter()
            .filter(|r| method_rank(&r.method) < METHOD_ORDER.len() && has_data(r)),
    );
    if groups.is_empty() {
        let missing = match per {
            Per::Step => "has no done DARTS, GDAS or DDSAS runs with per-step records (table `steps`; searches log them with `log_steps: true`)",
            Per::Epoch => "has no done DARTS, GDAS or DDSAS runs with more than one epoch",
        };
        return Err(ReportError::cannot(
            &name,
            &data.name,
            missing,
            data.run_hint(Some(PAPER_SWEEP)),
        ));
    }
    let datasets: Vec<&str> = groups.keys().map(|(d, _)| d.as_str()).collect();
    let lookup = Nb201Lookup::load(store, &datasets).await?;
    let longest = groups
        .values()
        .flatten()
        .map(|r| match per {
            Per::Step => steps.get(&r.id).map_or(0, Vec::len),
            Per::Epoch => epochs.get(&r.id).map_or(0, Vec::len),
        })
        .max()
        .unwrap_or(0);
    let window = if per == Per::Step && longest > SMOOTH_ABOVE {
        (longest / 100).max(2) | 1
    } else {
        1
    };
    let markers = per == Per::Epoch && longest <= 60;
    let unit = per.name();
    let mut columns = Vec::new();
    let mut panels_json = Vec::new();
    let mut caption = Vec::new();
    let (panel_settings, styles) = panel_settings(&groups);
    for (((dataset, space), _), panel) in groups.iter().zip(&panel_settings) {
        let (mut dist_series, mut acc_series) = (Vec::new(), Vec::new());
        let (mut dist_all, mut acc_all) = (Vec::new(), Vec::new());
        let mut methods_json = Vec::new();
        let mut counts = Vec::new();
        let mut source: Option<AccSource> = None;
        let mut x_max = 0i64;
        for setting in panel {
            let mruns = &setting.runs;
            let (dist, acc) = match per {
                Per::Step => (
                    stats(mruns.iter().flat_map(|r| {
                        steps[&r.id]
                            .iter()
                            .filter_map(|s| s.cosine_distance.map(|d| (s.step, d)))
                    })),
                    stats(mruns.iter().flat_map(|r| {
                        steps[&r.id]
                            .iter()
                            .map(|s| (s.step, 100.0 * s.minibatch_acc))
                    })),
                ),
                Per::Epoch => {
                    let mut acc_points = Vec::new();
                    for r in mruns {
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
                    (
                        stats(mruns.iter().flat_map(|r| {
                            epochs[&r.id]
                                .iter()
                                .filter_map(|e| e.cosine_distance.map(|d| (e.epoch, d)))
                        })),
                        stats(acc_points.into_iter()),
                    )
                }
            };
            x_max = x_max.max(acc.last().map_or(0, |s| s.0));
            let label = setting.label();
            let style = styles.style(&setting.method, &label);
            dist_series.extend(method_series(&dist, style, window, markers));
            acc_series.extend(method_series(&acc, style, window, markers));
            let ids = setting.ids();
            counts.push(format!("{label} {}", mruns.len()));
            caption.push(format!(
                "{label} on {}: {} ({})",
                group_label(dataset, space),
                runs_text(&ids),
                plural(seed_count(mruns), "seed")
            ));
            methods_json.push(json!({
                "method": setting.method,
                "setting": setting_json(setting),
                "label": label,
                "runs": ids,
                "seeds": seed_count(mruns),
                "cosine_distance": sidecar_stats(&dist),
                "accuracy": sidecar_stats(&acc),
            }));
            dist_all.push(dist);
            acc_all.push(acc);
        }
        let (acc_desc, acc_words) = match per {
            Per::Step => (
                "minibatch accuracy (%)".to_string(),
                "weight-minibatch accuracy of each step".to_string(),
            ),
            Per::Epoch => {
                let src = source
                    .clone()
                    .unwrap_or(AccSource::Valid("search valid accuracy".into()));
                let desc = match &src {
                    AccSource::Benchmark { .. } => "benchmark accuracy (%)".to_string(),
                    AccSource::Valid(_) => "search valid accuracy (%)".to_string(),
                };
                (desc, acc_source_text(&src))
            }
        };
        let (_, d_hi) = band_range(&dist_all.iter().collect::<Vec<_>>());
        let (a_lo, a_hi) = band_range(&acc_all.iter().collect::<Vec<_>>());
        let x_range = if x_max == 0 {
            (-0.5, 0.5)
        } else {
            draw::padded(0.0, x_max as f64, 0.02)
        };
        let label = group_label(dataset, space);
        let runs_word = format!("runs: {}", panel_counts(&counts, panel));
        columns.push((
            LinePanel {
                title: format!("{label} · {runs_word}"),
                x_desc: format!("{unit} (from 0)"),
                y_desc: format!("cosine distance to previous {unit}"),
                x_range,
                y_range: (0.0, (d_hi.max(0.05) * 1.1).min(1.05)),
                integer_x: true,
                integer_y: false,
                series: dist_series,
                notes: Vec::new(),
            },
            LinePanel {
                title: match (&source, per) {
                    (Some(AccSource::Benchmark { dataset, .. }), Per::Epoch) => {
                        format!("{label} · NAS-Bench-201 {dataset} accuracy of each epoch's cell")
                    }
                    _ => format!("{label} · accuracy"),
                },
                x_desc: format!("{unit} (from 0)"),
                y_desc: acc_desc,
                x_range,
                y_range: draw::padded(a_lo, a_hi, 0.06),
                integer_x: true,
                integer_y: false,
                series: acc_series,
                notes: Vec::new(),
            },
        ));
        caption.push(format!("{label} accuracy: {acc_words}"));
        panels_json.push(json!({
            "dataset": dataset,
            "space": space,
            "per": unit,
            "accuracy_source": acc_words,
            "methods": methods_json,
        }));
    }
    let mut legend: Vec<LegendEntry> = styles.legend(markers);
    legend.push(if window > 1 {
        LegendEntry {
            label: format!("bold: moving average over {window} steps; faint: mean over runs"),
            color: RGBColor(200, 200, 200),
            swatch: Swatch::Line(3),
        }
    } else {
        LegendEntry {
            label: "shaded: mean ± std over runs".into(),
            color: RGBColor(200, 200, 200),
            swatch: Swatch::Box,
        }
    });
    let plot = StackedColumns {
        title: format!(
            "Fig. 10 — cosine distance between adjacent {unit}s and accuracy (sweep {})",
            data.name
        ),
        legend,
        columns,
        height: 1000,
        top_percent: 50,
    };
    let stem = per.stem();
    let sidecar = json!({
        "figure": "fig10",
        "sweep": data.name,
        "per": unit,
        "smoothing_window": window,
        "panels": panels_json,
    });
    let smooth = if window > 1 {
        format!(" Lines: moving average over {window} steps of the mean over runs.")
    } else {
        " Lines: mean over runs, shaded ± population std.".into()
    };
    save_figure(
        Figure {
            kind: Kind::Fig10(per),
            plot: &plot,
            title: plot.title.clone(),
            stem,
            sidecar,
            caption: format!(
                "Cosine distance between the one-hot encodings of the architectures derived at adjacent {unit}s ({}).{smooth} {}.{}",
                match per {
                    Per::Step => "table steps",
                    Per::Epoch => "epochs.cosine_distance",
                },
                caption.join("; "),
                data.not_done_note()
            ),
        },
        opts,
    )
}
