//! Named functions with default fits, for `heformer bench poly`.
//!
//! | name | domain | approximation | error measure, request |
//! | --- | --- | --- | --- |
//! | `sign` | `2^−8 ≤ \|x\| ≤ 1` | composite minimax ([`CompositeSign::fit_default`]) | absolute, `2^−12` |
//! | `relu` | `[−1, 1]` | `x·(1 + sign)/2` from that sign ([`CompositeRelu`]) | absolute, `2^−13` off the gap `\|x\| < 2^−8` |
//! | `inv_sqrt` | `[2^−8, 1]` | relative minimax guess + Newton, least depth | relative, `2^−16` |
//! | `reciprocal` | `[1, 64]` | relative minimax guess + Newton, least depth | relative, `2^−16` |
//! | `exp` | `[−8, 0]` | Chebyshev interpolant, lowest degree | absolute, `2^−20` |
//! | `exp_squaring` | `[−8, 0]` | `(1 + x/2^r)^(2^r)`, fewest squarings | relative, `2^−10` |
//! | `tanh` | `[−4, 4]` | odd minimax, degree 31 | absolute |
//!
//! Every fit is computed on demand (tens of milliseconds at most); the max
//! error reported is measured on a dense grid of the domain (analytic for
//! `exp_squaring`).

use super::chebyshev::ChebyshevSeries;
use super::exp::{fit_exp_polynomial, ExpBySquaring};
use super::newton::{NewtonApproximation, NewtonTarget};
use super::remez::Weight;
use super::sign::{CompositeRelu, CompositeSign};
use super::tanh::fit_tanh;
use crate::error::{Error, Result};

/// `ε = 2^−SIGN_EPSILON_BITS` of the default sign and ReLU.
const SIGN_EPSILON_BITS: i32 = 8;
/// Precision in bits of the default sign.
const SIGN_PRECISION_BITS: u32 = 12;
/// Domain of the default inverse square root.
const INV_SQRT_INTERVAL: (f64, f64) = (1.0 / 256.0, 1.0);
/// Domain of the default reciprocal.
const RECIPROCAL_INTERVAL: (f64, f64) = (1.0, 64.0);
/// Relative error requested of the default inverse square root and reciprocal.
const NEWTON_RELATIVE_ERROR: f64 = 1.0 / 65536.0;
/// Depth searched for them.
const NEWTON_MAX_DEPTH: usize = 24;
/// Domain of both default exps.
const EXP_INTERVAL: (f64, f64) = (-8.0, 0.0);
/// Absolute error requested of the default exp polynomial.
const EXP_POLYNOMIAL_ERROR: f64 = 1.0 / 1048576.0;
/// Relative error requested of the default exp by squaring.
const EXP_SQUARING_RELATIVE_ERROR: f64 = 1.0 / 1024.0;
/// `B` of the default tanh on `[−B, B]`.
const TANH_BOUND: f64 = 4.0;
/// Degree of the default tanh.
const TANH_DEGREE: usize = 31;

impl Domain {
    /// The point of the domain at fraction `u` of its length (`u` in
    /// `[0, 1)`; for a symmetric pair the first half of `u` is the negative
    /// side): uniform samples from uniform `u`.
    pub fn point(self, u: f64) -> f64 {
        match self {
            Domain::Interval(a, b) => a + (b - a) * u,
            Domain::SymmetricPair { inner, outer } => {
                let t = (2.0 * u).fract();
                let magnitude = inner + (outer - inner) * t;
                if u < 0.5 {
                    -magnitude
                } else {
                    magnitude
                }
            }
        }
    }
}

/// A function `heformer bench poly` knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedFunction {
    /// `sign(x)`.
    Sign,
    /// `max(x, 0)`.
    Relu,
    /// `1/√x`.
    InvSqrt,
    /// `1/x`.
    Reciprocal,
    /// `exp(x)` as a polynomial.
    Exp,
    /// `exp(x)` as `(1 + x/2^r)^(2^r)`.
    ExpSquaring,
    /// `tanh(x)`.
    Tanh,
}

/// Where an approximation is meant to be used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Domain {
    /// `[a, b]`.
    Interval(f64, f64),
    /// `[−outer, −inner] ∪ [inner, outer]`.
    SymmetricPair {
        /// `inner > 0`.
        inner: f64,
        /// `outer > inner`.
        outer: f64,
    },
}

/// What the encrypted circuit evaluates.
#[derive(Clone, Debug, PartialEq)]
pub enum Approximation {
    /// One polynomial.
    Polynomial(ChebyshevSeries),
    /// Odd polynomials composed.
    CompositeSign(CompositeSign),
    /// Composed polynomials, then a product with `x`.
    CompositeRelu(CompositeRelu),
    /// A polynomial, then Newton steps.
    Newton(NewtonApproximation),
    /// A scaling, then squarings.
    ExpBySquaring(ExpBySquaring),
}

