//! How the fused NTT kernels (`ntt_forward_phase`, `ntt_inverse_phase` in
//! `kernels/cuda/ntt.cu`) split the log N butterfly stages into launches.
//!
//! Invariants of a plan: its phases cover the stages `0..log_n` in order,
//! without gaps; every phase's tile (`2^(stages + log_group)` words) holds at
//! most [`TILE_WORDS_LOG`] words and its group count never exceeds the stride
//! between its words (`log_group <= log_stride`); the last phase works on
//! contiguous words (`log_group == 0`, stride 1). For N = 2^16 the plan is
//! two launches: stages 0..5 in 64 groups of 32 words, then 11 stages on
//! contiguous 2048-word tiles.

/// log2 of the most words a block holds in shared memory (16 KiB).
pub(crate) const TILE_WORDS_LOG: u32 = 11;
/// Most stages of a non-final phase, so that its groups (at least 8 words
/// wide) keep global accesses in 64-byte runs.
const MAX_LEADING_STAGES: u32 = TILE_WORDS_LOG - 3;
/// Most threads per block of a phase.
const PHASE_THREADS: u32 = 256;

/// One launch of a fused NTT kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Phase {
    /// The first Cooley–Tukey stage (m = 2^first_stage).
    pub first_stage: u32,
    /// How many consecutive stages the launch performs.
    pub stages: u32,
    /// log2 of the groups a block holds.
    pub log_group: u32,
}

impl Phase {
    /// log2 of the distance between consecutive words of a group.
    pub fn log_stride(&self, log_n: u32) -> u32 {
        log_n - self.first_stage - self.stages
    }

    /// Blocks per limb.
    pub fn blocks(&self, log_n: u32) -> u32 {
        1 << (self.first_stage + self.log_stride(log_n) - self.log_group)
    }

    /// Threads per block.
    pub fn threads(&self) -> u32 {
        (1u32 << (self.stages + self.log_group - 1)).min(PHASE_THREADS)
    }

    /// Dynamic shared memory per block, in bytes.
    pub fn shared_bytes(&self) -> u32 {
        8 << (self.stages + self.log_group)
    }
}

