//! Homomorphic linear transforms by the diagonal method, with baby-step
//! giant-step (BSGS) and hoisted baby-step rotations.
//!
//! # Conventions
//!
//! A transform acts on the `n = slots` complex slots of a ciphertext (`n` a
//! power of two, `n <= N/2`; fewer than N/2 is sparse packing). Indices are
//! taken modulo `n`.
//!
//! - **Rotation.** `rot(x, k)[i] = x[(i + k) mod n]` (left by `k`), which is
//!   what [`Evaluator::rotate_new`]`(ct, k)` does to the slots.
//! - **Diagonals.** For an `n × n` complex matrix `M`, diagonal `k`
//!   (`0 <= k < n`) is `diag_k[i] = M[i][(i + k) mod n]`, so that
//!   `M·x = Σ_k diag_k ⊙ rot(x, k)`. A transform stores exactly its diagonals
//!   with a non-zero entry (at least one); [`LinearTransform::from_diagonals`]
//!   also accepts negative indices (`−1` is `n − 1`).
//! - **Rotation steps.** A rotation by `k mod n` is requested as the
//!   representative of `k` in `(−n/2, n/2]`: with sparse packing `k` and
//!   `k − n` rotate the slots alike but are different Galois elements, and
//!   this choice makes `−1` (not `n − 1`) the key a transform asks for.
//!
//! # Baby-step giant-step
//!
//! With a baby step `n1` (`1 <= n1 <= n`), write each diagonal index as
//! `k = j + i` with the giant offset `j = n1·⌊k/n1⌋` and the baby offset
//! `i = k mod n1`. Then
//!
//! ```text
//! M·x = Σ_j rot( Σ_i rot(diag_{j+i}, −j) ⊙ rot(x, i), j ).
//! ```
//!
//! The rotations `rot(x, i)` of the input are *hoisted*: one decomposition
//! of the input serves all of them ([`Evaluator::rotate_hoisted_new`]). Each
//! inner sum is rotated once by its giant offset `j`, before any rescale, so
//! that the key-switching noise of the giant steps is divided by the
//! rescale. The diagonals are rotated by `−j` in the clear and encoded once
//! ([`LinearTransform::encode`]). The cost is one plaintext product per
//! diagonal, `|{i ≠ 0}|` hoisted and `|{j ≠ 0}|` full rotations. The
//! automatic `n1` is the power of two that minimises the number of rotations
//! for the transform's own diagonal set (ties go to the larger `n1`: hoisted
//! rotations are cheaper); for a dense matrix it is about `√n` (`n1 = 32` for
//! `n = 1024`: 31 hoisted and 31 full rotations).
//! [`LinearTransform::with_baby_step`] overrides it.
//!
//! # Scale and level
//!
//! An [`EncodedLinearTransform`] holds its diagonals at one level `l` and one
//! scale. [`LinearTransform::encode`] uses the scale `q_l` (the default), so
//! the product has scale `scale(ct)·q_l` and the rescale that follows
//! restores `scale(ct)` exactly and consumes one level;
//! [`LinearTransform::encode_with_scale`] takes any scale. A ciphertext above
//! level `l` is dropped to `l` first (exact); one below it is refused.
//!
//! # Composition and sequences
//!
//! [`LinearTransform::compose`] multiplies two transforms in the clear on
//! their diagonals (`A.compose(&B)` is `x ↦ A·(B·x)`). [`evaluate_sequence`]
//! applies encoded transforms in list order, each followed by a rescale
//! (one level each, as the factors of a level-collapsed homomorphic DFT),
//! and [`encode_sequence`] encodes a list for that: factor `t` at level
//! `level − t`.
//!
//! # Conjugate-aware maps
//!
//! A map that acts on the real and imaginary parts separately is
//! `x ↦ M1·x + M2·conj(x)` (for instance `Re(x) = (x + conj(x))/2`:
//! `M1 = M2 = I/2`). [`evaluate_with_conjugate`] computes it from two encoded
//! transforms at the same level and scale and one conjugation
//! ([`Evaluator::conjugate_new`]); its keys are the union of both transforms'
//! [`rotations`](LinearTransform::rotations) plus the conjugation key. When
//! the conjugation follows the map instead (`y = M·x`, then `y ± conj(y)`),
//! evaluate `M` and conjugate its output once.

