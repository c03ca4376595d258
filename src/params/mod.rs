//! CKKS parameter sets: a plain serde literal ([`ParametersLiteral`])
//! validated once into an immutable, cheaply cloned [`Parameters`].
//!
//! # Invariants of a validated [`Parameters`]
//!
//! * `4 <= log_n <= 17`; a set claiming a security level needs
//!   `10 <= log_n <= 17` (the range of the security table).
//! * `q` (the ciphertext chain `q_0 .. q_L`, `q_0` kept at level 0) and `p`
//!   (the special primes of hybrid key switching) are non-empty; every prime
//!   is NTT-friendly for N (`q ≡ 1 mod 2N`), below 2^61 (one bit of headroom
//!   under the 2^62 limit of [`Modulus`]), and no prime appears twice in
//!   `q ∪ p`.
//! * `1 <= dnum <= q.len()`; the digits are consecutive groups of
//!   `alpha = ceil(q.len() / dnum)` primes of `q` (the last one possibly
//!   shorter), there are exactly `dnum` of them at the top level, and the
//!   special modulus `P` is at least the largest digit product (exact
//!   integer comparison).
//! * `sigma` is finite and in `(0, 100]`; `1 <= log_default_scale <= 60`
//!   and `2^log_default_scale < q_0`; a sparse secret has `1 <= h <= N`.
//! * The claimed [`SecurityLevel`] holds according to the tables of
//!   [`security`] (the Homomorphic Encryption Standard, its extension to
//!   N = 2^16, 2^17 as shipped by OpenFHE, and published estimates for sparse
//!   secrets); [`SecurityLevel::Insecure`] sets are test-only and unchecked.
//! * Once validated, a set never changes: [`Parameters`] has no setters and
//!   clones share one `Arc`.
//! * [`Parameters::id`] is a 64-bit FNV-1a hash of a fixed little-endian
//!   encoding of every literal field except the name: the same literal gives
//!   the same id on every run and machine, and any change to a prime, `dnum`,
//!   the secret, `sigma`, the scale or the claim changes it.

mod presets;
pub mod security;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::math::{generate_ntt_primes, is_ntt_friendly, Modulus};

pub use presets::{preset_summaries, PresetSummary};

/// The customary error standard deviation (the HE standard's 8/√(2π) ≈ 3.19,
/// rounded up).
pub const DEFAULT_SIGMA: f64 = 3.2;

/// Smallest accepted ring dimension exponent (test sets only).
pub const MIN_LOG_N: u32 = 4;
/// Largest accepted ring dimension exponent.
pub const MAX_LOG_N: u32 = 17;
/// Every prime must be below `2^MAX_PRIME_BITS`.
pub const MAX_PRIME_BITS: u32 = 61;
/// Largest accepted `log_default_scale`.
pub const MAX_LOG_SCALE: u32 = 60;
/// Largest accepted error standard deviation.
pub const MAX_SIGMA: f64 = 100.0;

/// The secret key distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretDistribution {
    /// Uniform over {-1, 0, 1}.
    Ternary,
    /// Exactly `hamming_weight` coefficients uniform in {-1, 1}, the rest 0.
    SparseTernary {
        /// Number of nonzero coefficients.
        hamming_weight: usize,
    },
}

impl fmt::Display for SecretDistribution {
    /// `ternary` or `sparse-ternary(h=192)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ternary => write!(f, "ternary"),
            Self::SparseTernary { hamming_weight } => {
                write!(f, "sparse-ternary(h={hamming_weight})")
            }
        }
    }
}

/// The classical security level a set claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecurityLevel {
    /// 128-bit classical security.
    Bits128,
    /// 192-bit classical security.
    Bits192,
    /// 256-bit classical security.
    Bits256,
    /// Test-only: no claim, no check.
    Insecure,
}

impl SecurityLevel {
    /// The claimed number of bits, `None` for [`SecurityLevel::Insecure`].
    pub fn bits(self) -> Option<u32> {
        match self {
            Self::Bits128 => Some(128),
            Self::Bits192 => Some(192),
            Self::Bits256 => Some(256),
            Self::Insecure => None,
        }
    }
}

impl fmt::Display for SecurityLevel {
    /// `128`, `192`, `256` or `insecure`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bits() {
            Some(b) => write!(f, "{b}"),
            None => write!(f, "insecure"),
        }
    }
}

/// An unvalidated parameter set, as written in code or JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParametersLiteral {
    /// A label; not part of [`Parameters::id`].
    pub name: String,
    /// N = 2^log_n.
    pub log_n: u32,
    /// The ciphertext modulus chain q_0 (first, kept at level 0) .. q_L.
    pub q: Vec<u64>,
    /// Special primes for hybrid key switching.
    pub p: Vec<u64>,
    /// Number of key-switching digits.
    pub dnum: usize,
    /// Secret key distribution.
    pub secret: SecretDistribution,
    /// Error standard deviation (3.2 standard).
    pub sigma: f64,
    /// log2 of the default encoding scale.
    pub log_default_scale: u32,
    /// The level the set claims.
    pub security: SecurityLevel,
}

