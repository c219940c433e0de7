//! Thinning long series for display: per pixel column only the first, lowest, highest and
//! last point are kept (in their order), so a line of 10,000 points draws as it would in full,
//! spikes included, with a few points per pixel.

/// The points of `points` (sorted by x, already in pixels) that a line through them needs at
/// one point per pixel column.
pub(crate) fn per_pixel_column(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len().min(4096));
    let mut i = 0;
    while i < points.len() {
        let column = points[i].0.floor();
        let start = i;
        while i < points.len() && points[i].0.floor() == column {
            i += 1;
        }
        let bucket = &points[start..i];
        if bucket.len() <= 4 {
            out.extend_from_slice(bucket);
            continue;
        }
        // In pixels, a larger y is lower on the screen; either way these are the extremes.
        let (mut lo, mut hi) = (0, 0);
        for (k, p) in bucket.iter().enumerate() {
            if p.1 < bucket[lo].1 {
                lo = k;
            }
            if p.1 > bucket[hi].1 {
                hi = k;
            }
        }
        let mut keep = [0, lo.min(hi), lo.max(hi), bucket.len() - 1];
        keep.sort_unstable();
        let mut last = None;
        for k in keep {
            if last != Some(k) {
                out.push(bucket[k]);
                last = Some(k);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_column_keeps_its_ends_and_extremes_in_order() {
        let points: Vec<(f64, f64)> =
            (0..1000).map(|i| (i as f64 / 100.0, if i == 555 { 99.0 } else { 1.0 })).collect();
        let thin = per_pixel_column(&points);
        assert!(thin.len() <= 40, "{} points", thin.len());
        assert!(thin.contains(&(5.55, 99.0)), "the spike is kept");
        assert_eq!((thin[0], *thin.last().unwrap()), (points[0], points[999]));
        assert!(thin.windows(2).all(|w| w[0].0 <= w[1].0), "still in order");
        let short = [(0.0, 1.0), (0.5, 2.0), (3.0, 1.0)];
        assert_eq!(per_pixel_column(&short), short);
    }
}
