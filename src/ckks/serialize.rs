//! A versioned binary format for parameter sets, keys, plaintexts and
//! ciphertexts.
//!
//! # Format, version 2
//!
//! Every object is one self-contained *frame*. All integers are unsigned
//! little-endian; `f64` values are stored as the little-endian `u64` of their
//! IEEE-754 bits.
//!
//! ```text
//! offset  size  field
//!      0     4  magic, the bytes "HEFM"
//!      4     2  u16 format version (2; version 1 stored public keys on Q only)
//!      6     2  u16 object kind (see below)
//!      8     8  u64 parameter id (Parameters::id(); 0 for a parameter set)
//!     16     8  u64 payload length in bytes (P)
//!     24     P  payload (layout by kind, below)
//!   24+P     8  u64 checksum: 64-bit FNV-1a of bytes 0 .. 24+P
//! ```
//!
//! The header is [`HEADER_LEN`] = 24 bytes and a frame is `24 + P + 8` bytes.
//! FNV-1a-64 starts from `0xcbf29ce484222325` and, for each byte b, sets
//! `h = (h ^ b) · 0x100000001b3 mod 2^64`; both steps are bijections of the
//! state, so any change of a single byte of the header or payload changes the
//! checksum.
//!
//! Object kinds and their payloads (`n` = N, `L` = the maximum level,
//! `K` = the number of special primes; "words" are `u64`, limb-major: limb 0's
//! N words, then limb 1's, ...; polynomials are in the evaluation domain and
//! every word of limb k is reduced modulo the k-th prime of the polynomial's
//! basis):
//!
//! | kind | object | payload |
//! |------|--------|---------|
//! | 1 | parameters | `u64` id of the validated set, then the UTF-8 JSON of its [`ParametersLiteral`] |
//! | 2 | public key | `u64` limb count (= L+1+K, the full basis), then b then a, each `n·(L+1+K)` words |
//! | 3 | relinearization key | a switching key |
//! | 4 | Galois keys | `u64` count, then per key (strictly increasing elements): `u64` Galois element, a switching key |
//! | 5 | plaintext | `u64` level l, `u64` scale bits, `u64` slots, `u64` degree (= 0), then one polynomial of `n·(l+1)` words |
//! | 6 | ciphertext | `u64` level l, `u64` scale bits, `u64` slots, `u64` degree d (1 or 2), then c_0 .. c_d, each `n·(l+1)` words |
//! | 7 | secret key | `u64` n, then n signed coefficients, one `i8` byte each (-1, 0 or 1) |
//!
//! A switching key is `u64` digit count k (= `digits_at_level(L)` for a
//! relinearization key, 1..=that for a Galois key), `u64` limb count
//! (= t+1+K, with t = min(k·α − 1, L) the highest level the key serves: the
//! basis q_0..q_t, p_0..p_{K-1}; the full basis for a key of every digit),
//! then per digit `b_j` then `a_j`, each `n·(t+1+K)` words. (Until
//! 2026-11-25 a key of fewer digits was stored on the full basis; such a
//! file is refused by its limb count.)
//!
//! Only the signed coefficients of a secret key are stored; its
//! evaluation-domain form is recomputed on load. The Galois key of element g
//! is stored as generated: a key switching s to σ_g^{-1}(s) (see
//! `KeyGenerator::gen_galois_key`).
//!
//! # Validation on read
//!
//! Every failure is an [`Error::Format`] whose `what` names the object kind
//! (`"ciphertext"`, `"galois keys"`, ...), except a parameter id other than
//! the context's, which is an [`Error::ParameterMismatch`]. In order:
//! the header must be complete; the magic, the version (2) and the kind must
//! match; the parameter id must be the context's (0 for a parameter set); the
//! payload length must not exceed the largest payload of that kind the
//! context allows (checked before anything is allocated; the payload is then
//! read incrementally, so memory follows the bytes actually present); the
//! payload and checksum must be complete; the checksum must match; then the
//! payload is parsed: its length must be exactly what its fields imply,
//! level ≤ L, the scale finite and ≥ 1, slots a power of two ≤ N/2, the
//! ciphertext degree 1 or 2 (0 for a plaintext), digit and limb counts those
//! of the context, every word reduced modulo its limb's prime, Galois elements
//! odd, below 2N and strictly increasing, secret coefficients in {-1, 0, 1}
//! and exactly N of them. A parameter-set payload must decode to a literal
//! that validates to the stored id.
//!
//! # API
//!
//! For each object, `write_*`/`read_*` work on a stream (`read_*` consumes
//! exactly one frame, so frames may be concatenated), `*_to_bytes`/
//! `*_from_bytes` on memory and `save_*`/`load_*` on a file; `*_from_bytes`
//! and `load_*` also reject trailing bytes after the frame. I/O errors are
//! [`Error::Io`] with the path (files) or the object being read or written
//! (streams). Writers refuse objects of another parameter set
//! ([`Error::ParameterMismatch`]) or of a malformed shape
//! ([`Error::OutOfRange`]).

use std::io::{Read, Write};
use std::path::Path;

use super::ciphertext::{Ciphertext, Plaintext};
use super::context::CkksContext;
use super::keys::{GaloisKey, GaloisKeys, PublicKey, RelinearizationKey, SecretKey, SwitchingKey};
use crate::backend::Buffer;
use crate::error::{Error, Result};
use crate::params::ParametersLiteral;

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"HEFM";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 2;
/// Bytes of the fixed header (magic, version, kind, parameter id, payload length).
pub const HEADER_LEN: usize = 24;
/// Bytes of the trailing checksum.
pub const CHECKSUM_LEN: usize = 8;
/// The largest accepted payload of a parameter-set frame.
pub const MAX_PARAMETERS_PAYLOAD: u64 = 1 << 20;

/// Bytes reserved up front when reading a payload; beyond that the buffer
/// grows with the bytes actually read.
const INITIAL_READ_CAPACITY: u64 = 1 << 20;
/// Bytes of the scalar prefix of a plaintext or ciphertext payload.
const CIPHER_PREFIX_LEN: u64 = 32;
/// Bytes of the prefix of a switching key (digit count, limb count).
const SWITCHING_PREFIX_LEN: u64 = 16;

