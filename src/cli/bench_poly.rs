//! `heformer bench poly`: the named fitted functions (sign, ReLU, inverse
//! square root, reciprocal, exp two ways, tanh) evaluated under encryption
//! on full slots of inputs from their domains: time, levels consumed, and
//! precision against the exact function (`op` = the function's name, suite
//! `poly`).

use super::bench::{time, Measurement, RunArgs, Session};
use crate::approx::NamedFunction;
use crate::backend::create_backend;
use crate::circuits::functions;
use crate::ckks::precision::PrecisionStats;
use crate::ckks::CkksContext;
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
    #[command(flatten)]
    run: RunArgs,
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
    let backend = create_backend(args.run.backend.backend, args.run.backend.threads)?;
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
    let mut session = Session::new(&ctx, args.run.seed, &[], false)?;
    let top = params.max_level();
    if !args.run.json {
        super::print_line(format_args!(
            "{:<14} {:>11} {:>8} {:>6} {:>10} {:>9} {:>10}",
            "function", "median ms", "min ms", "depth", "prec bits", "min bits", "fit error"
        ))?;
    }
    for function in functions {
        let fitted = function.fit_default()?;
        let xs: Vec<f64> = session
            .random_fractions(params.max_slots())
            .into_iter()
            .map(|u| fitted.domain.point(u))
            .collect();
        let values: Vec<Complex> = xs.iter().map(|&x| Complex::new(x, 0.0)).collect();
        let pt = session
            .encoder
            .encode_complex(&values, top, params.default_scale())?;
        let ct = session.encryptor.encrypt(&pt)?;
        let timed = time(backend.as_ref(), args.run.reps, || {
            functions::evaluate(&session.evaluator, &ct, &fitted.approximation)
        });
        let (t, out) = match timed {
            Err(e @ Error::OutOfLevels { .. }) => {
                eprintln!(
                    "{}: skipped, {} has too few levels ({e})",
                    function.name(),
                    params.name()
                );
                continue;
            }
            other => other?,
        };
        let got = session.decrypt(&out)?;
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
            args.run.reps,
            t,
        )
        .with_precision(Some(precision))
        .with_depth(depth);
        if args.run.json {
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
