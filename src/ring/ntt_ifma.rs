//! The negacyclic NTT of [`super::ntt`] with AVX-512 IFMA, for primes below
//! 2^50: a second implementation of the same convention (same twiddles, same
//! networks), so it returns exactly the reference's words.
//!
//! # Layout of the computation
//!
//! Stage `s` of the forward network (`m = 2^s` blocks, half-size
//! `t = N/2^(s+1)`) pairs words `t` apart. The stages with `t >= 8` pair
//! whole vectors of eight words; they are grouped by three (radix 8: eight
//! vectors in registers, three stages, one load and one store per word), with
//! the one or two stages left over grouped first. The last three stages
//! (`t = 4, 2, 1`) pair words inside a vector; one tail pass runs them on
//! pairs of vectors with a perfect shuffle before each stage (see
//! `Net::forward_pairs`), four pairs interleaved. Groups whose blocks exceed
//! [`L1_BLOCK`] words run over the whole array; after that, each
//! `L1_BLOCK`-word chunk runs all its remaining groups and the tail while it
//! sits in the first-level cache. The inverse runs the mirror image.
//!
//! # Ranges (Harvey's lazy butterflies)
//!
//! Forward (Cooley–Tukey): words enter each stage below `4q`; `x` is brought
//! below `2q`, `w·y` is a lazy Shoup product in `[0, 2q)` (valid for
//! `y < 2^52`, which `4q < 2^52` ensures), and the outputs `x + wy`,
//! `x − wy + 2q` are below `4q`. The tail's last stage reduces fully.
//! Inverse (Gentleman–Sande): words stay below `2q`; `x + y` is brought
//! below `2q`, `(x − y + 2q)·w` is a lazy Shoup product below `2q`.
//!
//! Shoup companions are `⌊w·2^52/q⌋` (the multiply-add instructions read 52
//! bits), kept by the table beside its 64-bit ones ([`shoup52`]).
//!
//! Cost: about nine vector operations per butterfly (three multiply-adds),
//! near this instruction mix's throughput on Zen 4; at N = 2^16 and a 50-bit
//! prime it runs in about 0.87x tfhe-ntt's time forward and 0.82x inverse
//! (`cargo bench --bench ntt`).

use crate::math::ifma::{load, store, Ifma, V};
use crate::math::Modulus;

/// Chunks of this many words (32 KiB) run all their remaining stages in the
/// first-level cache.
const L1_BLOCK: usize = 4096;

/// Transforms shorter than this run the scalar code (the tail pass works on
/// sixteen words).
pub(crate) const MIN_N: usize = 16;

/// The 52-bit Shoup companions `⌊w·2^52/q⌋` of a twiddle table, for a
/// modulus below 2^50.
pub(crate) fn shoup52(modulus: &Modulus, twiddles: &[u64]) -> Vec<u64> {
    let q = modulus.value() as u128;
    twiddles
        .iter()
        .map(|&w| (((w as u128) << 52) / q) as u64)
        .collect()
}

/// Twiddle tables and the splat moduli of one transform.
#[derive(Clone, Copy)]
struct Net<'a> {
    simd: Ifma,
    n: usize,
    q: V,
    two_q: V,
    /// `2^52 − q`.
    minus_q: V,
    w: &'a [u64],
    w_shoup: &'a [u64],
}

