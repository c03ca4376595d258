//! The twin's weights rearranged, in the clear, for the encrypted circuit:
//! the same functions with fewer encrypted operations.
//!
//! - A plaintext LoRA adapter is merged into its projection, `W + A·B`;
//!   for encrypted adapters ([`super::adapters`]) the projection keeps `W`
//!   alone and the LayerNorm's `γ`, `β` are kept too
//!   ([`ModelBlocks::adapter_norms`]): the adapters' input is the
//!   LayerNorm's output.
//! - A LayerNorm's `γ`, `β` are folded into the dense layers it feeds:
//!   `(n ⊙ γ + β)·W + b = n·(diag(γ)·W) + (β·W + b)`, so the circuit only
//!   normalises.
//! - The Q, K and V projections give every head a block of its own: head
//!   `h`'s columns go to block `h`, where they sat in their block of the
//!   stream (the other columns are zero), so that CCMM runs all heads at
//!   once, block by block; Q is also multiplied by `2c`,
//!   `c = 1/(2√d_head)`, the kernel's factor (then `Q'·Kᵀ = 2c·Q·Kᵀ` and
//!   `(Q' ⊙ Q')·(−J/(4c))` gives `−c·‖q_i‖²` on row `i`; for softmax
//!   attention `2c = 1/√d_head` is the scores' factor). The output
//!   projection reads head `h`'s block through the rows of its block of
//!   the stream.
//! - Every matrix is zero-padded to whole `d × d` blocks.

use ndarray::{Array1, Array2};

use super::layout::BlockLayout;
use super::setup::AdapterMode;
use crate::error::Result;
use crate::math::Complex;
use crate::model::friendly::{AttentionKernel, Dense, FriendlyConfig, FriendlyModel, Projection};
use crate::model::weights::LayerNormWeights;

/// A dense layer: `x ↦ x·weight + bias`, the weight padded to whole
/// blocks, the bias replicated on every row, as the slot vectors of its
/// output ciphertexts.
#[derive(Clone, Debug)]
pub struct DenseLayer {
    pub weight: Array2<f64>,
    pub bias: Option<Vec<Vec<Complex>>>,
}

impl DenseLayer {
    /// `x ↦ x·weight (+ bias)` padded to whole blocks.
    fn new(layout: &BlockLayout, weight: &Array2<f64>, bias: Option<&Array1<f64>>) -> Result<Self> {
        let d = layout.dim();
        let (rows, cols) = weight.dim();
        Ok(Self {
            weight: BlockLayout::padded(
                weight,
                layout.blocks_for(rows) * d,
                layout.blocks_for(cols) * d,
            )?,
            bias: bias.map(|b| layout.replicated_row(b)).transpose()?,
        })
    }

    /// `y ↦ y·weightᵀ`: the product of the backward pass.
    fn transposed(&self) -> Self {
        Self {
            weight: self.weight.t().to_owned(),
            bias: None,
        }
    }
}

/// One layer.
#[derive(Clone, Debug)]
pub struct LayerBlocks {
    /// `2c`-scaled queries, head `h` in block `h`.
    pub query: DenseLayer,
    pub key: DenseLayer,
    pub value: DenseLayer,
    /// From the heads' blocks to the stream.
    pub output: DenseLayer,
    pub gate: DenseLayer,
    pub up: DenseLayer,
    pub down: DenseLayer,
}

/// The whole model, and the constant matrices of the circuit.
#[derive(Clone, Debug)]
pub struct ModelBlocks {
    pub layers: Vec<LayerBlocks>,
    /// The final LayerNorm (if any) folded in.
    pub bottleneck: DenseLayer,
    pub widen: DenseLayer,
    pub classifier: DenseLayer,
    /// `J/hidden` on the stream: the row mean on every column.
    pub mean: DenseLayer,
    /// `−J/(4c)` and `−c·J` on each head's block: squared rows become
    /// `−c‖q‖²`, `−c‖k‖²`.
    pub query_norm: DenseLayer,
    pub key_norm: DenseLayer,
    /// `J` on each head's block, for softmax attention only: the row sums
    /// on every column of the block.
    softmax_row_sums: Option<DenseLayer>,
    /// Ones on row 0: the head keeps the first token only.
    pub first_row: Array2<f64>,
    /// Per layer, the attention LayerNorm's `γ`, `β` (empty when the
    /// adapters are merged).
    pub adapter_norms: Vec<NormSlots>,
    /// Per layer, the feed-forward LayerNorm's `γ`, `β` (full fine-tuning
    /// only: its encrypted weights cannot take them folded).
    pub ffn_norms: Vec<NormSlots>,
    /// The final LayerNorm's `γ`, `β` for an encrypted head (none when the
    /// adapters are merged or there is no final LayerNorm).
    pub final_norm: Option<NormSlots>,
}

