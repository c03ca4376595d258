//! heformer: an RNS-CKKS engine for private fine-tuning and inference of
//! encryption-friendly transformers.
//!
//! Layers (each may use only the ones listed before it):
//! [`math`] → [`params`] → [`ring`] → [`backend`] → [`ckks`] → [`circuits`]
//! → [`tensor`] → `cli`; [`approx`] (plain `f64` fitting) uses only [`error`] and is used
//! by [`circuits`]. The model side: [`assets`] (where the fetched files
//! live) → [`data`] (datasets, labels, splits, tokenizer) → [`model`]
//! (config, weights, the exact `f64` forward, the friendly twin and its
//! plaintext adaptation); they use only [`error`].
//! See `ARCHITECTURE.md` for the invariants each layer keeps.

pub mod approx;
pub mod assets;
pub mod backend;
pub mod circuits;
pub mod ckks;
pub mod cli;
pub mod data;
pub mod error;
pub mod math;
pub mod model;
pub mod params;
pub mod ring;
pub mod tensor;

pub use error::{Error, Result};
