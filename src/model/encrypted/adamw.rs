//! AdamW under encryption, slot by slot: the parameters, their gradients
//! and both moments are ciphertexts; only the constants (the rate, the
//! bias corrections, the decay) are public. [`AdamWTwin`] is the same
//! computation in `f64`, the twin the encrypted optimizer is checked
//! against.
//!
//! Step `t` (from 1) with rate `η_t`, for every slot of every parameter
//! ciphertext `θ` with gradient `g`, the moments kept bias-corrected
//! (`m̂ = m/(1 − β₁^t)`, `v̂ = v/(1 − β₂^t)` of PyTorch's `m`, `v`):
//!
//! ```text
//! g ← clip(g)         to [−4G/5, 4G/5] (PyTorch's clip_grad_value_), when set
//! m̂ ← a₁·m̂ + b₁·g      a₁ = β₁(1 − β₁^(t−1))/(1 − β₁^t), b₁ = (1 − β₁)/(1 − β₁^t)
//! v̂ ← a₂·v̂ + b₂·g²    (the same with β₂)
//! u = (η_t·m̂) · p(v̂ + ε)
//! θ ← (1 − η_t·λ)·θ − u          (λ only where decay is on)
//! ```
//!
//! with `p` the circuit's inverse square root (a polynomial then Newton
//! steps, [`NewtonApproximation`]) on `[ε, G² + ε]`, `G` the gradients'
//! bound: `(v̂ + ε)^(−1/2)` rather than PyTorch's `1/(√v̂ + ε)`, which has no
//! cheap circuit. `ε` sets the inverse square root's range ratio `G²/ε`
//! (its depth grows with it): `ε` is much larger than PyTorch's `1e-8`.
//! The moments are kept bias-corrected because `v` itself starts near
//! `(1 − β₂)·g²`, a thousandth of `v̂`: its absolute error, times the
//! correction, would swamp `ε`. Kept corrected, `|m̂| ≤ G`, `v̂ ≤ G²` at every
//! step, and `|u| ≤ η_t` (as `m̂² ≤ v̂`, up to `p`'s error).
//!
//! The clip ([`CompositeClip`], on `[−R, R]`; soft near its kinks, so it
//! clips to `4G/5` to stay within `G`) keeps `|g| ≤ G` whatever a step's
//! gradients: without it, one gradient beyond `G` would take `v̂`
//! beyond the inverse square root's interval, where its Newton steps
//! diverge. The twin refuses a gradient beyond `R` (the encrypted step
//! would bootstrap it out of range: garbage, with no error).
//!
//! Levels: every sum is formed at the default scale, each term through a
//! constant product that lands it there (`circuits::combine`, one level), so a
//! step costs `g²` (1), the moments (1), the inverse square root, `η_t·m̂`
//! (1, beside it), `u` (1) and the update (1) levels, bootstrapping where
//! they run out (each value with its bound).

use crate::approx::{Approximation, CompositeClip, NewtonApproximation, NewtonTarget};
use crate::circuits::combine::{combine, multiply_pairs};
use crate::circuits::functions::{clip_batch, evaluate_batch};
use crate::circuits::refresh::{ensure_all, ensure_both, Refresh};
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;
use crate::model::train::adamw::AdamWConfig;

const OP: &str = "EncryptedAdamW";

/// The precision of the clip's sign: `2^−12`.
const CLIP_SIGN_BITS: u32 = 12;

/// The clip's level as a fraction of `G`: the soft clip reaches `5/4` of
/// its level near its kinks ([`CompositeClip::output_bound`]), `G` at most.
const CLIP_LEVEL: f64 = 0.8;

/// The deepest inverse square root searched.
const INV_SQRT_MAX_DEPTH: usize = 24;

