//! The ring context of one parameter set: every RNS modulus with its NTT
//! table, and the constants of base conversion, ModUp/ModDown, rescaling and
//! automorphisms, computed once.
//!
//! Global modulus indices: `0..=L` are the ciphertext primes q_0..q_L and
//! `L+1..L+1+K` the special primes p_0..p_{K-1}. A polynomial's *basis* is
//! the list of global indices of its limbs, in limb order. A ciphertext at
//! level l has basis `[0, 1, .., l]`; the extended basis of key switching at
//! level l is `[0, .., l, L+1, .., L+K]`.
//!
//! Hybrid key-switching digits (Han–Ki): digit j covers the consecutive
//! primes `j*alpha .. min((j+1)*alpha, l+1)` of the level-l chain, where
//! `alpha = Parameters::digit_size()`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::ntt::NttTable;
use crate::error::{Error, Result};
use crate::math::Modulus;
use crate::params::Parameters;

/// Constants of the fast base conversion from a source basis S to a target basis T:
/// `y_s = x_s * (Q_S/q_s)^{-1} mod q_s`, then `x_t = sum_s y_s * (Q_S/q_s mod t) mod t`.
/// The result equals `x + u*Q_S` (mod t) for an integer `0 <= u < |S|`
/// (approximate conversion). The centered exact variant subtracts
/// `v·Q_S` with `v = round(Σ_s y_s / q_s)`, computed in 64-bit fixed point
/// from `source_fraction`, giving the representative of x in `[-Q_S/2, Q_S/2)`.
#[derive(Debug, Clone)]
pub struct BaseConversion {
    /// Global indices of the source moduli.
    pub source: Vec<usize>,
    /// Global indices of the target moduli.
    pub target: Vec<usize>,
    /// `(Q_S/q_s)^{-1} mod q_s` per source limb.
    pub source_hat_inv: Vec<u64>,
    /// `(Q_S/q_s) mod t`, row-major `[target][source]`.
    pub source_hat_mod_target: Vec<u64>,
    /// `floor(2^128 / q_s)` per source limb: `(y_s · f_s) >> 64 ≈ 2^64 · y_s / q_s`.
    pub source_fraction: Vec<u128>,
    /// `(-Q_S) mod t` per target limb.
    pub neg_source_product_mod_target: Vec<u64>,
}

impl BaseConversion {
    fn new(moduli: &[Modulus], source: Vec<usize>, target: Vec<usize>) -> Self {
        let source_hat_inv = source
            .iter()
            .map(|&s| {
                let m = &moduli[s];
                let hat = source
                    .iter()
                    .filter(|&&o| o != s)
                    .fold(1u64, |acc, &o| m.mul(acc, moduli[o].value()));
                m.inv(hat).expect("distinct primes are coprime")
            })
            .collect();
        let mut source_hat_mod_target = Vec::with_capacity(target.len() * source.len());
        for &t in &target {
            let mt = &moduli[t];
            for &s in &source {
                let hat = source
                    .iter()
                    .filter(|&&o| o != s)
                    .fold(1u64, |acc, &o| mt.mul(acc, moduli[o].value()));
                source_hat_mod_target.push(hat);
            }
        }
        let source_fraction = source
            .iter()
            .map(|&s| u128::MAX / moduli[s].value() as u128)
            .collect();
        let neg_source_product_mod_target = target
            .iter()
            .map(|&t| {
                let mt = &moduli[t];
                mt.neg(
                    source
                        .iter()
                        .fold(1u64, |acc, &s| mt.mul(acc, moduli[s].value())),
                )
            })
            .collect();
        Self {
            source,
            target,
            source_hat_inv,
            source_hat_mod_target,
            source_fraction,
            neg_source_product_mod_target,
        }
    }
}

