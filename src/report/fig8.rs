//! Fig. 8: how many `skip_connect` the derived normal cell keeps after each
//! epoch (appendix B.3), mean ± std over the runs (seeds) of a setting, one
//! line per setting (a method and the values of the config keys that vary
//! among the runs shown), one column of panels per (dataset, space). Below
//! each, the accuracy of the same epochs: NAS-Bench-201 benchmark accuracy
//! of the derived architecture where a table was imported, else the
//! search's valid accuracy (the axis and the caption say which), so that
//! "fewer skips" can be read against "better architecture".

use plotters::style::RGBColor;
use serde::Serialize;

use super::data::{
    by_dataset_space, group_label, panel_counts, panel_settings, plural, SeriesInfo, Setting,
    SweepData,
};
use super::draw::axes::Labels;
use super::draw::lines::dodge;
use super::draw::{self, LegendEntry, LinePanel, SeriesStyles, StackedColumns, Swatch};
use super::records::{AccSource, Records};
use super::stats::{band_extent, per_x, Point};
use super::{Figure, Kind, ReportError};

/// File stem of the figure.
pub const STEM: &str = "fig8_skip";
/// The paper's sweep for this figure.
pub const PAPER_SWEEP: &str = "sweeps/fig8_fig9_skip.yaml";
/// Series of at most this many epochs are drawn with markers.
pub(crate) const MARKERS_UP_TO: usize = 60;

/// Fig. 8's numbers (the sidecar) and captions.
#[derive(Debug, Clone, Serialize)]
pub struct Fig8 {
    figure: &'static str,
    /// Sweep name.
    pub sweep: String,
    std: &'static str,
    /// One per (dataset, space).
    pub panels: Vec<Panel>,
    /// Figure title.
    #[serde(skip)]
    pub title: String,
    /// Index caption.
    #[serde(skip)]
    pub caption: String,
    /// The most epochs any run drawn recorded.
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
    /// Which accuracy the lower panel shows.
    #[serde(rename = "accuracy_source")]
    pub source: AccSource,
    /// One per setting, in [`super::data::settings`] order.
    #[serde(rename = "methods")]
    pub series: Vec<Series>,
}

/// The two lines of one setting.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Which setting and runs.
    #[serde(flatten)]
    pub info: SeriesInfo,
    /// `skip_connect` kept in the normal (or only) cell, per epoch.
    pub skip_normal: Vec<Point>,
    /// Accuracy (%) of the same epochs.
    pub accuracy: Vec<Point>,
}

/// Fig. 8 of `data` (with its epochs and NAS-Bench-201 tables loaded).
pub fn compute(data: &SweepData) -> Result<Fig8, ReportError> {
    let records = &data.records;
    let groups = by_dataset_space(
        data.runs
            .iter()
            .filter(|r| !records.epochs_of(r.id).is_empty()),
    );
    if groups.is_empty() {
        return Err(data.cannot("fig8", "has no done runs with recorded epochs", PAPER_SWEEP));
    }
    let any_darts = groups.keys().any(|(_, space)| space != "nb201");
    let longest = groups
        .values()
        .flatten()
        .map(|r| records.epochs_of(r.id).len())
        .max()
        .unwrap_or(0);
    let panels: Vec<Panel> = groups
        .keys()
        .zip(panel_settings(&groups))
        .map(|((dataset, space), settings)| panel(records, dataset, space, &settings))
        .collect();
    Ok(Fig8 {
        figure: "fig8",
        sweep: data.name.clone(),
        std: "population (ddof = 0) over runs",
        title: format!(
            "Fig. 8 — skip connections in the derived {} per epoch (sweep {})",
            if any_darts { "normal cell" } else { "cell" },
            data.name
        ),
        caption: format!(
            "Mean ± population std over runs of `epochs.skip_normal` per epoch. {}.{}",
            captions(&panels).join("; "),
            data.not_done_note()
        ),
        longest,
        panels,
    })
}

