//! Recording one primitive's work: dispatches (with their argument blocks),
//! buffer copies and clears, submitted together in one command encoder.
//!
//! Argument blocks (layout: `kernels/wgsl/dispatch.wgsl`) of every dispatch
//! are packed into one storage buffer, each at an offset aligned to the
//! device's `min_storage_buffer_offset_alignment`, and uploaded once per
//! submission. Steps run in recording order; wgpu orders the dispatches of a
//! pass, so a step sees the writes of every earlier step.

use std::num::NonZeroU64;

use super::device::{backend_error, Gpu, WORD_BYTES};
use super::shaders::{Kernel, Pipelines};
use crate::error::Result;
use crate::math::Modulus;

/// Words of the argument header and of one record.
const HEADER_WORDS: usize = 8;
const RECORD_WORDS: usize = 8;
/// Threads per workgroup along x (`WORKGROUP` in dispatch.wgsl).
const WORKGROUP: usize = 256;

/// One limb job's record: `[q, ratio_lo, ratio_hi, c, c_shoup, pos, aux, 0]`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Record([u64; RECORD_WORDS]);

impl Record {
    /// A record for modulus `m` (with its Barrett ratio floor(2^128/q)).
    pub(crate) fn modulus(m: &Modulus) -> Self {
        let ratio = u128::MAX / u128::from(m.value());
        Record([m.value(), ratio as u64, (ratio >> 64) as u64, 0, 0, 0, 0, 0])
    }

    /// With the constant `c < q` and its Shoup companion.
    pub(crate) fn constant(mut self, m: &Modulus, c: u64) -> Self {
        self.0[3] = c;
        self.0[4] = m.shoup(c);
        self
    }

    /// With a constant that is not a multiplier (no companion).
    pub(crate) fn word(mut self, c: u64) -> Self {
        self.0[3] = c;
        self
    }

    /// With the limb position `pos`.
    pub(crate) fn pos(mut self, pos: usize) -> Self {
        self.0[5] = pos as u64;
        self
    }

    /// With the auxiliary index `aux`.
    pub(crate) fn aux(mut self, aux: usize) -> Self {
        self.0[6] = aux as u64;
        self
    }
}

/// A buffer bound at a binding index.
pub(crate) type Binding<'b> = (u32, &'b wgpu::Buffer);

/// A recorded dispatch: its argument block is `args` (word range) of the
/// packed argument buffer.
struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    args: std::ops::Range<usize>,
    bindings: Vec<(u32, wgpu::Buffer)>,
    groups: (u32, u32),
}

enum Step {
    Dispatch(Dispatch),
    Copy {
        src: wgpu::Buffer,
        src_word: usize,
        dst: wgpu::Buffer,
        dst_word: usize,
        words: usize,
    },
    Clear {
        buffer: wgpu::Buffer,
        words: usize,
    },
}

/// The recorded work of one primitive on a ring of degree `n`.
pub(crate) struct Recorder<'a> {
    gpu: &'a Gpu,
    pipelines: &'a Pipelines,
    n: usize,
    args: Vec<u64>,
    steps: Vec<Step>,
}

