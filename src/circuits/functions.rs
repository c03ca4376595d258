//! The fitted approximations of [`crate::approx`] under encryption: one
//! polynomial, composed polynomials (sign, ReLU), a polynomial guess and
//! Newton steps (inverse square root, reciprocal), and exp by squaring.
//!
//! Each circuit follows the order of operations of the `f64` evaluation
//! ([`Approximation::eval`]), so the plain evaluation is its twin. Scales stay
//! exact and never fall below the input's, whatever the sizes of the primes
//! they rescale by: exp by squaring encodes its first constant at the scale
//! that its squarings bring back to the input's exactly; a Newton step
//! relabels `x` (as `x/2` for the inverse square root) when that keeps its
//! output at or above the input's scale, and otherwise takes its copy of `x`
//! through a constant product one level above the step that lands the
//! output at the input's scale;
//! the one sum of two ciphertexts (the inverse square root's
//! `1.5·y − (h·y)·(y·y)`) is formed before its rescale with the constant
//! encoded at the scale that makes both terms equal.
//!
//! Levels: a polynomial takes [`PolyPlan`]'s depth; a Newton step two levels;
//! exp by squaring one for `x/2^r` and one per squaring. The output's level
//! tells what a call consumed. [`evaluate_refreshing`] runs the same
//! circuits past the end of the chain, asking a
//! [`Refresh`](crate::circuits::refresh::Refresh) for levels between stages.
//!
//! [`PolyPlan`]: crate::circuits::poly::PolyPlan

use crate::approx::{
    Approximation, ChebyshevSeries, CompositeClip, CompositeRelu, NewtonApproximation, NewtonTarget,
};
use crate::circuits::combine::{combine, multiply_pairs};
use crate::circuits::poly::PolyPlan;
use crate::circuits::refresh::{ensure_all, ensure_both, NoRefresh, Refresh};
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;

/// `approximation` applied to the slots of `x` (which must lie in its
/// domain), at `x`'s scale for polynomials and composites; the others end at
/// whatever exact scale their products give. `x` must have every level the
/// circuit needs.
pub fn evaluate(
    ev: &Evaluator,
    x: &Ciphertext,
    approximation: &Approximation,
) -> Result<Ciphertext> {
    evaluate_refreshing(ev, x, approximation, 1.0, &mut NoRefresh)
}

/// [`evaluate`] for a circuit that may be longer than `x`'s levels: before
/// each stage (a polynomial, a Newton step, the product that starts exp by
/// squaring, a squaring, ReLU's last product) whose inputs lack levels,
/// `refresher` supplies them. `bound` bounds `|x|`; the intermediate values
/// are bounded by the approximation itself (sign stages and the squarings'
/// bases by 1, Newton iterates by the target at the interval's low end).
/// After a refresh, scales are the refreshed ones: the output's scale is
/// exact but may differ from `x`'s.
pub fn evaluate_refreshing(
    ev: &Evaluator,
    x: &Ciphertext,
    approximation: &Approximation,
    bound: f64,
    refresher: &mut dyn Refresh,
) -> Result<Ciphertext> {
    single(evaluate_batch(
        ev,
        std::slice::from_ref(x),
        approximation,
        bound,
        refresher,
    )?)
}

/// [`evaluate_refreshing`] on every ciphertext of `xs` in lockstep: each
/// stage runs on all of them, and those lacking levels are refreshed
/// together (one call of the refresher per stage, which may bootstrap them
/// together).
pub fn evaluate_batch(
    ev: &Evaluator,
    xs: &[Ciphertext],
    approximation: &Approximation,
    bound: f64,
    refresher: &mut dyn Refresh,
) -> Result<Vec<Ciphertext>> {
    match approximation {
        Approximation::Polynomial(p) => {
            polynomial_stage(ev, copies(xs)?, p, bound, None, refresher)
        }
        Approximation::CompositeSign(s) => compose(ev, xs, s.stages(), bound, refresher),
        Approximation::CompositeRelu(r) => Ok(relu_with_step(ev, xs, r, bound, refresher)?.0),
        Approximation::Newton(n) => newton(ev, xs, n, bound, refresher),
        Approximation::ExpBySquaring(e) => exp_by_squaring(ev, xs, e.squarings(), bound, refresher),
    }
}

