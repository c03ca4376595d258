//! Built-in parameter sets. Prime generation is deterministic, so a preset
//! is the same set (same primes, same id) on every run; built sets are cached.

use std::collections::HashMap;
use std::sync::Mutex;

use once_cell::sync::Lazy;
use serde::Serialize;

use super::{Parameters, ParametersLiteral, SecretDistribution, SecurityLevel};
use crate::error::{Error, Result};

/// A preset's recipe: bit sizes as runs of `(bits, count)`.
struct PresetSpec {
    name: &'static str,
    log_n: u32,
    log_q: &'static [(u32, usize)],
    log_p: &'static [(u32, usize)],
    dnum: usize,
    secret: SecretDistribution,
    log_scale: u32,
    security: SecurityLevel,
}

const PRESETS: &[PresetSpec] = &[
    PresetSpec {
        name: "TEST_INSECURE_N10",
        log_n: 10,
        log_q: &[(55, 1), (45, 3)],
        log_p: &[(55, 2)],
        dnum: 2,
        secret: SecretDistribution::Ternary,
        log_scale: 45,
        security: SecurityLevel::Insecure,
    },
    PresetSpec {
        name: "TEST_INSECURE_N11",
        log_n: 11,
        log_q: &[(55, 1), (45, 5)],
        log_p: &[(58, 2)],
        dnum: 3,
        secret: SecretDistribution::Ternary,
        log_scale: 45,
        security: SecurityLevel::Insecure,
    },
    PresetSpec {
        name: "TEST_INSECURE_N12",
        log_n: 12,
        log_q: &[(58, 1), (45, 8)],
        log_p: &[(60, 3)],
        dnum: 3,
        secret: SecretDistribution::Ternary,
        log_scale: 45,
        security: SecurityLevel::Insecure,
    },
    PresetSpec {
        name: "TEST_INSECURE_N13",
        log_n: 13,
        log_q: &[(58, 1), (45, 10)],
        log_p: &[(60, 4)],
        dnum: 3,
        secret: SecretDistribution::Ternary,
        log_scale: 45,
        security: SecurityLevel::Insecure,
    },
    // Bootstrapping at a small ring (insecure): q_0, two levels for
    // computation, then from the top: CoeffToSlot (3 × 55), EvalMod (9 × 60:
    // the cosine of degree up to 63 and three double angles), SlotToCoeff
    // (3 × 45). Sparse secret (h = 32) so that |I| <= 16 after ModRaise.
    // 18 limbs, dnum 5, alpha = 4: largest digit 4·60 = 240 <= P = 4·61.
    PresetSpec {
        name: "TEST_INSECURE_BOOT_N11",
        log_n: 11,
        log_q: &[(60, 1), (40, 2), (45, 3), (60, 9), (55, 3)],
        log_p: &[(61, 4)],
        dnum: 5,
        secret: SecretDistribution::SparseTernary { hamming_weight: 32 },
        log_scale: 40,
        security: SecurityLevel::Insecure,
    },
    // The production bootstrapping chain (PN16_BOOT_128_SPARSE_H192: nine
    // 40-bit levels for computation between bootstraps) at a small ring, for
    // tests of circuits that bootstrap many times (the encrypted model).
    // Sparse secret (h = 32, |I| <= 16 after ModRaise).
    PresetSpec {
        name: "TEST_INSECURE_BOOT_N11_L9",
        log_n: 11,
        log_q: &[(60, 1), (40, 9), (42, 3), (60, 9), (60, 3)],
        log_p: &[(61, 4)],
        dnum: 7,
        secret: SecretDistribution::SparseTernary { hamming_weight: 32 },
        log_scale: 40,
        security: SecurityLevel::Insecure,
    },
    // 14 limbs, alpha = 5: largest digit 55 + 4·45 = 235 bits <= P = 240 bits;
    // log QP ≈ 880 <= 881.
    PresetSpec {
        name: "PN15_128",
        log_n: 15,
        log_q: &[(55, 1), (45, 13)],
        log_p: &[(60, 4)],
        dnum: 3,
        secret: SecretDistribution::Ternary,
        log_scale: 45,
        security: SecurityLevel::Bits128,
    },
    // The benchmark set "N = 2^16, 24 limbs, dnum 3": alpha = 8, largest digit
    // 60 + 7·50 = 410 bits <= P = 9·50 = 450 bits; log QP ≈ 1660 <= 1747.
    // Every prime but q_0 is below 2^50, so the CPU's IFMA kernels serve it.
    PresetSpec {
        name: "PN16_128",
        log_n: 16,
        log_q: &[(60, 1), (50, 23)],
        log_p: &[(50, 9)],
        dnum: 3,
        secret: SecretDistribution::Ternary,
        log_scale: 50,
        security: SecurityLevel::Bits128,
    },
    // Bootstrapping at 128-bit security (sparse estimate for h = 192, log QP
    // <= 1546): q_0 and 9 levels of 40 bits for computation, then from the
    // top CoeffToSlot (3 × 60), EvalMod (9 × 60: a degree-63 cosine and
    // three double angles, K = 28), SlotToCoeff (3 × 42). 25 limbs, dnum 7,
    // alpha = 4: largest digit 4·60 = 240 <= P = 4·61; log QP ≈ 1510. Four
    // special primes instead of five pay for the DFT primes' precision: with
    // CoeffToSlot at 55 bits and SlotToCoeff at 38 (and P = 5·61) the
    // bootstrap lost 1.7 bits (24.2 against 25.9 at N = 2^16) for about the
    // same time.
    PresetSpec {
        name: "PN16_BOOT_128_SPARSE_H192",
        log_n: 16,
        log_q: &[(60, 1), (40, 9), (42, 3), (60, 9), (60, 3)],
        log_p: &[(61, 4)],
        dnum: 7,
        secret: SecretDistribution::SparseTernary {
            hamming_weight: 192,
        },
        log_scale: 40,
        security: SecurityLevel::Bits128,
    },
    // 25 limbs, dnum 4, alpha = 7: largest digit 60 + 6·45 = 330 bits <= P =
    // 7·50 = 350 bits; log QP ≈ 1490 <= 1546 (sparse estimate for h = 192).
    PresetSpec {
        name: "PN16_128_SPARSE_H192",
        log_n: 16,
        log_q: &[(60, 1), (45, 24)],
        log_p: &[(50, 7)],
        dnum: 4,
        secret: SecretDistribution::SparseTernary {
            hamming_weight: 192,
        },
        log_scale: 45,
        security: SecurityLevel::Bits128,
    },
];

