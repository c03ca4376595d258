//! Multi-head attention and its backward, with either kernel.
//!
//! Queries are the first `m` rows (`m ≤ n`), keys and values all `n` rows
//! of a sequence; head `h` owns columns `h·d..(h+1)·d`. Per head, with
//! `m_j ∈ {0, 1}` the key mask:
//!
//! - [`Kernel::Gaussian`] (the friendly model): `e_ij = −(‖q_i‖² + ‖k_j‖² −
//!   2 q_i·k_j)/(2√d)` (formed as the circuit and
//!   [`FriendlyModel::forward`](crate::model::friendly::FriendlyModel::forward)
//!   form it), `S_ij = m_j·exp(e_ij)`, no normalisation;
//! - [`Kernel::Softmax`] (BERT): `e_ij = q_i·k_j/√d`, `S_ij` the softmax of
//!   row `i` over the unmasked keys (masked keys weigh exactly 0), as
//!   [`ReferenceBert`](crate::model::reference::ReferenceBert) computes it.
//!
//! The output is `S·V_h`, heads concatenated. The tape keeps `e` (every
//! entry, masked keys included: the circuit evaluates those exponents too)
//! and `S`. Backward, with `dS = dO·V_hᵀ`, `dV_h = Sᵀ·dO`:
//!
//! - Gaussian: `dE = dS ⊙ S`, `dq_i = −2c(Σ_j dE_ij·q_i − Σ_j dE_ij·k_j)`,
//!   `dk_j = 2c(Σ_i dE_ij·q_i − Σ_i dE_ij·k_j)` with `c = 1/(2√d)`;
//! - softmax: `dE_ij = S_ij(dS_ij − Σ_l S_il dS_il)`, `dQ = dE·K/√d`,
//!   `dK = dEᵀ·Q/√d`.

use crate::model::reference::masked_softmax_rows;
use ndarray::{s, Array2, ArrayView2, Axis};

use super::ops::Functions;
use crate::model::friendly::forward::squared_row_norms;

/// The attention kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// `exp(−‖q − k‖²/(2√d))`, unnormalised.
    Gaussian,
    /// `softmax(q·k/√d)` over the unmasked keys.
    Softmax,
}

/// Per head (`m × n` each): the exponents `e` and the weights `S`.
#[derive(Clone, Debug)]
pub struct AttentionTape {
    pub exponents: Vec<Array2<f64>>,
    pub weights: Vec<Array2<f64>>,
}

/// The gradients of the queries (`m × hidden`), keys and values (`n × hidden`).
pub struct AttentionGradient {
    pub queries: Array2<f64>,
    pub keys: Array2<f64>,
    pub values: Array2<f64>,
}

/// Multi-head attention of `queries` (`m` rows) over `keys` and `values`
/// (`n` rows, `mask` of length `n` with a real key; the callers check it).
pub fn attention(
    (kernel, functions): (Kernel, &Functions),
    heads: usize,
    queries: ArrayView2<f64>,
    keys: ArrayView2<f64>,
    values: ArrayView2<f64>,
    mask: &[bool],
) -> (Array2<f64>, AttentionTape) {
    let head_size = queries.ncols() / heads;
    let mut context = Array2::zeros(queries.raw_dim());
    let mut tape = AttentionTape {
        exponents: Vec::with_capacity(heads),
        weights: Vec::with_capacity(heads),
    };
    for head in 0..heads {
        let columns = s![.., head * head_size..(head + 1) * head_size];
        let (q, k) = (queries.slice(columns), keys.slice(columns));
        let (exponents, weights) = match kernel {
            Kernel::Gaussian => gaussian(q, k, mask, functions),
            Kernel::Softmax => softmax(q, k, mask),
        };
        context
            .slice_mut(columns)
            .assign(&weights.dot(&values.slice(columns)));
        tape.exponents.push(exponents);
        tape.weights.push(weights);
    }
    (context, tape)
}

