//! The encoder: complex (or real) slot values ↔ plaintext polynomials.
//!
//! Encoding computes the inverse canonical embedding ([`Embedding`]),
//! multiplies by the scale, rounds each coefficient to the nearest integer
//! and reduces it exactly into every limb. Decoding lifts the residues to
//! centered integers by Garner's mixed-radix CRT (exact), divides by the
//! tracked scale and evaluates the embedding.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::ciphertext::Plaintext;
use super::context::CkksContext;
use super::embedding::Embedding;
use crate::error::{Error, Result};
use crate::math::Complex;

/// Encodes and decodes plaintexts of one context.
#[derive(Debug)]
pub struct Encoder {
    ctx: Arc<CkksContext>,
    embeddings: Mutex<HashMap<usize, Arc<Embedding>>>,
}

impl Encoder {
    /// An encoder for `ctx`.
    pub fn new(ctx: Arc<CkksContext>) -> Self {
        Self {
            ctx,
            embeddings: Mutex::new(HashMap::new()),
        }
    }

    /// The context.
    pub fn context(&self) -> &Arc<CkksContext> {
        &self.ctx
    }

    fn embedding(&self, slots: usize) -> Result<Arc<Embedding>> {
        let mut cache = self.embeddings.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = cache.get(&slots) {
            return Ok(e.clone());
        }
        let e = Arc::new(Embedding::new(self.ctx.params().log_n(), slots)?);
        cache.insert(slots, e.clone());
        Ok(e)
    }

    /// The slot count used for `len` values: the next power of two (at least 1).
    fn slots_for(&self, op: &'static str, len: usize) -> Result<usize> {
        let max = self.ctx.params().max_slots();
        let slots = len.max(1).next_power_of_two();
        if slots > max {
            return Err(Error::LengthMismatch {
                op,
                got: len,
                expected: max,
            });
        }
        Ok(slots)
    }

    /// Encodes complex values at `level` and `scale`. The slot count is
    /// `values.len()` rounded up to a power of two (missing slots are zero).
    pub fn encode_complex(
        &self,
        values: &[Complex],
        level: usize,
        scale: f64,
    ) -> Result<Plaintext> {
        let ctx = &self.ctx;
        ctx.check_level("encode", level)?;
        if !(scale.is_finite() && scale >= 1.0) {
            return Err(Error::OutOfRange {
                op: "encode",
                detail: format!("scale {scale} must be finite and at least 1"),
            });
        }
        let slots = self.slots_for("encode", values.len())?;
        let mut padded = values.to_vec();
        padded.resize(slots, Complex::ZERO);
        let coefficients = self.embedding(slots)?.slots_to_coefficients(&padded)?;
        let rounded: Vec<f64> = coefficients.iter().map(|c| (c * scale).round()).collect();
        // Refuse values that would wrap modulo Q_level.
        let log_q: f64 = ctx.params().q()[..=level]
            .iter()
            .map(|&q| (q as f64).log2())
            .sum();
        let max_abs = rounded.iter().fold(0f64, |m, c| m.max(c.abs()));
        if !max_abs.is_finite() || max_abs.log2() >= log_q - 1.0 {
            return Err(Error::OutOfRange {
                op: "encode",
                detail: format!(
                    "scaled coefficients reach 2^{:.1}, beyond Q/2 = 2^{:.1} at level {level}",
                    max_abs.log2(),
                    log_q - 1.0
                ),
            });
        }
        let basis = ctx.ring().q_basis(level);
        let n = ctx.n();
        let mut limbs = vec![0u64; n * basis.len()];
        for (limb, &g) in limbs.chunks_mut(n).zip(&basis) {
            let m = ctx.ring().moduli()[g];
            // Sparse packing leaves most coefficients zero (the limbs start so).
            for (x, &c) in limb.iter_mut().zip(&rounded).filter(|(_, &c)| c != 0.0) {
                *x = m.reduce_f64_integer(c).ok_or_else(|| Error::OutOfRange {
                    op: "encode",
                    detail: format!("value {c} is not finite"),
                })?;
            }
        }
        Ok(Plaintext {
            poly: ctx.upload_coefficients(&limbs, &basis)?,
            level,
            scale,
            slots,
            params_id: ctx.params().id(),
        })
    }

