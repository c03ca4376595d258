//! The server's model: the rearranged weights, the bounds, the polynomials,
//! and the encoded permutations of the last level used; and the
//! client's side of the exchange (encrypting an input, decrypting results).

use std::sync::{Arc, Mutex, OnceLock};

use ndarray::{Array1, Array2, ArrayView2};

use super::blocks::{BackwardBlocks, ModelBlocks};
use super::bounds::ActivationBounds;
use super::layout::BlockLayout;
use super::setup::AdapterMode;
use crate::ckks::{Ciphertext, CkksContext, Decryptor, Encoder, Encryptor};
use crate::error::{Error, Result};
use crate::model::friendly::{FittedNonLinearities, FriendlyConfig, FriendlyModel};
use crate::tensor::{encrypt_matrix, DenseProduct, Encodings, MatrixProduct, Transpose};

const OP: &str = "EncryptedModel";

/// An encrypted input: the token embeddings' ciphertexts and the mask
/// matrix (in every block).
#[derive(Debug)]
pub struct EncryptedInput {
    pub tokens: Vec<Ciphertext>,
    pub mask: Ciphertext,
}

/// The friendly transformer, ready to run on encrypted inputs of one
/// parameter set. It holds no key.
pub struct EncryptedModel {
    config: FriendlyConfig,
    layout: BlockLayout,
    blocks: ModelBlocks,
    /// Where the trainable weights live: merged in the clear, or
    /// encrypted and given to every forward.
    mode: AdapterMode,
    /// Built on the first backward pass.
    backward_blocks: OnceLock<BackwardBlocks>,
    bounds: ActivationBounds,
    polynomials: FittedNonLinearities,
    ctx: Arc<CkksContext>,
    encoder: Encoder,
    /// The permutations of the last level used (one level only: at
    /// `d = 128` and `N = 2^16` one set takes gigabytes).
    products: Mutex<Option<(usize, Arc<MatrixProduct>)>>,
    transposes: Mutex<Option<(usize, Arc<Transpose>)>>,
}

impl EncryptedModel {
    /// Prepares `model` for `ctx` with the bootstrapping `bounds`.
    ///
    /// Errors: a layout the parameters cannot hold ([`BlockLayout::new`]).
    pub fn new(
        model: &FriendlyModel,
        ctx: Arc<CkksContext>,
        bounds: ActivationBounds,
    ) -> Result<Self> {
        Self::build(model, ctx, bounds, AdapterMode::Merged)
    }

    /// Prepares `model` without its adapters, which come encrypted to every
    /// forward ([`EncryptedAdapters`](super::EncryptedAdapters)): the
    /// model of private fine-tuning and of inference with its result.
    ///
    /// Errors: those of [`new`](Self::new), adapter targets the encrypted
    /// circuit does not serve ([`super::adapters::adapter_targets`]).
    pub fn for_adapters(
        model: &FriendlyModel,
        ctx: Arc<CkksContext>,
        bounds: ActivationBounds,
    ) -> Result<Self> {
        super::adapters::adapter_targets(model.config())?;
        Self::build(model, ctx, bounds, AdapterMode::Encrypted)
    }

    /// Prepares `model` with every dense weight left out: they come
    /// encrypted to every forward, with the head's
    /// ([`EncryptedAdapters::encrypt_full`](super::EncryptedAdapters::encrypt_full)),
    /// and the circuit multiplies by them with CCMM. Full fine-tuning, the
    /// paper's baseline.
    ///
    /// Errors: those of [`new`](Self::new).
    pub fn for_full_finetuning(
        model: &FriendlyModel,
        ctx: Arc<CkksContext>,
        bounds: ActivationBounds,
    ) -> Result<Self> {
        Self::build(model, ctx, bounds, AdapterMode::Full)
    }

    fn build(
        model: &FriendlyModel,
        ctx: Arc<CkksContext>,
        bounds: ActivationBounds,
        mode: AdapterMode,
    ) -> Result<Self> {
        let layout = BlockLayout::new(model.config(), ctx.params())?;
        Ok(Self {
            config: model.config().clone(),
            layout,
            blocks: ModelBlocks::new(model, &layout, mode)?,
            mode,
            backward_blocks: OnceLock::new(),
            bounds,
            polynomials: model.polynomials().clone(),
            encoder: Encoder::new(ctx.clone()),
            ctx,
            products: Mutex::new(None),
            transposes: Mutex::new(None),
        })
    }

    /// The config.
    pub fn config(&self) -> &FriendlyConfig {
        &self.config
    }

    /// The block layout.
    pub fn layout(&self) -> &BlockLayout {
        &self.layout
    }

    /// Whether the adapters come encrypted to every forward
    /// ([`for_adapters`](Self::for_adapters)).
    pub fn takes_encrypted_adapters(&self) -> bool {
        self.mode != AdapterMode::Merged
    }

    /// Where the model's trainable weights live.
    pub fn adapter_mode(&self) -> AdapterMode {
        self.mode
    }

    /// The bootstrapping bounds.
    pub fn bounds(&self) -> &ActivationBounds {
        &self.bounds
    }

    pub(super) fn blocks(&self) -> &ModelBlocks {
        &self.blocks
    }

    /// The transposed weights, built on the first call.
    pub(super) fn backward_blocks(&self) -> Result<&BackwardBlocks> {
        if let Some(built) = self.backward_blocks.get() {
            return Ok(built);
        }
        let built = BackwardBlocks::new(&self.blocks, &self.config, &self.layout)?;
        Ok(self.backward_blocks.get_or_init(|| built))
    }

    pub(super) fn polynomials(&self) -> &FittedNonLinearities {
        &self.polynomials
    }

