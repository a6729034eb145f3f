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
use serde::Serialize;

use super::columns::{band_legend, captions, columns, stacked, x_range, Column};
use super::columns::{Line, Series, Upper, MARKERS_UP_TO};
use super::data::METHOD_ORDER;
use super::data::{by_dataset_space, method_rank, panel_counts, Setting, SweepData};
use super::draw::axes::Labels;
use super::draw::{self, LegendEntry, LinePanel, SeriesStyles, StackedColumns, Swatch};
use super::records::{AccSource, Records, Table};
use super::stats::per_x;
use super::{
    drawn_figure, save_figure, Draw, Figure, Heading, Kind, ReportError, Spec, PICTURE_FILES,
};
use crate::store::ReportRun;

/// The paper's sweep for this figure.
pub const PAPER_SWEEP: &str = "sweeps/fig10_explore.yaml";
/// Per-step series longer than this are smoothed.
const SMOOTH_ABOVE: usize = 400;

/// Fig. 10 per step (the paper's), in the report's table of figures.
pub static PER_STEP: Spec = Spec {
    name: "fig10 --per step",
    figure: "fig10",
    stem: "fig10_explore_step",
    extensions: PICTURE_FILES,
    tables: &[Table::Steps],
    page: Some("fig10_step"),
    is_table: false,
    make: |data, opts| save_figure(&compute(data, Per::Step)?, opts),
    draw: |data, _| drawn_figure(&compute(data, Per::Step)?),
    remove_more: None,
};

/// Fig. 10 per epoch (Fig. 5d), in the report's table of figures.
pub static PER_EPOCH: Spec = Spec {
    name: "fig10 --per epoch",
    figure: "fig10",
    stem: "fig10_explore_epoch",
    extensions: PICTURE_FILES,
    tables: &[Table::Epochs, Table::Nb201],
    page: Some("fig10_epoch"),
    is_table: false,
    make: |data, opts| save_figure(&compute(data, Per::Epoch)?, opts),
    draw: |data, _| drawn_figure(&compute(data, Per::Epoch)?),
    remove_more: None,
};

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

    /// The figure at this granularity, in the report's table of figures.
    pub fn kind(self) -> Kind {
        match self {
            Per::Step => &PER_STEP,
            Per::Epoch => &PER_EPOCH,
        }
    }

    /// How many points run `r` recorded at this granularity.
    fn points(self, records: &Records, r: &ReportRun) -> usize {
        match self {
            Per::Step => records.step_count(r.id),
            Per::Epoch => records.epochs_of(r.id).len(),
        }
    }

    /// Where the distance is read from, for the caption.
    fn table(self) -> &'static str {
        match self {
            Per::Step => "table steps",
            Per::Epoch => "epochs.cosine_distance",
        }
    }
}

/// Fig. 10's numbers (with its [`Heading`], the sidecar).
#[derive(Debug, Clone, Serialize)]
pub struct Fig10 {
    /// `step` or `epoch`.
    pub per: &'static str,
    /// Steps (or epochs) per moving average (1: none).
    pub smoothing_window: usize,
    /// Steps each drawn point sums (1 but for searches longer than the
    /// picture is wide; the sidecar's lines say it where it is not 1).
    #[serde(skip)]
    pub per_point: usize,
    /// One per (dataset, space).
    pub panels: Vec<Column>,
    /// Per step or per epoch.
    #[serde(skip)]
    pub granularity: Per,
    /// The most points (steps or epochs) any run drawn recorded.
    #[serde(skip)]
    pub longest: usize,
}