/// The encrypted optimizer's constants.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EncryptedAdamWConfig {
    /// `β₁`, `β₂`, `ε`, `λ`.
    pub adamw: AdamWConfig,
    /// `G`: the gradients the moments take lie in `[−G, G]` (clipped to it
    /// when [`clip_range`](Self::clip_range) is set).
    pub gradient_bound: f64,
    /// `R`: the incoming gradients lie in `[−R, R]` and are clipped to
    /// `[−4G/5, 4G/5]` ([`CompositeClip`], the sign to `2^−12`; softly, so
    /// within `G`); none: they lie in `[−G, G]` already and are taken as
    /// they are.
    #[serde(default)]
    pub clip_range: Option<f64>,
    /// Every parameter slot lies in `[−B, B]` (the bound bootstrapping
    /// needs).
    pub parameter_bound: f64,
    /// The relative error asked of the inverse square root.
    pub inv_sqrt_relative_error: f64,
}

impl Default for EncryptedAdamWConfig {
    /// PyTorch's `β₁ = 0.9`, `β₂ = 0.999`, `λ = 0.01`; `ε = 2^−10`, `G = 2`
    /// (a range ratio of `2^12`: a bootstrap of `v̂ + ε` keeps about
    /// `b − 4 − 12` bits at its low end for a bootstrap of `b` bits, 4 of
    /// them spent on the refresher's headroom), incoming gradients in
    /// `[−256, 256]` clipped to `[−4G/5, 4G/5]`, parameters in `[−4, 4]`, the
    /// inverse square root to `2^−12`. With the gradient scales of
    /// [`GradientScales::calibrate`](super::scales::GradientScales::calibrate)
    /// at target `G`, a typical example's gradient sits at the clip level
    /// and a batch's mean well inside it.
    fn default() -> Self {
        Self {
            adamw: AdamWConfig {
                epsilon: 2f64.powi(-10),
                ..AdamWConfig::default()
            },
            gradient_bound: 2.0,
            clip_range: Some(256.0),
            parameter_bound: 4.0,
            inv_sqrt_relative_error: 2f64.powi(-12),
        }
    }
}

impl EncryptedAdamWConfig {
    /// The interval of `v̂ + ε`: `[ε, G² + ε]`.
    pub fn inv_sqrt_interval(&self) -> (f64, f64) {
        let epsilon = self.adamw.epsilon;
        (epsilon, self.gradient_bound.powi(2) + epsilon)
    }

    /// The clip of the incoming gradients (none without a clip range).
    ///
    /// Errors: a clip range below `G` or not finite, the fit's errors.
    pub fn clip(&self) -> Result<Option<CompositeClip>> {
        self.clip_range
            .map(|range| {
                CompositeClip::fit(CLIP_LEVEL * self.gradient_bound, range, CLIP_SIGN_BITS)
            })
            .transpose()
    }

    /// The bound of the incoming gradients: `R` with a clip, else `G`.
    pub fn incoming_bound(&self) -> f64 {
        self.clip_range.unwrap_or(self.gradient_bound)
    }

    /// The inverse square root of the update.
    ///
    /// Errors: constants outside their ranges, or a range the fit cannot
    /// reach the relative error on.
    pub fn inverse_sqrt(&self) -> Result<NewtonApproximation> {
        let AdamWConfig {
            beta1,
            beta2,
            epsilon,
            weight_decay,
        } = self.adamw;
        let unit = |b: f64| (0.0..1.0).contains(&b);
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !(unit(beta1)
            && unit(beta2)
            && positive(epsilon)
            && weight_decay.is_finite()
            && weight_decay >= 0.0
            && positive(self.gradient_bound)
            && self
                .clip_range
                .is_none_or(|r| r.is_finite() && r >= self.gradient_bound)
            && positive(self.parameter_bound)
            && positive(self.inv_sqrt_relative_error))
        {
            return Err(Error::InvalidParameters(format!(
                "{OP}: {self:?} needs 0 ≤ β < 1, ε > 0, λ ≥ 0, positive bounds and a finite clip range of at least G"
            )));
        }
        NewtonApproximation::fit_to_error(
            NewtonTarget::InverseSqrt,
            self.inv_sqrt_interval(),
            self.inv_sqrt_relative_error,
            INV_SQRT_MAX_DEPTH,
        )
    }

