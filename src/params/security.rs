//! Security tables: the largest `log2(QP)` a ring dimension supports at a
//! given classical security level, and a rough estimate of the level a set
//! actually reaches.
//!
//! # Uniform ternary secrets ([`TERNARY_BOUNDS`])
//!
//! The rows N = 2^10 .. 2^15 are Table 1 of the Homomorphic Encryption
//! Standard (Albrecht et al., "Homomorphic Encryption Security Standard",
//! HomomorphicEncryption.org, 2018), classical security, uniform ternary
//! secret, error standard deviation σ = 8/√(2π) ≈ 3.19.
//!
//! The standard stops at N = 2^15. The rows N = 2^16 and 2^17 are the
//! extension OpenFHE ships in `src/core/lib/lattice/stdlatticeparms.cpp`
//! since v1.2.0 (openfhe-development PR #807, June 2024, "added lattice
//! parameters for N=64k and 128k"), checked against that file:
//! 2^16 → 1747 / 1199 / 929, 2^17 → 3523 / 2411 / 1866.
//! Older OpenFHE releases (v1.0–v1.1) listed 1772 / 1228 / 956 for 2^16 and
//! had no 2^17 row; the newer, smaller (more conservative) bounds are used
//! here. Lattigo does not ship such a table (it leaves the check to the
//! user), so it is not a source for these rows.
//!
//! # Sparse ternary secrets ([`SPARSE_ESTIMATES`])
//!
//! The standard does not cover sparse secrets: a sparse set may claim a
//! security level only if a published estimate for its exact `(N, h)` exists
//! in [`SPARSE_ESTIMATES`], and then only up to that estimate's `log2(QP)`.
//!
//! # Caveat
//!
//! [`ternary_security_bits`] interpolates the table; it is a rough guide for
//! reporting, not the output of a lattice-estimator run.

use super::{SecretDistribution, SecurityLevel};
use crate::error::{Error, Result};

/// The smallest error standard deviation for which the tables apply
/// (the standard uses σ = 8/√(2π) ≈ 3.1915; 3.2 is customary).
pub const MIN_TABLE_SIGMA: f64 = 3.19;

/// Largest `log2(QP)` for uniform ternary secrets, σ ≈ 3.2, classical
/// security: `(log_n, [128-bit, 192-bit, 256-bit])`. Sources in the module
/// documentation.
pub const TERNARY_BOUNDS: [(u32, [u32; 3]); 8] = [
    (10, [27, 19, 14]),
    (11, [54, 37, 29]),
    (12, [109, 75, 58]),
    (13, [218, 152, 118]),
    (14, [438, 305, 237]),
    (15, [881, 611, 476]),
    (16, [1747, 1199, 929]),
    (17, [3523, 2411, 1866]),
];

/// A published security estimate for a sparse ternary secret.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseEstimate {
    /// Ring dimension exponent.
    pub log_n: u32,
    /// Number of nonzero secret coefficients.
    pub hamming_weight: usize,
    /// The level the publication claims.
    pub level: SecurityLevel,
    /// The `log2(QP)` the estimate was made for (the largest allowed).
    pub max_log_qp: u32,
    /// Where the estimate comes from.
    pub source: &'static str,
}

/// Published estimates for sparse ternary secrets (exact `(log_n, h)` match).
pub const SPARSE_ESTIMATES: &[SparseEstimate] = &[
    SparseEstimate {
        log_n: 16,
        hamming_weight: 192,
        level: SecurityLevel::Bits128,
        max_log_qp: 1546,
        source: "Lattigo v5 default bootstrapping parameters N16QP1546H192H32 \
                 (Bossuat et al., 2022, lattice-estimator)",
    },
    SparseEstimate {
        log_n: 15,
        hamming_weight: 192,
        level: SecurityLevel::Bits128,
        max_log_qp: 768,
        source: "Lattigo v5 default bootstrapping parameters N15QP768H192H32 \
                 (Bossuat et al., 2022, lattice-estimator)",
    },
];

/// The table's `log2(QP)` bound for a uniform ternary secret, or `None` when
/// `log_n` is outside the table or `level` is [`SecurityLevel::Insecure`].
pub fn ternary_bound(log_n: u32, level: SecurityLevel) -> Option<u32> {
    let column = match level {
        SecurityLevel::Bits128 => 0,
        SecurityLevel::Bits192 => 1,
        SecurityLevel::Bits256 => 2,
        SecurityLevel::Insecure => return None,
    };
    TERNARY_BOUNDS
        .iter()
        .find(|(row, _)| *row == log_n)
        .map(|(_, bounds)| bounds[column])
}

