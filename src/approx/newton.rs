//! Inverse square root and reciprocal on `[a, b]` (`0 < a < b`): a
//! polynomial initial guess followed by Newton steps.
//!
//! Initial guess: the minimax polynomial for the target with the
//! relative-error weight ([`remez`] with [`Weight::Relative`]), of degree at
//! least 1. Newton steps, in the order the encrypted circuit performs them
//! (`y` is at depth `d ≥ 1` after the polynomial, `x` at depth 0):
//!
//! - inverse square root, `y ← y·(3 − x·y²)/2` computed as
//!   `h = 0.5·x` (once, depth 1), then `y ← 1.5·y − (h·y)·(y·y)`:
//!   `h·y` and `y·y` at `d + 1`, their product at `d + 2`;
//! - reciprocal, `y ← y·(2 − x·y)`: `x·y` at `d + 1`, the product at `d + 2`.
//!
//! So each step costs [`NEWTON_STEP_DEPTH`] = 2 levels and the whole costs
//! `⌈log2(degree + 1)⌉ + 2·steps`. With `y = f·(1 + e)` a step maps the
//! relative error `e` to `−(3/2)e² − e³/2` (inverse square root) or `−e²`
//! (reciprocal); the iteration converges when the initial `|e|` is below
//! `√3 − 1` or `1` respectively ([`NewtonTarget::convergence_radius`]).

use super::chebyshev::ChebyshevSeries;
use super::grid::{max_deviation, MEASURE_SAMPLES};
use super::remez::{remez, RemezOptions, Weight};
use crate::error::{Error, Result};

/// Levels consumed by one Newton step.
pub const NEWTON_STEP_DEPTH: usize = 2;

/// The largest `log2(degree + 1)` [`NewtonApproximation::fit_to_error`]
/// tries for the initial guess.
const MAX_SEARCH_LOG_DEGREE: usize = 6;

/// The most Newton steps accepted.
pub const MAX_NEWTON_STEPS: usize = 16;

/// The function a [`NewtonApproximation`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewtonTarget {
    /// `1/√x`.
    InverseSqrt,
    /// `1/x`.
    Reciprocal,
}

impl NewtonTarget {
    /// The exact value.
    pub fn exact(self, x: f64) -> f64 {
        match self {
            NewtonTarget::InverseSqrt => 1.0 / x.sqrt(),
            NewtonTarget::Reciprocal => 1.0 / x,
        }
    }

    /// The bound on the initial relative error below which the steps
    /// converge.
    pub fn convergence_radius(self) -> f64 {
        match self {
            NewtonTarget::InverseSqrt => 3.0_f64.sqrt() - 1.0,
            NewtonTarget::Reciprocal => 1.0,
        }
    }

    /// The bound on `|e'|` after one step from `|e| ≤ error`.
    pub fn step_error(self, error: f64) -> f64 {
        match self {
            NewtonTarget::InverseSqrt => 1.5 * error * error + 0.5 * error * error * error,
            NewtonTarget::Reciprocal => error * error,
        }
    }

    /// One Newton step from `y`, in the circuit's order; `half_x` is `0.5·x`.
    fn step(self, x: f64, half_x: f64, y: f64) -> f64 {
        match self {
            NewtonTarget::InverseSqrt => 1.5 * y - (half_x * y) * (y * y),
            NewtonTarget::Reciprocal => y * (2.0 - x * y),
        }
    }
}

/// A polynomial initial guess plus Newton steps (see the module docs).
///
/// Invariants: the interval is `[a, b]` with `0 < a < b`; the initial
/// guess has degree at least 1 and relative error below the target's
/// convergence radius when `steps > 0`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewtonApproximation {
    target: NewtonTarget,
    initial: ChebyshevSeries,
    steps: usize,
    initial_relative_error: f64,
    max_relative_error: f64,
}

