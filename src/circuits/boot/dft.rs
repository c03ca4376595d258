//! The homomorphic DFT of bootstrapping in plain complex arithmetic: the
//! butterfly stages of the encoder's special FFT as sparse matrices in
//! diagonal form, the input of the linear transforms that move a plaintext's
//! coefficients into the slots (CoeffToSlot) and back (SlotToCoeff).
//!
//! # Convention
//!
//! With `n` slots, a plaintext's packed coefficients are
//! `u_i = c_(i·gap) + i·c_((i+n)·gap)` (`0 <= i < n`, see
//! [`crate::ckks::embedding`]) and its slots are `z = S_n ⋯ S_4 S_2 · bitrev(u)`,
//! where `S_len` is the butterfly stage on blocks of `len` slots: for a
//! block starting at `b` and `0 <= j < len/2`, with
//! `w_j = exp(2πi·(5^j mod 4len)/(4len))`,
//!
//! ```text
//! out[b + j]         = in[b + j] + w_j · in[b + j + len/2]
//! out[b + j + len/2] = in[b + j] − w_j · in[b + j + len/2].
//! ```
//!
//! A matrix is kept by its diagonals: diagonal `k` holds `M[i][(i + k) mod n]`
//! for `0 <= i < n`, so that `(M·v)_i = Σ_k d_k[i] · v[(i + k) mod n]`, which
//! is `Σ_k d_k ⊙ rotate_left(v, k)` on slot vectors. Each stage has the three
//! diagonals `0`, `len/2` and `n − len/2` (two when `len = n`).
//!
//! * SlotToCoeff applies `S_2` first and `S_n` last: from slots holding
//!   `bitrev(u)` to a plaintext whose packed coefficients are `u`.
//! * CoeffToSlot applies the inverse stages `S_n^{-1}` first and `S_2^{-1}`
//!   last: from a plaintext with packed coefficients `u` to slots holding
//!   `bitrev(u)`. The bit reversal is never applied: the slot-wise EvalMod
//!   in between does not care about the order.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::math::Complex;

/// A matrix on `n` slots by its non-zero diagonals (see the module docs).
pub type Diagonals = BTreeMap<usize, Vec<Complex>>;

/// `w_j = exp(2πi·(5^j mod 4len)/(4len))` for `0 <= j < len/2`.
fn stage_twiddles(len: usize) -> Vec<Complex> {
    let order = 4 * len;
    let mut power = 1usize;
    (0..len / 2)
        .map(|_| {
            let w = Complex::from_angle(2.0 * std::f64::consts::PI * power as f64 / order as f64);
            power = power * 5 % order;
            w
        })
        .collect()
}

fn check_stage(slots: usize, len: usize) -> Result<()> {
    if !slots.is_power_of_two() || !len.is_power_of_two() || len < 2 || len > slots {
        return Err(Error::InvalidParameters(format!(
            "DFT stage of length {len} on {slots} slots: both must be powers of two with 2 <= len <= slots"
        )));
    }
    Ok(())
}

/// Adds `value` at row `row` of diagonal `k`.
fn put(diagonals: &mut Diagonals, slots: usize, k: usize, row: usize, value: Complex) {
    diagonals
        .entry(k % slots)
        .or_insert_with(|| vec![Complex::ZERO; slots])[row] += value;
}

/// The butterfly stage `S_len` on `slots` slots (see the module docs).
pub fn stage(slots: usize, len: usize) -> Result<Diagonals> {
    check_stage(slots, len)?;
    let half = len / 2;
    let w = stage_twiddles(len);
    let mut d = Diagonals::new();
    for row in 0..slots {
        let p = row % len;
        if p < half {
            put(&mut d, slots, 0, row, Complex::new(1.0, 0.0));
            put(&mut d, slots, half, row, w[p]);
        } else {
            put(&mut d, slots, slots - half, row, Complex::new(1.0, 0.0));
            put(&mut d, slots, 0, row, -w[p - half]);
        }
    }
    Ok(d)
}

/// The inverse stage `S_len^{-1}`: `in[b+j] = (out[b+j] + out[b+j+len/2])/2`,
/// `in[b+j+len/2] = (out[b+j] − out[b+j+len/2])·conj(w_j)/2`.
pub fn inverse_stage(slots: usize, len: usize) -> Result<Diagonals> {
    check_stage(slots, len)?;
    let half = len / 2;
    let w = stage_twiddles(len);
    let mut d = Diagonals::new();
    for row in 0..slots {
        let p = row % len;
        if p < half {
            put(&mut d, slots, 0, row, Complex::new(0.5, 0.0));
            put(&mut d, slots, half, row, Complex::new(0.5, 0.0));
        } else {
            let c = w[p - half].conj().scale(0.5);
            put(&mut d, slots, slots - half, row, c);
            put(&mut d, slots, 0, row, -c);
        }
    }
    Ok(d)
}

