//! The product `X·W` of an encrypted activation `X` (`d` rows, in
//! interleaved blocks) by a plaintext weight matrix `W`, by the diagonal
//! method on the slots: one level, no permutation of `X`.
//!
//! # The diagonals
//!
//! An activation of `c` blocks (`d × c·d`) is `⌈c/P⌉` ciphertexts;
//! ciphertext `g` holds the column blocks `g·P .. g·P + P − 1`, block `b`
//! of it in the slots `(i·d + j)·P + b` ([`MatrixShape`]). Row `i` of every
//! block lies in the `d·P` slots from `i·d·P`, column `j` of block `b` at
//! offset `j·P + b`. So the output entry `(i, j)` of output block `b'`
//! reads, for the diagonal `r ∈ (−d·P, d·P)`, the input entry at offset
//! `j·P + b' + r = m·P + b` of the same row, and
//!
//! ```text
//! Y_h = Σ_g Σ_r rot(X_g, r) ⊙ D_{g,h,r},
//! D_{g,h,r}[(i·d + j)·P + b'] = W[(g·P + b)·d + m][(h·P + b')·d + j]
//! ```
//!
//! (zero where `m·P + b` falls outside `[0, d·P)` or outside `W`): `2dP − 1`
//! diagonals per pair of input and output ciphertexts, all-zero ones
//! skipped (a block-diagonal `W` has `2d − 1`). JKLS's `σ` is not needed:
//! it serves products whose both factors are encrypted
//! ([`MatrixProduct`](super::MatrixProduct)).
//!
//! # Baby-step giant-step
//!
//! `r = g·j + b` with the baby step `g` = `⌊√(2dP)⌋` rounded up to a power
//! of two ([`RotationSplit`]). The baby copies `rot(X_g, b)` are hoisted
//! once per input ciphertext ([`PreparedInput`]) and serve every output
//! ciphertext and every weight matrix; the diagonals are rotated by `−g·j`
//! in the clear. Per output ciphertext and giant step, the products of all
//! inputs are summed before the one giant rotation:
//! `Y_h = Σ_j rot(Σ_g Σ_b rot(X_g, b) ⊙ rot(D_{g,h,g·j+b}, −g·j), g·j)`,
//! then one rescale. Keys: `(g − 1) + (2dP/g − 1)`
//! ([`DenseProduct::rotations`]).
//!
//! # Levels, scales and memory
//!
//! The inputs share one level `l >= 1` and scale `Δ`; the diagonals are
//! encoded at level `l`, scale `q_l`, so the output is at `l − 1` with the
//! scale `Δ` exactly ([`DENSE_DEPTH`] = 1). The diagonals are encoded on the
//! fly, one giant group at a time (in parallel), and each serves every
//! example of a batch: a whole matrix encoded at `N = 2^16` would take
//! gigabytes. A diagonal repeats on every row, so it is encoded with its
//! `d·P` slots (the plaintext's periodic extension fills the ciphertext's):
//! its FFT is `d` times shorter.

use ndarray::Array2;
use rayon::prelude::*;