impl ParametersLiteral {
    /// Builds a literal generating distinct NTT-friendly primes of the given
    /// bit sizes (q then p, no prime repeated across q and p), with
    /// `sigma = DEFAULT_SIGMA`. Deterministic: for each bit size the primes
    /// closest below 2^bits go to q first (in chain order), then to p.
    ///
    /// The literal is not validated; call [`ParametersLiteral::validate`].
    #[allow(clippy::too_many_arguments)]
    pub fn with_bit_sizes(
        name: &str,
        log_n: u32,
        log_q: &[u32],
        log_p: &[u32],
        dnum: usize,
        secret: SecretDistribution,
        log_default_scale: u32,
        security: SecurityLevel,
    ) -> Result<Self> {
        if !(MIN_LOG_N..=MAX_LOG_N).contains(&log_n) {
            return Err(Error::InvalidParameters(format!(
                "log_n = {log_n} is outside {MIN_LOG_N}..={MAX_LOG_N}"
            )));
        }
        // One generation per bit size, so primes of equal size are distinct.
        let mut counts: Vec<(u32, usize)> = Vec::new();
        for &bits in log_q.iter().chain(log_p) {
            match counts.iter_mut().find(|(b, _)| *b == bits) {
                Some((_, c)) => *c += 1,
                None => counts.push((bits, 1)),
            }
        }
        let mut pools: HashMap<u32, std::vec::IntoIter<u64>> = HashMap::new();
        for (bits, count) in counts {
            pools.insert(
                bits,
                generate_ntt_primes(bits, log_n, count, &[])?.into_iter(),
            );
        }
        let mut take = |bits: u32| -> u64 {
            // Every size was counted above, with enough primes generated.
            pools.get_mut(&bits).and_then(Iterator::next).unwrap_or(0)
        };
        let q = log_q.iter().map(|&b| take(b)).collect();
        let p = log_p.iter().map(|&b| take(b)).collect();
        Ok(Self {
            name: name.to_string(),
            log_n,
            q,
            p,
            dnum,
            secret,
            sigma: DEFAULT_SIGMA,
            log_default_scale,
            security,
        })
    }

    /// Validates the literal: the same as `Parameters::new(self.clone())`.
    pub fn validate(&self) -> Result<Parameters> {
        Parameters::new(self.clone())
    }

    /// The stable id of this literal (see [`Parameters::id`]).
    fn canonical_id(&self) -> u64 {
        let mut h = Fnv1a::new();
        h.write(b"heformer-params-v1");
        h.write(&self.log_n.to_le_bytes());
        for chain in [&self.q, &self.p] {
            h.write(&(chain.len() as u64).to_le_bytes());
            for &x in chain {
                h.write(&x.to_le_bytes());
            }
        }
        h.write(&(self.dnum as u64).to_le_bytes());
        match self.secret {
            SecretDistribution::Ternary => h.write(&[0]),
            SecretDistribution::SparseTernary { hamming_weight } => {
                h.write(&[1]);
                h.write(&(hamming_weight as u64).to_le_bytes());
            }
        }
        h.write(&self.sigma.to_bits().to_le_bytes());
        h.write(&self.log_default_scale.to_le_bytes());
        h.write(&[match self.security {
            SecurityLevel::Insecure => 0,
            SecurityLevel::Bits128 => 1,
            SecurityLevel::Bits192 => 2,
            SecurityLevel::Bits256 => 3,
        }]);
        h.finish()
    }
}

/// 64-bit FNV-1a.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A validated, immutable parameter set. Cloning is cheap (an `Arc`).
#[derive(Clone, Debug)]
pub struct Parameters {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    literal: ParametersLiteral,
    q_moduli: Vec<Modulus>,
    p_moduli: Vec<Modulus>,
    id: u64,
    alpha: usize,
    log_q: f64,
    log_p: f64,
    estimate: Option<f64>,
}

