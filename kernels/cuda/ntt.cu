// ntt.cu: negacyclic NTTs of every limb of a polynomial, the convention of
// src/ring/ntt.rs (forward: index i holds a(psi^(2·bitrev(i)+1)); inverse:
// natural-order coefficients, N^{-1} included).
//
// Tables: tw[g·N + k] = psi_g^bitrev(k) (forward) or psi_g^(-bitrev(k))
// (inverse) for global modulus g, tw_shoup their Shoup companions; primes[g]
// holds q and N^{-1} with its companion. Limb k of a launch lives at limb
// position map.position[k] of `data` and uses modulus map.modulus[k].
//
// Entry points:
// * ntt_forward_stage(data, tw, tw_shoup, primes, map, n, m): one radix-2
//   Cooley–Tukey stage (t = n/(2m)) of every limb, reduced in and out.
//   Grid (ceil(n/2 / blockDim.x), limbs): one butterfly per thread.
// * ntt_inverse_stage(same): one Gentleman–Sande stage, reduced in and out.
// * ntt_inverse_scale(data, primes, map, n): multiplies by N^{-1}.
//   Grid (ceil(n / blockDim.x), limbs).
//   The portable baseline: log N stage launches (+1 scale for the inverse).
// * ntt_forward_phase / ntt_inverse_phase(data, tw, tw_shoup, primes, map,
//   log_n, first_stage, stages, log_group, last): `stages` consecutive stages
//   (Cooley–Tukey stages first_stage .. first_stage+stages-1, m = 2^stage;
//   the inverse runs them in the reverse order) in shared memory. A block
//   owns 2^log_group groups of 2^stages words each: the words
//   hi·(N >> first_stage) + mid·stride + lo0 + lo for mid < 2^stages,
//   lo < 2^log_group, stride = N >> (first_stage + stages). Grid
//   (2^first_stage · stride / 2^log_group, limbs), blockDim.x <= 256,
//   dynamic shared memory 8·2^(stages+log_group) bytes. Values stay lazy
//   between phases ([0, 4q) forward, [0, 2q) inverse); the phase with
//   `last` != 0 reduces fully (forward) or multiplies by N^{-1} (inverse).
//   A transform of 2^16 words is two launches of 2048-word tiles.

#include "modarith.cuh"

// One radix-2 butterfly of stage m (t = n/(2m)) of either direction, on
// reduced words: Cooley–Tukey forward, Gentleman–Sande inverse.
template <bool INVERSE>
__device__ __forceinline__ void ntt_stage(u64 *__restrict__ data, const u64 *__restrict__ tw,
                                          const u64 *__restrict__ tw_shoup,
                                          const Prime *__restrict__ primes, const LimbMap &map,
                                          u32 n, u32 m) {
    u32 b = word_index();
    if (b >= n / 2) {
        return;
    }
    u32 k = blockIdx.y;
    u32 g = map.modulus[k];
    u64 q = primes[g].q;
    u64 *poly = data + (u64)map.position[k] * n;
    u32 t = n / (2 * m);
    u32 i = b / t;
    u32 j = 2 * i * t + b % t;
    u64 w_at = (u64)g * n + m + i;
    u64 x = poly[j];
    u64 y = poly[j + t];
    if (INVERSE) {
        poly[j] = add_mod(x, y, q);
        poly[j + t] = mul_shoup(sub_mod(x, y, q), tw[w_at], tw_shoup[w_at], q);
    } else {
        u64 v = mul_shoup(y, tw[w_at], tw_shoup[w_at], q);
        poly[j] = add_mod(x, v, q);
        poly[j + t] = sub_mod(x, v, q);
    }
}

extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
ntt_forward_stage(u64 *__restrict__ data, const u64 *__restrict__ tw,
                  const u64 *__restrict__ tw_shoup, const Prime *__restrict__ primes,
                  LimbMap map, u32 n, u32 m) {
    ntt_stage<false>(data, tw, tw_shoup, primes, map, n, m);
}

extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
ntt_inverse_stage(u64 *__restrict__ data, const u64 *__restrict__ tw,
                  const u64 *__restrict__ tw_shoup, const Prime *__restrict__ primes,
                  LimbMap map, u32 n, u32 m) {
    ntt_stage<true>(data, tw, tw_shoup, primes, map, n, m);
}

extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
ntt_inverse_scale(u64 *__restrict__ data, const Prime *__restrict__ primes, LimbMap map,
                  u32 n) {
    u64 at;
    u32 g;
    if (limb_word(map, n, at, g)) {
        const Prime p = primes[g];
        data[at] = mul_shoup(data[at], p.n_inv, p.n_inv_shoup, p.q);
    }
}

// The shared-memory phase of either direction (see the file header).
template <bool INVERSE>
__device__ __forceinline__ void ntt_phase(u64 *__restrict__ data, const u64 *__restrict__ tw,
                                          const u64 *__restrict__ tw_shoup,
                                          const Prime *__restrict__ primes, const LimbMap &map,
                                          u32 log_n, u32 first_stage, u32 stages, u32 log_group,
                                          u32 last) {
    extern __shared__ u64 tile[];
    const u32 k = blockIdx.y;
    const u32 g = map.modulus[k];
    const Prime p = primes[g];
    const u64 q = p.q;
    const u64 two_q = 2 * q;
    u64 *poly = data + ((u64)map.position[k] << log_n);
    const u64 *w_table = tw + ((u64)g << log_n);
    const u64 *ws_table = tw_shoup + ((u64)g << log_n);

    const u32 log_stride = log_n - first_stage - stages;
    const u32 log_chunks = log_stride - log_group;
    const u32 hi = blockIdx.x >> log_chunks;
    const u32 lo0 = (blockIdx.x & ((1u << log_chunks) - 1)) << log_group;
    const u32 group_mask = (1u << log_group) - 1;
    const u32 size = 1u << (stages + log_group);
    const u64 base = ((u64)hi << (log_n - first_stage)) + lo0;

    for (u32 e = threadIdx.x; e < size; e += blockDim.x) {
        tile[e] = poly[base + ((u64)(e >> log_group) << log_stride) + (e & group_mask)];
    }
    __syncthreads();

    for (u32 step = 0; step < stages; ++step) {
        const u32 r = INVERSE ? stages - 1 - step : step;
        const u32 log_h = stages - 1 - r;
        for (u32 b = threadIdx.x; b < size / 2; b += blockDim.x) {
            const u32 pair = b >> log_group;
            const u32 blk = pair >> log_h;
            const u32 off = pair & ((1u << log_h) - 1);
            const u32 ia = ((((blk << 1) << log_h) + off) << log_group) | (b & group_mask);
            const u32 ib = ia + (1u << (log_h + log_group));
            const u32 w_at = (1u << (first_stage + r)) + (hi << r) + blk;
            const u64 w = w_table[w_at];
            const u64 ws = ws_table[w_at];
            const u64 x = tile[ia];
            const u64 y = tile[ib];
            if (INVERSE) {
                // x, y in [0, 2q) -> [0, 2q).
                tile[ia] = fold_2q(x + y, q);
                tile[ib] = mul_shoup_lazy(x + two_q - y, w, ws, q);
            } else {
                // x, y in [0, 4q) -> [0, 4q).
                const u64 u = fold_2q(x, q);
                const u64 v = mul_shoup_lazy(y, w, ws, q);
                tile[ia] = u + v;
                tile[ib] = u + two_q - v;
            }
        }
        __syncthreads();
    }

    for (u32 e = threadIdx.x; e < size; e += blockDim.x) {
        u64 x = tile[e];
        if (last) {
            if (INVERSE) {
                x = mul_shoup(x, p.n_inv, p.n_inv_shoup, q);
            } else {
                x = fold_2q(x, q);
                x = x >= q ? x - q : x;
            }
        }
        poly[base + ((u64)(e >> log_group) << log_stride) + (e & group_mask)] = x;
    }
}

extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
ntt_forward_phase(u64 *__restrict__ data, const u64 *__restrict__ tw,
                  const u64 *__restrict__ tw_shoup, const Prime *__restrict__ primes,
                  LimbMap map, u32 log_n, u32 first_stage, u32 stages, u32 log_group,
                  u32 last) {
    ntt_phase<false>(data, tw, tw_shoup, primes, map, log_n, first_stage, stages, log_group,
                     last);
}

extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
ntt_inverse_phase(u64 *__restrict__ data, const u64 *__restrict__ tw,
                  const u64 *__restrict__ tw_shoup, const Prime *__restrict__ primes,
                  LimbMap map, u32 log_n, u32 first_stage, u32 stages, u32 log_group,
                  u32 last) {
    ntt_phase<true>(data, tw, tw_shoup, primes, map, log_n, first_stage, stages, log_group,
                    last);
}
