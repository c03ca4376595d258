//! The backend seam: coarse, batched RNS-level primitives on device buffers.
//!
//! Every method works on whole polynomials (all limbs at once), writes into a
//! caller-supplied buffer and returns `Result`. A polynomial buffer holds at
//! least `basis.len() * N` words, limb-major; limb k is reduced modulo
//! `ring.moduli()[basis[k]]`, and inputs are fully reduced. Outputs of every
//! primitive are fully reduced, so all backends agree bit for bit.
//!
//! Implementations: [`cpu::CpuBackend`], the oracle every other backend is
//! checked against; `cuda::CudaBackend` (feature `cuda`) and
//! `wgpu::WgpuBackend` (feature `wgpu`). Tables (twiddles, base-conversion
//! constants, permutations) come from the [`RingContext`]; device backends
//! upload them once per parameter set and keep them.
//!
//! A [`Buffer`] belongs to the backend that made it; handing it to another
//! backend is an [`Error::DeviceMismatch`]. [`transfer`] moves words between
//! backends explicitly; since every backend stores the same words in the same
//! order, a transferred polynomial means the same thing.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "wgpu")]
pub mod wgpu;

use std::fmt::Debug;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ring::RingContext;

/// Which implementation a backend is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BackendKind {
    /// The CPU reference backend.
    Cpu,
    /// NVIDIA GPUs through CUDA (cudarc, NVRTC).
    Cuda,
    /// Vulkan (and other) GPUs through wgpu.
    Wgpu,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
            BackendKind::Wgpu => "wgpu",
        })
    }
}

/// The backend a user asks for (`--backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BackendChoice {
    /// The best available: CUDA, then wgpu on a hardware adapter, then the CPU.
    #[default]
    Auto,
    /// The CPU backend.
    Cpu,
    /// The CUDA backend (first CUDA device).
    Cuda,
    /// The wgpu backend (the best adapter, software adapters included).
    Wgpu,
}

/// Creates the backend the user chose. `threads = 0` uses every core (CPU
/// backend). A backend that is not compiled in, or has no device, is an
/// [`Error::Backend`] saying why; `Auto` falls back to the next choice.
pub fn create_backend(choice: BackendChoice, threads: usize) -> Result<Arc<dyn Backend>> {
    match choice {
        BackendChoice::Cpu => Ok(Arc::new(cpu::CpuBackend::new(threads)?)),
        BackendChoice::Cuda => create_cuda(),
        BackendChoice::Wgpu => create_wgpu(true),
        BackendChoice::Auto => create_cuda()
            .or_else(|_| create_wgpu(false))
            .or_else(|_| Ok(Arc::new(cpu::CpuBackend::new(threads)?))),
    }
}

/// Every backend `auto` considers, in order, with the device it would use or
/// the reason it cannot.
pub fn probe_backends() -> Vec<(BackendKind, Result<String>)> {
    vec![
        (BackendKind::Cuda, create_cuda().map(|b| b.device_name())),
        (
            BackendKind::Wgpu,
            create_wgpu(false).map(|b| b.device_name()).or_else(|_| {
                create_wgpu(true)
                    .map(|b| format!("{} (software adapter: `auto` skips it)", b.device_name()))
            }),
        ),
        (
            BackendKind::Cpu,
            cpu::CpuBackend::new(1).map(|b| b.device_name()),
        ),
    ]
}

#[cfg(feature = "cuda")]
fn create_cuda() -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(cuda::CudaBackend::new(0)?))
}

#[cfg(not(feature = "cuda"))]
fn create_cuda() -> Result<Arc<dyn Backend>> {
    Err(not_compiled(BackendKind::Cuda))
}

/// The wgpu backend; with `allow_software` false, a CPU (software) adapter
/// such as lavapipe is refused.
#[cfg(feature = "wgpu")]
fn create_wgpu(allow_software: bool) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(wgpu::WgpuBackend::new(wgpu::WgpuOptions {
        allow_software,
        ..Default::default()
    })?))
}

#[cfg(not(feature = "wgpu"))]
fn create_wgpu(_allow_software: bool) -> Result<Arc<dyn Backend>> {
    Err(not_compiled(BackendKind::Wgpu))
}

#[cfg(not(all(feature = "cuda", feature = "wgpu")))]
fn not_compiled(kind: BackendKind) -> Error {
    Error::Backend {
        backend: kind.to_string(),
        detail: format!("not compiled in (build with `--features {kind}`)"),
    }
}

