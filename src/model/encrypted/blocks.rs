//! The twin's weights rearranged, in the clear, for the encrypted circuit:
//! the same functions with fewer encrypted operations.
//!
//! - A LoRA adapter is merged into its projection, `W + A·B` (part 1 serves
//!   plaintext adapters; encrypted adapters are part 2's).
//! - A LayerNorm's `γ`, `β` are folded into the dense layers it feeds:
//!   `(n ⊙ γ + β)·W + b = n·(diag(γ)·W) + (β·W + b)`, so the circuit only
//!   normalises.
//! - Each head's Q, K and V projections keep only the head's columns,
//!   placed where they sit in their block (the other columns are zero), so
//!   a head is one block of each; Q is also multiplied by `2c`,
//!   `c = 1/(2√d_head)`, the kernel's factor (then `Q'·Kᵀ = 2c·Q·Kᵀ` and
//!   `(Q' ⊙ Q')·(−J/(4c))` gives `−c·‖q_i‖²` on row `i`).
//! - Every matrix is zero-padded to whole `d × d` blocks.

use ndarray::{s, Array1, Array2};

use super::layout::BlockLayout;
use crate::error::Result;
use crate::model::friendly::{Dense, FriendlyConfig, FriendlyModel, Projection};
use crate::model::weights::LayerNormWeights;

/// A dense layer in blocks: `blocks[i][j]` maps input block `i` to output
/// block `j`; `bias[j]` is the bias of output block `j` on every row.
#[derive(Clone, Debug)]
pub struct DenseBlocks {
    pub blocks: Vec<Vec<Array2<f64>>>,
    pub bias: Option<Vec<Array2<f64>>>,
}

impl DenseBlocks {
    /// `x ↦ x·weight (+ bias)` padded to whole blocks.
    fn new(layout: &BlockLayout, weight: &Array2<f64>, bias: Option<&Array1<f64>>) -> Result<Self> {
        let d = layout.dim();
        let (rows, cols) = weight.dim();
        let padded = BlockLayout::padded(
            weight,
            layout.blocks_for(rows) * d,
            layout.blocks_for(cols) * d,
        )?;
        Ok(Self {
            blocks: layout.shape().split_blocks(&padded)?,
            bias: bias.map(|b| layout.replicated_row(b)).transpose()?,
        })
    }

    /// Output blocks.
    pub fn outputs(&self) -> usize {
        self.blocks.first().map_or(0, Vec::len)
    }
}

/// One head's projections, each one block wide.
#[derive(Clone, Debug)]
pub struct HeadBlocks {
    /// The block of the residual stream's columns the head occupies.
    pub block: usize,
    /// `2c`-scaled queries.
    pub query: DenseBlocks,
    pub key: DenseBlocks,
    pub value: DenseBlocks,
}

/// One layer.
#[derive(Clone, Debug)]
pub struct LayerBlocks {
    pub heads: Vec<HeadBlocks>,
    pub output: DenseBlocks,
    pub gate: DenseBlocks,
    pub up: DenseBlocks,
    pub down: DenseBlocks,
}

/// The whole model, and the constant matrices of the circuit.
#[derive(Clone, Debug)]
pub struct ModelBlocks {
    pub layers: Vec<LayerBlocks>,
    /// The final LayerNorm (if any) folded in.
    pub bottleneck: DenseBlocks,
    pub widen: DenseBlocks,
    pub classifier: DenseBlocks,
    /// `J/hidden`: a row sum of the blocks' sum becomes the row mean on
    /// every column.
    pub mean: DenseBlocks,
    /// `−J/(4c)` and `−c·J`: squared rows become `−c‖q‖²`, `−c‖k‖²`.
    pub query_norm: DenseBlocks,
    pub key_norm: DenseBlocks,
    /// Ones on row 0: the head keeps the first token only.
    pub first_row: Array2<f64>,
}

