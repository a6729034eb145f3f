//! Horizontal metrics of the bundled DejaVu Sans (advances, left side
//! bearings, pair kerning), read with `ab_glyph`, the font library plotters
//! itself rasterises with.
//!
//! Why: plotters 0.3.7's `ab_glyph` text path places every glyph at the pen
//! position without its left side bearing, so PNG text comes out unevenly
//! spaced ("fi nal"). The report therefore lays out PNG text itself, one
//! glyph per draw call at the right place (see [`super::text`]), and
//! measures strings with these metrics (which also match what an SVG viewer
//! with DejaVu Sans draws).

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef};

/// The bundled regular face.
pub const REGULAR_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
/// The bundled bold face.
pub const BOLD_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// One face and the two numbers every layout scales by, in font units.
#[derive(Debug)]
pub struct Metrics {
    face: FontRef<'static>,
    /// Font units per em.
    pub units_per_em: f64,
    /// Ascent − descent: what plotters (through `ab_glyph`) scales to the
    /// pixel size it is asked for.
    pub height: f64,
}

impl Metrics {
    /// Reads a TrueType file; `None` if `ab_glyph` cannot parse it.
    pub fn parse(bytes: &'static [u8]) -> Option<Metrics> {
        let face = FontRef::try_from_slice(bytes).ok()?;
        Some(Metrics {
            units_per_em: f64::from(face.units_per_em()?),
            height: f64::from(face.height_unscaled()),
            face,
        })
    }

    /// Whether the face has a glyph for `c` (else it draws the "missing"
    /// box).
    pub fn has_glyph(&self, c: char) -> bool {
        self.face.glyph_id(c).0 != 0
    }

    /// Left side bearing of `c` in font units.
    pub fn lsb(&self, c: char) -> f64 {
        f64::from(self.face.h_side_bearing_unscaled(self.face.glyph_id(c)))
    }

    /// `(pen offset, left side bearing)` of every char of `text` and the
    /// total advance, all in font units, with pair kerning.
    pub fn layout(&self, text: &str) -> (Vec<(char, f64, f64)>, f64) {
        let mut pen = 0.0;
        let mut prev = None;
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            let g = self.face.glyph_id(c);
            if let Some(p) = prev {
                pen += f64::from(self.face.kern_unscaled(p, g));
            }
            out.push((c, pen, f64::from(self.face.h_side_bearing_unscaled(g))));
            pen += f64::from(self.face.h_advance_unscaled(g));
            prev = Some(g);
        }
        (out, pen)
    }

    /// Width of `text` at an em size of `em_px` pixels.
    pub fn width(&self, text: &str, em_px: f64) -> f64 {
        self.layout(text).1 * em_px / self.units_per_em
    }
}

static REGULAR: OnceLock<Metrics> = OnceLock::new();
static BOLD: OnceLock<Metrics> = OnceLock::new();

/// Metrics of the bundled regular or bold face.
pub fn metrics(bold: bool) -> &'static Metrics {
    let (cell, bytes) = if bold {
        (&BOLD, BOLD_TTF)
    } else {
        (&REGULAR, REGULAR_TTF)
    };
    cell.get_or_init(|| {
        Metrics::parse(bytes).expect("the bundled DejaVu Sans is a font ab_glyph reads")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dejavu_metrics() {
        let m = metrics(false);
        assert_eq!(m.units_per_em, 2048.0);
        assert_eq!(m.height, 1901.0 + 483.0);
        // 'l' has a visible left bearing, space has an advance but no ink.
        assert!(m.lsb('l') > 100.0);
        assert!(m.width(" ", 20.0) > 5.0);
        // Bold is wider than regular.
        assert!(metrics(true).width("accuracy", 20.0) > m.width("accuracy", 20.0));
        // Kerning pulls "AV" together.
        assert!(m.width("AV", 20.0) < m.width("A", 20.0) + m.width("V", 20.0));
        // Every char the figures use has a glyph.
        for c in
            "±≥–—×·μ%()[],.:;0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_|~Σ²…"
                .chars()
        {
            assert!(m.has_glyph(c), "{c}");
        }
    }

    #[test]
    fn bundled_fonts_register_with_plotters() {
        use plotters::style::{register_font, FontStyle};
        assert!(register_font("test-regular", FontStyle::Normal, REGULAR_TTF).is_ok());
        assert!(register_font("test-bold", FontStyle::Bold, BOLD_TTF).is_ok());
    }
}
