//! What `verify --explain` shows of an output that differs, by kind of file: text as a
//! bounded unified diff, JSON and CSV field by field, NumPy arrays element by element, PNG
//! images pixel by pixel, and any other file by its size and first differing byte.

use serde::Serialize;

use super::array::{self, ArrayDiff, NpzMember};
use super::image::{self, ImageDiff};
use super::table::{self, TableDiff};

/// How the contents of two versions of one file differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// Text: line counts and a bounded unified diff.
    Text {
        /// Lines in the original.
        lines_original: usize,
        /// Lines in the re-run's.
        lines_rerun: usize,
        /// The diff, at most a screenful.
        diff: String,
    },
    /// A JSON document, leaf by leaf.
    Json(TableDiff),
    /// A CSV table, cell by cell.
    Csv(TableDiff),
    /// A NumPy `.npy` array.
    Npy(ArrayDiff),
    /// A NumPy `.npz` archive, array by array.
    Npz {
        /// Every array of either archive.
        members: Vec<NpzMember>,
    },
    /// A PNG image.
    Image(ImageDiff),
    /// Any other file.
    Binary {
        /// Bytes of the original.
        size_original: u64,
        /// Bytes of the re-run's.
        size_rerun: u64,
        /// The first offset where they differ (the shorter one's length when one is a
        /// prefix of the other).
        first_differing_offset: u64,
    },
}

/// The evidence for two versions of the file at `path`: by its name's extension, and as
/// text or bytes when it is not what its name says.
pub fn evidence(path: &str, old: &[u8], new: &[u8]) -> Evidence {
    let lower = path.to_ascii_lowercase();
    let kind = lower.rsplit_once('.').map_or("", |(_, ext)| ext);
    let parsed = match kind {
        "json" => table::json(old, new).map(Evidence::Json),
        "csv" => table::csv(old, new).map(Evidence::Csv),
        "npy" => array::npy(old, new).map(Evidence::Npy),
        "npz" => array::npz(old, new).map(|members| Evidence::Npz { members }),
        "png" => image::png(old, new).map(Evidence::Image),
        _ => None,
    };
    parsed.unwrap_or_else(|| match (std::str::from_utf8(old), std::str::from_utf8(new)) {
        (Ok(a), Ok(b)) => Evidence::Text {
            lines_original: a.lines().count(),
            lines_rerun: b.lines().count(),
            diff: super::text_diff(old, new).unwrap_or_default(),
        },
        _ => binary(old, new),
    })
}

fn binary(old: &[u8], new: &[u8]) -> Evidence {
    let first = old.iter().zip(new).position(|(a, b)| a != b).unwrap_or(old.len().min(new.len()));
    Evidence::Binary {
        size_original: old.len() as u64,
        size_rerun: new.len() as u64,
        first_differing_offset: first as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_files_are_compared_by_size_and_first_differing_byte() {
        assert_eq!(
            evidence("model.bin", &[0, 1, 2, 0xff], &[0, 1, 9, 0xff, 4]),
            Evidence::Binary { size_original: 4, size_rerun: 5, first_differing_offset: 2 }
        );
        assert_eq!(
            evidence("w.bin", &[0xff, 1], &[0xff, 1, 2]),
            Evidence::Binary { size_original: 2, size_rerun: 3, first_differing_offset: 2 },
            "a prefix differs where it ends"
        );
        let Evidence::Text { lines_original, lines_rerun, diff } = evidence("log.txt", b"a\nb\n", b"a\nc\nd\n") else {
            panic!("text")
        };
        assert_eq!((lines_original, lines_rerun), (2, 3));
        assert!(diff.contains("-b") && diff.contains("+c"), "{diff}");
        assert!(matches!(evidence("bad.json", b"{", b"}"), Evidence::Text { .. }), "not JSON: shown as text");
    }
}
