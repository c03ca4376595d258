//! `heformer finetune` (server): private LoRA fine-tuning with the
//! evaluation keys alone. The training examples and their labels arrive
//! encrypted (`heformer encrypt --labels`); the adapters start as the
//! model's, encrypted by the server with the client's public key, and stay
//! encrypted, as do the gradients and the optimizer's moments. After every
//! step the adapters and the optimizer state are written to
//! `RUN/checkpoint.ckpt` (replaced atomically); a run started again on the
//! same directory resumes from it and gives the ciphertexts an
//! uninterrupted run would have given. Step `s` takes the examples
//! `(s − 1)·batch ..` cyclically.

use std::path::PathBuf;
use std::time::Instant;

use super::files::{self, EvalDir, CHECKPOINT};
use super::infer::{load_adapters, Server};
use super::model::load_model;
use super::BackendArgs;
use crate::ckks::{Encoder, EncryptionKey, Encryptor};
use crate::error::{Error, Result};
use crate::model::encrypted::adamw::{EncryptedAdamW, EncryptedAdamWConfig};
use crate::model::encrypted::checkpoint::save_checkpoint;
use crate::model::encrypted::{AdapterMode, EncryptedAdapters, FineTuning, LabeledInput};
use crate::model::train::adamw::{Decay, Schedule};

