//! The CUDA backend: every [`Backend`] primitive as kernels on one NVIDIA
//! GPU, bit for bit equal to the CPU oracle.
//!
//! * Kernels: `kernels/cuda/*.cu`, embedded and compiled at run time by
//!   NVRTC to CUBIN for the device's compute capability, once per process
//!   ([`compile`]); [`compile_report`] gives their register, spill and stack
//!   figures without a GPU.
//! * Streams: one per backend; every primitive is enqueued asynchronously on
//!   it and [`Backend::download`] synchronizes. Since all work of a backend is
//!   ordered on its stream, cudarc's per-buffer event tracking is switched off
//!   for the context; a buffer of another `CudaBackend` (another stream) is
//!   refused with [`Error::DeviceMismatch`].
//! * Memory: buffers and temporaries come from the device's stream-ordered
//!   memory pool (`cuMemAllocAsync`), whose release threshold is raised so
//!   that freed memory is kept for the next primitive.
//! * Tables ([`tables::RingTables`]: primes, twiddles with Shoup companions,
//!   base-conversion constants) are uploaded once per parameter set, keyed by
//!   `Parameters::id`; automorphism permutations once per `(id, g)`. Per-limb
//!   constants (scalars, inverses) travel by value in the kernel parameters
//!   ([`abi`]), so no primitive copies from the host.
//! * NTT: the fused shared-memory kernels ([`ntt_plan`]: two launches for
//!   N = 2^16, all limbs of the basis in each); `HEFORMER_CUDA_NTT=radix2`
//!   selects the one-stage-per-launch baseline kernels instead (a
//!   differential check of the fused ones).
//!
//! Base conversions follow `ARCHITECTURE.md` word for word: ModUp is the
//! approximate conversion; ModDown and rescale take their source limbs back
//! to the coefficient domain, compute the fixed-point overflow `v` with the
//! `floor(2^128/p_k)` fractions, convert, return to the evaluation domain and
//! finish with `(x − conv)·inverse`.

mod abi;
mod compile;
mod kernels;
mod ntt_plan;
mod tables;

pub use compile::{compile_report, KernelReport};

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex};

use cudarc::driver::{
    result as cu_result, sys as cu, CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr,
    LaunchArgs, LaunchConfig, PushKernelArg,
};

use super::{check_buffer, check_mod_raise, Backend, BackendKind, Buffer, KeyLayout, Storage};
use crate::error::{Error, Result};
use crate::ring::{BaseConversion, RingContext};
use abi::{DigitOperands, LimbScalars, Limbs, BLOCK, CONVERT_TARGETS, MAX_DIGITS};
use kernels::Kernels;
use tables::{ConvTable, RingTables, Twiddles};

/// An [`Error::Backend`] of this backend.
pub(crate) fn backend_error(detail: impl Into<String>) -> Error {
    Error::Backend {
        backend: BackendKind::Cuda.to_string(),
        detail: detail.into(),
    }
}

/// An [`Error::Backend`] for a failed driver call.
pub(crate) fn driver_error(context: &str, e: impl Display) -> Error {
    backend_error(format!("{context}: {e}"))
}

/// Device memory behind a CUDA [`Buffer`].
///
/// `len` is the buffer's length in words; the allocation holds `max(len, 1)`
/// words, because the driver refuses zero-byte allocations (`cuMemAlloc`:
/// `CUDA_ERROR_INVALID_VALUE`; cudarc's `CudaStream::null` asks for zero
/// bytes).
#[derive(Debug)]
pub(crate) struct DeviceWords {
    slice: CudaSlice<u64>,
    len: usize,
}

impl DeviceWords {
    fn new(slice: CudaSlice<u64>, len: usize) -> Self {
        debug_assert!(slice.len() >= len);
        Self { slice, len }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Zeroes the words (enqueued before the memory can be freed, on the
    /// buffer's own stream); a failure is recorded by cudarc, not raised.
    pub(crate) fn wipe(&mut self) {
        let stream = self.slice.stream().clone();
        let _ = stream.memset_zeros(&mut self.slice);
    }

    pub(crate) fn try_clone(&self) -> Result<DeviceWords> {
        let slice = self
            .slice
            .try_clone()
            .map_err(|e| driver_error("cloning a buffer", e))?;
        Ok(DeviceWords::new(slice, self.len))
    }
}

impl Drop for DeviceWords {
    /// cudarc frees a `CudaSlice` (`cuMemFreeAsync` on its stream, so after
    /// every kernel already queued there) without making its context current
    /// first, unlike every other cudarc call; a buffer dropped on a thread
    /// that never used the backend would fail to free (the error is stored
    /// in the context and returned by its next call). Bind it here; the
    /// slice is dropped right after.
    fn drop(&mut self) {
        make_current(self.slice.context());
    }
}

/// Makes `ctx` the calling thread's current context if it is not already,
/// without touching cudarc's stored error (`CudaContext::bind_to_thread`
/// would return and clear it). Failures are ignored: the driver call that
/// follows reports them.
fn make_current(ctx: &CudaContext) {
    let want = ctx.cu_ctx();
    if cu_result::ctx::get_current().ok().flatten() != Some(want) {
        // SAFETY: `want` is the context of a live `CudaContext` (the caller
        // holds it through an `Arc`), so it was created and not yet released.
        let _ = unsafe { cu_result::ctx::set_current(want) };
    }
}

/// How NTTs are launched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NttStrategy {
    /// The fused shared-memory phases of [`ntt_plan`].
    Fused,
    /// One launch per radix-2 stage (`HEFORMER_CUDA_NTT=radix2`).
    Radix2,
}

/// The CUDA backend on one device.
#[derive(Debug)]
pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    kernels: Kernels,
    name: String,
    ntt_strategy: NttStrategy,
    tables: Mutex<HashMap<u64, Arc<RingTables>>>,
    permutations: Mutex<PermutationCache>,
}

