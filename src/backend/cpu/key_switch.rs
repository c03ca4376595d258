//! The fused hybrid key switch of the CPU backend ([`Backend::key_switch`]).
//!
//! The same words as the composition ModUp → inner product → ModDown
//! (`tests/ring_oracle.rs` checks it), computed limb by limb so that each
//! digit limb is multiplied into the accumulators right after its NTT, while
//! it is still in cache, and the Q limbs of the accumulators never exist in
//! full:
//!
//! 1. the input back to coefficients (copy + inverse NTT per limb, its N^{-1}
//!    folded into the base conversion's source scaling);
//! 2. every digit's base conversion to the limbs it does not own (blocked
//!    over coefficients), into scratch;
//! 3. for each source limb of the division (P, and q_level when rescaling):
//!    the NTTs of the digit limbs at that prime, the inner product with the
//!    key (plus `P·addend` when rescaling);
//! 4. those accumulator limbs back to coefficients (scaled the same way),
//!    their centered base conversion to the remaining Q primes (as in
//!    `divide_by_sources`);
//! 5. for each remaining Q prime: the digit limbs' NTTs and inner product,
//!    the converted limb's NTT, and `(acc − conv)·inverse` into the output;
//!    with [`KeySwitchTail::ModDownAutomorphism`], the addend and the
//!    permutation follow at once, while the limb is in cache.
//!
//! [`Backend::key_switch`]: crate::backend::Backend::key_switch

use rayon::prelude::*;

use super::{
    add_limb, centered_overflows, convert_limbs, dot2_limb, extended_modulus, extended_position,
    host, host_mut, inverse_ntt_times, permute_limb, scale_and_add, subtract_then_scale,
    CpuBackend, Division, KeyWords, Scratch,
};
use crate::backend::{Buffer, KeySwitchTail};
use crate::error::{Error, Result};
use crate::ring::RingContext;

/// One position of the extended basis at the key switch's level: its global
/// modulus index and, per digit, the digit's limb there (converted words in
/// scratch, or `None` where the digit owns the prime and the input itself is
/// the limb).
struct Position<'a> {
    index: usize,
    modulus: usize,
    converted: Vec<Option<&'a mut [u64]>>,
}

