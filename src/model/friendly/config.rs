//! The shape of the encryption-friendly transformer and the ranges its
//! polynomials are fitted on.
//!
//! [`FriendlyConfig::default`] is the paper's model (Rho et al., ICLR 2025):
//! 2 pre-LN layers, hidden 768, 12 heads of 64, GLU feed-forward
//! 768 → 2×1536 → 768, sequence 128, LoRA rank 2 on Q, K and V, and the
//! head first token → 768 → 32 → 1024 → tanh → classes.
//! [`FriendlyConfig::check`] states every invariant the forward relies on;
//! a config that breaks one is [`Error::InvalidParameters`] naming the field.

use serde::{Deserialize, Serialize};

use crate::approx::MAX_EXP_SQUARINGS;
use crate::error::{Error, Result};

/// A projection of the attention block that can carry a LoRA adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LoraTarget {
    /// The query projection.
    Query,
    /// The key projection.
    Key,
    /// The value projection.
    Value,
    /// The output projection.
    Output,
}

/// How attention weighs the keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttentionKernel {
    /// The paper's `exp(−‖q − k‖²/(2√d_head))`, unnormalised.
    #[default]
    Gaussian,
    /// BERT's `softmax(q·k/√d_head)` over the unmasked keys: the paper's
    /// baseline. Under encryption (in the style of HETAL) the scores of
    /// masked keys become `−B` (`ApproximationRanges::softmax_bound`), the
    /// row maximum is a tree of `max(a, b) = a + relu(b − a)`, then exp,
    /// the row sum and its Newton reciprocal.
    Softmax,
}

/// Where each non-linearity's polynomial is fitted, and how finely.
///
/// The encrypted circuit evaluates the same polynomials; an input outside
/// its range is not an error there, it silently gives a wrong value, so the
/// forward counts such inputs ([`super::RangeViolations`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApproximationRanges {
    /// `r` of `exp(x) ≈ (1 + x/2^r)^(2^r)` (`r` squarings).
    pub exp_squarings: u32,
    /// `[lo, hi]` of the attention exponent `−‖q − k‖²/(2√d_head)`:
    /// `−2^r < lo < hi ≤ 0` (below `−2^r` the base `1 + x/2^r` turns negative).
    pub exp_argument: (f64, f64),
    /// `B`: ReLU's inputs are expected in `[−B, B]`; the circuit computes
    /// `B·relu(x/B)` with the composite ReLU of `[−1, 1]`.
    pub relu_bound: f64,
    /// `k` of the sign's gap `ε = 2^−k` (on `x/B`).
    pub sign_epsilon_bits: u32,
    /// Precision in bits of the composite sign off the gap.
    pub sign_precision_bits: u32,
    /// `[a, b]`, `0 < a < b`, of LayerNorm's `σ² + eps`, the input of `1/√·`.
    pub variance: (f64, f64),
    /// The relative error requested of the inverse square root.
    pub inv_sqrt_relative_error: f64,
    /// `B` of tanh's `[−B, B]`.
    pub tanh_bound: f64,
    /// Odd degree of tanh's minimax polynomial.
    pub tanh_degree: usize,
    /// `B` of softmax attention's scores `q·k/√d_head` in `[−B, B]`: the
    /// masked keys' scores are set to `−B`, the differences of the row
    /// maximum's tree lie in `[−2B, 2B]` (within `relu_bound`) and the
    /// exponents in `[−2B, 0]` (within `exp_argument`).
    #[serde(default = "default_softmax_bound")]
    pub softmax_bound: f64,
    /// `[a, b]` of softmax's row sums, the reciprocal's range (`a < 1`,
    /// since the row's largest term is about `e^0`; `b ≥ seq_len`).
    #[serde(default = "default_softmax_row_sum")]
    pub softmax_row_sum: (f64, f64),
}

fn default_softmax_bound() -> f64 {
    8.0
}

fn default_softmax_row_sum() -> (f64, f64) {
    (0.5, 128.0)
}

