//! LoRA adapters under encryption: what private fine-tuning trains.
//!
//! For every layer and every target of the config among Q, K and V, the
//! adapter `x ↦ x·A·B` (`x` the LayerNorm's output, `γ` and `β` applied)
//! is held as [`tensor::lora`](crate::tensor::lora) lays it out: column `c`
//! of `A` as the stream's wide matrix whose every row is `A[:, c]ᵀ`
//! (`hidden_ciphertexts` ciphertexts), row `c` of `B` as the heads' wide
//! matrix whose every row is `B[c, :]` with head `h`'s columns in block `h`
//! (as the projection's output). The base weights of an
//! [`EncryptedModel::for_adapters`](super::EncryptedModel::for_adapters)
//! leave the adapters out; the circuit adds `f·x·A·B` to each projection
//! (`f = 2c` for the queries, whose weights carry the kernel's factor).
//!
//! The head's weights travel encrypted beside them ([`super::head`]).
//! The flat order ([`EncryptedAdapters::parameters`]): layer by layer,
//! target by target (Q, K, V as the config lists them), `A`'s columns then
//! `B`'s rows, each ciphertext in order; then the head's tensors. That is
//! the order of the optimizer's moments and of checkpoints.

use ndarray::{Array1, Array2};

use super::compact::CompactPacking;
use super::full;
use super::head::{flatten_head, layers, DenseLayout};
use super::layout::BlockLayout;
use crate::circuits::refresh::{ensure_all, Refresh};
use crate::ckks::{Ciphertext, Decryptor, Encoder, Encryptor, Evaluator};
use crate::error::{Error, Result};
use crate::math::Complex;
use crate::model::friendly::{
    Dense, FriendlyConfig, FriendlyHead, FriendlyWeights, Lora, LoraTarget,
};
use crate::tensor::{replicated_rows, AdapterGradients, Adapters};

const OP: &str = "EncryptedAdapters";

/// The targets encrypted adapters serve, in the config's order.
///
/// Errors: a target other than Q, K and V ([`Error::InvalidParameters`]:
/// the output projection's adapter would need the heads' layout on its
/// input side, not built yet).
pub fn adapter_targets(config: &FriendlyConfig) -> Result<Vec<LoraTarget>> {
    config
        .lora_targets
        .iter()
        .map(|&target| match target {
            LoraTarget::Query | LoraTarget::Key | LoraTarget::Value => Ok(target),
            LoraTarget::Output => Err(Error::InvalidParameters(
                "encrypted adapters serve Q, K and V only; the output projection's is not built"
                    .into(),
            )),
        })
        .collect()
}

/// One tensor of the encrypted dense layers: `t = 2k` is dense layer
/// `k`'s weight, `2k + 1` its bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenseTensor {
    /// Of the head ([`DenseLayout::head`]).
    Head(usize),
    /// Of a layer under full fine-tuning (`(layer, t)`,
    /// [`full::layer_layout`]).
    Layer(usize, usize),
}

/// The adapters of every layer, flat in the order above.
#[derive(Debug)]
pub struct EncryptedAdapters {
    targets: Vec<LoraTarget>,
    layers: usize,
    rank: usize,
    /// Ciphertexts per column of `A`, per row of `B`.
    a_width: usize,
    b_width: usize,
    /// With full fine-tuning, every layer's dense layers (after the
    /// adapters, of which there are none then).
    dense: Option<DenseLayout>,
    /// The head's tensors, after everything else.
    head: DenseLayout,
    /// The optimizer's compact view of the dense layers and the head.
    packing: CompactPacking,
    parameters: Vec<Ciphertext>,
    bound: f64,
}

/// The trained parameters' values (client side).
#[derive(Clone, Debug, PartialEq)]
pub struct DecryptedParameters {
    /// `[layer][target]`.
    pub adapters: Vec<Vec<Lora>>,
    /// With full fine-tuning, `[layer]` the dense layers in the twin's
    /// coordinates, in [`full`](super::full)'s order; otherwise empty.
    pub layers: Vec<Vec<Dense>>,
    pub head: FriendlyHead,
}

/// One layer's adapters as the circuit uses them.
pub(super) struct LayerAdapters<'a> {
    pub adapters: &'a mut EncryptedAdapters,
    pub layer: usize,
}

