//! Private fine-tuning: one optimizer step of the encrypted adapters on a
//! batch of encrypted examples and encrypted labels, all on the server.
//!
//! For each micro-batch (examples run in lockstep, sharing bootstraps):
//! the taped forward with the adapters, the cross-entropy's gradient
//! ([`SoftmaxGradient`]) from the encrypted one-hot labels, the backward
//! down to the adapters' gradients; then, over the whole batch (gradient
//! accumulation), their mean, and one [`EncryptedAdamW`] step. The
//! gradients are flattened in the adapters' flat order
//! ([`EncryptedAdapters::parameters`]), which is the optimizer's.
//! [`TwinFineTuning`] is the same training in `f64`.

use std::time::Instant;

use ndarray::ArrayView2;

use super::adamw::{mean_gradient, AdamWTwin, EncryptedAdamW, EncryptedAdamWConfig};
use super::adapters::{adapter_targets, EncryptedAdapters};
use super::blocks::merged;
use super::bounds::GradientBounds;
use super::forward::{flatten, unflatten};
use super::full;
use super::head::{flatten_head, unflatten_head, HEAD_LAYERS};
use super::loss::SoftmaxGradient;
use super::model::{EncryptedInput, EncryptedModel};
use super::scales::GradientScales;
use crate::circuits::refresh::{ensure_all, Refresh};
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::{Error, Result};
use crate::model::friendly::{
    Dense, FriendlyLayer, FriendlyModel, FriendlyWeights, Lora, LoraTarget, Projection, Variant,
};
use crate::model::train::classifier::Differentiable;
use crate::model::train::friendly::FriendlyBackprop;
use crate::model::train::ops::{cross_entropy, Functions};
use crate::model::train::params::Parameters;

const OP: &str = "FineTuning";

/// One labelled encrypted example: the input and its one-hot label in the
/// logits' layout ([`EncryptedModel::encrypt_logits_layout`]).
#[derive(Debug)]
pub struct LabeledInput {
    pub input: EncryptedInput,
    pub label: Ciphertext,
}

/// What one step measured.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StepReport {
    /// Wall time of the forwards (with the loss), the backwards and the
    /// optimizer, in seconds.
    pub forward_seconds: f64,
    pub backward_seconds: f64,
    pub optimizer_seconds: f64,
    /// Bootstraps of the whole step, and their time.
    pub bootstraps: usize,
    pub bootstrap_seconds: f64,
}

/// The fine-tuning of one model (built
/// [`for_adapters`](EncryptedModel::for_adapters)).
pub struct FineTuning<'a> {
    model: &'a EncryptedModel,
    loss: SoftmaxGradient,
    bounds: GradientBounds,
    /// What the mean gradients are divided by (none: unscaled).
    scales: Option<GradientScales>,
}

impl<'a> FineTuning<'a> {
    /// Fine-tuning of `model` with the backward's `bounds`; the logits lie
    /// in `[−logit_bound, logit_bound]`.
    ///
    /// Errors: a model with merged adapters, the loss's errors.
    pub fn new(
        model: &'a EncryptedModel,
        bounds: GradientBounds,
        logit_bound: f64,
    ) -> Result<Self> {
        if !model.takes_encrypted_adapters() {
            return Err(Error::InvalidParameters(format!(
                "{OP}: the model merges its adapters; build it for encrypted ones"
            )));
        }
        let shape = model.layout().shape();
        Ok(Self {
            model,
            loss: SoftmaxGradient::new(
                model.config().classes,
                shape.blocks(),
                shape.slots(),
                logit_bound,
            )?,
            bounds,
            scales: None,
        })
    }

    /// The same fine-tuning dividing each trained tensor's gradient by its
    /// scale before the optimizer ([`GradientScales`]; the twin's
    /// [`TwinFineTuning::with_gradient_scales`]). Their count is checked
    /// against the adapters at each step.
    pub fn with_gradient_scales(mut self, scales: GradientScales) -> Self {
        self.scales = Some(scales);
        self
    }

