//! The fitted approximations of [`crate::approx`] under encryption: one
//! polynomial, composed polynomials (sign, ReLU), a polynomial guess and
//! Newton steps (inverse square root, reciprocal), and exp by squaring.
//!
//! Each circuit follows the order of operations of the `f64` evaluation
//! ([`Approximation::eval`]), so the plain evaluation is its twin. Scales stay
//! exact: the halving of the inverse square root's `h = x/2` is a
//! relabelling of the scale, the one sum of two ciphertexts (the inverse square root's
//! `1.5·y − (h·y)·(y·y)`) is formed before its rescale with the constant
//! encoded at the scale that makes both terms equal.
//!
//! Levels: a polynomial takes [`PolyPlan`]'s depth; a Newton step two levels;
//! exp by squaring one for `x/2^r` and one per squaring. The output's level tells what a call consumed.
//!
//! [`PolyPlan`]: crate::circuits::poly::PolyPlan

use crate::approx::{Approximation, ChebyshevSeries, NewtonApproximation, NewtonTarget};
use crate::circuits::poly;
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::Result;
use crate::math::Complex;

/// `approximation` applied to the slots of `x` (which must lie in its
/// domain), at `x`'s scale for polynomials and composites; the others end at
/// whatever exact scale their products give.
pub fn evaluate(
    ev: &Evaluator,
    x: &Ciphertext,
    approximation: &Approximation,
) -> Result<Ciphertext> {
    match approximation {
        Approximation::Polynomial(p) => poly::evaluate(ev, x, p, None),
        Approximation::CompositeSign(s) => compose(ev, x, s.stages()),
        Approximation::CompositeRelu(r) => {
            let s = compose(ev, x, r.stages())?;
            ev.mul_relin_rescale_new(&at_level(ev, x, s.level())?, &s)
        }
        Approximation::Newton(n) => newton(ev, x, n),
        Approximation::ExpBySquaring(e) => {
            // 1 + x/2^r: a constant product (one level; relabelling the scale
            // instead would leave it 2^r above the primes, and the squarings
            // would square that).
            let mut t = x.try_clone()?;
            let factor = 2f64.powi(-(e.squarings() as i32));
            ev.mul_const_assign(&mut t, Complex::new(factor, 0.0))?;
            ev.rescale_assign(&mut t)?;
            ev.add_const_assign(&mut t, Complex::new(1.0, 0.0))?;
            for _ in 0..e.squarings() {
                t = ev.mul_relin_rescale_new(&t, &t)?;
            }
            Ok(t)
        }
    }
}

/// The stages applied in turn, first stage first.
fn compose(ev: &Evaluator, x: &Ciphertext, stages: &[ChebyshevSeries]) -> Result<Ciphertext> {
    let mut y = x.try_clone()?;
    for stage in stages {
        y = poly::evaluate(ev, &y, stage, None)?;
    }
    Ok(y)
}

/// The initial polynomial, then the Newton steps in the order of
/// [`NewtonApproximation::eval`].
fn newton(ev: &Evaluator, x: &Ciphertext, n: &NewtonApproximation) -> Result<Ciphertext> {
    let mut y = poly::evaluate(ev, x, n.initial(), None)?;
    // h = x/2 (inverse square root only): a relabelling.
    let mut half_x = x.try_clone()?;
    half_x.scale *= 2.0;
    for _ in 0..n.steps() {
        y = match n.target() {
            NewtonTarget::InverseSqrt => inverse_sqrt_step(ev, &half_x, &y)?,
            NewtonTarget::Reciprocal => reciprocal_step(ev, x, &y)?,
        };
    }
    Ok(y)
}

/// `x` at `level` (a copy).
fn at_level(ev: &Evaluator, x: &Ciphertext, level: usize) -> Result<Ciphertext> {
    let mut out = x.try_clone()?;
    ev.drop_level_assign(&mut out, x.level() - level)?;
    Ok(out)
}

/// `1.5·y − (h·y)·(y·y)`, two levels: the product's tensor and `1.5·y`
/// (its constant encoded at the tensor's scale over `y`'s) are summed before
/// one relinearize-and-rescale.
fn inverse_sqrt_step(ev: &Evaluator, half_x: &Ciphertext, y: &Ciphertext) -> Result<Ciphertext> {
    let hy = ev.mul_relin_rescale_new(&at_level(ev, half_x, y.level())?, y)?;
    let yy = ev.mul_relin_rescale_new(y, y)?;
    let mut sum = ev.tensor_new(&hy, &yy)?;
    ev.neg_assign(&mut sum)?;
    let mut linear = at_level(ev, y, sum.level())?;
    let constant_scale = sum.scale() / linear.scale();
    ev.mul_const_with_scale_assign(&mut linear, Complex::new(1.5, 0.0), constant_scale)?;
    ev.add_assign(&mut sum, &linear)?;
    ev.relinearize_rescale_assign(&mut sum)?;
    Ok(sum)
}

/// `y·(2 − x·y)`, two levels.
fn reciprocal_step(ev: &Evaluator, x: &Ciphertext, y: &Ciphertext) -> Result<Ciphertext> {
    let mut e = ev.mul_relin_rescale_new(&at_level(ev, x, y.level())?, y)?;
    ev.neg_assign(&mut e)?;
    ev.add_const_assign(&mut e, Complex::new(2.0, 0.0))?;
    ev.mul_relin_rescale_new(&at_level(ev, y, e.level())?, &e)
}
