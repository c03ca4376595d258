//! The encrypted forward pass: the twin's computation
//! ([`crate::model::friendly::forward`]) on `d × d` blocks, with levels
//! refreshed wherever an operation lacks them.
//!
//! # The circuit
//!
//! Every operation first asks the [`Refresh`] for the levels it consumes
//! (CPMM 2, CCMM 3, transpose 1, a product 1, a polynomial its depth,
//! between the stages of the long ones: see
//! [`evaluate_refreshing`]), giving the bound of the values it would
//! bootstrap ([`ActivationBounds`](super::ActivationBounds)); so the
//! bootstraps fall where the levels run out, and their number per layer is
//! reported. Sums of ciphertexts whose scales differ spend one level on a
//! constant product that matches them.
//!
//! Per layer, on the stream `X` (the blocks `X_b`):
//!
//! 1. LayerNorm without `γ`, `β` (folded into the next weights): the row
//!    mean `μ = (Σ_b X_b)·J/hidden` (one CPMM whatever the blocks: every
//!    column holds the row's mean), `C_b = X_b − μ`, the variance
//!    `(Σ_b C_b ⊙ C_b)·J/hidden + eps`, its inverse square root (one
//!    ciphertext), `N_b = C_b ⊙ inv`;
//! 2. per head (one block each): `Q' = N·W'_q` (scaled by `2c`), `K`, `V`;
//!    `V ← V ⊙ M` (the encrypted mask's rows); the exponent
//!    `(Q' ⊙ Q')·(−J/(4c)) + ((K ⊙ K)·(−c·J))ᵀ + Q'·Kᵀ`
//!    `= −c·(‖q_i‖² + ‖k_j‖² − 2q_i·k_j)`, exp by squaring, `S·V` (CCMM);
//!    the heads of a block are summed;
//! 3. `X ← X + context·W_o + b_o`;
//! 4. LayerNorm again, `X ← X + (B·relu((N·W_g + b_g)/B) ⊙ (N·W_u + b_u))·W_d + b_d`
//!    (ReLU through its composite on `[−1, 1]`, the division by `B` a
//!    relabelling of the scale).
//!
//! The head: the final LayerNorm if any (folded into the bottleneck), the
//! bottleneck and widening products, the first row kept (a plaintext
//! mask: the other tokens' rows may leave tanh's range), tanh, the
//! classifier: the logits on row 0 of one block.

use ndarray::Array2;

use super::blocks::{kernel_factor, DenseBlocks, LayerBlocks};
use super::model::{EncryptedInput, EncryptedModel};
use crate::approx::Approximation;
use crate::circuits::functions::evaluate_refreshing;
use crate::circuits::refresh::Refresh;
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;
use crate::tensor::{EncodedWeights, PreparedLeft, CCMM_DEPTH, CPMM_DEPTH};

const OP: &str = "EncryptedModel::forward";

/// One layer's encrypted states (the residual stream's blocks).
#[derive(Debug)]
pub struct EncryptedLayerTrace {
    /// After the attention block.
    pub attention: Vec<Ciphertext>,
    /// After the feed-forward block: the layer's output.
    pub ffn: Vec<Ciphertext>,
    /// Bootstraps the layer ran.
    pub bootstraps: usize,
}

/// The result of an encrypted forward pass.
#[derive(Debug)]
pub struct EncryptedOutput {
    /// Per layer.
    pub layers: Vec<EncryptedLayerTrace>,
    /// The logits on row 0 (see [`EncryptedModel::decrypt_logits`]).
    pub logits: Ciphertext,
    /// Bootstraps the head ran.
    pub head_bootstraps: usize,
}

