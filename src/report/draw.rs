//! Drawing shared by every figure: the bundled font and text layout, sizes
//! and palette, one function that writes a figure as PNG and SVG, and the
//! three panel kinds the figures are made of (heat map, line chart, bar
//! chart) plus a legend row.
//!
//! Why panels are laid out here in pixels rather than with plotters'
//! `ChartBuilder`: a heat map needs one label at the centre of every cell
//! (the grid's actual L and M values, the edge names), which plotters' tick
//! algorithm does not give; and plotters 0.3.7 draws PNG text without the
//! glyphs' side bearings, so every text of the figures goes through
//! [`text_at`], which places PNG glyphs one by one (see `text.rs`) and
//! leaves SVG text to the viewer. plotters still does the rasterising,
//! anti-aliasing and file encoding.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontFamily, FontStyle, FontTransform};

use super::text::{metrics, BOLD_TTF, REGULAR_TTF};

/// The font family name: the bundled DejaVu Sans is registered under it for
/// PNG, and the SVG names it so that viewers use DejaVu Sans if they have it
/// and their own sans-serif otherwise.
pub const FONT: &str = "DejaVu Sans, sans-serif";
/// Figure title (em size in pixels).
pub const TITLE_PX: u32 = 28;
/// Panel titles.
pub const PANEL_TITLE_PX: u32 = 23;
/// Axis descriptions.
pub const DESC_PX: u32 = 22;
/// Tick labels and legend entries.
pub const LABEL_PX: u32 = 20;
/// Numbers inside heat-map cells.
pub const CELL_PX: u32 = 20;

/// Okabe–Ito colours (distinguishable with the common colour-vision
/// deficiencies): blue, vermillion, bluish green, orange, reddish purple,
/// sky blue, yellow, black.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(230, 159, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];
/// Light grey of grid lines and missing cells.
pub const GRID: RGBColor = RGBColor(225, 225, 225);
/// Dark grey of secondary text.
pub const MUTED: RGBColor = RGBColor(90, 90, 90);

/// Colour of a method's line, the same in every figure.
pub fn method_color(method: &str) -> RGBColor {
    match method {
        "ddsas" => PALETTE[0],
        "darts" => PALETTE[1],
        "gdas" => PALETTE[2],
        _ => PALETTE[7],
    }
}

/// Colours of figures with more series than methods: Okabe–Ito without
/// its yellow (faint on white), then Paul Tol's muted set.
pub const SERIES_PALETTE: [RGBColor; 12] = [
    PALETTE[0],
    PALETTE[1],
    PALETTE[2],
    PALETTE[3],
    PALETTE[4],
    PALETTE[5],
    PALETTE[7],
    RGBColor(51, 34, 136),
    RGBColor(136, 34, 85),
    RGBColor(153, 153, 51),
    RGBColor(68, 170, 153),
    RGBColor(204, 102, 119),
];

/// How the series of a figure are told apart. Each series is one setting
/// (a method and the values of the keys that vary among the runs shown).
/// While no panel shows two settings of one method, a series keeps its
/// method's colour and marker, as everywhere else, and the legend names
/// methods; otherwise every distinct label gets its own colour, the same
/// in every panel, and the legend names the settings.
#[derive(Debug, Clone)]
pub struct SeriesStyles {
    by_method: bool,
    /// `(method, label)` in the order first seen.
    series: Vec<(String, String)>,
}

impl SeriesStyles {
    /// Styles for `panels`, each the `(method, label)` of its series.
    pub fn new(panels: &[Vec<(String, String)>]) -> SeriesStyles {
        let by_method = panels.iter().all(|p| {
            let mut methods: Vec<&str> = p.iter().map(|(m, _)| m.as_str()).collect();
            let n = methods.len();
            methods.sort_unstable();
            methods.dedup();
            methods.len() == n
        });
        let mut series: Vec<(String, String)> = Vec::new();
        for s in panels.iter().flatten() {
            let key = if by_method {
                (s.0.clone(), super::data::method_label(&s.0).to_string())
            } else {
                s.clone()
            };
            if !series.contains(&key) {
                series.push(key);
            }
        }
        if by_method {
            series.sort_by_key(|(m, _)| super::data::method_rank(m));
        }
        SeriesStyles { by_method, series }
    }

    /// Colour and marker of the series of `method` labelled `label`.
    pub fn style(&self, method: &str, label: &str) -> (RGBColor, usize) {
        if self.by_method {
            return (method_color(method), method_marker(method));
        }
        let i = self
            .series
            .iter()
            .position(|(m, l)| m == method && l == label)
            .unwrap_or(0);
        (
            SERIES_PALETTE[i % SERIES_PALETTE.len()],
            method_marker(method),
        )
    }

