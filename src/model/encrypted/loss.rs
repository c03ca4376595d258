//! Loss gradients under encryption, on logits laid out as the encrypted
//! model's head writes them: class `j` in slot `j·stride`, the other slots
//! arbitrary. The labels travel encrypted, in the same layout.
//!
//! **Cross-entropy**, `∂L/∂z = softmax(z) − onehot(y)` ([`SoftmaxGradient`]):
//!
//! 1. `z_m = z ⊙ M` (`M` the class slots' mask, one level), so that every
//!    slot lies in the polynomials' ranges;
//! 2. `e = exp_p(z_m − B)`, a fitted polynomial of `exp` on `[−2B, 0]`
//!    (`B` bounds the logits; the shift by `B` is softmax's invariance), and
//!    `e_m = e ⊙ M`;
//! 3. `s = Σ_j e_m[j]` in every class slot: `e_m` plus its copy `C'·stride`
//!    further (`C'` the class count rounded up to a power of two), then
//!    rotate-and-sum by `stride` over `C'`; the other slots get `1 − M`
//!    added, which keeps them inside the reciprocal's range;
//! 4. `r = rec(s)`, polynomial and Newton steps on `[e^{−2B}, C]`;
//! 5. `e_m ⊙ r − label`.
//!
//! [`SoftmaxGradient::twin`] is the same computation in `f64`.
//!
//! **Mean squared error**, `∂/∂ŷ (ŷ − y)² = 2(ŷ − y)` ([`mse_gradient`]).

