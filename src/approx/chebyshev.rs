//! Polynomials in the Chebyshev basis on an interval, and Chebyshev
//! interpolation.
//!
//! Conventions: a series on `[a, b]` is `p(x) = Σ_k c_k T_k(y)` with
//! `y = (2x − a − b)/(b − a)`, so `[a, b]` maps onto `[−1, 1]`. Parity
//! ([`Parity`]) is parity in `x` and is only defined on symmetric intervals
//! `[−b, b]`, where `y = x/b`. Interpolation uses the `n = degree + 1`
//! Chebyshev nodes of the first kind, `y_j = cos(π(2j + 1)/(2n))`, and the
//! discrete cosine sums `c_k = (2/n) Σ_j f(x_j) cos(kπ(2j + 1)/(2n))` (halved
//! for `k = 0`), which are backward stable in `f64` at every degree up to
//! [`MAX_INTERPOLATION_DEGREE`].

use std::f64::consts::PI;

use super::grid::{max_deviation, MEASURE_SAMPLES};
use crate::error::{Error, Result};

/// The largest degree [`ChebyshevSeries::interpolate`] accepts.
pub const MAX_INTERPOLATION_DEGREE: usize = 4096;

/// The multiplicative depth of evaluating a degree-`degree` polynomial:
/// `⌈log2(degree + 1)⌉`, the optimum of baby-step giant-step evaluation in
/// the Chebyshev basis with the scalar multiplications merged into the
/// ciphertext products (0 for a constant). The circuit planner
/// ([`crate::circuits`]) is authoritative for a concrete circuit.
pub fn polynomial_depth(degree: usize) -> usize {
    (usize::BITS - degree.leading_zeros()) as usize
}

/// Parity of a polynomial in `x` on a symmetric interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parity {
    /// `p(−x) = p(x)`: only `T_0, T_2, ..`.
    Even,
    /// `p(−x) = −p(x)`: only `T_1, T_3, ..`.
    Odd,
}

impl Parity {
    /// Whether `T_k` has this parity.
    pub fn includes(self, k: usize) -> bool {
        (k % 2 == 1) == (self == Parity::Odd)
    }
}

/// A fitted series together with its measured error.
#[derive(Clone, Debug, PartialEq)]
pub struct Fitted {
    /// The polynomial.
    pub series: ChebyshevSeries,
    /// `max |p − f|` over a dense grid of the series' interval.
    pub max_error: f64,
}

/// `p(x) = Σ_k c_k T_k(y)`, `y = (2x − a − b)/(b − a)`, for `x` in `[a, b]`.
///
/// Invariants: `a < b`, both finite; at least one coefficient; every
/// coefficient finite.
#[derive(Clone, Debug, PartialEq)]
pub struct ChebyshevSeries {
    coeffs: Vec<f64>,
    interval: (f64, f64),
}

/// `Ok` when `[a, b]` is finite with `a < b`.
pub(crate) fn check_interval(op: &str, (a, b): (f64, f64)) -> Result<()> {
    if a.is_finite() && b.is_finite() && a < b {
        Ok(())
    } else {
        Err(Error::InvalidParameters(format!(
            "{op}: interval [{a}, {b}] must be finite with a < b"
        )))
    }
}

impl ChebyshevSeries {
    /// The series with coefficients `coeffs` (of `T_0, T_1, ..`) on `[a, b]`.
    pub fn new(coeffs: Vec<f64>, interval: (f64, f64)) -> Result<Self> {
        check_interval("Chebyshev series", interval)?;
        if coeffs.is_empty() || coeffs.iter().any(|c| !c.is_finite()) {
            return Err(Error::InvalidParameters(
                "Chebyshev coefficients must be finite and at least one".into(),
            ));
        }
        Ok(Self { coeffs, interval })
    }

