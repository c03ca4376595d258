//! What the server needs besides the model: the bootstrapping
//! configuration and the rotation keys (the client generates the keys from
//! this list; the server never holds the secret key).

use std::collections::BTreeMap;

use rayon::prelude::*;
use std::sync::Arc;

use super::layout::BlockLayout;
use super::loss::SoftmaxGradient;
use super::softmax::softmax_rotations;
use crate::backend::{create_backend, BackendChoice};
use crate::circuits::boot::{BootstrapConfig, Bootstrapper};
use crate::circuits::pack;
use crate::ckks::embedding::{galois_element_for_conjugation, galois_element_for_rotation};
use crate::ckks::{CkksContext, EvaluationKeys, Evaluator, GaloisKeys, KeyGenerator, SecretKey};
use crate::error::{Error, Result};
use crate::model::friendly::{AttentionKernel, FriendlyConfig};
use crate::params::Parameters;
use crate::tensor::{EncryptedDense, LoraProduct, RowDense};

/// Where a model's LoRA adapters live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterMode {
    /// Merged into the plaintext weights ([`EncryptedModel::new`](super::EncryptedModel::new)).
    Merged,
    /// Encrypted, trained or served as ciphertexts
    /// ([`EncryptedModel::for_adapters`](super::EncryptedModel::for_adapters)),
    /// with the head's weights: the keys of the LoRA products, the
    /// encrypted-weight products, their gradients and the loss come on
    /// top.
    Encrypted,
    /// Every dense weight encrypted with the head's, nothing merged: full
    /// fine-tuning, the paper's baseline
    /// ([`EncryptedModel::for_full_finetuning`](super::EncryptedModel::for_full_finetuning));
    /// the encrypted-weight products, their gradients and the loss's
    /// keys.
    Full,
}

/// The bootstrapping configuration and the key list of one model under one
/// parameter set.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerSetup {
    /// The bootstrapper's configuration (full slots: the blocks due for a
    /// refresh are packed into one ciphertext per bootstrap).
    pub bootstrap: BootstrapConfig,
    /// Every rotation step the server uses (the circuit's, the
    /// bootstrapper's and the unpacking's) with the highest level it
    /// rotates at; its key is capped there, with that level's digits only
    /// (the circuit's at the bootstrapper's output level: 3 of 7 digits at
    /// PN16_BOOT_128_SPARSE_H192, on 16 of the 29 limbs: about 50 MB
    /// instead of 213 MB). The
    /// relinearization key and the conjugation key are full.
    pub rotation_levels: BTreeMap<i64, usize>,
}

impl ServerSetup {
    /// The setup of `config` under `params` (a parameter set that
    /// bootstraps, see [`BootstrapConfig::for_preset`]).
    ///
    /// Errors: a parameter set without a bootstrapping configuration, a
    /// layout it cannot hold.
    pub fn new(
        config: &FriendlyConfig,
        params: &Parameters,
        adapters: AdapterMode,
    ) -> Result<Self> {
        // Planning only: the circuit's keys do not depend on the backend.
        let planning = CkksContext::new(params, create_backend(BackendChoice::Cpu, 1)?)?;
        Ok(Self::with_bootstrapper(config, planning, adapters)?.0)
    }

    /// The setup of `config` on `ctx`, with the bootstrapper it plans with
    /// (encoding one is the setup's main cost: a server that builds its
    /// setup this way encodes it once).
    ///
    /// Errors: those of [`new`](Self::new).
    pub fn with_bootstrapper(
        config: &FriendlyConfig,
        ctx: Arc<CkksContext>,
        adapters: AdapterMode,
    ) -> Result<(Self, Bootstrapper)> {
        let params = ctx.params().clone();
        let layout = BlockLayout::new(config, &params)?;
        let bootstrap = BootstrapConfig::for_preset(&params).ok_or_else(|| {
            Error::InvalidParameters(format!(
                "the encrypted model bootstraps; {} has no bootstrapping configuration",
                params.name()
            ))
        })?;
        let bootstrapper = Bootstrapper::new(ctx, bootstrap.clone())?;
        let mut rotation_levels = bootstrapper.rotation_levels();
        // The circuit runs at the bootstrapper's output level and below
        // (inputs are encrypted there).
        let circuit_level = bootstrapper.output_level();
        let lora = match adapters {
            AdapterMode::Merged => Vec::new(),
            AdapterMode::Encrypted => {
                let mut steps = LoraProduct::gradient_rotations(&layout.shape());
                steps.extend(EncryptedDense::rotations(&layout.shape())?);
                steps.extend(RowDense::sum_rotations(&layout.shape()));
                steps.extend(SoftmaxGradient::rotations_for(
                    config.classes,
                    layout.shape().blocks(),
                ));
                steps
            }
            AdapterMode::Full => {
                let mut steps = EncryptedDense::rotations(&layout.shape())?;
                steps.extend(RowDense::sum_rotations(&layout.shape()));
                steps.extend(SoftmaxGradient::rotations_for(
                    config.classes,
                    layout.shape().blocks(),
                ));
                steps.extend(Evaluator::rotations_for_sum(
                    (layout.dim() * layout.shape().blocks()) as i64,
                    layout.dim(),
                ));
                steps
            }
        };
        let softmax = match config.attention {
            AttentionKernel::Softmax => softmax_rotations(&layout.shape()),
            AttentionKernel::Gaussian => Vec::new(),
        };
        let circuit = layout
            .rotations()?
            .into_iter()
            .chain(lora)
            .chain(softmax)
            .chain(pack::unpack_rotations(
                layout.shape().slots(),
                bootstrap.slots,
            ));
        for step in circuit {
            let level = rotation_levels.entry(step).or_insert(circuit_level);
            *level = (*level).max(circuit_level);
        }
        Ok((
            Self {
                bootstrap,
                rotation_levels,
            },
            bootstrapper,
        ))
    }

