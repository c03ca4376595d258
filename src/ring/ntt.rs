//! The negacyclic number-theoretic transform over `Z_q[X]/(X^N + 1)`,
//! `N = 2^log_n` with `1 <= log_n <= 17`.
//!
//! # Convention (bit exact; GPU kernels reproduce it)
//!
//! Let `q` be an NTT-friendly prime (`q ≡ 1 mod 2N`, `q < 2^62`) and let
//! `psi = primitive_root_2n(q, log_n)` ([`crate::math::primitive_root_2n`]):
//! the primitive 2N-th root of unity obtained from `q - 1` by `log_n`
//! successive Tonelli–Shanks square roots using the least quadratic
//! non-residue, which is the root tfhe-ntt 0.7.1 picks. For
//! `0 <= i < N` let `bitrev(i)` be `i` with its `log_n` low bits reversed.
//! The **forward** transform of `a(X) = sum_{j<N} a_j X^j` (coefficients in
//! `[0, q)`, natural order) writes at index `i` the value
//!
//! ```text
//!     A[i] = a(psi^(2*bitrev(i) + 1)) mod q,
//! ```
//!
//! fully reduced in `[0, q)`. So the evaluation points are the odd powers of
//! `psi` (the roots of `X^N + 1`), listed in bit-reversed order of their half
//! exponent; [`NttTable::evaluation_exponent`] returns `2*bitrev(i)+1`.
//! Multiplication in the evaluation domain is pointwise. The **inverse**
//! transform is the exact inverse of the forward one (it includes the factor
//! `N^{-1} mod q`) and returns fully reduced coefficients in natural order.
//!
//! Twiddle tables, as exposed for upload to other backends:
//! `forward_twiddles()[k] = psi^bitrev(k)` and
//! `inverse_twiddles()[k] = psi^(-bitrev(k))` for `0 <= k < N` (entry 0 is 1
//! and unused by the butterflies), each with a Shoup companion
//! `floor(w * 2^64 / q)`. The forward transform is the radix-2 Cooley–Tukey
//! network: for `m = 1, 2, 4, .., N/2` with `t = N/(2m)`, for each block
//! `i < m` with `w = forward_twiddles()[m + i]` and each `j` in
//! `[2it, 2it + t)`: `(a_j, a_{j+t}) <- (a_j + w a_{j+t}, a_j - w a_{j+t})`.
//! The inverse is the Gentleman–Sande network run backwards (`m = N/2 .. 1`,
//! `t = N/(2m)`, `w = inverse_twiddles()[m + i]`,
//! `(a_j, a_{j+t}) <- (a_j + a_{j+t}, (a_j - a_{j+t}) w)`), then every
//! coefficient is multiplied by `N^{-1} mod q`.
//!
//! # Implementations
//!
//! * [`NttTable::forward`] / [`NttTable::inverse`]: the fast path
//!   ([`NttTable::fast_path`] names it). For `N >= 16` and `q < 2^50` on a
//!   CPU with AVX-512 IFMA it runs our own transform (`ntt_ifma`: radix-8
//!   groups in registers, a shuffled tail for the in-vector stages). For
//!   other primes with `N >= 16` it calls tfhe-ntt's `prime64::Plan` (SIMD,
//!   Harvey butterflies); at construction the plan is checked to use the
//!   same `psi`, and is dropped otherwise. Otherwise it runs
//!   [`NttTable::forward_shoup`] / [`NttTable::inverse_shoup`].
//! * [`NttTable::forward_shoup`] / [`NttTable::inverse_shoup`]: our own
//!   radix-2 transforms with Shoup multiplication and lazy reduction
//!   (values kept below `4q`, reduced at the end).
//! * [`NttTable::forward_reference`] / [`NttTable::inverse_reference`]: the
//!   plain networks above with fully reduced [`Modulus`] arithmetic.
//!
//! All three produce identical words (tested).
//!
//! Every transform takes a slice of exactly N words and panics otherwise:
//! this is the ring layer's building block, and every caller (the backends)
//! checks buffer sizes and returns errors first. Words not reduced modulo q
//! give unspecified (but non-panicking) results.

#[cfg(target_arch = "x86_64")]
use super::ntt_ifma;
use crate::error::{Error, Result};
#[cfg(target_arch = "x86_64")]
use crate::math::ifma::{self, Ifma};
use crate::math::{is_ntt_friendly, primitive_root_2n, Modulus};

