//! The encrypted backward pass: the gradients of the twin's backward
//! ([`crate::model::train::friendly`]) on the forward's blocks, from the
//! logits' gradient (as [`SoftmaxGradient`](super::loss::SoftmaxGradient)
//! gives it: class `j` on row 0, column `j`) down to every layer's input,
//! with the forward's activations from its [`EncryptedTape`] and levels
//! refreshed where an operation lacks them (bounds from
//! [`GradientBounds`]). It runs on the logits' gradient times the bounds'
//! loss scale `S` (so that the gradients it bootstraps come near their
//! bounds of at least 1) and returns the gradients divided by `S`; both
//! are relabellings of the scales.
//!
//! With `γ`, `β` folded into the next weights, a LayerNorm's backward is
//! that of the bare normalisation `N = (x − μ)·s`:
//! `∂x = s ⊙ (g − mean(g) − N ⊙ mean(g ⊙ N))` with row means by the dense
//! product with `J/hidden`, where `g` already carries `γ` (it comes through
//! the folded weights). Dense layers go back through their transposes
//! ([`BackwardBlocks`](super::blocks::BackwardBlocks)).
//!
//! Per layer, from the output's gradient `∂X₂`:
//!
//! 1. feed-forward: `∂H = ∂X₂·W_dᵀ`, `∂G = (∂H ⊙ U) ⊙ step(G)`,
//!    `∂U = ∂H ⊙ relu(G)`, `∂N₂ = ∂G·W_gᵀ + ∂U·W_uᵀ`,
//!    `∂X₁ = ∂X₂ + LN′(∂N₂)`;
//! 2. attention, all heads at once: `∂C = ∂X₁·W_oᵀ`, `∂S = ∂C·(V⊙M)ᵀ`,
//!    `∂V = (Sᵀ·∂C) ⊙ M`, `∂E = ∂S ⊙ S`, and from
//!    `E = Q'·Kᵀ − ‖q'_i‖²/(4c) − c‖k_j‖²`:
//!    `∂Q' = ∂E·K + (∂E·(−J/(2c))) ⊙ Q'`,
//!    `∂K = ∂Eᵀ·Q' + (∂Eᵀ·(−2c·J)) ⊙ K`;
//!    `∂N₁ = ∂Q'·W'_qᵀ + ∂K·W_kᵀ + ∂V·W_vᵀ`, `∂X₀ = ∂X₁ + LN′(∂N₁)`.
//!
//! With softmax attention (the baseline, [`super::softmax`]) step 2's
//! `∂E` is `A ⊙ (∂A − rowsum(∂A ⊙ A))` from the weights `A`, and
//! `∂Q' = ∂E·K`, `∂K = ∂Eᵀ·Q'`.
//!
//! The head (plaintext weights): `∂T = ∂logits·W₃ᵀ`, `∂P = ∂T ⊙ (R₀ − T⊙T)`
//! (`T` the tanh output on row 0, `R₀` the first row's mask: the other
//! rows' gradients are zero), then back through the widening, the
//! bottleneck and the final LayerNorm if any: the last layer's output
//! gradient, on row 0.

use std::time::Instant;

use super::adapters::{DenseTensor, EncryptedAdapters, LayerAdapters};
use super::blocks::{DenseLayer, LayerBlocks, NormSlots};
use super::bounds::GradientBounds;
use super::forward::{copies, flatten, head_masks, internal, norm_of, unflatten, Run};
use super::full;
use super::model::EncryptedModel;
use super::setup::AdapterMode;
use super::tape::{AttentionTape, EncryptedTape, FfnTape, HeadTape, NormTape};
use crate::circuits::refresh::Refresh;
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::{Error, Result};
use crate::model::friendly::{AttentionKernel, LoraTarget};
use crate::tensor::{
    AdapterGradients, EncryptedDense, LoraProduct, RowDense, ENCRYPTED_DENSE_GRADIENT_DEPTH,
    LORA_DEPTH, ROW_DENSE_GRADIENT_DEPTH,
};

const OP: &str = "EncryptedModel::backward";

/// One layer's gradients (per example), in the forward's layouts.
#[derive(Debug)]
pub struct LayerGradients {
    /// Of the layer's output.
    pub output: Vec<Ciphertext>,
    /// Of the gate `G` and the up projection `U`.
    pub gate: Vec<Ciphertext>,
    pub up: Vec<Ciphertext>,
    /// Of the residual stream after attention.
    pub attended: Vec<Ciphertext>,
    /// Of `Q' = 2c·Q`, `K` and `V` (heads' blocks).
    pub queries: Vec<Ciphertext>,
    pub keys: Vec<Ciphertext>,
    pub values: Vec<Ciphertext>,
    /// With encrypted adapters, their gradients (one per target, in the
    /// adapters' order).
    pub adapters: Vec<AdapterGradients>,
    /// With encrypted weights (full fine-tuning), theirs in the layer's
    /// flat order ([`super::full`]).
    pub weights: Vec<Ciphertext>,
}

