//! `heformer rehearse` (client): the private fine-tuning's plaintext twin
//! on plaintext data. It takes the steps `heformer finetune` would take
//! under encryption (the same gradient scales, clip, optimizer constants,
//! inverse square root and, by default, the circuit's polynomials) and
//! measures held-out accuracy along the way, so that a client can choose
//! the rate, the batch and the number of steps before paying for the
//! encrypted run, and check that the optimizer's bounds hold on its data
//! (a gradient beyond the clip range is an error here; under encryption it
//! would be garbage). Step `s` takes the training sentences
//! `(s − 1)·batch ..` cyclically, as `finetune` takes its examples.

use std::path::PathBuf;
use std::time::Instant;

use super::client::{classes, twin_accuracy, Columns};
use super::model::{load_model, ModelSpec};
use crate::error::{Error, Result};
use crate::model::encrypted::adamw::EncryptedAdamWConfig;
use crate::model::encrypted::finetune::{LabeledSequence, TwinFineTuning};
use crate::model::friendly::{FriendlyModel, Variant};
use crate::model::train::adamw::{Decay, Schedule};
use crate::model::train::checkpoint::save_friendly;

/// Options of `heformer rehearse`.
#[derive(Debug, clap::Args)]
pub struct RehearseArgs {
    #[command(flatten)]
    model: ModelSpec,
    /// Training texts (CSV with a header, or JSONL); default: the model's
    /// training sentences (Rotten Tomatoes).
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    columns: Columns,
    /// Optimizer steps.
    #[arg(long, default_value_t = 125)]
    steps: u64,
    /// Sentences per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// The peak learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Warm-up steps.
    #[arg(long, default_value_t = 12)]
    warmup: u64,
    /// After the warm-up: constant, linear or cosine.
    #[arg(long, default_value = "linear")]
    decay: Decay,
    /// The functions: polynomial (the circuit's) or exact.
    #[arg(long, value_enum, default_value_t = Functions::Polynomial)]
    functions: Functions,
    /// Held-out sentences to measure accuracy on.
    #[arg(long, default_value_t = 500)]
    eval: usize,
    /// Measure every this many steps (and after the last).
    #[arg(long, default_value_t = 25)]
    every: u64,
    /// Write the rehearsed weights here (safetensors, as `heformer adapt`).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// The twin's functions.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Functions {
    Polynomial,
    Exact,
}

/// What a rehearsal measured.
#[derive(Debug, serde::Serialize)]
struct Summary {
    steps: u64,
    batch: usize,
    lr: f64,
    functions: &'static str,
    training_examples: usize,
    eval_examples: usize,
    /// `(step, held-out accuracy)`, from step 0.
    accuracy: Vec<(u64, f64)>,
    accuracy_before: f64,
    accuracy_after: f64,
    /// The mean loss of the last `--every` steps.
    final_loss: f64,
    seconds: f64,
}

