//! Friendly weights in a safetensors file: what `heformer adapt` writes and
//! a later command loads.
//!
//! Layout: one float64 (little-endian, row-major) tensor per entry of
//! [`Parameters::tensors_mut`], under its name (`layers.0.query.weight`,
//! `in × out`; `head.classifier.bias`; …), and two metadata entries:
//! `format` = [`FORMAT`] and `config` = the [`FriendlyConfig`] as JSON
//! (shapes, LoRA targets and the polynomial ranges the weights were
//! adapted for). Loading checks the format, the config, that the file
//! holds exactly the tensors the config implies with their shapes and
//! dtype, and that every value is finite; anything else is
//! [`Error::Format`] naming the file.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::params::Parameters;
use crate::error::{Error, Result};
use crate::model::friendly::{FriendlyConfig, FriendlyWeights};

/// The `format` metadata of a friendly-weights file.
pub const FORMAT: &str = "heformer-friendly-weights-v1";

/// The bytes of a friendly-weights file.
///
/// Errors: weights that do not fit `config`.
pub fn friendly_to_bytes(config: &FriendlyConfig, weights: &FriendlyWeights) -> Result<Vec<u8>> {
    config.check()?;
    weights.check(config)?;
    let mut copy = weights.clone();
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = copy
        .tensors_mut()
        .into_iter()
        .map(|tensor| {
            let bytes = tensor.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (tensor.name, tensor.values.shape().to_vec(), bytes)
        })
        .collect();
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F64, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| format_error("serializing", format!("tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let config_json = serde_json::to_string(config)
        .map_err(|e| format_error("serializing", format!("config: {e}")))?;
    let metadata = HashMap::from([
        ("format".to_owned(), FORMAT.to_owned()),
        ("config".to_owned(), config_json),
    ]);
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| format_error("serializing", e.to_string()))
}

/// Writes a friendly-weights file.
///
/// Errors: those of [`friendly_to_bytes`], or the write's.
pub fn save_friendly(
    path: &Path,
    config: &FriendlyConfig,
    weights: &FriendlyWeights,
) -> Result<()> {
    let bytes = friendly_to_bytes(config, weights)?;
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        context: format!("writing {}", path.display()),
        source,
    })
}

/// Reads a friendly-weights file.
///
/// Errors: [`Error::Io`] reading it, else those of [`friendly_from_bytes`].
pub fn load_friendly(path: &Path) -> Result<(FriendlyConfig, FriendlyWeights)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    friendly_from_bytes(&bytes, &path.display().to_string())
}

/// The config and weights in the bytes of a friendly-weights file;
/// `origin` names it in errors.
///
/// Errors: [`Error::Format`] (see the module docs).
pub fn friendly_from_bytes(
    bytes: &[u8],
    origin: &str,
) -> Result<(FriendlyConfig, FriendlyWeights)> {
    let refuse = |detail: String| format_error(origin, detail);
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| refuse(e.to_string()))?;
    let info = metadata.metadata().clone().unwrap_or_default();
    if info.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(refuse(format!(
            "format {:?}, expected {FORMAT}",
            info.get("format")
        )));
    }
    let config: FriendlyConfig = info
        .get("config")
        .ok_or_else(|| refuse("no config metadata".into()))
        .and_then(|json| serde_json::from_str(json).map_err(|e| refuse(format!("config: {e}"))))?;
    config.check().map_err(|e| refuse(e.to_string()))?;
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| refuse(e.to_string()))?;
    // Every value of the template is overwritten from the file.
    let mut weights = FriendlyWeights::random(&config, 0);
    let mut expected = weights.tensors_mut();
    if tensors.len() != expected.len() {
        return Err(refuse(format!(
            "{} tensors, the config implies {}",
            tensors.len(),
            expected.len()
        )));
    }
    for tensor in &mut expected {
        let name = &tensor.name;
        let stored = tensors
            .tensor(name)
            .map_err(|_| refuse(format!("tensor {name} is missing")))?;
        if stored.dtype() != Dtype::F64 || stored.shape() != tensor.values.shape() {
            return Err(refuse(format!(
                "tensor {name} is {:?} {:?}, expected F64 {:?}",
                stored.dtype(),
                stored.shape(),
                tensor.values.shape()
            )));
        }
        for (value, chunk) in tensor.values.iter_mut().zip(stored.data().chunks_exact(8)) {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            *value = f64::from_le_bytes(word);
        }
    }
    drop(expected);
    weights.check(&config).map_err(|e| refuse(e.to_string()))?;
    Ok((config, weights))
}

