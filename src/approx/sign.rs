//! Composite minimax sign in the style of Lee, Lee, Kim and No, and ReLU
//! built on it.
//!
//! Domain: inputs satisfy `ε ≤ |x| ≤ 1`. Stage 1 is the minimax odd
//! polynomial for `sign` on `[−1, −ε] ∪ [ε, 1]` ([`remez_odd`]); with max
//! error `δ_1` it maps `[ε, 1]` into `[1 − δ_1, 1 + δ_1]`, so stage 2 is the
//! minimax odd polynomial for `sign` on `±[1 − δ_1', 1 + δ_1']`, where
//! `δ' = δ·(1 + RANGE_MARGIN)` covers what the dense sampling of the error
//! might miss; and so on until a stage's error is at most `2^−α`. Each stage
//! is odd, so the composition is odd and the same bound holds on the
//! negative side. Stage `i` uses `degrees[i]` (the last degree repeats); the
//! final stage uses the smallest odd degree that reaches the target, which
//! saves depth. Depth: `Σ_i ⌈log2(d_i + 1)⌉`
//! ([`polynomial_depth`](super::polynomial_depth)).
//!
//! ReLU: `x·(1 + sign(x))/2`. The affine map `(1 + s)/2` is folded into the
//! coefficients of the last stage (free), so the ReLU circuit is the stages
//! followed by one product with `x`: depth `sign depth + 1`. On the gap
//! `|x| < ε` the error is at most `ε·(1 + max|s|)/2`.

use super::chebyshev::ChebyshevSeries;
use super::grid::{max_deviation, MEASURE_SAMPLES};
use super::remez::{remez_odd, Minimax, RemezOptions};
use crate::error::{Error, Result};

/// The degree schedules [`CompositeSign::fit_default`] tries (the last
/// degree of each repeats).
pub const DEFAULT_SIGN_SCHEDULES: [&[usize]; 6] = [&[7], &[15], &[31], &[31, 15], &[63], &[63, 15]];

/// The most stages a composite sign may use.
pub const MAX_SIGN_STAGES: usize = 16;

/// The highest target precision in bits (the `f64` noise floor of the
/// Remez exchange is about `2^−46`).
pub const MAX_SIGN_PRECISION_BITS: u32 = 40;

/// Relative widening of each stage's output range before it becomes the
/// next stage's domain.
const RANGE_MARGIN: f64 = 1.0 / (1u64 << 20) as f64;

/// `p_k ∘ … ∘ p_1`, odd polynomials approximating `sign` on `ε ≤ |x| ≤ 1`.
///
/// Invariants: at least one stage; every stage odd, on `[−r, r]` with `r`
/// the previous stage's widened output bound (`1` for the first).
#[derive(Clone, Debug, PartialEq)]
pub struct CompositeSign {
    stages: Vec<ChebyshevSeries>,
    epsilon: f64,
    error_bound: f64,
    max_error: f64,
}

impl CompositeSign {
    /// Fits stages with the degree schedule `degrees` (odd, at least 3;
    /// the last one repeats) until the error is at most `2^−alpha_bits` on
    /// `ε ≤ |x| ≤ 1`.
    ///
    /// Errors: `ε` outside `(0, 1)`, `alpha_bits` outside
    /// `1..=MAX_SIGN_PRECISION_BITS`, a bad schedule, a stage that makes no
    /// progress (degree too low for `ε`), more than [`MAX_SIGN_STAGES`]
    /// stages, or a Remez failure.
    pub fn fit(epsilon: f64, alpha_bits: u32, degrees: &[usize]) -> Result<Self> {
        let valid = epsilon > 0.0
            && epsilon < 1.0
            && (1..=MAX_SIGN_PRECISION_BITS).contains(&alpha_bits)
            && !degrees.is_empty()
            && degrees.iter().all(|&d| d >= 3 && d % 2 == 1);
        if !valid {
            return Err(Error::InvalidParameters(format!(
                "composite sign: needs 0 < epsilon < 1 (got {epsilon}), 1 <= alpha <= \
                 {MAX_SIGN_PRECISION_BITS} (got {alpha_bits}) and odd degrees >= 3 (got {degrees:?})"
            )));
        }
        let target = 2.0_f64.powi(-(alpha_bits as i32));
        let mut stages = Vec::new();
        let mut domain = (epsilon, 1.0);
        let error_bound = loop {
            let scheduled = degrees[stages.len().min(degrees.len() - 1)];
            let stage = fit_stage(domain, scheduled, target)?;
            let delta = stage.max_error;
            stages.push(stage.series);
            if delta <= target {
                break delta;
            }
            let widened = delta * (1.0 + RANGE_MARGIN);
            let next = (1.0 - widened, 1.0 + widened);
            if next.0 / next.1 <= domain.0 / domain.1 || stages.len() == MAX_SIGN_STAGES {
                return Err(Error::OutOfRange {
                    op: "composite sign",
                    detail: format!(
                        "stage {} of degree {scheduled} on [{}, {}] leaves error {delta:e}: \
                         no progress to 2^-{alpha_bits} within {MAX_SIGN_STAGES} stages \
                         (raise the degrees)",
                        stages.len(),
                        domain.0,
                        domain.1
                    ),
                });
            }
            domain = next;
        };
        let max_error = max_deviation("composite sign", (epsilon, 1.0), MEASURE_SAMPLES, |x| {
            compose(&stages, x) - 1.0
        })?;
        Ok(Self {
            stages,
            epsilon,
            error_bound,
            max_error,
        })
    }

