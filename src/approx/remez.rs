//! Remez exchange: the minimax (best uniform) polynomial of a given degree,
//! optionally with a relative-error weight, on an interval or, restricted to
//! odd polynomials, on `[−b, −a] ∪ [a, b]`.
//!
//! Method. The unknowns are the Chebyshev coefficients `c_k` of the allowed
//! basis (every `T_k` up to the degree, or the odd ones) and the levelled
//! error `E`. On a reference of `m + 1` ascending points (`m` basis
//! functions) the linear system `Σ_k c_k T_k(y_i) + (−1)^i E / w(x_i) = f(x_i)`
//! is solved in the Chebyshev basis (well conditioned, unlike the monomial
//! one), so that the weighted error `e(x) = w(x)·(f(x) − p(x))` takes the
//! values `±E` with alternating signs on the reference. The local extrema of
//! `e` are then located by scanning a dense grid (clustered towards the ends
//! of the domain) for runs of constant sign and refining the largest sample
//! of each run by golden-section search; among them `m + 1` alternating
//! extrema that keep the global maximum become the next reference (multiple
//! exchange). Initial reference: the Chebyshev extrema of the domain, or for
//! the odd problem those of `[a², b²]` in `t = x²` (see
//! `Problem::initial_reference`).
//!
//! Convergence: the extrema of the new reference agree with the global
//! maximum of `|e|` within the relative `tolerance` plus the `f64` noise of
//! evaluating `e` (`8 ε·(max w·Σ_k |c_k| + max|w f|)`), or that maximum is
//! itself at the noise level, where no polynomial can be told apart from
//! another. Otherwise, after `max_iterations`, or when `e`
//! does not alternate often enough, the result is an error.
//!
//! The odd problem uses the series interval `[−b, b]` and measures the error
//! on `[a, b]` only: for odd `f` and odd `p` it is the same on `[−b, −a]`.

use std::f64::consts::PI;

use super::chebyshev::{check_interval, ChebyshevSeries, Parity};
use super::grid::{chebyshev_grid, MEASURE_SAMPLES};
use super::linear_solve::solve;
use crate::error::{Error, Result};

/// The largest degree the Remez exchange accepts.
pub const MAX_REMEZ_DEGREE: usize = 255;

/// Golden-section steps in the refinement of one extremum (the bracket
/// shrinks by 0.618 per step, to below `f64` resolution well before this).
const GOLDEN_STEPS: usize = 80;

/// Rounding allowance, in units of `ε·(max w·Σ|c_k| + max|w f|)`, for the
/// weighted error as evaluated in `f64` (Clenshaw's error is about `ε·Σ|c_k|`
/// per evaluation, times a small factor).
const NOISE_ULPS: f64 = 8.0;

/// The weight `w` of the error `w(x)·(f(x) − p(x))`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Weight {
    /// `w = 1`: absolute error.
    #[default]
    Absolute,
    /// `w = 1/|f(x)|`: relative error (`f` must not vanish on the domain).
    Relative,
}

/// Knobs of the exchange.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RemezOptions {
    /// The error measure.
    pub weight: Weight,
    /// Exchanges before giving up (at least 1).
    pub max_iterations: usize,
    /// Relative spread of the reference extrema at which the levelled error
    /// is accepted as the minimax error (positive).
    pub tolerance: f64,
}

impl Default for RemezOptions {
    fn default() -> Self {
        Self {
            weight: Weight::Absolute,
            max_iterations: 40,
            tolerance: 1e-6,
        }
    }
}

/// A minimax polynomial and how well it does.
#[derive(Clone, Debug, PartialEq)]
pub struct Minimax {
    /// The polynomial (on `[a, b]`, or `[−b, b]` for the odd problem).
    pub series: ChebyshevSeries,
    /// `max |w·(f − p)|` over the domain (dense grid plus refined extrema).
    pub max_error: f64,
    /// `|E|` of the last linear solve: the equioscillation level.
    pub levelled_error: f64,
    /// The final reference: points of the domain where the weighted error
    /// alternates in sign with magnitude within `tolerance` of `max_error`
    /// (the last solve's reference when the error is at the noise level).
    pub reference: Vec<f64>,
    /// Exchanges performed.
    pub iterations: usize,
}

