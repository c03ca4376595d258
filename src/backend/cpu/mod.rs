//! The CPU backend: the oracle every other backend must match bit for bit.
//!
//! Each primitive is a direct loop over limbs (parallel over limbs, or over
//! coefficient blocks for base conversion, on the backend's rayon pool) using
//! [`Modulus`] arithmetic; products are accumulated in
//! `u128` and reduced once. The NTT is
//! [`NttTable::forward`](crate::ring::ntt::NttTable::forward), itself tested
//! bit for bit against the plain reference transform.
//!
//! Hot loops dispatch to the AVX-512 IFMA kernels of `ifma.rs` for primes
//! below 2^50 when the CPU has them (a second implementation, tested word for
//! word against the scalar loops here; `HEFORMER_NO_SIMD=1` disables it).
//! Large temporaries come from the [`HostPool`].

use std::collections::HashMap;
use std::sync::Mutex;

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
mod ifma;
mod key_switch;

use super::{
    check_basis, check_buffer, check_scalars, Backend, BackendKind, Buffer, KeyLayout,
    KeySwitchTail, Storage,
};
use crate::error::{Error, Result};
use crate::math::Modulus;
use crate::ring::{BaseConversion, RingContext};

/// A process-wide pool of host word vectors, by exact length, so that the
/// large temporaries of key switching are reused instead of being mapped and
/// faulted in on every operation. Holds at most [`HostPool::CAPACITY_WORDS`].
#[derive(Debug, Default)]
pub struct HostPool {
    by_len: HashMap<usize, Vec<Vec<u64>>>,
    pooled_words: usize,
}

static HOST_POOL: Mutex<Option<HostPool>> = Mutex::new(None);

impl HostPool {
    /// The most words kept for reuse (2 GiB): at 1 GiB a bootstrap at
    /// N = 2^16 (temporaries of many lengths, one per level) overflowed the
    /// pool and spent about 8% of its time faulting fresh pages in.
    pub const CAPACITY_WORDS: usize = 1 << 28;

    /// A vector of exactly `len` words with unspecified (initialized) contents.
    pub fn take(len: usize) -> Vec<u64> {
        let mut guard = HOST_POOL.lock().unwrap_or_else(|p| p.into_inner());
        let pool = guard.get_or_insert_with(HostPool::default);
        if let Some(v) = pool.by_len.get_mut(&len).and_then(|list| list.pop()) {
            pool.pooled_words -= len;
            return v;
        }
        drop(guard);
        vec![0; len]
    }

    /// Returns a vector to the pool (dropped if the pool is full).
    pub fn give_back(v: Vec<u64>) {
        let len = v.len();
        if len == 0 {
            return;
        }
        let mut guard = HOST_POOL.lock().unwrap_or_else(|p| p.into_inner());
        let pool = guard.get_or_insert_with(HostPool::default);
        if pool.pooled_words + len <= Self::CAPACITY_WORDS {
            pool.pooled_words += len;
            pool.by_len.entry(len).or_default().push(v);
        }
    }
}

/// A temporary host vector borrowed from the [`HostPool`] and given back on drop.
struct Scratch(Vec<u64>);

impl Scratch {
    /// `len` words with unspecified contents.
    fn take(len: usize) -> Self {
        Scratch(HostPool::take(len))
    }

    /// A copy of `words`.
    fn copy_of(words: &[u64]) -> Self {
        let mut s = Self::take(words.len());
        s.0.copy_from_slice(words);
        s
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        HostPool::give_back(std::mem::take(&mut self.0));
    }
}

impl std::ops::Deref for Scratch {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        &self.0
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [u64] {
        &mut self.0
    }
}

/// The CPU backend, with its own worker pool.
#[derive(Debug)]
pub struct CpuBackend {
    pool: rayon::ThreadPool,
    threads: usize,
}

impl CpuBackend {
    /// A backend with `threads` workers (0: one per core).
    pub fn new(threads: usize) -> Result<Self> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::Backend {
                backend: "cpu".into(),
                detail: format!("cannot start {threads} worker threads: {e}"),
            })?;
        Ok(Self { pool, threads })
    }
}

fn host<'a>(op: &'static str, b: &'a Buffer, words: usize) -> Result<&'a [u64]> {
    check_buffer(op, BackendKind::Cpu, b, words)?;
    match b.storage() {
        Storage::Host(v) => Ok(&v[..words]),
        #[allow(unreachable_patterns)]
        _ => Err(not_host(op, b.kind())),
    }
}

fn host_mut<'a>(op: &'static str, b: &'a mut Buffer, words: usize) -> Result<&'a mut [u64]> {
    check_buffer(op, BackendKind::Cpu, b, words)?;
    let kind = b.kind();
    match b.storage_mut() {
        Storage::Host(v) => Ok(&mut v[..words]),
        #[allow(unreachable_patterns)]
        _ => Err(not_host(op, kind)),
    }
}

