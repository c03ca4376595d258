//! The model of the client/server commands and of the demo, built by one
//! function, [`load_model`], from a [`ModelSpec`] (which `heformer keygen`
//! records next to the evaluation keys, so that every later command builds
//! the same model):
//!
//! - `minilm`: all-MiniLM-L6-v2's first `--layers` layers mapped by
//!   [`FriendlyWeights::from_bert`] (sequence length 32, so `32 × 32`
//!   blocks), its tokenizer, and its embedding layer as the client's
//!   plaintext embedding. The head is random until adapted weights exist,
//!   so its predictions are near chance. Needs the assets of
//!   `scripts/fetch-assets.sh`.
//! - `tiny` (test-only): [`FriendlyConfig::tiny`] with two classes and
//!   seeded random weights, and a toy embedding (each word of the text,
//!   lowercased, seeds a vector uniform in `[−1, 1)`); no assets needed.
//!
//! Both calibrate the bootstrapping bounds ([`ActivationBounds::calibrate`],
//! and with encrypted adapters [`GradientBounds::calibrate`]; margin
//! [`BOUNDS_MARGIN`]) on the twin over the plaintext embeddings of
//! some training sentences: the Rotten Tomatoes training split for
//! `minilm`, the built-in toy sentences for `tiny`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};

use crate::assets::{describe_missing, AssetPaths};
use crate::ckks::CkksContext;
use crate::data::corpora::load_rotten_tomatoes;
use crate::data::tokenizer::SentenceTokenizer;
use crate::data::{Dataset, LabeledText};
use crate::error::{Error, Result};
use crate::model::config::BertConfig;
use crate::model::encrypted::adamw::EncryptedAdamWConfig;
use crate::model::encrypted::finetune::TwinFineTuning;
use crate::model::encrypted::{
    ActivationBounds, AdapterMode, EncryptedModel, GradientBounds, GradientScales,
};
use crate::model::friendly::{
    ApproximationRanges, FriendlyConfig, FriendlyModel, FriendlyWeights, Variant,
};
use crate::model::reference::ReferenceBert;
use crate::model::train::checkpoint::load_friendly;
use crate::model::weights::BertWeights;

/// The bounds' margin over the largest values seen in calibration.
pub const BOUNDS_MARGIN: f64 = 2.0;

/// The sequence length (and block side) of the MiniLM model.
const MINILM_SEQ_LEN: usize = 32;
/// The seed of the MiniLM model's LoRA `A` and head.
const MINILM_HEAD_SEED: u64 = 1;
/// The seed of the tiny model's weights.
const TINY_WEIGHTS_SEED: u64 = 5;
/// Training sentences the bounds are calibrated on.
const CALIBRATION_EXAMPLES: usize = 16;
/// The Rotten Tomatoes split: held-out fraction and seed.
const TEST_FRACTION: f64 = 0.2;
const SPLIT_SEED: u64 = 1;

/// The toy sentences of the tiny model (calibration and demo data).
const TOY_EXAMPLES: [(&str, &str); 6] = [
    ("a gripping, beautifully shot film", "positive"),
    ("dull and far too long", "negative"),
    ("the cast is wonderful and the script sharp", "positive"),
    ("a mess of a plot with nothing to say", "negative"),
    ("warm, funny and moving", "positive"),
    ("lifeless from the first scene", "negative"),
];

/// Which model.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// MiniLM's first layers, tokenizer and embeddings (needs the assets).
    Minilm,
    /// Test-only: a tiny random model and a toy word embedding.
    Tiny,
}

/// What the model is: the options that choose it.
#[derive(Clone, Debug, PartialEq, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct ModelSpec {
    /// The model: `minilm` (MiniLM's first layers mapped to the friendly
    /// transformer; random head, so near-chance accuracy until adapted
    /// weights exist) or `tiny` (test-only: random weights, toy embedding,
    /// no assets).
    #[arg(long, value_enum, default_value_t = ModelKind::Minilm)]
    pub model: ModelKind,
    /// Transformer layers (MiniLM's first ones).
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    /// Adapted friendly weights (`heformer adapt --output FILE`) for the
    /// `minilm` model: its config (layers, sequence length, ranges) comes
    /// from the file, and `--layers` must agree with it.
    #[arg(long)]
    #[serde(default)]
    pub weights: Option<PathBuf>,
    /// The LoRA adapters travel encrypted (private fine-tuning with
    /// `heformer finetune`, inference with `heformer infer --adapters`):
    /// the keys include the adapters' and the loss's rotations and a
    /// public key, and the model's weights leave the adapters out.
    #[arg(long)]
    #[serde(default)]
    pub encrypted_adapters: bool,
}