use std::collections::{BTreeMap, BTreeSet};

use crate::ckks::embedding::{galois_element_for_conjugation, galois_element_for_rotation};
use crate::ckks::{Ciphertext, Encoder, Evaluator, Plaintext};
use crate::error::{Error, Result};
use crate::math::Complex;

/// The operation name of homomorphic evaluation in errors.
const OP: &str = "linear_transform";

/// A plaintext linear map on `slots` complex slots, by its non-zero
/// diagonals (see the module docs for the conventions).
///
/// Invariants: `slots` is a power of two; every stored diagonal has index
/// `< slots`, `slots` finite entries, at least one of them non-zero; at least
/// one diagonal is stored; `1 <= baby_step <= slots`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearTransform {
    slots: usize,
    diagonals: BTreeMap<usize, Vec<Complex>>,
    baby_step: usize,
}

/// The non-zero baby and giant offsets of `indices` with baby step `n1`.
fn offsets(indices: impl Iterator<Item = usize>, n1: usize) -> (BTreeSet<usize>, BTreeSet<usize>) {
    let (mut baby, mut giant) = (BTreeSet::new(), BTreeSet::new());
    for k in indices {
        let i = k % n1;
        if i != 0 {
            baby.insert(i);
        }
        if k != i {
            giant.insert(k - i);
        }
    }
    (baby, giant)
}

/// The representative of `k mod n` in `(−n/2, n/2]`, as a rotation step.
pub(crate) fn step(k: usize, n: usize) -> i64 {
    if 2 * k > n {
        k as i64 - n as i64
    } else {
        k as i64
    }
}

impl LinearTransform {
    /// The transform of the square matrix `rows` (`rows[i][j] = M[i][j]`);
    /// its size must be a power of two.
    pub fn from_dense(rows: &[Vec<Complex>]) -> Result<Self> {
        const OP: &str = "LinearTransform::from_dense";
        let n = rows.len();
        if let Some(row) = rows.iter().find(|row| row.len() != n) {
            return Err(Error::LengthMismatch {
                op: OP,
                got: row.len(),
                expected: n,
            });
        }
        let diagonals = (0..n)
            .map(|k| (k, (0..n).map(|i| rows[i][(i + k) % n]).collect()))
            .collect();
        Self::new(OP, n, diagonals)
    }

    /// The transform with the given diagonals (`(k, diag_k)`, `k` taken
    /// modulo `slots`, each of length `slots`); an index given twice (also as
    /// `k` and `k − slots`) is an error, all-zero diagonals are dropped.
    pub fn from_diagonals(
        slots: usize,
        diagonals: impl IntoIterator<Item = (i64, Vec<Complex>)>,
    ) -> Result<Self> {
        const OP: &str = "LinearTransform::from_diagonals";
        check_slots(OP, slots)?;
        let mut map = BTreeMap::new();
        for (k, diag) in diagonals {
            if diag.len() != slots {
                return Err(Error::LengthMismatch {
                    op: OP,
                    got: diag.len(),
                    expected: slots,
                });
            }
            let index = k.rem_euclid(slots as i64) as usize;
            if map.insert(index, diag).is_some() {
                return Err(Error::OutOfRange {
                    op: OP,
                    detail: format!("diagonal {index} (given as {k}) appears twice"),
                });
            }
        }
        Self::new(OP, slots, map)
    }

