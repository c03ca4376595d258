//! A BERT model's `config.json` (Hugging Face format), reduced to what the
//! forward pass needs and checked before any weight is read.
//!
//! Accepted: `model_type` `bert` (or absent), `hidden_act` `gelu` (the erf
//! form), absolute position embeddings, positive sizes with the hidden size
//! a multiple of the head count, and a positive finite LayerNorm epsilon.
//! Anything else is [`Error::Format`] naming the file and the field.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The shape and constants of a BERT encoder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
    #[serde(default = "bert")]
    pub model_type: String,
}

fn absolute() -> String {
    "absolute".into()
}

fn bert() -> String {
    "bert".into()
}

impl BertConfig {
    /// Reads and checks a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Parses and checks the text of a `config.json`; `origin` names it in
    /// errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let config: BertConfig = serde_json::from_str(text).map_err(|e| Error::Format {
            what: "BERT config",
            detail: format!("{origin}: {e}"),
        })?;
        config.check(origin)?;
        Ok(config)
    }

    /// The width of one attention head.
    pub fn head_size(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    fn check(&self, origin: &str) -> Result<()> {
        let refuse = |detail: String| {
            Err(Error::Format {
                what: "BERT config",
                detail: format!("{origin}: {detail}"),
            })
        };
        if self.model_type != "bert" {
            return refuse(format!("model_type `{}` is not bert", self.model_type));
        }
        if self.hidden_act != "gelu" {
            return refuse(format!(
                "hidden_act `{}` is not supported (only gelu, the erf form)",
                self.hidden_act
            ));
        }
        if self.position_embedding_type != "absolute" {
            return refuse(format!(
                "position_embedding_type `{}` is not supported (only absolute)",
                self.position_embedding_type
            ));
        }
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, size)| *size == 0) {
            return refuse(format!("{name} is 0"));
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return refuse(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return refuse(format!(
                "layer_norm_eps {} is not positive",
                self.layer_norm_eps
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid config of a tiny BERT (2 layers, hidden 8, 2 heads).
    pub(crate) fn tiny_config() -> BertConfig {
        BertConfig::from_json(
            r#"{"vocab_size": 11, "hidden_size": 8, "num_hidden_layers": 2,
                "num_attention_heads": 2, "intermediate_size": 12,
                "max_position_embeddings": 10, "type_vocab_size": 2,
                "layer_norm_eps": 1e-12, "hidden_act": "gelu"}"#,
            "tiny",
        )
        .unwrap()
    }

    #[test]
    fn reads_a_valid_config() {
        let config = tiny_config();
        assert_eq!(config.head_size(), 4);
        assert_eq!(config.position_embedding_type, "absolute");
    }

    #[test]
    fn refuses_what_the_forward_cannot_do() {
        let valid = serde_json::to_value(tiny_config()).unwrap();
        let cases = [
            ("hidden_act", serde_json::json!("relu"), "hidden_act"),
            (
                "num_attention_heads",
                serde_json::json!(3),
                "not a multiple",
            ),
            (
                "position_embedding_type",
                serde_json::json!("relative_key"),
                "absolute",
            ),
            ("layer_norm_eps", serde_json::json!(0.0), "layer_norm_eps"),
            (
                "intermediate_size",
                serde_json::json!(0),
                "intermediate_size is 0",
            ),
            ("model_type", serde_json::json!("gpt2"), "model_type"),
            ("hidden_size", serde_json::json!("eight"), "invalid type"),
        ];
        for (field, value, expected) in cases {
            let mut config = valid.clone();
            config[field] = value;
            match BertConfig::from_json(&config.to_string(), "cfg.json") {
                Err(error @ Error::Format { .. }) => {
                    let message = error.to_string();
                    assert!(message.contains(expected), "{field}: {message}");
                    assert!(message.contains("cfg.json"), "{message}");
                }
                other => panic!("{field}: expected a format error, got {other:?}"),
            }
        }
        let mut missing = valid;
        missing.as_object_mut().unwrap().remove("vocab_size");
        assert!(BertConfig::from_json(&missing.to_string(), "cfg.json").is_err());
    }
}
