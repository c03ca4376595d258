//! What the server needs besides the model: the bootstrapping
//! configuration and the rotation keys (the client generates the keys from
//! this list; the server never holds the secret key).

use std::sync::Arc;

use super::layout::BlockLayout;
use crate::backend::{create_backend, BackendChoice};
use crate::circuits::boot::{BootstrapConfig, Bootstrapper};
use crate::circuits::pack;
use crate::ckks::embedding::{galois_element_for_conjugation, galois_element_for_rotation};
use crate::ckks::{CkksContext, GaloisKeys, KeyGenerator, SecretKey};
use crate::error::{Error, Result};
use crate::model::friendly::FriendlyConfig;
use crate::params::Parameters;

/// The bootstrapping configuration and the key list of one model under one
/// parameter set.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerSetup {
    /// The bootstrapper's configuration (full slots: the blocks due for a
    /// refresh are packed into one ciphertext per bootstrap).
    pub bootstrap: BootstrapConfig,
    /// The bootstrapper's rotation steps: keys for every level.
    pub bootstrap_rotations: Vec<i64>,
    /// The circuit's other rotation steps (the dense products', CCMM's, the
    /// transpose's, the unpacking's): keys up to `circuit_level` only.
    pub circuit_rotations: Vec<i64>,
    /// The highest level the circuit rotates at: the bootstrapper's output
    /// level (inputs are encrypted at it). Keys capped there have the
    /// digits of that level only: 3 of 7 at PN16_BOOT_128_SPARSE_H192,
    /// 91 MB instead of 213 MB each.
    pub circuit_level: usize,
}

impl ServerSetup {
    /// The setup of `config` under `params` (a parameter set that
    /// bootstraps, see [`BootstrapConfig::for_preset`]).
    ///
    /// Errors: a parameter set without a bootstrapping configuration, a
    /// layout it cannot hold.
    pub fn new(config: &FriendlyConfig, params: &Parameters) -> Result<Self> {
        let layout = BlockLayout::new(config, params)?;
        let bootstrap = BootstrapConfig::for_preset(params).ok_or_else(|| {
            Error::InvalidParameters(format!(
                "the encrypted model bootstraps; {} has no bootstrapping configuration",
                params.name()
            ))
        })?;
        // Planning only: the circuit's keys do not depend on the backend.
        let planning = CkksContext::new(params, create_backend(BackendChoice::Cpu, 1)?)?;
        let bootstrapper = Bootstrapper::new(planning, bootstrap.clone())?;
        let mut bootstrap_rotations = bootstrapper.rotations();
        bootstrap_rotations.sort_unstable();
        bootstrap_rotations.dedup();
        let mut circuit_rotations = layout.rotations()?;
        circuit_rotations.extend(pack::unpack_rotations(
            layout.shape().slots(),
            bootstrap.slots,
        ));
        circuit_rotations.sort_unstable();
        circuit_rotations.dedup();
        circuit_rotations.retain(|k| bootstrap_rotations.binary_search(k).is_err());
        Ok(Self {
            bootstrap,
            bootstrap_rotations,
            circuit_rotations,
            circuit_level: bootstrapper.output_level(),
        })
    }

    /// Every rotation step the server uses, sorted.
    pub fn rotations(&self) -> Vec<i64> {
        let mut all = [
            self.bootstrap_rotations.clone(),
            self.circuit_rotations.clone(),
        ]
        .concat();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The Galois keys the server needs (client side): full keys for the
    /// bootstrapper's rotations and conjugation, keys capped at
    /// `circuit_level` for the circuit's; `progress` is called after each.
    pub fn galois_keys(
        &self,
        keygen: &mut KeyGenerator,
        sk: &SecretKey,
        progress: &mut dyn FnMut(),
    ) -> Result<GaloisKeys> {
        let log_n = keygen.context().params().log_n();
        let element = |k: &i64| galois_element_for_rotation(log_n, *k);
        let full = self
            .bootstrap_rotations
            .iter()
            .map(element)
            .chain([galois_element_for_conjugation(log_n)]);
        let capped = self.circuit_rotations.iter().map(element);
        let mut keys = GaloisKeys::default();
        for (g, level) in full
            .map(|g| (g, None))
            .chain(capped.map(|g| (g, Some(self.circuit_level))))
        {
            if g == 1 || keys.get(g).is_some() {
                continue;
            }
            keys.insert(match level {
                None => keygen.gen_galois_key(sk, g)?,
                Some(level) => keygen.gen_galois_key_to_level(sk, g, level)?,
            });
            progress();
        }
        Ok(keys)
    }

    /// How many Galois keys [`galois_keys`](Self::galois_keys) makes.
    pub fn galois_key_count(&self, log_n: u32) -> usize {
        let mut elements: Vec<u64> = self
            .rotations()
            .iter()
            .map(|&k| galois_element_for_rotation(log_n, k))
            .chain([galois_element_for_conjugation(log_n)])
            .filter(|&g| g != 1)
            .collect();
        elements.sort_unstable();
        elements.dedup();
        elements.len()
    }

    /// The bootstrapper of this setup on `ctx` (encodes its transforms).
    pub fn bootstrapper(&self, ctx: Arc<CkksContext>) -> Result<Bootstrapper> {
        Bootstrapper::new(ctx, self.bootstrap.clone())
    }
}
