//! The CKKS scheme.

pub mod embedding;