impl Net<'_> {
    /// Twiddle `k` splat, with its companion.
    #[inline(always)]
    fn twiddle(&self, k: usize) -> (V, V) {
        (self.simd.splat(self.w[k]), self.simd.splat(self.w_shoup[k]))
    }

    /// Eight consecutive twiddles from `k`, with their companions.
    #[inline(always)]
    fn twiddles8(&self, k: usize) -> (V, V) {
        (load(&self.w[k..k + 8]), load(&self.w_shoup[k..k + 8]))
    }

    /// Forward butterfly: `(x, y) <- (x + wy, x − wy)` lazily (see module docs).
    #[inline(always)]
    fn ct(&self, x: V, y: V, (w, w_shoup): (V, V)) -> (V, V) {
        let s = self.simd;
        let u = s.csub(x, self.two_q);
        let v = self.product(y, w, w_shoup);
        (s.add(u, v), s.sub(s.add(u, self.two_q), v))
    }

    /// `y·w mod q` in `[0, 2q)` for `y < 2^52` (Shoup): the 52-bit
    /// difference `y·w − ⌊y·w'/2^52⌋·q`, its second term added as a product
    /// with `2^52 − q`.
    #[inline(always)]
    fn product(&self, y: V, w: V, w_shoup: V) -> V {
        let s = self.simd;
        let zero = s.splat(0);
        let estimate = s.mul_hi(zero, y, w_shoup);
        s.and52(s.mul_lo(s.mul_lo(zero, y, w), estimate, self.minus_q))
    }

    /// Inverse butterfly: `(x, y) <- (x + y, (x − y)·w)` lazily.
    #[inline(always)]
    fn gs(&self, x: V, y: V, (w, w_shoup): (V, V)) -> (V, V) {
        let s = self.simd;
        let d = s.sub(s.add(x, self.two_q), y);
        (s.csub(s.add(x, y), self.two_q), self.product(d, w, w_shoup))
    }

    /// The stage groups of the vector stages, forward order: `(first stage,
    /// stage count)`, the leftover group first.
    fn groups(&self) -> Vec<(u32, u32)> {
        let vector_stages = self.n.trailing_zeros() - 3;
        let lead = vector_stages % 3;
        let mut groups = Vec::new();
        if lead > 0 {
            groups.push((0, lead));
        }
        groups.extend((lead..vector_stages).step_by(3).map(|s| (s, 3)));
        groups
    }

    /// Runs one group of `R` vector stages on `data`, whole blocks of stage
    /// `first` whose first block has global index `block0`: forward stages
    /// `first .. first + R`, or inverse stages `first + R − 1` down to
    /// `first`.
    #[inline(always)]
    fn group<const FORWARD: bool, const R: u32>(
        &self,
        data: &mut [u64],
        first: u32,
        block0: usize,
    ) {
        let block_len = self.n >> first;
        let stride = block_len >> R;
        let regs = 1usize << R;
        for (b, block) in data.chunks_exact_mut(block_len).enumerate() {
            let i = (1usize << first) + block0 + b;
            let mut tw = [(self.q, self.q); 7];
            for r in 0..R {
                for g in 0..1usize << r {
                    tw[(1 << r) - 1 + g] = self.twiddle((i << r) + g);
                }
            }
            for j in (0..stride).step_by(8) {
                let mut x = [self.q; 8];
                for (k, v) in x.iter_mut().enumerate().take(regs) {
                    *v = load(&block[j + k * stride..j + k * stride + 8]);
                }
                for step in 0..R {
                    let r = if FORWARD { step } else { R - 1 - step };
                    let half = regs >> (r + 1);
                    for g in 0..1usize << r {
                        let w = tw[(1 << r) - 1 + g];
                        for k in g * 2 * half..g * 2 * half + half {
                            (x[k], x[k + half]) = if FORWARD {
                                self.ct(x[k], x[k + half], w)
                            } else {
                                self.gs(x[k], x[k + half], w)
                            };
                        }
                    }
                }
                for (k, v) in x.iter().enumerate().take(regs) {
                    store(*v, &mut block[j + k * stride..j + k * stride + 8]);
                }
            }
        }
    }

    /// Dispatches a group by direction and stage count.
    #[inline(always)]
    fn run_group(
        &self,
        forward: bool,
        data: &mut [u64],
        (first, count): (u32, u32),
        block0: usize,
    ) {
        match (forward, count) {
            (true, 1) => self.group::<true, 1>(data, first, block0),
            (true, 2) => self.group::<true, 2>(data, first, block0),
            (true, _) => self.group::<true, 3>(data, first, block0),
            (false, 1) => self.group::<false, 1>(data, first, block0),
            (false, 2) => self.group::<false, 2>(data, first, block0),
            (false, _) => self.group::<false, 3>(data, first, block0),
        }
    }

    /// The last three forward stages (`t = 4, 2, 1`) on `data`, whose first
    /// word has global index `offset`; the outputs fully reduced. Runs
    /// [`forward_pairs`](Self::forward_pairs) on four pairs of vectors at a
    /// time, so that four independent dependency chains interleave.
    #[inline(always)]
    fn forward_tail(&self, data: &mut [u64], offset: usize) {
        let len = data.len();
        let mut quads = data.chunks_exact_mut(64);
        for (h, quad) in quads.by_ref().enumerate() {
            self.on_pairs::<4>(quad, offset / 16 + 4 * h, |a, b, g| {
                self.forward_pairs(a, b, g)
            });
        }
        let rest = quads.into_remainder();
        let g0 = (offset + len - rest.len()) / 16;
        for (h, pair) in rest.chunks_exact_mut(16).enumerate() {
            self.on_pairs::<1>(pair, g0 + h, |a, b, g| self.forward_pairs(a, b, g));
        }
    }

    /// The first three inverse stages (`t = 1, 2, 4`) on `data`, mirror of
    /// [`forward_tail`](Self::forward_tail); outputs below `2q`.
    #[inline(always)]
    fn inverse_tail(&self, data: &mut [u64], offset: usize) {
        let len = data.len();
        let mut quads = data.chunks_exact_mut(64);
        for (h, quad) in quads.by_ref().enumerate() {
            self.on_pairs::<4>(quad, offset / 16 + 4 * h, |a, b, g| {
                self.inverse_pairs(a, b, g)
            });
        }
        let rest = quads.into_remainder();
        let g0 = (offset + len - rest.len()) / 16;
        for (h, pair) in rest.chunks_exact_mut(16).enumerate() {
            self.on_pairs::<1>(pair, g0 + h, |a, b, g| self.inverse_pairs(a, b, g));
        }
    }

    /// Loads `16·K` words as `K` pairs of vectors, applies `op` (with the
    /// global 16-word group index of the first pair) and stores the result.
    #[inline(always)]
    fn on_pairs<const K: usize>(
        &self,
        words: &mut [u64],
        g: usize,
        op: impl Fn([V; K], [V; K], usize) -> ([V; K], [V; K]),
    ) {
        let a: [V; K] = std::array::from_fn(|k| load(&words[16 * k..16 * k + 8]));
        let b: [V; K] = std::array::from_fn(|k| load(&words[16 * k + 8..16 * k + 16]));
        let (a, b) = op(a, b, g);
        for k in 0..K {
            store(a[k], &mut words[16 * k..16 * k + 8]);
            store(b[k], &mut words[16 * k + 8..16 * k + 16]);
        }
    }

    /// `op` on each of `K` lanes of pairs.
    #[inline(always)]
    fn each<const K: usize>(
        x: [V; K],
        y: [V; K],
        op: impl Fn(usize, V, V) -> (V, V),
    ) -> ([V; K], [V; K]) {
        let mut out = (x, y);
        for k in 0..K {
            (out.0[k], out.1[k]) = op(k, x[k], y[k]);
        }
        out
    }

    /// Twiddles `k, k+1` repeated: `[w_k, w_(k+1), w_k, ..]`, with companions.
    #[inline(always)]
    fn twiddles2(&self, k: usize) -> (V, V) {
        let f = self.simd.avx512f;
        let pair = |t: &[u64]| {
            let mut lanes = [0u64; 2];
            lanes.copy_from_slice(&t[k..k + 2]);
            f._mm512_broadcast_i32x4(pulp::cast(lanes))
        };
        (pair(self.w), pair(self.w_shoup))
    }

    /// Twiddles `k..k+4` repeated: `[w_k, .., w_(k+3), w_k, ..]`, with companions.
    #[inline(always)]
    fn twiddles4(&self, k: usize) -> (V, V) {
        let f = self.simd.avx512f;
        let quad = |t: &[u64]| {
            let mut lanes = [0u64; 4];
            lanes.copy_from_slice(&t[k..k + 4]);
            f._mm512_broadcast_i64x4(pulp::cast(lanes))
        };
        (quad(self.w), quad(self.w_shoup))
    }

    /// The last three forward stages on `K` pairs `(a[k], b[k])`, the
    /// sixteen words of global 16-word group `g + k`.
    ///
    /// One permutation serves every step: the perfect shuffle
    /// `zip(x, y) = ([x0 y0 x1 y1 x2 y2 x3 y3], [x4 y4 .. x7 y7])`. From
    /// `(a, b)` it pairs `a_c` with `a_(c+4)` (stage `t = 4`) with lanes
    /// alternating between the blocks `a` and `b`, so the twiddles are
    /// `[w_a, w_b]` repeated; the next zip pairs words two apart with the
    /// four twiddles of `t = 2` repeated; the next, neighbours with the eight
    /// twiddles of `t = 1` in order; the last restores the word order.
    #[inline(always)]
    fn forward_pairs<const K: usize>(&self, a: [V; K], b: [V; K], g: usize) -> ([V; K], [V; K]) {
        let s = self.simd;
        let n = self.n;
        let zip = self.zip();
        let (x, y) = Self::each(a, b, |_, a, b| zip(a, b));
        let (x, y) = Self::each(x, y, |k, x, y| {
            let (x, y) = self.ct(x, y, self.twiddles2(n / 8 + 2 * (g + k)));
            zip(x, y)
        });
        let (x, y) = Self::each(x, y, |k, x, y| {
            let (x, y) = self.ct(x, y, self.twiddles4(n / 4 + 4 * (g + k)));
            zip(x, y)
        });
        Self::each(x, y, |k, x, y| {
            let (x, y) = self.ct(x, y, self.twiddles8(n / 2 + 8 * (g + k)));
            zip(
                s.csub(s.csub(x, self.two_q), self.q),
                s.csub(s.csub(y, self.two_q), self.q),
            )
        })
    }

    /// The first three inverse stages on `K` pairs, mirror of
    /// [`forward_pairs`](Self::forward_pairs) with the inverse shuffle
    /// `unzip(x, y) = (even words of x‖y, odd words of x‖y)`.
    #[inline(always)]
    fn inverse_pairs<const K: usize>(&self, a: [V; K], b: [V; K], g: usize) -> ([V; K], [V; K]) {
        let n = self.n;
        let unzip = self.unzip();
        let (x, y) = Self::each(a, b, |_, a, b| unzip(a, b));
        let (x, y) = Self::each(x, y, |k, x, y| {
            let (x, y) = self.gs(x, y, self.twiddles8(n / 2 + 8 * (g + k)));
            unzip(x, y)
        });
        let (x, y) = Self::each(x, y, |k, x, y| {
            let (x, y) = self.gs(x, y, self.twiddles4(n / 4 + 4 * (g + k)));
            unzip(x, y)
        });
        Self::each(x, y, |k, x, y| {
            let (x, y) = self.gs(x, y, self.twiddles2(n / 8 + 2 * (g + k)));
            unzip(x, y)
        })
    }

    /// The perfect shuffle of two vectors (see [`forward_pairs`](Self::forward_pairs)).
    #[inline(always)]
    fn zip(&self) -> impl Fn(V, V) -> (V, V) + Copy + '_ {
        let f = self.simd.avx512f;
        let lo: V = pulp::cast([0u64, 8, 1, 9, 2, 10, 3, 11]);
        let hi: V = pulp::cast([4u64, 12, 5, 13, 6, 14, 7, 15]);
        move |x, y| {
            (
                f._mm512_permutex2var_epi64(x, lo, y),
                f._mm512_permutex2var_epi64(x, hi, y),
            )
        }
    }

    /// The inverse of [`zip`](Self::zip).
    #[inline(always)]
    fn unzip(&self) -> impl Fn(V, V) -> (V, V) + Copy + '_ {
        let f = self.simd.avx512f;
        let evens: V = pulp::cast([0u64, 2, 4, 6, 8, 10, 12, 14]);
        let odds: V = pulp::cast([1u64, 3, 5, 7, 9, 11, 13, 15]);
        move |x, y| {
            (
                f._mm512_permutex2var_epi64(x, evens, y),
                f._mm512_permutex2var_epi64(x, odds, y),
            )
        }
    }
}

