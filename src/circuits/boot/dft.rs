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
//! Each stage is a [`LinearTransform`] with the three diagonals `0`, `len/2`
//! and `n − len/2` (two when `len = n`). Level collapsing multiplies runs of
//! consecutive stages into one transform per level ([`group`]): a run of `g`
//! stages has at most `2^(g+1) − 1` diagonals.
//!
//! * SlotToCoeff applies `S_2` first and `S_n` last: from slots holding
//!   `bitrev(u)` to a plaintext whose packed coefficients are `u`.
//! * CoeffToSlot applies the inverse stages `S_n^{-1}` first and `S_2^{-1}`
//!   last: from a plaintext with packed coefficients `u` to slots holding
//!   `bitrev(u)`. The bit reversal is never applied: the slot-wise EvalMod
//!   in between does not care about the order.

use crate::circuits::linear::LinearTransform;
use crate::error::{Error, Result};
use crate::math::Complex;

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

/// The stage on blocks of `len` of `slots` slots from the two coefficients of each row: `(on the row's own slot, on its
/// partner len/2 away)`, given the row's position `p` in its block.
fn butterfly_matrix(
    slots: usize,
    len: usize,
    row_coefficients: impl Fn(usize) -> (Complex, Complex),
) -> Result<LinearTransform> {
    if !slots.is_power_of_two() || !len.is_power_of_two() || len < 2 || len > slots {
        return Err(Error::InvalidParameters(format!(
            "DFT stage of length {len} on {slots} slots: both must be powers of two with 2 <= len <= slots"
        )));
    }
    let half = len / 2;
    let mut own = vec![Complex::ZERO; slots];
    let mut up = vec![Complex::ZERO; slots];
    let mut down = vec![Complex::ZERO; slots];
    for row in 0..slots {
        let p = row % len;
        let (diagonal, partner) = row_coefficients(p);
        own[row] = diagonal;
        if p < half {
            up[row] = partner;
        } else {
            down[row] = partner;
        }
    }
    let half = half as i64;
    if len == slots {
        // The partner is half the slots away either way: one diagonal.
        let both = up.iter().zip(&down).map(|(&u, &d)| u + d).collect();
        LinearTransform::from_diagonals(slots, [(0, own), (half, both)])
    } else {
        LinearTransform::from_diagonals(slots, [(0, own), (half, up), (-half, down)])
    }
}

/// The butterfly stage `S_len` on `slots` slots (see the module docs).
pub fn stage(slots: usize, len: usize) -> Result<LinearTransform> {
    let w = stage_twiddles(len);
    let one = Complex::new(1.0, 0.0);
    let half = len / 2;
    butterfly_matrix(slots, len, |p| {
        if p < half {
            (one, w[p])
        } else {
            (-w[p - half], one)
        }
    })
}

/// The inverse stage `S_len^{-1}`: `in[b+j] = (out[b+j] + out[b+j+len/2])/2`,
/// `in[b+j+len/2] = (out[b+j] − out[b+j+len/2])·conj(w_j)/2`.
pub fn inverse_stage(slots: usize, len: usize) -> Result<LinearTransform> {
    let w = stage_twiddles(len);
    let half_one = Complex::new(0.5, 0.0);
    let half = len / 2;
    butterfly_matrix(slots, len, |p| {
        if p < half {
            (half_one, half_one)
        } else {
            let c = w[p - half].conj().scale(0.5);
            (-c, c)
        }
    })
}

/// The stage lengths `2, 4, .., slots`.
fn stage_lengths(slots: usize) -> Result<Vec<usize>> {
    if slots < 2 || !slots.is_power_of_two() {
        return Err(Error::InvalidParameters(format!(
            "homomorphic DFT on {slots} slots: the slot count must be a power of two, at least 2"
        )));
    }
    Ok((1..=slots.trailing_zeros()).map(|s| 1usize << s).collect())
}

/// The stages of SlotToCoeff in the order they apply: `S_2, S_4, .., S_n`.
pub fn slot_to_coeff_stages(slots: usize) -> Result<Vec<LinearTransform>> {
    stage_lengths(slots)?
        .into_iter()
        .map(|len| stage(slots, len))
        .collect()
}

