//! The optimizer's compact view of a stack of dense layers with encrypted
//! weights (the head's, or a layer's under full fine-tuning).
//!
//! [`EncryptedDense`](crate::tensor::EncryptedDense)'s layout keeps a
//! weight as `g·h·P` ciphertexts of `P` interleaved blocks (block `b` in
//! the slots `≡ b (mod P)`), and a small weight leaves most blocks empty:
//! the head's `384 × 32` bottleneck fills 12 blocks of 16 ciphertexts. The
//! forward and backward passes need that layout; the optimizer, slot by
//! slot, does not, and its cost is per ciphertext. The compact view packs
//! each tensor's occupied blocks into `⌈blocks/P⌉` ciphertexts: a block
//! moves from position `b` of expanded ciphertext `i` to position `b'` of
//! compact ciphertext `c` by a rotation of `b − b'` slots (an entry keeps
//! its place within the block) and a 0/1 mask of position `b'`. A block
//! keeps its own position where the count allows (no rotation); a tensor
//! that would not shrink is left as it is (no operation).
//!
//! Both directions ([`CompactPacking::compress`],
//! [`CompactPacking::expand`]) take one level (the masks' product) and
//! rotations within `(−P, P)`, which the encrypted dense products' keys
//! already hold (their block shifts). Expanding gives zeros in the empty
//! blocks (the layout's padding); compressing drops whatever the empty
//! blocks held.

use std::collections::HashMap;

use crate::circuits::refresh::Refresh;
use crate::ckks::{Ciphertext, Encoder, Evaluator, Plaintext};
use crate::error::{Error, Result};
use crate::math::Complex;

const OP: &str = "compact packing";

/// A block's place: `(ciphertext, position)`.
type Place = (usize, usize);

/// A block's move: `(from, to)`.
type Move = (Place, Place);

/// One block's two places.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BlockMove {
    /// In the expanded layout.
    expanded: Place,
    /// In the compact view.
    compact: Place,
}

/// One tensor's packing.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TensorPacking {
    expanded: usize,
    compact: usize,
    /// Empty when the tensor is left as it is.
    moves: Vec<BlockMove>,
}

/// The compact view of a stack of tensors (each its own ciphertexts, in
/// order).
///
/// Invariants: every tensor's moves are a bijection between its occupied
/// expanded blocks and distinct compact blocks of `compact` ciphertexts;
/// a tensor without moves has `compact == expanded`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactPacking {
    blocks: usize,
    slots: usize,
    tensors: Vec<TensorPacking>,
}

impl CompactPacking {
    /// The packing of tensors whose expanded ciphertexts hold, for
    /// `occupied[t][i]`, the slot vector of an all-ones tensor `t` in a
    /// layout of `slots` slots in `blocks` interleaved blocks (a block is
    /// occupied where any of its slots is non-zero).
    ///
    /// Errors: no block, a slot count that is not a multiple of the
    /// blocks, slot vectors of another length.
    pub fn new(blocks: usize, slots: usize, occupied: &[Vec<Vec<Complex>>]) -> Result<Self> {
        if blocks == 0 || blocks > 64 || slots % blocks != 0 {
            return Err(Error::InvalidParameters(format!(
                "{OP}: {blocks} blocks (1 to 64) must divide {slots} slots"
            )));
        }
        let tensors = occupied
            .iter()
            .map(|cts| {
                let mut used = Vec::new();
                for (i, ct) in cts.iter().enumerate() {
                    Error::check_length(OP, ct.len(), slots)?;
                    for b in 0..blocks {
                        if ct.iter().skip(b).step_by(blocks).any(|z| z.abs() > 0.0) {
                            used.push((i, b));
                        }
                    }
                }
                Ok(pack(cts.len(), blocks, &used))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            blocks,
            slots,
            tensors,
        })
    }

    /// The expanded ciphertexts of every tensor together.
    pub fn expanded_count(&self) -> usize {
        self.tensors.iter().map(|t| t.expanded).sum()
    }

    /// The compact ciphertexts of every tensor together.
    pub fn compact_count(&self) -> usize {
        self.tensors.iter().map(|t| t.compact).sum()
    }

    /// The tensor (its index in the stack) of each compact ciphertext.
    pub fn compact_tensors(&self) -> Vec<usize> {
        self.tensors
            .iter()
            .enumerate()
            .flat_map(|(t, packing)| std::iter::repeat_n(t, packing.compact))
            .collect()
    }

