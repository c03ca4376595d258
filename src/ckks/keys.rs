//! Keys and key generation with hybrid key switching (Han–Ki, dnum digits).
//!
//! A switching key from s' to s is, for each digit j of the top level,
//! a pair on the full basis Q ∪ P (evaluation domain):
//! `b_j = -a_j·s + e_j + [P·s' on the limbs of digit j]`, `a_j` uniform.
//! Because `P·s'` sits only on the digit's own primes, the same key serves
//! every level: the digits of a level-l ciphertext are its residues on the
//! digit's primes, lifted to the extended basis (see `keyswitch`).
//!
//! A key for the levels up to some `l` only needs the `k` digits of level
//! `l` and, in each, the limbs a key switch at those levels reads: the
//! extended basis of `t = k·α − 1` (`q_0..=q_t`, then P;
//! [`KeyLayout`](crate::backend::KeyLayout)). Such a capped key is smaller
//! in both its digit count and its limbs.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::context::CkksContext;
use super::embedding::{galois_element_for_conjugation, galois_element_for_rotation};
use super::sampling::Prng;
use crate::backend::Buffer;
use crate::error::{Error, Result};
use crate::params::Parameters;

/// The secret key s (client side only).
#[derive(Debug, Clone)]
pub struct SecretKey {
    /// Signed coefficients of s.
    pub(crate) coefficients: Vec<i64>,
    /// s on the full basis, evaluation domain.
    pub(crate) eval: Buffer,
    pub(crate) params_id: u64,
}

/// The public encryption key (b, a) = (-a·s + e, a) on the full basis Q·P
/// (encryption divides its noise by P, see [`crate::ckks::Encryptor`]).
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub(crate) b: Buffer,
    pub(crate) a: Buffer,
    pub(crate) params_id: u64,
}

/// A key switching from some s' to s: one (b_j, a_j) pair per digit.
///
/// A key with every digit of the parameter set serves every level; one with
/// its first `k` digits only serves the levels whose ciphertexts decompose
/// into at most `k` digits ([`SwitchingKey::max_level`]).
#[derive(Debug, Clone)]
pub struct SwitchingKey {
    pub(crate) digits: Vec<(Buffer, Buffer)>,
    pub(crate) params_id: u64,
}

impl SwitchingKey {
    /// The highest level it can switch under `params`: `k·α − 1` for `k`
    /// digits of `α` primes, at most the chain's top.
    pub fn max_level(&self, params: &Parameters) -> usize {
        params.top_level_of_digits(self.digits.len())
    }
}

/// Switches s² to s after a tensor product.
#[derive(Debug, Clone)]
pub struct RelinearizationKey(pub(crate) SwitchingKey);

/// Switches σ_g(s) to s, for the automorphism X -> X^g.
#[derive(Debug, Clone)]
pub struct GaloisKey {
    pub(crate) galois_element: u64,
    pub(crate) key: SwitchingKey,
}

impl GaloisKey {
    /// The Galois element g of X -> X^g.
    pub fn galois_element(&self) -> u64 {
        self.galois_element
    }

    /// The highest level it serves (see [`SwitchingKey::max_level`]).
    pub fn max_level(&self, params: &Parameters) -> usize {
        self.key.max_level(params)
    }
}

/// A set of Galois keys by Galois element.
#[derive(Debug, Clone, Default)]
pub struct GaloisKeys {
    pub(crate) keys: BTreeMap<u64, Arc<GaloisKey>>,
}

impl GaloisKeys {
    /// The key for `galois_element`, if present.
    pub fn get(&self, galois_element: u64) -> Option<&GaloisKey> {
        self.keys.get(&galois_element).map(|k| k.as_ref())
    }

    /// Adds (or replaces) a key.
    pub fn insert(&mut self, key: GaloisKey) {
        self.keys.insert(key.galois_element, Arc::new(key));
    }

