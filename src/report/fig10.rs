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

use plotters::style::RGBColor;
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

use super::data::{
    by_dataset_space, group_label, method_rank, panel_counts, panel_settings, SeriesInfo, Setting,
    SweepData, METHOD_ORDER,
};
use super::draw::axes::Labels;
use super::draw::{self, LegendEntry, LinePanel, SeriesStyles, StackedColumns, Swatch};
use super::fig8::{band_legend, styles, x_range, MARKERS_UP_TO};
use super::records::{AccSource, Records};
use super::stats::{band_extent, per_x, Point};
use super::{Figure, Kind, ReportError};
use crate::store::ReportRun;

/// The paper's sweep for this figure.
pub const PAPER_SWEEP: &str = "sweeps/fig10_explore.yaml";
/// Per-step series longer than this are smoothed.
const SMOOTH_ABOVE: usize = 400;
/// Sidecars list every point up to this many per series.
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

    /// How many points run `r` recorded at this granularity.
    fn points(self, records: &Records, r: &ReportRun) -> usize {
        match self {
            Per::Step => records.steps_of(r.id).len(),
            Per::Epoch => records.epochs_of(r.id).len(),
        }
    }
}

/// Fig. 10's numbers (the sidecar) and captions.
#[derive(Debug, Clone, Serialize)]
pub struct Fig10 {
    figure: &'static str,
    /// Sweep name.
    pub sweep: String,
    /// `step` or `epoch`.
    pub per: &'static str,
    /// Points per moving average (1: none).
    pub smoothing_window: usize,
    /// One per (dataset, space).
    pub panels: Vec<Panel>,
    /// Figure title.
    #[serde(skip)]
    pub title: String,
    /// Index caption.
    #[serde(skip)]
    pub caption: String,
    /// Per step or per epoch.
    #[serde(skip)]
    pub granularity: Per,
    /// The most points (steps or epochs) any run drawn recorded.
    #[serde(skip)]
    pub longest: usize,
}

/// The settings of one (dataset, space).
#[derive(Debug, Clone, Serialize)]
pub struct Panel {
    /// Dataset.
    pub dataset: String,
    /// Search space.
    pub space: String,
    /// `step` or `epoch`.
    pub per: &'static str,
    /// Which accuracy the lower panel shows.
    #[serde(rename = "accuracy_source")]
    pub source: AccSource,
    /// One per setting.
    #[serde(rename = "methods")]
    pub series: Vec<Series>,
}

/// The two lines of one setting.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Which setting and runs.
    #[serde(flatten)]
    pub info: SeriesInfo,
    /// Cosine distance to the previous step or epoch.
    #[serde(serialize_with = "listed")]
    pub cosine_distance: Vec<Point>,
    /// Accuracy (%) of the same steps or epochs.
    #[serde(serialize_with = "listed")]
    pub accuracy: Vec<Point>,
}

/// Every point, or for a series too long to list, how many and the mean
/// of their means.
fn listed<S: Serializer>(points: &[Point], s: S) -> Result<S::Ok, S::Error> {
    if points.len() <= SIDECAR_POINTS {
        return points.serialize(s);
    }
    let mean = points.iter().map(|p| p.mean).sum::<f64>() / points.len() as f64;
    let mut summary = s.serialize_struct("Summary", 3)?;
    summary.serialize_field("points", &points.len())?;
    summary.serialize_field("mean_of_means", &mean)?;
    summary.serialize_field("omitted", "too many points to list")?;
    summary.end()
}

