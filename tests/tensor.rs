//! Encrypted `d × d` matrices (`heformer::tensor`), one or several
//! interleaved blocks per ciphertext: CCMM, the dense product with the
//! prepared copies shared by two weight matrices and across ciphertexts,
//! the transpose and the LoRA product X·A·B, against ndarray's products on
//! the plaintext inputs; error paths.

mod common;

use common::Fixture;
use heformer::ckks::Ciphertext;
use heformer::tensor::{
    decrypt_matrix, encrypt_matrix, replicated_rows, Adapters, DenseProduct, Encodings,
    EncryptedDense, LoraProduct, MatrixProduct, MatrixShape, RowDense, Transpose, CCMM_DEPTH,
    DENSE_DEPTH, ENCRYPTED_DENSE_DEPTH, ENCRYPTED_DENSE_GRADIENT_DEPTH, LORA_DEPTH,
    ROW_DENSE_DEPTH, ROW_DENSE_GRADIENT_DEPTH,
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

/// Encrypts distinct blocks (at most `P`).
fn encrypt_blocks(f: &mut Fixture, shape: &MatrixShape, blocks: &[Array2<f64>]) -> Ciphertext {
    let (level, scale) = (f.params.max_level(), f.params.default_scale());
    let pt = f
        .encoder
        .encode_complex(&shape.pack_blocks(blocks).unwrap(), level, scale)
        .unwrap();
    f.encryptor.encrypt(&pt).unwrap()
}

/// `P` random blocks.
fn random_blocks(rng: &mut ChaCha20Rng, shape: &MatrixShape) -> Vec<Array2<f64>> {
    (0..shape.blocks())
        .map(|_| random_matrix(rng, shape.dim()))
        .collect()
}

/// The bits a product of two matrices with entries in (−1, 1) must reach: a
/// fresh encryption's at `scale` ([`Fixture::required_bits`]) less
/// `log2(2d)`, since every output entry sums `d` products, each carrying the
/// error of both factors (entries below 1 do not amplify it).
fn product_bits(f: &Fixture, scale: f64, d: usize) -> f64 {
    f.required_bits(scale.min(f.params.default_scale())) - ((2 * d) as f64).log2()
}

/// Decrypts `ct` and checks its first blocks against `want` to `required`
/// bits (printed).
fn check_blocks(
    f: &Fixture,
    shape: &MatrixShape,
    what: &str,
    ct: &Ciphertext,
    want: &[Array2<f64>],
    required: f64,
) {
    let slots = f.encoder.decode(&f.decryptor.decrypt(ct).unwrap()).unwrap();
    let got = shape.unpack_blocks(&slots).unwrap();
    let max_error = got
        .iter()
        .zip(want)
        .flat_map(|(got, want)| (got - want).into_iter())
        .fold(0f64, |m, e| m.max(e.abs()));
    let bits = -max_error.log2();
    println!(
        "{what}: level {} scale 2^{:.2}: {bits:.1} bits (max error {max_error:.2e}, required {required:.1})",
        ct.level(),
        ct.scale().log2()
    );
    assert!(bits >= required, "{what}: {bits:.1} bits < {required:.1}");
}

fn ccmm(preset: &str, d: usize, blocks: usize, seed: u64) {
    let params = heformer::params::Parameters::preset(preset).unwrap();
    let shape = MatrixShape::with_blocks(d, blocks, &params).unwrap();
    let rotations = MatrixProduct::ccmm_rotations(&shape).unwrap();
    println!(
        "CCMM d = {d}, {blocks} blocks: {} rotation keys",
        rotations.len()
    );
    let mut f = Fixture::new(preset, &rotations, seed);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (a, b) = (
        random_blocks(&mut rng, &shape),
        random_blocks(&mut rng, &shape),
    );
    let (ca, cb) = (
        encrypt_blocks(&mut f, &shape, &a),
        encrypt_blocks(&mut f, &shape, &b),
    );
    let product = MatrixProduct::new(shape, &f.encoder, ca.level()).unwrap();
    let out = product.multiply(&f.evaluator, &ca, &cb).unwrap();
    assert_eq!(out.level(), ca.level() - CCMM_DEPTH);
    let q = f.params.q()[ca.level() - 2] as f64;
    assert!((out.scale() / (ca.scale() * cb.scale() / q) - 1.0).abs() < 1e-12);
    let required = product_bits(&f, out.scale(), d);
    let want: Vec<Array2<f64>> = a.iter().zip(&b).map(|(a, b)| a.dot(b)).collect();
    check_blocks(
        &f,
        &shape,
        &format!("CCMM {preset} d = {d}, {blocks} blocks"),
        &out,
        &want,
        required,
    );
}

#[test]
fn ccmm_matches_the_plain_product() {
    ccmm("TEST_INSECURE_N11", 8, 1, 1);
    ccmm("TEST_INSECURE_N11", 16, 1, 2);
}

#[test]
fn ccmm_block_by_block() {
    ccmm("TEST_INSECURE_N11", 8, 8, 8);
    ccmm("TEST_INSECURE_N11", 16, 4, 9);
}

#[test]
fn ccmm_d32_full_slots() {
    ccmm("TEST_INSECURE_N11", 32, 1, 3);
}

/// `x·w` for an activation `x` (`d × cols`) in ciphertexts of `P` blocks.
fn encrypt_activation(f: &mut Fixture, shape: &MatrixShape, x: &Array2<f64>) -> Vec<Ciphertext> {
    let d = shape.dim();
    let blocks: Vec<Array2<f64>> = (0..x.ncols().div_ceil(d))
        .map(|b| Array2::from_shape_fn((d, d), |(i, j)| *x.get((i, b * d + j)).unwrap_or(&0.0)))
        .collect();
    blocks
        .chunks(shape.blocks())
        .map(|group| encrypt_blocks(f, shape, group))
        .collect()
}

/// The blocks of output ciphertext `h` of `y` (`d × cols`).
fn output_blocks(shape: &MatrixShape, y: &Array2<f64>, h: usize) -> Vec<Array2<f64>> {
    let (d, p) = (shape.dim(), shape.blocks());
    (0..p)
        .map(|b| {
            Array2::from_shape_fn((d, d), |(i, j)| {
                *y.get((i, (h * p + b) * d + j)).unwrap_or(&0.0)
            })
        })
        .collect()
}

/// Two weight matrices share the prepared copies of the input; the inputs
/// span two ciphertexts and the outputs three (the last one partly
/// padding).
fn dense(d: usize, blocks: usize, seed: u64) {
    const PRESET: &str = "TEST_INSECURE_N11";
    let params = heformer::params::Parameters::preset(PRESET).unwrap();
    let shape = MatrixShape::with_blocks(d, blocks, &params).unwrap();
    let rotations = DenseProduct::rotations(&shape);
    println!(
        "dense d = {d}, {blocks} blocks: {} rotation keys",
        rotations.len()
    );
    let mut f = Fixture::new(PRESET, &rotations, seed);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let width = d * blocks;
    let (rows, cols) = (2 * width - d / 2, 2 * width + d);
    let x = Array2::from_shape_fn((d, rows), |_| rng.random_range(-1.0..1.0));
    let weights = [
        Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.0..1.0)),
        Array2::from_shape_fn((rows, d), |_| rng.random_range(-1.0..1.0)),
    ];
    let cx = encrypt_activation(&mut f, &shape, &x);
    let product = DenseProduct::new(shape);
    let prepared: Vec<_> = cx
        .iter()
        .map(|ct| product.prepare(&f.evaluator, ct).unwrap())
        .collect();
    for (t, w) in weights.iter().enumerate() {
        let outs = product
            .multiply(&f.evaluator, &f.encoder, &[&prepared], w, 1.0)
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(outs.len(), product.ciphertexts_for(w.ncols()));
        let want = x.dot(w);
        for (h, out) in outs.iter().enumerate() {
            assert_eq!(out.level(), cx[0].level() - DENSE_DEPTH);
            assert!((out.scale() / cx[0].scale() - 1.0).abs() < 1e-12);
            // Each entry sums `rows` products.
            let required = product_bits(&f, out.scale(), rows);
            check_blocks(
                &f,
                &shape,
                &format!("dense d = {d}, {blocks} blocks, weight {t}, output {h}"),
                out,
                &output_blocks(&shape, &want, h),
                required,
            );
        }
    }
    // The wrong number of inputs, inputs at two levels, a NaN weight.
    assert!(matches!(
        product.multiply(
            &f.evaluator,
            &f.encoder,
            &[&prepared[..1]],
            &weights[0],
            1.0
        ),
        Err(Error::LengthMismatch { .. })
    ));
    let mut low = cx[1].try_clone().unwrap();
    f.evaluator.drop_level_assign(&mut low, 1).unwrap();
    let mixed = [
        product.prepare(&f.evaluator, &cx[0]).unwrap(),
        product.prepare(&f.evaluator, &low).unwrap(),
    ];
    assert!(matches!(
        product.multiply(&f.evaluator, &f.encoder, &[&mixed], &weights[0], 1.0),
        Err(Error::LevelMismatch { .. })
    ));
    let mut nan = weights[1].clone();
    nan[[0, 0]] = f64::NAN;
    assert!(matches!(
        product.multiply(&f.evaluator, &f.encoder, &[&prepared], &nan, 1.0),
        Err(Error::OutOfRange { .. })
    ));
}

