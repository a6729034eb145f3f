//! Grouped bar charts (Fig. 12 b): categories on x, one bar per set in
//! each, the count written above every bar, a shaded category, and notes
//! in the top-left corner.

use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use super::axes::{above_notes, axes, frame_height, int_ticks, Frame, Labels, Ticks};
use super::text::{bold, font, text_at, LABEL_PX};
use super::{Area, DrawResult};

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
    /// Title and what x and y are.
    pub labels: Labels,
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
pub fn bar_panel<DB: DrawingBackend>(area: &Area<DB>, p: &BarPanel) -> DrawResult {
    let n = p.categories.len().max(1) as f64;
    let top = p
        .sets
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.12 } else { 1.0 };
    let top = above_notes(0.0, top, p.notes.len(), frame_height(area));
    let ticks = Ticks {
        x: p.categories
            .iter()
            .enumerate()
            .map(|(i, c)| (i as f64 + 0.5, c.clone()))
            .collect(),
        y: int_ticks(0.0, top, 6),
    };
    let frame = axes(area, &p.labels, (0.0, n), (0.0, top), &ticks)?;
    if let Some(c) = p.highlight {
        let (a, t) = frame.map(c as f64, top);
        let (b, bot) = frame.map(c as f64 + 1.0, 0.0);
        area.draw(&Rectangle::new(
            [(a + 1, t + 1), (b - 1, bot - 1)],
            RGBColor(255, 236, 179).mix(0.6).filled(),
        ))?;
    }
    bars(area, &frame, &p.sets)?;
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

/// The bars of every set side by side in their categories, each with its
/// label above.
fn bars<DB: DrawingBackend>(area: &Area<DB>, frame: &Frame, sets: &[BarSet]) -> DrawResult {
    let bar = 0.8 / sets.len().max(1) as f64;
    let t = font(LABEL_PX - 2);
    for (si, s) in sets.iter().enumerate() {
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
    Ok(())
}