/// The host words of the digits a key switch at one level reads, and where
/// each modulus's limb lies in them.
struct KeyWords<'a> {
    layout: KeyLayout,
    digits: Vec<(&'a [u64], &'a [u64])>,
}

impl<'a> KeyWords<'a> {
    /// The first `digits` digits of `keys`, for a key switch at `level`.
    fn new(
        op: &'static str,
        ring: &RingContext,
        keys: &'a [(Buffer, Buffer)],
        digits: usize,
        level: usize,
    ) -> Result<Self> {
        let layout = KeyLayout::of(op, ring, keys, digits, level)?;
        let words = layout.words(ring.n());
        let digits = keys[..digits]
            .iter()
            .map(|(b, a)| Ok((host(op, b, words)?, host(op, a, words)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layout, digits })
    }

    /// Digit `j`'s two limbs (b, a) of global modulus `g`.
    fn limbs(&self, j: usize, g: usize, n: usize) -> (&'a [u64], &'a [u64]) {
        let at = self.layout.position(g) * n;
        let (b, a) = self.digits[j];
        (&b[at..at + n], &a[at..at + n])
    }
}

fn not_host(op: &'static str, kind: BackendKind) -> Error {
    Error::DeviceMismatch {
        op,
        left: BackendKind::Cpu.to_string(),
        right: kind.to_string(),
    }
}

/// The IFMA token when `m` (and every other modulus in `others`) fits the
/// IFMA kernels and the CPU has them.
#[cfg(target_arch = "x86_64")]
fn ifma_for<'a>(m: &Modulus, others: impl IntoIterator<Item = &'a Modulus>) -> Option<ifma::Ifma> {
    ifma::detect().filter(|_| ifma::fits(m) && others.into_iter().all(ifma::fits))
}

/// `acc[i] = acc[i] + b[i] mod q`.
fn add_limb(m: &Modulus, acc: &mut [u64], b: &[u64]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = ifma::detect() {
        return ifma::add_assign(simd, m, acc, b);
    }
    acc.iter_mut().zip(b).for_each(|(x, &y)| *x = m.add(*x, y));
}

/// `acc[i] = acc[i] − b[i] mod q`.
fn sub_limb(m: &Modulus, acc: &mut [u64], b: &[u64]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = ifma::detect() {
        return ifma::sub_assign(simd, m, acc, b);
    }
    acc.iter_mut().zip(b).for_each(|(x, &y)| *x = m.sub(*x, y));
}

/// `acc[i] = acc[i]·b[i] mod q`.
fn hadamard(m: &Modulus, acc: &mut [u64], b: &[u64]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = ifma_for(m, []) {
        return ifma::mul_assign(simd, m, acc, b);
    }
    acc.iter_mut().zip(b).for_each(|(x, &y)| *x = m.mul(*x, y));
}

/// `acc[i] = acc[i] + a[i]·b[i] mod q`.
fn hadamard_add(m: &Modulus, acc: &mut [u64], a: &[u64], b: &[u64]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = ifma_for(m, []) {
        return ifma::mul_add_assign(simd, m, acc, a, b);
    }
    for ((z, &x), &y) in acc.iter_mut().zip(a).zip(b) {
        *z = m.reduce_u128(x as u128 * y as u128 + *z as u128);
    }
}

/// `out0[c] = Σ_j x_j[c]·y_j[c]`, `out1[c] = Σ_j x_j[c]·z_j[c]` (mod q) for
/// triples `(x_j, y_j, z_j)`, accumulated wide and reduced once.
fn dot2_limb(m: &Modulus, terms: &[(&[u64], &[u64], &[u64])], out0: &mut [u64], out1: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    if terms.len() <= ifma::MAX_TERMS {
        if let Some(simd) = ifma_for(m, []) {
            return ifma::dot2(simd, m, terms, out0, out1);
        }
    }
    for (c, (o0, o1)) in out0.iter_mut().zip(out1.iter_mut()).enumerate() {
        let (a0, a1) = terms.iter().fold((0u128, 0u128), |(a0, a1), (x, y, z)| {
            (
                a0 + x[c] as u128 * y[c] as u128,
                a1 + x[c] as u128 * z[c] as u128,
            )
        });
        *o0 = m.reduce_u128(a0);
        *o1 = m.reduce_u128(a1);
    }
}

/// One limb of the tensor product: `d0 = a0·b0`, `d1 = a0·b1 + a1·b0`, `d2 = a1·b1`.
fn tensor_limb(m: &Modulus, a: [&[u64]; 2], b: [&[u64]; 2], d: [&mut [u64]; 3]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = ifma_for(m, []) {
        return ifma::tensor(simd, m, a, b, d);
    }
    let [d0, d1, d2] = d;
    for c in 0..d0.len() {
        d0[c] = m.mul(a[0][c], b[0][c]);
        d1[c] =
            m.reduce_u128(a[0][c] as u128 * b[1][c] as u128 + a[1][c] as u128 * b[0][c] as u128);
        d2[c] = m.mul(a[1][c], b[1][c]);
    }
}

