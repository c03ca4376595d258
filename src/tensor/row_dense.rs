//! Dense products of one row with encrypted weights, `y = x₀·W` for the
//! first row `x₀` of a wide encrypted activation: what a classification
//! head on the first token needs, at a fraction of [`EncryptedDense`]'s
//! cost (element-wise products and rotate-and-sums instead of CCMM).
//!
//! The weight is in [`EncryptedDense`]'s layout (`W_{k,m,s}`, block `b`
//! the weight's block `(k·P + (b+s) mod P, m·P + b)`), so the same
//! ciphertexts serve either product.
//!
//! # The products (levels from the inputs' level `l`)
//!
//! - The *column form* of input ciphertext `k`: `x₀` down every column of
//!   its blocks, `c_k(i, j) = x₀[i]` in each block: the transpose (row 0
//!   becomes column 0), the mask of column 0, a rotate-and-sum by `−P`
//!   over the `d` columns (`→ l − 2`).
//! - forward: `Y_m = rowsum(Σ_{k,s} shift_s(c_k) ⊙ W_{k,m,s})`: entry
//!   `(i, j)` of block `b` is `x₀[(k·P + b + s)·d + i]·W[.., (m·P + b)·d + j]`,
//!   and the rotate-and-sum by `d·P` over the `d` rows sums the inputs `i`,
//!   leaving `y` on every row (`→ l − 4`).
//! - With `∂Ŷ_m` the gradient's row 0 on every row (its mask, then a
//!   rotate-and-sum by `−d·P`): `∂W_{k,m,s} = shift_s(c_k) ⊙ ∂Ŷ_m` in the
//!   weight's layout (`→ l − 4`), and
//!   `∂x₀ = Σ_s shift_{−s}(colsum(Σ_m W_{k,m,s} ⊙ ∂Ŷ_m))` (the
//!   rotate-and-sum by `P` over the `d` columns leaves the sum in column
//!   0), then column 0 kept and transposed back to row 0, every other row
//!   zero (`→ l − 5`).
//!
//! [`EncryptedDense`]: super::EncryptedDense

use ndarray::Array2;

