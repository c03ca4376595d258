//! `heformer bench ckks`: times every CKKS operation on one parameter set and
//! measures the precision of its output against plain complex arithmetic.
//!
//! With `--json`, each measurement is one JSON object per line (see
//! [`Measurement`]); otherwise a readable table.

use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};

use super::BackendArgs;
use crate::backend::{create_backend, Backend};
use crate::ckks::precision::PrecisionStats;
use crate::ckks::{
    Ciphertext, CkksContext, Decryptor, Encoder, EncryptionKey, Encryptor, EvaluationKeys,
    Evaluator, KeyGenerator, Prng,
};
use crate::error::{Error, Result};
use crate::math::Complex;

/// Options of `heformer bench ckks`.
#[derive(Debug, clap::Args)]
pub struct CkksBenchArgs {
    /// Parameter preset (see `heformer params`), or the path of a JSON
    /// parameter literal (validated like any other).
    #[arg(long, default_value = "PN16_128")]
    params: String,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// Repetitions per operation.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Fixed seed for keys and inputs (default: fresh OS randomness).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// The options `heformer bench boot` and `heformer bench poly` share.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub(super) json: bool,
    /// Timed repetitions (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    pub(super) reps: usize,
    /// Fixed seed for keys and inputs (default: fresh OS randomness).
    #[arg(long)]
    pub(super) seed: Option<u64>,
    #[command(flatten)]
    pub(super) backend: BackendArgs,
}

/// One benchmark record (one JSON line).
#[derive(Debug, serde::Serialize)]
pub struct Measurement {
    suite: &'static str,
    op: &'static str,
    backend: String,
    device: String,
    params: String,
    log_n: u32,
    limbs: usize,
    dnum: usize,
    threads: usize,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    reps: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    precision_bits: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    precision_min_bits: Option<f64>,
    /// Bytes moved (see the op) per second of the median, in GB/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    gb_per_s: Option<f64>,
    /// Levels left on the output (bootstrapping).
    #[serde(skip_serializing_if = "Option::is_none")]
    levels_left: Option<usize>,
    /// The secret distribution (bootstrapping).
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    /// Levels consumed (polynomial circuits).
    #[serde(skip_serializing_if = "Option::is_none")]
    depth: Option<usize>,
    /// What the inputs were (bootstrapping: `complex` or `real`).
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'static str>,
    commit: &'static str,
}

impl Measurement {
    /// A record of `op` in `suite` on `backend` and `params` with the
    /// median/min/max times `t` of `reps` runs over `limbs` limbs.
    pub(super) fn new(
        suite: &'static str,
        op: &'static str,
        backend: &dyn Backend,
        params: &crate::params::Parameters,
        limbs: usize,
        reps: usize,
        t: (f64, f64, f64),
    ) -> Self {
        Self {
            suite,
            op,
            backend: backend.kind().to_string(),
            device: backend.device_name(),
            params: params.name().to_string(),
            log_n: params.log_n(),
            limbs,
            dnum: params.dnum(),
            threads: backend.threads(),
            median_ms: t.0,
            min_ms: t.1,
            max_ms: t.2,
            reps: reps.max(1),
            precision_bits: None,
            precision_min_bits: None,
            gb_per_s: None,
            levels_left: None,
            secret: None,
            depth: None,
            input: None,
            commit: env!("HEFORMER_GIT_COMMIT"),
        }
    }

    /// With the precision of its output.
    pub(super) fn with_precision(mut self, p: Option<PrecisionStats>) -> Self {
        self.precision_bits = p.map(|p| p.mean_bits);
        self.precision_min_bits = p.map(|p| p.min_bits);
        self
    }

    /// With a description of the inputs.
    pub(super) fn with_input(mut self, input: &'static str) -> Self {
        self.input = Some(input);
        self
    }

    /// With the levels left and the secret distribution (bootstrapping).
    pub(super) fn with_levels_left(mut self, levels: usize, secret: String) -> Self {
        self.levels_left = Some(levels);
        self.secret = Some(secret);
        self
    }

