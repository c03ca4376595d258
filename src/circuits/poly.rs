//! Homomorphic evaluation of polynomials given in the Chebyshev basis
//! ([`ChebyshevSeries`]) on a ciphertext whose slots lie in the series'
//! interval `[a, b]`, through evaluator operations only (every backend).
//!
//! # The circuit
//!
//! 1. **Affine map.** `y = α·(x + shift)` with `α = 2/(b − a)`,
//!    `shift = −(a + b)/2` maps `[a, b]` onto `[−1, 1]`. Adding `shift` is one
//!    constant addition (skipped when zero). The factor `α` is *folded* when
//!    it can be: the ciphertext is multiplied by the integer
//!    `K = max(1, round(α·q_ℓ/s))` (exact) and relabelled at scale `s·K/α`,
//!    which then holds `α·(x + shift)`: no level, no rescale (and nothing at
//!    all when `α = K = 1`). The fold is taken when it leaves the scale of
//!    `y` within `2^(1/i)` of `q_ℓ`, `i` the highest power computed, so that
//!    no power's scale drifts by more than one bit from the primes (`T_i`
//!    has a scale near `q·(s_y/q)^i`): for `[−1, 1]` and every interval of
//!    length `2/K` at a scale close to the primes (the presets' default
//!    scale). Otherwise `α` is encoded at `q_{ℓ−1}·q_ℓ/s` and the product
//!    rescaled: **one level**, and `y` lands at scale exactly `q_{ℓ−1}`. An
//!    input scale below the primes is lifted by the fold's integer for free;
//!    one well above them takes the level to come down. An
//!    interval so wide that `α` would be encoded as an integer below 2^20
//!    would need a second rescale and is refused.
//!    [`PolyPlan::affine_levels`] says which case applies.
//! 2. **Powers.** `T_i(y)` for `i >= 2` by `T_{2a} = 2T_a² − 1` and
//!    `T_{a+b} = 2T_aT_b − T_{a−b}` with `a = 2^(⌈log2 i⌉−1)`, `b = i − a`, so
//!    that `T_i` sits at depth `⌈log2 i⌉` below `y`. Only the powers the
//!    evaluation uses are computed, with what their recurrences need: an odd
//!    polynomial uses odd powers and powers of two only (odd `i` splits into a
//!    power of two and two odd indices), an even one even powers only. The
//!    even/odd specialisation is therefore a property of the coefficients
//!    (exact zeros), not a separate code path.
//! 3. **Baby-step giant-step.** `p = q·T_g + r` with `g` the largest power of
//!    two not above `deg p` (Chebyshev division: `q_0 = c_g`,
//!    `q_j = 2c_{g+j}`, `r_i = c_i − c_{2g−i}`), recursively, until a part
//!    fits as a leaf: `Σ c_i T_i` with every `i` at most the baby-step bound
//!    `2^l` and deep enough to leave room for the constant products. The
//!    quotient gets one level less than its parent, the remainder the same:
//!    a node with depth budget `β` (its value sits at depth `β`, before its
//!    rescale) is a leaf when `deg <= 2^l` and `⌈log2 deg⌉ <= β`. `l` is the
//!    one of `0..=D` that minimises the ciphertext products, then the
//!    relinearizations.
//!
//! # Depth
//!
//! A non-constant polynomial of degree `d` (highest non-zero coefficient)
//! consumes exactly `D = ⌈log2(d + 1)⌉` levels after the affine map, which
//! is optimal (the constants are applied by products that need a level of
//! their own). With the map: `D` when it folds, `D + 1` when it needs its
//! level. Quotients along the leading chain are split further than the baby
//! steps when their top coefficients would be too deep (`T_3` in a budget of
//! one level, say): about `l − 1` products more than the classical
//! baby-step giant-step, which loses a level (18 instead of 16 products at
//! degree 63, 36 instead of 33 at degree 255, all coefficients non-zero).
//!
//! # Scales (top-down targets)
//!
//! Every sum is formed at one level and one scale, *before* the single
//! rescale that follows it (lazy rescale), and every addend is built to land
//! at exactly that scale (equal within 1e-12 relative, never an integer
//! fix-up). A node asked for level `λ` and scale `S`:
//!
//! - a leaf term `c·T_i`: `T_i` dropped to `λ`, times `c` encoded at `S/σ_i`
//!   (`σ_i` the actual scale of `T_i`);
//! - a product `q·T_g`: `q` is asked for level `λ + 1` and scale
//!   `S·q_{λ+1}/σ_g`, relinearized and rescaled (one division by `P·q_{λ+1}`)
//!   to `(λ, S/σ_g)`, then tensored with `T_g`: scale `S`, degree 2 (lazy
//!   relinearization: the degree-2 products of a node are summed and
//!   relinearized once);
//! - the constant: added at `S`.
//!
//! The output scale `S_out` at level `ℓ_out` is obtained by asking the root
//! for `(ℓ_out + 1, S_out·q_{ℓ_out+1})` and rescaling once. The powers carry
//! whatever scales their products give; `T_{a+b}` is formed at the tensor's
//! scale `σ_aσ_b` before its rescale: the tensor is doubled (an integer
//! product) and `T_{a−b}`, dropped to the tensor's level and multiplied by 1
//! encoded at `σ_aσ_b/σ_{a−b}`, is subtracted, then one relinearize-and-rescale.
//!
//! # Cost
//!
//! [`PolyPlan`] counts the ciphertext products (one per power, one per
//! non-constant quotient) and the relinearizations, and needs only a
//! relinearization key (none when there is no ciphertext product); no
//! rotation or conjugation key. Several polynomials on the same input and
//! interval share the affine map and the powers; each output lands at its
//! own depth.
//!
//! # Constants and errors
//!
//! A constant series (every coefficient but `c_0` zero) evaluates to
//! `0·x + c_0`: the input multiplied by 0 with the requested scale (which must
//! then be at least the input's), plus `c_0`, at the input's level; no level,
//! no key. Too few levels are [`Error::OutOfLevels`] from [`PolyPlan::new`],
//! before any work. Series on different intervals, an interval too wide for
//! the affine map (see above) and an input or output scale that is not
//! finite or below 1 are [`Error::OutOfRange`] (a `ChebyshevSeries` cannot
//! hold an empty or infinite interval). A missing relinearization key is the
//! evaluator's [`Error::MissingRelinearizationKey`], at the first product.
//! The input ciphertext is never modified.