/// The minimax polynomial of degree `degree` for `f` on `interval`.
///
/// Errors: a bad interval, `degree > MAX_REMEZ_DEGREE`, bad options, `f` (or
/// the relative weight) not finite on the interval, or no convergence.
pub fn remez(
    f: impl Fn(f64) -> f64,
    interval: (f64, f64),
    degree: usize,
    options: &RemezOptions,
) -> Result<Minimax> {
    check_interval("remez", interval)?;
    Problem {
        f: &f,
        weight: options.weight,
        series_interval: interval,
        domain: interval,
        degree,
        parity: None,
    }
    .run(options)
}

/// The minimax odd polynomial of odd degree `degree` for the odd function
/// `f` on `[−b, −a] ∪ [a, b]` (`0 ≤ a < b`; `a = 0` is the whole `[−b, b]`).
/// The series lives on `[−b, b]` and only its odd coefficients are nonzero.
///
/// Errors: those of [`remez`], an even degree, a bad `a`, or `f` not odd.
pub fn remez_odd(
    f: impl Fn(f64) -> f64,
    (a, b): (f64, f64),
    degree: usize,
    options: &RemezOptions,
) -> Result<Minimax> {
    check_interval("remez_odd", (a, b))?;
    if a < 0.0 || degree % 2 == 0 {
        return Err(Error::InvalidParameters(format!(
            "remez_odd: needs 0 <= a < b and an odd degree, got a = {a}, degree {degree}"
        )));
    }
    for x in chebyshev_grid((a, b), MEASURE_SAMPLES) {
        let (plus, minus) = (f(x), f(-x));
        if (plus + minus).abs() > 1e-12 * (plus.abs() + minus.abs()) {
            return Err(Error::InvalidParameters(format!(
                "remez_odd: f is not odd: f({x}) = {plus}, f(-{x}) = {minus}"
            )));
        }
    }
    Problem {
        f: &f,
        weight: options.weight,
        series_interval: (-b, b),
        domain: (a, b),
        degree,
        parity: Some(Parity::Odd),
    }
    .run(options)
}

/// `f`, its weight, and where it is sampled.
#[derive(Clone, Copy)]
struct Sample {
    x: f64,
    f: f64,
    w: f64,
}

/// A point of the domain and the signed weighted error there.
#[derive(Clone, Copy)]
struct Extremum {
    x: f64,
    error: f64,
}

/// One minimax problem (see the module docs).
struct Problem<'a> {
    f: &'a dyn Fn(f64) -> f64,
    weight: Weight,
    series_interval: (f64, f64),
    domain: (f64, f64),
    degree: usize,
    parity: Option<Parity>,
}