impl Parameters {
    /// Validates `literal` (rules in the module documentation).
    pub fn new(literal: ParametersLiteral) -> Result<Self> {
        let ParametersLiteral {
            log_n,
            dnum,
            secret,
            sigma,
            log_default_scale,
            security,
            ..
        } = literal;

        if !(MIN_LOG_N..=MAX_LOG_N).contains(&log_n) {
            return invalid(format!(
                "log_n = {log_n} is outside {MIN_LOG_N}..={MAX_LOG_N}"
            ));
        }
        let n = 1usize << log_n;
        if literal.q.is_empty() {
            return invalid("the modulus chain q is empty".into());
        }
        if literal.p.is_empty() {
            return invalid("no special primes p (hybrid key switching needs at least one)".into());
        }

        let mut seen: HashMap<u64, String> = HashMap::new();
        let mut check_chain = |label: &str, chain: &[u64]| -> Result<Vec<Modulus>> {
            let mut moduli = Vec::with_capacity(chain.len());
            for (i, &x) in chain.iter().enumerate() {
                let at = format!("{label}[{i}]");
                if x >> MAX_PRIME_BITS != 0 {
                    return invalid(format!(
                        "{at} = {x} is not below 2^{MAX_PRIME_BITS} (one bit of headroom is kept)"
                    ));
                }
                if !is_ntt_friendly(x, log_n) {
                    return invalid(format!(
                        "{at} = {x} is not an NTT-friendly prime for N = 2^{log_n} \
                         (need a prime with q ≡ 1 mod {})",
                        2 * n
                    ));
                }
                if let Some(first) = seen.insert(x, at.clone()) {
                    return invalid(format!(
                        "prime {x} appears twice in q ∪ p ({first} and {at})"
                    ));
                }
                moduli.push(Modulus::new(x)?);
            }
            Ok(moduli)
        };
        let q_moduli = check_chain("q", &literal.q)?;
        let p_moduli = check_chain("p", &literal.p)?;

        let limbs = literal.q.len();
        if dnum == 0 || dnum > limbs {
            return invalid(format!(
                "dnum = {dnum} must be in 1..={limbs} (the number of primes in q)"
            ));
        }
        let alpha = limbs.div_ceil(dnum);
        let digits = limbs.div_ceil(alpha);
        if digits != dnum {
            return invalid(format!(
                "dnum = {dnum} does not fit the chain: {limbs} primes in q give \
                 alpha = ceil({limbs}/{dnum}) = {alpha} primes per digit and only {digits} \
                 digits; use dnum = {digits}"
            ));
        }
        let big_p = BigUint::product(&literal.p);
        for (d, digit) in literal.q.chunks(alpha).enumerate() {
            if BigUint::product(digit) > big_p {
                return invalid(format!(
                    "dnum = {dnum} does not fit the chain: digit {d} (q[{}..{}], log2 = {:.2}) \
                     exceeds the special modulus P (log2 = {:.2}); add special primes or \
                     raise dnum",
                    d * alpha,
                    d * alpha + digit.len(),
                    sum_log2(digit),
                    sum_log2(&literal.p)
                ));
            }
        }

        if !sigma.is_finite() || sigma <= 0.0 || sigma > MAX_SIGMA {
            return invalid(format!(
                "sigma = {sigma} must be finite, positive and at most {MAX_SIGMA}"
            ));
        }
        if !(1..=MAX_LOG_SCALE).contains(&log_default_scale) {
            return invalid(format!(
                "log_default_scale = {log_default_scale} is outside 1..={MAX_LOG_SCALE}"
            ));
        }
        let q0 = literal.q[0];
        if 1u64 << log_default_scale >= q0 {
            return invalid(format!(
                "log_default_scale = {log_default_scale} is not below log2(q_0) = {:.2} \
                 (q_0 = {q0} cannot hold a message at that scale)",
                (q0 as f64).log2()
            ));
        }
        if let SecretDistribution::SparseTernary { hamming_weight } = secret {
            if !(1..=n).contains(&hamming_weight) {
                return invalid(format!(
                    "sparse secret hamming_weight = {hamming_weight} is outside 1..={n}"
                ));
            }
        }

        let log_q = sum_log2(&literal.q);
        let log_p = sum_log2(&literal.p);
        security::check(log_n, secret, sigma, security, log_q + log_p)?;
        let estimate = security::estimate(log_n, secret, sigma, log_q + log_p);

        Ok(Self {
            inner: Arc::new(Inner {
                id: literal.canonical_id(),
                literal,
                q_moduli,
                p_moduli,
                alpha,
                log_q,
                log_p,
                estimate,
            }),
        })
    }

    /// A built-in preset, matched case-insensitively (see
    /// [`Parameters::preset_names`]); [`Error::UnknownPreset`] otherwise.
    pub fn preset(name: &str) -> Result<Self> {
        presets::preset(name)
    }

