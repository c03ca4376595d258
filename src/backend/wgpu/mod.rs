//! The wgpu backend: every [`Backend`] primitive as WGSL compute kernels
//! (`kernels/wgsl/`) on a Vulkan adapter, data staying on the device.
//!
//! - Words are `u64` on the device too: native `u64` where the adapter has
//!   `SHADER_INT64`, else `vec2<u32>` with the same byte layout
//!   ([`Int64Mode`]). Both compute exactly the CPU oracle's words.
//! - Each primitive records all of its dispatches, copies and clears in one
//!   command encoder and submits once ([`recorder`]); only
//!   [`Backend::download`] waits for the device.
//! - Pipelines are compiled once per backend, on first use ([`shaders`]);
//!   twiddles, base-conversion constants and permutations are uploaded once
//!   per backend and parameter set ([`tables`]).
//! - wgpu's validation, out-of-memory and internal errors are caught in
//!   error scopes and returned as [`Error::Backend`]; sizes are checked
//!   against the device's limits before wgpu sees them, so user input never
//!   reaches a wgpu panic.
//! - A buffer of another backend is an [`Error::DeviceMismatch`], and so is
//!   a wgpu buffer of another `WgpuBackend` (another device).

mod device;
mod recorder;
mod rns;
mod shaders;
mod tables;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use self::device::Gpu;
use self::recorder::{Binding, Record, Recorder};
use self::shaders::{Kernel, Pipelines};
use self::tables::TableCache;
use super::{
    check_basis, check_buffer, check_mod_raise, check_scalars, Backend, BackendKind, Buffer,
    KeyLayout, Storage,
};
use crate::error::{Error, Result};
use crate::ring::{BaseConversion, RingContext};

pub use self::shaders::{wgsl_kernel_files, wgsl_module_source};

/// How device code represents 64-bit words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Int64Mode {
    /// Native `u64` when the adapter has `SHADER_INT64`, else `vec2<u32>`.
    #[default]
    Auto,
    /// Native `u64`; an adapter without `SHADER_INT64` is refused.
    Native,
    /// `vec2<u32>` emulation, whatever the adapter offers.
    Emulated,
}

/// Options of [`WgpuBackend::new`].
#[derive(Clone, Debug, Default)]
pub struct WgpuOptions {
    /// Accept a CPU (software) adapter such as lavapipe/llvmpipe.
    pub allow_software: bool,
    /// Representation of 64-bit words in device code.
    pub int64: Int64Mode,
}

/// The wgpu backend on one adapter.
#[derive(Debug)]
pub struct WgpuBackend {
    gpu: Arc<Gpu>,
    pipelines: Pipelines,
    tables: TableCache,
}

/// The words of a [`Buffer`] on a wgpu device.
#[derive(Debug)]
pub struct DeviceWords {
    gpu: Arc<Gpu>,
    buffer: wgpu::Buffer,
    words: usize,
}

impl DeviceWords {
    /// Number of words.
    pub(crate) fn len(&self) -> usize {
        self.words
    }

    /// Zeroes the device memory (best effort: a failure is ignored).
    pub(crate) fn wipe(&mut self) {
        // Best effort by contract: a device that cannot run a clear has no
        // way left to expose the words either.
        let _ = self.gpu.scoped("wipe", || {
            let mut encoder = self.gpu.encoder();
            encoder.clear_buffer(&self.buffer, 0, None);
            self.gpu.submit(encoder);
            Ok(())
        });
    }

    /// A copy on the same device.
    pub(crate) fn try_clone(&self) -> Result<DeviceWords> {
        let gpu = &self.gpu;
        let buffer = gpu.scoped("clone", || {
            let buffer = gpu.words_buffer("clone", self.words)?;
            let mut encoder = gpu.encoder();
            encoder.copy_buffer_to_buffer(&self.buffer, 0, &buffer, 0, None);
            gpu.submit(encoder);
            Ok(buffer)
        })?;
        Ok(DeviceWords {
            gpu: gpu.clone(),
            buffer,
            words: self.words,
        })
    }
}