impl Approximation {
    /// The value in `f64`, in the circuit's order.
    pub fn eval(&self, x: f64) -> f64 {
        match self {
            Approximation::Polynomial(p) => p.eval(x),
            Approximation::CompositeSign(s) => s.eval(x),
            Approximation::CompositeRelu(r) => r.eval(x),
            Approximation::Newton(n) => n.eval(x),
            Approximation::ExpBySquaring(e) => e.eval(x),
        }
    }

    /// The multiplicative depth.
    pub fn depth(&self) -> usize {
        match self {
            Approximation::Polynomial(p) => p.depth(),
            Approximation::CompositeSign(s) => s.depth(),
            Approximation::CompositeRelu(r) => r.depth(),
            Approximation::Newton(n) => n.depth(),
            Approximation::ExpBySquaring(e) => e.depth(),
        }
    }

    /// The polynomials the circuit evaluates, in order (none for the
    /// squaring form, whose circuit is a scaling and squarings).
    pub fn pieces(&self) -> &[ChebyshevSeries] {
        match self {
            Approximation::Polynomial(p) => std::slice::from_ref(p),
            Approximation::CompositeSign(s) => s.stages(),
            Approximation::CompositeRelu(r) => r.stages(),
            Approximation::Newton(n) => std::slice::from_ref(n.initial()),
            Approximation::ExpBySquaring(_) => &[],
        }
    }
}

/// A named function's default fit and how well it does.
#[derive(Clone, Debug, PartialEq)]
pub struct FittedFunction {
    /// Which function.
    pub function: NamedFunction,
    /// Where the error is measured.
    pub domain: Domain,
    /// What the circuit evaluates.
    pub approximation: Approximation,
    /// Absolute or relative.
    pub error_measure: Weight,
    /// The largest error (in `error_measure`) on `domain`.
    pub max_error: f64,
}

impl FittedFunction {
    /// The multiplicative depth of the circuit.
    pub fn depth(&self) -> usize {
        self.approximation.depth()
    }
}

