//! `heformer adapt`: the plaintext adaptation of MiniLM's first `k` layers
//! into the encryption-friendly model (`model::train::adapt`), with
//! progress on standard error, a summary (or one JSON line with `--json`)
//! on standard output, and the adapted weights written as safetensors
//! (`model::train::checkpoint`).

use std::path::PathBuf;
use std::time::Instant;

use crate::assets::AssetPaths;
use crate::error::{Error, Result};
use crate::model::friendly::ApproximationRanges;
use crate::model::train::adamw::{AdamWConfig, Decay};
use crate::model::train::adapt::{adapt, AdaptEvent, AdaptOptions, AdaptReport, Corpus};
use crate::model::train::checkpoint::save_friendly;
use crate::model::train::params::Trainable;
use crate::model::train::trainer::TrainOptions;

/// Options of `heformer adapt`.
#[derive(Debug, clap::Args)]
pub struct AdaptArgs {
    /// k: MiniLM's first layers to adapt.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Tokens per sentence (truncated or padded).
    #[arg(long, default_value_t = 32)]
    seq_len: usize,
    /// rotten-tomatoes or mr.
    #[arg(long, default_value = "rotten-tomatoes")]
    corpus: Corpus,
    /// Training examples (the first of the split; 0: all).
    #[arg(long, default_value_t = 4000)]
    train_size: usize,
    /// Held-out examples (the first of the split's test part; 0: all).
    #[arg(long, default_value_t = 1000)]
    test_size: usize,
    /// Fraction of the corpus held out by the seeded split.
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// Seed of the split.
    #[arg(long, default_value_t = 1)]
    split_seed: u64,
    /// Seed of the mapping (LoRA A, head), the batch order and the rest.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Epochs of fine-tuning what `--trainable` names (0: none; the written
    /// weights are the mapped layers with the head trained alone).
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Sentences per batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Peak learning rate of the fine-tuning.
    #[arg(long, default_value_t = 5e-4)]
    lr: f64,
    /// Epochs of training the head alone first.
    #[arg(long, default_value_t = 10)]
    head_epochs: usize,
    /// Peak learning rate of the head alone.
    #[arg(long, default_value_t = 3e-3)]
    head_lr: f64,
    /// Fraction of the steps spent warming up.
    #[arg(long, default_value_t = 0.1)]
    warmup: f64,
    /// Decay after the warm-up: constant, linear or cosine.
    #[arg(long, default_value = "linear")]
    decay: Decay,
    /// AdamW's ε, in both stages (the encrypted optimizer's default is
    /// 2^−10 ≈ 9.8e-4).
    #[arg(long, default_value_t = 1e-8)]
    epsilon: f64,
    /// AdamW's decoupled weight decay.
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Clip each batch gradient to this norm (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    /// What the fine-tuning trains: all, lora-head or head (the exact
    /// baseline has no LoRA: lora-head trains its head).
    #[arg(long, default_value = "all")]
    trainable: Trainable,
    /// Skip the exact baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Keep MiniLM's query/key scale (no attention rescaling).
    #[arg(long)]
    no_attention_scaling: bool,
    /// Training sentences used to scale attention and measure ranges.
    #[arg(long, default_value_t = 256)]
    calibration_samples: usize,
    /// Margin of the fitted polynomial ranges over the measured extremes.
    #[arg(long, default_value_t = 1.5)]
    range_margin: f64,
    /// Where to write the adapted friendly weights.
    #[arg(long, default_value = "adapted-friendly.safetensors")]
    output: PathBuf,
    /// Print a progress line every this many steps.
    #[arg(long, default_value_t = 10)]
    every: u64,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// One JSON object instead of the summary.
    #[arg(long)]
    json: bool,
}

/// The starting polynomial ranges: the defaults with ReLU on [−64, 64] and
/// variances on [2^−8, 2^10], which hold MiniLM's mapped activations
/// (`tests/friendly_model.rs`).
pub fn starting_ranges() -> ApproximationRanges {
    ApproximationRanges {
        relu_bound: 64.0,
        variance: (1.0 / 256.0, 1024.0),
        ..ApproximationRanges::default()
    }
}

impl AdaptArgs {
    fn options(&self) -> AdaptOptions {
        let stage = |epochs: usize, rate: f64, trainable: Trainable| TrainOptions {
            epochs,
            batch_size: self.batch,
            rate,
            warmup_fraction: self.warmup,
            decay: self.decay,
            adamw: AdamWConfig {
                weight_decay: self.weight_decay,
                epsilon: self.epsilon,
                ..AdamWConfig::default()
            },
            clip_norm: (self.clip > 0.0).then_some(self.clip),
            trainable,
            seed: self.seed,
        };
        AdaptOptions {
            layers: self.layers,
            seq_len: self.seq_len,
            corpus: self.corpus,
            test_fraction: self.test_fraction,
            split_seed: self.split_seed,
            train_size: (self.train_size > 0).then_some(self.train_size),
            test_size: (self.test_size > 0).then_some(self.test_size),
            seed: self.seed,
            head: stage(self.head_epochs, self.head_lr, Trainable::Head),
            fine_tune: stage(self.epochs, self.lr, self.trainable),
            baseline: !self.no_baseline,
            scale_attention: !self.no_attention_scaling,
            calibration_samples: self.calibration_samples,
            ranges: starting_ranges(),
            range_margin: self.range_margin,
        }
    }
}

pub(super) fn run_adapt(args: &AdaptArgs) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .map_err(|e| Error::InvalidParameters(format!("--threads {}: {e}", args.threads)))?;
    let options = args.options();
    let assets = AssetPaths::from_env();
    let start = Instant::now();
    eprintln!(
        "heformer adapt: MiniLM's first {} layers, {} tokens, {} threads, assets in {}",
        args.layers,
        args.seq_len,
        pool.current_num_threads(),
        assets.root().display()
    );
    let every = args.every.max(1);
    let mut early_save = None;
    let result = pool.install(|| {
        adapt(&assets, &options, &mut |event| match event {
            AdaptEvent::Trained { config, weights } => {
                early_save = Some(save_friendly(&args.output, config, weights));
            }
            AdaptEvent::Stage(stage) => {
                eprintln!("[{:7.1}s] {stage}", start.elapsed().as_secs_f64())
            }
            AdaptEvent::Step { phase, report } => {
                if report.step % every == 0 || report.step == report.steps {
                    eprintln!(
                        "[{:7.1}s] {phase:>13} step {:>5}/{} epoch {} loss {:.4} batch acc {:.2} \
                         lr {:.2e} |g| {:.3}",
                        start.elapsed().as_secs_f64(),
                        report.step,
                        report.steps,
                        report.epoch + 1,
                        report.loss,
                        report.correct as f64 / report.batch as f64,
                        report.rate,
                        report.gradient_norm
                    );
                }
            }
        })
    });
    let adapted = match (result, early_save) {
        (Ok(adapted), _) => adapted,
        (Err(error), Some(Ok(()))) => {
            eprintln!(
                "the trained weights (with the starting ranges) are in {}",
                args.output.display()
            );
            return Err(error);
        }
        (Err(error), _) => return Err(error),
    };
    save_friendly(&args.output, &adapted.config, &adapted.weights)?;
    eprintln!(
        "adapted friendly weights written to {}",
        args.output.display()
    );
    let report = &adapted.report;
    if args.json {
        let line = serde_json::to_string(report).map_err(|e| Error::Format {
            what: "adapt report",
            detail: e.to_string(),
        })?;
        super::print_line(format_args!("{line}"))
    } else {
        print_summary(report)
    }
}

