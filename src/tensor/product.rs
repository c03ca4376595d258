//! Matrix products of encrypted `d × d` matrices (CCMM) and of an encrypted
//! matrix by plaintext ones (CPMM), after JKLS:
//! `A·B = Σ_{k<d} φ^k(σ(A)) ⊙ ψ^k(τ(B))`.
//!
//! # Levels and scales
//!
//! A [`MatrixProduct`] is built for inputs at level `l >= 3`
//! ([`PRODUCT_DEPTH`]); inputs above `l` are dropped to it, inputs below are
//! `OutOfLevels`. Every plaintext factor is encoded at the scale of the
//! prime it is rescaled by, so the scale is kept exactly through the first
//! two levels:
//!
//! - `σ`, `τ`: diagonals at level `l`, scale `q_l`, then rescale (level `l − 1`);
//! - `φ^k`: masks at level `l − 1`, scale `q_{l−1}`, then rescale; `φ^0(σ(A))`
//!   is `σ(A)` dropped to `l − 2`. All `d` copies ([`PreparedLeft`]) are at
//!   level `l − 2` with the scale `Δ_A` of `A`;
//! - CPMM: `ψ^k(τ(W))` at level `l − 2`, scale `q_{l−2}`; the output is at
//!   level `l − 3` with scale `Δ_A`;
//! - CCMM: `τ(B)` is dropped to `l − 2` before its rotations (cheaper key
//!   switches); the `d` tensor products are summed at degree 2 and
//!   relinearized and rescaled once: level `l − 3`, scale `Δ_A·Δ_B / q_{l−2}`.
//!
//! # Costs and keys
//!
//! Preparing `A`: the `σ` transform (`2d − 1` diagonals, BSGS), then
//! `2(d − 1)` rotations hoisted from one decomposition (steps `k`, `k − d`)
//! and `2(d − 1)` plaintext products. CPMM per weight matrix: `d` plaintext
//! products and one rescale, no rotation. CCMM adds `τ` and `d − 1` hoisted
//! rotations by `k·d` (its representative in `(−n/2, n/2]`), `d` tensor
//! products and one relinearization.

use ndarray::Array2;

use crate::circuits::linear::EncodedLinearTransform;
use crate::ckks::{Ciphertext, Encoder, Evaluator, Plaintext};
use crate::error::{Error, Result};

use super::permutations::{
    column_shift, column_shift_steps, row_shift, row_shift_step, sigma, tau,
};
use super::MatrixShape;

/// The levels a product consumes (`σ`/`τ`, the `φ^k` masks, the product).
pub const PRODUCT_DEPTH: usize = 3;

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

/// `φ^k(σ(A))` for `k = 0..d−1`, at level `l − 2`: the left factor of every
/// product with `A`, computed once.
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