/// Copies the first `words` words of `buffer` (owned by `from`) into a new
/// buffer of `to`. The words keep their meaning: every backend uses the same
/// layout and NTT order.
pub fn transfer(
    from: &dyn Backend,
    to: &dyn Backend,
    buffer: &Buffer,
    words: usize,
) -> Result<Buffer> {
    to.upload(&from.download(buffer, words)?)
}

/// Storage behind a [`Buffer`]; one variant per backend.
#[derive(Debug)]
pub(crate) enum Storage {
    Host(Vec<u64>),
    #[cfg(feature = "cuda")]
    Cuda(cuda::DeviceWords),
    #[cfg(feature = "wgpu")]
    Wgpu(wgpu::DeviceWords),
}

/// A buffer of 64-bit words owned by one backend's device.
///
/// Host buffers come from and return to a recycling pool (see
/// [`cpu::HostPool`]), so steady-state operations do not fault in fresh pages.
/// Device buffers free their memory on drop.
#[derive(Debug)]
pub struct Buffer {
    storage: Storage,
}

impl Clone for Buffer {
    /// # Panics
    /// When a device runs out of memory; [`Buffer::try_clone`] returns that
    /// as an error instead.
    fn clone(&self) -> Self {
        self.try_clone()
            .unwrap_or_else(|e| panic!("cloning a buffer: {e}"))
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        #[allow(irrefutable_let_patterns)]
        if let Storage::Host(v) = &mut self.storage {
            cpu::HostPool::give_back(std::mem::take(v));
        }
    }
}