    /// Encodes real values (imaginary parts zero).
    pub fn encode_real(&self, values: &[f64], level: usize, scale: f64) -> Result<Plaintext> {
        let complex: Vec<Complex> = values.iter().map(|&v| Complex::from(v)).collect();
        self.encode_complex(&complex, level, scale)
    }

    /// Decodes a plaintext into its slot values.
    pub fn decode(&self, pt: &Plaintext) -> Result<Vec<Complex>> {
        let ctx = &self.ctx;
        ctx.check_params("decode", pt.params_id)?;
        ctx.check_level("decode", pt.level)?;
        let basis = ctx.ring().q_basis(pt.level);
        let n = ctx.n();
        let mut coeff = ctx.duplicate(&pt.poly, n * basis.len())?;
        ctx.backend().ntt_inverse(ctx.ring(), &mut coeff, &basis)?;
        let limbs = ctx.backend().download(&coeff, n * basis.len())?;
        let values = crt_to_f64(ctx, &limbs, pt.level);
        let unscaled: Vec<f64> = values.iter().map(|v| v / pt.scale).collect();
        self.embedding(pt.slots)?.coefficients_to_slots(&unscaled)
    }
}

/// Centered integer value of each coefficient (given by its residues at
/// `level`), as the nearest `f64`. Exact mixed-radix CRT (Garner).
fn crt_to_f64(ctx: &CkksContext, limbs: &[u64], level: usize) -> Vec<f64> {
    let n = ctx.n();
    let moduli = &ctx.ring().moduli()[..=level];
    // inv[i][j] = q_j^{-1} mod q_i for j < i, with its Shoup companion.
    let inv: Vec<Vec<(u64, u64)>> = (0..=level)
        .map(|i| {
            (0..i)
                .map(|j| {
                    let w = moduli[i].inv(moduli[j].value()).unwrap_or(0);
                    (w, moduli[i].shoup(w))
                })
                .collect()
        })
        .collect();
    // Mixed-radix digits of (Q-1)/2, most significant first when compared.
    let half: Vec<u64> = {
        let mut d = vec![0u64; level + 1];
        let mut rem = 0u128;
        for i in (0..=level).rev() {
            let q = moduli[i].value() as u128;
            let cur = rem * q + (q - 1);
            d[i] = (cur / 2) as u64;
            rem = cur % 2;
        }
        d
    };
    (0..n)
        .into_par_iter()
        .map(|c| {
            let mut v = vec![0u64; level + 1];
            for i in 0..=level {
                let m = moduli[i];
                let mut t = limbs[i * n + c];
                for (&v_j, &(w, w_shoup)) in v.iter().zip(&inv[i]) {
                    t = m.mul_shoup(m.sub(t, m.reduce(v_j)), w, w_shoup);
                }
                v[i] = t;
            }
            let negative = v
                .iter()
                .rev()
                .zip(half.iter().rev())
                .find(|(a, b)| a != b)
                .is_some_and(|(a, b)| a > b);
            if negative {
                // Q - x = (Q - 1 - x) + 1, digit-wise without borrow, then carry the +1.
                let mut carry = 1u64;
                for i in 0..=level {
                    let q = moduli[i].value();
                    let d = q - 1 - v[i] + carry;
                    if d == q {
                        v[i] = 0;
                    } else {
                        v[i] = d;
                        carry = 0;
                    }
                }
            }
            let magnitude = (0..=level)
                .rev()
                .fold(0f64, |acc, i| acc * moduli[i].value() as f64 + v[i] as f64);
            if negative {
                -magnitude
            } else {
                magnitude
            }
        })
        .collect()
}