impl ModelBlocks {
    /// The blocks of `model` under `layout`.
    pub fn new(model: &FriendlyModel, layout: &BlockLayout) -> Result<Self> {
        let config = model.config();
        let weights = model.weights();
        let d = layout.dim();
        let c = kernel_factor(config);
        let ones = Array2::from_elem((d, d), 1.0);
        let layers = weights
            .layers
            .iter()
            .map(|layer| {
                let heads = (0..config.heads)
                    .map(|head| {
                        let fold = |projection: &Projection, factor: f64| {
                            let (w, b) = merged(projection);
                            let (w, b) = folded(&layer.attention_norm, &w, &b);
                            let (w, b) = head_columns(config, layout, head, &w, &b);
                            DenseBlocks::new(layout, &(w * factor), Some(&(b * factor)))
                        };
                        Ok(HeadBlocks {
                            block: head * config.head_size() / d,
                            query: fold(&layer.query, 2.0 * c)?,
                            key: fold(&layer.key, 1.0)?,
                            value: fold(&layer.value, 1.0)?,
                        })
                    })
                    .collect::<Result<_>>()?;
                let (w, b) = merged(&layer.output);
                let ffn = |dense: &Dense| {
                    let (w, b) = folded(&layer.ffn_norm, &dense.weight, &dense.bias);
                    DenseBlocks::new(layout, &w, Some(&b))
                };
                Ok(LayerBlocks {
                    heads,
                    output: DenseBlocks::new(layout, &w, Some(&b))?,
                    gate: ffn(&layer.gate)?,
                    up: ffn(&layer.up)?,
                    down: DenseBlocks::new(layout, &layer.down.weight, Some(&layer.down.bias))?,
                })
            })
            .collect::<Result<_>>()?;
        let head = &weights.head;
        let (w, b) = match &weights.final_norm {
            Some(norm) => folded(norm, &head.bottleneck.weight, &head.bottleneck.bias),
            None => (head.bottleneck.weight.clone(), head.bottleneck.bias.clone()),
        };
        let plain = |dense: &Dense| DenseBlocks::new(layout, &dense.weight, Some(&dense.bias));
        let constant = |factor: f64| DenseBlocks::new(layout, &(&ones * factor), None);
        Ok(Self {
            layers,
            bottleneck: DenseBlocks::new(layout, &w, Some(&b))?,
            widen: plain(&head.widen)?,
            classifier: plain(&head.classifier)?,
            mean: constant(1.0 / config.hidden as f64)?,
            query_norm: constant(-1.0 / (4.0 * c))?,
            key_norm: constant(-c)?,
            first_row: Array2::from_shape_fn((d, d), |(i, _)| f64::from(u8::from(i == 0))),
        })
    }
}

/// `c = 1/(2√d_head)`: the kernel is `exp(−c·‖q − k‖²)`.
pub fn kernel_factor(config: &FriendlyConfig) -> f64 {
    1.0 / (2.0 * (config.head_size() as f64).sqrt())
}

/// The projection with its adapter merged: `W + A·B`, `b`.
fn merged(projection: &Projection) -> (Array2<f64>, Array1<f64>) {
    let dense = &projection.dense;
    match &projection.lora {
        Some(lora) => (&dense.weight + &lora.a.dot(&lora.b), dense.bias.clone()),
        None => (dense.weight.clone(), dense.bias.clone()),
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

/// Head `head`'s columns of `W`, `b`, at their place in a `d`-wide block.
fn head_columns(
    config: &FriendlyConfig,
    layout: &BlockLayout,
    head: usize,
    weight: &Array2<f64>,
    bias: &Array1<f64>,
) -> (Array2<f64>, Array1<f64>) {
    let (d, width) = (layout.dim(), config.head_size());
    let (start, offset) = (head * width, (head * width) % d);
    let mut w = Array2::zeros((weight.nrows(), d));
    let mut b = Array1::zeros(d);
    w.slice_mut(s![.., offset..offset + width])
        .assign(&weight.slice(s![.., start..start + width]));
    b.slice_mut(s![offset..offset + width])
        .assign(&bias.slice(s![start..start + width]));
    (w, b)
}