/// The kinds of serialized objects, with their codes in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A [`ParametersLiteral`].
    Parameters,
    /// A [`PublicKey`].
    PublicKey,
    /// A [`RelinearizationKey`].
    RelinearizationKey,
    /// A set of Galois keys ([`GaloisKeys`]).
    GaloisKeys,
    /// A [`Plaintext`].
    Plaintext,
    /// A [`Ciphertext`].
    Ciphertext,
    /// A [`SecretKey`].
    SecretKey,
}

impl ObjectKind {
    /// Every kind, by code.
    pub const ALL: [ObjectKind; 7] = [
        ObjectKind::Parameters,
        ObjectKind::PublicKey,
        ObjectKind::RelinearizationKey,
        ObjectKind::GaloisKeys,
        ObjectKind::Plaintext,
        ObjectKind::Ciphertext,
        ObjectKind::SecretKey,
    ];

    /// The code written in the header.
    pub fn code(self) -> u16 {
        match self {
            ObjectKind::Parameters => 1,
            ObjectKind::PublicKey => 2,
            ObjectKind::RelinearizationKey => 3,
            ObjectKind::GaloisKeys => 4,
            ObjectKind::Plaintext => 5,
            ObjectKind::Ciphertext => 6,
            ObjectKind::SecretKey => 7,
        }
    }

    /// The kind of a header code, if any.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The name used in error messages (`what` of [`Error::Format`]).
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Parameters => "parameters",
            ObjectKind::PublicKey => "public key",
            ObjectKind::RelinearizationKey => "relinearization key",
            ObjectKind::GaloisKeys => "galois keys",
            ObjectKind::Plaintext => "plaintext",
            ObjectKind::Ciphertext => "ciphertext",
            ObjectKind::SecretKey => "secret key",
        }
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

// ----- checksum ---------------------------------------------------------------

/// 64-bit FNV-1a.
#[derive(Clone, Copy)]
struct Fnv1a64(u64);

impl Fnv1a64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Self(Self::OFFSET)
    }

    fn update(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(Self::PRIME);
        }
        self.0 = h;
    }

    fn finish(self) -> u64 {
        self.0
    }
}

// ----- errors -----------------------------------------------------------------

fn format_err(kind: ObjectKind, detail: impl Into<String>) -> Error {
    Error::Format {
        what: kind.name(),
        detail: detail.into(),
    }
}

fn truncated(kind: ObjectKind, detail: impl std::fmt::Display) -> Error {
    format_err(kind, format!("truncated: {detail}"))
}

fn io_err(context: &str, source: std::io::Error) -> Error {
    Error::Io {
        context: context.to_string(),
        source,
    }
}

fn shape_err(op: &'static str, detail: impl Into<String>) -> Error {
    Error::OutOfRange {
        op,
        detail: detail.into(),
    }
}

// ----- header -----------------------------------------------------------------

fn encode_header(kind: ObjectKind, params_id: u64, payload_len: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[6..8].copy_from_slice(&kind.code().to_le_bytes());
    h[8..16].copy_from_slice(&params_id.to_le_bytes());
    h[16..24].copy_from_slice(&payload_len.to_le_bytes());
    h
}

fn le_u16(bytes: &[u8]) -> u16 {
    let mut b = [0u8; 2];
    b.copy_from_slice(&bytes[..2]);
    u16::from_le_bytes(b)
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(b)
}

/// What a reader expects of a frame.
struct Expect {
    kind: ObjectKind,
    /// The context's parameter id, or `None` for a parameter set (id 0).
    params_id: Option<u64>,
    /// The largest acceptable payload length.
    max_payload: u64,
    /// The operation named in a [`Error::ParameterMismatch`].
    op: &'static str,
}

/// Checks magic, version, kind, parameter id and payload bound; returns the
/// payload length.
fn check_header(header: &[u8; HEADER_LEN], expect: &Expect) -> Result<u64> {
    let kind = expect.kind;
    if header[0..4] != MAGIC {
        return Err(format_err(
            kind,
            format!(
                "bad magic {:02x?} (expected \"HEFM\"): not a heformer file",
                &header[0..4]
            ),
        ));
    }
    let version = le_u16(&header[4..6]);
    if version != FORMAT_VERSION {
        return Err(format_err(
            kind,
            format!(
                "unsupported format version {version} (this build reads version {FORMAT_VERSION})"
            ),
        ));
    }
    let code = le_u16(&header[6..8]);
    if code != kind.code() {
        let found = match ObjectKind::from_code(code) {
            Some(k) => format!("kind {code} ({k})"),
            None => format!("an unknown object kind {code}"),
        };
        return Err(format_err(
            kind,
            format!(
                "the frame holds {found}, expected kind {} ({kind})",
                kind.code()
            ),
        ));
    }
    let id = le_u64(&header[8..16]);
    match expect.params_id {
        None if id != 0 => {
            return Err(format_err(
                kind,
                format!("a parameter-set frame must carry parameter id 0, found {id:#018x}"),
            ))
        }
        Some(expected) if id != expected => {
            return Err(Error::ParameterMismatch {
                op: expect.op,
                left: expected,
                right: id,
            })
        }
        _ => {}
    }
    let len = le_u64(&header[16..24]);
    if len > expect.max_payload {
        return Err(format_err(
            kind,
            format!(
                "payload length {len} exceeds the largest {kind} payload of this parameter set ({} bytes)",
                expect.max_payload
            ),
        ));
    }
    Ok(len)
}

fn check_checksum(kind: ObjectKind, header: &[u8], payload: &[u8], stored: u64) -> Result<()> {
    let mut h = Fnv1a64::new();
    h.update(header);
    h.update(payload);
    let computed = h.finish();
    if computed != stored {
        return Err(format_err(
            kind,
            format!("checksum mismatch (stored {stored:#018x}, computed {computed:#018x}): the data is corrupt"),
        ));
    }
    Ok(())
}

