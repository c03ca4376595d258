//! The encrypted backward pass against the twin's exact backward, layer by
//! layer: the tiny model (2 layers, hidden 16, 2 heads, GLU 24, 8 tokens,
//! random weights, a final LayerNorm) on `TEST_INSECURE_BOOT_N11_L9`, two
//! examples in lockstep, the logits' gradient of the cross-entropy
//! encrypted by the client. Every gradient the backward keeps is compared
//! with the twin's (`∂Q` rescaled from `∂Q'`): the difference is CKKS
//! noise, bootstrapping and the polynomials' error (the twin is exact),
//! printed in bits.

mod common;

use common::TinyModel;
use heformer::circuits::refresh::{Bootstrapping, Refresh};
use heformer::model::encrypted::adapters::decrypt_adapter_gradients;
use heformer::model::encrypted::full;
use heformer::model::encrypted::head::DenseLayout;
use heformer::model::encrypted::{AdapterMode, EncryptedAdapters, EncryptedModel, GradientBounds};
use heformer::model::friendly::{
    agreement, AttentionKernel, FriendlyConfig, FriendlyWeights, Variant,
};
use heformer::model::train::classifier::Differentiable;
use heformer::model::train::friendly::{FriendlyBackprop, GradientProbe};
use heformer::model::train::ops::{cross_entropy, Functions};
use heformer::model::train::params::Parameters;
use heformer::Error;
use ndarray::{s, Array2};

/// Every adapter value stays within this bound.
const ADAPTER_BOUND: f64 = 4.0;

/// The twin's gradients of one layer (`d` rows; rows the twin did not
/// compute are zero).
#[derive(Default)]
struct TwinLayer {
    output: Option<Array2<f64>>,
    gate: Option<Array2<f64>>,
    up: Option<Array2<f64>>,
    attended: Option<Array2<f64>>,
    queries: Option<Array2<f64>>,
    keys: Option<Array2<f64>>,
    values: Option<Array2<f64>>,
}

/// `m` padded with zero rows to `d` rows.
fn rows(m: ndarray::ArrayView2<f64>, d: usize) -> Array2<f64> {
    let mut out = Array2::zeros((d, m.ncols()));
    out.slice_mut(s![..m.nrows(), ..]).assign(&m);
    out
}

#[test]
fn tiny_model_backward_against_the_twin() {
    backward_against_the_twin(AdapterMode::Merged, AttentionKernel::Gaussian);
}

/// The paper's baseline attention: softmax under encryption (masked
/// scores, the row maximum's tree, exp, the Newton reciprocal), forward
/// and backward, against the twin's softmax (exact in both twins'
/// backward; the forward's polynomial variant is the circuit's).
#[test]
fn tiny_softmax_model_backward_against_the_twin() {
    backward_against_the_twin(AdapterMode::Merged, AttentionKernel::Softmax);
}

/// The paper's whole baseline: softmax attention and every dense weight
/// encrypted (full fine-tuning): the weights' gradients against the twin's.
#[test]
fn tiny_softmax_model_backward_with_every_weight_encrypted() {
    backward_against_the_twin(AdapterMode::Full, AttentionKernel::Softmax);
}

/// The same with the adapters encrypted: the projections' base weights in
/// the clear, `A` and `B` of Q, K and V as ciphertexts, and their gradients
/// compared with the twin's.
#[test]
fn tiny_model_backward_with_encrypted_adapters() {
    backward_against_the_twin(AdapterMode::Encrypted, AttentionKernel::Gaussian);
}

