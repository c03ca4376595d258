//! `heformer infer` (server): loads the evaluation keys alone (never the
//! secret key, which it has no path to), runs the encrypted forward on every
//! encrypted example of `--input` (with the encrypted adapters of a
//! fine-tuning checkpoint, `--adapters`, for a model whose adapters are
//! encrypted) and writes the encrypted logits to `--out`, with the time and
//! bootstraps of each example.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::files::{self, EvalDir, LOGITS_SUFFIX};
use super::model::{load_model, LoadedModel};
use super::BackendArgs;
use crate::circuits::boot::Bootstrapper;
use crate::circuits::refresh::{Bootstrapping, Refresh};
use crate::ckks::{Ciphertext, CkksContext, EvaluationKeys, Evaluator};
use crate::error::{Error, Result};
use crate::model::encrypted::adamw::EncryptedAdamW;
use crate::model::encrypted::checkpoint::load_checkpoint;
use crate::model::encrypted::{
    AdapterMode, EncryptedAdapters, EncryptedInput, EncryptedModel, ServerSetup,
};

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
    /// The encrypted adapters: a checkpoint of `heformer finetune`
    /// (needed, and only taken, when the keys were made with
    /// `--encrypted-adapters`).
    #[arg(long)]
    adapters: Option<PathBuf>,
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
    /// The server of `model` on `ctx` with `keys`.
    ///
    /// Errors: keys that lack one the model needs (checked before any
    /// work), the setup's errors.
    pub fn new(model: &LoadedModel, ctx: &Arc<CkksContext>, keys: EvaluationKeys) -> Result<Self> {
        let setup =
            ServerSetup::with_bootstrapper(model.twin.config(), ctx.clone(), model.adapters)?;
        Self::with_setup(model.encrypted(ctx.clone())?, keys, setup)
    }

    /// [`new`](Self::new) with the setup and the bootstrapper already
    /// built on the context (by [`ServerSetup::with_bootstrapper`]).
    pub fn with_setup(
        model: EncryptedModel,
        keys: EvaluationKeys,
        (setup, bootstrapper): (ServerSetup, Bootstrapper),
    ) -> Result<Self> {
        let ctx = bootstrapper.context().clone();
        setup.check_keys(&keys, ctx.params())?;
        Ok(Self {
            model,
            bootstrapper,
            evaluator: Evaluator::new(ctx, keys)?,
        })
    }

    /// The evaluator (the evaluation keys).
    pub fn evaluator(&self) -> &Evaluator {
        &self.evaluator
    }

    /// A refresher bootstrapping with the server's bootstrapper.
    pub fn refresher(&self) -> Bootstrapping<'_> {
        Bootstrapping::new(&self.bootstrapper)
    }

    /// The encrypted model.
    pub fn model(&self) -> &EncryptedModel {
        &self.model
    }

    /// The level inputs are encrypted at (the bootstrapper's output).
    pub fn input_level(&self) -> usize {
        self.bootstrapper.output_level()
    }

    /// Runs the encrypted forward on `inputs` in lockstep, with the
    /// model's encrypted adapters if it takes them.
    pub fn infer(
        &self,
        inputs: &[EncryptedInput],
        adapters: Option<&mut EncryptedAdapters>,
    ) -> Result<Inference> {
        let mut refresher = Bootstrapping::new(&self.bootstrapper);
        let start = Instant::now();
        let outputs = match adapters {
            Some(adapters) => {
                self.model
                    .forward_batch_with(&self.evaluator, inputs, adapters, &mut refresher)?
            }
            None => self
                .model
                .forward_batch(&self.evaluator, inputs, &mut refresher)?,
        };
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
    let inputs = files::input_examples(&args.input)?;
    let model = load_model(&spec)?;
    let ctx = files::context(&params, &args.backend)?;
    eprintln!(
        "heformer infer: {} (N = 2^{}), {} examples, loading keys...",
        params.name(),
        params.log_n(),
        inputs.len()
    );
    let server = Server::new(&model, &ctx, eval.keys(&ctx)?)?;
    let mut adapters = match (&args.adapters, model.adapters) {
        (Some(path), AdapterMode::Encrypted) => Some(load_adapters(server.model(), &ctx, path)?.0),
        (None, AdapterMode::Merged) => None,
        (Some(_), AdapterMode::Merged) => {
            return Err(Error::InvalidParameters(
                "--adapters: these keys were made without --encrypted-adapters".into(),
            ))
        }
                (_, AdapterMode::Full) => {
            return Err(Error::InvalidParameters(
                "infer: full fine-tuning is the comparison's baseline (heformer bench compare)"
                    .into(),
            ))
        }
        (None, AdapterMode::Encrypted) => {
            return Err(Error::InvalidParameters(
                "the keys were made with --encrypted-adapters: pass the fine-tuned adapters (--adapters RUN/checkpoint.ckpt)".into(),
            ))
        }
    };
    files::create_dir(&args.out)?;
    let blocks = server.model().layout().hidden_ciphertexts();
    let bar = super::keygen::progress(inputs.len(), "encrypted inference");
    let mut index = 0;
    for chunk in inputs.chunks(args.batch.max(1)) {
        let batch = chunk
            .iter()
            .map(|path| files::load_example(&ctx, path, blocks))
            .collect::<Result<Vec<_>>>()?;
        let result = server.infer(&batch, adapters.as_mut())?;
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

/// The encrypted adapters of a fine-tuning checkpoint and its optimizer
/// state (which serving does not need).
///
/// Errors: those of [`load_checkpoint`], a checkpoint of another shape.
pub fn load_adapters(
    model: &EncryptedModel,
    ctx: &CkksContext,
    path: &std::path::Path,
) -> Result<(EncryptedAdapters, EncryptedAdamW)> {
    let (parameters, optimizer) = load_checkpoint(ctx, path)?;
    let adapters = EncryptedAdapters::from_parameters(
        model.config(),
        model.layout(),
        parameters,
        optimizer.config().parameter_bound,
    )?;
    Ok((adapters, optimizer))
}