/// Reads one frame from a stream; returns the verified payload.
fn read_frame<R: Read + ?Sized>(r: &mut R, expect: &Expect) -> Result<Vec<u8>> {
    let kind = expect.kind;
    let context = format!("reading {kind}");
    let mut header = [0u8; HEADER_LEN];
    read_exact(
        r,
        &mut header,
        kind,
        &context,
        "the stream ends inside the header",
    )?;
    let len = check_header(&header, expect)?;
    // `len` is bounded by the context; the buffer grows only with bytes read.
    let mut payload = Vec::with_capacity(len.min(INITIAL_READ_CAPACITY) as usize);
    let got = r
        .take(len)
        .read_to_end(&mut payload)
        .map_err(|e| io_err(&context, e))?;
    if (got as u64) < len {
        return Err(truncated(
            kind,
            format!("payload of {len} bytes, only {got} present"),
        ));
    }
    let mut sum = [0u8; CHECKSUM_LEN];
    read_exact(
        r,
        &mut sum,
        kind,
        &context,
        "the stream ends inside the checksum",
    )?;
    check_checksum(kind, &header, &payload, u64::from_le_bytes(sum))?;
    Ok(payload)
}

fn read_exact<R: Read + ?Sized>(
    r: &mut R,
    buf: &mut [u8],
    kind: ObjectKind,
    context: &str,
    detail: &str,
) -> Result<()> {
    match r.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(truncated(kind, detail)),
        Err(e) => Err(io_err(context, e)),
    }
}

/// Splits one frame at the start of `bytes`; returns the verified payload and
/// the frame length.
fn split_frame<'a>(bytes: &'a [u8], expect: &Expect) -> Result<(&'a [u8], usize)> {
    let kind = expect.kind;
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(truncated(
            kind,
            format!("{} bytes, the header alone needs {HEADER_LEN}", bytes.len()),
        ));
    };
    let mut header_arr = [0u8; HEADER_LEN];
    header_arr.copy_from_slice(header);
    let len = check_header(&header_arr, expect)?;
    let available = (bytes.len() - HEADER_LEN) as u64;
    if available < len.saturating_add(CHECKSUM_LEN as u64) {
        return Err(truncated(
            kind,
            format!(
                "payload of {len} bytes and an {CHECKSUM_LEN}-byte checksum, only {available} bytes after the header"
            ),
        ));
    }
    // `len` fits: it is below `bytes.len()`.
    let end = HEADER_LEN + len as usize;
    let payload = &bytes[HEADER_LEN..end];
    check_checksum(
        kind,
        header,
        payload,
        le_u64(&bytes[end..end + CHECKSUM_LEN]),
    )?;
    Ok((payload, end + CHECKSUM_LEN))
}

fn reject_trailing(kind: ObjectKind, frame_len: usize, total: usize) -> Result<()> {
    if frame_len != total {
        return Err(format_err(
            kind,
            format!(
                "{} trailing bytes after the {frame_len}-byte frame",
                total - frame_len
            ),
        ));
    }
    Ok(())
}

// ----- writing ----------------------------------------------------------------

/// A writer that hashes and counts what passes through it.
struct Sink<'w, W: Write + ?Sized> {
    inner: &'w mut W,
    hash: Fnv1a64,
    written: u64,
    context: &'w str,
    scratch: Vec<u8>,
}

impl<W: Write + ?Sized> Sink<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.hash.update(bytes);
        self.written += bytes.len() as u64;
        self.inner
            .write_all(bytes)
            .map_err(|e| io_err(self.context, e))
    }

    fn put_u64(&mut self, x: u64) -> Result<()> {
        self.put(&x.to_le_bytes())
    }

    fn put_words(&mut self, words: &[u64]) -> Result<()> {
        const CHUNK: usize = 4096;
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut result = Ok(());
        for chunk in words.chunks(CHUNK) {
            scratch.clear();
            for &w in chunk {
                scratch.extend_from_slice(&w.to_le_bytes());
            }
            result = self.put(&scratch);
            if result.is_err() {
                break;
            }
        }
        self.scratch = scratch;
        result
    }
}

/// Writes a frame: header, the payload produced by `body` (which must be
/// exactly `payload_len` bytes), checksum.
fn write_frame<W: Write + ?Sized>(
    w: &mut W,
    kind: ObjectKind,
    params_id: u64,
    payload_len: u64,
    context: &str,
    body: impl FnOnce(&mut Sink<'_, W>) -> Result<()>,
) -> Result<()> {
    let mut sink = Sink {
        inner: w,
        hash: Fnv1a64::new(),
        written: 0,
        context,
        scratch: Vec::new(),
    };
    sink.put(&encode_header(kind, params_id, payload_len))?;
    body(&mut sink)?;
    let expected = HEADER_LEN as u64 + payload_len;
    if sink.written != expected {
        // Only a bug in this module can get here.
        return Err(format_err(
            kind,
            format!(
                "internal error: wrote {} payload bytes, declared {payload_len}",
                sink.written - HEADER_LEN as u64
            ),
        ));
    }
    let sum = sink.hash.finish();
    sink.inner
        .write_all(&sum.to_le_bytes())
        .map_err(|e| io_err(context, e))
}

// ----- payload parsing --------------------------------------------------------

/// A bounds-checked reader over a verified payload.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    kind: ObjectKind,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], kind: ObjectKind) -> Self {
        Self {
            bytes,
            pos: 0,
            kind,
        }
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8]> {
        let rest = self.bytes.len() - self.pos;
        if len > rest {
            return Err(truncated(
                self.kind,
                format!("{what} needs {len} bytes, {rest} left in the payload"),
            ));
        }
        let s = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(le_u64(self.take(8, what)?))
    }

    /// One polynomial on `basis` (global modulus indices): `n · basis.len()`
    /// words, each checked to be reduced.
    fn poly(&mut self, ctx: &CkksContext, basis: &[usize], what: &str) -> Result<Buffer> {
        let n = ctx.n();
        let bytes = self.take(n * basis.len() * 8, what)?;
        let mut words = Vec::with_capacity(n * basis.len());
        for (k, (limb, &g)) in bytes.chunks_exact(n * 8).zip(basis).enumerate() {
            let q = ctx.ring().moduli()[g].value();
            for (i, c) in limb.chunks_exact(8).enumerate() {
                let w = le_u64(c);
                if w >= q {
                    return Err(format_err(
                        self.kind,
                        format!("{what}: word {i} of limb {k} is {w}, not reduced modulo {q}"),
                    ));
                }
                words.push(w);
            }
        }
        ctx.backend().upload(&words)
    }

    fn finish(&self) -> Result<()> {
        if self.pos != self.bytes.len() {
            return Err(format_err(
                self.kind,
                format!(
                    "{} unparsed bytes at the end of the payload",
                    self.bytes.len() - self.pos
                ),
            ));
        }
        Ok(())
    }
}

