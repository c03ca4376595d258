//! The transpose of an encrypted `d × d` matrix: the permutation
//! `Aᵀ[i][j] = A[j][i]` by the diagonal method (`2d − 1` diagonals, BSGS),
//! one level, scale kept exactly (diagonals encoded at `q_l`).

use crate::circuits::linear::EncodedLinearTransform;
use crate::ckks::{Ciphertext, Encoder, Evaluator};
use crate::error::Result;

use super::permutations::transpose;
use super::MatrixShape;

/// The transpose encoded for inputs at one level.
#[derive(Debug, Clone)]
pub struct Transpose {
    encoded: EncodedLinearTransform,
}

impl Transpose {
    /// Encodes the transpose of `shape` for inputs at `level` (at least 1).
    pub fn new(shape: &MatrixShape, encoder: &Encoder, level: usize) -> Result<Self> {
        Ok(Self {
            encoded: transpose(shape)?.encode(encoder, level)?,
        })
    }

    /// The rotation steps it uses.
    pub fn rotations(shape: &MatrixShape) -> Result<Vec<i64>> {
        Ok(transpose(shape)?.rotations())
    }

    /// `ctᵀ`, rescaled (one level below the encoding level).
    pub fn apply(&self, ev: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        self.encoded.evaluate(ev, ct, true)
    }
}
