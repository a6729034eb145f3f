//! Fig. 8: how many `skip_connect` the derived normal cell keeps after each
//! epoch (appendix B.3), mean ± std over the runs (seeds) of a setting, one
//! line per setting (a method and the values of the config keys that vary
//! among the runs shown), one column of panels per (dataset, space). Below
//! each, the accuracy of the same epochs: NAS-Bench-201 benchmark accuracy
//! of the derived architecture where a table was imported, else the
//! search's valid accuracy (the axis and the caption say which), so that
//! "fewer skips" can be read against "better architecture".

use serde::Serialize;

use super::columns::{band_legend, captions, columns, stacked, x_range, Column};
use super::columns::{Series, Upper, MARKERS_UP_TO};
use super::data::{by_dataset_space, panel_counts, SweepData};
use super::draw::axes::Labels;
use super::draw::lines::dodge;
use super::draw::{self, LinePanel, SeriesStyles, StackedColumns};
use super::labels::plural;
use super::records::Table;
use super::stats::per_x;
use super::{drawn_figure, save_figure, Draw, Figure, Heading, ReportError, Spec, PICTURE_FILES};
use crate::arch::space::SpaceKind;

/// File stem of the figure.
pub const STEM: &str = "fig8_skip";

/// Fig. 8 in the report's table of figures.
pub static SPEC: Spec = Spec {
    name: "fig8",
    figure: "fig8",
    stem: STEM,
    extensions: PICTURE_FILES,
    tables: &[Table::Epochs, Table::Nb201],
    page: Some("fig8"),
    is_table: false,
    make: |data, opts| save_figure(&compute(data)?, opts),
    draw: |data, _| drawn_figure(&compute(data)?),
    remove_more: None,
};
/// The paper's sweep for this figure.
pub const PAPER_SWEEP: &str = "sweeps/fig8_fig9_skip.yaml";

/// Fig. 8's numbers (with its [`Heading`], the sidecar).
#[derive(Debug, Clone, Serialize)]
pub struct Fig8 {
    std: &'static str,
    /// One per (dataset, space).
    pub panels: Vec<Column>,
    /// The most epochs any run drawn recorded.
    #[serde(skip)]
    pub longest: usize,
}

/// Fig. 8 of `data` (with its epochs and NAS-Bench-201 tables loaded).
pub fn compute(data: &SweepData) -> Result<Figure<Fig8>, ReportError> {
    let records = &data.records;
    let groups = by_dataset_space(
        data.runs
            .iter()
            .filter(|r| !records.epochs_of(r.id).is_empty()),
    );
    if groups.is_empty() {
        return Err(data.cannot("fig8", "has no done runs with recorded epochs", PAPER_SWEEP));
    }
    let any_darts = groups.keys().any(|g| g.space != SpaceKind::Nb201);
    let longest = groups
        .values()
        .flatten()
        .map(|r| records.epochs_of(r.id).len())
        .max()
        .unwrap_or(0);
    let panels = columns(&groups, None, |setting| {
        let skip = setting.runs.iter().flat_map(|r| {
            records
                .epochs_of(r.id)
                .iter()
                .map(|e| (e.epoch, e.skip_normal as f64))
        });
        let (accuracy, source) = records.epoch_accuracy(&setting.runs);
        let series = Series {
            info: setting.info(),
            accuracy: per_x(accuracy.into_iter()).into(),
            upper: Upper::SkipNormal(per_x(skip).into()),
        };
        (series, source)
    });
    let heading = Heading {
        kind: &SPEC,
        sweep: data.name.clone(),
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
    };
    let numbers = Fig8 {
        std: "population (ddof = 0) over runs",
        panels,
        longest,
    };
    Ok(Figure { heading, numbers })
}