    /// Validates, drops all-zero diagonals and picks the baby step.
    fn new(
        op: &'static str,
        slots: usize,
        diagonals: BTreeMap<usize, Vec<Complex>>,
    ) -> Result<Self> {
        check_slots(op, slots)?;
        if diagonals
            .values()
            .flatten()
            .any(|z| !(z.re.is_finite() && z.im.is_finite()))
        {
            return Err(Error::OutOfRange {
                op,
                detail: "matrix entries must be finite".into(),
            });
        }
        let diagonals: BTreeMap<usize, Vec<Complex>> = diagonals
            .into_iter()
            .filter(|(_, d)| d.iter().any(|&z| z != Complex::ZERO))
            .collect();
        if diagonals.is_empty() {
            return Err(Error::OutOfRange {
                op,
                detail: "the zero map has no diagonal to evaluate".into(),
            });
        }
        let mut transform = Self {
            slots,
            diagonals,
            baby_step: 1,
        };
        transform.baby_step = transform.best_baby_step();
        Ok(transform)
    }

    /// The power of two that minimises the rotations (the larger on ties).
    fn best_baby_step(&self) -> usize {
        (0..=self.slots.trailing_zeros())
            .map(|t| 1usize << t)
            .min_by_key(|&n1| {
                let (baby, giant) = offsets(self.diagonals.keys().copied(), n1);
                (baby.len() + giant.len(), std::cmp::Reverse(n1))
            })
            .unwrap_or(1)
    }

    /// The same transform evaluated with baby step `n1` (`1 <= n1 <= slots`)
    /// instead of the automatic choice.
    pub fn with_baby_step(mut self, n1: usize) -> Result<Self> {
        if n1 == 0 || n1 > self.slots {
            return Err(Error::OutOfRange {
                op: "LinearTransform::with_baby_step",
                detail: format!("baby step {n1} must be in 1..={}", self.slots),
            });
        }
        self.baby_step = n1;
        Ok(self)
    }

    /// Number of slots the transform acts on.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The baby step `n1` of the evaluation.
    pub fn baby_step(&self) -> usize {
        self.baby_step
    }

    /// The stored (non-zero) diagonals by index `k` in `0..slots`.
    pub fn diagonals(&self) -> &BTreeMap<usize, Vec<Complex>> {
        &self.diagonals
    }

    /// Diagonal `k` (taken modulo `slots`), `None` when it is zero.
    pub fn diagonal(&self, k: i64) -> Option<&[Complex]> {
        self.diagonals
            .get(&(k.rem_euclid(self.slots as i64) as usize))
            .map(Vec::as_slice)
    }

    fn offsets(&self) -> (BTreeSet<usize>, BTreeSet<usize>) {
        offsets(self.diagonals.keys().copied(), self.baby_step)
    }

    /// The hoisted rotation steps applied to the input, ascending offsets.
    pub fn baby_steps(&self) -> Vec<i64> {
        let n = self.slots;
        self.offsets().0.into_iter().map(|i| step(i, n)).collect()
    }

    /// The rotation steps applied to the partial sums, ascending offsets.
    pub fn giant_steps(&self) -> Vec<i64> {
        let n = self.slots;
        self.offsets().1.into_iter().map(|j| step(j, n)).collect()
    }