use std::collections::{BTreeMap, BTreeSet};

use crate::approx::ChebyshevSeries;
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;
use crate::params::Parameters;

const OP: &str = "poly_eval";
/// Scales closer than this (relative) are equal, as in the evaluator.
const SCALE_EQUAL_TOLERANCE: f64 = 1e-12;
/// The largest integer a folded affine map multiplies by.
const MAX_FOLD_FACTOR: f64 = (1u64 << 32) as f64;
/// The smallest integer `α` may be encoded as by a rescaled affine map
/// (20 significant bits).
const MIN_ALPHA_ENCODING: f64 = (1u64 << 20) as f64;

/// `⌈log2 n⌉` for `n >= 1`.
fn ceil_log2(n: usize) -> usize {
    (usize::BITS - n.saturating_sub(1).leading_zeros()) as usize
}

/// `T_i = 2·T_a·T_b − T_{a−b}` (`T_0 = 1`) with `a = 2^(⌈log2 i⌉−1)`,
/// `b = i − a <= a`, for `i >= 2`: `T_i` sits one level below `T_a`.
fn power_operands(i: usize) -> (usize, usize) {
    let a = 1 << (ceil_log2(i) - 1);
    (a, i - a)
}

/// The coefficients without trailing (exact) zeros; at least one.
fn trimmed(mut coeffs: Vec<f64>) -> Vec<f64> {
    while coeffs.len() > 1 && coeffs[coeffs.len() - 1] == 0.0 {
        coeffs.pop();
    }
    coeffs
}

/// `p = q·T_g + r` for `g <= deg p < 2g`: `2·T_g·T_j = T_{g+j} + T_{g−j}`
/// gives `q_0 = c_g`, `q_j = 2·c_{g+j}` and `r_i = c_i − c_{2g−i}` (`i < g`).
fn divide(coeffs: &[f64], g: usize) -> (Vec<f64>, Vec<f64>) {
    let mut quotient: Vec<f64> = coeffs[g..].iter().map(|&c| 2.0 * c).collect();
    quotient[0] = coeffs[g];
    let mut remainder = coeffs[..g].to_vec();
    for (j, &c) in coeffs.iter().enumerate().skip(g + 1) {
        remainder[2 * g - j] -= c;
    }
    (trimmed(quotient), trimmed(remainder))
}

