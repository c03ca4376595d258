//! AVX-512 IFMA kernels of the CPU backend, for primes below 2^50.
//!
//! A second implementation of the hot loops of [`super::CpuBackend`]
//! (element-wise products, products by constants, base-conversion and
//! key-switching dot products), eight lanes at a time with the 52-bit
//! multiply-add instructions. Every kernel returns exactly the words of the
//! scalar code (tested below, and through every backend test on machines with
//! IFMA); tails shorter than eight words run the scalar code.
//!
//! Arithmetic (all operands below q < 2^50, so products fit 100 bits):
//! - `a·b mod q`: Barrett's reduction (Handbook of Applied Cryptography 14.42)
//!   with b = bits(q): `q1 = ⌊p/2^(b-1)⌋`, `q3 = ⌊q1·μ/2^(b+1)⌋` with
//!   `μ = ⌊2^(2b)/q⌋`, computed as the high half of `q1·μ·2^(51-b)`;
//!   `p − q3·q < 3q`, then two conditional subtractions.
//! - `a·w mod q` for a constant w: Shoup's method with `w' = ⌊w·2^52/q⌋`.
//! - dot products `Σ x_i·y_i` (at most [`MAX_TERMS`] terms): low and high
//!   52-bit halves accumulated separately, then `hi·(2^52 mod q) + lo`
//!   reduced by two Shoup steps.
//!
//! Conditional subtraction is `min(r, r − q)` (unsigned), valid for r < 2q.

use std::arch::x86_64::__m256i;

use pulp::cast;

pub(super) use crate::math::ifma::{detect, fits, Ifma, MAX_TERMS};
use crate::math::ifma::{load, store, V};
use crate::math::Modulus;

/// Barrett constants of one modulus, splat across lanes.
#[derive(Clone, Copy)]
struct Barrett {
    q: V,
    mu: V,
    shift_hi: V,
    shift_lo: V,
}

impl Barrett {
    fn new(simd: Ifma, m: &Modulus) -> Self {
        let bits = m.bits();
        let mu = ((1u128 << (2 * bits)) / m.value() as u128) as u64;
        Self {
            q: simd.splat(m.value()),
            mu: simd.splat(mu << (51 - bits)),
            shift_hi: simd.splat((53 - bits) as u64),
            shift_lo: simd.splat((bits - 1) as u64),
        }
    }

    /// `(hi·2^52 + lo) mod q` for a value below q², `lo < 2^52`.
    #[inline(always)]
    fn reduce(self, simd: Ifma, lo: V, hi: V) -> V {
        let f = simd.avx512f;
        let q1 = f._mm512_or_si512(
            f._mm512_sllv_epi64(hi, self.shift_hi),
            f._mm512_srlv_epi64(lo, self.shift_lo),
        );
        let zero = simd.splat(0);
        let q3 = simd.mul_hi(zero, q1, self.mu);
        let r = simd.and52(simd.sub(lo, simd.mul_lo(zero, q3, self.q)));
        simd.csub(simd.csub(r, self.q), self.q)
    }
}

/// The constants that reduce a split dot product `hi·2^52 + lo` modulo q:
/// `hi·(2^52 mod q) + lo·1`, both Shoup products lazy.
#[derive(Clone, Copy)]
struct Fold {
    two_q: V,
    r52: ShoupConst,
    one: ShoupConst,
}

impl Fold {
    fn new(simd: Ifma, m: &Modulus) -> Self {
        let r52 = ((1u128 << 52) % m.value() as u128) as u64;
        Self {
            two_q: simd.splat(2 * m.value()),
            r52: ShoupConst::new(simd, m, r52),
            one: ShoupConst::new(simd, m, 1),
        }
    }

    /// `(hi·2^52 + lo) mod q` for accumulators of at most [`MAX_TERMS`] products.
    #[inline(always)]
    fn reduce(self, simd: Ifma, lo: V, hi: V) -> V {
        let carry = simd.avx512f._mm512_srli_epi64::<52>(lo);
        let hi = simd.add(hi, carry);
        let lo = simd.and52(lo);
        // Both Shoup products are lazy (< 2q); the sum is < 4q.
        let r = simd.add(self.r52.mul_lazy(simd, hi), self.one.mul_lazy(simd, lo));
        simd.csub(simd.csub(r, self.two_q), self.r52.q)
    }
}

/// `acc[i] = acc[i]·b[i] mod q`.
pub(super) fn mul_assign(simd: Ifma, m: &Modulus, acc: &mut [u64], b: &[u64]) {
    simd.vectorize(
        #[inline(always)]
        || {
            let consts = Barrett::new(simd, m);
            let zero = simd.splat(0);
            let mut acc_chunks = acc.chunks_exact_mut(8);
            let mut b_chunks = b.chunks_exact(8);
            for (x, y) in acc_chunks.by_ref().zip(b_chunks.by_ref()) {
                let (a, b) = (load(x), load(y));
                let r = consts.reduce(simd, simd.mul_lo(zero, a, b), simd.mul_hi(zero, a, b));
                store(r, x);
            }
            for (x, &y) in acc_chunks
                .into_remainder()
                .iter_mut()
                .zip(b_chunks.remainder())
            {
                *x = m.mul(*x, y);
            }
        },
    )
}