/// Fig. 10 of `data` per step or per epoch (with its steps, or its epochs
/// and NAS-Bench-201 tables, loaded).
pub fn compute(data: &SweepData, per: Per) -> Result<Fig10, ReportError> {
    let records = &data.records;
    let groups = by_dataset_space(
        data.runs
            .iter()
            .filter(|r| method_rank(&r.method) < METHOD_ORDER.len() && per.points(records, r) > 1),
    );
    if groups.is_empty() {
        let missing = match per {
            Per::Step => "has no done DARTS, GDAS or DDSAS runs with per-step records (table `steps`; searches log them with `log_steps: true`)",
            Per::Epoch => "has no done DARTS, GDAS or DDSAS runs with more than one epoch",
        };
        let name = format!("fig10 --per {}", per.name());
        return Err(data.cannot(&name, missing, PAPER_SWEEP));
    }
    let longest = groups
        .values()
        .flatten()
        .map(|r| per.points(records, r))
        .max()
        .unwrap_or(0);
    let window = if per == Per::Step && longest > SMOOTH_ABOVE {
        (longest / 100).max(2) | 1
    } else {
        1
    };
    let panels: Vec<Panel> = groups
        .keys()
        .zip(panel_settings(&groups))
        .map(|((dataset, space), settings)| panel(records, per, dataset, space, &settings))
        .collect();
    let unit = per.name();
    Ok(Fig10 {
        figure: "fig10",
        sweep: data.name.clone(),
        per: unit,
        smoothing_window: window,
        title: format!(
            "Fig. 10 — cosine distance between adjacent {unit}s and accuracy (sweep {})",
            data.name
        ),
        caption: caption(data, per, window, &panels),
        panels,
        granularity: per,
        longest,
    })
}

/// The index caption: what the distance is, how lines are drawn, and per
/// panel each setting's runs and what its accuracy is.
fn caption(data: &SweepData, per: Per, window: usize, panels: &[Panel]) -> String {
    let smooth = if window > 1 {
        format!(" Lines: moving average over {window} steps of the mean over runs.")
    } else {
        " Lines: mean over runs, shaded ± population std.".into()
    };
    let mut parts = Vec::new();
    for p in panels {
        parts.extend(
            p.series
                .iter()
                .map(|s| s.info.caption(&p.dataset, &p.space)),
        );
        parts.push(format!(
            "{} accuracy: {}",
            group_label(&p.dataset, &p.space),
            p.source.text()
        ));
    }
    format!(
        "Cosine distance between the one-hot encodings of the architectures derived at adjacent {}s ({}).{smooth} {}.{}",
        per.name(),
        match per {
            Per::Step => "table steps",
            Per::Epoch => "epochs.cosine_distance",
        },
        parts.join("; "),
        data.not_done_note()
    )
}

/// The lines of each setting of one (dataset, space).
fn panel(records: &Records, per: Per, dataset: &str, space: &str, settings: &[Setting]) -> Panel {
    let mut source = None;
    let series = settings
        .iter()
        .map(|setting| {
            let (cosine_distance, accuracy) = match per {
                Per::Step => {
                    source = Some(AccSource::Minibatch);
                    step_lines(records, &setting.runs)
                }
                Per::Epoch => {
                    let (accuracy, src) = records.epoch_accuracy(&setting.runs);
                    if let Some(src) = src {
                        AccSource::merge(&mut source, src);
                    }
                    let distance = setting.runs.iter().flat_map(|r| {
                        records
                            .epochs_of(r.id)
                            .iter()
                            .filter_map(|e| e.cosine_distance.map(|d| (e.epoch, d)))
                    });
                    (per_x(distance), per_x(accuracy.into_iter()))
                }
            };
            Series {
                info: setting.info(),
                cosine_distance,
                accuracy,
            }
        })
        .collect();
    Panel {
        dataset: dataset.into(),
        space: space.into(),
        per: per.name(),
        source: source.unwrap_or_default(),
        series,
    }
}

/// Per step over `runs`: the distance and the minibatch accuracy (%).
fn step_lines(records: &Records, runs: &[&ReportRun]) -> (Vec<Point>, Vec<Point>) {
    let steps = || runs.iter().flat_map(|r| records.steps_of(r.id));
    (
        per_x(steps().filter_map(|s| s.cosine_distance.map(|d| (s.step, d)))),
        per_x(steps().map(|s| (s.step, 100.0 * s.minibatch_acc))),
    )
}