impl Problem<'_> {
    fn run(&self, options: &RemezOptions) -> Result<Minimax> {
        if self.degree > MAX_REMEZ_DEGREE
            || options.max_iterations == 0
            || !(options.tolerance.is_finite() && options.tolerance > 0.0)
        {
            return Err(Error::InvalidParameters(format!(
                "remez: degree {} (at most {MAX_REMEZ_DEGREE}), {} iterations (at least 1), \
                 tolerance {} (positive)",
                self.degree, options.max_iterations, options.tolerance
            )));
        }
        let basis = self.basis();
        let count = basis.len() + 1;
        let samples = chebyshev_grid(self.domain, MEASURE_SAMPLES.max(64 * count))
            .map(|x| self.sample(x))
            .collect::<Result<Vec<Sample>>>()?;
        let max_weight = samples.iter().fold(0.0_f64, |m, s| m.max(s.w));
        let max_weighted_f = samples
            .iter()
            .fold(0.0_f64, |m, s| m.max((s.w * s.f).abs()));
        let mut reference = self.initial_reference(count);
        for iteration in 1..=options.max_iterations {
            let (series, levelled_error) = self.solve(&basis, &reference)?;
            let extrema = self.extrema(&series, &samples)?;
            let max_error = extrema.iter().fold(0.0_f64, |m, e| m.max(e.error.abs()));
            let noise = NOISE_ULPS
                * f64::EPSILON
                * (max_weight * series.coeffs().iter().map(|c| c.abs()).sum::<f64>()
                    + max_weighted_f);
            if max_error > noise {
                if extrema.len() < count {
                    return Err(self.failure(format!(
                        "the error alternates {} times, {count} needed (iteration {iteration}, \
                         max error {max_error:e})",
                        extrema.len()
                    )));
                }
                let chosen = select_alternating(extrema, count);
                let min_error = chosen
                    .iter()
                    .fold(f64::INFINITY, |m, e| m.min(e.error.abs()));
                reference = chosen.iter().map(|e| e.x).collect();
                if max_error - min_error > options.tolerance * max_error + noise {
                    continue;
                }
            }
            return Ok(Minimax {
                series,
                max_error,
                levelled_error: levelled_error.abs(),
                reference,
                iterations: iteration,
            });
        }
        Err(self.failure(format!(
            "no convergence in {} iterations",
            options.max_iterations
        )))
    }

    /// The Chebyshev indices of the allowed basis.
    fn basis(&self) -> Vec<usize> {
        (0..=self.degree)
            .filter(|&k| self.parity.is_none_or(|p| p.includes(k)))
            .collect()
    }

    fn sample(&self, x: f64) -> Result<Sample> {
        let f = (self.f)(x);
        let w = match self.weight {
            Weight::Absolute => 1.0,
            Weight::Relative => 1.0 / f.abs(),
        };
        if f.is_finite() && w.is_finite() {
            Ok(Sample { x, f, w })
        } else {
            Err(self.failure(format!(
                "f({x}) = {f}: not finite, or zero under the relative weight"
            )))
        }
    }

    fn failure(&self, detail: String) -> Error {
        let (a, b) = self.domain;
        let kind = if self.parity.is_some() { "odd " } else { "" };
        Error::OutOfRange {
            op: "remez",
            detail: format!("{kind}degree {} on [{a}, {b}]: {detail}", self.degree),
        }
    }

    /// The Chebyshev extrema of the domain; for the odd problem the
    /// Chebyshev extrema in `t = x²` of `[a², b²]` (odd polynomials are
    /// `x·q(x²)`), or for `a = 0` the positive extrema of `T_{2m+1}(x/b)`,
    /// which avoid `x = 0` where every odd basis function vanishes.
    fn initial_reference(&self, count: usize) -> Vec<f64> {
        if self.parity.is_none() {
            return chebyshev_grid(self.domain, count).collect();
        }
        let (a, b) = self.domain;
        let (mid, half) = (0.5 * (b * b + a * a), 0.5 * (b * b - a * a));
        let step = if a == 0.0 {
            2.0 * PI / (2 * count - 1) as f64
        } else {
            PI / (count - 1) as f64
        };
        (0..count)
            .rev()
            .map(|j| (mid + half * (step * j as f64).cos()).sqrt().clamp(a, b))
            .collect()
    }

    /// The polynomial and the signed levelled error `E` on `reference`.
    fn solve(&self, basis: &[usize], reference: &[f64]) -> Result<(ChebyshevSeries, f64)> {
        let n = reference.len();
        let mut matrix = Vec::with_capacity(n * n);
        let mut rhs = Vec::with_capacity(n);
        let (lo, hi) = self.series_interval;
        for (i, &x) in reference.iter().enumerate() {
            let s = self.sample(x)?;
            let t = chebyshev_values((2.0 * x - lo - hi) / (hi - lo), self.degree);
            matrix.extend(basis.iter().map(|&k| t[k]));
            let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
            matrix.push(sign / s.w);
            rhs.push(s.f);
        }
        let solution =
            solve(matrix, rhs).ok_or_else(|| self.failure("singular reference system".into()))?;
        let mut coeffs = vec![0.0; self.degree + 1];
        for (&k, &c) in basis.iter().zip(&solution) {
            coeffs[k] = c;
        }
        let series = ChebyshevSeries::new(coeffs, self.series_interval)?;
        Ok((series, solution[n - 1]))
    }

    /// One refined extremum per run of constant sign of the weighted error
    /// on the grid, in ascending order (so their signs alternate).
    fn extrema(&self, series: &ChebyshevSeries, samples: &[Sample]) -> Result<Vec<Extremum>> {
        let mut runs: Vec<(usize, f64)> = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            let error = s.w * (s.f - series.eval(s.x));
            if !error.is_finite() {
                return Err(self.failure(format!("the error is not finite at x = {}", s.x)));
            }
            if error == 0.0 {
                continue;
            }
            match runs.last_mut() {
                Some((best_index, best)) if (*best > 0.0) == (error > 0.0) => {
                    if error.abs() > best.abs() {
                        (*best_index, *best) = (i, error);
                    }
                }
                _ => runs.push((i, error)),
            }
        }
        runs.into_iter()
            .map(|(i, error)| {
                let lo = samples[i.saturating_sub(1)].x;
                let hi = samples[(i + 1).min(samples.len() - 1)].x;
                let sampled = Extremum {
                    x: samples[i].x,
                    error,
                };
                self.refine(series, sampled, lo, hi)
            })
            .collect()
    }

    /// The largest `|e|` of the sign of `start` in `[lo, hi]` by golden
    /// section, or `start` when the search finds nothing larger.
    fn refine(
        &self,
        series: &ChebyshevSeries,
        start: Extremum,
        mut lo: f64,
        mut hi: f64,
    ) -> Result<Extremum> {
        let sign = start.error.signum();
        let signed_error = |x: f64| -> Result<f64> {
            let s = self.sample(x)?;
            Ok(sign * s.w * (s.f - series.eval(x)))
        };
        let ratio = 0.5 * (5.0_f64.sqrt() - 1.0);
        let (mut x1, mut x2) = (hi - ratio * (hi - lo), lo + ratio * (hi - lo));
        let (mut g1, mut g2) = (signed_error(x1)?, signed_error(x2)?);
        for _ in 0..GOLDEN_STEPS {
            if hi - lo <= 4.0 * f64::EPSILON * lo.abs().max(hi.abs()) {
                break;
            }
            if g1 >= g2 {
                (hi, x2, g2) = (x2, x1, g1);
                x1 = hi - ratio * (hi - lo);
                g1 = signed_error(x1)?;
            } else {
                (lo, x1, g1) = (x1, x2, g2);
                x2 = lo + ratio * (hi - lo);
                g2 = signed_error(x2)?;
            }
        }
        let (x, best) = if g1 >= g2 { (x1, g1) } else { (x2, g2) };
        Ok(if best > sign * start.error {
            Extremum {
                x,
                error: sign * best,
            }
        } else {
            start
        })
    }
}

