//! Every [`Error`] variant reachable from the public API, provoked through
//! the public API only. Each test asserts the exact variant (with its
//! operation name where it has one) and that the `Display` message names the
//! operation (for the variants without one: the preset, the object kind or
//! the path), and fails if the call succeeds or returns another error.
//!
//! `Backend` is provoked for real, in a child process whose address space
//! is too small for the worker threads it asks for (see
//! [`backend_error_when_worker_threads_cannot_start`]); bad arguments to the
//! backend primitives are `OutOfRange` / `LengthMismatch` / level errors,
//! never `Backend`.
//!
//! Variants not provoked here, and why:
//!
//! * `DeviceMismatch`: unreachable with the CPU backend alone.
//!   [`BackendKind`] has the single variant `Cpu`, every [`Buffer`] any
//!   public constructor can produce (`Backend::alloc`, `upload`, ciphertext
//!   and key parts, deserialized objects) lives on it, and the only place
//!   that returns the variant (`backend::check_buffer`) compares a buffer's
//!   kind with the kind of the backend it is given. It needs a second backend
//!   to provoke; nothing here fakes it.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::Fixture;
use heformer::backend::{create_backend, Backend, BackendChoice, BackendKind, Buffer};
use heformer::ckks::embedding::{galois_element_for_conjugation, galois_element_for_rotation};
use heformer::ckks::serialize;
use heformer::ckks::*;
use heformer::math::{generate_ntt_primes, Complex, Modulus};
use heformer::params::{Parameters, ParametersLiteral, SecretDistribution, SecurityLevel};
use heformer::ring::ntt::NttTable;
use heformer::Error;

const N10: &str = "TEST_INSECURE_N10";
const N11: &str = "TEST_INSECURE_N11";

/// The error of `result`; fails the test if it is `Ok`.
fn expect_err<T>(result: heformer::Result<T>) -> Error {
    match result {
        Ok(_) => panic!("expected an error, got Ok({})", std::any::type_name::<T>()),
        Err(e) => e,
    }
}

/// Asserts that `$result` is an `Err` matching `$pattern` (checked with
/// `matches!`) whose `Display` contains every needle; evaluates to the error.
macro_rules! assert_error {
    ($result:expr, $pattern:pat $(if $guard:expr)?, [$($needle:expr),* $(,)?]) => {{
        let e = expect_err($result);
        assert!(
            matches!(e, $pattern $(if $guard)?),
            "expected {}, got {e:?}",
            stringify!($pattern)
        );
        let msg = e.to_string();
        $(
            assert!(msg.contains($needle), "message {msg:?} does not contain {:?}", $needle);
        )*
        e
    }};
}

/// A ciphertext of `values` at `level` and `scale` under the fixture's keys.
fn encrypt_at(f: &mut Fixture, values: &[Complex], level: usize, scale: f64) -> Ciphertext {
    let pt = f.encoder.encode_complex(values, level, scale).unwrap();
    f.encryptor.encrypt(&pt).unwrap()
}

/// A fresh full-slot ciphertext at the top level and the default scale.
fn fresh(f: &mut Fixture) -> Ciphertext {
    let v = f.random_values(f.slots(), 1.0);
    f.encrypt(&v)
}

/// The N10 preset's literal, to be spoiled by a test.
fn n10_literal() -> ParametersLiteral {
    Parameters::preset(N10).unwrap().literal().clone()
}

/// An evaluator over `f`'s context with the given keys, generated from `f.sk`.
fn evaluator_with(
    f: &Fixture,
    rotations: &[i64],
    conjugation: bool,
    relinearization: bool,
) -> Evaluator {
    let mut keygen = KeyGenerator::new(f.ctx.clone(), Prng::from_seed(77));
    let galois = keygen
        .gen_galois_keys(&f.sk, rotations, conjugation)
        .unwrap();
    let relinearization = relinearization.then(|| keygen.gen_relinearization_key(&f.sk).unwrap());
    Evaluator::new(
        f.ctx.clone(),
        EvaluationKeys {
            relinearization,
            galois,
        },
    )
    .unwrap()
}

// ------------------------------------------------------------ parameters --

#[test]
fn invalid_parameters_repeated_prime() {
    let mut lit = n10_literal();
    lit.p[0] = lit.q[1];
    assert_error!(
        lit.validate(),
        Error::InvalidParameters(_),
        ["invalid parameters", "twice", "q[1]", "p[0]"]
    );
    let mut lit = n10_literal();
    lit.q[3] = lit.q[2];
    assert_error!(
        Parameters::new(lit),
        Error::InvalidParameters(_),
        ["invalid parameters", "twice"]
    );
}

#[test]
fn invalid_parameters_non_ntt_friendly_prime() {
    let mut lit = n10_literal();
    lit.q[2] = 1_000_000_007; // prime, but not 1 mod 2N = 2048
    assert_error!(
        lit.validate(),
        Error::InvalidParameters(_),
        ["invalid parameters", "q[2] = 1000000007", "NTT-friendly"]
    );
    // Composite and ≡ 1 mod 2048: 2049 · 2049 = 4198401 ≡ 1 mod 2048.
    let mut lit = n10_literal();
    lit.p[1] = 2049 * 2049;
    assert_error!(
        lit.validate(),
        Error::InvalidParameters(_),
        ["invalid parameters", "p[1] = 4198401", "NTT-friendly"]
    );
}

#[test]
fn invalid_parameters_dnum() {
    let mut lit = n10_literal();
    lit.dnum = 0;
    assert_error!(
        lit.validate(),
        Error::InvalidParameters(_),
        ["invalid parameters", "dnum = 0"]
    );
    lit.dnum = lit.q.len() + 1;
    assert_error!(
        lit.validate(),
        Error::InvalidParameters(_),
        ["invalid parameters", "dnum = 5"]
    );
}

