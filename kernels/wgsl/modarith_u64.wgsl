// modarith_u64.wgsl — the word interface on native 64-bit integers
// (requires the SHADER_INT64 capability; no `enable` line is needed).
//
// No entry points, no bindings. Every module is
// `prelude + modarith.wgsl + dispatch.wgsl + kernel`, the prelude being this
// file or modarith_vec2.wgsl, which implement the same interface with the
// same byte layout (a word is 8 little-endian bytes):
//
//   alias W                      one 64-bit word
//   struct Wide { lo: W, hi: W } a 128-bit value
//   w_from(lo: u32, hi: u32) -> W, w_lo(a) -> u32, w_hi(a) -> u32
//   w_add(a, b), w_sub(a, b)     wrapping modulo 2^64
//   w_lt(a, b), w_eq(a, b)       unsigned comparisons
//   w_mul_lo(a, b) -> W          a·b mod 2^64
//   w_mul_wide(a, b) -> Wide     the full 128-bit product
//
// WGSL has no 64-bit multiply-high, so the high half is assembled from
// four 32×32-bit partial products.

alias W = u64;

struct Wide {
    lo: W,
    hi: W,
}

const LOW32: u64 = 0xfffffffflu;

fn w_from(lo: u32, hi: u32) -> W {
    return (u64(hi) << 32u) | u64(lo);
}

fn w_lo(a: W) -> u32 {
    return u32(a & LOW32);
}

fn w_hi(a: W) -> u32 {
    return u32(a >> 32u);
}

fn w_add(a: W, b: W) -> W {
    return a + b;
}

fn w_sub(a: W, b: W) -> W {
    return a - b;
}

fn w_lt(a: W, b: W) -> bool {
    return a < b;
}

fn w_eq(a: W, b: W) -> bool {
    return a == b;
}

fn w_mul_lo(a: W, b: W) -> W {
    return a * b;
}

fn w_mul_wide(a: W, b: W) -> Wide {
    let a0 = a & LOW32;
    let a1 = a >> 32u;
    let b0 = b & LOW32;
    let b1 = b >> 32u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    // Below 3·2^32: no overflow.
    let mid = (p00 >> 32u) + (p01 & LOW32) + (p10 & LOW32);
    let lo = (mid << 32u) | (p00 & LOW32);
    let hi = p11 + (p01 >> 32u) + (p10 >> 32u) + (mid >> 32u);
    return Wide(lo, hi);
}
