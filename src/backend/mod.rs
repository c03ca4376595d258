//! The backend seam: coarse, batched RNS-level primitives on device buffers.
//!
//! Every method works on whole polynomials (all limbs at once), writes into a
//! caller-supplied buffer and returns `Result`. A polynomial buffer holds at
//! least `basis.len() * N` words, limb-major; limb k is reduced modulo
//! `ring.moduli()[basis[k]]`, and inputs are fully reduced. Outputs of every
//! primitive are fully reduced, so all backends agree bit for bit.
//!
//! Implementations: [`cpu::CpuBackend`], the oracle every other backend is
//! checked against. Tables (twiddles, base-conversion constants,
//! permutations) come from the [`RingContext`] and are computed once per
//! parameter set.

pub mod cpu;

use std::fmt::Debug;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ring::RingContext;

/// Which implementation a backend is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BackendKind {
    /// The CPU reference backend.
    Cpu,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Cpu => "cpu",
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
}

/// Creates the backend the user chose. `threads = 0` uses every core.
pub fn create_backend(choice: BackendChoice, threads: usize) -> Result<Arc<dyn Backend>> {
    match choice {
        // No GPU backend is compiled in yet: auto resolves to the CPU.
        BackendChoice::Auto | BackendChoice::Cpu => Ok(Arc::new(cpu::CpuBackend::new(threads)?)),
    }
}

/// Storage behind a [`Buffer`]; one variant per backend.
#[derive(Debug)]
pub(crate) enum Storage {
    Host(Vec<u64>),
}

/// A buffer of 64-bit words owned by one backend's device.
///
/// Host buffers come from and return to a recycling pool (see
/// [`cpu::HostPool`]), so steady-state operations do not fault in fresh pages.
#[derive(Debug)]
pub struct Buffer {
    storage: Storage,
}

impl Clone for Buffer {
    fn clone(&self) -> Self {
        match &self.storage {
            Storage::Host(v) => {
                let mut copy = cpu::HostPool::take(v.len());
                copy.copy_from_slice(v);
                Buffer {
                    storage: Storage::Host(copy),
                }
            }
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        match &mut self.storage {
            Storage::Host(v) => cpu::HostPool::give_back(std::mem::take(v)),
        }
    }
}

impl Buffer {
    /// Number of words.
    pub fn len(&self) -> usize {
        match &self.storage {
            Storage::Host(v) => v.len(),
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
        }
    }

    /// The backend kind that owns the buffer.
    pub fn kind(&self) -> BackendKind {
        match &self.storage {
            Storage::Host(_) => BackendKind::Cpu,
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
    /// accumulated wide and reduced once. Key buffers hold the full basis
    /// (all of Q then P).
    fn key_switch_inner_product(
        &self,
        ring: &RingContext,
        digits: &[Buffer],
        keys: &[(Buffer, Buffer)],
        level: usize,
        out0: &mut Buffer,
        out1: &mut Buffer,
    ) -> Result<()>;

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