/// Fig. 10 of `data` per step or per epoch (with its steps, or its epochs
/// and NAS-Bench-201 tables, loaded).
pub fn compute(data: &SweepData, per: Per) -> Result<Figure<Fig10>, ReportError> {
    let records = &data.records;
    let groups = by_dataset_space(
        data.runs
            .iter()
            .filter(|r| method_rank(r.method) < METHOD_ORDER.len() && per.points(records, r) > 1),
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
    let per_point = match per {
        Per::Step => records.step_width.max(1),
        Per::Epoch => 1,
    };
    let panels = columns(&groups, Some(per.name()), |s| {
        lines(records, per, per_point, s)
    });
    let unit = per.name();
    let smooth = if window > 1 {
        format!(" Lines: moving average over {window} steps of the mean over runs.")
    } else {
        " Lines: mean over runs, shaded ± population std.".into()
    };
    let heading = Heading {
        kind: per.kind(),
        sweep: data.name.clone(),
        title: format!(
            "Fig. 10 — cosine distance between adjacent {unit}s and accuracy (sweep {})",
            data.name
        ),
        caption: format!(
            "Cosine distance between the one-hot encodings of the architectures derived at adjacent {unit}s ({}).{smooth} {}.{}",
            per.table(),
            captions(&panels).join("; "),
            data.not_done_note()
        ),
    };
    let numbers = Fig10 {
        per: unit,
        smoothing_window: window,
        per_point,
        panels,
        granularity: per,
        longest,
    };
    Ok(Figure { heading, numbers })
}

/// The lines of one setting and where its accuracy comes from: per step,
/// the distance and the minibatch accuracy; per epoch, the distance and
/// the epoch accuracy. A per-step point is the mean over runs of each
/// run's mean over the `per_point` steps it sums.
fn lines(
    records: &Records,
    per: Per,
    per_point: usize,
    setting: &Setting,
) -> (Series, Option<AccSource>) {
    let runs = &setting.runs;
    let ((cosine_distance, accuracy), source) = match per {
        Per::Step => {
            let steps = || runs.iter().flat_map(|r| records.steps_of(r.id));
            let distance = steps().filter_map(|b| b.distance().map(|d| (b.step, d)));
            let accuracy = steps().map(|b| (b.step, 100.0 * b.accuracy()));
            (
                (per_x(distance), per_x(accuracy)),
                Some(AccSource::Minibatch),
            )
        }
        Per::Epoch => {
            let (accuracy, source) = records.epoch_accuracy(runs);
            let distance = runs.iter().flat_map(|r| {
                records
                    .epochs_of(r.id)
                    .iter()
                    .filter_map(|e| e.cosine_distance.map(|d| (e.epoch, d)))
            });
            ((per_x(distance), per_x(accuracy.into_iter())), source)
        }
    };
    let series = Series {
        info: setting.info(),
        accuracy: Line::summed(accuracy, per_point),
        upper: Upper::CosineDistance(Line::summed(cosine_distance, per_point)),
    };
    (series, source)
}

impl Fig10 {
    /// The moving average's window in drawn points: the window in steps
    /// over the steps each point sums, odd so that it stays centred.
    fn points_window(&self) -> usize {
        if self.smoothing_window <= 1 {
            return 1;
        }
        (self.smoothing_window / self.per_point.max(1)).max(3) | 1
    }

    /// The distance panel over the accuracy panel of one (dataset, space).
    fn column(&self, c: &Column, styles: &SeriesStyles, markers: bool) -> (LinePanel, LinePanel) {
        let x_range = x_range(c.x_max(false), 0.02);
        let lines = |upper: bool| -> Vec<draw::Series> {
            c.series
                .iter()
                .flat_map(|s| {
                    let style = styles.style(s.info.method, &s.info.label);
                    draw::Series::smoothed(s.line(upper), style, self.points_window(), markers)
                })
                .collect()
        };
        let d_hi = c.extent(true).1;
        let unit = self.per;
        let top = LinePanel {
            labels: Labels {
                title: format!(
                    "{} · runs: {}",
                    c.group.label(),
                    panel_counts(&c.infos(), |n| n.to_string())
                ),
                x_desc: format!("{unit} (from 0)"),
                y_desc: format!("cosine distance to previous {unit}"),
            },
            x_range,
            y_range: (0.0, (d_hi.max(0.05) * 1.1).min(1.05)),
            integer_x: true,
            integer_y: false,
            series: lines(true),
            notes: Vec::new(),
        };
        let x = (format!("{unit} (from 0)"), x_range);
        let bottom = c.accuracy_panel(x, ("accuracy", 0.06), lines(false));
        (top, bottom)
    }
}

impl Draw for Fig10 {
    type Plot = StackedColumns;

    fn draw(&self, heading: &Heading) -> StackedColumns {
        let markers = self.granularity == Per::Epoch && self.longest <= MARKERS_UP_TO;
        let extra = if self.smoothing_window > 1 {
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
        };
        stacked(
            heading,
            &self.panels,
            (markers, extra),
            (1000, 50),
            |c, styles| self.column(c, styles, markers),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::columns::styles;
    use crate::report::data::test_runs::{run, sweep};
    use crate::report::stats::Point;
    use crate::store::{EpochPoint, StepBucket};

    /// `n` steps of run `run_id` as the store sums them, `width` per point.
    fn summed_steps(run_id: i64, n: i64, width: i64) -> Vec<StepBucket> {
        (0..n)
            .step_by(width as usize)
            .map(|first| {
                let last = (first + width).min(n);
                let distances = (first.max(1)..last).count() as i64;
                StepBucket {
                    run_id,
                    step: first,
                    steps: last - first,
                    distances,
                    distance_sum: (distances > 0).then_some(0.1 * run_id as f64 * distances as f64),
                    acc_sum: 0.5 * (last - first) as f64,
                }
            })
            .collect()
    }

    /// Puts `n` steps of run `id` into `data`, summed as the store would.
    fn log_steps(data: &mut SweepData, id: i64, n: i64) {
        let longest = data
            .records
            .step_counts
            .values()
            .copied()
            .max()
            .unwrap_or(0);
        let width = crate::report::records::step_width(longest.max(n as usize));
        data.records.step_width = width;
        data.records.step_counts.insert(id, n as usize);
        data.records
            .steps
            .insert(id, summed_steps(id, n, width as i64));
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
            log_steps(&mut data, id, 3);
        }
        // One step is not a distance: run 4 is left out.
        log_steps(&mut data, 4, 1);
        let fig = compute(&data, Per::Step).unwrap();
        let p = &fig.numbers.panels[0];
        let labels: Vec<&str> = p.infos().iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["DARTS", "DDSAS"]);
        let ddsas = &p.series[1];
        assert_eq!(ddsas.upper().len(), 2);
        let d = ddsas.upper()[0];
        assert_eq!((d.x, d.n), (1, 2));
        assert!((d.mean - 0.15).abs() < 1e-12 && (d.std - 0.05).abs() < 1e-12);
        assert_eq!(ddsas.accuracy[0].mean, 50.0);
        assert_eq!(p.source, AccSource::Minibatch);
        assert_eq!(p.per, Some("step"));
        assert_eq!(fig.numbers.smoothing_window, 1);
        let caption = &fig.heading.caption;
        assert!(caption.contains("(table steps). Lines: mean over runs"));
        assert!(caption
            .contains("Digits, DARTS space accuracy: weight-minibatch accuracy of each step"));
        let (top, _) = fig.numbers.column(p, &styles(&fig.numbers.panels), false);
        assert_eq!(
            top.labels.title,
            "Digits, DARTS space · runs: DARTS 1, DDSAS 2"
        );
    }

    #[test]
    fn long_step_series_are_smoothed_and_summarised() {
        let mut data = sweep(vec![run(1, "ddsas").build()]);
        log_steps(&mut data, 1, 6001);
        let fig = compute(&data, Per::Step).unwrap();
        assert_eq!(fig.numbers.smoothing_window, 61);
        // 6001 steps in 858 points of 7 steps: the picture's resolution.
        assert_eq!(fig.numbers.per_point, 7);
        assert_eq!(fig.numbers.points_window(), 9);
        let side = serde_json::to_value(&fig).unwrap();
        let series = &side["panels"][0]["methods"][0];
        assert_eq!(series["accuracy"]["points"], 858);
        assert_eq!(series["accuracy"]["steps_per_point"], 7);
        assert_eq!(series["accuracy"]["mean_of_means"], 50.0);
        assert_eq!(series["label"], "DDSAS");
        assert_eq!(side["panels"][0]["per"], "step");
        assert_eq!(side["figure"], "fig10");
        let plot = fig.numbers.draw(&fig.heading);
        assert_eq!(plot.columns[0].0.series.len(), 2);
    }

    #[test]
    fn per_epoch_uses_the_epoch_distance_and_valid_accuracy() {
        let mut data = sweep(vec![run(1, "ddsas").build(), run(2, "ddsas").build()]);
        data.records
            .epochs
            .insert(1, vec![epoch(1, 0, None), epoch(1, 1, Some(0.2))]);
        data.records.epochs.insert(2, vec![epoch(2, 0, None)]);
        let fig = compute(&data, Per::Epoch).unwrap();
        let p = &fig.numbers.panels[0];
        let s = &p.series[0];
        assert_eq!(s.info.runs, [1]);
        assert_eq!(
            s.upper(),
            [Point {
                x: 1,
                mean: 0.2,
                std: 0.0,
                n: 1
            }]
        );
        assert_eq!(s.accuracy[0].mean, 25.0);
        assert_eq!(p.source.text(), "search valid accuracy");
        assert!(compute(&sweep(vec![run(1, "ddsas").build()]), Per::Epoch).is_err());
    }
}
