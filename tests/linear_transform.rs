//! Linear transforms (diagonal method, baby-step giant-step, hoisted
//! rotations) against plain complex matrix–vector products on the decrypted
//! input, their rotation keys, composition and error paths.

mod common;

use common::{Fixture, PrecisionStats};
use heformer::circuits::linear::{
    encode_sequence, evaluate_sequence, evaluate_with_conjugate, LinearTransform,
};
use heformer::ckks::embedding::galois_element_for_rotation;
use heformer::ckks::{Ciphertext, EvaluationKeys, Evaluator, KeyGenerator, Prng};
use heformer::math::Complex;
use heformer::params::Parameters;
use heformer::Error;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const PRESET: &str = "TEST_INSECURE_N11";

type Matrix = Vec<Vec<Complex>>;

fn random_values(rng: &mut ChaCha20Rng, count: usize) -> Vec<Complex> {
    (0..count)
        .map(|_| Complex::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
        .collect()
}

fn random_matrix(rng: &mut ChaCha20Rng, n: usize) -> Matrix {
    (0..n).map(|_| random_values(rng, n)).collect()
}

fn matvec(m: &[Vec<Complex>], x: &[Complex]) -> Vec<Complex> {
    m.iter()
        .map(|row| {
            row.iter()
                .zip(x)
                .fold(Complex::ZERO, |acc, (&a, &b)| acc + a * b)
        })
        .collect()
}

fn matmul(a: &[Vec<Complex>], b: &[Vec<Complex>]) -> Matrix {
    let n = b.len();
    a.iter()
        .map(|row| {
            (0..n)
                .map(|j| (0..n).fold(Complex::ZERO, |acc, k| acc + row[k] * b[k][j]))
                .collect()
        })
        .collect()
}

fn rotate(v: &[Complex], k: i64) -> Vec<Complex> {
    let n = v.len() as i64;
    (0..n).map(|j| v[(j + k).rem_euclid(n) as usize]).collect()
}

/// A transform with the given diagonal indices, random entries.
fn random_diagonals(rng: &mut ChaCha20Rng, slots: usize, indices: &[i64]) -> LinearTransform {
    let diagonals: Vec<(i64, Vec<Complex>)> = indices
        .iter()
        .map(|&k| (k, random_values(rng, slots)))
        .collect();
    LinearTransform::from_diagonals(slots, diagonals).unwrap()
}

/// `max(1, ‖v‖∞)`.
fn max_abs(v: &[Complex]) -> f64 {
    v.iter().fold(1f64, |m, z| m.max(z.abs()))
}

/// How much a transform can amplify the error of one operation:
/// `Σ_k max(1, ‖diag_k‖∞)`. Each diagonal k adds the rounding error of its
/// encoding and a share of the key-switching noise of the rotations, each at
/// most `max(1, ‖diag_k‖∞)·max(1, ‖x‖∞)` times that of one operation.
fn growth(t: &LinearTransform) -> f64 {
    t.diagonals().values().map(|d| max_abs(d)).sum()
}

/// The bits a result must reach: those of a fresh encryption at `scale`
/// ([`Fixture::required_bits`]) less `log2(growth·max(1, ‖x‖∞))`.
fn required_bits(f: &Fixture, growth: f64, scale: f64, x: &[Complex]) -> f64 {
    f.required_bits(scale) - (growth * max_abs(x)).log2()
}

fn check(f: &Fixture, what: &str, ct: &Ciphertext, want: &[Complex], required: f64) {
    f.assert_close_within(what, ct, want, required);
}

fn describe(what: &str, t: &LinearTransform) {
    eprintln!(
        "{what}: {} slots, {} diagonals, baby step {}: {} hoisted + {} giant rotations, {} keys",
        t.slots(),
        t.diagonals().len(),
        t.baby_step(),
        t.baby_steps().len(),
        t.giant_steps().len(),
        t.rotations().len()
    );
}

/// The decrypted input of `ct` (the reference is computed on it, so that
/// the encryption noise is not counted against the transform).
fn input_of(f: &Fixture, ct: &Ciphertext) -> Vec<Complex> {
    f.decrypt(ct)[..ct.slots()].to_vec()
}

/// Encrypts `x`, evaluates `t` with the rescale, checks the level, the scale
/// and the slots against `plain` applied to the decrypted input.
fn evaluate_and_check(
    f: &mut Fixture,
    what: &str,
    t: &LinearTransform,
    x: &[Complex],
    plain: impl Fn(&[Complex]) -> Vec<Complex>,
) {
    describe(what, t);
    let ct = f.encrypt(x);
    let input = input_of(f, &ct);
    let encoded = t.encode(&f.encoder, ct.level()).unwrap();
    let out = encoded.evaluate(&f.evaluator, &ct, true).unwrap();
    assert_eq!(out.level(), ct.level() - 1, "{what}");
    assert!((out.scale() / ct.scale() - 1.0).abs() < 1e-12, "{what}");
    assert_eq!(out.slots(), t.slots());
    let required = required_bits(f, growth(t), out.scale(), &input);
    check(f, what, &out, &plain(&input), required);
}

#[test]
fn dense_matrices_with_sparse_packing() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let m16 = random_matrix(&mut rng, 16);
    let m32 = random_matrix(&mut rng, 32);
    let t16 = LinearTransform::from_dense(&m16).unwrap();
    let t32 = LinearTransform::from_dense(&m32).unwrap();
    let x16 = random_values(&mut rng, 16);
    let x32 = random_values(&mut rng, 32);
    // The plain diagonal evaluation is the dense product.
    let stats = PrecisionStats::compare(&matvec(&m32, &x32), &t32.apply_plain(&x32).unwrap());
    assert!(stats.max_error < 1e-12, "{stats:?}");
    let mut keys = t16.rotations();
    keys.extend(t32.rotations());
    let mut f = Fixture::new(PRESET, &keys, 11);
    evaluate_and_check(&mut f, "dense 16 slots", &t16, &x16, |x| matvec(&m16, x));
    evaluate_and_check(&mut f, "dense 32 slots", &t32, &x32, |x| matvec(&m32, x));

    // Without the rescale: scale(ct)·q_l at the same level.
    let ct = f.encrypt(&x16);
    let input = input_of(&f, &ct);
    let encoded = t16.encode(&f.encoder, ct.level()).unwrap();
    let out = encoded.evaluate(&f.evaluator, &ct, false).unwrap();
    let q_top = f.params.q()[ct.level()] as f64;
    assert_eq!(out.level(), ct.level());
    assert!((out.scale() / (ct.scale() * q_top) - 1.0).abs() < 1e-12);
    let required = required_bits(&f, growth(&t16), ct.scale(), &input);
    check(
        &f,
        "dense 16 slots, no rescale",
        &out,
        &matvec(&m16, &input),
        required,
    );

    // A ciphertext above the transform's level is dropped to it.
    let level = ct.level() - 2;
    let encoded = t16.encode(&f.encoder, level).unwrap();
    let out = encoded.evaluate(&f.evaluator, &ct, true).unwrap();
    assert_eq!(out.level(), level - 1);
    check(
        &f,
        "dense 16 slots from a higher level",
        &out,
        &matvec(&m16, &input),
        required,
    );
}