impl CpuBackend {
    /// See the module documentation.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fused_key_switch(
        &self,
        ring: &RingContext,
        poly: &Buffer,
        keys: &[(Buffer, Buffer)],
        level: usize,
        tail: KeySwitchTail<'_>,
        outs: &mut [Buffer],
    ) -> Result<()> {
        const OP: &str = "key_switch";
        let rescale = matches!(tail, KeySwitchTail::ModDownRescale { .. });
        let Division {
            conv,
            sources,
            inverses,
        } = Division::new(OP, ring, level, rescale)?;
        let n = ring.n();
        let digits = ring.params().digits_at_level(level);
        if outs.len() != 2 {
            return Err(Error::LengthMismatch {
                op: OP,
                got: outs.len(),
                expected: 2,
            });
        }
        let q_words = n * (level + 1);
        // What is added before the division (rescale) or after it, with the
        // automorphism applied at the end.
        let mut addend = None;
        let mut finish = None;
        match tail {
            KeySwitchTail::ModDown => {}
            KeySwitchTail::ModDownRescale { addend: [c0, c1] } => {
                addend = Some([host(OP, c0, q_words)?, host(OP, c1, q_words)?]);
            }
            KeySwitchTail::ModDownAutomorphism {
                galois_element,
                addend: c0,
            } => {
                let perm = ring.automorphism_permutation(galois_element)?;
                finish = Some((perm, host(OP, c0, q_words)?));
            }
        }
        let input = host(OP, poly, q_words)?;
        let keys = KeyWords::new(OP, ring, keys, digits, level)?;
        let [out0, out1] = outs else {
            unreachable!("two outputs checked above")
        };
        let out0 = host_mut(OP, out0, n * inverses.len())?;
        let out1 = host_mut(OP, out1, n * inverses.len())?;
        let convs = (0..digits)
            .map(|j| ring.mod_up(level, j))
            .collect::<Result<Vec<_>>>()?;
        let ext = level + 1 + ring.num_p();

        self.pool.install(|| {
            // 1. The input in coefficient form, each limb already scaled by
            //    its digit's `(Q_D/q_i)^{-1}` (the base conversion's `y_i`).
            let mut hat_inv = vec![0u64; level + 1];
            for conv in &convs {
                for (&g, &w) in conv.source.iter().zip(&conv.source_hat_inv) {
                    hat_inv[g] = w;
                }
            }
            let mut scaled = Scratch::take(q_words);
            scaled
                .par_chunks_mut(n)
                .zip(input.par_chunks(n))
                .enumerate()
                .for_each(|(i, (y, x))| {
                    y.copy_from_slice(x);
                    inverse_ntt_times(ring, i, y, hat_inv[i]);
                });

            // 2. Every digit's conversion to the positions it does not own.
            let mut converted: Vec<Scratch> = convs
                .iter()
                .map(|conv| {
                    let digit_sources = gather_limbs(&scaled, &conv.source, n);
                    let mut words = Scratch::take(n * ext);
                    let mut limbs: Vec<Option<&mut [u64]>> =
                        words.chunks_mut(n).map(Some).collect();
                    let targets = conv
                        .target
                        .iter()
                        .enumerate()
                        .map(|(row, &g)| {
                            (
                                row,
                                limbs[extended_position(ring, level, g)]
                                    .take()
                                    .expect("targets are distinct"),
                            )
                        })
                        .collect();
                    convert_limbs(ring, conv, &digit_sources, None, targets);
                    words
                })
                .collect();
            let mut positions: Vec<Position<'_>> = (0..ext)
                .map(|index| Position {
                    index,
                    modulus: extended_modulus(ring, level, index),
                    converted: Vec::with_capacity(digits),
                })
                .collect();
            for (conv, words) in convs.iter().zip(converted.iter_mut()) {
                let mut owned = vec![false; ext];
                for &g in &conv.source {
                    owned[g] = true;
                }
                for (pos, limb) in words.chunks_mut(n).enumerate() {
                    positions[pos].converted.push((!owned[pos]).then_some(limb));
                }
            }
            let (mut source_positions, target_positions): (Vec<_>, Vec<_>) = positions
                .into_iter()
                .partition(|p| sources.contains(&p.index));
            source_positions.sort_by_key(|p| sources.iter().position(|&s| s == p.index));

            // 3. The accumulators on the division's source primes.
            let mut acc = [
                Scratch::take(n * sources.len()),
                Scratch::take(n * sources.len()),
            ];
            {
                let [acc0, acc1] = &mut acc;
                source_positions
                    .par_iter_mut()
                    .zip(acc0.par_chunks_mut(n).zip(acc1.par_chunks_mut(n)))
                    .for_each(|(p, (a0, a1))| {
                        self.inner_product_at(ring, p, [None, None], input, &keys, addend, a0, a1)
                    });
            }

            // 4. Their centered conversion to the output primes, written into
            //    the outputs, or into scratch when an automorphism follows
            //    (it cannot permute in place).
            let words = n * inverses.len();
            let mut scratch = finish
                .is_some()
                .then(|| [Scratch::take(words), Scratch::take(words)]);
            let (divided, permuted) = match &mut scratch {
                Some([d0, d1]) => ([&mut d0[..], &mut d1[..]], Some([out0, out1])),
                None => ([out0, out1], None),
            };
            let [d0, d1] = divided;
            {
                // Both accumulators' limbs of one prime one after the other.
                let [acc0, acc1] = &mut acc;
                acc0.par_chunks_mut(n)
                    .zip(acc1.par_chunks_mut(n))
                    .zip(conv.source.par_iter().zip(&conv.source_hat_inv))
                    .for_each(|((l0, l1), (&g, &w))| {
                        inverse_ntt_times(ring, g, l0, w);
                        inverse_ntt_times(ring, g, l1, w);
                    });
            }
            for (a, out) in acc.iter_mut().zip([&mut *d0, &mut *d1]) {
                let overflows = centered_overflows(ring, conv, a, n);
                convert_limbs(
                    ring,
                    conv,
                    a,
                    Some(&overflows),
                    out.chunks_mut(n).enumerate().collect(),
                );
            }

            // 5. The output limbs: (acc − conv)·inverse, then, with an
            //    automorphism, the addend and the permutation at once, while
            //    the limb is in cache.
            let permuted: Vec<Option<[&mut [u64]; 2]>> = match permuted {
                Some([p0, p1]) => p0
                    .chunks_mut(n)
                    .zip(p1.chunks_mut(n))
                    .map(|(a, b)| Some([a, b]))
                    .collect(),
                None => (0..inverses.len()).map(|_| None).collect(),
            };
            let mut targets: Vec<_> = target_positions
                .into_iter()
                .zip(d0.chunks_mut(n).zip(d1.chunks_mut(n)))
                .zip(permuted)
                .collect();
            targets
                .par_iter_mut()
                .for_each(|((p, (t0, t1)), permuted)| {
                    let i = p.modulus;
                    let mut a0 = Scratch::take(n);
                    let mut a1 = Scratch::take(n);
                    let more = [Some(&mut **t0), Some(&mut **t1)];
                    self.inner_product_at(ring, p, more, input, &keys, addend, &mut a0, &mut a1);
                    let m = ring.moduli()[i];
                    for (k, (t, a)) in [(&mut **t0, &a0), (&mut **t1, &a1)].into_iter().enumerate()
                    {
                        subtract_then_scale(&m, a, inverses[i], t);
                        if let (Some((perm, addend)), Some(out)) = (&finish, permuted.as_mut()) {
                            if k == 0 {
                                add_limb(&m, t, &addend[i * n..(i + 1) * n]);
                            }
                            permute_limb(t, perm, out[k]);
                        }
                    }
                });
        });
        Ok(())
    }

    /// At one position: NTTs of the converted digit limbs and of the `more`
    /// limbs (same prime, one after the other while its twiddles are in
    /// cache: the key limbs read next would evict them), then
    /// `a0 = Σ_j d_j·b_j`, `a1 = Σ_j d_j·a_j` (key limbs at the position's
    /// modulus), plus `P·addend` on a Q prime when rescaling.
    #[allow(clippy::too_many_arguments)]
    fn inner_product_at(
        &self,
        ring: &RingContext,
        p: &mut Position<'_>,
        more: [Option<&mut [u64]>; 2],
        input: &[u64],
        keys: &KeyWords<'_>,
        addend: Option<[&[u64]; 2]>,
        a0: &mut [u64],
        a1: &mut [u64],
    ) {
        let n = ring.n();
        let g = p.modulus;
        let ntt = ring.ntt(g);
        for limb in p.converted.iter_mut().flatten() {
            ntt.forward(limb);
        }
        for limb in more.into_iter().flatten() {
            ntt.forward(limb);
        }
        // Only a Q position has an owning digit, whose limb is the input's.
        let own = || &input[p.index * n..(p.index + 1) * n];
        let terms: Vec<(&[u64], &[u64], &[u64])> = p
            .converted
            .iter()
            .enumerate()
            .map(|(j, limb)| {
                let words: &[u64] = limb.as_deref().unwrap_or_else(own);
                let (b, a) = keys.limbs(j, g, n);
                (words, b, a)
            })
            .collect();
        let m = ring.moduli()[g];
        dot2_limb(&m, &terms, a0, a1);
        if let (Some([c0, c1]), true) = (addend, g < ring.num_q()) {
            let p_mod_q = ring.p_mod_q(g);
            scale_and_add(&m, &c0[g * n..(g + 1) * n], p_mod_q, a0);
            scale_and_add(&m, &c1[g * n..(g + 1) * n], p_mod_q, a1);
        }
    }
}

/// The limbs at positions `limbs` of `words` (N words each), contiguous: a
/// borrow when they already are (a digit's primes are consecutive), a copy
/// otherwise.
fn gather_limbs<'a>(words: &'a [u64], limbs: &[usize], n: usize) -> std::borrow::Cow<'a, [u64]> {
    let first = limbs.first().copied().unwrap_or(0);
    if limbs.iter().enumerate().all(|(k, &g)| g == first + k) {
        return std::borrow::Cow::Borrowed(&words[first * n..(first + limbs.len()) * n]);
    }
    std::borrow::Cow::Owned(
        limbs
            .iter()
            .flat_map(|&g| &words[g * n..(g + 1) * n])
            .copied()
            .collect(),
    )
}