impl LayerGradients {
    /// Applies `f` to every ciphertext.
    fn unscale(&mut self, f: impl Fn(&mut Ciphertext)) {
        let lists = [
            &mut self.output,
            &mut self.gate,
            &mut self.up,
            &mut self.attended,
            &mut self.queries,
            &mut self.keys,
            &mut self.values,
            &mut self.weights,
        ];
        for ct in lists.into_iter().flatten() {
            f(ct);
        }
        for adapter in &mut self.adapters {
            for ct in adapter
                .a_columns
                .iter_mut()
                .chain(adapter.b_rows.iter_mut())
                .flatten()
            {
                f(ct);
            }
        }
    }
}

/// One example's gradients.
#[derive(Debug)]
pub struct EncryptedGradients {
    /// Per layer, in the layers' order.
    pub layers: Vec<LayerGradients>,
    /// Of the model's input (the embeddings).
    pub input: Vec<Ciphertext>,
    /// With encrypted head weights, theirs, in the head's flat order
    /// (`W₁`, `b₁`, `W₂`, `b₂`, `W₃`, `b₃`; [`super::head::DenseLayout::head`]).
    pub head: Vec<Ciphertext>,
    /// Bootstraps of the batch's backward pass.
    pub bootstraps: usize,
    /// Wall time of the batch's backward pass, and the part bootstrapping.
    pub seconds: f64,
    pub bootstrap_seconds: f64,
}

impl EncryptedModel {
    /// The backward passes of a batch in lockstep: `tapes[i]` from
    /// [`forward_taped`](Self::forward_taped), `d_logits[i]` the gradient
    /// of its logits (in the logits' layout; slots outside the classes of
    /// row 0 are ignored). The tapes are consumed: each layer's is dropped
    /// once used.
    ///
    /// Errors: lists of different lengths or an empty batch
    /// ([`Error::LengthMismatch`], [`Error::OutOfRange`]), tapes of
    /// another model, levels the refresher cannot give, the operations'
    /// errors.
    pub fn backward(
        &self,
        ev: &Evaluator,
        tapes: Vec<EncryptedTape>,
        d_logits: &[Ciphertext],
        mut adapters: Option<&mut EncryptedAdapters>,
        bounds: &GradientBounds,
        refresher: &mut dyn Refresh,
    ) -> Result<Vec<EncryptedGradients>> {
        self.check_adapters(adapters.as_deref())?;
        if tapes.len() != d_logits.len() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: d_logits.len(),
                expected: tapes.len(),
            });
        }
        if tapes.is_empty() {
            return Err(Error::OutOfRange {
                op: OP,
                detail: "an empty batch".into(),
            });
        }
        let layer_count = self.blocks().layers.len();
        if let Some(tape) = tapes.iter().find(|t| t.layers.len() != layer_count) {
            return Err(Error::LengthMismatch {
                op: OP,
                got: tape.layers.len(),
                expected: layer_count,
            });
        }
        let (start, clock) = (refresher.count(), Instant::now());
        let refreshing = refresher.seconds();
        let mut back = Backward {
            run: Run {
                model: self,
                ev,
                refresher,
            },
            bounds: *bounds,
        };
        let mut masks = Vec::with_capacity(tapes.len());
        let mut head_tapes = Vec::with_capacity(tapes.len());
        let mut layer_tapes: Vec<Vec<_>> = Vec::with_capacity(tapes.len());
        for tape in tapes {
            masks.push(tape.mask);
            head_tapes.push(tape.head);
            layer_tapes.push(tape.layers);
        }
        // Loss scaling: the backward runs on S·∂logits (a relabelling).
        let scaled: Vec<Ciphertext> = d_logits
            .iter()
            .map(|ct| {
                let mut ct = ct.try_clone()?;
                ct.scale /= bounds.loss_scale;
                Ok(ct)
            })
            .collect::<Result<_>>()?;
        let (mut stream, head_gradients) =
            back.head(&scaled, head_tapes, adapters.as_deref_mut())?;
        let mut layers: Vec<Vec<LayerGradients>> = masks.iter().map(|_| Vec::new()).collect();
        let transposed = &self.backward_blocks()?.layers;
        for (index, weights) in transposed.iter().enumerate().rev() {
            let (attention, ffn): (Vec<_>, Vec<_>) = layer_tapes
                .iter_mut()
                .map(|tapes| tapes.pop().map(|t| (t.attention, t.ffn)))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| internal("a layer's tape"))?
                .into_iter()
                .unzip();
            let output: Gradients = stream.iter().map(|s| copies(s)).collect::<Result<_>>()?;
            // With encrypted weights, theirs: [example][dense layer].
            let mut weight_gradients: Vec<Gradients> = masks
                .iter()
                .map(|_| (0..full::LAYER_DENSE).map(|_| Vec::new()).collect())
                .collect();
            let layer_parameters = adapters.as_deref_mut().map(|a| a.layer_mut(index));
            let (attended, gate, up) = back.ffn(
                (weights, index),
                stream,
                ffn,
                layer_parameters,
                &mut weight_gradients,
            )?;
            let attended_copy: Vec<Vec<Ciphertext>> =
                attended.iter().map(|s| copies(s)).collect::<Result<_>>()?;
            let layer_adapters = adapters.as_deref_mut().map(|a| a.layer_mut(index));
            let (input, queries, keys, values, mut adapter_gradients) = back.attention(
                (weights, index),
                attended,
                attention,
                &masks,
                (layer_adapters, &mut weight_gradients),
            )?;
            stream = input;
            for (example, gradients) in layers.iter_mut().enumerate() {
                gradients.push(LayerGradients {
                    output: take(&output, example)?,
                    gate: take(&gate, example)?,
                    up: take(&up, example)?,
                    attended: take(&attended_copy, example)?,
                    queries: take(&queries, example)?,
                    keys: take(&keys, example)?,
                    values: take(&values, example)?,
                    adapters: std::mem::take(&mut adapter_gradients[example]),
                    weights: std::mem::take(&mut weight_gradients[example])
                        .into_iter()
                        .flatten()
                        .collect(),
                });
            }
        }
        let bootstraps = back.run.refresher.count() - start;
        let seconds = clock.elapsed().as_secs_f64();
        let bootstrap_seconds = back.run.refresher.seconds() - refreshing;
        // The gradients of the loss itself: divided back by S.
        let unscale = |ct: &mut Ciphertext| ct.scale *= bounds.loss_scale;
        for layer in layers.iter_mut().flatten() {
            layer.unscale(unscale);
        }
        stream.iter_mut().flatten().for_each(unscale);
        let mut head_gradients = head_gradients;
        head_gradients.iter_mut().flatten().for_each(unscale);
        Ok(layers
            .into_iter()
            .zip(stream)
            .zip(head_gradients)
            .map(|((mut layers, input), head)| {
                layers.reverse();
                EncryptedGradients {
                    layers,
                    input,
                    head,
                    bootstraps,
                    seconds,
                    bootstrap_seconds,
                }
            })
            .collect())
    }
}

