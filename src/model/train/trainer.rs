//! Mini-batch training with AdamW, and evaluation, for any
//! [`Differentiable`] model.
//!
//! Each epoch visits the samples in a seeded random order (the data
//! module's Fisher–Yates on ChaCha20, seed `seed + epoch`), in batches of
//! `batch_size` (the last one shorter). A batch's gradient is the mean of
//! its samples' cross-entropy gradients, computed in parallel with rayon
//! (one accumulating gradient per worker, summed at the end); it is clipped
//! to `clip_norm` in Euclidean norm over the trained tensors when asked,
//! and AdamW takes one step at the schedule's rate. The same seed, samples
//! and options give the same weights up to the order of floating-point
//! sums across workers.

use rayon::prelude::*;

use super::adamw::{AdamW, AdamWConfig, Decay, Schedule};
use super::classifier::{loss_gradient, predicted_class, Differentiable, Sample};
use super::params::{Parameters, Trainable};
use crate::data::split::shuffle;
use crate::error::{Error, Result};

/// How to train.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch_size: usize,
    /// The schedule's peak rate.
    pub rate: f64,
    /// The fraction of all steps spent warming up, in `[0, 1]`.
    pub warmup_fraction: f64,
    pub decay: Decay,
    pub adamw: AdamWConfig,
    /// Clip each batch's gradient to this Euclidean norm.
    pub clip_norm: Option<f64>,
    pub trainable: Trainable,
    pub seed: u64,
}

/// What one optimizer step saw.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// 1-based.
    pub step: u64,
    pub steps: u64,
    /// 0-based.
    pub epoch: usize,
    /// The batch's mean loss.
    pub loss: f64,
    /// Correct predictions in the batch (before the step).
    pub correct: usize,
    pub batch: usize,
    pub rate: f64,
    /// The batch gradient's norm before clipping.
    pub gradient_norm: f64,
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct TrainReport {
    pub steps: u64,
    /// Per epoch, the mean loss of its batches' samples (before each step).
    pub epoch_losses: Vec<f64>,
}

/// Accuracy and mean loss over samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    pub accuracy: f64,
    pub mean_loss: f64,
    pub count: usize,
}

impl TrainOptions {
    fn check(&self, samples: usize) -> Result<()> {
        let refuse = |detail: String| Err(Error::InvalidParameters(format!("training: {detail}")));
        if samples == 0 {
            return refuse("no training samples".into());
        }
        if self.epochs == 0 || self.batch_size == 0 {
            return refuse(format!(
                "{} epochs of batches of {}",
                self.epochs, self.batch_size
            ));
        }
        if !(0.0..=1.0).contains(&self.warmup_fraction) {
            return refuse(format!(
                "warm-up fraction {} is outside [0, 1]",
                self.warmup_fraction
            ));
        }
        if let Some(clip) = self.clip_norm {
            if !(clip.is_finite() && clip > 0.0) {
                return refuse(format!("clip norm {clip} is not positive"));
            }
        }
        Ok(())
    }
}

/// Trains `weights` on `samples`; `on_step` hears of every step.
///
/// Errors: bad options or weights, a sample the model refuses, a
/// non-finite gradient (training diverged).
pub fn train<M: Differentiable>(
    model: &M,
    weights: &mut M::Weights,
    samples: &[Sample],
    options: &TrainOptions,
    on_step: &mut dyn FnMut(&StepReport),
) -> Result<TrainReport> {
    options.check(samples.len())?;
    model.check_weights(weights)?;
    let per_epoch = samples.len().div_ceil(options.batch_size) as u64;
    let total = per_epoch * options.epochs as u64;
    let warmup = (total as f64 * options.warmup_fraction).round() as u64;
    let schedule = Schedule::new(options.rate, warmup, total, options.decay)?;
    let mut optimizer = AdamW::new(options.adamw, options.trainable, weights)?;
    let mut epoch_losses = Vec::with_capacity(options.epochs);
    for epoch in 0..options.epochs {
        let mut order: Vec<usize> = (0..samples.len()).collect();
        shuffle(&mut order, options.seed.wrapping_add(epoch as u64));
        let mut loss_sum = 0.0;
        for batch in order.chunks(options.batch_size) {
            let (mut gradient, loss, correct) = batch_gradient(model, weights, samples, batch)?;
            loss_sum += loss * batch.len() as f64;
            let trainable = options.trainable;
            let norm = gradient
                .squared_norm(|group| trainable.includes(group))
                .sqrt();
            if let Some(clip) = options.clip_norm {
                if norm > clip {
                    gradient.scale(clip / norm);
                }
            }
            let step = optimizer.steps() + 1;
            let rate = schedule.rate(step);
            optimizer.step(weights, &mut gradient, rate)?;
            on_step(&StepReport {
                step,
                steps: total,
                epoch,
                loss,
                correct,
                batch: batch.len(),
                rate,
                gradient_norm: norm,
            });
        }
        epoch_losses.push(loss_sum / samples.len() as f64);
    }
    Ok(TrainReport {
        steps: optimizer.steps(),
        epoch_losses,
    })
}

/// The mean gradient of the batch's losses, their mean, and the number of
/// correct predictions.
fn batch_gradient<M: Differentiable>(
    model: &M,
    weights: &M::Weights,
    samples: &[Sample],
    batch: &[usize],
) -> Result<(M::Weights, f64, usize)> {
    let scale = 1.0 / batch.len() as f64;
    let per_worker = batch.len().div_ceil(rayon::current_num_threads()).max(1);
    let (gradient, loss, correct) = batch
        .par_iter()
        .with_min_len(per_worker)
        .try_fold(
            || (weights.zeroed(), 0.0, 0),
            |(mut gradient, loss, correct), &index| {
                let sample = &samples[index];
                let (sample_loss, logits) =
                    loss_gradient(model, weights, sample, scale, &mut gradient)?;
                let hit = usize::from(predicted_class(logits.view()) == sample.label);
                Ok::<_, Error>((gradient, loss + sample_loss, correct + hit))
            },
        )
        .try_reduce_with(|(mut a, loss_a, correct_a), (mut b, loss_b, correct_b)| {
            a.add_assign(&mut b)?;
            Ok((a, loss_a + loss_b, correct_a + correct_b))
        })
        .unwrap_or_else(|| Ok((weights.zeroed(), 0.0, 0)))?;
    Ok((gradient, loss * scale, correct))
}

/// Accuracy and mean cross-entropy of `weights` on `samples` (in parallel).
///
/// Errors: bad weights, a sample the model refuses, no samples.
pub fn evaluate<M: Differentiable>(
    model: &M,
    weights: &M::Weights,
    samples: &[Sample],
) -> Result<Evaluation> {
    if samples.is_empty() {
        return Err(Error::InvalidParameters("evaluation: no samples".into()));
    }
    model.check_weights(weights)?;
    let (loss, correct) = samples
        .par_iter()
        .map(|sample| {
            let (logits, _) = model.forward(weights, sample.input.view(), &sample.mask)?;
            let (loss, _) = super::ops::cross_entropy(logits.view(), sample.label)?;
            Ok((
                loss,
                usize::from(predicted_class(logits.view()) == sample.label),
            ))
        })
        .try_reduce(|| (0.0, 0), |a, b| Ok((a.0 + b.0, a.1 + b.1)))?;
    let count = samples.len();
    Ok(Evaluation {
        accuracy: correct as f64 / count as f64,
        mean_loss: loss / count as f64,
        count,
    })
}
