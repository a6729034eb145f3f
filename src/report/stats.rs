//! The statistics the figures show, kept apart from drawing so that they
//! are tested on numbers alone: mean and population std, their per-x
//! series over runs, and the moving average of long per-step series.

use std::collections::BTreeMap;

use serde::Serialize;

/// Mean and population standard deviation (numpy's default, `ddof = 0`,
/// which is what the paper's "mean ± std" over 4 seeds matches: DARTS' 6.75
/// ± 0.43 skip connections is `std([7, 7, 7, 6])` with ddof 0). NaN for no
/// values.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// One x (epoch, step) of a quantity over runs: its mean, population std
/// and how many runs had a finite value there. Serialised as a sidecar's
/// `{"x", "mean", "std", "n"}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Epoch or step, from 0.
    pub x: i64,
    /// Mean over runs.
    pub mean: f64,
    /// Population std over runs.
    pub std: f64,
    /// Runs with a finite value at `x`.
    pub n: usize,
}

/// Mean, population std and n per x over the `(x, value)` points of runs,
/// in x order; non-finite values are left out.
pub fn per_x(points: impl Iterator<Item = (i64, f64)>) -> Vec<Point> {
    let mut by_x: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (x, v) in points {
        if v.is_finite() {
            by_x.entry(x).or_default().push(v);
        }
    }
    by_x.into_iter()
        .map(|(x, vs)| {
            let (mean, std) = mean_std(&vs);
            Point {
                x,
                mean,
                std,
                n: vs.len(),
            }
        })
        .collect()
}

/// Centred moving average of the means of `points` over `w` points (fewer
/// at the ends), as `(x, average)`.
pub fn moving_average(points: &[Point], w: usize) -> Vec<(i64, f64)> {
    let half = w / 2;
    (0..points.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(points.len());
            let mean = points[lo..hi].iter().map(|p| p.mean).sum::<f64>() / (hi - lo) as f64;
            (points[i].x, mean)
        })
        .collect()
}

/// Lowest `mean − std` and highest `mean + std` over several series
/// (infinite when there are no points).
pub fn band_extent<'a>(series: impl IntoIterator<Item = &'a [Point]>) -> (f64, f64) {
    series
        .into_iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.mean - p.std), hi.max(p.mean + p.std))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_std_is_population_std() {
        let (m, s) = mean_std(&[7.0, 7.0, 7.0, 6.0]);
        assert!((m - 6.75).abs() < 1e-12);
        assert!((s - 0.433).abs() < 1e-3);
        assert!(mean_std(&[]).0.is_nan());
    }

    #[test]
    fn per_x_groups_by_x_and_skips_nan() {
        let pts = per_x([(1, 4.0), (0, 1.0), (0, 3.0), (1, f64::NAN)].into_iter());
        assert_eq!(
            pts,
            vec![
                Point {
                    x: 0,
                    mean: 2.0,
                    std: 1.0,
                    n: 2
                },
                Point {
                    x: 1,
                    mean: 4.0,
                    std: 0.0,
                    n: 1
                },
            ]
        );
    }

    #[test]
    fn band_extent_covers_every_band() {
        let a = per_x([(0, 1.0), (0, 3.0)].into_iter());
        let b = per_x([(0, 10.0)].into_iter());
        assert_eq!(band_extent([a.as_slice(), b.as_slice()]), (1.0, 10.0));
        assert_eq!(band_extent([]), (f64::INFINITY, f64::NEG_INFINITY));
    }
}
