//! The exact BERT forward pass in `f64`: the plaintext reference that the
//! encrypted model is measured against.
//!
//! For a sequence of token ids with an attention mask (token types all 0):
//!
//! 1. embeddings: `LayerNorm(word[id_i] + position[i] + token_type[0])`;
//! 2. each of the first `layers` encoder layers (post-LN, as in BERT):
//!    `A = LayerNorm(X + Attention(X)·W_oᵀ + b_o)`, then
//!    `X' = LayerNorm(A + GELU(A·W_1ᵀ + b_1)·W_2ᵀ + b_2)`, where attention
//!    has `num_attention_heads` heads of width `d`, scores `q·k/√d`, and a
//!    softmax over the unmasked keys only (masked keys get weight exactly 0,
//!    as Hugging Face's additive mask of the most negative float gives);
//! 3. sentence embedding (sentence-transformers' pooling for
//!    all-MiniLM-L6-v2): the mean of the hidden states over the unmasked
//!    positions, optionally divided by its L2 norm.
//!
//! LayerNorm is `γ·(x − μ)/√(σ² + ε) + β` with the biased variance and ε
//! from the config; GELU is the erf form ([`super::activation`]). Padded
//! positions are computed like any other (they attend to the real tokens)
//! but never influence a real position or the pooled embedding. Every input
//! is checked; a bad one is an error, never a panic.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};

use super::activation::gelu;
use super::weights::{BertWeights, LayerNormWeights, LayerWeights, LinearWeights};
use crate::data::tokenizer::TokenBatch;
use crate::error::{Error, Result};

/// The reference forward pass over a model's weights.
pub struct ReferenceBert {
    weights: BertWeights,
}

impl ReferenceBert {
    /// The forward pass of these weights.
    pub fn new(weights: BertWeights) -> Self {
        Self { weights }
    }

    /// The weights (with their config).
    pub fn weights(&self) -> &BertWeights {
        &self.weights
    }

    /// The hidden states (`seq_len × hidden`) after the embeddings and the
    /// first `layers` encoder layers (0: the embeddings alone).
    pub fn hidden_states(&self, ids: &[u32], mask: &[bool], layers: usize) -> Result<Array2<f64>> {
        self.check_sequence(ids, mask, layers)?;
        let mut hidden = self.embed(ids);
        for layer in &self.weights.layers[..layers] {
            hidden = self.encoder_layer(layer, hidden.view(), mask);
        }
        Ok(hidden)
    }

    /// The mean of the hidden states after `layers` layers over the masked
    /// positions, divided by its L2 norm when `normalize` is set.
    pub fn sentence_embedding(
        &self,
        ids: &[u32],
        mask: &[bool],
        layers: usize,
        normalize: bool,
    ) -> Result<Array1<f64>> {
        let pooled = mean_pool(self.hidden_states(ids, mask, layers)?.view(), mask);
        Ok(if normalize {
            l2_normalize(pooled)
        } else {
            pooled
        })
    }

    /// [`sentence_embedding`](Self::sentence_embedding) of every row of a
    /// batch: `texts × hidden`.
    pub fn sentence_embeddings(
        &self,
        batch: &TokenBatch,
        layers: usize,
        normalize: bool,
    ) -> Result<Array2<f64>> {
        let hidden = self.weights.config.hidden_size;
        let mut embeddings = Array2::zeros((batch.ids.nrows(), hidden));
        for (row, (ids, mask)) in batch
            .ids
            .rows()
            .into_iter()
            .zip(batch.attention_mask.rows())
            .enumerate()
        {
            let embedding =
                self.sentence_embedding(&ids.to_vec(), &mask.to_vec(), layers, normalize)?;
            embeddings.row_mut(row).assign(&embedding);
        }
        Ok(embeddings)
    }