    /// Every rotation step the evaluation uses, sorted and without repeats:
    /// the steps to pass to [`KeyGenerator::gen_galois_keys`](crate::ckks::KeyGenerator::gen_galois_keys).
    pub fn rotations(&self) -> Vec<i64> {
        let mut steps = self.baby_steps();
        steps.extend(self.giant_steps());
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    fn check_len(&self, op: &'static str, len: usize) -> Result<()> {
        if len != self.slots {
            return Err(Error::LengthMismatch {
                op,
                got: len,
                expected: self.slots,
            });
        }
        Ok(())
    }

    /// `M·x` in the clear (`x` of length `slots`).
    pub fn apply_plain(&self, x: &[Complex]) -> Result<Vec<Complex>> {
        self.check_len("LinearTransform::apply_plain", x.len())?;
        let n = self.slots;
        let mut y = vec![Complex::ZERO; n];
        for (&k, diag) in &self.diagonals {
            for (i, yi) in y.iter_mut().enumerate() {
                *yi += diag[i] * x[(i + k) % n];
            }
        }
        Ok(y)
    }

    /// The product `self · inner` (`x ↦ self(inner(x))`) on the diagonals:
    /// diagonal `a + b` gains `diag_a[i] · inner.diag_b[i + a]`. Costs
    /// `O(d_self · d_inner · slots)`; the baby step is chosen anew.
    pub fn compose(&self, inner: &LinearTransform) -> Result<LinearTransform> {
        const OP: &str = "LinearTransform::compose";
        self.check_len(OP, inner.slots)?;
        let n = self.slots;
        let mut product: BTreeMap<usize, Vec<Complex>> = BTreeMap::new();
        for (&a, da) in &self.diagonals {
            for (&b, db) in &inner.diagonals {
                let d = product
                    .entry((a + b) % n)
                    .or_insert_with(|| vec![Complex::ZERO; n]);
                for (i, di) in d.iter_mut().enumerate() {
                    *di += da[i] * db[(i + a) % n];
                }
            }
        }
        Self::new(OP, n, product)
    }

    /// Encodes the diagonals for a ciphertext at `level` at the scale `q_level`
    /// (the following rescale restores the ciphertext's scale exactly).
    pub fn encode(&self, encoder: &Encoder, level: usize) -> Result<EncodedLinearTransform> {
        let params = encoder.context().params();
        encoder
            .context()
            .check_level("LinearTransform::encode", level)?;
        self.encode_with_scale(encoder, level, params.q()[level] as f64)
    }

    /// Encodes the diagonals, pre-rotated by their giant offsets, at `level`
    /// and `scale`.
    pub fn encode_with_scale(
        &self,
        encoder: &Encoder,
        level: usize,
        scale: f64,
    ) -> Result<EncodedLinearTransform> {
        let n = self.slots;
        let n1 = self.baby_step;
        let (baby, _) = self.offsets();
        // Position of each baby offset among the rotated copies of the input
        // (0 is the input itself).
        let position: BTreeMap<usize, usize> = std::iter::once(0)
            .chain(baby.iter().copied())
            .enumerate()
            .map(|(p, i)| (i, p))
            .collect();
        let mut groups: BTreeMap<usize, Vec<(usize, Plaintext)>> = BTreeMap::new();
        for (&k, diag) in &self.diagonals {
            let (j, i) = (k - k % n1, k % n1);
            let shifted: Vec<Complex> = (0..n).map(|s| diag[(s + n - j) % n]).collect();
            let pt = encoder.encode_complex(&shifted, level, scale)?;
            groups.entry(j).or_default().push((position[&i], pt));
        }
        Ok(EncodedLinearTransform {
            slots: n,
            level,
            scale,
            params_id: encoder.context().params().id(),
            baby_steps: baby.into_iter().map(|i| step(i, n)).collect(),
            groups: groups
                .into_iter()
                .map(|(j, terms)| GiantGroup {
                    step: step(j, n),
                    terms,
                })
                .collect(),
            rotations: self.rotations(),
        })
    }
}

fn check_slots(op: &'static str, slots: usize) -> Result<()> {
    if !slots.is_power_of_two() {
        return Err(Error::OutOfRange {
            op,
            detail: format!("slot count {slots} must be a power of two"),
        });
    }
    Ok(())
}

/// The diagonals sharing one giant offset `j` (rotation `step`): pairs of
/// the input copy they multiply, an index into
/// `[input, rot(input, baby_steps[0]), rot(input, baby_steps[1]), ..]`, and
/// the diagonal rotated by `−j`, encoded.
#[derive(Debug, Clone)]
struct GiantGroup {
    step: i64,
    terms: Vec<(usize, Plaintext)>,
}

/// A [`LinearTransform`] with its diagonals encoded for one level and scale,
/// ready to evaluate.
#[derive(Debug, Clone)]
pub struct EncodedLinearTransform {
    slots: usize,
    level: usize,
    scale: f64,
    params_id: u64,
    /// The hoisted rotations of the input, ascending baby offsets.
    baby_steps: Vec<i64>,
    /// Ascending giant offsets (offset 0, unrotated, first when present).
    groups: Vec<GiantGroup>,
    rotations: Vec<i64>,
}

/// Fails with `MissingGaloisKey` unless `ev` holds the key of `g`.
fn check_key(ev: &Evaluator, g: u64, what: impl FnOnce() -> String) -> Result<()> {
    match ev.keys().galois.get(g) {
        Some(_) => Ok(()),
        None => Err(Error::MissingGaloisKey {
            op: OP,
            galois_element: g,
            what: what(),
        }),
    }
}

/// `ct` dropped to `level` when it is above it (`None`: already there).
fn at_level(ev: &Evaluator, ct: &Ciphertext, level: usize) -> Result<Option<Ciphertext>> {
    if ct.level() <= level {
        return Ok(None);
    }
    let mut out = ct.try_clone()?;
    ev.drop_level_assign(&mut out, ct.level() - level)?;
    Ok(Some(out))
}

/// The sum of `terms` (at least one).
pub(crate) fn sum(
    ev: &Evaluator,
    mut terms: impl Iterator<Item = Result<Ciphertext>>,
) -> Result<Ciphertext> {
    let mut acc = terms.next().ok_or_else(|| Error::OutOfRange {
        op: OP,
        detail: "nothing to sum".into(),
    })??;
    for term in terms {
        ev.add_assign(&mut acc, &term?)?;
    }
    Ok(acc)
}

impl EncodedLinearTransform {
    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The level of the diagonals (the level the input is brought to).
    pub fn level(&self) -> usize {
        self.level
    }

