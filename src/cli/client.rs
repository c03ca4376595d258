//! `heformer encrypt` and `heformer decrypt` (client): texts to encrypted
//! examples, encrypted logits to predictions. The labels never leave the
//! client: `decrypt` reads them again from the data file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::Array1;
use rayon::prelude::*;

use super::files::{self, KeysDir, INPUT_SUFFIX, LOGITS_SUFFIX};
use super::model::{load_model, Embedded, ModelKind, ModelSpec};
use super::BackendArgs;
use crate::ckks::{CkksContext, Decryptor, Encoder, EncryptionKey, Encryptor, Prng, SecretKey};
use crate::data::read::read_labeled;
use crate::data::{Dataset, LabelSet};
use crate::error::{Error, Result};
use crate::model::encrypted::adapters::DecryptedParameters;
use crate::model::encrypted::{
    AdapterMode, EncryptedAdapters, EncryptedInput, EncryptedModel, ServerSetup,
};
use crate::model::friendly::{FriendlyModel, Variant};

/// Which columns of a data file, and how many examples.
#[derive(Debug, clap::Args)]
pub struct Columns {
    /// The text's column (CSV) or key (JSONL).
    #[arg(long, default_value = "text")]
    text_column: String,
    /// The label's column (CSV) or key (JSONL).
    #[arg(long, default_value = "label")]
    label_column: String,
}

impl Columns {
    /// The first `limit` (all when `None`) examples of `path` (CSV with a
    /// header, or JSONL), and the label set of the whole file (so that a
    /// label's class does not depend on the limit).
    pub fn read(&self, path: &Path, limit: Option<usize>) -> Result<(Dataset, LabelSet)> {
        let mut data = read_labeled(path, &self.text_column, &self.label_column)?;
        let labels = data.label_set();
        if let Some(limit) = limit {
            data.examples.truncate(limit);
        }
        Ok((data, labels))
    }
}

/// Options of `heformer encrypt`.
#[derive(Debug, clap::Args)]
pub struct EncryptArgs {
    /// The keys directory of `heformer keygen`.
    #[arg(long)]
    keys: PathBuf,
    /// The texts: CSV (with a header) or JSONL.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    columns: Columns,
    /// Only the first N examples.
    #[arg(long)]
    limit: Option<usize>,
    /// Also encrypt each example's label, one-hot as the logits lie
    /// (`example-NNNN.label.ct`): training data for `heformer finetune`.
    #[arg(long)]
    labels: bool,
    /// Where to write the encrypted examples (for the server).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Options of `heformer decrypt`.
#[derive(Debug, clap::Args)]
pub struct DecryptArgs {
    /// The keys directory of `heformer keygen`.
    #[arg(long)]
    keys: PathBuf,
    /// The encrypted logits (`heformer infer --out`).
    #[arg(long)]
    input: PathBuf,
    /// The data file given to `heformer encrypt`, for the labels' names and
    /// the accuracy.
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    columns: Columns,
    /// Only the first N examples (as given to `heformer encrypt`).
    #[arg(long)]
    limit: Option<usize>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// The client's encryptor (secret-key encryption) and decryptor.
pub struct Client {
    encoder: Encoder,
    encryptor: Encryptor,
    decryptor: Decryptor,
}

impl Client {
    /// The client holding `secret`; encryption randomness from the OS.
    pub fn new(ctx: &Arc<CkksContext>, secret: SecretKey) -> Result<Self> {
        Ok(Self {
            encoder: Encoder::new(ctx.clone()),
            encryptor: Encryptor::new(
                ctx.clone(),
                EncryptionKey::Secret(secret.clone()),
                Prng::from_os()?,
            )?,
            decryptor: Decryptor::new(ctx.clone(), secret)?,
        })
    }

    /// Encrypts one input (embeddings and mask) at `level`.
    pub fn encrypt(
        &mut self,
        model: &EncryptedModel,
        input: &Embedded,
        level: usize,
    ) -> Result<EncryptedInput> {
        model.encrypt_input(
            &mut self.encryptor,
            input.embeddings.view(),
            &input.mask,
            level,
        )
    }

