//! `heformer infer` (server): loads the evaluation keys alone (never the
//! secret key, which it has no path to), runs the encrypted forward on every
//! encrypted example of `--input` and writes the encrypted logits to
//! `--out`, with the time and bootstraps of each example.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::files::{self, EvalDir, INPUT_SUFFIX, LOGITS_SUFFIX};
use super::model::load_model;
use super::BackendArgs;
use crate::circuits::boot::Bootstrapper;
use crate::circuits::refresh::{Bootstrapping, Refresh};
use crate::ckks::{Ciphertext, CkksContext, EvaluationKeys, Evaluator};
use crate::error::Result;
use crate::model::encrypted::{
    ActivationBounds, AdapterMode, EncryptedInput, EncryptedModel, ServerSetup,
};
use crate::model::friendly::FriendlyModel;

/// Options of `heformer infer`.
#[derive(Debug, clap::Args)]
pub struct InferArgs {
    /// The evaluation-key directory (`KEYS/eval` of `heformer keygen`).
    #[arg(long)]
    eval_keys: PathBuf,
    /// The encrypted examples (`heformer encrypt --out`).
    #[arg(long)]
    input: PathBuf,
    /// Where to write the encrypted logits.
    #[arg(long)]
    out: PathBuf,
    /// Examples run in lockstep (they share their bootstraps; memory grows
    /// with it).
    #[arg(long, default_value_t = 4)]
    batch: usize,
    #[command(flatten)]
    backend: BackendArgs,
}

/// The server: the model, the bootstrapper and the evaluation keys.
pub struct Server {
    model: EncryptedModel,
    bootstrapper: Bootstrapper,
    evaluator: Evaluator,
}

/// The result of one batch of encrypted forwards run in lockstep.
pub struct Inference {
    /// One per example.
    pub logits: Vec<Ciphertext>,
    /// Bootstraps of each layer, then of the head (shared by the batch).
    pub layer_bootstraps: Vec<usize>,
    pub head_bootstraps: usize,
    /// Wall time of each layer, then of the head.
    pub layer_seconds: Vec<f64>,
    pub head_seconds: f64,
    /// The part of each layer's time spent bootstrapping.
    pub layer_bootstrap_seconds: Vec<f64>,
    /// All bootstraps.
    pub bootstraps: usize,
    /// The part of `seconds` spent bootstrapping.
    pub bootstrap_seconds: f64,
    /// For the whole batch.
    pub seconds: f64,
}

impl Server {
    /// The server of `twin` with `bounds` on `ctx` with `keys`.
    ///
    /// Errors: keys that lack one the model needs (checked before any
    /// work), the setup's errors.
    pub fn new(
        twin: &FriendlyModel,
        bounds: ActivationBounds,
        ctx: &Arc<CkksContext>,
        keys: EvaluationKeys,
    ) -> Result<Self> {
        let (setup, bootstrapper) =
            ServerSetup::with_bootstrapper(twin.config(), ctx.clone(), AdapterMode::Merged)?;
        Self::with_setup(twin, bounds, keys, (&setup, bootstrapper))
    }

    /// [`new`](Self::new) with the setup and the bootstrapper already
    /// built on the context (by [`ServerSetup::with_bootstrapper`]).
    pub fn with_setup(
        twin: &FriendlyModel,
        bounds: ActivationBounds,
        keys: EvaluationKeys,
        (setup, bootstrapper): (&ServerSetup, Bootstrapper),
    ) -> Result<Self> {
        let ctx = bootstrapper.context().clone();
        setup.check_keys(&keys, ctx.params())?;
        Ok(Self {
            model: EncryptedModel::new(twin, ctx.clone(), bounds)?,
            bootstrapper,
            evaluator: Evaluator::new(ctx, keys)?,
        })
    }

    /// The encrypted model.
    pub fn model(&self) -> &EncryptedModel {
        &self.model
    }

    /// The level inputs are encrypted at (the bootstrapper's output).
    pub fn input_level(&self) -> usize {
        self.bootstrapper.output_level()
    }

    /// Runs the encrypted forward on `inputs` in lockstep.
    pub fn infer(&self, inputs: &[EncryptedInput]) -> Result<Inference> {
        let mut refresher = Bootstrapping::new(&self.bootstrapper);
        let start = Instant::now();
        let outputs = self
            .model
            .forward_batch(&self.evaluator, inputs, &mut refresher)?;
        self.evaluator.context().backend().synchronize()?;
        let first = outputs.first();
        let (layer_bootstraps, head_bootstraps) = first
            .map(|o| {
                (
                    o.layers.iter().map(|l| l.bootstraps).collect(),
                    o.head_bootstraps,
                )
            })
            .unwrap_or_default();
        let (layer_seconds, head_seconds) = first
            .map(|o| (o.layers.iter().map(|l| l.seconds).collect(), o.head_seconds))
            .unwrap_or_default();
        let layer_bootstrap_seconds = first
            .map(|o| o.layers.iter().map(|l| l.bootstrap_seconds).collect())
            .unwrap_or_default();
        Ok(Inference {
            logits: outputs.into_iter().map(|o| o.logits).collect(),
            layer_bootstraps,
            head_bootstraps,
            layer_seconds,
            head_seconds,
            layer_bootstrap_seconds,
            bootstraps: refresher.count(),
            bootstrap_seconds: refresher.seconds(),
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

pub(super) fn run(args: &InferArgs) -> Result<()> {
    let eval = EvalDir::open(&args.eval_keys)?;
    let (params, spec) = eval.setup()?;
    let inputs = files::examples(&args.input, INPUT_SUFFIX, Some(LOGITS_SUFFIX))?;
    let model = load_model(&spec)?;
    let ctx = files::context(&params, &args.backend)?;
    eprintln!(
        "heformer infer: {} (N = 2^{}), {} examples, loading keys...",
        params.name(),
        params.log_n(),
        inputs.len()
    );
    let server = Server::new(&model.twin, model.bounds, &ctx, eval.keys(&ctx)?)?;
    files::create_dir(&args.out)?;
    let blocks = server.model().layout().hidden_ciphertexts();
    let bar = super::keygen::progress(inputs.len(), "encrypted inference");
    let mut index = 0;
    for chunk in inputs.chunks(args.batch.max(1)) {
        let batch = chunk
            .iter()
            .map(|path| files::load_example(&ctx, path, blocks))
            .collect::<Result<Vec<_>>>()?;
        let result = server.infer(&batch)?;
        for (path, logits) in chunk.iter().zip(&result.logits) {
            let out = files::example_path(&args.out, index, LOGITS_SUFFIX);
            crate::ckks::serialize::save_ciphertext(&ctx, logits, &out)?;
            bar.suspend(|| {
                super::print_line(format_args!("{} -> {}", path.display(), out.display()))
            })?;
            index += 1;
            bar.inc(1);
        }
        bar.suspend(|| {
            super::print_line(format_args!(
                "batch of {}: {:.1} s ({:.1} s bootstrapping), {} bootstraps (per layer {:?}, head {})",
                chunk.len(),
                result.seconds,
                result.bootstrap_seconds,
                result.bootstraps,
                result.layer_bootstraps,
                result.head_bootstraps
            ))
        })?;
    }
    bar.finish_and_clear();
    Ok(())
}