/// `out[i] = src[perm[i]]`.
fn permute_limb(src: &[u64], perm: &[u32], out: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = ifma::detect() {
        return ifma::permute(simd, src, perm, out);
    }
    for (x, &p) in out.iter_mut().zip(perm) {
        *x = src[p as usize];
    }
}

/// `out[i] = src[i]·w mod q` for a constant `w < q`.
fn scale_by_constant(m: &Modulus, src: &[u64], w: u64, out: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = ifma_for(m, []) {
        return ifma::mul_const(simd, m, src, w, out);
    }
    let ws = m.shoup(w);
    for (o, &x) in out.iter_mut().zip(src) {
        *o = m.mul_shoup(x, w, ws);
    }
}

/// `limb = c·INTT(limb)` on the prime of global index `g`: the inverse NTT
/// with its factor N^{-1} folded into the constant `c < q`.
fn inverse_ntt_times(ring: &RingContext, g: usize, limb: &mut [u64], c: u64) {
    let m = ring.moduli()[g];
    let w = m.mul(c, ring.ntt(g).inverse_deferred(limb));
    // The deferred words lie below 4q (2^52 for the IFMA primes).
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = ifma_for(&m, []) {
        return ifma::mul_const_in_place(simd, &m, limb, w);
    }
    limb.iter_mut().for_each(|x| *x = m.mul(*x, w));
}

/// `acc[i] = acc[i] + src[i]·w mod q` for a constant `w < q`.
fn scale_and_add(m: &Modulus, src: &[u64], w: u64, acc: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = ifma_for(m, []) {
        return ifma::mul_const_add(simd, m, src, w, acc);
    }
    let ws = m.shoup(w);
    for (z, &x) in acc.iter_mut().zip(src) {
        *z = m.add(*z, m.mul_shoup(x, w, ws));
    }
}

/// `out[i] = (x[i] − out[i])·w mod q`.
fn subtract_then_scale(m: &Modulus, x: &[u64], w: u64, out: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = ifma_for(m, []) {
        return ifma::sub_from_then_mul_const(simd, m, x, w, out);
    }
    let ws = m.shoup(w);
    for (o, &x) in out.iter_mut().zip(x) {
        *o = m.mul_shoup(m.sub(x, *o), w, ws);
    }
}

/// Runs `f(modulus_index, item)` on every job, jobs of one modulus one after
/// the other on one worker (its NTT twiddles stay in cache), moduli in
/// parallel.
fn for_each_by_modulus<T: Send>(mut jobs: Vec<(usize, T)>, f: impl Fn(usize, T) + Sync + Send) {
    jobs.sort_by_key(|(g, _)| *g);
    let mut groups: Vec<(usize, Vec<T>)> = Vec::new();
    for (g, item) in jobs {
        match groups.last_mut() {
            Some((last, items)) if *last == g => items.push(item),
            _ => groups.push((g, vec![item])),
        }
    }
    groups.into_par_iter().for_each(|(g, items)| {
        for item in items {
            f(g, item);
        }
    });
}

/// Coefficients per block of the blocked base conversion: the source words
/// of a block (at most 16 limbs × 2048 words = 256 KiB) stay in cache while
/// every target limb of the block is computed.
const CONVERSION_BLOCK: usize = 2048;

/// Fast base conversion into several target limbs, `(target_row, limb)`
/// pairs of `conv`, block of coefficients by block of coefficients, blocks in
/// parallel. `scaled_source` holds the scaled source limbs `y_s` (N words
/// each); with `overflows` (the `v` of the centered exact conversion, one per
/// coefficient), subtracts `v·Q_S`.
fn convert_limbs(
    ring: &RingContext,
    conv: &BaseConversion,
    scaled_source: &[u64],
    overflows: Option<&[u64]>,
    targets: Vec<(usize, &mut [u64])>,
) {
    let n = ring.n();
    let mut per_block: Vec<Vec<(usize, &mut [u64])>> = (0..n.div_ceil(CONVERSION_BLOCK))
        .map(|_| Vec::new())
        .collect();
    for (row, limb) in targets {
        for (block, chunk) in limb.chunks_mut(CONVERSION_BLOCK).enumerate() {
            per_block[block].push((row, chunk));
        }
    }
    per_block
        .into_par_iter()
        .enumerate()
        .for_each(|(block, chunks)| {
            let start = block * CONVERSION_BLOCK;
            for (row, chunk) in chunks {
                convert_range(ring, conv, scaled_source, overflows, row, start, chunk);
            }
        });
}

