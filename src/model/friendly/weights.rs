//! The friendly transformer's weights, random or taken from a BERT.
//!
//! Convention: a [`Dense`] layer maps rows, `x ↦ x·W + b` with `W` of shape
//! `in × out` (the transpose of PyTorch's storage); a [`Lora`] adapter adds
//! `(x·A)·B` with `A` of shape `in × r` and `B` of shape `r × out`, the row
//! form of `W x + B A x`. [`FriendlyWeights::check`] verifies every shape
//! and that every value is finite against a [`FriendlyConfig`].
//!
//! From a BERT ([`FriendlyWeights::from_bert`], the first `k` layers) the
//! mapping is a starting point for adaptation, not an equivalent model:
//!
//! - Q, K, V, O and their biases are BERT's, transposed;
//! - LayerNorms: BERT is post-LN, this model pre-LN. Layer `i`'s first norm
//!   (before attention) is the norm that ended BERT's previous stage (the
//!   identity `γ = 1, β = 0` for layer 0, whose input is BERT's embeddings,
//!   already normalised), its second norm (before the feed-forward) is BERT
//!   layer `i`'s attention norm, and the final norm is BERT layer `k − 1`'s
//!   output norm. The residual stream is no longer renormalised after each
//!   block, so its scale drifts from BERT's;
//! - feed-forward: BERT's `GELU(x·W₁ + b₁)·W₂ + b₂` becomes the GLU with the
//!   gate `x·W₁ + b₁` (so ReLU replaces GELU), the up projection zero with
//!   bias 1 (so the GLU starts as BERT's MLP with ReLU), the down
//!   projection `W₂, b₂`; `ffn` must be BERT's intermediate size. The up
//!   projection is left for the adaptation step to train;
//! - softmax attention becomes the Gaussian kernel without normalisation:
//!   BERT's Q and K were not trained for it (the paper pre-trains with it),
//!   so the attention of the mapped model is not BERT's;
//! - LoRA: `A` random (uniform, `±1/√hidden`), `B` zero, the usual LoRA
//!   start (the adapters change nothing until trained);
//! - the head is not in BERT: random, as [`FriendlyWeights::random`] draws
//!   it.

use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::config::{FriendlyConfig, LoraTarget};
use crate::error::{Error, Result};
use crate::model::weights::{BertWeights, LayerNormWeights, LinearWeights};

/// `x ↦ x·W + b`, `W` of shape `in × out`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub weight: Array2<f64>,
    pub bias: Array1<f64>,
}

/// A LoRA adapter `x ↦ (x·A)·B`, `A`: `in × r`, `B`: `r × out`.
#[derive(Clone, Debug, PartialEq)]
pub struct Lora {
    pub a: Array2<f64>,
    pub b: Array2<f64>,
}

/// A projection of the attention block, with its adapter when it is a
/// LoRA target of the config.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    pub dense: Dense,
    pub lora: Option<Lora>,
}

/// One pre-LN layer.
#[derive(Clone, Debug, PartialEq)]
pub struct FriendlyLayer {
    pub attention_norm: LayerNormWeights,
    pub query: Projection,
    pub key: Projection,
    pub value: Projection,
    pub output: Projection,
    pub ffn_norm: LayerNormWeights,
    pub gate: Dense,
    pub up: Dense,
    pub down: Dense,
}

/// The classification head on the first token:
/// `tanh((x·W₁ + b₁)·W₂ + b₂)·W₃ + b₃`.
#[derive(Clone, Debug, PartialEq)]
pub struct FriendlyHead {
    /// `hidden → head_bottleneck`.
    pub bottleneck: Dense,
    /// `head_bottleneck → head_width`.
    pub widen: Dense,
    /// `head_width → classes`.
    pub classifier: Dense,
}

/// All weights of the model.
#[derive(Clone, Debug, PartialEq)]
pub struct FriendlyWeights {
    pub layers: Vec<FriendlyLayer>,
    /// Present exactly when the config asks for a final LayerNorm.
    pub final_norm: Option<LayerNormWeights>,
    pub head: FriendlyHead,
}

