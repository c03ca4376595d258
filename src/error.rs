//! The crate's single error type.
//!
//! Every variant names the operation that failed (`op`) and, where two values
//! clashed, both values. Nothing reachable from the public API panics on
//! user-controlled input; it returns one of these instead.

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in heformer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter literal failed validation.
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),
    /// The parameter set does not reach the security level it claims.
    #[error("insecure parameters: log2(QP) = {log_qp:.1} exceeds the bound {bound} for N = 2^{log_n} at {claimed_bits}-bit security ({secret})")]
    Insecure {
        log_n: u32,
        log_qp: f64,
        bound: u32,
        claimed_bits: u32,
        secret: String,
    },
    /// No preset with this name exists.
    #[error("unknown parameter preset `{0}` (see `heformer params`)")]
    UnknownPreset(String),
    /// Operands were created under different parameter sets.
    #[error("{op}: operands belong to different parameter sets ({left:#018x} vs {right:#018x})")]
    ParameterMismatch {
        op: &'static str,
        left: u64,
        right: u64,
    },
    /// Operands are at levels that cannot be combined (or a level is out of range).
    #[error("{op}: level mismatch ({detail})")]
    LevelMismatch { op: &'static str, detail: String },
    /// Operands carry scales that cannot be brought together exactly.
    #[error("{op}: scale mismatch (2^{left_log2:.4} vs 2^{right_log2:.4})")]
    ScaleMismatch {
        op: &'static str,
        left_log2: f64,
        right_log2: f64,
    },
    /// The operation needs a level the ciphertext no longer has.
    #[error("{op}: out of levels (ciphertext at level {level}, needs {needed})")]
    OutOfLevels {
        op: &'static str,
        level: usize,
        needed: usize,
    },
    /// A Galois (rotation or conjugation) key is missing from the key set.
    #[error("{op}: missing Galois key for element {galois_element} ({what})")]
    MissingGaloisKey {
        op: &'static str,
        galois_element: u64,
        what: String,
    },
    /// A relinearization key was needed but not supplied.
    #[error("{op}: missing relinearization key")]
    MissingRelinearizationKey { op: &'static str },
    /// A ciphertext of the wrong degree was given (e.g. an unrelinearized tensor).
    #[error("{op}: ciphertext degree {degree} not accepted (expected {expected})")]
    DegreeMismatch {
        op: &'static str,
        degree: usize,
        expected: usize,
    },
    /// An input vector has the wrong length.
    #[error("{op}: length mismatch (got {got}, expected {expected})")]
    LengthMismatch {
        op: &'static str,
        got: usize,
        expected: usize,
    },
    /// A value is out of the range the operation accepts.
    #[error("{op}: {detail}")]
    OutOfRange { op: &'static str, detail: String },
    /// Operands live on different backends or devices.
    #[error("{op}: operands live on different devices ({left} vs {right})")]
    DeviceMismatch {
        op: &'static str,
        left: String,
        right: String,
    },
    /// A backend cannot serve the request (no device, no driver, unsupported size).
    #[error("backend {backend}: {detail}")]
    Backend { backend: String, detail: String },
    /// A serialized object is malformed, truncated, corrupt or of the wrong kind.
    #[error("decoding {what}: {detail}")]
    Format { what: &'static str, detail: String },
    /// A dataset file is malformed or does not fit the request (a missing
    /// column, a bad line, no examples, an unknown label). `line` is the
    /// 1-based line where the offending record starts, when there is one.
    #[error("reading dataset {path}{}: {detail}", line_suffix(*.line))]
    Dataset {
        path: String,
        line: Option<u64>,
        detail: String,
    },
    /// An I/O error, with the path or stream it concerns.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// `Ok` when `got == expected`, else [`Error::LengthMismatch`] for `op`.
    pub fn check_length(op: &'static str, got: usize, expected: usize) -> Result<()> {
        if got == expected {
            Ok(())
        } else {
            Err(Error::LengthMismatch { op, got, expected })
        }
    }
}

/// `:line` for an error message, or nothing when the error has no line.
fn line_suffix(line: Option<u64>) -> String {
    line.map(|line| format!(":{line}")).unwrap_or_default()
}