use super::bsgs::RotationSplit;
use super::MatrixShape;
use crate::ckks::{Ciphertext, Encoder, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;

/// The levels a dense product consumes.
pub const DENSE_DEPTH: usize = 1;

const OP: &str = "tensor::dense";

/// Dense products for one shape.
#[derive(Clone, Copy, Debug)]
pub struct DenseProduct {
    shape: MatrixShape,
    split: RotationSplit,
}

/// One input ciphertext and its hoisted baby rotations, shared by every
/// product with it.
#[derive(Debug)]
pub struct PreparedInput {
    copies: Vec<Ciphertext>,
}

impl PreparedInput {
    /// The level of the input.
    pub fn level(&self) -> usize {
        self.copies[0].level()
    }

    /// The scale of the input.
    pub fn scale(&self) -> f64 {
        self.copies[0].scale()
    }
}

/// The rotations by `r ∈ (−dP, dP)` (see the module docs).
fn diagonal_split(shape: &MatrixShape) -> RotationSplit {
    let width = (shape.dim() * shape.blocks()) as i64;
    let baby = ((2 * width) as usize)
        .isqrt()
        .next_power_of_two()
        .min(width as usize);
    RotationSplit::new(shape.slots(), 1, baby, 1 - width..=width - 1)
}

impl DenseProduct {
    /// Dense products for activations of `shape`.
    pub fn new(shape: MatrixShape) -> Self {
        Self {
            shape,
            split: diagonal_split(&shape),
        }
    }

    /// The shape of the activations.
    pub fn shape(&self) -> MatrixShape {
        self.shape
    }

    /// The rotation steps: the baby steps `0 < b < g` and the giant steps.
    pub fn rotations(shape: &MatrixShape) -> Vec<i64> {
        diagonal_split(shape).rotations()
    }

    /// The ciphertexts of an activation `width` columns wide.
    pub fn ciphertexts_for(&self, width: usize) -> usize {
        width
            .div_ceil(self.shape.dim() * self.shape.blocks())
            .max(1)
    }

    /// `x` and its baby rotations, hoisted from one decomposition.
    ///
    /// Errors: `x` of another slot count, at level 0.
    pub fn prepare(&self, ev: &Evaluator, x: &Ciphertext) -> Result<PreparedInput> {
        self.shape.check_operand(OP, x, DENSE_DEPTH)?;
        Ok(PreparedInput {
            copies: self.split.baby_copies(ev, x.try_clone()?)?,
        })
    }

    /// The diagonal `r` between input ciphertext `g` and output ciphertext
    /// `h` of `w`, rotated by `−shift` in the clear; `None` when all zero.
    /// It repeats on every row, so it is given by its `d·P` slots of one
    /// row (encoded with that many slots, its periodic extension).
    fn diagonal(
        &self,
        w: &Array2<f64>,
        (g, h): (usize, usize),
        r: i64,
        shift: usize,
    ) -> Option<Vec<Complex>> {
        let (d, p) = (self.shape.dim(), self.shape.blocks());
        let width = (d * p) as i64;
        let mut row = vec![0.0; d * p];
        for j in 0..d {
            for b_out in 0..p {
                let offset = (j * p + b_out) as i64 + r;
                if !(0..width).contains(&offset) {
                    continue;
                }
                let (m, b_in) = (offset as usize / p, offset as usize % p);
                let (wi, wj) = ((g * p + b_in) * d + m, (h * p + b_out) * d + j);
                if let Some(&v) = w.get((wi, wj)) {
                    row[j * p + b_out] = v;
                }
            }
        }
        if row.iter().all(|&v| v == 0.0) {
            return None;
        }
        let period = d * p;
        Some(
            (0..period)
                .map(|l| Complex::from(row[(l + shift) % period]))
                .collect(),
        )
    }

    /// Checks the batch: every example has the input ciphertexts `w` needs,
    /// all at one level, each example's at one scale. Returns that level.
    fn check(&self, inputs: &[&[PreparedInput]], w: &Array2<f64>) -> Result<usize> {
        let needed = self.ciphertexts_for(w.nrows());
        let level = inputs
            .first()
            .and_then(|x| x.first())
            .ok_or_else(|| Error::OutOfRange {
                op: OP,
                detail: "no input".into(),
            })?
            .level();
        if let Some(x) = inputs.iter().find(|x| x.len() != needed) {
            return Err(Error::LengthMismatch {
                op: OP,
                got: x.len(),
                expected: needed,
            });
        }
        if w.iter().any(|v| !v.is_finite()) {
            return Err(Error::OutOfRange {
                op: OP,
                detail: "weights must be finite".into(),
            });
        }
        for example in inputs {
            let scale = example[0].scale();
            if let Some(x) = example
                .iter()
                .find(|x| x.level() != level || x.scale() != scale)
            {
                return Err(Error::LevelMismatch {
                    op: OP,
                    detail: format!(
                        "inputs at level {} scale 2^{:.3} and level {level} scale 2^{:.3}",
                        x.level(),
                        x.scale().log2(),
                        scale.log2()
                    ),
                });
            }
        }
        Ok(level)
    }

    /// `factor·x·w` for every example `x` of `inputs` (its prepared
    /// ciphertexts, `⌈rows(w)/(dP)⌉` of them): per example, the
    /// `⌈cols(w)/(dP)⌉` output ciphertexts at level `l − 1`, with the
    /// example's scale. The factor (`1`, or `1/2` for two activations packed
    /// as one, `a + i·b` by [`Evaluator::complex_pack_new`], whose split by
    /// [`Evaluator::complex_split_new`] doubles them) multiplies the
    /// diagonals in the clear: no level. Each diagonal is encoded once for
    /// the whole batch.
    ///
    /// Errors: an empty batch, a wrong number of inputs, inputs at different
    /// levels (or scales within an example), non-finite weights, missing
    /// keys.
    pub fn multiply(
        &self,
        ev: &Evaluator,
        encoder: &Encoder,
        inputs: &[&[PreparedInput]],
        w: &Array2<f64>,
        factor: f64,
    ) -> Result<Vec<Vec<Ciphertext>>> {
        let level = self.check(inputs, w)?;
        if !(factor.is_finite() && factor > 0.0) {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!("factor {factor} must be finite and positive"),
            });
        }
        let scale = ev.context().params().q()[level] as f64;
        let mut outputs: Vec<Vec<Ciphertext>> = inputs.iter().map(|_| Vec::new()).collect();
        for h in 0..self.ciphertexts_for(w.ncols()) {
            let mut sums: Vec<Option<Ciphertext>> = inputs.iter().map(|_| None).collect();
            for j in self.split.giants() {
                let mut inner: Vec<Option<Ciphertext>> = inputs.iter().map(|_| None).collect();
                for g in 0..inputs[0].len() {
                    // The group's diagonals, encoded in parallel.
                    let terms: Vec<(usize, i64)> = self
                        .split
                        .group(j)
                        .map(|(position, b)| (b, *self.split.range().start() + position as i64))
                        .collect();
                    let encoded = terms
                        .par_iter()
                        .map(|&(b, r)| {
                            let shift = self.shape.slots() - self.split.giant_shift(r);
                            self.diagonal(w, (g, h), r, shift)
                                .map(|diagonal| {
                                    let scaled: Vec<Complex> =
                                        diagonal.iter().map(|v| v.scale(factor)).collect();
                                    Ok((b, encoder.encode_complex(&scaled, level, scale)?))
                                })
                                .transpose()
                        })
                        .collect::<Result<Vec<_>>>()?;
                    for (b, pt) in encoded.into_iter().flatten() {
                        for (acc, x) in inner.iter_mut().zip(inputs) {
                            let copy = &x[g].copies[b];
                            match acc {
                                Some(acc) => ev.mul_plain_add_assign(acc, copy, &pt)?,
                                None => {
                                    let mut term = copy.try_clone()?;
                                    ev.mul_plain_assign(&mut term, &pt)?;
                                    *acc = Some(term);
                                }
                            }
                        }
                    }
                }
                for (sum, part) in sums.iter_mut().zip(inner) {
                    let Some(part) = part else { continue };
                    let part = match j {
                        0 => part,
                        _ => ev.rotate_new(&part, self.split.giant_step(j))?,
                    };
                    match sum {
                        Some(sum) => ev.add_assign(sum, &part)?,
                        None => *sum = Some(part),
                    }
                }
            }
            for ((out, sum), x) in outputs.iter_mut().zip(sums).zip(inputs) {
                let mut y = match sum {
                    Some(y) => y,
                    // An all-zero block of W: zero at the output's level.
                    None => {
                        let mut zero = x[0].copies[0].try_clone()?;
                        ev.mul_const_with_scale_assign(&mut zero, Complex::ZERO, scale)?;
                        zero
                    }
                };
                ev.rescale_assign(&mut y)?;
                out.push(y);
            }
        }
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Parameters;

    /// The diagonals, applied in the clear (rotation then product, summed),
    /// give `X·W` for interleaved blocks, including partial last groups.
    #[test]
    fn diagonals_compute_the_product_in_the_clear() {
        let params = Parameters::preset("TEST_INSECURE_N11").unwrap();
        for (d, p, rows, cols) in [(4, 4, 20, 12), (2, 8, 16, 40), (8, 1, 8, 16), (4, 2, 5, 3)] {
            let shape = MatrixShape::with_blocks(d, p, &params).unwrap();
            let product = DenseProduct::new(shape);
            let x = Array2::from_shape_fn((d, rows), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
            let w = Array2::from_shape_fn((rows, cols), |(i, j)| ((i * 5 + j) % 7) as f64 - 3.0);
            let want = x.dot(&w);
            let (inputs, outputs) = (product.ciphertexts_for(rows), product.ciphertexts_for(cols));
            let group = |m: &Array2<f64>, g: usize| {
                let blocks: Vec<Array2<f64>> = (0..p)
                    .map(|b| {
                        Array2::from_shape_fn((d, d), |(i, j)| {
                            *m.get((i, (g * p + b) * d + j)).unwrap_or(&0.0)
                        })
                    })
                    .collect();
                shape.pack_blocks(&blocks).unwrap()
            };
            let n = shape.slots();
            for h in 0..outputs {
                let mut y = vec![0.0; n];
                for g in 0..inputs {
                    let xg = group(&x, g);
                    for r in product.split.range() {
                        if let Some(diag) = product.diagonal(&w, (g, h), r, 0) {
                            for (l, y) in y.iter_mut().enumerate() {
                                *y += xg[(l as i64 + r).rem_euclid(n as i64) as usize].re
                                    * diag[l % diag.len()].re;
                            }
                        }
                    }
                }
                let y: Vec<Complex> = y.into_iter().map(Complex::from).collect();
                let got = shape.unpack_blocks(&y).unwrap();
                for (b, block) in got.iter().enumerate() {
                    for ((i, j), &v) in block.indexed_iter() {
                        let column = (h * p + b) * d + j;
                        let expected = if column < cols {
                            want[[i, column]]
                        } else {
                            0.0
                        };
                        assert_eq!(v, expected, "d {d} P {p} output {h} block {b} ({i}, {j})");
                    }
                }
            }
        }
    }

    /// A block-diagonal matrix has only the diagonals that stay in their
    /// block: `2d − 1` of them.
    #[test]
    fn block_diagonal_weights_skip_the_other_diagonals() {
        let params = Parameters::preset("TEST_INSECURE_N11").unwrap();
        let shape = MatrixShape::with_blocks(4, 4, &params).unwrap();
        let product = DenseProduct::new(shape);
        let w = Array2::from_shape_fn((16, 16), |(i, j)| f64::from(u8::from(i / 4 == j / 4)));
        let nonzero = product
            .split
            .range()
            .filter(|&r| product.diagonal(&w, (0, 0), r, 0).is_some())
            .count();
        assert_eq!(nonzero, 7);
        assert!(DenseProduct::rotations(&shape).len() <= 2 * 32usize.isqrt() + 2);
    }
}
