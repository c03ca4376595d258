//! The plaintext model: a BERT encoder's configuration and weights, and the
//! exact `f64` forward pass that the encrypted model is checked against.
//!
//! - [`config`]: `config.json`, checked for what the forward supports;
//! - [`weights`]: the safetensors weights as typed `f64` arrays, every
//!   shape checked against the config;
//! - [`activation`]: GELU in its erf form, with our own `erf`;
//! - [`reference`]: embeddings, post-LN encoder layers, mean pooling and
//!   L2 normalisation, for any number of the first layers;
//! - [`friendly`]: the encryption-friendly transformer of the paper in
//!   `f64`, with exact or polynomial non-linearities (the encrypted model's
//!   plaintext twin);
//! - [`encrypted`]: the same model on encrypted blocks (the server side).
//!
//! For all-MiniLM-L6-v2 the forward agrees with Hugging Face transformers
//! run in float64 to about 4e-15 (`tests/reference_model.rs`).

pub mod activation;
pub mod config;
pub mod encrypted;
pub mod friendly;
pub mod reference;
pub mod train;
pub mod weights;