#[test]
fn dense_one_block_per_ciphertext() {
    dense(16, 1, 4);
}

#[test]
fn dense_interleaved_blocks() {
    dense(8, 4, 31);
    dense(4, 16, 32);
}

#[test]
fn transpose_matches() {
    transpose(16, 1, 5);
    transpose(8, 4, 6);
}

fn transpose(d: usize, blocks: usize, seed: u64) {
    const PRESET: &str = "TEST_INSECURE_N11";
    let params = heformer::params::Parameters::preset(PRESET).unwrap();
    let shape = MatrixShape::with_blocks(d, blocks, &params).unwrap();
    let rotations = Transpose::rotations(&shape).unwrap();
    println!(
        "transpose d = {d}, {blocks} blocks: {} rotation keys",
        rotations.len()
    );
    let mut f = Fixture::new(PRESET, &rotations, seed);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let a = random_blocks(&mut rng, &shape);
    let ca = encrypt_blocks(&mut f, &shape, &a);
    let out = Transpose::new(&shape, &f.encoder, ca.level())
        .unwrap()
        .apply(&f.evaluator, &ca)
        .unwrap();
    assert_eq!(out.level(), ca.level() - 1);
    assert!((out.scale() / ca.scale() - 1.0).abs() < 1e-12);
    // A permutation moves each entry with the noise of one diagonal product
    // and a share of the key-switching noise: a fresh encryption's bound.
    let required = f.required_bits(out.scale());
    let want: Vec<Array2<f64>> = a.iter().map(|a| a.t().to_owned()).collect();
    check_blocks(
        &f,
        &shape,
        &format!("transpose {PRESET} d = {d}, {blocks} blocks"),
        &out,
        &want,
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
        MatrixProduct::new(shape, &f.encoder, CCMM_DEPTH - 1),
        Err(Error::OutOfLevels { .. })
    ));
    // A ciphertext below the product's level.
    let low = encrypt_matrix(&shape, &f.encoder, &mut f.encryptor, &a, 2, scale).unwrap();
    assert!(matches!(
        product.multiply(&f.evaluator, &low, &ca),
        Err(Error::OutOfLevels { level: 2, .. })
    ));
    // The dense product's keys only: it prepares, CCMM is refused; a
    // dense input at level 0 is refused.
    let g = Fixture::new(PRESET, &DenseProduct::rotations(&shape), 7);
    let dense = DenseProduct::new(shape);
    assert!(dense.prepare(&g.evaluator, &ca).is_ok());
    assert!(matches!(
        product.multiply(&g.evaluator, &ca, &ca),
        Err(Error::MissingGaloisKey { .. })
    ));
    let bottom = encrypt_matrix(&shape, &f.encoder, &mut f.encryptor, &a, 0, scale).unwrap();
    assert!(matches!(
        dense.prepare(&g.evaluator, &bottom),
        Err(Error::OutOfLevels { .. })
    ));
    // A ciphertext of another shape.

    let other = MatrixShape::new(4, &params).unwrap();
    let small = encrypt(&mut f, &other, &random_matrix(&mut rng, 4));
    assert!(matches!(
        product.multiply(&f.evaluator, &ca, &small),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        dense.prepare(&g.evaluator, &small),
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
    // One block per ciphertext, one ciphertext each side.
    lora(16, 1, 16, 16);
    // Four blocks per ciphertext; X spans two ciphertexts (six blocks, the
    // last partly padding), Y one (three blocks).
    lora(8, 4, 44, 20);
}

/// `Y = f·X·A·B` for `X` of `width_in` columns and `B` of `width_out`,
/// both padded to whole ciphertexts, and the adapters' gradients.
fn lora(d: usize, blocks: usize, width_in: usize, width_out: usize) {
    let (preset, rank, factor) = ("TEST_INSECURE_N11", 2, 0.75);
    let params = heformer::params::Parameters::preset(preset).unwrap();
    let shape = MatrixShape::with_blocks(d, blocks, &params).unwrap();
    let rotations = LoraProduct::gradient_rotations(&shape);
    println!(
        "LoRA d = {d}, P = {blocks}: {} rotation keys",
        rotations.len()
    );
    let mut f = Fixture::new(preset, &rotations, 21);
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let x = Array2::from_shape_fn((d, width_in), |_| rng.random_range(-1.0..1.0));
    let a = Array2::from_shape_fn((width_in, rank), |_| rng.random_range(-1.0..1.0));
    let b = Array2::from_shape_fn((rank, width_out), |_| rng.random_range(-1.0..1.0));
    let cx = encrypt_activation(&mut f, &shape, &x);
    let replicated = |f: &mut Fixture, v: ndarray::ArrayView1<f64>| {
        encrypt_activation(f, &shape, &replicated_rows(d, &v.to_owned()))
    };
    let a_columns: Vec<Vec<Ciphertext>> =
        (0..rank).map(|c| replicated(&mut f, a.column(c))).collect();
    let b_rows: Vec<Vec<Ciphertext>> = (0..rank).map(|c| replicated(&mut f, b.row(c))).collect();
    let level = cx[0].level();
    let lora = LoraProduct::new(shape);
    let adapters = Adapters {
        a_columns: a_columns.iter().map(Vec::as_slice).collect(),
        b_rows: b_rows.iter().map(Vec::as_slice).collect(),
    };
    // The projection f·X·A, each column replicated across its row.
    let xa = x.dot(&a);
    for (c, projected) in lora
        .project(&f.evaluator, &f.encoder, &cx, &adapters.a_columns, factor)
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(projected.level(), level - 2);
        // Row i holds f·(X·A)[i][c] in every column of every block.
        let want = replicated_rows(d * blocks, &(&xa.column(c) * factor)).reversed_axes();
        let blocks_of = output_blocks(&shape, &want, 0);
        check_blocks(
            &f,
            &shape,
            &format!("LoRA X·A column {c}"),
            projected,
            &blocks_of,
            product_bits(&f, projected.scale(), width_in),
        );
    }
    let out = lora
        .apply(&f.evaluator, &f.encoder, &cx, &adapters, factor)
        .unwrap();
    assert_eq!(out.len(), width_out.div_ceil(d * blocks));
    let want = xa.dot(&b) * factor;
    for (h, ct) in out.iter().enumerate() {
        assert_eq!(ct.level(), level - LORA_DEPTH);
        let required = product_bits(&f, ct.scale(), width_in) - (rank as f64).log2();
        check_blocks(
            &f,
            &shape,
            &format!("LoRA X·A·B ciphertext {h}"),
            ct,
            &output_blocks(&shape, &want, h),
            required,
        );
    }
    // The adapters' gradients from dY, in their own layouts.
    let dy = Array2::from_shape_fn((d, width_out), |_| rng.random_range(-1.0..1.0));
    let cdy = encrypt_activation(&mut f, &shape, &dy);
    let gradients = lora
        .gradients(&f.evaluator, &f.encoder, &cx, &adapters, &cdy, factor)
        .unwrap();
    let want_a = x.t().dot(&dy.dot(&b.t())) * factor;
    let want_b = xa.t().dot(&dy) * factor;
    for c in 0..rank {
        for (what, got, want) in [
            (
                "∂A column",
                &gradients.a_columns[c],
                want_a.column(c).to_owned(),
            ),
            ("∂B row", &gradients.b_rows[c], want_b.row(c).to_owned()),
        ] {
            let want = replicated_rows(d, &want);
            for (h, ct) in got.iter().enumerate() {
                assert_eq!(ct.level(), level - LORA_DEPTH);
                let required = product_bits(&f, ct.scale(), d * width_in.max(width_out));
                check_blocks(
                    &f,
                    &shape,
                    &format!("LoRA {what} {c}, ciphertext {h}"),
                    ct,
                    &output_blocks(&shape, &want, h),
                    required,
                );
            }
        }
    }
    // dX = f·dY·Bᵀ·Aᵀ: the product with the adapters' roles exchanged.
    let dx = lora
        .apply(
            &f.evaluator,
            &f.encoder,
            &cdy,
            &adapters.clone().exchanged(),
            factor,
        )
        .unwrap();
    let want_dx = dy.dot(&b.t()).dot(&a.t()) * factor;
    for (h, ct) in dx.iter().enumerate() {
        let required = product_bits(&f, ct.scale(), width_out) - (rank as f64).log2();
        check_blocks(
            &f,
            &shape,
            &format!("LoRA ∂X ciphertext {h}"),
            ct,
            &output_blocks(&shape, &want_dx, h),
            required,
        );
    }
    // Mismatched ranks and widths are errors.
    let short = Adapters {
        a_columns: adapters.a_columns.clone(),
        b_rows: adapters.b_rows[..1].to_vec(),
    };
    let ev = &f.evaluator;
    assert!(matches!(
        lora.gradients(ev, &f.encoder, &cx, &short, &cdy, factor),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        lora.gradients(ev, &f.encoder, &cx, &adapters, &cx[..0], factor),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        lora.apply(ev, &f.encoder, &cx, &short, factor),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        lora.row_sums(&f.evaluator, &f.encoder, &cx, &[], 1.0),
        Err(Error::LengthMismatch { .. })
    ));
}

