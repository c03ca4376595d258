//! Every evaluator operation against plain complex arithmetic.

mod common;

use common::Fixture;
use heformer::math::Complex;

const PRESET: &str = "TEST_INSECURE_N11";

fn rotate(v: &[Complex], k: i64) -> Vec<Complex> {
    let n = v.len() as i64;
    (0..n).map(|j| v[(j + k).rem_euclid(n) as usize]).collect()
}

#[test]
fn encode_decode_round_trip() {
    let mut f = Fixture::new(PRESET, &[], 1);
    for slots in [1usize, 4, f.slots()] {
        let v = f.random_values(slots, 1.0);
        let pt = f
            .encoder
            .encode_complex(&v, f.params.max_level(), f.params.default_scale())
            .unwrap();
        let got = f.encoder.decode(&pt).unwrap();
        let stats = common::PrecisionStats::compare(&v, &got);
        println!(
            "encode/decode {slots} slots: min {:.1} bits",
            stats.min_bits
        );
        // Rounding each coefficient costs at most 0.5·sqrt(N)/scale per slot (on average).
        assert!(
            stats.min_bits > f.params.default_scale().log2() - f.params.log_n() as f64 / 2.0 - 4.0
        );
    }
}

#[test]
fn encrypt_decrypt_public_and_secret_key() {
    let mut f = Fixture::new(PRESET, &[], 2);
    let v = f.random_values(f.slots(), 1.0);
    let ct = f.encrypt(&v);
    let public = f.assert_close("public-key encryption", &ct, &v);
    let mut sk_enc = heformer::ckks::Encryptor::new(
        f.ctx.clone(),
        heformer::ckks::EncryptionKey::Secret(f.sk.clone()),
        heformer::ckks::Prng::from_seed(9),
    )
    .unwrap();
    let scale = f.params.default_scale();
    for level in [1, f.params.max_level()] {
        let pt = f.encoder.encode_complex(&v, level, scale).unwrap();
        let ct = sk_enc.encrypt(&pt).unwrap();
        let secret = f.assert_close("secret-key encryption", &ct, &v);
        // The public-key noise u·e + e0 + e1·s is divided by P: what is left
        // is ModDown's rounding r0 + r1·s, √(h/12) for a secret of weight h
        // against σ for a secret-key encryption (1.7 bits more for this
        // dense secret, h ≈ 2N/3); undivided it would cost about
        // log2(σ·√(4N/3)/σ) = 5.7 bits more.
        println!(
            "level {level}: public key {:.1} bits, secret key {:.1} bits (mean)",
            public.mean_bits, secret.mean_bits
        );
        assert!(
            public.mean_bits > secret.mean_bits - 2.5,
            "public-key encryption {:.1} bits, secret-key {:.1} bits",
            public.mean_bits,
            secret.mean_bits
        );
    }
}

#[test]
fn additive_operations() {
    let mut f = Fixture::new(PRESET, &[], 3);
    let a = f.random_values(f.slots(), 1.0);
    let b = f.random_values(f.slots(), 1.0);
    let (ca, cb) = (f.encrypt(&a), f.encrypt(&b));
    let ev = &f.evaluator;
    let sum = ev.add_new(&ca, &cb).unwrap();
    f.assert_close(
        "add",
        &sum,
        &a.iter().zip(&b).map(|(x, y)| *x + *y).collect::<Vec<_>>(),
    );
    let diff = ev.sub_new(&ca, &cb).unwrap();
    f.assert_close(
        "sub",
        &diff,
        &a.iter().zip(&b).map(|(x, y)| *x - *y).collect::<Vec<_>>(),
    );
    let mut neg = ca.clone();
    ev.neg_assign(&mut neg).unwrap();
    f.assert_close("neg", &neg, &a.iter().map(|x| -*x).collect::<Vec<_>>());
    let pt = f
        .encoder
        .encode_complex(&b, f.params.max_level(), f.params.default_scale())
        .unwrap();
    let mut plus_plain = ca.clone();
    ev.add_plain_assign(&mut plus_plain, &pt).unwrap();
    f.assert_close(
        "add_plain",
        &plus_plain,
        &a.iter().zip(&b).map(|(x, y)| *x + *y).collect::<Vec<_>>(),
    );
    let mut minus_plain = ca.clone();
    ev.sub_plain_assign(&mut minus_plain, &pt).unwrap();
    f.assert_close(
        "sub_plain",
        &minus_plain,
        &a.iter().zip(&b).map(|(x, y)| *x - *y).collect::<Vec<_>>(),
    );
    let c = Complex::new(0.75, -1.25);
    let mut plus_const = ca.clone();
    ev.add_const_assign(&mut plus_const, c).unwrap();
    f.assert_close(
        "add_const",
        &plus_const,
        &a.iter().map(|x| *x + c).collect::<Vec<_>>(),
    );
    // Different levels: the higher operand is dropped to the lower level.
    let mut low = cb.clone();
    ev.drop_level_assign(&mut low, 2).unwrap();
    let mixed = ev.add_new(&ca, &low).unwrap();
    assert_eq!(mixed.level(), low.level());
    f.assert_close(
        "add across levels",
        &mixed,
        &a.iter().zip(&b).map(|(x, y)| *x + *y).collect::<Vec<_>>(),
    );
}