/// The lines of each setting of one (dataset, space).
fn panel(records: &Records, dataset: &str, space: &str, settings: &[Setting]) -> Panel {
    let mut source = None;
    let series = settings
        .iter()
        .map(|setting| {
            let skip = setting.runs.iter().flat_map(|r| {
                records
                    .epochs_of(r.id)
                    .iter()
                    .map(|e| (e.epoch, e.skip_normal as f64))
            });
            let (accuracy, src) = records.epoch_accuracy(&setting.runs);
            if let Some(src) = src {
                AccSource::merge(&mut source, src);
            }
            Series {
                info: setting.info(),
                skip_normal: per_x(skip),
                accuracy: per_x(accuracy.into_iter()),
            }
        })
        .collect();
    Panel {
        dataset: dataset.into(),
        space: space.into(),
        source: source.unwrap_or_default(),
        series,
    }
}

/// Per panel, each setting's runs and seeds, then what its accuracy is.
fn captions(panels: &[Panel]) -> Vec<String> {
    let mut parts = Vec::new();
    for p in panels {
        for s in &p.series {
            parts.push(s.info.caption(&p.dataset, &p.space));
        }
        parts.push(format!(
            "{} accuracy: {}",
            group_label(&p.dataset, &p.space),
            p.source.text()
        ));
    }
    parts
}

/// The styles that tell the settings of every panel apart.
pub(crate) fn styles<'a>(panels: impl Iterator<Item = Vec<&'a SeriesInfo>>) -> SeriesStyles {
    let names: Vec<Vec<(String, String)>> = panels
        .map(|p| {
            p.iter()
                .map(|s| (s.method.clone(), s.label.clone()))
                .collect()
        })
        .collect();
    SeriesStyles::new(&names)
}

/// The x range of panels whose last x is `x_max`, padded by `frac`.
pub(crate) fn x_range(x_max: i64, frac: f64) -> (f64, f64) {
    if x_max == 0 {
        (-0.5, 0.5)
    } else {
        draw::padded(0.0, x_max as f64, frac)
    }
}

/// The skip panel over the accuracy panel of one (dataset, space).
fn column(p: &Panel, styles: &SeriesStyles, markers: bool) -> (LinePanel, LinePanel) {
    let x_max = p
        .series
        .iter()
        .map(|s| s.skip_normal.last().map_or(0, |pt| pt.x))
        .fold(0, i64::max);
    let x_range = x_range(x_max, 0.03);
    let lines = |points: &dyn Fn(&Series) -> &[Point]| {
        let mut lines: Vec<draw::Series> = p
            .series
            .iter()
            .map(|s| {
                draw::Series::mean(
                    points(s),
                    styles.style(&s.info.method, &s.info.label),
                    markers,
                )
            })
            .collect();
        dodge(&mut lines, x_range);
        lines
    };
    let skip_hi = band_extent(p.series.iter().map(|s| s.skip_normal.as_slice())).1;
    let (acc_lo, acc_hi) = band_extent(p.series.iter().map(|s| s.accuracy.as_slice()));
    let label = group_label(&p.dataset, &p.space);
    let kept_edges = if p.space == "nb201" { 6.0 } else { 8.0 };
    let infos: Vec<&SeriesInfo> = p.series.iter().map(|s| &s.info).collect();
    let top = LinePanel {
        labels: Labels {
            title: format!("{label} · {}", panel_counts(&infos, |n| plural(n, "run"))),
            x_desc: "epoch (from 0)".into(),
            y_desc: if p.space == "nb201" {
                format!("skip_connect in the cell (of {kept_edges} edges)")
            } else {
                format!("skip_connect in normal cell (of {kept_edges} edges)")
            },
        },
        x_range,
        y_range: (-0.3, skip_hi.max(kept_edges) + 0.3),
        integer_x: true,
        integer_y: true,
        series: lines(&|s| &s.skip_normal),
        notes: Vec::new(),
    };
    let bottom = LinePanel {
        labels: Labels {
            title: match &p.source {
                AccSource::Benchmark { dataset, .. } => {
                    format!("{label} · NAS-Bench-201 {dataset} accuracy of each epoch's cell")
                }
                _ => format!("{label} · accuracy of the same epochs"),
            },
            x_desc: "epoch (from 0)".into(),
            y_desc: p.source.axis().into(),
        },
        x_range,
        y_range: draw::padded(acc_lo, acc_hi, 0.08),
        integer_x: true,
        integer_y: false,
        series: lines(&|s| &s.accuracy),
        notes: Vec::new(),
    };
    (top, bottom)
}

