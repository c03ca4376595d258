//! The CKKS canonical embedding and its fast "special FFT".
//!
//! # Slot convention
//!
//! The ring is `R = Z[X]/(X^N + 1)` with `N = 2^log_n` (`1 <= log_n <= 17`) and
//! `ζ = exp(iπ/N)` a primitive `2N`-th root of unity. With `n = slots` a power
//! of two, `1 <= n <= N/2`, and `gap = N/(2n)`, a message is a real polynomial
//! `m(X)` whose nonzero coefficients sit only at multiples of `gap`, so that
//! `m(X) = m'(Y)` with `Y = X^gap` and `deg m' < 2n`.
//!
//! **Slot `j` (`0 <= j < n`) holds `m(ζ^{g_j})` with `g_j = 5^j mod 2N`.**
//!
//! Equivalently, with `ξ = ζ^gap = exp(iπ/(2n))` (a primitive `4n`-th root of
//! unity), slot `j` holds `m'(ξ^{5^j mod 4n})`: indeed
//! `m(ζ^{g_j}) = m'(ζ^{gap·g_j}) = m'(ξ^{g_j})`, and since `4n` divides `2N`,
//! `ξ^{g_j} = ξ^{5^j mod 4n}`. The remaining roots of `Y^{2n} + 1` are the
//! conjugates `ζ^{-g_j}`, where `m` takes the values `conj(slot j)` because `m`
//! is real; so the `n` complex slots determine the `2n` real coefficients of
//! `m'` and vice versa.
//!
//! Consequences:
//! * the automorphism `X -> X^{5^k}` rotates the slots left by `k`: the new
//!   slot `j` is the old slot `(j + k) mod n` (see
//!   [`galois_element_for_rotation`]);
//! * the automorphism `X -> X^{-1} = X^{2N-1}` conjugates every slot (see
//!   [`galois_element_for_conjugation`]);
//! * the negacyclic product of two messages has, as slots, the element-wise
//!   products of their slots.
//!
//! # The special FFT
//!
//! Pack the real coefficients `c_i` of `m'` as `u_i = c_i + i·c_{i+n}`
//! (`0 <= i < n`). Because `ξ^{n·5^j} = i^{5^j} = i`, slot `j` equals
//! `F_n(u)_j = Σ_{i<n} u_i ξ_n^{i·5^j}` with `ξ_n = exp(2πi/(4n))`. Splitting
//! `u` into even and odd halves `e`, `o` gives, for `j < n/2`,
//!
//! ```text
//! F_n(u)_j       = F_{n/2}(e)_j + w_j · F_{n/2}(o)_j
//! F_n(u)_{j+n/2} = F_{n/2}(e)_j - w_j · F_{n/2}(o)_j,   w_j = ξ_n^{5^j mod 4n}
//! ```
//!
//! because `ξ_n^2 = ξ_{n/2}`, `5^j mod 2n` has period dividing `n/2` and
//! `5^{n/2} ≡ 1 + 2n (mod 4n)`. Unrolled, this is a radix-2
//! decimation-in-time FFT on the bit-reversed input whose twiddles follow the
//! `5^j` rotation group, producing the slots directly in their natural order.
//! The inverse runs the butterflies backwards. Both are `O(n log n)`; every
//! root of unity is computed directly as `exp(2πik/M)` (no repeated products).

use crate::error::{Error, Result};
use crate::math::Complex;

/// Largest supported `log2 N`.
const MAX_LOG_N: u32 = 17;

/// The canonical embedding for `N = 2^log_n` with `slots` complex slots.
#[derive(Clone, Debug)]
pub struct Embedding {
    log_n: u32,
    slots: usize,
    /// `exp(2πik/(4·slots))` for `0 <= k < 4·slots`.
    roots: Vec<Complex>,
    /// `5^j mod 4·slots` for `0 <= j < slots`.
    rot_group: Vec<usize>,
    /// Bit reversal of `0..slots` on `log2(slots)` bits.
    bit_rev: Vec<usize>,
}