/// Smallest supported `log_n`.
pub const MIN_LOG_N: u32 = 1;
/// Largest supported `log_n`.
pub const MAX_LOG_N: u32 = 17;

/// tfhe-ntt plans need at least this many coefficients.
const TFHE_NTT_MIN_N: usize = 16;

/// `x` with its `bits` low bits reversed (higher bits of `x` are ignored).
#[inline]
pub fn bit_reverse(x: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        x.reverse_bits() >> (usize::BITS - bits)
    }
}

/// Precomputed tables of the negacyclic NTT for one prime and one ring degree.
#[derive(Clone, Debug)]
pub struct NttTable {
    modulus: Modulus,
    log_n: u32,
    psi: u64,
    /// `psi^bitrev(k)`.
    twiddles: Vec<u64>,
    twiddles_shoup: Vec<u64>,
    /// `psi^(-bitrev(k))`.
    inv_twiddles: Vec<u64>,
    inv_twiddles_shoup: Vec<u64>,
    n_inv: u64,
    n_inv_shoup: u64,
    fast: FastPath,
}

/// Which implementation [`NttTable::forward`] and [`NttTable::inverse`] run.
#[derive(Clone, Debug)]
enum FastPath {
    /// Our AVX-512 IFMA transform ([`super::ntt_ifma`]), for `q < 2^50`,
    /// with the 52-bit Shoup companions of both twiddle tables.
    #[cfg(target_arch = "x86_64")]
    Ifma {
        simd: Ifma,
        forward_shoup52: Vec<u64>,
        inverse_shoup52: Vec<u64>,
    },
    /// tfhe-ntt's plan, checked to use the convention's `psi`.
    TfheNtt(Box<tfhe_ntt::prime64::Plan>),
    /// [`NttTable::forward_shoup`] / [`NttTable::inverse_shoup`].
    Shoup,
}

impl NttTable {
    /// Builds the tables for the prime `modulus` and `N = 2^log_n`.
    ///
    /// Fails if `log_n` is outside `1..=17` or if the modulus is not a prime
    /// `≡ 1 (mod 2N)`.
    pub fn new(modulus: Modulus, log_n: u32) -> Result<Self> {
        if !(MIN_LOG_N..=MAX_LOG_N).contains(&log_n) {
            return Err(Error::InvalidParameters(format!(
                "NTT size 2^{log_n} unsupported (log_n must be in {MIN_LOG_N}..={MAX_LOG_N})"
            )));
        }
        let q = modulus.value();
        if !is_ntt_friendly(q, log_n) {
            return Err(Error::InvalidParameters(format!(
                "modulus {q} is not an NTT-friendly prime for N = 2^{log_n} (needs a prime q ≡ 1 mod {})",
                2u64 << log_n
            )));
        }
        let psi = primitive_root_2n(q, log_n).ok_or_else(|| {
            Error::InvalidParameters(format!(
                "no primitive 2N-th root of unity modulo {q} for N = 2^{log_n}"
            ))
        })?;
        let psi_inv = modulus.inv(psi).ok_or_else(|| {
            Error::InvalidParameters(format!("psi = {psi} not invertible modulo {q}"))
        })?;
        let n = 1usize << log_n;

        let mut twiddles = vec![0u64; n];
        let mut inv_twiddles = vec![0u64; n];
        let (mut power, mut inv_power) = (1u64, 1u64);
        for k in 0..n {
            let idx = bit_reverse(k, log_n);
            twiddles[idx] = power;
            inv_twiddles[idx] = inv_power;
            power = modulus.mul(power, psi);
            inv_power = modulus.mul(inv_power, psi_inv);
        }
        let twiddles_shoup = twiddles.iter().map(|&w| modulus.shoup(w)).collect();
        let inv_twiddles_shoup = inv_twiddles.iter().map(|&w| modulus.shoup(w)).collect();
        let n_inv = modulus.inv(n as u64).ok_or_else(|| {
            Error::InvalidParameters(format!("N = {n} not invertible modulo {q}"))
        })?;

        let mut table = Self {
            modulus,
            log_n,
            psi,
            twiddles,
            twiddles_shoup,
            inv_twiddles,
            inv_twiddles_shoup,
            n_inv,
            n_inv_shoup: modulus.shoup(n_inv),
            fast: FastPath::Shoup,
        };
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = ifma::detect().filter(|_| ifma::fits(&modulus) && n >= ntt_ifma::MIN_N)
        {
            table.fast = FastPath::Ifma {
                simd,
                forward_shoup52: ntt_ifma::shoup52(&modulus, &table.twiddles),
                inverse_shoup52: ntt_ifma::shoup52(&modulus, &table.inv_twiddles),
            };
            return Ok(table);
        }
        if n >= TFHE_NTT_MIN_N {
            if let Some(plan) = tfhe_ntt::prime64::Plan::try_new(n, q) {
                // The transform of the monomial X holds, at index 0, the
                // plan's own root; keep the plan only if that root is psi.
                let mut probe = vec![0u64; n];
                probe[1] = 1;
                plan.fwd(&mut probe);
                if probe[0] == psi {
                    table.fast = FastPath::TfheNtt(Box::new(plan));
                }
            }
        }
        Ok(table)
    }

