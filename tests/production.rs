//! Production-size checks, ignored in the default run (seconds each on one
//! core, mostly key generation). Run them with
//! `cargo test --release --test production -- --ignored --nocapture`.

mod common;

use common::Fixture;
use heformer::math::Complex;

fn rotate(v: &[Complex], k: i64) -> Vec<Complex> {
    let n = v.len() as i64;
    (0..n).map(|j| v[(j + k).rem_euclid(n) as usize]).collect()
}

/// Products down several levels, a rotation, a conjugation and a hoisted
/// batch, each against plain complex arithmetic.
fn production_preset(preset: &str, levels: usize) {
    let mut f = Fixture::new(preset, &[1, 5, -3], 100);
    let a = f.random_values(f.slots(), 1.0);
    let b = f.random_values(f.slots(), 1.0);
    let (ca, cb) = (f.encrypt(&a), f.encrypt(&b));
    f.assert_close(&format!("{preset} fresh"), &ca, &a);
    let mut acc = ca.clone();
    let mut want = a.clone();
    for _ in 0..levels {
        acc = f.evaluator.mul_relin_rescale_new(&acc, &cb).unwrap();
        want = want.iter().zip(&b).map(|(x, y)| *x * *y).collect();
        f.assert_close(&format!("{preset} product chain"), &acc, &want);
    }
    for (k, r) in [1i64, 5, -3]
        .iter()
        .zip(f.evaluator.rotate_hoisted_new(&ca, &[1, 5, -3]).unwrap())
    {
        f.assert_close(&format!("{preset} rotate {k}"), &r, &rotate(&a, *k));
    }
    let conj = f.evaluator.conjugate_new(&ca).unwrap();
    f.assert_close(
        &format!("{preset} conjugate"),
        &conj,
        &a.iter().map(|x| x.conj()).collect::<Vec<_>>(),
    );
}

#[test]
#[ignore = "production size: cargo test --release --test production -- --ignored"]
fn pn16_128() {
    production_preset("PN16_128", 6);
}

#[test]
#[ignore = "production size: cargo test --release --test production -- --ignored"]
fn pn15_128() {
    production_preset("PN15_128", 6);
}

#[test]
#[ignore = "production size: cargo test --release --test production -- --ignored"]
fn pn16_128_sparse_h192() {
    production_preset("PN16_128_SPARSE_H192", 6);
}
