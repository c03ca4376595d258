// modarith.cuh: 64-bit modular arithmetic and the kernel parameter blocks
// shared by every CUDA kernel file of heformer.
//
// No entry points. Included by every .cu file (NVRTC receives it as a named
// header). Invariants: every prime q is odd and below 2^62 (2^61 in the
// production presets), so a + b < 2^63 for reduced a, b and Shoup's lazy
// results (< 2q) and the NTT's lazy values (< 4q) fit a word. Every function
// here that says "reduced" returns a value in [0, q).
//
// The structs below are mirrored byte for byte by `src/backend/cuda/abi.rs`
// (#[repr(C)]); change both together.

#ifndef HEFORMER_MODARITH_CUH
#define HEFORMER_MODARITH_CUH

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;

// Most limbs one launch addresses (the limb map is passed by value).
#define HEFORMER_MAX_LIMBS 128
// Most key-switching digits one inner product accumulates.
#define HEFORMER_MAX_DIGITS 64
// Threads per block of the word-parallel kernels.
#define HEFORMER_BLOCK 256

// One prime: q, floor(2^128/q) as two words, and N^{-1} mod q with its
// Shoup companion floor(N^{-1}·2^64/q). Indexed by global modulus index.
struct Prime {
    u64 q;
    u64 ratio_lo;
    u64 ratio_hi;
    u64 n_inv;
    u64 n_inv_shoup;
};

// Limb k of a launch computes modulo primes[modulus[k]] and lives at limb
// position[k] of the buffer the kernel documents (N words per limb).
struct LimbMap {
    u16 modulus[HEFORMER_MAX_LIMBS];
    u16 position[HEFORMER_MAX_LIMBS];
};

// One reduced constant per limb of a launch with its Shoup companion.
struct LimbScalars {
    u64 value[HEFORMER_MAX_LIMBS];
    u64 shoup[HEFORMER_MAX_LIMBS];
};

// An unsigned 128-bit value as two words.
struct Wide {
    u64 lo;
    u64 hi;
};

__device__ __forceinline__ Wide mul_wide(u64 a, u64 b) {
    Wide r;
    r.lo = a * b;
    r.hi = __umul64hi(a, b);
    return r;
}

// acc += x (mod 2^128).
__device__ __forceinline__ void add_wide(Wide &acc, Wide x) {
    acc.lo += x.lo;
    acc.hi += x.hi + (acc.lo < x.lo ? 1ull : 0ull);
}

// acc += a·b (mod 2^128).
__device__ __forceinline__ void mul_add_wide(Wide &acc, u64 a, u64 b) {
    add_wide(acc, mul_wide(a, b));
}

// x mod q for any 128-bit x (Barrett with r = floor(2^128/q)). The quotient
// estimate drops only the low half of the lowest partial product, so it is
// at most 2 below the true quotient; only its low word is needed because the
// remainder (< 3q) fits a word.
__device__ __forceinline__ u64 reduce_wide(Wide x, const Prime &p) {
    u64 ll_hi = __umul64hi(x.lo, p.ratio_lo);
    u64 lh_lo = x.lo * p.ratio_hi;
    u64 lh_hi = __umul64hi(x.lo, p.ratio_hi);
    u64 hl_lo = x.hi * p.ratio_lo;
    u64 hl_hi = __umul64hi(x.hi, p.ratio_lo);
    u64 mid = ll_hi + lh_lo;
    u64 carry = mid < lh_lo ? 1ull : 0ull;
    mid += hl_lo;
    carry += mid < hl_lo ? 1ull : 0ull;
    u64 quotient = x.hi * p.ratio_hi + lh_hi + hl_hi + carry;
    u64 r = x.lo - quotient * p.q;
    r = r >= p.q ? r - p.q : r;
    return r >= p.q ? r - p.q : r;
}

// a·b mod q for any words.
__device__ __forceinline__ u64 mul_mod(u64 a, u64 b, const Prime &p) {
    return reduce_wide(mul_wide(a, b), p);
}

// x mod q for any word.
__device__ __forceinline__ u64 reduce_word(u64 x, const Prime &p) {
    Wide w;
    w.lo = x;
    w.hi = 0;
    return x < p.q ? x : reduce_wide(w, p);
}

// (a + b) mod q for reduced a, b.
__device__ __forceinline__ u64 add_mod(u64 a, u64 b, u64 q) {
    u64 s = a + b;
    return s >= q ? s - q : s;
}

// (a - b) mod q for reduced a, b.
__device__ __forceinline__ u64 sub_mod(u64 a, u64 b, u64 q) {
    return a >= b ? a - b : a + q - b;
}

// -a mod q for reduced a.
__device__ __forceinline__ u64 neg_mod(u64 a, u64 q) {
    return a == 0 ? 0 : q - a;
}

// a·w mod q in [0, 2q) for any word a, a constant w < q and its Shoup
// companion w_shoup = floor(w·2^64/q).
__device__ __forceinline__ u64 mul_shoup_lazy(u64 a, u64 w, u64 w_shoup, u64 q) {
    return a * w - __umul64hi(a, w_shoup) * q;
}

// a·w mod q, reduced, for any word a.
__device__ __forceinline__ u64 mul_shoup(u64 a, u64 w, u64 w_shoup, u64 q) {
    u64 r = mul_shoup_lazy(a, w, w_shoup, q);
    return r >= q ? r - q : r;
}

// x - 2q when x >= 2q (x < 4q gives [0, 2q)).
__device__ __forceinline__ u64 fold_2q(u64 x, u64 q) {
    return x >= 2 * q ? x - 2 * q : x;
}

// The coefficient index of this thread in a word-parallel launch (grid.x
// over the N words of a limb, grid.y over limbs).
__device__ __forceinline__ u32 word_index() {
    return blockIdx.x * blockDim.x + threadIdx.x;
}

// In a word-parallel launch over a limb map (grid.y = limb k): the word
// offset of this thread in its limb's buffer position and the limb's global
// modulus index, or false when the thread is past the limb's end.
__device__ __forceinline__ bool limb_word(const LimbMap &map, u32 n, u64 &at, u32 &g) {
    u32 c = word_index();
    if (c >= n) {
        return false;
    }
    u32 k = blockIdx.y;
    g = map.modulus[k];
    at = (u64)map.position[k] * n + c;
    return true;
}

#endif // HEFORMER_MODARITH_CUH