#[test]
fn invalid_parameters_from_the_math_and_ring_layers() {
    assert_error!(
        ParametersLiteral::with_bit_sizes(
            "x",
            3,
            &[45],
            &[55],
            1,
            SecretDistribution::Ternary,
            40,
            SecurityLevel::Insecure
        ),
        Error::InvalidParameters(_),
        ["invalid parameters", "log_n = 3"]
    );
    assert_error!(
        generate_ntt_primes(62, 10, 1, &[]),
        Error::InvalidParameters(_),
        ["invalid parameters", "62-bit"]
    );
    assert_error!(
        Modulus::new(4),
        Error::InvalidParameters(_),
        ["invalid parameters", "modulus 4"]
    );
    // 97 is prime but 97 ≢ 1 mod 2·2^6.
    assert_error!(
        NttTable::new(Modulus::new(97).unwrap(), 6),
        Error::InvalidParameters(_),
        ["invalid parameters", "97", "NTT-friendly"]
    );
}

#[test]
fn insecure_claim_over_the_bound() {
    // log QP ≈ 205 bits at N = 2^12, where 128-bit security allows 109.
    let lit = ParametersLiteral::with_bit_sizes(
        "over",
        12,
        &[50, 50, 50],
        &[55],
        3,
        SecretDistribution::Ternary,
        40,
        SecurityLevel::Bits128,
    )
    .unwrap();
    let e = assert_error!(
        lit.validate(),
        Error::Insecure {
            log_n: 12,
            bound: 109,
            claimed_bits: 128,
            ..
        },
        ["insecure parameters", "2^12", "128-bit", "ternary"]
    );
    if let Error::Insecure { log_qp, .. } = e {
        assert!(log_qp > 109.0, "{log_qp}");
    }
    // The same chain without a claim is accepted.
    let mut unclaimed = lit.clone();
    unclaimed.security = SecurityLevel::Insecure;
    assert!(unclaimed.validate().is_ok());
}

#[test]
fn unknown_preset() {
    let e = assert_error!(
        Parameters::preset("NO_SUCH_PRESET"),
        Error::UnknownPreset(_),
        ["unknown parameter preset", "NO_SUCH_PRESET"]
    );
    assert!(matches!(e, Error::UnknownPreset(ref name) if name == "NO_SUCH_PRESET"));
}

// ---------------------------------------------------- parameter mismatch --

#[test]
fn parameter_mismatch_across_contexts() {
    let mut f10 = Fixture::new(N10, &[], 1);
    let mut f11 = Fixture::new(N11, &[], 2);
    let (id10, id11) = (f10.params.id(), f11.params.id());
    assert_ne!(id10, id11);
    let ct10 = fresh(&mut f10);
    let ct11 = fresh(&mut f11);

    // An N10 ciphertext given to the N11 evaluator, in either position.
    let e = assert_error!(
        f11.evaluator.add_new(&ct11, &ct10),
        Error::ParameterMismatch { op: "add", .. },
        ["add", "different parameter sets"]
    );
    assert!(
        matches!(e, Error::ParameterMismatch { left, right, .. } if left == id11 && right == id10)
    );
    assert_error!(
        f11.evaluator.add_new(&ct10, &ct11),
        Error::ParameterMismatch { op: "add", .. },
        ["add"]
    );
    assert_error!(
        f11.evaluator.rescale_new(&ct10),
        Error::ParameterMismatch { op: "rescale", .. },
        ["rescale"]
    );

    // Decrypting with the wrong context.
    assert_error!(
        f11.decryptor.decrypt(&ct10),
        Error::ParameterMismatch { op: "decrypt", .. },
        ["decrypt", "different parameter sets"]
    );
    // Encrypting / decoding a plaintext of the other set.
    let pt10 = f10
        .encoder
        .encode_real(&[1.0], 0, f10.params.default_scale())
        .unwrap();
    assert_error!(
        f11.encryptor.encrypt(&pt10),
        Error::ParameterMismatch { op: "encrypt", .. },
        ["encrypt"]
    );
    assert_error!(
        f11.encoder.decode(&pt10),
        Error::ParameterMismatch { op: "decode", .. },
        ["decode"]
    );
    let mut ct11_copy = ct11.clone();
    assert_error!(
        f11.evaluator.add_plain_assign(&mut ct11_copy, &pt10),
        Error::ParameterMismatch {
            op: "add_plain",
            ..
        },
        ["add_plain"]
    );
}

#[test]
fn parameter_mismatch_keys_of_another_set() {
    let f10 = Fixture::new(N10, &[1], 3);
    let f11 = Fixture::new(N11, &[1], 4);
    let keys11 = f11.evaluator.keys().clone();

    // Relinearization key of another set.
    assert_error!(
        Evaluator::new(
            f10.ctx.clone(),
            EvaluationKeys {
                relinearization: keys11.relinearization.clone(),
                galois: GaloisKeys::default(),
            },
        ),
        Error::ParameterMismatch {
            op: "Evaluator::new",
            ..
        },
        ["Evaluator::new", "different parameter sets"]
    );
    // Galois keys of another set.
    assert_error!(
        Evaluator::new(
            f10.ctx.clone(),
            EvaluationKeys {
                relinearization: None,
                galois: keys11.galois.clone(),
            },
        ),
        Error::ParameterMismatch {
            op: "Evaluator::new",
            ..
        },
        ["Evaluator::new"]
    );
    // Public and secret keys of another set.
    assert_error!(
        Encryptor::new(
            f10.ctx.clone(),
            EncryptionKey::Public(f11.pk.clone()),
            Prng::from_seed(5)
        ),
        Error::ParameterMismatch {
            op: "Encryptor::new",
            ..
        },
        ["Encryptor::new", "different parameter sets"]
    );
    assert_error!(
        Encryptor::new(
            f10.ctx.clone(),
            EncryptionKey::Secret(f11.sk.clone()),
            Prng::from_seed(5)
        ),
        Error::ParameterMismatch {
            op: "Encryptor::new",
            ..
        },
        ["Encryptor::new"]
    );
    assert_error!(
        Decryptor::new(f10.ctx.clone(), f11.sk.clone()),
        Error::ParameterMismatch {
            op: "Decryptor::new",
            ..
        },
        ["Decryptor::new"]
    );
    let mut keygen = KeyGenerator::new(f10.ctx.clone(), Prng::from_seed(6));
    assert_error!(
        keygen.gen_public_key(&f11.sk),
        Error::ParameterMismatch {
            op: "gen_public_key",
            ..
        },
        ["gen_public_key"]
    );
    assert_error!(
        keygen.gen_relinearization_key(&f11.sk),
        Error::ParameterMismatch {
            op: "gen_relinearization_key",
            ..
        },
        ["gen_relinearization_key"]
    );
}

