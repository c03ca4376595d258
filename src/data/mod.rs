//! Labelled text data: reading datasets, naming their classes, shuffling and
//! splitting them, and turning texts into fixed-length token ids.
//!
//! - [`read`]: CSV (header, RFC 4180 quoting) and JSONL files with a text
//!   and a label column chosen by the user.
//! - [`corpora`]: the two polarity corpora `scripts/fetch-assets.sh` fetches
//!   (Rotten Tomatoes, MR), with their labels mapped to `negative` and
//!   `positive`.
//! - [`labels`]: class indices (the sorted distinct labels).
//! - [`split`]: a seeded shuffle and train/test split, the same on every
//!   machine.
//! - [`tokenizer`]: a Hugging Face `tokenizer.json` giving ids and attention
//!   masks of a fixed sequence length.
//!
//! Invariants: every example records the 1-based line where it starts in its
//! file, so later errors (an unknown label) can point at it; a [`Dataset`]
//! read from a file is never empty; nothing here panics on a user's file, it
//! returns [`Error::Dataset`](crate::Error::Dataset) with the path and the
//! line.

pub mod corpora;
pub mod labels;
pub mod read;
pub mod split;
pub mod tokenizer;

use std::path::PathBuf;

use crate::error::{Error, Result};
pub use labels::LabelSet;

/// One example: a text and its label as written in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabeledText {
    pub text: String,
    pub label: String,
    /// The 1-based line where the example starts in its file.
    pub line: u64,
}

/// Examples read from one file, in file order until shuffled.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The file the examples came from (for messages).
    pub source: PathBuf,
    pub examples: Vec<LabeledText>,
}

impl Dataset {
    /// The number of examples.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// The texts, in order.
    pub fn texts(&self) -> Vec<&str> {
        self.examples.iter().map(|e| e.text.as_str()).collect()
    }

    /// The classes of this dataset: its distinct labels, sorted.
    pub fn label_set(&self) -> LabelSet {
        LabelSet::from_labels(self.examples.iter().map(|e| e.label.as_str()))
    }

    /// The class index of every example under `labels` (usually the training
    /// set's); a label outside it is an error naming the file and line.
    pub fn classes(&self, labels: &LabelSet) -> Result<Vec<usize>> {
        self.examples
            .iter()
            .map(|example| {
                labels
                    .index_of(&example.label)
                    .ok_or_else(|| Error::Dataset {
                        path: self.source.display().to_string(),
                        line: Some(example.line),
                        detail: format!("unknown label `{}` (known: {labels})", example.label),
                    })
            })
            .collect()
    }
}

/// `(text, label, line)` of every example, for comparing with a literal.
#[cfg(test)]
pub(crate) fn triples(dataset: &Dataset) -> Vec<(&str, &str, u64)> {
    dataset
        .examples
        .iter()
        .map(|e| (e.text.as_str(), e.label.as_str(), e.line))
        .collect()
}

/// A file under the system's temporary directory, removed when dropped.
#[cfg(test)]
pub(crate) struct TempFile(pub PathBuf);

#[cfg(test)]
impl TempFile {
    /// Writes `contents` to a fresh file whose name ends in `name`.
    pub(crate) fn with_contents(name: &str, contents: &[u8]) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "heformer-test-{}-{unique}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, contents).expect("writing a temporary file");
        Self(path)
    }
}

#[cfg(test)]
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