impl Drop for CudaBackend {
    /// The tables and permutations are `CudaSlice`s freed right after this
    /// (see [`DeviceWords`]'s `Drop`): make the context current for them.
    fn drop(&mut self) {
        make_current(&self.ctx);
    }
}

/// Device permutations by `(parameter id, Galois element)`.
type PermutationCache = HashMap<(u64, u64), Arc<CudaSlice<u32>>>;

impl CudaBackend {
    /// The backend on device `ordinal`: loads libcuda and libnvrtc, creates
    /// a stream and compiles the kernels. Missing libraries, no device or a
    /// failed compilation are errors.
    pub fn new(ordinal: usize) -> Result<Self> {
        // SAFETY: only tries to load libcuda dynamically and reports whether
        // it succeeded (cudarc panics on first use otherwise).
        if !unsafe { cu::is_culib_present() } {
            return Err(backend_error(
                "libcuda (the NVIDIA driver) cannot be loaded",
            ));
        }
        // SAFETY: as above, for libnvrtc.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(backend_error(
                "libnvrtc (CUDA 12 NVRTC) cannot be loaded; put its folder on LD_LIBRARY_PATH",
            ));
        }
        let ctx = CudaContext::new(ordinal)
            .map_err(|e| driver_error(&format!("CUDA device {ordinal}"), e))?;
        // SAFETY: every buffer this backend creates is used only on its one
        // stream (foreign streams are refused by `words`), so stream order
        // alone synchronizes all uses and frees.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx
            .new_stream()
            .map_err(|e| driver_error("creating a stream", e))?;
        keep_pool_memory(&ctx)?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| driver_error("compute capability", e))?;
        let kernels = Kernels::load(&ctx, &format!("sm_{major}{minor}"))?;
        let name = ctx.name().map_err(|e| driver_error("device name", e))?;
        let ntt_strategy = match std::env::var("HEFORMER_CUDA_NTT").as_deref() {
            Ok("radix2") => NttStrategy::Radix2,
            _ => NttStrategy::Fused,
        };
        Ok(Self {
            ctx,
            stream,
            kernels,
            name,
            ntt_strategy,
            tables: Mutex::new(HashMap::new()),
            permutations: Mutex::new(HashMap::new()),
        })
    }

    /// The device words of `b`, checked to hold `words` words and to belong
    /// to this backend.
    fn words<'a>(
        &self,
        op: &'static str,
        b: &'a Buffer,
        words: usize,
    ) -> Result<&'a CudaSlice<u64>> {
        check_buffer(op, BackendKind::Cuda, b, words)?;
        match b.storage() {
            Storage::Cuda(d) if self.owns(&d.slice) => Ok(&d.slice),
            _ => Err(foreign(op)),
        }
    }

    /// [`Self::words`] for a buffer the primitive writes.
    fn words_mut<'a>(
        &self,
        op: &'static str,
        b: &'a mut Buffer,
        words: usize,
    ) -> Result<&'a mut CudaSlice<u64>> {
        check_buffer(op, BackendKind::Cuda, b, words)?;
        match b.storage_mut() {
            Storage::Cuda(d) if self.owns(&d.slice) => Ok(&mut d.slice),
            _ => Err(foreign(op)),
        }
    }

    fn owns(&self, slice: &CudaSlice<u64>) -> bool {
        slice.stream().cu_stream() == self.stream.cu_stream()
    }

    /// A device temporary of `words` words with unspecified contents (at
    /// least one word is allocated: see [`DeviceWords`]).
    fn temp(&self, words: usize) -> Result<CudaSlice<u64>> {
        // SAFETY: the memory is uninitialised device memory, never read on
        // the host before a device write except through `download` of an
        // `alloc` buffer, which copies whatever words are there; every bit
        // pattern is a valid u64.
        unsafe { self.stream.alloc::<u64>(words.max(1)) }.map_err(|e| driver_error("allocating", e))
    }

    /// Copies limbs `from..from + count` of `src` to limbs `to..` of `dst`.
    fn copy_limbs(
        &self,
        n: usize,
        src: &CudaSlice<u64>,
        from: usize,
        dst: &mut CudaSlice<u64>,
        to: usize,
        count: usize,
    ) -> Result<()> {
        if count == 0 {
            return Ok(());
        }
        self.stream
            .memcpy_dtod(
                &src.slice(from * n..(from + count) * n),
                &mut dst.slice_mut(to * n..(to + count) * n),
            )
            .map_err(|e| driver_error("copying limbs", e))
    }

    /// The device tables of `ring`, uploaded on first use.
    fn tables(&self, ring: &RingContext) -> Result<Arc<RingTables>> {
        let mut cache = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let id = ring.params().id();
        if let Some(t) = cache.get(&id) {
            return Ok(t.clone());
        }
        let t = Arc::new(RingTables::upload(ring, &self.stream)?);
        cache.insert(id, t.clone());
        Ok(t)
    }

    /// The automorphism permutation of `g` on the device, uploaded on first use.
    fn permutation(&self, ring: &RingContext, g: u64) -> Result<Arc<CudaSlice<u32>>> {
        let key = (ring.params().id(), g);
        let mut cache = self.permutations.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(&key) {
            return Ok(p.clone());
        }
        let perm = ring.automorphism_permutation(g)?;
        let p = Arc::new(
            self.stream
                .clone_htod(perm.as_slice())
                .map_err(|e| driver_error("uploading a permutation", e))?,
        );
        cache.insert(key, p.clone());
        Ok(p)
    }

    /// Enqueues a launch; an empty grid launches nothing.
    ///
    /// # Safety
    /// `args` must match the kernel's parameter list in order and types, and
    /// every buffer must hold every word the kernel touches under `cfg`.
    unsafe fn launch(
        &self,
        op: &'static str,
        args: &mut LaunchArgs<'_>,
        cfg: LaunchConfig,
    ) -> Result<()> {
        if cfg.grid_dim.0 == 0 || cfg.grid_dim.1 == 0 {
            return Ok(());
        }
        // SAFETY: forwarded from the caller.
        unsafe { args.launch(cfg) }
            .map(drop)
            .map_err(|e| driver_error(op, e))
    }

    /// NTT of every limb of `limbs` in `data`.
    fn ntt(
        &self,
        ring: &RingContext,
        t: &RingTables,
        data: &mut CudaSlice<u64>,
        limbs: &Limbs,
        inverse: bool,
    ) -> Result<()> {
        let op = if inverse {
            "ntt_inverse"
        } else {
            "ntt_forward"
        };
        let log_n = ring.log_n();
        let n = ring.n() as u32;
        let (tw, tws) = if inverse {
            (
                t.twiddles(Twiddles::Inverse),
                t.twiddles(Twiddles::InverseShoup),
            )
        } else {
            (
                t.twiddles(Twiddles::Forward),
                t.twiddles(Twiddles::ForwardShoup),
            )
        };
        match self.ntt_strategy {
            NttStrategy::Fused => {
                let mut plan = ntt_plan::phases(log_n);
                if inverse {
                    plan.reverse();
                }
                let func = if inverse {
                    &self.kernels.ntt_inverse_phase
                } else {
                    &self.kernels.ntt_forward_phase
                };
                let count = plan.len();
                for (i, p) in plan.iter().enumerate() {
                    let last = u32::from(i + 1 == count);
                    let cfg = LaunchConfig {
                        grid_dim: (p.blocks(log_n), limbs.grid(), 1),
                        block_dim: (p.threads(), 1, 1),
                        shared_mem_bytes: p.shared_bytes(),
                    };
                    let mut a = self.stream.launch_builder(func);
                    a.arg(&mut *data)
                        .arg(&tw)
                        .arg(&tws)
                        .arg(&t.primes)
                        .arg(&limbs.map)
                        .arg(&log_n)
                        .arg(&p.first_stage)
                        .arg(&p.stages)
                        .arg(&p.log_group)
                        .arg(&last);
                    // SAFETY: ntt_*_phase(u64*, const u64*, const u64*, const
                    // Prime*, LimbMap, u32 x5); the plan keeps every block
                    // inside its limb, limbs lie within `data` (checked by the
                    // caller) and the twiddle tables hold moduli × N words.
                    unsafe { self.launch(op, &mut a, cfg)? };
                }
            }
            NttStrategy::Radix2 => {
                let stages: Vec<u32> = (0..log_n).map(|s| 1 << s).collect();
                let (func, order): (&CudaFunction, Box<dyn Iterator<Item = &u32>>) = if inverse {
                    (
                        &self.kernels.ntt_inverse_stage,
                        Box::new(stages.iter().rev()),
                    )
                } else {
                    (&self.kernels.ntt_forward_stage, Box::new(stages.iter()))
                };
                for m in order {
                    let mut a = self.stream.launch_builder(func);
                    a.arg(&mut *data)
                        .arg(&tw)
                        .arg(&tws)
                        .arg(&t.primes)
                        .arg(&limbs.map)
                        .arg(&n)
                        .arg(m);
                    // SAFETY: ntt_*_stage(u64*, const u64*, const u64*, const
                    // Prime*, LimbMap, u32, u32); one thread per butterfly
                    // (N/2 per limb), limbs within `data`.
                    unsafe { self.launch(op, &mut a, words_grid(ring.n() / 2, limbs.grid()))? };
                }
                if inverse {
                    let mut a = self.stream.launch_builder(&self.kernels.ntt_inverse_scale);
                    a.arg(&mut *data).arg(&t.primes).arg(&limbs.map).arg(&n);
                    // SAFETY: ntt_inverse_scale(u64*, const Prime*, LimbMap, u32).
                    unsafe { self.launch(op, &mut a, words_grid(ring.n(), limbs.grid()))? };
                }
            }
        }
        Ok(())
    }

    /// `acc = f(acc, b)` word by word on every limb of `basis`, for the
    /// kernels `f(u64* acc, const u64* b, const Prime*, LimbMap, u32 n)`.
    fn pairwise(
        &self,
        op: &'static str,
        func: &CudaFunction,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()> {
        let limbs = Limbs::of_basis(op, ring, basis)?;
        let n = ring.n();
        let b = self.words(op, b, n * limbs.len)?;
        let acc = self.words_mut(op, acc, n * limbs.len)?;
        let t = self.tables(ring)?;
        let n32 = n as u32;
        let mut a = self.stream.launch_builder(func);
        a.arg(acc).arg(b).arg(&t.primes).arg(&limbs.map).arg(&n32);
        // SAFETY: signature as documented above; both buffers hold N words
        // per limb.
        unsafe { self.launch(op, &mut a, words_grid(n, limbs.grid())) }
    }

    /// `acc = f(acc[, a], c_k)` on every limb of `basis` for per-limb
    /// constants, for the kernels `f(u64* acc[, const u64* a], const Prime*,
    /// LimbMap, LimbScalars, u32 n)`.
    #[allow(clippy::too_many_arguments)]
    fn with_scalars(
        &self,
        op: &'static str,
        func: &CudaFunction,
        ring: &RingContext,
        acc: &mut Buffer,
        a: Option<&Buffer>,
        scalars: &[u64],
        basis: &[usize],
    ) -> Result<()> {
        let limbs = Limbs::of_basis(op, ring, basis)?;
        if scalars.len() != basis.len() {
            return Err(Error::LengthMismatch {
                op,
                got: scalars.len(),
                expected: basis.len(),
            });
        }
        let scalars = LimbScalars::new(op, basis.iter().map(|&g| &ring.moduli()[g]), scalars)?;
        let n = ring.n();
        let a = a.map(|a| self.words(op, a, n * limbs.len)).transpose()?;
        let acc = self.words_mut(op, acc, n * limbs.len)?;
        let t = self.tables(ring)?;
        let n32 = n as u32;
        let mut args = self.stream.launch_builder(func);
        args.arg(acc);
        if let Some(a) = a {
            args.arg(a);
        }
        args.arg(&t.primes).arg(&limbs.map).arg(&scalars).arg(&n32);
        // SAFETY: signature as documented above (the optional operand only
        // for mul_scalar_add_assign); buffers hold N words per limb.
        unsafe { self.launch(op, &mut args, words_grid(n, limbs.grid())) }
    }

    /// `scaled[k] = x[limb of source k]·(Q_S/q_s)^{-1}` for the limbs of `sources`.
    fn scale_sources(
        &self,
        ring: &RingContext,
        t: &RingTables,
        conv: &ConvTable,
        x: &CudaSlice<u64>,
        sources: &Limbs,
        scaled: &mut CudaSlice<u64>,
    ) -> Result<()> {
        let n = ring.n() as u32;
        let mut a = self.stream.launch_builder(&self.kernels.scale_sources);
        a.arg(scaled)
            .arg(x)
            .arg(&t.primes)
            .arg(&sources.map)
            .arg(&conv.hat_inv)
            .arg(&n);
        // SAFETY: scale_sources(u64*, const u64*, const Prime*, LimbMap,
        // LimbScalars, u32); `scaled` holds one limb per source, `x` every
        // source position (checked by the caller).
        unsafe {
            self.launch(
                "scale_sources",
                &mut a,
                words_grid(ring.n(), sources.grid()),
            )
        }
    }

    /// The base conversion of `scaled` into the `targets` limbs of `out`,
    /// centered by `overflows` when given.
    #[allow(clippy::too_many_arguments)]
    fn convert(
        &self,
        ring: &RingContext,
        t: &RingTables,
        conv: &ConvTable,
        scaled: &CudaSlice<u64>,
        overflows: Option<&CudaSlice<u64>>,
        targets: &Limbs,
        out: &mut CudaSlice<u64>,
    ) -> Result<()> {
        let n = ring.n() as u32;
        let (hat, neg_product, _) = t.conversion(conv);
        let (sources, count) = (conv.sources as u32, targets.len as u32);
        let null: u64 = 0;
        let mut a = self.stream.launch_builder(&self.kernels.convert);
        a.arg(out).arg(scaled);
        match overflows {
            Some(v) => a.arg(v),
            None => a.arg(&null),
        };
        a.arg(&t.primes)
            .arg(&targets.map)
            .arg(&hat)
            .arg(&neg_product)
            .arg(&sources)
            .arg(&count)
            .arg(&n);
        let mut cfg = words_grid(ring.n(), 1);
        cfg.grid_dim.1 = count.div_ceil(CONVERT_TARGETS);
        // SAFETY: convert(u64*, const u64*, const u64* (null: approximate),
        // const Prime*, LimbMap, const u64*, const u64*, u32, u32, u32);
        // `count` <= the conversion's target rows, `scaled` holds `sources`
        // limbs, `out` every target position.
        unsafe { self.launch("convert", &mut a, cfg) }
    }

    /// For each `x` of `extended` (extended basis at `level`): `out = (x −
    /// [x]_S)·inverses` on the first `inverses` targets of `conv`, where the
    /// source limbs S of `conv` lie contiguously in `x` from limb `first`.
    #[allow(clippy::too_many_arguments)]
    fn divide_by_sources(
        &self,
        op: &'static str,
        ring: &RingContext,
        t: &RingTables,
        conv: &BaseConversion,
        conv_table: &ConvTable,
        first: usize,
        inverses: &[u64],
        extended: &[Buffer],
        level: usize,
        outs: &mut [Buffer],
    ) -> Result<()> {
        if outs.len() != extended.len() {
            return Err(Error::LengthMismatch {
                op,
                got: outs.len(),
                expected: extended.len(),
            });
        }
        let n = ring.n();
        let s = conv.source.len();
        let sources = Limbs::new(op, ring, conv.source.iter().copied().zip(0..))?;
        let targets = Limbs::new(op, ring, (0..inverses.len()).map(|i| (i, i)))?;
        let scalars = LimbScalars::new(op, &ring.moduli()[..inverses.len()], inverses)?;
        let (_, _, fraction) = t.conversion(conv_table);
        let n32 = n as u32;
        let s32 = s as u32;
        for (x, out) in extended.iter().zip(outs.iter_mut()) {
            let x = self.words(op, x, n * (level + 1 + ring.num_p()))?;
            let out = self.words_mut(op, out, n * inverses.len())?;
            let mut coeff = self.temp(n * s)?;
            self.copy_limbs(n, x, first, &mut coeff, 0, s)?;
            self.ntt(ring, t, &mut coeff, &sources, true)?;
            let mut scaled = self.temp(n * s)?;
            self.scale_sources(ring, t, conv_table, &coeff, &sources, &mut scaled)?;
            let mut v = self.temp(n)?;
            let mut a = self.stream.launch_builder(&self.kernels.centered_overflows);
            a.arg(&mut v)
                .arg(&scaled)
                .arg(&fraction)
                .arg(&s32)
                .arg(&n32);
            // SAFETY: centered_overflows(u64*, const u64*, const u64*, u32,
            // u32); `scaled` holds s limbs, `fraction` 2s words, `v` N words.
            unsafe { self.launch(op, &mut a, words_grid(n, 1))? };
            self.convert(ring, t, conv_table, &scaled, Some(&v), &targets, out)?;
            self.ntt(ring, t, out, &targets, false)?;
            let mut a = self
                .stream
                .launch_builder(&self.kernels.subtract_then_scale);
            a.arg(&mut *out)
                .arg(x)
                .arg(&t.primes)
                .arg(&targets.map)
                .arg(&scalars)
                .arg(&n32);
            // SAFETY: subtract_then_scale(u64*, const u64*, const Prime*,
            // LimbMap, LimbScalars, u32); target limb i is at position i of
            // both `out` and `x`.
            unsafe { self.launch(op, &mut a, words_grid(n, targets.grid()))? };
        }
        Ok(())
    }

    /// `out[target limb] = [src]_{q_source} mod q_target` on every limb of
    /// `targets`, `[·]` the centered residue of `src` (one limb of N words
    /// modulo global modulus `source`, coefficient domain, reduced) in
    /// `(−q/2, q/2]`: rescale's last limb, ModRaise's limb 0.
    #[allow(clippy::too_many_arguments)]
    fn lift_centered(
        &self,
        op: &'static str,
        ring: &RingContext,
        t: &RingTables,
        src: &CudaSlice<u64>,
        source: usize,
        targets: &Limbs,
        out: &mut CudaSlice<u64>,
    ) -> Result<()> {
        let (q_src, n32) = (ring.moduli()[source].value(), ring.n() as u32);
        let mut a = self.stream.launch_builder(&self.kernels.lift_centered);
        a.arg(out)
            .arg(src)
            .arg(&t.primes)
            .arg(&targets.map)
            .arg(&q_src)
            .arg(&n32);
        // SAFETY: lift_centered(u64*, const u64*, const Prime*, LimbMap, u64,
        // u32); the callers check that `src` holds N words and `out` every
        // target position.
        unsafe { self.launch(op, &mut a, words_grid(ring.n(), targets.grid())) }
    }
}

