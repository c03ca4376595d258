//! The low-rank products of LoRA, `X·A·B` for an encrypted wide matrix `X`
//! (`d` rows, `g` ciphertexts of `P` blocks: `g·P·d` columns, as
//! [`MatrixShape::pack_wide`] lays it out) and encrypted adapters `A`
//! (`g·P·d × r`) and `B` (`r × h·P·d`) of small rank `r`, without a general
//! ciphertext matrix product: Hadamard products and rotate-and-sum.
//!
//! # Layout
//!
//! Row `i` of a wide matrix fills the `d·P` consecutive slots from
//! `i·d·P` of each of its ciphertexts, so a sum over a whole row is a
//! rotate-and-sum by `1, 2, .., d·P/2` (and its replication across the row
//! the same by `−1, .., −d·P/2`), and a sum over the rows one by
//! `d·P·2^t`. The adapters travel replicated across rows
//! ([`replicated_rows`]): column `c` of `A` as the wide matrix whose every
//! row is `A[:, c]ᵀ` (`g` ciphertexts), row `c` of `B` as the one whose
//! every row is `B[c, :]` (`h` ciphertexts).
//!
//! # The circuit (three levels from the operands' lowest level `l`)
//!
//! For each `c < r`:
//!
//! 1. `Σ_k X_k ⊙ Â_{c,k}` over the input ciphertexts, summed at degree 2,
//!    relinearized and rescaled once (`→ l − 1`), then rotate-and-sum over
//!    the row: slot `i·d·P` holds `(X·A)[i][c]`;
//! 2. times the mask of each row's first slot (a `q_{l−1}`-scaled
//!    plaintext carrying the factor `f`: the scale is kept; `→ l − 2`),
//!    then the replication across the row: every slot of row `i` holds
//!    `f·(X·A)[i][c]` ([`LoraProduct::project`] returns these);
//! 3. for every output ciphertext, `Σ_c (X·A)_c^rep ⊙ B̂_{c,h}`, summed at
//!    degree 2, then one relinearization and rescale (`→ l − 3`).
//!
//! Rotations: `±1, ±2, .., ±d·P/2` ([`LoraProduct::rotations`]); a
//! relinearization key. The output scale is `Δ_X·Δ_A/q_l·Δ_B/q_{l−2}`.
//!
//! # Gradients
//!
//! [`LoraProduct::gradients`] gives `∂L/∂A` and `∂L/∂B` of `Y = f·X·A·B`
//! from `dY` in the adapters' layouts, three levels each: `∂B_c` is
//! `(X·A)_c` replicated (step 2, with `f`), times `dY`, summed over the
//! rows; `∂A_c` is `dY ⊙ B̂_c` summed over each row and replicated (with
//! `f`), times `X`, summed over the rows. `∂L/∂X = f·dY·Bᵀ·Aᵀ` is
//! [`LoraProduct::apply`] with the adapters' roles exchanged.

use ndarray::{Array1, Array2};

use crate::ckks::{Ciphertext, Encoder, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;

use super::MatrixShape;

const OP: &str = "tensor::lora";

/// The levels [`LoraProduct::apply`] and [`LoraProduct::gradients`]
/// consume.
pub const LORA_DEPTH: usize = 3;

/// The `d × len(v)` matrix whose every row is `v`: how a column of `A` or a
/// row of `B` is laid out (then packed with [`MatrixShape::pack_wide`]).
pub fn replicated_rows(d: usize, v: &Array1<f64>) -> Array2<f64> {
    Array2::from_shape_fn((d, v.len()), |(_, j)| v[j])
}

/// The adapters of one product, as laid out above (borrowed).
#[derive(Debug, Clone)]
pub struct Adapters<'a> {
    /// The `r` columns of `A`, each as many ciphertexts as `X`.
    pub a_columns: Vec<&'a [Ciphertext]>,
    /// The `r` rows of `B`, each as many ciphertexts as `Y`.
    pub b_rows: Vec<&'a [Ciphertext]>,
}

impl Adapters<'_> {
    /// The adapters of `dY·Bᵀ·Aᵀ`: `B`'s rows as the columns, `A`'s
    /// columns as the rows.
    pub fn exchanged(self) -> Self {
        Adapters {
            a_columns: self.b_rows,
            b_rows: self.a_columns,
        }
    }
}

