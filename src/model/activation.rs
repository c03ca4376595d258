//! BERT's GELU in its exact (erf) form, `gelu(x) = x/2 · (1 + erf(x/√2))`.
//!
//! The standard library has no `erf`, so it is computed here, within 6e-16
//! of the true value on the whole line (5 ulp at worst, checked against
//! 40-digit values while writing it), which makes `gelu` good to 2e-15 on
//! [−10, 10]:
//!
//! - |x| < 1: the Maclaurin series `2/√π · Σ (−1)^n x^{2n+1} / (n!·(2n+1))`,
//!   summed until a term no longer changes the sum;
//! - |x| ≥ 1: `1 − erfc(x)` with Laplace's continued fraction
//!   `erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + (2/2)/(x + (3/2)/(x + …))))`,
//!   evaluated from the bottom up with `10 + 200/x²` levels (enough at every
//!   x ≥ 1; beyond x ≈ 6 the result rounds to 1).

/// The error function.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let magnitude = x.abs();
    let value = if magnitude < 1.0 {
        maclaurin_erf(magnitude)
    } else {
        1.0 - continued_fraction_erfc(magnitude)
    };
    value.copysign(x)
}

/// `erf(x)` for 0 ≤ x < 1 from its Maclaurin series.
fn maclaurin_erf(x: f64) -> f64 {
    let square = x * x;
    let mut power_over_factorial = x;
    let mut sum = x;
    let mut n = 0.0;
    loop {
        n += 1.0;
        power_over_factorial *= -square / n;
        let next = sum + power_over_factorial / (2.0 * n + 1.0);
        if next == sum {
            return std::f64::consts::FRAC_2_SQRT_PI * sum;
        }
        sum = next;
    }
}

/// `erfc(x)` for x ≥ 1 from its continued fraction.
fn continued_fraction_erfc(x: f64) -> f64 {
    let levels = (10.0 + 200.0 / (x * x)) as u32;
    let mut denominator = x;
    for k in (1..=levels).rev() {
        denominator = x + f64::from(k) / 2.0 / denominator;
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / denominator
}

/// GELU, erf form (Hugging Face's `gelu`).
pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_tabulated_values() {
        // erf at these points, correctly rounded (from 40-digit values).
        let table = [
            (0.1, 0.112_462_916_018_284_9),
            (0.5, 0.520_499_877_813_046_5),
            (0.9, 0.796_908_212_422_832_2),
            (1.0, 0.842_700_792_949_714_9),
            (1.5, 0.966_105_146_475_310_8),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
            (5.0, 0.999_999_999_998_462_6),
        ];
        for (x, expected) in table {
            assert!((erf(x) - expected).abs() < 6e-16, "erf({x}) = {}", erf(x));
            assert_eq!(erf(-x), -erf(x));
        }
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(7.0), 1.0);
        assert_eq!(erf(-40.0), -1.0);
        assert!(erf(f64::NAN).is_nan());
    }

    #[test]
    fn gelu_values() {
        assert_eq!(gelu(0.0), 0.0);
        // gelu(1) = Φ(1), gelu(−1) = −Φ(−1) = −(1 − Φ(1)).
        let phi_1 = 0.841_344_746_068_542_9;
        assert!((gelu(1.0) - phi_1).abs() < 1e-15);
        assert!((gelu(-1.0) + (1.0 - phi_1)).abs() < 1e-15);
        assert!((gelu(10.0) - 10.0).abs() < 1e-15);
        assert!(gelu(-10.0).abs() < 1e-15);
    }
}
