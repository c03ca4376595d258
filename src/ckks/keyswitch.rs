//! Hybrid key switching (Han–Ki) with hoisting.
//!
//! `decompose` lifts each digit of a polynomial (its residues on the digit's
//! primes) to the extended basis Q_l ∪ P (ModUp, approximate fast base
//! conversion). `apply` takes the inner product with the key and divides by
//! P (ModDown), returning `(k0, k1)` on Q_l with `k0 + k1·s_to ≈ c·s_from`.
//! `switch` runs the whole key switch as one backend primitive (fused on the
//! backends that can), with the tail that ends a relinearization, a
//! relinearization with rescale, or a rotation. Hoisted rotations share one
//! decomposition: Galois keys are stored
//! pre-permuted (see `KeyGenerator::gen_galois_key`), so no digit is ever
//! permuted.

use super::context::CkksContext;
use super::keys::SwitchingKey;
use crate::backend::{Buffer, KeySwitchTail};
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

/// The inner product of the digits with `key`, on the extended basis.
fn inner_product(
    ctx: &CkksContext,
    dec: &Decomposition,
    key: &SwitchingKey,
) -> Result<[Buffer; 2]> {
    check_key(ctx, key, dec.level)?;
    let ring = ctx.ring();
    let backend = ctx.backend();
    let ext_words = ctx.n() * ring.extended_basis(dec.level).len();
    let mut acc0 = backend.alloc(ext_words)?;
    let mut acc1 = backend.alloc(ext_words)?;
    backend.key_switch_inner_product(
        ring,
        &dec.digits,
        &key.digits,
        dec.level,
        &mut acc0,
        &mut acc1,
    )?;
    Ok([acc0, acc1])
}

/// Inner product with `key`, then ModDown: `(k0, k1)` at the decomposition's level.
pub(crate) fn apply(
    ctx: &CkksContext,
    dec: &Decomposition,
    key: &SwitchingKey,
) -> Result<(Buffer, Buffer)> {
    let accs = inner_product(ctx, dec, key)?;
    let words = ctx.words_at(dec.level);
    let backend = ctx.backend();
    let mut outs = [backend.alloc(words)?, backend.alloc(words)?];
    backend.mod_down(ctx.ring(), &accs, dec.level, &mut outs)?;
    let [k0, k1] = outs;
    Ok((k0, k1))
}

/// Fails unless `key` belongs to the context and has a digit for every
/// digit of a polynomial at `level` (a key generated for lower levels only
/// is [`Error::LevelMismatch`] above them).
fn check_key(ctx: &CkksContext, key: &SwitchingKey, level: usize) -> Result<()> {
    ctx.check_params("key_switch", key.params_id)?;
    let digits = ctx.params().digits_at_level(level);
    if key.digits.len() < digits {
        return Err(Error::LevelMismatch {
            op: "key_switch",
            detail: format!(
                "a ciphertext at level {level} needs a key with {digits} digits; this one has {} (it serves levels up to {})",
                key.digits.len(),
                key.max_level(ctx.params())
            ),
        });
    }
    Ok(())
}

/// One whole key switch of `poly` (at `level`) with `key` on the backend,
/// finished by `tail`:
/// - `ModDown`: `(k0, k1)` at `level` with `k0 + k1·s_to ≈ poly·s_from`;
/// - `ModDownRescale { addend: [c0, c1] }`: `((c0 + k0)/q_l, (c1 + k1)/q_l)`
///   rounded, at level l − 1, in one division by `P·q_l` of `P·c + acc`
///   instead of a ModDown followed by a rescale;
/// - `ModDownAutomorphism { galois_element: g, addend: c0 }`:
///   `(σ_g(c0 + k0), σ_g(k1))` at `level` (a whole rotation or conjugation).
pub(crate) fn switch(
    ctx: &CkksContext,
    poly: &Buffer,
    level: usize,
    key: &SwitchingKey,
    tail: KeySwitchTail<'_>,
) -> Result<(Buffer, Buffer)> {
    check_key(ctx, key, level)?;
    let out_level = match tail {
        KeySwitchTail::ModDownRescale { .. } => level.checked_sub(1).ok_or(Error::OutOfLevels {
            op: "key_switch",
            level,
            needed: 1,
        })?,
        KeySwitchTail::ModDown | KeySwitchTail::ModDownAutomorphism { .. } => level,
    };
    let words = ctx.words_at(out_level);
    let backend = ctx.backend();
    let mut outs = [backend.alloc(words)?, backend.alloc(words)?];
    backend.key_switch(ctx.ring(), poly, &key.digits, level, tail, &mut outs)?;
    let [r0, r1] = outs;
    Ok((r0, r1))
}
