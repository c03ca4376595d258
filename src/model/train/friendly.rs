//! The friendly transformer's forward with a tape and its backward: the
//! gradient of the plaintext twin, in its exact variant (`exp`,
//! `max(0, x)`, `1/√·`, `tanh` as `f64` computes them) or through the
//! circuit's polynomials ([`Functions`]).
//!
//! The computation is [`FriendlyModel::forward`](crate::model::friendly::FriendlyModel::forward)'s
//! (pre-LN layers, Gaussian-kernel attention, ReLU-GLU, optional final
//! LayerNorm, the head on the first row), operation for operation, with one
//! shortcut: the head reads only the first row, so the last layer computes
//! its queries, attention, residual and feed-forward for the first row
//! alone (keys and values still come from every row). Logits and gradients
//! are unchanged by this; [`FriendlyBackprop::forward_all_rows`] runs every
//! row of every layer, as the circuit does, for range measurements.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};

use super::attention::{attention, attention_backward, AttentionProbe, AttentionTape, Kernel};
use super::classifier::{Differentiable, HeadedClassifier};
use super::head::{head_backward, head_forward, HeadTape};
use super::ops::{
    check_sequence, dense, dense_backward_input, dense_backward_weights, layer_norm,
    layer_norm_backward, project, project_backward_input, project_backward_weights, Functions,
    NormTape,
};
use crate::error::Result;
use crate::model::friendly::{
    AttentionKernel, FriendlyConfig, FriendlyHead, FriendlyLayer, FriendlyWeights,
};

/// One layer's forward, for `m` output rows of `n` input rows.
#[derive(Clone, Debug)]
pub struct FriendlyLayerTape {
    pub attention_norm: NormTape,
    /// `LN₁(X)` (`n × hidden`).
    pub normed: Array2<f64>,
    pub queries: Array2<f64>,
    pub keys: Array2<f64>,
    pub values: Array2<f64>,
    pub attention: AttentionTape,
    pub context: Array2<f64>,
    /// The residual stream after attention (`m × hidden`).
    pub attended: Array2<f64>,
    pub ffn_norm: NormTape,
    pub ffn_normed: Array2<f64>,
    /// ReLU's input (`m × ffn`).
    pub gate: Array2<f64>,
    pub up: Array2<f64>,
    pub glu: Array2<f64>,
    /// The layer's output: the residual stream after the feed-forward
    /// (`m × hidden`).
    pub output: Array2<f64>,
}

/// One forward of the whole model.
#[derive(Clone, Debug)]
pub struct FriendlyTape {
    pub layers: Vec<FriendlyLayerTape>,
    /// The first row of the last layer's output, before the final norm.
    pub last_first_row: Array2<f64>,
    pub final_norm: Option<NormTape>,
    pub head: HeadTape,
}

/// A gradient inside [`FriendlyBackprop::backward_probed`], shown to its
/// observer (rows × columns as the twin holds them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradientProbe {
    /// A layer's output's.
    Output,
    /// The GLU product's.
    Glu,
    /// The up projection's.
    Up,
    /// ReLU's output's (the gate's before ReLU's derivative).
    Activated,
    /// The gate's.
    Gate,
    /// A LayerNorm output's (with `γ`, `β`), the head's input's included.
    Normalized,
    /// The residual stream's after attention.
    Attended,
    /// The attention context's.
    Context,
    /// Inside the attention, per head.
    Attention(AttentionProbe),
    /// The (unscaled) queries', the keys' and the values'.
    Queries,
    Keys,
    Values,
    /// A layer's input's.
    Input,
}

/// The friendly model's gradients for one config (checked).
#[derive(Clone, Debug)]
pub struct FriendlyBackprop {
    config: FriendlyConfig,
    functions: Functions,
}

impl FriendlyBackprop {
    /// Errors: those of [`FriendlyConfig::check`].
    pub fn new(config: FriendlyConfig) -> Result<Self> {
        Self::with_functions(config, Functions::Exact)
    }

    /// The gradients through `functions`: [`Functions::Polynomial`] gives
    /// the encrypted circuit's own gradient (its polynomials, its
    /// derivative rules), which the encrypted backward is checked against.
    ///
    /// Errors: those of [`FriendlyConfig::check`].
    pub fn with_functions(config: FriendlyConfig, functions: Functions) -> Result<Self> {
        config.check()?;
        Ok(Self { config, functions })
    }

    /// The config.
    pub fn config(&self) -> &FriendlyConfig {
        &self.config
    }

    /// The attention's kernel, from the config. The softmax baseline's
    /// gradients are the exact softmax's in either [`Functions`] (its
    /// circuit's maximum, exp and reciprocal are not mirrored here).
    fn kernel(&self) -> Kernel {
        match self.config.attention {
            AttentionKernel::Gaussian => Kernel::Gaussian,
            AttentionKernel::Softmax => Kernel::Softmax,
        }
    }