    /// One step: [`gradients`](Self::gradients) of `batch` then
    /// [`update`](Self::update) at `rate`; what it measured.
    ///
    /// Errors: those of both.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        ev: &Evaluator,
        adapters: &mut EncryptedAdapters,
        optimizer: &mut EncryptedAdamW,
        batch: &[LabeledInput],
        (lockstep, rate): (usize, f64),
        refresher: &mut dyn Refresh,
    ) -> Result<StepReport> {
        let mut report = StepReport::default();
        let (gradients, _) =
            self.gradients(ev, adapters, batch, lockstep, refresher, &mut report)?;
        self.update(
            ev,
            adapters,
            optimizer,
            &gradients,
            rate,
            refresher,
            &mut report,
        )?;
        Ok(report)
    }

    /// The rotation steps of the loss (the model's and the adapters' are
    /// [`ServerSetup`](super::ServerSetup)'s).
    pub fn loss_rotations(&self) -> Vec<i64> {
        self.loss.rotations()
    }

    /// The mean gradient of the adapters over `batch`, in micro-batches of
    /// `lockstep` examples, and each example's logits; adds to `report`.
    ///
    /// Errors: an empty batch, a lockstep of 0, the forward's, the loss's
    /// and the backward's errors.
    pub fn gradients(
        &self,
        ev: &Evaluator,
        adapters: &mut EncryptedAdapters,
        batch: &[LabeledInput],
        lockstep: usize,
        refresher: &mut dyn Refresh,
        report: &mut StepReport,
    ) -> Result<(Vec<Ciphertext>, Vec<Ciphertext>)> {
        if batch.is_empty() || lockstep == 0 {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!("a batch of {} in steps of {lockstep} examples", batch.len()),
            });
        }
        let mut per_example = Vec::with_capacity(batch.len());
        let mut all_logits = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(lockstep) {
            let (start, count, seconds) = (Instant::now(), refresher.count(), refresher.seconds());
            let inputs: Vec<EncryptedInput> = chunk
                .iter()
                .map(|example| {
                    Ok(EncryptedInput {
                        tokens: example
                            .input
                            .tokens
                            .iter()
                            .map(Ciphertext::try_clone)
                            .collect::<Result<_>>()?,
                        mask: example.input.mask.try_clone()?,
                    })
                })
                .collect::<Result<_>>()?;
            let (outputs, tapes): (Vec<_>, Vec<_>) = self
                .model
                .forward_taped(ev, &inputs, Some(&mut *adapters), refresher)?
                .into_iter()
                .unzip();
            drop(inputs);
            let logits: Vec<Ciphertext> = outputs.into_iter().map(|o| o.logits).collect();
            let labels: Vec<Ciphertext> = chunk
                .iter()
                .map(|example| example.label.try_clone())
                .collect::<Result<_>>()?;
            let d_logits =
                self.loss
                    .evaluate(ev, self.model.encoder(), &logits, &labels, refresher)?;
            report.forward_seconds += start.elapsed().as_secs_f64();
            let start = Instant::now();
            let gradients = self.model.backward(
                ev,
                tapes,
                &d_logits,
                Some(&mut *adapters),
                &self.bounds,
                refresher,
            )?;
            report.backward_seconds += start.elapsed().as_secs_f64();
            report.bootstraps += refresher.count() - count;
            report.bootstrap_seconds += refresher.seconds() - seconds;
            for example in gradients {
                // The parameters' flat order: adapters, dense weights, head.
                let (adapters, weights): (Vec<_>, Vec<_>) = example
                    .layers
                    .into_iter()
                    .map(|layer| (layer.adapters, layer.weights))
                    .unzip();
                let mut flat: Vec<Ciphertext> = adapters
                    .into_iter()
                    .flatten()
                    .flat_map(|g| g.a_columns.into_iter().chain(g.b_rows).flatten())
                    .collect();
                flat.extend(weights.into_iter().flatten());
                flat.extend(example.head);
                per_example.push(flat);
            }
            all_logits.extend(logits);
        }
        let (count, seconds) = (refresher.count(), refresher.seconds());
        let start = Instant::now();
        // Refreshed (where they lack the mean's level) as the backward
        // held them, loss-scaled (a relabelling there and back), all in one
        // refresh. The bound covers the adapters' gradients and the head's
        // (`xᵀ·∂B`: the head's input times its inner gradients) and, with
        // every weight encrypted, the layers' (`xᵀ·∂Y` summed over the
        // rows: the sequence times the largest input and output
        // gradient).
        let activations = self.model.bounds();
        let mut bound = self
            .bounds
            .projection
            .max(self.bounds.head * activations.normalized.max(activations.stream))
            .max(1.0);
        if adapters.is_full() {
            let input = [
                activations.normalized,
                activations.stream,
                activations.context,
                activations.ffn,
            ]
            .into_iter()
            .fold(0.0, f64::max);
            let output = [self.bounds.stream, self.bounds.projection, self.bounds.ffn]
                .into_iter()
                .fold(0.0, f64::max);
            let rows = self.model.config().seq_len as f64;
            bound = bound.max(rows * input * output);
        }
        let scale = self.bounds.loss_scale;
        let (mut all, sizes) = flatten(per_example);
        all.iter_mut().for_each(|ct| ct.scale /= scale);
        ensure_all(refresher, ev, &mut all, bound, 1)?;
        all.iter_mut().for_each(|ct| ct.scale *= scale);
        let mut per_example = unflatten(all, &sizes);
        if let Some(scales) = &self.scales {
            let tensors = adapters.tensor_indices();
            for example in per_example.iter_mut() {
                scales.divide_encrypted(&tensors, example)?;
            }
        }
        let mean = mean_gradient(ev, &per_example)?;
        report.optimizer_seconds += start.elapsed().as_secs_f64();
        report.bootstraps += refresher.count() - count;
        report.bootstrap_seconds += refresher.seconds() - seconds;
        Ok((mean, all_logits))
    }

    /// One optimizer step of `adapters` by their mean `gradients` at
    /// `rate`; adds to `report`. On an error the adapters keep their
    /// values. The optimizer steps
    /// [`optimizer_count`](EncryptedAdapters::optimizer_count) ciphertexts
    /// (the compact view).
    ///
    /// Errors: an optimizer whose parameter bound is not the adapters',
    /// lists of the wrong length, the optimizer's errors.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &self,
        ev: &Evaluator,
        adapters: &mut EncryptedAdapters,
        optimizer: &mut EncryptedAdamW,
        gradients: &[Ciphertext],
        rate: f64,
        refresher: &mut dyn Refresh,
        report: &mut StepReport,
    ) -> Result<()> {
        let bound = adapters.bound();
        if optimizer.config().parameter_bound != bound {
            return Err(Error::InvalidParameters(format!(
                "{OP}: the optimizer bounds the parameters by {}, the adapters by {bound}",
                optimizer.config().parameter_bound
            )));
        }
        let (start, count, seconds) = (Instant::now(), refresher.count(), refresher.seconds());
        // The optimizer works on the compact view (the head's and the
        // dense layers' occupied blocks packed together), then the new
        // values are expanded back into the circuit's layout.
        let encoder = self.model.encoder();
        let incoming = optimizer.config().incoming_bound();
        let compact_gradients =
            adapters.to_optimizer(ev, encoder, (gradients, incoming), refresher)?;
        let mut values =
            adapters.to_optimizer(ev, encoder, (adapters.parameters(), bound), refresher)?;
        optimizer.step(ev, &mut values, &compact_gradients, rate, refresher)?;
        adapters.set_from_optimizer(ev, encoder, values, refresher)?;
        report.optimizer_seconds += start.elapsed().as_secs_f64();
        report.bootstraps += refresher.count() - count;
        report.bootstrap_seconds += refresher.seconds() - seconds;
        Ok(())
    }
}

