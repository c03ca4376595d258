//! Shared fixtures of the integration tests: a seeded context with keys.
#![allow(dead_code)]

use std::sync::Arc;

use heformer::backend::{create_backend, Backend, BackendChoice};
use heformer::circuits::boot::{BootstrapConfig, Bootstrapper};
use heformer::ckks::*;
use heformer::math::Complex;
use heformer::params::Parameters;
use rand::{Rng, SeedableRng};

pub struct Fixture {
    pub params: Parameters,
    pub ctx: Arc<CkksContext>,
    pub sk: SecretKey,
    pub pk: PublicKey,
    pub encoder: Encoder,
    pub encryptor: Encryptor,
    pub decryptor: Decryptor,
    pub evaluator: Evaluator,
    pub rng: rand_chacha::ChaCha20Rng,
}

impl Fixture {
    /// A context on `preset` with keys for `rotations` (and conjugation).
    pub fn new(preset: &str, rotations: &[i64], seed: u64) -> Self {
        Self::with_backend(
            preset,
            rotations,
            seed,
            create_backend(BackendChoice::Cpu, 0).unwrap(),
        )
    }

    /// [`Fixture::new`] on a given backend.
    pub fn with_backend(
        preset: &str,
        rotations: &[i64],
        seed: u64,
        backend: Arc<dyn Backend>,
    ) -> Self {
        Self::with_galois_keys(preset, seed, backend, |keygen, sk| {
            keygen.gen_galois_keys(sk, rotations, true).unwrap()
        })
    }

    /// A context on `preset` with the Galois keys `galois` makes.
    pub fn with_galois_keys(
        preset: &str,
        seed: u64,
        backend: Arc<dyn Backend>,
        galois: impl FnOnce(&mut KeyGenerator, &SecretKey) -> GaloisKeys,
    ) -> Self {
        let params = Parameters::preset(preset).unwrap();
        let ctx = CkksContext::new(&params, backend).unwrap();
        let mut keygen = KeyGenerator::new(ctx.clone(), Prng::from_seed(seed));
        let sk = keygen.gen_secret_key().unwrap();
        let pk = keygen.gen_public_key(&sk).unwrap();
        let relinearization = Some(keygen.gen_relinearization_key(&sk).unwrap());
        let galois = galois(&mut keygen, &sk);
        let evaluator = Evaluator::new(
            ctx.clone(),
            EvaluationKeys {
                relinearization,
                galois,
            },
        )
        .unwrap();
        let encryptor = Encryptor::new(
            ctx.clone(),
            EncryptionKey::Public(pk.clone()),
            Prng::from_seed(seed + 1),
        )
        .unwrap();
        let decryptor = Decryptor::new(ctx.clone(), sk.clone()).unwrap();
        Self {
            encoder: Encoder::new(ctx.clone()),
            params,
            ctx,
            sk,
            pk,
            encryptor,
            decryptor,
            evaluator,
            rng: rand_chacha::ChaCha20Rng::seed_from_u64(seed + 2),
        }
    }

    pub fn slots(&self) -> usize {
        self.params.max_slots()
    }

    /// Random complex values with |re|, |im| < bound.
    pub fn random_values(&mut self, count: usize, bound: f64) -> Vec<Complex> {
        (0..count)
            .map(|_| {
                Complex::new(
                    self.rng.random_range(-bound..bound),
                    self.rng.random_range(-bound..bound),
                )
            })
            .collect()
    }

    pub fn encrypt(&mut self, values: &[Complex]) -> Ciphertext {
        let level = self.params.max_level();
        let pt = self
            .encoder
            .encode_complex(values, level, self.params.default_scale())
            .unwrap();
        self.encryptor.encrypt(&pt).unwrap()
    }

    /// Real values encrypted at `level`, the default scale.
    pub fn encrypt_real_at(&mut self, values: &[f64], level: usize) -> Ciphertext {
        let slots: Vec<Complex> = values.iter().map(|&x| Complex::new(x, 0.0)).collect();
        let pt = self
            .encoder
            .encode_complex(&slots, level, self.params.default_scale())
            .unwrap();
        self.encryptor.encrypt(&pt).unwrap()
    }

    pub fn decrypt(&self, ct: &Ciphertext) -> Vec<Complex> {
        self.encoder
            .decode(&self.decryptor.decrypt(ct).unwrap())
            .unwrap()
    }

    /// The precision we require of a result at `scale`: the scale's bits
    /// minus the noise of a fresh encryption or a key switch (about
    /// log2(N) + 6 bits for σ = 3.2) minus a margin of 6 bits.
    pub fn required_bits(&self, scale: f64) -> f64 {
        scale.log2() - self.params.log_n() as f64 - 12.0
    }

    /// Asserts slot-wise agreement within `required_bits(ct.scale())`, and returns the precision.
    pub fn assert_close(&self, what: &str, ct: &Ciphertext, want: &[Complex]) -> PrecisionStats {
        let required = self.required_bits(ct.scale().min(self.params.default_scale()));
        self.assert_close_within(what, ct, want, required)
    }

