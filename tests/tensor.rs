//! Encrypted `d × d` matrices (`heformer::tensor`): CCMM, CPMM with the
//! prepared left copies shared by two weight matrices, the transpose and the
//! LoRA product X·A·B,
//! against ndarray's products on the plaintext inputs; error paths.

mod common;

use common::Fixture;
use heformer::ckks::Ciphertext;
use heformer::tensor::{
    decrypt_matrix, encrypt_matrix, replicated_rows, LoraProduct, MatrixProduct, MatrixShape,
    Transpose, CCMM_DEPTH, CPMM_DEPTH, LORA_DEPTH,
};
use heformer::Error;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// A `d × d` matrix with entries uniform in (−1, 1).
fn random_matrix(rng: &mut ChaCha20Rng, d: usize) -> Array2<f64> {
    Array2::from_shape_fn((d, d), |_| rng.random_range(-1.0..1.0))
}

fn encrypt(f: &mut Fixture, shape: &MatrixShape, m: &Array2<f64>) -> Ciphertext {
    let (level, scale) = (f.params.max_level(), f.params.default_scale());
    encrypt_matrix(shape, &f.encoder, &mut f.encryptor, m, level, scale).unwrap()
}

/// The bits a product of two matrices with entries in (−1, 1) must reach: a
/// fresh encryption's at `scale` ([`Fixture::required_bits`]) less
/// `log2(2d)`, since every output entry sums `d` products, each carrying the
/// error of both factors (entries below 1 do not amplify it).
fn product_bits(f: &Fixture, scale: f64, d: usize) -> f64 {
    f.required_bits(scale.min(f.params.default_scale())) - ((2 * d) as f64).log2()
}

/// Decrypts `ct` and checks it against `want` to `required` bits (printed).
fn check(
    f: &Fixture,
    shape: &MatrixShape,
    what: &str,
    ct: &Ciphertext,
    want: &Array2<f64>,
    required: f64,
) {
    let got = decrypt_matrix(shape, &f.encoder, &f.decryptor, ct).unwrap();
    let max_error = (&got - want).iter().fold(0f64, |m, e| m.max(e.abs()));
    let bits = -max_error.log2();
    println!(
        "{what}: level {} scale 2^{:.2}: {bits:.1} bits (max error {max_error:.2e}, required {required:.1})",
        ct.level(),
        ct.scale().log2()
    );
    assert!(bits >= required, "{what}: {bits:.1} bits < {required:.1}");
}

fn ccmm(preset: &str, d: usize, seed: u64) {
    let params = heformer::params::Parameters::preset(preset).unwrap();
    let shape = MatrixShape::new(d, &params).unwrap();
    let rotations = MatrixProduct::ccmm_rotations(&shape).unwrap();
    println!("CCMM d = {d}: {} rotation keys", rotations.len());
    let mut f = Fixture::new(preset, &rotations, seed);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (a, b) = (random_matrix(&mut rng, d), random_matrix(&mut rng, d));
    let (ca, cb) = (encrypt(&mut f, &shape, &a), encrypt(&mut f, &shape, &b));
    let product = MatrixProduct::new(shape, &f.encoder, ca.level()).unwrap();
    let out = product.multiply(&f.evaluator, &ca, &cb).unwrap();
    assert_eq!(out.level(), ca.level() - CCMM_DEPTH);
    let q = f.params.q()[ca.level() - 2] as f64;
    assert!((out.scale() / (ca.scale() * cb.scale() / q) - 1.0).abs() < 1e-12);
    let required = product_bits(&f, out.scale(), d);
    check(
        &f,
        &shape,
        &format!("CCMM {preset} d = {d}"),
        &out,
        &a.dot(&b),
        required,
    );
}

#[test]
fn ccmm_matches_the_plain_product() {
    ccmm("TEST_INSECURE_N11", 8, 1);
    ccmm("TEST_INSECURE_N11", 16, 2);
}

#[test]
fn ccmm_d32_full_slots() {
    ccmm("TEST_INSECURE_N11", 32, 3);
}

#[test]
fn cpmm_reuses_the_prepared_copies() {
    const PRESET: &str = "TEST_INSECURE_N11";
    let d = 16;
    let params = heformer::params::Parameters::preset(PRESET).unwrap();
    let shape = MatrixShape::new(d, &params).unwrap();
    let rotations = MatrixProduct::cpmm_rotations(&shape).unwrap();
    println!("CPMM d = {d}: {} rotation keys", rotations.len());
    let mut f = Fixture::new(PRESET, &rotations, 4);
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let a = random_matrix(&mut rng, d);
    let weights = [random_matrix(&mut rng, d), random_matrix(&mut rng, d)];
    let ca = encrypt(&mut f, &shape, &a);
    let product = MatrixProduct::new(shape, &f.encoder, ca.level()).unwrap();
    let encoded: Vec<_> = weights
        .iter()
        .map(|w| product.encode_weights(&f.encoder, w).unwrap())
        .collect();
    let left = product.prepare(&f.evaluator, &ca).unwrap();
    assert_eq!(left.level(), ca.level() - 1);
    let outs = product
        .multiply_plain(&f.evaluator, &left, &encoded)
        .unwrap();
    assert_eq!(outs.len(), 2);
    for (t, (out, w)) in outs.iter().zip(&weights).enumerate() {
        assert_eq!(out.level(), ca.level() - CPMM_DEPTH);
        assert!((out.scale() / ca.scale() - 1.0).abs() < 1e-12);
        let required = product_bits(&f, out.scale(), d);
        check(
            &f,
            &shape,
            &format!("CPMM {PRESET} d = {d} weight {t}"),
            out,
            &a.dot(w),
            required,
        );
    }
}