impl Embedding {
    /// The embedding of `Z[X]/(X^N + 1)`, `N = 2^log_n`, into `slots` complex
    /// slots.
    ///
    /// Fails unless `1 <= log_n <= 17` and `slots` is a power of two in
    /// `1..=N/2`.
    pub fn new(log_n: u32, slots: usize) -> Result<Self> {
        if !(1..=MAX_LOG_N).contains(&log_n) {
            return Err(Error::InvalidParameters(format!(
                "embedding: log_n = {log_n} outside 1..={MAX_LOG_N}"
            )));
        }
        let n_ring = 1usize << log_n;
        if slots == 0 || !slots.is_power_of_two() || slots > n_ring / 2 {
            return Err(Error::OutOfRange {
                op: "Embedding::new",
                detail: format!(
                    "slot count {slots} is not a power of two in 1..={} (N = 2^{log_n})",
                    n_ring / 2
                ),
            });
        }
        let m = 4 * slots;
        let roots = (0..m)
            .map(|k| Complex::from_angle(2.0 * std::f64::consts::PI * k as f64 / m as f64))
            .collect();
        let mut rot_group = Vec::with_capacity(slots);
        let mut g = 1usize;
        for _ in 0..slots {
            rot_group.push(g);
            g = (g * 5) % m;
        }
        let bits = slots.trailing_zeros();
        let bit_rev = (0..slots)
            .map(|i| {
                if bits == 0 {
                    0
                } else {
                    i.reverse_bits() >> (usize::BITS - bits)
                }
            })
            .collect();
        Ok(Self {
            log_n,
            slots,
            roots,
            rot_group,
            bit_rev,
        })
    }

    /// `log2 N`.
    pub fn log_n(&self) -> u32 {
        self.log_n
    }

    /// The ring degree `N`.
    pub fn n(&self) -> usize {
        1usize << self.log_n
    }

    /// The number of complex slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Distance between the coefficients a message may occupy: `N / (2·slots)`.
    fn gap(&self) -> usize {
        self.n() / (2 * self.slots)
    }

    fn bit_reverse(&self, a: &mut [Complex]) {
        for (i, &r) in self.bit_rev.iter().enumerate() {
            if i < r {
                a.swap(i, r);
            }
        }
    }

    /// In place: `a_j <- Σ_i a_i ξ_n^{i·5^j}` (see the module docs).
    fn special_fft(&self, a: &mut [Complex]) {
        let n = self.slots;
        let m = 4 * n;
        self.bit_reverse(a);
        let mut len = 2;
        while len <= n {
            let half = len / 2;
            let quarter_m = 4 * len; // order of the twiddles at this stage
            let stride = m / quarter_m;
            for block in a.chunks_exact_mut(len) {
                let (lo, hi) = block.split_at_mut(half);
                for (j, (x, y)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                    let w = self.roots[(self.rot_group[j] % quarter_m) * stride];
                    let u = *x;
                    let v = *y * w;
                    *x = u + v;
                    *y = u - v;
                }
            }
            len *= 2;
        }
    }

    /// In place: the inverse of [`Self::special_fft`].
    fn special_ifft(&self, a: &mut [Complex]) {
        let n = self.slots;
        let m = 4 * n;
        let mut len = n;
        while len >= 2 {
            let half = len / 2;
            let quarter_m = 4 * len;
            let stride = m / quarter_m;
            for block in a.chunks_exact_mut(len) {
                let (lo, hi) = block.split_at_mut(half);
                for (j, (x, y)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                    let w = self.roots[(self.rot_group[j] % quarter_m) * stride];
                    let u = *x;
                    let v = *y;
                    // Halving is exact in binary floating point.
                    *x = (u + v).scale(0.5);
                    *y = ((u - v) * w.conj()).scale(0.5);
                }
            }
            len /= 2;
        }
        self.bit_reverse(a);
    }

    fn check_slots_len(&self, op: &'static str, values: &[Complex]) -> Result<()> {
        if values.len() != self.slots {
            return Err(Error::LengthMismatch {
                op,
                got: values.len(),
                expected: self.slots,
            });
        }
        Ok(())
    }

    fn check_coeffs_len(&self, op: &'static str, coefficients: &[f64]) -> Result<()> {
        if coefficients.len() != self.n() {
            return Err(Error::LengthMismatch {
                op,
                got: coefficients.len(),
                expected: self.n(),
            });
        }
        Ok(())
    }

    /// Inverse embedding (encoding without scaling or rounding): returns the
    /// `N` real coefficients of `m` (zeros except at multiples of the gap)
    /// whose slots are `values` (length must equal `slots`, else
    /// `LengthMismatch`). `O(n log n)`.
    pub fn slots_to_coefficients(&self, values: &[Complex]) -> Result<Vec<f64>> {
        self.check_slots_len("Embedding::slots_to_coefficients", values)?;
        let n = self.slots;
        let gap = self.gap();
        let mut a = values.to_vec();
        self.special_ifft(&mut a);
        let mut coeffs = vec![0.0; self.n()];
        for (i, u) in a.iter().enumerate() {
            coeffs[i * gap] = u.re;
            coeffs[(i + n) * gap] = u.im;
        }
        Ok(coeffs)
    }