/// The launch geometry of word-parallel kernels: `words` per limb, `limbs`
/// limbs.
fn words_grid(words: usize, limbs: u32) -> LaunchConfig {
    let block = (words as u32).clamp(1, BLOCK);
    LaunchConfig {
        grid_dim: ((words as u32).div_ceil(block), limbs, 1),
        block_dim: (block, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn foreign(op: &'static str) -> Error {
    Error::DeviceMismatch {
        op,
        left: "cuda (this backend's stream)".into(),
        right: "another device or backend".into(),
    }
}

/// Raises the release threshold of the device's default memory pool so that
/// memory freed by one primitive is kept for the next instead of being
/// returned to the driver at every synchronization.
fn keep_pool_memory(ctx: &Arc<CudaContext>) -> Result<()> {
    if !ctx.has_async_alloc() {
        return Ok(());
    }
    let mut pool: cu::CUmemoryPool = std::ptr::null_mut();
    let mut threshold = u64::MAX;
    // SAFETY: the context is current on this thread (bound by CudaContext::new),
    // `pool` receives the default pool of the context's device, and the
    // threshold attribute takes a pointer to a u64.
    unsafe {
        cu::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device())
            .result()
            .map_err(|e| driver_error("default memory pool", e))?;
        cu::cuMemPoolSetAttribute(
            pool,
            cu::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            (&mut threshold as *mut u64).cast(),
        )
        .result()
        .map_err(|e| driver_error("memory pool release threshold", e))
    }
}

impl Backend for CudaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn device_name(&self) -> String {
        self.name.clone()
    }

    fn threads(&self) -> usize {
        0
    }

    fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| driver_error("synchronize", e))?;
        self.ctx
            .check_err()
            .map_err(|e| driver_error("an earlier asynchronous operation", e))
    }

    fn alloc(&self, words: usize) -> Result<Buffer> {
        let slice = self.temp(words)?;
        Ok(Buffer::from_storage(Storage::Cuda(DeviceWords::new(
            slice, words,
        ))))
    }

    fn alloc_zeroed(&self, words: usize) -> Result<Buffer> {
        let mut slice = self.temp(words)?;
        self.stream
            .memset_zeros(&mut slice)
            .map_err(|e| driver_error("zeroing", e))?;
        Ok(Buffer::from_storage(Storage::Cuda(DeviceWords::new(
            slice, words,
        ))))
    }

    fn upload(&self, host: &[u64]) -> Result<Buffer> {
        let slice = if host.is_empty() {
            self.temp(0)?
        } else {
            self.stream
                .clone_htod(host)
                .map_err(|e| driver_error("upload", e))?
        };
        Ok(Buffer::from_storage(Storage::Cuda(DeviceWords::new(
            slice,
            host.len(),
        ))))
    }

    fn download(&self, buffer: &Buffer, words: usize) -> Result<Vec<u64>> {
        let slice = self.words("download", buffer, words)?;
        let host = if words == 0 {
            Vec::new()
        } else {
            self.stream
                .clone_dtoh(&slice.slice(..words))
                .map_err(|e| driver_error("download", e))?
        };
        self.synchronize()?;
        Ok(host)
    }

    fn copy(&self, src: &Buffer, dst: &mut Buffer, words: usize) -> Result<()> {
        let src = self.words("copy", src, words)?;
        let dst = self.words_mut("copy", dst, words)?;
        if words == 0 {
            return Ok(());
        }
        self.stream
            .memcpy_dtod(&src.slice(..words), &mut dst.slice_mut(..words))
            .map_err(|e| driver_error("copy", e))
    }

    fn ntt_forward(&self, ring: &RingContext, poly: &mut Buffer, basis: &[usize]) -> Result<()> {
        let limbs = Limbs::of_basis("ntt_forward", ring, basis)?;
        let data = self.words_mut("ntt_forward", poly, ring.n() * limbs.len)?;
        let t = self.tables(ring)?;
        self.ntt(ring, &t, data, &limbs, false)
    }

    fn ntt_inverse(&self, ring: &RingContext, poly: &mut Buffer, basis: &[usize]) -> Result<()> {
        let limbs = Limbs::of_basis("ntt_inverse", ring, basis)?;
        let data = self.words_mut("ntt_inverse", poly, ring.n() * limbs.len)?;
        let t = self.tables(ring)?;
        self.ntt(ring, &t, data, &limbs, true)
    }

    fn add_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()> {
        self.pairwise("add", &self.kernels.add_assign, ring, acc, b, basis)
    }

    fn sub_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()> {
        self.pairwise("sub", &self.kernels.sub_assign, ring, acc, b, basis)
    }

    fn neg_assign(&self, ring: &RingContext, acc: &mut Buffer, basis: &[usize]) -> Result<()> {
        let limbs = Limbs::of_basis("neg", ring, basis)?;
        let n = ring.n();
        let acc = self.words_mut("neg", acc, n * limbs.len)?;
        let t = self.tables(ring)?;
        let n32 = n as u32;
        let mut a = self.stream.launch_builder(&self.kernels.neg_assign);
        a.arg(acc).arg(&t.primes).arg(&limbs.map).arg(&n32);
        // SAFETY: neg_assign(u64*, const Prime*, LimbMap, u32); N words per limb.
        unsafe { self.launch("neg", &mut a, words_grid(n, limbs.grid())) }
    }

    fn mul_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()> {
        self.pairwise("mul", &self.kernels.mul_assign, ring, acc, b, basis)
    }

    fn mul_add_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        a: &Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()> {
        let op = "mul_add";
        let limbs = Limbs::of_basis(op, ring, basis)?;
        let n = ring.n();
        let a = self.words(op, a, n * limbs.len)?;
        let b = self.words(op, b, n * limbs.len)?;
        let acc = self.words_mut(op, acc, n * limbs.len)?;
        let t = self.tables(ring)?;
        let n32 = n as u32;
        let mut args = self.stream.launch_builder(&self.kernels.mul_add_assign);
        args.arg(acc)
            .arg(a)
            .arg(b)
            .arg(&t.primes)
            .arg(&limbs.map)
            .arg(&n32);
        // SAFETY: mul_add_assign(u64*, const u64*, const u64*, const Prime*,
        // LimbMap, u32); N words per limb in each buffer.
        unsafe { self.launch(op, &mut args, words_grid(n, limbs.grid())) }
    }

    fn tensor(
        &self,
        ring: &RingContext,
        a: &[Buffer],
        b: &[Buffer],
        out: &mut [Buffer],
        basis: &[usize],
    ) -> Result<()> {
        let op = "tensor";
        let limbs = Limbs::of_basis(op, ring, basis)?;
        if a.len() != 2 || b.len() != 2 || out.len() != 3 {
            return Err(Error::LengthMismatch {
                op,
                got: out.len(),
                expected: 3,
            });
        }
        let words = ring.n() * limbs.len;
        let inputs = a
            .iter()
            .chain(b)
            .map(|x| self.words(op, x, words))
            .collect::<Result<Vec<_>>>()?;
        let mut outs = out
            .iter_mut()
            .map(|x| self.words_mut(op, x, words))
            .collect::<Result<Vec<_>>>()?;
        let t = self.tables(ring)?;
        let n32 = ring.n() as u32;
        let mut args = self.stream.launch_builder(&self.kernels.tensor);
        for x in &inputs {
            args.arg(*x);
        }
        for x in outs.iter_mut() {
            args.arg(&mut **x);
        }
        args.arg(&t.primes).arg(&limbs.map).arg(&n32);
        // SAFETY: tensor(a0, a1, b0, b1: const u64*, d0, d1, d2: u64*, const
        // Prime*, LimbMap, u32); seven buffers of N words per limb.
        unsafe { self.launch(op, &mut args, words_grid(ring.n(), limbs.grid())) }
    }

    fn mul_scalar_add_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        a: &Buffer,
        scalars: &[u64],
        basis: &[usize],
    ) -> Result<()> {
        let func = &self.kernels.mul_scalar_add_assign;
        self.with_scalars("mul_scalar_add", func, ring, acc, Some(a), scalars, basis)
    }

    fn mul_scalar_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        scalars: &[u64],
        basis: &[usize],
    ) -> Result<()> {
        let func = &self.kernels.mul_scalar_assign;
        self.with_scalars("mul_scalar", func, ring, acc, None, scalars, basis)
    }

    fn add_scalar_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        scalars: &[u64],
        basis: &[usize],
    ) -> Result<()> {
        let func = &self.kernels.add_scalar_assign;
        self.with_scalars("add_scalar", func, ring, acc, None, scalars, basis)
    }

    fn automorphism(
        &self,
        ring: &RingContext,
        src: &Buffer,
        galois_element: u64,
        out: &mut Buffer,
        basis: &[usize],
    ) -> Result<()> {
        let op = "automorphism";
        let limbs = Limbs::of_basis(op, ring, basis)?;
        let perm = self.permutation(ring, galois_element)?;
        let words = ring.n() * limbs.len;
        let src = self.words(op, src, words)?;
        let out = self.words_mut(op, out, words)?;
        let n32 = ring.n() as u32;
        let mut a = self.stream.launch_builder(&self.kernels.automorphism);
        a.arg(out).arg(src).arg(perm.as_ref()).arg(&n32);
        // SAFETY: automorphism(u64*, const u64*, const u32*, u32); the
        // permutation holds N indices below N, buffers N words per limb and
        // `src`, `out` are distinct buffers.
        unsafe { self.launch(op, &mut a, words_grid(ring.n(), limbs.grid())) }
    }

    fn mod_up(
        &self,
        ring: &RingContext,
        coeff: &Buffer,
        eval: &Buffer,
        level: usize,
        outs: &mut [Buffer],
    ) -> Result<()> {
        let op = "mod_up";
        let n = ring.n();
        let digits = ring.params().digits_at_level(level.min(ring.num_q() - 1));
        let convs = (0..digits)
            .map(|j| ring.mod_up(level, j))
            .collect::<Result<Vec<_>>>()?;
        if outs.len() != digits {
            return Err(Error::LengthMismatch {
                op,
                got: outs.len(),
                expected: digits,
            });
        }
        let q_words = n * (level + 1);
        let ext = level + 1 + ring.num_p();
        let coeff = self.words(op, coeff, q_words)?;
        let eval = self.words(op, eval, q_words)?;
        let t = self.tables(ring)?;
        let position = |g: usize| {
            if g <= level {
                g
            } else {
                level + 1 + (g - ring.num_q())
            }
        };
        for ((j, conv), out) in convs.iter().enumerate().zip(outs.iter_mut()) {
            let out = self.words_mut(op, out, n * ext)?;
            let table = &t.mod_up[level][j];
            let sources = Limbs::new(op, ring, conv.source.iter().map(|&g| (g, g)))?;
            let targets = Limbs::new(op, ring, conv.target.iter().map(|&g| (g, position(g))))?;
            let mut scaled = self.temp(n * sources.len)?;
            self.scale_sources(ring, &t, table, coeff, &sources, &mut scaled)?;
            self.convert(ring, &t, table, &scaled, None, &targets, out)?;
            self.ntt(ring, &t, out, &targets, false)?;
            for &g in &conv.source {
                self.copy_limbs(n, eval, g, out, g, 1)?;
            }
        }
        Ok(())
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
        let inverses: Vec<u64> = (0..=level).map(|i| ring.p_inv_mod_q(i).0).collect();
        let t = self.tables(ring)?;
        self.divide_by_sources(
            "mod_down",
            ring,
            &t,
            ring.mod_down(),
            &t.mod_down,
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
        let op = "mod_down_rescale";
        if level == 0 || level >= ring.num_q() {
            return Err(Error::OutOfLevels {
                op,
                level,
                needed: 1,
            });
        }
        let (conv, inverses) = ring.mod_down_rescale(level)?;
        let t = self.tables(ring)?;
        let table = t.mod_down_rescale[level]
            .as_ref()
            .ok_or(Error::OutOfLevels {
                op,
                level,
                needed: 1,
            })?;
        self.divide_by_sources(
            op, ring, &t, conv, table, level, inverses, extended, level, outs,
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
        let op = "key_switch_inner_product";
        if level >= ring.num_q() {
            return Err(Error::LevelMismatch {
                op,
                detail: format!(
                    "level {level} beyond the chain (top level {})",
                    ring.num_q() - 1
                ),
            });
        }
        // The same error as the CPU oracle and wgpu (more than 64 digits
        // would overflow the 128-bit accumulators of inner_product).
        if digits.len() > keys.len() || digits.len() > MAX_DIGITS {
            return Err(Error::LengthMismatch {
                op,
                got: digits.len(),
                expected: keys.len(),
            });
        }
        let n = ring.n();
        let layout = KeyLayout::of(op, ring, keys, digits.len(), level)?;
        let basis = ring.extended_basis(level);
        let limbs = Limbs::new(op, ring, basis.iter().map(|&g| (g, layout.position(g))))?;
        let ext_words = n * limbs.len;
        let key_words = layout.words(n);
        let mut operands = DigitOperands {
            digit: [0; MAX_DIGITS],
            key_b: [0; MAX_DIGITS],
            key_a: [0; MAX_DIGITS],
        };
        for (j, (d, (kb, ka))) in digits.iter().zip(keys).enumerate() {
            operands.digit[j] = self.words(op, d, ext_words)?.device_ptr(&self.stream).0;
            operands.key_b[j] = self.words(op, kb, key_words)?.device_ptr(&self.stream).0;
            operands.key_a[j] = self.words(op, ka, key_words)?.device_ptr(&self.stream).0;
        }
        let out0 = self.words_mut(op, out0, ext_words)?;
        let out1 = self.words_mut(op, out1, ext_words)?;
        let t = self.tables(ring)?;
        let (count, n32) = (digits.len() as u32, n as u32);
        let mut a = self.stream.launch_builder(&self.kernels.inner_product);
        a.arg(out0)
            .arg(out1)
            .arg(&operands)
            .arg(&t.primes)
            .arg(&limbs.map)
            .arg(&count)
            .arg(&n32);
        // SAFETY: inner_product(u64*, u64*, DigitOperands, const Prime*,
        // LimbMap, u32, u32); the first `count` operand addresses are live
        // buffers of this stream holding the extended basis of `level`
        // (digits) or of the key's top (keys, `layout`), and every key
        // position is a limb of that basis.
        unsafe { self.launch(op, &mut a, words_grid(n, limbs.grid())) }
    }

    fn rescale(
        &self,
        ring: &RingContext,
        poly: &Buffer,
        level: usize,
        out: &mut Buffer,
    ) -> Result<()> {
        let op = "rescale";
        if level == 0 || level >= ring.num_q() {
            return Err(Error::OutOfLevels {
                op,
                level,
                needed: 1,
            });
        }
        let n = ring.n();
        let input = self.words(op, poly, n * (level + 1))?;
        let out = self.words_mut(op, out, n * level)?;
        let t = self.tables(ring)?;
        let last = Limbs::new(op, ring, [(level, 0)])?;
        let targets = Limbs::new(op, ring, (0..level).map(|i| (i, i)))?;
        let inverses: Vec<u64> = (0..level).map(|i| ring.rescale_inv(level, i).0).collect();
        let inverses = LimbScalars::new(op, &ring.moduli()[..level], &inverses)?;
        let mut coeff = self.temp(n)?;
        self.copy_limbs(n, input, level, &mut coeff, 0, 1)?;
        self.ntt(ring, &t, &mut coeff, &last, true)?;
        self.lift_centered(op, ring, &t, &coeff, level, &targets, out)?;
        self.ntt(ring, &t, out, &targets, false)?;
        let n32 = n as u32;
        let mut a = self
            .stream
            .launch_builder(&self.kernels.subtract_then_scale);
        a.arg(&mut *out)
            .arg(input)
            .arg(&t.primes)
            .arg(&targets.map)
            .arg(&inverses)
            .arg(&n32);
        // SAFETY: subtract_then_scale(u64*, const u64*, const Prime*, LimbMap,
        // LimbScalars, u32); limb i at position i of `out` and `input`.
        unsafe { self.launch(op, &mut a, words_grid(n, targets.grid())) }
    }

    fn mod_raise(
        &self,
        ring: &RingContext,
        src: &Buffer,
        level: usize,
        out: &mut Buffer,
    ) -> Result<()> {
        let op = "mod_raise";
        let basis = check_mod_raise(BackendKind::Cuda, ring, src, level, out)?;
        let n = ring.n();
        let src = self.words(op, src, n)?;
        let out = self.words_mut(op, out, n * basis.len())?;
        let t = self.tables(ring)?;
        let targets = Limbs::of_basis(op, ring, &basis)?;
        self.lift_centered(op, ring, &t, src, 0, &targets, out)
    }
}