/// Checks that the payload is exactly `expected` bytes.
fn check_payload_len(
    kind: ObjectKind,
    payload: &[u8],
    expected: u64,
    shape: impl FnOnce() -> String,
) -> Result<()> {
    if payload.len() as u64 != expected {
        return Err(format_err(
            kind,
            format!(
                "payload of {} bytes, {} needs {expected}",
                payload.len(),
                shape()
            ),
        ));
    }
    Ok(())
}

// ----- shapes -----------------------------------------------------------------

fn n_u64(ctx: &CkksContext) -> u64 {
    ctx.n() as u64
}

fn max_level(ctx: &CkksContext) -> usize {
    ctx.params().max_level()
}

/// Bytes of one polynomial with `limbs` limbs.
fn poly_bytes(ctx: &CkksContext, limbs: usize) -> u64 {
    n_u64(ctx) * limbs as u64 * 8
}

fn switching_digits(ctx: &CkksContext) -> usize {
    ctx.params().digits_at_level(max_level(ctx))
}

/// The basis of every digit of a switching key with `digits` digits: the
/// extended basis of the highest level it serves.
fn switching_key_basis(ctx: &CkksContext, digits: usize) -> Vec<usize> {
    let top = ctx.params().top_level_of_digits(digits);
    ctx.ring().extended_basis(top)
}

/// Bytes of a switching key payload with `digits` digits.
fn switching_key_len(ctx: &CkksContext, digits: usize) -> u64 {
    let limbs = switching_key_basis(ctx, digits).len();
    SWITCHING_PREFIX_LEN + digits as u64 * 2 * poly_bytes(ctx, limbs)
}

/// How many digits a switching key may have: all of the parameter set's
/// (a relinearization key), or any number from one (a Galois key, which
/// may serve the lower levels only).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Digits {
    All,
    AtLeastOne,
}

impl Digits {
    fn allows(self, digits: usize, full: usize) -> bool {
        match self {
            Digits::All => digits == full,
            Digits::AtLeastOne => (1..=full).contains(&digits),
        }
    }
}

/// Bytes of a plaintext (degree 0) or ciphertext payload.
fn cipher_len(ctx: &CkksContext, level: usize, degree: usize) -> u64 {
    CIPHER_PREFIX_LEN + (degree as u64 + 1) * poly_bytes(ctx, level + 1)
}

/// Downloads the `n · limbs` words of a polynomial.
fn download(ctx: &CkksContext, buf: &Buffer, limbs: usize) -> Result<Vec<u64>> {
    ctx.backend().download(buf, ctx.n() * limbs)
}

fn check_switching_key(
    ctx: &CkksContext,
    key: &SwitchingKey,
    allowed: Digits,
    op: &'static str,
) -> Result<()> {
    ctx.check_params(op, key.params_id)?;
    let digits = switching_digits(ctx);
    if !allowed.allows(key.digits.len(), digits) {
        return Err(shape_err(
            op,
            format!(
                "switching key with {} digits, the parameter set has {digits}",
                key.digits.len()
            ),
        ));
    }
    Ok(())
}

fn write_switching_key<W: Write + ?Sized>(
    ctx: &CkksContext,
    key: &SwitchingKey,
    sink: &mut Sink<'_, W>,
) -> Result<()> {
    let limbs = switching_key_basis(ctx, key.digits.len()).len();
    sink.put_u64(key.digits.len() as u64)?;
    sink.put_u64(limbs as u64)?;
    for (b, a) in &key.digits {
        sink.put_words(&download(ctx, b, limbs)?)?;
        sink.put_words(&download(ctx, a, limbs)?)?;
    }
    Ok(())
}