impl Default for ApproximationRanges {
    /// `r = 14` (the paper's order of magnitude; the largest absolute error
    /// of the squaring form on `(−2^r, 0]` is about `0.27·2^−r`), the exp
    /// argument on `[−2^13, 0]` (half the validity bound, a margin for
    /// noise), ReLU on `[−16, 16]` with `ε = 2^−10` and 12 bits, variance on
    /// `[2^−8, 2^8]` to 2^−16 relative, tanh on `[−8, 8]` at degree 63.
    fn default() -> Self {
        Self {
            exp_squarings: 14,
            exp_argument: (-8192.0, 0.0),
            relu_bound: 16.0,
            sign_epsilon_bits: 10,
            sign_precision_bits: 12,
            variance: (1.0 / 256.0, 256.0),
            inv_sqrt_relative_error: 1.0 / 65536.0,
            tanh_bound: 8.0,
            tanh_degree: 63,
            softmax_bound: default_softmax_bound(),
            softmax_row_sum: default_softmax_row_sum(),
        }
    }
}

/// The encryption-friendly transformer's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FriendlyConfig {
    /// Encoder layers.
    pub layers: usize,
    /// Width of the residual stream.
    pub hidden: usize,
    /// Attention heads; they divide `hidden`.
    pub heads: usize,
    /// Inner width of the GLU feed-forward (each of its two halves).
    pub ffn: usize,
    /// The longest sequence accepted.
    pub seq_len: usize,
    /// LoRA rank, `1 ≤ lora_rank < hidden`.
    pub lora_rank: usize,
    /// The projections carrying LoRA adapters (no repeats).
    pub lora_targets: Vec<LoraTarget>,
    /// Whether a LayerNorm precedes the head (pre-LN models end with one).
    pub final_layer_norm: bool,
    /// The head's bottleneck (first token → `head_bottleneck`).
    pub head_bottleneck: usize,
    /// The head's width before tanh (`head_bottleneck` → `head_width`).
    pub head_width: usize,
    /// Output classes.
    pub classes: usize,
    /// LayerNorm's `eps`, added to the variance.
    pub layer_norm_eps: f64,
    /// The non-linearities' ranges.
    pub ranges: ApproximationRanges,
    /// The attention's kernel.
    #[serde(default)]
    pub attention: AttentionKernel,
}

impl Default for FriendlyConfig {
    /// The paper's model (see the module docs), two classes.
    fn default() -> Self {
        Self {
            layers: 2,
            hidden: 768,
            heads: 12,
            ffn: 1536,
            seq_len: 128,
            lora_rank: 2,
            lora_targets: vec![LoraTarget::Query, LoraTarget::Key, LoraTarget::Value],
            final_layer_norm: true,
            head_bottleneck: 32,
            head_width: 1024,
            classes: 2,
            layer_norm_eps: 1e-12,
            ranges: ApproximationRanges::default(),
            attention: AttentionKernel::Gaussian,
        }
    }
}

impl FriendlyConfig {
    /// A small model for fast tests: 2 layers, hidden 16, 2 heads of 8, GLU
    /// 16 → 2×24 → 16, sequence 8, LoRA rank 2 on Q, K, V, head 16 → 4 →
    /// 12 → tanh → 3, the default ranges.
    pub fn tiny() -> Self {
        Self {
            hidden: 16,
            heads: 2,
            ffn: 24,
            seq_len: 8,
            head_bottleneck: 4,
            head_width: 12,
            classes: 3,
            ..Self::default()
        }
    }

    /// The width of one head.
    pub fn head_size(&self) -> usize {
        self.hidden / self.heads.max(1)
    }

    /// Whether `target` carries a LoRA adapter.
    pub fn has_lora(&self, target: LoraTarget) -> bool {
        self.lora_targets.contains(&target)
    }

