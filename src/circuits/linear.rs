//! Homomorphic linear transforms (see the module docs once written).