static CACHE: Lazy<Mutex<HashMap<&'static str, Parameters>>> =
    Lazy::new(|| Mutex::new(HashMap::new()));

fn expand(runs: &[(u32, usize)]) -> Vec<u32> {
    runs.iter()
        .flat_map(|&(bits, count)| std::iter::repeat_n(bits, count))
        .collect()
}

fn build(spec: &PresetSpec) -> Result<Parameters> {
    ParametersLiteral::with_bit_sizes(
        spec.name,
        spec.log_n,
        &expand(spec.log_q),
        &expand(spec.log_p),
        spec.dnum,
        spec.secret,
        spec.log_scale,
        spec.security,
    )?
    .validate()
}

/// The preset named `name` (case-insensitive).
pub(super) fn preset(name: &str) -> Result<Parameters> {
    let spec = PRESETS
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| Error::UnknownPreset(name.to_string()))?;
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(params) = cache.get(spec.name) {
        return Ok(params.clone());
    }
    let params = build(spec)?;
    cache.insert(spec.name, params.clone());
    Ok(params)
}

/// The preset names, in table order.
pub(super) fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|s| s.name).collect()
}

/// One line of `heformer params`: a preset's shape and security.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PresetSummary {
    /// Preset name.
    pub name: String,
    /// log2 of the ring dimension.
    pub log_n: u32,
    /// log2(QP), rounded to one decimal.
    pub log_qp: f64,
    /// The top level L.
    pub levels: usize,
    /// Number of primes in q.
    pub limbs_q: usize,
    /// Number of special primes.
    pub limbs_p: usize,
    /// Number of key-switching digits.
    pub dnum: usize,
    /// `ternary` or `sparse-ternary(h=...)`.
    pub secret: String,
    /// log2 of the default scale.
    pub log_scale: u32,
    /// Rough table-based estimate (see `Parameters::estimated_security_bits`),
    /// rounded to one decimal.
    pub security_bits_estimate: Option<f64>,
    /// The claimed level: `128`, `192`, `256` or `insecure`.
    pub claimed: String,
    /// Whether the set is test-only.
    pub insecure: bool,
}

impl PresetSummary {
    fn of(params: &Parameters) -> Self {
        let round1 = |x: f64| (x * 10.0).round() / 10.0;
        Self {
            name: params.name().to_string(),
            log_n: params.log_n(),
            log_qp: round1(params.log_qp()),
            levels: params.max_level(),
            limbs_q: params.q().len(),
            limbs_p: params.p().len(),
            dnum: params.dnum(),
            secret: params.secret().to_string(),
            log_scale: params.literal().log_default_scale,
            security_bits_estimate: params.estimated_security_bits().map(round1),
            claimed: params.security().to_string(),
            insecure: params.is_insecure(),
        }
    }
}

/// A summary of every preset, in table order. (Every preset validates; this
/// is checked by the tests.)
pub fn preset_summaries() -> Vec<PresetSummary> {
    PRESETS
        .iter()
        .filter_map(|s| preset(s.name).ok())
        .map(|p| PresetSummary::of(&p))
        .collect()
}
