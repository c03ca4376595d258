//! `heformer bench compare`: the paper's comparison on our engine. Two
//! designs at identical shapes, on the same backend and parameters, with
//! seeded random weights and one random example (no padding, label 1):
//!
//! - **friendly**: Gaussian-kernel attention, LoRA adapters (encrypted,
//!   with the head) on plaintext weights: what heformer fine-tunes;
//! - **baseline**: softmax attention under encryption (HETAL-style: the
//!   row maximum by a ReLU tree, exp, Newton reciprocal) and full
//!   fine-tuning, every dense weight encrypted (CCMM everywhere).
//!
//! Each is timed for one encrypted inference (a forward with its
//! encrypted parameters) and one fine-tuning step (taped forward,
//! cross-entropy gradient from an encrypted label, backward, AdamW), after
//! a key generation that is not timed. It prints one record per design,
//! then the ratios beside the paper's (6.94x fine-tuning, 2.3x
//! inference); with `--json`, the last line holds `finetune_ratio`,
//! `inference_ratio`, `shape`, `backend` and the four times.

use std::time::Instant;

use ndarray::Array2;
use rand::{Rng, SeedableRng};

use super::client::Client;
use super::infer::Server;
use super::keygen::{generate_keys, prng, DEFAULT_PARAMS};
use super::model::{gradient_scales, Embedded, BOUNDS_MARGIN};
use super::BackendArgs;
use crate::ckks::CkksContext;
use crate::error::{Error, Result};
use crate::model::encrypted::adamw::{EncryptedAdamW, EncryptedAdamWConfig};
use crate::model::encrypted::{
    ActivationBounds, AdapterMode, EncryptedModel, FineTuning, GradientBounds, LabeledInput,
    ServerSetup,
};
use crate::model::friendly::{
    agreement, AttentionKernel, FriendlyConfig, FriendlyModel, FriendlyWeights, Variant,
};

/// The paper's ratios (Rho et al., ICLR 2025): fine-tuning and inference
/// of softmax with full fine-tuning over Gaussian kernel with LoRA.
const PAPER_FINETUNE_RATIO: f64 = 6.94;
const PAPER_INFERENCE_RATIO: f64 = 2.3;

/// The logits' bound the loss is fitted on (as the demo's).
const LOGIT_BOUND: f64 = 4.0;
/// The fine-tuning step's learning rate (its value does not change the
/// time).
const LEARNING_RATE: f64 = 1e-3;

/// The shapes `--shape` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// The paper's model: hidden 768, 12 heads, GLU 1536, 128 tokens,
    /// head 768 → 32 → 1024 → 2 (hours per design on a CPU).
    Paper,
    /// MiniLM's width at the demo's length: hidden 384, 12 heads, GLU
    /// 1536, 32 tokens, the paper's head.
    Minilm,
    /// The tests' model: hidden 16, 2 heads, GLU 24, 8 tokens, head
    /// 16 → 4 → 12 → 3 (with a `TEST_INSECURE_*` preset, seconds).
    Tiny,
}

