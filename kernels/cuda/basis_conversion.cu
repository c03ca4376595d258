// basis_conversion.cu: the pieces of ModUp, ModDown and rescale, and
// bootstrapping's ModRaise.
//
// Notation (BaseConversion in src/ring/context.rs): sources s < S with
// primes q_s, targets r < T. `scaled` holds y_s = x_s·(Q_S/q_s)^{-1} mod q_s
// as S limbs of n words; `hat` is (Q_S/q_s mod t_r) row-major [r][s];
// `neg_product[r]` = (-Q_S) mod t_r; `fraction` holds floor(2^128/q_s) as
// S low words then S high words.
//
// Entry points (word-parallel unless said; grid (ceil(n / blockDim.x), limbs),
// blockDim.x <= 256; limb k uses modulus map.modulus[k]):
// * scale_sources(scaled, x, primes, map, hat_inv, n): scaled[k·n + c] =
//   x[map.position[k]·n + c]·hat_inv_k mod q (Shoup; in place allowed when
//   the positions are 0..S).
// * centered_overflows(v, scaled, fraction, sources, n): grid
//   (ceil(n / blockDim.x), 1); v[c] = (Σ_s ((y_s·f_s) >> 64) + 2^63) >> 64,
//   the multiple of Q_S the centered conversion subtracts.
// * convert(out, scaled, overflows, primes, map, hat, neg_product, sources,
//   targets, n): grid (ceil(n / blockDim.x), ceil(targets / 4)); each thread
//   computes 4 targets r of one word c: out[map.position[r]·n + c] =
//   (Σ_s y_s·hat[r][s] + v_c·neg_product[r]) mod t_r, summed in 128 bits and
//   reduced once; the v term only when `overflows` is not null
//   (approximate conversion otherwise).
// * subtract_then_scale(out, x, primes, map, inverse, n): at position
//   p = map.position[k], out[p·n + c] = (x[p·n + c] - out[p·n + c])·inverse_k.
// * lift_centered(out, src, primes, map, q_src, n): out[map.position[k]·n
//   + c] = the centered residue of src[c] modulo q_src (in
//   (-q_src/2, q_src/2]) reduced modulo q_k, for src[c] < q_src. Rescale
//   lifts the last limb (q_src = q_level) to the limbs below it; ModRaise
//   lifts limb 0 (q_src = q_0) to every limb of a level, q_0 included.

#include "modarith.cuh"

// Targets per thread of `convert` (accumulators held in registers).
#define CONVERT_TARGETS 4

extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
scale_sources(u64 *scaled, const u64 *x, const Prime *__restrict__ primes, LimbMap map,
              LimbScalars hat_inv, u32 n) {
    u64 at;
    u32 g;
    if (limb_word(map, n, at, g)) {
        u32 k = blockIdx.y;
        scaled[(u64)k * n + word_index()] =
            mul_shoup(x[at], hat_inv.value[k], hat_inv.shoup[k], primes[g].q);
    }
}

extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
centered_overflows(u64 *__restrict__ v, const u64 *__restrict__ scaled,
                   const u64 *__restrict__ fraction, u32 sources, u32 n) {
    u32 c = word_index();
    if (c >= n) {
        return;
    }
    Wide sum = {0, 0};
    for (u32 s = 0; s < sources; ++s) {
        u64 y = scaled[(u64)s * n + c];
        // (y·f) >> 64 = y·f_hi + ((y·f_lo) >> 64), and y·f < 2^128.
        Wide term;
        term.lo = y * fraction[sources + s] + __umul64hi(y, fraction[s]);
        term.hi = 0;
        add_wide(sum, term);
    }
    Wide half = {1ull << 63, 0};
    add_wide(sum, half);
    v[c] = sum.hi;
}

extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
convert(u64 *__restrict__ out, const u64 *__restrict__ scaled, const u64 *__restrict__ overflows,
        const Prime *__restrict__ primes, LimbMap map, const u64 *__restrict__ hat,
        const u64 *__restrict__ neg_product, u32 sources, u32 targets, u32 n) {
    u32 c = word_index();
    if (c >= n) {
        return;
    }
    const u32 r0 = blockIdx.y * CONVERT_TARGETS;
    Wide acc[CONVERT_TARGETS];
#pragma unroll
    for (u32 t = 0; t < CONVERT_TARGETS; ++t) {
        acc[t].lo = 0;
        acc[t].hi = 0;
    }
    for (u32 s = 0; s < sources; ++s) {
        u64 y = scaled[(u64)s * n + c];
#pragma unroll
        for (u32 t = 0; t < CONVERT_TARGETS; ++t) {
            if (r0 + t < targets) {
                mul_add_wide(acc[t], y, hat[(u64)(r0 + t) * sources + s]);
            }
        }
    }
    u64 v = overflows != nullptr ? overflows[c] : 0;
#pragma unroll
    for (u32 t = 0; t < CONVERT_TARGETS; ++t) {
        u32 r = r0 + t;
        if (r < targets) {
            mul_add_wide(acc[t], v, neg_product[r]);
            out[(u64)map.position[r] * n + c] = reduce_wide(acc[t], primes[map.modulus[r]]);
        }
    }
}

extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
subtract_then_scale(u64 *__restrict__ out, const u64 *__restrict__ x,
                    const Prime *__restrict__ primes, LimbMap map, LimbScalars inverse, u32 n) {
    u64 at;
    u32 g;
    if (limb_word(map, n, at, g)) {
        u32 k = blockIdx.y;
        u64 q = primes[g].q;
        out[at] = mul_shoup(sub_mod(x[at], out[at], q), inverse.value[k], inverse.shoup[k], q);
    }
}

extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
lift_centered(u64 *__restrict__ out, const u64 *__restrict__ src,
              const Prime *__restrict__ primes, LimbMap map, u64 q_src, u32 n) {
    u64 at;
    u32 g;
    if (limb_word(map, n, at, g)) {
        const Prime p = primes[g];
        u64 a = src[word_index()];
        // Centered: a > q_src/2 stands for the negative a - q_src.
        if (a > q_src / 2) {
            out[at] = neg_mod(reduce_word(q_src - a, p), p.q);
        } else {
            out[at] = reduce_word(a, p);
        }
    }
}
