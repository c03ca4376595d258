//! The friendly transformer under encryption against its plaintext twin,
//! layer by layer: the tiny model (2 layers, hidden 16, 2 heads, GLU 24,
//! 8 tokens, random weights) on `TEST_INSECURE_BOOT_N11_L9` (nine levels
//! between bootstraps, as the production bootstrapping preset), bootstraps
//! placed where levels run out, two examples in lockstep (sharing their
//! bootstraps). The twin runs the same polynomials, so
//! the difference is CKKS noise and bootstrapping error alone; it is
//! printed in bits per stage, with the bootstraps per layer.

mod common;

use common::Fixture;
use heformer::backend::{create_backend, BackendChoice};
use heformer::circuits::refresh::{Bootstrapping, Refresh};
use heformer::ckks::{GaloisKeys, KeyGenerator, Prng};
use heformer::model::encrypted::{ActivationBounds, AdapterMode, EncryptedModel, ServerSetup};
use heformer::model::friendly::{
    agreement, FriendlyConfig, FriendlyModel, FriendlyWeights, Variant,
};
use heformer::params::Parameters;
use heformer::Error;
use ndarray::Array2;
use rand::Rng;

const PRESET: &str = "TEST_INSECURE_BOOT_N11_L9";

#[test]
fn tiny_model_layer_by_layer_against_the_twin() {
    let config = FriendlyConfig::tiny();
    let model = FriendlyModel::new(config.clone(), FriendlyWeights::random(&config, 5)).unwrap();
    let params = Parameters::preset(PRESET).unwrap();
    let d = config.seq_len;
    let setup = ServerSetup::new(&config, &params, AdapterMode::Merged).unwrap();
    // The keys a client makes, each capped at the level its rotation is
    // used at (the circuit's at the bootstrapper's output level), so any
    // rotation above would fail.
    let mut fixture = Fixture::with_galois_keys(
        PRESET,
        11,
        create_backend(BackendChoice::Cpu, 0).unwrap(),
        |keygen, sk| setup.galois_keys(keygen, sk, &|| {}).unwrap(),
    );
    assert!(setup.galois_key_count(&params).1 > 0);
    // The server checks its keys before any work: these pass; without one
    // of them, or with a circuit key capped one level too low, it refuses.
    let keys = fixture.evaluator.keys();
    setup.check_keys(keys, &params).unwrap();
    let elements = keys.galois.elements();
    let mut fewer = keys.clone();
    fewer.galois = GaloisKeys::default();
    for &g in &elements[1..] {
        fewer.galois.insert(keys.galois.get(g).unwrap().clone());
    }
    assert!(matches!(
        setup.check_keys(&fewer, &params),
        Err(Error::MissingGaloisKey { .. })
    ));
    let capped = elements
        .iter()
        .copied()
        .find(|&g| keys.galois.get(g).unwrap().max_level(&params) < params.max_level())
        .unwrap();
    let mut low = keys.clone();
    let mut keygen = KeyGenerator::new(fixture.ctx.clone(), Prng::from_seed(3));
    low.galois.insert(
        keygen
            .gen_galois_key_to_level(&fixture.sk, capped, 0)
            .unwrap(),
    );
    assert!(matches!(
        setup.check_keys(&low, &params),
        Err(Error::LevelMismatch { .. })
    ));
    // Three examples, run in lockstep: they share their bootstraps, the
    // first two go through the dense products as one complex pair, the
    // third alone.
    let masks = [
        [true, true, true, true, true, false, false, false],
        [true; 8],
        [true, true, false, false, false, false, false, false],
    ];
    let embeddings: Vec<Array2<f64>> = masks
        .iter()
        .map(|_| Array2::from_shape_fn((d, config.hidden), |_| fixture.rng.random_range(-2.0..2.0)))
        .collect();
    let twins: Vec<_> = embeddings
        .iter()
        .zip(&masks)
        .map(|(e, mask)| model.forward(e.view(), mask, Variant::Polynomial).unwrap())
        .collect();
    for twin in &twins {
        assert_eq!(twin.violations.total(), 0, "{:?}", twin.violations);
    }
    assert!(ActivationBounds::calibrate(&model, &[], 1.0).is_err());
    let calibration: Vec<_> = embeddings
        .iter()
        .zip(&masks)
        .map(|(e, mask)| (e.view(), &mask[..]))
        .collect();
    let bounds = ActivationBounds::calibrate(&model, &calibration, 2.0).unwrap();
    println!("bounds: {bounds:?}");

    let server = EncryptedModel::new(&model, fixture.ctx.clone(), bounds).unwrap();
    let bootstrapper = setup.bootstrapper(fixture.ctx.clone()).unwrap();
    let inputs: Vec<_> = embeddings
        .iter()
        .zip(&masks)
        .map(|(e, mask)| {
            server
                .encrypt_input(
                    &mut fixture.encryptor,
                    e.view(),
                    mask,
                    bootstrapper.output_level(),
                )
                .unwrap()
        })
        .collect();
    let mut refresher = Bootstrapping::new(&bootstrapper);
    let start = std::time::Instant::now();
    let outputs = server
        .forward_batch(&fixture.evaluator, &inputs, &mut refresher)
        .unwrap();
    println!(
        "forward of {} examples in lockstep: {:.1} s, {} bootstraps",
        inputs.len(),
        start.elapsed().as_secs_f64(),
        refresher.count()
    );

    let hidden = config.hidden;
    for (example, (output, twin)) in outputs.iter().zip(&twins).enumerate() {
        for (index, (encrypted, plain)) in output.layers.iter().zip(&twin.layers).enumerate() {
            let attention = server
                .decrypt_activation(&fixture.decryptor, &encrypted.attention, hidden)
                .unwrap();
            let ffn = server
                .decrypt_activation(&fixture.decryptor, &encrypted.ffn, hidden)
                .unwrap();
            let bits = [
                agreement(&attention, &plain.attention),
                agreement(&ffn, &plain.ffn),
            ];
            println!(
                "example {example} layer {index}: attention {:.1} bits, ffn {:.1} bits, {} bootstraps",
                bits[0], bits[1], encrypted.bootstraps
            );
            assert!(bits.iter().all(|&b| b >= 14.0), "layer {index}: {bits:?}");
        }
        let logits = server
            .decrypt_logits(&fixture.decryptor, &output.logits)
            .unwrap();
        let logit_bits = agreement(&logits, &twin.logits);
        println!(
            "example {example}: logits {logits:.5} against the twin's {:.5}: {logit_bits:.1} bits, head {} bootstraps",
            twin.logits, output.head_bootstraps
        );
        assert!(logit_bits >= 14.0);
    }
}