#[test]
fn dense_matrix_on_full_slots() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let slots = Parameters::preset(PRESET).unwrap().max_slots();
    let m = random_matrix(&mut rng, slots);
    let t = LinearTransform::from_dense(&m).unwrap();
    assert_eq!(t.baby_step(), 32);
    assert_eq!((t.baby_steps().len(), t.giant_steps().len()), (31, 31));
    let mut f = Fixture::new(PRESET, &t.rotations(), 12);
    assert_eq!(f.slots(), slots);
    let x = random_values(&mut rng, slots);
    evaluate_and_check(&mut f, "dense full slots (N = 2^11)", &t, &x, |x| {
        matvec(&m, x)
    });
}

#[test]
fn sparse_diagonals_identity_and_rotations() {
    let slots = Parameters::preset("TEST_INSECURE_N12").unwrap().max_slots();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let ones = vec![Complex::new(1.0, 0.0); slots];
    let banded = random_diagonals(&mut rng, slots, &[-2, -1, 0, 1, 2]);
    let spread = random_diagonals(&mut rng, slots, &[0, 1, -1, 16, -16, 256, -256, 257]);
    let identity = LinearTransform::from_diagonals(slots, [(0, ones.clone())]).unwrap();
    let left5 = LinearTransform::from_diagonals(slots, [(5, ones.clone())]).unwrap();
    let right3 = LinearTransform::from_diagonals(slots, [(-3, ones)]).unwrap();
    assert!(identity.rotations().is_empty());
    assert_eq!(left5.rotations(), [5]);
    assert_eq!(right3.rotations(), [-3]);
    // A band of 5: n1 = 2 takes 1 hoisted and 2 giant rotations, one fewer
    // than hoisting all four.
    assert_eq!(banded.baby_step(), 2);
    assert_eq!(banded.baby_steps(), [1]);
    assert_eq!(banded.giant_steps(), [2, -2]);
    let mut keys = Vec::new();
    for t in [&banded, &spread, &left5, &right3] {
        keys.extend(t.rotations());
    }
    let mut f = Fixture::new("TEST_INSECURE_N12", &keys, 13);
    let x = random_values(&mut rng, slots);
    // The indexing convention: diagonal 5 of ones is the left rotation by 5.
    assert_eq!(left5.apply_plain(&x).unwrap(), rotate(&x, 5));
    assert_eq!(right3.apply_plain(&x).unwrap(), rotate(&x, -3));
    evaluate_and_check(&mut f, "identity", &identity, &x, |x| x.to_vec());
    evaluate_and_check(&mut f, "rotation left 5", &left5, &x, |x| rotate(x, 5));
    evaluate_and_check(&mut f, "rotation right 3", &right3, &x, |x| rotate(x, -3));
    evaluate_and_check(&mut f, "band -2..=2", &banded, &x, |x| {
        banded.apply_plain(x).unwrap()
    });
    evaluate_and_check(&mut f, "spread diagonals", &spread, &x, |x| {
        spread.apply_plain(x).unwrap()
    });
}