    fn check_sequence(&self, ids: &[u32], mask: &[bool], layers: usize) -> Result<()> {
        const OP: &str = "ReferenceBert::hidden_states";
        let config = &self.weights.config;
        if mask.len() != ids.len() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: mask.len(),
                expected: ids.len(),
            });
        }
        let out_of_range = |detail: String| Err(Error::OutOfRange { op: OP, detail });
        if ids.len() > config.max_position_embeddings {
            return out_of_range(format!(
                "sequence of {} tokens, the model has {} positions",
                ids.len(),
                config.max_position_embeddings
            ));
        }
        if !mask.contains(&true) {
            return out_of_range("the attention mask hides every token".into());
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= config.vocab_size) {
            return out_of_range(format!(
                "token id {id} is outside the vocabulary of {}",
                config.vocab_size
            ));
        }
        if layers > self.weights.layers.len() {
            return out_of_range(format!(
                "{layers} layers asked, the model has {}",
                self.weights.layers.len()
            ));
        }
        Ok(())
    }

    fn embed(&self, ids: &[u32]) -> Array2<f64> {
        let embeddings = &self.weights.embeddings;
        let mut sum = Array2::zeros((ids.len(), self.weights.config.hidden_size));
        for (position, (&id, mut row)) in ids.iter().zip(sum.rows_mut()).enumerate() {
            row.assign(&embeddings.word.row(id as usize));
            row += &embeddings.position.row(position);
            row += &embeddings.token_type.row(0);
        }
        self.layer_norm(&embeddings.layer_norm, sum)
    }

    fn encoder_layer(
        &self,
        layer: &LayerWeights,
        input: ArrayView2<f64>,
        mask: &[bool],
    ) -> Array2<f64> {
        let context = self.self_attention(layer, input, mask);
        let attended = self.layer_norm(
            &layer.attention_layer_norm,
            linear(&layer.attention_output, context.view()) + input,
        );
        let expanded = linear(&layer.intermediate, attended.view()).mapv_into(gelu);
        let output = linear(&layer.output, expanded.view()) + &attended;
        self.layer_norm(&layer.output_layer_norm, output)
    }

    /// The heads' outputs, concatenated (`seq_len × hidden`).
    fn self_attention(
        &self,
        layer: &LayerWeights,
        input: ArrayView2<f64>,
        mask: &[bool],
    ) -> Array2<f64> {
        let config = &self.weights.config;
        let head_size = config.head_size();
        let scale = 1.0 / (head_size as f64).sqrt();
        let queries = linear(&layer.query, input);
        let keys = linear(&layer.key, input);
        let values = linear(&layer.value, input);
        let mut context = Array2::zeros(queries.raw_dim());
        for head in 0..config.num_attention_heads {
            let columns = s![.., head * head_size..(head + 1) * head_size];
            let scores = queries.slice(columns).dot(&keys.slice(columns).t()) * scale;
            let weights = masked_softmax_rows(scores, mask);
            context
                .slice_mut(columns)
                .assign(&weights.dot(&values.slice(columns)));
        }
        context
    }

    fn layer_norm(&self, norm: &LayerNormWeights, mut rows: Array2<f64>) -> Array2<f64> {
        let eps = self.weights.config.layer_norm_eps;
        for mut row in rows.rows_mut() {
            let mean = row.mean().unwrap_or(0.0);
            let variance = row.mapv(|v| (v - mean) * (v - mean)).mean().unwrap_or(0.0);
            let inverse_deviation = 1.0 / (variance + eps).sqrt();
            row.mapv_inplace(|v| (v - mean) * inverse_deviation);
            row *= &norm.gamma;
            row += &norm.beta;
        }
        rows
    }
}

/// `x · Wᵀ + b` for every row of `x`.
fn linear(layer: &LinearWeights, input: ArrayView2<f64>) -> Array2<f64> {
    input.dot(&layer.weight.t()) + &layer.bias
}

/// Softmax of each row over the columns whose mask is set; the others get
/// exactly 0. At least one mask entry is set.
pub(crate) fn masked_softmax_rows(mut scores: Array2<f64>, mask: &[bool]) -> Array2<f64> {
    for mut row in scores.rows_mut() {
        let max = row
            .iter()
            .zip(mask)
            .filter(|(_, &keep)| keep)
            .map(|(&score, _)| score)
            .fold(f64::NEG_INFINITY, f64::max);
        let mut total = 0.0;
        for (score, &keep) in row.iter_mut().zip(mask) {
            *score = if keep { (*score - max).exp() } else { 0.0 };
            total += *score;
        }
        row /= total;
    }
    scores
}

/// The mean of the rows of `hidden` whose mask is set (NaN if none is).
pub fn mean_pool(hidden: ArrayView2<f64>, mask: &[bool]) -> Array1<f64> {
    let mut sum = Array1::zeros(hidden.ncols());
    let mut count = 0.0;
    for (row, _) in hidden
        .axis_iter(Axis(0))
        .zip(mask)
        .filter(|(_, &keep)| keep)
    {
        sum += &row;
        count += 1.0;
    }
    sum / count
}

/// `v / max(‖v‖₂, 1e-12)` (sentence-transformers' `Normalize`).
pub fn l2_normalize(v: Array1<f64>) -> Array1<f64> {
    let norm = l2_norm(v.view());
    v / norm.max(1e-12)
}