    /// The forward with every row of every layer computed (the circuit's
    /// work, padded rows included), and its logits.
    ///
    /// Errors: as [`Differentiable::forward`].
    pub fn forward_all_rows(
        &self,
        weights: &FriendlyWeights,
        input: ArrayView2<f64>,
        mask: &[bool],
    ) -> Result<(Array1<f64>, FriendlyTape)> {
        self.check(input, mask)?;
        Ok(self.run(weights, input, mask, input.nrows()))
    }

    fn check(&self, input: ArrayView2<f64>, mask: &[bool]) -> Result<()> {
        check_sequence(
            "FriendlyBackprop::forward",
            input,
            mask,
            self.config.hidden,
            self.config.seq_len,
        )
    }

    /// The forward with the last layer computing `last_rows` rows.
    fn run(
        &self,
        weights: &FriendlyWeights,
        input: ArrayView2<f64>,
        mask: &[bool],
        last_rows: usize,
    ) -> (Array1<f64>, FriendlyTape) {
        let count = weights.layers.len();
        let mut layers: Vec<FriendlyLayerTape> = Vec::with_capacity(count);
        for (index, layer) in weights.layers.iter().enumerate() {
            let rows = if index + 1 == count {
                last_rows
            } else {
                input.nrows()
            };
            let tape = match layers.last() {
                Some(previous) => self.layer_forward(layer, previous.output.view(), mask, rows),
                None => self.layer_forward(layer, input, mask, rows),
            };
            layers.push(tape);
        }
        let last_first_row = match layers.last() {
            Some(last) => last.output.slice(s![..1, ..]).to_owned(),
            None => input.slice(s![..1, ..]).to_owned(),
        };
        let (head_input, final_norm) = match &weights.final_norm {
            Some(norm) => {
                let (normed, tape) = layer_norm(
                    norm,
                    last_first_row.view(),
                    self.config.layer_norm_eps,
                    &self.functions,
                );
                (normed, Some(tape))
            }
            None => (last_first_row.clone(), None),
        };
        let (logits, head) = head_forward(&weights.head, head_input.row(0), &self.functions);
        (
            logits,
            FriendlyTape {
                layers,
                last_first_row,
                final_norm,
                head,
            },
        )
    }

    fn layer_forward(
        &self,
        layer: &FriendlyLayer,
        input: ArrayView2<f64>,
        mask: &[bool],
        rows: usize,
    ) -> FriendlyLayerTape {
        let eps = self.config.layer_norm_eps;
        let (normed, attention_norm) =
            layer_norm(&layer.attention_norm, input, eps, &self.functions);
        let queries = project(&layer.query, normed.slice(s![..rows, ..]));
        let keys = project(&layer.key, normed.view());
        let values = project(&layer.value, normed.view());
        let (context, attention_tape) = attention(
            (self.kernel(), &self.functions),
            self.config.heads,
            queries.view(),
            keys.view(),
            values.view(),
            mask,
        );
        let attended = &input.slice(s![..rows, ..]) + &project(&layer.output, context.view());
        let (ffn_normed, ffn_norm) =
            layer_norm(&layer.ffn_norm, attended.view(), eps, &self.functions);
        let gate = dense(&layer.gate, ffn_normed.view());
        let up = dense(&layer.up, ffn_normed.view());
        let glu = gate.mapv(|x| self.functions.relu(x)) * &up;
        let output = &attended + &dense(&layer.down, glu.view());
        FriendlyLayerTape {
            attention_norm,
            normed,
            queries,
            keys,
            values,
            attention: attention_tape,
            context,
            attended,
            ffn_norm,
            ffn_normed,
            gate,
            up,
            glu,
            output,
        }
    }

