//! Public gradient scales: before the optimizer, each trained tensor's
//! gradient is divided by a power of two `s` fixed before training, so that
//! every tensor reaches the optimizer at the same typical size, whatever
//! its own: the adapters' gradients are a hundredth of the head's, the
//! head's second weight's a thousandth.
//!
//! AdamW is invariant to a gradient's scale except through `ε`: the scaled
//! step is AdamW on the unscaled gradient with `ε·s²` for that tensor. The
//! encrypted optimizer needs a large `ε` (its inverse square root is fitted
//! on `[ε, G² + ε]`, [`EncryptedAdamW`](super::adamw::EncryptedAdamW)), and
//! below `√ε` AdamW's step shrinks with the gradient: unscaled, the
//! adapters would hardly move. A power of two makes the division exact and
//! free, in `f64` and under encryption alike (there a relabelling of the
//! ciphertext's scale).
//!
//! [`GradientScales::calibrate`] takes, for each tensor, the root mean
//! square of the twin's per-example gradients over calibration inputs and
//! every label, and the power of two at or above it divided by a target
//! (the optimizer's clip level `G`): a typical example's scaled gradient
//! lies near `G`, a batch's mean well inside `[−G, G]` and well above
//! `√ε`. Elements beyond `G` exist (the gradients are heavy-tailed, and
//! they grow as training moves the adapters); the optimizer clips them
//! ([`CompositeClip`](crate::approx::CompositeClip)).
//!
//! An adapter's `A` takes its `B`'s scale: `∂A = xᵀ·∂Y·Bᵀ` is zero at the
//! start (`B = 0`), and it stays comparable to `∂B = (x·A)ᵀ·∂Y` as
//! long as `B` stays comparable to `A`.
//!
//! The scales are public: they come from the model's weights and public
//! calibration sentences, as the bootstrapping bounds do.

use ndarray::ArrayView2;

use super::finetune::TwinFineTuning;
use crate::ckks::Ciphertext;
use crate::error::{Error, Result};
use crate::model::friendly::FriendlyWeights;

const OP: &str = "GradientScales";

/// The smallest scale: no gradient is magnified more than 2^8. Under
/// encryption a tensor's gradient carries the CKKS noise of a bound the
/// backward shares with much larger gradients; magnified by 2^12 (the
/// head's second weight at MiniLM's size) that noise can reach `√ε`, where
/// AdamW turns it into steps as large as the true ones.
const SMALLEST_SCALE: f64 = 1.0 / 256.0;

/// One power of two per trained tensor, in the twin's flat order
/// ([`trained_parameters`](super::finetune::trained_parameters) or
/// [`full_parameters`](super::finetune::full_parameters)).
#[derive(Clone, Debug, PartialEq)]
pub struct GradientScales {
    scales: Vec<f64>,
}

impl GradientScales {
    /// Scales of 1 for `tensors` tensors: the gradients as they are.
    pub fn unit(tensors: usize) -> Self {
        Self {
            scales: vec![1.0; tensors],
        }
    }

    /// The scales of `twin`'s trained tensors at `weights` (see the module
    /// docs): the root mean square of the gradients of `inputs` under each
    /// of `classes` labels, over `target`, rounded up to a power of two (1
    /// for a tensor whose gradients are all zero), and at least 2^−8.
    ///
    /// Errors: no input, no class, a target that is not finite and
    /// positive, the twin's errors.
    pub fn calibrate(
        twin: &TwinFineTuning,
        weights: &FriendlyWeights,
        inputs: &[(ArrayView2<'_, f64>, &[bool])],
        classes: usize,
        target: f64,
    ) -> Result<Self> {
        if inputs.is_empty() || classes == 0 || !(target > 0.0 && target.is_finite()) {
            return Err(Error::InvalidParameters(format!(
                "{OP}: {} inputs, {classes} classes, target {target}: needs inputs, classes and a positive target",
                inputs.len()
            )));
        }
        let mut squares: Vec<(f64, usize)> = Vec::new();
        for &(embeddings, mask) in inputs {
            for label in 0..classes {
                let (_, gradients) = twin.gradient(weights, &[(embeddings, mask, label)])?;
                squares.resize(gradients.len(), (0.0, 0));
                for ((sum, count), g) in squares.iter_mut().zip(&gradients) {
                    *sum += g.iter().map(|x| x * x).sum::<f64>();
                    *count += g.len();
                }
            }
        }
        let mut scales: Vec<f64> = squares
            .iter()
            .map(|&(sum, count)| {
                power_of_two_above((sum / count.max(1) as f64).sqrt() / target).max(SMALLEST_SCALE)
            })
            .collect();
        for pair in scales[..2 * twin.adapter_count()].chunks_mut(2) {
            pair[0] = pair[1];
        }
        Ok(Self { scales })
    }

    /// The scale of each tensor.
    pub fn scales(&self) -> &[f64] {
        &self.scales
    }

    /// Divides each tensor of `gradients` (the twin's flat order) by its
    /// scale.
    ///
    /// Errors: another number of tensors than the scales'.
    pub fn divide(&self, gradients: &mut [Vec<f64>]) -> Result<()> {
        self.check(gradients.len())?;
        for (g, &s) in gradients.iter_mut().zip(&self.scales) {
            g.iter_mut().for_each(|x| *x /= s);
        }
        Ok(())
    }

    /// Divides each ciphertext of `gradients` by the scale of its tensor,
    /// `tensors[i]` for ciphertext `i`
    /// ([`EncryptedAdapters::tensor_indices`](super::EncryptedAdapters::tensor_indices)):
    /// exact, by relabelling its scale.
    ///
    /// Errors: lists of different lengths, a tensor index beyond the
    /// scales.
    pub fn divide_encrypted(&self, tensors: &[usize], gradients: &mut [Ciphertext]) -> Result<()> {
        if tensors.len() != gradients.len() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: gradients.len(),
                expected: tensors.len(),
            });
        }
        if let Some(&last) = tensors.iter().max() {
            self.check(last + 1)?;
        }
        for (ct, &t) in gradients.iter_mut().zip(tensors) {
            ct.scale *= self.scales[t];
        }
        Ok(())
    }

    /// Checks that `tensors` tensors have scales.
    fn check(&self, tensors: usize) -> Result<()> {
        if tensors == self.scales.len() {
            Ok(())
        } else {
            Err(Error::LengthMismatch {
                op: OP,
                got: tensors,
                expected: self.scales.len(),
            })
        }
    }
}

/// The smallest power of two at least `x` (1 for 0).
fn power_of_two_above(x: f64) -> f64 {
    if x > 0.0 {
        2f64.powi(x.log2().ceil() as i32)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_of_two_round_up() {
        assert_eq!(power_of_two_above(6.0), 8.0);
        assert_eq!(power_of_two_above(8.0), 8.0);
        assert_eq!(power_of_two_above(0.003), 1.0 / 256.0);
        assert_eq!(power_of_two_above(0.0), 1.0);
    }

    #[test]
    fn divide_checks_the_tensor_count() {
        let scales = GradientScales {
            scales: vec![2.0, 0.5],
        };
        let mut g = vec![vec![1.0, -4.0], vec![0.25]];
        scales.divide(&mut g).unwrap();
        assert_eq!(g, vec![vec![0.5, -2.0], vec![0.5]]);
        assert!(scales.divide(&mut [vec![1.0]]).is_err());
        assert!(scales.divide_encrypted(&[0, 1], &mut []).is_err());
    }
}