#[test]
fn transpose_matches() {
    const PRESET: &str = "TEST_INSECURE_N11";
    let d = 16;
    let params = heformer::params::Parameters::preset(PRESET).unwrap();
    let shape = MatrixShape::new(d, &params).unwrap();
    let rotations = Transpose::rotations(&shape).unwrap();
    println!("transpose d = {d}: {} rotation keys", rotations.len());
    let mut f = Fixture::new(PRESET, &rotations, 5);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let a = random_matrix(&mut rng, d);
    let ca = encrypt(&mut f, &shape, &a);
    let out = Transpose::new(&shape, &f.encoder, ca.level())
        .unwrap()
        .apply(&f.evaluator, &ca)
        .unwrap();
    assert_eq!(out.level(), ca.level() - 1);
    assert!((out.scale() / ca.scale() - 1.0).abs() < 1e-12);
    // A permutation moves each entry with the noise of one diagonal product
    // and a share of the key-switching noise: a fresh encryption's bound.
    let required = f.required_bits(out.scale());
    check(
        &f,
        &shape,
        &format!("transpose {PRESET} d = {d}"),
        &out,
        &a.t().to_owned(),
        required,
    );
}

#[test]
fn errors_are_reported() {
    const PRESET: &str = "TEST_INSECURE_N11";
    let d = 8;
    let params = heformer::params::Parameters::preset(PRESET).unwrap();
    let shape = MatrixShape::new(d, &params).unwrap();
    // Shapes: too large for the slots, not a power of two, wrong matrix.
    assert!(matches!(
        MatrixShape::new(64, &params),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        MatrixShape::new(6, &params),
        Err(Error::OutOfRange { .. })
    ));
    // No rotation key at all.
    let mut f = Fixture::new(PRESET, &[], 6);
    let (level, scale) = (f.params.max_level(), f.params.default_scale());
    let wrong = Array2::zeros((d, d + 1));
    assert!(matches!(
        encrypt_matrix(&shape, &f.encoder, &mut f.encryptor, &wrong, level, scale),
        Err(Error::OutOfRange { .. })
    ));
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let a = random_matrix(&mut rng, d);
    let ca = encrypt(&mut f, &shape, &a);
    let product = MatrixProduct::new(shape, &f.encoder, level).unwrap();
    assert!(matches!(
        product.multiply(&f.evaluator, &ca, &ca),
        Err(Error::MissingGaloisKey { .. })
    ));
    assert!(matches!(
        MatrixProduct::new(shape, &f.encoder, CPMM_DEPTH - 1),
        Err(Error::OutOfLevels { .. })
    ));
    // A ciphertext below the product's level.
    let low = encrypt_matrix(&shape, &f.encoder, &mut f.encryptor, &a, 2, scale).unwrap();
    assert!(matches!(
        product.multiply(&f.evaluator, &low, &ca),
        Err(Error::OutOfLevels { level: 2, .. })
    ));
    assert!(matches!(
        product.prepare(&f.evaluator, &low),
        Err(Error::OutOfLevels { .. })
    ));
    // CPMM's keys (σ's, which serve the baby and giant column rotations)
    // but not τ's: preparing works, CCMM is refused.
    let g = Fixture::new(PRESET, &MatrixProduct::cpmm_rotations(&shape).unwrap(), 7);
    assert!(product.prepare(&g.evaluator, &ca).is_ok());
    assert!(matches!(
        product.multiply(&g.evaluator, &ca, &ca),
        Err(Error::MissingGaloisKey { .. })
    ));
    // A ciphertext of another shape.

    let other = MatrixShape::new(4, &params).unwrap();
    let small = encrypt(&mut f, &other, &random_matrix(&mut rng, 4));
    assert!(matches!(
        product.multiply(&f.evaluator, &ca, &small),
        Err(Error::LengthMismatch { .. })
    ));
    // Decrypting with the wrong shape.
    assert!(matches!(
        decrypt_matrix(&shape, &f.encoder, &f.decryptor, &small),
        Err(Error::LengthMismatch { .. })
    ));
}

