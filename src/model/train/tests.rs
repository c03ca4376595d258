//! Tests of the training machinery on tiny random shapes: each model's
//! forward against its inference code, each backward against central
//! finite differences (relative error printed), and a short training run.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::classifier::{loss_gradient, Differentiable, Sample};
use super::exact::{ExactBackprop, ExactWeights};
use super::friendly::FriendlyBackprop;
use super::head::HeadClassifier;
use super::ops::{cross_entropy, Functions};
use super::params::{Parameters, Trainable};
use super::trainer::{evaluate, train, TrainOptions};
use crate::model::config::tests::tiny_config;
use crate::model::friendly::{FriendlyConfig, FriendlyModel, FriendlyWeights, LoraTarget, Variant};
use crate::model::reference::ReferenceBert;
use crate::model::weights::tests::random_weights;

/// Inputs uniform in `±√3` (unit variance), `rows × width`.
fn random_input(rows: usize, width: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let half_width = 3.0_f64.sqrt();
    Array2::from_shape_simple_fn((rows, width), || rng.random_range(-half_width..=half_width))
}

/// The tiny friendly config with LoRA on every projection.
fn tiny_friendly_config() -> FriendlyConfig {
    FriendlyConfig {
        lora_targets: vec![
            LoraTarget::Query,
            LoraTarget::Key,
            LoraTarget::Value,
            LoraTarget::Output,
        ],
        ..FriendlyConfig::tiny()
    }
}

/// The central-difference step; the loss is `O(1)`, so rounding costs
/// about `1e-16/h` and truncation `h²`.
const STEP: f64 = 1e-5;
/// The largest relative error accepted between the backward and the
/// differences.
const TOLERANCE: f64 = 1e-5;

/// Compares the backward's gradient of the cross-entropy with central
/// differences on every weight; returns the worst relative error: per
/// tensor, the largest difference over the larger of the tensor's largest
/// gradient and 1e-3 of the largest gradient overall.
fn finite_difference_error<M: Differentiable>(
    model: &M,
    weights: &M::Weights,
    sample: &Sample,
    what: &str,
) -> f64 {
    let mut analytic = weights.zeroed();
    loss_gradient(model, weights, sample, 1.0, &mut analytic).unwrap();
    let loss = |probe: &M::Weights| {
        let (logits, _) = model
            .forward(probe, sample.input.view(), &sample.mask)
            .unwrap();
        cross_entropy(logits.view(), sample.label).unwrap().0
    };
    let gradients: Vec<(String, Vec<f64>)> = analytic
        .tensors_mut()
        .into_iter()
        .map(|t| (t.name, t.values.iter().copied().collect()))
        .collect();
    let overall = gradients
        .iter()
        .flat_map(|(_, g)| g.iter())
        .fold(0.0_f64, |m, g| m.max(g.abs()));
    let mut probe = weights.clone();
    let mut worst = (0.0_f64, String::new());
    for (index, (name, gradient)) in gradients.iter().enumerate() {
        let mut largest_difference = 0.0_f64;
        for (position, &expected) in gradient.iter().enumerate() {
            let original = value(&mut probe, index, position, None);
            value(&mut probe, index, position, Some(original + STEP));
            let plus = loss(&probe);
            value(&mut probe, index, position, Some(original - STEP));
            let minus = loss(&probe);
            value(&mut probe, index, position, Some(original));
            let numeric = (plus - minus) / (2.0 * STEP);
            largest_difference = largest_difference.max((numeric - expected).abs());
        }
        let scale = gradient.iter().fold(1e-3 * overall, |m, g| m.max(g.abs()));
        let relative = largest_difference / scale;
        if relative >= worst.0 {
            worst = (relative, name.clone());
        }
    }
    eprintln!(
        "{what}: backward vs central differences, worst relative error {:.2e} ({}), \
         largest gradient {overall:.2e}",
        worst.0, worst.1
    );
    assert!(overall > 1e-6, "{what}: the gradient vanished");
    worst.0
}

/// Reads (and with `Some`, writes) value `position` of tensor `index`.
fn value<P: Parameters>(weights: &mut P, index: usize, position: usize, set: Option<f64>) -> f64 {
    let mut tensors = weights.tensors_mut();
    let slot = tensors[index]
        .values
        .iter_mut()
        .nth(position)
        .expect("a value of the tensor");
    if let Some(new) = set {
        *slot = new;
    }
    *slot
}

fn friendly_sample(config: &FriendlyConfig, rows: usize, real: usize, seed: u64) -> Sample {
    Sample {
        input: random_input(rows, config.hidden, seed),
        mask: (0..rows).map(|i| i < real).collect(),
        label: seed as usize % config.classes,
    }
}

#[test]
fn friendly_forward_matches_the_inference_code() {
    for variant in [Variant::Exact, Variant::Polynomial] {
        friendly_forward_matches(variant);
    }
}