impl ModelSpec {
    /// Where the adapters live.
    pub fn adapter_mode(&self) -> AdapterMode {
        if self.encrypted_adapters {
            AdapterMode::Encrypted
        } else {
            AdapterMode::Merged
        }
    }
}

/// One text as the model's input: embeddings (`seq_len × hidden`) and mask.
pub struct Embedded {
    pub embeddings: Array2<f64>,
    pub mask: Vec<bool>,
}

/// The client's plaintext embedding of texts.
enum Embedder {
    MiniLm {
        tokenizer: Box<SentenceTokenizer>,
        bert: Box<ReferenceBert>,
    },
    Toy {
        seq_len: usize,
        hidden: usize,
    },
}

impl Embedder {
    fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Embedded>> {
        match self {
            Embedder::MiniLm { tokenizer, bert } => {
                let batch = tokenizer.encode_batch(texts)?;
                batch
                    .ids
                    .rows()
                    .into_iter()
                    .zip(batch.attention_mask.rows())
                    .map(|(ids, mask)| {
                        let mask = mask.to_vec();
                        let embeddings = bert.hidden_states(&ids.to_vec(), &mask, 0)?;
                        Ok(Embedded { embeddings, mask })
                    })
                    .collect()
            }
            Embedder::Toy { seq_len, hidden } => Ok(texts
                .iter()
                .map(|text| toy_embedding(text.as_ref(), *seq_len, *hidden))
                .collect()),
        }
    }
}

/// Test-only: each lowercased word (at most `seq_len`) seeds a vector
/// uniform in `[−1, 1)`; the rest is padding.
fn toy_embedding(text: &str, seq_len: usize, hidden: usize) -> Embedded {
    let words: Vec<String> = text
        .split_whitespace()
        .map(str::to_lowercase)
        .take(seq_len)
        .collect();
    let mut embeddings = Array2::zeros((seq_len, hidden));
    for (mut row, word) in embeddings.rows_mut().into_iter().zip(&words) {
        let seed = word.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        row.iter_mut()
            .for_each(|v| *v = rng.random_range(-1.0..1.0));
    }
    let mask = (0..seq_len).map(|i| i < words.len()).collect();
    Embedded { embeddings, mask }
}

/// The model: the plaintext twin, the client's embedding, the bounds.
pub struct LoadedModel {
    /// The plaintext twin (weights and fitted polynomials).
    pub twin: FriendlyModel,
    /// The calibrated bootstrapping bounds.
    pub bounds: ActivationBounds,
    /// The backward pass's bounds (with encrypted adapters only).
    pub gradient_bounds: Option<GradientBounds>,
    /// The trained tensors' gradient scales (with encrypted adapters
    /// only; [`gradient_scales`]).
    pub gradient_scales: Option<GradientScales>,
    /// Where the adapters live.
    pub adapters: AdapterMode,
    /// Held-out labelled sentences (the demo's default data).
    pub held_out: Dataset,
    /// Training sentences (the demo's fine-tuning data; the first ones
    /// calibrate the bounds).
    pub train: Dataset,
    embedder: Embedder,
}

impl LoadedModel {
    /// The inputs of `texts`.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Embedded>> {
        self.embedder.embed(texts)
    }

    /// The server's model on `ctx`.
    pub fn encrypted(&self, ctx: Arc<CkksContext>) -> Result<EncryptedModel> {
        match self.adapters {
            AdapterMode::Merged => EncryptedModel::new(&self.twin, ctx, self.bounds),
            AdapterMode::Encrypted => EncryptedModel::for_adapters(&self.twin, ctx, self.bounds),
            AdapterMode::Full => EncryptedModel::for_full_finetuning(&self.twin, ctx, self.bounds),
        }
    }
}

/// Builds the model of `spec` (the one function every command uses).
///
/// Errors: missing assets (with the command that fetches them), a layer
/// count the model cannot have, the loaders' errors.
pub fn load_model(spec: &ModelSpec) -> Result<LoadedModel> {
    let (twin, embedder, train, held_out) = match spec.model {
        ModelKind::Minilm => minilm(spec.layers, spec.weights.as_deref())?,
        ModelKind::Tiny => tiny(spec.layers)?,
    };
    let calibration: Vec<&str> = train
        .examples
        .iter()
        .take(CALIBRATION_EXAMPLES)
        .map(|e| e.text.as_str())
        .collect();
    let inputs = embedder.embed(&calibration)?;
    let views: Vec<_> = inputs
        .iter()
        .map(|e| (e.embeddings.view(), e.mask.as_slice()))
        .collect();
    let bounds = ActivationBounds::calibrate(&twin, &views, BOUNDS_MARGIN)?;
    let gradient_bounds = spec
        .encrypted_adapters
        .then(|| GradientBounds::calibrate(&twin, &views, BOUNDS_MARGIN))
        .transpose()?;
    let gradient_scales = spec
        .encrypted_adapters
        .then(|| gradient_scales(&twin, spec.adapter_mode(), &views))
        .transpose()?;
    Ok(LoadedModel {
        twin,
        bounds,
        gradient_bounds,
        gradient_scales,
        adapters: spec.adapter_mode(),
        held_out,
        train,
        embedder,
    })
}

