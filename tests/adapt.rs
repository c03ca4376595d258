//! A short run of the plaintext adaptation on the assets (MiniLM's first
//! layer, 192 Rotten Tomatoes sentences, one epoch): every figure is
//! produced, the exact twin on padded sequences agrees with the training
//! code's accuracy, the fitted ranges hold the measured extremes, and the
//! adapted weights survive a file round trip. Ignored by default (about a
//! minute on two cores):
//!
//! `cargo test --release --test adapt -- --ignored --nocapture`
//!
//! Without the assets of `scripts/fetch-assets.sh` it prints `SKIPPED` and
//! the reason, and passes. The full command is `heformer adapt` (README,
//! "Plaintext adaptation").

use heformer::assets::{describe_missing, AssetPaths};
use heformer::model::friendly::ApproximationRanges;
use heformer::model::train::adamw::{AdamWConfig, Decay};
use heformer::model::train::adapt::{adapt, AdaptEvent, AdaptOptions, Corpus};
use heformer::model::train::checkpoint::{friendly_from_bytes, friendly_to_bytes};
use heformer::model::train::params::Trainable;
use heformer::model::train::trainer::TrainOptions;

#[test]
#[ignore = "a minute of training on the assets; run with --ignored"]
fn adapt_one_layer_on_rotten_tomatoes() {
    let assets = AssetPaths::from_env();
    let mut needed = assets.minilm_files().to_vec();
    needed.push(assets.rotten_tomatoes());
    if let Some(reason) = describe_missing(&needed) {
        println!("SKIPPED adapt_one_layer_on_rotten_tomatoes: {reason}");
        return;
    }
    let stage = |epochs: usize, rate: f64, trainable: Trainable| TrainOptions {
        epochs,
        batch_size: 16,
        rate,
        warmup_fraction: 0.1,
        decay: Decay::Linear,
        adamw: AdamWConfig::default(),
        clip_norm: Some(1.0),
        trainable,
        seed: 1,
    };
    let options = AdaptOptions {
        layers: 1,
        seq_len: 32,
        corpus: Corpus::RottenTomatoes,
        test_fraction: 0.2,
        split_seed: 1,
        train_size: Some(192),
        test_size: Some(96),
        seed: 1,
        head: stage(4, 1e-3, Trainable::Head),
        fine_tune: stage(1, 1e-4, Trainable::All),
        baseline: true,
        scale_attention: true,
        calibration_samples: 64,
        ranges: ApproximationRanges {
            relu_bound: 64.0,
            variance: (1.0 / 256.0, 1024.0),
            ..ApproximationRanges::default()
        },
        range_margin: 1.5,
    };
    let mut steps = 0;
    let adapted = adapt(&assets, &options, &mut |event| match event {
        AdaptEvent::Stage(stage) => println!("{stage}"),
        AdaptEvent::Step { .. } => steps += 1,
        AdaptEvent::Trained { .. } => {}
    })
    .unwrap();
    let report = &adapted.report;
    println!("{}", serde_json::to_string(report).unwrap());
    // Head alone: 4 epochs of 12 batches, twice; fine-tuning 12, twice.
    assert_eq!(steps, 2 * (48 + 12));
    assert_eq!((report.examples, report.test_examples), (192, 96));
    let accuracies = [
        report.accuracy_exact_frozen.unwrap(),
        report.accuracy_exact_baseline.unwrap(),
        report.accuracy_friendly_before,
        report.accuracy_friendly_after,
        report.accuracy_friendly_polynomial,
    ];
    assert!(accuracies.iter().all(|a| (0.0..=1.0).contains(a)));
    assert_eq!(
        report.accuracy_friendly_exact_padded,
        report.accuracy_friendly_after
    );
    assert_eq!(report.attention_scales.len(), 1);
    let stats = &report.range_stats;
    let ranges = &report.ranges_after;
    assert!(stats.relu_max <= ranges.relu_bound && stats.tanh_max <= ranges.tanh_bound);
    assert!(stats.exp_min >= ranges.exp_argument.0);
    let bytes = friendly_to_bytes(&adapted.config, &adapted.weights).unwrap();
    let (config, weights) = friendly_from_bytes(&bytes, "adapted").unwrap();
    assert_eq!((config, weights), (adapted.config, adapted.weights));
}
