//! A cell drawn as a graph (`ddsas report cells`, the appendix's Fig. 11):
//! node boxes, op edges as arrows coloured by op family with their op name
//! on a white label, the output's concatenation in grey, a legend of the
//! families shown, and lines of notes under it. Where everything goes is
//! decided beforehand ([`crate::report::cell_layout`]); this only draws.

use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use super::legend::{legend, legend_height, LegendEntry, Swatch};
use super::strokes::polyline;
use super::text::measure;
use super::text::{bold, fit, font, text_at, title, wrap, LABEL_PX, TITLE_PX};
use super::{Area, DrawResult, Plot, MUTED, PALETTE};
use crate::report::cell_layout::{node_parts, CellLayout, NodeKind, Rect};
use crate::report::cell_layout::{LABEL_PX as OP_PX, NODE_PX, SUB_PX};

/// A family of ops, which shares a colour: the picture shows at a glance
/// how much of a cell is convolution, pooling or skips (the DARTS failure
/// mode DDSAS addresses is a cell of skips).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// `sep_conv_3x3`, `sep_conv_5x5`.
    Sep,
    /// `dil_conv_3x3`, `dil_conv_5x5`.
    Dil,
    /// NB201's `nor_conv_1x1`, `nor_conv_3x3` (and any other conv).
    Conv,
    /// `max_pool_3x3`, `avg_pool_3x3`.
    Pool,
    /// `skip_connect`.
    Skip,
    /// An op of no family above.
    Other,
}

impl Family {
    /// The family of op `op`.
    pub fn of(op: &str) -> Family {
        if op.starts_with("sep_conv") {
            Family::Sep
        } else if op.starts_with("dil_conv") {
            Family::Dil
        } else if op.contains("conv") {
            Family::Conv
        } else if op.contains("pool") {
            Family::Pool
        } else if op == "skip_connect" {
            Family::Skip
        } else {
            Family::Other
        }
    }

    /// Its colour (Okabe–Ito, told apart with colour-vision deficiencies).
    pub fn color(self) -> RGBColor {
        match self {
            Family::Sep => PALETTE[0],
            Family::Dil => PALETTE[4],
            Family::Conv => PALETTE[1],
            Family::Pool => PALETTE[2],
            Family::Skip => PALETTE[3],
            Family::Other => PALETTE[7],
        }
    }

    /// Its legend text.
    pub fn label(self) -> &'static str {
        match self {
            Family::Sep => "separable conv",
            Family::Dil => "dilated conv",
            Family::Conv => "conv",
            Family::Pool => "pooling",
            Family::Skip => "skip (identity)",
            Family::Other => "other",
        }
    }
}

/// Grey of the concatenation edges into c_{k}.
pub const CONCAT: RGBColor = RGBColor(165, 165, 165);
/// Fill of input, intermediate and output node boxes.
const FILL: [RGBColor; 3] = [
    RGBColor(214, 236, 214),
    RGBColor(214, 230, 247),
    RGBColor(252, 236, 190),
];
/// Height of the title strip.
const TITLE_H: i32 = TITLE_PX as i32 + 30;
/// Height of a subtitle line.
const SUB_LINE: i32 = LABEL_PX as i32 + 10;
/// Margin left and right of the graph.
pub const SIDE: i32 = 30;
/// Em size and line height of the notes under the legend.
const NOTE_PX: u32 = 17;
const NOTE_LINE: i32 = NOTE_PX as i32 + 10;

/// One cell picture.
#[derive(Debug, Clone)]
pub struct CellPicture {
    /// Title (which cell of which run).
    pub title: String,
    /// Subtitle lines (dataset, setting, seed; metric and place).
    pub subtitle: Vec<String>,
    /// The cell, laid out in an area `2 * SIDE` narrower than the canvas.
    pub layout: CellLayout,
    /// Notes under the legend (the genotype text, edges left out).
    pub notes: Vec<String>,
}

impl CellPicture {
    /// The legend: each op family drawn, in a fixed order, then the
    /// concatenation if the cell has one.
    pub fn legend(&self) -> Vec<LegendEntry> {
        let mut families: Vec<Family> = self
            .layout
            .edges
            .iter()
            .filter_map(|e| e.op.as_deref().map(Family::of))
            .collect();
        families.sort_unstable();
        families.dedup();
        let mut entries: Vec<LegendEntry> = families
            .into_iter()
            .map(|f| LegendEntry {
                label: f.label().into(),
                color: f.color(),
                swatch: Swatch::Line(3),
            })
            .collect();
        if self.layout.edges.iter().any(|e| e.op.is_none()) {
            entries.push(LegendEntry {
                label: "concatenated into c_{k}".into(),
                color: CONCAT,
                swatch: Swatch::Line(3),
            });
        }
        entries
    }

    /// Canvas width.
    fn width(&self) -> i32 {
        self.layout.size.0.round() as i32 + 2 * SIDE
    }

    /// The notes broken into lines that fit the canvas.
    fn note_lines(&self) -> Vec<String> {
        let t = font(NOTE_PX);
        self.notes
            .iter()
            .flat_map(|n| wrap(n, &t, self.width() - 40))
            .collect()
    }

    /// Height of the legend strip.
    fn legend_h(&self) -> i32 {
        legend_height(&self.legend(), self.width()) + 6
    }
}