/// How many ciphertexts one adapter has: `(per column of A, per row of B)`.
fn adapter_widths(layout: &BlockLayout) -> (usize, usize) {
    (
        layout.hidden_ciphertexts(),
        layout.ciphertexts_for(layout.heads_width()),
    )
}

impl EncryptedAdapters {
    /// Encrypts the adapters of `weights` (the targets' `A`, `B`) at
    /// `level`: the client's (or, with a public-key encryptor, the
    /// server's) initial adapters. `bound` bounds every adapter value
    /// now and during training (bootstrapping needs it; at least 1).
    ///
    /// Errors: targets [`adapter_targets`] refuses, a target without its
    /// adapter or of the wrong shape, a value beyond `bound`, encryption
    /// errors.
    pub fn encrypt(
        config: &FriendlyConfig,
        layout: &BlockLayout,
        (encoder, encryptor): (&Encoder, &mut Encryptor),
        weights: &FriendlyWeights,
        level: usize,
        bound: f64,
    ) -> Result<Self> {
        check_bound(bound)?;
        let targets = adapter_targets(config)?;
        let d = layout.dim();
        let mut parameters = Vec::new();
        let mut encrypt = |m: &Array2<f64>, parameters: &mut Vec<Ciphertext>| -> Result<()> {
            parameters.extend(encrypt_slots(
                (encoder, &mut *encryptor),
                &layout.pack(m)?,
                level,
            )?);
            Ok(())
        };
        for (index, layer) in weights.layers.iter().enumerate() {
            for &target in &targets {
                let lora = lora_of(layer, target).ok_or_else(|| {
                    Error::InvalidParameters(format!(
                        "{OP}: layer {index} has no {target:?} adapter"
                    ))
                })?;
                check_lora(config, lora, bound)?;
                for column in lora.a.columns() {
                    encrypt(&replicated_rows(d, &column.to_owned()), &mut parameters)?;
                }
                for row in lora.b.rows() {
                    encrypt(
                        &replicated_rows(d, &head_row(layout, &row.to_owned())),
                        &mut parameters,
                    )?;
                }
            }
        }
        encrypt_head(config, layout, (encoder, encryptor), weights, level, bound)
            .map(|head| parameters.extend(head))?;
        Self::from_parameters(config, layout, parameters, bound)
    }

    /// Encrypts every dense weight of `weights` (its adapters merged) and
    /// its head at `level`: full fine-tuning's initial parameters (the
    /// paper's baseline, [`super::full`]). `bound` as for
    /// [`encrypt`](Self::encrypt).
    ///
    /// Errors: a value beyond `bound`, weights of other shapes than the
    /// config's, encryption errors.
    pub fn encrypt_full(
        config: &FriendlyConfig,
        layout: &BlockLayout,
        (encoder, encryptor): (&Encoder, &mut Encryptor),
        weights: &FriendlyWeights,
        level: usize,
        bound: f64,
    ) -> Result<Self> {
        check_bound(bound)?;
        let dense = full::layer_layout(config, layout);
        let mut parameters = Vec::new();
        for layer in &weights.layers {
            let circuit = full::circuit_layers(layout, layer);
            check_values(
                "a dense weight",
                circuit.iter().flat_map(|d| d.weight.iter().chain(&d.bias)),
                bound,
            )?;
            let refs: Vec<&Dense> = circuit.iter().collect();
            parameters.extend(encrypt_slots(
                (encoder, &mut *encryptor),
                &dense.slots(layout, &refs)?,
                level,
            )?);
        }
        parameters.extend(encrypt_head(
            config,
            layout,
            (encoder, encryptor),
            weights,
            level,
            bound,
        )?);
        Self::from_full_parameters(config, layout, parameters, bound)
    }

    /// The adapters from ciphertexts in the flat order (a checkpoint's, an
    /// optimizer's), values up to `bound`.
    ///
    /// Errors: a count other than [`parameter_count`](Self::parameter_count),
    /// a bound below 1.
    pub fn from_parameters(
        config: &FriendlyConfig,
        layout: &BlockLayout,
        parameters: Vec<Ciphertext>,
        bound: f64,
    ) -> Result<Self> {
        Self::assemble(config, layout, false, parameters, bound)
    }

