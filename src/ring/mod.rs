//! The polynomial ring layer.

pub mod ntt;
