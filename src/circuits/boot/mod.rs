//! CKKS bootstrapping: a ciphertext at level 0 back to a high level with
//! the same message, through ModRaise, CoeffToSlot, EvalMod and SlotToCoeff.
//!
//! # The pipeline (n slots, `gap = N/(2n)`)
//!
//! 1. **ModRaise** ([`Evaluator::mod_raise_new`]): the level-0 plaintext `m`
//!    (the message times its scale `Δ_in`) becomes `t = m + q_0·I` at the top
//!    level, `I` a small integer polynomial (`|I| <= K` with overwhelming
//!    probability; `K` grows with the square root of the secret's Hamming
//!    weight). The scale is relabelled to `q_0`, so the slots now hold the
//!    values of `t/q_0 = I + m/q_0`.
//! 2. **SubSum** (sparse packing only): `log2(gap)` rotate-and-adds by `n`,
//!    `2n`, .. slots sum the automorphisms fixing `X^gap`, which keeps the
//!    coefficients at multiples of the gap times `gap` and cancels the
//!    others (CoeffToSlot's first factor divides by `gap` again).
//! 3. **CoeffToSlot** ([`dft`], one level per group of stages): the slots
//!    become the packed coefficients `u_i = t_(i·gap) + i·t_((i+n)·gap)`
//!    over `2(K+1)·q_0`, in bit-reversed order: the first factor also
//!    divides by `gap` (undoing SubSum), by 2 and by `K + 1`. Their real and
//!    imaginary parts are separated with one conjugation, `w + conj(w)` and
//!    `−i·(w − conj(w))`: the values `y = (I_k + ε_k)/(K+1)` in `[−1, 1]`
//!    at scale `q_0`, `ε_k = m_k/q_0`.
//! 4. **EvalMod** on each part: `c(y) = cos(2π((K+1)y − 1/4)/2^r)` as a
//!    Chebyshev interpolant on `[−1, 1]` ([`crate::circuits::poly`]; its
//!    affine map is the identity, so it costs no level), then `r` double
//!    angles `c <- 2c² − 1`, giving `sin(2π(I_k + ε_k)) = sin(2πε_k) ≈
//!    2πε_k`. The factor `q_0/(2π·Δ_in)` that turns this into `m_k/Δ_in` is
//!    a relabelling of the scale, not a product. The cubic term of the sine
//!    costs a relative
//! 5. **SlotToCoeff** ([`dft`]): the parts recombined as `re + i·im`, the
//!    forward stages put the coefficients back. It works at `√n` times the
//!    output scale (its inputs are coefficients, about `1/√n` of the slot
//!    values they become; EvalMod's target scale carries the factor) and its
//!    last factor, encoded at `q_level/√n`, brings the scale down: the
//!    output has the scale asked for (default: the parameter set's default
//!    scale) exactly.
//!
//! # Levels
//!
//! CoeffToSlot uses the top `cts_levels` levels, EvalMod the next
//! `⌈log2(cosine_degree + 1)⌉ + r`, whose primes must match `q_0` (checked),
//! SlotToCoeff the next `stc_levels`; what remains is
//! [`Bootstrapper::output_level`].
//!
//! # Keys
//!
//! [`Bootstrapper::rotations`] lists the rotation steps (the DFT factors'
//! and, for sparse packing, the SubSum's); the conjugation key is needed as
//! well ([`Bootstrapper::needs_conjugation`]), and the relinearization key.

