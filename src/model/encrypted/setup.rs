//! What the server needs besides the model: the bootstrapping
//! configuration and the rotation keys (the client generates the keys from
//! this list; the server never holds the secret key).

use std::sync::Arc;

use super::layout::BlockLayout;
use crate::backend::{create_backend, BackendChoice};
use crate::circuits::boot::{BootstrapConfig, Bootstrapper};
use crate::circuits::pack;
use crate::ckks::CkksContext;
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
    /// Every rotation step the server uses (the circuit's, the
    /// bootstrapper's and the unpacking's). The relinearization and
    /// conjugation keys are needed as well.
    pub rotations: Vec<i64>,
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
        let mut rotations = Bootstrapper::new(planning, bootstrap.clone())?.rotations();
        rotations.extend(layout.rotations()?);
        rotations.extend(pack::unpack_rotations(
            layout.shape().slots(),
            bootstrap.slots,
        ));
        rotations.sort_unstable();
        rotations.dedup();
        Ok(Self {
            bootstrap,
            rotations,
        })
    }

    /// The bootstrapper of this setup on `ctx` (encodes its transforms).
    pub fn bootstrapper(&self, ctx: Arc<CkksContext>) -> Result<Bootstrapper> {
        Bootstrapper::new(ctx, self.bootstrap.clone())
    }
}