impl Plot for CellPicture {
    fn size(&self) -> (u32, u32) {
        let h = TITLE_H
            + SUB_LINE * self.subtitle.len() as i32
            + 16
            + self.layout.size.1.round() as i32
            + 10
            + self.legend_h()
            + NOTE_LINE * self.note_lines().len() as i32
            + 14;
        (self.width() as u32, h as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> DrawResult {
        let mut rest = title(root, &self.title)?;
        let w = self.width();
        let muted = font(LABEL_PX).color(MUTED);
        for line in &self.subtitle {
            let (strip, below) = rest.split_vertically(SUB_LINE);
            let at = (w / 2, SUB_LINE / 2 - 2);
            text_at(&strip, &fit(line, &muted, w - 20), &muted, at, HPos::Center)?;
            rest = below;
        }
        let (_, rest) = rest.split_vertically(16);
        let (graph, rest) = rest.split_vertically(self.layout.size.1.round() as i32);
        let graph = graph.margin(0, 0, SIDE, SIDE);
        draw_cell(&graph, &self.layout)?;
        let (_, rest) = rest.split_vertically(10);
        let (strip, notes) = rest.split_vertically(self.legend_h());
        legend(&strip, &self.legend())?;
        let t = font(NOTE_PX).color(MUTED);
        for (i, line) in self.note_lines().iter().enumerate() {
            let y = NOTE_LINE * i as i32 + NOTE_LINE / 2;
            text_at(&notes, line, &t, (w / 2, y), HPos::Center)?;
        }
        Ok(())
    }
}

fn px(p: (f64, f64)) -> (i32, i32) {
    (p.0.round() as i32, p.1.round() as i32)
}

/// Draws the laid-out cell: concatenation edges, op edges with
/// arrowheads, node boxes, then the labels on top.
pub fn draw_cell<DB: DrawingBackend>(area: &Area<DB>, l: &CellLayout) -> DrawResult {
    for e in l.edges.iter().filter(|e| e.op.is_none()) {
        arrow(area, e.start, e.end, CONCAT, 2)?;
    }
    for e in &l.edges {
        if let Some(op) = &e.op {
            arrow(area, e.start, e.end, Family::of(op).color(), 3)?;
        }
    }
    for n in &l.nodes {
        let fill = FILL[match n.kind {
            NodeKind::Input => 0,
            NodeKind::Intermediate => 1,
            NodeKind::Output => 2,
        }];
        boxed(area, &n.rect, fill, RGBColor(60, 60, 60), 2)?;
        node_name(area, &n.name, px(n.rect.center))?;
    }
    for e in &l.edges {
        if let (Some(op), Some(label)) = (&e.op, &e.label) {
            boxed(area, label, WHITE, Family::of(op).color(), 2)?;
            text_at(area, op, &font(OP_PX), px(label.center), HPos::Center)?;
        }
    }
    Ok(())
}

/// A node's name centred on `(x, y)`, with its subscript smaller and
/// lower.
fn node_name<DB: DrawingBackend>(area: &Area<DB>, name: &str, (x, y): (i32, i32)) -> DrawResult {
    let (main, sub) = node_parts(name);
    let (big, small) = (bold(NODE_PX), bold(SUB_PX));
    let Some(sub) = sub else {
        return text_at(area, &main, &big, (x, y), HPos::Center);
    };
    let (wm, ws) = (measure(&main, &big), measure(&sub, &small));
    let left = x - (wm + 2 + ws) / 2;
    text_at(area, &main, &big, (left, y - 3), HPos::Left)?;
    text_at(area, &sub, &small, (left + wm + 2, y + 5), HPos::Left)
}

/// A filled box with a border of `width` pixels.
fn boxed<DB: DrawingBackend>(
    area: &Area<DB>,
    r: &Rect,
    fill: RGBColor,
    border: RGBColor,
    width: u32,
) -> DrawResult {
    let (l, t, rr, b) = r.bounds();
    let corners = [px((l, t)), px((rr, b))];
    area.draw(&Rectangle::new(corners, fill.filled()))?;
    area.draw(&Rectangle::new(corners, border.stroke_width(width)))?;
    Ok(())
}

/// A straight arrow from `a` to its tip `b`.
fn arrow<DB: DrawingBackend>(
    area: &Area<DB>,
    a: (f64, f64),
    b: (f64, f64),
    color: RGBColor,
    width: u32,
) -> DrawResult {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt().max(1e-9);
    let (ux, uy) = (dx / len, dy / len);
    let (head, half) = (14.0 + width as f64, 5.0 + width as f64);
    let base = (b.0 - ux * head, b.1 - uy * head);
    polyline(area, &[px(a), px(base)], color.to_rgba(), width)?;
    area.draw(&Polygon::new(
        vec![
            px(b),
            px((base.0 - uy * half, base.1 + ux * half)),
            px((base.0 + uy * half, base.1 - ux * half)),
        ],
        color.filled(),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_of_both_spaces_has_a_family_and_families_differ_in_colour() {
        for op in crate::arch::space::DARTS_OPS
            .iter()
            .chain(&crate::arch::space::NB201_OPS)
            .filter(|o| **o != "none")
        {
            assert_ne!(Family::of(op), Family::Other, "{op}");
        }
        let all = [
            Family::Sep,
            Family::Dil,
            Family::Conv,
            Family::Pool,
            Family::Skip,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.color(), b.color());
            }
        }
    }
}