    /// Forward embedding (decoding): the `slots` values of the real
    /// polynomial with these `N` coefficients (length must be `N`, else
    /// `LengthMismatch`). Only coefficients at multiples of the gap are read.
    /// `O(n log n)`.
    pub fn coefficients_to_slots(&self, coefficients: &[f64]) -> Result<Vec<Complex>> {
        self.check_coeffs_len("Embedding::coefficients_to_slots", coefficients)?;
        let n = self.slots;
        let gap = self.gap();
        let mut a: Vec<Complex> = (0..n)
            .map(|i| Complex::new(coefficients[i * gap], coefficients[(i + n) * gap]))
            .collect();
        self.special_fft(&mut a);
        Ok(a)
    }

    /// `ζ^e` for `0 <= e < 2N`, each computed directly.
    fn zeta_table(&self) -> Vec<Complex> {
        let n_ring = self.n();
        (0..2 * n_ring)
            .map(|e| Complex::from_angle(std::f64::consts::PI * e as f64 / n_ring as f64))
            .collect()
    }

    /// `g_j = 5^j mod 2N` for `0 <= j < slots`.
    fn galois_exponents(&self) -> Vec<usize> {
        let two_n = 2 * self.n();
        let mut out = Vec::with_capacity(self.slots);
        let mut g = 1usize;
        for _ in 0..self.slots {
            out.push(g);
            g = (g * 5) % two_n;
        }
        out
    }

    /// [`Self::slots_to_coefficients`] by the definition, in `O(n^2)`:
    /// `c_{i·gap} = (1/n) Σ_j Re(z_j · ζ^{-i·gap·g_j})` for `0 <= i < 2n`
    /// (orthogonality of the odd powers of `ξ` over the `2n` roots of
    /// `Y^{2n} + 1`).
    pub fn slots_to_coefficients_reference(&self, values: &[Complex]) -> Result<Vec<f64>> {
        self.check_slots_len("Embedding::slots_to_coefficients_reference", values)?;
        let n_ring = self.n();
        let two_n = 2 * n_ring;
        let gap = self.gap();
        let zeta = self.zeta_table();
        let g = self.galois_exponents();
        let mut coeffs = vec![0.0; n_ring];
        for i in 0..2 * self.slots {
            let k = i * gap;
            let mut acc = 0.0;
            for (z, &gj) in values.iter().zip(&g) {
                let e = (k * gj) % two_n;
                let w = zeta[(two_n - e) % two_n]; // ζ^{-k·g_j}
                acc += (*z * w).re;
            }
            coeffs[k] = acc / self.slots as f64;
        }
        Ok(coeffs)
    }

    /// [`Self::coefficients_to_slots`] by the definition, in `O(n^2)`:
    /// slot `j` is `Σ_k c_k ζ^{k·g_j}` over the `2n` multiples `k` of the gap.
    pub fn coefficients_to_slots_reference(&self, coefficients: &[f64]) -> Result<Vec<Complex>> {
        self.check_coeffs_len("Embedding::coefficients_to_slots_reference", coefficients)?;
        let two_n = 2 * self.n();
        let gap = self.gap();
        let zeta = self.zeta_table();
        Ok(self
            .galois_exponents()
            .iter()
            .map(|&gj| {
                let mut acc = Complex::ZERO;
                for i in 0..2 * self.slots {
                    let k = i * gap;
                    acc += zeta[(k * gj) % two_n].scale(coefficients[k]);
                }
                acc
            })
            .collect())
    }
}

fn check_galois_log_n(log_n: u32) {
    assert!(
        (1..=62).contains(&log_n),
        "galois element: log_n = {log_n} outside 1..=62"
    );
}

/// Galois element for a left rotation by `k` slots: `5^k mod 2N`.
///
/// `k` is reduced modulo `N/2` (the order of 5 modulo `2N`), so a negative `k`
/// gives the inverse power. The element rotates left by `k` for every slot
/// count (`k` then acts modulo `slots`).
///
/// # Panics
/// If `log_n` is 0 or above 62.
pub fn galois_element_for_rotation(log_n: u32, k: i64) -> u64 {
    check_galois_log_n(log_n);
    let two_n = 1u128 << (log_n + 1);
    let order = 1i128 << (log_n - 1); // N/2
    let mut e = (k as i128).rem_euclid(order) as u128;
    let mut base = 5u128 % two_n;
    let mut acc = 1u128 % two_n;
    while e > 0 {
        if e & 1 == 1 {
            acc = acc * base % two_n;
        }
        base = base * base % two_n;
        e >>= 1;
    }
    acc as u64
}