/// A polynomial formed at one level and scale, before the rescale that
/// follows it: `constant + Σ c·T_i + Σ q·T_g`. Every `T_i` and `T_g` is at
/// depth at most the node's budget, every quotient is non-constant and has
/// one level less.
#[derive(Clone, Debug, Default)]
struct Node {
    constant: f64,
    terms: Vec<(usize, f64)>,
    products: Vec<(usize, Node)>,
}

impl Node {
    /// `coeffs` (trimmed, degree >= 1) within depth `budget`, with baby steps
    /// up to `T_baby`. Invariant: `budget >= ⌈log2(deg + 1)⌉ − 1`.
    fn build(mut coeffs: Vec<f64>, budget: usize, baby: usize) -> Node {
        let mut node = Node::default();
        loop {
            let degree = coeffs.len() - 1;
            if degree == 0 || (degree <= baby && ceil_log2(degree) <= budget) {
                node.constant = coeffs[0];
                let terms = coeffs.iter().enumerate().skip(1);
                node.terms
                    .extend(terms.filter(|(_, &c)| c != 0.0).map(|(i, &c)| (i, c)));
                return node;
            }
            let giant = 1 << degree.ilog2();
            let (quotient, remainder) = divide(&coeffs, giant);
            if quotient.len() == 1 {
                node.terms.push((giant, quotient[0]));
            } else {
                let quotient = Node::build(quotient, budget.saturating_sub(1), baby);
                node.products.push((giant, quotient));
            }
            coeffs = remainder;
        }
    }

    /// Adds the indices of every power the node reads.
    fn powers(&self, out: &mut BTreeSet<usize>) {
        out.extend(self.terms.iter().map(|&(i, _)| i));
        for (giant, quotient) in &self.products {
            out.insert(*giant);
            quotient.powers(out);
        }
    }

    /// Ciphertext products.
    fn tensors(&self) -> usize {
        let inner: usize = self.products.iter().map(|(_, q)| q.tensors()).sum();
        self.products.len() + inner
    }

    /// Relinearizations: one per node with products (its sum has degree 2).
    fn relinearizations(&self) -> usize {
        let inner: usize = self
            .products
            .iter()
            .map(|(_, q)| q.relinearizations())
            .sum();
        usize::from(!self.products.is_empty()) + inner
    }

    /// Products by constants.
    fn constant_products(&self) -> usize {
        let inner: usize = self
            .products
            .iter()
            .map(|(_, q)| q.constant_products())
            .sum();
        self.terms.len() + inner
    }
}

/// Every power the indices need (theirs and their recurrences'), `i >= 2`,
/// ascending: the order they can be computed in.
fn power_schedule(mut todo: Vec<usize>) -> Vec<usize> {
    let mut all = BTreeSet::new();
    while let Some(i) = todo.pop() {
        if i >= 2 && all.insert(i) {
            let (a, b) = power_operands(i);
            todo.extend([a, b, a - b]);
        }
    }
    all.into_iter().collect()
}

/// How the input reaches `y = T_1` (see the module docs).
#[derive(Clone, Copy, Debug)]
enum AffineMap {
    /// `y = K·(x + shift)` relabelled at scale `s·K/α`: no level.
    Folded { shift: f64, alpha: f64, factor: f64 },
    /// `y = α·(x + shift)`, `α` encoded at `const_scale = q_{ℓ−1}·q_ℓ/s`,
    /// then rescaled: one level, `y` at scale `q_{ℓ−1}`.
    Rescaled {
        shift: f64,
        alpha: f64,
        const_scale: f64,
    },
}

