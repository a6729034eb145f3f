//! Legends and the styles that tell a figure's series apart: a centred
//! legend row (wrapped when wide) of line or box swatches, and
//! [`SeriesStyles`], which keeps a method's colour and marker in every
//! figure unless one panel shows several settings of a method.

use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use super::strokes::{draw_marker, polyline};
use super::text::{font, measure, text_at, LABEL_PX};
use super::{method_color, method_marker, Area, DrawResult, SERIES_PALETTE};
use crate::config::Method;
use crate::report::data::method_rank;
use crate::report::labels::method_label;

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
    series: Vec<(Option<Method>, String)>,
}

impl SeriesStyles {
    /// Styles for `panels`, each the `(method, label)` of its series.
    pub fn new(panels: &[Vec<(Option<Method>, String)>]) -> SeriesStyles {
        let by_method = panels.iter().all(|p| {
            let mut methods: Vec<Option<Method>> = p.iter().map(|(m, _)| *m).collect();
            let n = methods.len();
            methods.sort_unstable();
            methods.dedup();
            methods.len() == n
        });
        let mut series: Vec<(Option<Method>, String)> = Vec::new();
        for s in panels.iter().flatten() {
            let key = if by_method {
                (s.0, method_label(s.0).to_string())
            } else {
                s.clone()
            };
            if !series.contains(&key) {
                series.push(key);
            }
        }
        if by_method {
            series.sort_by_key(|(m, _)| method_rank(*m));
        }
        SeriesStyles { by_method, series }
    }

    /// Colour and marker of the series of `method` labelled `label`.
    pub fn style(&self, method: Option<Method>, label: &str) -> (RGBColor, usize) {
        if self.by_method {
            return (method_color(method), method_marker(method));
        }
        let i = self
            .series
            .iter()
            .position(|(m, l)| *m == method && l == label)
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
                let (color, marker) = self.style(*method, label);
                LegendEntry {
                    label: label.clone(),
                    color,
                    swatch: Swatch::Line(if markers { marker } else { 3 }),
                }
            })
            .collect()
    }
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
pub fn legend<DB: DrawingBackend>(area: &Area<DB>, entries: &[LegendEntry]) -> DrawResult {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(panels: &[&[(&str, &str)]]) -> Vec<Vec<(Option<Method>, String)>> {
        panels
            .iter()
            .map(|p| {
                p.iter()
                    .map(|(m, l)| (Method::parse(m), l.to_string()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn one_setting_per_method_keeps_the_method_styles() {
        let styles = SeriesStyles::new(&names(&[&[("ddsas", "DDSAS"), ("darts", "DARTS")]]));
        let ddsas = Some(Method::Ddsas);
        assert_eq!(styles.style(ddsas, "DDSAS"), (method_color(ddsas), 0));
        let labels: Vec<String> = styles.legend(true).into_iter().map(|e| e.label).collect();
        assert_eq!(labels, ["DARTS", "DDSAS"]);
    }

    #[test]
    fn two_settings_of_a_method_get_a_colour_each() {
        let styles = SeriesStyles::new(&names(&[
            &[("ddsas", "DDSAS M=12"), ("ddsas", "DDSAS M=24")],
            &[("ddsas", "DDSAS M=24")],
        ]));
        let a = styles.style(Some(Method::Ddsas), "DDSAS M=12");
        let b = styles.style(Some(Method::Ddsas), "DDSAS M=24");
        assert_ne!(a.0, b.0);
        assert_eq!(a.1, b.1);
        assert_eq!(styles.legend(false).len(), 2);
    }
}