/// `∂L/∂A` and `∂L/∂B` in the adapters' layouts.
#[derive(Debug)]
pub struct AdapterGradients {
    pub a_columns: Vec<Vec<Ciphertext>>,
    pub b_rows: Vec<Vec<Ciphertext>>,
}

/// LoRA's products for one shape.
#[derive(Debug, Clone, Copy)]
pub struct LoraProduct {
    shape: MatrixShape,
}

impl LoraProduct {
    /// The products on wide matrices of `shape`'s blocks.
    pub fn new(shape: MatrixShape) -> Self {
        Self { shape }
    }

    /// The slots of one row of a ciphertext: `d·P`.
    fn row_slots(&self) -> usize {
        self.shape.dim() * self.shape.blocks()
    }

    /// The rotation steps: `±1, ±2, .., ±d·P/2`.
    pub fn rotations(shape: &MatrixShape) -> Vec<i64> {
        let row = shape.dim() * shape.blocks();
        let mut steps = Evaluator::rotations_for_sum(1, row);
        steps.extend(Evaluator::rotations_for_sum(-1, row));
        steps.sort_unstable();
        steps
    }

    /// The rotation steps of [`gradients`](Self::gradients): those of the
    /// product and the sums over the rows, `d·P·2^t`.
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

    /// `Σ_k u_k ⊙ v_k` summed over each row, times `factor`, replicated
    /// across the row (two levels from the operands' lowest).
    ///
    /// Errors: lists empty or of different lengths, operands of another
    /// slot count or below level 2, scales that differ within a list.
    pub fn row_sums(
        &self,
        ev: &Evaluator,
        encoder: &Encoder,
        us: &[Ciphertext],
        vs: &[Ciphertext],
        factor: f64,
    ) -> Result<Ciphertext> {
        let mut sums = self.summed_products(ev, us, vs)?;
        let row = self.row_slots();
        sums = ev.rotate_and_sum_new(&sums, 1, row)?;
        let mask: Vec<Complex> = (0..self.shape.slots())
            .map(|l| Complex::from(if l % row == 0 { factor } else { 0.0 }))
            .collect();
        let prime = ev.context().params().q()[sums.level()] as f64;
        let pt = encoder.encode_complex(&mask, sums.level(), prime)?;
        ev.mul_plain_assign(&mut sums, &pt)?;
        ev.rescale_assign(&mut sums)?;
        ev.rotate_and_sum_new(&sums, -1, row)
    }

