//! Baby-step giant-step rotations: the rotations by `stride·t` for a range
//! of `t`, each the composition of a hoisted baby rotation and a giant one,
//! so that a family of `m` rotations needs about `2√m` keys instead of `m`.
//!
//! With the baby step `g`, `t = g·j + b` (`0 <= b < g`, `j = ⌊t/g⌋`) and
//! `rot(x, stride·t) = rot(rot(x, stride·b), stride·g·j)`. The keys are the
//! baby steps `stride·b` (`b ≠ 0`) and the giant steps `stride·g·j`
//! (`j ≠ 0`), each requested as its representative in `(−n/2, n/2]` (see
//! [`circuits::linear`](crate::circuits::linear)). A [`LinearTransform`]
//! whose diagonals are the `stride·t` uses the same keys when evaluated with
//! the baby step `stride·g` ([`RotationSplit::unit`]).
//!
//! [`LinearTransform`]: crate::circuits::linear::LinearTransform

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use crate::circuits::linear::step;
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::Result;

/// The rotations by `stride·t`, `t` in `first..=last`, split with baby step
/// `baby` (see the module docs).
///
/// Invariants: `baby >= 1`, `last − first + 1 >= baby` (every baby part
/// occurs), `stride·baby <= slots`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RotationSplit {
    slots: usize,
    stride: usize,
    baby: usize,
    first: i64,
    last: i64,
}

/// Rotations of `ct` by `steps` from one decomposition (none for no steps).
fn hoisted(ev: &Evaluator, ct: &Ciphertext, steps: &[i64]) -> Result<Vec<Ciphertext>> {
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    ev.rotate_hoisted_new(ct, steps)
}

impl RotationSplit {
    /// The split of `stride·t` for `t` in `range` over `slots` slots, baby
    /// step `baby` (see the invariants).
    pub(crate) fn new(
        slots: usize,
        stride: usize,
        baby: usize,
        range: RangeInclusive<i64>,
    ) -> Self {
        let (first, last) = (*range.start(), *range.end());
        debug_assert!(baby >= 1 && last - first + 1 >= baby as i64 && stride * baby <= slots);
        Self {
            slots,
            stride,
            baby,
            first,
            last,
        }
    }

    /// The range of `t`.
    pub(crate) fn range(&self) -> RangeInclusive<i64> {
        self.first..=self.last
    }

    /// `stride·baby`: the baby step of a linear transform on the diagonals
    /// `stride·t` that uses the same keys.
    pub(crate) fn unit(&self) -> usize {
        self.stride * self.baby
    }

    /// The giant and baby parts `(j, b)` of `t`.
    fn parts(&self, t: i64) -> (i64, usize) {
        let g = self.baby as i64;
        (t.div_euclid(g), t.rem_euclid(g) as usize)
    }

    /// The rotation step of `stride·offset` (offset in units of `stride`).
    fn step(&self, offset: i64) -> i64 {
        step(self.shift(offset), self.slots)
    }

    /// `stride·offset` modulo the slot count.
    fn shift(&self, offset: i64) -> usize {
        (self.stride as i64 * offset).rem_euclid(self.slots as i64) as usize
    }

    /// The slot offset of `t`'s giant rotation, modulo the slot count.
    pub(crate) fn giant_shift(&self, t: i64) -> usize {
        self.shift(self.baby as i64 * self.parts(t).0)
    }

    /// The giant parts `j` that occur, ascending.
    pub(crate) fn giants(&self) -> RangeInclusive<i64> {
        self.parts(self.first).0..=self.parts(self.last).0
    }

    /// The rotation step of the giant part `j`.
    pub(crate) fn giant_step(&self, j: i64) -> i64 {
        self.step(self.baby as i64 * j)
    }

