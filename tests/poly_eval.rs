//! Encrypted polynomial evaluation against the plain evaluation of the same
//! Chebyshev series on the decrypted input, slot by slot.
//!
//! Error bound. Every operation (rescale, key switch, constant rounding)
//! adds at most `e_op = 2^(log N + 12) / scale` relative to the scale it
//! works at (the fixture's budget: a fresh-encryption or key-switch noise of
//! about `log N + 6` bits, and a 6-bit margin). An error injected into `T_j`
//! reaches `T_k` amplified by at most `(k/j)² <= k²` (Markov: `|T_k'| <= k²`
//! on `[-1, 1]`), through at most `depth` injections on the way, and the
//! affine map multiplies errors on the input side by `α = 2/(b − a)`. So
//! `|error| <= e_op · max(α, 1) · (depth · Σ_k |c_k|·max(k, 1)² + ct_mults + 1)`.

mod common;

use common::{Fixture, PrecisionStats};
use heformer::approx::ChebyshevSeries;
use heformer::circuits::poly::{self, PolyPlan};
use heformer::ckks::{Ciphertext, EvaluationKeys, Evaluator};
use heformer::math::Complex;
use heformer::Error;
use rand::Rng;

const PRESET: &str = "TEST_INSECURE_N12";

fn ceil_log2(n: usize) -> usize {
    (usize::BITS - (n - 1).leading_zeros()) as usize
}

/// Real values uniform in `[a, b]`, encrypted at `level` and the default scale.
fn encrypt_in(f: &mut Fixture, (a, b): (f64, f64), level: usize) -> Ciphertext {
    let values: Vec<f64> = (0..f.slots()).map(|_| f.rng.random_range(a..b)).collect();
    let pt = f
        .encoder
        .encode_real(&values, level, f.params.default_scale())
        .unwrap();
    f.encryptor.encrypt(&pt).unwrap()
}

/// The bound of the module docs, in bits (−log2).
fn required_bits(f: &Fixture, series: &ChebyshevSeries, plan: &PolyPlan, scale: f64) -> f64 {
    let (a, b) = series.interval();
    let alpha = (2.0 / (b - a)).max(1.0);
    let markov: f64 = series
        .coeffs()
        .iter()
        .enumerate()
        .map(|(k, c)| c.abs() * (k.max(1) as f64).powi(2))
        .sum();
    let growth = alpha * (plan.depth() as f64 * markov + plan.ct_mults() as f64 + 1.0);
    f.required_bits(scale) - growth.log2()
}

/// One run of a plan: its input and the scale its outputs were asked for.
struct Run<'a> {
    input: &'a Ciphertext,
    plan: &'a PolyPlan,
    scale: f64,
}

/// Checks output `index` of `run` against the plain series on the decrypted
/// input: level, scale and precision.
fn check(
    f: &Fixture,
    what: &str,
    run: &Run,
    series: &ChebyshevSeries,
    out: &Ciphertext,
    index: usize,
) -> PrecisionStats {
    let Run { input, plan, scale } = *run;
    assert_eq!(
        out.level(),
        input.level() - plan.depths()[index],
        "{what}: consumed depth"
    );
    assert_eq!(out.level(), plan.output_levels()[index], "{what}: level");
    assert!(
        (out.scale() / scale - 1.0).abs() <= 1e-12,
        "{what}: scale 2^{} instead of 2^{}",
        out.scale().log2(),
        scale.log2()
    );
    let want: Vec<Complex> = f
        .decrypt(input)
        .iter()
        .map(|x| Complex::from(series.eval(x.re)))
        .collect();
    let got = f.decrypt(out);
    let stats = PrecisionStats::compare(&want, &got[..want.len()]);
    let required = required_bits(f, series, plan, scale.min(input.scale()));
    eprintln!(
        "{what}: degree {} on {:?}, depth {} (affine {}), {} ct-mults, {} relins, baby {}: \
         min {:.1} bits, mean {:.1} bits (required {:.1})",
        series.degree(),
        series.interval(),
        plan.depths()[index],
        plan.affine_levels(),
        plan.ct_mults(),
        plan.relinearizations(),
        plan.baby_steps(),
        stats.min_bits,
        stats.mean_bits,
        required
    );
    assert!(
        stats.min_bits >= required,
        "{what}: {:.1} bits < {required:.1}",
        stats.min_bits
    );
    stats
}

