//! NumPy arrays: the `.npy` format read here (magic, version, the header's dict of `descr`,
//! `fortran_order` and `shape`, then the raw elements), `.npz` archives as zips of them, and
//! two arrays compared element by element: shape, dtype, how many elements differ, and the
//! largest absolute and relative errors.

use std::io::Read;

use serde::Serialize;

use super::errors::Errors;

/// Two arrays, compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArrayDiff {
    /// The original's shape.
    pub shape_original: Vec<u64>,
    /// The re-run's shape.
    pub shape_rerun: Vec<u64>,
    /// The original's dtype as NumPy writes it (`<f8`).
    pub dtype_original: String,
    /// The re-run's dtype.
    pub dtype_rerun: String,
    /// Elements compared (when shapes, dtypes and orders agree).
    pub elements: Option<u64>,
    /// Elements that differ (NaN equals NaN).
    pub differing: Option<u64>,
    /// The first differing element, in the file's order.
    pub first_differing_index: Option<u64>,
    /// The largest |a - b|.
    pub max_abs: Option<f64>,
    /// The largest |a - b| / max(|a|, |b|).
    pub max_rel: Option<f64>,
}

/// One array of either `.npz` archive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NpzMember {
    /// Its name in the archive (`weights.npy`).
    pub name: String,
    /// `identical`, `differs`, `missing` (from the re-run's) or `extra`.
    pub result: &'static str,
    /// The comparison of an array in both that differs.
    pub array: Option<ArrayDiff>,
}

/// A parsed `.npy` file.
struct Npy<'a> {
    dtype: String,
    fortran: bool,
    shape: Vec<u64>,
    data: &'a [u8],
}

impl<'a> Npy<'a> {
    fn parse(bytes: &'a [u8]) -> Option<Npy<'a>> {
        let rest = bytes.strip_prefix(b"\x93NUMPY")?;
        let (major, rest) = (*rest.first()?, rest.get(2..)?);
        let (len, rest) = match major {
            1 => (u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize, rest.get(2..)?),
            2 | 3 => (u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize, rest.get(4..)?),
            _ => return None,
        };
        let header = std::str::from_utf8(rest.get(..len)?).ok()?;
        let dtype = dict_value(header, "descr")?.strip_prefix('\'')?.split('\'').next()?.to_string();
        let fortran = dict_value(header, "fortran_order")?.starts_with("True");
        let shape = dict_value(header, "shape")?.strip_prefix('(')?.split(')').next()?;
        let shape = shape.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().ok());
        let shape = shape.collect::<Option<Vec<u64>>>()?;
        Some(Npy { dtype, fortran, shape, data: rest.get(len..)? })
    }

    /// The elements as f64, when the dtype is a number NumPy writes in a fixed layout.
    fn values(&self) -> Option<Vec<f64>> {
        let (order, kind) = self.dtype.split_at_checked(1)?;
        let big = match order {
            "<" | "|" | "=" => false,
            ">" => true,
            _ => return None,
        };
        let (kind, size) = kind.split_at_checked(1)?;
        let size: usize = size.parse().ok()?;
        let count = self.shape.iter().product::<u64>() as usize;
        let data = self.data.get(..count.checked_mul(size)?)?;
        let word = |chunk: &[u8]| -> u64 {
            let mut buf = [0u8; 8];
            match big {
                true => buf[8 - size..].copy_from_slice(chunk),
                false => buf[..size].copy_from_slice(chunk),
            }
            if big { u64::from_be_bytes(buf) } else { u64::from_le_bytes(buf) }
        };
        let convert: fn(u64, usize) -> f64 = match (kind, size) {
            ("f", 8) => |w, _| f64::from_bits(w),
            ("f", 4) => |w, _| f64::from(f32::from_bits(w as u32)),
            ("i", 1 | 2 | 4 | 8) => |w, size| ((w << (64 - 8 * size)) as i64 >> (64 - 8 * size)) as f64,
            ("u" | "b", 1 | 2 | 4 | 8) => |w, _| w as f64,
            _ => return None,
        };
        Some(data.chunks_exact(size).map(|c| convert(word(c), size)).collect())
    }
}

/// The text after `'key':` in a header dict.
fn dict_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let at = header.find(&format!("'{key}'"))?;
    Some(header[at + key.len() + 2..].trim_start().strip_prefix(':')?.trim_start())
}