    /// Adds the layer's gradient; returns the gradient of its input.
    fn layer_backward(
        &self,
        layer: &FriendlyLayer,
        tape: &FriendlyLayerTape,
        d_output: Array2<f64>,
        gradient: &mut FriendlyLayer,
        observe: &mut dyn FnMut(GradientProbe, ArrayView2<f64>),
    ) -> Array2<f64> {
        let rows = d_output.nrows();
        observe(GradientProbe::Output, d_output.view());
        // output = attended + (ReLU(gate) ⊙ up)·W_d + b_d
        dense_backward_weights(tape.glu.view(), d_output.view(), &mut gradient.down);
        let d_glu = dense_backward_input(&layer.down, d_output.view());
        observe(GradientProbe::Glu, d_glu.view());
        let d_up = &d_glu * &tape.gate.mapv(|x| self.functions.relu(x));
        let mut d_gate = d_glu * &tape.up;
        observe(GradientProbe::Up, d_up.view());
        observe(GradientProbe::Activated, d_gate.view());
        d_gate.zip_mut_with(&tape.gate, |d, &x| *d *= self.functions.relu_derivative(x));
        observe(GradientProbe::Gate, d_gate.view());
        dense_backward_weights(tape.ffn_normed.view(), d_up.view(), &mut gradient.up);
        dense_backward_weights(tape.ffn_normed.view(), d_gate.view(), &mut gradient.gate);
        let d_ffn_normed = dense_backward_input(&layer.up, d_up.view())
            + dense_backward_input(&layer.gate, d_gate.view());
        observe(GradientProbe::Normalized, d_ffn_normed.view());
        let d_attended = d_output
            + layer_norm_backward(
                &layer.ffn_norm,
                &tape.ffn_norm,
                d_ffn_normed.view(),
                &mut gradient.ffn_norm,
            );
        // attended = input[..rows] + output(context)
        project_backward_weights(
            &layer.output,
            tape.context.view(),
            d_attended.view(),
            &mut gradient.output,
        );
        observe(GradientProbe::Attended, d_attended.view());
        let d_context = project_backward_input(&layer.output, d_attended.view());
        observe(GradientProbe::Context, d_context.view());
        let d = attention_backward(
            self.kernel(),
            tape.queries.view(),
            tape.keys.view(),
            tape.values.view(),
            &tape.attention,
            d_context.view(),
            &mut |probe, values| observe(GradientProbe::Attention(probe), values),
        );
        observe(GradientProbe::Queries, d.queries.view());
        observe(GradientProbe::Keys, d.keys.view());
        observe(GradientProbe::Values, d.values.view());
        let query_rows = tape.normed.slice(s![..rows, ..]);
        project_backward_weights(
            &layer.query,
            query_rows,
            d.queries.view(),
            &mut gradient.query,
        );
        project_backward_weights(
            &layer.key,
            tape.normed.view(),
            d.keys.view(),
            &mut gradient.key,
        );
        project_backward_weights(
            &layer.value,
            tape.normed.view(),
            d.values.view(),
            &mut gradient.value,
        );
        let mut d_normed = project_backward_input(&layer.key, d.keys.view())
            + project_backward_input(&layer.value, d.values.view());
        d_normed
            .slice_mut(s![..rows, ..])
            .scaled_add(1.0, &project_backward_input(&layer.query, d.queries.view()));
        observe(GradientProbe::Normalized, d_normed.view());
        let mut d_input = layer_norm_backward(
            &layer.attention_norm,
            &tape.attention_norm,
            d_normed.view(),
            &mut gradient.attention_norm,
        );
        d_input
            .slice_mut(s![..rows, ..])
            .scaled_add(1.0, &d_attended);
        observe(GradientProbe::Input, d_input.view());
        d_input
    }

    /// [`Differentiable::backward`], showing `observe` every intermediate
    /// gradient.
    pub fn backward_probed(
        &self,
        weights: &FriendlyWeights,
        tape: FriendlyTape,
        d_logits: ArrayView1<f64>,
        gradient: &mut FriendlyWeights,
        observe: &mut dyn FnMut(GradientProbe, ArrayView2<f64>),
    ) {
        let d_head_input = head_backward(&weights.head, &tape.head, d_logits, &mut gradient.head)
            .insert_axis(Axis(0));
        observe(GradientProbe::Normalized, d_head_input.view());
        let d_first_row = match (
            &weights.final_norm,
            &tape.final_norm,
            &mut gradient.final_norm,
        ) {
            (Some(norm), Some(norm_tape), Some(norm_gradient)) => {
                layer_norm_backward(norm, norm_tape, d_head_input.view(), norm_gradient)
            }
            _ => d_head_input,
        };
        let last_rows = tape.layers.last().map_or(1, |last| last.attended.nrows());
        let mut d_stream = Array2::zeros((last_rows, d_first_row.ncols()));
        d_stream.slice_mut(s![..1, ..]).assign(&d_first_row);
        for ((layer, layer_tape), layer_gradient) in weights
            .layers
            .iter()
            .zip(&tape.layers)
            .zip(gradient.layers.iter_mut())
            .rev()
        {
            d_stream = self.layer_backward(layer, layer_tape, d_stream, layer_gradient, observe);
        }
    }
}

impl Differentiable for FriendlyBackprop {
    type Weights = FriendlyWeights;
    type Tape = FriendlyTape;

    fn check_weights(&self, weights: &FriendlyWeights) -> Result<()> {
        weights.check(&self.config)
    }

    fn forward(
        &self,
        weights: &FriendlyWeights,
        input: ArrayView2<f64>,
        mask: &[bool],
    ) -> Result<(Array1<f64>, FriendlyTape)> {
        self.check(input, mask)?;
        Ok(self.run(weights, input, mask, 1))
    }

    fn backward(
        &self,
        weights: &FriendlyWeights,
        tape: FriendlyTape,
        d_logits: ArrayView1<f64>,
        gradient: &mut FriendlyWeights,
    ) {
        self.backward_probed(weights, tape, d_logits, gradient, &mut |_, _| {});
    }
}

impl HeadedClassifier for FriendlyBackprop {
    fn features(
        &self,
        weights: &FriendlyWeights,
        input: ArrayView2<f64>,
        mask: &[bool],
    ) -> Result<Array1<f64>> {
        let (_, tape) = self.forward(weights, input, mask)?;
        Ok(tape.head.input.index_axis_move(Axis(0), 0))
    }

    fn head_mut(weights: &mut FriendlyWeights) -> &mut FriendlyHead {
        &mut weights.head
    }
}