/// One limb of a tensor product: `d0 = a0·b0`, `d1 = a0·b1 + a1·b0`,
/// `d2 = a1·b1` (mod q), each input word read once.
pub(super) fn tensor(simd: Ifma, m: &Modulus, a: [&[u64]; 2], b: [&[u64]; 2], d: [&mut [u64]; 3]) {
    simd.vectorize(
        #[inline(always)]
        || {
            let barrett = Barrett::new(simd, m);
            let fold = Fold::new(simd, m);
            let zero = simd.splat(0);
            let [d0, d1, d2] = d;
            let full = d0.len() / 8 * 8;
            for at in (0..full).step_by(8) {
                let w = at..at + 8;
                let (a0, a1) = (load(&a[0][w.clone()]), load(&a[1][w.clone()]));
                let (b0, b1) = (load(&b[0][w.clone()]), load(&b[1][w.clone()]));
                store(
                    barrett.reduce(simd, simd.mul_lo(zero, a0, b0), simd.mul_hi(zero, a0, b0)),
                    &mut d0[w.clone()],
                );
                store(
                    barrett.reduce(simd, simd.mul_lo(zero, a1, b1), simd.mul_hi(zero, a1, b1)),
                    &mut d2[w.clone()],
                );
                let lo = simd.mul_lo(simd.mul_lo(zero, a0, b1), a1, b0);
                let hi = simd.mul_hi(simd.mul_hi(zero, a0, b1), a1, b0);
                store(fold.reduce(simd, lo, hi), &mut d1[w]);
            }
            for c in full..d0.len() {
                d0[c] = m.mul(a[0][c], b[0][c]);
                d1[c] = m.reduce_u128(
                    a[0][c] as u128 * b[1][c] as u128 + a[1][c] as u128 * b[0][c] as u128,
                );
                d2[c] = m.mul(a[1][c], b[1][c]);
            }
        },
    )
}

/// `acc[i] = acc[i] + a[i]·b[i] mod q`.
pub(super) fn mul_add_assign(simd: Ifma, m: &Modulus, acc: &mut [u64], a: &[u64], b: &[u64]) {
    simd.vectorize(
        #[inline(always)]
        || {
            let consts = Barrett::new(simd, m);
            let zero = simd.splat(0);
            let mut acc_chunks = acc.chunks_exact_mut(8);
            let mut a_chunks = a.chunks_exact(8);
            let mut b_chunks = b.chunks_exact(8);
            for ((z, x), y) in acc_chunks
                .by_ref()
                .zip(a_chunks.by_ref())
                .zip(b_chunks.by_ref())
            {
                let (x, y) = (load(x), load(y));
                // a·b + acc < q², split as hi·2^52 + lo.
                let lo = simd.mul_lo(load(z), x, y);
                let hi = simd.add(
                    simd.mul_hi(zero, x, y),
                    simd.avx512f._mm512_srli_epi64::<52>(lo),
                );
                store(consts.reduce(simd, simd.and52(lo), hi), z);
            }
            for ((z, &x), &y) in acc_chunks
                .into_remainder()
                .iter_mut()
                .zip(a_chunks.remainder())
                .zip(b_chunks.remainder())
            {
                *z = m.reduce_u128(x as u128 * y as u128 + *z as u128);
            }
        },
    )
}

/// Shoup multiplication by one constant `w < q`, splat across lanes.
#[derive(Clone, Copy)]
struct ShoupConst {
    q: V,
    w: V,
    w_shoup: V,
}

impl ShoupConst {
    fn new(simd: Ifma, m: &Modulus, w: u64) -> Self {
        Self {
            q: simd.splat(m.value()),
            w: simd.splat(w),
            w_shoup: simd.splat((((w as u128) << 52) / m.value() as u128) as u64),
        }
    }

    /// `a·w mod q` for lanes `a < 2^52`.
    #[inline(always)]
    fn mul(self, simd: Ifma, a: V) -> V {
        simd.mul_shoup(a, self.w, self.w_shoup, self.q)
    }

    /// `a·w mod q` in `[0, 2q)` for lanes `a < 2^52`.
    #[inline(always)]
    fn mul_lazy(self, simd: Ifma, a: V) -> V {
        simd.mul_shoup_lazy(a, self.w, self.w_shoup, self.q)
    }
}

