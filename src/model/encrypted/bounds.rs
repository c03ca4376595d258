//! Bounds on the values the encrypted model may bootstrap, in the forward
//! pass ([`ActivationBounds`]) and the backward pass ([`GradientBounds`]).
//!
//! A bootstrap needs a bound on its input's magnitude (its absolute error
//! grows with it, see [`crate::circuits::refresh`]), and a value beyond its
//! bound corrupts every slot of the ciphertext, not only its own. The
//! bounds are measured on the plaintext twin ([`ActivationBounds::calibrate`],
//! the polynomial variant, on inputs like the ones to be served) and
//! multiplied by a margin.

use ndarray::{ArrayView1, ArrayView2, Axis};

use crate::error::{Error, Result};
use crate::model::friendly::{FriendlyHead, FriendlyModel, Probe, Variant};
use crate::model::train::attention::AttentionProbe;
use crate::model::train::classifier::Differentiable;
use crate::model::train::friendly::{FriendlyBackprop, GradientProbe};
use crate::model::train::head::HeadTape;
use crate::model::train::ops::cross_entropy;
use crate::model::train::params::Parameters;

/// The largest magnitude expected of each kind of intermediate value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActivationBounds {
    /// The residual stream.
    pub stream: f64,
    /// LayerNorm's normalised rows (before `γ`, `β`).
    pub normalized: f64,
    /// Q, K and V.
    pub projection: f64,
    /// The parts of the attention exponent: `‖q‖²/(2√d)`, `‖k‖²/(2√d)`,
    /// the exponent itself and its cross term.
    pub exponent: f64,
    /// The heads' outputs `S·V_h`.
    pub context: f64,
    /// The feed-forward's gate, up projection and GLU product.
    pub ffn: f64,
    /// The head's values before tanh.
    pub head: f64,
}

impl ActivationBounds {
    /// Every bound: the largest magnitudes the twin's polynomial forward
    /// reaches on `inputs` (embeddings and mask), times `margin` (at least
    /// 1), and at least 1.
    ///
    /// Errors: those of [`FriendlyModel::forward`], an empty `inputs`, a
    /// margin below 1.
    pub fn calibrate(
        model: &FriendlyModel,
        inputs: &[(ArrayView2<f64>, &[bool])],
        margin: f64,
    ) -> Result<Self> {
        check_calibration("ActivationBounds::calibrate", inputs.len(), margin)?;
        let head_size = model.config().head_size();
        let kernel_scale = 1.0 / (2.0 * (head_size as f64).sqrt());
        let mut bounds = Self::unit();
        for (embeddings, mask) in inputs {
            model.forward_probed(
                *embeddings,
                mask,
                Variant::Polynomial,
                &mut |probe, values| {
                    let largest = values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
                    let slot = match probe {
                        Probe::Stream => &mut bounds.stream,
                        Probe::Normalized => &mut bounds.normalized,
                        Probe::Projection => {
                            let norms = largest_head_norm(values, head_size) * kernel_scale;
                            bounds.exponent = bounds.exponent.max(norms);
                            &mut bounds.projection
                        }
                        Probe::Exponent => &mut bounds.exponent,
                        Probe::Context => &mut bounds.context,
                        Probe::Gate | Probe::Glu => &mut bounds.ffn,
                        Probe::Head => &mut bounds.head,
                    };
                    *slot = slot.max(largest);
                },
            )?;
        }
        Ok(bounds.scaled(margin))
    }

    /// Every bound 1.
    fn unit() -> Self {
        Self {
            stream: 1.0,
            normalized: 1.0,
            projection: 1.0,
            exponent: 1.0,
            context: 1.0,
            ffn: 1.0,
            head: 1.0,
        }
    }

    /// Every bound times `factor`.
    fn scaled(self, factor: f64) -> Self {
        Self {
            stream: self.stream * factor,
            normalized: self.normalized * factor,
            projection: self.projection * factor,
            exponent: self.exponent * factor,
            context: self.context * factor,
            ffn: self.ffn * factor,
            head: self.head * factor,
        }
    }
}

/// A calibration needs inputs and a margin of at least 1.
fn check_calibration(op: &'static str, inputs: usize, margin: f64) -> Result<()> {
    if inputs == 0 || !(margin.is_finite() && margin >= 1.0) {
        return Err(Error::OutOfRange {
            op,
            detail: format!("needs inputs ({inputs} given) and a margin of at least 1 ({margin})"),
        });
    }
    Ok(())
}

/// The largest squared norm of a row's head slice.
fn largest_head_norm(values: ArrayView2<f64>, head_size: usize) -> f64 {
    values
        .axis_chunks_iter(Axis(1), head_size)
        .flat_map(|head| {
            head.rows()
                .into_iter()
                .map(|row| row.dot(&row))
                .collect::<Vec<_>>()
        })
        .fold(0.0, f64::max)
}

/// The largest magnitude expected of each kind of gradient in the
/// encrypted backward pass, in its layout (queries' gradients are of
/// `Q' = 2c·Q`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradientBounds {
    /// The residual stream's.
    pub stream: f64,
    /// LayerNorm outputs'.
    pub normalized: f64,
    /// The feed-forward's (GLU product, up projection, gate).
    pub ffn: f64,
    /// The attention context's.
    pub context: f64,
    /// The kernels' and the exponents' (`∂S`, `∂E`).
    pub kernel: f64,
    /// `∂E`'s row sums over `2c` and column sums times `2c` (the terms of
    /// the queries' and keys' gradients along themselves).
    pub row_sum: f64,
    /// `∂Q'`, `∂K`, `∂V`.
    pub projection: f64,
    /// Inside the head (before tanh, the bottleneck).
    pub head: f64,
    /// The backward runs on the logits' gradient times this power of two
    /// (loss scaling), so that its largest values come near 1 and
    /// bootstrapping's error, which scales with the bounds (at least 1),
    /// stays small beside them; the bounds above are of the scaled
    /// gradients. The returned gradients are divided back (a relabelling
    /// of their scales).
    pub loss_scale: f64,
}