    /// The `t` of the giant part `j`, as pairs (position of `t` in the
    /// range, `t`'s baby part).
    pub(crate) fn group(&self, j: i64) -> impl Iterator<Item = (usize, usize)> + '_ {
        let g = self.baby as i64;
        (self.first.max(g * j)..=self.last.min(g * j + g - 1))
            .map(move |t| ((t - self.first) as usize, self.parts(t).1))
    }

    /// Every key the rotations use, sorted: the baby steps and the giant
    /// steps but 0.
    pub(crate) fn rotations(&self) -> Vec<i64> {
        let giants = self.giants().filter(|&j| j != 0);
        let mut steps: Vec<i64> = (1..self.baby as i64).map(|b| self.step(b)).collect();
        steps.extend(giants.map(|j| self.giant_step(j)));
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    /// `x` and its rotations by the baby steps hoisted from one
    /// decomposition: copy `b` is `rot(x, stride·b)`, `b = 0..baby`.
    pub(crate) fn baby_copies(&self, ev: &Evaluator, x: Ciphertext) -> Result<Vec<Ciphertext>> {
        let steps: Vec<i64> = (1..self.baby as i64).map(|b| self.step(b)).collect();
        let rotated = hoisted(ev, &x, &steps)?;
        Ok(std::iter::once(x).chain(rotated).collect())
    }

    /// Every `rot(x, stride·t)`, ascending `t`, from the
    /// [`baby_copies`](Self::baby_copies) of `x`: the giant rotations of a
    /// copy are hoisted from one decomposition of it.
    pub(crate) fn all_rotations(
        &self,
        ev: &Evaluator,
        copies: Vec<Ciphertext>,
    ) -> Result<Vec<Ciphertext>> {
        let mut by_t = BTreeMap::new();
        for (b, copy) in copies.into_iter().enumerate() {
            let (unrotated, rotated): (Vec<i64>, Vec<i64>) = self
                .range()
                .filter(|&t| self.parts(t).1 == b)
                .partition(|&t| self.parts(t).0 == 0);
            let steps: Vec<i64> = rotated
                .iter()
                .map(|&t| self.giant_step(self.parts(t).0))
                .collect();
            by_t.extend(rotated.into_iter().zip(hoisted(ev, &copy, &steps)?));
            if let Some(t) = unrotated.first() {
                by_t.insert(*t, copy);
            }
        }
        Ok(by_t.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuits::linear::LinearTransform;
    use crate::math::Complex;

    /// Splits of `stride·t` over `n` slots with the transform on the same
    /// diagonals.
    fn cases() -> Vec<(RotationSplit, LinearTransform)> {
        let mut cases = Vec::new();
        for (n, stride, baby, range) in [
            (1024, 1, 8, -31..=31),
            (1024, 1, 4, -31..=31),
            (1024, 32, 4, 0..=31),
            (1024, 32, 8, 0..=31),
            (64, 1, 4, -7..=7),
            (4, 1, 2, -1..=1),
            (1, 1, 1, 0..=0),
            (256, 3, 5, 2..=40),
        ] {
            let split = RotationSplit::new(n, stride, baby, range.clone());
            let ones = vec![Complex::from(1.0); n];
            let diagonals = range.map(|t| (stride as i64 * t, ones.clone()));
            let transform = LinearTransform::from_diagonals(n, diagonals)
                .unwrap()
                .with_baby_step(split.unit())
                .unwrap();
            cases.push((split, transform));
        }
        cases
    }

    #[test]
    fn baby_and_giant_parts_compose_to_every_step() {
        for (split, _) in cases() {
            let n = split.slots as i64;
            let mut seen = vec![0; split.range().count()];
            for j in split.giants() {
                for (position, b) in split.group(j) {
                    let t = split.first + position as i64;
                    seen[position] += 1;
                    assert!(b < split.baby);
                    let composed = (split.shift(b as i64) + split.giant_shift(t)) as i64;
                    assert_eq!(composed % n, (split.stride as i64 * t).rem_euclid(n));
                    assert_eq!(split.step(t - b as i64), split.giant_step(j));
                }
            }
            assert!(seen.iter().all(|&count| count == 1), "{split:?}");
        }
    }

    #[test]
    fn keys_are_those_of_the_transform_with_the_same_unit() {
        for (split, transform) in cases() {
            assert_eq!(split.rotations(), transform.rotations(), "{split:?}");
        }
    }
}
