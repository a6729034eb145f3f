//! One run's per-epoch curves (`ddsas serve`'s run page): accuracy, loss,
//! skip counts, cosine distance and learning rate, each a [`LinePanel`] of
//! the figures' widget kit, so a run looks as it does in Figs. 8 and 10.
//!
//! The valid accuracy is the only series drawn with circle markers, one per
//! recorded epoch: a page (and its test) can count the epochs it shows.

use plotters::prelude::*;

use super::draw::axes::Labels;
use super::draw::lines::line_panel;
use plotters::style::text_anchor::HPos;

use super::draw::text::{font, text_at, title, LABEL_PX};
use super::draw::{padded, Area, DrawResult, LinePanel, Plot, Series, MUTED, PALETTE};
use crate::store::EpochRow;

/// The curves of one run, a panel per measurement.
#[derive(Debug, Clone)]
pub struct RunCurves {
    /// Figure title.
    pub title: String,
    /// Accuracy, loss, skip counts, cosine distance, learning rate.
    pub panels: Vec<LinePanel>,
}

/// Marker kinds of `draw::lines`: circle, triangle, none.
const CIRCLE: usize = 0;
const TRIANGLE: usize = 1;
const SQUARE: usize = 2;
const NONE: usize = 3;

/// A series of `(epoch from 1, value)`. Without markers a series of one
/// point would still get the widget's lone-point circle, so it gets a
/// square instead: circles stay the valid accuracy's, one per epoch.
fn series(color: RGBColor, marker: usize, points: Vec<(f64, Option<f64>)>) -> Series {
    let finite = points
        .iter()
        .filter(|(_, y)| y.is_some_and(f64::is_finite))
        .count();
    Series {
        color,
        marker: if marker == NONE && finite < 2 {
            SQUARE
        } else {
            marker
        },
        width: 2,
        alpha: 1.0,
        points,
        band: Vec::new(),
    }
}

/// The y range of `series` with a margin (0..1 when there is nothing).
fn y_range(series: &[Series]) -> (f64, f64) {
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .filter(|y| y.is_finite());
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    if lo > hi {
        (0.0, 1.0)
    } else {
        padded(lo, hi, 0.08)
    }
}

/// One panel of a run's curves over `x_range` epochs, its y range fitted
/// to `series`.
fn epoch_panel(
    name: &str,
    y: &str,
    integer_y: bool,
    x_range: (f64, f64),
    series: Vec<Series>,
    notes: Vec<(&str, RGBColor)>,
) -> LinePanel {
    LinePanel {
        labels: Labels {
            title: name.into(),
            x_desc: "epoch".into(),
            y_desc: y.into(),
        },
        x_range,
        y_range: y_range(&series),
        integer_x: true,
        integer_y,
        series,
        notes: notes.into_iter().map(|(t, c)| (t.to_string(), c)).collect(),
    }
}

impl RunCurves {
    /// The curves of `epochs` (one run's, in epoch order) titled `title`.
    pub fn of(title: String, epochs: &[EpochRow]) -> RunCurves {
        let n = epochs.len() as f64;
        let x_range = if epochs.is_empty() {
            (0.0, 1.0)
        } else {
            padded(1.0, n.max(2.0), 0.04)
        };
        let pick = |f: &dyn Fn(&EpochRow) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
            epochs
                .iter()
                .map(|e| ((e.epoch + 1) as f64, f(e)))
                .collect()
        };
        let blue = PALETTE[0];
        let red = PALETTE[1];
        let panel = |name: &str, y: &str, integer_y: bool, series, notes| {
            epoch_panel(name, y, integer_y, x_range, series, notes)
        };
        let panels = vec![
            panel(
                "Accuracy",
                "accuracy (%)",
                false,
                vec![
                    series(red, TRIANGLE, pick(&|e| Some(100.0 * e.train_acc))),
                    series(blue, CIRCLE, pick(&|e| Some(100.0 * e.valid_acc))),
                ],
                vec![("● valid", blue), ("▲ train", red)],
            ),
            panel(
                "Loss",
                "cross-entropy",
                false,
                vec![
                    series(red, NONE, pick(&|e| Some(e.train_loss))),
                    series(blue, NONE, pick(&|e| Some(e.valid_loss))),
                ],
                vec![("valid", blue), ("train", red)],
            ),
            panel(
                "skip_connect in the derived cells",
                "skip connections",
                true,
                vec![
                    series(blue, NONE, pick(&|e| Some(e.skip_normal as f64))),
                    series(red, NONE, pick(&|e| e.skip_reduce.map(|s| s as f64))),
                ],
                vec![("normal", blue), ("reduce", red)],
            ),
            panel(
                "Cosine distance to the previous epoch",
                "distance",
                false,
                vec![series(blue, NONE, pick(&|e| e.cosine_distance))],
                Vec::new(),
            ),
            panel(
                "Learning rate",
                "lr",
                false,
                vec![series(blue, NONE, pick(&|e| Some(e.lr)))],
                Vec::new(),
            ),
        ];
        RunCurves { title, panels }
    }
}

impl Plot for RunCurves {
    fn size(&self) -> (u32, u32) {
        (1500, 860)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> DrawResult {
        let body = title(root, &self.title)?;
        let body = body.margin(0, 10, 10, 10);
        let cells = body.split_evenly((2, 3));
        for (area, panel) in cells.iter().zip(&self.panels) {
            line_panel(area, panel)?;
        }
        if self
            .panels
            .iter()
            .all(|p| p.series.iter().all(|s| s.points.is_empty()))
        {
            let (w, h) = root.dim_in_pixel();
            text_at(
                root,
                "no epoch recorded yet",
                &font(LABEL_PX).color(MUTED),
                (w as i32 / 2, h as i32 / 2),
                HPos::Center,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(e: i64, acc: f64) -> EpochRow {
        EpochRow {
            run_id: 1,
            epoch: e,
            train_acc: acc,
            train_loss: 1.0,
            valid_acc: acc,
            valid_loss: 1.0,
            lr: 0.025,
            tau: None,
            genotype: String::new(),
            skip_normal: 2,
            skip_reduce: Some(1),
            cosine_distance: (e > 0).then_some(0.1),
            wall_s: 1.0,
            images_per_s: 10.0,
            peak_mem_bytes: None,
            recorded_at: 0.0,
        }
    }

    #[test]
    fn the_svg_has_one_circle_per_epoch() {
        for n in [1, 2, 7] {
            let epochs: Vec<EpochRow> = (0..n).map(|e| epoch(e, 0.1 * e as f64)).collect();
            let svg =
                super::super::draw::svg_text(&RunCurves::of("run 1".into(), &epochs)).unwrap();
            assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
            assert_eq!(svg.matches("<circle").count(), n as usize, "{n} epochs");
        }
        let empty = super::super::draw::svg_text(&RunCurves::of("run 2".into(), &[])).unwrap();
        assert_eq!(empty.matches("<circle").count(), 0);
        assert!(empty.contains("no epoch recorded yet"));
    }
}