impl Buffer {
    pub(crate) fn from_storage(storage: Storage) -> Self {
        Buffer { storage }
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    pub(crate) fn storage_mut(&mut self) -> &mut Storage {
        &mut self.storage
    }

    /// A copy on the same device.
    pub fn try_clone(&self) -> Result<Buffer> {
        let storage = match &self.storage {
            Storage::Host(v) => {
                let mut copy = cpu::HostPool::take(v.len());
                copy.copy_from_slice(v);
                Storage::Host(copy)
            }
            #[cfg(feature = "cuda")]
            Storage::Cuda(d) => Storage::Cuda(d.try_clone()?),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(d) => Storage::Wgpu(d.try_clone()?),
        };
        Ok(Buffer { storage })
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        match &self.storage {
            Storage::Host(v) => v.len(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(d) => d.len(),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(d) => d.len(),
        }
    }

    /// Whether the buffer holds no words.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Overwrites every word with zero (for secret material being dropped).
    pub(crate) fn wipe(&mut self) {
        match &mut self.storage {
            Storage::Host(v) => {
                v.fill(0);
                std::hint::black_box(v);
            }
            #[cfg(feature = "cuda")]
            Storage::Cuda(d) => d.wipe(),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(d) => d.wipe(),
        }
    }

    /// The backend kind that owns the buffer.
    pub fn kind(&self) -> BackendKind {
        match &self.storage {
            Storage::Host(_) => BackendKind::Cpu,
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => BackendKind::Cuda,
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(_) => BackendKind::Wgpu,
        }
    }
}

/// Coarse RNS primitives. See the module documentation for the conventions.
pub trait Backend: Send + Sync + Debug {
    /// Which implementation this is.
    fn kind(&self) -> BackendKind;
    /// A human-readable device name (CPU model, GPU name).
    fn device_name(&self) -> String;
    /// Worker threads (CPU) or 0 where meaningless.
    fn threads(&self) -> usize;
    /// Waits until every operation submitted so far has finished (device
    /// backends queue work asynchronously; the CPU is always finished).
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    /// A buffer of `words` words with unspecified contents (every primitive
    /// overwrites its outputs entirely).
    fn alloc(&self, words: usize) -> Result<Buffer>;
    /// A buffer of `words` zero words.
    fn alloc_zeroed(&self, words: usize) -> Result<Buffer>;
    /// Copies host words into a new device buffer.
    fn upload(&self, host: &[u64]) -> Result<Buffer>;
    /// Copies the first `words` words of a device buffer to the host.
    fn download(&self, buffer: &Buffer, words: usize) -> Result<Vec<u64>>;
    /// Copies the first `words` words of `src` into `dst`.
    fn copy(&self, src: &Buffer, dst: &mut Buffer, words: usize) -> Result<()>;

    /// Forward NTT of every limb (coefficient → evaluation domain).
    fn ntt_forward(&self, ring: &RingContext, poly: &mut Buffer, basis: &[usize]) -> Result<()>;
    /// Inverse NTT of every limb (evaluation → coefficient domain).
    fn ntt_inverse(&self, ring: &RingContext, poly: &mut Buffer, basis: &[usize]) -> Result<()>;

    /// `acc = acc + b`.
    fn add_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()>;
    /// `acc = acc - b`.
    fn sub_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()>;
    /// `acc = -acc`.
    fn neg_assign(&self, ring: &RingContext, acc: &mut Buffer, basis: &[usize]) -> Result<()>;
    /// `acc = acc ⊙ b` (element-wise product).
    fn mul_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()>;
    /// `acc = acc + a ⊙ b`.
    fn mul_add_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        a: &Buffer,
        b: &Buffer,
        basis: &[usize],
    ) -> Result<()>;
    /// The tensor product of two degree-1 ciphertexts, element-wise:
    /// `out[0] = a[0]⊙b[0]`, `out[1] = a[0]⊙b[1] + a[1]⊙b[0]`, `out[2] = a[1]⊙b[1]`
    /// (`a`, `b` of length 2, `out` of length 3).
    fn tensor(
        &self,
        ring: &RingContext,
        a: &[Buffer],
        b: &[Buffer],
        out: &mut [Buffer],
        basis: &[usize],
    ) -> Result<()>;
    /// `acc = acc + a · c_k` on limb k, for one reduced constant per limb.
    fn mul_scalar_add_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        a: &Buffer,
        scalars: &[u64],
        basis: &[usize],
    ) -> Result<()>;
    /// `acc = acc · c_k` on limb k, for one reduced constant per limb.
    fn mul_scalar_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        scalars: &[u64],
        basis: &[usize],
    ) -> Result<()>;
    /// `acc = acc + c_k` on every word of limb k.
    fn add_scalar_assign(
        &self,
        ring: &RingContext,
        acc: &mut Buffer,
        scalars: &[u64],
        basis: &[usize],
    ) -> Result<()>;

    /// Evaluation-domain automorphism `X -> X^g`: `out[i] = src[perm[i]]` per limb.
    fn automorphism(
        &self,
        ring: &RingContext,
        src: &Buffer,
        galois_element: u64,
        out: &mut Buffer,
        basis: &[usize],
    ) -> Result<()>;

    /// Hybrid key-switching ModUp at `level`: for every digit j, from the
    /// digit's limbs of `coeff` (coefficient domain) to every limb of the
    /// extended basis, written to `outs[j]` in the evaluation domain. The
    /// digit's own limbs are copied from `eval` (the same polynomial in the
    /// evaluation domain). `outs.len()` is the number of digits at `level`.
    fn mod_up(
        &self,
        ring: &RingContext,
        coeff: &Buffer,
        eval: &Buffer,
        level: usize,
        outs: &mut [Buffer],
    ) -> Result<()>;

    /// Hybrid key-switching ModDown at `level` of each `extended[k]` into
    /// `outs[k]`: `out = (x - [x]_P) · P^{-1}` for `x` on the extended basis
    /// in the evaluation domain, `out` on the level's basis, evaluation
    /// domain. `[x]_P` is the centered residue given by the base conversion
    /// of the P limbs minus `v·P`, with
    /// `v = (Σ_k ((y_k · floor(2^128/p_k)) >> 64) + 2^63) >> 64` (64-bit fixed
    /// point, `y_k` the scaled P limbs): this is round(x/P) except when
    /// `x mod P` lies within `K·P/2^64` above P/2, where it is floor(x/P).
    /// Every backend computes exactly this integer formula.
    fn mod_down(
        &self,
        ring: &RingContext,
        extended: &[Buffer],
        level: usize,
        outs: &mut [Buffer],
    ) -> Result<()>;

    /// ModDown fused with a rescale, at `level >= 1`: divides each
    /// `extended[k]` by `P·q_level` (the same centered conversion as
    /// [`Backend::mod_down`], from the source basis `{q_level} ∪ P`) into
    /// `outs[k]` on the basis of `level - 1`, evaluation domain.
    fn mod_down_rescale(
        &self,
        ring: &RingContext,
        extended: &[Buffer],
        level: usize,
        outs: &mut [Buffer],
    ) -> Result<()>;

    /// Key-switching inner product on the extended basis at `level`:
    /// `out0 = Σ_j digits[j] ⊙ keys[j].0`, `out1 = Σ_j digits[j] ⊙ keys[j].1`,
    /// accumulated wide and reduced once. Key buffers hold the extended
    /// basis of the key's top level ([`KeyLayout`]), at least `level`.
    fn key_switch_inner_product(
        &self,
        ring: &RingContext,
        digits: &[Buffer],
        keys: &[(Buffer, Buffer)],
        level: usize,
        out0: &mut Buffer,
        out1: &mut Buffer,
    ) -> Result<()>;

    /// A whole hybrid key switch of `poly` (evaluation domain, level `level`)
    /// with `keys`: ModUp of every digit, the inner product, then `tail`,
    /// into `outs` (two buffers). Exactly the composition of
    /// [`Backend::ntt_inverse`], [`Backend::mod_up`],
    /// [`Backend::key_switch_inner_product`] and, for [`KeySwitchTail::ModDown`],
    /// [`Backend::mod_down`] (outputs at `level`); for
    /// [`KeySwitchTail::ModDownRescale`], `acc += P·addend` on the Q limbs
    /// ([`Backend::mul_scalar_add_assign`]) then [`Backend::mod_down_rescale`]
    /// (outputs at `level - 1`); for [`KeySwitchTail::ModDownAutomorphism`],
    /// [`Backend::mod_down`], [`Backend::add_assign`] of the addend to the
    /// first result and [`Backend::automorphism`] of both; that composition ([`key_switch_composed`]) is the default. Backends
    /// override it with a fused version that never writes the digits or the
    /// accumulators out in full.
    fn key_switch(
        &self,
        ring: &RingContext,
        poly: &Buffer,
        keys: &[(Buffer, Buffer)],
        level: usize,
        tail: KeySwitchTail<'_>,
        outs: &mut [Buffer],
    ) -> Result<()> {
        key_switch_composed(self, ring, poly, keys, level, tail, outs)
    }

    /// Bootstrapping's ModRaise: from `src`, one limb modulo `q_0` in the
    /// coefficient domain (words in `[0, q_0)`), to `out` on the basis of
    /// `level` in the coefficient domain: every word's centered
    /// representative (`x − q_0` when `x > q_0/2`) reduced modulo each prime.
    /// Errors (every backend the same, see [`check_mod_raise`]): a level
    /// beyond the chain is [`Error::OutOfRange`], a `src` shorter than N
    /// words or an `out` shorter than `(level + 1)·N` a
    /// [`Error::LengthMismatch`]. The default goes through the host (one
    /// limb down, `level + 1` up); the device backends override it with
    /// a kernel.
    fn mod_raise(
        &self,
        ring: &RingContext,
        src: &Buffer,
        level: usize,
        out: &mut Buffer,
    ) -> Result<()> {
        let basis = check_mod_raise(self.kind(), ring, src, level, out)?;
        let n = ring.n();
        let words = self.download(src, n)?;
        let q0 = ring.moduli()[0].value();
        let mut host = vec![0u64; n * basis.len()];
        for (limb, &index) in host.chunks_exact_mut(n).zip(&basis) {
            let m = &ring.moduli()[index];
            let minus_q0 = m.neg(q0 % m.value());
            for (y, &x) in limb.iter_mut().zip(&words) {
                let x = x % q0;
                *y = if x > q0 / 2 {
                    m.add(x % m.value(), minus_q0)
                } else {
                    x % m.value()
                };
            }
        }
        self.copy(&self.upload(&host)?, out, host.len())
    }

    /// Divides by the last prime with rounding: from `poly` at `level`
    /// (evaluation domain) to `out` at `level - 1` (evaluation domain).
    fn rescale(
        &self,
        ring: &RingContext,
        poly: &Buffer,
        level: usize,
        out: &mut Buffer,
    ) -> Result<()>;
}

