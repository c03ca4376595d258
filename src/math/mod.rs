//! Scalar arithmetic on 64-bit words: modular reduction (Barrett for products,
//! Shoup for multiplication by a fixed constant), NTT-friendly prime
//! generation and primality testing.
//!
//! Invariants: every [`Modulus`] is odd, at least 3 and below 2^62, so that
//! sums of two reduced values and Shoup's lazy results (< 2q) fit a word.
//! Every function returning a residue returns it fully reduced in `[0, q)`
//! unless its name says `lazy`.

mod complex;
#[cfg(target_arch = "x86_64")]
pub(crate) mod ifma;
mod modulus;
mod primes;

pub use complex::Complex;
pub use modulus::Modulus;
pub use primes::{generate_ntt_primes, is_ntt_friendly, is_prime, primitive_root_2n};
