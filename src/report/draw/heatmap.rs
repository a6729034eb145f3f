//! Heat maps (Figs. 7 and 9): a grid of values with a label at the centre
//! of every row and column, the value written in each cell, an optional
//! outlined cell, and a colour bar, in viridis; and a figure of heat maps
//! in rows under a title.

use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use super::axes::{descriptions, int_ticks, nice_ticks, tick, tick_decimals};
use super::axes::{Edge, Labels};
use super::text::title;
use super::text::{font, panel_title, text_at, upright, widest};
use super::text::{CELL_PX, DESC_PX, LABEL_PX, PANEL_TITLE_H};
use super::{Area, DrawResult, Plot, GRID, MUTED};

/// A heat map: `values[row][col]` with a label per row and column.
#[derive(Debug, Clone)]
pub struct HeatMap {
    /// Title, what the columns are (x) and what the rows are (y), with units.
    pub labels: Labels,
    /// Column labels, left to right.
    pub x_labels: Vec<String>,
    /// Row labels, top to bottom.
    pub y_labels: Vec<String>,
    /// `values[row][col]`; `None` is a cell without data.
    pub values: Vec<Vec<Option<f64>>>,
    /// Text written in each cell (same shape as `values`; lines split at `\n`).
    pub texts: Vec<Vec<String>>,
    /// `(row, col)` of a cell to outline (the best one).
    pub highlight: Option<(usize, usize)>,
    /// Colour bar description (what and unit).
    pub bar_desc: String,
    /// Whether the values are counts (whole-number colour bar ticks).
    pub integer: bool,
}

/// A figure of heat maps in rows under its title, every map in an equal
/// share of its row's width.
#[derive(Debug, Clone)]
pub struct HeatMapGrid {
    /// Figure title.
    pub title: String,
    /// The rows of maps, top to bottom.
    pub rows: Vec<Vec<HeatMap>>,
    /// Canvas size in pixels.
    pub size: (u32, u32),
    /// Margin around each map: top, bottom, left, right pixels.
    pub margin: (i32, i32, i32, i32),
}

impl HeatMapGrid {
    /// Maps in the longest row (at least 1).
    pub fn columns(&self) -> usize {
        self.rows.iter().map(Vec::len).max().unwrap_or(1).max(1)
    }
}

impl Plot for HeatMapGrid {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> DrawResult {
        let body = title(root, &self.title)?;
        let body = body.margin(0, 10, 10, 10);
        let columns = self.columns();
        let (t, b, l, r) = self.margin;
        for (area, row) in body
            .split_evenly((self.rows.len(), 1))
            .iter()
            .zip(&self.rows)
        {
            for (cell, map) in area.split_evenly((1, columns)).iter().zip(row) {
                heatmap(&cell.margin(t, b, l, r), map)?;
            }
        }
        Ok(())
    }
}

/// Width of the colour bar in pixels.
const BAR_W: i32 = 26;

/// Where a heat map's parts go in its area, and its colour scale.
struct Layout {
    /// Left, top, right, bottom of the grid.
    px: (i32, i32, i32, i32),
    /// Cell width and height.
    cell: (f64, f64),
    /// Values at the bottom and top of the colour scale.
    range: (f64, f64),
    /// Colour bar ticks.
    ticks: Vec<f64>,
    /// Width of the widest colour bar tick label.
    tick_w: i32,
}

impl Layout {
    fn new(hm: &HeatMap, (w, h): (i32, i32)) -> Layout {
        let label = font(LABEL_PX);
        let left = 10 + DESC_PX as i32 + 16 + widest(&hm.y_labels, &label).unwrap_or(0) + 12;
        let (lo, hi) = value_range(hm);
        let ticks = if hm.integer {
            int_ticks(lo, hi, 5)
        } else {
            nice_ticks(lo, hi, 5)
        };
        let ticks: Vec<f64> = ticks
            .into_iter()
            .filter(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9)
            .collect();
        let dec = tick_decimals(&ticks);
        let tick_w = widest(ticks.iter().map(|t| format!("{t:.dec$}")), &label).unwrap_or(40);
        let right = 26 + BAR_W + 10 + tick_w + 16 + DESC_PX as i32 + 8;
        let bottom = 12 + LABEL_PX as i32 + 18 + DESC_PX as i32 + 12;
        let (x0, y0) = (left, PANEL_TITLE_H + 6);
        let (x1, y1) = (w - right, h - bottom);
        let ny = hm.y_labels.len().max(1) as i32;
        let nx = hm.x_labels.len().max(1) as i32;
        Layout {
            px: (x0, y0, x1, y1),
            cell: ((x1 - x0) as f64 / nx as f64, (y1 - y0) as f64 / ny as f64),
            range: (lo, hi),
            ticks,
            tick_w,
        }
    }