/// The composite ReLU of every `x_i` and its derivative, the step
/// `(1 + sign x)/2` (the composite's stages, before the product with `x`),
/// in lockstep: `(relu, step)`. Backpropagation keeps the step.
pub fn relu_with_step(
    ev: &Evaluator,
    xs: &[Ciphertext],
    relu: &CompositeRelu,
    bound: f64,
    refresher: &mut dyn Refresh,
) -> Result<(Vec<Ciphertext>, Vec<Ciphertext>)> {
    let mut steps = compose(ev, xs, relu.stages(), bound, refresher)?;
    let mut x = copies(xs)?;
    ensure_both(refresher, ev, (&mut steps, STAGE_BOUND), (&mut x, bound), 1)?;
    let relus = steps
        .iter()
        .zip(&x)
        .map(|(s, x)| {
            let level = x.level().min(s.level());
            ev.mul_relin_rescale_new(&at_level(ev, x, level)?, &at_level(ev, s, level)?)
        })
        .collect::<Result<_>>()?;
    Ok((relus, steps))
}

/// `clip` applied to the slots of every ciphertext of `xs` (values in
/// `[−r, r]`, `r` the clip's range), in the order of
/// [`CompositeClip::eval`]: `y₁ = (x − c)/w` and `y₂ = (−x − c)/w` (one
/// constant product each), the sign of all of them in lockstep,
/// `|y| = y·s(y)` (one product), then `(w/2)·(|y₂| − |y₁|)` (one constant
/// product), at the default scale. Levels: the sign's depth plus three,
/// from `refresher` where they run out.
///
/// Errors: the refresher's and the operations' errors.
pub fn clip_batch(
    ev: &Evaluator,
    xs: &[Ciphertext],
    clip: &CompositeClip,
    refresher: &mut dyn Refresh,
) -> Result<Vec<Ciphertext>> {
    let scale = ev.context().params().default_scale();
    let (c, w) = (clip.limit(), clip.width());
    let mut xs = copies(xs)?;
    ensure_all(refresher, ev, &mut xs, clip.range(), 1)?;
    let mut ys = Vec::with_capacity(2 * xs.len());
    for direction in [1.0, -1.0] {
        for x in &xs {
            let mut y = combine(ev, &[(x, direction / w)], scale)?;
            ev.add_const_assign(&mut y, Complex::new(-c / w, 0.0))?;
            ys.push(y);
        }
    }
    let mut signs = compose(ev, &ys, clip.sign().stages(), STAGE_BOUND, refresher)?;
    let mut magnitudes = multiply_pairs(
        ev,
        (&mut ys, STAGE_BOUND),
        (&mut signs, STAGE_BOUND),
        refresher,
    )?;
    ensure_all(refresher, ev, &mut magnitudes, STAGE_BOUND, 1)?;
    let (below, above) = magnitudes.split_at(xs.len());
    below
        .iter()
        .zip(above)
        .map(|(y1, y2)| combine(ev, &[(y2, w / 2.0), (y1, -w / 2.0)], scale))
        .collect()
}

/// The bound of a sign stage's output and of exp's bases (`[−1, 1]`).
const STAGE_BOUND: f64 = 1.0;

/// Copies of `cts`.
fn copies(cts: &[Ciphertext]) -> Result<Vec<Ciphertext>> {
    cts.iter().map(Ciphertext::try_clone).collect()
}

/// The one element of a batch of one.
fn single(mut outputs: Vec<Ciphertext>) -> Result<Ciphertext> {
    outputs.pop().ok_or_else(|| Error::OutOfRange {
        op: "functions",
        detail: "internal: a batch of one has one output".into(),
    })
}