/// Forward transform in place, for a modulus below 2^50: `N >= MIN_N` words
/// in `[0, q)` to the convention's evaluations in `[0, q)`. `w` is
/// [`super::NttTable::forward_twiddles`], `w_shoup` its [`shoup52`].
pub(crate) fn forward(simd: Ifma, modulus: &Modulus, data: &mut [u64], w: &[u64], w_shoup: &[u64]) {
    simd.vectorize(Transform {
        simd,
        modulus,
        data,
        twiddles: (w, w_shoup),
        direction: Direction::Forward,
    })
}

/// Inverse transform in place, for a modulus below 2^50: evaluations in
/// `[0, q)` to `scale·N·a`, fully reduced, for `Some(scale)` (`N^{-1}` gives
/// the coefficients), or to `N·a` with words below `2q` for `None`. `w` is
/// [`super::NttTable::inverse_twiddles`], `w_shoup` its [`shoup52`].
pub(crate) fn inverse(
    simd: Ifma,
    modulus: &Modulus,
    data: &mut [u64],
    (w, w_shoup): (&[u64], &[u64]),
    scale: Option<u64>,
) {
    simd.vectorize(Transform {
        simd,
        modulus,
        data,
        twiddles: (w, w_shoup),
        direction: Direction::Inverse { scale },
    })
}