/// The legend entry of the shaded bands.
pub(crate) fn band_legend() -> LegendEntry {
    LegendEntry {
        label: "shaded: mean ± std over runs".into(),
        color: RGBColor(200, 200, 200),
        swatch: Swatch::Box,
    }
}

impl Figure for Fig8 {
    type Plot = StackedColumns;

    fn kind(&self) -> Kind {
        Kind::Fig8
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn caption(&self) -> &str {
        &self.caption
    }

    fn draw(&self) -> StackedColumns {
        let markers = self.longest <= MARKERS_UP_TO;
        let styles = styles(
            self.panels
                .iter()
                .map(|p| p.series.iter().map(|s| &s.info).collect()),
        );
        let mut legend = styles.legend(markers);
        legend.push(band_legend());
        StackedColumns {
            title: self.title.clone(),
            legend,
            columns: self
                .panels
                .iter()
                .map(|p| column(p, &styles, markers))
                .collect(),
            height: 1100,
            top_percent: 55,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::test_runs::{run, sweep};
    use crate::store::EpochPoint;

    fn epochs(run_id: i64, skips: &[i64], accs: &[f64]) -> Vec<EpochPoint> {
        skips
            .iter()
            .zip(accs)
            .enumerate()
            .map(|(e, (&skip_normal, &valid_acc))| EpochPoint {
                run_id,
                epoch: e as i64,
                valid_acc,
                skip_normal,
                cosine_distance: None,
                genotype: String::new(),
            })
            .collect()
    }

    #[test]
    fn each_setting_is_the_mean_and_population_std_of_its_runs() {
        let mut data = sweep(vec![
            run(1, "darts").build(),
            run(2, "darts").build(),
            run(3, "ddsas").set("M", 12).build(),
            run(4, "ddsas").set("M", 24).build(),
            run(5, "gdas").build(),
        ]);
        let r = &mut data.records;
        r.epochs.insert(1, epochs(1, &[7, 6], &[0.5, 0.6]));
        r.epochs.insert(2, epochs(2, &[7, 4], &[0.7, 0.8]));
        r.epochs.insert(3, epochs(3, &[2, 1], &[0.6, 0.7]));
        r.epochs.insert(4, epochs(4, &[3, 3], &[0.6, 0.7]));
        // Run 5 recorded no epochs: not drawn.
        let fig = compute(&data).unwrap();
        assert_eq!(fig.panels.len(), 1);
        let p = &fig.panels[0];
        let labels: Vec<&str> = p.series.iter().map(|s| s.info.label.as_str()).collect();
        assert_eq!(labels, ["DARTS", "DDSAS M=12", "DDSAS M=24"]);
        let darts = &p.series[0];
        assert_eq!(darts.info.runs, [1, 2]);
        assert_eq!(
            darts.skip_normal,
            vec![
                Point {
                    x: 0,
                    mean: 7.0,
                    std: 0.0,
                    n: 2
                },
                Point {
                    x: 1,
                    mean: 5.0,
                    std: 1.0,
                    n: 2
                },
            ]
        );
        assert!((darts.accuracy[1].mean - 70.0).abs() < 1e-9);
        assert!((darts.accuracy[1].std - 10.0).abs() < 1e-9);
        assert_eq!(p.source.text(), "search valid accuracy");
        assert!(fig
            .caption
            .contains("DDSAS M=24 on Digits, DARTS space: run 4 (1 seed)"));
        assert!(fig
            .caption
            .contains("Digits, DARTS space accuracy: search valid accuracy"));
        assert!(fig.title.contains("derived normal cell"));
        let (top, bottom) = column(p, &styles(std::iter::once(labels_of(p))), true);
        assert_eq!(
            top.labels.title,
            "Digits, DARTS space · DARTS 2 runs, DDSAS M=12 1 run, DDSAS M=24 1 run"
        );
        assert_eq!(top.y_range, (-0.3, 8.3));
        assert_eq!(bottom.series.len(), 3);
    }

    fn labels_of(p: &Panel) -> Vec<&SeriesInfo> {
        p.series.iter().map(|s| &s.info).collect()
    }

    #[test]
    fn runs_without_epochs_are_refused() {
        let data = sweep(vec![run(1, "ddsas").build()]);
        let e = compute(&data).unwrap_err().to_string();
        assert!(e.contains("has no done runs with recorded epochs"), "{e}");
    }
}