    /// Encrypts the one-hot label of `class` (of `classes`) at `level`.
    pub fn encrypt_label(
        &mut self,
        model: &EncryptedModel,
        class: usize,
        level: usize,
    ) -> Result<crate::ckks::Ciphertext> {
        let classes = model.config().classes;
        if class >= classes {
            return Err(Error::OutOfRange {
                op: "encrypt_label",
                detail: format!("class {class} of {classes}"),
            });
        }
        let mut onehot = vec![0.0; classes];
        onehot[class] = 1.0;
        model.encrypt_logits_layout(&mut self.encryptor, &onehot, level)
    }

    /// Encrypts `twin`'s trainable parameters for `model` at `level`
    /// (values up to `bound`): its adapters and head, or, for a model of
    /// full fine-tuning, every dense weight and the head.
    pub fn encrypt_adapters(
        &mut self,
        twin: &FriendlyModel,
        model: &EncryptedModel,
        level: usize,
        bound: f64,
    ) -> Result<EncryptedAdapters> {
        let encrypt = match model.adapter_mode() {
            AdapterMode::Full => EncryptedAdapters::encrypt_full,
            _ => EncryptedAdapters::encrypt,
        };
        encrypt(
            twin.config(),
            model.layout(),
            (&self.encoder, &mut self.encryptor),
            twin.weights(),
            level,
            bound,
        )
    }

    /// The adapters' and the head's values.
    pub fn decrypt_adapters(
        &self,
        model: &EncryptedModel,
        adapters: &EncryptedAdapters,
    ) -> Result<DecryptedParameters> {
        adapters.decrypt(
            model.config(),
            model.layout(),
            &self.encoder,
            &self.decryptor,
        )
    }

