//! The widget kit the figures are drawn with: text in the bundled font
//! ([`text`], [`font`]), axes and ticks ([`axes`]), legends and series
//! styles ([`legend`]), line charts ([`lines`]), heat maps ([`heatmap`]),
//! bar charts ([`bars`]) and cells as graphs ([`dag`]), plus the palette
//! and the one function that writes a figure as PNG and SVG. Figures compute their numbers elsewhere and only
//! arrange these widgets; nothing here reads the database or does
//! statistics.
//!
//! Why panels are laid out here in pixels rather than with plotters'
//! `ChartBuilder`: a heat map needs one label at the centre of every cell
//! (the grid's actual L and M values, the edge names), which plotters' tick
//! algorithm does not give; and plotters 0.3.7 draws PNG text without the
//! glyphs' side bearings, so every text of the figures goes through
//! [`text::text_at`], which places PNG glyphs one by one and leaves SVG text
//! to the viewer. plotters still does the rasterising, anti-aliasing and
//! file encoding.

pub mod axes;
pub mod bars;
pub mod dag;
pub mod font;
pub mod heatmap;
pub mod legend;
pub mod lines;
pub mod strokes;
pub mod text;

use std::cell::Cell;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::config::Method;

pub use axes::padded;
pub use bars::{BarPanel, BarSet};
pub use heatmap::HeatMap;
pub use legend::{LegendEntry, SeriesStyles, Swatch};
pub use lines::{LinePanel, Series, StackedColumns};
pub use text::thousands;

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
pub fn method_color(method: Option<Method>) -> RGBColor {
    match method {
        Some(Method::Ddsas) => PALETTE[0],
        Some(Method::Darts) => PALETTE[1],
        Some(Method::Gdas) => PALETTE[2],
        None => PALETTE[7],
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

/// Marker of a method's line (0 circle, 1 triangle, 2 square), so that
/// lines differ by shape as well as colour.
pub fn method_marker(method: Option<Method>) -> usize {
    match method {
        Some(Method::Ddsas) => 0,
        Some(Method::Darts) => 1,
        Some(Method::Gdas) => 2,
        None => 3,
    }
}

/// Which file a figure is being drawn into: text and thick lines are laid
/// out differently.
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

/// The file being drawn into now (set by [`save`]).
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

/// A region of the canvas being drawn on, in pixels from its top left.
pub type Area<DB> = DrawingArea<DB, Shift>;

/// A figure that can draw itself on any plotters backend, so that the PNG
/// and the SVG come from the same code.
pub trait Plot {
    /// Canvas size in pixels (width, height).
    fn size(&self) -> (u32, u32);
    /// Draws the whole figure on `root` (already filled white).
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> DrawResult;
}

/// Writes `plot` as `dir/stem.png` and `dir/stem.svg`; returns both paths.
pub fn save<P: Plot>(plot: &P, dir: &Path, stem: &str) -> Result<Vec<PathBuf>, DrawError> {
    text::register_fonts();
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
    std::fs::write(&svg, svg_text(plot)?)
        .map_err(|e| DrawError(format!("cannot write {}: {e}", svg.display())))?;
    Ok(vec![png, svg])
}

/// `plot` as SVG text: what [`save`] writes to the `.svg` file, and what
/// `ddsas serve` sends.
pub fn svg_text<P: Plot>(plot: &P) -> Result<String, DrawError> {
    text::register_fonts();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, plot.size()).into_drawing_area();
        root.fill(&WHITE)?;
        plot.draw(&root)?;
        root.present()?;
    }
    Ok(out)
}