pub(super) fn run(args: &RehearseArgs) -> Result<()> {
    let start = Instant::now();
    if args.batch == 0 || args.steps == 0 || args.eval == 0 {
        return Err(Error::InvalidParameters(
            "--steps, --batch and --eval must be at least 1".into(),
        ));
    }
    let schedule = Schedule::new(args.lr, args.warmup, args.steps, args.decay)?;
    let spec = ModelSpec {
        encrypted_adapters: true,
        ..args.model.clone()
    };
    let model = load_model(&spec)?;
    let config = model.twin.config().clone();
    let (train, train_label_set) = match &args.data {
        Some(path) => args.columns.read(path, None)?,
        None => (model.train.clone(), model.train.label_set()),
    };
    if train.is_empty() {
        return Err(Error::OutOfRange {
            op: "rehearse",
            detail: "no training sentences".into(),
        });
    }
    let (_, train_labels) = classes(&train, train_label_set, config.classes)?;
    let mut held_out = model.held_out.clone();
    held_out.examples.truncate(args.eval);
    let (_, held_out_labels) = classes(&held_out, model.held_out.label_set(), config.classes)?;
    let held_out_inputs = model.embed(&held_out.texts())?;
    let needed = (args.steps as usize)
        .saturating_mul(args.batch)
        .min(train.len());
    let train_inputs = model.embed(&train.texts()[..needed])?;
    let scales = model
        .gradient_scales
        .clone()
        .ok_or_else(|| Error::InvalidParameters("no gradient scales".into()))?;
    let variant = match args.functions {
        Functions::Polynomial => Variant::Polynomial,
        Functions::Exact => Variant::Exact,
    };
    let mut tuning = TwinFineTuning::new(&model.twin, EncryptedAdamWConfig::default(), variant)?
        .with_gradient_scales(scales.clone())?;
    eprintln!(
        "heformer rehearse: {} training sentences, {} held out, {} steps of {}, \
         gradient scales {:?}",
        train_inputs.len(),
        held_out_inputs.len(),
        args.steps,
        args.batch,
        scales.scales()
    );
    let accuracy_of = |weights| {
        let twin = FriendlyModel::new(config.clone(), weights)?;
        twin_accuracy(&twin, &held_out_inputs, &held_out_labels)
    };
    let mut weights = model.twin.weights().clone();
    let mut accuracy = vec![(0, accuracy_of(weights.clone())?)];
    eprintln!(
        "[{:7.1}s] step 0: held-out accuracy {:.4}",
        start.elapsed().as_secs_f64(),
        accuracy[0].1
    );
    let (mut losses, mut final_loss) = (Vec::new(), f64::NAN);
    for step in 1..=args.steps {
        let batch: Vec<LabeledSequence<'_>> = (0..args.batch)
            .map(|k| {
                let i = ((step - 1) as usize * args.batch + k) % train_inputs.len();
                let input = &train_inputs[i];
                (
                    input.embeddings.view(),
                    input.mask.as_slice(),
                    train_labels[i],
                )
            })
            .collect();
        let rate = schedule.rate(step);
        let loss = tuning
            .step(&mut weights, &batch, rate)
            .map_err(|e| Error::OutOfRange {
                op: "rehearse",
                detail: format!("step {step}: {e}"),
            })?;
        losses.push(loss);
        if step % args.every.max(1) == 0 || step == args.steps {
            final_loss = losses.iter().sum::<f64>() / losses.len() as f64;
            losses.clear();
            let a = accuracy_of(weights.clone())?;
            accuracy.push((step, a));
            eprintln!(
                "[{:7.1}s] step {step}: rate {rate:.2e}, mean loss {final_loss:.4}, held-out accuracy {a:.4}",
                start.elapsed().as_secs_f64()
            );
        }
    }
    if let Some(path) = &args.output {
        save_friendly(path, &config, &weights)?;
        eprintln!("rehearsed weights written to {}", path.display());
    }
    let summary = Summary {
        steps: args.steps,
        batch: args.batch,
        lr: args.lr,
        functions: match args.functions {
            Functions::Polynomial => "polynomial",
            Functions::Exact => "exact",
        },
        training_examples: train_inputs.len(),
        eval_examples: held_out_inputs.len(),
        accuracy_before: accuracy[0].1,
        accuracy_after: accuracy.last().map_or(f64::NAN, |a| a.1),
        accuracy,
        final_loss,
        seconds: start.elapsed().as_secs_f64(),
    };
    super::print_line(format_args!(
        "held-out accuracy {:.2}% before, {:.2}% after {} private steps of {} (the twin, {} functions), {:.0} s",
        100.0 * summary.accuracy_before,
        100.0 * summary.accuracy_after,
        summary.steps,
        summary.batch,
        summary.functions,
        summary.seconds
    ))?;
    if args.json {
        let line = serde_json::to_string(&summary).map_err(|e| Error::Format {
            what: "rehearse summary",
            detail: e.to_string(),
        })?;
        super::print_line(format_args!("{line}"))?;
    }
    Ok(())
}