    /// `Σ_k u_k ⊙ v_k` (one level), every operand first brought to the
    /// lowest level among them.
    fn summed_products(
        &self,
        ev: &Evaluator,
        us: &[Ciphertext],
        vs: &[Ciphertext],
    ) -> Result<Ciphertext> {
        if us.is_empty() || us.len() != vs.len() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: vs.len(),
                expected: us.len().max(1),
            });
        }
        let level = us
            .iter()
            .chain(vs)
            .map(Ciphertext::level)
            .min()
            .unwrap_or(0);
        let mut acc: Option<Ciphertext> = None;
        for (u, v) in us.iter().zip(vs) {
            let term =
                ev.tensor_new(&self.at_level(ev, u, level)?, &self.at_level(ev, v, level)?)?;
            match acc.as_mut() {
                Some(acc) => ev.add_assign(acc, &term)?,
                None => acc = Some(term),
            }
        }
        let mut out = acc.ok_or_else(|| internal("no product"))?;
        ev.relinearize_rescale_assign(&mut out)?;
        Ok(out)
    }

    /// `ct` checked and dropped to `level`.
    fn at_level(&self, ev: &Evaluator, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
        self.shape.check_operand(OP, ct, level.max(1))?;
        let mut out = ct.try_clone()?;
        ev.drop_level_assign(&mut out, ct.level() - level)?;
        Ok(out)
    }

    /// `f·(X·A)[:, c]` replicated across each row, for every column `Â_c`
    /// of `a_columns` (two levels): the right factor of the second
    /// product, and what the gradients reuse.
    ///
    /// Errors: those of [`row_sums`](Self::row_sums).
    pub fn project(
        &self,
        ev: &Evaluator,
        encoder: &Encoder,
        xs: &[Ciphertext],
        a_columns: &[&[Ciphertext]],
        factor: f64,
    ) -> Result<Vec<Ciphertext>> {
        a_columns
            .iter()
            .map(|a| self.row_sums(ev, encoder, xs, a, factor))
            .collect()
    }

    /// `f·X·A·B` (three levels): one ciphertext per ciphertext of `B`'s
    /// rows.
    ///
    /// Errors: mismatched ranks or widths ([`Error::LengthMismatch`]),
    /// operands below the levels needed, of another slot count, or whose
    /// scales differ within a list.
    pub fn apply(
        &self,
        ev: &Evaluator,
        encoder: &Encoder,
        xs: &[Ciphertext],
        adapters: &Adapters<'_>,
        factor: f64,
    ) -> Result<Vec<Ciphertext>> {
        let outputs = check_rank(adapters)?;
        let projected = self.project(ev, encoder, xs, &adapters.a_columns, factor)?;
        (0..outputs)
            .map(|h| {
                let b: Vec<Ciphertext> = adapters
                    .b_rows
                    .iter()
                    .map(|row| row[h].try_clone())
                    .collect::<Result<_>>()?;
                self.summed_products(ev, &projected, &b)
            })
            .collect()
    }

    /// `Σ_i u[i][:] ⊙ v[i][:]`, every row holding it (one level, rotations
    /// by `d·P·2^t`).
    fn column_sums(&self, ev: &Evaluator, u: &Ciphertext, v: &Ciphertext) -> Result<Ciphertext> {
        let product = self.summed_products(ev, std::slice::from_ref(u), std::slice::from_ref(v))?;
        ev.rotate_and_sum_new(&product, self.row_slots() as i64, self.shape.dim())
    }

    /// The gradients of a loss by the adapters of `Y = f·X·A·B`, given
    /// `dY = ∂L/∂Y` (one ciphertext per ciphertext of `B`'s rows), in the
    /// adapters' own layouts (three levels each):
    ///
    /// - `∂L/∂B[c, :] = f·Σ_i (X·A)[i][c]·dY[i][:]`;
    /// - `∂L/∂A[:, c] = f·Xᵀ·(dY·Bᵀ)[:, c]`.
    ///
    /// Needs
    /// [`gradient_rotations`](Self::gradient_rotations).
    ///
    /// Errors: those of [`apply`](Self::apply), a `dY` of another width
    /// than `B`'s rows, missing keys.
    pub fn gradients(
        &self,
        ev: &Evaluator,
        encoder: &Encoder,
        xs: &[Ciphertext],
        adapters: &Adapters<'_>,
        dys: &[Ciphertext],
        factor: f64,
    ) -> Result<AdapterGradients> {
        let outputs = check_rank(adapters)?;
        if dys.len() != outputs {
            return Err(Error::LengthMismatch {
                op: OP,
                got: dys.len(),
                expected: outputs,
            });
        }
        let b_rows = self
            .project(ev, encoder, xs, &adapters.a_columns, factor)?
            .iter()
            .map(|xa| dys.iter().map(|dy| self.column_sums(ev, xa, dy)).collect())
            .collect::<Result<Vec<Vec<_>>>>()?;
        let a_columns = adapters
            .b_rows
            .iter()
            .map(|b| {
                let dyb = self.row_sums(ev, encoder, dys, b, factor)?;
                xs.iter().map(|x| self.column_sums(ev, &dyb, x)).collect()
            })
            .collect::<Result<Vec<Vec<_>>>>()?;
        Ok(AdapterGradients { a_columns, b_rows })
    }
}

/// Checks that `A` and `B` have the same rank (at least 1) and that every
/// column of `A`, every row of `B`, has as many ciphertexts as the others;
/// returns the ciphertexts of a row of `B`.
fn check_rank(adapters: &Adapters<'_>) -> Result<usize> {
    let (a_columns, b_rows) = (&adapters.a_columns, &adapters.b_rows);
    if a_columns.is_empty() || a_columns.len() != b_rows.len() {
        return Err(Error::LengthMismatch {
            op: OP,
            got: b_rows.len(),
            expected: a_columns.len().max(1),
        });
    }
    for list in [a_columns, b_rows] {
        let width = list[0].len();
        if let Some(other) = list.iter().find(|l| l.len() != width || l.is_empty()) {
            return Err(Error::LengthMismatch {
                op: OP,
                got: other.len(),
                expected: width.max(1),
            });
        }
    }
    Ok(b_rows[0].len())
}

/// An internal invariant failed (a bug, reported rather than panicking).
fn internal(what: &str) -> Error {
    Error::OutOfRange {
        op: OP,
        detail: format!("internal: {what}"),
    }
}
