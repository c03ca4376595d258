//! Bootstrapping at small insecure parameters: the message comes back at a
//! high level within the precision the parameters allow.

mod common;

use common::{Fixture, PrecisionStats};
use heformer::backend::{create_backend, BackendChoice};
use heformer::circuits::boot::{BootstrapConfig, Bootstrapper};
use heformer::ckks::CkksContext;
use heformer::params::Parameters;

const PRESET: &str = "TEST_INSECURE_BOOT_N11";

fn config(slots: usize) -> BootstrapConfig {
    BootstrapConfig {
        slots,
        cts_levels: 3,
        stc_levels: 3,
        k: 16.0,
        double_angle: 3,
        cosine_degree: 63,
        output_scale: None,
    }
}

/// The fixture with exactly the keys `config` needs, and its bootstrapper.
fn setup(config: BootstrapConfig, seed: u64) -> (Fixture, Bootstrapper) {
    let params = Parameters::preset(PRESET).unwrap();
    let planning =
        CkksContext::new(&params, create_backend(BackendChoice::Cpu, 0).unwrap()).unwrap();
    let rotations = Bootstrapper::new(planning, config.clone())
        .unwrap()
        .rotations();
    let fixture = Fixture::new(PRESET, &rotations, seed);
    let boot = Bootstrapper::new(fixture.ctx.clone(), config).unwrap();
    (fixture, boot)
}

fn bootstrap_and_compare(f: &mut Fixture, boot: &Bootstrapper, bound: f64) -> PrecisionStats {
    let slots = boot.config().slots;
    let values = f.random_values(slots, bound);
    let pt = f
        .encoder
        .encode_complex(&values, 0, f.params.default_scale())
        .unwrap();
    let ct = f.encryptor.encrypt(&pt).unwrap();
    let start = std::time::Instant::now();
    let out = f_boot(f, boot, &ct);
    let elapsed = start.elapsed();
    assert_eq!(out.level(), boot.output_level());
    assert!((out.scale() / f.params.default_scale() - 1.0).abs() < 1e-12);
    let got = f.decrypt(&out);
    let stats = PrecisionStats::compare(&values, &got[..slots]);
    eprintln!(
        "bootstrap {slots} slots, |x| < {bound}: level {} -> {}, precision mean {:.1} bits, min {:.1} bits, {:.2} s",
        0,
        out.level(),
        stats.mean_bits,
        stats.min_bits,
        elapsed.as_secs_f64()
    );
    stats
}

fn f_boot(
    f: &Fixture,
    boot: &Bootstrapper,
    ct: &heformer::ckks::Ciphertext,
) -> heformer::ckks::Ciphertext {
    boot.bootstrap(&f.evaluator, ct).unwrap()
}

#[test]
fn full_slots() {
    let (mut f, boot) = setup(config(1024), 41);
    let stats = bootstrap_and_compare(&mut f, &boot, 1.0);
    assert!(stats.mean_bits >= 16.0 && stats.min_bits >= 12.0);
}