/// The plans of `series` for every element of `xs`, those lacking the
/// plan's levels refreshed first (together).
fn plans_refreshing(
    ev: &Evaluator,
    xs: &mut [Ciphertext],
    series: &ChebyshevSeries,
    bound: f64,
    refresher: &mut dyn Refresh,
) -> Result<Vec<PolyPlan>> {
    let params = ev.context().params();
    let series = std::slice::from_ref(series);
    let plan = |x: &Ciphertext| PolyPlan::new(params, series, x.level(), x.scale());
    let mut needed = None;
    for x in xs.iter() {
        match plan(x) {
            Err(Error::OutOfLevels { needed: n, .. }) => needed = needed.max(Some(n)),
            other => {
                other?;
            }
        }
    }
    if let Some(needed) = needed {
        let mut due: Vec<(&mut Ciphertext, f64)> = xs
            .iter_mut()
            .filter(|x| plan(x).is_err())
            .map(|x| (x, bound))
            .collect();
        refresher.refresh(ev, &mut due, needed)?;
    }
    xs.iter().map(plan).collect()
}

/// `series` on every element of `xs`, at `output_scale` (default: each
/// input's).
fn polynomial_stage(
    ev: &Evaluator,
    mut xs: Vec<Ciphertext>,
    series: &ChebyshevSeries,
    bound: f64,
    output_scale: Option<f64>,
    refresher: &mut dyn Refresh,
) -> Result<Vec<Ciphertext>> {
    let plans = plans_refreshing(ev, &mut xs, series, bound, refresher)?;
    plans
        .iter()
        .zip(&xs)
        .map(|(plan, x)| single(plan.evaluate(ev, x, output_scale)?))
        .collect()
}

/// `(1 + x/2^r)^(2^r)`: a constant product (one level; relabelling the scale
/// instead would leave it 2^r above the primes, and the squarings would
/// square that), then `r` squarings. The constant's encoding scale is chosen
/// backwards from the output so that the squarings `x`'s levels allow end
/// at `x`'s scale exactly, whatever the sizes of the primes; squarings
/// after a refresh start from the refreshed scale.
fn exp_by_squaring(
    ev: &Evaluator,
    xs: &[Ciphertext],
    squarings: u32,
    bound: f64,
    refresher: &mut dyn Refresh,
) -> Result<Vec<Ciphertext>> {
    let q = ev.context().params().q();
    let mut ts = copies(xs)?;
    // A refresh of the bases costs a relative error that every remaining
    // squaring doubles (and bases near 1 have a common offset, which
    // bootstrapping keeps worst): refresh `x` instead, for as many of the
    // squarings as the refresher's levels hold.
    let wanted = refresher
        .max_level()
        .map_or(1, |top| (squarings as usize + 1).clamp(1, top));
    ensure_all(refresher, ev, &mut ts, bound, wanted)?;
    let factor = 2f64.powi(-(squarings as i32));
    for t in ts.iter_mut() {
        let top = t.level();
        let rounds = (squarings as usize).min(top - 1);
        // The scale before the squaring at level l is √(scale after · q_l).
        // The last squaring here rescales by q_(top − rounds), the first by q_(top − 1).
        let scale = q[top - rounds..top]
            .iter()
            .fold(t.scale(), |after, &prime| (after * prime as f64).sqrt());
        let const_scale = scale * q[top] as f64 / t.scale();
        ev.mul_const_with_scale_assign(t, Complex::new(factor, 0.0), const_scale)?;
        ev.rescale_assign(t)?;
        ev.add_const_assign(t, Complex::new(1.0, 0.0))?;
    }
    for _ in 0..squarings {
        ensure_all(refresher, ev, &mut ts, STAGE_BOUND, 1)?;
        ts = ts
            .iter()
            .map(|t| ev.mul_relin_rescale_new(t, t))
            .collect::<Result<_>>()?;
    }
    Ok(ts)
}

/// The stages applied in turn, first stage first.
fn compose(
    ev: &Evaluator,
    xs: &[Ciphertext],
    stages: &[ChebyshevSeries],
    bound: f64,
    refresher: &mut dyn Refresh,
) -> Result<Vec<Ciphertext>> {
    let mut ys = copies(xs)?;
    let mut y_bound = bound;
    for stage in stages {
        ys = polynomial_stage(ev, ys, stage, y_bound, None, refresher)?;
        y_bound = STAGE_BOUND;
    }
    Ok(ys)
}