    /// Top-left pixel of cell `(c, r)` (or the bottom-right of `(c-1, r-1)`).
    fn at(&self, c: usize, r: usize) -> (i32, i32) {
        let (x0, y0, _, _) = self.px;
        (
            (x0 as f64 + c as f64 * self.cell.0).round() as i32,
            (y0 as f64 + r as f64 * self.cell.1).round() as i32,
        )
    }
}

/// The colour scale: the finite values' range, widened a little when flat.
fn value_range(hm: &HeatMap) -> (f64, f64) {
    let (mut lo, mut hi) = hm
        .values
        .iter()
        .flatten()
        .flatten()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let pad = if lo.abs() > 1.0 { lo.abs() * 0.01 } else { 0.5 };
        lo -= pad;
        hi += pad;
    }
    (lo, hi)
}

/// Draws `hm` filling `area`.
pub fn heatmap<DB: DrawingBackend>(area: &Area<DB>, hm: &HeatMap) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    panel_title(area, &hm.labels.title)?;
    let lay = Layout::new(hm, (w as i32, h as i32));
    cells(area, hm, &lay)?;
    if let Some((r, c)) = hm.highlight {
        let (ax, ay) = lay.at(c, r);
        let (bx, by) = lay.at(c + 1, r + 1);
        area.draw(&Rectangle::new(
            [(ax + 2, ay + 2), (bx - 2, by - 2)],
            BLACK.stroke_width(5),
        ))?;
        area.draw(&Rectangle::new(
            [(ax + 6, ay + 6), (bx - 6, by - 6)],
            WHITE.stroke_width(2),
        ))?;
    }
    let (x0, y0, x1, y1) = lay.px;
    area.draw(&Rectangle::new([(x0, y0), (x1, y1)], BLACK.stroke_width(1)))?;
    column_labels(area, hm, &lay)?;
    for (r, l) in hm.y_labels.iter().enumerate() {
        let mid = (lay.at(0, r).1 + lay.at(0, r + 1).1) / 2;
        tick(area, (Edge::Left, x0), mid, l, &font(LABEL_PX))?;
    }
    descriptions(area, &hm.labels, lay.px, (18, y1 - y0))?;
    colour_bar(area, hm, &lay)
}

/// The cells: colour and the text written in them.
fn cells<DB: DrawingBackend>(area: &Area<DB>, hm: &HeatMap, lay: &Layout) -> DrawResult {
    let cell_px = cell_font_px(hm, lay.cell);
    let (lo, hi) = lay.range;
    for (r, row) in hm.values.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let (ax, ay) = lay.at(c, r);
            let (bx, by) = lay.at(c + 1, r + 1);
            let (fill, ink) = match v {
                Some(v) if v.is_finite() => {
                    let bg = viridis((v - lo) / (hi - lo));
                    (bg, ink_on(bg))
                }
                _ => (GRID, MUTED),
            };
            area.draw(&Rectangle::new([(ax, ay), (bx, by)], fill.filled()))?;
            area.draw(&Rectangle::new([(ax, ay), (bx, by)], WHITE.stroke_width(1)))?;
            let text = hm
                .texts
                .get(r)
                .and_then(|t| t.get(c))
                .map_or("", String::as_str);
            let lines: Vec<&str> = text.lines().collect();
            let n = lines.len() as i32;
            let line_h = (cell_px as f64 * 1.2) as i32;
            for (i, line) in lines.iter().enumerate() {
                let y = (ay + by) / 2 - (n - 1) * line_h / 2 + i as i32 * line_h;
                let px = if i == 0 {
                    cell_px
                } else {
                    (cell_px * 4 / 5).max(10)
                };
                text_at(
                    area,
                    line,
                    &font(px).color(ink),
                    ((ax + bx) / 2, y),
                    HPos::Center,
                )?;
            }
        }
    }
    Ok(())
}

/// The cell font: as large as [`CELL_PX`], smaller if the widest text or
/// the lines do not fit a cell `(cw, ch)`.
fn cell_font_px(hm: &HeatMap, (cw, ch): (f64, f64)) -> u32 {
    let lines = hm.texts.iter().flatten().flat_map(|t| t.lines());
    let widest = widest(lines, &font(CELL_PX)).unwrap_or(1);
    let max_lines = hm
        .texts
        .iter()
        .flatten()
        .map(|t| t.lines().count())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let by_w = CELL_PX as f64 * (cw - 8.0) / widest.max(1) as f64;
    let by_h = (ch - 6.0) / (max_lines * 1.25);
    by_w.min(by_h).min(CELL_PX as f64 * 1.2).max(10.0) as u32
}

