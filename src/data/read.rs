//! Readers for labelled text files: CSV and JSONL, with the text and label
//! columns chosen by the caller.
//!
//! - CSV: RFC 4180 (fields quoted with `"`, quotes doubled, line breaks
//!   inside quotes), comma-separated, every record as long as the first; a
//!   UTF-8 byte-order mark is skipped. Columns are named (header required) or
//!   0-based indices.
//! - JSONL: one JSON object per line; blank lines are skipped. The text must
//!   be a string; the label a string, a number or a boolean (kept as its
//!   JSON text, so `1` and `"1"` are the same label).
//!
//! Texts are kept exactly as written; labels are trimmed of surrounding
//! white space and must not be empty. A file with no examples is an error.
//! Every error is [`Error::Dataset`] with the path and, where it concerns a
//! record, the line on which that record starts.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{Dataset, LabeledText};
use crate::error::{Error, Result};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A column of a CSV file: by header name or by 0-based position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Column {
    Name(String),
    Index(usize),
}

impl std::fmt::Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Column::Name(name) => write!(f, "`{name}`"),
            Column::Index(index) => write!(f, "#{index}"),
        }
    }
}

/// Which columns hold the text and the label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Columns {
    pub text: Column,
    pub label: Column,
}

impl Columns {
    /// Columns given by their header names (or JSON keys).
    pub fn named(text: &str, label: &str) -> Self {
        Self {
            text: Column::Name(text.to_owned()),
            label: Column::Name(label.to_owned()),
        }
    }
}

/// The file formats [`read_labeled`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    /// CSV with a header line.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl DataFormat {
    /// The format named by the file's extension: `.csv`, or `.jsonl` /
    /// `.ndjson`.
    pub fn from_path(path: &Path) -> Result<Self> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Ok(DataFormat::Csv),
            Some("jsonl" | "ndjson") => Ok(DataFormat::Jsonl),
            _ => Err(dataset_error(
                path,
                None,
                "unknown format: the name must end in .csv, .jsonl or .ndjson".into(),
            )),
        }
    }
}

/// Reads a user's dataset: CSV with a header or JSONL (by extension), the
/// text and the label taken from the named columns or keys.
pub fn read_labeled(path: &Path, text_column: &str, label_column: &str) -> Result<Dataset> {
    match DataFormat::from_path(path)? {
        DataFormat::Csv => read_csv(path, &Columns::named(text_column, label_column), true),
        DataFormat::Jsonl => read_jsonl(path, text_column, label_column),
    }
}

/// Reads a CSV file. With `has_header` the first record names the columns;
/// without it, columns must be given by index.
pub fn read_csv(path: &Path, columns: &Columns, has_header: bool) -> Result<Dataset> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(has_header)
        .flexible(false)
        .from_reader(open_without_bom(path)?);
    let (text_index, label_index) = if has_header {
        let header = reader.headers().map_err(|e| csv_error(path, &e))?.clone();
        if header.is_empty() {
            return Err(dataset_error(path, None, "empty file (no header)".into()));
        }
        let names: Vec<&str> = header.iter().collect();
        (
            column_index(path, &names, &columns.text)?,
            column_index(path, &names, &columns.label)?,
        )
    } else {
        match (&columns.text, &columns.label) {
            (Column::Index(text), Column::Index(label)) => (*text, *label),
            _ => {
                return Err(dataset_error(
                    path,
                    None,
                    "columns can be named only when the file has a header".into(),
                ))
            }
        }
    };
    let mut examples = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, &e))?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |index: usize, column: &Column| {
            record.get(index).ok_or_else(|| {
                dataset_error(
                    path,
                    Some(line),
                    format!(
                        "column {column} is missing (the record has {} fields)",
                        record.len()
                    ),
                )
            })
        };
        let text = field(text_index, &columns.text)?.to_owned();
        let label = checked_label(path, line, field(label_index, &columns.label)?)?;
        examples.push(LabeledText { text, label, line });
    }
    non_empty(path, examples)
}

