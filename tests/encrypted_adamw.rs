//! AdamW under encryption (`TEST_INSECURE_BOOT_N11_L9`, levels refreshed
//! by bootstrapping) against its `f64` twin: three steps of a warm-up
//! schedule (its last rate 0) on two parameter ciphertexts (one with
//! weight decay), fresh gradients of two magnitudes each step (the larger
//! clipped); the batch mean of gradients; the clip alone; bad input.

mod common;

use common::{Fixture, PrecisionStats};
use heformer::circuits::boot::Bootstrapper;
use heformer::circuits::functions;
use heformer::circuits::refresh::{Bootstrapping, Refresh};
use heformer::ckks::Ciphertext;
use heformer::error::Error;
use heformer::math::Complex;
use heformer::model::encrypted::adamw::{
    mean_gradient, AdamWTwin, EncryptedAdamW, EncryptedAdamWConfig,
};
use heformer::model::train::adamw::{Decay, Schedule};
use rand::Rng;

const PRESET: &str = "TEST_INSECURE_BOOT_N11_L9";
const SLOTS: usize = 256;

fn setup(seed: u64) -> (Fixture, Bootstrapper) {
    common::with_sparse_bootstrapper(PRESET, SLOTS, &[], seed)
}

fn decrypt(f: &Fixture, ct: &Ciphertext) -> Vec<f64> {
    f.decrypt(ct)[..SLOTS].iter().map(|z| z.re).collect()
}

fn random(f: &mut Fixture, bound: f64) -> Vec<f64> {
    (0..SLOTS)
        .map(|_| f.rng.random_range(-bound..bound))
        .collect()
}

/// The bits of `got` against `want` relative to `reference`'s largest
/// magnitude.
fn bits(got: &[f64], want: &[f64], reference: f64) -> f64 {
    let error = got
        .iter()
        .zip(want)
        .fold(0.0_f64, |e, (a, b)| e.max((a - b).abs()));
    -(error / reference).log2()
}

#[test]
fn encrypted_adamw_tracks_its_twin() {
    let (mut f, boot) = setup(81);
    let config = EncryptedAdamWConfig::default();
    let decay = vec![true, false];
    let mut encrypted = EncryptedAdamW::new(config, decay.clone()).unwrap();
    let mut twin = AdamWTwin::new(config, decay).unwrap();
    let schedule = Schedule::new(1e-2, 2, 3, Decay::Linear).unwrap();
    let mut plain: Vec<Vec<f64>> = (0..2).map(|_| random(&mut f, 1.0)).collect();
    let start = plain.clone();
    let level = boot.output_level();
    let mut params: Vec<Ciphertext> = plain.iter().map(|p| f.encrypt_real_at(p, level)).collect();
    let mut refresher = Bootstrapping::new(&boot);
    for step in 1..=3 {
        // Gradients of several magnitudes, as in training; the first
        // reaches beyond the clip level G = 2.
        let gradients: Vec<Vec<f64>> = (0..2)
            .map(|k| random(&mut f, if k == 0 { 8.0 } else { 0.05 }))
            .collect();
        let cts: Vec<Ciphertext> = gradients
            .iter()
            .map(|g| f.encrypt_real_at(g, level))
            .collect();
        let rate = schedule.rate(step);
        encrypted
            .step(&f.evaluator, &mut params, &cts, rate, &mut refresher)
            .unwrap();
        twin.step(&mut plain, &gradients, rate).unwrap();
        for (k, (ct, want)) in params.iter().zip(&plain).enumerate() {
            let got = decrypt(&f, ct);
            let moved: Vec<f64> = want.iter().zip(&start[k]).map(|(a, b)| a - b).collect();
            let scale = moved.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
            // The update to 14 bits (the encrypted and twin updates differ
            // by CKKS noise and bootstrapping only).
            let b = bits(&got, want, scale);
            println!(
                "step {step} parameter {k}: the update ({scale:.2e} at most) to {b:.1} bits, level {}",
                ct.level()
            );
            assert!(b >= 14.0, "step {step} parameter {k}: {b:.1} bits");
        }
        let ((m, v), (m_twin, v_twin)) = (encrypted.moments(), twin.moments());
        for k in 0..2 {
            let (got_m, got_v) = (decrypt(&f, &m[k]), decrypt(&f, &v[k]));
            let bound = |x: &[f64]| x.iter().fold(0.0_f64, |b, y| b.max(y.abs()));
            let (bm, bv) = (
                bits(&got_m, &m_twin[k], bound(&m_twin[k])),
                bits(&got_v, &v_twin[k], bound(&v_twin[k])),
            );
            assert!(
                bm >= 14.0 && bv >= 14.0,
                "moments of {k}: {bm:.1} and {bv:.1} bits"
            );
        }
    }
    assert_eq!(encrypted.steps(), 3);
    println!("3 steps: {} bootstraps", refresher.count());
}