    /// The names of the built-in presets.
    pub fn preset_names() -> Vec<&'static str> {
        presets::names()
    }

    /// The literal this set was validated from.
    pub fn literal(&self) -> &ParametersLiteral {
        &self.inner.literal
    }

    /// Stable 64-bit FNV-1a hash of the canonical encoding of the literal
    /// (name excluded): equal literals have equal ids on every machine.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The set's label.
    pub fn name(&self) -> &str {
        &self.inner.literal.name
    }

    /// log2 of the ring dimension.
    pub fn log_n(&self) -> u32 {
        self.inner.literal.log_n
    }

    /// The ring dimension N.
    pub fn n(&self) -> usize {
        1 << self.log_n()
    }

    /// Number of complex slots, N/2.
    pub fn max_slots(&self) -> usize {
        self.n() / 2
    }

    /// The ciphertext chain q_0 .. q_L.
    pub fn q(&self) -> &[u64] {
        &self.inner.literal.q
    }

    /// The special primes.
    pub fn p(&self) -> &[u64] {
        &self.inner.literal.p
    }

    /// The ciphertext chain as [`Modulus`] values.
    pub fn q_moduli(&self) -> &[Modulus] {
        &self.inner.q_moduli
    }

    /// The special primes as [`Modulus`] values.
    pub fn p_moduli(&self) -> &[Modulus] {
        &self.inner.p_moduli
    }

    /// The top level L = `q.len() - 1`.
    pub fn max_level(&self) -> usize {
        self.q().len() - 1
    }

    /// Number of key-switching digits at the top level.
    pub fn dnum(&self) -> usize {
        self.inner.literal.dnum
    }

    /// alpha = ceil((L+1)/dnum), the number of primes of q per digit.
    pub fn digit_size(&self) -> usize {
        self.inner.alpha
    }

    /// Number of digits a ciphertext at `level` decomposes into:
    /// ceil((level+1)/alpha). Equals [`Parameters::dnum`] at the top level.
    pub fn digits_at_level(&self, level: usize) -> usize {
        (level + 1).div_ceil(self.inner.alpha)
    }

    /// The highest level whose ciphertexts decompose into at most `digits`
    /// digits: `digits·α − 1`, at most the chain's top (0 for no digit).
    pub fn top_level_of_digits(&self, digits: usize) -> usize {
        (digits * self.inner.alpha)
            .saturating_sub(1)
            .min(self.max_level())
    }

    /// The secret key distribution.
    pub fn secret(&self) -> SecretDistribution {
        self.inner.literal.secret
    }

    /// The error standard deviation.
    pub fn sigma(&self) -> f64 {
        self.inner.literal.sigma
    }

    /// 2^log_default_scale.
    pub fn default_scale(&self) -> f64 {
        (self.inner.literal.log_default_scale as f64).exp2()
    }

    /// log2 of q_0 · ... · q_L.
    pub fn log_q(&self) -> f64 {
        self.inner.log_q
    }

    /// log2 of the special modulus P.
    pub fn log_p(&self) -> f64 {
        self.inner.log_p
    }

    /// log2(QP), the figure the security tables bound.
    pub fn log_qp(&self) -> f64 {
        self.inner.log_q + self.inner.log_p
    }

    /// The claimed security level.
    pub fn security(&self) -> SecurityLevel {
        self.inner.literal.security
    }

    /// Whether the set is test-only (claims [`SecurityLevel::Insecure`]).
    pub fn is_insecure(&self) -> bool {
        self.security() == SecurityLevel::Insecure
    }

    /// A rough classical security level, whatever the claim.
    ///
    /// Ternary secrets: a piecewise-linear interpolation of λ against
    /// log2(QP) through the three points of the security table's row for N
    /// (capped at 256, extrapolated below 128 with the 192→128 slope, floored
    /// at 0). Sparse secrets: the published estimate's level when the set is
    /// within its modulus bound. This reads the tables of [`security`]; it is
    /// not a lattice-estimator run. `None` when no table entry applies (N
    /// outside 2^10..2^17, an unlisted sparse weight, a sparse set over its
    /// bound, or sigma below the tables' 3.19).
    pub fn estimated_security_bits(&self) -> Option<f64> {
        self.inner.estimate
    }
}

/// An [`Error::InvalidParameters`] with this message.
fn invalid<T>(msg: String) -> Result<T> {
    Err(Error::InvalidParameters(msg))
}

/// Sum of log2 of the values.
fn sum_log2(values: &[u64]) -> f64 {
    values.iter().map(|&x| (x as f64).log2()).sum()
}

/// Minimal unsigned big integer (little-endian words, no leading zero word),
/// only for comparing products of primes exactly.
#[derive(PartialEq, Eq)]
struct BigUint(Vec<u64>);

impl BigUint {
    fn product(values: &[u64]) -> Self {
        let mut words = vec![1u64];
        for &m in values {
            let mut carry = 0u128;
            for w in words.iter_mut() {
                let t = *w as u128 * m as u128 + carry;
                *w = t as u64;
                carry = t >> 64;
            }
            if carry != 0 {
                words.push(carry as u64);
            }
            while words.len() > 1 && words.last() == Some(&0) {
                words.pop();
            }
        }
        Self(words)
    }
}

impl PartialOrd for BigUint {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BigUint {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }
}

#[cfg(test)]
mod tests {
    use super::security::{ternary_bound, ternary_security_bits, TERNARY_BOUNDS};
    use super::*;

