//! Moving CKKS objects between two contexts of the same parameter set on
//! different backends (say a client's CPU and a server's GPU).
//!
//! Every backend stores the same words in the same order (limb-major,
//! evaluation domain, the NTT convention of `ring::ntt`), so a transfer is a
//! download from the source backend and an upload to the destination; the
//! object means exactly what it meant. Transfers are always explicit: an
//! operation given a buffer of another backend fails with
//! [`Error::DeviceMismatch`](crate::Error::DeviceMismatch).

use std::sync::Arc;

use super::ciphertext::{Ciphertext, Plaintext};
use super::context::CkksContext;
use super::evaluator::EvaluationKeys;
use super::keys::{GaloisKey, GaloisKeys, PublicKey, SecretKey, SwitchingKey};
use crate::backend::{transfer, Buffer};
use crate::error::Result;

impl CkksContext {
    /// Copies a whole buffer of `from`'s backend onto this context's backend.
    fn transfer_buffer(&self, from: &CkksContext, buffer: &Buffer) -> Result<Buffer> {
        transfer(from.backend(), self.backend(), buffer, buffer.len())
    }

    /// Fails unless `from` has this context's parameters and `id` is theirs.
    fn check_transfer(&self, op: &'static str, from: &CkksContext, id: u64) -> Result<()> {
        from.check_params(op, id)?;
        self.check_params(op, id)
    }

    /// `ct` (made in `from`) on this context's backend.
    pub fn transfer_ciphertext(&self, ct: &Ciphertext, from: &CkksContext) -> Result<Ciphertext> {
        self.check_transfer("transfer_ciphertext", from, ct.params_id)?;
        let parts = ct
            .parts
            .iter()
            .map(|p| self.transfer_buffer(from, p))
            .collect::<Result<Vec<_>>>()?;
        Ok(Ciphertext {
            parts,
            ..ct.clone_meta()
        })
    }

    /// `pt` (made in `from`) on this context's backend.
    pub fn transfer_plaintext(&self, pt: &Plaintext, from: &CkksContext) -> Result<Plaintext> {
        self.check_transfer("transfer_plaintext", from, pt.params_id)?;
        Ok(Plaintext {
            poly: self.transfer_buffer(from, &pt.poly)?,
            level: pt.level,
            scale: pt.scale,
            slots: pt.slots,
            params_id: pt.params_id,
        })
    }

    /// `pk` (made in `from`) on this context's backend.
    pub fn transfer_public_key(&self, pk: &PublicKey, from: &CkksContext) -> Result<PublicKey> {
        self.check_transfer("transfer_public_key", from, pk.params_id)?;
        Ok(PublicKey {
            b: self.transfer_buffer(from, &pk.b)?,
            a: self.transfer_buffer(from, &pk.a)?,
            params_id: pk.params_id,
        })
    }

    /// `sk` (made in `from`) on this context's backend (client side only).
    pub fn transfer_secret_key(&self, sk: &SecretKey, from: &CkksContext) -> Result<SecretKey> {
        self.check_transfer("transfer_secret_key", from, sk.params_id)?;
        Ok(SecretKey {
            coefficients: sk.coefficients.clone(),
            eval: self.transfer_buffer(from, &sk.eval)?,
            params_id: sk.params_id,
        })
    }

    /// Relinearization and Galois keys (made in `from`) on this context's backend.
    pub fn transfer_evaluation_keys(
        &self,
        keys: &EvaluationKeys,
        from: &CkksContext,
    ) -> Result<EvaluationKeys> {
        let switching = |k: &SwitchingKey| -> Result<SwitchingKey> {
            self.check_transfer("transfer_evaluation_keys", from, k.params_id)?;
            let digits = k
                .digits
                .iter()
                .map(|(b, a)| {
                    Ok((
                        self.transfer_buffer(from, b)?,
                        self.transfer_buffer(from, a)?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(SwitchingKey {
                digits,
                params_id: k.params_id,
            })
        };
        let relinearization = keys
            .relinearization
            .as_ref()
            .map(|r| Ok::<_, crate::Error>(super::keys::RelinearizationKey(switching(&r.0)?)))
            .transpose()?;
        let mut galois = GaloisKeys::default();
        for key in keys.galois.keys.values() {
            galois.keys.insert(
                key.galois_element,
                Arc::new(GaloisKey {
                    galois_element: key.galois_element,
                    key: switching(&key.key)?,
                }),
            );
        }
        Ok(EvaluationKeys {
            relinearization,
            galois,
        })
    }
}