use crate::approx::{fit_exp_polynomial, Approximation, NewtonApproximation, NewtonTarget};
use crate::circuits::combine::{combine, multiply_pairs};
use crate::circuits::functions::evaluate_batch;
use crate::circuits::refresh::{ensure_all, ensure_both, Refresh};
use crate::ckks::{Ciphertext, Encoder, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;

const OP: &str = "loss";

/// The absolute error asked of the exp polynomial.
const EXP_ERROR: f64 = 1.0 / (1u64 << 20) as f64;
/// The relative error asked of the reciprocal.
const RECIPROCAL_ERROR: f64 = 1.0 / (1u64 << 14) as f64;
/// The deepest reciprocal searched.
const RECIPROCAL_MAX_DEPTH: usize = 24;

/// The cross-entropy gradient for one logits layout.
#[derive(Clone, Debug)]
pub struct SoftmaxGradient {
    classes: usize,
    stride: usize,
    slots: usize,
    bound: f64,
    exp: Approximation,
    reciprocal: Approximation,
}

impl SoftmaxGradient {
    /// The gradient for `classes` classes at slots `j·stride` of
    /// ciphertexts of `slots` slots, logits in `[−bound, bound]`.
    ///
    /// Errors: fewer than two classes, a layout that does not fit twice in
    /// the slots (`2·C'·stride ≤ slots`), a bound that is not positive, or
    /// fits that fail.
    pub fn new(classes: usize, stride: usize, slots: usize, bound: f64) -> Result<Self> {
        let padded = classes.next_power_of_two();
        if classes < 2 || stride == 0 || 2 * padded * stride > slots {
            return Err(Error::InvalidParameters(format!(
                "{OP}: {classes} classes at stride {stride} need 2·{padded}·{stride} ≤ {slots} slots"
            )));
        }
        if !(bound.is_finite() && bound > 0.0) {
            return Err(Error::InvalidParameters(format!(
                "{OP}: the logits' bound {bound} must be positive"
            )));
        }
        let exp = fit_exp_polynomial((-2.0 * bound, 0.0), EXP_ERROR)?.series;
        let low = (-2.0 * bound).exp() * (1.0 - EXP_ERROR).max(0.5);
        let reciprocal = NewtonApproximation::fit_to_error(
            NewtonTarget::Reciprocal,
            (low, classes as f64 + 1.0),
            RECIPROCAL_ERROR,
            RECIPROCAL_MAX_DEPTH,
        )?;
        Ok(Self {
            classes,
            stride,
            slots,
            bound,
            exp: Approximation::Polynomial(exp),
            reciprocal: Approximation::Newton(reciprocal),
        })
    }

    /// The rotation steps: the copy `−C'·stride` and the sum's
    /// `stride·2^t`.
    pub fn rotations(&self) -> Vec<i64> {
        Self::rotations_for(self.classes, self.stride)
    }

    /// [`rotations`](Self::rotations) of `classes` classes at `stride`,
    /// without fitting the polynomials.
    pub fn rotations_for(classes: usize, stride: usize) -> Vec<i64> {
        let padded = classes.next_power_of_two();
        let mut steps = Evaluator::rotations_for_sum(stride as i64, padded);
        steps.push(-((padded * stride) as i64));
        steps
    }

    /// The class slots' mask (1 at `j·stride`, `j < C`).
    fn mask(&self) -> Vec<Complex> {
        let mut mask = vec![Complex::ZERO; self.slots];
        for j in 0..self.classes {
            mask[j * self.stride] = Complex::from(1.0);
        }
        mask
    }

    /// `ct ⊙ M`, the scale kept (one level).
    fn masked(&self, ev: &Evaluator, encoder: &Encoder, ct: &Ciphertext) -> Result<Ciphertext> {
        let prime = ev.context().params().q()[ct.level()] as f64;
        let pt = encoder.encode_complex(&self.mask(), ct.level(), prime)?;
        let mut out = ct.try_clone()?;
        ev.mul_plain_assign(&mut out, &pt)?;
        ev.rescale_assign(&mut out)?;
        Ok(out)
    }

    /// `softmax(z) − onehot(y)` for every example's logits and encrypted
    /// label, in lockstep, levels from `refresher`.
    ///
    /// Errors: lists of different lengths, ciphertexts of another slot
    /// count, the operations' errors (a missing rotation key among them).
    pub fn evaluate(
        &self,
        ev: &Evaluator,
        encoder: &Encoder,
        logits: &[Ciphertext],
        labels: &[Ciphertext],
        refresher: &mut dyn Refresh,
    ) -> Result<Vec<Ciphertext>> {
        if logits.len() != labels.len() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: labels.len(),
                expected: logits.len(),
            });
        }
        if let Some(ct) = logits
            .iter()
            .chain(labels)
            .find(|ct| ct.slots() != self.slots)
        {
            return Err(Error::LengthMismatch {
                op: OP,
                got: ct.slots(),
                expected: self.slots,
            });
        }
        let scale = ev.context().params().default_scale();
        let mut z = copies(logits)?;
        ensure_all(refresher, ev, &mut z, self.bound, 1)?;
        let shifted = z
            .iter()
            .map(|z| {
                let mut x = self.masked(ev, encoder, z)?;
                ev.add_const_assign(&mut x, Complex::from(-self.bound))?;
                Ok(x)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut e = evaluate_batch(ev, &shifted, &self.exp, 2.0 * self.bound, refresher)?;
        ensure_all(refresher, ev, &mut e, 1.0, 1)?;
        let e_m = e
            .iter()
            .map(|e| self.masked(ev, encoder, e))
            .collect::<Result<Vec<_>>>()?;
        let padded = self.classes.next_power_of_two();
        let outside: Vec<Complex> = self
            .mask()
            .iter()
            .map(|m| Complex::from(1.0 - m.re))
            .collect();
        let sums = e_m
            .iter()
            .map(|e| {
                let copy = ev.rotate_new(e, -((padded * self.stride) as i64))?;
                let periodic = ev.add_new(e, &copy)?;
                let mut s = ev.rotate_and_sum_new(&periodic, self.stride as i64, padded)?;
                let pt = encoder.encode_complex(&outside, s.level(), s.scale())?;
                ev.add_plain_assign(&mut s, &pt)?;
                Ok(s)
            })
            .collect::<Result<Vec<_>>>()?;
        let classes = self.classes as f64;
        let mut r = evaluate_batch(ev, &sums, &self.reciprocal, classes + 1.0, refresher)?;
        let mut e_m = e_m;
        let reciprocal_bound = (2.0 * self.bound).exp();
        let mut softmax =
            multiply_pairs(ev, (&mut e_m, 1.0), (&mut r, reciprocal_bound), refresher)?;
        let mut labels = copies(labels)?;
        ensure_both(refresher, ev, (&mut softmax, 1.0), (&mut labels, 1.0), 1)?;
        softmax
            .iter()
            .zip(&labels)
            .map(|(p, y)| combine(ev, &[(p, 1.0), (y, -1.0)], scale))
            .collect()
    }

    /// The softmax of `logits` (one per class) as the circuit computes it,
    /// in `f64`: the gradient is this minus the one-hot label.
    pub fn twin(&self, logits: &[f64]) -> Vec<f64> {
        let e: Vec<f64> = logits
            .iter()
            .map(|&z| self.exp.eval(z - self.bound))
            .collect();
        let r = self.reciprocal.eval(e.iter().sum());
        e.iter().map(|e| e * r).collect()
    }
}

/// Copies of `cts`.
fn copies(cts: &[Ciphertext]) -> Result<Vec<Ciphertext>> {
    cts.iter().map(Ciphertext::try_clone).collect()
}

/// `2(ŷ − y)` for every prediction and encrypted target, one level at the
/// default scale (`bound` bounds both, for the refresher).
///
/// Errors: lists of different lengths, the operations' errors.
pub fn mse_gradient(
    ev: &Evaluator,
    predictions: &[Ciphertext],
    targets: &[Ciphertext],
    bound: f64,
    refresher: &mut dyn Refresh,
) -> Result<Vec<Ciphertext>> {
    if predictions.len() != targets.len() {
        return Err(Error::LengthMismatch {
            op: OP,
            got: targets.len(),
            expected: predictions.len(),
        });
    }
    let scale = ev.context().params().default_scale();
    let (mut p, mut y) = (copies(predictions)?, copies(targets)?);
    ensure_both(refresher, ev, (&mut p, bound), (&mut y, bound), 1)?;
    p.iter()
        .zip(&y)
        .map(|(p, y)| combine(ev, &[(p, 2.0), (y, -2.0)], scale))
        .collect()
}