/// One labelled sequence in the clear: embeddings, mask, class.
pub type LabeledSequence<'a> = (ArrayView2<'a, f64>, &'a [bool], usize);

/// The twin of private fine-tuning, in `f64`: the twin's gradients of the
/// adapters (the same targets, averaged over the batch; or, for
/// [`full`](Self::full) fine-tuning, of every dense weight) through the exact
/// functions or through the circuit's polynomials
/// ([`Variant`]), and the optimizer's twin ([`AdamWTwin`]). Against the
/// polynomial twin the encrypted run differs by CKKS noise and
/// bootstrapping alone; the exact twin adds the polynomials' errors.
pub struct TwinFineTuning {
    backprop: FriendlyBackprop,
    /// The adapters trained (none under full fine-tuning).
    targets: Vec<LoraTarget>,
    /// Whether every dense weight is trained (the paper's baseline).
    full: bool,
    optimizer: AdamWTwin,
    /// What the gradients are divided by before the optimizer.
    scales: GradientScales,
}

impl TwinFineTuning {
    /// For `model`'s adapters with `optimizer`'s constants, through
    /// `variant`'s functions.
    ///
    /// Errors: targets the encrypted circuit does not serve, the
    /// optimizer's errors.
    pub fn new(
        model: &FriendlyModel,
        optimizer: EncryptedAdamWConfig,
        variant: Variant,
    ) -> Result<Self> {
        let targets = adapter_targets(model.config())?;
        Self::build(model, optimizer, variant, targets, false)
    }

