//! The four non-linear functions of the friendly transformer, exact or as
//! the polynomials the encrypted circuit evaluates, with range guards.
//!
//! - `exp` of the attention exponent `x ≤ 0`: exact `e^x`, or
//!   [`ExpBySquaring`] `(1 + x/2^r)^(2^r)`. Its absolute error on
//!   `(−2^r, 0]` is below `e^x` (since `0 ≤ (1 + x/n)^n ≤ e^x` there), so
//!   [`FittedNonLinearities::errors`] measures it on `[max(lo, −64), 0]` and
//!   adds `e^−64`.
//! - ReLU: exact `max(x, 0)`, or `B·relu_B(x/B)` with the composite ReLU
//!   [`CompositeRelu`] of `[−1, 1]` (exact for the exact function, since
//!   ReLU is positively homogeneous); absolute error `B·err([−1, 1])`.
//! - `1/√v` of LayerNorm's `v = σ² + eps`: exact, or the relative minimax
//!   guess plus Newton steps ([`NewtonApproximation`]) of least depth that
//!   meets the requested relative error on the variance range.
//! - tanh: exact, or the odd minimax polynomial of the configured degree on
//!   `[−B, B]` ([`fit_tanh`]).
//! - softmax attention's row (the baseline, [`NonLinear::softmax_row`]):
//!   exact, or the circuit's: masked scores at `−B`, the row maximum by a
//!   tree of `a + relu(b − a)`, the same exp, and `1/s` of the row sum as
//!   a Newton reciprocal on the configured range.
//!
//! Every evaluation, in either variant, checks its input against the
//! configured range and counts an input outside it in
//! [`RangeViolations`]; the value is still the polynomial's (the circuit
//! would diverge the same way), never a panic.

use crate::approx::{
    fit_tanh, Approximation, CompositeRelu, CompositeSign, ExpBySquaring, NewtonApproximation,
    NewtonTarget,
};
use crate::error::Result;

use super::config::ApproximationRanges;

/// Which functions the forward evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// `exp`, `max(0, x)`, `1/√x`, `tanh` as `f64` computes them.
    Exact,
    /// The polynomials of [`FittedNonLinearities`], in the circuit's order.
    Polynomial,
}

/// How many inputs fell outside their function's configured range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeViolations {
    /// Attention exponents below the exp range's `lo` (unmasked or not).
    pub exp: usize,
    /// ReLU inputs with `|x| > B`.
    pub relu: usize,
    /// LayerNorm `σ² + eps` outside the variance range.
    pub inv_sqrt: usize,
    /// tanh inputs with `|x| > B`.
    pub tanh: usize,
    /// Softmax row sums outside the reciprocal's range.
    pub reciprocal: usize,
}

impl RangeViolations {
    /// All violations together.
    pub fn total(&self) -> usize {
        self.exp + self.relu + self.inv_sqrt + self.tanh + self.reciprocal
    }
}

/// The largest error of each polynomial on its range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ApproximationErrors {
    /// Absolute, of exp on `[lo, 0]`.
    pub exp: f64,
    /// Absolute, of ReLU on `[−B, B]`.
    pub relu: f64,
    /// Relative, of `1/√v` on the variance range.
    pub inv_sqrt: f64,
    /// Absolute, of tanh on `[−B, B]`.
    pub tanh: f64,
    /// Relative, of softmax's `1/s` on the row sums' range.
    pub reciprocal: f64,
}

/// The polynomials of one model, fitted once from its ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct FittedNonLinearities {
    ranges: ApproximationRanges,
    exp: Approximation,
    relu: Approximation,
    inv_sqrt: Approximation,
    tanh: Approximation,
    reciprocal: Approximation,
    errors: ApproximationErrors,
}

/// Below this exponent `e^x ≤ e^−64` bounds the exp error.
const EXP_NEGLIGIBLE_BELOW: f64 = -64.0;
/// Grid points for the exp error.
const EXP_ERROR_SAMPLES: usize = 20_001;
/// The deepest inverse square root searched (polynomial and Newton steps).
const INV_SQRT_MAX_DEPTH: usize = 24;