fn backward_against_the_twin(mode: AdapterMode, attention: AttentionKernel) {
    let encrypted_adapters = mode != AdapterMode::Merged;
    let masks = [
        [true, true, true, true, true, false, false, false],
        [true, true, true, false, false, false, false, false],
    ];
    let labels = [1usize, 2];

    let TinyModel {
        config,
        model,
        setup,
        mut fixture,
        embeddings,
        bounds,
        gradient_bounds,
    } = common::tiny_model_with(
        FriendlyConfig {
            attention,
            ..FriendlyConfig::tiny()
        },
        mode,
        &masks,
        17,
    );
    assert!(config.final_layer_norm);
    for (embedding, mask) in embeddings.iter().zip(&masks) {
        let trace = model
            .forward(embedding.view(), mask, Variant::Polynomial)
            .unwrap();
        assert_eq!(trace.violations.total(), 0, "{:?}", trace.violations);
    }
    let calibration: Vec<_> = embeddings
        .iter()
        .zip(&masks)
        .map(|(e, mask)| (e.view(), &mask[..]))
        .collect();
    println!("gradient bounds: {gradient_bounds:?}");
    assert!(GradientBounds::calibrate(&model, &calibration, 0.5).is_err());

    // The twins: forward and backward, exact and through the circuit's
    // polynomials, from the same logits' gradient (the exact twin's), every
    // intermediate kept.
    let exact = FriendlyBackprop::new(config.clone()).unwrap();
    let polynomial = FriendlyBackprop::with_functions(
        config.clone(),
        Functions::Polynomial(Box::new(model.polynomials().clone())),
    )
    .unwrap();
    let mut twins = Vec::new();
    let mut d_logits = Vec::new();
    let mut logits_list = Vec::new();
    for ((embedding, mask), &label) in embeddings.iter().zip(&masks).zip(&labels) {
        let (logits, _) = exact
            .forward(model.weights(), embedding.view(), mask)
            .unwrap();
        let (_, gradient) = cross_entropy(logits.view(), label).unwrap();
        twins.push(
            [&polynomial, &exact]
                .map(|twin| twin_gradients(twin, model.weights(), (embedding, mask), &gradient)),
        );
        logits_list.push(logits);
        d_logits.push(gradient);
    }

    let server = match mode {
        AdapterMode::Merged => EncryptedModel::new(&model, fixture.ctx.clone(), bounds),
        AdapterMode::Encrypted => EncryptedModel::for_adapters(&model, fixture.ctx.clone(), bounds),
        AdapterMode::Full => {
            EncryptedModel::for_full_finetuning(&model, fixture.ctx.clone(), bounds)
        }
    }
    .unwrap();
    let bootstrapper = setup.bootstrapper(fixture.ctx.clone()).unwrap();
    let level = bootstrapper.output_level();
    let inputs: Vec<_> = embeddings
        .iter()
        .zip(&masks)
        .map(|(e, mask)| {
            server
                .encrypt_input(&mut fixture.encryptor, e.view(), mask, level)
                .unwrap()
        })
        .collect();
    let encrypted_d_logits: Vec<_> = d_logits
        .iter()
        .map(|g| {
            server
                .encrypt_logits_layout(&mut fixture.encryptor, g.as_slice().unwrap(), level)
                .unwrap()
        })
        .collect();
    assert!(matches!(
        server.encrypt_logits_layout(&mut fixture.encryptor, &[0.0], level),
        Err(Error::LengthMismatch { .. })
    ));
    let encrypt = match mode {
        AdapterMode::Full => EncryptedAdapters::encrypt_full,
        _ => EncryptedAdapters::encrypt,
    };
    let mut adapters = encrypted_adapters.then(|| {
        encrypt(
            &config,
            server.layout(),
            (&fixture.encoder, &mut fixture.encryptor),
            model.weights(),
            level,
            ADAPTER_BOUND,
        )
        .unwrap()
    });
    let mut refresher = Bootstrapping::new(&bootstrapper);
    // Adapters go exactly to a model built for them.
    assert!(
        matches!(
            server.forward_taped(
                &fixture.evaluator,
                &inputs,
                if encrypted_adapters {
                    None
                } else {
                    adapters.as_mut()
                },
                &mut refresher
            ),
            Err(Error::InvalidParameters(_))
        ) == encrypted_adapters
    );
    let start = std::time::Instant::now();
    let (outputs, tapes): (Vec<_>, Vec<_>) = server
        .forward_taped(
            &fixture.evaluator,
            &inputs,
            adapters.as_mut(),
            &mut refresher,
        )
        .unwrap()
        .into_iter()
        .unzip();
    println!(
        "taped forward of 2 examples: {:.1} s, {} bootstraps",
        start.elapsed().as_secs_f64(),
        refresher.count()
    );
    assert_eq!(outputs.len(), 2);
    for (output, twin_logits) in outputs.iter().zip(&logits_list) {
        let got = server
            .decrypt_logits(&fixture.decryptor, &output.logits)
            .unwrap();
        let bits = agreement(&got, twin_logits);
        println!("logits {bits:.1} bits against the exact twin");
        assert!(bits >= 10.0, "{bits}");
    }
    // A batch whose lists disagree is refused before any work.
    assert!(matches!(
        server.backward(
            &fixture.evaluator,
            Vec::new(),
            &encrypted_d_logits,
            adapters.as_mut(),
            &gradient_bounds,
            &mut refresher
        ),
        Err(Error::LengthMismatch { .. })
    ));
    let gradients = server
        .backward(
            &fixture.evaluator,
            tapes,
            &encrypted_d_logits,
            adapters.as_mut(),
            &gradient_bounds,
            &mut refresher,
        )
        .unwrap();
    println!(
        "backward of 2 examples: {:.1} s, {} bootstraps ({:.1} s bootstrapping)",
        gradients[0].seconds, gradients[0].bootstraps, gradients[0].bootstrap_seconds
    );

    let decrypt = |cts: &[heformer::ckks::Ciphertext], width: usize| {
        server
            .decrypt_activation(&fixture.decryptor, cts, width)
            .unwrap()
    };
    let heads =
        |cts: &[heformer::ckks::Ciphertext]| server.decrypt_heads(&fixture.decryptor, cts).unwrap();
    let decode = |cts: &[heformer::ckks::Ciphertext]| -> Vec<_> {
        cts.iter()
            .map(|ct| {
                fixture
                    .encoder
                    .decode(&fixture.decryptor.decrypt(ct).unwrap())
                    .unwrap()
            })
            .collect()
    };
    // Worst agreement against the polynomial twin, then the exact one.
    let mut worst = [f64::INFINITY; 2];
    for (example, (encrypted, pair)) in gradients.iter().zip(&twins).enumerate() {
        assert_eq!(encrypted.layers.len(), config.layers);
        for (which, ((twin, sink), kind)) in pair.iter().zip(["polynomial", "exact"]).enumerate() {
            if encrypted_adapters {
                // The head's weights and biases.
                let slots = decode(&encrypted.head);
                let got = DenseLayout::head(&config, server.layout())
                    .friendly_head(server.layout(), &slots)
                    .unwrap();
                let mut line = format!("example {example} head against the {kind} twin:");
                for (name, got, want) in [
                    ("W1", &got.bottleneck, &sink.head.bottleneck),
                    ("W2", &got.widen, &sink.head.widen),
                    ("W3", &got.classifier, &sink.head.classifier),
                ] {
                    let bits = [
                        agreement(&got.weight, &want.weight),
                        agreement(&got.bias, &want.bias),
                    ];
                    line += &format!(" {name} {:.1} (bias {:.1})", bits[0], bits[1]);
                    worst[which] = worst[which].min(bits[0].min(bits[1]));
                }
                println!("{line} bits");
            } else {
                assert!(encrypted.head.is_empty());
            }
            for (index, (layer, plain)) in encrypted.layers.iter().zip(twin).enumerate() {
                let adapter_count = if mode == AdapterMode::Encrypted { 3 } else { 0 };
                assert_eq!(layer.adapters.len(), adapter_count);
                assert_eq!(layer.weights.is_empty(), mode != AdapterMode::Full);
                if mode == AdapterMode::Full {
                    let slots = decode(&layer.weights);
                    let circuit = full::layer_layout(&config, server.layout())
                        .dense(server.layout(), &slots)
                        .unwrap();
                    let got = full::twin_layers(&config, server.layout(), &circuit);
                    let twin_layer = &sink.layers[index];
                    let want = [
                        &twin_layer.query.dense,
                        &twin_layer.key.dense,
                        &twin_layer.value.dense,
                        &twin_layer.output.dense,
                        &twin_layer.gate,
                        &twin_layer.up,
                        &twin_layer.down,
                    ];
                    let mut line =
                        format!("example {example} layer {index} weights against the {kind} twin:");
                    for ((name, got), want) in ["Wq", "Wk", "Wv", "Wo", "Wg", "Wu", "Wd"]
                        .iter()
                        .zip(&got)
                        .zip(want)
                    {
                        let bias_bits = if *name == "Wk" && attention == AttentionKernel::Softmax {
                            // Softmax is blind to a shift of every score:
                            // the keys' bias has no gradient. Its noise
                            // against the weight's gradient instead.
                            let largest = |values: &mut dyn Iterator<Item = &f64>| {
                                values.fold(0.0_f64, |a, v| a.max(v.abs()))
                            };
                            -(largest(&mut got.bias.iter()) / largest(&mut want.weight.iter()))
                                .log2()
                        } else {
                            agreement(&got.bias, &want.bias)
                        };
                        let bits = [agreement(&got.weight, &want.weight), bias_bits];
                        line += &format!(" {name} {:.1} (bias {:.1})", bits[0], bits[1]);
                        worst[which] = worst[which].min(bits[0].min(bits[1]));
                    }
                    println!("{line} bits");
                }
                let mut line = format!("example {example} layer {index} against the {kind} twin:");
                let twin_layer = &sink.layers[index];
                for (gradients, (name, projection)) in layer.adapters.iter().zip([
                    ("Q", &twin_layer.query),
                    ("K", &twin_layer.key),
                    ("V", &twin_layer.value),
                ]) {
                    let got = decrypt_adapter_gradients(
                        &config,
                        server.layout(),
                        &fixture.encoder,
                        &fixture.decryptor,
                        gradients,
                    )
                    .unwrap();
                    let want = projection.lora.as_ref().unwrap();
                    for (part, bits) in [
                        ("A", agreement(&got.a, &want.a)),
                        ("B", agreement(&got.b, &want.b)),
                    ] {
                        line += &format!(" {name}.{part} {bits:.1}");
                        worst[which] = worst[which].min(bits);
                    }
                }
                let compared = [
                    (
                        "output",
                        decrypt(&layer.output, config.hidden),
                        &plain.output,
                    ),
                    ("up", decrypt(&layer.up, config.ffn), &plain.up),
                    ("gate", decrypt(&layer.gate, config.ffn), &plain.gate),
                    (
                        "attended",
                        decrypt(&layer.attended, config.hidden),
                        &plain.attended,
                    ),
                    ("queries", heads(&layer.queries), &plain.queries),
                    ("keys", heads(&layer.keys), &plain.keys),
                    ("values", heads(&layer.values), &plain.values),
                ];
                for (name, got, want) in compared {
                    let want = want.as_ref().unwrap_or_else(|| panic!("the twin's {name}"));
                    let bits = agreement(&got, want);
                    line += &format!(" {name} {bits:.1}");
                    worst[which] = worst[which].min(bits);
                }
                println!("{line} bits");
            }
        }
    }
    println!(
        "worst agreement: {:.1} bits against the polynomial twin, {:.1} against the exact twin",
        worst[0], worst[1]
    );
    // CKKS noise and bootstrapping alone; the polynomials' errors too (the
    // softmax model's first gate gradient is the lowest: ReLU's step near
    // zero).
    let exact_floor = match attention {
        AttentionKernel::Gaussian => 8.0,
        AttentionKernel::Softmax => 7.0,
    };
    assert!(worst[0] >= 12.0 && worst[1] >= exact_floor, "{worst:?}");
}

