//! The files the client and the server exchange, and the context they
//! share.
//!
//! ```text
//! KEYS/secret.key                  the secret key: the client's, never sent
//! KEYS/eval/params.bin             the parameter set
//! KEYS/eval/model.json             the model spec (see `cli::model`)
//! KEYS/eval/relinearization.key    evaluation keys: what the server gets
//! KEYS/eval/galois.keys
//! KEYS/eval/public.key             with encrypted adapters: the server
//!                                  encrypts the initial adapters with it
//! INPUT/example-NNNN.ct            one example: its token blocks, then the mask
//! INPUT/example-NNNN.label.ct      its encrypted one-hot label (training data)
//! RUN/checkpoint.ckpt              fine-tuning: encrypted adapters and
//!                                  optimizer state (`heformer finetune`)
//! OUTPUT/example-NNNN.logits.ct    its encrypted logits
//! ```
//!
//! Objects are frames of [`crate::ckks::serialize`] (an example's
//! ciphertexts are frames one after the other).

use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::model::ModelSpec;
use super::BackendArgs;
use crate::backend::create_backend;
use crate::ckks::serialize::{self, read_ciphertext, write_ciphertext};
use crate::ckks::{CkksContext, EvaluationKeys, PublicKey, SecretKey};
use crate::error::{Error, Result};
use crate::model::encrypted::EncryptedInput;
use crate::params::Parameters;

/// The secret key's file under the keys directory.
pub const SECRET_KEY: &str = "secret.key";
/// The evaluation keys' directory under the keys directory.
pub const EVAL_DIR: &str = "eval";
const PARAMS: &str = "params.bin";
const MODEL: &str = "model.json";
const RELINEARIZATION: &str = "relinearization.key";
const GALOIS: &str = "galois.keys";
const PUBLIC: &str = "public.key";
/// Suffixes of an encrypted example and of its logits.
pub const INPUT_SUFFIX: &str = ".ct";
pub const LOGITS_SUFFIX: &str = ".logits.ct";
/// Suffix of an encrypted label.
pub const LABEL_SUFFIX: &str = ".label.ct";
/// The checkpoint of a fine-tuning run, in its directory.
pub const CHECKPOINT: &str = "checkpoint.ckpt";

/// An I/O error on `path`.
pub fn io_error(path: &Path, doing: &str, source: std::io::Error) -> Error {
    Error::Io {
        context: format!("{doing} {}", path.display()),
        source,
    }
}

/// Creates `dir` (and its parents).
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "creating", e))
}

/// The context of `params` on the chosen backend; rayon's pool gets the
/// same width. Insecure parameter sets are announced loudly on stderr.
pub fn context(params: &Parameters, backend: &BackendArgs) -> Result<Arc<CkksContext>> {
    if params.is_insecure() {
        eprintln!(
            "WARNING: INSECURE PARAMETERS ({}): for tests only, these keys and ciphertexts protect nothing",
            params.name()
        );
    }
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(backend.threads)
        .build_global();
    CkksContext::new(params, create_backend(backend.backend, backend.threads)?)
}

/// The evaluation-key directory: what the server reads.
pub struct EvalDir(PathBuf);

impl EvalDir {
    /// The directory at `path`; it must hold a parameter set.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.join(PARAMS).is_file() {
            let hint = if path.join(EVAL_DIR).join(PARAMS).is_file() {
                format!(
                    " (pass {}, the evaluation keys only)",
                    path.join(EVAL_DIR).display()
                )
            } else {
                " (written by `heformer keygen`)".into()
            };
            return Err(io_error(
                &path.join(PARAMS),
                &format!("no evaluation keys{hint}: reading"),
                std::io::ErrorKind::NotFound.into(),
            ));
        }
        Ok(Self(path.to_path_buf()))
    }

    /// The parameter set and the model spec.
    pub fn setup(&self) -> Result<(Parameters, ModelSpec)> {
        let params = serialize::load_parameters(self.0.join(PARAMS))?.validate()?;
        let path = self.0.join(MODEL);
        let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, "reading", e))?;
        let spec = serde_json::from_str(&text).map_err(|e| Error::Format {
            what: "model spec",
            detail: format!("{}: {e}", path.display()),
        })?;
        Ok((params, spec))
    }

    /// The evaluation keys.
    pub fn keys(&self, ctx: &CkksContext) -> Result<EvaluationKeys> {
        Ok(EvaluationKeys {
            relinearization: Some(serialize::load_relinearization_key(
                ctx,
                self.0.join(RELINEARIZATION),
            )?),
            galois: serialize::load_galois_keys(ctx, self.0.join(GALOIS))?,
        })
    }

    /// The public key (written with encrypted adapters).
    pub fn public_key(&self, ctx: &CkksContext) -> Result<PublicKey> {
        serialize::load_public_key(ctx, self.0.join(PUBLIC))
    }

    /// Writes a parameter set, a spec, keys and the public key if any to
    /// `path`.
    pub fn save(
        path: &Path,
        ctx: &CkksContext,
        spec: &ModelSpec,
        (keys, public): (&EvaluationKeys, Option<&PublicKey>),
    ) -> Result<()> {
        create_dir(path)?;
        serialize::save_parameters(ctx.params().literal(), path.join(PARAMS))?;
        let model = path.join(MODEL);
        let json = serde_json::to_string_pretty(spec).unwrap_or_default();
        std::fs::write(&model, json).map_err(|e| io_error(&model, "writing", e))?;
        let relinearization = keys
            .relinearization
            .as_ref()
            .ok_or(Error::MissingRelinearizationKey { op: "keygen" })?;
        serialize::save_relinearization_key(ctx, relinearization, path.join(RELINEARIZATION))?;
        if let Some(public) = public {
            serialize::save_public_key(ctx, public, path.join(PUBLIC))?;
        }
        serialize::save_galois_keys(ctx, &keys.galois, path.join(GALOIS))
    }
}