/// Galois element of complex conjugation: `2N - 1`.
///
/// # Panics
/// If `log_n` is 0 or above 62.
pub fn galois_element_for_conjugation(log_n: u32) -> u64 {
    check_galois_log_n(log_n);
    (1u64 << (log_n + 1)) - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn random_values(rng: &mut ChaCha20Rng, n: usize) -> Vec<Complex> {
        (0..n)
            .map(|_| Complex::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
            .collect()
    }

    fn max_err(a: &[Complex], b: &[Complex]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x - *y).abs())
            .fold(0.0, f64::max)
    }

    fn max_err_real(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    /// `X -> X^g` on a real coefficient vector of `Z[X]/(X^N + 1)`.
    fn apply_automorphism(coeffs: &[f64], g: u64) -> Vec<f64> {
        let n = coeffs.len();
        let two_n = 2 * n as u64;
        let mut out = vec![0.0; n];
        for (j, &c) in coeffs.iter().enumerate() {
            let e = (j as u64 * g) % two_n;
            if e >= n as u64 {
                out[(e - n as u64) as usize] -= c;
            } else {
                out[e as usize] += c;
            }
        }
        out
    }

    fn negacyclic_product(a: &[f64], b: &[f64]) -> Vec<f64> {
        let n = a.len();
        let mut out = vec![0.0; n];
        for i in 0..n {
            for j in 0..n {
                let p = a[i] * b[j];
                if i + j >= n {
                    out[i + j - n] -= p;
                } else {
                    out[i + j] += p;
                }
            }
        }
        out
    }

    fn rotate_left(v: &[Complex], k: i64) -> Vec<Complex> {
        let n = v.len() as i64;
        (0..n).map(|j| v[(j + k).rem_euclid(n) as usize]).collect()
    }

    #[test]
    fn fast_matches_reference() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for &(log_n, slots) in &[
            (3u32, 4usize),
            (4, 2),
            (5, 16),
            (10, 512),
            (10, 8),
            (10, 1),
            (12, 2048),
            (1, 1),
        ] {
            let emb = Embedding::new(log_n, slots).unwrap();
            let tol = 1e-9 * slots as f64;
            let v = random_values(&mut rng, slots);
            let fast = emb.slots_to_coefficients(&v).unwrap();
            let slow = emb.slots_to_coefficients_reference(&v).unwrap();
            let e1 = max_err_real(&fast, &slow);
            assert!(e1 < tol, "encode log_n={log_n} slots={slots}: {e1}");

            // Random coefficients, including junk off the gap that must be ignored.
            let c: Vec<f64> = (0..emb.n()).map(|_| rng.random_range(-1.0..1.0)).collect();
            let fast = emb.coefficients_to_slots(&c).unwrap();
            let slow = emb.coefficients_to_slots_reference(&c).unwrap();
            let e2 = max_err(&fast, &slow);
            assert!(e2 < tol, "decode log_n={log_n} slots={slots}: {e2}");
        }
    }

    #[test]
    fn reference_round_trip() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for &(log_n, slots) in &[(5u32, 16usize), (6, 4), (2, 1)] {
            let emb = Embedding::new(log_n, slots).unwrap();
            let v = random_values(&mut rng, slots);
            let c = emb.slots_to_coefficients_reference(&v).unwrap();
            let back = emb.coefficients_to_slots_reference(&c).unwrap();
            assert!(max_err(&v, &back) < 1e-12);
        }
    }

    #[test]
    fn round_trip_full_slots() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for log_n in 1..=17u32 {
            let slots = 1usize << (log_n - 1);
            let emb = Embedding::new(log_n, slots).unwrap();
            let v = random_values(&mut rng, slots);
            let c = emb.slots_to_coefficients(&v).unwrap();
            let back = emb.coefficients_to_slots(&c).unwrap();
            let err = max_err(&v, &back);
            println!("round trip log_n = {log_n:2}, slots = {slots:5}: max error {err:.3e}");
            assert!(err < 1e-9, "log_n={log_n}: {err}");
        }
    }

    #[test]
    fn round_trip_sparse_and_gap() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        for &(log_n, slots) in &[(10u32, 8usize), (10, 1), (12, 64), (6, 2)] {
            let emb = Embedding::new(log_n, slots).unwrap();
            let gap = emb.n() / (2 * slots);
            let v = random_values(&mut rng, slots);
            let c = emb.slots_to_coefficients(&v).unwrap();
            assert_eq!(c.len(), emb.n());
            for (k, &x) in c.iter().enumerate() {
                if k % gap != 0 {
                    assert_eq!(x, 0.0, "coefficient {k} off the gap {gap}");
                }
            }
            let back = emb.coefficients_to_slots(&c).unwrap();
            let err = max_err(&v, &back);
            assert!(err < 1e-12, "log_n={log_n} slots={slots}: {err}");
        }
    }

    #[test]
    fn rotation_and_conjugation() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        for &(log_n, slots) in &[(5u32, 16usize), (6, 8), (7, 4), (4, 2), (8, 128)] {
            let emb = Embedding::new(log_n, slots).unwrap();
            let v = random_values(&mut rng, slots);
            let m = emb.slots_to_coefficients(&v).unwrap();
            for k in [1i64, 3, -1, 0, 5] {
                let g = galois_element_for_rotation(log_n, k);
                let rotated = emb
                    .coefficients_to_slots(&apply_automorphism(&m, g))
                    .unwrap();
                let err = max_err(&rotated, &rotate_left(&v, k));
                assert!(err < 1e-12, "log_n={log_n} slots={slots} k={k}: {err}");
            }
            let g = galois_element_for_conjugation(log_n);
            let conj = emb
                .coefficients_to_slots(&apply_automorphism(&m, g))
                .unwrap();
            let expected: Vec<Complex> = v.iter().map(|z| z.conj()).collect();
            assert!(max_err(&conj, &expected) < 1e-12);
        }
    }

    #[test]
    fn galois_elements() {
        assert_eq!(galois_element_for_rotation(5, 0), 1);
        assert_eq!(galois_element_for_rotation(5, 1), 5);
        assert_eq!(galois_element_for_rotation(5, 2), 25);
        assert_eq!(galois_element_for_rotation(5, 16), 1); // N/2 = 16
        let g = galois_element_for_rotation(5, 1);
        let gi = galois_element_for_rotation(5, -1);
        assert_eq!(g * gi % 64, 1);
        assert_eq!(galois_element_for_rotation(17, -3), {
            let a = galois_element_for_rotation(17, 1 << 16);
            assert_eq!(a, 1);
            galois_element_for_rotation(17, (1 << 16) - 3)
        });
        assert_eq!(galois_element_for_conjugation(5), 63);
        assert_eq!(galois_element_for_rotation(1, 7), 1);
    }

    #[test]
    fn multiplication_is_slotwise() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        for &(log_n, slots) in &[(5u32, 16usize), (5, 4), (6, 32), (5, 1)] {
            let emb = Embedding::new(log_n, slots).unwrap();
            let a = random_values(&mut rng, slots);
            let b = random_values(&mut rng, slots);
            let ma = emb.slots_to_coefficients(&a).unwrap();
            let mb = emb.slots_to_coefficients(&b).unwrap();
            let prod = emb
                .coefficients_to_slots(&negacyclic_product(&ma, &mb))
                .unwrap();
            let expected: Vec<Complex> = a.iter().zip(&b).map(|(x, y)| *x * *y).collect();
            let err = max_err(&prod, &expected);
            assert!(err < 1e-12, "log_n={log_n} slots={slots}: {err}");
        }
    }

    #[test]
    fn errors() {
        assert!(Embedding::new(0, 1).is_err());
        assert!(Embedding::new(18, 4).is_err());
        assert!(Embedding::new(5, 0).is_err());
        assert!(Embedding::new(5, 3).is_err());
        assert!(Embedding::new(5, 32).is_err());
        assert!(Embedding::new(1, 2).is_err());
        assert!(Embedding::new(17, 1 << 16).is_ok());
        let emb = Embedding::new(5, 8).unwrap();
        assert_eq!((emb.log_n(), emb.n(), emb.slots()), (5, 32, 8));
        let bad_v = vec![Complex::ZERO; 7];
        assert!(matches!(
            emb.slots_to_coefficients(&bad_v),
            Err(Error::LengthMismatch {
                got: 7,
                expected: 8,
                ..
            })
        ));
        assert!(emb.slots_to_coefficients_reference(&bad_v).is_err());
        let bad_c = vec![0.0; 31];
        assert!(matches!(
            emb.coefficients_to_slots(&bad_c),
            Err(Error::LengthMismatch {
                got: 31,
                expected: 32,
                ..
            })
        ));
        assert!(emb.coefficients_to_slots_reference(&bad_c).is_err());
    }
}