#[test]
fn constant_and_plaintext_products() {
    let mut f = Fixture::new(PRESET, &[], 4);
    let a = f.random_values(f.slots(), 1.0);
    let b = f.random_values(f.slots(), 1.0);
    let ca = f.encrypt(&a);
    let ev = &f.evaluator;
    let mut k = ca.clone();
    ev.mul_integer_assign(&mut k, -3).unwrap();
    f.assert_close(
        "mul_integer",
        &k,
        &a.iter().map(|x| x.scale(-3.0)).collect::<Vec<_>>(),
    );
    for c in [Complex::new(0.3, 0.0), Complex::new(-0.5, 0.8)] {
        let mut m = ca.clone();
        ev.mul_const_assign(&mut m, c).unwrap();
        ev.rescale_assign(&mut m).unwrap();
        assert!(
            (m.scale() / ca.scale() - 1.0).abs() < 1e-12,
            "mul_const then rescale keeps the scale"
        );
        f.assert_close(
            "mul_const",
            &m,
            &a.iter().map(|x| *x * c).collect::<Vec<_>>(),
        );
    }
    let mut mi = ca.clone();
    ev.mul_i_assign(&mut mi).unwrap();
    f.assert_close(
        "mul_i",
        &mi,
        &a.iter().map(|x| *x * Complex::I).collect::<Vec<_>>(),
    );
    let pt = f
        .encoder
        .encode_complex(&b, f.params.max_level(), f.params.default_scale())
        .unwrap();
    let mut mp = ca.clone();
    ev.mul_plain_assign(&mut mp, &pt).unwrap();
    let unrescaled = mp.clone();
    ev.rescale_assign(&mut mp).unwrap();
    f.assert_close(
        "mul_plain",
        &mp,
        &a.iter().zip(&b).map(|(x, y)| *x * *y).collect::<Vec<_>>(),
    );
    // The fused acc += ct ⊙ pt gives the words of a product and an addition.
    let mut fused = unrescaled.clone();
    ev.mul_plain_add_assign(&mut fused, &ca, &pt).unwrap();
    let separate = ev.add_new(&unrescaled, &unrescaled).unwrap();
    assert_eq!(
        f.decrypt(&fused),
        f.decrypt(&separate),
        "mul_plain_add against mul_plain + add"
    );
    // A product at another scale is refused and the accumulator kept.
    let mut acc = unrescaled.clone();
    let other = f
        .encoder
        .encode_complex(&b, f.params.max_level(), 2.0 * f.params.default_scale())
        .unwrap();
    assert!(ev.mul_plain_add_assign(&mut acc, &ca, &other).is_err());
    assert_eq!(f.decrypt(&acc), f.decrypt(&unrescaled));
}

#[test]
fn ciphertext_products_and_lazy_relinearization() {
    let mut f = Fixture::new(PRESET, &[], 5);
    let a = f.random_values(f.slots(), 1.0);
    let b = f.random_values(f.slots(), 1.0);
    let c = f.random_values(f.slots(), 1.0);
    let d = f.random_values(f.slots(), 1.0);
    let (ca, cb, cc, cd) = (f.encrypt(&a), f.encrypt(&b), f.encrypt(&c), f.encrypt(&d));
    let ev = &f.evaluator;
    let mut prod = ev.mul_relin_new(&ca, &cb).unwrap();
    ev.rescale_assign(&mut prod).unwrap();
    f.assert_close(
        "mul_relin_rescale",
        &prod,
        &a.iter().zip(&b).map(|(x, y)| *x * *y).collect::<Vec<_>>(),
    );
    // Lazy: a·b + c·d with one relinearization.
    let mut acc = ev.tensor_new(&ca, &cb).unwrap();
    assert_eq!(acc.degree(), 2);
    ev.add_assign(&mut acc, &ev.tensor_new(&cc, &cd).unwrap())
        .unwrap();
    let degree_two = f.decrypt(&acc);
    let want: Vec<Complex> = (0..a.len()).map(|i| a[i] * b[i] + c[i] * d[i]).collect();
    let stats = common::PrecisionStats::compare(&want, &degree_two);
    assert!(
        stats.min_bits > 20.0,
        "degree-2 decryption: {:.1} bits",
        stats.min_bits
    );
    ev.relinearize_assign(&mut acc).unwrap();
    assert_eq!(acc.degree(), 1);
    ev.rescale_assign(&mut acc).unwrap();
    f.assert_close("lazy relinearization", &acc, &want);
}