/// The taped forward through `variant`'s functions against the inference
/// code's.
fn friendly_forward_matches(variant: Variant) {
    let config = tiny_friendly_config();
    let weights = FriendlyWeights::random(&config, 3);
    let model = FriendlyModel::new(config.clone(), weights.clone()).unwrap();
    let functions = match variant {
        Variant::Exact => Functions::Exact,
        Variant::Polynomial => Functions::Polynomial(Box::new(model.polynomials().clone())),
    };
    let backprop = FriendlyBackprop::with_functions(config.clone(), functions).unwrap();
    let sample = friendly_sample(&config, 7, 5, 4);
    let trace = model
        .forward(sample.input.view(), &sample.mask, variant)
        .unwrap();
    let (logits, _) = backprop
        .forward(&weights, sample.input.view(), &sample.mask)
        .unwrap();
    let (all_logits, tape) = backprop
        .forward_all_rows(&weights, sample.input.view(), &sample.mask)
        .unwrap();
    // Same operations in the same order: equal to the last bit but for
    // the last layer's matrix products on one row instead of all.
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
    assert!(close(
        logits.as_slice().unwrap(),
        trace.logits.as_slice().unwrap()
    ));
    assert!(close(
        all_logits.as_slice().unwrap(),
        trace.logits.as_slice().unwrap()
    ));
    for (layer, expected) in tape.layers.iter().zip(&trace.layers) {
        assert_eq!(layer.attended, expected.attention);
        assert_eq!(layer.output, expected.ffn);
    }
}

#[test]
fn friendly_backward_matches_finite_differences() {
    let config = tiny_friendly_config();
    let backprop = FriendlyBackprop::new(config.clone()).unwrap();
    let weights = FriendlyWeights::random(&config, 5);
    let padded = friendly_sample(&config, 6, 4, 7);
    let error = finite_difference_error(&backprop, &weights, &padded, "friendly, 2 layers");
    assert!(error < TOLERANCE, "{error}");
    // One layer, no final norm, no LoRA on the output, a single token.
    let config = FriendlyConfig {
        layers: 1,
        final_layer_norm: false,
        ..FriendlyConfig::tiny()
    };
    let backprop = FriendlyBackprop::new(config.clone()).unwrap();
    let weights = FriendlyWeights::random(&config, 6);
    for sample in [
        friendly_sample(&config, 5, 5, 8),
        friendly_sample(&config, 1, 1, 9),
    ] {
        let error = finite_difference_error(&backprop, &weights, &sample, "friendly, 1 layer");
        assert!(error < TOLERANCE, "{error}");
    }
}

/// A tiny BERT (hidden 8, 2 heads, intermediate 12, 2 layers), its
/// baseline weights with a random head of 3 classes, and the embeddings of
/// `ids`.
fn tiny_exact(seed: u64, ids: &[u32], mask: &[bool]) -> (ExactBackprop, ExactWeights, Array2<f64>) {
    let bert = random_weights(&tiny_config(), seed);
    let head_config = FriendlyConfig {
        hidden: 8,
        heads: 2,
        ffn: 12,
        ..FriendlyConfig::tiny()
    };
    let head = FriendlyWeights::random(&head_config, seed).head;
    let weights = ExactWeights::from_bert(&bert, 2, head).unwrap();
    let backprop = ExactBackprop::for_bert(&bert);
    let embeddings = ReferenceBert::new(bert)
        .hidden_states(ids, mask, 0)
        .unwrap();
    (backprop, weights, embeddings)
}

#[test]
fn exact_forward_matches_the_reference_bert() {
    let ids = [2, 5, 7, 3, 0, 0];
    let mask = [true, true, true, true, false, false];
    let bert = random_weights(&tiny_config(), 11);
    let reference = ReferenceBert::new(bert.clone());
    let (backprop, weights, embeddings) = tiny_exact(11, &ids, &mask);
    let ours = backprop
        .hidden_states(&weights, embeddings.view(), &mask)
        .unwrap();
    let expected = reference.hidden_states(&ids, &mask, 2).unwrap();
    let difference = (&ours - &expected)
        .iter()
        .fold(0.0_f64, |m, d| m.max(d.abs()));
    assert!(difference < 1e-13, "{difference}");
    // The first-row shortcut gives the logits of the full computation.
    let (logits, tape) = backprop
        .forward(&weights, embeddings.view(), &mask)
        .unwrap();
    assert_eq!(tape.layers[1].output.nrows(), 1);
    let first = ours.row(0).to_owned();
    let (full, _) =
        super::head::head_forward(&weights.head, first.view(), &super::ops::Functions::Exact);
    assert!((&logits - &full).iter().all(|d| d.abs() < 1e-13));
}

#[test]
fn exact_backward_matches_finite_differences() {
    let ids = [2, 5, 7, 3, 9, 0];
    let mask = [true, true, true, true, true, false];
    let (backprop, weights, embeddings) = tiny_exact(12, &ids, &mask);
    let sample = Sample {
        input: embeddings,
        mask: mask.to_vec(),
        label: 2,
    };
    let error = finite_difference_error(&backprop, &weights, &sample, "exact BERT, 2 layers");
    assert!(error < TOLERANCE, "{error}");
}