    /// The prime modulus q.
    #[inline]
    pub fn modulus(&self) -> &Modulus {
        &self.modulus
    }

    /// log2 of the ring degree.
    #[inline]
    pub fn log_n(&self) -> u32 {
        self.log_n
    }

    /// The ring degree N.
    #[inline]
    pub fn n(&self) -> usize {
        1 << self.log_n
    }

    /// The primitive 2N-th root of unity psi of the convention.
    #[inline]
    pub fn psi(&self) -> u64 {
        self.psi
    }

    /// The exponent `e = 2*bitrev(index)+1` such that forward output index
    /// `index` holds `a(psi^e)`.
    #[inline]
    pub fn evaluation_exponent(&self, index: usize) -> usize {
        2 * bit_reverse(index, self.log_n) + 1
    }

    /// The implementation [`forward`](Self::forward) and
    /// [`inverse`](Self::inverse) run: `"ifma"` (ours, AVX-512 IFMA, primes
    /// below 2^50), `"tfhe-ntt"` or `"shoup"` (ours, scalar).
    pub fn fast_path(&self) -> &'static str {
        match self.fast {
            #[cfg(target_arch = "x86_64")]
            FastPath::Ifma { .. } => "ifma",
            FastPath::TfheNtt(_) => "tfhe-ntt",
            FastPath::Shoup => "shoup",
        }
    }

    /// `psi^bitrev(k)` for `0 <= k < N`.
    #[inline]
    pub fn forward_twiddles(&self) -> &[u64] {
        &self.twiddles
    }

    /// Shoup companions `floor(w * 2^64 / q)` of [`forward_twiddles`](Self::forward_twiddles).
    #[inline]
    pub fn forward_twiddles_shoup(&self) -> &[u64] {
        &self.twiddles_shoup
    }

    /// `psi^(-bitrev(k))` for `0 <= k < N`.
    #[inline]
    pub fn inverse_twiddles(&self) -> &[u64] {
        &self.inv_twiddles
    }

    /// Shoup companions of [`inverse_twiddles`](Self::inverse_twiddles).
    #[inline]
    pub fn inverse_twiddles_shoup(&self) -> &[u64] {
        &self.inv_twiddles_shoup
    }

    /// `N^{-1} mod q`.
    #[inline]
    pub fn n_inv(&self) -> u64 {
        self.n_inv
    }

    /// Shoup companion of [`n_inv`](Self::n_inv).
    #[inline]
    pub fn n_inv_shoup(&self) -> u64 {
        self.n_inv_shoup
    }

    /// Forward transform in place (fast path). Input: N coefficients in
    /// `[0, q)`; output: the evaluations of the module convention, in `[0, q)`.
    pub fn forward(&self, a: &mut [u64]) {
        assert_eq!(a.len(), self.n(), "NTT input length");
        match &self.fast {
            #[cfg(target_arch = "x86_64")]
            FastPath::Ifma {
                simd,
                forward_shoup52,
                ..
            } => ntt_ifma::forward(*simd, &self.modulus, a, &self.twiddles, forward_shoup52),
            // tfhe-ntt's last butterfly layer reduces fully into [0, q).
            FastPath::TfheNtt(plan) => plan.fwd(a),
            FastPath::Shoup => self.forward_shoup(a),
        }
    }

    /// Inverse transform in place (fast path), including the factor 1/N.
    /// Input: evaluations in `[0, q)`; output: coefficients in `[0, q)`.
    pub fn inverse(&self, a: &mut [u64]) {
        assert_eq!(a.len(), self.n(), "NTT input length");
        match &self.fast {
            #[cfg(target_arch = "x86_64")]
            FastPath::Ifma {
                simd,
                inverse_shoup52,
                ..
            } => ntt_ifma::inverse(
                *simd,
                &self.modulus,
                a,
                (&self.inv_twiddles, inverse_shoup52),
                Some(self.n_inv),
            ),
            FastPath::TfheNtt(plan) => {
                plan.inv(a);
                // Shoup multiplication by N^{-1} with a final correction: [0, q).
                plan.normalize(a);
            }
            FastPath::Shoup => self.inverse_shoup(a),
        }
    }

    /// The inverse transform with its final factor left to the caller:
    /// afterwards `a[i]·f mod q` is what [`NttTable::inverse`] would give,
    /// for the returned `f` (N^{-1} on the IFMA and tfhe-ntt paths, 1 on the
    /// Shoup path), so a caller that multiplies by a constant anyway folds
    /// `f` into it. Words stay below `4q` (below `2q`, so below 2^51, on the
    /// IFMA path).
    pub fn inverse_deferred(&self, a: &mut [u64]) -> u64 {
        assert_eq!(a.len(), self.n(), "NTT input length");
        match &self.fast {
            #[cfg(target_arch = "x86_64")]
            FastPath::Ifma {
                simd,
                inverse_shoup52,
                ..
            } => {
                let twiddles = (self.inv_twiddles.as_slice(), inverse_shoup52.as_slice());
                ntt_ifma::inverse(*simd, &self.modulus, a, twiddles, None);
                self.n_inv
            }
            FastPath::TfheNtt(plan) => {
                plan.inv(a);
                self.n_inv
            }
            FastPath::Shoup => {
                self.inverse_shoup(a);
                1
            }
        }
    }

    /// Forward transform with our own Harvey butterflies (Shoup
    /// multiplication, values lazily kept in `[0, 4q)`, reduced at the end).
    pub fn forward_shoup(&self, a: &mut [u64]) {
        let n = self.n();
        assert_eq!(a.len(), n, "NTT input length");
        let m_ = &self.modulus;
        let q = m_.value();
        let two_q = 2 * q;
        let mut t = n;
        let mut m = 1;
        while m < n {
            t >>= 1;
            let ws = &self.twiddles[m..2 * m];
            let ws_shoup = &self.twiddles_shoup[m..2 * m];
            for ((block, &w), &w_shoup) in a.chunks_exact_mut(2 * t).zip(ws).zip(ws_shoup) {
                let (lo, hi) = block.split_at_mut(t);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    // x, y in [0, 4q).
                    // Branch-free conditional subtraction (wraps above u when u < 2q).
                    let u = (*x).min((*x).wrapping_sub(two_q));
                    let v = m_.mul_shoup_lazy(*y, w, w_shoup); // [0, 2q)
                    *x = u + v;
                    *y = u + two_q - v;
                }
            }
            m <<= 1;
        }
        for x in a.iter_mut() {
            let v = (*x).min((*x).wrapping_sub(two_q));
            *x = v.min(v.wrapping_sub(q));
        }
    }

    /// Inverse transform with our own Harvey butterflies (values lazily kept
    /// in `[0, 2q)`), then a fully reducing Shoup multiplication by 1/N.
    pub fn inverse_shoup(&self, a: &mut [u64]) {
        let n = self.n();
        assert_eq!(a.len(), n, "NTT input length");
        let m_ = &self.modulus;
        let two_q = 2 * m_.value();
        let mut t = 1;
        let mut m = n >> 1;
        while m >= 1 {
            let ws = &self.inv_twiddles[m..2 * m];
            let ws_shoup = &self.inv_twiddles_shoup[m..2 * m];
            for ((block, &w), &w_shoup) in a.chunks_exact_mut(2 * t).zip(ws).zip(ws_shoup) {
                let (lo, hi) = block.split_at_mut(t);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    // x, y in [0, 2q).
                    let (u, v) = (*x, *y);
                    let s = u + v;
                    *x = s.min(s.wrapping_sub(two_q));
                    *y = m_.mul_shoup_lazy(u + two_q - v, w, w_shoup);
                }
            }
            t <<= 1;
            m >>= 1;
        }
        for x in a.iter_mut() {
            *x = m_.mul_shoup(*x, self.n_inv, self.n_inv_shoup);
        }
    }

    /// Forward transform by the plain Cooley–Tukey network of the module
    /// convention, every operation fully reduced with [`Modulus`].
    pub fn forward_reference(&self, a: &mut [u64]) {
        let n = self.n();
        assert_eq!(a.len(), n, "NTT input length");
        let md = &self.modulus;
        let mut t = n;
        let mut m = 1;
        while m < n {
            t /= 2;
            for i in 0..m {
                let w = self.twiddles[m + i];
                let start = 2 * i * t;
                for j in start..start + t {
                    let u = a[j];
                    let v = md.mul(a[j + t], w);
                    a[j] = md.add(u, v);
                    a[j + t] = md.sub(u, v);
                }
            }
            m *= 2;
        }
    }

    /// Inverse transform by the plain Gentleman–Sande network, then
    /// multiplication by `N^{-1}`, every operation fully reduced.
    pub fn inverse_reference(&self, a: &mut [u64]) {
        let n = self.n();
        assert_eq!(a.len(), n, "NTT input length");
        let md = &self.modulus;
        let mut t = 1;
        let mut m = n / 2;
        while m >= 1 {
            for i in 0..m {
                let w = self.inv_twiddles[m + i];
                let start = 2 * i * t;
                for j in start..start + t {
                    let u = a[j];
                    let v = a[j + t];
                    a[j] = md.add(u, v);
                    a[j + t] = md.mul(md.sub(u, v), w);
                }
            }
            t *= 2;
            m /= 2;
        }
        for x in a.iter_mut() {
            *x = md.mul(*x, self.n_inv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::generate_ntt_primes;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    #[cfg(target_arch = "x86_64")]
    fn ifma_detected() -> bool {
        ifma::detect().is_some()
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn ifma_detected() -> bool {
        false
    }

    fn table(q: u64, log_n: u32) -> NttTable {
        NttTable::new(Modulus::new(q).unwrap(), log_n).unwrap()
    }

    fn random_poly(rng: &mut ChaCha20Rng, q: u64, n: usize) -> Vec<u64> {
        (0..n).map(|_| rng.random_range(0..q)).collect()
    }

    /// Inputs for the equality tests: random ones, all zeros, all q-1, a
    /// monomial.
    fn inputs(rng: &mut ChaCha20Rng, q: u64, n: usize, random: usize) -> Vec<Vec<u64>> {
        let mut v: Vec<Vec<u64>> = (0..random).map(|_| random_poly(rng, q, n)).collect();
        v.push(vec![0; n]);
        v.push(vec![q - 1; n]);
        let mut mono = vec![0; n];
        mono[n - 1] = 1;
        v.push(mono);
        v
    }

    fn naive_negacyclic(m: &Modulus, a: &[u64], b: &[u64]) -> Vec<u64> {
        let n = a.len();
        let mut c = vec![0u64; n];
        for (i, &ai) in a.iter().enumerate() {
            for (j, &bj) in b.iter().enumerate() {
                let p = m.mul(ai, bj);
                let k = i + j;
                if k < n {
                    c[k] = m.add(c[k], p);
                } else {
                    c[k - n] = m.sub(c[k - n], p);
                }
            }
        }
        c
    }

    /// `inverse_deferred` times its factor is `inverse`, with words below 4q
    /// (below 2^52 for q < 2^50), for primes of 30 to 61 bits.
    #[test]
    fn deferred_inverse_matches_inverse() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for bits in [30, 45, 49, 50, 55, 60, 61] {
            for log_n in [4, 10, 16] {
                let q = generate_ntt_primes(bits, log_n, 1, &[]).unwrap()[0];
                let t = table(q, log_n);
                let m = t.modulus();
                for a in inputs(&mut rng, q, 1 << log_n, 2) {
                    let mut want = a.clone();
                    t.inverse(&mut want);
                    let mut got = a;
                    let f = t.inverse_deferred(&mut got);
                    let limit = if bits < 50 { 1u64 << 52 } else { u64::MAX };
                    assert!(got
                        .iter()
                        .all(|&x| (x as u128) < 4 * q as u128 && x < limit));
                    let got: Vec<u64> = got.iter().map(|&x| m.mul(m.reduce(x), f)).collect();
                    assert_eq!(got, want, "q = {q} ({bits} bits), log_n = {log_n}");
                }
            }
        }
    }

    #[test]
    fn bit_reverse_small() {
        assert_eq!(bit_reverse(0, 0), 0);
        assert_eq!(bit_reverse(1, 1), 1);
        assert_eq!(bit_reverse(1, 3), 4);
        assert_eq!(bit_reverse(6, 3), 3);
        assert_eq!(bit_reverse(1, 17), 1 << 16);
        for bits in 1..=12 {
            for x in 0..(1usize << bits) {
                assert_eq!(bit_reverse(bit_reverse(x, bits), bits), x);
            }
        }
    }

    #[test]
    fn tables_follow_the_convention() {
        for log_n in [1u32, 4, 10] {
            let q = generate_ntt_primes(50, log_n.max(4), 1, &[]).unwrap()[0];
            let t = table(q, log_n);
            let m = t.modulus();
            assert_eq!(m.pow(t.psi(), t.n() as u64), q - 1);
            for k in 0..t.n() {
                let e = bit_reverse(k, log_n) as u64;
                assert_eq!(t.forward_twiddles()[k], m.pow(t.psi(), e));
                assert_eq!(m.mul(t.forward_twiddles()[k], t.inverse_twiddles()[k]), 1);
                assert_eq!(
                    t.forward_twiddles_shoup()[k],
                    m.shoup(t.forward_twiddles()[k])
                );
                assert_eq!(
                    t.inverse_twiddles_shoup()[k],
                    m.shoup(t.inverse_twiddles()[k])
                );
            }
            assert_eq!(m.mul(t.n_inv(), t.n() as u64), 1);
        }
    }

    #[test]
    fn reference_forward_matches_definition() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        for bits in [30u32, 50, 60, 61] {
            // Primes NTT-friendly for N = 2^8 serve every smaller N.
            for &q in &generate_ntt_primes(bits, 8, 2, &[]).unwrap() {
                for log_n in 1..=8u32 {
                    let t = table(q, log_n);
                    let m = t.modulus();
                    let n = t.n();
                    for a in inputs(&mut rng, q, n, 2) {
                        let mut fwd = a.clone();
                        t.forward_reference(&mut fwd);
                        for (i, &value) in fwd.iter().enumerate() {
                            let e = t.evaluation_exponent(i);
                            assert_eq!(e, 2 * bit_reverse(i, log_n) + 1);
                            let x = m.pow(t.psi(), e as u64);
                            // Horner evaluation of a at x.
                            let expected =
                                a.iter().rev().fold(0u64, |acc, &c| m.add(m.mul(acc, x), c));
                            assert_eq!(value, expected, "q={q} log_n={log_n} i={i}");
                        }
                        let mut back = fwd.clone();
                        t.inverse_reference(&mut back);
                        assert_eq!(back, a, "q={q} log_n={log_n}");
                    }
                }
            }
        }
    }

    #[test]
    fn ntt_multiplication_matches_naive_negacyclic_convolution() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for bits in [30u32, 40, 50, 55, 60, 61] {
            let q = generate_ntt_primes(bits, 10, 1, &[]).unwrap()[0];
            for log_n in 4..=10u32 {
                let t = table(q, log_n);
                let m = t.modulus();
                let n = t.n();
                let a = random_poly(&mut rng, q, n);
                let b = random_poly(&mut rng, q, n);
                let expected = naive_negacyclic(m, &a, &b);
                type Transform = fn(&NttTable, &mut [u64]);
                let paths: [(&str, Transform, Transform); 3] = [
                    ("fast", NttTable::forward, NttTable::inverse),
                    ("shoup", NttTable::forward_shoup, NttTable::inverse_shoup),
                    (
                        "reference",
                        NttTable::forward_reference,
                        NttTable::inverse_reference,
                    ),
                ];
                for (name, fwd, inv) in paths {
                    let (mut fa, mut fb) = (a.clone(), b.clone());
                    fwd(&t, &mut fa);
                    fwd(&t, &mut fb);
                    let mut c: Vec<u64> = fa.iter().zip(&fb).map(|(&x, &y)| m.mul(x, y)).collect();
                    inv(&t, &mut c);
                    assert_eq!(c, expected, "{name}: q={q} log_n={log_n}");
                }
            }
        }
    }

    #[test]
    fn fast_and_shoup_paths_equal_reference() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let mut cases: Vec<(u32, u32)> = vec![(1, 50), (2, 61), (3, 30), (4, 50), (4, 61)];
        // Every grouping of the IFMA transform's vector stages (1, 2, 3
        // left over; one or more chunks).
        cases.extend((5..10).map(|log_n| (log_n, 49)));
        cases.push((17, 50));
        for log_n in 10..=16u32 {
            cases.push((log_n, 50));
            cases.push((log_n, if log_n % 2 == 0 { 60 } else { 36 }));
        }
        cases.push((17, 59));
        for (log_n, bits) in cases {
            let q = generate_ntt_primes(bits, log_n, 1, &[]).unwrap()[0];
            let t = table(q, log_n);
            let n = t.n();
            let expected_path = if n < TFHE_NTT_MIN_N {
                "shoup"
            } else if bits <= 50 && ifma_detected() {
                "ifma"
            } else {
                "tfhe-ntt"
            };
            assert_eq!(t.fast_path(), expected_path, "log_n={log_n} q={q}");
            let random = if log_n >= 15 { 1 } else { 3 };
            for a in inputs(&mut rng, q, n, random) {
                let mut reference = a.clone();
                t.forward_reference(&mut reference);
                let mut fast = a.clone();
                t.forward(&mut fast);
                assert!(fast.iter().all(|&x| x < q), "forward output not reduced");
                assert_eq!(fast, reference, "forward: log_n={log_n} q={q}");
                let mut shoup = a.clone();
                t.forward_shoup(&mut shoup);
                assert_eq!(shoup, reference, "forward_shoup: log_n={log_n} q={q}");

                // Inverse of arbitrary reduced evaluations, and round trips.
                let mut inv_reference = a.clone();
                t.inverse_reference(&mut inv_reference);
                let mut inv_fast = a.clone();
                t.inverse(&mut inv_fast);
                assert!(
                    inv_fast.iter().all(|&x| x < q),
                    "inverse output not reduced"
                );
                assert_eq!(inv_fast, inv_reference, "inverse: log_n={log_n} q={q}");
                let mut inv_shoup = a.clone();
                t.inverse_shoup(&mut inv_shoup);
                assert_eq!(
                    inv_shoup, inv_reference,
                    "inverse_shoup: log_n={log_n} q={q}"
                );

                t.inverse(&mut fast);
                assert_eq!(fast, a, "inverse(forward(a)): log_n={log_n} q={q}");
                t.inverse_shoup(&mut shoup);
                assert_eq!(
                    shoup, a,
                    "inverse_shoup(forward_shoup(a)): log_n={log_n} q={q}"
                );
            }
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        let q = generate_ntt_primes(50, 16, 1, &[]).unwrap()[0];
        let m = Modulus::new(q).unwrap();
        assert!(NttTable::new(m, 16).is_ok());
        assert!(matches!(
            NttTable::new(m, 0),
            Err(Error::InvalidParameters(_))
        ));
        assert!(matches!(
            NttTable::new(m, 18),
            Err(Error::InvalidParameters(_))
        ));
        // 65537 = 2^16 + 1 is ≡ 1 mod 2^16 but not mod 2^17: fine for
        // N = 2^15, not for N = 2^16 or 2^17.
        let fermat = Modulus::new(65537).unwrap();
        assert!(NttTable::new(fermat, 15).is_ok());
        assert!(matches!(
            NttTable::new(fermat, 16),
            Err(Error::InvalidParameters(_))
        ));
        // A prime not ≡ 1 mod 4.
        assert!(NttTable::new(Modulus::new(1_000_000_007).unwrap(), 10).is_err());
        // A composite ≡ 1 mod 2N.
        let composite = 1 + (2u64 << 10) * 3 * 5;
        assert!(!crate::math::is_prime(composite));
        assert!(NttTable::new(Modulus::new(composite).unwrap(), 10).is_err());
        assert!(NttTable::new(fermat, 17).is_err());
    }
}