/// Base conversion of coefficients `start..start + out.len()` into one
/// target limb (`target_row` of `conv`); see [`convert_limbs`].
fn convert_range(
    ring: &RingContext,
    conv: &BaseConversion,
    scaled_source: &[u64],
    overflows: Option<&[u64]>,
    target_row: usize,
    start: usize,
    out: &mut [u64],
) {
    let n = ring.n();
    let end = start + out.len();
    let t = ring.moduli()[conv.target[target_row]];
    let s_count = conv.source.len();
    let hats = &conv.source_hat_mod_target[target_row * s_count..(target_row + 1) * s_count];
    let rows: Vec<&[u64]> = (0..s_count)
        .map(|s| &scaled_source[s * n + start..s * n + end])
        .collect();
    let overflows = overflows.map(|v| &v[start..end]);
    let correction = overflows.map(|v| (v, conv.neg_source_product_mod_target[target_row]));
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = ifma::detect() {
        // Sources from primes of 50 bits or more enter as two 30-bit halves.
        let mut const_rows: Vec<ifma::ConstRow> = rows
            .iter()
            .zip(hats)
            .zip(&conv.source)
            .map(|((&words, &constant), &g)| ifma::ConstRow {
                words,
                constant,
                wide_const: (!ifma::fits(&ring.moduli()[g])).then(|| t.mul(constant, 1 << 30)),
            })
            .collect();
        if let Some((v, neg_product)) = correction {
            const_rows.push(ifma::ConstRow {
                words: v,
                constant: neg_product,
                wide_const: None,
            });
        }
        let terms: usize = const_rows.iter().map(ifma::ConstRow::terms).sum();
        if terms <= ifma::MAX_TERMS {
            if ifma::fits(&t) {
                return ifma::dot_const(simd, &t, &const_rows, out);
            }
            if const_rows.iter().all(|r| r.wide_const.is_none()) {
                return ifma::dot_const_wide_target(simd, &t, &const_rows, out);
            }
        }
    }
    for (c, o) in out.iter_mut().enumerate() {
        let mut acc = 0u128;
        for (row, &hat) in rows.iter().zip(hats) {
            acc += row[c] as u128 * hat as u128;
        }
        if let Some((v, neg_product)) = correction {
            acc += v[c] as u128 * neg_product as u128;
        }
        *o = t.reduce_u128(acc);
    }
}

/// `y_s = x_s · (Q_S/q_s)^{-1} mod q_s` for every source limb, source limbs
/// taken from `input` at positions `positions`.
fn scale_sources(
    ring: &RingContext,
    conv: &BaseConversion,
    input: &[u64],
    positions: &[usize],
    n: usize,
) -> Scratch {
    let mut scaled = Scratch::take(conv.source.len() * n);
    scaled.par_chunks_mut(n).enumerate().for_each(|(s, dst)| {
        let m = ring.moduli()[conv.source[s]];
        let w = conv.source_hat_inv[s];
        scale_by_constant(&m, &input[positions[s] * n..(positions[s] + 1) * n], w, dst);
    });
    scaled
}

