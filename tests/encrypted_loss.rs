//! Loss gradients under encryption (`TEST_INSECURE_BOOT_N11_L9`, levels
//! refreshed by bootstrapping) against their `f64` twins: the
//! cross-entropy gradient `softmax(z) − onehot(y)` with the logits at every
//! fourth slot and large junk in the others (as the encrypted head leaves
//! them), the labels encrypted; the MSE gradient; bad input.

mod common;

use common::Fixture;
use heformer::circuits::boot::Bootstrapper;
use heformer::circuits::refresh::{Bootstrapping, NoRefresh, Refresh};
use heformer::error::Error;
use heformer::model::encrypted::loss::{mse_gradient, SoftmaxGradient};
use rand::Rng;

const PRESET: &str = "TEST_INSECURE_BOOT_N11_L9";
const SLOTS: usize = 256;
const CLASSES: usize = 3;
const STRIDE: usize = 4;
const BOUND: f64 = 4.0;

fn setup(seed: u64, extra: &[i64]) -> (Fixture, Bootstrapper) {
    common::with_sparse_bootstrapper(PRESET, SLOTS, extra, seed)
}

#[test]
fn softmax_gradient_against_its_twin() {
    let gradient = SoftmaxGradient::new(CLASSES, STRIDE, SLOTS, BOUND).unwrap();
    let (mut f, boot) = setup(91, &gradient.rotations());
    let level = boot.output_level();
    let mut logits = Vec::new();
    let mut cts = Vec::new();
    let mut labels = Vec::new();
    for example in 0..3 {
        // Junk of any size outside the class slots.
        let mut slots: Vec<f64> = (0..SLOTS)
            .map(|_| f.rng.random_range(-100.0..100.0))
            .collect();
        let z: Vec<f64> = (0..CLASSES)
            .map(|_| f.rng.random_range(-BOUND..BOUND))
            .collect();
        for (j, &z) in z.iter().enumerate() {
            slots[j * STRIDE] = z;
        }
        let mut onehot = vec![0.0; SLOTS];
        onehot[(example % CLASSES) * STRIDE] = 1.0;
        cts.push(f.encrypt_real_at(&slots, level));
        labels.push(f.encrypt_real_at(&onehot, level));
        logits.push(z);
    }
    let mut refresher = Bootstrapping::new(&boot);
    let grads = gradient
        .evaluate(&f.evaluator, &f.encoder, &cts, &labels, &mut refresher)
        .unwrap();
    for (example, (grad, z)) in grads.iter().zip(&logits).enumerate() {
        let softmax = gradient.twin(z);
        let exact: Vec<f64> = {
            let e: Vec<f64> = z.iter().map(|z| z.exp()).collect();
            let sum: f64 = e.iter().sum();
            e.iter().map(|e| e / sum).collect()
        };
        let got = f.decrypt(grad);
        let mut worst = 0.0_f64;
        for j in 0..CLASSES {
            let want = softmax[j] - f64::from(u8::from(j == example % CLASSES));
            worst = worst.max((got[j * STRIDE].re - want).abs());
            assert!(
                (softmax[j] - exact[j]).abs() < 1e-3,
                "the twin's softmax {softmax:?} against {exact:?}"
            );
        }
        let bits = -worst.log2();
        println!(
            "example {example}: logits {z:.3?}, softmax {softmax:.4?}: gradient to {bits:.1} bits"
        );
        assert!(bits >= 12.0, "example {example}: {bits:.1} bits");
    }
    println!("{} bootstraps", refresher.count());
}

#[test]
fn mse_gradient_and_bad_input() {
    let gradient = SoftmaxGradient::new(CLASSES, STRIDE, SLOTS, BOUND).unwrap();
    let (mut f, boot) = setup(92, &[]);
    let level = boot.output_level();
    let p: Vec<f64> = (0..SLOTS).map(|_| f.rng.random_range(-2.0..2.0)).collect();
    let y: Vec<f64> = (0..SLOTS).map(|_| f.rng.random_range(-2.0..2.0)).collect();
    let (cp, cy) = (f.encrypt_real_at(&p, level), f.encrypt_real_at(&y, level));
    let mut refresher = NoRefresh;
    let refresher: &mut dyn Refresh = &mut refresher;
    let out = mse_gradient(
        &f.evaluator,
        std::slice::from_ref(&cp),
        std::slice::from_ref(&cy),
        2.0,
        refresher,
    )
    .unwrap();
    let got = f.decrypt(&out[0]);
    let worst = (0..SLOTS).fold(0.0_f64, |w, i| {
        w.max((got[i].re - 2.0 * (p[i] - y[i])).abs())
    });
    assert!(worst < 1e-6, "MSE gradient off by {worst:e}");

    assert!(matches!(
        mse_gradient(&f.evaluator, std::slice::from_ref(&cp), &[], 2.0, refresher),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        gradient.evaluate(
            &f.evaluator,
            &f.encoder,
            std::slice::from_ref(&cp),
            &[],
            refresher
        ),
        Err(Error::LengthMismatch { .. })
    ));
    // Without its rotation keys, an error (not a panic).
    assert!(gradient
        .evaluate(
            &f.evaluator,
            &f.encoder,
            std::slice::from_ref(&cp),
            &[cy],
            refresher
        )
        .is_err());
    for (classes, stride, bound) in [(1, 4, 4.0), (3, 64, 4.0), (3, 4, 0.0)] {
        assert!(SoftmaxGradient::new(classes, stride, SLOTS, bound).is_err());
    }
}