/// [`Backend::key_switch`] as the composition of the unfused primitives (the
/// trait's default; public so that fused versions can be tested against it).
pub fn key_switch_composed<B: Backend + ?Sized>(
    backend: &B,
    ring: &RingContext,
    poly: &Buffer,
    keys: &[(Buffer, Buffer)],
    level: usize,
    tail: KeySwitchTail<'_>,
    outs: &mut [Buffer],
) -> Result<()> {
    if level >= ring.num_q() {
        return Err(Error::LevelMismatch {
            op: "key_switch",
            detail: format!("level {level} beyond the chain"),
        });
    }
    let n = ring.n();
    let basis = ring.q_basis(level);
    let words = n * basis.len();
    let mut coeff = backend.alloc(words)?;
    backend.copy(poly, &mut coeff, words)?;
    backend.ntt_inverse(ring, &mut coeff, &basis)?;
    let ext_words = n * ring.extended_basis(level).len();
    let mut digits = (0..ring.params().digits_at_level(level))
        .map(|_| backend.alloc(ext_words))
        .collect::<Result<Vec<_>>>()?;
    backend.mod_up(ring, &coeff, poly, level, &mut digits)?;
    let [mut acc0, mut acc1] = [backend.alloc(ext_words)?, backend.alloc(ext_words)?];
    backend.key_switch_inner_product(ring, &digits, keys, level, &mut acc0, &mut acc1)?;
    let mut accs = [acc0, acc1];
    match tail {
        KeySwitchTail::ModDown => backend.mod_down(ring, &accs, level, outs),
        KeySwitchTail::ModDownRescale { addend } => {
            let p_mod_q: Vec<u64> = basis.iter().map(|&i| ring.p_mod_q(i)).collect();
            for (acc, c) in accs.iter_mut().zip(addend) {
                backend.mul_scalar_add_assign(ring, acc, c, &p_mod_q, &basis)?;
            }
            backend.mod_down_rescale(ring, &accs, level, outs)
        }
        KeySwitchTail::ModDownAutomorphism {
            galois_element,
            addend,
        } => {
            if outs.len() != 2 {
                return Err(Error::LengthMismatch {
                    op: "key_switch",
                    got: outs.len(),
                    expected: 2,
                });
            }
            let mut switched = [backend.alloc(words)?, backend.alloc(words)?];
            backend.mod_down(ring, &accs, level, &mut switched)?;
            backend.add_assign(ring, &mut switched[0], addend, &basis)?;
            for (k, out) in switched.iter().zip(outs.iter_mut()) {
                backend.automorphism(ring, k, galois_element, out, &basis)?;
            }
            Ok(())
        }
    }
}