impl AffineMap {
    /// The map of `[a, b]` for an input at `level` (at least 1) and `scale`
    /// when powers up to `T_top` are computed from it.
    fn choose(
        params: &Parameters,
        (a, b): (f64, f64),
        level: usize,
        scale: f64,
        top: usize,
    ) -> Result<Self> {
        let alpha = 2.0 / (b - a);
        let shift = -(a / 2.0 + b / 2.0);
        if !(alpha.is_finite() && alpha > 0.0 && shift.is_finite()) {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!("the interval [{a}, {b}] cannot be mapped onto [-1, 1] in f64"),
            });
        }
        let primes = params.q();
        let prime = primes[level] as f64;
        let factor = (alpha * prime / scale).round().max(1.0);
        let drift = top as f64 * (scale * factor / (alpha * prime)).log2().abs();
        if factor <= MAX_FOLD_FACTOR && factor / alpha >= 1.0 && drift <= 1.0 {
            return Ok(AffineMap::Folded {
                shift,
                alpha,
                factor,
            });
        }
        let const_scale = primes[level - 1] as f64 * prime / scale;
        if alpha * const_scale < MIN_ALPHA_ENCODING {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!(
                    "the interval [{a}, {b}] is too wide for one rescale at scale 2^{:.1}: \
                     2/(b - a) would be encoded as {:.0}",
                    scale.log2(),
                    alpha * const_scale
                ),
            });
        }
        Ok(AffineMap::Rescaled {
            shift,
            alpha,
            const_scale,
        })
    }

    fn levels(self) -> usize {
        match self {
            AffineMap::Folded { .. } => 0,
            AffineMap::Rescaled { .. } => 1,
        }
    }

    /// `y` from the input.
    fn apply(self, ev: &Evaluator, ct: &Ciphertext) -> Result<Ciphertext> {
        let mut y = ct.try_clone()?;
        let (AffineMap::Folded { shift, .. } | AffineMap::Rescaled { shift, .. }) = self;
        if shift != 0.0 {
            ev.add_const_assign(&mut y, Complex::from(shift))?;
        }
        match self {
            AffineMap::Folded { alpha, factor, .. } => {
                if alpha != 1.0 || factor != 1.0 {
                    ev.mul_const_with_scale_assign(&mut y, Complex::from(alpha), factor / alpha)?;
                }
            }
            AffineMap::Rescaled {
                alpha, const_scale, ..
            } => {
                ev.mul_const_with_scale_assign(&mut y, Complex::from(alpha), const_scale)?;
                ev.rescale_assign(&mut y)?;
            }
        }
        Ok(y)
    }
}

/// What one polynomial of a plan becomes.
#[derive(Clone, Debug)]
enum Output {
    /// `0·x + c_0` at the input's level.
    Constant(f64),
    /// The tree of a non-constant polynomial consuming `depth` levels after
    /// the affine map.
    Tree { depth: usize, root: Node },
}

impl Output {
    fn new(coeffs: &[f64], baby: usize) -> Self {
        match ceil_log2(coeffs.len()) {
            0 => Output::Constant(coeffs[0]),
            depth => Output::Tree {
                depth,
                root: Node::build(coeffs.to_vec(), depth - 1, baby),
            },
        }
    }

    fn root(&self) -> Option<&Node> {
        match self {
            Output::Constant(_) => None,
            Output::Tree { root, .. } => Some(root),
        }
    }
}

/// The evaluation of one or more Chebyshev series on one input, decided
/// before any ciphertext is touched: the affine map, the powers, the
/// baby-step giant-step trees, the levels and the operation counts.
#[derive(Clone, Debug)]
pub struct PolyPlan {
    params_id: u64,
    input_level: usize,
    input_scale: f64,
    /// `None` when every output is constant.
    map: Option<AffineMap>,
    /// The `T_i` (`i >= 2`) computed, ascending.
    powers: Vec<usize>,
    outputs: Vec<Output>,
    baby_steps: usize,
}

