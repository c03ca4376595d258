//! Dense products whose weights are encrypted, `Y = X·W` for a wide
//! encrypted activation `X` (`d` rows, `g` ciphertexts of `P` column
//! blocks) and an encrypted `W` (`g·P·d × h·P·d`), by CCMM block by block
//! ([`MatrixProduct`]): what full fine-tuning needs for every weight, and
//! an encrypted head for its own.
//!
//! # Layout
//!
//! CCMM multiplies block `b` of one ciphertext by block `b` of the other,
//! all `P` at once. Output block `m·P + b` is
//! `Σ_k Σ_s X_{k·P + (b+s) mod P} · W_{k·P + (b+s) mod P, m·P + b}`, so the
//! weight is `g·h·P` ciphertexts `W_{k,m,s}` (in that order, `s` fastest)
//! whose block `b` is `W_{k·P + (b+s) mod P, m·P + b}`
//! ([`EncryptedDense::weight_slots`]), and the input's blocks are shifted
//! by `s` first: `shift_s(X)` has block `b` = block `(b + s) mod P` of `X`
//! ([`block_shift`]: two rotations, `s` and `s − P`, with complementary
//! masks; one level).
//!
//! # The products (levels from the inputs' level `l`)
//!
//! - forward: `Y_m = Σ_{k,s} CCMM(shift_s(X_k), W_{k,m,s})` (shift `l → l−1`,
//!   CCMM `→ l − 4`);
//! - `∂W_{k,m,s} = CCMM(shift_s(X_kᵀ), ∂Y_m)` (block `b`:
//!   `X_{k·P+(b+s)}ᵀ·∂Y_{m·P+b}`, in the weight's layout; transpose, shift,
//!   CCMM: `→ l − 5`);
//! - `∂X_k = Σ_{m,s} CCMM(shift_{−s}(∂Y_m), shift_{−s}(W_{k,m,s}ᵀ))` (block
//!   `b`: `∂Y_{m·P+b−s}·W_{k·P+b, m·P+b−s}ᵀ`; transpose or a dropped level,
//!   shift, CCMM: `→ l − 5`).

use std::sync::Arc;

use ndarray::Array2;

