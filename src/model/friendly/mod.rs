//! The encryption-friendly transformer (Rho et al., ICLR 2025) in plaintext
//! `f64`: the twin of the encrypted model.
//!
//! The model is a pre-LN encoder with Gaussian-kernel attention
//! `exp(−‖q − k‖²/(2√d_head))` (unnormalised), a ReLU-gated linear unit as
//! feed-forward, LoRA adapters on chosen projections, and a head on the
//! first token with tanh ([`forward`] states the computation exactly). Its
//! non-linear functions are either exact or the very
//! [`Approximation`](crate::approx::Approximation)s the encrypted circuit
//! evaluates, fitted once per model from the config's ranges
//! ([`nonlinear`]); inputs that leave a range are counted, not refused.
//!
//! - [`config`]: shapes, LoRA targets, approximation ranges; the paper's
//!   model as the default, a tiny one for tests;
//! - [`weights`]: the weights, seeded random or mapped from a BERT's first
//!   layers (what that mapping can and cannot carry over is stated there);
//! - [`nonlinear`]: exact and polynomial non-linearities, range guards;
//! - [`forward`]: the forward pass and its per-layer trace.

pub mod config;
pub mod forward;
pub mod nonlinear;
pub mod weights;

pub use config::{ApproximationRanges, AttentionKernel, FriendlyConfig, LoraTarget};
pub use forward::{agreement, FriendlyModel, FriendlyTrace, LayerTrace, Probe};
pub use nonlinear::{ApproximationErrors, FittedNonLinearities, RangeViolations, Variant};
pub use weights::{Dense, FriendlyHead, FriendlyLayer, FriendlyWeights, Lora, Projection};

#[cfg(test)]
mod tests;