/// Options of `heformer bench compare`.
#[derive(Debug, clap::Args)]
pub struct CompareBenchArgs {
    /// The model's shape (both designs take it).
    #[arg(long, value_enum, default_value_t = Shape::Paper)]
    shape: Shape,
    /// Transformer layers (default: the paper's 2).
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Overrides the shape's hidden width.
    #[arg(long)]
    hidden: Option<usize>,
    /// Overrides the shape's attention heads.
    #[arg(long)]
    heads: Option<usize>,
    /// Overrides the shape's GLU width.
    #[arg(long)]
    ffn: Option<usize>,
    /// Overrides the shape's tokens (the block side).
    #[arg(long)]
    seq: Option<usize>,
    /// A parameter preset that bootstraps, or a JSON parameter literal.
    #[arg(long, default_value = DEFAULT_PARAMS)]
    params: String,
    /// Print JSON lines (one per design, then the comparison).
    #[arg(long)]
    json: bool,
    /// Seed of the weights, the input and (INSECURE) the keys; default: a
    /// fixed model and input, keys from the OS.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// One design's measurements (one JSON line).
#[derive(Debug, serde::Serialize)]
struct DesignRecord {
    suite: &'static str,
    design: &'static str,
    attention: &'static str,
    trained: &'static str,
    /// Ciphertexts of the trained parameters in the circuit's layout.
    parameter_ciphertexts: usize,
    /// Ciphertexts the optimizer steps (their compact view).
    optimizer_ciphertexts: usize,
    keygen_seconds: f64,
    inference_seconds: f64,
    /// The head's share of the inference.
    inference_head_seconds: f64,
    inference_bootstraps: usize,
    /// The logits against the twin's polynomial forward.
    inference_precision_bits: f64,
    finetune_seconds: f64,
    finetune_forward_seconds: f64,
    finetune_backward_seconds: f64,
    finetune_optimizer_seconds: f64,
    finetune_bootstraps: usize,
}

/// The comparison (the last JSON line).
#[derive(Debug, serde::Serialize)]
struct CompareRecord {
    suite: &'static str,
    shape: ShapeRecord,
    backend: String,
    threads: usize,
    params: String,
    log_n: u32,
    friendly_finetune_seconds: f64,
    friendly_inference_seconds: f64,
    baseline_finetune_seconds: f64,
    baseline_inference_seconds: f64,
    finetune_ratio: f64,
    inference_ratio: f64,
    paper_finetune_ratio: f64,
    paper_inference_ratio: f64,
    commit: &'static str,
}

#[derive(Clone, Debug, serde::Serialize)]
struct ShapeRecord {
    name: String,
    layers: usize,
    hidden: usize,
    heads: usize,
    ffn: usize,
    seq: usize,
    lora_rank: usize,
    head: [usize; 3],
}

pub(super) fn run_compare(args: &CompareBenchArgs) -> Result<()> {
    let preset = shape_config(args.shape);
    let base = FriendlyConfig {
        layers: args.layers,
        hidden: args.hidden.unwrap_or(preset.hidden),
        heads: args.heads.unwrap_or(preset.heads),
        ffn: args.ffn.unwrap_or(preset.ffn),
        seq_len: args.seq.unwrap_or(preset.seq_len),
        ..preset
    };
    base.check()?;
    let params = super::load_parameters(&args.params)?;
    let ctx = super::files::context(&params, &args.backend)?;
    let shape = ShapeRecord {
        name: format!("{:?}", args.shape).to_lowercase(),
        layers: base.layers,
        hidden: base.hidden,
        heads: base.heads,
        ffn: base.ffn,
        seq: base.seq_len,
        lora_rank: base.lora_rank,
        head: [base.head_bottleneck, base.head_width, base.classes],
    };
    eprintln!(
        "heformer bench compare: {shape:?}; {} (N = 2^{}), backend {}",
        params.name(),
        params.log_n(),
        ctx.backend().kind()
    );
    let friendly = measure(args, &ctx, &base, Design::Friendly)?;
    report(args, &friendly)?;
    let baseline = measure(args, &ctx, &base, Design::Baseline)?;
    report(args, &baseline)?;
    let record = CompareRecord {
        suite: "compare",
        shape,
        backend: ctx.backend().kind().to_string(),
        threads: ctx.backend().threads(),
        params: params.name().to_string(),
        log_n: params.log_n(),
        friendly_finetune_seconds: friendly.finetune_seconds,
        friendly_inference_seconds: friendly.inference_seconds,
        baseline_finetune_seconds: baseline.finetune_seconds,
        baseline_inference_seconds: baseline.inference_seconds,
        finetune_ratio: baseline.finetune_seconds / friendly.finetune_seconds,
        inference_ratio: baseline.inference_seconds / friendly.inference_seconds,
        paper_finetune_ratio: PAPER_FINETUNE_RATIO,
        paper_inference_ratio: PAPER_INFERENCE_RATIO,
        commit: env!("HEFORMER_GIT_COMMIT"),
    };
    if args.json {
        return super::print_line(format_args!(
            "{}",
            serde_json::to_string(&record).unwrap_or_default()
        ));
    }
    super::print_line(format_args!(
        "softmax + full fine-tuning over Gaussian kernel + LoRA: fine-tuning step {:.2}x ({:.1} s / {:.1} s; the paper: {PAPER_FINETUNE_RATIO}x), inference {:.2}x ({:.1} s / {:.1} s; the paper: {PAPER_INFERENCE_RATIO}x)",
        record.finetune_ratio,
        record.baseline_finetune_seconds,
        record.friendly_finetune_seconds,
        record.inference_ratio,
        record.baseline_inference_seconds,
        record.friendly_inference_seconds,
    ))
}

/// The two designs compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Design {
    Friendly,
    Baseline,
}

/// The config of `shape` (Gaussian kernel).
fn shape_config(shape: Shape) -> FriendlyConfig {
    let paper = FriendlyConfig::default();
    match shape {
        Shape::Paper => paper,
        Shape::Minilm => FriendlyConfig {
            hidden: 384,
            seq_len: 32,
            ..paper
        },
        Shape::Tiny => FriendlyConfig::tiny(),
    }
}