/// A LayerNorm's `γ` and `β` replicated on every row, as the slot vectors of
/// the stream's ciphertexts, and their largest magnitudes.
#[derive(Clone, Debug)]
pub struct NormSlots {
    pub gamma: Vec<Vec<Complex>>,
    pub beta: Vec<Vec<Complex>>,
    pub gamma_bound: f64,
    pub beta_bound: f64,
}

impl NormSlots {
    fn new(layout: &BlockLayout, norm: &LayerNormWeights) -> Result<Self> {
        let largest = |v: &Array1<f64>| v.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
        Ok(Self {
            gamma: layout.replicated_row(&norm.gamma)?,
            beta: layout.replicated_row(&norm.beta)?,
            gamma_bound: largest(&norm.gamma),
            beta_bound: largest(&norm.beta),
        })
    }
}

impl ModelBlocks {
    /// The blocks of `model` under `layout`, its plaintext adapters merged
    /// when `mode` is [`AdapterMode::Merged`] (otherwise left out, for
    /// encrypted ones; with [`AdapterMode::Full`] the dense layers are
    /// built but unused: their weights come encrypted).
    pub fn new(model: &FriendlyModel, layout: &BlockLayout, mode: AdapterMode) -> Result<Self> {
        let merge_adapters = mode == AdapterMode::Merged;
        let config = model.config();
        let weights = model.weights();
        let d = layout.dim();
        let c = kernel_factor(config);
        let layers = weights
            .layers
            .iter()
            .map(|layer| {
                let fold = |projection: &Projection, factor: f64| {
                    let (w, b) = merged(projection, merge_adapters);
                    let (w, b) = folded(&layer.attention_norm, &w, &b);
                    let (w, b) = head_blocks(config, layout, &w, &b);
                    DenseLayer::new(layout, &(w * factor), Some(&(b * factor)))
                };
                let (w, b) = merged(&layer.output, true);
                let ffn = |dense: &Dense| {
                    let (w, b) = folded(&layer.ffn_norm, &dense.weight, &dense.bias);
                    DenseLayer::new(layout, &w, Some(&b))
                };
                Ok(LayerBlocks {
                    query: fold(&layer.query, 2.0 * c)?,
                    key: fold(&layer.key, 1.0)?,
                    value: fold(&layer.value, 1.0)?,
                    output: DenseLayer::new(layout, &head_rows(config, layout, &w), Some(&b))?,
                    gate: ffn(&layer.gate)?,
                    up: ffn(&layer.up)?,
                    down: DenseLayer::new(layout, &layer.down.weight, Some(&layer.down.bias))?,
                })
            })
            .collect::<Result<_>>()?;
        let head = &weights.head;
        let (w, b) = match &weights.final_norm {
            Some(norm) => folded(norm, &head.bottleneck.weight, &head.bottleneck.bias),
            None => (head.bottleneck.weight.clone(), head.bottleneck.bias.clone()),
        };
        let plain = |dense: &Dense| DenseLayer::new(layout, &dense.weight, Some(&dense.bias));
        let hidden = config.hidden;
        Ok(Self {
            layers,
            bottleneck: DenseLayer::new(layout, &w, Some(&b))?,
            widen: plain(&head.widen)?,
            classifier: plain(&head.classifier)?,
            mean: DenseLayer::new(
                layout,
                &Array2::from_elem((hidden, hidden), 1.0 / hidden as f64),
                None,
            )?,
            query_norm: per_head(config, layout, -1.0 / (4.0 * c))?,
            key_norm: per_head(config, layout, -c)?,
            softmax_row_sums: match config.attention {
                AttentionKernel::Softmax => Some(per_head(config, layout, 1.0)?),
                AttentionKernel::Gaussian => None,
            },
            first_row: Array2::from_shape_fn((d, d), |(i, _)| f64::from(u8::from(i == 0))),
            adapter_norms: if merge_adapters {
                Vec::new()
            } else {
                weights
                    .layers
                    .iter()
                    .map(|layer| NormSlots::new(layout, &layer.attention_norm))
                    .collect::<Result<_>>()?
            },
            ffn_norms: if mode == AdapterMode::Full {
                weights
                    .layers
                    .iter()
                    .map(|layer| NormSlots::new(layout, &layer.ffn_norm))
                    .collect::<Result<_>>()?
            } else {
                Vec::new()
            },
            final_norm: match (&weights.final_norm, merge_adapters) {
                (Some(norm), false) => Some(NormSlots::new(layout, norm)?),
                _ => None,
            },
        })
    }
}

impl ModelBlocks {
    /// Softmax attention's row sums (`J` per head).
    ///
    /// Errors: a model built for the Gaussian kernel.
    pub fn softmax_row_sums(&self) -> Result<&DenseLayer> {
        self.softmax_row_sums
            .as_ref()
            .ok_or_else(super::softmax::not_softmax)
    }
}