/// An evaluator holding the Galois keys of exactly `steps` (no conjugation).
fn evaluator_with(f: &Fixture, steps: &[i64], seed: u64) -> Evaluator {
    let mut keygen = KeyGenerator::new(f.ctx.clone(), Prng::from_seed(seed));
    let galois = keygen.gen_galois_keys(&f.sk, steps, false).unwrap();
    assert_eq!(galois.len(), steps.len());
    Evaluator::new(
        f.ctx.clone(),
        EvaluationKeys {
            relinearization: None,
            galois,
        },
    )
    .unwrap()
}

#[test]
fn rotation_keys_are_exactly_those_used() {
    let mut f = Fixture::new(PRESET, &[], 14);
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let m = random_matrix(&mut rng, 16);
    let x = random_values(&mut rng, 16);
    let ct = f.encrypt(&x);
    let want = matvec(&m, &input_of(&f, &ct));
    let auto = LinearTransform::from_dense(&m).unwrap();
    // Dense 16 slots: n1 = 4, 3 hoisted + 3 giant rotations.
    assert_eq!(auto.baby_steps(), [1, 2, 3]);
    assert_eq!(auto.giant_steps(), [4, 8, -4]);
    let all_baby = auto.clone().with_baby_step(16).unwrap();
    let no_baby = auto.clone().with_baby_step(1).unwrap();
    assert_eq!(
        all_baby.rotations(),
        (-7..=8).filter(|&k| k != 0).collect::<Vec<_>>()
    );
    assert!(all_baby.giant_steps().is_empty());
    assert!(no_baby.baby_steps().is_empty());
    for (what, t) in [
        ("auto split", auto.clone()),
        ("n1 = 8", auto.clone().with_baby_step(8).unwrap()),
        ("n1 = 16", all_baby),
        ("n1 = 1", no_baby),
    ] {
        describe(what, &t);
        let steps = t.rotations();
        let encoded = t.encode(&f.encoder, ct.level()).unwrap();
        // Exactly these keys suffice...
        let ev = evaluator_with(&f, &steps, 20);
        let out = encoded.evaluate(&ev, &ct, true).unwrap();
        let required = required_bits(&f, growth(&t), out.scale(), &x);
        check(
            &f,
            &format!("dense 16 slots, {what}"),
            &out,
            &want,
            required,
        );
        // ...and each one is needed.
        for (skip, &k) in steps.iter().enumerate() {
            let mut fewer = steps.clone();
            fewer.remove(skip);
            let ev = evaluator_with(&f, &fewer, 21);
            let err = encoded.evaluate(&ev, &ct, true).unwrap_err();
            let g = galois_element_for_rotation(f.params.log_n(), k);
            assert!(
                matches!(err, Error::MissingGaloisKey { op: "linear_transform", galois_element, .. } if galois_element == g),
                "{what}, without {k}: {err}"
            );
        }
    }
}

