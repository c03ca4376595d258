// elementwise.cu: word-by-word RNS arithmetic on whole polynomials.
//
// Entry points: add_assign, sub_assign, neg_assign, mul_assign,
// mul_add_assign, tensor, mul_scalar_add_assign, mul_scalar_assign,
// add_scalar_assign.
//
// Launch geometry: grid (ceil(n / blockDim.x), limbs), blockDim.x <= 256;
// thread (x, k) handles word c = blockIdx.x·blockDim.x + threadIdx.x of
// limb k, which lives at limb position map.position[k] of every operand and
// is reduced modulo primes[map.modulus[k]]. Inputs are reduced; every output
// word is reduced. Products of two variables are formed in 128 bits and
// Barrett-reduced once; products by a per-limb constant use Shoup.

#include "modarith.cuh"

// acc = acc + b
extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
add_assign(u64 *__restrict__ acc, const u64 *__restrict__ b,
           const Prime *__restrict__ primes, LimbMap map, u32 n) {
    u64 at;
    u32 g;
    if (limb_word(map, n, at, g)) {
        acc[at] = add_mod(acc[at], b[at], primes[g].q);
    }
}

// acc = acc - b
extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
sub_assign(u64 *__restrict__ acc, const u64 *__restrict__ b,
           const Prime *__restrict__ primes, LimbMap map, u32 n) {
    u64 at;
    u32 g;
    if (limb_word(map, n, at, g)) {
        acc[at] = sub_mod(acc[at], b[at], primes[g].q);
    }
}

// acc = -acc
extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
neg_assign(u64 *__restrict__ acc, const Prime *__restrict__ primes, LimbMap map, u32 n) {
    u64 at;
    u32 g;
    if (limb_word(map, n, at, g)) {
        acc[at] = neg_mod(acc[at], primes[g].q);
    }
}

// acc = acc ⊙ b
extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
mul_assign(u64 *__restrict__ acc, const u64 *__restrict__ b,
           const Prime *__restrict__ primes, LimbMap map, u32 n) {
    u64 at;
    u32 g;
    if (limb_word(map, n, at, g)) {
        acc[at] = mul_mod(acc[at], b[at], primes[g]);
    }
}

// acc = acc + a ⊙ b (one reduction of a·b + acc)
extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
mul_add_assign(u64 *__restrict__ acc, const u64 *__restrict__ a, const u64 *__restrict__ b,
               const Prime *__restrict__ primes, LimbMap map, u32 n) {
    u64 at;
    u32 g;
    if (limb_word(map, n, at, g)) {
        Wide x = mul_wide(a[at], b[at]);
        Wide z;
        z.lo = acc[at];
        z.hi = 0;
        add_wide(x, z);
        acc[at] = reduce_wide(x, primes[g]);
    }
}

// d0 = a0⊙b0, d1 = a0⊙b1 + a1⊙b0 (one reduction), d2 = a1⊙b1
extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
tensor(const u64 *__restrict__ a0, const u64 *__restrict__ a1,
       const u64 *__restrict__ b0, const u64 *__restrict__ b1,
       u64 *__restrict__ d0, u64 *__restrict__ d1, u64 *__restrict__ d2,
       const Prime *__restrict__ primes, LimbMap map, u32 n) {
    u64 at;
    u32 g;
    if (limb_word(map, n, at, g)) {
        const Prime p = primes[g];
        u64 x0 = a0[at], x1 = a1[at], y0 = b0[at], y1 = b1[at];
        d0[at] = mul_mod(x0, y0, p);
        Wide cross = mul_wide(x0, y1);
        mul_add_wide(cross, x1, y0);
        d1[at] = reduce_wide(cross, p);
        d2[at] = mul_mod(x1, y1, p);
    }
}

// acc = acc + a · c_k on limb k
extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
mul_scalar_add_assign(u64 *__restrict__ acc, const u64 *__restrict__ a,
                      const Prime *__restrict__ primes, LimbMap map, LimbScalars scalars,
                      u32 n) {
    u64 at;
    u32 g;
    if (limb_word(map, n, at, g)) {
        u32 k = blockIdx.y;
        u64 q = primes[g].q;
        acc[at] = add_mod(acc[at], mul_shoup(a[at], scalars.value[k], scalars.shoup[k], q), q);
    }
}

// acc = acc · c_k on limb k
extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
mul_scalar_assign(u64 *__restrict__ acc, const Prime *__restrict__ primes, LimbMap map,
                  LimbScalars scalars, u32 n) {
    u64 at;
    u32 g;
    if (limb_word(map, n, at, g)) {
        u32 k = blockIdx.y;
        acc[at] = mul_shoup(acc[at], scalars.value[k], scalars.shoup[k], primes[g].q);
    }
}

// acc = acc + c_k on every word of limb k
extern "C" __global__ void __launch_bounds__(HEFORMER_BLOCK)
add_scalar_assign(u64 *__restrict__ acc, const Prime *__restrict__ primes, LimbMap map,
                  LimbScalars scalars, u32 n) {
    u64 at;
    u32 g;
    if (limb_word(map, n, at, g)) {
        acc[at] = add_mod(acc[at], scalars.value[blockIdx.y], primes[g].q);
    }
}