fn parse_switching_key(
    ctx: &CkksContext,
    c: &mut Cursor<'_>,
    allowed: Digits,
) -> Result<SwitchingKey> {
    let kind = c.kind;
    let digits = c.u64("switching key digit count")?;
    let full_digits = switching_digits(ctx);
    let count = usize::try_from(digits).unwrap_or(usize::MAX);
    if !allowed.allows(count, full_digits) {
        return Err(format_err(
            kind,
            format!("switching key with {digits} digits, the parameter set has {full_digits}"),
        ));
    }
    let basis = switching_key_basis(ctx, count);
    let limbs = c.u64("switching key limb count")?;
    if limbs != basis.len() as u64 {
        return Err(format_err(
            kind,
            format!(
                "switching key with {limbs} limbs, a key of {count} digits has {}",
                basis.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(count);
    for j in 0..count {
        let b = c.poly(ctx, &basis, &format!("digit {j}, b"))?;
        let a = c.poly(ctx, &basis, &format!("digit {j}, a"))?;
        out.push((b, a));
    }
    Ok(SwitchingKey {
        digits: out,
        params_id: ctx.params().id(),
    })
}

/// The scalar prefix of a plaintext or ciphertext payload.
struct CipherPrefix {
    level: usize,
    scale: f64,
    slots: usize,
    degree: usize,
}

fn parse_cipher_prefix(
    ctx: &CkksContext,
    c: &mut Cursor<'_>,
    degrees: std::ops::RangeInclusive<u64>,
) -> Result<CipherPrefix> {
    let kind = c.kind;
    let level = c.u64("level")?;
    let max = max_level(ctx);
    if level > max as u64 {
        return Err(format_err(
            kind,
            format!("level {level} above the maximum {max}"),
        ));
    }
    let scale = f64::from_bits(c.u64("scale")?);
    if !scale.is_finite() || scale < 1.0 {
        return Err(format_err(
            kind,
            format!("scale {scale} is not a finite value >= 1"),
        ));
    }
    let slots = c.u64("slots")?;
    let max_slots = ctx.params().max_slots() as u64;
    if !slots.is_power_of_two() || slots > max_slots {
        return Err(format_err(
            kind,
            format!("{slots} slots is not a power of two in 1..={max_slots}"),
        ));
    }
    let degree = c.u64("degree")?;
    if !degrees.contains(&degree) {
        return Err(format_err(
            kind,
            format!(
                "degree {degree} outside {}..={}",
                degrees.start(),
                degrees.end()
            ),
        ));
    }
    Ok(CipherPrefix {
        level: level as usize,
        scale,
        slots: slots as usize,
        degree: degree as usize,
    })
}

fn check_cipher_shape(
    ctx: &CkksContext,
    op: &'static str,
    level: usize,
    scale: f64,
    slots: usize,
) -> Result<()> {
    ctx.check_level(op, level)?;
    if !scale.is_finite() || scale < 1.0 {
        return Err(shape_err(
            op,
            format!("scale {scale} is not a finite value >= 1"),
        ));
    }
    if !slots.is_power_of_two() || slots > ctx.params().max_slots() {
        return Err(shape_err(
            op,
            format!(
                "{slots} slots is not a power of two in 1..={}",
                ctx.params().max_slots()
            ),
        ));
    }
    Ok(())
}

// ----- the objects --------------------------------------------------------------

/// One serializable object bound to a context.
trait Object: Sized {
    const KIND: ObjectKind;
    const READ_OP: &'static str;
    const WRITE_OP: &'static str;
    /// The object's parameter id, where it carries one.
    fn params_id(&self) -> Option<u64>;
    /// Checks the object's shape against the context; returns its exact payload length.
    fn payload_len(&self, ctx: &CkksContext) -> Result<u64>;
    fn write_payload<W: Write + ?Sized>(
        &self,
        ctx: &CkksContext,
        sink: &mut Sink<'_, W>,
    ) -> Result<()>;
    /// The largest payload of this kind the context allows.
    fn max_payload_len(ctx: &CkksContext) -> u64;
    /// Parses a checksum-verified payload.
    fn parse(ctx: &CkksContext, payload: &[u8]) -> Result<Self>;
}

impl Object for Plaintext {
    const KIND: ObjectKind = ObjectKind::Plaintext;
    const READ_OP: &'static str = "read_plaintext";
    const WRITE_OP: &'static str = "write_plaintext";

    fn params_id(&self) -> Option<u64> {
        Some(self.params_id)
    }

    fn payload_len(&self, ctx: &CkksContext) -> Result<u64> {
        check_cipher_shape(ctx, Self::WRITE_OP, self.level, self.scale, self.slots)?;
        Ok(cipher_len(ctx, self.level, 0))
    }

    fn write_payload<W: Write + ?Sized>(
        &self,
        ctx: &CkksContext,
        sink: &mut Sink<'_, W>,
    ) -> Result<()> {
        sink.put_u64(self.level as u64)?;
        sink.put_u64(self.scale.to_bits())?;
        sink.put_u64(self.slots as u64)?;
        sink.put_u64(0)?;
        sink.put_words(&download(ctx, &self.poly, self.level + 1)?)
    }

    fn max_payload_len(ctx: &CkksContext) -> u64 {
        cipher_len(ctx, max_level(ctx), 0)
    }

    fn parse(ctx: &CkksContext, payload: &[u8]) -> Result<Self> {
        let mut c = Cursor::new(payload, Self::KIND);
        let p = parse_cipher_prefix(ctx, &mut c, 0..=0)?;
        check_payload_len(Self::KIND, payload, cipher_len(ctx, p.level, 0), || {
            format!("a level-{} plaintext", p.level)
        })?;
        let poly = c.poly(ctx, &ctx.ring().q_basis(p.level), "polynomial")?;
        c.finish()?;
        Ok(Plaintext {
            poly,
            level: p.level,
            scale: p.scale,
            slots: p.slots,
            params_id: ctx.params().id(),
        })
    }
}

impl Object for Ciphertext {
    const KIND: ObjectKind = ObjectKind::Ciphertext;
    const READ_OP: &'static str = "read_ciphertext";
    const WRITE_OP: &'static str = "write_ciphertext";

    fn params_id(&self) -> Option<u64> {
        Some(self.params_id)
    }

    fn payload_len(&self, ctx: &CkksContext) -> Result<u64> {
        check_cipher_shape(ctx, Self::WRITE_OP, self.level, self.scale, self.slots)?;
        if !(2..=3).contains(&self.parts.len()) {
            return Err(shape_err(
                Self::WRITE_OP,
                format!(
                    "ciphertext with {} parts (degree 1 or 2 expected)",
                    self.parts.len()
                ),
            ));
        }
        Ok(cipher_len(ctx, self.level, self.parts.len() - 1))
    }

    fn write_payload<W: Write + ?Sized>(
        &self,
        ctx: &CkksContext,
        sink: &mut Sink<'_, W>,
    ) -> Result<()> {
        sink.put_u64(self.level as u64)?;
        sink.put_u64(self.scale.to_bits())?;
        sink.put_u64(self.slots as u64)?;
        sink.put_u64(self.parts.len() as u64 - 1)?;
        for part in &self.parts {
            sink.put_words(&download(ctx, part, self.level + 1)?)?;
        }
        Ok(())
    }

    fn max_payload_len(ctx: &CkksContext) -> u64 {
        cipher_len(ctx, max_level(ctx), 2)
    }

    fn parse(ctx: &CkksContext, payload: &[u8]) -> Result<Self> {
        let mut c = Cursor::new(payload, Self::KIND);
        let p = parse_cipher_prefix(ctx, &mut c, 1..=2)?;
        check_payload_len(
            Self::KIND,
            payload,
            cipher_len(ctx, p.level, p.degree),
            || format!("a level-{} degree-{} ciphertext", p.level, p.degree),
        )?;
        let basis = ctx.ring().q_basis(p.level);
        let parts = (0..=p.degree)
            .map(|k| c.poly(ctx, &basis, &format!("part {k}")))
            .collect::<Result<Vec<_>>>()?;
        c.finish()?;
        Ok(Ciphertext {
            parts,
            level: p.level,
            scale: p.scale,
            slots: p.slots,
            params_id: ctx.params().id(),
        })
    }
}

impl Object for PublicKey {
    const KIND: ObjectKind = ObjectKind::PublicKey;
    const READ_OP: &'static str = "read_public_key";
    const WRITE_OP: &'static str = "write_public_key";

    fn params_id(&self) -> Option<u64> {
        Some(self.params_id)
    }

    fn payload_len(&self, ctx: &CkksContext) -> Result<u64> {
        Ok(Self::max_payload_len(ctx))
    }

    fn write_payload<W: Write + ?Sized>(
        &self,
        ctx: &CkksContext,
        sink: &mut Sink<'_, W>,
    ) -> Result<()> {
        let limbs = ctx.ring().full_basis().len();
        sink.put_u64(limbs as u64)?;
        sink.put_words(&download(ctx, &self.b, limbs)?)?;
        sink.put_words(&download(ctx, &self.a, limbs)?)
    }

    fn max_payload_len(ctx: &CkksContext) -> u64 {
        8 + 2 * poly_bytes(ctx, ctx.ring().full_basis().len())
    }

    fn parse(ctx: &CkksContext, payload: &[u8]) -> Result<Self> {
        let mut c = Cursor::new(payload, Self::KIND);
        let limbs = c.u64("limb count")?;
        let basis = ctx.ring().full_basis();
        if limbs != basis.len() as u64 {
            return Err(format_err(
                Self::KIND,
                format!(
                    "{limbs} limbs, a public key has the full basis' {}",
                    basis.len()
                ),
            ));
        }
        check_payload_len(Self::KIND, payload, Self::max_payload_len(ctx), || {
            "a public key".into()
        })?;
        let b = c.poly(ctx, &basis, "b")?;
        let a = c.poly(ctx, &basis, "a")?;
        c.finish()?;
        Ok(PublicKey {
            b,
            a,
            params_id: ctx.params().id(),
        })
    }
}

impl Object for RelinearizationKey {
    const KIND: ObjectKind = ObjectKind::RelinearizationKey;
    const READ_OP: &'static str = "read_relinearization_key";
    const WRITE_OP: &'static str = "write_relinearization_key";

    fn params_id(&self) -> Option<u64> {
        Some(self.0.params_id)
    }

    fn payload_len(&self, ctx: &CkksContext) -> Result<u64> {
        check_switching_key(ctx, &self.0, Digits::All, Self::WRITE_OP)?;
        Ok(switching_key_len(ctx, switching_digits(ctx)))
    }

    fn write_payload<W: Write + ?Sized>(
        &self,
        ctx: &CkksContext,
        sink: &mut Sink<'_, W>,
    ) -> Result<()> {
        write_switching_key(ctx, &self.0, sink)
    }

    fn max_payload_len(ctx: &CkksContext) -> u64 {
        switching_key_len(ctx, switching_digits(ctx))
    }

    fn parse(ctx: &CkksContext, payload: &[u8]) -> Result<Self> {
        let len = switching_key_len(ctx, switching_digits(ctx));
        check_payload_len(Self::KIND, payload, len, || "a relinearization key".into())?;
        let mut c = Cursor::new(payload, Self::KIND);
        let key = parse_switching_key(ctx, &mut c, Digits::All)?;
        c.finish()?;
        Ok(RelinearizationKey(key))
    }
}

/// Whether `g` can be the Galois element of an automorphism `X -> X^g` of the ring.
fn valid_galois_element(ctx: &CkksContext, g: u64) -> bool {
    g % 2 == 1 && g < 2 * n_u64(ctx)
}

impl Object for GaloisKeys {
    const KIND: ObjectKind = ObjectKind::GaloisKeys;
    const READ_OP: &'static str = "read_galois_keys";
    const WRITE_OP: &'static str = "write_galois_keys";

    fn params_id(&self) -> Option<u64> {
        // The set carries no id of its own: every key is checked in `payload_len`.
        None
    }

    fn payload_len(&self, ctx: &CkksContext) -> Result<u64> {
        for (&g, key) in &self.keys {
            if key.galois_element != g || !valid_galois_element(ctx, g) {
                return Err(shape_err(
                    Self::WRITE_OP,
                    format!(
                        "invalid Galois element {g} (odd and below 2N = {} expected)",
                        2 * ctx.n()
                    ),
                ));
            }
            check_switching_key(ctx, &key.key, Digits::AtLeastOne, Self::WRITE_OP)?;
        }
        Ok(8 + self
            .keys
            .values()
            .map(|key| 8 + switching_key_len(ctx, key.key.digits.len()))
            .sum::<u64>())
    }

    fn write_payload<W: Write + ?Sized>(
        &self,
        ctx: &CkksContext,
        sink: &mut Sink<'_, W>,
    ) -> Result<()> {
        sink.put_u64(self.keys.len() as u64)?;
        // A BTreeMap iterates in increasing element order.
        for (&g, key) in &self.keys {
            sink.put_u64(g)?;
            write_switching_key(ctx, &key.key, sink)?;
        }
        Ok(())
    }

    fn max_payload_len(ctx: &CkksContext) -> u64 {
        // At most one key per odd element below 2N: N keys.
        8u64.saturating_add(
            n_u64(ctx).saturating_mul(8 + switching_key_len(ctx, switching_digits(ctx))),
        )
    }

    fn parse(ctx: &CkksContext, payload: &[u8]) -> Result<Self> {
        let mut c = Cursor::new(payload, Self::KIND);
        let count = c.u64("key count")?;
        if count > n_u64(ctx) {
            return Err(format_err(
                Self::KIND,
                format!(
                    "{count} keys, at most N = {} distinct Galois elements exist",
                    ctx.n()
                ),
            ));
        }
        // Keys may have fewer digits than the full ones (levels capped):
        // the payload is at most `count` full keys, and parsing checks each
        // key's length and the absence of trailing bytes.
        let full_len = 8 + switching_key_len(ctx, switching_digits(ctx));
        if payload.len() as u64 > 8 + count * full_len {
            return Err(format_err(
                Self::KIND,
                format!(
                    "payload of {} bytes, a set of {count} keys needs at most {}",
                    payload.len(),
                    8 + count * full_len
                ),
            ));
        }
        let mut keys = GaloisKeys::default();
        let mut previous: Option<u64> = None;
        for i in 0..count {
            let g = c.u64("Galois element")?;
            if !valid_galois_element(ctx, g) {
                return Err(format_err(
                    Self::KIND,
                    format!(
                        "key {i}: Galois element {g} is not odd and below 2N = {}",
                        2 * ctx.n()
                    ),
                ));
            }
            if previous.is_some_and(|p| g <= p) {
                return Err(format_err(
                    Self::KIND,
                    format!(
                        "key {i}: Galois element {g} does not follow {} in increasing order",
                        previous.unwrap_or(0)
                    ),
                ));
            }
            previous = Some(g);
            let key = parse_switching_key(ctx, &mut c, Digits::AtLeastOne)?;
            keys.insert(GaloisKey {
                galois_element: g,
                key,
            });
        }
        c.finish()?;
        Ok(keys)
    }
}

impl Object for SecretKey {
    const KIND: ObjectKind = ObjectKind::SecretKey;
    const READ_OP: &'static str = "read_secret_key";
    const WRITE_OP: &'static str = "write_secret_key";

    fn params_id(&self) -> Option<u64> {
        Some(self.params_id)
    }

    fn payload_len(&self, ctx: &CkksContext) -> Result<u64> {
        if self.coefficients.len() != ctx.n() {
            return Err(Error::LengthMismatch {
                op: Self::WRITE_OP,
                got: self.coefficients.len(),
                expected: ctx.n(),
            });
        }
        if let Some((i, c)) = self
            .coefficients
            .iter()
            .enumerate()
            .find(|(_, c)| !(-1..=1).contains(*c))
        {
            return Err(shape_err(
                Self::WRITE_OP,
                format!("coefficient {i} is {c}: only ternary secrets (-1, 0, 1) can be stored"),
            ));
        }
        Ok(Self::max_payload_len(ctx))
    }

    fn write_payload<W: Write + ?Sized>(
        &self,
        _ctx: &CkksContext,
        sink: &mut Sink<'_, W>,
    ) -> Result<()> {
        sink.put_u64(self.coefficients.len() as u64)?;
        // Checked ternary in `payload_len`, so the cast to i8 is exact.
        let bytes: Vec<u8> = self.coefficients.iter().map(|&c| c as i8 as u8).collect();
        sink.put(&bytes)
    }

    fn max_payload_len(ctx: &CkksContext) -> u64 {
        8 + n_u64(ctx)
    }

    fn parse(ctx: &CkksContext, payload: &[u8]) -> Result<Self> {
        let mut c = Cursor::new(payload, Self::KIND);
        let n = c.u64("coefficient count")?;
        if n != n_u64(ctx) {
            return Err(format_err(
                Self::KIND,
                format!("{n} coefficients, the ring has N = {}", ctx.n()),
            ));
        }
        check_payload_len(Self::KIND, payload, Self::max_payload_len(ctx), || {
            "a secret key".into()
        })?;
        let bytes = c.take(ctx.n(), "coefficients")?;
        c.finish()?;
        let mut coefficients = Vec::with_capacity(ctx.n());
        for (i, &b) in bytes.iter().enumerate() {
            let v = b as i8;
            if !(-1..=1).contains(&v) {
                return Err(format_err(
                    Self::KIND,
                    format!("coefficient {i} is {v}, not in {{-1, 0, 1}}"),
                ));
            }
            coefficients.push(v as i64);
        }
        let basis = ctx.ring().full_basis();
        let eval = ctx.upload_coefficients(&ctx.signed_to_limbs(&coefficients, &basis), &basis)?;
        Ok(SecretKey {
            coefficients,
            eval,
            params_id: ctx.params().id(),
        })
    }
}

// ----- generic drivers ------------------------------------------------------------

fn write_object<T: Object, W: Write + ?Sized>(
    ctx: &CkksContext,
    obj: &T,
    w: &mut W,
    context: &str,
) -> Result<()> {
    let id = ctx.params().id();
    if let Some(obj_id) = obj.params_id() {
        ctx.check_params(T::WRITE_OP, obj_id)?;
    }
    let len = obj.payload_len(ctx)?;
    write_frame(w, T::KIND, id, len, context, |sink| {
        obj.write_payload(ctx, sink)
    })
}

fn expect_for<T: Object>(ctx: &CkksContext) -> Expect {
    Expect {
        kind: T::KIND,
        params_id: Some(ctx.params().id()),
        max_payload: T::max_payload_len(ctx),
        op: T::READ_OP,
    }
}

fn read_object<T: Object, R: Read + ?Sized>(ctx: &CkksContext, r: &mut R) -> Result<T> {
    let payload = read_frame(r, &expect_for::<T>(ctx))?;
    T::parse(ctx, &payload)
}

fn object_to_bytes<T: Object>(ctx: &CkksContext, obj: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_object(ctx, obj, &mut out, T::KIND.name())?;
    Ok(out)
}

fn object_from_bytes<T: Object>(ctx: &CkksContext, bytes: &[u8]) -> Result<T> {
    let (payload, frame_len) = split_frame(bytes, &expect_for::<T>(ctx))?;
    reject_trailing(T::KIND, frame_len, bytes.len())?;
    T::parse(ctx, payload)
}

fn save_with<P: AsRef<Path>>(
    path: P,
    write: impl FnOnce(&mut dyn Write, &str) -> Result<()>,
) -> Result<()> {
    let path = path.as_ref();
    let context = path.display().to_string();
    let file = std::fs::File::create(path).map_err(|e| io_err(&context, e))?;
    let mut w = std::io::BufWriter::new(file);
    write(&mut w, &context)?;
    w.flush().map_err(|e| io_err(&context, e))?;
    let file = w
        .into_inner()
        .map_err(|e| io_err(&context, e.into_error()))?;
    file.sync_all().map_err(|e| io_err(&context, e))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io_err(&path.display().to_string(), e))
}

macro_rules! object_functions {
    ($t:ty, $what:literal, $write:ident, $read:ident, $to_bytes:ident, $from_bytes:ident, $save:ident, $load:ident) => {
        #[doc = concat!("Writes one ", $what, " frame to `w` (not flushed).")]
        pub fn $write<W: Write + ?Sized>(ctx: &CkksContext, obj: &$t, w: &mut W) -> Result<()> {
            write_object(ctx, obj, w, concat!("writing ", $what))
        }

        #[doc = concat!(
            "Reads one ", $what, " frame from `r`, leaving `r` just after it; \
             see the module documentation for what is validated."
        )]
        pub fn $read<R: Read + ?Sized>(ctx: &CkksContext, r: &mut R) -> Result<$t> {
            read_object(ctx, r)
        }

        #[doc = concat!("The ", $what, " as one frame in memory.")]
        pub fn $to_bytes(ctx: &CkksContext, obj: &$t) -> Result<Vec<u8>> {
            object_to_bytes(ctx, obj)
        }

        #[doc = concat!("Decodes a ", $what, " from exactly one frame (trailing bytes are an error).")]
        pub fn $from_bytes(ctx: &CkksContext, bytes: &[u8]) -> Result<$t> {
            object_from_bytes(ctx, bytes)
        }

        #[doc = concat!("Writes the ", $what, " to the file at `path` (created or truncated).")]
        pub fn $save<P: AsRef<Path>>(ctx: &CkksContext, obj: &$t, path: P) -> Result<()> {
            save_with(path, |w, context| write_object(ctx, obj, w, context))
        }

        #[doc = concat!("Reads a ", $what, " from the file at `path`, which must hold exactly one frame.")]
        pub fn $load<P: AsRef<Path>>(ctx: &CkksContext, path: P) -> Result<$t> {
            object_from_bytes(ctx, &read_file(path.as_ref())?)
        }
    };
}

object_functions!(
    Ciphertext,
    "ciphertext",
    write_ciphertext,
    read_ciphertext,
    ciphertext_to_bytes,
    ciphertext_from_bytes,
    save_ciphertext,
    load_ciphertext
);
object_functions!(
    Plaintext,
    "plaintext",
    write_plaintext,
    read_plaintext,
    plaintext_to_bytes,
    plaintext_from_bytes,
    save_plaintext,
    load_plaintext
);
object_functions!(
    PublicKey,
    "public key",
    write_public_key,
    read_public_key,
    public_key_to_bytes,
    public_key_from_bytes,
    save_public_key,
    load_public_key
);
object_functions!(
    RelinearizationKey,
    "relinearization key",
    write_relinearization_key,
    read_relinearization_key,
    relinearization_key_to_bytes,
    relinearization_key_from_bytes,
    save_relinearization_key,
    load_relinearization_key
);
object_functions!(
    GaloisKeys,
    "Galois keys",
    write_galois_keys,
    read_galois_keys,
    galois_keys_to_bytes,
    galois_keys_from_bytes,
    save_galois_keys,
    load_galois_keys
);
object_functions!(
    SecretKey,
    "secret key",
    write_secret_key,
    read_secret_key,
    secret_key_to_bytes,
    secret_key_from_bytes,
    save_secret_key,
    load_secret_key
);

// ----- parameters -------------------------------------------------------------------

const PARAMETERS: ObjectKind = ObjectKind::Parameters;

const PARAMETERS_EXPECT: Expect = Expect {
    kind: PARAMETERS,
    params_id: None,
    max_payload: MAX_PARAMETERS_PAYLOAD,
    op: "read_parameters",
};

fn write_parameters_to<W: Write + ?Sized>(
    literal: &ParametersLiteral,
    w: &mut W,
    context: &str,
) -> Result<()> {
    let params = literal.validate()?;
    let json = serde_json::to_vec(literal)
        .map_err(|e| format_err(PARAMETERS, format!("encoding JSON: {e}")))?;
    let len = 8 + json.len() as u64;
    if len > MAX_PARAMETERS_PAYLOAD {
        return Err(shape_err(
            "write_parameters",
            format!("the parameter set encodes to {len} bytes, above the limit {MAX_PARAMETERS_PAYLOAD}"),
        ));
    }
    write_frame(w, PARAMETERS, 0, len, context, |sink| {
        sink.put_u64(params.id())?;
        sink.put(&json)
    })
}

fn parse_parameters(payload: &[u8]) -> Result<ParametersLiteral> {
    let mut c = Cursor::new(payload, PARAMETERS);
    let id = c.u64("parameter id")?;
    let json = &payload[8..];
    let literal: ParametersLiteral = serde_json::from_slice(json)
        .map_err(|e| format_err(PARAMETERS, format!("invalid JSON: {e}")))?;
    let params = literal
        .validate()
        .map_err(|e| format_err(PARAMETERS, format!("invalid parameter set: {e}")))?;
    if params.id() != id {
        return Err(format_err(
            PARAMETERS,
            format!(
                "the decoded set has id {:#018x}, the frame records {id:#018x}",
                params.id()
            ),
        ));
    }
    Ok(literal)
}

/// Writes a parameter-set frame (the literal is validated first; not flushed).
pub fn write_parameters<W: Write + ?Sized>(literal: &ParametersLiteral, w: &mut W) -> Result<()> {
    write_parameters_to(literal, w, "writing parameters")
}

/// Reads one parameter-set frame from `r`, leaving `r` just after it. The
/// literal returned validates, to the id recorded in the frame.
pub fn read_parameters<R: Read + ?Sized>(r: &mut R) -> Result<ParametersLiteral> {
    parse_parameters(&read_frame(r, &PARAMETERS_EXPECT)?)
}

/// The parameter set as one frame in memory.
pub fn parameters_to_bytes(literal: &ParametersLiteral) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_parameters_to(literal, &mut out, "parameters")?;
    Ok(out)
}