/// Options of `heformer finetune`.
#[derive(Debug, clap::Args)]
pub struct FinetuneArgs {
    /// The evaluation-key directory (`KEYS/eval` of `heformer keygen
    /// --encrypted-adapters`).
    #[arg(long)]
    eval_keys: PathBuf,
    /// The encrypted training examples with their encrypted labels
    /// (`heformer encrypt --labels`).
    #[arg(long)]
    input: PathBuf,
    /// The run's directory: its checkpoint is written after every step,
    /// and a run resumes from it.
    #[arg(long)]
    out: PathBuf,
    /// Optimizer steps in all (a resumed run does the remaining ones).
    #[arg(long, default_value_t = 1)]
    steps: u64,
    /// Examples per step: their gradients are averaged (accumulation).
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Examples run in lockstep within a step (they share bootstraps;
    /// memory grows with it).
    #[arg(long, default_value_t = 2)]
    lockstep: usize,
    /// The peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Warm-up steps (the rate grows linearly to the peak).
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// After the warm-up: constant, linear (to 0 at the last step) or
    /// cosine; the schedule spans `--steps` (a resumed run with another
    /// `--steps` follows the new schedule).
    #[arg(long, default_value = "constant")]
    decay: Decay,
    /// The logits' bound: the loss's exp and reciprocal are fitted on it.
    #[arg(long, default_value_t = 4.0)]
    logit_bound: f64,
    /// INSECURE, tests only: the randomness of the initial adapters'
    /// encryption from this seed (a run is then reproducible).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// The labelled examples of step `step` (from 1): `batch` of them from
/// `(step − 1)·batch`, cyclically.
fn step_examples(count: usize, batch: usize, step: u64) -> Vec<usize> {
    let start = (step.saturating_sub(1) as usize).wrapping_mul(batch);
    (0..batch).map(|k| (start + k) % count).collect()
}

pub(super) fn run(args: &FinetuneArgs) -> Result<()> {
    let eval = EvalDir::open(&args.eval_keys)?;
    let (params, spec) = eval.setup()?;
    if spec.adapter_mode() != AdapterMode::Encrypted {
        return Err(Error::InvalidParameters(
            "finetune needs keys made with --encrypted-adapters".into(),
        ));
    }
    if args.batch == 0 || args.lockstep == 0 {
        return Err(Error::InvalidParameters(
            "--batch and --lockstep must be at least 1".into(),
        ));
    }
    let schedule = Schedule::new(args.lr, args.warmup, args.steps, args.decay)?;
    let examples = files::input_examples(&args.input)?;
    let labels: Vec<PathBuf> = examples.iter().map(|p| files::label_path(p)).collect();
    if let Some(missing) = labels.iter().find(|p| !p.is_file()) {
        return Err(files::io_error(
            missing,
            "no encrypted label (encrypt the training data with --labels): reading",
            std::io::ErrorKind::NotFound.into(),
        ));
    }
    let model = load_model(&spec)?;
    let gradient_bounds = model
        .gradient_bounds
        .ok_or_else(|| Error::InvalidParameters("no gradient bounds".into()))?;
    let ctx = files::context(&params, &args.backend)?;
    eprintln!(
        "heformer finetune: {} (N = 2^{}), {} training examples, batch {}, loading keys...",
        params.name(),
        params.log_n(),
        examples.len(),
        args.batch
    );
    let server = Server::new(&model, &ctx, eval.keys(&ctx)?)?;
    let scales = model
        .gradient_scales
        .clone()
        .ok_or_else(|| Error::InvalidParameters("no gradient scales".into()))?;
    let tuning = FineTuning::new(server.model(), gradient_bounds, args.logit_bound)?
        .with_gradient_scales(scales);
    files::create_dir(&args.out)?;
    let checkpoint = args.out.join(CHECKPOINT);
    let (mut adapters, mut optimizer) = if checkpoint.is_file() {
        let (adapters, optimizer) = load_adapters(server.model(), &ctx, &checkpoint)?;
        eprintln!(
            "resuming {} after step {}",
            checkpoint.display(),
            optimizer.steps()
        );
        (adapters, optimizer)
    } else {
        let config = EncryptedAdamWConfig::default();
        let mut encryptor = Encryptor::new(
            ctx.clone(),
            EncryptionKey::Public(eval.public_key(&ctx)?),
            super::keygen::prng(args.seed)?,
        )?;
        let adapters = EncryptedAdapters::encrypt(
            model.twin.config(),
            server.model().layout(),
            (&Encoder::new(ctx.clone()), &mut encryptor),
            model.twin.weights(),
            server.input_level(),
            config.parameter_bound,
        )?;
        let optimizer = EncryptedAdamW::new(config, vec![true; adapters.optimizer_count()])?;
        (adapters, optimizer)
    };
    let done = optimizer.steps();
    if done >= args.steps {
        return super::print_line(format_args!(
            "{} already holds {done} steps (of {}): nothing to do",
            checkpoint.display(),
            args.steps
        ));
    }
    let blocks = server.model().layout().hidden_ciphertexts();
    let bar = super::keygen::progress((args.steps - done) as usize, "private fine-tuning");
    let start = Instant::now();
    for step in done + 1..=args.steps {
        let batch = step_examples(examples.len(), args.batch, step)
            .into_iter()
            .map(|k| {
                Ok(LabeledInput {
                    input: files::load_example(&ctx, &examples[k], blocks)?,
                    label: crate::ckks::serialize::load_ciphertext(&ctx, &labels[k])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rate = schedule.rate(step);
        let report = tuning.step(
            server.evaluator(),
            &mut adapters,
            &mut optimizer,
            &batch,
            (args.lockstep, rate),
            &mut server.refresher(),
        )?;
        save_checkpoint(&ctx, &checkpoint, adapters.parameters(), &optimizer)?;
        bar.inc(1);
        bar.suspend(|| {
            super::print_line(format_args!(
                "step {step}/{}: rate {rate:.3e}, {} examples: forward {:.1} s, backward {:.1} s, optimizer {:.1} s ({} bootstraps, {:.1} s) -> {}",
                args.steps,
                batch.len(),
                report.forward_seconds,
                report.backward_seconds,
                report.optimizer_seconds,
                report.bootstraps,
                report.bootstrap_seconds,
                checkpoint.display()
            ))
        })?;
    }
    bar.finish_and_clear();
    let steps = args.steps - done;
    let per_step = start.elapsed().as_secs_f64() / steps as f64;
    let per_epoch = per_step * examples.len() as f64 / args.batch as f64;
    super::print_line(format_args!(
        "{steps} steps in {:.1} s: {per_step:.1} s per step of {} examples, {per_epoch:.1} s per epoch of {} examples; encrypted adapters and optimizer state in {}",
        start.elapsed().as_secs_f64(),
        args.batch,
        examples.len(),
        checkpoint.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::step_examples;

    #[test]
    fn steps_take_their_examples_cyclically() {
        assert_eq!(step_examples(5, 2, 1), vec![0, 1]);
        assert_eq!(step_examples(5, 2, 3), vec![4, 0]);
        assert_eq!(step_examples(3, 4, 2), vec![1, 2, 0, 1]);
    }
}
