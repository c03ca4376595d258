//! The product of encrypted `d × d` matrices (CCMM), block by block for
//! interleaved blocks, after JKLS: `A·B = Σ_{k<d} φ^k(σ(A)) ⊙ ψ^k(τ(B))`,
//! with `φ^k(x) = rot(x, k) ⊙ m_k + rot(x, k − d) ⊙ m'_k` (rotations in
//! units of `P`, the blocks per ciphertext, so that every block rotates
//! within itself). A plaintext right factor needs no `σ`: see
//! [`dense`](super::dense).
//!
//! # Baby-step giant-step rotations
//!
//! CCMM rotates `σ(A)` by every `t ∈ (−d, d)` and `τ(B)` by every `k·d`
//! (`ψ^k`, `k < d`): with one key per rotation that is `3(d − 1)` keys,
//! about 40 GB at `d = 128` and `N = 2^16`. Each rotation is instead a baby
//! step and a giant step (`src/tensor/bsgs.rs`): `t = g·j + b`
//! (`0 <= b < g`, `g` = `⌊√(2d)⌋` rounded up to a power of two) and
//! `k = h·J + β` (`0 <= β < h`, `h` = `⌊√d⌋` rounded up to a power of two).
//! `σ` and `τ` are evaluated with the baby steps `g` and `h·d`, which makes
//! their keys the same ones. Every rotation of `σ(A)` is a giant rotation of
//! a baby copy, the giant rotations of each copy hoisted from one
//! decomposition of it; `rot(τ(B), k·d)` likewise from `τ(B)`'s hoisted baby
//! rotations by `β·d`.
//!
//! # Levels and scales
//!
//! A [`MatrixProduct`] is built for inputs at level `l >=` [`CCMM_DEPTH`];
//! inputs above `l` are dropped to it, inputs below are `OutOfLevels`.
//! Every plaintext factor is encoded at the scale of the prime it is
//! rescaled by, so the scale is kept exactly through the levels before the
//! last product:
//!
//! - `σ`, `τ`: diagonals at level `l`, scale `q_l`, then rescale (level
//!   `l − 1`); the rotations of `σ(A)` at level `l − 1`, scale `Δ_A`;
//! - the masks at level `l − 1`, scale `q_{l−1}`, form `φ^k(σ(A))` at level
//!   `l − 2`; `τ(B)` is dropped to `l − 2` before its rotations (cheaper key
//!   switches);
//! - the `d` tensor products are summed at degree 2 and relinearized and
//!   rescaled once: level `l − 3`, scale `Δ_A·Δ_B / q_{l−2}`.
//!
//! # Costs and keys
//!
//! The `σ` transform (`2d − 1` diagonals; `g − 1` hoisted and `2d/g − 1`
//! full rotations), `g − 1` baby rotations hoisted from one decomposition,
//! `2d − 1 − g` giant rotations hoisted from the `g` copies, the `2(d − 1)`
//! mask products, `τ` (`h − 1` hoisted and `d/h − 1` full rotations),
//! `h − 1` hoisted baby and `d − h` giant rotations of `τ(B)` (hoisted from
//! the `h` copies), `d` tensor products and one relinearization, whatever
//! `P`. Keys ([`MatrixProduct::ccmm_rotations`]): `(g − 1) + (2d/g − 1) +
//! (h − 1) + (d/h − 1)`, 52 at `d = 128` (381 with one key per rotation).

use crate::circuits::linear::{sum, EncodedLinearTransform, LinearTransform};
use crate::ckks::{Ciphertext, Encoder, Evaluator, Plaintext};
use crate::error::{Error, Result};
use crate::math::Complex;

use super::bsgs::RotationSplit;
use super::permutations::{column_shift, sigma, tau};
use super::MatrixShape;

/// The levels CCMM consumes (`σ`/`τ`, the `φ^k` masks, the product).
pub const CCMM_DEPTH: usize = 3;

const OP: &str = "tensor::product";

/// The encoded permutations of JKLS for one shape and input level.
#[derive(Debug, Clone)]
pub struct MatrixProduct {
    shape: MatrixShape,
    level: usize,
    sigma: EncodedLinearTransform,
    tau: EncodedLinearTransform,
    /// For `k = 1..d−1`: the masks of the rotations by `k` and `k − d`.
    masks: Vec<[Plaintext; 2]>,
}

