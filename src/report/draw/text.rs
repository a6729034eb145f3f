//! Text in the bundled DejaVu Sans: sizes, measuring, fitting into a width,
//! and drawing horizontal and vertical text, figure titles and panel
//! titles, the same way on every backend.
//!
//! Why PNG text is placed glyph by glyph: plotters 0.3.7 draws a PNG string
//! without the glyphs' side bearings; placing each glyph where the font's
//! metrics ([`super::font`]) put it gives evenly spaced text that is as
//! wide as [`measure`] says. SVG text is one `<text>` per string, set by the
//! viewer.

use std::sync::Once;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontFamily, FontStyle, FontTransform};

use super::font::{metrics, BOLD_TTF, REGULAR_TTF};
use super::{target, Area, DrawError, DrawResult, Target, MUTED};

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
/// Height of a panel's title strip.
pub const PANEL_TITLE_H: i32 = PANEL_TITLE_PX as i32 + 22;

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

/// Width in pixels of the widest of `texts` set in `t` (`None` for none).
pub fn widest<S: AsRef<str>>(texts: impl IntoIterator<Item = S>, t: &Txt) -> Option<i32> {
    texts.into_iter().map(|s| measure(s.as_ref(), t)).max()
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

/// `text` broken into lines no wider than `max_px`, after a `,` or a
/// space where it can be (a long genotype text breaks between its pairs);
/// a piece wider than a line on its own is shortened with "…".
pub fn wrap(text: &str, t: &Txt, max_px: i32) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::new();
    let mut piece = String::new();
    for c in text.chars() {
        piece.push(c);
        if c == ',' || c == ' ' {
            pieces.push(std::mem::take(&mut piece));
        }
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for p in pieces {
        let longer = line.clone() + &p;
        if !line.is_empty() && measure(longer.trim_end(), t) > max_px {
            lines.push(line.trim_end().to_string());
            line = p;
        } else {
            line = longer;
        }
    }
    if !line.trim().is_empty() || lines.is_empty() {
        lines.push(line.trim_end().to_string());
    }
    lines.into_iter().map(|l| fit(&l, t, max_px)).collect()
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

/// The plotters style of `t` at the size the current target needs for an
/// em of `t.px` (ab_glyph scales to ascender − descender; the SVG backend
/// writes `size / 1.24` as font-size).
fn style<'a>(t: &Txt, color: &'a RGBColor) -> TextStyle<'a> {
    let nominal = match target() {
        Target::Png => nominal_px(t),
        Target::Svg => t.px as f64 * 1.24,
    };
    let weight = if t.bold {
        FontStyle::Bold
    } else {
        FontStyle::Normal
    };
    FontDesc::new(FontFamily::Name(FONT), nominal, weight).color(color)
}

/// The pixel size plotters is asked for so that an em is `t.px` pixels.
fn nominal_px(t: &Txt) -> f64 {
    let m = metrics(t.bold);
    t.px as f64 * m.height / m.units_per_em
}

/// Where the baseline sits below the vertical centre of a line, in ems
/// (half the x-height, as the SVG's `dy = 0.5ex`).
const BASELINE_EM: f64 = 0.28;

/// The top (or, rotated, the left) pixel of a glyph box whose line is
/// centred on `centre`.
fn glyph_top(centre: i32, t: &Txt) -> i32 {
    (centre as f64 + BASELINE_EM * t.px as f64 - nominal_px(t) / 2.0).round() as i32
}

/// PNG layout of `text` in `t`: each visible char with its pen offset in
/// pixels and its left side bearing in whole pixels, and the text's length.
fn glyph_run(text: &str, t: &Txt) -> (Vec<(char, f64, i32)>, f64) {
    let m = metrics(t.bold);
    let scale = t.px as f64 / m.units_per_em;
    let (glyphs, total) = m.layout(text);
    let glyphs = glyphs
        .into_iter()
        .filter(|(c, _, _)| !c.is_whitespace())
        .map(|(c, pen, lsb)| (c, pen * scale, (lsb * scale).floor() as i32))
        .collect();
    (glyphs, total * scale)
}

/// Which way a text runs.
#[derive(Clone, Copy)]
enum Run {
    /// Left to right, anchored by its left, centre or right.
    Across(HPos),
    /// Upwards (rotated a quarter turn counter-clockwise), centred.
    Up,
}