    /// Legend entries, one per method or per setting; `markers` draws the
    /// series' markers in the swatches.
    pub fn legend(&self, markers: bool) -> Vec<LegendEntry> {
        self.series
            .iter()
            .map(|(method, label)| {
                let (color, marker) = self.style(method, label);
                LegendEntry {
                    label: label.clone(),
                    color,
                    swatch: Swatch::Line(if markers { marker } else { 3 }),
                }
            })
            .collect()
    }
}

/// Marker of a method's line (0 circle, 1 triangle, 2 square), so that
/// lines differ by shape as well as colour.
pub fn method_marker(method: &str) -> usize {
    match method {
        "ddsas" => 0,
        "darts" => 1,
        "gdas" => 2,
        _ => 3,
    }
}

static FONTS: Once = Once::new();

/// Registers the bundled DejaVu Sans (regular and bold) with plotters:
/// plotters is built without system-font loading, so PNG text renders the
/// same on a machine without any fonts installed.
pub fn register_fonts() {
    FONTS.call_once(|| {
        // The bytes are compiled in and known to parse (see the tests).
        let _ = register_font(FONT, FontStyle::Normal, REGULAR_TTF);
        let _ = register_font(FONT, FontStyle::Bold, BOLD_TTF);
    });
}

/// Which file a figure is being drawn into: text is laid out differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Raster: glyphs placed one by one with the bundled font.
    Png,
    /// Vector: one `<text>` per string, set by the viewer.
    Svg,
}

thread_local! {
    static TARGET: Cell<Target> = const { Cell::new(Target::Svg) };
}

fn target() -> Target {
    TARGET.with(Cell::get)
}

/// A drawing failure, as text (the backends' error types differ).
#[derive(Debug)]
pub struct DrawError(pub String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        DrawError(e.to_string())
    }
}

/// Result of a drawing function.
pub type DrawResult = Result<(), DrawError>;

/// A figure that can draw itself on any plotters backend, so that the PNG
/// and the SVG come from the same code.
pub trait Plot {
    /// Canvas size in pixels (width, height).
    fn size(&self) -> (u32, u32);
    /// Draws the whole figure on `root` (already filled white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

/// Writes `plot` as `dir/stem.png` and `dir/stem.svg`; returns both paths.
pub fn save<P: Plot>(plot: &P, dir: &Path, stem: &str) -> Result<Vec<PathBuf>, DrawError> {
    register_fonts();
    let size = plot.size();
    let png = dir.join(format!("{stem}.png"));
    TARGET.with(|t| t.set(Target::Png));
    let drawn = (|| {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE)?;
        plot.draw(&root)?;
        root.present()?;
        Ok::<(), DrawError>(())
    })();
    TARGET.with(|t| t.set(Target::Svg));
    drawn?;
    let svg = dir.join(format!("{stem}.svg"));
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        plot.draw(&root)?;
        root.present()?;
    }
    Ok(vec![png, svg])
}

/// Size, weight and colour of a text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Txt {
    /// Em size in pixels (what CSS calls font-size).
    pub px: u32,
    /// Bold face.
    pub bold: bool,
    /// Colour.
    pub color: RGBColor,
}

impl Txt {
    /// This text in another colour.
    pub fn color(self, color: RGBColor) -> Txt {
        Txt { color, ..self }
    }
}

/// Regular black text of em size `px`.
pub fn font(px: u32) -> Txt {
    Txt {
        px,
        bold: false,
        color: BLACK,
    }
}

/// Bold black text of em size `px`.
pub fn bold(px: u32) -> Txt {
    Txt {
        bold: true,
        ..font(px)
    }
}

/// Width in pixels of `text` set in `t`.
pub fn measure(text: &str, t: &Txt) -> i32 {
    metrics(t.bold).width(text, t.px as f64).ceil() as i32
}

/// `t` made smaller (down to 80% of its size) until `text` fits `max_px`,
/// and `text` shortened with "…" if even that does not fit.
pub fn shrink_to_fit(text: &str, t: &Txt, max_px: i32) -> (String, Txt) {
    let mut t = *t;
    let floor = (t.px * 4 / 5).max(10);
    while t.px > floor && measure(text, &t) > max_px {
        t.px -= 1;
    }
    (fit(text, &t, max_px), t)
}

