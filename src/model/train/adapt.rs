//! The plaintext adaptation of MiniLM's first `k` layers, end to end: what
//! `heformer adapt` runs.
//!
//! 1. Data: the corpus (Rotten Tomatoes or MR) split by the data module's
//!    seeded split, each part cut to the requested size, tokenized to
//!    `seq_len` by MiniLM's tokenizer; a sample's input is MiniLM's
//!    embedding output for its real tokens (padded rows never reach a real
//!    one, so they are dropped for training and the exact evaluations).
//! 2. Exact baseline: MiniLM's first `k` layers (softmax, GELU, post-LN)
//!    with the head on the first token. "Frozen": the head trained alone
//!    on the layers' outputs; "baseline": then every weight fine-tuned.
//! 3. Friendly model: the same layers mapped by
//!    [`FriendlyWeights::from_bert`] (same head initialisation), with the
//!    attention scale of [`scale_attention`] when asked. "Before": the head
//!    trained alone on the mapped layers; "after": then every weight
//!    fine-tuned with the same options as the baseline.
//! 4. Circuit check: the config's polynomial ranges fitted to the adapted
//!    model's activations on full padded training sequences
//!    ([`RangeStats::fitted_ranges`]), then the held-out set through
//!    [`FriendlyModel::forward`] on full padded sequences, exact and with
//!    the polynomials, counting range violations.
//!
//! Embeddings are inputs, not trained, for both models (the encrypted
//! model receives them from the client).

use std::path::PathBuf;
use std::time::Instant;

use ndarray::Axis;
use rayon::prelude::*;

use super::calibrate::{scale_attention, RangeStats};
use super::classifier::{predicted_class, HeadedClassifier, Sample};
use super::exact::{ExactBackprop, ExactWeights};
use super::friendly::FriendlyBackprop;
use super::head::HeadClassifier;
use super::trainer::{evaluate, train, StepReport, TrainOptions};
use crate::assets::{describe_missing, AssetPaths};
use crate::data::corpora::{load_mr_polarity, load_rotten_tomatoes};
use crate::data::tokenizer::SentenceTokenizer;
use crate::data::{Dataset, LabelSet};
use crate::error::{Error, Result};
use crate::model::config::BertConfig;
use crate::model::friendly::{
    ApproximationRanges, FriendlyConfig, FriendlyModel, FriendlyWeights, RangeViolations, Variant,
};
use crate::model::reference::ReferenceBert;
use crate::model::weights::BertWeights;

/// The labelled corpus to adapt on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Corpus {
    RottenTomatoes,
    Mr,
}

impl std::str::FromStr for Corpus {
    type Err = Error;

    /// `rotten-tomatoes` or `mr`.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "rotten-tomatoes" => Ok(Corpus::RottenTomatoes),
            "mr" => Ok(Corpus::Mr),
            other => Err(Error::InvalidParameters(format!(
                "corpus `{other}`: expected rotten-tomatoes or mr"
            ))),
        }
    }
}

/// Everything the adaptation can be told.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdaptOptions {
    /// `k`: MiniLM's first layers taken.
    pub layers: usize,
    pub seq_len: usize,
    pub corpus: Corpus,
    pub test_fraction: f64,
    pub split_seed: u64,
    /// At most this many training examples (the first of the split).
    pub train_size: Option<usize>,
    pub test_size: Option<usize>,
    /// Seed of the mapping's random parts (LoRA `A`, the head).
    pub seed: u64,
    /// Training of the head alone.
    pub head: TrainOptions,
    /// Fine-tuning of every weight (both models).
    pub fine_tune: TrainOptions,
    /// Whether to run the exact baseline.
    pub baseline: bool,
    /// Whether to rescale the mapped attention ([`scale_attention`]).
    pub scale_attention: bool,
    /// Training samples used to scale attention and measure ranges.
    pub calibration_samples: usize,
    /// The starting polynomial ranges.
    pub ranges: ApproximationRanges,
    /// Margin of the fitted ranges over the measured extremes.
    pub range_margin: f64,
}