/// Two `.npy` files; `None` when either is not one this reader knows.
pub fn npy(old: &[u8], new: &[u8]) -> Option<ArrayDiff> {
    let (a, b) = (Npy::parse(old)?, Npy::parse(new)?);
    let mut diff = ArrayDiff {
        shape_original: a.shape.clone(),
        shape_rerun: b.shape.clone(),
        dtype_original: a.dtype.clone(),
        dtype_rerun: b.dtype.clone(),
        elements: None,
        differing: None,
        first_differing_index: None,
        max_abs: None,
        max_rel: None,
    };
    if a.shape != b.shape || a.dtype != b.dtype || a.fortran != b.fortran {
        return Some(diff);
    }
    let (Some(x), Some(y)) = (a.values(), b.values()) else { return Some(diff) };
    let mut errors = Errors::default();
    for (i, (p, q)) in x.iter().zip(&y).enumerate() {
        if errors.add(*p, *q) && diff.first_differing_index.is_none() {
            diff.first_differing_index = Some(i as u64);
        }
    }
    let differs = errors.differing > 0;
    diff.elements = Some(errors.compared as u64);
    diff.differing = Some(errors.differing as u64);
    diff.max_abs = differs.then_some(errors.max_abs);
    diff.max_rel = differs.then_some(errors.max_rel);
    Some(diff)
}

/// Two `.npz` archives array by array; `None` when either is not a zip.
pub fn npz(old: &[u8], new: &[u8]) -> Option<Vec<NpzMember>> {
    let (a, b) = (members(old)?, members(new)?);
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let members = names.into_iter().map(|name| {
        let (result, array) = match (a.get(name), b.get(name)) {
            (Some(x), Some(y)) if x == y => ("identical", None),
            (Some(x), Some(y)) => ("differs", npy(x, y)),
            (Some(_), None) => ("missing", None),
            _ => ("extra", None),
        };
        NpzMember { name: name.clone(), result, array }
    });
    Some(members.collect())
}

fn members(bytes: &[u8]) -> Option<std::collections::BTreeMap<String, Vec<u8>>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
    let mut out = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).ok()?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).ok()?;
        out.insert(file.name().ok()?.to_string(), data);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `.npy` file as NumPy 1.x writes it (version 1.0, header padded to 64 bytes).
    fn npy_file(dtype: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header = format!("{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn f8(values: &[f64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn npy_arrays_compare_element_by_element() {
        let a = npy_file("<f8", "(2, 2)", &f8(&[1.0, 2.0, 3.0, 4.0]));
        let b = npy_file("<f8", "(2, 2)", &f8(&[1.0, 2.5, 3.0, 3.0]));
        let d = npy(&a, &b).unwrap();
        assert_eq!((d.shape_original.clone(), d.elements, d.differing), (vec![2, 2], Some(4), Some(2)));
        assert_eq!((d.first_differing_index, d.max_abs, d.max_rel), (Some(1), Some(1.0), Some(0.25)));
        let c = npy_file("<f8", "(4,)", &f8(&[1.0, 2.0, 3.0, 4.0]));
        assert_eq!(npy(&a, &c).unwrap().differing, None, "shapes differ: no element comparison");
        let ints = npy_file(">i2", "(3,)", &[0xff, 0xfe, 0, 7, 0x80, 0]);
        let ints2 = npy_file(">i2", "(3,)", &[0xff, 0xfe, 0, 7, 0x80, 1]);
        let d = npy(&ints, &ints2).unwrap();
        assert_eq!((d.differing, d.max_abs), (Some(1), Some(1.0)), "-32768 vs -32767, big-endian");
        assert_eq!(Npy::parse(&ints).unwrap().values().unwrap(), vec![-2.0, 7.0, -32768.0]);
        assert!(npy(b"\x93NUMPY\x09\x00", &a).is_none(), "an unknown version");
    }

    #[test]
    fn npz_archives_compare_array_by_array() {
        let zip = |files: &[(&str, Vec<u8>)]| {
            let mut out = std::io::Cursor::new(Vec::new());
            let mut w = zip::ZipWriter::new(&mut out);
            for (name, data) in files {
                w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
                std::io::Write::write_all(&mut w, data).unwrap();
            }
            w.finish().unwrap();
            out.into_inner()
        };
        let w = npy_file("<f4", "(2,)", &[0, 0, 128, 63, 0, 0, 0, 64]);
        let w2 = npy_file("<f4", "(2,)", &[0, 0, 128, 63, 0, 0, 64, 64]);
        let a = zip(&[("w.npy", w.clone()), ("b.npy", w.clone()), ("old.npy", w.clone())]);
        let b = zip(&[("w.npy", w2), ("b.npy", w.clone()), ("new.npy", w)]);
        let m = npz(&a, &b).unwrap();
        let results: Vec<(&str, &str)> = m.iter().map(|m| (m.name.as_str(), m.result)).collect();
        assert_eq!(
            results,
            [("b.npy", "identical"), ("new.npy", "extra"), ("old.npy", "missing"), ("w.npy", "differs")]
        );
        assert_eq!(m[3].array.as_ref().unwrap().max_abs, Some(1.0), "2.0 vs 3.0");
    }
}
