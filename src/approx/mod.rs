//! Approximation fitting in plain `f64`: the polynomials that stand in for
//! non-linear functions under encryption (Chebyshev interpolation, Remez
//! minimax, composite sign, inverse square root and reciprocal with Newton
//! steps, exp). Nothing here touches ciphertexts: [`crate::circuits`]
//! evaluates what this module fits.
//!
//! Every polynomial is a [`ChebyshevSeries`] on an interval `[a, b]`: the
//! coefficients `c_k` of `p(x) = Σ_k c_k T_k(y)` with `y = (2x − a − b)/(b − a)`
//! mapping the interval onto `[−1, 1]`.

mod chebyshev;
mod exp;
mod grid;
mod linear_solve;
mod newton;
mod registry;
mod remez;
mod sign;
mod tanh;

pub use chebyshev::{polynomial_depth, ChebyshevSeries, Fitted, Parity, MAX_INTERPOLATION_DEGREE};
pub use exp::{fit_exp_polynomial, ExpBySquaring, MAX_EXP_DEGREE, MAX_EXP_SQUARINGS};
pub use newton::{NewtonApproximation, NewtonTarget, MAX_NEWTON_STEPS, NEWTON_STEP_DEPTH};
pub use registry::{Approximation, Domain, FittedFunction, NamedFunction};
pub use remez::{remez, remez_odd, Minimax, RemezOptions, Weight, MAX_REMEZ_DEGREE};
pub use sign::{
    CompositeRelu, CompositeSign, DEFAULT_SIGN_SCHEDULES, MAX_SIGN_PRECISION_BITS, MAX_SIGN_STAGES,
};
pub use tanh::fit_tanh;
