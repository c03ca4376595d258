//! Encrypted training state in one file, resumable after a crash: the
//! encrypted parameters and the optimizer's step count, constants, decay
//! flags and moments. Nothing in it is in the clear but the public
//! constants.
//!
//! Layout: the magic line `heformer-encrypted-checkpoint-v2\n`, a `u64`
//! (little-endian) byte length and that many bytes of JSON header
//! ([`EncryptedAdamWConfig`], step, decay flags, parameter count), then
//! the ciphertext frames of [`crate::ckks::serialize`] (each with its own
//! checksum): the parameters (in the circuit's layout), then `m̂`, then
//! `v̂` (one per decay flag: the optimizer's ciphertexts, the compact view
//! of [`EncryptedAdapters::optimizer_count`](super::EncryptedAdapters::optimizer_count);
//! none at step 0). Nothing may follow. (Version 1 kept the moments in
//! the circuit's layout, one per parameter.)
//!
//! [`save_checkpoint`] writes a temporary file beside the target and
//! renames it over the target once synced, so a crash leaves the previous
//! checkpoint whole. Evaluation is deterministic, so a run resumed from a
//! checkpoint computes the very ciphertexts an uninterrupted one does.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::adamw::{EncryptedAdamW, EncryptedAdamWConfig};
use crate::ckks::serialize::{read_ciphertext, write_ciphertext};
use crate::ckks::{Ciphertext, CkksContext};
use crate::error::{Error, Result};

/// The magic line of a checkpoint file.
pub const MAGIC: &[u8] = b"heformer-encrypted-checkpoint-v2\n";

/// The largest header accepted (the header is a few hundred bytes).
const MAX_HEADER: u64 = 1 << 20;

const WHAT: &str = "encrypted checkpoint";

/// The header's fields.
#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    config: EncryptedAdamWConfig,
    step: u64,
    decay: Vec<bool>,
    parameters: usize,
}

fn io_error(path: &Path, doing: &str, source: std::io::Error) -> Error {
    Error::Io {
        context: format!("{doing} {}", path.display()),
        source,
    }
}

fn format_error(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::Format {
        what: WHAT,
        detail: format!("{}: {detail}", path.display()),
    }
}

/// Writes `params` and `optimizer` to `path` (through a temporary file
/// renamed over it).
///
/// Errors: no parameter, I/O errors, ciphertexts of another parameter
/// set.
pub fn save_checkpoint(
    ctx: &CkksContext,
    path: &Path,
    params: &[Ciphertext],
    optimizer: &EncryptedAdamW,
) -> Result<()> {
    if params.is_empty() {
        return Err(Error::LengthMismatch {
            op: "save_checkpoint",
            got: 0,
            expected: optimizer.decay().len().max(1),
        });
    }
    let header = Header {
        config: *optimizer.config(),
        step: optimizer.steps(),
        decay: optimizer.decay().to_vec(),
        parameters: params.len(),
    };
    let json = serde_json::to_vec(&header).map_err(|e| format_error(path, e))?;
    let temporary = path.with_extension("tmp");
    let file =
        std::fs::File::create(&temporary).map_err(|e| io_error(&temporary, "creating", e))?;
    let mut w = BufWriter::new(file);
    let write = |w: &mut BufWriter<std::fs::File>, bytes: &[u8]| {
        w.write_all(bytes)
            .map_err(|e| io_error(&temporary, "writing", e))
    };
    write(&mut w, MAGIC)?;
    write(&mut w, &(json.len() as u64).to_le_bytes())?;
    write(&mut w, &json)?;
    let (first, second) = optimizer.moments();
    for ct in params.iter().chain(first).chain(second) {
        write_ciphertext(ctx, ct, &mut w)?;
    }
    let file = w
        .into_inner()
        .map_err(|e| io_error(&temporary, "writing", e.into_error()))?;
    file.sync_all()
        .map_err(|e| io_error(&temporary, "syncing", e))?;
    std::fs::rename(&temporary, path).map_err(|e| io_error(path, "replacing", e))
}

/// Reads a checkpoint: the parameters and the optimizer, ready to resume.
///
/// Errors: I/O errors, a file that is not a checkpoint of this format, a
/// truncated or corrupt file, trailing bytes, ciphertexts of another
/// parameter set ([`Error::Format`], [`Error::Io`] or the serializer's
/// errors, naming the file).
pub fn load_checkpoint(
    ctx: &CkksContext,
    path: &Path,
) -> Result<(Vec<Ciphertext>, EncryptedAdamW)> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, "opening", e))?;
    let mut r = BufReader::new(file);
    let mut magic = vec![0u8; MAGIC.len()];
    r.read_exact(&mut magic)
        .map_err(|_| format_error(path, "not a checkpoint (too short)"))?;
    if magic != MAGIC {
        return Err(format_error(path, "not a checkpoint (wrong magic line)"));
    }
    let mut length = [0u8; 8];
    r.read_exact(&mut length)
        .map_err(|_| format_error(path, "truncated header"))?;
    let length = u64::from_le_bytes(length);
    if length > MAX_HEADER {
        return Err(format_error(path, format!("header of {length} bytes")));
    }
    let mut json = vec![0u8; length as usize];
    r.read_exact(&mut json)
        .map_err(|_| format_error(path, "truncated header"))?;
    let header: Header =
        serde_json::from_slice(&json).map_err(|e| format_error(path, format!("header: {e}")))?;
    if header.parameters == 0 || header.decay.is_empty() {
        return Err(format_error(
            path,
            format!(
                "{} parameters and {} decay flags",
                header.parameters,
                header.decay.len()
            ),
        ));
    }
    let moments = if header.step == 0 {
        0
    } else {
        header.decay.len()
    };
    let mut read = |count: usize| -> Result<Vec<Ciphertext>> {
        (0..count).map(|_| read_ciphertext(ctx, &mut r)).collect()
    };
    let params = read(header.parameters)?;
    let first = read(moments)?;
    let second = read(moments)?;
    let mut rest = [0u8; 1];
    match r.read(&mut rest) {
        Ok(0) => {}
        Ok(_) => return Err(format_error(path, "trailing bytes after the last frame")),
        Err(e) => return Err(io_error(path, "reading", e)),
    }
    let optimizer =
        EncryptedAdamW::resume(header.config, header.decay, header.step, first, second)?;
    Ok((params, optimizer))
}