/// Shortens `text` with "…" until it fits `max_px`.
pub fn fit(text: &str, t: &Txt, max_px: i32) -> String {
    if measure(text, t) <= max_px {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let s: String = chars.iter().collect::<String>() + "…";
        if measure(&s, t) <= max_px {
            return s;
        }
    }
    String::new()
}

/// The plotters style of `t` at the size the current target needs for an
/// em of `t.px` (ab_glyph scales to ascender − descender; the SVG backend
/// writes `size / 1.24` as font-size).
fn style<'a>(t: &Txt, color: &'a RGBColor) -> TextStyle<'a> {
    let m = metrics(t.bold);
    let nominal = match target() {
        Target::Png => t.px as f64 * m.height / m.units_per_em,
        Target::Svg => t.px as f64 * 1.24,
    };
    let weight = if t.bold {
        FontStyle::Bold
    } else {
        FontStyle::Normal
    };
    FontDesc::new(FontFamily::Name(FONT), nominal, weight).color(color)
}

/// Where the baseline sits below the vertical centre of a line, in ems
/// (half the x-height, as the SVG's `dy = 0.5ex`).
const BASELINE_EM: f64 = 0.28;

/// Draws `text` vertically centred on `y`, anchored at `x` by `h`.
pub fn text_at<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    t: &Txt,
    (x, y): (i32, i32),
    h: HPos,
) -> DrawResult {
    let color = t.color;
    let style = style(t, &color);
    if target() == Target::Svg {
        area.draw_text(text, &style.pos(Pos::new(h, VPos::Center)), (x, y))?;
        return Ok(());
    }
    let m = metrics(t.bold);
    let scale = t.px as f64 / m.units_per_em;
    let (glyphs, total) = m.layout(text);
    let start = x as f64
        - match h {
            HPos::Left => 0.0,
            HPos::Center => total * scale / 2.0,
            HPos::Right => total * scale,
        };
    let nominal = t.px as f64 * m.height / m.units_per_em;
    let top = (y as f64 + BASELINE_EM * t.px as f64 - nominal / 2.0).round() as i32;
    let style = style.pos(Pos::new(HPos::Left, VPos::Top));
    let mut buf = [0u8; 4];
    for (c, pen, lsb) in glyphs {
        if c.is_whitespace() {
            continue;
        }
        let gx = (start + pen * scale).round() as i32 + (lsb * scale).floor() as i32;
        area.draw_text(c.encode_utf8(&mut buf), &style, (gx, top))?;
    }
    Ok(())
}

/// Draws `text` rotated a quarter turn counter-clockwise (reading upwards),
/// centred at `(x, y)`, made smaller or shortened to be at most `max_px`
/// long.
pub fn vertical_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    t: &Txt,
    (x, y): (i32, i32),
    max_px: i32,
) -> DrawResult {
    let (text, t) = shrink_to_fit(text, t, max_px);
    let (text, t) = (text.as_str(), &t);
    let color = t.color;
    let style = style(t, &color).transform(FontTransform::Rotate270);
    if target() == Target::Svg {
        area.draw_text(
            text,
            &style.pos(Pos::new(HPos::Center, VPos::Center)),
            (x, y),
        )?;
        return Ok(());
    }
    let m = metrics(t.bold);
    let scale = t.px as f64 / m.units_per_em;
    let (glyphs, total) = m.layout(text);
    let start = y as f64 + total * scale / 2.0;
    let nominal = t.px as f64 * m.height / m.units_per_em;
    // Rotate270 maps glyph (gx, gy) to (gy, -gx): the baseline is a column.
    let left = (x as f64 + BASELINE_EM * t.px as f64 - nominal / 2.0).round() as i32;
    let style = style.pos(Pos::new(HPos::Left, VPos::Top));
    let mut buf = [0u8; 4];
    for (c, pen, lsb) in glyphs {
        if c.is_whitespace() {
            continue;
        }
        let gy = (start - pen * scale).round() as i32 - (lsb * scale).floor() as i32;
        area.draw_text(c.encode_utf8(&mut buf), &style, (left, gy))?;
    }
    Ok(())
}

/// Draws the figure title at the top of `root`; returns the area below it.
pub fn title<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
) -> Result<DrawingArea<DB, Shift>, DrawError> {
    let (w, _) = root.dim_in_pixel();
    let (top, rest) = root.split_vertically(TITLE_PX as i32 + 30);
    let (text, t) = shrink_to_fit(text, &bold(TITLE_PX), w as i32 - 20);
    text_at(
        &top,
        &text,
        &t,
        (w as i32 / 2, TITLE_PX as i32 / 2 + 16),
        HPos::Center,
    )?;
    Ok(rest)
}