/// Two real activations packed as one complex ciphertext go through one
/// dense product; split again, each is its own product.
#[test]
fn complex_packing_of_two_activations() {
    const PRESET: &str = "TEST_INSECURE_N11";
    let params = heformer::params::Parameters::preset(PRESET).unwrap();
    let (d, blocks) = (8, 4);
    let shape = MatrixShape::with_blocks(d, blocks, &params).unwrap();
    let mut f = Fixture::new(PRESET, &DenseProduct::rotations(&shape), 51);
    let mut rng = ChaCha20Rng::seed_from_u64(51);
    let width = d * blocks;
    let xs: Vec<Array2<f64>> = (0..2)
        .map(|_| Array2::from_shape_fn((d, width), |_| rng.random_range(-1.0..1.0)))
        .collect();
    let w = Array2::from_shape_fn((width, width), |_| rng.random_range(-1.0..1.0));
    let cts: Vec<Vec<Ciphertext>> = xs
        .iter()
        .map(|x| encrypt_activation(&mut f, &shape, x))
        .collect();
    let z = f
        .evaluator
        .complex_pack_new(&cts[0][0], &cts[1][0])
        .unwrap();
    let product = DenseProduct::new(shape);
    let prepared = [product.prepare(&f.evaluator, &z).unwrap()];
    let out = product
        .multiply(&f.evaluator, &f.encoder, &[&prepared], &w, 0.5)
        .unwrap();
    let (re, im) = f.evaluator.complex_split_new(&out[0][0]).unwrap();
    for (what, ct, x) in [("real part", &re, &xs[0]), ("imaginary part", &im, &xs[1])] {
        assert!((ct.scale() / cts[0][0].scale() - 1.0).abs() < 1e-12);
        let required = product_bits(&f, ct.scale(), width) - 1.0;
        check_blocks(
            &f,
            &shape,
            &format!("complex-packed dense product, {what}"),
            ct,
            &output_blocks(&shape, &x.dot(&w), 0),
            required,
        );
    }
}

