//! Circuits built from evaluator operations, on every backend: polynomial
//! evaluation in the Chebyshev basis ([`poly`]) and linear transforms by the
//! diagonal method ([`linear`]).

pub mod boot;
pub mod linear;
pub mod poly;
