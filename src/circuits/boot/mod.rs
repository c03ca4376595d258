//! CKKS bootstrapping: ModRaise, CoeffToSlot, EvalMod and SlotToCoeff.
//! Under construction (issue 4): so far the plain factorization of the
//! homomorphic DFT ([`dft`]).

pub mod dft;
