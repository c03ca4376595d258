//! Private fine-tuning against its twin, and resumption: the tiny model
//! (2 layers, hidden 16, 2 heads, 8 tokens, random weights, LoRA rank 2
//! on Q, K, V) on `TEST_INSECURE_BOOT_N11_L9`, two steps of encrypted
//! fine-tuning (forward, cross-entropy gradient from encrypted labels,
//! backward, mean gradient of a batch of two, encrypted AdamW) against the
//! same two steps in `f64` (the twin's exact gradients and the optimizer's
//! twin). The adapters' changes are compared; then a run resumed from the
//! checkpoint of step 1 reproduces step 2's ciphertexts exactly. The
//! paper's baseline (softmax attention, full fine-tuning) takes one step
//! against its twin too.

mod common;

use common::TinyModel;
use heformer::circuits::refresh::{Bootstrapping, Refresh};
use heformer::ckks::serialize::ciphertext_to_bytes;
use heformer::model::encrypted::adamw::{EncryptedAdamW, EncryptedAdamWConfig};
use heformer::model::encrypted::checkpoint::{load_checkpoint, save_checkpoint};
use heformer::model::encrypted::finetune::{
    flatten_adapters, flatten_dense_layers, full_parameters, parameter_change, trained_parameters,
    TwinFineTuning,
};
use heformer::model::encrypted::head::flatten_head;
use heformer::model::encrypted::{
    AdapterMode, EncryptedAdapters, EncryptedModel, FineTuning, GradientScales, LabeledInput,
    StepReport,
};
use heformer::model::friendly::{agreement, AttentionKernel, FriendlyConfig, LoraTarget, Variant};

const ADAPTER_BOUND: f64 = 4.0;
const LOGIT_BOUND: f64 = 4.0;
const RATES: [f64; 2] = [0.02, 0.01];

/// The adapters' targets.
const TARGETS: [LoraTarget; 3] = [LoraTarget::Query, LoraTarget::Key, LoraTarget::Value];

