//! A seeded shuffle and train/test split that give the same result on every
//! machine and with every version of `rand`.
//!
//! The permutation is Fisher–Yates driven by ChaCha20 seeded with the `u64`
//! seed (`rand_chacha`'s stream is fixed by its specification); each draw
//! below `n` rejects the top `2^64 mod n` words, so it is exactly uniform and
//! does not depend on `rand`'s range sampling.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::Dataset;
use crate::error::{Error, Result};

/// Shuffles `items` in place; the same seed gives the same permutation.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for last in (1..items.len()).rev() {
        let pick = uniform_below(&mut rng, last as u64 + 1) as usize;
        items.swap(last, pick);
    }
}

/// A uniform draw in `0..bound` (`bound > 0`).
fn uniform_below(rng: &mut ChaCha20Rng, bound: u64) -> u64 {
    let accepted = u64::MAX - u64::MAX % bound;
    loop {
        let word = rng.next_u64();
        if word < accepted {
            return word % bound;
        }
    }
}

impl Dataset {
    /// The examples in a seeded random order.
    pub fn shuffled(mut self, seed: u64) -> Self {
        shuffle(&mut self.examples, seed);
        self
    }

    /// Shuffles with `seed`, then puts the last `round(len · test_fraction)`
    /// examples in the test part. Both parts must be non-empty.
    pub fn train_test_split(self, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        let len = self.len();
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(Error::OutOfRange {
                op: "train_test_split",
                detail: format!("test fraction {test_fraction} is not in (0, 1)"),
            });
        }
        let test_len = (len as f64 * test_fraction).round() as usize;
        if test_len == 0 || test_len == len {
            return Err(Error::OutOfRange {
                op: "train_test_split",
                detail: format!(
                    "a test fraction of {test_fraction} of {len} examples leaves one part empty"
                ),
            });
        }
        let mut train = self.shuffled(seed);
        let test = Dataset {
            source: train.source.clone(),
            examples: train.examples.split_off(len - test_len),
        };
        Ok((train, test))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::LabeledText;

    fn numbered(len: usize) -> Dataset {
        Dataset {
            source: "numbers.csv".into(),
            examples: (0..len)
                .map(|i| LabeledText {
                    text: i.to_string(),
                    label: (i % 2).to_string(),
                    line: i as u64 + 2,
                })
                .collect(),
        }
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let mut first: Vec<u32> = (0..100).collect();
        let mut again = first.clone();
        let mut other = first.clone();
        shuffle(&mut first, 7);
        shuffle(&mut again, 7);
        shuffle(&mut other, 8);
        assert_eq!(first, again);
        assert_ne!(first, other);
        assert_ne!(first, (0..100).collect::<Vec<_>>());
        first.sort_unstable();
        assert_eq!(first, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn shuffle_is_pinned() {
        // The permutation of a fixed seed never changes (see the module doc).
        let mut items: Vec<u32> = (0..10).collect();
        shuffle(&mut items, 42);
        assert_eq!(items, [4, 2, 0, 1, 9, 7, 3, 5, 8, 6]);
    }

    #[test]
    fn every_position_is_equally_likely() {
        // 3 items, 6 permutations, 60000 seeds: each count near 10000.
        let mut counts = std::collections::HashMap::new();
        for seed in 0..60_000 {
            let mut items = [0u8, 1, 2];
            shuffle(&mut items, seed);
            *counts.entry(items).or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), 6);
        for (permutation, count) in counts {
            assert!((9_500..10_500).contains(&count), "{permutation:?}: {count}");
        }
    }

    #[test]
    fn split_partitions_the_examples() {
        let (train, test) = numbered(10).train_test_split(0.25, 3).unwrap();
        assert_eq!((train.len(), test.len()), (7, 3));
        let mut all: Vec<String> = train
            .texts()
            .into_iter()
            .chain(test.texts())
            .map(String::from)
            .collect();
        all.sort_by_key(|text| text.parse::<u32>().unwrap());
        assert_eq!(all, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
        let (again, _) = numbered(10).train_test_split(0.25, 3).unwrap();
        assert_eq!(train.examples, again.examples);
    }

    #[test]
    fn split_refuses_an_empty_part() {
        for fraction in [0.0, 1.0, -0.5, f64::NAN, 0.01, 0.99] {
            let result = numbered(10).train_test_split(fraction, 0);
            assert!(
                matches!(
                    result,
                    Err(Error::OutOfRange {
                        op: "train_test_split",
                        ..
                    })
                ),
                "fraction {fraction}"
            );
        }
    }
}
