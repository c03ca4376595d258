//! Matrix products of encrypted `d × d` matrices (CCMM) and of an encrypted
//! matrix by plaintext ones (CPMM), after JKLS:
//! `A·B = Σ_{k<d} φ^k(σ(A)) ⊙ ψ^k(τ(B))`.
//!
//! With `φ^k(x) = rot(x, k) ⊙ m_k + rot(x, k − d) ⊙ m'_k`, a plaintext right
//! factor takes the masks: `A·W = Σ_{−d<t<d} rot(σ(A), t) ⊙ W'_t` with
//! `W'_t = m_t ⊙ ψ^{t mod d}(τ(W))` (`m_0 = 1`, `m_{k−d} = m'_k`), all
//! computed in the clear: a linear transform of `σ(A)` whose diagonals are
//! the `W'_t`. CPMM therefore needs two levels, CCMM three.
//!
//! # Baby-step giant-step rotations
//!
//! The products rotate `σ(A)` by every `t ∈ (−d, d)` and CCMM rotates `τ(B)`
//! by every `k·d` (`ψ^k`, `k < d`): with one key per rotation that is
//! `3(d − 1)` keys, about 40 GB at `d = 128` and `N = 2^16`. Each rotation is
//! instead a baby step and a giant step (`src/tensor/bsgs.rs`):
//! `t = g·j + b` (`0 <= b < g`, `g` = `⌊√(2d)⌋` rounded up to a power of two)
//! and `k = h·J + β` (`0 <= β < h`, `h` = `⌊√d⌋` rounded up to a power of two).
//! `σ` and `τ` are evaluated with the baby steps `g` and `h·d`, which makes
//! their keys the same ones.
//!
//! - CPMM: `A·W = Σ_j rot(Σ_b rot(W'_{g·j+b}, −g·j) ⊙ rot(σ(A), b), g·j)`.
//!   The baby copies `rot(σ(A), b)` are hoisted once ([`PreparedLeft`]) and
//!   shared by every weight matrix and block; the factors are rotated by
//!   `−g·j` in the clear ([`EncodedWeights`]). For a row of blocks the inner
//!   sums of all blocks are added before their giant rotation (rotation is
//!   linear), so each output block costs `2d/g − 1` rotations whatever the
//!   number of blocks.
//! - CCMM: every `rot(σ(A), t)` is a giant rotation of a baby copy, the
//!   giant rotations of each copy hoisted from one decomposition of it;
//!   `rot(τ(B), k·d)` likewise from `τ(B)`'s hoisted baby rotations by `β·d`.
//!
//! # Levels and scales
//!
//! A [`MatrixProduct`] is built for inputs at level `l >= 2`
//! ([`CPMM_DEPTH`]; CCMM needs `l >= 3`, [`CCMM_DEPTH`]); inputs above `l`
//! are dropped to it, inputs below are `OutOfLevels`. Every plaintext factor
//! is encoded at the scale of the prime it is rescaled by, so the scale is
//! kept exactly through the levels before the last product:
//!
//! - `σ`, `τ`: diagonals at level `l`, scale `q_l`, then rescale (level `l − 1`);
//! - [`PreparedLeft`]: `σ(A)` and its rotations by `0 < b < g`, all at
//!   level `l − 1` with the scale `Δ_A` of `A`, reusable for any number of
//!   right factors;
//! - CPMM: the `2d − 1` pre-rotated factors at level `l − 1`, scale
//!   `q_{l−1}`; the inner sums (scale `Δ_A·q_{l−1}`) are rotated by their
//!   giant steps and summed before the single rescale, which divides the
//!   giant steps' key-switching noise: level `l − 2`, scale `Δ_A`;
//! - CCMM: the rotations of `σ(A)` at level `l − 1`, scale `Δ_A`; the masks
//!   at level `l − 1`, scale `q_{l−1}`, form `φ^k(σ(A))` at level `l − 2`;
//!   `τ(B)` is dropped to `l − 2` before its rotations (cheaper key
//!   switches); the `d` tensor products are summed at degree 2 and
//!   relinearized and rescaled once: level `l − 3`, scale
//!   `Δ_A·Δ_B / q_{l−2}`.
//!
//! # Costs and keys
//!
//! Preparing `A`: the `σ` transform (`2d − 1` diagonals; `g − 1` hoisted and
//! `2d/g − 1` full rotations), then `g − 1` rotations hoisted from one
//! decomposition. CPMM per output block, from `c` input blocks: `c·(2d − 1)`
//! fused plaintext products, `2d/g − 1` rotations at level `l − 1` and one
//! rescale (`2d − 1` plaintexts stored per weight block). CCMM prepares `A`,
//! then `2d − 1 − g` giant rotations hoisted from the `g` copies, the
//! `2(d − 1)` mask products, `τ` (`h − 1` hoisted and `d/h − 1` full
//! rotations), `h − 1` hoisted baby and `d − h` giant rotations of `τ(B)`
//! (hoisted from the `h` copies), `d` tensor products and one
//! relinearization.
//!
//! Keys ([`MatrixProduct::cpmm_rotations`], [`MatrixProduct::ccmm_rotations`]):
//! CPMM `(g − 1) + (2d/g − 1)`, CCMM `(h − 1) + (d/h − 1)` more; at
//! `d = 128` (`g = h = 16`) 30 and 52, against 255 and 381 with one key per
//! rotation.

