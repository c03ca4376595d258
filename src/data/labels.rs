//! Class indices of a classification dataset.
//!
//! Invariant: the classes are the distinct labels sorted by their bytes, so
//! class `i` is `names()[i]` and the same labels always give the same
//! indices, whatever order the examples come in.

use std::collections::BTreeSet;
use std::fmt;

/// The sorted distinct labels of a dataset; a label's class is its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelSet {
    names: Vec<String>,
}

impl LabelSet {
    /// The distinct labels among `labels`, sorted.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a str>) -> Self {
        let distinct: BTreeSet<&str> = labels.into_iter().collect();
        Self {
            names: distinct.into_iter().map(str::to_owned).collect(),
        }
    }

    /// The labels, class 0 first.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no classes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The class of `label`, if it is one of the labels.
    pub fn index_of(&self, label: &str) -> Option<usize> {
        self.names
            .binary_search_by(|name| name.as_str().cmp(label))
            .ok()
    }
}

/// `0: negative, 1: positive`.
impl fmt::Display for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, name) in self.names.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{index}: {name}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_the_sorted_distinct_labels() {
        let labels = LabelSet::from_labels(["pos", "neg", "pos", "neutral", "neg"]);
        assert_eq!(labels.names(), ["neg", "neutral", "pos"]);
        assert_eq!(labels.index_of("neg"), Some(0));
        assert_eq!(labels.index_of("pos"), Some(2));
        assert_eq!(labels.index_of("other"), None);
        assert_eq!(labels.to_string(), "0: neg, 1: neutral, 2: pos");
    }

    #[test]
    fn order_of_the_examples_does_not_matter() {
        let forward = LabelSet::from_labels(["b", "a", "c"]);
        let backward = LabelSet::from_labels(["c", "a", "b"]);
        assert_eq!(forward, backward);
    }
}
