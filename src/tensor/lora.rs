//! The low-rank products of LoRA, `X·A·B` for an encrypted `d × d` matrix
//! `X` and encrypted adapters `A` (`d × r`) and `B` (`r × d`) of small rank
//! `r`, without a general ciphertext matrix product: masked replication,
//! Hadamard products and rotate-and-sum.
//!
//! # Layout
//!
//! The adapters travel replicated across rows ([`replicated_rows`]): column
//! `c` of `A` is the `d × d` matrix whose every row is `A[:, c]ᵀ`, row `c` of
//! `B` the one whose every row is `B[c, :]`; `r` ciphertexts each.
//!
//! # The circuit (three levels from `l`)
//!
//! For each `c < r`:
//!
//! 1. `X ⊙ Â_c` (tensor, relinearize, rescale: `l → l − 1`), then
//!    rotate-and-sum by `1, 2, .., d/2` (times `P`): slot `(i, 0)` holds
//!    `(X·A)[i][c] = Σ_j X[i][j]·A[j][c]` (other slots hold partial sums of
//!    neighbouring rows);
//! 2. times the mask of column 0 (`q_{l−1}`-scaled plaintext: the scale is
//!    kept; `→ l − 2`), then rotate-and-sum by `−1, −2, .., −d/2`: every slot
//!    `(i, j)` holds `(X·A)[i][c]` ([`LoraProduct::project`] returns these);
//! 3. `Σ_c (X·A)_c^rep ⊙ B̂_c`: the `r` tensors summed at degree 2, then one
//!    relinearization and rescale (`→ l − 3`): `(X·A·B)[i][j]`.
//!
//! Rotations: `±1, ±2, .., ±d/2` times `P` (every block sums within
//! itself; [`LoraProduct::rotations`]); a
//! relinearization key. The output scale is `Δ_X·Δ_A/q_l·Δ_B/q_{l−2}`.
//!
//! # Gradients
//!
//! [`LoraProduct::gradients`] gives `∂L/∂A` and `∂L/∂B` from `dY` in the
//! adapters' layouts with the same steps plus sums over the rows
//! (rotations by `d·P·2^t`): `∂B_c` is `(X·A)_c` replicated, times `dY`,
//! summed over the rows; `∂A_c` is `dY ⊙ B̂_c` summed over each row and
//! replicated, times `X`, summed over the rows. Three levels each.

use ndarray::{Array1, Array2};

use crate::ckks::{Ciphertext, Encoder, Evaluator, Plaintext};
use crate::error::{Error, Result};
use crate::math::Complex;

use super::MatrixShape;

const OP: &str = "tensor::lora";

/// The levels [`LoraProduct::apply`] consumes.
pub const LORA_DEPTH: usize = 3;

/// The `d × d` matrix whose every row is `v` (`v` of length `d`): how a
/// column of `A` or a row of `B` is packed.
pub fn replicated_rows(shape: &MatrixShape, v: &Array1<f64>) -> Result<Array2<f64>> {
    let d = shape.dim();
    if v.len() != d {
        return Err(Error::LengthMismatch {
            op: OP,
            got: v.len(),
            expected: d,
        });
    }
    Ok(Array2::from_shape_fn((d, d), |(_, j)| v[j]))
}

/// The mask of column 0, encoded once for one shape and input level.
#[derive(Debug, Clone)]
pub struct LoraProduct {
    shape: MatrixShape,
    level: usize,
    first_column: Plaintext,
}

impl LoraProduct {
    /// For inputs at `level` (at least [`LORA_DEPTH`]).
    pub fn new(shape: MatrixShape, encoder: &Encoder, level: usize) -> Result<Self> {
        encoder.context().check_level("LoraProduct::new", level)?;
        if level < LORA_DEPTH {
            return Err(Error::OutOfLevels {
                op: "LoraProduct::new",
                level,
                needed: LORA_DEPTH,
            });
        }
        let (d, p) = (shape.dim(), shape.blocks());
        let mask: Vec<Complex> = (0..shape.slots())
            .map(|l| Complex::new(if (l / p) % d == 0 { 1.0 } else { 0.0 }, 0.0))
            .collect();
        let scale = encoder.context().params().q()[level - 1] as f64;
        Ok(Self {
            shape,
            level,
            first_column: encoder.encode_complex(&mask, level - 1, scale)?,
        })
    }

    /// The rotation steps: `±1, ±2, .., ±d/2`, times the blocks `P`.
    pub fn rotations(shape: &MatrixShape) -> Vec<i64> {
        let (d, p) = (shape.dim(), shape.blocks() as i64);
        let mut steps = Evaluator::rotations_for_sum(p, d);
        steps.extend(Evaluator::rotations_for_sum(-p, d));
        steps.sort_unstable();
        steps
    }

    /// `X` and the factors at the product's level, checked.
    fn at_level(&self, ev: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        self.shape.check_operand(OP, ct, self.level)?;
        let mut out = ct.try_clone()?;
        ev.drop_level_assign(&mut out, ct.level() - self.level)?;
        Ok(out)
    }