#[test]
fn parameter_mismatch_same_ring_degree_other_set() {
    // Same N and primes, another sigma: another parameter set. The check is
    // by id, not by shape.
    let mut f = Fixture::new(N10, &[], 5);
    let mut lit = n10_literal();
    lit.sigma = 3.19;
    let other = lit.validate().unwrap();
    assert_ne!(other.id(), f.params.id());
    let ctx = CkksContext::new(&other, create_backend(BackendChoice::Cpu, 1).unwrap()).unwrap();
    let pt = f
        .encoder
        .encode_real(&[0.5; 8], 1, f.params.default_scale())
        .unwrap();
    assert_error!(
        Encoder::new(ctx.clone()).decode(&pt),
        Error::ParameterMismatch { op: "decode", .. },
        ["decode", "different parameter sets"]
    );
    let ct = fresh(&mut f);
    let bytes = serialize::ciphertext_to_bytes(&f.ctx, &ct).unwrap();
    assert_error!(
        serialize::ciphertext_from_bytes(&ctx, &bytes),
        Error::ParameterMismatch { .. },
        ["different parameter sets"]
    );
}

// ------------------------------------------------------- level mismatch --

#[test]
fn level_mismatch_encode_above_max() {
    let f = Fixture::new(N10, &[], 6);
    let max = f.params.max_level();
    assert_error!(
        f.encoder
            .encode_real(&[1.0], max + 1, f.params.default_scale()),
        Error::LevelMismatch { op: "encode", .. },
        ["encode", "level mismatch", "above the maximum"]
    );
    assert_error!(
        f.encoder
            .encode_real(&[1.0], usize::MAX, f.params.default_scale()),
        Error::LevelMismatch { op: "encode", .. },
        ["encode"]
    );
    assert!(f
        .encoder
        .encode_real(&[1.0], max, f.params.default_scale())
        .is_ok());
}

#[test]
fn level_mismatch_plaintext_below_ciphertext() {
    let mut f = Fixture::new(N10, &[], 7);
    let v = f.random_values(f.slots(), 1.0);
    let scale = f.params.default_scale();
    let max = f.params.max_level();
    let mut ct = encrypt_at(&mut f, &v, max, scale);
    let pt_low = f.encoder.encode_complex(&v, 1, scale).unwrap();
    assert_error!(
        f.evaluator.add_plain_assign(&mut ct, &pt_low),
        Error::LevelMismatch {
            op: "add_plain",
            ..
        },
        ["add_plain", "level mismatch", "below ciphertext level"]
    );
    assert_error!(
        f.evaluator.sub_plain_assign(&mut ct, &pt_low),
        Error::LevelMismatch {
            op: "sub_plain",
            ..
        },
        ["sub_plain"]
    );
    assert_error!(
        f.evaluator.mul_plain_assign(&mut ct, &pt_low),
        Error::LevelMismatch {
            op: "mul_plain",
            ..
        },
        ["mul_plain"]
    );
    // A plaintext above the ciphertext's level is fine.
    let mut low = encrypt_at(&mut f, &v, 1, scale);
    let pt_high = f
        .encoder
        .encode_complex(&v, f.params.max_level(), scale)
        .unwrap();
    f.evaluator.add_plain_assign(&mut low, &pt_high).unwrap();
}

// ------------------------------------------------------- scale mismatch --

#[test]
fn scale_mismatch_non_integer_ratio() {
    let mut f = Fixture::new(N10, &[], 8);
    let a = fresh(&mut f);
    // Scale 2^45 · 1.5: the ratio 1.5 is no integer.
    let mut b = fresh(&mut f);
    f.evaluator
        .mul_const_with_scale_assign(&mut b, Complex::new(1.0, 0.0), 1.5)
        .unwrap();
    assert_error!(
        f.evaluator.add_new(&a, &b),
        Error::ScaleMismatch { op: "add", .. },
        ["add", "scale mismatch"]
    );
    assert_error!(
        f.evaluator.sub_new(&b, &a),
        Error::ScaleMismatch { op: "sub", .. },
        ["sub", "scale mismatch"]
    );
    // Scale 2^45 · (2^20 + 0.5): far from any integer multiple.
    let mut c = fresh(&mut f);
    f.evaluator
        .mul_const_with_scale_assign(&mut c, Complex::new(1.0, 0.0), (1u64 << 20) as f64 + 0.5)
        .unwrap();
    assert_error!(
        f.evaluator.add_new(&c, &a),
        Error::ScaleMismatch { op: "add", .. },
        ["add", "scale mismatch"]
    );
    // Whereas an integer ratio (1.5 · 2^20 = 1572864) is aligned exactly.
    let mut d = fresh(&mut f);
    f.evaluator
        .mul_const_with_scale_assign(&mut d, Complex::new(1.0, 0.0), 1.5 * (1u64 << 20) as f64)
        .unwrap();
    assert!(f.evaluator.add_new(&d, &a).is_ok());
}

#[test]
fn scale_mismatch_rescaled_product_vs_fresh() {
    let mut f = Fixture::new(N10, &[], 9);
    let a = fresh(&mut f);
    let b = fresh(&mut f);
    let mut product = f.evaluator.mul_relin_new(&a, &b).unwrap();
    f.evaluator.rescale_assign(&mut product).unwrap();
    // Scale 2^90 / q_top against 2^45: their ratio 2^45 / q_top is no integer.
    let ratio = product.scale() / a.scale();
    let q_top = f.params.q()[f.params.max_level()] as f64;
    assert!((ratio - 2f64.powi(45) / q_top).abs() < 1e-15);
    let excess = (ratio - 1.0).abs();
    println!("rescaled product / fresh scale ratio - 1 = {excess:e}");
    // Within 1e-9 of 1 the evaluator would treat the ratio as the integer 1
    // and merge the scales (see the evaluator's module documentation).
    assert!(
        excess > 1e-9,
        "the scales agree too closely for a mismatch: {excess:e}"
    );
    assert_error!(
        f.evaluator.add_new(&product, &a),
        Error::ScaleMismatch { op: "add", .. },
        ["add", "scale mismatch"]
    );
}