    /// The interpolant of `f` of degree `degree` on `interval`, at the
    /// Chebyshev nodes of the first kind (see the module docs).
    ///
    /// Errors: a bad interval, `degree > MAX_INTERPOLATION_DEGREE`, or `f`
    /// not finite at a node.
    pub fn interpolate(
        f: impl Fn(f64) -> f64,
        interval: (f64, f64),
        degree: usize,
    ) -> Result<Self> {
        const OP: &str = "Chebyshev interpolation";
        check_interval(OP, interval)?;
        if degree > MAX_INTERPOLATION_DEGREE {
            return Err(Error::InvalidParameters(format!(
                "{OP}: degree {degree} exceeds {MAX_INTERPOLATION_DEGREE}"
            )));
        }
        let n = degree + 1;
        // cos(π·m/(2n)) for m in 0..4n: every cosine the sums need, reduced
        // exactly (k(2j + 1) mod 4n) before rounding.
        let cosines: Vec<f64> = (0..4 * n)
            .map(|m| (PI * m as f64 / (2 * n) as f64).cos())
            .collect();
        let (a, b) = interval;
        let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
        let values = (0..n)
            .map(|j| {
                let x = mid + half * cosines[2 * j + 1];
                let v = f(x);
                if v.is_finite() {
                    Ok(v)
                } else {
                    Err(Error::OutOfRange {
                        op: OP,
                        detail: format!("the function is not finite at x = {x}"),
                    })
                }
            })
            .collect::<Result<Vec<f64>>>()?;
        let coeffs = (0..n)
            .map(|k| {
                let sum: f64 = values
                    .iter()
                    .enumerate()
                    .map(|(j, v)| v * cosines[k * (2 * j + 1) % (4 * n)])
                    .sum();
                let scale = if k == 0 { 1.0 } else { 2.0 };
                scale * sum / n as f64
            })
            .collect();
        Self::new(coeffs, interval)
    }