enum Direction {
    Forward,
    Inverse { scale: Option<u64> },
}

/// One transform as the body that `vectorize` runs with the IFMA features
/// enabled. A struct rather than a closure: through a closure's call shim
/// LLVM left the body out of line, and with it every intrinsic.
struct Transform<'a> {
    simd: Ifma,
    modulus: &'a Modulus,
    data: &'a mut [u64],
    twiddles: (&'a [u64], &'a [u64]),
    direction: Direction,
}

impl pulp::NullaryFnOnce for Transform<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let Self {
            simd,
            modulus,
            data,
            twiddles: (w, w_shoup),
            direction,
        } = self;
        let q = modulus.value();
        let net = Net {
            simd,
            n: data.len(),
            q: simd.splat(q),
            two_q: simd.splat(2 * q),
            minus_q: simd.splat((1 << 52) - q),
            w,
            w_shoup,
        };
        let chunk = L1_BLOCK.min(net.n);
        let groups = net.groups();
        // Groups before `split` have blocks larger than a chunk.
        let split = groups.partition_point(|&(first, _)| net.n >> first > chunk);
        let block0 = |c: usize, first: u32| c * (chunk / (net.n >> first));
        match direction {
            Direction::Forward => {
                for &group in &groups[..split] {
                    net.run_group(true, data, group, 0);
                }
                for (c, part) in data.chunks_exact_mut(chunk).enumerate() {
                    for &group in &groups[split..] {
                        net.run_group(true, part, group, block0(c, group.0));
                    }
                    net.forward_tail(part, c * chunk);
                }
            }
            Direction::Inverse { scale } => {
                for (c, part) in data.chunks_exact_mut(chunk).enumerate() {
                    net.inverse_tail(part, c * chunk);
                    for &group in groups[split..].iter().rev() {
                        net.run_group(false, part, group, block0(c, group.0));
                    }
                }
                for &group in groups[..split].iter().rev() {
                    net.run_group(false, data, group, 0);
                }
                if let Some(scale) = scale {
                    let w = simd.splat(scale);
                    let w_shoup = simd.splat((((scale as u128) << 52) / q as u128) as u64);
                    for x in data.chunks_exact_mut(8) {
                        store(simd.mul_shoup(load(x), w, w_shoup, net.q), x);
                    }
                }
            }
        }
    }
}