    use SecretDistribution::{SparseTernary, Ternary};
    use SecurityLevel::{Bits128, Bits192, Bits256, Insecure};

    /// A small valid test set: N = 2^10, 4 + 2 primes, dnum 2.
    fn base() -> ParametersLiteral {
        ParametersLiteral::with_bit_sizes(
            "base",
            10,
            &[55, 45, 45, 45],
            &[55, 55],
            2,
            Ternary,
            45,
            Insecure,
        )
        .unwrap()
    }

    /// The message of an `InvalidParameters` error (panics otherwise).
    fn invalid_msg(literal: &ParametersLiteral) -> String {
        match literal.validate() {
            Err(Error::InvalidParameters(msg)) => msg,
            other => panic!("expected InvalidParameters, got {other:?}"),
        }
    }

    /// A hand-written literal, independent of prime generation.
    fn golden() -> ParametersLiteral {
        ParametersLiteral {
            name: "golden".into(),
            log_n: 4,
            q: vec![673, 641, 577],
            p: vec![7681],
            dnum: 3,
            secret: Ternary,
            sigma: 3.2,
            log_default_scale: 8,
            security: Insecure,
        }
    }

    #[test]
    fn every_preset_validates_and_holds_its_claim() {
        let names = Parameters::preset_names();
        assert_eq!(names.len(), 10);
        for name in names {
            let params = Parameters::preset(name).unwrap();
            assert_eq!(params.name(), name);
            assert_eq!(params.digits_at_level(params.max_level()), params.dnum());
            // Deterministic: rebuilding the literal gives the same set.
            assert_eq!(params.literal().validate().unwrap().id(), params.id());
            match params.security().bits() {
                Some(claimed) => {
                    assert!(!params.is_insecure());
                    let estimate = params.estimated_security_bits().unwrap();
                    assert!(estimate >= claimed as f64, "{name}: {estimate} < {claimed}");
                }
                None => assert!(params.is_insecure()),
            }
            for (i, m) in params
                .q_moduli()
                .iter()
                .chain(params.p_moduli())
                .enumerate()
            {
                let x = m.value();
                assert!(
                    x < 1 << 61 && is_ntt_friendly(x, params.log_n()),
                    "{name} prime {i}"
                );
            }
        }
    }

    #[test]
    fn preset_shapes() {
        let p = Parameters::preset("PN16_128").unwrap();
        assert_eq!((p.log_n(), p.n(), p.max_slots()), (16, 65536, 32768));
        assert_eq!(
            (p.q().len(), p.p().len(), p.dnum(), p.digit_size()),
            (24, 9, 3, 8)
        );
        assert_eq!(p.max_level(), 23);
        assert_eq!(p.digits_at_level(0), 1);
        assert_eq!(p.digits_at_level(7), 1);
        assert_eq!(p.digits_at_level(8), 2);
        assert_eq!(p.digits_at_level(23), 3);
        assert_eq!(p.default_scale(), 2f64.powi(50));
        assert!((p.log_qp() - 1660.0).abs() < 0.01, "{}", p.log_qp());
        assert!((p.log_q() + p.log_p() - p.log_qp()).abs() < 1e-9);

        let s = Parameters::preset("pn16_128_sparse_h192").unwrap();
        assert_eq!(
            s.secret(),
            SparseTernary {
                hamming_weight: 192
            }
        );
        assert!(s.log_qp() <= 1546.0);
        assert_eq!(s.estimated_security_bits(), Some(128.0));
        let t = Parameters::preset("pn15_128").unwrap();
        assert!(t.log_qp() <= 881.0);
        assert_eq!(t.sigma(), DEFAULT_SIGMA);
    }

