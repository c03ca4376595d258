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

use std::time::Instant;

use ndarray::Array2;

use super::blocks::{kernel_factor, DenseBlocks, LayerBlocks};
use super::model::{EncryptedInput, EncryptedModel};
use crate::approx::Approximation;
use crate::circuits::functions::evaluate_batch;
use crate::circuits::refresh::{ensure_all, ensure_both, Refresh};
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;
use crate::tensor::{EncodedWeights, MatrixProduct, PreparedLeft, CCMM_DEPTH, CPMM_DEPTH};

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
    /// Wall time of the layer (for a batch, the batch's).
    pub seconds: f64,
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
    /// Wall time of the head.
    pub head_seconds: f64,
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
        single(self.forward_batch(ev, std::slice::from_ref(input), refresher)?)
    }

    /// The forward passes of `inputs` in lockstep: every operation runs on
    /// all of them, so they share their bootstraps (the blocks due are
    /// packed together) and each weight matrix is encoded once per batch.
    /// The bootstrap counts of the outputs are the batch's.
    ///
    /// Errors: those of [`forward`](Self::forward), an empty batch.
    pub fn forward_batch(
        &self,
        ev: &Evaluator,
        inputs: &[EncryptedInput],
        refresher: &mut dyn Refresh,
    ) -> Result<Vec<EncryptedOutput>> {
        if inputs.is_empty() {
            return Err(Error::OutOfRange {
                op: OP,
                detail: "an empty batch".into(),
            });
        }
        for input in inputs {
            self.check_input(input)?;
        }
        let mut run = Run {
            model: self,
            ev,
            refresher,
        };
        let mut streams = inputs
            .iter()
            .map(|input| copies(&input.tokens))
            .collect::<Result<Vec<_>>>()?;
        let masks = inputs
            .iter()
            .map(|input| input.mask.try_clone())
            .collect::<Result<Vec<_>>>()?;
        let mut traces: Vec<Vec<EncryptedLayerTrace>> = inputs.iter().map(|_| Vec::new()).collect();
        for layer in &self.blocks().layers {
            let (start, clock) = (run.refresher.count(), Instant::now());
            streams = run.attention_block(layer, streams, &masks)?;
            let attention = streams
                .iter()
                .map(|s| copies(s))
                .collect::<Result<Vec<_>>>()?;
            streams = run.ffn_block(layer, streams)?;
            let bootstraps = run.refresher.count() - start;
            let seconds = clock.elapsed().as_secs_f64();
            for ((trace, attention), stream) in traces.iter_mut().zip(attention).zip(&streams) {
                trace.push(EncryptedLayerTrace {
                    attention,
                    ffn: copies(stream)?,
                    bootstraps,
                    seconds,
                });
            }
        }
        let (start, clock) = (run.refresher.count(), Instant::now());
        let logits = run.head(streams)?;
        let head_bootstraps = run.refresher.count() - start;
        let head_seconds = clock.elapsed().as_secs_f64();
        Ok(traces
            .into_iter()
            .zip(logits)
            .map(|(layers, logits)| EncryptedOutput {
                layers,
                logits,
                head_bootstraps,
                head_seconds,
            })
            .collect())
    }

    /// Checks an input's block count and slots.
    fn check_input(&self, input: &EncryptedInput) -> Result<()> {
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
        Ok(())
    }
}

/// Every example's blocks in one list, and how many each had.
fn flatten(batch: Vec<Vec<Ciphertext>>) -> (Vec<Ciphertext>, Vec<usize>) {
    let sizes = batch.iter().map(Vec::len).collect();
    (batch.into_iter().flatten().collect(), sizes)
}

/// The inverse of [`flatten`].
fn unflatten(flat: Vec<Ciphertext>, sizes: &[usize]) -> Vec<Vec<Ciphertext>> {
    let mut flat = flat.into_iter();
    sizes
        .iter()
        .map(|&size| flat.by_ref().take(size).collect())
        .collect()
}

/// `count` copies of `ct`.
fn repeated(ct: &Ciphertext, count: usize) -> Result<Vec<Ciphertext>> {
    (0..count).map(|_| ct.try_clone()).collect()
}