#[test]
fn fused_relinearize_rescale_matches_the_separate_steps() {
    let mut f = Fixture::new(PRESET, &[], 9);
    let a = f.random_values(f.slots(), 1.0);
    let b = f.random_values(f.slots(), 1.0);
    let (ca, cb) = (f.encrypt(&a), f.encrypt(&b));
    let ev = &f.evaluator;
    let want: Vec<Complex> = a.iter().zip(&b).map(|(x, y)| *x * *y).collect();
    let fused = ev.mul_relin_rescale_new(&ca, &cb).unwrap();
    let mut separate = ev.mul_relin_new(&ca, &cb).unwrap();
    ev.rescale_assign(&mut separate).unwrap();
    assert_eq!(
        (fused.level(), fused.degree()),
        (separate.level(), separate.degree())
    );
    assert_eq!(fused.scale(), separate.scale());
    f.assert_close("fused relinearize + rescale", &fused, &want);
    // Both decrypt to the same message up to a few units of rounding.
    let diff = ev.sub_new(&fused, &separate).unwrap();
    let stats =
        common::PrecisionStats::compare(&vec![Complex::ZERO; want.len()], &f.decrypt(&diff));
    assert!(
        stats.min_bits > f.required_bits(fused.scale()),
        "{:.1} bits",
        stats.min_bits
    );
    // Down the whole chain with the fused form.
    let mut acc = ca.clone();
    let mut want = a.clone();
    while acc.level() > 0 {
        acc = ev.mul_relin_rescale_new(&acc, &cb).unwrap();
        want = want.iter().zip(&b).map(|(x, y)| *x * *y).collect();
        f.assert_close("fused chain", &acc, &want);
    }
    // At level 0 the product of two scale-2^45 messages cannot be held.
    let err = ev.tensor_new(&acc, &acc).unwrap_err();
    assert!(
        matches!(err, heformer::Error::OutOfRange { op: "tensor", .. }),
        "{err}"
    );
    // A small-scale product at level 0 has nothing left to rescale by.
    let small = f.encoder.encode_complex(&a, 0, 2f64.powi(20)).unwrap();
    let small = f.encryptor.encrypt(&small).unwrap();
    let mut t = f.evaluator.tensor_new(&small, &small).unwrap();
    let err = f.evaluator.relinearize_rescale_assign(&mut t).unwrap_err();
    assert!(
        matches!(
            err,
            heformer::Error::OutOfLevels {
                op: "relinearize_rescale",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rotations_conjugation_hoisting_and_sums() {
    let steps = [1i64, 2, 3, 5, -1, -7, 64];
    let mut f = Fixture::new(PRESET, &[1, 2, 3, 4, 5, -1, -7, 64, 8, 16], 6);
    let a = f.random_values(f.slots(), 1.0);
    let ca = f.encrypt(&a);
    let ev = &f.evaluator;
    for &k in &steps {
        let r = ev.rotate_new(&ca, k).unwrap();
        f.assert_close(&format!("rotate {k}"), &r, &rotate(&a, k));
    }
    let hoisted = ev.rotate_hoisted_new(&ca, &steps).unwrap();
    for (&k, r) in steps.iter().zip(&hoisted) {
        f.assert_close(&format!("hoisted rotate {k}"), r, &rotate(&a, k));
    }
    let conj = ev.conjugate_new(&ca).unwrap();
    f.assert_close(
        "conjugate",
        &conj,
        &a.iter().map(|x| x.conj()).collect::<Vec<_>>(),
    );
    let summed = ev.rotate_and_sum_new(&ca, 4, 8).unwrap();
    let want: Vec<Complex> = (0..a.len())
        .map(|j| (0..8).fold(Complex::ZERO, |acc, i| acc + a[(j + 4 * i) % a.len()]))
        .collect();
    f.assert_close("rotate_and_sum stride 4 count 8", &summed, &want);
}

#[test]
fn key_switching_at_every_level() {
    // Fewer (and truncated) digits at lower levels; level 0 has one digit.
    let mut f = Fixture::new(PRESET, &[1, -2], 10);
    let a = f.random_values(f.slots(), 1.0);
    let b = f.random_values(f.slots(), 1.0);
    let mut ca = f.encrypt(&a);
    let cb = f.encrypt(&b);
    let ev = &f.evaluator;
    for level in (0..=f.params.max_level()).rev() {
        let drop = ca.level() - level;
        ev.drop_level_assign(&mut ca, drop).unwrap();
        assert_eq!(ca.level(), level);
        let r = ev.rotate_new(&ca, -2).unwrap();
        f.assert_close(&format!("rotate -2 at level {level}"), &r, &rotate(&a, -2));
        let c = ev.conjugate_new(&ca).unwrap();
        f.assert_close(
            &format!("conjugate at level {level}"),
            &c,
            &a.iter().map(|x| x.conj()).collect::<Vec<_>>(),
        );
        if level == 0 {
            // Scale 2^90 cannot live under q_0 alone: a clear error, not garbage.
            let err = ev.mul_relin_new(&ca, &cb).unwrap_err();
            assert!(
                matches!(err, heformer::Error::OutOfRange { op: "tensor", .. }),
                "{err}"
            );
            continue;
        }
        let p = ev.mul_relin_new(&ca, &cb).unwrap();
        let want: Vec<Complex> = a.iter().zip(&b).map(|(x, y)| *x * *y).collect();
        let got = f.decrypt(&p);
        let stats = common::PrecisionStats::compare(&want, &got);
        assert!(
            stats.min_bits > f.required_bits(f.params.default_scale()),
            "relinearize at level {level}: {:.1} bits",
            stats.min_bits
        );
    }
}

#[test]
fn sparse_slots_rotate_within_their_count() {
    let mut f = Fixture::new(PRESET, &[1, 3], 7);
    let a = f.random_values(16, 1.0);
    let ca = f.encrypt(&a);
    assert_eq!(ca.slots(), 16);
    let r = f.evaluator.rotate_new(&ca, 3).unwrap();
    f.assert_close("sparse rotate 3", &r, &rotate(&a, 3));
    let mut p = f.evaluator.mul_relin_new(&ca, &r).unwrap();
    f.evaluator.rescale_assign(&mut p).unwrap();
    let want: Vec<Complex> = a.iter().zip(rotate(&a, 3)).map(|(x, y)| *x * y).collect();
    f.assert_close("sparse product", &p, &want);
}

#[test]
fn multiplies_down_the_whole_chain() {
    for preset in ["TEST_INSECURE_N11", "TEST_INSECURE_N12"] {
        let mut f = Fixture::new(preset, &[], 8);
        let a = f.random_values(f.slots(), 1.0);
        let b = f.random_values(f.slots(), 1.0);
        let mut acc = f.encrypt(&a);
        let cb = f.encrypt(&b);
        let mut want = a.clone();
        while acc.level() > 0 {
            acc = f.evaluator.mul_relin_new(&acc, &cb).unwrap();
            f.evaluator.rescale_assign(&mut acc).unwrap();
            want = want.iter().zip(&b).map(|(x, y)| *x * *y).collect();
            f.assert_close(&format!("{preset} chain"), &acc, &want);
        }
    }
}

/// A plaintext of fewer slots multiplies (and adds to) a ciphertext of more
/// as its periodic extension; one whose slot count does not divide the
/// ciphertext's is refused.
#[test]
fn plaintexts_of_fewer_slots_repeat() {
    let mut f = Fixture::new(PRESET, &[], 14);
    let a = f.random_values(f.slots(), 1.0);
    let period = f.random_values(8, 1.0);
    let ca = f.encrypt(&a);
    let level = ca.level();
    let (ev, encoder) = (&f.evaluator, &f.encoder);
    let pt = encoder
        .encode_complex(&period, level, f.params.q()[level] as f64)
        .unwrap();
    let mut product = ca.clone();
    ev.mul_plain_assign(&mut product, &pt).unwrap();
    ev.rescale_assign(&mut product).unwrap();
    let want: Vec<Complex> = a
        .iter()
        .enumerate()
        .map(|(i, x)| *x * period[i % period.len()])
        .collect();
    f.assert_close("mul_plain, 8-slot plaintext", &product, &want);
    let mut sum = ca.clone();
    let pt = encoder.encode_complex(&period, level, ca.scale()).unwrap();
    ev.add_plain_assign(&mut sum, &pt).unwrap();
    let want: Vec<Complex> = a
        .iter()
        .enumerate()
        .map(|(i, x)| *x + period[i % period.len()])
        .collect();
    f.assert_close("add_plain, 8-slot plaintext", &sum, &want);
    // A 16-slot plaintext on an 8-slot ciphertext.
    let wider = encoder.encode_complex(&a[..16], level, ca.scale()).unwrap();
    let narrow = encoder.encode_complex(&a[..8], level, ca.scale()).unwrap();
    let mut narrow_ct = f.encryptor.encrypt(&narrow).unwrap();
    assert!(matches!(
        f.evaluator.add_plain_assign(&mut narrow_ct, &wider),
        Err(heformer::Error::LengthMismatch { .. })
    ));
}