/// The stages of CoeffToSlot in the order they apply: `S_n^{-1}, .., S_2^{-1}`.
pub fn coeff_to_slot_stages(slots: usize) -> Result<Vec<LinearTransform>> {
    stage_lengths(slots)?
        .into_iter()
        .rev()
        .map(|len| inverse_stage(slots, len))
        .collect()
}

/// Level collapsing: `stages` (in the order they apply) multiplied into
/// `levels` transforms of consecutive stages, as even as possible (the
/// earlier groups one stage longer), each to be evaluated at one level.
pub fn group(stages: &[LinearTransform], levels: usize) -> Result<Vec<LinearTransform>> {
    if levels == 0 || levels > stages.len() {
        return Err(Error::InvalidParameters(format!(
            "cannot collapse {} DFT stages into {levels} levels",
            stages.len()
        )));
    }
    let (base, extra) = (stages.len() / levels, stages.len() % levels);
    let mut rest = stages;
    (0..levels)
        .map(|g| {
            let (run, tail) = rest.split_at(base + usize::from(g < extra));
            rest = tail;
            run[1..]
                .iter()
                .try_fold(run[0].clone(), |product, next| next.compose(&product))
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
                v[if bits == 0 {
                    0
                } else {
                    i.reverse_bits() >> (usize::BITS - bits)
                }]
            })
            .collect()
    }

    fn max_diff(a: &[Complex], b: &[Complex]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x - *y).abs())
            .fold(0.0, f64::max)
    }

    /// Random coefficients at the multiples of the gap: their packed form
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

    fn run(transforms: &[LinearTransform], v: Vec<Complex>) -> Vec<Complex> {
        transforms.iter().fold(v, |v, t| t.apply_plain(&v).unwrap())
    }

    #[test]
    fn slot_to_coeff_reproduces_the_embedding() {
        for (log_n, slots) in [(4, 8), (10, 512), (10, 64), (11, 1024), (6, 2)] {
            let (u, z) = case(log_n, slots, 7 + slots as u64);
            let stages = slot_to_coeff_stages(slots).unwrap();
            assert!(stages.iter().all(|s| s.diagonals().len() <= 3));
            let err = max_diff(&run(&stages, bitrev(&u)), &z);
            assert!(
                err < 1e-12 * slots as f64,
                "log_n {log_n} slots {slots}: {err:e}"
            );
        }
    }

    #[test]
    fn coeff_to_slot_inverts_it() {
        for (log_n, slots) in [(4, 8), (10, 512), (11, 1024), (6, 2)] {
            let (u, z) = case(log_n, slots, 3 + slots as u64);
            let err = max_diff(&run(&coeff_to_slot_stages(slots).unwrap(), z), &bitrev(&u));
            assert!(
                err < 1e-12 * slots as f64,
                "log_n {log_n} slots {slots}: {err:e}"
            );
        }
    }

    #[test]
    fn level_collapsing_keeps_the_map_and_bounds_the_diagonals() {
        let slots = 256;
        let (u, z) = case(9, slots, 11);
        let stages = slot_to_coeff_stages(slots).unwrap();
        for levels in 1..=stages.len() {
            let grouped = group(&stages, levels).unwrap();
            assert_eq!(grouped.len(), levels);
            let longest = stages.len().div_ceil(levels) as u32;
            for g in &grouped {
                assert!(g.diagonals().len() < 1 << (longest + 1), "{levels} levels");
            }
            let err = max_diff(&run(&grouped, bitrev(&u)), &z);
            assert!(err < 1e-10, "{levels} levels: {err:e}");
        }
    }

    #[test]
    fn rejects_bad_sizes() {
        assert!(stage(12, 4).is_err());
        assert!(stage(16, 1).is_err());
        assert!(stage(16, 32).is_err());
        assert!(slot_to_coeff_stages(1).is_err());
        assert!(coeff_to_slot_stages(6).is_err());
        let stages = slot_to_coeff_stages(8).unwrap();
        assert!(group(&stages, 0).is_err());
        assert!(group(&stages, 4).is_err());
    }
}