/// Draws `text` vertically centred on `y`, anchored at `x` by `h`.
pub fn text_at<DB: DrawingBackend>(
    area: &Area<DB>,
    text: &str,
    t: &Txt,
    at: (i32, i32),
    h: HPos,
) -> DrawResult {
    place(area, text, t, at, Run::Across(h))
}

/// Draws an axis description (regular, [`DESC_PX`]) rotated a quarter
/// turn counter-clockwise (reading upwards), centred at `at`, made smaller
/// or shortened to be at most `room` pixels long.
pub fn upright<DB: DrawingBackend>(
    area: &Area<DB>,
    text: &str,
    at: (i32, i32),
    room: i32,
) -> DrawResult {
    let (text, t) = shrink_to_fit(text, &font(DESC_PX), room);
    place(area, &text, &t, at, Run::Up)
}

/// Draws `text` centred on `(x, y)` across it, or running up through it:
/// one `<text>` for SVG, glyph by glyph for PNG.
fn place<DB: DrawingBackend>(
    area: &Area<DB>,
    text: &str,
    t: &Txt,
    (x, y): (i32, i32),
    run: Run,
) -> DrawResult {
    let color = t.color;
    let style = match run {
        Run::Across(_) => style(t, &color),
        Run::Up => style(t, &color).transform(FontTransform::Rotate270),
    };
    if target() == Target::Svg {
        let h = match run {
            Run::Across(h) => h,
            Run::Up => HPos::Center,
        };
        area.draw_text(text, &style.pos(Pos::new(h, VPos::Center)), (x, y))?;
        return Ok(());
    }
    let (glyphs, length) = glyph_run(text, t);
    // Rotate270 maps glyph (gx, gy) to (gy, -gx): upwards, the baseline is
    // a column and the pen moves up.
    let at = |pen: f64, lsb: i32| match run {
        Run::Across(h) => {
            let start = x as f64
                - match h {
                    HPos::Left => 0.0,
                    HPos::Center => length / 2.0,
                    HPos::Right => length,
                };
            ((start + pen).round() as i32 + lsb, glyph_top(y, t))
        }
        Run::Up => {
            let start = y as f64 + length / 2.0;
            (glyph_top(x, t), (start - pen).round() as i32 - lsb)
        }
    };
    let style = style.pos(Pos::new(HPos::Left, VPos::Top));
    let mut buf = [0u8; 4];
    for (c, pen, lsb) in glyphs {
        area.draw_text(c.encode_utf8(&mut buf), &style, at(pen, lsb))?;
    }
    Ok(())
}

/// Draws the figure title at the top of `root`; returns the area below it.
pub fn title<DB: DrawingBackend>(root: &Area<DB>, text: &str) -> Result<Area<DB>, DrawError> {
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
    root: &Area<DB>,
    text: &str,
    sub: &str,
) -> Result<Area<DB>, DrawError> {
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

/// Draws a panel's title centred in the top [`PANEL_TITLE_H`] pixels of
/// `area`, smaller or shortened to fit its width.
pub fn panel_title<DB: DrawingBackend>(area: &Area<DB>, title: &str) -> DrawResult {
    let w = area.dim_in_pixel().0 as i32;
    let (text, t) = shrink_to_fit(title, &bold(PANEL_TITLE_PX), w - 10);
    text_at(area, &text, &t, (w / 2, PANEL_TITLE_H / 2), HPos::Center)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(191276), "191,276");
        assert_eq!(thousands(-1234), "-1,234");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn wrapping_breaks_after_commas_and_spaces() {
        let t = font(20);
        let text = "normal=[(sep_conv_3x3,0),(sep_conv_3x3,1),(skip_connect,0),(dil_conv_3x3,2)]";
        let lines = wrap(text, &t, measure(text, &t) * 6 / 10);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines.concat(), text);
        assert!(lines[0].ends_with(','));
        assert_eq!(wrap("short", &t, 500), ["short"]);
    }

    #[test]
    fn fitting_shrinks_then_shortens() {
        let t = font(20);
        let wide = "a long panel title that will not fit";
        let (text, small) = shrink_to_fit(wide, &t, measure(wide, &t) - 10);
        assert_eq!(text, wide);
        assert!(small.px < 20);
        let short = fit(wide, &t, 100);
        assert!(short.ends_with('…') && measure(&short, &t) <= 100);
    }
}
