//! Axes: a panel's title, plot frame, grid, ticks with labels and the
//! descriptions of x and y, shared by line, bar and heat-map panels; and
//! the choice of round tick values.

use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use super::text::{font, panel_title, text_at, upright, widest, Txt};
use super::text::{DESC_PX, LABEL_PX, PANEL_TITLE_H};
use super::{Area, DrawError, DrawResult, GRID};

/// What a panel's axes say: its title and what x and y are, with units.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    /// Panel title.
    pub title: String,
    /// What x is (or what the columns are), with unit.
    pub x_desc: String,
    /// What y is (or what the rows are), with unit.
    pub y_desc: String,
}

/// Ticks of a panel: `x` as `(value, label)`; `y` as numbers, written with
/// the decimals that tell them apart.
#[derive(Debug, Clone, Default)]
pub struct Ticks {
    /// x ticks and their labels.
    pub x: Vec<(f64, String)>,
    /// y tick values.
    pub y: Vec<f64>,
}

/// `lo..hi` widened by `frac` of its span on both sides (or by a little
/// when flat).
pub fn padded(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= 1e-12 {
        let pad = if lo.abs() > 1.0 { lo.abs() * 0.05 } else { 0.5 };
        return (lo - pad, hi + pad);
    }
    (lo - span * frac, hi + span * frac)
}

/// Pixel frame of a panel's plot and the mapping of data into it.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Left, top, right, bottom pixels.
    pub px: (i32, i32, i32, i32),
    /// x data range.
    pub xr: (f64, f64),
    /// y data range.
    pub yr: (f64, f64),
}

impl Frame {
    /// Pixel of data point `(x, y)`, clamped into the frame.
    pub fn map(&self, x: f64, y: f64) -> (i32, i32) {
        let (l, t, r, b) = self.px;
        let fx = ((x - self.xr.0) / (self.xr.1 - self.xr.0)).clamp(0.0, 1.0);
        let fy = ((y - self.yr.0) / (self.yr.1 - self.yr.0)).clamp(0.0, 1.0);
        (
            (l as f64 + fx * (r - l) as f64).round() as i32,
            (b as f64 - fy * (b - t) as f64).round() as i32,
        )
    }
}

/// Pixels below a frame taken by tick labels and the x description.
const BELOW_FRAME: i32 = 12 + LABEL_PX as i32 + 16 + DESC_PX as i32 + 10;

/// Axis furniture of a panel: title, frame, grid, ticks and descriptions,
/// over data ranges `xr` × `yr`. Returns the plot frame.
pub fn axes<DB: DrawingBackend>(
    area: &Area<DB>,
    labels: &Labels,
    xr: (f64, f64),
    yr: (f64, f64),
    ticks: &Ticks,
) -> Result<Frame, DrawError> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let label = font(LABEL_PX);
    panel_title(area, &labels.title)?;
    let ydec = tick_decimals(&ticks.y);
    let ylabels: Vec<String> = ticks.y.iter().map(|v| format!("{v:.ydec$}")).collect();
    let left = 10 + DESC_PX as i32 + 14 + widest(&ylabels, &label).unwrap_or(0) + 12;
    let frame = Frame {
        px: (left, PANEL_TITLE_H + 8, w - 28, h - BELOW_FRAME),
        xr,
        yr,
    };
    grid(area, &frame, ticks)?;
    let (l, _, _, b) = frame.px;
    for (y, text) in ticks.y.iter().zip(&ylabels) {
        tick(area, (Edge::Left, l), frame.map(xr.0, *y).1, text, &label)?;
    }
    for (x, text) in &ticks.x {
        tick(area, (Edge::Bottom, b), frame.map(*x, yr.0).0, text, &label)?;
    }
    let (_, t, _, b) = frame.px;
    descriptions(area, labels, frame.px, (16, b - t + 30))?;
    Ok(frame)
}

/// The grid lines at the ticks and the frame around the plot.
fn grid<DB: DrawingBackend>(area: &Area<DB>, frame: &Frame, ticks: &Ticks) -> DrawResult {
    let (l, t, r, b) = frame.px;
    for &y in &ticks.y {
        let (_, py) = frame.map(frame.xr.0, y);
        area.draw(&PathElement::new(
            vec![(l, py), (r, py)],
            GRID.stroke_width(1),
        ))?;
    }
    for (x, _) in &ticks.x {
        let (px, _) = frame.map(*x, frame.yr.0);
        area.draw(&PathElement::new(
            vec![(px, t), (px, b)],
            GRID.stroke_width(1),
        ))?;
    }
    area.draw(&Rectangle::new([(l, t), (r, b)], BLACK.stroke_width(1)))?;
    Ok(())
}

/// The edge of a frame a tick stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The left edge (y ticks, heat-map rows), labels right-aligned.
    Left,
    /// The bottom edge (x ticks, heat-map columns), labels centred.
    Bottom,
}