impl NewtonApproximation {
    /// The degree-`degree` relative minimax initial guess for `target` on
    /// `interval`, followed by `steps` Newton steps.
    ///
    /// Errors: `interval` not `0 < a < b` (finite), `degree` 0 or above the
    /// Remez limit, `steps > MAX_NEWTON_STEPS`, a Remez failure, or an
    /// initial guess too poor for the steps to converge.
    pub fn fit(
        target: NewtonTarget,
        (a, b): (f64, f64),
        degree: usize,
        steps: usize,
    ) -> Result<Self> {
        if !(a > 0.0 && a < b && b.is_finite()) || degree == 0 || steps > MAX_NEWTON_STEPS {
            return Err(Error::InvalidParameters(format!(
                "{target:?}: needs 0 < a < b (got [{a}, {b}]), degree >= 1 (got {degree}) and \
                 at most {MAX_NEWTON_STEPS} steps (got {steps})"
            )));
        }
        let options = RemezOptions {
            weight: Weight::Relative,
            ..RemezOptions::default()
        };
        let minimax = remez(|x| target.exact(x), (a, b), degree, &options)?;
        if steps > 0 && minimax.max_error >= target.convergence_radius() {
            return Err(Error::OutOfRange {
                op: "Newton approximation",
                detail: format!(
                    "{target:?} on [{a}, {b}]: the degree-{degree} initial guess has relative \
                     error {:e}, outside the convergence radius {:e} (raise the degree)",
                    minimax.max_error,
                    target.convergence_radius()
                ),
            });
        }
        let mut approximation = Self {
            target,
            initial: minimax.series,
            steps,
            initial_relative_error: minimax.max_error,
            max_relative_error: 0.0,
        };
        approximation.max_relative_error =
            max_deviation("Newton approximation", (a, b), MEASURE_SAMPLES, |x| {
                approximation.eval(x) / target.exact(x) - 1.0
            })?;
        Ok(approximation)
    }

    /// The configuration of least depth (at most `max_depth`) whose
    /// measured relative error is at most `max_relative_error`: initial
    /// degrees `2^j − 1` (the most a depth of `j` buys, `j ≤ 6`) and `steps`
    /// with `j + 2·steps` = the depth; at equal depth, more steps and a
    /// lower degree first.
    ///
    /// Errors: those of [`Self::fit`] for the interval, a bound that is not
    /// positive, and `OutOfRange` when no configuration reaches it.
    pub fn fit_to_error(
        target: NewtonTarget,
        interval: (f64, f64),
        max_relative_error: f64,
        max_depth: usize,
    ) -> Result<Self> {
        if !(max_relative_error.is_finite() && max_relative_error > 0.0) {
            return Err(Error::InvalidParameters(format!(
                "{target:?}: relative error bound {max_relative_error} must be positive"
            )));
        }
        Self::fit(target, interval, 1, 0)?;
        for depth in 1..=max_depth {
            for steps in (0..=depth / 2).rev() {
                let log_degree = depth - NEWTON_STEP_DEPTH * steps;
                if !(1..=MAX_SEARCH_LOG_DEGREE).contains(&log_degree) {
                    continue;
                }
                let degree = (1 << log_degree) - 1;
                if let Ok(fit) = Self::fit(target, interval, degree, steps) {
                    if fit.max_relative_error <= max_relative_error {
                        return Ok(fit);
                    }
                }
            }
        }
        Err(Error::OutOfRange {
            op: "Newton approximation",
            detail: format!(
                "{target:?} on [{}, {}]: no configuration up to depth {max_depth} reaches \
                 relative error {max_relative_error:e}",
                interval.0, interval.1
            ),
        })
    }

    /// The function approximated.
    pub fn target(&self) -> NewtonTarget {
        self.target
    }

    /// The polynomial initial guess.
    pub fn initial(&self) -> &ChebyshevSeries {
        &self.initial
    }

    /// The number of Newton steps.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The interval `[a, b]`.
    pub fn interval(&self) -> (f64, f64) {
        self.initial.interval()
    }

    /// The initial guess's minimax relative error.
    pub fn initial_relative_error(&self) -> f64 {
        self.initial_relative_error
    }

    /// `max |y/f − 1|` of [`Self::eval`] over a dense grid of the interval.
    pub fn max_relative_error(&self) -> f64 {
        self.max_relative_error
    }

    /// `depth(initial) + NEWTON_STEP_DEPTH · steps`.
    pub fn depth(&self) -> usize {
        self.initial.depth() + NEWTON_STEP_DEPTH * self.steps
    }