#[test]
fn head_alone_matches_finite_differences() {
    let config = FriendlyConfig::tiny();
    let head = FriendlyWeights::random(&config, 13).head;
    let model = HeadClassifier {
        hidden: config.hidden,
    };
    let sample = Sample {
        input: random_input(1, config.hidden, 14),
        mask: vec![true],
        label: 1,
    };
    let error = finite_difference_error(&model, &head, &sample, "head alone");
    assert!(error < TOLERANCE, "{error}");
    let two_rows = Sample {
        input: random_input(2, config.hidden, 14),
        mask: vec![true, true],
        label: 1,
    };
    assert!(model
        .forward(&head, two_rows.input.view(), &two_rows.mask)
        .is_err());
}

#[test]
fn models_refuse_bad_inputs_and_weights() {
    let config = FriendlyConfig::tiny();
    let backprop = FriendlyBackprop::new(config.clone()).unwrap();
    let weights = FriendlyWeights::random(&config, 1);
    let input = random_input(4, config.hidden, 1);
    assert!(backprop
        .forward(&weights, input.view(), &[false; 4])
        .is_err());
    assert!(backprop
        .forward(&weights, input.view(), &[true; 3])
        .is_err());
    let long = random_input(config.seq_len + 1, config.hidden, 1);
    assert!(backprop
        .forward(&weights, long.view(), &vec![true; config.seq_len + 1])
        .is_err());
    let mut nan = input.clone();
    nan[[0, 0]] = f64::NAN;
    assert!(backprop.forward(&weights, nan.view(), &[true; 4]).is_err());
    let other = FriendlyWeights::random(
        &FriendlyConfig {
            ffn: 20,
            ..config.clone()
        },
        1,
    );
    assert!(backprop.check_weights(&other).is_err());
    let (exact, mut exact_weights, _) = tiny_exact(1, &[2, 3], &[true, true]);
    exact_weights.layers[1].intermediate.bias[0] = f64::INFINITY;
    assert!(exact.check_weights(&exact_weights).is_err());
}

/// Samples labelled by a fixed linear teacher on the mean of their rows.
fn teacher_samples(config: &FriendlyConfig, count: usize, seed: u64) -> Vec<Sample> {
    let teacher = random_input(config.hidden, config.classes, 99);
    (0..count as u64)
        .map(|i| {
            let rows = 3 + (i as usize % (config.seq_len - 2));
            let input = random_input(rows, config.hidden, seed + i);
            let scores = input.mean_axis(ndarray::Axis(0)).unwrap().dot(&teacher);
            let label = super::classifier::predicted_class(scores.view());
            Sample {
                input,
                mask: vec![true; rows],
                label,
            }
        })
        .collect()
}

#[test]
fn training_lowers_the_loss() {
    let config = FriendlyConfig::tiny();
    let backprop = FriendlyBackprop::new(config.clone()).unwrap();
    let mut weights = FriendlyWeights::random(&config, 21);
    let samples = teacher_samples(&config, 96, 1000);
    let before = evaluate(&backprop, &weights, &samples).unwrap();
    let options = TrainOptions {
        epochs: 12,
        batch_size: 16,
        rate: 3e-3,
        warmup_fraction: 0.1,
        decay: super::adamw::Decay::Linear,
        adamw: super::adamw::AdamWConfig::default(),
        clip_norm: Some(1.0),
        trainable: Trainable::All,
        seed: 5,
    };
    let mut steps = 0;
    let report = train(&backprop, &mut weights, &samples, &options, &mut |step| {
        steps = step.step;
        assert!(step.loss.is_finite() && step.rate <= 3e-3);
    })
    .unwrap();
    let after = evaluate(&backprop, &weights, &samples).unwrap();
    eprintln!(
        "tiny friendly on a linear teacher: loss {:.3} → {:.3}, accuracy {:.2} → {:.2}, \
         epoch losses {:?}",
        before.mean_loss, after.mean_loss, before.accuracy, after.accuracy, report.epoch_losses
    );
    assert_eq!((report.steps, steps), (72, 72));
    assert!(after.mean_loss < 0.5 * before.mean_loss);
    assert!(after.accuracy > before.accuracy);
    // Only the head moves when only the head is trained.
    let frozen = weights.clone();
    let head_only = TrainOptions {
        epochs: 1,
        trainable: Trainable::Head,
        ..options
    };
    train(&backprop, &mut weights, &samples, &head_only, &mut |_| {}).unwrap();
    assert_eq!(weights.layers, frozen.layers);
    assert_ne!(weights.head, frozen.head);
    // Bad options are errors.
    let no_epochs = TrainOptions {
        epochs: 0,
        ..head_only.clone()
    };
    assert!(train(&backprop, &mut weights, &samples, &no_epochs, &mut |_| {}).is_err());
    assert!(train(&backprop, &mut weights, &[], &head_only, &mut |_| {}).is_err());
    let mut too_long = samples[0].clone();
    too_long.input = random_input(9, config.hidden, 1);
    too_long.mask = vec![true; 9];
    assert!(evaluate(&backprop, &weights, &[too_long]).is_err());
}
