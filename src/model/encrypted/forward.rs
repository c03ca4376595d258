//! The encrypted forward pass: the twin's computation
//! ([`crate::model::friendly::forward`]) on `d × d` blocks, `P` per
//! ciphertext, with levels refreshed wherever an operation lacks them.
//!
//! # The circuit
//!
//! Every operation first asks the [`Refresh`] for the levels it consumes
//! (a dense product 1, CCMM 3, transpose 1, a product 1, a polynomial its
//! depth,
//! between the stages of the long ones: see
//! [`evaluate_refreshing`]), giving the bound of the values it would
//! bootstrap ([`ActivationBounds`](super::ActivationBounds)); so the
//! bootstraps fall where the levels run out, and their number per layer is
//! reported. Sums of ciphertexts whose scales differ spend one level on a
//! constant product that matches them.
//!
//! Per layer, on the stream `X`:
//!
//! 1. LayerNorm without `γ`, `β` (folded into the next weights): the row
//!    mean `μ = X·J/hidden` (every column holds the row's mean),
//!    `C = X − μ`, the variance `(C ⊙ C)·J/hidden + eps` (`1` in the
//!    padding blocks, which would leave the inverse square root's range),
//!    its inverse square root, `N = C ⊙ inv`;
//! 2. all heads at once (head `h` in block `h`): `Q' = N·W'_q` (scaled by
//!    `2c`), `K`, `V`; `V ← V ⊙ M` (the encrypted mask's rows, in every
//!    block); the exponent `(Q' ⊙ Q')·(−J/(4c)) + ((K ⊙ K)·(−c·J))ᵀ + Q'·Kᵀ`
//!    `= −c·(‖q_i‖² + ‖k_j‖² − 2q_i·k_j)` (`J` block-diagonal; transpose
//!    and CCMM block by block), exp by squaring, `S·V` (CCMM);
//! 3. `X ← X + context·W_o + b_o` (`W_o` reads head `h`'s block);
//! 4. LayerNorm again, `X ← X + (B·relu((N·W_g + b_g)/B) ⊙ (N·W_u + b_u))·W_d + b_d`
//!    (ReLU through its composite on `[−1, 1]`, the division by `B` a
//!    relabelling of the scale).
//!
//! The head: the final LayerNorm if any (folded into the bottleneck), the
//! bottleneck and widening products, the first row kept (a plaintext
//! mask: the other tokens' rows may leave tanh's range), tanh, the
//! classifier: the logits on row 0 of one block.

use std::time::Instant;

