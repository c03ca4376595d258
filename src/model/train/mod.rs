//! The plaintext adaptation step: gradients of the friendly model (exact
//! variant) and of the exact BERT layers under a shared classification
//! head, AdamW, the training loop, and what turns MiniLM's first layers
//! into an adapted friendly model.
//!
//! - [`params`]: weights as named tensors (optimizer, gradient sums,
//!   files), the [`Trainable`](params::Trainable) selections;
//! - [`ops`]: dense/LoRA, LayerNorm, activations, cross-entropy, forward
//!   and backward, shared by both models;
//! - [`attention`]: multi-head attention with the Gaussian or softmax
//!   kernel, forward and backward;
//! - [`head`]: the shared head and the head-only model;
//! - [`classifier`]: the [`Differentiable`](classifier::Differentiable)
//!   seam and the samples;
//! - [`friendly`]: the friendly model's backward;
//! - [`exact`]: the exact BERT layers' backward (the baseline);
//! - [`adamw`]: AdamW and the learning-rate schedule;
//! - [`trainer`]: mini-batch training and evaluation with rayon.
//!
//! Invariant: each model's forward here computes what its inference code
//! computes (tested against
//! [`FriendlyModel::forward`](crate::model::friendly::FriendlyModel::forward)
//! and [`ReferenceBert`](crate::model::reference::ReferenceBert)), and each
//! backward is checked against central finite differences on tiny shapes.

pub mod adamw;
pub mod adapt;
pub mod attention;
pub mod calibrate;
pub mod checkpoint;
pub mod classifier;
pub mod exact;
pub mod friendly;
pub mod head;
pub mod ops;
pub mod params;
pub mod trainer;

#[cfg(test)]
mod tests;