    /// With the levels a circuit consumed.
    pub(super) fn with_depth(mut self, depth: usize) -> Self {
        self.depth = Some(depth);
        self
    }

    /// As one JSON line.
    pub(super) fn print_json(&self) -> Result<()> {
        super::print_line(format_args!(
            "{}",
            serde_json::to_string(self).unwrap_or_default()
        ))
    }
}

/// Runs `f` once untimed (warm-up: first-touch page faults, cold tables),
/// then `reps` times; returns (median, min, max) in milliseconds and the
/// last output.
/// Median, min and max milliseconds of `reps` runs of `f` after one warm-up
/// run; the clock stops after the backend has finished the work.
pub(super) fn time<T>(
    backend: &dyn Backend,
    reps: usize,
    mut f: impl FnMut() -> Result<T>,
) -> Result<((f64, f64, f64), T)> {
    f()?;
    backend.synchronize()?;
    let mut times = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let out = f()?;
        backend.synchronize()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        last = Some(out);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let stats = (times[times.len() / 2], times[0], times[times.len() - 1]);
    last.map(|out| (stats, out)).ok_or(Error::OutOfRange {
        op: "bench",
        detail: "no repetition ran".into(),
    })
}

/// What a benchmark needs besides the context: an evaluator with the
/// relinearization key and the Galois keys for `rotations` (and conjugation
/// when asked), an encoder, a public-key encryptor, a decryptor and the
/// input generator, all seeded from `seed` when one is given.
pub(super) struct Session {
    pub(super) evaluator: Evaluator,
    pub(super) encoder: Encoder,
    pub(super) encryptor: Encryptor,
    pub(super) decryptor: Decryptor,
    rng: rand_chacha::ChaCha20Rng,
}

impl Session {
    pub(super) fn new(
        ctx: &Arc<CkksContext>,
        seed: Option<u64>,
        rotations: &[i64],
        conjugation: bool,
    ) -> Result<Self> {
        let mut keygen = KeyGenerator::new(ctx.clone(), prng(seed, 0)?);
        let sk = keygen.gen_secret_key()?;
        let pk = keygen.gen_public_key(&sk)?;
        let relinearization = Some(keygen.gen_relinearization_key(&sk)?);
        let galois = keygen.gen_galois_keys(&sk, rotations, conjugation)?;
        Ok(Self {
            evaluator: Evaluator::new(
                ctx.clone(),
                EvaluationKeys {
                    relinearization,
                    galois,
                },
            )?,
            encoder: Encoder::new(ctx.clone()),
            encryptor: Encryptor::new(ctx.clone(), EncryptionKey::Public(pk), prng(seed, 1)?)?,
            decryptor: Decryptor::new(ctx.clone(), sk)?,
            rng: match seed {
                Some(s) => rand_chacha::ChaCha20Rng::seed_from_u64(s.wrapping_add(2)),
                None => rand_chacha::ChaCha20Rng::from_os_rng(),
            },
        })
    }

    /// `count` complex values with real and imaginary parts uniform in [−1, 1).
    pub(super) fn random_values(&mut self, count: usize) -> Vec<Complex> {
        (0..count)
            .map(|_| {
                Complex::new(
                    self.rng.random_range(-1.0..1.0),
                    self.rng.random_range(-1.0..1.0),
                )
            })
            .collect()
    }

    /// `count` reals uniform in [0, 1).
    pub(super) fn random_fractions(&mut self, count: usize) -> Vec<f64> {
        (0..count)
            .map(|_| self.rng.random_range(0.0..1.0))
            .collect()
    }

    /// The decrypted, decoded slots of `ct`.
    pub(super) fn decrypt(&self, ct: &Ciphertext) -> Result<Vec<Complex>> {
        self.encoder.decode(&self.decryptor.decrypt(ct)?)
    }
}