    /// Full fine-tuning's twin (the paper's baseline): every dense weight
    /// (adapters merged in: `W + A·B`) and the head, with `optimizer`'s
    /// constants, through `variant`'s functions; the decay applies to every
    /// tensor, as the encrypted optimizer's flags do.
    ///
    /// Errors: the optimizer's errors.
    pub fn full(
        model: &FriendlyModel,
        optimizer: EncryptedAdamWConfig,
        variant: Variant,
    ) -> Result<Self> {
        Self::build(model, optimizer, variant, Vec::new(), true)
    }

    fn build(
        model: &FriendlyModel,
        optimizer: EncryptedAdamWConfig,
        variant: Variant,
        targets: Vec<LoraTarget>,
        full: bool,
    ) -> Result<Self> {
        let config = model.config();
        let tensors = if full {
            2 * config.layers * full::LAYER_DENSE + 2 * HEAD_LAYERS
        } else {
            2 * config.layers * targets.len() + 2 * HEAD_LAYERS
        };
        let functions = match variant {
            Variant::Exact => Functions::Exact,
            Variant::Polynomial => Functions::Polynomial(Box::new(model.polynomials().clone())),
        };
        Ok(Self {
            backprop: FriendlyBackprop::with_functions(config.clone(), functions)?,
            targets,
            full,
            optimizer: AdamWTwin::new(optimizer, vec![true; tensors])?,
            scales: GradientScales::unit(tensors),
        })
    }

    /// The same twin dividing its gradients by `scales` (one per trained
    /// tensor) before the optimizer, as [`FineTuning::with_gradient_scales`]
    /// does.
    ///
    /// Errors: another number of scales than trained tensors.
    pub fn with_gradient_scales(mut self, scales: GradientScales) -> Result<Self> {
        if scales.scales().len() != self.scales.scales().len() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: scales.scales().len(),
                expected: self.scales.scales().len(),
            });
        }
        self.scales = scales;
        Ok(self)
    }

    /// How many adapters it trains (`A` and `B` each are a tensor, first in
    /// the flat order).
    pub fn adapter_count(&self) -> usize {
        self.backprop.config().layers * self.targets.len()
    }

    /// The batch's mean cross-entropy and mean gradient of the trained
    /// tensors, in the flat order, unscaled.
    ///
    /// Errors: an empty batch, inputs the twin refuses, weights without
    /// the adapters.
    pub fn gradient(
        &self,
        weights: &FriendlyWeights,
        batch: &[LabeledSequence<'_>],
    ) -> Result<(f64, Vec<Vec<f64>>)> {
        if batch.is_empty() {
            return Err(Error::OutOfRange {
                op: OP,
                detail: "an empty batch".into(),
            });
        }
        let mut sum = weights.zeroed();
        let mut loss = 0.0;
        for &(embeddings, mask, label) in batch {
            let (logits, tape) = self.backprop.forward(weights, embeddings, mask)?;
            let (value, d_logits) = cross_entropy(logits.view(), label)?;
            loss += value;
            let mut gradient = weights.zeroed();
            self.backprop
                .backward(weights, tape, d_logits.view(), &mut gradient);
            sum.add_assign(&mut gradient)?;
        }
        sum.scale(1.0 / batch.len() as f64);
        let gradients = if self.full {
            // ∂(W + A·B) is ∂W: the gradient sink's dense weights.
            full_parameters_of(&sum, false)
        } else {
            trained_parameters(&sum, &self.targets)?
        };
        Ok((loss / batch.len() as f64, gradients))
    }

    /// One step of `weights`' adapters on `batch` at `rate`; returns the
    /// batch's mean cross-entropy (before the step).
    ///
    /// Errors: an empty batch, inputs the twin refuses, weights without
    /// the adapters.
    pub fn step(
        &mut self,
        weights: &mut FriendlyWeights,
        batch: &[LabeledSequence<'_>],
        rate: f64,
    ) -> Result<f64> {
        let (loss, mut gradients) = self.gradient(weights, batch)?;
        self.scales.divide(&mut gradients)?;
        if self.full {
            let mut parameters = full_parameters(weights);
            self.optimizer.step(&mut parameters, &gradients, rate)?;
            set_full_parameters(weights, &parameters)?;
            return Ok(loss);
        }
        let mut parameters = trained_parameters(weights, &self.targets)?;
        self.optimizer.step(&mut parameters, &gradients, rate)?;
        set_trained_parameters(weights, &self.targets, &parameters)?;
        Ok(loss)
    }
}

/// The adapters of `targets` in every layer, in the encrypted flat order.
///
/// Errors: a target without its adapter.
pub fn adapters_of<'w>(
    weights: &'w FriendlyWeights,
    targets: &[LoraTarget],
) -> Result<Vec<&'w Lora>> {
    let mut out = Vec::new();
    for layer in &weights.layers {
        for &target in targets {
            let projection = match target {
                LoraTarget::Query => &layer.query,
                LoraTarget::Key => &layer.key,
                LoraTarget::Value => &layer.value,
                LoraTarget::Output => &layer.output,
            };
            out.push(projection.lora.as_ref().ok_or_else(|| missing(target))?);
        }
    }
    Ok(out)
}