/// Seeded uniform draws.
struct Draw(ChaCha20Rng);

impl Draw {
    fn uniform(&mut self, half_width: f64) -> f64 {
        self.0.random_range(-half_width..=half_width)
    }

    fn matrix(&mut self, rows: usize, columns: usize, half_width: f64) -> Array2<f64> {
        Array2::from_shape_simple_fn((rows, columns), || self.uniform(half_width))
    }

    fn vector(&mut self, len: usize, center: f64, half_width: f64) -> Array1<f64> {
        Array1::from_shape_simple_fn(len, || center + self.uniform(half_width))
    }

    /// `W` uniform in `±gain·√(3/in)` (variance `gain²/in`), `b` in `±0.1`.
    fn dense(&mut self, inputs: usize, outputs: usize, gain: f64) -> Dense {
        Dense {
            weight: self.matrix(inputs, outputs, gain * (3.0 / inputs as f64).sqrt()),
            bias: self.vector(outputs, 0.0, 0.1),
        }
    }

    /// `A` in `±1/√in`, `B` in `±scale_b`.
    fn lora(&mut self, inputs: usize, rank: usize, outputs: usize, scale_b: f64) -> Lora {
        Lora {
            a: self.matrix(inputs, rank, 1.0 / (inputs as f64).sqrt()),
            b: self.matrix(rank, outputs, scale_b),
        }
    }

    /// `γ` in `1 ± 0.2`, `β` in `±0.1`.
    fn layer_norm(&mut self, len: usize) -> LayerNormWeights {
        LayerNormWeights {
            gamma: self.vector(len, 1.0, 0.2),
            beta: self.vector(len, 0.0, 0.1),
        }
    }

    fn head(&mut self, config: &FriendlyConfig) -> FriendlyHead {
        FriendlyHead {
            bottleneck: self.dense(config.hidden, config.head_bottleneck, 1.0),
            widen: self.dense(config.head_bottleneck, config.head_width, 1.0),
            classifier: self.dense(config.head_width, config.classes, 1.0),
        }
    }
}

/// Gain of the attention output and feed-forward down projections, so that
/// each block adds about half the stream's scale.
const RESIDUAL_GAIN: f64 = 0.5;
/// Half-width of a random `B` of LoRA (nonzero, so tests exercise it).
const RANDOM_LORA_B: f64 = 0.1;

impl FriendlyWeights {
    /// Seeded random weights for `config` (unchecked config: call
    /// [`FriendlyConfig::check`] first, or build through
    /// [`super::FriendlyModel::new`]). Dense weights have variance
    /// `gain²/in` (gain 1, or 1/2 on the blocks' last projections), biases
    /// and `β` are within `±0.1`, `γ` within `1 ± 0.2`, LoRA `A` within
    /// `±1/√hidden` and `B` within `±0.1`. With inputs of unit scale this
    /// keeps the tiny and default models' exp exponents, ReLU inputs,
    /// variances and tanh inputs inside the default ranges.
    pub fn random(config: &FriendlyConfig, seed: u64) -> Self {
        let mut draw = Draw(ChaCha20Rng::seed_from_u64(seed));
        let (hidden, rank) = (config.hidden, config.lora_rank);
        let projection = |draw: &mut Draw, target: LoraTarget, gain: f64| Projection {
            dense: draw.dense(hidden, hidden, gain),
            lora: config
                .has_lora(target)
                .then(|| draw.lora(hidden, rank, hidden, RANDOM_LORA_B)),
        };
        let layers = (0..config.layers)
            .map(|_| FriendlyLayer {
                attention_norm: draw.layer_norm(hidden),
                query: projection(&mut draw, LoraTarget::Query, 1.0),
                key: projection(&mut draw, LoraTarget::Key, 1.0),
                value: projection(&mut draw, LoraTarget::Value, 1.0),
                output: projection(&mut draw, LoraTarget::Output, RESIDUAL_GAIN),
                ffn_norm: draw.layer_norm(hidden),
                gate: draw.dense(hidden, config.ffn, 1.0),
                up: draw.dense(hidden, config.ffn, 1.0),
                down: draw.dense(config.ffn, hidden, RESIDUAL_GAIN),
            })
            .collect();
        let final_norm = config.final_layer_norm.then(|| draw.layer_norm(hidden));
        let head = draw.head(config);
        Self {
            layers,
            final_norm,
            head,
        }
    }