    /// The scale of the diagonals.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The rotation steps the evaluation uses (see [`LinearTransform::rotations`]).
    pub fn rotations(&self) -> &[i64] {
        &self.rotations
    }

    /// Everything that can be checked before any rotation: parameter sets,
    /// slot count, level, the level a rescale needs, and every key.
    fn check(
        &self,
        ev: &Evaluator,
        ct_params: u64,
        slots: usize,
        level: usize,
        rescale: bool,
    ) -> Result<()> {
        let ctx = ev.context();
        ctx.check_params(OP, self.params_id)?;
        ctx.check_params(OP, ct_params)?;
        if slots != self.slots {
            return Err(Error::LengthMismatch {
                op: OP,
                got: slots,
                expected: self.slots,
            });
        }
        if level < self.level {
            return Err(Error::LevelMismatch {
                op: OP,
                detail: format!(
                    "ciphertext at level {level} below the transform's level {}",
                    self.level
                ),
            });
        }
        if rescale && self.level == 0 {
            return Err(Error::OutOfLevels {
                op: OP,
                level: 0,
                needed: 1,
            });
        }
        let log_n = ctx.params().log_n();
        for &k in &self.rotations {
            check_key(ev, galois_element_for_rotation(log_n, k), || {
                format!("rotation by {k}")
            })?;
        }
        Ok(())
    }

    /// `M·ct`, unrescaled, at the transform's level with scale
    /// `scale(ct) · self.scale()`; optionally rescaled (one level less).
    pub fn evaluate(&self, ev: &Evaluator, ct: &Ciphertext, rescale: bool) -> Result<Ciphertext> {
        self.check(ev, ct.params_id(), ct.slots(), ct.level(), rescale)?;
        let mut out = self.product(ev, ct)?;
        if rescale {
            ev.rescale_assign(&mut out)?;
        }
        Ok(out)
    }