/// The stages of SlotToCoeff in the order they apply: `S_2, S_4, .., S_n`.
pub fn slot_to_coeff_stages(slots: usize) -> Result<Vec<Diagonals>> {
    stage_lengths(slots)?.map(|len| stage(slots, len)).collect()
}

/// The stages of CoeffToSlot in the order they apply: `S_n^{-1}, .., S_2^{-1}`.
pub fn coeff_to_slot_stages(slots: usize) -> Result<Vec<Diagonals>> {
    let mut lengths: Vec<usize> = stage_lengths(slots)?.collect();
    lengths.reverse();
    lengths
        .into_iter()
        .map(|len| inverse_stage(slots, len))
        .collect()
}

fn stage_lengths(slots: usize) -> Result<impl Iterator<Item = usize>> {
    if slots == 0 || !slots.is_power_of_two() {
        return Err(Error::InvalidParameters(format!(
            "DFT on {slots} slots: the slot count must be a power of two"
        )));
    }
    Ok((1..=slots.trailing_zeros()).map(|s| 1usize << s))
}

/// `M·v` for a matrix in diagonal form (plain; the reference the encrypted
/// transforms are tested against).
pub fn apply(diagonals: &Diagonals, v: &[Complex]) -> Vec<Complex> {
    let n = v.len();
    (0..n)
        .map(|i| {
            diagonals
                .iter()
                .map(|(&k, d)| d[i] * v[(i + k) % n])
                .fold(Complex::ZERO, |acc, x| acc + x)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::embedding::Embedding;
    use rand::{Rng, SeedableRng};

    fn bitrev(v: &[Complex]) -> Vec<Complex> {
        let bits = v.len().trailing_zeros();
        (0..v.len())
            .map(|i| {
                let r = if bits == 0 {
                    0
                } else {
                    i.reverse_bits() >> (usize::BITS - bits)
                };
                v[r]
            })
            .collect()
    }

    fn max_diff(a: &[Complex], b: &[Complex]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x - *y).abs())
            .fold(0.0, f64::max)
    }

    /// Random coefficients at the multiples of the gap, their packed form
    /// `u` and the embedding's slots.
    fn case(log_n: u32, slots: usize, seed: u64) -> (Vec<Complex>, Vec<Complex>) {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let emb = Embedding::new(log_n, slots).unwrap();
        let n_ring = 1usize << log_n;
        let gap = n_ring / (2 * slots);
        let mut coeffs = vec![0.0; n_ring];
        for i in 0..2 * slots {
            coeffs[i * gap] = rng.random_range(-1.0..1.0);
        }
        let u = (0..slots)
            .map(|i| Complex::new(coeffs[i * gap], coeffs[(i + slots) * gap]))
            .collect();
        (u, emb.coefficients_to_slots(&coeffs).unwrap())
    }

    #[test]
    fn slot_to_coeff_stages_reproduce_the_embedding() {
        for (log_n, slots) in [(4, 8), (10, 512), (10, 64), (11, 1024), (6, 2), (6, 1)] {
            let (u, z) = case(log_n, slots, 7 + slots as u64);
            let mut v = bitrev(&u);
            for s in slot_to_coeff_stages(slots).unwrap() {
                assert!(s.len() <= 3);
                v = apply(&s, &v);
            }
            let err = max_diff(&v, &z);
            assert!(
                err < 1e-12 * slots as f64,
                "log_n {log_n} slots {slots}: {err:e}"
            );
        }
    }

    #[test]
    fn coeff_to_slot_stages_invert_them() {
        for (log_n, slots) in [(4, 8), (10, 512), (11, 1024), (6, 2)] {
            let (u, z) = case(log_n, slots, 3 + slots as u64);
            let mut v = z;
            for s in coeff_to_slot_stages(slots).unwrap() {
                v = apply(&s, &v);
            }
            let err = max_diff(&v, &bitrev(&u));
            assert!(
                err < 1e-12 * slots as f64,
                "log_n {log_n} slots {slots}: {err:e}"
            );
        }
    }

    #[test]
    fn rejects_bad_sizes() {
        assert!(stage(12, 4).is_err());
        assert!(stage(16, 1).is_err());
        assert!(stage(16, 32).is_err());
        assert!(slot_to_coeff_stages(0).is_err());
        assert!(coeff_to_slot_stages(6).is_err());
    }
}