    /// Full fine-tuning's parameters ([`encrypt_full`](Self::encrypt_full))
    /// from ciphertexts in the flat order.
    ///
    /// Errors: a count other than
    /// [`full_parameter_count`](Self::full_parameter_count), a bound below
    /// 1.
    pub fn from_full_parameters(
        config: &FriendlyConfig,
        layout: &BlockLayout,
        parameters: Vec<Ciphertext>,
        bound: f64,
    ) -> Result<Self> {
        Self::assemble(config, layout, true, parameters, bound)
    }

    fn assemble(
        config: &FriendlyConfig,
        layout: &BlockLayout,
        full: bool,
        parameters: Vec<Ciphertext>,
        bound: f64,
    ) -> Result<Self> {
        check_bound(bound)?;
        let expected = Self::count(config, layout, full)?;
        if parameters.len() != expected {
            return Err(Error::LengthMismatch {
                op: OP,
                got: parameters.len(),
                expected,
            });
        }
        let (a_width, b_width) = adapter_widths(layout);
        let dense = full.then(|| full::layer_layout(config, layout));
        let head = DenseLayout::head(config, layout);
        let mut occupied = Vec::new();
        if let Some(dense) = &dense {
            let layer = dense.occupancy(layout)?;
            for _ in 0..config.layers {
                occupied.extend(layer.iter().cloned());
            }
        }
        occupied.extend(head.occupancy(layout)?);
        let shape = layout.shape();
        let packing = CompactPacking::new(shape.blocks(), shape.slots(), &occupied)?;
        Ok(Self {
            targets: if full {
                Vec::new()
            } else {
                adapter_targets(config)?
            },
            layers: config.layers,
            rank: config.lora_rank,
            a_width,
            b_width,
            dense,
            head,
            packing,
            parameters,
            bound,
        })
    }

    /// How many ciphertexts the adapters and the head of `config` take.
    ///
    /// Errors: those of [`adapter_targets`].
    pub fn parameter_count(config: &FriendlyConfig, layout: &BlockLayout) -> Result<usize> {
        Self::count(config, layout, false)
    }

    /// How many ciphertexts every dense weight and the head of `config`
    /// take (full fine-tuning).
    pub fn full_parameter_count(config: &FriendlyConfig, layout: &BlockLayout) -> usize {
        config.layers * full::layer_layout(config, layout).total()
            + DenseLayout::head(config, layout).total()
    }

    fn count(config: &FriendlyConfig, layout: &BlockLayout, full: bool) -> Result<usize> {
        if full {
            return Ok(Self::full_parameter_count(config, layout));
        }
        let (a, b) = adapter_widths(layout);
        let adapters = config.layers * adapter_targets(config)?.len() * config.lora_rank * (a + b);
        Ok(adapters + DenseLayout::head(config, layout).total())
    }

    /// Whether these are full fine-tuning's parameters (every dense
    /// weight) rather than LoRA adapters.
    pub fn is_full(&self) -> bool {
        self.dense.is_some()
    }

    /// Where the dense layers' ciphertexts start (after the adapters).
    fn dense_start(&self) -> usize {
        self.layers * self.targets.len() * self.rank * (self.a_width + self.b_width)
    }

    /// Where the head's ciphertexts start.
    fn head_start(&self) -> usize {
        self.dense_start() + self.dense.as_ref().map_or(0, |d| self.layers * d.total())
    }