/// `Y = X·W` with `W` encrypted, and both gradients, against ndarray: `X`
/// spans two ciphertexts (five blocks, the last partly padding), `W` maps
/// it to three blocks (one ciphertext), four blocks per ciphertext.
#[test]
fn encrypted_weights_product_and_gradients_against_ndarray() {
    let (preset, d, blocks) = ("TEST_INSECURE_N11", 4, 4);
    let (width_in, width_out) = (18, 11);
    let params = heformer::params::Parameters::preset(preset).unwrap();
    let shape = MatrixShape::with_blocks(d, blocks, &params).unwrap();
    let rotations = EncryptedDense::rotations(&shape).unwrap();
    println!(
        "encrypted dense d = {d}, P = {blocks}: {} rotation keys",
        rotations.len()
    );
    let mut f = Fixture::new(preset, &rotations, 29);
    let mut rng = ChaCha20Rng::seed_from_u64(29);
    let x = Array2::from_shape_fn((d, width_in), |_| rng.random_range(-1.0..1.0));
    let w = Array2::from_shape_fn((width_in, width_out), |_| rng.random_range(-1.0..1.0));
    let dy = Array2::from_shape_fn((d, width_out), |_| rng.random_range(-1.0..1.0));
    let dense = EncryptedDense::new(shape);
    let encodings = Fresh {
        shape,
        encoder: heformer::ckks::Encoder::new(f.ctx.clone()),
    };
    let slots = dense.weight_slots(&w).unwrap();
    // g = 2 input ciphertexts, h = 1 output ciphertext, P shifts.
    assert_eq!(slots.len(), 2 * blocks);
    assert_eq!(dense.weight_matrix(&slots, width_in, width_out).unwrap(), w);
    let (level, scale) = (f.params.max_level(), f.params.default_scale());
    let cw: Vec<Ciphertext> = slots
        .iter()
        .map(|s| {
            let pt = f.encoder.encode_complex(s, level, scale).unwrap();
            f.encryptor.encrypt(&pt).unwrap()
        })
        .collect();
    let cx = encrypt_activation(&mut f, &shape, &x);
    let cdy = encrypt_activation(&mut f, &shape, &dy);
    let y = dense
        .multiply(
            (&f.evaluator, &f.encoder),
            &encodings as &dyn Encodings,
            &cx,
            &cw,
        )
        .unwrap();
    assert_eq!(y.len(), 1);
    assert_eq!(y[0].level(), level - ENCRYPTED_DENSE_DEPTH);
    let want = x.dot(&w);
    let required = product_bits(&f, y[0].scale(), width_in);
    check_blocks(
        &f,
        &shape,
        "X·W (W encrypted)",
        &y[0],
        &output_blocks(&shape, &want, 0),
        required,
    );
    let (d_xs, d_ws) = dense
        .gradients(
            (&f.evaluator, &f.encoder),
            &encodings as &dyn Encodings,
            &cx,
            &cw,
            &cdy,
        )
        .unwrap();
    let want_dx = dy.dot(&w.t());
    for (k, ct) in d_xs.iter().enumerate() {
        assert_eq!(ct.level(), level - ENCRYPTED_DENSE_GRADIENT_DEPTH);
        let required = product_bits(&f, ct.scale(), width_out);
        check_blocks(
            &f,
            &shape,
            &format!("∂X ciphertext {k}"),
            ct,
            &output_blocks(&shape, &want_dx, k),
            required,
        );
    }
    let decoded: Vec<Vec<heformer::math::Complex>> = d_ws
        .iter()
        .map(|ct| f.encoder.decode(&f.decryptor.decrypt(ct).unwrap()).unwrap())
        .collect();
    let got_dw = dense.weight_matrix(&decoded, width_in, width_out).unwrap();
    let want_dw = x.t().dot(&dy);
    let error = (&got_dw - &want_dw)
        .iter()
        .fold(0.0_f64, |m, e| m.max(e.abs()));
    let required = product_bits(&f, d_ws[0].scale(), d);
    println!("∂W: {:.1} bits (required {required:.1})", -error.log2());
    assert!(-error.log2() >= required);
    // Lists of the wrong lengths are errors.
    assert!(matches!(
        dense.multiply(
            (&f.evaluator, &f.encoder),
            &encodings as &dyn Encodings,
            &cx,
            &cw[..3]
        ),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        dense.gradients(
            (&f.evaluator, &f.encoder),
            &encodings as &dyn Encodings,
            &cx,
            &cw,
            &cx
        ),
        Err(Error::LengthMismatch { .. })
    ));
}

