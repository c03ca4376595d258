//! A BERT encoder's weights, read from a safetensors file (Hugging Face
//! `BertModel` names, float32) into `f64` arrays.
//!
//! Invariants of a loaded [`BertWeights`]: every array has the shape its
//! [`BertConfig`] implies (linear weights are `out × in`, as PyTorch stores
//! them, so a layer computes `x · Wᵀ + b`), there are
//! `num_hidden_layers` layers, and every value is finite. Tensors the
//! encoder does not use (the pooler, `position_ids`) are ignored. A missing
//! tensor, a wrong shape or dtype, a non-finite value, or a truncated or
//! corrupt file is [`Error::Format`] naming the file and the tensor.

use std::path::Path;

use ndarray::{Array1, Array2};
use safetensors::{Dtype, SafeTensors};

use super::config::BertConfig;
use crate::error::{Error, Result};

/// LayerNorm's scale γ and shift β.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNormWeights {
    pub gamma: Array1<f64>,
    pub beta: Array1<f64>,
}

/// A dense layer `x · Wᵀ + b`, with `weight` of shape `out × in`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearWeights {
    pub weight: Array2<f64>,
    pub bias: Array1<f64>,
}

/// The embedding tables (`vocab × hidden`, `positions × hidden`,
/// `types × hidden`) and the LayerNorm after their sum.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingWeights {
    pub word: Array2<f64>,
    pub position: Array2<f64>,
    pub token_type: Array2<f64>,
    pub layer_norm: LayerNormWeights,
}

/// One encoder layer: self-attention, its output projection and LayerNorm,
/// then the feed-forward block and its LayerNorm.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    pub query: LinearWeights,
    pub key: LinearWeights,
    pub value: LinearWeights,
    pub attention_output: LinearWeights,
    pub attention_layer_norm: LayerNormWeights,
    pub intermediate: LinearWeights,
    pub output: LinearWeights,
    pub output_layer_norm: LayerNormWeights,
}

/// A whole BERT encoder.
#[derive(Clone, Debug, PartialEq)]
pub struct BertWeights {
    pub config: BertConfig,
    pub embeddings: EmbeddingWeights,
    pub layers: Vec<LayerWeights>,
}

impl BertWeights {
    /// Reads the weights of the model `config` describes from a safetensors
    /// file.
    pub fn load(path: &Path, config: BertConfig) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        Self::from_bytes(&bytes, config, &path.display().to_string())
    }

    /// Reads the weights from the bytes of a safetensors file; `origin`
    /// names it in errors.
    pub fn from_bytes(bytes: &[u8], config: BertConfig, origin: &str) -> Result<Self> {
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| Error::Format {
            what: "safetensors weights",
            detail: format!("{origin}: {e}"),
        })?;
        let reader = TensorReader { tensors, origin };
        let (hidden, intermediate) = (config.hidden_size, config.intermediate_size);
        let embeddings = EmbeddingWeights {
            word: reader.matrix(
                "embeddings.word_embeddings.weight",
                config.vocab_size,
                hidden,
            )?,
            position: reader.matrix(
                "embeddings.position_embeddings.weight",
                config.max_position_embeddings,
                hidden,
            )?,
            token_type: reader.matrix(
                "embeddings.token_type_embeddings.weight",
                config.type_vocab_size,
                hidden,
            )?,
            layer_norm: reader.layer_norm("embeddings.LayerNorm", hidden)?,
        };
        let layers = (0..config.num_hidden_layers)
            .map(|index| {
                let name = |part: &str| format!("encoder.layer.{index}.{part}");
                Ok(LayerWeights {
                    query: reader.linear(&name("attention.self.query"), hidden, hidden)?,
                    key: reader.linear(&name("attention.self.key"), hidden, hidden)?,
                    value: reader.linear(&name("attention.self.value"), hidden, hidden)?,
                    attention_output: reader.linear(
                        &name("attention.output.dense"),
                        hidden,
                        hidden,
                    )?,
                    attention_layer_norm: reader
                        .layer_norm(&name("attention.output.LayerNorm"), hidden)?,
                    intermediate: reader.linear(
                        &name("intermediate.dense"),
                        intermediate,
                        hidden,
                    )?,
                    output: reader.linear(&name("output.dense"), hidden, intermediate)?,
                    output_layer_norm: reader.layer_norm(&name("output.LayerNorm"), hidden)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config,
            embeddings,
            layers,
        })
    }
}