/// Copies of example `index`'s ciphertexts.
fn take(lists: &[Vec<Ciphertext>], index: usize) -> Result<Vec<Ciphertext>> {
    copies(lists.get(index).ok_or_else(|| internal("an example"))?)
}

/// One backward pass's operations, on whole batches in lockstep.
struct Backward<'a> {
    run: Run<'a>,
    bounds: GradientBounds,
}

/// Per example, the gradients of a block's input and of its inner values.
type Gradients = Vec<Vec<Ciphertext>>;

/// The attention block's `(∂X₀, ∂Q', ∂K, ∂V)` and the adapters' gradients
/// (per example, per target).
type AttentionGradients = (
    Gradients,
    Gradients,
    Gradients,
    Gradients,
    Vec<Vec<AdapterGradients>>,
);

/// Where a dense layer's backward runs: its plaintext transpose, or, with
/// encrypted weights, dense layer `k` of a layer's parameters with its
/// inputs (and their bound), its gradients going to `[example][k]` of the
/// sink.
enum Through<'p, 'a, 's> {
    Plain(&'p DenseLayer),
    Encrypted {
        parameters: &'p mut LayerAdapters<'a>,
        k: usize,
        inputs: (&'p mut Gradients, f64),
        sink: &'s mut [Gradients],
    },
}

impl Backward<'_> {
    /// `∂x = ∂y·Wᵀ` for every example, through `layer`.
    fn back_through(
        &mut self,
        dy: &mut Gradients,
        bound: f64,
        layer: Through<'_, '_, '_>,
    ) -> Result<Gradients> {
        match layer {
            Through::Plain(transposed) => self.through(dy, bound, transposed),
            Through::Encrypted {
                parameters,
                k,
                inputs,
                sink,
            } => {
                let (dx, gradients) = self.encrypted_dense(
                    inputs,
                    (dy, bound),
                    parameters.adapters,
                    DenseTensor::Layer(parameters.layer, 2 * k),
                )?;
                for (example, gradients) in sink.iter_mut().zip(gradients) {
                    example[k] = gradients;
                }
                Ok(dx)
            }
        }
    }

    /// `∂x = ∂y·Wᵀ` for every example.
    fn through(
        &mut self,
        dy: &mut [Vec<Ciphertext>],
        bound: f64,
        transposed: &DenseLayer,
    ) -> Result<Gradients> {
        self.run.dense_layer(dy, bound, transposed)
    }

    /// `a − b` (flat lists).
    fn subtract(
        &mut self,
        a: Vec<Ciphertext>,
        bound_a: f64,
        mut b: Vec<Ciphertext>,
        bound_b: f64,
    ) -> Result<Vec<Ciphertext>> {
        for ct in b.iter_mut() {
            self.run.ev.neg_assign(ct)?;
        }
        self.run.add(a, bound_a, b, bound_b)
    }

    /// The head's backward: the last layer's output gradient (row 0).
    fn head(
        &mut self,
        d_logits: &[Ciphertext],
        tapes: Vec<HeadTape>,
        mut adapters: Option<&mut EncryptedAdapters>,
    ) -> Result<(Gradients, Gradients)> {
        let model = self.run.model;
        let activations = *model.bounds();
        let head_bound = self.bounds.head;
        let d_logits: Gradients = d_logits
            .iter()
            .map(|ct| Ok(vec![ct.try_clone()?]))
            .collect::<Result<_>>()?;
        let (mut tanh, mut norms, mut inputs) = (Vec::new(), Vec::new(), Vec::new());
        for tape in tapes {
            tanh.push(tape.tanh);
            norms.push(tape.final_norm);
            inputs.push(tape.inputs);
        }
        let inputs = match adapters {
            Some(_) => Some(
                inputs
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| internal("a tape without the head's inputs"))?,
            ),
            None => None,
        };
        let (mut xs, mut bottlenecks) = (Vec::new(), Vec::new());
        for input in inputs.into_iter().flatten() {
            xs.push(input.input);
            bottlenecks.push(input.bottleneck);
        }
        let tanh_copies: Gradients = tanh.iter().map(|t| copies(t)).collect::<Result<_>>()?;
        let (d_tanh, classifier) = self.head_layer(
            2,
            (tanh_copies, 1.0),
            (d_logits, self.bounds.loss_scale.max(1.0)),
            adapters.as_deref_mut(),
        )?;
        let (mut d_tanh, sizes) = flatten(d_tanh);
        let (mut tanh, _) = flatten(tanh);
        // R₀ − T ⊙ T: tanh's derivative on row 0, zero elsewhere.
        let mut derivative = self.run.square(&mut tanh, 1.0)?;
        let first_row = model.layout().shape().pack(&model.blocks().first_row)?;
        for ct in derivative.iter_mut() {
            self.run.ev.neg_assign(ct)?;
            let pt = model
                .encoder()
                .encode_complex(&first_row, ct.level(), ct.scale())?;
            self.run.ev.add_plain_assign(ct, &pt)?;
        }
        let d_pre_tanh = self
            .run
            .multiply(&mut d_tanh, head_bound, &mut derivative, 1.0)?;
        let d_pre_tanh = unflatten(d_pre_tanh, &sizes);
        let (d_bottleneck, widen) = self.head_layer(
            1,
            (bottlenecks, activations.head),
            (d_pre_tanh, head_bound),
            adapters.as_deref_mut(),
        )?;
        let input_bound = match &model.blocks().final_norm {
            Some(norm) => activations.normalized * norm.gamma_bound + norm.beta_bound,
            None => activations.stream,
        };
        let (d_input, bottleneck) = self.head_layer(
            0,
            (xs, input_bound),
            (d_bottleneck, head_bound),
            adapters.as_deref_mut(),
        )?;
        // The head's gradients in the flat order: W₁, b₁, W₂, b₂, W₃, b₃.
        let head_gradients = match (bottleneck, widen, classifier) {
            (Some(first), Some(second), Some(third)) => first
                .into_iter()
                .zip(second)
                .zip(third)
                .map(|((a, b), c)| [a, b, c].concat())
                .collect(),
            _ => d_input.iter().map(|_| Vec::new()).collect(),
        };
        let normalized = self.bounds.normalized;
        let d_input = match (adapters.is_some(), &model.blocks().final_norm) {
            // Through an encrypted W₁ the gradient is the LayerNorm
            // output's: times γ, the normalisation's.
            (true, Some(norm)) => {
                let (mut flat, sizes) = flatten(d_input);
                unflatten(
                    self.run
                        .multiply_plain(&mut flat, normalized, &norm.gamma)?,
                    &sizes,
                )
            }
            _ => d_input,
        };
        let stream = match norms.into_iter().collect::<Option<Vec<_>>>() {
            Some(norms) => self.norm(d_input, norms, normalized)?,
            None => d_input,
        };
        Ok((stream, head_gradients))
    }

    /// The backward of the head's dense layer `k` for every example, from
    /// its inputs `xs` and its output's gradient `dys` (each list with its
    /// bound): `∂x`, and with `adapters` (encrypted weights) the gradients
    /// of `W_k` then `b_k` per example.
    fn head_layer(
        &mut self,
        k: usize,
        (mut xs, x_bound): (Gradients, f64),
        (mut dys, dy_bound): (Gradients, f64),
        adapters: Option<&mut EncryptedAdapters>,
    ) -> Result<(Gradients, Option<Gradients>)> {
        let model = self.run.model;
        let Some(adapters) = adapters else {
            let transposed = model.backward_blocks()?;
            let layer = [
                &transposed.bottleneck,
                &transposed.widen,
                &transposed.classifier,
            ]
            .get(k)
            .copied()
            .ok_or_else(|| internal("a head layer"))?;
            return Ok((self.through(&mut dys, dy_bound, layer)?, None));
        };
        let (d_xs, parameters) = self.encrypted_dense(
            (&mut xs, x_bound),
            (&mut dys, dy_bound),
            adapters,
            DenseTensor::Head(2 * k),
        )?;
        Ok((d_xs, Some(parameters)))
    }

    /// The backward of `x·W + b` with the encrypted `weight` of
    /// `parameters` for every example's input `x` and output gradient
    /// `∂y` (each list with its bound): `∂x`, and per example `∂W` then
    /// `∂b` (the output's gradient summed over the rows).
    fn encrypted_dense(
        &mut self,
        (xs, x_bound): (&mut Gradients, f64),
        (dys, dy_bound): (&mut Gradients, f64),
        parameters: &mut EncryptedAdapters,
        weight: DenseTensor,
    ) -> Result<(Gradients, Gradients)> {
        let model = self.run.model;
        let weight_bound = parameters.bound();
        self.run.refresh_with_parameters(
            &mut [(xs, x_bound), (dys, dy_bound)],
            (parameters.dense_tensor_mut(weight)?, weight_bound),
            match weight {
                DenseTensor::Head(_) => ROW_DENSE_GRADIENT_DEPTH,
                DenseTensor::Layer(..) => ENCRYPTED_DENSE_GRADIENT_DEPTH,
            },
        )?;
        let shape = model.layout().shape();
        let weights = parameters.dense_tensor(weight)?;
        let rows = (model.layout().dim() * shape.blocks()) as i64;
        let evaluation = (self.run.ev, model.encoder());
        let (mut d_xs, mut gradients) = (Vec::new(), Vec::new());
        for (x, dy) in xs.iter().zip(dys.iter()) {
            let (d_x, d_w) = match weight {
                // The head reads the first token only: ∂b is ∂y's row 0.
                DenseTensor::Head(_) => {
                    let (d_x, mut d_w, d_b) =
                        RowDense::new(shape).gradients(evaluation, model, x, weights, dy)?;
                    d_w.extend(d_b);
                    (d_x, d_w)
                }
                // ∂b: the output's gradient summed over the rows.
                DenseTensor::Layer(..) => {
                    let (d_x, mut d_w) =
                        EncryptedDense::new(shape).gradients(evaluation, model, x, weights, dy)?;
                    for dy in dy {
                        d_w.push(
                            self.run
                                .ev
                                .rotate_and_sum_new(dy, rows, model.layout().dim())?,
                        );
                    }
                    (d_x, d_w)
                }
            };
            d_xs.push(d_x);
            gradients.push(d_w);
        }
        Ok((d_xs, gradients))
    }

    /// LayerNorm's backward: `s ⊙ (g − mean(g) − N ⊙ mean(g ⊙ N))`.
    fn norm(&mut self, gs: Gradients, tapes: Vec<NormTape>, bound: f64) -> Result<Gradients> {
        let model = self.run.model;
        let mean = &model.blocks().mean;
        let normalized = model.bounds().normalized;
        let (mut normed, mut inverses) = (Vec::new(), Vec::new());
        for tape in tapes {
            normed.push(tape.normed);
            inverses.push(tape.inverses);
        }
        let mut g_copies = gs.iter().map(|g| copies(g)).collect::<Result<Vec<_>>>()?;
        let (g_means, _) = flatten(self.run.dense_layer(&mut g_copies, bound, mean)?);
        let (mut g, sizes) = flatten(gs);
        let (mut normed, _) = flatten(normed);
        let projected = self.run.multiply(&mut g, bound, &mut normed, normalized)?;
        let product_bound = bound * normalized;
        let mut projected = unflatten(projected, &sizes);
        let (mut projection_means, _) =
            flatten(self.run.dense_layer(&mut projected, product_bound, mean)?);
        let along = self.run.multiply(
            &mut normed,
            normalized,
            &mut projection_means,
            product_bound,
        )?;
        let centred = self.subtract(g, bound, g_means, bound)?;
        let mut centred = self.subtract(centred, 2.0 * bound, along, product_bound)?;
        let (mut inverses, _) = flatten(inverses);
        let (low, _) = model.config().ranges.variance;
        let dx = self.run.multiply(
            &mut centred,
            2.0 * bound + product_bound,
            &mut inverses,
            1.0 / low.sqrt(),
        )?;
        Ok(unflatten(dx, &sizes))
    }

    /// The feed-forward block's backward: `(∂X₁, ∂G, ∂U)`.
    fn ffn(
        &mut self,
        (weights, index): (&LayerBlocks, usize),
        d_output: Gradients,
        tapes: Vec<FfnTape>,
        mut parameters: Option<LayerAdapters<'_>>,
        sink: &mut [Gradients],
    ) -> Result<(Gradients, Gradients, Gradients)> {
        let model = self.run.model;
        let bounds = self.bounds;
        let activation = model.bounds().ffn;
        let (mut norms, mut ups, mut activated, mut steps) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut inputs, mut glus) = (Vec::new(), Vec::new());
        for tape in tapes {
            norms.push(tape.norm);
            ups.push(tape.up);
            activated.push(tape.activated);
            steps.push(tape.step);
            inputs.extend(tape.input);
            glus.extend(tape.glu);
        }
        // Full fine-tuning: the encrypted weights and their inputs.
        let mut encrypted = match parameters.as_mut() {
            Some(parameters) if model.adapter_mode() == AdapterMode::Full => {
                let norm = norm_of(&model.blocks().ffn_norms, index)?;
                if inputs.len() != ups.len() || glus.len() != ups.len() {
                    return Err(internal("a tape without the encrypted weights' inputs"));
                }
                let input_bound = model.bounds().normalized * norm.gamma_bound + norm.beta_bound;
                Some((parameters, norm, input_bound))
            }
            _ => None,
        };
        let mut dy = d_output
            .iter()
            .map(|d| copies(d))
            .collect::<Result<Vec<_>>>()?;
        let down = match encrypted.as_mut() {
            Some((parameters, _, _)) => Through::Encrypted {
                parameters,
                k: full::DOWN,
                inputs: (&mut glus, activation),
                sink: &mut *sink,
            },
            None => Through::Plain(&weights.down),
        };
        let d_glu = self.back_through(&mut dy, bounds.stream, down)?;
        let (mut d_glu, sizes) = flatten(d_glu);
        let (mut up, _) = flatten(ups);
        let (mut activated, _) = flatten(activated);
        let (mut step, _) = flatten(steps);
        let mut d_activated = self
            .run
            .multiply(&mut d_glu, bounds.ffn, &mut up, activation)?;
        let d_up = self
            .run
            .multiply(&mut d_glu, bounds.ffn, &mut activated, activation)?;
        let d_gate = self
            .run
            .multiply(&mut d_activated, bounds.ffn, &mut step, 1.0)?;
        let (mut d_gate, mut d_up) = (unflatten(d_gate, &sizes), unflatten(d_up, &sizes));
        let mut from = Vec::new();
        for (k, d, plain) in [
            (full::GATE, &mut d_gate, &weights.gate),
            (full::UP, &mut d_up, &weights.up),
        ] {
            let layer = match encrypted.as_mut() {
                Some((parameters, _, input_bound)) => Through::Encrypted {
                    parameters,
                    k,
                    inputs: (&mut inputs, *input_bound),
                    sink: &mut *sink,
                },
                None => Through::Plain(plain),
            };
            from.push(flatten(self.back_through(d, bounds.ffn, layer)?));
        }
        let [(from_gate, normed_sizes), (from_up, _)] =
            <[_; 2]>::try_from(from).map_err(|_| internal("the gate and up gradients"))?;
        let mut d_normed =
            self.run
                .add(from_gate, bounds.normalized, from_up, bounds.normalized)?;
        if let Some((_, norm, _)) = encrypted {
            // Through x = N ⊙ γ + β: times γ.
            d_normed = self
                .run
                .multiply_plain(&mut d_normed, bounds.normalized, &norm.gamma)?;
        }
        let d_normed = unflatten(d_normed, &normed_sizes);
        let d_norm_input = self.norm(d_normed, norms, bounds.normalized)?;
        let (d_output, _) = flatten(d_output);
        let (d_norm_input, _) = flatten(d_norm_input);
        let d_attended = self
            .run
            .add(d_output, bounds.stream, d_norm_input, bounds.stream)?;
        Ok((unflatten(d_attended, &normed_sizes), d_gate, d_up))
    }

    /// The attention block's backward of layer `index`: `(∂X₀, ∂Q', ∂K,
    /// ∂V)` and, with adapters, their gradients per example.
    fn attention(
        &mut self,
        (weights, index): (&LayerBlocks, usize),
        d_attended: Gradients,
        tapes: Vec<AttentionTape>,
        masks: &[Ciphertext],
        (mut adapters, sink): (Option<LayerAdapters<'_>>, &mut [Gradients]),
    ) -> Result<AttentionGradients> {
        let model = self.run.model;
        let bounds = self.bounds;
        let activations = *model.bounds();
        let c = super::blocks::kernel_factor(model.config());
        let (q_bound, k_bound) = (2.0 * c * activations.projection, activations.projection);
        let transposed = model.backward_blocks()?;
        let (mut norms, mut queries, mut keys, mut values, mut kernels) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut adapter_inputs, mut contexts) = (Vec::new(), Vec::new());
        for tape in tapes {
            norms.push(tape.norm);
            queries.push(tape.queries);
            keys.push(tape.keys);
            values.push(tape.values);
            kernels.push(tape.kernels);
            adapter_inputs.push(tape.adapter_input);
            contexts.extend(tape.context);
        }
        // Full fine-tuning: the encrypted weights and their inputs.
        let mut encrypted = match adapters.as_mut() {
            Some(parameters) if model.adapter_mode() == AdapterMode::Full => {
                let norm = norm_of(&model.blocks().adapter_norms, index)?;
                let inputs = std::mem::take(&mut adapter_inputs)
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .filter(|_| contexts.len() == norms.len())
                    .ok_or_else(|| internal("a tape without the encrypted weights' inputs"))?;
                let input_bound = activations.normalized * norm.gamma_bound + norm.beta_bound;
                Some((parameters, norm, (inputs, input_bound)))
            }
            _ => None,
        };
        let mut dy = d_attended
            .iter()
            .map(|d| copies(d))
            .collect::<Result<Vec<_>>>()?;
        let output = match encrypted.as_mut() {
            Some((parameters, _, _)) => Through::Encrypted {
                parameters,
                k: full::OUTPUT,
                inputs: (&mut contexts, activations.context),
                sink: &mut *sink,
            },
            None => Through::Plain(&weights.output),
        };
        let d_context = self.back_through(&mut dy, bounds.stream, output)?;
        let (mut d_context, sizes) = flatten(d_context);
        let (mut values, _) = flatten(values);
        let (mut kernels, _) = flatten(kernels);
        let (mut queries, _) = flatten(queries);
        let (mut keys, _) = flatten(keys);
        let mut head_masks = head_masks(masks, &sizes)?;
        // ∂S = ∂C·(V⊙M)ᵀ, ∂V = (Sᵀ·∂C) ⊙ M.
        let mut values_t = self.run.transpose(&mut values, k_bound)?;
        let mut d_kernels = self.run.matmul(
            &mut copies(&d_context)?,
            bounds.context,
            &mut values_t,
            k_bound,
        )?;
        let mut kernels_t = self.run.transpose(&mut kernels, 1.0)?;
        let mut d_masked = self
            .run
            .matmul(&mut kernels_t, 1.0, &mut d_context, bounds.context)?;
        let d_values = self
            .run
            .multiply(&mut d_masked, bounds.projection, &mut head_masks, 1.0)?;
        let (d_queries, d_keys) = match model.config().attention {
            AttentionKernel::Gaussian => {
                // ∂E = ∂S ⊙ S, then the queries' and keys' gradients.
                let mut d_exponents =
                    self.run
                        .multiply(&mut d_kernels, bounds.kernel, &mut kernels, 1.0)?;
                let mut d_exponents_t = self.run.transpose(&mut d_exponents, bounds.kernel)?;
                let d_queries = self.along_and_across(
                    &mut d_exponents,
                    (&mut keys, k_bound),
                    (&mut queries, q_bound),
                    &transposed.query_row_sums,
                    &sizes,
                )?;
                let d_keys = self.along_and_across(
                    &mut d_exponents_t,
                    (&mut queries, q_bound),
                    (&mut keys, k_bound),
                    &transposed.key_row_sums,
                    &sizes,
                )?;
                (d_queries, d_keys)
            }
            AttentionKernel::Softmax => {
                // ∂E = A ⊙ (∂A − rowsum(∂A ⊙ A)), ∂Q' = ∂E·K, ∂K = ∂Eᵀ·Q'.
                let mut d_exponents = self.run.softmax_exponent_gradients(
                    &mut d_kernels,
                    &mut kernels,
                    bounds.kernel,
                    &sizes,
                )?;
                let mut d_exponents_t = self.run.transpose(&mut d_exponents, bounds.kernel)?;
                let d_queries =
                    self.run
                        .matmul(&mut d_exponents, bounds.kernel, &mut keys, k_bound)?;
                let d_keys =
                    self.run
                        .matmul(&mut d_exponents_t, bounds.kernel, &mut queries, q_bound)?;
                (d_queries, d_keys)
            }
        };
        drop((kernels, values_t, kernels_t));
        let mut d_queries = unflatten(d_queries, &sizes);
        let mut d_keys = unflatten(d_keys, &sizes);
        let mut d_values = unflatten(d_values, &sizes);
        let projection = bounds.projection;
        let mut from = Vec::new();
        for (k, d, plain, factor) in [
            (full::QUERY, &mut d_queries, &weights.query, 2.0 * c),
            (full::KEY, &mut d_keys, &weights.key, 1.0),
            (full::VALUE, &mut d_values, &weights.value, 1.0),
        ] {
            let product = match encrypted.as_mut() {
                Some((parameters, _, (inputs, input_bound))) => {
                    // ∂Q = 2c·∂Q': a relabelling of the scale (of a copy:
                    // the gradients returned are ∂Q').
                    let mut d: Gradients = d.iter().map(|d| copies(d)).collect::<Result<_>>()?;
                    d.iter_mut().flatten().for_each(|ct| ct.scale /= factor);
                    let layer = Through::Encrypted {
                        parameters,
                        k,
                        inputs: (inputs, *input_bound),
                        sink: &mut *sink,
                    };
                    self.back_through(&mut d, projection, layer)?
                }
                None => self.back_through(d, projection, Through::Plain(plain))?,
            };
            from.push(flatten(product));
        }
        let [(from_queries, stream_sizes), (from_keys, _), (from_values, _)] =
            <[_; 3]>::try_from(from).map_err(|_| internal("the projections' gradients"))?;
        let normalized = bounds.normalized;
        let partial = self
            .run
            .add(from_queries, normalized, from_keys, normalized)?;
        let mut d_normed = self.run.add(partial, normalized, from_values, normalized)?;
        let mut adapter_gradients: Vec<Vec<AdapterGradients>> =
            sizes.iter().map(|_| Vec::new()).collect();
        if let Some((_, norm, _)) = encrypted {
            // Through x = N ⊙ γ + β: times γ.
            d_normed = self
                .run
                .multiply_plain(&mut d_normed, normalized, &norm.gamma)?;
        } else if let Some(layer) = adapters {
            let inputs = adapter_inputs
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| internal("a tape without the adapters' input"))?;
            let (gradients, from_adapters) = self.adapters(
                layer,
                inputs,
                [&d_queries, &d_keys, &d_values],
                model.blocks().adapter_norms.get(index),
            )?;
            adapter_gradients = gradients;
            d_normed = self
                .run
                .add(d_normed, normalized, from_adapters, normalized)?;
        }
        let d_normed = unflatten(d_normed, &stream_sizes);
        let d_norm_input = self.norm(d_normed, norms, normalized)?;
        let (d_attended, _) = flatten(d_attended);
        let (d_norm_input, _) = flatten(d_norm_input);
        let d_input = self
            .run
            .add(d_attended, bounds.stream, d_norm_input, bounds.stream)?;
        Ok((
            unflatten(d_input, &stream_sizes),
            d_queries,
            d_keys,
            d_values,
            adapter_gradients,
        ))
    }

    /// The adapters' gradients (per example, per target) from the
    /// projections' `[∂Q', ∂K, ∂V]`, and their share of `∂N`:
    /// `γ ⊙ Σ_t f_t·∂Y_t·B_tᵀ·A_tᵀ` (flat, the stream's layout).
    fn adapters(
        &mut self,
        mut layer: LayerAdapters<'_>,
        mut inputs: Gradients,
        d_projections: [&Gradients; 3],
        norm: Option<&NormSlots>,
    ) -> Result<(Vec<Vec<AdapterGradients>>, Vec<Ciphertext>)> {
        let model = self.run.model;
        let norm = norm.ok_or_else(|| internal("the adapters' LayerNorm"))?;
        let activations = *model.bounds();
        let c = super::blocks::kernel_factor(model.config());
        let input_bound = activations.normalized * norm.gamma_bound + norm.beta_bound;
        let (projection, normalized) = (self.bounds.projection, self.bounds.normalized);
        let product = LoraProduct::new(model.layout().shape());
        let mut gradients: Vec<Vec<AdapterGradients>> = inputs.iter().map(|_| Vec::new()).collect();
        let mut total: Option<Vec<Ciphertext>> = None;
        let [d_queries, d_keys, d_values] = d_projections;
        let targets = layer.adapters.targets().to_vec();
        for (t, target) in targets.into_iter().enumerate() {
            let (d_outputs, factor) = match target {
                LoraTarget::Query => (d_queries, 2.0 * c),
                LoraTarget::Key => (d_keys, 1.0),
                LoraTarget::Value => (d_values, 1.0),
                LoraTarget::Output => return Err(internal("an output adapter")),
            };
            let mut dys: Gradients = d_outputs.iter().map(|d| copies(d)).collect::<Result<_>>()?;
            let adapter_bound = layer.adapters.bound();
            self.run.refresh_with_parameters(
                &mut [(&mut inputs, input_bound), (&mut dys, projection)],
                (layer.adapters.adapter_mut(layer.layer, t)?, adapter_bound),
                LORA_DEPTH,
            )?;
            let adapter = layer.adapters.adapter(layer.layer, t)?;
            for ((x, dy), example) in inputs.iter().zip(&dys).zip(gradients.iter_mut()) {
                example.push(product.gradients(
                    self.run.ev,
                    model.encoder(),
                    x,
                    &adapter,
                    dy,
                    factor,
                )?);
            }
            let (from_adapter, _) =
                flatten(
                    self.run
                        .lora(&mut dys, projection, (&mut layer, t), factor, true)?,
                );
            total = Some(match total {
                Some(sum) => self.run.add(sum, normalized, from_adapter, normalized)?,
                None => from_adapter,
            });
        }
        let mut total = total.ok_or_else(|| internal("a layer without adapters"))?;
        let scaled = self
            .run
            .multiply_plain(&mut total, normalized, &norm.gamma)?;
        Ok((gradients, scaled))
    }

    /// `∂E·across + (∂E·sums) ⊙ along`: a query's (or key's) gradient from
    /// the exponents' gradient `∂E` (or `∂Eᵀ`), the other side's
    /// projections `across` and its own `along`, `sums` the scaled
    /// per-head row sums.
    fn along_and_across(
        &mut self,
        d_exponents: &mut [Ciphertext],
        across: (&mut [Ciphertext], f64),
        along: (&mut [Ciphertext], f64),
        sums: &DenseLayer,
        sizes: &[usize],
    ) -> Result<Vec<Ciphertext>> {
        let bounds = self.bounds;
        let mut d_copy = unflatten(copies(d_exponents)?, sizes);
        let (mut row_sums, _) = flatten(self.run.dense_layer(&mut d_copy, bounds.kernel, sums)?);
        let product = self
            .run
            .matmul(d_exponents, bounds.kernel, across.0, across.1)?;
        let scaled = self
            .run
            .multiply(&mut row_sums, bounds.row_sum, along.0, along.1)?;
        self.run
            .add(product, bounds.projection, scaled, bounds.projection)
    }
}
