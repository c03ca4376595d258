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
//! The flat order ([`EncryptedAdapters::into_parameters`]): layer by layer,
//! target by target (Q, K, V as the config lists them), `A`'s columns then
//! `B`'s rows, each ciphertext in order. That is the order of the
//! optimizer's moments and of checkpoints.

use ndarray::{Array1, Array2};

use super::layout::BlockLayout;
use crate::ckks::{Ciphertext, Decryptor, Encoder, Encryptor};
use crate::error::{Error, Result};
use crate::model::friendly::{FriendlyConfig, FriendlyWeights, Lora, LoraTarget};
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

/// One adapter's ciphertexts.
#[derive(Debug)]
pub struct EncryptedAdapter {
    pub a_columns: Vec<Vec<Ciphertext>>,
    pub b_rows: Vec<Vec<Ciphertext>>,
}

impl EncryptedAdapter {
    /// The adapter as the LoRA product takes it.
    pub fn view(&self) -> Adapters<'_> {
        Adapters {
            a_columns: &self.a_columns,
            b_rows: &self.b_rows,
        }
    }

    /// Every ciphertext, mutably, in the flat order.
    pub(super) fn ciphertexts_mut(&mut self) -> impl Iterator<Item = &mut Ciphertext> {
        self.a_columns
            .iter_mut()
            .chain(self.b_rows.iter_mut())
            .flatten()
    }
}

/// The adapters of every layer (`[layer][target]`, the targets of
/// [`adapter_targets`]).
#[derive(Debug)]
pub struct EncryptedAdapters {
    targets: Vec<LoraTarget>,
    layers: Vec<Vec<EncryptedAdapter>>,
    bound: f64,
}

/// One layer's adapters as the circuit uses them.
pub(super) struct LayerAdapters<'a> {
    pub targets: &'a [LoraTarget],
    pub adapters: &'a mut [EncryptedAdapter],
    /// Every adapter slot lies in `[−bound, bound]`.
    pub bound: f64,
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
        let scale = encoder.context().params().default_scale();
        let mut encrypt = |m: &Array2<f64>| -> Result<Vec<Ciphertext>> {
            layout
                .pack(m)?
                .iter()
                .map(|slots| encryptor.encrypt(&encoder.encode_complex(slots, level, scale)?))
                .collect()
        };
        let mut layers = Vec::with_capacity(weights.layers.len());
        for (index, layer) in weights.layers.iter().enumerate() {
            let mut adapters = Vec::with_capacity(targets.len());
            for &target in &targets {
                let lora = lora_of(layer, target).ok_or_else(|| {
                    Error::InvalidParameters(format!(
                        "{OP}: layer {index} has no {target:?} adapter"
                    ))
                })?;
                check_lora(config, lora, bound)?;
                let a_columns = lora
                    .a
                    .columns()
                    .into_iter()
                    .map(|column| encrypt(&replicated_rows(d, &column.to_owned())))
                    .collect::<Result<_>>()?;
                let b_rows = lora
                    .b
                    .rows()
                    .into_iter()
                    .map(|row| encrypt(&replicated_rows(d, &head_row(layout, &row.to_owned()))))
                    .collect::<Result<_>>()?;
                adapters.push(EncryptedAdapter { a_columns, b_rows });
            }
            layers.push(adapters);
        }
        Ok(Self {
            targets,
            layers,
            bound,
        })
    }

    /// The bound of every adapter value.
    pub fn bound(&self) -> f64 {
        self.bound
    }

    /// The targets, in order.
    pub fn targets(&self) -> &[LoraTarget] {
        &self.targets
    }

    /// The adapters of layer `layer` (one per target).
    pub fn layer(&self, layer: usize) -> Option<&[EncryptedAdapter]> {
        self.layers.get(layer).map(Vec::as_slice)
    }

    /// The layers' adapters.
    pub fn layers(&self) -> &[Vec<EncryptedAdapter>] {
        &self.layers
    }

    /// Layer `layer`'s adapters, mutably (the circuit refreshes them).
    pub(super) fn layer_mut(&mut self, layer: usize) -> Option<LayerAdapters<'_>> {
        let bound = self.bound;
        let targets = &self.targets;
        self.layers.get_mut(layer).map(|adapters| LayerAdapters {
            targets,
            adapters,
            bound,
        })
    }

    /// The ciphertexts in the flat order (for the optimizer and
    /// checkpoints).
    pub fn into_parameters(self) -> Vec<Ciphertext> {
        self.layers
            .into_iter()
            .flatten()
            .flat_map(|a| a.a_columns.into_iter().chain(a.b_rows).flatten())
            .collect()
    }

    /// How many ciphertexts the adapters of `config` take.
    ///
    /// Errors: those of [`adapter_targets`].
    pub fn parameter_count(config: &FriendlyConfig, layout: &BlockLayout) -> Result<usize> {
        let (a, b) = adapter_widths(layout);
        Ok(config.layers * adapter_targets(config)?.len() * config.lora_rank * (a + b))
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
        check_bound(bound)?;
        let expected = Self::parameter_count(config, layout)?;
        if parameters.len() != expected {
            return Err(Error::LengthMismatch {
                op: OP,
                got: parameters.len(),
                expected,
            });
        }
        let targets = adapter_targets(config)?;
        let (a_width, b_width) = adapter_widths(layout);
        let mut flat = parameters.into_iter();
        let mut take = |count: usize, width: usize| -> Vec<Vec<Ciphertext>> {
            (0..count)
                .map(|_| flat.by_ref().take(width).collect())
                .collect()
        };
        let layers = (0..config.layers)
            .map(|_| {
                targets
                    .iter()
                    .map(|_| EncryptedAdapter {
                        a_columns: take(config.lora_rank, a_width),
                        b_rows: take(config.lora_rank, b_width),
                    })
                    .collect()
            })
            .collect();
        Ok(Self {
            targets,
            layers,
            bound,
        })
    }

    /// Client side: the adapters' values (`[layer][target]`).
    ///
    /// Errors: decryption errors.
    pub fn decrypt(
        &self,
        config: &FriendlyConfig,
        layout: &BlockLayout,
        encoder: &Encoder,
        decryptor: &Decryptor,
    ) -> Result<Vec<Vec<Lora>>> {
        self.layers
            .iter()
            .map(|layer| {
                layer
                    .iter()
                    .map(|adapter| {
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
    a_columns: &[Vec<Ciphertext>],
    b_rows: &[Vec<Ciphertext>],
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
        a.column_mut(c).assign(&row0(column, hidden)?.row(0));
    }
    let mut b = Array2::zeros((rank, hidden));
    for (c, row) in b_rows.iter().enumerate() {
        let blocks = row0(row, layout.heads_width())?;
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
    if lora.a.iter().chain(&lora.b).any(|v| !v.is_finite() || v.abs() > bound) {
        return Err(Error::OutOfRange {
            op: OP,
            detail: format!("an adapter value is beyond the bound {bound} (or not finite)"),
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
