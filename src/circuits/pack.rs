//! Many sparse ciphertexts in one, and back: so that one bootstrap refreshes
//! them all.
//!
//! A ciphertext of `n` slots encrypts a polynomial in `Z[X^g]`, `g =
//! N/(2n)`. Up to `k = S/n` of them (`S` the packed slot count, `g_S =
//! N/(2S)`) pack into one of `S` slots as `P = Σ_t X^(t·g_S)·a_t`: their
//! coefficients interleave without overlapping (monomial products: exact,
//! no level, no key; [`pack`]). Unpacking ([`unpack`]) is a tree of
//! `log2 k` stages and `k − 1` rotations: a piece `Q ∈ Z[X^h]` holding the
//! blocks whose offsets agree modulo `h` splits by the automorphism
//! `τ_h: X ↦ X^(1 + N/h)` (it fixes `X^(2h)` and negates `X^h`; it is the
//! rotation by `N/(4h)`) into `Q + τ_h(Q)` and `X^(−h)·(Q − τ_h(Q))`. The
//! leaves hold `k·a_t`; the factor is taken back by relabelling the scale.
//! The rotations are `n, 2n, .., S/2` ([`unpack_rotations`]), those of a
//! bootstrap's SubSum for `n` slots.
//!
//! Inputs must share their level and scale; the pieces keep both (the
//! leaves' scale is `k` times the input's, relabelled). Bounds: the packed
//! ciphertext's coefficients are the blocks' own, so a bound on the blocks'
//! values bounds it for bootstrapping (its slot values are not the blocks').

use crate::ckks::{Ciphertext, Evaluator};
use crate::error::{Error, Result};

const OP: &str = "pack";

/// How many ciphertexts of `slots` slots fit in one of `packed_slots`.
pub fn capacity(slots: usize, packed_slots: usize) -> usize {
    (packed_slots / slots.max(1)).max(1)
}

/// The rotations [`unpack`] uses for blocks of `slots` slots packed into
/// `packed_slots`.
pub fn unpack_rotations(slots: usize, packed_slots: usize) -> Vec<i64> {
    std::iter::successors(Some(slots), |&s| Some(2 * s))
        .take_while(|&s| s < packed_slots)
        .map(|s| s as i64)
        .collect()
}

/// Checks that `cts` can be packed into `packed_slots` slots.
fn check(cts: &[&Ciphertext], packed_slots: usize) -> Result<usize> {
    let first = cts.first().ok_or_else(|| Error::OutOfRange {
        op: OP,
        detail: "nothing to pack".into(),
    })?;
    let slots = first.slots();
    if let Some(other) = cts.iter().find(|ct| {
        ct.slots() != slots || ct.level() != first.level() || ct.scale() != first.scale()
    }) {
        return Err(Error::OutOfRange {
            op: OP,
            detail: format!(
                "packed ciphertexts share slots, level and scale: {} / {} / 2^{:.3} against {} / {} / 2^{:.3}",
                slots,
                first.level(),
                first.scale().log2(),
                other.slots(),
                other.level(),
                other.scale().log2()
            ),
        });
    }
    if !packed_slots.is_power_of_two() || slots > packed_slots || cts.len() > packed_slots / slots {
        return Err(Error::OutOfRange {
            op: OP,
            detail: format!(
                "{} ciphertexts of {slots} slots do not fit {packed_slots} slots",
                cts.len()
            ),
        });
    }
    Ok(slots)
}

/// `Σ_t X^(t·g_S)·cts[t]` as a ciphertext of `packed_slots` slots.
pub fn pack(ev: &Evaluator, cts: &[&Ciphertext], packed_slots: usize) -> Result<Ciphertext> {
    check(cts, packed_slots)?;
    let gap = ev.context().params().max_slots() / packed_slots;
    let mut packed = cts[0].try_clone()?;
    for (t, ct) in cts.iter().enumerate().skip(1) {
        let mut shifted = ct.try_clone()?;
        ev.mul_monomial_assign(&mut shifted, t * gap)?;
        ev.add_assign(&mut packed, &shifted)?;
    }
    packed.slots = packed_slots;
    Ok(packed)
}

/// The first `count` ciphertexts of `slots` slots packed in `packed` (see
/// the module docs), each at `packed`'s level with its scale relabelled.
pub fn unpack(
    ev: &Evaluator,
    packed: &Ciphertext,
    count: usize,
    slots: usize,
) -> Result<Vec<Ciphertext>> {
    let packed_slots = packed.slots();
    if !slots.is_power_of_two() || slots > packed_slots || count > packed_slots / slots {
        return Err(Error::OutOfRange {
            op: OP,
            detail: format!("{count} blocks of {slots} slots are not in {packed_slots} slots"),
        });
    }
    let n = ev.context().n();
    let k = packed_slots / slots;
    let gap = n / (2 * packed_slots);
    let mut leaves: Vec<Option<Ciphertext>> = (0..k).map(|_| None).collect();
    split(ev, packed.try_clone()?, gap, gap * k, 0, count, &mut leaves)?;
    leaves
        .into_iter()
        .take(count)
        .map(|leaf| {
            let mut leaf = leaf.ok_or_else(|| Error::OutOfRange {
                op: OP,
                detail: "internal: a block was not unpacked".into(),
            })?;
            leaf.scale *= k as f64;
            leaf.slots = slots;
            Ok(leaf)
        })
        .collect()
}

/// Splits `piece ∈ Z[X^h]` (the blocks at offsets `≡ offset (mod h)`, in
/// units of the packing gap `gap`) down to `X^leaf_gap`, storing the leaves
/// of blocks below `count`; branches holding no wanted block are skipped.
fn split(
    ev: &Evaluator,
    piece: Ciphertext,
    h: usize,
    leaf_gap: usize,
    offset: usize,
    count: usize,
    leaves: &mut [Option<Ciphertext>],
) -> Result<()> {
    let gap = leaf_gap / leaves.len();
    if offset / gap >= count {
        return Ok(());
    }
    if h == leaf_gap {
        leaves[offset / gap] = Some(piece);
        return Ok(());
    }
    let n = ev.context().n();
    let rotated = ev.rotate_new(&piece, (n / (4 * h)) as i64)?;
    let even = ev.add_new(&piece, &rotated)?;
    let mut odd = ev.sub_new(&piece, &rotated)?;
    drop(piece);
    ev.mul_monomial_assign(&mut odd, 2 * n - h)?;
    split(ev, even, 2 * h, leaf_gap, offset, count, leaves)?;
    split(ev, odd, 2 * h, leaf_gap, offset + h, count, leaves)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotations_are_the_sub_sum_steps() {
        assert_eq!(unpack_rotations(64, 1024), vec![64, 128, 256, 512]);
        assert_eq!(unpack_rotations(1024, 1024), Vec::<i64>::new());
        assert_eq!(capacity(64, 1024), 16);
    }
}