/// [`adapters_of`], mutably.
fn adapters_of_mut<'w>(
    weights: &'w mut FriendlyWeights,
    targets: &[LoraTarget],
) -> Result<Vec<&'w mut Lora>> {
    let mut out = Vec::new();
    for layer in weights.layers.iter_mut() {
        let FriendlyLayer {
            query,
            key,
            value,
            output,
            ..
        } = layer;
        let mut projections = [
            (LoraTarget::Query, Some(query)),
            (LoraTarget::Key, Some(key)),
            (LoraTarget::Value, Some(value)),
            (LoraTarget::Output, Some(output)),
        ];
        for &target in targets {
            let projection = projections
                .iter_mut()
                .find(|(t, _)| *t == target)
                .and_then(|(_, p)| p.take())
                .ok_or_else(|| missing(target))?;
            out.push(projection.lora.as_mut().ok_or_else(|| missing(target))?);
        }
    }
    Ok(out)
}

/// What private fine-tuning trains, flattened in the encrypted flat order:
/// each adapter's `A` then `B` ([`flatten_adapters`]), then the head's
/// tensors ([`flatten_head`]).
///
/// Errors: a target without its adapter.
pub fn trained_parameters(
    weights: &FriendlyWeights,
    targets: &[LoraTarget],
) -> Result<Vec<Vec<f64>>> {
    let mut out = flatten_adapters(&adapters_of(weights, targets)?);
    out.extend(flatten_head(&weights.head));
    Ok(out)
}

/// Writes [`trained_parameters`]' values back into `weights` (the client's
/// decrypted adapters and head, for example); on an error `weights` is
/// unchanged.
///
/// Errors: a target without its adapter, values of the wrong count or
/// shape.
pub fn set_trained_parameters(
    weights: &mut FriendlyWeights,
    targets: &[LoraTarget],
    values: &[Vec<f64>],
) -> Result<()> {
    let adapter_matrices = values
        .len()
        .checked_sub(2 * HEAD_LAYERS)
        .ok_or_else(|| internal("the head's parameters"))?;
    let (adapter_values, head_values) = values.split_at(adapter_matrices);
    // Checked before anything is written: the adapters' shapes, then the
    // head (into a copy).
    let lengths: Vec<usize> = adapters_of(weights, targets)?
        .iter()
        .flat_map(|lora| [lora.a.len(), lora.b.len()])
        .collect();
    let fits = lengths.len() == adapter_values.len()
        && lengths
            .iter()
            .zip(adapter_values)
            .all(|(&n, v)| n == v.len());
    if !fits {
        return Err(internal("the adapters' parameters"));
    }
    let mut head = weights.head.clone();
    unflatten_head(&mut head, head_values)?;
    let mut adapter_values = adapter_values.iter();
    for lora in adapters_of_mut(weights, targets)? {
        for (m, v) in [&mut lora.a, &mut lora.b]
            .into_iter()
            .zip(&mut adapter_values)
        {
            m.iter_mut().zip(v).for_each(|(x, y)| *x = *y);
        }
    }
    weights.head = head;
    Ok(())
}

