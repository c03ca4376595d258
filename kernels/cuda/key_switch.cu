// key_switch.cu: the hybrid key-switching inner product.
//
// Entry point: inner_product(out0, out1, operands, primes, map, digits, n):
// for limb k of the extended basis (modulus map.modulus[k]),
//   out0[k·n + c] = Σ_j digit_j[k·n + c] · key_b_j[map.position[k]·n + c]
//   out1[k·n + c] = Σ_j digit_j[k·n + c] · key_a_j[map.position[k]·n + c]
// over j < digits (<= HEFORMER_MAX_DIGITS), where map.position[k] is the
// limb's index in the key buffers (the extended basis of the key's top
// level, which may be shorter than the full basis). The products are summed
// in 128 bits (at most 64 products of reduced words fit) and reduced once.
// Launch geometry: grid (ceil(n / blockDim.x), limbs), blockDim.x <= 256.

#include "modarith.cuh"

// Device addresses of the operands of one inner product.
struct DigitOperands {
    u64 digit[HEFORMER_MAX_DIGITS];
    u64 key_b[HEFORMER_MAX_DIGITS];
    u64 key_a[HEFORMER_MAX_DIGITS];
};

extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
inner_product(u64 *__restrict__ out0, u64 *__restrict__ out1, DigitOperands operands,
              const Prime *__restrict__ primes, LimbMap map, u32 digits, u32 n) {
    u32 c = word_index();
    if (c >= n) {
        return;
    }
    u32 k = blockIdx.y;
    u64 at = (u64)k * n + c;
    u64 key_at = (u64)map.position[k] * n + c;
    Wide acc0 = {0, 0};
    Wide acc1 = {0, 0};
    for (u32 j = 0; j < digits; ++j) {
        u64 d = ((const u64 *)operands.digit[j])[at];
        mul_add_wide(acc0, d, ((const u64 *)operands.key_b[j])[key_at]);
        mul_add_wide(acc1, d, ((const u64 *)operands.key_a[j])[key_at]);
    }
    const Prime p = primes[map.modulus[k]];
    out0[at] = reduce_wide(acc0, p);
    out1[at] = reduce_wide(acc1, p);
}
