//! `heformer bench model`: one encrypted forward of the friendly
//! transformer with seeded random weights ([`FriendlyWeights::random`]) on
//! a random input (uniform in `[−1, 1)`, no padding), bounds calibrated on
//! that input; prints the time, the bootstraps of each layer and the
//! logits' precision against the twin. The default shapes are the paper's
//! (hidden 768, 12 heads, GLU 1536, 128 tokens): on a CPU they take very
//! long; MiniLM's shape is `--hidden 384 --heads 12 --ffn 1536 --seq 32`.

use std::time::Instant;

use ndarray::Array2;
use rand::{Rng, SeedableRng};

use super::client::Client;
use super::infer::Server;
use super::keygen::{generate_keys, prng, DEFAULT_PARAMS};
use super::model::{Embedded, BOUNDS_MARGIN};
use super::BackendArgs;
use crate::error::Result;
use crate::model::encrypted::{ActivationBounds, AdapterMode, EncryptedModel, ServerSetup};
use crate::model::friendly::{agreement, FriendlyConfig, FriendlyModel, FriendlyWeights, Variant};

/// Options of `heformer bench model`.
#[derive(Debug, clap::Args)]
pub struct ModelBenchArgs {
    /// Transformer layers.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// Hidden width.
    #[arg(long, default_value_t = 768)]
    hidden: usize,
    /// Attention heads.
    #[arg(long, default_value_t = 12)]
    heads: usize,
    /// The feed-forward's inner width.
    #[arg(long, default_value_t = 1536)]
    ffn: usize,
    /// Tokens (the block side).
    #[arg(long, default_value_t = 128)]
    seq: usize,
    /// A parameter preset that bootstraps, or a JSON parameter literal.
    #[arg(long, default_value = DEFAULT_PARAMS)]
    params: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Seed of the weights, the input and (INSECURE) the keys; default: a
    /// fixed model and input, keys from the OS.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// One `bench model` record.
#[derive(Debug, serde::Serialize)]
struct Record {
    suite: &'static str,
    params: String,
    log_n: u32,
    backend: String,
    threads: usize,
    layers: usize,
    hidden: usize,
    heads: usize,
    ffn: usize,
    seq: usize,
    keygen_seconds: f64,
    forward_seconds: f64,
    /// Wall time of each layer, then of the head.
    layer_seconds: Vec<f64>,
    head_seconds: f64,
    /// The part of each layer's time, and of the forward's, spent
    /// bootstrapping.
    layer_bootstrap_seconds: Vec<f64>,
    bootstrap_seconds: f64,
    layer_bootstraps: Vec<usize>,
    head_bootstraps: usize,
    bootstraps: usize,
    precision_bits: f64,
    commit: &'static str,
}

pub(super) fn run_model(args: &ModelBenchArgs) -> Result<()> {
    let config = FriendlyConfig {
        layers: args.layers,
        hidden: args.hidden,
        heads: args.heads,
        ffn: args.ffn,
        seq_len: args.seq,
        ..FriendlyConfig::default()
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
    let bounds = ActivationBounds::calibrate(
        &twin,
        &[(input.embeddings.view(), &input.mask[..])],
        BOUNDS_MARGIN,
    )?;
    let params = super::load_parameters(&args.params)?;
    let ctx = super::files::context(&params, &args.backend)?;
    let (setup, bootstrapper) =
        ServerSetup::with_bootstrapper(&config, ctx.clone(), AdapterMode::Merged)?;
    eprintln!(
        "heformer bench model: {} layers, hidden {}, {} heads, GLU {}, {} tokens; {} (N = 2^{}), backend {}, {} Galois keys",
        config.layers,
        config.hidden,
        config.heads,
        config.ffn,
        config.seq_len,
        params.name(),
        params.log_n(),
        ctx.backend().kind(),
        setup.galois_key_count(&params).0
    );
    let start = Instant::now();
    let (secret, keys) = generate_keys(&ctx, &setup, prng(args.seed)?)?;
    let keygen_seconds = start.elapsed().as_secs_f64();
    let server = Server::with_setup(
        EncryptedModel::new(&twin, ctx.clone(), bounds)?,
        keys,
        (setup, bootstrapper),
    )?;
    let mut client = Client::new(&ctx, secret)?;
    let encrypted = client.encrypt(server.model(), &input, server.input_level())?;
    eprintln!("encrypted forward...");
    let result = server.infer(std::slice::from_ref(&encrypted), None)?;
    let logits = client.logits(
        server.model(),
        result
            .logits
            .first()
            .ok_or_else(|| crate::error::Error::OutOfRange {
                op: "bench model",
                detail: "internal: no logits".into(),
            })?,
    )?;
    let reference = twin
        .forward(input.embeddings.view(), &input.mask, Variant::Polynomial)?
        .logits;
    let record = Record {
        suite: "model",
        params: params.name().to_string(),
        log_n: params.log_n(),
        backend: ctx.backend().kind().to_string(),
        threads: ctx.backend().threads(),
        layers: config.layers,
        hidden: config.hidden,
        heads: config.heads,
        ffn: config.ffn,
        seq: config.seq_len,
        keygen_seconds,
        forward_seconds: result.seconds,
        layer_seconds: result.layer_seconds,
        head_seconds: result.head_seconds,
        layer_bootstrap_seconds: result.layer_bootstrap_seconds,
        bootstrap_seconds: result.bootstrap_seconds,
        layer_bootstraps: result.layer_bootstraps,
        head_bootstraps: result.head_bootstraps,
        bootstraps: result.bootstraps,
        precision_bits: agreement(&logits, &reference),
        commit: env!("HEFORMER_GIT_COMMIT"),
    };
    if args.json {
        return super::print_line(format_args!(
            "{}",
            serde_json::to_string(&record).unwrap_or_default()
        ));
    }
    super::print_line(format_args!(
        "forward {:.1} s ({:.1} s bootstrapping): per layer {:.1?} s ({:.1?} s bootstrapping) and bootstraps {:?}, head {:.1} s and {} bootstraps, {} in all; logits {:.1} bits against the twin; keys {:.1} s",
        record.forward_seconds,
        record.bootstrap_seconds,
        record.layer_seconds,
        record.layer_bootstrap_seconds,
        record.layer_bootstraps,
        record.head_seconds,
        record.head_bootstraps,
        record.bootstraps,
        record.precision_bits,
        record.keygen_seconds
    ))
}
