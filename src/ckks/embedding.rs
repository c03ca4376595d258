//! Canonical embedding (being written).