    /// The rotations both directions use.
    pub fn rotations(&self) -> Vec<i64> {
        let mut steps: Vec<i64> = self
            .tensors
            .iter()
            .flat_map(|t| &t.moves)
            .map(|m| m.expanded.1 as i64 - m.compact.1 as i64)
            .filter(|&k| k != 0)
            .flat_map(|k| [k, -k])
            .collect();
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    /// The compact slot vectors of expanded ones (the client's packing, in
    /// the clear).
    ///
    /// Errors: another count or length than the packing's.
    pub fn compress_slots(&self, expanded: &[Vec<Complex>]) -> Result<Vec<Vec<Complex>>> {
        self.move_slots(expanded, Direction::Compress)
    }

    /// The expanded slot vectors of compact ones (in the clear), zero in
    /// the empty blocks.
    ///
    /// Errors: another count or length than the packing's.
    pub fn expand_slots(&self, compact: &[Vec<Complex>]) -> Result<Vec<Vec<Complex>>> {
        self.move_slots(compact, Direction::Expand)
    }

    /// The compact ciphertexts of expanded ones (values up to `bound`,
    /// refreshed by `refresher` where they lack the level), at the
    /// default scale.
    ///
    /// Errors: another count than the packing's, the operations' errors.
    pub fn compress(
        &self,
        ev: &Evaluator,
        encoder: &Encoder,
        (expanded, bound): (&[Ciphertext], f64),
        refresher: &mut dyn Refresh,
    ) -> Result<Vec<Ciphertext>> {
        self.move_cts(
            ev,
            encoder,
            (expanded, bound),
            refresher,
            Direction::Compress,
        )
    }

    /// The expanded ciphertexts of compact ones (as
    /// [`compress`](Self::compress)), zero in the empty blocks.
    ///
    /// Errors: another count than the packing's, the operations' errors.
    pub fn expand(
        &self,
        ev: &Evaluator,
        encoder: &Encoder,
        (compact, bound): (&[Ciphertext], f64),
        refresher: &mut dyn Refresh,
    ) -> Result<Vec<Ciphertext>> {
        self.move_cts(ev, encoder, (compact, bound), refresher, Direction::Expand)
    }

    /// Per tensor: `(source count, target count, moves as
    /// ((source, position), (target, position)))` in `direction`.
    #[allow(clippy::type_complexity)]
    fn plans(
        &self,
        direction: Direction,
    ) -> Vec<(usize, usize, Vec<((usize, usize), (usize, usize))>)> {
        self.tensors
            .iter()
            .map(|t| {
                let moves = t.moves.iter().map(|m| match direction {
                    Direction::Compress => (m.expanded, m.compact),
                    Direction::Expand => (m.compact, m.expanded),
                });
                match direction {
                    Direction::Compress => (t.expanded, t.compact, moves.collect()),
                    Direction::Expand => (t.compact, t.expanded, moves.collect()),
                }
            })
            .collect()
    }

    fn check_count(&self, got: usize, direction: Direction) -> Result<()> {
        let expected = match direction {
            Direction::Compress => self.expanded_count(),
            Direction::Expand => self.compact_count(),
        };
        Error::check_length(OP, got, expected)
    }

    fn move_slots(
        &self,
        sources: &[Vec<Complex>],
        direction: Direction,
    ) -> Result<Vec<Vec<Complex>>> {
        self.check_count(sources.len(), direction)?;
        for source in sources {
            Error::check_length(OP, source.len(), self.slots)?;
        }
        let mut out = Vec::new();
        let mut start = 0;
        for (count, targets, moves) in self.plans(direction) {
            let tensor = &sources[start..start + count];
            start += count;
            if moves.is_empty() {
                out.extend(tensor.iter().cloned());
                continue;
            }
            let mut moved = vec![vec![Complex::new(0.0, 0.0); self.slots]; targets];
            for ((source, from), (target, to)) in moves {
                for cell in 0..self.slots / self.blocks {
                    moved[target][cell * self.blocks + to] =
                        tensor[source][cell * self.blocks + from];
                }
            }
            out.extend(moved);
        }
        Ok(out)
    }

    fn move_cts(
        &self,
        ev: &Evaluator,
        encoder: &Encoder,
        (sources, bound): (&[Ciphertext], f64),
        refresher: &mut dyn Refresh,
        direction: Direction,
    ) -> Result<Vec<Ciphertext>> {
        self.check_count(sources.len(), direction)?;
        let mut sources = sources
            .iter()
            .map(Ciphertext::try_clone)
            .collect::<Result<Vec<_>>>()?;
        let plans = self.plans(direction);
        // Only the tensors that move need a level: refreshed in place, in
        // one call.
        let mut due: Vec<(&mut Ciphertext, f64)> = Vec::new();
        let mut rest = sources.iter_mut();
        for (count, _, moves) in &plans {
            let tensor = rest.by_ref().take(*count);
            if moves.is_empty() {
                tensor.for_each(drop);
            } else {
                due.extend(tensor.map(|ct| (ct, bound)));
            }
        }
        refresher.refresh(ev, &mut due, 1)?;
        let mut masks = MaskCache::new(encoder, self.blocks, self.slots);
        let mut out = Vec::new();
        let mut rest = sources.into_iter();
        for (count, targets, moves) in plans {
            let tensor: Vec<Ciphertext> = rest.by_ref().take(count).collect();
            if moves.is_empty() {
                out.extend(tensor);
            } else {
                out.extend(gather(ev, &mut masks, &tensor, targets, &moves)?);
            }
        }
        Ok(out)
    }
}

/// Which way blocks move.
#[derive(Clone, Copy, Debug)]
enum Direction {
    Compress,
    Expand,
}

/// The moves of one tensor of `expanded` ciphertexts whose occupied blocks
/// are `used` (`(ciphertext, position)`, in order); no move when packing
/// would not save a ciphertext.
fn pack(expanded: usize, blocks: usize, used: &[Place]) -> TensorPacking {
    let compact = used.len().div_ceil(blocks).max(1);
    if compact >= expanded {
        return TensorPacking {
            expanded,
            compact: expanded,
            moves: Vec::new(),
        };
    }
    let mut free = vec![vec![true; blocks]; compact];
    let mut placed: Vec<Option<Place>> = vec![None; used.len()];
    // First at their own position, then anywhere.
    for (k, &(_, b)) in used.iter().enumerate() {
        if let Some(c) = (0..compact).find(|&c| free[c][b]) {
            free[c][b] = false;
            placed[k] = Some((c, b));
        }
    }
    for slot in placed.iter_mut().filter(|p| p.is_none()) {
        let (c, b) = (0..compact)
            .flat_map(|c| (0..blocks).map(move |b| (c, b)))
            .find(|&(c, b)| free[c][b])
            .expect("compact ciphertexts hold every occupied block");
        free[c][b] = false;
        *slot = Some((c, b));
    }
    let moves = used
        .iter()
        .zip(placed)
        .map(|(&expanded, compact)| BlockMove {
            expanded,
            compact: compact.expect("every block placed"),
        })
        .collect();
    TensorPacking {
        expanded,
        compact,
        moves,
    }
}

/// The 0/1 masks of block positions, encoded once per position set, level
/// and scale.
struct MaskCache<'a> {
    encoder: &'a Encoder,
    blocks: usize,
    slots: usize,
    encoded: HashMap<(u64, usize, u64), Plaintext>,
}

