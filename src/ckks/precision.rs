//! Precision statistics: how many bits of a decrypted result are right.

use crate::math::Complex;

/// Error statistics of `got` against `want`, in bits (−log2 of the error).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PrecisionStats {
    /// −log2 of the largest slot error.
    pub min_bits: f64,
    /// −log2 of the mean slot error.
    pub mean_bits: f64,
    /// −log2 of the median slot error.
    pub median_bits: f64,
    /// The largest absolute slot error.
    pub max_error: f64,
}

impl PrecisionStats {
    /// Compares slot by slot (complex absolute error). Panics never; an empty
    /// input gives infinite precision.
    pub fn compare(want: &[Complex], got: &[Complex]) -> Self {
        let mut errors: Vec<f64> = want.iter().zip(got).map(|(w, g)| (*w - *g).abs()).collect();
        if errors.is_empty() {
            return Self {
                min_bits: f64::INFINITY,
                mean_bits: f64::INFINITY,
                median_bits: f64::INFINITY,
                max_error: 0.0,
            };
        }
        errors.sort_by(|a, b| a.total_cmp(b));
        let max_error = *errors.last().unwrap_or(&0.0);
        let mean = errors.iter().sum::<f64>() / errors.len() as f64;
        let median = errors[errors.len() / 2];
        let bits = |e: f64| -e.max(f64::MIN_POSITIVE).log2();
        Self {
            min_bits: bits(max_error),
            mean_bits: bits(mean),
            median_bits: bits(median),
            max_error,
        }
    }
}