/// The initial polynomial, then the Newton steps in the order of
/// [`NewtonApproximation::eval`]. The iterates sit at scales near the primes
/// they are rescaled by (the polynomial's output at least at its level's
/// prime, each step but the last aimed at its output level's prime), so that
/// `y·y` keeps its precision whatever the input's scale; the last step lands
/// at or above `x`'s scale. A step whose `y` has fewer than two levels
/// refreshes `y` (bounded by the target at the interval's low end, with the
/// initial error) and drops it one level; `x` is refreshed whenever it is
/// not above `y`.
fn newton(
    ev: &Evaluator,
    xs: &[Ciphertext],
    n: &NewtonApproximation,
    bound: f64,
    refresher: &mut dyn Refresh,
) -> Result<Vec<Ciphertext>> {
    let q = ev.context().params().q();
    let mut xs = copies(xs)?;
    let plans = plans_refreshing(ev, &mut xs, n.initial(), bound, refresher)?;
    let mut ys = plans
        .iter()
        .zip(&xs)
        .map(|(plan, x)| {
            let initial_level = *plan
                .output_levels()
                .first()
                .ok_or_else(|| Error::OutOfRange {
                    op: "newton",
                    detail: "internal: a plan of one series has one output level".into(),
                })?;
            // At a level below a step's two, the first step refreshes `y`:
            // the prime's scale (q_0 may be far above the default scale) is
            // no use there.
            let initial_scale = if initial_level >= 2 {
                x.scale().max(q[initial_level] as f64)
            } else {
                x.scale()
            };
            single(plan.evaluate(ev, x, Some(initial_scale))?)
        })
        .collect::<Result<Vec<_>>>()?;
    let y_bound = (n.target().exact(n.interval().0) * (1.0 + n.initial_relative_error())).max(1.0);
    for step in 0..n.steps() {
        // One level below the refreshed level, so that `x` can sit above
        // `y` for `newton_copy`'s constant product.
        let mut low: Vec<(&mut Ciphertext, f64)> = ys
            .iter_mut()
            .filter(|y| y.level() < 2)
            .map(|y| (y, y_bound))
            .collect();
        refresher.refresh(ev, &mut low, 3)?;
        for (y, _) in low {
            ev.drop_level_assign(y, 1)?;
        }
        let needed = ys.iter().map(|y| y.level() + 1).max().unwrap_or(0);
        let mut due: Vec<(&mut Ciphertext, f64)> = xs
            .iter_mut()
            .zip(&ys)
            .filter(|(x, y)| x.level() <= y.level())
            .map(|(x, _)| (x, bound))
            .collect();
        refresher.refresh(ev, &mut due, needed)?;
        ys = xs
            .iter()
            .zip(&ys)
            .map(|(x, y)| {
                let target = if step + 1 == n.steps() {
                    x.scale()
                } else {
                    // The output level's prime when the next step runs there
                    // (otherwise it refreshes `y` first).
                    y.level()
                        .checked_sub(2)
                        .filter(|&level| level >= 2)
                        .map_or(x.scale(), |level| q[level] as f64)
                };
                match n.target() {
                    NewtonTarget::InverseSqrt => inverse_sqrt_step(ev, x, y, target),
                    NewtonTarget::Reciprocal => reciprocal_step(ev, x, y, target),
                }
            })
            .collect::<Result<_>>()?;
    }
    Ok(ys)
}

/// `x` at `level` (a copy).
fn at_level(ev: &Evaluator, x: &Ciphertext, level: usize) -> Result<Ciphertext> {
    let mut out = x.try_clone()?;
    ev.drop_level_assign(&mut out, x.level() - level)?;
    Ok(out)
}

/// How far above its target a relabelled Newton step's output may land.
const RELABEL_CEILING: f64 = 256.0;