fn print_summary(report: &AdaptReport) -> Result<()> {
    let percent = |a: Option<f64>| a.map_or("-".to_owned(), |a| format!("{:.2}%", 100.0 * a));
    let lines = [
        format!(
            "k = {}, seq_len = {}, {} training / {} held-out sentences, {:.0} s",
            report.k, report.seq_len, report.examples, report.test_examples, report.seconds
        ),
        format!(
            "majority class:                  {}",
            percent(Some(report.accuracy_majority))
        ),
        format!(
            "exact layers, head alone:        {}",
            percent(report.accuracy_exact_frozen)
        ),
        format!(
            "exact layers, fine-tuned:        {}",
            percent(report.accuracy_exact_baseline)
        ),
        format!(
            "friendly, before (head alone):   {}",
            percent(Some(report.accuracy_friendly_before))
        ),
        format!(
            "friendly, after (fine-tuned):    {}",
            percent(Some(report.accuracy_friendly_after))
        ),
        format!(
            "friendly, circuit polynomials:   {}",
            percent(Some(report.accuracy_friendly_polynomial))
        ),
        format!(
            "range violations: {} with the fitted ranges {:?}, {:?} with the starting ones",
            report.range_violations,
            report.range_violations_by_function,
            report.range_violations_starting_ranges
        ),
    ];
    for line in lines {
        super::print_line(format_args!("{line}"))?;
    }
    Ok(())
}