/// The phases of a transform of 2^log_n words (`1 <= log_n`).
pub(crate) fn phases(log_n: u32) -> Vec<Phase> {
    let last_stages = log_n.min(TILE_WORDS_LOG);
    let leading = log_n - last_stages;
    let count = leading.div_ceil(MAX_LEADING_STAGES);
    let mut plan = Vec::with_capacity(count as usize + 1);
    let mut first_stage = 0;
    for i in 0..count {
        // Spread the leading stages evenly over the leading phases.
        let stages = (leading - first_stage).div_ceil(count - i);
        let log_stride = log_n - first_stage - stages;
        plan.push(Phase {
            first_stage,
            stages,
            log_group: (TILE_WORDS_LOG - stages).min(log_stride),
        });
        first_stage += stages;
    }
    plan.push(Phase {
        first_stage,
        stages: last_stages,
        log_group: 0,
    });
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::{generate_ntt_primes, Modulus};
    use crate::ring::ntt::NttTable;

    #[test]
    fn plans_cover_every_stage_within_the_tile() {
        for log_n in 1..=crate::ring::ntt::MAX_LOG_N {
            let plan = phases(log_n);
            let mut next = 0;
            for p in &plan {
                assert_eq!(p.first_stage, next, "log_n={log_n}");
                assert!(p.stages >= 1);
                assert!(p.stages + p.log_group <= TILE_WORDS_LOG);
                assert!(p.log_group <= p.log_stride(log_n));
                assert!(p.threads() >= 1);
                next += p.stages;
            }
            assert_eq!(next, log_n);
            let last = plan.last().unwrap();
            assert_eq!((last.log_group, last.log_stride(log_n)), (0, 0));
        }
        assert_eq!(
            phases(16),
            vec![
                Phase {
                    first_stage: 0,
                    stages: 5,
                    log_group: 6
                },
                Phase {
                    first_stage: 5,
                    stages: 11,
                    log_group: 0
                }
            ]
        );
    }

    /// The index arithmetic of `ntt_phase` in `kernels/cuda/ntt.cu`, one
    /// block after the other with every butterfly in order (a block's
    /// butterflies of one stage are independent), with the kernel's lazy
    /// reductions.
    fn run_plan(table: &NttTable, data: &mut [u64], inverse: bool) {
        let log_n = table.log_n();
        let q = table.modulus().value();
        let (tw, tws) = if inverse {
            (table.inverse_twiddles(), table.inverse_twiddles_shoup())
        } else {
            (table.forward_twiddles(), table.forward_twiddles_shoup())
        };
        let lazy = |a: u64, w: u64, ws: u64| {
            a.wrapping_mul(w)
                .wrapping_sub((((a as u128 * ws as u128) >> 64) as u64).wrapping_mul(q))
        };
        let fold = |x: u64| if x >= 2 * q { x - 2 * q } else { x };
        let mut plan = phases(log_n);
        if inverse {
            plan.reverse();
        }
        for phase in plan {
            let last = phase.first_stage == 0 && inverse
                || !inverse && phase.stages + phase.first_stage == log_n;
            let log_stride = phase.log_stride(log_n);
            let log_chunks = log_stride - phase.log_group;
            let size = 1usize << (phase.stages + phase.log_group);
            let mask = (1usize << phase.log_group) - 1;
            for block in 0..phase.blocks(log_n) as usize {
                let hi = block >> log_chunks;
                let lo0 = (block & ((1 << log_chunks) - 1)) << phase.log_group;
                let base = (hi << (log_n - phase.first_stage)) + lo0;
                let at = |e: usize| base + ((e >> phase.log_group) << log_stride) + (e & mask);
                let mut tile: Vec<u64> = (0..size).map(|e| data[at(e)]).collect();
                for step in 0..phase.stages {
                    let r = if inverse {
                        phase.stages - 1 - step
                    } else {
                        step
                    };
                    let log_h = phase.stages - 1 - r;
                    for b in 0..size / 2 {
                        let pair = b >> phase.log_group;
                        let blk = pair >> log_h;
                        let off = pair & ((1 << log_h) - 1);
                        let ia = ((((blk << 1) << log_h) + off) << phase.log_group) | (b & mask);
                        let ib = ia + (1 << (log_h + phase.log_group));
                        let w_at = (1 << (phase.first_stage + r)) + (hi << r) + blk;
                        let (x, y) = (tile[ia], tile[ib]);
                        if inverse {
                            tile[ia] = fold(x + y);
                            tile[ib] = lazy(x + 2 * q - y, tw[w_at], tws[w_at]);
                        } else {
                            let u = fold(x);
                            let v = lazy(y, tw[w_at], tws[w_at]);
                            tile[ia] = u + v;
                            tile[ib] = u + 2 * q - v;
                        }
                    }
                }
                for (e, &x) in tile.iter().enumerate() {
                    data[at(e)] = match (last, inverse) {
                        (false, _) => x,
                        (true, true) => {
                            let r = lazy(x, table.n_inv(), table.n_inv_shoup());
                            if r >= q {
                                r - q
                            } else {
                                r
                            }
                        }
                        (true, false) => {
                            let r = fold(x);
                            if r >= q {
                                r - q
                            } else {
                                r
                            }
                        }
                    };
                }
            }
        }
    }

    #[test]
    fn the_kernel_index_arithmetic_matches_the_reference_transform() {
        let q = generate_ntt_primes(61, 17, 1, &[]).unwrap()[0];
        for log_n in [1u32, 2, 5, 11, 12, 13, 16, 17] {
            let table = NttTable::new(Modulus::new(q).unwrap(), log_n).unwrap();
            let n = table.n();
            let a: Vec<u64> = (0..n as u64)
                .map(|i| (i * 0x9e37_79b9_7f4a_7c15) % q)
                .collect();
            let mut expected = a.clone();
            table.forward_reference(&mut expected);
            let mut got = a.clone();
            run_plan(&table, &mut got, false);
            assert_eq!(got, expected, "forward, log_n={log_n}");
            run_plan(&table, &mut got, true);
            assert_eq!(got, a, "inverse, log_n={log_n}");
        }
    }
}