/// `count` of the alternating `extrema` (ascending, `len ≥ count`) keeping
/// the global maximum: repeatedly drop the smallest together with its
/// smaller neighbour (which keeps the signs alternating), or the smaller end
/// point when the smallest is an end or only one is left to drop.
fn select_alternating(mut extrema: Vec<Extremum>, count: usize) -> Vec<Extremum> {
    while extrema.len() > count {
        let last = extrema.len() - 1;
        let magnitude = |i: usize| extrema[i].error.abs();
        let smallest = (0..=last)
            .min_by(|&i, &j| magnitude(i).total_cmp(&magnitude(j)))
            .unwrap_or(0);
        if smallest == 0 || smallest == last || extrema.len() == count + 1 {
            let end = if magnitude(0) <= magnitude(last) {
                0
            } else {
                last
            };
            extrema.remove(end);
        } else {
            let neighbour = if magnitude(smallest - 1) <= magnitude(smallest + 1) {
                smallest - 1
            } else {
                smallest + 1
            };
            extrema.remove(smallest.max(neighbour));
            extrema.remove(smallest.min(neighbour));
        }
    }
    extrema
}

/// `T_0(y), .., T_degree(y)` by the three-term recurrence.
fn chebyshev_values(y: f64, degree: usize) -> Vec<f64> {
    let mut t = Vec::with_capacity(degree + 1);
    t.push(1.0);
    if degree >= 1 {
        t.push(y);
    }
    for k in 2..=degree {
        t.push(2.0 * y * t[k - 1] - t[k - 2]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approx::grid::alternations;

    #[test]
    fn the_minimax_error_of_x_to_the_n_plus_1_is_2_to_the_minus_n() {
        for n in [3, 8, 15] {
            let f = |x: f64| x.powi(n as i32 + 1);
            let m = remez(f, (-1.0, 1.0), n, &RemezOptions::default()).unwrap();
            let exact = 2.0_f64.powi(-(n as i32));
            eprintln!(
                "remez x^{} degree {n}: max error {:.6e} (exact {exact:.6e}), {} iterations",
                n + 1,
                m.max_error,
                m.iterations
            );
            assert!((m.max_error - exact).abs() <= 1e-6 * exact);
            assert_eq!(
                alternations((-1.0, 1.0), |x| f(x) - m.series.eval(x)),
                n + 2
            );
        }
    }

    #[test]
    fn a_generic_function_equioscillates_below_its_interpolation_error() {
        let f = |x: f64| x.exp() * (2.0 * x).sin() + 1.0 / (2.0 + x);
        for degree in [6, 10, 14] {
            let m = remez(f, (0.0, 3.0), degree, &RemezOptions::default()).unwrap();
            let interpolation = ChebyshevSeries::interpolate(f, (0.0, 3.0), degree)
                .unwrap()
                .max_error(f, MEASURE_SAMPLES)
                .unwrap();
            let count = alternations((0.0, 3.0), |x| f(x) - m.series.eval(x));
            eprintln!("remez e^x sin 2x + 1/(2+x) degree {degree}: max error {:.3e}, levelled {:.3e}, interpolation {interpolation:.3e}, {count} alternations", m.max_error, m.levelled_error);
            assert_eq!(count, degree + 2);
            assert_eq!(m.reference.len(), degree + 2);
            assert!(m.max_error <= interpolation);
            assert!(m.max_error - m.levelled_error <= 1e-6 * m.max_error);
        }
    }

    #[test]
    fn degree_63_converges_on_a_shifted_runge_function() {
        let f = |x: f64| 1.0 / (1.0 + 25.0 * (x - 0.1) * (x - 0.1));
        let m = remez(f, (-1.0, 1.0), 63, &RemezOptions::default()).unwrap();
        let interpolation = ChebyshevSeries::interpolate(f, (-1.0, 1.0), 63)
            .unwrap()
            .max_error(f, MEASURE_SAMPLES)
            .unwrap();
        let count = alternations((-1.0, 1.0), |x| f(x) - m.series.eval(x));
        eprintln!("remez 1/(1+25(x-0.1)^2) degree 63: max error {:.3e}, interpolation {interpolation:.3e}, {} iterations, {count} alternations", m.max_error, m.iterations);
        assert!(m.max_error <= interpolation);
        assert_eq!(count, 63 + 2);
    }

    #[test]
    fn relative_weight_levels_the_relative_error() {
        let f = |x: f64| 1.0 / x.sqrt();
        let options = RemezOptions {
            weight: Weight::Relative,
            ..RemezOptions::default()
        };
        let m = remez(f, (0.05, 1.0), 6, &options).unwrap();
        let relative = |p: &ChebyshevSeries, x: f64| (f(x) - p.eval(x)) / f(x);
        let interpolant = ChebyshevSeries::interpolate(f, (0.05, 1.0), 6).unwrap();
        let interpolation = chebyshev_grid((0.05, 1.0), MEASURE_SAMPLES)
            .fold(0.0_f64, |w, x| w.max(relative(&interpolant, x).abs()));
        let count = alternations((0.05, 1.0), |x| relative(&m.series, x));
        eprintln!("remez 1/sqrt(x) on [0.05, 1] degree 6, relative: max error {:.3e}, interpolation {interpolation:.3e}, {count} alternations", m.max_error);
        assert_eq!(count, 8);
        assert!(m.max_error < interpolation);
    }

    #[test]
    fn odd_sign_on_two_intervals_equioscillates_on_each() {
        let sign = |x: f64| x.signum();
        for degree in [7, 15] {
            let m = remez_odd(sign, (0.1, 1.0), degree, &RemezOptions::default()).unwrap();
            assert_eq!(m.series.interval(), (-1.0, 1.0));
            assert_eq!(m.series.parity(0.0), Some(Parity::Odd));
            let count = alternations((0.1, 1.0), |x| 1.0 - m.series.eval(x));
            let negative = alternations((-1.0, -0.1), |x| -1.0 - m.series.eval(x));
            eprintln!("remez_odd sign on ±[0.1, 1] degree {degree}: max error {:.3e}, {count} alternations per side", m.max_error);
            assert_eq!(
                (count, negative),
                (degree.div_ceil(2) + 1, degree.div_ceil(2) + 1)
            );
            assert!(m.max_error < 1.0);
        }
    }

    #[test]
    fn bad_requests_and_non_convergence_are_errors() {
        let options = RemezOptions::default();
        assert!(remez(f64::exp, (1.0, 0.0), 4, &options).is_err());
        assert!(remez(f64::exp, (0.0, 1.0), MAX_REMEZ_DEGREE + 1, &options).is_err());
        assert!(remez(f64::ln, (-1.0, 1.0), 4, &options).is_err());
        let relative = RemezOptions {
            weight: Weight::Relative,
            ..options
        };
        assert!(remez(f64::sin, (-1.0, 1.0), 4, &relative).is_err());
        for bad in [
            RemezOptions {
                max_iterations: 0,
                ..options
            },
            RemezOptions {
                tolerance: 0.0,
                ..options
            },
            RemezOptions {
                tolerance: f64::NAN,
                ..options
            },
        ] {
            assert!(remez(f64::exp, (0.0, 1.0), 4, &bad).is_err());
        }
        let once = RemezOptions {
            max_iterations: 1,
            ..options
        };
        let f = |x: f64| x.exp() * (3.0 * x).cos();
        match remez(f, (0.0, 2.0), 8, &once) {
            Err(Error::OutOfRange {
                op: "remez",
                detail,
            }) => assert!(detail.contains("no convergence"), "{detail}"),
            other => panic!("expected non-convergence, got {other:?}"),
        }
        assert!(remez_odd(f64::sin, (0.0, 1.0), 4, &options).is_err());
        assert!(remez_odd(f64::sin, (0.0, 1.0), 0, &options).is_err());
        assert!(remez_odd(f64::sin, (-0.5, 1.0), 5, &options).is_err());
        assert!(remez_odd(f64::cos, (0.1, 1.0), 5, &options).is_err());
    }

    #[test]
    fn an_exactly_representable_function_stops_at_the_noise_floor() {
        let p = ChebyshevSeries::new(vec![1.0, -0.5, 0.25, 0.125], (-1.0, 2.0)).unwrap();
        let m = remez(|x| p.eval(x), (-1.0, 2.0), 5, &RemezOptions::default()).unwrap();
        eprintln!(
            "remez of a cubic at degree 5: max error {:.3e}",
            m.max_error
        );
        assert!(m.max_error < 1e-14);
    }
}