/// What the backward pass multiplies gradients by: every dense layer
/// transposed (`∂x = ∂y·Wᵀ`, no bias), and the heads' row sums.
#[derive(Clone, Debug)]
pub struct BackwardBlocks {
    pub layers: Vec<LayerBlocks>,
    pub bottleneck: DenseLayer,
    pub widen: DenseLayer,
    pub classifier: DenseLayer,
    /// `−J/(2c)` on each head's block: `∂E`'s row sums as they enter `∂Q'`.
    pub query_row_sums: DenseLayer,
    /// `−2c·J` on each head's block: `∂Eᵀ`'s row sums as they enter `∂K`.
    pub key_row_sums: DenseLayer,
}

impl BackwardBlocks {
    /// The transposes of `blocks`.
    pub fn new(
        blocks: &ModelBlocks,
        config: &FriendlyConfig,
        layout: &BlockLayout,
    ) -> Result<Self> {
        let c = kernel_factor(config);
        Ok(Self {
            layers: blocks
                .layers
                .iter()
                .map(|layer| LayerBlocks {
                    query: layer.query.transposed(),
                    key: layer.key.transposed(),
                    value: layer.value.transposed(),
                    output: layer.output.transposed(),
                    gate: layer.gate.transposed(),
                    up: layer.up.transposed(),
                    down: layer.down.transposed(),
                })
                .collect(),
            bottleneck: blocks.bottleneck.transposed(),
            widen: blocks.widen.transposed(),
            classifier: blocks.classifier.transposed(),
            query_row_sums: per_head(config, layout, -1.0 / (2.0 * c))?,
            key_row_sums: per_head(config, layout, -2.0 * c)?,
        })
    }
}

/// `factor·J` on each head's `d × d` block (block-diagonal): a row's sum
/// within its head, times `factor`, on every column of the head's block.
fn per_head(config: &FriendlyConfig, layout: &BlockLayout, factor: f64) -> Result<DenseLayer> {
    let (heads, d) = (config.heads, layout.dim());
    let block_diagonal = Array2::from_shape_fn((heads * d, heads * d), |(i, j)| {
        if i / d == j / d {
            factor
        } else {
            0.0
        }
    });
    DenseLayer::new(layout, &block_diagonal, None)
}

/// `c = 1/(2√d_head)`: the kernel is `exp(−c·‖q − k‖²)`.
pub fn kernel_factor(config: &FriendlyConfig) -> f64 {
    1.0 / (2.0 * (config.head_size() as f64).sqrt())
}

/// The projection with its adapter merged if `merge`: `W + A·B`, `b`.
pub(super) fn merged(projection: &Projection, merge: bool) -> (Array2<f64>, Array1<f64>) {
    let dense = &projection.dense;
    match (&projection.lora, merge) {
        (Some(lora), true) => (&dense.weight + &lora.a.dot(&lora.b), dense.bias.clone()),
        _ => (dense.weight.clone(), dense.bias.clone()),
    }
}

/// `diag(γ)·W` and `β·W + b`.
fn folded(
    norm: &LayerNormWeights,
    weight: &Array2<f64>,
    bias: &Array1<f64>,
) -> (Array2<f64>, Array1<f64>) {
    let gamma = norm.gamma.view().insert_axis(ndarray::Axis(1));
    (weight * &gamma, norm.beta.dot(weight) + bias)
}

/// The columns of `W`, `b` rearranged so that head `h`'s sit in block `h`
/// (`heads` blocks), at their offset within their block of the stream.
fn head_blocks(
    config: &FriendlyConfig,
    layout: &BlockLayout,
    weight: &Array2<f64>,
    bias: &Array1<f64>,
) -> (Array2<f64>, Array1<f64>) {
    let mut w = Array2::zeros((weight.nrows(), layout.heads_width()));
    let mut b = Array1::zeros(layout.heads_width());
    for j in 0..config.hidden {
        let to = layout.head_column(j);
        w.column_mut(to).assign(&weight.column(j));
        b[to] = bias[j];
    }
    (w, b)
}

/// The rows of the output projection `W` for the heads' blocks: block `h`
/// takes the rows of head `h`'s block of the stream (its other heads'
/// columns are zero in block `h`).
fn head_rows(config: &FriendlyConfig, layout: &BlockLayout, weight: &Array2<f64>) -> Array2<f64> {
    let d = layout.dim();
    let width = config.head_size();
    Array2::from_shape_fn((config.heads * d, weight.ncols()), |(i, j)| {
        let (head, offset) = (i / d, i % d);
        weight[[head * width / d * d + offset, j]]
    })
}