impl FittedNonLinearities {
    /// Fits every polynomial (tens of milliseconds).
    ///
    /// Errors: a range the fits refuse (see [`ExpBySquaring::new`],
    /// [`CompositeSign::fit_default`], [`NewtonApproximation::fit_to_error`]
    /// with depth up to `INV_SQRT_MAX_DEPTH` = 24, [`fit_tanh`]).
    pub fn fit(ranges: &ApproximationRanges) -> Result<Self> {
        let exp = ExpBySquaring::new(ranges.exp_argument, ranges.exp_squarings)?;
        let epsilon = 2.0_f64.powi(-(ranges.sign_epsilon_bits as i32));
        let sign = CompositeSign::fit_default(epsilon, ranges.sign_precision_bits)?;
        let relu = CompositeRelu::from_sign(&sign)?;
        let inv_sqrt = NewtonApproximation::fit_to_error(
            NewtonTarget::InverseSqrt,
            ranges.variance,
            ranges.inv_sqrt_relative_error,
            INV_SQRT_MAX_DEPTH,
        )?;
        let tanh = fit_tanh(ranges.tanh_bound, ranges.tanh_degree)?;
        let reciprocal = NewtonApproximation::fit_to_error(
            NewtonTarget::Reciprocal,
            ranges.softmax_row_sum,
            ranges.inv_sqrt_relative_error,
            INV_SQRT_MAX_DEPTH,
        )?;
        let errors = ApproximationErrors {
            exp: exp_absolute_error(&exp),
            relu: ranges.relu_bound * relu.max_error(),
            inv_sqrt: inv_sqrt.max_relative_error(),
            tanh: tanh.max_error,
            reciprocal: reciprocal.max_relative_error(),
        };
        Ok(Self {
            ranges: ranges.clone(),
            exp: Approximation::ExpBySquaring(exp),
            relu: Approximation::CompositeRelu(relu),
            inv_sqrt: Approximation::Newton(inv_sqrt),
            tanh: Approximation::Polynomial(tanh.series),
            reciprocal: Approximation::Newton(reciprocal),
            errors,
        })
    }

    /// The ranges the polynomials were fitted on.
    pub fn ranges(&self) -> &ApproximationRanges {
        &self.ranges
    }

    /// The largest error of each polynomial on its range.
    pub fn errors(&self) -> ApproximationErrors {
        self.errors
    }

    /// The approximations, in the order exp, ReLU (on `[−1, 1]`), inverse
    /// square root, tanh: what the encrypted circuit evaluates.
    pub fn approximations(&self) -> [&Approximation; 4] {
        [&self.exp, &self.relu, &self.inv_sqrt, &self.tanh]
    }

    /// Softmax's reciprocal of the row sums (the baseline's attention).
    pub fn reciprocal(&self) -> &Approximation {
        &self.reciprocal
    }

    /// The functions of `variant`, counting range violations.
    pub fn evaluator(&self, variant: Variant) -> NonLinear<'_> {
        NonLinear {
            fitted: self,
            variant,
            violations: RangeViolations::default(),
        }
    }
}

/// `sup |(1 + x/2^r)^(2^r) − e^x|` on the exp range (see the module docs).
fn exp_absolute_error(exp: &ExpBySquaring) -> f64 {
    let (lo, hi) = exp.interval();
    let start = lo.max(EXP_NEGLIGIBLE_BELOW).min(hi);
    let step = (hi - start) / (EXP_ERROR_SAMPLES - 1) as f64;
    let sampled = (0..EXP_ERROR_SAMPLES)
        .map(|i| start + step * i as f64)
        .map(|x| (exp.eval(x) - x.exp()).abs())
        .fold(0.0, f64::max);
    sampled + EXP_NEGLIGIBLE_BELOW.exp()
}

/// One forward's non-linear functions: the variant's values, and the
/// inputs that left their ranges.
pub struct NonLinear<'a> {
    fitted: &'a FittedNonLinearities,
    variant: Variant,
    violations: RangeViolations,
}

