//! The forward pass of the friendly transformer in `f64`, with either the
//! exact non-linearities or the circuit's polynomials ([`Variant`]).
//!
//! Input: the client's token embeddings `X` (`n × hidden`, `1 ≤ n ≤
//! seq_len`) and a padding mask of length `n`. Each layer (pre-LN):
//!
//! 1. `H = LN₁(X)`; `Q = H·W_q + b_q (+ (H·A_q)·B_q)`, likewise `K`, `V`;
//! 2. per head `h` of width `d`: `S_ij = m_j · exp(−‖q_i − k_j‖²/(2√d))`
//!    with the exponent formed as the circuit forms it,
//!    `−(‖q_i‖² + ‖k_j‖² − 2 q_i·k_j)/(2√d)`, and `m_j ∈ {0, 1}` the mask
//!    (the circuit multiplies by it, so masked keys' exponents are evaluated
//!    and range-checked too); no row normalisation (the paper's choice);
//!    the head's output is `S·V_h`; with [`AttentionKernel::Softmax`] (the
//!    paper's baseline) `S` is instead the row's softmax of `q_i·k_j/√d`
//!    over the unmasked keys ([`NonLinear::softmax_row`]);
//! 3. `X ← X + C·W_o + b_o (+ LoRA)` with `C` the heads concatenated
//!    (recorded as [`LayerTrace::attention`]);
//! 4. `G = LN₂(X)`; `X ← X + (ReLU(G·W_g + b_g) ⊙ (G·W_u + b_u))·W_d + b_d`
//!    (recorded as [`LayerTrace::ffn`]).
//!
//! LayerNorm is `γ·(x − μ)·(σ² + eps)^(−1/2) + β` with the biased variance,
//! the inverse square root being the variant's. Then, when configured, a
//! final LayerNorm, and the head on the first row:
//! `tanh((x₀·W₁ + b₁)·W₂ + b₂)·W₃ + b₃`, the logits.
//!
//! Padded rows are computed like any other; they never influence an
//! unmasked row.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};

use super::config::{AttentionKernel, FriendlyConfig};
use super::nonlinear::{FittedNonLinearities, NonLinear, RangeViolations, Variant};
use super::weights::{Dense, FriendlyWeights, Projection};
use crate::error::{Error, Result};
use crate::model::weights::LayerNormWeights;

/// An intermediate value shown to the probe of
/// [`FriendlyModel::forward_probed`] (what the encrypted model bootstraps
/// needs a bound for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Probe {
    /// The residual stream (input, then after each block).
    Stream,
    /// A LayerNorm's rows centred and divided by their deviation, before
    /// `γ` and `β`.
    Normalized,
    /// Q, K and V (every head).
    Projection,
    /// The attention exponents `−‖q − k‖²/(2√d)` of one head (softmax:
    /// the scores `q·k/√d`).
    Exponent,
    /// The heads' outputs `S·V_h`, concatenated.
    Context,
    /// The feed-forward's gate (ReLU's input).
    Gate,
    /// The feed-forward's up projection and the GLU product.
    Glu,
    /// The head's values before tanh: the bottleneck and the widening.
    Head,
}

/// One layer's intermediate states (`n × hidden`).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerTrace {
    /// The residual stream after the attention block.
    pub attention: Array2<f64>,
    /// The residual stream after the feed-forward block: the layer's output.
    pub ffn: Array2<f64>,
}

/// Every intermediate state of one forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct FriendlyTrace {
    /// Per layer, in order.
    pub layers: Vec<LayerTrace>,
    /// The head's input: the first row after the final LayerNorm (if any).
    pub head_input: Array1<f64>,
    /// The head's tanh output (`head_width`).
    pub head_hidden: Array1<f64>,
    /// The logits (`classes`).
    pub logits: Array1<f64>,
    /// Inputs that left their polynomial's range.
    pub violations: RangeViolations,
}

impl FriendlyTrace {
    /// Stage by stage (per layer: after attention, after the feed-forward;
    /// then the head's input, its tanh output and the logits), the bits of
    /// this trace that agree with `reference`: `−log2(max|a − b| / max|b|)`,
    /// relative to the reference's largest magnitude at that stage.
    pub fn agreement_bits(&self, reference: &FriendlyTrace) -> Vec<(String, f64)> {
        let mut stages = Vec::new();
        for (index, (a, b)) in self.layers.iter().zip(&reference.layers).enumerate() {
            stages.push((
                format!("layer {index} attention"),
                agreement(&a.attention, &b.attention),
            ));
            stages.push((format!("layer {index} ffn"), agreement(&a.ffn, &b.ffn)));
        }
        stages.push((
            "head input".into(),
            agreement(&self.head_input, &reference.head_input),
        ));
        stages.push((
            "head tanh".into(),
            agreement(&self.head_hidden, &reference.head_hidden),
        ));
        stages.push(("logits".into(), agreement(&self.logits, &reference.logits)));
        stages
    }
}