/// The figures of one adaptation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdaptReport {
    /// The held-out share of the most frequent class (a constant guess).
    pub accuracy_majority: f64,
    /// Exact layers, head trained alone.
    pub accuracy_exact_frozen: Option<f64>,
    /// Exact layers, every weight fine-tuned.
    pub accuracy_exact_baseline: Option<f64>,
    /// Mapped friendly layers, head trained alone.
    pub accuracy_friendly_before: f64,
    /// Friendly model, every weight fine-tuned (exact non-linearities).
    pub accuracy_friendly_after: f64,
    /// The same weights with the circuit's polynomials, full padded
    /// sequences.
    pub accuracy_friendly_polynomial: f64,
    /// The exact twin ([`FriendlyModel::forward`]) on full padded
    /// sequences: equals `accuracy_friendly_after` (a consistency check).
    pub accuracy_friendly_exact_padded: f64,
    /// Inputs outside their polynomial's range in the polynomial run.
    pub range_violations: usize,
    pub range_violations_by_function: Violations,
    /// The exact run's violations under the starting ranges.
    pub range_violations_starting_ranges: Violations,
    pub ranges_before: ApproximationRanges,
    pub ranges_after: ApproximationRanges,
    pub range_stats: RangeStats,
    /// `α` per layer and head (empty when not scaled).
    pub attention_scales: Vec<Vec<f64>>,
    pub k: usize,
    pub seq_len: usize,
    /// Training examples.
    pub examples: usize,
    pub test_examples: usize,
    pub seconds: f64,
    pub seconds_baseline: f64,
    pub seconds_friendly: f64,
    pub seconds_polynomial: f64,
}

/// [`RangeViolations`] in a report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Violations {
    pub exp: usize,
    pub relu: usize,
    pub inv_sqrt: usize,
    pub tanh: usize,
}

impl From<RangeViolations> for Violations {
    fn from(counts: RangeViolations) -> Self {
        Self {
            exp: counts.exp,
            relu: counts.relu,
            inv_sqrt: counts.inv_sqrt,
            tanh: counts.tanh,
        }
    }
}

impl Violations {
    fn merge(self, other: Self) -> Self {
        Self {
            exp: self.exp + other.exp,
            relu: self.relu + other.relu,
            inv_sqrt: self.inv_sqrt + other.inv_sqrt,
            tanh: self.tanh + other.tanh,
        }
    }

    /// All together.
    pub fn total(&self) -> usize {
        self.exp + self.relu + self.inv_sqrt + self.tanh
    }
}

/// The adapted friendly model and the figures.
pub struct Adapted {
    pub report: AdaptReport,
    pub config: FriendlyConfig,
    pub weights: FriendlyWeights,
}

/// What the adaptation reports while it runs.
pub enum AdaptEvent<'a> {
    /// A phase starts.
    Stage(String),
    /// An optimizer step of a phase.
    Step {
        phase: &'a str,
        report: &'a StepReport,
    },
    /// The friendly model is trained (its config still has the starting
    /// ranges): a chance to keep the weights before the circuit check.
    Trained {
        config: &'a FriendlyConfig,
        weights: &'a FriendlyWeights,
    },
}

/// A tokenized example: `seq_len` ids, the mask, the class.
struct Tokenized {
    ids: Vec<u32>,
    mask: Vec<bool>,
    label: usize,
}

impl Tokenized {
    /// The input of the real tokens (a prefix: the tokenizer pads on the
    /// right).
    fn real(&self, embedder: &ReferenceBert) -> Result<Sample> {
        let real = self.mask.iter().take_while(|&&m| m).count();
        let mask = vec![true; real];
        Ok(Sample {
            input: embedder.hidden_states(&self.ids[..real], &mask, 0)?,
            mask,
            label: self.label,
        })
    }

    /// The input of the whole padded sequence, as the circuit receives it.
    fn padded(&self, embedder: &ReferenceBert) -> Result<Sample> {
        Ok(Sample {
            input: embedder.hidden_states(&self.ids, &self.mask, 0)?,
            mask: self.mask.clone(),
            label: self.label,
        })
    }
}