    /// Where tensor `t` of `tensors` lies in the flat order.
    fn tensor_range(&self, tensors: DenseTensor) -> Result<std::ops::Range<usize>> {
        let (start, layout, t) = match (tensors, &self.dense) {
            (DenseTensor::Head(t), _) => (self.head_start(), &self.head, t),
            (DenseTensor::Layer(layer, t), Some(dense)) if layer < self.layers => {
                (self.dense_start() + layer * dense.total(), dense, t)
            }
            (DenseTensor::Layer(layer, _), _) => {
                return Err(Error::OutOfRange {
                    op: OP,
                    detail: format!(
                        "dense layers of layer {layer}: {} layers, full fine-tuning: {}",
                        self.layers,
                        self.is_full()
                    ),
                })
            }
        };
        if t >= layout.tensors() {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!("tensor {t} of {}", layout.tensors()),
            });
        }
        let range = layout.range(t);
        Ok(start + range.start..start + range.end)
    }

    /// The ciphertexts of a dense layer's weight or bias.
    ///
    /// Errors: a tensor these parameters do not hold.
    pub fn dense_tensor(&self, tensors: DenseTensor) -> Result<&[Ciphertext]> {
        let range = self.tensor_range(tensors)?;
        Ok(&self.parameters[range])
    }

    /// [`dense_tensor`](Self::dense_tensor), mutably (the circuit refreshes
    /// it).
    pub(super) fn dense_tensor_mut(&mut self, tensors: DenseTensor) -> Result<&mut [Ciphertext]> {
        let range = self.tensor_range(tensors)?;
        Ok(&mut self.parameters[range])
    }

    /// The targets, in order.
    pub fn targets(&self) -> &[LoraTarget] {
        &self.targets
    }

    /// The number of layers.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// The bound of every adapter value.
    pub fn bound(&self) -> f64 {
        self.bound
    }

    /// The twin's tensor of each ciphertext in the flat order: the index,
    /// in the twin's flat order (each adapter's `A`, then its `B`; every
    /// dense layer's weight, then its bias; the head's), of the tensor the
    /// ciphertext holds part of.
    pub fn tensor_indices(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.parameters.len());
        let mut push = |tensor: usize, count: usize| {
            out.extend(std::iter::repeat_n(tensor, count));
        };
        let mut tensor = 0;
        for _ in 0..self.layers * self.targets.len() {
            push(tensor, self.rank * self.a_width);
            push(tensor + 1, self.rank * self.b_width);
            tensor += 2;
        }
        let dense = self
            .dense
            .iter()
            .flat_map(|d| std::iter::repeat_n(d, self.layers));
        for layout in dense.chain([&self.head]) {
            for t in 0..layout.tensors() {
                push(tensor, layout.range(t).len());
                tensor += 1;
            }
        }
        out
    }

    /// How many ciphertexts the optimizer steps: the adapters', then the
    /// dense layers' and the head's in their compact view
    /// ([`CompactPacking`]).
    pub fn optimizer_count(&self) -> usize {
        self.dense_start() + self.packing.compact_count()
    }

    /// `cts`, a list in the flat order (these parameters, or their
    /// gradients; values up to `bound`), in the optimizer's order: the
    /// adapters' as they are, the dense layers' and the head's compressed
    /// (one level, refreshed by `refresher` where they lack it).
    ///
    /// Errors: a list of another length than the parameters, the
    /// operations' errors.
    pub fn to_optimizer(
        &self,
        ev: &Evaluator,
        encoder: &Encoder,
        (cts, bound): (&[Ciphertext], f64),
        refresher: &mut dyn Refresh,
    ) -> Result<Vec<Ciphertext>> {
        Error::check_length(OP, cts.len(), self.parameters.len())?;
        let (adapters, dense) = cts.split_at(self.dense_start());
        let mut out = adapters
            .iter()
            .map(Ciphertext::try_clone)
            .collect::<Result<Vec<_>>>()?;
        out.extend(
            self.packing
                .compress(ev, encoder, (dense, bound), refresher)?,
        );
        Ok(out)
    }

    /// Replaces the parameters by `values`, a list in the optimizer's
    /// order ([`to_optimizer`](Self::to_optimizer)), expanded (one level
    /// below the refresher's top: the compact values are refreshed
    /// first). On an error nothing changes.
    ///
    /// Errors: a list of another length than
    /// [`optimizer_count`](Self::optimizer_count), the operations' errors.
    pub fn set_from_optimizer(
        &mut self,
        ev: &Evaluator,
        encoder: &Encoder,
        mut values: Vec<Ciphertext>,
        refresher: &mut dyn Refresh,
    ) -> Result<()> {
        Error::check_length(OP, values.len(), self.optimizer_count())?;
        let start = self.dense_start();
        // Refreshed while compact, so that the circuit's layout (several
        // times as many ciphertexts) starts with every level the refresher
        // gives but the expansion's.
        if let Some(top) = refresher.max_level() {
            ensure_all(refresher, ev, &mut values[start..], self.bound, top)?;
        }
        let expanded =
            self.packing
                .expand(ev, encoder, (&values[start..], self.bound), refresher)?;
        values.truncate(start);
        values.extend(expanded);
        self.parameters = values;
        Ok(())
    }

    /// The ciphertexts in the flat order.
    pub fn parameters(&self) -> &[Ciphertext] {
        &self.parameters
    }

    /// The ciphertexts of target `t` of layer `layer`, in the flat order.
    fn range(&self, layer: usize, t: usize) -> std::ops::Range<usize> {
        let length = self.rank * (self.a_width + self.b_width);
        let start = (layer * self.targets.len() + t) * length;
        start..start + length
    }

    /// The adapter of target `t` of layer `layer`.
    ///
    /// Errors: a layer or target out of range.
    pub fn adapter(&self, layer: usize, t: usize) -> Result<Adapters<'_>> {
        self.check(layer, t)?;
        let all = &self.parameters[self.range(layer, t)];
        let (a, b) = all.split_at(self.rank * self.a_width);
        Ok(Adapters {
            a_columns: a.chunks(self.a_width).collect(),
            b_rows: b.chunks(self.b_width).collect(),
        })
    }

    /// The ciphertexts of one adapter, mutably (the circuit refreshes
    /// them).
    pub(super) fn adapter_mut(&mut self, layer: usize, t: usize) -> Result<&mut [Ciphertext]> {
        self.check(layer, t)?;
        let range = self.range(layer, t);
        Ok(&mut self.parameters[range])
    }

    fn check(&self, layer: usize, t: usize) -> Result<()> {
        if layer >= self.layers || t >= self.targets.len() {
            return Err(Error::OutOfRange {
                op: OP,
                detail: format!(
                    "adapter {t} of layer {layer}: there are {} targets in {} layers",
                    self.targets.len(),
                    self.layers
                ),
            });
        }
        Ok(())
    }

    /// Layer `layer`'s adapters for the circuit.
    pub(super) fn layer_mut(&mut self, layer: usize) -> LayerAdapters<'_> {
        LayerAdapters {
            adapters: self,
            layer,
        }
    }

    /// Client side: the adapters' and the head's values.
    ///
    /// Errors: decryption errors.
    pub fn decrypt(
        &self,
        config: &FriendlyConfig,
        layout: &BlockLayout,
        encoder: &Encoder,
        decryptor: &Decryptor,
    ) -> Result<DecryptedParameters> {
        let head_slots = self.parameters[self.head_start()..]
            .iter()
            .map(|ct| encoder.decode(&decryptor.decrypt(ct)?))
            .collect::<Result<Vec<_>>>()?;
        let layers = match &self.dense {
            Some(dense) => self.parameters[self.dense_start()..self.head_start()]
                .chunks(dense.total())
                .map(|cts| {
                    let slots = cts
                        .iter()
                        .map(|ct| encoder.decode(&decryptor.decrypt(ct)?))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(full::twin_layers(
                        config,
                        layout,
                        &dense.dense(layout, &slots)?,
                    ))
                })
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        Ok(DecryptedParameters {
            adapters: self.decrypt_adapters(config, layout, encoder, decryptor)?,
            layers,
            head: self.head.friendly_head(layout, &head_slots)?,
        })
    }

    fn decrypt_adapters(
        &self,
        config: &FriendlyConfig,
        layout: &BlockLayout,
        encoder: &Encoder,
        decryptor: &Decryptor,
    ) -> Result<Vec<Vec<Lora>>> {
        (0..self.layers)
            .map(|layer| {
                (0..self.targets.len())
                    .map(|t| {
                        let adapter = self.adapter(layer, t)?;
                        decrypt_adapter(
                            config,
                            layout,
                            encoder,
                            decryptor,
                            &adapter.a_columns,
                            &adapter.b_rows,
                        )
                    })
                    .collect()
            })
            .collect()
    }
}

