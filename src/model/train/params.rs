//! Weights as a list of named tensors: what the optimizer, the gradient
//! arithmetic and the checkpoint files walk over.
//!
//! [`Parameters::tensors_mut`] lists every tensor of a weight set in a fixed
//! order, with a stable name (`layers.0.query.weight`), its [`Group`] and
//! whether weight decay applies to it (matrices: yes; biases and LayerNorm
//! `γ`, `β`: no). A gradient has the type of its weights (made by
//! [`Parameters::zeroed`]), so two lists of the same type and shapes line up
//! tensor by tensor; the operations that pair two lists check the names and
//! shapes and refuse a mismatch with [`Error::LengthMismatch`] /
//! [`Error::InvalidParameters`].

use ndarray::ArrayViewMutD;

use crate::error::{Error, Result};
use crate::model::friendly::{Dense, FriendlyHead, FriendlyWeights, Lora, Projection};
use crate::model::weights::LayerNormWeights;

/// Which part of a model a tensor belongs to (what [`Trainable`] selects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Encoder weights: projections, feed-forward, LayerNorms.
    Body,
    /// LoRA adapters' `A` and `B`.
    Lora,
    /// The classification head.
    Head,
}

/// The tensors an optimizer updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trainable {
    /// Every tensor.
    All,
    /// LoRA adapters and the head (what the encrypted fine-tuning trains).
    LoraHead,
    /// The head alone.
    Head,
}

impl std::str::FromStr for Trainable {
    type Err = Error;

    /// `all`, `lora-head` or `head`.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "all" => Ok(Trainable::All),
            "lora-head" => Ok(Trainable::LoraHead),
            "head" => Ok(Trainable::Head),
            other => Err(Error::InvalidParameters(format!(
                "trainable `{other}`: expected all, lora-head or head"
            ))),
        }
    }
}

impl Trainable {
    /// Whether tensors of `group` are trained.
    pub fn includes(self, group: Group) -> bool {
        match self {
            Trainable::All => true,
            Trainable::LoraHead => group != Group::Body,
            Trainable::Head => group == Group::Head,
        }
    }
}

/// One named tensor of a weight set, mutably borrowed.
#[derive(Debug)]
pub struct TensorMut<'a> {
    pub name: String,
    pub group: Group,
    /// Whether decoupled weight decay applies (matrices only).
    pub decay: bool,
    pub values: ArrayViewMutD<'a, f64>,
}

/// A weight set walked as named tensors (see the module docs).
pub trait Parameters: Clone + Send + Sync {
    /// Every tensor, in a fixed order.
    fn tensors_mut(&mut self) -> Vec<TensorMut<'_>>;

    /// The same shapes, all zero: an empty gradient.
    fn zeroed(&self) -> Self {
        let mut zero = self.clone();
        for mut tensor in zero.tensors_mut() {
            tensor.values.fill(0.0);
        }
        zero
    }

    /// `self += other`, tensor by tensor.
    ///
    /// Errors: lists of different names or shapes.
    fn add_assign(&mut self, other: &mut Self) -> Result<()> {
        for (mut mine, theirs) in paired(self.tensors_mut(), other.tensors_mut())? {
            mine.values += &theirs.values;
        }
        Ok(())
    }

    /// `self *= factor`.
    fn scale(&mut self, factor: f64) {
        for mut tensor in self.tensors_mut() {
            tensor.values *= factor;
        }
    }

    /// The squared Euclidean norm over the tensors `select` keeps.
    fn squared_norm(&mut self, select: impl Fn(Group) -> bool) -> f64 {
        self.tensors_mut()
            .iter()
            .filter(|tensor| select(tensor.group))
            .map(|tensor| tensor.values.iter().map(|v| v * v).sum::<f64>())
            .sum()
    }
}

/// Pairs two tensor lists after checking that names and shapes agree.
pub fn paired<'a, 'b>(
    left: Vec<TensorMut<'a>>,
    right: Vec<TensorMut<'b>>,
) -> Result<impl Iterator<Item = (TensorMut<'a>, TensorMut<'b>)>> {
    if left.len() != right.len() {
        return Err(Error::LengthMismatch {
            op: "Parameters: pairing tensor lists",
            got: right.len(),
            expected: left.len(),
        });
    }
    if let Some((a, b)) = left
        .iter()
        .zip(&right)
        .find(|(a, b)| a.name != b.name || a.values.shape() != b.values.shape())
    {
        return Err(Error::InvalidParameters(format!(
            "Parameters: tensor {} {:?} paired with {} {:?}",
            a.name,
            a.values.shape(),
            b.name,
            b.values.shape()
        )));
    }
    Ok(left.into_iter().zip(right))
}

/// Builds a tensor list from the weight structs, naming as it goes.
#[derive(Default)]
pub(crate) struct TensorList<'a>(pub(crate) Vec<TensorMut<'a>>);