use super::adapters::{DenseTensor, EncryptedAdapters, LayerAdapters};
use super::blocks::{kernel_factor, DenseLayer, LayerBlocks, NormSlots};
use super::full;
use super::model::{EncryptedInput, EncryptedModel};
use super::setup::AdapterMode;
use super::tape::{
    AttentionTape, EncryptedTape, FfnTape, HeadInputs, HeadTape, LayerTape, NormTape,
};
use crate::approx::Approximation;
use crate::circuits::combine::multiply_pairs;
use crate::circuits::functions::{evaluate_batch, relu_with_step};
use crate::circuits::refresh::{ensure_all, ensure_both, Refresh};
use crate::ckks::{Ciphertext, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;
use crate::model::friendly::{AttentionKernel, LoraTarget};
use crate::tensor::{
    EncryptedDense, LoraProduct, PreparedInput, RowDense, CCMM_DEPTH, DENSE_DEPTH,
    ENCRYPTED_DENSE_DEPTH, LORA_DEPTH, ROW_DENSE_DEPTH,
};

const OP: &str = "EncryptedModel::forward";

/// Per example, a list of ciphertexts.
type PerExample = Vec<Vec<Ciphertext>>;

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
    /// The part of it spent bootstrapping.
    pub bootstrap_seconds: f64,
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
    /// The part of it spent bootstrapping.
    pub head_bootstrap_seconds: f64,
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
        Ok(self
            .run_forward(ev, inputs, None, refresher, false)?
            .into_iter()
            .map(|(output, _)| output)
            .collect())
    }

    /// [`forward_batch`](Self::forward_batch) of a model built
    /// [`for_adapters`](Self::for_adapters), with its encrypted adapters
    /// (refreshed in place where they lack levels).
    ///
    /// Errors: those of [`forward_batch`](Self::forward_batch), adapters
    /// of another shape.
    pub fn forward_batch_with(
        &self,
        ev: &Evaluator,
        inputs: &[EncryptedInput],
        adapters: &mut EncryptedAdapters,
        refresher: &mut dyn Refresh,
    ) -> Result<Vec<EncryptedOutput>> {
        Ok(self
            .run_forward(ev, inputs, Some(adapters), refresher, false)?
            .into_iter()
            .map(|(output, _)| output)
            .collect())
    }

    /// The forward of a batch keeping each example's activations for the
    /// backward pass; `adapters` exactly when the model takes encrypted
    /// ones.
    ///
    /// Errors: those of [`forward_batch_with`](Self::forward_batch_with).
    pub fn forward_taped(
        &self,
        ev: &Evaluator,
        inputs: &[EncryptedInput],
        adapters: Option<&mut EncryptedAdapters>,
        refresher: &mut dyn Refresh,
    ) -> Result<Vec<(EncryptedOutput, EncryptedTape)>> {
        self.run_forward(ev, inputs, adapters, refresher, true)?
            .into_iter()
            .map(|(output, tape)| Ok((output, tape.ok_or_else(|| internal("no tape"))?)))
            .collect()
    }

    /// The forward of a batch, with the tapes if `keep` (otherwise each
    /// layer's is dropped as soon as the layer ends).
    fn run_forward(
        &self,
        ev: &Evaluator,
        inputs: &[EncryptedInput],
        mut adapters: Option<&mut EncryptedAdapters>,
        refresher: &mut dyn Refresh,
        keep: bool,
    ) -> Result<Vec<(EncryptedOutput, Option<EncryptedTape>)>> {
        if inputs.is_empty() {
            return Err(Error::OutOfRange {
                op: OP,
                detail: "an empty batch".into(),
            });
        }
        self.check_adapters(adapters.as_deref())?;
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
        let mut tapes: Vec<Vec<LayerTape>> = inputs.iter().map(|_| Vec::new()).collect();
        for (index, layer) in self.blocks().layers.iter().enumerate() {
            let (start, clock) = (run.refresher.count(), Instant::now());
            let refreshing = run.refresher.seconds();
            let layer_adapters = adapters.as_deref_mut().map(|a| a.layer_mut(index));
            let (attended, attention_tapes) =
                run.attention_block((layer, index), streams, &masks, layer_adapters)?;
            let attention = attended
                .iter()
                .map(|s| copies(s))
                .collect::<Result<Vec<_>>>()?;
            let layer_parameters = adapters.as_deref_mut().map(|a| a.layer_mut(index));
            let (output, ffn_tapes) = run.ffn_block((layer, index), attended, layer_parameters)?;
            streams = output;
            let bootstraps = run.refresher.count() - start;
            let seconds = clock.elapsed().as_secs_f64();
            let bootstrap_seconds = run.refresher.seconds() - refreshing;
            for ((trace, attention), stream) in traces.iter_mut().zip(attention).zip(&streams) {
                trace.push(EncryptedLayerTrace {
                    attention,
                    ffn: copies(stream)?,
                    bootstraps,
                    seconds,
                    bootstrap_seconds,
                });
            }
            if keep {
                for ((tapes, attention), ffn) in
                    tapes.iter_mut().zip(attention_tapes).zip(ffn_tapes)
                {
                    tapes.push(LayerTape { attention, ffn });
                }
            }
        }
        let (start, clock) = (run.refresher.count(), Instant::now());
        let refreshing = run.refresher.seconds();
        let (logits, head_tapes) = run.head(streams, adapters)?;
        let head_bootstraps = run.refresher.count() - start;
        let head_seconds = clock.elapsed().as_secs_f64();
        let head_bootstrap_seconds = run.refresher.seconds() - refreshing;
        traces
            .into_iter()
            .zip(logits)
            .zip(tapes.into_iter().zip(head_tapes).zip(masks))
            .map(|((layers, logits), ((layer_tapes, head), mask))| {
                let output = EncryptedOutput {
                    layers,
                    logits,
                    head_bootstraps,
                    head_seconds,
                    head_bootstrap_seconds,
                };
                let tape = keep.then(|| EncryptedTape {
                    mask,
                    layers: layer_tapes,
                    head,
                });
                Ok((output, tape))
            })
            .collect()
    }

    /// Checks that `adapters` come exactly when the model takes encrypted
    /// ones, with its layers and targets.
    pub(super) fn check_adapters(&self, adapters: Option<&EncryptedAdapters>) -> Result<()> {
        match (self.takes_encrypted_adapters(), adapters) {
            (false, None) => Ok(()),
            (true, Some(adapters)) => {
                let full = self.adapter_mode() == AdapterMode::Full;
                let targets = if full {
                    Vec::new()
                } else {
                    super::adapters::adapter_targets(self.config())?
                };
                if adapters.layers() != self.config().layers
                    || adapters.targets() != targets.as_slice()
                    || adapters.is_full() != full
                {
                    return Err(Error::InvalidParameters(format!(
                        "{OP}: parameters for {} layers, targets {:?} (full fine-tuning: {}), the model has {}, {:?} ({})",
                        adapters.layers(),
                        adapters.targets(),
                        adapters.is_full(),
                        self.config().layers,
                        targets,
                        full
                    )));
                }
                Ok(())
            }
            (true, None) => Err(Error::InvalidParameters(format!(
                "{OP}: the model was built for encrypted adapters and none were given"
            ))),
            (false, Some(_)) => Err(Error::InvalidParameters(format!(
                "{OP}: encrypted adapters given to a model with its adapters merged"
            ))),
        }
    }

    /// Checks an input's ciphertext count and slots.
    fn check_input(&self, input: &EncryptedInput) -> Result<()> {
        let slots = self.layout().shape().slots();
        if input.tokens.len() != self.layout().hidden_ciphertexts() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: input.tokens.len(),
                expected: self.layout().hidden_ciphertexts(),
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
pub(super) fn flatten(batch: Vec<Vec<Ciphertext>>) -> (Vec<Ciphertext>, Vec<usize>) {
    let sizes = batch.iter().map(Vec::len).collect();
    (batch.into_iter().flatten().collect(), sizes)
}

/// The inverse of [`flatten`].
pub(super) fn unflatten(flat: Vec<Ciphertext>, sizes: &[usize]) -> Vec<Vec<Ciphertext>> {
    let mut flat = flat.into_iter();
    sizes
        .iter()
        .map(|&size| flat.by_ref().take(size).collect())
        .collect()
}

/// Each example's mask once per ciphertext of its heads' blocks
/// (`sizes[i]` for example `i`), flat.
pub(super) fn head_masks(masks: &[Ciphertext], sizes: &[usize]) -> Result<Vec<Ciphertext>> {
    Ok(masks
        .iter()
        .zip(sizes)
        .map(|(mask, &size)| repeated(mask, size))
        .collect::<Result<Vec<_>>>()?
        .concat())
}

/// `count` copies of `ct`.
pub(super) fn repeated(ct: &Ciphertext, count: usize) -> Result<Vec<Ciphertext>> {
    (0..count).map(|_| ct.try_clone()).collect()
}

/// Copies of `blocks`.
pub(super) fn copies(blocks: &[Ciphertext]) -> Result<Vec<Ciphertext>> {
    blocks.iter().map(Ciphertext::try_clone).collect()
}

/// The variance's offsets on a stream `width` wide (whole ciphertexts):
/// `eps` on the `hidden` features, `1` on the padding, which would
/// otherwise leave the inverse square root's range.
fn variance_offsets(eps: f64, hidden: usize, width: usize) -> ndarray::Array1<f64> {
    ndarray::Array1::from_shape_fn(width, |j| if j < hidden { eps } else { 1.0 })
}

/// The one element of an operation's output.
pub(super) fn single<T>(mut outputs: Vec<T>) -> Result<T> {
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
pub(super) struct Run<'a> {
    pub(super) model: &'a EncryptedModel,
    pub(super) ev: &'a Evaluator,
    pub(super) refresher: &'a mut dyn Refresh,
}

impl Run<'_> {
    /// `ct` dropped to `level` (a copy).
    fn at_level(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
        let mut out = ct.try_clone()?;
        self.ev.drop_level_assign(&mut out, ct.level() - level)?;
        Ok(out)
    }

    /// `x·W + b` for every example `x` of `xs` and every layer of
    /// `layers`: the examples' ciphertexts (values up to `bound`) refreshed
    /// together and brought to one level, two examples per complex operand
    /// (where their scales agree), each operand prepared once, each
    /// diagonal encoded once. Indexed `[example][layer][ciphertext]`.
    fn dense(
        &mut self,
        xs: &mut [Vec<Ciphertext>],
        bound: f64,
        layers: &[&DenseLayer],
    ) -> Result<Vec<Vec<Vec<Ciphertext>>>> {
        let product = self.model.dense();
        for x in xs.iter() {
            if let Some(layer) = layers
                .iter()
                .find(|l| product.ciphertexts_for(l.weight.nrows()) != x.len())
            {
                return Err(Error::LengthMismatch {
                    op: OP,
                    got: x.len(),
                    expected: product.ciphertexts_for(layer.weight.nrows()),
                });
            }
        }
        let mut all: Vec<&mut Ciphertext> = xs.iter_mut().flatten().collect();
        let mut due: Vec<(&mut Ciphertext, f64)> =
            all.iter_mut().map(|ct| (&mut **ct, bound)).collect();
        self.refresher.refresh(self.ev, &mut due, DENSE_DEPTH)?;
        let level = all
            .iter()
            .map(|ct| ct.level())
            .min()
            .ok_or_else(|| internal("no ciphertext"))?;
        for ct in all {
            self.ev.drop_level_assign(ct, ct.level() - level)?;
        }
        // Examples in pairs, as one complex operand each (real weights act
        // on both parts): half the products, one conjugation per output.
        let mut operands = Vec::with_capacity(xs.len());
        let mut paired = Vec::with_capacity(xs.len());
        let mut index = 0;
        while index < xs.len() {
            let pair = xs.get(index + 1).filter(|b| {
                b.len() == xs[index].len()
                    && xs[index]
                        .iter()
                        .zip(b.iter())
                        .all(|(a, b)| a.scale() == b.scale())
            });
            match pair {
                Some(b) => {
                    let zs = xs[index]
                        .iter()
                        .zip(b)
                        .map(|(a, b)| self.ev.complex_pack_new(a, b))
                        .collect::<Result<Vec<_>>>()?;
                    operands.push(zs);
                    paired.push(true);
                    index += 2;
                }
                None => {
                    operands.push(copies(&xs[index])?);
                    paired.push(false);
                    index += 1;
                }
            }
        }
        let prepared = operands
            .iter()
            .map(|x| {
                x.iter()
                    .map(|ct| product.prepare(self.ev, ct))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        drop(operands);
        // Pairs take the factor 1/2 that their split doubles back.
        let (pairs, singles): (Vec<_>, Vec<_>) = prepared
            .iter()
            .zip(&paired)
            .enumerate()
            .partition(|(_, (_, &pair))| pair);
        let mut outputs: Vec<Vec<Vec<Ciphertext>>> = xs.iter().map(|_| Vec::new()).collect();
        for layer in layers {
            let mut by_operand: Vec<Option<Vec<Ciphertext>>> =
                prepared.iter().map(|_| None).collect();
            for (group, factor) in [(&pairs, 0.5), (&singles, 1.0)] {
                if group.is_empty() {
                    continue;
                }
                let inputs: Vec<&[PreparedInput]> =
                    group.iter().map(|(_, (x, _))| x.as_slice()).collect();
                let products = product.multiply(
                    self.ev,
                    self.model.encoder(),
                    &inputs,
                    &layer.weight,
                    factor,
                )?;
                for ((operand, _), ys) in group.iter().zip(products) {
                    by_operand[*operand] = Some(ys);
                }
            }
            let mut results = Vec::with_capacity(xs.len());
            for (ys, &pair) in by_operand.into_iter().zip(&paired) {
                let ys = ys.ok_or_else(|| internal("an operand without its product"))?;
                if pair {
                    let (re, im): (Vec<_>, Vec<_>) = ys
                        .iter()
                        .map(|z| self.ev.complex_split_new(z))
                        .collect::<Result<Vec<_>>>()?
                        .into_iter()
                        .unzip();
                    results.extend([re, im]);
                } else {
                    results.push(ys);
                }
            }
            for (out, mut y) in outputs.iter_mut().zip(results) {
                if let Some(bias) = &layer.bias {
                    self.add_slots(&mut y, bias)?;
                }
                out.push(y);
            }
        }
        Ok(outputs)
    }

    /// `cts[h] += slots[h]` (plaintexts at each ciphertext's level and scale).
    pub(super) fn add_slots(&self, cts: &mut [Ciphertext], slots: &[Vec<Complex>]) -> Result<()> {
        if cts.len() != slots.len() {
            return Err(Error::LengthMismatch {
                op: OP,
                got: slots.len(),
                expected: cts.len(),
            });
        }
        for (ct, slots) in cts.iter_mut().zip(slots) {
            let pt = self
                .model
                .encoder()
                .encode_complex(slots, ct.level(), ct.scale())?;
            self.ev.add_plain_assign(ct, &pt)?;
        }
        Ok(())
    }

    /// One dense layer on every example.
    pub(super) fn dense_layer(
        &mut self,
        xs: &mut [Vec<Ciphertext>],
        bound: f64,
        layer: &DenseLayer,
    ) -> Result<Vec<Vec<Ciphertext>>> {
        self.dense(xs, bound, &[layer])?
            .into_iter()
            .map(single)
            .collect()
    }

    /// `a_i ⊙ b_i`.
    pub(super) fn multiply(
        &mut self,
        a: &mut [Ciphertext],
        bound_a: f64,
        b: &mut [Ciphertext],
        bound_b: f64,
    ) -> Result<Vec<Ciphertext>> {
        multiply_pairs(self.ev, (a, bound_a), (b, bound_b), &mut *self.refresher)
    }

    /// `a_i ⊙ a_i`.
    pub(super) fn square(&mut self, a: &mut [Ciphertext], bound: f64) -> Result<Vec<Ciphertext>> {
        ensure_all(&mut *self.refresher, self.ev, a, bound, 1)?;
        a.iter()
            .map(|a| self.ev.mul_relin_rescale_new(a, a))
            .collect()
    }

    /// `a_i ⊙ p_i` for plaintext slot vectors `p` (cycled: the
    /// ciphertexts of every example take them in turn), the scales kept.
    pub(super) fn multiply_plain(
        &mut self,
        a: &mut [Ciphertext],
        bound: f64,
        slots: &[Vec<Complex>],
    ) -> Result<Vec<Ciphertext>> {
        if slots.is_empty() {
            return Err(internal("no plaintext"));
        }
        ensure_all(&mut *self.refresher, self.ev, a, bound, 1)?;
        a.iter()
            .zip(slots.iter().cycle())
            .map(|(a, slots)| {
                let prime = self.ev.context().params().q()[a.level()] as f64;
                let pt = self
                    .model
                    .encoder()
                    .encode_complex(slots, a.level(), prime)?;
                let mut out = a.try_clone()?;
                self.ev.mul_plain_assign(&mut out, &pt)?;
                self.ev.rescale_assign(&mut out)?;
                Ok(out)
            })
            .collect()
    }

    /// `f·x·A·B` of adapter `t` of `layer` for every example's `x`
    /// (values up to `bound`), or `f·x·Bᵀ·Aᵀ` when `exchanged`; the inputs
    /// and the adapter refreshed together.
    pub(super) fn lora(
        &mut self,
        xs: &mut [Vec<Ciphertext>],
        bound: f64,
        (layer, t): (&mut LayerAdapters<'_>, usize),
        factor: f64,
        exchanged: bool,
    ) -> Result<Vec<Vec<Ciphertext>>> {
        let adapter_bound = layer.adapters.bound();
        self.refresh_with_parameters(
            &mut [(xs, bound)],
            (layer.adapters.adapter_mut(layer.layer, t)?, adapter_bound),
            LORA_DEPTH,
        )?;
        let adapter = layer.adapters.adapter(layer.layer, t)?;
        let view = if exchanged {
            adapter.exchanged()
        } else {
            adapter
        };
        let product = LoraProduct::new(self.model.layout().shape());
        xs.iter()
            .map(|x| product.apply(self.ev, self.model.encoder(), x, &view, factor))
            .collect()
    }

    /// Gives every group of per-example lists (values up to its bound)
    /// and the encrypted `parameters` (up to theirs) `needed` levels, in
    /// one refresh.
    pub(super) fn refresh_with_parameters(
        &mut self,
        groups: &mut [(&mut [Vec<Ciphertext>], f64)],
        (parameters, parameter_bound): (&mut [Ciphertext], f64),
        needed: usize,
    ) -> Result<()> {
        let mut due: Vec<(&mut Ciphertext, f64)> = groups
            .iter_mut()
            .flat_map(|(lists, bound)| {
                let bound = *bound;
                lists.iter_mut().flatten().map(move |ct| (ct, bound))
            })
            .chain(parameters.iter_mut().map(|ct| (ct, parameter_bound)))
            .collect();
        self.refresher.refresh(self.ev, &mut due, needed)
    }

    /// `a_iᵀ`.
    pub(super) fn transpose(
        &mut self,
        a: &mut [Ciphertext],
        bound: f64,
    ) -> Result<Vec<Ciphertext>> {
        ensure_all(&mut *self.refresher, self.ev, a, bound, 1)?;
        a.iter()
            .map(|a| self.model.transpose(a.level())?.apply(self.ev, a))
            .collect()
    }

    /// `a_i·b_i` (CCMM).
    pub(super) fn matmul(
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
    pub(super) fn add(
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

    /// `approximation` on every `x_i` (values up to `bound`), in lockstep.
    pub(super) fn function(
        &mut self,
        xs: &[Ciphertext],
        approximation: &Approximation,
        bound: f64,
    ) -> Result<Vec<Ciphertext>> {
        evaluate_batch(self.ev, xs, approximation, bound, &mut *self.refresher)
    }

    /// Each example's rows centred and divided by their deviation, with
    /// the inverse deviations.
    fn normalize(&mut self, xs: &[Vec<Ciphertext>]) -> Result<Vec<NormTape>> {
        let model = self.model;
        let bounds = *model.bounds();
        let config = model.config();
        let mean_layer = &model.blocks().mean;
        let mut inputs = xs.iter().map(|x| copies(x)).collect::<Result<Vec<_>>>()?;
        let (means, _) = flatten(self.dense_layer(&mut inputs, bounds.stream, mean_layer)?);
        let mut negated = means;
        for mean in negated.iter_mut() {
            self.ev.neg_assign(mean)?;
        }
        let (flat, sizes) = flatten(inputs);
        let mut centred = self.add(flat, bounds.stream, negated, bounds.stream)?;
        let centred_bound = 2.0 * bounds.stream;
        let mut squares = unflatten(self.square(&mut centred, centred_bound)?, &sizes);
        let variances =
            self.dense_layer(&mut squares, centred_bound * centred_bound, mean_layer)?;
        let (mut variances, _) = flatten(variances);
        let offsets = model.layout().replicated_row(&variance_offsets(
            config.layer_norm_eps,
            config.hidden,
            model.layout().hidden_ciphertexts()
                * model.layout().shape().blocks()
                * model.layout().dim(),
        ))?;
        for chunk in variances.chunks_mut(offsets.len()) {
            self.add_slots(chunk, &offsets)?;
        }
        let (low, high) = config.ranges.variance;
        let [_, _, inv_sqrt, _] = model.polynomials().approximations();
        let mut inverses = self.function(&variances, inv_sqrt, high)?;
        let normed = self.multiply(&mut centred, centred_bound, &mut inverses, 1.0 / low.sqrt())?;
        Ok(unflatten(normed, &sizes)
            .into_iter()
            .zip(unflatten(inverses, &sizes))
            .map(|(normed, inverses)| NormTape { normed, inverses })
            .collect())
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
        (layer, index): (&LayerBlocks, usize),
        streams: Vec<Vec<Ciphertext>>,
        masks: &[Ciphertext],
        mut adapters: Option<LayerAdapters<'_>>,
    ) -> Result<(Vec<Vec<Ciphertext>>, Vec<AttentionTape>)> {
        let model = self.model;
        let bounds = *model.bounds();
        let c = kernel_factor(model.config());
        let mut norm_tapes = self.normalize(&streams)?;
        let mut normed: Vec<Vec<Ciphertext>> = norm_tapes
            .iter_mut()
            .map(|n| std::mem::take(&mut n.normed))
            .collect();
        let full = model.adapter_mode() == AdapterMode::Full;
        let (mut qs, mut ks, mut vs) = (Vec::new(), Vec::new(), Vec::new());
        let mut adapter_inputs = None;
        match adapters.as_mut() {
            Some(parameters) if full => {
                let ([q, k, v], inputs) = self.full_projections(index, &normed, parameters)?;
                (qs, ks, vs) = (q, k, v);
                adapter_inputs = Some(inputs);
            }
            parameters => {
                for example in self.dense(
                    &mut normed,
                    bounds.normalized,
                    &[&layer.query, &layer.key, &layer.value],
                )? {
                    match <[Vec<Ciphertext>; 3]>::try_from(example) {
                        Ok([q, k, v]) => {
                            qs.push(q);
                            ks.push(k);
                            vs.push(v);
                        }
                        Err(_) => return Err(internal("the query, key and value projections")),
                    }
                }
                if let Some(parameters) = parameters {
                    adapter_inputs = Some(self.add_adapters(
                        index,
                        &normed,
                        [&mut qs, &mut ks, &mut vs],
                        parameters,
                    )?);
                }
            }
        }
        let (mut qs, sizes) = flatten(qs);
        let (mut ks, _) = flatten(ks);
        let (mut vs, _) = flatten(vs);
        let (q_bound, k_bound) = (2.0 * c * bounds.projection, bounds.projection);
        let mut head_masks = head_masks(masks, &sizes)?;
        let mut vs = self.multiply(&mut vs, k_bound, &mut head_masks, 1.0)?;
        let mut kernels = match model.config().attention {
            AttentionKernel::Gaussian => {
                self.gaussian_kernels((&mut qs, q_bound), (&mut ks, k_bound), &sizes)?
            }
            AttentionKernel::Softmax => {
                self.softmax_weights((&mut qs, q_bound), (&mut ks, k_bound), masks, &sizes)?
            }
        };
        let contexts = self.matmul(&mut kernels, 1.0, &mut vs, k_bound)?;
        let mut contexts = unflatten(contexts, &sizes);
        let outputs = match adapters.as_mut() {
            Some(parameters) if full => self.encrypted_dense(
                (&mut contexts, bounds.context),
                parameters.adapters,
                [
                    DenseTensor::Layer(index, 2 * full::OUTPUT),
                    DenseTensor::Layer(index, 2 * full::OUTPUT + 1),
                ],
                bounds.stream,
            )?,
            _ => self.dense_layer(&mut contexts, bounds.context, &layer.output)?,
        };
        let mut contexts = full.then_some(contexts);
        let tapes = norm_tapes
            .into_iter()
            .zip(normed)
            .zip(unflatten(qs, &sizes))
            .zip(unflatten(ks, &sizes))
            .zip(unflatten(vs, &sizes))
            .zip(unflatten(kernels, &sizes))
            .enumerate()
            .map(
                |(example, (((((mut norm, normed), queries), keys), values), kernels))| {
                    norm.normed = normed;
                    AttentionTape {
                        norm,
                        queries,
                        keys,
                        values,
                        kernels,
                        adapter_input: adapter_inputs
                            .as_mut()
                            .map(|inputs| std::mem::take(&mut inputs[example])),
                        context: contexts
                            .as_mut()
                            .map(|contexts| std::mem::take(&mut contexts[example])),
                    }
                },
            )
            .collect();
        Ok((self.residual(streams, outputs)?, tapes))
    }

    /// The Gaussian kernels `exp(E)` of every head's block, the exponent
    /// `E = (Q' ⊙ Q')·(−J/(4c)) + ((K ⊙ K)·(−c·J))ᵀ + Q'·Kᵀ` (flat lists,
    /// `sizes` per example).
    fn gaussian_kernels(
        &mut self,
        (qs, q_bound): (&mut [Ciphertext], f64),
        (ks, k_bound): (&mut [Ciphertext], f64),
        sizes: &[usize],
    ) -> Result<Vec<Ciphertext>> {
        let model = self.model;
        let (bounds, blocks) = (*model.bounds(), model.blocks());
        let [exp, _, _, _] = model.polynomials().approximations();
        let mut q_squares = unflatten(self.square(qs, q_bound)?, sizes);
        let (q_norms, _) =
            flatten(self.dense_layer(&mut q_squares, q_bound * q_bound, &blocks.query_norm)?);
        let mut k_squares = unflatten(self.square(ks, k_bound)?, sizes);
        let (mut k_norms, _) =
            flatten(self.dense_layer(&mut k_squares, k_bound * k_bound, &blocks.key_norm)?);
        let k_norms = self.transpose(&mut k_norms, bounds.exponent)?;
        let mut k_transposed = self.transpose(ks, k_bound)?;
        let cross = self.matmul(qs, q_bound, &mut k_transposed, k_bound)?;
        let norms = self.add(q_norms, bounds.exponent, k_norms, bounds.exponent)?;
        let exponents = self.add(norms, 2.0 * bounds.exponent, cross, 2.0 * bounds.exponent)?;
        self.function(&exponents, exp, bounds.exponent)
    }

    /// `N ⊙ γ + β` for every example's normalised rows `N` (the
    /// LayerNorm's output where `γ`, `β` cannot be folded), with its bound.
    pub(super) fn affine(
        &mut self,
        normed: &[Vec<Ciphertext>],
        norm: &NormSlots,
    ) -> Result<(Vec<Vec<Ciphertext>>, f64)> {
        let bound = self.model.bounds().normalized;
        let (mut flat, sizes) = flatten(normed.iter().map(|n| copies(n)).collect::<Result<_>>()?);
        let mut outputs = self.multiply_plain(&mut flat, bound, &norm.gamma)?;
        for chunk in outputs.chunks_mut(norm.beta.len()) {
            self.add_slots(chunk, &norm.beta)?;
        }
        Ok((
            unflatten(outputs, &sizes),
            bound * norm.gamma_bound + norm.beta_bound,
        ))
    }

    /// Full fine-tuning's `[Q', K, V]` of layer `index` (per example) from
    /// the normalised rows, with the encrypted weights of `layer`, and
    /// their input `x = N ⊙ γ + β`.
    fn full_projections(
        &mut self,
        index: usize,
        normed: &[Vec<Ciphertext>],
        layer: &mut LayerAdapters<'_>,
    ) -> Result<([PerExample; 3], PerExample)> {
        let model = self.model;
        let c = kernel_factor(model.config());
        let norm = norm_of(&model.blocks().adapter_norms, index)?;
        let (mut inputs, input_bound) = self.affine(normed, norm)?;
        let projection = model.bounds().projection;
        let mut project = |run: &mut Self, k: usize, factor: f64| {
            let mut ys = run.encrypted_dense(
                (&mut inputs, input_bound),
                layer.adapters,
                [
                    DenseTensor::Layer(index, 2 * k),
                    DenseTensor::Layer(index, 2 * k + 1),
                ],
                projection,
            )?;
            // Q' = 2c·Q: a relabelling of the scale.
            ys.iter_mut().flatten().for_each(|ct| ct.scale /= factor);
            Ok::<_, Error>(ys)
        };
        let queries = project(self, full::QUERY, 2.0 * c)?;
        let keys = project(self, full::KEY, 1.0)?;
        let values = project(self, full::VALUE, 1.0)?;
        Ok(([queries, keys, values], inputs))
    }

    /// Adds the encrypted adapters' `f·x·A·B` to the projections
    /// (`[Q', K, V]`, per example) of layer `index`, from its normalised
    /// rows `N`; returns the adapters' input `x = N ⊙ γ + β` per example.
    fn add_adapters(
        &mut self,
        index: usize,
        normed: &[Vec<Ciphertext>],
        projections: [&mut Vec<Vec<Ciphertext>>; 3],
        layer: &mut LayerAdapters<'_>,
    ) -> Result<Vec<Vec<Ciphertext>>> {
        let model = self.model;
        let bounds = *model.bounds();
        let c = kernel_factor(model.config());
        let norm = norm_of(&model.blocks().adapter_norms, index)?;
        let (mut inputs, input_bound) = self.affine(normed, norm)?;
        let [queries, keys, values] = projections;
        let targets = layer.adapters.targets().to_vec();
        for (t, target) in targets.into_iter().enumerate() {
            let (outputs, factor, bound) = match target {
                LoraTarget::Query => (&mut *queries, 2.0 * c, 2.0 * c * bounds.projection),
                LoraTarget::Key => (&mut *keys, 1.0, bounds.projection),
                LoraTarget::Value => (&mut *values, 1.0, bounds.projection),
                LoraTarget::Output => return Err(internal("an output adapter")),
            };
            let updates = self.lora(&mut inputs, input_bound, (&mut *layer, t), factor, false)?;
            let (base, sizes) = flatten(std::mem::take(outputs));
            let (updates, _) = flatten(updates);
            *outputs = unflatten(self.add(base, bound, updates, bound)?, &sizes);
        }
        Ok(inputs)
    }

    /// LayerNorm, the ReLU-GLU and the residual, for every example.
    fn ffn_block(
        &mut self,
        (layer, index): (&LayerBlocks, usize),
        streams: Vec<Vec<Ciphertext>>,
        mut parameters: Option<LayerAdapters<'_>>,
    ) -> Result<(Vec<Vec<Ciphertext>>, Vec<FfnTape>)> {
        let model = self.model;
        let bounds = *model.bounds();
        let relu_bound = model.config().ranges.relu_bound;
        let relu = match model.polynomials().approximations() {
            [_, Approximation::CompositeRelu(relu), _, _] => relu,
            _ => return Err(internal("ReLU is not a composite")),
        };
        let mut norms = self.normalize(&streams)?;
        let mut normed: Vec<Vec<Ciphertext>> = norms
            .iter_mut()
            .map(|n| std::mem::take(&mut n.normed))
            .collect();
        let (mut gates, mut ups) = (Vec::new(), Vec::new());
        // Full fine-tuning: encrypted weights, on x = N ⊙ γ + β.
        let full = match parameters.as_mut() {
            Some(parameters) if model.adapter_mode() == AdapterMode::Full => {
                let norm = norm_of(&model.blocks().ffn_norms, index)?;
                let (mut inputs, input_bound) = self.affine(&normed, norm)?;
                for (k, outputs) in [(full::GATE, &mut gates), (full::UP, &mut ups)] {
                    *outputs = self.encrypted_dense(
                        (&mut inputs, input_bound),
                        parameters.adapters,
                        [
                            DenseTensor::Layer(index, 2 * k),
                            DenseTensor::Layer(index, 2 * k + 1),
                        ],
                        bounds.ffn,
                    )?;
                }
                Some(inputs)
            }
            _ => {
                for example in
                    self.dense(&mut normed, bounds.normalized, &[&layer.gate, &layer.up])?
                {
                    let mut outputs = example.into_iter();
                    match (outputs.next(), outputs.next()) {
                        (Some(gate), Some(up)) => {
                            gates.push(gate);
                            ups.push(up);
                        }
                        _ => return Err(internal("the gate and up projections")),
                    }
                }
                None
            }
        };
        let (mut gate, sizes) = flatten(gates);
        let (mut up, _) = flatten(ups);
        // B·relu(x/B): the divisions are relabellings of the scale.
        for g in gate.iter_mut() {
            g.scale *= relu_bound;
        }
        let (mut activated, step) =
            relu_with_step(self.ev, &gate, relu, 1.0, &mut *self.refresher)?;
        for a in activated.iter_mut() {
            a.scale /= relu_bound;
        }
        let glu = self.multiply(&mut activated, bounds.ffn, &mut up, bounds.ffn)?;
        let mut glu = unflatten(glu, &sizes);
        let downs = match (parameters.as_mut(), &full) {
            (Some(parameters), Some(_)) => self.encrypted_dense(
                (&mut glu, bounds.ffn),
                parameters.adapters,
                [
                    DenseTensor::Layer(index, 2 * full::DOWN),
                    DenseTensor::Layer(index, 2 * full::DOWN + 1),
                ],
                bounds.stream,
            )?,
            _ => self
                .dense(&mut glu, bounds.ffn, &[&layer.down])?
                .into_iter()
                .map(single)
                .collect::<Result<Vec<_>>>()?,
        };
        let mut full_inputs = full.map(|inputs| inputs.into_iter().zip(glu));
        let tapes = norms
            .into_iter()
            .zip(normed)
            .zip(unflatten(up, &sizes))
            .zip(unflatten(activated, &sizes))
            .zip(unflatten(step, &sizes))
            .map(|((((mut norm, normed), up), activated), step)| {
                norm.normed = normed;
                let (input, glu) = full_inputs
                    .as_mut()
                    .and_then(Iterator::next)
                    .map_or((None, None), |(input, glu)| (Some(input), Some(glu)));
                FfnTape {
                    norm,
                    up,
                    activated,
                    step,
                    input,
                    glu,
                }
            })
            .collect();
        Ok((self.residual(streams, downs)?, tapes))
    }

    /// The head on the first token of every example: the logits on row 0;
    /// its weights those of `adapters` when given (encrypted), else the
    /// model's.
    fn head(
        &mut self,
        streams: Vec<Vec<Ciphertext>>,
        mut adapters: Option<&mut EncryptedAdapters>,
    ) -> Result<(Vec<Ciphertext>, Vec<HeadTape>)> {
        let model = self.model;
        let bounds = *model.bounds();
        let blocks = model.blocks();
        let [_, _, _, tanh] = model.polynomials().approximations();
        let (mut input, mut input_bound, mut norms) = if model.config().final_layer_norm {
            let mut norms = self.normalize(&streams)?;
            let normed = norms
                .iter_mut()
                .map(|n| std::mem::take(&mut n.normed))
                .collect();
            (normed, bounds.normalized, Some(norms))
        } else {
            (streams, bounds.stream, None)
        };
        let mut normed_copies = None;
        if let (Some(_), Some(norm)) = (&adapters, &blocks.final_norm) {
            // An encrypted W₁ cannot take γ, β folded in: x = N ⊙ γ + β.
            normed_copies = Some(
                input
                    .iter()
                    .map(|n| copies(n))
                    .collect::<Result<Vec<_>>>()?,
            );
            (input, input_bound) = self.affine(&input, norm)?;
        }
        let mut bottleneck =
            self.head_layer(&mut input, input_bound, 0, adapters.as_deref_mut())?;
        let wide = self.head_layer(&mut bottleneck, bounds.head, 1, adapters.as_deref_mut())?;
        let (mut wide, sizes) = flatten(wide);
        let first_row = [model.layout().shape().pack(&blocks.first_row)?];
        let first = self.multiply_plain(&mut wide, bounds.head, &first_row)?;
        let activated = self.function(&first, tanh, model.config().ranges.tanh_bound)?;
        let mut activated = unflatten(activated, &sizes);
        let logits = self
            .head_layer(&mut activated, 1.0, 2, adapters.as_deref_mut())?
            .into_iter()
            .map(single)
            .collect::<Result<Vec<_>>>()?;
        let encrypted = adapters.is_some();
        let tapes = activated
            .into_iter()
            .zip(input)
            .zip(bottleneck)
            .enumerate()
            .map(|(index, ((tanh, input), bottleneck))| {
                // The LayerNorm's N: the head's input, or its copy when
                // the input is N ⊙ γ + β.
                let (normed, inputs) = match normed_copies.as_mut() {
                    Some(normed) => (
                        std::mem::take(&mut normed[index]),
                        Some(HeadInputs { input, bottleneck }),
                    ),
                    None if encrypted => (Vec::new(), Some(HeadInputs { input, bottleneck })),
                    None => (input, None),
                };
                HeadTape {
                    final_norm: norms.as_mut().map(|norms| NormTape {
                        normed,
                        inverses: std::mem::take(&mut norms[index].inverses),
                    }),
                    tanh,
                    inputs,
                }
            })
            .collect();
        Ok((logits, tapes))
    }

    /// The head's dense layer `k` on every example's `xs` (values up to
    /// `bound`): with `adapters`, their encrypted `W_k`, `b_k`; else the
    /// model's.
    fn head_layer(
        &mut self,
        xs: &mut [Vec<Ciphertext>],
        bound: f64,
        k: usize,
        adapters: Option<&mut EncryptedAdapters>,
    ) -> Result<Vec<Vec<Ciphertext>>> {
        let blocks = self.model.blocks();
        let Some(adapters) = adapters else {
            let layer = [&blocks.bottleneck, &blocks.widen, &blocks.classifier]
                .get(k)
                .copied()
                .ok_or_else(|| internal("a head layer"))?;
            return self.dense_layer(xs, bound, layer);
        };
        let head = self.model.bounds().head;
        self.encrypted_dense(
            (xs, bound),
            adapters,
            [DenseTensor::Head(2 * k), DenseTensor::Head(2 * k + 1)],
            head,
        )
    }

    /// `x·W + b` for every example's `x` (values up to `bound`) with the
    /// encrypted weight and bias `tensors` of `parameters` (refreshed in
    /// place with the inputs when they lack levels); `output_bound` bounds
    /// the result.
    pub(super) fn encrypted_dense(
        &mut self,
        (xs, bound): (&mut [Vec<Ciphertext>], f64),
        parameters: &mut EncryptedAdapters,
        [weight, bias]: [DenseTensor; 2],
        output_bound: f64,
    ) -> Result<Vec<Vec<Ciphertext>>> {
        let weight_bound = parameters.bound();
        self.refresh_with_parameters(
            &mut [(xs, bound)],
            (parameters.dense_tensor_mut(weight)?, weight_bound),
            match weight {
                DenseTensor::Head(_) => ROW_DENSE_DEPTH,
                DenseTensor::Layer(..) => ENCRYPTED_DENSE_DEPTH,
            },
        )?;
        let model = self.model;
        let shape = model.layout().shape();
        let weights = parameters.dense_tensor(weight)?;
        let evaluation = (self.ev, model.encoder());
        let outputs = xs
            .iter()
            .map(|x| match weight {
                // The head reads the first token only.
                DenseTensor::Head(_) => {
                    RowDense::new(shape).multiply(evaluation, model, x, weights)
                }
                DenseTensor::Layer(..) => {
                    EncryptedDense::new(shape).multiply(evaluation, model, x, weights)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let bias = parameters.dense_tensor(bias)?;
        let biases: Vec<Vec<Ciphertext>> = outputs
            .iter()
            .map(|_| copies(bias))
            .collect::<Result<_>>()?;
        let (outputs, sizes) = flatten(outputs);
        let (biases, _) = flatten(biases);
        Ok(unflatten(
            self.add(outputs, output_bound, biases, weight_bound)?,
            &sizes,
        ))
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
pub(super) fn internal(what: &str) -> Error {
    Error::OutOfRange {
        op: OP,
        detail: format!("internal: {what}"),
    }
}

/// Layer `index`'s LayerNorm `γ`, `β` from `norms`.
pub(super) fn norm_of(norms: &[NormSlots], index: usize) -> Result<&NormSlots> {
    norms
        .get(index)
        .ok_or_else(|| internal("a LayerNorm's γ and β"))
}