fn format_error(origin: &str, detail: String) -> Error {
    Error::Format {
        what: "friendly weights",
        detail: format!("{origin}: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TempFile;

    fn refused(bytes: &[u8]) -> String {
        match friendly_from_bytes(bytes, "w.safetensors") {
            Err(error @ Error::Format { .. }) => error.to_string(),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    /// The file `bytes` with its tensors passed through `edit` (name,
    /// shape, data; `None` drops one) and the same metadata.
    fn rewritten(
        bytes: &[u8],
        edit: impl Fn(&str, Vec<usize>, Vec<u8>) -> Option<(Vec<usize>, Vec<u8>)>,
    ) -> Vec<u8> {
        let (_, metadata) = SafeTensors::read_metadata(bytes).unwrap();
        let tensors = SafeTensors::deserialize(bytes).unwrap();
        let kept: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .tensors()
            .into_iter()
            .filter_map(|(name, view)| {
                edit(&name, view.shape().to_vec(), view.data().to_vec())
                    .map(|(shape, data)| (name, shape, data))
            })
            .collect();
        let views = kept.iter().map(|(name, shape, data)| {
            (
                name.clone(),
                TensorView::new(Dtype::F64, shape.clone(), data).unwrap(),
            )
        });
        safetensors::serialize(views, metadata.metadata().clone()).unwrap()
    }

    #[test]
    fn round_trip() {
        let config = FriendlyConfig::tiny();
        let weights = FriendlyWeights::random(&config, 4);
        let file = TempFile::with_contents(
            "w.safetensors",
            &friendly_to_bytes(&config, &weights).unwrap(),
        );
        let (loaded_config, loaded) = load_friendly(&file.0).unwrap();
        assert_eq!((loaded_config, loaded), (config, weights));
    }

    #[test]
    fn refusals() {
        let config = FriendlyConfig::tiny();
        let weights = FriendlyWeights::random(&config, 4);
        let bytes = friendly_to_bytes(&config, &weights).unwrap();
        for cut in [0, 7, 100, bytes.len() - 1] {
            assert!(refused(&bytes[..cut]).contains("w.safetensors"));
        }
        let missing = rewritten(&bytes, |name, shape, data| {
            (name != "layers.1.up.bias").then_some((shape, data))
        });
        assert!(refused(&missing).contains("tensors, the config implies"));
        let reshaped = rewritten(&bytes, |name, shape, data| {
            Some(match name {
                "head.widen.weight" => (vec![shape[1], shape[0]], data),
                _ => (shape, data),
            })
        });
        assert!(refused(&reshaped).contains("head.widen.weight"));
        let infinite = rewritten(&bytes, |name, shape, mut data| {
            if name == "final_norm.beta" {
                data[..8].copy_from_slice(&f64::INFINITY.to_le_bytes());
            }
            Some((shape, data))
        });
        assert!(refused(&infinite).contains("non-finite"));
        let plain = safetensors::serialize(
            [(
                "x",
                TensorView::new(Dtype::F64, vec![1], &[0u8; 8]).unwrap(),
            )],
            None,
        )
        .unwrap();
        assert!(refused(&plain).contains("format"));
        let mut nan = weights;
        nan.head.widen.bias[0] = f64::NAN;
        assert!(friendly_to_bytes(&config, &nan).is_err());
        assert!(matches!(
            load_friendly(Path::new("/nonexistent/w.safetensors")),
            Err(Error::Io { .. })
        ));
    }
}
