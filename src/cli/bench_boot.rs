//! `heformer bench boot`: times a full-slot bootstrap on a preset that can
//! bootstrap and measures its precision, with the levels left and the
//! secret distribution (one JSON line with `op` = `bootstrap` under
//! `--json`, otherwise a short report). Inputs are complex, uniform in the
//! unit square, or real with `--real`.

use super::bench::{time, Measurement, RunArgs, Session};
use crate::backend::create_backend;
use crate::circuits::boot::{BootstrapConfig, Bootstrapper};
use crate::ckks::precision::PrecisionStats;
use crate::ckks::CkksContext;
use crate::error::{Error, Result};

/// Options of `heformer bench boot`.
#[derive(Debug, clap::Args)]
pub struct BootBenchArgs {
    /// A preset that can bootstrap (`heformer params` marks them).
    #[arg(long, default_value = "PN16_BOOT_128_SPARSE_H192")]
    params: String,
    /// Real inputs (imaginary parts zero) instead of complex ones: the
    /// setting of `benches/compare/lattigo_boot.py`, whose library takes
    /// real values only. Precision is still measured on the whole slots.
    #[arg(long)]
    real: bool,
    #[command(flatten)]
    run: RunArgs,
}

pub(super) fn run_boot(args: &BootBenchArgs) -> Result<()> {
    let params = super::load_parameters(&args.params)?;
    let config = BootstrapConfig::for_preset(&params).ok_or_else(|| {
        Error::InvalidParameters(format!(
            "{} has no bootstrapping configuration (see `heformer params`)",
            params.name()
        ))
    })?;
    let backend = create_backend(args.run.backend.backend, args.run.backend.threads)?;
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
    let mut session = Session::new(&ctx, args.run.seed, &rotations, boot.needs_conjugation())?;
    let mut values = session.random_values(boot.config().slots);
    if args.real {
        values.iter_mut().for_each(|v| v.im = 0.0);
    }
    let pt = session
        .encoder
        .encode_complex(&values, 0, params.default_scale())?;
    let ct = session.encryptor.encrypt(&pt)?;
    eprintln!(
        "bootstrapping (1 warm-up + {} timed)...",
        args.run.reps.max(1)
    );
    let (t, out) = time(backend.as_ref(), args.run.reps, || {
        boot.bootstrap(&session.evaluator, &ct)
    })?;
    let precision = PrecisionStats::compare(&values, &session.decrypt(&out)?);
    let record = Measurement::new(
        "boot",
        "bootstrap",
        backend.as_ref(),
        &params,
        1,
        args.run.reps,
        t,
    )
    .with_precision(Some(precision))
    .with_levels_left(out.level(), params.secret().to_string())
    .with_input(if args.real { "real" } else { "complex" });
    if args.run.json {
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
