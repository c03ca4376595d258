//! NTT (being written).