/// Everything needed to compute in the rings of one parameter set.
#[derive(Debug)]
pub struct RingContext {
    params: Parameters,
    moduli: Vec<Modulus>,
    ntt: Vec<NttTable>,
    /// `mod_up[level][digit]`: from the digit's primes to the rest of the extended basis.
    mod_up: Vec<Vec<BaseConversion>>,
    /// From P to all of Q (a level-l ModDown uses the first l+1 targets).
    mod_down: BaseConversion,
    /// `mod_down_rescale[l]` (l >= 1): from `{q_l} ∪ P` to `q_0..q_{l-1}`,
    /// with `(P·q_l)^{-1} mod q_i` per target: ModDown and rescale at once.
    mod_down_rescale: Vec<Option<(BaseConversion, Vec<u64>)>>,
    /// `P^{-1} mod q_i` with Shoup companion, per ciphertext prime.
    p_inv_mod_q: Vec<(u64, u64)>,
    /// `P mod q_i`, per ciphertext prime.
    p_mod_q: Vec<u64>,
    /// `rescale_inv[l][i] = q_l^{-1} mod q_i` (i < l) with Shoup companion.
    rescale_inv: Vec<Vec<(u64, u64)>>,
    /// Evaluation-domain index permutations of automorphisms, by Galois element.
    permutations: Mutex<HashMap<u64, Arc<Vec<u32>>>>,
}

impl RingContext {
    /// Precomputes every table of the parameter set.
    pub fn new(params: &Parameters) -> Result<Self> {
        let log_n = params.log_n();
        let moduli: Vec<Modulus> = params
            .q_moduli()
            .iter()
            .chain(params.p_moduli())
            .copied()
            .collect();
        let ntt = moduli
            .iter()
            .map(|&m| NttTable::new(m, log_n))
            .collect::<Result<Vec<_>>>()?;
        let num_q = params.q().len();
        let num_p = params.p().len();
        let alpha = params.digit_size();
        let special: Vec<usize> = (num_q..num_q + num_p).collect();
        let mut mod_up = Vec::with_capacity(num_q);
        for level in 0..num_q {
            let digits = params.digits_at_level(level);
            let convs = (0..digits)
                .map(|j| {
                    let start = j * alpha;
                    let end = ((j + 1) * alpha).min(level + 1);
                    let source: Vec<usize> = (start..end).collect();
                    let target: Vec<usize> = (0..=level)
                        .filter(|i| !(start..end).contains(i))
                        .chain(special.iter().copied())
                        .collect();
                    BaseConversion::new(&moduli, source, target)
                })
                .collect();
            mod_up.push(convs);
        }
        let mod_down = BaseConversion::new(&moduli, special.clone(), (0..num_q).collect());
        let mod_down_rescale = (0..num_q)
            .map(|l| {
                (l > 0).then(|| {
                    let source: Vec<usize> =
                        std::iter::once(l).chain(special.iter().copied()).collect();
                    let conv = BaseConversion::new(&moduli, source, (0..l).collect());
                    let inverses = (0..l)
                        .map(|i| {
                            let m = &moduli[i];
                            let divisor = conv
                                .source
                                .iter()
                                .fold(1u64, |acc, &s| m.mul(acc, moduli[s].value()));
                            m.inv(divisor).expect("distinct primes are coprime")
                        })
                        .collect();
                    (conv, inverses)
                })
            })
            .collect();
        let mut p_inv_mod_q = Vec::with_capacity(num_q);
        let mut p_mod_q = Vec::with_capacity(num_q);
        for m in &moduli[..num_q] {
            let p = special
                .iter()
                .fold(1u64, |acc, &k| m.mul(acc, moduli[k].value()));
            let inv = m.inv(p).expect("P is coprime to every q_i");
            p_mod_q.push(p);
            p_inv_mod_q.push((inv, m.shoup(inv)));
        }
        let rescale_inv = (0..num_q)
            .map(|l| {
                (0..l)
                    .map(|i| {
                        let m = &moduli[i];
                        let inv = m.inv(moduli[l].value()).expect("distinct primes");
                        (inv, m.shoup(inv))
                    })
                    .collect()
            })
            .collect();
        Ok(Self {
            params: params.clone(),
            moduli,
            ntt,
            mod_up,
            mod_down,
            mod_down_rescale,
            p_inv_mod_q,
            p_mod_q,
            rescale_inv,
            permutations: Mutex::new(HashMap::new()),
        })
    }

    /// The parameter set.
    pub fn params(&self) -> &Parameters {
        &self.params
    }

    /// Ring degree N.
    pub fn n(&self) -> usize {
        self.params.n()
    }

    /// log2 N.
    pub fn log_n(&self) -> u32 {
        self.params.log_n()
    }