/// The published estimate for a sparse secret of this exact `(log_n, h)`.
pub fn sparse_estimate(log_n: u32, hamming_weight: usize) -> Option<&'static SparseEstimate> {
    SPARSE_ESTIMATES
        .iter()
        .find(|e| e.log_n == log_n && e.hamming_weight == hamming_weight)
}

/// A rough classical security level for a uniform ternary secret (σ ≈ 3.2):
/// piecewise-linear interpolation of λ against `log2(QP)` through the three
/// points (bound_256, 256), (bound_192, 192), (bound_128, 128) of the row for
/// N; capped at 256 for smaller moduli; extrapolated linearly beyond the
/// 128-bit bound with the 192→128 slope, floored at 0.
///
/// This interpolates the table; it is not a lattice-estimator run. `None`
/// when `log_n` has no row.
pub fn ternary_security_bits(log_n: u32, log_qp: f64) -> Option<f64> {
    let (_, [b128, b192, b256]) = *TERNARY_BOUNDS.iter().find(|(row, _)| *row == log_n)?;
    let (b128, b192, b256) = (b128 as f64, b192 as f64, b256 as f64);
    let bits = if log_qp <= b256 {
        256.0
    } else if log_qp <= b192 {
        256.0 - 64.0 * (log_qp - b256) / (b192 - b256)
    } else {
        // Between the 192- and 128-bit bounds, and beyond with the same slope.
        192.0 - 64.0 * (log_qp - b192) / (b128 - b192)
    };
    Some(bits.max(0.0))
}

/// The estimate reported by `Parameters::estimated_security_bits`.
pub(super) fn estimate(
    log_n: u32,
    secret: SecretDistribution,
    sigma: f64,
    log_qp: f64,
) -> Option<f64> {
    match secret {
        SecretDistribution::Ternary => {
            if sigma < MIN_TABLE_SIGMA {
                return None;
            }
            ternary_security_bits(log_n, log_qp)
        }
        SecretDistribution::SparseTernary { hamming_weight } => {
            let e = sparse_estimate(log_n, hamming_weight)?;
            if sigma < MIN_TABLE_SIGMA || log_qp > e.max_log_qp as f64 {
                return None;
            }
            e.level.bits().map(f64::from)
        }
    }
}

/// Checks that a set reaches the level it claims; [`SecurityLevel::Insecure`]
/// is never checked.
pub(super) fn check(
    log_n: u32,
    secret: SecretDistribution,
    sigma: f64,
    claimed: SecurityLevel,
    log_qp: f64,
) -> Result<()> {
    let Some(claimed_bits) = claimed.bits() else {
        return Ok(());
    };
    if sigma < MIN_TABLE_SIGMA {
        return Err(Error::InvalidParameters(format!(
            "sigma = {sigma} is below {MIN_TABLE_SIGMA}, the error width the security tables \
             assume; a {claimed_bits}-bit claim cannot be checked (claim Insecure for tests)"
        )));
    }
    let bound = match secret {
        SecretDistribution::Ternary => ternary_bound(log_n, claimed).ok_or_else(|| {
            Error::InvalidParameters(format!(
                "log_n = {log_n}: the security table covers N = 2^10 .. 2^17 only; \
                 a {claimed_bits}-bit claim needs N in that range (claim Insecure for tests)"
            ))
        })?,
        SecretDistribution::SparseTernary { hamming_weight } => {
            match sparse_estimate(log_n, hamming_weight) {
                Some(e) if e.level.bits().is_some_and(|b| b >= claimed_bits) => e.max_log_qp,
                _ => {
                    return Err(Error::InvalidParameters(format!(
                        "no published security estimate for a sparse ternary secret with \
                         h = {hamming_weight} at N = 2^{log_n} and {claimed_bits}-bit security; \
                         the HE standard does not cover sparse secrets (known estimates: {}); \
                         claim Insecure for tests",
                        SPARSE_ESTIMATES
                            .iter()
                            .map(|e| format!(
                                "N = 2^{}, h = {}, log2(QP) <= {}",
                                e.log_n, e.hamming_weight, e.max_log_qp
                            ))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )));
                }
            }
        }
    };
    if log_qp > bound as f64 {
        return Err(Error::Insecure {
            log_n,
            log_qp,
            bound,
            claimed_bits,
            secret: secret.to_string(),
        });
    }
    Ok(())
}
