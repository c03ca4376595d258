//! `tanh` as an odd minimax polynomial on `[−B, B]`.
//!
//! The fit is [`remez_odd`] with `a = 0`: the series lives on `[−B, B]`,
//! only its odd coefficients are nonzero, and its error is the same on both
//! halves.

use super::remez::{remez_odd, Minimax, RemezOptions};
use crate::error::{Error, Result};

/// The odd minimax polynomial of odd degree `degree` for `tanh` on
/// `[−bound, bound]` (absolute error).
///
/// Errors: `bound` not finite and positive, an even degree, or a Remez
/// failure.
pub fn fit_tanh(bound: f64, degree: usize) -> Result<Minimax> {
    if !(bound.is_finite() && bound > 0.0) {
        return Err(Error::InvalidParameters(format!(
            "tanh: the bound B of [-B, B] must be finite and positive, got {bound}"
        )));
    }
    remez_odd(f64::tanh, (0.0, bound), degree, &RemezOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approx::grid::{alternations, MEASURE_SAMPLES};
    use crate::approx::{ChebyshevSeries, Parity};

    #[test]
    fn tanh_equioscillates_below_the_interpolation_error() {
        for (bound, degrees) in [(4.0, [7, 15, 31]), (8.0, [15, 31, 63])] {
            let mut previous = f64::INFINITY;
            for degree in degrees {
                let fit = fit_tanh(bound, degree).unwrap();
                let p = &fit.series;
                let measured = p.max_error(f64::tanh, MEASURE_SAMPLES).unwrap();
                let interpolation =
                    ChebyshevSeries::interpolate(f64::tanh, (-bound, bound), degree)
                        .and_then(|q| q.with_parity(Parity::Odd))
                        .and_then(|q| q.max_error(f64::tanh, MEASURE_SAMPLES))
                        .unwrap();
                let count = alternations((0.0, bound), |x| x.tanh() - p.eval(x));
                eprintln!(
                    "tanh on [-{bound}, {bound}], degree {degree}: depth {}, max error {measured:.3e} (interpolation {interpolation:.3e}), {count} alternations on [0, B]",
                    p.depth()
                );
                assert_eq!(p.parity(0.0), Some(Parity::Odd));
                assert!(measured <= fit.max_error && fit.max_error <= interpolation);
                assert_eq!(count, degree.div_ceil(2) + 1);
                assert!(fit.max_error < previous);
                previous = fit.max_error;
            }
        }
    }

    #[test]
    fn bad_requests_are_errors() {
        assert!(fit_tanh(0.0, 7).is_err());
        assert!(fit_tanh(f64::INFINITY, 7).is_err());
        assert!(fit_tanh(4.0, 8).is_err());
    }
}
