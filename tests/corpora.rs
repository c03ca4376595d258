//! The two polarity corpora as `scripts/fetch-assets.sh` extracts them: their
//! sizes, labels and first examples, and a seeded split. Without the assets
//! each test prints `SKIPPED` and the reason, and passes.

use heformer::assets::{describe_missing, AssetPaths};
use heformer::data::corpora::{load_mr_polarity, load_rotten_tomatoes, NEGATIVE, POSITIVE};
use heformer::data::Dataset;

/// The number of negative and positive examples.
fn polarity_counts(dataset: &Dataset) -> (usize, usize) {
    let labels = dataset.label_set();
    assert_eq!(labels.names(), [NEGATIVE, POSITIVE]);
    let classes = dataset.classes(&labels).unwrap();
    let positive = classes.iter().filter(|&&class| class == 1).count();
    (classes.len() - positive, positive)
}

#[test]
fn rotten_tomatoes_reviews() {
    let path = AssetPaths::from_env().rotten_tomatoes();
    if let Some(reason) = describe_missing(&[&path]) {
        println!("SKIPPED rotten_tomatoes_reviews: {reason}");
        return;
    }
    let dataset = load_rotten_tomatoes(&path).unwrap();
    assert_eq!(dataset.len(), 12_808);
    assert_eq!(polarity_counts(&dataset), (5_405, 7_403));
    assert!(dataset.examples.iter().all(|e| !e.text.trim().is_empty()));
    let first = &dataset.examples[0];
    assert_eq!(first.text, "A three-hour cinema master class.");
    assert_eq!(first.label, POSITIVE);

    let (train, test) = dataset.train_test_split(0.2, 1).unwrap();
    assert_eq!((train.len(), test.len()), (10_246, 2_562));
}

#[test]
fn mr_polarity_sentences() {
    let path = AssetPaths::from_env().mr_polarity();
    if let Some(reason) = describe_missing(&[&path]) {
        println!("SKIPPED mr_polarity_sentences: {reason}");
        return;
    }
    let dataset = load_mr_polarity(&path).unwrap();
    assert_eq!(dataset.len(), 4_000);
    assert_eq!(polarity_counts(&dataset), (2_000, 2_000));
    let last = dataset.examples.last().unwrap();
    assert_eq!(
        last.text,
        "it all feels like a monty python sketch gone horribly wrong ."
    );
    assert_eq!(last.label, NEGATIVE);
    assert!(dataset
        .examples
        .iter()
        .all(|e| e.text == e.text.trim() && !e.text.is_empty()));
}