use crate::circuits::linear::LinearTransform;
use crate::ckks::{Ciphertext, Encoder, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;

use super::{MatrixProduct, MatrixShape, Transpose, CCMM_DEPTH};

const OP: &str = "tensor::encrypted_dense";

/// The levels of the forward product.
pub const ENCRYPTED_DENSE_DEPTH: usize = CCMM_DEPTH + 1;
/// The levels of either gradient.
pub const ENCRYPTED_DENSE_GRADIENT_DEPTH: usize = CCMM_DEPTH + 2;

/// `shift_s`: output block `b` reads block `(b + s) mod P` of the same
/// entry (`0 < s < P`).
pub fn block_shift(shape: &MatrixShape, s: usize) -> Result<LinearTransform> {
    let (p, n) = (shape.blocks(), shape.slots());
    let mut low = vec![Complex::ZERO; n];
    let mut high = vec![Complex::ZERO; n];
    for l in 0..n {
        if l % p + s % p < p {
            low[l] = Complex::from(1.0);
        } else {
            high[l] = Complex::from(1.0);
        }
    }
    let s = (s % p) as i64;
    let wrap = (s - p as i64).rem_euclid(n as i64);
    let mut diagonals = std::collections::BTreeMap::new();
    diagonals.insert(s, low);
    if s != 0 {
        diagonals.insert(wrap, high);
    }
    LinearTransform::from_diagonals(n, diagonals)
}

/// Where the products get CCMM and the transpose encoded for a level
/// (encoding them is costly at `N = 2^16`: a caller keeps them).
pub trait Encodings {
    /// CCMM for inputs at `level`.
    fn product(&self, level: usize) -> Result<Arc<MatrixProduct>>;
    /// The transpose for inputs at `level`.
    fn transpose(&self, level: usize) -> Result<Arc<Transpose>>;
}

/// Dense products with encrypted weights for one shape.
#[derive(Debug, Clone, Copy)]
pub struct EncryptedDense {
    shape: MatrixShape,
}

impl EncryptedDense {
    /// The products on wide matrices of `shape`'s blocks.
    pub fn new(shape: MatrixShape) -> Self {
        Self { shape }
    }

    /// The rotation steps: the block shifts' (`±s`, `s − P`), CCMM's and
    /// the transpose's.
    ///
    /// Errors: those of the permutations.
    pub fn rotations(shape: &MatrixShape) -> Result<Vec<i64>> {
        let mut steps = MatrixProduct::ccmm_rotations(shape)?;
        steps.extend(Transpose::rotations(shape)?);
        for s in 1..shape.blocks() {
            steps.extend(block_shift(shape, s)?.rotations());
            steps.extend(block_shift(shape, shape.blocks() - s)?.rotations());
        }
        steps.sort_unstable();
        steps.dedup();
        Ok(steps)
    }

    /// The slot vectors of `w` (padded to whole ciphertexts of blocks on
    /// both sides) in the weight layout, `[k][m][s]` flat.
    ///
    /// Errors: a matrix with no entry, non-finite entries.
    pub fn weight_slots(&self, w: &Array2<f64>) -> Result<Vec<Vec<Complex>>> {
        let (d, p) = (self.shape.dim(), self.shape.blocks());
        let (g, h) = self.ciphertexts(w.nrows(), w.ncols())?;
        let entry = |r: usize, c: usize| *w.get((r, c)).unwrap_or(&0.0);
        let mut out = Vec::with_capacity(g * h * p);
        for k in 0..g {
            for m in 0..h {
                for s in 0..p {
                    let blocks: Vec<Array2<f64>> = (0..p)
                        .map(|b| {
                            let (row_block, col_block) = (k * p + (b + s) % p, m * p + b);
                            Array2::from_shape_fn((d, d), |(i, j)| {
                                entry(row_block * d + i, col_block * d + j)
                            })
                        })
                        .collect();
                    out.push(self.shape.pack_blocks(&blocks)?);
                }
            }
        }
        Ok(out)
    }

    /// The `rows × cols` matrix whose weight layout `slots` holds (the
    /// inverse of [`weight_slots`](Self::weight_slots): every block of `W`
    /// lies in exactly one block of one ciphertext).
    ///
    /// Errors: a slot count other than the layout's.
    pub fn weight_matrix(
        &self,
        slots: &[Vec<Complex>],
        rows: usize,
        cols: usize,
    ) -> Result<Array2<f64>> {
        let (d, p) = (self.shape.dim(), self.shape.blocks());
        let (g, h) = self.ciphertexts(rows, cols)?;
        if slots.len() != g * h * p {
            return Err(Error::LengthMismatch {
                op: OP,
                got: slots.len(),
                expected: g * h * p,
            });
        }
        let mut w = Array2::zeros((g * p * d, h * p * d));
        for k in 0..g {
            for m in 0..h {
                for s in 0..p {
                    let blocks = self.shape.unpack_blocks(&slots[(k * h + m) * p + s])?;
                    for (b, block) in blocks.iter().enumerate() {
                        let (row_block, col_block) = (k * p + (b + s) % p, m * p + b);
                        w.slice_mut(ndarray::s![
                            row_block * d..(row_block + 1) * d,
                            col_block * d..(col_block + 1) * d
                        ])
                        .assign(block);
                    }
                }
            }
        }
        Ok(w.slice(ndarray::s![..rows, ..cols]).to_owned())
    }

    /// The ciphertexts of a `rows × cols` weight's two sides.
    fn ciphertexts(&self, rows: usize, cols: usize) -> Result<(usize, usize)> {
        let side = self.shape.dim() * self.shape.blocks();
        if rows == 0 || cols == 0 {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!("a {rows} x {cols} weight"),
            });
        }
        Ok((rows.div_ceil(side), cols.div_ceil(side)))
    }

    /// `shift_s(ct)` (one level; the identity, dropped a level, for `s = 0`).
    fn shift(
        &self,
        ev: &Evaluator,
        encoder: &Encoder,
        ct: &Ciphertext,
        s: usize,
    ) -> Result<Ciphertext> {
        shift((ev, encoder), &self.shape, ct, s)
    }

    /// Checks the list lengths: `g` inputs, `g·h·P` weights.
    fn check(&self, inputs: usize, weights: usize) -> Result<usize> {
        weight_outputs(&self.shape, inputs, weights)
    }

    /// `Y = X·W` (four levels from the lowest operand's level): one
    /// ciphertext per output ciphertext.
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
        let h = self.check(xs.len(), ws.len())?;
        let p = self.shape.blocks();
        let level = above(lowest(xs.iter().chain(ws))?, ENCRYPTED_DENSE_DEPTH)?;
        let product = encodings.product(level - 1)?;
        // One shifted copy at a time, its products added as they come:
        // memory for a few ciphertexts, not P copies of the input.
        let mut outputs: Vec<Option<Ciphertext>> = (0..h).map(|_| None).collect();
        for (k, x) in xs.iter().enumerate() {
            let x = at_level(ev, x, level)?;
            for s in 0..p {
                let shifted = self.shift(ev, encoder, &x, s)?;
                for (m, output) in outputs.iter_mut().enumerate() {
                    let term = product.multiply(ev, &shifted, &ws[(k * h + m) * p + s])?;
                    accumulate(ev, output, term)?;
                }
            }
        }
        outputs
            .into_iter()
            .map(|y| y.ok_or_else(|| internal("no product")))
            .collect()
    }

    /// The gradients of `Y = X·W` given `dY`: `(∂X, ∂W)` in the input's and
    /// the weight's layouts (five levels each from the lowest operand's).
    ///
    /// Errors: those of [`multiply`](Self::multiply), a `dY` of another
    /// width than `W`'s.
    pub fn gradients(
        &self,
        (ev, encoder): (&Evaluator, &Encoder),
        encodings: &dyn Encodings,
        xs: &[Ciphertext],
        ws: &[Ciphertext],
        dys: &[Ciphertext],
    ) -> Result<(Vec<Ciphertext>, Vec<Ciphertext>)> {
        let h = self.check(xs.len(), ws.len())?;
        if dys.len() != h {
            return Err(Error::LengthMismatch {
                op: OP,
                got: dys.len(),
                expected: h,
            });
        }
        let p = self.shape.blocks();
        let level = above(
            lowest(xs.iter().chain(ws).chain(dys))?,
            ENCRYPTED_DENSE_GRADIENT_DEPTH,
        )?;
        let transpose = encodings.transpose(level)?;
        let product = encodings.product(level - 2)?;
        let dys_above: Vec<Ciphertext> = dys
            .iter()
            .map(|dy| at_level(ev, dy, level - 1))
            .collect::<Result<_>>()?;
        let dys: Vec<Ciphertext> = dys
            .iter()
            .map(|dy| at_level(ev, dy, level - 2))
            .collect::<Result<_>>()?;
        // ∂W_{k,m,s} = CCMM(shift_s(X_kᵀ), ∂Y_m), in the order k, m, s.
        let mut d_ws: Vec<Option<Ciphertext>> = (0..ws.len()).map(|_| None).collect();
        for (k, x) in xs.iter().enumerate() {
            let transposed = transpose.apply(ev, &at_level(ev, x, level)?)?;
            for s in 0..p {
                let shifted = self.shift(ev, encoder, &transposed, s)?;
                for (m, dy) in dys.iter().enumerate() {
                    d_ws[(k * h + m) * p + s] = Some(product.multiply(ev, &shifted, dy)?);
                }
            }
        }
        // ∂X_k = Σ_{m,s} CCMM(shift_{−s}(∂Y_m), shift_{−s}(W_{k,m,s}ᵀ)).
        let back = |s: usize| (p - s) % p;
        let mut d_xs: Vec<Option<Ciphertext>> = xs.iter().map(|_| None).collect();
        for (m, dy) in dys_above.iter().enumerate() {
            for s in 0..p {
                let dy = self.shift(ev, encoder, dy, back(s))?;
                for (k, d_x) in d_xs.iter_mut().enumerate() {
                    let w = &ws[(k * h + m) * p + s];
                    let wt = transpose.apply(ev, &at_level(ev, w, level)?)?;
                    let wt = self.shift(ev, encoder, &wt, back(s))?;
                    accumulate(ev, d_x, product.multiply(ev, &dy, &wt)?)?;
                }
            }
        }
        let d_xs = d_xs
            .into_iter()
            .map(|d| d.ok_or_else(|| internal("no product")))
            .collect::<Result<_>>()?;
        let d_ws = d_ws
            .into_iter()
            .map(|d| d.ok_or_else(|| internal("no product")))
            .collect::<Result<_>>()?;
        Ok((d_xs, d_ws))
    }
}