use crate::ckks::{Ciphertext, Encoder, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;

use super::encrypted_dense::{
    above, accumulate, at_level, internal, lowest, shift, weight_outputs, Encodings,
};
use super::MatrixShape;

const OP: &str = "tensor::row_dense";

/// The levels of the forward product.
pub const ROW_DENSE_DEPTH: usize = 4;
/// The levels of the gradients.
pub const ROW_DENSE_GRADIENT_DEPTH: usize = 5;

/// `(∂x, ∂W, ∂Ŷ)` of [`RowDense::gradients`].
pub type RowGradients = (Vec<Ciphertext>, Vec<Ciphertext>, Vec<Ciphertext>);

/// Products of the first row with encrypted weights, for one shape.
#[derive(Debug, Clone, Copy)]
pub struct RowDense {
    shape: MatrixShape,
}

impl RowDense {
    /// The products on wide matrices of `shape`'s blocks.
    pub fn new(shape: MatrixShape) -> Self {
        Self { shape }
    }

    /// The rotation steps beyond the transpose's and the block shifts'
    /// ([`EncryptedDense::rotations`](super::EncryptedDense::rotations)):
    /// the sums over columns (`±P·2^t`) and rows (`±d·P·2^t`).
    pub fn sum_rotations(shape: &MatrixShape) -> Vec<i64> {
        let (p, d) = (shape.blocks() as i64, shape.dim());
        [p, -p, d as i64 * p, -(d as i64) * p]
            .into_iter()
            .flat_map(|stride| Evaluator::rotations_for_sum(stride, d))
            .collect()
    }

    /// `y = x₀·W` on every row (four levels from the lowest operand's):
    /// one ciphertext per output ciphertext.
    ///
    /// Errors: lists of the wrong lengths, operands below the levels
    /// needed or of another slot count.
    pub fn multiply(
        &self,
        (ev, encoder): (&Evaluator, &Encoder),
        encodings: &dyn Encodings,
        xs: &[Ciphertext],
        ws: &[Ciphertext],
    ) -> Result<Vec<Ciphertext>> {
        let h = weight_outputs(&self.shape, xs.len(), ws.len())?;
        let p = self.shape.blocks();
        let level = above(lowest(xs.iter().chain(ws))?, ROW_DENSE_DEPTH)?;
        let mut sums: Vec<Option<Ciphertext>> = (0..h).map(|_| None).collect();
        for (k, x) in xs.iter().enumerate() {
            let column = self.column_form((ev, encoder), encodings, x, level)?;
            for s in 0..p {
                let shifted = shift((ev, encoder), &self.shape, &column, s)?;
                for (m, sum) in sums.iter_mut().enumerate() {
                    let w = at_level(ev, &ws[(k * h + m) * p + s], shifted.level())?;
                    accumulate(ev, sum, ev.tensor_new(&shifted, &w)?)?;
                }
            }
        }
        sums.into_iter()
            .map(|sum| {
                let mut sum = sum.ok_or_else(|| internal("no product"))?;
                ev.relinearize_rescale_assign(&mut sum)?;
                self.sum_rows(ev, &sum)
            })
            .collect()
    }

    /// The gradients of `y = x₀·W` given `∂y` on row 0 of `dys` (the other
    /// rows are ignored): `(∂x, ∂W, ∂Ŷ)`, `∂x` on row 0 of the input's
    /// layout (the other rows zero), `∂W` in the weight's (five levels from
    /// the lowest operand's), and `∂y` on every row (the gradient of a
    /// bias replicated on every row; one level).
    ///
    /// Errors: those of [`multiply`](Self::multiply), a `∂y` of another
    /// width than `W`'s.
    pub fn gradients(
        &self,
        (ev, encoder): (&Evaluator, &Encoder),
        encodings: &dyn Encodings,
        xs: &[Ciphertext],
        ws: &[Ciphertext],
        dys: &[Ciphertext],
    ) -> Result<RowGradients> {
        let h = weight_outputs(&self.shape, xs.len(), ws.len())?;
        if dys.len() != h {
            return Err(Error::LengthMismatch {
                op: OP,
                got: dys.len(),
                expected: h,
            });
        }
        let (p, d) = (self.shape.blocks(), self.shape.dim());
        let level = above(
            lowest(xs.iter().chain(ws).chain(dys))?,
            ROW_DENSE_GRADIENT_DEPTH,
        )?;
        // ∂y's row 0 on every row (→ l − 1).
        let first_row = self.mask(|i, _| i == 0)?;
        let replicated: Vec<Ciphertext> = dys
            .iter()
            .map(|dy| {
                let kept = self.masked(ev, encoder, &at_level(ev, dy, level)?, &first_row)?;
                ev.rotate_and_sum_new(&kept, -((d * p) as i64), d)
            })
            .collect::<Result<_>>()?;
        // ∂W_{k,m,s} = shift_s(c_k) ⊙ ∂Ŷ_m in the order k, m, s (→ l − 4).
        let mut d_ws = Vec::with_capacity(ws.len());
        for x in xs {
            let column = self.column_form((ev, encoder), encodings, x, level)?;
            let shifted = (0..p)
                .map(|s| shift((ev, encoder), &self.shape, &column, s))
                .collect::<Result<Vec<_>>>()?;
            for dy in &replicated {
                for shifted in &shifted {
                    let dy = at_level(ev, dy, shifted.level())?;
                    d_ws.push(ev.mul_relin_rescale_new(shifted, &dy)?);
                }
            }
        }
        // ∂x₀ = Σ_s shift_{−s}(colsum(Σ_m W_{k,m,s} ⊙ ∂Ŷ_m)), column 0 kept,
        // transposed to row 0 (→ l − 5).
        let first_column = self.mask(|_, j| j == 0)?;
        let back = |s: usize| (p - s) % p;
        let mut d_xs = Vec::with_capacity(xs.len());
        for k in 0..xs.len() {
            let mut total: Option<Ciphertext> = None;
            for s in 0..p {
                let mut products: Option<Ciphertext> = None;
                for (m, dy) in replicated.iter().enumerate() {
                    let w = at_level(ev, &ws[(k * h + m) * p + s], level - 1)?;
                    accumulate(ev, &mut products, ev.tensor_new(&w, dy)?)?;
                }
                let mut products = products.ok_or_else(|| internal("no product"))?;
                ev.relinearize_rescale_assign(&mut products)?;
                let sums = ev.rotate_and_sum_new(&products, p as i64, d)?;
                let shifted = shift((ev, encoder), &self.shape, &sums, back(s))?;
                accumulate(ev, &mut total, shifted)?;
            }
            let total = total.ok_or_else(|| internal("no product"))?;
            let kept = self.masked(ev, encoder, &total, &first_column)?;
            d_xs.push(encodings.transpose(kept.level())?.apply(ev, &kept)?);
        }
        Ok((d_xs, d_ws, replicated))
    }

    /// `x₀` down every column of `x`'s blocks, from `x` dropped to `level`
    /// (two levels).
    fn column_form(
        &self,
        (ev, encoder): (&Evaluator, &Encoder),
        encodings: &dyn Encodings,
        x: &Ciphertext,
        level: usize,
    ) -> Result<Ciphertext> {
        let transposed = encodings
            .transpose(level)?
            .apply(ev, &at_level(ev, x, level)?)?;
        let kept = self.masked(ev, encoder, &transposed, &self.mask(|_, j| j == 0)?)?;
        ev.rotate_and_sum_new(&kept, -(self.shape.blocks() as i64), self.shape.dim())
    }

    /// Every row's sum on every row: the rotate-and-sum by `d·P` over the
    /// `d` rows.
    fn sum_rows(&self, ev: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        let (p, d) = (self.shape.blocks(), self.shape.dim());
        ev.rotate_and_sum_new(ct, (d * p) as i64, d)
    }

    /// The slots of the `d × d` mask `keep(i, j)` in every block.
    fn mask(&self, keep: impl Fn(usize, usize) -> bool) -> Result<Vec<Complex>> {
        let d = self.shape.dim();
        let matrix = Array2::from_shape_fn((d, d), |(i, j)| f64::from(u8::from(keep(i, j))));
        self.shape.pack(&matrix)
    }

    /// `ct ⊙ mask` (one level, the scale kept).
    fn masked(
        &self,
        ev: &Evaluator,
        encoder: &Encoder,
        ct: &Ciphertext,
        mask: &[Complex],
    ) -> Result<Ciphertext> {
        let prime = ev.context().params().q()[ct.level()] as f64;
        let pt = encoder.encode_complex(mask, ct.level(), prime)?;
        let mut out = ct.try_clone()?;
        ev.mul_plain_assign(&mut out, &pt)?;
        ev.rescale_assign(&mut out)?;
        Ok(out)
    }
}
