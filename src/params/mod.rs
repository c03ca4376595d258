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
            pools.insert(bits, generate_ntt_primes(bits, log_n, count, &[])?.into_iter());
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