/// `shift_s(ct)` on `shape`'s blocks (one level; the identity, dropped a
/// level, for `s = 0`).
pub(super) fn shift(
    (ev, encoder): (&Evaluator, &Encoder),
    shape: &MatrixShape,
    ct: &Ciphertext,
    s: usize,
) -> Result<Ciphertext> {
    block_shift(shape, s)?
        .encode(encoder, ct.level())?
        .evaluate(ev, ct, true)
}

/// Checks the list lengths of a product with encrypted weights: `g`
/// inputs, `g·h·P` weights; returns `h`.
pub(super) fn weight_outputs(shape: &MatrixShape, inputs: usize, weights: usize) -> Result<usize> {
    let p = shape.blocks();
    if inputs == 0 || weights == 0 || weights % (inputs * p) != 0 {
        return Err(Error::LengthMismatch {
            op: OP,
            got: weights,
            expected: inputs.max(1) * p,
        });
    }
    Ok(weights / (inputs * p))
}

/// The lowest level of `cts`, which must leave room for a product.
pub(super) fn lowest<'a>(cts: impl Iterator<Item = &'a Ciphertext>) -> Result<usize> {
    cts.map(Ciphertext::level)
        .min()
        .ok_or(Error::LengthMismatch {
            op: OP,
            got: 0,
            expected: 1,
        })
}

/// `level`, which must leave `needed` levels.
pub(super) fn above(level: usize, needed: usize) -> Result<usize> {
    if level < needed {
        return Err(Error::OutOfLevels {
            op: OP,
            level,
            needed,
        });
    }
    Ok(level)
}

/// `ct` dropped to `level`.
pub(super) fn at_level(ev: &Evaluator, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
    let mut out = ct.try_clone()?;
    let drop = ct.level().checked_sub(level).ok_or(Error::OutOfLevels {
        op: OP,
        level: ct.level(),
        needed: level,
    })?;
    ev.drop_level_assign(&mut out, drop)?;
    Ok(out)
}

/// `acc += term` (`acc` starts empty).
pub(super) fn accumulate(
    ev: &Evaluator,
    acc: &mut Option<Ciphertext>,
    term: Ciphertext,
) -> Result<()> {
    match acc {
        Some(acc) => ev.add_assign(acc, &term),
        None => {
            *acc = Some(term);
            Ok(())
        }
    }
}

/// An internal invariant failed (a bug, reported rather than panicking).
pub(super) fn internal(what: &str) -> Error {
    Error::OutOfRange {
        op: OP,
        detail: format!("internal: {what}"),
    }
}
