//! What Figs. 8 and 10 share: a column per (dataset, space) of two stacked
//! line panels, a line (mean ± std over runs) per setting in each — above,
//! a quantity of the search (skip count, cosine distance), below, the
//! accuracy of the same epochs or steps — and one style per setting across
//! columns.

use std::collections::BTreeMap;

use plotters::style::RGBColor;
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

use super::data::{panel_settings, Group, SeriesInfo, Setting};
use super::draw::axes::Labels;
use super::draw::{self, LegendEntry, LinePanel, SeriesStyles, StackedColumns, Swatch};
use super::records::AccSource;
use super::stats::{band_extent, Point};
use super::Heading;
use crate::config::Method;
use crate::store::ReportRun;

/// Series of at most this many epochs are drawn with markers.
pub const MARKERS_UP_TO: usize = 60;
/// Sidecars list every point of a line up to this many.
const SIDECAR_POINTS: usize = 5000;

/// The settings of one (dataset, space): a column of the figure.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    /// Dataset and space.
    #[serde(flatten)]
    pub group: Group,
    /// `step` or `epoch` where a figure draws either (Fig. 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per: Option<&'static str>,
    /// Which accuracy the lower panel shows.
    #[serde(rename = "accuracy_source")]
    pub source: AccSource,
    /// One per setting, in [`super::data::settings`] order (`methods` in
    /// the sidecar, the name it had when a series was a method).
    #[serde(rename = "methods")]
    pub series: Vec<Series>,
}

/// The two lines of one setting: mean ± std per x over its runs.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Which setting and runs.
    #[serde(flatten)]
    pub info: SeriesInfo,
    /// The lower panel's line: accuracy (%) of the same epochs or steps.
    pub accuracy: Line,
    /// The upper panel's line, under its sidecar key.
    #[serde(flatten)]
    pub upper: Upper,
}

/// The upper line of a setting, by what it is (its key in the sidecar).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Upper {
    /// Fig. 8: `skip_connect` kept in the normal (or only) cell, per epoch.
    SkipNormal(Line),
    /// Fig. 10: cosine distance to the previous step or epoch.
    CosineDistance(Line),
}

impl Series {
    /// The upper panel's line.
    pub fn upper(&self) -> &[Point] {
        match &self.upper {
            Upper::SkipNormal(points) | Upper::CosineDistance(points) => points,
        }
    }

    /// The upper (`upper` true) or lower line.
    pub fn line(&self, upper: bool) -> &[Point] {
        if upper {
            self.upper()
        } else {
            &self.accuracy
        }
    }
}

/// The points of one line, each the mean over runs at one x, and how many
/// steps each point sums (1 but for per-step lines of searches longer than
/// a picture is wide, [`crate::report::records::STEP_POINTS`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// In x order.
    pub points: Vec<Point>,
    /// Steps (or epochs) per point.
    pub per_point: usize,
}

impl Line {
    /// A line of points that each sum `per_point` steps.
    pub fn summed(points: Vec<Point>, per_point: usize) -> Line {
        Line { points, per_point }
    }
}

impl From<Vec<Point>> for Line {
    /// A point per x.
    fn from(points: Vec<Point>) -> Line {
        Line::summed(points, 1)
    }
}

impl FromIterator<Point> for Line {
    fn from_iter<I: IntoIterator<Item = Point>>(iter: I) -> Line {
        Line::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl std::ops::Deref for Line {
    type Target = [Point];

    fn deref(&self) -> &[Point] {
        &self.points
    }
}

/// Every point of a line, or for a line too long to list (per-step lines
/// of long searches, whose points are sums of steps), how many points were
/// drawn, the steps each sums and the mean of their means.
impl Serialize for Line {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let points = &self.points;
        if self.per_point <= 1 && points.len() <= SIDECAR_POINTS {
            return points.serialize(s);
        }
        let mean = points.iter().map(|p| p.mean).sum::<f64>() / points.len() as f64;
        let summed = self.per_point > 1;
        let mut summary = s.serialize_struct("Summary", 3 + usize::from(summed))?;
        summary.serialize_field("points", &points.len())?;
        if summed {
            summary.serialize_field("steps_per_point", &self.per_point)?;
        }
        summary.serialize_field("mean_of_means", &mean)?;
        summary.serialize_field("omitted", "too many points to list")?;
        summary.end()
    }
}

/// The columns of `groups`, each setting's lines made by `lines` from its
/// runs, with where their accuracy comes from (merged over the column).
pub fn columns(
    groups: &BTreeMap<Group, Vec<&ReportRun>>,
    per: Option<&'static str>,
    lines: impl Fn(&Setting) -> (Series, Option<AccSource>),
) -> Vec<Column> {
    let settings = panel_settings(groups);
    groups
        .keys()
        .zip(settings)
        .map(|(group, settings)| {
            let mut source = None;
            let series = settings
                .iter()
                .map(|setting| {
                    let (series, src) = lines(setting);
                    if let Some(src) = src {
                        AccSource::merge(&mut source, src);
                    }
                    series
                })
                .collect();
            Column {
                group: *group,
                per,
                source: source.unwrap_or_default(),
                series,
            }
        })
        .collect()
}

impl Column {
    /// The settings' infos, in order.
    pub fn infos(&self) -> Vec<&SeriesInfo> {
        self.series.iter().map(|s| &s.info).collect()
    }