/// Draws the figure title and a smaller subtitle line under it; returns
/// the area below.
pub fn title_sub<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
    sub: &str,
) -> Result<DrawingArea<DB, Shift>, DrawError> {
    let rest = title(root, text)?;
    let (w, _) = rest.dim_in_pixel();
    let (top, rest) = rest.split_vertically(LABEL_PX as i32 + 12);
    let t = font(LABEL_PX).color(MUTED);
    text_at(
        &top,
        &fit(sub, &t, w as i32 - 20),
        &t,
        (w as i32 / 2, LABEL_PX as i32 / 2 + 2),
        HPos::Center,
    )?;
    Ok(rest)
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Swatch {
    /// A line (with a marker: 0 circle, 1 triangle, 2 square, 3+ none).
    Line(usize),
    /// A filled box (bars, bands).
    Box,
}

/// One legend entry.
#[derive(Debug, Clone)]
pub struct LegendEntry {
    /// Text.
    pub label: String,
    /// Colour of the swatch.
    pub color: RGBColor,
    /// Kind of swatch.
    pub swatch: Swatch,
}

const LEGEND_ROW: i32 = LABEL_PX as i32 + 14;

/// Height a legend of `entries` needs in a strip `width` wide.
pub fn legend_height(entries: &[LegendEntry], width: i32) -> i32 {
    legend_rows(entries, width).len() as i32 * LEGEND_ROW + 10
}

fn legend_rows(entries: &[LegendEntry], width: i32) -> Vec<Vec<(usize, i32)>> {
    let t = font(LABEL_PX);
    let mut rows: Vec<Vec<(usize, i32)>> = vec![Vec::new()];
    let mut used = 0;
    for (i, e) in entries.iter().enumerate() {
        let w = 46 + measure(&e.label, &t) + 30;
        let row = rows.last_mut().expect("one row");
        if !row.is_empty() && used + w > width - 20 {
            rows.push(vec![(i, w)]);
            used = w;
        } else {
            row.push((i, w));
            used += w;
        }
    }
    rows
}

/// Draws a centred legend (wrapped into rows) across the top of `area`.
pub fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> DrawResult {
    let (w, _) = area.dim_in_pixel();
    let t = font(LABEL_PX);
    for (r, row) in legend_rows(entries, w as i32).iter().enumerate() {
        let total: i32 = row.iter().map(|&(_, ew)| ew).sum::<i32>() - 30;
        let mut x = (w as i32 - total) / 2;
        let y = 5 + r as i32 * LEGEND_ROW + LEGEND_ROW / 2;
        for &(i, ew) in row {
            let e = &entries[i];
            match e.swatch {
                Swatch::Line(marker) => {
                    polyline(area, &[(x, y), (x + 38, y)], e.color.to_rgba(), 3)?;
                    draw_marker(area, marker, (x + 19, y), e.color)?;
                }
                Swatch::Box => {
                    area.draw(&Rectangle::new(
                        [(x + 6, y - 10), (x + 32, y + 10)],
                        e.color.filled(),
                    ))?;
                }
            }
            text_at(area, &e.label, &t, (x + 46, y), HPos::Left)?;
            x += ew;
        }
    }
    Ok(())
}

/// Draws a polyline `width` pixels wide. plotters widens PNG paths by a
/// vertical offset, which makes steep segments thin; here each PNG segment
/// is a quadrilateral offset along its normal, with round joins. SVG paths
/// are left to the viewer.
pub fn polyline<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    pts: &[(i32, i32)],
    color: RGBAColor,
    width: u32,
) -> DrawResult {
    if width <= 1 || target() == Target::Svg {
        area.draw(&PathElement::new(pts.to_vec(), color.stroke_width(width)))?;
        return Ok(());
    }
    let half = width as f64 / 2.0;
    for w in pts.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        let (dx, dy) = ((x1 - x0) as f64, (y1 - y0) as f64);
        let len = (dx * dx + dy * dy).sqrt();
        if len < 1e-9 {
            continue;
        }
        let (nx, ny) = (-dy / len * half, dx / len * half);
        let quad = [
            (x0 as f64 + nx, y0 as f64 + ny),
            (x1 as f64 + nx, y1 as f64 + ny),
            (x1 as f64 - nx, y1 as f64 - ny),
            (x0 as f64 - nx, y0 as f64 - ny),
        ];
        let quad: Vec<(i32, i32)> = quad
            .iter()
            .map(|&(x, y)| (x.round() as i32, y.round() as i32))
            .collect();
        area.draw(&Polygon::new(quad, color.filled()))?;
    }
    if color.3 >= 0.999 {
        for &p in &pts[1..pts.len().saturating_sub(1)] {
            area.draw(&Circle::new(p, (width / 2).max(1), color.filled()))?;
        }
    }
    Ok(())
}