/// Runs the adaptation on the assets (see the module docs).
///
/// Errors: missing assets, bad options, and those of the steps.
pub fn adapt(
    assets: &AssetPaths,
    options: &AdaptOptions,
    on_event: &mut dyn FnMut(AdaptEvent<'_>),
) -> Result<Adapted> {
    let start = Instant::now();
    let corpus_path = match options.corpus {
        Corpus::RottenTomatoes => assets.rotten_tomatoes(),
        Corpus::Mr => assets.mr_polarity(),
    };
    let mut needed: Vec<PathBuf> = assets.minilm_files().to_vec();
    needed.push(corpus_path.clone());
    if let Some(reason) = describe_missing(&needed) {
        return Err(Error::Io {
            context: "heformer adapt".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, reason),
        });
    }
    on_event(AdaptEvent::Stage("loading MiniLM and the corpus".into()));
    let bert_config = BertConfig::from_file(&assets.minilm_config())?;
    let bert = BertWeights::load(&assets.minilm_weights(), bert_config.clone())?;
    let tokenizer = SentenceTokenizer::from_file(&assets.minilm_tokenizer(), options.seq_len)?;
    let dataset = match options.corpus {
        Corpus::RottenTomatoes => load_rotten_tomatoes(&corpus_path)?,
        Corpus::Mr => load_mr_polarity(&corpus_path)?,
    };
    let (mut train_set, mut test_set) =
        dataset.train_test_split(options.test_fraction, options.split_seed)?;
    if let Some(size) = options.train_size {
        train_set.examples.truncate(size);
    }
    if let Some(size) = options.test_size {
        test_set.examples.truncate(size);
    }
    let labels = train_set.label_set();
    let train_tokens = tokenize(&tokenizer, &train_set, &labels)?;
    let test_tokens = tokenize(&tokenizer, &test_set, &labels)?;
    let embedder = ReferenceBert::new(bert);
    let train_samples = real_samples(&embedder, &train_tokens)?;
    let test_samples = real_samples(&embedder, &test_tokens)?;
    let calibration = &train_samples[..options.calibration_samples.min(train_samples.len())];
    let bert = embedder.weights();

    let config = FriendlyConfig {
        layers: options.layers,
        hidden: bert_config.hidden_size,
        heads: bert_config.num_attention_heads,
        ffn: bert_config.intermediate_size,
        seq_len: options.seq_len,
        classes: labels.len(),
        layer_norm_eps: bert_config.layer_norm_eps,
        ranges: options.ranges.clone(),
        ..FriendlyConfig::default()
    };
    let mut friendly_weights = FriendlyWeights::from_bert(bert, &config, options.seed)?;

    let baseline_start = Instant::now();
    let (accuracy_exact_frozen, accuracy_exact_baseline) = if options.baseline {
        let model = ExactBackprop::for_bert(bert);
        let mut weights =
            ExactWeights::from_bert(bert, options.layers, friendly_weights.head.clone())?;
        let (frozen, tuned) = head_then_all(
            "exact",
            &model,
            &mut weights,
            &train_samples,
            &test_samples,
            options,
            on_event,
        )?;
        (Some(frozen), Some(tuned))
    } else {
        (None, None)
    };
    let seconds_baseline = baseline_start.elapsed().as_secs_f64();

    let friendly_start = Instant::now();
    let model = FriendlyBackprop::new(config.clone())?;
    let attention_scales = if options.scale_attention {
        on_event(AdaptEvent::Stage("scaling the mapped attention".into()));
        scale_attention(&model, &mut friendly_weights, calibration)?
    } else {
        Vec::new()
    };
    let (accuracy_friendly_before, accuracy_friendly_after) = head_then_all(
        "friendly",
        &model,
        &mut friendly_weights,
        &train_samples,
        &test_samples,
        options,
        on_event,
    )?;
    let seconds_friendly = friendly_start.elapsed().as_secs_f64();
    on_event(AdaptEvent::Trained {
        config: &config,
        weights: &friendly_weights,
    });

    let polynomial_start = Instant::now();
    on_event(AdaptEvent::Stage(
        "measuring ranges and running the polynomial twin".into(),
    ));
    let calibration_padded: Vec<Sample> = train_tokens[..calibration.len()]
        .par_iter()
        .map(|example| example.padded(&embedder))
        .collect::<Result<_>>()?;
    let range_stats = RangeStats::measure(&model, &friendly_weights, &calibration_padded)?;
    let ranges_after = range_stats.fitted_ranges(&config.ranges, options.range_margin)?;
    let starting = FriendlyModel::new(config.clone(), friendly_weights.clone())?;
    let (accuracy_friendly_exact_padded, range_violations_starting_ranges) =
        circuit_run(&starting, &embedder, &test_tokens, Variant::Exact)?;
    let adapted_config = FriendlyConfig {
        ranges: ranges_after.clone(),
        ..config.clone()
    };
    let twin = FriendlyModel::new(adapted_config.clone(), friendly_weights.clone())?;
    let (accuracy_friendly_polynomial, violations) =
        circuit_run(&twin, &embedder, &test_tokens, Variant::Polynomial)?;
    let seconds_polynomial = polynomial_start.elapsed().as_secs_f64();

    Ok(Adapted {
        report: AdaptReport {
            accuracy_majority: majority_share(&test_samples, labels.len()),
            accuracy_exact_frozen,
            accuracy_exact_baseline,
            accuracy_friendly_before,
            accuracy_friendly_after,
            accuracy_friendly_polynomial,
            accuracy_friendly_exact_padded,
            range_violations: violations.total(),
            range_violations_by_function: violations,
            range_violations_starting_ranges,
            ranges_before: config.ranges.clone(),
            ranges_after,
            range_stats,
            attention_scales,
            k: options.layers,
            seq_len: options.seq_len,
            examples: train_samples.len(),
            test_examples: test_samples.len(),
            seconds: start.elapsed().as_secs_f64(),
            seconds_baseline,
            seconds_friendly,
            seconds_polynomial,
        },
        config: adapted_config,
        weights: friendly_weights,
    })
}