/// `ψ^k(τ(W))` for `k = 0..d−1`, encoded at level `l − 2` and scale `q_{l−2}`.
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
    /// `level − 1`) for inputs at `level` (at least [`PRODUCT_DEPTH`]).
    pub fn new(shape: MatrixShape, encoder: &Encoder, level: usize) -> Result<Self> {
        encoder.context().check_level("MatrixProduct::new", level)?;
        if level < PRODUCT_DEPTH {
            return Err(Error::OutOfLevels {
                op: "MatrixProduct::new",
                level,
                needed: PRODUCT_DEPTH,
            });
        }
        let q = encoder.context().params().q();
        let masks = (1..shape.dim())
            .map(|k| {
                let phi = column_shift(&shape, k)?;
                let [near, far] = column_shift_steps(&shape, k);
                let encode = |step: i64| -> Result<Plaintext> {
                    let mask = phi.diagonal(step).ok_or_else(|| Error::OutOfRange {
                        op: "MatrixProduct::new",
                        detail: format!("φ^{k} has no diagonal {step}"),
                    })?;
                    encoder.encode_complex(mask, level - 1, q[level - 1] as f64)
                };
                Ok([encode(near)?, encode(far)?])
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

    /// The level the inputs are brought to; outputs are [`PRODUCT_DEPTH`] lower.
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
        if ct.slots() != self.shape.slots() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: ct.slots(),
                expected: self.shape.slots(),
            });
        }
        if ct.level() < self.level {
            return Err(Error::OutOfLevels {
                op: OP,
                level: ct.level(),
                needed: self.level,
            });
        }
        Ok(())
    }

    /// `φ^k(σ(A))` for `k = 0..d−1` (two levels), for any number of products.
    pub fn prepare(&self, ev: &Evaluator, a: &Ciphertext) -> Result<PreparedLeft> {
        self.check_input(a)?;
        let s = self.sigma.evaluate(ev, a, true)?;
        let rotated = hoisted(ev, &s, &column_steps(&self.shape))?;
        let mut copies = Vec::with_capacity(self.shape.dim());
        copies.push(dropped_to(ev, &s, self.level - 2)?);
        for (pair, [near_mask, far_mask]) in rotated.chunks_exact(2).zip(&self.masks) {
            let mut copy = pair[0].try_clone()?;
            ev.mul_plain_assign(&mut copy, near_mask)?;
            let mut far = pair[1].try_clone()?;
            ev.mul_plain_assign(&mut far, far_mask)?;
            ev.add_assign(&mut copy, &far)?;
            ev.rescale_assign(&mut copy)?;
            copies.push(copy);
        }
        Ok(PreparedLeft {
            dim: self.shape.dim(),
            copies,
        })
    }

    /// `ψ^k(τ(w))` for `k = 0..d−1` in the clear, encoded at level `l − 2`,
    /// scale `q_{l−2}` (offline).
    pub fn encode_weights(&self, encoder: &Encoder, w: &Array2<f64>) -> Result<EncodedWeights> {
        let level = self.level - 2;
        let scale = encoder.context().params().q()[level] as f64;
        let tw = tau(&self.shape)?.apply_plain(&self.shape.pack(w)?)?;
        let factors = (0..self.shape.dim())
            .map(|k| {
                let shifted = row_shift(&self.shape, k)?.apply_plain(&tw)?;
                encoder.encode_complex(&shifted, level, scale)
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
    /// (one level each, no rotation).
    pub fn multiply_plain(
        &self,
        ev: &Evaluator,
        left: &PreparedLeft,
        weights: &[EncodedWeights],
    ) -> Result<Vec<Ciphertext>> {
        self.check_prepared(left)?;
        weights
            .iter()
            .map(|w| {
                if w.factors.len() != left.copies.len() {
                    return Err(Error::LengthMismatch {
                        op: OP,
                        got: w.factors.len(),
                        expected: left.copies.len(),
                    });
                }
                let mut acc: Option<Ciphertext> = None;
                for (copy, factor) in left.copies.iter().zip(&w.factors) {
                    let mut term = copy.try_clone()?;
                    ev.mul_plain_assign(&mut term, factor)?;
                    match acc.as_mut() {
                        Some(acc) => ev.add_assign(acc, &term)?,
                        None => acc = Some(term),
                    }
                }
                let mut out = acc.ok_or_else(|| Error::OutOfRange {
                    op: OP,
                    detail: "empty weight matrix".into(),
                })?;
                ev.rescale_assign(&mut out)?;
                Ok(out)
            })
            .collect()
    }

    /// CCMM: `A·B` (three levels; see the module docs for the scale).
    pub fn multiply(&self, ev: &Evaluator, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.check_input(a)?;
        self.check_input(b)?;
        let left = self.prepare(ev, a)?;
        let t = dropped_to(ev, &self.tau.evaluate(ev, b, true)?, self.level - 2)?;
        let rotated = hoisted(ev, &t, &row_steps(&self.shape))?;
        let mut acc = ev.tensor_new(&left.copies[0], &t)?;
        for (copy, right) in left.copies[1..].iter().zip(&rotated) {
            ev.add_assign(&mut acc, &ev.tensor_new(copy, right)?)?;
        }
        ev.relinearize_rescale_assign(&mut acc)?;
        Ok(acc)
    }
}