/// Client side: `A` and `B` from their layouts (row 0 of each replicated
/// matrix).
///
/// Errors: decryption errors, lists of the wrong widths.
pub fn decrypt_adapter(
    config: &FriendlyConfig,
    layout: &BlockLayout,
    encoder: &Encoder,
    decryptor: &Decryptor,
    a_columns: &[impl AsRef<[Ciphertext]>],
    b_rows: &[impl AsRef<[Ciphertext]>],
) -> Result<Lora> {
    let row0 = |cts: &[Ciphertext], width: usize| -> Result<Array2<f64>> {
        let slots = cts
            .iter()
            .map(|ct| encoder.decode(&decryptor.decrypt(ct)?))
            .collect::<Result<Vec<_>>>()?;
        layout.unpack(&slots, width)
    };
    let (hidden, rank) = (config.hidden, a_columns.len());
    let mut a = Array2::zeros((hidden, rank));
    for (c, column) in a_columns.iter().enumerate() {
        a.column_mut(c)
            .assign(&row0(column.as_ref(), hidden)?.row(0));
    }
    let mut b = Array2::zeros((rank, hidden));
    for (c, row) in b_rows.iter().enumerate() {
        let blocks = row0(row.as_ref(), layout.heads_width())?;
        for j in 0..hidden {
            b[[c, j]] = blocks[[0, layout.head_column(j)]];
        }
    }
    Ok(Lora { a, b })
}