impl NamedFunction {
    /// Every named function.
    pub const ALL: [NamedFunction; 7] = [
        NamedFunction::Sign,
        NamedFunction::Relu,
        NamedFunction::InvSqrt,
        NamedFunction::Reciprocal,
        NamedFunction::Exp,
        NamedFunction::ExpSquaring,
        NamedFunction::Tanh,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            NamedFunction::Sign => "sign",
            NamedFunction::Relu => "relu",
            NamedFunction::InvSqrt => "inv_sqrt",
            NamedFunction::Reciprocal => "reciprocal",
            NamedFunction::Exp => "exp",
            NamedFunction::ExpSquaring => "exp_squaring",
            NamedFunction::Tanh => "tanh",
        }
    }

    /// The function called `name`.
    ///
    /// Errors: an unknown name (the message lists the known ones).
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|f| f.name()).collect();
                Error::InvalidParameters(format!(
                    "unknown function `{name}` (known: {})",
                    known.join(", ")
                ))
            })
    }

    /// The exact function.
    pub fn exact(self, x: f64) -> f64 {
        match self {
            NamedFunction::Sign => x.signum(),
            NamedFunction::Relu => x.max(0.0),
            NamedFunction::InvSqrt => NewtonTarget::InverseSqrt.exact(x),
            NamedFunction::Reciprocal => NewtonTarget::Reciprocal.exact(x),
            NamedFunction::Exp | NamedFunction::ExpSquaring => x.exp(),
            NamedFunction::Tanh => x.tanh(),
        }
    }

    /// The default fit (see the module docs).
    ///
    /// Errors: a fitting failure (none expected for the defaults).
    pub fn fit_default(self) -> Result<FittedFunction> {
        let epsilon = 2.0_f64.powi(-SIGN_EPSILON_BITS);
        let interval = |(a, b): (f64, f64)| Domain::Interval(a, b);
        let (domain, approximation, error_measure, max_error) = match self {
            NamedFunction::Sign => {
                let sign = CompositeSign::fit_default(epsilon, SIGN_PRECISION_BITS)?;
                let error = sign.max_error();
                let domain = Domain::SymmetricPair {
                    inner: epsilon,
                    outer: 1.0,
                };
                (
                    domain,
                    Approximation::CompositeSign(sign),
                    Weight::Absolute,
                    error,
                )
            }
            NamedFunction::Relu => {
                let sign = CompositeSign::fit_default(epsilon, SIGN_PRECISION_BITS)?;
                let relu = CompositeRelu::from_sign(&sign)?;
                let error = relu.max_error();
                let domain = Domain::Interval(-1.0, 1.0);
                (
                    domain,
                    Approximation::CompositeRelu(relu),
                    Weight::Absolute,
                    error,
                )
            }
            NamedFunction::InvSqrt | NamedFunction::Reciprocal => {
                let (target, range) = if self == NamedFunction::InvSqrt {
                    (NewtonTarget::InverseSqrt, INV_SQRT_INTERVAL)
                } else {
                    (NewtonTarget::Reciprocal, RECIPROCAL_INTERVAL)
                };
                let newton = NewtonApproximation::fit_to_error(
                    target,
                    range,
                    NEWTON_RELATIVE_ERROR,
                    NEWTON_MAX_DEPTH,
                )?;
                let error = newton.max_relative_error();
                (
                    interval(range),
                    Approximation::Newton(newton),
                    Weight::Relative,
                    error,
                )
            }
            NamedFunction::Exp => {
                let fit = fit_exp_polynomial(EXP_INTERVAL, EXP_POLYNOMIAL_ERROR)?;
                let domain = interval(EXP_INTERVAL);
                (
                    domain,
                    Approximation::Polynomial(fit.series),
                    Weight::Absolute,
                    fit.max_error,
                )
            }
            NamedFunction::ExpSquaring => {
                let exp = ExpBySquaring::fit_to_error(
                    EXP_INTERVAL,
                    EXP_SQUARING_RELATIVE_ERROR,
                    super::exp::MAX_EXP_SQUARINGS,
                )?;
                let error = exp.max_relative_error();
                (
                    interval(EXP_INTERVAL),
                    Approximation::ExpBySquaring(exp),
                    Weight::Relative,
                    error,
                )
            }
            NamedFunction::Tanh => {
                let fit = fit_tanh(TANH_BOUND, TANH_DEGREE)?;
                let domain = Domain::Interval(-TANH_BOUND, TANH_BOUND);
                (
                    domain,
                    Approximation::Polynomial(fit.series),
                    Weight::Absolute,
                    fit.max_error,
                )
            }
        };
        Ok(FittedFunction {
            function: self,
            domain,
            approximation,
            error_measure,
            max_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approx::grid::{max_deviation, MEASURE_SAMPLES};
    use crate::approx::Parity;

    /// The largest error of `fit` on its domain, measured here from
    /// `exact` and `eval` alone.
    fn measure(fit: &FittedFunction) -> f64 {
        let error = |x: f64| {
            let (approx, exact) = (fit.approximation.eval(x), fit.function.exact(x));
            match fit.error_measure {
                Weight::Absolute => approx - exact,
                Weight::Relative => approx / exact - 1.0,
            }
        };
        let on = |interval| max_deviation("test", interval, MEASURE_SAMPLES, error).unwrap();
        match fit.domain {
            Domain::Interval(a, b) => on((a, b)),
            Domain::SymmetricPair { inner, outer } => on((inner, outer)).max(on((-outer, -inner))),
        }
    }

    /// The request each default answers (see the module docs); for tanh,
    /// the error of the odd interpolant of the same degree.
    fn request(function: NamedFunction) -> f64 {
        let alpha = 2.0_f64.powi(-(SIGN_PRECISION_BITS as i32));
        let epsilon = 2.0_f64.powi(-SIGN_EPSILON_BITS);
        match function {
            NamedFunction::Sign => alpha,
            NamedFunction::Relu => (alpha / 2.0).max(epsilon * (2.0 + alpha) / 2.0),
            NamedFunction::InvSqrt | NamedFunction::Reciprocal => NEWTON_RELATIVE_ERROR,
            NamedFunction::Exp => EXP_POLYNOMIAL_ERROR,
            NamedFunction::ExpSquaring => EXP_SQUARING_RELATIVE_ERROR,
            NamedFunction::Tanh => {
                ChebyshevSeries::interpolate(f64::tanh, (-TANH_BOUND, TANH_BOUND), TANH_DEGREE)
                    .and_then(|p| p.with_parity(Parity::Odd))
                    .and_then(|p| p.max_error(f64::tanh, MEASURE_SAMPLES))
                    .unwrap()
            }
        }
    }

    #[test]
    fn every_named_function_meets_its_default_request() {
        for function in NamedFunction::ALL {
            let fit = function.fit_default().unwrap();
            let measured = measure(&fit);
            let request = request(function);
            let degrees: Vec<usize> = fit
                .approximation
                .pieces()
                .iter()
                .map(|p| p.degree())
                .collect();
            eprintln!(
                "{:>12}: {:?} on {:?}, degrees {degrees:?}, depth {}, max error {:.3e} (measured here {measured:.3e}, request {request:.3e})",
                function.name(),
                fit.error_measure,
                fit.domain,
                fit.depth(),
                fit.max_error
            );
            // f64 rounding of the squaring form: 2^(r+1)·ε ≤ 1e-10 for r ≤ 20.
            assert!(measured <= fit.max_error + 1e-10, "{}", function.name());
            assert!(fit.max_error <= request, "{}", function.name());
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for function in NamedFunction::ALL {
            assert_eq!(NamedFunction::from_name(function.name()).unwrap(), function);
        }
        match NamedFunction::from_name("softmax") {
            Err(Error::InvalidParameters(message)) => {
                assert!(message.contains("inv_sqrt"), "{message}")
            }
            other => panic!("expected an unknown-name error, got {other:?}"),
        }
    }
}