    /// The fit of least depth among the [`DEFAULT_SIGN_SCHEDULES`]; ties go
    /// to the smaller sum of degrees (fewer multiplications).
    ///
    /// Errors: those of [`Self::fit`] when no schedule succeeds (the last
    /// schedule's error is returned).
    pub fn fit_default(epsilon: f64, alpha_bits: u32) -> Result<Self> {
        let mut best: Option<Self> = None;
        let mut last_error = None;
        for schedule in DEFAULT_SIGN_SCHEDULES {
            match Self::fit(epsilon, alpha_bits, schedule) {
                Ok(fit) => {
                    if best.as_ref().is_none_or(|b| fit.cost() < b.cost()) {
                        best = Some(fit);
                    }
                }
                Err(e) => last_error = Some(e),
            }
        }
        match (best, last_error) {
            (Some(fit), _) => Ok(fit),
            (None, Some(e)) => Err(e),
            (None, None) => Err(Error::InvalidParameters(
                "composite sign: no default schedule".into(),
            )),
        }
    }

    /// `(depth, Σ degrees)`, compared lexicographically.
    fn cost(&self) -> (usize, usize) {
        (
            self.depth(),
            self.stages.iter().map(ChebyshevSeries::degree).sum(),
        )
    }

    /// The polynomials, first applied first.
    pub fn stages(&self) -> &[ChebyshevSeries] {
        &self.stages
    }

    /// The lower bound `ε` of `|x|` on the domain.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// `Σ_i ⌈log2(d_i + 1)⌉`.
    pub fn depth(&self) -> usize {
        self.stages.iter().map(ChebyshevSeries::depth).sum()
    }

    /// The last stage's minimax error: a bound on the error on the domain
    /// (at most the requested `2^−α`).
    pub fn error_bound(&self) -> f64 {
        self.error_bound
    }

    /// `max |s(x) − sign(x)|` measured on a dense grid of `ε ≤ |x| ≤ 1`.
    pub fn max_error(&self) -> f64 {
        self.max_error
    }

    /// `p_k(…p_1(x))`.
    pub fn eval(&self, x: f64) -> f64 {
        compose(&self.stages, x)
    }
}

/// `x·(1 + s(x))/2` with `s` a [`CompositeSign`], the affine part folded
/// into the last stage (see the module docs).
///
/// Invariants: the stages are those of the sign, the last one replaced by
/// `(1 + p_k)/2`.
#[derive(Clone, Debug, PartialEq)]
pub struct CompositeRelu {
    stages: Vec<ChebyshevSeries>,
    epsilon: f64,
    max_error: f64,
}

impl CompositeRelu {
    /// ReLU on `[−1, 1]` from `sign`.
    ///
    /// Errors: none in practice (the folded coefficients stay finite); the
    /// `Result` carries [`ChebyshevSeries::affine`]'s check.
    pub fn from_sign(sign: &CompositeSign) -> Result<Self> {
        let mut stages = sign.stages.clone();
        if let Some(last) = stages.last_mut() {
            *last = last.affine(0.5, 0.5)?;
        }
        let epsilon = sign.epsilon;
        let error = |x: f64| x * compose(&stages, x) - x.max(0.0);
        let outside = max_deviation("composite ReLU", (-1.0, 1.0), MEASURE_SAMPLES, error)?;
        let gap = max_deviation(
            "composite ReLU",
            (-epsilon, epsilon),
            MEASURE_SAMPLES,
            error,
        )?;
        Ok(Self {
            stages,
            epsilon,
            max_error: outside.max(gap),
        })
    }

    /// The polynomials, first applied first; the result multiplies `x`.
    pub fn stages(&self) -> &[ChebyshevSeries] {
        &self.stages
    }

    /// The `ε` of the underlying sign.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The sign's depth plus one for the product with `x`.
    pub fn depth(&self) -> usize {
        self.stages
            .iter()
            .map(ChebyshevSeries::depth)
            .sum::<usize>()
            + 1
    }

    /// `max |relu(x) − max(x, 0)|` measured on dense grids of `[−1, 1]` and
    /// of the gap `[−ε, ε]`.
    pub fn max_error(&self) -> f64 {
        self.max_error
    }

    /// `x · q_k(p_{k−1}(…p_1(x)))`, the order of the encrypted circuit.
    pub fn eval(&self, x: f64) -> f64 {
        x * compose(&self.stages, x)
    }

    /// The step `q_k(p_{k−1}(…p_1(x)))`, `(1 + sign x)/2`: what the circuit
    /// takes for ReLU's derivative.
    pub fn step(&self, x: f64) -> f64 {
        compose(&self.stages, x)
    }
}

