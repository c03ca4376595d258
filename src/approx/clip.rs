//! Clipping to `[−c, c]` for inputs in `[−r, r]`, through the composite
//! sign: `clip(x) = (|x + c| − |x − c|)/2`, each `|y| = y·s(y)`.
//!
//! The circuit's order (what [`CompositeClip::eval`] computes in `f64`):
//! with `w = r + c`,
//!
//! ```text
//! y₁ = (x − c)/w,  y₂ = (−x − c)/w          both in [−1, 1]
//! clip(x) = (w/2)·(y₂·s(y₂) − y₁·s(y₁))
//! ```
//!
//! The sign's gap is `ε = c/(4w)`: `s` is within `δ = 2^−α` of `sign`
//! wherever `|x ∓ c| ≥ c/4`. There the error is at most
//! `(w/2)·(|y₁| + |y₂|)·δ = max(|x|, c)·δ`: relative `δ` inside `[−c, c]`,
//! `δ·|x|` beyond. Within `c/4` of a kink the value lies between the two
//! sides' (the sign is monotone through its gap), so it stays within
//! `[−5c/4, 5c/4]` up to `δ`.

use super::sign::CompositeSign;
use crate::error::{Error, Result};

/// The gap of the sign, as a fraction of `c/w`.
const GAP_FRACTION: f64 = 0.25;

/// Clipping to `[−limit, limit]` on `[−range, range]`.
///
/// Invariants: `0 < limit ≤ range`, both finite; the sign's `ε` is
/// `limit/(4·(range + limit))`.
#[derive(Clone, Debug, PartialEq)]
pub struct CompositeClip {
    sign: CompositeSign,
    limit: f64,
    range: f64,
}

impl CompositeClip {
    /// Clipping to `[−limit, limit]` for inputs in `[−range, range]`, the
    /// sign to `2^−alpha_bits`.
    ///
    /// Errors: bounds that are not finite with `0 < limit ≤ range`, those
    /// of [`CompositeSign::fit_default`].
    pub fn fit(limit: f64, range: f64, alpha_bits: u32) -> Result<Self> {
        if !(limit.is_finite() && range.is_finite() && limit > 0.0 && limit <= range) {
            return Err(Error::InvalidParameters(format!(
                "clip: needs finite bounds with 0 < limit <= range (got limit {limit}, range {range})"
            )));
        }
        let epsilon = GAP_FRACTION * limit / (range + limit);
        Ok(Self {
            sign: CompositeSign::fit_default(epsilon, alpha_bits)?,
            limit,
            range,
        })
    }

    /// The sign on `[−1, 1]`.
    pub fn sign(&self) -> &CompositeSign {
        &self.sign
    }

    /// `c`: outputs lie in `[−c, c]` (up to the sign's error).
    pub fn limit(&self) -> f64 {
        self.limit
    }

    /// `r`: inputs must lie in `[−r, r]`.
    pub fn range(&self) -> f64 {
        self.range
    }

    /// The outputs' bound: `5c/4`, with the sign's error (see the module
    /// docs).
    pub fn output_bound(&self) -> f64 {
        (1.0 + GAP_FRACTION) * self.limit * (1.0 + self.sign.max_error())
    }

    /// `w = r + c`, the normalisation.
    pub fn width(&self) -> f64 {
        self.range + self.limit
    }

    /// `(y₁, y₂)` of `x` (see the module docs).
    fn normalised(&self, x: f64) -> (f64, f64) {
        let w = self.width();
        ((x - self.limit) / w, (-x - self.limit) / w)
    }

    /// The clipped value, in the circuit's order.
    pub fn eval(&self, x: f64) -> f64 {
        let (y1, y2) = self.normalised(x);
        let w = self.width();
        (w / 2.0) * (y2 * self.sign.eval(y2) - y1 * self.sign.eval(y1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_within_the_stated_error() {
        let (limit, range, alpha) = (2.0, 256.0, 12);
        let clip = CompositeClip::fit(limit, range, alpha).unwrap();
        let delta = clip.sign().max_error();
        assert!(delta <= 2f64.powi(-(alpha as i32)));
        let steps = 20_000;
        for i in 0..=steps {
            let x = -range + 2.0 * range * i as f64 / steps as f64;
            let y = clip.eval(x);
            let exact = x.clamp(-limit, limit);
            let near_kink = (x.abs() - limit).abs() < limit / 4.0;
            if near_kink {
                assert!(y.abs() <= clip.output_bound(), "x {x}: {y}");
            } else {
                let bound = x.abs().max(limit) * delta * (1.0 + 1e-9);
                assert!((y - exact).abs() <= bound, "x {x}: {y} vs {exact}");
            }
            assert!(y.abs() <= clip.output_bound(), "x {x}: {y}");
            assert_eq!(clip.eval(-x), -y);
        }
        assert!(CompositeClip::fit(2.0, 1.0, alpha).is_err());
        assert!(CompositeClip::fit(0.0, 1.0, alpha).is_err());
        assert!(CompositeClip::fit(1.0, f64::INFINITY, alpha).is_err());
    }
}