/// Evaluates one series with a fresh plan and checks it.
fn run_one(
    f: &mut Fixture,
    what: &str,
    series: &ChebyshevSeries,
    level: usize,
    output_scale: Option<f64>,
) -> PolyPlan {
    let input = encrypt_in(f, series.interval(), level);
    let plan = PolyPlan::new(
        &f.params,
        std::slice::from_ref(series),
        input.level(),
        input.scale(),
    )
    .unwrap();
    let out = poly::evaluate(&f.evaluator, &input, series, output_scale).unwrap();
    let scale = output_scale.unwrap_or(input.scale());
    check(
        f,
        what,
        &Run {
            input: &input,
            plan: &plan,
            scale,
        },
        series,
        &out,
        0,
    );
    plan
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Parity {
    General,
    Odd,
    Even,
}

/// Random coefficients decaying as 2^(−k/8), of the given parity, with a
/// non-zero leading coefficient.
fn random_series(f: &mut Fixture, degree: usize, parity: Parity) -> ChebyshevSeries {
    let keep = |k: usize| match parity {
        Parity::General => true,
        Parity::Odd => k % 2 == 1,
        Parity::Even => k % 2 == 0,
    };
    let top = (0..=degree).rev().find(|&k| keep(k)).unwrap();
    let coeffs: Vec<f64> = (0..=top)
        .map(|k| {
            if !keep(k) {
                return 0.0;
            }
            let u: f64 = f.rng.random_range(0.25..1.0) * if f.rng.random() { 1.0 } else { -1.0 };
            u * (-(k as f64) / 8.0).exp2()
        })
        .collect();
    ChebyshevSeries::new(coeffs, (-1.0, 1.0)).unwrap()
}

/// Chebyshev interpolant of `f` of degree `n` on `[a, b]` (n + 1 Chebyshev nodes).
fn interpolate(f: impl Fn(f64) -> f64, n: usize, (a, b): (f64, f64)) -> ChebyshevSeries {
    let m = n + 1;
    let nodes: Vec<f64> = (0..m)
        .map(|j| std::f64::consts::PI * (j as f64 + 0.5) / m as f64)
        .collect();
    let values: Vec<f64> = nodes
        .iter()
        .map(|t| f((a + b) / 2.0 + (b - a) / 2.0 * t.cos()))
        .collect();
    let coeffs = (0..m)
        .map(|k| {
            let sum: f64 = nodes
                .iter()
                .zip(&values)
                .map(|(t, v)| v * (k as f64 * t).cos())
                .sum();
            sum * if k == 0 { 1.0 } else { 2.0 } / m as f64
        })
        .collect();
    ChebyshevSeries::new(coeffs, (a, b)).unwrap()
}

#[test]
fn degrees_general_odd_even_on_the_unit_interval() {
    let mut f = Fixture::new(PRESET, &[], 11);
    let top = f.params.max_level();
    for degree in [1usize, 2, 3, 7, 8, 15, 31, 63] {
        for parity in [Parity::General, Parity::Odd, Parity::Even] {
            if parity == Parity::Even && degree == 1 {
                continue;
            }
            let series = random_series(&mut f, degree, parity);
            let what = format!("{parity:?} degree {degree}");
            let plan = run_one(&mut f, &what, &series, top, None);
            assert_eq!(plan.affine_levels(), 0, "{what}: [-1, 1] needs no map");
            assert_eq!(plan.depth(), ceil_log2(series.degree() + 1), "{what}");
            assert_eq!(plan.needs_relinearization_key(), series.degree() > 1);
            let powers = plan.powers();
            match parity {
                Parity::Odd => assert!(
                    powers.iter().all(|i| i % 2 == 1 || i.is_power_of_two()),
                    "{what}: {powers:?}"
                ),
                Parity::Even => assert!(powers.iter().all(|i| i % 2 == 0), "{what}: {powers:?}"),
                Parity::General => {}
            }
        }
    }
}

/// A function, the degree of its interpolant, the interval, and the levels
/// the affine map costs.
type Case = (&'static str, fn(f64) -> f64, usize, (f64, f64), usize);

#[test]
fn other_intervals_fold_or_spend_one_level() {
    let mut f = Fixture::new(PRESET, &[], 12);
    let top = f.params.max_level();
    let cases: [Case; 4] = [
        ("exp on [0, 1]", f64::exp, 15, (0.0, 1.0), 0),
        ("1/x on [0.9, 1.1]", f64::recip, 7, (0.9, 1.1), 0),
        ("cos on [-3, 5]", f64::cos, 31, (-3.0, 5.0), 1),
        ("tanh on [-8, 8]", f64::tanh, 63, (-8.0, 8.0), 1),
    ];
    for (what, function, degree, interval, affine) in cases {
        let series = interpolate(function, degree, interval);
        let plan = run_one(&mut f, what, &series, top, None);
        assert_eq!(plan.affine_levels(), affine, "{what}");
        assert_eq!(plan.depth(), ceil_log2(degree + 1) + affine, "{what}");
    }
}

#[test]
fn the_output_lands_at_the_requested_scale() {
    let mut f = Fixture::new(PRESET, &[], 13);
    let top = f.params.max_level();
    for log_scale in [40, 45, 50] {
        let series = random_series(&mut f, 15, Parity::General);
        let scale = 2f64.powi(log_scale);
        run_one(
            &mut f,
            &format!("output scale 2^{log_scale}"),
            &series,
            top,
            Some(scale),
        );
    }
    // Below the top level too (other primes, an input scale that is not 2^45).
    let series = random_series(&mut f, 31, Parity::Odd);
    let mut input = encrypt_in(&mut f, (-1.0, 1.0), top);
    f.evaluator
        .mul_const_assign(&mut input, Complex::from(1.0))
        .unwrap();
    f.evaluator.rescale_assign(&mut input).unwrap();
    let plan = PolyPlan::new(
        &f.params,
        std::slice::from_ref(&series),
        input.level(),
        input.scale(),
    )
    .unwrap();
    let out = plan.evaluate(&f.evaluator, &input, None).unwrap();
    check(
        &f,
        "odd degree 31 from level 7",
        &Run {
            input: &input,
            plan: &plan,
            scale: input.scale(),
        },
        &series,
        &out[0],
        0,
    );
}

#[test]
fn an_input_scale_far_from_the_primes_is_normalized_by_the_map() {
    let mut f = Fixture::new(PRESET, &[], 18);
    let top = f.params.max_level();
    let series = random_series(&mut f, 31, Parity::General);
    // Below the 45-bit primes, the fold's integer (K = 32) lifts the scale for
    // free; above them, the map spends its level to come down.
    for (log_scale, affine) in [(40, 0), (50, 1)] {
        let values: Vec<f64> = (0..f.slots())
            .map(|_| f.rng.random_range(-1.0..1.0))
            .collect();
        let pt = f
            .encoder
            .encode_real(&values, top, 2f64.powi(log_scale))
            .unwrap();
        let input = f.encryptor.encrypt(&pt).unwrap();
        let plan =
            PolyPlan::new(&f.params, std::slice::from_ref(&series), top, input.scale()).unwrap();
        assert_eq!(plan.affine_levels(), affine, "input at 2^{log_scale}");
        let out = plan.evaluate(&f.evaluator, &input, None).unwrap();
        check(
            &f,
            &format!("input at scale 2^{log_scale}"),
            &Run {
                input: &input,
                plan: &plan,
                scale: input.scale(),
            },
            &series,
            &out[0],
            0,
        );
    }
    // An interval whose map would need two rescales is refused.
    let huge = ChebyshevSeries::new(vec![0.0, 1.0, 0.5], (0.0, 1e12)).unwrap();
    let err = PolyPlan::new(
        &f.params,
        std::slice::from_ref(&huge),
        top,
        f.params.default_scale(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::OutOfRange { .. }), "{err}");
}

#[test]
fn degree_255_on_a_larger_ring() {
    let mut f = Fixture::new("TEST_INSECURE_N13", &[], 19);
    let top = f.params.max_level();
    for parity in [Parity::General, Parity::Odd] {
        let series = random_series(&mut f, 255, parity);
        let what = format!("N13 {parity:?} degree 255");
        let plan = run_one(&mut f, &what, &series, top, None);
        assert_eq!(plan.depth(), 8, "{what}");
    }
    let series = interpolate(f64::tanh, 255, (-8.0, 8.0));
    let plan = run_one(&mut f, "N13 tanh on [-8, 8]", &series, top, None);
    assert_eq!((plan.depth(), plan.affine_levels()), (9, 1));
}

#[test]
fn too_few_levels_is_refused_before_any_work() {
    let mut f = Fixture::new(PRESET, &[], 14);
    let keyless = Evaluator::new(f.ctx.clone(), EvaluationKeys::default()).unwrap();
    let unit = random_series(&mut f, 63, Parity::General);
    let wide = interpolate(f64::cos, 31, (-3.0, 5.0));
    for (series, needed) in [(&unit, 6), (&wide, 6)] {
        let input = encrypt_in(&mut f, series.interval(), needed - 1);
        let err = PolyPlan::new(
            &f.params,
            std::slice::from_ref(series),
            input.level(),
            input.scale(),
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::OutOfLevels { level, needed: n, .. } if level == needed - 1 && n == needed),
            "{err}"
        );
        // The plan is checked first: no key is ever asked for.
        let err = poly::evaluate(&keyless, &input, series, None).unwrap_err();
        assert!(matches!(err, Error::OutOfLevels { .. }), "{err}");
        // One more level suffices.
        let input = encrypt_in(&mut f, series.interval(), needed);
        let plan = PolyPlan::new(
            &f.params,
            std::slice::from_ref(series),
            input.level(),
            input.scale(),
        )
        .unwrap();
        assert_eq!(plan.output_levels(), [0]);
    }
}

#[test]
fn keys_errors_and_constants() {
    let mut f = Fixture::new(PRESET, &[], 15);
    let top = f.params.max_level();
    let keyless = Evaluator::new(f.ctx.clone(), EvaluationKeys::default()).unwrap();
    let input = encrypt_in(&mut f, (-2.0, 6.0), top);
    // Degree 1: constant products only, no key.
    let linear = ChebyshevSeries::new(vec![0.5, -1.5], (-2.0, 6.0)).unwrap();
    let plan = PolyPlan::new(&f.params, std::slice::from_ref(&linear), top, input.scale()).unwrap();
    assert!(!plan.needs_relinearization_key());
    let out = plan.evaluate(&keyless, &input, None).unwrap();
    check(
        &f,
        "linear, no key",
        &Run {
            input: &input,
            plan: &plan,
            scale: input.scale(),
        },
        &linear,
        &out[0],
        0,
    );
    // Degree 3 needs the relinearization key.
    let cubic = ChebyshevSeries::new(vec![0.5, -1.5, 0.25, 1.0], (-2.0, 6.0)).unwrap();
    let err = poly::evaluate(&keyless, &input, &cubic, None).unwrap_err();
    assert!(
        matches!(err, Error::MissingRelinearizationKey { .. }),
        "{err}"
    );
    // Constants: 0·x + c_0 at the input's level, at any scale at least the input's.
    for coeffs in [vec![0.75], vec![0.75, 0.0, 0.0]] {
        let constant = ChebyshevSeries::new(coeffs, (-2.0, 6.0)).unwrap();
        let plan = PolyPlan::new(
            &f.params,
            std::slice::from_ref(&constant),
            top,
            input.scale(),
        )
        .unwrap();
        assert_eq!((plan.depth(), plan.ct_mults()), (0, 0));
        for scale in [input.scale(), 2f64.powi(50)] {
            let out = plan.evaluate(&keyless, &input, Some(scale)).unwrap();
            check(
                &f,
                "constant",
                &Run {
                    input: &input,
                    plan: &plan,
                    scale,
                },
                &constant,
                &out[0],
                0,
            );
        }
    }
    // Series on different intervals are not evaluated together; an output
    // scale below 1 is refused; a plan is for its level.
    let other = ChebyshevSeries::new(vec![0.0, 1.0], (-1.0, 1.0)).unwrap();
    let err = PolyPlan::new(&f.params, &[linear.clone(), other], top, input.scale()).unwrap_err();
    assert!(matches!(err, Error::OutOfRange { .. }), "{err}");
    let err = poly::evaluate(&f.evaluator, &input, &cubic, Some(0.5)).unwrap_err();
    assert!(matches!(err, Error::OutOfRange { .. }), "{err}");
    let plan = PolyPlan::new(
        &f.params,
        std::slice::from_ref(&cubic),
        top - 1,
        input.scale(),
    )
    .unwrap();
    let err = plan.evaluate(&f.evaluator, &input, None).unwrap_err();
    assert!(matches!(err, Error::LevelMismatch { .. }), "{err}");
}

#[test]
fn several_series_share_the_powers() {
    let mut f = Fixture::new(PRESET, &[], 16);
    let top = f.params.max_level();
    let pi = std::f64::consts::PI;
    let interval = (-pi, pi);
    let series = [
        interpolate(f64::sin, 31, interval),
        interpolate(f64::cos, 30, interval),
        interpolate(|x| (x / 4.0).exp(), 15, interval),
    ];
    let input = encrypt_in(&mut f, interval, top);
    let plan = PolyPlan::new(&f.params, &series, top, input.scale()).unwrap();
    let separate: usize = series
        .iter()
        .map(|s| {
            PolyPlan::new(&f.params, std::slice::from_ref(s), top, input.scale())
                .unwrap()
                .ct_mults()
        })
        .sum();
    eprintln!(
        "sin, cos, exp together: {} ct-mults, {separate} separately",
        plan.ct_mults()
    );
    assert!(plan.ct_mults() < separate);
    let outputs = plan.evaluate(&f.evaluator, &input, None).unwrap();
    for (i, (s, out)) in series.iter().zip(&outputs).enumerate() {
        check(
            &f,
            &format!("shared #{i}"),
            &Run {
                input: &input,
                plan: &plan,
                scale: input.scale(),
            },
            s,
            out,
            i,
        );
    }
}

#[test]
fn planned_depth_is_optimal() {
    let params = heformer::params::Parameters::preset(PRESET).unwrap();
    let scale = params.default_scale();
    for degree in 1..=255usize {
        let coeffs: Vec<f64> = (0..=degree).map(|k| 1.0 / (1 + k) as f64).collect();
        let series = ChebyshevSeries::new(coeffs, (-1.0, 1.0)).unwrap();
        let plan = PolyPlan::new(
            &params,
            std::slice::from_ref(&series),
            params.max_level(),
            scale,
        )
        .unwrap();
        assert_eq!(plan.depth(), ceil_log2(degree + 1), "degree {degree}");
        if degree.is_power_of_two() || (degree + 1).is_power_of_two() {
            eprintln!(
                "degree {degree}: depth {}, {} ct-mults, {} relins, baby steps {}",
                plan.depth(),
                plan.ct_mults(),
                plan.relinearizations(),
                plan.baby_steps()
            );
        }
    }
}