/// Decodes a parameter set from exactly one frame (trailing bytes are an error).
pub fn parameters_from_bytes(bytes: &[u8]) -> Result<ParametersLiteral> {
    let (payload, frame_len) = split_frame(bytes, &PARAMETERS_EXPECT)?;
    reject_trailing(PARAMETERS, frame_len, bytes.len())?;
    parse_parameters(payload)
}

/// Writes the parameter set to the file at `path` (created or truncated).
pub fn save_parameters<P: AsRef<Path>>(literal: &ParametersLiteral, path: P) -> Result<()> {
    save_with(path, |w, context| write_parameters_to(literal, w, context))
}

/// Reads a parameter set from the file at `path`, which must hold exactly one frame.
pub fn load_parameters<P: AsRef<Path>>(path: P) -> Result<ParametersLiteral> {
    parameters_from_bytes(&read_file(path.as_ref())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_reference_values() {
        // Published FNV-1a-64 test vectors.
        let hash = |s: &[u8]| {
            let mut h = Fnv1a64::new();
            h.update(s);
            h.finish()
        };
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn kind_codes_round_trip() {
        for k in ObjectKind::ALL {
            assert_eq!(ObjectKind::from_code(k.code()), Some(k));
        }
        assert_eq!(ObjectKind::from_code(0), None);
        assert_eq!(ObjectKind::from_code(8), None);
    }
}
