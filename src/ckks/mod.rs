//! The CKKS scheme (RNS variant, Cheon–Han–Kim–Kim–Song) with hybrid key
//! switching: keys, encoder, encryptor, decryptor, evaluator, precision
//! statistics.
//!
//! Ciphertexts and plaintexts live in the evaluation domain on their level's
//! basis; every operation runs through the [`Backend`](crate::backend::Backend)
//! of the [`CkksContext`].

mod ciphertext;
mod context;
pub mod embedding;
mod encoder;
mod encryptor;
mod evaluator;
mod keys;
mod keyswitch;
pub mod precision;
pub mod sampling;
pub mod serialize;
mod transfer;

pub use ciphertext::{Ciphertext, Plaintext};
pub use context::CkksContext;
pub use encoder::Encoder;
pub use encryptor::{Decryptor, EncryptionKey, Encryptor};
pub use evaluator::{EvaluationKeys, Evaluator};
pub use keys::{
    GaloisKey, GaloisKeys, KeyGenerator, PublicKey, RelinearizationKey, SecretKey, SwitchingKey,
};
pub use sampling::Prng;
