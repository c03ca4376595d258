//! Plaintexts and ciphertexts.
//!
//! Invariants: polynomials are in the evaluation domain on the basis
//! `[0..=level]`; `scale` is the exact (floating-point tracked) factor the
//! message was multiplied by; `slots` is a power of two no larger than N/2;
//! `params_id` names the parameter set. A ciphertext of degree d has d+1
//! parts and decrypts as Σ_k c_k · s^k.

use crate::backend::Buffer;

/// An encoded message: one polynomial.
#[derive(Debug, Clone)]
pub struct Plaintext {
    pub(crate) poly: Buffer,
    pub(crate) level: usize,
    pub(crate) scale: f64,
    pub(crate) slots: usize,
    pub(crate) params_id: u64,
}

/// An encrypted message: `degree + 1` polynomials.
#[derive(Debug, Clone)]
pub struct Ciphertext {
    pub(crate) parts: Vec<Buffer>,
    pub(crate) level: usize,
    pub(crate) scale: f64,
    pub(crate) slots: usize,
    pub(crate) params_id: u64,
}

macro_rules! common_accessors {
    ($t:ty) => {
        impl $t {
            /// The level (number of primes minus one).
            pub fn level(&self) -> usize {
                self.level
            }
            /// The scale the message is multiplied by.
            pub fn scale(&self) -> f64 {
                self.scale
            }
            /// Number of slots.
            pub fn slots(&self) -> usize {
                self.slots
            }
            /// The id of the parameter set.
            pub fn params_id(&self) -> u64 {
                self.params_id
            }
        }
    };
}

common_accessors!(Plaintext);
common_accessors!(Ciphertext);

impl Ciphertext {
    /// Degree in the secret (1 for a fresh ciphertext, 2 after a tensor product).
    pub fn degree(&self) -> usize {
        self.parts.len() - 1
    }

    /// Part `k` (c_k) of the ciphertext, evaluation domain; `None` when
    /// `k > degree()`.
    pub fn part(&self, k: usize) -> Option<&Buffer> {
        self.parts.get(k)
    }

    /// Metadata with no parts, for building results of the same shape.
    pub(crate) fn clone_meta(&self) -> Ciphertext {
        Ciphertext {
            parts: Vec::new(),
            level: self.level,
            scale: self.scale,
            slots: self.slots,
            params_id: self.params_id,
        }
    }

    /// A copy on the same backend; a device out of memory is an error
    /// (`clone` panics instead).
    pub fn try_clone(&self) -> crate::Result<Ciphertext> {
        Ok(Ciphertext {
            parts: self
                .parts
                .iter()
                .map(Buffer::try_clone)
                .collect::<crate::Result<Vec<_>>>()?,
            ..self.clone_meta()
        })
    }

    /// The backend kind the parts live on.
    pub fn backend_kind(&self) -> crate::backend::BackendKind {
        self.parts[0].kind()
    }
}