    /// `u ⊙ v` summed over each row, the sum replicated across the row
    /// (two levels: the product, then the mask of column 0 between the two
    /// rotate-and-sums). `u`, `v` at the product's level or above.
    fn replicated_row_sums(
        &self,
        ev: &Evaluator,
        u: &Ciphertext,
        v: &Ciphertext,
    ) -> Result<Ciphertext> {
        let (d, p) = (self.shape.dim(), self.shape.blocks() as i64);
        let products = ev.mul_relin_rescale_new(&self.at_level(ev, u)?, &self.at_level(ev, v)?)?;
        let mut sums = ev.rotate_and_sum_new(&products, p, d)?;
        ev.mul_plain_assign(&mut sums, &self.first_column)?;
        ev.rescale_assign(&mut sums)?;
        ev.rotate_and_sum_new(&sums, -p, d)
    }

    /// `(X·A)[:, c]` replicated across each row, for every column `Â_c` of
    /// `a_columns` (two levels): the right factor of the second product, and
    /// what a backward pass reuses.
    pub fn project(
        &self,
        ev: &Evaluator,
        x: &Ciphertext,
        a_columns: &[Ciphertext],
    ) -> Result<Vec<Ciphertext>> {
        a_columns
            .iter()
            .map(|a| self.replicated_row_sums(ev, x, a))
            .collect()
    }

    /// The rotation steps of [`gradients`](Self::gradients): those of the
    /// product and the row sums' `d·P·2^t`.
    pub fn gradient_rotations(shape: &MatrixShape) -> Vec<i64> {
        let mut steps = Self::rotations(shape);
        steps.extend(Evaluator::rotations_for_sum(
            (shape.dim() * shape.blocks()) as i64,
            shape.dim(),
        ));
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    /// The gradients of a loss by the adapters of `Y = X·A·B`, given
    /// `dY = ∂L/∂Y`, in the adapters' own layouts (three levels each):
    ///
    /// - `∂L/∂B[c, :] = Σ_i (X·A)[i][c]·dY[i][:]`: the projection
    ///   `(X·A)_c` replicated across rows, times `dY`, summed over the rows
    ///   (every row then holds it: row `c` of `B`'s packing);
    /// - `∂L/∂A[:, c] = Xᵀ·(dY·Bᵀ)[:, c]`: `dY ⊙ B̂_c` summed over each row
    ///   and replicated, times `X`, summed over the rows (column `c` of
    ///   `A`'s packing).
    ///
    /// Returns `(∂A columns, ∂B rows)`. Needs
    /// [`gradient_rotations`](Self::gradient_rotations).
    ///
    /// Errors: mismatched ranks, operands below the product's level or of
    /// another slot count, missing keys.
    pub fn gradients(
        &self,
        ev: &Evaluator,
        x: &Ciphertext,
        a_columns: &[Ciphertext],
        b_rows: &[Ciphertext],
        dy: &Ciphertext,
    ) -> Result<(Vec<Ciphertext>, Vec<Ciphertext>)> {
        if a_columns.is_empty() || a_columns.len() != b_rows.len() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: b_rows.len(),
                expected: a_columns.len().max(1),
            });
        }
        let (d, rows) = (
            self.shape.dim(),
            (self.shape.dim() * self.shape.blocks()) as i64,
        );
        let dy = self.at_level(ev, dy)?;
        let x = self.at_level(ev, x)?;
        // Both factors of each last product at the level of the other.
        let times_summed = |replicated: &Ciphertext, other: &Ciphertext| -> Result<Ciphertext> {
            let drop = other.level() - replicated.level();
            let mut other = other.try_clone()?;
            ev.drop_level_assign(&mut other, drop)?;
            let product = ev.mul_relin_rescale_new(replicated, &other)?;
            ev.rotate_and_sum_new(&product, rows, d)
        };
        let d_b = self
            .project(ev, &x, a_columns)?
            .iter()
            .map(|xa| times_summed(xa, &dy))
            .collect::<Result<Vec<_>>>()?;
        let d_a = b_rows
            .iter()
            .map(|b| times_summed(&self.replicated_row_sums(ev, &dy, b)?, &x))
            .collect::<Result<Vec<_>>>()?;
        Ok((d_a, d_b))
    }

    /// `X·A·B` (three levels) from the `r` columns of `A` and the `r` rows of
    /// `B`, each replicated across rows.
    pub fn apply(
        &self,
        ev: &Evaluator,
        x: &Ciphertext,
        a_columns: &[Ciphertext],
        b_rows: &[Ciphertext],
    ) -> Result<Ciphertext> {
        if a_columns.is_empty() || a_columns.len() != b_rows.len() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: b_rows.len(),
                expected: a_columns.len().max(1),
            });
        }
        let projected = self.project(ev, x, a_columns)?;
        let mut acc: Option<Ciphertext> = None;
        for (xa, b) in projected.iter().zip(b_rows) {
            let drop = b.level().saturating_sub(xa.level());
            let mut b = b.try_clone()?;
            ev.drop_level_assign(&mut b, drop)?;
            let term = ev.tensor_new(xa, &b)?;
            match acc.as_mut() {
                Some(acc) => ev.add_assign(acc, &term)?,
                None => acc = Some(term),
            }
        }
        let mut out = acc.ok_or_else(|| Error::OutOfRange {
            op: OP,
            detail: "rank 0".into(),
        })?;
        ev.relinearize_rescale_assign(&mut out)?;
        Ok(out)
    }
}