pub(super) fn prng(seed: Option<u64>, stream: u64) -> Result<Prng> {
    match seed {
        Some(s) => Ok(Prng::from_seed(s.wrapping_add(stream))),
        None => Prng::from_os(),
    }
}

pub(super) fn run_ckks(args: &CkksBenchArgs) -> Result<()> {
    let params = super::load_parameters(&args.params)?;
    // The decoder's CRT runs on rayon's global pool: give it the same width.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(args.backend.threads)
        .build_global();
    let backend = create_backend(args.backend.backend, args.backend.threads)?;
    let ctx = CkksContext::new(&params, backend.clone())?;
    let sync = backend.as_ref();
    let level = params.max_level();
    let scale = params.default_scale();
    let slots = params.max_slots();
    let hoisted_steps: Vec<i64> = (1..=8).collect();

    // The chosen device goes to stderr in both modes (stdout may be JSON).
    eprintln!(
        "heformer bench ckks: {} (N = 2^{}, {} limbs, dnum {}), backend {} on {}, {} threads",
        params.name(),
        params.log_n(),
        level + 1,
        params.dnum(),
        backend.kind(),
        backend.device_name(),
        backend.threads()
    );
    if !args.json {
        eprintln!(
            "generating keys (relinearization + {} rotations)...",
            hoisted_steps.len()
        );
    }
    let mut session = Session::new(&ctx, args.seed, &hoisted_steps, false)?;
    let a = session.random_values(slots);
    let b = session.random_values(slots);
    let Session {
        evaluator,
        encoder,
        mut encryptor,
        decryptor,
        ..
    } = session;
    let decrypt_values =
        |ct: &Ciphertext| -> Result<Vec<Complex>> { encoder.decode(&decryptor.decrypt(ct)?) };
    let precision = |want: &[Complex], ct: &Ciphertext| -> Result<PrecisionStats> {
        Ok(PrecisionStats::compare(want, &decrypt_values(ct)?))
    };

    let mut records = Vec::new();
    let mut record = |op: &'static str,
                      t: (f64, f64, f64),
                      limbs: usize,
                      p: Option<PrecisionStats>,
                      bytes: Option<f64>| {
        let mut m = Measurement::new("ckks", op, backend.as_ref(), &params, limbs, args.reps, t)
            .with_precision(p);
        m.gb_per_s = bytes.map(|b| b / (t.0 * 1e6));
        let printed = if args.json { m.print_json() } else { Ok(()) };
        records.push(m);
        printed
    };
    let reps = args.reps;
    let limbs = level + 1;

    let (t, pt_a) = time(sync, reps, || encoder.encode_complex(&a, level, scale))?;
    record(
        "encode",
        t,
        limbs,
        Some(PrecisionStats::compare(&a, &encoder.decode(&pt_a)?)),
        None,
    )?;
    let pt_b = encoder.encode_complex(&b, level, scale)?;

    let (t, _) = time(sync, reps, || encoder.decode(&pt_a))?;
    record("decode", t, limbs, None, None)?;

    let (t, ct_a) = time(sync, reps, || encryptor.encrypt(&pt_a))?;
    record("encrypt", t, limbs, Some(precision(&a, &ct_a)?), None)?;
    let ct_b = encryptor.encrypt(&pt_b)?;

    let (t, pt) = time(sync, reps, || decryptor.decrypt(&ct_a))?;
    record(
        "decrypt",
        t,
        limbs,
        Some(PrecisionStats::compare(&a, &encoder.decode(&pt)?)),
        None,
    )?;

    let ab: Vec<Complex> = a.iter().zip(&b).map(|(x, y)| *x * *y).collect();
    let (t, _) = time(sync, reps, || evaluator.tensor_new(&ct_a, &ct_b))?;
    record("tensor", t, limbs, None, None)?;
    let tensor = evaluator.tensor_new(&ct_a, &ct_b)?;
    let (t, _) = time(sync, reps, || {
        let mut c = tensor.clone();
        evaluator.relinearize_assign(&mut c)?;
        Ok(c)
    })?;
    record("relinearize", t, limbs, None, None)?;
    let (t, product) = time(sync, reps, || evaluator.mul_relin_rescale_new(&ct_a, &ct_b))?;
    record("hmult", t, limbs, Some(precision(&ab, &product)?), None)?;
    let (t, product) = time(sync, reps, || {
        let mut c = evaluator.mul_relin_new(&ct_a, &ct_b)?;
        evaluator.rescale_assign(&mut c)?;
        Ok(c)
    })?;
    record(
        "hmult_unfused",
        t,
        limbs,
        Some(precision(&ab, &product)?),
        None,
    )?;
    let unscaled = evaluator.mul_relin_new(&ct_a, &ct_b)?;
    let (t, rescaled) = time(sync, reps, || evaluator.rescale_new(&unscaled))?;
    record("rescale", t, limbs, Some(precision(&ab, &rescaled)?), None)?;

    let rotated_want =
        |k: usize| -> Vec<Complex> { (0..slots).map(|j| a[(j + k) % slots]).collect() };
    let (t, rotated) = time(sync, reps, || evaluator.rotate_new(&ct_a, 1))?;
    // Key-switch traffic model: the key read once, the ModUp digits written
    // once and read once by the inner product.
    let ring = ctx.ring();
    let poly_bytes = (ring.n() * ring.extended_basis(level).len() * 8) as f64;
    let digits = params.digits_at_level(level) as f64;
    let key_switch_bytes = digits * poly_bytes * (2.0 + 2.0);
    record(
        "rotate",
        t,
        limbs,
        Some(precision(&rotated_want(1), &rotated)?),
        Some(key_switch_bytes),
    )?;
    let (t, hoisted) = time(sync, reps, || {
        evaluator.rotate_hoisted_new(&ct_a, &hoisted_steps)
    })?;
    let mut worst: Option<PrecisionStats> = None;
    for (k, ct) in (1..).zip(&hoisted) {
        let p = precision(&rotated_want(k), ct)?;
        if worst.is_none_or(|w| p.min_bits < w.min_bits) {
            worst = Some(p);
        }
    }
    record("rotate_hoisted_8", t, limbs, worst, None)?;

    // Backend primitives: the batched NTT of every limb, and a device copy of
    // a key-sized buffer (read + write) as the reference bandwidth.
    let basis = ring.q_basis(level);
    let mut poly = ct_a.parts[0].try_clone()?;
    let (t, ()) = time(sync, reps, || backend.ntt_forward(ring, &mut poly, &basis))?;
    record("ntt_forward", t, limbs, None, None)?;
    let words = (digits * 2.0 * poly_bytes / 8.0) as usize;
    let source = backend.alloc_zeroed(words)?;
    let mut target = backend.alloc(words)?;
    let (t, ()) = time(sync, reps, || backend.copy(&source, &mut target, words))?;
    record("device_copy", t, limbs, None, Some(16.0 * words as f64))?;

    if !args.json {
        super::print_line(format_args!(
            "{:<18} {:>11} {:>11} {:>11} {:>6} {:>10} {:>10} {:>8}",
            "op", "median ms", "min ms", "max ms", "reps", "prec bits", "min bits", "GB/s"
        ))?;
        for m in &records {
            let bits = |b: Option<f64>| b.map_or_else(|| "-".to_string(), |b| format!("{b:.1}"));
            super::print_line(format_args!(
                "{:<18} {:>11.3} {:>11.3} {:>11.3} {:>6} {:>10} {:>10} {:>8}",
                m.op,
                m.median_ms,
                m.min_ms,
                m.max_ms,
                m.reps,
                bits(m.precision_bits),
                bits(m.precision_min_bits),
                m.gb_per_s
                    .map_or_else(|| "-".to_string(), |g| format!("{g:.1}"))
            ))?;
        }
    }
    Ok(())
}
