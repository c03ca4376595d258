//! Encrypted matrices and their products (Jiang–Kim–Lauter–Song, CCS 2018,
//! for the products of two encrypted matrices; the diagonal method for
//! plaintext weights).
//!
//! # Slot layout
//!
//! A ciphertext holds `P` real `d × d` matrices (blocks; `d` and `P`
//! powers of two, `P·d² <= N/2`) in exactly `n = P·d²` slots, row-major and
//! interleaved: entry `(i, j)` of block `b` is in slot `(i·d + j)·P + b`
//! ([`MatrixShape`]). Packing with `n` slots is sparse packing: the
//! canonical embedding replicates the `n` slots `N/(2n)` times, so every
//! rotation of the ciphertext is the cyclic rotation of the `n` slots
//! (`rot(x, k)[l] = x[(l + k) mod n]`), and a rotation by `k·P` rotates every
//! block within itself: the maps of one block are those of all `P`, with
//! their steps times `P`. A matrix whose side is not a power of two is
//! padded with zero rows and columns by the caller (padding commutes with
//! products). An activation of `d` rows and `c·d` columns is `⌈c/P⌉`
//! ciphertexts of `P` column blocks each.
//!
//! # Permutations
//!
//! The four maps of JKLS and the transpose, as plaintext
//! [`LinearTransform`](crate::circuits::linear::LinearTransform)s over the
//! `n` slots ([`permutations`]), on each block, indices modulo `d`:
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
//! `ψ^k` is the rotation by `k·d·P`; `φ^k` is
//! `rot(x, k·P) ⊙ m_k + rot(x, (k − d)·P) ⊙ m'_k` with the complementary
//! masks `m_k = [j < d − k]` on every entry `(i, j)`, `m'_k = 1 − m_k`.
//!
//! # Products
//!
//! - [`DenseProduct`] ([`dense`]): `X·W` for an encrypted activation and a
//!   plaintext `W`, all blocks at once, by the diagonal method on the
//!   slots: the baby rotations of each input ciphertext hoisted once and
//!   shared by every output and weight matrix, the diagonals of `W`
//!   computed and encoded in the clear, one level ([`DENSE_DEPTH`]).
//! - [`MatrixProduct`] ([`product`]): CCMM `A·B` of encrypted matrices,
//!   block by block, three levels ([`CCMM_DEPTH`]), baby-step giant-step
//!   rotations so that its keys are `O(√d)`: 52 at `d = 128`.
//! - [`Transpose`]: one diagonal-method transform (one level).
//! - [`EncryptedDense`] ([`encrypted_dense`]): `X·W` with `W` encrypted,
//!   CCMM block by block over shifted copies of the input's blocks (four
//!   levels), and its two gradients (five).
//! - [`LoraProduct`] ([`lora`]): the rank-`r` products `X·A·B` of LoRA with
//!   masked replication and rotate-and-sum (three levels).
//!
//! The rotation keys are listed by [`DenseProduct::rotations`],
//! [`MatrixProduct::ccmm_rotations`], [`Transpose::rotations`] and
//! [`LoraProduct::rotations`].

mod bsgs;
pub mod dense;
pub mod encrypted_dense;
pub mod lora;
pub mod packing;
pub mod permutations;
pub mod product;
pub mod row_dense;

pub mod transpose;

pub use dense::{DenseProduct, PreparedInput, DENSE_DEPTH};
pub use encrypted_dense::{
    Encodings, EncryptedDense, ENCRYPTED_DENSE_DEPTH, ENCRYPTED_DENSE_GRADIENT_DEPTH,
};
pub use lora::{replicated_rows, AdapterGradients, Adapters, LoraProduct, LORA_DEPTH};
pub use packing::{decrypt_matrix, encrypt_matrix, MatrixShape};
pub use product::{MatrixProduct, CCMM_DEPTH};
pub use row_dense::{RowDense, ROW_DENSE_DEPTH, ROW_DENSE_GRADIENT_DEPTH};
pub use transpose::Transpose;
