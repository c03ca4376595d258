//! The differentiable pieces both models are built from, on rows
//! (`n × width` matrices, one token per row): dense layers with optional
//! LoRA, LayerNorm, the activations' derivatives, and the cross-entropy.
//!
//! Each forward computes exactly what the inference code computes (the
//! friendly model's [`dense`] and [`project`] are reused; LayerNorm performs
//! the same operations in the same order as
//! [`FriendlyModel::forward`](crate::model::friendly::FriendlyModel::forward)),
//! and keeps what its backward needs in a tape. Backward functions *add*
//! the weights' gradients into a gradient of the weights' own type (so one
//! gradient accumulates a batch) and *return* the input's gradient.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use crate::approx::Approximation;
use crate::error::{Error, Result};
use crate::model::activation::erf;
pub(crate) use crate::model::friendly::forward::{dense, project};
use crate::model::friendly::{Dense, FittedNonLinearities, Projection};
use crate::model::weights::LayerNormWeights;

/// Adds `∂/∂W = xᵀ·dy` and `∂/∂b = Σ_rows dy` of `y = x·W + b`.
pub fn dense_backward_weights(x: ArrayView2<f64>, dy: ArrayView2<f64>, gradient: &mut Dense) {
    general_mat_mul(1.0, &x.t(), &dy, 1.0, &mut gradient.weight);
    gradient.bias += &dy.sum_axis(Axis(0));
}

/// `∂/∂x = dy·Wᵀ` of `y = x·W + b`.
pub fn dense_backward_input(layer: &Dense, dy: ArrayView2<f64>) -> Array2<f64> {
    dy.dot(&layer.weight.t())
}

/// Adds the gradients of `y = x·W + b + (x·A)·B` with respect to `W`, `b`,
/// and (when present) `A`, `B`.
pub fn project_backward_weights(
    projection: &Projection,
    x: ArrayView2<f64>,
    dy: ArrayView2<f64>,
    gradient: &mut Projection,
) {
    dense_backward_weights(x, dy, &mut gradient.dense);
    if let (Some(lora), Some(lora_gradient)) = (&projection.lora, &mut gradient.lora) {
        let xa = x.dot(&lora.a);
        general_mat_mul(1.0, &xa.t(), &dy, 1.0, &mut lora_gradient.b);
        let d_xa = dy.dot(&lora.b.t());
        general_mat_mul(1.0, &x.t(), &d_xa, 1.0, &mut lora_gradient.a);
    }
}

/// `∂/∂x` of `y = x·W + b + (x·A)·B`.
pub fn project_backward_input(projection: &Projection, dy: ArrayView2<f64>) -> Array2<f64> {
    let mut dx = dense_backward_input(&projection.dense, dy);
    if let Some(lora) = &projection.lora {
        dx += &dy.dot(&lora.b.t()).dot(&lora.a.t());
    }
    dx
}

/// The non-linear functions a taped forward evaluates and its backward
/// differentiates: exact, or the polynomials of the encrypted circuit
/// (whose backward takes ReLU's derivative as the composite's step and
/// tanh's as `1 − t²` of the polynomial's `t`, as the circuit does).
#[derive(Clone, Debug)]
pub enum Functions {
    Exact,
    Polynomial(Box<FittedNonLinearities>),
}

impl Functions {
    /// `1/√v` of LayerNorm.
    pub fn inv_sqrt(&self, v: f64) -> f64 {
        match self {
            Functions::Exact => 1.0 / v.sqrt(),
            Functions::Polynomial(f) => f.approximations()[2].eval(v),
        }
    }

    /// `e^x` of the Gaussian kernel.
    pub fn exp(&self, x: f64) -> f64 {
        match self {
            Functions::Exact => x.exp(),
            Functions::Polynomial(f) => f.approximations()[0].eval(x),
        }
    }

    /// `max(0, x)`.
    pub fn relu(&self, x: f64) -> f64 {
        match self {
            Functions::Exact => x.max(0.0),
            Functions::Polynomial(f) => {
                let bound = f.ranges().relu_bound;
                bound * f.approximations()[1].eval(x / bound)
            }
        }
    }