    /// The public constants of step `t` (from 1) at `rate`, for a parameter
    /// with or without decay: the moments' `(a₁, b₁)`, `(a₂, b₂)` (see the
    /// module docs) and `1 − η_t·λ`.
    fn constants(&self, t: u64, rate: f64, decay: bool) -> StepConstants {
        let t = i32::try_from(t).unwrap_or(i32::MAX);
        let lambda = if decay { self.adamw.weight_decay } else { 0.0 };
        let moment = |beta: f64| {
            let corrected = 1.0 - beta.powi(t);
            (
                beta * (1.0 - beta.powi(t - 1)) / corrected,
                (1.0 - beta) / corrected,
            )
        };
        StepConstants {
            first: moment(self.adamw.beta1),
            second: moment(self.adamw.beta2),
            keep: 1.0 - rate * lambda,
        }
    }
}

/// The public constants of one step for one parameter.
#[derive(Clone, Copy, Debug)]
struct StepConstants {
    /// `(a₁, b₁)`.
    first: (f64, f64),
    /// `(a₂, b₂)`.
    second: (f64, f64),
    /// `1 − η_t·λ`.
    keep: f64,
}

/// Checks a rate: finite and not negative (a schedule ends at 0).
fn check_rate(rate: f64) -> Result<()> {
    if rate.is_finite() && rate >= 0.0 {
        Ok(())
    } else {
        Err(Error::OutOfRange {
            op: OP,
            detail: format!("rate {rate} must be finite and not negative"),
        })
    }
}

/// Checks that two lists match in length.
fn check_len(got: usize, expected: usize) -> Result<()> {
    Error::check_length(OP, got, expected)
}

/// The mean of a batch's gradients (one list of ciphertexts per example,
/// all of the same length), one level: each term scaled by `1/batch`.
///
/// Errors: an empty batch, lists of different lengths, too few levels.
pub fn mean_gradient(ev: &Evaluator, batch: &[Vec<Ciphertext>]) -> Result<Vec<Ciphertext>> {
    let first = batch.first().ok_or_else(|| Error::OutOfRange {
        op: OP,
        detail: "an empty batch".into(),
    })?;
    for example in batch {
        check_len(example.len(), first.len())?;
    }
    let weight = 1.0 / batch.len() as f64;
    let scale = ev.context().params().default_scale();
    (0..first.len())
        .map(|k| {
            let terms: Vec<(&Ciphertext, f64)> =
                batch.iter().map(|example| (&example[k], weight)).collect();
            combine(ev, &terms, scale)
        })
        .collect()
}

/// A bias-corrected moment: `a_k·previous_k + b_k·new_k` at `scale` for
/// `coefficients[k] = (a_k, b_k)`, or `b_k·new_k` when there is no previous
/// moment (the first step, `b = 1`); `new` (values up to `bound`) and the
/// previous moment refreshed together where they lack the level.
fn moment(
    ev: &Evaluator,
    refresher: &mut dyn Refresh,
    previous: &[Ciphertext],
    (new, bound): (&mut [Ciphertext], f64),
    coefficients: &[(f64, f64)],
    scale: f64,
) -> Result<Vec<Ciphertext>> {
    if !previous.is_empty() {
        check_len(previous.len(), new.len())?;
    }
    let mut previous = previous
        .iter()
        .map(Ciphertext::try_clone)
        .collect::<Result<Vec<_>>>()?;
    ensure_both(refresher, ev, (&mut previous, bound), (&mut *new, bound), 1)?;
    new.iter()
        .zip(coefficients)
        .enumerate()
        .map(|(k, (x, &(a, b)))| match previous.get(k) {
            Some(old) => combine(ev, &[(old, a), (x, b)], scale),
            None => combine(ev, &[(x, b)], scale),
        })
        .collect()
}

