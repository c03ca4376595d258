//! Circuits built from evaluator operations, on every backend: linear
//! combinations at a chosen scale ([`combine`]), polynomial
//! evaluation in the Chebyshev basis ([`poly`]), the fitted approximations
//! of [`crate::approx`] ([`functions`]), linear transforms by the diagonal
//! method ([`linear`]), bootstrapping ([`boot`]), packing sparse
//! ciphertexts into one ([`pack`]) and levels on demand between the stages
//! of long circuits ([`refresh`]).

pub mod boot;
pub mod combine;
pub mod functions;
pub mod linear;
pub mod pack;
pub mod poly;
pub mod refresh;