/// Draws marker `kind` (0 circle, 1 triangle, 2 square) centred at `p`.
pub fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    kind: usize,
    (x, y): (i32, i32),
    color: RGBColor,
) -> DrawResult {
    match kind {
        0 => area.draw(&Circle::new((x, y), 6, color.filled()))?,
        1 => area.draw(&Polygon::new(
            vec![(x, y - 8), (x - 7, y + 5), (x + 7, y + 5)],
            color.filled(),
        ))?,
        2 => area.draw(&Rectangle::new(
            [(x - 5, y - 5), (x + 5, y + 5)],
            color.filled(),
        ))?,
        _ => {}
    }
    Ok(())
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

/// A count with thousands separators ("191,276").
pub fn thousands(v: i64) -> String {
    let s = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A heat map: a grid of values with a label per row and column, the value
/// written in each cell, an optional outlined cell, and a colour bar.
#[derive(Debug, Clone)]
pub struct HeatMap {
    /// Panel title.
    pub title: String,
    /// What the columns are (x axis description, with unit).
    pub x_desc: String,
    /// What the rows are (y axis description, with unit).
    pub y_desc: String,
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

/// Draws `hm` filling `area`.
pub fn heatmap<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, hm: &HeatMap) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let ny = hm.y_labels.len().max(1) as i32;
    let nx = hm.x_labels.len().max(1) as i32;
    let label = font(LABEL_PX);
    let desc = font(DESC_PX);
    let title_t = bold(PANEL_TITLE_PX);
    let title_h = PANEL_TITLE_PX as i32 + 22;
    let (title_text, title_t) = shrink_to_fit(&hm.title, &title_t, w - 10);
    text_at(
        area,
        &title_text,
        &title_t,
        (w / 2, title_h / 2),
        HPos::Center,
    )?;
    let ylab_w = hm
        .y_labels
        .iter()
        .map(|l| measure(l, &label))
        .max()
        .unwrap_or(0);
    let left = 10 + DESC_PX as i32 + 16 + ylab_w + 12;
    let finite: Vec<f64> = hm
        .values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let (mut lo, mut hi) = finite
        .iter()
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
    let tick_w = ticks
        .iter()
        .map(|t| measure(&format!("{t:.dec$}"), &label))
        .max()
        .unwrap_or(40);
    let bar_w = 26;
    let right = 26 + bar_w + 10 + tick_w + 16 + DESC_PX as i32 + 8;
    let bottom = 12 + LABEL_PX as i32 + 18 + DESC_PX as i32 + 12;
    let (x0, y0) = (left, title_h + 6);
    let (x1, y1) = (w - right, h - bottom);
    let (cw, ch) = ((x1 - x0) as f64 / nx as f64, (y1 - y0) as f64 / ny as f64);
    let at = |c: i32, r: i32| {
        (
            (x0 as f64 + c as f64 * cw).round() as i32,
            (y0 as f64 + r as f64 * ch).round() as i32,
        )
    };
    // The cell font: as large as CELL_PX, smaller if the widest text or the
    // lines do not fit a cell.
    let widest = hm
        .texts
        .iter()
        .flatten()
        .flat_map(|t| t.lines())
        .map(|l| measure(l, &font(CELL_PX)))
        .max()
        .unwrap_or(1);
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
    let cell_px = by_w.min(by_h).min(CELL_PX as f64 * 1.2).max(10.0) as u32;
    for (r, row) in hm.values.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let (ax, ay) = at(c as i32, r as i32);
            let (bx, by) = at(c as i32 + 1, r as i32 + 1);
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
    if let Some((r, c)) = hm.highlight {
        let (ax, ay) = at(c as i32, r as i32);
        let (bx, by) = at(c as i32 + 1, r as i32 + 1);
        area.draw(&Rectangle::new(
            [(ax + 2, ay + 2), (bx - 2, by - 2)],
            BLACK.stroke_width(5),
        ))?;
        area.draw(&Rectangle::new(
            [(ax + 6, ay + 6), (bx - 6, by - 6)],
            WHITE.stroke_width(2),
        ))?;
    }
    area.draw(&Rectangle::new([(x0, y0), (x1, y1)], BLACK.stroke_width(1)))?;
    // Column labels, smaller if they do not fit their cell.
    let widest = hm
        .x_labels
        .iter()
        .map(|l| measure(l, &label))
        .max()
        .unwrap_or(0);
    let xl = if widest as f64 > cw - 6.0 {
        font(((LABEL_PX as f64 * (cw - 6.0) / widest as f64) as u32).max(11))
    } else {
        label
    };
    for (c, l) in hm.x_labels.iter().enumerate() {
        let mid = (at(c as i32, 0).0 + at(c as i32 + 1, 0).0) / 2;
        area.draw(&PathElement::new(
            vec![(mid, y1), (mid, y1 + 6)],
            BLACK.stroke_width(1),
        ))?;
        text_at(
            area,
            l,
            &xl,
            (mid, y1 + 12 + LABEL_PX as i32 / 2),
            HPos::Center,
        )?;
    }
    text_at(
        area,
        &hm.x_desc,
        &desc,
        (
            (x0 + x1) / 2,
            y1 + 12 + LABEL_PX as i32 + 18 + DESC_PX as i32 / 2,
        ),
        HPos::Center,
    )?;
    for (r, l) in hm.y_labels.iter().enumerate() {
        let mid = (at(0, r as i32).1 + at(0, r as i32 + 1).1) / 2;
        area.draw(&PathElement::new(
            vec![(x0 - 6, mid), (x0, mid)],
            BLACK.stroke_width(1),
        ))?;
        text_at(area, l, &label, (x0 - 10, mid), HPos::Right)?;
    }
    vertical_text(
        area,
        &hm.y_desc,
        &desc,
        (10 + DESC_PX as i32 / 2, (y0 + y1) / 2),
        y1 - y0,
    )?;
    // Colour bar.
    let bx0 = x1 + 26;
    let steps = 100;
    for i in 0..steps {
        let (t0, t1) = (i as f64 / steps as f64, (i + 1) as f64 / steps as f64);
        let ya = y1 - ((y1 - y0) as f64 * t1).round() as i32;
        let yb = y1 - ((y1 - y0) as f64 * t0).round() as i32;
        area.draw(&Rectangle::new(
            [(bx0, ya), (bx0 + bar_w, yb)],
            viridis((t0 + t1) / 2.0).filled(),
        ))?;
    }
    area.draw(&Rectangle::new(
        [(bx0, y0), (bx0 + bar_w, y1)],
        BLACK.stroke_width(1),
    ))?;
    for t in &ticks {
        let y = y1 - ((t - lo) / (hi - lo) * (y1 - y0) as f64).round() as i32;
        area.draw(&PathElement::new(
            vec![(bx0 + bar_w, y), (bx0 + bar_w + 6, y)],
            BLACK.stroke_width(1),
        ))?;
        text_at(
            area,
            &format!("{t:.dec$}"),
            &label,
            (bx0 + bar_w + 10, y),
            HPos::Left,
        )?;
    }
    vertical_text(
        area,
        &hm.bar_desc,
        &desc,
        (
            bx0 + bar_w + 10 + tick_w + 16 + DESC_PX as i32 / 2,
            (y0 + y1) / 2,
        ),
        y1 - y0,
    )?;
    Ok(())
}

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

/// A line chart panel: title, axes with units, lines and bands.
#[derive(Debug, Clone)]
pub struct LinePanel {
    /// Panel title.
    pub title: String,
    /// x axis description with unit.
    pub x_desc: String,
    /// y axis description with unit.
    pub y_desc: String,
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

/// Axis furniture of a panel: title, frame, grid, ticks and descriptions.
/// `x_ticks` are `(value, label)`; `y_ticks` are numbers formatted with the
/// decimals that tell them apart. Returns the plot frame.
#[allow(clippy::too_many_arguments)]
pub fn axes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    xr: (f64, f64),
    yr: (f64, f64),
    x_ticks: &[(f64, String)],
    y_ticks: &[f64],
) -> Result<Frame, DrawError> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let label = font(LABEL_PX);
    let desc = font(DESC_PX);
    let title_t = bold(PANEL_TITLE_PX);
    let title_h = PANEL_TITLE_PX as i32 + 22;
    let (title_text, title_t) = shrink_to_fit(title, &title_t, w - 10);
    text_at(
        area,
        &title_text,
        &title_t,
        (w / 2, title_h / 2),
        HPos::Center,
    )?;
    let ydec = tick_decimals(y_ticks);
    let ylabels: Vec<String> = y_ticks.iter().map(|v| format!("{v:.ydec$}")).collect();
    let ylab_w = ylabels
        .iter()
        .map(|l| measure(l, &label))
        .max()
        .unwrap_or(0);
    let left = 10 + DESC_PX as i32 + 14 + ylab_w + 12;
    let bottom = 12 + LABEL_PX as i32 + 16 + DESC_PX as i32 + 10;
    let frame = Frame {
        px: (left, title_h + 8, w - 28, h - bottom),
        xr,
        yr,
    };
    let (l, t, r, b) = frame.px;
    for &y in y_ticks {
        let (_, py) = frame.map(xr.0, y);
        area.draw(&PathElement::new(
            vec![(l, py), (r, py)],
            GRID.stroke_width(1),
        ))?;
    }
    for (x, _) in x_ticks {
        let (px, _) = frame.map(*x, yr.0);
        area.draw(&PathElement::new(
            vec![(px, t), (px, b)],
            GRID.stroke_width(1),
        ))?;
    }
    area.draw(&Rectangle::new([(l, t), (r, b)], BLACK.stroke_width(1)))?;
    for (y, text) in y_ticks.iter().zip(&ylabels) {
        let (_, py) = frame.map(xr.0, *y);
        area.draw(&PathElement::new(
            vec![(l - 6, py), (l, py)],
            BLACK.stroke_width(1),
        ))?;
        text_at(area, text, &label, (l - 10, py), HPos::Right)?;
    }
    for (x, text) in x_ticks {
        let (px, _) = frame.map(*x, yr.0);
        area.draw(&PathElement::new(
            vec![(px, b), (px, b + 6)],
            BLACK.stroke_width(1),
        ))?;
        text_at(
            area,
            text,
            &label,
            (px, b + 12 + LABEL_PX as i32 / 2),
            HPos::Center,
        )?;
    }
    text_at(
        area,
        x_desc,
        &desc,
        (
            (l + r) / 2,
            b + 12 + LABEL_PX as i32 + 16 + DESC_PX as i32 / 2,
        ),
        HPos::Center,
    )?;
    vertical_text(
        area,
        y_desc,
        &desc,
        (10 + DESC_PX as i32 / 2, (t + b) / 2),
        b - t + 30,
    )?;
    Ok(frame)
}