/// The client's keys directory.
pub struct KeysDir(PathBuf);

impl KeysDir {
    /// The directory at `path`.
    pub fn new(path: &Path) -> Self {
        Self(path.to_path_buf())
    }

    /// Its evaluation-key directory.
    pub fn eval(&self) -> Result<EvalDir> {
        EvalDir::open(&self.0.join(EVAL_DIR))
    }

    /// The secret key.
    pub fn secret_key(&self, ctx: &CkksContext) -> Result<SecretKey> {
        serialize::load_secret_key(ctx, self.0.join(SECRET_KEY))
    }

    /// Writes the secret key and the evaluation keys.
    pub fn save(
        &self,
        ctx: &CkksContext,
        spec: &ModelSpec,
        secret: &SecretKey,
        keys: (&EvaluationKeys, Option<&PublicKey>),
    ) -> Result<()> {
        create_dir(&self.0)?;
        serialize::save_secret_key(ctx, secret, self.0.join(SECRET_KEY))?;
        EvalDir::save(&self.0.join(EVAL_DIR), ctx, spec, keys)
    }
}

/// The file of example `index` with `suffix`.
pub fn example_path(dir: &Path, index: usize, suffix: &str) -> PathBuf {
    dir.join(format!("example-{index:04}{suffix}"))
}

/// The files `example-*{suffix}` of `dir` (none ending in one of the
/// longer suffixes `other`), sorted; an empty directory is an error.
pub fn examples(dir: &Path, suffix: &str, other: &[&str]) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, "listing", e))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_error(dir, "listing", e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("example-")
            && name.ends_with(suffix)
            && !other.iter().any(|o| name.ends_with(o))
        {
            found.push(path);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(io_error(
            dir,
            &format!("no example-*{suffix} files in"),
            std::io::ErrorKind::NotFound.into(),
        ));
    }
    Ok(found)
}

/// Writes an encrypted example to `path`: its token blocks, then the mask.
pub fn save_example(ctx: &CkksContext, input: &EncryptedInput, path: &Path) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| io_error(path, "creating", e))?;
    let mut w = BufWriter::new(file);
    for ct in input.tokens.iter().chain([&input.mask]) {
        write_ciphertext(ctx, ct, &mut w)?;
    }
    std::io::Write::flush(&mut w).map_err(|e| io_error(path, "writing", e))
}

/// The encrypted examples of `dir` (not their labels or logits).
pub fn input_examples(dir: &Path) -> Result<Vec<PathBuf>> {
    examples(dir, INPUT_SUFFIX, &[LOGITS_SUFFIX, LABEL_SUFFIX])
}

/// The label file of the example at `path`.
pub fn label_path(example: &Path) -> PathBuf {
    let name = example
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(INPUT_SUFFIX))
        .unwrap_or("example");
    example.with_file_name(format!("{name}{LABEL_SUFFIX}"))
}

/// Reads an encrypted example from `path`: `blocks` token blocks, then
/// the mask (trailing bytes are an error).
pub fn load_example(ctx: &CkksContext, path: &Path, blocks: usize) -> Result<EncryptedInput> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, "opening", e))?;
    let mut r = BufReader::new(file);
    let invalid = |detail: String| Error::Format {
        what: "encrypted example",
        detail: format!("{}: {detail}", path.display()),
    };
    let mut read = || read_ciphertext(ctx, &mut r).map_err(|e| invalid(e.to_string()));
    let tokens = (0..blocks).map(|_| read()).collect::<Result<Vec<_>>>()?;
    let mask = read()?;
    let mut rest = [0u8; 1];
    match r.read(&mut rest) {
        Ok(0) => Ok(EncryptedInput { tokens, mask }),
        Ok(_) => Err(invalid(format!(
            "more than the {} ciphertexts of one example",
            blocks + 1
        ))),
        Err(e) => Err(io_error(path, "reading", e)),
    }
}
