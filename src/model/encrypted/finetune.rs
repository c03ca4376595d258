//! Private fine-tuning: one optimizer step of the encrypted adapters on a
//! batch of encrypted examples and encrypted labels, all on the server.
//!
//! For each micro-batch (examples run in lockstep, sharing bootstraps):
//! the taped forward with the adapters, the cross-entropy's gradient
//! ([`SoftmaxGradient`]) from the encrypted one-hot labels, the backward
//! down to the adapters' gradients; then, over the whole batch (gradient
//! accumulation), their mean, and one [`EncryptedAdamW`] step. The
//! gradients are flattened in the adapters' flat order
//! ([`EncryptedAdapters::into_parameters`]), which is the optimizer's.

use std::time::Instant;

use super::adamw::{mean_gradient, EncryptedAdamW};
use super::adapters::EncryptedAdapters;
use super::bounds::GradientBounds;
use super::loss::SoftmaxGradient;
use super::model::{EncryptedInput, EncryptedModel};
use crate::circuits::refresh::{ensure_all, Refresh};
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::{Error, Result};

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
        })
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
                per_example.push(
                    example
                        .layers
                        .into_iter()
                        .flat_map(|layer| layer.adapters)
                        .flat_map(|g| g.a_columns.into_iter().chain(g.b_rows).flatten())
                        .collect::<Vec<_>>(),
                );
            }
            all_logits.extend(logits);
        }
        let (count, seconds) = (refresher.count(), refresher.seconds());
        let start = Instant::now();
        let bound = self.bounds.projection.max(1.0);
        for gradient in per_example.iter_mut() {
            ensure_all(refresher, ev, gradient, bound, 1)?;
        }
        let mean = mean_gradient(ev, &per_example)?;
        report.optimizer_seconds += start.elapsed().as_secs_f64();
        report.bootstraps += refresher.count() - count;
        report.bootstrap_seconds += refresher.seconds() - seconds;
        Ok((mean, all_logits))
    }

    /// One optimizer step of `adapters` by their mean `gradients` at
    /// `rate`; adds to `report`. On an error the adapters keep their
    /// values (they may have been refreshed).
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
        optimizer.step(ev, adapters.parameters_mut(), gradients, rate, refresher)?;
        report.optimizer_seconds += start.elapsed().as_secs_f64();
        report.bootstraps += refresher.count() - count;
        report.bootstrap_seconds += refresher.seconds() - seconds;
        Ok(())
    }
}
