//! Circuits longer than the chain (`TEST_INSECURE_BOOT_N11_L9`: nine levels
//! between bootstraps), evaluated with levels refreshed by bootstrapping
//! between their stages: the friendly transformer's exp by squaring with
//! r = 14 (15 levels), its inverse square root (polynomial and Newton
//! steps, from a low level) and its composite ReLU, each against the `f64` evaluation of the
//! same approximation.

mod common;

use common::{Fixture, PrecisionStats};
use heformer::approx::{
    Approximation, CompositeRelu, CompositeSign, ExpBySquaring, NewtonApproximation, NewtonTarget,
};
use heformer::circuits::boot::{BootstrapConfig, Bootstrapper};
use heformer::circuits::functions::{evaluate, evaluate_refreshing};
use heformer::circuits::pack::{capacity, unpack_rotations};
use heformer::circuits::refresh::{Bootstrapping, Refresh};
use heformer::error::Error;
use heformer::math::Complex;
use heformer::params::Parameters;
use rand::Rng;

const PRESET: &str = "TEST_INSECURE_BOOT_N11_L9";
const SLOTS: usize = 256;

fn setup(seed: u64) -> (Fixture, Bootstrapper) {
    common::with_sparse_bootstrapper(PRESET, SLOTS, &[], seed)
}

/// `approximation` on `inputs` (|x| <= bound) encrypted at `level`,
/// refreshed as needed; its precision against the plain evaluation and the
/// bootstraps it took.
fn refreshed(
    f: &mut Fixture,
    boot: &Bootstrapper,
    approximation: &Approximation,
    inputs: &[f64],
    (bound, level): (f64, usize),
) -> (PrecisionStats, usize) {
    let values: Vec<Complex> = inputs.iter().map(|&x| Complex::new(x, 0.0)).collect();
    let pt = f
        .encoder
        .encode_complex(&values, level, f.params.default_scale())
        .unwrap();
    let ct = f.encryptor.encrypt(&pt).unwrap();
    let too_short = evaluate(&f.evaluator, &ct, approximation);
    assert!(
        matches!(too_short, Err(Error::OutOfLevels { .. })),
        "the circuit must not fit in {level} levels"
    );
    let mut refresher = Bootstrapping::new(boot);
    let out = evaluate_refreshing(&f.evaluator, &ct, approximation, bound, &mut refresher).unwrap();
    let want: Vec<Complex> = inputs
        .iter()
        .map(|&x| Complex::new(approximation.eval(x), 0.0))
        .collect();
    let got = f.decrypt(&out);
    (
        PrecisionStats::compare(&want, &got[..want.len()]),
        refresher.count(),
    )
}

fn report(what: &str, stats: &PrecisionStats, bootstraps: usize) {
    println!(
        "{what}: {bootstraps} bootstraps, min {:.1} bits, mean {:.1} bits",
        stats.min_bits, stats.mean_bits
    );
}

#[test]
fn exp_by_squaring_past_the_chain() {
    let (mut f, boot) = setup(71);
    let exp = Approximation::ExpBySquaring(ExpBySquaring::new((-8192.0, 0.0), 14).unwrap());
    let inputs: Vec<f64> = (0..SLOTS)
        .map(|i| {
            if i % 4 == 0 {
                f.rng.random_range(-8192.0..0.0)
            } else {
                f.rng.random_range(-16.0..0.0)
            }
        })
        .collect();
    let (stats, bootstraps) =
        refreshed(&mut f, &boot, &exp, &inputs, (8192.0, boot.output_level()));
    report("exp r=14", &stats, bootstraps);
    assert!(bootstraps >= 1);
    assert!(stats.min_bits >= 14.0, "{stats:?}");
}

#[test]
fn inverse_square_root_past_the_chain() {
    let (mut f, boot) = setup(72);
    let interval = (2f64.powi(-8), 256.0);
    let newton =
        NewtonApproximation::fit_to_error(NewtonTarget::InverseSqrt, interval, 2f64.powi(-16), 24)
            .unwrap();
    // From level 4 the input itself is refreshed (bootstrapped with the
    // bound 256: its values above 1 keep their relative precision).
    let inputs: Vec<f64> = (0..SLOTS)
        .map(|_| 2f64.powf(f.rng.random_range(0.0..8.0)))
        .collect();
    let (stats, bootstraps) = refreshed(
        &mut f,
        &boot,
        &Approximation::Newton(newton),
        &inputs,
        (interval.1, 4),
    );
    report("inverse square root", &stats, bootstraps);
    assert!(bootstraps >= 1);
    assert!(stats.min_bits >= 12.0, "{stats:?}");
}

#[test]
fn composite_relu_past_the_chain() {
    let (mut f, boot) = setup(73);
    let sign = CompositeSign::fit_default(2f64.powi(-10), 12).unwrap();
    let relu = Approximation::CompositeRelu(CompositeRelu::from_sign(&sign).unwrap());
    let inputs: Vec<f64> = (0..SLOTS).map(|_| f.rng.random_range(-1.0..1.0)).collect();
    let (stats, bootstraps) = refreshed(&mut f, &boot, &relu, &inputs, (1.0, boot.output_level()));
    report("composite ReLU", &stats, bootstraps);
    assert!(bootstraps >= 1);
    assert!(stats.min_bits >= 14.0, "{stats:?}");
}

/// Twice a packed ciphertext's capacity of sparse blocks also take one
/// bootstrap: the two packed ciphertexts go as its real and imaginary
/// parts.
#[test]
fn sparse_blocks_share_one_packed_bootstrap() {
    const BLOCK: usize = 64;
    let params = Parameters::preset(PRESET).unwrap();
    let config = BootstrapConfig::for_preset(&params).unwrap();
    let unpacking = unpack_rotations(BLOCK, config.slots);
    let (mut f, boot) = common::with_bootstrapper(PRESET, config, &unpacking, 77);
    assert_eq!(capacity(BLOCK, boot.config().slots), 16);
    let blocks = 32;
    // Different bounds and scales, one level.
    let mut values = Vec::new();
    let mut cts = Vec::new();
    for t in 0..blocks {
        let bound = 1.0 + t as f64;
        let v: Vec<Complex> = (0..BLOCK)
            .map(|_| Complex::new(f.rng.random_range(-bound..bound), 0.0))
            .collect();
        let scale = f.params.default_scale() * (1.0 + t as f64 / 64.0);
        let pt = f.encoder.encode_complex(&v, 1, scale).unwrap();
        cts.push((f.encryptor.encrypt(&pt).unwrap(), bound));
        values.push(v);
    }
    let mut refresher = Bootstrapping::new(&boot);
    let mut due: Vec<_> = cts.iter_mut().map(|(ct, bound)| (ct, *bound)).collect();
    refresher.refresh(&f.evaluator, &mut due, 5).unwrap();
    assert_eq!(refresher.count(), 1);
    let worst = cts
        .iter()
        .zip(&values)
        .map(|((ct, bound), v)| {
            assert_eq!((ct.level(), ct.slots()), (boot.output_level(), BLOCK));
            let got = f.decrypt(ct);
            let stats = PrecisionStats::compare(v, &got[..BLOCK]);
            stats.min_bits + bound.log2()
        })
        .fold(f64::INFINITY, f64::min);
    println!("32 blocks of 64 slots in one bootstrap: worst {worst:.1} bits relative to the bound");
    assert!(worst >= 16.0);
}