#[test]
fn scale_mismatch_plaintext_of_another_scale() {
    let mut f = Fixture::new(N10, &[], 10);
    let v = f.random_values(f.slots(), 1.0);
    let mut ct = fresh(&mut f);
    let pt = f
        .encoder
        .encode_complex(&v, f.params.max_level(), 2f64.powi(40))
        .unwrap();
    assert_error!(
        f.evaluator.add_plain_assign(&mut ct, &pt),
        Error::ScaleMismatch {
            op: "add_plain",
            ..
        },
        ["add_plain", "scale mismatch", "2^40.0000", "2^45.0000"]
    );
    assert_error!(
        f.evaluator.sub_plain_assign(&mut ct, &pt),
        Error::ScaleMismatch {
            op: "sub_plain",
            ..
        },
        ["sub_plain", "scale mismatch"]
    );
}

// --------------------------------------------------------- out of levels --

#[test]
fn out_of_levels_rescale_at_level_zero() {
    let mut f = Fixture::new(N10, &[], 11);
    let v = f.random_values(4, 1.0);
    let scale = f.params.default_scale();
    let mut ct = encrypt_at(&mut f, &v, 0, scale);
    assert_error!(
        f.evaluator.rescale_assign(&mut ct),
        Error::OutOfLevels {
            op: "rescale",
            level: 0,
            needed: 1
        },
        ["rescale", "out of levels"]
    );
    // The ciphertext is left untouched.
    assert_eq!(ct.level(), 0);
    assert_eq!(ct.scale(), f.params.default_scale());
    // Rescaling down to level 0 step by step, then once more.
    let mut ct = fresh(&mut f);
    for _ in 0..f.params.max_level() {
        f.evaluator.rescale_assign(&mut ct).unwrap();
    }
    assert_error!(
        f.evaluator.rescale_new(&ct),
        Error::OutOfLevels { op: "rescale", .. },
        ["rescale"]
    );
}

#[test]
fn out_of_levels_drop_more_than_the_level() {
    let mut f = Fixture::new(N10, &[], 12);
    let mut ct = fresh(&mut f);
    let level = ct.level();
    assert_error!(
        f.evaluator.drop_level_assign(&mut ct, level + 1),
        Error::OutOfLevels {
            op: "drop_level",
            needed,
            ..
        } if needed == level + 1,
        ["drop_level", "out of levels"]
    );
    assert_error!(
        f.evaluator.drop_level_assign(&mut ct, usize::MAX),
        Error::OutOfLevels {
            op: "drop_level",
            ..
        },
        ["drop_level"]
    );
    assert_eq!(ct.level(), level);
    f.evaluator.drop_level_assign(&mut ct, level).unwrap();
    assert_eq!(ct.level(), 0);
}

// --------------------------------------------------------- missing keys --

#[test]
fn missing_galois_key_rotation() {
    let mut f = Fixture::new(N10, &[1, 2], 13);
    let ct = fresh(&mut f);
    let g3 = galois_element_for_rotation(10, 3);
    let e = assert_error!(
        f.evaluator.rotate_new(&ct, 3),
        Error::MissingGaloisKey { op: "rotate", .. },
        ["rotate", "missing Galois key", "rotation by 3"]
    );
    assert!(matches!(e, Error::MissingGaloisKey { galois_element, .. } if galois_element == g3));
    // One missing step among present ones fails the hoisted batch.
    assert_error!(
        f.evaluator.rotate_hoisted_new(&ct, &[1, 2, -1]),
        Error::MissingGaloisKey { op: "rotate", .. },
        ["rotate", "rotation by -1"]
    );
    // rotate_and_sum over 8 slots needs steps 1, 2 and 4.
    assert_error!(
        f.evaluator.rotate_and_sum_new(&ct, 1, 8),
        Error::MissingGaloisKey { op: "rotate", .. },
        ["rotate", "rotation by 4"]
    );
    // With the keys present they succeed.
    assert!(f.evaluator.rotate_new(&ct, 2).is_ok());
    assert!(f.evaluator.rotate_and_sum_new(&ct, 1, 4).is_ok());
}

#[test]
fn missing_galois_key_conjugation() {
    let mut f = Fixture::new(N10, &[], 14);
    let ct = fresh(&mut f);
    let no_conjugation = evaluator_with(&f, &[1], false, true);
    let g = galois_element_for_conjugation(10);
    assert_eq!(g, 2047);
    let e = assert_error!(
        no_conjugation.conjugate_new(&ct),
        Error::MissingGaloisKey {
            op: "conjugate",
            ..
        },
        ["conjugate", "missing Galois key", "conjugation", "2047"]
    );
    assert!(matches!(
        e,
        Error::MissingGaloisKey {
            galois_element: 2047,
            ..
        }
    ));
    // The fixture's evaluator has it.
    assert!(f.evaluator.conjugate_new(&ct).is_ok());
}

#[test]
fn missing_relinearization_key() {
    let mut f = Fixture::new(N10, &[], 15);
    let a = fresh(&mut f);
    let b = fresh(&mut f);
    let no_keys = Evaluator::new(f.ctx.clone(), EvaluationKeys::default()).unwrap();
    let mut tensor = no_keys.tensor_new(&a, &b).unwrap();
    assert_eq!(tensor.degree(), 2);
    assert_error!(
        no_keys.relinearize_assign(&mut tensor),
        Error::MissingRelinearizationKey { op: "relinearize" },
        ["relinearize", "missing relinearization key"]
    );
    assert_eq!(tensor.degree(), 2);
    assert_error!(
        no_keys.mul_relin_new(&a, &b),
        Error::MissingRelinearizationKey { op: "relinearize" },
        ["relinearize"]
    );
    // A degree-1 ciphertext needs no key.
    let mut a1 = a.clone();
    no_keys.relinearize_assign(&mut a1).unwrap();
}

