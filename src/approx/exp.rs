//! `exp` two ways: as `(1 + x/2^r)^(2^r)` (one scaling and `r` squarings)
//! and as a fitted polynomial.
//!
//! Squaring form on `[lo, hi]` with `lo > −2^r` (so that `1 + x/2^r > 0`):
//! the circuit computes `t = 1 + x·2^−r` (one product by a constant, one
//! level) and squares `t` `r` times, depth `r + 1`. Its relative error is
//! `e(x) = exp(g(x)) − 1` with `g(x) = 2^r·ln(1 + x/2^r) − x ≤ 0`; `g` is
//! increasing on `(−2^r, 0]` and decreasing on `[0, ∞)`, so `|e|` is
//! largest at an end of the interval and [`ExpBySquaring::max_relative_error`]
//! is exact (up to rounding), not a sampled estimate.
//!
//! Polynomial form: the Chebyshev interpolant of the lowest degree whose
//! absolute error on the interval meets the request
//! ([`ChebyshevSeries::interpolate_to_tolerance`]).

use super::chebyshev::{ChebyshevSeries, Fitted};
use crate::error::{Error, Result};

/// The most squarings accepted.
pub const MAX_EXP_SQUARINGS: u32 = 40;

/// The highest degree [`fit_exp_polynomial`] tries.
pub const MAX_EXP_DEGREE: usize = 127;

/// `exp(x) ≈ (1 + x/2^r)^(2^r)` on an interval (see the module docs).
///
/// Invariants: `lo < hi` finite, `lo > −2^r`, `r ≤ MAX_EXP_SQUARINGS`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExpBySquaring {
    squarings: u32,
    interval: (f64, f64),
}

impl ExpBySquaring {
    /// `r = squarings` on `interval`.
    ///
    /// Errors: a bad interval, `r > MAX_EXP_SQUARINGS`, or `lo ≤ −2^r`.
    pub fn new(interval: (f64, f64), squarings: u32) -> Result<Self> {
        let (lo, hi) = interval;
        if !(lo.is_finite() && hi.is_finite() && lo < hi)
            || squarings > MAX_EXP_SQUARINGS
            || lo <= -(2.0_f64.powi(squarings as i32))
        {
            return Err(Error::InvalidParameters(format!(
                "exp by squaring: needs a finite interval with -2^r < lo < hi and r <= \
                 {MAX_EXP_SQUARINGS}, got [{lo}, {hi}] and r = {squarings}"
            )));
        }
        Ok(Self {
            squarings,
            interval,
        })
    }

    /// The fewest squarings (at most `max_squarings`) whose relative error
    /// on `interval` is at most `max_relative_error`.
    ///
    /// Errors: a bound that is not positive, a bad interval, or
    /// `OutOfRange` when `max_squarings` do not suffice.
    pub fn fit_to_error(
        interval: (f64, f64),
        max_relative_error: f64,
        max_squarings: u32,
    ) -> Result<Self> {
        if !(max_relative_error.is_finite() && max_relative_error > 0.0) {
            return Err(Error::InvalidParameters(format!(
                "exp by squaring: relative error bound {max_relative_error} must be positive"
            )));
        }
        Self::new(interval, MAX_EXP_SQUARINGS)?;
        (0..=max_squarings.min(MAX_EXP_SQUARINGS))
            .filter_map(|squarings| Self::new(interval, squarings).ok())
            .find(|exp| exp.max_relative_error() <= max_relative_error)
            .ok_or_else(|| Error::OutOfRange {
                op: "exp by squaring",
                detail: format!(
                    "no r <= {max_squarings} reaches relative error {max_relative_error:e} on \
                     [{}, {}]",
                    interval.0, interval.1
                ),
            })
    }

    /// `r`.
    pub fn squarings(&self) -> u32 {
        self.squarings
    }

    /// `[lo, hi]`.
    pub fn interval(&self) -> (f64, f64) {
        self.interval
    }

    /// `r + 1`: the scaling and the squarings.
    pub fn depth(&self) -> usize {
        self.squarings as usize + 1
    }

    /// `(1 + x·2^−r)` squared `r` times, the circuit's order.
    pub fn eval(&self, x: f64) -> f64 {
        let t = 1.0 + x * 2.0_f64.powi(-(self.squarings as i32));
        (0..self.squarings).fold(t, |t, _| t * t)
    }

    /// `|(1 + x/2^r)^(2^r)/e^x − 1|` in exact arithmetic, for `x > −2^r`.
    pub fn relative_error(&self, x: f64) -> f64 {
        let scale = 2.0_f64.powi(self.squarings as i32);
        (scale * ln_1p_minus_identity(x / scale)).exp_m1().abs()
    }

    /// The largest [`Self::relative_error`] on the interval (at an end).
    pub fn max_relative_error(&self) -> f64 {
        let (lo, hi) = self.interval;
        self.relative_error(lo).max(self.relative_error(hi))
    }
}

