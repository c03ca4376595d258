//! `heformer keygen` (client): a secret key from the operating system's
//! CSPRNG (or, insecure, from `--seed`), and the evaluation keys the model
//! needs: relinearization, and Galois keys for [`ServerSetup::rotations`]
//! and conjugation. See [`super::files`] for the layout written.

use std::path::PathBuf;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use super::files::{self, KeysDir};
use super::model::ModelSpec;
use super::BackendArgs;
use crate::ckks::{CkksContext, EvaluationKeys, KeyGenerator, Prng, SecretKey};
use crate::error::Result;
use crate::model::encrypted::{AdapterMode, ServerSetup};

/// The default parameter set: 128-bit, bootstrapping.
pub const DEFAULT_PARAMS: &str = "PN16_BOOT_128_SPARSE_H192";

/// Options of `heformer keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// The keys directory to write (secret key, and `eval/` for the server).
    #[arg(long)]
    out: PathBuf,
    /// A parameter preset that bootstraps, or a JSON parameter literal.
    #[arg(long, default_value = DEFAULT_PARAMS)]
    params: String,
    #[command(flatten)]
    model: ModelSpec,
    /// INSECURE, tests and benchmarks only: derive the keys from this seed
    /// instead of the operating system's entropy.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// A progress bar of `len` steps on stderr (hidden when it is no terminal).
pub fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64).with_message(what.to_string());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The key generator's randomness: the OS CSPRNG, or `seed` (insecure).
pub fn prng(seed: Option<u64>) -> Result<Prng> {
    match seed {
        Some(s) => {
            eprintln!("WARNING: keys from --seed {s} are INSECURE (tests and benchmarks only)");
            Ok(Prng::from_seed(s))
        }
        None => Prng::from_os(),
    }
}

/// A secret key and the evaluation keys of `setup`.
pub fn generate_keys(
    ctx: &Arc<CkksContext>,
    setup: &ServerSetup,
    prng: Prng,
) -> Result<(SecretKey, EvaluationKeys)> {
    let mut keygen = KeyGenerator::new(ctx.clone(), prng);
    let secret = keygen.gen_secret_key()?;
    let relinearization = Some(keygen.gen_relinearization_key(&secret)?);
    let bar = progress(setup.galois_key_count(ctx.params()).0, "Galois keys");
    let galois = setup.galois_keys(&mut keygen, &secret, &|| bar.inc(1))?;
    bar.finish_and_clear();
    Ok((
        secret,
        EvaluationKeys {
            relinearization,
            galois,
        },
    ))
}

pub(super) fn run(args: &KeygenArgs) -> Result<()> {
    let params = super::load_parameters(&args.params)?;
    let model = super::model::load_model(&args.model)?;
    let setup = ServerSetup::new(model.twin.config(), &params, args.model.adapter_mode())?;
    let ctx = files::context(&params, &args.backend)?;
    let (key_count, capped) = setup.galois_key_count(&params);
    eprintln!(
        "heformer keygen: {} (N = 2^{}), {} Galois keys ({} of them capped below the top level)",
        params.name(),
        params.log_n(),
        key_count,
        capped,
    );
    let mut prng = prng(args.seed)?;
    let public_prng = prng.fork();
    let (secret, keys) = generate_keys(&ctx, &setup, prng)?;
    let public = match args.model.adapter_mode() {
        AdapterMode::Encrypted | AdapterMode::Full => {
            Some(KeyGenerator::new(ctx.clone(), public_prng).gen_public_key(&secret)?)
        }
        AdapterMode::Merged => None,
    };
    let dir = KeysDir::new(&args.out);
    dir.save(&ctx, &args.model, &secret, (&keys, public.as_ref()))?;
    super::print_line(format_args!(
        "wrote {} (keep it) and {} (for the server)",
        args.out.join(files::SECRET_KEY).display(),
        args.out.join(files::EVAL_DIR).display()
    ))
}