impl Fig10 {
    /// The distance panel over the accuracy panel of one (dataset, space).
    fn column(&self, p: &Panel, styles: &SeriesStyles, markers: bool) -> (LinePanel, LinePanel) {
        let x_max = p
            .series
            .iter()
            .map(|s| s.accuracy.last().map_or(0, |pt| pt.x))
            .fold(0, i64::max);
        let x_range = x_range(x_max, 0.02);
        let lines = |points: &dyn Fn(&Series) -> &[Point]| -> Vec<draw::Series> {
            p.series
                .iter()
                .flat_map(|s| {
                    let style = styles.style(&s.info.method, &s.info.label);
                    draw::Series::smoothed(points(s), style, self.smoothing_window, markers)
                })
                .collect()
        };
        let d_hi = band_extent(p.series.iter().map(|s| s.cosine_distance.as_slice())).1;
        let (a_lo, a_hi) = band_extent(p.series.iter().map(|s| s.accuracy.as_slice()));
        let label = group_label(&p.dataset, &p.space);
        let infos: Vec<&SeriesInfo> = p.series.iter().map(|s| &s.info).collect();
        let unit = self.per;
        let top = LinePanel {
            labels: Labels {
                title: format!(
                    "{label} · runs: {}",
                    panel_counts(&infos, |n| n.to_string())
                ),
                x_desc: format!("{unit} (from 0)"),
                y_desc: format!("cosine distance to previous {unit}"),
            },
            x_range,
            y_range: (0.0, (d_hi.max(0.05) * 1.1).min(1.05)),
            integer_x: true,
            integer_y: false,
            series: lines(&|s| &s.cosine_distance),
            notes: Vec::new(),
        };
        let bottom = LinePanel {
            labels: Labels {
                title: match (&p.source, self.granularity) {
                    (AccSource::Benchmark { dataset, .. }, Per::Epoch) => {
                        format!("{label} · NAS-Bench-201 {dataset} accuracy of each epoch's cell")
                    }
                    _ => format!("{label} · accuracy"),
                },
                x_desc: format!("{unit} (from 0)"),
                y_desc: p.source.axis().into(),
            },
            x_range,
            y_range: draw::padded(a_lo, a_hi, 0.06),
            integer_x: true,
            integer_y: false,
            series: lines(&|s| &s.accuracy),
            notes: Vec::new(),
        };
        (top, bottom)
    }
}

impl Figure for Fig10 {
    type Plot = StackedColumns;