/// `out[i] = vector(src[i..i+8], out[i..i+8])` eight words at a time, and
/// `scalar(src[i], out[i])` on the tail.
#[inline(always)]
fn update_pairs(
    src: &[u64],
    out: &mut [u64],
    vector: impl Fn(V, V) -> V,
    scalar: impl Fn(u64, u64) -> u64,
) {
    let mut out_chunks = out.chunks_exact_mut(8);
    let mut src_chunks = src.chunks_exact(8);
    for (o, x) in out_chunks.by_ref().zip(src_chunks.by_ref()) {
        let r = vector(load(x), load(o));
        store(r, o);
    }
    for (o, &x) in out_chunks
        .into_remainder()
        .iter_mut()
        .zip(src_chunks.remainder())
    {
        *o = scalar(x, *o);
    }
}

/// `out[i] = src[i]·w mod q` for reduced `src`, a constant `w < q`.
pub(super) fn mul_const(simd: Ifma, m: &Modulus, src: &[u64], w: u64, out: &mut [u64]) {
    simd.vectorize(
        #[inline(always)]
        || {
            let c = ShoupConst::new(simd, m, w);
            update_pairs(src, out, |x, _| c.mul(simd, x), |x, _| m.mul(x, w));
        },
    )
}

/// `acc[i] = acc[i] + b[i] mod q` for reduced words (any q < 2^63: AVX-512F
/// only).
pub(super) fn add_assign(simd: Ifma, m: &Modulus, acc: &mut [u64], b: &[u64]) {
    simd.vectorize(
        #[inline(always)]
        || {
            let q = simd.splat(m.value());
            update_pairs(
                b,
                acc,
                |y, x| simd.csub(simd.add(x, y), q),
                |y, x| m.add(x, y),
            );
        },
    )
}

/// `acc[i] = acc[i] − b[i] mod q` for reduced words (any q < 2^63).
pub(super) fn sub_assign(simd: Ifma, m: &Modulus, acc: &mut [u64], b: &[u64]) {
    simd.vectorize(
        #[inline(always)]
        || {
            let q = simd.splat(m.value());
            update_pairs(b, acc, |y, x| simd.sub_mod(x, y, q), |y, x| m.sub(x, y));
        },
    )
}

/// `data[i] = data[i]·w mod q` for words below 2^52 (not necessarily
/// reduced) and a constant `w < q`; results fully reduced.
pub(super) fn mul_const_in_place(simd: Ifma, m: &Modulus, data: &mut [u64], w: u64) {
    simd.vectorize(
        #[inline(always)]
        || {
            let c = ShoupConst::new(simd, m, w);
            let mut chunks = data.chunks_exact_mut(8);
            for x in chunks.by_ref() {
                store(c.mul(simd, load(x)), x);
            }
            for x in chunks.into_remainder() {
                *x = m.mul(*x, w);
            }
        },
    )
}

/// `acc[i] = acc[i] + src[i]·w mod q` for reduced inputs and a constant `w < q`.
pub(super) fn mul_const_add(simd: Ifma, m: &Modulus, src: &[u64], w: u64, acc: &mut [u64]) {
    simd.vectorize(
        #[inline(always)]
        || {
            let c = ShoupConst::new(simd, m, w);
            update_pairs(
                src,
                acc,
                |x, z| simd.csub(simd.add(z, c.mul(simd, x)), c.q),
                |x, z| m.add(z, m.mul(x, w)),
            );
        },
    )
}

/// `out[i] = (x[i] − out[i])·w mod q` (the last step of ModDown and rescale).
pub(super) fn sub_from_then_mul_const(simd: Ifma, m: &Modulus, x: &[u64], w: u64, out: &mut [u64]) {
    simd.vectorize(
        #[inline(always)]
        || {
            let c = ShoupConst::new(simd, m, w);
            update_pairs(
                x,
                out,
                |x, o| c.mul(simd, simd.sub_mod(x, o, c.q)),
                |x, o| m.mul(m.sub(x, o), w),
            );
        },
    )
}

/// One input row of [`dot_const`]: its words and constant. A row whose
/// words may reach 2^61 (its prime is not below 2^50) is *wide*: it is split
/// as `x = x_hi·2^30 + x_lo` and counts as two terms, with `wide_const =
/// const·2^30 mod q` for the high half.
#[derive(Clone, Copy)]
pub(super) struct ConstRow<'a> {
    pub words: &'a [u64],
    pub constant: u64,
    pub wide_const: Option<u64>,
}

impl ConstRow<'_> {
    /// Terms of the dot product this row costs.
    pub fn terms(&self) -> usize {
        1 + usize::from(self.wide_const.is_some())
    }
}

