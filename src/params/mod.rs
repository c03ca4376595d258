//! Parameters (stub, being written).
