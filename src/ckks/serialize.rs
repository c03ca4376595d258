//! Serialization (being written).