use ndarray::Array2;

use crate::circuits::linear::{sum, EncodedLinearTransform, LinearTransform};
use crate::ckks::{Ciphertext, Encoder, Evaluator, Plaintext};
use crate::error::{Error, Result};
use crate::math::Complex;

use super::bsgs::RotationSplit;
use super::permutations::{column_shift, sigma, tau};
use super::MatrixShape;

/// The levels CPMM consumes (`σ`, the product with the masked weights).
pub const CPMM_DEPTH: usize = 2;

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

/// `σ(A)` and its rotations by the baby steps `0 < b < g`, at level `l − 1`:
/// the left factor of every product with `A`, computed once.
#[derive(Debug)]
pub struct PreparedLeft {
    dim: usize,
    copies: Vec<Ciphertext>,
}

impl PreparedLeft {
    /// The level of the copies.
    pub fn level(&self) -> usize {
        self.copies[0].level()
    }
}

/// For `t = −(d−1)..=d−1`: `m_t ⊙ ψ^{t mod d}(τ(W))` (`m_t` the mask of the
/// rotation by `t`, all ones for `t = 0`) rotated in the clear by `−g·j`
/// (`t = g·j + b`), encoded at level `l − 1` and scale `q_{l−1}`.
#[derive(Debug, Clone)]
pub struct EncodedWeights {
    factors: Vec<Plaintext>,
}

/// The rotations of `σ(A)` by `t ∈ (−d, d)`, baby step `g`: `⌊√(2d)⌋`
/// rounded up to a power of two (at most `d`).
fn columns(shape: &MatrixShape) -> RotationSplit {
    let d = shape.dim();
    let g = (2 * d).isqrt().next_power_of_two().min(d);
    RotationSplit::new(shape.slots(), 1, g, 1 - d as i64..=d as i64 - 1)
}