    /// The interpolant of the lowest degree (at most `max_degree`) whose
    /// error, measured on a dense grid, is at most `tolerance`.
    ///
    /// Errors: those of [`Self::interpolate`], a tolerance that is not
    /// positive, and `OutOfRange` when no degree up to `max_degree` reaches it.
    pub fn interpolate_to_tolerance(
        f: impl Fn(f64) -> f64,
        interval: (f64, f64),
        tolerance: f64,
        max_degree: usize,
    ) -> Result<Fitted> {
        const OP: &str = "Chebyshev interpolation to a tolerance";
        if !(tolerance.is_finite() && tolerance > 0.0) {
            return Err(Error::InvalidParameters(format!(
                "{OP}: tolerance {tolerance} must be positive"
            )));
        }
        let mut best = f64::INFINITY;
        for degree in 0..=max_degree {
            let series = Self::interpolate(&f, interval, degree)?;
            let max_error = series.max_error(&f, MEASURE_SAMPLES)?;
            if max_error <= tolerance {
                return Ok(Fitted { series, max_error });
            }
            best = best.min(max_error);
        }
        Err(Error::OutOfRange {
            op: OP,
            detail: format!(
                "no degree up to {max_degree} reaches {tolerance:e} on [{}, {}] (best {best:e})",
                interval.0, interval.1
            ),
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

    /// The multiplicative depth of evaluating it ([`polynomial_depth`]).
    pub fn depth(&self) -> usize {
        polynomial_depth(self.degree())
    }

    /// `x` mapped from `[a, b]` onto `[−1, 1]`; exactly odd in `x` on a
    /// symmetric interval (`a + b` is then exactly zero).
    pub fn to_unit(&self, x: f64) -> f64 {
        let (a, b) = self.interval;
        (2.0 * x - (a + b)) / (b - a)
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

    /// `max |p(x) − f(x)|` over a grid of `samples` points of the interval
    /// (clustered towards the ends like the Chebyshev extrema).
    ///
    /// Errors: `samples < 2`, or `f` not finite at a sample.
    pub fn max_error(&self, f: impl Fn(f64) -> f64, samples: usize) -> Result<f64> {
        max_deviation("Chebyshev max error", self.interval, samples, |x| {
            self.eval(x) - f(x)
        })
    }

    /// Whether the interval is `[−b, b]`.
    pub fn is_symmetric(&self) -> bool {
        self.interval.0 == -self.interval.1
    }

    /// The parity of `p` when the interval is symmetric and every coefficient
    /// of the other parity is at most `tolerance · max_k |c_k|` (`Even` for
    /// the zero polynomial); `None` otherwise.
    pub fn parity(&self, tolerance: f64) -> Option<Parity> {
        if !self.is_symmetric() {
            return None;
        }
        let scale = self.coeffs.iter().fold(0.0_f64, |m, c| m.max(c.abs()));
        [Parity::Even, Parity::Odd].into_iter().find(|parity| {
            self.coeffs
                .iter()
                .enumerate()
                .all(|(k, c)| parity.includes(k) || c.abs() <= tolerance * scale)
        })
    }

    /// The series with the coefficients of the other parity set to zero
    /// (for an even or odd function interpolated on a symmetric interval,
    /// this removes the rounding noise in those coefficients).
    ///
    /// Errors: the interval is not symmetric.
    pub fn with_parity(mut self, parity: Parity) -> Result<Self> {
        if !self.is_symmetric() {
            let (a, b) = self.interval;
            return Err(Error::InvalidParameters(format!(
                "parity needs a symmetric interval, got [{a}, {b}]"
            )));
        }
        for (k, c) in self.coeffs.iter_mut().enumerate() {
            if !parity.includes(k) {
                *c = 0.0;
            }
        }
        Ok(self)
    }

    /// `scale · p + offset` on the same interval (exact in the basis: the
    /// coefficients are scaled and `offset` is added to `c_0`).
    ///
    /// Errors: a result that is not finite.
    pub fn affine(&self, scale: f64, offset: f64) -> Result<Self> {
        let mut coeffs: Vec<f64> = self.coeffs.iter().map(|c| scale * c).collect();
        coeffs[0] += offset;
        Self::new(coeffs, self.interval)
    }

    /// The coefficients `a_k` of `p = Σ_k a_k y^k` in the unit variable `y`
    /// (the power basis on `[−1, 1]`). Ill-conditioned at high degree: for
    /// inspection and tests, not for evaluation.
    pub fn unit_power_coeffs(&self) -> Vec<f64> {
        let n = self.coeffs.len();
        let mut power = vec![0.0; n];
        // T_{k−1} and T_k in the power basis.
        let (mut previous, mut current) = (vec![0.0; n], vec![0.0; n]);
        previous[0] = 1.0;
        if n > 1 {
            current[1] = 1.0;
        }
        for (k, &c) in self.coeffs.iter().enumerate() {
            let t_k = if k == 0 { &previous } else { &current };
            for (p, t) in power.iter_mut().zip(t_k) {
                *p += c * t;
            }
            if k >= 1 && k + 1 < n {
                // T_{k+1} = 2y·T_k − T_{k−1}.
                let mut next: Vec<f64> = previous.iter().map(|t| -t).collect();
                for i in 0..n - 1 {
                    next[i + 1] += 2.0 * current[i];
                }
                previous = std::mem::replace(&mut current, next);
            }
        }
        power
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f64` rounding allowance for an interpolant of degree `n` of a function
    /// bounded by `scale`.
    fn rounding(n: usize, scale: f64) -> f64 {
        4.0 * f64::EPSILON * (n as f64 + 1.0) * scale
    }

    /// `n!` as `f64`.
    fn factorial(n: usize) -> f64 {
        (1..=n).map(|k| k as f64).product()
    }

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

    #[test]
    fn depth_is_the_bit_length_of_the_degree() {
        let depths: Vec<usize> = [0, 1, 2, 3, 4, 7, 8, 15, 16, 63, 255]
            .map(polynomial_depth)
            .to_vec();
        assert_eq!(depths, [0, 1, 2, 2, 3, 3, 4, 4, 5, 6, 8]);
    }

    #[test]
    fn interpolation_reproduces_a_polynomial_exactly() {
        let p = ChebyshevSeries::new(vec![0.25, -1.0, 0.5, 0.0, 2.0], (-2.0, 6.0)).unwrap();
        let q = ChebyshevSeries::interpolate(|x| p.eval(x), p.interval(), 7).unwrap();
        for k in 0..=7 {
            let want = p.coeffs().get(k).copied().unwrap_or(0.0);
            assert!((q.coeffs()[k] - want).abs() < 1e-14, "c_{k}");
        }
    }

    /// Taylor-type bound `max|f^(n+1)| · half^(n+1) / (2^n (n+1)!)` for the
    /// interpolant in Chebyshev nodes of the first kind.
    /// Checks the interpolants of `f` on `interval` against the remainder
    /// bound `max|f^(n+1)| · half^(n+1) / (2^n (n+1)!)` for Chebyshev nodes
    /// of the first kind, with `derivative_bound` ≥ every `|f^(n+1)|`.
    fn check_remainder_bound(
        name: &str,
        f: fn(f64) -> f64,
        interval: (f64, f64),
        derivative_bound: f64,
    ) {
        let half = 0.5 * (interval.1 - interval.0);
        for n in [2, 4, 8, 12, 16, 24] {
            let p = ChebyshevSeries::interpolate(f, interval, n).unwrap();
            let error = p.max_error(f, MEASURE_SAMPLES).unwrap();
            let bound = derivative_bound * half.powi(n as i32 + 1)
                / (2.0_f64.powi(n as i32) * factorial(n + 1))
                + rounding(n, 20.0);
            eprintln!("interpolate {name} on {interval:?}, degree {n}: max error {error:.3e} (bound {bound:.3e})");
            assert!(error <= bound, "{name} degree {n}: {error:e} > {bound:e}");
        }
    }

    #[test]
    fn exp_and_cos_interpolants_meet_the_remainder_bound() {
        check_remainder_bound("exp", f64::exp, (-1.0, 1.0), 1.0_f64.exp());
        check_remainder_bound("cos", f64::cos, (0.0, 3.0), 1.0);
    }

    /// `4M ρ^(−n)/(ρ − 1)` with `M = max |f|` on the Bernstein ellipse of
    /// parameter ρ = 1.2, inside the one through the poles ±i/5 (ρ ≈ 1.2198).
    #[test]
    fn runge_interpolants_converge_geometrically_up_to_degree_255() {
        let runge = |x: f64| 1.0 / (1.0 + 25.0 * x * x);
        let rho = 1.2_f64;
        let ellipse_max = (0..10_000)
            .map(|i| {
                let theta = 2.0 * PI * i as f64 / 10_000.0;
                // z = (ρe^{iθ} + ρ^{-1}e^{−iθ})/2, |1/(1 + 25z²)|.
                let (re, im) = (
                    0.5 * (rho + 1.0 / rho) * theta.cos(),
                    0.5 * (rho - 1.0 / rho) * theta.sin(),
                );
                let (w_re, w_im) = (1.0 + 25.0 * (re * re - im * im), 50.0 * re * im);
                1.0 / w_re.hypot(w_im)
            })
            .fold(0.0_f64, f64::max);
        let mut previous = f64::INFINITY;
        for n in [8, 16, 32, 64, 128, 255] {
            let p = ChebyshevSeries::interpolate(runge, (-1.0, 1.0), n).unwrap();
            let error = p.max_error(runge, MEASURE_SAMPLES).unwrap();
            let bound = 4.0 * ellipse_max * rho.powi(-(n as i32)) / (rho - 1.0) + rounding(n, 1.0);
            eprintln!(
                "interpolate 1/(1+25x²), degree {n}: max error {error:.3e} (bound {bound:.3e})"
            );
            assert!(error <= bound, "degree {n}: {error:e} > {bound:e}");
            assert!(error < previous, "no convergence at degree {n}");
            previous = error;
        }
        assert!(previous < 1e-13);
    }

    #[test]
    fn interpolation_to_a_tolerance_picks_the_lowest_degree() {
        for tolerance in [1e-3, 1e-8, 1e-13] {
            let fit =
                ChebyshevSeries::interpolate_to_tolerance(f64::exp, (-2.0, 1.0), tolerance, 64)
                    .unwrap();
            let degree = fit.series.degree();
            let below = ChebyshevSeries::interpolate(f64::exp, (-2.0, 1.0), degree - 1).unwrap();
            eprintln!(
                "exp on [-2, 1] to {tolerance:e}: degree {degree}, max error {:.3e}",
                fit.max_error
            );
            assert!(fit.max_error <= tolerance);
            assert!(below.max_error(f64::exp, MEASURE_SAMPLES).unwrap() > tolerance);
        }
        assert!(
            ChebyshevSeries::interpolate_to_tolerance(f64::exp, (-2.0, 1.0), 1e-20, 30).is_err()
        );
        assert!(ChebyshevSeries::interpolate_to_tolerance(f64::exp, (-2.0, 1.0), 0.0, 30).is_err());
    }

    #[test]
    fn interpolation_rejects_bad_requests() {
        assert!(ChebyshevSeries::interpolate(f64::exp, (1.0, -1.0), 4).is_err());
        assert!(ChebyshevSeries::interpolate(f64::exp, (f64::NAN, 1.0), 4).is_err());
        assert!(ChebyshevSeries::interpolate(f64::ln, (-1.0, 1.0), 4).is_err());
        assert!(
            ChebyshevSeries::interpolate(f64::exp, (0.0, 1.0), MAX_INTERPOLATION_DEGREE + 1)
                .is_err()
        );
        let p = ChebyshevSeries::interpolate(f64::exp, (0.0, 1.0), 3).unwrap();
        assert!(p.max_error(f64::exp, 1).is_err());
        assert!(p.max_error(f64::recip, 3).is_err());
    }

    #[test]
    fn parity_is_detected_and_forced_on_symmetric_intervals() {
        let odd = ChebyshevSeries::interpolate(f64::sin, (-2.0, 2.0), 15).unwrap();
        let even = ChebyshevSeries::interpolate(f64::cos, (-2.0, 2.0), 15).unwrap();
        let neither = ChebyshevSeries::interpolate(f64::exp, (-2.0, 2.0), 15).unwrap();
        assert_eq!(odd.parity(1e-12), Some(Parity::Odd));
        assert_eq!(even.parity(1e-12), Some(Parity::Even));
        assert_eq!(neither.parity(1e-12), None);
        let forced = odd.clone().with_parity(Parity::Odd).unwrap();
        assert!(forced.coeffs().iter().step_by(2).all(|&c| c == 0.0));
        for x in [-1.9, -0.3, 0.7, 2.0] {
            assert_eq!(forced.eval(-x), -forced.eval(x));
            assert!((forced.eval(x) - odd.eval(x)).abs() < 1e-14);
        }
        let shifted = ChebyshevSeries::interpolate(f64::sin, (-2.0, 3.0), 7).unwrap();
        assert_eq!(shifted.parity(1e-12), None);
        assert!(shifted.with_parity(Parity::Odd).is_err());
    }

    #[test]
    fn power_basis_and_affine_agree_with_clenshaw() {
        let p = ChebyshevSeries::interpolate(f64::exp, (1.0, 4.0), 12).unwrap();
        let power = p.unit_power_coeffs();
        let q = p.affine(-0.5, 3.0).unwrap();
        for i in 0..=30 {
            let x = 1.0 + 3.0 * i as f64 / 30.0;
            let y = p.to_unit(x);
            let horner = power.iter().rev().fold(0.0, |acc, a| acc * y + a);
            assert!((horner - p.eval(x)).abs() < 1e-11 * p.eval(x), "x = {x}");
            assert!((q.eval(x) - (3.0 - 0.5 * p.eval(x))).abs() < 1e-12 * p.eval(x));
        }
        let constant = ChebyshevSeries::new(vec![2.5], (0.0, 1.0)).unwrap();
        assert_eq!(constant.unit_power_coeffs(), [2.5]);
    }
}
