//! Texts to fixed-length token ids, through a Hugging Face `tokenizer.json`
//! (for all-MiniLM-L6-v2: BERT's WordPiece with lower-casing and accent
//! stripping).
//!
//! Invariants of a [`TokenBatch`]: one row per text, exactly `seq_len`
//! columns; each row is the text's special-token template (for BERT
//! `[CLS] … [SEP]`), truncated to `seq_len` with the template kept, then
//! padded on the right with the pad id; the attention mask is `true` on the
//! template's tokens and `false` on the padding. Token types are all 0
//! (single sentences).

use std::path::Path;

use ndarray::Array2;
use tokenizers::{
    PaddingParams, PaddingStrategy, PostProcessor, Tokenizer, TruncationParams, TruncationStrategy,
};

use crate::error::{Error, Result};

/// Token ids and attention masks of a batch of texts, `texts × seq_len`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBatch {
    pub ids: Array2<u32>,
    pub attention_mask: Array2<bool>,
}

/// A tokenizer that encodes every text to the same sequence length.
pub struct SentenceTokenizer {
    inner: Tokenizer,
    seq_len: usize,
}

impl SentenceTokenizer {
    /// Loads `tokenizer.json` and sets it to truncate and pad to `seq_len`,
    /// which must leave room for at least one token besides the special ones.
    /// The pad token is the file's own padding token, else `[PAD]`.
    pub fn from_file(path: &Path, seq_len: usize) -> Result<Self> {
        let format_error = |detail: String| Error::Format {
            what: "tokenizer.json",
            detail: format!("{}: {detail}", path.display()),
        };
        let json = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        let mut inner = json
            .parse::<Tokenizer>()
            .map_err(|e| format_error(e.to_string()))?;
        let special_tokens = inner
            .get_post_processor()
            .map_or(0, |processor| processor.added_tokens(false));
        if seq_len <= special_tokens {
            return Err(Error::OutOfRange {
                op: "SentenceTokenizer::from_file",
                detail: format!(
                    "sequence length {seq_len} leaves no room beside {special_tokens} special tokens"
                ),
            });
        }
        let (pad_id, pad_token) = match inner.get_padding() {
            Some(padding) => (padding.pad_id, padding.pad_token.clone()),
            None => {
                let id = inner
                    .token_to_id("[PAD]")
                    .ok_or_else(|| format_error("no padding set and no [PAD] token".into()))?;
                (id, "[PAD]".to_owned())
            }
        };
        inner
            .with_truncation(Some(TruncationParams {
                max_length: seq_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                ..TruncationParams::default()
            }))
            .map_err(|e| format_error(e.to_string()))?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(seq_len),
            pad_id,
            pad_token,
            ..PaddingParams::default()
        }));
        Ok(Self { inner, seq_len })
    }

    /// The length every text is encoded to.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Encodes the texts (with their special tokens) to `seq_len` ids each.
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<TokenBatch> {
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self
            .inner
            .encode_batch(inputs, true)
            .map_err(|e| Error::Format {
                what: "tokenizer input",
                detail: e.to_string(),
            })?;
        let mut ids = Array2::zeros((texts.len(), self.seq_len));
        let mut attention_mask = Array2::from_elem((texts.len(), self.seq_len), false);
        for (row, encoding) in encodings.iter().enumerate() {
            if encoding.len() != self.seq_len {
                return Err(Error::LengthMismatch {
                    op: "SentenceTokenizer::encode_batch",
                    got: encoding.len(),
                    expected: self.seq_len,
                });
            }
            for (column, (&id, &mask)) in encoding
                .get_ids()
                .iter()
                .zip(encoding.get_attention_mask())
                .enumerate()
            {
                ids[[row, column]] = id;
                attention_mask[[row, column]] = mask != 0;
            }
        }
        Ok(TokenBatch {
            ids,
            attention_mask,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TempFile;

    /// A BERT-style tokenizer.json with a seven-word vocabulary.
    const TINY_TOKENIZER: &str = r###"{
      "version": "1.0",
      "truncation": null,
      "padding": null,
      "added_tokens": [],
      "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                     "strip_accents": null, "lowercase": true},
      "pre_tokenizer": {"type": "BertPreTokenizer"},
      "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
      "decoder": null,
      "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                "max_input_chars_per_word": 100,
                "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "good": 4, "film": 5,
                          "##s": 6, "!": 7, "cafe": 8}}
    }"###;

    fn tiny(seq_len: usize) -> Result<SentenceTokenizer> {
        let file = TempFile::with_contents("tokenizer.json", TINY_TOKENIZER.as_bytes());
        SentenceTokenizer::from_file(&file.0, seq_len)
    }

    #[test]
    fn pads_truncates_and_masks() {
        let tokenizer = tiny(6).unwrap();
        let batch = tokenizer
            .encode_batch(&["Good films!", "good good good good good", "Café zebra"])
            .unwrap();
        assert_eq!(
            batch.ids,
            ndarray::arr2(&[[2, 4, 5, 6, 7, 3], [2, 4, 4, 4, 4, 3], [2, 8, 1, 3, 0, 0]])
        );
        let real: Vec<usize> = batch
            .attention_mask
            .rows()
            .into_iter()
            .map(|row| row.iter().filter(|&&m| m).count())
            .collect();
        assert_eq!(real, [6, 6, 4]);
        assert!(!batch.attention_mask[[2, 4]]);
    }

    #[test]
    fn refuses_bad_files_and_lengths() {
        assert!(matches!(tiny(2), Err(Error::OutOfRange { .. })));
        let broken = TempFile::with_contents("tokenizer.json", b"{\"version\": ");
        assert!(matches!(
            SentenceTokenizer::from_file(&broken.0, 8),
            Err(Error::Format {
                what: "tokenizer.json",
                ..
            })
        ));
        assert!(matches!(
            SentenceTokenizer::from_file(Path::new("/nonexistent/tokenizer.json"), 8),
            Err(Error::Io { .. })
        ));
    }
}