impl WgpuBackend {
    /// Opens the best adapter `options` allow: a hardware GPU before a
    /// software one. No adapter (no Vulkan driver) is an error.
    pub fn new(options: WgpuOptions) -> Result<Self> {
        Ok(Self {
            gpu: Arc::new(Gpu::open(&options)?),
            pipelines: Pipelines::default(),
            tables: TableCache::default(),
        })
    }

    /// Whether device code uses native `u64` (else `vec2<u32>`).
    pub fn int64_native(&self) -> bool {
        self.gpu.int64_native
    }

    /// Whether the adapter is a CPU (software) implementation.
    pub fn is_software(&self) -> bool {
        self.gpu.software
    }

    /// The device buffer of `b`, checked to hold `words` words and to belong
    /// to this backend's device.
    fn device_buffer<'b>(
        &self,
        op: &'static str,
        b: &'b Buffer,
        words: usize,
    ) -> Result<&'b wgpu::Buffer> {
        check_buffer(op, BackendKind::Wgpu, b, words)?;
        match b.storage() {
            Storage::Wgpu(d) if Arc::ptr_eq(&d.gpu, &self.gpu) => Ok(&d.buffer),
            other => Err(Error::DeviceMismatch {
                op,
                left: format!("wgpu ({})", self.gpu.name),
                right: match other {
                    Storage::Wgpu(d) => format!("wgpu ({}, another device)", d.gpu.name),
                    _ => b.kind().to_string(),
                },
            }),
        }
    }

    /// The device buffers of `buffers`, each checked as in [`Self::device_buffer`].
    fn device_buffers<'b>(
        &self,
        op: &'static str,
        buffers: impl IntoIterator<Item = &'b Buffer>,
        words: usize,
    ) -> Result<Vec<&'b wgpu::Buffer>> {
        buffers
            .into_iter()
            .map(|b| self.device_buffer(op, b, words))
            .collect()
    }

    fn recorder(&self, ring: &RingContext) -> Recorder<'_> {
        Recorder::new(&self.gpu, &self.pipelines, ring.n())
    }

    /// A device temporary of `words` words.
    fn scratch(&self, op: &str, words: usize) -> Result<wgpu::Buffer> {
        self.gpu.scoped(op, || self.gpu.words_buffer(op, words))
    }

    fn wrap(&self, buffer: wgpu::Buffer, words: usize) -> Buffer {
        Buffer::from_storage(Storage::Wgpu(DeviceWords {
            gpu: self.gpu.clone(),
            buffer,
            words,
        }))
    }

    /// One element-wise kernel over `basis`: outputs at bindings 1.., inputs
    /// at bindings 4.., one record per limb (with the limb's scalar, if any).
    #[allow(clippy::too_many_arguments)]
    fn elementwise(
        &self,
        op: &'static str,
        kernel: Kernel,
        ring: &RingContext,
        basis: &[usize],
        outs: &[&Buffer],
        ins: &[&Buffer],
        scalars: Option<&[u64]>,
    ) -> Result<()> {
        check_basis(op, ring, basis)?;
        if let Some(s) = scalars {
            check_scalars(op, ring, s, basis)?;
        }
        let n = ring.n();
        let words = n * basis.len();
        let ins = self.device_buffers(op, ins.iter().copied(), words)?;
        let outs = self.device_buffers(op, outs.iter().copied(), words)?;
        let bindings: Vec<Binding<'_>> = (1..).zip(outs).chain((4..).zip(ins)).collect();
        let records: Vec<Record> = basis
            .iter()
            .enumerate()
            .map(|(k, &g)| {
                let m = &ring.moduli()[g];
                match scalars {
                    Some(s) => Record::modulus(m).constant(m, s[k]),
                    None => Record::modulus(m),
                }
            })
            .collect();
        let mut rec = self.recorder(ring);
        rec.dispatch(kernel, &[], &records, basis.len(), n, &bindings)?;
        rec.submit(op)
    }

    /// Forward or inverse NTT of every limb of `poly`.
    fn ntt(
        &self,
        op: &'static str,
        ring: &RingContext,
        poly: &Buffer,
        basis: &[usize],
        forward: bool,
    ) -> Result<()> {
        check_basis(op, ring, basis)?;
        let poly = self.device_buffer(op, poly, ring.n() * basis.len())?;
        let tables = self.tables.ring(&self.gpu, ring)?;
        let limbs: Vec<(usize, usize)> = basis.iter().copied().enumerate().collect();
        let mut rec = self.recorder(ring);
        rns::ntt(&mut rec, ring, &tables, poly, &limbs, forward)?;
        rec.submit(op)
    }

    /// For each input on the extended basis at `level` (evaluation domain):
    /// `out_i = (x_i − [x]_S) · inverses[i]` on the first `inverses.len()`
    /// limbs, where S, the source basis of `conv`, sits at positions
    /// `first..first + |S|` of the input and `[x]_S` is its centered residue
    /// (ModDown, and ModDown fused with rescale).
    #[allow(clippy::too_many_arguments)]
    fn divide_by_sources(
        &self,
        op: &'static str,
        ring: &RingContext,
        conv: &BaseConversion,
        offsets: tables::ConversionOffsets,
        first: usize,
        inverses: &[u64],
        extended: &[Buffer],
        level: usize,
        outs: &[Buffer],
    ) -> Result<()> {
        let n = ring.n();
        if outs.len() != extended.len() {
            return Err(Error::LengthMismatch {
                op,
                got: outs.len(),
                expected: extended.len(),
            });
        }
        let inputs = self.device_buffers(op, extended, n * (level + 1 + ring.num_p()))?;
        let outputs = self.device_buffers(op, outs, n * inverses.len())?;
        let tables = self.tables.ring(&self.gpu, ring)?;
        let sources = conv.source.len();
        let source = self.scratch(op, sources * n)?;
        let scaled = self.scratch(op, sources * n)?;
        let overflow = self.scratch(op, n)?;
        let source_limbs: Vec<(usize, usize)> = conv.source.iter().copied().enumerate().collect();
        let in_order: Vec<usize> = (0..sources).collect();
        let targets: Vec<(usize, usize)> = (0..inverses.len()).map(|i| (i, i)).collect();
        let target_limbs: Vec<(usize, usize)> =
            (0..inverses.len()).map(|i| (i, conv.target[i])).collect();
        let mut rec = self.recorder(ring);
        for (x, out) in inputs.into_iter().zip(outputs) {
            rec.copy(x, first * n, &source, 0, sources * n);
            rns::ntt(&mut rec, ring, &tables, &source, &source_limbs, false)?;
            rns::scale_sources(&mut rec, ring, conv, &source, &in_order, &scaled)?;
            rns::centered_overflows(&mut rec, &tables, conv, offsets, &scaled, &overflow)?;
            rns::convert(
                &mut rec,
                ring,
                &tables,
                conv,
                offsets,
                &scaled,
                Some(&overflow),
                &targets,
                out,
            )?;
            rns::ntt(&mut rec, ring, &tables, out, &target_limbs, true)?;
            rns::subtract_then_scale(&mut rec, ring, x, out, inverses)?;
        }
        rec.submit(op)
    }
}