// ------------------------------------------------------- degree mismatch --

#[test]
fn degree_mismatch_degree_two_inputs() {
    let mut f = Fixture::new(N10, &[1], 16);
    let a = fresh(&mut f);
    let b = fresh(&mut f);
    let tensor = f.evaluator.tensor_new(&a, &b).unwrap();
    assert_error!(
        f.evaluator.rotate_new(&tensor, 1),
        Error::DegreeMismatch {
            op: "rotate",
            degree: 2,
            expected: 1
        },
        ["rotate", "degree 2", "expected 1"]
    );
    assert_error!(
        f.evaluator.conjugate_new(&tensor),
        Error::DegreeMismatch {
            op: "conjugate",
            degree: 2,
            expected: 1
        },
        ["conjugate"]
    );
    assert_error!(
        f.evaluator.tensor_new(&tensor, &a),
        Error::DegreeMismatch {
            op: "tensor",
            degree: 2,
            expected: 1
        },
        ["tensor", "degree 2"]
    );
    assert_error!(
        f.evaluator.tensor_new(&a, &tensor),
        Error::DegreeMismatch { op: "tensor", .. },
        ["tensor"]
    );
    // A sum of tensors stays degree 2 and is accepted by add, then relinearized.
    let mut sum = tensor.clone();
    f.evaluator.add_assign(&mut sum, &tensor).unwrap();
    f.evaluator.relinearize_assign(&mut sum).unwrap();
    assert_eq!(sum.degree(), 1);
}

// ------------------------------------------------------- length mismatch --

#[test]
fn length_mismatch_too_many_values() {
    let f = Fixture::new(N10, &[], 17);
    let slots = f.slots();
    assert_eq!(slots, 512);
    let too_many = vec![0.25; slots + 1];
    assert_error!(
        f.encoder
            .encode_real(&too_many, 0, f.params.default_scale()),
        Error::LengthMismatch {
            op: "encode",
            got: 513,
            expected: 512
        },
        ["encode", "length mismatch", "got 513", "expected 512"]
    );
    assert!(f
        .encoder
        .encode_real(&too_many[..slots], 0, f.params.default_scale())
        .is_ok());
}

#[test]
fn length_mismatch_different_slot_counts() {
    let mut f = Fixture::new(N10, &[], 18);
    let scale = f.params.default_scale();
    let level = f.params.max_level();
    let v4 = f.random_values(4, 1.0);
    let v8 = f.random_values(8, 1.0);
    let ct4 = encrypt_at(&mut f, &v4, level, scale);
    let ct8 = encrypt_at(&mut f, &v8, level, scale);
    assert_eq!((ct4.slots(), ct8.slots()), (4, 8));
    assert_error!(
        f.evaluator.add_new(&ct4, &ct8),
        Error::LengthMismatch {
            op: "add",
            got: 8,
            expected: 4
        },
        ["add", "length mismatch"]
    );
    assert_error!(
        f.evaluator.tensor_new(&ct8, &ct4),
        Error::LengthMismatch { op: "tensor", .. },
        ["tensor"]
    );
    let pt8 = f.encoder.encode_complex(&v8, level, scale).unwrap();
    let mut ct = ct4.clone();
    assert_error!(
        f.evaluator.add_plain_assign(&mut ct, &pt8),
        Error::LengthMismatch {
            op: "add_plain",
            ..
        },
        ["add_plain"]
    );
}

#[test]
fn length_mismatch_secret_key_coefficients() {
    let f = Fixture::new(N10, &[], 19);
    let keygen = KeyGenerator::new(f.ctx.clone(), Prng::from_seed(1));
    for len in [0, 1023, 1025, 2048] {
        assert_error!(
            keygen.secret_key_from_coefficients(vec![0; len]),
            Error::LengthMismatch {
                op: "secret_key_from_coefficients",
                expected: 1024,
                got,
            } if got == len,
            ["secret_key_from_coefficients", "expected 1024"]
        );
    }
    assert!(keygen.secret_key_from_coefficients(vec![1; 1024]).is_ok());
}

// ---------------------------------------------------------- out of range --

#[test]
fn out_of_range_encode_scale() {
    let f = Fixture::new(N10, &[], 20);
    for scale in [f64::NAN, 0.5, 0.0, -1.0, f64::INFINITY] {
        assert_error!(
            f.encoder.encode_real(&[1.0], 0, scale),
            Error::OutOfRange { op: "encode", .. },
            ["encode", "scale"]
        );
    }
}

#[test]
fn out_of_range_encode_values_beyond_q_half() {
    let f = Fixture::new(N10, &[], 21);
    let scale = f.params.default_scale();
    let max = f.params.max_level();
    // log2 Q ≈ 190 at the top level: 1e50 · 2^45 ≈ 2^211.
    assert_error!(
        f.encoder.encode_real(&[1e50; 4], max, scale),
        Error::OutOfRange { op: "encode", .. },
        ["encode", "Q/2"]
    );
    // At level 0, Q = q_0 of 55 bits: 2^12 · 2^45 = 2^57 > Q/2.
    assert_error!(
        f.encoder.encode_real(&[4096.0], 0, scale),
        Error::OutOfRange { op: "encode", .. },
        ["encode", "Q/2", "level 0"]
    );
    for bad in [f64::INFINITY, f64::NAN] {
        assert_error!(
            f.encoder.encode_real(&[1.0, bad], 0, scale),
            Error::OutOfRange { op: "encode", .. },
            ["encode"]
        );
    }
    assert!(f.encoder.encode_real(&[1.0], 0, scale).is_ok());
}

