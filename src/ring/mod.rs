//! The polynomial ring layer: `R_Q = Z_Q[X]/(X^N+1)` in RNS form.
//!
//! A polynomial at level l is `l+1` limbs of N words, limb-major; limb k is
//! reduced modulo the prime of the k-th entry of its basis. Polynomials live
//! either in the coefficient domain or in the evaluation (NTT) domain, whose
//! order is fixed by [`ntt`].

mod context;
pub mod ntt;
#[cfg(target_arch = "x86_64")]
mod ntt_ifma;

pub use context::{BaseConversion, RingContext};