/// The skip panel over the accuracy panel of one (dataset, space).
fn column(c: &Column, styles: &SeriesStyles, markers: bool) -> (LinePanel, LinePanel) {
    let x_range = x_range(c.x_max(true), 0.03);
    let lines = |upper: bool| {
        let mut lines: Vec<draw::Series> = c
            .series
            .iter()
            .map(|s| {
                let style = styles.style(s.info.method, &s.info.label);
                draw::Series::mean(s.line(upper), style, markers)
            })
            .collect();
        dodge(&mut lines, x_range);
        lines
    };
    let skip_hi = c.extent(true).1;
    let kept_edges = if c.group.space == SpaceKind::Nb201 {
        6.0
    } else {
        8.0
    };
    let cell = if c.group.space == SpaceKind::Nb201 {
        "the cell"
    } else {
        "normal cell"
    };
    let top = LinePanel {
        labels: Labels {
            title: format!(
                "{} · {}",
                c.group.label(),
                panel_counts(&c.infos(), |n| plural(n, "run"))
            ),
            x_desc: "epoch (from 0)".into(),
            y_desc: format!("skip_connect in {cell} (of {kept_edges} edges)"),
        },
        x_range,
        y_range: (-0.3, skip_hi.max(kept_edges) + 0.3),
        integer_x: true,
        integer_y: true,
        series: lines(true),
        notes: Vec::new(),
    };
    let x = ("epoch (from 0)".to_string(), x_range);
    let bottom = c.accuracy_panel(x, ("accuracy of the same epochs", 0.08), lines(false));
    (top, bottom)
}

impl Draw for Fig8 {
    type Plot = StackedColumns;

    fn draw(&self, heading: &Heading) -> StackedColumns {
        let markers = self.longest <= MARKERS_UP_TO;
        stacked(
            heading,
            &self.panels,
            (markers, band_legend()),
            (1100, 55),
            |c, styles| column(c, styles, markers),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::columns::styles;
    use crate::report::data::test_runs::{run, sweep};
    use crate::report::stats::Point;
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

    fn point(x: i64, mean: f64, std: f64, n: usize) -> Point {
        Point { x, mean, std, n }
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
        let panels = &fig.numbers.panels;
        assert_eq!(panels.len(), 1);
        let p = &panels[0];
        let labels: Vec<&str> = p.infos().iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["DARTS", "DDSAS M=12", "DDSAS M=24"]);
        let darts = &p.series[0];
        assert_eq!(darts.info.runs, [1, 2]);
        assert_eq!(
            darts.upper,
            Upper::SkipNormal(vec![point(0, 7.0, 0.0, 2), point(1, 5.0, 1.0, 2)].into())
        );
        assert!((darts.accuracy[1].mean - 70.0).abs() < 1e-9);
        assert!((darts.accuracy[1].std - 10.0).abs() < 1e-9);
        assert_eq!(p.source.text(), "search valid accuracy");
        let caption = &fig.heading.caption;
        assert!(caption.contains("DDSAS M=24 on Digits, DARTS space: run 4 (1 seed)"));
        assert!(caption.contains("Digits, DARTS space accuracy: search valid accuracy"));
        assert!(fig.heading.title.contains("derived normal cell"));
        let (top, bottom) = column(p, &styles(panels), true);
        assert_eq!(
            top.labels.title,
            "Digits, DARTS space · DARTS 2 runs, DDSAS M=12 1 run, DDSAS M=24 1 run"
        );
        assert_eq!(top.y_range, (-0.3, 8.3));
        assert_eq!(bottom.series.len(), 3);
    }

    #[test]
    fn the_sidecar_keeps_its_keys() {
        let mut data = sweep(vec![run(1, "ddsas").build()]);
        data.records.epochs.insert(1, epochs(1, &[2], &[0.5]));
        let side = serde_json::to_value(compute(&data).unwrap()).unwrap();
        assert_eq!(side["figure"], "fig8");
        assert_eq!(side["sweep"], "test");
        let panel = &side["panels"][0];
        assert_eq!(panel["dataset"], "digits");
        assert!(panel.get("per").is_none());
        assert_eq!(panel["accuracy_source"], "search valid accuracy");
        let series = &panel["methods"][0];
        assert_eq!(series["label"], "DDSAS");
        assert_eq!(series["skip_normal"][0]["mean"], 2.0);
        assert!(side.get("title").is_none() && side.get("longest").is_none());
    }

    #[test]
    fn runs_without_epochs_are_refused() {
        let data = sweep(vec![run(1, "ddsas").build()]);
        let e = compute(&data).unwrap_err().to_string();
        assert!(e.contains("has no done runs with recorded epochs"), "{e}");
    }
}
