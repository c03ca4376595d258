//! Encryption (public or secret key) and decryption.
//!
//! Public key (on the full basis Q·P): `(c0, c1) = (round((b·u + e0)/P) + m,
//! round((a·u + e1)/P))` with ternary `u` and Gaussian `e0, e1`, computed on
//! the extended basis `Q_l ∪ P` and divided by P with the key switch's
//! ModDown. The division takes the noise `u·e + e0 + e1·s` (about
//! `σ·√(2N/3)` per coefficient) down to ModDown's rounding, `r0 + r1·s`, as
//! small as a secret-key encryption's. Secret key: `(c0, c1) = (-a·s + e + m,
//! a)`.
//! Decryption: `m' = Σ_k c_k · s^k`.

use std::sync::Arc;

use super::ciphertext::{Ciphertext, Plaintext};
use super::context::CkksContext;
use super::keys::{PublicKey, SecretKey};
use super::sampling::Prng;
use crate::backend::Buffer;
use crate::error::Result;

/// The key an [`Encryptor`] encrypts with.
#[derive(Debug, Clone)]
pub enum EncryptionKey {
    /// Anyone holding the public key can encrypt.
    Public(PublicKey),
    /// The client can encrypt with its secret key (smaller noise).
    Secret(SecretKey),
}

/// Encrypts plaintexts.
pub struct Encryptor {
    ctx: Arc<CkksContext>,
    key: EncryptionKey,
    prng: Prng,
}

impl Encryptor {
    /// An encryptor with the given key and randomness.
    pub fn new(ctx: Arc<CkksContext>, key: EncryptionKey, prng: Prng) -> Result<Self> {
        let id = match &key {
            EncryptionKey::Public(pk) => pk.params_id,
            EncryptionKey::Secret(sk) => sk.params_id,
        };
        ctx.check_params("Encryptor::new", id)?;
        Ok(Self { ctx, key, prng })
    }

    /// Encrypts `pt` at its level and scale.
    pub fn encrypt(&mut self, pt: &Plaintext) -> Result<Ciphertext> {
        let Self { ctx, key, prng } = self;
        ctx.check_params("encrypt", pt.params_id)?;
        let ring = ctx.ring();
        let backend = ctx.backend();
        let basis = ring.q_basis(pt.level);
        let words = ctx.words_at(pt.level);
        let (c0, c1) = match key {
            EncryptionKey::Public(pk) => {
                let extended = ring.extended_basis(pt.level);
                let u_coeffs = prng.ternary(ctx.n());
                let u =
                    ctx.upload_coefficients(&ctx.signed_to_limbs(&u_coeffs, &extended), &extended)?;
                let mut noisy = [
                    gaussian_poly(ctx, prng, &extended)?,
                    gaussian_poly(ctx, prng, &extended)?,
                ];
                for (acc, key) in noisy.iter_mut().zip([&pk.b, &pk.a]) {
                    let key = restrict_to(ctx, key, &extended)?;
                    backend.mul_add_assign(ring, acc, &key, &u, &extended)?;
                }
                let mut out = [backend.alloc(words)?, backend.alloc(words)?];
                backend.mod_down(ring, &noisy, pt.level, &mut out)?;
                let [c0, c1] = out;
                (c0, c1)
            }
            EncryptionKey::Secret(sk) => {
                let n = ctx.n();
                let mut a_host = vec![0u64; words];
                for (limb, &g) in a_host.chunks_mut(n).zip(&basis) {
                    prng.fill_uniform(&ring.moduli()[g], limb);
                }
                let c1 = backend.upload(&a_host)?;
                let mut c0 = gaussian_poly(ctx, prng, &basis)?;
                let mut a_s = ctx.duplicate(&c1, words)?;
                backend.mul_assign(ring, &mut a_s, &sk.eval, &basis)?;
                backend.sub_assign(ring, &mut c0, &a_s, &basis)?;
                (c0, c1)
            }
        };
        let mut c0 = c0;
        backend.add_assign(ring, &mut c0, &pt.poly, &basis)?;
        Ok(Ciphertext {
            parts: vec![c0, c1],
            level: pt.level,
            scale: pt.scale,
            slots: pt.slots,
            params_id: pt.params_id,
        })
    }
}

/// The limbs of `poly` (on the full basis) at the global indices `basis`.
fn restrict_to(ctx: &CkksContext, poly: &Buffer, basis: &[usize]) -> Result<Buffer> {
    let n = ctx.n();
    let full = ctx.ring().full_basis().len();
    let words = ctx.backend().download(poly, n * full)?;
    let limbs: Vec<u64> = basis
        .iter()
        .flat_map(|&g| words[g * n..(g + 1) * n].iter().copied())
        .collect();
    ctx.backend().upload(&limbs)
}

/// A fresh Gaussian error polynomial on `basis`, evaluation domain.
fn gaussian_poly(ctx: &CkksContext, prng: &mut Prng, basis: &[usize]) -> Result<Buffer> {
    let e = prng.gaussian(ctx.n(), ctx.params().sigma());
    ctx.upload_coefficients(&ctx.signed_to_limbs(&e, basis), basis)
}

/// Decrypts ciphertexts of any degree.
pub struct Decryptor {
    ctx: Arc<CkksContext>,
    sk: SecretKey,
}

impl Decryptor {
    /// A decryptor holding the secret key.
    pub fn new(ctx: Arc<CkksContext>, sk: SecretKey) -> Result<Self> {
        ctx.check_params("Decryptor::new", sk.params_id)?;
        Ok(Self { ctx, sk })
    }

    /// `Σ_k c_k · s^k` as a plaintext at the ciphertext's level and scale.
    pub fn decrypt(&self, ct: &Ciphertext) -> Result<Plaintext> {
        let ctx = &self.ctx;
        ctx.check_params("decrypt", ct.params_id)?;
        let ring = ctx.ring();
        let backend = ctx.backend();
        let basis = ring.q_basis(ct.level);
        let words = ctx.words_at(ct.level);
        // Horner in s: ((c_d·s + c_{d-1})·s + ...) + c_0.
        let mut acc = ctx.duplicate(&ct.parts[ct.degree()], words)?;
        for part in ct.parts[..ct.degree()].iter().rev() {
            backend.mul_assign(ring, &mut acc, &self.sk.eval, &basis)?;
            backend.add_assign(ring, &mut acc, part, &basis)?;
        }
        Ok(Plaintext {
            poly: acc,
            level: ct.level,
            scale: ct.scale,
            slots: ct.slots,
            params_id: ct.params_id,
        })
    }
}