impl Backend for WgpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Wgpu
    }

    fn device_name(&self) -> String {
        self.gpu.name.clone()
    }

    fn threads(&self) -> usize {
        0
    }

    fn synchronize(&self) -> Result<()> {
        self.gpu.wait("synchronize")
    }

    fn alloc(&self, words: usize) -> Result<Buffer> {
        Ok(self.wrap(self.scratch("alloc", words)?, words))
    }

    fn alloc_zeroed(&self, words: usize) -> Result<Buffer> {
        // wgpu zero-initializes every buffer it creates (WebGPU semantics).
        Ok(self.wrap(self.scratch("alloc_zeroed", words)?, words))
    }

    fn upload(&self, host: &[u64]) -> Result<Buffer> {
        let buffer = self
            .gpu
            .scoped("upload", || self.gpu.upload_words("upload", host))?;
        Ok(self.wrap(buffer, host.len()))
    }

    fn download(&self, buffer: &Buffer, words: usize) -> Result<Vec<u64>> {
        let buffer = self.device_buffer("download", buffer, words)?;
        self.gpu.read_words(buffer, words)
    }

    fn copy(&self, src: &Buffer, dst: &mut Buffer, words: usize) -> Result<()> {
        let src = self.device_buffer("copy", src, words)?;
        let dst = self.device_buffer("copy", dst, words)?;
        let mut rec = Recorder::new(&self.gpu, &self.pipelines, 0);
        rec.copy(src, 0, dst, 0, words);
        rec.submit("copy")
    }

    fn ntt_forward(&self, ring: &RingContext, poly: &mut Buffer, basis: &[usize]) -> Result<()> {
        self.ntt("ntt_forward", ring, poly, basis, true)
    }

    fn ntt_inverse(&self, ring: &RingContext, poly: &mut Buffer, basis: &[usize]) -> Result<()> {
        self.ntt("ntt_inverse", ring, poly, basis, false)
    }

    fn add_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()> {
        self.elementwise("add", Kernel::AddAssign, ring, basis, &[&*acc], &[b], None)
    }

    fn sub_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()> {
        self.elementwise("sub", Kernel::SubAssign, ring, basis, &[&*acc], &[b], None)
    }

    fn neg_assign(&self, ring: &RingContext, acc: &mut Buffer, basis: &[usize]) -> Result<()> {
        self.elementwise("neg", Kernel::NegAssign, ring, basis, &[&*acc], &[], None)
    }

    fn mul_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()> {
        self.elementwise("mul", Kernel::MulAssign, ring, basis, &[&*acc], &[b], None)
    }

    fn mul_add_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        a: &Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()> {
        self.elementwise(
            "mul_add",
            Kernel::MulAddAssign,
            ring,
            basis,
            &[&*acc],
            &[a, b],
            None,
        )
    }

    fn tensor(
        &self,
        ring: &RingContext,
        a: &[Buffer],
        b: &[Buffer],
        out: &mut [Buffer],
        basis: &[usize],
    ) -> Result<()> {
        check_basis("tensor", ring, basis)?;
        if a.len() != 2 || b.len() != 2 || out.len() != 3 {
            return Err(Error::LengthMismatch {
                op: "tensor",
                got: out.len(),
                expected: 3,
            });
        }
        let ins: Vec<&Buffer> = a.iter().chain(b).collect();
        let outs: Vec<&Buffer> = out.iter().collect();
        self.elementwise("tensor", Kernel::Tensor, ring, basis, &outs, &ins, None)
    }

    fn mul_scalar_add_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        a: &Buffer,
        scalars: &[u64],
        basis: &[usize],
    ) -> Result<()> {
        self.elementwise(
            "mul_scalar_add",
            Kernel::MulScalarAddAssign,
            ring,
            basis,
            &[&*acc],
            &[a],
            Some(scalars),
        )
    }

    fn mul_scalar_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        scalars: &[u64],
        basis: &[usize],
    ) -> Result<()> {
        self.elementwise(
            "mul_scalar",
            Kernel::MulScalarAssign,
            ring,
            basis,
            &[&*acc],
            &[],
            Some(scalars),
        )
    }

    fn add_scalar_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        scalars: &[u64],
        basis: &[usize],
    ) -> Result<()> {
        self.elementwise(
            "add_scalar",
            Kernel::AddScalarAssign,
            ring,
            basis,
            &[&*acc],
            &[],
            Some(scalars),
        )
    }

    fn automorphism(
        &self,
        ring: &RingContext,
        src: &Buffer,
        galois_element: u64,
        out: &mut Buffer,
        basis: &[usize],
    ) -> Result<()> {
        const OP: &str = "automorphism";
        check_basis(OP, ring, basis)?;
        let perm = self.tables.permutation(&self.gpu, ring, galois_element)?;
        let n = ring.n();
        let src = self.device_buffer(OP, src, n * basis.len())?;
        let out = self.device_buffer(OP, out, n * basis.len())?;
        let mut rec = self.recorder(ring);
        rec.dispatch(
            Kernel::Automorphism,
            &[],
            &[],
            basis.len(),
            n,
            &[(1, &perm), (2, src), (3, out)],
        )?;
        rec.submit(OP)
    }

    fn mod_up(
        &self,
        ring: &RingContext,
        coeff: &Buffer,
        eval: &Buffer,
        level: usize,
        outs: &mut [Buffer],
    ) -> Result<()> {
        const OP: &str = "mod_up";
        let n = ring.n();
        let digits = ring.params().digits_at_level(level.min(ring.num_q() - 1));
        let convs = (0..digits)
            .map(|j| ring.mod_up(level, j))
            .collect::<Result<Vec<_>>>()?;
        if outs.len() != digits {
            return Err(Error::LengthMismatch {
                op: OP,
                got: outs.len(),
                expected: digits,
            });
        }
        let q_words = n * (level + 1);
        let ext = level + 1 + ring.num_p();
        let coeff = self.device_buffer(OP, coeff, q_words)?;
        let eval = self.device_buffer(OP, eval, q_words)?;
        let outs = self.device_buffers(OP, outs.iter(), n * ext)?;
        let tables = self.tables.ring(&self.gpu, ring)?;
        // Position of global modulus g in the extended basis at `level`.
        let position = |g: usize| {
            if g <= level {
                g
            } else {
                level + 1 + (g - ring.num_q())
            }
        };
        let widest = convs.iter().map(|c| c.source.len()).max().unwrap_or(0);
        let scaled = self.scratch(OP, widest * n)?;
        let mut rec = self.recorder(ring);
        for (j, (conv, out)) in convs.iter().zip(outs).enumerate() {
            let offsets = tables.mod_up(level, j)?;
            // Source limbs of a ciphertext at `level` sit at their global index.
            rns::scale_sources(&mut rec, ring, conv, coeff, &conv.source, &scaled)?;
            let targets: Vec<(usize, usize)> = conv
                .target
                .iter()
                .enumerate()
                .map(|(row, &g)| (row, position(g)))
                .collect();
            rns::convert(
                &mut rec, ring, &tables, conv, offsets, &scaled, None, &targets, out,
            )?;
            for &g in &conv.source {
                rec.copy(eval, g * n, out, g * n, n);
            }
            let target_limbs: Vec<(usize, usize)> =
                conv.target.iter().map(|&g| (position(g), g)).collect();
            rns::ntt(&mut rec, ring, &tables, out, &target_limbs, true)?;
        }
        rec.submit(OP)
    }

    fn mod_down(
        &self,
        ring: &RingContext,
        extended: &[Buffer],
        level: usize,
        outs: &mut [Buffer],
    ) -> Result<()> {
        if level >= ring.num_q() {
            return Err(Error::LevelMismatch {
                op: "mod_down",
                detail: format!("level {level} beyond the chain"),
            });
        }
        let offsets = self.tables.ring(&self.gpu, ring)?.mod_down();
        let inverses: Vec<u64> = (0..=level).map(|i| ring.p_inv_mod_q(i).0).collect();
        self.divide_by_sources(
            "mod_down",
            ring,
            ring.mod_down(),
            offsets,
            level + 1,
            &inverses,
            extended,
            level,
            outs,
        )
    }

    fn mod_down_rescale(
        &self,
        ring: &RingContext,
        extended: &[Buffer],
        level: usize,
        outs: &mut [Buffer],
    ) -> Result<()> {
        if level == 0 || level >= ring.num_q() {
            return Err(Error::OutOfLevels {
                op: "mod_down_rescale",
                level,
                needed: 1,
            });
        }
        let (conv, inverses) = ring.mod_down_rescale(level)?;
        let offsets = self.tables.ring(&self.gpu, ring)?.mod_down_rescale(level)?;
        self.divide_by_sources(
            "mod_down_rescale",
            ring,
            conv,
            offsets,
            level,
            inverses,
            extended,
            level,
            outs,
        )
    }

    fn key_switch_inner_product(
        &self,
        ring: &RingContext,
        digits: &[Buffer],
        keys: &[(Buffer, Buffer)],
        level: usize,
        out0: &mut Buffer,
        out1: &mut Buffer,
    ) -> Result<()> {
        const OP: &str = "key_switch_inner_product";
        let n = ring.n();
        if level >= ring.num_q() {
            return Err(Error::LevelMismatch {
                op: OP,
                detail: format!(
                    "level {level} beyond the chain (top level {})",
                    ring.num_q() - 1
                ),
            });
        }
        // 128-bit sums hold at most 64 products of reduced words.
        if digits.len() > keys.len() || digits.len() > 64 {
            return Err(Error::LengthMismatch {
                op: OP,
                got: digits.len(),
                expected: keys.len(),
            });
        }
        let layout = KeyLayout::of(OP, ring, keys, digits.len(), level)?;
        let basis = ring.extended_basis(level);
        let ext_words = n * basis.len();
        let key_words = layout.words(n);
        let digit_buffers = self.device_buffers(OP, digits, ext_words)?;
        let key_buffers = keys
            .iter()
            .take(digits.len())
            .map(|(b, a)| {
                Ok((
                    self.device_buffer(OP, b, key_words)?,
                    self.device_buffer(OP, a, key_words)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let out0 = self.device_buffer(OP, out0, ext_words)?;
        let out1 = self.device_buffer(OP, out1, ext_words)?;
        let mut rec = self.recorder(ring);
        if digits.is_empty() {
            rec.clear(out0, ext_words);
            rec.clear(out1, ext_words);
            return rec.submit(OP);
        }
        // The running sums are needed only between digits.
        let acc = self.scratch(OP, if digits.len() > 1 { 4 * ext_words } else { 1 })?;
        let records: Vec<Record> = basis
            .iter()
            .map(|&g| Record::modulus(&ring.moduli()[g]).aux(layout.position(g)))
            .collect();
        let last = digits.len() - 1;
        for (j, (digit, (key_b, key_a))) in digit_buffers.into_iter().zip(key_buffers).enumerate() {
            let flags = u64::from(j == 0) | (u64::from(j == last) << 1);
            rec.dispatch(
                Kernel::InnerProduct,
                &[flags],
                &records,
                basis.len(),
                n,
                &[
                    (1, digit),
                    (2, key_b),
                    (3, key_a),
                    (4, &acc),
                    (5, out0),
                    (6, out1),
                ],
            )?;
        }
        rec.submit(OP)
    }

    fn rescale(
        &self,
        ring: &RingContext,
        poly: &Buffer,
        level: usize,
        out: &mut Buffer,
    ) -> Result<()> {
        const OP: &str = "rescale";
        if level == 0 || level >= ring.num_q() {
            return Err(Error::OutOfLevels {
                op: OP,
                level,
                needed: 1,
            });
        }
        let n = ring.n();
        let input = self.device_buffer(OP, poly, n * (level + 1))?;
        let out = self.device_buffer(OP, out, n * level)?;
        let tables = self.tables.ring(&self.gpu, ring)?;
        let last = self.scratch(OP, n)?;
        let limbs: Vec<(usize, usize)> = (0..level).map(|i| (i, i)).collect();
        let inverses: Vec<u64> = (0..level).map(|i| ring.rescale_inv(level, i).0).collect();
        let mut rec = self.recorder(ring);
        rec.copy(input, level * n, &last, 0, n);
        rns::ntt(&mut rec, ring, &tables, &last, &[(0, level)], false)?;
        rns::lift_centered(&mut rec, ring, level, &last, level, out)?;
        rns::ntt(&mut rec, ring, &tables, out, &limbs, true)?;
        rns::subtract_then_scale(&mut rec, ring, input, out, &inverses)?;
        rec.submit(OP)
    }

    fn mod_raise(
        &self,
        ring: &RingContext,
        src: &Buffer,
        level: usize,
        out: &mut Buffer,
    ) -> Result<()> {
        const OP: &str = "mod_raise";
        let basis = check_mod_raise(BackendKind::Wgpu, ring, src, level, out)?;
        let n = ring.n();
        let src = self.device_buffer(OP, src, n)?;
        let out = self.device_buffer(OP, out, n * basis.len())?;
        let mut rec = self.recorder(ring);
        rns::lift_centered(&mut rec, ring, 0, src, basis.len(), out)?;
        rec.submit(OP)
    }
}
