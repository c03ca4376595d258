//! A word-size modulus with precomputed Barrett and Shoup constants.

use crate::error::{Error, Result};

/// The largest modulus bit size accepted (q < 2^MAX_MODULUS_BITS).
pub const MAX_MODULUS_BITS: u32 = 62;

/// An odd modulus `q` with `3 <= q < 2^62` and its reduction constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modulus {
    value: u64,
    /// floor(2^128 / q), low and high words.
    ratio_lo: u64,
    ratio_hi: u64,
}

impl Modulus {
    /// Builds a modulus, rejecting even values, values below 3 and values of
    /// 62 bits or more.
    pub fn new(value: u64) -> Result<Self> {
        if value < 3 || value % 2 == 0 || value >> MAX_MODULUS_BITS != 0 {
            return Err(Error::InvalidParameters(format!(
                "modulus {value} must be odd, at least 3 and below 2^{MAX_MODULUS_BITS}"
            )));
        }
        // floor(2^128 / q) = floor((2^128 - 1) / q) because q is odd and > 1.
        let ratio = u128::MAX / value as u128;
        Ok(Self {
            value,
            ratio_lo: ratio as u64,
            ratio_hi: (ratio >> 64) as u64,
        })
    }

    /// The modulus value q.
    #[inline]
    pub fn value(&self) -> u64 {
        self.value
    }

    /// Number of significant bits of q.
    pub fn bits(&self) -> u32 {
        64 - self.value.leading_zeros()
    }

    /// `x mod q` for any 128-bit `x` (Barrett reduction with floor(2^128/q)).
    #[inline]
    pub fn reduce_u128(&self, x: u128) -> u64 {
        let x_lo = x as u64;
        let x_hi = (x >> 64) as u64;
        // Estimate floor(x * ratio / 2^128), dropping only the lowest partial product's low half.
        let lo_lo = (x_lo as u128 * self.ratio_lo as u128) >> 64;
        let lo_hi = x_lo as u128 * self.ratio_hi as u128;
        let hi_lo = x_hi as u128 * self.ratio_lo as u128;
        let middle = lo_lo + (lo_hi as u64 as u128) + (hi_lo as u64 as u128);
        let quotient =
            (x_hi as u128 * self.ratio_hi as u128) + (lo_hi >> 64) + (hi_lo >> 64) + (middle >> 64);
        // The estimate is at most 2 below the true quotient.
        let mut r = x.wrapping_sub(quotient.wrapping_mul(self.value as u128)) as u64;
        if r >= self.value {
            r -= self.value;
        }
        if r >= self.value {
            r -= self.value;
        }
        r
    }

    /// `x mod q` for a word.
    #[inline]
    pub fn reduce(&self, x: u64) -> u64 {
        if x < self.value {
            x
        } else {
            self.reduce_u128(x as u128)
        }
    }

    /// The residue of a signed integer.
    #[inline]
    pub fn reduce_i64(&self, x: i64) -> u64 {
        let r = self.reduce(x.unsigned_abs());
        if x < 0 {
            self.neg(r)
        } else {
            r
        }
    }

    /// The residue of a signed 128-bit integer.
    #[inline]
    pub fn reduce_i128(&self, x: i128) -> u64 {
        let r = self.reduce_u128(x.unsigned_abs());
        if x < 0 {
            self.neg(r)
        } else {
            r
        }
    }

