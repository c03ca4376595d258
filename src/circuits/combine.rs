//! Linear combinations of ciphertexts at different levels and scales:
//! `Σ c_k·x_k` at a chosen scale, one level.

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