impl<'a> Recorder<'a> {
    pub(crate) fn new(gpu: &'a Gpu, pipelines: &'a Pipelines, n: usize) -> Self {
        Self {
            gpu,
            pipelines,
            n,
            args: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// The ring degree.
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// Records `kernel` over `threads` threads (x) for each of `rows`
    /// workgroup rows (y), with kernel parameters `params` (args[1..]),
    /// `records` and the buffers `bindings` (binding 0 is the argument
    /// block). Nothing is recorded when there is no thread.
    pub(crate) fn dispatch(
        &mut self,
        kernel: Kernel,
        params: &[u64],
        records: &[Record],
        rows: usize,
        threads: usize,
        bindings: &[Binding<'_>],
    ) -> Result<()> {
        if rows == 0 || threads == 0 {
            return Ok(());
        }
        if params.len() >= HEADER_WORDS {
            return Err(backend_error(format!(
                "{kernel:?}: {} parameters (at most {})",
                params.len(),
                HEADER_WORDS - 1
            )));
        }
        let max_groups = self.gpu.limits.max_compute_workgroups_per_dimension as usize;
        let groups_x = threads.div_ceil(WORKGROUP);
        if rows > max_groups || groups_x > max_groups {
            return Err(backend_error(format!(
                "{kernel:?}: {groups_x} × {rows} workgroups exceed the device limit of {max_groups} per dimension"
            )));
        }
        let pipeline = self.pipelines.get(self.gpu, kernel)?;
        let align = (self.gpu.limits.min_storage_buffer_offset_alignment as usize
            / WORD_BYTES as usize)
            .max(1);
        self.args.resize(self.args.len().next_multiple_of(align), 0);
        let start = self.args.len();
        let mut header = [0u64; HEADER_WORDS];
        header[0] = self.n as u64;
        header[1..=params.len()].copy_from_slice(params);
        self.args.extend_from_slice(&header);
        for r in records {
            self.args.extend_from_slice(&r.0);
        }
        self.steps.push(Step::Dispatch(Dispatch {
            pipeline,
            args: start..self.args.len(),
            bindings: bindings.iter().map(|&(i, b)| (i, b.clone())).collect(),
            groups: (groups_x as u32, rows as u32),
        }));
        Ok(())
    }

    /// Records a copy of `words` words from `src` (starting at word
    /// `src_word`) to `dst` (at word `dst_word`); `src` and `dst` must be
    /// different buffers.
    pub(crate) fn copy(
        &mut self,
        src: &wgpu::Buffer,
        src_word: usize,
        dst: &wgpu::Buffer,
        dst_word: usize,
        words: usize,
    ) {
        if words > 0 {
            self.steps.push(Step::Copy {
                src: src.clone(),
                src_word,
                dst: dst.clone(),
                dst_word,
                words,
            });
        }
    }

    /// Records zeroing the first `words` words of `buffer`.
    pub(crate) fn clear(&mut self, buffer: &wgpu::Buffer, words: usize) {
        if words > 0 {
            self.steps.push(Step::Clear {
                buffer: buffer.clone(),
                words,
            });
        }
    }

    /// Encodes every step in one command encoder and submits it.
    pub(crate) fn submit(self, op: &str) -> Result<()> {
        if self.steps.is_empty() {
            return Ok(());
        }
        let gpu = self.gpu;
        gpu.scoped(op, || {
            let args = gpu.upload_words(op, &self.args)?;
            let mut encoder = gpu.encoder();
            let mut steps = self.steps.iter().peekable();
            while let Some(step) = steps.next() {
                match step {
                    Step::Dispatch(first) => {
                        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some(op),
                            timestamp_writes: None,
                        });
                        encode_dispatch(gpu, &mut pass, &args, first);
                        while let Some(Step::Dispatch(next)) =
                            steps.next_if(|s| matches!(s, Step::Dispatch(_)))
                        {
                            encode_dispatch(gpu, &mut pass, &args, next);
                        }
                    }
                    Step::Copy {
                        src,
                        src_word,
                        dst,
                        dst_word,
                        words,
                    } => encoder.copy_buffer_to_buffer(
                        src,
                        *src_word as u64 * WORD_BYTES,
                        dst,
                        *dst_word as u64 * WORD_BYTES,
                        *words as u64 * WORD_BYTES,
                    ),
                    Step::Clear { buffer, words } => {
                        encoder.clear_buffer(buffer, 0, Some(*words as u64 * WORD_BYTES))
                    }
                }
            }
            gpu.submit(encoder);
            Ok(())
        })
    }
}

/// Binds and dispatches one recorded dispatch step in `pass`.
fn encode_dispatch(
    gpu: &Gpu,
    pass: &mut wgpu::ComputePass<'_>,
    args: &wgpu::Buffer,
    dispatch: &Dispatch,
) {
    let Dispatch {
        pipeline,
        args: range,
        bindings,
        groups,
    } = dispatch;
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: args,
            offset: range.start as u64 * WORD_BYTES,
            size: NonZeroU64::new(range.len() as u64 * WORD_BYTES),
        }),
    }];
    entries.extend(bindings.iter().map(|(i, b)| wgpu::BindGroupEntry {
        binding: *i,
        resource: b.as_entire_binding(),
    }));
    let group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    });
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, &group, &[]);
    pass.dispatch_workgroups(groups.0, groups.1, 1);
}