#[test]
fn out_of_range_rotate_and_sum_count() {
    let mut f = Fixture::new(N10, &[1, 2], 22);
    let ct = fresh(&mut f);
    for count in [3usize, 0, 6] {
        assert_error!(
            f.evaluator.rotate_and_sum_new(&ct, 1, count),
            Error::OutOfRange {
                op: "rotate_and_sum",
                ..
            },
            ["rotate_and_sum", "power of two"]
        );
    }
}

#[test]
fn out_of_range_constant_scale() {
    let mut f = Fixture::new(N10, &[], 23);
    let mut ct = fresh(&mut f);
    let scale = ct.scale();
    for const_scale in [0.0, 0.5, f64::NAN, f64::INFINITY, -4.0] {
        assert_error!(
            f.evaluator
                .mul_const_with_scale_assign(&mut ct, Complex::new(2.0, 0.0), const_scale),
            Error::OutOfRange {
                op: "mul_const",
                ..
            },
            ["mul_const", "constant scale"]
        );
    }
    assert_eq!(ct.scale(), scale);
}

#[test]
fn out_of_range_non_finite_constants() {
    let mut f = Fixture::new(N10, &[], 24);
    let mut ct = fresh(&mut f);
    for c in [
        Complex::new(f64::NAN, 0.0),
        Complex::new(1.0, f64::INFINITY),
    ] {
        assert_error!(
            f.evaluator.add_const_assign(&mut ct, c),
            Error::OutOfRange {
                op: "add_const",
                ..
            },
            ["add_const", "not finite"]
        );
    }
    // A complex constant goes through the same path as add_const.
    assert_error!(
        f.evaluator.mul_const_with_scale_assign(
            &mut ct,
            Complex::new(1.0, f64::NAN),
            2f64.powi(20)
        ),
        Error::OutOfRange {
            op: "mul_const",
            ..
        },
        ["mul_const", "not finite"]
    );
}

// Regression (found by this file, fixed in 3f802cc): a real non-finite
// constant in `mul_const_with_scale_assign` (the `c.im == 0.0` branch)
// propagated the error of `Modulus::reduce_f64_integer`, hard-coded as
// `OutOfRange { op: "encode", .. }`, so the message blamed "encode".
#[test]
fn out_of_range_real_non_finite_constant_names_mul_const() {
    let mut f = Fixture::new(N10, &[], 25);
    let mut ct = fresh(&mut f);
    for c in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_error!(
            f.evaluator
                .mul_const_with_scale_assign(&mut ct, Complex::new(c, 0.0), 2f64.powi(20)),
            Error::OutOfRange {
                op: "mul_const",
                ..
            },
            ["mul_const"]
        );
    }
}

// Regression (found by this file, fixed in 3f802cc): the evaluator checked
// that `const_scale` is finite but not that `ct.scale * const_scale` is, so
// with ct.scale = 2^45 and const_scale = 1e300 it returned Ok with a
// ciphertext of scale +inf (decoding to zeros without error, refused by
// `serialize::ciphertext_to_bytes`). Same for `mul_plain_assign`.
#[test]
fn out_of_range_scale_overflow_in_mul_const() {
    let mut f = Fixture::new(N10, &[], 26);
    let mut ct = fresh(&mut f);
    let result = f
        .evaluator
        .mul_const_with_scale_assign(&mut ct, Complex::new(1.0, 0.0), 1e300);
    if result.is_ok() {
        println!(
            "mul_const accepted: scale {} (serializer says {:?})",
            ct.scale(),
            serialize::ciphertext_to_bytes(&f.ctx, &ct).err()
        );
    }
    assert_error!(
        result,
        Error::OutOfRange {
            op: "mul_const",
            ..
        },
        ["mul_const", "scale"]
    );
    assert_eq!(ct.scale(), f.params.default_scale());
    // A plaintext of zeros may carry a huge scale (nothing to overflow Q),
    // but its product with a ciphertext's scale may not be infinite.
    let zeros = f
        .encoder
        .encode_real(&vec![0.0; f.slots()], f.params.max_level(), 1e300)
        .unwrap();
    assert_error!(
        f.evaluator.mul_plain_assign(&mut ct, &zeros),
        Error::OutOfRange {
            op: "mul_plain",
            ..
        },
        ["mul_plain", "scale"]
    );
    assert_eq!(ct.scale(), f.params.default_scale());
}

#[test]
fn out_of_range_bad_galois_element() {
    let f = Fixture::new(N10, &[], 27);
    let mut keygen = KeyGenerator::new(f.ctx.clone(), Prng::from_seed(3));
    for g in [2u64, 2048, 4097, 0] {
        assert_error!(
            keygen.gen_galois_key(&f.sk, g),
            Error::OutOfRange {
                op: "gen_galois_key",
                ..
            },
            ["gen_galois_key", "Galois element"]
        );
    }
}

// ------------------------------------------------ backend primitives --

struct Ring {
    ctx: Arc<CkksContext>,
    be: Arc<dyn Backend>,
}

fn ring(preset: &str) -> Ring {
    let params = Parameters::preset(preset).unwrap();
    let be = create_backend(BackendChoice::Cpu, 2).unwrap();
    Ring {
        ctx: CkksContext::new(&params, be.clone()).unwrap(),
        be,
    }
}