/// Copies of `blocks`.
fn copies(blocks: &[Ciphertext]) -> Result<Vec<Ciphertext>> {
    blocks.iter().map(Ciphertext::try_clone).collect()
}

/// The one element of an operation's output.
fn single<T>(mut outputs: Vec<T>) -> Result<T> {
    match (outputs.pop(), outputs.is_empty()) {
        (Some(one), true) => Ok(one),
        _ => Err(internal("an operation returned other than one output")),
    }
}

/// Whether two scales are equal for the evaluator.
fn same_scale(a: f64, b: f64) -> bool {
    (a / b - 1.0).abs() < 1e-12
}

/// One forward pass's operations. Every operation takes whole batches
/// (blocks, heads) in lockstep, so that the ciphertexts lacking levels are
/// refreshed in one call (packed into as few bootstraps as fit).
struct Run<'a> {
    model: &'a EncryptedModel,
    ev: &'a Evaluator,
    refresher: &'a mut dyn Refresh,
}

impl Run<'_> {
    /// `ct` dropped to `level` (a copy).
    fn at_level(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
        let mut out = ct.try_clone()?;
        self.ev.drop_level_assign(&mut out, ct.level() - level)?;
        Ok(out)
    }

    /// `x·W + b` for every example `x` of `xs` and every layer of
    /// `layers`: the examples' blocks (values up to `bound`) refreshed
    /// together and brought to one level, each example prepared once, each
    /// weight matrix encoded once. Indexed `[example][layer][block]`.
    fn dense(
        &mut self,
        xs: &mut [Vec<Ciphertext>],
        bound: f64,
        layers: &[&DenseBlocks],
    ) -> Result<Vec<Vec<Vec<Ciphertext>>>> {
        for x in xs.iter() {
            if let Some(layer) = layers.iter().find(|l| l.blocks.len() != x.len()) {
                return Err(Error::LengthMismatch {
                    op: OP,
                    got: x.len(),
                    expected: layer.blocks.len(),
                });
            }
        }
        let mut all: Vec<&mut Ciphertext> = xs.iter_mut().flatten().collect();
        let mut due: Vec<(&mut Ciphertext, f64)> =
            all.iter_mut().map(|ct| (&mut **ct, bound)).collect();
        self.refresher.refresh(self.ev, &mut due, CPMM_DEPTH)?;
        let level = all
            .iter()
            .map(|ct| ct.level())
            .min()
            .ok_or_else(|| internal("no block"))?;
        for ct in all {
            self.ev.drop_level_assign(ct, ct.level() - level)?;
        }
        let product = self.model.product(level)?;
        let encoded = layers
            .iter()
            .map(|layer| self.encode_layer(&product, layer))
            .collect::<Result<Vec<_>>>()?;
        xs.iter()
            .map(|x| {
                let prepared = x
                    .iter()
                    .map(|ct| product.prepare(self.ev, ct))
                    .collect::<Result<Vec<_>>>()?;
                encoded
                    .iter()
                    .zip(layers)
                    .map(|(weights, layer)| {
                        self.apply_layer(&product, &prepared, weights, layer.bias.as_deref())
                    })
                    .collect()
            })
            .collect()
    }

    /// One single-block dense layer on every ciphertext of `xs`.
    fn dense_each(
        &mut self,
        xs: Vec<Ciphertext>,
        bound: f64,
        layer: &DenseBlocks,
    ) -> Result<Vec<Ciphertext>> {
        let mut batch: Vec<Vec<Ciphertext>> = xs.into_iter().map(|x| vec![x]).collect();
        self.dense(&mut batch, bound, &[layer])?
            .into_iter()
            .map(|layers| single(single(layers)?))
            .collect()
    }

    /// The weights of `layer` encoded for `product`.
    fn encode_layer(
        &self,
        product: &MatrixProduct,
        layer: &DenseBlocks,
    ) -> Result<Vec<Vec<EncodedWeights>>> {
        let encoder = self.model.encoder();
        layer
            .blocks
            .iter()
            .map(|row| {
                row.iter()
                    .map(|w| product.encode_weights(encoder, w))
                    .collect::<Result<Vec<_>>>()
            })
            .collect()
    }

    /// `x·W + b` from the prepared blocks of `x` and the encoded `W`.
    fn apply_layer(
        &self,
        product: &MatrixProduct,
        prepared: &[PreparedLeft],
        weights: &[Vec<EncodedWeights>],
        bias: Option<&[Array2<f64>]>,
    ) -> Result<Vec<Ciphertext>> {
        let left: Vec<&PreparedLeft> = prepared.iter().collect();
        let rows: Vec<&[EncodedWeights]> = weights.iter().map(Vec::as_slice).collect();
        let mut out = product.multiply_plain_blocks(self.ev, &left, &rows)?;
        if let Some(bias) = bias {
            for (ct, b) in out.iter_mut().zip(bias) {
                let pt = self.model.encoder().encode_complex(
                    &self.model.layout().shape().pack(b)?,
                    ct.level(),
                    ct.scale(),
                )?;
                self.ev.add_plain_assign(ct, &pt)?;
            }
        }
        Ok(out)
    }

    /// `a_i ⊙ b_i`.
    fn multiply(
        &mut self,
        a: &mut [Ciphertext],
        bound_a: f64,
        b: &mut [Ciphertext],
        bound_b: f64,
    ) -> Result<Vec<Ciphertext>> {
        ensure_both(&mut *self.refresher, self.ev, (a, bound_a), (b, bound_b), 1)?;
        a.iter()
            .zip(b.iter())
            .map(|(a, b)| {
                let level = a.level().min(b.level());
                self.ev
                    .mul_relin_rescale_new(&self.at_level(a, level)?, &self.at_level(b, level)?)
            })
            .collect()
    }

    /// `a_i ⊙ a_i`.
    fn square(&mut self, a: &mut [Ciphertext], bound: f64) -> Result<Vec<Ciphertext>> {
        ensure_all(&mut *self.refresher, self.ev, a, bound, 1)?;
        a.iter()
            .map(|a| self.ev.mul_relin_rescale_new(a, a))
            .collect()
    }

    /// `a_i ⊙ m` for a plaintext matrix `m`, the scales kept.
    fn multiply_plain(
        &mut self,
        a: &mut [Ciphertext],
        bound: f64,
        m: &Array2<f64>,
    ) -> Result<Vec<Ciphertext>> {
        ensure_all(&mut *self.refresher, self.ev, a, bound, 1)?;
        let slots = self.model.layout().shape().pack(m)?;
        a.iter()
            .map(|a| {
                let prime = self.ev.context().params().q()[a.level()] as f64;
                let pt = self
                    .model
                    .encoder()
                    .encode_complex(&slots, a.level(), prime)?;
                let mut out = a.try_clone()?;
                self.ev.mul_plain_assign(&mut out, &pt)?;
                self.ev.rescale_assign(&mut out)?;
                Ok(out)
            })
            .collect()
    }

    /// `a_iᵀ`.
    fn transpose(&mut self, a: &mut [Ciphertext], bound: f64) -> Result<Vec<Ciphertext>> {
        ensure_all(&mut *self.refresher, self.ev, a, bound, 1)?;
        a.iter()
            .map(|a| self.model.transpose(a.level())?.apply(self.ev, a))
            .collect()
    }

    /// `a_i·b_i` (CCMM).
    fn matmul(
        &mut self,
        a: &mut [Ciphertext],
        bound_a: f64,
        b: &mut [Ciphertext],
        bound_b: f64,
    ) -> Result<Vec<Ciphertext>> {
        ensure_both(
            &mut *self.refresher,
            self.ev,
            (a, bound_a),
            (b, bound_b),
            CCMM_DEPTH,
        )?;
        a.iter()
            .zip(b.iter())
            .map(|(a, b)| {
                let level = a.level().min(b.level());
                self.model.product(level)?.multiply(self.ev, a, b)
            })
            .collect()
    }

    /// `a_i + b_i`: when the scales of a pair differ, the operand with more
    /// levels is brought to the other's scale by a constant product (one
    /// level; the movers lacking it are refreshed together).
    fn add(
        &mut self,
        mut a: Vec<Ciphertext>,
        bound_a: f64,
        mut b: Vec<Ciphertext>,
        bound_b: f64,
    ) -> Result<Vec<Ciphertext>> {
        if a.len() != b.len() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: b.len(),
                expected: a.len(),
            });
        }
        let mut due: Vec<(&mut Ciphertext, f64)> = movers(&mut a, bound_a, &mut b, bound_b)
            .into_iter()
            .map(|(ct, bound, _)| (ct, bound))
            .collect();
        self.refresher.refresh(self.ev, &mut due, 1)?;
        for (moved, _, target) in movers(&mut a, bound_a, &mut b, bound_b) {
            let prime = self.ev.context().params().q()[moved.level()] as f64;
            let constant_scale = target * prime / moved.scale();
            self.ev
                .mul_const_with_scale_assign(moved, Complex::new(1.0, 0.0), constant_scale)?;
            self.ev.rescale_assign(moved)?;
        }
        a.iter()
            .zip(&b)
            .map(|(a, b)| {
                let level = a.level().min(b.level());
                self.ev
                    .add_new(&self.at_level(a, level)?, &self.at_level(b, level)?)
            })
            .collect()
    }

    /// The sum of `blocks`.
    fn sum(&mut self, blocks: Vec<Ciphertext>, bound: f64) -> Result<Ciphertext> {
        let mut blocks = blocks.into_iter();
        let first = blocks.next().ok_or_else(|| internal("a sum of no block"))?;
        blocks.try_fold(first, |acc, ct| {
            single(self.add(vec![acc], bound, vec![ct], bound)?)
        })
    }

    /// `approximation` on every `x_i` (values up to `bound`), in lockstep.
    fn function(
        &mut self,
        xs: &[Ciphertext],
        approximation: &Approximation,
        bound: f64,
    ) -> Result<Vec<Ciphertext>> {
        evaluate_batch(self.ev, xs, approximation, bound, &mut *self.refresher)
    }

    /// Each example's rows centred and divided by their deviation.
    fn normalize(&mut self, xs: &[Vec<Ciphertext>]) -> Result<Vec<Vec<Ciphertext>>> {
        let model = self.model;
        let bounds = *model.bounds();
        let config = model.config();
        let mean_layer = &model.blocks().mean;
        let blocks = model.layout().hidden_blocks();
        let sum_bound = blocks as f64 * bounds.stream;
        let sums = xs
            .iter()
            .map(|x| self.sum(copies(x)?, bounds.stream))
            .collect::<Result<Vec<_>>>()?;
        let means = self.dense_each(sums, sum_bound, mean_layer)?;
        let mut negated = Vec::with_capacity(xs.len() * blocks);
        for mean in &means {
            let mut mean = mean.try_clone()?;
            self.ev.neg_assign(&mut mean)?;
            negated.extend(repeated(&mean, blocks)?);
        }
        let (flat, sizes) = flatten(xs.iter().map(|x| copies(x)).collect::<Result<_>>()?);
        let mut centred = self.add(flat, bounds.stream, negated, bounds.stream)?;
        let centred_bound = 2.0 * bounds.stream;
        let squares = unflatten(self.square(&mut centred, centred_bound)?, &sizes);
        let square_bound = blocks as f64 * centred_bound * centred_bound;
        let totals = squares
            .into_iter()
            .map(|squares| self.sum(squares, centred_bound * centred_bound))
            .collect::<Result<Vec<_>>>()?;
        let mut variances = self.dense_each(totals, square_bound, mean_layer)?;
        for variance in variances.iter_mut() {
            self.ev
                .add_const_assign(variance, Complex::new(config.layer_norm_eps, 0.0))?;
        }
        let (low, high) = config.ranges.variance;
        let [_, _, inv_sqrt, _] = model.polynomials().approximations();
        let inverses = self.function(&variances, inv_sqrt, high)?;
        let mut inverses = inverses
            .iter()
            .map(|inverse| repeated(inverse, blocks))
            .collect::<Result<Vec<_>>>()?
            .concat();
        let normed = self.multiply(&mut centred, centred_bound, &mut inverses, 1.0 / low.sqrt())?;
        Ok(unflatten(normed, &sizes))
    }

    /// `stream + update` for every example.
    fn residual(
        &mut self,
        streams: Vec<Vec<Ciphertext>>,
        updates: Vec<Vec<Ciphertext>>,
    ) -> Result<Vec<Vec<Ciphertext>>> {
        let bound = self.model.bounds().stream;
        let (streams, sizes) = flatten(streams);
        let (updates, _) = flatten(updates);
        Ok(unflatten(self.add(streams, bound, updates, bound)?, &sizes))
    }

    /// LayerNorm, the heads (of every example, in lockstep), the output
    /// projection and the residual.
    fn attention_block(
        &mut self,
        layer: &LayerBlocks,
        streams: Vec<Vec<Ciphertext>>,
        masks: &[Ciphertext],
    ) -> Result<Vec<Vec<Ciphertext>>> {
        let model = self.model;
        let bounds = *model.bounds();
        let blocks = model.blocks();
        let c = kernel_factor(model.config());
        let [exp, _, _, _] = model.polynomials().approximations();
        let heads = layer.heads.len();
        let mut normed = self.normalize(&streams)?;
        let projections: Vec<&DenseBlocks> = layer
            .heads
            .iter()
            .flat_map(|h| [&h.query, &h.key, &h.value])
            .collect();
        let (mut qs, mut ks, mut vs) = (Vec::new(), Vec::new(), Vec::new());
        for example in self.dense(&mut normed, bounds.normalized, &projections)? {
            let mut projected = example.into_iter();
            while let (Some(q), Some(k), Some(v)) =
                (projected.next(), projected.next(), projected.next())
            {
                qs.push(single(q)?);
                ks.push(single(k)?);
                vs.push(single(v)?);
            }
        }
        let (q_bound, k_bound) = (2.0 * c * bounds.projection, bounds.projection);
        let mut head_masks = masks
            .iter()
            .map(|mask| repeated(mask, heads))
            .collect::<Result<Vec<_>>>()?
            .concat();
        let mut vs = self.multiply(&mut vs, k_bound, &mut head_masks, 1.0)?;
        let mut q_squares = self.square(&mut qs, q_bound)?;
        let q_norms = self.dense_each(
            q_squares.split_off(0),
            q_bound * q_bound,
            &blocks.query_norm,
        )?;
        let k_squares = self.square(&mut ks, k_bound)?;
        let mut k_norms = self.dense_each(k_squares, k_bound * k_bound, &blocks.key_norm)?;
        let k_norms = self.transpose(&mut k_norms, bounds.exponent)?;
        let mut k_transposed = self.transpose(&mut ks, k_bound)?;
        let cross = self.matmul(&mut qs, q_bound, &mut k_transposed, k_bound)?;
        let norms = self.add(q_norms, bounds.exponent, k_norms, bounds.exponent)?;
        let exponents = self.add(norms, 2.0 * bounds.exponent, cross, 2.0 * bounds.exponent)?;
        let mut kernels = self.function(&exponents, exp, bounds.exponent)?;
        let head_contexts = self.matmul(&mut kernels, 1.0, &mut vs, k_bound)?;
        let mut contexts = Vec::with_capacity(streams.len());
        let mut head_contexts = head_contexts.into_iter();
        for _ in 0..streams.len() {
            let mut per_block: Vec<Vec<Ciphertext>> = (0..model.layout().hidden_blocks())
                .map(|_| Vec::new())
                .collect();
            for (head, context) in layer.heads.iter().zip(head_contexts.by_ref()) {
                per_block
                    .get_mut(head.block)
                    .ok_or_else(|| internal("a head outside the blocks"))?
                    .push(context);
            }
            contexts.push(
                per_block
                    .into_iter()
                    .map(|heads| self.sum(heads, bounds.context))
                    .collect::<Result<Vec<_>>>()?,
            );
        }
        let outputs = self
            .dense(&mut contexts, bounds.context, &[&layer.output])?
            .into_iter()
            .map(single)
            .collect::<Result<Vec<_>>>()?;
        self.residual(streams, outputs)
    }

    /// LayerNorm, the ReLU-GLU and the residual, for every example.
    fn ffn_block(
        &mut self,
        layer: &LayerBlocks,
        streams: Vec<Vec<Ciphertext>>,
    ) -> Result<Vec<Vec<Ciphertext>>> {
        let model = self.model;
        let bounds = *model.bounds();
        let relu_bound = model.config().ranges.relu_bound;
        let [_, relu, _, _] = model.polynomials().approximations();
        let mut normed = self.normalize(&streams)?;
        let (mut gates, mut ups) = (Vec::new(), Vec::new());
        for example in self.dense(&mut normed, bounds.normalized, &[&layer.gate, &layer.up])? {
            let mut outputs = example.into_iter();
            match (outputs.next(), outputs.next()) {
                (Some(gate), Some(up)) => {
                    gates.push(gate);
                    ups.push(up);
                }
                _ => return Err(internal("the gate and up projections")),
            }
        }
        let (mut gate, sizes) = flatten(gates);
        let (mut up, _) = flatten(ups);
        // B·relu(x/B): the divisions are relabellings of the scale.
        for g in gate.iter_mut() {
            g.scale *= relu_bound;
        }
        let mut activated = self.function(&gate, relu, 1.0)?;
        for a in activated.iter_mut() {
            a.scale /= relu_bound;
        }
        let glu = self.multiply(&mut activated, bounds.ffn, &mut up, bounds.ffn)?;
        let mut glu = unflatten(glu, &sizes);
        let downs = self
            .dense(&mut glu, bounds.ffn, &[&layer.down])?
            .into_iter()
            .map(single)
            .collect::<Result<Vec<_>>>()?;
        self.residual(streams, downs)
    }

    /// The head on the first token of every example: the logits on row 0.
    fn head(&mut self, streams: Vec<Vec<Ciphertext>>) -> Result<Vec<Ciphertext>> {
        let model = self.model;
        let bounds = *model.bounds();
        let blocks = model.blocks();
        let [_, _, _, tanh] = model.polynomials().approximations();
        let (mut input, input_bound) = if model.config().final_layer_norm {
            (self.normalize(&streams)?, bounds.normalized)
        } else {
            (streams, bounds.stream)
        };
        let mut bottleneck = self.dense_layer(&mut input, input_bound, &blocks.bottleneck)?;
        let wide = self.dense_layer(&mut bottleneck, bounds.head, &blocks.widen)?;
        let (mut wide, sizes) = flatten(wide);
        let first = self.multiply_plain(&mut wide, bounds.head, &blocks.first_row)?;
        let activated = self.function(&first, tanh, model.config().ranges.tanh_bound)?;
        let mut activated = unflatten(activated, &sizes);
        self.dense_layer(&mut activated, 1.0, &blocks.classifier)?
            .into_iter()
            .map(single)
            .collect()
    }

    /// One dense layer on every example.
    fn dense_layer(
        &mut self,
        xs: &mut [Vec<Ciphertext>],
        bound: f64,
        layer: &DenseBlocks,
    ) -> Result<Vec<Vec<Ciphertext>>> {
        self.dense(xs, bound, &[layer])?
            .into_iter()
            .map(single)
            .collect()
    }
}

/// Of each pair whose scales differ, the operand that moves (the one with
/// more levels), its bound and the scale it moves to.
fn movers<'a>(
    a: &'a mut [Ciphertext],
    bound_a: f64,
    b: &'a mut [Ciphertext],
    bound_b: f64,
) -> Vec<(&'a mut Ciphertext, f64, f64)> {
    a.iter_mut()
        .zip(b.iter_mut())
        .filter(|(a, b)| !same_scale(a.scale(), b.scale()))
        .map(|(a, b)| {
            if a.level() >= b.level() {
                let target = b.scale();
                (a, bound_a, target)
            } else {
                let target = a.scale();
                (b, bound_b, target)
            }
        })
        .collect()
}

/// An internal invariant failed (a bug, reported rather than panicking).
fn internal(what: &str) -> Error {
    Error::OutOfRange {
        op: OP,
        detail: format!("internal: {what}"),
    }
}
