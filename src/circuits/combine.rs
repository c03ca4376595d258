//! Ciphertexts at different levels and scales brought together: linear
//! combinations `Σ c_k·x_k` at a chosen scale ([`combine`], one level) and
//! slot-wise products of pairs, refreshed as needed ([`multiply_pairs`],
//! one level).

use crate::circuits::refresh::{ensure_both, Refresh};
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;

const OP: &str = "combine";

/// `Σ c_k·x_k` at `scale`: each term through one constant product encoded
/// so that its rescaled scale is `scale` (every term needs a level), all
/// dropped to the lowest level, then added.
pub fn combine(ev: &Evaluator, terms: &[(&Ciphertext, f64)], scale: f64) -> Result<Ciphertext> {
    let q = ev.context().params().q();
    let mut scaled = terms
        .iter()
        .map(|&(x, c)| {
            let mut out = x.try_clone()?;
            let prime = q[x.level()] as f64;
            ev.mul_const_with_scale_assign(
                &mut out,
                Complex::new(c, 0.0),
                scale * prime / x.scale(),
            )?;
            ev.rescale_assign(&mut out)?;
            out.scale = scale;
            Ok(out)
        })
        .collect::<Result<Vec<_>>>()?;
    let level = scaled
        .iter()
        .map(Ciphertext::level)
        .min()
        .ok_or_else(|| Error::OutOfRange {
            op: OP,
            detail: "no term to combine".into(),
        })?;
    for x in scaled.iter_mut() {
        ev.drop_level_assign(x, x.level() - level)?;
    }
    let mut terms = scaled.into_iter();
    let mut sum = terms.next().ok_or_else(|| Error::OutOfRange {
        op: OP,
        detail: "no term to combine".into(),
    })?;
    for x in terms {
        ev.add_assign(&mut sum, &x)?;
    }
    Ok(sum)
}

/// `a_i ⊙ b_i` for every pair: both lists refreshed together where they lack
/// a level (values up to `bound_a`, `bound_b`), each pair multiplied at the
/// lower of its two levels.
///
/// Errors: lists of different lengths, the refresher's and the product's
/// errors.
pub fn multiply_pairs(
    ev: &Evaluator,
    (a, bound_a): (&mut [Ciphertext], f64),
    (b, bound_b): (&mut [Ciphertext], f64),
    refresher: &mut dyn Refresh,
) -> Result<Vec<Ciphertext>> {
    if a.len() != b.len() {
        return Err(Error::LengthMismatch {
            op: OP,
            got: b.len(),
            expected: a.len(),
        });
    }
    ensure_both(refresher, ev, (&mut *a, bound_a), (&mut *b, bound_b), 1)?;
    a.iter()
        .zip(b.iter())
        .map(|(a, b)| {
            let level = a.level().min(b.level());
            let (drop_a, drop_b) = (a.level() - level, b.level() - level);
            let (mut a, mut b) = (a.try_clone()?, b.try_clone()?);
            ev.drop_level_assign(&mut a, drop_a)?;
            ev.drop_level_assign(&mut b, drop_b)?;
            ev.mul_relin_rescale_new(&a, &b)
        })
        .collect()
}
