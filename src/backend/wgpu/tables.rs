//! Device copies of a parameter set's constant tables, uploaded once per
//! backend and parameter set (keyed by `Parameters::id`), and of automorphism
//! permutations (keyed by parameter id and Galois element).
//!
//! Layouts (words):
//! - `forward`, `inverse`: for every global modulus g and `0 <= k < N`,
//!   `[2(g·N + k)]` the twiddle (`NttTable::forward_twiddles()[k]`, resp.
//!   `inverse_twiddles()[k]`) and `[2(g·N + k) + 1]` its Shoup companion.
//! - `conversions`: for every base conversion of the ring (ModUp per level
//!   and digit, ModDown, ModDown-rescale per level), its `[target][source]`
//!   matrix `(Q_S/q_s) mod t` at `hats` and its `floor(2^128/q_s)` fractions
//!   as (low, high) word pairs at `fractions` ([`ConversionOffsets`]).
//! - permutations: N `u32` indices.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::device::{backend_error, Gpu};
use crate::error::Result;
use crate::ring::{BaseConversion, RingContext};

/// Where one base conversion's constants start in the conversion table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConversionOffsets {
    /// First word of the `[target][source]` matrix.
    pub(crate) hats: u64,
    /// First word of the fraction pairs.
    pub(crate) fractions: u64,
}

/// The device tables of one parameter set.
#[derive(Debug)]
pub(crate) struct RingTables {
    pub(crate) forward: wgpu::Buffer,
    pub(crate) inverse: wgpu::Buffer,
    pub(crate) conversions: wgpu::Buffer,
    mod_up: Vec<Vec<ConversionOffsets>>,
    mod_down: ConversionOffsets,
    mod_down_rescale: Vec<Option<ConversionOffsets>>,
}

/// Appends a conversion's constants to `table`.
fn append(table: &mut Vec<u64>, conv: &BaseConversion) -> ConversionOffsets {
    let hats = table.len() as u64;
    table.extend_from_slice(&conv.source_hat_mod_target);
    let fractions = table.len() as u64;
    for &f in &conv.source_fraction {
        table.extend_from_slice(&[f as u64, (f >> 64) as u64]);
    }
    ConversionOffsets { hats, fractions }
}

/// Twiddles and their Shoup companions of every modulus, interleaved.
fn twiddle_table(ring: &RingContext, forward: bool) -> Vec<u64> {
    let n = ring.n();
    let mut table = Vec::with_capacity(2 * n * ring.moduli().len());
    for g in 0..ring.moduli().len() {
        let ntt = ring.ntt(g);
        let (w, w_shoup) = if forward {
            (ntt.forward_twiddles(), ntt.forward_twiddles_shoup())
        } else {
            (ntt.inverse_twiddles(), ntt.inverse_twiddles_shoup())
        };
        for (&a, &b) in w.iter().zip(w_shoup) {
            table.extend_from_slice(&[a, b]);
        }
    }
    table
}

impl RingTables {
    fn build(gpu: &Gpu, ring: &RingContext) -> Result<Self> {
        let mut table = Vec::new();
        let mod_up = (0..ring.num_q())
            .map(|level| {
                (0..ring.params().digits_at_level(level))
                    .map(|j| Ok(append(&mut table, ring.mod_up(level, j)?)))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let mod_down = append(&mut table, ring.mod_down());
        let mod_down_rescale = (0..ring.num_q())
            .map(|level| match level {
                0 => Ok(None),
                _ => Ok(Some(append(&mut table, ring.mod_down_rescale(level)?.0))),
            })
            .collect::<Result<Vec<_>>>()?;
        let forward = twiddle_table(ring, true);
        let inverse = twiddle_table(ring, false);
        gpu.scoped("ring tables", || {
            Ok(Self {
                forward: gpu.upload_words("forward twiddles", &forward)?,
                inverse: gpu.upload_words("inverse twiddles", &inverse)?,
                conversions: gpu.upload_words("conversion table", &table)?,
                mod_up,
                mod_down,
                mod_down_rescale,
            })
        })
    }

    /// The ModUp conversion of `digit` at `level`.
    pub(crate) fn mod_up(&self, level: usize, digit: usize) -> Result<ConversionOffsets> {
        self.mod_up
            .get(level)
            .and_then(|d| d.get(digit))
            .copied()
            .ok_or_else(|| {
                backend_error(format!("no ModUp table for digit {digit} at level {level}"))
            })
    }

    /// The ModDown conversion (from P to Q).
    pub(crate) fn mod_down(&self) -> ConversionOffsets {
        self.mod_down
    }

    /// The fused ModDown-rescale conversion at `level >= 1`.
    pub(crate) fn mod_down_rescale(&self, level: usize) -> Result<ConversionOffsets> {
        self.mod_down_rescale
            .get(level)
            .copied()
            .flatten()
            .ok_or_else(|| backend_error(format!("no ModDown-rescale table at level {level}")))
    }
}

/// The tables of every parameter set and permutation used so far.
#[derive(Debug, Default)]
pub(crate) struct TableCache {
    rings: Mutex<HashMap<u64, Arc<RingTables>>>,
    permutations: Mutex<HashMap<(u64, u64), wgpu::Buffer>>,
}

impl TableCache {
    /// The tables of `ring`'s parameter set, uploaded on first use.
    pub(crate) fn ring(&self, gpu: &Gpu, ring: &RingContext) -> Result<Arc<RingTables>> {
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        let id = ring.params().id();
        if let Some(t) = rings.get(&id) {
            return Ok(t.clone());
        }
        let tables = Arc::new(RingTables::build(gpu, ring)?);
        rings.insert(id, tables.clone());
        Ok(tables)
    }

    /// The evaluation-domain permutation of `X -> X^galois_element`,
    /// uploaded on first use (an invalid element is an error).
    pub(crate) fn permutation(
        &self,
        gpu: &Gpu,
        ring: &RingContext,
        galois_element: u64,
    ) -> Result<wgpu::Buffer> {
        let perm = ring.automorphism_permutation(galois_element)?;
        let key = (ring.params().id(), galois_element);
        let mut permutations = self.permutations.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = permutations.get(&key) {
            return Ok(b.clone());
        }
        let buffer = gpu.scoped("automorphism", || {
            gpu.upload_bytes("permutation", bytemuck::cast_slice(perm.as_slice()))
        })?;
        permutations.insert(key, buffer.clone());
        Ok(buffer)
    }
}
