//! Approximation fitting in plain `f64`: the polynomials that stand in for
//! non-linear functions under encryption (Chebyshev interpolation, Remez
//! minimax, composite sign, inverse square root and reciprocal with Newton
//! steps, exp). Nothing here touches ciphertexts: [`crate::circuits`]
//! evaluates what this module fits.
//!
//! Every polynomial is a [`ChebyshevSeries`] on an interval `[a, b]`: the
//! coefficients `c_k` of `p(x) = Σ_k c_k T_k(y)` with `y = (2x − a − b)/(b − a)`
//! mapping the interval onto `[−1, 1]`.
//!
//! Conventions:
//! - Depth: a degree-`d` polynomial costs `⌈log2(d + 1)⌉` levels
//!   ([`polynomial_depth`]); compositions add their parts' depths; each
//!   type states the depth of its extra operations (Newton steps,
//!   squarings, the product with `x` of ReLU). The circuit planner in
//!   [`crate::circuits`] is authoritative for a concrete circuit.
//! - Errors are absolute unless a type says relative ([`Weight`]). Every
//!   reported max error is measured on a dense grid of the domain clustered
//!   towards its ends (20 001 points, refined at the extrema for Remez), or
//!   is exact where an analysis gives it (exp by squaring).
//! - Every `eval` performs the operations of the encrypted circuit in the
//!   same order, so its error is the circuit's error without the CKKS noise.
//! - Coefficients are computed at run time by this code (nothing is
//!   tabulated); plain `f64` suffices up to degree 255 for interpolation and
//!   63 (tested) for Remez, whose linear solves use the Chebyshev basis.
//!
//! Modules: `chebyshev` (the series, interpolation, parity), `remez`
//! (minimax), `sign` (composite sign, ReLU), `newton` (inverse square root,
//! reciprocal), `exp`, `tanh`, `registry` (named functions with default
//! fits for `heformer bench poly`); `grid` (dense sampling) and
//! `linear_solve` (Gaussian elimination) support them.

mod chebyshev;
mod clip;
mod exp;
mod grid;
mod linear_solve;
mod newton;
mod registry;
mod remez;
mod sign;
mod tanh;

pub use chebyshev::{polynomial_depth, ChebyshevSeries, Fitted, Parity, MAX_INTERPOLATION_DEGREE};
pub use clip::CompositeClip;
pub use exp::{fit_exp_polynomial, ExpBySquaring, MAX_EXP_DEGREE, MAX_EXP_SQUARINGS};
pub use newton::{NewtonApproximation, NewtonTarget, MAX_NEWTON_STEPS, NEWTON_STEP_DEPTH};
pub use registry::{Approximation, Domain, FittedFunction, NamedFunction};
pub use remez::{remez, remez_odd, Minimax, RemezOptions, Weight, MAX_REMEZ_DEGREE};
pub use sign::{
    CompositeRelu, CompositeSign, DEFAULT_SIGN_SCHEDULES, MAX_SIGN_PRECISION_BITS, MAX_SIGN_STAGES,
};
pub use tanh::fit_tanh;