#[test]
fn composition_and_sequences() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let a = random_matrix(&mut rng, 16);
    let b = random_matrix(&mut rng, 16);
    let ta = LinearTransform::from_dense(&a).unwrap();
    let tb = LinearTransform::from_dense(&b).unwrap();
    let ab = matmul(&a, &b);
    let composed = ta.compose(&tb).unwrap();
    let want = LinearTransform::from_dense(&ab).unwrap();
    for (k, d) in want.diagonals() {
        let got = composed.diagonal(*k as i64).unwrap();
        assert!(
            PrecisionStats::compare(d, got).max_error < 1e-12,
            "diagonal {k}"
        );
    }
    // Sparse factors: diagonal sets add.
    let band = random_diagonals(&mut rng, 16, &[-1, 0, 1]);
    let shift = random_diagonals(&mut rng, 16, &[0, 2]);
    let product = band.compose(&shift).unwrap();
    let indices: Vec<usize> = product.diagonals().keys().copied().collect();
    assert_eq!(indices, [0, 1, 2, 3, 15]);
    let x = random_values(&mut rng, 16);
    let direct = band.apply_plain(&shift.apply_plain(&x).unwrap()).unwrap();
    assert!(PrecisionStats::compare(&direct, &product.apply_plain(&x).unwrap()).max_error < 1e-12);

    let mut keys = Vec::new();
    for t in [&ta, &tb, &composed, &band, &shift] {
        keys.extend(t.rotations());
    }
    let mut f = Fixture::new(PRESET, &keys, 15);
    evaluate_and_check(&mut f, "composed A·B", &composed, &x, |x| matvec(&ab, x));

    // The same as a sequence of two levels: B first, then A.
    let ct = f.encrypt(&x);
    let input = input_of(&f, &ct);
    let factors = [tb.clone(), ta.clone()];
    let encoded = encode_sequence(&factors, &f.encoder, ct.level()).unwrap();
    let out = evaluate_sequence(&f.evaluator, &ct, &encoded).unwrap();
    assert_eq!(out.level(), ct.level() - 2);
    assert!((out.scale() / ct.scale() - 1.0).abs() < 1e-12);
    let required = required_bits(&f, growth(&ta) * growth(&tb), ct.scale(), &input);
    check(
        &f,
        "sequence B then A",
        &out,
        &matvec(&ab, &input),
        required,
    );
    let encoded = encode_sequence(&[shift.clone(), band.clone()], &f.encoder, ct.level()).unwrap();
    let out = evaluate_sequence(&f.evaluator, &ct, &encoded).unwrap();
    let required = required_bits(&f, growth(&band) * growth(&shift), ct.scale(), &input);
    check(
        &f,
        "sequence shift then band",
        &out,
        &product.apply_plain(&input).unwrap(),
        required,
    );
    let out = evaluate_sequence(&f.evaluator, &ct, &[]).unwrap();
    assert_eq!(out.level(), ct.level());

    let err = encode_sequence(&factors, &f.encoder, 1).unwrap_err();
    assert!(matches!(err, Error::OutOfLevels { .. }), "{err}");
}