impl<'a> TensorList<'a> {
    fn push(&mut self, name: String, group: Group, decay: bool, values: ArrayViewMutD<'a, f64>) {
        self.0.push(TensorMut {
            name,
            group,
            decay,
            values,
        });
    }

    pub(crate) fn dense(&mut self, prefix: &str, group: Group, dense: &'a mut Dense) {
        self.push(
            format!("{prefix}.weight"),
            group,
            true,
            dense.weight.view_mut().into_dyn(),
        );
        self.push(
            format!("{prefix}.bias"),
            group,
            false,
            dense.bias.view_mut().into_dyn(),
        );
    }

    pub(crate) fn norm(&mut self, prefix: &str, group: Group, norm: &'a mut LayerNormWeights) {
        self.push(
            format!("{prefix}.gamma"),
            group,
            false,
            norm.gamma.view_mut().into_dyn(),
        );
        self.push(
            format!("{prefix}.beta"),
            group,
            false,
            norm.beta.view_mut().into_dyn(),
        );
    }

    fn lora(&mut self, prefix: &str, lora: &'a mut Lora) {
        self.push(
            format!("{prefix}.lora_a"),
            Group::Lora,
            true,
            lora.a.view_mut().into_dyn(),
        );
        self.push(
            format!("{prefix}.lora_b"),
            Group::Lora,
            true,
            lora.b.view_mut().into_dyn(),
        );
    }

    fn projection(&mut self, prefix: &str, projection: &'a mut Projection) {
        self.dense(prefix, Group::Body, &mut projection.dense);
        if let Some(lora) = &mut projection.lora {
            self.lora(prefix, lora);
        }
    }

    pub(crate) fn head(&mut self, head: &'a mut FriendlyHead) {
        self.dense("head.bottleneck", Group::Head, &mut head.bottleneck);
        self.dense("head.widen", Group::Head, &mut head.widen);
        self.dense("head.classifier", Group::Head, &mut head.classifier);
    }
}

impl Parameters for FriendlyHead {
    fn tensors_mut(&mut self) -> Vec<TensorMut<'_>> {
        let mut list = TensorList::default();
        list.head(self);
        list.0
    }
}

impl Parameters for FriendlyWeights {
    fn tensors_mut(&mut self) -> Vec<TensorMut<'_>> {
        let mut list = TensorList::default();
        for (index, layer) in self.layers.iter_mut().enumerate() {
            let at = |part: &str| format!("layers.{index}.{part}");
            list.norm(
                &at("attention_norm"),
                Group::Body,
                &mut layer.attention_norm,
            );
            list.projection(&at("query"), &mut layer.query);
            list.projection(&at("key"), &mut layer.key);
            list.projection(&at("value"), &mut layer.value);
            list.projection(&at("output"), &mut layer.output);
            list.norm(&at("ffn_norm"), Group::Body, &mut layer.ffn_norm);
            list.dense(&at("gate"), Group::Body, &mut layer.gate);
            list.dense(&at("up"), Group::Body, &mut layer.up);
            list.dense(&at("down"), Group::Body, &mut layer.down);
        }
        if let Some(norm) = &mut self.final_norm {
            list.norm("final_norm", Group::Body, norm);
        }
        list.head(&mut self.head);
        list.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::friendly::FriendlyConfig;

    #[test]
    fn names_groups_and_arithmetic() {
        let config = FriendlyConfig::tiny();
        let mut weights = FriendlyWeights::random(&config, 1);
        let names: Vec<(String, Group, bool)> = weights
            .tensors_mut()
            .into_iter()
            .map(|t| (t.name, t.group, t.decay))
            .collect();
        assert_eq!(
            names[0],
            ("layers.0.attention_norm.gamma".into(), Group::Body, false)
        );
        assert!(names.contains(&("layers.1.value.lora_b".into(), Group::Lora, true)));
        assert!(names.contains(&("head.classifier.bias".into(), Group::Head, false)));
        let mut unique: Vec<&String> = names.iter().map(|(n, ..)| n).collect();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());

        let mut zero = weights.zeroed();
        assert_eq!(zero.squared_norm(|_| true), 0.0);
        let mut twice = weights.clone();
        twice.add_assign(&mut weights.clone()).unwrap();
        twice.scale(0.5);
        assert_eq!(twice, weights);
        let all = weights.squared_norm(|_| true);
        let head = weights.squared_norm(|g| g == Group::Head);
        assert!(head > 0.0 && head < all);
        assert_eq!(
            "lora-head".parse::<Trainable>().unwrap(),
            Trainable::LoraHead
        );
        assert!("lora".parse::<Trainable>().is_err());

        let mut other = FriendlyWeights::random(
            &FriendlyConfig {
                ffn: 20,
                ..config.clone()
            },
            1,
        );
        assert!(weights.add_assign(&mut other).is_err());
        assert!(Trainable::LoraHead.includes(Group::Lora));
        assert!(!Trainable::Head.includes(Group::Lora));
        assert!(Trainable::All.includes(Group::Body));
    }
}
