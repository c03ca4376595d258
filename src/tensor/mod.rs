//! Encrypted matrices and their products (Jiang–Kim–Lauter–Song, CCS 2018).
//!
//! # Slot layout
//!
//! A `d × d` real matrix `M` (`d` a power of two, `d² <= N/2`) is one
//! ciphertext with exactly `n = d²` slots, row-major: entry `(i, j)` is in
//! slot `l = i·d + j` ([`MatrixShape`]). Packing with `n` slots is sparse
//! packing: the canonical embedding replicates the `n` slots `N/(2n)` times,
//! so every rotation of the ciphertext is the cyclic rotation of the `n`
//! slots (`rot(x, k)[l] = x[(l + k) mod n]`) and no slot outside the matrix
//! has to be kept zero. A matrix whose side is not a power of two is padded
//! with zero rows and columns by the caller (padding commutes with products).
//!
//! # Permutations
//!
//! The four maps of JKLS and the transpose, as plaintext
//! [`LinearTransform`](crate::circuits::linear::LinearTransform)s over the
//! `n` slots ([`permutations`]), indices modulo `d`:
//!
//! ```text
//! σ(A)[i][j]   = A[i][i + j]        (row i shifted left by i)
//! τ(A)[i][j]   = A[i + j][j]        (column j shifted up by j)
//! φ^k(A)[i][j] = A[i][j + k]        (every row shifted left by k)
//! ψ^k(A)[i][j] = A[i + k][j]        (every column shifted up by k)
//! Aᵀ[i][j]     = A[j][i]
//! ```
//!
//! and the identity `A·B = Σ_{k<d} φ^k(σ(A)) ⊙ ψ^k(τ(B))`.
//! `ψ^k` is the rotation by `k·d`; `φ^k` is `rot(x, k) ⊙ m_k + rot(x, k − d) ⊙ m'_k`
//! with the complementary masks `m_k[l] = [l mod d < d − k]`, `m'_k = 1 − m_k`
//! (the diagonals `k` and `k − d` of its transform).
//!
//! # Products
//!
//! [`MatrixProduct`] (in [`product`]) is built once for `d` and the level `l`
//! of its inputs:
//!
//! 1. `σ(A)` (and `τ(B)` for CCMM) by the diagonal method, level `l → l − 1`,
//!    and the hoisted baby-step rotations of `σ(A)` by `b < g ≈ √(2d)`
//!    ([`PreparedLeft`], reusable for any number of right factors);
//! 2. CPMM: a linear transform of `σ(A)` by baby-step giant-step: per giant
//!    step, the products of the baby copies with the pre-rotated masked
//!    plaintext factors, summed (over all the blocks of a block row), rotated
//!    once; one rescale, level `l − 2` ([`CPMM_DEPTH`] = 2);
//! 3. CCMM: the rotations of `σ(A)` by `k` and `k − d` as giant rotations of
//!    the baby copies, the masks form `φ^k(σ(A))` (level `l − 2`), the
//!    rotations of `τ(B)` by `k·d` likewise from its baby rotations, then the
//!    sum of the `d` tensor products, relinearized and rescaled once, level
//!    `l − 3` ([`CCMM_DEPTH`] = 3).
//!
//! For CPMM the right factors `ψ^k(τ(W))`, masked and pre-rotated by their
//! giant steps, are computed in the clear and encoded once
//! ([`EncodedWeights`]). [`Transpose`] is one diagonal-method
//! transform (one level). [`LoraProduct`] ([`lora`]) computes the rank-`r`
//! products `X·A·B` of LoRA with masked replication and rotate-and-sum
//! (three levels). The rotation keys are listed by
//! [`MatrixProduct::ccmm_rotations`], [`MatrixProduct::cpmm_rotations`] and
//! [`Transpose::rotations`]; the products' keys are the baby and giant steps
//! only, `O(√d)`: 30 for CPMM and 52 for CCMM at `d = 128` (see [`product`]).

mod bsgs;
pub mod lora;
pub mod packing;
pub mod permutations;
pub mod product;
pub mod transpose;

pub use lora::{replicated_rows, LoraProduct, LORA_DEPTH};
pub use packing::{decrypt_matrix, encrypt_matrix, MatrixShape};
pub use product::{EncodedWeights, MatrixProduct, PreparedLeft, CCMM_DEPTH, CPMM_DEPTH};
pub use transpose::Transpose;
