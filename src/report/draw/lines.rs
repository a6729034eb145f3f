//! Line charts (Figs. 8, 10 and 12): panels of lines with markers and
//! shaded bands, notes in a corner, the figure layout of Figs. 8 and 10
//! (columns of two stacked panels under a legend), and the lines a mean ±
//! std series is drawn as.

use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use super::axes::{above_notes, axes, frame_height, int_ticks, nice_ticks, tick_decimals};
use super::axes::{Frame, Labels, Ticks};
use super::legend::{legend, legend_height, LegendEntry};
use super::strokes::{draw_marker, polyline};
use super::text::{font, measure, text_at, title, LABEL_PX};
use super::{Area, DrawResult, Plot};
use crate::report::stats::{moving_average, Point};

/// One line of a [`LinePanel`], with an optional band.
#[derive(Debug, Clone)]
pub struct Series {
    /// Colour.
    pub color: RGBColor,
    /// Marker drawn at each point (see [`draw_marker`]); 3+: none.
    pub marker: usize,
    /// Stroke width in pixels.
    pub width: u32,
    /// Opacity of the line (1 = solid).
    pub alpha: f64,
    /// Points, in x order; a `None` y breaks the line.
    pub points: Vec<(f64, Option<f64>)>,
    /// `(x, low, high)` of a shaded band (mean ± std).
    pub band: Vec<(f64, f64, f64)>,
}

impl Series {
    /// The mean line of `points` with its ± std band, in `style` (colour,
    /// marker); `marker` false draws no markers.
    pub fn mean(points: &[Point], style: (RGBColor, usize), marker: bool) -> Series {
        Series {
            color: style.0,
            marker: if marker { style.1 } else { 3 },
            width: 3,
            alpha: 1.0,
            points: points.iter().map(|p| (p.x as f64, Some(p.mean))).collect(),
            band: points
                .iter()
                .map(|p| (p.x as f64, p.mean - p.std, p.mean + p.std))
                .collect(),
        }
    }

    /// The lines of a mean over runs: with its band, or, when `window` > 1
    /// (long per-step series), the faint raw mean under its moving average
    /// over `window` points.
    pub fn smoothed(
        points: &[Point],
        style: (RGBColor, usize),
        window: usize,
        markers: bool,
    ) -> Vec<Series> {
        if window <= 1 {
            return vec![Series::mean(points, style, markers)];
        }
        let line = |width, alpha, points| Series {
            color: style.0,
            marker: 3,
            width,
            alpha,
            points,
            band: Vec::new(),
        };
        vec![
            line(
                1,
                0.25,
                points.iter().map(|p| (p.x as f64, Some(p.mean))).collect(),
            ),
            line(
                3,
                1.0,
                moving_average(points, window)
                    .into_iter()
                    .map(|(x, m)| (x as f64, Some(m)))
                    .collect(),
            ),
        ]
    }
}

