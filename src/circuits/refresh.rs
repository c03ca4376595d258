//! Levels on demand: a circuit longer than the modulus chain asks a
//! [`Refresh`] for levels before each stage that needs more than its
//! inputs have left.
//!
//! A refresher receives the ciphertexts with a bound on their values
//! (`|slot| <= bound`): bootstrapping's absolute error grows with it
//! ([`Bootstrapper::bootstrap_bounded`]), so callers pass the tightest
//! bound they know. [`NoRefresh`] gives no levels (a circuit that needs one
//! fails with [`Error::OutOfLevels`]); [`Bootstrapping`] bootstraps the
//! ciphertexts below the level asked for and counts the bootstraps: those
//! with fewer slots than its bootstrapper are paired as `a + i·b` and the
//! pairs packed, as many as fit, into one ciphertext per bootstrap
//! ([`crate::circuits::pack`]); those with as many slots go two real ones
//! per bootstrap when their scales and bounds allow.
//!
//! # Headroom
//!
//! EvalMod's sine is linear only for small coefficients: its cubic term
//! costs a relative `(2π·c/q_0)²/6` on a coefficient `c`. Zero-mean slots
//! spread over many small coefficients, but values with a common offset
//! (the bases of exp, variances) put it all in the constant coefficient, and
//! at the presets' message ratio `q_0/Δ = 2^8` a bootstrap of values near 1
//! keeps only about 13 bits (16.2 bits measured for values uniform in
//! `[0, 1]` on `TEST_INSECURE_BOOT_N11_L9`, 21.6 for `[−1, 1]`).
//! [`Bootstrapping`] therefore bootstraps with the bound times a headroom
//! (default [`DEFAULT_HEADROOM`] = 16): the cubic term shrinks by its
//! square, EvalMod's noise grows by it. Measured there for `[0, 1]`:
//! headroom 4, 8, 16, 32 give 20.2, 22.2, 24.2, 26.0 bits; at `N = 2^16`
//! EvalMod's noise weighs more (zero-mean inputs lose about half a bit per
//! doubling of the message ratio), hence 16 rather than more.

use crate::circuits::boot::Bootstrapper;
use crate::circuits::pack;
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::{Error, Result};

const OP: &str = "refresh";

/// A source of levels.
pub trait Refresh {
    /// Brings every ciphertext of `cts` (each with its value bound) below
    /// level `needed` to at least `needed`; those already there are left
    /// alone. The values keep their meaning; scales may change.
    ///
    /// Errors: [`Error::OutOfLevels`] when `needed` is more than the
    /// refresher gives, and the errors of the operations.
    fn refresh(
        &mut self,
        ev: &Evaluator,
        cts: &mut [(&mut Ciphertext, f64)],
        needed: usize,
    ) -> Result<()>;

    /// How many refreshes (bootstraps) this refresher has run.
    fn count(&self) -> usize;

    /// The wall time spent in its refreshes, in seconds.
    fn seconds(&self) -> f64;

    /// The most levels a refresh gives (`None`: it gives none).
    fn max_level(&self) -> Option<usize>;
}

/// Makes sure every ciphertext of `cts` (values up to `bound`) has at
/// least `needed` levels (one call of the refresher for all).
pub fn ensure_all(
    refresher: &mut dyn Refresh,
    ev: &Evaluator,
    cts: &mut [Ciphertext],
    bound: f64,
    needed: usize,
) -> Result<()> {
    let mut due: Vec<(&mut Ciphertext, f64)> = cts.iter_mut().map(|ct| (ct, bound)).collect();
    refresher.refresh(ev, &mut due, needed)
}

/// Refreshes, in one call, the elements of `a` (values up to `bound_a`)
/// and of `b` (up to `bound_b`) below `needed` levels.
pub fn ensure_both(
    refresher: &mut dyn Refresh,
    ev: &Evaluator,
    (a, bound_a): (&mut [Ciphertext], f64),
    (b, bound_b): (&mut [Ciphertext], f64),
    needed: usize,
) -> Result<()> {
    let mut due: Vec<(&mut Ciphertext, f64)> = a
        .iter_mut()
        .map(|ct| (ct, bound_a))
        .chain(b.iter_mut().map(|ct| (ct, bound_b)))
        .collect();
    refresher.refresh(ev, &mut due, needed)
}