/// Parameter ciphertexts one step updates at a time: its working set
/// (about a dozen ciphertexts per parameter: the gradient and its square,
/// both moments old and new, the inverse square root's terms, the update)
/// is one chunk's, not the whole list's. Chunks of full ciphertexts take
/// the same bootstraps as the whole list; sparse ones pack a little less.
const OPTIMIZER_CHUNK: usize = 16;

/// The encrypted optimizer's state: the step count and both moments (no
/// key; the server holds it).
pub struct EncryptedAdamW {
    config: EncryptedAdamWConfig,
    inverse_sqrt: Approximation,
    clip: Option<CompositeClip>,
    decay: Vec<bool>,
    step: u64,
    first: Vec<Ciphertext>,
    second: Vec<Ciphertext>,
}

impl EncryptedAdamW {
    /// An optimizer for parameter ciphertexts with weight decay where
    /// `decay` says, its moments zero.
    ///
    /// Errors: those of [`EncryptedAdamWConfig::inverse_sqrt`].
    pub fn new(config: EncryptedAdamWConfig, decay: Vec<bool>) -> Result<Self> {
        Ok(Self {
            inverse_sqrt: Approximation::Newton(config.inverse_sqrt()?),
            clip: config.clip()?,
            config,
            decay,
            step: 0,
            first: Vec::new(),
            second: Vec::new(),
        })
    }

    /// An optimizer resumed after `step` steps with the moments `first`,
    /// `second` (a checkpoint's).
    ///
    /// Errors: those of [`Self::new`]; moments that are not one per decay
    /// flag (none at step 0).
    pub fn resume(
        config: EncryptedAdamWConfig,
        decay: Vec<bool>,
        step: u64,
        first: Vec<Ciphertext>,
        second: Vec<Ciphertext>,
    ) -> Result<Self> {
        let expected = if step == 0 { 0 } else { decay.len() };
        check_len(first.len(), expected)?;
        check_len(second.len(), expected)?;
        Ok(Self {
            step,
            first,
            second,
            ..Self::new(config, decay)?
        })
    }

    /// The constants.
    pub fn config(&self) -> &EncryptedAdamWConfig {
        &self.config
    }