    /// Every rotation step the server uses, sorted.
    pub fn rotations(&self) -> Vec<i64> {
        self.rotation_levels.keys().copied().collect()
    }

    /// Every Galois element with the level its key is capped at (the
    /// conjugation's and the relinearization's keys are full).
    fn key_levels(&self, params: &Parameters) -> BTreeMap<u64, usize> {
        let log_n = params.log_n();
        let mut levels = BTreeMap::new();
        let elements = self
            .rotation_levels
            .iter()
            .map(|(&k, &level)| (galois_element_for_rotation(log_n, k), level))
            .chain([(galois_element_for_conjugation(log_n), params.max_level())]);
        for (g, level) in elements.filter(|&(g, _)| g != 1) {
            let entry = levels.entry(g).or_insert(level);
            *entry = (*entry).max(level);
        }
        levels
    }

    /// How many Galois keys [`galois_keys`](Self::galois_keys) makes, and
    /// how many of them are capped below the top level.
    pub fn galois_key_count(&self, params: &Parameters) -> (usize, usize) {
        let levels = self.key_levels(params);
        let capped = levels
            .values()
            .filter(|&&level| level < params.max_level())
            .count();
        (levels.len(), capped)
    }

    /// The Galois keys the server needs (client side), each capped at its
    /// level, generated in parallel (each from a generator forked from
    /// `keygen`, in a fixed order: a seeded run is reproducible); `progress`
    /// is called after each.
    pub fn galois_keys(
        &self,
        keygen: &mut KeyGenerator,
        sk: &SecretKey,
        progress: &(dyn Fn() + Sync),
    ) -> Result<GaloisKeys> {
        let params = keygen.context().params().clone();
        let jobs: Vec<(u64, usize, KeyGenerator)> = self
            .key_levels(&params)
            .into_iter()
            .map(|(g, level)| (g, level, keygen.fork()))
            .collect();
        let generated = jobs
            .into_par_iter()
            .map(|(g, level, mut generator)| {
                let key = generator.gen_galois_key_to_level(sk, g, level);
                progress();
                key
            })
            .collect::<Result<Vec<_>>>()?;
        let mut keys = GaloisKeys::default();
        for key in generated {
            keys.insert(key);
        }
        Ok(keys)
    }

    /// Checks, before any work, that `keys` hold everything this setup
    /// rotates with, each key serving its level, and a relinearization key.
    ///
    /// Errors: [`Error::MissingRelinearizationKey`],
    /// [`Error::MissingGaloisKey`] (keys made for another model or by an
    /// older version), [`Error::LevelMismatch`] (a key capped below its
    /// use).
    pub fn check_keys(&self, keys: &EvaluationKeys, params: &Parameters) -> Result<()> {
        const OP: &str = "ServerSetup::check_keys";
        if keys.relinearization.is_none() {
            return Err(Error::MissingRelinearizationKey { op: OP });
        }
        for (g, level) in self.key_levels(params) {
            let key = keys.galois.get(g).ok_or_else(|| Error::MissingGaloisKey {
                op: OP,
                galois_element: g,
                what: "a rotation of the encrypted model (keys made for another model or version?)"
                    .into(),
            })?;
            if key.max_level(params) < level {
                return Err(Error::LevelMismatch {
                    op: OP,
                    detail: format!(
                        "the key of Galois element {g} serves levels up to {}, the model rotates at {level}",
                        key.max_level(params)
                    ),
                });
            }
        }
        Ok(())
    }

    /// The bootstrapper of this setup on `ctx` (encodes its transforms).
    pub fn bootstrapper(&self, ctx: Arc<CkksContext>) -> Result<Bootstrapper> {
        Bootstrapper::new(ctx, self.bootstrap.clone())
    }
}
