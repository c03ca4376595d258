//! The AVX-512 IFMA vocabulary shared by the NTT (ring layer) and the CPU
//! backend's kernels: the instruction-set token, its runtime detection, eight
//! 64-bit lanes as one vector, and the modular operations every kernel uses.
//!
//! Lanes hold residues of one prime `q < 2^50`, so that lazy values below
//! `4q` still fit the 52 bits that the multiply-add instructions read.
//! Conditional subtraction is `min(r, r − q)` (unsigned), valid for r < 2q.
//!
//! Everything here is safe code: the token proves the instruction sets are
//! present, and `vectorize` enables them for the closure it runs.

use std::arch::x86_64::__m512i;

use once_cell::sync::Lazy;
use pulp::cast;

use crate::math::Modulus;

/// Primes below `2^IFMA_MAX_BITS` take the IFMA paths.
pub(crate) const IFMA_MAX_BITS: u32 = 50;

/// The most terms of a dot product (so the high halves stay below 2^52).
pub(crate) const MAX_TERMS: usize = 16;

const MASK52: u64 = (1 << 52) - 1;

pulp::simd_type! {
    /// The instruction sets the kernels need.
    pub(crate) struct Ifma {
        pub avx512f: "avx512f",
        pub avx512ifma: "avx512ifma",
    }
}

static DETECTED: Lazy<Option<Ifma>> = Lazy::new(|| {
    if std::env::var_os("HEFORMER_NO_SIMD").is_some() {
        return None;
    }
    Ifma::try_new()
});

/// The IFMA token when the CPU has AVX-512 IFMA and `HEFORMER_NO_SIMD` is unset.
pub(crate) fn detect() -> Option<Ifma> {
    *DETECTED
}

/// Whether `m` is small enough for the IFMA kernels.
pub(crate) fn fits(m: &Modulus) -> bool {
    m.value() >> IFMA_MAX_BITS == 0
}

/// Eight 64-bit lanes.
pub(crate) type V = __m512i;

/// The eight words of `words` (exactly eight) as one vector.
pub(crate) fn load(words: &[u64]) -> V {
    let mut lanes = [0u64; 8];
    lanes.copy_from_slice(words);
    cast(lanes)
}

/// Writes the vector to `words` (exactly eight).
pub(crate) fn store(v: V, words: &mut [u64]) {
    let lanes: [u64; 8] = cast(v);
    words.copy_from_slice(&lanes);
}

impl Ifma {
    #[inline(always)]
    pub(crate) fn splat(self, x: u64) -> V {
        self.avx512f._mm512_set1_epi64(x as i64)
    }
    #[inline(always)]
    pub(crate) fn mul_lo(self, acc: V, a: V, b: V) -> V {
        self.avx512ifma._mm512_madd52lo_epu64(acc, a, b)
    }
    #[inline(always)]
    pub(crate) fn mul_hi(self, acc: V, a: V, b: V) -> V {
        self.avx512ifma._mm512_madd52hi_epu64(acc, a, b)
    }
    #[inline(always)]
    pub(crate) fn add(self, a: V, b: V) -> V {
        self.avx512f._mm512_add_epi64(a, b)
    }
    #[inline(always)]
    pub(crate) fn sub(self, a: V, b: V) -> V {
        self.avx512f._mm512_sub_epi64(a, b)
    }
    #[inline(always)]
    pub(crate) fn and52(self, a: V) -> V {
        self.avx512f._mm512_and_si512(a, self.splat(MASK52))
    }
    /// `min(r, r − q)`: subtracts q from lanes with q <= r < 2q.
    #[inline(always)]
    pub(crate) fn csub(self, r: V, q: V) -> V {
        self.avx512f._mm512_min_epu64(r, self.sub(r, q))
    }
    /// `(a − b) mod q` for reduced lanes.
    #[inline(always)]
    pub(crate) fn sub_mod(self, a: V, b: V, q: V) -> V {
        let d = self.sub(a, b);
        self.avx512f._mm512_min_epu64(d, self.add(d, q))
    }
    /// `a·w mod q` in `[0, q)` for lanes `a < 2^52` (Shoup).
    #[inline(always)]
    pub(crate) fn mul_shoup(self, a: V, w: V, w_shoup: V, q: V) -> V {
        self.csub(self.mul_shoup_lazy(a, w, w_shoup, q), q)
    }
    /// `a·w mod q` in `[0, 2q)` for lanes `a < 2^52` (Shoup, no final correction).
    #[inline(always)]
    pub(crate) fn mul_shoup_lazy(self, a: V, w: V, w_shoup: V, q: V) -> V {
        let zero = self.splat(0);
        let estimate = self.mul_hi(zero, a, w_shoup);
        self.and52(self.sub(self.mul_lo(zero, a, w), self.mul_lo(zero, estimate, q)))
    }
}