/// `−log2(max|a − b| / max|b|)` over paired entries: the bits of `a` that
/// agree with the reference `b`, relative to its largest magnitude.
pub fn agreement<'a>(
    a: impl IntoIterator<Item = &'a f64>,
    b: impl IntoIterator<Item = &'a f64> + Clone,
) -> f64 {
    let scale = b.clone().into_iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let error = a
        .into_iter()
        .zip(b)
        .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()));
    -(error / scale).log2()
}

/// A checked config, its weights and its fitted polynomials.
#[derive(Clone, Debug)]
pub struct FriendlyModel {
    config: FriendlyConfig,
    weights: FriendlyWeights,
    polynomials: FittedNonLinearities,
}

impl FriendlyModel {
    /// Checks `config` and `weights` against each other and fits the
    /// polynomials once.
    ///
    /// Errors: those of [`FriendlyConfig::check`],
    /// [`FriendlyWeights::check`] and [`FittedNonLinearities::fit`].
    pub fn new(config: FriendlyConfig, weights: FriendlyWeights) -> Result<Self> {
        config.check()?;
        weights.check(&config)?;
        let polynomials = FittedNonLinearities::fit(&config.ranges)?;
        Ok(Self {
            config,
            weights,
            polynomials,
        })
    }

    /// The config.
    pub fn config(&self) -> &FriendlyConfig {
        &self.config
    }

    /// The weights.
    pub fn weights(&self) -> &FriendlyWeights {
        &self.weights
    }

    /// The fitted polynomials.
    pub fn polynomials(&self) -> &FittedNonLinearities {
        &self.polynomials
    }

    /// The largest fitted error, each relative to its function's output
    /// scale (exp ≤ 1, ReLU on `[−B, B]`, `1/√v` relative, tanh ≤ 1): what
    /// one polynomial step may cost a stage, before amplification.
    pub fn worst_relative_fit_error(&self) -> f64 {
        let errors = self.polynomials.errors();
        [
            errors.exp,
            errors.relu / self.config.ranges.relu_bound,
            errors.inv_sqrt,
            errors.tanh,
        ]
        .into_iter()
        .fold(0.0, f64::max)
    }

    /// The forward pass of `embeddings` (`n × hidden`) under `mask`.
    ///
    /// Errors: [`Error::OutOfRange`] for `n = 0` or `n > seq_len`,
    /// [`Error::LengthMismatch`] for a wrong width or mask length, a
    /// non-finite embedding.
    pub fn forward(
        &self,
        embeddings: ArrayView2<f64>,
        mask: &[bool],
        variant: Variant,
    ) -> Result<FriendlyTrace> {
        self.forward_probed(embeddings, mask, variant, &mut |_, _| {})
    }

    /// [`forward`](Self::forward), showing `probe` the intermediate values
    /// of [`Probe`] as they are computed.
    pub fn forward_probed(
        &self,
        embeddings: ArrayView2<f64>,
        mask: &[bool],
        variant: Variant,
        probe: &mut dyn FnMut(Probe, ArrayView2<f64>),
    ) -> Result<FriendlyTrace> {
        self.check_input(embeddings, mask)?;
        let mut functions = self.polynomials.evaluator(variant);
        let mut stream = embeddings.to_owned();
        probe(Probe::Stream, stream.view());
        let mut layers = Vec::with_capacity(self.config.layers);
        let eps = self.config.layer_norm_eps;
        for layer in &self.weights.layers {
            let normed = layer_norm(
                &layer.attention_norm,
                stream.view(),
                eps,
                &mut functions,
                probe,
            );
            let queries = project(&layer.query, normed.view());
            let keys = project(&layer.key, normed.view());
            let values = project(&layer.value, normed.view());
            for projection in [&queries, &keys, &values] {
                probe(Probe::Projection, projection.view());
            }
            let context = self.attention(
                queries.view(),
                keys.view(),
                values.view(),
                mask,
                &mut functions,
                probe,
            );
            probe(Probe::Context, context.view());
            stream += &project(&layer.output, context.view());
            probe(Probe::Stream, stream.view());
            let attention = stream.clone();
            let normed = layer_norm(&layer.ffn_norm, stream.view(), eps, &mut functions, probe);
            let mut gate = dense(&layer.gate, normed.view());
            probe(Probe::Gate, gate.view());
            gate.mapv_inplace(|x| functions.relu(x));
            let up = dense(&layer.up, normed.view());
            probe(Probe::Glu, up.view());
            let glu = gate * up;
            probe(Probe::Glu, glu.view());
            stream += &dense(&layer.down, glu.view());
            probe(Probe::Stream, stream.view());
            layers.push(LayerTrace {
                attention,
                ffn: stream.clone(),
            });
        }
        let first = stream.slice(s![..1, ..]);
        let head_input = match &self.weights.final_norm {
            Some(norm) => layer_norm(norm, first, eps, &mut functions, probe),
            None => first.to_owned(),
        }
        .index_axis_move(Axis(0), 0);
        let head = &self.weights.head;
        let bottleneck = dense_vector(&head.bottleneck, head_input.view());
        let wide = dense_vector(&head.widen, bottleneck.view());
        for values in [&bottleneck, &wide] {
            probe(Probe::Head, values.view().insert_axis(Axis(0)));
        }
        let head_hidden = wide.mapv_into(|x| functions.tanh(x));
        let logits = dense_vector(&head.classifier, head_hidden.view());
        Ok(FriendlyTrace {
            layers,
            head_input,
            head_hidden,
            logits,
            violations: functions.violations(),
        })
    }

