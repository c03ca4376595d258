//! The classification head both models share, `x ↦ tanh((x·W₁ + b₁)·W₂ +
//! b₂)·W₃ + b₃` on one feature row ([`FriendlyHead`]), its backward, and
//! [`HeadClassifier`]: the head alone as a [`Differentiable`] model whose
//! input is the feature row (training a head on a frozen body).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use super::classifier::Differentiable;
use super::ops::{
    check_dense, check_sequence, dense, dense_backward_input, dense_backward_weights, Functions,
};
use crate::error::Result;
use crate::model::friendly::FriendlyHead;

/// The head's intermediate rows (`1 × width` each).
#[derive(Clone, Debug)]
pub struct HeadTape {
    pub input: Array2<f64>,
    pub bottleneck: Array2<f64>,
    /// tanh's input.
    pub pre_tanh: Array2<f64>,
    pub hidden: Array2<f64>,
}

/// The logits of one feature row, with the tape (tanh from `functions`).
pub fn head_forward(
    head: &FriendlyHead,
    features: ArrayView1<f64>,
    functions: &Functions,
) -> (Array1<f64>, HeadTape) {
    let input = features.to_owned().insert_axis(Axis(0));
    let bottleneck = dense(&head.bottleneck, input.view());
    let pre_tanh = dense(&head.widen, bottleneck.view());
    let hidden = pre_tanh.mapv(|x| functions.tanh(x));
    let logits = dense(&head.classifier, hidden.view()).index_axis_move(Axis(0), 0);
    (
        logits,
        HeadTape {
            input,
            bottleneck,
            pre_tanh,
            hidden,
        },
    )
}

/// Adds the head's gradient and returns the features' gradient.
pub fn head_backward(
    head: &FriendlyHead,
    tape: &HeadTape,
    d_logits: ArrayView1<f64>,
    gradient: &mut FriendlyHead,
) -> Array1<f64> {
    let d_logits = d_logits.insert_axis(Axis(0));
    dense_backward_weights(tape.hidden.view(), d_logits, &mut gradient.classifier);
    let mut d_pre_tanh = dense_backward_input(&head.classifier, d_logits);
    d_pre_tanh.zip_mut_with(&tape.hidden, |d, &t| *d *= 1.0 - t * t);
    dense_backward_weights(
        tape.bottleneck.view(),
        d_pre_tanh.view(),
        &mut gradient.widen,
    );
    let d_bottleneck = dense_backward_input(&head.widen, d_pre_tanh.view());
    dense_backward_weights(
        tape.input.view(),
        d_bottleneck.view(),
        &mut gradient.bottleneck,
    );
    dense_backward_input(&head.bottleneck, d_bottleneck.view()).index_axis_move(Axis(0), 0)
}

/// Checks the head's chain of shapes from `hidden` inputs, and finiteness.
pub fn check_head(head: &FriendlyHead, hidden: usize) -> Result<()> {
    let bottleneck = head.bottleneck.bias.len();
    let width = head.widen.bias.len();
    check_dense("head bottleneck", &head.bottleneck, hidden, bottleneck)?;
    check_dense("head widen", &head.widen, bottleneck, width)?;
    check_dense(
        "head classifier",
        &head.classifier,
        width,
        head.classifier.bias.len(),
    )
}

/// The head alone: the input is one feature row (`1 × hidden`, mask
/// `[true]`).
#[derive(Clone, Copy, Debug)]
pub struct HeadClassifier {
    pub hidden: usize,
}

impl Differentiable for HeadClassifier {
    type Weights = FriendlyHead;
    type Tape = HeadTape;

    fn check_weights(&self, weights: &FriendlyHead) -> Result<()> {
        check_head(weights, self.hidden)
    }

    fn forward(
        &self,
        weights: &FriendlyHead,
        input: ArrayView2<f64>,
        mask: &[bool],
    ) -> Result<(Array1<f64>, HeadTape)> {
        check_sequence("HeadClassifier::forward", input, mask, self.hidden, 1)?;
        Ok(head_forward(weights, input.row(0), &Functions::Exact))
    }

    fn backward(
        &self,
        weights: &FriendlyHead,
        tape: HeadTape,
        d_logits: ArrayView1<f64>,
        gradient: &mut FriendlyHead,
    ) {
        head_backward(weights, &tape, d_logits, gradient);
    }
}