    /// ReLU's derivative (0 at 0), or the composite's step at `x/B`.
    pub fn relu_derivative(&self, x: f64) -> f64 {
        match self {
            Functions::Exact => relu_derivative(x),
            Functions::Polynomial(f) => match f.approximations()[1] {
                Approximation::CompositeRelu(relu) => relu.step(x / f.ranges().relu_bound),
                other => relu_derivative(other.eval(x)),
            },
        }
    }

    /// `tanh(x)`.
    pub fn tanh(&self, x: f64) -> f64 {
        match self {
            Functions::Exact => x.tanh(),
            Functions::Polynomial(f) => f.approximations()[3].eval(x),
        }
    }
}

/// What LayerNorm's backward needs: `x̂ = (x − μ)·s` and `s = (σ² + eps)^(−1/2)`
/// per row.
#[derive(Clone, Debug)]
pub struct NormTape {
    pub normalized: Array2<f64>,
    pub inverse_deviation: Array1<f64>,
}

impl NormTape {
    /// Each row's `σ² + eps` (the inverse square root's input).
    pub fn variances(&self) -> impl Iterator<Item = f64> + '_ {
        self.inverse_deviation.iter().map(|s| 1.0 / (s * s))
    }
}

/// `γ·(x − μ)·(σ² + eps)^(−1/2) + β` for every row (biased variance), the
/// inverse square root from `functions`.
pub fn layer_norm(
    norm: &LayerNormWeights,
    x: ArrayView2<f64>,
    eps: f64,
    functions: &Functions,
) -> (Array2<f64>, NormTape) {
    let mut normalized = x.to_owned();
    let width = normalized.ncols() as f64;
    let mut inverse_deviation = Array1::zeros(normalized.nrows());
    for (mut row, inverse) in normalized
        .rows_mut()
        .into_iter()
        .zip(&mut inverse_deviation)
    {
        let mean = row.sum() / width;
        row.mapv_inplace(|v| v - mean);
        let variance = row.dot(&row) / width;
        *inverse = functions.inv_sqrt(variance + eps);
        row *= *inverse;
    }
    let output = &normalized * &norm.gamma + &norm.beta;
    (
        output,
        NormTape {
            normalized,
            inverse_deviation,
        },
    )
}

/// Adds `∂/∂γ`, `∂/∂β` and returns `∂/∂x`:
/// `dx = s·(g − mean(g) − x̂·mean(g ⊙ x̂))` with `g = dy ⊙ γ`, per row.
pub fn layer_norm_backward(
    norm: &LayerNormWeights,
    tape: &NormTape,
    dy: ArrayView2<f64>,
    gradient: &mut LayerNormWeights,
) -> Array2<f64> {
    gradient.gamma += &(&dy * &tape.normalized).sum_axis(Axis(0));
    gradient.beta += &dy.sum_axis(Axis(0));
    let mut dx = &dy * &norm.gamma;
    let width = dx.ncols() as f64;
    for ((mut row, normalized), &inverse) in dx
        .rows_mut()
        .into_iter()
        .zip(tape.normalized.rows())
        .zip(&tape.inverse_deviation)
    {
        let mean = row.sum() / width;
        let projection = row.dot(&normalized) / width;
        row.zip_mut_with(&normalized, |g, &x| {
            *g = inverse * (*g - mean - x * projection)
        });
    }
    dx
}

/// ReLU's derivative (0 at 0).
pub fn relu_derivative(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// The derivative of the erf GELU: `Φ(x) + x·φ(x)`.
pub fn gelu_derivative(x: f64) -> f64 {
    let cdf = 0.5 * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2));
    let density = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    cdf + x * density
}

