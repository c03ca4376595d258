//! The server's model: the rearranged weights, the bounds, the polynomials,
//! and the encoded permutations of the last level used; and the
//! client's side of the exchange (encrypting an input, decrypting results).

use std::sync::{Arc, Mutex};

use ndarray::{Array1, Array2, ArrayView2};

use super::blocks::ModelBlocks;
use super::bounds::ActivationBounds;
use super::layout::BlockLayout;
use crate::ckks::{Ciphertext, CkksContext, Decryptor, Encoder, Encryptor};
use crate::error::{Error, Result};
use crate::model::friendly::{FittedNonLinearities, FriendlyConfig, FriendlyModel};
use crate::tensor::{encrypt_matrix, DenseProduct, MatrixProduct, Transpose};

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
        let layout = BlockLayout::new(model.config(), ctx.params())?;
        Ok(Self {
            config: model.config().clone(),
            layout,
            blocks: ModelBlocks::new(model, &layout)?,
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

    /// The bootstrapping bounds.
    pub fn bounds(&self) -> &ActivationBounds {
        &self.bounds
    }

    pub(super) fn blocks(&self) -> &ModelBlocks {
        &self.blocks
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