/// Column labels under the grid, smaller if they do not fit their cell.
fn column_labels<DB: DrawingBackend>(area: &Area<DB>, hm: &HeatMap, lay: &Layout) -> DrawResult {
    let label = font(LABEL_PX);
    let cw = lay.cell.0;
    let widest = widest(&hm.x_labels, &label).unwrap_or(0);
    let xl = if widest as f64 > cw - 6.0 {
        font(((LABEL_PX as f64 * (cw - 6.0) / widest as f64) as u32).max(11))
    } else {
        label
    };
    let y1 = lay.px.3;
    for (c, l) in hm.x_labels.iter().enumerate() {
        let mid = (lay.at(c, 0).0 + lay.at(c + 1, 0).0) / 2;
        tick(area, (Edge::Bottom, y1), mid, l, &xl)?;
    }
    Ok(())
}

/// The colour bar right of the grid, with ticks and its description.
fn colour_bar<DB: DrawingBackend>(area: &Area<DB>, hm: &HeatMap, lay: &Layout) -> DrawResult {
    let (_, y0, x1, y1) = lay.px;
    let (lo, hi) = lay.range;
    let bx0 = x1 + 26;
    let steps = 100;
    for i in 0..steps {
        let (t0, t1) = (i as f64 / steps as f64, (i + 1) as f64 / steps as f64);
        let ya = y1 - ((y1 - y0) as f64 * t1).round() as i32;
        let yb = y1 - ((y1 - y0) as f64 * t0).round() as i32;
        area.draw(&Rectangle::new(
            [(bx0, ya), (bx0 + BAR_W, yb)],
            viridis((t0 + t1) / 2.0).filled(),
        ))?;
    }
    area.draw(&Rectangle::new(
        [(bx0, y0), (bx0 + BAR_W, y1)],
        BLACK.stroke_width(1),
    ))?;
    let label = font(LABEL_PX);
    let dec = tick_decimals(&lay.ticks);
    for t in &lay.ticks {
        let y = y1 - ((t - lo) / (hi - lo) * (y1 - y0) as f64).round() as i32;
        area.draw(&PathElement::new(
            vec![(bx0 + BAR_W, y), (bx0 + BAR_W + 6, y)],
            BLACK.stroke_width(1),
        ))?;
        text_at(
            area,
            &format!("{t:.dec$}"),
            &label,
            (bx0 + BAR_W + 10, y),
            HPos::Left,
        )?;
    }
    upright(
        area,
        &hm.bar_desc,
        (
            bx0 + BAR_W + 10 + lay.tick_w + 16 + DESC_PX as i32 / 2,
            (y0 + y1) / 2,
        ),
        y1 - y0,
    )
}

/// The viridis colour map (perceptually uniform, readable in grey and with
/// colour-vision deficiencies) at `t` in 0..=1.
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 11] = [
        (68, 1, 84),
        (72, 36, 117),
        (65, 68, 135),
        (53, 95, 141),
        (42, 120, 142),
        (33, 145, 140),
        (34, 168, 132),
        (68, 191, 112),
        (122, 209, 81),
        (189, 223, 38),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (STOPS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Black or white, whichever reads better on `bg`.
pub fn ink_on(bg: RGBColor) -> RGBColor {
    let lum = 0.2126 * bg.0 as f64 + 0.7152 * bg.1 as f64 + 0.0722 * bg.2 as f64;
    if lum > 128.0 {
        BLACK
    } else {
        WHITE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(ink_on(viridis(0.0)), WHITE);
        assert_eq!(ink_on(viridis(1.0)), BLACK);
    }

    #[test]
    fn a_flat_map_gets_a_colour_range() {
        let map = |v: f64| HeatMap {
            labels: Labels::default(),
            x_labels: vec!["a".into()],
            y_labels: vec!["b".into()],
            values: vec![vec![Some(v), None]],
            texts: Vec::new(),
            highlight: None,
            bar_desc: String::new(),
            integer: false,
        };
        assert_eq!(value_range(&map(50.0)), (49.5, 50.5));
        assert_eq!(value_range(&map(0.0)), (-0.5, 0.5));
    }
}