    /// `(a + b) mod q` for reduced inputs.
    #[inline]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        let s = a + b;
        if s >= self.value {
            s - self.value
        } else {
            s
        }
    }

    /// `(a - b) mod q` for reduced inputs.
    #[inline]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        if a >= b {
            a - b
        } else {
            a + self.value - b
        }
    }

    /// `-a mod q` for a reduced input.
    #[inline]
    pub fn neg(&self, a: u64) -> u64 {
        if a == 0 {
            0
        } else {
            self.value - a
        }
    }

    /// `a * b mod q` for any words.
    #[inline]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce_u128(a as u128 * b as u128)
    }

    /// Shoup's precomputed companion of a constant `w < q`: floor(w * 2^64 / q).
    #[inline]
    pub fn shoup(&self, w: u64) -> u64 {
        (((w as u128) << 64) / self.value as u128) as u64
    }

    /// `a * w mod q` in `[0, 2q)` for any word `a`, with `w_shoup = shoup(w)`.
    #[inline]
    pub fn mul_shoup_lazy(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let q_est = ((a as u128 * w_shoup as u128) >> 64) as u64;
        a.wrapping_mul(w)
            .wrapping_sub(q_est.wrapping_mul(self.value))
    }

    /// `a * w mod q` in `[0, q)` for any word `a`, with `w_shoup = shoup(w)`.
    #[inline]
    pub fn mul_shoup(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let r = self.mul_shoup_lazy(a, w, w_shoup);
        if r >= self.value {
            r - self.value
        } else {
            r
        }
    }

    /// `base^exp mod q`.
    pub fn pow(&self, base: u64, mut exp: u64) -> u64 {
        let mut result = 1 % self.value;
        let mut b = self.reduce(base);
        while exp > 0 {
            if exp & 1 == 1 {
                result = self.mul(result, b);
            }
            b = self.mul(b, b);
            exp >>= 1;
        }
        result
    }

    /// The inverse of `a` modulo q, or `None` when gcd(a, q) != 1.
    pub fn inv(&self, a: u64) -> Option<u64> {
        // Extended Euclid on signed 128-bit integers (q is not assumed prime).
        let (mut r0, mut r1) = (self.value as i128, self.reduce(a) as i128);
        let (mut t0, mut t1) = (0i128, 1i128);
        while r1 != 0 {
            let quotient = r0 / r1;
            (r0, r1) = (r1, r0 - quotient * r1);
            (t0, t1) = (t1, t0 - quotient * t1);
        }
        if r0 != 1 {
            return None;
        }
        Some(self.reduce_i128(t0))
    }

    /// The centered representative of a reduced residue, in `(-q/2, q/2]`.
    #[inline]
    pub fn center(&self, a: u64) -> i64 {
        if a > self.value / 2 {
            -((self.value - a) as i64)
        } else {
            a as i64
        }
    }

    /// The residue of a finite `f64` that is an integer (exactly, any
    /// magnitude); `None` for NaN or infinities.
    pub fn reduce_f64_integer(&self, x: f64) -> Option<u64> {
        if !x.is_finite() {
            return None;
        }
        if x.abs() < 9.0e18 {
            return Some(self.reduce_i64(x as i64));
        }
        // x = mantissa * 2^exponent exactly, with a 53-bit integer mantissa.
        let bits = x.abs().to_bits();
        let exponent = ((bits >> 52) & 0x7ff) as i64 - 1075;
        let mantissa = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
        // |x| >= 9e18 > 2^53, so the exponent is positive.
        let magnitude = self.mul(self.reduce(mantissa), self.pow(2, exponent as u64));
        Some(if x < 0.0 {
            self.neg(magnitude)
        } else {
            magnitude
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn moduli() -> Vec<Modulus> {
        [
            3u64,
            65537,
            1 << 40 | 1,
            0x3fff_ffff_ffff_ffff,
            0x1fff_ffff_ffe0_0001,
            1152921504606584833,
        ]
        .iter()
        .map(|&q| Modulus::new(q).unwrap())
        .collect()
    }

    #[test]
    fn rejects_bad_moduli() {
        assert!(Modulus::new(0).is_err());
        assert!(Modulus::new(1).is_err());
        assert!(Modulus::new(1 << 20).is_err());
        assert!(Modulus::new((1 << 62) + 1).is_err());
    }

    #[test]
    fn reduction_matches_u128() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        for m in moduli() {
            let q = m.value();
            let edge = [0u64, 1, q - 1, q, q + 1, u64::MAX];
            for &a in &edge {
                assert_eq!(m.reduce(a), a % q);
                for &b in &edge {
                    assert_eq!(m.mul(a, b), ((a as u128 * b as u128) % q as u128) as u64);
                }
            }
            for _ in 0..20_000 {
                let x: u128 = rng.random();
                assert_eq!(m.reduce_u128(x), (x % q as u128) as u64, "q={q} x={x}");
                let a = rng.random_range(0..q);
                let b = rng.random_range(0..q);
                let w = rng.random_range(0..q);
                let any: u64 = rng.random();
                assert_eq!(m.add(a, b), ((a as u128 + b as u128) % q as u128) as u64);
                assert_eq!(
                    m.sub(a, b),
                    ((a as u128 + q as u128 - b as u128) % q as u128) as u64
                );
                assert_eq!(
                    m.mul_shoup(any, w, m.shoup(w)),
                    ((any as u128 * w as u128) % q as u128) as u64
                );
                assert!(m.mul_shoup_lazy(any, w, m.shoup(w)) < 2 * q);
                let s: i64 = rng.random();
                assert_eq!(m.reduce_i64(s), (s as i128).rem_euclid(q as i128) as u64);
            }
        }
    }

    #[test]
    fn inverse_and_power() {
        for m in moduli() {
            let q = m.value();
            let gcd = |mut a: u64, mut b: u64| {
                while b != 0 {
                    (a, b) = (b, a % b);
                }
                a
            };
            for a in [1u64, 2, 12345, q - 1] {
                match m.inv(a) {
                    Some(inv) => assert_eq!(m.mul(a, inv), 1),
                    None => assert_ne!(gcd(a, q), 1),
                }
            }
            assert_eq!(m.inv(0), None);
            assert_eq!(m.pow(3, 0), 1);
            assert_eq!(m.pow(2, 10), 1024 % q);
        }
    }

    #[test]
    fn f64_integers_reduce_exactly() {
        let m = Modulus::new(1152921504606584833).unwrap();
        let q = m.value() as i128;
        for x in [
            0.0,
            1.0,
            -1.0,
            123456789.0,
            -9.5e18,
            2f64.powi(80),
            -(2f64.powi(100)) * 3.0,
        ] {
            // Exact big-integer value of x via i128 where it fits, else via num-bigint.
            let expected = {
                use num_bigint::BigInt;
                let bits = x.abs().to_bits();
                let e = ((bits >> 52) & 0x7ff) as i64 - 1075;
                let mant = if x == 0.0 {
                    0u64
                } else {
                    (bits & ((1u64 << 52) - 1)) | (1u64 << 52)
                };
                let mut v = BigInt::from(mant);
                if e >= 0 {
                    v <<= e as usize
                } else {
                    v >>= (-e) as usize
                }
                if x < 0.0 {
                    v = -v
                }
                let r: BigInt = ((v % BigInt::from(q)) + BigInt::from(q)) % BigInt::from(q);
                u64::try_from(r).unwrap()
            };
            assert_eq!(m.reduce_f64_integer(x).unwrap(), expected, "x = {x}");
        }
        assert!(m.reduce_f64_integer(f64::NAN).is_none());
    }
}