    /// The logits of encrypted logits.
    pub fn logits(
        &self,
        model: &EncryptedModel,
        logits: &crate::ckks::Ciphertext,
    ) -> Result<Array1<f64>> {
        model.decrypt_logits(&self.decryptor, logits)
    }
}

/// The index of the largest value (the first of ties).
pub fn argmax(values: &Array1<f64>) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

/// The share of `inputs` that `twin` classifies as `labels` say, through
/// the circuit's polynomials.
///
/// Errors: no input, inputs and labels of different lengths, the twin's
/// errors.
pub fn twin_accuracy(twin: &FriendlyModel, inputs: &[Embedded], labels: &[usize]) -> Result<f64> {
    if inputs.is_empty() || inputs.len() != labels.len() {
        return Err(Error::LengthMismatch {
            op: "accuracy",
            got: labels.len(),
            expected: inputs.len().max(1),
        });
    }
    let hits = inputs
        .par_iter()
        .zip(labels)
        .map(|(input, &label)| {
            let trace = twin.forward(input.embeddings.view(), &input.mask, Variant::Polynomial)?;
            Ok(usize::from(argmax(&trace.logits) == label))
        })
        .collect::<Result<Vec<usize>>>()?;
    Ok(hits.iter().sum::<usize>() as f64 / hits.len() as f64)
}

/// The data's label names (sorted) and every example's class.
///
/// Errors: more labels than the model has classes.
pub fn classes(data: &Dataset, labels: LabelSet, classes: usize) -> Result<(LabelSet, Vec<usize>)> {
    if labels.len() > classes {
        return Err(Error::OutOfRange {
            op: "labels",
            detail: format!(
                "{} has {} labels ({labels}), the model {classes} classes",
                data.source.display(),
                labels.len()
            ),
        });
    }
    let indices = data.classes(&labels)?;
    Ok((labels, indices))
}

/// A note on what the accuracy of `spec`'s model means.
pub fn accuracy_note(spec: &ModelSpec) -> &'static str {
    match (spec.model, &spec.weights) {
        (ModelKind::Minilm, Some(_)) => "MiniLM adapted in plaintext (heformer adapt)",
        (ModelKind::Minilm, None) => {
            "MiniLM mapped with a random head: near chance until adapted weights are given (--weights)"
        }
        (ModelKind::Tiny, _) => "tiny random test model: accuracy is meaningless",
    }
}

pub(super) fn encrypt(args: &EncryptArgs) -> Result<()> {
    let keys = KeysDir::new(&args.keys);
    let (params, spec) = keys.eval()?.setup()?;
    let (data, label_set) = args.columns.read(&args.data, args.limit)?;
    let model = load_model(&spec)?;
    let ctx = files::context(&params, &args.backend)?;
    let level =
        ServerSetup::with_bootstrapper(model.twin.config(), ctx.clone(), spec.adapter_mode())?
            .1
            .output_level();
    let label_classes = if args.labels {
        Some(classes(&data, label_set, model.twin.config().classes)?.1)
    } else {
        None
    };
    let encrypted = model.encrypted(ctx.clone())?;
    let mut client = Client::new(&ctx, keys.secret_key(&ctx)?)?;
    files::create_dir(&args.out)?;
    let inputs = model.embed(&data.texts())?;
    for (index, input) in inputs.iter().enumerate() {
        let path = files::example_path(&args.out, index, INPUT_SUFFIX);
        files::save_example(&ctx, &client.encrypt(&encrypted, input, level)?, &path)?;
        if let Some(classes) = &label_classes {
            let label = client.encrypt_label(&encrypted, classes[index], level)?;
            crate::ckks::serialize::save_ciphertext(&ctx, &label, files::label_path(&path))?;
        }
    }
    let labels = if args.labels {
        "labels encrypted beside them".to_string()
    } else {
        format!("labels stay in {}", args.data.display())
    };
    super::print_line(format_args!(
        "encrypted {} examples ({} tokens each, mask encrypted) at level {level} into {}; {labels}",
        inputs.len(),
        model.twin.config().seq_len,
        args.out.display(),
    ))
}

pub(super) fn decrypt(args: &DecryptArgs) -> Result<()> {
    let keys = KeysDir::new(&args.keys);
    let (params, spec) = keys.eval()?.setup()?;
    let outputs = files::examples(&args.input, LOGITS_SUFFIX, &[])?;
    let labelled = match &args.data {
        Some(path) => {
            let (data, labels) = args.columns.read(path, args.limit)?;
            if data.len() != outputs.len() {
                return Err(Error::LengthMismatch {
                    op: "decrypt: examples in --data against logits in --input",
                    got: data.len(),
                    expected: outputs.len(),
                });
            }
            Some((data, labels))
        }
        None => None,
    };
    let model = load_model(&spec)?;
    let ctx = files::context(&params, &args.backend)?;
    let encrypted = model.encrypted(ctx.clone())?;
    let client = Client::new(&ctx, keys.secret_key(&ctx)?)?;
    let truth = labelled
        .map(|(data, labels)| classes(&data, labels, model.twin.config().classes))
        .transpose()?;
    let mut correct = 0;
    for (index, path) in outputs.iter().enumerate() {
        let ct = crate::ckks::serialize::load_ciphertext(&ctx, path)?;
        let logits = client.logits(&encrypted, &ct)?;
        let predicted = argmax(&logits);
        let line = match &truth {
            Some((labels, indices)) => {
                correct += usize::from(indices[index] == predicted);
                let name = |i: usize| labels.names().get(i).cloned().unwrap_or(i.to_string());
                format!(
                    "predicted {} (label {})",
                    name(predicted),
                    name(indices[index])
                )
            }
            None => format!("predicted class {predicted}"),
        };
        super::print_line(format_args!(
            "{}: logits {logits:.4}, {line}",
            path.display()
        ))?;
    }
    if truth.is_some() {
        super::print_line(format_args!(
            "accuracy {correct}/{} = {:.3} ({})",
            outputs.len(),
            correct as f64 / outputs.len() as f64,
            accuracy_note(&spec)
        ))?;
    }
    Ok(())
}
