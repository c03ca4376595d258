//! The exact baseline: BERT's first layers as MiniLM computes them
//! (post-LN, softmax attention, erf GELU; the computation of
//! [`ReferenceBert`](crate::model::reference::ReferenceBert)) followed by
//! the friendly model's head on the first token, with its backward.
//!
//! The pooling is the first token for both models, because the friendly
//! model's head (and the circuit) reads the first row. The embeddings are
//! the input, as for the friendly model, so they are not trained by either.
//! As in [`super::friendly`], the last layer computes its first row only;
//! [`ExactBackprop::hidden_states`] computes every row (for tests against
//! the reference forward).

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};

use super::attention::{attention, attention_backward, AttentionTape, Kernel};
use super::classifier::{Differentiable, HeadedClassifier};
use super::head::{check_head, head_backward, head_forward, HeadTape};
use super::ops::{
    check_dense, check_norm, check_sequence, dense, dense_backward_input, dense_backward_weights,
    gelu_derivative, layer_norm, layer_norm_backward, Functions, NormTape,
};
use super::params::{Group, Parameters, TensorList, TensorMut};
use crate::error::{Error, Result};
use crate::model::activation::gelu;
use crate::model::friendly::{Dense, FriendlyHead};
use crate::model::weights::{BertWeights, LayerNormWeights, LinearWeights};

/// One post-LN BERT layer with `in × out` dense weights.
#[derive(Clone, Debug, PartialEq)]
pub struct ExactLayer {
    pub query: Dense,
    pub key: Dense,
    pub value: Dense,
    pub attention_output: Dense,
    pub attention_norm: LayerNormWeights,
    pub intermediate: Dense,
    pub output: Dense,
    pub output_norm: LayerNormWeights,
}

/// The baseline's weights: BERT layers and the head.
#[derive(Clone, Debug, PartialEq)]
pub struct ExactWeights {
    pub layers: Vec<ExactLayer>,
    pub head: FriendlyHead,
}

impl ExactWeights {
    /// BERT's first `layers` layers (transposed to `in × out`) and `head`.
    ///
    /// Errors: more layers than BERT has, or a head whose input is not
    /// BERT's width.
    pub fn from_bert(bert: &BertWeights, layers: usize, head: FriendlyHead) -> Result<Self> {
        if layers > bert.layers.len() {
            return Err(Error::InvalidParameters(format!(
                "ExactWeights::from_bert: {layers} layers asked, the BERT has {}",
                bert.layers.len()
            )));
        }
        if head.bottleneck.weight.nrows() != bert.config.hidden_size {
            return Err(Error::LengthMismatch {
                op: "ExactWeights::from_bert (head input)",
                got: head.bottleneck.weight.nrows(),
                expected: bert.config.hidden_size,
            });
        }
        let transposed = |linear: &LinearWeights| Dense {
            weight: linear.weight.t().to_owned(),
            bias: linear.bias.clone(),
        };
        Ok(Self {
            layers: bert.layers[..layers]
                .iter()
                .map(|layer| ExactLayer {
                    query: transposed(&layer.query),
                    key: transposed(&layer.key),
                    value: transposed(&layer.value),
                    attention_output: transposed(&layer.attention_output),
                    attention_norm: layer.attention_layer_norm.clone(),
                    intermediate: transposed(&layer.intermediate),
                    output: transposed(&layer.output),
                    output_norm: layer.output_layer_norm.clone(),
                })
                .collect(),
            head,
        })
    }
}

impl Parameters for ExactWeights {
    fn tensors_mut(&mut self) -> Vec<TensorMut<'_>> {
        let mut list = TensorList::default();
        for (index, layer) in self.layers.iter_mut().enumerate() {
            let at = |part: &str| format!("layers.{index}.{part}");
            list.dense(&at("query"), Group::Body, &mut layer.query);
            list.dense(&at("key"), Group::Body, &mut layer.key);
            list.dense(&at("value"), Group::Body, &mut layer.value);
            list.dense(
                &at("attention_output"),
                Group::Body,
                &mut layer.attention_output,
            );
            list.norm(
                &at("attention_norm"),
                Group::Body,
                &mut layer.attention_norm,
            );
            list.dense(&at("intermediate"), Group::Body, &mut layer.intermediate);
            list.dense(&at("output"), Group::Body, &mut layer.output);
            list.norm(&at("output_norm"), Group::Body, &mut layer.output_norm);
        }
        list.head(&mut self.head);
        list.0
    }
}

/// One layer's forward, for `m` output rows of `n` input rows.
#[derive(Clone, Debug)]
pub struct ExactLayerTape {
    pub input: Array2<f64>,
    pub queries: Array2<f64>,
    pub keys: Array2<f64>,
    pub values: Array2<f64>,
    pub attention: AttentionTape,
    pub context: Array2<f64>,
    pub attention_norm: NormTape,
    /// `LN(X[..m] + C·W_o + b_o)` (`m × hidden`).
    pub attended: Array2<f64>,
    /// GELU's input (`m × intermediate`).
    pub intermediate: Array2<f64>,
    pub activated: Array2<f64>,
    pub output_norm: NormTape,
    /// The layer's output (`m × hidden`).
    pub output: Array2<f64>,
}