    fn kind(&self) -> Kind {
        Kind::Fig10(self.granularity)
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn caption(&self) -> &str {
        &self.caption
    }

    fn draw(&self) -> StackedColumns {
        let markers = self.granularity == Per::Epoch && self.longest <= MARKERS_UP_TO;
        let styles = styles(
            self.panels
                .iter()
                .map(|p| p.series.iter().map(|s| &s.info).collect()),
        );
        let mut legend = styles.legend(markers);
        legend.push(if self.smoothing_window > 1 {
            LegendEntry {
                label: format!(
                    "bold: moving average over {} steps; faint: mean over runs",
                    self.smoothing_window
                ),
                color: RGBColor(200, 200, 200),
                swatch: Swatch::Line(3),
            }
        } else {
            band_legend()
        });
        StackedColumns {
            title: self.title.clone(),
            legend,
            columns: self
                .panels
                .iter()
                .map(|p| self.column(p, &styles, markers))
                .collect(),
            height: 1000,
            top_percent: 50,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::test_runs::{run, sweep};
    use crate::store::{EpochPoint, StepPoint};

    fn steps(run_id: i64, n: i64) -> Vec<StepPoint> {
        (0..n)
            .map(|step| StepPoint {
                run_id,
                step,
                cosine_distance: (step > 0).then_some(0.1 * run_id as f64),
                minibatch_acc: 0.5,
            })
            .collect()
    }

    fn epoch(run_id: i64, epoch: i64, d: Option<f64>) -> EpochPoint {
        EpochPoint {
            run_id,
            epoch,
            valid_acc: 0.25 * run_id as f64,
            skip_normal: 0,
            cosine_distance: d,
            genotype: String::new(),
        }
    }

    #[test]
    fn per_step_lines_are_the_mean_over_a_settings_runs() {
        let mut data = sweep(vec![
            run(1, "ddsas").build(),
            run(2, "ddsas").build(),
            run(3, "darts").build(),
            run(4, "gdas").build(),
        ]);
        for id in 1..=3 {
            data.records.steps.insert(id, steps(id, 3));
        }
        // One step is not a distance: run 4 is left out.
        data.records.steps.insert(4, steps(4, 1));
        let fig = compute(&data, Per::Step).unwrap();
        let p = &fig.panels[0];
        let labels: Vec<&str> = p.series.iter().map(|s| s.info.label.as_str()).collect();
        assert_eq!(labels, ["DARTS", "DDSAS"]);
        let ddsas = &p.series[1];
        assert_eq!(ddsas.cosine_distance.len(), 2);
        let d = ddsas.cosine_distance[0];
        assert_eq!((d.x, d.n), (1, 2));
        assert!((d.mean - 0.15).abs() < 1e-12 && (d.std - 0.05).abs() < 1e-12);
        assert_eq!(ddsas.accuracy[0].mean, 50.0);
        assert_eq!(p.source, AccSource::Minibatch);
        assert_eq!(fig.smoothing_window, 1);
        assert!(fig.caption.contains("(table steps). Lines: mean over runs"));
        assert!(fig
            .caption
            .contains("Digits, DARTS space accuracy: weight-minibatch accuracy of each step"));
        let (top, _) = fig.column(
            p,
            &styles(std::iter::once(vec![&p.series[0].info, &ddsas.info])),
            false,
        );
        assert_eq!(
            top.labels.title,
            "Digits, DARTS space · runs: DARTS 1, DDSAS 2"
        );
    }

    #[test]
    fn long_step_series_are_smoothed_and_summarised() {
        let mut data = sweep(vec![run(1, "ddsas").build()]);
        data.records.steps.insert(1, steps(1, 6001));
        let fig = compute(&data, Per::Step).unwrap();
        assert_eq!(fig.smoothing_window, 61);
        let side = serde_json::to_value(&fig.panels[0].series[0]).unwrap();
        assert_eq!(side["accuracy"]["points"], 6001);
        assert_eq!(side["accuracy"]["mean_of_means"], 50.0);
        assert_eq!(side["label"], "DDSAS");
        assert_eq!(fig.draw().columns[0].0.series.len(), 2);
    }

    #[test]
    fn per_epoch_uses_the_epoch_distance_and_valid_accuracy() {
        let mut data = sweep(vec![run(1, "ddsas").build(), run(2, "ddsas").build()]);
        data.records
            .epochs
            .insert(1, vec![epoch(1, 0, None), epoch(1, 1, Some(0.2))]);
        data.records.epochs.insert(2, vec![epoch(2, 0, None)]);
        let fig = compute(&data, Per::Epoch).unwrap();
        let s = &fig.panels[0].series[0];
        assert_eq!(s.info.runs, [1]);
        assert_eq!(
            s.cosine_distance,
            vec![Point {
                x: 1,
                mean: 0.2,
                std: 0.0,
                n: 1
            }]
        );
        assert_eq!(s.accuracy[0].mean, 25.0);
        assert_eq!(fig.panels[0].source.text(), "search valid accuracy");
        assert!(compute(&sweep(vec![run(1, "ddsas").build()]), Per::Epoch).is_err());
    }
}