    /// The first `config.layers` layers of `bert`, mapped as the module docs
    /// describe; `seed` draws LoRA's `A` and the head.
    ///
    /// Errors: a config that fails [`FriendlyConfig::check`], or whose
    /// `hidden`, `heads`, `ffn` or `layer_norm_eps` differ from BERT's, or
    /// with more layers than BERT has.
    pub fn from_bert(bert: &BertWeights, config: &FriendlyConfig, seed: u64) -> Result<Self> {
        config.check()?;
        let source = &bert.config;
        let mismatch = [
            ("hidden", config.hidden, source.hidden_size),
            ("heads", config.heads, source.num_attention_heads),
            ("ffn", config.ffn, source.intermediate_size),
        ]
        .into_iter()
        .find(|(_, ours, theirs)| ours != theirs);
        if let Some((name, ours, theirs)) = mismatch {
            return Err(Error::InvalidParameters(format!(
                "FriendlyWeights::from_bert: {name} is {ours}, the BERT has {theirs}"
            )));
        }
        if config.layer_norm_eps != source.layer_norm_eps {
            return Err(Error::InvalidParameters(format!(
                "FriendlyWeights::from_bert: layer_norm_eps is {}, the BERT has {}",
                config.layer_norm_eps, source.layer_norm_eps
            )));
        }
        if config.layers > bert.layers.len() {
            return Err(Error::InvalidParameters(format!(
                "FriendlyWeights::from_bert: {} layers asked, the BERT has {}",
                config.layers,
                bert.layers.len()
            )));
        }
        let mut draw = Draw(ChaCha20Rng::seed_from_u64(seed));
        let (hidden, rank) = (config.hidden, config.lora_rank);
        let identity = LayerNormWeights {
            gamma: Array1::ones(hidden),
            beta: Array1::zeros(hidden),
        };
        let projection = |draw: &mut Draw, linear: &LinearWeights, target: LoraTarget| Projection {
            dense: transposed(linear),
            lora: config
                .has_lora(target)
                .then(|| draw.lora(hidden, rank, hidden, 0.0)),
        };
        let layers = bert.layers[..config.layers]
            .iter()
            .enumerate()
            .map(|(index, layer)| FriendlyLayer {
                attention_norm: match index {
                    0 => identity.clone(),
                    _ => bert.layers[index - 1].output_layer_norm.clone(),
                },
                query: projection(&mut draw, &layer.query, LoraTarget::Query),
                key: projection(&mut draw, &layer.key, LoraTarget::Key),
                value: projection(&mut draw, &layer.value, LoraTarget::Value),
                output: projection(&mut draw, &layer.attention_output, LoraTarget::Output),
                ffn_norm: layer.attention_layer_norm.clone(),
                gate: transposed(&layer.intermediate),
                up: Dense {
                    weight: Array2::zeros((hidden, config.ffn)),
                    bias: Array1::ones(config.ffn),
                },
                down: transposed(&layer.output),
            })
            .collect();
        let final_norm = config
            .final_layer_norm
            .then(|| bert.layers[config.layers - 1].output_layer_norm.clone());
        let head = draw.head(config);
        Ok(Self {
            layers,
            final_norm,
            head,
        })
    }

