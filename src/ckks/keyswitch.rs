//! Hybrid key switching (Han–Ki) with hoisting.
//!
//! `decompose` lifts each digit of a polynomial (its residues on the digit's
//! primes) to the extended basis Q_l ∪ P (ModUp, approximate fast base
//! conversion). `apply` takes the inner product with the key and divides by
//! P (ModDown), returning `(k0, k1)` on Q_l with `k0 + k1·s_to ≈ c·s_from`.
//! Hoisted rotations share one decomposition: Galois keys are stored
//! pre-permuted (see `KeyGenerator::gen_galois_key`), so no digit is ever
//! permuted.

use super::context::CkksContext;
use super::keys::SwitchingKey;
use crate::backend::Buffer;
use crate::error::{Error, Result};

/// The digits of one polynomial lifted to the extended basis.
pub(crate) struct Decomposition {
    pub(crate) level: usize,
    pub(crate) digits: Vec<Buffer>,
}

/// ModUp of every digit of `poly` (evaluation domain, level `level`).
pub(crate) fn decompose(ctx: &CkksContext, poly: &Buffer, level: usize) -> Result<Decomposition> {
    let ring = ctx.ring();
    let backend = ctx.backend();
    let basis = ring.q_basis(level);
    let mut coeff = ctx.duplicate(poly, ctx.words_at(level))?;
    backend.ntt_inverse(ring, &mut coeff, &basis)?;
    let ext_words = ctx.n() * ring.extended_basis(level).len();
    let mut digits = (0..ctx.params().digits_at_level(level))
        .map(|_| backend.alloc(ext_words))
        .collect::<Result<Vec<_>>>()?;
    backend.mod_up(ring, &coeff, poly, level, &mut digits)?;
    Ok(Decomposition { level, digits })
}

/// Inner product with `key`, then ModDown.
pub(crate) fn apply(
    ctx: &CkksContext,
    dec: &Decomposition,
    key: &SwitchingKey,
) -> Result<(Buffer, Buffer)> {
    ctx.check_params("key_switch", key.params_id)?;
    if key.digits.len() < dec.digits.len() {
        return Err(Error::LengthMismatch {
            op: "key_switch",
            got: key.digits.len(),
            expected: dec.digits.len(),
        });
    }
    let ring = ctx.ring();
    let backend = ctx.backend();
    let level = dec.level;
    let ext_words = ctx.n() * ring.extended_basis(level).len();
    let mut acc0 = backend.alloc(ext_words)?;
    let mut acc1 = backend.alloc(ext_words)?;
    backend.key_switch_inner_product(
        ring,
        &dec.digits,
        &key.digits,
        level,
        &mut acc0,
        &mut acc1,
    )?;
    let mut outs = [backend.alloc(ctx.words_at(level))?, backend.alloc(ctx.words_at(level))?];
    backend.mod_down(ring, &[acc0, acc1], level, &mut outs)?;
    let [k0, k1] = outs;
    Ok((k0, k1))
}