/// One forward of the baseline.
#[derive(Clone, Debug)]
pub struct ExactTape {
    pub layers: Vec<ExactLayerTape>,
    pub head: HeadTape,
}

/// The baseline's shape constants: width, heads, LayerNorm `eps`, longest
/// sequence.
#[derive(Clone, Debug)]
pub struct ExactBackprop {
    hidden: usize,
    heads: usize,
    layer_norm_eps: f64,
    max_len: usize,
}

impl ExactBackprop {
    /// The constants of `bert`'s config.
    pub fn for_bert(bert: &BertWeights) -> Self {
        let config = &bert.config;
        Self {
            hidden: config.hidden_size,
            heads: config.num_attention_heads,
            layer_norm_eps: config.layer_norm_eps,
            max_len: config.max_position_embeddings,
        }
    }

    /// The hidden states after every layer, all rows (`n × hidden`).
    ///
    /// Errors: as [`Differentiable::forward`].
    pub fn hidden_states(
        &self,
        weights: &ExactWeights,
        input: ArrayView2<f64>,
        mask: &[bool],
    ) -> Result<Array2<f64>> {
        self.check(input, mask)?;
        let (_, tape) = self.run(weights, input, mask, input.nrows());
        Ok(tape
            .layers
            .last()
            .map_or_else(|| input.to_owned(), |last| last.output.clone()))
    }

    fn check(&self, input: ArrayView2<f64>, mask: &[bool]) -> Result<()> {
        check_sequence(
            "ExactBackprop::forward",
            input,
            mask,
            self.hidden,
            self.max_len,
        )
    }

    fn run(
        &self,
        weights: &ExactWeights,
        input: ArrayView2<f64>,
        mask: &[bool],
        last_rows: usize,
    ) -> (Array1<f64>, ExactTape) {
        let count = weights.layers.len();
        let mut layers: Vec<ExactLayerTape> = Vec::with_capacity(count);
        for (index, layer) in weights.layers.iter().enumerate() {
            let rows = if index + 1 == count {
                last_rows
            } else {
                input.nrows()
            };
            let layer_input = match layers.last() {
                Some(previous) => previous.output.clone(),
                None => input.to_owned(),
            };
            layers.push(self.layer_forward(layer, layer_input, mask, rows));
        }
        let first_row = match layers.last() {
            Some(last) => last.output.row(0).to_owned(),
            None => input.row(0).to_owned(),
        };
        let (logits, head) = head_forward(&weights.head, first_row.view(), &Functions::Exact);
        (logits, ExactTape { layers, head })
    }

    fn layer_forward(
        &self,
        layer: &ExactLayer,
        input: Array2<f64>,
        mask: &[bool],
        rows: usize,
    ) -> ExactLayerTape {
        let eps = self.layer_norm_eps;
        let queries = dense(&layer.query, input.slice(s![..rows, ..]));
        let keys = dense(&layer.key, input.view());
        let values = dense(&layer.value, input.view());
        let (context, attention_tape) = attention(
            (Kernel::Softmax, &Functions::Exact),
            self.heads,
            queries.view(),
            keys.view(),
            values.view(),
            mask,
        );
        let residual = dense(&layer.attention_output, context.view()) + input.slice(s![..rows, ..]);
        let (attended, attention_norm) = layer_norm(
            &layer.attention_norm,
            residual.view(),
            eps,
            &Functions::Exact,
        );
        let intermediate = dense(&layer.intermediate, attended.view());
        let activated = intermediate.mapv(gelu);
        let residual = dense(&layer.output, activated.view()) + &attended;
        let (output, output_norm) =
            layer_norm(&layer.output_norm, residual.view(), eps, &Functions::Exact);
        ExactLayerTape {
            input,
            queries,
            keys,
            values,
            attention: attention_tape,
            context,
            attention_norm,
            attended,
            intermediate,
            activated,
            output_norm,
            output,
        }
    }

