//! Matrix products of encrypted `d × d` matrices (CCMM) and of an encrypted
//! matrix by plaintext ones (CPMM), after JKLS:
//! `A·B = Σ_{k<d} φ^k(σ(A)) ⊙ ψ^k(τ(B))`.
//!
//! With `φ^k(x) = rot(x, k) ⊙ m_k + rot(x, k − d) ⊙ m'_k`, a plaintext right
//! factor takes the masks: `A·W = σ(A) ⊙ W_0 + Σ_{k≥1} rot(σ(A), k) ⊙ (m_k ⊙
//! W_k) + rot(σ(A), k − d) ⊙ (m'_k ⊙ W_k)` with `W_k = ψ^k(τ(W))`, all
//! computed in the clear. CPMM therefore needs two levels, CCMM three.
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
//! - [`PreparedLeft`]: `σ(A)` and its rotations by `k` and `k − d`
//!   (`k = 1..d−1`), all at level `l − 1` with the scale `Δ_A` of `A`,
//!   reusable for any number of right factors;
//! - CPMM: the `2d − 1` masked factors at level `l − 1`, scale `q_{l−1}`; the
//!   output is at level `l − 2` with scale `Δ_A`;
//! - CCMM: the masks at level `l − 1`, scale `q_{l−1}`, form `φ^k(σ(A))` at
//!   level `l − 2`; `τ(B)` is dropped to `l − 2` before its rotations
//!   (cheaper key switches); the `d` tensor products are summed at degree 2
//!   and relinearized and rescaled once: level `l − 3`, scale
//!   `Δ_A·Δ_B / q_{l−2}`.
//!
//! # Costs and keys
//!
//! Preparing `A`: the `σ` transform (`2d − 1` diagonals, BSGS), then
//! `2(d − 1)` rotations hoisted from one decomposition (steps `k`, `k − d`).
//! CPMM per weight matrix: `2d − 1` fused plaintext products and one
//! rescale, no rotation (and `2d − 1` plaintexts stored). CCMM adds the
//! `2(d − 1)` mask products, `τ` and `d − 1` hoisted rotations by `k·d` (its
//! representative in `(−n/2, n/2]`), `d` tensor products and one
//! relinearization.

use ndarray::Array2;

use crate::circuits::linear::EncodedLinearTransform;
use crate::ckks::{Ciphertext, Encoder, Evaluator, Plaintext};
use crate::error::{Error, Result};
use crate::math::Complex;

use super::permutations::{
    column_shift, column_shift_steps, row_shift, row_shift_step, sigma, tau,
};
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

/// `σ(A)`, then its rotations by `k` and `k − d` for `k = 1..d−1`, at level
/// `l − 1`: the left factor of every product with `A`, computed once.
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

/// `ψ^0(τ(W))`, then `m_k ⊙ ψ^k(τ(W))` and `m'_k ⊙ ψ^k(τ(W))` for
/// `k = 1..d−1` (the order of [`PreparedLeft`]'s copies), encoded at level
/// `l − 1` and scale `q_{l−1}`.
#[derive(Debug, Clone)]
pub struct EncodedWeights {
    factors: Vec<Plaintext>,
}

/// The steps of the hoisted rotations of `σ(A)`: `k, k − d` for `k = 1..d−1`.
fn column_steps(shape: &MatrixShape) -> Vec<i64> {
    (1..shape.dim())
        .flat_map(|k| column_shift_steps(shape, k))
        .collect()
}

/// The steps of the rotations of `τ(B)`: `ψ^k` for `k = 1..d−1`.
fn row_steps(shape: &MatrixShape) -> Vec<i64> {
    (1..shape.dim()).map(|k| row_shift_step(shape, k)).collect()
}

/// `steps` sorted, without repeats.
fn sorted(mut steps: Vec<i64>) -> Vec<i64> {
    steps.sort_unstable();
    steps.dedup();
    steps
}

/// Rotations of `ct` by `steps` from one decomposition (none for no steps).
fn hoisted(ev: &Evaluator, ct: &Ciphertext, steps: &[i64]) -> Result<Vec<Ciphertext>> {
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    ev.rotate_hoisted_new(ct, steps)
}

