//! The evaluation context: a parameter set, its ring tables and the backend
//! every operation runs on.

use std::sync::Arc;

use crate::backend::{Backend, Buffer};
use crate::error::{Error, Result};
use crate::params::Parameters;
use crate::ring::RingContext;

/// Parameters + ring tables + backend, shared by every CKKS role object.
#[derive(Debug)]
pub struct CkksContext {
    params: Parameters,
    ring: RingContext,
    backend: Arc<dyn Backend>,
}

impl CkksContext {
    /// Precomputes the ring tables of `params` for `backend`.
    pub fn new(params: &Parameters, backend: Arc<dyn Backend>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            params: params.clone(),
            ring: RingContext::new(params)?,
            backend,
        }))
    }

    /// The parameter set.
    pub fn params(&self) -> &Parameters {
        &self.params
    }

    /// The ring tables.
    pub fn ring(&self) -> &RingContext {
        &self.ring
    }

    /// The backend.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The shared handle of the backend.
    pub fn backend_arc(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }

    /// Ring degree N.
    pub fn n(&self) -> usize {
        self.params.n()
    }

    /// Words of a polynomial at `level`.
    pub fn words_at(&self, level: usize) -> usize {
        self.n() * (level + 1)
    }

    /// Fails unless `id` is this context's parameter id.
    pub fn check_params(&self, op: &'static str, id: u64) -> Result<()> {
        if id != self.params.id() {
            return Err(Error::ParameterMismatch {
                op,
                left: self.params.id(),
                right: id,
            });
        }
        Ok(())
    }

    /// Fails unless `level` is a level of the chain.
    pub fn check_level(&self, op: &'static str, level: usize) -> Result<()> {
        if level > self.params.max_level() {
            return Err(Error::LevelMismatch {
                op,
                detail: format!(
                    "level {level} above the maximum {}",
                    self.params.max_level()
                ),
            });
        }
        Ok(())
    }

    /// Uploads host limbs given in the coefficient domain, then transforms them
    /// to the evaluation domain on the device.
    pub(crate) fn upload_coefficients(&self, limbs: &[u64], basis: &[usize]) -> Result<Buffer> {
        let mut buf = self.backend.upload(limbs)?;
        self.backend.ntt_forward(&self.ring, &mut buf, basis)?;
        Ok(buf)
    }

    /// Reduces signed coefficients into every limb of `basis` (coefficient domain).
    pub(crate) fn signed_to_limbs(&self, coefficients: &[i64], basis: &[usize]) -> Vec<u64> {
        let mut out = Vec::with_capacity(coefficients.len() * basis.len());
        for &g in basis {
            let m = self.ring.moduli()[g];
            out.extend(coefficients.iter().map(|&c| m.reduce_i64(c)));
        }
        out
    }

    /// Copies the first `words` words of a buffer into a new one.
    pub(crate) fn duplicate(&self, src: &Buffer, words: usize) -> Result<Buffer> {
        let mut out = self.backend.alloc(words)?;
        self.backend.copy(src, &mut out, words)?;
        Ok(out)
    }
}