fn tokenize(
    tokenizer: &SentenceTokenizer,
    dataset: &Dataset,
    labels: &LabelSet,
) -> Result<Vec<Tokenized>> {
    let classes = dataset.classes(labels)?;
    let batch = tokenizer.encode_batch(&dataset.texts())?;
    Ok(batch
        .ids
        .rows()
        .into_iter()
        .zip(batch.attention_mask.rows())
        .zip(classes)
        .map(|((ids, mask), label)| Tokenized {
            ids: ids.to_vec(),
            mask: mask.to_vec(),
            label,
        })
        .collect())
}

/// The share of the most frequent class among `samples`.
fn majority_share(samples: &[Sample], classes: usize) -> f64 {
    let mut counts = vec![0usize; classes];
    for sample in samples {
        counts[sample.label] += 1;
    }
    counts.into_iter().max().unwrap_or(0) as f64 / samples.len().max(1) as f64
}

fn real_samples(embedder: &ReferenceBert, tokens: &[Tokenized]) -> Result<Vec<Sample>> {
    tokens
        .par_iter()
        .map(|example| example.real(embedder))
        .collect()
}

/// Trains the head alone on the frozen body's features, then every
/// weight; returns the held-out accuracy after each.
fn head_then_all<M: HeadedClassifier>(
    phase: &str,
    model: &M,
    weights: &mut M::Weights,
    train_samples: &[Sample],
    test_samples: &[Sample],
    options: &AdaptOptions,
    on_event: &mut dyn FnMut(AdaptEvent<'_>),
) -> Result<(f64, f64)> {
    on_event(AdaptEvent::Stage(format!(
        "{phase}: features of the frozen layers"
    )));
    let features = |samples: &[Sample]| -> Result<Vec<Sample>> {
        samples
            .par_iter()
            .map(|sample| {
                Ok(Sample {
                    input: model
                        .features(weights, sample.input.view(), &sample.mask)?
                        .insert_axis(Axis(0)),
                    mask: vec![true],
                    label: sample.label,
                })
            })
            .collect()
    };
    let train_features = features(train_samples)?;
    let test_features = features(test_samples)?;
    let head_model = HeadClassifier {
        hidden: train_features
            .first()
            .map_or(0, |sample| sample.input.ncols()),
    };
    let mut head = M::head_mut(weights).clone();
    let head_phase = format!("{phase} head");
    on_event(AdaptEvent::Stage(format!(
        "{phase}: training the head alone"
    )));
    train(
        &head_model,
        &mut head,
        &train_features,
        &options.head,
        &mut |report| {
            on_event(AdaptEvent::Step {
                phase: &head_phase,
                report,
            })
        },
    )?;
    let frozen = evaluate(&head_model, &head, &test_features)?.accuracy;
    *M::head_mut(weights) = head;
    on_event(AdaptEvent::Stage(format!(
        "{phase}: head alone {:.2}% held out; fine-tuning for {} epochs",
        100.0 * frozen,
        options.fine_tune.epochs
    )));
    if options.fine_tune.epochs > 0 {
        train(
            model,
            weights,
            train_samples,
            &options.fine_tune,
            &mut |report| on_event(AdaptEvent::Step { phase, report }),
        )?;
    }
    let tuned = evaluate(model, weights, test_samples)?.accuracy;
    Ok((frozen, tuned))
}

/// Accuracy and range violations of `twin` on full padded sequences.
fn circuit_run(
    twin: &FriendlyModel,
    embedder: &ReferenceBert,
    tokens: &[Tokenized],
    variant: Variant,
) -> Result<(f64, Violations)> {
    let (correct, violations) = tokens
        .par_iter()
        .map(|example| {
            let sample = example.padded(embedder)?;
            let trace = twin.forward(sample.input.view(), &sample.mask, variant)?;
            let hit = usize::from(predicted_class(trace.logits.view()) == sample.label);
            Ok((hit, Violations::from(trace.violations)))
        })
        .try_reduce(
            || (0, Violations::default()),
            |a, b| Ok((a.0 + b.0, a.1.merge(b.1))),
        )?;
    Ok((correct as f64 / tokens.len().max(1) as f64, violations))
}