#[test]
fn conjugate_aware_maps() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let slots = 32;
    let m1 = random_diagonals(&mut rng, slots, &[0, 1, 5, -3]);
    let m2 = random_diagonals(&mut rng, slots, &[0, 2, -1, 8]);
    let half = vec![Complex::new(0.5, 0.0); slots];
    let half_id = LinearTransform::from_diagonals(slots, [(0, half)]).unwrap();
    let mut keys = m1.rotations();
    keys.extend(m2.rotations());
    let mut f = Fixture::new(PRESET, &keys, 16);
    let x = random_values(&mut rng, slots);
    let ct = f.encrypt(&x);
    let input = input_of(&f, &ct);
    let conj: Vec<Complex> = input.iter().map(|z| z.conj()).collect();
    let level = ct.level();

    let (e1, e2) = (
        m1.encode(&f.encoder, level).unwrap(),
        m2.encode(&f.encoder, level).unwrap(),
    );
    let out = evaluate_with_conjugate(&f.evaluator, &ct, &e1, &e2, true).unwrap();
    assert_eq!(out.level(), level - 1);
    let want: Vec<Complex> = m1
        .apply_plain(&input)
        .unwrap()
        .into_iter()
        .zip(m2.apply_plain(&conj).unwrap())
        .map(|(a, b)| a + b)
        .collect();
    let required = required_bits(&f, growth(&m1) + growth(&m2), ct.scale(), &input);
    check(&f, "M1·x + M2·conj(x)", &out, &want, required);

    let e = half_id.encode(&f.encoder, level).unwrap();
    let out = evaluate_with_conjugate(&f.evaluator, &ct, &e, &e, true).unwrap();
    let want: Vec<Complex> = input.iter().map(|z| Complex::new(z.re, 0.0)).collect();
    check(
        &f,
        "Re(x) = (x + conj(x))/2",
        &out,
        &want,
        f.required_bits(ct.scale()),
    );

    // Transforms at different levels are refused.
    let low = m2.encode(&f.encoder, level - 1).unwrap();
    let err = evaluate_with_conjugate(&f.evaluator, &ct, &e1, &low, true).unwrap_err();
    assert!(matches!(err, Error::LevelMismatch { .. }), "{err}");
    // The conjugation key is checked first.
    let ev = Evaluator::new(f.ctx.clone(), EvaluationKeys::default()).unwrap();
    let err = evaluate_with_conjugate(&ev, &ct, &e, &e, true).unwrap_err();
    assert!(matches!(err, Error::MissingGaloisKey { .. }), "{err}");
}