/// Reads a JSONL file, taking the text and the label from the named keys.
pub fn read_jsonl(path: &Path, text_key: &str, label_key: &str) -> Result<Dataset> {
    let mut examples = Vec::new();
    for (index, line) in open_without_bom(path)?.lines().enumerate() {
        let line_number = index as u64 + 1;
        let at = |detail: String| dataset_error(path, Some(line_number), detail);
        let line = line.map_err(|e| at(format!("cannot read the line: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| at(format!("bad JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| at("the line is not a JSON object".into()))?;
        let text = match object.get(text_key) {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(other) => return Err(at(format!("key `{text_key}` is not a string: {other}"))),
            None => return Err(at(format!("no key `{text_key}`"))),
        };
        let label = match object.get(label_key) {
            Some(serde_json::Value::String(label)) => label.clone(),
            Some(value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                value.to_string()
            }
            Some(other) => {
                return Err(at(format!(
                    "key `{label_key}` is not a string, number or boolean: {other}"
                )))
            }
            None => return Err(at(format!("no key `{label_key}`"))),
        };
        let label = checked_label(path, line_number, &label)?;
        examples.push(LabeledText {
            text,
            label,
            line: line_number,
        });
    }
    non_empty(path, examples)
}

/// Opens a file for buffered reading, past a UTF-8 byte-order mark if any.
fn open_without_bom(path: &Path) -> Result<BufReader<File>> {
    let file = File::open(path).map_err(|source| Error::Io {
        context: format!("opening dataset {}", path.display()),
        source,
    })?;
    let mut reader = BufReader::new(file);
    let starts_with_bom = reader
        .fill_buf()
        .map_err(|source| Error::Io {
            context: format!("reading dataset {}", path.display()),
            source,
        })?
        .starts_with(UTF8_BOM);
    if starts_with_bom {
        reader.consume(UTF8_BOM.len());
    }
    Ok(reader)
}

/// The position of `column` among the header's names; a name must appear
/// exactly once.
fn column_index(path: &Path, names: &[&str], column: &Column) -> Result<usize> {
    let known = || names.join(", ");
    match column {
        Column::Index(index) if *index < names.len() => Ok(*index),
        Column::Index(index) => Err(dataset_error(
            path,
            Some(1),
            format!(
                "no column #{index}: the header has {} columns ({})",
                names.len(),
                known()
            ),
        )),
        Column::Name(name) => {
            let mut matches = names
                .iter()
                .enumerate()
                .filter(|(_, n)| **n == name.as_str());
            match (matches.next(), matches.next()) {
                (Some((index, _)), None) => Ok(index),
                (Some(_), Some(_)) => Err(dataset_error(
                    path,
                    Some(1),
                    format!("column `{name}` appears more than once in the header"),
                )),
                (None, _) => Err(dataset_error(
                    path,
                    Some(1),
                    format!("no column `{name}` (columns: {})", known()),
                )),
            }
        }
    }
}

/// The label without surrounding white space; an empty one is an error.
fn checked_label(path: &Path, line: u64, label: &str) -> Result<String> {
    let label = label.trim();
    if label.is_empty() {
        return Err(dataset_error(path, Some(line), "empty label".into()));
    }
    Ok(label.to_owned())
}

fn non_empty(path: &Path, examples: Vec<LabeledText>) -> Result<Dataset> {
    if examples.is_empty() {
        return Err(dataset_error(path, None, "no examples".into()));
    }
    Ok(Dataset {
        source: PathBuf::from(path),
        examples,
    })
}

fn csv_error(path: &Path, error: &csv::Error) -> Error {
    let line = error.position().map(|p| p.line());
    let detail = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the record has {len} fields, the first had {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "the record is not valid UTF-8".into(),
        _ => error.to_string(),
    };
    dataset_error(path, line, detail)
}

pub(crate) fn dataset_error(path: &Path, line: Option<u64>, detail: String) -> Error {
    Error::Dataset {
        path: path.display().to_string(),
        line,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{triples, TempFile};

    /// The error's line and message, for files that must be refused.
    fn refused(result: Result<Dataset>) -> (Option<u64>, String) {
        match result {
            Err(error @ Error::Dataset { line, .. }) => (line, error.to_string()),
            Err(other) => panic!("expected a dataset error, got {other}"),
            Ok(dataset) => panic!("expected an error, read {} examples", dataset.len()),
        }
    }

    fn csv_file(contents: &str) -> TempFile {
        TempFile::with_contents("data.csv", contents.as_bytes())
    }

    fn jsonl_file(contents: &str) -> TempFile {
        TempFile::with_contents("data.jsonl", contents.as_bytes())
    }

    #[test]
    fn csv_with_quotes_line_breaks_and_a_bom() {
        let file = TempFile::with_contents(
            "quoted.csv",
            "\u{feff}id,review,stars\n1,\"great, \"\"really\"\"\",5\n2,\"two\nlines\", 1 \n3,plain,5\n"
                .as_bytes(),
        );
        let dataset = read_labeled(&file.0, "review", "stars").unwrap();
        let got = triples(&dataset);
        assert_eq!(
            got,
            [
                ("great, \"really\"", "5", 2),
                ("two\nlines", "1", 3),
                ("plain", "5", 5)
            ]
        );
        assert_eq!(dataset.label_set().names(), ["1", "5"]);
    }

    #[test]
    fn csv_without_header_by_index() {
        let file = csv_file("1,good\n-1,bad\n");
        let columns = Columns {
            text: Column::Index(1),
            label: Column::Index(0),
        };
        let dataset = read_csv(&file.0, &columns, false).unwrap();
        assert_eq!(dataset.texts(), ["good", "bad"]);
        let (line, message) = refused(read_csv(&file.0, &Columns::named("t", "l"), false));
        assert_eq!(line, None);
        assert!(
            message.contains("only when the file has a header"),
            "{message}"
        );
    }

    #[test]
    fn csv_errors_name_the_file_and_line() {
        let (line, message) = refused(read_labeled(
            &csv_file("text,label\na,1\n").0,
            "body",
            "label",
        ));
        assert_eq!(line, Some(1));
        assert!(
            message.contains("no column `body` (columns: text, label)"),
            "{message}"
        );
        assert!(message.contains("data.csv:1:"), "{message}");

        let (line, message) = refused(read_labeled(
            &csv_file("text,label\na,1\nb\n").0,
            "text",
            "label",
        ));
        assert_eq!(line, Some(3));
        assert!(message.contains("1 fields, the first had 2"), "{message}");

        let (line, _) = refused(read_labeled(
            &csv_file("text,label\na,1\nb, \n").0,
            "text",
            "label",
        ));
        assert_eq!(line, Some(3));

        let (line, message) = refused(read_labeled(&csv_file("").0, "text", "label"));
        assert_eq!(line, None);
        assert!(message.contains("empty file"), "{message}");

        let (_, message) = refused(read_labeled(&csv_file("text,label\n").0, "text", "label"));
        assert!(message.contains("no examples"), "{message}");

        let (line, message) = refused(read_labeled(
            &csv_file("text,text,label\na,b,1\n").0,
            "text",
            "label",
        ));
        assert_eq!(line, Some(1));
        assert!(message.contains("more than once"), "{message}");

        let bad_utf8 = TempFile::with_contents("bad.csv", b"text,label\nok,1\n\xff\xfe,1\n");
        let (line, message) = refused(read_labeled(&bad_utf8.0, "text", "label"));
        assert_eq!(line, Some(3));
        assert!(message.contains("not valid UTF-8"), "{message}");

        let columns = Columns {
            text: Column::Index(5),
            label: Column::Index(0),
        };
        let (line, message) = refused(read_csv(&csv_file("text,label\na,1\n").0, &columns, true));
        assert_eq!(line, Some(1));
        assert!(message.contains("no column #5"), "{message}");
    }

    #[test]
    fn jsonl_labels_of_every_json_kind() {
        let file = jsonl_file(
            "{\"text\": \"a\", \"label\": \"pos\"}\n\n{\"text\": \"b\", \"label\": 1}\n{\"text\": \"c\", \"label\": true, \"extra\": [1]}\n",
        );
        let dataset = read_labeled(&file.0, "text", "label").unwrap();
        let got = triples(&dataset);
        assert_eq!(got, [("a", "pos", 1), ("b", "1", 3), ("c", "true", 4)]);
    }

    #[test]
    fn jsonl_errors_name_the_file_and_line() {
        let cases = [
            (
                "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 1\n",
                2,
                "bad JSON",
            ),
            ("[1, 2]\n", 1, "not a JSON object"),
            ("{\"label\": 1}\n", 1, "no key `text`"),
            ("{\"text\": \"a\"}\n", 1, "no key `label`"),
            ("{\"text\": 3, \"label\": 1}\n", 1, "not a string"),
            (
                "{\"text\": \"a\", \"label\": null}\n",
                1,
                "not a string, number or boolean",
            ),
            ("{\"text\": \"a\", \"label\": \"  \"}\n", 1, "empty label"),
        ];
        for (contents, expected_line, expected) in cases {
            let (line, message) = refused(read_labeled(&jsonl_file(contents).0, "text", "label"));
            assert_eq!(line, Some(expected_line), "{contents}");
            assert!(message.contains(expected), "{contents}: {message}");
        }
        let (line, message) = refused(read_labeled(&jsonl_file("\n  \n").0, "text", "label"));
        assert_eq!(line, None);
        assert!(message.contains("no examples"), "{message}");
    }

    #[test]
    fn unknown_extension_and_missing_file() {
        let (_, message) = refused(read_labeled(Path::new("data.tsv"), "text", "label"));
        assert!(message.contains("unknown format"), "{message}");
        let missing = read_labeled(Path::new("/nonexistent/heformer/data.csv"), "text", "label");
        assert!(matches!(missing, Err(Error::Io { .. })));
    }

    #[test]
    fn unknown_label_points_at_its_line() {
        let train =
            read_labeled(&csv_file("text,label\na,neg\nb,pos\n").0, "text", "label").unwrap();
        let test = read_labeled(
            &csv_file("text,label\nc,pos\nd,neutral\n").0,
            "text",
            "label",
        )
        .unwrap();
        let labels = train.label_set();
        assert_eq!(train.classes(&labels).unwrap(), [0, 1]);
        match test.classes(&labels) {
            Err(error @ Error::Dataset { line: Some(3), .. }) => {
                let message = error.to_string();
                assert!(
                    message.contains("unknown label `neutral` (known: 0: neg, 1: pos)"),
                    "{message}"
                );
            }
            other => panic!("expected an unknown label on line 3, got {other:?}"),
        }
    }
}
