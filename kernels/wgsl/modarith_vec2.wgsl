// modarith_vec2.wgsl — the word interface emulated on `vec2<u32>`
// (x = low half, y = high half: the byte layout of a little-endian u64),
// for adapters without SHADER_INT64.
//
// No entry points, no bindings. Implements exactly the interface documented
// in modarith_u64.wgsl (W, Wide, w_from, w_lo, w_hi, w_add, w_sub, w_lt,
// w_eq, w_mul_lo, w_mul_wide). WGSL has no 32-bit multiply-high either, so
// 32×32 → 64-bit products are assembled from 16-bit halves.

alias W = vec2<u32>;

struct Wide {
    lo: W,
    hi: W,
}

fn w_from(lo: u32, hi: u32) -> W {
    return W(lo, hi);
}

fn w_lo(a: W) -> u32 {
    return a.x;
}

fn w_hi(a: W) -> u32 {
    return a.y;
}

fn w_add(a: W, b: W) -> W {
    let lo = a.x + b.x;
    return W(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn w_sub(a: W, b: W) -> W {
    return W(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}

fn w_lt(a: W, b: W) -> bool {
    return a.y < b.y || (a.y == b.y && a.x < b.x);
}

fn w_eq(a: W, b: W) -> bool {
    return all(a == b);
}

// The full 64-bit product of two 32-bit values.
fn mul32_wide(a: u32, b: u32) -> W {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    // Below 3·2^16: no overflow.
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    let lo = (mid << 16u) | (p00 & 0xffffu);
    let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return W(lo, hi);
}

fn w_mul_lo(a: W, b: W) -> W {
    let p = mul32_wide(a.x, b.x);
    return W(p.x, p.y + a.x * b.y + a.y * b.x);
}

fn w_mul_wide(a: W, b: W) -> Wide {
    let p00 = mul32_wide(a.x, b.x);
    let p01 = mul32_wide(a.x, b.y);
    let p10 = mul32_wide(a.y, b.x);
    let p11 = mul32_wide(a.y, b.y);
    // Bits 32..95 of the product: the sum of three 32-bit halves (x: the
    // word, y: its carry into bit 64).
    let mid = w_add(w_add(W(p00.y, 0u), W(p01.x, 0u)), W(p10.x, 0u));
    // p11 + two 32-bit values stays below 2^64.
    let hi = w_add(w_add(w_add(p11, W(p01.y, 0u)), W(p10.y, 0u)), W(mid.y, 0u));
    return Wide(W(p00.x, mid.x), hi);
}