/// `ct` dropped to `level` (at or below its own).
fn dropped_to(ev: &Evaluator, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
    let mut out = ct.try_clone()?;
    ev.drop_level_assign(&mut out, ct.level() - level)?;
    Ok(out)
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
        let masks = column_masks(&shape)?
            .iter()
            .map(|[near, far]| {
                Ok([
                    encoder.encode_complex(near, level - 1, scale)?,
                    encoder.encode_complex(far, level - 1, scale)?,
                ])
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            shape,
            level,
            sigma: sigma(&shape)?.encode(encoder, level)?,
            tau: tau(&shape)?.encode(encoder, level)?,
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

    /// The rotation steps of CPMM ([`prepare`](Self::prepare)): `σ`'s and `k, k − d`.
    pub fn cpmm_rotations(shape: &MatrixShape) -> Result<Vec<i64>> {
        let mut steps = sigma(shape)?.rotations();
        steps.extend(column_steps(shape));
        Ok(sorted(steps))
    }

    /// The rotation steps of CCMM: those of CPMM, `τ`'s and `ψ^k`'s `k·d`.
    pub fn ccmm_rotations(shape: &MatrixShape) -> Result<Vec<i64>> {
        let mut steps = Self::cpmm_rotations(shape)?;
        steps.extend(tau(shape)?.rotations());
        steps.extend(row_steps(shape));
        Ok(sorted(steps))
    }

    /// Checks a matrix ciphertext's slot count and level.
    fn check_input(&self, ct: &Ciphertext) -> Result<()> {
        self.shape.check_operand(OP, ct, self.level)
    }

    /// `σ(A)` and its rotations by `k`, `k − d` (one level), for any number
    /// of products.
    pub fn prepare(&self, ev: &Evaluator, a: &Ciphertext) -> Result<PreparedLeft> {
        self.check_input(a)?;
        let s = self.sigma.evaluate(ev, a, true)?;
        let rotated = hoisted(ev, &s, &column_steps(&self.shape))?;
        let copies = std::iter::once(s).chain(rotated).collect();
        Ok(PreparedLeft {
            dim: self.shape.dim(),
            copies,
        })
    }

    /// The factors of [`EncodedWeights`] for `w` in the clear, encoded at
    /// level `l − 1`, scale `q_{l−1}` (offline).
    pub fn encode_weights(&self, encoder: &Encoder, w: &Array2<f64>) -> Result<EncodedWeights> {
        let level = self.level - 1;
        let scale = encoder.context().params().q()[level] as f64;
        let tw = tau(&self.shape)?.apply_plain(&self.shape.pack(w)?)?;
        let shifted = |k: usize| row_shift(&self.shape, k)?.apply_plain(&tw);
        let masked = |mask: &[Complex], factor: &[Complex]| -> Vec<Complex> {
            mask.iter().zip(factor).map(|(m, f)| *m * *f).collect()
        };
        let mut factors = vec![encoder.encode_complex(&shifted(0)?, level, scale)?];
        for (k, [near, far]) in (1..self.shape.dim()).zip(column_masks(&self.shape)?) {
            let w_k = shifted(k)?;
            factors.push(encoder.encode_complex(&masked(&near, &w_k), level, scale)?);
            factors.push(encoder.encode_complex(&masked(&far, &w_k), level, scale)?);
        }
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
    /// (one level each, no rotation): level `l − 2`, scale `Δ_A`.
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
    /// is prepared once, whatever `m`.
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
        for (block, row) in left.iter().zip(weights) {
            self.check_prepared(block)?;
            if row.len() != outputs {
                return Err(Error::LengthMismatch {
                    op: OP,
                    got: row.len(),
                    expected: outputs,
                });
            }
            if let Some(w) = row.iter().find(|w| w.factors.len() != block.copies.len()) {
                return Err(Error::LengthMismatch {
                    op: OP,
                    got: w.factors.len(),
                    expected: block.copies.len(),
                });
            }
        }
        (0..outputs)
            .map(|j| {
                let mut terms = left
                    .iter()
                    .zip(weights)
                    .flat_map(|(block, row)| block.copies.iter().zip(&row[j].factors));
                let (first, first_factor) = terms.next().ok_or_else(|| Error::OutOfRange {
                    op: OP,
                    detail: "no prepared copy".into(),
                })?;
                let mut out = first.try_clone()?;
                ev.mul_plain_assign(&mut out, first_factor)?;
                for (copy, factor) in terms {
                    ev.mul_plain_add_assign(&mut out, copy, factor)?;
                }
                ev.rescale_assign(&mut out)?;
                Ok(out)
            })
            .collect()
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
        let left = self.prepare(ev, a)?;
        let (sigma_a, rotated_a) = left.copies.split_first().ok_or_else(|| Error::OutOfRange {
            op: OP,
            detail: "no prepared copy".into(),
        })?;
        // φ^k(σ(A)) = rot(σ(A), k) ⊙ m_k + rot(σ(A), k − d) ⊙ m'_k.
        let mut phis = vec![dropped_to(ev, sigma_a, self.level - 2)?];
        for (pair, [near_mask, far_mask]) in rotated_a.chunks_exact(2).zip(&self.masks) {
            let mut phi = pair[0].try_clone()?;
            ev.mul_plain_assign(&mut phi, near_mask)?;
            ev.mul_plain_add_assign(&mut phi, &pair[1], far_mask)?;
            ev.rescale_assign(&mut phi)?;
            phis.push(phi);
        }
        let t = dropped_to(ev, &self.tau.evaluate(ev, b, true)?, self.level - 2)?;
        let rotated = hoisted(ev, &t, &row_steps(&self.shape))?;
        let mut acc = ev.tensor_new(&phis[0], &t)?;
        for (phi, right) in phis[1..].iter().zip(&rotated) {
            ev.add_assign(&mut acc, &ev.tensor_new(phi, right)?)?;
        }
        ev.relinearize_rescale_assign(&mut acc)?;
        Ok(acc)
    }
}

/// The masks of `φ^k` for `k = 1..d−1`: its diagonals `k` (`m_k`) and `k − d`
/// (`m'_k`).
fn column_masks(shape: &MatrixShape) -> Result<Vec<[Vec<Complex>; 2]>> {
    (1..shape.dim())
        .map(|k| {
            let phi = column_shift(shape, k)?;
            let [near, far] = column_shift_steps(shape, k).map(|step| {
                phi.diagonal(step)
                    .map(<[Complex]>::to_vec)
                    .ok_or_else(|| Error::OutOfRange {
                        op: "MatrixProduct",
                        detail: format!("φ^{k} has no diagonal {step}"),
                    })
            });
            Ok([near?, far?])
        })
        .collect()
}