pub mod dft;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::approx::ChebyshevSeries;
use crate::circuits::linear::{
    encode_sequence, evaluate_sequence, EncodedLinearTransform, LinearTransform,
};
use crate::circuits::poly::PolyPlan;
use crate::ckks::{Ciphertext, CkksContext, Encoder, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;
use crate::params::Parameters;

const OP: &str = "bootstrap";

/// How to bootstrap (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct BootstrapConfig {
    /// Slots of the ciphertexts bootstrapped: a power of two, `2..=N/2`.
    pub slots: usize,
    /// Levels (groups of DFT stages) of CoeffToSlot; with fewer than that
    /// many stages (few slots) the spare levels are dropped, so that EvalMod
    /// always starts at the same level.
    pub cts_levels: usize,
    /// Levels of SlotToCoeff; at most `log2(slots)` are used.
    pub stc_levels: usize,
    /// The bound `K` on the integer part `|I|` after ModRaise.
    pub k: f64,
    /// Double-angle steps `r`.
    pub double_angle: u32,
    /// Degree of the Chebyshev interpolant of the scaled cosine.
    pub cosine_degree: usize,
    /// The output scale; `None` is the parameter set's default scale.
    pub output_scale: Option<f64>,
    /// The ratio `q_0/Δ` at ModRaise: an input whose scale leaves a larger
    /// ratio is first multiplied by the integer `⌊q_0/(Δ_in·ratio)⌋`
    /// (exact, no level; its scale follows). The output's absolute error is
    /// about EvalMod's error times this ratio, and the sine's cubic term
    /// limits the coefficients to about `q_0/2^10`: a smaller ratio gives
    /// more precision and a narrower input range (see the module docs).
    pub message_ratio: f64,
    /// Inputs are divided by this (at least 1) before ModRaise and the
    /// output scale restores them exactly: one level below the input (which
    /// must then be at level 1 or more) and `log2(range_divisor)` bits of
    /// absolute precision buy a range that many times wider (see the module
    /// docs). 1 skips the division.
    pub range_divisor: f64,
}

impl BootstrapConfig {
    /// The configuration a preset was designed for (full slots, message
    /// ratio 2^8 as Lattigo's default), or `None` for presets without the
    /// levels to bootstrap.
    pub fn for_preset(params: &Parameters) -> Option<Self> {
        let k = match params.name() {
            "TEST_INSECURE_BOOT_N11" | "TEST_INSECURE_BOOT_N11_L9" => 16.0,
            "PN16_BOOT_128_SPARSE_H192" => 28.0,
            _ => return None,
        };
        Some(Self {
            slots: params.max_slots(),
            cts_levels: 3,
            stc_levels: 3,
            k,
            double_angle: 3,
            cosine_degree: 63,
            output_scale: None,
            message_ratio: 256.0,
            range_divisor: 1.0,
        })
    }
}

/// A bootstrapping circuit for one parameter set and configuration, its
/// transforms encoded once.
pub struct Bootstrapper {
    ctx: Arc<CkksContext>,
    config: BootstrapConfig,
    coeff_to_slot: Vec<EncodedLinearTransform>,
    slot_to_coeff: Vec<EncodedLinearTransform>,
    cosine: ChebyshevSeries,
    /// The EvalMod polynomial's plan for an input at the CoeffToSlot
    /// output's level and scale.
    cosine_plan: PolyPlan,
    output_level: usize,
}