    fn check_input(&self, embeddings: ArrayView2<f64>, mask: &[bool]) -> Result<()> {
        const OP: &str = "FriendlyModel::forward";
        let (rows, width) = embeddings.dim();
        if rows == 0 || rows > self.config.seq_len {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!(
                    "sequence of {rows} tokens, the model takes 1 to {}",
                    self.config.seq_len
                ),
            });
        }
        if width != self.config.hidden {
            return Err(Error::LengthMismatch {
                op: OP,
                got: width,
                expected: self.config.hidden,
            });
        }
        if mask.len() != rows {
            return Err(Error::LengthMismatch {
                op: OP,
                got: mask.len(),
                expected: rows,
            });
        }
        if embeddings.iter().any(|v| !v.is_finite()) {
            return Err(Error::OutOfRange {
                op: OP,
                detail: "an embedding is not finite".into(),
            });
        }
        Ok(())
    }

    /// The heads' outputs `S·V_h`, concatenated (`n × hidden`).
    fn attention(
        &self,
        queries: ArrayView2<f64>,
        keys: ArrayView2<f64>,
        values: ArrayView2<f64>,
        mask: &[bool],
        functions: &mut NonLinear<'_>,
        probe: &mut dyn FnMut(Probe, ArrayView2<f64>),
    ) -> Array2<f64> {
        let head_size = self.config.head_size();
        let scale = 1.0 / (2.0 * (head_size as f64).sqrt());
        let mut context = Array2::zeros(queries.raw_dim());
        for head in 0..self.config.heads {
            let columns = s![.., head * head_size..(head + 1) * head_size];
            let (q, k) = (queries.slice(columns), keys.slice(columns));
            if self.config.attention == AttentionKernel::Softmax {
                let mut scores = q.dot(&k.t()) * (2.0 * scale);
                probe(Probe::Exponent, scores.view());
                for mut row in scores.rows_mut() {
                    let scores: Vec<f64> = row.to_vec();
                    let weights = functions.softmax_row(&scores, mask, self.config.seq_len);
                    row.assign(&Array1::from(weights));
                }
                context
                    .slice_mut(columns)
                    .assign(&scores.dot(&values.slice(columns)));
                continue;
            }
            let q_norms = squared_row_norms(q);
            let k_norms = squared_row_norms(k);
            let mut scores = q.dot(&k.t());
            for ((i, j), score) in scores.indexed_iter_mut() {
                *score = -(q_norms[i] + k_norms[j] - 2.0 * *score) * scale;
            }
            probe(Probe::Exponent, scores.view());
            for ((_, j), score) in scores.indexed_iter_mut() {
                let kernel = functions.exp(*score);
                *score = if mask[j] { kernel } else { 0.0 };
            }
            context
                .slice_mut(columns)
                .assign(&scores.dot(&values.slice(columns)));
        }
        context
    }
}

/// `‖row‖²` of every row.
pub(crate) fn squared_row_norms(rows: ArrayView2<f64>) -> Array1<f64> {
    rows.map_axis(Axis(1), |row| row.dot(&row))
}

/// `x·W + b` for every row.
pub(crate) fn dense(layer: &Dense, input: ArrayView2<f64>) -> Array2<f64> {
    input.dot(&layer.weight) + &layer.bias
}

/// `x·W + b` for one row.
fn dense_vector(layer: &Dense, input: ArrayView1<f64>) -> Array1<f64> {
    input.dot(&layer.weight) + &layer.bias
}

/// `x·W + b + (x·A)·B` for every row.
pub(crate) fn project(projection: &Projection, input: ArrayView2<f64>) -> Array2<f64> {
    let mut output = dense(&projection.dense, input);
    if let Some(lora) = &projection.lora {
        output += &input.dot(&lora.a).dot(&lora.b);
    }
    output
}

/// `γ·(x − μ)·(σ² + eps)^(−1/2) + β` for every row.
fn layer_norm(
    norm: &LayerNormWeights,
    input: ArrayView2<f64>,
    eps: f64,
    functions: &mut NonLinear<'_>,
    probe: &mut dyn FnMut(Probe, ArrayView2<f64>),
) -> Array2<f64> {
    let mut rows = input.to_owned();
    let width = rows.ncols() as f64;
    for mut row in rows.rows_mut() {
        let mean = row.sum() / width;
        row.mapv_inplace(|v| v - mean);
        let variance = row.dot(&row) / width;
        let inverse_deviation = functions.inv_sqrt(variance + eps);
        row *= inverse_deviation;
    }
    probe(Probe::Normalized, rows.view());
    for mut row in rows.rows_mut() {
        row *= &norm.gamma;
        row += &norm.beta;
    }
    rows
}