impl<'a> MaskCache<'a> {
    fn new(encoder: &'a Encoder, blocks: usize, slots: usize) -> Self {
        Self {
            encoder,
            blocks,
            slots,
            encoded: HashMap::new(),
        }
    }

    /// The mask of the positions in `positions` (a bit per position) at
    /// `level` and `scale`.
    fn get(&mut self, positions: u64, level: usize, scale: f64) -> Result<&Plaintext> {
        let key = (positions, level, scale.to_bits());
        if !self.encoded.contains_key(&key) {
            let values: Vec<f64> = (0..self.slots)
                .map(|x| f64::from(u8::from(positions >> (x % self.blocks) & 1 == 1)))
                .collect();
            let pt = self.encoder.encode_real(&values, level, scale)?;
            self.encoded.insert(key, pt);
        }
        Ok(&self.encoded[&key])
    }
}

/// `targets` ciphertexts, target `t` the sum over its moves of the source
/// rotated by `from − to` and masked to `to`, at the default scale (one
/// level: every term lands at `q_l·Δ` exactly, then one rescale).
fn gather(
    ev: &Evaluator,
    masks: &mut MaskCache<'_>,
    sources: &[Ciphertext],
    targets: usize,
    moves: &[Move],
) -> Result<Vec<Ciphertext>> {
    let level = sources.iter().map(Ciphertext::level).min().unwrap_or(0);
    let prime = ev.context().params().q()[level] as f64;
    let scale = ev.context().params().default_scale();
    // Per target and (source, rotation): the positions it takes.
    let mut terms: Vec<HashMap<(usize, i64), u64>> = vec![HashMap::new(); targets];
    for &((source, from), (target, to)) in moves {
        *terms[target]
            .entry((source, from as i64 - to as i64))
            .or_insert(0) |= 1 << to;
    }
    // Each source's rotations, hoisted.
    let mut rotated: HashMap<(usize, i64), Ciphertext> = HashMap::new();
    for (source, ct) in sources.iter().enumerate() {
        let mut steps: Vec<i64> = terms
            .iter()
            .flat_map(|t| t.keys())
            .filter(|&&(s, _)| s == source)
            .map(|&(_, k)| k)
            .collect();
        steps.sort_unstable();
        steps.dedup();
        if steps.is_empty() {
            continue;
        }
        let mut base = ct.try_clone()?;
        let extra = base.level() - level;
        ev.drop_level_assign(&mut base, extra)?;
        let nonzero: Vec<i64> = steps.iter().copied().filter(|&k| k != 0).collect();
        let turned = if nonzero.is_empty() {
            Vec::new()
        } else {
            ev.rotate_hoisted_new(&base, &nonzero)?
        };
        for (k, ct) in nonzero.into_iter().zip(turned) {
            rotated.insert((source, k), ct);
        }
        if steps.contains(&0) {
            rotated.insert((source, 0), base);
        }
    }
    terms
        .iter()
        .map(|target| {
            let mut sum: Option<Ciphertext> = None;
            // A target without blocks is a zero: any source times the
            // empty mask.
            let parts: Vec<((usize, i64), u64)> = if target.is_empty() {
                let any = *rotated.keys().next().ok_or_else(|| Error::OutOfRange {
                    op: OP,
                    detail: "no block to move".into(),
                })?;
                vec![(any, 0)]
            } else {
                let mut parts: Vec<_> = target.iter().map(|(&k, &p)| (k, p)).collect();
                parts.sort_unstable();
                parts
            };
            for (key, positions) in parts {
                let mut term = rotated[&key].try_clone()?;
                let pt = masks.get(positions, level, prime * scale / term.scale)?;
                ev.mul_plain_assign(&mut term, pt)?;
                term.scale = prime * scale;
                match sum.as_mut() {
                    Some(s) => ev.add_assign(s, &term)?,
                    None => sum = Some(term),
                }
            }
            let mut sum = sum.ok_or_else(|| Error::OutOfRange {
                op: OP,
                detail: "no term".into(),
            })?;
            ev.rescale_assign(&mut sum)?;
            sum.scale = scale;
            Ok(sum)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_keeps_positions_where_it_can_and_round_trips() {
        let slots = 32;
        let one = Complex::new(1.0, 0.0);
        let zero = Complex::new(0.0, 0.0);
        // Tensor 0: five cts with one occupied block each (positions 0, 0,
        // 1, 2, 0): packs into two. Tensor 1: one full ct, left as it is.
        let block = |b: usize| -> Vec<Complex> {
            (0..slots)
                .map(|x| if x % 4 == b { one } else { zero })
                .collect()
        };
        let occupied = vec![
            vec![block(0), block(0), block(1), block(2), block(0)],
            vec![vec![one; slots]],
        ];
        let packing = CompactPacking::new(4, slots, &occupied).unwrap();
        assert!(CompactPacking::new(3, slots, &occupied).is_err());
        assert_eq!(packing.expanded_count(), 6);
        assert_eq!(packing.compact_count(), 3);
        assert_eq!(packing.compact_tensors(), [0, 0, 1]);
        // Two blocks at position 0 keep it; the third moves.
        let moved = packing.tensors[0]
            .moves
            .iter()
            .filter(|m| m.expanded.1 != m.compact.1)
            .count();
        assert_eq!(moved, 1);
        assert!(!packing.rotations().is_empty());
        let values: Vec<Vec<Complex>> = occupied
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, mask)| {
                mask.iter()
                    .enumerate()
                    .map(|(x, z)| *z * Complex::new((i * slots + x) as f64, 0.0))
                    .collect()
            })
            .collect();
        let compact = packing.compress_slots(&values).unwrap();
        assert_eq!(compact.len(), 3);
        assert_eq!(packing.expand_slots(&compact).unwrap(), values);
        assert!(packing.compress_slots(&values[..5]).is_err());
    }
}