/// `v = round(Σ_s y_s / q_s)` per coefficient (64-bit fixed point), the
/// multiple of `Q_S` the centered exact conversion subtracts.
fn centered_overflows(
    ring: &RingContext,
    conv: &BaseConversion,
    scaled_source: &[u64],
    n: usize,
) -> Scratch {
    let mut v = Scratch::take(n);
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = ifma::detect() {
        let sources = conv.source.iter().map(|&g| &ring.moduli()[g]);
        if conv.source.len() <= ifma::MAX_TERMS && sources.clone().all(ifma::fits) {
            v.par_chunks_mut(1024).enumerate().for_each(|(block, out)| {
                let start = block * 1024;
                let rows: Vec<&[u64]> = (0..conv.source.len())
                    .map(|s| &scaled_source[s * n + start..s * n + start + out.len()])
                    .collect();
                ifma::centered_overflows(simd, &rows, &conv.source_fraction, out);
            });
            return v;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ring;
    v.par_chunks_mut(1024).enumerate().for_each(|(block, out)| {
        let start = block * 1024;
        for (c, o) in out.iter_mut().enumerate() {
            let sum: u128 = conv
                .source_fraction
                .iter()
                .enumerate()
                .map(|(s, &f)| (scaled_source[s * n + start + c] as u128 * f) >> 64)
                .sum();
            *o = ((sum + (1u128 << 63)) >> 64) as u64;
        }
    });
    v
}

/// The position of global modulus `g` in the extended basis at `level`
/// (Q_0..Q_level, then P).
fn extended_position(ring: &RingContext, level: usize, g: usize) -> usize {
    if g <= level {
        g
    } else {
        level + 1 + (g - ring.num_q())
    }
}

/// The global modulus at position `pos` of the extended basis at `level`.
fn extended_modulus(ring: &RingContext, level: usize, pos: usize) -> usize {
    if pos <= level {
        pos
    } else {
        ring.num_q() + (pos - level - 1)
    }
}

/// The division that ends a key switch at `level`: its centered base
/// conversion, the extended-basis positions of its source limbs (in the
/// conversion's source order) and the inverse each output limb is multiplied
/// by. ModDown divides by P (outputs at `level`); with the rescale, by
/// `P·q_level` from the sources `{q_level} ∪ P` (outputs at `level − 1`).
struct Division<'a> {
    conv: &'a BaseConversion,
    sources: Vec<usize>,
    inverses: Vec<u64>,
}

impl<'a> Division<'a> {
    fn new(op: &'static str, ring: &'a RingContext, level: usize, rescale: bool) -> Result<Self> {
        let special = level + 1..level + 1 + ring.num_p();
        if !rescale {
            if level >= ring.num_q() {
                return Err(Error::LevelMismatch {
                    op,
                    detail: format!("level {level} beyond the chain"),
                });
            }
            return Ok(Self {
                conv: ring.mod_down(),
                sources: special.collect(),
                inverses: (0..=level).map(|i| ring.p_inv_mod_q(i).0).collect(),
            });
        }
        if level == 0 || level >= ring.num_q() {
            return Err(Error::OutOfLevels {
                op,
                level,
                needed: 1,
            });
        }
        let (conv, inverses) = ring.mod_down_rescale(level)?;
        Ok(Self {
            conv,
            sources: std::iter::once(level).chain(special).collect(),
            inverses: inverses.to_vec(),
        })
    }
}

impl CpuBackend {
    /// Checks `poly` and `basis`, then runs `f(position, modulus_index, limb)`
    /// on every limb in parallel.
    fn each_limb(
        &self,
        op: &'static str,
        ring: &RingContext,
        poly: &mut Buffer,
        basis: &[usize],
        f: impl Fn(usize, usize, &mut [u64]) + Sync + Send,
    ) -> Result<()> {
        check_basis(op, ring, basis)?;
        let n = ring.n();
        let data = host_mut(op, poly, n * basis.len())?;
        self.pool.install(|| {
            data.par_chunks_mut(n)
                .zip(basis.par_iter())
                .enumerate()
                .for_each(|(k, (limb, &g))| f(k, g, limb))
        });
        Ok(())
    }

    /// Checks the operands, then runs `f(modulus, acc_limb, b_limb)` on every
    /// pair of limbs in parallel.
    fn each_limb_pair(
        &self,
        op: &'static str,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
        f: impl Fn(&Modulus, &mut [u64], &[u64]) + Sync + Send,
    ) -> Result<()> {
        check_basis(op, ring, basis)?;
        let n = ring.n();
        let b = host(op, b, n * basis.len())?;
        let acc = host_mut(op, acc, n * basis.len())?;
        self.pool.install(|| {
            acc.par_chunks_mut(n)
                .zip(b.par_chunks(n))
                .zip(basis.par_iter())
                .for_each(|((a, b), &g)| f(&ring.moduli()[g], a, b))
        });
        Ok(())
    }

    /// For each input on the extended basis at `level` (evaluation domain):
    /// `out_i = (x_i − [x]_S) · inverses[i]` on the targets of the division's
    /// conversion (`inverses.len()` of them), where S is its source basis,
    /// found at `division.sources` in the input, and `[x]_S` its centered
    /// residue.
    fn divide_by_sources(
        &self,
        op: &'static str,
        ring: &RingContext,
        division: &Division<'_>,
        extended: &[Buffer],
        level: usize,
        outs: &mut [Buffer],
    ) -> Result<()> {
        let Division {
            conv,
            sources: positions,
            inverses,
        } = division;
        let n = ring.n();
        if outs.len() != extended.len() {
            return Err(Error::LengthMismatch {
                op,
                got: outs.len(),
                expected: extended.len(),
            });
        }
        let inputs = extended
            .iter()
            .map(|b| host(op, b, n * (level + 1 + ring.num_p())))
            .collect::<Result<Vec<_>>>()?;
        let outs = outs
            .iter_mut()
            .map(|b| host_mut(op, b, n * inverses.len()))
            .collect::<Result<Vec<_>>>()?;
        self.pool.install(|| {
            // The source limbs, back to the coefficient domain.
            let mut sources: Vec<Scratch> = inputs
                .iter()
                .map(|x| {
                    let mut s = Scratch::take(n * positions.len());
                    for (dst, &pos) in s.chunks_mut(n).zip(positions) {
                        dst.copy_from_slice(&x[pos * n..(pos + 1) * n]);
                    }
                    s
                })
                .collect();
            let jobs = sources
                .iter_mut()
                .flat_map(|s| {
                    s.chunks_mut(n)
                        .zip(conv.source.iter().copied())
                        .map(|(limb, g)| (g, limb))
                })
                .collect();
            for_each_by_modulus(jobs, |g, limb| ring.ntt(g).inverse(limb));
            let in_order: Vec<usize> = (0..positions.len()).collect();
            let mut jobs = Vec::new();
            for ((source, out), input) in sources.iter().zip(outs).zip(&inputs) {
                let scaled = scale_sources(ring, conv, source, &in_order, n);
                let overflows = centered_overflows(ring, conv, &scaled, n);
                let mut limbs: Vec<&mut [u64]> = out.chunks_mut(n).collect();
                convert_limbs(
                    ring,
                    conv,
                    &scaled,
                    Some(&overflows),
                    limbs.iter_mut().map(|l| &mut **l).enumerate().collect(),
                );
                jobs.extend(
                    limbs
                        .into_iter()
                        .enumerate()
                        .map(|(i, limb)| (i, (limb, &input[i * n..(i + 1) * n]))),
                );
            }
            for_each_by_modulus(jobs, |i, (limb, x)| {
                ring.ntt(i).forward(limb);
                subtract_then_scale(&ring.moduli()[i], x, inverses[i], limb);
            });
        });
        Ok(())
    }
}

impl Backend for CpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn device_name(&self) -> String {
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string())
    }

    fn threads(&self) -> usize {
        self.threads
    }

    fn alloc(&self, words: usize) -> Result<Buffer> {
        Ok(Buffer::from_storage(Storage::Host(HostPool::take(words))))
    }

    fn alloc_zeroed(&self, words: usize) -> Result<Buffer> {
        let mut v = HostPool::take(words);
        v.fill(0);
        Ok(Buffer::from_storage(Storage::Host(v)))
    }

    fn upload(&self, host: &[u64]) -> Result<Buffer> {
        let mut v = HostPool::take(host.len());
        v.copy_from_slice(host);
        Ok(Buffer::from_storage(Storage::Host(v)))
    }

    fn download(&self, buffer: &Buffer, words: usize) -> Result<Vec<u64>> {
        Ok(host("download", buffer, words)?.to_vec())
    }

    fn copy(&self, src: &Buffer, dst: &mut Buffer, words: usize) -> Result<()> {
        let s = host("copy", src, words)?;
        host_mut("copy", dst, words)?.copy_from_slice(s);
        Ok(())
    }

    fn ntt_forward(&self, ring: &RingContext, poly: &mut Buffer, basis: &[usize]) -> Result<()> {
        self.each_limb("ntt_forward", ring, poly, basis, |_, g, limb| {
            ring.ntt(g).forward(limb)
        })
    }

    fn ntt_inverse(&self, ring: &RingContext, poly: &mut Buffer, basis: &[usize]) -> Result<()> {
        self.each_limb("ntt_inverse", ring, poly, basis, |_, g, limb| {
            ring.ntt(g).inverse(limb)
        })
    }

    fn add_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()> {
        self.each_limb_pair("add", ring, acc, b, basis, add_limb)
    }

    fn sub_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()> {
        self.each_limb_pair("sub", ring, acc, b, basis, sub_limb)
    }

    fn neg_assign(&self, ring: &RingContext, acc: &mut Buffer, basis: &[usize]) -> Result<()> {
        self.each_limb("neg", ring, acc, basis, |_, g, limb| {
            let m = ring.moduli()[g];
            limb.iter_mut().for_each(|x| *x = m.neg(*x))
        })
    }

    fn mul_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()> {
        self.each_limb_pair("mul", ring, acc, b, basis, hadamard)
    }

    fn mul_add_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        a: &Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()> {
        check_basis("mul_add", ring, basis)?;
        let n = ring.n();
        let a = host("mul_add", a, n * basis.len())?;
        let b = host("mul_add", b, n * basis.len())?;
        let acc = host_mut("mul_add", acc, n * basis.len())?;
        self.pool.install(|| {
            acc.par_chunks_mut(n)
                .zip(a.par_chunks(n).zip(b.par_chunks(n)))
                .zip(basis.par_iter())
                .for_each(|((acc, (a, b)), &g)| {
                    hadamard_add(&ring.moduli()[g], acc, a, b);
                })
        });
        Ok(())
    }

    fn tensor(
        &self,
        ring: &RingContext,
        a: &[Buffer],
        b: &[Buffer],
        out: &mut [Buffer],
        basis: &[usize],
    ) -> Result<()> {
        check_basis("tensor", ring, basis)?;
        if a.len() != 2 || b.len() != 2 || out.len() != 3 {
            return Err(Error::LengthMismatch {
                op: "tensor",
                got: out.len(),
                expected: 3,
            });
        }
        let n = ring.n();
        let words = n * basis.len();
        let inputs = a
            .iter()
            .chain(b)
            .map(|x| host("tensor", x, words))
            .collect::<Result<Vec<_>>>()?;
        let mut outs = out
            .iter_mut()
            .map(|x| host_mut("tensor", x, words))
            .collect::<Result<Vec<_>>>()?;
        let (d0, rest) = outs.split_at_mut(1);
        let (d1, d2) = rest.split_at_mut(1);
        let limb = |k: usize| (k * n)..((k + 1) * n);
        self.pool.install(|| {
            d0[0]
                .par_chunks_mut(n)
                .zip(d1[0].par_chunks_mut(n))
                .zip(d2[0].par_chunks_mut(n))
                .zip(basis.par_iter().enumerate())
                .for_each(|(((o0, o1), o2), (k, &g))| {
                    let [a0, a1, b0, b1] = [0, 1, 2, 3].map(|i| &inputs[i][limb(k)]);
                    tensor_limb(&ring.moduli()[g], [a0, a1], [b0, b1], [o0, o1, o2]);
                })
        });
        Ok(())
    }

    fn mul_scalar_add_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        a: &Buffer,
        scalars: &[u64],
        basis: &[usize],
    ) -> Result<()> {
        check_scalars("mul_scalar_add", ring, scalars, basis)?;
        let n = ring.n();
        let a = host("mul_scalar_add", a, n * basis.len())?;
        self.each_limb("mul_scalar_add", ring, acc, basis, |k, g, limb| {
            scale_and_add(&ring.moduli()[g], &a[k * n..(k + 1) * n], scalars[k], limb);
        })
    }

    fn mul_scalar_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        scalars: &[u64],
        basis: &[usize],
    ) -> Result<()> {
        check_scalars("mul_scalar", ring, scalars, basis)?;
        self.each_limb("mul_scalar", ring, acc, basis, |k, g, limb| {
            let src = Scratch::copy_of(limb);
            scale_by_constant(&ring.moduli()[g], &src, scalars[k], limb);
        })
    }

    fn add_scalar_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        scalars: &[u64],
        basis: &[usize],
    ) -> Result<()> {
        check_scalars("add_scalar", ring, scalars, basis)?;
        self.each_limb("add_scalar", ring, acc, basis, |k, g, limb| {
            let m = ring.moduli()[g];
            limb.iter_mut().for_each(|x| *x = m.add(*x, scalars[k]));
        })
    }

    fn automorphism(
        &self,
        ring: &RingContext,
        src: &Buffer,
        galois_element: u64,
        out: &mut Buffer,
        basis: &[usize],
    ) -> Result<()> {
        check_basis("automorphism", ring, basis)?;
        let n = ring.n();
        let perm = ring.automorphism_permutation(galois_element)?;
        let src = host("automorphism", src, n * basis.len())?;
        let out = host_mut("automorphism", out, n * basis.len())?;
        self.pool.install(|| {
            out.par_chunks_mut(n)
                .zip(src.par_chunks(n))
                .for_each(|(o, s)| {
                    // One sequential read per cache line first: the hardware
                    // prefetcher brings the limb (written long ago, out of
                    // cache) in, so the gather does not wait line by line.
                    std::hint::black_box(s.iter().step_by(8).fold(0, |a, &x| a ^ x));
                    permute_limb(s, &perm, o)
                })
        });
        Ok(())
    }

    fn mod_up(
        &self,
        ring: &RingContext,
        coeff: &Buffer,
        eval: &Buffer,
        level: usize,
        outs: &mut [Buffer],
    ) -> Result<()> {
        let n = ring.n();
        let digits = ring.params().digits_at_level(level.min(ring.num_q() - 1));
        let convs = (0..digits)
            .map(|j| ring.mod_up(level, j))
            .collect::<Result<Vec<_>>>()?;
        if outs.len() != digits {
            return Err(Error::LengthMismatch {
                op: "mod_up",
                got: outs.len(),
                expected: digits,
            });
        }
        let q_words = n * (level + 1);
        let ext = level + 1 + ring.num_p();
        let coeff = host("mod_up", coeff, q_words)?;
        let eval = host("mod_up", eval, q_words)?;
        let outs = outs
            .iter_mut()
            .map(|b| host_mut("mod_up", b, n * ext))
            .collect::<Result<Vec<_>>>()?;
        self.pool.install(|| {
            let mut ntt_jobs = Vec::new();
            for (conv, out) in convs.iter().zip(outs) {
                let scaled = scale_sources(ring, conv, coeff, &conv.source, n);
                // Each output limb is either a copy (digit limb) or a conversion target.
                let mut row_of_position = vec![None; ext];
                for (row, &g) in conv.target.iter().enumerate() {
                    row_of_position[extended_position(ring, level, g)] = Some(row);
                }
                let mut limbs: Vec<&mut [u64]> = out.chunks_mut(n).collect();
                let targets = limbs
                    .iter_mut()
                    .zip(&row_of_position)
                    .filter_map(|(limb, row)| row.map(|row| (row, &mut **limb)))
                    .collect();
                convert_limbs(ring, conv, &scaled, None, targets);
                for (pos, limb) in limbs.into_iter().enumerate() {
                    match row_of_position[pos] {
                        Some(row) => ntt_jobs.push((conv.target[row], limb)),
                        None => limb.copy_from_slice(&eval[pos * n..(pos + 1) * n]),
                    }
                }
            }
            for_each_by_modulus(ntt_jobs, |g, limb| ring.ntt(g).forward(limb));
        });
        Ok(())
    }

    fn mod_down(
        &self,
        ring: &RingContext,
        extended: &[Buffer],
        level: usize,
        outs: &mut [Buffer],
    ) -> Result<()> {
        let division = Division::new("mod_down", ring, level, false)?;
        self.divide_by_sources("mod_down", ring, &division, extended, level, outs)
    }

    fn mod_down_rescale(
        &self,
        ring: &RingContext,
        extended: &[Buffer],
        level: usize,
        outs: &mut [Buffer],
    ) -> Result<()> {
        let division = Division::new("mod_down_rescale", ring, level, true)?;
        self.divide_by_sources("mod_down_rescale", ring, &division, extended, level, outs)
    }

    fn key_switch_inner_product(
        &self,
        ring: &RingContext,
        digits: &[Buffer],
        keys: &[(Buffer, Buffer)],
        level: usize,
        out0: &mut Buffer,
        out1: &mut Buffer,
    ) -> Result<()> {
        let n = ring.n();
        if level >= ring.num_q() {
            return Err(Error::LevelMismatch {
                op: "key_switch_inner_product",
                detail: format!(
                    "level {level} beyond the chain (top level {})",
                    ring.num_q() - 1
                ),
            });
        }
        if digits.len() > keys.len() || digits.len() > 64 {
            return Err(Error::LengthMismatch {
                op: "key_switch_inner_product",
                got: digits.len(),
                expected: keys.len(),
            });
        }
        let basis = ring.extended_basis(level);
        let ext_words = n * basis.len();
        let digits = digits
            .iter()
            .map(|d| host("key_switch_inner_product", d, ext_words))
            .collect::<Result<Vec<_>>>()?;
        let keys = KeyWords::new("key_switch_inner_product", ring, keys, digits.len(), level)?;
        let out0 = host_mut("key_switch_inner_product", out0, ext_words)?;
        let out1 = host_mut("key_switch_inner_product", out1, ext_words)?;
        self.pool.install(|| {
            out0.par_chunks_mut(n)
                .zip(out1.par_chunks_mut(n))
                .zip(basis.par_iter().enumerate())
                .for_each(|((o0, o1), (pos, &g))| {
                    let m = ring.moduli()[g];
                    let terms: Vec<(&[u64], &[u64], &[u64])> = digits
                        .iter()
                        .enumerate()
                        .map(|(j, d)| {
                            let (kb, ka) = keys.limbs(j, g, n);
                            (&d[pos * n..(pos + 1) * n], kb, ka)
                        })
                        .collect();
                    dot2_limb(&m, &terms, o0, o1);
                })
        });
        Ok(())
    }

    fn key_switch(
        &self,
        ring: &RingContext,
        poly: &Buffer,
        keys: &[(Buffer, Buffer)],
        level: usize,
        tail: KeySwitchTail<'_>,
        outs: &mut [Buffer],
    ) -> Result<()> {
        self.fused_key_switch(ring, poly, keys, level, tail, outs)
    }

    fn rescale(
        &self,
        ring: &RingContext,
        poly: &Buffer,
        level: usize,
        out: &mut Buffer,
    ) -> Result<()> {
        if level == 0 || level >= ring.num_q() {
            return Err(Error::OutOfLevels {
                op: "rescale",
                level,
                needed: 1,
            });
        }
        let n = ring.n();
        let input = host("rescale", poly, n * (level + 1))?;
        let out = host_mut("rescale", out, n * level)?;
        self.pool.install(|| {
            let mut last = Scratch::copy_of(&input[n * level..n * (level + 1)]);
            ring.ntt(level).inverse(&mut last);
            let q_last = ring.moduli()[level];
            // Centered residues as two's-complement words.
            last.iter_mut().for_each(|x| *x = q_last.center(*x) as u64);
            out.par_chunks_mut(n).enumerate().for_each(|(i, limb)| {
                let m = ring.moduli()[i];
                // |r| < q_level/2: when that is below q_i, a sign fix-up reduces it.
                if q_last.value() / 2 < m.value() {
                    let q = m.value() as i64;
                    for (o, &r) in limb.iter_mut().zip(last.iter()) {
                        let r = r as i64;
                        *o = (r + ((r >> 63) & q)) as u64;
                    }
                } else {
                    for (o, &r) in limb.iter_mut().zip(last.iter()) {
                        *o = m.reduce_i64(r as i64);
                    }
                }
                ring.ntt(i).forward(limb);
                subtract_then_scale(
                    &m,
                    &input[i * n..(i + 1) * n],
                    ring.rescale_inv(level, i).0,
                    limb,
                );
            });
        });
        Ok(())
    }
}