/// The cross-entropy `−log softmax(logits)[label]` and its gradient
/// `softmax(logits) − onehot(label)`.
///
/// Errors: [`Error::OutOfRange`] for a label outside the logits.
pub fn cross_entropy(logits: ArrayView1<f64>, label: usize) -> Result<(f64, Array1<f64>)> {
    if label >= logits.len() {
        return Err(Error::OutOfRange {
            op: "cross_entropy",
            detail: format!("label {label} of {} classes", logits.len()),
        });
    }
    let max = logits.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let mut probabilities = logits.mapv(|v| (v - max).exp());
    let total = probabilities.sum();
    probabilities /= total;
    let loss = total.ln() + max - logits[label];
    probabilities[label] -= 1.0;
    Ok((loss, probabilities))
}

/// Checks that `dense` maps `inputs` to `outputs` values and is finite.
pub(crate) fn check_dense(what: &str, dense: &Dense, inputs: usize, outputs: usize) -> Result<()> {
    if dense.weight.dim() != (inputs, outputs) || dense.bias.len() != outputs {
        return Err(Error::InvalidParameters(format!(
            "{what}: weight {:?} and bias {}, expected {:?} and {outputs}",
            dense.weight.dim(),
            dense.bias.len(),
            (inputs, outputs)
        )));
    }
    check_finite(what, dense.weight.iter().chain(&dense.bias))
}

/// Checks that `norm` has `width` scales and shifts, finite.
pub(crate) fn check_norm(what: &str, norm: &LayerNormWeights, width: usize) -> Result<()> {
    if norm.gamma.len() != width || norm.beta.len() != width {
        return Err(Error::InvalidParameters(format!(
            "{what}: {} scales and {} shifts, expected {width}",
            norm.gamma.len(),
            norm.beta.len()
        )));
    }
    check_finite(what, norm.gamma.iter().chain(&norm.beta))
}

fn check_finite<'a>(what: &str, mut values: impl Iterator<Item = &'a f64>) -> Result<()> {
    if values.any(|v| !v.is_finite()) {
        return Err(Error::InvalidParameters(format!(
            "{what}: a value is not finite"
        )));
    }
    Ok(())
}

/// Checks a sequence for a model: `1 ≤ n ≤ max_rows`, width `hidden`, a
/// mask of length `n` with at least one real token, finite values.
pub(crate) fn check_sequence(
    op: &'static str,
    input: ArrayView2<f64>,
    mask: &[bool],
    hidden: usize,
    max_rows: usize,
) -> Result<()> {
    let (rows, width) = input.dim();
    let out_of_range = |detail: String| Err(Error::OutOfRange { op, detail });
    if rows == 0 || rows > max_rows {
        return out_of_range(format!(
            "sequence of {rows} tokens, the model takes 1 to {max_rows}"
        ));
    }
    if width != hidden {
        return Err(Error::LengthMismatch {
            op,
            got: width,
            expected: hidden,
        });
    }
    if mask.len() != rows {
        return Err(Error::LengthMismatch {
            op,
            got: mask.len(),
            expected: rows,
        });
    }
    if !mask.contains(&true) {
        return out_of_range("the mask hides every token".into());
    }
    if input.iter().any(|v| !v.is_finite()) {
        return out_of_range("an input value is not finite".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_values() {
        let (loss, gradient) = cross_entropy(ndarray::arr1(&[0.0, 0.0]).view(), 1).unwrap();
        assert!((loss - 2.0_f64.ln()).abs() < 1e-15);
        assert_eq!(gradient, ndarray::arr1(&[0.5, -0.5]));
        // Large logits do not overflow.
        let (loss, _) = cross_entropy(ndarray::arr1(&[1000.0, 0.0]).view(), 0).unwrap();
        assert!(loss.abs() < 1e-15);
        assert!(cross_entropy(ndarray::arr1(&[1.0]).view(), 1).is_err());
    }

    #[test]
    fn gelu_derivative_matches_differences() {
        use crate::model::activation::gelu;
        for x in [-4.0, -1.3, -0.2, 0.0, 0.7, 2.5] {
            let h = 1e-6;
            let numeric = (gelu(x + h) - gelu(x - h)) / (2.0 * h);
            assert!((gelu_derivative(x) - numeric).abs() < 1e-9, "{x}");
        }
    }
}
