//! Dense sample grids and the largest deviation over them.
//!
//! A grid of `count ≥ 2` points on `[a, b]` is ascending, includes both end
//! points exactly, and is clustered like the Chebyshev extrema,
//! `x_i = mid − half·cos(π·i/(count − 1))`, so that it resolves the
//! oscillations of polynomial errors, which crowd towards the ends.

use std::f64::consts::PI;

use crate::error::{Error, Result};

/// Grid size used to measure the error of a finished approximation.
pub(crate) const MEASURE_SAMPLES: usize = 20_001;

/// The points of the grid of `count` points on `[a, b]` (none if `count < 2`).
pub(crate) fn chebyshev_grid((a, b): (f64, f64), count: usize) -> impl Iterator<Item = f64> {
    let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
    let count = if count >= 2 { count } else { 0 };
    let last = count.saturating_sub(1);
    (0..count).map(move |i| match i {
        0 => a,
        i if i == last => b,
        i => mid - half * (PI * i as f64 / last as f64).cos(),
    })
}

/// `max |deviation(x)|` over the grid of `count` points on `interval`.
///
/// Errors: `count < 2`, or a deviation that is not finite (the function
/// being approximated is undefined somewhere on the interval).
pub(crate) fn max_deviation(
    op: &'static str,
    interval: (f64, f64),
    count: usize,
    deviation: impl Fn(f64) -> f64,
) -> Result<f64> {
    if count < 2 {
        return Err(Error::InvalidParameters(format!(
            "{op}: at least 2 sample points are needed, got {count}"
        )));
    }
    chebyshev_grid(interval, count).try_fold(0.0_f64, |worst, x| {
        let d = deviation(x);
        if d.is_finite() {
            Ok(worst.max(d.abs()))
        } else {
            Err(Error::OutOfRange {
                op,
                detail: format!("the error is not finite at x = {x}"),
            })
        }
    })
}

/// Test support: the number of alternations of `error` on `interval` (runs
/// of constant sign on a fine grid whose peak is within 1e-3 of the global
/// maximum, merged when consecutive ones share a sign).
#[cfg(test)]
pub(crate) fn alternations(interval: (f64, f64), error: impl Fn(f64) -> f64) -> usize {
    let mut peaks: Vec<f64> = Vec::new();
    for x in chebyshev_grid(interval, 200_001) {
        let e = error(x);
        match peaks.last_mut() {
            Some(p) if (*p > 0.0) == (e > 0.0) => {
                if e.abs() > p.abs() {
                    *p = e;
                }
            }
            _ => peaks.push(e),
        }
    }
    let max = peaks.iter().fold(0.0_f64, |m, p| m.max(p.abs()));
    let big: Vec<f64> = peaks
        .into_iter()
        .filter(|p| p.abs() >= (1.0 - 1e-3) * max)
        .collect();
    1 + big
        .windows(2)
        .filter(|w| (w[0] > 0.0) != (w[1] > 0.0))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_ascending_with_exact_end_points() {
        let points: Vec<f64> = chebyshev_grid((-0.3, 2.0), 17).collect();
        assert_eq!(points.len(), 17);
        assert_eq!((points[0], points[16]), (-0.3, 2.0));
        assert!(points.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(chebyshev_grid((0.0, 1.0), 1).count(), 0);
    }

    #[test]
    fn max_deviation_rejects_tiny_grids_and_non_finite_errors() {
        assert!(max_deviation("t", (0.0, 1.0), 1, |x| x).is_err());
        assert!(max_deviation("t", (0.0, 1.0), 9, |x| 1.0 / x).is_err());
        let m = max_deviation("t", (-1.0, 2.0), 9, |x| x).unwrap();
        assert_eq!(m, 2.0);
    }
}
