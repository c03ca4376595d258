//! Softmax attention under encryption: the paper's baseline
//! ([`AttentionKernel::Softmax`]), in the style of HETAL, on the heads'
//! blocks (head `h` in block `h`, every head at once), matching the twin's
//! polynomial variant ([`NonLinear::softmax_row`]) step for step.
//!
//! With `Q' = Q/√d_head` (the projection's factor), per block:
//!
//! 1. the scores `E = Q'·Kᵀ` (transpose and CCMM), then the masked keys'
//!    scores set to `−B`: `Ê = (E + B) ⊙ Mᵀ − B`, `Mᵀ` the transposed
//!    mask matrix (column `j` holds `m_j`), `B` the configured
//!    [`softmax_bound`](crate::model::friendly::ApproximationRanges::softmax_bound);
//! 2. the row maximum by a tree: `m ← m + relu(rot(m, 2^t·P) − m)` for
//!    `t = 0 .. log₂ d − 1` (the differences in `[−2B, 2B]`, the composite
//!    ReLU on `[−1, 1]` after a relabelling by the ReLU bound); slot
//!    `(i, 0)` then holds row `i`'s maximum, the other slots mix rows;
//! 3. that slot kept (a plaintext mask of column 0) and replicated along
//!    its row (rotate-and-sum by `−P`);
//! 4. `exp(Ê − max)` (the model's exp, the arguments in `[−2B, 0]`), the
//!    masked keys zeroed (`⊙ Mᵀ`), the row sums `s` (dense product with
//!    `J` per head), `1/s` by Newton on the configured range, the
//!    weights `A = exp(..) ⊙ Mᵀ ⊙ 1/s`.
//!
//! The backward from `∂A`: `∂E = A ⊙ (∂A − rowsum(∂A ⊙ A))` (the maximum
//! is a shift of the row: no gradient), then `∂Q' = ∂E·K`, `∂K = ∂Eᵀ·Q'`.
//!
//! [`AttentionKernel::Softmax`]: crate::model::friendly::AttentionKernel::Softmax
//! [`NonLinear::softmax_row`]: crate::model::friendly::nonlinear::NonLinear::softmax_row

use ndarray::Array2;

use super::forward::{copies, flatten, head_masks, internal, unflatten, Run};
use crate::approx::Approximation;
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::Result;
use crate::tensor::MatrixShape;

/// The rotation steps softmax attention needs: the maximum's tree
/// (`P·2^t`) and the replication (`−P·2^t`), `t < log₂ d`.
pub fn softmax_rotations(shape: &MatrixShape) -> Vec<i64> {
    let (blocks, dim) = (shape.blocks() as i64, shape.dim());
    Evaluator::rotations_for_sum(blocks, dim)
        .into_iter()
        .chain(Evaluator::rotations_for_sum(-blocks, dim))
        .collect()
}