impl NonLinear<'_> {
    /// `e^x` for the attention exponent.
    pub fn exp(&mut self, x: f64) -> f64 {
        let (lo, hi) = self.fitted.ranges.exp_argument;
        if !(lo..=hi).contains(&x) {
            self.violations.exp += 1;
        }
        match self.variant {
            Variant::Exact => x.exp(),
            Variant::Polynomial => self.fitted.exp.eval(x),
        }
    }

    /// `max(x, 0)`.
    pub fn relu(&mut self, x: f64) -> f64 {
        let bound = self.fitted.ranges.relu_bound;
        if x.abs() > bound {
            self.violations.relu += 1;
        }
        match self.variant {
            Variant::Exact => x.max(0.0),
            Variant::Polynomial => bound * self.fitted.relu.eval(x / bound),
        }
    }

    /// `1/√v` for LayerNorm's `v = σ² + eps`.
    pub fn inv_sqrt(&mut self, v: f64) -> f64 {
        let (a, b) = self.fitted.ranges.variance;
        if !(a..=b).contains(&v) {
            self.violations.inv_sqrt += 1;
        }
        match self.variant {
            Variant::Exact => 1.0 / v.sqrt(),
            Variant::Polynomial => self.fitted.inv_sqrt.eval(v),
        }
    }

    /// `tanh(x)`.
    pub fn tanh(&mut self, x: f64) -> f64 {
        if x.abs() > self.fitted.ranges.tanh_bound {
            self.violations.tanh += 1;
        }
        match self.variant {
            Variant::Exact => x.tanh(),
            Variant::Polynomial => self.fitted.tanh.eval(x),
        }
    }

    /// Softmax attention's weights of one row of `scores` (the keys'
    /// `q·k/√d_head`), zero on the masked keys (`mask[j]` false), in the
    /// circuit's order for the polynomial variant: the row padded with
    /// masked keys to `width` (the circuit's block, a power of two), the
    /// masked scores set to `−B`, the maximum by the circuit's tree
    /// (`m_j ← m_j + relu(m_{j+2^t} − m_j)`, `t = 0, 1, ..`), exp of the
    /// differences, the masked terms zeroed, `1/s` of their sum.
    pub fn softmax_row(&mut self, scores: &[f64], mask: &[bool], width: usize) -> Vec<f64> {
        if self.variant == Variant::Exact {
            let top = scores
                .iter()
                .zip(mask)
                .filter(|(_, &keep)| keep)
                .fold(f64::NEG_INFINITY, |m, (&s, _)| m.max(s));
            let terms: Vec<f64> = scores
                .iter()
                .zip(mask)
                .map(|(&s, &keep)| if keep { (s - top).exp() } else { 0.0 })
                .collect();
            let sum: f64 = terms.iter().sum();
            return terms.iter().map(|t| t / sum).collect();
        }
        let bound = self.fitted.ranges.softmax_bound;
        let width = width.max(scores.len()).next_power_of_two();
        let masked: Vec<f64> = (0..width)
            .map(|j| match (scores.get(j), mask.get(j)) {
                (Some(&s), Some(true)) => s,
                _ => -bound,
            })
            .collect();
        let mut tree = masked.clone();
        let mut step = 1;
        while step < width {
            tree = (0..width)
                .map(|j| tree[j] + self.relu(tree[(j + step) % width] - tree[j]))
                .collect();
            step *= 2;
        }
        let top = tree[0];
        let terms: Vec<f64> = scores
            .iter()
            .zip(mask)
            .zip(&masked)
            .map(|((_, &keep), &s)| {
                let z = s - top;
                if z < self.fitted.ranges.exp_argument.0 {
                    self.violations.exp += 1;
                }
                if keep {
                    self.fitted.exp.eval(z)
                } else {
                    0.0
                }
            })
            .collect();
        let sum: f64 = terms.iter().sum();
        let (a, b) = self.fitted.ranges.softmax_row_sum;
        if !(a..=b).contains(&sum) {
            self.violations.reciprocal += 1;
        }
        let inverse = self.fitted.reciprocal.eval(sum);
        terms.iter().map(|t| t * inverse).collect()
    }

    /// The violations counted so far.
    pub fn violations(&self) -> RangeViolations {
        self.violations
    }
}