    /// The whole computation in `f64`, same operations in the same order as
    /// the encrypted circuit (see the module docs).
    pub fn eval(&self, x: f64) -> f64 {
        let half_x = 0.5 * x;
        (0..self.steps).fold(self.initial.eval(x), |y, _| self.target.step(x, half_x, y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Measured error after `k` steps against `step_error` iterated `k`
    /// times from the initial minimax error, plus a few ulps per step.
    fn check_steps(target: NewtonTarget, interval: (f64, f64), degree: usize) {
        for steps in 0..=3 {
            let newton = NewtonApproximation::fit(target, interval, degree, steps).unwrap();
            let predicted =
                (0..steps).fold(newton.initial_relative_error(), |e, _| target.step_error(e));
            let bound = predicted + 8.0 * f64::EPSILON * (steps as f64 + 1.0);
            eprintln!(
                "{target:?} on {interval:?}, degree {degree}, {steps} steps: depth {}, max relative error {:.3e} (bound {bound:.3e})",
                newton.depth(),
                newton.max_relative_error()
            );
            assert!(newton.max_relative_error() <= bound);
            assert_eq!(newton.depth(), newton.initial().depth() + 2 * steps);
        }
    }

    #[test]
    fn inverse_sqrt_error_squares_with_each_step() {
        check_steps(NewtonTarget::InverseSqrt, (0.01, 1.0), 7);
        check_steps(NewtonTarget::InverseSqrt, (1.0, 100.0), 5);
    }

    #[test]
    fn reciprocal_error_squares_with_each_step() {
        check_steps(NewtonTarget::Reciprocal, (0.5, 2.0), 3);
        check_steps(NewtonTarget::Reciprocal, (1.0, 64.0), 7);
    }

    #[test]
    fn the_least_depth_configuration_is_found() {
        for (target, interval, bound) in [
            (
                NewtonTarget::InverseSqrt,
                (1.0 / 256.0, 1.0),
                2.0_f64.powi(-20),
            ),
            (NewtonTarget::Reciprocal, (1.0, 64.0), 2.0_f64.powi(-20)),
        ] {
            let fit = NewtonApproximation::fit_to_error(target, interval, bound, 20).unwrap();
            eprintln!(
                "{target:?} on {interval:?} to {bound:.3e}: degree {}, {} steps, depth {}, max relative error {:.3e}",
                fit.initial().degree(), fit.steps(), fit.depth(), fit.max_relative_error()
            );
            assert!(fit.max_relative_error() <= bound);
            let shallower =
                NewtonApproximation::fit_to_error(target, interval, bound, fit.depth() - 1);
            assert!(matches!(shallower, Err(Error::OutOfRange { .. })));
        }
        assert!(
            NewtonApproximation::fit_to_error(NewtonTarget::Reciprocal, (0.0, 1.0), 1e-3, 9)
                .is_err()
        );
        assert!(
            NewtonApproximation::fit_to_error(NewtonTarget::Reciprocal, (0.5, 1.0), 0.0, 9)
                .is_err()
        );
    }

    #[test]
    fn eval_follows_the_circuit_order() {
        let newton =
            NewtonApproximation::fit(NewtonTarget::InverseSqrt, (0.25, 4.0), 3, 2).unwrap();
        let x = 1.7;
        let mut y = newton.initial().eval(x);
        for _ in 0..2 {
            let (h, square) = (0.5 * x * y, y * y);
            y = 1.5 * y - h * square;
        }
        assert_eq!(newton.eval(x), y);
    }

    #[test]
    fn bad_requests_and_divergent_guesses_are_errors() {
        let t = NewtonTarget::InverseSqrt;
        for (interval, degree, steps) in [
            ((0.0, 1.0), 3, 1),
            ((-1.0, 1.0), 3, 1),
            ((2.0, 1.0), 3, 1),
            ((1.0, f64::INFINITY), 3, 1),
            ((0.1, 1.0), 0, 1),
            ((0.1, 1.0), 3, MAX_NEWTON_STEPS + 1),
        ] {
            assert!(matches!(
                NewtonApproximation::fit(t, interval, degree, steps),
                Err(Error::InvalidParameters(_))
            ));
        }
        match NewtonApproximation::fit(t, (1e-6, 1.0), 1, 2) {
            Err(Error::OutOfRange { detail, .. }) => {
                assert!(detail.contains("convergence radius"), "{detail}")
            }
            other => panic!("expected a divergence error, got {other:?}"),
        }
    }
}