#[test]
fn backend_primitives_report_bad_arguments() {
    let Ring { ctx, be } = ring(N10);
    let r = ctx.ring();
    let n = r.n();
    let moduli = r.moduli().len();
    let mut a: Buffer = be.alloc_zeroed(n * 2).unwrap();
    let b: Buffer = be.alloc_zeroed(n * 2).unwrap();
    assert_eq!(a.kind(), BackendKind::Cpu);

    // A basis index past the ring's moduli is OutOfRange (not Backend).
    let bad = [0, moduli];
    assert_error!(
        be.ntt_forward(r, &mut a, &bad),
        Error::OutOfRange {
            op: "ntt_forward",
            ..
        },
        ["ntt_forward", "modulus index"]
    );
    assert_error!(
        be.ntt_inverse(r, &mut a, &bad),
        Error::OutOfRange {
            op: "ntt_inverse",
            ..
        },
        ["ntt_inverse"]
    );
    assert_error!(
        be.add_assign(r, &mut a, &b, &bad),
        Error::OutOfRange { op: "add", .. },
        ["add", "modulus index"]
    );
    assert_error!(
        be.mul_assign(r, &mut a, &b, &[usize::MAX]),
        Error::OutOfRange { op: "mul", .. },
        ["mul"]
    );
    // A buffer shorter than the basis needs is LengthMismatch.
    assert_error!(
        be.add_assign(r, &mut a, &b, &[0, 1, 2]),
        Error::LengthMismatch {
            op: "add",
            got,
            expected,
        } if got == 2 * n && expected == 3 * n,
        ["add", "length mismatch"]
    );
    assert_error!(
        be.download(&a, 2 * n + 1),
        Error::LengthMismatch { op: "download", .. },
        ["download"]
    );
    // Scalars: one per limb, each reduced.
    assert_error!(
        be.mul_scalar_assign(r, &mut a, &[1], &[0, 1]),
        Error::LengthMismatch {
            op: "mul_scalar",
            got: 1,
            expected: 2
        },
        ["mul_scalar"]
    );
    let q0 = r.moduli()[0].value();
    assert_error!(
        be.add_scalar_assign(r, &mut a, &[q0, 0], &[0, 1]),
        Error::OutOfRange {
            op: "add_scalar",
            ..
        },
        ["add_scalar", "not reduced"]
    );
    // Galois elements must be odd and below 2N.
    let mut out = be.alloc(n * 2).unwrap();
    assert_error!(
        be.automorphism(r, &b, 4, &mut out, &[0, 1]),
        Error::OutOfRange {
            op: "automorphism",
            ..
        },
        ["automorphism"]
    );
    // Levels.
    let top = r.num_q() - 1;
    let poly = be.alloc_zeroed(n * r.num_q()).unwrap();
    let mut low = be.alloc(n * r.num_q()).unwrap();
    for level in [0, top + 1] {
        assert_error!(
            be.rescale(r, &poly, level, &mut low),
            Error::OutOfLevels { op: "rescale", .. },
            ["rescale"]
        );
    }
    let ext = be.alloc_zeroed(n * r.moduli().len()).unwrap();
    assert_error!(
        be.mod_down(
            r,
            std::slice::from_ref(&ext),
            top + 1,
            std::slice::from_mut(&mut low)
        ),
        Error::LevelMismatch { op: "mod_down", .. },
        ["mod_down"]
    );
    let mut ext_outs: Vec<_> = (0..99)
        .map(|_| be.alloc(n * r.moduli().len()).unwrap())
        .collect();
    assert_error!(
        be.mod_up(r, &poly, &poly, top, &mut ext_outs),
        Error::LengthMismatch { op: "mod_up", .. },
        ["mod_up", "99"]
    );
}

/// Set by [`backend_error_when_worker_threads_cannot_start`] for its child.
const BACKEND_CHILD_ENV: &str = "HEFORMER_ERRORS_BACKEND_CHILD";
/// Threads the child asks for.
const CHILD_THREADS: usize = 2048;
/// Each worker's stack in the child (`RUST_MIN_STACK`): beyond its
/// address-space limit, so the very first spawn fails.
const CHILD_STACK: &str = "2147483648";

/// `Error::Backend` is returned only when the CPU backend's worker pool
/// cannot start (`CpuBackend::new`, via `create_backend`) or when the OS
/// entropy source fails (`Prng::from_os`). The first is provoked for real: a
/// child process (this test binary, running the ignored test below) gets a
/// 1 GiB address-space limit and 2 GiB thread stacks, and asks for 2048
/// workers, so the first spawn fails and rayon's build error must come back
/// as `Error::Backend`. (With small stacks the workers that did start
/// filled the limit first, and any allocation racing them aborted the
/// child: a test that failed under load.)
#[cfg(target_os = "linux")]
#[test]
fn backend_error_when_worker_threads_cannot_start() {
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "ulimit -v 1048576 && exec \"{}\" --exact backend_error_child --ignored --nocapture --test-threads=1",
        exe.display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env(BACKEND_CHILD_ENV, "1")
        .env("RUST_MIN_STACK", CHILD_STACK)
        .output()
        .expect("running sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("CHILD-OK backend cpu:") && stdout.contains("1 passed"),
        "child did not run the check:\n{stdout}\n{stderr}"
    );
}

/// The child half of the test above; a no-op unless its environment
/// variable is set (it is ignored so that it never runs on its own).
#[test]
#[ignore = "run by backend_error_when_worker_threads_cannot_start under an address-space limit"]
fn backend_error_child() {
    if std::env::var_os(BACKEND_CHILD_ENV).is_none() {
        return;
    }
    let e = assert_error!(
        create_backend(BackendChoice::Cpu, CHILD_THREADS),
        Error::Backend { .. },
        ["backend cpu", "cannot start 2048 worker threads"]
    );
    assert!(matches!(e, Error::Backend { ref backend, .. } if backend == "cpu"));
    println!("CHILD-OK {e}");
}

// ------------------------------------------------------- serialization --

