//! The named fitted functions (sign, ReLU, inverse square root, reciprocal,
//! exp two ways, tanh) under encryption against their plain twins (the same
//! circuit in f64): the difference is CKKS noise only, and the depth used is
//! the approximation's plus at most one level per polynomial (an affine map
//! that does not fold).

mod common;

use heformer::approx::NamedFunction;
use heformer::backend::{create_backend, BackendChoice};
use heformer::circuits::functions;
use heformer::ckks::*;
use heformer::math::Complex;
use heformer::params::{Parameters, ParametersLiteral, SecretDistribution, SecurityLevel};
use rand::{Rng, SeedableRng};

#[test]
fn named_functions_match_their_twins() {
    // 17 levels of 45 bits at the scale 2^45: deep enough for the default
    // sign (depth 12) and Newton fits, primes matching the scale. Sign and
    // ReLU amplify the noise through their steep compositions.
    check_named_functions(
        &chain("TEST_INSECURE_FUNCTIONS", 45, 45),
        &NamedFunction::ALL,
        10.0,
    );
}

#[test]
fn newton_and_squaring_keep_their_scale_on_larger_primes() {
    // Primes of 55 bits under the scale 2^40 (the top of a bootstrapping
    // chain): every product rescales by more than it multiplies, so scales
    // that follow the products shrink step by step (this gave garbage).
    check_named_functions(
        &chain("TEST_INSECURE_LARGE_PRIMES", 55, 40),
        &[
            NamedFunction::InvSqrt,
            NamedFunction::Reciprocal,
            NamedFunction::ExpSquaring,
        ],
        18.0,
    );
}

/// q_0 of 60 bits and 17 primes of `prime_bits` at the scale `2^log_scale`, N = 2^11.
fn chain(name: &str, prime_bits: u32, log_scale: u32) -> Parameters {
    let mut log_q = vec![60];
    log_q.extend(std::iter::repeat_n(prime_bits, 17));
    ParametersLiteral::with_bit_sizes(
        name,
        11,
        &log_q,
        &[61, 61, 61, 61],
        5,
        SecretDistribution::Ternary,
        log_scale,
        SecurityLevel::Insecure,
    )
    .unwrap()
    .validate()
    .unwrap()
}

/// Each function under encryption against its `f64` twin and the exact
/// function: depth as planned, at least `min_bits` against the twin, an
/// output scale no smaller than the input's.
fn check_named_functions(params: &Parameters, functions: &[NamedFunction], min_bits: f64) {
    let ctx = CkksContext::new(params, create_backend(BackendChoice::Cpu, 0).unwrap()).unwrap();
    let mut keygen = KeyGenerator::new(ctx.clone(), Prng::from_seed(71));
    let sk = keygen.gen_secret_key().unwrap();
    let relinearization = Some(keygen.gen_relinearization_key(&sk).unwrap());
    let ev = Evaluator::new(
        ctx.clone(),
        EvaluationKeys {
            relinearization,
            galois: GaloisKeys::default(),
        },
    )
    .unwrap();
    let encoder = Encoder::new(ctx.clone());
    let mut enc = Encryptor::new(
        ctx.clone(),
        EncryptionKey::Secret(sk.clone()),
        Prng::from_seed(72),
    )
    .unwrap();
    let dec = Decryptor::new(ctx.clone(), sk).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(73);
    let top = params.max_level();
    for &function in functions {
        let fitted = function.fit_default().unwrap();
        let xs: Vec<f64> = (0..params.max_slots())
            .map(|_| fitted.domain.point(rng.random_range(0.0..1.0)))
            .collect();
        let values: Vec<Complex> = xs.iter().map(|&x| Complex::new(x, 0.0)).collect();
        let ct = enc
            .encrypt(
                &encoder
                    .encode_complex(&values, top, params.default_scale())
                    .unwrap(),
            )
            .unwrap();
        let out = functions::evaluate(&ev, &ct, &fitted.approximation).unwrap();
        let got = encoder.decode(&dec.decrypt(&out).unwrap()).unwrap();
        let (mut noise, mut error) = (0.0f64, 0.0f64);
        for (x, g) in xs.iter().zip(&got) {
            assert!(
                g.re.is_finite(),
                "{}: a slot is not finite",
                function.name()
            );
            noise = noise.max((g.re - fitted.approximation.eval(*x)).abs());
            error = error.max((g.re - function.exact(*x)).abs());
        }
        let used = top - out.level();
        eprintln!(
            "{}: depth {used} (fit {}), against the twin {:.1} bits, against the function {:.1} bits (fit error {:.2e})",
            function.name(),
            fitted.depth(),
            -noise.log2(),
            -error.log2(),
            fitted.max_error
        );
        // The fit counts ⌈log2(d+1)⌉ per polynomial; the circuit adds a level
        // for each polynomial whose affine map does not fold.
        let pieces = fitted.approximation.pieces().len().max(1);
        assert!(
            used >= fitted.depth() && used <= fitted.depth() + pieces,
            "{}: depth {used}",
            function.name()
        );
        // CKKS noise after up to 17 levels.
        assert!(-noise.log2() >= min_bits, "{}", function.name());
        assert!(
            out.scale() >= ct.scale() * 0.99,
            "{}: output scale 2^{:.1} below the input's 2^{:.1}",
            function.name(),
            out.scale().log2(),
            ct.scale().log2()
        );
    }
}
