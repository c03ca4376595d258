//! Full fine-tuning's encrypted layers: the paper's baseline trains every
//! dense weight, so each layer's seven dense layers travel encrypted (in
//! [`EncryptedDense`](crate::tensor::EncryptedDense)'s layout, through
//! [`DenseLayout`]) and every product with them is a CCMM.
//!
//! The weights are the twin's own (a plaintext LoRA adapter merged in,
//! `W + A·B`), in the circuit's coordinates: the query, key and value
//! projections' columns moved to their heads' blocks
//! ([`BlockLayout::head_column`]), the output projection's rows likewise;
//! the LayerNorms' `γ`, `β` are applied to the normalised rows in the
//! clear (an encrypted weight cannot take them folded), and the queries'
//! factor `2c` is a relabelling of the scale. So the decrypted weights and
//! their gradients are the twin's, entry for entry.
//!
//! A layer's flat order: `W_q, b_q, W_k, b_k, W_v, b_v, W_o, b_o, W_g,
//! b_g, W_u, b_u, W_d, b_d`.

use ndarray::{Array1, Array2};

use super::blocks::merged;
use super::head::DenseLayout;
use super::layout::BlockLayout;
use crate::model::friendly::{Dense, FriendlyConfig, FriendlyLayer, Projection};

/// The dense layers of one layer, in the flat order.
pub const LAYER_DENSE: usize = 7;
/// Their indices.
pub const QUERY: usize = 0;
pub const KEY: usize = 1;
pub const VALUE: usize = 2;
pub const OUTPUT: usize = 3;
pub const GATE: usize = 4;
pub const UP: usize = 5;
pub const DOWN: usize = 6;

/// One layer's encrypted dense layers under `layout`.
pub fn layer_layout(config: &FriendlyConfig, layout: &BlockLayout) -> DenseLayout {
    let (hidden, heads, ffn) = (config.hidden, layout.heads_width(), config.ffn);
    DenseLayout::new(
        layout,
        vec![
            (hidden, heads),
            (hidden, heads),
            (hidden, heads),
            (heads, hidden),
            (hidden, ffn),
            (hidden, ffn),
            (ffn, hidden),
        ],
    )
}

/// `layer`'s dense layers in the circuit's coordinates, in the flat order.
pub fn circuit_layers(layout: &BlockLayout, layer: &FriendlyLayer) -> Vec<Dense> {
    let heads = layout.heads_width();
    let to_heads_columns = |projection: &Projection| {
        let (weight, bias) = merged(projection, true);
        let mut w = Array2::zeros((weight.nrows(), heads));
        let mut b = Array1::zeros(heads);
        for (j, column) in weight.columns().into_iter().enumerate() {
            w.column_mut(layout.head_column(j)).assign(&column);
            b[layout.head_column(j)] = bias[j];
        }
        Dense { weight: w, bias: b }
    };
    let (output, output_bias) = merged(&layer.output, true);
    let mut rows = Array2::zeros((heads, output.ncols()));
    for (i, row) in output.rows().into_iter().enumerate() {
        rows.row_mut(layout.head_column(i)).assign(&row);
    }
    vec![
        to_heads_columns(&layer.query),
        to_heads_columns(&layer.key),
        to_heads_columns(&layer.value),
        Dense {
            weight: rows,
            bias: output_bias,
        },
        layer.gate.clone(),
        layer.up.clone(),
        layer.down.clone(),
    ]
}

/// The inverse of [`circuit_layers`] for dense layers of the twin's shape
/// (`hidden` features): the twin's `W_q, W_k, W_v, W_o, W_g, W_u, W_d`
/// with their biases (weights or gradients alike).
pub fn twin_layers(config: &FriendlyConfig, layout: &BlockLayout, circuit: &[Dense]) -> Vec<Dense> {
    let hidden = config.hidden;
    let from_heads_columns = |dense: &Dense| Dense {
        weight: Array2::from_shape_fn((dense.weight.nrows(), hidden), |(i, j)| {
            dense.weight[[i, layout.head_column(j)]]
        }),
        bias: Array1::from_shape_fn(hidden, |j| dense.bias[layout.head_column(j)]),
    };
    circuit
        .iter()
        .enumerate()
        .map(|(k, dense)| match k {
            QUERY | KEY | VALUE => from_heads_columns(dense),
            OUTPUT => Dense {
                weight: Array2::from_shape_fn((hidden, dense.weight.ncols()), |(i, j)| {
                    dense.weight[[layout.head_column(i), j]]
                }),
                bias: dense.bias.clone(),
            },
            _ => dense.clone(),
        })
        .collect()
}
