//! The classification head with encrypted weights: what private
//! fine-tuning trains beside the adapters.
//!
//! The head `x ↦ tanh((x·W₁ + b₁)·W₂ + b₂ on row 0)·W₃ + b₃` keeps its
//! three weights in [`EncryptedDense`]'s layout (each `g·h·P` ciphertexts)
//! and its biases replicated on every row (as a dense layer's bias is
//! added). Its input `x` is the final LayerNorm's output with `γ`, `β`
//! applied (they cannot be folded into an encrypted `W₁`), or the stream.
//! The flat order of its ciphertexts ([`DenseLayout::head`]): `W₁`, `b₁`, `W₂`,
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

/// How many ciphertexts each tensor of a stack of dense layers with
/// encrypted weights takes (the head's, or a layer's under full
/// fine-tuning): per layer its weight in [`EncryptedDense`]'s layout, then
/// its bias replicated on every row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenseLayout {
    counts: Vec<usize>,
    /// `(inputs, outputs)` of each dense layer.
    shapes: Vec<(usize, usize)>,
}

impl DenseLayout {
    /// The layers of `shapes` under `layout`.
    pub fn new(layout: &BlockLayout, shapes: Vec<(usize, usize)>) -> Self {
        let p = layout.shape().blocks();
        let counts = shapes
            .iter()
            .flat_map(|&(inputs, outputs)| {
                let (g, h) = (
                    layout.ciphertexts_for(inputs),
                    layout.ciphertexts_for(outputs),
                );
                [g * h * p, h]
            })
            .collect();
        Self { counts, shapes }
    }

    /// The head of `config`: `W₁`, `b₁`, `W₂`, `b₂`, `W₃`, `b₃`.
    pub fn head(config: &FriendlyConfig, layout: &BlockLayout) -> Self {
        Self::new(
            layout,
            vec![
                (config.hidden, config.head_bottleneck),
                (config.head_bottleneck, config.head_width),
                (config.head_width, config.classes),
            ],
        )
    }

    /// How many tensors (twice the layers).
    pub fn tensors(&self) -> usize {
        self.counts.len()
    }

    /// All the ciphertexts.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Where tensor `t` (`2k`: layer `k`'s weight, `2k + 1`: its bias)
    /// lies among the ciphertexts.
    pub fn range(&self, t: usize) -> Range<usize> {
        let start = self.counts[..t].iter().sum();
        start..start + self.counts[t]
    }

    /// The slot vectors of `layers`' tensors, in the flat order.
    ///
    /// Errors: layers of other shapes than the layout's, non-finite
    /// values.
    pub fn slots(&self, layout: &BlockLayout, layers: &[&Dense]) -> Result<Vec<Vec<Complex>>> {
        if layers.len() != self.shapes.len() {
            return Err(Error::LengthMismatch {
                op: "encrypted dense layers",
                got: layers.len(),
                expected: self.shapes.len(),
            });
        }
        let dense = EncryptedDense::new(layout.shape());
        let mut out = Vec::with_capacity(self.total());
        for (layer, &(inputs, outputs)) in layers.iter().zip(&self.shapes) {
            if layer.weight.dim() != (inputs, outputs) || layer.bias.len() != outputs {
                return Err(Error::InvalidParameters(format!(
                    "encrypted dense layers: a layer is {:?} with {} biases, expected ({inputs}, {outputs})",
                    layer.weight.dim(),
                    layer.bias.len()
                )));
            }
            out.extend(dense.weight_slots(&layer.weight)?);
            out.extend(layout.replicated_row(&layer.bias)?);
        }
        Ok(out)
    }

    /// Per tensor, the slot vectors of its ciphertexts for all-ones
    /// layers: the blocks each tensor occupies
    /// ([`CompactPacking`](super::compact::CompactPacking)).
    ///
    /// Errors: none in practice (the shapes are the layout's own).
    pub fn occupancy(&self, layout: &BlockLayout) -> Result<Vec<Vec<Vec<Complex>>>> {
        let ones: Vec<Dense> = self
            .shapes
            .iter()
            .map(|&(inputs, outputs)| Dense {
                weight: Array2::ones((inputs, outputs)),
                bias: Array1::ones(outputs),
            })
            .collect();
        let slots = self.slots(layout, &ones.iter().collect::<Vec<_>>())?;
        Ok((0..self.tensors())
            .map(|t| slots[self.range(t)].to_vec())
            .collect())
    }

    /// The layers whose tensors `slots` hold (flat order; biases read on
    /// row 0), the inverse of [`slots`](Self::slots).
    ///
    /// Errors: a slot count other than the layout's.
    pub fn dense(&self, layout: &BlockLayout, slots: &[Vec<Complex>]) -> Result<Vec<Dense>> {
        if slots.len() != self.total() {
            return Err(Error::LengthMismatch {
                op: "encrypted dense layers",
                got: slots.len(),
                expected: self.total(),
            });
        }
        let dense = EncryptedDense::new(layout.shape());
        self.shapes
            .iter()
            .enumerate()
            .map(|(k, &(inputs, outputs))| {
                let weight = dense.weight_matrix(&slots[self.range(2 * k)], inputs, outputs)?;
                let bias: Array1<f64> = layout
                    .unpack(&slots[self.range(2 * k + 1)], outputs)?
                    .row(0)
                    .to_owned();
                Ok(Dense { weight, bias })
            })
            .collect()
    }

    /// The head whose tensors `slots` hold (a [`head`](Self::head)
    /// layout's).
    ///
    /// Errors: those of [`dense`](Self::dense), a layout of other than
    /// three layers.
    pub fn friendly_head(
        &self,
        layout: &BlockLayout,
        slots: &[Vec<Complex>],
    ) -> Result<FriendlyHead> {
        let parts: [Dense; HEAD_LAYERS] =
            self.dense(layout, slots)?
                .try_into()
                .map_err(|parts: Vec<Dense>| Error::LengthMismatch {
                    op: "encrypted head",
                    got: parts.len(),
                    expected: HEAD_LAYERS,
                })?;
        let [bottleneck, widen, classifier] = parts;
        Ok(FriendlyHead {
            bottleneck,
            widen,
            classifier,
        })
    }
}

/// The head's dense layers, in order.
pub fn layers(head: &FriendlyHead) -> [&Dense; HEAD_LAYERS] {
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