/// A tick on the `edge` of a frame that lies at pixel `edge_px` (its x for
/// the left edge, its y for the bottom), `at` pixels along it, with its
/// label.
pub fn tick<DB: DrawingBackend>(
    area: &Area<DB>,
    (edge, edge_px): (Edge, i32),
    at: i32,
    text: &str,
    t: &Txt,
) -> DrawResult {
    let (line, anchor, h) = match edge {
        Edge::Left => (
            [(edge_px - 6, at), (edge_px, at)],
            (edge_px - 10, at),
            HPos::Right,
        ),
        Edge::Bottom => (
            [(at, edge_px), (at, edge_px + 6)],
            (at, edge_px + 12 + LABEL_PX as i32 / 2),
            HPos::Center,
        ),
    };
    area.draw(&PathElement::new(line.to_vec(), BLACK.stroke_width(1)))?;
    text_at(area, text, t, anchor, h)
}

/// The x description centred under a frame `(l, t, r, b)` (`gap` pixels
/// below the tick labels) and the y description upright at the left edge
/// of `area`, at most `room` pixels long.
pub fn descriptions<DB: DrawingBackend>(
    area: &Area<DB>,
    labels: &Labels,
    (l, t, r, b): (i32, i32, i32, i32),
    (gap, room): (i32, i32),
) -> DrawResult {
    let desc = font(DESC_PX);
    let below = b + 12 + LABEL_PX as i32 + gap + DESC_PX as i32 / 2;
    text_at(
        area,
        &labels.x_desc,
        &desc,
        ((l + r) / 2, below),
        HPos::Center,
    )?;
    let left = (10 + DESC_PX as i32 / 2, (t + b) / 2);
    upright(area, &labels.y_desc, left, room)
}

/// Pixel height of the plot frame that [`axes`] makes in `area`.
pub fn frame_height<DB: DrawingBackend>(area: &Area<DB>) -> f64 {
    let h = area.dim_in_pixel().1 as i32;
    (h - (PANEL_TITLE_H + 8) - BELOW_FRAME).max(50) as f64
}

/// `hi` raised so that data up to `hi` stays below `notes` lines of text
/// written at the top of a plot `frame_px` high.
pub fn above_notes(lo: f64, hi: f64, notes: usize, frame_px: f64) -> f64 {
    if notes == 0 {
        return hi;
    }
    let used = 18.0 + notes as f64 * (LABEL_PX as f64 + 9.0) + 8.0;
    let frac = (used / frame_px).min(0.7);
    lo + (hi - lo) / (1.0 - frac)
}

/// About `n` round tick values (1, 2 or 5 times a power of ten apart)
/// inside `lo..=hi`.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater)
        || !lo.is_finite()
        || !hi.is_finite()
    {
        return vec![lo];
    }
    let n = n.max(2) as f64;
    let mag = 10f64.powf(((hi - lo) / n).log10().floor());
    let count = |s: f64| ((hi / s + 1e-9).floor() - (lo / s - 1e-9).ceil() + 1.0).max(0.0);
    let step = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]
        .iter()
        .map(|m| m * mag)
        .filter(|&s| count(s) >= 2.0)
        .min_by(|a, b| {
            let da = (count(*a) - n).abs();
            let db = (count(*b) - n).abs();
            da.partial_cmp(&db).unwrap_or(std::cmp::Ordering::Equal)
        })
        .unwrap_or(hi - lo);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let digits = ((-step.log10()).ceil() as i32 + 2).max(0);
    let scale = 10f64.powi(digits);
    (first..=last)
        .map(|k| (k as f64 * step * scale).round() / scale)
        .collect()
}

/// Like [`nice_ticks`] but whole numbers only (epochs, counts).
pub fn int_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let t = nice_ticks(lo, hi, n);
    if t.len() >= 2 && t[1] - t[0] >= 1.0 {
        return t;
    }
    let (a, b) = (lo.ceil() as i64, hi.floor() as i64);
    if b < a {
        return vec![lo.round()];
    }
    (a..=b).map(|v| v as f64).collect()
}

/// Decimals that tell the ticks apart.
pub fn tick_decimals(ticks: &[f64]) -> usize {
    match ticks {
        [a, b, ..] => {
            let step = (b - a).abs();
            if step >= 1.0 - 1e-9 {
                0
            } else {
                (-step.log10() - 1e-9).ceil() as usize
            }
        }
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks_are_round_and_inside() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        let t = nice_ticks(11.3, 13.9, 5);
        assert_eq!(t, vec![11.5, 12.0, 12.5, 13.0, 13.5]);
        assert_eq!(tick_decimals(&t), 1);
        assert_eq!(nice_ticks(0.0, 1.0, 5), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(int_ticks(0.0, 2.0, 8), vec![0.0, 1.0, 2.0]);
    }

    #[test]
    fn padding_widens_or_makes_room_around_a_flat_range() {
        assert_eq!(padded(0.0, 10.0, 0.1), (-1.0, 11.0));
        assert_eq!(padded(2.0, 2.0, 0.1), (1.9, 2.1));
        assert_eq!(padded(0.5, 0.5, 0.1), (0.0, 1.0));
        assert_eq!(padded(f64::NAN, 1.0, 0.1), (0.0, 1.0));
    }

    #[test]
    fn notes_push_the_top_up() {
        assert_eq!(above_notes(0.0, 10.0, 0, 500.0), 10.0);
        assert!(above_notes(0.0, 10.0, 2, 500.0) > 10.0);
    }
}