#[test]
fn two_encrypted_steps_track_the_twin_and_resume_exactly() {
    let masks = [
        [true, true, true, true, true, true, false, false],
        [true, true, true, true, false, false, false, false],
    ];
    let labels = [0usize, 2];
    let TinyModel {
        config,
        model,
        setup,
        mut fixture,
        embeddings,
        bounds,
        gradient_bounds,
    } = common::tiny_model(AdapterMode::Encrypted, &masks, 23);

    // The twins: the circuit's polynomials, and exact; the optimizer's
    // f64 twin. Every gradient is divided by its tensor's calibrated
    // power of two, in the twins and under encryption.
    let optimizer_config = EncryptedAdamWConfig::default();
    let initial = trained_parameters(model.weights(), &TARGETS).unwrap();
    let views: Vec<_> = embeddings
        .iter()
        .zip(&masks)
        .map(|(e, mask)| (e.view(), &mask[..]))
        .collect();
    let calibration_twin = TwinFineTuning::new(&model, optimizer_config, Variant::Exact).unwrap();
    let scales = GradientScales::calibrate(
        &calibration_twin,
        model.weights(),
        &views,
        config.classes,
        optimizer_config.gradient_bound,
    )
    .unwrap();
    println!("gradient scales {:?}", scales.scales());
    assert_eq!(scales.scales().len(), initial.len());
    assert!(scales.scales().iter().any(|&s| s < 1.0));
    assert!(scales.scales().iter().all(|s| s.log2().fract() == 0.0));
    for pair in scales.scales()[..2 * calibration_twin.adapter_count()].chunks(2) {
        assert_eq!(pair[0], pair[1], "an adapter's A takes its B's scale");
    }
    assert!(GradientScales::calibrate(&calibration_twin, model.weights(), &views, 3, 0.0).is_err());
    let mut twins: Vec<_> = [Variant::Polynomial, Variant::Exact]
        .into_iter()
        .map(|variant| {
            (
                TwinFineTuning::new(&model, optimizer_config, variant)
                    .unwrap()
                    .with_gradient_scales(scales.clone())
                    .unwrap(),
                model.weights().clone(),
            )
        })
        .collect();
    let sequences: Vec<_> = embeddings
        .iter()
        .zip(&masks)
        .zip(&labels)
        .map(|((e, mask), &label)| (e.view(), &mask[..], label))
        .collect();
    for rate in RATES {
        for (twin, weights) in twins.iter_mut() {
            let loss = twin.step(weights, &sequences, rate).unwrap();
            println!("twin step at rate {rate}: loss {loss:.4}");
        }
    }

    // The server: the adapters encrypted, two steps.
    let server = EncryptedModel::for_adapters(&model, fixture.ctx.clone(), bounds).unwrap();
    let tuning = FineTuning::new(&server, gradient_bounds, LOGIT_BOUND)
        .unwrap()
        .with_gradient_scales(scales.clone());
    assert!(FineTuning::new(
        &EncryptedModel::new(&model, fixture.ctx.clone(), bounds).unwrap(),
        gradient_bounds,
        LOGIT_BOUND
    )
    .is_err());
    let bootstrapper = setup.bootstrapper(fixture.ctx.clone()).unwrap();
    let level = bootstrapper.output_level();
    let mut adapters = EncryptedAdapters::encrypt(
        &config,
        server.layout(),
        (&fixture.encoder, &mut fixture.encryptor),
        model.weights(),
        level,
        ADAPTER_BOUND,
    )
    .unwrap();
    let tensors = adapters.tensor_indices();
    assert_eq!(tensors.len(), adapters.parameters().len());
    assert_eq!(tensors.iter().max().map(|t| t + 1), Some(initial.len()));
    let batch = encrypted_batch(&server, &mut fixture, (&embeddings, &masks, &labels), level);
    let ev = &fixture.evaluator;
    let mut refresher = Bootstrapping::new(&bootstrapper);
    // The optimizer's compact view (the head's occupied blocks packed
    // together) and back gives the same values.
    let compact = adapters
        .to_optimizer(
            ev,
            &fixture.encoder,
            (adapters.parameters(), ADAPTER_BOUND),
            &mut refresher,
        )
        .unwrap();
    println!(
        "{} parameter ciphertexts, {} in the optimizer's compact view",
        tensors.len(),
        compact.len()
    );
    assert_eq!(compact.len(), adapters.optimizer_count());
    assert!(compact.len() < tensors.len());
    let mut round_trip = EncryptedAdapters::from_parameters(
        &config,
        server.layout(),
        adapters
            .parameters()
            .iter()
            .map(|ct| ct.try_clone().unwrap())
            .collect(),
        ADAPTER_BOUND,
    )
    .unwrap();
    round_trip
        .set_from_optimizer(ev, &fixture.encoder, compact, &mut refresher)
        .unwrap();
    let decrypt = |a: &EncryptedAdapters| decrypted(a, &config, &server, &fixture);
    let (after, before) = (decrypt(&round_trip), decrypt(&adapters));
    let round_trip_bits = agreement(after.iter().flatten(), before.iter().flatten());
    println!("the compact view and back: {round_trip_bits:.1} bits");
    assert!(round_trip_bits >= 20.0);
    let mut optimizer =
        EncryptedAdamW::new(optimizer_config, vec![true; adapters.optimizer_count()]).unwrap();
    let dir = std::env::temp_dir().join(format!("heformer-finetune-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let checkpoint = dir.join("step-1.ckpt");
    for (step, rate) in RATES.into_iter().enumerate() {
        let mut report = StepReport::default();
        let (gradients, _) = tuning
            .gradients(ev, &mut adapters, &batch, 2, &mut refresher, &mut report)
            .unwrap();
        tuning
            .update(
                ev,
                &mut adapters,
                &mut optimizer,
                &gradients,
                rate,
                &mut refresher,
                &mut report,
            )
            .unwrap();
        println!("step {}: {report:?}", step + 1);
        if step == 0 {
            save_checkpoint(&fixture.ctx, &checkpoint, adapters.parameters(), &optimizer).unwrap();
        }
    }
    println!("{} bootstraps in all", refresher.count());

    // The adapters' changes against the twin's.
    let got_flat = decrypt(&adapters);
    let change = |after: &[Vec<f64>]| parameter_change(&initial, after);
    let got_change = change(&got_flat);
    let mut bits = Vec::new();
    for ((_, weights), what) in twins.iter().zip(["polynomial", "exact"]) {
        let want_change = change(&trained_parameters(weights, &TARGETS).unwrap());
        let largest = want_change.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(largest > 0.5 * RATES[0], "the twin's adapters barely moved");
        bits.push(agreement(&got_change, &want_change));
        println!(
            "adapters' change after {} steps: largest {largest:.3e}, encrypted against the {what} twin {:.1} bits",
            RATES.len(),
            bits[bits.len() - 1]
        );
    }
    // CKKS noise and bootstrapping alone against the polynomial twin; the
    // polynomials' errors too against the exact one. Both are relative to
    // the largest change: the scales (below 1) magnify a tensor's noise
    // with its gradient, and near-zero gradients take AdamW's steps of up
    // to `η·|g|/√ε`, so the small tensors' errors weigh in.
    assert!(bits[0] >= 10.0 && bits[1] >= 5.0, "{bits:?}");

    // A run resumed from step 1's checkpoint reproduces step 2 exactly.
    let (parameters, mut resumed) = load_checkpoint(&fixture.ctx, &checkpoint).unwrap();
    assert_eq!(resumed.steps(), 1);
    let mut resumed_adapters =
        EncryptedAdapters::from_parameters(&config, server.layout(), parameters, ADAPTER_BOUND)
            .unwrap();
    let mut report = StepReport::default();
    let mut refresher = Bootstrapping::new(&bootstrapper);
    let (gradients, _) = tuning
        .gradients(
            ev,
            &mut resumed_adapters,
            &batch,
            2,
            &mut refresher,
            &mut report,
        )
        .unwrap();
    tuning
        .update(
            ev,
            &mut resumed_adapters,
            &mut resumed,
            &gradients,
            RATES[1],
            &mut refresher,
            &mut report,
        )
        .unwrap();
    let bytes = |a: &EncryptedAdapters| -> Vec<Vec<u8>> {
        a.parameters()
            .iter()
            .map(|ct| ciphertext_to_bytes(&fixture.ctx, ct).unwrap())
            .collect()
    };
    assert!(
        bytes(&resumed_adapters) == bytes(&adapters),
        "the resumed run differs"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The paper's baseline: one step of full fine-tuning (softmax attention,
/// every dense weight encrypted) against the same step of the twin, which
/// trains every weight with the adapters merged in.
#[test]
fn one_full_finetuning_step_of_the_softmax_model_tracks_the_twin() {
    let masks = [
        [true, true, true, true, true, true, false, false],
        [true, true, true, true, false, false, false, false],
    ];
    let labels = [1usize, 0];
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
            attention: AttentionKernel::Softmax,
            ..FriendlyConfig::tiny()
        },
        AdapterMode::Full,
        &masks,
        29,
    );
    let optimizer_config = EncryptedAdamWConfig::default();
    let initial = full_parameters(model.weights());
    let sequences: Vec<_> = embeddings
        .iter()
        .zip(&masks)
        .zip(&labels)
        .map(|((e, mask), &label)| (e.view(), &mask[..], label))
        .collect();
    let twins: Vec<_> = [Variant::Polynomial, Variant::Exact]
        .into_iter()
        .map(|variant| {
            let mut twin = TwinFineTuning::full(&model, optimizer_config, variant).unwrap();
            let mut weights = model.weights().clone();
            twin.step(&mut weights, &sequences, RATES[0]).unwrap();
            weights
        })
        .collect();

    let server = EncryptedModel::for_full_finetuning(&model, fixture.ctx.clone(), bounds).unwrap();
    let tuning = FineTuning::new(&server, gradient_bounds, LOGIT_BOUND).unwrap();
    let bootstrapper = setup.bootstrapper(fixture.ctx.clone()).unwrap();
    let level = bootstrapper.output_level();
    let mut parameters = EncryptedAdapters::encrypt_full(
        &config,
        server.layout(),
        (&fixture.encoder, &mut fixture.encryptor),
        model.weights(),
        level,
        ADAPTER_BOUND,
    )
    .unwrap();
    assert!(parameters.is_full());
    // LoRA parameters are not this model's.
    let mut lora = EncryptedAdapters::encrypt(
        &config,
        server.layout(),
        (&fixture.encoder, &mut fixture.encryptor),
        model.weights(),
        level,
        ADAPTER_BOUND,
    )
    .unwrap();
    let batch = encrypted_batch(&server, &mut fixture, (&embeddings, &masks, &labels), level);
    let mut refresher = Bootstrapping::new(&bootstrapper);
    assert!(server
        .forward_batch_with(
            &fixture.evaluator,
            std::slice::from_ref(&batch[0].input),
            &mut lora,
            &mut refresher
        )
        .is_err());
    let mut optimizer =
        EncryptedAdamW::new(optimizer_config, vec![true; parameters.optimizer_count()]).unwrap();
    let report = tuning
        .step(
            &fixture.evaluator,
            &mut parameters,
            &mut optimizer,
            &batch,
            (2, RATES[0]),
            &mut refresher,
        )
        .unwrap();
    println!("full fine-tuning step: {report:?}");

    let got_flat = decrypted(&parameters, &config, &server, &fixture);
    let change = |after: &[Vec<f64>]| parameter_change(&initial, after);
    let got_change = change(&got_flat);
    let mut bits = Vec::new();
    for (weights, what) in twins.iter().zip(["polynomial", "exact"]) {
        let want_change = change(&full_parameters(weights));
        let largest = want_change.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(largest > 0.5 * RATES[0], "the twin's weights barely moved");
        bits.push(agreement(&got_change, &want_change));
        println!(
            "every weight's change after one step: largest {largest:.3e}, encrypted against the {what} twin {:.1} bits",
            bits[bits.len() - 1]
        );
    }
    assert!(bits[0] >= 11.0 && bits[1] >= 8.0, "{bits:?}");
}

/// The examples and their one-hot labels encrypted at `level`.
/// The client's decryption of trained parameters, flat in the twin's
/// order (the adapters or, under full fine-tuning, the dense layers; then
/// the head).
fn decrypted(
    parameters: &EncryptedAdapters,
    config: &FriendlyConfig,
    server: &EncryptedModel,
    fixture: &common::Fixture,
) -> Vec<Vec<f64>> {
    let values = parameters
        .decrypt(
            config,
            server.layout(),
            &fixture.encoder,
            &fixture.decryptor,
        )
        .unwrap();
    let mut flat = if parameters.is_full() {
        flatten_dense_layers(&values.layers)
    } else {
        flatten_adapters(&values.adapters.iter().flatten().collect::<Vec<_>>())
    };
    flat.extend(flatten_head(&values.head));
    flat
}

fn encrypted_batch(
    server: &EncryptedModel,
    fixture: &mut common::Fixture,
    (embeddings, masks, labels): (&[ndarray::Array2<f64>], &[[bool; 8]], &[usize]),
    level: usize,
) -> Vec<LabeledInput> {
    embeddings
        .iter()
        .zip(masks)
        .zip(labels)
        .map(|((e, mask), &label)| {
            let mut onehot = vec![0.0; server.config().classes];
            onehot[label] = 1.0;
            LabeledInput {
                input: server
                    .encrypt_input(&mut fixture.encryptor, e.view(), mask, level)
                    .unwrap(),
                label: server
                    .encrypt_logits_layout(&mut fixture.encryptor, &onehot, level)
                    .unwrap(),
            }
        })
        .collect()
}