    /// All moduli by global index.
    pub fn moduli(&self) -> &[Modulus] {
        &self.moduli
    }

    /// The NTT table of global modulus `index`.
    pub fn ntt(&self, index: usize) -> &NttTable {
        &self.ntt[index]
    }

    /// Number of ciphertext primes (L + 1).
    pub fn num_q(&self) -> usize {
        self.params.q().len()
    }

    /// Number of special primes (K).
    pub fn num_p(&self) -> usize {
        self.params.p().len()
    }

    /// The basis `[0, .., level]` of a ciphertext at `level`.
    pub fn q_basis(&self, level: usize) -> Vec<usize> {
        (0..=level).collect()
    }

    /// The key-switching basis `[0, .., level, L+1, .., L+K]`.
    pub fn extended_basis(&self, level: usize) -> Vec<usize> {
        (0..=level)
            .chain(self.num_q()..self.num_q() + self.num_p())
            .collect()
    }

    /// The full basis `[0, .., L+K]` that keys live in.
    pub fn full_basis(&self) -> Vec<usize> {
        (0..self.num_q() + self.num_p()).collect()
    }

    /// The ModUp conversion of `digit` at `level`.
    pub fn mod_up(&self, level: usize, digit: usize) -> Result<&BaseConversion> {
        self.mod_up
            .get(level)
            .and_then(|d| d.get(digit))
            .ok_or_else(|| Error::LevelMismatch {
                op: "mod_up",
                detail: format!("no digit {digit} at level {level}"),
            })
    }

    /// The ModDown conversion from P to Q.
    pub fn mod_down(&self) -> &BaseConversion {
        &self.mod_down
    }

    /// The conversion from `{q_level} ∪ P` to `q_0..q_{level-1}` and
    /// `(P·q_level)^{-1} mod q_i` per target, for ModDown fused with rescale.
    pub fn mod_down_rescale(&self, level: usize) -> Result<(&BaseConversion, &[u64])> {
        self.mod_down_rescale
            .get(level)
            .and_then(|c| c.as_ref())
            .map(|(conv, inv)| (conv, inv.as_slice()))
            .ok_or(Error::OutOfLevels {
                op: "mod_down_rescale",
                level,
                needed: 1,
            })
    }

    /// `P^{-1} mod q_i` with Shoup companion.
    pub fn p_inv_mod_q(&self, i: usize) -> (u64, u64) {
        self.p_inv_mod_q[i]
    }

    /// `P mod q_i`.
    pub fn p_mod_q(&self, i: usize) -> u64 {
        self.p_mod_q[i]
    }

    /// `q_level^{-1} mod q_i` for `i < level`, with Shoup companion.
    pub fn rescale_inv(&self, level: usize, i: usize) -> (u64, u64) {
        self.rescale_inv[level][i]
    }

    /// The evaluation-domain permutation of the automorphism `X -> X^g`:
    /// output index `i` takes input index `perm[i]`. Derived from the NTT
    /// convention: index i holds the evaluation at psi^(e_i) with
    /// e_i = 2·bitrev(i)+1, and `σ_g(a)(psi^e) = a(psi^(g·e))`.
    pub fn automorphism_permutation(&self, galois_element: u64) -> Result<Arc<Vec<u32>>> {
        let n = self.n();
        let two_n = 2 * n as u64;
        if galois_element % 2 == 0 || galois_element >= two_n {
            return Err(Error::OutOfRange {
                op: "automorphism",
                detail: format!(
                    "Galois element {galois_element} must be odd and below 2N = {two_n}"
                ),
            });
        }
        let mut cache = self
            .permutations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(p) = cache.get(&galois_element) {
            return Ok(p.clone());
        }
        let log_n = self.log_n();
        let mut index_of_exponent = vec![0u32; 2 * n];
        for i in 0..n {
            let e = 2 * super::ntt::bit_reverse(i, log_n) + 1;
            index_of_exponent[e] = i as u32;
        }
        let perm: Vec<u32> = (0..n)
            .map(|i| {
                let e = (2 * super::ntt::bit_reverse(i, log_n) + 1) as u64;
                index_of_exponent[((e * galois_element) % two_n) as usize]
            })
            .collect();
        let perm = Arc::new(perm);
        cache.insert(galois_element, perm.clone());
        Ok(perm)
    }
}