/// The rotations of `τ(B)` by `k·d`, `k = 0..d−1` (`ψ^k`), baby step `h`:
/// `⌊√d⌋` rounded up to a power of two.
fn rows(shape: &MatrixShape) -> RotationSplit {
    let d = shape.dim();
    let h = d.isqrt().next_power_of_two();
    RotationSplit::new(shape.slots(), d, h, 0..=d as i64 - 1)
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

/// `rot(v, shift)`: slot `i` takes `v[(i + shift) mod n]`.
fn rotated(v: &[Complex], shift: usize) -> Vec<Complex> {
    let n = v.len();
    (0..n).map(|i| v[(i + shift) % n]).collect()
}

impl MatrixProduct {
    /// Encodes `σ`, `τ` (level `level`) and the `φ^k` masks (level
    /// `level − 1`) for inputs at `level` (at least [`CPMM_DEPTH`]).
    pub fn new(shape: MatrixShape, encoder: &Encoder, level: usize) -> Result<Self> {
        encoder.context().check_level("MatrixProduct::new", level)?;
        if level < CPMM_DEPTH {
            return Err(Error::OutOfLevels {
                op: "MatrixProduct::new",
                level,
                needed: CPMM_DEPTH,
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

    /// The level the inputs are brought to; outputs are [`CPMM_DEPTH`] or
    /// [`CCMM_DEPTH`] lower.
    pub fn level(&self) -> usize {
        self.level
    }

    /// The rotation steps of CPMM: `σ`'s, which are those of the column
    /// rotations `t ∈ (−d, d)`: the baby steps `0 < b < g` and the giant steps
    /// `g·j`.
    pub fn cpmm_rotations(shape: &MatrixShape) -> Result<Vec<i64>> {
        let mut steps = sigma_transform(shape)?.rotations();
        steps.extend(columns(shape).rotations());
        Ok(sorted(steps))
    }

    /// The rotation steps of CCMM: those of CPMM and `τ`'s, which are those
    /// of the row rotations `k·d`: the baby steps `β·d` (`β < h`) and the
    /// giant steps `h·d·J`.
    pub fn ccmm_rotations(shape: &MatrixShape) -> Result<Vec<i64>> {
        let mut steps = Self::cpmm_rotations(shape)?;
        steps.extend(tau_transform(shape)?.rotations());
        steps.extend(rows(shape).rotations());
        Ok(sorted(steps))
    }

    /// Checks a matrix ciphertext's slot count and level.
    fn check_input(&self, ct: &Ciphertext) -> Result<()> {
        self.shape.check_operand(OP, ct, self.level)
    }

    /// `σ(A)` and its rotations by the baby steps `0 < b < g`, hoisted (one
    /// level), for any number of products.
    pub fn prepare(&self, ev: &Evaluator, a: &Ciphertext) -> Result<PreparedLeft> {
        self.check_input(a)?;
        let s = self.sigma.evaluate(ev, a, true)?;
        Ok(PreparedLeft {
            dim: self.shape.dim(),
            copies: columns(&self.shape).baby_copies(ev, s)?,
        })
    }

    /// The factors of [`EncodedWeights`] for `w` in the clear, encoded at
    /// level `l − 1`, scale `q_{l−1}` (offline).
    pub fn encode_weights(&self, encoder: &Encoder, w: &Array2<f64>) -> Result<EncodedWeights> {
        let level = self.level - 1;
        let scale = encoder.context().params().q()[level] as f64;
        let (d, n) = (self.shape.dim(), self.shape.slots());
        let tw = tau(&self.shape)?.apply_plain(&self.shape.pack(w)?)?;
        let columns = columns(&self.shape);
        let factors = columns
            .range()
            .map(|t| {
                // ψ^k is the rotation by k·d.
                let shifted = rotated(&tw, t.rem_euclid(d as i64) as usize * d);
                let mask = column_mask(&self.shape, t)?;
                let masked: Vec<Complex> =
                    mask.iter().zip(&shifted).map(|(m, f)| *m * *f).collect();
                let factor = rotated(&masked, n - columns.giant_shift(t));
                encoder.encode_complex(&factor, level, scale)
            })
            .collect::<Result<_>>()?;
        Ok(EncodedWeights { factors })
    }

    fn check_prepared(&self, left: &PreparedLeft) -> Result<()> {
        if left.dim != self.shape.dim() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: left.dim,
                expected: self.shape.dim(),
            });
        }
        Ok(())
    }

    /// CPMM: `A·W` for every `W` in `weights`, from the prepared copies of `A`
    /// (one level each): level `l − 2`, scale `Δ_A`.
    pub fn multiply_plain(
        &self,
        ev: &Evaluator,
        left: &PreparedLeft,
        weights: &[EncodedWeights],
    ) -> Result<Vec<Ciphertext>> {
        self.multiply_plain_blocks(ev, &[left], &[weights])
    }

    /// CPMM of a row of blocks: from the prepared blocks `X_0 .. X_{k−1}` of
    /// an `d × k·d` matrix and the blocks `W[i][j]` of a `k·d × m·d` weight
    /// matrix (`weights[i]` the row of blocks `i`, `m` long), the `m` output
    /// blocks `Σ_i X_i·W[i][j]`, each summed at one level and scale before
    /// its single rescale: level `l − 2`, scale `Δ_A`. Every block of `X`
    /// is prepared once, whatever `m`, and each output block costs the same
    /// giant rotations, whatever `k`.
    pub fn multiply_plain_blocks(
        &self,
        ev: &Evaluator,
        left: &[&PreparedLeft],
        weights: &[&[EncodedWeights]],
    ) -> Result<Vec<Ciphertext>> {
        if left.is_empty() || left.len() != weights.len() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: weights.len(),
                expected: left.len().max(1),
            });
        }
        let outputs = weights[0].len();
        let factors = columns(&self.shape).len();
        for (block, row) in left.iter().zip(weights) {
            self.check_prepared(block)?;
            if row.len() != outputs {
                return Err(Error::LengthMismatch {
                    op: OP,
                    got: row.len(),
                    expected: outputs,
                });
            }
            if let Some(w) = row.iter().find(|w| w.factors.len() != factors) {
                return Err(Error::LengthMismatch {
                    op: OP,
                    got: w.factors.len(),
                    expected: factors,
                });
            }
        }
        (0..outputs)
            .map(|j| {
                let blocks: Vec<_> = left
                    .iter()
                    .zip(weights)
                    .map(|(x, row)| (*x, &row[j]))
                    .collect();
                self.plain_product(ev, &blocks)
            })
            .collect()
    }

    /// `Σ_i X_i·W_i` (checked by the caller): per giant part `j`, the inner
    /// sum over the blocks and the baby parts of the pre-rotated factors
    /// times the baby copies, rotated by `g·j`; the sum of those, rescaled
    /// once.
    fn plain_product(
        &self,
        ev: &Evaluator,
        blocks: &[(&PreparedLeft, &EncodedWeights)],
    ) -> Result<Ciphertext> {
        let columns = columns(&self.shape);
        let mut out = sum(
            ev,
            columns.giants().map(|j| {
                let inner = plain_products(
                    ev,
                    blocks.iter().flat_map(|(x, w)| {
                        columns.group(j).map(|(t, b)| (&x.copies[b], &w.factors[t]))
                    }),
                )?;
                match j {
                    0 => Ok(inner),
                    _ => ev.rotate_new(&inner, columns.giant_step(j)),
                }
            }),
        )?;
        ev.rescale_assign(&mut out)?;
        Ok(out)
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
        let phis = self.column_shifts(ev, self.prepare(ev, a)?)?;
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
    /// `σ(A)` by every `t ∈ (−d, d)` from the prepared baby copies, then
    /// `φ^k(x) = rot(x, k) ⊙ m_k + rot(x, k − d) ⊙ m'_k` (`φ^0(x) = x`,
    /// dropped a level).
    fn column_shifts(&self, ev: &Evaluator, left: PreparedLeft) -> Result<Vec<Ciphertext>> {
        let rotations = columns(&self.shape).all_rotations(ev, left.copies)?;
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

/// The mask `m_t` of the rotation by `t` (`−d < t < d`) in `φ^{t mod d}`:
/// its diagonal `t` (`m_k` for `t = k > 0`, `m'_k` for `t = k − d < 0`, all
/// ones for `t = 0`).
fn column_mask(shape: &MatrixShape, t: i64) -> Result<Vec<Complex>> {
    let k = t.rem_euclid(shape.dim() as i64) as usize;
    column_shift(shape, k)?
        .diagonal(t)
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
    /// and `τ` share them): `2√(2d)` for CPMM, `2√(2d) + 2√d` for CCMM at
    /// most; 30 and 52 at `d = 128` (255 and 381 with one key per rotation).
    #[test]
    fn key_counts_grow_as_the_square_root_of_d() {
        let params = Parameters::preset("PN16_128").unwrap();
        for d in [1, 2, 4, 8, 16, 32, 64, 128] {
            let shape = MatrixShape::new(d, &params).unwrap();
            let cpmm = MatrixProduct::cpmm_rotations(&shape).unwrap();
            let ccmm = MatrixProduct::ccmm_rotations(&shape).unwrap();
            assert_eq!(cpmm, columns(&shape).rotations());
            let mut both = cpmm.clone();
            both.extend(rows(&shape).rotations());
            assert_eq!(ccmm, sorted(both));
            let (columns_bound, rows_bound) =
                (2.0 * (2.0 * d as f64).sqrt(), 2.0 * (d as f64).sqrt());
            assert!(cpmm.len() as f64 <= columns_bound, "d = {d}");
            assert!(ccmm.len() as f64 <= columns_bound + rows_bound, "d = {d}");
        }
        let shape = MatrixShape::new(128, &params).unwrap();
        assert_eq!(MatrixProduct::cpmm_rotations(&shape).unwrap().len(), 30);
        assert_eq!(MatrixProduct::ccmm_rotations(&shape).unwrap().len(), 52);
    }
}
