//! `heformer bench poly`: the named fitted functions (sign, ReLU, inverse
//! square root, reciprocal, exp two ways, tanh) evaluated under encryption
//! on full slots of inputs from their domains: time, levels consumed, and
//! precision against the exact function (`op` = the function's name, suite
//! `poly`).

use rand::{Rng, SeedableRng};

use super::bench::{prng, time, Measurement};
use super::BackendArgs;
use crate::approx::NamedFunction;
use crate::backend::create_backend;
use crate::circuits::functions;
use crate::ckks::precision::PrecisionStats;
use crate::ckks::{
    CkksContext, Decryptor, Encoder, EncryptionKey, Encryptor, EvaluationKeys, Evaluator,
    GaloisKeys, KeyGenerator,
};
use crate::error::{Error, Result};
use crate::math::Complex;

/// Options of `heformer bench poly`.
#[derive(Debug, clap::Args)]
pub struct PolyBenchArgs {
    /// Parameter preset with enough levels (the default sign takes 14).
    #[arg(long, default_value = "PN16_128")]
    params: String,
    /// Functions to run (default: all); names as `heformer bench poly` prints.
    #[arg(long, value_delimiter = ',')]
    functions: Vec<String>,
    /// Print JSON lines instead of a table.
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

pub(super) fn run_poly(args: &PolyBenchArgs) -> Result<()> {
    let functions = if args.functions.is_empty() {
        NamedFunction::ALL.to_vec()
    } else {
        args.functions
            .iter()
            .map(|name| NamedFunction::from_name(name))
            .collect::<Result<Vec<_>>>()?
    };
    let params = super::load_parameters(&args.params)?;
    let backend = create_backend(args.backend.backend, args.backend.threads)?;
    let ctx = CkksContext::new(&params, backend.clone())?;
    eprintln!(
        "heformer bench poly: {} (N = 2^{}, {} levels), backend {} on {}, {} threads",
        params.name(),
        params.log_n(),
        params.max_level(),
        backend.kind(),
        backend.device_name(),
        backend.threads()
    );
    let mut keygen = KeyGenerator::new(ctx.clone(), prng(args.seed, 0)?);
    let sk = keygen.gen_secret_key()?;
    let relinearization = Some(keygen.gen_relinearization_key(&sk)?);
    let evaluator = Evaluator::new(
        ctx.clone(),
        EvaluationKeys {
            relinearization,
            galois: GaloisKeys::default(),
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
    let top = params.max_level();
    if !args.json {
        super::print_line(format_args!(
            "{:<14} {:>11} {:>8} {:>6} {:>10} {:>9} {:>10}",
            "function", "median ms", "min ms", "depth", "prec bits", "min bits", "fit error"
        ))?;
    }
    for function in functions {
        let fitted = function.fit_default()?;
        let xs: Vec<f64> = (0..params.max_slots())
            .map(|_| fitted.domain.point(rng.random_range(0.0..1.0)))
            .collect();
        let values: Vec<Complex> = xs.iter().map(|&x| Complex::new(x, 0.0)).collect();
        let ct =
            encryptor.encrypt(&encoder.encode_complex(&values, top, params.default_scale())?)?;
        let (t, out) = time(backend.as_ref(), args.reps, || {
            functions::evaluate(&evaluator, &ct, &fitted.approximation)
        })?;
        let got = encoder.decode(&decryptor.decrypt(&out)?)?;
        let want: Vec<Complex> = xs
            .iter()
            .map(|&x| Complex::new(function.exact(x), 0.0))
            .collect();
        let precision = PrecisionStats::compare(&want, &got);
        let depth = top.checked_sub(out.level()).ok_or(Error::OutOfRange {
            op: "bench poly",
            detail: "the output is above the input's level".into(),
        })?;
        let record = Measurement::new(
            "poly",
            function.name(),
            backend.as_ref(),
            &params,
            top + 1,
            args.reps,
            t,
        )
        .with_precision(Some(precision))
        .with_depth(depth);
        if args.json {
            record.print_json()?;
        } else {
            super::print_line(format_args!(
                "{:<14} {:>11.1} {:>8.1} {:>6} {:>10.1} {:>9.1} {:>10.2e}",
                function.name(),
                t.0,
                t.1,
                depth,
                precision.mean_bits,
                precision.min_bits,
                fitted.max_error
            ))?;
        }
    }
    Ok(())
}
