//! Homomorphic polynomial evaluation (see the module docs once written).