/// `y = x₀·W` of the first row with `W` encrypted (in `EncryptedDense`'s
/// layout), and both gradients, against ndarray: the same shapes as above.
/// `y` lands on every row; `∂x` on row 0 only.
#[test]
fn row_product_with_encrypted_weights_against_ndarray() {
    let (preset, d, blocks) = ("TEST_INSECURE_N11", 4, 4);
    let (width_in, width_out) = (18, 11);
    let params = heformer::params::Parameters::preset(preset).unwrap();
    let shape = MatrixShape::with_blocks(d, blocks, &params).unwrap();
    let mut rotations = EncryptedDense::rotations(&shape).unwrap();
    rotations.extend(RowDense::sum_rotations(&shape));
    let mut f = Fixture::new(preset, &rotations, 31);
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let x = Array2::from_shape_fn((d, width_in), |_| rng.random_range(-1.0..1.0));
    let w = Array2::from_shape_fn((width_in, width_out), |_| rng.random_range(-1.0..1.0));
    let dy = Array2::from_shape_fn((d, width_out), |_| rng.random_range(-1.0..1.0));
    let row = RowDense::new(shape);
    let encodings = Fresh {
        shape,
        encoder: heformer::ckks::Encoder::new(f.ctx.clone()),
    };
    let (level, scale) = (f.params.max_level(), f.params.default_scale());
    let cw: Vec<Ciphertext> = EncryptedDense::new(shape)
        .weight_slots(&w)
        .unwrap()
        .iter()
        .map(|s| {
            let pt = f.encoder.encode_complex(s, level, scale).unwrap();
            f.encryptor.encrypt(&pt).unwrap()
        })
        .collect();
    let cx = encrypt_activation(&mut f, &shape, &x);
    let cdy = encrypt_activation(&mut f, &shape, &dy);
    let (ev, encoder) = (&f.evaluator, &f.encoder);
    let y = row
        .multiply((ev, encoder), &encodings as &dyn Encodings, &cx, &cw)
        .unwrap();
    assert_eq!(y.len(), 1);
    assert_eq!(y[0].level(), level - ROW_DENSE_DEPTH);
    // x₀·W on every row.
    let first = x.row(0).dot(&w);
    let want = Array2::from_shape_fn((d, width_out), |(_, j)| first[j]);
    let required = product_bits(&f, y[0].scale(), width_in);
    check_blocks(
        &f,
        &shape,
        "x₀·W (W encrypted)",
        &y[0],
        &output_blocks(&shape, &want, 0),
        required,
    );
    let (d_xs, d_ws, d_ys) = row
        .gradients((ev, encoder), &encodings as &dyn Encodings, &cx, &cw, &cdy)
        .unwrap();
    // ∂y₀ on every row.
    let want_dy = Array2::from_shape_fn((d, width_out), |(_, j)| dy[[0, j]]);
    check_blocks(
        &f,
        &shape,
        "∂y₀ on every row",
        &d_ys[0],
        &output_blocks(&shape, &want_dy, 0),
        product_bits(&f, d_ys[0].scale(), 1),
    );
    // ∂x₀ = ∂y₀·Wᵀ on row 0, zero elsewhere.
    let row_dx = dy.row(0).dot(&w.t());
    let want_dx =
        Array2::from_shape_fn((d, width_in), |(i, j)| if i == 0 { row_dx[j] } else { 0.0 });
    for (k, ct) in d_xs.iter().enumerate() {
        assert_eq!(ct.level(), level - ROW_DENSE_GRADIENT_DEPTH);
        let required = product_bits(&f, ct.scale(), width_out);
        check_blocks(
            &f,
            &shape,
            &format!("∂x₀ ciphertext {k}"),
            ct,
            &output_blocks(&shape, &want_dx, k),
            required,
        );
    }
    // ∂W = x₀ᵀ·∂y₀.
    let decoded: Vec<Vec<heformer::math::Complex>> = d_ws
        .iter()
        .map(|ct| f.encoder.decode(&f.decryptor.decrypt(ct).unwrap()).unwrap())
        .collect();
    let got_dw = EncryptedDense::new(shape)
        .weight_matrix(&decoded, width_in, width_out)
        .unwrap();
    let want_dw = Array2::from_shape_fn((width_in, width_out), |(i, j)| x[[0, i]] * dy[[0, j]]);
    let error = (&got_dw - &want_dw)
        .iter()
        .fold(0.0_f64, |m, e| m.max(e.abs()));
    let required = product_bits(&f, d_ws[0].scale(), 1);
    println!("row ∂W: {:.1} bits (required {required:.1})", -error.log2());
    assert!(-error.log2() >= required);
    assert!(matches!(
        row.multiply((ev, encoder), &encodings as &dyn Encodings, &cx, &cw[..3]),
        Err(Error::LengthMismatch { .. })
    ));
}

/// CCMM and the transpose encoded afresh at every call.
struct Fresh {
    shape: MatrixShape,
    encoder: heformer::ckks::Encoder,
}

impl Encodings for Fresh {
    fn product(&self, level: usize) -> heformer::Result<std::sync::Arc<MatrixProduct>> {
        MatrixProduct::new(self.shape, &self.encoder, level).map(std::sync::Arc::new)
    }

    fn transpose(&self, level: usize) -> heformer::Result<std::sync::Arc<Transpose>> {
        Transpose::new(&self.shape, &self.encoder, level).map(std::sync::Arc::new)
    }
}