    /// Checks every shape against `config` and that every value is finite.
    ///
    /// Errors: [`Error::InvalidParameters`] naming the first bad array.
    pub fn check(&self, config: &FriendlyConfig) -> Result<()> {
        let mut problems = ShapeCheck::default();
        let (hidden, rank) = (config.hidden, config.lora_rank);
        problems.count("layers", self.layers.len(), config.layers);
        for (index, layer) in self.layers.iter().enumerate() {
            let at = |part: &str| format!("layer {index} {part}");
            problems.norm(&at("attention_norm"), &layer.attention_norm, hidden);
            let projections = [
                ("query", &layer.query, LoraTarget::Query),
                ("key", &layer.key, LoraTarget::Key),
                ("value", &layer.value, LoraTarget::Value),
                ("output", &layer.output, LoraTarget::Output),
            ];
            for (name, projection, target) in projections {
                problems.dense(&at(name), &projection.dense, hidden, hidden);
                match (&projection.lora, config.has_lora(target)) {
                    (Some(lora), true) => {
                        problems.matrix(&at(&format!("{name} LoRA A")), &lora.a, hidden, rank);
                        problems.matrix(&at(&format!("{name} LoRA B")), &lora.b, rank, hidden);
                    }
                    (None, false) => {}
                    (present, _) => problems.note(format!(
                        "{}: LoRA adapter {}, the config {}",
                        at(name),
                        if present.is_some() {
                            "present"
                        } else {
                            "absent"
                        },
                        if config.has_lora(target) {
                            "targets it"
                        } else {
                            "does not"
                        }
                    )),
                }
            }
            problems.norm(&at("ffn_norm"), &layer.ffn_norm, hidden);
            problems.dense(&at("gate"), &layer.gate, hidden, config.ffn);
            problems.dense(&at("up"), &layer.up, hidden, config.ffn);
            problems.dense(&at("down"), &layer.down, config.ffn, hidden);
        }
        match (&self.final_norm, config.final_layer_norm) {
            (Some(norm), true) => problems.norm("final_norm", norm, hidden),
            (None, false) => {}
            _ => problems.note("final_norm does not match final_layer_norm".into()),
        }
        let head = &self.head;
        problems.dense(
            "head bottleneck",
            &head.bottleneck,
            hidden,
            config.head_bottleneck,
        );
        problems.dense(
            "head widen",
            &head.widen,
            config.head_bottleneck,
            config.head_width,
        );
        problems.dense(
            "head classifier",
            &head.classifier,
            config.head_width,
            config.classes,
        );
        problems.result()
    }
}

/// BERT's `out × in` linear as `in × out`.
fn transposed(linear: &LinearWeights) -> Dense {
    Dense {
        weight: linear.weight.t().to_owned(),
        bias: linear.bias.clone(),
    }
}

/// The first shape or finiteness problem found.
#[derive(Default)]
struct ShapeCheck {
    first: Option<String>,
}

impl ShapeCheck {
    fn note(&mut self, problem: String) {
        self.first.get_or_insert(problem);
    }

    fn count(&mut self, what: &str, got: usize, expected: usize) {
        if got != expected {
            self.note(format!("{what}: {got}, expected {expected}"));
        }
    }

    fn finite<'a>(&mut self, what: &str, mut values: impl Iterator<Item = &'a f64>) {
        if values.any(|v| !v.is_finite()) {
            self.note(format!("{what} has a non-finite value"));
        }
    }

    fn matrix(&mut self, what: &str, matrix: &Array2<f64>, rows: usize, columns: usize) {
        if matrix.dim() != (rows, columns) {
            self.note(format!(
                "{what}: shape {:?}, expected {:?}",
                matrix.dim(),
                (rows, columns)
            ));
        }
        self.finite(what, matrix.iter());
    }

    fn vector(&mut self, what: &str, vector: &Array1<f64>, len: usize) {
        self.count(&format!("{what} length"), vector.len(), len);
        self.finite(what, vector.iter());
    }

    fn dense(&mut self, what: &str, dense: &Dense, inputs: usize, outputs: usize) {
        self.matrix(&format!("{what} weight"), &dense.weight, inputs, outputs);
        self.vector(&format!("{what} bias"), &dense.bias, outputs);
    }

    fn norm(&mut self, what: &str, norm: &LayerNormWeights, len: usize) {
        self.vector(&format!("{what} gamma"), &norm.gamma, len);
        self.vector(&format!("{what} beta"), &norm.beta, len);
    }

    fn result(self) -> Result<()> {
        match self.first {
            None => Ok(()),
            Some(problem) => Err(Error::InvalidParameters(format!(
                "FriendlyWeights: {problem}"
            ))),
        }
    }
}