/// No refreshing: a ciphertext below the level asked for is an error.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRefresh;

impl Refresh for NoRefresh {
    fn refresh(
        &mut self,
        _ev: &Evaluator,
        cts: &mut [(&mut Ciphertext, f64)],
        needed: usize,
    ) -> Result<()> {
        match cts.iter().map(|(ct, _)| ct.level()).min() {
            Some(level) if level < needed => Err(Error::OutOfLevels {
                op: OP,
                level,
                needed,
            }),
            _ => Ok(()),
        }
    }

    fn count(&self) -> usize {
        0
    }

    fn seconds(&self) -> f64 {
        0.0
    }

    fn max_level(&self) -> Option<usize> {
        None
    }
}

/// The default factor between a value bound and the bound bootstrapped
/// with (see the module docs).
pub const DEFAULT_HEADROOM: f64 = 16.0;

/// Refreshing by bootstrapping (real values: imaginary parts are not kept
/// when two ciphertexts share a bootstrap).
pub struct Bootstrapping<'a> {
    bootstrapper: &'a Bootstrapper,
    headroom: f64,
    /// Bootstraps run (a shared one counts once).
    count: usize,
    /// Wall time of the refreshes.
    seconds: f64,
}

impl<'a> Bootstrapping<'a> {
    /// A refresher through `bootstrapper`, its count at zero.
    pub fn new(bootstrapper: &'a Bootstrapper) -> Self {
        Self {
            bootstrapper,
            headroom: DEFAULT_HEADROOM,
            count: 0,
            seconds: 0.0,
        }
    }

    /// The same with another headroom (at least 1).
    pub fn with_headroom(self, headroom: f64) -> Result<Self> {
        if !(headroom.is_finite() && headroom >= 1.0) {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!("headroom {headroom} must be finite and at least 1"),
            });
        }
        Ok(Self { headroom, ..self })
    }

    /// The level every refreshed ciphertext comes back at.
    pub fn output_level(&self) -> usize {
        self.bootstrapper.output_level()
    }
}