impl PolyPlan {
    /// Plans `series` (all on the same interval) for an input at
    /// `input_level` and `input_scale` under `params`. Too few levels is
    /// [`Error::OutOfLevels`] (`needed` is the depth).
    pub fn new(
        params: &Parameters,
        series: &[ChebyshevSeries],
        input_level: usize,
        input_scale: f64,
    ) -> Result<Self> {
        let interval = series
            .first()
            .ok_or_else(|| Error::OutOfRange {
                op: OP,
                detail: "no polynomial to evaluate".into(),
            })?
            .interval();
        if let Some(other) = series.iter().find(|s| s.interval() != interval) {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!(
                    "polynomials evaluated together share one interval: {:?} and {:?}",
                    interval,
                    other.interval()
                ),
            });
        }
        if input_level > params.max_level() {
            return Err(Error::LevelMismatch {
                op: OP,
                detail: format!(
                    "level {input_level} above the maximum {}",
                    params.max_level()
                ),
            });
        }
        if !(input_scale.is_finite() && input_scale >= 1.0) {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!("input scale {input_scale} must be finite and at least 1"),
            });
        }
        let coeffs: Vec<Vec<f64>> = series
            .iter()
            .map(|s| trimmed(s.coeffs().to_vec()))
            .collect();
        let depth = coeffs.iter().map(|c| ceil_log2(c.len())).max().unwrap_or(0);
        let out_of_levels = |needed: usize| Error::OutOfLevels {
            op: OP,
            level: input_level,
            needed,
        };
        if input_level < depth {
            return Err(out_of_levels(depth));
        }
        let candidates = (0..=depth).map(|log_baby| {
            let baby_steps = 1 << log_baby;
            let outputs: Vec<Output> = coeffs.iter().map(|c| Output::new(c, baby_steps)).collect();
            let mut needed = BTreeSet::new();
            outputs
                .iter()
                .filter_map(Output::root)
                .for_each(|r| r.powers(&mut needed));
            let powers = power_schedule(needed.into_iter().collect());
            (outputs, powers, baby_steps)
        });
        let (outputs, powers, baby_steps) = candidates
            .map(|(outputs, powers, baby_steps)| {
                let roots = || outputs.iter().filter_map(Output::root);
                let cost = (
                    powers.len() + roots().map(Node::tensors).sum::<usize>(),
                    powers.len() + roots().map(Node::relinearizations).sum::<usize>(),
                    roots().map(Node::constant_products).sum::<usize>(),
                );
                (cost, (outputs, powers, baby_steps))
            })
            .min_by_key(|(cost, _)| *cost)
            .map(|(_, plan)| plan)
            .ok_or_else(|| internal("there is a baby-step bound to choose"))?;
        let map = if depth == 0 {
            None
        } else {
            let top = powers.last().copied().unwrap_or(1);
            let map = AffineMap::choose(params, interval, input_level, input_scale, top)?;
            if input_level < depth + map.levels() {
                return Err(out_of_levels(depth + map.levels()));
            }
            Some(map)
        };
        Ok(Self {
            params_id: params.id(),
            input_level,
            input_scale,
            map,
            powers,
            outputs,
            baby_steps,
        })
    }

    /// The level the input must be at.
    pub fn input_level(&self) -> usize {
        self.input_level
    }

    /// Levels the affine map consumes (0 when folded, 1 otherwise; 0 when
    /// every output is constant).
    pub fn affine_levels(&self) -> usize {
        self.map.map_or(0, AffineMap::levels)
    }

    /// Levels each output consumes, in the order of the series: the affine
    /// map's plus `⌈log2(d + 1)⌉` for a non-constant series of degree `d`;
    /// 0 for a constant.
    pub fn depths(&self) -> Vec<usize> {
        self.outputs
            .iter()
            .map(|o| match o {
                Output::Constant(_) => 0,
                Output::Tree { depth, .. } => self.affine_levels() + depth,
            })
            .collect()
    }

    /// The largest of [`PolyPlan::depths`].
    pub fn depth(&self) -> usize {
        self.depths().into_iter().max().unwrap_or(0)
    }

    /// The level of each output.
    pub fn output_levels(&self) -> Vec<usize> {
        let input = self.input_level;
        self.depths().into_iter().map(|d| input - d).collect()
    }

    /// The powers `T_i` (`i >= 2`) computed, ascending.
    pub fn powers(&self) -> &[usize] {
        &self.powers
    }

    /// The baby-step bound `2^l`: leaves use `T_1 ..= T_{2^l}`.
    pub fn baby_steps(&self) -> usize {
        self.baby_steps
    }

    fn roots(&self) -> impl Iterator<Item = &Node> {
        self.outputs.iter().filter_map(Output::root)
    }

    /// Ciphertext-ciphertext products (tensors).
    pub fn ct_mults(&self) -> usize {
        self.powers.len() + self.roots().map(Node::tensors).sum::<usize>()
    }

    /// Relinearizations (key switches), each fused with a rescale.
    pub fn relinearizations(&self) -> usize {
        self.powers.len() + self.roots().map(Node::relinearizations).sum::<usize>()
    }

    /// Whether the evaluation needs a relinearization key. No Galois key is
    /// ever needed.
    pub fn needs_relinearization_key(&self) -> bool {
        self.ct_mults() > 0
    }

    /// Evaluates every planned series on `ct` (which must be at the planned
    /// level and scale, degree 1). Each output has scale `output_scale`
    /// (default: the input's scale) within 1e-12 relative, at the level
    /// [`PolyPlan::output_levels`] gives.
    pub fn evaluate(
        &self,
        ev: &Evaluator,
        ct: &Ciphertext,
        output_scale: Option<f64>,
    ) -> Result<Vec<Ciphertext>> {
        let ctx = ev.context();
        ctx.check_params(OP, self.params_id)?;
        ctx.check_params(OP, ct.params_id())?;
        if ct.level() != self.input_level {
            return Err(Error::LevelMismatch {
                op: OP,
                detail: format!(
                    "ciphertext at level {}, planned for level {}",
                    ct.level(),
                    self.input_level
                ),
            });
        }
        if (ct.scale() / self.input_scale - 1.0).abs() > SCALE_EQUAL_TOLERANCE {
            return Err(Error::ScaleMismatch {
                op: OP,
                left_log2: ct.scale().log2(),
                right_log2: self.input_scale.log2(),
            });
        }
        if ct.degree() != 1 {
            return Err(Error::DegreeMismatch {
                op: OP,
                degree: ct.degree(),
                expected: 1,
            });
        }
        let output_scale = output_scale.unwrap_or(ct.scale());
        if !(output_scale.is_finite() && output_scale >= 1.0) {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!("output scale {output_scale} must be finite and at least 1"),
            });
        }
        let mut run = Run {
            ev,
            powers: BTreeMap::new(),
        };
        if let Some(map) = self.map {
            run.powers.insert(1, map.apply(ev, ct)?);
            run.compute_powers(&self.powers)?;
        }
        let y_level = self.input_level - self.affine_levels();
        self.outputs
            .iter()
            .map(|output| match output {
                Output::Constant(c) => {
                    let mut out = ct.try_clone()?;
                    ev.mul_const_with_scale_assign(
                        &mut out,
                        Complex::ZERO,
                        output_scale / ct.scale(),
                    )?;
                    ev.add_const_assign(&mut out, Complex::from(*c))?;
                    Ok(out)
                }
                Output::Tree { depth, root } => {
                    let level = y_level + 1 - depth;
                    let mut out = run.node(root, level, output_scale * run.prime(level))?;
                    run.rescale(&mut out)?;
                    Ok(out)
                }
            })
            .collect()
    }
}