    /// Which parameters decay.
    pub fn decay(&self) -> &[bool] {
        &self.decay
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The bias-corrected moments `(m̂, v̂)` (empty before the first step).
    pub fn moments(&self) -> (&[Ciphertext], &[Ciphertext]) {
        (&self.first, &self.second)
    }

    /// One update of `params` by `gradients` at `rate`, levels from
    /// `refresher` (see the module docs). On an error the state and the
    /// parameters' values are unchanged (parameters may have been
    /// refreshed).
    ///
    /// Errors: lists of other lengths than the decay flags, a rate that is
    /// finite and not negative, the operations' errors.
    pub fn step(
        &mut self,
        ev: &Evaluator,
        params: &mut [Ciphertext],
        gradients: &[Ciphertext],
        rate: f64,
        refresher: &mut dyn Refresh,
    ) -> Result<()> {
        check_len(params.len(), self.decay.len())?;
        check_len(gradients.len(), self.decay.len())?;
        check_rate(rate)?;
        let t = self.step + 1;
        let (mut updated, mut first, mut second) = (Vec::new(), Vec::new(), Vec::new());
        for start in (0..params.len()).step_by(OPTIMIZER_CHUNK) {
            let chunk = start..(start + OPTIMIZER_CHUNK).min(params.len());
            let (u, f, v) = self.step_chunk(
                ev,
                (&mut params[chunk.clone()], &gradients[chunk.clone()]),
                (
                    self.first.get(chunk.clone()).unwrap_or(&[]),
                    self.second.get(chunk.clone()).unwrap_or(&[]),
                ),
                (&self.decay[chunk], t, rate),
                refresher,
            )?;
            updated.extend(u);
            first.extend(f);
            second.extend(v);
        }
        for (theta, new) in params.iter_mut().zip(updated) {
            *theta = new;
        }
        self.first = first;
        self.second = second;
        self.step = t;
        Ok(())
    }

    /// [`step`](Self::step) on one chunk of the parameters: their new
    /// values and moments (nothing is stored).
    #[allow(clippy::type_complexity)]
    fn step_chunk(
        &self,
        ev: &Evaluator,
        (params, gradients): (&mut [Ciphertext], &[Ciphertext]),
        (previous_first, previous_second): (&[Ciphertext], &[Ciphertext]),
        (decay, t, rate): (&[bool], u64, f64),
        refresher: &mut dyn Refresh,
    ) -> Result<(Vec<Ciphertext>, Vec<Ciphertext>, Vec<Ciphertext>)> {
        let cfg = self.config;
        // Bootstrapping takes bounds of at least 1 (smaller values are
        // bootstrapped as if they reached 1).
        let (g_bound, p_bound) = (cfg.gradient_bound.max(1.0), cfg.parameter_bound.max(1.0));
        let scale = ev.context().params().default_scale();

        let constants: Vec<StepConstants> = decay
            .iter()
            .map(|&decay| cfg.constants(t, rate, decay))
            .collect();

        // The moments, bias-corrected.
        let mut grads = match &self.clip {
            Some(clip) => clip_batch(ev, gradients, clip, refresher)?,
            None => gradients
                .iter()
                .map(Ciphertext::try_clone)
                .collect::<Result<Vec<_>>>()?,
        };
        ensure_all(refresher, ev, &mut grads, g_bound, 2)?;
        let mut squares = grads
            .iter()
            .map(|g| ev.mul_relin_rescale_new(g, g))
            .collect::<Result<Vec<_>>>()?;
        let square_bound = g_bound * g_bound;
        let firsts: Vec<(f64, f64)> = constants.iter().map(|c| c.first).collect();
        let seconds: Vec<(f64, f64)> = constants.iter().map(|c| c.second).collect();
        let first = moment(
            ev,
            refresher,
            previous_first,
            (&mut grads, g_bound),
            &firsts,
            scale,
        )?;
        let second = moment(
            ev,
            refresher,
            previous_second,
            (&mut squares, square_bound),
            &seconds,
            scale,
        )?;

        // p(v̂ + ε), and η_t·m̂ beside it.
        let shifted = second
            .iter()
            .map(|v| {
                let mut x = v.try_clone()?;
                ev.add_const_assign(&mut x, Complex::new(cfg.adamw.epsilon, 0.0))?;
                Ok(x)
            })
            .collect::<Result<Vec<_>>>()?;
        let (_, high) = cfg.inv_sqrt_interval();
        let mut inverses = evaluate_batch(ev, &shifted, &self.inverse_sqrt, high, refresher)?;
        let mut first_copy = first
            .iter()
            .map(Ciphertext::try_clone)
            .collect::<Result<Vec<_>>>()?;
        ensure_all(refresher, ev, &mut first_copy, g_bound, 1)?;
        let mut scaled = first_copy
            .iter()
            .map(|m| combine(ev, &[(m, rate)], scale))
            .collect::<Result<Vec<_>>>()?;

        // u = η_t·m̂·p, then θ ← (1 − η_t·λ)·θ − u.
        let inverse_bound = 1.0 / cfg.adamw.epsilon.sqrt();
        let mut updates = multiply_pairs(
            ev,
            (&mut scaled, (rate * g_bound).max(1.0)),
            (&mut inverses, inverse_bound),
            refresher,
        )?;
        // |u| ≤ η_t up to the inverse square root's error: twice that.
        ensure_both(
            refresher,
            ev,
            (params, p_bound),
            (&mut updates, (2.0 * rate).max(1.0)),
            1,
        )?;
        let updated = params
            .iter()
            .zip(&updates)
            .zip(&constants)
            .map(|((theta, u), c)| combine(ev, &[(theta, c.keep), (u, -1.0)], scale))
            .collect::<Result<Vec<_>>>()?;
        Ok((updated, first, second))
    }
}

/// The encrypted optimizer's computation in `f64`, slot by slot: its twin.
#[derive(Clone, Debug)]
pub struct AdamWTwin {
    config: EncryptedAdamWConfig,
    inverse_sqrt: NewtonApproximation,
    clip: Option<CompositeClip>,
    decay: Vec<bool>,
    step: u64,
    first: Vec<Vec<f64>>,
    second: Vec<Vec<f64>>,
}

impl AdamWTwin {
    /// The twin of [`EncryptedAdamW::new`].
    ///
    /// Errors: those of [`EncryptedAdamWConfig::inverse_sqrt`].
    pub fn new(config: EncryptedAdamWConfig, decay: Vec<bool>) -> Result<Self> {
        Ok(Self {
            inverse_sqrt: config.inverse_sqrt()?,
            clip: config.clip()?,
            config,
            decay,
            step: 0,
            first: Vec::new(),
            second: Vec::new(),
        })
    }