/// Pixel height of the plot frame that [`axes`] makes in `area`.
fn frame_height<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> f64 {
    let h = area.dim_in_pixel().1 as i32;
    let top = PANEL_TITLE_PX as i32 + 22 + 8;
    let bottom = 12 + LABEL_PX as i32 + 16 + DESC_PX as i32 + 10;
    (h - top - bottom).max(50) as f64
}

/// `hi` raised so that data up to `hi` stays below `notes` lines of text
/// written at the top of a plot `frame_px` high.
fn above_notes(lo: f64, hi: f64, notes: usize, frame_px: f64) -> f64 {
    if notes == 0 {
        return hi;
    }
    let used = 18.0 + notes as f64 * (LABEL_PX as f64 + 9.0) + 8.0;
    let frac = (used / frame_px).min(0.7);
    lo + (hi - lo) / (1.0 - frac)
}

/// Draws `p` filling `area`.
pub fn line_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &LinePanel) -> DrawResult {
    let mut p = p.clone();
    if p.integer_y && p.y_range.1 - p.y_range.0 < 3.0 {
        // A flat count: room for a few whole-number ticks around it.
        let mid = ((p.y_range.0 + p.y_range.1) / 2.0).round();
        p.y_range = (mid - 1.5, mid + 1.5);
    }
    p.y_range.1 = above_notes(p.y_range.0, p.y_range.1, p.notes.len(), frame_height(area));
    let p = &p;
    let x_ticks = if p.integer_x {
        int_ticks(p.x_range.0, p.x_range.1, 8)
    } else {
        nice_ticks(p.x_range.0, p.x_range.1, 8)
    };
    let y_ticks = if p.integer_y {
        int_ticks(p.y_range.0, p.y_range.1, 7)
    } else {
        nice_ticks(p.y_range.0, p.y_range.1, 6)
    };

    let xdec = tick_decimals(&x_ticks);
    let x_labels: Vec<(f64, String)> = x_ticks
        .iter()
        .map(|&v| (v, format!("{v:.xdec$}")))
        .collect();
    let frame = axes(
        area, &p.title, &p.x_desc, &p.y_desc, p.x_range, p.y_range, &x_labels, &y_ticks,
    )?;
    for s in &p.series {
        if s.band.len() > 1 {
            let mut poly: Vec<(i32, i32)> =
                s.band.iter().map(|&(x, _, hi)| frame.map(x, hi)).collect();
            poly.extend(s.band.iter().rev().map(|&(x, lo, _)| frame.map(x, lo)));
            area.draw(&Polygon::new(poly, s.color.mix(0.18).filled()))?;
        }
    }
    for s in &p.series {
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

/// One group of bars (one per category) in a [`BarPanel`].
#[derive(Debug, Clone)]
pub struct BarSet {
    /// Colour of the bars.
    pub color: RGBColor,
    /// Height per category.
    pub values: Vec<f64>,
    /// Text above each bar.
    pub labels: Vec<String>,
}

/// A grouped bar chart: categories on x, one bar per set in each.
#[derive(Debug, Clone)]
pub struct BarPanel {
    /// Panel title.
    pub title: String,
    /// x axis description.
    pub x_desc: String,
    /// y axis description with unit.
    pub y_desc: String,
    /// Category names, left to right.
    pub categories: Vec<String>,
    /// Bar sets, drawn side by side within each category.
    pub sets: Vec<BarSet>,
    /// Category to shade behind (the 0.9–1.1 range).
    pub highlight: Option<usize>,
    /// Text lines written in the top-left corner of the plot (shares).
    pub notes: Vec<(String, RGBColor)>,
}

/// Draws `p` filling `area`.
pub fn bar_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &BarPanel) -> DrawResult {
    let n = p.categories.len().max(1) as f64;
    let top = p
        .sets
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.12 } else { 1.0 };
    let top = above_notes(0.0, top, p.notes.len(), frame_height(area));
    let y_ticks = int_ticks(0.0, top, 6);
    let x_labels: Vec<(f64, String)> = p
        .categories
        .iter()
        .enumerate()
        .map(|(i, c)| (i as f64 + 0.5, c.clone()))
        .collect();
    let frame = axes(
        area,
        &p.title,
        &p.x_desc,
        &p.y_desc,
        (0.0, n),
        (0.0, top),
        &x_labels,
        &y_ticks,
    )?;
    if let Some(c) = p.highlight {
        let (a, t) = frame.map(c as f64, top);
        let (b, bot) = frame.map(c as f64 + 1.0, 0.0);
        area.draw(&Rectangle::new(
            [(a + 1, t + 1), (b - 1, bot - 1)],
            RGBColor(255, 236, 179).mix(0.6).filled(),
        ))?;
    }
    let k = p.sets.len().max(1) as f64;
    let bar = 0.8 / k;
    let t = font(LABEL_PX - 2);
    for (si, s) in p.sets.iter().enumerate() {
        for (c, &v) in s.values.iter().enumerate() {
            let x0 = c as f64 + 0.1 + si as f64 * bar;
            let (a, ytop) = frame.map(x0, v);
            let (b, bot) = frame.map(x0 + bar, 0.0);
            if v > 0.0 {
                area.draw(&Rectangle::new(
                    [(a + 2, ytop), (b - 2, bot)],
                    s.color.filled(),
                ))?;
            }
            if let Some(label) = s.labels.get(c) {
                text_at(area, label, &t, ((a + b) / 2, ytop - 14), HPos::Center)?;
            }
        }
    }
    let (l, tp, _, _) = frame.px;
    for (i, (note, color)) in p.notes.iter().enumerate() {
        let y = tp + 18 + i as i32 * (LABEL_PX as i32 + 10);
        text_at(
            area,
            note,
            &bold(LABEL_PX).color(*color),
            (l + 12, y),
            HPos::Left,
        )?;
    }
    Ok(())
}

/// Mean and population standard deviation (numpy's default, `ddof = 0`,
/// which is what the paper's "mean ± std" over 4 seeds matches: DARTS' 6.75
/// ± 0.43 skip connections is `std([7, 7, 7, 6])` with ddof 0).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
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

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
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

    #[test]
    fn bundled_fonts_parse() {
        assert!(register_font("test-regular", FontStyle::Normal, REGULAR_TTF).is_ok());
        assert!(register_font("test-bold", FontStyle::Bold, BOLD_TTF).is_ok());
    }

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
        assert_eq!(thousands(191276), "191,276");
    }

    #[test]
    fn paper_std_is_population_std() {
        let (m, s) = mean_std(&[7.0, 7.0, 7.0, 6.0]);
        assert!((m - 6.75).abs() < 1e-12);
        assert!((s - 0.433).abs() < 1e-3);
    }

    #[test]
    fn viridis_ends() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(ink_on(viridis(0.0)), WHITE);
        assert_eq!(ink_on(viridis(1.0)), BLACK);
    }
}