#[test]
fn format_corrupt_ciphertext() {
    let mut f = Fixture::new(N10, &[], 28);
    let ct = fresh(&mut f);
    let bytes = serialize::ciphertext_to_bytes(&f.ctx, &ct).unwrap();
    assert!(serialize::ciphertext_from_bytes(&f.ctx, &bytes).is_ok());

    // One flipped payload bit: the checksum catches it.
    let mut flipped = bytes.clone();
    let mid = bytes.len() / 2;
    flipped[mid] ^= 0x10;
    assert_error!(
        serialize::ciphertext_from_bytes(&f.ctx, &flipped),
        Error::Format {
            what: "ciphertext",
            ..
        },
        ["decoding ciphertext", "checksum"]
    );
    // Truncated, empty, bad magic, trailing bytes.
    assert_error!(
        serialize::ciphertext_from_bytes(&f.ctx, &bytes[..bytes.len() - 1]),
        Error::Format {
            what: "ciphertext",
            ..
        },
        ["decoding ciphertext", "truncated"]
    );
    assert_error!(
        serialize::ciphertext_from_bytes(&f.ctx, &[]),
        Error::Format {
            what: "ciphertext",
            ..
        },
        ["decoding ciphertext"]
    );
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert_error!(
        serialize::ciphertext_from_bytes(&f.ctx, &magic),
        Error::Format {
            what: "ciphertext",
            ..
        },
        ["decoding ciphertext", "magic"]
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_error!(
        serialize::ciphertext_from_bytes(&f.ctx, &trailing),
        Error::Format {
            what: "ciphertext",
            ..
        },
        ["decoding ciphertext"]
    );
    // A plaintext frame read as a ciphertext.
    let pt = f
        .encoder
        .encode_real(&[1.0], 0, f.params.default_scale())
        .unwrap();
    let pt_bytes = serialize::plaintext_to_bytes(&f.ctx, &pt).unwrap();
    assert_error!(
        serialize::ciphertext_from_bytes(&f.ctx, &pt_bytes),
        Error::Format {
            what: "ciphertext",
            ..
        },
        ["decoding ciphertext", "plaintext"]
    );
}

#[test]
fn io_missing_file() {
    let mut f = Fixture::new(N10, &[], 29);
    let path = "/nonexistent/dir/file";
    let e = assert_error!(
        serialize::load_ciphertext(&f.ctx, path),
        Error::Io { .. },
        [path]
    );
    match &e {
        Error::Io { context, source } => {
            assert!(context.contains(path), "{context}");
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    assert!(std::error::Error::source(&e).is_some());
    let ct = fresh(&mut f);
    assert_error!(
        serialize::save_ciphertext(&f.ctx, &ct, path),
        Error::Io { .. },
        [path]
    );
}

/// A user's dataset with a bad line: the message names the file and line.
#[test]
fn dataset_bad_line() {
    let path = std::env::temp_dir().join(format!("heformer-dataset-{}.jsonl", std::process::id()));
    std::fs::write(
        &path,
        "{\"text\": \"fine\", \"label\": 1}\n{\"text\": \"no label\"}\n",
    )
    .unwrap();
    let file = format!("{}:2", path.display());
    assert_error!(
        heformer::data::read::read_labeled(&path, "text", "label"),
        Error::Dataset { line: Some(2), .. },
        ["reading dataset", file.as_str(), "no key `label`"]
    );
    std::fs::remove_file(&path).ok();
}

// ------------------------------------------------------------------ CLI --

#[test]
fn cli_unknown_preset_is_a_clean_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_heformer"))
        .args(["bench", "ckks", "--params", "NO_SUCH_PRESET"])
        .output()
        .expect("running heformer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown parameter preset"), "{stderr}");
    assert!(stderr.contains("NO_SUCH_PRESET"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn cli_bad_arguments_are_clean_errors() {
    for args in [
        &["bench", "ckks", "--reps", "-3"][..],
        &["bench", "ckks", "--backend", "quantum"],
        &["no-such-command"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_heformer"))
            .args(args)
            .output()
            .expect("running heformer");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {:?}", out.status);
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// `heformer devices` lists every backend (the CPU always available) and what
/// `auto` picks; asking for a backend without a device is a clean error.
#[test]
fn cli_devices_and_unavailable_backends() {
    let out = Command::new(env!("CARGO_BIN_EXE_heformer"))
        .args(["devices", "--json"])
        .output()
        .expect("running heformer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    let backends: Vec<&str> = lines[..3]
        .iter()
        .map(|l| l["backend"].as_str().unwrap())
        .collect();
    assert_eq!(backends, ["cuda", "wgpu", "cpu"]);
    assert_eq!(lines[2]["available"], true);
    assert_eq!(lines[3]["choice"], "auto");
    // Where CUDA is unavailable, choosing it is an error that says why.
    if lines[0]["available"] == false {
        let out = Command::new(env!("CARGO_BIN_EXE_heformer"))
            .args([
                "bench",
                "ckks",
                "--backend",
                "cuda",
                "--params",
                "TEST_INSECURE_N10",
            ])
            .output()
            .expect("running heformer");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("backend cuda"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `--params` also takes a JSON parameter literal; a malformed one is a clean
/// error naming the file.
#[test]
fn cli_parameter_literal_files() {
    let dir = std::env::temp_dir().join(format!("heformer-params-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("n10.json");
    let literal = heformer::params::Parameters::preset("TEST_INSECURE_N10")
        .unwrap()
        .literal()
        .clone();
    std::fs::write(&good, serde_json::to_string(&literal).unwrap()).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"log_n\": 10").unwrap();
    let run = |path: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_heformer"))
            .args(["bench", "ckks", "--params"])
            .arg(path)
            .args(["--reps", "1", "--json", "--threads", "1"])
            .output()
            .unwrap()
    };
    let ok = run(&good);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("\"op\":\"hmult\""));
    let err = run(&bad);
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert_eq!(err.status.code(), Some(1));
    assert!(
        stderr.contains("not a parameter literal") && stderr.contains("bad.json"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A refused addition leaves its left operand untouched (level and values).
#[test]
fn refused_add_loses_nothing() {
    let mut f = Fixture::new(N10, &[], 41);
    let v: Vec<Complex> = (0..f.slots())
        .map(|i| Complex::new((i as f64 * 0.1).sin(), 0.0))
        .collect();
    let pt = f
        .encoder
        .encode_complex(&v, f.params.max_level(), f.params.default_scale())
        .unwrap();
    let mut a = f.encryptor.encrypt(&pt).unwrap();
    let low = f
        .encoder
        .encode_complex(&v, 1, f.params.default_scale() * 1.5)
        .unwrap();
    let b = f.encryptor.encrypt(&low).unwrap();
    let before = f.decrypt(&a);
    let err = f.evaluator.add_assign(&mut a, &b).unwrap_err();
    assert!(
        matches!(err, Error::ScaleMismatch { op: "add", .. }),
        "{err}"
    );
    assert_eq!(a.level(), f.params.max_level());
    assert_eq!(f.decrypt(&a), before);
}