    /// Adds the layer's gradient; returns its input's gradient when asked.
    fn layer_backward(
        &self,
        layer: &ExactLayer,
        tape: &ExactLayerTape,
        d_output: ArrayView2<f64>,
        gradient: &mut ExactLayer,
        input_gradient: bool,
    ) -> Option<Array2<f64>> {
        let rows = d_output.nrows();
        // output = LN(attended + GELU(attended·W₁ + b₁)·W₂ + b₂)
        let d_residual = layer_norm_backward(
            &layer.output_norm,
            &tape.output_norm,
            d_output,
            &mut gradient.output_norm,
        );
        dense_backward_weights(
            tape.activated.view(),
            d_residual.view(),
            &mut gradient.output,
        );
        let mut d_intermediate = dense_backward_input(&layer.output, d_residual.view());
        d_intermediate.zip_mut_with(&tape.intermediate, |d, &x| *d *= gelu_derivative(x));
        dense_backward_weights(
            tape.attended.view(),
            d_intermediate.view(),
            &mut gradient.intermediate,
        );
        let d_attended =
            d_residual + dense_backward_input(&layer.intermediate, d_intermediate.view());
        // attended = LN(input[..rows] + context·W_o + b_o)
        let d_residual = layer_norm_backward(
            &layer.attention_norm,
            &tape.attention_norm,
            d_attended.view(),
            &mut gradient.attention_norm,
        );
        dense_backward_weights(
            tape.context.view(),
            d_residual.view(),
            &mut gradient.attention_output,
        );
        let d_context = dense_backward_input(&layer.attention_output, d_residual.view());
        let d = attention_backward(
            Kernel::Softmax,
            tape.queries.view(),
            tape.keys.view(),
            tape.values.view(),
            &tape.attention,
            d_context.view(),
            &mut |_, _| {},
        );
        let query_rows = tape.input.slice(s![..rows, ..]);
        dense_backward_weights(query_rows, d.queries.view(), &mut gradient.query);
        dense_backward_weights(tape.input.view(), d.keys.view(), &mut gradient.key);
        dense_backward_weights(tape.input.view(), d.values.view(), &mut gradient.value);
        input_gradient.then(|| {
            let mut d_input = dense_backward_input(&layer.key, d.keys.view())
                + dense_backward_input(&layer.value, d.values.view());
            let mut first_rows = d_input.slice_mut(s![..rows, ..]);
            first_rows += &dense_backward_input(&layer.query, d.queries.view());
            first_rows += &d_residual;
            d_input
        })
    }
}

impl Differentiable for ExactBackprop {
    type Weights = ExactWeights;
    type Tape = ExactTape;

    fn check_weights(&self, weights: &ExactWeights) -> Result<()> {
        let hidden = self.hidden;
        for (index, layer) in weights.layers.iter().enumerate() {
            let at = |part: &str| format!("ExactWeights layer {index} {part}");
            let inner = layer.intermediate.bias.len();
            check_dense(&at("query"), &layer.query, hidden, hidden)?;
            check_dense(&at("key"), &layer.key, hidden, hidden)?;
            check_dense(&at("value"), &layer.value, hidden, hidden)?;
            check_dense(
                &at("attention_output"),
                &layer.attention_output,
                hidden,
                hidden,
            )?;
            check_norm(&at("attention_norm"), &layer.attention_norm, hidden)?;
            check_dense(&at("intermediate"), &layer.intermediate, hidden, inner)?;
            check_dense(&at("output"), &layer.output, inner, hidden)?;
            check_norm(&at("output_norm"), &layer.output_norm, hidden)?;
        }
        check_head(&weights.head, hidden)
    }

    fn forward(
        &self,
        weights: &ExactWeights,
        input: ArrayView2<f64>,
        mask: &[bool],
    ) -> Result<(Array1<f64>, ExactTape)> {
        self.check(input, mask)?;
        Ok(self.run(weights, input, mask, 1))
    }

    fn backward(
        &self,
        weights: &ExactWeights,
        tape: ExactTape,
        d_logits: ArrayView1<f64>,
        gradient: &mut ExactWeights,
    ) {
        let d_first_row = head_backward(&weights.head, &tape.head, d_logits, &mut gradient.head);
        let last_rows = tape.layers.last().map_or(1, |last| last.output.nrows());
        let mut d_stream = Array2::zeros((last_rows, d_first_row.len()));
        d_stream.row_mut(0).assign(&d_first_row);
        for (index, ((layer, layer_tape), layer_gradient)) in weights
            .layers
            .iter()
            .zip(&tape.layers)
            .zip(gradient.layers.iter_mut())
            .enumerate()
            .rev()
        {
            // The first layer's input is the embeddings, which are not trained.
            match self.layer_backward(
                layer,
                layer_tape,
                d_stream.view(),
                layer_gradient,
                index > 0,
            ) {
                Some(d_input) => d_stream = d_input,
                None => break,
            }
        }
    }
}

impl HeadedClassifier for ExactBackprop {
    fn features(
        &self,
        weights: &ExactWeights,
        input: ArrayView2<f64>,
        mask: &[bool],
    ) -> Result<Array1<f64>> {
        let (_, tape) = self.forward(weights, input, mask)?;
        Ok(tape.head.input.index_axis_move(Axis(0), 0))
    }

    fn head_mut(weights: &mut ExactWeights) -> &mut FriendlyHead {
        &mut weights.head
    }
}
