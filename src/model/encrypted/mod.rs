//! The friendly transformer under encryption: the server runs the twin's
//! computation ([`crate::model::friendly`]) on encrypted `d × d` blocks,
//! with plaintext weights (or, for private fine-tuning and its inference,
//! encrypted LoRA adapters and head), and bootstraps where levels run out.
//!
//! - [`layout`]: the blocks (the sequence length is the block side), the
//!   mask matrix;
//! - [`blocks`]: the weights rearranged in the clear (LoRA merged unless
//!   it is encrypted, `γ`/`β` folded, heads isolated, padding), and their
//!   transposes for the backward;
//! - [`bounds`]: the value bounds bootstrapping needs, calibrated on the
//!   twin;
//! - [`model`]: [`EncryptedModel`] (no key: what the server holds) and the
//!   client's encrypt/decrypt helpers;
//! - [`forward`]: the circuit, layer by layer;
//! - [`setup`]: the bootstrapping configuration and the rotation keys
//!   ([`ServerSetup`]; with the relinearization and conjugation keys, all
//!   the server needs);
//! - [`backward`]: the backward pass, from the logits' gradient to every
//!   layer's;
//! - [`full`]: full fine-tuning's encrypted layers (the paper's
//!   baseline);
//! - [`head`]: the classification head's weights under encryption;
//! - [`softmax`]: softmax attention under encryption (the paper's
//!   baseline);
//! - [`tape`]: the activations a forward keeps for the backward;
//! - [`adapters`]: LoRA adapters under encryption, with the head's weights
//!   the parameters fine-tuning trains;
//! - [`adamw`]: AdamW on encrypted parameters, gradients and moments, and
//!   its `f64` twin (the optimizer of encrypted fine-tuning);
//! - [`loss`]: the loss gradients (cross-entropy through exp and
//!   reciprocal, MSE) on encrypted logits and labels;
//! - [`finetune`]: one step of private fine-tuning (forward, loss,
//!   backward, mean gradient, optimizer);
//! - [`scales`]: the public powers of two each trained tensor's gradient
//!   is divided by before the optimizer, so that every tensor reaches it
//!   at the same typical size;
//! - [`compact`]: the optimizer's compact view of the encrypted dense
//!   weights (the head's occupied blocks packed together);
//! - [`checkpoint`]: encrypted parameters and optimizer state in one
//!   file, resumable.

pub mod adamw;
pub mod adapters;
pub mod backward;
pub mod blocks;
pub mod bounds;
pub mod checkpoint;
pub mod compact;
pub mod finetune;
pub mod forward;
pub mod full;
pub mod head;
pub mod layout;
pub mod loss;
pub mod model;
pub mod scales;
pub mod setup;
pub mod softmax;
pub mod tape;

pub use adapters::{DenseTensor, EncryptedAdapters};
pub use backward::{EncryptedGradients, LayerGradients};
pub use bounds::{ActivationBounds, GradientBounds};
pub use finetune::{FineTuning, LabeledInput, StepReport};
pub use forward::{EncryptedLayerTrace, EncryptedOutput};
pub use layout::BlockLayout;
pub use model::{EncryptedInput, EncryptedModel};
pub use scales::GradientScales;
pub use setup::{AdapterMode, ServerSetup};
pub use tape::EncryptedTape;