impl Bootstrapping<'_> {
    /// Bootstraps ciphertexts of the bootstrapper's slot count, two per
    /// bootstrap when one relabelling fits both.
    fn refresh_in_pairs(
        &mut self,
        ev: &Evaluator,
        mut due: Vec<&mut (&mut Ciphertext, f64)>,
    ) -> Result<()> {
        let mut index = 0;
        while index < due.len() {
            let pair = index + 1 < due.len() && {
                let ((a, bound_a), (b, bound_b)) = (&*due[index], &*due[index + 1]);
                a.level() == b.level() && a.scale() == b.scale() && bound_a == bound_b
            };
            if pair {
                let (head, tail) = due.split_at_mut(index + 1);
                let (a, bound) = &mut *head[index];
                let (b, _) = &mut *tail[0];
                let (new_a, new_b) = self.bootstrapper.bootstrap_two_real_bounded(
                    ev,
                    a,
                    b,
                    *bound * self.headroom,
                )?;
                **a = new_a;
                **b = new_b;
                index += 2;
            } else {
                let (ct, bound) = &mut *due[index];
                **ct = self
                    .bootstrapper
                    .bootstrap_bounded(ev, ct, *bound * self.headroom)?;
                index += 1;
            }
            self.count += 1;
        }
        Ok(())
    }

    /// Bootstraps sparse ciphertexts of one slot count: all relabelled to
    /// the first one's scale (each one's values multiplied by its scale over
    /// that one, a known factor that scales its bound and is relabelled back
    /// at the end) and dropped to the lowest level (a bootstrap starts at
    /// level 0 anyway), paired as `a + i·b` (the real slots leave the
    /// imaginary parts free; an odd one pairs with itself), the pairs packed
    /// as many as fit into one ciphertext per bootstrap ([`pack`]), then
    /// unpacked and split (one conjugation per pair).
    fn refresh_packed(
        &mut self,
        ev: &Evaluator,
        group: &mut [&mut (&mut Ciphertext, f64)],
    ) -> Result<()> {
        let packed_slots = self.bootstrapper.config().slots;
        let slots = group[0].0.slots();
        let level = group.iter().map(|(ct, _)| ct.level()).min().unwrap_or(0);
        let common = group[0].0.scale();
        let mut inputs = Vec::with_capacity(group.len());
        for (ct, bound) in group.iter() {
            let mut input = ct.try_clone()?;
            let above = input.level() - level;
            ev.drop_level_assign(&mut input, above)?;
            let ratio = input.scale() / common;
            input.scale = common;
            inputs.push((input, ratio, bound * ratio));
        }
        let pairs = inputs
            .chunks(2)
            .map(|pair| {
                let (a, b) = (&pair[0], pair.get(1).unwrap_or(&pair[0]));
                Ok((ev.complex_pack_new(&a.0, &b.0)?, a.2.max(b.2)))
            })
            .collect::<Result<Vec<_>>>()?;
        // Unpacking multiplies by the capacity and the split doubles: bootstrap
        // to the output scale over both, so that the blocks come back at the
        // output scale.
        let capacity = pack::capacity(slots, packed_slots);
        let target = self.bootstrapper.output_scale() / (2 * capacity) as f64;
        let mut outputs = Vec::with_capacity(2 * pairs.len());
        for chunk in pairs.chunks(capacity) {
            let refs: Vec<&Ciphertext> = chunk.iter().map(|(z, _)| z).collect();
            let packed = pack::pack(ev, &refs, packed_slots)?;
            let bound = chunk.iter().fold(1.0_f64, |m, (_, b)| m.max(*b));
            let refreshed = self.bootstrapper.bootstrap_bounded_to_scale(
                ev,
                &packed,
                bound * self.headroom,
                target,
            )?;
            self.count += 1;
            for z in pack::unpack(ev, &refreshed, chunk.len(), slots)? {
                let (mut re, mut im) = ev.complex_split_new(&z)?;
                re.scale *= 2.0;
                im.scale *= 2.0;
                outputs.extend([re, im]);
            }
        }
        for ((ct, _), (mut out, (_, ratio, _))) in
            group.iter_mut().zip(outputs.into_iter().zip(&inputs))
        {
            out.scale *= ratio;
            **ct = out;
        }
        Ok(())
    }
}

impl Refresh for Bootstrapping<'_> {
    fn refresh(
        &mut self,
        ev: &Evaluator,
        cts: &mut [(&mut Ciphertext, f64)],
        needed: usize,
    ) -> Result<()> {
        let due: Vec<&mut (&mut Ciphertext, f64)> = cts
            .iter_mut()
            .filter(|(ct, _)| ct.level() < needed)
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let available = self.bootstrapper.output_level();
        if needed > available {
            return Err(Error::OutOfLevels {
                op: OP,
                level: available,
                needed,
            });
        }
        let clock = std::time::Instant::now();
        let packed_slots = self.bootstrapper.config().slots;
        let (mut sparse, full): (Vec<_>, Vec<_>) = due
            .into_iter()
            .partition(|(ct, _)| ct.slots() < packed_slots);
        self.refresh_in_pairs(ev, full)?;
        sparse.sort_by_key(|(ct, _)| ct.slots());
        for group in sparse.chunk_by_mut(|(a, _), (b, _)| a.slots() == b.slots()) {
            self.refresh_packed(ev, group)?;
        }
        self.seconds += clock.elapsed().as_secs_f64();
        Ok(())
    }

    fn max_level(&self) -> Option<usize> {
        Some(self.bootstrapper.output_level())
    }

    /// The bootstraps run so far (a shared one counts once).
    fn count(&self) -> usize {
        self.count
    }

    fn seconds(&self) -> f64 {
        self.seconds
    }
}