/// What full fine-tuning trains, flattened in the encrypted flat order:
/// every layer's dense layers ([`super::full`]'s order, adapters merged,
/// each weight row-major then its bias), then the head's tensors.
pub fn full_parameters(weights: &FriendlyWeights) -> Vec<Vec<f64>> {
    full_parameters_of(weights, true)
}

/// [`full_parameters`], the adapters merged or not.
fn full_parameters_of(weights: &FriendlyWeights, merge: bool) -> Vec<Vec<f64>> {
    let layers: Vec<Vec<Dense>> = weights
        .layers
        .iter()
        .map(|layer| {
            let projection = |p: &Projection| {
                let (weight, bias) = merged(p, merge);
                Dense { weight, bias }
            };
            vec![
                projection(&layer.query),
                projection(&layer.key),
                projection(&layer.value),
                projection(&layer.output),
                layer.gate.clone(),
                layer.up.clone(),
                layer.down.clone(),
            ]
        })
        .collect();
    let mut out = flatten_dense_layers(&layers);
    out.extend(flatten_head(&weights.head));
    out
}

/// Each dense layer's weight (row-major) then bias, layer by layer.
pub fn flatten_dense_layers(layers: &[Vec<Dense>]) -> Vec<Vec<f64>> {
    layers
        .iter()
        .flatten()
        .flat_map(|d| [d.weight.iter().copied().collect(), d.bias.to_vec()])
        .collect()
}

/// Writes [`full_parameters`]' values back into `weights`: the merged
/// projections become the dense weights and the adapters' `B` zero (so
/// `W + A·B` is the trained weight).
fn set_full_parameters(weights: &mut FriendlyWeights, values: &[Vec<f64>]) -> Result<()> {
    let per_layer = 2 * full::LAYER_DENSE;
    let (dense, head) = values.split_at(weights.layers.len() * per_layer);
    for (layer, values) in weights.layers.iter_mut().zip(dense.chunks(per_layer)) {
        let FriendlyLayer {
            query,
            key,
            value,
            output,
            gate,
            up,
            down,
            ..
        } = layer;
        let mut targets: Vec<&mut Dense> = Vec::new();
        for projection in [query, key, value, output] {
            if let Some(lora) = projection.lora.as_mut() {
                lora.b.fill(0.0);
            }
            targets.push(&mut projection.dense);
        }
        targets.extend([gate, up, down]);
        for (target, pair) in targets.into_iter().zip(values.chunks(2)) {
            let (rows, cols) = target.weight.dim();
            if pair[0].len() != rows * cols || pair[1].len() != target.bias.len() {
                return Err(internal("a dense layer's parameters"));
            }
            target
                .weight
                .iter_mut()
                .zip(&pair[0])
                .for_each(|(x, y)| *x = *y);
            target
                .bias
                .iter_mut()
                .zip(&pair[1])
                .for_each(|(x, y)| *x = *y);
        }
    }
    unflatten_head(&mut weights.head, head)
}

/// Every value of `after` minus its value in `initial` (parameters as
/// [`trained_parameters`] flattens them): what a run changed.
pub fn parameter_change(initial: &[Vec<f64>], after: &[Vec<f64>]) -> Vec<f64> {
    after
        .iter()
        .zip(initial)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| x - y).collect::<Vec<_>>())
        .collect()
}

/// Each adapter's `A` then `B`, flattened: the optimizer twin's
/// parameters.
pub fn flatten_adapters(loras: &[&Lora]) -> Vec<Vec<f64>> {
    loras
        .iter()
        .flat_map(|l| [l.a.iter().copied().collect(), l.b.iter().copied().collect()])
        .collect()
}

fn missing(target: LoraTarget) -> Error {
    Error::InvalidParameters(format!("{OP}: a layer has no {target:?} adapter"))
}

fn internal(what: &str) -> Error {
    Error::OutOfRange {
        op: OP,
        detail: format!("internal: {what}"),
    }
}