impl Bootstrapper {
    /// Plans and encodes the circuit. Errors: a bad slot count or level
    /// split, or a chain too short for the levels it needs (`OutOfLevels`).
    pub fn new(ctx: Arc<CkksContext>, config: BootstrapConfig) -> Result<Self> {
        let params = ctx.params().clone();
        let slots = config.slots;
        if slots < 2 || !slots.is_power_of_two() || slots > params.max_slots() {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!(
                    "slot count {slots} must be a power of two in 2..={}",
                    params.max_slots()
                ),
            });
        }
        if !(config.range_divisor.is_finite() && config.range_divisor >= 1.0) {
            return Err(Error::InvalidParameters(format!(
                "bootstrapping: range divisor {} must be at least 1",
                config.range_divisor
            )));
        }
        if !(config.message_ratio.is_finite() && config.message_ratio >= 1.0) {
            return Err(Error::InvalidParameters(format!(
                "bootstrapping: message ratio {} must be at least 1",
                config.message_ratio
            )));
        }
        if !(config.k.is_finite() && config.k >= 1.0) {
            return Err(Error::InvalidParameters(format!(
                "bootstrapping: K = {} must be at least 1",
                config.k
            )));
        }
        let top = params.max_level();
        let needed = config.cts_levels + config.stc_levels + config.double_angle as usize + 1;
        if needed > top {
            return Err(Error::OutOfLevels {
                op: OP,
                level: top,
                needed,
            });
        }
        let encoder = Encoder::new(ctx.clone());
        // Fewer stages than levels (very few slots): one stage per level.
        let cts_stages = dft::coeff_to_slot_stages(slots)?;
        let mut cts = dft::group(&cts_stages, config.cts_levels.min(cts_stages.len()))?;
        // The first factor also divides by the gap (SubSum multiplied the
        // coefficients by it), the last by 2 (the split doubles them) and by
        // K + 1, so that EvalMod's input lies in [−1, 1] at scale q_0
        // whatever the slot count: the cosine's affine map is then free. The
        // values shrink only at the last factor, so the noise of the earlier
        // ones stays small next to them.
        let gap = params.max_slots() / slots;
        let range = config.k + 1.0;
        let constant = |c: f64| {
            LinearTransform::from_diagonals(slots, [(0, vec![Complex::new(c, 0.0); slots])])
        };
        cts[0] = cts[0].compose(&constant(1.0 / gap as f64)?)?;
        let last = cts.len() - 1;
        cts[last] = constant(1.0 / (2.0 * range))?.compose(&cts[last])?;
        let coeff_to_slot = encode_sequence(&cts, &encoder, top)?;
        // EvalMod starts on its own primes even when there are fewer DFT
        // stages than CoeffToSlot levels (the ciphertext is dropped to it).
        let eval_mod_level = top - config.cts_levels;
        let two_pi = 2.0 * std::f64::consts::PI;
        let r = config.double_angle;
        let cosine = ChebyshevSeries::interpolate(
            |y| (two_pi * (range * y - 0.25) / f64::from(1u32 << r)).cos(),
            (-1.0, 1.0),
            config.cosine_degree,
        )?;
        let q = params.q();
        let cosine_plan = PolyPlan::new(
            &params,
            std::slice::from_ref(&cosine),
            eval_mod_level,
            q[0] as f64,
        )?;
        // The powers of the cosine keep their scales only if the primes they
        // are rescaled by match the input's scale (q_0).
        let log_q0 = (q[0] as f64).log2();
        let used = cosine_plan.affine_levels() + cosine_plan.depth() + r as usize;
        let eval_mod_primes = (eval_mod_level + 1).saturating_sub(used)..=eval_mod_level;
        if let Some(level) = eval_mod_primes
            .clone()
            .find(|&l| ((q[l] as f64).log2() - log_q0).abs() > 1.0)
        {
            return Err(Error::InvalidParameters(format!(
                "bootstrapping: EvalMod runs on levels {eval_mod_primes:?}, whose primes must be within a bit of q_0 (2^{log_q0:.1}); q_{level} has {:.1} bits (check cts_levels against the parameter set)",
                (q[level] as f64).log2()
            )));
        }
        let after_poly = *cosine_plan
            .output_levels()
            .first()
            .ok_or_else(|| internal("a plan of one series has one output level"))?;
        let stc_level = after_poly
            .checked_sub(r as usize)
            .ok_or(Error::OutOfLevels {
                op: OP,
                level: after_poly,
                needed: r as usize,
            })?;
        let stc_stages = dft::slot_to_coeff_stages(slots)?;
        let stc = dft::group(&stc_stages, config.stc_levels.min(stc_stages.len()))?;
        let output_level = stc_level.checked_sub(stc.len()).ok_or(Error::OutOfLevels {
            op: OP,
            level: stc_level,
            needed: stc.len(),
        })?;
        // SlotToCoeff runs at `gain` times the output scale: its inputs are
        // coefficients, about 1/√n of the slot values they become, and at the
        // output scale its rescales' rounding would cost those bits. The last
        // factor is encoded at q_level/gain, which brings the scale back.
        let gain = stc_gain(slots);
        let last = stc.len() - 1;
        let slot_to_coeff = stc
            .iter()
            .enumerate()
            .map(|(t, transform)| {
                let level = stc_level - t;
                let divisor = if t == last { gain } else { 1.0 };
                transform.encode_with_scale(&encoder, level, q[level] as f64 / divisor)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            ctx,
            config,
            coeff_to_slot,
            slot_to_coeff,
            cosine,
            cosine_plan,
            output_level,
        })
    }

    /// The context it is encoded for.
    pub fn context(&self) -> &Arc<CkksContext> {
        &self.ctx
    }

    /// The configuration.
    pub fn config(&self) -> &BootstrapConfig {
        &self.config
    }

    /// The level of every bootstrapped ciphertext.
    pub fn output_level(&self) -> usize {
        self.output_level
    }

    /// The rotation steps the circuit uses (pass them to
    /// `KeyGenerator::gen_galois_keys` with conjugation).
    pub fn rotations(&self) -> Vec<i64> {
        let mut steps: Vec<i64> = self
            .coeff_to_slot
            .iter()
            .chain(&self.slot_to_coeff)
            .flat_map(|t| t.rotations().iter().copied())
            .chain(self.sub_sum_steps())
            .collect();
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    /// Every rotation step with the highest level it rotates at: the
    /// SubSum's and CoeffToSlot's near the top, SlotToCoeff's just above
    /// [`output_level`](Self::output_level). A key capped at its step's level
    /// (`KeyGenerator::gen_galois_key_to_level`) serves the bootstrapper.
    pub fn rotation_levels(&self) -> BTreeMap<i64, usize> {
        let top = self.ctx.params().max_level();
        let mut levels = BTreeMap::new();
        let mut note = |step: i64, level: usize| {
            let entry = levels.entry(step).or_insert(level);
            *entry = (*entry).max(level);
        };
        for t in self.coeff_to_slot.iter().chain(&self.slot_to_coeff) {
            for &step in t.rotations() {
                note(step, t.level());
            }
        }
        for step in self.sub_sum_steps() {
            note(step, top);
        }
        levels
    }

    /// Whether the circuit conjugates (always: the real/imaginary split).
    pub fn needs_conjugation(&self) -> bool {
        true
    }

    /// The SubSum's rotations: `n, 2n, .., N/4` for `n < N/2` slots.
    fn sub_sum_steps(&self) -> Vec<i64> {
        let half = self.ctx.params().max_slots();
        std::iter::successors(Some(self.config.slots), |&s| Some(2 * s))
            .take_while(|&s| s < half)
            .map(|s| s as i64)
            .collect()
    }

    /// Bootstraps `ct` (any level: it is dropped to 0 first; degree 1; the
    /// configured slot count). The result has the same message at
    /// [`output_level`](Self::output_level) and the configured output scale.
    pub fn bootstrap(&self, ev: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        self.bootstrap_bounded(ev, ct, 1.0)
    }

    /// [`bootstrap`](Self::bootstrap) of values up to `bound` in magnitude
    /// (at least 1): the input's scale is relabelled `bound` times larger
    /// (its values divided by `bound`, no operation), bootstrapped to
    /// `bound` times the output scale, and relabelled back. The absolute
    /// error grows with `bound`; the relative error stays that of a
    /// bootstrap of values in `[−1, 1]`.
    pub fn bootstrap_bounded(
        &self,
        ev: &Evaluator,
        ct: &Ciphertext,
        bound: f64,
    ) -> Result<Ciphertext> {
        self.bootstrap_bounded_to_scale(ev, ct, bound, self.output_scale())
    }

    /// [`bootstrap_bounded`](Self::bootstrap_bounded) with the output at
    /// `output_scale` instead of the configured one.
    pub fn bootstrap_bounded_to_scale(
        &self,
        ev: &Evaluator,
        ct: &Ciphertext,
        bound: f64,
        output_scale: f64,
    ) -> Result<Ciphertext> {
        check_bound(bound)?;
        let mut relabelled = ct.try_clone()?;
        relabelled.scale *= bound;
        let mut out = self.bootstrap_to_scale(ev, &relabelled, output_scale * bound)?;
        out.scale = output_scale;
        Ok(out)
    }

    /// The configured output scale (default: the parameter set's).
    pub fn output_scale(&self) -> f64 {
        self.config
            .output_scale
            .unwrap_or(self.ctx.params().default_scale())
    }

    /// [`bootstrap`](Self::bootstrap) with the output at `output_scale`.
    fn bootstrap_to_scale(
        &self,
        ev: &Evaluator,
        ct: &Ciphertext,
        output_scale: f64,
    ) -> Result<Ciphertext> {
        let params = self.ctx.params();
        self.ctx.check_params(OP, ct.params_id())?;
        if ct.slots() != self.config.slots {
            return Err(Error::LengthMismatch {
                op: OP,
                got: ct.slots(),
                expected: self.config.slots,
            });
        }
        if ct.degree() != 1 {
            return Err(Error::DegreeMismatch {
                op: OP,
                degree: ct.degree(),
                expected: 1,
            });
        }
        let divisor = self.config.range_divisor;
        let divided;
        let ct = if divisor == 1.0 {
            ct
        } else {
            let mut scaled = ct.try_clone()?;
            ev.mul_const_assign(&mut scaled, Complex::new(1.0 / divisor, 0.0))?;
            ev.rescale_assign(&mut scaled)?;
            divided = scaled;
            &divided
        };
        let q0 = params.q()[0] as f64;
        let lift = (q0 / (ct.scale() * self.config.message_ratio)).floor();
        let lifted;
        let ct = if lift >= 2.0 {
            let mut scaled = ct.try_clone()?;
            // Below 2^62 (q_0 < 2^62 and the ratio is at least 1).
            ev.mul_integer_assign(&mut scaled, lift as i64)?;
            scaled.scale *= lift;
            lifted = scaled;
            &lifted
        } else {
            ct
        };
        let input_scale = ct.scale();
        let mut raised = ev.mod_raise_new(ct)?;
        raised.scale = q0;
        for step in self.sub_sum_steps() {
            let rotated = ev.rotate_new(&raised, step)?;
            ev.add_assign(&mut raised, &rotated)?;
        }
        let w = evaluate_sequence(ev, &raised, &self.coeff_to_slot)?;
        let (mut real, mut imag) = ev.complex_split_new(&w)?;
        let eval_mod_level = self.cosine_plan.input_level();
        for part in [&mut real, &mut imag] {
            ev.drop_level_assign(part, part.level() - eval_mod_level)?;
        }
        // EvalMod's output scale S such that relabelling S·2πΔ_in/q_0 gives the
        // output scale.
        let two_pi = 2.0 * std::f64::consts::PI;
        let gain = stc_gain(self.config.slots);
        let eval_mod_scale = gain * output_scale * divisor * q0 / (two_pi * input_scale);
        let mut real = self.eval_mod(ev, &real, eval_mod_scale)?;
        let mut imag = self.eval_mod(ev, &imag, eval_mod_scale)?;
        real.scale = gain * output_scale;
        imag.scale = gain * output_scale;
        ev.mul_i_assign(&mut imag)?;
        ev.add_assign(&mut real, &imag)?;
        evaluate_sequence(ev, &real, &self.slot_to_coeff)
    }

    /// Bootstraps two ciphertexts of real messages with one complex
    /// bootstrap: `a + i·b` is bootstrapped, then split with one
    /// conjugation into `(z + conj(z))/2` and `−i·(z − conj(z))/2` (the
    /// halving is a relabelling of the scale). Both outputs are at
    /// [`output_level`](Self::output_level) and the configured output scale;
    /// imaginary parts of the inputs are not preserved.
    pub fn bootstrap_two_real(
        &self,
        ev: &Evaluator,
        a: &Ciphertext,
        b: &Ciphertext,
    ) -> Result<(Ciphertext, Ciphertext)> {
        self.bootstrap_two_real_bounded(ev, a, b, 1.0)
    }

    /// [`bootstrap_two_real`](Self::bootstrap_two_real) of values up to
    /// `bound` in magnitude (see [`bootstrap_bounded`](Self::bootstrap_bounded)).
    /// `a` and `b` must share their level and scale.
    pub fn bootstrap_two_real_bounded(
        &self,
        ev: &Evaluator,
        a: &Ciphertext,
        b: &Ciphertext,
        bound: f64,
    ) -> Result<(Ciphertext, Ciphertext)> {
        self.bootstrap_two_real_bounded_to_scale(ev, a, b, bound, self.output_scale())
    }

    /// [`bootstrap_two_real_bounded`](Self::bootstrap_two_real_bounded)
    /// with the outputs at `output_scale` instead of the configured one.
    pub fn bootstrap_two_real_bounded_to_scale(
        &self,
        ev: &Evaluator,
        a: &Ciphertext,
        b: &Ciphertext,
        bound: f64,
        output_scale: f64,
    ) -> Result<(Ciphertext, Ciphertext)> {
        check_bound(bound)?;
        let mut packed = ev.complex_pack_new(a, b)?;
        packed.scale *= bound;
        // The split doubles the values: relabelling the scale by 2 halves them.
        let z = self.bootstrap_to_scale(ev, &packed, output_scale * bound / 2.0)?;
        let (mut real, mut imag) = ev.complex_split_new(&z)?;
        real.scale = output_scale;
        imag.scale = output_scale;
        Ok((real, imag))
    }

    /// `sin(2πx)` at scale `target` (see the module docs): the cosine
    /// polynomial at the scale that the double angles square into `target`.
    fn eval_mod(&self, ev: &Evaluator, x: &Ciphertext, target: f64) -> Result<Ciphertext> {
        let q = self.ctx.params().q();
        let r = self.config.double_angle as usize;
        let poly_level = *self
            .cosine_plan
            .output_levels()
            .first()
            .ok_or_else(|| internal("a plan of one series has one output level"))?;
        // Squaring at level l and rescaling maps scale s to s²/q_l.
        let mut scale = target;
        for step in (0..r).rev() {
            scale = (scale * q[poly_level - step] as f64).sqrt();
        }
        let mut c = self
            .cosine_plan
            .evaluate(ev, x, Some(scale))?
            .pop()
            .ok_or_else(|| internal("a plan of one series has one output"))?;
        for _ in 0..r {
            let mut square = ev.mul_relin_rescale_new(&c, &c)?;
            ev.mul_integer_assign(&mut square, 2)?;
            ev.sub_const_assign(&mut square, Complex::new(1.0, 0.0))?;
            c = square;
        }
        Ok(c)
    }

    /// The cosine interpolant EvalMod evaluates.
    pub fn cosine(&self) -> &ChebyshevSeries {
        &self.cosine
    }
}

/// A value bound must be finite and at least 1.
fn check_bound(bound: f64) -> Result<()> {
    if bound.is_finite() && bound >= 1.0 {
        Ok(())
    } else {
        Err(Error::OutOfRange {
            op: OP,
            detail: format!("value bound {bound} must be finite and at least 1"),
        })
    }
}

/// The factor by which SlotToCoeff's working scale exceeds the output
/// scale: `√n` for `n` slots, a power of two.
fn stc_gain(slots: usize) -> f64 {
    2f64.powi((slots.trailing_zeros() / 2) as i32)
}

/// An internal invariant failed (a bug, reported rather than panicking).
fn internal(what: &str) -> Error {
    Error::OutOfRange {
        op: OP,
        detail: format!("internal: {what}"),
    }
}
