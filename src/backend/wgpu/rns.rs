//! Recording the RNS building blocks shared by several primitives: batched
//! NTTs of chosen limbs, and the steps of base conversion (source scaling,
//! the centered overflow, the conversion itself, the final
//! subtract-and-scale, the centered lift of one limb to others: rescale's
//! last limb, ModRaise's limb 0).
//!
//! Each function records dispatches into a [`Recorder`]; none submits.
//! Limbs are named by `(position, global modulus index)` pairs: the limb at
//! `position` of a buffer, reduced modulo `ring.moduli()[g]`. Every word
//! these kernels write is fully reduced (see `kernels/wgsl/`).

use super::recorder::{Record, Recorder};
use super::shaders::Kernel;
use super::tables::{ConversionOffsets, RingTables};
use crate::error::Result;
use crate::ring::{BaseConversion, RingContext};

/// Forward (or inverse) NTT of the limbs `(position, g)` of `poly`, all
/// limbs batched in each stage's dispatch.
pub(crate) fn ntt(
    rec: &mut Recorder<'_>,
    ring: &RingContext,
    tables: &RingTables,
    poly: &wgpu::Buffer,
    limbs: &[(usize, usize)],
    forward: bool,
) -> Result<()> {
    let n = rec.n();
    let records: Vec<Record> = limbs
        .iter()
        .map(|&(pos, g)| {
            let m = &ring.moduli()[g];
            Record::modulus(m)
                .constant(m, ring.ntt(g).n_inv())
                .pos(pos)
                .aux(g)
        })
        .collect();
    // Forward: m = 1, 2, .., N/2; inverse: m = N/2, .., 1.
    let mut stages: Vec<u64> = (0..ring.log_n()).map(|s| 1u64 << s).collect();
    let (kernel, twiddles) = if forward {
        (Kernel::NttForwardStage, &tables.forward)
    } else {
        stages.reverse();
        (Kernel::NttInverseStage, &tables.inverse)
    };
    for m in stages {
        rec.dispatch(
            kernel,
            &[m],
            &records,
            limbs.len(),
            n / 2,
            &[(1, twiddles), (2, poly)],
        )?;
    }
    if !forward {
        rec.dispatch(
            Kernel::NttInverseScale,
            &[],
            &records,
            limbs.len(),
            n,
            &[(2, poly)],
        )?;
    }
    Ok(())
}

/// `scaled[s] = input[positions[s]] · (Q_S/q_s)^{-1} mod q_s` for every
/// source limb s of `conv`.
pub(crate) fn scale_sources(
    rec: &mut Recorder<'_>,
    ring: &RingContext,
    conv: &BaseConversion,
    input: &wgpu::Buffer,
    positions: &[usize],
    scaled: &wgpu::Buffer,
) -> Result<()> {
    let records: Vec<Record> = conv
        .source
        .iter()
        .zip(&conv.source_hat_inv)
        .zip(positions)
        .map(|((&g, &w), &pos)| {
            let m = &ring.moduli()[g];
            Record::modulus(m).constant(m, w).pos(pos)
        })
        .collect();
    let n = rec.n();
    rec.dispatch(
        Kernel::ScaleSources,
        &[],
        &records,
        records.len(),
        n,
        &[(2, input), (4, scaled)],
    )
}

/// `overflow = (Σ_s ((y_s · floor(2^128/q_s)) >> 64) + 2^63) >> 64` per
/// coefficient, from the scaled source limbs.
pub(crate) fn centered_overflows(
    rec: &mut Recorder<'_>,
    tables: &RingTables,
    conv: &BaseConversion,
    offsets: ConversionOffsets,
    scaled: &wgpu::Buffer,
    overflow: &wgpu::Buffer,
) -> Result<()> {
    let n = rec.n();
    rec.dispatch(
        Kernel::CenteredOverflows,
        &[conv.source.len() as u64, offsets.fractions],
        &[],
        1,
        n,
        &[(1, &tables.conversions), (2, scaled), (4, overflow)],
    )
}

/// Base conversion into `targets`, `(row of conv.target, position in out)`
/// pairs: `out[pos] = Σ_s y_s · (Q_S/q_s mod t) (− v·Q_S with the overflow
/// v when given) mod t`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn convert(
    rec: &mut Recorder<'_>,
    ring: &RingContext,
    tables: &RingTables,
    conv: &BaseConversion,
    offsets: ConversionOffsets,
    scaled: &wgpu::Buffer,
    overflow: Option<&wgpu::Buffer>,
    targets: &[(usize, usize)],
    out: &wgpu::Buffer,
) -> Result<()> {
    let records: Vec<Record> = targets
        .iter()
        .map(|&(row, pos)| {
            let m = &ring.moduli()[conv.target[row]];
            Record::modulus(m)
                .word(conv.neg_source_product_mod_target[row])
                .pos(pos)
                .aux(row)
        })
        .collect();
    let n = rec.n();
    rec.dispatch(
        Kernel::Convert,
        &[
            conv.source.len() as u64,
            offsets.hats,
            u64::from(overflow.is_some()),
        ],
        &records,
        records.len(),
        n,
        &[
            (1, &tables.conversions),
            (2, scaled),
            // Without correction the binding is unused; any buffer will do.
            (3, overflow.unwrap_or(scaled)),
            (4, out),
        ],
    )
}

/// `out[i] = (x[i] − out[i]) · inverses[i] mod q_i` on limbs `0..inverses.len()`
/// (limb i reduced modulo global modulus i).
pub(crate) fn subtract_then_scale(
    rec: &mut Recorder<'_>,
    ring: &RingContext,
    x: &wgpu::Buffer,
    out: &wgpu::Buffer,
    inverses: &[u64],
) -> Result<()> {
    let records: Vec<Record> = inverses
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let m = &ring.moduli()[i];
            Record::modulus(m).constant(m, w).pos(i)
        })
        .collect();
    let n = rec.n();
    rec.dispatch(
        Kernel::SubtractThenScale,
        &[],
        &records,
        records.len(),
        n,
        &[(2, x), (4, out)],
    )
}

/// `out[i] = r mod q_i` for limbs `i < targets` (limb i reduced modulo
/// global modulus i), r the centered residue of `src` (one limb,
/// coefficient domain, reduced modulo q_source) in (−q_source/2, q_source/2].
pub(crate) fn lift_centered(
    rec: &mut Recorder<'_>,
    ring: &RingContext,
    source: usize,
    src: &wgpu::Buffer,
    targets: usize,
    out: &wgpu::Buffer,
) -> Result<()> {
    let q_src = ring.moduli()[source].value();
    let records: Vec<Record> = (0..targets)
        .map(|i| Record::modulus(&ring.moduli()[i]).pos(i))
        .collect();
    let n = rec.n();
    rec.dispatch(
        Kernel::LiftCentered,
        &[q_src, q_src / 2],
        &records,
        targets,
        n,
        &[(2, src), (4, out)],
    )
}