/// Evaluates one series on `ct` (see [`PolyPlan`]): the output has scale
/// `output_scale` (default: the input's) at level `ct.level()` minus the
/// plan's depth.
pub fn evaluate(
    ev: &Evaluator,
    ct: &Ciphertext,
    series: &ChebyshevSeries,
    output_scale: Option<f64>,
) -> Result<Ciphertext> {
    let params = ev.context().params();
    let plan = PolyPlan::new(params, std::slice::from_ref(series), ct.level(), ct.scale())?;
    plan.evaluate(ev, ct, output_scale)?
        .pop()
        .ok_or_else(|| internal("a plan of one series has one output"))
}

/// An internal invariant failed (a bug, reported rather than panicking).
fn internal(what: &str) -> Error {
    Error::OutOfRange {
        op: OP,
        detail: format!("internal: {what}"),
    }
}

/// The ciphertexts of one evaluation: the powers of `y`.
struct Run<'a> {
    ev: &'a Evaluator,
    powers: BTreeMap<usize, Ciphertext>,
}

impl Run<'_> {
    fn prime(&self, level: usize) -> f64 {
        self.ev.context().params().q()[level] as f64
    }

    fn power(&self, i: usize) -> Result<&Ciphertext> {
        self.powers
            .get(&i)
            .ok_or_else(|| internal(&format!("T_{i} was not scheduled")))
    }

    /// A copy of `ct` at `level` (at most its own).
    fn at_level(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
        let mut out = ct.try_clone()?;
        self.ev.drop_level_assign(&mut out, ct.level() - level)?;
        Ok(out)
    }

    /// Relinearizes (when degree 2) and rescales.
    fn rescale(&self, ct: &mut Ciphertext) -> Result<()> {
        if ct.degree() == 2 {
            self.ev.relinearize_rescale_assign(ct)
        } else {
            self.ev.rescale_assign(ct)
        }
    }

    /// `T_i = 2·T_a·T_b − T_{a−b}` for every scheduled `i`, the subtraction
    /// made at the tensor's scale before the one relinearize-and-rescale.
    fn compute_powers(&mut self, schedule: &[usize]) -> Result<()> {
        for &i in schedule {
            let (a, b) = power_operands(i);
            let mut t = self.ev.tensor_new(self.power(a)?, self.power(b)?)?;
            self.ev.mul_integer_assign(&mut t, 2)?;
            if a == b {
                self.ev.add_const_assign(&mut t, Complex::from(-1.0))?;
            } else {
                let lower = self.power(a - b)?;
                let mut aligned = self.at_level(lower, t.level())?;
                let const_scale = t.scale() / lower.scale();
                self.ev.mul_const_with_scale_assign(
                    &mut aligned,
                    Complex::from(1.0),
                    const_scale,
                )?;
                self.ev.sub_assign(&mut t, &aligned)?;
            }
            self.ev.relinearize_rescale_assign(&mut t)?;
            self.powers.insert(i, t);
        }
        Ok(())
    }

    /// The node's value at `level` and exactly `scale`, before its rescale.
    fn node(&self, node: &Node, level: usize, scale: f64) -> Result<Ciphertext> {
        let mut sum: Option<Ciphertext> = None;
        let mut add = |x: Ciphertext| match sum.as_mut() {
            Some(acc) => self.ev.add_assign(acc, &x),
            None => {
                sum = Some(x);
                Ok(())
            }
        };
        for (giant, quotient) in &node.products {
            let g = self.power(*giant)?;
            let target = scale * self.prime(level + 1) / g.scale();
            let mut q = self.node(quotient, level + 1, target)?;
            self.rescale(&mut q)?;
            add(self.ev.tensor_new(&q, g)?)?;
        }
        for &(i, c) in &node.terms {
            let t = self.power(i)?;
            let mut term = self.at_level(t, level)?;
            self.ev
                .mul_const_with_scale_assign(&mut term, Complex::from(c), scale / t.scale())?;
            add(term)?;
        }
        let mut sum = sum.ok_or_else(|| internal("a non-constant node has a term"))?;
        if node.constant != 0.0 {
            self.ev
                .add_const_assign(&mut sum, Complex::from(node.constant))?;
        }
        Ok(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Σ c_i T_i(y) evaluated from a node tree in plain f64.
    fn eval_node(node: &Node, y: f64) -> f64 {
        let t = |i: usize| (i as f64 * y.acos()).cos();
        let terms: f64 = node.terms.iter().map(|&(i, c)| c * t(i)).sum();
        let products: f64 = node
            .products
            .iter()
            .map(|(g, q)| eval_node(q, y) * t(*g))
            .sum();
        node.constant + terms + products
    }

    /// Whether every power a node reads is at most `budget` deep.
    fn within_budget(node: &Node, budget: usize) -> bool {
        node.terms.iter().all(|&(i, _)| ceil_log2(i) <= budget)
            && node
                .products
                .iter()
                .all(|(g, q)| ceil_log2(*g) <= budget && within_budget(q, budget - 1))
    }

    #[test]
    fn trees_are_the_polynomial_within_their_depth() {
        for degree in 1..=70usize {
            let coeffs: Vec<f64> = (0..=degree)
                .map(|k| ((k * 7919 % 13) as f64 - 6.0) / (1.0 + k as f64))
                .collect();
            let series = ChebyshevSeries::new(coeffs.clone(), (-1.0, 1.0)).unwrap();
            let depth = ceil_log2(degree + 1);
            for log_baby in 0..=depth {
                let root = Node::build(coeffs.clone(), depth - 1, 1 << log_baby);
                assert!(within_budget(&root, depth - 1), "degree {degree}");
                for j in 0..=20 {
                    let y = -1.0 + j as f64 / 10.0;
                    let got = eval_node(&root, y);
                    assert!((got - series.eval(y)).abs() < 1e-9, "degree {degree} y {y}");
                }
            }
        }
    }

    #[test]
    fn power_recurrences_stay_within_parity() {
        let odd = power_schedule(vec![3, 5, 7, 9, 11, 13, 15]);
        assert!(odd.iter().all(|&i| i % 2 == 1 || i.is_power_of_two()));
        let even = power_schedule(vec![6, 10, 12, 14]);
        assert!(even.iter().all(|&i| i % 2 == 0));
        for i in 2..200 {
            let (a, b) = power_operands(i);
            assert!(b <= a && ceil_log2(a) + 1 == ceil_log2(i), "i = {i}");
        }
    }
}
