//! Bounds on the values the encrypted model may bootstrap.
//!
//! A bootstrap needs a bound on its input's magnitude (its absolute error
//! grows with it, see [`crate::circuits::refresh`]), and a value beyond its
//! bound corrupts every slot of the ciphertext, not only its own. The
//! bounds are measured on the plaintext twin ([`ActivationBounds::calibrate`],
//! the polynomial variant, on inputs like the ones to be served) and
//! multiplied by a margin.

use ndarray::{ArrayView2, Axis};

use crate::error::{Error, Result};
use crate::model::friendly::{FriendlyModel, Probe, Variant};

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
        if inputs.is_empty() || !(margin.is_finite() && margin >= 1.0) {
            return Err(Error::OutOfRange {
                op: "ActivationBounds::calibrate",
                detail: format!(
                    "needs inputs ({} given) and a margin of at least 1 ({margin})",
                    inputs.len()
                ),
            });
        }
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
