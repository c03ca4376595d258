//! Levels on demand: a circuit longer than the modulus chain asks a
//! [`Refresh`] for levels before each stage that needs more than its
//! inputs have left.
//!
//! A refresher receives the ciphertexts with a bound on their values
//! (`|slot| <= bound`): bootstrapping's absolute error grows with it
//! ([`Bootstrapper::bootstrap_bounded`]), so callers pass the tightest
//! bound they know. [`NoRefresh`] gives no levels (a circuit that needs one
//! fails with [`Error::OutOfLevels`]); [`Bootstrapping`] bootstraps the
//! ciphertexts below the level asked for, two real ones per bootstrap when
//! their scales and bounds allow it, and counts the bootstraps.
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
}

/// Makes sure `ct` (values up to `bound`) has at least `needed` levels.
pub fn ensure_levels(
    refresher: &mut dyn Refresh,
    ev: &Evaluator,
    ct: &mut Ciphertext,
    bound: f64,
    needed: usize,
) -> Result<()> {
    refresher.refresh(ev, &mut [(ct, bound)], needed)
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
}

impl<'a> Bootstrapping<'a> {
    /// A refresher through `bootstrapper`, its count at zero.
    pub fn new(bootstrapper: &'a Bootstrapper) -> Self {
        Self {
            bootstrapper,
            headroom: DEFAULT_HEADROOM,
            count: 0,
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

impl Refresh for Bootstrapping<'_> {
    fn refresh(
        &mut self,
        ev: &Evaluator,
        cts: &mut [(&mut Ciphertext, f64)],
        needed: usize,
    ) -> Result<()> {
        let mut due: Vec<&mut (&mut Ciphertext, f64)> = cts
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
        // Pairs share a bootstrap when one relabelling fits both.
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

    /// The bootstraps run so far (a shared one counts once).
    fn count(&self) -> usize {
        self.count
    }
}
