//! What the encrypted backward pass needs of a forward pass: the
//! activations the forward computed anyway, kept per example instead of
//! dropped ([`EncryptedModel::forward_taped`](super::EncryptedModel::forward_taped)).
//!
//! Every entry is in the forward's layout (the stream's blocks, or the
//! heads' blocks for queries, keys, values and kernels) at whatever level
//! and scale the forward left it; the backward refreshes what it uses.

use crate::ckks::Ciphertext;

/// A LayerNorm's forward: the normalised rows (before `γ`, `β`) and each
/// row's inverse deviation, replicated across the row.
#[derive(Debug)]
pub struct NormTape {
    pub normed: Vec<Ciphertext>,
    pub inverses: Vec<Ciphertext>,
}

/// The attention block's forward.
#[derive(Debug)]
pub struct AttentionTape {
    pub norm: NormTape,
    /// `Q' = 2c·Q`, head `h` in block `h`.
    pub queries: Vec<Ciphertext>,
    pub keys: Vec<Ciphertext>,
    /// `V ⊙ M`: the values of masked keys are zero.
    pub values: Vec<Ciphertext>,
    /// The kernels `S = exp(E)`, before the mask.
    pub kernels: Vec<Ciphertext>,
    /// With encrypted adapters or weights, their input: the LayerNorm's
    /// output `N ⊙ γ + β`.
    pub adapter_input: Option<Vec<Ciphertext>>,
    /// With encrypted weights (full fine-tuning), the output projection's
    /// input: the heads' contexts.
    pub context: Option<Vec<Ciphertext>>,
}

/// The feed-forward block's forward.
#[derive(Debug)]
pub struct FfnTape {
    pub norm: NormTape,
    /// The up projection.
    pub up: Vec<Ciphertext>,
    /// `relu(G)` of the gate `G`.
    pub activated: Vec<Ciphertext>,
    /// ReLU's derivative at the gate, `(1 + sign G)/2`.
    pub step: Vec<Ciphertext>,
    /// With encrypted weights (full fine-tuning), the gate's and up
    /// projection's input `N ⊙ γ + β` and the down projection's
    /// `relu(G) ⊙ U`.
    pub input: Option<Vec<Ciphertext>>,
    pub glu: Option<Vec<Ciphertext>>,
}

/// One layer's forward.
#[derive(Debug)]
pub struct LayerTape {
    pub attention: AttentionTape,
    pub ffn: FfnTape,
}

/// The head's forward.
#[derive(Debug)]
pub struct HeadTape {
    /// The final LayerNorm, if the model has one.
    pub final_norm: Option<NormTape>,
    /// The tanh output (row 0; the other rows are 0).
    pub tanh: Vec<Ciphertext>,
    /// With encrypted head weights, the inputs of their products.
    pub inputs: Option<HeadInputs>,
}

/// The inputs of an encrypted head's first two products.
#[derive(Debug)]
pub struct HeadInputs {
    /// `x`: the final LayerNorm's output (`γ`, `β` applied) or the stream.
    pub input: Vec<Ciphertext>,
    /// `x·W₁ + b₁`.
    pub bottleneck: Vec<Ciphertext>,
}

/// One example's forward.
#[derive(Debug)]
pub struct EncryptedTape {
    /// The mask matrix of the input.
    pub mask: Ciphertext,
    pub layers: Vec<LayerTape>,
    pub head: HeadTape,
}
