//! The strokes lines, legends and cells share: a polyline of any width
//! and the series markers, in a file of their own so that the widgets
//! drawing with them need not import each other.

use plotters::prelude::*;

use super::{target, Area, DrawResult, Target};

/// Draws a polyline `width` pixels wide. plotters widens PNG paths by a
/// vertical offset, which makes steep segments thin; here each PNG segment
/// is a quadrilateral offset along its normal, with round joins. SVG paths
/// are left to the viewer.
pub fn polyline<DB: DrawingBackend>(
    area: &Area<DB>,
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
    area: &Area<DB>,
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
