// modarith.wgsl — modular arithmetic on words, written once against the
// word interface of the preludes (modarith_u64.wgsl / modarith_vec2.wgsl).
//
// No entry points, no bindings. Moduli are odd, below 2^62; inputs are
// fully reduced unless stated otherwise and every result is fully reduced,
// so the values equal those of `math::Modulus` on the CPU word for word.
//
//   Modulus { q, ratio_lo, ratio_hi }  with ratio = floor(2^128 / q)
//   mod_add, mod_sub, mod_neg          reduced inputs
//   mod_reduce_wide(x, m)              x mod q for any 128-bit x (Barrett)
//   mod_mul(a, b, m)                   a·b mod q for any words
//   mod_mul_shoup(a, w, w_shoup, q)    a·w mod q for any word a, constant
//                                      w < q with w_shoup = floor(w·2^64/q)

struct Modulus {
    q: W,
    ratio_lo: W,
    ratio_hi: W,
}

fn w_zero() -> W {
    return w_from(0u, 0u);
}

fn w_small(x: u32) -> W {
    return w_from(x, 0u);
}

fn w_mul_hi(a: W, b: W) -> W {
    return w_mul_wide(a, b).hi;
}

fn wide_from(x: W) -> Wide {
    return Wide(x, w_zero());
}

fn wide_add(a: Wide, b: Wide) -> Wide {
    let lo = w_add(a.lo, b.lo);
    let carry = select(0u, 1u, w_lt(lo, a.lo));
    return Wide(lo, w_add(w_add(a.hi, b.hi), w_small(carry)));
}

// a - q when a >= q; for a < 2q the result is below q.
fn reduce_once(a: W, q: W) -> W {
    return select(a, w_sub(a, q), !w_lt(a, q));
}

fn mod_add(a: W, b: W, q: W) -> W {
    return reduce_once(w_add(a, b), q);
}

fn mod_sub(a: W, b: W, q: W) -> W {
    let d = w_sub(a, b);
    return select(d, w_add(d, q), w_lt(a, b));
}

fn mod_neg(a: W, q: W) -> W {
    return select(w_sub(q, a), w_zero(), w_eq(a, w_zero()));
}

// Barrett reduction: the quotient estimate floor(x·ratio / 2^128), dropping
// only the low half of the lowest partial product, is at most 2 below the
// true quotient; only its low word is needed since the remainder is < 3q.
fn mod_reduce_wide(x: Wide, m: Modulus) -> W {
    let lo_lo = w_mul_hi(x.lo, m.ratio_lo);
    let lo_hi = w_mul_wide(x.lo, m.ratio_hi);
    let hi_lo = w_mul_wide(x.hi, m.ratio_lo);
    let middle = wide_add(wide_add(wide_from(lo_lo), wide_from(lo_hi.lo)), wide_from(hi_lo.lo));
    let quotient = w_add(
        w_add(w_mul_lo(x.hi, m.ratio_hi), w_add(lo_hi.hi, hi_lo.hi)),
        middle.hi,
    );
    let r = w_sub(x.lo, w_mul_lo(quotient, m.q));
    return reduce_once(reduce_once(r, m.q), m.q);
}

fn mod_mul(a: W, b: W, m: Modulus) -> W {
    return mod_reduce_wide(w_mul_wide(a, b), m);
}

fn mod_mul_shoup(a: W, w: W, w_shoup: W, q: W) -> W {
    let estimate = w_mul_hi(a, w_shoup);
    return reduce_once(w_sub(w_mul_lo(a, w), w_mul_lo(estimate, q)), q);
}