/// The twin's gradients of one example through `twin`'s functions from the
/// logits' gradient `d_logits`: per layer, and the weights' gradient.
fn twin_gradients(
    twin: &FriendlyBackprop,
    weights: &FriendlyWeights,
    (embedding, mask): (&Array2<f64>, &[bool; 8]),
    d_logits: &ndarray::Array1<f64>,
) -> (Vec<TwinLayer>, FriendlyWeights) {
    let d = embedding.nrows();
    let c = 1.0 / (2.0 * (twin.config().head_size() as f64).sqrt());
    let (_, tape) = twin.forward(weights, embedding.view(), mask).unwrap();
    let mut layers: Vec<TwinLayer> = Vec::new();
    let mut sink = weights.zeroed();
    twin.backward_probed(
        weights,
        tape,
        d_logits.view(),
        &mut sink,
        &mut |probe, values| {
            if probe == GradientProbe::Output {
                layers.push(TwinLayer::default());
            }
            let (Some(layer), value) = (layers.last_mut(), Some(rows(values, d))) else {
                return;
            };
            match probe {
                GradientProbe::Output => layer.output = value,
                GradientProbe::Up => layer.up = value,
                GradientProbe::Gate => layer.gate = value,
                GradientProbe::Attended => layer.attended = value,
                GradientProbe::Queries => layer.queries = value.map(|q| q / (2.0 * c)),
                GradientProbe::Keys => layer.keys = value,
                GradientProbe::Values => layer.values = value,
                _ => {}
            }
        },
    );
    layers.reverse();
    (layers, sink)
}