/// Reads named float32 tensors of checked shapes out of one file.
struct TensorReader<'a> {
    tensors: SafeTensors<'a>,
    origin: &'a str,
}

impl TensorReader<'_> {
    fn matrix(&self, name: &str, rows: usize, columns: usize) -> Result<Array2<f64>> {
        let values = self.values(name, &[rows, columns])?;
        Array2::from_shape_vec((rows, columns), values).map_err(|e| self.error(name, e.to_string()))
    }

    fn vector(&self, name: &str, len: usize) -> Result<Array1<f64>> {
        Ok(Array1::from_vec(self.values(name, &[len])?))
    }

    fn linear(&self, prefix: &str, outputs: usize, inputs: usize) -> Result<LinearWeights> {
        Ok(LinearWeights {
            weight: self.matrix(&format!("{prefix}.weight"), outputs, inputs)?,
            bias: self.vector(&format!("{prefix}.bias"), outputs)?,
        })
    }

    fn layer_norm(&self, prefix: &str, len: usize) -> Result<LayerNormWeights> {
        Ok(LayerNormWeights {
            gamma: self.vector(&format!("{prefix}.weight"), len)?,
            beta: self.vector(&format!("{prefix}.bias"), len)?,
        })
    }

    /// The tensor's values in row-major order, after checking its dtype,
    /// shape and finiteness.
    fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>> {
        let refuse = |detail: String| self.error(name, detail);
        let tensor = self
            .tensors
            .tensor(name)
            .map_err(|_| refuse("is missing".into()))?;
        if tensor.dtype() != Dtype::F32 {
            return Err(refuse(format!(
                "has dtype {:?}, expected F32",
                tensor.dtype()
            )));
        }
        if tensor.shape() != shape {
            return Err(refuse(format!(
                "has shape {:?}, expected {shape:?} (from config.json)",
                tensor.shape()
            )));
        }
        let values: Vec<f64> = tensor
            .data()
            .chunks_exact(4)
            .map(|bytes| f64::from(f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])))
            .collect();
        if let Some(position) = values.iter().position(|v| !v.is_finite()) {
            return Err(refuse(format!(
                "has a non-finite value at index {position}"
            )));
        }
        Ok(values)
    }

    fn error(&self, name: &str, detail: String) -> Error {
        Error::Format {
            what: "safetensors weights",
            detail: format!("{}: tensor `{name}` {detail}", self.origin),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::config::tests::tiny_config;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;
    use safetensors::tensor::TensorView;

    /// Uniform float32 draws (as `f64`), so that a file round trip is exact.
    struct Uniform(ChaCha20Rng);

    impl Uniform {
        fn values(&mut self, len: usize, center: f32, half_width: f32) -> Vec<f64> {
            (0..len)
                .map(|_| f64::from(center + self.0.random_range(-half_width..=half_width)))
                .collect()
        }

        fn matrix(&mut self, rows: usize, columns: usize) -> Array2<f64> {
            Array2::from_shape_vec((rows, columns), self.values(rows * columns, 0.0, 0.5)).unwrap()
        }

        fn linear(&mut self, outputs: usize, inputs: usize) -> LinearWeights {
            LinearWeights {
                weight: self.matrix(outputs, inputs),
                bias: Array1::from_vec(self.values(outputs, 0.0, 0.2)),
            }
        }

        fn layer_norm(&mut self, len: usize) -> LayerNormWeights {
            LayerNormWeights {
                gamma: Array1::from_vec(self.values(len, 1.0, 0.2)),
                beta: Array1::from_vec(self.values(len, 0.0, 0.2)),
            }
        }
    }

    /// Random weights of `config` (matrices in [-0.5, 0.5], biases in
    /// [-0.2, 0.2], LayerNorm scales in [0.8, 1.2]).
    pub(crate) fn random_weights(config: &BertConfig, seed: u64) -> BertWeights {
        let mut uniform = Uniform(ChaCha20Rng::seed_from_u64(seed));
        let (hidden, intermediate) = (config.hidden_size, config.intermediate_size);
        let embeddings = EmbeddingWeights {
            word: uniform.matrix(config.vocab_size, hidden),
            position: uniform.matrix(config.max_position_embeddings, hidden),
            token_type: uniform.matrix(config.type_vocab_size, hidden),
            layer_norm: uniform.layer_norm(hidden),
        };
        let layers = (0..config.num_hidden_layers)
            .map(|_| LayerWeights {
                query: uniform.linear(hidden, hidden),
                key: uniform.linear(hidden, hidden),
                value: uniform.linear(hidden, hidden),
                attention_output: uniform.linear(hidden, hidden),
                attention_layer_norm: uniform.layer_norm(hidden),
                intermediate: uniform.linear(intermediate, hidden),
                output: uniform.linear(hidden, intermediate),
                output_layer_norm: uniform.layer_norm(hidden),
            })
            .collect();
        BertWeights {
            config: config.clone(),
            embeddings,
            layers,
        }
    }

    /// Tensors for a safetensors file: name, dtype, shape, bytes.
    type RawTensor = (String, Dtype, Vec<usize>, Vec<u8>);

    /// Collects tensors under their Hugging Face names, as float32.
    #[derive(Default)]
    struct Named(Vec<RawTensor>);

    impl Named {
        fn add<'a>(
            &mut self,
            name: String,
            shape: &[usize],
            values: impl Iterator<Item = &'a f64>,
        ) {
            let bytes = values.flat_map(|&v| (v as f32).to_le_bytes()).collect();
            self.0.push((name, Dtype::F32, shape.to_vec(), bytes));
        }

        fn linear(&mut self, prefix: &str, linear: &LinearWeights) {
            self.add(
                format!("{prefix}.weight"),
                linear.weight.shape(),
                linear.weight.iter(),
            );
            self.add(
                format!("{prefix}.bias"),
                linear.bias.shape(),
                linear.bias.iter(),
            );
        }

        fn layer_norm(&mut self, prefix: &str, norm: &LayerNormWeights) {
            self.add(
                format!("{prefix}.weight"),
                norm.gamma.shape(),
                norm.gamma.iter(),
            );
            self.add(
                format!("{prefix}.bias"),
                norm.beta.shape(),
                norm.beta.iter(),
            );
        }
    }

    /// Every tensor of `weights` under its Hugging Face name.
    fn float_tensors(weights: &BertWeights) -> Vec<RawTensor> {
        let mut named = Named::default();
        let embeddings = &weights.embeddings;
        for (name, table) in [
            ("word_embeddings", &embeddings.word),
            ("position_embeddings", &embeddings.position),
            ("token_type_embeddings", &embeddings.token_type),
        ] {
            named.add(
                format!("embeddings.{name}.weight"),
                table.shape(),
                table.iter(),
            );
        }
        named.layer_norm("embeddings.LayerNorm", &embeddings.layer_norm);
        for (index, layer) in weights.layers.iter().enumerate() {
            let prefix = format!("encoder.layer.{index}");
            named.linear(&format!("{prefix}.attention.self.query"), &layer.query);
            named.linear(&format!("{prefix}.attention.self.key"), &layer.key);
            named.linear(&format!("{prefix}.attention.self.value"), &layer.value);
            named.linear(
                &format!("{prefix}.attention.output.dense"),
                &layer.attention_output,
            );
            named.layer_norm(
                &format!("{prefix}.attention.output.LayerNorm"),
                &layer.attention_layer_norm,
            );
            named.linear(&format!("{prefix}.intermediate.dense"), &layer.intermediate);
            named.linear(&format!("{prefix}.output.dense"), &layer.output);
            named.layer_norm(
                &format!("{prefix}.output.LayerNorm"),
                &layer.output_layer_norm,
            );
        }
        named.0
    }

    /// A safetensors file holding `tensors` (name, dtype, shape, bytes).
    fn serialize(tensors: &[RawTensor]) -> Vec<u8> {
        let views = tensors.iter().map(|(name, dtype, shape, bytes)| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), bytes).unwrap(),
            )
        });
        safetensors::serialize(views, None).unwrap()
    }

    /// The message of the format error that loading `bytes` gives.
    fn refused(bytes: &[u8]) -> String {
        match BertWeights::from_bytes(bytes, tiny_config(), "tiny.safetensors") {
            Err(error @ Error::Format { .. }) => error.to_string(),
            Err(other) => panic!("expected a format error, got {other}"),
            Ok(_) => panic!("expected an error, the weights loaded"),
        }
    }

    #[test]
    fn round_trip_through_a_file() {
        let weights = random_weights(&tiny_config(), 1);
        let mut tensors = float_tensors(&weights);
        // Tensors the encoder does not read are ignored.
        tensors.push(("pooler.dense.bias".into(), Dtype::F32, vec![2], vec![0; 8]));
        tensors.push((
            "embeddings.position_ids".into(),
            Dtype::I64,
            vec![1, 2],
            vec![0; 16],
        ));
        let file = crate::data::TempFile::with_contents("tiny.safetensors", &serialize(&tensors));
        let loaded = BertWeights::load(&file.0, tiny_config()).unwrap();
        assert_eq!(loaded, weights);
    }

    #[test]
    fn missing_tensor() {
        let mut tensors = float_tensors(&random_weights(&tiny_config(), 2));
        tensors.retain(|(name, ..)| name != "encoder.layer.1.output.dense.bias");
        let message = refused(&serialize(&tensors));
        assert!(
            message.contains(
                "tiny.safetensors: tensor `encoder.layer.1.output.dense.bias` is missing"
            ),
            "{message}"
        );
    }

    #[test]
    fn wrong_shape() {
        let mut tensors = float_tensors(&random_weights(&tiny_config(), 3));
        let query = tensors
            .iter_mut()
            .find(|(name, ..)| name == "encoder.layer.0.attention.self.query.weight")
            .unwrap();
        query.2 = vec![4, 16];
        let message = refused(&serialize(&tensors));
        assert!(
            message.contains("has shape [4, 16], expected [8, 8]"),
            "{message}"
        );
    }

    #[test]
    fn wrong_dtype() {
        let mut tensors = float_tensors(&random_weights(&tiny_config(), 4));
        let gamma = tensors
            .iter_mut()
            .find(|(name, ..)| name == "embeddings.LayerNorm.weight")
            .unwrap();
        gamma.1 = Dtype::F16;
        gamma.3.truncate(16);
        let message = refused(&serialize(&tensors));
        assert!(
            message.contains("`embeddings.LayerNorm.weight` has dtype F16, expected F32"),
            "{message}"
        );
    }

    #[test]
    fn non_finite_value() {
        let mut tensors = float_tensors(&random_weights(&tiny_config(), 5));
        let bias = tensors
            .iter_mut()
            .find(|(name, ..)| name == "encoder.layer.0.intermediate.dense.bias")
            .unwrap();
        bias.3[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
        let message = refused(&serialize(&tensors));
        assert!(message.contains("non-finite value at index 2"), "{message}");
    }

    #[test]
    fn truncated_and_corrupt_files() {
        let bytes = serialize(&float_tensors(&random_weights(&tiny_config(), 6)));
        for cut in [0, 5, 8, 100, bytes.len() - 1] {
            let message = refused(&bytes[..cut]);
            assert!(message.contains("tiny.safetensors"), "cut {cut}: {message}");
        }
        let mut corrupt = bytes.clone();
        corrupt[10] = b'!';
        refused(&corrupt);
        let mut huge_header = bytes;
        huge_header[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        refused(&huge_header);
    }

    #[test]
    fn missing_file() {
        let result = BertWeights::load(Path::new("/nonexistent/model.safetensors"), tiny_config());
        assert!(matches!(result, Err(Error::Io { .. })));
    }
}