/// What follows the inner product in [`Backend::key_switch`].
#[derive(Clone, Copy, Debug)]
pub enum KeySwitchTail<'a> {
    /// Divide by P: `(k0, k1)` at the input's level.
    ModDown,
    /// Add `P·addend[k]` to accumulator k, then divide by `P·q_level`
    /// (relinearization fused with the rescale): results at `level - 1`.
    ModDownRescale {
        /// The two polynomials added before the division (level `level`).
        addend: [&'a Buffer; 2],
    },
    /// Divide by P, add `addend` to the first result, then apply the
    /// automorphism `X -> X^galois_element` to both: `(σ_g(k0 + addend),
    /// σ_g(k1))` at the input's level (the end of a rotation).
    ModDownAutomorphism {
        /// The odd Galois element g < 2N.
        galois_element: u64,
        /// Added to k0 before the automorphism (level `level`).
        addend: &'a Buffer,
    },
}

/// Where the limbs of a switching key's digits lie. A key that serves the
/// levels up to `top` holds, in every digit buffer, the extended basis of
/// `top`: `q_0 ..= q_top`, then `p_0 .. p_{K−1}` (a full key has `top = L`:
/// the full basis). Backends read the key limb of global modulus `g` at
/// [`KeyLayout::position`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyLayout {
    top: usize,
    num_q: usize,
    num_p: usize,
}