/// The largest loss scale: `2^20`.
const MAX_LOSS_SCALE: f64 = 1_048_576.0;

impl GradientBounds {
    /// Every bound: the largest magnitudes the twin's exact backward
    /// reaches on `inputs`, for the cross-entropy's gradient of every
    /// label, times the loss scale (the power of two that brings the
    /// largest of them, or the logits' gradient, to at most 1; up to
    /// `2^20`) and `margin` (at least 1), and at least 1.
    ///
    /// Errors: those of the twin's forward, an empty `inputs`, a margin
    /// below 1.
    pub fn calibrate(
        model: &FriendlyModel,
        inputs: &[(ArrayView2<f64>, &[bool])],
        margin: f64,
    ) -> Result<Self> {
        check_calibration("GradientBounds::calibrate", inputs.len(), margin)?;
        let config = model.config();
        let c = 1.0 / (2.0 * (config.head_size() as f64).sqrt());
        let backprop = FriendlyBackprop::new(config.clone())?;
        let weights = model.weights();
        let mut bounds = Self {
            stream: 0.0,
            normalized: 0.0,
            ffn: 0.0,
            context: 0.0,
            kernel: 0.0,
            row_sum: 0.0,
            projection: 0.0,
            head: 0.0,
            loss_scale: 1.0,
        };
        let mut logits_gradient = 0.0_f64;
        for (embeddings, mask) in inputs {
            let (logits, tape) = backprop.forward(weights, *embeddings, mask)?;
            for label in 0..config.classes {
                let (_, d_logits) = cross_entropy(logits.view(), label)?;
                logits_gradient = d_logits.iter().fold(logits_gradient, |m, v| m.max(v.abs()));
                bounds.head = bounds.head.max(head_gradient_bound(
                    &weights.head,
                    &tape.head,
                    d_logits.view(),
                ));
                let mut gradient = weights.zeroed();
                backprop.backward_probed(
                    weights,
                    tape.clone(),
                    d_logits.view(),
                    &mut gradient,
                    &mut |probe, values| {
                        let largest = values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
                        let (slot, value) = match probe {
                            GradientProbe::Output
                            | GradientProbe::Attended
                            | GradientProbe::Input => (&mut bounds.stream, largest),
                            GradientProbe::Normalized => (&mut bounds.normalized, largest),
                            GradientProbe::Glu
                            | GradientProbe::Up
                            | GradientProbe::Activated
                            | GradientProbe::Gate => (&mut bounds.ffn, largest),
                            GradientProbe::Context => (&mut bounds.context, largest),
                            GradientProbe::Attention(
                                AttentionProbe::Weights | AttentionProbe::Exponents,
                            ) => (&mut bounds.kernel, largest),
                            GradientProbe::Attention(AttentionProbe::RowSums) => {
                                (&mut bounds.row_sum, largest / (2.0 * c))
                            }
                            GradientProbe::Attention(AttentionProbe::ColumnSums) => {
                                (&mut bounds.row_sum, largest * 2.0 * c)
                            }
                            GradientProbe::Queries => (&mut bounds.projection, largest / (2.0 * c)),
                            GradientProbe::Keys | GradientProbe::Values => {
                                (&mut bounds.projection, largest)
                            }
                        };
                        *slot = slot.max(value);
                    },
                );
            }
        }
        let raw = [
            bounds.stream,
            bounds.normalized,
            bounds.ffn,
            bounds.context,
            bounds.kernel,
            bounds.row_sum,
            bounds.projection,
            bounds.head,
            logits_gradient,
        ];
        let largest = raw.iter().fold(0.0_f64, |m, &v| m.max(v));
        let loss_scale = if largest > 0.0 {
            2f64.powf((1.0 / largest).log2().floor())
                .clamp(1.0, MAX_LOSS_SCALE)
        } else {
            1.0
        };
        let bound = |v: f64| (v * loss_scale * margin).max(1.0);
        Ok(Self {
            stream: bound(bounds.stream),
            normalized: bound(bounds.normalized),
            ffn: bound(bounds.ffn),
            context: bound(bounds.context),
            kernel: bound(bounds.kernel),
            row_sum: bound(bounds.row_sum),
            projection: bound(bounds.projection),
            head: bound(bounds.head),
            loss_scale,
        })
    }
}

/// The largest gradient inside the head: tanh's output's, its input's and
/// the bottleneck's.
fn head_gradient_bound(head: &FriendlyHead, tape: &HeadTape, d_logits: ArrayView1<f64>) -> f64 {
    let d_hidden = d_logits
        .insert_axis(Axis(0))
        .dot(&head.classifier.weight.t());
    let d_pre_tanh = &d_hidden * &tape.hidden.mapv(|t| 1.0 - t * t);
    let d_bottleneck = d_pre_tanh.dot(&head.widen.weight.t());
    [d_hidden, d_pre_tanh, d_bottleneck]
        .iter()
        .flat_map(|m| m.iter())
        .fold(0.0_f64, |m, v| m.max(v.abs()))
}