/// The optimizer's clip under encryption against its `f64` evaluation and
/// against the exact clip, on values across its whole range.
#[test]
fn the_clip_tracks_its_twin() {
    let (mut f, boot) = setup(84);
    let config = EncryptedAdamWConfig::default();
    let clip = config.clip().unwrap().unwrap();
    let (limit, range) = (clip.limit(), clip.range());
    let values: Vec<f64> = (0..SLOTS)
        .map(|i| match i % 4 {
            0 => f.rng.random_range(-range..range),
            1 => f.rng.random_range(-8.0 * limit..8.0 * limit),
            _ => f.rng.random_range(-limit..limit),
        })
        .collect();
    let ct = f.encrypt_real_at(&values, boot.output_level());
    let mut refresher = Bootstrapping::new(&boot);
    let clipped = functions::clip_batch(&f.evaluator, &[ct], &clip, &mut refresher).unwrap();
    let got = decrypt(&f, &clipped[0]);
    let twin: Vec<f64> = values.iter().map(|&x| clip.eval(x)).collect();
    let b = bits(&got, &twin, limit);
    let exact_error = values
        .iter()
        .zip(&twin)
        .filter(|(x, _)| (x.abs() - limit).abs() >= limit / 4.0)
        .fold(0.0_f64, |e, (x, y)| {
            e.max((x.clamp(-limit, limit) - y).abs() / x.abs().max(limit))
        });
    println!(
        "clip to [-{limit}, {limit}] on [-{range}, {range}]: {b:.1} bits against the twin \
         (relative to {limit}), twin against the exact clip {exact_error:.2e} relative, {} bootstraps",
        refresher.count()
    );
    assert!(b >= 14.0, "{b:.1} bits");
    assert!(exact_error <= clip.sign().max_error() * (1.0 + 1e-9));
}

#[test]
fn batch_mean_and_bad_input() {
    let (mut f, boot) = setup(82);
    let level = boot.output_level();
    let batch: Vec<Vec<Vec<f64>>> = (0..3)
        .map(|_| (0..2).map(|_| random(&mut f, 1.0)).collect())
        .collect();
    let encrypted: Vec<Vec<Ciphertext>> = batch
        .iter()
        .map(|example| {
            example
                .iter()
                .map(|g| f.encrypt_real_at(g, level))
                .collect()
        })
        .collect();
    let mean = mean_gradient(&f.evaluator, &encrypted).unwrap();
    for (k, ct) in mean.iter().enumerate() {
        let want: Vec<Complex> = (0..SLOTS)
            .map(|i| Complex::new(batch.iter().map(|e| e[k][i]).sum::<f64>() / 3.0, 0.0))
            .collect();
        let stats = PrecisionStats::compare(&want, &f.decrypt(ct)[..SLOTS]);
        assert!(stats.min_bits >= 20.0, "mean {k}: {stats:?}");
    }
    assert!(mean_gradient(&f.evaluator, &[]).is_err());
    let ragged = vec![encrypted[0].clone(), encrypted[1][..1].to_vec()];
    assert!(matches!(
        mean_gradient(&f.evaluator, &ragged),
        Err(Error::LengthMismatch { .. })
    ));

    let mut optimizer =
        EncryptedAdamW::new(EncryptedAdamWConfig::default(), vec![true, false]).unwrap();
    let mut params = encrypted[0].clone();
    let mut refresher = heformer::circuits::refresh::NoRefresh;
    let refresher: &mut dyn Refresh = &mut refresher;
    for (gradients, rate) in [(&encrypted[1][..1], 1e-3), (&encrypted[1][..], f64::NAN)] {
        assert!(optimizer
            .step(&f.evaluator, &mut params, gradients, rate, refresher)
            .is_err());
    }
    assert!(optimizer
        .step(
            &f.evaluator,
            &mut params[..1],
            &encrypted[1][..1],
            1e-3,
            refresher
        )
        .is_err());
    assert_eq!(optimizer.steps(), 0);
    assert!(optimizer.moments().0.is_empty());
    for bad in [
        EncryptedAdamWConfig {
            gradient_bound: 0.0,
            ..EncryptedAdamWConfig::default()
        },
        EncryptedAdamWConfig {
            clip_range: Some(1.0),
            ..EncryptedAdamWConfig::default()
        },
    ] {
        assert!(EncryptedAdamW::new(bad, vec![true]).is_err());
    }
    // The twin refuses a gradient beyond the clip range, and changes
    // nothing.
    let config = EncryptedAdamWConfig::default();
    let mut twin = AdamWTwin::new(config, vec![true]).unwrap();
    let mut params = vec![vec![0.5; 4]];
    let beyond = vec![vec![0.1, -300.0, 0.2, 0.0]];
    assert!(matches!(
        twin.step(&mut params, &beyond, 1e-3),
        Err(Error::OutOfRange { .. })
    ));
    assert_eq!(params, vec![vec![0.5; 4]]);
    assert!(twin.moments().0.is_empty());
}