/// `out[c] = Σ_s rows[s].words[c]·rows[s].constant mod q`, for at most
/// [`MAX_TERMS`] terms in all; every constant is below q < 2^50.
pub(super) fn dot_const(simd: Ifma, m: &Modulus, rows: &[ConstRow<'_>], out: &mut [u64]) {
    simd.vectorize(
        #[inline(always)]
        || {
            let fold = Fold::new(simd, m);
            let consts: Vec<(V, Option<V>)> = rows
                .iter()
                .map(|r| (simd.splat(r.constant), r.wide_const.map(|c| simd.splat(c))))
                .collect();
            let wide_blocks = out.len() / (8 * UNROLL) * (8 * UNROLL);
            for (block, o) in out[..wide_blocks].chunks_exact_mut(8 * UNROLL).enumerate() {
                let (lo, hi) = dot_const_vectors::<UNROLL>(simd, rows, &consts, block * 8 * UNROLL);
                for (k, o) in o.chunks_exact_mut(8).enumerate() {
                    store(fold.reduce(simd, lo[k], hi[k]), o);
                }
            }
            let full = out.len() / 8 * 8;
            for at in (wide_blocks..full).step_by(8) {
                let (lo, hi) = dot_const_vectors::<1>(simd, rows, &consts, at);
                store(fold.reduce(simd, lo[0], hi[0]), &mut out[at..at + 8]);
            }
            for (c, o) in out.iter_mut().enumerate().skip(full) {
                let acc: u128 = rows
                    .iter()
                    .map(|r| r.words[c] as u128 * r.constant as u128)
                    .sum();
                *o = m.reduce_u128(acc);
            }
        },
    )
}

/// [`dot_const`] for a target modulus of 50 to 61 bits (sources below 2^50,
/// no wide rows): every constant is split as `c = c_hi·2^30 + c_lo`, the two
/// dot products are accumulated in split 52-bit halves by the vector units,
/// and each coefficient is recombined (`< 2^116`) and reduced in scalar code.
pub(super) fn dot_const_wide_target(
    simd: Ifma,
    m: &Modulus,
    rows: &[ConstRow<'_>],
    out: &mut [u64],
) {
    simd.vectorize(
        #[inline(always)]
        || {
            let zero = simd.splat(0);
            let consts: Vec<(V, V)> = rows
                .iter()
                .map(|r| {
                    (
                        simd.splat(r.constant & ((1 << 30) - 1)),
                        simd.splat(r.constant >> 30),
                    )
                })
                .collect();
            let full = out.len() / 8 * 8;
            for at in (0..full).step_by(8) {
                let (mut lo0, mut hi0, mut lo1, mut hi1) = (zero, zero, zero, zero);
                for (row, &(c_lo, c_hi)) in rows.iter().zip(&consts) {
                    let y = load(&row.words[at..at + 8]);
                    lo0 = simd.mul_lo(lo0, y, c_lo);
                    hi0 = simd.mul_hi(hi0, y, c_lo);
                    lo1 = simd.mul_lo(lo1, y, c_hi);
                    hi1 = simd.mul_hi(hi1, y, c_hi);
                }
                let [lo0, hi0, lo1, hi1]: [[u64; 8]; 4] = [lo0, hi0, lo1, hi1].map(cast);
                for (lane, o) in out[at..at + 8].iter_mut().enumerate() {
                    let low = lo0[lane] as u128 + ((hi0[lane] as u128) << 52);
                    let high = lo1[lane] as u128 + ((hi1[lane] as u128) << 52);
                    *o = m.reduce_u128(low + (high << 30));
                }
            }
            for (c, o) in out.iter_mut().enumerate().skip(full) {
                let acc: u128 = rows
                    .iter()
                    .map(|r| r.words[c] as u128 * r.constant as u128)
                    .sum();
                *o = m.reduce_u128(acc);
            }
        },
    )
}

/// Independent vectors per step of the dot products: separate accumulator
/// chains hide the latency of the multiply-adds.
const UNROLL: usize = 4;

/// The split accumulators `(lo, hi)` of `W` consecutive vectors of
/// [`dot_const`], starting at word `at`.
#[inline(always)]
fn dot_const_vectors<const W: usize>(
    simd: Ifma,
    rows: &[ConstRow<'_>],
    consts: &[(V, Option<V>)],
    at: usize,
) -> ([V; W], [V; W]) {
    let zero = simd.splat(0);
    let low30 = simd.splat((1 << 30) - 1);
    let (mut lo, mut hi) = ([zero; W], [zero; W]);
    for (row, &(c, wide)) in rows.iter().zip(consts) {
        for k in 0..W {
            let x = load(&row.words[at + 8 * k..at + 8 * k + 8]);
            let x = match wide {
                Some(c_hi) => {
                    let x_hi = simd.avx512f._mm512_srli_epi64::<30>(x);
                    lo[k] = simd.mul_lo(lo[k], x_hi, c_hi);
                    hi[k] = simd.mul_hi(hi[k], x_hi, c_hi);
                    simd.avx512f._mm512_and_si512(x, low30)
                }
                None => x,
            };
            lo[k] = simd.mul_lo(lo[k], x, c);
            hi[k] = simd.mul_hi(hi[k], x, c);
        }
    }
    (lo, hi)
}

/// `out0[c] = Σ_j x_j[c]·y_j[c]`, `out1[c] = Σ_j x_j[c]·z_j[c]` (mod q) for
/// at most [`MAX_TERMS`] triples `(x_j, y_j, z_j)`: the key-switching inner
/// product, reading each digit word once for both outputs.
pub(super) fn dot2(
    simd: Ifma,
    m: &Modulus,
    terms: &[(&[u64], &[u64], &[u64])],
    out0: &mut [u64],
    out1: &mut [u64],
) {
    simd.vectorize(
        #[inline(always)]
        || {
            let fold = Fold::new(simd, m);
            let zero = simd.splat(0);
            let full = out0.len() / 8 * 8;
            for at in (0..full).step_by(8) {
                let (mut lo0, mut hi0, mut lo1, mut hi1) = (zero, zero, zero, zero);
                for (x, y, z) in terms {
                    let x = load(&x[at..at + 8]);
                    let (y, z) = (load(&y[at..at + 8]), load(&z[at..at + 8]));
                    lo0 = simd.mul_lo(lo0, x, y);
                    hi0 = simd.mul_hi(hi0, x, y);
                    lo1 = simd.mul_lo(lo1, x, z);
                    hi1 = simd.mul_hi(hi1, x, z);
                }
                store(fold.reduce(simd, lo0, hi0), &mut out0[at..at + 8]);
                store(fold.reduce(simd, lo1, hi1), &mut out1[at..at + 8]);
            }
            for c in full..out0.len() {
                let (a0, a1) = terms.iter().fold((0u128, 0u128), |(a0, a1), (x, y, z)| {
                    (
                        a0 + x[c] as u128 * y[c] as u128,
                        a1 + x[c] as u128 * z[c] as u128,
                    )
                });
                out0[c] = m.reduce_u128(a0);
                out1[c] = m.reduce_u128(a1);
            }
        },
    )
}

/// `out[i] = src[perm[i]]` for a permutation that maps every aligned block
/// of 8 outputs into one aligned block of 8 inputs (true of every
/// automorphism in the NTT order: the block of an index fixes the low bits of
/// its exponent). Blocks where it does not hold are copied word by word.
pub(super) fn permute(simd: Ifma, src: &[u64], perm: &[u32], out: &mut [u64]) {
    simd.vectorize(
        #[inline(always)]
        || {
            let f = simd.avx512f;
            let eight = simd.splat(8);
            let full = out.len() / 8 * 8;
            for (block, o) in out[..full].chunks_exact_mut(8).enumerate() {
                let p = &perm[block * 8..block * 8 + 8];
                let base = (p[0] & !7) as usize;
                let mut lanes = [0u32; 8];
                lanes.copy_from_slice(p);
                let wide = f._mm512_cvtepu32_epi64(cast::<[u32; 8], __m256i>(lanes));
                let within = simd.sub(wide, simd.splat(base as u64));
                if base + 8 <= src.len() && f._mm512_cmpge_epu64_mask(within, eight) == 0 {
                    store(
                        f._mm512_permutexvar_epi64(within, load(&src[base..base + 8])),
                        o,
                    );
                } else {
                    for (x, &j) in o.iter_mut().zip(p) {
                        *x = src[j as usize];
                    }
                }
            }
            for (x, &j) in out[full..].iter_mut().zip(&perm[full..]) {
                *x = src[j as usize];
            }
        },
    )
}

/// The overflow `v = (Σ_k ((y_k·F_k) >> 64) + 2^63) >> 64` of the centered
/// base conversion (`F_k = ⌊2^128/p_k⌋`, rows `y_k < 2^50`), exactly as the
/// scalar formula, at most [`MAX_TERMS`] rows.
///
/// With `F = F2·2^104 + F1·2^52 + F0` (52-bit limbs) and `y·F < 2^128`:
/// `y·F2 < 2^24`, and with `A = hi(y·F0) + lo(y·F1)`, `B = hi(y·F1) + y·F2`,
/// `(y·F) >> 64 = B·2^40 + (A >> 12)` exactly (the dropped `lo(y·F0)/2^64`
/// is below the `2^-12` granularity of `A/2^12`). Summed over k:
/// `v = (ΣB + ((ΣA' + 2^63) >> 40)) >> 24` with `A' = A >> 12`.
pub(super) fn centered_overflows(simd: Ifma, rows: &[&[u64]], fractions: &[u128], out: &mut [u64]) {
    simd.vectorize(
        #[inline(always)]
        || {
            let f = simd.avx512f;
            let zero = simd.splat(0);
            let limbs: Vec<[V; 3]> = fractions
                .iter()
                .map(|&fr| {
                    let mask = (1u128 << 52) - 1;
                    [
                        simd.splat((fr & mask) as u64),
                        simd.splat(((fr >> 52) & mask) as u64),
                        simd.splat((fr >> 104) as u64),
                    ]
                })
                .collect();
            let half = simd.splat(1 << 63);
            let full = out.len() / 8 * 8;
            for at in (0..full).step_by(8) {
                let (mut sum_a, mut sum_b) = (zero, zero);
                for (row, [f0, f1, f2]) in rows.iter().zip(&limbs) {
                    let y = load(&row[at..at + 8]);
                    let a = simd.mul_lo(simd.mul_hi(zero, y, *f0), y, *f1);
                    let b = simd.mul_lo(simd.mul_hi(zero, y, *f1), y, *f2);
                    sum_a = simd.add(sum_a, f._mm512_srli_epi64::<12>(a));
                    sum_b = simd.add(sum_b, b);
                }
                let carried = f._mm512_srli_epi64::<40>(simd.add(sum_a, half));
                store(
                    f._mm512_srli_epi64::<24>(simd.add(sum_b, carried)),
                    &mut out[at..at + 8],
                );
            }
            for (c, o) in out.iter_mut().enumerate().skip(full) {
                let sum: u128 = rows
                    .iter()
                    .zip(fractions)
                    .map(|(r, &fr)| (r[c] as u128 * fr) >> 64)
                    .sum();
                *o = ((sum + (1u128 << 63)) >> 64) as u64;
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::generate_ntt_primes;
    use rand::{Rng, SeedableRng};

    /// A modulus and three input vectors reduced by it.
    type Case = (Modulus, Vec<u64>, Vec<u64>, Vec<u64>);

    /// Moduli of 20 to 50 bits and inputs with edge values; 83 words cover
    /// the unrolled blocks (64), single vectors (16) and the scalar tail (3).
    fn cases() -> Vec<Case> {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        [20u32, 31, 40, 45, 49, 50]
            .iter()
            .map(|&bits| {
                let q = generate_ntt_primes(bits, 4, 1, &[]).unwrap()[0];
                let m = Modulus::new(q).unwrap();
                let mut gen = |edge: &[u64]| -> Vec<u64> {
                    let mut v: Vec<u64> = (0..83).map(|_| rng.random_range(0..q)).collect();
                    v[..edge.len()].copy_from_slice(edge);
                    v
                };
                let a = gen(&[0, 1, q - 1, q - 1, q / 2, q - 2, 0, q - 1, 1]);
                let b = gen(&[q - 1, q - 1, q - 1, 0, q / 2 + 1, q - 1, 5, 1, q - 1]);
                let c = gen(&[q - 1, 0, q - 1, q - 1, 1, q - 1, q - 1, q - 1, q - 1]);
                (m, a, b, c)
            })
            .collect()
    }

    fn simd_or_skip() -> Option<Ifma> {
        let simd = detect();
        if simd.is_none() {
            eprintln!("SKIPPED: this CPU has no AVX-512 IFMA (or HEFORMER_NO_SIMD is set): the IFMA kernels are not exercised");
        }
        simd
    }

    #[test]
    fn elementwise_kernels_match_scalar() {
        let Some(simd) = simd_or_skip() else { return };
        for (m, a, b, c) in cases() {
            assert!(fits(&m));
            let mut got = a.clone();
            mul_assign(simd, &m, &mut got, &b);
            let want: Vec<u64> = a.iter().zip(&b).map(|(&x, &y)| m.mul(x, y)).collect();
            assert_eq!(got, want, "mul q={}", m.value());

            let (mut t0, mut t1, mut t2) = (vec![0; a.len()], vec![0; a.len()], vec![0; a.len()]);
            tensor(simd, &m, [&a, &b], [&c, &a], [&mut t0, &mut t1, &mut t2]);
            for i in 0..a.len() {
                assert_eq!(t0[i], m.mul(a[i], c[i]), "tensor d0 q={}", m.value());
                assert_eq!(
                    t1[i],
                    m.add(m.mul(a[i], a[i]), m.mul(b[i], c[i])),
                    "tensor d1 q={}",
                    m.value()
                );
                assert_eq!(t2[i], m.mul(b[i], a[i]), "tensor d2 q={}", m.value());
            }

            let mut got = c.clone();
            mul_add_assign(simd, &m, &mut got, &a, &b);
            let want: Vec<u64> = (0..a.len())
                .map(|i| m.add(c[i], m.mul(a[i], b[i])))
                .collect();
            assert_eq!(got, want, "mul_add q={}", m.value());

            for w in [0, 1, m.value() - 1, b[20]] {
                let mut got = vec![0; a.len()];
                mul_const(simd, &m, &a, w, &mut got);
                let want: Vec<u64> = a.iter().map(|&x| m.mul(x, w)).collect();
                assert_eq!(got, want, "mul_const q={} w={w}", m.value());

                let mut got = c.clone();
                mul_const_add(simd, &m, &a, w, &mut got);
                let want: Vec<u64> = (0..a.len()).map(|i| m.add(c[i], m.mul(a[i], w))).collect();
                assert_eq!(got, want, "mul_const_add q={} w={w}", m.value());

                let mut got = b.clone();
                sub_from_then_mul_const(simd, &m, &a, w, &mut got);
                let want: Vec<u64> = (0..a.len()).map(|i| m.mul(m.sub(a[i], b[i]), w)).collect();
                assert_eq!(got, want, "sub_then_mul q={} w={w}", m.value());
            }
        }
    }

    /// Modular add and sub (any prime below 2^63, so 60/61-bit ones too), and
    /// the in-place product by a constant on words up to 4q (the deferred
    /// inverse NTT's range).
    #[test]
    fn add_sub_and_unreduced_constant_products_match_scalar() {
        let Some(simd) = simd_or_skip() else { return };
        let mut wide = cases();
        for bits in [55, 60, 61] {
            let q = generate_ntt_primes(bits, 4, 1, &[]).unwrap()[0];
            let m = Modulus::new(q).unwrap();
            let edge = |k: u64| {
                (0..83)
                    .map(|i| [0, 1, q - 1, q / 2][(i + k) as usize % 4])
                    .collect()
            };
            wide.push((m, edge(0), edge(1), edge(2)));
        }
        for (m, a, b, _) in wide {
            let mut got = a.clone();
            add_assign(simd, &m, &mut got, &b);
            let want: Vec<u64> = a.iter().zip(&b).map(|(&x, &y)| m.add(x, y)).collect();
            assert_eq!(got, want, "add q={}", m.value());
            let mut got = a.clone();
            sub_assign(simd, &m, &mut got, &b);
            let want: Vec<u64> = a.iter().zip(&b).map(|(&x, &y)| m.sub(x, y)).collect();
            assert_eq!(got, want, "sub q={}", m.value());
            if !fits(&m) {
                continue;
            }
            let q = m.value();
            let unreduced: Vec<u64> = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| x + [0, q, 2 * q, 3 * q][(y % 4) as usize])
                .collect();
            for w in [0, 1, q - 1, b[20]] {
                let mut got = unreduced.clone();
                mul_const_in_place(simd, &m, &mut got, w);
                let want: Vec<u64> = unreduced.iter().map(|&x| m.mul(x, w)).collect();
                assert_eq!(got, want, "mul_const_in_place q={q} w={w}");
            }
        }
    }

    #[test]
    fn dot_products_into_wide_targets_match_scalar() {
        let Some(simd) = simd_or_skip() else { return };
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(13);
        for bits in [50u32, 55, 60, 61] {
            let t = Modulus::new(generate_ntt_primes(bits, 4, 1, &[]).unwrap()[0]).unwrap();
            let p = generate_ntt_primes(50, 4, 1, &[t.value()]).unwrap()[0];
            for terms in [1usize, 9, MAX_TERMS] {
                let rows: Vec<Vec<u64>> = (0..terms)
                    .map(|_| {
                        let mut v: Vec<u64> = (0..83).map(|_| rng.random_range(0..p)).collect();
                        v[0] = p - 1;
                        v
                    })
                    .collect();
                let consts: Vec<u64> = (0..terms)
                    .map(|i| {
                        if i == 0 {
                            t.value() - 1
                        } else {
                            rng.random_range(0..t.value())
                        }
                    })
                    .collect();
                let const_rows: Vec<ConstRow> = rows
                    .iter()
                    .zip(&consts)
                    .map(|(words, &constant)| ConstRow {
                        words,
                        constant,
                        wide_const: None,
                    })
                    .collect();
                let mut got = vec![0; 83];
                dot_const_wide_target(simd, &t, &const_rows, &mut got);
                for c in 0..83 {
                    let want = t.reduce_u128(
                        rows.iter()
                            .zip(&consts)
                            .map(|(r, &k)| r[c] as u128 * k as u128)
                            .sum(),
                    );
                    assert_eq!(
                        got[c], want,
                        "t of {bits} bits, {terms} terms, coefficient {c}"
                    );
                }
            }
        }
    }

    #[test]
    fn overflow_estimate_matches_the_scalar_formula() {
        let Some(simd) = simd_or_skip() else { return };
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(12);
        for count in [1usize, 3, 9, MAX_TERMS] {
            let primes: Vec<u64> = (0..count)
                .map(|i| {
                    generate_ntt_primes([20u32, 35, 49, 50][i % 4], 4, 1 + i / 4, &[]).unwrap()
                        [i / 4]
                })
                .collect();
            let fractions: Vec<u128> = primes.iter().map(|&p| u128::MAX / p as u128).collect();
            let rows: Vec<Vec<u64>> = primes
                .iter()
                .map(|&p| {
                    let mut v: Vec<u64> = (0..83).map(|_| rng.random_range(0..p)).collect();
                    v[..4].copy_from_slice(&[0, p - 1, p / 2, p / 2 + 1]);
                    v
                })
                .collect();
            let row_refs: Vec<&[u64]> = rows.iter().map(|r| r.as_slice()).collect();
            let mut got = vec![0; 83];
            centered_overflows(simd, &row_refs, &fractions, &mut got);
            for c in 0..83 {
                let sum: u128 = rows
                    .iter()
                    .zip(&fractions)
                    .map(|(r, &f)| (r[c] as u128 * f) >> 64)
                    .sum();
                assert_eq!(
                    got[c],
                    ((sum + (1u128 << 63)) >> 64) as u64,
                    "count {count} coefficient {c}"
                );
            }
        }
    }

    #[test]
    fn block_permutation_matches_gather() {
        let Some(simd) = simd_or_skip() else { return };
        let src: Vec<u64> = (0..64u64).map(|i| i * 1000 + 7).collect();
        // Block-local: reverse inside each block of 8, blocks rotated by 3.
        let local: Vec<u32> = (0..64u32)
            .map(|i| ((i / 8 + 3) % 8) * 8 + (7 - i % 8))
            .collect();
        // Not block-local: a global reversal with a tail of 5 words.
        let global: Vec<u32> = (0..61u32).rev().collect();
        for perm in [&local, &global] {
            let mut got = vec![0; perm.len()];
            permute(simd, &src, perm, &mut got);
            let want: Vec<u64> = perm.iter().map(|&j| src[j as usize]).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn dot_products_match_scalar() {
        let Some(simd) = simd_or_skip() else { return };
        for (m, a, b, c) in cases() {
            for terms in [1usize, 2, 8, MAX_TERMS] {
                let rows: Vec<&[u64]> =
                    (0..terms).map(|i| [&a, &b, &c][i % 3].as_slice()).collect();
                let consts: Vec<u64> = (0..terms)
                    .map(|i| [m.value() - 1, b[30 + i], 1][i % 3])
                    .collect();
                let want: Vec<u64> = (0..a.len())
                    .map(|k| {
                        m.reduce_u128(
                            rows.iter()
                                .zip(&consts)
                                .map(|(r, &w)| r[k] as u128 * w as u128)
                                .sum(),
                        )
                    })
                    .collect();
                let const_rows: Vec<ConstRow> = rows
                    .iter()
                    .zip(&consts)
                    .map(|(&words, &constant)| ConstRow {
                        words,
                        constant,
                        wide_const: None,
                    })
                    .collect();
                let mut got = vec![0; a.len()];
                dot_const(simd, &m, &const_rows, &mut got);
                assert_eq!(got, want, "dot_const q={} terms={terms}", m.value());

                let triples: Vec<(&[u64], &[u64], &[u64])> = rows
                    .iter()
                    .map(|&r| (r, c.as_slice(), a.as_slice()))
                    .collect();
                let want = |other: &[u64]| -> Vec<u64> {
                    (0..a.len())
                        .map(|k| {
                            m.reduce_u128(
                                rows.iter().map(|r| r[k] as u128 * other[k] as u128).sum(),
                            )
                        })
                        .collect()
                };
                let (mut got0, mut got1) = (vec![0; a.len()], vec![0; a.len()]);
                dot2(simd, &m, &triples, &mut got0, &mut got1);
                assert_eq!(
                    got0,
                    want(&c),
                    "dot2 first output q={} terms={terms}",
                    m.value()
                );
                assert_eq!(
                    got1,
                    want(&a),
                    "dot2 second output q={} terms={terms}",
                    m.value()
                );
            }
            // A wide row (words up to 2^61 - 1) next to a small one.
            let wide: Vec<u64> = (0..a.len() as u64)
                .map(|i| {
                    if i % 3 == 0 {
                        (1 << 61) - 1 - i
                    } else {
                        i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 3
                    }
                })
                .collect();
            let small: Vec<u64> = (0..a.len() as u64).map(|i| i % 9).collect();
            let k = m.value() - 3;
            let wide_const = ((k as u128) << 30) % m.value() as u128;
            let want: Vec<u64> = (0..a.len())
                .map(|i| m.reduce_u128(wide[i] as u128 * k as u128 + small[i] as u128 * 7))
                .collect();
            let rows = [
                ConstRow {
                    words: &wide,
                    constant: k,
                    wide_const: Some(wide_const as u64),
                },
                ConstRow {
                    words: &small,
                    constant: 7,
                    wide_const: None,
                },
            ];
            let mut got = vec![0; a.len()];
            dot_const(simd, &m, &rows, &mut got);
            assert_eq!(got, want, "dot_const with a wide row q={}", m.value());
        }
    }
}