impl EncryptedModel {
    /// The forward pass of `input`, levels from `refresher`.
    ///
    /// Errors: an input of the wrong shape ([`Error::LengthMismatch`]),
    /// levels the refresher cannot give, the operations' errors.
    pub fn forward(
        &self,
        ev: &Evaluator,
        input: &EncryptedInput,
        refresher: &mut dyn Refresh,
    ) -> Result<EncryptedOutput> {
        let slots = self.layout().shape().slots();
        if input.tokens.len() != self.layout().hidden_blocks() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: input.tokens.len(),
                expected: self.layout().hidden_blocks(),
            });
        }
        if let Some(ct) = input
            .tokens
            .iter()
            .chain([&input.mask])
            .find(|ct| ct.slots() != slots)
        {
            return Err(Error::LengthMismatch {
                op: OP,
                got: ct.slots(),
                expected: slots,
            });
        }
        let mut run = Run {
            model: self,
            ev,
            refresher,
        };
        let mut stream = copies(&input.tokens)?;
        let mut mask = input.mask.try_clone()?;
        let mut layers = Vec::with_capacity(self.blocks().layers.len());
        for layer in &self.blocks().layers {
            let start = run.refresher.count();
            stream = run.attention_block(layer, stream, &mut mask)?;
            let attention = copies(&stream)?;
            stream = run.ffn_block(layer, stream)?;
            layers.push(EncryptedLayerTrace {
                attention,
                ffn: copies(&stream)?,
                bootstraps: run.refresher.count() - start,
            });
        }
        let start = run.refresher.count();
        let logits = run.head(stream)?;
        Ok(EncryptedOutput {
            layers,
            logits,
            head_bootstraps: run.refresher.count() - start,
        })
    }
}

/// Copies of `blocks`.
fn copies(blocks: &[Ciphertext]) -> Result<Vec<Ciphertext>> {
    blocks.iter().map(Ciphertext::try_clone).collect()
}

/// The last (only) element of an operation's output.
fn single(mut blocks: Vec<Ciphertext>) -> Result<Ciphertext> {
    blocks.pop().ok_or_else(|| Error::OutOfRange {
        op: OP,
        detail: "internal: an operation returned no block".into(),
    })
}

/// Whether two scales are equal for the evaluator.
fn same_scale(a: f64, b: f64) -> bool {
    (a / b - 1.0).abs() < 1e-12
}

/// One forward pass's operations.
struct Run<'a> {
    model: &'a EncryptedModel,
    ev: &'a Evaluator,
    refresher: &'a mut dyn Refresh,
}