#[test]
fn errors_not_panics() {
    let mut f = Fixture::new(PRESET, &[], 17);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let m = random_matrix(&mut rng, 16);
    let t16 = LinearTransform::from_dense(&m).unwrap();
    let t32 = LinearTransform::from_dense(&random_matrix(&mut rng, 32)).unwrap();
    let ones = vec![Complex::new(1.0, 0.0); 16];
    let identity = LinearTransform::from_diagonals(16, [(0, ones.clone())]).unwrap();
    let x = random_values(&mut rng, 16);
    let ct = f.encrypt(&x);
    let top = ct.level();
    let ev = &f.evaluator;

    // Missing rotation key.
    let err = t16
        .encode(&f.encoder, top)
        .unwrap()
        .evaluate(ev, &ct, true)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::MissingGaloisKey {
                op: "linear_transform",
                ..
            }
        ),
        "{err}"
    );
    // Wrong slot count.
    let err = t32
        .encode(&f.encoder, top)
        .unwrap()
        .evaluate(ev, &ct, true)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthMismatch {
                got: 16,
                expected: 32,
                ..
            }
        ),
        "{err}"
    );
    // Ciphertext below the transform's level.
    let mut low = ct.clone();
    ev.drop_level_assign(&mut low, 1).unwrap();
    let err = identity
        .encode(&f.encoder, top)
        .unwrap()
        .evaluate(ev, &low, true)
        .unwrap_err();
    assert!(matches!(err, Error::LevelMismatch { .. }), "{err}");
    // No level left for the rescale.
    ev.drop_level_assign(&mut low, top - 1).unwrap();
    let at_zero = identity
        .encode_with_scale(&f.encoder, 0, 2f64.powi(20))
        .unwrap();
    let err = at_zero.evaluate(ev, &low, true).unwrap_err();
    assert!(matches!(err, Error::OutOfLevels { .. }), "{err}");
    let err = identity.encode(&f.encoder, top + 1).unwrap_err();
    assert!(matches!(err, Error::LevelMismatch { .. }), "{err}");
    // Too many slots for the ring.
    let wide =
        LinearTransform::from_diagonals(2 * f.slots(), [(0, vec![Complex::I; 2 * f.slots()])])
            .unwrap();
    assert!(wide.encode(&f.encoder, top).is_err());
    // Another parameter set.
    let mut other = Fixture::new("TEST_INSECURE_N10", &[], 18);
    let foreign = other.encrypt(&x);
    let err = identity
        .encode(&f.encoder, 2)
        .unwrap()
        .evaluate(ev, &foreign, true)
        .unwrap_err();
    assert!(matches!(err, Error::ParameterMismatch { .. }), "{err}");

    // Construction.
    let three: Matrix = vec![vec![Complex::ZERO; 3]; 3];
    assert!(matches!(
        LinearTransform::from_dense(&three),
        Err(Error::OutOfRange { .. })
    ));
    let mut ragged = m.clone();
    ragged[3].pop();
    assert!(matches!(
        LinearTransform::from_dense(&ragged),
        Err(Error::LengthMismatch { .. })
    ));
    let zero: Matrix = vec![vec![Complex::ZERO; 4]; 4];
    assert!(matches!(
        LinearTransform::from_dense(&zero),
        Err(Error::OutOfRange { .. })
    ));
    let twice = LinearTransform::from_diagonals(16, [(-1, ones.clone()), (15, ones.clone())]);
    assert!(matches!(twice, Err(Error::OutOfRange { .. })));
    let short = LinearTransform::from_diagonals(16, [(1, vec![Complex::ZERO; 8])]);
    assert!(matches!(short, Err(Error::LengthMismatch { .. })));
    let nan = LinearTransform::from_diagonals(16, [(1, vec![Complex::new(f64::NAN, 0.0); 16])]);
    assert!(matches!(nan, Err(Error::OutOfRange { .. })));
    assert!(matches!(
        LinearTransform::from_diagonals(12, [(0, vec![Complex::I; 12])]),
        Err(Error::OutOfRange { .. })
    ));
    for n1 in [0, 17] {
        assert!(matches!(
            t16.clone().with_baby_step(n1),
            Err(Error::OutOfRange { .. })
        ));
    }
    assert!(matches!(
        t16.apply_plain(&x[..8]),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        t16.compose(&t32),
        Err(Error::LengthMismatch { .. })
    ));
}