#[test]
fn lora_low_rank_product_against_ndarray() {
    let (preset, d, rank) = ("TEST_INSECURE_N11", 16, 2);
    let params = heformer::params::Parameters::preset(preset).unwrap();
    let shape = MatrixShape::new(d, &params).unwrap();
    let rotations = LoraProduct::rotations(&shape);
    println!("LoRA d = {d}: {} rotation keys", rotations.len());
    let mut f = Fixture::new(preset, &rotations, 21);
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let x = random_matrix(&mut rng, d);
    let a = Array2::from_shape_fn((d, rank), |_| rng.random_range(-1.0..1.0));
    let b = Array2::from_shape_fn((rank, d), |_| rng.random_range(-1.0..1.0));
    let cx = encrypt(&mut f, &shape, &x);
    let a_columns: Vec<Ciphertext> = (0..rank)
        .map(|c| {
            let packed = replicated_rows(&shape, &a.column(c).to_owned()).unwrap();
            encrypt(&mut f, &shape, &packed)
        })
        .collect();
    let b_rows: Vec<Ciphertext> = (0..rank)
        .map(|c| {
            let packed = replicated_rows(&shape, &b.row(c).to_owned()).unwrap();
            encrypt(&mut f, &shape, &packed)
        })
        .collect();
    let lora = LoraProduct::new(shape, &f.encoder, cx.level()).unwrap();
    // The projection X·A, each column replicated across its row.
    let xa = x.dot(&a);
    for (c, projected) in lora
        .project(&f.evaluator, &cx, &a_columns)
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(projected.level(), cx.level() - 2);
        let want = replicated_rows(&shape, &xa.column(c).to_owned())
            .unwrap()
            .reversed_axes();
        let required = product_bits(&f, projected.scale(), d);
        check(
            &f,
            &shape,
            &format!("LoRA X·A column {c}"),
            projected,
            &want,
            required,
        );
    }
    let out = lora.apply(&f.evaluator, &cx, &a_columns, &b_rows).unwrap();
    assert_eq!(out.level(), cx.level() - LORA_DEPTH);
    let want = xa.dot(&b);
    let required = product_bits(&f, out.scale(), d) - (rank as f64).log2();
    check(&f, &shape, "LoRA X·A·B", &out, &want, required);
    // Mismatched ranks and a level too low are errors.
    assert!(matches!(
        lora.apply(&f.evaluator, &cx, &a_columns, &b_rows[..1]),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        LoraProduct::new(shape, &f.encoder, LORA_DEPTH - 1),
        Err(Error::OutOfLevels { .. })
    ));
}

#[test]
fn cpmm_of_a_block_row_against_ndarray() {
    // X: 16 x 32 (two blocks), W: 32 x 48 (2 x 3 blocks), d = 16.
    let (preset, d) = ("TEST_INSECURE_N11", 16);
    let params = heformer::params::Parameters::preset(preset).unwrap();
    let shape = MatrixShape::new(d, &params).unwrap();
    let mut f = Fixture::new(preset, &MatrixProduct::cpmm_rotations(&shape).unwrap(), 31);
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let x = Array2::from_shape_fn((d, 2 * d), |_| rng.random_range(-1.0..1.0));
    let w = Array2::from_shape_fn((2 * d, 3 * d), |_| rng.random_range(-1.0..1.0));
    let x_blocks = shape.split_blocks(&x).unwrap();
    assert_eq!(shape.join_blocks(&x_blocks).unwrap(), x);
    let w_blocks = shape.split_blocks(&w).unwrap();
    let encrypted: Vec<Ciphertext> = x_blocks[0]
        .iter()
        .map(|b| encrypt(&mut f, &shape, b))
        .collect();
    let product = MatrixProduct::new(shape, &f.encoder, encrypted[0].level()).unwrap();
    let prepared: Vec<_> = encrypted
        .iter()
        .map(|ct| product.prepare(&f.evaluator, ct).unwrap())
        .collect();
    let encoded: Vec<Vec<_>> = w_blocks
        .iter()
        .map(|row| {
            row.iter()
                .map(|b| product.encode_weights(&f.encoder, b).unwrap())
                .collect()
        })
        .collect();
    let left: Vec<_> = prepared.iter().collect();
    let rows: Vec<&[_]> = encoded.iter().map(Vec::as_slice).collect();
    let outs = product
        .multiply_plain_blocks(&f.evaluator, &left, &rows)
        .unwrap();
    assert_eq!(outs.len(), 3);
    let want = shape.split_blocks(&x.dot(&w)).unwrap();
    for (j, out) in outs.iter().enumerate() {
        assert_eq!(out.level(), encrypted[0].level() - CPMM_DEPTH);
        // Each entry sums 2d products.
        let required = product_bits(&f, out.scale(), 2 * d);
        check(
            &f,
            &shape,
            &format!("CPMM block row, block {j}"),
            out,
            &want[0][j],
            required,
        );
    }
    // A ragged weight grid and a mismatched block count are errors.
    assert!(matches!(
        product.multiply_plain_blocks(&f.evaluator, &left, &[rows[0], &rows[1][..2]]),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        product.multiply_plain_blocks(&f.evaluator, &left[..1], &rows),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(shape.split_blocks(&Array2::zeros((d, d + 1))).is_err());
}