/// Client side: the gradients of one adapter as `A`, `B`-shaped matrices.
///
/// Errors: those of [`decrypt_adapter`].
pub fn decrypt_adapter_gradients(
    config: &FriendlyConfig,
    layout: &BlockLayout,
    encoder: &Encoder,
    decryptor: &Decryptor,
    gradients: &AdapterGradients,
) -> Result<Lora> {
    decrypt_adapter(
        config,
        layout,
        encoder,
        decryptor,
        &gradients.a_columns,
        &gradients.b_rows,
    )
}

/// The head of `weights` encrypted at `level` in its flat order.
fn encrypt_head(
    config: &FriendlyConfig,
    layout: &BlockLayout,
    (encoder, encryptor): (&Encoder, &mut Encryptor),
    weights: &FriendlyWeights,
    level: usize,
    bound: f64,
) -> Result<Vec<Ciphertext>> {
    check_values(
        "the head",
        flatten_head(&weights.head).iter().flatten(),
        bound,
    )?;
    encrypt_slots(
        (encoder, encryptor),
        &DenseLayout::head(config, layout).slots(layout, &layers(&weights.head))?,
        level,
    )
}

/// Each slot vector encoded at `level` and the default scale, encrypted.
fn encrypt_slots(
    (encoder, encryptor): (&Encoder, &mut Encryptor),
    slots: &[Vec<Complex>],
    level: usize,
) -> Result<Vec<Ciphertext>> {
    let scale = encoder.context().params().default_scale();
    slots
        .iter()
        .map(|slots| encryptor.encrypt(&encoder.encode_complex(slots, level, scale)?))
        .collect()
}

/// The adapter of `target` in `layer`.
fn lora_of(layer: &crate::model::friendly::FriendlyLayer, target: LoraTarget) -> Option<&Lora> {
    match target {
        LoraTarget::Query => layer.query.lora.as_ref(),
        LoraTarget::Key => layer.key.lora.as_ref(),
        LoraTarget::Value => layer.value.lora.as_ref(),
        LoraTarget::Output => layer.output.lora.as_ref(),
    }
}

/// Checks an adapter's shape against the config and its values against
/// `bound`.
fn check_lora(config: &FriendlyConfig, lora: &Lora, bound: f64) -> Result<()> {
    let (hidden, rank) = (config.hidden, config.lora_rank);
    if lora.a.dim() != (hidden, rank) || lora.b.dim() != (rank, hidden) {
        return Err(Error::InvalidParameters(format!(
            "{OP}: A is {:?} and B {:?}, expected ({hidden}, {rank}) and ({rank}, {hidden})",
            lora.a.dim(),
            lora.b.dim()
        )));
    }
    check_values("an adapter", lora.a.iter().chain(&lora.b), bound)
}

/// Checks that `values` are finite and within `bound`.
fn check_values<'a>(
    what: &str,
    mut values: impl Iterator<Item = &'a f64>,
    bound: f64,
) -> Result<()> {
    if values.any(|v| !v.is_finite() || v.abs() > bound) {
        return Err(Error::OutOfRange {
            op: OP,
            detail: format!("{what}: a value is beyond the bound {bound} (or not finite)"),
        });
    }
    Ok(())
}

/// A bound bootstrapping takes: finite, at least 1.
fn check_bound(bound: f64) -> Result<()> {
    if !(bound.is_finite() && bound >= 1.0) {
        return Err(Error::OutOfRange {
            op: OP,
            detail: format!("the adapters' bound {bound} must be finite and at least 1"),
        });
    }
    Ok(())
}

/// A row of `B` (the projection's output columns) moved to the heads'
/// layout.
fn head_row(layout: &BlockLayout, row: &Array1<f64>) -> Array1<f64> {
    let mut out = Array1::zeros(layout.heads_width());
    for (j, &value) in row.iter().enumerate() {
        out[layout.head_column(j)] = value;
    }
    out
}