    /// The BSGS evaluation (checks done by the caller).
    fn product(&self, ev: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        let lowered = at_level(ev, ct, self.level)?;
        let input = lowered.as_ref().unwrap_or(ct);
        let rotated = if self.baby_steps.is_empty() {
            Vec::new()
        } else {
            ev.rotate_hoisted_new(input, &self.baby_steps)?
        };
        let copies: Vec<&Ciphertext> = std::iter::once(input).chain(&rotated).collect();
        sum(
            ev,
            self.groups.iter().map(|group| {
                let ((first, first_pt), rest) =
                    group.terms.split_first().ok_or_else(|| Error::OutOfRange {
                        op: OP,
                        detail: "internal: an empty giant-step group".into(),
                    })?;
                let mut partial = copies[*first].try_clone()?;
                ev.mul_plain_assign(&mut partial, first_pt)?;
                for (copy, pt) in rest {
                    ev.mul_plain_add_assign(&mut partial, copies[*copy], pt)?;
                }
                if group.step == 0 {
                    Ok(partial)
                } else {
                    ev.rotate_new(&partial, group.step)
                }
            }),
        )
    }
}

/// Encodes `transforms` for [`evaluate_sequence`] from a ciphertext at
/// `level`: transform `t` at level `level − t`, scale `q_{level − t}`.
pub fn encode_sequence(
    transforms: &[LinearTransform],
    encoder: &Encoder,
    level: usize,
) -> Result<Vec<EncodedLinearTransform>> {
    if level < transforms.len() {
        return Err(Error::OutOfLevels {
            op: "encode_sequence",
            level,
            needed: transforms.len(),
        });
    }
    transforms
        .iter()
        .enumerate()
        .map(|(t, transform)| transform.encode(encoder, level - t))
        .collect()
}

/// Applies `transforms` in order (the first one first), each followed by a
/// rescale; every key and level is checked before the first rotation. An
/// empty list returns a copy of `ct`.
pub fn evaluate_sequence(
    ev: &Evaluator,
    ct: &Ciphertext,
    transforms: &[EncodedLinearTransform],
) -> Result<Ciphertext> {
    let mut level = ct.level();
    for transform in transforms {
        transform.check(ev, ct.params_id(), ct.slots(), level, true)?;
        level = transform.level - 1;
    }
    let mut out: Option<Ciphertext> = None;
    for transform in transforms {
        let mut next = transform.product(ev, out.as_ref().unwrap_or(ct))?;
        ev.rescale_assign(&mut next)?;
        out = Some(next);
    }
    match out {
        Some(out) => Ok(out),
        None => ct.try_clone(),
    }
}

/// `direct·ct + conjugate·conj(ct)`: two transforms encoded at the same
/// level and scale, one conjugation; optionally rescaled.
pub fn evaluate_with_conjugate(
    ev: &Evaluator,
    ct: &Ciphertext,
    direct: &EncodedLinearTransform,
    conjugate: &EncodedLinearTransform,
    rescale: bool,
) -> Result<Ciphertext> {
    if direct.level != conjugate.level {
        return Err(Error::LevelMismatch {
            op: OP,
            detail: format!(
                "direct transform at level {}, conjugate transform at level {}",
                direct.level, conjugate.level
            ),
        });
    }
    if direct.scale != conjugate.scale {
        return Err(Error::ScaleMismatch {
            op: OP,
            left_log2: direct.scale.log2(),
            right_log2: conjugate.scale.log2(),
        });
    }
    for transform in [direct, conjugate] {
        transform.check(ev, ct.params_id(), ct.slots(), ct.level(), rescale)?;
    }
    let log_n = ev.context().params().log_n();
    check_key(ev, galois_element_for_conjugation(log_n), || {
        "conjugation".into()
    })?;
    let lowered = at_level(ev, ct, direct.level)?;
    let input = lowered.as_ref().unwrap_or(ct);
    let mut out = direct.product(ev, input)?;
    ev.add_assign(&mut out, &conjugate.product(ev, &ev.conjugate_new(input)?)?)?;
    if rescale {
        ev.rescale_assign(&mut out)?;
    }
    Ok(out)
}
