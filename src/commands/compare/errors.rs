//! The numeric differences of two files' values: how many differ, and the largest absolute
//! and relative errors, shared by the array and table comparisons.

/// The largest absolute and relative differences seen, and how many values differ.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Errors {
    /// Values compared.
    pub(crate) compared: usize,
    /// Values that differ (NaN equals NaN).
    pub(crate) differing: usize,
    /// The largest |a - b|.
    pub(crate) max_abs: f64,
    /// The largest |a - b| / max(|a|, |b|).
    pub(crate) max_rel: f64,
}

impl Errors {
    /// Count one pair of values; whether they differ.
    pub(crate) fn add(&mut self, a: f64, b: f64) -> bool {
        self.compared += 1;
        if a == b || (a.is_nan() && b.is_nan()) {
            return false;
        }
        self.differing += 1;
        let abs = (a - b).abs();
        let rel = abs / a.abs().max(b.abs());
        // A NaN against a number is as far apart as values get.
        self.max_abs = if abs.is_nan() { f64::INFINITY } else { self.max_abs.max(abs) };
        self.max_rel = if rel.is_nan() { f64::INFINITY } else { self.max_rel.max(rel) };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_count_differences_and_keep_the_largest() {
        let mut e = Errors::default();
        assert!(!e.add(1.0, 1.0));
        assert!(!e.add(f64::NAN, f64::NAN));
        assert!(e.add(2.0, 2.5));
        assert!(e.add(-4.0, -3.0));
        assert_eq!((e.compared, e.differing, e.max_abs, e.max_rel), (4, 2, 1.0, 0.25));
        e.add(f64::NAN, 1.0);
        assert_eq!(e.max_abs, f64::INFINITY);
    }
}
