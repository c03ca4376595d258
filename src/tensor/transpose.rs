//! The transpose of encrypted `d × d` matrices (each of the interleaved
//! blocks): the permutation
//! `Aᵀ[i][j] = A[j][i]` by the diagonal method (`2d − 1` diagonals, BSGS),
//! one level, scale kept exactly (diagonals encoded at `q_l`).
//!
//! Its diagonals are `δ·(d − 1)·P` for `δ ∈ (−d, d)` (modulo `P·d²`):
//! spread over the whole range, so the contiguous baby steps of the
//! automatic choice need many keys (42 at `d = 32`, 150 at `d = 128`). A
//! baby step `(d − 1)·P·g` keeps the babies on the two residues of the
//! diagonals (15 and 31 keys); [`Transpose`] takes whichever choice needs
//! fewer.

use crate::circuits::linear::{EncodedLinearTransform, LinearTransform};
use crate::ckks::{Ciphertext, Encoder, Evaluator};
use crate::error::Result;

use super::permutations::transpose;
use super::MatrixShape;

/// The transpose encoded for inputs at one level.
#[derive(Debug, Clone)]
pub struct Transpose {
    encoded: EncodedLinearTransform,
}

/// The transpose with the baby step that needs the fewest keys (see the
/// module docs).
fn planned(shape: &MatrixShape) -> Result<LinearTransform> {
    let automatic = transpose(shape)?;
    let stride = shape.dim().saturating_sub(1).max(1) * shape.blocks();
    let strided = std::iter::successors(Some(stride), |&n1| Some(2 * n1))
        .take_while(|&n1| n1 <= shape.slots())
        .map(|n1| automatic.clone().with_baby_step(n1))
        .collect::<Result<Vec<_>>>()?;
    Ok(std::iter::once(automatic)
        .chain(strided)
        .min_by_key(|t| t.rotations().len())
        .unwrap_or(transpose(shape)?))
}

impl Transpose {
    /// Encodes the transpose of `shape` for inputs at `level` (at least 1).
    pub fn new(shape: &MatrixShape, encoder: &Encoder, level: usize) -> Result<Self> {
        Ok(Self {
            encoded: planned(shape)?.encode(encoder, level)?,
        })
    }

    /// The rotation steps it uses.
    pub fn rotations(shape: &MatrixShape) -> Result<Vec<i64>> {
        Ok(planned(shape)?.rotations())
    }

    /// `ctᵀ`, rescaled (one level below the encoding level).
    pub fn apply(&self, ev: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        self.encoded.evaluate(ev, ct, true)
    }
}
