//! Horizontal metrics of the bundled DejaVu Sans, read from its TTF tables
//! (`head`, `hhea`, `hmtx`, `cmap` format 4, `kern` format 0).
//!
//! Why: plotters 0.3.7's `ab_glyph` text path places every glyph at the pen
//! position without its left side bearing, so PNG text comes out unevenly
//! spaced ("fi nal"). The report therefore lays out PNG text itself, one
//! glyph per draw call at the right place, and measures strings with these
//! metrics (which also match what an SVG viewer with DejaVu Sans draws).

use std::collections::HashMap;
use std::sync::OnceLock;

/// The bundled regular face.
pub const REGULAR_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The bundled bold face.
pub const BOLD_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// Advance widths, left side bearings and kerning of one face, in font units.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Font units per em.
    pub units_per_em: f64,
    /// `ascender - descender` of `hhea`: what `ab_glyph` scales to the
    /// requested pixel size.
    pub height: f64,
    glyphs: HashMap<char, u16>,
    advance: Vec<u16>,
    lsb: Vec<i16>,
    kern: HashMap<(u16, u16), i16>,
}

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

fn i16_at(d: &[u8], at: usize) -> Option<i16> {
    u16_at(d, at).map(|v| v as i16)
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *d.get(at)?,
        *d.get(at + 1)?,
        *d.get(at + 2)?,
        *d.get(at + 3)?,
    ]))
}

impl Metrics {
    /// Parses a TrueType file; `None` if a needed table is missing or short.
    pub fn parse(d: &[u8]) -> Option<Metrics> {
        let tables = u16_at(d, 4)? as usize;
        let mut dir = HashMap::new();
        for i in 0..tables {
            let rec = 12 + 16 * i;
            let tag = d.get(rec..rec + 4)?;
            dir.insert(tag.to_vec(), u32_at(d, rec + 8)? as usize);
        }
        let table = |t: &[u8]| dir.get(t).copied();
        let head = table(b"head")?;
        let hhea = table(b"hhea")?;
        let hmtx = table(b"hmtx")?;
        let units_per_em = u16_at(d, head + 18)? as f64;
        let height = i16_at(d, hhea + 4)? as f64 - i16_at(d, hhea + 6)? as f64;
        let long = u16_at(d, hhea + 34)? as usize;
        let mut advance = Vec::with_capacity(long);
        let mut lsb = Vec::with_capacity(long);
        for g in 0..long {
            advance.push(u16_at(d, hmtx + 4 * g)?);
            lsb.push(i16_at(d, hmtx + 4 * g + 2)?);
        }
        let glyphs = cmap4(d, table(b"cmap")?)?;
        let kern = table(b"kern").map(|k| kern0(d, k)).unwrap_or_default();
        Some(Metrics {
            units_per_em,
            height,
            glyphs,
            advance,
            lsb,
            kern,
        })
    }

    fn glyph(&self, c: char) -> u16 {
        self.glyphs.get(&c).copied().unwrap_or(0)
    }

    fn advance_of(&self, g: u16) -> f64 {
        let g = (g as usize).min(self.advance.len().saturating_sub(1));
        self.advance.get(g).copied().unwrap_or(0) as f64
    }

    /// Left side bearing of `c` in font units (glyphs past the long metrics
    /// share the last one's, which is fine for layout).
    pub fn lsb(&self, c: char) -> f64 {
        let g = (self.glyph(c) as usize).min(self.lsb.len().saturating_sub(1));
        self.lsb.get(g).copied().unwrap_or(0) as f64
    }

    /// `(pen offset, left side bearing)` of every char of `text` and the
    /// total advance, all in font units, with pair kerning.
    pub fn layout(&self, text: &str) -> (Vec<(char, f64, f64)>, f64) {
        let mut pen = 0.0;
        let mut prev: Option<u16> = None;
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            let g = self.glyph(c);
            if let Some(p) = prev {
                pen += self.kern.get(&(p, g)).copied().unwrap_or(0) as f64;
            }
            out.push((c, pen, self.lsb(c)));
            pen += self.advance_of(g);
            prev = Some(g);
        }
        (out, pen)
    }

    /// Width of `text` at an em size of `em_px` pixels.
    pub fn width(&self, text: &str, em_px: f64) -> f64 {
        self.layout(text).1 * em_px / self.units_per_em
    }
}

/// Char → glyph of the Windows Unicode BMP subtable (format 4).
fn cmap4(d: &[u8], cmap: usize) -> Option<HashMap<char, u16>> {
    let n = u16_at(d, cmap + 2)? as usize;
    let sub = (0..n).find_map(|i| {
        let rec = cmap + 4 + 8 * i;
        let (platform, encoding) = (u16_at(d, rec)?, u16_at(d, rec + 2)?);
        let at = cmap + u32_at(d, rec + 4)? as usize;
        ((platform == 3 && encoding == 1 || platform == 0 && encoding == 3) && u16_at(d, at)? == 4)
            .then_some(at)
    })?;
    let segs = u16_at(d, sub + 6)? as usize / 2;
    let ends = sub + 14;
    let starts = ends + 2 * segs + 2;
    let deltas = starts + 2 * segs;
    let offsets = deltas + 2 * segs;
    let mut map = HashMap::new();
    for s in 0..segs {
        let (end, start) = (u16_at(d, ends + 2 * s)?, u16_at(d, starts + 2 * s)?);
        let delta = u16_at(d, deltas + 2 * s)?;
        let range = u16_at(d, offsets + 2 * s)? as usize;
        if start == 0xFFFF || end < start {
            continue;
        }
        for code in start..=end {
            let g = if range == 0 {
                code.wrapping_add(delta)
            } else {
                let at = offsets + 2 * s + range + 2 * (code - start) as usize;
                match u16_at(d, at)? {
                    0 => 0,
                    g => g.wrapping_add(delta),
                }
            };
            if let Some(c) = char::from_u32(code as u32) {
                if g != 0 {
                    map.insert(c, g);
                }
            }
        }
    }
    Some(map)
}

/// Pair kerning of the first horizontal format-0 subtable of `kern`.
fn kern0(d: &[u8], kern: usize) -> HashMap<(u16, u16), i16> {
    let mut map = HashMap::new();
    let Some(n) = u16_at(d, kern + 2) else {
        return map;
    };
    let mut at = kern + 4;
    for _ in 0..n {
        let (Some(len), Some(coverage)) = (u16_at(d, at + 2), u16_at(d, at + 4)) else {
            break;
        };
        // Format 0 (high byte), horizontal (bit 0), not cross-stream (bit 2).
        if coverage >> 8 == 0 && coverage & 1 == 1 && coverage & 4 == 0 {
            let pairs = u16_at(d, at + 6).unwrap_or(0) as usize;
            for p in 0..pairs {
                let rec = at + 14 + 6 * p;
                if let (Some(l), Some(r), Some(v)) =
                    (u16_at(d, rec), u16_at(d, rec + 2), i16_at(d, rec + 4))
                {
                    map.insert((l, r), v);
                }
            }
            break;
        }
        at += len as usize;
    }
    map
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
        Metrics::parse(bytes).expect("the bundled DejaVu Sans has head, hhea, hmtx and cmap tables")
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
        for c in "±≥–—×·μ%()[],.:;0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_|~"
            .chars()
        {
            assert!(m.glyph(c) != 0, "{c}");
        }
    }
}