/// The rotations of `σ(A)` by `t·P`, `t ∈ (−d, d)`, baby step `g`:
/// `⌊√(2d)⌋` rounded up to a power of two (at most `d`).
fn columns(shape: &MatrixShape) -> RotationSplit {
    let d = shape.dim();
    let g = (2 * d).isqrt().next_power_of_two().min(d);
    RotationSplit::new(
        shape.slots(),
        shape.blocks(),
        g,
        1 - d as i64..=d as i64 - 1,
    )
}

/// The rotations of `τ(B)` by `k·d·P`, `k = 0..d−1` (`ψ^k`), baby step
/// `h`: `⌊√d⌋` rounded up to a power of two.
fn rows(shape: &MatrixShape) -> RotationSplit {
    let d = shape.dim();
    let h = d.isqrt().next_power_of_two();
    RotationSplit::new(shape.slots(), d * shape.blocks(), h, 0..=d as i64 - 1)
}

/// `σ` evaluated with the baby step of [`columns`] (the same keys).
fn sigma_transform(shape: &MatrixShape) -> Result<LinearTransform> {
    sigma(shape)?.with_baby_step(columns(shape).unit())
}

/// `τ` evaluated with the baby step of [`rows`] (the same keys).
fn tau_transform(shape: &MatrixShape) -> Result<LinearTransform> {
    tau(shape)?.with_baby_step(rows(shape).unit())
}

/// `steps` sorted, without repeats.
fn sorted(mut steps: Vec<i64>) -> Vec<i64> {
    steps.sort_unstable();
    steps.dedup();
    steps
}

/// `ct` dropped to `level` (at or below its own).
fn dropped_to(ev: &Evaluator, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
    let mut out = ct.try_clone()?;
    ev.drop_level_assign(&mut out, ct.level() - level)?;
    Ok(out)
}

/// `Σ copy ⊙ factor` over `terms` (at least one), not rescaled.
fn plain_products<'a>(
    ev: &Evaluator,
    mut terms: impl Iterator<Item = (&'a Ciphertext, &'a Plaintext)>,
) -> Result<Ciphertext> {
    let (first, factor) = terms.next().ok_or_else(|| Error::OutOfRange {
        op: OP,
        detail: "no prepared copy".into(),
    })?;
    let mut out = first.try_clone()?;
    ev.mul_plain_assign(&mut out, factor)?;
    for (copy, factor) in terms {
        ev.mul_plain_add_assign(&mut out, copy, factor)?;
    }
    Ok(out)
}

impl MatrixProduct {
    /// Encodes `σ`, `τ` (level `level`) and the `φ^k` masks (level
    /// `level − 1`) for inputs at `level` (at least [`CCMM_DEPTH`]).
    pub fn new(shape: MatrixShape, encoder: &Encoder, level: usize) -> Result<Self> {
        encoder.context().check_level("MatrixProduct::new", level)?;
        if level < CCMM_DEPTH {
            return Err(Error::OutOfLevels {
                op: "MatrixProduct::new",
                level,
                needed: CCMM_DEPTH,
            });
        }
        let scale = encoder.context().params().q()[level - 1] as f64;
        let d = shape.dim() as i64;
        let masks = (1..d)
            .map(|k| {
                Ok([
                    encoder.encode_complex(&column_mask(&shape, k)?, level - 1, scale)?,
                    encoder.encode_complex(&column_mask(&shape, k - d)?, level - 1, scale)?,
                ])
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            shape,
            level,
            sigma: sigma_transform(&shape)?.encode(encoder, level)?,
            tau: tau_transform(&shape)?.encode(encoder, level)?,
            masks,
        })
    }

    /// The shape of the factors.
    pub fn shape(&self) -> MatrixShape {
        self.shape
    }

    /// The level the inputs are brought to; outputs are [`CCMM_DEPTH`]
    /// lower.
    pub fn level(&self) -> usize {
        self.level
    }

    /// The rotation steps of CCMM: `σ`'s, which are those of the column
    /// rotations `t ∈ (−d, d)` (the baby steps `0 < b < g` and the giant
    /// steps `g·j`), and `τ`'s, which are those of the row rotations `k·d`
    /// (the baby steps `β·d`, `β < h`, and the giant steps `h·d·J`), all
    /// times `P`.
    pub fn ccmm_rotations(shape: &MatrixShape) -> Result<Vec<i64>> {
        let mut steps = sigma_transform(shape)?.rotations();
        steps.extend(columns(shape).rotations());
        steps.extend(tau_transform(shape)?.rotations());
        steps.extend(rows(shape).rotations());
        Ok(sorted(steps))
    }

    /// Checks a matrix ciphertext's slot count and level.
    fn check_input(&self, ct: &Ciphertext) -> Result<()> {
        self.shape.check_operand(OP, ct, self.level)
    }