impl Run<'_> {
    /// The softmax weights `A` of every head's block, from the scaled
    /// queries `Q'` (values up to `q_bound`), the keys (up to `k_bound`),
    /// each example's mask and the number of heads' ciphertexts per
    /// example (`sizes`); flat, like `qs`.
    pub(super) fn softmax_weights(
        &mut self,
        (qs, q_bound): (&mut [Ciphertext], f64),
        (ks, k_bound): (&mut [Ciphertext], f64),
        masks: &[Ciphertext],
        sizes: &[usize],
    ) -> Result<Vec<Ciphertext>> {
        let model = self.model;
        let ranges = &model.config().ranges;
        let bound = ranges.softmax_bound;
        let [exp, relu, _, _] = model.polynomials().approximations();
        let mut keys_t = self.transpose(ks, k_bound)?;
        let scores = self.matmul(qs, q_bound, &mut keys_t, k_bound)?;
        drop(keys_t);
        let mut columns = self.column_masks(masks, sizes)?;
        // Ê = (E + B) ⊙ Mᵀ − B.
        let mut shifted = scores;
        for ct in shifted.iter_mut() {
            self.ev.add_const_assign(ct, bound.into())?;
        }
        let mut masked = self.multiply(&mut shifted, 2.0 * bound, &mut columns, 1.0)?;
        drop(shifted);
        for ct in masked.iter_mut() {
            self.ev.sub_const_assign(ct, bound.into())?;
        }
        let maxima = self.row_maxima(&masked, relu, bound)?;
        let mut negated = maxima;
        for ct in negated.iter_mut() {
            self.ev.neg_assign(ct)?;
        }
        let arguments = self.add(masked, bound, negated, bound)?;
        let mut terms = self.function(&arguments, exp, 2.0 * bound)?;
        drop(arguments);
        let mut kept = self.multiply(&mut terms, 1.0, &mut columns, 1.0)?;
        drop((terms, columns));
        let row_sums = model.blocks().softmax_row_sums()?;
        let mut sums_input = unflatten(copies(&kept)?, sizes);
        let (sums, _) = flatten(self.dense_layer(&mut sums_input, 1.0, row_sums)?);
        let (low, high) = ranges.softmax_row_sum;
        let mut inverses = self.function(&sums, model.polynomials().reciprocal(), high)?;
        self.multiply(&mut kept, 1.0, &mut inverses, 1.0 / low)
    }

    /// Every heads' ciphertext's `Mᵀ` (column `j` holds `m_j`): each
    /// example's mask transposed once, repeated `sizes[i]` times.
    fn column_masks(&mut self, masks: &[Ciphertext], sizes: &[usize]) -> Result<Vec<Ciphertext>> {
        let transposed = self.transpose(&mut copies(masks)?, 1.0)?;
        head_masks(&transposed, sizes)
    }

    /// Row `i`'s maximum of every block of `scores` (values in `[−B, B]`)
    /// on every slot of row `i`: the tree of `a + relu(b − a)`, column 0
    /// kept and replicated.
    fn row_maxima(
        &mut self,
        scores: &[Ciphertext],
        relu: &Approximation,
        bound: f64,
    ) -> Result<Vec<Ciphertext>> {
        let model = self.model;
        let shape = model.layout().shape();
        let (blocks, dim) = (shape.blocks() as i64, shape.dim());
        let relu_bound = model.config().ranges.relu_bound;
        let mut maxima = copies(scores)?;
        for step in Evaluator::rotations_for_sum(blocks, dim) {
            let differences = maxima
                .iter()
                .map(|m| {
                    let mut difference = self.ev.rotate_new(m, step)?;
                    self.ev.sub_assign(&mut difference, m)?;
                    // relu(x) = B_r·relu(x/B_r): a relabelling.
                    difference.scale *= relu_bound;
                    Ok(difference)
                })
                .collect::<Result<Vec<_>>>()?;
            let mut gains = self.function(&differences, relu, 1.0)?;
            for gain in gains.iter_mut() {
                gain.scale /= relu_bound;
            }
            maxima = self.add(maxima, bound, gains, 2.0 * bound)?;
        }
        let first_column = [shape.pack(&Array2::from_shape_fn((dim, dim), |(_, j)| {
            f64::from(u8::from(j == 0))
        }))?];
        let kept = self.multiply_plain(&mut maxima, bound, &first_column)?;
        kept.iter()
            .map(|ct| self.ev.rotate_and_sum_new(ct, -blocks, dim))
            .collect()
    }

    /// `∂E = A ⊙ (∂A − rowsum(∂A ⊙ A))` from the weights' gradient `∂A`
    /// (values up to `bound`) and the weights `A` (flat, `sizes` per
    /// example).
    pub(super) fn softmax_exponent_gradients(
        &mut self,
        d_weights: &mut [Ciphertext],
        weights: &mut [Ciphertext],
        bound: f64,
        sizes: &[usize],
    ) -> Result<Vec<Ciphertext>> {
        let row_sums = self.model.blocks().softmax_row_sums()?;
        let products = self.multiply(d_weights, bound, weights, 1.0)?;
        let mut products = unflatten(products, sizes);
        let (mut sums, _) = flatten(self.dense_layer(&mut products, bound, row_sums)?);
        for ct in sums.iter_mut() {
            self.ev.neg_assign(ct)?;
        }
        let mut centred = self.add(copies(d_weights)?, bound, sums, bound)?;
        self.multiply(&mut centred, 2.0 * bound, weights, 1.0)
    }
}

/// An error for a model whose blocks lack softmax's row sums.
pub(super) fn not_softmax() -> crate::error::Error {
    internal("softmax attention on a model built for the Gaussian kernel")
}
