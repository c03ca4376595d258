//! The classification head with encrypted weights: what private
//! fine-tuning trains beside the adapters.
//!
//! The head `x ↦ tanh((x·W₁ + b₁)·W₂ + b₂ on row 0)·W₃ + b₃` keeps its
//! three weights in [`EncryptedDense`]'s layout (each `g·h·P` ciphertexts)
//! and its biases replicated on every row (as a dense layer's bias is
//! added). Its input `x` is the final LayerNorm's output with `γ`, `β`
//! applied (they cannot be folded into an encrypted `W₁`), or the stream.
//! The flat order of its ciphertexts ([`HeadLayout`]): `W₁`, `b₁`, `W₂`,
//! `b₂`, `W₃`, `b₃`.

use std::ops::Range;

use ndarray::{Array1, Array2};

use super::layout::BlockLayout;
use crate::error::{Error, Result};
use crate::math::Complex;
use crate::model::friendly::{Dense, FriendlyConfig, FriendlyHead};
use crate::tensor::EncryptedDense;

/// The head's three dense layers, in order.
pub const HEAD_LAYERS: usize = 3;

/// How many ciphertexts each of the head's six tensors takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLayout {
    counts: [usize; 2 * HEAD_LAYERS],
    /// `(inputs, outputs)` of each dense layer.
    shapes: [(usize, usize); HEAD_LAYERS],
}

impl HeadLayout {
    /// The head of `config` under `layout`.
    pub fn new(config: &FriendlyConfig, layout: &BlockLayout) -> Self {
        let p = layout.shape().blocks();
        let shapes = [
            (config.hidden, config.head_bottleneck),
            (config.head_bottleneck, config.head_width),
            (config.head_width, config.classes),
        ];
        let mut counts = [0; 2 * HEAD_LAYERS];
        for (k, &(inputs, outputs)) in shapes.iter().enumerate() {
            let (g, h) = (
                layout.ciphertexts_for(inputs),
                layout.ciphertexts_for(outputs),
            );
            counts[2 * k] = g * h * p;
            counts[2 * k + 1] = h;
        }
        Self { counts, shapes }
    }

    /// All the head's ciphertexts.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Where tensor `t` (`2k`: layer `k`'s weight, `2k + 1`: its bias)
    /// lies among the head's ciphertexts.
    pub fn range(&self, t: usize) -> Range<usize> {
        let start = self.counts[..t].iter().sum();
        start..start + self.counts[t]
    }

    /// The slot vectors of `head`'s tensors, in the flat order.
    ///
    /// Errors: a head of other shapes than the config's, non-finite
    /// values.
    pub fn slots(&self, layout: &BlockLayout, head: &FriendlyHead) -> Result<Vec<Vec<Complex>>> {
        let dense = EncryptedDense::new(layout.shape());
        let mut out = Vec::with_capacity(self.total());
        for (layer, &(inputs, outputs)) in layers(head).iter().zip(&self.shapes) {
            if layer.weight.dim() != (inputs, outputs) || layer.bias.len() != outputs {
                return Err(Error::InvalidParameters(format!(
                    "encrypted head: a layer is {:?} with {} biases, expected ({inputs}, {outputs})",
                    layer.weight.dim(),
                    layer.bias.len()
                )));
            }
            out.extend(dense.weight_slots(&layer.weight)?);
            out.extend(layout.replicated_row(&layer.bias)?);
        }
        Ok(out)
    }

    /// The head whose tensors `slots` hold (flat order; biases read on
    /// row 0), the inverse of [`slots`](Self::slots).
    ///
    /// Errors: a slot count other than the layout's.
    pub fn head(&self, layout: &BlockLayout, slots: &[Vec<Complex>]) -> Result<FriendlyHead> {
        if slots.len() != self.total() {
            return Err(Error::LengthMismatch {
                op: "encrypted head",
                got: slots.len(),
                expected: self.total(),
            });
        }
        let dense = EncryptedDense::new(layout.shape());
        let mut parts = Vec::with_capacity(HEAD_LAYERS);
        for (k, &(inputs, outputs)) in self.shapes.iter().enumerate() {
            let weight = dense.weight_matrix(&slots[self.range(2 * k)], inputs, outputs)?;
            let bias: Array1<f64> = layout
                .unpack(&slots[self.range(2 * k + 1)], outputs)?
                .row(0)
                .to_owned();
            parts.push(Dense { weight, bias });
        }
        let mut parts = parts.into_iter();
        let mut next = || {
            parts.next().ok_or(Error::LengthMismatch {
                op: "encrypted head",
                got: 0,
                expected: HEAD_LAYERS,
            })
        };
        Ok(FriendlyHead {
            bottleneck: next()?,
            widen: next()?,
            classifier: next()?,
        })
    }
}

/// The head's dense layers, in order.
fn layers(head: &FriendlyHead) -> [&Dense; HEAD_LAYERS] {
    [&head.bottleneck, &head.widen, &head.classifier]
}

/// The head's tensors flattened in the flat order (weights row-major): the
/// optimizer twin's parameters.
pub fn flatten_head(head: &FriendlyHead) -> Vec<Vec<f64>> {
    layers(head)
        .iter()
        .flat_map(|layer| [layer.weight.iter().copied().collect(), layer.bias.to_vec()])
        .collect()
}

/// Writes [`flatten_head`]'s vectors back into `head`.
///
/// Errors: vectors of other lengths.
pub fn unflatten_head(head: &mut FriendlyHead, values: &[Vec<f64>]) -> Result<()> {
    let layers = [&mut head.bottleneck, &mut head.widen, &mut head.classifier];
    if values.len() != 2 * HEAD_LAYERS {
        return Err(Error::LengthMismatch {
            op: "encrypted head",
            got: values.len(),
            expected: 2 * HEAD_LAYERS,
        });
    }
    for (layer, pair) in layers.into_iter().zip(values.chunks(2)) {
        let (rows, cols) = layer.weight.dim();
        if pair[0].len() != rows * cols || pair[1].len() != layer.bias.len() {
            return Err(Error::LengthMismatch {
                op: "encrypted head",
                got: pair[0].len(),
                expected: rows * cols,
            });
        }
        layer.weight = Array2::from_shape_vec((rows, cols), pair[0].clone())
            .map_err(|e| Error::InvalidParameters(e.to_string()))?;
        layer.bias = Array1::from_vec(pair[1].clone());
    }
    Ok(())
}