/// One design's inference and fine-tuning step.
fn measure(
    args: &CompareBenchArgs,
    ctx: &std::sync::Arc<CkksContext>,
    base: &FriendlyConfig,
    design: Design,
) -> Result<DesignRecord> {
    let (attention, mode) = match design {
        Design::Friendly => (AttentionKernel::Gaussian, AdapterMode::Encrypted),
        Design::Baseline => (AttentionKernel::Softmax, AdapterMode::Full),
    };
    let config = FriendlyConfig {
        attention,
        ..base.clone()
    };
    let seed = args.seed.unwrap_or(0);
    let twin = FriendlyModel::new(config.clone(), FriendlyWeights::random(&config, seed))?;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed.wrapping_add(1));
    let input = Embedded {
        embeddings: Array2::from_shape_fn((config.seq_len, config.hidden), |_| {
            rng.random_range(-1.0..1.0)
        }),
        mask: vec![true; config.seq_len],
    };
    let calibration = [(input.embeddings.view(), &input.mask[..])];
    let bounds = ActivationBounds::calibrate(&twin, &calibration, BOUNDS_MARGIN)?;
    let gradient_bounds = GradientBounds::calibrate(&twin, &calibration, BOUNDS_MARGIN)?;
    let scales = gradient_scales(&twin, mode, &calibration)?;
    let (setup, bootstrapper) = ServerSetup::with_bootstrapper(&config, ctx.clone(), mode)?;
    let name = design_name(design);
    eprintln!(
        "{name}: {} Galois keys...",
        setup.galois_key_count(ctx.params()).0
    );
    let start = Instant::now();
    let (secret, keys) = generate_keys(ctx, &setup, prng(args.seed)?)?;
    let keygen_seconds = start.elapsed().as_secs_f64();
    let model = match mode {
        AdapterMode::Full => EncryptedModel::for_full_finetuning(&twin, ctx.clone(), bounds)?,
        _ => EncryptedModel::for_adapters(&twin, ctx.clone(), bounds)?,
    };
    let server = Server::with_setup(model, keys, (setup, bootstrapper))?;
    let mut client = Client::new(ctx, secret)?;
    let level = server.input_level();
    let optimizer_config = EncryptedAdamWConfig::default();
    let mut parameters = client.encrypt_adapters(
        &twin,
        server.model(),
        level,
        optimizer_config.parameter_bound,
    )?;
    let encrypted = client.encrypt(server.model(), &input, level)?;

    eprintln!("{name}: encrypted inference...");
    let inference = server.infer(std::slice::from_ref(&encrypted), Some(&mut parameters))?;
    let logits = client.logits(
        server.model(),
        inference.logits.first().ok_or_else(|| Error::OutOfRange {
            op: "bench compare",
            detail: "internal: no logits".into(),
        })?,
    )?;
    let reference = twin
        .forward(input.embeddings.view(), &input.mask, Variant::Polynomial)?
        .logits;
    // On stderr at once: a step that runs out of memory leaves this.
    eprintln!(
        "{name}: inference {:.1} s ({} bootstraps)",
        inference.seconds, inference.bootstraps
    );

    eprintln!("{name}: one fine-tuning step...");
    let label = 1 % config.classes;
    let batch = [LabeledInput {
        input: encrypted,
        label: client.encrypt_label(server.model(), label, level)?,
    }];
    let tuning =
        FineTuning::new(server.model(), gradient_bounds, LOGIT_BOUND)?.with_gradient_scales(scales);
    let mut optimizer =
        EncryptedAdamW::new(optimizer_config, vec![true; parameters.optimizer_count()])?;
    let start = Instant::now();
    let step = tuning.step(
        server.evaluator(),
        &mut parameters,
        &mut optimizer,
        &batch,
        (1, LEARNING_RATE),
        &mut server.refresher(),
    )?;
    server.evaluator().context().backend().synchronize()?;
    let finetune_seconds = start.elapsed().as_secs_f64();
    Ok(DesignRecord {
        suite: "compare",
        design: name,
        attention: match attention {
            AttentionKernel::Gaussian => "gaussian-kernel",
            AttentionKernel::Softmax => "softmax",
        },
        trained: match mode {
            AdapterMode::Full => "every weight",
            _ => "lora + head",
        },
        parameter_ciphertexts: parameters.parameters().len(),
        optimizer_ciphertexts: parameters.optimizer_count(),
        keygen_seconds,
        inference_seconds: inference.seconds,
        inference_head_seconds: inference.head_seconds,
        inference_bootstraps: inference.bootstraps,
        inference_precision_bits: agreement(&logits, &reference),
        finetune_seconds,
        finetune_forward_seconds: step.forward_seconds,
        finetune_backward_seconds: step.backward_seconds,
        finetune_optimizer_seconds: step.optimizer_seconds,
        finetune_bootstraps: step.bootstraps,
    })
}

fn design_name(design: Design) -> &'static str {
    match design {
        Design::Friendly => "friendly",
        Design::Baseline => "baseline",
    }
}

/// One design's line.
fn report(args: &CompareBenchArgs, record: &DesignRecord) -> Result<()> {
    if args.json {
        return super::print_line(format_args!(
            "{}",
            serde_json::to_string(record).unwrap_or_default()
        ));
    }
    super::print_line(format_args!(
        "{} ({} attention, {} encrypted, {} ciphertexts): inference {:.1} s (head {:.1} s; {} bootstraps, logits {:.1} bits against the twin); fine-tuning step {:.1} s (forward {:.1} s, backward {:.1} s, optimizer {:.1} s; {} bootstraps); keys {:.1} s",
        record.design,
        record.attention,
        record.trained,
        record.parameter_ciphertexts,
                record.inference_seconds,
        record.inference_head_seconds,
        record.inference_bootstraps,
        record.inference_precision_bits,
        record.finetune_seconds,
        record.finetune_forward_seconds,
        record.finetune_backward_seconds,
        record.finetune_optimizer_seconds,
        record.finetune_bootstraps,
        record.keygen_seconds,
    ))
}
