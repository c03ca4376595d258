//! The seam between models and training: a classifier with a forward that
//! records a tape and a backward that turns the logits' gradient into the
//! weights' gradient, and the labelled samples it is trained on.
//!
//! A loss is separate from the model: [`loss_gradient`] uses the
//! cross-entropy, and a later user (the encrypted fine-tuning's checks) can
//! feed any `∂loss/∂logits` to [`Differentiable::backward`].

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use super::ops::cross_entropy;
use super::params::Parameters;
use crate::error::Result;
use crate::model::friendly::FriendlyHead;

/// One labelled sequence: its input rows (`n × hidden`), the mask of its
/// real tokens, its class.
#[derive(Clone, Debug)]
pub struct Sample {
    pub input: Array2<f64>,
    pub mask: Vec<bool>,
    pub label: usize,
}

/// A model whose logits can be differentiated with respect to its weights.
pub trait Differentiable: Sync {
    /// The weights (and, with the same type, their gradient).
    type Weights: Parameters;
    /// What the backward needs of one forward.
    type Tape: Send;

    /// Checks the weights' shapes against the model and that they are
    /// finite (once per training or evaluation run, not per sequence).
    ///
    /// Errors: [`Error::InvalidParameters`](crate::Error::InvalidParameters)
    /// or [`Error::LengthMismatch`](crate::Error::LengthMismatch) naming the
    /// first bad tensor.
    fn check_weights(&self, weights: &Self::Weights) -> Result<()>;

    /// The logits of one sequence and the tape of the computation.
    ///
    /// Errors: an input the model does not take (shape, mask, values).
    fn forward(
        &self,
        weights: &Self::Weights,
        input: ArrayView2<f64>,
        mask: &[bool],
    ) -> Result<(Array1<f64>, Self::Tape)>;

    /// Adds `∂loss/∂weights` to `gradient`, given `d_logits = ∂loss/∂logits`.
    fn backward(
        &self,
        weights: &Self::Weights,
        tape: Self::Tape,
        d_logits: ArrayView1<f64>,
        gradient: &mut Self::Weights,
    );
}

/// A differentiable body followed by the shared classification head.
pub trait HeadedClassifier: Differentiable {
    /// The head's input for one sequence (the body's output, first token).
    fn features(
        &self,
        weights: &Self::Weights,
        input: ArrayView2<f64>,
        mask: &[bool],
    ) -> Result<Array1<f64>>;

    /// The head inside the weights.
    fn head_mut(weights: &mut Self::Weights) -> &mut FriendlyHead;
}

/// Adds the gradient of `scale ·` the cross-entropy of `sample` to
/// `gradient`; returns the (unscaled) loss and the logits.
pub fn loss_gradient<M: Differentiable>(
    model: &M,
    weights: &M::Weights,
    sample: &Sample,
    scale: f64,
    gradient: &mut M::Weights,
) -> Result<(f64, Array1<f64>)> {
    let (logits, tape) = model.forward(weights, sample.input.view(), &sample.mask)?;
    let (loss, d_logits) = cross_entropy(logits.view(), sample.label)?;
    model.backward(weights, tape, (d_logits * scale).view(), gradient);
    Ok((loss, logits))
}

/// The index of the largest logit (the first on ties).
pub fn predicted_class(logits: ArrayView1<f64>) -> usize {
    logits
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(best, max), (index, &value)| {
            if value > max {
                (index, value)
            } else {
                (best, max)
            }
        })
        .0
}