impl Run<'_> {
    /// Refreshes the blocks below `needed` levels, then drops every block
    /// to the lowest level; returns it.
    fn ready(&mut self, blocks: &mut [Ciphertext], bound: f64, needed: usize) -> Result<usize> {
        let mut due: Vec<(&mut Ciphertext, f64)> =
            blocks.iter_mut().map(|ct| (ct, bound)).collect();
        self.refresher.refresh(self.ev, &mut due, needed)?;
        let level =
            blocks
                .iter()
                .map(Ciphertext::level)
                .min()
                .ok_or_else(|| Error::OutOfRange {
                    op: OP,
                    detail: "internal: no block".into(),
                })?;
        for ct in blocks.iter_mut() {
            self.ev.drop_level_assign(ct, ct.level() - level)?;
        }
        Ok(level)
    }

    /// `ct` dropped to `level` (a copy).
    fn at_level(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
        let mut out = ct.try_clone()?;
        self.ev.drop_level_assign(&mut out, ct.level() - level)?;
        Ok(out)
    }

    /// `x·W + b` for the blocks of `x` (values up to `bound`).
    fn dense(
        &mut self,
        x: &mut [Ciphertext],
        bound: f64,
        layer: &DenseBlocks,
    ) -> Result<Vec<Ciphertext>> {
        if layer.blocks.len() != x.len() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: x.len(),
                expected: layer.blocks.len(),
            });
        }
        let level = self.ready(x, bound, CPMM_DEPTH)?;
        let product = self.model.product(level)?;
        let encoder = self.model.encoder();
        let prepared = x
            .iter()
            .map(|ct| product.prepare(self.ev, ct))
            .collect::<Result<Vec<_>>>()?;
        let weights = layer
            .blocks
            .iter()
            .map(|row| {
                row.iter()
                    .map(|w| product.encode_weights(encoder, w))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let left: Vec<&PreparedLeft> = prepared.iter().collect();
        let rows: Vec<&[EncodedWeights]> = weights.iter().map(Vec::as_slice).collect();
        let mut out = product.multiply_plain_blocks(self.ev, &left, &rows)?;
        if let Some(bias) = &layer.bias {
            for (ct, b) in out.iter_mut().zip(bias) {
                let pt = encoder.encode_complex(
                    &self.model.layout().shape().pack(b)?,
                    ct.level(),
                    ct.scale(),
                )?;
                self.ev.add_plain_assign(ct, &pt)?;
            }
        }
        Ok(out)
    }

    /// `a ⊙ b`.
    fn multiply(
        &mut self,
        a: &mut Ciphertext,
        bound_a: f64,
        b: &mut Ciphertext,
        bound_b: f64,
    ) -> Result<Ciphertext> {
        self.refresher
            .refresh(self.ev, &mut [(&mut *a, bound_a), (&mut *b, bound_b)], 1)?;
        let level = a.level().min(b.level());
        self.ev
            .mul_relin_rescale_new(&self.at_level(a, level)?, &self.at_level(b, level)?)
    }

    /// `a ⊙ a`.
    fn square(&mut self, a: &mut Ciphertext, bound: f64) -> Result<Ciphertext> {
        self.ready(std::slice::from_mut(a), bound, 1)?;
        self.ev.mul_relin_rescale_new(a, a)
    }

    /// `a ⊙ m` for a plaintext matrix `m`, the scale kept.
    fn multiply_plain(
        &mut self,
        a: &mut Ciphertext,
        bound: f64,
        m: &Array2<f64>,
    ) -> Result<Ciphertext> {
        let level = self.ready(std::slice::from_mut(a), bound, 1)?;
        let prime = self.ev.context().params().q()[level] as f64;
        let pt = self.model.encoder().encode_complex(
            &self.model.layout().shape().pack(m)?,
            level,
            prime,
        )?;
        let mut out = a.try_clone()?;
        self.ev.mul_plain_assign(&mut out, &pt)?;
        self.ev.rescale_assign(&mut out)?;
        Ok(out)
    }

    /// `aᵀ`.
    fn transpose(&mut self, a: &mut Ciphertext, bound: f64) -> Result<Ciphertext> {
        let level = self.ready(std::slice::from_mut(a), bound, 1)?;
        self.model.transpose(level)?.apply(self.ev, a)
    }

    /// `a·b` (CCMM).
    fn matmul(
        &mut self,
        a: &mut Ciphertext,
        bound_a: f64,
        b: &mut Ciphertext,
        bound_b: f64,
    ) -> Result<Ciphertext> {
        self.refresher.refresh(
            self.ev,
            &mut [(&mut *a, bound_a), (&mut *b, bound_b)],
            CCMM_DEPTH,
        )?;
        let level = a.level().min(b.level());
        self.model.product(level)?.multiply(self.ev, a, b)
    }

    /// `a + b`: when the scales differ, the operand with more levels is
    /// brought to the other's scale by a constant product (one level).
    fn add(
        &mut self,
        mut a: Ciphertext,
        bound_a: f64,
        mut b: Ciphertext,
        bound_b: f64,
    ) -> Result<Ciphertext> {
        if !same_scale(a.scale(), b.scale()) {
            let (moved, bound, target) = if a.level() >= b.level() {
                (&mut a, bound_a, b.scale())
            } else {
                (&mut b, bound_b, a.scale())
            };
            self.ready(std::slice::from_mut(moved), bound, 1)?;
            if !same_scale(moved.scale(), target) {
                let prime = self.ev.context().params().q()[moved.level()] as f64;
                let constant_scale = target * prime / moved.scale();
                self.ev.mul_const_with_scale_assign(
                    moved,
                    Complex::new(1.0, 0.0),
                    constant_scale,
                )?;
                self.ev.rescale_assign(moved)?;
            }
        }
        let level = a.level().min(b.level());
        self.ev
            .add_new(&self.at_level(&a, level)?, &self.at_level(&b, level)?)
    }

    /// The sum of `blocks`.
    fn sum(&mut self, blocks: Vec<Ciphertext>, bound: f64) -> Result<Ciphertext> {
        let mut blocks = blocks.into_iter();
        let first = blocks.next().ok_or_else(|| Error::OutOfRange {
            op: OP,
            detail: "internal: a sum of no block".into(),
        })?;
        blocks.try_fold(first, |acc, ct| self.add(acc, bound, ct, bound))
    }

    /// `approximation` on `x` (values up to `bound`).
    fn function(
        &mut self,
        x: &Ciphertext,
        approximation: &Approximation,
        bound: f64,
    ) -> Result<Ciphertext> {
        evaluate_refreshing(self.ev, x, approximation, bound, &mut *self.refresher)
    }

    /// The rows of the stream centred and divided by their deviation.
    fn normalize(&mut self, x: &mut [Ciphertext]) -> Result<Vec<Ciphertext>> {
        let model = self.model;
        let bounds = *model.bounds();
        let config = model.config();
        let blocks = x.len() as f64;
        self.ready(x, bounds.stream, CPMM_DEPTH)?;
        let sum = self.sum(copies(x)?, blocks * bounds.stream)?;
        let mean = single(self.dense(&mut [sum], blocks * bounds.stream, &model.blocks().mean)?)?;
        let centred_bound = 2.0 * bounds.stream;
        let mut centred = Vec::with_capacity(x.len());
        for block in x.iter() {
            let mut negated = mean.try_clone()?;
            self.ev.neg_assign(&mut negated)?;
            centred.push(self.add(block.try_clone()?, bounds.stream, negated, bounds.stream)?);
        }
        let squares = centred
            .iter_mut()
            .map(|c| self.square(c, centred_bound))
            .collect::<Result<Vec<_>>>()?;
        let square_bound = centred_bound * centred_bound;
        let total = self.sum(squares, blocks * square_bound)?;
        let mut variance =
            single(self.dense(&mut [total], blocks * square_bound, &model.blocks().mean)?)?;
        self.ev
            .add_const_assign(&mut variance, Complex::new(config.layer_norm_eps, 0.0))?;
        let (low, high) = config.ranges.variance;
        let [_, _, inv_sqrt, _] = model.polynomials().approximations();
        let mut inverse = self.function(&variance, inv_sqrt, high)?;
        let inverse_bound = 1.0 / low.sqrt();
        centred
            .iter_mut()
            .map(|c| self.multiply(c, centred_bound, &mut inverse, inverse_bound))
            .collect()
    }

    /// LayerNorm, the heads, the output projection and the residual.
    fn attention_block(
        &mut self,
        layer: &LayerBlocks,
        mut stream: Vec<Ciphertext>,
        mask: &mut Ciphertext,
    ) -> Result<Vec<Ciphertext>> {
        let model = self.model;
        let bounds = *model.bounds();
        let c = kernel_factor(model.config());
        let [exp, _, _, _] = model.polynomials().approximations();
        let mut normed = self.normalize(&mut stream)?;
        let mut context: Vec<Option<Ciphertext>> =
            (0..model.layout().hidden_blocks()).map(|_| None).collect();
        let (q_bound, k_bound) = (2.0 * c * bounds.projection, bounds.projection);
        for head in &layer.heads {
            let mut q = single(self.dense(&mut normed, bounds.normalized, &head.query)?)?;
            let mut k = single(self.dense(&mut normed, bounds.normalized, &head.key)?)?;
            let mut v = single(self.dense(&mut normed, bounds.normalized, &head.value)?)?;
            let mut v = self.multiply(&mut v, k_bound, mask, 1.0)?;
            let mut q_squared = self.square(&mut q, q_bound)?;
            let q_norms = single(self.dense(
                std::slice::from_mut(&mut q_squared),
                q_bound * q_bound,
                &model.blocks().query_norm,
            )?)?;
            let mut k_squared = self.square(&mut k, k_bound)?;
            let mut k_norms = single(self.dense(
                std::slice::from_mut(&mut k_squared),
                k_bound * k_bound,
                &model.blocks().key_norm,
            )?)?;
            let k_norms = self.transpose(&mut k_norms, bounds.exponent)?;
            let mut k_transposed = self.transpose(&mut k, k_bound)?;
            let cross = self.matmul(&mut q, q_bound, &mut k_transposed, k_bound)?;
            let norms = self.add(q_norms, bounds.exponent, k_norms, bounds.exponent)?;
            let exponent = self.add(norms, 2.0 * bounds.exponent, cross, 2.0 * bounds.exponent)?;
            let mut kernel = self.function(&exponent, exp, bounds.exponent)?;
            let head_context = self.matmul(&mut kernel, 1.0, &mut v, k_bound)?;
            let slot = context
                .get_mut(head.block)
                .ok_or_else(|| Error::OutOfRange {
                    op: OP,
                    detail: format!("internal: head block {} out of range", head.block),
                })?;
            *slot = Some(match slot.take() {
                Some(previous) => {
                    self.add(previous, bounds.context, head_context, bounds.context)?
                }
                None => head_context,
            });
        }
        let mut context = context
            .into_iter()
            .map(|block| {
                block.ok_or_else(|| Error::OutOfRange {
                    op: OP,
                    detail: "internal: a block without a head".into(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output = self.dense(&mut context, bounds.context, &layer.output)?;
        self.residual(stream, output)
    }

    /// `stream + update`, block by block.
    fn residual(
        &mut self,
        stream: Vec<Ciphertext>,
        update: Vec<Ciphertext>,
    ) -> Result<Vec<Ciphertext>> {
        let bound = self.model.bounds().stream;
        stream
            .into_iter()
            .zip(update)
            .map(|(s, u)| self.add(s, bound, u, bound))
            .collect()
    }

    /// LayerNorm, the ReLU-GLU and the residual.
    fn ffn_block(
        &mut self,
        layer: &LayerBlocks,
        mut stream: Vec<Ciphertext>,
    ) -> Result<Vec<Ciphertext>> {
        let model = self.model;
        let bounds = *model.bounds();
        let relu_bound = model.config().ranges.relu_bound;
        let [_, relu, _, _] = model.polynomials().approximations();
        let mut normed = self.normalize(&mut stream)?;
        let gate = self.dense(&mut normed, bounds.normalized, &layer.gate)?;
        let mut up = self.dense(&mut normed, bounds.normalized, &layer.up)?;
        let mut glu = Vec::with_capacity(gate.len());
        for (g, u) in gate.into_iter().zip(up.iter_mut()) {
            // B·relu(x/B): the divisions are relabellings of the scale.
            let mut scaled = g;
            scaled.scale *= relu_bound;
            let mut activated = self.function(&scaled, relu, 1.0)?;
            activated.scale /= relu_bound;
            glu.push(self.multiply(&mut activated, bounds.ffn, u, bounds.ffn)?);
        }
        let down = self.dense(&mut glu, bounds.ffn, &layer.down)?;
        self.residual(stream, down)
    }

    /// The head on the first token: the logits on row 0.
    fn head(&mut self, mut stream: Vec<Ciphertext>) -> Result<Ciphertext> {
        let model = self.model;
        let bounds = *model.bounds();
        let blocks = model.blocks();
        let [_, _, _, tanh] = model.polynomials().approximations();
        let (mut input, input_bound) = if model.config().final_layer_norm {
            (self.normalize(&mut stream)?, bounds.normalized)
        } else {
            (stream, bounds.stream)
        };
        let mut bottleneck = self.dense(&mut input, input_bound, &blocks.bottleneck)?;
        let wide = self.dense(&mut bottleneck, bounds.head, &blocks.widen)?;
        let mut activated = Vec::with_capacity(wide.len());
        for mut block in wide {
            let first = self.multiply_plain(&mut block, bounds.head, &blocks.first_row)?;
            activated.push(self.function(&first, tanh, model.config().ranges.tanh_bound)?);
        }
        single(self.dense(&mut activated, 1.0, &blocks.classifier)?)
    }
}
