//! `heformer bench boot`: times a full-slot bootstrap on a preset that can
//! bootstrap and measures its precision, with the levels left and the
//! secret distribution (one JSON line with `op` = `bootstrap` under
//! `--json`, otherwise a short report).

use rand::{Rng, SeedableRng};

use super::bench::{prng, time, Measurement};
use super::BackendArgs;
use crate::backend::create_backend;
use crate::circuits::boot::{BootstrapConfig, Bootstrapper};
use crate::ckks::precision::PrecisionStats;
use crate::ckks::{
    CkksContext, Decryptor, Encoder, EncryptionKey, Encryptor, EvaluationKeys, Evaluator,
    KeyGenerator,
};
use crate::error::{Error, Result};
use crate::math::Complex;

/// Options of `heformer bench boot`.
#[derive(Debug, clap::Args)]
pub struct BootBenchArgs {
    /// A preset that can bootstrap (`heformer params` marks them).
    #[arg(long, default_value = "PN16_BOOT_128_SPARSE_H192")]
    params: String,
    /// Print one JSON line instead of a report.
    #[arg(long)]
    json: bool,
    /// Timed repetitions (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Fixed seed for keys and inputs (default: fresh OS randomness).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    backend: BackendArgs,
}

pub(super) fn run_boot(args: &BootBenchArgs) -> Result<()> {
    let params = super::load_parameters(&args.params)?;
    let config = BootstrapConfig::for_preset(&params).ok_or_else(|| {
        Error::InvalidParameters(format!(
            "{} has no bootstrapping configuration (see `heformer params`)",
            params.name()
        ))
    })?;
    let backend = create_backend(args.backend.backend, args.backend.threads)?;
    let ctx = CkksContext::new(&params, backend.clone())?;
    eprintln!(
        "heformer bench boot: {} (N = 2^{}, {} slots, secret {}), backend {} on {}, {} threads",
        params.name(),
        params.log_n(),
        config.slots,
        params.secret(),
        backend.kind(),
        backend.device_name(),
        backend.threads()
    );
    let boot = Bootstrapper::new(ctx.clone(), config)?;
    let rotations = boot.rotations();
    eprintln!(
        "generating keys (relinearization, conjugation, {} rotations)...",
        rotations.len()
    );
    let mut keygen = KeyGenerator::new(ctx.clone(), prng(args.seed, 0)?);
    let sk = keygen.gen_secret_key()?;
    let relinearization = Some(keygen.gen_relinearization_key(&sk)?);
    let galois = keygen.gen_galois_keys(&sk, &rotations, boot.needs_conjugation())?;
    let evaluator = Evaluator::new(
        ctx.clone(),
        EvaluationKeys {
            relinearization,
            galois,
        },
    )?;
    let encoder = Encoder::new(ctx.clone());
    let mut encryptor = Encryptor::new(
        ctx.clone(),
        EncryptionKey::Secret(sk.clone()),
        prng(args.seed, 1)?,
    )?;
    let decryptor = Decryptor::new(ctx.clone(), sk)?;
    let mut rng = match args.seed {
        Some(s) => rand_chacha::ChaCha20Rng::seed_from_u64(s.wrapping_add(2)),
        None => rand_chacha::ChaCha20Rng::from_os_rng(),
    };
    let values: Vec<Complex> = (0..boot.config().slots)
        .map(|_| Complex::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
        .collect();
    let pt = encoder.encode_complex(&values, 0, params.default_scale())?;
    let ct = encryptor.encrypt(&pt)?;
    eprintln!("bootstrapping (1 warm-up + {} timed)...", args.reps.max(1));
    let (t, out) = time(backend.as_ref(), args.reps, || {
        boot.bootstrap(&evaluator, &ct)
    })?;
    let precision = PrecisionStats::compare(&values, &encoder.decode(&decryptor.decrypt(&out)?)?);
    let record = Measurement::new(
        "boot",
        "bootstrap",
        backend.as_ref(),
        &params,
        1,
        args.reps,
        t,
    )
    .with_precision(Some(precision))
    .with_levels_left(out.level(), params.secret().to_string());
    if args.json {
        return record.print_json();
    }
    super::print_line(format_args!(
        "bootstrap: median {:.1} ms (min {:.1}, max {:.1}), levels left {}, precision mean {:.1} bits, worst slot {:.1} bits, secret {}",
        t.0,
        t.1,
        t.2,
        out.level(),
        precision.mean_bits,
        precision.min_bits,
        params.secret()
    ))
}
