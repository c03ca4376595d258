//! Polynomials in the Chebyshev basis on an interval.

use crate::error::{Error, Result};

/// `p(x) = Σ_k c_k T_k(y)`, `y = (2x − a − b)/(b − a)`, for `x` in `[a, b]`.
///
/// Invariants: `a < b`, both finite; at least one coefficient; every
/// coefficient finite.
#[derive(Clone, Debug, PartialEq)]
pub struct ChebyshevSeries {
    coeffs: Vec<f64>,
    interval: (f64, f64),
}

impl ChebyshevSeries {
    /// The series with coefficients `coeffs` (of `T_0, T_1, ..`) on `[a, b]`.
    pub fn new(coeffs: Vec<f64>, (a, b): (f64, f64)) -> Result<Self> {
        if !(a.is_finite() && b.is_finite() && a < b) {
            return Err(Error::InvalidParameters(format!(
                "Chebyshev interval [{a}, {b}] must be finite with a < b"
            )));
        }
        if coeffs.is_empty() || coeffs.iter().any(|c| !c.is_finite()) {
            return Err(Error::InvalidParameters(
                "Chebyshev coefficients must be finite and at least one".into(),
            ));
        }
        Ok(Self {
            coeffs,
            interval: (a, b),
        })
    }

    /// The coefficients of `T_0, T_1, ..`.
    pub fn coeffs(&self) -> &[f64] {
        &self.coeffs
    }

    /// The interval `[a, b]`.
    pub fn interval(&self) -> (f64, f64) {
        self.interval
    }

    /// The degree (index of the last coefficient; zeros included).
    pub fn degree(&self) -> usize {
        self.coeffs.len() - 1
    }

    /// `x` mapped from `[a, b]` onto `[−1, 1]`.
    pub fn to_unit(&self, x: f64) -> f64 {
        let (a, b) = self.interval;
        (2.0 * x - a - b) / (b - a)
    }

    /// `p(x)` by Clenshaw's recurrence.
    pub fn eval(&self, x: f64) -> f64 {
        let y = self.to_unit(x);
        let (mut b1, mut b2) = (0.0, 0.0);
        for &c in self.coeffs.iter().skip(1).rev() {
            (b1, b2) = (2.0 * y * b1 - b2 + c, b1);
        }
        y * b1 - b2 + self.coeffs[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clenshaw_matches_the_cosine_definition() {
        let p = ChebyshevSeries::new(vec![0.5, -1.25, 0.75, 2.0, -0.125], (-3.0, 5.0)).unwrap();
        for i in 0..=40 {
            let x = -3.0 + 8.0 * i as f64 / 40.0;
            let theta = p.to_unit(x).clamp(-1.0, 1.0).acos();
            let direct: f64 = p
                .coeffs()
                .iter()
                .enumerate()
                .map(|(k, c)| c * (k as f64 * theta).cos())
                .sum();
            assert!((p.eval(x) - direct).abs() < 1e-12, "x = {x}");
        }
    }

    #[test]
    fn rejects_bad_intervals_and_coefficients() {
        assert!(ChebyshevSeries::new(vec![1.0], (1.0, 1.0)).is_err());
        assert!(ChebyshevSeries::new(vec![1.0], (0.0, f64::INFINITY)).is_err());
        assert!(ChebyshevSeries::new(vec![], (0.0, 1.0)).is_err());
        assert!(ChebyshevSeries::new(vec![f64::NAN], (0.0, 1.0)).is_err());
    }
}