    /// The Galois elements present.
    pub fn elements(&self) -> Vec<u64> {
        self.keys.keys().copied().collect()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Generates every kind of key from a CSPRNG.
pub struct KeyGenerator {
    ctx: Arc<CkksContext>,
    prng: Prng,
}

impl KeyGenerator {
    /// A generator drawing from `prng` (use [`Prng::from_os`] outside tests).
    pub fn new(ctx: Arc<CkksContext>, prng: Prng) -> Self {
        Self { ctx, prng }
    }

    /// The context of the keys.
    pub fn context(&self) -> &Arc<CkksContext> {
        &self.ctx
    }

    /// An independent generator for the same context, its CSPRNG seeded
    /// from this one's (to generate keys on several threads).
    pub fn fork(&mut self) -> Self {
        Self {
            ctx: self.ctx.clone(),
            prng: self.prng.fork(),
        }
    }

    /// A fresh secret key of the parameter set's distribution.
    pub fn gen_secret_key(&mut self) -> Result<SecretKey> {
        let params = self.ctx.params();
        let coefficients = self.prng.secret(params.n(), params.secret());
        self.secret_key_from_coefficients(coefficients)
    }

    /// A secret key with the given signed coefficients (must be N of them).
    pub fn secret_key_from_coefficients(&self, coefficients: Vec<i64>) -> Result<SecretKey> {
        let n = self.ctx.n();
        if coefficients.len() != n {
            return Err(Error::LengthMismatch {
                op: "secret_key_from_coefficients",
                got: coefficients.len(),
                expected: n,
            });
        }
        let basis = self.ctx.ring().full_basis();
        let eval = self
            .ctx
            .upload_coefficients(&self.ctx.signed_to_limbs(&coefficients, &basis), &basis)?;
        Ok(SecretKey {
            coefficients,
            eval,
            params_id: self.ctx.params().id(),
        })
    }

    /// `(-a·s + e, a)` on `basis` (the full basis or an extended basis)
    /// with a fresh uniform `a` and Gaussian `e`, for `secret` s on `basis`.
    fn rlwe_sample(&mut self, secret: &Buffer, basis: &[usize]) -> Result<(Buffer, Buffer)> {
        let ctx = &self.ctx;
        let n = ctx.n();
        let mut a_host = vec![0u64; n * basis.len()];
        for (limb, &g) in a_host.chunks_mut(n).zip(basis) {
            self.prng.fill_uniform(&ctx.ring().moduli()[g], limb);
        }
        // `a` is sampled directly in the evaluation domain (uniform either way).
        let a = ctx.backend().upload(&a_host)?;
        let e = self.prng.gaussian(n, ctx.params().sigma());
        let mut b = ctx.upload_coefficients(&ctx.signed_to_limbs(&e, basis), basis)?;
        let mut a_s = ctx.duplicate(&a, n * basis.len())?;
        ctx.backend()
            .mul_assign(ctx.ring(), &mut a_s, secret, basis)?;
        ctx.backend().sub_assign(ctx.ring(), &mut b, &a_s, basis)?;
        Ok((b, a))
    }

    /// The public key for `sk`.
    pub fn gen_public_key(&mut self, sk: &SecretKey) -> Result<PublicKey> {
        self.ctx.check_params("gen_public_key", sk.params_id)?;
        let basis = self.ctx.ring().full_basis();
        let (b, a) = self.rlwe_sample(&sk.eval, &basis)?;
        Ok(PublicKey {
            b,
            a,
            params_id: self.ctx.params().id(),
        })
    }

    /// A key switching `s_from` to `s_to` (both on the full basis,
    /// evaluation domain) for ciphertexts up to `max_level`: the digits of
    /// that level only, each on the extended basis of the highest level
    /// they serve ([`KeyLayout`](crate::backend::KeyLayout)).
    fn switching_key(
        &mut self,
        s_to: &Buffer,
        s_from: &Buffer,
        max_level: usize,
    ) -> Result<SwitchingKey> {
        let ctx = self.ctx.clone();
        let params = ctx.params();
        ctx.check_level("switching_key", max_level)?;
        let ring = ctx.ring();
        let digits = params.digits_at_level(max_level);
        let basis = ring.extended_basis(params.top_level_of_digits(digits));
        let alpha = params.digit_size();
        let n = ctx.n();
        let full = n * ring.full_basis().len();
        // Secret material on the host and in the restricted copy is wiped
        // on every exit.
        let s_from = Wiped(ctx.backend().download(s_from, full)?);
        // `s_to` on the key's basis: its Q limbs up to the top, then P.
        let s_to = {
            let words = Wiped(ctx.backend().download(s_to, full)?);
            let limbs = Wiped(
                basis
                    .iter()
                    .flat_map(|&g| &words.0[g * n..(g + 1) * n])
                    .copied()
                    .collect(),
            );
            WipedBuffer(ctx.backend().upload(&limbs.0)?)
        };
        let (s_from, s_to) = (&s_from.0, &s_to.0);
        let mut out = Vec::with_capacity(digits);
        for j in 0..digits {
            let (b, a) = self.rlwe_sample(s_to, &basis)?;
            // Add P·s_from on the digit's own primes only (Q primes: their
            // position in the key is their index).
            let mut host_b = ctx.backend().download(&b, n * basis.len())?;
            for i in j * alpha..((j + 1) * alpha).min(params.max_level() + 1) {
                let m = ring.moduli()[i];
                let p = ring.p_mod_q(i);
                let ps = m.shoup(p);
                for c in i * n..(i + 1) * n {
                    host_b[c] = m.add(host_b[c], m.mul_shoup(s_from[c], p, ps));
                }
            }
            out.push((ctx.backend().upload(&host_b)?, a));
        }
        Ok(SwitchingKey {
            digits: out,
            params_id: params.id(),
        })
    }

    /// The relinearization key (s² → s).
    pub fn gen_relinearization_key(&mut self, sk: &SecretKey) -> Result<RelinearizationKey> {
        self.ctx
            .check_params("gen_relinearization_key", sk.params_id)?;
        let ctx = self.ctx.clone();
        let basis = ctx.ring().full_basis();
        let mut s2 = WipedBuffer(ctx.duplicate(&sk.eval, ctx.n() * basis.len())?);
        ctx.backend()
            .mul_assign(ctx.ring(), &mut s2.0, &sk.eval, &basis)?;
        let top = ctx.params().max_level();
        Ok(RelinearizationKey(
            self.switching_key(&sk.eval, &s2.0, top)?,
        ))
    }

    /// The Galois key of `X -> X^g`: a key switching s to σ_g^{-1}(s).
    ///
    /// It is σ_g^{-1} applied to the key σ_g(s) → s, so the evaluator takes
    /// the inner product with the *unpermuted* digits of c1 and applies σ_g
    /// to the two (ModDown'ed) results: two permutations per rotation
    /// instead of one per decomposed digit.
    pub fn gen_galois_key(&mut self, sk: &SecretKey, galois_element: u64) -> Result<GaloisKey> {
        let top = self.ctx.params().max_level();
        self.gen_galois_key_to_level(sk, galois_element, top)
    }

    /// The Galois key of `X -> X^g` for ciphertexts at `max_level` and
    /// below only: the digits of that level, so a fraction of the full
    /// key's size (for a circuit that runs below its bootstrapping levels).
    /// A switch above its level is an [`Error::LevelMismatch`].
    pub fn gen_galois_key_to_level(
        &mut self,
        sk: &SecretKey,
        galois_element: u64,
        max_level: usize,
    ) -> Result<GaloisKey> {
        self.ctx.check_params("gen_galois_key", sk.params_id)?;
        let two_n = 2 * self.ctx.n() as u64;
        if galois_element % 2 == 0 || galois_element >= two_n {
            return Err(Error::OutOfRange {
                op: "gen_galois_key",
                detail: format!(
                    "Galois element {galois_element} must be odd and below 2N = {two_n}"
                ),
            });
        }
        let ctx = self.ctx.clone();
        let basis = ctx.ring().full_basis();
        let inverse = galois_inverse(galois_element, ctx.params().log_n());
        let mut s_inv = WipedBuffer(ctx.backend().alloc(ctx.n() * basis.len())?);
        ctx.backend()
            .automorphism(ctx.ring(), &sk.eval, inverse, &mut s_inv.0, &basis)?;
        Ok(GaloisKey {
            galois_element,
            key: self.switching_key(&s_inv.0, &sk.eval, max_level)?,
        })
    }

    /// Galois keys for left rotations by each of `rotations` slots, and for
    /// conjugation when `conjugation` is set. Duplicates are generated once.
    pub fn gen_galois_keys(
        &mut self,
        sk: &SecretKey,
        rotations: &[i64],
        conjugation: bool,
    ) -> Result<GaloisKeys> {
        let log_n = self.ctx.params().log_n();
        let mut elements: Vec<u64> = rotations
            .iter()
            .map(|&k| galois_element_for_rotation(log_n, k))
            .filter(|&g| g != 1)
            .collect();
        if conjugation {
            elements.push(galois_element_for_conjugation(log_n));
        }
        elements.sort_unstable();
        elements.dedup();
        let mut keys = GaloisKeys::default();
        for g in elements {
            keys.insert(self.gen_galois_key(sk, g)?);
        }
        Ok(keys)
    }
}

/// Host words of secret material, zeroed when dropped.
struct Wiped(Vec<u64>);

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

/// A buffer of secret material, zeroed before it returns to its pool.
struct WipedBuffer(Buffer);

impl Drop for WipedBuffer {
    fn drop(&mut self) {
        self.0.wipe();
    }
}

impl Drop for SecretKey {
    /// Overwrites the secret (coefficients and evaluation form) before the
    /// memory is freed or returned to the buffer pool.
    fn drop(&mut self) {
        self.coefficients.fill(0);
        std::hint::black_box(&self.coefficients);
        self.eval.wipe();
    }
}

impl SecretKey {
    /// The signed coefficients of s.
    pub fn coefficients(&self) -> &[i64] {
        &self.coefficients
    }

    /// The id of the parameter set.
    pub fn params_id(&self) -> u64 {
        self.params_id
    }
}

/// `g^{-1} mod 2N` for an odd Galois element `g` (Newton's iteration for
/// the inverse modulo 2^64, which doubles the correct bits each step).
pub(crate) fn galois_inverse(g: u64, log_n: u32) -> u64 {
    let mut x = g;
    for _ in 0..6 {
        x = x.wrapping_mul(2u64.wrapping_sub(g.wrapping_mul(x)));
    }
    x & ((2u64 << log_n) - 1)
}

#[cfg(test)]
mod tests {
    use super::galois_inverse;

    #[test]
    fn galois_inverse_inverts_modulo_2n() {
        for log_n in [4u32, 10, 16, 17] {
            let two_n = 2u64 << log_n;
            for g in [1u64, 3, 5, 25, two_n - 1, (12345 % two_n) | 1] {
                assert_eq!(
                    (g * galois_inverse(g, log_n)) % two_n,
                    1,
                    "g={g} log_n={log_n}"
                );
            }
        }
    }
}