/// `value·x` at `level`, for a Newton step whose output scale is
/// `natural_scale·s` when this copy has the scale `s`. Relabelled (`x`'s own
/// integers at the scale `x.scale()/value`, no operation) when that puts
/// the output in `[target, RELABEL_CEILING·target]` (a scale above the
/// target is precision gained); otherwise through a constant product at
/// `level + 1` (`x` must be at least there) encoded at the scale that puts
/// the output at `target` exactly. (Accepting any output above `target`
/// would let the scale grow without bound: the next step cubes its ratio to
/// the primes.)
fn newton_copy(
    ev: &Evaluator,
    x: &Ciphertext,
    value: f64,
    level: usize,
    natural_scale: f64,
    target: f64,
) -> Result<Ciphertext> {
    let relabelled = x.scale() / value;
    if (target..=RELABEL_CEILING * target).contains(&(natural_scale * relabelled)) {
        let mut out = at_level(ev, x, level)?;
        out.scale = relabelled;
        return Ok(out);
    }
    let mut out = at_level(ev, x, level + 1)?;
    let q = ev.context().params().q()[level + 1] as f64;
    let copy_scale = target / natural_scale;
    ev.mul_const_with_scale_assign(
        &mut out,
        Complex::new(value, 0.0),
        copy_scale * q / x.scale(),
    )?;
    ev.rescale_assign(&mut out)?;
    Ok(out)
}

/// `1.5·y − (h·y)·(y·y)` with `h = x/2`, two levels: the product's tensor and
/// `1.5·y` (its constant encoded at the tensor's scale over `y`'s) are summed
/// before one relinearize-and-rescale. The output's scale is
/// `s_h·s_y³/(q_1²·q_2)` (`q_1` the prime of `y`'s level, `q_2` the next),
/// at least `target` (see [`newton_copy`] for `s_h`).
fn inverse_sqrt_step(
    ev: &Evaluator,
    x: &Ciphertext,
    y: &Ciphertext,
    target: f64,
) -> Result<Ciphertext> {
    let (q1, q2) = step_primes(ev, y)?;
    let natural = y.scale().powi(3) / (q1 * q1 * q2);
    let half_x = newton_copy(ev, x, 0.5, y.level(), natural, target)?;
    let hy = ev.mul_relin_rescale_new(&half_x, y)?;
    let yy = ev.mul_relin_rescale_new(y, y)?;
    let mut sum = ev.tensor_new(&hy, &yy)?;
    ev.neg_assign(&mut sum)?;
    let mut linear = at_level(ev, y, sum.level())?;
    let constant_scale = sum.scale() / linear.scale();
    ev.mul_const_with_scale_assign(&mut linear, Complex::new(1.5, 0.0), constant_scale)?;
    ev.add_assign(&mut sum, &linear)?;
    ev.relinearize_rescale_assign(&mut sum)?;
    Ok(sum)
}

/// `y·(2 − x·y)`, two levels; the output's scale is `s_x'·s_y²/(q_1·q_2)`
/// for the copy `x'` of [`newton_copy`], at least `target`.
fn reciprocal_step(
    ev: &Evaluator,
    x: &Ciphertext,
    y: &Ciphertext,
    target: f64,
) -> Result<Ciphertext> {
    let (q1, q2) = step_primes(ev, y)?;
    let natural = y.scale() * y.scale() / (q1 * q2);
    let x_copy = newton_copy(ev, x, 1.0, y.level(), natural, target)?;
    let mut e = ev.mul_relin_rescale_new(&x_copy, y)?;
    ev.neg_assign(&mut e)?;
    ev.add_const_assign(&mut e, Complex::new(2.0, 0.0))?;
    ev.mul_relin_rescale_new(&at_level(ev, y, e.level())?, &e)
}

/// The primes a Newton step on `y` rescales by: `q` at `y`'s level and the
/// one below (a step needs two levels).
fn step_primes(ev: &Evaluator, y: &Ciphertext) -> Result<(f64, f64)> {
    if y.level() < 2 {
        return Err(Error::OutOfLevels {
            op: "newton_step",
            level: y.level(),
            needed: 2,
        });
    }
    let q = ev.context().params().q();
    Ok((q[y.level()] as f64, q[y.level() - 1] as f64))
}