    /// Asserts that every slot agrees with `want` to `required` bits, and
    /// returns the precision.
    pub fn assert_close_within(
        &self,
        what: &str,
        ct: &Ciphertext,
        want: &[Complex],
        required: f64,
    ) -> PrecisionStats {
        let got = self.decrypt(ct);
        let stats = PrecisionStats::compare(want, &got[..want.len()]);
        println!(
            "{what}: level {} scale 2^{:.2}: min {:.1} bits, mean {:.1} bits (required {:.1})",
            ct.level(),
            ct.scale().log2(),
            stats.min_bits,
            stats.mean_bits,
            required
        );
        assert!(
            stats.min_bits >= required,
            "{what}: {:.1} bits < {required:.1}",
            stats.min_bits
        );
        stats
    }
}

pub use heformer::ckks::precision::PrecisionStats;

/// A fixture with the keys of a bootstrapper of `config` on `preset` (and
/// the `extra` rotations), and that bootstrapper.
pub fn with_bootstrapper(
    preset: &str,
    config: BootstrapConfig,
    extra: &[i64],
    seed: u64,
) -> (Fixture, Bootstrapper) {
    let params = Parameters::preset(preset).unwrap();
    let planning =
        CkksContext::new(&params, create_backend(BackendChoice::Cpu, 0).unwrap()).unwrap();
    let mut rotations = Bootstrapper::new(planning, config.clone())
        .unwrap()
        .rotations();
    rotations.extend_from_slice(extra);
    let fixture = Fixture::new(preset, &rotations, seed);
    let boot = Bootstrapper::new(fixture.ctx.clone(), config).unwrap();
    (fixture, boot)
}

/// [`with_bootstrapper`] with `preset`'s configuration at `slots` slots.
pub fn with_sparse_bootstrapper(
    preset: &str,
    slots: usize,
    extra: &[i64],
    seed: u64,
) -> (Fixture, Bootstrapper) {
    let params = Parameters::preset(preset).unwrap();
    let config = BootstrapConfig {
        slots,
        ..BootstrapConfig::for_preset(&params).unwrap()
    };
    with_bootstrapper(preset, config, extra, seed)
}

/// The tiny friendly model (random weights) on `TEST_INSECURE_BOOT_N11_L9`
/// with the keys of its server setup, random inputs (one per mask) and the
/// bounds calibrated on them.
pub struct TinyModel {
    pub config: heformer::model::friendly::FriendlyConfig,
    pub model: heformer::model::friendly::FriendlyModel,
    pub setup: heformer::model::encrypted::ServerSetup,
    pub fixture: Fixture,
    pub embeddings: Vec<ndarray::Array2<f64>>,
    pub bounds: heformer::model::encrypted::ActivationBounds,
    pub gradient_bounds: heformer::model::encrypted::GradientBounds,
}

/// [`TinyModel`] with its adapters as `mode` says, keys from `seed`.
pub fn tiny_model(
    mode: heformer::model::encrypted::AdapterMode,
    masks: &[[bool; 8]],
    seed: u64,
) -> TinyModel {
    tiny_model_with(
        heformer::model::friendly::FriendlyConfig::tiny(),
        mode,
        masks,
        seed,
    )
}

/// [`tiny_model`] of another config of the tiny shape (its sequence is
/// 8 tokens).
#[allow(dead_code)]
pub fn tiny_model_with(
    config: heformer::model::friendly::FriendlyConfig,
    mode: heformer::model::encrypted::AdapterMode,
    masks: &[[bool; 8]],
    seed: u64,
) -> TinyModel {
    use heformer::model::encrypted::{ActivationBounds, GradientBounds, ServerSetup};
    use heformer::model::friendly::{FriendlyModel, FriendlyWeights};
    const PRESET: &str = "TEST_INSECURE_BOOT_N11_L9";
    let model = FriendlyModel::new(config.clone(), FriendlyWeights::random(&config, 5)).unwrap();
    let params = Parameters::preset(PRESET).unwrap();
    let setup = ServerSetup::new(&config, &params, mode).unwrap();
    let mut fixture = Fixture::with_galois_keys(
        PRESET,
        seed,
        create_backend(BackendChoice::Cpu, 0).unwrap(),
        |keygen, sk| setup.galois_keys(keygen, sk, &|| {}).unwrap(),
    );
    let embeddings: Vec<ndarray::Array2<f64>> = masks
        .iter()
        .map(|_| {
            ndarray::Array2::from_shape_fn((config.seq_len, config.hidden), |_| {
                fixture.rng.random_range(-2.0..2.0)
            })
        })
        .collect();
    let calibration: Vec<_> = embeddings
        .iter()
        .zip(masks)
        .map(|(e, mask)| (e.view(), &mask[..]))
        .collect();
    let bounds = ActivationBounds::calibrate(&model, &calibration, 2.0).unwrap();
    let gradient_bounds = GradientBounds::calibrate(&model, &calibration, 2.0).unwrap();
    TinyModel {
        config,
        model,
        setup,
        fixture,
        embeddings,
        bounds,
        gradient_bounds,
    }
}