    pub(super) fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The dense products of the layout.
    pub(super) fn dense(&self) -> DenseProduct {
        DenseProduct::new(self.layout.shape())
    }

    /// The matrix product for inputs at `level`, encoded unless it was the
    /// last one used.
    pub(super) fn product(&self, level: usize) -> Result<Arc<MatrixProduct>> {
        cached(&self.products, level, || {
            MatrixProduct::new(self.layout.shape(), &self.encoder, level)
        })
    }

    /// The transpose for inputs at `level`, encoded unless it was the last
    /// one used.
    pub(super) fn transpose(&self, level: usize) -> Result<Arc<Transpose>> {
        cached(&self.transposes, level, || {
            Transpose::new(&self.layout.shape(), &self.encoder, level)
        })
    }

    /// Client side: encrypts `embeddings` (`d × hidden`, the sequence
    /// padded to `d` tokens) and `mask` (`d` entries) at `level`.
    ///
    /// Errors: wrong shapes, non-finite values, the encryption's errors.
    pub fn encrypt_input(
        &self,
        encryptor: &mut Encryptor,
        embeddings: ArrayView2<f64>,
        mask: &[bool],
        level: usize,
    ) -> Result<EncryptedInput> {
        if embeddings.ncols() != self.config.hidden {
            return Err(Error::LengthMismatch {
                op: OP,
                got: embeddings.ncols(),
                expected: self.config.hidden,
            });
        }
        let scale = self.ctx.params().default_scale();
        let tokens = self
            .layout
            .pack(&embeddings.to_owned())?
            .iter()
            .map(|slots| encryptor.encrypt(&self.encoder.encode_complex(slots, level, scale)?))
            .collect::<Result<_>>()?;
        let mask = encrypt_matrix(
            &self.layout.shape(),
            &self.encoder,
            encryptor,
            &self.layout.mask_matrix(mask)?,
            level,
            scale,
        )?;
        Ok(EncryptedInput { tokens, mask })
    }

    /// Client side: the activation (`d × width`) held by `cts`.
    pub fn decrypt_activation(
        &self,
        decryptor: &Decryptor,
        cts: &[Ciphertext],
        width: usize,
    ) -> Result<Array2<f64>> {
        let slots = cts
            .iter()
            .map(|ct| self.encoder.decode(&decryptor.decrypt(ct)?))
            .collect::<Result<Vec<_>>>()?;
        self.layout.unpack(&slots, width)
    }

    /// Client side: a heads-layout activation (queries, keys, values or
    /// their gradients: head `h` in block `h`) as the twin holds it
    /// (`d × hidden`, head `h` in columns `h·width..`).
    pub fn decrypt_heads(&self, decryptor: &Decryptor, cts: &[Ciphertext]) -> Result<Array2<f64>> {
        let blocks = self.decrypt_activation(decryptor, cts, self.layout.heads_width())?;
        Ok(Array2::from_shape_fn(
            (self.layout.dim(), self.config.hidden),
            |(i, j)| blocks[[i, self.layout.head_column(j)]],
        ))
    }

    /// Client side: the logits' layout for `values` (one per class, on row
    /// 0), encrypted at `level`: how labels and logit gradients travel.
    ///
    /// Errors: a length other than the class count, the encryption's errors.
    pub fn encrypt_logits_layout(
        &self,
        encryptor: &mut Encryptor,
        values: &[f64],
        level: usize,
    ) -> Result<Ciphertext> {
        let classes = self.config.classes;
        if values.len() != classes {
            return Err(Error::LengthMismatch {
                op: OP,
                got: values.len(),
                expected: classes,
            });
        }
        let row = Array2::from_shape_fn((self.layout.dim(), classes), |(i, j)| {
            if i == 0 {
                values[j]
            } else {
                0.0
            }
        });
        let slots = self.layout.pack(&row)?;
        let slots = slots.first().ok_or_else(|| Error::OutOfRange {
            op: OP,
            detail: "no ciphertext for the logits".into(),
        })?;
        let scale = self.ctx.params().default_scale();
        encryptor.encrypt(&self.encoder.encode_complex(slots, level, scale)?)
    }

    /// Client side: the logits (row 0 of the output's first block).
    pub fn decrypt_logits(
        &self,
        decryptor: &Decryptor,
        logits: &Ciphertext,
    ) -> Result<Array1<f64>> {
        let row =
            self.decrypt_activation(decryptor, std::slice::from_ref(logits), self.config.classes)?;
        Ok(row.row(0).to_owned())
    }
}

impl Encodings for EncryptedModel {
    fn product(&self, level: usize) -> Result<Arc<MatrixProduct>> {
        EncryptedModel::product(self, level)
    }

    fn transpose(&self, level: usize) -> Result<Arc<Transpose>> {
        EncryptedModel::transpose(self, level)
    }
}

/// The entry of `cache` if it is `level`'s; otherwise the old entry is
/// dropped first (its memory freed before the new one is built) and
/// `build`'s result cached.
fn cached<T>(
    cache: &Mutex<Option<(usize, Arc<T>)>>,
    level: usize,
    build: impl FnOnce() -> Result<T>,
) -> Result<Arc<T>> {
    let mut entry = cache.lock().map_err(|_| Error::OutOfRange {
        op: OP,
        detail: "a thread panicked while encoding a permutation".into(),
    })?;
    match entry.as_ref() {
        Some((cached_level, found)) if *cached_level == level => return Ok(found.clone()),
        _ => *entry = None,
    }
    let built = Arc::new(build()?);
    *entry = Some((level, built.clone()));
    Ok(built)
}
