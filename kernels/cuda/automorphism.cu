// automorphism.cu: the evaluation-domain automorphism X -> X^g.
//
// Entry point: automorphism(out, src, perm, n): out[k·n + i] =
// src[k·n + perm[i]] for every limb k (a pure permutation of words, the same
// for every limb; perm comes from RingContext::automorphism_permutation).
// Launch geometry: grid (ceil(n / blockDim.x), limbs), blockDim.x <= 256.
// `out` and `src` must not overlap.

#include "modarith.cuh"

extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
automorphism(u64 *__restrict__ out, const u64 *__restrict__ src, const u32 *__restrict__ perm,
             u32 n) {
    u32 c = word_index();
    if (c >= n) {
        return;
    }
    u64 base = (u64)blockIdx.y * n;
    out[base + c] = src[base + perm[c]];
}