/// `ln(1 + u) − u` without cancellation for small `|u|` (`u > −1`).
fn ln_1p_minus_identity(u: f64) -> f64 {
    if u.abs() >= 0.125 {
        return u.ln_1p() - u;
    }
    // −u²/2 + u³/3 − …, summed until the terms no longer matter.
    let mut sum = 0.0;
    let mut power = u * u;
    for k in 2..64 {
        let term = power / k as f64;
        let signed = if k % 2 == 0 { -term } else { term };
        sum += signed;
        if term.abs() <= f64::EPSILON * sum.abs() * 0.25 {
            break;
        }
        power *= u;
    }
    sum
}

/// The lowest-degree Chebyshev interpolant of `exp` on `interval` (degree at
/// most [`MAX_EXP_DEGREE`]) with absolute error at most `max_error`.
///
/// Errors: those of [`ChebyshevSeries::interpolate_to_tolerance`].
pub fn fit_exp_polynomial(interval: (f64, f64), max_error: f64) -> Result<Fitted> {
    ChebyshevSeries::interpolate_to_tolerance(f64::exp, interval, max_error, MAX_EXP_DEGREE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approx::grid::{max_deviation, MEASURE_SAMPLES};

    #[test]
    fn the_squaring_error_analysis_matches_f64_evaluation() {
        for (interval, r) in [
            ((-8.0, 0.0), 6),
            ((-8.0, 0.0), 14),
            ((-2.0, 2.0), 10),
            ((0.5, 3.0), 8),
        ] {
            let exp = ExpBySquaring::new(interval, r).unwrap();
            let analytic = exp.max_relative_error();
            let measured = max_deviation("test", interval, MEASURE_SAMPLES, |x| {
                exp.eval(x) / x.exp() - 1.0
            })
            .unwrap();
            // Rounding of t = 1 + x/2^r is amplified 2^r times by the squarings.
            let rounding = 2.0_f64.powi(r as i32 + 1) * f64::EPSILON;
            eprintln!(
                "exp by {r} squarings on {interval:?}: depth {}, max relative error {measured:.3e} (analysis {analytic:.3e})",
                exp.depth()
            );
            assert!((measured - analytic).abs() <= rounding + 1e-12 * analytic);
            assert_eq!(exp.depth(), r as usize + 1);
        }
    }

    #[test]
    fn the_fewest_squarings_are_found() {
        for (interval, bound) in [((-8.0, 0.0), 1e-3), ((-1.0, 1.0), 2.0_f64.powi(-20))] {
            let exp = ExpBySquaring::fit_to_error(interval, bound, 40).unwrap();
            let r = exp.squarings();
            eprintln!("exp by squaring on {interval:?} to {bound:.3e}: r = {r}, max relative error {:.3e}", exp.max_relative_error());
            assert!(exp.max_relative_error() <= bound);
            assert!(
                ExpBySquaring::new(interval, r - 1)
                    .unwrap()
                    .max_relative_error()
                    > bound
            );
        }
        assert!(ExpBySquaring::fit_to_error((-8.0, 0.0), 1e-12, 20).is_err());
        assert!(ExpBySquaring::fit_to_error((-8.0, 0.0), 0.0, 20).is_err());
    }

    #[test]
    fn bad_squaring_requests_are_errors() {
        assert!(ExpBySquaring::new((-4.0, 0.0), 2).is_err());
        assert!(ExpBySquaring::new((0.0, 0.0), 2).is_err());
        assert!(ExpBySquaring::new((0.0, f64::NAN), 2).is_err());
        assert!(ExpBySquaring::new((0.0, 1.0), MAX_EXP_SQUARINGS + 1).is_err());
    }

    #[test]
    fn the_polynomial_meets_the_requested_error() {
        for (interval, bound) in [
            ((-8.0, 0.0), 2.0_f64.powi(-20)),
            ((-4.0, 4.0), 1e-6),
            ((-1.0, 1.0), 1e-14),
        ] {
            let fit = fit_exp_polynomial(interval, bound).unwrap();
            let measured = fit.series.max_error(f64::exp, MEASURE_SAMPLES).unwrap();
            eprintln!(
                "exp polynomial on {interval:?} to {bound:.3e}: degree {}, depth {}, max error {measured:.3e}",
                fit.series.degree(),
                fit.series.depth()
            );
            assert!(measured <= bound && fit.max_error <= bound);
        }
        assert!(fit_exp_polynomial((-8.0, 0.0), 1e-30).is_err());
        assert!(fit_exp_polynomial((0.0, -8.0), 1e-3).is_err());
    }

    #[test]
    fn ln_1p_minus_identity_is_accurate_near_zero() {
        for u in [1e-8, -3e-5, 0.01, -0.1, 0.124, 0.2, -0.5] {
            let u: f64 = u;
            // Reference: the direct formula where it is well conditioned
            // (|u| ≥ 0.01), else the series to u⁶ (the rest is below 1e-20
            // relative for |u| ≤ 3e-5).
            let direct = u.ln_1p() - u;
            let value = ln_1p_minus_identity(u);
            if u.abs() >= 0.01 {
                assert!((value - direct).abs() <= 1e-13 * direct.abs(), "u = {u}");
            } else {
                let series = (2..=6).map(|k| -(-u).powi(k) / k as f64).sum::<f64>();
                assert!((value - series).abs() <= 1e-15 * series.abs(), "u = {u}");
            }
        }
    }
}
