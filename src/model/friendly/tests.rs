//! Tests of the friendly transformer on the tiny config: the polynomial twin
//! against the exact forward per layer (in bits), the exact forward against
//! a naive loop implementation, input and config errors, range guards.

use ndarray::{Array1, Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::error::Error;

/// Embeddings uniform in `±√3` (unit variance), `rows × hidden`.
fn embeddings(rows: usize, hidden: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let half_width = 3.0_f64.sqrt();
    Array2::from_shape_simple_fn((rows, hidden), || {
        rng.random_range(-half_width..=half_width)
    })
}

fn tiny_model(seed: u64) -> FriendlyModel {
    let config = FriendlyConfig::tiny();
    let weights = FriendlyWeights::random(&config, seed);
    FriendlyModel::new(config, weights).unwrap()
}

#[test]
fn polynomial_twin_tracks_the_exact_forward_layer_by_layer() {
    let model = tiny_model(7);
    let errors = model.polynomials().errors();
    let mask = [true, true, true, true, true, true, false, false];
    let input = embeddings(8, 16, 8);
    let exact = model.forward(input.view(), &mask, Variant::Exact).unwrap();
    let twin = model
        .forward(input.view(), &mask, Variant::Polynomial)
        .unwrap();
    assert_eq!(exact.violations, RangeViolations::default());
    assert_eq!(twin.violations, RangeViolations::default());
    let worst = model.worst_relative_fit_error();
    let fitted_bits = -worst.log2();
    eprintln!("fitted errors {errors:?}; worst {worst:.3e} = 2^-{fitted_bits:.1}");
    for (stage, stage_bits) in twin.agreement_bits(&exact) {
        eprintln!("tiny twin vs exact, {stage:>17}: {stage_bits:5.1} bits");
        assert!(
            stage_bits >= fitted_bits - SLACK_BITS,
            "{stage}: {stage_bits:.1} bits, below {fitted_bits:.1} - {SLACK_BITS}"
        );
    }
}

/// Amplification allowed between the worst fitted error and a stage's
/// relative error, 2^4: a stage adds the errors of up to four
/// approximations (2 bits), carried through projections whose gains on the
/// tiny model are a few units (2 bits). The printout shows the margin used
/// (about 1 bit).
const SLACK_BITS: f64 = 4.0;

/// The exact forward written out with scalar loops, from the formulas of
/// [`forward`](super::forward), independently of its matrix code.
fn naive_logits(model: &FriendlyModel, input: ArrayView2<f64>, mask: &[bool]) -> Vec<f64> {
    let config = model.config();
    let weights = model.weights();
    let (n, hidden) = input.dim();
    let affine = |x: &[f64], dense: &Dense| -> Vec<f64> {
        (0..dense.bias.len())
            .map(|o| {
                dense.bias[o]
                    + (0..x.len())
                        .map(|i| x[i] * dense.weight[[i, o]])
                        .sum::<f64>()
            })
            .collect()
    };
    let projection = |x: &[f64], p: &Projection| -> Vec<f64> {
        let mut out = affine(x, &p.dense);
        if let Some(lora) = &p.lora {
            for (o, value) in out.iter_mut().enumerate() {
                for r in 0..lora.a.ncols() {
                    let xa: f64 = (0..x.len()).map(|i| x[i] * lora.a[[i, r]]).sum();
                    *value += xa * lora.b[[r, o]];
                }
            }
        }
        out
    };
    let norm = |x: &[f64], ln: &crate::model::weights::LayerNormWeights| -> Vec<f64> {
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64;
        let sd = (var + config.layer_norm_eps).sqrt();
        (0..x.len())
            .map(|i| ln.gamma[i] * (x[i] - mean) / sd + ln.beta[i])
            .collect()
    };
    let mut stream: Vec<Vec<f64>> = (0..n).map(|i| input.row(i).to_vec()).collect();
    let d = config.head_size();
    for layer in &weights.layers {
        let normed: Vec<Vec<f64>> = stream
            .iter()
            .map(|x| norm(x, &layer.attention_norm))
            .collect();
        let q: Vec<Vec<f64>> = normed.iter().map(|x| projection(x, &layer.query)).collect();
        let k: Vec<Vec<f64>> = normed.iter().map(|x| projection(x, &layer.key)).collect();
        let v: Vec<Vec<f64>> = normed.iter().map(|x| projection(x, &layer.value)).collect();
        for i in 0..n {
            let mut context = vec![0.0; hidden];
            for (j, &keep) in mask.iter().enumerate() {
                for h in 0..config.heads {
                    let distance: f64 = (h * d..(h + 1) * d)
                        .map(|c| (q[i][c] - k[j][c]).powi(2))
                        .sum();
                    let weight = if keep {
                        (-distance / (2.0 * (d as f64).sqrt())).exp()
                    } else {
                        0.0
                    };
                    for c in h * d..(h + 1) * d {
                        context[c] += weight * v[j][c];
                    }
                }
            }
            let attended = projection(&context, &layer.output);
            stream[i]
                .iter_mut()
                .zip(attended)
                .for_each(|(x, a)| *x += a);
        }
        for x in stream.iter_mut() {
            let g = norm(x, &layer.ffn_norm);
            let gate = affine(&g, &layer.gate);
            let up = affine(&g, &layer.up);
            let glu: Vec<f64> = gate.iter().zip(&up).map(|(a, b)| a.max(0.0) * b).collect();
            x.iter_mut()
                .zip(affine(&glu, &layer.down))
                .for_each(|(x, f)| *x += f);
        }
    }
    let first = match &weights.final_norm {
        Some(ln) => norm(&stream[0], ln),
        None => stream[0].clone(),
    };
    let head = &weights.head;
    let hidden_tanh: Vec<f64> = affine(&affine(&first, &head.bottleneck), &head.widen)
        .into_iter()
        .map(f64::tanh)
        .collect();
    affine(&hidden_tanh, &head.classifier)
}

#[test]
fn exact_forward_matches_naive_loops() {
    let mut config = FriendlyConfig::tiny();
    config.lora_targets = vec![LoraTarget::Value, LoraTarget::Output, LoraTarget::Query];
    let model = FriendlyModel::new(config.clone(), FriendlyWeights::random(&config, 3)).unwrap();
    let mask = [true, false, true, true, true];
    let input = embeddings(5, 16, 4);
    let trace = model.forward(input.view(), &mask, Variant::Exact).unwrap();
    let naive = naive_logits(&model, input.view(), &mask);
    let difference = super::forward::agreement(&trace.logits, &naive);
    eprintln!("exact forward vs naive loops: {difference:.1} bits");
    assert!(difference > 45.0, "{difference}");
}

#[test]
fn padded_rows_do_not_reach_real_ones() {
    let model = tiny_model(5);
    let input = embeddings(6, 16, 6);
    let mask = [true, true, true, true, false, false];
    let mut changed = input.clone();
    changed.row_mut(5).mapv_inplace(|v| -v);
    for variant in [Variant::Exact, Variant::Polynomial] {
        let a = model.forward(input.view(), &mask, variant).unwrap();
        let b = model.forward(changed.view(), &mask, variant).unwrap();
        for (x, y) in a.layers.iter().zip(&b.layers) {
            assert_eq!(
                x.ffn.slice(ndarray::s![..4, ..]),
                y.ffn.slice(ndarray::s![..4, ..])
            );
        }
        assert_eq!(a.logits, b.logits);
    }
}

fn expect_invalid(config: FriendlyConfig, expected: &str) {
    let weights = FriendlyWeights::random(&FriendlyConfig::tiny(), 1);
    match FriendlyModel::new(config, weights) {
        Err(Error::InvalidParameters(message)) => {
            assert!(message.contains(expected), "{expected}: {message}")
        }
        other => panic!("{expected}: expected an invalid-parameters error, got {other:?}"),
    }
}

#[test]
fn bad_configs_are_errors() {
    let tiny = FriendlyConfig::tiny();
    expect_invalid(
        FriendlyConfig {
            heads: 3,
            ..tiny.clone()
        },
        "not a multiple of heads 3",
    );
    expect_invalid(
        FriendlyConfig {
            lora_rank: 0,
            ..tiny.clone()
        },
        "lora_rank 0",
    );
    expect_invalid(
        FriendlyConfig {
            lora_rank: 16,
            ..tiny.clone()
        },
        "lora_rank 16",
    );
    expect_invalid(
        FriendlyConfig {
            ffn: 0,
            ..tiny.clone()
        },
        "ffn is 0",
    );
    expect_invalid(
        FriendlyConfig {
            lora_targets: vec![LoraTarget::Key, LoraTarget::Key],
            ..tiny.clone()
        },
        "repeat",
    );
    let mut ranges = tiny.ranges.clone();
    ranges.exp_argument = (-20000.0, 0.0);
    expect_invalid(
        FriendlyConfig {
            ranges,
            ..tiny.clone()
        },
        "exp_argument",
    );
    let mut ranges = tiny.ranges.clone();
    ranges.variance = (0.0, 1.0);
    expect_invalid(
        FriendlyConfig {
            ranges,
            ..tiny.clone()
        },
        "variance",
    );
    // Weights of another shape.
    expect_invalid(
        FriendlyConfig {
            ffn: 20,
            ..tiny.clone()
        },
        "gate weight",
    );
    expect_invalid(
        FriendlyConfig {
            lora_targets: vec![LoraTarget::Query],
            ..tiny
        },
        "key: LoRA adapter present",
    );
}

#[test]
fn bad_inputs_are_errors() {
    let model = tiny_model(2);
    let too_long = embeddings(9, 16, 1);
    assert!(matches!(
        model.forward(too_long.view(), &[true; 9], Variant::Exact),
        Err(Error::OutOfRange { .. })
    ));
    let empty = Array2::<f64>::zeros((0, 16));
    assert!(matches!(
        model.forward(empty.view(), &[], Variant::Exact),
        Err(Error::OutOfRange { .. })
    ));
    let narrow = embeddings(4, 15, 1);
    assert!(matches!(
        model.forward(narrow.view(), &[true; 4], Variant::Exact),
        Err(Error::LengthMismatch {
            got: 15,
            expected: 16,
            ..
        })
    ));
    let input = embeddings(4, 16, 1);
    assert!(matches!(
        model.forward(input.view(), &[true; 3], Variant::Exact),
        Err(Error::LengthMismatch {
            got: 3,
            expected: 4,
            ..
        })
    ));
    let mut nan = input.clone();
    nan[[1, 2]] = f64::NAN;
    assert!(model
        .forward(nan.view(), &[true; 4], Variant::Polynomial)
        .is_err());
}

#[test]
fn inputs_outside_the_ranges_are_counted() {
    let mut config = FriendlyConfig::tiny();
    // Narrow ranges that the tiny model's activations certainly leave.
    config.ranges.exp_argument = (-0.5, 0.0);
    config.ranges.relu_bound = 0.25;
    config.ranges.variance = (0.5, 2.0);
    config.ranges.tanh_bound = 0.05;
    let weights = FriendlyWeights::random(&config, 7);
    let model = FriendlyModel::new(config, weights).unwrap();
    let input = embeddings(8, 16, 8).mapv(|v| 4.0 * v);
    let mask = [true; 8];
    let exact = model.forward(input.view(), &mask, Variant::Exact).unwrap();
    let counts = exact.violations;
    eprintln!("violations with narrow ranges: {counts:?}");
    assert!(counts.exp > 0 && counts.relu > 0 && counts.inv_sqrt > 0 && counts.tanh > 0);
    // Counted alike in both variants for the first layer's LN (same input);
    // the polynomial run may diverge but must not panic.
    let twin = model
        .forward(input.view(), &mask, Variant::Polynomial)
        .unwrap();
    assert!(twin.violations.total() > 0);
    // The bounds are checked per evaluation: 2 layers × 2 norms × 8 rows
    // plus the final norm's row is the most LayerNorm can count.
    assert!(counts.inv_sqrt <= 2 * 2 * 8 + 1);
}

#[test]
fn the_paper_model_runs_inside_its_ranges() {
    let config = FriendlyConfig::default();
    assert_eq!(
        (config.layers, config.hidden, config.heads, config.ffn),
        (2, 768, 12, 1536)
    );
    let model = FriendlyModel::new(config.clone(), FriendlyWeights::random(&config, 11)).unwrap();
    let input = embeddings(128, 768, 12);
    let mut mask = [true; 128];
    mask[100..].fill(false);
    let exact = model.forward(input.view(), &mask, Variant::Exact).unwrap();
    let twin = model
        .forward(input.view(), &mask, Variant::Polynomial)
        .unwrap();
    assert_eq!(exact.violations, RangeViolations::default());
    assert_eq!(exact.logits.len(), 2);
    for (stage, stage_bits) in twin.agreement_bits(&exact) {
        eprintln!("paper shapes, twin vs exact, {stage:>17}: {stage_bits:5.1} bits");
    }
}

#[test]
fn config_round_trips_through_json() {
    let config = FriendlyConfig::default();
    let text = serde_json::to_string(&config).unwrap();
    let back: FriendlyConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(back, config);
}

#[test]
fn mapping_from_a_bert() {
    use crate::model::config::tests::tiny_config;
    use crate::model::weights::tests::random_weights;
    let bert = random_weights(&tiny_config(), 9);
    let config = FriendlyConfig {
        hidden: 8,
        heads: 2,
        ffn: 12,
        ..FriendlyConfig::tiny()
    };
    let weights = FriendlyWeights::from_bert(&bert, &config, 1).unwrap();
    let (first, second) = (&weights.layers[0], &weights.layers[1]);
    assert_eq!(first.query.dense.weight, bert.layers[0].query.weight.t());
    assert_eq!(first.attention_norm.gamma, Array1::<f64>::ones(8));
    assert_eq!(second.attention_norm, bert.layers[0].output_layer_norm);
    assert_eq!(first.ffn_norm, bert.layers[0].attention_layer_norm);
    assert_eq!(first.gate.weight, bert.layers[0].intermediate.weight.t());
    assert_eq!(first.down.bias, bert.layers[0].output.bias);
    assert!(first.up.weight.iter().all(|&w| w == 0.0) && first.up.bias.iter().all(|&b| b == 1.0));
    assert_eq!(
        weights.final_norm.as_ref(),
        Some(&bert.layers[1].output_layer_norm)
    );
    // LoRA starts with B = 0: the adapters change nothing.
    let model = FriendlyModel::new(config.clone(), weights.clone()).unwrap();
    let without_lora = FriendlyConfig {
        lora_targets: vec![],
        ..config.clone()
    };
    let mut stripped = weights;
    for layer in &mut stripped.layers {
        for projection in [&mut layer.query, &mut layer.key, &mut layer.value] {
            assert!(projection.lora.take().unwrap().b.iter().all(|&b| b == 0.0));
        }
    }
    let plain = FriendlyModel::new(without_lora, stripped).unwrap();
    let input = embeddings(4, 8, 2);
    let mask = [true; 4];
    assert_eq!(
        model
            .forward(input.view(), &mask, Variant::Exact)
            .unwrap()
            .logits,
        plain
            .forward(input.view(), &mask, Variant::Exact)
            .unwrap()
            .logits
    );
    // Shapes BERT does not have.
    for (bad, expected) in [
        (
            FriendlyConfig {
                ffn: 16,
                ..config.clone()
            },
            "ffn is 16",
        ),
        (
            FriendlyConfig {
                layers: 3,
                ..config.clone()
            },
            "3 layers",
        ),
        (
            FriendlyConfig {
                layer_norm_eps: 1e-5,
                ..config
            },
            "layer_norm_eps",
        ),
    ] {
        match FriendlyWeights::from_bert(&bert, &bad, 1) {
            Err(Error::InvalidParameters(message)) => {
                assert!(message.contains(expected), "{message}")
            }
            other => panic!("{expected}: {other:?}"),
        }
    }
}

#[test]
fn softmax_rows_follow_the_exact_softmax_and_check_their_config() {
    let config = FriendlyConfig {
        attention: AttentionKernel::Softmax,
        ..FriendlyConfig::tiny()
    };
    let fitted = FittedNonLinearities::fit(&config.ranges).unwrap();
    let scores = [1.5, -3.0, 7.0, 0.25, -7.5];
    let mask = [true, true, false, true, true];
    let exact = fitted
        .evaluator(Variant::Exact)
        .softmax_row(&scores, &mask, 8);
    let mut polynomial = fitted.evaluator(Variant::Polynomial);
    let approximate = polynomial.softmax_row(&scores, &mask, 8);
    assert_eq!(polynomial.violations().total(), 0);
    // The masked key weighs nothing, the rest sum to 1.
    assert_eq!((exact[2], approximate[2]), (0.0, 0.0));
    assert!((exact.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let error = exact
        .iter()
        .zip(&approximate)
        .fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(error < 1e-3, "{error}");
    // A score beyond the bound leaves the maximum's ReLU range.
    let mut outside = fitted.evaluator(Variant::Polynomial);
    outside.softmax_row(&[20.0, 0.0], &[true, true], 8);
    assert!(outside.violations().relu > 0);
    // The bound must fit the ReLU's and exp's ranges, the row sums the
    // sequence.
    let mut ranges = config.ranges.clone();
    ranges.softmax_bound = 9.0;
    expect_invalid(
        FriendlyConfig {
            ranges,
            ..config.clone()
        },
        "softmax_bound",
    );
    let mut ranges = config.ranges.clone();
    ranges.softmax_row_sum = (0.5, 4.0);
    expect_invalid(FriendlyConfig { ranges, ..config }, "seq_len");
}