impl KeyLayout {
    /// The layout of `keys`, whose first `digits` digits a key switch at
    /// `level` reads: `top` follows from the buffers' length.
    ///
    /// Errors: fewer than `digits` digits, buffers that are not one whole
    /// extended basis or differ in length ([`Error::LengthMismatch`]), a
    /// key whose top is below `level` ([`Error::LevelMismatch`]).
    pub fn of(
        op: &'static str,
        ring: &RingContext,
        keys: &[(Buffer, Buffer)],
        digits: usize,
        level: usize,
    ) -> Result<Self> {
        let (n, num_q, num_p) = (ring.n(), ring.num_q(), ring.num_p());
        if keys.len() < digits {
            return Err(Error::LengthMismatch {
                op,
                got: keys.len(),
                expected: digits,
            });
        }
        let words = keys.first().map_or(n * (num_q + num_p), |(b, _)| b.len());
        let limbs = words / n;
        if words % n != 0 || limbs <= num_p || limbs > num_q + num_p {
            return Err(Error::LengthMismatch {
                op,
                got: words,
                expected: n * (num_q + num_p),
            });
        }
        if let Some((b, a)) = keys[..digits]
            .iter()
            .find(|(b, a)| b.len() != words || a.len() != words)
        {
            return Err(Error::LengthMismatch {
                op,
                got: b.len().min(a.len()),
                expected: words,
            });
        }
        let top = limbs - num_p - 1;
        if top < level {
            return Err(Error::LevelMismatch {
                op,
                detail: format!("a key serving levels up to {top} used at level {level}"),
            });
        }
        Ok(Self { top, num_q, num_p })
    }

    /// The highest level the key serves.
    pub fn top(&self) -> usize {
        self.top
    }

    /// Words of one digit buffer (`n` per limb).
    pub fn words(&self, n: usize) -> usize {
        n * (self.top + 1 + self.num_p)
    }

    /// The limb of global modulus `g` in a digit buffer (`g` a prime of the
    /// extended basis of a level at most [`KeyLayout::top`]).
    pub fn position(&self, g: usize) -> usize {
        if g < self.num_q {
            g
        } else {
            self.top + 1 + (g - self.num_q)
        }
    }
}

/// The basis [`Backend::mod_raise`] writes at `level` (`0..=level`), after
/// checking its arguments for a backend of `kind`: the level lies on the
/// chain ([`Error::OutOfRange`]), `src` holds one limb and `out` every limb
/// of that basis ([`check_buffer`]). Every backend checks in this order, so
/// all report the same error for the same call.
pub(crate) fn check_mod_raise(
    kind: BackendKind,
    ring: &RingContext,
    src: &Buffer,
    level: usize,
    out: &Buffer,
) -> Result<Vec<usize>> {
    const OP: &str = "mod_raise";
    if level >= ring.num_q() {
        return Err(Error::OutOfRange {
            op: OP,
            detail: format!("level {level} beyond the chain's {} primes", ring.num_q()),
        });
    }
    let basis = ring.q_basis(level);
    check_buffer(OP, kind, src, ring.n())?;
    check_buffer(OP, kind, out, ring.n() * basis.len())?;
    Ok(basis)
}

/// Fails unless every modulus index of `basis` exists in the ring.
pub(crate) fn check_basis(op: &'static str, ring: &RingContext, basis: &[usize]) -> Result<()> {
    let count = ring.moduli().len();
    match basis.iter().find(|&&g| g >= count) {
        Some(g) => Err(Error::OutOfRange {
            op,
            detail: format!("modulus index {g} out of range (the ring has {count} moduli)"),
        }),
        None => Ok(()),
    }
}

/// Fails unless `basis` is valid and `scalars` holds one scalar per limb,
/// each reduced modulo its limb's prime.
pub(crate) fn check_scalars(
    op: &'static str,
    ring: &RingContext,
    scalars: &[u64],
    basis: &[usize],
) -> Result<()> {
    check_basis(op, ring, basis)?;
    if scalars.len() != basis.len() {
        return Err(Error::LengthMismatch {
            op,
            got: scalars.len(),
            expected: basis.len(),
        });
    }
    match scalars
        .iter()
        .zip(basis)
        .find(|(&c, &g)| c >= ring.moduli()[g].value())
    {
        Some((c, g)) => Err(Error::OutOfRange {
            op,
            detail: format!("scalar {c} not reduced modulo limb {g}"),
        }),
        None => Ok(()),
    }
}

/// Checks that a buffer holds at least `words` words and belongs to `kind`.
pub(crate) fn check_buffer(
    op: &'static str,
    kind: BackendKind,
    buffer: &Buffer,
    words: usize,
) -> Result<()> {
    if buffer.kind() != kind {
        return Err(Error::DeviceMismatch {
            op,
            left: kind.to_string(),
            right: buffer.kind().to_string(),
        });
    }
    if buffer.len() < words {
        return Err(Error::LengthMismatch {
            op,
            got: buffer.len(),
            expected: words,
        });
    }
    Ok(())
}