/// `e` and `S` of the Gaussian kernel for one head.
fn gaussian(
    q: ArrayView2<f64>,
    k: ArrayView2<f64>,
    mask: &[bool],
    functions: &Functions,
) -> (Array2<f64>, Array2<f64>) {
    let scale = 1.0 / (2.0 * (q.ncols() as f64).sqrt());
    let q_norms = squared_row_norms(q);
    let k_norms = squared_row_norms(k);
    let mut exponents = q.dot(&k.t());
    for ((i, j), value) in exponents.indexed_iter_mut() {
        *value = -(q_norms[i] + k_norms[j] - 2.0 * *value) * scale;
    }
    let mut weights = exponents.clone();
    for ((_, j), value) in weights.indexed_iter_mut() {
        *value = if mask[j] { functions.exp(*value) } else { 0.0 };
    }
    (exponents, weights)
}

/// `e` and `S` of the masked softmax for one head.
fn softmax(q: ArrayView2<f64>, k: ArrayView2<f64>, mask: &[bool]) -> (Array2<f64>, Array2<f64>) {
    let exponents = q.dot(&k.t()) * (1.0 / (q.ncols() as f64).sqrt());
    let weights = masked_softmax_rows(exponents.clone(), mask);
    (exponents, weights)
}

/// What [`attention_backward`] shows an observer, per head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionProbe {
    /// `∂S`, the weights' gradient (`m × n`).
    Weights,
    /// `∂e`, the exponents' gradient (`m × n`).
    Exponents,
    /// The row sums of `∂e` (`m × 1`, Gaussian kernel only).
    RowSums,
    /// The column sums of `∂e` (`n × 1`, Gaussian kernel only).
    ColumnSums,
}

/// The gradients of [`attention`]'s inputs given `d_context` (`m × hidden`);
/// `observe` sees the intermediate gradients of every head.
pub fn attention_backward(
    kernel: Kernel,
    queries: ArrayView2<f64>,
    keys: ArrayView2<f64>,
    values: ArrayView2<f64>,
    tape: &AttentionTape,
    d_context: ArrayView2<f64>,
    observe: &mut dyn FnMut(AttentionProbe, ArrayView2<f64>),
) -> AttentionGradient {
    let heads = tape.weights.len();
    let head_size = queries.ncols() / heads;
    let mut gradient = AttentionGradient {
        queries: Array2::zeros(queries.raw_dim()),
        keys: Array2::zeros(keys.raw_dim()),
        values: Array2::zeros(values.raw_dim()),
    };
    for (head, weights) in tape.weights.iter().enumerate() {
        let columns = s![.., head * head_size..(head + 1) * head_size];
        let (q, k, v) = (
            queries.slice(columns),
            keys.slice(columns),
            values.slice(columns),
        );
        let d_out = d_context.slice(columns);
        let d_weights = d_out.dot(&v.t());
        observe(AttentionProbe::Weights, d_weights.view());
        gradient
            .values
            .slice_mut(columns)
            .assign(&weights.t().dot(&d_out));
        let (dq, dk) = match kernel {
            Kernel::Gaussian => {
                let c = 1.0 / (2.0 * (head_size as f64).sqrt());
                let d_exponents = d_weights * weights;
                let row_sums = d_exponents.sum_axis(Axis(1)).insert_axis(Axis(1));
                let column_sums = d_exponents.sum_axis(Axis(0)).insert_axis(Axis(1));
                observe(AttentionProbe::Exponents, d_exponents.view());
                observe(AttentionProbe::RowSums, row_sums.view());
                observe(AttentionProbe::ColumnSums, column_sums.view());
                let dq = (d_exponents.dot(&k) - &q * &row_sums) * (2.0 * c);
                let dk = (d_exponents.t().dot(&q) - &k * &column_sums) * (2.0 * c);
                (dq, dk)
            }
            Kernel::Softmax => {
                let inverse_root = 1.0 / (head_size as f64).sqrt();
                let mut d_exponents = d_weights * weights;
                let row_sums = d_exponents.sum_axis(Axis(1));
                for ((mut row, weight_row), total) in d_exponents
                    .rows_mut()
                    .into_iter()
                    .zip(weights.rows())
                    .zip(&row_sums)
                {
                    row.zip_mut_with(&weight_row, |d, &w| *d -= w * total);
                }
                observe(AttentionProbe::Exponents, d_exponents.view());
                let dq = d_exponents.dot(&k) * inverse_root;
                let dk = d_exponents.t().dot(&q) * inverse_root;
                (dq, dk)
            }
        };
        gradient.queries.slice_mut(columns).assign(&dq);
        gradient.keys.slice_mut(columns).assign(&dk);
    }
    gradient
}