    /// `σ(A)` and its rotations by the baby steps `0 < b < g`, hoisted (one
    /// level).
    fn sigma_copies(&self, ev: &Evaluator, a: &Ciphertext) -> Result<Vec<Ciphertext>> {
        let s = self.sigma.evaluate(ev, a, true)?;
        columns(&self.shape).baby_copies(ev, s)
    }

    /// CCMM: `A·B` (three levels; see the module docs for the scale).
    pub fn multiply(&self, ev: &Evaluator, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        if self.level < CCMM_DEPTH {
            return Err(Error::OutOfLevels {
                op: OP,
                level: self.level,
                needed: CCMM_DEPTH,
            });
        }
        self.check_input(a)?;
        self.check_input(b)?;
        let phis = self.column_shifts(ev, self.sigma_copies(ev, a)?)?;
        let t = dropped_to(ev, &self.tau.evaluate(ev, b, true)?, self.level - 2)?;
        let rows = rows(&self.shape);
        let psis = rows.all_rotations(ev, rows.baby_copies(ev, t)?)?;
        let mut out = sum(
            ev,
            phis.iter()
                .zip(&psis)
                .map(|(phi, psi)| ev.tensor_new(phi, psi)),
        )?;
        ev.relinearize_rescale_assign(&mut out)?;
        Ok(out)
    }

    /// `φ^k(σ(A))` for `k = 0..d−1` at level `l − 2`: the rotations of
    /// `σ(A)` by every `t ∈ (−d, d)` from its baby copies, then
    /// `φ^k(x) = rot(x, k) ⊙ m_k + rot(x, k − d) ⊙ m'_k` (`φ^0(x) = x`,
    /// dropped a level).
    fn column_shifts(&self, ev: &Evaluator, copies: Vec<Ciphertext>) -> Result<Vec<Ciphertext>> {
        let rotations = columns(&self.shape).all_rotations(ev, copies)?;
        // far[k − 1] = rot(σ(A), k − d), near[k] = rot(σ(A), k).
        let (far, near) = rotations.split_at(self.shape.dim() - 1);
        let mut phis = vec![dropped_to(ev, &near[0], self.level - 2)?];
        for ((near, far), [near_mask, far_mask]) in near[1..].iter().zip(far).zip(&self.masks) {
            let mut phi = plain_products(ev, [(near, near_mask), (far, far_mask)].into_iter())?;
            ev.rescale_assign(&mut phi)?;
            phis.push(phi);
        }
        Ok(phis)
    }
}

/// The mask `m_t` of the rotation by `t·P` (`−d < t < d`) in
/// `φ^{t mod d}`: its diagonal `t·P` (`m_k` for `t = k > 0`, `m'_k` for
/// `t = k − d < 0`, all ones for `t = 0`).
fn column_mask(shape: &MatrixShape, t: i64) -> Result<Vec<Complex>> {
    let k = t.rem_euclid(shape.dim() as i64) as usize;
    column_shift(shape, k)?
        .diagonal(t * shape.blocks() as i64)
        .map(<[Complex]>::to_vec)
        .ok_or_else(|| Error::OutOfRange {
            op: "MatrixProduct",
            detail: format!("φ^{k} has no diagonal {t}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Parameters;

    /// The keys are those of the baby-step giant-step rotations alone (`σ`
    /// and `τ` share them): `2√(2d) + 2√d` at most; 52 at `d = 128` (381
    /// with one key per rotation), whatever the blocks per ciphertext.
    #[test]
    fn key_counts_grow_as_the_square_root_of_d() {
        let params = Parameters::preset("PN16_128").unwrap();
        for (d, blocks) in [
            (1, 1),
            (2, 1),
            (4, 4),
            (8, 1),
            (16, 8),
            (32, 1),
            (64, 2),
            (128, 1),
        ] {
            let shape = MatrixShape::with_blocks(d, blocks, &params).unwrap();
            let ccmm = MatrixProduct::ccmm_rotations(&shape).unwrap();
            let mut both = columns(&shape).rotations();
            both.extend(rows(&shape).rotations());
            assert_eq!(ccmm, sorted(both));
            assert!(ccmm.iter().all(|s| s % blocks as i64 == 0));
            let bound = 2.0 * (2.0 * d as f64).sqrt() + 2.0 * (d as f64).sqrt();
            assert!(ccmm.len() as f64 <= bound, "d = {d}");
        }
        let shape = MatrixShape::new(128, &params).unwrap();
        assert_eq!(MatrixProduct::ccmm_rotations(&shape).unwrap().len(), 52);
    }
}