/// `stages` applied to `x`, first stage first.
fn compose(stages: &[ChebyshevSeries], x: f64) -> f64 {
    stages.iter().fold(x, |y, p| p.eval(y))
}

/// The minimax odd approximation of `sign` on `±domain` of degree
/// `scheduled`, or of the smallest odd degree below it that already reaches
/// `target` when `scheduled` does.
fn fit_stage(domain: (f64, f64), scheduled: usize, target: f64) -> Result<Minimax> {
    let sign = |x: f64| x.signum();
    let options = RemezOptions::default();
    let full = remez_odd(sign, domain, scheduled, &options)?;
    if full.max_error > target {
        return Ok(full);
    }
    Ok((3..scheduled)
        .step_by(2)
        .find_map(|degree| {
            remez_odd(sign, domain, degree, &options)
                .ok()
                .filter(|m| m.max_error <= target)
        })
        .unwrap_or(full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_sign_meets_the_requested_precision() {
        for (epsilon_bits, alpha) in [(6, 8), (8, 12), (10, 16), (12, 20), (20, 20)] {
            let epsilon = 2.0_f64.powi(-epsilon_bits);
            let sign = CompositeSign::fit_default(epsilon, alpha).unwrap();
            let degrees: Vec<usize> = sign.stages().iter().map(|p| p.degree()).collect();
            let target = 2.0_f64.powi(-(alpha as i32));
            eprintln!(
                "sign eps 2^-{epsilon_bits}, alpha {alpha}: degrees {degrees:?}, depth {}, max error {:.3e} (bound {:.3e}, target {target:.3e})",
                sign.depth(), sign.max_error(), sign.error_bound()
            );
            assert!(sign.max_error() <= target && sign.error_bound() <= target);
            assert_eq!(
                sign.depth(),
                degrees
                    .iter()
                    .map(|&d| crate::approx::polynomial_depth(d))
                    .sum::<usize>()
            );
            for p in sign.stages() {
                assert_eq!(p.parity(0.0), Some(crate::approx::Parity::Odd));
            }
            for x in [epsilon, 0.3, 1.0] {
                assert_eq!(sign.eval(-x), -sign.eval(x));
            }
        }
    }

    #[test]
    fn a_fixed_schedule_is_followed_and_the_last_stage_is_economical() {
        let sign = CompositeSign::fit(2.0_f64.powi(-8), 12, &[15]).unwrap();
        let degrees: Vec<usize> = sign.stages().iter().map(|p| p.degree()).collect();
        let (last, rest) = degrees.split_last().unwrap();
        assert!(rest.iter().all(|&d| d == 15) && *last <= 15, "{degrees:?}");
        eprintln!(
            "sign eps 2^-8, alpha 12, [15]: degrees {degrees:?}, max error {:.3e}",
            sign.max_error()
        );
        assert!(sign.max_error() <= 2.0_f64.powi(-12));
    }

    /// `|relu − x(1 + s)/2| = |x|·|s − sign x|/2`: at most `2^−α/2` on the
    /// domain and `ε(2 + 2^−α)/2` on the gap.
    #[test]
    fn relu_error_is_bounded_on_the_domain_and_the_gap() {
        for (epsilon_bits, alpha) in [(8, 12), (12, 20)] {
            let epsilon = 2.0_f64.powi(-epsilon_bits);
            let sign = CompositeSign::fit_default(epsilon, alpha).unwrap();
            let relu = CompositeRelu::from_sign(&sign).unwrap();
            let target = 2.0_f64.powi(-(alpha as i32));
            let bound = (target / 2.0).max(epsilon * (2.0 + target) / 2.0);
            eprintln!(
                "relu eps 2^-{epsilon_bits}, alpha {alpha}: depth {}, max error on [-1, 1] {:.3e} (bound {bound:.3e})",
                relu.depth(), relu.max_error()
            );
            assert!(relu.max_error() <= bound);
            assert_eq!(relu.depth(), sign.depth() + 1);
            let domain_error = max_deviation("test", (epsilon, 1.0), MEASURE_SAMPLES, |x| {
                (relu.eval(x) - x).abs().max(relu.eval(-x).abs())
            })
            .unwrap();
            assert!(domain_error <= target / 2.0, "{domain_error:e}");
        }
    }

    #[test]
    fn bad_requests_are_errors() {
        for (epsilon, alpha, degrees) in [
            (0.0, 10, &[15][..]),
            (1.0, 10, &[15]),
            (f64::NAN, 10, &[15]),
            (0.01, 0, &[15]),
            (0.01, MAX_SIGN_PRECISION_BITS + 1, &[15]),
            (0.01, 10, &[]),
            (0.01, 10, &[1]),
            (0.01, 10, &[15, 8]),
        ] {
            assert!(matches!(
                CompositeSign::fit(epsilon, alpha, degrees),
                Err(Error::InvalidParameters(_))
            ));
        }
        match CompositeSign::fit(2.0_f64.powi(-30), 20, &[3]) {
            Err(Error::OutOfRange { detail, .. }) => {
                assert!(detail.contains("no progress"), "{detail}")
            }
            other => panic!("expected no progress, got {other:?}"),
        }
    }
}