/// The Euclidean norm.
pub fn l2_norm(v: ArrayView1<f64>) -> f64 {
    v.dot(&v).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::tests::tiny_config;
    use crate::model::weights::tests::random_weights;

    fn tiny_model() -> ReferenceBert {
        ReferenceBert::new(random_weights(&tiny_config(), 11))
    }

    fn max_abs_difference(a: ArrayView2<f64>, b: ArrayView2<f64>) -> f64 {
        (&a - &b).iter().fold(0.0, |max, d| d.abs().max(max))
    }

    #[test]
    fn padding_changes_nothing_at_the_real_positions() {
        let model = tiny_model();
        let ids = [2, 5, 7, 3];
        let unpadded = model.hidden_states(&ids, &[true; 4], 2).unwrap();
        // Different pad ids must not matter either: the keys are masked.
        for pad in [0, 9] {
            let padded_ids = [2, 5, 7, 3, pad, pad, pad];
            let mask = [true, true, true, true, false, false, false];
            let padded = model.hidden_states(&padded_ids, &mask, 2).unwrap();
            let difference = max_abs_difference(unpadded.view(), padded.slice(s![..4, ..]));
            assert!(difference < 1e-13, "pad {pad}: {difference}");
            let pooled = model
                .sentence_embedding(&padded_ids, &mask, 2, false)
                .unwrap();
            let expected = unpadded.mean_axis(Axis(0)).unwrap();
            assert!((&pooled - &expected).iter().all(|d| d.abs() < 1e-13));
        }
    }

    #[test]
    fn layer_outputs_are_normalized_rows() {
        // Every stage ends in LayerNorm; with γ, β undone each row has mean
        // 0 and variance 1 − ε-ish.
        let model = tiny_model();
        let ids = [1, 4, 6, 8, 10];
        for layers in 0..=2 {
            let hidden = model.hidden_states(&ids, &[true; 5], layers).unwrap();
            let norm = match layers {
                0 => &model.weights().embeddings.layer_norm,
                k => &model.weights().layers[k - 1].output_layer_norm,
            };
            for row in hidden.rows() {
                let standardized = (&row - &norm.beta) / &norm.gamma;
                assert!(standardized.mean().unwrap().abs() < 1e-12);
                let variance = standardized.mapv(|v| v * v).mean().unwrap();
                assert!((variance - 1.0).abs() < 1e-9, "{variance}");
            }
        }
    }

    #[test]
    fn attention_mixes_positions_and_layers_matter() {
        let model = tiny_model();
        let base = model.hidden_states(&[2, 5, 7, 3], &[true; 4], 1).unwrap();
        let changed = model.hidden_states(&[2, 5, 8, 3], &[true; 4], 1).unwrap();
        // Changing token 2 changes position 0 through attention.
        assert!(max_abs_difference(base.slice(s![..1, ..]), changed.slice(s![..1, ..])) > 1e-3);
        let deeper = model.hidden_states(&[2, 5, 7, 3], &[true; 4], 2).unwrap();
        assert!(max_abs_difference(base.view(), deeper.view()) > 1e-3);
    }

    #[test]
    fn normalized_embeddings_and_batches() {
        let model = tiny_model();
        let batch = TokenBatch {
            ids: ndarray::arr2(&[[2, 5, 3, 0], [2, 6, 7, 3]]),
            attention_mask: ndarray::arr2(&[[true, true, true, false], [true; 4]]),
        };
        let embeddings = model.sentence_embeddings(&batch, 2, true).unwrap();
        for (row, embedding) in embeddings.rows().into_iter().enumerate() {
            assert!((l2_norm(embedding) - 1.0).abs() < 1e-14);
            let single = model
                .sentence_embedding(
                    &batch.ids.row(row).to_vec(),
                    &batch.attention_mask.row(row).to_vec(),
                    2,
                    true,
                )
                .unwrap();
            assert_eq!(embedding, single);
        }
        assert_eq!(l2_normalize(Array1::zeros(3)), Array1::<f64>::zeros(3));
    }

    #[test]
    fn refuses_bad_sequences() {
        let model = tiny_model();
        let cases: [(&[u32], &[bool], usize); 5] = [
            (&[1, 2], &[true], 1),
            (&[1; 11], &[true; 11], 1),
            (&[1, 2], &[false, false], 1),
            (&[1, 11], &[true, true], 1),
            (&[1, 2], &[true, true], 3),
        ];
        for (ids, mask, layers) in cases {
            let result = model.hidden_states(ids, mask, layers);
            assert!(
                matches!(
                    result,
                    Err(Error::LengthMismatch {
                        op: "ReferenceBert::hidden_states",
                        ..
                    }) | Err(Error::OutOfRange {
                        op: "ReferenceBert::hidden_states",
                        ..
                    })
                ),
                "{ids:?} {mask:?} {layers}: {result:?}"
            );
        }
    }
}