    #[test]
    fn preset_lookup_is_case_insensitive_and_cached() {
        let a = Parameters::preset("test_insecure_n10").unwrap();
        let b = Parameters::preset("TEST_INSECURE_N10").unwrap();
        assert_eq!(a.id(), b.id());
        assert!(Arc::ptr_eq(&a.inner, &b.inner));
        match Parameters::preset("PN99") {
            Err(Error::UnknownPreset(name)) => assert_eq!(name, "PN99"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn summaries_cover_every_preset_and_serialize() {
        let summaries = preset_summaries();
        let names: Vec<_> = summaries.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, Parameters::preset_names());
        let pn16 = summaries.iter().find(|s| s.name == "PN16_128").unwrap();
        assert_eq!(
            (pn16.levels, pn16.limbs_q, pn16.limbs_p, pn16.dnum),
            (23, 24, 9, 3)
        );
        assert_eq!(pn16.claimed, "128");
        assert_eq!(pn16.log_qp, 1660.0);
        assert!(!pn16.insecure);
        let sparse = summaries
            .iter()
            .find(|s| s.name == "PN16_128_SPARSE_H192")
            .unwrap();
        assert_eq!(sparse.secret, "sparse-ternary(h=192)");
        let test = summaries
            .iter()
            .find(|s| s.name == "TEST_INSECURE_N10")
            .unwrap();
        assert_eq!((test.claimed.as_str(), test.insecure), ("insecure", true));
        assert_eq!(test.secret, "ternary");
        let json = serde_json::to_string(&summaries).unwrap();
        assert!(json.contains("\"security_bits_estimate\""));
    }

    #[test]
    fn with_bit_sizes_gives_distinct_primes_of_the_right_size() {
        let lit = ParametersLiteral::with_bit_sizes(
            "x",
            12,
            &[60, 50, 60],
            &[60, 60],
            2,
            Ternary,
            40,
            Insecure,
        )
        .unwrap();
        let all: Vec<u64> = lit.q.iter().chain(&lit.p).copied().collect();
        let bits: Vec<u32> = all.iter().map(|x| 64 - x.leading_zeros()).collect();
        assert_eq!(bits, [60, 50, 60, 60, 60]);
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
        assert!(lit.validate().is_ok());
        assert!(
            ParametersLiteral::with_bit_sizes("x", 12, &[62], &[60], 1, Ternary, 40, Insecure)
                .is_err()
        );
        assert!(
            ParametersLiteral::with_bit_sizes("x", 18, &[60], &[60], 1, Ternary, 40, Insecure)
                .is_err()
        );
    }

    #[test]
    fn rejects_log_n_out_of_range_and_empty_chains() {
        let mut lit = golden();
        lit.log_n = 3;
        assert!(invalid_msg(&lit).contains("log_n = 3"));
        lit.log_n = 18;
        assert!(invalid_msg(&lit).contains("log_n = 18"));
        let mut lit = base();
        lit.q.clear();
        assert!(invalid_msg(&lit).contains("q is empty"));
        let mut lit = base();
        lit.p.clear();
        assert!(invalid_msg(&lit).contains("special primes"));
    }

    #[test]
    fn rejects_non_ntt_friendly_prime() {
        let mut lit = base();
        lit.q[2] = 1_000_000_007; // prime, but not 1 mod 2048
        let msg = invalid_msg(&lit);
        assert!(
            msg.contains("q[2] = 1000000007") && msg.contains("NTT-friendly"),
            "{msg}"
        );
        lit.q[2] = lit.q[1] + 2048; // 1 mod 2048 but a different number: composite or prime
        if !crate::math::is_prime(lit.q[2]) {
            assert!(invalid_msg(&lit).contains("NTT-friendly"));
        }
        let mut lit = base();
        lit.p[1] = 0;
        assert!(invalid_msg(&lit).contains("p[1] = 0"));
    }

    #[test]
    fn rejects_primes_at_or_above_2_pow_61() {
        // An NTT-friendly prime for N = 2^10 between 2^61 and 2^62.
        let two_n = 2u64 << 10;
        let mut big = (1u64 << 62) - two_n + 1;
        while !is_ntt_friendly(big, 10) {
            big -= two_n;
        }
        assert!(big >> 61 == 1);
        let mut lit = base();
        lit.p[0] = big;
        let msg = invalid_msg(&lit);
        assert!(
            msg.contains(&format!("p[0] = {big}")) && msg.contains("2^61"),
            "{msg}"
        );
        lit.p[0] = 1 << 61;
        assert!(invalid_msg(&lit).contains("2^61"));
    }

    #[test]
    fn rejects_repeated_primes() {
        let mut lit = base();
        lit.p[0] = lit.q[1];
        let msg = invalid_msg(&lit);
        assert!(
            msg.contains("twice") && msg.contains("q[1]") && msg.contains("p[0]"),
            "{msg}"
        );
        let mut lit = base();
        lit.q[3] = lit.q[2];
        assert!(invalid_msg(&lit).contains("twice"));
    }

    #[test]
    fn rejects_bad_dnum() {
        let mut lit = base();
        lit.dnum = 0;
        assert!(invalid_msg(&lit).contains("dnum = 0"));
        lit.dnum = 5;
        assert!(invalid_msg(&lit).contains("dnum = 5"));
        // 4 primes with dnum 3: alpha 2 gives only 2 digits.
        lit.dnum = 3;
        let msg = invalid_msg(&lit);
        assert!(
            msg.contains("does not fit") && msg.contains("use dnum = 2"),
            "{msg}"
        );
        lit.dnum = 4;
        assert!(lit.validate().is_ok());
    }

    #[test]
    fn rejects_special_modulus_smaller_than_a_digit() {
        // Digits of 55+45 and 45+45 bits against a single 55-bit P.
        let lit = ParametersLiteral::with_bit_sizes(
            "x",
            10,
            &[55, 45, 45, 45],
            &[55],
            2,
            Ternary,
            45,
            Insecure,
        )
        .unwrap();
        let msg = invalid_msg(&lit);
        assert!(
            msg.contains("does not fit the chain") && msg.contains("digit 0"),
            "{msg}"
        );
        // With dnum 4 every digit is one prime, but q_0 and P both have 55
        // bits and q_0 (the prime closest to 2^55) is the larger: the exact
        // comparison still rejects it, and accepts it once the two swap.
        let mut lit = lit.clone();
        lit.dnum = 4;
        assert!(lit.q[0] > lit.p[0]);
        assert!(invalid_msg(&lit).contains("digit 0"));
        std::mem::swap(&mut lit.q[0], &mut lit.p[0]);
        assert!(lit.validate().is_ok());
        // Same on a hand-written set: digits 673, 641, 577 against P = 641 or 7681.
        let mut lit = golden();
        lit.p = vec![641 + 32 * 100]; // 3841 = 23 * 167, composite
        assert!(invalid_msg(&lit).contains("NTT-friendly"));
        lit.p = vec![353];
        assert!(invalid_msg(&lit).contains("digit 0"));
    }

    #[test]
    fn rejects_bad_sigma_scale_and_weight() {
        for sigma in [0.0, -1.0, f64::NAN, f64::INFINITY, 100.5] {
            let mut lit = base();
            lit.sigma = sigma;
            assert!(invalid_msg(&lit).contains("sigma"), "{sigma}");
        }
        let mut lit = base();
        lit.sigma = 100.0;
        assert!(lit.validate().is_ok());
        for scale in [0, 61] {
            let mut lit = base();
            lit.log_default_scale = scale;
            assert!(invalid_msg(&lit).contains("log_default_scale"), "{scale}");
        }
        let mut lit = base();
        lit.log_default_scale = 55; // q_0 has 55 bits, so q_0 < 2^55
        assert!(invalid_msg(&lit).contains("log2(q_0)"));
        lit.log_default_scale = 54;
        assert!(lit.validate().is_ok());
        for h in [0, 1025] {
            let mut lit = base();
            lit.secret = SparseTernary { hamming_weight: h };
            assert!(invalid_msg(&lit).contains("hamming_weight"), "{h}");
        }
        let mut lit = base();
        lit.secret = SparseTernary {
            hamming_weight: 1024,
        };
        assert!(lit.validate().is_ok());
    }

    #[test]
    fn security_claim_over_the_bound_is_insecure() {
        // log QP ≈ 205 > 109 at N = 2^12.
        let lit = ParametersLiteral::with_bit_sizes(
            "x",
            12,
            &[50, 50, 50],
            &[55],
            3,
            Ternary,
            40,
            Bits128,
        )
        .unwrap();
        match lit.validate() {
            Err(Error::Insecure {
                log_n,
                log_qp,
                bound,
                claimed_bits,
                secret,
            }) => {
                assert_eq!((log_n, bound, claimed_bits), (12, 109, 128));
                assert!(log_qp > 204.0 && log_qp < 205.0, "{log_qp}");
                assert_eq!(secret, "ternary");
            }
            other => panic!("{other:?}"),
        }
        // Within 128 but not 192 or 256: log QP ≈ 205 at N = 2^13 (218 / 152 / 118).
        let lit = ParametersLiteral::with_bit_sizes(
            "x",
            13,
            &[50, 50, 50],
            &[55],
            3,
            Ternary,
            40,
            Bits128,
        )
        .unwrap();
        assert!(lit.validate().is_ok());
        for level in [Bits192, Bits256] {
            let mut l = lit.clone();
            l.security = level;
            assert!(matches!(l.validate(), Err(Error::Insecure { .. })));
        }
        let mut l = lit.clone();
        l.security = Insecure;
        assert!(l.validate().is_ok());
        // Claims need N in the table and sigma as the table assumes.
        let mut small = golden();
        small.security = Bits128;
        assert!(invalid_msg(&small).contains("2^10 .. 2^17"));
        let mut l = lit.clone();
        l.sigma = 1.0;
        assert!(invalid_msg(&l).contains("sigma = 1"));
    }

    #[test]
    fn sparse_secret_needs_a_published_estimate() {
        let lit = ParametersLiteral::with_bit_sizes(
            "x",
            15,
            &[50, 40],
            &[55],
            2,
            SparseTernary { hamming_weight: 64 },
            30,
            Bits128,
        )
        .unwrap();
        let msg = invalid_msg(&lit);
        assert!(
            msg.contains("no published security estimate") && msg.contains("h = 64"),
            "{msg}"
        );
        let mut ok = lit.clone();
        ok.secret = SparseTernary {
            hamming_weight: 192,
        };
        let params = ok.validate().unwrap();
        assert_eq!(params.estimated_security_bits(), Some(128.0));
        let mut higher = ok.clone();
        higher.security = Bits192;
        assert!(invalid_msg(&higher).contains("no published security estimate"));
        let mut unknown = lit.clone();
        unknown.security = Insecure;
        let params = unknown.validate().unwrap();
        assert_eq!(params.estimated_security_bits(), None);
        // Over the estimate's modulus bound: Insecure error.
        let big = ParametersLiteral::with_bit_sizes(
            "x",
            15,
            &[60; 12],
            &[61; 3],
            6,
            SparseTernary {
                hamming_weight: 192,
            },
            40,
            Bits128,
        )
        .unwrap();
        match big.validate() {
            Err(Error::Insecure { bound, secret, .. }) => {
                assert_eq!(bound, 768);
                assert_eq!(secret, "sparse-ternary(h=192)");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn security_table_and_interpolation() {
        assert_eq!(ternary_bound(16, Bits128), Some(1747));
        assert_eq!(ternary_bound(15, Bits192), Some(611));
        assert_eq!(ternary_bound(9, Bits128), None);
        assert_eq!(ternary_bound(12, Insecure), None);
        for (log_n, [b128, b192, b256]) in TERNARY_BOUNDS {
            assert!(b128 > b192 && b192 > b256);
            let at = |x: u32| ternary_security_bits(log_n, x as f64).unwrap();
            assert_eq!(at(b128), 128.0);
            assert_eq!(at(b192), 192.0);
            assert_eq!(at(b256), 256.0);
            assert_eq!(at(b256 / 2), 256.0);
            assert!(at(b128 + 1) < 128.0);
            assert_eq!(at(100 * b128), 0.0);
            let mid = ternary_security_bits(log_n, (b128 + b192) as f64 / 2.0).unwrap();
            assert!((mid - 160.0).abs() < 1e-9);
        }
        // Extrapolation slope is the 192 -> 128 one: at N = 2^15, 64/270 bits per bit.
        let x = ternary_security_bits(15, 881.0 + 270.0).unwrap();
        assert!((x - 64.0).abs() < 1e-9);
        assert_eq!(ternary_security_bits(18, 10.0), None);
        // Test presets get an estimate too (far below 128 for these).
        let n10 = Parameters::preset("TEST_INSECURE_N10").unwrap();
        assert_eq!(n10.estimated_security_bits(), Some(0.0));
    }

    #[test]
    fn ids_are_stable() {
        let a = golden().validate().unwrap();
        let b = golden().validate().unwrap();
        assert_eq!(a.id(), b.id());
        // Fixed across runs and machines (little-endian FNV-1a of the fields).
        assert_eq!(a.id(), GOLDEN_ID, "{:#018x}", a.id());
        let mut renamed = golden();
        renamed.name = "other".into();
        assert_eq!(renamed.validate().unwrap().id(), a.id());
        let mut changed = golden();
        changed.q[1] = 449;
        assert_ne!(changed.validate().unwrap().id(), a.id());
        let base_id = base().validate().unwrap().id();
        let mut lit = base();
        lit.p.swap(0, 1);
        assert_ne!(lit.validate().unwrap().id(), base_id);
        let mut lit = base();
        lit.sigma = 3.19;
        assert_ne!(lit.validate().unwrap().id(), base_id);
        let mut lit = base();
        lit.dnum = 4;
        assert_ne!(lit.validate().unwrap().id(), base_id);
        let mut lit = base();
        lit.secret = SparseTernary { hamming_weight: 64 };
        assert_ne!(lit.validate().unwrap().id(), base_id);
    }

    /// Cross-checked with an independent FNV-1a implementation (Python).
    const GOLDEN_ID: u64 = 0x38c3_bb4c_c3f3_1183;

    #[test]
    fn literal_serde_round_trip() {
        for lit in [
            base(),
            golden(),
            Parameters::preset("PN16_128_SPARSE_H192")
                .unwrap()
                .literal()
                .clone(),
        ] {
            let json = serde_json::to_string(&lit).unwrap();
            let back: ParametersLiteral = serde_json::from_str(&json).unwrap();
            assert_eq!(back, lit);
            assert_eq!(back.validate().unwrap().id(), lit.validate().unwrap().id());
        }
        let json = r#"{"name":"j","log_n":4,"q":[673,641,577],"p":[7681],"dnum":3,
            "secret":"Ternary","sigma":3.2,"log_default_scale":8,"security":"Insecure"}"#;
        let lit: ParametersLiteral = serde_json::from_str(json).unwrap();
        assert_eq!(
            lit.validate().unwrap().id(),
            golden().validate().unwrap().id()
        );
    }

    #[test]
    fn clones_share_state() {
        let p = Parameters::preset("TEST_INSECURE_N11").unwrap();
        let q = p.clone();
        assert!(Arc::ptr_eq(&p.inner, &q.inner));
        assert_eq!(p.q_moduli().len(), p.q().len());
        assert_eq!(p.p_moduli()[0].value(), p.p()[0]);
    }
}