/// The gradient scales of `twin`'s tensors that `mode` trains
/// ([`GradientScales::calibrate`] at the default optimizer's clip level,
/// the exact functions) on the calibration `inputs`; unit scales with merged
/// adapters (nothing is trained).
///
/// Errors: those of the calibration.
pub fn gradient_scales(
    twin: &FriendlyModel,
    mode: AdapterMode,
    inputs: &[(ArrayView2<'_, f64>, &[bool])],
) -> Result<GradientScales> {
    let optimizer = EncryptedAdamWConfig::default();
    let tuning = match mode {
        AdapterMode::Merged => return Ok(GradientScales::unit(0)),
        AdapterMode::Encrypted => TwinFineTuning::new(twin, optimizer, Variant::Exact)?,
        AdapterMode::Full => TwinFineTuning::full(twin, optimizer, Variant::Exact)?,
    };
    GradientScales::calibrate(
        &tuning,
        twin.weights(),
        inputs,
        twin.config().classes,
        optimizer.gradient_bound,
    )
}

type Parts = (FriendlyModel, Embedder, Dataset, Dataset);

fn minilm(layers: usize, adapted: Option<&Path>) -> Result<Parts> {
    let assets = AssetPaths::from_env();
    let mut needed = assets.minilm_files().to_vec();
    needed.push(assets.rotten_tomatoes());
    if let Some(reason) = describe_missing(&needed) {
        return Err(Error::Io {
            context: format!(
                "the minilm model needs its assets ({reason}); `--model tiny` needs none"
            ),
            source: std::io::ErrorKind::NotFound.into(),
        });
    }
    let bert_config = BertConfig::from_file(&assets.minilm_config())?;
    let bert = BertWeights::load(&assets.minilm_weights(), bert_config.clone())?;
    let config = FriendlyConfig {
        layers,
        hidden: bert_config.hidden_size,
        heads: bert_config.num_attention_heads,
        ffn: bert_config.intermediate_size,
        seq_len: MINILM_SEQ_LEN,
        layer_norm_eps: bert_config.layer_norm_eps,
        // The ranges of tests/friendly_model.rs, which hold MiniLM's
        // activations on real sentences.
        ranges: ApproximationRanges {
            relu_bound: 64.0,
            variance: (1.0 / 256.0, 1024.0),
            ..ApproximationRanges::default()
        },
        ..FriendlyConfig::default()
    };
    let (config, weights) = match adapted {
        Some(path) => {
            let (config, weights) = load_friendly(path)?;
            if config.layers != layers {
                return Err(Error::InvalidParameters(format!(
                    "{} holds {} layers, --layers asks for {layers}",
                    path.display(),
                    config.layers
                )));
            }
            (config, weights)
        }
        None => {
            let weights = FriendlyWeights::from_bert(&bert, &config, MINILM_HEAD_SEED)?;
            (config, weights)
        }
    };
    let seq_len = config.seq_len;
    let twin = FriendlyModel::new(config, weights)?;
    let embedder = Embedder::MiniLm {
        tokenizer: Box::new(SentenceTokenizer::from_file(
            &assets.minilm_tokenizer(),
            seq_len,
        )?),
        bert: Box::new(ReferenceBert::new(bert)),
    };
    let (train, held_out) = load_rotten_tomatoes(&assets.rotten_tomatoes())?
        .train_test_split(TEST_FRACTION, SPLIT_SEED)?;
    Ok((twin, embedder, train, held_out))
}

fn tiny(layers: usize) -> Result<Parts> {
    let config = FriendlyConfig {
        layers,
        classes: 2,
        ..FriendlyConfig::tiny()
    };
    let weights = FriendlyWeights::random(&config, TINY_WEIGHTS_SEED);
    let embedder = Embedder::Toy {
        seq_len: config.seq_len,
        hidden: config.hidden,
    };
    let twin = FriendlyModel::new(config, weights)?;
    let toy = Dataset {
        source: "built-in toy sentences".into(),
        examples: TOY_EXAMPLES
            .iter()
            .zip(1..)
            .map(|(&(text, label), line)| LabeledText {
                text: text.into(),
                label: label.into(),
                line,
            })
            .collect(),
    };
    Ok((twin, embedder, toy.clone(), toy))
}