/// Moves the lines of a panel apart by a hair along x and draws the first
/// ones wider, so that series with equal values (skip counts often are)
/// stay visible under each other.
pub fn dodge(series: &mut [Series], x_range: (f64, f64)) {
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

/// A line chart panel: title, axes with units, lines and bands.
#[derive(Debug, Clone)]
pub struct LinePanel {
    /// Title and what x and y are.
    pub labels: Labels,
    /// x range.
    pub x_range: (f64, f64),
    /// y range.
    pub y_range: (f64, f64),
    /// Whether x ticks are whole numbers (epochs, steps, iterations).
    pub integer_x: bool,
    /// Whether y ticks are whole numbers (counts).
    pub integer_y: bool,
    /// The lines.
    pub series: Vec<Series>,
    /// Text lines written in the top-right corner of the plot (totals).
    pub notes: Vec<(String, RGBColor)>,
}

/// Draws `p` filling `area`.
pub fn line_panel<DB: DrawingBackend>(area: &Area<DB>, p: &LinePanel) -> DrawResult {
    let mut y_range = p.y_range;
    if p.integer_y && y_range.1 - y_range.0 < 3.0 {
        // A flat count: room for a few whole-number ticks around it.
        let mid = ((y_range.0 + y_range.1) / 2.0).round();
        y_range = (mid - 1.5, mid + 1.5);
    }
    y_range.1 = above_notes(y_range.0, y_range.1, p.notes.len(), frame_height(area));
    let x_ticks = if p.integer_x {
        int_ticks(p.x_range.0, p.x_range.1, 8)
    } else {
        nice_ticks(p.x_range.0, p.x_range.1, 8)
    };
    let y = if p.integer_y {
        int_ticks(y_range.0, y_range.1, 7)
    } else {
        nice_ticks(y_range.0, y_range.1, 6)
    };
    let xdec = tick_decimals(&x_ticks);
    let x = x_ticks
        .iter()
        .map(|&v| (v, format!("{v:.xdec$}")))
        .collect();
    let frame = axes(area, &p.labels, p.x_range, y_range, &Ticks { x, y })?;
    for s in &p.series {
        band(area, &frame, s)?;
    }
    for s in &p.series {
        line(area, &frame, s)?;
    }
    let (_, t, r, _) = frame.px;
    for (i, (note, color)) in p.notes.iter().enumerate() {
        let y = t + 16 + i as i32 * (LABEL_PX as i32 + 8);
        let nt = font(LABEL_PX).color(*color);
        let w = measure(note, &nt);
        area.draw(&Rectangle::new(
            [(r - w - 18, y - 13), (r - 4, y + 13)],
            WHITE.mix(0.85).filled(),
        ))?;
        text_at(area, note, &nt, (r - 10, y), HPos::Right)?;
    }
    Ok(())
}

/// The shaded band of `s`, if it has one.
fn band<DB: DrawingBackend>(area: &Area<DB>, frame: &Frame, s: &Series) -> DrawResult {
    if s.band.len() > 1 {
        let mut poly: Vec<(i32, i32)> = s.band.iter().map(|&(x, _, hi)| frame.map(x, hi)).collect();
        poly.extend(s.band.iter().rev().map(|&(x, lo, _)| frame.map(x, lo)));
        area.draw(&Polygon::new(poly, s.color.mix(0.18).filled()))?;
    }
    Ok(())
}

/// The line of `s`, broken where a y is missing, with its markers (a lone
/// point always gets one).
fn line<DB: DrawingBackend>(area: &Area<DB>, frame: &Frame, s: &Series) -> DrawResult {
    let mut segment: Vec<(i32, i32)> = Vec::new();
    let mut segments = Vec::new();
    for &(x, y) in &s.points {
        match y {
            Some(y) if y.is_finite() => segment.push(frame.map(x, y)),
            _ => segments.push(std::mem::take(&mut segment)),
        }
    }
    segments.push(segment);
    for seg in segments.iter().filter(|s| !s.is_empty()) {
        if seg.len() > 1 {
            polyline(area, seg, s.color.mix(s.alpha), s.width)?;
        }
        if s.marker < 3 || seg.len() == 1 {
            for &pt in seg {
                draw_marker(area, s.marker.min(2), pt, s.color)?;
            }
        }
    }
    Ok(())
}

/// A title, a legend, then columns of two stacked line panels (Figs. 8 and
/// 10): one column per dataset/space.
pub struct StackedColumns {
    /// Figure title.
    pub title: String,
    /// Legend entries shown under the title.
    pub legend: Vec<LegendEntry>,
    /// Per column: top panel, bottom panel.
    pub columns: Vec<(LinePanel, LinePanel)>,
    /// Image height in pixels.
    pub height: u32,
    /// Share of a column's height given to the top panel, in percent.
    pub top_percent: i32,
}

impl Plot for StackedColumns {
    fn size(&self) -> (u32, u32) {
        let n = self.columns.len() as u32;
        (if n == 1 { 1200 } else { 850 * n }, self.height)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> DrawResult {
        let body = title(root, &self.title)?;
        let (w, _) = body.dim_in_pixel();
        let (top, body) = body.split_vertically(legend_height(&self.legend, w as i32));
        legend(&top, &self.legend)?;
        let body = body.margin(0, 10, 10, 10);
        let cols = body.split_evenly((1, self.columns.len()));
        for (col, (upper, lower)) in cols.iter().zip(&self.columns) {
            let (a, b) = col.split_vertically(col.dim_in_pixel().1 as i32 * self.top_percent / 100);
            line_panel(&a, upper)?;
            line_panel(&b, lower)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(x: i64, mean: f64, std: f64) -> Point {
        Point { x, mean, std, n: 2 }
    }

    #[test]
    fn a_mean_line_carries_its_band() {
        let s = Series::mean(
            &[point(0, 2.0, 0.5), point(1, 3.0, 0.0)],
            (PALETTE_0, 1),
            true,
        );
        assert_eq!(s.points, vec![(0.0, Some(2.0)), (1.0, Some(3.0))]);
        assert_eq!(s.band, vec![(0.0, 1.5, 2.5), (1.0, 3.0, 3.0)]);
        assert_eq!(s.marker, 1);
        assert_eq!(Series::mean(&[], (PALETTE_0, 1), false).marker, 3);
    }

    #[test]
    fn long_series_are_smoothed_over_their_faint_mean() {
        let pts: Vec<Point> = (0..5).map(|x| point(x, x as f64, 0.0)).collect();
        assert_eq!(Series::smoothed(&pts, (PALETTE_0, 0), 1, true).len(), 1);
        let lines = Series::smoothed(&pts, (PALETTE_0, 0), 3, true);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].alpha, 0.25);
        assert_eq!(lines[1].points[0], (0.0, Some(0.5)));
        assert_eq!(lines[1].points[2], (2.0, Some(2.0)));
    }

    #[test]
    fn dodging_spreads_lines_symmetrically() {
        let mut s = vec![Series::mean(&[point(10, 1.0, 0.0)], (PALETTE_0, 0), false); 3];
        dodge(&mut s, (0.0, 100.0));
        let xs: Vec<f64> = s.iter().map(|s| s.points[0].0).collect();
        assert!((xs[0] - 9.4).abs() < 1e-9 && xs[1] == 10.0 && (xs[2] - 10.6).abs() < 1e-9);
        assert_eq!(s.iter().map(|s| s.width).collect::<Vec<_>>(), [5, 4, 3]);
    }

    const PALETTE_0: RGBColor = super::super::PALETTE[0];
}
