//! Bootstrapping at small insecure parameters (`TEST_INSECURE_BOOT_N11`):
//! the message comes back at a high level within the precision the
//! parameters allow, for full and sparse slots, two real messages in one
//! complex bootstrap, and inputs wider than [−1, 1].
//!
//! Thresholds: with `q_0/Δ = 2^20` and EvalMod at scales near 2^60 the
//! design target is 20 bits mean; the assertions leave 3 bits of margin on
//! the mean and 5 on the worst slot.

mod common;

use common::{Fixture, PrecisionStats};
use heformer::backend::{create_backend, BackendChoice};
use heformer::circuits::boot::{BootstrapConfig, Bootstrapper};
use heformer::ckks::{Ciphertext, CkksContext};
use heformer::math::Complex;
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
        range_divisor: 1.0,
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

/// `values` encrypted at `level`.
fn encrypt_at(f: &mut Fixture, values: &[Complex], level: usize) -> Ciphertext {
    let pt = f
        .encoder
        .encode_complex(values, level, f.params.default_scale())
        .unwrap();
    f.encryptor.encrypt(&pt).unwrap()
}

/// Checks level and scale of a bootstrapped ciphertext and returns its precision.
fn compare(
    f: &Fixture,
    boot: &Bootstrapper,
    what: &str,
    out: &Ciphertext,
    want: &[Complex],
) -> PrecisionStats {
    assert_eq!(out.level(), boot.output_level());
    assert!((out.scale() / f.params.default_scale() - 1.0).abs() < 1e-12);
    let got = f.decrypt(out);
    let stats = PrecisionStats::compare(want, &got[..want.len()]);
    eprintln!(
        "{what}: level {}, precision mean {:.1} bits, min {:.1} bits",
        out.level(),
        stats.mean_bits,
        stats.min_bits
    );
    stats
}

/// Random values below `bound` encrypted at `level`, bootstrapped.
fn bootstrap_random(
    f: &mut Fixture,
    boot: &Bootstrapper,
    bound: f64,
    level: usize,
) -> PrecisionStats {
    let slots = boot.config().slots;
    let values = f.random_values(slots, bound);
    let ct = encrypt_at(f, &values, level);
    let start = std::time::Instant::now();
    let out = boot.bootstrap(&f.evaluator, &ct).unwrap();
    let what = format!(
        "{slots} slots, |x| < {bound}, {:.2} s",
        start.elapsed().as_secs_f64()
    );
    compare(f, boot, &what, &out, &values)
}

#[test]
fn full_slots() {
    let (mut f, boot) = setup(config(1024), 41);
    let stats = bootstrap_random(&mut f, &boot, 1.0, 0);
    assert!(stats.mean_bits >= 17.0 && stats.min_bits >= 15.0);
}

#[test]
fn sparse_slots() {
    for slots in [64, 4, 2] {
        let (mut f, boot) = setup(config(slots), 43 + slots as u64);
        let stats = bootstrap_random(&mut f, &boot, 1.0, 0);
        assert!(
            stats.mean_bits >= 17.0 && stats.min_bits >= 15.0,
            "{slots} slots"
        );
    }
}

#[test]
fn two_real_messages_in_one_complex_bootstrap() {
    let (mut f, boot) = setup(config(1024), 47);
    let real = |v: Vec<Complex>| -> Vec<Complex> {
        v.into_iter().map(|z| Complex::new(z.re, 0.0)).collect()
    };
    let a = real(f.random_values(1024, 1.0));
    let b = real(f.random_values(1024, 1.0));
    let (ca, cb) = (encrypt_at(&mut f, &a, 0), encrypt_at(&mut f, &b, 0));
    let (oa, ob) = boot.bootstrap_two_real(&f.evaluator, &ca, &cb).unwrap();
    for (what, out, want) in [
        ("two-in-one, first", &oa, &a),
        ("two-in-one, second", &ob, &b),
    ] {
        let stats = compare(&f, &boot, what, out, want);
        assert!(stats.mean_bits >= 17.0 && stats.min_bits >= 15.0, "{what}");
    }
}

#[test]
fn inputs_wider_than_one() {
    let (mut f, boot) = setup(config(1024), 53);
    // Without division: full precision up to 256, 9 bits lost at 4096.
    for (bound, mean, min) in [(256.0, 17.0, 15.0), (4096.0, 8.0, 6.0)] {
        let stats = bootstrap_random(&mut f, &boot, bound, 0);
        assert!(
            stats.mean_bits >= mean && stats.min_bits >= min,
            "|x| < {bound}"
        );
    }
    // Dividing by d (one level) costs log2(d) bits: 2^16 with d = 256.
    let mut wide = config(1024);
    wide.range_divisor = 256.0;
    let boot = Bootstrapper::new(f.ctx.clone(), wide).unwrap();
    let stats = bootstrap_random(&mut f, &boot, 65536.0, 1);
    assert!(stats.mean_bits >= 17.0 - 8.0 && stats.min_bits >= 15.0 - 8.0);
}