    /// The bias-corrected moments `(m̂, v̂)` (empty before the first step).
    pub fn moments(&self) -> (&[Vec<f64>], &[Vec<f64>]) {
        (&self.first, &self.second)
    }

    /// The twin of [`EncryptedAdamW::step`] on slot vectors.
    ///
    /// Errors: lists of other lengths than the decay flags, a gradient of
    /// another length than its parameter, a rate that is not finite and
    /// not negative, a gradient beyond the incoming bound
    /// ([`EncryptedAdamWConfig::incoming_bound`]; nothing changes then).
    pub fn step(
        &mut self,
        params: &mut [Vec<f64>],
        gradients: &[Vec<f64>],
        rate: f64,
    ) -> Result<()> {
        check_len(params.len(), self.decay.len())?;
        check_len(gradients.len(), self.decay.len())?;
        check_rate(rate)?;
        let bound = self.config.incoming_bound();
        for (k, (theta, g)) in params.iter().zip(gradients).enumerate() {
            check_len(g.len(), theta.len())?;
            if let Some(i) = g.iter().position(|x| x.is_nan() || x.abs() > bound) {
                return Err(Error::OutOfRange {
                    op: OP,
                    detail: format!(
                        "gradient {k}, element {i}: {} lies beyond the optimizer's bound {bound} \
                         (under encryption: garbage, with no error). Far beyond, training has \
                         diverged (a rate too high, activations beyond the polynomials' ranges); \
                         just beyond, a wider clip range or larger gradient scales help",
                        g[i]
                    ),
                });
            }
        }
        if self.step == 0 {
            self.first = params.iter().map(|p| vec![0.0; p.len()]).collect();
            self.second = self.first.clone();
        }
        self.step += 1;
        let cfg = self.config;
        for (k, (theta, g)) in params.iter_mut().zip(gradients).enumerate() {
            let c = cfg.constants(self.step, rate, self.decay[k]);
            for (i, (theta, &g)) in theta.iter_mut().zip(g).enumerate() {
                let g = self.clip.as_ref().map_or(g, |clip| clip.eval(g));
                let m = c.first.0 * self.first[k][i] + c.first.1 * g;
                let v = c.second.0 * self.second[k][i] + c.second.1 * (g * g);
                self.first[k][i] = m;
                self.second[k][i] = v;
                let update = (rate * m) * self.inverse_sqrt.eval(v + cfg.adamw.epsilon);
                *theta = c.keep * *theta - update;
            }
        }
        Ok(())
    }
}