    /// The last x of the upper (`upper` true) or lower lines (0 if none).
    pub fn x_max(&self, upper: bool) -> i64 {
        self.series
            .iter()
            .map(|s| s.line(upper).last().map_or(0, |p| p.x))
            .fold(0, i64::max)
    }

    /// Lowest `mean − std` and highest `mean + std` of the upper or lower
    /// lines.
    pub fn extent(&self, upper: bool) -> (f64, f64) {
        band_extent(self.series.iter().map(|s| s.line(upper)))
    }

    /// The lower panel, `lines` over `x` (description, range): titled by
    /// the benchmark its accuracy comes from, else by `words`; its y range
    /// the bands padded by `pad`.
    pub fn accuracy_panel(
        &self,
        x: (String, (f64, f64)),
        (words, pad): (&str, f64),
        lines: Vec<draw::Series>,
    ) -> LinePanel {
        let label = self.group.label();
        let (lo, hi) = self.extent(false);
        LinePanel {
            labels: Labels {
                title: match &self.source {
                    AccSource::Benchmark { dataset, .. } => {
                        format!("{label} · NAS-Bench-201 {dataset} accuracy of each epoch's cell")
                    }
                    _ => format!("{label} · {words}"),
                },
                x_desc: x.0,
                y_desc: self.source.axis().into(),
            },
            x_range: x.1,
            y_range: draw::padded(lo, hi, pad),
            integer_x: true,
            integer_y: false,
            series: lines,
            notes: Vec::new(),
        }
    }
}

/// Per column, each setting's runs and seeds, then what its accuracy is.
pub fn captions(columns: &[Column]) -> Vec<String> {
    let mut parts = Vec::new();
    for c in columns {
        parts.extend(c.series.iter().map(|s| s.info.caption(&c.group)));
        parts.push(format!("{} accuracy: {}", c.group.label(), c.source.text()));
    }
    parts
}

/// The styles that tell the settings of every column apart.
pub fn styles(columns: &[Column]) -> SeriesStyles {
    let names: Vec<Vec<(Option<Method>, String)>> = columns
        .iter()
        .map(|c| {
            c.infos()
                .iter()
                .map(|s| (s.method, s.label.clone()))
                .collect()
        })
        .collect();
    SeriesStyles::new(&names)
}

/// Figs. 8 and 10 as drawn: a column of two panels (as `column` lays them
/// out in the settings' styles) per (dataset, space), `height` pixels high
/// with `top_percent` of it above, under a legend of the settings and
/// `extra` (what bands or bold lines mean).
pub fn stacked(
    heading: &Heading,
    columns: &[Column],
    (markers, extra): (bool, LegendEntry),
    (height, top_percent): (u32, i32),
    column: impl Fn(&Column, &SeriesStyles) -> (LinePanel, LinePanel),
) -> StackedColumns {
    let styles = styles(columns);
    let mut legend = styles.legend(markers);
    legend.push(extra);
    StackedColumns {
        title: heading.title.clone(),
        legend,
        columns: columns.iter().map(|c| column(c, &styles)).collect(),
        height,
        top_percent,
    }
}

/// The x range of a column whose last x is `x_max`, padded by `frac`.
pub fn x_range(x_max: i64, frac: f64) -> (f64, f64) {
    if x_max == 0 {
        (-0.5, 0.5)
    } else {
        draw::padded(0.0, x_max as f64, frac)
    }
}

/// The legend entry of the shaded bands.
pub fn band_legend() -> LegendEntry {
    LegendEntry {
        label: "shaded: mean ± std over runs".into(),
        color: RGBColor(200, 200, 200),
        swatch: Swatch::Box,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::settings;
    use crate::report::data::test_runs::run;

    #[test]
    fn a_series_is_keyed_by_its_upper_line_and_long_lines_are_summarised() {
        let runs = [run(1, "ddsas").build()];
        let refs: Vec<&ReportRun> = runs.iter().collect();
        let info = settings(&refs, &[])[0].info();
        let point = |x| Point {
            x,
            mean: 2.0,
            std: 0.0,
            n: 1,
        };
        let series = Series {
            info,
            accuracy: (0..6000).map(point).collect(),
            upper: Upper::SkipNormal(vec![point(0)].into()),
        };
        let side = serde_json::to_value(&series).unwrap();
        assert_eq!(side["skip_normal"][0]["mean"], 2.0);
        assert_eq!(side["accuracy"]["points"], 6000);
        assert_eq!(side["accuracy"]["mean_of_means"], 2.0);
        assert_eq!(side["label"], "DDSAS");
        assert_eq!(series.line(true).len(), 1);
    }
}