/// Two steps, a checkpoint, a fresh optimizer loaded from it and a third
/// step give the very ciphertexts of three uninterrupted steps; a damaged
/// checkpoint is an error, and a failed save leaves the old one whole.
#[test]
fn a_resumed_run_matches_an_uninterrupted_one() {
    use heformer::ckks::serialize::ciphertext_to_bytes;
    use heformer::model::encrypted::checkpoint::{load_checkpoint, save_checkpoint};

    let (mut f, boot) = setup(83);
    let level = boot.output_level();
    let config = EncryptedAdamWConfig::default();
    let decay = vec![true, false];
    let start: Vec<Ciphertext> = (0..2)
        .map(|_| {
            let p = random(&mut f, 1.0);
            f.encrypt_real_at(&p, level)
        })
        .collect();
    let gradients: Vec<Vec<Ciphertext>> = (0..3)
        .map(|_| {
            (0..2)
                .map(|_| {
                    let g = random(&mut f, 1.0);
                    f.encrypt_real_at(&g, level)
                })
                .collect()
        })
        .collect();
    let rates = [1e-2, 8e-3, 5e-3];
    let run = |optimizer: &mut EncryptedAdamW,
               params: &mut Vec<Ciphertext>,
               steps: std::ops::Range<usize>| {
        let mut refresher = Bootstrapping::new(&boot);
        for step in steps {
            optimizer
                .step(
                    &f.evaluator,
                    params,
                    &gradients[step],
                    rates[step],
                    &mut refresher,
                )
                .unwrap();
        }
    };
    let bytes = |cts: &[Ciphertext]| -> Vec<Vec<u8>> {
        cts.iter()
            .map(|ct| ciphertext_to_bytes(&f.ctx, ct).unwrap())
            .collect()
    };

    let mut whole = EncryptedAdamW::new(config, decay.clone()).unwrap();
    let mut whole_params = start.clone();
    run(&mut whole, &mut whole_params, 0..3);

    let dir = std::env::temp_dir().join(format!("heformer-checkpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.ckpt");
    {
        let mut first = EncryptedAdamW::new(config, decay.clone()).unwrap();
        let mut params = start.clone();
        run(&mut first, &mut params, 0..2);
        save_checkpoint(&f.ctx, &path, &params, &first).unwrap();
        // A save that fails (no parameters) leaves it whole.
        assert!(save_checkpoint(&f.ctx, &path, &params[..0], &first).is_err());
    }
    let (mut params, mut resumed) = load_checkpoint(&f.ctx, &path).unwrap();
    assert_eq!(resumed.steps(), 2);
    run(&mut resumed, &mut params, 2..3);
    assert!(bytes(&params) == bytes(&whole_params), "parameters differ");
    let (m, v) = resumed.moments();
    let (m_whole, v_whole) = whole.moments();
    assert!(
        bytes(m) == bytes(m_whole) && bytes(v) == bytes(v_whole),
        "moments differ"
    );
    println!("resumed after 2 of 3 steps: every ciphertext identical");

    // Damage: truncation, a flipped byte, another magic line, trailing bytes.
    let good = std::fs::read(&path).unwrap();
    let damaged = |name: &str, bytes: Vec<u8>| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let result = load_checkpoint(&f.ctx, &p);
        assert!(result.is_err(), "{name}: accepted");
    };
    damaged("truncated", good[..good.len() - 100].to_vec());
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    damaged("flipped", flipped);
    let mut magic = good.clone();
    magic[0] = b'H';
    damaged("magic", magic);
    let mut trailing = good.clone();
    trailing.push(0);
    damaged("trailing", trailing);
    assert!(load_checkpoint(&f.ctx, &dir.join("missing")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