    /// Checks every invariant (see the field docs).
    ///
    /// Errors: [`Error::InvalidParameters`] naming the first broken one.
    pub fn check(&self) -> Result<()> {
        let refuse = |detail: String| {
            Err(Error::InvalidParameters(format!(
                "FriendlyConfig: {detail}"
            )))
        };
        let sizes = [
            ("layers", self.layers),
            ("hidden", self.hidden),
            ("heads", self.heads),
            ("ffn", self.ffn),
            ("seq_len", self.seq_len),
            ("head_bottleneck", self.head_bottleneck),
            ("head_width", self.head_width),
            ("classes", self.classes),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, size)| *size == 0) {
            return refuse(format!("{name} is 0"));
        }
        if self.hidden % self.heads != 0 {
            return refuse(format!(
                "hidden {} is not a multiple of heads {}",
                self.hidden, self.heads
            ));
        }
        if self.lora_rank == 0 || self.lora_rank >= self.hidden {
            return refuse(format!(
                "lora_rank {} is outside 1..{} (hidden {})",
                self.lora_rank, self.hidden, self.hidden
            ));
        }
        let mut targets = self.lora_targets.clone();
        targets.sort();
        targets.dedup();
        if targets.len() != self.lora_targets.len() {
            return refuse(format!(
                "lora_targets {:?} repeat a target",
                self.lora_targets
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return refuse(format!(
                "layer_norm_eps {} is negative",
                self.layer_norm_eps
            ));
        }
        self.ranges.check()?;
        if self.attention == AttentionKernel::Softmax {
            let ranges = &self.ranges;
            let (bound, lo) = (ranges.softmax_bound, ranges.exp_argument.0);
            if !(bound.is_finite()
                && bound > 0.0
                && 2.0 * bound <= ranges.relu_bound
                && -2.0 * bound >= lo)
            {
                return refuse(format!(
                    "softmax_bound {bound} needs 0 < 2B <= relu_bound {} and -2B >= exp_argument's lo {lo}",
                    ranges.relu_bound
                ));
            }
            if (self.seq_len as f64) > ranges.softmax_row_sum.1 {
                return refuse(format!(
                    "seq_len {} exceeds the softmax row sums' range {:?}",
                    self.seq_len, ranges.softmax_row_sum
                ));
            }
        }
        Ok(())
    }
}

impl ApproximationRanges {
    fn check(&self) -> Result<()> {
        let refuse = |detail: String| {
            Err(Error::InvalidParameters(format!(
                "FriendlyConfig.ranges: {detail}"
            )))
        };
        let r = self.exp_squarings;
        if r == 0 || r > MAX_EXP_SQUARINGS {
            return refuse(format!(
                "exp_squarings {r} is outside 1..={MAX_EXP_SQUARINGS}"
            ));
        }
        let (lo, hi) = self.exp_argument;
        let limit = -(2.0_f64.powi(r as i32));
        if !(lo > limit && lo < hi && hi <= 0.0) {
            return refuse(format!(
                "exp_argument [{lo}, {hi}] needs {limit} < lo < hi <= 0"
            ));
        }
        if !(self.relu_bound.is_finite() && self.relu_bound > 0.0) {
            return refuse(format!("relu_bound {} is not positive", self.relu_bound));
        }
        let (a, b) = self.variance;
        if !(a > 0.0 && a < b && b.is_finite()) {
            return refuse(format!("variance [{a}, {b}] needs 0 < a < b"));
        }
        if !(self.inv_sqrt_relative_error > 0.0 && self.inv_sqrt_relative_error < 1.0) {
            return refuse(format!(
                "inv_sqrt_relative_error {} is outside (0, 1)",
                self.inv_sqrt_relative_error
            ));
        }
        if !(self.tanh_bound.is_finite() && self.tanh_bound > 0.0) {
            return refuse(format!("tanh_bound {} is not positive", self.tanh_bound));
        }
        if self.tanh_degree % 2 == 0 {
            return refuse(format!("tanh_degree {} is not odd", self.tanh_degree));
        }
        let (a, b) = self.softmax_row_sum;
        if !(a > 0.0 && a < 1.0 && b > a && b.is_finite()) {
            return refuse(format!("softmax_row_sum [{a}, {b}] needs 0 < a < 1 < b"));
        }
        Ok(())
    }
}
